"""The router ingress: a Ray Serve deployment whose replicas serve both APIs over HTTP themselves."""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray import serve

from router.api.app import create_app
from router.api.auth import Gate
from router.api.limits import limit_heap
from router.api.rag.service import RagStores
from router.api.server import HttpServer
from router.catalog.catalog import Catalog
from router.catalog.store import CatalogStore
from router.dispatch.availability import Availability, serve_cluster_view
from router.dispatch.generation import Generations, ServeHandles
from router.dispatch.handles import ManagerHandle
from router.dispatch.inbox import EventInbox
from router.dispatch.leases import Leases
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.errors import ServerStopped, ShuttingDown
from router.rag.actor import open_vectors
from router.rag.bindings import Bindings
from router.rag.files import FileStore
from router.settings import Settings
from workers.telemetry import report_forever

# Ray's own label on every node (ray._raylet.RAY_NODE_ID_KEY).
NODE_ID_LABEL = "ray.io/node-id"


class Router:
    """Router replica: serves the Starlette app on Herd's port itself, with handles to every worker."""

    # Async so the HTTP server runs on the replica's event loop, which Ray keeps running.
    async def __init__(  # type: ignore[misc]
        self,
        settings: Settings,
        redis_url: str,
        manager: ManagerHandle | None,
        hub: Any | None,
        channel_secret: bytes,
        vectors: Any | None = None,
    ) -> None:
        limit_heap(settings.router_memory_mb)
        own = RouterMetrics()
        replica = serve.get_replica_context().replica_id.unique_id
        # Workers send generation events here (see router/dispatch/inbox.py); on the node's address so
        # workers on other nodes reach it too.
        self._inbox = EventInbox(channel_secret)
        await self._inbox.start(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        metrics = ClusterMetrics(own, hub, f"router#{replica}")
        self._store = CatalogStore.from_url(redis_url)
        leases = Leases(
            self._store,
            manager,
            replica,
            default_keep_alive=settings.keep_alive,
            load_timeout_s=settings.load_timeout_s,
        )
        self._tasks = [asyncio.create_task(leases.heartbeat_forever())]
        if hub is not None:
            self._tasks.append(
                asyncio.create_task(report_forever(hub, metrics.source, metrics.labels, metrics.own_text))
            )
        generations = Generations(ServeHandles(), own, self._inbox, leases, settings.request_timeout_s,
                                  Availability(serve_cluster_view))  # fmt: skip
        # No vector store (a router deployed by hand, as bench.router_only does): no RAG routes.
        rag = None
        if settings.qdrant_url or vectors is not None:
            rag = RagStores(open_vectors(settings.qdrant_url, vectors), FileStore.from_url(redis_url),
                            Bindings.from_url(redis_url))  # fmt: skip
        gate = Gate.for_store(self._store, settings.auth, settings.host)
        app = create_app(settings, Catalog(self._store), generations, metrics, manager, rag, gate)
        self._server = HttpServer(app, settings.host, settings.port, access_log=settings.access_log)
        await self._server.start()

    async def check_health(self) -> None:
        if not self._server.running():
            raise ServerStopped("the router's HTTP server stopped")

    def __del__(self) -> None:
        # Serve calls this when it stops the replica (herd serve stopping, or a scale-down):
        # streams in flight end with an in-band error before the server closes.
        inbox = getattr(self, "_inbox", None)
        if inbox is not None:
            inbox.fail_all(ShuttingDown("the server is shutting down; retry on another instance", retry_after=5))
        for part in (getattr(self, "_server", None), inbox):
            if part is not None:
                part.close()


def bind_router(
    settings: Settings,
    redis_url: str,
    manager: ManagerHandle | None,
    hub: Any | None,
    channel_secret: bytes,
    vectors: Any | None = None,
    *,
    node_id: str,
) -> Any:
    """The router ingress, on the Ray node `node_id`. Workers are separate Serve applications that
    `manager` starts and stops; `channel_secret` (the cluster's, made by the driver) signs their
    event frames."""
    # Clients reach router replicas over HTTP directly, not through Serve, so Serve's
    # per-replica request limit does not apply to them. They listen on the node that runs
    # `herd serve` (on Akash the Ray head, where the ingress points); Serve would spread them
    # over every node with a free CPU, so they are pinned to this one. By node id, not address:
    # nodes may share one (containers on one host, or the two-node test on one machine).
    router = serve.deployment(
        name="router",
        num_replicas=settings.router_replicas,
        logging_config=settings.serve_logging(),
        ray_actor_options={"label_selector": {NODE_ID_LABEL: node_id}},
        # Stopping (SIGTERM to herd serve) gives in-flight streams their in-band error, then goes.
        graceful_shutdown_wait_loop_s=0.2,
        graceful_shutdown_timeout_s=2,
    )(Router)
    return router.bind(settings, redis_url, manager, hub, channel_secret, vectors)
