"""The demo behind ``make demo``: each cache operation, with what it returned."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from ._cache import RedisCache
from ._connection import close_redis, init_redis

__all__ = ["main"]

EMBEDDED_URL = "memory://demo"


def _show(label: str, value: Any) -> None:
    print(f"  {label:<46} -> {value!r}")


async def _cache_demo() -> None:
    url = os.environ.get("REDIS_URL") or EMBEDDED_URL
    conn = await init_redis(url=url)
    if url == EMBEDDED_URL:
        print("REDIS_URL is unset: using the embedded in-process backend (memory://, fakeredis).")
    else:
        print(f"Using Redis at {conn.settings.display_url}")
    cache = RedisCache(key_prefix="demo:")
    print("\nCache (RedisCache, JSON values, a TTL on every write):")
    profile = {"name": "Ada Lovelace", "role": "admin", "tags": ["math", "engines"]}
    _show(
        "set('user:123:profile', {...}, ttl=300)",
        await cache.set("user:123:profile", profile, ttl=300),
    )
    _show("get('user:123:profile')", await cache.get("user:123:profile"))
    _show("get('user:999:profile')  (a miss)", await cache.get("user:999:profile"))
    _show("exists('user:123:profile')", await cache.exists("user:123:profile"))
    _show("increment('stats:logins')", await cache.increment("stats:logins"))
    _show("increment('stats:logins', 5)", await cache.increment("stats:logins", 5))
    _show("expire('stats:logins', 60)", await cache.expire("stats:logins", 60))
    _show("expire('nothing:here', 60)  (missing key)", await cache.expire("nothing:here", 60))
    users = {f"user:{i}:profile": {"id": i} for i in range(1, 4)}
    _show("set_many(3 profiles)", await cache.set_many(users, ttl=120))
    _show(
        "get_many(['user:1:profile', 'user:7:profile'])",
        await cache.get_many(["user:1:profile", "user:7:profile"]),
    )
    _show("get_keys('user:*:profile')", await cache.get_keys("user:*:profile"))
    _show("flush_pattern('user:*')", await cache.flush_pattern("user:*"))
    _show("get_keys('user:*')  (after the flush)", await cache.get_keys("user:*"))
    _show("delete('stats:logins')", await cache.delete("stats:logins"))
    info = await cache.get_info()
    print(
        "\nget_info():"
        + (
            "  (the embedded backend has no INFO: server fields are None)"
            if conn.backend == "memory"
            else ""
        )
    )
    for field in (
        "used_memory_human",
        "connected_clients",
        "keyspace_hits",
        "hit_rate",
        "persistence",
    ):
        _show(field, info[field])
    _show("client counters", info["client"])
    await close_redis()


def main(argv: list[str]) -> int:
    """Run the demo named in ``argv`` (only ``demo`` for now)."""
    if argv != ["demo"]:
        print("usage: python -m arketic_cache demo", file=sys.stderr)
        return 2
    asyncio.run(_cache_demo())
    return 0
