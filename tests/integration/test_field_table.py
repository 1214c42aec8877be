"""Every request field that `protocols.md` lists, sent once per endpoint: the answer is the expected
status (200, or a deliberate 400 for what this model or Herd does not serve) in the protocol's own
shape, never a 500.

Each row patches a small valid base request with one field. 400 rows are the fields Herd refuses on
purpose (see the README's protocol notes); everything else is honoured or, where the upstream
server also ignores it, accepted and ignored.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration

EMBED = "all-minilm"
TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}},
}
CALL_OLLAMA = {"function": {"name": "f", "arguments": {"x": 1}}}
CALL_OPENAI = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
TINY = {"num_predict": 3}

BASE: dict[str, dict[str, Any]] = {
    "/api/generate": {"model": MODEL, "prompt": "Hi", "stream": False, "options": TINY},
    "/api/chat": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": False, "options": TINY},
    "/api/embed": {"model": EMBED, "input": "hello"},
    "/api/embeddings": {"model": EMBED, "prompt": "hello"},
    "/api/show": {"model": MODEL},
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    "/v1/completions": {"model": MODEL, "prompt": "Hi", "max_tokens": 3},
    "/v1/embeddings": {"model": EMBED, "input": "hello"},
    "/v1/messages": {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/messages/count_tokens": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
    "/v1/responses": {"model": MODEL, "input": "Hi", "max_output_tokens": 3},
}
ANTHROPIC_TOOL = {"name": "f", "description": "F", "input_schema": TOOL["function"]["parameters"]}
RESPONSES_TOOL = {"type": "function", "name": "f", "parameters": TOOL["function"]["parameters"]}
USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "2"}


def _blocks(*blocks: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": list(blocks)}]}


def _items(*items: Any) -> dict[str, Any]:
    return {"input": list(items)}


OPTIONS = {
    "num_keep": 4,
    "seed": 1,
    "num_predict": 2,
    "top_k": 5,
    "top_p": 0.5,
    "min_p": 0.1,
    "typical_p": 0.9,
    "repeat_last_n": 32,
    "temperature": 0.3,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "stop": ["\n"],
    "num_ctx": 1024,
    "num_batch": 256,
    "num_gpu": -1,
    "main_gpu": 0,
    "use_mmap": True,
    "num_thread": 2,
    "draft_num_predict": 4,
    # Sent by ollama-python's Options type; Ollama skips unknown keys.
    "numa": False,
    "low_vram": False,
    "f16_kv": True,
    "mirostat": 0,
    "tfs_z": 1.0,
}


def _user(content: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}]}


ROWS: list[tuple[str, str, dict[str, Any], int]] = [
    # /api/generate (§1.3)
    ("/api/generate", "suffix", {"suffix": " end"}, 400),  # no fill-in-the-middle template
    ("/api/generate", "system", {"system": "Be brief."}, 200),
    ("/api/generate", "template", {"template": "{{ .System }} Q: {{ .Prompt }} A:"}, 200),
    ("/api/generate", "context", {"context": [1, 2, 3]}, 200),
    ("/api/generate", "stream", {"stream": True}, 200),
    ("/api/generate", "raw", {"raw": True}, 200),
    ("/api/generate", "format json", {"format": "json"}, 200),
    ("/api/generate", "format schema", {"format": SCHEMA}, 200),
    ("/api/generate", "keep_alive", {"keep_alive": "5m"}, 200),
    ("/api/generate", "images", {"images": ["aGk="]}, 400),  # a text-only model
    ("/api/generate", "think false", {"think": False}, 200),
    ("/api/generate", "think true", {"think": True}, 400),  # not a thinking model
    ("/api/generate", "truncate", {"truncate": False}, 200),
    ("/api/generate", "shift", {"shift": False}, 200),
    ("/api/generate", "logprobs", {"logprobs": True}, 200),
    ("/api/generate", "top_logprobs", {"logprobs": True, "top_logprobs": 3}, 200),
    ("/api/generate", "_debug_render_only", {"_debug_render_only": True}, 200),
    *[("/api/generate", f"options.{k}", {"options": {**TINY, k: v}}, 200) for k, v in OPTIONS.items()],
    # /api/chat (§1.4)
    ("/api/chat", "tools", {"tools": [TOOL]}, 200),
    ("/api/chat", "format", {"format": SCHEMA}, 200),
    ("/api/chat", "stream", {"stream": True}, 200),
    ("/api/chat", "keep_alive", {"keep_alive": 0}, 200),
    ("/api/chat", "think", {"think": "high"}, 400),
    ("/api/chat", "truncate", {"truncate": True}, 200),
    ("/api/chat", "shift", {"shift": True}, 200),
    ("/api/chat", "logprobs", {"logprobs": True, "top_logprobs": 2}, 200),
    ("/api/chat", "options", {"options": OPTIONS | TINY}, 200),
    ("/api/chat", "message.thinking", {"messages": [{"role": "user", "content": "Hi", "thinking": "hm"}]}, 200),
    ("/api/chat", "message.images", {"messages": [{"role": "user", "content": "Hi", "images": ["aGk="]}]}, 400),
    (
        "/api/chat",
        "message.tool_calls/tool_name/tool_call_id",
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "tool_calls": [CALL_OLLAMA]},  # no content: ollama-python drops it
                {"role": "tool", "content": "2", "tool_name": "f", "tool_call_id": "call_1"},
            ]
        },
        200,
    ),
    ("/api/chat", "message.role upper-case", {"messages": [{"role": "USER", "content": "Hi"}]}, 200),
    # /api/embed, /api/embeddings, /api/show (§1.6, §1.7)
    ("/api/embed", "input list", {"input": ["a", "b"]}, 200),
    ("/api/embed", "truncate", {"truncate": False}, 200),
    ("/api/embed", "dimensions", {"dimensions": 8}, 200),
    ("/api/embed", "options", {"options": {"temperature": 0}}, 200),
    ("/api/embed", "keep_alive", {"keep_alive": "1m"}, 200),
    ("/api/embeddings", "options", {"options": {"temperature": 0}}, 200),
    ("/api/embeddings", "keep_alive", {"keep_alive": "1m"}, 200),
    ("/api/show", "verbose", {"verbose": True}, 200),
    ("/api/show", "name (legacy)", {"model": "", "name": MODEL}, 200),
    # /v1/chat/completions (§3.1)
    ("/v1/chat/completions", "stream", {"stream": True}, 200),
    (
        "/v1/chat/completions",
        "stream_options",
        {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": False}},
        200,
    ),
    ("/v1/chat/completions", "max_completion_tokens", {"max_completion_tokens": 2}, 200),
    ("/v1/chat/completions", "n", {"n": 2}, 200),
    ("/v1/chat/completions", "stop string", {"stop": "\n"}, 200),
    ("/v1/chat/completions", "stop list", {"stop": ["\n", "."]}, 200),
    ("/v1/chat/completions", "stop null", {"stop": None}, 200),
    ("/v1/chat/completions", "temperature", {"temperature": 0.2}, 200),
    ("/v1/chat/completions", "top_p", {"top_p": 0.5}, 200),
    ("/v1/chat/completions", "frequency_penalty", {"frequency_penalty": 0.5}, 200),
    ("/v1/chat/completions", "presence_penalty", {"presence_penalty": 0.5}, 200),
    ("/v1/chat/completions", "seed", {"seed": 3}, 200),
    ("/v1/chat/completions", "logprobs", {"logprobs": True, "top_logprobs": 2}, 200),
    ("/v1/chat/completions", "logit_bias", {"logit_bias": {"42": -100}}, 200),
    ("/v1/chat/completions", "response_format text", {"response_format": {"type": "text"}}, 200),
    ("/v1/chat/completions", "response_format json_object", {"response_format": {"type": "json_object"}}, 200),
    (
        "/v1/chat/completions",
        "response_format json_schema",
        {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}}},
        200,
    ),
    ("/v1/chat/completions", "tools", {"tools": [TOOL]}, 200),
    ("/v1/chat/completions", "tool_choice none", {"tools": [TOOL], "tool_choice": "none"}, 200),
    ("/v1/chat/completions", "tool_choice auto", {"tools": [TOOL], "tool_choice": "auto"}, 200),
    ("/v1/chat/completions", "tool_choice required", {"tools": [TOOL], "tool_choice": "required"}, 200),
    (
        "/v1/chat/completions",
        "tool_choice named",
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "f"}}},
        200,
    ),
    (
        "/v1/chat/completions",
        "tool_choice allowed_tools",
        {
            "tools": [TOOL],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [TOOL]}},
        },
        200,
    ),
    ("/v1/chat/completions", "parallel_tool_calls", {"tools": [TOOL], "parallel_tool_calls": False}, 200),
    *[
        ("/v1/chat/completions", name, {name: value}, 200)
        for name, value in {
            "user": "u1",
            "safety_identifier": "s1",
            "prompt_cache_key": "k",
            "metadata": {"a": "b"},
            "store": False,
            "service_tier": "auto",
            "reasoning_effort": "low",
            "verbosity": "low",
            "modalities": ["text"],
            "audio": None,
            "prediction": {"type": "content", "content": "Hello"},
            "web_search_options": {},
            "functions": [TOOL["function"]],
            "function_call": "auto",
        }.items()
    ],
    ("/v1/chat/completions", "role developer", {"messages": [{"role": "developer", "content": "Be brief."}]}, 200),
    ("/v1/chat/completions", "content text parts", _user([{"type": "text", "text": "Hi"}]), 200),
    (
        "/v1/chat/completions",
        "content image_url",
        _user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]),
        400,  # a text-only model
    ),
    (
        "/v1/chat/completions",
        "content input_audio",
        _user([{"type": "input_audio", "input_audio": {"data": "aGk=", "format": "wav"}}]),
        400,
    ),
    ("/v1/chat/completions", "content file", _user([{"type": "file", "file": {"file_data": "aGk="}}]), 400),
    (
        "/v1/chat/completions",
        "assistant tool_calls + refusal, tool result",
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": None, "refusal": None, "tool_calls": [CALL_OPENAI]},
                {"role": "tool", "tool_call_id": "call_1", "content": "2"},
            ]
        },
        200,
    ),
    ("/v1/chat/completions", "role function", {"messages": [{"role": "function", "name": "f", "content": "2"}]}, 200),
    # /v1/completions (§3.2)
    ("/v1/completions", "prompt list", {"prompt": ["Hi"]}, 200),
    ("/v1/completions", "prompt tokens", {"prompt": [1, 2, 3]}, 200),
    ("/v1/completions", "prompt token lists", {"prompt": [[1, 2, 3]]}, 200),
    ("/v1/completions", "several prompts", {"prompt": ["Hi", "Yo"]}, 400),  # one prompt per request
    ("/v1/completions", "best_of", {"best_of": 1}, 200),
    ("/v1/completions", "echo", {"echo": True}, 400),
    ("/v1/completions", "frequency_penalty", {"frequency_penalty": 0.1}, 200),
    ("/v1/completions", "logit_bias", {"logit_bias": {"42": 5}}, 200),
    ("/v1/completions", "logprobs", {"logprobs": 2}, 200),
    ("/v1/completions", "n", {"n": 2}, 200),
    ("/v1/completions", "presence_penalty", {"presence_penalty": 0.1}, 200),
    ("/v1/completions", "seed", {"seed": 1}, 200),
    ("/v1/completions", "stop", {"stop": ["\n"]}, 200),
    ("/v1/completions", "stream", {"stream": True, "stream_options": {"include_usage": True}}, 200),
    ("/v1/completions", "suffix", {"suffix": " end"}, 400),  # no fill-in-the-middle template
    ("/v1/completions", "temperature", {"temperature": 0.5}, 200),
    ("/v1/completions", "top_p", {"top_p": 0.5}, 200),
    ("/v1/completions", "user", {"user": "u"}, 200),
    # /v1/embeddings (§3.3)
    ("/v1/embeddings", "input list", {"input": ["a", "b"]}, 200),
    ("/v1/embeddings", "input tokens", {"input": [1000, 2000]}, 200),
    ("/v1/embeddings", "input token lists", {"input": [[1000], [2000]]}, 200),
    ("/v1/embeddings", "encoding_format", {"encoding_format": "base64"}, 200),
    ("/v1/embeddings", "dimensions", {"dimensions": 8}, 200),
    ("/v1/embeddings", "user", {"user": "u"}, 200),
    # /v1/messages (Anthropic Messages)
    ("/v1/messages", "system string", {"system": "Be brief."}, 200),
    ("/v1/messages", "system blocks", {"system": [{"type": "text", "text": "Be brief."}]}, 200),
    ("/v1/messages", "content text blocks", _blocks({"type": "text", "text": "Hi"}), 200),
    ("/v1/messages", "content image", _blocks({"type": "image", "source": {"type": "base64", "data": "aGk="}}), 400),
    ("/v1/messages", "content document", _blocks({"type": "document", "source": {}}), 400),
    (
        "/v1/messages",
        "tool_use + tool_result",
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Calling."}, USE]},
                {"role": "user", "content": [RESULT, {"type": "text", "text": "Go on."}]},
            ]
        },
        200,
    ),
    (
        "/v1/messages",
        "tool_result blocks, is_error",
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [RESULT | {"content": [{"type": "text", "text": "no"}], "is_error": True}]},
            ]
        },
        200,
    ),
    (
        "/v1/messages",
        "assistant prefill",
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        200,
    ),  # fmt: skip
    (
        "/v1/messages",
        "thinking block",
        {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]}]},
        400,
    ),  # fmt: skip
    ("/v1/messages", "stop_sequences", {"stop_sequences": ["\n"]}, 200),
    ("/v1/messages", "stream", {"stream": True}, 200),
    ("/v1/messages", "temperature", {"temperature": 0.5}, 200),
    ("/v1/messages", "temperature above 1", {"temperature": 1.5}, 400),
    ("/v1/messages", "top_p", {"top_p": 0.5}, 200),
    ("/v1/messages", "top_k", {"top_k": 5}, 200),
    ("/v1/messages", "metadata", {"metadata": {"user_id": "u1"}}, 200),
    ("/v1/messages", "tools", {"tools": [ANTHROPIC_TOOL]}, 200),
    ("/v1/messages", "tools custom type", {"tools": [ANTHROPIC_TOOL | {"type": "custom"}]}, 200),
    ("/v1/messages", "tool_choice auto", {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "auto"}}, 200),
    ("/v1/messages", "tool_choice any", {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "any"}}, 200),
    (
        "/v1/messages",
        "tool_choice tool",
        {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "tool", "name": "f"}},
        200,
    ),
    ("/v1/messages", "tool_choice none", {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "none"}}, 200),
    (
        "/v1/messages",
        "tool_choice disable_parallel_tool_use",
        {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
        200,
    ),
    (
        "/v1/messages",
        "tool_choice unknown tool",
        {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "tool", "name": "g"}},
        400,
    ),  # fmt: skip
    ("/v1/messages", "server tool web_search", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, 400),
    ("/v1/messages", "server tool bash", {"tools": [{"type": "bash_20250124", "name": "bash"}]}, 400),
    ("/v1/messages", "thinking enabled", {"thinking": {"type": "enabled", "budget_tokens": 1024}}, 400),
    ("/v1/messages", "thinking disabled", {"thinking": {"type": "disabled"}}, 200),
    ("/v1/messages", "service_tier", {"service_tier": "auto"}, 200),
    ("/v1/messages", "no max_tokens", {"max_tokens": None}, 400),
    ("/v1/messages", "empty messages", {"messages": []}, 400),
    ("/v1/messages/count_tokens", "system", {"system": "Be brief."}, 200),
    ("/v1/messages/count_tokens", "tools", {"tools": [ANTHROPIC_TOOL], "tool_choice": {"type": "auto"}}, 200),
    ("/v1/messages/count_tokens", "thinking", {"thinking": {"type": "enabled", "budget_tokens": 1024}}, 400),
    # /v1/responses (OpenAI Responses)
    ("/v1/responses", "input message items", _items({"role": "user", "content": "Hi"}), 200),
    (
        "/v1/responses",
        "input typed message, text parts",
        _items({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}),
        200,
    ),
    (
        "/v1/responses",
        "input developer/system roles",
        _items({"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}),
        200,
    ),  # fmt: skip
    (
        "/v1/responses",
        "input function_call + output",
        _items(
            {"role": "user", "content": "Hi"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"x": 1}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "2"},
        ),
        200,
    ),
    (
        "/v1/responses",
        "input_image",
        _items({"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}),
        400,
    ),  # fmt: skip
    (
        "/v1/responses",
        "input_file",
        _items({"role": "user", "content": [{"type": "input_file", "file_data": "aGk="}]}),
        400,
    ),  # fmt: skip
    ("/v1/responses", "instructions", {"instructions": "Be brief."}, 200),
    ("/v1/responses", "stream", {"stream": True}, 200),
    ("/v1/responses", "temperature", {"temperature": 0.5}, 200),
    ("/v1/responses", "top_p", {"top_p": 0.5}, 200),
    ("/v1/responses", "text format text", {"text": {"format": {"type": "text"}}}, 200),
    ("/v1/responses", "text format json_object", {"text": {"format": {"type": "json_object"}}}, 200),
    (
        "/v1/responses",
        "text format json_schema",
        {"text": {"format": {"type": "json_schema", "name": "a", "schema": SCHEMA, "strict": True}}},
        200,
    ),
    ("/v1/responses", "tools", {"tools": [RESPONSES_TOOL]}, 200),
    ("/v1/responses", "tool_choice none", {"tools": [RESPONSES_TOOL], "tool_choice": "none"}, 200),
    ("/v1/responses", "tool_choice auto", {"tools": [RESPONSES_TOOL], "tool_choice": "auto"}, 200),
    ("/v1/responses", "tool_choice required", {"tools": [RESPONSES_TOOL], "tool_choice": "required"}, 200),
    (
        "/v1/responses",
        "tool_choice function",
        {"tools": [RESPONSES_TOOL], "tool_choice": {"type": "function", "name": "f"}},
        200,
    ),
    (
        "/v1/responses",
        "tool_choice allowed_tools",
        {
            "tools": [RESPONSES_TOOL],
            "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]},
        },
        200,
    ),
    ("/v1/responses", "parallel_tool_calls", {"tools": [RESPONSES_TOOL], "parallel_tool_calls": False}, 200),
    ("/v1/responses", "tools web_search", {"tools": [{"type": "web_search"}]}, 400),
    ("/v1/responses", "tools file_search", {"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, 400),
    ("/v1/responses", "store false", {"store": False}, 200),
    ("/v1/responses", "previous_response_id unknown", {"previous_response_id": "resp_nope"}, 404),
    ("/v1/responses", "metadata", {"metadata": {"a": "b"}}, 200),
    ("/v1/responses", "truncation auto", {"truncation": "auto"}, 200),
    ("/v1/responses", "truncation disabled", {"truncation": "disabled"}, 200),
    ("/v1/responses", "reasoning effort", {"reasoning": {"effort": "low"}}, 400),
    ("/v1/responses", "reasoning null", {"reasoning": {"effort": None}}, 200),
    ("/v1/responses", "background", {"background": True}, 400),
    ("/v1/responses", "top_logprobs", {"top_logprobs": 2}, 400),
    *[
        ("/v1/responses", name, {name: value}, 200)
        for name, value in {
            "include": ["message.output_text.logprobs"],
            "max_tool_calls": 2,
            "user": "u1",
            "prompt_cache_key": "k",
            "safety_identifier": "s1",
            "service_tier": "auto",
        }.items()
    ],
    ("/v1/responses", "max_output_tokens 0", {"max_output_tokens": 0}, 400),
]


def _shape(path: str, body: dict[str, Any]) -> None:
    """The success shape of each endpoint (non-streaming)."""
    if path == "/api/generate":
        assert isinstance(body["response"], str) and body["done"] is True and body["model"]
    elif path == "/api/chat":
        assert body["message"]["role"] == "assistant" and body["done"] is True
    elif path == "/api/embed":
        assert isinstance(body["embeddings"], list) and body["embeddings"]
    elif path == "/api/embeddings":
        assert isinstance(body["embedding"], list) and body["embedding"]
    elif path == "/api/show":
        assert "model_info" in body and "capabilities" in body
    elif path == "/v1/chat/completions":
        assert body["object"] == "chat.completion" and body["choices"]
        for choice in body["choices"]:
            assert choice["message"]["role"] == "assistant" and choice["finish_reason"]
            assert "content" in choice["message"] and "logprobs" in choice
    elif path == "/v1/completions":
        assert body["object"] == "text_completion" and all("text" in c for c in body["choices"])
    elif path == "/v1/messages":
        assert body["type"] == "message" and body["role"] == "assistant" and body["stop_reason"]
        assert set(body["usage"]) == {"input_tokens", "output_tokens"}
    elif path == "/v1/messages/count_tokens":
        assert isinstance(body["input_tokens"], int) and body["input_tokens"] > 0
    elif path == "/v1/responses":
        assert body["object"] == "response" and body["status"] in ("completed", "incomplete") and body["output"]
    else:
        assert body["object"] == "list" and body["data"]


def _events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    frames = raw.decode().split("\n\n")
    assert frames[-1] == ""
    pairs = [f.split("\n") for f in frames[:-1]]
    return [(name.removeprefix("event: "), json.loads(data.removeprefix("data: "))) for name, data in pairs]


def _stream_shape(path: str, raw: bytes) -> None:
    if path.startswith("/api/"):
        lines = raw.split(b"\n")
        assert lines[-1] == b"" and all(lines[:-1])
        objects = [json.loads(line) for line in lines[:-1]]
        assert objects[-1]["done"] is True and all("error" not in o for o in objects)
    elif path == "/v1/messages":
        events = _events(raw)
        assert events[-1][0] == "message_stop" and all(name != "error" for name, _ in events)
    elif path == "/v1/responses":
        events = _events(raw)
        assert events[-1][0] in ("response.completed", "response.incomplete")
        assert all(name != "error" for name, _ in events)
    else:
        frames = raw.decode().split("\n\n")
        assert frames[-2] == "data: [DONE]" and frames[-1] == ""
        assert all("error" not in json.loads(f[6:]) for f in frames[:-2])


@pytest.mark.parametrize(("path", "field", "patch", "status"), ROWS, ids=[f"{r[0]} {r[1]}" for r in ROWS])
def test_field(http: httpx.Client, path: str, field: str, patch: dict[str, Any], status: int) -> None:
    request = BASE[path] | patch
    r = http.post(path, content=json.dumps(request))
    assert r.status_code == status, r.text
    if status != 200 and path.startswith("/v1/messages"):
        body = r.json()
        assert body["type"] == "error" and body["error"]["type"] in ("invalid_request_error", "not_found_error")
    elif status != 200:
        error = r.json()["error"]
        if path.startswith("/v1/"):
            assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        else:
            assert isinstance(error, str) and error
    elif request.get("stream"):
        _stream_shape(path, r.content)
    else:
        _shape(path, r.json())
