"""The Ray Serve application: one worker deployment per model, and the router ingress in front."""

from __future__ import annotations

from typing import Any

import ray
from ray import serve

from router.app import create_app
from router.catalog import Catalog, ModelRecord
from router.generation import Generations
from router.http_server import HttpServer
from router.inbox import EventInbox
from router.metrics import RouterMetrics
from router.settings import Settings
from workers.deployment import worker_deployment


class Router:
    """Router replica: serves the Starlette app on Herd's port itself, with handles to every worker."""

    # Async so the HTTP server runs on the replica's event loop, which Ray keeps running.
    async def __init__(self, settings: Settings, records: list[ModelRecord], workers: dict[str, Any]) -> None:  # type: ignore[misc]
        metrics = RouterMetrics()
        inbox = EventInbox()
        await inbox.start(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        app = create_app(settings, Catalog(records), Generations(workers, metrics, inbox), metrics)
        self._server = HttpServer(app, settings.host, settings.port, access_log=settings.access_log)
        await self._server.start()

    async def check_health(self) -> None:
        if not self._server.running():
            raise RuntimeError("the router's HTTP server stopped")

    def __del__(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.stop()


def build_application(settings: Settings, prepared: list[tuple[ModelRecord, str]]) -> Any:
    """Bind the deployment graph. `prepared` pairs each record with the path vLLM loads."""
    # A log line per request costs CPU the engines need; errors are still logged.
    logs = settings.serve_logging()
    workers = {
        record.deployment_id: worker_deployment(record.spec, record.deployment_id, logs).bind(record.spec, path)
        for record, path in prepared
    }
    return bind_router(settings, [record for record, _ in prepared], workers)


def bind_router(settings: Settings, records: list[ModelRecord], workers: dict[str, Any]) -> Any:
    """The router ingress over already-bound worker deployments (one per record's deployment id)."""
    router = serve.deployment(
        name="router",
        num_replicas=settings.router_replicas,
        max_ongoing_requests=4096,
        logging_config=settings.serve_logging(),
    )(Router)
    return router.bind(settings, records, workers)
