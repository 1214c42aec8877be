from __future__ import annotations

import asyncio

import pytest

from router.dispatch.availability import Availability, ClusterView

GONE = ClusterView({"m": 0}, node_gpus=0)  # its replicas went with the only GPU node
BACK = ClusterView({"m": 1}, node_gpus=2)


class Controller:
    """Serve's and Ray's answers in order (the last one repeats), with the reads counted; a clock
    tests move."""

    def __init__(self, *answers: ClusterView | Exception) -> None:
        self.answers = list(answers)
        self.reads = 0
        self.now = 0.0

    async def read(self) -> ClusterView:
        self.reads += 1
        answer = self.answers[min(self.reads, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def availability(self) -> Availability:
        return Availability(self.read, max_age_s=1.0, recheck_s=0.25, clock=lambda: self.now)


@pytest.mark.parametrize(
    ("view", "gpus", "refused"),
    [
        (BACK, 1, False),  # replicas run
        (GONE, 1, True),  # none runs and no node has a GPU: Serve would hold requests for good
        (GONE, 0, False),  # a CPU model: its replacements can be placed, Serve is starting them
        (ClusterView({"m": 0}, node_gpus=4), 2, False),  # restarting on a node that can hold them
        (ClusterView({"m": 0}, node_gpus=2), 4, True),  # no node holds a tensor-parallel replica
        (ClusterView({"other": 0}, node_gpus=0), 1, False),  # not listed (not deployed yet, loading)
        (RuntimeError("controller restarting"), 1, False),  # no data: nothing refused
    ],
)
def test_refused_only_when_no_replica_runs_and_none_can_be_placed(
    view: ClusterView | Exception, gpus: float, refused: bool
) -> None:
    controller = Controller(view)
    availability = controller.availability()

    async def run() -> list[bool]:
        first = await availability.unservable("m", gpus)  # nothing known yet: passes, reads in the background
        await asyncio.sleep(0)
        return [first, await availability.unservable("m", gpus), availability.known_unservable("m", gpus)]

    assert asyncio.run(run()) == [False, refused, refused]
    assert controller.reads == (1 if gpus else 0)  # a CPU model: no view refuses it, none is read


def test_a_cpu_model_is_never_refused_and_never_reads() -> None:
    controller = Controller(GONE)
    availability = controller.availability()

    async def run() -> list[bool]:
        answers = []
        for now in (0.0, 0.5, 2.0, 10.0):
            controller.now = now
            answers.append(await availability.unservable("m", 0))
            await asyncio.sleep(0)
        return answers

    assert asyncio.run(run()) == [False] * 4
    assert controller.reads == 0


def test_a_view_that_refuses_is_read_again_before_refusing() -> None:
    controller = Controller(GONE, BACK)
    availability = controller.availability()

    async def run() -> list[bool]:
        await availability.unservable("m", 1)
        await asyncio.sleep(0)
        refused_now = await availability.unservable("m", 1)  # the view is fresh: no new read
        controller.now = 0.5
        after_recheck = await availability.unservable("m", 1)
        return [refused_now, after_recheck]

    assert asyncio.run(run()) == [True, False]
    assert controller.reads == 2


def test_one_read_serves_many_requests() -> None:
    controller = Controller(GONE)
    availability = controller.availability()

    async def run() -> list[bool]:
        await availability.unservable("m", 1)
        await asyncio.sleep(0)
        controller.now = 0.5  # past the recheck: every request wants a fresh read, one is made
        return list(await asyncio.gather(*(availability.unservable("m", 1) for _ in range(100))))

    assert asyncio.run(run()) == [True] * 100
    assert controller.reads == 2


def test_a_request_about_to_be_sent_never_reads_and_ignores_an_old_view() -> None:
    controller = Controller(GONE)
    availability = controller.availability()

    async def run() -> list[bool]:
        before_any_read = availability.known_unservable("m", 1)
        await availability.unservable("m", 1)
        await asyncio.sleep(0)
        fresh = availability.known_unservable("m", 1)
        controller.now = 1.5  # older than max_age: not trusted, and not read again
        return [before_any_read, fresh, availability.known_unservable("m", 1)]

    assert asyncio.run(run()) == [False, True, False]
    assert controller.reads == 1


def test_a_stale_view_is_refreshed_in_the_background() -> None:
    controller = Controller(BACK, ClusterView({"m": 3}, node_gpus=2))
    availability = controller.availability()

    async def run() -> None:
        await availability.unservable("m", 1)
        await asyncio.sleep(0)
        controller.now = 0.9  # younger than max_age: no read
        await availability.unservable("m", 1)
        controller.now = 2.0
        assert not await availability.unservable("m", 1)  # answered from the old view at once
        await asyncio.sleep(0)

    asyncio.run(run())
    assert controller.reads == 2
