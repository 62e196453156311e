"""A @cached function outlives connections: closing one drops the L1 copies read through it,
so the next connection (another database, the next test's app) computes afresh."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from arketic_cache import (
    cached,
    close_redis,
    close_redis_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache.testing import RedisServer


def databases(request: pytest.FixtureRequest, kind: str) -> tuple[str, str]:
    """Two empty databases: fakeredis servers, or databases 1 and 2 of the harness' server."""
    if kind == "memory":
        return f"memory://one-{uuid.uuid4().hex}", f"memory://two-{uuid.uuid4().hex}"
    server: RedisServer = request.getfixturevalue("redis_server")
    base = server.url.rsplit("/", 1)[0]
    urls = f"{base}/1", f"{base}/2"
    import redis

    for url in urls:
        with redis.Redis.from_url(url) as admin:
            admin.flushdb()  # our own throwaway server
    return urls


KINDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.parametrize("kind", KINDS)
def test_async_l1_copies_end_with_their_connection(
    request: pytest.FixtureRequest, kind: str
) -> None:
    calls: list[int] = []

    @cached(ttl=60)
    async def compute(n: int) -> int:
        calls.append(n)
        return n * len(calls)

    async def scenario() -> list[int]:
        seen = []
        for url in databases(request, kind):
            await init_redis(url)
            seen += [await compute(3), await compute(3)]  # the second is an L1 hit
            await close_redis()
        return seen

    assert asyncio.run(scenario()) == [3, 3, 6, 6]
    assert calls == [3, 3]
    assert compute.cache_info().l1_size == 0  # closed: nothing kept


@pytest.mark.parametrize("kind", KINDS)
def test_sync_l1_copies_end_with_their_connection(
    request: pytest.FixtureRequest, kind: str
) -> None:
    calls: list[int] = []

    @cached(ttl=60)
    def compute(n: int) -> int:
        calls.append(n)
        return n * len(calls)

    seen = []
    for url in databases(request, kind):
        init_redis_sync(url)
        seen += [compute(3), compute(3)]
        close_redis_sync()
    assert seen == [3, 3, 6, 6]
    assert calls == [3, 3]
