"""The OpenAPI 3.1 document of Herd's HTTP surface, built from the same wire models that parse requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from router.protocol import anthropic, llamaedge, ollama, openai, responses

NDJSON, SSE, JSON = "application/x-ndjson", "text/event-stream", "application/json"

# path -> (methods, space-separated; summary; request model or None; response media types)
OPERATIONS: dict[str, tuple[str, str, type[BaseModel] | None, tuple[str, ...]]] = {
    "/": ("get", "Liveness text, as Ollama answers: 'Ollama is running'", None, ("text/plain",)),
    "/api/version": ("get", "The Ollama API version served", None, (JSON,)),
    "/api/generate": ("post", "Ollama completion (NDJSON stream, or one object with stream:false)",
                      ollama.GenerateRequest, (NDJSON, JSON)),
    "/api/chat": ("post", "Ollama chat (NDJSON stream, or one object with stream:false)",
                  ollama.ChatRequest, (NDJSON, JSON)),
    "/api/tags": ("get", "Models in the catalog", None, (JSON,)),
    "/api/show": ("post", "One model's details, parameters and model_info", ollama.ShowRequest, (JSON,)),
    "/api/ps": ("get", "Loaded models and when each unloads", None, (JSON,)),
    "/api/pull": ("post", "Register a model from a source, with progress (NDJSON, or the last object)",
                  ollama.PullRequest, (NDJSON, JSON)),
    "/api/create": ("post", "Create a model from a Modelfile or JSON fields (status stream)",
                    ollama.CreateRequest, (NDJSON, JSON)),
    "/api/copy": ("post", "Copy a model to a new name (empty 200)", ollama.CopyRequest, ()),
    "/api/delete": ("delete", "Delete a model name (empty 200)", ollama.DeleteRequest, ()),
    "/api/embed": ("post", "Ollama embeddings (L2-normalised)", ollama.EmbedRequest, (JSON,)),
    "/api/embeddings": ("post", "Legacy Ollama embeddings (one prompt)", ollama.EmbeddingsRequest, (JSON,)),
    "/v1/chat/completions": ("post", "OpenAI chat completions (SSE with stream:true)",
                             openai.ChatCompletionRequest, (JSON, SSE)),
    "/v1/completions": ("post", "OpenAI legacy completions (SSE with stream:true)",
                        openai.CompletionRequest, (JSON, SSE)),
    "/v1/embeddings": ("post", "OpenAI embeddings (float or base64)", openai.EmbeddingRequest, (JSON,)),
    "/v1/messages": ("post", "Anthropic Messages (SSE events with stream:true)",
                     anthropic.MessagesRequest, (JSON, SSE)),
    "/v1/messages/count_tokens": ("post", "Anthropic token count of a Messages prompt",
                                  anthropic.CountTokensRequest, (JSON,)),
    "/v1/responses": ("post", "OpenAI Responses (typed SSE events with stream:true)",
                      responses.ResponsesRequest, (JSON, SSE)),
    "/v1/responses/{response_id}": ("get delete", "A stored response: read it, or delete it", None, (JSON,)),
    "/v1/models": ("get", "Models in the catalog, OpenAI's list shape", None, (JSON,)),
    "/v1/models/{model}": ("get", "One model, OpenAI's shape", None, (JSON,)),
    "/herd/stats": ("get", "Requests one engine replica of each model still holds", None, (JSON,)),
    "/metrics": ("get", "Prometheus metrics of the whole cluster", None, ("text/plain",)),
    "/health": ("get", "The router process answers", None, (JSON,)),
    "/ready": ("get", "200 when every always-on model has an engine that answers, else 503", None, (JSON,)),
}  # fmt: skip

UPLOAD = "a multipart form: `file` (text or Markdown)"
# Served when the router has RAG stores (router/api/rag/routes.py): (path, method, summary, body, media).
RAG_OPERATIONS: list[tuple[str, str, str, type[BaseModel] | str | None, tuple[str, ...]]] = [
    ("/v1/files", "post", "Upload a document (LlamaEdge); " + UPLOAD, UPLOAD, (JSON,)),
    ("/v1/chunks", "post", "An uploaded document's chunks", llamaedge.ChunksRequest, (JSON,)),
    ("/v1/create/rag", "post", "Upload, chunk, embed and store in one step; " + UPLOAD
     + ", optional `collection`, `model`, `chunk_capacity`", UPLOAD, (JSON,)),
    ("/v1/retrieve", "post", "Passages nearest the last user message", llamaedge.RetrieveRequest, (JSON,)),
    ("/v1/info", "post", "Server version, models and vector store settings (GET works too)", None, (JSON,)),
    ("/v1/rerank", "post", "Rank documents against a query (Jina/Cohere shape)", llamaedge.RerankRequest, (JSON,)),
    ("/v1/score", "post", "Cosine similarity of text pairs (vLLM shape)", llamaedge.ScoreRequest, (JSON,)),
    ("/herd/collections", "get", "Vector collections, their embedding models, sizes and bound models", None, (JSON,)),
    ("/herd/collections/{name}", "delete", "Delete a collection", None, (JSON,)),
    ("/herd/bindings/{model}", "put", "Bind a chat model to a collection (RAG chat by name)",
     llamaedge.BindRequest, (JSON,)),
    ("/herd/bindings/{model}", "delete", "Unbind a chat model", None, (JSON,)),
]  # fmt: skip


def openapi_document(version: str, rag: bool = False) -> dict[str, Any]:
    """Every route the app serves: RAG's only when `rag`."""
    operations = [(path, *op) for path, op in OPERATIONS.items()] + (RAG_OPERATIONS if rag else [])
    models = sorted({op[3] for op in operations if isinstance(op[3], type)}, key=lambda m: m.__name__)
    refs, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    paths: dict[str, Any] = {}
    for path, method, summary, model, media in operations:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {m: {} for m in media}},
                "default": {"description": "An error in the protocol's own shape (Ollama, OpenAI or Anthropic)"},
            },
        }
        for name in ("model", "name", "response_id"):
            if "{" + name + "}" in path:
                operation["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]
        if isinstance(model, type):
            operation["requestBody"] = {"required": True, "content": {JSON: {"schema": refs[(model, "validation")]}}}
        elif model is not None:
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {}}}
        paths.setdefault(path, {}).update(dict.fromkeys(method.split(), operation))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Herd", "version": version, "description": "The Ollama, OpenAI and Anthropic APIs on vLLM."},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
