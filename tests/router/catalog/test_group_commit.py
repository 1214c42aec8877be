"""Group commit with a scripted round trip: who goes in which batch, and what each caller gets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from router.catalog.group_commit import GroupCommit


class _Redis:
    """A round trip per batch that the test opens and closes: `sent` holds each batch's items,
    `value` is what Redis holds when the batch is sent (what a read in it sees)."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []
        self.value = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: list[Exception | None] = []  # per batch, in order; missing: succeed

    async def send(self, items: list[str]) -> list[str | Exception]:
        self.sent.append(items)
        seen = self.value
        fail = self.fail[len(self.sent) - 1] if len(self.sent) <= len(self.fail) else None
        await self.gate.wait()
        if fail is not None:
            raise fail
        return [ValueError(item) if item.startswith("bad") else f"{item}@{seen}" for item in items]


async def _turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


Scenario = Callable[[_Redis, GroupCommit[str, str]], Awaitable[object]]


async def _same_turn(redis: _Redis, batcher: GroupCommit[str, str]) -> object:
    return await asyncio.gather(*(batcher(x) for x in ("a", "b", "c"))), redis.sent


async def _during_flight(redis: _Redis, batcher: GroupCommit[str, str]) -> object:
    redis.gate.clear()
    first = asyncio.gather(batcher("a"), batcher("b"))
    await _turn()  # a and b are in flight, sent while the value was 0
    redis.value = 1  # a write that lands after they were sent...
    later = asyncio.gather(batcher("c"), batcher("d"))  # ...then two calls: they must see it
    await _turn()
    redis.gate.set()
    return await first, await later, redis.sent


async def _one_bad_item(redis: _Redis, batcher: GroupCommit[str, str]) -> object:
    results = await asyncio.gather(batcher("a"), batcher("bad"), batcher("c"), return_exceptions=True)
    return [r if isinstance(r, str) else repr(r) for r in results], redis.sent


async def _failed_batch_then_next(redis: _Redis, batcher: GroupCommit[str, str]) -> object:
    redis.fail = [ConnectionError("down")]
    failed = await asyncio.gather(batcher("a"), batcher("b"), return_exceptions=True)
    return [repr(r) for r in failed], await batcher("c"), redis.sent


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        # Calls made in one turn of the loop: one round trip, each its own answer, in order.
        (_same_turn, (["a@0", "b@0", "c@0"], [["a", "b", "c"]])),
        # Calls made while a round trip is in flight wait for the next, which reads after them.
        (_during_flight, (["a@0", "b@0"], ["c@1", "d@1"], [["a", "b"], ["c", "d"]])),
        # An error reply for one call is raised to that call only.
        (_one_bad_item, (["a@0", "ValueError('bad')", "c@0"], [["a", "bad", "c"]])),
        # A failed round trip fails each of its calls; the next batch is sent as usual.
        (
            _failed_batch_then_next,
            (["ConnectionError('down')", "ConnectionError('down')"], "c@0", [["a", "b"], ["c"]]),
        ),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_batches(scenario: Scenario, expected: object) -> None:
    async def run() -> object:
        redis = _Redis()
        return await scenario(redis, GroupCommit[str, str](redis.send))

    assert asyncio.run(run()) == expected


def test_a_caller_cancelled_in_flight_leaves_the_batch_and_its_result_is_handed_back() -> None:
    async def run() -> tuple[str, list[tuple[str, str]], list[list[str]]]:
        redis, abandoned = _Redis(), []
        batcher = GroupCommit[str, str](redis.send, lambda item, result: abandoned.append((item, result)))
        redis.gate.clear()
        gone, stays = asyncio.create_task(batcher("gone")), asyncio.create_task(batcher("stays"))
        await _turn()
        gone.cancel()
        await _turn()
        redis.gate.set()
        return await stays, abandoned, redis.sent

    assert asyncio.run(run()) == ("stays@0", [("gone", "gone@0")], [["gone", "stays"]])


def test_a_caller_cancelled_before_its_batch_is_sent_is_left_out() -> None:
    async def run() -> tuple[str, list[list[str]]]:
        redis = _Redis()
        batcher = GroupCommit[str, str](redis.send)
        redis.gate.clear()
        first = asyncio.create_task(batcher("first"))
        await _turn()
        queued = asyncio.create_task(batcher("queued"))
        await _turn()
        queued.cancel()  # still waiting for the round trip in flight: never sent
        after = asyncio.create_task(batcher("after"))
        await _turn()
        redis.gate.set()
        await first
        return await after, redis.sent

    assert asyncio.run(run()) == ("after@0", [["first"], ["after"]])


def test_a_wrong_number_of_results_fails_the_batch_instead_of_misanswering() -> None:
    async def send(items: list[str]) -> list[str | Exception]:
        return ["only one"]

    async def run() -> list[BaseException | str]:
        batcher = GroupCommit[str, str](send)
        return await asyncio.gather(batcher("a"), batcher("b"), return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_one_batcher_serves_a_second_event_loop() -> None:
    redis = _Redis()
    batcher = GroupCommit[str, str](redis.send)
    assert asyncio.run(batcher("a")) == "a@0"
    assert asyncio.run(batcher("b")) == "b@0"


def test_a_call_with_no_answer_in_time_raises_and_counts_as_cancelled() -> None:
    async def run() -> tuple[str, list[tuple[str, str]]]:
        redis, abandoned = _Redis(), []

        def keep(item: str, result: str) -> None:
            abandoned.append((item, result))

        batcher = GroupCommit[str, str](redis.send, keep, wait_s=0.05, timeout=lambda: OSError("hung"))
        redis.gate.clear()  # Redis does not answer...
        with pytest.raises(OSError, match="hung"):
            await batcher("a")
        redis.gate.set()  # ...until later: the late result is handed back to be undone
        await _turn()
        return await batcher("b"), abandoned

    assert asyncio.run(run()) == ("b@0", [("a", "a@0")])
