from __future__ import annotations

import json

import pytest

from router import ids
from router.api import frames
from router.api.ollama import encode as ollama_encode
from router.api.openai import encode as openai_encode
from router.convert.tools import ToolCall
from router.errors import BadRequest, ContextLengthExceeded, EngineError, ModelNotFound, Overloaded
from workers.events import TokenLogprob

T = "2024-07-22T20:47:51.147561Z"
M = ollama_encode.OllamaMetrics(10, 2, 26, 130, 259, 4232, 2)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_721_681_271_147_561_000, "2024-07-22T20:47:51.147561Z"),
        (1_721_681_271_000_000_001, "2024-07-22T20:47:51.000000001Z"),
        (1_721_681_271_100_000_000, "2024-07-22T20:47:51.1Z"),
    ],
)
def test_rfc3339_nano(ns: int, text: str) -> None:
    assert frames.rfc3339_nano(ns) == text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            ollama_encode.generate_chunk("llama3", T, "The"),
            b'{"model":"llama3","created_at":"' + T.encode() + b'","response":"The","done":false}\n',
        ),
        (
            ollama_encode.generate_chunk("m", T, 'caf\u00e9 \u2028 \U0001f600 "q"\n'),
            b'{"model":"m","created_at":"'
            + T.encode()
            + b'","response":"caf\\u00e9 \\u2028 \\ud83d\\ude00 \\"q\\"\\n","done":false}\n',
        ),
        (
            ollama_encode.generate_final("m", T, "", "stop", M, [1, 2]),
            b'{"model":"m","created_at":"' + T.encode() + b'","response":"","done":true,"done_reason":"stop",'
            b'"context":[1,2],"total_duration":10,"load_duration":2,"prompt_eval_count":26,'
            b'"prompt_eval_duration":130,"eval_count":259,"eval_duration":4232,"router_duration":2}\n',
        ),
        (
            ollama_encode.generate_final(
                "m", T, "all", "length", ollama_encode.OllamaMetrics(5, 0, 3, 0, 0, 0, 0), None
            ),
            b'{"model":"m","created_at":"' + T.encode() + b'","response":"all","done":true,"done_reason":"length",'
            b'"total_duration":5,"prompt_eval_count":3}\n',
        ),
        (
            ollama_encode.chat_chunk("m", T, "Hi"),
            b'{"model":"m","created_at":"' + T.encode() + b'","message":{"role":"assistant","content":"Hi"},'
            b'"done":false}\n',
        ),
        (
            ollama_encode.chat_final("m", T, "", "stop", ollama_encode.OllamaMetrics(9, 1, 2, 3, 4, 5, 1)),
            b'{"model":"m","created_at":"' + T.encode() + b'","message":{"role":"assistant","content":""},'
            b'"done":true,"done_reason":"stop","total_duration":9,"load_duration":1,"prompt_eval_count":2,'
            b'"prompt_eval_duration":3,"eval_count":4,"eval_duration":5,"router_duration":1}\n',
        ),
        (ollama_encode.error(ModelNotFound("x")), b'{"error":"model \'x\' not found"}\n'),
    ],
)
def test_ollama_lines(line: bytes, expected: bytes) -> None:
    assert line == expected
    assert line.count(b"\n") == 1  # one object per line, never a blank line


def test_ollama_line_survives_splitlines() -> None:
    # ollama-python uses str.splitlines(), which also splits on U+2028/U+2029/U+0085.
    line = ollama_encode.chat_chunk("m", T, "a\u2028b\u2029c\x85d").decode()
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"]["content"] == "a\u2028b\u2029c\x85d"


def test_chat_sse_sequence() -> None:
    c = openai_encode.ChatChunks("chatcmpl-1", 7, "m", include_usage=False)
    head = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m",'
    head += b'"system_fingerprint":"fp_herd","choices":[{"index":0,"delta":'
    assert c.role() == head + b'{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'
    assert c.content("Hi") == head + b'{"content":"Hi"},"logprobs":null,"finish_reason":null}]}\n\n'
    assert c.finish("length", 1_234_567) == (
        head + b'{},"logprobs":null,"finish_reason":"length"}],"router_duration_ms":1.235}\n\n'
    )
    assert openai_encode.DONE == b"data: [DONE]\n\n"


def test_chat_sse_with_usage() -> None:
    c = openai_encode.ChatChunks("id", 1, "m", include_usage=True)
    assert json.loads(c.content("x")[6:])["usage"] is None
    assert c.usage(9, 12) == (
        b'data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_herd",'
        b'"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}\n\n'
    )


