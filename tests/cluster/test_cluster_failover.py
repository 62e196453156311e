"""A cluster primary killed under load: the primary holding a rate-limit key and a user's
session (and named first in the URL) dies; calls to its slots fail fast and bounded while the
cluster promotes its replica, then succeed within a second of the promotion; no decision is counted
twice and the session, replicated before, is still there. The other primaries' slots are
refused only while the cluster itself is down (between the failure report and the
promotion, Redis' full-coverage rule), and are back by then too."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from arketic_cache import (
    RedisConnection,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
)
from arketic_cache._core._session import user_tag
from arketic_cache._core._slots import key_slot
from arketic_cache.testing import ClusterTopology

from ..helpers import redis_server_binary

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

NODE_TIMEOUT_MS = 2000


@pytest.fixture
def cluster() -> Iterator[ClusterTopology]:
    """A cluster of this test's own (the failover changes it)."""
    with ClusterTopology(redis_server_binary(), node_timeout_ms=NODE_TIMEOUT_MS) as started:
        yield started.start()


def owner_port(cluster: ClusterTopology, key: str, node: redis.Redis | None = None) -> int:
    """The port of the primary serving ``key``'s slot, as ``node`` (the first) says."""
    if node is None:
        with redis.Redis(port=cluster.seeds[0][1], password=cluster.password) as first:
            return owner_port(cluster, key, first)
    slot = key_slot(key)
    for start, end, primary, *_ in node.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
        if start <= slot <= end:
            return int(primary[1])
    raise AssertionError(f"no node serves slot {slot}")


def test_a_killed_primary_is_replaced_within_node_timeout_plus_two_seconds(
    cluster: ClusterTopology,
) -> None:
    rate_key = "rate:api:victim"
    victim = owner_port(cluster, rate_key)
    user = next(f"user-{n}" for n in range(10_000) if owner_port_of_tag(cluster, n) == victim)
    seeds = [victim] + [port for _, port in cluster.seeds[:3] if port != victim]
    url = f"redis+cluster://:{cluster.password}@" + ",".join(f"127.0.0.1:{p}" for p in seeds)

    before = RedisConnection(url=url, socket_timeout=0.5, connect_timeout=0.5)
    limiter = SyncRedisRateLimiter(connection=before)
    sessions = SyncRedisSessionManager(connection=before, strict=True)
    sid = sessions.new_session({"user_id": user, "role": "admin"})
    assert sid is not None
    admitted = sum(limiter.check(rate_key, 10_000).allowed for _ in range(25))
    assert admitted == 25
    with redis.Redis(port=victim, password=cluster.password) as primary:
        assert primary.execute_command("WAIT", 1, 5000) >= 1  # the replica has them all
    other_key = next(
        f"other:{n}" for n in range(100) if owner_port(cluster, f"other:{n}") != victim
    )
    before.close_sync()

    cluster.node_on(victim).kill()
    killed = time.monotonic()
    # A new connection (a restarted service) whose first seed is the dead node.
    conn = RedisConnection(url=url, socket_timeout=0.5, connect_timeout=0.5)
    limiter = SyncRedisRateLimiter(connection=conn)
    cache = SyncRedisCache(conn)
    longest = 0.0
    degraded = refused = 0
    back_at = promoted_at = None
    survivor = redis.Redis(port=seeds[1], password=cluster.password)
    while back_at is None or time.monotonic() - back_at < 1:
        assert time.monotonic() - killed < 20, "the cluster never served the slot again"
        if promoted_at is None and owner_port(cluster, rate_key, survivor) != victim:
            promoted_at = time.monotonic()
        started = time.monotonic()
        decision = limiter.check(rate_key, 10_000)
        longest = max(longest, time.monotonic() - started)
        if decision.degraded:
            degraded += 1
        else:
            assert decision.allowed
            admitted += 1
            back_at = back_at or time.monotonic()
        if not cache.set(other_key, "served"):
            refused += 1
            assert back_at is None, "a healthy primary's slots refused after the promotion"
    survivor.close()
    recovery = back_at - killed
    assert promoted_at is not None
    # Redis itself promotes the replica about node-timeout + 1.5-2.5 s after the kill (the
    # failure report, then the replica's election delay); the layer follows within 1 s.
    assert back_at - promoted_at < 1, ("followed late", recovery, promoted_at - killed)
    assert recovery < NODE_TIMEOUT_MS / 1000 + 4, recovery
    assert longest < 1.5, longest  # every call bounded by one timeout (and a map refresh)
    # Nothing counted twice: the log holds exactly the admitted decisions.
    final = limiter.check(rate_key, 10_000)
    assert not final.degraded
    assert final.count == admitted + 1
    assert SyncRedisSessionManager(connection=conn).get_session(sid) == {
        "user_id": user,
        "role": "admin",
    }
    conn.close_sync()


