"""LlamaEdge RAG server wire models (github.com/LlamaEdge/rag-api-server, README), plus the
Jina/Cohere rerank and score shapes vLLM serves. Unknown fields are ignored.

Herd's extensions are grouped at the end of each model: `collection` names the vector collection
(LlamaEdge serves one, `--qdrant-collection-name`, default `default`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_COLLECTION = "default"
RagPolicy = Literal["system-message", "last-user-message"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _collection_name(name: str) -> str:
    # Qdrant accepts more, but a name also travels in URLs and metric labels.
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError("a collection name is 1-64 letters, digits, '-', '_' or '.'")
    return name


class ChunksRequest(_Wire):
    id: str
    filename: str
    # Herd extensions: LlamaEdge sets these per server (`--chunk-capacity`, the embedding model).
    chunk_capacity: int | None = Field(None, ge=1, description="Tokens per chunk (the server's default: 100).")
    model: str | None = Field(None, description="Embedding model whose tokenizer cuts the chunks.")
    collection: str = Field(DEFAULT_COLLECTION, description="Its bound embedding model is the default `model`.")

    _name = field_validator("collection")(_collection_name)


class RetrieveMessage(_Wire):
    role: str
    content: str | list[dict[str, Any]] | None = None


class RetrieveRequest(_Wire):
    messages: list[RetrieveMessage] = Field(min_length=1)
    model: str
    limit: int | None = Field(None, ge=1, le=100)
    score_threshold: float | None = Field(None, ge=-1.0, le=1.0)
    # Herd extension.
    collection: str = DEFAULT_COLLECTION

    _name = field_validator("collection")(_collection_name)


class RagFields(_Wire):
    """Herd's RAG fields on a chat request (`/v1/chat/completions`, `/api/chat`): without
    `collection` the chat is plain. The rest default to the server's settings."""

    collection: str | None = None
    rag_policy: RagPolicy | None = None
    rag_limit: int | None = Field(None, ge=1, le=100)
    rag_score_threshold: float | None = Field(None, ge=-1.0, le=1.0)

    @field_validator("collection")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return None if name is None else _collection_name(name)


class BindRequest(_Wire):
    """Herd's `PUT /herd/bindings/{model}`: the model's chats retrieve from `collection`."""

    collection: str

    _name = field_validator("collection")(_collection_name)


class RerankRequest(_Wire):
    model: str
    query: str = Field(min_length=1)
    documents: list[str] = Field(min_length=1, max_length=1000)
    top_n: int = Field(0, ge=0, description="How many results, best first; 0 (vLLM's default) is all.")
    return_documents: bool = True


class ScoreRequest(_Wire):
    """vLLM's `/v1/score`: one text against many (1:N) or pairs (N:N)."""

    model: str
    text_1: str | list[str]
    text_2: str | list[str]

    @model_validator(mode="after")
    def _shapes(self) -> ScoreRequest:
        left, right = self._sides()
        if not left or not right or not all(left) or not all(right):
            raise ValueError("text_1 and text_2 must be non-empty")
        if len(left) != 1 and len(left) != len(right):
            raise ValueError("text_1 must be one text or as many as text_2")
        return self

    def _sides(self) -> tuple[list[str], list[str]]:
        left = [self.text_1] if isinstance(self.text_1, str) else self.text_1
        right = [self.text_2] if isinstance(self.text_2, str) else self.text_2
        return left, right

    def pairs(self) -> list[tuple[str, str]]:
        left, right = self._sides()
        return [(left[0], r) for r in right] if len(left) == 1 else list(zip(left, right, strict=True))


def file_object(file_id: str, size: int, created_at: int, filename: str) -> dict[str, Any]:
    """`/v1/files`' answer (OpenAI's file object, as LlamaEdge sends it)."""
    return {
        "id": file_id,
        "bytes": size,
        "created_at": created_at,
        "filename": filename,
        "object": "file",
        "purpose": "assistants",
    }


def points_body(points: list[dict[str, Any]], limit: int, score_threshold: float) -> dict[str, Any]:
    """`/v1/retrieve`'s answer: `points` best first, each `{"source", "score"}` (Herd adds `filename`)."""
    return {"points": points, "limit": limit, "score_threshold": score_threshold}
