"""Chat models bound to a collection, so plain clients get RAG chat by model name alone.

Kept in the shared Redis: `herd:rag:bound` hash, a model's display name -> collection name.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from router.catalog.store import connect

BOUND = "herd:rag:bound"


class Bindings:
    def __init__(self, redis: Redis) -> None:
        self._redis: Any = redis  # redis-py's async stubs type replies loosely

    @classmethod
    def from_url(cls, url: str) -> Bindings:
        return cls(connect(url))

    async def bind(self, model: str, collection: str) -> None:
        await self._redis.hset(BOUND, model, collection)

    async def unbind(self, model: str) -> bool:
        return bool(await self._redis.hdel(BOUND, model))

    async def collection_of(self, model: str) -> str | None:
        found: str | None = await self._redis.hget(BOUND, model)
        return found

    async def all(self) -> dict[str, str]:
        bound: dict[str, str] = await self._redis.hgetall(BOUND)
        return bound
