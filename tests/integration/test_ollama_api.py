"""The Ollama native API against the real stack, through raw HTTP and the official `ollama` client."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import jsonschema
import ollama
import pytest

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration

GREEDY = {"temperature": 0, "num_predict": 24}
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def ndjson(http: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", path, content=json.dumps(body)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/x-ndjson"
        raw = r.read()
    lines = raw.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1]), "NDJSON must be newline-terminated with no blank lines"
    return [json.loads(line) for line in lines[:-1]]


def parse_rfc3339(text: str) -> datetime:
    assert text.endswith("Z")
    head, _, frac = text[:-1].partition(".")
    return datetime.fromisoformat(head + ("." + frac[:6] if frac else "") + "+00:00")


def check_final(final: dict[str, Any]) -> None:
    assert final["done"] is True and final["done_reason"] in ("stop", "length")
    for key in METRICS:
        assert isinstance(final[key], int) and final[key] > 0, key
    parts = final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
    assert final["total_duration"] >= parts


def test_generate_streams_ndjson_with_measured_metrics(http: httpx.Client, tokenizer: Any) -> None:
    chunks = ndjson(http, "/api/generate", {"model": "smollm2", "prompt": "Why is the sky blue?", "options": GREEDY})
    *body, final = chunks
    assert body and all(c["done"] is False and c["model"] == "smollm2" for c in body)
    for c in chunks:
        parse_rfc3339(c["created_at"])
    check_final(final)
    assert final["response"] == ""
    text = "".join(c["response"] for c in body)
    assert text.strip()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Why is the sky blue?"}], tokenize=False, add_generation_prompt=True
    )
    assert final["prompt_eval_count"] == len(tokenizer.encode(prompt, add_special_tokens=False))
    assert final["eval_count"] == len(final["context"]) - final["prompt_eval_count"]
    assert tokenizer.decode(final["context"][final["prompt_eval_count"] :], skip_special_tokens=True) == text


def test_generate_non_streaming_and_context_round_trip(http: httpx.Client) -> None:
    first = http.post("/api/generate", json={"model": MODEL, "prompt": "Say hi.", "stream": False, "options": GREEDY})
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    a = first.json()
    check_final(a)
    assert a["response"].strip() and isinstance(a["context"], list)
    second = http.post(
        "/api/generate",
        json={"model": MODEL, "prompt": "Again.", "context": a["context"], "stream": False, "options": GREEDY},
    ).json()
    check_final(second)
    # The continued prompt is the whole earlier exchange plus the new turn.
    assert second["prompt_eval_count"] > len(a["context"])
    assert second["context"][: len(a["context"])] == a["context"]


def test_chat_with_official_client(herd: str) -> None:
    client = ollama.Client(host=herd)
    reply = client.chat(model="smollm2:135m", messages=[{"role": "user", "content": "hi"}], options=GREEDY)
    assert reply.message.role == "assistant" and reply.message.content
    assert reply.done and reply.eval_count and reply.prompt_eval_count
    parts = list(
        client.chat(model="SmolLM2", messages=[{"role": "user", "content": "hi"}], stream=True, options=GREEDY)
    )
    assert all(p.message.role == "assistant" for p in parts)
    assert "".join(p.message.content or "" for p in parts) == reply.message.content  # greedy: same answer
    assert parts[-1].done and parts[-1].done_reason in ("stop", "length") and parts[-1].total_duration


def test_generate_with_official_client(herd: str) -> None:
    client = ollama.Client(host=herd)
    out = client.generate(model="smollm2:latest", prompt="Why is the sky blue?", options=GREEDY)
    assert out.response and out.done and out.context
    streamed = "".join(
        p.response for p in client.generate(model="smollm2", prompt="Why is the sky blue?", stream=True, options=GREEDY)
    )
    assert streamed == out.response


def test_num_predict_limits_output(http: httpx.Client) -> None:
    r = http.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": "Count to fifty.",
            "stream": False,
            "options": {"temperature": 0, "num_predict": 5},
        },
    ).json()
    assert r["eval_count"] == 5 and r["done_reason"] == "length"


def test_stop_sequence_never_leaks(http: httpx.Client) -> None:
    body = {"model": MODEL, "prompt": "Why is the sky blue?", "options": {"temperature": 0, "num_predict": 40}}
    full = "".join(c["response"] for c in ndjson(http, "/api/generate", body)[:-1])
    words = full.split()
    assert len(words) > 6
    stop = " " + words[5]
    cut = full[: full.index(stop)]
    chunks = ndjson(http, "/api/generate", {**body, "options": {**body["options"], "stop": [stop]}})
    text = "".join(c["response"] for c in chunks[:-1])
    assert text == cut and stop not in text
    assert chunks[-1]["done_reason"] == "stop"


def test_format_json_and_schema(http: httpx.Client) -> None:
    r = http.post(
        "/api/generate",
        json={
            "model": MODEL,
            "prompt": "Reply with a JSON object holding a cat name and its age.",
            "format": "json",
            "stream": False,
            "options": {"temperature": 0, "num_predict": 100},
        },
    ).json()
    assert r["done_reason"] == "stop", "guided JSON should close the object before the cap"
    json.loads(r["response"])
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    chat = http.post(
        "/api/chat",
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": "A person."}],
            "format": schema,
            "stream": False,
            "options": {"temperature": 0, "num_predict": 60},
        },
    ).json()
    jsonschema.validate(json.loads(chat["message"]["content"]), schema)


def test_raw_and_template_override_give_the_same_prompt(http: httpx.Client) -> None:
    common = {"model": MODEL, "stream": False, "options": GREEDY}
    raw = http.post("/api/generate", json={**common, "prompt": "The capital of France is", "raw": True}).json()
    templated = http.post(
        "/api/generate",
        json={**common, "prompt": "France", "system": "The capital of", "template": "{{ .System }} {{ .Prompt }} is"},
    ).json()
    assert "context" not in raw
    assert raw["response"] == templated["response"] and raw["prompt_eval_count"] == templated["prompt_eval_count"]


def test_empty_prompt_loads_the_model(http: httpx.Client) -> None:
    load = http.post("/api/generate", json={"model": MODEL}).json()
    assert load["done"] is True and load["done_reason"] == "load" and load["response"] == ""
    chat = http.post("/api/chat", json={"model": MODEL, "messages": [], "keep_alive": 0}).json()
    assert chat["done_reason"] == "unload" and chat["message"] == {"role": "assistant", "content": ""}


def test_discovery_endpoints(http: httpx.Client, herd: str) -> None:
    assert http.get("/").text == "Ollama is running"
    assert http.head("/").status_code == 200
    major, minor, patch = http.get("/api/version").json()["version"].split(".")
    assert all(p.isdigit() for p in (major, minor, patch))
    client = ollama.Client(host=herd)
    tags = client.list()
    assert {"smollm2:135m", "all-minilm:l6-v2"} <= {m.model for m in tags.models}
    entry = next(m for m in tags.models if m.model == MODEL)
    assert entry.size and entry.size > 100_000_000 and entry.digest and entry.details.family == "llama"
    show = client.show("smollm2")
    assert show.modelinfo["llama.context_length"] == 2048
    assert "completion" in (show.capabilities or [])
    loaded = {m.model: m for m in client.ps().models}
    assert loaded[MODEL].expires_at is not None and loaded[MODEL].context_length == 2048
    assert client.show("all-minilm").capabilities == ["embedding"]
