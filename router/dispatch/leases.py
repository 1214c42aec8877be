"""The router's side of keep_alive: count requests per model in Redis, and have the model
manager start a model's replicas when a request finds it unloaded.

The request waits for the load up to `load_timeout_s`, then gets a 503 with Retry-After while the
load goes on. When a request ends, its keep_alive sets when the model may unload.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError

from router.catalog.catalog import ModelRecord
from router.catalog.keep_alive import expiry_ns, keep_alive_ns
from router.catalog.store import CatalogStore
from router.dispatch.failures import map_error
from router.dispatch.handles import ManagerHandle
from router.errors import EngineError, Overloaded, StoreUnavailable

HEARTBEAT_S = 10
RETRY_FIRST_S = 1.0
LOADING_RETRY_AFTER_S = 10

log = logging.getLogger("herd.leases")


class Leases:
    def __init__(
        self,
        store: CatalogStore,
        manager: ManagerHandle | None,
        router_id: str,
        *,
        default_keep_alive: str = "5m",
        load_timeout_s: float = 180,
    ) -> None:
        self.store = store
        self._manager = manager  # the ModelManager actor; None where models are deployed by hand (bench)
        self._router_id = router_id
        self._default_keep_alive = default_keep_alive
        self._load_timeout_s = load_timeout_s
        self._pending: set[asyncio.Task[None]] = set()
        # Ends Redis did not take (an outage): retried by the heartbeat, so no count stays up.
        self._unsent: list[tuple[str, int | None]] = []
        # Deployments this router last saw loaded: served on through a Redis outage.
        self._seen_loaded: set[str] = set()

    def keep_alive_ns(self, keep_alive: Any) -> int | None:
        """A request's `keep_alive` (None: the cluster default) in ns; None means forever."""
        return keep_alive_ns(keep_alive, self._default_keep_alive)

    async def acquire(self, record: ModelRecord, keep_alive: Any = None) -> Lease:
        """Count a request on `record`'s model, loading the model first if it is not loaded."""
        keep_alive_ns = self.keep_alive_ns(keep_alive)
        deployment = record.deployment_id
        try:
            loaded = await self.store.begin(self._router_id, deployment)
        except RedisError as exc:
            # Redis is down: a model this router saw loaded keeps serving (uncounted: Redis
            # cannot unload it meanwhile); loading another needs the store.
            if deployment not in self._seen_loaded:
                raise StoreUnavailable(
                    f"model '{record.name}' cannot be loaded now, try again shortly", retry_after=2
                ) from exc
            log.warning("Redis unavailable, serving %s uncounted: %s", record.name, exc)
            return Lease(self, deployment, keep_alive_ns, counted=False)
        lease = Lease(self, deployment, keep_alive_ns)
        if loaded:
            self._seen_loaded.add(deployment)
        else:
            self._seen_loaded.discard(deployment)
            try:
                await self.load(record, keep_alive_ns)
            except BaseException:
                lease.release()
                raise
        return lease

    async def load(self, record: ModelRecord, keep_alive_ns: int | None) -> None:
        if self._manager is None:
            raise EngineError(f"model '{record.name}' is not loaded and this router has no model manager")
        call = self._manager.ensure_loaded.remote(record.model_dump_json(), keep_alive_ns)
        try:
            await asyncio.wait_for(asyncio.shield(call), self._load_timeout_s)
        except TimeoutError:
            raise Overloaded(
                f"model '{record.name}' is still loading, try again shortly", retry_after=LOADING_RETRY_AFTER_S
            ) from None
        except Exception as exc:
            raise map_error(exc, f"model '{record.name}' failed to load") from exc

    async def unload(self, record: ModelRecord) -> None:
        """keep_alive 0 with nothing to generate: stop the replicas now (not an always-on model's)."""
        if self._manager is not None and not record.spec.always_on:
            await self._manager.unload.remote(record.deployment_id)

    def _end(self, deployment_id: str, keep_alive_ns: int | None) -> None:
        # Not awaited by the response: the client's last byte must not wait on Redis.
        task = asyncio.create_task(self._send_end(deployment_id, expiry_ns(keep_alive_ns)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send_end(self, deployment_id: str, expires_ns: int | None) -> None:
        try:
            await self.store.end(self._router_id, deployment_id, expires_ns)
        except RedisError:
            self._unsent.append((deployment_id, expires_ns))

    async def heartbeat_forever(self) -> None:
        """Keep this router's in-flight counts alive in Redis (they expire if the router dies), send
        the ends an outage held back, and make sure the manager's keep-alive ticks (a restarted
        manager starts ticking again here). Never stops: errors are logged, then retried with backoff."""
        delay: float = HEARTBEAT_S
        while True:
            try:
                await self.heartbeat()
                delay = HEARTBEAT_S
            except Exception as exc:
                # Soon after the first failure, then less and less often while it lasts.
                delay = RETRY_FIRST_S if delay == HEARTBEAT_S else min(delay * 2, HEARTBEAT_S)
                log.warning("lease heartbeat failed (retry in %.0fs): %s", delay, exc)
            await asyncio.sleep(delay)

    async def heartbeat(self) -> None:
        await self.store.heartbeat(self._router_id)
        while self._unsent:
            deployment_id, expires_ns = self._unsent[0]
            await self.store.end(self._router_id, deployment_id, expires_ns)
            self._unsent.pop(0)
        if self._manager is not None:
            await self._manager.start.remote()


class Lease:
    """One request's hold on a model; `release` once, when the request ends."""

    def __init__(self, leases: Leases, deployment_id: str, keep_alive_ns: int | None, *, counted: bool = True) -> None:
        self._leases = leases
        self._deployment_id = deployment_id
        self._keep_alive_ns = keep_alive_ns
        self._released = not counted  # an uncounted lease (Redis was down) has nothing to end

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._leases._end(self._deployment_id, self._keep_alive_ns)
