from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from router.api.bounds import Caps
from router.api.responses import encode
from router.api.responses.routes import ResponsesApi, assistant_message, input_messages
from router.convert.tools import CallArgs, CallStart, Piece, Reader, Text, ToolCall
from router.dispatch.generation import EventStream
from router.dispatch.inbox import Incoming
from router.errors import BadRequest, ContextLengthExceeded, EngineError, HerdError
from workers.events import Delta, Event, Final

HEAD = encode.Head("resp_1", 5, "m")
STOP = Final("stop", 7, 3, 1, 1, 1)
LENGTH = Final("length", 7, 4, 1, 1, 1)
ECHO = (
    b'"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"m",'
    b'"output":[],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,'
    b'"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto",'
    b'"tools":[],"top_p":1.0,"truncation":"disabled","usage":null,"user":null,"metadata":{}}'
)
IN_PROGRESS = b'{"id":"resp_1","object":"response","created_at":5,"status":"in_progress",' + ECHO


def _event(name: str, fields: bytes, seq: int) -> bytes:
    n = name.encode()
    tail = b',"sequence_number":' + str(seq).encode() + b"}\n\n"
    return b"event: " + n + b'\ndata: {"type":"' + n + b'",' + fields + tail


START = _event("response.created", b'"response":' + IN_PROGRESS, 0) + _event(
    "response.in_progress", b'"response":' + IN_PROGRESS, 1
)
MESSAGE = b'"item_id":"msg_1_0","output_index":0,"content_index":0'
PART = b'{"type":"output_text","annotations":[],"logprobs":[],"text":'
ITEM = b'{"id":"msg_1_0","type":"message","status":'
ITEM_ADDED = ITEM + b'"in_progress","role":"assistant","content":[]}'
ITEM_DONE = ITEM + b'"completed","role":"assistant","content":[' + PART + b'"Hi!"}]}'
CALL = b'{"id":"fc_1","type":"function_call","status":'
CALL_ADDED = CALL + b'"in_progress","arguments":"","call_id":"call_1","name":"f"}'
CALL_DONE = CALL + b'"completed","arguments":"{\\"x\\": 1}","call_id":"call_1","name":"f"}'
FC = b'"item_id":"fc_1","output_index":0'

TEXT_EVENTS = (
    _event("response.output_item.added", b'"output_index":0,"item":' + ITEM_ADDED, 2)
    + _event("response.content_part.added", MESSAGE + b',"part":' + PART + b'""}', 3)
    + _event("response.output_text.delta", MESSAGE + b',"delta":"Hi","logprobs":[]', 4)
    + _event("response.output_text.delta", MESSAGE + b',"delta":"!","logprobs":[]', 5)
    + _event("response.output_text.done", MESSAGE + b',"text":"Hi!","logprobs":[]', 6)
    + _event("response.content_part.done", MESSAGE + b',"part":' + PART + b'"Hi!"}', 7)
    + _event("response.output_item.done", b'"output_index":0,"item":' + ITEM_DONE, 8)
)
CALL_EVENTS = (
    _event("response.output_item.added", b'"output_index":0,"item":' + CALL_ADDED, 2)
    + _event("response.function_call_arguments.delta", FC + b',"delta":"{\\"x\\""', 3)
    + _event("response.function_call_arguments.delta", FC + b',"delta":": 1}"', 4)
    + _event("response.function_call_arguments.done", FC + b',"arguments":"{\\"x\\": 1}"', 5)
    + _event("response.output_item.done", b'"output_index":0,"item":' + CALL_DONE, 6)
)


def _done(name: str, status: bytes, output: bytes, usage: bytes, seq: int, incomplete: bytes = b"null") -> bytes:
    body = ECHO.replace(b'"output":[]', b'"output":[' + output + b"]").replace(b'"usage":null', b'"usage":' + usage)
    body = body.replace(b'"incomplete_details":null', b'"incomplete_details":' + incomplete)
    head = b'{"id":"resp_1","object":"response","created_at":5,"status":"' + status + b'",'
    return _event(name, b'"response":' + head + body, seq)


USAGE_7_3 = (
    b'{"input_tokens":7,"input_tokens_details":{"cached_tokens":0},"output_tokens":3,'
    b'"output_tokens_details":{"reasoning_tokens":0},"total_tokens":10}'
)
USAGE_7_4 = USAGE_7_3.replace(b'"output_tokens":3', b'"output_tokens":4').replace(b":10}", b":11}")


@pytest.mark.parametrize(
    ("pieces", "final", "expected"),
    [
        (
            [Text("Hi"), Text("!")],
            STOP,
            TEXT_EVENTS + _done("response.completed", b"completed", ITEM_DONE, USAGE_7_3, 9),
        ),
        (
            [CallStart(0, "call_1", "f"), CallArgs(0, '{"x"'), CallArgs(0, ": 1}")],
            STOP,
            CALL_EVENTS + _done("response.completed", b"completed", CALL_DONE, USAGE_7_3, 7),
        ),
        (
            [],
            LENGTH,
            _done("response.incomplete", b"incomplete", b"", USAGE_7_4, 2, b'{"reason":"max_output_tokens"}'),
        ),
    ],
    ids=["text", "function call", "nothing, cut by max_output_tokens"],
)
def test_response_stream_bytes(pieces: list[Piece], final: Final, expected: bytes) -> None:
    out = encode.ResponseStream(HEAD)
    assert out.start() == START
    assert out.pieces(pieces) + out.finish(final) == expected
    assert out.response["output"] == out.output and out.response["usage"] == json.loads(
        USAGE_7_3 if final is STOP else USAGE_7_4
    )


