"""Every public constructor checks its arguments when called and names the mistake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from arketic_cache import (
    ChatMessagesKey,
    ConfigurationError,
    HashKey,
    HashRepository,
    KeySchema,
    ListKey,
    ListRepository,
    RedisCache,
    RedisConnection,
    RedisRateLimiter,
    RedisSessionManager,
    SessionUserKey,
    SetKey,
    SetRepository,
    SortedSetKey,
    SortedSetRepository,
    StreamKey,
    StreamRepository,
    StringKey,
    StringRepository,
    SyncHashRepository,
    SyncListRepository,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
    SyncSetRepository,
    SyncSortedSetRepository,
    SyncStreamRepository,
    SyncStringRepository,
    UserPermissionsKey,
    UserPreferencesKey,
    cached,
    rate_limited,
)

URL = "redis://app:hunter2@cache.internal:6379/0"


class NoteKey(StringKey[str]):
    template = "note:{name}"
    name: str


class Event(pydantic.BaseModel):
    text: str


class EventsKey(StreamKey[Event]):
    template = "events:{name}"
    name: str


SCHEMAS: dict[type[KeySchema], type[KeySchema]] = {
    StringKey: NoteKey,
    HashKey: UserPreferencesKey,
    ListKey: ChatMessagesKey,
    SetKey: UserPermissionsKey,
    SortedSetKey: SessionUserKey,
    StreamKey: EventsKey,
}


CACHES = [RedisCache, SyncRedisCache]
REPOSITORIES = [
    StringRepository,
    SyncStringRepository,
    HashRepository,
    SyncHashRepository,
    ListRepository,
    SyncListRepository,
    SetRepository,
    SyncSetRepository,
    SortedSetRepository,
    SyncSortedSetRepository,
    StreamRepository,
    SyncStreamRepository,
]
SERVICES = [RedisRateLimiter, SyncRedisRateLimiter, RedisSessionManager, SyncRedisSessionManager]


def refused(build: Callable[[], Any]) -> str:
    """The ConfigurationError message ``build`` raises; it never shows the password."""
    with pytest.raises(ConfigurationError) as caught:
        build()
    message = str(caught.value)
    assert "hunter2" not in message
    return message


@pytest.mark.parametrize("cls", CACHES, ids=lambda c: c.__name__)
def test_a_url_given_to_a_cache_points_to_from_url(cls: Any) -> None:
    """``SyncRedisCache("redis://...")`` fails at once, naming the argument and from_url."""
    message = refused(lambda: cls(URL))
    assert f"{cls.__name__}: connection is a RedisConnection" in message
    assert f"{cls.__name__}.from_url(" in message
    assert "redis://app:***@cache.internal:6379/0" in message


@pytest.mark.parametrize("cls", REPOSITORIES, ids=lambda c: c.__name__)
def test_a_url_given_to_a_repository_is_named(cls: Any) -> None:
    """In the schema's place or the connection's, a URL is refused with the way to pass it."""
    assert "schema is a " in refused(lambda: cls(URL))
    message = refused(lambda: cls(SCHEMAS[cls.kind], URL))
    assert "connection is a RedisConnection" in message
    assert "connection=RedisConnection(url=...)" in message


@pytest.mark.parametrize("cls", SERVICES, ids=lambda c: c.__name__)
def test_a_url_given_to_a_service_is_named(cls: Any) -> None:
    """Limiters and session managers take a number first: a URL there says where it goes."""
    message = refused(lambda: cls(URL))
    assert "is a number of seconds" in message
    assert "connection=RedisConnection(url=...)" in message
    assert "connection is a RedisConnection" in refused(lambda: cls(connection=URL))


@pytest.mark.parametrize("cls", [*CACHES, *SERVICES], ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("name", "value"),
    [("strict", "false"), ("key_prefix", 7), ("connection", object())],
)
def test_shared_arguments_are_checked(cls: Any, name: str, value: Any) -> None:
    """A truthy str for a flag, a non-str prefix or a non-connection fail, naming the argument."""
    assert name in refused(lambda: cls(**{name: value}))


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: SyncRedisCache(default_ttl=0), "default_ttl"),
        (lambda: RedisCache(default_ttl="60"), "default_ttl"),  # type: ignore[arg-type]
        (lambda: SyncRedisRateLimiter(fail_closed="yes"), "fail_closed"),  # type: ignore[arg-type]
        (lambda: SyncRedisRateLimiter(0), "window"),
        (lambda: RedisRateLimiter(mode="exact"), "mode"),  # type: ignore[arg-type]
        (lambda: SyncRedisRateLimiter(clock=5), "clock"),  # type: ignore[arg-type]
        (lambda: SyncRedisSessionManager(sliding="no"), "sliding"),  # type: ignore[arg-type]
        (lambda: RedisSessionManager(clock="now"), "clock"),  # type: ignore[arg-type]
        (lambda: RedisConnection(URL), "url="),  # type: ignore[arg-type]
        (lambda: cached(connection=URL), "connection"),  # type: ignore[arg-type]
        (lambda: cached(l1="off"), "l1"),  # type: ignore[arg-type]
        (lambda: rate_limited(5, connection=URL), "connection"),  # type: ignore[arg-type]
        (lambda: rate_limited(5, fail_closed=1), "fail_closed"),  # type: ignore[arg-type]
    ],
    ids=[
        "cache-ttl-0",
        "cache-ttl-str",
        "fail_closed",
        "window",
        "mode",
        "limiter-clock",
        "sliding",
        "session-clock",
        "connection-settings",
        "cached-connection",
        "cached-flag",
        "rate_limited-connection",
        "rate_limited-flag",
    ],
)
def test_each_argument_is_named(build: Callable[[], Any], name: str) -> None:
    """Each bad argument fails when the object is built, naming that argument."""
    assert name in refused(build)


def test_from_url_builds_a_working_cache(backend_url: str) -> None:
    """``SyncRedisCache.from_url`` is the one-line form; its connection is the caller's to close."""
    cache = SyncRedisCache.from_url(backend_url, default_ttl=30, key_prefix="t:", socket_timeout=2)
    try:
        assert cache.set("k", {"a": 1})
        assert cache.get("k") == {"a": 1}
        assert cache.default_ttl == 30
        assert cache.connection.settings.socket_timeout == 2
        assert cache.connection.sync_client.ttl("t:k") == 30
    finally:
        cache.connection.close_sync()


def test_async_from_url(backend_url: str) -> None:
    """``RedisCache.from_url`` likewise, closed with ``aclose``."""
    import asyncio

    async def main() -> Any:
        cache = RedisCache.from_url(backend_url)
        try:
            await cache.set("k", [1, 2])
            return await cache.get("k")
        finally:
            await cache.connection.aclose()

    assert asyncio.run(main()) == [1, 2]


def test_from_url_refuses_a_bad_url() -> None:
    """A malformed URL fails in from_url itself, not at the first call."""
    assert "port" in refused(lambda: SyncRedisCache.from_url("redis://app:hunter2@h:notaport/0"))
