"""create_app(...): the Starlette app both protocols share. Routes are thin; errors render here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.anthropic import encode as anthropic_encode
from router.api.anthropic.routes import AnthropicApi
from router.api.auth import Authenticate, Gate
from router.api.bounds import BoundedBody, Caps
from router.api.embed import EmbedApi
from router.api.local_paths import LocalPaths
from router.api.models import ModelsApi
from router.api.ollama import encode as ollama_encode
from router.api.ollama.routes import OllamaApi
from router.api.openai import encode as openai_encode
from router.api.openai.routes import OpenAIApi
from router.api.openapi import openapi_document
from router.api.rag.routes import RagApi, rag_routes
from router.api.rag.service import Rag, RagStores
from router.api.responses.routes import ResponsesApi
from router.catalog.catalog import Catalog
from router.catalog.responses import ResponseStore
from router.dispatch.generation import Generations
from router.dispatch.handles import ManagerHandle
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.errors import EngineError, HerdError, HttpStatus, MethodNotAllowed, NotFound, StoreUnavailable
from router.rag.tokens import Tokenizers
from router.settings import Settings

log = logging.getLogger("herd.router")


# Ollama's default CORS origins: local hosts on any port and the desktop/editor app schemes.
LOCAL_ORIGINS = (
    r"(https?://(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(:\d+)?|(app|file|tauri|vscode-webview|vscode-file)://.*)"
)


def create_app(
    settings: Settings,
    catalog: Catalog,
    generations: Generations,
    metrics: ClusterMetrics,
    manager: ManagerHandle | None = None,
    rag_stores: RagStores | None = None,
    gate: Gate | None = None,
) -> Starlette:
    """The HTTP app. `generations` reaches the worker deployments, `manager` (the ModelManager
    actor) pulls models, `rag_stores` hold RAG collections and uploads (no RAG routes without
    them), `gate` checks API keys (None: no auth at all, for tests of other parts); nothing here
    is global."""
    caps = Caps(settings.max_choices, settings.max_tokens)
    ollama = OllamaApi(catalog, generations, settings.ollama_version, caps)
    paths = LocalPaths(settings.import_roots, settings.max_modelfile_bytes, settings.max_import_bytes)
    models_api = ModelsApi(catalog, manager, paths)

    async def stats(request: Request) -> Response:
        return JSONResponse(await generations.stats(list(await catalog.loaded())))

    document = openapi_document(settings.ollama_version, rag=rag_stores is not None)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})  # the process answers; engines are /ready's concern

    async def ready(request: Request) -> Response:
        """Ready when every always-on model answers; other models load on their first request."""
        records = await catalog.records()
        loaded = await catalog.loaded()
        states = await generations.readiness([d for d in loaded if any(r.deployment_id == d for r in records)])
        models = {
            r.name: states.get(r.deployment_id, "not ready: loading" if r.spec.always_on else "unloaded")
            for r in records
        }
        if all(state in ("ready", "unloaded") for state in models.values()):
            return JSONResponse({"status": "ready", "models": models})
        return JSONResponse({"status": "not ready", "models": models}, status_code=503, headers={"Retry-After": "5"})

    async def exposition(request: Request) -> Response:
        return Response(await metrics.exposition(), media_type=metrics.content_type)

    openai = OpenAIApi(catalog, generations, caps)
    embed = EmbedApi(catalog, generations)
    openai_chat, ollama_chat, extra = openai.chat_completions, ollama.chat, []
    if rag_stores is not None:
        rag = Rag(settings, catalog, generations, rag_stores, Tokenizers(), metrics.own)
        rag_api = RagApi(rag, catalog, openai, ollama)
        openai_chat, ollama_chat, extra = rag_api.openai_chat, rag_api.ollama_chat, rag_routes(rag_api)
    anthropic = AnthropicApi(catalog, generations, caps)
    store = ResponseStore(catalog.store.redis, settings.responses_ttl_s)
    responses = ResponsesApi(catalog, generations, store, caps)
    routes = [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/api/version", ollama.version, methods=["GET", "HEAD"]),
        Route("/api/generate", ollama.generate, methods=["POST"]),
        Route("/api/chat", ollama_chat, methods=["POST"]),
        Route("/api/tags", models_api.tags, methods=["GET", "HEAD"]),
        Route("/api/show", models_api.show, methods=["POST"]),
        Route("/api/ps", models_api.ps, methods=["GET"]),
        Route("/api/pull", models_api.pull, methods=["POST"]),
        Route("/api/create", models_api.create, methods=["POST"]),
        Route("/api/copy", models_api.copy, methods=["POST"]),
        Route("/api/delete", models_api.delete, methods=["DELETE"]),
        Route("/api/embed", embed.ollama_embed, methods=["POST"]),
        Route("/api/embeddings", embed.ollama_embeddings, methods=["POST"]),
        Route("/v1/chat/completions", openai_chat, methods=["POST"]),
        Route("/v1/completions", openai.completions, methods=["POST"]),
        Route("/v1/embeddings", embed.openai_embeddings, methods=["POST"]),
        Route("/v1/messages", anthropic.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", anthropic.count_tokens, methods=["POST"]),
        Route("/v1/responses", responses.create, methods=["POST"]),
        Route("/v1/responses/{response_id}", responses.get, methods=["GET"]),
        Route("/v1/responses/{response_id}", responses.delete, methods=["DELETE"]),
        Route("/v1/models", openai.models, methods=["GET", "POST"]),  # LlamaEdge lists with POST
        Route("/v1/models/{model:path}", openai.model, methods=["GET"]),
        Route("/herd/stats", stats, methods=["GET"]),
        Route("/metrics", exposition, methods=["GET"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/ready", ready, methods=["GET", "HEAD"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *extra,
    ]
    errors = Errors(metrics.own)
    cors = Middleware(
        CORSMiddleware,
        allow_origins=settings.origins,
        allow_origin_regex=LOCAL_ORIGINS,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    counted = Middleware(CountRequests, metrics=metrics.own)
    bounded = Middleware(BoundedBody, limit=settings.max_body_bytes)
    middleware = [counted, cors, bounded]
    if gate is not None:
        middleware.append(Middleware(Authenticate, gate=gate, render=errors.render, metrics=metrics.own))
    return Starlette(routes=routes, exception_handlers=errors.handlers(), middleware=middleware)


class CountRequests:
    """Counts every HTTP request by model, API, endpoint (the route's path template) and status."""

    def __init__(self, app: ASGIApp, metrics: RouterMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500  # an exception that escapes every handler

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            path: str = scope["path"]
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self._metrics.observe_request(scope.get("state", {}).get("model", ""), api_of(path), endpoint, status)


async def root(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


class Errors:
    """The one place a before-first-byte error becomes a response, in the path's protocol; each
    is counted in `herd_errors_total` with phase `before_first_byte`."""

    def __init__(self, metrics: RouterMetrics) -> None:
        self._metrics = metrics

    def handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        return {HerdError: self.herd, HTTPException: self.http, RedisError: self.store, Exception: self.unexpected}

    def render(self, request: Request, err: HerdError) -> Response:
        path = request.url.path
        self._metrics.observe_error(
            getattr(request.state, "model", ""), api_of(path), type(err).__name__, "before_first_byte"
        )
        headers = dict(err.headers)
        if err.retry_after is not None:
            headers["Retry-After"] = str(err.retry_after)
        if api_of(path) == "anthropic":
            return JSONResponse(anthropic_encode.error_body(err), status_code=err.status, headers=headers)
        if path.startswith("/v1/"):
            return JSONResponse(openai_encode.error(err), status_code=err.status, headers=headers)
        body = ollama_encode.error(err)
        return Response(body, status_code=err.status, media_type="application/json", headers=headers)

    async def herd(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HerdError)
        return self.render(request, exc)

    async def http(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and not request.url.path.startswith("/v1/"):
            return PlainTextResponse("404 page not found", status_code=404)  # Ollama's (Go's) text
        if exc.status_code == 404:
            return self.render(request, NotFound(f"no route for {request.url.path}"))
        if exc.status_code == 405:
            return self.render(request, MethodNotAllowed(f"method {request.method} not allowed"))
        return self.render(request, HttpStatus(exc.status_code, exc.detail))

    async def store(self, request: Request, exc: Exception) -> Response:
        log.warning("Redis unavailable on %s: %s", request.url.path, exc)
        return self.render(
            request, StoreUnavailable("the model catalog is unavailable, try again shortly", retry_after=2)
        )

    async def unexpected(self, request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        return self.render(request, EngineError(f"internal error: {type(exc).__name__}"))


def api_of(path: str) -> str:
    """The `api` label of a request path."""
    for prefix, api in (("/v1/messages", "anthropic"), ("/v1/responses", "responses"), ("/v1/", "openai")):
        if path.startswith(prefix):
            return api
    return "ollama" if path.startswith("/api/") else "other"
