"""Bad input gets each protocol's error shape and status; a client disconnect aborts the engine request."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import httpx
import ollama
import openai
import pytest

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/api/generate", b'{"model": "nope", "prompt": "hi"}', 404, "model 'nope' not found"),
        (
            "/api/chat",
            b'{"model": "nope:7b", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model 'nope:7b' not found",
        ),
        ("/api/show", b'{"model": "nope"}', 404, "model 'nope' not found"),
        ("/api/generate", b"", 400, "missing request body"),
        ("/api/generate", b'{"prompt": "hi"}', 400, "model is required"),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "raw": true, "system": "x"}',
            400,
            "raw mode does not support template, system, or context",
        ),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "options": {"top_k": "many"}}',
            400,
            'option "top_k" must be of type integer',
        ),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "think": true}',
            400,
            '"smollm2" does not support thinking',
        ),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "suffix": "end"}',
            400,
            '"smollm2" does not support insert',
        ),
        (
            "/api/chat",
            b'{"model": "smollm2", "messages": [{"role": "user", "content": "x", "images": ["aGk="]}]}',
            400,
            '"smollm2" does not support images',
        ),
        (
            "/api/chat",
            b'{"model": "smollm2", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", '
            b'"arguments": "{}"}}]}]}',
            400,
            "json: cannot unmarshal string into Go value of type api.ToolCallFunctionArguments",
        ),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "options": {"num_ctx": 1000000}}',
            400,
            "num_ctx 1000000 exceeds the model's context length of 2048 tokens",
        ),
        (
            "/api/generate",
            b'{"model": "smollm2", "prompt": "hi", "top_logprobs": 21}',
            400,
            "top_logprobs must be between 0 and 20",
        ),
    ],
)
def test_ollama_errors(http: httpx.Client, path: str, body: bytes, status: int, error: str) -> None:
    r = http.post(path, content=body)
    assert r.status_code == status
    assert r.json() == {"error": error}


def test_ollama_malformed_json_and_array_content(http: httpx.Client, herd: str) -> None:
    r = http.post("/api/generate", content=b'{"model": "smollm2", "prompt": ')
    assert r.status_code == 400 and r.json()["error"]
    r = http.post("/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text"}]}]})
    assert r.status_code == 400 and "content" in r.json()["error"]
    with pytest.raises(ollama.ResponseError) as info:
        ollama.Client(host=herd).chat(model="missing", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 404 and info.value.error == "model 'missing' not found"


def test_out_of_vocabulary_context_is_a_client_error(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "context": [10**9]})
    assert r.status_code == 400 and "vocab" in r.json()["error"].lower()


def test_cors_allows_local_origins_only(http: httpx.Client) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    local = http.options("/api/chat", headers={"Origin": "http://localhost:3000", **preflight})
    assert local.headers["access-control-allow-origin"] == "http://localhost:3000"
    remote = http.options("/api/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in remote.headers


def test_unknown_route_and_method(http: httpx.Client) -> None:
    r = http.get("/api/nothing")
    assert r.status_code == 404 and r.text == "404 page not found"
    assert http.get("/api/generate").status_code == 405


def test_openai_errors(herd: str, http: httpx.Client) -> None:
    client = openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 3000}])
    assert long.value.code == "context_length_exceeded"
    r = http.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], temperature=5)


def test_ollama_truncates_a_prompt_that_does_not_fit_unless_told_not_to(http: httpx.Client) -> None:
    common = {"model": MODEL, "stream": False, "options": {"num_predict": 4}}
    r = http.post("/api/generate", json={**common, "prompt": "word " * 3000})
    assert r.status_code == 200 and 1000 < r.json()["prompt_eval_count"] <= 2048 - 4
    # Chat drops the oldest turns first: the system message and the last question stay.
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * 900} for i in range(4)]
    messages = [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": "Say hi."}]
    kept = http.post("/api/chat", json={**common, "messages": messages[:1] + messages[-3:]}).json()
    cut = http.post("/api/chat", json={**common, "messages": messages}).json()
    assert cut["prompt_eval_count"] == kept["prompt_eval_count"]  # exactly the turns that fit
    r = http.post("/api/generate", json={**common, "prompt": "word " * 3000, "truncate": False, "stream": True})
    assert r.status_code == 400 and "context" in r.json()["error"]


def _unfinished(http: httpx.Client) -> int:
    return int(http.get("/herd/stats").json()["smollm2--135m"]["unfinished"])


def _leave_mid_stream(
    http: httpx.Client, herd: str, path: str, body: bytes, chunks: tuple[bytes, int], open_requests: int
) -> None:
    """Stream `body` over a raw socket and close it after `chunks` (a marker and how many times it
    came), while `open_requests` engine requests run; the engine must drop them all."""
    assert _unfinished(http) == 0
    url = urlparse(herd)
    request = (f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(request)
        received = b""
        marker, count = chunks
        while received.count(marker) < count:
            received += sock.recv(4096)
        assert _unfinished(http) == open_requests
    deadline = time.monotonic() + 10
    while _unfinished(http) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _unfinished(http) == 0


def test_client_disconnect_aborts_engine_request(http: httpx.Client, herd: str) -> None:
    body = b'{"model":"smollm2","prompt":"Write a very long story.","options":{"num_predict":1500}}'
    _leave_mid_stream(http, herd, "/api/generate", body, (b'"done":false', 3), open_requests=1)


def test_client_disconnect_aborts_every_choice(http: httpx.Client, herd: str) -> None:
    body = json.dumps(
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Write a very long story."}],
            "n": 2,
            "max_tokens": 1500,
            "stream": True,
        }
    ).encode()
    _leave_mid_stream(http, herd, "/v1/chat/completions", body, (b'"content":', 8), open_requests=2)


def test_health_and_ready(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"][MODEL] == "ready"
