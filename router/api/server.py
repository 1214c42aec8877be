"""The router replica's own HTTP server: clients connect to it directly, with no Serve proxy hop.

Every streamed chunk through Ray Serve's HTTP proxy crosses one more process and one more Ray
message. Serving the Starlette app from the router replica itself removes both. Router replicas
on one node share the port through SO_REUSEPORT, and the kernel spreads connections over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from router.errors import ServerStopped


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The process belongs to Ray, which stops replicas itself; uvicorn must not take its signals.
        yield


class HttpServer:
    """uvicorn on a socket this replica bound; runs as a task on the replica's event loop."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, access_log: bool) -> None:
        self._socket = listen(host, port)
        config = uvicorn.Config(app, lifespan="off", access_log=access_log, log_level="warning", timeout_keep_alive=30)
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 30) -> None:
        """Returns once the server accepts connections (so `serve.run` finishing means reachable)."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                raise ServerStopped("the router's HTTP server did not start")
            await asyncio.sleep(0.01)

    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def close(self) -> None:
        self._server.should_exit = True
