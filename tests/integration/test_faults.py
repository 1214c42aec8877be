"""Faults against the real stack: how Herd stops, what it leaves behind, and what a Redis outage or a
dead manager costs clients. Recovery times are printed (`pytest -s`) for the notes.

The stop tests start a Herd of their own (the chat model alone); the others use the session's.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.configs import chat_only_yaml
from router.driver import watchdog
from tests.integration.conftest import MODEL, Stack, launch_herd, long_generation, until


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(cluster: str) -> list[int]:
    return [p for p in watchdog.processes_of(cluster) if watchdog.alive(p)]


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    config = tmp_path / "chat.yaml"
    config.write_text(chat_only_yaml())
    with launch_herd(tmp_path, "--config", str(config)) as stack:
        yield stack


def _stream_in_background(base: str) -> tuple[threading.Thread, list[str]]:
    """A long streamed generation; the lines it got (or the error that ended it) land in the list."""
    lines: list[str] = []

    def run() -> None:
        try:
            with httpx.stream("POST", f"{base}/api/generate", json=long_generation(), timeout=60) as r:
                lines.extend(r.iter_lines())
        except httpx.HTTPError as exc:
            lines.append(f"transport error: {type(exc).__name__}")

    thread = threading.Thread(target=run)
    thread.start()
    assert until(lambda: bool(lines), 60) is not None, "the stream did not start"
    return thread, lines


def test_sigterm_stops_every_process_within_10s(own_stack: Stack) -> None:
    cluster = own_stack.cluster_id
    before = _alive(cluster)
    assert any("VLLM" in _command(p) or "ModelWorker" in _command(p) for p in before), [_command(p) for p in before]
    stream, lines = _stream_in_background(own_stack.base)
    started = time.monotonic()
    own_stack.proc.send_signal(signal.SIGTERM)
    own_stack.proc.wait(timeout=30)
    exited = time.monotonic() - started
    gone = until(lambda: not _alive(cluster), 30)
    stream.join(timeout=30)
    print(f"\nSIGTERM: herd serve exited in {exited:.1f}s; every process gone after {gone}s; {len(before)} before")
    assert own_stack.proc.returncode == 0 and exited <= 10
    assert gone is not None and exited + gone <= 10, [_command(p) for p in _alive(cluster)]
    assert not stream.is_alive() and lines  # the client's stream ended, it did not hang
    assert "shutting down" in lines[-1], lines[-2:]  # with an in-band error, not a cut connection


def test_sigkill_of_herd_leaves_nothing_within_60s(own_stack: Stack) -> None:
    cluster = own_stack.cluster_id
    count = len(_alive(cluster))
    own_stack.proc.kill()
    own_stack.proc.wait()
    gone = until(lambda: not _alive(cluster), 60)
    print(f"\nSIGKILL of herd serve: {count} processes, all gone after {gone}s")
    assert gone is not None, [_command(p) for p in _alive(cluster)]


def test_when_ray_dies_herd_exits_nonzero_and_leaves_nothing(own_stack: Stack) -> None:
    """As `ray stop --force` does to this cluster alone: every Ray process killed at once."""
    cluster = own_stack.cluster_id
    ray_processes = [p for p in _alive(cluster) if p != own_stack.proc.pid]
    assert any("raylet" in _command(p) for p in ray_processes)
    started = time.monotonic()
    for pid in ray_processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    code = own_stack.proc.wait(timeout=60)
    exited = time.monotonic() - started
    gone = until(lambda: not _alive(cluster), 60)
    print(f"\nRay killed: herd serve exited {code} after {exited:.1f}s; all gone after another {gone}s")
    assert code != 0 and exited <= 15
    assert gone is not None, [_command(p) for p in _alive(cluster)]


def _redis_pid(stack: Stack) -> int:
    return int((stack.data / "redis" / "redis.pid").read_text())


def test_a_redis_outage_is_survived_and_loses_nothing(herd_stack: Stack | None, http: httpx.Client) -> None:
    if herd_stack is None:
        pytest.skip("needs the session's own Herd (HERD_TEST_URL is set)")
    names = {m["name"] for m in http.get("/api/tags").json()["models"]}
    stream, lines = _stream_in_background(herd_stack.base)
    old = _redis_pid(herd_stack)
    os.kill(old, signal.SIGKILL)
    # Meanwhile: the cached catalog lists models and loaded models answer.
    tags = http.get("/api/tags")
    answer = http.post(
        "/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
    )
    back = until(lambda: _redis_pid(herd_stack) != old and watchdog.alive(_redis_pid(herd_stack)), 30)
    stream.join(timeout=120)
    print(f"\nRedis kill -9: a new redis-server after {back}s")
    assert tags.status_code == 200 and {m["name"] for m in tags.json()["models"]} == names
    assert answer.status_code == 200 and answer.json()["eval_count"] == 2
    assert back is not None
    assert '"done":true' in lines[-1].replace(" ", ""), lines[-1:]  # the stream in flight finished
    # Back to normal: writes work and nothing was lost.
    assert http.post("/api/copy", json={"source": MODEL, "destination": "after-outage:1"}).status_code == 200
    assert {m["name"] for m in http.get("/api/tags").json()["models"]} == names | {"after-outage:1"}
    assert http.request("DELETE", "/api/delete", json={"model": "after-outage:1"}).status_code == 200


def test_a_killed_model_manager_comes_back(herd_stack: Stack | None, http: httpx.Client) -> None:
    if herd_stack is None:
        pytest.skip("needs the session's own Herd (HERD_TEST_URL is set)")
    manager = next(p for p in _alive(herd_stack.cluster_id) if "ModelManager" in _command(p))
    os.kill(manager, signal.SIGKILL)
    started = time.monotonic()
    statuses: list[int] = []

    def pulled() -> bool:  # as a client would: retry on 503 until the manager answers again
        r = http.post("/api/pull", json={"model": MODEL, "stream": False}, timeout=300)
        statuses.append(r.status_code)
        assert r.status_code in (200, 503), r.text
        return r.status_code == 200 and r.json()["status"] == "success"

    took = until(pulled, 120)
    print(f"\nModel manager SIGKILL: a pull through the restarted manager succeeded after {took}s ({statuses})")
    assert took is not None
    assert (time.monotonic() - started) < 120
