"""Clients for a Redis URL, and the process-wide connection behind the global instances.

``memory://name`` is an in-process fakeredis server, one per URL, shared by the sync and async
clients (and by every connection to the same URL), so the embedded default behaves like one
real server. fakeredis (with lupa for the Lua scripts) is the optional extra ``memory``: it is
imported only for a ``memory://`` URL.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._breaker import CircuitBreaker
from ._core._effects import Command, Flow
from ._drive import AsyncDriver, BackendState, SyncDriver
from ._exceptions import BackendError, ConfigurationError, NotInitializedError
from ._sentinel import SwitchWatcher, sentinel_client
from ._settings import RedisSettings

if TYPE_CHECKING:
    import fakeredis

__all__ = [
    "RedisConnection",
    "close_redis",
    "close_redis_sync",
    "current_connection",
    "get_redis",
    "get_redis_sync",
    "init_redis",
    "init_redis_sync",
    "live_connections",
]

logger = logging.getLogger("arketic_cache")

_memory_servers: dict[str, fakeredis.FakeServer] = {}
_memory_lock = threading.Lock()


#: What installs the embedded backend's dependencies.
MEMORY_EXTRA = "pip install 'arketic-cache[memory]'"


def _require_memory_backend() -> None:
    """Import fakeredis and lupa (its Lua runtime, which our scripts need), or say what to install.

    Raises:
        ConfigurationError: either is missing.
    """
    for module in ("fakeredis", "lupa"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(
                f"memory:// needs fakeredis with Lua support ({module} is not installed): "
                f"{MEMORY_EXTRA}"
            ) from exc


def _memory_server(url: str) -> fakeredis.FakeServer:
    import fakeredis

    with _memory_lock:
        if url not in _memory_servers:
            _memory_servers[url] = fakeredis.FakeServer()
        return _memory_servers[url]


def _takes_maint_notifications(connection: type[Any]) -> bool:
    """Whether a redis-py connection class has maintenance notifications to configure.

    The sync connections have them from redis-py 7.0, the asyncio ones from 8.1; older ones
    take no such option (an unknown keyword is a ``TypeError`` when the pool connects).
    """
    return "maint_notifications_config" in inspect.signature(connection.__init__).parameters


_MAINT_NOTIFICATIONS = {
    "sync": _takes_maint_notifications(redis.connection.AbstractConnection),
    "async": _takes_maint_notifications(redis.asyncio.connection.AbstractConnection),
}


def _client_options(settings: RedisSettings, flavour: Literal["sync", "async"]) -> dict[str, Any]:
    """redis-py's options for a ``flavour`` (``sync`` or ``async``) client of ``settings``."""
    options: dict[str, Any] = {
        "decode_responses": True,
        # A stored value that is not UTF-8 decodes (lossless) to a str the JSON codec rejects,
        # so it is a cache miss rather than an exception inside redis-py's parser.
        "encoding_errors": "surrogateescape",
        "protocol": settings.protocol,
    }
    if settings.scheme == "memory":
        return options
    options.update(
        max_connections=settings.max_connections,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=settings.health_check_interval,
        # No retries inside redis-py: a resent INCR or script counts twice, and each retry
        # multiplies the time a caller can hang. The breaker handles outages instead.
        retry=(Retry if flavour == "sync" else AsyncRetry)(NoBackoff(), 0),
        client_name="arketic_cache",
    )
    if _MAINT_NOTIFICATIONS[flavour]:
        # With RESP3, redis-py's "auto" maintenance notifications stop the asyncio pool from
        # discarding a pooled connection the server closed, so the first call after a server
        # restart failed. Those notifications exist only on Redis Enterprise/Cloud.
        from redis.maint_notifications import MaintNotificationsConfig

        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    if settings.ssl_password is not None and settings.scheme == "rediss":
        options["ssl_password"] = settings.ssl_password.get_secret_value()
    return options


def bytes_client(settings: RedisSettings) -> redis.Redis:
    """A new blocking redis-py client of ``settings`` returning bytes over RESP2 (binary-safe
    replies of a fixed shape, for the operator's tools); the caller closes it."""
    options = _client_options(settings, "sync")
    options.update(decode_responses=False, protocol=2)
    del options["encoding_errors"]
    if settings.scheme == "memory":
        import fakeredis

        return fakeredis.FakeRedis(server=_memory_server(settings.url), **options)
    if settings.sentinel is not None:
        return cast(redis.Redis, sentinel_client(settings, options, "sync"))
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(settings.url, **options))


