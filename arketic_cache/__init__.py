"""arketic_cache: one typed Redis layer for caching, rate limiting, sessions and health.

Start-up::

    await init_redis()            # REDIS_URL, REDIS_PASSWORD, RESPONSE_CACHE_TTL, ...
    await cache.set("user:1:profile", {"name": "Ada"}, ttl=300)
"""

from ._cache import RedisCache, SyncRedisCache
from ._cached import AsyncCached, Cached, CachedDecorator, CacheInfo, cached
from ._catalogue import (
    AIModelConfigKey,
    AIPromptKey,
    AIResponseKey,
    ChatMessagesKey,
    ChatMetadataKey,
    ChatParticipantsKey,
    Id,
    JSONObject,
    JSONRecord,
    KBDocumentsKey,
    KBEmbeddingKey,
    KBSearchKey,
    RateLimitAIRequestsKey,
    RateLimitAITokensKey,
    RateLimitApiGlobalKey,
    RateLimitApiKey,
    RateLimitDownloadKey,
    RateLimitIpKey,
    RateLimitOrgMonthlyKey,
    RateLimitUploadKey,
    RefreshFamilyRecord,
    RefreshTokenRecord,
    SessionKey,
    SessionRecord,
    SessionRefreshFamilyKey,
    SessionRefreshKey,
    SessionUserKey,
    UserPermissionsKey,
    UserPreferencesKey,
    UserProfileKey,
)
from ._connection import (
    RedisConnection,
    close_redis,
    close_redis_sync,
    get_redis,
    get_redis_sync,
    init_redis,
    init_redis_sync,
)
from ._core._health import HealthCheck, HealthReport, HealthThresholds
from ._core._ratelimit import Decision, Limit, LimitState, rate_limit_headers
from ._core._session import SessionData, SessionMetadata, UserSession
from ._exceptions import (
    ArketicCacheError,
    BackendError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
    InvalidInputError,
    KeySchemaError,
    NotInitializedError,
    PoolExhausted,
    RateLimitExceeded,
    SerializationError,
)
from ._health import (
    check_redis_health,
    check_redis_health_sync,
    health_report,
    health_report_sync,
)
from ._keys import (
    HashKey,
    KeySchema,
    ListKey,
    RateLimitKey,
    RedisKey,
    RedisType,
    SetKey,
    SortedSetKey,
    StreamKey,
    StringKey,
    stable_hash,
)
from ._rate_limited import rate_limited
from ._ratelimit import RedisRateLimiter, SyncRedisRateLimiter
from ._repositories import (
    HashRepository,
    ListRepository,
    Repository,
    SetRepository,
    SortedSetRepository,
    StreamRepository,
    StringRepository,
    SyncHashRepository,
    SyncListRepository,
    SyncSetRepository,
    SyncSortedSetRepository,
    SyncStreamRepository,
    SyncStringRepository,
)
from ._session import RedisSessionManager, SyncRedisSessionManager
from ._settings import RedisSettings, redact_url
from ._ttl import TTL, TTL_SECONDS

__all__ = [
    "TTL",
    "TTL_SECONDS",
    "AIModelConfigKey",
    "AIPromptKey",
    "AIResponseKey",
    "ArketicCacheError",
    "AsyncCached",
    "BackendError",
    "BackendResponseError",
    "BackendTimeout",
    "BackendUnavailable",
    "CacheInfo",
    "Cached",
    "CachedDecorator",
    "ChatMessagesKey",
    "ChatMetadataKey",
    "ChatParticipantsKey",
    "CircuitOpen",
    "ConfigurationError",
    "Decision",
    "HashKey",
    "HashRepository",
    "HealthCheck",
    "HealthReport",
    "HealthThresholds",
    "Id",
    "InvalidInputError",
    "JSONObject",
    "JSONRecord",
    "KBDocumentsKey",
    "KBEmbeddingKey",
    "KBSearchKey",
    "KeySchema",
    "KeySchemaError",
    "Limit",
    "LimitState",
    "ListKey",
    "ListRepository",
    "NotInitializedError",
    "PoolExhausted",
    "RateLimitAIRequestsKey",
    "RateLimitAITokensKey",
    "RateLimitApiGlobalKey",
    "RateLimitApiKey",
    "RateLimitDownloadKey",
    "RateLimitExceeded",
    "RateLimitIpKey",
    "RateLimitKey",
    "RateLimitOrgMonthlyKey",
    "RateLimitUploadKey",
    "RedisCache",
    "RedisConnection",
    "RedisKey",
    "RedisRateLimiter",
    "RedisSessionManager",
    "RedisSettings",
    "RedisType",
    "RefreshFamilyRecord",
    "RefreshTokenRecord",
    "Repository",
    "SerializationError",
    "SessionData",
    "SessionKey",
    "SessionMetadata",
    "SessionRecord",
    "SessionRefreshFamilyKey",
    "SessionRefreshKey",
    "SessionUserKey",
    "SetKey",
    "SetRepository",
    "SortedSetKey",
    "SortedSetRepository",
    "StreamKey",
    "StreamRepository",
    "StringKey",
    "StringRepository",
    "SyncHashRepository",
    "SyncListRepository",
    "SyncRedisCache",
    "SyncRedisRateLimiter",
    "SyncRedisSessionManager",
    "SyncSetRepository",
    "SyncSortedSetRepository",
    "SyncStreamRepository",
    "SyncStringRepository",
    "UserPermissionsKey",
    "UserPreferencesKey",
    "UserProfileKey",
    "UserSession",
    "cache",
    "cached",
    "check_redis_health",
    "check_redis_health_sync",
    "close_redis",
    "close_redis_sync",
    "get_redis",
    "get_redis_sync",
    "health_report",
    "health_report_sync",
    "init_redis",
    "init_redis_sync",
    "rate_limit_headers",
    "rate_limited",
    "rate_limiter",
    "redact_url",
    "session_manager",
    "stable_hash",
    "sync_cache",
    "sync_rate_limiter",
    "sync_session_manager",
]

#: The spec's global cache; usable once ``init_redis()`` has run.
cache = RedisCache()
#: Its blocking twin; usable once ``init_redis_sync()`` (or ``init_redis()``) has run.
sync_cache = SyncRedisCache()
#: The spec's global rate limiter (60 s window); usable once ``init_redis()`` has run.
rate_limiter = RedisRateLimiter()
#: Its blocking twin.
sync_rate_limiter = SyncRedisRateLimiter()
#: The spec's global session manager (1 h idle TTL); usable once ``init_redis()`` has run.
session_manager = RedisSessionManager()
#: Its blocking twin.
sync_session_manager = SyncRedisSessionManager()
