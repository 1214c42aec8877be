"""A request on an unloaded model waits for the manager's load, boundedly; its end sets keep-alive."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import RedisError

from router.catalog.catalog import LoadedModel
from router.catalog.store import CatalogStore
from router.dispatch.leases import Leases
from router.driver.redis_server import EmbeddedRedis
from router.errors import EngineError, Overloaded, StoreUnavailable
from tests.support import record, seed


class _Manager:
    """Test double of the ModelManager actor: `ensure_loaded.remote(...)` is an awaitable call."""

    def __init__(self, load_s: float, fail: Exception | None = None, store_url: str = "") -> None:
        self.calls: list[tuple[str, int | None]] = []
        self._load_s, self._fail, self._url = load_s, fail, store_url
        self.ensure_loaded = self

    def remote(self, record_json: str, keep_alive_ns: int | None) -> Any:
        self.calls.append((record_json, keep_alive_ns))
        return self._load()

    async def _load(self) -> None:
        await asyncio.sleep(self._load_s)
        if self._fail is not None:
            raise self._fail
        store = CatalogStore.from_url(self._url)
        await store.set_loaded("m--1", LoadedModel(name="m:1").model_dump_json())
        await store.close()


def _leases(redis_url: str, manager: _Manager, load_timeout_s: float = 5) -> Leases:
    return Leases(CatalogStore.from_url(redis_url), manager, "router-a", load_timeout_s=load_timeout_s)


def test_an_unloaded_model_is_loaded_once_and_the_request_waits(redis_url: str) -> None:
    seed(redis_url, [record("m:1")], loaded=False)
    manager = _Manager(0.2, store_url=redis_url)

    async def run() -> None:
        leases = _leases(redis_url, manager)
        started = time.monotonic()
        lease = await leases.acquire(record("m:1"), "2s")
        assert time.monotonic() - started >= 0.2 and manager.calls[0][1] == 2 * 10**9
        lease.release()
        await asyncio.sleep(0.05)  # the end is written in the background
        expires = (await leases.store.expiries())["m--1"]
        assert 1.5 < (expires - time.time_ns()) / 1e9 <= 2
        (await leases.acquire(record("m:1"), -1)).release()  # loaded now: no second load
        await asyncio.sleep(0.05)
        assert len(manager.calls) == 1 and (await leases.store.expiries())["m--1"] is None
        assert (await leases.store.busy())["m--1"] == 0

    asyncio.run(run())


def test_a_load_longer_than_the_limit_is_a_503_with_retry_after(redis_url: str) -> None:
    seed(redis_url, [record("m:1")], loaded=False)

    async def run() -> None:
        leases = _leases(redis_url, _Manager(5, store_url=redis_url), load_timeout_s=0.1)
        with pytest.raises(Overloaded) as info:
            await leases.acquire(record("m:1"))
        assert info.value.status == 503 and info.value.retry_after and "still loading" in info.value.message
        await asyncio.sleep(0.05)
        assert (await leases.store.busy())["m--1"] == 0  # the failed request is not counted

    asyncio.run(run())


def test_a_failed_load_names_the_model_and_the_cause(redis_url: str) -> None:
    seed(redis_url, [record("m:1")], loaded=False)

    async def run() -> None:
        leases = _leases(redis_url, _Manager(0, fail=RuntimeError("CUDA out of memory")))
        with pytest.raises(EngineError, match="model 'm:1' failed to load: RuntimeError"):
            await leases.acquire(record("m:1"))

    asyncio.run(run())


def test_through_a_redis_outage_loaded_models_serve_and_no_count_is_lost(tmp_path: Path) -> None:
    """Redis dies mid-request: the end is held and sent when it is back; a model the router saw
    loaded keeps serving (uncounted), one it never saw is a 503; the heartbeat survives it all."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    seed(url, [record("m:1")])
    seed(url, [record("cold:1")], loaded=False)

    async def run() -> None:
        leases = Leases(CatalogStore.from_url(url), None, "router-a")
        lease = await leases.acquire(record("m:1"))
        server.stop()
        lease.release()  # its end cannot reach Redis now
        await asyncio.sleep(0.1)
        (await leases.acquire(record("m:1"))).release()  # served through the outage
        with pytest.raises(StoreUnavailable) as info:
            await leases.acquire(record("cold:1"))
        assert info.value.status == 503 and info.value.retry_after
        with pytest.raises(RedisError):
            await leases.heartbeat()
        server.start()  # same port, same append-only file
        await leases.heartbeat()
        assert (await leases.store.busy())["m--1"] == 0

    try:
        asyncio.run(run())
    finally:
        server.stop()
