"""Whether a model can be served now, as Serve's controller and Ray last reported it.

Ray Serve queues a request for a deployment with no running replica until one starts. While a
replica restarts on a node that can hold it, that wait is right (the replacement comes). When a
node leaves and takes a GPU model's only replicas with it and no live node has the GPUs they need,
it can take minutes or never end, and the client would hang until the request timeout. The router
answers such a request at once with a 503 and Retry-After instead.

The check costs a request nothing while replicas run: a request about to be sent looks only at
the view at hand; one still waiting for its first answer after a second asks for a fresh view (one
read shared by every request that asks, at most once per `max_age_s`). Only a view that says
"cannot be served" is read again before a request is refused, so a model that came back is not
refused from stale data. A CPU model's requests never read: any live node can place its replicas.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("herd.availability")


@dataclass(frozen=True)
class ClusterView:
    """What the check needs: replicas Serve reports RUNNING per deployment id (a deployment it does
    not list is unknown), and the most GPUs any one live node has."""

    running: dict[str, int] = field(default_factory=dict)
    node_gpus: float = math.inf  # unknown: assume a replica can be placed


ReadView = Callable[[], Awaitable[ClusterView]]


class Availability:
    def __init__(
        self,
        read: ReadView,
        *,
        max_age_s: float = 1.0,
        recheck_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._view = ClusterView()
        self._read_at = -math.inf
        self._refreshing: asyncio.Task[None] | None = None

    async def unservable(self, deployment_id: str, gpus_per_replica: float) -> bool:
        """True when Serve lists the deployment with no running replica and no live node has the GPUs
        one needs, in a view at most `recheck_s` old. Unknown deployments (not deployed yet, being
        loaded) are never refused; nor is one whose replicas can be placed (Serve is starting them)."""
        if gpus_per_replica <= 0:
            # Any live node can place a CPU replica, so no view refuses one; and a read is not free:
            # serve.status() cloudpickles every deployment's request router, once a second while
            # any request has waited a second for its first token (on a CPU engine, every request).
            # py-spy at one stream found it the largest part of the router replica's own CPU.
            return False
        age = self._clock() - self._read_at
        if age > self._max_age_s:
            self._refresh()
        if not self._view_refuses(deployment_id, gpus_per_replica):
            return False
        if age > self._recheck_s:
            await asyncio.shield(self._refresh())
        return self._view_refuses(deployment_id, gpus_per_replica)

    def known_unservable(self, deployment_id: str, gpus_per_replica: float) -> bool:
        """`unservable` from the view at hand, if it is at most `max_age_s` old; no read at all (a
        request about to be sent must not pay for one, nor make Serve's controller answer it)."""
        fresh = self._clock() - self._read_at <= self._max_age_s
        return fresh and self._view_refuses(deployment_id, gpus_per_replica)

    def _view_refuses(self, deployment_id: str, gpus_per_replica: float) -> bool:
        view = self._view
        return view.running.get(deployment_id) == 0 and gpus_per_replica > view.node_gpus

    def _refresh(self) -> asyncio.Task[None]:
        """One read in flight at a time, shared by every request that wants it."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._read_view())
        return self._refreshing

    async def _read_view(self) -> None:
        try:
            self._view = await self._read()
        except Exception as exc:  # the controller restarting: keep the last snapshot
            log.warning("cannot read replica states from Serve: %s", exc)
        self._read_at = self._clock()


async def serve_cluster_view() -> ClusterView:
    """Running replicas per deployment from Serve's controller, and the live nodes' GPUs from Ray's
    control plane (in a thread: both calls block)."""
    return await asyncio.to_thread(_read_cluster)


def _read_cluster() -> ClusterView:
    import ray
    from ray import serve

    status = serve.status()
    running = {
        name: deployment.replica_states.get("RUNNING", 0)  # type: ignore[call-overload]
        for app in status.applications.values()
        for name, deployment in app.deployments.items()
    }
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    gpus = [float(node["Resources"].get("GPU", 0)) for node in nodes if node["Alive"]]
    return ClusterView(running, max(gpus, default=0.0))
