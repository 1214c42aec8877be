"""A watchdog that outlives `herd serve`: when the driver is gone, nothing it started keeps running.

vLLM's engine-core processes are children of Ray workers; when Ray's processes die at once
(`ray stop --force`, a raylet killed by memory pressure, a SIGKILL of the whole tree) nobody reaps
them, and they hold the GPU's memory. Every process of one Herd carries `HERD_CLUSTER=<id>` in its
environment (set by the driver, inherited through Ray and vLLM), so this watchdog, in a session of
its own and depending on nothing of Ray's, finds them in /proc once the driver has exited: SIGTERM,
then SIGKILL for those that ignore it.

Run as `python -m router.driver.watchdog <driver pid> <cluster id>` (the CLI starts it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "HERD_CLUSTER"
POLL_S = 0.5
GRACE_S = 2.0


def processes_of(cluster_id: str, proc: Path = Path("/proc")) -> Iterator[int]:
    """Pids whose environment carries this cluster's id (never this process)."""
    marker = f"{ENV}={cluster_id}".encode()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environ.split(b"\0"):
            yield int(entry.name)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited already


def clean_up(cluster_id: str, grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM every process of the cluster, SIGKILL what is left after `grace_s`; returns the pids."""
    pids = list(processes_of(cluster_id))
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    _signal([p for p in pids if alive(p)], signal.SIGKILL)
    return pids


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def watch(driver_pid: int, cluster_id: str) -> None:
    while alive(driver_pid):
        time.sleep(POLL_S)
    clean_up(cluster_id)


def spawn(cluster_id: str) -> subprocess.Popen[bytes]:
    """Start the watchdog for this process, detached: its own session, so a signal to the driver's
    process group (Ctrl-C, `kill -- -pgid`) does not stop it too."""
    env = {k: v for k, v in os.environ.items() if k != ENV}  # it must not find itself
    argv = [sys.executable, "-m", "router.driver.watchdog", str(os.getpid()), cluster_id]
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
