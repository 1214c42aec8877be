"""The router's inbox: workers connect to it and send the events of the generations it opened.

See `workers/channel.py` for why events bypass Ray's per-item streaming. Each generation gets a
queue keyed by its request id; the Ray Serve call that started it stays open until it ends, so a
failure (bad parameters, a dead replica) still arrives through Ray and is put on the same queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from router.errors import TimedOut
from workers.channel import BadFrame, FrameReader
from workers.events import Event

log = logging.getLogger("herd.inbox")

# After the call returns, the worker has already flushed its last frame; if that frame was lost
# with its connection, the generation ends as an error after this long instead of hanging.
LOST_FINAL_GRACE_S = 10.0


class _CallEnded(Exception):
    pass


def _timed_out() -> TimedOut:
    return TimedOut("the generation ran past the request time limit")


class EventInbox:
    """Accepts worker connections; only frames signed with the cluster's `secret` are read."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._queues: dict[str, asyncio.Queue[list[Event] | BaseException]] = {}
        self._server: asyncio.Server | None = None
        self.address = ""

    async def start(self, host: str) -> None:
        self._server = await asyncio.start_server(self._receive, host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{host}:{port}"

    def open(
        self, request_id: str, call: Awaitable[Any], cancel: Callable[[], Any], time_limit_s: float | None = None
    ) -> Incoming:
        queue: asyncio.Queue[list[Event] | BaseException] = asyncio.Queue()
        self._queues[request_id] = queue
        return Incoming(queue, call, cancel, lambda: self._queues.pop(request_id, None), time_limit_s=time_limit_s)

    def fail_all(self, error: BaseException) -> None:
        """End every open generation with `error` (the router is stopping): each client gets it in-band."""
        for queue in self._queues.values():
            queue.put_nowait(error)

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader(reader, self._secret)
        try:
            await frames.handshake(writer)
            while True:
                for request_id, events in await frames.next():
                    queue = self._queues.get(request_id)
                    if queue is not None:  # a request the client already left is dropped
                        queue.put_nowait(list(events))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker went away; its calls fail through Ray
        except BadFrame as exc:
            log.warning("dropped a connection to the event inbox from %s: %s", writer.get_extra_info("peername"), exc)
        finally:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


class Incoming:
    """One generation's batches: an async iterator, with `cancel` (stop the worker) and `release`."""

    def __init__(
        self,
        queue: asyncio.Queue[list[Event] | BaseException],
        call: Awaitable[Any],
        cancel: Callable[[], Any],
        release: Callable[[], Any],
        grace_s: float = LOST_FINAL_GRACE_S,
        time_limit_s: float | None = None,
    ) -> None:
        self._queue = queue
        self._cancel_call = cancel
        self._release = release
        self._grace_s = grace_s
        self._watch = asyncio.ensure_future(self._watch_call(call))
        # One timer per generation (not a timeout around every read on the hot path).
        self._timer = (
            None
            if time_limit_s is None
            else asyncio.get_running_loop().call_later(time_limit_s, self._queue.put_nowait, _timed_out())
        )

    async def _watch_call(self, call: Awaitable[Any]) -> None:
        try:
            await call
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the worker's error, or its death
            self._queue.put_nowait(exc)
            return
        await asyncio.sleep(self._grace_s)
        self._queue.put_nowait(_CallEnded())

    def __aiter__(self) -> Incoming:
        return self

    async def __anext__(self) -> list[Event]:
        item = await self._queue.get()
        if isinstance(item, _CallEnded):
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        """The client left: stop the worker's generation (Ray cancels the call; vLLM aborts)."""
        self._cancel_call()
        self.release()

    def release(self) -> None:
        self._watch.cancel()
        if self._timer is not None:
            self._timer.cancel()
        self._release()
