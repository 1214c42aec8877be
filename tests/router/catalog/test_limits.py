"""The admission script on a real Redis: exact across clients, and only for known keys."""

from __future__ import annotations

import asyncio

from router.catalog.keys import KeyStore, digest, new_key
from router.catalog.limits import Limiter
from router.catalog.store import CatalogStore


def test_two_routers_share_one_rpm_budget_exactly(redis_url: str) -> None:
    async def run() -> list[bool]:
        stores = [CatalogStore.from_url(redis_url) for _ in range(2)]  # two replicas, two pools
        secret = await KeyStore(stores[0].redis).create(new_key("app", "inference", rpm=10))
        limiters = [Limiter(s.redis) for s in stores]
        verdicts = await asyncio.gather(*(limiters[i % 2].admit(digest(secret)) for i in range(30)))
        for s in stores:
            await s.close()
        return [v.allowed for v in verdicts]

    assert sum(asyncio.run(run())) == 10


def test_unknown_keys_are_not_admitted_and_keys_without_limits_always_are(redis_url: str) -> None:
    async def run() -> tuple[bool, bool, list[bool]]:
        store = CatalogStore.from_url(redis_url)
        secret = await KeyStore(store.redis).create(new_key("free", "admin"))
        limiter = Limiter(store.redis)
        unknown = await limiter.admit(digest("herd-nope"))
        free = [(await limiter.admit(digest(secret))).allowed for _ in range(50)]
        await store.close()
        return unknown.key is None, unknown.allowed, free

    missing, allowed, free = asyncio.run(run())
    assert missing and not allowed and all(free)


def test_redis_holds_only_the_hash_of_a_secret(redis_url: str) -> None:
    async def run() -> tuple[str, dict[str, str], dict[str, str]]:
        store = CatalogStore.from_url(redis_url)
        secret = await KeyStore(store.redis).create(new_key("app", "inference", ("chat:1",), 5, 100))
        dump = await store.redis.hgetall("herd:keys"), await store.redis.hgetall("herd:keynames")
        await store.close()
        return secret, *dump

    secret, stored, names = asyncio.run(run())
    assert list(stored) == [digest(secret)] and names == {"app": digest(secret)}
    assert secret not in str(stored) and '"rpm": 5' in stored[digest(secret)]
