"""The cache's benchmarks: ``get`` and ``get_many`` against raw redis-py, and the open breaker.

Every contender reads the same stored bytes (written once through the cache) from the same
server, and is checked to return the expected value before it is timed: a benchmark that
silently measured misses would look fast.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from arketic_cache import RedisCache, RedisConnection, SyncRedisCache
from arketic_cache.testing import free_port

from .clients import open_clients
from .timing import Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["HIT_TARGET", "OPEN_BREAKER_TARGET", "Sizes", "cache_benchmarks", "one_kb_value"]

HIT_TARGET = Target(1.10, "ratio", "cache hit vs raw floor")
OPEN_BREAKER_TARGET = Target(10.0, "us", "breaker-open call")
KEY = "bench:value:1k"
MANY_PREFIX = "bench:many:"
#: Long enough that the open breaker never lets a probe through during a run.
BREAKER_COOLDOWN = 3600.0


@dataclass(frozen=True, slots=True)
class Sizes:
    """Calls per batch for each benchmark, and how many keys ``get_many`` reads.

    ``@cached`` rows use ``get_calls`` for L2 hits and invalidations, ``l1_calls`` for L1 hits;
    pub/sub rows ``pubsub_calls`` single messages, or bursts of ``pubsub_burst`` messages;
    the consumer-group row ``group_entries`` stream entries, read ``group_chunk`` at a time.
    """

    get_calls: int
    many_calls: int
    breaker_calls: int
    repository_calls: int
    l1_calls: int = 2_000
    many_keys: int = 1000
    health_calls: int = 50
    pubsub_calls: int = 200
    pubsub_burst: int = 2_000
    group_entries: int = 1_000
    group_chunk: int = 100


def one_kb_value() -> dict[str, Any]:
    """A JSON object of plausible shape whose compact encoding is exactly 1024 bytes."""
    value: dict[str, Any] = {
        "id": 123456,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "active": True,
        "score": 98.25,
        "roles": ["admin", "editor", "viewer"],
        "orders": [{"sku": f"SKU-{i:05d}", "qty": i % 7 + 1, "price": 9.99 + i} for i in range(8)],
        "bio": "",
    }
    size = len(json.dumps(value, separators=(",", ":")))
    value["bio"] = "lorem ipsum dolor sit amet " * 40
    value["bio"] = value["bio"][: 1024 - size]
    return value


def _expect(label: str, got: object, want: object) -> None:
    if got != want:
        raise RuntimeError(f"{label} returned a wrong value; the benchmark would be meaningless")


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _open_breaker() -> RedisConnection:
    """A connection to a closed loopback port whose breaker has been driven open."""
    conn = RedisConnection(
        url=f"redis://127.0.0.1:{free_port()}/0", breaker_cooldown=BREAKER_COOLDOWN
    )
    cache = SyncRedisCache(conn)
    with _quiet("arketic_cache"):
        for _ in range(conn.settings.breaker_threshold + 5):
            if conn.state.breaker.state == "open":
                return conn
            cache.get(KEY)
    raise RuntimeError(f"breaker did not open: {conn.state.breaker.state}")


async def cache_benchmarks(
    url: str, sizes: Sizes, stack: AsyncExitStack, async_peers: Sequence[Contender] = ()
) -> list[Benchmark]:
    """Store the test data on the server at ``url`` and return the cache's benchmarks.

    ``async_peers`` join the async ``get`` benchmark as extra rows. ``stack`` closes clients.
    """
    value = one_kb_value()
    conn, raw, araw = open_clients(url, stack)
    sync_cache, async_cache = SyncRedisCache(conn), RedisCache(conn)

    keys = [f"{MANY_PREFIX}{i}" for i in range(sizes.many_keys)]
    if not sync_cache.set(KEY, value, ttl=3600) or not sync_cache.set_many(
        dict.fromkeys(keys, value), ttl=3600
    ):
        raise RuntimeError("could not store the benchmark data")
    expected_many = dict.fromkeys(keys, value)
    # The cache's own clients (RESP3, decoded replies, no retries), used raw: their rows split
    # a gap to the floor into client configuration and the cache layer itself.
    ours, aours = conn.sync_client, conn.client

    def raw_get() -> Any:
        return json.loads(raw.get(KEY))  # type: ignore[arg-type]

    def ours_raw_get() -> Any:
        return json.loads(ours.get(KEY))  # type: ignore[arg-type]

    async def araw_get() -> Any:
        return json.loads(await araw.get(KEY))  # type: ignore[arg-type]

    async def aours_raw_get() -> Any:
        return json.loads(await aours.get(KEY))  # type: ignore[arg-type]

    def raw_many() -> dict[str, Any]:
        replies = raw.mget(keys)
        return {k: json.loads(v) for k, v in zip(keys, replies, strict=True) if v is not None}

    async def araw_many() -> dict[str, Any]:
        replies = await araw.mget(keys)
        return {k: json.loads(v) for k, v in zip(keys, replies, strict=True) if v is not None}

    def cache_get() -> Any:
        return sync_cache.get(KEY)

    async def acache_get() -> Any:
        return await async_cache.get(KEY)

    def cache_many() -> dict[str, Any]:
        return sync_cache.get_many(keys)

    async def acache_many() -> dict[str, Any]:
        return await async_cache.get_many(keys)

    for label, got in [
        ("raw get", raw_get()),
        ("cache client get", ours_raw_get()),
        ("async raw get", await araw_get()),
        ("async cache client get", await aours_raw_get()),
        ("SyncRedisCache.get", cache_get()),
        ("RedisCache.get", await acache_get()),
    ]:
        _expect(label, got, value)
    for label, got_many in [
        ("raw MGET", raw_many()),
        ("async raw MGET", await araw_many()),
        ("SyncRedisCache.get_many", cache_many()),
        ("RedisCache.get_many", await acache_many()),
    ]:
        _expect(label, got_many, expected_many)

    return [
        Benchmark(
            "get 1 KB (sync)",
            sizes.get_calls,
            [
                Contender("redis-py `json.loads(r.get(k))`", sync_batch(raw_get), "floor"),
                Contender("SyncRedisCache.get", sync_batch(cache_get)),
                Contender(
                    "raw GET on the cache's own client (RESP3, str)",
                    sync_batch(ours_raw_get),
                    "info",
                ),
            ],
            HIT_TARGET,
        ),
        Benchmark(
            "get 1 KB (async)",
            sizes.get_calls,
            [
                Contender(
                    "redis.asyncio `json.loads(await r.get(k))`", async_batch(araw_get), "floor"
                ),
                Contender("RedisCache.get", async_batch(acache_get)),
                Contender(
                    "raw GET on the cache's own client (RESP3, str)",
                    async_batch(aours_raw_get),
                    "info",
                ),
                *async_peers,
            ],
            HIT_TARGET,
        ),
        Benchmark(
            f"get_many {sizes.many_keys} x 1 KB (sync)",
            sizes.many_calls,
            [
                Contender("redis-py MGET + json.loads each", sync_batch(raw_many), "floor"),
                Contender("SyncRedisCache.get_many", sync_batch(cache_many)),
            ],
            HIT_TARGET,
        ),
        Benchmark(
            f"get_many {sizes.many_keys} x 1 KB (async)",
            sizes.many_calls,
            [
                Contender("redis.asyncio MGET + json.loads each", async_batch(araw_many), "floor"),
                Contender("RedisCache.get_many", async_batch(acache_many)),
            ],
            HIT_TARGET,
        ),
        _breaker_benchmark(sizes, stack),
    ]


def _breaker_benchmark(sizes: Sizes, stack: AsyncExitStack) -> Benchmark:
    conn = _open_breaker()
    stack.push_async_callback(_check_still_open, conn, conn.state.errors)
    sync_cache, async_cache = SyncRedisCache(conn), RedisCache(conn)

    def call() -> Any:
        return sync_cache.get(KEY)

    async def acall() -> Any:
        return await async_cache.get(KEY)

    return Benchmark(
        "get, circuit breaker open",
        sizes.breaker_calls,
        [
            Contender("SyncRedisCache.get", sync_batch(call)),
            Contender("RedisCache.get", async_batch(acall)),
        ],
        OPEN_BREAKER_TARGET,
    )


async def _check_still_open(conn: RedisConnection, errors: int) -> None:
    """Fail loudly if a probe slipped through: then the breaker rows timed real failures."""
    try:
        if conn.state.breaker.state != "open" or conn.state.errors != errors:
            raise RuntimeError("the breaker closed or probed during the run; rerun the benchmark")
    finally:
        await conn.aclose()
