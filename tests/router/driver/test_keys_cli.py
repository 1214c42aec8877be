"""`herd keys` against a real Redis, and the start-up refusal of an unprotected public bind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from router.catalog.keys import KeyStore, digest
from router.catalog.store import CatalogStore
from router.driver.cli import main
from router.driver.keys_cli import prepare_auth
from router.errors import StartupError
from router.settings import Settings


def test_create_list_revoke(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    argv = ["keys", "create", "--name", "app", "--role", "inference", "--models", "chat:1", "--rpm", "10"]
    assert main(argv) == 0
    secret = capsys.readouterr().out.split()[-1]
    assert secret.startswith("herd-") and len(secret) > 30
    assert main(["keys", "create", "--name", "app", "--role", "admin"]) == 1
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("app\tinference\tmodels=") and "chat:1" in listed and "rpm=10" in listed
    assert secret not in listed
    assert main(["keys", "revoke", "app"]) == 0
    assert main(["keys", "revoke", "app"]) == 1
    capsys.readouterr()
    assert main(["keys", "list"]) == 0 and capsys.readouterr().out == ""


def test_keys_made_before_the_first_start_land_in_the_data_dirs_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("HERD_DATA_DIR", str(tmp_path))
    assert main(["keys", "create", "--name", "ops", "--role", "admin"]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0  # a second embedded start reads the persisted key
    assert capsys.readouterr().out.startswith("ops\tadmin")


def _prepare(redis_url: str, **settings: object) -> int:
    async def run() -> int:
        store = CatalogStore.from_url(redis_url)
        try:
            await prepare_auth(store, Settings(**settings))  # type: ignore[arg-type]
            return await KeyStore(store.redis).count()
        finally:
            await store.close()

    return asyncio.run(run())


def test_a_public_bind_without_keys_refuses_to_start_unless_auth_is_off(redis_url: str) -> None:
    with pytest.raises(StartupError, match="herd keys create"):
        _prepare(redis_url, host="0.0.0.0")
    assert _prepare(redis_url, host="0.0.0.0", auth="off") == 0
    assert _prepare(redis_url, host="127.0.0.1") == 0


def test_the_bootstrap_admin_key_is_stored_as_a_hash(redis_url: str) -> None:
    assert _prepare(redis_url, host="0.0.0.0", admin_key="herd-bootstrap-secret") == 1

    async def stored() -> dict[str, str]:
        store = CatalogStore.from_url(redis_url)
        try:
            return dict(await store.redis.hgetall("herd:keys"))
        finally:
            await store.close()

    assert list(asyncio.run(stored())) == [digest("herd-bootstrap-secret")]
