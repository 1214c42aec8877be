"""Pure encoders for Anthropic Messages: the message body, its SSE events and errors, as exact bytes.

Stream rules (Anthropic's sequence): `message_start` with an empty message, one `ping`, then per
content block `content_block_start`, its `text_delta` or `input_json_delta` events and
`content_block_stop`; last `message_delta` (stop_reason, stop_sequence, usage) and `message_stop`.
The engine reports the prompt's token count only when it finishes, so `message_start` carries
`input_tokens: 0` and `message_delta` the real count (the SDKs take it from there).
A failure after the first byte is one `event: error` frame, which ends the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.api.frames import typed_sse
from router.convert.tools import CallArgs, CallStart, Piece, Text, ToolCall, arguments_object
from router.errors import HerdError
from router.protocol import anthropic as wire
from workers.events import Final


def event(name: str, obj: Any) -> bytes:
    return typed_sse(name, obj)


def error_body(err: HerdError) -> wire.ErrorResponse:
    return {"type": "error", "error": {"type": err.anthropic_type, "message": err.message}}


def error_event(err: HerdError) -> bytes:
    return event("error", error_body(err))


def stop_reason(final: Final, calls: int) -> wire.StopReason:
    if calls:
        return "tool_use"
    if final.finish_reason == "length":
        return "max_tokens"
    return "end_turn" if final.stop_sequence is None else "stop_sequence"


def usage(input_tokens: int, output_tokens: int) -> wire.Usage:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def content_blocks(text: str, calls: Sequence[ToolCall]) -> list[wire.ContentBlock]:
    """A whole answer's blocks: its text (dropped when it is only whitespace around calls), then its calls."""
    blocks: list[wire.ContentBlock] = (
        [wire.TextBlock(type="text", text=text)] if text and (text.strip() or not calls) else []
    )
    return blocks + [_tool_use(c.id, c.name, arguments_object(c)) for c in calls]


def _tool_use(id: str, name: str, input: dict[str, Any]) -> wire.ToolUseBlock:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def message(id: str, model: str, content: list[wire.ContentBlock], final: Final, calls: int) -> wire.Message:
    """The non-streamed `message` object."""
    reason = stop_reason(final, calls)
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": final.stop_sequence if reason == "stop_sequence" else None,
        "usage": usage(final.prompt_tokens, final.output_tokens),
    }


class MessageStream:
    """The events of one streamed message, from a tool reader's pieces in order. Pure: no I/O."""

    def __init__(self, id: str, model: str) -> None:
        self._id = id
        self._model = model
        self._index = -1
        self._open: str | None = None  # the type of the block now open
        self.calls = 0

    def start(self) -> bytes:
        head: wire.Message = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(0, 0),
        }
        return event("message_start", {"type": "message_start", "message": head}) + event("ping", {"type": "ping"})

    def pieces(self, pieces: Sequence[Piece]) -> bytes:
        return b"".join(self._piece(p) for p in pieces)

    def finish(self, final: Final) -> bytes:
        reason = stop_reason(final, self.calls)
        delta = {"stop_reason": reason, "stop_sequence": final.stop_sequence if reason == "stop_sequence" else None}
        end = {"type": "message_delta", "delta": delta, "usage": usage(final.prompt_tokens, final.output_tokens)}
        return self._close() + event("message_delta", end) + event("message_stop", {"type": "message_stop"})

    def _piece(self, piece: Piece) -> bytes:
        if isinstance(piece, Text):
            opened = b"" if self._open == "text" else self._begin("text", wire.TextBlock(type="text", text=""))
            return opened + self._delta({"type": "text_delta", "text": piece.text})
        if isinstance(piece, CallStart):
            self.calls += 1
            return self._begin("tool_use", _tool_use(piece.id, piece.name, {}))
        assert isinstance(piece, CallArgs)
        return self._delta({"type": "input_json_delta", "partial_json": piece.arguments})

    def _begin(self, kind: str, block: wire.ContentBlock) -> bytes:
        closed = self._close()
        self._index, self._open = self._index + 1, kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return closed + event("content_block_start", start)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})
