"""Cluster-wide metrics: every replica reports its Prometheus text to one hub; any router serves all.

Clients reach router replicas through one port, so Prometheus cannot scrape each replica by
address. Instead each worker replica sends its vLLM engine metrics (`vllm:*`), and each router
replica its own, to `MetricsHub` every few seconds; whichever router answers `/metrics` adds the
fresh snapshots, labelled by model and replica, to its own live figures.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Metric, generate_latest
from prometheus_client.registry import Collector

log = logging.getLogger("herd.telemetry")

HUB_NAME = "herd-metrics"
REPORT_EVERY_S = 5.0
# Three missed reports: the replica is gone (or stuck) and its figures leave /metrics.
STALE_AFTER_S = 3 * REPORT_EVERY_S


class MetricsHub:
    """A small Ray actor: the latest snapshot from every reporting replica."""

    def __init__(self) -> None:
        self._snapshots: dict[str, tuple[float, dict[str, str], str]] = {}

    def put(self, source: str, labels: dict[str, str], text: str) -> None:
        self._snapshots[source] = (time.monotonic(), labels, text)

    def fresh(self, exclude: str = "") -> list[tuple[dict[str, str], str]]:
        """Labels and text of every replica that reported recently (but `exclude`)."""
        now = time.monotonic()
        for source in [s for s, (at, _, _) in self._snapshots.items() if now - at > STALE_AFTER_S]:
            del self._snapshots[source]
        return [(labels, text) for source, (_, labels, text) in self._snapshots.items() if source != exclude]


def vllm_metrics_text() -> str:
    """This process's vLLM engine metrics (vLLM registers them on prometheus_client's default registry)."""
    return generate_latest(_Only(REGISTRY, "vllm:")).decode()


class _Only:
    """A view of a registry with only the families whose names start with `prefix`."""

    def __init__(self, registry: Collector, prefix: str) -> None:
        self._registry = registry
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        return (family for family in self._registry.collect() if family.name.startswith(self._prefix))


async def report_forever(hub: Any, source: str, labels: Mapping[str, str], text: Callable[[], str]) -> None:
    """Send `text()` to the hub (a `MetricsHub` actor handle) every REPORT_EVERY_S.

    A missing or busy hub only costs a report: metrics must never take a replica down.
    """
    while True:
        try:
            await hub.put.remote(source, dict(labels), text())
        except Exception:
            log.warning("could not report metrics to the hub", exc_info=True)
        await asyncio.sleep(REPORT_EVERY_S)
