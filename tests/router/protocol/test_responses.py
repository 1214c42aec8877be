"""The response TypedDicts are the wire contract: what each encoder writes, parsed back from its
bytes, has exactly the keys its type lists (all the required ones, no others), at every depth.

mypy checks the dicts the encoders build; this catches what it cannot: a key added through a
path mypy does not see, and a contract that lists a field no representative output carries.
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, NotRequired, TypeVar, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from router.api import frames
from router.api.models import ps_entry, show_body, tag_entry
from router.api.ollama import encode as ollama_encode
from router.api.openai import encode as openai_encode
from router.convert.embeddings import ollama_embed_body, openai_body
from router.convert.tools import ToolCall
from router.errors import BadRequest, ModelNotFound
from router.protocol import ollama, openai
from tests.support import record
from workers.events import TokenLogprob

T = "2024-07-22T20:47:51.147561Z"
LP = (TokenLogprob("Hi", -0.5, (TokenLogprob("Hi", -0.5), TokenLogprob("Hey", -1.5))),)
CALL = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
METRICS = ollama_encode.OllamaMetrics(10, 2, 26, 130, 259, 4232, 2)


def problems(value: Any, hint: Any, path: str = "$", bound: dict[Any, Any] | None = None) -> list[str]:
    """Where `value` (parsed JSON) departs from `hint`; empty when it conforms."""
    bound = bound or {}
    if isinstance(hint, TypeVar):
        hint = bound[hint]
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return []
    if is_typeddict(origin or hint):
        cls = origin or hint
        bound = bound | dict(zip(getattr(cls, "__parameters__", ()), args, strict=False))
        return _typeddict(value, cls, path, bound)
    if origin is Literal:
        return [] if value in args else [f"{path}: expected one of {args}, got {value!r}"]
    if origin in (types.UnionType,):
        arms = [problems(value, arm, path, bound) for arm in args]
        return [] if any(not p for p in arms) else [p for arm in arms for p in arm]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {value!r}"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{path}[{i}]", bound)]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {value!r}"]
        return [p for k, v in value.items() for p in problems(v, args[1], f"{path}.{k}", bound)]
    if hint is None or hint is type(None):
        return [] if value is None else [f"{path}: expected null, got {value!r}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{path}: expected {hint.__name__}, got {value!r}"]


def _typeddict(value: Any, cls: Any, path: str, bound: dict[Any, Any]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: expected {cls.__name__}, got {value!r}"]
    # Read NotRequired from the hints: with postponed annotations Python 3.11's
    # __required_keys__ counts every key of a total TypedDict as required.
    hints = get_type_hints(cls, include_extras=True)
    optional = {k for k, h in hints.items() if get_origin(h) is NotRequired or not cls.__total__}
    found = [f"{path}: {k!r} is not in {cls.__name__}" for k in value if k not in hints]
    found += [f"{path}: {cls.__name__} needs {k!r}" for k in hints if k not in optional and k not in value]
    for key, hint in hints.items():
        if key not in value:
            continue
        inner = get_args(hint)[0] if get_origin(hint) is NotRequired else hint
        found += problems(value[key], inner, f"{path}.{key}", bound)
    return found


def _sse(frame: bytes) -> Any:
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    return json.loads(frame[len(b"data: ") :])


def _cases() -> list[tuple[str, Any, Any]]:
    model = record("m:1", embedding_length=576, messages=({"role": "user", "content": "hi"},), license=("MIT",))
    chat = openai_encode.ChatChunks("chatcmpl-1", 1, "m", include_usage=True)
    text = openai_encode.CompletionChunks("cmpl-1", 1, "m", include_usage=True)
    completion_lp = openai_encode.completion_logprobs(LP, 3)
    chat_body = openai_encode.chat_completion(
        "chatcmpl-1",
        1,
        "m",
        [openai_encode.chat_choice(0, "", [CALL], "tool_calls", LP), openai_encode.chat_choice(1, "x", [], "stop")],
        3,
        4,
    )
    text_body = openai_encode.text_completion(
        "cmpl-1", 1, "m", [openai_encode.completion_choice(0, "Hi", "stop", completion_lp)], 3, 4
    )
    # The route adds Herd's timing to a whole body once the choices are in (openai/routes.py `_json_body`).
    chat_body["router_duration_ms"] = text_body["router_duration_ms"] = frames.router_ms(1_500_000)
    return [
        # Ollama: stream lines and bodies, with every optional field Herd can send.
        ("generate chunk", json.loads(ollama_encode.generate_chunk("m", T, "Hi", LP, 2)), ollama.GenerateResponse),
        (
            "generate final",
            json.loads(ollama_encode.generate_final("m", T, "", "stop", METRICS, [1, 2], LP, 2)),
            ollama.GenerateResponse,
        ),
        (
            "chat chunk",
            json.loads(ollama_encode.chat_chunk("m", T, "", [CALL], LP, 2)),
            ollama.ChatResponse,
        ),
        ("chat final", json.loads(ollama_encode.chat_final("m", T, "", "stop", METRICS)), ollama.ChatResponse),
        ("load chat", ollama_encode.loaded("m", T, "load", chat=True), ollama.ChatResponse),
        ("unload generate", ollama_encode.loaded("m", T, "unload", chat=False), ollama.GenerateResponse),
        ("ollama error", json.loads(ollama_encode.error(BadRequest("no"))), ollama.ErrorResponse),
        ("embed", ollama_embed_body("m", [(0.6, 0.8)], 10, 2, 4), ollama.EmbedResponse),
        ("tags entry", tag_entry(model), ollama.ListModelResponse),
        ("ps entry", ps_entry(model, 1_721_681_271_147_561_000), ollama.ProcessModelResponse),
        ("show", show_body(model), ollama.ShowResponse),
        # OpenAI: every kind of frame of both streams, the whole bodies, errors.
        ("chat role", _sse(chat.role()), openai.ChatCompletionChunk),
        ("chat content", _sse(chat.content("Hi", 0, LP)), openai.ChatCompletionChunk),
        ("chat call start", _sse(chat.tool_call_start(0, "call_1", "f", 1)), openai.ChatCompletionChunk),
        ("chat call arguments", _sse(chat.tool_call_arguments(0, "{}", 1)), openai.ChatCompletionChunk),
        ("chat finish", _sse(chat.finish("stop", 1_500_000)), openai.ChatCompletionChunk),
        ("chat usage", _sse(chat.usage(3, 4)), openai.ChatCompletionChunk),
        ("text", _sse(text.text("Hi", 0, completion_lp)), openai.CompletionChunk),
        ("text finish", _sse(text.finish("length", 1_500_000)), openai.CompletionChunk),
        ("text usage", _sse(text.usage(3, 4)), openai.CompletionChunk),
        ("chat completion", chat_body, openai.ChatCompletion),
        ("text completion", text_body, openai.TextCompletion),
        ("openai error", _sse(openai_encode.error_frame(ModelNotFound("m"))), openai.ErrorResponse),
        ("embeddings float", openai_body("m", [(1.0, -2.0)], "float", 7), openai.EmbeddingList),
        ("embeddings base64", openai_body("m", [(1.0, -2.0)], "base64", 7), openai.EmbeddingList),
    ]


@pytest.mark.parametrize(("case", "value", "contract"), _cases(), ids=[c[0] for c in _cases()])
def test_each_encoder_writes_exactly_its_contract(case: str, value: Any, contract: Any) -> None:
    assert problems(json.loads(json.dumps(value)), contract) == []


def test_a_departure_from_the_contract_is_found() -> None:
    """The checker itself: an extra key, a missing one and a wrong type, nested or not."""
    line = json.loads(ollama_encode.chat_chunk("m", T, "", [CALL]))
    line["message"]["tool_calls"][0]["function"]["extra"] = 1
    del line["created_at"]
    line["done"] = "no"
    assert problems(line, ollama.ChatResponse) == [
        "$: ChatResponse needs 'created_at'",
        "$.message.tool_calls[0].function: 'extra' is not in ToolCallFunction",
        "$.done: expected bool, got 'no'",
    ]
    assert problems({"error": {"message": "x"}}, openai.ErrorResponse) == [
        f"$.error: ErrorObject needs {k!r}" for k in ("type", "param", "code")
    ]


def test_every_optional_field_appears_in_some_output() -> None:
    """A contract field no encoder writes is dead documentation (or a case missing above)."""
    seen: dict[str, set[str]] = {}

    def walk(value: Any, hint: Any, bound: dict[Any, Any]) -> None:
        if isinstance(hint, TypeVar):
            hint = bound[hint]
        origin, args = get_origin(hint), get_args(hint)
        if is_typeddict(origin or hint) and isinstance(value, dict):
            cls = origin or hint
            bound = bound | dict(zip(getattr(cls, "__parameters__", ()), args, strict=False))
            seen.setdefault(cls.__name__, set()).update(value)
            for key, h in get_type_hints(cls, include_extras=True).items():
                if key in value:
                    walk(value[key], get_args(h)[0] if get_origin(h) is NotRequired else h, bound)
        elif origin is types.UnionType:
            for arm in args:
                if not problems(value, arm, bound=bound):
                    walk(value, arm, bound)
        elif origin is list and isinstance(value, list):
            for item in value:
                walk(item, args[0], bound)

    for _, value, contract in _cases():
        walk(json.loads(json.dumps(value)), contract, {})
    unseen = {
        name: sorted(keys)
        for module in (ollama, openai)
        for name, cls in vars(module).items()
        if is_typeddict(cls) and name in seen and (keys := get_type_hints(cls).keys() - seen[name])
    }
    assert unseen == {}
