"""Routing policies on two replicas: prefix-cache hit rate, per-replica share, wall time and throughput.

    .venv/bin/python -m bench.affinity [--conversations 8] [--turns 4] [--concurrency 4]
                                       [--distinct 16] [--distinct-concurrency 8] [--only cache-aware]
                                       [--routers 1] [--models 1]

For each routing policy (least-loaded, prefix, cache-aware), starts `herd serve` with two replicas of
the default chat model and runs two workloads, each turn resending the whole history plus a new
question, as chat clients do:
- shared: conversations that open with the same system prompt (as apps do);
- distinct: conversations with nothing in common, for throughput.
With `--models N` the chat model is served under N names (N deployments of two replicas each) and
conversation i talks to model i mod N; with `--routers N`, N router replicas share the port, so a
conversation's turns reach different routers (the client's connections land on either), each with
its own prefix index. Reads vLLM's own counters of every replica from Herd's /metrics around each
workload: prefix-cache queries and hits (tokens), prompt tokens and finished requests. Shares are
each replica's share of its own model's traffic. Writes bench/results/affinity.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.configs import chat_spec
from bench.run import ROOT, launch, settle, stop, wait_ready
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


def model_names(models: int) -> list[str]:
    return [MODEL] + [f"{MODEL}-{i}" for i in range(2, models + 1)]


def config(routing: str, models: int) -> Path:
    """Two replicas of the chat model under each of `models` names."""
    first = chat_spec(replicas=2, routing=routing)
    specs = [first] + [first | {"name": name, "aliases": [name]} for name in model_names(models)[1:]]
    path = Path(tempfile.gettempdir()) / f"herd-affinity-{routing}.yaml"
    path.write_text(yaml.safe_dump({"models": specs}))
    return path


def opening(i: int, shared: bool) -> list[dict[str, str]]:
    """A conversation's first messages: the shared system prompt, or one of its own (same length)."""
    if shared:
        return [{"role": "system", "content": SYSTEM}]
    own = f"Conversation {i}: you are tutor number {i * 7919 % 1000}, for student {i}. "
    return [{"role": "system", "content": (own * (len(SYSTEM) // len(own) + 1))[: len(SYSTEM)]}]


async def conversation(
    client: httpx.AsyncClient, model: str, messages: list[dict[str, str]], topic: str, turns: int
) -> int:
    """Runs the turns; returns the output tokens the server reported."""
    out = 0
    for question in QUESTIONS[:turns]:
        messages.append({"role": "user", "content": question.format(topic=topic)})
        body = {"model": model, "messages": messages, "stream": False, "options": {"num_predict": REPLY_TOKENS}}
        reply = (await client.post("/api/chat", json=body)).json()
        out += int(reply.get("eval_count", 0))
        messages.append({"role": "assistant", "content": reply["message"]["content"]})
    return out


async def workload(
    base: str, models: list[str], conversations: int, turns: int, concurrency: int, shared: bool
) -> tuple[float, int]:
    """Wall time and output tokens of `conversations` conversations, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> int:
        model, topic = models[i % len(models)], TOPICS[i % len(TOPICS)] + f" ({i})"
        async with gate:
            return await conversation(client, model, opening(i, shared), topic, turns)

    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i) for i in range(conversations)))
        return time.perf_counter() - started, sum(tokens)


def counters(base: str) -> dict[str, dict[str, float]]:
    """Per replica, keyed `model/replica`: the COUNTERS' values."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            name = COUNTERS.get(sample.name.removesuffix("_total"))
            model = sample.labels.get("model", "")
            if name is not None and model.startswith(MODEL):
                key = f"{model}/{sample.labels['replica']}"
                out.setdefault(key, dict.fromkeys(COUNTERS.values(), 0.0))[name] += sample.value
    return out


def shares(delta: dict[str, dict[str, float]], counter: str) -> list[float]:
    """Each replica's share of its own model's `counter`, largest first."""
    model = {key: key.split("/")[0] for key in delta}
    totals: defaultdict[str, float] = defaultdict(float)
    for key, d in delta.items():
        totals[model[key]] += d[counter]
    out = (d[counter] / totals[model[key]] if totals[model[key]] else 0.0 for key, d in delta.items())
    return sorted((round(x, 3) for x in out), reverse=True)


def summary(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Hit rate, and each replica's share of its model's prompt tokens and requests, between two readings."""
    delta = {r: {k: v - before.get(r, {}).get(k, 0.0) for k, v in after[r].items()} for r in after}
    total = {k: sum(d[k] for d in delta.values()) for k in COUNTERS.values()}
    return {
        "hit_rate": round(total["hits"] / total["queries"], 3) if total["queries"] else None,
        "prompt_token_share": shares(delta, "prompt_tokens"),
        "request_share": shares(delta, "requests"),
        "totals": total,
        "per_replica": delta,
    }


def run_workload(base: str, args: argparse.Namespace, shared: bool) -> dict[str, Any]:
    before = counters(base)
    models = model_names(args.models)
    if shared:
        run = workload(base, models, args.conversations, args.turns, args.concurrency, True)
    else:
        run = workload(base, models, args.distinct, args.turns, args.distinct_concurrency, False)
    duration, tokens = asyncio.run(run)
    time.sleep(12)  # engines report their counters every 5 s
    return summary(before, counters(base)) | {
        "wall_s": round(duration, 1),
        "output_tokens": tokens,
        "output_tokens_per_s": round(tokens / duration, 1),
    }


def measure(routing: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_path = config(routing, args.models)
    herd = [str(Path(sys.executable).with_name("herd")), "serve", "--port", str(port), "--config", str(config_path)]
    log = ROOT / "bench" / "results" / f"affinity-{routing}.log"
    proc = launch(herd, log, {"HERD_ROUTER_REPLICAS": str(args.routers)})
    try:
        wait_ready(base, proc, MODEL)
        settle()
        return {"shared": run_workload(base, args, True), "distinct": run_workload(base, args, False)}
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--distinct", type=int, default=16, help="conversations of the distinct workload")
    parser.add_argument("--distinct-concurrency", type=int, default=8)
    parser.add_argument("--only", action="append", choices=POLICIES, help="measure only these policies")
    parser.add_argument("--routers", type=int, default=1, help="router replicas (HERD_ROUTER_REPLICAS)")
    parser.add_argument("--models", type=int, default=1, help="names the chat model is served under")
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
