"""Pure encoders: engine events to Ollama NDJSON lines and OpenAI SSE frames, as exact bytes.

JSON is ASCII-escaped: ollama-python splits lines like `str.splitlines()`, so a raw U+2028,
U+2029 or U+0085 inside a string would cut a line in two. NDJSON never has blank lines.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.errors import HerdError

DONE = b"data: [DONE]\n\n"
FINGERPRINT = "fp_herd"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def rfc3339_nano(epoch_ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction trimmed, none when whole."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def server_timing(router_ns: int, worker_ns: int) -> dict[str, str]:
    """The standard `Server-Timing` header: the router's added time and the worker's, in ms."""
    return {"Server-Timing": f"router;dur={router_ns / 1e6:.3f}, worker;dur={worker_ns / 1e6:.3f}"}


def router_ms(router_ns: int) -> dict[str, float]:
    """Herd's own OpenAI field on the last chunk or body: the router's added time in ms."""
    return {"router_duration_ms": round(router_ns / 1e6, 3)}


# --- Ollama -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OllamaMetrics:
    """Final-chunk metrics; Go's omitempty drops each zero value."""

    total_duration: int
    load_duration: int
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int
    router_duration: int

    def fields(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}


def _line(obj: Mapping[str, Any]) -> bytes:
    return dumps(obj) + b"\n"


def ollama_generate_chunk(model: str, created_at: str, text: str) -> bytes:
    return _line({"model": model, "created_at": created_at, "response": text, "done": False})


def ollama_generate_final(
    model: str,
    created_at: str,
    text: str,
    done_reason: str,
    metrics: OllamaMetrics | None,
    context: Sequence[int] | None,
) -> bytes:
    obj: dict[str, Any] = {"model": model, "created_at": created_at, "response": text, "done": True}
    obj["done_reason"] = done_reason
    if context is not None:
        obj["context"] = list(context)
    return _line(obj | (metrics.fields() if metrics else {}))


def ollama_chat_chunk(model: str, created_at: str, content: str) -> bytes:
    message = {"role": "assistant", "content": content}
    return _line({"model": model, "created_at": created_at, "message": message, "done": False})


def ollama_chat_final(
    model: str, created_at: str, content: str, done_reason: str, metrics: OllamaMetrics | None
) -> bytes:
    message = {"role": "assistant", "content": content}
    obj = {"model": model, "created_at": created_at, "message": message, "done": True, "done_reason": done_reason}
    return _line(obj | (metrics.fields() if metrics else {}))


def ollama_error(err: HerdError) -> bytes:
    """The whole body before the first byte, or the in-band line after it."""
    return _line({"error": err.message})


# --- OpenAI -------------------------------------------------------------------------------


def sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def new_id(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


@dataclass(frozen=True)
class _Chunks:
    id: str
    created: int
    model: str
    include_usage: bool
    object = ""

    def _frame(
        self, choices: list[dict[str, Any]], usage: Mapping[str, int] | None = None, extra: dict[str, Any] | None = None
    ) -> bytes:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if usage is not None:
            obj["usage"] = usage
        elif self.include_usage:
            obj["usage"] = None  # OpenAI sends null usage on every chunk but the last
        return sse(obj | (extra or {}))

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._frame([], _usage(prompt_tokens, completion_tokens))


class ChatChunks(_Chunks):
    """`chat.completion.chunk` frames: role first, content, a separate finish chunk, usage."""

    object = "chat.completion.chunk"

    def _choice(
        self, delta: dict[str, Any], finish_reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> bytes:
        return self._frame(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], None, extra
        )

    def role(self) -> bytes:
        return self._choice({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        return self._choice({"content": text})

    def finish(self, reason: str, router_ns: int) -> bytes:
        return self._choice({}, reason, router_ms(router_ns))


class CompletionChunks(_Chunks):
    """`text_completion` frames for the legacy completions API."""

    object = "text_completion"

    def _choice(self, text: str, finish_reason: str | None = None, extra: dict[str, Any] | None = None) -> bytes:
        return self._frame([{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}], None, extra)

    def text(self, text: str) -> bytes:
        return self._choice(text)

    def finish(self, reason: str, router_ns: int) -> bytes:
        return self._choice("", reason, router_ms(router_ns))


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    id: str, created: int, model: str, content: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return _body(id, "chat.completion", created, model, choice, _usage(prompt_tokens, completion_tokens))


def text_completion(
    id: str, created: int, model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
    return _body(id, "text_completion", created, model, choice, _usage(prompt_tokens, completion_tokens))


def _body(id: str, object: str, created: int, model: str, choice: Any, usage: Any) -> dict[str, Any]:
    return {
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [choice],
        "usage": usage,
    }


def openai_error(err: HerdError) -> dict[str, Any]:
    return {
        "error": {"message": err.openai_message(), "type": err.openai_type, "param": err.param, "code": err.openai_code}
    }


def sse_error(err: HerdError) -> bytes:
    return sse(openai_error(err))
