"""Ollama's encoder: engine events to NDJSON lines, as exact bytes. NDJSON never has blank lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.api.frames import dumps
from router.convert.tools import ToolCall, arguments_object
from router.errors import HerdError
from workers.events import TokenLogprob


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


def generate_chunk(
    model: str, created_at: str, text: str, logprobs: Sequence[TokenLogprob] = (), top: int = 0
) -> bytes:
    obj: dict[str, Any] = {"model": model, "created_at": created_at, "response": text, "done": False}
    return _line(obj | _logprobs(logprobs, top))


def generate_final(
    model: str,
    created_at: str,
    text: str,
    done_reason: str,
    metrics: OllamaMetrics | None,
    context: Sequence[int] | None,
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    obj: dict[str, Any] = {"model": model, "created_at": created_at, "response": text, "done": True}
    obj["done_reason"] = done_reason
    if context is not None:
        obj["context"] = list(context)
    return _line(obj | (metrics.fields() if metrics else {}) | _logprobs(logprobs, top))


def chat_chunk(
    model: str,
    created_at: str,
    content: str,
    tool_calls: Sequence[ToolCall] = (),
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    message = _message(content, tool_calls)
    obj = {"model": model, "created_at": created_at, "message": message, "done": False}
    return _line(obj | _logprobs(logprobs, top))


def chat_final(
    model: str,
    created_at: str,
    content: str,
    done_reason: str,
    metrics: OllamaMetrics | None,
    tool_calls: Sequence[ToolCall] = (),
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    message = _message(content, tool_calls)
    obj = {"model": model, "created_at": created_at, "message": message, "done": True, "done_reason": done_reason}
    return _line(obj | (metrics.fields() if metrics else {}) | _logprobs(logprobs, top))


def _message(content: str, tool_calls: Sequence[ToolCall]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        # Ollama's arguments are an object (OpenAI's a string); calls arrive whole, never in fragments.
        message["tool_calls"] = [
            {"id": c.id, "function": {"index": i, "name": c.name, "arguments": arguments_object(c)}}
            for i, c in enumerate(tool_calls)
        ]
    return message


def _logprobs(logprobs: Sequence[TokenLogprob], top: int) -> dict[str, Any]:
    """Ollama >= 0.12: `logprobs: [{token, logprob, bytes, top_logprobs?}]`; absent when not asked."""
    if not logprobs:
        return {}
    entries = []
    for lp in logprobs:
        entry: dict[str, Any] = {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode())}
        if top:
            entry["top_logprobs"] = [
                {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode())} for t in lp.top[:top]
            ]
        entries.append(entry)
    return {"logprobs": entries}


def error(err: HerdError) -> bytes:
    """The whole body before the first byte, or the in-band line after it."""
    return _line({"error": err.message})
