"""The embedded Redis: restarted on its port with its data when it dies, and gone when Herd is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from router.driver.redis_server import EmbeddedRedis


def _wait(condition: object, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_a_killed_server_comes_back_on_its_port_with_every_key(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    server.supervise(poll_s=0.1)
    try:
        client = redis.Redis.from_url(url)
        client.hset("herd:models", "m:1", "{}")
        time.sleep(1.5)  # appendfsync everysec: what was acknowledged is on disk within a second
        assert server._proc is not None
        os.kill(server._proc.pid, signal.SIGKILL)
        assert _wait(lambda: server.restarts == 1 and _answers(url))
        assert client.hget("herd:models", "m:1") == b"{}"
    finally:
        server.stop()


def test_the_server_exits_with_the_process_that_started_it(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from router.driver.redis_server import EmbeddedRedis\n"
        f"server = EmbeddedRedis(Path({str(tmp_path)!r}))\n"
        "server.start()\n"
        "print(server._proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no clean-up code of the parent runs
    parent.wait()
    assert _wait(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2])
