"""The health report and the metrics snapshot are typed to the field."""

from __future__ import annotations

from typing import Literal

from arketic_cache import (
    HealthReport,
    MetricsSnapshot,
    health_report_sync,
    metrics_snapshot,
)


def read(snapshot: MetricsSnapshot) -> int:
    total = 0
    for cache in snapshot.caches:
        kind: Literal["cache", "repository", "cached"] = cache.kind
        total += cache.l1_hits + cache.l2_hits + cache.misses + len(kind)
    for backend in snapshot.backends:
        state: Literal["closed", "open", "half-open"] = backend.breaker
        total += backend.failures["timeout"] + backend.short_circuits + len(state)
    for limit in snapshot.rate_limits:
        total += limit.allowed + limit.denied + limit.degraded + limit.misconfigured
    for session in snapshot.sessions:
        total += session.created + session.refresh_reuse_detected
    return total


def report() -> str:
    found: HealthReport = health_report_sync()
    return found.checks["memory"].level


count: int = read(metrics_snapshot())
