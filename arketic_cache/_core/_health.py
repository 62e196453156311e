"""Health verdicts, pure: thresholds, one verdict per concern, the report and its two renderings.

Each verdict reads what the shell gathered (a PING's round trip or failure, INFO's fields, the
library's own counters) and says ``ok``, ``warning`` or ``critical`` with a reason; a field the
server would not give (an ACL without INFO, ``memory://``) makes its verdict ``unknown``, never a
failure of the whole check. ``check_redis_health()`` (``_health.py``) builds the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._effects import Command, Flow, OnNode

__all__ = [
    "HealthCheck",
    "HealthReport",
    "HealthThresholds",
    "Level",
    "Lookups",
    "NodeHealth",
    "breaker_check",
    "clients_check",
    "cluster_check",
    "connection_check",
    "failed_connection",
    "fullest",
    "gather_cluster",
    "gather_server",
    "hit_rate_check",
    "memory_check",
    "parse_cluster_info",
    "parse_cluster_nodes",
    "persistence_check",
    "policy_check",
    "replication_check",
]

Level = Literal["ok", "warning", "critical", "unknown"]
_RANK = {"unknown": 0, "ok": 0, "warning": 1, "critical": 2}
_INFO_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "keyspace")
_MIB = 1024 * 1024


class HealthThresholds(BaseModel):
    """The alert thresholds (the spec's defaults) and the hit-rate window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_warning: float = Field(0.80, gt=0, le=1)
    memory_critical: float = Field(0.90, gt=0, le=1)
    hit_rate_warning: float = Field(0.50, ge=0, le=1)
    #: Fewer lookups than this in the window: the hit rate is reported, not judged.
    hit_rate_min_lookups: int = Field(100, ge=1)
    #: Seconds of recent history the hit rate covers.
    hit_rate_window: float = Field(300.0, gt=0)
    #: The memory the percentages refer to when the server has no ``maxmemory`` (e.g. a
    #: container's limit); None: such a server is reported as unbounded.
    memory_limit_bytes: int | None = Field(None, gt=0)
    fragmentation_warning: float = Field(1.5, gt=1)
    #: Below this much used memory, fragmentation ratios mean nothing (an empty server's is ~8).
    fragmentation_min_bytes: int = Field(100 * _MIB, ge=0)


class HealthCheck(BaseModel):
    """One verdict: its level, the value it judged, the threshold, and why."""

    model_config = ConfigDict(frozen=True)

    level: Level
    reason: str
    value: float | int | str | None = None
    unit: str | None = None
    threshold: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Lookups(BaseModel):
    """This process's cache lookups over a window (the library's counters, not the server's)."""

    model_config = ConfigDict(frozen=True)

    hits: int
    misses: int
    seconds: float | None  # None: since the process started counting


class HealthReport(BaseModel):
    """Every check's verdict; ``level`` is the worst of them."""

    model_config = ConfigDict(frozen=True)

    level: Level
    checks: dict[str, HealthCheck]
    info: dict[str, Any] | None
    url: str
    backend: str
    checked_at: datetime
    duration_ms: float

    @classmethod
    def build(cls, checks: dict[str, HealthCheck], **rest: Any) -> HealthReport:
        """A report whose level is the worst check's (``unknown`` checks do not count)."""
        levels: list[Level] = [c.level for c in checks.values() if c.level != "unknown"]
        worst: Level = max(levels, key=_RANK.__getitem__, default="ok")
        return cls(level=worst, checks=checks, **rest)

    @property
    def problems(self) -> list[str]:
        """``name: reason`` of each warning or critical check, the worst first."""
        bad = [(n, c) for n, c in self.checks.items() if _RANK[c.level] > 0]
        bad.sort(key=lambda item: -_RANK[item[1].level])
        return [f"{name}: {check.reason}" for name, check in bad]

    def as_spec(self) -> dict[str, Any]:
        """The spec's dict: ``status`` ("healthy" or "error"), ``message`` and ``info``."""
        status = "error" if self.level == "critical" else "healthy"
        connection = self.checks["connection"]
        if self.level == "ok":
            message = f"Redis is healthy: {connection.reason}"
        else:
            message = "; ".join(self.problems)
        return {"status": status, "message": message, "info": self.info}

    def as_health_json(self) -> dict[str, Any]:
        """The IETF draft's ``application/health+json`` body (status pass, warn or fail)."""
        time = self.checked_at.isoformat()
        checks: dict[str, list[dict[str, Any]]] = {}
        for name, check in self.checks.items():
            entry: dict[str, Any] = {
                "componentType": "datastore" if name != "hit_rate" else "component",
                "status": _DRAFT_STATUS[check.level],
                "time": time,
                "output": check.reason,
            }
            if check.value is not None:
                entry["observedValue"] = check.value
            if check.unit is not None:
                entry["observedUnit"] = check.unit
            checks[_DRAFT_NAMES.get(name, f"redis:{name}")] = [entry]
        body: dict[str, Any] = {"status": _DRAFT_STATUS[self.level], "checks": checks}
        if self.level != "ok":
            body["output"] = "; ".join(self.problems)
        return body


_DRAFT_STATUS = {"ok": "pass", "unknown": "pass", "warning": "warn", "critical": "fail"}
_DRAFT_NAMES = {
    "connection": "redis:responseTime",
    "memory": "redis:utilization",
    "clients": "redis:connections",
    "hit_rate": "cache:hitRate",
}


def gather_server() -> Flow[tuple[Mapping[str, Any] | None, str | None]]:
    """INFO, the sections health reads; (info, None), or (None, why) when it is refused."""
    info = yield Command(("INFO", *_INFO_SECTIONS), errors_as_reply=True)
    refused = _refusal(info)
    return (None, refused) if refused else (info, None)


def _refusal(reply: Any) -> str | None:
    if isinstance(reply, Exception):
        text = str(reply)
        if "NOPERM" in text or "no permissions" in text:
            return "not permitted by the server's ACL"
        return f"not available on this server ({text.split(':', 1)[-1].strip()[:80]})"
    return None


def connection_check(rtt_seconds: float) -> HealthCheck:
    """Redis answered PING."""
    ms = round(rtt_seconds * 1000, 3)
    return HealthCheck(level="ok", reason=f"PING answered in {ms} ms", value=ms, unit="ms")


def failed_connection(cause: str, message: str, timeout: float) -> HealthCheck:
    """PING failed: name an authentication or permission failure as such, never as "down"."""
    text = message.upper()
    if cause == "AuthenticationError" or "WRONGPASS" in text or "NOAUTH" in text:
        reason = "authentication failed: check the password (or user) in the Redis URL"
    elif "NOPERM" in text:
        reason = "the server's ACL forbids this user even PING"
    elif "Timeout" in cause or "TIMEOUT" in text:
        reason = f"no answer within {timeout} s (server frozen, overloaded or unreachable)"
    else:
        reason = f"unreachable: {message}"
    return HealthCheck(level="critical", reason=reason, details={"error": message})


def _number(info: Mapping[str, Any], field: str) -> float | None:
    value = info.get(field)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _unknown(why: str) -> HealthCheck:
    return HealthCheck(level="unknown", reason=why)


def memory_check(
    info: Mapping[str, Any] | None, why: str | None, t: HealthThresholds
) -> HealthCheck:
    """Used memory against ``maxmemory`` (or the configured limit); fragmentation, evictions."""
    if info is None:
        return _unknown(f"memory: INFO {why}")
    used = _number(info, "used_memory")
    if used is None:
        return _unknown("memory: INFO has no used_memory")
    maxmemory = int(_number(info, "maxmemory") or 0)
    limit = maxmemory or t.memory_limit_bytes
    source = "maxmemory" if maxmemory else "memory_limit_bytes"
    details: dict[str, Any] = {
        "used_memory": int(used),
        "maxmemory": maxmemory,
        "evicted_keys": int(_number(info, "evicted_keys") or 0),
    }
    level: Level = "ok"
    notes = []
    ratio = _number(info, "mem_fragmentation_ratio")
    if ratio is not None:
        details["mem_fragmentation_ratio"] = ratio
        if used >= t.fragmentation_min_bytes and ratio > t.fragmentation_warning:
            level = "warning"
            notes.append(f"fragmentation {ratio:.2f} (> {t.fragmentation_warning})")
    if details["evicted_keys"]:
        notes.append(f"{details['evicted_keys']} keys evicted since start")
    suffix = f"; {', '.join(notes)}" if notes else ""
    if not limit:
        return HealthCheck(
            level=level,
            reason=f"unbounded: {_human(used)} used and no maxmemory (the OS decides){suffix}",
            value=int(used),
            unit="bytes",
            details=details,
        )
    share = used / limit
    threshold = f"> {t.memory_warning:.0%} warning, > {t.memory_critical:.0%} critical"
    if share > t.memory_critical:
        level = "critical"
    elif share > t.memory_warning:
        level = "warning"
    reason = f"{share:.1%} of {source} ({_human(used)} of {_human(limit)}){suffix}"
    return HealthCheck(
        level=level,
        reason=reason,
        value=round(share * 100, 2),
        unit="percent",
        threshold=threshold,
        details=details,
    )


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    """``60 s``, or ``0.4 s`` under ten seconds (a window is never shown as 0 s)."""
    if seconds >= 10:
        return f"{seconds:.0f} s"
    return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds:.1g} s"


