"""logprobs, `n` > 1, `seed`, `suffix` and `num_ctx` against the real stack, through the official clients."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.integration.conftest import MODEL
from tests.integration.test_openai_api import sse_events

pytestmark = pytest.mark.integration

ASK: Any = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def client(herd: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)


def check_logprobs(entries: list[Any], top: int, text: str) -> None:
    """Ollama's own integration checks: tokens non-empty, logprob <= 0, top sorted, bytes match."""
    assert entries
    for e in entries:
        token, logprob, alternatives = _get(e, "token"), _get(e, "logprob"), _get(e, "top_logprobs") or []
        assert token and logprob <= 0
        if isinstance(e, dict) or hasattr(e, "bytes"):  # ollama-python's model drops `bytes`
            assert _get(e, "bytes") == list(token.encode())
        assert len(alternatives) == top
        values = [_get(a, "logprob") for a in alternatives]
        assert values == sorted(values, reverse=True)
        if top:
            assert logprob <= values[0] + 1e-6  # nothing beats the best alternative
    assert "".join(_get(e, "token") for e in entries) == text


def _get(obj: Any, key: str) -> Any:
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def test_openai_chat_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, temperature=0, max_tokens=12, logprobs=True, top_logprobs=3
    )
    c = r.choices[0]
    assert c.logprobs and c.logprobs.content and c.message.content
    check_logprobs(c.logprobs.content, 3, c.message.content)
    # Greedy decoding picks the most likely token every time.
    assert all(e.logprob == e.top_logprobs[0].logprob for e in c.logprobs.content)
    off = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=4)
    assert off.choices[0].logprobs is None


def test_openai_chat_logprobs_stream(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": ASK, "temperature": 0, "max_tokens": 12, "logprobs": True, "stream": True}
    chunks = [json.loads(e) for e in sse_events(http, "/v1/chat/completions", body)[:-1]]
    content = [c["choices"][0] for c in chunks[1:-1]]
    entries = [e for choice in content for e in choice["logprobs"]["content"]]
    check_logprobs(entries, 0, "".join(choice["delta"]["content"] for choice in content))


def test_legacy_completion_logprobs(client: openai.OpenAI) -> None:
    r = client.completions.create(model=MODEL, prompt="One, two, three,", temperature=0, max_tokens=8, logprobs=2)
    lp = r.choices[0].logprobs
    assert lp and lp.tokens and lp.token_logprobs and lp.top_logprobs and lp.text_offset
    assert "".join(lp.tokens) == r.choices[0].text
    assert all(
        len(top) == 2 and max(top.values()) >= p for top, p in zip(lp.top_logprobs, lp.token_logprobs, strict=True)
    )
    assert lp.text_offset == [sum(len(t) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]


def test_ollama_logprobs_stream_and_whole(herd: str, http: httpx.Client) -> None:
    options = {"temperature": 0, "num_predict": 12}
    body = {"model": MODEL, "prompt": "Why is the sky blue?", "options": options, "logprobs": True, "top_logprobs": 2}
    with http.stream("POST", "/api/generate", content=json.dumps(body)) as r:
        parts = [json.loads(line) for line in r.iter_lines()]
    streamed = [e for p in parts for e in p.get("logprobs", [])]
    check_logprobs(streamed, 2, "".join(p["response"] for p in parts))
    oclient = ollama.Client(host=herd)
    whole = oclient.chat(model=MODEL, messages=ASK, options=options, logprobs=True)
    check_logprobs(whole.logprobs or [], 0, whole.message.content or "")
    assert oclient.chat(model=MODEL, messages=ASK, options=options).logprobs is None


def test_n_choices(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=MODEL, messages=ASK, n=3, temperature=1.0, seed=11, max_tokens=16)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({c.message.content for c in r.choices}) > 1  # independent samples (seed + i), not copies
    one = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=16)
    assert r.usage and one.usage and r.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt counts once
    assert len(r.choices) <= r.usage.completion_tokens <= 3 * 16
    texts = client.completions.create(model=MODEL, prompt="Once upon a time", n=2, seed=3, max_tokens=8)
    assert [c.index for c in texts.choices] == [0, 1] and all(c.text for c in texts.choices)


def test_n_choices_stream(http: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": ASK,
        "n": 2,
        "max_tokens": 10,
        "logprobs": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = [json.loads(e) for e in sse_events(http, "/v1/chat/completions", body)[:-1]]
    *choices, usage = chunks
    tokens = {0: 0, 1: 0}
    finishes = {}
    for c in choices:
        (choice,) = c["choices"]
        tokens[choice["index"]] += len((choice["logprobs"] or {}).get("content", []))
        if choice["finish_reason"]:
            finishes[choice["index"]] = choice["finish_reason"]
    assert set(finishes) == {0, 1} and usage["choices"] == []
    # Usage adds up both choices: each token has its logprob, and a "stop" ends on an end-of-turn token
    # that is counted but is not part of the text.
    ends = sum(1 for reason in finishes.values() if reason == "stop")
    assert usage["usage"]["completion_tokens"] == tokens[0] + tokens[1] + ends


def test_bad_n_and_logprobs_are_400(http: httpx.Client) -> None:
    for body, param in [
        ({"n": 0}, "n"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ]:
        r = http.post("/v1/chat/completions", json={"model": MODEL, "messages": ASK, **body})
        assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_ollama_seed_is_reproducible(herd: str) -> None:
    oclient = ollama.Client(host=herd)

    def sample(seed: int) -> str:
        r = oclient.generate(
            model=MODEL, prompt="Tell me a story.", options={"seed": seed, "temperature": 1.0, "num_predict": 24}
        )
        return r.response

    assert sample(42) == sample(42)
    assert len({sample(42), sample(43), sample(44)}) > 1


def test_suffix_needs_a_fill_in_the_middle_model(client: openai.OpenAI, herd: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt="def f(", suffix="return x", max_tokens=8)
    assert "does not support insert" in info.value.message and info.value.param == "suffix"
    with pytest.raises(ollama.ResponseError) as oinfo:
        ollama.Client(host=herd).generate(model=MODEL, prompt="def f(", suffix="return x")
    assert oinfo.value.status_code == 400 and oinfo.value.error == '"smollm2:135m" does not support insert'


def test_num_ctx_within_the_model_is_accepted(herd: str) -> None:
    r = ollama.Client(host=herd).generate(model=MODEL, prompt="hi", options={"num_ctx": 1024, "num_predict": 4})
    assert r.done


def test_logit_bias_steers_tokens(client: openai.OpenAI, tokenizer: Any) -> None:
    (banana,) = tokenizer.encode(" banana", add_special_tokens=False)
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, temperature=0, max_tokens=4, logit_bias={str(banana): 100}
    )
    assert r.choices[0].message.content == " banana" * 4
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2, logit_bias={"banana": 1})
