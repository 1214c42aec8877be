"""A real Prometheus scrapes Herd's /metrics, and every query of the Grafana dashboard returns data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.driver.ports import free_port
from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "herd-dashboard.json"


@pytest.fixture(scope="module")
def prometheus(herd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Debian's `prometheus` scraping this Herd every second (`.ci/run` installs it)."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing (apt-get install prometheus)")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    work = tmp_path_factory.mktemp("prometheus")
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config = config.replace("127.0.0.1:11434", herd.removeprefix("http://"))
    (work / "prometheus.yml").write_text(config)
    port = free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_for(lambda: _query(client, 'up{job="herd"} == 1'), 60, "Prometheus to scrape Herd")
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _query(client: httpx.Client, expr: str) -> list[dict[str, object]]:
    try:
        r = client.get("/api/v1/query", params={"query": expr})
    except httpx.HTTPError:
        return []
    if r.status_code != 200:
        return []
    body = r.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _traffic(http: httpx.Client) -> None:
    """Requests of every kind the dashboard shows: both APIs, a repeated prefix, and client errors."""
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Name three colours."}], "stream": False}
    for _ in range(3):
        assert http.post("/api/chat", json=chat | {"options": {"num_predict": 8}}).status_code == 200
        body = {"model": MODEL, "messages": chat["messages"], "max_tokens": 8}
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert http.post("/api/chat", json=chat | {"model": "missing"}).status_code == 404


def test_every_dashboard_query_returns_data(http: httpx.Client, prometheus: httpx.Client) -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    # Rates need two scrapes with traffic between them; engines report every 5 s.
    _traffic(http)
    time.sleep(3)
    _traffic(http)
    missing: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        missing = [expr for expr in exprs if not _query(prometheus, expr)]
        if not missing:
            break
        time.sleep(2)
    assert not missing, f"dashboard queries with no data: {missing}"


def test_engine_metrics_carry_model_and_replica(prometheus: httpx.Client) -> None:
    series = _query(prometheus, "vllm:num_requests_running")
    models = {s["metric"]["model"] for s in series}  # type: ignore[index]
    assert MODEL in models and all(s["metric"].get("replica") for s in series)  # type: ignore[union-attr]
    replicas = _query(prometheus, f'herd_replicas{{model="{MODEL}"}}')
    assert replicas and float(replicas[0]["value"][1]) == 1  # type: ignore[index]
