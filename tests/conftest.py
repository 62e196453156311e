"""Fixtures: every behaviour test runs on {fakeredis, real redis-server, a primary behind
sentinels, a 3+3 cluster} x {sync, async}."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import RedisConnection
from arketic_cache.testing import ClusterTopology, RedisServer, SentinelTopology

from .helpers import Flavor, Target, cluster_url, flush_cluster, raw_client, redis_server_binary


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


@pytest.fixture(scope="session")
def cluster_topology() -> Iterator[ClusterTopology]:
    """Three primaries and three replicas for the whole run (never failed over: the
    failover tests start clusters of their own)."""
    with ClusterTopology(redis_server_binary()) as topology:
        yield topology.start()


def _primary_url(topology: SentinelTopology) -> str:
    return f"redis://:{topology.password}@127.0.0.1:{topology.primary_port()}/0"


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=[pytest.mark.redis, pytest.mark.sentinel]),
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
    ]
)
def real_target(request: pytest.FixtureRequest) -> Target:
    """The harness' real server, its primary behind sentinels, or its cluster (the direct
    URL then a ``redis+cluster://`` one too: raw access goes through ``RedisCluster``)."""
    if request.param == "cluster":
        cluster: ClusterTopology = request.getfixturevalue("cluster_topology")
        return Target(cluster_url(cluster), cluster_url(cluster))
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
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
    ]
)
def backend_url(request: pytest.FixtureRequest) -> str:
    """A URL to an empty database: a fresh fakeredis server, the harness' real one, the
    harness' primary behind its sentinels (a ``redis+sentinel://`` URL), or the harness'
    cluster (``redis+cluster://``, every primary flushed)."""
    if request.param == "memory":
        return f"memory://test-{uuid.uuid4().hex}"
    if request.param == "cluster":
        cluster: ClusterTopology = request.getfixturevalue("cluster_topology")
        flush_cluster(cluster)
        return cluster_url(cluster)
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
    if backend_url.startswith("redis+cluster"):
        client = raw_client(backend_url, decode_responses=True)
        yield client
        client.close()
        return
    conn = RedisConnection(url=backend_url)
    yield conn.sync_client
    conn.close_sync()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the cluster flavour of tests marked ``one_node`` (what they assert needs a
    single server's view: tracking of every key, one script cache, one keyspace)."""
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_cluster = callspec is not None and "cluster" in (
            callspec.params.get("backend_url"),
            callspec.params.get("real_target"),
        )
        (left if on_cluster and item.get_closest_marker("one_node") else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


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
