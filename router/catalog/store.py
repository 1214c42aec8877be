"""Herd's shared state in Redis: the model catalog and which models are loaded.

Keys (all under `herd:`):
- `herd:models` hash, canonical name key -> record JSON; `herd:names` hash, every name key
  (canonical and alias) -> canonical key; `herd:catalog:version`, bumped on every change.
- `herd:loaded` hash, deployment id -> JSON about the running replicas; `herd:expiry` hash,
  deployment id -> wall-clock ns after which it may unload (-1: never).
- `herd:busy:<router>` hash, deployment id -> requests that router has in flight. Each router
  refreshes its key's TTL, so a router that dies cannot pin a model loaded forever.

Catalog changes take `herd:catalog:lock`, so create/copy/delete through different replicas
never interleave. Runtime keys are reset when the stack starts (nothing is loaded then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError

from router.catalog.group_commit import GroupCommit

MODELS = "herd:models"
NAMES = "herd:names"
VERSION = "herd:catalog:version"
LOCK = "herd:catalog:lock"
LOADED = "herd:loaded"
EXPIRY = "herd:expiry"
BUSY = "herd:busy:"
BUSY_TTL_S = 30
FOREVER = -1
# Connections per process. Request starts and ends go in group commits (one round trip in flight
# each, however many requests), so the pool is for everything else.
POOL_SIZE = 32
POOL_WAIT_S = 10.0
RETRIES = 3

log = logging.getLogger("herd.store")
Snapshot = tuple[int, dict[str, str], dict[str, str]]


def connect(url: str, max_connections: int = POOL_SIZE) -> Redis:
    """A client whose requests beyond `max_connections` wait for a free connection (up to
    POOL_WAIT_S, then a RedisError the app answers with 503): load queues, it never fails.
    Every Redis client of a router replica is made here."""
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=POOL_WAIT_S,
        # After Redis restarts, each pooled connection fails once on its next use: reconnect and
        # retry instead of handing that one request a 503.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), RETRIES),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis(connection_pool=pool)


class CatalogStore:
    def __init__(self, redis: Redis) -> None:
        # redis-py's async stubs type replies as `Awaitable[...] | ...` unions; Any keeps this readable.
        self._redis: Any = redis
        # Request starts and ends share round trips (one GET answers every version check of one);
        # each waits at most as long as it waited for a pooled connection before (a hung Redis).
        self._version = GroupCommit[None, int](self._read_versions, wait_s=POOL_WAIT_S, timeout=_no_reply)
        self._snapshots = GroupCommit[None, Snapshot](self._read_snapshots, wait_s=POOL_WAIT_S, timeout=_no_reply)
        self._begins = GroupCommit[tuple[str, str], bool](
            self._send_begins, self._undo_begin, wait_s=POOL_WAIT_S, timeout=_no_reply
        )
        self._ends = GroupCommit[tuple[str, str, int], None](self._send_ends, wait_s=POOL_WAIT_S, timeout=_no_reply)
        self._undos: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, max_connections: int = POOL_SIZE) -> CatalogStore:
        return cls(connect(url, max_connections))

    @property
    def redis(self) -> Any:
        """The client, for the other stores of shared state (API keys, limits) on the same pool."""
        return self._redis

    async def close(self) -> None:
        await self._redis.aclose()

    # -- catalog ------------------------------------------------------------------------------

    async def version(self) -> int:
        """The catalog's version, read after this call was made (never an answer from before it)."""
        return await self._version(None)

    async def _read_versions(self, calls: list[None]) -> list[int]:
        return [int(await self._redis.get(VERSION) or 0)] * len(calls)

    async def snapshot(self) -> Snapshot:
        """(version, canonical key -> record JSON, name key -> canonical key), read atomically
        after this call was made. Lookups that find the catalog changed at once share one read."""
        return await self._snapshots(None)

    async def _read_snapshots(self, calls: list[None]) -> list[Snapshot]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(VERSION).hgetall(MODELS).hgetall(NAMES)
            version, records, names = await pipe.execute()
        return [(int(version or 0), records, names)] * len(calls)

    async def put(self, key: str, record_json: str, names: list[str]) -> None:
        """Register (or replace) the record at `key`, reachable by `names` (which include `key`).

        A replaced record's old aliases are dropped; a name another record held moves to this one.
        """
        async with self._redis.lock(LOCK, timeout=10, blocking_timeout=10):
            current = await self._redis.hgetall(NAMES)
            stale = [name for name, target in current.items() if target == key and name not in names]
            async with self._redis.pipeline(transaction=True) as pipe:
                if stale:
                    pipe.hdel(NAMES, *stale)
                pipe.hset(MODELS, key, record_json)
                pipe.hset(NAMES, mapping=dict.fromkeys(names, key))
                pipe.incr(VERSION)
                await pipe.execute()

    async def remove(self, name_key: str) -> tuple[str | None, bool]:
        """Remove a name. Returns (the record JSON it named, whether the record itself went).

        Removing an alias leaves its record; removing a canonical name removes the record and
        every alias of it. (None, False) when no such name exists.
        """
        async with self._redis.lock(LOCK, timeout=10, blocking_timeout=10):
            target = await self._redis.hget(NAMES, name_key)
            if target is None:
                return None, False
            record = await self._redis.hget(MODELS, target)
            async with self._redis.pipeline(transaction=True) as pipe:
                if target == name_key:
                    current = await self._redis.hgetall(NAMES)
                    pipe.hdel(NAMES, *[name for name, t in current.items() if t == target])
                    pipe.hdel(MODELS, target)
                else:
                    pipe.hdel(NAMES, name_key)
                pipe.incr(VERSION)
                await pipe.execute()
            return record, target == name_key

    # -- loaded models ------------------------------------------------------------------------

    async def loaded(self) -> dict[str, str]:
        """Deployment id -> the JSON of its `LoadedModel` (parsed by the catalog)."""
        return dict(await self._redis.hgetall(LOADED))

    async def set_loaded(self, deployment_id: str, loaded_json: str) -> None:
        await self._redis.hset(LOADED, deployment_id, loaded_json)

    async def clear_loaded(self, deployment_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(LOADED, deployment_id).hdel(EXPIRY, deployment_id)
            await pipe.execute()

    async def expiries(self) -> dict[str, int | None]:
        """Deployment id -> wall-clock ns after which it may unload; None: never."""
        return {dep: _expiry(ns) for dep, ns in (await self._redis.hgetall(EXPIRY)).items()}

    async def set_expiry(self, deployment_id: str, expires_ns: int | None) -> None:
        await self._redis.hset(EXPIRY, deployment_id, FOREVER if expires_ns is None else expires_ns)

    async def begin(self, router_id: str, deployment_id: str) -> bool:
        """Count a request in flight on this router; returns whether the deployment is loaded."""
        return await self._begins((router_id, deployment_id))

    async def _send_begins(self, calls: list[tuple[str, str]]) -> list[bool | Exception]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for router_id, deployment_id in calls:
                pipe.hincrby(BUSY + router_id, deployment_id, 1).expire(BUSY + router_id, BUSY_TTL_S)
                pipe.hexists(LOADED, deployment_id)
            replies = await pipe.execute(raise_on_error=False)
        return [_first_error(replies[i : i + 3]) or bool(replies[i + 2]) for i in range(0, len(replies), 3)]

    def _undo_begin(self, call: tuple[str, str], _loaded: bool) -> None:
        # The caller was cancelled while its count was on the way: no lease will end it, so it ends here.
        task = asyncio.create_task(self._uncount(*call))
        self._undos.add(task)
        task.add_done_callback(self._undos.discard)

    async def _uncount(self, router_id: str, deployment_id: str) -> None:
        try:
            await self._redis.hincrby(BUSY + router_id, deployment_id, -1)
        except RedisError as exc:  # the key's TTL still ends it if this router dies
            log.warning("could not uncount a cancelled request on %s: %s", deployment_id, exc)

    async def end(self, router_id: str, deployment_id: str, expires_ns: int | None) -> None:
        """The request finished: the model's keep-alive now runs from here (the last request's wins)."""
        await self._ends((router_id, deployment_id, FOREVER if expires_ns is None else expires_ns))

    async def _send_ends(self, calls: list[tuple[str, str, int]]) -> list[None | Exception]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for router_id, deployment_id, expiry in calls:
                pipe.hincrby(BUSY + router_id, deployment_id, -1).hset(EXPIRY, deployment_id, expiry)
            replies = await pipe.execute(raise_on_error=False)
        return [_first_error(replies[i : i + 2]) for i in range(0, len(replies), 2)]

    async def heartbeat(self, router_id: str) -> None:
        await self._redis.expire(BUSY + router_id, BUSY_TTL_S)

    async def busy(self) -> dict[str, int]:
        """Requests in flight per deployment, summed over live routers."""
        total: dict[str, int] = {}
        async for key in self._redis.scan_iter(match=BUSY + "*"):
            for dep, count in (await self._redis.hgetall(key)).items():
                total[dep] = total.get(dep, 0) + int(count)
        return total

    async def reset_runtime(self) -> None:
        """At stack start nothing is loaded: forget loaded/expiry/busy state of a previous run."""
        keys = [key async for key in self._redis.scan_iter(match=BUSY + "*")]
        await self._redis.delete(LOADED, EXPIRY, *keys)


def _no_reply() -> Exception:
    # A RedisError, so callers treat a hung Redis as they treat one that is down.
    return TimeoutError(f"no reply from Redis in {POOL_WAIT_S:.0f} s")


def _first_error(replies: Sequence[Any]) -> Exception | None:
    """One call's error among its commands' replies (a pipeline without raise_on_error keeps them apart)."""
    return next((reply for reply in replies if isinstance(reply, Exception)), None)


def _expiry(raw: str) -> int | None:
    ns = int(raw)
    return None if ns == FOREVER else ns
