"""Group commit: many callers' Redis round trips sent as one pipeline, without weakening any read.

A call that arrives while no round trip is in flight is sent on the event loop's next turn
(together with every call that arrived in the same turn); calls that arrive while one is in
flight wait for it and go together in the next. So every call's command reaches Redis after the
call was made (read-after-write holds: a change another replica made before a request started is
seen by that request), and a burst of 2,000 request starts costs a handful of round trips on one
connection instead of 2,000 round trips queueing for a bounded pool.

Rules:
- Each call gets its own outcome: `send` returns one result per item, in order; a result that is
  an exception is raised to that call only.
- If `send` raises, every call of that batch gets the exception; the next batch is sent as usual.
- A call cancelled before its batch is sent is left out of it. One cancelled while its batch is
  in flight does not cancel the batch (the others still get their answers); its result, which
  Redis did apply, goes to `abandoned` so the owner can undo what it did (a counted lease).
- With `wait_s`, a call that has no answer by then (a hung Redis) raises `timeout()` and is
  treated as cancelled: callers are bounded as a bounded pool bounded them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


def _ignore(item: object, result: object) -> None:
    return None


class GroupCommit(Generic[T, R]):
    """`await batcher(item)`: the outcome of `item` in the next round trip `send` makes."""

    def __init__(
        self,
        send: Send[T, R],
        abandoned: Callable[[T, R], None] = _ignore,
        *,
        wait_s: float | None = None,
        timeout: Callable[[], Exception] = TimeoutError,
    ) -> None:
        self._send = send
        self._abandoned = abandoned
        self._wait_s = wait_s
        self._timeout = timeout
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            # The loop that ran the last batch is gone (one store reused by a new asyncio.run): its
            # waiters went with it.
            self._task, self._queue = None, []
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._run())
        if self._wait_s is None:
            return await future
        try:
            return await asyncio.wait_for(future, self._wait_s)  # cancels `future` when it expires
        except TimeoutError:
            raise self._timeout() from None

    async def _run(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._commit([(item, future) for item, future in batch if not future.done()])
        finally:
            self._task = None
            # Only when this task itself is cancelled (the loop shuts down) are callers left waiting.
            for _, future in self._queue:
                future.cancel()
            self._queue = []

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        if not batch:
            return
        try:
            results = await self._send([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} calls")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (item, future), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                if not future.done():
                    future.set_exception(result)
            elif future.done():
                self._abandoned(item, result)
            else:
                future.set_result(result)
