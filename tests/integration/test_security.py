"""Herd on a real stack with two router replicas and its real Redis, auth required: API keys made
with `herd keys` against the running cluster, roles, revocation seen by both replicas, an exact
RPM budget shared by the replicas, TPM from real usage, no file access from requests, bounded
input, the refusal of a public bind without keys, and schemathesis fuzzing every route of
/openapi.json with and without a key. Through the official clients and raw HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ollama
import openai
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode

from bench.configs import chat_only_yaml
from router.driver.ports import free_port
from tests.integration.conftest import MODEL, Stack, launch_herd

ADMIN = "herd-integration-admin-secret"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
HERD = str(Path(sys.executable).with_name("herd"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("security")
    config = work / "chat.yaml"
    config.write_text(chat_only_yaml())
    env = {"HERD_ROUTER_REPLICAS": "2", "HERD_AUTH": "required", "HERD_ADMIN_KEY": ADMIN}
    with launch_herd(work, "--config", str(config), env=env) as running:
        yield running


def herd_keys(stack: Stack, *args: str) -> str:
    """`herd keys ...` as an operator runs it on the host: found through the data directory."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"HERD_DATA_DIR": str(stack.data)}
    done = subprocess.run([HERD, "keys", *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(stack: Stack, name: str, *options: str) -> str:
    return herd_keys(stack, "create", "--name", name, "--role", "inference", *options).split()[-1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def fresh(stack: Stack, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request on a new connection, so the kernel picks a router replica each time."""
    with httpx.Client(base_url=stack.base, timeout=60) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def test_keys_on_both_apis_through_the_official_clients(stack: Stack) -> None:
    secret = new_key(stack, "clients")
    answer = openai.OpenAI(base_url=f"{stack.base}/v1", api_key=secret).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    assert answer.usage is not None and answer.usage.completion_tokens == 2
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=f"{stack.base}/v1", api_key="herd-wrong").models.list()
    assert refused.value.code == "invalid_api_key"
    chat = ollama.Client(host=stack.base, headers=bearer(secret)).chat(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 2}
    )
    assert chat.eval_count == 2
    with pytest.raises(ollama.ResponseError) as anonymous:
        ollama.Client(host=stack.base).list()
    assert anonymous.value.status_code == 401


def test_roles_and_open_paths(stack: Stack) -> None:
    inference = bearer(new_key(stack, "roles"))
    for path in ("/", "/health", "/ready"):
        assert fresh(stack, "GET", path).status_code == 200, path
    assert fresh(stack, "GET", "/metrics").status_code == 401
    assert fresh(stack, "GET", "/metrics", headers=inference).status_code == 403
    pulled = fresh(stack, "POST", "/api/pull", json={"model": "x"}, headers=inference)
    assert pulled.status_code == 403 and set(pulled.json()) == {"error"}
    assert fresh(stack, "GET", "/metrics", headers=bearer(ADMIN)).status_code == 200
    only = bearer(new_key(stack, "only-other", "--models", "other:1"))
    refused = fresh(stack, "POST", "/v1/chat/completions", json=CHAT, headers=only)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "invalid_request_error"


def test_a_revoked_key_is_refused_by_both_replicas_within_a_second(stack: Stack) -> None:
    secret = new_key(stack, "revoked")
    assert all(fresh(stack, "GET", "/api/tags", headers=bearer(secret)).status_code == 200 for _ in range(6))
    herd_keys(stack, "revoke", "revoked")
    revoked_at = time.monotonic()
    first = fresh(stack, "GET", "/api/tags", headers=bearer(secret)).status_code
    assert first == 401 and time.monotonic() - revoked_at < 1.0
    assert {fresh(stack, "GET", "/api/tags", headers=bearer(secret)).status_code for _ in range(24)} == {401}


def test_rpm_is_exact_across_two_replicas(stack: Stack) -> None:
    secret = new_key(stack, "rpm", "--rpm", "10")
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: fresh(stack, "GET", "/v1/models", headers=bearer(secret)), range(30)))
    assert sorted(r.status_code for r in answers).count(200) == 10
    refused = [r for r in answers if r.status_code == 429]
    assert len(refused) == 20
    r = refused[0]
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and int(r.headers["Retry-After"]) >= 1
    assert r.headers["x-ratelimit-limit-requests"] == "10" and r.headers["x-ratelimit-remaining-requests"] == "0"
    ollama_shape = fresh(stack, "GET", "/api/tags", headers=bearer(secret))
    assert ollama_shape.status_code == 429 and set(ollama_shape.json()) == {"error"}


def test_tpm_is_charged_from_real_usage(stack: Stack) -> None:
    secret = bearer(new_key(stack, "tpm", "--tpm", "5"))
    first = fresh(stack, "POST", "/v1/chat/completions", json=CHAT, headers=secret)
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] > 5
    second = fresh(stack, "POST", "/v1/chat/completions", json=CHAT, headers=secret)
    assert second.status_code == 429 and second.headers["x-ratelimit-remaining-tokens"] == "0"


def test_per_key_counters_in_metrics(stack: Stack) -> None:
    secret = new_key(stack, "counted")
    fresh(stack, "POST", "/v1/chat/completions", json=CHAT, headers=bearer(secret))
    text = fresh(stack, "GET", "/metrics", headers=bearer(ADMIN)).text
    assert 'herd_key_requests_total{key="counted"' in text or _eventually_counted(stack)
    assert secret not in text and ADMIN not in text


def _eventually_counted(stack: Stack) -> bool:
    """The other replica's counters reach /metrics through the hub every few seconds."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if 'herd_key_requests_total{key="counted"' in fresh(stack, "GET", "/metrics", headers=bearer(ADMIN)).text:
            return True
        time.sleep(1)
    return False


def test_no_file_or_code_access_from_requests(stack: Stack) -> None:
    admin, inference = bearer(ADMIN), bearer(new_key(stack, "paths"))
    for body in ({"model": "x:1", "path": "/etc/passwd"}, {"model": "x:1", "path": "/dev/zero"},
                 {"model": "x:1", "from": "/etc"}):  # fmt: skip
        r = fresh(stack, "POST", "/api/create", json=body | {"stream": False}, headers=admin)
        assert r.status_code == 400 and "model root" in r.json()["error"] and "root:" not in r.text
    for source in ("/etc", "package:os/x"):
        r = fresh(
            stack, "POST", "/api/pull", json={"model": "evil-dir", "source": source, "stream": False}, headers=admin
        )
        assert r.status_code == 400, source
    r = fresh(stack, "POST", "/api/create", json={"model": "x:1", "path": "/etc/passwd"}, headers=inference)
    assert r.status_code == 403
    names = {m["name"] for m in fresh(stack, "GET", "/api/tags", headers=admin).json()["models"]}
    assert "evil-dir:latest" not in names and "x:1" not in names


def test_bounded_input(stack: Stack) -> None:
    secret = bearer(new_key(stack, "bounds"))
    assert _declared_too_large(stack, secret["Authorization"]).startswith(b"HTTP/1.1 413")
    deep = fresh(stack, "POST", "/api/chat", content=b"[" * 200_000 + b"]" * 200_000, headers=secret)
    assert deep.status_code == 400
    not_utf8 = fresh(stack, "POST", "/v1/chat/completions", content=b'{"model": "\xff"}', headers=secret)
    assert not_utf8.status_code == 400
    r = fresh(stack, "POST", "/v1/chat/completions", json=CHAT | {"n": 100}, headers=secret)
    assert r.status_code == 400 and "n must be at most" in r.json()["error"]["message"]
    r = fresh(stack, "POST", "/v1/chat/completions", json=CHAT | {"max_tokens": 10**6}, headers=secret)
    assert r.status_code == 400 and "max_tokens must be at most" in r.json()["error"]["message"]
    ok = fresh(stack, "POST", "/api/generate", headers=secret,
               json={"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 2}})  # fmt: skip
    assert ok.status_code == 200 and json.loads(ok.text)["eval_count"] == 2


def _declared_too_large(stack: Stack, authorization: str) -> bytes:
    """A 17 MiB body announced by Content-Length, of which only 1 KiB is sent: the 413 comes
    back before the rest, so the body is never read whole."""
    host, port = stack.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        head = (
            f"POST /api/generate HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {17 << 20}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 1024)
        return sock.recv(4096)


def test_a_public_bind_without_keys_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "HERD_AUTH", "HERD_ADMIN_KEY")}
    env |= {"HERD_DATA_DIR": str(tmp_path), "HERD_PORT": str(free_port())}
    done = subprocess.run([HERD, "serve", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "herd keys create" in done.stderr


# Fuzzing: cases per operation and key (positive and negative cases). Measured on 2 cores: about
# 700 requests, real generations of at most FUZZ_TOKENS tokens among them, in under a minute.
FUZZ_EXAMPLES = 12
FUZZ_TOKENS = 3
# Where a generation's token bounds go in each protocol's body.
TOKEN_FIELDS = {"/api/generate": ("num_predict",), "/api/chat": ("num_predict",),
                "/v1/chat/completions": ("max_tokens", "max_completion_tokens"), "/v1/completions": ("max_tokens",),
                "/v1/messages": ("max_tokens",), "/v1/responses": ("max_output_tokens",)}  # fmt: skip


def _cheap(path: str, body: object, real_model: bool) -> None:
    """Keeps a generated case cheap to serve and lets half of them reach the real model: every token
    bound becomes FUZZ_TOKENS, except one past the server's cap (to reach the refusal), and no case
    may unload the model (keep_alive)."""
    if not isinstance(body, dict):
        return
    if real_model and "model" in body:
        body["model"] = MODEL
    body.pop("keep_alive", None)
    fields = TOKEN_FIELDS.get(path, ())
    if fields == ("num_predict",) and body.get("options") is None:
        body["options"] = {}
    target = body.get("options") if fields == ("num_predict",) else body
    if not isinstance(target, dict):
        return
    for name in fields:
        asked = target.get(name)
        if not (isinstance(asked, int) and asked > 8192) and (asked is not None or name != "max_completion_tokens"):
            target[name] = FUZZ_TOKENS


def _in_protocol_shape(path: str, r: requests.Response) -> bool:
    """An error body as the path's protocol writes one (see router/api/app.py `Errors.render`)."""
    try:
        body = r.json()
    except ValueError:
        return False
    if path.startswith("/v1/messages"):
        return body.get("type") == "error" and isinstance(body.get("error", {}).get("message"), str)
    if path.startswith("/v1/"):
        error = body.get("error")
        return isinstance(error, dict) and isinstance(error.get("message"), str) and {"type", "code"} <= set(error)
    return set(body) == {"error"} and isinstance(body["error"], str)


@dataclass
class Fuzzed:
    """What the fuzzer saw: answers by status, and each 5xx, hang or error out of its protocol's shape."""

    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def check(self, path: str, case: schemathesis.Case, r: requests.Response) -> None:
        self.statuses[r.status_code] += 1
        if r.status_code >= 500 or (r.status_code >= 400 and not _in_protocol_shape(path, r)):
            self.problems.append(f"{case.method} {case.formatted_path} -> {r.status_code} {r.text[:300]!r} "
                                 f"for {case.body!r:.300}")  # fmt: skip


def _fuzz(operation: APIOperation, base: str, headers: dict[str, str], session: requests.Session, seen: Fuzzed) -> None:
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=cases, real_model=st.booleans())
    def call(case: schemathesis.Case, real_model: bool) -> None:
        _cheap(operation.path, case.body, real_model)
        try:
            r = case.call(base_url=base, session=session, headers=headers, timeout=60)
        except requests.RequestException as exc:  # a hang or a dropped connection
            seen.problems.append(f"{case.method} {case.formatted_path}: {type(exc).__name__} for {case.body!r:.300}")
            return
        seen.check(operation.path, case, r)

    call()


def test_fuzzing_every_route_finds_no_5xx_and_only_protocol_shaped_errors(stack: Stack) -> None:
    inference = bearer(new_key(stack, "fuzz"))
    schema = schemathesis.openapi.from_dict(fresh(stack, "GET", "/openapi.json", headers=inference).json())
    seen, started = Fuzzed(), time.monotonic()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            for headers in ({}, inference):
                _fuzz(result.ok(), stack.base, headers, session, seen)
    fives = sum(n for status, n in seen.statuses.items() if status >= 500)
    print(f"\nfuzz: {sum(seen.statuses.values())} requests, {fives} 5xx in {time.monotonic() - started:.0f}s; "
          f"statuses {dict(sorted(seen.statuses.items()))}")  # fmt: skip
    assert not seen.problems, "\n".join(seen.problems[:20])