def hit_rate_check(lookups: Lookups, t: HealthThresholds) -> HealthCheck:
    """This process's cache hit rate over the window; judged only past the minimum lookups."""
    total = lookups.hits + lookups.misses
    seconds = lookups.seconds
    span = "since start" if seconds is None else f"over the last {_duration(seconds)}"
    details = {"hits": lookups.hits, "misses": lookups.misses, "window_seconds": lookups.seconds}
    threshold = f"< {t.hit_rate_warning:.0%} warning (at least {t.hit_rate_min_lookups} lookups)"
    if total < t.hit_rate_min_lookups:
        rate = lookups.hits / total if total else None
        return HealthCheck(
            level="ok",
            reason=f"{total} lookups {span}: too few to judge (< {t.hit_rate_min_lookups})",
            value=None if rate is None else round(rate, 4),
            unit="ratio",
            threshold=threshold,
            details=details,
        )
    rate = lookups.hits / total
    if rate < t.hit_rate_warning:
        reason = f"hit rate {rate:.1%} {span}: below {t.hit_rate_warning:.0%}, review the caching"
        level: Level = "warning"
    else:
        reason, level = f"hit rate {rate:.1%} {span} ({total} lookups)", "ok"
    return HealthCheck(
        level=level,
        reason=reason,
        value=round(rate, 4),
        unit="ratio",
        threshold=threshold,
        details=details,
    )


