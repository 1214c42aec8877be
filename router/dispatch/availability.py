"""Whether a model has a running engine replica, as Serve's controller last reported it.

Ray Serve queues a request for a deployment with no running replica until one starts. When a node
leaves and takes a model's only replicas with it, that can take minutes, or never come (no GPU
left to place them on), and the client would hang until the request timeout. The router answers
such a request at once with a 503 and Retry-After instead.

The check adds nothing to a request while replicas run: it reads a cached snapshot and refreshes
it in the background at most once per `max_age_s`. Only a snapshot that says "none running" is
read again before a request is refused, so a model that came back is not refused from stale data.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("herd.availability")

# deployment id -> replicas Serve reports RUNNING; a deployment it does not list is unknown.
ReadCounts = Callable[[], Awaitable[dict[str, int]]]


class Availability:
    def __init__(
        self,
        read: ReadCounts,
        *,
        max_age_s: float = 1.0,
        recheck_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._recheck_s = recheck_s
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._read_at = -math.inf
        self._refreshing: asyncio.Task[None] | None = None

    async def none_running(self, deployment_id: str) -> bool:
        """True when Serve lists the deployment with no running replica, in a snapshot at most
        `recheck_s` old. Unknown deployments (not deployed yet, being loaded) are never refused."""
        age = self._clock() - self._read_at
        if age > self._max_age_s:
            self._refresh()
        if self._counts.get(deployment_id) != 0:
            return False
        if age > self._recheck_s:
            await asyncio.shield(self._refresh())
        return self._counts.get(deployment_id) == 0

    def _refresh(self) -> asyncio.Task[None]:
        """One read in flight at a time, shared by every request that wants it."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._read_counts())
        return self._refreshing

    async def _read_counts(self) -> None:
        try:
            self._counts = await self._read()
        except Exception as exc:  # the controller restarting: keep the last snapshot
            log.warning("cannot read replica states from Serve: %s", exc)
        self._read_at = self._clock()


async def serve_running_counts() -> dict[str, int]:
    """Running replicas per deployment, from Serve's controller (a thread: `serve.status` blocks)."""
    from ray import serve

    status = await asyncio.to_thread(serve.status)
    return {
        name: deployment.replica_states.get("RUNNING", 0)  # type: ignore[call-overload]
        for app in status.applications.values()
        for name, deployment in app.deployments.items()
    }
