"""OpenAI's encoder: engine events to SSE frames and JSON bodies, as exact bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal

from router.api.frames import router_ms, sse
from router.convert.tools import ToolCall
from router.errors import HerdError
from router.protocol import openai as wire
from workers.events import TokenLogprob

DONE = b"data: [DONE]\n\n"
FINGERPRINT = "fp_herd"


@dataclass(frozen=True)
class _Chunks(Generic[wire.ChoiceT]):
    id: str
    created: int
    model: str
    include_usage: bool
    object: ClassVar[Literal["chat.completion.chunk", "text_completion"]]

    def _frame(
        self, choices: list[wire.ChoiceT], usage: wire.Usage | None = None, router_ns: int | None = None
    ) -> bytes:
        obj: wire.StreamChunk[wire.ChoiceT] = {
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
        if router_ns is not None:
            obj["router_duration_ms"] = router_ms(router_ns)
        return sse(obj)

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        return self._frame([], usage(prompt_tokens, completion_tokens))


class ChatChunks(_Chunks[wire.ChatChunkChoice]):
    """`chat.completion.chunk` frames: role first, content or tool-call deltas, a separate finish
    chunk, usage. With `n` > 1 each frame carries one choice, marked by its `index`."""

    object = "chat.completion.chunk"

    def _choice(
        self,
        delta: wire.ChoiceDelta,
        finish_reason: str | None = None,
        router_ns: int | None = None,
        index: int = 0,
        logprobs: Sequence[TokenLogprob] = (),
    ) -> bytes:
        lp = chat_logprobs(logprobs) if logprobs else None
        choice: wire.ChatChunkChoice = {"index": index, "delta": delta, "logprobs": lp, "finish_reason": finish_reason}
        return self._frame([choice], None, router_ns)

    def role(self, index: int = 0) -> bytes:
        return self._choice({"role": "assistant", "content": ""}, index=index)

    def content(self, text: str, index: int = 0, logprobs: Sequence[TokenLogprob] = ()) -> bytes:
        return self._choice({"content": text}, index=index, logprobs=logprobs)

    def tool_call_start(self, call_index: int, call_id: str, name: str, index: int = 0) -> bytes:
        """The first delta of a call: the only one with its `id`, `type` and `name`."""
        call: wire.ToolCallDelta = {
            "index": call_index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._choice({"tool_calls": [call]}, index=index)

    def tool_call_arguments(self, call_index: int, arguments: str, index: int = 0) -> bytes:
        return self._choice({"tool_calls": [{"index": call_index, "function": {"arguments": arguments}}]}, index=index)

    def finish(self, reason: str, router_ns: int, index: int = 0) -> bytes:
        return self._choice({}, reason, router_ns, index)


class CompletionChunks(_Chunks[wire.CompletionChoice]):
    """`text_completion` frames for the legacy completions API."""

    object = "text_completion"

    def _choice(
        self,
        text: str,
        finish_reason: str | None = None,
        router_ns: int | None = None,
        index: int = 0,
        logprobs: wire.CompletionLogprobs | None = None,
    ) -> bytes:
        choice: wire.CompletionChoice = {
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": finish_reason,
        }
        return self._frame([choice], None, router_ns)

    def text(self, text: str, index: int = 0, logprobs: wire.CompletionLogprobs | None = None) -> bytes:
        return self._choice(text, index=index, logprobs=logprobs)

    def finish(self, reason: str, router_ns: int, index: int = 0) -> bytes:
        return self._choice("", reason, router_ns, index)


def usage(prompt_tokens: int, completion_tokens: int) -> wire.Usage:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _top(lp: TokenLogprob) -> wire.TopLogprob:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode())}


def chat_logprobs(logprobs: Sequence[TokenLogprob]) -> wire.ChatLogprobs:
    """A chat choice's `logprobs`: `{content: [{token, logprob, bytes, top_logprobs}], refusal: null}`."""
    content: list[wire.ChatTokenLogprob] = [
        {
            "token": lp.token,
            "logprob": lp.logprob,
            "bytes": list(lp.token.encode()),
            "top_logprobs": [_top(t) for t in lp.top],
        }
        for lp in logprobs
    ]
    return {"content": content, "refusal": None}


def completion_logprobs(logprobs: Sequence[TokenLogprob], text_offset: int = 0) -> wire.CompletionLogprobs:
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
) -> wire.ChatChoice:
    """One non-streamed chat choice; with tool calls, `content` is null unless the model also wrote text."""
    message: wire.ChatCompletionMessage = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["content"] = content if content.strip() else None
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in tool_calls
        ]
    lp = chat_logprobs(logprobs) if logprobs is not None else None
    return {"index": index, "message": message, "logprobs": lp, "finish_reason": finish_reason}


def completion_choice(
    index: int, text: str, finish_reason: str, logprobs: wire.CompletionLogprobs | None = None
) -> wire.CompletionChoice:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}


def chat_completion(
    id: str, created: int, model: str, choices: list[wire.ChatChoice], prompt_tokens: int, completion_tokens: int
) -> wire.ChatCompletion:
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def text_completion(
    id: str, created: int, model: str, choices: list[wire.CompletionChoice], prompt_tokens: int, completion_tokens: int
) -> wire.TextCompletion:
    return {
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def error(err: HerdError) -> wire.ErrorResponse:
    return {
        "error": {"message": err.openai_message(), "type": err.openai_type, "param": err.param, "code": err.openai_code}
    }


def error_frame(err: HerdError) -> bytes:
    return sse(error(err))
