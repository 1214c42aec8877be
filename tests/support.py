"""Building blocks for router tests: records, a catalog seeded in the real test Redis, and an app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette

from router.api.app import create_app
from router.catalog.catalog import Catalog, LoadedModel, ModelRecord
from router.catalog.names import parse_name
from router.catalog.store import CatalogStore
from router.dispatch.generation import Generations
from router.dispatch.inbox import EventInbox
from router.dispatch.leases import Leases
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.settings import Settings
from workers.spec import ModelSpec


def record(name: str, kind: str = "generate", context_length: int = 2048, **fields: Any) -> ModelRecord:
    parsed = parse_name(name)
    spec = ModelSpec(name=name, source={"hf": "/x"}, kind=kind)  # type: ignore[arg-type]
    return ModelRecord(
        name=parsed.display,
        deployment_id=parsed.deployment_id,
        spec=spec,
        model_path="/x",
        size=0,
        digest="d",
        modified_ns=0,
        context_length=context_length,
        **fields,
    )


def seed(redis_url: str, records: Iterable[ModelRecord], *, loaded: bool = True) -> None:
    """Register `records` (and mark their deployments loaded) through a store of its own, so the
    app's store opens its connections on the app's event loop."""

    async def run() -> None:
        store = CatalogStore.from_url(redis_url)
        catalog = Catalog(store)
        for r in records:
            await catalog.put(r)
            if loaded:
                await Catalog(store).set_loaded(r.deployment_id, LoadedModel(name=r.name, record=r))
        await store.close()

    asyncio.run(run())


def generations(redis_url: str, workers: Any, metrics: RouterMetrics, timeout_s: float = 600.0) -> Generations:
    leases = Leases(CatalogStore.from_url(redis_url), None, "test-router")
    return Generations(workers, metrics, EventInbox(), leases, timeout_s)


def app(redis_url: str, workers: Any, metrics: RouterMetrics | None = None) -> Starlette:
    metrics = metrics or RouterMetrics()
    catalog = Catalog(CatalogStore.from_url(redis_url))
    return create_app(Settings(), catalog, generations(redis_url, workers, metrics), ClusterMetrics(metrics, None, "t"))
