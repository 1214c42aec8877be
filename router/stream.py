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
from router.tools import ToolCall, arguments_object
from workers.events import TokenLogprob

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


def ollama_generate_chunk(
    model: str, created_at: str, text: str, logprobs: Sequence[TokenLogprob] = (), top: int = 0
) -> bytes:
    obj: dict[str, Any] = {"model": model, "created_at": created_at, "response": text, "done": False}
    return _line(obj | _ollama_logprobs(logprobs, top))


def ollama_generate_final(
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
    return _line(obj | (metrics.fields() if metrics else {}) | _ollama_logprobs(logprobs, top))


def ollama_chat_chunk(
    model: str,
    created_at: str,
    content: str,
    tool_calls: Sequence[ToolCall] = (),
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    message = _ollama_message(content, tool_calls)
    obj = {"model": model, "created_at": created_at, "message": message, "done": False}
    return _line(obj | _ollama_logprobs(logprobs, top))


def ollama_chat_final(
    model: str,
    created_at: str,
    content: str,
    done_reason: str,
    metrics: OllamaMetrics | None,
    tool_calls: Sequence[ToolCall] = (),
    logprobs: Sequence[TokenLogprob] = (),
    top: int = 0,
) -> bytes:
    message = _ollama_message(content, tool_calls)
    obj = {"model": model, "created_at": created_at, "message": message, "done": True, "done_reason": done_reason}
    return _line(obj | (metrics.fields() if metrics else {}) | _ollama_logprobs(logprobs, top))


def _ollama_message(content: str, tool_calls: Sequence[ToolCall]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        # Ollama's arguments are an object (OpenAI's a string); calls arrive whole, never in fragments.
        message["tool_calls"] = [
            {"id": c.id, "function": {"index": i, "name": c.name, "arguments": arguments_object(c)}}
            for i, c in enumerate(tool_calls)
        ]
    return message


def _ollama_logprobs(logprobs: Sequence[TokenLogprob], top: int) -> dict[str, Any]:
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
        return self._frame([], usage(prompt_tokens, completion_tokens))


class ChatChunks(_Chunks):
    """`chat.completion.chunk` frames: role first, content or tool-call deltas, a separate finish
    chunk, usage. With `n` > 1 each frame carries one choice, marked by its `index`."""

    object = "chat.completion.chunk"

    def _choice(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        extra: dict[str, Any] | None = None,
        index: int = 0,
        logprobs: Sequence[TokenLogprob] = (),
    ) -> bytes:
        lp = chat_logprobs(logprobs) if logprobs else None
        choice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish_reason}
        return self._frame([choice], None, extra)

    def role(self, index: int = 0) -> bytes:
        return self._choice({"role": "assistant", "content": ""}, index=index)

    def content(self, text: str, index: int = 0, logprobs: Sequence[TokenLogprob] = ()) -> bytes:
        return self._choice({"content": text}, index=index, logprobs=logprobs)

    def tool_call_start(self, call_index: int, call_id: str, name: str, index: int = 0) -> bytes:
        """The first delta of a call: the only one with its `id`, `type` and `name`."""
        call = {"index": call_index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return self._choice({"tool_calls": [call]}, index=index)

    def tool_call_arguments(self, call_index: int, arguments: str, index: int = 0) -> bytes:
        return self._choice({"tool_calls": [{"index": call_index, "function": {"arguments": arguments}}]}, index=index)

    def finish(self, reason: str, router_ns: int, index: int = 0) -> bytes:
        return self._choice({}, reason, router_ms(router_ns), index)


class CompletionChunks(_Chunks):
    """`text_completion` frames for the legacy completions API."""

    object = "text_completion"

    def _choice(
        self,
        text: str,
        finish_reason: str | None = None,
        extra: dict[str, Any] | None = None,
        index: int = 0,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice = {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        return self._frame([choice], None, extra)

    def text(self, text: str, index: int = 0, logprobs: dict[str, Any] | None = None) -> bytes:
        return self._choice(text, index=index, logprobs=logprobs)

    def finish(self, reason: str, router_ns: int, index: int = 0) -> bytes:
        return self._choice("", reason, router_ms(router_ns), index)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _openai_logprob(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode())}


def chat_logprobs(logprobs: Sequence[TokenLogprob]) -> dict[str, Any]:
    """A chat choice's `logprobs`: `{content: [{token, logprob, bytes, top_logprobs}], refusal: null}`."""
    content = [_openai_logprob(lp) | {"top_logprobs": [_openai_logprob(t) for t in lp.top]} for lp in logprobs]
    return {"content": content, "refusal": None}


def completion_logprobs(logprobs: Sequence[TokenLogprob], text_offset: int = 0) -> dict[str, Any]:
    """A legacy completion's `logprobs`: parallel lists; `text_offset` counts characters from `text_offset`."""
    offsets = []
    for lp in logprobs:
        offsets.append(text_offset)
        text_offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in logprobs],
        "text_offset": offsets,
    }


def chat_choice(
    index: int,
    content: str,
    tool_calls: Sequence[ToolCall],
    finish_reason: str,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict[str, Any]:
    """One non-streamed chat choice; with tool calls, `content` is null unless the model also wrote text."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["content"] = content if content.strip() else None
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in tool_calls
        ]
    lp = chat_logprobs(logprobs) if logprobs is not None else None
    return {"index": index, "message": message, "logprobs": lp, "finish_reason": finish_reason}


def completion_choice(
    index: int, text: str, finish_reason: str, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}


def chat_completion(
    id: str, created: int, model: str, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    return _body(id, "chat.completion", created, model, choices, usage(prompt_tokens, completion_tokens))


def text_completion(
    id: str, created: int, model: str, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    return _body(id, "text_completion", created, model, choices, usage(prompt_tokens, completion_tokens))


def _body(id: str, object: str, created: int, model: str, choices: list[dict[str, Any]], usage: Any) -> dict[str, Any]:
    return {
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": usage,
    }


def openai_error(err: HerdError) -> dict[str, Any]:
    return {
        "error": {"message": err.openai_message(), "type": err.openai_type, "param": err.param, "code": err.openai_code}
    }


def sse_error(err: HerdError) -> bytes:
    return sse(openai_error(err))
