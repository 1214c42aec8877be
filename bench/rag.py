"""RAG ingest rate and retrieve latency over a 10,000-chunk collection, through the real stack.

    flock /tmp/herd-stack.lock env HERD_DATA_DIR=/tmp/herd-shared-data .venv/bin/python bench/rag.py [--chunks 10000]

Starts `herd serve` (embedded default: all-MiniLM-L6-v2 on vLLM CPU, Qdrant local mode in the
vector actor) in a temporary directory, then:
- ingest: uploads synthetic text files (paragraphs of 60-90 MiniLM tokens, one chunk each) to
  /v1/create/rag and reports chunks/s: chunking, embedding on the engine, and storing, end to end;
- retrieve: sequential /v1/retrieve requests (embedding the question, then searching the whole
  collection) and reports p50/p99 in ms;
- embed only: 2,048 such paragraphs through /v1/embeddings, 128 per call, so the engine's share
  of ingest is visible;
- store only: upserts (128 per call) and the same number of searches straight on a local-mode
  collection of the same size (random unit vectors, 384-d) in this process, without the actor.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.rag.vectors import Passage, QdrantVectors  # noqa: E402
from tests.integration.conftest import start_herd  # noqa: E402

PARAGRAPHS_PER_FILE = 100
WORDS = (
    "river harbour granite engine protocol yeast volcano lantern orbit copper meadow signal ledger "
    "festival compiler glacier violin tariff canyon pepper satellite archive tunnel orchard market "
    "theorem cathedral battery monsoon lattice harvest vessel kernel prairie mosaic turbine"
).split()


def paragraph(rng: random.Random) -> str:
    sentences = [" ".join(rng.choices(WORDS, k=rng.randint(8, 12))).capitalize() + "." for _ in range(5)]
    return " ".join(sentences)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def ingest(http: httpx.Client, chunks: int, rng: random.Random) -> dict[str, float]:
    stored, files, started = 0, 0, time.perf_counter()
    while stored < chunks:
        text = "\n\n".join(paragraph(rng) for _ in range(PARAGRAPHS_PER_FILE))
        r = http.post(
            "/v1/create/rag", files={"file": (f"doc{files}.txt", text.encode())}, data={"collection": "bench"}
        )
        r.raise_for_status()
        stored, files = stored + r.json()["chunks"], files + 1
    seconds = time.perf_counter() - started
    points = r.json()["points"]
    return {
        "chunks": stored,
        "points": points,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(stored / seconds, 1),
    }


def embed_only(http: httpx.Client, chunks: int, rng: random.Random) -> dict[str, float]:
    """The engine's share of ingest: the same kind of paragraphs, 128 per /v1/embeddings call."""
    done, started = 0, time.perf_counter()
    while done < chunks:
        batch = [paragraph(rng) for _ in range(128)]
        http.post("/v1/embeddings", json={"model": "all-minilm", "input": batch}).raise_for_status()
        done += len(batch)
    seconds = time.perf_counter() - started
    return {"chunks": done, "seconds": round(seconds, 1), "chunks_per_s": round(done / seconds, 1)}


def retrieve(http: httpx.Client, queries: int, rng: random.Random) -> dict[str, float]:
    times = []
    for _ in range(queries):
        body = {"messages": [{"role": "user", "content": paragraph(rng)[:120]}], "model": "all-minilm",
                "collection": "bench", "score_threshold": 0.0}  # fmt: skip
        sent = time.perf_counter()
        r = http.post("/v1/retrieve", json=body)
        times.append((time.perf_counter() - sent) * 1000)
        r.raise_for_status()
        assert len(r.json()["points"]) == 5
    return {"queries": queries, "p50_ms": round(percentile(times, 0.5), 1), "p99_ms": round(percentile(times, 0.99), 1)}


async def search_only(points: int, queries: int, rng: random.Random) -> dict[str, float]:
    from qdrant_client import AsyncQdrantClient

    def unit() -> tuple[float, ...]:
        v = [rng.gauss(0, 1) for _ in range(384)]
        norm = sum(x * x for x in v) ** 0.5
        return tuple(x / norm for x in v)

    with tempfile.TemporaryDirectory() as path:
        store = QdrantVectors(AsyncQdrantClient(path=path))
        await store.create("bench", "m", 384)
        vectors = [unit() for _ in range(points)]
        started = time.perf_counter()
        for start in range(0, points, 128):  # the batch the ingest path stores per embedding call
            batch = [Passage(f"p{i}", "f", "id", i, vectors[i]) for i in range(start, min(start + 128, points))]
            await store.upsert("bench", batch)
        upsert_s = time.perf_counter() - started
        times = []
        for _ in range(queries):
            query = unit()
            sent = time.perf_counter()
            await store.search("bench", query, 5, 0.0)
            times.append((time.perf_counter() - sent) * 1000)
        await store.close()
    return {"upsert_points_per_s": round(points / upsert_s, 1), "p50_ms": round(percentile(times, 0.5), 2),
            "p99_ms": round(percentile(times, 0.99), 2), "mean_ms": round(statistics.mean(times), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(7)
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as work, start_herd(Path(work)) as base:
        with httpx.Client(base_url=base, timeout=600) as http:
            result["embed_only"] = embed_only(http, 2_048, rng)
            result["ingest"] = ingest(http, args.chunks, rng)
            retrieve(http, 20, rng)  # warm-up
            result["retrieve"] = retrieve(http, args.queries, rng)
    result["search_only_local_mode"] = asyncio.run(search_only(args.chunks, args.queries, rng))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
