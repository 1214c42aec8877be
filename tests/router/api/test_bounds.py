"""Bounded input: body size (413 before the body is read whole), nesting, encoding, n and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from router.settings import Settings
from tests.support import FakeWorker, app, record, seed, serving
from workers.events import Delta, Final

LIMIT = 1 << 20
ANSWER = [[Delta("hi", 1), Final("stop", 3, 1, 1, 1, 1)]]


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    seed(redis_url, [record("chat:1")])
    settings = Settings(max_body_bytes=LIMIT, max_choices=2, max_tokens=100)
    with TestClient(app(redis_url, {"chat--1": FakeWorker(ANSWER)}, settings=settings)) as c:
        yield serving(c)


def test_a_body_over_the_limit_is_a_413_in_each_protocols_shape(client: TestClient) -> None:
    big = b'{"model": "chat:1", "prompt": "' + b"x" * LIMIT + b'"}'
    ollama = client.post("/api/generate", content=big)
    assert ollama.status_code == 413 and "limit of 1048576 bytes" in ollama.json()["error"]
    openai = client.post("/v1/completions", content=big)
    assert openai.status_code == 413 and openai.json()["error"]["code"] == "request_too_large"


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting can catch it
        yield b'{"model": "chat:1", "prompt": "'
        for _ in range(2000):  # 2 MB in all, far past the limit
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/api/generate", content=chunks())
    assert r.status_code == 413
    assert client.post("/api/generate", json={"model": "chat:1", "prompt": "hi", "stream": False}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [b"[" * 200_000 + b"]" * 200_000, b'{"model": "chat:1", "options": ' + b'{"a": ' * 70 + b"1" + b"}" * 71],
)
def test_deep_nesting_is_a_400_not_a_500(client: TestClient, body: bytes) -> None:
    r = client.post("/api/chat", content=body)
    assert r.status_code == 400 and "nested deeper than 64 levels" in r.json()["error"]


def test_a_body_that_is_not_utf8_is_a_400(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", content=b'{"model": "chat:1", "messages": "\xff\xfe"}')
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_n_and_token_bounds_are_a_clear_400(client: TestClient) -> None:
    chat = {"model": "chat:1", "messages": [{"role": "user", "content": "hi"}]}
    r = client.post("/v1/chat/completions", json=chat | {"n": 3})
    assert r.status_code == 400 and r.json()["error"]["message"] == "n must be at most 2 on this server, got 3"
    r = client.post("/v1/chat/completions", json=chat | {"max_tokens": 101})
    assert r.json()["error"] | {"message": ""} == {
        "message": "", "type": "invalid_request_error", "param": "max_tokens", "code": None
    }  # fmt: skip
    r = client.post("/api/chat", json=chat | {"options": {"num_predict": 101}, "stream": False})
    assert r.json() == {"error": "num_predict must be at most 100 on this server, got 101"}
    assert client.post("/v1/chat/completions", json=chat | {"n": 2, "max_tokens": 100}).status_code == 200


def test_a_request_without_a_token_bound_gets_the_cap(redis_url: str) -> None:
    seed(redis_url, [record("chat:1")])
    worker = FakeWorker(ANSWER)
    with TestClient(app(redis_url, {"chat--1": worker}, settings=Settings(max_tokens=100))) as client:
        serving(client).post("/api/generate", json={"model": "chat:1", "prompt": "hi", "stream": False})
    assert worker.requests[0].sampling.max_tokens == 100


MESSAGES = {"model": "chat:1", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "chat:1", "input": "hi", "store": False}


def _anthropic_cap(asked: int) -> dict[str, Any]:
    message = f"max_tokens must be at most 100 on this server, got {asked}"
    return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


def _responses_cap(asked: int) -> dict[str, Any]:
    message = f"max_output_tokens must be at most 100 on this server, got {asked}"
    return {"error": {"message": message, "type": "invalid_request_error", "param": "max_output_tokens", "code": None}}


@pytest.mark.parametrize(
    ("path", "body", "status", "refused", "forwarded"),
    [
        ("/v1/messages", MESSAGES | {"max_tokens": 101}, 400, _anthropic_cap(101), None),
        ("/v1/messages", MESSAGES | {"max_tokens": 10**9, "stream": True}, 400, _anthropic_cap(10**9), None),
        ("/v1/messages", MESSAGES | {"max_tokens": 100}, 200, None, 100),
        ("/v1/messages", MESSAGES | {"max_tokens": 7, "stream": True}, 200, None, 7),
        ("/v1/responses", RESPONSES | {"max_output_tokens": 101}, 400, _responses_cap(101), None),
        ("/v1/responses", RESPONSES | {"max_output_tokens": 10**9, "stream": True}, 400, _responses_cap(10**9), None),
        ("/v1/responses", RESPONSES | {"max_output_tokens": 100}, 200, None, 100),
        ("/v1/responses", RESPONSES, 200, None, 100),  # no bound asked: the cap is the bound
        ("/v1/responses", RESPONSES | {"stream": True}, 200, None, 100),
    ],
)
def test_messages_and_responses_apply_the_token_cap(
    redis_url: str, path: str, body: dict[str, Any], status: int, refused: dict[str, Any] | None, forwarded: int | None
) -> None:
    seed(redis_url, [record("chat:1")])
    worker = FakeWorker(ANSWER)
    with TestClient(app(redis_url, {"chat--1": worker}, settings=Settings(max_tokens=100))) as raw:
        r = serving(raw).post(path, json=body)
    assert r.status_code == status, r.text
    if refused is not None:
        assert r.json() == refused and worker.requests == []  # refused before any engine work
    else:
        assert [q.sampling.max_tokens for q in worker.requests] == [forwarded]
