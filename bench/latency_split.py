"""Where the time to first token and the time per token go at one stream: engine, hops, HTTP.

    .venv/bin/python -m bench.latency_split [--requests 16] [--tokens 64]

Starts Herd (the chat model only, as bench.run does), then vLLM's own OpenAI server. To each it
sends `--requests` streamed chats one at a time per API with `--sampling default`'s sampling (Herd:
OpenAI at temperature 0.8 and Ollama's defaults; vLLM: each of the two), reading the server's
/metrics before and after each API. Means over the requests:
- client: bench.load's TTFT (request sent to the first content chunk) and ITL (between chunks);
- server: Herd's `gen_ai_server_time_to_first_token_seconds` (request reaching the router to the
  first token reaching it) and `gen_ai_server_time_per_output_token_seconds`; vLLM's server has
  neither;
- engine: `vllm:time_to_first_token_seconds` and `vllm:inter_token_latency_seconds`, as AsyncLLM
  sees its engine core's outputs (in Herd's worker replica, or in vLLM's API server).
client - engine is what each server adds around the engine; for Herd, server - engine is the
router's hops to the worker replica and back, and client - server its HTTP side. An engine ITL
that differs between servers at the same sampling is the engine itself running slower (its cores
shared with the server's processes), not a cost of the path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.load import Api, one, spread_ms
from bench.run import ROOT, launch, servers, settle, stop, wait_ready
from router.driver.ports import free_port

# (client figure, Herd router's histogram, the engine's histogram)
TTFT = ("ttft", "gen_ai_server_time_to_first_token_seconds", "vllm:time_to_first_token_seconds")
ITL = ("itl", "gen_ai_server_time_per_output_token_seconds", "vllm:inter_token_latency_seconds")
HUB_REPORT_S = 6  # Herd's /metrics carries engine metrics as reported every 5 s (workers/telemetry.py)


def histogram_totals(text: str, name: str) -> tuple[float, float]:
    """(sum, count) of a histogram over all its label sets."""
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_sum":
                total += sample.value
            elif sample.name == f"{name}_count":
                count += sample.value
    return total, count


def mean_ms(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    n = after[1] - before[1]
    return round((after[0] - before[0]) / n * 1000, 1) if n else None


def client_ms(values_s: list[float]) -> dict[str, float]:
    """Mean, p50 and p99 in ms, the percentiles as bench.run's table computes them."""
    return {"mean": round(statistics.fmean(values_s) * 1000, 1), **spread_ms(values_s)}


async def sequential(base: str, api: Api, model: str, requests: int, tokens: int) -> tuple[list[float], list[float]]:
    """TTFTs and ITLs (seconds) of `requests` streamed requests sent one after another."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        ttfts: list[float] = []
        itls: list[float] = []
        for _ in range(requests):
            result = await one(client, api, model, tokens)
            if not result.ok:
                raise RuntimeError(result.error)
            ttfts.append(result.ttft)
            itls.extend(result.itls)
        return ttfts, itls


def split(client: list[float], before: str, after: str, names: tuple[str, str, str]) -> dict[str, Any]:
    _, server, engine = names
    return {
        "client_ms": client_ms(client),
        "server_mean_ms": mean_ms(histogram_totals(before, server), histogram_totals(after, server)),
        "engine_mean_ms": mean_ms(histogram_totals(before, engine), histogram_totals(after, engine)),
    }


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Per API of the contender `name`: the TTFT and the ITL split."""
    port = free_port()
    server = next(s for s in servers(args.model_dir, port, "default") if s.name == name)
    base = f"http://127.0.0.1:{port}"
    proc = launch(server.command, ROOT / "bench" / "results" / f"split-{name}.log")
    out: dict[str, Any] = {}
    try:
        wait_ready(base, proc, server.model)
        settle()
        for label, api in server.apis.items():
            asyncio.run(sequential(base, api, server.model, 4, 16))  # warm-up
            time.sleep(HUB_REPORT_S)
            before = httpx.get(f"{base}/metrics").text
            ttfts, itls = asyncio.run(sequential(base, api, server.model, args.requests, args.tokens))
            time.sleep(HUB_REPORT_S)
            after = httpx.get(f"{base}/metrics").text
            out[label] = {"ttft": split(ttfts, before, after, TTFT), "itl": split(itls, before, after, ITL)}
    finally:
        stop(proc)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--model-dir", default=str(Path(os.environ.get("HERD_DATA_DIR", Path.home() / ".herd"))
                                                   / "models" / "smollm2--135m"))  # fmt: skip
    args = parser.parse_args()
    for name in ("herd", "vllm"):
        for label, figures in measure(name, args).items():
            print(label, figures, flush=True)


if __name__ == "__main__":
    main()
