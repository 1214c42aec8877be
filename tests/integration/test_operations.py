"""Operating a cluster: two replicas of one model, a bounded queue, and a replica killed mid-stream.

These run against a second Herd of their own (two SmolLM2 replicas, two requests each, a queue of
two), because they load and break it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.configs import chat_only_yaml
from tests.integration.conftest import MODEL, long_generation, start_herd, until

pytestmark = pytest.mark.integration

REPLICAS, ONGOING, QUEUED = 2, 2, 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    work = tmp_path_factory.mktemp("ops")
    config = work / "ops.yaml"
    config.write_text(
        chat_only_yaml(replicas=REPLICAS, cpus_per_replica=1, max_ongoing_requests=ONGOING, max_queued_requests=QUEUED)
    )
    with start_herd(work, "--config", str(config)) as base, httpx.Client(base_url=base, timeout=120) as client:
        yield client


def _chat(tokens: int) -> dict[str, object]:
    messages = [{"role": "user", "content": "Tell me a story about the sea."}]
    return {"model": MODEL, "messages": messages, "stream": False, "options": {"num_predict": tokens}}


def _engine_samples(client: httpx.Client, name: str) -> dict[str, float]:
    """Per replica: the value of one vLLM engine metric, as /metrics reports it."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("model") == MODEL:
                out[sample.labels["replica"]] = out.get(sample.labels["replica"], 0) + sample.value
    return out


class _Streams:
    """Long streams held open (each counted as running once its first line arrived), closed on exit."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.statuses: list[int] = []
        self.bodies: list[dict[str, object]] = []

    def open(self, tokens: int, wait_first_line: bool) -> None:
        started = threading.Event()

        def run() -> None:
            with self._client.stream("POST", "/api/generate", json=long_generation(tokens)) as r:
                self.statuses.append(r.status_code)
                if r.status_code != 200:
                    self.bodies.append(json.loads(r.read()) | {"retry-after": r.headers.get("retry-after")})
                    started.set()
                    return
                for _ in r.iter_lines():
                    started.set()
                    if self._stop.is_set():
                        return  # leaving the stream aborts its engine request

        thread = threading.Thread(target=run)
        thread.start()
        self._threads.append(thread)
        if wait_first_line:
            assert started.wait(120), "no first line"

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)


def test_two_replicas_share_the_load(cluster: httpx.Client) -> None:
    streams = _Streams(cluster)
    # More streams than one replica takes (ONGOING each): the extra ones must go to the other.
    for _ in range(REPLICAS * ONGOING):
        streams.open(400, wait_first_line=True)
    try:
        running: dict[str, float] = {}

        def each_replica_runs_its_share() -> bool:
            running.clear()
            running.update(_engine_samples(cluster, "vllm:num_requests_running"))
            return len(running) == REPLICAS and all(n == ONGOING for n in running.values())

        assert until(each_replica_runs_its_share, 30, every_s=1) is not None, running  # engines report every 5 s
        assert 'herd_replicas{model="smollm2:135m"} 2.0' in cluster.get("/metrics").text
    finally:
        streams.close()
    assert streams.statuses == [200] * (REPLICAS * ONGOING)


def test_a_full_queue_answers_503_with_retry_after(cluster: httpx.Client) -> None:
    streams = _Streams(cluster)
    try:
        for _ in range(REPLICAS * ONGOING):  # every replica busy
            streams.open(400, wait_first_line=True)
        for _ in range(QUEUED + 4):  # a burst: QUEUED of them may wait, the rest are refused
            streams.open(400, wait_first_line=False)
        until(lambda: len(streams.statuses) >= REPLICAS * ONGOING + 4, 30)
    finally:
        streams.close()
    assert streams.statuses.count(503) >= 4, streams.statuses
    assert all(b["error"] == "the model's request queue is full, try again shortly" for b in streams.bodies)
    assert all(b["retry-after"] for b in streams.bodies)


def test_a_flood_of_400_concurrent_requests_gets_only_answers_or_503_with_retry_after(cluster: httpx.Client) -> None:
    """Far beyond what the replicas take and queue: the rest are refused at once, none hangs or fails."""
    flood = 400
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    limits = httpx.Limits(max_connections=flood, max_keepalive_connections=0)

    async def one(client: httpx.AsyncClient) -> httpx.Response | str:
        try:
            return await client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:  # a hang ends here, at the client's timeout
            return type(exc).__name__

    async def run() -> list[httpx.Response | str]:
        timeout = httpx.Timeout(120, connect=30)
        async with httpx.AsyncClient(base_url=str(cluster.base_url), timeout=timeout, limits=limits) as client:
            return await asyncio.gather(*(one(client) for _ in range(flood)))

    started = time.monotonic()
    answers = asyncio.run(run())
    took = time.monotonic() - started
    counts = Counter(str(a.status_code) if isinstance(a, httpx.Response) else a for a in answers)
    print(f"\nflood of {flood} concurrent chat requests: {dict(sorted(counts.items()))} in {took:.1f}s")
    assert set(counts) <= {"200", "503"} and counts["200"] >= REPLICAS * ONGOING, counts
    for r in answers:
        assert isinstance(r, httpx.Response)
        if r.status_code == 200:
            assert r.json()["usage"]["completion_tokens"] == 1
        else:
            assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"]["code"] == "overloaded", r.text
    after = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
    assert cluster.post("/api/generate", json=after).status_code == 200  # and then served as before


def test_a_replica_killed_mid_stream_ends_the_stream_and_the_next_request_succeeds(cluster: httpx.Client) -> None:
    pids: set[int] = set()

    def both_seen() -> bool:  # /herd/stats reaches one replica per call, the least busy one
        pids.add(cluster.get("/herd/stats").json()["smollm2--135m"]["pid"])
        return len(pids) == REPLICAS

    assert until(both_seen, 60, every_s=0.05) is not None, pids
    lines: list[dict[str, object]] = []

    def stream() -> None:
        with cluster.stream("POST", "/api/generate", json=long_generation(400)) as r:
            lines.extend(json.loads(line) for line in r.iter_lines())

    reader = threading.Thread(target=stream)
    reader.start()
    assert until(lambda: lines, 60) is not None, "the stream did not start"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    reader.join(60)
    assert not reader.is_alive(), "the stream hung after its replica died"
    assert lines and lines[-1] == {"error": "the model's engine replica died; a new one is starting"}
    r = cluster.post("/api/chat", json=_chat(4), timeout=300)  # waits for Serve's replacement
    assert r.status_code == 200 and r.json()["done"], r.text
    print(f"recovered {time.monotonic() - killed:.1f}s after the kill")
