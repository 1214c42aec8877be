"""Pure encoders for OpenAI Responses: the response object, its typed SSE events and errors, as exact bytes.

Stream rules (OpenAI's sequence): `response.created` and `response.in_progress` (the response with
no output yet); per output item `response.output_item.added`, then for a message
`response.content_part.added`, `response.output_text.delta`s, `response.output_text.done`,
`response.content_part.done`, or for a function call `response.function_call_arguments.delta`s and
`response.function_call_arguments.done`; then `response.output_item.done`. Last comes
`response.completed` (or `response.incomplete` when `max_output_tokens` cut the answer) with the
whole response. Every event has a `sequence_number`, counting from 0; there is no `[DONE]`.
A failure after the first byte is one `error` event, which ends the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from router.api.frames import typed_sse
from router.convert.tools import CallArgs, CallStart, Piece, Text, ToolCall
from router.errors import HerdError
from router.protocol import responses as wire
from workers.events import Final


@dataclass(frozen=True)
class Head:
    """What a response echoes from its request: the same in every event that carries the response."""

    id: str
    created_at: int
    model: str
    instructions: str | None = None
    max_output_tokens: int | None = None
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    store: bool = True
    temperature: float = 1.0
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = field(default_factory=list)
    top_p: float = 1.0
    metadata: dict[str, str] = field(default_factory=dict)

    def body(
        self, status: wire.Status, output: list[wire.OutputItem], usage: wire.Usage | None = None
    ) -> wire.Response:
        incomplete: wire.IncompleteDetails | None = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": self.store,
            "temperature": self.temperature,
            "text": self.text,
            "tool_choice": self.tool_choice,
            "tools": self.tools,
            "top_p": self.top_p,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": self.metadata,
        }

    def final_body(self, output: list[wire.OutputItem], final: Final) -> wire.Response:
        status: wire.Status = "incomplete" if final.finish_reason == "length" else "completed"
        return self.body(status, output, usage(final.prompt_tokens, final.output_tokens))

    def message_id(self, output_index: int) -> str:
        return f"msg_{self.id.removeprefix('resp_')}_{output_index}"


def usage(input_tokens: int, output_tokens: int) -> wire.Usage:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def text_part(text: str) -> wire.OutputText:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(id: str, text: str | None, status: wire.Status = "completed") -> wire.MessageItem:
    """A message output item; `text` None while it is still empty (just added)."""
    content = [] if text is None else [text_part(text)]
    return {"id": id, "type": "message", "status": status, "role": "assistant", "content": content}


def call_item(call_id: str, name: str, arguments: str, status: wire.Status = "completed") -> wire.FunctionCallItem:
    item_id = "fc_" + call_id.removeprefix("call_")
    return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id,
            "name": name}  # fmt: skip


def output_items(head: Head, text: str, calls: Sequence[ToolCall]) -> list[wire.OutputItem]:
    """A whole answer's output: its message (dropped when it is only whitespace around calls), then its calls."""
    items: list[wire.OutputItem] = (
        [message_item(head.message_id(0), text)] if text and (text.strip() or not calls) else []
    )
    return items + [call_item(c.id, c.name, c.arguments) for c in calls]


def error_fields(err: HerdError) -> wire.ErrorEvent:
    return {"code": err.openai_code or err.openai_type, "message": err.openai_message(), "param": err.param}


class ResponseStream:
    """The typed events of one streamed response, numbered in order. Pure: no I/O.

    `output` holds the finished items, as `response.completed` and the stored response carry them.
    """

    def __init__(self, head: Head) -> None:
        self._head = head
        self._seq = 0
        self.output: list[wire.OutputItem] = []
        self._open: wire.OutputItem | None = None  # the item being written
        self._parts: list[str] = []  # its text or argument fragments
        self.response: wire.Response | None = None  # the finished response, once `finish` ran

    def start(self) -> bytes:
        body = self._head.body("in_progress", [])
        return self._event("response.created", response=body) + self._event("response.in_progress", response=body)

    def pieces(self, pieces: Sequence[Piece]) -> bytes:
        return b"".join(self._piece(p) for p in pieces)

    def finish(self, final: Final) -> bytes:
        closed = self._close()
        body = self.response = self._head.final_body(self.output, final)
        name = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        return closed + self._event(name, response=body)

    def error(self, err: HerdError) -> bytes:
        return self._event("error", **error_fields(err))

    def _piece(self, piece: Piece) -> bytes:
        if isinstance(piece, Text):
            item = message_item(self._head.message_id(len(self.output)), None, "in_progress")
            opened = b"" if self._is_open("message") else self._begin(item)
            self._parts.append(piece.text)
            return opened + self._event("response.output_text.delta", **self._where(), delta=piece.text, logprobs=[])
        if isinstance(piece, CallStart):
            return self._begin(call_item(piece.id, piece.name, "", "in_progress"))
        assert isinstance(piece, CallArgs)
        self._parts.append(piece.arguments)
        item_id, index = self._where()["item_id"], len(self.output)
        return self._event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                           delta=piece.arguments)  # fmt: skip

    def _is_open(self, kind: str) -> bool:
        return self._open is not None and self._open["type"] == kind

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self.output), "content_index": 0}

    def _begin(self, item: wire.OutputItem) -> bytes:
        closed = self._close()
        self._open, self._parts = item, []
        added = self._event("response.output_item.added", output_index=len(self.output), item=item)
        if item["type"] != "message":
            return closed + added
        return closed + added + self._event("response.content_part.added", **self._where(), part=text_part(""))

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        where, whole = self._where(), "".join(self._parts)
        done: wire.OutputItem
        if item["type"] == "message":
            done = message_item(item["id"], whole)
            frames = self._event("response.output_text.done", **where, text=whole, logprobs=[])
            frames += self._event("response.content_part.done", **where, part=text_part(whole))
        else:
            done = call_item(item["call_id"], item["name"], whole)
            frames = self._event("response.function_call_arguments.done", item_id=item["id"],
                                 output_index=where["output_index"], arguments=whole)  # fmt: skip
        frames += self._event("response.output_item.done", output_index=where["output_index"], item=done)
        self.output.append(done)
        self._open = None
        return frames

    def _event(self, type: str, **fields: Any) -> bytes:
        obj = {"type": type, **fields, "sequence_number": self._seq}
        self._seq += 1
        return typed_sse(type, obj)
