"""Shared test machinery: the harness' binary lookup, the object bridge and flavours, the
fault rigs on a server of the test's own, a manual clock, and stepping a flow by hand.

Test modules import from here, never from one another or from a conftest."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from arketic_cache import RedisCache, RedisConnection, RedisSettings, SyncRedisCache
from arketic_cache._core._effects import Flow
from arketic_cache.testing import ClusterTopology, RedisServer, find_redis_server, free_port

REQUIRE_REDIS = os.environ.get("ARKETIC_REQUIRE_REDIS") == "1"


@dataclass(frozen=True, slots=True)
class Target:
    """A real deployment under test: ``url`` is what the layer connects with (a server's, a
    ``redis+sentinel://`` or a ``redis+cluster://`` one), ``direct_url`` the primary itself
    (a cluster's URL for a cluster), for raw redis-py (``raw_client``)."""

    url: str
    direct_url: str


class RawCluster(RedisCluster):
    """redis-py's cluster client whose KEYS and DBSIZE cover every primary (as on a server)."""

    def keys(self, pattern: Any = "*", **kwargs: Any) -> Any:
        return super().keys(pattern, target_nodes=RedisCluster.PRIMARIES, **kwargs)

    def script_exists(self, *shas: Any) -> Any:
        """Whether each script is loaded on some primary (each node has its own cache)."""
        nodes = self.get_primaries()  # type: ignore[no-untyped-call]
        rows = [self.get_redis_connection(n).script_exists(*shas) for n in nodes]
        return [any(row[i] for row in rows) for i in range(len(shas))]

    def dbsize(self, **kwargs: Any) -> Any:
        sizes = cast(dict[str, int], super().dbsize(target_nodes=RedisCluster.PRIMARIES, **kwargs))
        return sum(sizes.values())


def cluster_url(topology: ClusterTopology) -> str:
    """A ``redis+cluster://`` URL naming every primary as a seed."""
    seeds = ",".join(f"{host}:{port}" for host, port in topology.seeds[: topology.primaries])
    return f"redis+cluster://:{topology.password}@{seeds}"


def flush_cluster(topology: ClusterTopology) -> None:
    """Empty every primary of a cluster the harness started (never anyone else's)."""
    for host, port in topology.seeds[: topology.primaries]:
        with redis.Redis(host=host, port=port, password=topology.password) as node:
            if node.execute_command("ROLE")[0] == b"master":
                node.flushdb()  # our own throwaway cluster, never anyone else's


def raw_client(url: str, **options: Any) -> redis.Redis:
    """redis-py's client of a server's URL, or a ``RawCluster`` of a ``redis+cluster://`` one."""
    settings = RedisSettings.create(url=url)
    seeds = settings.cluster
    if seeds is None:
        return redis.Redis.from_url(url, **options)
    password = settings.password
    client = RawCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],  # type: ignore[no-untyped-call]
        password=None if password is None else password.get_secret_value(),
        **options,
    )
    return cast(redis.Redis, client)


def redis_server_binary() -> str:
    """The redis-server path; skips (or fails under ARKETIC_REQUIRE_REDIS=1) without it."""
    exe = find_redis_server()
    if exe is None:
        message = "redis-server is not installed (run `make test` as root to install it)"
        if REQUIRE_REDIS:
            pytest.fail(f"ARKETIC_REQUIRE_REDIS=1 but {message}")
        pytest.skip(message)
    return exe


class Bridge:
    """Call an async object's coroutine methods as plain functions on one event loop."""

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._runner.run(result)
            return result

        return call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self._target(*args, **kwargs)
        return self._runner.run(result) if asyncio.iscoroutine(result) else result

    def __repr__(self) -> str:
        return repr(self._target)


class Flavor:
    """Builds the sync object, or the async one behind a ``Bridge``, on one connection."""

    def __init__(self, name: str, backend_url: str, runner: asyncio.Runner) -> None:
        self.name = name
        self.backend_url = backend_url
        self.runner = runner
        self.connections: list[RedisConnection] = []
        self.connection = self.connect()

    def connect(self, **overrides: Any) -> RedisConnection:
        """A new connection to this test's backend (closed after the test); it becomes current."""
        self.connection = RedisConnection(url=self.backend_url, **overrides)
        self.connections.append(self.connection)
        return self.connection

    def dead_connection(self) -> RedisConnection:
        """A connection to a loopback port nobody listens on (closed after the test): a
        strict object on it proves a call made no I/O, since any I/O would raise."""
        conn = RedisConnection(url=f"redis://127.0.0.1:{free_port()}/0")
        self.connections.append(conn)
        return conn

    def wrap(self, sync_obj: Any, async_obj: Any) -> Any:
        """Return the object of this flavour (async calls bridged to sync ones)."""
        return sync_obj if self.name == "sync" else Bridge(async_obj, self.runner)

    def cache(self, **kwargs: Any) -> Any:
        """A cache of this flavour on the current connection."""
        return self.wrap(
            SyncRedisCache(self.connection, **kwargs), RedisCache(self.connection, **kwargs)
        )

    def close(self) -> None:
        """Close every connection made for the test."""
        for conn in self.connections:
            self.runner.run(conn.aclose())


