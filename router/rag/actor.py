"""The vector actor: one named Ray actor per cluster that owns Qdrant's local-mode directory.

Local mode locks its directory to one process, so every router replica reaches it through this
actor (`ActorVectors`, a `VectorStore`). With `HERD_QDRANT_URL` set, replicas talk to the Qdrant
server themselves (`open_vectors`) and no actor is started.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.rag.vectors import CollectionInfo, Hit, Passage, QdrantVectors, VectorStore

VECTORS_NAME = "herd-vectors"


class VectorActor:
    """Runs in its own process; its methods mirror `VectorStore`."""

    def __init__(self, path: str) -> None:
        from qdrant_client import AsyncQdrantClient

        Path(path).mkdir(parents=True, exist_ok=True)
        self._store = QdrantVectors(AsyncQdrantClient(path=path))

    async def info(self, name: str) -> CollectionInfo | None:
        return await self._store.info(name)

    async def create(self, name: str, embedding_model: str, dimensions: int) -> CollectionInfo:
        return await self._store.create(name, embedding_model, dimensions)

    async def upsert(self, name: str, passages: Sequence[Passage]) -> int:
        return await self._store.upsert(name, passages)

    async def search(self, name: str, vector: Sequence[float], limit: int, threshold: float) -> list[Hit]:
        return await self._store.search(name, vector, limit, threshold)

    async def collections(self) -> list[CollectionInfo]:
        return await self._store.collections()

    async def delete(self, name: str) -> bool:
        return await self._store.delete(name)


class ActorVectors:
    """`VectorStore` over the vector actor's handle (one Ray call per method)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def info(self, name: str) -> CollectionInfo | None:
        info: CollectionInfo | None = await self._handle.info.remote(name)
        return info

    async def create(self, name: str, embedding_model: str, dimensions: int) -> CollectionInfo:
        info: CollectionInfo = await self._handle.create.remote(name, embedding_model, dimensions)
        return info

    async def upsert(self, name: str, passages: Sequence[Passage]) -> int:
        size: int = await self._handle.upsert.remote(name, list(passages))
        return size

    async def search(self, name: str, vector: Sequence[float], limit: int, threshold: float) -> list[Hit]:
        hits: list[Hit] = await self._handle.search.remote(name, list(vector), limit, threshold)
        return hits

    async def collections(self) -> list[CollectionInfo]:
        infos: list[CollectionInfo] = await self._handle.collections.remote()
        return infos

    async def delete(self, name: str) -> bool:
        deleted: bool = await self._handle.delete.remote(name)
        return deleted


def open_vectors(qdrant_url: str | None, actor: Any | None) -> VectorStore:
    """A router replica's vector store: the Qdrant server at `qdrant_url`, else the actor."""
    if qdrant_url:
        from qdrant_client import AsyncQdrantClient

        return QdrantVectors(AsyncQdrantClient(url=qdrant_url))
    if actor is None:
        raise ValueError("no Qdrant URL and no vector actor")
    return ActorVectors(actor)


def start_actor(data_dir: Path) -> Any:
    """The driver's call: the named actor, pinned to this node, where the data directory is."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(num_cpus=0, max_restarts=-1)(VectorActor)
    return actor.options(name=VECTORS_NAME, scheduling_strategy=here).remote(str(data_dir / "qdrant"))
