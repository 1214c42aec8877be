"""A real Redis server for the whole test session (the embedded default's binary), never a fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from router.driver.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """An empty database on the session's server."""
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server