def persistence_check(info: Mapping[str, Any] | None, why: str | None) -> HealthCheck:
    """AOF, RDB snapshots taken, both or none, the last writes' status, and what a restart loses.

    The snapshot schedule needs CONFIG, which the layer never sends: RDB counts as on once a
    snapshot was taken since the server started.
    """
    if info is None or "aof_enabled" not in info:
        return _unknown(f"persistence: INFO {why or 'has no persistence section'}")
    aof = bool(int(info.get("aof_enabled", 0)))
    saves = int(_number(info, "rdb_saves") or 0)
    details = {
        "aof_enabled": aof,
        "rdb_saves": saves,
        "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
        "rdb_changes_since_last_save": info.get("rdb_changes_since_last_save"),
        "aof_last_write_status": info.get("aof_last_write_status"),
        "loading": bool(int(info.get("loading", 0) or 0)),
    }
    mode = {(True, True): "rdb+aof", (True, False): "aof", (False, True): "rdb"}.get(
        (aof, saves > 0), "none"
    )
    if info.get("rdb_last_bgsave_status") == "err":
        return HealthCheck(
            level="warning",
            reason="the last RDB snapshot failed: a restart loses writes since the one before",
            value=mode,
            details=details,
        )
    if aof and info.get("aof_last_write_status") == "err":
        return HealthCheck(
            level="warning",
            reason="the last AOF write failed: recent writes are not durable",
            value=mode,
            details=details,
        )
    if details["loading"]:
        return HealthCheck(level="warning", reason="loading its dataset from disk", value=mode)
    meaning = {
        "none": "no append-only file and no snapshot since start: a restart now loses "
        "everything (caches refill; sessions and rate windows reset)",
        "rdb": f"{saves} snapshot(s) since start: a restart loses the writes since the last",
        "aof": "append-only file: a restart loses at most about a second of writes",
        "rdb+aof": "append-only file and snapshots: a restart loses at most about a second",
    }[mode]
    return HealthCheck(level="ok", reason=f"{mode}: {meaning}", value=mode, details=details)


