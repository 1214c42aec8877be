"""Start a generation on a model's worker deployment and read its events, with errors mapped.

The first batch is awaited before a response starts, so anything that fails early (a bad
parameter, a prompt that does not fit, a dead replica) still gets a real HTTP status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from router.catalog.catalog import ModelRecord
from router.catalog.limits import Usage
from router.dispatch.availability import Availability
from router.dispatch.failures import RETRY_AFTER_S, map_error
from router.dispatch.handles import Call, WorkerHandle, WorkerHandles
from router.dispatch.inbox import EventInbox, Incoming
from router.dispatch.leases import Lease, Leases
from router.dispatch.metrics import GenerationObserver, RouterMetrics
from router.errors import EngineError, HerdError, Overloaded, ReplicaLost, TimedOut
from router.ids import new_request_id
from router.timing import added_ns, now_ns
from workers.events import (
    EmbedRequest,
    EmbedResult,
    Event,
    Final,
    GenerationRequest,
)

log = logging.getLogger("herd.generation")
# Placing a replica again takes a node joining and an engine starting: tens of seconds at least.
NO_REPLICA_RETRY_AFTER_S = 10
# How often a request still waiting for its first answer looks again whether the model has replicas.
NO_REPLICA_CHECK_S = 1.0
T = TypeVar("T")


@dataclass
class EventStream:
    """Events of one generation; iterate once. Leaving early cancels the engine request."""

    _first: list[Event]
    _rest: Incoming
    started_ns: int = 0
    _observer: GenerationObserver | None = None
    _lease: Lease | None = None
    final: Final | None = field(default=None)
    _first_token_ns: int = 0
    _last_token_ns: int = 0
    request_id: str = ""
    _usage: Usage | None = None

    def router_ns(self) -> int:
        """The router's added time so far: its wall time for the request minus the worker's own time."""
        return added_ns(self.started_ns, self.final.worker_ns if self.final else 0)

    async def __aiter__(self) -> AsyncIterator[Event]:
        batch: list[Event] | None = self._first
        try:
            while batch is not None:
                for event in batch:
                    if isinstance(event, Final):
                        self.final = event
                        if self._usage is not None:
                            self._usage.add(event.prompt_tokens, event.output_tokens)
                    elif event.tokens:
                        self._last_token_ns = now_ns()
                        self._first_token_ns = self._first_token_ns or self._last_token_ns
                    yield event
                if self.final is not None:
                    break  # `Final` is the worker's last event
                try:
                    batch = await anext(self._rest)
                except StopAsyncIteration:
                    batch = None
                except Exception as exc:
                    raise map_error(exc) from exc
            if self.final is not None and self._observer is not None:
                first, last = self._first_token_ns, self._last_token_ns
                self._observer.finished(self.final, self.started_ns, first, last, now_ns(), self.router_ns())
        finally:
            if self.final is None:
                # The client went away (or the stream broke): stop the engine request too.
                self.cancel()
            self._rest.release()
            if self._observer is not None:
                self._observer.closed()
            if self._lease is not None:
                self._lease.release()
        if self.final is None:
            raise EngineError("the model's engine ended the stream without finishing")

    def failed(self, exc: BaseException) -> HerdError:
        """A failure after the response started: logged once (with the request id), counted, and
        returned as the error the encoder writes in-band."""
        err = map_error(exc)
        unexpected = isinstance(err, EngineError)
        log.log(logging.ERROR if unexpected else logging.WARNING, "request %s failed mid-stream: %s",
                self.request_id, err.message, exc_info=exc if unexpected else None)  # fmt: skip
        if self._observer is not None:
            self._observer.failed(type(err).__name__)
        return err

    def cancel(self) -> None:
        self._rest.cancel()

    def abandon(self) -> None:
        """For a stream that will never be iterated (a sibling choice failed to start): stop it."""
        self.cancel()
        if self._observer is not None:
            self._observer.closed()
        if self._lease is not None:
            self._lease.release()


class Generations:
    """Routes generation requests to worker deployments and records the router's added time."""

    def __init__(
        self,
        workers: WorkerHandles,
        metrics: RouterMetrics,
        inbox: EventInbox,
        leases: Leases,
        timeout_s: float = 600.0,
        availability: Availability | None = None,
    ) -> None:
        self._workers = workers
        self._availability = availability  # None: no Serve controller to ask (tests, bench)
        self._metrics = metrics
        self._inbox = inbox
        self.leases = leases
        self._timeout_ns = int(timeout_s * 1e9)

    async def open(
        self,
        record: ModelRecord,
        request: GenerationRequest,
        api: str,
        started_ns: int,
        keep_alive: Any = None,
        usage: Usage | None = None,
    ) -> EventStream:
        """`started_ns` is when the request reached the router, so parsing counts as router time.
        The model is loaded first if it is not (Ollama's `keep_alive` then says for how long).
        `usage` (the API key's tally) gets the tokens of the generation once it finishes."""
        lease = await self.leases.acquire(record, keep_alive)
        handle = self._handle(record, lease)
        observer = self._metrics.generation(record.name, api)
        deadline = started_ns + self._timeout_ns
        try:
            try:
                incoming, first = await self._start(record, handle, request, deadline)
            except ReplicaLost:
                # The replica died before sending anything: once more, on another replica, under a
                # new id so nothing late from the first attempt can mix in.
                await self._require_running(record)
                retry = replace(request, request_id=new_request_id())
                incoming, first = await self._start(record, handle, retry, deadline)
        except BaseException:
            observer.closed()
            lease.release()
            raise
        return EventStream(first, incoming, started_ns, observer, lease, request_id=request.request_id, _usage=usage)

    async def open_choices(
        self,
        record: ModelRecord,
        request: GenerationRequest,
        n: int,
        api: str,
        started_ns: int,
        usage: Usage | None = None,
    ) -> list[EventStream]:
        """`n` independent generations of one request (OpenAI `n`), started together.

        Each has its own request id, and with a seed, seed + i: reproducible, yet not n copies.
        """
        seed = request.sampling.seed
        requests = [request] + [
            replace(
                request,
                request_id=new_request_id(),
                sampling=replace(request.sampling, seed=None if seed is None else seed + i),
            )
            for i in range(1, n)
        ]
        opened = await asyncio.gather(
            *(self.open(record, r, api, started_ns, usage=usage) for r in requests), return_exceptions=True
        )
        streams = [s for s in opened if isinstance(s, EventStream)]
        failure = next((s for s in opened if isinstance(s, BaseException)), None)
        if failure is not None:
            for s in streams:
                s.abandon()
            raise failure
        return streams

    async def _start(
        self, record: ModelRecord, handle: WorkerHandle, request: GenerationRequest, deadline_ns: int
    ) -> tuple[Incoming, list[Event]]:
        call = handle.generate_to.remote(request, self._inbox.address)
        time_left_s = max(deadline_ns - now_ns(), 0) / 1e9
        incoming = self._inbox.open(request.request_id, call, call.cancel, time_left_s)
        return incoming, await self._while_replicas_run(record, _first_batch(incoming))

    async def _while_replicas_run(self, record: ModelRecord, work: Awaitable[T]) -> T:
        """`work` (a call's first answer), unless every replica of the model goes away meanwhile:
        Serve holds a call that finds no replica until one returns, so the check repeats while it
        waits, and cancelling `work` cancels the call."""
        if self._availability is None:
            return await work
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=NO_REPLICA_CHECK_S)
                if done:
                    return task.result()
                await self._require_running(record)
        finally:
            task.cancel()

    async def embed(
        self, record: ModelRecord, request: EmbedRequest, keep_alive: Any = None, usage: Usage | None = None
    ) -> EmbedResult:
        result = await self._once(record, keep_alive, lambda handle: handle.embed.remote(request))
        if usage is not None:
            usage.add(result.prompt_tokens, 0)
        return result

    async def count_tokens(self, record: ModelRecord, request: GenerationRequest) -> int:
        """The prompt's token count as the model's worker renders it (loading the model if needed)."""
        return await self._once(record, None, lambda handle: handle.count_tokens.remote(request))

    async def _once(self, record: ModelRecord, keep_alive: Any, start: Callable[[WorkerHandle], Call[T]]) -> T:
        """One unary worker call under a lease on the model, with errors mapped for clients."""
        lease = await self.leases.acquire(record, keep_alive)
        handle = self._handle(record, lease)
        try:
            call = start(handle)
            try:
                return await self._while_replicas_run(record, call)
            except BaseException:
                call.cancel()
                raise
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            lease.release()

    def _handle(self, record: ModelRecord, lease: Lease) -> WorkerHandle:
        try:
            if self._availability is not None and self._availability.known_unservable(
                record.deployment_id, record.spec.gpus_per_replica
            ):
                raise self._unservable(record)
            handle = self._workers.get(record.deployment_id)
        except BaseException:
            lease.release()
            raise
        return handle

    async def _require_running(self, record: ModelRecord) -> None:
        """A 503 now, rather than a request queued until a node that can hold the model returns."""
        gpus = record.spec.gpus_per_replica
        if self._availability is not None and await self._availability.unservable(record.deployment_id, gpus):
            raise self._unservable(record)

    @staticmethod
    def _unservable(record: ModelRecord) -> Overloaded:
        return Overloaded(
            f"model '{record.name}' has no running replica and no node with the"
            f" {record.spec.gpus_per_replica:g} GPU(s) one needs (a node left?); try again shortly",
            retry_after=NO_REPLICA_RETRY_AFTER_S,
        )

    async def readiness(self, deployment_ids: list[str], timeout_s: float = 5.0) -> dict[str, str]:
        """Per deployment: "ready" when one of its replicas' engines answers within `timeout_s`."""

        async def probe(deployment_id: str) -> str:
            try:
                await asyncio.wait_for(self._workers.get(deployment_id).ping.remote(), timeout_s)
            except Exception as exc:
                return f"not ready: {map_error(exc).message}"
            return "ready"

        states = await asyncio.gather(*(probe(d) for d in deployment_ids))
        return dict(zip(deployment_ids, states, strict=True))

    async def stats(self, deployment_ids: list[str]) -> dict[str, Any]:
        """Engine counters of one replica per model (requests the engine still holds, process id)."""
        return {d: await self._workers.get(d).stats.remote() for d in deployment_ids}


