"""The embedding routes over a fake worker handle: request mapping, bodies and error rendering per protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support import FakeWorker, app, record, seed
from workers.events import PromptTooLong

TOO_LONG = "the input length exceeds the context length"


class _RayTaskError(PromptTooLong):
    """What Ray re-raises: a subclass of the worker's exception, with a traceback in its text."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"ray::ModelWorker.embed()\nTraceback ...\nworkers.events.PromptTooLong: {cause}")
        self.cause = cause


Client = Callable[[FakeWorker], TestClient]


@pytest.fixture
def client(redis_url: str) -> Iterator[Client]:
    """A TestClient held open (one event loop, so the app's Redis connections stay usable)."""
    seed(redis_url, [record("mini:1", "embed", 256), record("chat:1", "generate", 256)])
    with ExitStack() as stack:
        yield lambda worker: stack.enter_context(
            TestClient(app(redis_url, {"mini--1": worker, "chat--1": FakeWorker()}))
        )


def test_ollama_embed_maps_fields_and_renders_the_body(client: Client) -> None:
    handle = FakeWorker()
    r = client(handle).post("/api/embed", json={"model": "mini:1", "input": ["a", "b"], "truncate": False})
    assert r.status_code == 200 and "worker;dur=0.001" in r.headers["server-timing"]
    body = r.json()
    assert body["model"] == "mini:1" and body["embeddings"] == [[0.6, 0.8], [0.6, 0.8]]
    assert body["prompt_eval_count"] == 6 and body["total_duration"] > body["load_duration"] > 0
    (req,) = handle.embeds
    assert req.inputs == ("a", "b") and not req.truncate and req.normalize and req.dimensions is None


def test_legacy_embeddings_ask_for_raw_vectors(client: Client) -> None:
    handle = FakeWorker()
    r = client(handle).post("/api/embeddings", json={"model": "mini:1", "prompt": "a"})
    assert r.json() == {"embedding": [0.6, 0.8]}
    assert handle.embeds[0].normalize is False


def test_openai_embeddings_never_truncate_and_encode_base64(client: Client) -> None:
    handle = FakeWorker()
    body = {"model": "mini:1", "input": [[5, 6]], "encoding_format": "base64", "dimensions": 2}
    r = client(handle).post("/v1/embeddings", json=body)
    assert r.json()["data"] == [{"object": "embedding", "index": 0, "embedding": "mpkZP83MTD8="}]
    (req,) = handle.embeds
    assert req.inputs == ((5, 6),) and not req.truncate and req.dimensions == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        ("/api/embed", {"model": "chat:1", "input": "x"}, 400, {"error": '"chat:1" does not support embeddings'}),
        ("/api/embeddings", {"model": "chat:1", "prompt": "x"}, 400, {"error": '"chat:1" does not support embeddings'}),
        ("/api/embed", {"model": "nope", "input": "x"}, 404, {"error": "model 'nope' not found"}),
        ("/api/embed", {"model": "mini:1", "input": "x"}, 400, {"error": TOO_LONG}),
        (
            "/v1/embeddings",
            {"model": "chat:1", "input": "x"},
            400,
            {
                "error": {
                    "message": '"chat:1" does not support embeddings',
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": None,
                }
            },
        ),
        (
            "/v1/embeddings",
            {"model": "mini:1", "input": "x"},
            400,
            {
                "error": {
                    "message": TOO_LONG,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "context_length_exceeded",
                }
            },
        ),
    ],
)
def test_errors_render_per_protocol(
    path: str, body: dict[str, Any], status: int, expected: dict[str, Any], client: Client
) -> None:
    handle = FakeWorker(embed_error=_RayTaskError(PromptTooLong(TOO_LONG)))
    r = client(handle).post(path, json=body)
    assert r.status_code == status and r.json() == expected


def test_empty_ollama_input_does_not_reach_the_worker(client: Client) -> None:
    handle = FakeWorker()
    http = client(handle)
    assert http.post("/api/embed", json={"model": "mini:1", "input": []}).json() == {
        "model": "mini:1",
        "embeddings": [],
    }
    assert http.post("/api/embeddings", json={"model": "mini:1"}).json() == {"embedding": []}
    assert handle.embeds == []
