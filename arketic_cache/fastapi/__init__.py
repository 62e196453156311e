"""FastAPI integration (extra ``fastapi``), built on the library's public API.

    from arketic_cache.fastapi import health_router, install, redis_lifespan

    app = FastAPI(lifespan=redis_lifespan())   # init_redis() on startup, close_redis() after
    install(app)                               # 429s with headers, 503s for the session store
    app.include_router(health_router())        # /health, /health/live, /monitoring/redis

Dependencies are module-level functions (``get_cache``, ``get_rate_limiter``,
``get_session_manager``, ``get_pubsub``, ``provide(repository)``...), so
``app.dependency_overrides[get_cache] = ...`` replaces them in tests.
"""

from __future__ import annotations

from .._exceptions import ConfigurationError

try:
    import fastapi as _fastapi  # noqa: F401 (the extra's presence)
except ImportError:  # pragma: no cover - exercised by a test that hides the package
    raise ConfigurationError(
        "arketic_cache.fastapi needs FastAPI: pip install 'arketic-cache[fastapi]'"
    ) from None

from ._dependencies import (
    CacheDep,
    PubSubDep,
    RateLimiterDep,
    SessionManagerDep,
    get_cache,
    get_pubsub,
    get_rate_limiter,
    get_session_manager,
    provide,
)
from ._events import event_stream, relay_websocket, sse_event
from ._health_routes import HealthJSONResponse, health_router
from ._lifespan import Lifespan, redis_lifespan
from ._ratelimits import (
    RateLimit,
    RateLimitApiKeyKey,
    RateLimitIpEndpointKey,
    RateLimitMiddleware,
    client_ip,
    rate_limit,
    rate_limit_exceeded_handler,
    rate_limits_enabled,
)
from ._sessions import (
    CurrentSession,
    SessionCookie,
    SessionCookies,
    SessionCookiesDep,
    SessionDep,
    current_session,
    get_session_cookie,
    get_session_cookies,
    get_session_store,
    optional_session,
)
from ._setup import backend_error_handler, install

__all__ = [
    "CacheDep",
    "CurrentSession",
    "HealthJSONResponse",
    "Lifespan",
    "PubSubDep",
    "RateLimit",
    "RateLimitApiKeyKey",
    "RateLimitIpEndpointKey",
    "RateLimitMiddleware",
    "RateLimiterDep",
    "SessionCookie",
    "SessionCookies",
    "SessionCookiesDep",
    "SessionDep",
    "SessionManagerDep",
    "backend_error_handler",
    "client_ip",
    "current_session",
    "event_stream",
    "get_cache",
    "get_pubsub",
    "get_rate_limiter",
    "get_session_cookie",
    "get_session_cookies",
    "get_session_manager",
    "get_session_store",
    "health_router",
    "install",
    "optional_session",
    "provide",
    "rate_limit",
    "rate_limit_exceeded_handler",
    "rate_limits_enabled",
    "redis_lifespan",
    "relay_websocket",
    "sse_event",
]
