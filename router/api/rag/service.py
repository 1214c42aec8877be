"""What the RAG routes do, in the router replica: chunk, embed (on the embedding model's worker),
store and search (through the `VectorStore`), and merge passages into chats.

A collection is bound to the embedding model that made it (its Qdrant metadata): requests may
name that model, or a chat model (which means "the collection's model"); another embedding model
would compare vectors from different spaces, so it is a 400.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.catalog.catalog import Catalog, ModelRecord
from router.dispatch.generation import Generations
from router.dispatch.metrics import RouterMetrics
from router.errors import BadRequest, NotFound
from router.ids import new_request_id
from router.rag import chunking, context
from router.rag.bindings import Bindings
from router.rag.files import FileStore, StoredFile
from router.rag.tokens import Tokenizers
from router.rag.vectors import CollectionInfo, Hit, Passage, VectorStore
from router.settings import Settings
from workers.events import EmbedRequest, EmbedResult

# Inputs per embedding call while ingesting: one engine batch each, and a bounded message size.
EMBED_BATCH = 128


@dataclass(frozen=True, slots=True)
class RagStores:
    """Where RAG state lives: vectors in Qdrant, uploads and model bindings in the shared Redis."""

    vectors: VectorStore
    files: FileStore
    bindings: Bindings


@dataclass(frozen=True, slots=True)
class Ingested:
    record: ModelRecord
    chunks: list[str]
    vectors: list[tuple[float, ...]]
    prompt_tokens: int
    points: int


class Rag:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        generations: Generations,
        stores: RagStores,
        tokenizers: Tokenizers,
        metrics: RouterMetrics,
    ) -> None:
        self.settings = settings
        self.vectors = stores.vectors
        self.files = stores.files
        self.bindings = stores.bindings
        self._catalog = catalog
        self._generations = generations
        self._tokenizers = tokenizers
        self._metrics = metrics

    async def bound_model(
        self, collection: str, requested: str | None, *, chat_ok: bool
    ) -> tuple[ModelRecord, CollectionInfo | None]:
        """The embedding model for `collection`, checked against the one it was made with."""
        info = await self.vectors.info(collection)
        record = await self._catalog.resolve(requested) if requested else None
        if record is not None and "embedding" not in record.capabilities:
            if not chat_ok:
                record.require_embedding(requested or "")
            record = None
        if record is None:
            record = await self._catalog.resolve(info.embedding_model) if info else await self._default_embedding()
        if info is not None and info.embedding_model != record.name:
            raise BadRequest(
                f"collection '{collection}' holds vectors of '{info.embedding_model}', not of '{requested}'",
                param="model",
            )
        return record, info

    async def _default_embedding(self) -> ModelRecord:
        # The oldest: a copy or a newly pulled embedding model does not change the default.
        for record in reversed(await self._catalog.records()):
            if "embedding" in record.capabilities:
                return record
        raise BadRequest("no embedding model is served", param="model")

    async def chunk(self, stored: StoredFile, record: ModelRecord, capacity: int | None) -> list[str]:
        # [CLS] and [SEP] (or the model's own specials) take two of the context's tokens.
        fit = max(min(capacity or self.settings.rag_chunk_capacity, record.context_length - 2), 1)
        tokenizer = await self._tokenizers.get(record)
        return await asyncio.to_thread(chunking.chunk, stored.text, tokenizer, fit, markdown=stored.markdown)

    async def ingest(self, collection: str, stored: StoredFile, model: str | None, capacity: int | None) -> Ingested:
        """Chunk, embed and store a file; the same file again replaces its own points."""
        record, _ = await self.bound_model(collection, model, chat_ok=False)
        chunks = await self.chunk(stored, record, capacity)
        if not chunks:
            raise BadRequest(f"file '{stored.filename}' has no text", param="file")
        vectors: list[tuple[float, ...]] = []
        prompt_tokens = points = 0
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            result = await self.embed(record, batch, truncate=False)
            if start == 0:
                await self.vectors.create(collection, record.name, len(result.vectors[0]))
            passages = [
                Passage(text, stored.filename, stored.id, start + i, vector)
                for i, (text, vector) in enumerate(zip(batch, result.vectors, strict=True))
            ]
            points = await self.vectors.upsert(collection, passages)
            vectors += result.vectors
            prompt_tokens += result.prompt_tokens
        self._metrics.observe_collection(collection, points, len(chunks))
        return Ingested(record, chunks, vectors, prompt_tokens, points)

    async def retrieve(
        self, collection: str, model: str | None, query: str, limit: int | None, threshold: float | None
    ) -> list[Hit]:
        started = time.perf_counter()
        record, info = await self.bound_model(collection, model, chat_ok=True)
        if info is None:
            raise NotFound(f"collection '{collection}' not found")
        if not query.strip():
            raise BadRequest("there is no user message to retrieve for", param="messages")
        vector = (await self.embed(record, [query], truncate=True)).vectors[0]
        hits = await self.vectors.search(
            collection,
            vector,
            limit or self.settings.rag_limit,
            self.settings.rag_score_threshold if threshold is None else threshold,
        )
        self._metrics.observe_retrieval(collection, time.perf_counter() - started)
        return hits

    async def augment(
        self, messages: list[dict[str, Any]], collection: str, policy: str | None, limit: int | None,
        threshold: float | None,
    ) -> tuple[list[dict[str, Any]], list[Hit]]:  # fmt: skip
        """A chat's messages with the passages for its last user message merged in."""
        hits = await self.retrieve(collection, None, context.last_user_text(messages), limit, threshold)
        prompt = self.settings.rag_prompt if self.settings.rag_prompt is not None else context.DEFAULT_PROMPT
        rag_policy: Any = policy or self.settings.rag_policy
        return context.merge(messages, [h.text for h in hits], rag_policy, prompt), hits

    async def embed(self, record: ModelRecord, texts: Sequence[str], *, truncate: bool) -> EmbedResult:
        return await self._generations.embed(record, EmbedRequest(new_request_id(), tuple(texts), truncate=truncate))

    async def similarities(self, requested: str, query: str, documents: Sequence[str]) -> tuple[list[float], int]:
        """Cosine similarity of `query` with each document (vectors come back normalised), and tokens used."""
        record = await self._catalog.resolve(requested)
        record.require_embedding(requested)
        result = await self.embed(record, [query, *documents], truncate=True)
        q, *docs = result.vectors
        return [sum(a * b for a, b in zip(q, d, strict=True)) for d in docs], result.prompt_tokens

    async def pair_scores(self, requested: str, pairs: Sequence[tuple[str, str]]) -> tuple[list[float], int]:
        record = await self._catalog.resolve(requested)
        record.require_embedding(requested)
        texts = list(dict.fromkeys(t for pair in pairs for t in pair))
        result = await self.embed(record, texts, truncate=True)
        by_text = dict(zip(texts, result.vectors, strict=True))
        scores = [sum(a * b for a, b in zip(by_text[x], by_text[y], strict=True)) for x, y in pairs]
        return scores, result.prompt_tokens

    async def collections(self) -> list[CollectionInfo]:
        infos = await self.vectors.collections()
        for info in infos:
            self._metrics.observe_collection(info.name, info.points)
        return infos

    async def delete(self, collection: str) -> None:
        if not await self.vectors.delete(collection):
            raise NotFound(f"collection '{collection}' not found")
        for model, bound in (await self.bindings.all()).items():
            if bound == collection:
                await self.bindings.unbind(model)
        self._metrics.forget_collection(collection)

    async def bind(self, requested: str, collection: str) -> str:
        """Bind a chat model to a collection: its chats are RAG chats from now on."""
        record = await self._catalog.resolve(requested)
        record.require_generation(requested, "chat")
        if await self.vectors.info(collection) is None:
            raise NotFound(f"collection '{collection}' not found")
        await self.bindings.bind(record.name, collection)
        return record.name

    async def collection_for(self, requested: str, collection: str | None) -> str | None:
        """The request's own `collection`, else the one its model is bound to (None: a plain chat)."""
        if collection is not None:
            return collection
        record = await self._catalog.find(requested) if requested else None
        return await self.bindings.collection_of(record.name) if record else None
