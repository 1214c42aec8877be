"""Keep this machine's Herd processes off the cores a CPU engine has pinned itself to.

vLLM's CPU worker binds its OpenMP threads to cores of the set it may run on and leaves the rest
"for other processes" (its log: `core ids=[0], reserved_cpus=[1]` on two cores). Beside vLLM's own
server only its API server and engine core want those; beside Herd, so do the router and worker
replicas, Herd's actors and Ray's daemons, and the kernel now and then runs one of them on the
engine's core, pre-empting a decode step. Moving every other process off the engine's core, by
hand, took ITL p50 at one stream (Ollama's default sampling) from 23.1 to 21.1 ms and p99 from
34.9 to 30.6 ms, vLLM's own server's figures (README, "Where the time per token goes").

So the driver, now and then, gives every other process of its cluster on this machine the CPUs no
engine worker is pinned to. GPU engine workers are not pinned, so on a GPU node nothing changes;
nor where pinned engines cover every CPU. When the last pinned engine goes, the others get every
CPU back. Left alone: vLLM's own processes (their engine core is unpinned in vLLM's server too, and
spawns the worker that binds), and a worker replica until its engine core exists, because vLLM's
auto-binding picks from the set the engine inherits from it. A worker replica widens itself to
every CPU before it starts an engine (workers/deployment.py), as it may have been narrowed as one
of Ray's idle workers before it became a replica.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from router.driver import watchdog

# vLLM titles its processes "VLLM::EngineCore", "VLLM::Worker", "VLLM::Worker_TP0"...
# (`/proc/<pid>/comm` keeps 15 characters).
VLLM = "VLLM::"
ENGINE_WORKER = "VLLM::Worker"
# Ray titles a Serve replica "ray::ServeReplica:<app>:<deployment>"; Herd's router app is "herd",
# every other app is a model's worker (router/manager/lifecycle.py).
REPLICA, ROUTER_REPLICA = "ray::ServeReplica:", "ray::ServeReplica:herd:"


class Role(enum.Enum):
    ENGINE = "engine"  # a vLLM worker: where it is pinned is what the others keep off
    LEFT = "left"  # never moved (now)
    OTHER = "other"  # moved off the engines' cores


@dataclass(frozen=True, slots=True)
class Task:
    """One thread: its process, that process's role, the CPUs the thread may run on."""

    pid: int
    tid: int
    role: Role
    cpus: frozenset[int]


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    parent: int
    comm: str
    title: str  # the first word of its command line, which Ray sets to the actor's name


def role(process: Process, children: Iterable[Process]) -> Role:
    if process.comm.startswith(ENGINE_WORKER):
        return Role.ENGINE
    if process.comm.startswith(VLLM):
        return Role.LEFT
    if process.title.startswith(REPLICA) and not process.title.startswith(ROUTER_REPLICA):
        # A worker replica: its engine core inherits its CPUs, so only once that exists.
        return Role.OTHER if any(c.comm.startswith(VLLM) for c in children) else Role.LEFT
    return Role.OTHER


def plan(tasks: Iterable[Task], node_cpus: frozenset[int]) -> dict[int, frozenset[int]]:
    """Thread id -> the CPUs it should get, for each OTHER thread whose CPUs are not those already:
    the machine's CPUs less those of engine workers pinned to fewer than all of them (all of them,
    if nothing would be left or no engine is pinned)."""
    tasks = list(tasks)
    pinned = [t.cpus for t in tasks if t.role is Role.ENGINE and t.cpus < node_cpus]
    target = node_cpus.difference(*pinned) or node_cpus
    return {t.tid: target for t in tasks if t.role is Role.OTHER and t.cpus != target}


def processes(pids: Iterable[int], proc: Path = Path("/proc")) -> list[Process]:
    """What `role` needs of each of `pids` (those that exit meanwhile are left out)."""
    found = []
    for pid in pids:
        try:
            stat = (proc / str(pid) / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # after the state letter
            comm = (proc / str(pid) / "comm").read_text().strip()
            title = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except (OSError, ValueError, IndexError):  # exited meanwhile (a zombie has no cmdline)
            continue
        found.append(Process(pid, parent, comm, title))
    return found


def snapshot(pids: Iterable[int], proc: Path = Path("/proc")) -> list[Task]:
    """Every thread of `pids`, with its process's role."""
    procs = processes(pids, proc)
    tasks = []
    for p in procs:
        kind = role(p, (c for c in procs if c.parent == p.pid))
        try:
            tids = [int(t.name) for t in (proc / str(p.pid) / "task").iterdir()]
        except OSError:
            continue
        for tid in tids:
            try:
                cpus = frozenset(os.sched_getaffinity(tid))
            except OSError:
                continue
            tasks.append(Task(p.pid, tid, kind, cpus))
    return tasks


def apply(changes: Mapping[int, frozenset[int]]) -> int:
    """Set each thread's CPUs; returns how many were set (a thread may have exited meanwhile)."""
    done = 0
    for tid, cpus in changes.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue
        done += 1
    return done


def keep_off_engine_cores(cluster_id: str, node_cpus: frozenset[int]) -> int:
    """One pass over this machine's processes of the cluster; returns the threads moved."""
    return apply(plan(snapshot(watchdog.processes_of(cluster_id)), node_cpus))
