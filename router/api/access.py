"""Who is asking: the API key the auth middleware put on the request, and what it may do.

With auth off there is no key; then only loopback clients may name server paths (as a laptop's
own `herd pull --source ./model.gguf`), since anyone else on the network is a stranger.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from router.catalog.catalog import ModelRecord
from router.catalog.keys import ApiKey
from router.catalog.limits import Usage
from router.errors import Forbidden


def caller(request: Request) -> ApiKey | None:
    key: ApiKey | None = getattr(request.state, "api_key", None)
    return key


def usage_of(request: Request) -> Usage | None:
    """The API key's token tally for this request (None with auth off)."""
    usage: Usage | None = getattr(request.state, "usage", None)
    return usage


def auth_on(request: Request) -> bool:
    return bool(getattr(request.state, "auth_on", False))


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def require_local_access(request: Request, what: str) -> None:
    """Server paths come only from admin keys, or (auth off) from the machine itself."""
    if auth_on(request):
        key = caller(request)
        if key is not None and key.role == "admin":
            return
        raise Forbidden(f"{what} on the server are accepted only from admin keys")
    if not is_loopback(request.client.host if request.client else ""):
        raise Forbidden(f"{what} on the server are accepted only from loopback clients while auth is off")


def require_model(request: Request, name: str) -> None:
    """A key limited to some models (`--models`) may use only those."""
    key = caller(request)
    if key is not None and not key.allows(name):
        raise Forbidden(f"this key may not use model '{name}'", param="model")


def visible(request: Request, records: Sequence[ModelRecord]) -> list[ModelRecord]:
    """The models a listing shows this caller: a key limited to some models sees only those."""
    key = caller(request)
    return [r for r in records if key is None or key.allows(r.name)]
