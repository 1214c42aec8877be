from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from router.api.anthropic import encode
from router.api.anthropic.routes import _frames
from router.convert.tools import CallArgs, CallStart, Reader, Text, ToolCall
from router.dispatch.generation import EventStream
from router.dispatch.inbox import Incoming
from router.errors import BadRequest, EngineError, HerdError, ModelNotFound, Overloaded, TimedOut
from workers.events import Delta, Event, Final

STOP = Final("stop", 7, 3, 1, 1, 1)
LENGTH = Final("length", 7, 4, 1, 1, 1)
MATCHED = Final("stop", 7, 2, 1, 1, 1, stop_sequence="\n\n")

START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
    b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":0,"output_tokens":0}}}\n\n'
    b'event: ping\ndata: {"type":"ping"}\n\n'
)
TEXT_START = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)


def _delta(index: int, delta: bytes) -> bytes:
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
        + str(index).encode()
        + b',"delta":'
        + delta
        + b"}\n\n"
    )


def _stop(index: int) -> bytes:
    return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":' + str(index).encode() + b"}\n\n"


def _end(reason: bytes, sequence: bytes, usage: bytes) -> bytes:
    return (
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
        + reason
        + b',"stop_sequence":'
        + sequence
        + b'},"usage":'
        + usage
        + b"}\n\n"
        + b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


@pytest.mark.parametrize(
    ("pieces", "final", "expected"),
    [
        (
            [Text("Hi"), Text(" \u00e9")],
            STOP,
            TEXT_START
            + _delta(0, b'{"type":"text_delta","text":"Hi"}')
            + _delta(0, b'{"type":"text_delta","text":" \\u00e9"}')
            + _stop(0)
            + _end(b'"end_turn"', b"null", b'{"input_tokens":7,"output_tokens":3}'),
        ),
        (
            [Text("Sure."), CallStart(0, "toolu_1", "f"), CallArgs(0, '{"x"'), CallArgs(0, ": 1}")],
            STOP,
            TEXT_START
            + _delta(0, b'{"type":"text_delta","text":"Sure."}')
            + _stop(0)
            + b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
            b'"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}\n\n'
            + _delta(1, b'{"type":"input_json_delta","partial_json":"{\\"x\\""}')
            + _delta(1, b'{"type":"input_json_delta","partial_json":": 1}"}')
            + _stop(1)
            + _end(b'"tool_use"', b"null", b'{"input_tokens":7,"output_tokens":3}'),
        ),
        ([], LENGTH, _end(b'"max_tokens"', b"null", b'{"input_tokens":7,"output_tokens":4}')),
        (
            [Text("a")],
            MATCHED,
            TEXT_START
            + _delta(0, b'{"type":"text_delta","text":"a"}')
            + _stop(0)
            + _end(b'"stop_sequence"', b'"\\n\\n"', b'{"input_tokens":7,"output_tokens":2}'),
        ),
    ],
    ids=["text", "text then tool_use", "nothing, max_tokens", "stop_sequence"],
)
def test_message_stream_bytes(pieces: list[Text | CallStart | CallArgs], final: Final, expected: bytes) -> None:
    out = encode.MessageStream("msg_1", "m")
    assert out.start() == START
    assert out.pieces(pieces) + out.finish(final) == expected


@pytest.mark.parametrize(
    ("text", "calls", "final", "expected"),
    [
        (
            "Hello",
            [],
            STOP,
            {"content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn", "stop_sequence": None},
        ),
        (
            "\n",
            [ToolCall("toolu_1", "f", '{"x": 1}')],
            STOP,
            {
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}],
                "stop_reason": "tool_use",
                "stop_sequence": None,
            },
        ),
        (
            "Hi",
            [ToolCall("toolu_1", "f", '{"x"')],  # guided arguments cut short by max_tokens
            LENGTH,
            {
                "content": [
                    {"type": "text", "text": "Hi"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                ],
                "stop_reason": "tool_use",
                "stop_sequence": None,
            },
        ),
        ("", [], MATCHED, {"content": [], "stop_reason": "stop_sequence", "stop_sequence": "\n\n"}),
    ],
    ids=["text", "whitespace around a call", "text and a cut call", "stop_sequence"],
)
def test_message_body(text: str, calls: list[ToolCall], final: Final, expected: dict[str, object]) -> None:
    body = encode.message("msg_1", "m", encode.content_blocks(text, calls), final, len(calls))
    usage = {"input_tokens": final.prompt_tokens, "output_tokens": final.output_tokens}
    assert body == {"id": "msg_1", "type": "message", "role": "assistant", "model": "m"} | expected | {"usage": usage}
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (BadRequest("bad"), b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}'),
        (ModelNotFound("x"), b'{"type":"error","error":{"type":"not_found_error","message":"model \'x\' not found"}}'),
        (Overloaded("busy"), b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'),
        (TimedOut("slow"), b'{"type":"error","error":{"type":"timeout_error","message":"slow"}}'),
        (EngineError("boom"), b'{"type":"error","error":{"type":"api_error","message":"boom"}}'),
    ],
    ids=["bad request", "not found", "overloaded", "timeout", "engine"],
)
def test_error_event_bytes(err: HerdError, expected: bytes) -> None:
    assert encode.error_event(err) == b"event: error\ndata: " + expected + b"\n\n"


async def _dies() -> None:
    raise RuntimeError("EngineCore died")


def _events(first: list[Event], call: Callable[[], Awaitable[None]]) -> EventStream:
    return EventStream(first, Incoming(asyncio.Queue(), call(), lambda: None, lambda: None, grace_s=0))


def test_a_failure_after_the_first_byte_is_one_error_event() -> None:
    async def run() -> list[bytes]:
        frames: AsyncIterator[bytes] = _frames(
            _events([Delta("Hel", 1)], _dies), Reader(lambda: "toolu_1"), encode.MessageStream("msg_1", "m")
        )
        return [f async for f in frames]

    frames = asyncio.run(run())
    assert frames[0] == START and b"Hel" in frames[1]
    name, data = frames[-1].decode().rstrip("\n").split("\n")
    assert name == "event: error"
    assert json.loads(data[len("data: ") :]) == {
        "type": "error",
        "error": {"type": "api_error", "message": "the model's engine failed: RuntimeError"},
    }
