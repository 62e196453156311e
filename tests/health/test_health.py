"""``check_redis_health()`` and its report on real servers in every state, and on memory://."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import (
    HealthReport,
    HealthThresholds,
    RedisConnection,
    SyncRedisCache,
    _counters,
    _lookups,
    check_redis_health,
    check_redis_health_sync,
    close_redis,
    close_redis_sync,
    health_report,
    health_report_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache.testing import RedisServer

from ..helpers import CONNECT_TIMEOUT, TIMEOUT, redis_server_binary, thaw_if_running

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def fresh_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hit rate counts only this test's caches, from a window starting now."""
    monkeypatch.setattr(_counters, "_live", {})
    monkeypatch.setattr(_counters, "_retired", {})
    monkeypatch.setattr(_lookups, "_samples", deque([(time.monotonic(), 0, 0)], maxlen=64))


@pytest.fixture
def conn(fresh_server: RedisServer) -> Iterator[RedisConnection]:
    """A connection with the tests' short timeouts to this test's own server."""
    connection = RedisConnection(
        url=fresh_server.url, socket_timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT
    )
    yield connection
    thaw_if_running(fresh_server)
    connection.close_sync()


def admin(server: RedisServer) -> redis.Redis:
    """A plain client on the test's own server (never anyone else's)."""
    return redis.Redis.from_url(server.url, decode_responses=True)


def levels(report: HealthReport) -> dict[str, str]:
    return {name: check.level for name, check in report.checks.items()}


def fill_to(server: RedisServer, share: float, limit: int) -> float:
    """Write 10 KB values until used_memory passes ``share`` of ``limit``; the share reached."""
    with admin(server) as client:
        n = 0
        while (used := int(client.info("memory")["used_memory"])) <= share * limit:
            client.set(f"fill:{share}:{n}", "x" * 10_000)
            n += 1
        return used / limit


def test_a_healthy_server(conn: RedisConnection) -> None:
    """The spec's dict: healthy, a message with the round trip, the spec's statistics."""
    result = check_redis_health_sync(conn)
    assert result["status"] == "healthy"
    assert result["message"].startswith("Redis is healthy: PING answered in")
    assert result["info"]["connected_clients"] >= 1
    assert result["info"]["redis_version"]
    report = health_report_sync(conn)
    assert set(levels(report).values()) == {"ok"}
    assert report.checks["memory"].reason.startswith("unbounded")  # maxmemory 0, the default
    assert report.checks["persistence"].value == "none"
    assert report.checks["replication"].value == "primary"
    assert conn.settings.password is not None
    assert conn.settings.password.get_secret_value() not in str(report.model_dump())


def test_memory_past_80_then_90_percent(fresh_server: RedisServer, conn: RedisConnection) -> None:
    """Real writes drive used memory past 80 % (warning), then 90 % (critical, "error")."""
    with admin(fresh_server) as client:
        used = int(client.info("memory")["used_memory"])
        limit = used + 12 * 1024 * 1024  # the check itself adds ~100 KB: keep that under 1 %
        client.config_set("maxmemory", limit)
        client.config_set("maxmemory-policy", "allkeys-lru")
    reached = fill_to(fresh_server, 0.82, limit)
    assert 0.82 < reached < 0.9
    warned = health_report_sync(conn).checks["memory"]
    assert warned.level == "warning"
    assert warned.value == pytest.approx(reached * 100, abs=1.5)
    assert check_redis_health_sync(conn)["status"] == "healthy"
    fill_to(fresh_server, 0.92, limit)
    result = check_redis_health_sync(conn)
    assert result["status"] == "error"
    assert result["message"].startswith("memory: 9")


def test_noeviction_with_a_limit_warns(fresh_server: RedisServer, conn: RedisConnection) -> None:
    """Writes are refused when full: the policy verdict says so."""
    with admin(fresh_server) as client:
        client.config_set("maxmemory", 100 * 1024 * 1024)
    check = health_report_sync(conn).checks["eviction_policy"]
    assert (check.level, check.value) == ("warning", "noeviction")


