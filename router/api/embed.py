"""Embeddings in both protocols: Ollama `/api/embed` and legacy `/api/embeddings`, OpenAI `/v1/embeddings`.

Each request is one non-streaming handle call to the model's worker (`ModelWorker.embed`), which
embeds all inputs in one engine batch. Errors are raised before any byte is written, so they all
get a real status from the app-level handler.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from router.api import frames
from router.api.access import usage_of
from router.api.body import parse_json_body
from router.api.resolve import resolve_model
from router.catalog.catalog import Catalog, ModelRecord
from router.convert import embeddings
from router.dispatch.generation import Generations
from router.ids import new_request_id
from router.protocol import ollama, openai
from router.timing import added_ns, now_ns
from workers.events import EmbedRequest, EmbedResult

JSON = "application/json"


class EmbedApi:
    def __init__(self, catalog: Catalog, generations: Generations) -> None:
        self._catalog = catalog
        self._generations = generations

    async def ollama_embed(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(ollama.EmbedRequest, await request.body())
        record = await self._embedding_model(request, req.model)
        texts = embeddings.ollama_inputs(req.input)
        if not texts:
            empty: ollama.EmbedResponse = {"model": req.model, "embeddings": []}
            return _json(empty)
        dims = embeddings.ollama_dimensions(req.dimensions)
        embed = EmbedRequest(new_request_id(), tuple(texts), truncate=req.truncate is not False, dimensions=dims)
        result = await self._generations.embed(record, embed, req.keep_alive, usage_of(request))
        outside_worker = added_ns(started, result.worker_ns)
        total = result.worker_ns + outside_worker
        body = embeddings.ollama_embed_body(req.model, result.vectors, total, outside_worker, result.prompt_tokens)
        return _json(body, result, started)

    async def ollama_embeddings(self, request: Request) -> Response:
        """Legacy: one prompt, and (as in Ollama) the vector is not normalised."""
        started = now_ns()
        req = parse_json_body(ollama.EmbeddingsRequest, await request.body())
        record = await self._embedding_model(request, req.model)
        if not req.prompt:
            nothing: ollama.EmbeddingResponse = {"embedding": []}
            return _json(nothing)
        legacy = EmbedRequest(new_request_id(), (req.prompt,), truncate=True, normalize=False)
        result = await self._generations.embed(record, legacy, req.keep_alive, usage_of(request))
        body: ollama.EmbeddingResponse = {"embedding": list(result.vectors[0])}
        return _json(body, result, started)

    async def openai_embeddings(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(openai.EmbeddingRequest, await request.body())
        embeddings.openai_check(req.encoding_format, req.dimensions)
        record = await self._embedding_model(request, req.model)
        inputs = embeddings.openai_inputs(req.input)
        # OpenAI never truncates silently: an over-long input is a 400 (context_length_exceeded).
        embed = EmbedRequest(new_request_id(), tuple(inputs), truncate=False, dimensions=req.dimensions)
        result = await self._generations.embed(record, embed, usage=usage_of(request))
        body = embeddings.openai_body(req.model, result.vectors, req.encoding_format, result.prompt_tokens)
        return _json(body, result, started)

    async def _embedding_model(self, request: Request, requested: str) -> ModelRecord:
        record = await resolve_model(self._catalog, request, requested)
        record.require_embedding(requested)
        return record


def _json(
    body: ollama.EmbedResponse | ollama.EmbeddingResponse | openai.EmbeddingList,
    result: EmbedResult | None = None,
    started_ns: int = 0,
) -> Response:
    headers = frames.server_timing(added_ns(started_ns, result.worker_ns), result.worker_ns) if result else None
    return Response(frames.dumps(body), media_type=JSON, headers=headers)
