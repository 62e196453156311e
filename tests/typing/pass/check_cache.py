"""The spec's string-keyed cache API, async and sync, and the start-up functions."""

from __future__ import annotations

from typing import Any, assert_type

import redis
import redis.asyncio

from arketic_cache import (
    RedisCache,
    RedisConnection,
    SyncRedisCache,
    UserProfileKey,
    cache,
    close_redis,
    close_redis_sync,
    get_redis,
    get_redis_sync,
    init_redis,
    init_redis_sync,
    sync_cache,
)


async def async_cache() -> None:
    await init_redis()
    assert_type(cache, RedisCache)
    assert_type(await cache.get("user:1:profile"), Any)
    assert_type(await cache.set("user:1:profile", {"name": "Ada"}), bool)
    assert_type(await cache.set("user:1:profile", {"name": "Ada"}, ttl=300), bool)
    assert_type(await cache.set("user:1:profile", [1, 2], ttl=None), bool)
    assert_type(await cache.get_many(["a", "b"]), dict[str, Any])
    assert_type(await cache.set_many({"a": 1, "b": "two"}, ttl=60), bool)
    assert_type(await cache.delete("a"), bool)
    assert_type(await cache.exists("a"), bool)
    assert_type(await cache.increment("hits"), int | None)
    assert_type(await cache.increment("hits", 5), int | None)
    assert_type(await cache.expire("a", 30), bool)
    assert_type(await cache.get_keys("user:*"), list[str])
    assert_type(await cache.flush_pattern("user:*"), int)
    assert_type(await cache.flush_pattern("*", allow_all=True), int)
    assert_type(await cache.get_info(), dict[str, Any])
    assert_type(cache.default_ttl, int)
    assert_type(cache.connection, RedisConnection)

    # A rendered schema key is a str, so it also works with the string-keyed cache.
    assert_type(await cache.get(UserProfileKey(user_id=1).render()), Any)

    own = RedisCache(default_ttl=60, key_prefix="app:", strict=True)
    assert_type(await own.get("k"), Any)
    assert_type(get_redis(), redis.asyncio.Redis)
    await close_redis()


def blocking_cache() -> None:
    init_redis_sync()
    assert_type(sync_cache, SyncRedisCache)
    assert_type(sync_cache.get("user:1:profile"), Any)
    assert_type(sync_cache.set("user:1:profile", {"name": "Ada"}, ttl=300), bool)
    assert_type(sync_cache.get_many(["a"]), dict[str, Any])
    assert_type(sync_cache.set_many({"a": 1}), bool)
    assert_type(sync_cache.delete("a"), bool)
    assert_type(sync_cache.exists("a"), bool)
    assert_type(sync_cache.increment("hits"), int | None)
    assert_type(sync_cache.expire("a", 30), bool)
    assert_type(sync_cache.get_keys("user:*"), list[str])
    assert_type(sync_cache.flush_pattern("user:*"), int)
    assert_type(sync_cache.get_info(), dict[str, Any])
    assert_type(SyncRedisCache(default_ttl=5).get("k"), Any)
    assert_type(get_redis_sync(), redis.Redis)
    close_redis_sync()
