"""Vector collections on Qdrant: the `VectorStore` interface and its one implementation.

`QdrantVectors` wraps a `qdrant_client.AsyncQdrantClient`, which speaks the same API to a
Qdrant server (`HERD_QDRANT_URL`) and to its embedded local mode (a directory that one process
owns: the vector actor in router/rag/actor.py). Each collection records in its Qdrant metadata
the embedding model that made its vectors; every point's payload holds the chunk's text.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qdrant_client import AsyncQdrantClient, models

MODEL_KEY = "embedding_model"


@dataclass(frozen=True, slots=True)
class Passage:
    """One chunk to store: its text, where it came from, and its vector."""

    text: str
    filename: str
    file_id: str
    index: int
    vector: tuple[float, ...]

    @property
    def point_id(self) -> str:
        """Derived from the text alone, so uploading a file again replaces its points."""
        return str(uuid.UUID(bytes=hashlib.sha256(self.text.encode()).digest()[:16]))


@dataclass(frozen=True, slots=True)
class Hit:
    text: str
    filename: str
    index: int
    score: float


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    embedding_model: str
    dimensions: int
    points: int


class VectorStore(Protocol):
    """Named collections of passages. Every method may be called from any router replica."""

    async def info(self, name: str) -> CollectionInfo | None: ...

    async def create(self, name: str, embedding_model: str, dimensions: int) -> CollectionInfo:
        """Create `name` bound to `embedding_model`; an existing collection is returned as it is."""
        ...

    async def upsert(self, name: str, passages: Sequence[Passage]) -> int:
        """Add or replace passages (by `point_id`); returns the collection's size after."""
        ...

    async def search(self, name: str, vector: Sequence[float], limit: int, threshold: float) -> list[Hit]:
        """At most `limit` passages with cosine similarity >= `threshold`, best first."""
        ...

    async def collections(self) -> list[CollectionInfo]: ...

    async def delete(self, name: str) -> bool:
        """False when there was no such collection."""
        ...


class QdrantVectors:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client

    async def info(self, name: str) -> CollectionInfo | None:
        if not await self._client.collection_exists(name):
            return None
        described = await self._client.get_collection(name)
        params = described.config.params.vectors
        size = params.size if isinstance(params, models.VectorParams) else 0
        metadata: dict[str, Any] = described.config.metadata or {}
        count = await self._client.count(name, exact=True)
        return CollectionInfo(name, str(metadata.get(MODEL_KEY, "")), size, count.count)

    async def create(self, name: str, embedding_model: str, dimensions: int) -> CollectionInfo:
        existing = await self.info(name)
        if existing is not None:
            return existing
        vectors = models.VectorParams(size=dimensions, distance=models.Distance.COSINE)
        try:
            await self._client.create_collection(name, vectors_config=vectors, metadata={MODEL_KEY: embedding_model})
        except ValueError:  # local mode: another replica created it first
            pass
        created = await self.info(name)
        assert created is not None
        return created

    async def upsert(self, name: str, passages: Sequence[Passage]) -> int:
        points = [models.PointStruct(id=p.point_id, vector=list(p.vector), payload=_payload(p)) for p in passages]
        if points:
            await self._client.upsert(name, points=points, wait=True)
        return (await self._client.count(name, exact=True)).count

    async def search(self, name: str, vector: Sequence[float], limit: int, threshold: float) -> list[Hit]:
        found = await self._client.query_points(
            name, query=list(vector), limit=limit, score_threshold=threshold, with_payload=True
        )
        return [_hit(point.payload or {}, point.score) for point in found.points]

    async def collections(self) -> list[CollectionInfo]:
        listed = await self._client.get_collections()
        infos = [await self.info(c.name) for c in listed.collections]
        return sorted((i for i in infos if i is not None), key=lambda i: i.name)

    async def delete(self, name: str) -> bool:
        if not await self._client.collection_exists(name):
            return False
        return bool(await self._client.delete_collection(name))

    async def close(self) -> None:
        await self._client.close()


def _payload(p: Passage) -> dict[str, Any]:
    return {"source": p.text, "filename": p.filename, "file_id": p.file_id, "index": p.index}


def _hit(payload: dict[str, Any], score: float) -> Hit:
    return Hit(str(payload.get("source", "")), str(payload.get("filename", "")), int(payload.get("index", 0)), score)
