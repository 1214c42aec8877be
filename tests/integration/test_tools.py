"""Tool calling against the real stack, through the official `openai` and `ollama` clients and raw SSE.

SmolLM2-135M's chat template has no tool support, so the worker describes the tools in a
Hermes-style system prompt. Named and `required` choices are guided decoding and must give a
valid call from this tiny model; `auto` depends on the model, so its tests check the protocol
(a call of an offered tool, or plain text) and a few-shot case where the model does call.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import ollama
import openai
import pytest

from tests.integration.conftest import MODEL
from tests.integration.test_openai_api import sse_events

pytestmark = pytest.mark.integration

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city", "unit"],
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "The current time in a timezone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, TIME)}


@pytest.fixture(scope="module")
def client(herd: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)


def _valid(name: str, arguments: str) -> dict[str, Any]:
    args = json.loads(arguments)
    jsonschema.validate(args, SCHEMAS[name])
    return dict(args)


@pytest.mark.parametrize(
    "choice", [{"type": "function", "function": {"name": "get_weather"}}, "required"], ids=["named", "required"]
)
def test_forced_choice_gives_a_valid_call(client: openai.OpenAI, choice: Any) -> None:
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice=choice, temperature=0.7, max_tokens=80
    )
    c = r.choices[0]
    assert c.finish_reason == "tool_calls" and c.message.content is None
    assert c.message.tool_calls
    for call in c.message.tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        _valid(call.function.name, call.function.arguments)
    if isinstance(choice, dict):
        assert [t.function.name for t in c.message.tool_calls] == ["get_weather"]  # type: ignore[union-attr]


def test_streamed_tool_call_deltas(http: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": ASK,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stream": True,
        "max_tokens": 80,
    }
    events = sse_events(http, "/v1/chat/completions", body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [d for c in chunks[1:-1] for d in c["choices"][0]["delta"]["tool_calls"]]
    assert len(deltas) >= 2 and all(d["index"] == 0 for d in deltas)
    assert "id" in deltas[0] and deltas[0]["function"]["name"] == "get_weather"
    assert all("id" not in d and "name" not in d["function"] for d in deltas[1:])  # the id only once
    assert all(isinstance(d["function"]["arguments"], str) for d in deltas)
    _valid("get_weather", "".join(d["function"]["arguments"] for d in deltas))
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}


def test_official_stream_helper_assembles_required_calls(client: openai.OpenAI) -> None:
    # `chat.completions.stream()` indexes deltas by `index` (it crashes on servers that omit it).
    with client.chat.completions.stream(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], tool_choice="required", max_tokens=120
    ) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls" and calls
    for call in calls:
        _valid(call.function.name, call.function.arguments)  # type: ignore[union-attr]


def test_auto_renders_tools_and_answers_in_protocol(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=40)
    auto = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], temperature=0, max_tokens=40)
    none = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=40
    )
    assert auto.usage and plain.usage and none.usage
    # The tool definitions reach the prompt (the worker's tool system prompt); `none` leaves them out.
    tool_tokens = auto.usage.prompt_tokens - plain.usage.prompt_tokens
    assert tool_tokens > len(json.dumps(WEATHER)) // 8
    assert none.usage.prompt_tokens == plain.usage.prompt_tokens
    c = auto.choices[0]
    if c.finish_reason == "tool_calls":
        for call in c.message.tool_calls or []:
            _valid(call.function.name, call.function.arguments)  # type: ignore[union-attr]
    else:
        assert c.finish_reason in ("stop", "length") and c.message.content and not c.message.tool_calls


def _few_shot() -> list[dict[str, Any]]:
    """Earlier turns where the assistant called the tool (Ollama shapes): this small model then copies them."""
    history: list[dict[str, Any]] = []
    for city in ("Paris", "Rome", "Oslo"):
        history += [
            {"role": "user", "content": f"What is the weather in {city}?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": city, "unit": "C"}}}],
            },
            {"role": "tool", "tool_name": "get_weather", "content": "18C and sunny"},
            {"role": "assistant", "content": f"It is 18C and sunny in {city}."},
        ]
    return [*history, {"role": "user", "content": "What is the weather in Tokyo?"}]


def test_ollama_auto_tool_call_round_trip(herd: str) -> None:
    oclient = ollama.Client(host=herd)
    calls = []
    for seed in range(8):  # sampling decides whether this tiny model calls; some seed does
        r = oclient.chat(
            model=MODEL,
            messages=_few_shot(),
            tools=[WEATHER],
            options={"temperature": 0.7, "seed": seed, "num_predict": 60},
        )
        if r.message.tool_calls:
            calls = r.message.tool_calls
            break
        assert r.message.content and r.done_reason in ("stop", "length")
    assert calls, "no seed produced a tool call"
    call = calls[0]
    assert call.function.name == "get_weather" and isinstance(call.function.arguments, dict)
    # The call and its result go back into the conversation; the model answers.
    follow = [
        *_few_shot(),
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump(exclude_none=True) for c in calls]},
        {"role": "tool", "tool_name": "get_weather", "content": "25C and humid"},
    ]
    done = oclient.chat(model=MODEL, messages=follow, tools=[WEATHER], options={"temperature": 0, "num_predict": 30})
    assert done.done and (done.message.content or done.message.tool_calls)


def test_ollama_streamed_tool_call_arrives_whole(http: httpx.Client) -> None:
    for seed in range(8):
        body = {
            "model": MODEL,
            "messages": _few_shot(),
            "tools": [WEATHER],
            "options": {"temperature": 0.7, "seed": seed, "num_predict": 60},
        }
        with http.stream("POST", "/api/chat", content=json.dumps(body)) as r:
            assert r.status_code == 200
            lines = [json.loads(line) for line in r.iter_lines()]
        with_calls = [line for line in lines if line["message"].get("tool_calls")]
        if with_calls:
            assert len(with_calls) == 1 and not with_calls[0]["done"] and lines[-1]["done"]
            (call,) = with_calls[0]["message"]["tool_calls"]
            assert call["id"].startswith("call_") and call["function"]["index"] == 0
            assert isinstance(call["function"]["arguments"], dict)
            assert lines[-1]["message"] == {"role": "assistant", "content": ""}
            return
    pytest.fail("no seed produced a tool call")


def test_openai_history_with_tool_calls_and_results(client: openai.OpenAI) -> None:
    messages: Any = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER], temperature=0, max_tokens=30)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    bad: Any = [
        *messages[:1],
        {
            **messages[1],
            "tool_calls": [{**messages[1]["tool_calls"][0], "function": {"name": "get_weather", "arguments": "{oops"}}],
        },
    ]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=bad, max_tokens=5)


@pytest.mark.parametrize(
    ("tools", "choice", "param"),
    [
        ([WEATHER], {"type": "function", "function": {"name": "nope"}}, "tool_choice"),
        (None, "required", "tool_choice"),
        ([{"type": "function", "function": {"parameters": {}}}], "auto", "tools"),
    ],
)
def test_bad_tool_requests_are_400(http: httpx.Client, tools: Any, choice: Any, param: str) -> None:
    body = {"model": MODEL, "messages": ASK, "tools": tools, "tool_choice": choice}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param
