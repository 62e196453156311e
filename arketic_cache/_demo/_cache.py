"""The cache section of the demo, and get_info()."""

from __future__ import annotations

from .._cache import RedisCache
from ._narration import either, heading, note, show

__all__ = ["cache_demo", "info_demo"]


async def cache_demo(cache: RedisCache, reachable: bool) -> None:
    heading("Cache (RedisCache, JSON values, a TTL on every write)")
    failed = "Redis failed: "
    profile = {"name": "Ada Lovelace", "role": "admin", "tags": ["math", "engines"]}
    stored = await cache.set("user:123:profile", profile, ttl=300)
    show(
        "set('user:123:profile', {...}, ttl=300)",
        stored,
        either(stored, "stored, expiring in 300 s", failed + "nothing stored"),
    )
    show("get('user:123:profile')", await cache.get("user:123:profile"))
    show("get('user:999:profile')  (a miss)", await cache.get("user:999:profile"))
    show("exists('user:123:profile')", await cache.exists("user:123:profile"))
    count = await cache.increment("stats:logins")
    show(
        "increment('stats:logins')",
        count,
        either(count is not None, "a new counter starts from 0: 0 + 1", failed + "no count"),
    )
    count = await cache.increment("stats:logins", 5)
    show("increment('stats:logins', 5)", count, either(count is not None, "1 + 5", failed[:-2]))
    show("expire('stats:logins', 60)", await cache.expire("stats:logins", 60))
    show("expire('nothing:here', 60)  (missing key)", await cache.expire("nothing:here", 60))
    users = {f"user:{i}:profile": {"id": i} for i in range(1, 4)}
    show("set_many(user:1..3:profile, ttl=120)", await cache.set_many(users, ttl=120))
    show(
        "get_many(['user:1:profile', 'user:7:profile'])",
        await cache.get_many(["user:1:profile", "user:7:profile"]),
        either(reachable, "only the keys found: user:7 was never set", failed + "none found"),
    )
    found = await cache.get_keys("user:*:profile")
    show(
        "get_keys('user:*:profile')",
        found,
        either(
            reachable,
            f"{len(found)} keys: user:123 from set() and user:1..3 from set_many()",
            failed + "none listed",
        ),
    )
    show(
        "flush_pattern('user:*')",
        await cache.flush_pattern("user:*"),
        "the number of keys deleted: the ones listed above",
    )
    show("get_keys('user:*')  (after the flush)", await cache.get_keys("user:*"))
    deleted = await cache.delete("stats:logins")
    show(
        "delete('stats:logins')",
        deleted,
        either(deleted, "True: it existed", "False: it did not exist, or Redis failed"),
    )


#: What each of the client counters in ``get_info()['client']`` counts.
_CLIENT_COUNTERS = {
    "hits": "this cache's lookups that found a value (get and get_many, per key)",
    "misses": "this cache's lookups that found nothing (failed calls count as neither)",
    "hit_rate": "hits / (hits + misses); None before any lookup",
    "decode_errors": "stored values that failed to decode, read as misses",
    "errors": "Redis calls on this connection that failed and returned the default",
    "short_circuits": "calls not sent at all while the circuit breaker was open",
    "pool_exhausted": "calls that found no free connection in time",
    "breaker": "circuit breaker: closed (calls go to Redis) or open (they skip it)",
}
#: Where the cache section's hits and misses came from, when Redis answered.
_HERE = {
    "hits": ("here: get('user:123:profile'), and user:1 in get_many",),
    "misses": ("here: get('user:999:profile'), and user:7 in get_many",),
}


async def info_demo(cache: RedisCache, embedded: bool, reachable: bool) -> None:
    info = await cache.get_info()
    if embedded:
        heading("get_info(): the embedded backend has no INFO, so its server fields are None")
    elif reachable:
        heading("get_info(): the server's INFO (all of its clients), then this client's counters")
    else:
        heading("get_info(): Redis is unreachable, so its server fields are None")
    hit_rate = info["hit_rate"]
    show("used_memory_human", info["used_memory_human"], "memory the server uses")
    show("connected_clients", info["connected_clients"], "clients connected, the demo included")
    show("keyspace_hits", info["keyspace_hits"], "lookups that found a key, by all clients")
    show(
        "hit_rate",
        None if hit_rate is None else round(hit_rate, 3),
        "keyspace_hits / (keyspace_hits + keyspace_misses)",
    )
    show("persistence", info["persistence"], "aof, rdb, or 'none observed' (no AOF, no save)")
    here = _HERE if reachable else {}
    for name, value in info["client"].items():
        if name in _CLIENT_COUNTERS:
            shown = round(value, 3) if isinstance(value, float) else value
            show(f"client {name}", shown, _CLIENT_COUNTERS[name], *here.get(name, ()))
    if not reachable:
        settings = cache.connection.settings
        threshold, cooldown = settings.breaker_threshold, settings.breaker_cooldown
        note(f"the breaker opened after {threshold} failed calls in a row (errors); for the")
        note(f"next {cooldown:g} s, calls skip Redis at once (short_circuits) instead of each")
        note("waiting to fail; after that, one call tries Redis again")
