"""Bounded input: request bodies by size (an ASGI middleware), generations by `n` and tokens."""

from __future__ import annotations

from dataclasses import dataclass, replace

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.errors import BadRequest, PayloadTooLarge
from workers.events import Sampling


class BoundedBody:
    """A body over `limit` bytes is a 413 before it is read whole: at once when Content-Length
    says so, else as soon as the bytes received pass the limit. The error is raised from the
    handler's own read, so the app's error renderer answers it in the path's protocol."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        limit = self._limit
        received = 0

        async def bounded() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self._app(scope, bounded, send)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than this server's limit of {limit} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class Caps:
    """What one request may ask the engines for (HERD_MAX_CHOICES, HERD_MAX_TOKENS)."""

    max_choices: int
    max_tokens: int

    def choices(self, n: int | None) -> int:
        if n is not None and n > self.max_choices:
            raise BadRequest(f"n must be at most {self.max_choices} on this server, got {n}", param="n")
        return 1 if n is None else n

    def sampling(self, sampling: Sampling, param: str) -> Sampling:
        """The token bound, checked; a request that gives none is bounded by the cap."""
        asked = sampling.max_tokens
        if asked is not None and asked > self.max_tokens:
            raise BadRequest(f"{param} must be at most {self.max_tokens} on this server, got {asked}", param=param)
        return sampling if asked is not None else replace(sampling, max_tokens=self.max_tokens)
