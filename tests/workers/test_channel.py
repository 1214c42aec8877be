"""The worker -> router event channel: framing, one frame per loop turn, and a lost router."""

from __future__ import annotations

import asyncio

import pytest

from workers.channel import EventSender, encode_frame, read_frame
from workers.events import Delta, Final


def test_frame_round_trip() -> None:
    items = [("r1", [Delta("h\u00e9", 1)]), ("r2", [Delta("", 0), Final("stop", 3, 1, 5, 0, 9)])]

    async def run() -> object:
        reader = asyncio.StreamReader()
        reader.feed_data(encode_frame(items) + encode_frame([]))
        reader.feed_eof()
        first, second = await read_frame(reader), await read_frame(reader)
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader)
        return first, second

    assert asyncio.run(run()) == (items, [])


def test_sends_in_one_loop_turn_share_one_frame() -> None:
    frames: list[list[tuple[str, list[object]]]] = []

    async def run() -> None:
        async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    frames.append([(rid, list(events)) for rid, events in await read_frame(reader)])
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_server(receive, "127.0.0.1", 0)
        address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        sender = EventSender()
        await sender.connect(address)
        # One engine step: three requests' tokens produced in the same turn of the loop.
        for rid in ("a", "b", "c"):
            sender.send(address, rid, [Delta(rid, 1)])
        await sender.drain(address)
        sender.send(address, "a", [Delta("next step", 1)])
        await sender.drain(address)
        sender.close()
        await asyncio.sleep(0.05)
        server.close()

    asyncio.run(run())
    assert frames == [
        [("a", [Delta("a", 1)]), ("b", [Delta("b", 1)]), ("c", [Delta("c", 1)])],
        [("a", [Delta("next step", 1)])],
    ]


def test_sending_to_a_router_that_is_gone_raises() -> None:
    async def run() -> None:
        sender = EventSender()
        with pytest.raises(ConnectionError):
            sender.send("127.0.0.1:9", "r", [Delta("x", 1)])

    asyncio.run(run())
