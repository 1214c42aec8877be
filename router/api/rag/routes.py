"""LlamaEdge's RAG API (`/v1/files`, `/v1/chunks`, `/v1/create/rag`, `/v1/retrieve`, `/v1/info`),
RAG chat on `/v1/chat/completions` and `/api/chat`, `/v1/rerank`, `/v1/score`, and Herd's own
`/herd/collections`.

Every error is raised before the first byte, so the app's error handler gives it a real status.
A RAG chat answer names its sources: the `X-Herd-Sources` header (streaming or not) and, when
not streaming, a `sources` field in the body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from router.api import frames
from router.api.body import parse_json_body
from router.api.ollama.routes import OllamaApi
from router.api.openai.routes import OpenAIApi, text_content
from router.api.rag.service import Rag
from router.catalog.catalog import Catalog, ModelRecord
from router.convert import embeddings
from router.errors import BadRequest, NotFound, PayloadTooLarge
from router.ids import openai_id
from router.protocol import llamaedge
from router.protocol.ollama import ChatRequest, Message
from router.protocol.openai import ChatCompletionRequest, ChatMessage
from router.rag.files import StoredFile, decode_text
from router.rag.vectors import Hit
from router.timing import now_ns

SOURCES_HEADER = "X-Herd-Sources"
# Multipart framing around the file: boundaries, part headers, small form fields.
FORM_OVERHEAD = 64 * 1024


class RagApi:
    def __init__(self, rag: Rag, catalog: Catalog, openai: OpenAIApi, ollama: OllamaApi) -> None:
        self._rag = rag
        self._files = rag.files
        self._catalog = catalog
        self._openai = openai
        self._ollama = ollama

    async def upload(self, request: Request) -> Response:
        stored, _ = await self._receive(request)
        return JSONResponse(llamaedge.file_object(stored.id, stored.size, stored.created_at, stored.filename))

    async def chunks(self, request: Request) -> Response:
        req = parse_json_body(llamaedge.ChunksRequest, await request.body())
        stored = await self._files.get(req.id)
        if stored.filename != req.filename:
            raise BadRequest(f"file '{req.id}' is named '{stored.filename}', not '{req.filename}'", param="filename")
        record, _ = await self._rag.bound_model(req.collection, req.model, chat_ok=False)
        chunks = await self._rag.chunk(stored, record, req.chunk_capacity)
        return JSONResponse({"id": stored.id, "filename": stored.filename, "chunks": chunks})

    async def create_rag(self, request: Request) -> Response:
        """Files + chunks + embeddings + store in one step; answers the embeddings, as LlamaEdge does."""
        stored, form = await self._receive(request)
        collection = _form_collection(form.get("collection"))
        done = await self._rag.ingest(collection, stored, form.get("model"), _form_capacity(form.get("chunk_capacity")))
        body: dict[str, Any] = dict(embeddings.openai_body(done.record.name, done.vectors, "float", done.prompt_tokens))
        # Herd extensions: where the chunks went and how big the collection is now.
        body |= {"collection": collection, "file": llamaedge.file_object(stored.id, stored.size, stored.created_at,
                 stored.filename), "chunks": len(done.chunks), "points": done.points}  # fmt: skip
        return JSONResponse(body)

    async def retrieve(self, request: Request) -> Response:
        req = parse_json_body(llamaedge.RetrieveRequest, await request.body())
        request.state.model = req.model
        query = _last_user(req.messages)
        hits = await self._rag.retrieve(req.collection, req.model, query, req.limit, req.score_threshold)
        limit = req.limit or self._rag.settings.rag_limit
        threshold = self._rag.settings.rag_score_threshold if req.score_threshold is None else req.score_threshold
        points = [{"source": h.text, "score": h.score, "filename": h.filename} for h in hits]
        return JSONResponse(llamaedge.points_body(points, limit, threshold))

    async def info(self, request: Request) -> Response:
        settings = self._rag.settings
        models = [
            {"name": r.name, "type": _kind(r), "ctx_size": r.context_length} for r in await self._catalog.records()
        ]
        qdrant = {
            "url": settings.qdrant_url or f"local:{settings.data_dir / 'qdrant'}",
            "collection_name": llamaedge.DEFAULT_COLLECTION,
            "limit": settings.rag_limit,
            "score_threshold": settings.rag_score_threshold,
        }
        return JSONResponse({"version": metadata.version("herd"), "models": models, "qdrant_config": qdrant})

    async def openai_chat(self, request: Request) -> Response:
        started = now_ns()
        raw = await request.body()
        req = parse_json_body(ChatCompletionRequest, raw)
        # Only the text of one message changes; tool calls and other fields stay as sent.
        messages = [m.model_dump(exclude_none=True) | {"content": text_content(m.content)} for m in req.messages]
        merged, hits = await self._augment(req.model, raw, messages)
        if merged is None:
            return await self._openai.chat(request, req, started)
        req = req.model_copy(update={"messages": [ChatMessage.model_validate(m) for m in merged]})
        return _with_sources(await self._openai.chat(request, req, started), hits)

    async def ollama_chat(self, request: Request) -> Response:
        started = now_ns()
        raw = await request.body()
        req = parse_json_body(ChatRequest, raw)
        messages = [m.model_dump(exclude_none=True) for m in req.messages]
        merged, hits = await self._augment(req.model, raw, messages) if messages else (None, [])
        if merged is None:  # an empty chat loads the model (Ollama): nothing to retrieve for
            return await self._ollama.chat_request(request, req, started)
        req = req.model_copy(update={"messages": [Message.model_validate(m) for m in merged]})
        return _with_sources(await self._ollama.chat_request(request, req, started), hits)

    async def _augment(
        self, model: str, raw: bytes, messages: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]] | None, list[Hit]]:
        """The messages with passages merged in; None when the chat is not a RAG chat."""
        rag = parse_json_body(llamaedge.RagFields, raw)
        collection = await self._rag.collection_for(model, rag.collection)
        if collection is None:
            return None, []
        return await self._rag.augment(messages, collection, rag.rag_policy, rag.rag_limit, rag.rag_score_threshold)

    async def rerank(self, request: Request) -> Response:
        req = parse_json_body(llamaedge.RerankRequest, await request.body())
        request.state.model = req.model
        scores, tokens = await self._rag.similarities(req.model, req.query, req.documents)
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: req.top_n or None]
        results = [
            {"index": i, "document": {"text": req.documents[i]} if req.return_documents else None,
             "relevance_score": scores[i]}
            for i in ranked
        ]  # fmt: skip
        body = {"id": openai_id("rerank-"), "model": req.model, "usage": {"total_tokens": tokens}}
        return JSONResponse(body | {"results": results})

    async def score(self, request: Request) -> Response:
        req = parse_json_body(llamaedge.ScoreRequest, await request.body())
        request.state.model = req.model
        scores, tokens = await self._rag.pair_scores(req.model, req.pairs())
        data = [{"index": i, "object": "score", "score": s} for i, s in enumerate(scores)]
        return JSONResponse({
            "id": openai_id("score-"), "object": "list", "created": int(time.time()), "model": req.model,
            "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })  # fmt: skip

    async def collections(self, request: Request) -> Response:
        infos, bound = await self._rag.collections(), await self._rag.bindings.all()
        return JSONResponse({"collections": [_collection(i, bound) for i in infos]})

    async def bind(self, request: Request) -> Response:
        req = parse_json_body(llamaedge.BindRequest, await request.body())
        model = await self._rag.bind(request.path_params["model"], req.collection)
        return JSONResponse({"model": model, "collection": req.collection})

    async def unbind(self, request: Request) -> Response:
        record = await self._catalog.resolve(request.path_params["model"])
        if not await self._rag.bindings.unbind(record.name):
            raise NotFound(f"model '{record.name}' is not bound to a collection")
        return JSONResponse({"model": record.name})

    async def delete_collection(self, request: Request) -> Response:
        name = request.path_params["name"]
        await self._rag.delete(name)
        return JSONResponse({"deleted": name})

    async def _receive(self, request: Request) -> tuple[StoredFile, Any]:
        """The multipart `file` part, checked and stored; the form's other fields too."""
        max_bytes = self._rag.settings.rag_max_file_bytes
        declared = int(request.headers.get("content-length") or 0)
        if declared > max_bytes + FORM_OVERHEAD:
            raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {max_bytes}")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest("send the document as the multipart form field 'file'", param="file")
        content = await upload.read(max_bytes + 1)
        filename = upload.filename or "upload.txt"
        text = decode_text(filename, content, max_bytes)
        return await self._files.put(filename, text, len(content)), form


