from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from ray.serve.exceptions import BackPressureError

from router.catalog.catalog import ModelRecord
from router.catalog.store import CatalogStore
from router.dispatch.availability import Availability, ClusterView
from router.dispatch.failures import map_error
from router.dispatch.generation import Generations
from router.dispatch.inbox import EventInbox
from router.dispatch.leases import Leases
from router.dispatch.metrics import RouterMetrics
from router.errors import (
    BadRequest,
    ContextLengthExceeded,
    EngineError,
    HerdError,
    ModelNotFound,
    Overloaded,
    ReplicaLost,
    TimedOut,
)
from router.timing import now_ns
from tests.support import CHANNEL_SECRET, FakeWorker, LocalHandles, collect, open_streams, record, seed
from workers.events import Delta, Final, GenerationRequest, InvalidRequest, PromptTooLong, Sampling, TextPrompt


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
        (RuntimeError("EngineCore died"), EngineError, 500, "the model's engine failed: RuntimeError"),
        (ModelNotFound("x"), ModelNotFound, 404, "model 'x' not found"),
        (
            BackPressureError(num_queued_requests=3, max_queued_requests=2),
            Overloaded,
            503,
            "the model's request queue is full, try again shortly",
        ),
    ],
)
def test_worker_errors_map_to_client_errors(
    exc: Exception, kind: type[HerdError], status: int, message: str, make_generations: MakeGenerations
) -> None:
    err = map_error(exc)
    assert type(err) is kind and err.status == status and err.message == message
    assert (err.retry_after is not None) == (status == 503)


MakeGenerations = Callable[..., Awaitable[tuple[Generations, EventInbox]]]


@pytest.fixture
def make_generations(redis_url: str) -> MakeGenerations:
    """Generations over one worker double for model "m:1", loaded in the test's Redis."""
    seed(redis_url, [_record()])

    async def make(
        worker: FakeWorker, metrics: RouterMetrics, timeout_s: float = 600.0
    ) -> tuple[Generations, EventInbox]:
        inbox = EventInbox(CHANNEL_SECRET)
        await inbox.start("127.0.0.1")
        leases = Leases(CatalogStore.from_url(redis_url), None, "test-router")
        # Warm up as a running router is: the process's first Redis pipeline takes ~50 ms.
        (await leases.acquire(_record())).release()
        return Generations(LocalHandles({"m--1": worker}), metrics, inbox, leases, timeout_s), inbox

    return make


def _record() -> ModelRecord:
    return record("m:1")


def _gpu_record() -> ModelRecord:
    """The same model with replicas that need a GPU (a node without one cannot take them)."""
    plain = _record()
    return plain.model_copy(update={"spec": plain.spec.model_copy(update={"gpus_per_replica": 1})})


def test_router_added_time_is_wall_time_minus_worker_time(make_generations: MakeGenerations) -> None:
    # Two 20 ms pauses, one per batch (the router stops at `Final`, not at the end of the stream);
    # the "worker" claims 30 ms of them, so at least 10 ms is the router's.
    final = Final("stop", 1, 2, 1, 1, worker_ns=30_000_000)
    worker = FakeWorker([[Delta("a", 1)], [Delta("b", 1), final]], pause_s=0.02)
    metrics = RouterMetrics()

    async def run() -> tuple[str, int]:
        generations, inbox = await make_generations(worker, metrics)
        events = await generations.open(
            _record(), GenerationRequest("r", TextPrompt("x"), Sampling()), "ollama", now_ns()
        )
        text, _ = await collect(events)
        assert open_streams(inbox) == 0
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


def test_leaving_early_cancels_and_records_nothing(make_generations: MakeGenerations) -> None:
    worker = FakeWorker([[Delta("a", 1)], [Delta("b", 1)], [Delta("c", 1)]], pause_s=0.02)
    metrics = RouterMetrics()

    async def run() -> None:
        generations, inbox = await make_generations(worker, metrics)
        events = await generations.open(
            _record(), GenerationRequest("r", TextPrompt("x"), Sampling()), "openai", now_ns()
        )
        async for _ in events:
            break
        await asyncio.sleep(0.01)
        assert worker.cancelled == 1
        assert worker.sent == 1 and open_streams(inbox) == 0

    asyncio.run(run())
    assert metrics.registry.get_sample_value("herd_requests_in_flight", {"model": "m:1"}) == 0
    assert (
        metrics.registry.get_sample_value("herd_router_added_seconds_count", {"model": "m:1", "api": "openai"}) is None
    )


def _open_and_collect(worker: FakeWorker, make_generations: MakeGenerations) -> str:
    async def run() -> str:
        generations, _ = await make_generations(worker, RouterMetrics())
        request = GenerationRequest("r", TextPrompt("x"), Sampling())
        events = await generations.open(_record(), request, "ollama", now_ns())
        text, _ = await collect(events)
        return text

    return asyncio.run(run())


def test_a_replica_lost_before_the_first_token_is_retried_once(make_generations: MakeGenerations) -> None:
    worker = FakeWorker([[Delta("ok", 1), Final("stop", 1, 1, 1, 1, 1)]], pause_s=0, deaths=1)
    assert _open_and_collect(worker, make_generations) == "ok" and len(worker.requests) == 2


