"""The Anthropic Messages and OpenAI Responses routes over a fake worker: request mapping onto the
engine-neutral request, bodies, stored conversations and each protocol's error shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support import FakeWorker, app, record, seed, serving
from workers.events import ChatPrompt, Delta, Final

Client = Callable[[FakeWorker], TestClient]
ANSWER = [[Delta("Hello", 1)], [Delta(" there", 1), Final("stop", 9, 2, 1, 1, 1)]]
TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {"x": {"type": "integer"}}}}
FUNCTION = {"type": "function", "name": "f", "parameters": TOOL["input_schema"]}


def _client(redis_url: str, worker: FakeWorker, stack: ExitStack) -> TestClient:
    """An app whose worker double streams over a started event inbox, as a router replica's does."""
    return serving(stack.enter_context(TestClient(app(redis_url, {"chat--1": worker}))))


@pytest.fixture
def client(redis_url: str) -> Iterator[Client]:
    seed(redis_url, [record("chat:1", "generate", 256)])
    with ExitStack() as stack:
        yield lambda worker: _client(redis_url, worker, stack)


def _prompt(worker: FakeWorker, i: int = 0) -> ChatPrompt:
    prompt = worker.requests[i].prompt
    assert isinstance(prompt, ChatPrompt)
    return prompt


def test_messages_map_blocks_onto_template_messages(client: Client) -> None:
    worker = FakeWorker(ANSWER)
    body = {
        "model": "chat:1",
        "max_tokens": 5,
        "system": [{"type": "text", "text": "Be brief."}],
        "stop_sequences": ["\n"],
        "temperature": 0.5,
        "top_k": 3,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "2"}]},
        ],
        "tools": [TOOL],
    }
    r = client(worker).post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["content"] == [{"type": "text", "text": "Hello there"}] and r.json()["stop_reason"] == "end_turn"
    assert r.json()["usage"] == {"input_tokens": 9, "output_tokens": 2}
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    assert _prompt(worker).messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "name": "f", "content": "2"},
    )
    sampling = worker.requests[0].sampling
    assert (sampling.max_tokens, sampling.stop, sampling.temperature, sampling.top_k) == (5, ("\n",), 0.5, 3)
    assert sampling.json_schema is None  # auto: the template, not guided decoding


@pytest.mark.parametrize(
    ("choice", "schema"),
    [({"type": "tool", "name": "f"}, TOOL["input_schema"]), ({"type": "any"}, "array"), ({"type": "none"}, None)],
    ids=["tool", "any", "none"],
)
def test_tool_choice_maps_onto_the_shared_plan(client: Client, choice: dict[str, Any], schema: Any) -> None:
    worker = FakeWorker([[Delta('{"x": 1}', 3), Final("stop", 9, 3, 1, 1, 1)]])
    body = {"model": "chat:1", "max_tokens": 9, "messages": [{"role": "user", "content": "Hi"}], "tools": [TOOL]}
    r = client(worker).post("/v1/messages", json=body | {"tool_choice": choice})
    assert r.status_code == 200, r.text
    guided = worker.requests[0].sampling.json_schema
    assert (guided or {}).get("type") == "array" if schema == "array" else guided == schema
    if choice["type"] == "tool":
        assert r.json()["stop_reason"] == "tool_use"
        [use] = r.json()["content"]
        assert use["type"] == "tool_use" and use["input"] == {"x": 1} and use["id"].startswith("toolu_")
    if choice["type"] == "none":
        assert _prompt(worker).tools == ()


