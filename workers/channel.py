"""Event channel: a worker replica's generation events, batched per router, over one TCP connection.

A Ray streaming call costs a Ray message, with Serve's wrappers on both ends, for every batch of
every request: at 32 streams that is 32 messages per engine step, and on a small machine their
CPU comes out of the engine's share. Instead, the router opens the generation with an ordinary
Ray Serve call (which still chooses the replica, counts ongoing requests and carries errors and
cancellation), and the worker sends the events to the router's inbox over a plain socket. All
events for one router produced in one event-loop turn (one engine step) leave as one frame.

Frame: 4-byte big-endian length, then a pickle of `[(request_id, [event, ...]), ...]`. Both ends
are processes of the same Ray cluster, which already trusts pickles from its members.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import AsyncIterator, Sequence

from workers.events import Event

HEADER = struct.Struct("!I")
Frame = list[tuple[str, Sequence[Event]]]


def encode_frame(items: Frame) -> bytes:
    payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """The next frame; raises `asyncio.IncompleteReadError` when the peer closes."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    items: Frame = pickle.loads(await reader.readexactly(size))
    return items


class EventSender:
    """Worker side: one connection per router inbox address, one frame per loop turn per connection."""

    def __init__(self) -> None:
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, Frame] = {}

    async def connect(self, address: str) -> None:
        """Open (once) the connection to a router's inbox; call before `send` for that address."""
        writer = self._writers.get(address)
        if writer is not None and not writer.is_closing():
            return
        async with self._connecting.setdefault(address, asyncio.Lock()):
            writer = self._writers.get(address)
            if writer is None or writer.is_closing():
                host, port = address.rsplit(":", 1)
                _, self._writers[address] = await asyncio.open_connection(host, int(port))

    async def forward(self, address: str, request_id: str, batches: AsyncIterator[list[Event]]) -> None:
        """Send every batch of one generation to the router at `address`, minding its back-pressure."""
        await self.connect(address)
        async for batch in batches:
            self.send(address, request_id, batch)
            await self.drain(address)

    def send(self, address: str, request_id: str, events: Sequence[Event]) -> None:
        """Queue events for the router at `address`; raises ConnectionError once that router is gone."""
        writer = self._writers.get(address)
        if writer is None or writer.is_closing():
            raise ConnectionError(f"the router inbox at {address} is not connected")
        pending = self._pending.get(address)
        if pending is None:
            self._pending[address] = pending = []
            # Everything else sent this turn (other requests' tokens of the same step) joins this frame.
            asyncio.get_running_loop().call_soon(self._flush, address)
        pending.append((request_id, events))

    async def drain(self, address: str) -> None:
        """Wait until what was sent to `address` is handed to the OS (back-pressure from a slow router)."""
        await asyncio.sleep(0)  # let the scheduled flush run first
        writer = self._writers.get(address)
        if writer is not None and not writer.is_closing():
            await writer.drain()

    def _flush(self, address: str) -> None:
        items = self._pending.pop(address, None)
        writer = self._writers.get(address)
        if items and writer is not None and not writer.is_closing():
            writer.write(encode_frame(items))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
