"""One catalog for every router replica, and it survives a restart of the whole stack.

Its own Herd: the chat model alone, two router replicas sharing the port (SO_REUSEPORT spreads
new connections over them), and the embedded Redis persisting into the test's data directory.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx

from bench.configs import chat_only_yaml
from router.driver import watchdog
from tests.integration.conftest import MODEL, Stack, launch_herd, start_herd, until

SYSTEM = "You answer in French."
CONNECTIONS = 24


def _fresh_connections(base: str, name: str) -> list[httpx.Response]:
    """Each request on a new connection, so the kernel picks a router replica each time."""
    responses = []
    for _ in range(CONNECTIONS):
        with httpx.Client(base_url=base, timeout=30) as client:
            responses.append(client.post("/api/show", json={"model": name}))
    return responses


def _replicas_that_answered_show(base: str) -> set[str]:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    pattern = r'herd_requests_total\{[^}]*endpoint="/api/show"[^}]*replica="([^"]+)"[^}]*\} ([0-9.]+)'
    return {replica for replica, value in re.findall(pattern, text) if float(value) > 0}


def _router_pids(stack: Stack) -> list[int]:
    """This stack's router replicas (Ray titles them by deployment)."""
    return [
        pid
        for pid in watchdog.processes_of(stack.cluster_id)
        if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::ServeReplica:herd:router")
    ]


def test_two_routers_share_one_catalog_that_survives_a_restart(tmp_path: Path) -> None:
    config = tmp_path / "chat.yaml"
    config.write_text(chat_only_yaml())
    two_routers = {"HERD_ROUTER_REPLICAS": "2"}
    with launch_herd(tmp_path, "--config", str(config), env=two_routers) as stack:
        base = stack.base
        with httpx.Client(base_url=base, timeout=60) as http:
            created = http.post("/api/create", json={"model": "shared:test", "from": MODEL, "system": SYSTEM})
            assert created.status_code == 200
            assert http.post("/api/copy", json={"source": MODEL, "destination": "gone:test"}).status_code == 200
            assert http.request("DELETE", "/api/delete", json={"model": "gone:test"}).status_code == 200
        shown = _fresh_connections(base, "shared:test")
        assert all(r.status_code == 200 and r.json()["system"] == SYSTEM for r in shown)
        assert all(r.status_code == 404 for r in _fresh_connections(base, "gone:test"))
        # Both replicas answered (each reports its counters to the metrics hub every 5 s).
        assert until(lambda: len(_replicas_that_answered_show(base)) == 2, 20, every_s=1) is not None
        # One router replica dies: the other keeps the port, new requests do not fail.
        routers = _router_pids(stack)
        assert len(routers) == 2, routers
        router = routers[0]
        os.kill(router, signal.SIGKILL)
        started = time.monotonic()
        # Until the killed process has exited, its listening socket is still in the port's
        # SO_REUSEPORT group: a connection the kernel queues there is reset when it closes.
        teardown = until(lambda: not watchdog.alive(router), 10, every_s=0.01)
        assert teardown is not None, f"{router} still running"
        after = _fresh_connections(base, "shared:test")
        statuses = sorted({r.status_code for r in after})
        print(f"\none router SIGKILLed, exited after {teardown}s: {len(after)} new requests, statuses {statuses}")
        assert all(r.status_code == 200 for r in after), [r.status_code for r in after]
        assert time.monotonic() - started < 30

    with start_herd(tmp_path, "--config", str(config)) as base:
        with httpx.Client(base_url=base, timeout=60) as http:
            assert http.post("/api/show", json={"model": "shared:test"}).json()["system"] == SYSTEM
            names = {m["name"] for m in http.get("/api/tags").json()["models"]}
            assert {"shared:test", MODEL} <= names and "gone:test" not in names
            answer = http.post("/api/chat", json={
                "model": "shared:test",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": False,
                "options": {"num_predict": 2},
            })  # fmt: skip
            assert answer.status_code == 200 and answer.json()["eval_count"] == 2
