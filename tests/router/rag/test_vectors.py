"""`QdrantVectors` on real Qdrant local mode in a temporary directory, and the actor adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from qdrant_client import AsyncQdrantClient

from router.rag.actor import ActorVectors, VectorActor
from router.rag.vectors import Passage, QdrantVectors

NORTH, EAST, NORTH_EAST = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.7071, 0.7071, 0.0)


def passages(*vectors: tuple[float, ...], filename: str = "a.txt") -> list[Passage]:
    return [Passage(f"text {i} {v}", filename, "file_1", i, v) for i, v in enumerate(vectors)]


def run(work: Callable[[QdrantVectors], Awaitable[Any]], path: Path) -> Any:
    async def go() -> Any:
        store = QdrantVectors(AsyncQdrantClient(path=str(path)))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def test_a_collection_is_bound_to_the_model_that_made_it(tmp_path: Path) -> None:
    async def work(store: QdrantVectors) -> None:
        assert await store.info("docs") is None
        created = await store.create("docs", "all-minilm:l6-v2", 3)
        assert (created.name, created.embedding_model, created.dimensions, created.points) == (
            "docs", "all-minilm:l6-v2", 3, 0
        )  # fmt: skip
        again = await store.create("docs", "other:latest", 7)
        assert again == created  # an existing collection keeps its model and size

    run(work, tmp_path)


def test_upsert_is_idempotent_and_search_ranks_above_the_threshold(tmp_path: Path) -> None:
    async def work(store: QdrantVectors) -> None:
        await store.create("docs", "m", 3)
        assert await store.upsert("docs", passages(NORTH, EAST, NORTH_EAST)) == 3
        assert await store.upsert("docs", passages(NORTH, EAST, NORTH_EAST)) == 3
        hits = await store.search("docs", (0.9, 0.1, 0.0), limit=5, threshold=0.5)
        assert [h.index for h in hits] == [0, 2]
        assert hits[0].score > hits[1].score >= 0.5
        assert hits[0].text == passages(NORTH)[0].text and hits[0].filename == "a.txt"
        assert len(await store.search("docs", (0.9, 0.1, 0.0), limit=1, threshold=-1.0)) == 1

    run(work, tmp_path)


def test_collections_persist_and_delete(tmp_path: Path) -> None:
    async def fill(store: QdrantVectors) -> None:
        await store.create("b", "m", 3)
        await store.create("a", "m", 3)
        await store.upsert("b", passages(NORTH, EAST))

    async def reopen(store: QdrantVectors) -> tuple[list[Any], bool, bool, list[str]]:
        listed = await store.collections()
        deleted, missing = await store.delete("a"), await store.delete("a")
        return listed, deleted, missing, [c.name for c in await store.collections()]

    run(fill, tmp_path)
    listed, deleted, missing, after = run(reopen, tmp_path)
    assert [(c.name, c.points) for c in listed] == [("a", 0), ("b", 2)]
    assert (deleted, missing, after) == (True, False, ["b"])


class _Method:
    def __init__(self, method: Callable[..., Awaitable[Any]]) -> None:
        self._method = method

    def remote(self, *args: Any) -> Awaitable[Any]:
        return self._method(*args)


class _Handle:
    """What `ActorVectors` sees of a Ray actor handle: `handle.method.remote(...)` is awaitable."""

    def __init__(self, actor: VectorActor) -> None:
        self._actor = actor

    def __getattr__(self, name: str) -> _Method:
        return _Method(getattr(self._actor, name))


def test_the_actor_adapter_reaches_the_same_store(tmp_path: Path) -> None:
    async def work() -> tuple[Any, ...]:
        vectors = ActorVectors(_Handle(VectorActor(str(tmp_path / "qdrant"))))
        await vectors.create("docs", "m", 3)
        size = await vectors.upsert("docs", passages(NORTH, EAST))
        hits = await vectors.search("docs", NORTH, 5, 0.9)
        return size, [h.index for h in hits], await vectors.info("docs"), await vectors.delete("docs")

    size, ranked, info, deleted = asyncio.run(work())
    assert (size, ranked, deleted) == (2, [0], True)
    assert info is not None and info.points == 2