def owner_port_of_tag(cluster: ClusterTopology, n: int) -> int:
    """The primary serving the sessions of user ``user-<n>``."""
    return owner_port(cluster, "{" + user_tag(f"user-{n}") + "}")


def node_id(cluster: ClusterTopology, port: int) -> str:
    with redis.Redis(port=port, password=cluster.password) as node:
        return str(node.execute_command("CLUSTER", "MYID").decode())


def test_ask_during_a_slot_migration_is_followed_once(cluster: ClusterTopology) -> None:
    """A slot migrating from one primary to another: a key not yet moved is answered with ASK
    by the old owner; the layer asks the new one (after ASKING), single calls and batches
    alike, without taking the slot map's owner for changed (only MOVED does that)."""
    key = "ask:me"
    source = owner_port(cluster, key)
    target = next(port for _, port in cluster.seeds[:3] if port != source)
    slot = key_slot(key)
    for port, step, peer in ((target, "IMPORTING", source), (source, "MIGRATING", target)):
        with redis.Redis(port=port, password=cluster.password) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, step, node_id(cluster, peer))
    seeds = ",".join(f"127.0.0.1:{port}" for _, port in cluster.seeds[:3])
    conn = RedisConnection(url=f"redis+cluster://:{cluster.password}@{seeds}")
    try:
        cache = SyncRedisCache(conn, strict=True)
        assert cache.set(key, "moved along")
        assert cache.get(key) == "moved along"
        state = conn.cluster_state
        assert state is not None
        assert state.redirects == 2
        assert state.map is not None
        assert state.map.owners[slot] == ("127.0.0.1", source)  # ASK is not MOVED
        assert cache.set_many({key: "again", "elsewhere": 1})  # a batch over several nodes
        assert cache.get_many([key, "elsewhere"]) == {key: "again", "elsewhere": 1}
        with redis.Redis(
            port=target, password=cluster.password, single_connection_client=True
        ) as node:
            node.execute_command("ASKING")
            assert node.get(key) is not None  # written where the slot is going
    finally:
        conn.close_sync()


def test_a_frozen_primary_costs_one_timeout_per_call_until_its_breaker_opens(
    cluster: ClusterTopology,
) -> None:
    """SIGSTOP of a primary: a call to its slots waits one socket timeout, never more; after
    the breaker's threshold its calls skip it at once; the other primaries serve throughout."""
    frozen_key = "frozen:1"
    victim = owner_port(cluster, frozen_key)
    fine_key = next(f"fine:{n}" for n in range(100) if owner_port(cluster, f"fine:{n}") != victim)
    seeds = ",".join(f"127.0.0.1:{port}" for _, port in cluster.seeds[:3])
    conn = RedisConnection(
        url=f"redis+cluster://:{cluster.password}@{seeds}", socket_timeout=0.5, breaker_threshold=3
    )
    cache = SyncRedisCache(conn)
    assert cache.set(frozen_key, 1)
    assert cache.set(fine_key, 2)
    cluster.node_on(victim).freeze()
    try:
        waits = []
        for _ in range(5):
            started = time.monotonic()
            assert cache.get(frozen_key) is None  # degraded
            waits.append(time.monotonic() - started)
            assert cache.get(fine_key) == 2
        assert all(wait < 0.9 for wait in waits[:3]), waits  # one 0.5 s timeout each
        assert all(wait < 0.05 for wait in waits[3:]), waits  # skipped: its breaker is open
        assert conn.state.short_circuits == 2
    finally:
        cluster.node_on(victim).thaw()
        conn.close_sync()
