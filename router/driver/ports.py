"""Free TCP ports for the servers Herd, its tests and its benchmarks start on this machine."""

from __future__ import annotations

import random
import socket

# Below Linux's ephemeral range (32768-60999) and above Ray's worker ports (10002-19999): a port
# the kernel hands out for "any free port" (port 0) can be taken again by Ray's own sockets in the
# seconds before the server that was meant to have it binds it (seen: a router's "Address
# already in use" in a benchmark). Ports from here are never given out that way.
LOW, HIGH = 20000, 32767


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, from a range the kernel does not hand out by itself."""
    for _ in range(1000):
        port = random.randint(LOW, HIGH)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {LOW}-{HIGH} on {host}")


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` different free ports."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port(host))
    return sorted(ports)