class ServeHandles:
    """Each model's worker is its own Serve application named by its deployment id (see
    router/manager/lifecycle.py); a handle stays valid while its application stops and starts again."""

    def __init__(self) -> None:
        self._handles: dict[str, WorkerHandle] = {}

    def get(self, deployment_id: str) -> WorkerHandle:
        from ray import serve

        handle = self._handles.get(deployment_id)
        if handle is None:
            try:
                # Calls go straight to the replica's inter-deployment gRPC server rather than as
                # Ray actor tasks with object refs: measured at one stream, the call from the
                # router reaching the worker took 2.9 ms instead of 5.7 (bench.latency_split shows
                # the whole hop). Nothing here passes a call's result on as an ObjectRef.
                deployment = serve.get_deployment_handle(deployment_id, app_name=deployment_id)
                handle = cast(WorkerHandle, deployment.options(_by_reference=False))
            except KeyError:  # unloaded between the lease and here
                raise Overloaded(
                    "the model has no running replica yet, try again shortly", retry_after=RETRY_AFTER_S
                ) from None
            self._handles[deployment_id] = handle
        return handle


async def _first_batch(incoming: Incoming) -> list[Event]:
    try:
        first: list[Event] = await anext(incoming)
    except StopAsyncIteration:
        incoming.release()
        raise EngineError("the model's engine returned nothing") from None
    except TimedOut:
        incoming.cancel()
        raise
    except Exception as exc:
        incoming.release()
        raise map_error(exc) from exc
    except BaseException:  # cancelled while waiting for the first token: the client left
        incoming.cancel()
        raise
    return first
