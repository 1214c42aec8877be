from __future__ import annotations

import asyncio

import pytest

from router.catalog import ModelRecord
from router.errors import BadRequest, ContextLengthExceeded, EngineError, HerdError, ModelNotFound
from router.generation import Generations, map_error, now_ns
from router.metrics import RouterMetrics
from router.names import parse_name
from workers.events import Delta, Event, Final, GenerationRequest, InvalidRequest, PromptTooLong, Sampling, TextPrompt
from workers.spec import ModelSpec


@pytest.mark.parametrize(
    ("exc", "kind", "status", "message"),
    [
        (PromptTooLong("the prompt has 9 tokens"), ContextLengthExceeded, 400, "the prompt has 9 tokens"),
        (
            InvalidRequest("Traceback...\n  File x\nValueError: top_p must be in (0, 1]"),
            BadRequest,
            400,
            "ValueError: top_p must be in (0, 1]",
        ),
        (RuntimeError("EngineCore died"), EngineError, 500, "the model's engine failed: EngineCore died"),
        (ModelNotFound("x"), ModelNotFound, 404, "model 'x' not found"),
    ],
)
def test_worker_errors_map_to_client_errors(exc: Exception, kind: type[HerdError], status: int, message: str) -> None:
    err = map_error(exc)
    assert type(err) is kind and err.status == status and err.message == message


class _Stream:
    """What a streaming Ray handle call returns: an async iterator of batches with `cancel()`."""

    def __init__(self, batches: list[list[Event]], pause_s: float) -> None:
        self._batches = iter(batches)
        self._pause_s = pause_s
        self.cancelled = False

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> list[Event]:
        await asyncio.sleep(self._pause_s)
        try:
            return next(self._batches)
        except StopIteration:
            raise StopAsyncIteration from None

    def cancel(self) -> None:
        self.cancelled = True


class _Handle:
    """Test double of a worker deployment handle: `handle.options(stream=True).generate.remote(req)`."""

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream

    def options(self, **_: object) -> _Handle:
        return self

    @property
    def generate(self) -> _Handle:
        return self

    def remote(self, _: GenerationRequest) -> _Stream:
        return self.stream


def _record() -> ModelRecord:
    return ModelRecord(parse_name("m:1"), ModelSpec(name="m:1", source={"gguf": "/x.gguf"}), 0, "d", 0, 2048)


def test_router_added_time_is_wall_time_minus_worker_time() -> None:
    # Two 20 ms pauses, one per batch (the router stops at `Final`, not at the end of the stream);
    # the "worker" claims 30 ms of them, so at least 10 ms is the router's.
    final = Final("stop", 1, 2, 1, 1, worker_ns=30_000_000)
    stream = _Stream([[Delta("a", 1)], [Delta("b", 1), final]], pause_s=0.02)
    metrics = RouterMetrics()
    generations = Generations({"m--1": _Handle(stream)}, metrics)

    async def run() -> tuple[str, int]:
        events = await generations.open(
            _record(), GenerationRequest("r", TextPrompt("x"), Sampling()), "ollama", now_ns()
        )
        text, _ = await events.collect()
        return text, events.router_ns()

    text, router_ns = asyncio.run(run())
    assert text == "ab"
    assert 9_000_000 < router_ns < 40_000_000
    labels = {"model": "m:1", "api": "ollama"}
    assert metrics.registry.get_sample_value("herd_router_added_seconds_count", labels) == 1
    observed = metrics.registry.get_sample_value("herd_router_added_seconds_sum", labels)
    assert observed is not None and 0.009 < observed < 0.04
    assert b"herd_router_added_seconds_bucket" in metrics.exposition()
    value = metrics.registry.get_sample_value
    assert value("herd_requests_in_flight", {"model": "m:1"}) == 0
    assert value("herd_generation_tokens_total", labels) == 2 and value("herd_prompt_tokens_total", labels) == 1
    ttft = value("gen_ai_server_time_to_first_token_seconds_sum", labels)
    assert ttft is not None and 0.02 <= ttft < 0.06  # the first token came after one 20 ms pause
    tpot = value("gen_ai_server_time_per_output_token_seconds_sum", labels)
    assert tpot is not None and 0.02 <= tpot < 0.06  # one more token, one more pause


def test_leaving_early_cancels_and_records_nothing() -> None:
    stream = _Stream([[Delta("a", 1)], [Delta("b", 1)]], pause_s=0)
    metrics = RouterMetrics()
    generations = Generations({"m--1": _Handle(stream)}, metrics)

    async def run() -> None:
        events = await generations.open(
            _record(), GenerationRequest("r", TextPrompt("x"), Sampling()), "openai", now_ns()
        )
        async for _ in events:
            break

    asyncio.run(run())
    assert stream.cancelled
    assert metrics.registry.get_sample_value("herd_requests_in_flight", {"model": "m:1"}) == 0
    assert (
        metrics.registry.get_sample_value("herd_router_added_seconds_count", {"model": "m:1", "api": "openai"}) is None
    )
