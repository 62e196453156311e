"""Health verdicts on canned INFO replies: no Redis, every threshold and every missing field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from arketic_cache import BackendResponseError, HealthCheck, HealthReport, HealthThresholds
from arketic_cache._core._health import (
    Lookups,
    breaker_check,
    clients_check,
    connection_check,
    failed_connection,
    gather_server,
    hit_rate_check,
    memory_check,
    persistence_check,
    policy_check,
    replication_check,
)

from ..helpers import step

T = HealthThresholds()
MIB = 1024 * 1024


def info(**fields: Any) -> dict[str, Any]:
    """A primary's INFO with ``fields`` overriding the defaults."""
    base: dict[str, Any] = {
        "used_memory": 200 * MIB,
        "maxmemory": 0,
        "maxmemory_policy": "noeviction",
        "mem_fragmentation_ratio": 1.1,
        "evicted_keys": 0,
        "aof_enabled": 0,
        "rdb_saves": 0,
        "rdb_last_bgsave_status": "ok",
        "aof_last_write_status": "ok",
        "loading": 0,
        "role": "master",
        "connected_slaves": 0,
        "connected_clients": 3,
        "blocked_clients": 0,
        "rejected_connections": 0,
    }
    return {**base, **fields}


class TestMemory:
    @pytest.mark.parametrize(
        ("used", "level"),
        [(50, "ok"), (80, "ok"), (81, "warning"), (90, "warning"), (91, "critical")],
    )
    def test_thresholds(self, used: int, level: str) -> None:
        """> 80 % of maxmemory warns, > 90 % is critical; the value is the percentage."""
        check = memory_check(info(used_memory=used * MIB, maxmemory=100 * MIB), None, T)
        assert check.level == level
        assert check.value == used
        assert check.unit == "percent"
        assert "of maxmemory" in check.reason

    def test_unbounded(self) -> None:
        """maxmemory 0: 'unbounded', the used bytes, no percentage."""
        check = memory_check(info(maxmemory=0), None, T)
        assert check.level == "ok"
        assert check.reason.startswith("unbounded")
        assert (check.value, check.unit) == (200 * MIB, "bytes")

    def test_configured_limit_when_unbounded(self) -> None:
        """A configured memory limit stands in for maxmemory 0."""
        limits = HealthThresholds(memory_limit_bytes=220 * MIB)
        check = memory_check(info(maxmemory=0), None, limits)
        assert check.level == "critical"
        assert "of memory_limit_bytes" in check.reason

    def test_fragmentation_and_evictions(self) -> None:
        """High fragmentation on a sizeable dataset warns; evictions are reported."""
        check = memory_check(info(mem_fragmentation_ratio=2.0, evicted_keys=12), None, T)
        assert check.level == "warning"
        assert "fragmentation 2.00" in check.reason
        assert "12 keys evicted" in check.reason
        small = memory_check(info(used_memory=MIB, mem_fragmentation_ratio=7.8), None, T)
        assert small.level == "ok"  # an almost empty server's ratio means nothing

    def test_refused_info_is_unknown(self) -> None:
        """Without INFO the verdict is unknown, with the reason."""
        check = memory_check(None, "not permitted by the server's ACL", T)
        assert check.level == "unknown"
        assert "not permitted" in check.reason


class TestHitRate:
    def test_too_few_lookups_is_not_judged(self) -> None:
        """Under the minimum the rate is reported, never a warning."""
        check = hit_rate_check(Lookups(hits=1, misses=98, seconds=60), T)
        assert check.level == "ok"
        assert "too few" in check.reason

    @pytest.mark.parametrize(("hits", "level"), [(49, "warning"), (50, "ok"), (90, "ok")])
    def test_threshold(self, hits: int, level: str) -> None:
        """Below 50 % over at least 100 lookups: a performance-review warning."""
        check = hit_rate_check(Lookups(hits=hits, misses=100 - hits, seconds=60), T)
        assert (check.level, check.value) == (level, hits / 100)
        assert "over the last 60 s" in check.reason

    @pytest.mark.parametrize(
        ("seconds", "shown"), [(300, "300 s"), (9.5, "9.5 s"), (0.4, "0.4 s"), (0.03, "0.03 s")]
    )
    def test_a_short_window_is_not_shown_as_zero(self, seconds: float, shown: str) -> None:
        check = hit_rate_check(Lookups(hits=1, misses=1, seconds=seconds), T)
        assert f"over the last {shown}:" in check.reason

    def test_minimum_is_a_setting(self) -> None:
        check = hit_rate_check(
            Lookups(hits=1, misses=9, seconds=None), HealthThresholds(hit_rate_min_lookups=10)
        )
        assert check.level == "warning"
        assert "since start" in check.reason


