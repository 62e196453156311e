"""/health answers 200 while Redis answers and 503 while it does not (or 200 with warn when
the app must stay in rotation); /health/live never asks Redis; /monitoring/redis holds every
check and counter, and no password."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from arketic_cache.fastapi import health_router, install, redis_lifespan
from arketic_cache.testing import RedisServer

from .helpers import make_app, run, serve

HEALTH_JSON = "application/health+json"


def statuses(app: FastAPI, *paths: str) -> list[tuple[int, Any]]:
    async def scenario() -> list[tuple[int, Any]]:
        async with serve(app) as http:
            found = []
            for path in paths:
                reply = await http.get(path)
                found.append((reply.status_code, reply))
            return found

    return run(scenario)


def test_health_passes_while_redis_answers(backend_url: str) -> None:
    (health, health_code), (live, _) = [
        (reply.json(), code)
        for code, reply in statuses(make_app(backend_url), "/health", "/health/live")
    ]
    assert health_code == 200
    assert health["status"] == "pass"
    assert health["checks"]["redis:responseTime"][0]["status"] == "pass"
    assert health["description"].startswith("redis: PING answered in")
    assert live == {"status": "pass"}


def test_the_media_type_is_health_json(backend_url: str) -> None:
    ((code, reply),) = statuses(make_app(backend_url), "/health")
    assert code == 200
    assert reply.headers["content-type"] == HEALTH_JSON
    assert reply.headers["cache-control"] == "no-store"


@pytest.mark.redis
def test_health_follows_redis_down_and_up(fresh_server: RedisServer) -> None:
    """200, then 503 (fail) with the server killed while liveness stays 200, then 200 again
    after the restart, in one running app."""
    app = make_app(fresh_server.url, socket_timeout=0.5, connect_timeout=0.5)

    async def scenario() -> list[tuple[str, int, str]]:
        seen = []
        async with serve(app) as http:

            async def probe(label: str, path: str = "/health") -> None:
                reply = await http.get(path)
                seen.append((label, reply.status_code, reply.json()["status"]))

            await probe("up")
            fresh_server.kill()
            await probe("down")
            await probe("down, live", "/health/live")
            fresh_server.start(fresh_server.port)
            await probe("restarted")
        return seen

    assert run(scenario) == [
        ("up", 200, "pass"),
        ("down", 503, "fail"),
        ("down, live", 200, "pass"),
        ("restarted", 200, "pass"),
    ]


@pytest.mark.redis
def test_stay_ready_answers_warn_without_redis(fresh_server: RedisServer) -> None:
    app = FastAPI(lifespan=redis_lifespan(fresh_server.url, connect_timeout=0.5))
    install(app)
    app.include_router(health_router(stay_ready=True, cache_seconds=0))

    async def scenario() -> tuple[int, dict[str, Any]]:
        async with serve(app) as http:
            fresh_server.kill()
            reply = await http.get("/health")
            return reply.status_code, reply.json()

    code, body = run(scenario)
    assert code == 200
    assert body["status"] == "warn"
    assert body["checks"]["redis:responseTime"][0]["status"] == "fail"
    assert fresh_server.password not in str(body)


def test_reports_are_reused_for_cache_seconds(backend_url: str) -> None:
    """Probes within ``cache_seconds`` share one report (one PING and INFO between them)."""
    app = FastAPI(lifespan=redis_lifespan(backend_url))
    app.include_router(health_router(cache_seconds=3600))
    fresh = FastAPI(lifespan=redis_lifespan(backend_url))
    fresh.include_router(health_router(cache_seconds=0))

    def times(app: FastAPI) -> set[str]:
        replies = statuses(app, "/monitoring/redis", "/monitoring/redis")
        return {reply.json()["checked_at"] for _, reply in replies}

    assert len(times(app)) == 1
    assert len(times(fresh)) == 2


def test_monitoring_holds_checks_info_and_counters(backend_url: str) -> None:
    ((code, reply),) = statuses(make_app(backend_url), "/monitoring/redis")
    body = reply.json()
    assert code == 200
    assert body["status"] == "healthy"
    assert set(body["checks"]) >= {"connection", "memory", "hit_rate", "breaker"}
    assert body["checks"]["connection"]["level"] == "ok"
    assert {"caches", "backends"} <= set(body["metrics"])
    if backend_url.startswith("redis://"):
        assert body["info"]["redis_version"]
        assert body["checks"]["memory"]["level"] == "ok"


@pytest.mark.redis
def test_no_password_anywhere(redis_server: RedisServer) -> None:
    replies = statuses(make_app(redis_server.url), "/health", "/monitoring/redis", "/metrics")
    for code, reply in replies:
        assert code == 200, reply.text
        assert redis_server.password not in reply.text


def test_metrics_route_serves_prometheus_text(backend_url: str) -> None:
    ((code, reply),) = statuses(make_app(backend_url), "/metrics")
    assert code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert "arketic_cache_hits_total" in reply.text
