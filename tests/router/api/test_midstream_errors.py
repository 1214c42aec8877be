"""After the first byte, a failure becomes one in-band error (NDJSON line / SSE frame, then [DONE])."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from router.api.ollama import encode as ollama_encode
from router.api.ollama.routes import _ndjson
from router.api.openai import encode as openai_encode
from router.api.openai.routes import _chat_frames, _frames
from router.convert.tools import Reader, ToolCall
from router.dispatch.generation import EventStream
from router.dispatch.inbox import Incoming
from router.dispatch.metrics import RouterMetrics
from workers.events import Delta, Event, Final, TokenLogprob


async def _dies() -> None:
    raise RuntimeError("EngineCore died")


async def _returns() -> None:
    return None


def _events(first: list[Event], call: Callable[[], Awaitable[None]]) -> EventStream:
    """A stream whose worker call ends as `call` does, with no more batches after `first`."""
    return EventStream(first, Incoming(asyncio.Queue(), call(), lambda: None, lambda: None, grace_s=0))


def _collect(chunks: Callable[[], AsyncIterator[bytes]]) -> list[bytes]:
    async def run() -> list[bytes]:
        return [c async for c in chunks()]

    return asyncio.run(run())


def _final(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob], f: Final) -> bytes:
    return b"final\n"


def _chunk(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob]) -> bytes:
    return ollama_encode.chat_chunk("m", "t", text)


def _reader() -> Reader:
    return Reader(lambda: "call_1")


def test_ndjson_ends_with_an_error_line() -> None:
    lines = _collect(lambda: _ndjson(_events([Delta("Hel", 1)], _dies), _reader(), _chunk, _final))
    assert len(lines) == 2
    assert json.loads(lines[0])["message"]["content"] == "Hel"
    assert json.loads(lines[1]) == {"error": "the model's engine failed: RuntimeError"}


def test_sse_ends_with_an_error_frame_then_done() -> None:
    chunks = openai_encode.ChatChunks("id", 1, "m", include_usage=True)

    def sse() -> AsyncIterator[bytes]:
        events = _events([Delta("Hel", 1)], _dies)
        return _frames([events], [_chat_frames(0, events, _reader(), chunks)], chunks)

    frames = _collect(sse)
    assert frames[0] == chunks.role() and frames[1] == chunks.content("Hel")
    error = json.loads(frames[2][len(b"data: ") :])["error"]
    assert error["type"] == "api_error" and error["message"] == "the model's engine failed: RuntimeError"
    assert frames[3:] == [openai_encode.DONE]


def test_a_midstream_failure_is_counted_once_by_model_api_and_type() -> None:
    metrics = RouterMetrics()

    def ndjson() -> AsyncIterator[bytes]:
        events = _events([Delta("Hel", 1)], _dies)
        events._observer = metrics.generation("m:1", "ollama")
        return _ndjson(events, _reader(), _chunk, _final)

    lines = _collect(ndjson)
    assert json.loads(lines[-1]) == {"error": "the model's engine failed: RuntimeError"}
    labels = {"model": "m:1", "api": "ollama", "type": "EngineError", "phase": "in_stream"}
    assert metrics.registry.get_sample_value("herd_errors_total", labels) == 1


def test_stream_that_ends_without_final_is_an_error() -> None:
    lines = _collect(lambda: _ndjson(_events([Delta("x", 1)], _returns), _reader(), _chunk, _final))
    assert json.loads(lines[-1]) == {"error": "the model's engine ended the stream without finishing"}


def test_one_failing_choice_of_several_ends_the_stream_with_an_error() -> None:
    chunks = openai_encode.ChatChunks("id", 1, "m", include_usage=False)

    def sse() -> AsyncIterator[bytes]:
        ok = _events([Delta("fine", 1), Final("stop", 1, 1, 1, 1, 1)], _returns)
        bad = _events([Delta("Hel", 1)], _dies)
        sources = [_chat_frames(0, ok, _reader(), chunks), _chat_frames(1, bad, _reader(), chunks)]
        return _frames([ok, bad], sources, chunks)

    frames = _collect(sse)
    assert frames[-1] == openai_encode.DONE
    assert json.loads(frames[-2][len(b"data: ") :])["error"]["message"] == "the model's engine failed: RuntimeError"
    indexes = {json.loads(f[len(b"data: ") :])["choices"][0]["index"] for f in frames[:-2]}
    assert indexes == {0, 1}  # both choices streamed, each under its own index
