"""The spec's ``check_redis_health()`` and its sync twin, over the typed ``HealthReport``.

Each check is fresh: a PING past the circuit breaker (on a connection of its own, bounded by the
connection's timeouts), then INFO, which the server may refuse (no CONFIG, ever).
The verdicts are ``_core/_health.py``'s; this module only gathers what they read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import _connection
from ._core._cache import describe_info
from ._core._effects import Command, Flow
from ._core._health import (
    HealthCheck,
    HealthReport,
    HealthThresholds,
    NodeHealth,
    breaker_check,
    clients_check,
    cluster_check,
    connection_check,
    failed_connection,
    fullest,
    gather_cluster,
    gather_server,
    hit_rate_check,
    memory_check,
    persistence_check,
    policy_check,
    replication_check,
)
from ._exceptions import BackendError
from ._lookups import recent_lookups

__all__ = [
    "HealthReport",
    "HealthThresholds",
    "check_redis_health",
    "check_redis_health_sync",
    "health_report",
    "health_report_sync",
]

Server = tuple[Mapping[str, Any] | None, str | None]


def _ping() -> Flow[Any]:
    return (yield Command(("PING",)))


def _failure(conn: _connection.RedisConnection, exc: BackendError) -> HealthCheck:
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else type(exc).__name__
    return failed_connection(cause, str(exc), conn.settings.socket_timeout)


#: What ``gather_cluster`` found.
Cluster = tuple[list[NodeHealth], list[Mapping[str, Any]], dict[str, str] | None]


def _on_cluster(cluster: Cluster) -> tuple[Server, HealthCheck]:
    """The fullest primary's INFO (what the per-server verdicts judge) and the cluster's."""
    nodes, infos, info = cluster
    fullest_info = fullest(infos)
    why = None if fullest_info is not None else "was not read: no primary answered"
    return (fullest_info, why), cluster_check(nodes, info)


def _assemble(
    conn: _connection.RedisConnection,
    connection: HealthCheck,
    server: Server | None,
    thresholds: HealthThresholds | None,
    started: float,
    checked_at: datetime,
    cluster: HealthCheck | None = None,
) -> HealthReport:
    limits = thresholds or HealthThresholds()
    why: str | None
    if server is None:
        info, why = None, "was not read: Redis did not answer PING"
    else:
        info, why = server
    if info is None and conn.backend == "memory":
        why = "is not available on the embedded backend (memory://)"
    counters = conn.state.counters()
    checks = {
        "connection": connection,
        "memory": memory_check(info, why, limits),
        "hit_rate": hit_rate_check(recent_lookups(limits.hit_rate_window), limits),
        "persistence": persistence_check(info, why),
        "eviction_policy": policy_check(info, why),
        "replication": replication_check(info, why),
        "clients": clients_check(info, why),
        "breaker": breaker_check(conn.state.breaker.state, counters),
    }
    if cluster is not None:
        checks["cluster"] = cluster
    spec_info = None if server is None else describe_info(info, counters)
    return HealthReport.build(
        checks,
        info=spec_info,
        url=conn.settings.display_url,
        backend=conn.backend,
        checked_at=checked_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def health_report(
    connection: _connection.RedisConnection | None = None,
    *,
    thresholds: HealthThresholds | None = None,
) -> HealthReport:
    """Every check's verdict, fresh (default connection: the ``init_redis()`` one).

    Raises:
        NotInitializedError: no connection was given and ``init_redis()`` has not run.
    """
    conn = connection or _connection.current_connection()
    driver = conn.async_driver
    checked_at, started = datetime.now(UTC), time.perf_counter()
    cluster = None
    try:
        await driver.probe(_ping())
        rtt = time.perf_counter() - started
        if conn.cluster:
            server, cluster = _on_cluster(await driver.probe(gather_cluster()))
        else:
            server = await driver.probe(gather_server())
        link = connection_check(rtt)
    except BackendError as exc:
        server, link = None, _failure(conn, exc)
    return _assemble(conn, link, server, thresholds, started, checked_at, cluster)


def health_report_sync(
    connection: _connection.RedisConnection | None = None,
    *,
    thresholds: HealthThresholds | None = None,
) -> HealthReport:
    """Blocking twin of ``health_report()``."""
    conn = connection or _connection.current_connection()
    driver = conn.sync_driver
    checked_at, started = datetime.now(UTC), time.perf_counter()
    cluster = None
    try:
        driver.probe(_ping())
        rtt = time.perf_counter() - started
        if conn.cluster:
            server, cluster = _on_cluster(driver.probe(gather_cluster()))
        else:
            server = driver.probe(gather_server())
        link = connection_check(rtt)
    except BackendError as exc:
        server, link = None, _failure(conn, exc)
    return _assemble(conn, link, server, thresholds, started, checked_at, cluster)


async def check_redis_health(
    connection: _connection.RedisConnection | None = None,
    *,
    thresholds: HealthThresholds | None = None,
) -> dict[str, Any]:
    """The spec's health check: ``status`` ("healthy" or "error"), ``message`` and ``info``.

    "error" means a critical verdict (Redis unreachable, memory above 90 %, a replica whose
    link is down); warnings keep "healthy" and are named in ``message``. ``info`` holds the
    spec's Redis statistics when Redis answered. ``health_report()`` gives every verdict.
    """
    return (await health_report(connection, thresholds=thresholds)).as_spec()


def check_redis_health_sync(
    connection: _connection.RedisConnection | None = None,
    *,
    thresholds: HealthThresholds | None = None,
) -> dict[str, Any]:
    """Blocking twin of ``check_redis_health()``."""
    return health_report_sync(connection, thresholds=thresholds).as_spec()
