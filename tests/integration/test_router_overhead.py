"""The router reports its own added time: per response (header / final chunk) and at /metrics."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 8}}
TIMING = re.compile(r"^router;dur=(\d+\.\d{3}), worker;dur=(\d+\.\d{3})$")


def _added_count(http: httpx.Client, api: str) -> float:
    families = text_string_to_metric_families(http.get("/metrics").text)
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "herd_router_added_seconds_count"
        and sample.labels.get("api") == api
        and sample.labels.get("model") == MODEL
    )


def test_non_streaming_responses_carry_server_timing(http: httpx.Client) -> None:
    r = http.post("/api/chat", json=CHAT | {"stream": False})
    assert r.status_code == 200
    router_ms, worker_ms = map(float, TIMING.match(r.headers["server-timing"]).groups())  # type: ignore[union-attr]
    body = r.json()
    assert worker_ms > 0 and router_ms < worker_ms
    assert body["router_duration"] == pytest.approx(body["total_duration"] - worker_ms * 1e6, abs=2e6)

    r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": CHAT["messages"], "max_tokens": 8})
    assert r.status_code == 200
    router_ms, _ = map(float, TIMING.match(r.headers["server-timing"]).groups())  # type: ignore[union-attr]
    assert r.json()["router_duration_ms"] == router_ms


def test_streams_carry_router_time_in_the_last_chunk(http: httpx.Client) -> None:
    before = _added_count(http, "ollama"), _added_count(http, "openai")
    with http.stream("POST", "/api/chat", json=CHAT) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert lines[-1]["done"] and 0 < lines[-1]["router_duration"] < lines[-1]["total_duration"]
    assert all("router_duration" not in line for line in lines[:-1])

    body = {"model": MODEL, "messages": CHAT["messages"], "max_tokens": 8, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        frames = [f[6:] for f in r.read().decode().split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    finish = json.loads(frames[-2])
    assert finish["choices"][0]["finish_reason"] and finish["router_duration_ms"] > 0

    assert (_added_count(http, "ollama"), _added_count(http, "openai")) == (before[0] + 1, before[1] + 1)


def test_metrics_are_prometheus_text(http: httpx.Client) -> None:
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE herd_router_added_seconds histogram" in r.text
