"""Fixtures: every behaviour test runs on {fakeredis, real redis-server} x {sync, async}."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import RedisCache, RedisConnection, SyncRedisCache
from arketic_cache.testing import RedisServer, find_redis_server, free_port

REQUIRE_REDIS = os.environ.get("ARKETIC_REQUIRE_REDIS") == "1"


def redis_server_binary() -> str:
    """The redis-server path; skips (or fails under ARKETIC_REQUIRE_REDIS=1) without it."""
    exe = find_redis_server()
    if exe is None:
        message = "redis-server is not installed (run `make test` as root to install it)"
        if REQUIRE_REDIS:
            pytest.fail(f"ARKETIC_REQUIRE_REDIS=1 but {message}")
        pytest.skip(message)
    return exe


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real server for the whole run, started by the harness on a free port."""
    with RedisServer(redis_server_binary()) as server:
        yield server.start()


@pytest.fixture
def durable_server() -> Iterator[RedisServer]:
    """A server of this test's own that keeps every acknowledged write across a SIGKILL."""
    args = ("--appendonly", "yes", "--appendfsync", "always")
    with RedisServer(redis_server_binary(), *args) as server:
        yield server.start()


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    """A real server of this test's own, free to be killed, frozen or restarted."""
    with RedisServer(redis_server_binary()) as server:
        yield server.start()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend_url(request: pytest.FixtureRequest) -> str:
    """A URL to an empty database: a fresh fakeredis server, or the harness' real one."""
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    server: RedisServer = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as admin:
        admin.flushdb()  # our own throwaway server, never anyone else's
    return server.url


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


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest, backend_url: str) -> Iterator[Flavor]:
    """The test's flavour, connection and event loop."""
    with asyncio.Runner() as runner:
        flavor = Flavor(request.param, backend_url, runner)
        yield flavor
        flavor.close()


@pytest.fixture
def cache(flavor: Flavor) -> Any:
    """A ``SyncRedisCache`` or a bridged ``RedisCache`` on a fresh database."""
    return flavor.cache()


@pytest.fixture
def raw(backend_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same database, to look behind the library's back."""
    conn = RedisConnection(url=backend_url)
    yield conn.sync_client
    conn.close_sync()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Report the L1 eviction delays the coherence tests measured (median and worst)."""
    delays: dict[str, list[float]] = {}
    for report in terminalreporter.stats.get("passed", []):
        for name, value in getattr(report, "user_properties", ()):
            if name.startswith("eviction_delays_ms"):
                delays.setdefault(name, []).extend(value)
    for name, values in sorted(delays.items()):
        values.sort()
        terminalreporter.write_line(
            f"{name}: another client's write -> L1 evicted in another process: "
            f"median {values[len(values) // 2]:.3f} ms, worst {values[-1]:.3f} ms "
            f"(n={len(values)})"
        )
