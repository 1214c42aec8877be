"""Which threads the driver moves off the cores a CPU engine pinned, and that moving one works."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from router.driver.cpu_placement import Process, Role, Task, apply, plan, processes, role, snapshot
from workers.deployment import NODE_CPUS_ENV, widen_to_node_cpus

ALL = frozenset({0, 1, 2, 3})
E, L, OTHER = Role.ENGINE, Role.LEFT, Role.OTHER


def _t(tid: int, cpus: set[int] | frozenset[int], role: Role = OTHER) -> Task:
    return Task(pid=tid // 10, tid=tid, role=role, cpus=frozenset(cpus))


@pytest.mark.parametrize(
    ("tasks", "expected"),
    [
        # A CPU engine pinned to core 0: the others get 1-3, its own threads and LEFT ones stay.
        ([_t(10, {0}, E), _t(11, {0}, E), _t(20, ALL), _t(21, ALL), _t(30, ALL, L)], {20: {1, 2, 3}, 21: {1, 2, 3}}),
        # Already placed: nothing to do.
        ([_t(10, {0}, E), _t(20, {1, 2, 3})], {}),
        # Two engines on cores 0 and 1: the rest get 2-3.
        ([_t(10, {0}, E), _t(30, {1}, E), _t(20, ALL)], {20: {2, 3}}),
        # Engines on every core: nothing is left for the rest, so nothing is narrowed.
        ([_t(10, {0, 1}, E), _t(30, {2, 3}, E), _t(20, ALL)], {}),
        # A GPU engine worker is not pinned: nothing changes on a GPU node.
        ([_t(10, ALL, E), _t(20, ALL)], {}),
        # The last pinned engine has gone: what was narrowed gets every CPU back.
        ([_t(20, {1, 2, 3}), _t(21, ALL)], {20: ALL}),
        ([], {}),
    ],
)
def test_plan(tasks: list[Task], expected: dict[int, set[int]]) -> None:
    assert plan(tasks, ALL) == {tid: frozenset(cpus) for tid, cpus in expected.items()}


WORKER_REPLICA = Process(5, 1, "ray::ServeRepli", "ray::ServeReplica:smollm2--135m:smollm2--135m")
ENGINE_CORE = Process(6, 5, "VLLM::EngineCor", "VLLM::EngineCore")


@pytest.mark.parametrize(
    ("process", "children", "expected"),
    [
        (Process(7, 6, "VLLM::Worker", "VLLM::Worker"), [], E),
        (Process(7, 6, "VLLM::Worker_TP0", "VLLM::Worker_TP0"), [], E),
        (ENGINE_CORE, [], L),  # unpinned in vLLM's own server too; it spawns the worker
        (WORKER_REPLICA, [], L),  # its engine core, still to come, would inherit a narrowed set
        (WORKER_REPLICA, [ENGINE_CORE], OTHER),
        (Process(4, 1, "ray::ServeRepli", "ray::ServeReplica:herd:router"), [], OTHER),
        (Process(3, 1, "raylet", "/venv/lib/ray/core/src/ray/raylet/raylet"), [], OTHER),
        (Process(2, 1, "ray::IDLE", "ray::IDLE"), [], OTHER),
    ],
)
def test_role(process: Process, children: list[Process], expected: Role) -> None:
    assert role(process, children) is expected


@pytest.fixture
def idle_thread() -> Iterator[int]:
    """A thread of this process that waits, and its id."""
    started, done = threading.Event(), threading.Event()
    tid: list[int] = []

    def run() -> None:
        tid.append(threading.get_native_id())
        started.set()
        done.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(10)
    yield tid[0]
    done.set()
    thread.join()


def test_snapshot_reads_every_thread_and_apply_moves_one(idle_thread: int) -> None:
    mine = snapshot([os.getpid(), 999_999_999])  # a pid that does not exist is left out
    assert idle_thread in {t.tid for t in mine} and {t.pid for t in mine} == {os.getpid()}
    assert {t.role for t in mine} == {Role.OTHER}  # pytest is neither vLLM's nor a replica
    (me,) = processes([os.getpid()])
    assert me.parent == os.getppid() and me.comm and me.title
    one = frozenset({min(os.sched_getaffinity(0))})
    assert apply({idle_thread: one, 999_999_999: one}) == 1
    assert os.sched_getaffinity(idle_thread) == one


def test_a_worker_widens_itself_to_the_cpus_herd_serve_got(monkeypatch: pytest.MonkeyPatch) -> None:
    every = os.sched_getaffinity(0)
    monkeypatch.setenv(NODE_CPUS_ENV, ",".join(map(str, sorted(every))))
    seen: list[set[int]] = []

    def narrowed_then_widened() -> None:  # in a thread of its own: affinity is per thread
        os.sched_setaffinity(0, {min(every)})
        seen.append(os.sched_getaffinity(0))
        widen_to_node_cpus()
        seen.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=narrowed_then_widened)
    thread.start()
    thread.join()
    assert seen == [{min(every)}, every]
