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
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._breaker import CircuitBreaker, NodeBreakers
from ._cluster import AsyncClusterDriver, ClusterState, SyncClusterDriver
from ._core._cluster import RENDEZVOUS_SLOT
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


def _bytes_options(settings: RedisSettings) -> dict[str, Any]:
    """The blocking client's options, replies as bytes over RESP2."""
    options = _client_options(settings, "sync")
    options.update(decode_responses=False, protocol=2)
    del options["encoding_errors"]
    return options


def bytes_client(settings: RedisSettings) -> redis.Redis:
    """A new blocking redis-py client of ``settings`` returning bytes over RESP2 (binary-safe
    replies of a fixed shape, for the operator's tools); the caller closes it."""
    options = _bytes_options(settings)
    if settings.scheme == "memory":
        import fakeredis

        return fakeredis.FakeRedis(server=_memory_server(settings.url), **options)
    if settings.sentinel is not None:
        return cast(redis.Redis, sentinel_client(settings, options, "sync"))
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(settings.url, **options))


def _node_url(settings: RedisSettings) -> str:
    """The redis:// URL the drivers' connections are made from (a cluster: its first seed;
    each node's connection then takes its own host and port)."""
    seeds = settings.cluster
    if seeds is None:
        return settings.url
    parts = urlsplit(settings.url)
    user = parts.netloc.rpartition("@")[0]
    host, port = seeds[0]
    scheme = "rediss" if settings.scheme == "rediss+cluster" else "redis"
    netloc = f"{user}@" if user else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{host}:{port}/0{query}"


def cluster_client(settings: RedisSettings, flavour: Literal["sync", "async"]) -> Any:
    """redis-py's own cluster client of ``settings`` (for users' commands, and the CLI)."""
    options = _client_options(settings, flavour)
    options.pop("maint_notifications_config", None)
    options.pop("retry", None)
    assert settings.cluster is not None
    if flavour == "sync":
        from redis.cluster import ClusterNode, RedisCluster

        seeds = [ClusterNode(host, port) for host, port in settings.cluster]  # type: ignore[no-untyped-call]
        return RedisCluster(startup_nodes=seeds, **_url_options(settings), **options)
    from redis.asyncio.cluster import ClusterNode as AsyncNode
    from redis.asyncio.cluster import RedisCluster as AsyncCluster

    nodes = [AsyncNode(host, port) for host, port in settings.cluster]
    return AsyncCluster(startup_nodes=nodes, **_url_options(settings), **options)


def _url_options(settings: RedisSettings) -> dict[str, Any]:
    """What the URL adds to a cluster client: TLS, the user name, its query options."""
    kwargs = redis.ConnectionPool.from_url(_node_url(settings)).connection_kwargs
    extra = {k: v for k, v in kwargs.items() if k not in ("host", "port", "db")}
    if settings.scheme == "rediss+cluster":
        extra["ssl"] = True
    return extra


