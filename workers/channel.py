"""Event channel: a worker replica's generation events, batched per router, over one TCP connection.

A Ray streaming call costs a Ray message, with Serve's wrappers on both ends, for every batch of
every request: at 32 streams that is 32 messages per engine step, and on a small machine their
CPU comes out of the engine's share. Instead, the router opens the generation with an ordinary
Ray Serve call (which still chooses the replica, counts ongoing requests and carries errors and
cancellation), and the worker sends the events to the router's inbox over a plain socket. All
events for one router produced in one event-loop turn (one engine step) leave as one frame.

The inbox listens on the node's address, so anyone who reaches that port may try to talk to it.
Connections are therefore authenticated and frames decoded with a codec that cannot run code:

    on connect: the router sends a random 16-byte nonce; the worker answers
                HMAC-SHA256(cluster secret, "hello" | nonce), or the connection is dropped
    frame   = 4-byte big-endian payload length | 32-byte tag | payload
    tag     = HMAC-SHA256(connection key, 8-byte frame number | payload), where the connection
              key is HMAC-SHA256(cluster secret, "frames" | nonce)
    payload = msgpack [[request_id, [event fields...]], ...]

The secret is made by the driver at start and handed to routers and workers through Ray. A
stranger's connection is dropped after its first 32 bytes, before anything is decoded; a frame
whose tag is wrong (forged, replayed from another connection, reordered) ends the connection
before its payload is decoded, and a declared length over MAX_FRAME before anything more is read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import secrets
import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgpack

from workers.events import Delta, Event, Final, TokenLogprob

_FINAL_FIELDS = dataclasses.fields(Final)

HEADER = struct.Struct("!I")
NUMBER = struct.Struct("!Q")
TAG_BYTES = 32
NONCE_BYTES = 16
HANDSHAKE_TIMEOUT_S = 10.0
MAX_FRAME = 16 << 20
MIN_SECRET_BYTES = 16
Frame = list[tuple[str, Sequence[Event]]]
_DELTA, _FINAL = 0, 1


class BadFrame(Exception):
    """A frame that is not from this cluster (or not well formed): its connection is dropped."""


def _check_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError("the channel secret must be at least 16 bytes")
    return secret


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def proof(secret: bytes, nonce: bytes) -> bytes:
    """What a cluster member answers to the router's nonce."""
    return _mac(secret, b"hello" + nonce)


def connection_key(secret: bytes, nonce: bytes) -> bytes:
    """The key that signs one connection's frames."""
    return _mac(secret, b"frames" + nonce)


def _tag(key: bytes, number: int, payload: bytes) -> bytes:
    return _mac(key, NUMBER.pack(number) + payload)


def _logprobs(items: Sequence[TokenLogprob]) -> list[Any]:
    return [[lp.token, lp.logprob, _logprobs(lp.top)] for lp in items]


def _encode_event(event: Event) -> list[Any]:
    if isinstance(event, Delta):
        return [_DELTA, event.text, event.tokens, _logprobs(event.logprobs)]
    # Every field of Final, in declaration order, so a field added to Final crosses the channel too.
    values = [getattr(event, f.name) for f in _FINAL_FIELDS]
    return [_FINAL, *(list(v) if isinstance(v, tuple) else v for v in values)]


def _token_logprobs(items: list[Any]) -> tuple[TokenLogprob, ...]:
    return tuple(TokenLogprob(token, logprob, _token_logprobs(top)) for token, logprob, top in items)


def _decode_event(item: list[Any]) -> Event:
    if item[0] == _DELTA:
        return Delta(item[1], item[2], _token_logprobs(item[3]))
    if item[0] == _FINAL:
        values: list[Any] = [tuple(v) if isinstance(v, list) else v for v in item[1:]]
        return Final(*values)
    raise BadFrame(f"unknown event kind {item[0]!r}")


def encode_frame(items: Frame, key: bytes, number: int) -> bytes:
    """Frame `number` of a connection whose key is `key` (`connection_key`)."""
    payload: bytes = msgpack.packb([[rid, [_encode_event(e) for e in events]] for rid, events in items])
    return HEADER.pack(len(payload)) + _tag(key, number, payload) + payload


class FrameReader:
    """Router side, one per connection: the handshake, then each frame verified before it is decoded."""

    def __init__(self, reader: asyncio.StreamReader, secret: bytes, nonce: bytes | None = None) -> None:
        self._reader = reader
        self._secret = _check_secret(secret)
        self.nonce = nonce or secrets.token_bytes(NONCE_BYTES)
        self._key = connection_key(secret, self.nonce)
        self._number = 0

    async def handshake(self, writer: asyncio.StreamWriter) -> None:
        """Send the nonce; raises BadFrame unless the peer proves it holds the cluster's secret."""
        writer.write(self.nonce)
        await writer.drain()
        try:
            answer = await asyncio.wait_for(self._reader.readexactly(TAG_BYTES), HANDSHAKE_TIMEOUT_S)
        except TimeoutError as exc:
            raise BadFrame("no handshake") from exc
        if not hmac.compare_digest(answer, proof(self._secret, self.nonce)):
            raise BadFrame("a handshake without this cluster's secret")

    async def next(self) -> Frame:
        """Raises `asyncio.IncompleteReadError` when the peer closes, `BadFrame` for a stranger's frame."""
        (size,) = HEADER.unpack(await self._reader.readexactly(HEADER.size))
        if size > MAX_FRAME:
            raise BadFrame(f"a frame of {size} bytes")
        tag = await self._reader.readexactly(TAG_BYTES)
        payload = await self._reader.readexactly(size)
        if not hmac.compare_digest(tag, _tag(self._key, self._number, payload)):
            raise BadFrame("a frame whose tag does not match this cluster's secret")
        self._number += 1
        try:
            return [(rid, [_decode_event(e) for e in events]) for rid, events in msgpack.unpackb(payload)]
        except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise BadFrame(f"a malformed frame: {exc}") from exc


class EventSender:
    """Worker side: one connection per router inbox address, one frame per loop turn per connection."""

    def __init__(self, secret: bytes) -> None:
        self._secret = _check_secret(secret)
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._numbers: dict[str, int] = {}
        self._keys: dict[str, bytes] = {}
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
                reader, writer = await asyncio.open_connection(host, int(port))
                nonce = await reader.readexactly(NONCE_BYTES)
                writer.write(proof(self._secret, nonce))
                self._writers[address] = writer
                self._keys[address] = connection_key(self._secret, nonce)
                self._numbers[address] = 0  # frames are numbered per connection

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
            number = self._numbers[address]
            self._numbers[address] = number + 1
            writer.write(encode_frame(items, self._keys[address], number))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
