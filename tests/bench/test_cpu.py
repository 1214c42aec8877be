"""The benchmark's CPU breakdown: roles from command lines, seconds per 4,096 tokens from /proc."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench import cpu


@pytest.mark.parametrize(
    ("command", "role"),
    [
        ("ray::ServeReplica:herd:router", "router replica"),
        ("ray::ServeReplica:smollm2--135m:smollm2--135m", "worker replica"),
        ("VLLM::EngineCore", "engine core"),
        ("VLLM::Worker", "engine worker"),
        ("/venv/bin/python -m vllm.entrypoints.openai.api_server --model m", "vLLM API server"),
        ("/venv/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=x", "raylet"),
        ("/venv/lib/ray/core/src/ray/gcs/gcs_server --gcs_server_port=1", "GCS"),
        ("ray::ServeController", "Serve controller"),
        ("ray::ModelManager.ensure_loaded", "herd actors"),
        ("/venv/bin/python /venv/lib/ray/dashboard/agent.py --node-ip-address=x", "Ray agents"),
        ("ray::IDLE", "Ray idle workers"),
        ("/venv/bin/python /venv/bin/herd serve --port 1", "herd driver"),
        ("/usr/bin/bash", None),
    ],
)
def test_roles_come_from_command_lines(command: str, role: str | None) -> None:
    assert cpu.role_of(command) == role


def test_breakdown_is_per_4096_tokens_and_counts_new_processes_from_zero() -> None:
    tick = cpu.TICKS_PER_S
    before = {1: ("router replica", 10 * tick), 2: ("engine core", 0)}
    after = {1: ("router replica", 12 * tick), 2: ("engine core", 8 * tick), 3: ("raylet", tick)}
    assert cpu.breakdown(before, after, 2048) == {"engine core": 16.0, "raylet": 2.0, "router replica": 4.0}


def test_a_snapshot_reads_a_busy_process_cpu_time() -> None:
    # A busy loop whose command line carries a role's title.
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass", "bin/herd"])
    try:
        first = cpu.snapshot()
        time.sleep(0.5)
        second = cpu.snapshot()
    finally:
        busy.kill()
    assert first[busy.pid][0] == "herd driver"
    assert cpu.breakdown(first, second, cpu.PER_TOKENS)["herd driver"] >= 0.2