_POLICIES = {
    "noeviction": "writes are refused (OOM) when memory is full",
    "allkeys-lru": "the least recently used keys are evicted when full (good for a cache)",
    "allkeys-lfu": "the least frequently used keys are evicted when full (good for a cache)",
    "allkeys-random": "random keys are evicted when full",
    "volatile-lru": "least recently used keys with a TTL are evicted when full",
    "volatile-lfu": "least frequently used keys with a TTL are evicted when full",
    "volatile-random": "random keys with a TTL are evicted when full",
    "volatile-ttl": "the keys closest to expiry are evicted when full",
}


def policy_check(info: Mapping[str, Any] | None, why: str | None) -> HealthCheck:
    """``maxmemory-policy`` and what it means for a cache."""
    policy = None if info is None else info.get("maxmemory_policy")
    if policy is None:
        return _unknown(f"maxmemory-policy: INFO {why or 'has no maxmemory_policy'}")
    meaning = _POLICIES.get(str(policy), "see the Redis documentation")
    if policy not in {"allkeys-lru", "allkeys-lfu"}:
        meaning += "; allkeys-lru is the recommended policy for a cache"
    bounded = bool(_number(info or {}, "maxmemory"))
    level: Level = "warning" if policy == "noeviction" and bounded else "ok"
    return HealthCheck(level=level, reason=f"{policy}: {meaning}", value=str(policy))


def replication_check(info: Mapping[str, Any] | None, why: str | None) -> HealthCheck:
    """Primary or replica; a replica refuses writes, a broken link serves stale data."""
    role = None if info is None else info.get("role")
    if role is None:
        return _unknown(f"replication: INFO {why or 'has no role'}")
    assert info is not None
    if role == "master":
        replicas = int(_number(info, "connected_slaves") or 0)
        return HealthCheck(
            level="ok", reason=f"primary with {replicas} replica(s)", value="primary"
        )
    link = info.get("master_link_status")
    details = {"master_host": info.get("master_host"), "master_link_status": link}
    if link != "up":
        return HealthCheck(
            level="critical",
            reason=f"replica whose link to its primary is {link}: stale reads, refused writes",
            value="replica",
            details=details,
        )
    return HealthCheck(
        level="warning",
        reason="replica: writes are refused (READONLY); point the URL at the primary",
        value="replica",
        details=details,
    )


def clients_check(info: Mapping[str, Any] | None, why: str | None) -> HealthCheck:
    """Connected and blocked clients, and connections refused since the server started."""
    if info is None or "connected_clients" not in info:
        return _unknown(f"clients: INFO {why or 'has no clients section'}")
    connected = int(_number(info, "connected_clients") or 0)
    details = {
        "connected_clients": connected,
        "blocked_clients": int(_number(info, "blocked_clients") or 0),
        "rejected_connections": int(_number(info, "rejected_connections") or 0),
    }
    rejected = details["rejected_connections"]
    if rejected:
        return HealthCheck(
            level="warning",
            reason=f"{rejected} connections rejected since start (maxclients reached)",
            value=connected,
            unit="connections",
            details=details,
        )
    return HealthCheck(
        level="ok",
        reason=f"{connected} connected, {details['blocked_clients']} blocked",
        value=connected,
        unit="connections",
        details=details,
    )


def breaker_check(state: str, counters: Mapping[str, Any]) -> HealthCheck:
    """This process's circuit breaker and failure counters."""
    details = dict(counters)
    if state == "closed":
        errors = counters.get("errors", 0)
        return HealthCheck(
            level="ok",
            reason=f"closed ({errors} failed calls since start)",
            value=state,
            details=details,
        )
    return HealthCheck(
        level="warning",
        reason=f"{state}: calls skip Redis after repeated failures until a probe succeeds",
        value=state,
        details=details,
    )


class NodeHealth(BaseModel):
    """One cluster node as health saw it."""

    model_config = ConfigDict(frozen=True)

    node: str  #: host:port
    role: Literal["primary", "replica"]
    up: bool
    slots: int  #: slots it serves (0 for a replica)
    used_memory: int | None = None
    maxmemory: int | None = None
    error: str | None = None


