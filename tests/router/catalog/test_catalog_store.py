"""The catalog in a real Redis: names, aliases, and two replicas' views of one store."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from router.catalog.catalog import Catalog, LoadedModel
from router.catalog.store import CatalogStore
from router.dispatch.leases import Leases
from router.driver.redis_server import EmbeddedRedis
from router.errors import ModelNotFound
from tests.support import record, seed


def test_a_change_through_one_replica_is_seen_by_another(redis_url: str) -> None:
    async def run() -> None:
        one, two = Catalog(CatalogStore.from_url(redis_url)), Catalog(CatalogStore.from_url(redis_url))
        await one.put(record("llama3:8b", aliases=("llama3:latest",)))
        assert (await two.resolve("LLAMA3")).name == "llama3:8b"  # alias, case-insensitive, default tag
        assert (await two.resolve("registry.ollama.ai/library/llama3:8b")).name == "llama3:8b"
        await two.put(record("copy:1").model_copy(update={"modified_ns": 1}))
        assert [r.name for r in await one.records()] == ["copy:1", "llama3:8b"]  # newest first

        removed = await one.remove("llama3:latest")  # an alias: the model stays
        assert removed.name == "llama3:8b"
        assert (await two.resolve("llama3:8b")).name == "llama3:8b"
        with pytest.raises(ModelNotFound):
            await two.resolve("llama3")
        await one.put(record("llama3:8b", aliases=("llama3:latest",)))
        await one.remove("llama3:8b")  # the model: its aliases go with it
        for name in ("llama3:8b", "llama3"):
            with pytest.raises(ModelNotFound):
                await two.resolve(name)
        with pytest.raises(ModelNotFound):
            await one.remove("llama3:8b")

    asyncio.run(run())


def test_replacing_a_record_drops_its_old_aliases_and_takes_over_names(redis_url: str) -> None:
    async def run() -> None:
        catalog = Catalog(CatalogStore.from_url(redis_url))
        await catalog.put(record("a:1", aliases=("a:old",)))
        await catalog.put(record("b:1", aliases=("shared:1",)))
        await catalog.put(record("a:1", aliases=("shared:1",), system="new"))
        assert (await catalog.find("a:old")) is None
        assert (await catalog.resolve("shared:1")).name == "a:1"
        assert (await catalog.resolve("a:1")).system == "new"
        assert (await catalog.resolve("b:1")).name == "b:1"

    asyncio.run(run())


def test_in_flight_counts_sum_over_routers_and_reset_at_start(redis_url: str) -> None:
    async def run() -> None:
        store = CatalogStore.from_url(redis_url)
        await store.set_loaded("m--1", LoadedModel(name="m:1").model_dump_json())
        assert await store.begin("router-a", "m--1") is True
        assert await store.begin("router-b", "m--1") is True
        assert await store.begin("router-b", "other") is False  # not loaded
        assert await store.busy() == {"m--1": 2, "other": 1}
        await store.end("router-a", "m--1", 123)
        assert (await store.busy())["m--1"] == 1 and (await store.expiries())["m--1"] == 123
        await store.end("router-b", "m--1", None)
        assert (await store.expiries())["m--1"] is None
        await store.reset_runtime()
        assert await store.loaded() == {} and await store.busy() == {} and await store.expiries() == {}

    asyncio.run(run())


def test_more_concurrent_requests_than_connections_wait_for_one(redis_url: str) -> None:
    """300 request starts (catalog lookup, lease) over a pool of 8 connections: all succeed."""
    seed(redis_url, [record("m:1")])

    async def run() -> None:
        store = CatalogStore.from_url(redis_url, max_connections=8)
        catalog, leases = Catalog(store), Leases(store, None, "router-a")

        async def start() -> None:
            (await leases.acquire(await catalog.resolve("m:1"))).release()

        await asyncio.gather(*(start() for _ in range(300)))
        await asyncio.sleep(0.2)  # lease ends are written in the background
        assert (await store.busy())["m--1"] == 0
        await store.close()

    asyncio.run(run())


def test_a_burst_of_request_starts_counts_each_once_and_answers_each_its_own(redis_url: str) -> None:
    """400 begins on two deployments (one loaded) at once, on one connection: each counted once, each
    told whether its own deployment is loaded; then the ends of all of them bring the counts to 0."""

    async def run() -> None:
        store = CatalogStore.from_url(redis_url, max_connections=1)
        await store.set_loaded("m--1", LoadedModel(name="m:1").model_dump_json())
        deployments = ["m--1" if i % 3 else "cold" for i in range(400)]
        answers = await asyncio.gather(*(store.begin("router-a", dep) for dep in deployments))
        assert answers == [dep == "m--1" for dep in deployments]
        assert await store.busy() == {"m--1": 266, "cold": 134}
        await asyncio.gather(*(store.end("router-a", dep, 7) for dep in deployments))
        assert await store.busy() == {"m--1": 0, "cold": 0} and (await store.expiries())["m--1"] == 7
        await store.close()

    asyncio.run(run())


def test_a_lookup_after_a_change_sees_it_even_while_a_burst_is_reading(redis_url: str) -> None:
    """Read-after-write across replicas holds under group commit: lookups that start after another
    replica's change see it, though lookups from before it are still in flight."""
    seed(redis_url, [record("m:1")])

    async def run() -> None:
        store = CatalogStore.from_url(redis_url)
        reader, writer = Catalog(store), Catalog(CatalogStore.from_url(redis_url))
        before = [asyncio.create_task(reader.resolve("m:1")) for _ in range(200)]
        await asyncio.sleep(0)
        await writer.put(record("new:1"))
        after = await asyncio.gather(*(reader.resolve("new:1") for _ in range(200)))
        assert {r.name for r in after} == {"new:1"} and len(await asyncio.gather(*before)) == 200
        await store.close()

    asyncio.run(run())


def test_pooled_connections_survive_a_redis_restart(tmp_path: Path) -> None:
    """kill -9 and a restart on the same port: requests on connections pooled before it succeed."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    seed(url, [record("m:1")])

    async def run() -> None:
        store = CatalogStore.from_url(url, max_connections=4)
        await asyncio.gather(*(Catalog(store).resolve("m:1") for _ in range(8)))  # fills the pool
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGKILL)
        server._proc.wait()
        server.start()
        results = await asyncio.gather(*(store.version() for _ in range(8)))
        assert len(results) == 8 and await Catalog(store).resolve("m:1")
        await store.close()

    try:
        asyncio.run(run())
    finally:
        server.stop()
