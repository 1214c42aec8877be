"""Catalog records outlive the code that wrote them: versioned, migrated, parsed one at a time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import redis

from router.catalog.catalog import RECORD_VERSION, Catalog, parse_record
from router.catalog.store import MODELS, NAMES, VERSION, CatalogStore
from router.driver.redis_server import EmbeddedRedis
from tests.support import record, seed


def test_an_old_record_is_migrated_and_a_newer_one_refused() -> None:
    current = record("m:1")
    old = current.model_dump(mode="json")
    del old["schema_version"]
    old["path_of_model"] = old.pop("model_path")  # as if an upgrade had renamed the field
    rename = {0: lambda r: {**{k: v for k, v in r.items() if k != "path_of_model"}, "model_path": r["path_of_model"]}}
    assert parse_record(json.dumps(old), rename) == current
    newer = current.model_dump(mode="json") | {"schema_version": RECORD_VERSION + 1}
    with pytest.raises(ValueError, match="newer than this Herd"):
        parse_record(json.dumps(newer))


def test_a_record_that_does_not_parse_is_skipped_and_the_rest_serve(redis_url: str) -> None:
    seed(redis_url, [record("good:1")])
    client = redis.Redis.from_url(redis_url)
    client.hset(MODELS, "bad:1", json.dumps({"name": "bad:1", "unknown_field": 1}))
    client.hset(NAMES, "bad:1", "bad:1")
    client.incr(VERSION)
    client.close()

    async def run() -> None:
        catalog = Catalog(CatalogStore.from_url(redis_url))
        assert (await catalog.resolve("good:1")).name == "good:1"
        assert [r.name for r in await catalog.records()] == ["good:1"]
        assert list(catalog.unreadable) == ["bad:1"]

    asyncio.run(run())


def test_the_cached_catalog_serves_while_redis_is_down(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    seed(url, [record("m:1")])

    async def run() -> None:
        catalog = Catalog(CatalogStore.from_url(url))
        assert (await catalog.resolve("m:1")).name == "m:1"
        server.stop()
        assert (await catalog.resolve("m:1")).name == "m:1"  # from the copy it had
        with pytest.raises(redis.RedisError):
            await Catalog(CatalogStore.from_url(url)).resolve("m:1")  # a replica with no copy

    try:
        asyncio.run(run())
    finally:
        server.stop()
