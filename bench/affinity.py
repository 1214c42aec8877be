"""Routing policies on two replicas: prefix-cache hit rate, per-replica share, wall time and throughput.

    .venv/bin/python -m bench.affinity [--conversations 8] [--turns 4] [--concurrency 4]
                                       [--distinct 16] [--distinct-concurrency 8] [--only cache-aware]

For each routing policy (least-loaded, prefix, cache-aware), starts `herd serve` with two replicas of
the default chat model and runs two workloads, each turn resending the whole history plus a new
question, as chat clients do:
- shared: conversations that open with the same system prompt (as apps do);
- distinct: conversations with nothing in common, for throughput.
Reads vLLM's own counters of both replicas from Herd's /metrics around each workload: prefix-cache
queries and hits (tokens), prompt tokens and finished requests. Writes bench/results/affinity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.configs import chat_only_yaml
from bench.run import ROOT, settle, stop, wait_ready
from router.driver.ports import free_port

MODEL = "smollm2"
POLICIES = ("least-loaded", "prefix", "cache-aware")
SYSTEM = "You are a patient teacher. Answer in two sentences. " * 8  # a shared prefix, as real apps have
QUESTIONS = ["What is {topic}?", "Why does it matter?", "Give an example.", "What is a common mistake?", "Summarise."]
TOPICS = ["photosynthesis", "gravity", "inflation", "recursion", "erosion", "vaccines", "tides", "entropy"]
REPLY_TOKENS = 24
# vLLM counters, per replica: what each measures.
COUNTERS = {
    "vllm:prefix_cache_queries": "queries",
    "vllm:prefix_cache_hits": "hits",
    "vllm:prompt_tokens": "prompt_tokens",
    "vllm:request_success": "requests",
}


def config(routing: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"herd-affinity-{routing}.yaml"
    path.write_text(chat_only_yaml(replicas=2, routing=routing))
    return path


def opening(i: int, shared: bool) -> list[dict[str, str]]:
    """A conversation's first messages: the shared system prompt, or one of its own (same length)."""
    if shared:
        return [{"role": "system", "content": SYSTEM}]
    own = f"Conversation {i}: you are tutor number {i * 7919 % 1000}, for student {i}. "
    return [{"role": "system", "content": (own * (len(SYSTEM) // len(own) + 1))[: len(SYSTEM)]}]


async def conversation(client: httpx.AsyncClient, messages: list[dict[str, str]], topic: str, turns: int) -> int:
    """Runs the turns; returns the output tokens the server reported."""
    out = 0
    for question in QUESTIONS[:turns]:
        messages.append({"role": "user", "content": question.format(topic=topic)})
        body = {"model": MODEL, "messages": messages, "stream": False, "options": {"num_predict": REPLY_TOKENS}}
        reply = (await client.post("/api/chat", json=body)).json()
        out += int(reply.get("eval_count", 0))
        messages.append({"role": "assistant", "content": reply["message"]["content"]})
    return out


async def workload(base: str, conversations: int, turns: int, concurrency: int, shared: bool) -> tuple[float, int]:
    """Wall time and output tokens of `conversations` conversations, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        async with gate:
            return await conversation(client, opening(i, shared), TOPICS[i % len(TOPICS)] + f" ({i})", turns)

    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i) for i in range(conversations)))
        return time.perf_counter() - started, sum(tokens)


def counters(base: str) -> dict[str, dict[str, float]]:
    """Per replica: the COUNTERS' values."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            name = COUNTERS.get(sample.name.removesuffix("_total"))
            if name is not None and sample.labels.get("model", "").startswith(MODEL):
                replica = out.setdefault(sample.labels["replica"], dict.fromkeys(COUNTERS.values(), 0.0))
                replica[name] += sample.value
    return out


def summary(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Hit rate and each replica's share of prompt tokens and requests between two readings."""
    delta = {r: {k: v - before.get(r, {}).get(k, 0.0) for k, v in after[r].items()} for r in after}
    total = {k: sum(d[k] for d in delta.values()) for k in COUNTERS.values()}
    share = {
        k: sorted((round(d[k] / total[k], 3) if total[k] else 0.0 for d in delta.values()), reverse=True)
        for k in ("prompt_tokens", "requests")
    }
    return {
        "hit_rate": round(total["hits"] / total["queries"], 3) if total["queries"] else None,
        "prompt_token_share": share["prompt_tokens"],
        "request_share": share["requests"],
        "totals": total,
        "per_replica": delta,
    }


def run_workload(base: str, args: argparse.Namespace, shared: bool) -> dict[str, Any]:
    before = counters(base)
    if shared:
        duration, tokens = asyncio.run(workload(base, args.conversations, args.turns, args.concurrency, True))
    else:
        duration, tokens = asyncio.run(workload(base, args.distinct, args.turns, args.distinct_concurrency, False))
    time.sleep(12)  # engines report their counters every 5 s
    return summary(before, counters(base)) | {
        "wall_s": round(duration, 1),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / duration, 1),
    }


def measure(routing: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    herd = [str(Path(sys.executable).with_name("herd")), "serve", "--port", str(port), "--config", str(config(routing))]
    log = (ROOT / "bench" / "results" / f"affinity-{routing}.log").open("w")
    proc = subprocess.Popen(herd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_ready(base, proc, MODEL)
        settle()
        return {"shared": run_workload(base, args, True), "distinct": run_workload(base, args, False)}
    finally:
        stop(proc)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--distinct", type=int, default=16, help="conversations of the distinct workload")
    parser.add_argument("--distinct-concurrency", type=int, default=8)
    parser.add_argument("--only", action="append", choices=POLICIES, help="measure only these policies")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    report: dict[str, Any] = {"commit": commit.stdout.strip(), "args": vars(args), "policies": {}}
    for routing in args.only or POLICIES:
        try:
            result = measure(routing, args)
        except RuntimeError as exc:  # one policy that cannot start (e.g. `prefix` without pyarrow) spoils no other
            result = {"error": f"{exc}; see bench/results/affinity-{routing}.log"}
        report["policies"][routing] = result
        print(json.dumps({routing: result}), flush=True)
    (ROOT / "bench" / "results" / "affinity.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