def test_hit_rate_under_and_over_half(fresh_server: RedisServer, conn: RedisConnection) -> None:
    """The library's own lookups decide: 30 % of 100 warns, then 75 % of 400 does not."""
    cache = SyncRedisCache(conn)
    cache.set("hot", 1)
    for i in range(100):
        cache.get("hot" if i < 30 else f"cold:{i}")
    low = health_report_sync(conn).checks["hit_rate"]
    assert (low.level, low.value) == ("warning", 0.3)
    for i in range(300):
        cache.get("hot" if i < 270 else f"cold:{i}")
    high = health_report_sync(conn).checks["hit_rate"]
    assert (high.level, high.value) == ("ok", 0.75)
    with admin_of(conn) as client:
        assert int(client.info("stats")["keyspace_hits"]) >= 300  # the server's own count differs


def admin_of(conn: RedisConnection) -> redis.Redis:
    return redis.Redis.from_url(
        conn.settings.url,
        password=conn.settings.password.get_secret_value() if conn.settings.password else None,
    )


def test_an_acl_user_without_info(fresh_server: RedisServer) -> None:
    """+@all -@dangerous forbids INFO and CONFIG: those verdicts are "not permitted", the
    connection is fine and the status healthy."""
    with admin(fresh_server) as client:
        client.acl_setuser(
            "app",
            enabled=True,
            passwords=["+app-pw"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-@dangerous"],
        )
    conn = RedisConnection(url=f"redis://app:app-pw@127.0.0.1:{fresh_server.port}/0")
    try:
        report = health_report_sync(conn)
        assert report.checks["connection"].level == "ok"
        for name in ("memory", "persistence", "eviction_policy", "replication", "clients"):
            assert report.checks[name].level == "unknown"
            assert "not permitted by the server's ACL" in report.checks[name].reason
        assert check_redis_health_sync(conn)["status"] == "healthy"
    finally:
        conn.close_sync()


def test_a_wrong_password(fresh_server: RedisServer) -> None:
    """Authentication failure is named as such, never as "down"; the password never shows."""
    conn = RedisConnection(url=f"redis://:wrong-secret@127.0.0.1:{fresh_server.port}/0")
    try:
        result = check_redis_health_sync(conn)
        assert result["status"] == "error"
        assert "authentication failed" in result["message"]
        assert result["info"] is None
        assert "wrong-secret" not in str(health_report_sync(conn).model_dump())
    finally:
        conn.close_sync()


def test_killed_frozen_restarted(fresh_server: RedisServer, conn: RedisConnection) -> None:
    """Killed: unreachable. Frozen: the check answers within its timeout and says why.
    Restarted: healthy on the first check after it answers."""
    assert check_redis_health_sync(conn)["status"] == "healthy"
    port = fresh_server.port
    fresh_server.kill()
    killed = health_report_sync(conn)
    assert killed.level == "critical"
    assert killed.checks["connection"].reason.startswith("unreachable")
    fresh_server.start(port)
    fresh_server.freeze()
    frozen = health_report_sync(conn)
    assert frozen.checks["connection"].reason.startswith(f"no answer within {TIMEOUT} s")
    assert frozen.duration_ms < (TIMEOUT + CONNECT_TIMEOUT) * 1000 + 1000  # bounded, not hung
    fresh_server.thaw()
    assert check_redis_health_sync(conn)["status"] == "healthy"


def test_an_open_breaker_does_not_hide_a_recovered_redis(
    fresh_server: RedisServer, conn: RedisConnection
) -> None:
    """The check pings past the breaker: healthy at once, and the breaker closes for callers."""
    cache = SyncRedisCache(conn)
    port = fresh_server.port
    fresh_server.kill()
    for _ in range(conn.settings.breaker_threshold):
        cache.get("k")
    assert conn.state.breaker.state == "open"
    fresh_server.start(port)
    report = health_report_sync(conn)
    assert report.level == "ok"
    assert report.checks["breaker"].value == "closed"
    assert cache.set("k", 1) is True  # no cool-down left to wait out


def test_a_replica() -> None:
    """A replica in sync: a warning that writes are refused."""
    no_delay = ("--repl-diskless-sync-delay", "0")
    with RedisServer(redis_server_binary(), *no_delay) as primary:
        primary.start()
        args = ("--replicaof", "127.0.0.1", str(primary.port), "--masterauth", primary.password)
        with RedisServer(redis_server_binary(), *args) as replica:
            replica.start()
            with redis.Redis.from_url(primary.url, socket_timeout=30) as client:
                client.set("synced", 1)
                assert client.wait(1, 20_000) == 1  # the replica is connected and caught up
            conn = RedisConnection(url=replica.url)
            try:
                check = health_report_sync(conn).checks["replication"]
                assert (check.level, check.value) == ("warning", "replica")
                assert "READONLY" in check.reason
            finally:
                conn.close_sync()


def test_rdb_and_aof_configured() -> None:
    """A server with an append-only file that took a snapshot says rdb+aof."""
    with RedisServer(redis_server_binary(), "--appendonly", "yes") as server:
        server.start()
        conn = RedisConnection(url=server.url)
        try:
            assert health_report_sync(conn).checks["persistence"].value == "aof"
            with admin(server) as client:
                client.save()  # our own throwaway server
            check = health_report_sync(conn).checks["persistence"]
            assert (check.level, check.value) == ("ok", "rdb+aof")
            assert check.details["rdb_saves"] == 1
        finally:
            conn.close_sync()


def test_sync_and_async_give_the_same_report(conn: RedisConnection) -> None:
    """Same verdicts and reasons (timings aside) from both twins."""

    def comparable(report: HealthReport) -> dict[str, Any]:
        # Round trips, windows, memory and client counts differ by nature between two checks.
        stable = {"persistence", "eviction_policy", "replication"}
        return {n: (c.level, c.reason) for n, c in report.checks.items() if n in stable}

    async def both() -> tuple[HealthReport, dict[str, Any]]:
        try:
            return await health_report(conn), await check_redis_health(conn)
        finally:
            await conn.aclose()

    sync_report = health_report_sync(conn)
    async_report, spec = asyncio.run(both())
    assert comparable(sync_report) == comparable(async_report)
    assert levels(sync_report) == levels(async_report)
    assert spec["status"] == "healthy"


@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_the_embedded_backend(flavor: str) -> None:
    """memory://: healthy, every INFO verdict "unknown" with the reason, nothing fails."""

    async def checked() -> HealthReport:
        await init_redis("memory://health")
        try:
            return await health_report()
        finally:
            await close_redis()

    if flavor == "sync":
        init_redis_sync("memory://health")
        try:
            report = health_report_sync()
            assert check_redis_health_sync()["status"] == "healthy"
        finally:
            close_redis_sync()
    else:
        report = asyncio.run(checked())
    assert report.level == "ok"
    assert report.checks["memory"].level == "unknown"
    assert "embedded backend" in report.checks["memory"].reason


def test_thresholds_are_settings(fresh_server: RedisServer, conn: RedisConnection) -> None:
    """A memory limit for a server without maxmemory, and stricter thresholds."""
    with admin(fresh_server) as client:
        used = int(client.info("memory")["used_memory"])
    limits = HealthThresholds(memory_limit_bytes=used, memory_warning=0.5, memory_critical=0.99)
    check = health_report_sync(conn, thresholds=limits).checks["memory"]
    assert check.level == "critical"
    assert "of memory_limit_bytes" in check.reason


def test_a_collected_cache_never_blocks_on_the_lookup_lock(conn: RedisConnection) -> None:
    """A cache collected while the totals are being read (a GC inside the lock, same thread)
    must not wait for the lock: its counts are queued and still land in the totals."""
    cache = SyncRedisCache(conn)
    cache.set("k", 1)
    cache.get("k")
    key = next(iter(_counters._live))
    done = threading.Event()

    def retire() -> None:
        _counters._retire(key)
        done.set()

    with _counters._lock:  # as if a collection ran inside total_lookups()
        retirer = threading.Thread(target=retire)
        retirer.start()
        assert done.wait(10)
    retirer.join()
    assert _lookups.total_lookups() == (1, 0)
    assert key not in _counters._live
