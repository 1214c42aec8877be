"""Every HTTP request is counted by model, API, endpoint template and status."""

from __future__ import annotations

from starlette.testclient import TestClient

from router.app import create_app
from router.catalog import Catalog, ModelRecord
from router.generation import Generations
from router.inbox import EventInbox
from router.metrics import RouterMetrics
from router.names import parse_name
from router.settings import Settings
from workers.spec import ModelSpec


def test_requests_are_counted_with_route_templates() -> None:
    record = ModelRecord(parse_name("m:1"), ModelSpec(name="m:1", source={"gguf": "/x.gguf"}), 0, "d", 0, 2048)
    metrics = RouterMetrics()
    app = create_app(Settings(), Catalog([record]), Generations({}, metrics, EventInbox()), metrics)
    with TestClient(app) as client:
        assert client.get("/api/tags").status_code == 200
        assert client.get("/v1/models/m:1").status_code == 200
        assert client.post("/api/chat", json={"model": "nope"}).status_code == 404
        assert client.post("/v1/chat/completions", content=b"{").status_code == 400
        assert client.get("/nowhere").status_code == 404
        exposition = client.get("/metrics").text

    def count(model: str, api: str, endpoint: str, status: str) -> float | None:
        labels = {"model": model, "api": api, "endpoint": endpoint, "status": status}
        return metrics.registry.get_sample_value("herd_requests_total", labels)

    assert count("", "ollama", "/api/tags", "200") == 1
    assert count("", "openai", "/v1/models/{model:path}", "200") == 1
    assert count("", "ollama", "/api/chat", "404") == 1
    assert count("", "openai", "/v1/chat/completions", "400") == 1
    assert count("", "other", "unmatched", "404") == 1
    assert "herd_requests_in_flight" in exposition