def test_messages_stream_is_anthropics_event_sequence(client: Client) -> None:
    body = {"model": "chat:1", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    r = client(FakeWorker(ANSWER)).post("/v1/messages", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [frame.split("\n")[0] for frame in r.text.split("\n\n")[:-1]]
    assert names == [
        "event: message_start",
        "event: ping",
        "event: content_block_start",
        "event: content_block_delta",
        "event: content_block_delta",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]


def test_count_tokens_asks_the_worker(client: Client) -> None:
    worker = FakeWorker()
    body = {"model": "chat:1", "system": "Be brief.", "messages": [{"role": "user", "content": "Hi there"}]}
    r = client(worker).post("/v1/messages/count_tokens", json=body)
    assert r.status_code == 200 and r.json() == {"input_tokens": 4}  # FakeWorker counts words
    assert _prompt(worker).messages[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        ("/v1/messages", {"model": "nope", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, 404,
         "not_found_error"),
        ("/v1/messages", {"model": "chat:1", "messages": [{"role": "user", "content": "x"}]}, 400,
         "invalid_request_error"),
        ("/v1/messages/count_tokens", {"model": "chat:1", "messages": [], "max_tokens": 1}, 400,
         "invalid_request_error"),
    ],
    ids=["unknown model", "no max_tokens", "no messages"],
)  # fmt: skip
def test_anthropic_errors_have_anthropics_shape(
    client: Client, path: str, body: dict[str, Any], status: int, kind: str
) -> None:
    r = client(FakeWorker()).post(path, json=body)
    assert r.status_code == status
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == kind and r.json()["error"]["message"]
    assert client(FakeWorker()).get("/v1/messages").json()["type"] == "error"  # 405, also Anthropic's shape


def test_a_stored_response_continues_on_another_app(client: Client, redis_url: str) -> None:
    first = client(FakeWorker(ANSWER)).post(
        "/v1/responses", json={"model": "chat:1", "input": "Hi", "instructions": "Be brief.", "tools": [FUNCTION]}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "completed" and body["output"][0]["content"][0]["text"] == "Hello there"
    # A second app (another router replica) on the same Redis answers the follow-up.
    worker = FakeWorker(ANSWER)
    with ExitStack() as stack:
        other = _client(redis_url, worker, stack)
        assert other.get(f"/v1/responses/{body['id']}").json() == body
        items = [
            {"type": "function_call_output", "call_id": "call_9", "output": "2"},
            {"role": "user", "content": "Go"},
        ]
        r = other.post("/v1/responses", json={"model": "chat:1", "input": items, "previous_response_id": body["id"]})
        assert r.status_code == 200 and r.json()["previous_response_id"] == body["id"]
        assert _prompt(worker).messages == (
            {"role": "user", "content": "Hi"},  # instructions do not carry over
            {"role": "assistant", "content": "Hello there"},
            {"role": "tool", "tool_call_id": "call_9", "name": "", "content": "2"},
            {"role": "user", "content": "Go"},
        )
        assert other.delete(f"/v1/responses/{body['id']}").json() == {
            "id": body["id"],
            "object": "response.deleted",
            "deleted": True,
        }
        gone = other.get(f"/v1/responses/{body['id']}")
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "invalid_request_error"


def test_store_false_keeps_nothing(client: Client) -> None:
    c = client(FakeWorker(ANSWER))
    r = c.post("/v1/responses", json={"model": "chat:1", "input": "Hi", "store": False})
    assert r.status_code == 200 and c.get(f"/v1/responses/{r.json()['id']}").status_code == 404


def test_a_streamed_response_is_stored_with_its_output(client: Client) -> None:
    c = client(FakeWorker(ANSWER))
    r = c.post("/v1/responses", json={"model": "chat:1", "input": "Hi", "stream": True, "max_output_tokens": 5})
    frames = [f.split("\n") for f in r.text.split("\n\n")[:-1]]
    last = json.loads(frames[-1][1][len("data: ") :])
    assert frames[-1][0] == "event: response.completed" and last["response"]["output"]
    assert c.get(f"/v1/responses/{last['response']['id']}").json() == last["response"]


def test_previous_response_id_unknown_is_a_404(client: Client) -> None:
    r = client(FakeWorker()).post("/v1/responses", json={"model": "chat:1", "input": "Hi", "previous_response_id": "x"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "previous_response_id"