class RedisConnection:
    """One Redis endpoint: lazily built sync and async clients sharing one breaker.

    Nothing connects until first use, so building a connection never fails on a down server.
    """

    def __init__(
        self,
        settings: RedisSettings | None = None,
        *,
        clock: Callable[[], float] | None = None,
        **overrides: Any,
    ) -> None:
        """Use ``settings`` (or the defaults), with keyword ``overrides`` such as ``url=``.

        Raises:
            ConfigurationError: a setting is invalid, or the URL is ``memory://`` and the
                extra ``memory`` (fakeredis) is not installed.
        """
        if settings is not None and not isinstance(settings, RedisSettings):
            hint = " (a URL goes in url=...)" if isinstance(settings, str) else ""
            raise ConfigurationError(
                f"RedisConnection: settings is a RedisSettings or None, "
                f"not a {type(settings).__name__}{hint}"
            )
        if settings is None:
            settings = RedisSettings.create(**overrides)
        elif overrides:
            settings = RedisSettings.create(**{**dict(settings), **overrides})
        if settings.scheme == "memory":
            _require_memory_backend()
        self.settings = settings
        breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown, clock)
        secrets = tuple(
            s.get_secret_value()
            for s in (settings.password, settings.ssl_password, settings.sentinel_password)
            if s
        )
        self.state = BackendState(
            breaker,
            secrets,
            pool_size=settings.max_connections,
            pool_timeout=settings.pool_timeout,
            tls_hint=settings.scheme == "redis",
            endpoint=settings.endpoint,
        )
        self._sync: SyncDriver | None = None
        self._async: AsyncDriver | None = None
        self._watcher: SwitchWatcher | None = None
        self._closing: list[Callable[[], None]] = []
        _live.add(self)

    @classmethod
    def from_env(cls, **overrides: Any) -> RedisConnection:
        """Build from ``REDIS_URL`` and the other variables; explicit ``overrides`` win.

        Raises:
            ConfigurationError: a variable holds an invalid value.
        """
        return cls(RedisSettings.from_env(**overrides))

    def __repr__(self) -> str:
        url, breaker = self.settings.display_url, self.state.breaker.state
        return f"RedisConnection(url={url!r}, breaker={breaker!r})"

    @property
    def cluster(self) -> bool:
        """True for a Redis Cluster: multi-key flows then split their keys per slot.

        Only standalone servers are supported so far; the flows are ready for both.
        """
        return False

    @property
    def backend(self) -> str:
        """``memory`` for the embedded fakeredis server, else ``redis``."""
        return "memory" if self.settings.scheme == "memory" else "redis"

    @property
    def sync_driver(self) -> SyncDriver:
        """The blocking driver, created on first use."""
        if self._sync is None:
            self._watch()
            self._sync = SyncDriver(self._new_sync_client(), self.state)
        return self._sync

    @property
    def async_driver(self) -> AsyncDriver:
        """The asyncio driver, created on first use (it binds to the running event loop)."""
        if self._async is None:
            self._watch()
            self._async = AsyncDriver(self._new_async_client(), self.state)
        return self._async

    def _watch(self) -> None:
        """Behind sentinels, follow their switches (from first use to close)."""
        if self.settings.sentinel is not None and self._watcher is None:
            self._watcher = SwitchWatcher(self.settings, self.state)
            weakref.finalize(self, self._watcher.stop)  # never left running after collection

    @property
    def sync_client(self) -> redis.Redis:
        """The blocking redis-py client (responses decoded as UTF-8)."""
        return self.sync_driver.client

    @property
    def client(self) -> redis.asyncio.Redis:
        """The asyncio redis-py client (responses decoded as UTF-8)."""
        return self.async_driver.client

    def _new_sync_client(self) -> redis.Redis:
        options = _client_options(self.settings, "sync")
        if self.settings.scheme == "memory":
            import fakeredis

            return fakeredis.FakeRedis(server=_memory_server(self.settings.url), **options)
        if self.settings.sentinel is not None:
            return cast(redis.Redis, sentinel_client(self.settings, options, "sync", self._watcher))
        pool = redis.ConnectionPool.from_url(self.settings.url, **options)
        return redis.Redis(connection_pool=pool)

    def _new_async_client(self) -> redis.asyncio.Redis:
        options = _client_options(self.settings, "async")
        if self.settings.scheme == "memory":
            import fakeredis

            return fakeredis.FakeAsyncRedis(server=_memory_server(self.settings.url), **options)
        if self.settings.sentinel is not None:
            client = sentinel_client(self.settings, options, "async", self._watcher)
            return cast(redis.asyncio.Redis, client)
        pool = redis.asyncio.ConnectionPool.from_url(self.settings.url, **options)
        return redis.asyncio.Redis(connection_pool=pool)

    def subscriber_connection(self) -> redis.connection.AbstractConnection:
        """A new blocking connection (not yet connected) for a subscriber.

        Its reads may wait up to the listener's PING deadline instead of the short data
        timeout, and redis-py's own health check is off: a PING it slipped in would eat a
        message of a subscribed connection.
        """
        pool = self.sync_driver.client.connection_pool
        options = {**pool.connection_kwargs, "health_check_interval": 0}
        if self.settings.scheme != "memory":
            options["socket_timeout"] = self.settings.listener_ping_timeout
        conn: redis.connection.AbstractConnection = pool.connection_class(**options)
        return conn

    def async_subscriber_connection(self) -> redis.asyncio.connection.AbstractConnection:
        """As ``subscriber_connection``, for an asyncio subscriber on the running loop."""
        pool = self.async_driver.client.connection_pool
        options = {**pool.connection_kwargs, "health_check_interval": 0}
        if self.settings.scheme != "memory":
            options["socket_timeout"] = self.settings.listener_ping_timeout
        return pool.connection_class(**options)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when this connection is closed (listeners stop with it)."""
        self._closing.append(callback)

    def ping_sync(self) -> bool:
        """PING through the sync client; False (logged) when Redis cannot be reached."""
        return self.sync_driver.run(_ping(), False, strict=False)

    async def ping(self) -> bool:
        """PING through the async client; False (logged) when Redis cannot be reached."""
        return await self.async_driver.run(_ping(), False, strict=False)

    def close_sync(self) -> None:
        """Close the sync client's connections (and stop the listeners on it)."""
        closing, self._closing = self._closing, []
        for callback in closing:
            callback()
        if self._watcher is not None:
            watcher, self._watcher = self._watcher, None
            watcher.stop()
        if self._sync is not None:
            driver, self._sync = self._sync, None
            driver.close()
            driver.client.close()
            driver.client.connection_pool.disconnect()

    async def aclose(self) -> None:
        """Close both clients' connections."""
        self.close_sync()
        if self._async is not None:
            driver, self._async = self._async, None
            await driver.aclose()
            await driver.client.aclose()
            await driver.client.connection_pool.disconnect()


