"""`herd keys create|list|revoke`, and what `herd serve` does about keys at start.

The commands work on the running cluster's Redis: REDIS_URL, else the embedded one whose URL the
running `herd serve` wrote into the data directory. With no Herd running they start the data
directory's embedded Redis for the moment they need it, so keys can exist before the first
`herd serve --host 0.0.0.0` (which refuses to start without one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

from router.api.access import is_loopback
from router.catalog.keys import ApiKey, KeyStore, new_key
from router.catalog.store import CatalogStore
from router.driver.redis_server import EmbeddedRedis
from router.errors import HerdError, StartupError
from router.settings import Settings

URL_FILE = "redis.url"
BOOTSTRAP_NAME = "bootstrap-admin"
T = TypeVar("T")


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=["inference", "admin"])
    create.add_argument("--models", help="comma-separated models the key may use (default: all)")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    actions.add_parser("list", help="names, roles and limits (never the secrets)")
    revoke = actions.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")


def keys_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _with_keys(settings, lambda keys: _run(args, keys))
    except HerdError as exc:
        print(f"herd: {exc.message}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, keys: KeyStore) -> int:
    if args.action == "create":
        models = tuple(m.strip() for m in (args.models or "").split(",") if m.strip())
        key = new_key(args.name, args.role, models, args.rpm, args.tpm)
        if await keys.exists(key.name):
            print(f"herd: a key named {key.name!r} exists; revoke it first", file=sys.stderr)
            return 1
        secret = await keys.create(key)
        print(f"Created {key.role} key {key.name!r}; it is shown only this once: {secret}")
        return 0
    if args.action == "list":
        for k in await keys.list():
            allowed = ",".join(k.models) or "*"
            print(f"{k.name}\t{k.role}\tmodels={allowed}\trpm={k.rpm or '-'}\ttpm={k.tpm or '-'}")
        return 0
    if await keys.revoke(args.name):
        print(f"Revoked key {args.name!r}")
        return 0
    print(f"herd: no key named {args.name!r}", file=sys.stderr)
    return 1


def _with_keys(settings: Settings, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    url = settings.redis_url or running_url(settings.data_dir)
    embedded = None
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        url = embedded.start()
    try:
        return asyncio.run(_on_store(url, work))
    finally:
        if embedded is not None:
            embedded.stop()


async def _on_store(url: str, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    store = CatalogStore.from_url(url, max_connections=2)
    try:
        return await work(KeyStore(store.redis))
    finally:
        await store.close()


def running_url(data_dir: Path) -> str | None:
    """The embedded Redis of a running `herd serve` on this data directory, if it answers."""
    try:
        url = (data_dir / URL_FILE).read_text().strip()
    except OSError:
        return None
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
        return url
    except redis.RedisError:
        return None
    finally:
        client.close()


def write_url(data_dir: Path, url: str) -> None:
    """For `herd keys` to find the embedded Redis; readable by this user only."""
    path = data_dir / URL_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(url + "\n")


async def prepare_auth(store: CatalogStore, settings: Settings) -> None:
    """Register HERD_ADMIN_KEY, then refuse a non-loopback bind that nothing protects."""
    keys = KeyStore(store.redis)
    if settings.admin_key:
        await keys.create(ApiKey(BOOTSTRAP_NAME, "admin"), secret=settings.admin_key)
    if settings.auth == "off" or is_loopback(settings.host) or await keys.count():
        return
    raise StartupError(
        f"refusing to serve on {settings.host} without API keys: anyone who reaches the port could use "
        "and change every model. Create a key first (herd keys create --name admin --role admin, with the "
        "same HERD_DATA_DIR or REDIS_URL), or set HERD_ADMIN_KEY, or set HERD_AUTH=off to serve without auth."
    )
