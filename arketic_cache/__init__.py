"""arketic_cache: one typed Redis layer for caching, rate limiting, sessions and health.

Start-up::

    await init_redis()            # REDIS_URL, REDIS_PASSWORD, RESPONSE_CACHE_TTL, ...
    await cache.set("user:1:profile", {"name": "Ada"}, ttl=300)
"""

from ._cache import RedisCache, SyncRedisCache
from ._connection import (
    RedisConnection,
    close_redis,
    close_redis_sync,
    get_redis,
    get_redis_sync,
    init_redis,
    init_redis_sync,
)
from ._exceptions import (
    ArketicCacheError,
    BackendError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
    InvalidInputError,
    NotInitializedError,
    PoolExhausted,
    SerializationError,
)
from ._settings import RedisSettings, redact_url

__all__ = [
    "ArketicCacheError",
    "BackendError",
    "BackendResponseError",
    "BackendTimeout",
    "BackendUnavailable",
    "CircuitOpen",
    "ConfigurationError",
    "InvalidInputError",
    "NotInitializedError",
    "PoolExhausted",
    "RedisCache",
    "RedisConnection",
    "RedisSettings",
    "SerializationError",
    "SyncRedisCache",
    "cache",
    "close_redis",
    "close_redis_sync",
    "get_redis",
    "get_redis_sync",
    "init_redis",
    "init_redis_sync",
    "redact_url",
    "sync_cache",
]

#: The spec's global cache; usable once ``init_redis()`` has run.
cache = RedisCache()
#: Its blocking twin; usable once ``init_redis_sync()`` (or ``init_redis()``) has run.
sync_cache = SyncRedisCache()
