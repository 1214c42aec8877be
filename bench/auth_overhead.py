"""What API keys and per-key limits add to a request: p50/p90 of one cheap request, in process.

    .venv/bin/python -m bench.auth_overhead [--requests 2000]

The real app (ASGI, no network hop for HTTP) over an embedded Redis, three ways: no gate (auth
code absent), auth on with a key without limits, and a key with RPM and TPM limits (the Lua
script counts the request; TPM is charged at the end). `GET /api/version` does no other Redis
work, so the difference is the key check and limits.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from router.api.app import create_app
from router.api.auth import Gate
from router.catalog.catalog import Catalog
from router.catalog.keys import KeyStore, new_key
from router.catalog.store import CatalogStore
from router.dispatch.generation import Generations, ServeHandles
from router.dispatch.inbox import EventInbox
from router.dispatch.leases import Leases
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.driver.redis_server import EmbeddedRedis
from router.settings import Settings


async def _timings(url: str, mode: str, requests: int) -> list[float]:
    store = CatalogStore.from_url(url)
    metrics = RouterMetrics()
    generations = Generations(
        ServeHandles(), metrics, EventInbox(secrets.token_bytes(32)), Leases(store, None, "bench")
    )
    settings = Settings(auth="required")
    gate = None if mode == "none" else Gate.for_store(store, "required", "127.0.0.1")
    app = create_app(settings, Catalog(store), generations, ClusterMetrics(metrics, None, "b"), gate=gate)
    rpm, tpm = (10**9, 10**12) if mode == "limited" else (None, None)
    secret = await KeyStore(store.redis).create(new_key(f"bench-{mode}", "inference", rpm=rpm, tpm=tpm))
    headers = {"Authorization": f"Bearer {secret}"}
    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        for i in range(requests + 100):
            started = time.perf_counter()
            response = await client.get("/api/version", headers=headers)
            if i >= 100:  # warm-up: connections, script load
                out.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    await store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp))
        url = redis.start()
        try:
            results = {mode: asyncio.run(_timings(url, mode, args.requests)) for mode in ("none", "key", "limited")}
        finally:
            redis.stop()
    base = statistics.median(results["none"])
    for mode, times in results.items():
        p50, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        print(f"{mode:8s} p50 {p50 * 1e3:.3f} ms  p90 {p90 * 1e3:.3f} ms  added p50 {(p50 - base) * 1e3:+.3f} ms")


if __name__ == "__main__":
    main()
