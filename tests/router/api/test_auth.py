"""API keys through the real app and a real Redis: who gets in, in which protocol's shape they are
refused, roles and model lists, revocation, limits and their headers, per-key metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import RedisError
from starlette.testclient import TestClient

from router.api.auth import KEY_COUNT_TTL_S, Gate
from router.catalog.keys import KeyStore, new_key
from router.catalog.store import CatalogStore
from router.driver.redis_server import EmbeddedRedis
from router.settings import Settings
from tests.support import FakeWorker, app, record, seed, serving
from workers.events import Delta, Final

ANSWER = [[Delta("hi", 1), Final("stop", 3, 1, 1, 1, 1)]]  # 3 prompt + 1 output tokens
CHAT = {"model": "chat:1", "messages": [{"role": "user", "content": "hi"}], "stream": False}


def keys(redis_url: str, action: str, *args: Any, **kwargs: Any) -> Any:
    """A KeyStore call on its own connection (as `herd keys` makes it)."""

    async def run() -> Any:
        store = CatalogStore.from_url(redis_url)
        try:
            return await getattr(KeyStore(store.redis), action)(*args, **kwargs)
        finally:
            await store.close()

    return asyncio.run(run())


def make(redis_url: str, name: str, role: str = "inference", **limits: Any) -> str:
    models = tuple(limits.pop("models", ()))
    secret: str = keys(redis_url, "create", new_key(name, role, models, **limits))
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _client(redis_url: str, mode: str) -> TestClient:
    seed(redis_url, [record("chat:1"), record("other:1")])
    workers = {"chat--1": FakeWorker(ANSWER), "other--1": FakeWorker(ANSWER)}
    return TestClient(app(redis_url, workers, settings=Settings(auth=mode), auth=True))


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    with _client(redis_url, "required") as c:
        yield serving(c)


def test_no_key_or_a_wrong_one_is_a_401_in_each_protocols_shape(client: TestClient) -> None:
    ollama = client.post("/api/chat", json=CHAT)
    assert ollama.status_code == 401 and set(ollama.json()) == {"error"}
    for headers in ({}, bearer("herd-wrong"), {"x-api-key": "herd-wrong"}):
        openai = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert openai.status_code == 401
        assert openai.json()["error"] | {"message": ""} == {
            "message": "", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"
        }  # fmt: skip


def test_open_paths_need_no_key(client: TestClient) -> None:
    assert client.get("/").status_code == 200 and client.get("/health").status_code == 200
    assert client.get("/api/tags").status_code == 401 and client.get("/api/version").status_code == 401


def test_a_key_works_as_bearer_and_as_x_api_key(redis_url: str, client: TestClient) -> None:
    secret = make(redis_url, "app")
    assert client.post("/api/chat", json=CHAT, headers=bearer(secret)).status_code == 200
    assert client.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": secret}).status_code == 200


def test_roles_and_model_lists_are_403(redis_url: str, client: TestClient) -> None:
    inference = bearer(make(redis_url, "app", models=["chat:1"]))
    admin = bearer(make(redis_url, "ops", "admin"))
    for method, path in (
        ("POST", "/api/pull"),
        ("POST", "/api/create"),
        ("DELETE", "/api/delete"),
        ("GET", "/metrics"),
    ):
        r = client.request(method, path, json={"model": "x"}, headers=inference)
        assert r.status_code == 403, path
    assert client.get("/metrics", headers=admin).status_code == 200
    other = client.post("/v1/chat/completions", json=CHAT | {"model": "other:1"}, headers=inference)
    assert other.status_code == 403 and other.json()["error"]["type"] == "invalid_request_error"
    assert [m["name"] for m in client.get("/api/tags", headers=inference).json()["models"]] == ["chat:1"]
    assert [m["id"] for m in client.get("/v1/models", headers=inference).json()["data"]] == ["chat:1"]
    assert client.post("/api/show", json={"model": "other:1"}, headers=inference).status_code == 403
    assert client.post("/api/show", json={"model": "other:1"}, headers=admin).status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request(redis_url: str, client: TestClient) -> None:
    secret = make(redis_url, "app")
    assert client.get("/api/tags", headers=bearer(secret)).status_code == 200
    assert keys(redis_url, "revoke", "app") is True
    assert client.get("/api/tags", headers=bearer(secret)).status_code == 401


def test_past_the_rpm_a_429_with_retry_after_and_openais_headers(redis_url: str, client: TestClient) -> None:
    secret = bearer(make(redis_url, "app", rpm=3))
    ok = [client.post("/v1/chat/completions", json=CHAT, headers=secret) for _ in range(3)]
    assert [r.status_code for r in ok] == [200, 200, 200]
    assert (
        ok[-1].headers["x-ratelimit-limit-requests"] == "3" and ok[-1].headers["x-ratelimit-remaining-requests"] == "0"
    )
    refused = client.post("/v1/chat/completions", json=CHAT, headers=secret)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    ollama = client.post("/api/chat", json=CHAT, headers=secret)
    assert ollama.status_code == 429 and "3 requests per minute" in ollama.json()["error"]


def test_tokens_are_charged_from_real_usage_at_the_end(redis_url: str, client: TestClient) -> None:
    secret = bearer(make(redis_url, "app", tpm=5))
    assert client.post("/api/chat", json=CHAT, headers=secret).status_code == 200  # 4 tokens used
    second = client.post("/api/chat", json=CHAT, headers=secret)  # 4 < 5: admitted, then 8 used
    assert second.status_code == 200
    third = client.post("/v1/chat/completions", json=CHAT, headers=secret)
    assert third.status_code == 429 and third.headers["x-ratelimit-remaining-tokens"] == "0"
    assert "5 tokens per minute" in third.json()["error"]["message"]


def test_per_key_counters_name_the_key_never_the_secret(redis_url: str, client: TestClient) -> None:
    secret = make(redis_url, "app")
    admin = make(redis_url, "ops", "admin")
    client.post("/api/chat", json=CHAT, headers=bearer(secret))
    text = client.get("/metrics", headers=bearer(admin)).text
    assert 'herd_key_requests_total{key="app",replica="t"} 1.0' in text
    assert 'herd_key_tokens_total{key="app",kind="prompt",replica="t"} 3.0' in text
    assert 'herd_key_tokens_total{key="app",kind="output",replica="t"} 1.0' in text
    assert secret not in text and admin not in text


def test_auto_mode_is_open_until_a_key_exists(redis_url: str) -> None:
    with _client(redis_url, "auto") as client:
        assert client.get("/api/tags").status_code == 200
        make(redis_url, "app")
        time.sleep(1.1)  # "are there keys" is cached for a second
        assert client.get("/api/tags").status_code == 401


def test_through_a_redis_outage_auth_stays_as_it_last_was(tmp_path: Path) -> None:
    """Off (no keys): the router keeps serving from its cached catalog. On: keys cannot be checked,
    so requests fail closed."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()

    async def run() -> None:
        store = CatalogStore.from_url(url)
        gate = Gate.for_store(store, "auto", "127.0.0.1")
        assert await gate.auth_on() is False
        server.stop()
        await asyncio.sleep(KEY_COUNT_TTL_S + 0.1)
        assert await gate.auth_on() is False  # last known: no keys, no RedisError
        with pytest.raises(RedisError):
            await Gate.for_store(CatalogStore.from_url(url), "auto", "127.0.0.1").auth_on()  # nothing known

    try:
        asyncio.run(run())
    finally:
        server.stop()
