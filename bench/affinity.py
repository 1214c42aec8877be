"""Prefix-cache hit rate of a multi-turn chat workload on two replicas: least-loaded vs prefix routing.

    .venv/bin/python -m bench.affinity [--conversations 8] [--turns 4] [--concurrency 4]

For each routing policy, starts `herd serve` with two replicas of the default chat model, runs the
same conversations (each turn resends the whole history plus a new question, as chat clients do),
and reads vLLM's own prefix-cache counters of both replicas from Herd's /metrics. Writes
bench/results/affinity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.configs import chat_only_yaml
from bench.run import ROOT, free_port, settle, stop, wait_ready

MODEL = "smollm2"
SYSTEM = "You are a patient teacher. Answer in two sentences. " * 8  # a shared prefix, as real apps have
QUESTIONS = ["What is {topic}?", "Why does it matter?", "Give an example.", "What is a common mistake?", "Summarise."]
TOPICS = ["photosynthesis", "gravity", "inflation", "recursion", "erosion", "vaccines", "tides", "entropy"]


def config(routing: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"herd-affinity-{routing}.yaml"
    path.write_text(chat_only_yaml(replicas=2, routing=routing))
    return path


async def conversation(client: httpx.AsyncClient, topic: str, turns: int) -> None:
    messages: list[dict[str, str]] = [{"role": "system", "content": SYSTEM}]
    for question in QUESTIONS[:turns]:
        messages.append({"role": "user", "content": question.format(topic=topic)})
        body = {"model": MODEL, "messages": messages, "stream": False, "options": {"num_predict": 24}}
        reply = (await client.post("/api/chat", json=body)).json()["message"]["content"]
        messages.append({"role": "assistant", "content": reply})


async def workload(base: str, conversations: int, turns: int, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(topic: str) -> None:
        async with gate:
            await conversation(client, topic, turns)

    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(TOPICS[i % len(TOPICS)] + f" ({i})") for i in range(conversations)))
        return time.perf_counter() - started


def prefix_counters(base: str) -> dict[str, dict[str, float]]:
    """Per replica: vLLM's prefix-cache queries and hits (in tokens)."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            name = sample.name.removeprefix("vllm:prefix_cache_").removesuffix("_total")
            if sample.name.startswith("vllm:prefix_cache_") and name in ("hits", "queries"):
                replica = out.setdefault(sample.labels["replica"], {"hits": 0.0, "queries": 0.0})
                replica[name] += sample.value
    return out


def measure(routing: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    herd = [str(Path(ROOT / ".venv" / "bin" / "herd")), "serve", "--port", str(port), "--config", str(config(routing))]
    log = (ROOT / "bench" / "results" / f"affinity-{routing}.log").open("w")
    proc = subprocess.Popen(herd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_ready(base, proc, MODEL)
        settle()
        before = prefix_counters(base)
        duration = asyncio.run(workload(base, args.conversations, args.turns, args.concurrency))
        time.sleep(12)  # engines report their counters every 5 s
        after = prefix_counters(base)
    finally:
        stop(proc)
        log.close()
    per_replica = {r: {k: after[r][k] - before.get(r, {}).get(k, 0.0) for k in ("hits", "queries")} for r in after}
    hits = sum(v["hits"] for v in per_replica.values())
    queries = sum(v["queries"] for v in per_replica.values())
    return {
        "hit_rate": round(hits / queries, 3) if queries else None,
        "prefix_cache_hits": hits,
        "prefix_cache_queries": queries,
        "per_replica": per_replica,
        "duration_s": round(duration, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    report = {"args": vars(args), "policies": {}}
    for routing in ("least-loaded", "prefix"):
        report["policies"][routing] = result = measure(routing, args)
        print(json.dumps({routing: result}), flush=True)
    (ROOT / "bench" / "results" / "affinity.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