#: A read from a frozen server costs this much; a healthy local server answers far sooner.
TIMEOUT = 0.1
#: Also how long a call may wait for a free pooled connection; never reached here.
CONNECT_TIMEOUT = 0.2

FAILED = "Redis call failed"
RECOVERED = "Redis calls succeed again"


class ManualClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def breaker_state(conn: RedisConnection) -> str:
    """``closed``, ``open`` or ``half-open`` (a plain str, so mypy does not narrow it)."""
    return conn.state.breaker.state


def thaw_if_running(server: RedisServer) -> None:
    """SIGCONT the server unless it is down (a frozen server must never outlive its test)."""
    if server.process is not None:
        server.thaw()


class Rig:
    """The test's server, a connection to it (short timeouts, manual clock) and one flavour."""

    #: The connection's timeouts: short, so a frozen or dead server costs little.
    timeouts: ClassVar[dict[str, float]] = {
        "socket_timeout": TIMEOUT,
        "connect_timeout": CONNECT_TIMEOUT,
    }

    def __init__(self, name: str, server: RedisServer, runner: asyncio.Runner) -> None:
        self.name = name
        self.server = server
        self.clock = ManualClock()
        self.flavor = Flavor(name, server.url, runner)
        self.connect()

    def connect(self, **overrides: Any) -> RedisConnection:
        """A new connection to the server on the manual clock; later caches use it."""
        options: dict[str, Any] = {**self.timeouts, **overrides}
        return self.flavor.connect(clock=self.clock, **options)

    @property
    def connection(self) -> RedisConnection:
        """The connection caches are built on."""
        return self.flavor.connection

    @property
    def breaker(self) -> str:
        """The breaker's state: closed, open or half-open."""
        return breaker_state(self.connection)

    @property
    def errors(self) -> int:
        """Redis calls that failed (short-circuited calls are not counted here)."""
        return self.connection.state.errors

    @property
    def short_circuits(self) -> int:
        """Calls that skipped Redis because the breaker was open."""
        return self.connection.state.short_circuits

    def cache(self, **kwargs: Any) -> Any:
        """A cache of this flavour on the current connection."""
        return self.flavor.cache(**kwargs)

    def wait_out_cooldown(self) -> None:
        """Advance the manual clock just past the breaker's cool-down."""
        self.clock.advance(self.connection.settings.breaker_cooldown + 0.001)

    def let_loop_run(self) -> None:
        """Let the event loop poll its sockets, as a live application's loop does between calls.

        The Bridge runs the loop only inside a call. redis-py's asyncio pool learns that the
        server closed a pooled connection only from StreamReader.at_eof(), which the loop sets
        when it polls the socket; without a turn of the loop a restart is seen one call late.
        """
        if self.name == "async":
            self.flavor.runner.run(_spin())

    def restart_after_kill(self) -> None:
        """Start the killed server again on its port (and let an event loop see it)."""
        self.server.start(self.server.port)
        self.let_loop_run()

    def close(self) -> None:
        """Thaw the server if it runs (it may be frozen), close every connection, kill it."""
        thaw_if_running(self.server)
        self.flavor.close()
        if self.server.process is not None:
            self.server.kill()  # nothing to persist: skip the shutdown the harness would wait for


R = TypeVar("R", bound=Rig)


def rigs(kind: type[R], name: str, server: RedisServer) -> Iterator[R]:
    """A rig of ``kind`` in flavour ``name`` on ``server``, closed when the test ends."""
    with asyncio.Runner() as runner:
        rig = kind(name, server, runner)
        yield rig
        rig.close()


async def _spin(turns: int = 3) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)  # a turn of the loop, not a wait


def messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    """The arketic_cache log messages at ``level`` that contain ``text``."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "arketic_cache"
        and record.levelno == level
        and text in record.getMessage()
    ]


def step(flow: Flow[Any], replies: list[Any]) -> tuple[list[Any], Any]:
    """Run ``flow`` feeding ``replies`` in order; return the effects it yielded and its result."""
    effects: list[Any] = []
    reply: Any = None
    feed = iter(replies)
    try:
        while True:
            effects.append(flow.send(reply))
            reply = next(feed)
    except StopIteration as stop:
        return effects, stop.value


def drive(flow: Flow[Any], respond: Callable[[Any], Any]) -> Any:
    """Run ``flow`` answering each effect with ``respond(effect)``; return its result."""
    reply: Any = None
    try:
        while True:
            reply = respond(flow.send(reply))
    except StopIteration as stop:
        return stop.value


def metric_points(reader: Any) -> dict[str, list[Any]]:
    """The data points an OpenTelemetry SDK metric reader collects now, by metric name."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
