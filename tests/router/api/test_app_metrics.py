"""Every HTTP request is counted by model, API, endpoint template and status."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.testclient import TestClient

from router.dispatch.metrics import RouterMetrics, merge_expositions
from tests.support import app, record, seed


def test_requests_are_counted_with_route_templates(redis_url: str) -> None:
    seed(redis_url, [record("m:1")])
    metrics = RouterMetrics()
    with TestClient(app(redis_url, {}, metrics)) as client:
        assert client.get("/api/tags").status_code == 200
        assert client.get("/v1/models/m:1").status_code == 200
        assert client.post("/api/chat", json={"model": "nope"}).status_code == 404
        assert client.post("/v1/chat/completions", content=b"{").status_code == 400
        assert client.get("/nowhere").status_code == 404
        # A resolved model labels the request, even when no engine serves it (503: no replica runs).
        chat = {"model": "m:1", "messages": [{"role": "user", "content": "x"}]}
        assert client.post("/api/chat", json=chat).status_code == 503
        assert client.post("/api/embed", json={"model": "m:1", "input": "x"}).status_code == 400
        exposition = client.get("/metrics").text

    def count(model: str, api: str, endpoint: str, status: str) -> float | None:
        labels = {"model": model, "api": api, "endpoint": endpoint, "status": status}
        return metrics.registry.get_sample_value("herd_requests_total", labels)

    assert count("", "ollama", "/api/tags", "200") == 1
    assert count("m:1", "openai", "/v1/models/{model:path}", "200") == 1
    assert count("", "ollama", "/api/chat", "404") == 1
    assert count("", "openai", "/v1/chat/completions", "400") == 1
    assert count("", "other", "unmatched", "404") == 1
    assert count("m:1", "ollama", "/api/chat", "503") == 1
    assert count("m:1", "ollama", "/api/embed", "400") == 1
    assert "herd_requests_in_flight" in exposition

    def errors(model: str, api: str, kind: str) -> float | None:
        labels = {"model": model, "api": api, "type": kind, "phase": "before_first_byte"}
        return metrics.registry.get_sample_value("herd_errors_total", labels)

    assert errors("", "ollama", "ModelNotFound") == 1 and errors("", "openai", "BadRequest") == 1
    assert errors("m:1", "ollama", "Overloaded") == 1 and errors("m:1", "ollama", "BadRequest") == 1


WORKER = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="/m"} 3.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="/m"} 120.0
"""


def test_merge_labels_each_replica_and_counts_replicas() -> None:
    own = RouterMetrics()
    own.observe_request("m:1", "ollama", "/api/chat", 200)
    text = merge_expositions(
        [
            ({"replica": "router#a"}, own.exposition().decode()),
            ({"model": "m:1", "replica": "w1"}, WORKER),
            ({"model": "m:1", "replica": "w2"}, WORKER.replace("3.0", "5.0")),
        ]
    ).decode()
    assert text.count("# TYPE vllm:num_requests_running gauge") == 1
    assert 'vllm:num_requests_running{engine="0",model="m:1",model_name="/m",replica="w1"} 3.0' in text
    assert 'vllm:num_requests_running{engine="0",model="m:1",model_name="/m",replica="w2"} 5.0' in text
    assert (
        'herd_requests_total{api="ollama",endpoint="/api/chat",model="m:1",replica="router#a",status="200"} 1.0' in text
    )
    assert 'herd_replicas{model="m:1"} 2.0' in text


def test_openapi_documents_every_route_with_its_request_schema(redis_url: str) -> None:
    documented = app(redis_url, {})
    with TestClient(documented) as client:
        doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    routes = {r.path.replace("{model:path}", "{model}") for r in documented.routes} - {"/openapi.json"}  # type: ignore[attr-defined]
    assert set(doc["paths"]) == routes
    chat = doc["paths"]["/api/chat"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert chat == {"$ref": "#/components/schemas/ChatRequest"}
    assert "messages" in doc["components"]["schemas"]["ChatRequest"]["properties"]
    assert "response_format" in doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]


def test_http_errors_keep_their_status(redis_url: str) -> None:
    """Starlette's own refusals keep their real status, in each protocol's shape."""

    async def teapot(request: object) -> None:
        raise HTTPException(418, "short and stout")

    application = app(redis_url, {})
    application.router.routes += [Route("/api/teapot", teapot), Route("/v1/teapot", teapot)]
    with TestClient(application) as client:
        ollama, openai = client.get("/api/teapot"), client.get("/v1/teapot")
    assert (ollama.status_code, ollama.json()) == (418, {"error": "short and stout"})
    assert openai.status_code == 418 and openai.json()["error"]["message"] == "short and stout"
