"""The router's inbox on a real socket: a stranger's frames (a pickle, a forged tag) are dropped
unread and run nothing; the cluster's own frames arrive."""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from pathlib import Path
from typing import Any

from router.dispatch.inbox import EventInbox
from tests.support import CHANNEL_SECRET
from workers.channel import NONCE_BYTES, EventSender, encode_frame
from workers.events import Delta, Event


class _Payload:
    """What an attacker pickles: unpickling it would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


async def _send_raw(address: str, data: bytes) -> bytes:
    """Write `data` on a new connection; what the inbox sends besides its 16-byte nonce before it
    drops the connection (nothing)."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)  # ends once the inbox drops the connection
    writer.close()
    return answer[NONCE_BYTES:]


def test_forged_frames_are_dropped_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    async def run() -> tuple[list[bytes], list[list[Event]]]:
        inbox = EventInbox(CHANNEL_SECRET)
        await inbox.start("127.0.0.1")
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        incoming = inbox.open("r", never, lambda: None)
        pickled = pickle.dumps([("r", [_Payload(marker)])])
        # A forged frame after a handshake the stranger cannot answer (it does not hold the secret).
        forged = bytes(32) + encode_frame([("r", [Delta("forged", 1)])], bytes(32), 0)
        answers = [
            await _send_raw(inbox.address, struct.pack("!I", len(pickled)) + pickled),  # the old format
            await _send_raw(inbox.address, forged),
        ]
        sender = EventSender(CHANNEL_SECRET)
        await sender.connect(inbox.address)
        sender.send(inbox.address, "r", [Delta("real", 1)])
        await sender.drain(inbox.address)
        received = [await asyncio.wait_for(anext(incoming), 5)]
        sender.close()
        incoming.release()
        inbox.close()
        return answers, received

    answers, received = asyncio.run(run())
    assert answers == [b"", b""]  # both connections closed without a byte back
    assert not marker.exists()
    assert received == [[Delta("real", 1)]]  # only the cluster's own frame reached the request