def test_completion_sse_chunks() -> None:
    c = openai_encode.CompletionChunks("cmpl-1", 3, "m", include_usage=False)
    assert c.text("ab") == (
        b'data: {"id":"cmpl-1","object":"text_completion","created":3,"model":"m","system_fingerprint":"fp_herd",'
        b'"choices":[{"index":0,"text":"ab","logprobs":null,"finish_reason":null}]}\n\n'
    )
    assert json.loads(c.finish("stop", 0)[6:])["choices"] == [
        {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
    ]


def test_server_timing_header() -> None:
    assert frames.server_timing(412_000, 1_234_567_890) == {"Server-Timing": "router;dur=0.412, worker;dur=1234.568"}


def test_non_streaming_bodies() -> None:
    body = openai_encode.chat_completion(
        "chatcmpl-1", 5, "m", [openai_encode.chat_choice(0, "Hello", [], "stop")], 19, 10
    )
    assert body == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "system_fingerprint": "fp_herd",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    }
    text = openai_encode.text_completion("cmpl-1", 5, "m", [openai_encode.completion_choice(0, "x", "length")], 1, 2)
    assert text["object"] == "text_completion" and text["choices"][0]["text"] == "x"


CALL = ToolCall("call_abc", "get_weather", '{"city": "Tokyo"}')
LP = TokenLogprob(" caf\u00e9", -0.25, (TokenLogprob(" caf\u00e9", -0.25), TokenLogprob(" tea", -1.5)))


def test_chat_choice_with_tool_calls() -> None:
    # A call and no text: content is null, as OpenAI sends it; text next to a call is kept.
    assert openai_encode.chat_choice(0, "", [CALL], "tool_calls")["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Tokyo"}'},
            }
        ],
    }
    assert openai_encode.chat_choice(1, "Let me check.", [CALL], "tool_calls")["message"]["content"] == "Let me check."


def test_tool_call_deltas_carry_index_and_id_only_first() -> None:
    c = openai_encode.ChatChunks("id", 1, "m", include_usage=False)
    start = json.loads(c.tool_call_start(0, "call_abc", "get_weather", index=2)[6:])["choices"][0]
    more = json.loads(c.tool_call_arguments(0, '{"city"', index=2)[6:])["choices"][0]
    assert start["index"] == 2 and start["finish_reason"] is None
    assert start["delta"] == {
        "tool_calls": [
            {"index": 0, "id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        ]
    }
    assert more["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}
    assert json.loads(c.finish("tool_calls", 0, index=2)[6:])["choices"][0]["finish_reason"] == "tool_calls"


def test_logprob_shapes() -> None:
    token = {"token": " caf\u00e9", "logprob": -0.25, "bytes": [32, 99, 97, 102, 195, 169]}
    assert openai_encode.chat_logprobs([LP]) == {
        "content": [token | {"top_logprobs": [token, {"token": " tea", "logprob": -1.5, "bytes": [32, 116, 101, 97]}]}],
        "refusal": None,
    }
    assert json.loads(openai_encode.ChatChunks("i", 1, "m", False).content("x", 0, [LP])[6:])["choices"][0][
        "logprobs"
    ] == (openai_encode.chat_logprobs([LP]))
    two = [LP, TokenLogprob("!", -0.5)]
    assert openai_encode.completion_logprobs(two, 3) == {
        "tokens": [" caf\u00e9", "!"],
        "token_logprobs": [-0.25, -0.5],
        "top_logprobs": [{" caf\u00e9": -0.25, " tea": -1.5}, {}],
        "text_offset": [3, 8],
    }


def test_ollama_tool_calls_and_logprobs() -> None:
    line = json.loads(ollama_encode.chat_chunk("m", T, "", [CALL], [LP], top=1))
    assert line["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_abc", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}}
        ],
    }
    assert line["logprobs"] == [
        {
            "token": " caf\u00e9",
            "logprob": -0.25,
            "bytes": [32, 99, 97, 102, 195, 169],
            "top_logprobs": [{"token": " caf\u00e9", "logprob": -0.25, "bytes": [32, 99, 97, 102, 195, 169]}],
        }
    ]
    # Without top_logprobs the key is absent; without logprobs the field is absent.
    assert "top_logprobs" not in json.loads(ollama_encode.generate_chunk("m", T, "x", [LP]))["logprobs"][0]
    assert "logprobs" not in json.loads(ollama_encode.generate_chunk("m", T, "x"))


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (
            ModelNotFound("gpt"),
            {
                "message": "The model `gpt` does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            },
        ),
        (
            BadRequest("top_p must be between 0 and 1", param="top_p"),
            {
                "message": "top_p must be between 0 and 1",
                "type": "invalid_request_error",
                "param": "top_p",
                "code": None,
            },
        ),
        (
            ContextLengthExceeded("too long"),
            {"message": "too long", "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"},
        ),
        (EngineError("boom"), {"message": "boom", "type": "api_error", "param": None, "code": "server_error"}),
        (Overloaded("busy"), {"message": "busy", "type": "api_error", "param": None, "code": "overloaded"}),
    ],
)
def test_openai_errors(err: BadRequest, expected: dict[str, object]) -> None:
    assert openai_encode.error(err) == {"error": expected}
    assert openai_encode.error_frame(err) == b"data: " + frames.dumps({"error": expected}) + b"\n\n"


def test_ids_are_unique_and_prefixed() -> None:
    made = {ids.openai_id("chatcmpl-") for _ in range(100)}
    assert len(made) == 100 and all(i.startswith("chatcmpl-") and len(i) == 33 for i in made)