def _ping() -> Flow[bool]:
    reply = yield Command(("PING",))
    return bool(reply)


_current: RedisConnection | None = None
#: Every connection not yet collected (what the metrics snapshot reads).
_live: weakref.WeakSet[RedisConnection] = weakref.WeakSet()


def live_connections() -> list[RedisConnection]:
    """Every connection this process made that is not yet collected (closed ones too)."""
    return list(_live)


def current_connection() -> RedisConnection:
    """Return the process-wide connection set up by ``init_redis()``.

    Raises:
        NotInitializedError: ``init_redis()`` / ``init_redis_sync()`` has not run.
    """
    if _current is None:
        raise NotInitializedError("call init_redis() (or init_redis_sync()) at start-up")
    return _current


def _install(
    connection: RedisConnection | None, url: str | None, **overrides: Any
) -> RedisConnection:
    global _current
    if connection is None:
        connection = RedisConnection.from_env(url=url, **overrides)
    _current = connection
    return connection


async def init_redis(
    url: str | None = None,
    *,
    connection: RedisConnection | None = None,
    require: bool = False,
    **overrides: Any,
) -> RedisConnection:
    """Set up the process-wide connection (from the environment) and ping it.

    A failed ping is logged, not raised: the application starts and degrades until Redis is
    up. With ``require=True`` it is raised instead, for services that must not start without
    Redis. Calling it again sets up a new connection (the old one is left to its owner).

    Raises:
        ConfigurationError: the settings are invalid.
        BackendError: ``require=True`` and Redis did not answer (the message says why).
    """
    conn = _install(connection, url, **overrides)
    try:
        await conn.async_driver.run(_ping(), False, strict=True)
    except BackendError as exc:
        _unanswered(conn, exc, require)
    return conn


def init_redis_sync(
    url: str | None = None,
    *,
    connection: RedisConnection | None = None,
    require: bool = False,
    **overrides: Any,
) -> RedisConnection:
    """Blocking twin of ``init_redis()``."""
    conn = _install(connection, url, **overrides)
    try:
        conn.sync_driver.run(_ping(), False, strict=True)
    except BackendError as exc:
        _unanswered(conn, exc, require)
    return conn


def _unanswered(conn: RedisConnection, exc: BackendError, require: bool) -> None:
    message = f"Redis at {conn.settings.display_url} did not answer PING at start-up: {exc}"
    if require:
        raise type(exc)(message) from exc
    logger.warning(message)


async def close_redis() -> None:
    """Close the process-wide connection's clients and forget it."""
    global _current
    if _current is not None:
        conn, _current = _current, None
        await conn.aclose()


def close_redis_sync() -> None:
    """Blocking twin of ``close_redis()`` (closes the sync client)."""
    global _current
    if _current is not None:
        conn, _current = _current, None
        conn.close_sync()


def get_redis() -> redis.asyncio.Redis:
    """The process-wide asyncio client, for commands the library does not wrap.

    Raises:
        NotInitializedError: ``init_redis()`` has not run.
    """
    return current_connection().client


def get_redis_sync() -> redis.Redis:
    """The process-wide blocking client.

    Raises:
        NotInitializedError: ``init_redis_sync()`` has not run.
    """
    return current_connection().sync_client