def parse_cluster_info(reply: Any) -> dict[str, str]:
    """``CLUSTER INFO``'s ``field:value`` lines as a dict."""
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def cluster_check(nodes: list[NodeHealth], info: Mapping[str, str] | None) -> HealthCheck:
    """The whole cluster: critical when a primary is unreachable, a slot is unserved or the
    cluster says it is not ok; a warning when a replica is down or a primary has none."""
    details: dict[str, Any] = {"nodes": [node.model_dump() for node in nodes]}
    if info is not None:
        details["cluster_state"] = info.get("cluster_state")
    primaries = [node for node in nodes if node.role == "primary"]
    covered = sum(node.slots for node in primaries)
    down = [node.node for node in nodes if not node.up]
    replicas = sum(1 for node in nodes if node.role == "replica" and node.up)
    summary = f"{len(primaries)} primaries, {replicas} replica(s) up, {covered} of 16384 slots"
    if info is not None and info.get("cluster_state") != "ok":
        state = info.get("cluster_state")
        return HealthCheck(
            level="critical", reason=f"cluster state is {state}: {summary}", details=details
        )
    if any(not node.up for node in primaries) or covered < 16384:
        lost = ", ".join(node.node for node in primaries if not node.up) or "none"
        reason = f"primaries unreachable: {lost}; {summary}"
        return HealthCheck(level="critical", reason=reason, value=covered, details=details)
    if down or replicas < len(primaries):
        reason = f"{summary}; down: {', '.join(down) or 'none'} (a failover has no replica left)"
        return HealthCheck(level="warning", reason=reason, value=covered, details=details)
    return HealthCheck(level="ok", reason=summary, value=covered, unit="slots", details=details)


def fullest(infos: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The INFO of the primary closest to its memory limit (what the memory verdict judges)."""

    def ratio(info: Mapping[str, Any]) -> float:
        used, limit = _number(info, "used_memory") or 0, _number(info, "maxmemory") or 0
        return used / limit if limit else used / 1e18

    return max(infos, key=ratio, default=None)


#: A cluster's nodes as health asks them: (host, port), role, slots served.
Layout = list[tuple[tuple[str, int], Literal["primary", "replica"], int]]


def parse_cluster_nodes(reply: Any) -> Layout:
    """Every node ``CLUSTER NODES`` lists (replicas too, even those CLUSTER SLOTS leaves out
    while they have no data yet), primaries first, with the slots each serves."""
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    layout: Layout = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8 or "noaddr" in parts[2] or "handshake" in parts[2]:
            continue
        host, _, port = parts[1].split("@")[0].rpartition(":")
        slots = 0
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated
            start, _, end = item.partition("-")
            slots += int(end or start) - int(start) + 1
        role: Literal["primary", "replica"] = "primary" if "master" in parts[2] else "replica"
        layout.append(((host or "127.0.0.1", int(port)), role, slots))
    layout.sort(key=lambda node: (node[1] != "primary", node[0]))
    return layout


def gather_cluster() -> Flow[
    tuple[list[NodeHealth], list[Mapping[str, Any]], dict[str, str] | None]
]:
    """CLUSTER NODES and INFO, then INFO of every node (an unreachable one is ``up=False``):
    the nodes, the primaries' INFO, the cluster's own state (None if refused)."""
    state = yield Command(("CLUSTER", "INFO"), errors_as_reply=True)
    listed = yield Command(("CLUSTER", "NODES"), errors_as_reply=True)
    layout = [] if isinstance(listed, Exception) else parse_cluster_nodes(listed)
    nodes, infos = [], []
    for (host, port), role, slots in layout:
        name = f"{host}:{port}"
        reply = yield OnNode((host, port), Command(("INFO", *_INFO_SECTIONS)))
        if isinstance(reply, Exception):
            nodes.append(NodeHealth(node=name, role=role, up=False, slots=slots, error=str(reply)))
            continue
        used, limit = _number(reply, "used_memory"), _number(reply, "maxmemory")
        nodes.append(
            NodeHealth(
                node=name,
                role=role,
                up=True,
                slots=slots,
                used_memory=None if used is None else int(used),
                maxmemory=None if limit is None else int(limit),
            )
        )
        if role == "primary":
            infos.append(reply)
    return nodes, infos, None if isinstance(state, Exception) else parse_cluster_info(state)
