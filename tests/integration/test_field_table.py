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
}

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
    else:
        assert body["object"] == "list" and body["data"]


def _stream_shape(path: str, raw: bytes) -> None:
    if path.startswith("/api/"):
        lines = raw.split(b"\n")
        assert lines[-1] == b"" and all(lines[:-1])
        objects = [json.loads(line) for line in lines[:-1]]
        assert objects[-1]["done"] is True and all("error" not in o for o in objects)
    else:
        frames = raw.decode().split("\n\n")
        assert frames[-2] == "data: [DONE]" and frames[-1] == ""
        assert all("error" not in json.loads(f[6:]) for f in frames[:-2])


@pytest.mark.parametrize(("path", "field", "patch", "status"), ROWS, ids=[f"{r[0]} {r[1]}" for r in ROWS])
def test_field(http: httpx.Client, path: str, field: str, patch: dict[str, Any], status: int) -> None:
    request = BASE[path] | patch
    r = http.post(path, content=json.dumps(request))
    assert r.status_code == status, r.text
    if status != 200:
        error = r.json()["error"]
        if path.startswith("/v1/"):
            assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        else:
            assert isinstance(error, str) and error
    elif request.get("stream"):
        _stream_shape(path, r.content)
    else:
        _shape(path, r.json())
