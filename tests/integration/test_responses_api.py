"""The OpenAI Responses API against the real stack, through the official `openai` client and raw SSE.

Conversations (`previous_response_id`) are checked by token counts: a follow-up's prompt must be
exactly the stored turns plus the new input, rendered by the model's template (an independent
tokenizer counts it), so the test does not depend on what the tiny model remembers.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from bench.configs import chat_only_yaml
from tests.integration.conftest import MODEL, start_herd

pytestmark = pytest.mark.integration

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}
ASK = "What is the weather in Paris?"
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
CONNECTIONS = 8


@pytest.fixture(scope="module")
def client(herd: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_response_not_streamed(client: openai.OpenAI, tokenizer: Any) -> None:
    r = client.responses.create(model=MODEL, input=ASK, instructions="Be terse.", max_output_tokens=12)
    assert r.object == "response" and r.id.startswith("resp_") and r.model == MODEL
    assert r.status in ("completed", "incomplete") and r.output_text.strip()
    [item] = r.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    expected = _prompt_tokens(tokenizer, [{"role": "system", "content": "Be terse."}, {"role": "user", "content": ASK}])
    assert r.usage is not None and r.usage.input_tokens == expected
    assert 0 < r.usage.output_tokens <= 12 and r.usage.total_tokens == expected + r.usage.output_tokens


def test_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="Tell me a long story about a cat.", max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens" and r.usage is not None and r.usage.output_tokens == 3


def test_stream_event_sequence(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input=ASK, max_output_tokens=16, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed" if events[-1].response.status == "completed" else "response.incomplete",  # type: ignore[union-attr]
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert deltas and events[-1].response.output_text == deltas  # type: ignore[union-attr]


def test_raw_stream_frames(http: httpx.Client) -> None:
    body = {"model": MODEL, "input": ASK, "max_output_tokens": 4, "stream": True}
    with http.stream("POST", "/v1/responses", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = r.read().decode().split("\n\n")
    assert frames[-1] == ""
    for frame in frames[:-1]:
        name, data = frame.split("\n")
        assert json.loads(data[len("data: ") :])["type"] == name[len("event: ") :]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("choice", [{"type": "function", "name": "get_weather"}, "required"], ids=["named", "required"])
def test_function_call_round_trip(client: openai.OpenAI, choice: Any, stream: bool, tokenizer: Any) -> None:
    kwargs: Any = {"model": MODEL, "input": ASK, "tools": [WEATHER], "tool_choice": choice, "max_output_tokens": 80,
                   "parallel_tool_calls": False}  # fmt: skip
    if stream:
        events = list(client.responses.create(**kwargs, stream=True))
        assert "response.function_call_arguments.delta" in [e.type for e in events]
        first = events[-1].response  # type: ignore[union-attr]
    else:
        first = client.responses.create(**kwargs)
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    arguments = json.loads(call.arguments)
    jsonschema.validate(arguments, WEATHER["parameters"])
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "22 degrees"}]
    # Tools travel with every request (as Codex sends them); the stored turns come from Redis.
    answer = client.responses.create(
        model=MODEL, previous_response_id=first.id, input=output, tools=[WEATHER], max_output_tokens=8
    )
    assert answer.previous_response_id == first.id and answer.status in ("completed", "incomplete")
    assert answer.usage is not None and answer.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]


def test_json_schema_text_format(client: openai.OpenAI) -> None:
    fmt: Any = {"format": {"type": "json_schema", "name": "a", "schema": SCHEMA, "strict": True}}
    r = client.responses.create(model=MODEL, input="Give me a number.", text=fmt, max_output_tokens=30)
    jsonschema.validate(json.loads(r.output_text), SCHEMA)


def test_previous_response_id_carries_the_conversation(client: openai.OpenAI, tokenizer: Any) -> None:
    first = client.responses.create(model=MODEL, input="My name is Ada.", instructions="Be terse.", max_output_tokens=8)
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id,
                                     max_output_tokens=8)  # fmt: skip
    # Instructions do not carry over; the earlier turns do.
    turns = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    assert second.usage is not None and second.usage.input_tokens == _prompt_tokens(tokenizer, turns)


def test_get_and_delete_a_stored_response(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
    assert client.responses.retrieve(r.id).model_dump() == r.model_dump()
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    unstored = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="Hi", previous_response_id=unstored.id, max_output_tokens=4)


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}]}, "input"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
    ],
    ids=["image", "web search", "reasoning"],
)
def test_refused_on_purpose(http: httpx.Client, patch: dict[str, Any], param: str) -> None:
    r = http.post("/v1/responses", json={"model": MODEL, "input": "Hi", "max_output_tokens": 4} | patch)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def _chain(base: str, previous: str | None, turns: int) -> list[str]:
    """`turns` responses, each continuing the last, each on a new connection (so on any router replica)."""
    ids = []
    for i in range(turns):
        with openai.OpenAI(base_url=f"{base}/v1", api_key="any", max_retries=0) as c:
            r = c.responses.create(model=MODEL, input=f"Turn {i}.", previous_response_id=previous, max_output_tokens=2)
        assert r.previous_response_id == previous and r.status in ("completed", "incomplete")
        previous = r.id
        ids.append(r.id)
    return ids


def _replicas_that_answered(base: str) -> set[str]:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    pattern = r'herd_requests_total\{[^}]*endpoint="/v1/responses"[^}]*replica="([^"]+)"[^}]*\} ([0-9.]+)'
    return {replica for replica, value in re.findall(pattern, text) if float(value) > 0}


def test_chain_across_router_replicas_and_a_restart(tmp_path: Path, tokenizer: Any) -> None:
    config = tmp_path / "chat.yaml"
    config.write_text(chat_only_yaml())
    with start_herd(tmp_path, "--config", str(config), env={"HERD_ROUTER_REPLICAS": "2"}) as base:
        ids = _chain(base, None, CONNECTIONS)
        # Both replicas answered links of one chain, so some link was answered by the replica that
        # did not store the response it continued (each replica reports its counters every 5 s).
        deadline = time.monotonic() + 20
        while len(replicas := _replicas_that_answered(base)) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert len(replicas) == 2, replicas
    with start_herd(tmp_path, "--config", str(config)) as base:
        with openai.OpenAI(base_url=f"{base}/v1", api_key="any", max_retries=0) as c:
            answers = [c.responses.retrieve(i).output_text for i in ids]
            after = c.responses.create(model=MODEL, input="Again.", previous_response_id=ids[-1], max_output_tokens=2)
    turns = [m for i, a in enumerate(answers) for m in ({"role": "user", "content": f"Turn {i}."},
                                                         {"role": "assistant", "content": a})]  # fmt: skip
    expected = _prompt_tokens(tokenizer, [*turns, {"role": "user", "content": "Again."}])
    assert after.usage is not None and after.usage.input_tokens == expected


def test_raw_stream_of_a_function_call(http: httpx.Client) -> None:
    body = {"model": MODEL, "input": ASK, "tools": [WEATHER], "stream": True, "max_output_tokens": 60,
            "tool_choice": {"type": "function", "name": "get_weather"}}  # fmt: skip
    with http.stream("POST", "/v1/responses", json=body) as r:
        raw = r.read().decode()
    print(raw)  # the event sequence the README and the issue show (pytest -rP)
    events = [(f.split("\n")[0][7:], json.loads(f.split("\n")[1][6:])) for f in raw.split("\n\n")[:-1]]
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert set(names[3:-3]) == {"response.function_call_arguments.delta"}
    assert names[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    deltas = "".join(e["delta"] for name, e in events if name == "response.function_call_arguments.delta")
    assert deltas == events[-3][1]["arguments"] == events[-1][1]["response"]["output"][0]["arguments"]
    jsonschema.validate(json.loads(deltas), WEATHER["parameters"])
