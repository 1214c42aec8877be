"""Ollama's encoder: engine events to NDJSON lines, as exact bytes. NDJSON never has blank lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.api.frames import dumps
from router.convert.tools import ToolCall, arguments_object
from router.errors import HerdError
from router.protocol import ollama as wire
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

    def add_to(self, obj: wire.GenerateResponse | wire.ChatResponse) -> None:
        # Spelled out, not read from __dict__, so mypy holds each key to the contract.
        if self.total_duration:
            obj["total_duration"] = self.total_duration
        if self.load_duration:
            obj["load_duration"] = self.load_duration
        if self.prompt_eval_count:
            obj["prompt_eval_count"] = self.prompt_eval_count
        if self.prompt_eval_duration:
            obj["prompt_eval_duration"] = self.prompt_eval_duration
        if self.eval_count:
            obj["eval_count"] = self.eval_count
        if self.eval_duration:
            obj["eval_duration"] = self.eval_duration
        if self.router_duration:
            obj["router_duration"] = self.router_duration


def _line(obj: Mapping[str, Any]) -> bytes:
    return dumps(obj) + b"\n"


def generate_chunk(
    model: str, created_at: str, text: str, logprobs: Sequence[TokenLogprob] = (), top: int = 0
) -> bytes:
    obj: wire.GenerateResponse = {"model": model, "created_at": created_at, "response": text, "done": False}
    if logprobs:
        obj["logprobs"] = _logprobs(logprobs, top)
    return _line(obj)


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
    obj: wire.GenerateResponse = {"model": model, "created_at": created_at, "response": text, "done": True}
    obj["done_reason"] = done_reason
    if context is not None:
        obj["context"] = list(context)
    if metrics:
        metrics.add_to(obj)
    if logprobs:
        obj["logprobs"] = _logprobs(logprobs, top)
    return _line(obj)


def chat_chunk(
    model: str,
    created_at: str,
    content: str,
    tool_calls: Sequence[ToolCall] = (),
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    message = _message(content, tool_calls)
    obj: wire.ChatResponse = {"model": model, "created_at": created_at, "message": message, "done": False}
    if logprobs:
        obj["logprobs"] = _logprobs(logprobs, top)
    return _line(obj)


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
    obj: wire.ChatResponse = {
        "model": model,
        "created_at": created_at,
        "message": message,
        "done": True,
        "done_reason": done_reason,
    }
    if metrics:
        metrics.add_to(obj)
    if logprobs:
        obj["logprobs"] = _logprobs(logprobs, top)
    return _line(obj)


def loaded(model: str, created_at: str, reason: str, *, chat: bool) -> wire.ChatResponse | wire.GenerateResponse:
    """The one object answering an empty prompt or message list: `done_reason` "load" or "unload"."""
    if chat:
        message: wire.ResponseMessage = {"role": "assistant", "content": ""}
        return {"model": model, "created_at": created_at, "message": message, "done": True, "done_reason": reason}
    return {"model": model, "created_at": created_at, "response": "", "done": True, "done_reason": reason}


def _message(content: str, tool_calls: Sequence[ToolCall]) -> wire.ResponseMessage:
    message: wire.ResponseMessage = {"role": "assistant", "content": content}
    if tool_calls:
        # Ollama's arguments are an object (OpenAI's a string); calls arrive whole, never in fragments.
        message["tool_calls"] = [
            {"id": c.id, "function": {"index": i, "name": c.name, "arguments": arguments_object(c)}}
            for i, c in enumerate(tool_calls)
        ]
    return message


def _logprobs(logprobs: Sequence[TokenLogprob], top: int) -> list[wire.Logprob]:
    """Ollama >= 0.12: `logprobs: [{token, logprob, bytes, top_logprobs?}]`; absent when not asked."""
    entries = []
    for lp in logprobs:
        entry: wire.Logprob = {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode())}
        if top:
            entry["top_logprobs"] = [
                {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode())} for t in lp.top[:top]
            ]
        entries.append(entry)
    return entries


def error(err: HerdError) -> bytes:
    """The whole body before the first byte, or the in-band line after it."""
    body: wire.ErrorResponse = {"error": err.message}
    return _line(body)
