"""``@rate_limited`` stacked over and under an async ``@cached``: still a coroutine function,
never a flow on the blocking driver, and each order limits what it should.

Over ``@cached``, the limit counts every call (an L1 hit too); under it, only computations (a
cached result is served without asking the limiter). Both run on {fakeredis, real server}.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from arketic_cache import RateLimitExceeded, RedisConnection, cached, rate_limited
from arketic_cache._drive import AsyncDriver, SyncDriver

from .helpers import settle


class DriverSpy:
    """Counts the flows each driver runs (and on which thread the blocking one ran them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sync_threads: list[str] = []
        self.async_runs = 0
        sync_run, async_run = SyncDriver.run, AsyncDriver.run

        def spy_sync(driver: SyncDriver, *args: Any) -> Any:
            self.sync_threads.append(threading.current_thread().name)
            return sync_run(driver, *args)

        async def spy_async(driver: AsyncDriver, *args: Any) -> Any:
            self.async_runs += 1
            return await async_run(driver, *args)

        monkeypatch.setattr(SyncDriver, "run", spy_sync)
        monkeypatch.setattr(AsyncDriver, "run", spy_async)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> DriverSpy:
    return DriverSpy(monkeypatch)


def on_loop(conn: RedisConnection, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a new event loop, then close the connection on that loop."""

    async def main() -> None:
        try:
            await scenario()
        finally:
            await conn.aclose()

    asyncio.run(main())


# -- still coroutine functions -------------------------------------------------------------------
async def _double(x: int) -> int:
    return 2 * x


def _sync_double(x: int) -> int:
    return 2 * x


STACKS = ["cached", "rate_limited", "limit-over-cache", "cache-over-limit"]


def _stacks(fn: Callable[..., Any]) -> dict[str, Any]:
    return {
        "cached": cached(l2=False)(fn),
        "rate_limited": rate_limited(5)(fn),
        "limit-over-cache": rate_limited(5)(cached(l2=False)(fn)),
        "cache-over-limit": cached(l2=False)(rate_limited(5)(fn)),
    }


class AsyncShop:
    @rate_limited(5)
    @cached(l2=False)
    async def limit_over_cache(self, x: int) -> int:
        return x

    @cached(l2=False)
    @rate_limited(5)
    async def cache_over_limit(self, x: int) -> int:
        return x

    @cached(l2=False)
    async def cached_only(self, x: int) -> int:
        return x


class SyncShop:
    @rate_limited(5)
    @cached(l2=False)
    def limit_over_cache(self, x: int) -> int:
        return x

    @cached(l2=False)
    @rate_limited(5)
    def cache_over_limit(self, x: int) -> int:
        return x


@pytest.mark.parametrize(
    "stack", ["cached", "rate_limited", "limit-over-cache", "cache-over-limit"]
)
def test_async_stacks_are_coroutine_functions(stack: str) -> None:
    fn = _stacks(_double)[stack]
    assert inspect.iscoroutinefunction(fn)
    assert asyncio.iscoroutinefunction(fn)
    assert inspect.signature(fn) == inspect.signature(_double)


@pytest.mark.parametrize(
    "stack", ["cached", "rate_limited", "limit-over-cache", "cache-over-limit"]
)
def test_sync_stacks_are_not(stack: str) -> None:
    fn = _stacks(_sync_double)[stack]
    assert not inspect.iscoroutinefunction(fn)
    assert not asyncio.iscoroutinefunction(fn)


@pytest.mark.parametrize("name", ["limit_over_cache", "cache_over_limit", "cached_only"])
def test_async_methods_are_coroutine_functions(name: str) -> None:
    for method in (getattr(AsyncShop, name), getattr(AsyncShop(), name)):
        assert inspect.iscoroutinefunction(method), method
        assert asyncio.iscoroutinefunction(method), method
    sync = getattr(SyncShop, name, None)
    if sync is not None:
        assert not inspect.iscoroutinefunction(sync)
        assert not inspect.iscoroutinefunction(getattr(SyncShop(), name))


# -- never the blocking driver, and the right limit ----------------------------------------------
def test_the_spy_sees_a_sync_flow(backend_url: str, spy: DriverSpy) -> None:
    """Control: a sync @cached call does run its flows on the blocking driver."""
    conn = RedisConnection(url=backend_url)

    @cached(connection=conn, ttl=60)
    def f(x: int) -> int:
        return x

    try:
        assert f(1) == 1
        assert spy.sync_threads, "the spy missed a blocking flow"
        assert spy.async_runs == 0
    finally:
        conn.close_sync()


def test_limit_over_cache_counts_every_call(backend_url: str, spy: DriverSpy) -> None:
    conn = RedisConnection(url=backend_url)
    computed: list[int] = []

    @cached(connection=conn, ttl=60)
    async def inner(x: int) -> int:
        computed.append(x)
        return 10 * x

    f = rate_limited(3, window=60, connection=conn)(inner)
    settle(inner)

    async def scenario() -> None:
        assert [await f(1), await f(1), await f(2)] == [10, 10, 20]
        with pytest.raises(RateLimitExceeded) as denied:
            await f(1)  # an L1 hit, but over the limit: denied before the cache is asked
        assert denied.value.decision.allowed is False
        assert denied.value.decision.limit == 3
        assert computed == [1, 2]
        assert inner.cache_info().l1_hits == 1

    on_loop(conn, scenario)
    assert spy.sync_threads == [], "a flow ran on the blocking driver"
    assert spy.async_runs >= 5  # 4 limit checks, the L2 reads and writes


def test_cache_over_limit_counts_only_computations(backend_url: str, spy: DriverSpy) -> None:
    conn = RedisConnection(url=backend_url)
    computed: list[int] = []

    @cached(connection=conn, ttl=60)
    @rate_limited(2, window=60, connection=conn)
    async def f(x: int) -> int:
        computed.append(x)
        return 10 * x

    settle(f)

    async def scenario() -> None:
        assert [await f(1) for _ in range(5)] == [10] * 5  # one computation, four hits
        assert await f(2) == 20
        with pytest.raises(RateLimitExceeded):
            await f(3)  # a third computation: denied, and nothing is cached for it
        assert computed == [1, 2]
        assert await f(1) == 10, "cached results are still served"
        with pytest.raises(RateLimitExceeded):
            await f(3)
        info = f.cache_info()
        assert (info.l1_hits, info.misses) == (5, 4)

    on_loop(conn, scenario)
    assert spy.sync_threads == [], "a flow ran on the blocking driver"
    assert spy.async_runs > 0


def test_async_methods_stacked_both_ways(backend_url: str, spy: DriverSpy) -> None:
    conn = RedisConnection(url=backend_url)
    computed: list[tuple[str, int]] = []

    class Shop:
        @rate_limited(2, window=60, connection=conn)
        @cached(connection=conn, ttl=60)
        async def limit_over_cache(self, x: int) -> int:
            computed.append(("over", x))
            return x + 100

        @cached(connection=conn, ttl=60)
        @rate_limited(1, window=60, connection=conn)
        async def cache_over_limit(self, x: int) -> int:
            computed.append(("under", x))
            return x + 200

        @cached(connection=conn, ttl=60)
        async def cached_only(self, x: int) -> int:
            computed.append(("plain", x))
            return x + 300

    for name in ("limit_over_cache", "cache_over_limit", "cached_only"):
        settle(getattr(Shop, name))

    async def scenario() -> None:
        a, b = Shop(), Shop()
        assert [await a.limit_over_cache(1), await b.limit_over_cache(1)] == [101, 101]
        with pytest.raises(RateLimitExceeded):
            await a.limit_over_cache(1)
        assert [await a.cache_over_limit(1), await b.cache_over_limit(1)] == [201, 201]
        with pytest.raises(RateLimitExceeded):
            await a.cache_over_limit(2)
        assert [await a.cached_only(1), await b.cached_only(1)] == [301, 301]
        assert await a.cached_only.invalidate(1) is True
        assert await b.cached_only(1) == 301
        assert computed == [("over", 1), ("under", 1), ("plain", 1), ("plain", 1)]

    on_loop(conn, scenario)
    assert spy.sync_threads == [], "a flow ran on the blocking driver"
    assert spy.async_runs > 0
