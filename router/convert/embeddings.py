"""Pure pieces of the embedding endpoints: input checking per protocol and response bodies.

Vectors arrive from the worker already L2-normalised (or raw, for Ollama's legacy endpoint) and
cut to `dimensions`; nothing here touches an engine.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from router.errors import BadRequest
from router.protocol import ollama, openai

Vector = Sequence[float]
ENCODINGS = ("float", "base64")


def ollama_inputs(value: Any) -> list[str]:
    """Ollama's `input`: a string or a list of strings; `""`, `[]` and a missing input mean none."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise BadRequest("invalid input type")


def ollama_dimensions(value: int | None) -> int | None:
    """Go's zero value means unset; a negative count is a client mistake."""
    if value is None or value == 0:
        return None
    if value < 0:
        raise BadRequest("dimensions must be a positive integer")
    return value


def openai_inputs(value: Any) -> list[str | tuple[int, ...]]:
    """OpenAI's `input`: a string, strings, token ids, or lists of token ids; none of them empty.

    Token ids are the served model's own ids (LangChain sends arrays like these by default).
    """
    if isinstance(value, str):
        value = [value]
    elif _is_ids(value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BadRequest("'input' must be a non-empty string or array", param="input")
    inputs: list[str | tuple[int, ...]] = []
    for item in value:
        if isinstance(item, str) and item:
            inputs.append(item)
        elif _is_ids(item) and item:
            inputs.append(tuple(item))
        else:
            raise BadRequest("'input' items must be non-empty strings or non-empty arrays of token ids", param="input")
    return inputs


def _is_ids(value: Any) -> bool:
    # JSON true/false arrive as bool, which Python counts as int: they are not token ids.
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def openai_check(encoding_format: str, dimensions: int | None) -> None:
    if encoding_format not in ENCODINGS:
        raise BadRequest(
            f"Invalid value for 'encoding_format' = {encoding_format}. Supported values: ['float', 'base64'].",
            param="encoding_format",
        )
    if dimensions is not None and dimensions < 1:
        raise BadRequest("'dimensions' must be at least 1", param="dimensions")


def base64_vector(vector: Vector) -> str:
    """OpenAI's `base64` encoding: the vector as little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def openai_body(
    model: str, vectors: Sequence[Vector], encoding_format: str, prompt_tokens: int
) -> openai.EmbeddingList:
    encode = base64_vector if encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def ollama_embed_body(
    model: str, vectors: Sequence[Vector], total_ns: int, load_ns: int, prompt_tokens: int
) -> ollama.EmbedResponse:
    """`/api/embed`'s body; like every Ollama duration field, zeros are left out (Go's omitempty)."""
    body: ollama.EmbedResponse = {"model": model, "embeddings": [list(v) for v in vectors]}
    if total_ns:
        body["total_duration"] = total_ns
    if load_ns:
        body["load_duration"] = load_ns
    if prompt_tokens:
        body["prompt_eval_count"] = prompt_tokens
    return body
