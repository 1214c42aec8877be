"""The Ray Serve application: one worker deployment per model, and the router ingress in front."""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray import serve

from router.app import create_app
from router.catalog import Catalog, ModelRecord
from router.generation import Generations
from router.http_server import HttpServer
from router.inbox import EventInbox
from router.metrics import ClusterMetrics, RouterMetrics
from router.settings import Settings
from workers.deployment import worker_deployment
from workers.telemetry import report_forever


class Router:
    """Router replica: serves the Starlette app on Herd's port itself, with handles to every worker."""

    # Async so the HTTP server runs on the replica's event loop, which Ray keeps running.
    async def __init__(  # type: ignore[misc]
        self, settings: Settings, records: list[ModelRecord], workers: dict[str, Any], hub: Any | None
    ) -> None:
        own = RouterMetrics()
        # Workers send generation events here (see router/inbox.py); on the node's address so
        # workers on other nodes reach it too.
        self._inbox = EventInbox()
        await self._inbox.start(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        metrics = ClusterMetrics(own, hub, f"router#{serve.get_replica_context().replica_id.unique_id}")
        if hub is not None:
            self._reporting = asyncio.create_task(report_forever(hub, metrics.source, metrics.labels, metrics.own_text))
        app = create_app(
            settings, Catalog(records), Generations(workers, own, self._inbox, settings.request_timeout_s), metrics
        )
        self._server = HttpServer(app, settings.host, settings.port, access_log=settings.access_log)
        await self._server.start()

    async def check_health(self) -> None:
        if not self._server.running():
            raise RuntimeError("the router's HTTP server stopped")

    def __del__(self) -> None:
        for part in (getattr(self, "_server", None), getattr(self, "_inbox", None)):
            if part is not None:
                part.close()


def build_application(settings: Settings, prepared: list[tuple[ModelRecord, str]], hub: Any) -> Any:
    """Bind the deployment graph. `prepared` pairs each record with the path vLLM loads; every
    replica reports its metrics to `hub` (a `MetricsHub` actor)."""
    # A log line per request costs CPU the engines need; errors are still logged.
    logs = settings.serve_logging()
    workers = {
        record.deployment_id: worker_deployment(record.spec, record.deployment_id, logs).bind(record.spec, path, hub)
        for record, path in prepared
    }
    return bind_router(settings, [record for record, _ in prepared], workers, hub)


def bind_router(settings: Settings, records: list[ModelRecord], workers: dict[str, Any], hub: Any | None) -> Any:
    """The router ingress over already-bound worker deployments (one per record's deployment id)."""
    # Clients reach router replicas over HTTP directly, not through Serve, so Serve's
    # per-replica request limit does not apply to them.
    router = serve.deployment(
        name="router", num_replicas=settings.router_replicas, logging_config=settings.serve_logging()
    )(Router)
    return router.bind(settings, records, workers, hub)