class TestPersistenceAndPolicy:
    @pytest.mark.parametrize(
        ("fields", "mode"),
        [
            ({}, "none"),
            ({"rdb_saves": 2}, "rdb"),
            ({"aof_enabled": 1}, "aof"),
            ({"aof_enabled": 1, "rdb_saves": 1}, "rdb+aof"),
        ],
    )
    def test_modes(self, fields: dict[str, Any], mode: str) -> None:
        """The mode and what a restart loses."""
        check = persistence_check(info(**fields), None)
        assert (check.level, check.value) == ("ok", mode)
        assert "restart" in check.reason

    def test_failed_save_warns(self) -> None:
        check = persistence_check(info(rdb_last_bgsave_status="err", rdb_saves=3), None)
        assert check.level == "warning"
        assert "snapshot failed" in check.reason

    def test_failed_aof_write_warns(self) -> None:
        check = persistence_check(info(aof_enabled=1, aof_last_write_status="err"), None)
        assert check.level == "warning"

    def test_noeviction_with_a_limit_warns(self) -> None:
        """noeviction refuses writes when full: a warning once there is a limit."""
        bounded = policy_check(info(maxmemory=MIB), None)
        assert bounded.level == "warning"
        assert "writes are refused" in bounded.reason
        assert "allkeys-lru is the recommended" in bounded.reason  # the spec's advice
        lru = policy_check(info(maxmemory_policy="allkeys-lru", maxmemory=MIB), None)
        assert lru.level == "ok"
        assert "recommended" not in lru.reason
        assert policy_check(None, "refused").level == "unknown"


class TestReplicationClientsBreaker:
    def test_replica(self) -> None:
        up = replication_check(info(role="slave", master_link_status="up"), None)
        assert (up.level, up.value) == ("warning", "replica")
        down = replication_check(info(role="slave", master_link_status="down"), None)
        assert down.level == "critical"
        assert replication_check(info(), None).level == "ok"

    def test_clients(self) -> None:
        assert clients_check(info(), None).value == 3
        rejected = clients_check(info(rejected_connections=4), None)
        assert rejected.level == "warning"
        assert "4 connections rejected" in rejected.reason

    def test_breaker(self) -> None:
        assert breaker_check("closed", {"errors": 2}).level == "ok"
        assert breaker_check("open", {"errors": 3}).level == "warning"


class TestConnection:
    def test_answered(self) -> None:
        check = connection_check(0.00042)
        assert (check.level, check.value, check.unit) == ("ok", 0.42, "ms")

    @pytest.mark.parametrize(
        ("cause", "message", "says"),
        [
            ("AuthenticationError", "invalid username-password pair", "authentication failed"),
            ("ResponseError", "WRONGPASS invalid username-password pair", "authentication"),
            ("ResponseError", "NOPERM this user has no permissions", "ACL forbids"),
            ("TimeoutError", "Timeout reading from socket", "no answer within 0.5 s"),
            ("ConnectionError", "Connection refused", "unreachable"),
        ],
    )
    def test_failures_say_why(self, cause: str, message: str, says: str) -> None:
        """Authentication and permission failures are named, never reported as "down"."""
        check = failed_connection(cause, message, 0.5)
        assert check.level == "critical"
        assert says in check.reason


class TestGather:
    def test_refused_info(self) -> None:
        """NOPERM on INFO: no info, and the reason."""
        refused = BackendResponseError("NoPermissionError: NOPERM this user has no permissions")
        effects, got = step(gather_server(), [refused])
        assert [e.args[0] for e in effects] == ["INFO"]
        assert effects[0].errors_as_reply
        assert got == (None, "not permitted by the server's ACL")

    def test_info(self) -> None:
        _, got = step(gather_server(), [info()])
        assert got == (info(), None)


def report(*levels: str) -> HealthReport:
    checks = {
        "connection": connection_check(0.001),
        **{f"c{i}": HealthCheck(level=lvl, reason=f"r{i}") for i, lvl in enumerate(levels)},  # type: ignore[arg-type]
    }
    return HealthReport.build(
        checks,
        info={"used_memory": 1},
        url="redis://h:6379/0",
        backend="redis",
        checked_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_ms=1.0,
    )


class TestReport:
    def test_worst_level_and_spec_dict(self) -> None:
        """The report's level is the worst check's; unknown checks never raise it."""
        assert report("ok", "unknown").level == "ok"
        assert report("ok", "warning").level == "warning"
        assert report("warning", "critical").level == "critical"
        healthy = report("ok").as_spec()
        assert healthy["status"] == "healthy"
        assert healthy["message"].startswith("Redis is healthy: PING answered")
        warned = report("warning").as_spec()
        assert (warned["status"], warned["message"]) == ("healthy", "c0: r0")
        failed = report("warning", "critical").as_spec()
        assert failed["status"] == "error"
        assert failed["message"] == "c1: r1; c0: r0"  # the worst first
        assert failed["info"] == {"used_memory": 1}

    def test_health_json(self) -> None:
        """The IETF draft's body: pass/warn/fail, checks keyed component:measurement."""
        body = report("warning").as_health_json()
        assert body["status"] == "warn"
        entry = body["checks"]["redis:responseTime"][0]
        assert (entry["status"], entry["observedValue"], entry["observedUnit"]) == (
            "pass",
            1.0,
            "ms",
        )
        assert body["checks"]["redis:c0"][0]["status"] == "warn"
        assert report("critical").as_health_json()["status"] == "fail"
        assert "output" not in report("ok").as_health_json()
