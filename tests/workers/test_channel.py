"""The worker -> router event channel: signed frames, one frame per loop turn, a lost router."""

from __future__ import annotations

import asyncio

import pytest

from workers.channel import BadFrame, EventSender, FrameReader, connection_key, encode_frame
from workers.events import Delta, Final, TokenLogprob

SECRET = b"s" * 32
NONCE = b"n" * 16
KEY = connection_key(SECRET, NONCE)


def _reader(data: bytes) -> FrameReader:
    """The frames of one connection whose handshake used NONCE (call inside a running loop)."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return FrameReader(reader, SECRET, NONCE)


async def _first(data: bytes) -> object:
    return await _reader(data).next()


def test_frame_round_trip() -> None:
    top = (TokenLogprob("a", -0.5), TokenLogprob("b", -1.5))
    items = [
        ("r1", [Delta("h\u00e9", 1, (TokenLogprob("h\u00e9", -0.1, top),))]),
        ("r2", [Delta("", 0), Final("stop", 3, 1, 5, 0, 9), Final("length", 1, 2, 3, 4, 5, (7, 8))]),
        # Every field set: a field the codec forgot (once Final.stop_sequence) would come back unset.
        ("r3", [Final("stop", 3, 2, 5, 6, 9, (7, 8), stop_sequence="\n")]),
    ]

    async def run() -> object:
        frames = _reader(encode_frame(items, KEY, 0) + encode_frame([], KEY, 1))
        first, second = await frames.next(), await frames.next()
        with pytest.raises(asyncio.IncompleteReadError):
            await frames.next()
        return first, second

    assert asyncio.run(run()) == (items, [])


@pytest.mark.parametrize(
    "frame",
    [
        encode_frame([("r", [Delta("x", 1)])], connection_key(b"another-cluster-secret!!", NONCE), 0),
        encode_frame([("r", [Delta("x", 1)])], connection_key(SECRET, b"m" * 16), 0),  # from another connection
        encode_frame([("r", [Delta("x", 1)])], KEY, 5),  # out of order
        b"\xff\xff\xff\xff" + b"\0" * 64,  # a 4 GiB frame: refused before it is read
    ],
)
def test_frames_not_signed_for_this_connection_are_refused(frame: bytes) -> None:
    with pytest.raises(BadFrame):
        asyncio.run(_first(frame))


def test_sends_in_one_loop_turn_share_one_frame() -> None:
    frames: list[list[tuple[str, list[object]]]] = []

    async def run() -> None:
        async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            incoming = FrameReader(reader, SECRET)
            try:
                await incoming.handshake(writer)
                while True:
                    frames.append([(rid, list(events)) for rid, events in await incoming.next()])
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_server(receive, "127.0.0.1", 0)
        address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        sender = EventSender(SECRET)
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
        sender = EventSender(SECRET)
        with pytest.raises(ConnectionError):
            sender.send("127.0.0.1:9", "r", [Delta("x", 1)])

    asyncio.run(run())


def test_a_connection_without_the_secret_is_dropped_at_the_handshake() -> None:
    refused: list[BadFrame] = []

    async def run() -> None:
        async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await FrameReader(reader, SECRET).handshake(writer)
            except BadFrame as exc:
                refused.append(exc)
            writer.close()

        server = await asyncio.start_server(receive, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stranger = EventSender(b"x" * 32)
        await stranger.connect(f"127.0.0.1:{port}")
        await asyncio.sleep(0.05)
        server.close()
        stranger.close()

    asyncio.run(run())
    assert len(refused) == 1


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        EventSender(b"short")