def _last_user(messages: Sequence[llamaedge.RetrieveMessage]) -> str:
    return next((text_content(m.content) for m in reversed(messages) if m.role == "user" and m.content), "")


def _kind(record: ModelRecord) -> str:
    return "embedding" if "embedding" in record.capabilities else "chat"


def _form_collection(value: Any) -> str:
    try:
        return llamaedge.RagFields(collection=value or llamaedge.DEFAULT_COLLECTION).collection or ""
    except ValueError as exc:
        raise BadRequest(f"collection: {exc}", param="collection") from None


def _form_capacity(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if not str(value).isdigit() or int(value) < 1:
        raise BadRequest("chunk_capacity must be a positive integer", param="chunk_capacity")
    return int(value)


def _collection(info: Any, bound: dict[str, str]) -> dict[str, Any]:
    models = sorted(m for m, c in bound.items() if c == info.name)
    return {"name": info.name, "embedding_model": info.embedding_model, "dimensions": info.dimensions,
            "points": info.points, "models": models}  # fmt: skip


def _with_sources(response: Response, hits: Sequence[Hit]) -> Response:
    """The answer with the passages it was given: header always, body field when not streaming."""
    sources = [{"filename": h.filename, "index": h.index, "score": h.score} for h in hits]
    response.headers[SOURCES_HEADER] = json.dumps(sources)  # ASCII-escaped, so header-safe
    if isinstance(response, StreamingResponse):
        return response
    body = json.loads(bytes(response.body)) | {
        "sources": [s | {"source": h.text} for s, h in zip(sources, hits, strict=True)]
    }
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return Response(frames.dumps(body), status_code=response.status_code, media_type="application/json",
                    headers=headers)  # fmt: skip


def rag_routes(api: RagApi) -> list[Route]:
    return [
        Route("/v1/files", api.upload, methods=["POST"]),
        Route("/v1/chunks", api.chunks, methods=["POST"]),
        Route("/v1/create/rag", api.create_rag, methods=["POST"]),
        Route("/v1/retrieve", api.retrieve, methods=["POST"]),
        Route("/v1/info", api.info, methods=["GET", "POST"]),
        Route("/v1/rerank", api.rerank, methods=["POST"]),
        Route("/v1/score", api.score, methods=["POST"]),
        Route("/herd/collections", api.collections, methods=["GET"]),
        Route("/herd/collections/{name}", api.delete_collection, methods=["DELETE"]),
        Route("/herd/bindings/{model:path}", api.bind, methods=["PUT"]),
        Route("/herd/bindings/{model:path}", api.unbind, methods=["DELETE"]),
    ]
