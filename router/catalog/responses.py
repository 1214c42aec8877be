"""Stored responses (`store: true`) in the shared Redis, so `previous_response_id` works on every
router replica and after a restart (the embedded Redis persists in the data directory).

Key `herd:responses:<response id>` holds one JSON object: the response body as `GET` returns it,
and `conversation`, the chat messages a follow-up continues from (the stored response's own
history, its input and its output; never its `instructions`, which OpenAI does not carry over).
Every key has the TTL it was stored with; nothing else expires them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from router.protocol.responses import Response

PREFIX = "herd:responses:"


@dataclass(frozen=True)
class Stored:
    response: Response
    conversation: list[dict[str, Any]]


class ResponseStore:
    def __init__(self, redis: Any, ttl_s: int) -> None:
        # redis-py's async stubs type replies as `Awaitable[...] | ...` unions; Any keeps this readable.
        self._redis = redis
        self._ttl_s = ttl_s

    async def put(self, response: Response, conversation: list[dict[str, Any]]) -> None:
        value = json.dumps({"response": response, "conversation": conversation})
        await self._redis.set(PREFIX + response["id"], value, ex=self._ttl_s)

    async def get(self, response_id: str) -> Stored | None:
        raw = await self._redis.get(PREFIX + response_id)
        if raw is None:
            return None
        value = json.loads(raw)
        return Stored(value["response"], value["conversation"])

    async def delete(self, response_id: str) -> bool:
        return bool(await self._redis.delete(PREFIX + response_id))