def test_a_second_loss_is_a_503_with_retry_after(make_generations: MakeGenerations) -> None:
    worker = FakeWorker([[Delta("ok", 1), Final("stop", 1, 1, 1, 1, 1)]], pause_s=0, deaths=2)
    with pytest.raises(ReplicaLost, match="replica died") as info:
        _open_and_collect(worker, make_generations)
    assert len(worker.requests) == 2 and info.value.status == 503 and info.value.retry_after


def test_a_model_with_no_running_replica_is_a_503_at_once(make_generations: MakeGenerations) -> None:
    """Serve would queue the request until a replica comes back (a lost node: maybe never)."""
    worker = FakeWorker([[Delta("ok", 1), Final("stop", 1, 1, 1, 1, 1)]])

    async def no_replicas() -> ClusterView:
        return ClusterView({"m--1": 0}, node_gpus=0)

    async def run() -> None:
        generations, _ = await make_generations(worker, RouterMetrics())
        generations._availability = Availability(no_replicas, recheck_s=0)
        await generations._availability.unservable("m--1", 1)  # the first look starts the read
        await asyncio.sleep(0)
        request = GenerationRequest("r", TextPrompt("x"), Sampling())
        with pytest.raises(Overloaded, match="no running replica") as info:
            await asyncio.wait_for(generations.open(_gpu_record(), request, "ollama", now_ns()), 1)
        assert info.value.status == 503 and info.value.retry_after == 10
        await asyncio.sleep(0.05)  # the lease's end is sent in the background
        assert (await generations.leases.store.busy()).get("m--1", 0) == 0  # the lease was given back

    asyncio.run(run())
    assert worker.requests == []


def test_a_request_waiting_when_the_last_replica_goes_is_a_503_and_cancelled(
    make_generations: MakeGenerations, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serve holds a call that finds no replica; the router keeps looking while it waits."""
    monkeypatch.setattr("router.dispatch.generation.NO_REPLICA_CHECK_S", 0.05)
    worker = FakeWorker([[Delta("late", 1), Final("stop", 1, 1, 1, 1, 1)]], pause_s=5)
    running = {"m--1": 1}

    async def counts() -> ClusterView:
        return ClusterView(dict(running), node_gpus=0)

    async def run() -> float:
        generations, inbox = await make_generations(worker, RouterMetrics())
        generations._availability = Availability(counts, max_age_s=0, recheck_s=0)
        request = GenerationRequest("r", TextPrompt("x"), Sampling())
        opening = asyncio.create_task(generations.open(_gpu_record(), request, "ollama", now_ns()))
        await asyncio.sleep(0.2)
        assert not opening.done()  # replicas run: it waits for its first token
        running["m--1"] = 0  # the node with every replica left
        started = asyncio.get_running_loop().time()
        with pytest.raises(Overloaded, match="no running replica"):
            await asyncio.wait_for(opening, 2)
        await asyncio.sleep(0.05)
        assert worker.cancelled == 1 and open_streams(inbox) == 0
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(run()) < 1


@pytest.mark.parametrize(("pause_s", "timeout_s", "sent"), [(0.3, 0.1, range(0, 1)), (0.1, 0.25, range(1, 4))])
def test_a_generation_past_its_time_limit_is_stopped(
    pause_s: float, timeout_s: float, sent: range, make_generations: MakeGenerations
) -> None:
    """Before the first token: a 504 error. After it: the stream ends with that error. Both cancel."""
    worker = FakeWorker([[Delta("a", 1)], [Delta("b", 1)], [Delta("c", 1)], [Delta("d", 1)]], pause_s=pause_s)

    async def run() -> None:
        generations, inbox = await make_generations(worker, RouterMetrics(), timeout_s)
        request = GenerationRequest("r", TextPrompt("x"), Sampling())
        with pytest.raises(TimedOut) as info:
            events = await generations.open(_record(), request, "ollama", now_ns())
            await collect(events)
        assert info.value.status == 504
        await asyncio.sleep(0.01)
        assert worker.cancelled == 1 and open_streams(inbox) == 0

    asyncio.run(run())
    assert worker.sent in sent  # stopped before the first batch, or between batches (never all four)


@pytest.mark.parametrize(("seed", "seeds"), [(7, [7, 8, 9]), (None, [None, None, None])])
def test_n_choices_are_independent_requests(
    seed: int | None, seeds: list[int | None], make_generations: MakeGenerations
) -> None:
    worker = FakeWorker([[Delta("ok", 1), Final("stop", 1, 1, 1, 1, 1)]], pause_s=0)
    metrics = RouterMetrics()

    async def run() -> list[str]:
        generations, inbox = await make_generations(worker, metrics)
        request = GenerationRequest("r", TextPrompt("x"), Sampling(seed=seed))
        streams = await generations.open_choices(_record(), request, 3, "openai", now_ns())
        texts = [(await collect(s))[0] for s in streams]
        assert open_streams(inbox) == 0
        return texts

    assert asyncio.run(run()) == ["ok", "ok", "ok"]
    assert sorted(r.sampling.seed or 0 for r in worker.requests) == sorted(s or 0 for s in seeds)
    assert len({r.request_id for r in worker.requests}) == 3
    assert metrics.registry.get_sample_value("herd_requests_in_flight", {"model": "m:1"}) == 0
