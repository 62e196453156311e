"""String-keyed cache misuses mypy must reject (``# E: <code>`` markers).

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import RedisCache, SyncRedisCache, cache, sync_cache
from tests.typing.typing_fixtures import ProfileKey


async def async_cache() -> None:
    await cache.get(42)  # E: arg-type
    await cache.get(ProfileKey(user_id=1))  # E: arg-type
    await cache.set("k", "v", ttl="60")  # E: arg-type
    await cache.set("k", "v", 60, 1)  # E: call-arg
    await cache.set_many({1: "v"})  # E: dict-item
    await cache.expire("k", ttl=None)  # E: arg-type
    await cache.increment("hits", 1.5)  # E: arg-type
    await cache.flush_pattern("*", True)  # E: call-arg
    count: int = await cache.increment("hits")  # E: assignment
    RedisCache(default_ttl="60")  # E: arg-type


async def forgotten_await() -> None:
    cached = cache.get("user:1:profile")
    cached["name"]  # E: index
    cache.set("k", "v")  # E: unused-coroutine
    if cache.exists("k"):  # E: truthy-bool
        pass


def sync_cache_awaited_or_misused() -> None:
    sync_cache.get(42)  # E: arg-type
    SyncRedisCache(key_prefix=1)  # E: arg-type
    keys: list[bytes] = sync_cache.get_keys("user:*")  # E: assignment
