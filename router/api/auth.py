"""API keys on every route but `/`, `/health` and `/ready`: who is asking, what they may do, and
their per-key limits (README "Security").

Auth is on with HERD_AUTH=required, off with HERD_AUTH=off, and otherwise (auto) on once any key
exists or when the server listens beyond loopback. Every request checks its key in Redis (one
script, which also counts its rate limits), so a revoked key is refused at once by every
replica; only "are there any keys at all" is cached, for a second.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.access import is_loopback
from router.catalog.keys import ApiKey, KeyStore, digest
from router.catalog.limits import Admission, Limiter, Usage
from router.catalog.store import CatalogStore
from router.dispatch.metrics import RouterMetrics
from router.errors import Forbidden, HerdError, RateLimited, StoreUnavailable, Unauthorized

OPEN_PATHS = frozenset({"/", "/health", "/ready"})
# Catalog changes and the cluster's own numbers; everything else is inference.
ADMIN_PATHS = frozenset({"/api/pull", "/api/create", "/api/copy", "/api/delete", "/metrics", "/herd/stats"})
KEY_COUNT_TTL_S = 1.0

log = logging.getLogger("herd.auth")


@dataclass(frozen=True)
class Admitted:
    key: ApiKey
    key_hash: str
    admission: Admission


class Gate:
    """The policy: whether auth is on, whose key this is, whether it may take this path now."""

    @classmethod
    def for_store(cls, store: CatalogStore, mode: str, host: str) -> Gate:
        """The gate of a router listening on `host`, on the catalog's Redis pool."""
        return cls(KeyStore(store.redis), Limiter(store.redis), mode, public=not is_loopback(host))

    def __init__(self, keys: KeyStore, limiter: Limiter, mode: str, public: bool) -> None:
        self._keys = keys
        self._limiter = limiter
        self._mode = mode  # auto | required | off
        self._public = public  # listening beyond loopback: auto means required
        self._count = 0
        self._counted_at = -math.inf

    async def auth_on(self) -> bool:
        if self._mode != "auto":
            return self._mode == "required"
        if self._public:
            return True
        now = time.monotonic()
        if now - self._counted_at > KEY_COUNT_TTL_S:
            try:
                self._count, self._counted_at = await self._keys.count(), now
            except RedisError:
                if self._counted_at == -math.inf:
                    raise
                # Redis is down: auth stays as it last was. Off, the cached catalog keeps serving;
                # on, keys cannot be checked and `admit` fails closed (a 503).
                log.warning("Redis unavailable; auth stays %s", "on" if self._count else "off")
        return self._count > 0

    async def admit(self, secret: str | None, path: str) -> Admitted:
        if not secret:
            raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>'")
        key_hash = digest(secret)
        admission = await self._limiter.admit(key_hash)
        if admission.key is None:
            raise Unauthorized("invalid API key")
        if path in ADMIN_PATHS and admission.key.role != "admin":
            raise Forbidden(f"{path} needs an admin key")
        if not admission.allowed:
            raise _rate_limited(admission)
        return Admitted(admission.key, key_hash, admission)

    async def charge(self, admitted: Admitted, usage: Usage) -> None:
        if admitted.key.tpm is not None:
            await self._limiter.charge(admitted.key_hash, usage.prompt + usage.output)


def _rate_limited(a: Admission) -> RateLimited:
    assert a.key is not None
    reset_ms = a.reset_requests_ms if a.reason == "requests" else a.reset_tokens_ms
    limit = a.key.rpm if a.reason == "requests" else a.key.tpm
    return RateLimited(
        f"rate limit reached for key '{a.key.name}': {limit} {a.reason} per minute",
        retry_after=max(1, math.ceil(reset_ms / 1000)),
        headers=rate_headers(a),
    )


def rate_headers(a: Admission) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers for the limits the key has."""
    headers: dict[str, str] = {}
    assert a.key is not None
    for kind, limit, used, reset_ms in (
        ("requests", a.key.rpm, a.used_requests, a.reset_requests_ms),
        ("tokens", a.key.tpm, a.used_tokens, a.reset_tokens_ms),
    ):
        if limit is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(limit - used, 0))
            headers[f"x-ratelimit-reset-{kind}"] = f"{reset_ms / 1000:.3f}s"
    return headers


def secret_of(scope: Scope) -> str | None:
    """`Authorization: Bearer <key>` (OpenAI and Ollama clients) or `x-api-key` (Anthropic's)."""
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value:
            return value.decode("latin-1").strip()
    return None


Render = Callable[[Request, HerdError], Response]


class Authenticate:
    """ASGI middleware: refuses (in the path's protocol) or admits, notes the key on the request,
    adds the rate-limit headers, and charges the request's tokens once it has ended."""

    def __init__(self, app: ASGIApp, gate: Gate, render: Render, metrics: RouterMetrics) -> None:
        self._app = app
        self._gate = gate
        self._render = render
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        try:
            admitted = await self._admit(scope)
        except HerdError as err:
            await self._render(Request(scope), err)(scope, receive, send)
            return
        if admitted is None:
            await self._app(scope, receive, send)
            return
        usage = Usage()
        scope.setdefault("state", {}).update(api_key=admitted.key, auth_on=True, usage=usage)
        headers = [(k.encode(), v.encode()) for k, v in rate_headers(admitted.admission).items()]

        charged = False

        async def charge() -> None:
            nonlocal charged
            if not charged:
                charged = True
                await self._charge(admitted, usage)

        async def send_with_limits(message: Message) -> None:
            if headers and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Charged before the client sees the end, so its next request meets the new total.
                await charge()
            await send(message)

        try:
            await self._app(scope, receive, send_with_limits)
        finally:
            await charge()  # a request that ended without its last byte (an error, a client gone)

    async def _charge(self, admitted: Admitted, usage: Usage) -> None:
        self._metrics.observe_key(admitted.key.name, usage.prompt, usage.output)
        try:
            await self._gate.charge(admitted, usage)
        except RedisError:
            log.warning("could not charge %d tokens to key %s", usage.prompt + usage.output, admitted.key.name)

    async def _admit(self, scope: Scope) -> Admitted | None:
        try:
            if not await self._gate.auth_on():
                return None
            return await self._gate.admit(secret_of(scope), scope["path"])
        except RedisError as exc:
            log.warning("Redis unavailable checking a key: %s", exc)
            raise StoreUnavailable("API keys cannot be checked now, try again shortly", retry_after=2) from exc
