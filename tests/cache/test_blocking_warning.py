"""A sync twin called inside a running event loop warns, at the caller's line, once per line."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arketic_cache import (
    RedisConnection,
    StringKey,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
    SyncStringRepository,
    rate_limited,
)


class NoteKey(StringKey[str]):
    template = "note:{name}"
    name: str


@pytest.fixture
def conn(backend_url: str) -> Iterator[RedisConnection]:
    connection = RedisConnection(url=backend_url)
    yield connection
    connection.close_sync()


def caught(call: Callable[[], Any]) -> list[warnings.WarningMessage]:
    """The RuntimeWarnings ``call`` raises under the default filter (once per location)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        call()
    return [w for w in seen if issubclass(w.category, RuntimeWarning)]


def in_loop(call: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return call()

    return asyncio.run(main())


def test_sync_cache_in_a_loop_names_the_async_twin(conn: RedisConnection) -> None:
    """The warning names the method, its awaitable twin, and this file as the call site."""
    cache = SyncRedisCache(conn)
    seen = caught(lambda: in_loop(lambda: cache.set("k", 1)))
    assert [str(w.message) for w in seen] == [
        "SyncRedisCache.set blocks the running event loop on every Redis call: "
        "await RedisCache.set instead"
    ]
    assert seen[0].filename == __file__


def test_the_call_still_runs(conn: RedisConnection) -> None:
    """The warning only warns: the call does its work."""
    cache = SyncRedisCache(conn)
    with pytest.warns(RuntimeWarning):
        assert in_loop(lambda: (cache.set("k", 7), cache.get("k"))[1]) == 7


def test_once_per_call_site(conn: RedisConnection) -> None:
    """Repeated calls from one line warn once; another line warns again."""
    cache = SyncRedisCache(conn)

    def twice_here_then_elsewhere() -> None:
        for _ in range(3):
            cache.get("k")
        cache.get("k")

    seen = caught(lambda: in_loop(twice_here_then_elsewhere))
    assert len(seen) == 2
    assert seen[0].lineno != seen[1].lineno


def test_no_warning_outside_a_loop_or_in_a_worker_thread(conn: RedisConnection) -> None:
    """Plain sync code and ``asyncio.to_thread`` (the remedy) never warn."""
    cache = SyncRedisCache(conn)
    assert caught(lambda: cache.set("k", 1)) == []

    async def off_loop() -> Any:
        return await asyncio.to_thread(cache.get, "k")

    assert caught(lambda: asyncio.run(off_loop())) == []


@pytest.mark.parametrize(
    ("build", "call", "twin"),
    [
        (
            lambda c: SyncStringRepository(NoteKey, c),
            lambda r: r.get(NoteKey(name="a")),
            "await StringRepository.get",
        ),
        (lambda c: SyncRedisRateLimiter(connection=c), lambda r: r.check("k", 5), "check"),
        (
            lambda c: SyncRedisSessionManager(connection=c),
            lambda r: r.get_session("x" * 43),
            "await RedisSessionManager.get_session",
        ),
    ],
    ids=["repository", "limiter", "sessions"],
)
def test_every_sync_twin_warns(
    conn: RedisConnection,
    build: Callable[[RedisConnection], Any],
    call: Callable[[Any], Any],
    twin: str,
) -> None:
    """Repositories, limiters and session managers warn alike."""
    shell = build(conn)
    seen = caught(lambda: in_loop(lambda: call(shell)))
    assert len(seen) == 1
    assert twin in str(seen[0].message)
    assert seen[0].filename == __file__


def test_a_sync_rate_limited_function_blames_its_caller(conn: RedisConnection) -> None:
    """Through ``@rate_limited`` the warning points at the line calling the function."""

    @rate_limited(5, connection=conn)
    def handler() -> str:
        return "ok"

    seen = caught(lambda: in_loop(handler))
    assert len(seen) == 1
    assert "await RedisRateLimiter.check" in str(seen[0].message)
    assert seen[0].filename == __file__
