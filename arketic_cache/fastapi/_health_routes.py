"""``/health``, ``/health/live`` and ``/monitoring/redis`` (and ``/metrics`` with Prometheus)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from .._core._health import HealthReport, HealthThresholds
from .._health import health_report
from .._metrics import metrics_snapshot

__all__ = ["HealthJSONResponse", "health_router"]


class HealthJSONResponse(JSONResponse):
    """The IETF health-check draft's media type."""

    media_type = "application/health+json"


def _basic(report: HealthReport, stay_ready: bool) -> tuple[int, dict[str, Any]]:
    """The basic check's status code and body: fail (503) while Redis does not answer, warn
    while another check warns or fails; ``stay_ready`` answers 200 with warn instead of 503."""
    connection = report.checks["connection"]
    down = connection.level == "critical"
    body = report.as_health_json()
    if down:
        body["status"] = "warn" if stay_ready else "fail"
    elif body["status"] == "fail":  # Redis answers; memory or a replica's link is critical
        body["status"] = "warn"
    body["description"] = "redis: " + connection.reason
    return (503 if down and not stay_ready else 200), body


class _Reports:
    """The last report, reused for ``cache_seconds`` so probes cannot storm Redis."""

    def __init__(self, cache_seconds: float, thresholds: HealthThresholds | None) -> None:
        self.cache_seconds = cache_seconds
        self.thresholds = thresholds
        self._last: tuple[float, HealthReport] | None = None

    async def get(self) -> HealthReport:
        now = time.monotonic()
        last = self._last
        if last is not None and now - last[0] < self.cache_seconds:
            return last[1]
        report = await health_report(thresholds=self.thresholds)
        self._last = (now, report)
        return report


def health_router(
    *,
    stay_ready: bool = False,
    cache_seconds: float = 1.0,
    thresholds: HealthThresholds | None = None,
    metrics: bool = True,
) -> APIRouter:
    """A router with ``/health`` (200 while Redis answers, 503 while it does not; with
    ``stay_ready=True`` 200 and status warn, for apps that must stay in rotation without
    Redis), ``/health/live`` (200 while the process runs; no Redis call), and
    ``/monitoring/redis`` (every check, the spec's statistics and the library's counters).
    With ``metrics=True`` and prometheus_client installed, ``/metrics`` too.

    Reports are reused for ``cache_seconds`` (0: a fresh one per request).
    """
    reports = _Reports(cache_seconds, thresholds)
    router = APIRouter(tags=["health"])

    @router.get("/health", response_class=HealthJSONResponse)
    async def health() -> Response:
        status, body = _basic(await reports.get(), stay_ready)
        return HealthJSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    @router.get("/health/live", response_class=HealthJSONResponse)
    async def live() -> Response:
        return HealthJSONResponse({"status": "pass"}, headers={"Cache-Control": "no-store"})

    @router.get("/monitoring/redis")
    async def monitoring() -> dict[str, Any]:
        report = await reports.get()
        return {
            "status": report.as_spec()["status"],
            "level": report.level,
            "problems": report.problems,
            "checks": {
                name: check.model_dump(mode="json") for name, check in report.checks.items()
            },
            "info": report.info,
            "server": report.url,
            "checked_at": report.checked_at.isoformat(),
            "duration_ms": report.duration_ms,
            "metrics": metrics_snapshot().as_dict(),
        }

    if metrics:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        except ImportError:
            pass
        else:
            from ..prometheus import register

            registry = CollectorRegistry()
            register(registry)

            @router.get("/metrics", include_in_schema=False)
            async def scrape() -> Response:
                return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
