"""Hostile traffic against the session's real stack: a stranger on the router's event inbox port
and 300 idle half-open HTTP connections. Each ends by showing the stack still serves a normal
(streamed) request promptly."""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pytest

from router.driver import watchdog
from tests.integration.conftest import MODEL, Stack
from workers.channel import NONCE_BYTES, encode_frame
from workers.events import Final

NUM_PREDICT = 3
HALF_OPEN = 300


def streamed_generate(base: str, timeout_s: float = 60) -> list[dict[str, object]]:
    """One streamed /api/generate on a fresh connection: its NDJSON lines."""
    body = {"model": MODEL, "prompt": "Hi", "options": {"num_predict": NUM_PREDICT, "temperature": 0}}
    with httpx.Client(base_url=base, timeout=timeout_s) as client:
        with client.stream("POST", "/api/generate", json=body) as r:
            assert r.status_code == 200, r.read()
            return [json.loads(line) for line in r.iter_lines() if line]


def assert_serves(base: str) -> None:
    lines = streamed_generate(base)
    assert len(lines) >= 2 and lines[-1]["done"] is True and lines[-1]["eval_count"] == NUM_PREDICT, lines[-1:]


class _Payload:
    """What an attacker pickles: unpickling it (the channel's old codec) would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (str(self.marker),))


def _greets_with_a_nonce(host: str, port: int) -> bool:
    """The inbox speaks first: exactly a nonce, then it waits for the peer's proof (Ray's own ports
    do not send 16 bytes and stop)."""
    got = b""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(1)
            while len(got) <= NONCE_BYTES and (chunk := sock.recv(64)):
                got += chunk
    except TimeoutError:
        pass  # silent after what it sent: the inbox waits for a proof
    except OSError:
        return False
    return len(got) == NONCE_BYTES


def router_inboxes(stack: Stack) -> list[tuple[str, int]]:
    """The event inbox of every router replica: of the stack's processes, those listening on the
    HTTP port are router replicas; of their other listening ports, the inbox is the one that greets
    with a nonce. Found from outside, as an attacker on the node's network would scan for it."""
    http_port = int(stack.base.rsplit(":", 1)[1])
    found = []
    for pid in watchdog.processes_of(stack.cluster_id):
        try:
            listening = [c.laddr for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        except psutil.Error:
            continue
        if all(addr.port != http_port for addr in listening):
            continue
        found += [(a.ip, a.port) for a in listening if a.port != http_port and _greets_with_a_nonce(a.ip, a.port)]
    return found


def _dropped_after(address: tuple[str, int], attack: bytes) -> float:
    """Seconds from sending `attack` (after reading the nonce) until the router closes the connection."""
    with socket.create_connection(address, timeout=30) as sock:
        nonce = b""
        while len(nonce) < NONCE_BYTES:
            nonce += sock.recv(NONCE_BYTES - len(nonce))
        sent = time.monotonic()
        sock.sendall(attack)
        try:
            while sock.recv(4096):
                pass  # the router sends nothing more; anything it did send is ignored
        except ConnectionResetError:
            pass
        return time.monotonic() - sent


def _attacks(marker: Path) -> dict[str, bytes]:
    forged = encode_frame([("req-forged", [Final("stop", 1, 1, 1, 1, 1)])], os.urandom(32), 0)
    pickled = pickle.dumps([("req-forged", [_Payload(marker)])])
    return {
        "garbage": os.urandom(4096),
        # A well-formed frame (length, tag, msgpack payload) after a proof, both made up without
        # the cluster's secret.
        "forged frame": os.urandom(32) + forged,
        "pickle (the old codec)": struct.pack("!I", len(pickled)) + pickled + b"\0" * 32,
    }


def test_a_stranger_on_the_inbox_port_is_dropped_and_runs_nothing(herd_stack: Stack | None, tmp_path: Path) -> None:
    if herd_stack is None:
        pytest.skip("needs the session's own Herd (HERD_TEST_URL is set)")
    inboxes = router_inboxes(herd_stack)
    assert inboxes, "no router replica's event inbox found"
    marker = tmp_path / "pwned"
    for address in inboxes:
        for name, attack in _attacks(marker).items():
            took = _dropped_after(address, attack)
            print(f"\ninbox {address[0]}:{address[1]}: {name} ({len(attack)} bytes) dropped after {took:.3f}s")
            assert took < 5, name  # at the proof, not at the 10 s handshake timeout
    assert not marker.exists()
    assert_serves(herd_stack.base)


def test_300_half_open_connections_do_not_stop_service(herd: str) -> None:
    host, port = herd.removeprefix("http://").split(":")
    with ExitStack() as held:
        for i in range(HALF_OPEN):
            sock = held.enter_context(socket.create_connection((host, int(port)), timeout=10))
            partial = b"POST /api/generate HTTP/1.1\r\nHost: herd\r\n" if i % 2 else b"GET /api/ta"
            sock.sendall(partial)  # and nothing more: each waits for the rest of its request
        started = time.monotonic()
        with httpx.Client(base_url=herd, timeout=30) as client:
            assert client.get("/api/tags").status_code == 200
        listed = time.monotonic() - started
        assert_serves(herd)
        served = time.monotonic() - started
        print(f"\n{HALF_OPEN} half-open connections held: /api/tags in {listed:.3f}s, "
              f"a streamed generate in {served:.3f}s")  # fmt: skip
        assert listed < 2 and served < 30
