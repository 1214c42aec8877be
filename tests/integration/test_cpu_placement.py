"""The session's Herd keeps its own processes off the core its CPU engines pinned themselves to."""

from __future__ import annotations

import os

import pytest

from router.driver import watchdog
from router.driver.cpu_placement import Role, Task, snapshot
from tests.integration.conftest import Stack, until

pytestmark = pytest.mark.integration


def test_no_other_process_runs_on_the_engines_cores(herd_stack: Stack | None) -> None:
    if herd_stack is None:
        pytest.skip("needs the session's own herd serve, not HERD_TEST_URL")
    node = frozenset(os.sched_getaffinity(herd_stack.proc.pid))  # the driver is never narrowed
    if len(node) < 2:
        pytest.skip("vLLM reserves no core for other processes on one CPU")
    seen: list[Task] = []

    def placed() -> bool:
        seen[:] = snapshot(watchdog.processes_of(herd_stack.cluster_id))
        engines = frozenset().union(*(t.cpus for t in seen if t.role is Role.ENGINE))
        others = [t for t in seen if t.role is Role.OTHER]
        return bool(others) and bool(engines) and engines < node and all(not t.cpus & engines for t in others)

    took = until(placed, 15, every_s=0.5)  # the driver places every 5 s
    by_role = {r.value: sorted({tuple(sorted(t.cpus)) for t in seen if t.role is r}) for r in Role}
    print(f"\nplaced after {took}s; CPUs by role: {by_role}")
    assert took is not None, by_role
