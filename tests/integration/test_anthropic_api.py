"""The Anthropic Messages API against the real stack, through the official `anthropic` client and raw SSE.

SmolLM2-135M has no tool template; a forced tool choice (`tool`, `any`) is guided decoding and
must give a valid call, so the round trip does not depend on the tiny model's judgement.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration

WEATHER: Any = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
SYSTEM = "You are terse."
# anthropic>=2 has no sampling arguments of its own any more; the API still takes them.
GREEDY: Any = {"temperature": 0}


@pytest.fixture(scope="module")
def client(herd: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=herd, api_key="any", max_retries=0)


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_message_not_streamed(client: anthropic.Anthropic, tokenizer: Any) -> None:
    m = client.messages.create(model=MODEL, max_tokens=12, system=SYSTEM, messages=ASK, extra_body=GREEDY)
    assert m.type == "message" and m.role == "assistant" and m.model == MODEL and m.id.startswith("msg_")
    assert [b.type for b in m.content] == ["text"] and m.content[0].text.strip()  # type: ignore[union-attr]
    assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None
    expected = _prompt_tokens(tokenizer, [{"role": "system", "content": SYSTEM}, *ASK])
    assert m.usage.input_tokens == expected and 0 < m.usage.output_tokens <= 12


def test_max_tokens_and_stop_sequence_reasons(client: anthropic.Anthropic) -> None:
    story: Any = [{"role": "user", "content": "Tell me a long story about a cat."}]
    cut = client.messages.create(model=MODEL, max_tokens=3, messages=story, extra_body=GREEDY)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3
    stops = [" ", "\n", "."]
    stopped = client.messages.create(
        model=MODEL, max_tokens=40, messages=story, stop_sequences=stops, extra_body=GREEDY
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence in stops


def test_stream_event_sequence(client: anthropic.Anthropic, tokenizer: Any) -> None:
    with client.messages.stream(model=MODEL, max_tokens=16, messages=ASK, extra_body=GREEDY) as s:
        events = list(s)
        final = s.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1:4] == ["content_block_start", "content_block_delta", "text"]  # "text": the SDK's own helper
    deltas = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    assert deltas and final.content[0].text == deltas  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.input_tokens == _prompt_tokens(tokenizer, ASK) and final.usage.output_tokens > 0


def test_raw_stream_frames(http: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": ASK, "stream": True}
    with http.stream("POST", "/v1/messages", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = r.read().decode().split("\n\n")
    assert frames[-1] == ""
    for frame in frames[:-1]:
        name, data = frame.split("\n")
        assert name.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == name[7:]
    names = [f.split("\n")[0][7:] for f in frames[:-1]]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("choice", [{"type": "tool", "name": "get_weather"}, {"type": "any"}], ids=["tool", "any"])
def test_tool_round_trip(client: anthropic.Anthropic, choice: Any, stream: bool) -> None:
    kwargs: Any = {"model": MODEL, "max_tokens": 80, "messages": ASK, "tools": [WEATHER],
                   "tool_choice": choice | {"disable_parallel_tool_use": True}}  # fmt: skip
    if stream:
        with client.messages.stream(**kwargs) as s:
            kinds = [e.type for e in s]
            first = s.get_final_message()
        assert "input_json" in kinds  # the SDK's event for each input_json_delta
    else:
        first = client.messages.create(**kwargs)
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.id.startswith("toolu_") and use.name == "get_weather"
    jsonschema.validate(use.input, WEATHER["input_schema"])
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "22 degrees and sunny"}
    history: Any = [*ASK, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    answer = client.messages.create(model=MODEL, max_tokens=20, messages=history, tools=[WEATHER])
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use") and answer.content


def test_count_tokens_is_the_prompt_the_model_sees(client: anthropic.Anthropic, tokenizer: Any) -> None:
    counted = client.messages.count_tokens(model=MODEL, system=SYSTEM, messages=ASK)
    assert counted.input_tokens == _prompt_tokens(tokenizer, [{"role": "system", "content": SYSTEM}, *ASK])
    with_tools = client.messages.count_tokens(model=MODEL, messages=ASK, tools=[WEATHER])
    used = client.messages.create(model=MODEL, max_tokens=1, messages=ASK, tools=[WEATHER])
    assert with_tools.input_tokens == used.usage.input_tokens > _prompt_tokens(tokenizer, ASK)


@pytest.mark.parametrize(
    ("patch", "status", "kind"),
    [
        ({"model": "nope"}, 404, "not_found_error"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}, 400, "invalid_request_error"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, 400, "invalid_request_error"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, 400, "invalid_request_error"),
        ({"max_tokens": None}, 400, "invalid_request_error"),
    ],
    ids=["unknown model", "image", "thinking", "server tool", "no max_tokens"],
)
def test_errors_in_anthropic_shape(http: httpx.Client, patch: dict[str, Any], status: int, kind: str) -> None:
    body = {k: v for k, v in ({"model": MODEL, "max_tokens": 4, "messages": ASK} | patch).items() if v is not None}
    r = http.post("/v1/messages", json=body)
    assert r.status_code == status
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == kind and error["error"]["message"]


def test_client_raises_typed_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="nope", max_tokens=4, messages=ASK)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    image: Any = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]
    with pytest.raises(anthropic.BadRequestError, match="image"):
        client.messages.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": image}])


def test_raw_stream_of_a_tool_call(http: httpx.Client) -> None:
    body = {"model": MODEL, "max_tokens": 60, "messages": ASK, "tools": [WEATHER], "stream": True,
            "tool_choice": {"type": "tool", "name": "get_weather"}}  # fmt: skip
    with http.stream("POST", "/v1/messages", json=body) as r:
        raw = r.read().decode()
    print(raw)  # the event sequence the README and the issue show (pytest -rP)
    events = [(f.split("\n")[0][7:], json.loads(f.split("\n")[1][6:])) for f in raw.split("\n\n")[:-1]]
    names = [name for name, _ in events]
    deltas = names[3:-3]
    assert names[:3] == ["message_start", "ping", "content_block_start"] and deltas
    assert set(deltas) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[2][1]["content_block"]["type"] == "tool_use" and events[2][1]["content_block"]["input"] == {}
    arguments = "".join(e["delta"]["partial_json"] for name, e in events if name == "content_block_delta")
    jsonschema.validate(json.loads(arguments), WEATHER["input_schema"])
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
