"""API keys in Redis, stored only as sha256 hashes.

Keys (under `herd:`): `herd:keys` hash, sha256 hex of the secret -> key JSON (name, role, models,
rpm, tpm); `herd:keynames` hash, name -> sha256 hex. A secret is shown once, at creation; what
Redis holds cannot be turned back into it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal

from router.catalog.names import parse_name
from router.errors import BadRequest

KEYS = "herd:keys"
KEY_NAMES = "herd:keynames"
PREFIX = "herd-"
Role = Literal["inference", "admin"]
ROLES: tuple[Role, ...] = ("inference", "admin")


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    models: tuple[str, ...] = ()  # catalog name keys; empty: every model
    rpm: int | None = None
    tpm: int | None = None

    def allows(self, model: str) -> bool:
        return not self.models or parse_name(model).key in self.models

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ApiKey:
        data = json.loads(text)
        return cls(data["name"], data["role"], tuple(data.get("models") or ()), data.get("rpm"), data.get("tpm"))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def new_key(
    name: str, role: str, models: tuple[str, ...] = (), rpm: int | None = None, tpm: int | None = None
) -> ApiKey:
    if not name or any(c.isspace() for c in name):
        raise BadRequest("a key name is required and must not contain spaces")
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    for limit in (rpm, tpm):
        if limit is not None and limit < 1:
            raise BadRequest("rpm and tpm must be at least 1")
    return ApiKey(name, role, tuple(parse_name(m).key for m in models), rpm, tpm)


class KeyStore:
    """Create, list, revoke and look up keys; every router replica reads the same hash."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def create(self, key: ApiKey, secret: str | None = None) -> str:
        """Store `key`; returns its secret (made here unless given, as for HERD_ADMIN_KEY)."""
        secret = secret or new_secret()
        hashed = digest(secret)
        old = await self._redis.hget(KEY_NAMES, key.name)
        async with self._redis.pipeline(transaction=True) as pipe:
            if old is not None and old != hashed:
                pipe.hdel(KEYS, old)
            pipe.hset(KEYS, hashed, key.to_json()).hset(KEY_NAMES, key.name, hashed)
            await pipe.execute()
        return secret

    async def exists(self, name: str) -> bool:
        return bool(await self._redis.hexists(KEY_NAMES, name))

    async def list(self) -> list[ApiKey]:
        return sorted((ApiKey.from_json(v) for v in (await self._redis.hgetall(KEYS)).values()), key=lambda k: k.name)

    async def revoke(self, name: str) -> bool:
        hashed = await self._redis.hget(KEY_NAMES, name)
        if hashed is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(KEYS, hashed).hdel(KEY_NAMES, name)
            await pipe.execute()
        return True

    async def count(self) -> int:
        return int(await self._redis.hlen(KEYS))

    async def find(self, secret: str) -> ApiKey | None:
        raw = await self._redis.hget(KEYS, digest(secret))
        return None if raw is None else ApiKey.from_json(raw)
