from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from router.api.body import parse_json_body
from router.api.openai.routes import text_content
from router.errors import BadRequest
from router.protocol import ollama
from router.protocol.ollama import ChatRequest, GenerateRequest, ShowRequest
from router.protocol.openai import ChatCompletionRequest, CompletionRequest


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "missing request body"),
        (b"  \n", "missing request body"),
        (b"[1]", "the request body must be a JSON object"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
            "messages.0.content: Input should be a valid string",
        ),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "messages.0.role: Field required"),
    ],
)
def test_body_errors(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_json_body(ChatRequest, raw)
    assert info.value.message == message


def test_invalid_json_reports_the_decoder_error() -> None:
    with pytest.raises(BadRequest, match="invalid JSON body: Expecting value"):
        parse_json_body(GenerateRequest, b'{"model": ')


def test_ollama_defaults_and_ignored_fields() -> None:
    req = parse_json_body(GenerateRequest, b'{"model": "m", "prompt": "p", "unknown": 1}')
    assert req.stream is True and req.raw is False and req.options is None
    chat = parse_json_body(ChatRequest, b'{"model": "m", "messages": [{"role": "USER"}], "tools": []}')
    assert chat.messages[0].role == "user" and chat.messages[0].content == ""  # ollama-python drops empty content
    assert parse_json_body(ShowRequest, b'{"name": "legacy"}').target == "legacy"


def test_openai_requests() -> None:
    with pytest.raises(BadRequest, match="messages: List should have at least 1 item"):
        parse_json_body(ChatCompletionRequest, b'{"model": "m", "messages": []}')
    assert parse_json_body(CompletionRequest, b'{"model": "m", "prompt": "x"}').max_tokens == 16
    assert parse_json_body(CompletionRequest, b'{"model": "m", "prompt": [1, 2]}').prompt == [1, 2]


def test_text_content() -> None:
    assert text_content(None) == "" and text_content("hi") == "hi"
    assert text_content([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    with pytest.raises(BadRequest, match="'image_url' are not supported"):
        text_content([{"type": "image_url", "image_url": {"url": "data:"}}])


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (ChatCompletionRequest, {"n": 0}, "n must be between 1 and 128"),
        (ChatCompletionRequest, {"n": 129}, "n must be between 1 and 128"),
        (ChatCompletionRequest, {"top_logprobs": 21}, "top_logprobs must be between 0 and 20"),
        (CompletionRequest, {"logprobs": -1}, "logprobs must be between 0 and 20"),
        (ollama.ChatRequest, {"top_logprobs": 21}, "top_logprobs must be between 0 and 20"),
        (ollama.GenerateRequest, {"top_logprobs": -1}, "top_logprobs must be between 0 and 20"),
    ],
)
def test_shared_ranges_are_checked_once_in_the_models(
    model: type[BaseModel], body: dict[str, Any], message: str
) -> None:
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "prompt": "x"}
    with pytest.raises(BadRequest) as info:
        parse_json_body(model, json.dumps(base | body).encode())
    assert info.value.message == message and info.value.param == next(iter(body))


@pytest.mark.parametrize("value", [None, 0, 20])
def test_values_in_range_pass(value: int | None) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": value}
    assert parse_json_body(ChatCompletionRequest, json.dumps(body).encode()).top_logprobs == value
