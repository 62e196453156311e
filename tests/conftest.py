"""Fixtures: every behaviour test runs on {fakeredis, real redis-server, a primary behind
sentinels} x {sync, async}."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import RedisConnection
from arketic_cache.testing import RedisServer, SentinelTopology

from .helpers import Flavor, Target, redis_server_binary


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real server for the whole run, started by the harness on a free port."""
    with RedisServer(redis_server_binary()) as server:
        yield server.start()


@pytest.fixture(scope="session")
def sentinel_topology() -> Iterator[SentinelTopology]:
    """A primary, a replica and three sentinels for the whole run (never failed over: the
    failover tests start topologies of their own)."""
    with SentinelTopology(redis_server_binary()) as topology:
        yield topology.start()


def _primary_url(topology: SentinelTopology) -> str:
    return f"redis://:{topology.password}@127.0.0.1:{topology.primary_port()}/0"


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=[pytest.mark.redis, pytest.mark.sentinel]),
    ]
)
def real_target(request: pytest.FixtureRequest) -> Target:
    """The harness' real server, or its primary behind sentinels."""
    if request.param == "sentinel":
        topology: SentinelTopology = request.getfixturevalue("sentinel_topology")
        return Target(topology.url, _primary_url(topology))
    server: RedisServer = request.getfixturevalue("redis_server")
    return Target(server.url, server.url)


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


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=[pytest.mark.redis, pytest.mark.sentinel]),
    ]
)
def backend_url(request: pytest.FixtureRequest) -> str:
    """A URL to an empty database: a fresh fakeredis server, the harness' real one, or the
    harness' primary behind its sentinels (a ``redis+sentinel://`` URL)."""
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    if request.param == "sentinel":
        topology: SentinelTopology = request.getfixturevalue("sentinel_topology")
        with redis.Redis.from_url(_primary_url(topology)) as admin:
            admin.flushdb()  # our own throwaway topology, never anyone else's
        return topology.url
    server: RedisServer = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as admin:
        admin.flushdb()  # our own throwaway server, never anyone else's
    return server.url


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
