"""One generation's output as the protocols need it: text through a tool reader, logprobs kept.

`collect` gathers a whole answer (non-streaming); `steps` yields what each engine event becomes
(streaming); `merge` interleaves the frames of several choices (OpenAI `n` > 1) as they arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass

from router.convert.tools import Piece, Reader, ToolCall, assemble
from router.dispatch.generation import EventStream
from workers.events import Delta, Final, TokenLogprob


@dataclass(frozen=True)
class Answer:
    text: str
    calls: list[ToolCall]
    logprobs: list[TokenLogprob]
    final: Final

    @property
    def finish_reason(self) -> str:
        # A call is why the model stopped, even though the engine saw an ordinary stop token.
        return "tool_calls" if self.calls else self.final.finish_reason


@dataclass(frozen=True)
class Step:
    """One engine event, read: pieces to send, the logprobs of its tokens, and `final` at the end."""

    pieces: list[Piece]
    logprobs: tuple[TokenLogprob, ...] = ()
    final: Final | None = None


async def steps(events: EventStream, reader: Reader) -> AsyncIterator[Step]:
    async for event in events:
        if isinstance(event, Delta):
            yield Step(reader.feed(event.text), event.logprobs)
        else:
            yield Step(reader.finish(), (), event)


async def collect(events: EventStream, reader: Reader) -> Answer:
    pieces: list[Piece] = []
    logprobs: list[TokenLogprob] = []
    final: Final | None = None
    async for step in steps(events, reader):
        pieces += step.pieces
        logprobs += step.logprobs
        final = step.final or final
    assert final is not None  # an EventStream always ends with its Final (or raises)
    text, calls = assemble(pieces)
    return Answer(text, calls, logprobs, final)


async def collect_all(streams: Sequence[EventStream], readers: Sequence[Reader]) -> list[Answer]:
    """Every choice's answer; the first failure cancels the others (and their engine requests)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(collect(s, r)) for s, r in zip(streams, readers, strict=True)]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]


_END = object()


async def merge(sources: Sequence[AsyncGenerator[bytes]]) -> AsyncGenerator[bytes]:
    """Frames of several sources in arrival order; a source's error ends the merge (re-raised)."""
    if len(sources) == 1:
        async with aclosing(sources[0]) as only:
            async for frame in only:
                yield frame
        return
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump(source: AsyncGenerator[bytes]) -> None:
        try:
            async with aclosing(source) as items:
                async for item in items:
                    queue.put_nowait(item)
        except Exception as exc:
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_END)

    tasks = [asyncio.create_task(pump(source)) for source in sources]
    try:
        running = len(tasks)
        while running:
            item = await queue.get()
            if item is _END:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                assert isinstance(item, bytes)
                yield item
    finally:
        # The client left or a choice failed: stop the other choices' engine requests too.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
