from __future__ import annotations

import asyncio

import pytest

from router.dispatch.availability import Availability


class Controller:
    """Serve's answers in order (the last one repeats), with the reads counted; a clock tests move."""

    def __init__(self, *answers: dict[str, int] | Exception) -> None:
        self.answers = list(answers)
        self.reads = 0
        self.now = 0.0

    async def read(self) -> dict[str, int]:
        self.reads += 1
        answer = self.answers[min(self.reads, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def availability(self) -> Availability:
        return Availability(self.read, max_age_s=1.0, recheck_s=0.25, clock=lambda: self.now)


@pytest.mark.parametrize(
    ("answers", "refused", "reads"),
    [
        # First request: nothing known yet, so it passes and a read starts in the background.
        ([{"m": 2}], [False, False], 1),
        # Serve says 0 running: the first request passes (unknown), the next is refused.
        ([{"m": 0}], [False, True], 1),
        # A model Serve does not list (not deployed yet, loading) is never refused.
        ([{"other": 0}], [False, False], 1),
        # The controller failing keeps the last snapshot; nothing is refused on no data.
        ([RuntimeError("controller restarting")], [False, False], 1),
    ],
)
def test_refused_only_when_serve_lists_no_running_replica(
    answers: list[dict[str, int] | Exception], refused: list[bool], reads: int
) -> None:
    controller = Controller(*answers)
    availability = controller.availability()

    async def run() -> list[bool]:
        seen = []
        for _ in refused:
            seen.append(await availability.none_running("m"))
            await asyncio.sleep(0)  # let the background read finish
        return seen

    assert asyncio.run(run()) == refused
    assert controller.reads == reads


def test_a_snapshot_saying_none_is_read_again_before_refusing() -> None:
    # 0 running, then replicas came back: a request after the recheck interval reads again and passes.
    controller = Controller({"m": 0}, {"m": 1})
    availability = controller.availability()

    async def run() -> list[bool]:
        first = await availability.none_running("m")
        await asyncio.sleep(0)
        refused_now = await availability.none_running("m")  # the snapshot is fresh: no new read
        controller.now = 0.5
        after_recheck = await availability.none_running("m")
        return [first, refused_now, after_recheck]

    assert asyncio.run(run()) == [False, True, False]
    assert controller.reads == 2


def test_one_read_serves_many_requests() -> None:
    controller = Controller({"m": 0})
    availability = controller.availability()

    async def run() -> list[bool]:
        await availability.none_running("m")
        await asyncio.sleep(0)
        controller.now = 0.5  # past the recheck: every request wants a fresh read, one is made
        return list(await asyncio.gather(*(availability.none_running("m") for _ in range(100))))

    assert asyncio.run(run()) == [True] * 100
    assert controller.reads == 2


def test_a_stale_snapshot_is_refreshed_in_the_background() -> None:
    controller = Controller({"m": 1}, {"m": 3})
    availability = controller.availability()

    async def run() -> None:
        await availability.none_running("m")
        await asyncio.sleep(0)
        controller.now = 0.9  # younger than max_age: no read
        await availability.none_running("m")
        controller.now = 2.0
        assert not await availability.none_running("m")  # answered from the old snapshot at once
        await asyncio.sleep(0)

    asyncio.run(run())
    assert controller.reads == 2
