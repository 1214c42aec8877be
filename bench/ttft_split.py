"""Where the time to first token goes at one stream: the engine, the hops around it, HTTP.

    .venv/bin/python -m bench.ttft_split [--requests 16] [--tokens 8]

Starts Herd (the chat model only, as bench.run does), then vLLM's own OpenAI server, sends
`--requests` streamed chats one at a time to each, and reads each server's /metrics before and
after. Means over the requests:
- client: from sending the request to the first content chunk (bench.load's TTFT);
- server: Herd's `gen_ai_server_time_to_first_token_seconds` (request reaching the router to the
  first token reaching it); vLLM's server has no such figure;
- engine: `vllm:time_to_first_token_seconds`, from the request's arrival in the engine (AsyncLLM,
  in Herd's worker replica or in vLLM's API server) to its first token.
client - engine is what each server adds around the engine; for Herd, server - engine is the
router's hops to the worker replica and back, and client - server its HTTP side.
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

from bench.load import OPENAI_SAMPLED, one
from bench.run import ROOT, launch, servers, settle, stop, wait_ready
from router.driver.ports import free_port

ENGINE = "vllm:time_to_first_token_seconds"
SERVER = "gen_ai_server_time_to_first_token_seconds"
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


async def sequential(base: str, model: str, requests: int, tokens: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        ttfts = []
        for _ in range(requests):
            result = await one(client, OPENAI_SAMPLED, model, tokens)
            if not result.ok:
                raise RuntimeError(result.error)
            ttfts.append(result.ttft * 1000)
        return ttfts


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    server = next(s for s in servers(args.model_dir, port, "default") if s.name == name)
    base = f"http://127.0.0.1:{port}"
    proc = launch(server, ROOT / "bench" / "results" / f"ttft-{name}.log")
    try:
        wait_ready(base, proc, server.model)
        settle()
        asyncio.run(sequential(base, server.model, 4, args.tokens))  # warm-up
        time.sleep(HUB_REPORT_S)
        before = httpx.get(f"{base}/metrics").text
        ttfts = asyncio.run(sequential(base, server.model, args.requests, args.tokens))
        time.sleep(HUB_REPORT_S)
        after = httpx.get(f"{base}/metrics").text
    finally:
        stop(proc)
    return {
        "client_ms": {"mean": round(statistics.fmean(ttfts), 1), "p50": round(statistics.median(ttfts), 1)},
        "server_mean_ms": mean_ms(histogram_totals(before, SERVER), histogram_totals(after, SERVER)),
        "engine_mean_ms": mean_ms(histogram_totals(before, ENGINE), histogram_totals(after, ENGINE)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--model-dir", default=str(Path(os.environ.get("HERD_DATA_DIR", Path.home() / ".herd"))
                                                   / "models" / "smollm2--135m"))  # fmt: skip
    args = parser.parse_args()
    for name in ("herd", "vllm"):
        print(name, measure(name, args), flush=True)


if __name__ == "__main__":
    main()