def test_text_then_call_are_two_items_in_order() -> None:
    out = encode.ResponseStream(HEAD)
    out.start()
    out.pieces([Text("Sure."), CallStart(0, "call_1", "f"), CallArgs(0, "{}")])
    out.finish(STOP)
    assert [(i["type"], i["id"]) for i in out.output] == [("message", "msg_1_0"), ("function_call", "fc_1")]


@pytest.mark.parametrize(
    ("text", "calls", "expected"),
    [
        ("Hi", [], [encode.message_item("msg_1_0", "Hi")]),
        ("\n", [ToolCall("call_1", "f", "{}")], [encode.call_item("call_1", "f", "{}")]),
        ("", [], []),
    ],
    ids=["text", "whitespace around a call", "empty"],
)
def test_output_items(text: str, calls: list[ToolCall], expected: list[dict[str, Any]]) -> None:
    assert encode.output_items(HEAD, text, calls) == expected


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (BadRequest("bad", param="input"), b'"code":"invalid_request_error","message":"bad","param":"input"'),
        (ContextLengthExceeded("long"), b'"code":"context_length_exceeded","message":"long","param":null'),
        (EngineError("boom"), b'"code":"server_error","message":"boom","param":null'),
    ],
    ids=["bad request", "context length", "engine"],
)
def test_error_event_bytes(err: HerdError, expected: bytes) -> None:
    out = encode.ResponseStream(HEAD)
    out.start()
    assert out.error(err) == _event("error", expected, 2)


def test_input_items_become_template_messages() -> None:
    history = [{"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "function": {"name": "g"}}]}]
    items = [
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"x": 1}'},
        {"type": "function_call", "call_id": "call_2", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "2"},
        {"type": "function_call_output", "call_id": "call_0", "output": "3"},
    ]
    call = {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    assert input_messages(items, history) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", **call}, {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": {}}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "name": "f", "content": "2"},
        {"role": "tool", "tool_call_id": "call_0", "name": "g", "content": "3"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    "items",
    [
        [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}],
        [{"type": "item_reference", "id": "x"}],
        [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "not json"}],
    ],
    ids=["image", "unknown item", "arguments not JSON"],
)
def test_refused_input_items(items: list[dict[str, Any]]) -> None:
    with pytest.raises(BadRequest):
        input_messages(items, [])


def test_stored_assistant_turn_has_argument_objects() -> None:
    output = encode.output_items(HEAD, "Sure.", [ToolCall("call_1", "f", '{"x": 1}')])
    assert assistant_message(output) == {
        "role": "assistant",
        "content": "Sure.",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}],
    }


class _Store:
    def __init__(self) -> None:
        self.puts: list[str] = []

    async def put(self, response: dict[str, Any], conversation: list[dict[str, Any]]) -> None:
        self.puts.append(response["id"])


async def _dies() -> None:
    raise RuntimeError("EngineCore died")


async def _returns() -> None:
    return None


def _events(first: list[Event], call: Callable[[], Awaitable[None]]) -> EventStream:
    # A task, not a bare coroutine: a stream that ends in its first batch never awaits the call.
    task = asyncio.ensure_future(call())
    return EventStream(first, Incoming(asyncio.Queue(), task, lambda: None, lambda: None, grace_s=0))


def _frames(first: list[Event], call: Callable[[], Awaitable[None]], store: _Store) -> list[bytes]:
    api = ResponsesApi(None, None, store, Caps(1, 100))  # type: ignore[arg-type]

    async def run() -> list[bytes]:
        out = encode.ResponseStream(HEAD)
        events = _events(first, call)  # on the loop that reads it
        frames: AsyncIterator[bytes] = api._frames(events, Reader(lambda: "call_1"), out, [], True)
        return [f async for f in frames]

    return asyncio.run(run())


def test_a_failure_after_the_first_byte_is_one_error_event_and_nothing_is_stored() -> None:
    store = _Store()
    frames = _frames([Delta("Hel", 1)], _dies, store)
    assert b"Hel" in frames[1] and frames[-1].startswith(b"event: error\n")
    assert json.loads(frames[-1].split(b"data: ")[1])["message"] == "the model's engine failed: RuntimeError"
    assert store.puts == []


def test_a_finished_stream_is_stored_before_it_completes() -> None:
    store = _Store()
    frames = _frames([Delta("Hi", 1), STOP], _returns, store)
    assert store.puts == ["resp_1"] and b"event: response.completed\n" in frames[-1]
