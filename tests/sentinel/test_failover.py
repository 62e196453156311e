"""Behind sentinels: the layer finds the primary, and follows a failover (SENTINEL FAILOVER,
and a killed primary) so that writes reach the new primary within seconds and none
acknowledged after the switch is lost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis

from arketic_cache import RedisConnection, SyncRedisCache
from arketic_cache.testing import SentinelTopology

from ..helpers import redis_server_binary

pytestmark = pytest.mark.redis


@pytest.fixture
def topology() -> Iterator[SentinelTopology]:
    """A topology of this test's own (failovers change it)."""
    with SentinelTopology(redis_server_binary()) as started:
        yield started.start()


def primary_client(topology: SentinelTopology, sentinel: int = 0) -> redis.Redis:
    """A raw client of the primary that sentinel number ``sentinel`` names."""
    return redis.Redis(port=topology.primary_port_from(sentinel), password=topology.password)


def write_through_failover(
    topology: SentinelTopology,
    conn: RedisConnection,
    start_failover: Callable[[], object],
    sentinel: int = 0,
) -> tuple[float, list[str]]:
    """Write a key every few ms from before the failover until 3 s after a write landed on
    the new primary; (seconds to that first write, keys acknowledged after the switch).

    The switch is the moment the sentinels name the new primary and the layer has heard
    of it (it must within a second): a write that starts after it must never be lost."""
    cache = SyncRedisCache(conn)
    old, epoch = topology.primary_port_from(sentinel), conn.state.epoch
    acknowledged: list[tuple[float, str]] = []
    named_at = heard_at = first_new = None
    started = time.monotonic()
    start_failover()
    n = 0
    while first_new is None or time.monotonic() - first_new < 3:
        n += 1
        now = time.monotonic()
        assert now - started < 20, "the failover did not complete in 20 s"
        if named_at is None and topology.primary_port_from(sentinel) != old:
            named_at = now
        if heard_at is None and conn.state.epoch != epoch:
            heard_at = now
        if cache.set(f"k:{n}", n):
            acknowledged.append((now, f"k:{n}"))
            if first_new is None and named_at is not None:
                with primary_client(topology, sentinel) as new:
                    if new.exists(f"k:{n}"):
                        first_new = now
        time.sleep(0.005)  # a steady stream of writes, not a race fix
    assert named_at is not None
    assert heard_at is not None
    assert heard_at - named_at < 1.0
    switched = max(named_at, heard_at)
    return first_new - started, [key for at, key in acknowledged if at >= switched]


def lost(topology: SentinelTopology, keys: list[str], sentinel: int = 0) -> list[str]:
    with primary_client(topology, sentinel) as primary:
        return [key for key in keys if not primary.exists(key)]


def test_the_primary_is_found_through_the_sentinels(topology: SentinelTopology) -> None:
    conn = RedisConnection(url=topology.url)
    try:
        cache = SyncRedisCache(conn, strict=True)
        assert cache.set("greeting", {"hello": "world"})
        with primary_client(topology) as primary:
            assert primary.exists("greeting") == 1
        assert cache.get("greeting") == {"hello": "world"}
        assert topology.password not in repr(conn)
        assert topology.sentinel_password not in repr(conn)
    finally:
        conn.close_sync()


def test_sentinel_failover_moves_writes_and_loses_none_after_the_switch(
    topology: SentinelTopology,
) -> None:
    conn = RedisConnection(url=topology.url)
    try:
        assert SyncRedisCache(conn).set("before", 1)

        def failover() -> None:
            with redis.Redis(
                port=topology.sentinels[0][0], password=topology.sentinel_password
            ) as sentinel:
                sentinel.sentinel_failover(topology.service)

        took, after = write_through_failover(topology, conn, failover)
        assert took < 10
        assert len(after) > 10
        assert lost(topology, after) == []  # every write after the switch is on the new primary
    finally:
        conn.close_sync()


def test_a_killed_primary_is_replaced_within_seconds(topology: SentinelTopology) -> None:
    conn = RedisConnection(url=topology.url)
    try:
        old = topology.server_on(topology.primary_port())
        took, after = write_through_failover(topology, conn, old.kill)
        assert took < 10
        assert lost(topology, after) == []
    finally:
        conn.close_sync()


def test_losing_the_first_sentinel_of_the_url_is_survived(topology: SentinelTopology) -> None:
    """The URL names three sentinels: with the first one dead, a new connection finds the
    primary through the others, and a failover is still followed."""
    port, first = topology.sentinels[0]
    first.kill()
    first.wait()
    assert topology.url.index(f":{port}") < topology.url.index(str(topology.sentinels[1][0]))
    conn = RedisConnection(url=topology.url)
    try:
        cache = SyncRedisCache(conn, strict=True)
        assert cache.set("still", "here")
        assert cache.get("still") == "here"
        old = topology.server_on(topology.primary_port_from(1))
        took, after = write_through_failover(topology, conn, old.kill, sentinel=1)
        assert took < 10
        assert lost(topology, after, sentinel=1) == []
    finally:
        conn.close_sync()
