"""Prometheus metrics of one router replica, on its own registry (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# The router's own share of a request is sub-millisecond when healthy; the top buckets catch stalls.
ADDED_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RouterMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.router_added = Histogram(
            "herd_router_added_seconds",
            "Time a request spent in the router and its hops to the engine worker: "
            "end-to-end time in the router minus the worker's own time.",
            ["model", "api"],
            buckets=ADDED_BUCKETS,
            registry=self.registry,
        )

    def observe_router_added(self, model: str, api: str, ns: int) -> None:
        self.router_added.labels(model, api).observe(ns / 1e9)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
