"""Which models have running replicas: load on demand, unload after keep_alive, pull new models.

`ModelManager` is one named Ray actor per cluster (the CLI creates it). Each model's worker
deployment is its own Ray Serve application, named by its deployment id, so models can start and
stop without touching the router or each other. Router replicas count their requests in Redis
(`CatalogStore.begin/end`); every second the manager unloads models that no router is using and
whose keep-alive ran out, and models no catalog name refers to any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray import serve

from router.catalog.catalog import Catalog, LoadedModel, ModelRecord
from router.catalog.keep_alive import expiry_ns
from router.catalog.store import CatalogStore
from router.config import ClusterConfig
from router.dispatch.handles import PullProgress
from router.manager.pulls import PullJobs
from router.settings import Settings
from workers.deployment import worker_deployment

MANAGER_NAME = "herd-models"
TICK_S = 1.0

log = logging.getLogger("herd.lifecycle")


class ModelManager:
    """Starts and stops worker applications; every method is safe to call from any router replica."""

    def __init__(
        self, settings: Settings, config: ClusterConfig, redis_url: str, hub: Any | None, channel_secret: bytes
    ) -> None:
        self._settings = settings
        self._channel_secret = channel_secret  # workers sign their event frames with it
        self._store = CatalogStore.from_url(redis_url)
        self._hub = hub
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._catalog = Catalog(self._store)
        self._pulls = PullJobs(self._catalog, config, settings.store_dir)
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin unloading idle models (the CLI calls this once the actor exists)."""
        self._start_ticking()

    async def ensure_loaded(self, record_json: str, keep_alive_ns: int | None) -> None:
        """Return once the record's deployment has a running replica; concurrent calls share one load."""
        record = ModelRecord.model_validate_json(record_json)
        self._start_ticking()
        deployment = record.deployment_id
        if deployment not in await self._catalog.loaded():
            task = self._loading.get(deployment)
            if task is None:
                task = asyncio.create_task(self._load(record))
                self._loading[deployment] = task
                task.add_done_callback(lambda _: self._loading.pop(deployment, None))
            await asyncio.shield(task)  # a caller that gives up does not cancel the load
        always = record.spec.always_on
        await self._store.set_expiry(deployment, None if always else expiry_ns(keep_alive_ns))

    async def _load(self, record: ModelRecord) -> None:
        started = time.monotonic()
        logs = self._settings.serve_logging()
        app = worker_deployment(record.spec, record.deployment_id, logs).bind(
            record.spec, record.model_path, self._hub, self._channel_secret
        )
        # serve.run blocks until the application is RUNNING (or raises if it cannot start).
        await asyncio.to_thread(serve.run, app, name=record.deployment_id, route_prefix=None)
        loaded = LoadedModel(
            name=record.name,
            loaded_ns=time.time_ns(),
            load_s=round(time.monotonic() - started, 1),
            always_on=record.spec.always_on,
            record=record,
        )
        await self._catalog.set_loaded(record.deployment_id, loaded)
        log.warning("loaded %s in %.1fs", record.name, time.monotonic() - started)

    async def unload(self, deployment_id: str) -> None:
        """Stop a deployment's replicas now (a keep_alive 0 request, or nothing uses it any more)."""
        await self._store.clear_loaded(deployment_id)
        await asyncio.to_thread(serve.delete, deployment_id)

    async def pull(self, name: str, source: str | None, overrides: dict[str, Any] | None = None) -> str:
        """Start (or join) the pull of `name`; returns the job id `pull_progress` reads. `overrides`
        (Modelfile defaults from /api/create) are applied to the record before it is registered."""
        self._start_ticking()
        return await self._pulls.start(name, source, overrides)

    async def pull_progress(self, job_id: str, since: int) -> PullProgress:
        """Progress objects after the first `since`, waiting up to a second for new ones."""
        return await self._pulls.progress(job_id, since)

    def _start_ticking(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            try:
                await self._unload_idle()
            except Exception:  # a Redis hiccup must not stop unloading for the rest of the run
                log.exception("keep-alive check failed")
            await asyncio.sleep(TICK_S)

    async def _unload_idle(self) -> None:
        loaded, busy, expiries = await self._catalog.loaded(), await self._store.busy(), await self._store.expiries()
        in_use = {r.deployment_id for r in await self._catalog.records()}
        now = time.time_ns()
        for deployment, info in loaded.items():
            if busy.get(deployment, 0) > 0 or deployment in self._loading:
                continue
            if deployment not in in_use:
                log.warning("unloading %s: no model name uses it any more", info.name)
                await self.unload(deployment)
                continue
            expires = expiries.get(deployment)
            if not info.always_on and expires is not None and expires <= now:
                log.warning("unloading %s: keep_alive ran out", info.name)
                await self.unload(deployment)
