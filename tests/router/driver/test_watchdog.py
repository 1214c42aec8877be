"""Nothing of Herd's outlives the driver: the watchdog stops every process with the cluster's mark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from router.driver import watchdog

# A stand-in driver: starts the watchdog, then two children in sessions of their own (as Ray's
# workers and vLLM's engine cores are), one of which ignores SIGTERM as engine cores do.
DRIVER = """
import os, subprocess, sys, time
from router.driver import watchdog
os.environ[watchdog.ENV] = sys.argv[1]
watchdog.spawn(sys.argv[1])
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
for code in ("import time; time.sleep(120)", stubborn):
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    print(child.pid, flush=True)
time.sleep(120)
"""


def test_every_marked_process_is_stopped_once_the_driver_is_killed() -> None:
    cluster = uuid.uuid4().hex
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster], stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None
    children = [int(driver.stdout.readline()) for _ in range(2)]
    time.sleep(0.5)
    assert set(children) <= set(watchdog.processes_of(cluster))
    driver.kill()  # SIGKILL: the driver runs no clean-up of its own
    driver.wait()
    deadline = time.monotonic() + watchdog.POLL_S + watchdog.GRACE_S + 5
    while time.monotonic() < deadline and any(watchdog.alive(p) for p in children):
        time.sleep(0.1)
    assert not any(watchdog.alive(p) for p in children)
    assert list(watchdog.processes_of(cluster)) == []


def test_processes_of_other_clusters_are_left_alone() -> None:
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], env={**os.environ, watchdog.ENV: "someone-else"}
    )
    try:
        assert watchdog.clean_up(uuid.uuid4().hex, grace_s=0.1) == []
        assert other.poll() is None
    finally:
        other.kill()
