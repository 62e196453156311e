"""The example application's degradation through a real process and real HTTP: Redis down at
startup, frozen (SIGSTOP: connections open, nothing answered), and killed while requests wait
on it. The spec's degradation holds throughout: a cache miss (the answer computed), the rate
limit allowed, session endpoints a 503 with a clear body, health 503 and liveness 200."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from arketic_cache.testing import RedisServer

from .app_server import (
    AppServer,
    header,
    health_once_reused_reports_expire,
    login,
    login_when_up,
)

pytestmark = pytest.mark.redis

#: Seconds any one request may take while Redis is frozen: a request makes a few Redis calls,
#: each bounded by the default 0.5 s socket timeout (and the breaker opens after a few).
FROZEN_BOUND = 3.0


def timed_get(url: str, **options: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    reply = httpx.get(url, timeout=10, **options)  # type: ignore[arg-type]
    return reply, time.monotonic() - started


def assert_degraded(app: AppServer, cookies: dict[str, str], question: str) -> None:
    """Every endpoint answers as the spec degrades, none slower than ``FROZEN_BOUND``."""
    answer, took_answer = timed_get(f"{app.url}/ai/answer", params={"q": question})
    assert answer.status_code == 200  # a miss: computed without the cache
    assert answer.json()["question"] == question
    me, took_me = timed_get(f"{app.url}/me", headers=header(cookies))
    assert me.status_code == 503
    assert "session store is unavailable" in me.json()["detail"]
    assert me.headers["Retry-After"] == "1"
    live, _ = timed_get(f"{app.url}/health/live")
    assert live.status_code == 200
    health, took_health = timed_get(f"{app.url}/health")
    assert health.status_code == 503
    started = time.monotonic()
    with httpx.stream("GET", f"{app.url}/chat/faults/events", timeout=10) as stream:
        assert stream.status_code == 200  # the connect limit allowed it, Redis or not
        assert next(stream.iter_lines()) == "retry: 2000"
    took_stream = time.monotonic() - started
    assert max(took_answer, took_me, took_health, took_stream) < FROZEN_BOUND


def test_the_app_starts_without_redis_and_recovers_when_it_comes(
    fresh_server: RedisServer,
) -> None:
    fresh_server.kill()
    with AppServer(fresh_server.url) as app:  # starts: Redis is not required at startup
        unknown = {"session": secrets.token_urlsafe(32)}  # a well-formed id: Redis is asked
        assert_degraded(app, unknown, "down at startup")
        fresh_server.start(fresh_server.port)
        cookies = login_when_up(app, "ada")
        assert httpx.get(f"{app.url}/me", headers=header(cookies)).status_code == 200
        assert health_once_reused_reports_expire(app, 200).json()["status"] == "pass"


def test_a_frozen_redis_degrades_every_endpoint_and_loses_nothing(
    fresh_server: RedisServer,
) -> None:
    with AppServer(fresh_server.url) as app:
        cookies = login(app, "grace")
        fresh_server.freeze()
        try:
            assert_degraded(app, cookies, "frozen")
        finally:
            fresh_server.thaw()
        # Nothing was lost while it was frozen: the session is there again (once the breaker's
        # probe lets calls through), and so is health.
        assert health_once_reused_reports_expire(app, 200).json()["status"] == "pass"
        me = httpx.get(f"{app.url}/me", headers=header(cookies))
        assert (me.status_code, me.json()["user_id"]) == (200, "grace")


def commands_waiting(port: int) -> int:
    """Server-side connections on ``port`` whose receive queue holds unread bytes: commands
    sent to a stopped server (the kernel takes them; the process cannot read them)."""
    waiting = 0
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            received = int(fields[4].split(":")[1], 16)
            if local_port == port and fields[3] == "01" and received > 0:
                waiting += 1
    return waiting


def test_redis_killed_while_requests_wait_on_it(fresh_server: RedisServer) -> None:
    """Requests whose commands Redis holds unanswered get the degraded answer as soon as it
    dies: the socket closes, no timeout is waited out (here 5 s, longer than the test)."""
    with AppServer(fresh_server.url, {"REDIS_SOCKET_TIMEOUT": "5"}) as app:
        cookies = login(app, "linus")
        fresh_server.freeze()
        with ThreadPoolExecutor(2) as pool:
            me = pool.submit(timed_get, f"{app.url}/me", headers=header(cookies))
            answer = pool.submit(timed_get, f"{app.url}/ai/answer", params={"q": "killed"})
            deadline = time.monotonic() + 4
            while commands_waiting(fresh_server.port) < 2:
                # Polled: nothing signals that a command reached a stopped server's socket.
                assert time.monotonic() < deadline, "the requests never reached Redis"
                time.sleep(0.01)
            fresh_server.kill()
            (me_reply, me_took), (answer_reply, answer_took) = me.result(), answer.result()
        assert me_reply.status_code == 503
        assert "session store is unavailable" in me_reply.json()["detail"]
        assert answer_reply.status_code == 200
        assert answer_reply.json()["question"] == "killed"
        assert max(me_took, answer_took) < 5  # the kill was noticed, not the timeout
        fresh_server.start(fresh_server.port)
        assert health_once_reused_reports_expire(app, 200).json()["status"] == "pass"
        assert httpx.get(f"{app.url}/me", headers=header(cookies)).status_code == 401  # gone
