"""Router-only load: thousands of concurrent streams through one router replica, no engine.

    .venv/bin/python -m bench.router_only [--streams 2000] [--interval 0.5] [--tokens 16]

Starts Ray Serve with Herd's real router deployment (one replica, serving HTTP itself) in front of
`SyntheticTokenSource` (bench/synthetic.py), opens `--streams` OpenAI SSE streams at once and
reads them to the end. Each synthetic token carries the wall-clock time it left the worker, so
for every chunk the client knows the delay the router path added (worker -> router ->
client, including this client's own event-loop lag on the shared cores). Reports errors, that
per-chunk delay, the inter-chunk gap minus the token interval, and the router's own
`herd_router_added_seconds` histogram; writes bench/results/router_only.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.load import _pct
from router.catalog.catalog import Catalog, LoadedModel, ModelRecord
from router.catalog.names import parse_name
from router.catalog.store import CatalogStore
from router.driver.ports import free_port
from router.driver.redis_server import EmbeddedRedis
from workers.spec import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
MODEL = "synthetic:tokens"


@dataclass
class Stream:
    ok: bool = False
    delays: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    chunks: int = 0
    error: str = ""


def start(port: int, interval_s: float, data_dir: Path) -> EmbeddedRedis:
    """Ray Serve with the real router over the synthetic source (this process is the driver).
    The source is registered in a private Redis as a loaded model, as the model manager would."""
    import ray
    from ray import serve

    from bench.synthetic import SyntheticTokenSource
    from router.api.replica import bind_router
    from router.driver.cli import start_cluster
    from router.settings import Settings

    settings = Settings(port=port)
    redis = EmbeddedRedis(data_dir)
    url = redis.start()
    record = ModelRecord(
        name=MODEL,
        deployment_id=parse_name(MODEL).deployment_id,
        spec=ModelSpec(name=MODEL, source={"hf": "synthetic (no weights)"}, max_ongoing_requests=100_000),
        model_path="synthetic (no weights)",
        size=0,
        digest="synthetic",
        modified_ns=0,
        context_length=2048,
    )
    asyncio.run(_register(url, record))
    start_cluster(settings)
    source = serve.deployment(
        name=record.deployment_id,
        max_ongoing_requests=100_000,
        ray_actor_options={"num_cpus": 0.1},
        logging_config=settings.serve_logging(),
    )(SyntheticTokenSource)
    secret = secrets.token_bytes(32)
    serve.run(source.bind(interval_s, secret), name=record.deployment_id, route_prefix=None)
    here = ray.get_runtime_context().get_node_id()
    serve.run(bind_router(settings, url, None, None, secret, node_id=here), name="router-only", route_prefix=None)
    return redis


async def _register(url: str, record: ModelRecord) -> None:
    store = CatalogStore.from_url(url)
    await Catalog(store).put(record)
    await Catalog(store).set_loaded(record.deployment_id, LoadedModel(name=record.name, always_on=True, record=record))
    await store.close()


async def one(session: aiohttp.ClientSession, url: str, tokens: int, interval_s: float) -> Stream:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "max_tokens": tokens, "stream": True}
    out = Stream()
    last = 0.0
    try:
        async with session.post(url, json=body) as r:
            if r.status != 200:
                out.error = f"HTTP {r.status}"
                return out
            async for raw in r.content:
                if not raw.startswith(b"data: {"):
                    continue
                now = time.time()
                chunk = json.loads(raw[6:])
                if "error" in chunk:
                    out.error = chunk["error"]["message"]
                    return out
                content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
                if not content:
                    continue
                out.delays.append(now - float(content))
                if last:
                    out.gaps.append(now - last - interval_s)
                last = now
                out.chunks += 1
    except (TimeoutError, aiohttp.ClientError) as exc:
        out.error = repr(exc)
        return out
    out.ok = out.chunks == tokens
    out.error = "" if out.ok else f"{out.chunks} of {tokens} chunks"
    return out


async def drive(base: str, streams: int, tokens: int, interval_s: float) -> tuple[list[Stream], float]:
    # aiohttp, not httpx: at 2,000 streams httpx alone saturated a core here, and its lag was
    # indistinguishable from the router's.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        url = f"{base}/v1/chat/completions"
        started = time.perf_counter()
        results = await asyncio.gather(*(one(session, url, tokens, interval_s) for _ in range(streams)))
        return list(results), time.perf_counter() - started


def summarize(results: list[Stream], duration: float, metrics: str) -> dict[str, Any]:
    delays = [d for r in results for d in r.delays]
    first = [r.delays[0] for r in results if r.delays]
    later = [d for r in results for d in r.delays[1:]]
    gaps = [g for r in results for g in r.gaps]
    count = _metric(metrics, "herd_router_added_seconds_count")
    added_sum = _metric(metrics, "herd_router_added_seconds_sum")
    return {
        "streams": len(results),
        "errors": sum(not r.ok for r in results),
        "error_samples": sorted({r.error for r in results if not r.ok})[:3],
        "chunks": sum(r.chunks for r in results),
        "chunks_per_s": round(sum(r.chunks for r in results) / duration, 1),
        "chunk_delay_ms": _quantiles(delays),
        "first_chunk_delay_ms": _quantiles(first),
        "later_chunk_delay_ms": _quantiles(later),
        "added_gap_ms": _quantiles(gaps),
        "router_added_mean_ms": round(added_sum / count * 1000, 2) if count else None,
        "duration_s": round(duration, 1),
    }


def _quantiles(values: list[float]) -> dict[str, float]:
    return {q: round(_pct(values, p), 1) for q, p in (("p50", 50), ("p99", 99), ("max", 100))}


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between one stream's tokens")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per stream")
    args = parser.parse_args()
    port = free_port()
    redis = start(port, args.interval, Path(tempfile.mkdtemp(prefix="herd-router-only-")))
    base = f"http://127.0.0.1:{port}"
    asyncio.run(drive(base, 10, 2, args.interval))  # warm-up
    report: dict[str, Any] = {"args": vars(args), "runs": {}}
    for n in args.streams:
        before = httpx.get(f"{base}/metrics").text
        results, duration = asyncio.run(drive(base, n, args.tokens, args.interval))
        after = httpx.get(f"{base}/metrics").text
        stats = summarize(results, duration, _diff(before, after))
        report["runs"][str(n)] = stats
        print(json.dumps({str(n): stats}), flush=True)
    out = ROOT / "bench" / "results" / "router_only.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    redis.stop()


def _diff(before: str, after: str) -> str:
    """The router histogram's count and sum for this run only (after minus before)."""
    lines = []
    for name in ("herd_router_added_seconds_count", "herd_router_added_seconds_sum"):
        lines.append(f"{name}{{}} {_metric(after, name) - _metric(before, name)}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
