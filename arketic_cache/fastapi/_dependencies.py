"""Dependencies with a stable identity, so ``app.dependency_overrides`` can replace them.

They are coroutine functions although they never wait: FastAPI runs a plain ``def``
dependency in its thread pool, a hop per dependency per request (measured in the HTTP
benchmark: two such hops cost a rate-limited endpoint about a third of its throughput).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends

from .._cache import RedisCache
from .._pubsub import PubSub
from .._ratelimit import RedisRateLimiter
from .._session import RedisSessionManager

__all__ = [
    "CacheDep",
    "PubSubDep",
    "RateLimiterDep",
    "SessionManagerDep",
    "get_cache",
    "get_pubsub",
    "get_rate_limiter",
    "get_session_manager",
    "provide",
]

T = TypeVar("T")

_lock = threading.Lock()
_pubsub: PubSub | None = None
_provided: dict[int, tuple[Any, Callable[[], Any]]] = {}


async def get_cache() -> RedisCache:
    """The spec's global cache (``arketic_cache.cache``)."""
    from .. import cache

    return cache


async def get_rate_limiter() -> RedisRateLimiter:
    """The spec's global rate limiter (``arketic_cache.rate_limiter``)."""
    return global_rate_limiter()


def global_rate_limiter() -> RedisRateLimiter:
    """``arketic_cache.rate_limiter``, for callers outside dependency injection."""
    from .. import rate_limiter

    return rate_limiter


async def get_session_manager() -> RedisSessionManager:
    """The spec's global session manager (``arketic_cache.session_manager``)."""
    from .. import session_manager

    return session_manager


async def get_pubsub() -> PubSub:
    """A process-wide ``PubSub`` on the ``init_redis()`` connection."""
    global _pubsub
    if _pubsub is None:
        with _lock:
            if _pubsub is None:
                _pubsub = PubSub()
    return _pubsub


def provide(value: T) -> Callable[[], Awaitable[T]]:
    """A dependency returning ``value`` (a repository, a cache of your own...): the same
    function for the same object every time, so it can be overridden in tests."""
    with _lock:
        known = _provided.get(id(value))
        if known is not None and known[0] is value:
            return known[1]

        async def dependency() -> T:
            return value

        dependency.__name__ = dependency.__qualname__ = f"provide_{type(value).__name__}"
        _provided[id(value)] = (value, dependency)
        return dependency


CacheDep = Annotated[RedisCache, Depends(get_cache)]
RateLimiterDep = Annotated[RedisRateLimiter, Depends(get_rate_limiter)]
SessionManagerDep = Annotated[RedisSessionManager, Depends(get_session_manager)]
PubSubDep = Annotated[PubSub, Depends(get_pubsub)]
