"""Tool plans (tool_choice -> mode and guided schema) and the readers that turn output into calls."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from router.convert.tools import (
    CallArgs,
    CallStart,
    Piece,
    Reader,
    Text,
    ToolCall,
    arguments_object,
    assemble,
    history_tool_calls,
    plan,
)
from router.errors import BadRequest
from workers.tool_prompt import inline_tools, template_knows_tools

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time"}}  # no parameters at all


def _ids() -> Any:
    counter = itertools.count()
    return lambda: f"call_{next(counter)}"


def _run(reader: Reader, parts: list[str]) -> list[Piece]:
    return [p for part in parts for p in reader.feed(part)] + reader.finish()


def test_modes_and_schemas() -> None:
    assert plan(None).mode == "none" and plan([]).mode == "none"
    assert plan([WEATHER]).mode == "auto"
    assert plan([WEATHER], "none").tools == ()  # `none`: the model is not offered the tools
    named = plan([WEATHER, TIME], {"type": "function", "function": {"name": "get_weather"}})
    assert (named.mode, named.name, named.schema) == ("named", "get_weather", WEATHER["function"]["parameters"])
    assert plan([TIME], {"type": "function", "function": {"name": "get_time"}}).schema == {
        "type": "object",
        "properties": {},
    }
    required = plan([WEATHER, TIME], "required", parallel_tool_calls=False)
    assert required.schema is not None
    assert required.schema["type"] == "array" and required.schema["minItems"] == 1 and required.schema["maxItems"] == 1
    names = [item["properties"]["name"]["enum"] for item in required.schema["items"]["anyOf"]]
    assert names == [["get_weather"], ["get_time"]]
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [TIME]}}
    assert [t["function"]["name"] for t in plan([WEATHER, TIME], allowed).tools] == ["get_time"]


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        ([WEATHER], {"type": "function", "function": {"name": "nope"}}, "not in 'tools'"),
        (None, "required", "needs at least one function"),
        ([WEATHER], "sometimes", "tool_choice must be"),
        ([{"type": "retrieval"}], None, "each tool must be"),
        ([{"type": "function", "function": {"description": "x"}}], None, "needs a 'name'"),
        ([WEATHER, WEATHER], None, "must be unique"),
        ([{"type": "function", "function": {"name": "f", "parameters": "x"}}], None, "JSON schema object"),
    ],
)
def test_bad_tools_are_400(tools: Any, choice: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        plan(tools, choice)


def test_named_streams_argument_fragments_with_the_id_once() -> None:
    reader = plan([WEATHER], {"type": "function", "function": {"name": "get_weather"}}).reader(_ids())
    assert _run(reader, ['{"city"', ': "Tokyo"}']) == [
        CallStart(0, "call_0", "get_weather"),
        CallArgs(0, '{"city"'),
        CallArgs(0, ': "Tokyo"}'),
    ]
    assert reader.calls == 1


def test_required_parses_the_array_at_the_end() -> None:
    reader = plan([WEATHER, TIME], "required").reader(_ids())
    out = '[{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}]'
    text, calls = assemble(_run(reader, [out[:10], out[10:]]))
    assert text == "" and calls == [
        ToolCall("call_0", "get_time", "{}"),
        ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),
    ]
    cut = plan([WEATHER], "required").reader(_ids())  # max_tokens cut the first call short: it stays text
    assert assemble(_run(cut, ['[{"name": "get_we'])) == ('[{"name": "get_we', [])


def test_required_sends_each_call_when_its_object_closes() -> None:
    reader = plan([WEATHER, TIME], "required").reader(_ids())
    assert reader.feed(' [ {"name": "get_time", "arguments": {}') == []
    assert reader.feed("}, ") == [CallStart(0, "call_0", "get_time"), CallArgs(0, "{}")]
    # A second call cut by max_tokens: the first one stands.
    assert reader.feed('{"name": "get_weather", "arguments": {"ci') == []
    assert reader.finish() == [] and reader.calls == 1


@pytest.mark.parametrize(
    ("parts", "text", "calls"),
    [
        (["Hello", " there"], "Hello there", []),
        # A Hermes block split across deltas, with text around it.
        (
            ["Sure. <tool", '_call>\n{"name": "get_weather", "arg', 'uments": {"city": "Paris"}}\n</tool_call> ok'],
            "Sure.  ok",
            [("get_weather", {"city": "Paris"})],
        ),
        # Two blocks; one never closed (the model stopped first).
        (
            ['<tool_call>{"name": "get_time", "arguments": {}}</tool_call><tool_call>{"name": "get_time"}'],
            "",
            [("get_time", {}), ("get_time", {})],
        ),
        # A whole answer that is one bare JSON call (Llama 3.1 style, `parameters`).
        (['  {"name": "get_weather", ', '"parameters": {"city": "Rome"}}'], "", [("get_weather", {"city": "Rome"})]),
        # JSON that is not a call of an offered tool stays text, as does an unknown name in a block.
        (['{"answer": 42}'], '{"answer": 42}', []),
        (
            ['<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>'],
            '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
            [],
        ),
        # Arguments written as a JSON string are accepted.
        (['<tool_call>{"name": "get_time", "arguments": "{}"}</tool_call>'], "", [("get_time", {})]),
        # A partial "<tool" at the end that never becomes a block is released at the end.
        (["a <to", "ol"], "a <tool", []),
        (['x <tool_call>{"name": '], 'x <tool_call>{"name": ', []),
    ],
)
def test_auto_reader(parts: list[str], text: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
    reader = plan([WEATHER, TIME]).reader(_ids())
    got_text, got_calls = assemble(_run(reader, parts))
    assert got_text == text
    assert [(c.name, json.loads(c.arguments)) for c in got_calls] == calls
    assert reader.calls == len(calls)


def test_auto_reader_without_parallel_calls_keeps_the_first() -> None:
    reader = plan([TIME], parallel_tool_calls=False).reader(_ids())
    block = '<tool_call>{"name": "get_time", "arguments": {"tz": "%s"}}</tool_call>'
    _, calls = assemble(_run(reader, [block % "UTC", block % "CET"]))
    assert [json.loads(c.arguments) for c in calls] == [{"tz": "UTC"}]


def test_auto_reader_releases_plain_text_as_it_streams() -> None:
    reader = plan([WEATHER]).reader(_ids())
    assert reader.feed("The weather ") == [Text("The weather ")]
    assert reader.feed("is <tool") == [Text("is ")]  # the tail may open a block: held
    assert reader.feed(" nice") == [Text("<tool nice")]


def test_arguments_object_never_crashes() -> None:
    assert arguments_object(ToolCall("i", "f", '{"a": 1}')) == {"a": 1}
    assert arguments_object(ToolCall("i", "f", '{"a": ')) == {}


def test_history_tool_calls() -> None:
    openai_calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]
    assert history_tool_calls(openai_calls, arguments_as_text=True) == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    ]
    ollama_calls = [{"function": {"name": "f", "arguments": {"x": 1}}}]
    assert history_tool_calls(ollama_calls, arguments_as_text=False)[0]["function"]["arguments"] == {"x": 1}  # type: ignore[index]
    with pytest.raises(BadRequest, match="ToolCallFunctionArguments"):
        history_tool_calls([{"function": {"name": "f", "arguments": '{"x": 1}'}}], arguments_as_text=False)
    with pytest.raises(BadRequest, match="JSON object encoded as a string"):
        history_tool_calls([{"id": "c", "function": {"name": "f", "arguments": "nope"}}], arguments_as_text=True)


def test_inline_tools_for_a_template_without_them() -> None:
    assert not template_knows_tools("{{ message['content'] }}") and template_knows_tools("{% if tools %}")
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            ],
        },
        {"role": "tool", "content": "18C", "name": "get_weather", "tool_call_id": "c"},
    ]
    out = inline_tools(messages, [WEATHER])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert '"name": "get_weather"' in out[0]["content"] and "<tools>" in out[0]["content"]
    assert out[2]["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert out[3]["content"] == "<tool_response>\n18C\n</tool_response>"
    assert all(set(m) == {"role", "content"} for m in out)
