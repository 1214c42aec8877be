"""Building blocks for router tests: records, a catalog seeded in the real test Redis, an app, and
the one worker double (`FakeWorker`, reached like a Serve handle through `LocalHandles`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from ray.exceptions import ActorDiedError
from starlette.applications import Starlette

from router.api.app import create_app
from router.api.auth import Gate
from router.catalog.catalog import Catalog, LoadedModel, ModelRecord
from router.catalog.names import parse_name
from router.catalog.store import CatalogStore
from router.dispatch.generation import EventStream, Generations
from router.dispatch.inbox import EventInbox
from router.dispatch.leases import Leases
from router.dispatch.metrics import ClusterMetrics, RouterMetrics
from router.errors import Overloaded
from router.settings import Settings
from workers.channel import EventSender
from workers.events import Delta, EmbedRequest, EmbedResult, Event, Final, GenerationRequest
from workers.spec import ModelSpec

# The tests' cluster secret: the fake workers sign their event frames with it.
CHANNEL_SECRET = b"herd-tests-channel-secret-32-byt"


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


class FakeWorker:
    """The tests' worker (a `workers.surface.WorkerSurface`): sends scripted event batches to the
    router's inbox over the real event channel, one batch per `pause_s`, as `ModelWorker` does.

    `deaths`: the first calls fail as if their replica died before answering. `embed_error`: what
    `embed` raises (as Ray re-raises a worker's exception); otherwise each input gets (0.6, 0.8).
    """

    def __init__(
        self,
        batches: Sequence[list[Event]] = (),
        pause_s: float = 0.0,
        deaths: int = 0,
        embed_error: Exception | None = None,
    ) -> None:
        self._batches = batches
        self._pause_s = pause_s
        self._deaths = deaths
        self.embed_error = embed_error
        self.requests: list[GenerationRequest] = []
        self.embeds: list[EmbedRequest] = []
        self.sent = 0  # batches the channel has taken
        self.cancelled = 0  # generate_to calls the router cancelled (as Ray cancels a Serve call)

    async def generate_to(self, request: GenerationRequest, inbox: str) -> None:
        self.requests.append(request)
        if len(self.requests) <= self._deaths:
            raise ActorDiedError()
        sender = EventSender(CHANNEL_SECRET)
        try:
            await sender.forward(inbox, request.request_id, self._paced())
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            sender.close()

    async def _paced(self) -> AsyncIterator[list[Event]]:
        for batch in self._batches:
            await asyncio.sleep(self._pause_s)
            yield batch
            self.sent += 1  # counted once the sender has handed it on and asks for the next

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        self.embeds.append(request)
        if self.embed_error is not None:
            raise self.embed_error
        return EmbedResult(tuple((0.6, 0.8) for _ in request.inputs), 3 * len(request.inputs), 1_000)

    async def count_tokens(self, request: GenerationRequest) -> int:
        """A stand-in count: one token per word of every message and tool (the engine uses its tokenizer)."""
        self.requests.append(request)
        return sum(len(str(m.get("content", "")).split()) for m in request.messages) + len(request.prompt.tools)  # type: ignore[union-attr]

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, Any]:
        return {"unfinished": 0, "pid": os.getpid()}


class _LocalMethod:
    """`handle.method.remote(*args)` for an in-process worker: a task, awaitable and cancellable
    like a Serve response. The last call's task is kept for tests that check cancellation."""

    def __init__(self, method: Callable[..., Awaitable[Any]], calls: list[asyncio.Future[Any]]) -> None:
        self._method = method
        self._calls = calls

    def remote(self, *args: Any) -> asyncio.Future[Any]:
        call = asyncio.ensure_future(self._method(*args))
        self._calls.append(call)
        return call


class LocalHandle:
    """A worker reached as the router reaches a Ray Serve deployment."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.calls: list[asyncio.Future[Any]] = []

    def __getattr__(self, name: str) -> _LocalMethod:
        return _LocalMethod(getattr(self.worker, name), self.calls)


class LocalHandles:
    """`router.dispatch.handles.WorkerHandles` over in-process workers, by deployment id."""

    def __init__(self, workers: dict[str, Any]) -> None:
        self.handles = {deployment: LocalHandle(worker) for deployment, worker in workers.items()}

    def get(self, deployment_id: str) -> Any:
        if deployment_id not in self.handles:
            raise Overloaded("the model has no running replica yet, try again shortly", retry_after=2)
        return self.handles[deployment_id]


async def collect(events: EventStream) -> tuple[str, Final]:
    """A whole answer's text and its `Final`."""
    parts = [event.text async for event in events if isinstance(event, Delta)]
    assert events.final is not None
    return "".join(parts), events.final


def open_streams(inbox: EventInbox) -> int:
    """Generations the inbox still routes events for (0 once every stream has ended)."""
    return len(inbox._queues)


def generations(
    redis_url: str, workers: Any, metrics: RouterMetrics, timeout_s: float = 600.0, inbox: EventInbox | None = None
) -> Generations:
    leases = Leases(CatalogStore.from_url(redis_url), None, "test-router")
    return Generations(LocalHandles(workers), metrics, inbox or EventInbox(CHANNEL_SECRET), leases, timeout_s)


def app(
    redis_url: str,
    workers: Any,
    metrics: RouterMetrics | None = None,
    settings: Settings | None = None,
    *,
    auth: bool = False,
) -> Starlette:
    """The app (with `auth`, the production key gate for `settings`); `serving(client)` starts its
    event inbox on the TestClient's loop, for generations."""
    metrics = metrics or RouterMetrics()
    settings = settings or Settings()
    store = CatalogStore.from_url(redis_url)
    inbox = EventInbox(CHANNEL_SECRET)
    gens = generations(redis_url, workers, metrics, inbox=inbox)
    gate = Gate.for_store(store, settings.auth, settings.host) if auth else None
    built = create_app(settings, Catalog(store), gens, ClusterMetrics(metrics, None, "t"), gate=gate)
    built.state.inbox = inbox
    return built


def serving(client: Any) -> Any:
    """A TestClient (entered) whose app can stream generations: its inbox listens on loopback."""
    client.portal.call(client.app.state.inbox.start, "127.0.0.1")
    return client
