"""Without Redis, requests that need the catalog get a 503 with Retry-After in their protocol's shape."""

from __future__ import annotations

import socket

from starlette.testclient import TestClient

from tests.support import app


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_no_redis_is_a_503_in_each_protocols_shape() -> None:
    with TestClient(app(_closed_port_url(), {})) as client:
        ollama = client.post("/api/chat", json={"model": "m:1", "messages": [{"role": "user", "content": "x"}]})
        assert ollama.status_code == 503 and ollama.headers["retry-after"] == "2"
        assert ollama.json() == {"error": "the model catalog is unavailable, try again shortly"}
        openai = client.get("/v1/models")
        assert openai.status_code == 503 and openai.headers["retry-after"] == "2"
        assert openai.json()["error"]["code"] == "store_unavailable"
        assert client.get("/health").status_code == 200  # the process itself still answers