def cluster_bytes_clients(
    settings: RedisSettings,
) -> tuple[list[redis.Redis], tuple[int | None, ...]]:
    """A bytes client (as ``bytes_client``) of every primary of a cluster, and which of them
    serves each slot, from the first seed that answers ``CLUSTER SLOTS``.

    Raises:
        redis.RedisError: no seed answered.
    """
    from ._core._cluster import parse_slots

    assert settings.cluster is not None
    template = redis.ConnectionPool.from_url(_node_url(settings), **_bytes_options(settings))

    def client_of(node: tuple[str, int]) -> redis.Redis:
        kwargs = {**template.connection_kwargs, "host": node[0], "port": node[1]}
        pool = redis.ConnectionPool(connection_class=template.connection_class, **kwargs)
        return redis.Redis(connection_pool=pool)

    failure: redis.RedisError | None = None
    for seed in settings.cluster:
        with client_of(seed) as asked:
            try:
                smap = parse_slots(asked.execute_command("CLUSTER", "SLOTS"), seed)
            except redis.RedisError as exc:
                failure = exc
                continue
        primaries = list(smap.primaries)
        position = {node: i for i, node in enumerate(primaries)}
        owners = tuple(None if o is None else position[o] for o in smap.owners)
        return [client_of(node) for node in primaries], owners
    assert failure is not None
    raise failure


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
        seeds = settings.cluster
        breaker = (CircuitBreaker if seeds is None else NodeBreakers)(
            settings.breaker_threshold, settings.breaker_cooldown, clock
        )
        #: On a cluster: the slot map and the nodes' breakers, shared by both drivers.
        self.cluster_state = (
            None if seeds is None else ClusterState(seeds, cast(NodeBreakers, breaker))
        )
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
            tls_hint=settings.scheme in ("redis", "redis+cluster"),
            endpoint=settings.endpoint,
        )
        self._sync: SyncDriver | None = None
        self._async: AsyncDriver | None = None
        self._watcher: SwitchWatcher | None = None
        self._user_clients: dict[str, Any] = {}  # a cluster's redis-py clients, for users
        self._subscriber_turn = 0  # which cluster node the next subscriber connects to
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
        """True for a Redis Cluster (``redis+cluster://``): multi-key flows then split their
        keys per slot, and invalidations are always announced."""
        return self.cluster_state is not None

    @property
    def backend(self) -> str:
        """``memory`` for the embedded fakeredis server, else ``redis``."""
        return "memory" if self.settings.scheme == "memory" else "redis"

    @property
    def sync_driver(self) -> SyncDriver:
        """The blocking driver, created on first use."""
        if self._sync is None:
            self._watch()
            client = self._new_sync_client()
            if self.cluster_state is not None:
                self._sync = SyncClusterDriver(client, self.state, self.cluster_state)
            else:
                self._sync = SyncDriver(client, self.state)
        return self._sync

    @property
    def async_driver(self) -> AsyncDriver:
        """The asyncio driver, created on first use (it binds to the running event loop)."""
        if self._async is None:
            self._watch()
            client = self._new_async_client()
            if self.cluster_state is not None:
                self._async = AsyncClusterDriver(client, self.state, self.cluster_state)
            else:
                self._async = AsyncDriver(client, self.state)
        return self._async

    def _watch(self) -> None:
        """Behind sentinels, follow their switches (from first use to close)."""
        if self.settings.sentinel is not None and self._watcher is None:
            self._watcher = SwitchWatcher(self.settings, self.state)
            weakref.finalize(self, self._watcher.stop)  # never left running after collection

    @property
    def sync_client(self) -> redis.Redis:
        """The blocking redis-py client (responses decoded as UTF-8); on a cluster, a
        ``redis.cluster.RedisCluster`` (which connects to the cluster when made)."""
        if self.cluster_state is not None:
            return cast(redis.Redis, self._cluster_client("sync"))
        return self.sync_driver.client

    @property
    def client(self) -> redis.asyncio.Redis:
        """The asyncio redis-py client (responses decoded as UTF-8); on a cluster, a
        ``redis.asyncio.cluster.RedisCluster``."""
        if self.cluster_state is not None:
            return cast(redis.asyncio.Redis, self._cluster_client("async"))
        return self.async_driver.client

    def _cluster_client(self, flavour: Literal["sync", "async"]) -> Any:
        found = self._user_clients.get(flavour)
        if found is None:
            found = self._user_clients[flavour] = cluster_client(self.settings, flavour)
        return found

    def _new_sync_client(self) -> redis.Redis:
        options = _client_options(self.settings, "sync")
        if self.settings.scheme == "memory":
            import fakeredis

            return fakeredis.FakeRedis(server=_memory_server(self.settings.url), **options)
        if self.settings.sentinel is not None:
            return cast(redis.Redis, sentinel_client(self.settings, options, "sync", self._watcher))
        pool = redis.ConnectionPool.from_url(_node_url(self.settings), **options)
        return redis.Redis(connection_pool=pool)

    def _new_async_client(self) -> redis.asyncio.Redis:
        options = _client_options(self.settings, "async")
        if self.settings.scheme == "memory":
            import fakeredis

            return fakeredis.FakeAsyncRedis(server=_memory_server(self.settings.url), **options)
        if self.settings.sentinel is not None:
            client = sentinel_client(self.settings, options, "async", self._watcher)
            return cast(redis.asyncio.Redis, client)
        pool = redis.asyncio.ConnectionPool.from_url(_node_url(self.settings), **options)
        return redis.asyncio.Redis(connection_pool=pool)

    def subscriber_connection(self) -> redis.connection.AbstractConnection:
        """A new blocking connection (not yet connected) for a subscriber.

        Its reads may wait up to the listener's PING deadline instead of the short data
        timeout, and redis-py's own health check is off: a PING it slipped in would eat a
        message of a subscribed connection.
        """
        pool = self.sync_driver.client.connection_pool
        conn: redis.connection.AbstractConnection = pool.connection_class(
            **self._subscriber_options(pool, load_map=True)
        )
        return conn

    def async_subscriber_connection(self) -> redis.asyncio.connection.AbstractConnection:
        """As ``subscriber_connection``, for an asyncio subscriber on the running loop."""
        pool = self.async_driver.client.connection_pool
        return pool.connection_class(**self._subscriber_options(pool, load_map=False))

    async def async_subscriber_connection_placed(
        self,
    ) -> redis.asyncio.connection.AbstractConnection:
        """As ``async_subscriber_connection``; on a cluster the slot map is read first (so
        the subscriber meets the publishers on the rendezvous node)."""
        driver = self.async_driver
        if isinstance(driver, AsyncClusterDriver):
            await driver.load_map()
        return self.async_subscriber_connection()

    def _subscriber_options(self, pool: Any, load_map: bool) -> dict[str, Any]:
        options = {**pool.connection_kwargs, "health_check_interval": 0}
        if self.settings.scheme != "memory":
            options["socket_timeout"] = self.settings.listener_ping_timeout
        state = self.cluster_state
        if state is not None:
            # Every process meets on the primary of one slot (RENDEZVOUS_SLOT), where PUBLISH
            # goes too; while the map is unknown (no node answered, or an asyncio subscriber
            # before any call, which must not block its loop), the nodes in turn.
            if load_map and isinstance(driver := self.sync_driver, SyncClusterDriver):
                driver.load_map()  # (an asyncio subscriber makes no blocking driver)
            if state.map is not None and state.map.owners[RENDEZVOUS_SLOT] is not None:
                options["host"], options["port"] = state.node_for(RENDEZVOUS_SLOT)
            else:
                nodes = state.candidates()
                self._subscriber_turn += 1
                options["host"], options["port"] = nodes[self._subscriber_turn % len(nodes)]
        return options

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
        user = self._user_clients.pop("sync", None)
        if user is not None:
            user.close()

    async def aclose(self) -> None:
        """Close both clients' connections."""
        self.close_sync()
        if self._async is not None:
            driver, self._async = self._async, None
            await driver.aclose()
            await driver.client.aclose()
            await driver.client.connection_pool.disconnect()
        user = self._user_clients.pop("async", None)
        if user is not None:
            await user.aclose()


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
