"""CPU seconds per process role over a load: what every hop of a request costs.

Roles come from each process's command line (Ray titles its workers `ray::<class>`, vLLM its
engine processes `VLLM::EngineCore` / `VLLM::Worker`). A snapshot reads utime + stime from
/proc/<pid>/stat; the breakdown is the difference of two snapshots, per 4,096 streamed tokens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
PER_TOKENS = 4096

# First match wins: the order puts specific titles before generic ones.
ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("router replica", ("ray::ServeReplica:herd:router",)),
    ("engine core", ("VLLM::EngineCore",)),
    ("engine worker", ("VLLM::Worker",)),
    ("worker replica", ("ray::ServeReplica:",)),
    ("vLLM API server", ("vllm.entrypoints",)),
    # Ray's own share, split so that trimming one part shows: Serve's control loop, Herd's actors,
    # the per-node daemon, the control plane, the agents Herd does not use, and idle workers.
    ("Serve controller", ("ray::ServeController",)),
    ("herd actors", ("ray::ModelManager", "ray::MetricsHub", "ray::VectorActor")),
    ("raylet", ("raylet",)),
    ("GCS", ("gcs_server",)),
    ("Ray agents", ("ray/dashboard", "ray/autoscaler", "log_monitor", "runtime_env")),
    ("Ray idle workers", ("ray::",)),
    ("herd driver", ("bin/herd",)),
)


def role_of(command: str) -> str | None:
    for role, needles in ROLES:
        if any(n in command for n in needles):
            return role
    return None


Snapshot = dict[int, tuple[str, int]]


def snapshot(proc: Path = Path("/proc")) -> Snapshot:
    """pid -> (role, CPU ticks so far) for every process with a role."""
    out: Snapshot = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        role = role_of(command)
        if role is not None:
            fields = stat.rsplit(")", 1)[1].split()
            out[int(entry.name)] = (role, int(fields[11]) + int(fields[12]))  # utime, stime
    return out


def breakdown(before: Snapshot, after: Snapshot, tokens: int) -> dict[str, float]:
    """CPU seconds per role per 4,096 tokens between two snapshots (processes born meanwhile count
    from zero; those that died are not seen)."""
    used: dict[str, float] = {}
    for pid, (role, ticks) in after.items():
        start = before.get(pid, (role, 0))[1]
        used[role] = used.get(role, 0.0) + (ticks - start) / TICKS_PER_S
    scale = PER_TOKENS / max(tokens, 1)
    return {role: round(seconds * scale, 3) for role, seconds in sorted(used.items())}


def format_breakdown(label: str, per_role: Mapping[str, float]) -> str:
    parts = ", ".join(f"{role} {seconds:.2f}" for role, seconds in per_role.items())
    return f"  {label} CPU s per {PER_TOKENS} tokens: {parts} (total {sum(per_role.values()):.2f})"
