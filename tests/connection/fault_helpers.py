"""What the fault tests check on every rig: the spec's degraded answers, and the report of a
server that could not be asked."""

from __future__ import annotations

from typing import Any

from ..helpers import Rig

#: INFO fields a reachable server fills; None when it cannot be asked.
SERVER_FIELDS = (
    "connected_clients",
    "used_memory_human",
    "used_memory",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "uptime_in_seconds",
    "maxmemory",
    "maxmemory_policy",
    "redis_version",
    "hit_rate",
    "persistence",
)


def assert_degraded(cache: Any) -> int:
    """Call every operation once and check the spec's degraded answer; return the call count."""
    assert cache.get("a") is None
    assert cache.get_many(["a", "b"]) == {}
    assert cache.set("a", 1) is False
    assert cache.set_many({"a": 1, "b": 2}) is False
    assert cache.delete("a") is False
    assert cache.exists("a") is False
    assert cache.expire("a", 10) is False
    assert cache.increment("n") is None
    assert cache.get_keys("a*") == []
    assert cache.flush_pattern("a*") == 0
    return 10


def assert_unknown_server(info: dict[str, Any], rig: Rig) -> None:
    """get_info's report when Redis could not be asked: None fields, live client counters."""
    for field in SERVER_FIELDS:
        assert info[field] is None, field
    client = info["client"]
    assert client["backend"] == "redis"
    assert rig.server.password not in client["url"]
    for counter in ("hits", "misses", "decode_errors", "errors", "short_circuits", "breaker"):
        assert counter in client
