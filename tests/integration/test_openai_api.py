"""The OpenAI-compatible API against the real stack, through the official `openai` client and raw SSE."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(herd: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)


def sse_events(http: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    assert all(f.startswith("data: ") for f in frames[:-1])
    return [f[len("data: ") :] for f in frames[:-1]]


def test_chat_stream_sequence_and_usage(http: httpx.Client) -> None:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        "max_tokens": 20,
    }
    events = sse_events(http, "/v1/chat/completions", body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    *content, finish, usage = chunks
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in content)
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == (
        usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]
    )
    assert usage["usage"]["completion_tokens"] <= 20


def test_chat_with_official_client(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}]
    full = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_completion_tokens=30)
    choice = full.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length") and full.model == MODEL
    assert full.usage and full.usage.completion_tokens <= 30
    stream = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=30, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == choice.message.content


def test_seed_makes_sampling_reproducible(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str | None:
        r = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Tell me a story."}],
            temperature=1.0,
            seed=seed,
            max_tokens=24,
        )
        return r.choices[0].message.content

    assert sample(7) == sample(7)
    assert len({sample(7), sample(8), sample(9)}) > 1


def test_completions_with_stop(client: openai.OpenAI) -> None:
    full = client.completions.create(model=MODEL, prompt="One, two, three,", temperature=0, max_tokens=12)
    text = full.choices[0].text
    assert full.object == "text_completion" and text
    assert full.usage and full.usage.completion_tokens <= 12
    stop = text.strip().split()[0]
    cut = client.completions.create(model=MODEL, prompt="One, two, three,", temperature=0, max_tokens=12, stop=[stop])
    assert stop not in cut.choices[0].text and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model=MODEL, prompt="One, two, three,", temperature=0, max_tokens=12, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == text


def test_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"smollm2:135m", "all-minilm:l6-v2"} <= set(ids) and len(ids) == len(set(ids))
    assert client.models.retrieve("smollm2").owned_by == "library"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
