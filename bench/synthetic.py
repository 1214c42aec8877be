"""SyntheticTokenSource: a benchmark instrument that stands in for a vLLM worker. Never served by `herd serve`.

It answers the router's worker calls (`generate_to`, `stats`) with one token every `interval_s` per
request, on a fixed schedule, with no model behind it, so that `bench/router_only.py` can load
the router alone with thousands of streams a 2-core machine's engine could never produce. Each
token's text is the wall-clock time it left this process, which lets the client measure what
the router and its hops add to every chunk.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from workers.channel import EventSender
from workers.events import Delta, EmbedRequest, EmbedResult, Event, Final, GenerationRequest, InvalidRequest

DEFAULT_TOKENS = 16


class SyntheticTokenSource:
    """Serves `workers.surface.WorkerSurface`, as the real worker deployment does."""

    def __init__(self, interval_s: float, channel_secret: bytes) -> None:
        self._interval_s = interval_s
        self._open = 0
        self._sender = EventSender(channel_secret)

    async def generate_to(self, request: GenerationRequest, inbox: str) -> None:
        """The worker's call, as in `workers.deployment.ModelWorker`."""
        await self._sender.forward(inbox, request.request_id, self.generate(request))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[Event]]:
        tokens = request.sampling.max_tokens or DEFAULT_TOKENS
        loop = asyncio.get_running_loop()
        started_ns = time.monotonic_ns()
        start = loop.time()
        self._open += 1
        try:
            for i in range(1, tokens + 1):
                # Absolute deadlines: this process's own lateness does not accumulate into later gaps.
                await asyncio.sleep(max(start + i * self._interval_s - loop.time(), 0))
                batch: list[Event] = [Delta(f"{time.time():.6f} ", 1)]
                if i == tokens:
                    worker_ns = time.monotonic_ns() - started_ns
                    batch.append(
                        Final("length", 1, tokens, 1, max(worker_ns - int(self._interval_s * 1e9), 1), worker_ns)
                    )
                yield batch
        finally:
            self._open -= 1

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        raise InvalidRequest("the synthetic token source does not embed")

    async def count_tokens(self, request: GenerationRequest) -> int:
        raise InvalidRequest("the synthetic token source does not tokenize")

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, Any]:
        return {"unfinished": self._open, "pid": os.getpid()}
