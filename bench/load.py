"""Streaming load with vLLM's benchmark definitions: TTFT, ITL, TPOT, end-to-end latency, tokens/s.

One request = one streamed chat completion. TTFT is the time to the first chunk with content;
ITL is every gap between content chunks; output tokens come from the server's own usage report
(OpenAI `include_usage`, Ollama `eval_count`), so chunking differences do not skew token counts.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPT = "Write a long story about a lighthouse keeper and a storm."


@dataclass
class Result:
    ok: bool
    ttft: float = 0.0
    e2e: float = 0.0
    itls: list[float] = field(default_factory=list)
    tokens: int = 0
    error: str = ""


@dataclass(frozen=True)
class Api:
    """How to stream one chat request from a server and read its content and token count."""

    path: str
    body: Callable[[str, int], dict[str, Any]]
    parse: Callable[[AsyncIterator[str]], AsyncIterator[tuple[str, int]]]


async def _sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, int]]:
    async for line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            raise RuntimeError(str(chunk["error"]))
        text = "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices", []))
        tokens = (chunk.get("usage") or {}).get("completion_tokens", 0)
        yield text, tokens


async def _ndjson(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, int]]:
    async for line in lines:
        if not line:
            continue
        chunk = json.loads(line)
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
        yield chunk["message"]["content"], chunk.get("eval_count", 0)


def openai_api(**sampling: Any) -> Api:
    """A streamed chat completion with these sampling fields (OpenAI's names, vLLM's extras too)."""
    return Api(
        "/v1/chat/completions",
        lambda model, n: {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": n,
            **sampling,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        _sse,
    )


def ollama_api(**options: Any) -> Api:
    """A streamed Ollama chat with these `options` (none: Ollama's defaults, top_k 40 and top_p 0.9)."""
    return Api(
        "/api/chat",
        lambda model, n: {
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "options": {"num_predict": n, **options},
            "stream": True,
        },
        _ndjson,
    )


# Greedy: every server decodes the same tokens, so throughput compares the serving paths alone.
OPENAI = openai_api(temperature=0)
OLLAMA = ollama_api(temperature=0)
# Each API's default sampling, and vLLM doing the same: Ollama's defaults (temperature 0.8,
# top_k 40, top_p 0.9) cost the CPU engine itself about half its throughput.
OPENAI_SAMPLED = openai_api(temperature=0.8)
OLLAMA_DEFAULTS = ollama_api()
VLLM_AS_OLLAMA = openai_api(temperature=0.8, top_k=40, top_p=0.9)


async def one(client: httpx.AsyncClient, api: Api, model: str, tokens: int) -> Result:
    start = time.perf_counter()
    last = 0.0
    result = Result(ok=False)
    try:
        async with client.stream("POST", api.path, json=api.body(model, tokens)) as r:
            if r.status_code != 200:
                return Result(ok=False, error=f"HTTP {r.status_code}: {(await r.aread())[:200]!r}")
            async for text, count in api.parse(r.aiter_lines()):
                now = time.perf_counter()
                if text:
                    if last:
                        result.itls.append(now - last)
                    else:
                        result.ttft = now - start
                    last = now
                result.tokens = max(result.tokens, count)
    except (httpx.HTTPError, RuntimeError) as exc:
        return Result(ok=False, error=repr(exc))
    result.e2e = time.perf_counter() - start
    result.ok = bool(result.ttft and result.tokens)
    return result


async def run_load(base: str, api: Api, model: str, *, concurrency: int, requests: int, tokens: int) -> dict[str, Any]:
    """Send `requests` streams, `concurrency` at a time; return summary statistics."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        queue = iter(range(requests))
        results: list[Result] = []

        async def worker() -> None:
            for _ in queue:
                results.append(await one(client, api, model, tokens))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - started
    return summarize(results, duration)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000


def spread_ms(values_s: list[float]) -> dict[str, float]:
    """p50 and p99 of durations in seconds, in ms."""
    return {"p50": round(_pct(values_s, 50), 1), "p99": round(_pct(values_s, 99), 1)}


def summarize(results: list[Result], duration: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    itls = [x for r in ok for x in r.itls]
    tpots = [(r.e2e - r.ttft) / (r.tokens - 1) for r in ok if r.tokens > 1]
    return {
        "requests": len(results),
        "errors": len(results) - len(ok),
        "error_samples": sorted({r.error for r in results if not r.ok})[:3],
        "output_tokens": sum(r.tokens for r in ok),
        "tokens_per_s": round(sum(r.tokens for r in ok) / duration, 1),
        "ttft_ms": spread_ms([r.ttft for r in ok]),
        "itl_ms": spread_ms(itls),
        "tpot_ms": {"mean": round(statistics.fmean(tpots) * 1000, 1) if tpots else 0.0},
        "e2e_ms": spread_ms([r.e2e for r in ok]),
        "duration_s": round(duration, 2),
    }
