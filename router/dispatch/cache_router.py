"""The `cache-aware` routing policy (router/dispatch/affinity.py) as a Ray Serve request router.

Serve builds a request router inside each process that holds a handle to the deployment, one per
deployment: every router replica keeps its own index for each model it serves, and nothing is
shared between models or processes (affinity.py says how routers without an entry still agree).
Serve imports this class by its dotted path (workers/deployment.py names it), so it lives on the
router side, where the handles are.
"""

from __future__ import annotations

from typing import Any

from ray.serve.request_router import PendingRequest, ReplicaID, RequestRouter, RunningReplica

from router.dispatch.affinity import (
    BLOCK_CHARS,
    INDEX_BLOCKS,
    RATIO,
    SLACK,
    LoadBound,
    PrefixIndex,
    block_hashes,
    prompt_text,
    rank,
)
from workers.events import GenerationRequest

# The one worker call whose prompt fills the engine's KV cache; count_tokens, embed, stats and
# ping only need a replica that answers.
GENERATE = "generate_to"


def generation_of(pending: PendingRequest | None) -> GenerationRequest | None:
    """The generation request a handle call carries, if it is a generation."""
    if pending is None or pending.metadata.call_method != GENERATE:
        return None
    return next((a for a in pending.args if isinstance(a, GenerationRequest)), None)


class CacheAwareRouter(RequestRouter):
    """Longest cached prefix unless its replica is overloaded, then least loaded (see affinity.py)."""

    def initialize_state(
        self,
        block_chars: int = BLOCK_CHARS,
        index_blocks: int = INDEX_BLOCKS,
        slack: int = SLACK,
        ratio: float = RATIO,
        **_: Any,
    ) -> None:
        self._block_chars = block_chars
        self._index = PrefixIndex(index_blocks)
        self._bound = LoadBound(slack, ratio)

    async def choose_replicas(
        self, candidate_replicas: list[RunningReplica], pending_request: PendingRequest | None = None
    ) -> list[list[RunningReplica]]:
        loads = await self._loads(candidate_replicas)
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        request = generation_of(pending_request)
        hashes = block_hashes(prompt_text(request), self._block_chars) if request is not None else ()
        ranked = [by_id[r] for r in rank(hashes, loads, self._index, self._bound)]
        unknown = [r for r in candidate_replicas if r.replica_id.unique_id not in loads]
        # Serve takes the first rank whose replica accepts; a full replica turns the request down
        # and the next rank is tried, so every candidate stays reachable.
        return [[r] for r in ranked] + ([unknown] if unknown else [])

    async def _loads(self, replicas: list[RunningReplica]) -> dict[str, int]:
        """In-flight requests per replica: Serve's cache (updated on every send, answer and end),
        probing the replicas it has no fresh entry for."""
        loads: dict[str, int] = {}
        missing: list[RunningReplica] = []
        for r in replicas:
            n = self._replica_queue_len_cache.get(r.replica_id) if self._use_replica_queue_len_cache else None
            if n is None:
                missing.append(r)
            else:
                loads[r.replica_id.unique_id] = n
        if missing:
            for r, n in await self._probe_queue_lens(missing, 0):
                if n is not None:
                    loads[r.replica_id.unique_id] = n
        return loads

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        request = generation_of(pending_request)
        if request is not None:
            self._index.record(replica_id.unique_id, block_hashes(prompt_text(request), self._block_chars))

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        self._index.retain(r.replica_id.unique_id for r in replicas)

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._index.retain(r.unique_id for r in self._replica_id_set)
