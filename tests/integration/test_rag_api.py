"""LlamaEdge's RAG API against the real stack: all-MiniLM-L6-v2 on vLLM, Qdrant local mode in the
vector actor, SmolLM2 for RAG chat; plus rerank and score on the embedding model."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.integration.conftest import MODEL, start_herd

pytestmark = pytest.mark.integration

EMBED = "all-minilm"
THRESHOLD = 0.4  # LlamaEdge's default, which Herd keeps
# Unrelated paragraphs, each 60-90 tokens: one chunk each at the default capacity of 100.
LIGHTHOUSE = (
    "The Skerryvore lighthouse stands on a reef eleven miles south-west of the island of Tiree in Scotland. "
    "Alan Stevenson designed the granite tower, which was finished in 1844 after six years of work. "
    "At 48 metres it is the tallest lighthouse in Scotland, and its light can be seen from eighteen nautical "
    "miles away."
)
SOURDOUGH = (
    "A sourdough starter is a living culture of wild yeast and lactic acid bacteria kept in flour and water. "
    "Bakers feed it every day, discarding part of it and adding fresh flour, until it doubles in a few hours. "
    "The acids the bacteria make give the bread its sour taste and help it keep for longer."
)
TCP = (
    "TCP opens a connection with a three-way handshake: the client sends SYN, the server answers SYN-ACK, "
    "and the client replies with ACK. Both sides then number every byte they send, so lost segments are "
    "sent again and data arrives in order even when packets take different routes."
)
VOLCANO = (
    "Mount Etna on the east coast of Sicily is one of the most active volcanoes in the world. Its eruptions "
    "have been recorded for over two thousand seven hundred years, and the lava flows of 1669 reached the "
    "walls of Catania. Farmers still grow vines and pistachios in the fertile soil on its lower slopes."
)
QUESTION = "Who designed the Skerryvore lighthouse and how tall is it?"
DOCS = {"coast.txt": f"{LIGHTHOUSE}\n\n{VOLCANO}\n", "kitchen.md": f"# Bread\n\n{SOURDOUGH}\n", "net.txt": TCP}


def collection_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def ingest(http: httpx.Client, collection: str, files: dict[str, str] = DOCS) -> list[dict[str, Any]]:
    answers = []
    for name, text in files.items():
        r = http.post("/v1/create/rag", files={"file": (name, text.encode())}, data={"collection": collection})
        assert r.status_code == 200, r.text
        answers.append(r.json())
    return answers


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": question}]


def retrieve(http: httpx.Client, collection: str, model: str = EMBED, **extra: Any) -> httpx.Response:
    return http.post("/v1/retrieve", json={"messages": ask(QUESTION), "model": model, "collection": collection} | extra)


def _replicas_that_answered_retrieve(base: str) -> set[str]:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    pattern = r'herd_requests_total\{[^}]*endpoint="/v1/retrieve"[^}]*replica="([^"]+)"[^}]*\} ([0-9.]+)'
    return {replica for replica, value in re.findall(pattern, text) if float(value) > 0}


def _first_points(base: str, collection: str, connections: int = 24) -> list[str]:
    """Each retrieval on a new connection, so the kernel picks a router replica each time."""
    firsts = []
    for _ in range(connections):
        with httpx.Client(base_url=base, timeout=60) as http:
            r = retrieve(http, collection)
            assert r.status_code == 200, r.text
            firsts.append(r.json()["points"][0]["source"])
    return firsts


# First in the file, so it runs before the session's Herd starts: one stack at a time.
def test_two_routers_share_collections_that_survive_a_restart(tmp_path: Path) -> None:
    with start_herd(tmp_path, env={"HERD_ROUTER_REPLICAS": "2"}) as base:
        with httpx.Client(base_url=base, timeout=120) as http:
            ingest(http, "shared")
        assert _first_points(base, "shared") == [LIGHTHOUSE] * 24
        deadline = time.monotonic() + 20  # each replica reports its counters to the hub every 5 s
        while len(replicas := _replicas_that_answered_retrieve(base)) < 2 and time.monotonic() < deadline:
            time.sleep(1)
        assert len(replicas) == 2, replicas

    with start_herd(tmp_path) as base:
        with httpx.Client(base_url=base, timeout=120) as http:
            listed = {c["name"]: c["points"] for c in http.get("/herd/collections").json()["collections"]}
            assert listed == {"shared": 4}
            assert retrieve(http, "shared").json()["points"][0]["source"] == LIGHTHOUSE


@pytest.fixture(scope="module")
def docs(http: httpx.Client) -> str:
    collection = collection_name()
    ingest(http, collection)
    return collection


def test_create_rag_answers_the_chunks_embeddings_and_is_idempotent(http: httpx.Client) -> None:
    collection = collection_name()
    coast, kitchen, net = ingest(http, collection)
    assert coast["object"] == "list" and coast["model"] == "all-minilm:l6-v2"
    assert [d["index"] for d in coast["data"]] == [0, 1] and all(len(d["embedding"]) == 384 for d in coast["data"])
    assert coast["usage"]["prompt_tokens"] > 120 and coast["file"]["filename"] == "coast.txt"
    assert (coast["chunks"], kitchen["chunks"], net["chunks"]) == (2, 1, 1)
    assert net["points"] == 4 and net["collection"] == collection
    again = ingest(http, collection, {"coast.txt": DOCS["coast.txt"]})[0]
    assert again["points"] == 4  # the same file replaces its own points
    listed = {c["name"]: c for c in http.get("/herd/collections").json()["collections"]}
    assert listed[collection] == {"name": collection, "embedding_model": "all-minilm:l6-v2", "dimensions": 384,
                                  "points": 4, "models": []}  # fmt: skip


@pytest.mark.parametrize("model", [EMBED, "all-minilm:l6-v2", MODEL], ids=["embedding", "full-name", "chat-model"])
def test_retrieve_ranks_the_paragraph_first_above_the_threshold(http: httpx.Client, docs: str, model: str) -> None:
    r = retrieve(http, docs, model)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["limit"] == 5 and body["score_threshold"] == THRESHOLD
    points = body["points"]
    assert points[0]["source"] == LIGHTHOUSE and points[0]["filename"] == "coast.txt"
    scores = [p["score"] for p in points]
    assert scores == sorted(scores, reverse=True) and all(s >= THRESHOLD for s in scores)


def test_retrieve_limit_and_threshold(http: httpx.Client, docs: str) -> None:
    everything = retrieve(http, docs, score_threshold=-1.0).json()["points"]
    assert len(everything) == 4 and everything[0]["source"] == LIGHTHOUSE
    assert everything[-1]["score"] < THRESHOLD  # so the default threshold did filter
    assert len(retrieve(http, docs, limit=2, score_threshold=-1.0).json()["points"]) == 2
    strict = retrieve(http, docs, score_threshold=0.99).json()
    assert strict["points"] == [] and strict["score_threshold"] == 0.99


def test_retrieve_errors(http: httpx.Client, docs: str) -> None:
    assert http.post("/api/copy", json={"source": EMBED, "destination": "other-embed"}).status_code == 200
    other = retrieve(http, docs, "other-embed")
    assert other.status_code == 400 and "holds vectors of 'all-minilm:l6-v2'" in other.json()["error"]["message"]
    assert retrieve(http, collection_name()).status_code == 404
    assert retrieve(http, docs, "no-such-model").status_code == 404
    assert retrieve(http, "bad/name").status_code == 400
    no_user = http.post("/v1/retrieve", json={"messages": [{"role": "system", "content": "x"}], "model": EMBED,
                                              "collection": docs})  # fmt: skip
    assert no_user.status_code == 400


def test_files_then_chunks(http: httpx.Client) -> None:
    up = http.post("/v1/files", files={"file": ("coast.txt", DOCS["coast.txt"].encode())})
    assert up.status_code == 200, up.text
    file = up.json()
    assert set(file) == {"id", "bytes", "created_at", "filename", "object", "purpose"}
    assert file["id"].startswith("file_") and file["bytes"] == len(DOCS["coast.txt"].encode())
    chunks = http.post("/v1/chunks", json={"id": file["id"], "filename": "coast.txt"})
    assert chunks.status_code == 200, chunks.text
    assert chunks.json() == {"id": file["id"], "filename": "coast.txt", "chunks": [LIGHTHOUSE, VOLCANO]}
    small = http.post("/v1/chunks", json={"id": file["id"], "filename": "coast.txt", "chunk_capacity": 30}).json()
    assert len(small["chunks"]) > 4
    assert http.post("/v1/chunks", json={"id": file["id"], "filename": "other.txt"}).status_code == 400
    assert http.post("/v1/chunks", json={"id": "file_nope", "filename": "coast.txt"}).status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("empty.txt", b"", 400),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00", 400),
        ("latin1.txt", "caf\xe9".encode("latin-1"), 400),
        ("huge.txt", b"a" * (10 * 2**20 + 1), 413),
    ],
    ids=["zero-bytes", "not-text", "not-utf8", "over-the-limit"],
)
@pytest.mark.parametrize("endpoint", ["/v1/files", "/v1/create/rag"])
def test_uploads_refused(http: httpx.Client, endpoint: str, name: str, content: bytes, status: int) -> None:
    r = http.post(endpoint, files={"file": (name, content)})
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_openai_rag_chat_includes_the_passage_and_names_its_sources(
    http: httpx.Client, docs: str, tokenizer: Any
) -> None:
    body = {"model": MODEL, "messages": ask(QUESTION), "max_tokens": 4, "temperature": 0}
    plain = http.post("/v1/chat/completions", json=body).json()
    rag = http.post("/v1/chat/completions", json=body | {"collection": docs})
    assert rag.status_code == 200, rag.text
    added = rag.json()["usage"]["prompt_tokens"] - plain["usage"]["prompt_tokens"]
    assert added >= len(tokenizer.encode(LIGHTHOUSE, add_special_tokens=False))
    sources = rag.json()["sources"]
    assert sources[0]["source"] == LIGHTHOUSE and sources[0]["filename"] == "coast.txt"
    header = json.loads(rag.headers["x-herd-sources"])
    assert header[0] == {"filename": "coast.txt", "index": 0, "score": sources[0]["score"]}
    assert "sources" not in plain and "x-herd-sources" not in http.post("/v1/chat/completions", json=body).headers


def test_openai_client_rag_chat_streams_with_the_sources_header(herd: str, docs: str) -> None:
    client = openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=ask(QUESTION),
        max_tokens=4,
        stream=True,
        extra_body={"collection": docs},  # type: ignore[arg-type]
    )
    assert json.loads(raw.headers["x-herd-sources"])[0]["filename"] == "coast.txt"
    chunks = list(raw.parse())
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("policy", ["system-message", "last-user-message"])
def test_ollama_rag_chat_includes_the_passage(herd: str, docs: str, tokenizer: Any, policy: str) -> None:
    body = {"model": MODEL, "messages": ask(QUESTION), "stream": False, "options": {"num_predict": 2}}
    with httpx.Client(base_url=herd, timeout=120) as http:
        plain = http.post("/api/chat", json=body).json()
        rag = http.post("/api/chat", json=body | {"collection": docs, "rag_policy": policy})
    assert rag.status_code == 200, rag.text
    added = rag.json()["prompt_eval_count"] - plain["prompt_eval_count"]
    assert added >= len(tokenizer.encode(LIGHTHOUSE, add_special_tokens=False))
    assert rag.json()["sources"][0]["source"] == LIGHTHOUSE
    # The ollama client ignores the extra field it does not know, and still gets its answer.
    answer = ollama.Client(host=herd).chat(model=MODEL, messages=ask(QUESTION), options={"num_predict": 2})
    assert answer.done


def test_rerank_and_score_on_the_embedding_model(http: httpx.Client) -> None:
    documents = [SOURDOUGH, LIGHTHOUSE, TCP, VOLCANO]
    r = http.post("/v1/rerank", json={"model": EMBED, "query": QUESTION, "documents": documents, "top_n": 2})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["index"] for x in results][0] == 1 and len(results) == 2
    assert results[0]["document"] == {"text": LIGHTHOUSE}
    assert results[0]["relevance_score"] > results[1]["relevance_score"]
    assert r.json()["usage"]["total_tokens"] > 0
    s = http.post("/v1/score", json={"model": EMBED, "text_1": QUESTION, "text_2": documents})
    assert s.status_code == 200, s.text
    scores = [d["score"] for d in s.json()["data"]]
    assert max(range(4), key=lambda i: scores[i]) == 1
    assert scores[1] == pytest.approx(results[0]["relevance_score"], abs=1e-5)
    same = http.post("/v1/score", json={"model": EMBED, "text_1": [TCP], "text_2": [TCP]}).json()
    assert same["data"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert http.post("/v1/score", json={"model": EMBED, "text_1": ["a", "b"], "text_2": ["c"]}).status_code == 400
    assert http.post("/v1/rerank", json={"model": MODEL, "query": "q", "documents": ["d"]}).status_code == 400


def test_info_and_post_models(http: httpx.Client) -> None:
    listed = http.post("/v1/models")
    assert listed.status_code == 200 and listed.json() == http.get("/v1/models").json()
    info = http.post("/v1/info").json()
    kinds = {m["name"]: (m["type"], m["ctx_size"]) for m in info["models"]}
    assert kinds[MODEL] == ("chat", 2048) and kinds["all-minilm:l6-v2"] == ("embedding", 256)
    qdrant = info["qdrant_config"]
    assert qdrant["collection_name"] == "default" and qdrant["limit"] == 5 and qdrant["score_threshold"] == THRESHOLD


def test_default_collection_and_delete(http: httpx.Client) -> None:
    r = http.post("/v1/create/rag", files={"file": ("net.txt", TCP.encode())})
    assert r.status_code == 200 and r.json()["collection"] == "default"
    found = http.post("/v1/retrieve", json={"messages": ask("How does the TCP handshake work?"), "model": MODEL})
    assert found.json()["points"][0]["source"] == TCP
    assert http.delete("/herd/collections/default").status_code == 200
    assert http.delete("/herd/collections/default").status_code == 404
    assert "default" not in {c["name"] for c in http.get("/herd/collections").json()["collections"]}


def test_metrics_count_retrievals_and_collection_sizes(http: httpx.Client, docs: str) -> None:
    retrieve(http, docs)
    text = http.get("/metrics").text
    assert f'herd_rag_retrievals_total{{collection="{docs}"' in text
    assert f'herd_rag_retrieve_seconds_count{{collection="{docs}"' in text
    assert f'herd_rag_collection_points{{collection="{docs}"' in text


def test_herd_collections_command(herd: str, docs: str) -> None:
    herd_bin = str(Path(sys.executable).with_name("herd"))
    listed = subprocess.run([herd_bin, "collections", "list", "--host", herd], capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(docs + " "))
    assert row == [docs, "all-minilm:l6-v2", "384", "4"]
    gone = collection_name()
    with httpx.Client(base_url=herd, timeout=120) as http:
        ingest(http, gone, {"net.txt": TCP})
    deleted = subprocess.run([herd_bin, "collections", "delete", gone, "--host", herd], capture_output=True, text=True)
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted '{gone}'"
    again = subprocess.run([herd_bin, "collections", "delete", gone, "--host", herd], capture_output=True, text=True)
    assert again.returncode == 1 and f"collection '{gone}' not found" in again.stderr


def test_a_model_bound_to_a_collection_chats_with_rag_by_name_alone(http: httpx.Client, docs: str) -> None:
    assert http.post("/api/copy", json={"source": MODEL, "destination": "lighthouse-bot"}).status_code == 200
    bound = http.put("/herd/bindings/lighthouse-bot", json={"collection": docs})
    assert bound.status_code == 200 and bound.json() == {"model": "lighthouse-bot:latest", "collection": docs}
    listed = {c["name"]: c for c in http.get("/herd/collections").json()["collections"]}
    assert listed[docs]["models"] == ["lighthouse-bot:latest"]
    body = {"model": "lighthouse-bot", "messages": ask(QUESTION), "stream": False, "options": {"num_predict": 2}}
    answer = http.post("/api/chat", json=body).json()
    assert answer["sources"][0]["source"] == LIGHTHOUSE
    openai_answer = http.post("/v1/chat/completions", json={"model": "lighthouse-bot", "messages": ask(QUESTION),
                                                            "max_tokens": 2}).json()  # fmt: skip
    assert openai_answer["sources"][0]["source"] == LIGHTHOUSE
    assert http.put("/herd/bindings/all-minilm", json={"collection": docs}).status_code == 400
    assert http.put("/herd/bindings/lighthouse-bot", json={"collection": collection_name()}).status_code == 404
    assert http.delete("/herd/bindings/lighthouse-bot").status_code == 200
    assert "sources" not in http.post("/api/chat", json=body).json()
    assert http.delete("/herd/bindings/lighthouse-bot").status_code == 404
