"""The demo's health and metrics sections: the spec's verdict, each check, and the counters."""

from __future__ import annotations

import importlib.util

from .._connection import current_connection
from .._health import check_redis_health, health_report
from .._metrics import metrics_snapshot, server_label
from ._narration import PREFIX, heading, note, show

__all__ = ["health_demo", "metrics_demo"]


async def health_demo(embedded: bool, reachable: bool) -> None:
    """``check_redis_health()`` and the typed report under it."""
    heading("check_redis_health(): the spec's answer, computed afresh on every call")
    verdict = await check_redis_health()
    show("['status']", verdict["status"], "'error' only when a check below is critical")
    show("['message']", verdict["message"])
    if embedded:
        note("the embedded backend has no INFO: the server's checks are 'unknown', not failed")
    elif not reachable:
        note("the PING is sent past the circuit breaker: health says what Redis says now")
    report = await health_report()
    heading("health_report(): each check's level, value and threshold")
    for name, check in report.checks.items():
        threshold = f"; alert at {check.threshold}" if check.threshold else ""
        show(name, check.level, f"{check.reason}{threshold}")
    show(
        "as_health_json()['status']",
        report.as_health_json()["status"],
        "application/health+json for an HTTP probe: pass and warn answer 2xx, fail 5xx",
    )


def metrics_demo() -> None:
    """A few of ``metrics_snapshot()``'s counters, and the Prometheus form when installed."""
    heading("metrics_snapshot(): this process's own counters (no Redis call)")
    snapshot = metrics_snapshot()
    for c in snapshot.caches:
        if (c.kind, c.name) == ("cache", PREFIX):
            show(f"cache {PREFIX!r} l2_hits", c.l2_hits, "lookups that found a value in Redis")
            show(f"cache {PREFIX!r} misses", c.misses, "lookups that found nothing")
            show(f"cache {PREFIX!r} errors", c.errors, "calls that failed and degraded")
    for r in snapshot.rate_limits:
        if r.name == PREFIX:
            show("rate limits allowed", r.allowed, "decisions that admitted the request")
            show("rate limits denied", r.denied, "decisions that refused it")
            show("rate limits degraded", r.degraded, "decisions made without Redis")
    server = server_label(current_connection().settings)
    for b in snapshot.backends:
        if b.server == server:
            failed = sum(b.failures.values())
            show(f"{server} failures", failed, f"failed calls by kind: {dict(b.failures)}")
            show(f"{server} short_circuits", b.short_circuits, "calls the open breaker skipped")
    if importlib.util.find_spec("prometheus_client") is None:
        note("pip install 'arketic-cache[prometheus]' to export these to Prometheus")
        return
    from prometheus_client import CollectorRegistry, generate_latest

    from ..prometheus import register

    registry = CollectorRegistry()
    register(registry)
    lines = generate_latest(registry).decode().splitlines()
    samples = [line for line in lines if line.startswith("arketic_cache_misses_total")]
    show("Prometheus samples of arketic_cache_misses", len(samples), "one per cache, e.g.:")
    for line in samples[:2]:
        note(line)
