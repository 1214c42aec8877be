"""The methods a worker replica serves to routers, as a Protocol.

Implemented by the real deployment (`workers.deployment.ModelWorker`), the tests' double
(`tests.support.FakeWorker`) and the benchmark's `bench.synthetic.SyntheticTokenSource`; the router
reaches them through Ray Serve handles (`router.dispatch.handles.WorkerHandle`).

Streaming and cancellation: `generate_to` sends the generation's event batches (one per engine
step, the last holding the one `Final`) to the router inbox at `inbox` over the event channel,
and returns when the generation ends; errors raise through Ray. Cancelling the call (the client
left, or its time limit passed) must abort the engine request.
"""

from __future__ import annotations

from typing import Any, Protocol

from workers.events import EmbedRequest, EmbedResult, GenerationRequest


class WorkerSurface(Protocol):
    async def generate_to(self, request: GenerationRequest, inbox: str) -> None: ...

    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    async def count_tokens(self, request: GenerationRequest) -> int:
        """The prompt's token count as the engine would see it (chat template and tools); generates nothing."""
        ...

    async def ping(self) -> bool: ...

    async def stats(self) -> dict[str, Any]: ...
