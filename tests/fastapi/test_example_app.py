"""The example application in a real uvicorn process, over real HTTP, on the embedded backend
and on a real redis-server: sessions, the 429 sequence, the cached answer, the chat stream
(SSE with Last-Event-ID resume, and the WebSocket) and health through a Redis outage."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from arketic_cache.testing import RedisServer

from .app_server import (
    AppServer,
    header,
    health_once_reused_reports_expire,
    login,
    login_when_up,
    read_event,
    session_cookie,
)


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def app(request: pytest.FixtureRequest) -> Iterator[AppServer]:
    if request.param == "memory":
        url = "memory://example-tests"
    else:
        url = request.getfixturevalue("redis_server").url
    with AppServer(url) as server:
        yield server


def test_login_me_logout(app: AppServer) -> None:
    cookies = login(app, "linus")
    me = httpx.get(f"{app.url}/me", headers=header(cookies))
    assert (me.status_code, me.json()) == (200, {"user_id": "linus", "role": "user"})
    assert httpx.post(f"{app.url}/logout", headers=header(cookies)).json() == {"ended": True}
    assert httpx.get(f"{app.url}/me", headers=header(cookies)).status_code == 401


def test_a_wrong_password_is_a_401(app: AppServer) -> None:
    reply = httpx.post(f"{app.url}/login", json={"username": "ada", "password": "nope"})
    assert reply.status_code == 401
    assert "set-cookie" not in reply.headers


def test_login_rotates_the_session_id(app: AppServer) -> None:
    first = login(app, "linus")
    again = httpx.post(
        f"{app.url}/login", json={"username": "linus", "password": "arketic"}, headers=header(first)
    )
    second = session_cookie(again)
    assert second["session"] != first["session"]
    assert httpx.get(f"{app.url}/me", headers=header(first)).status_code == 401
    assert httpx.get(f"{app.url}/me", headers=header(second)).status_code == 200


def test_logout_everywhere_ends_every_session_of_the_user(app: AppServer) -> None:
    laptop, phone, other = login(app, "grace"), login(app, "grace"), login(app, "linus")
    ended = httpx.post(f"{app.url}/logout-everywhere", headers=header(laptop)).json()
    assert ended["ended"] >= 2
    assert httpx.get(f"{app.url}/me", headers=header(phone)).status_code == 401
    assert httpx.get(f"{app.url}/me", headers=header(other)).status_code == 200


def test_the_refresh_token_gives_a_new_session_once(app: AppServer) -> None:
    cookies = login(app, "linus")
    renewed = httpx.post(f"{app.url}/refresh", headers=header(cookies))
    assert renewed.status_code == 200
    fresh = session_cookie(renewed)
    assert fresh["session"] != cookies["session"]
    assert httpx.get(f"{app.url}/me", headers=header(fresh)).status_code == 200
    reused = httpx.post(f"{app.url}/refresh", headers=header(cookies))  # the old token again
    assert reused.status_code == 401


def test_chat_posts_are_limited_per_user_with_headers(app: AppServer) -> None:
    cookies = login(app, "ada")
    url = f"{app.url}/chat/limits/messages"
    replies = [httpx.post(url, json={"text": f"m{n}"}, headers=header(cookies)) for n in range(6)]
    assert [reply.status_code for reply in replies] == [200] * 5 + [429]
    assert [reply.headers["X-RateLimit-Remaining"] for reply in replies[:5]] == list("43210")
    denied = replies[5]
    assert denied.headers["RateLimit-Policy"].startswith('"5/10s";q=5;w=10')
    assert 1 <= int(denied.headers["Retry-After"]) <= 10
    anonymous = httpx.post(url, json={"text": "x"})
    assert anonymous.status_code == 401


def test_the_ai_answer_is_computed_once_per_question(app: AppServer) -> None:
    ask = [httpx.get(f"{app.url}/ai/answer", params={"q": q}).json() for q in ("a b", "a b", "c")]
    assert ask[0] == ask[1]
    assert ask[2]["computed_at"] != ask[0]["computed_at"]
    assert httpx.get(f"{app.url}/ai/answer", params={"q": ""}).status_code == 422


def test_the_event_stream_delivers_and_resumes_from_last_event_id(app: AppServer) -> None:
    cookies = login(app, "grace")
    post_url, events_url = f"{app.url}/chat/sse/messages", f"{app.url}/chat/sse/events"
    with httpx.stream("GET", events_url, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"  # connected and subscribed
        posted = httpx.post(post_url, json={"text": "hello"}, headers=header(cookies)).json()
        last_id, message = read_event(lines)
    assert last_id == posted["id"]
    assert message["text"] == "hello"
    assert message["user"] == "grace"

    missed = [
        httpx.post(post_url, json={"text": text}, headers=header(cookies)).json()["id"]
        for text in ("while", "away")
    ]
    with httpx.stream("GET", events_url, headers={"Last-Event-ID": last_id}, timeout=10) as again:
        lines = again.iter_lines()
        resumed = [read_event(lines), read_event(lines)]
    assert [entry for entry, _ in resumed] == missed
    assert [body["text"] for _, body in resumed] == ["while", "away"]


def test_a_bad_last_event_id_is_a_400(app: AppServer) -> None:
    reply = httpx.get(f"{app.url}/chat/sse/events", headers={"Last-Event-ID": "yesterday"})
    assert reply.status_code == 400


def test_the_websocket_relays_posted_messages(app: AppServer) -> None:
    cookies = login(app, "grace")
    first = httpx.post(
        f"{app.url}/chat/ws/messages", json={"text": "before"}, headers=header(cookies)
    ).json()["id"]
    ws_url = f"ws://127.0.0.1:{app.port}/chat/ws/ws?last_id={first}"
    with connect(ws_url, open_timeout=10) as socket:
        posted = httpx.post(
            f"{app.url}/chat/ws/messages", json={"text": "live"}, headers=header(cookies)
        ).json()["id"]
        received = json.loads(socket.recv(timeout=10))
    assert received["id"] == posted
    assert received["message"]["text"] == "live"


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_websocket_connections_are_limited_at_connect_time(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """30 connects a minute per client, counted before the socket is accepted: the 31st
    handshake is refused (uvicorn answers a close before accept with HTTP 403)."""
    if backend == "memory":
        url = "memory://example-ws-limit"
    else:
        url = request.getfixturevalue("fresh_server").url
    with AppServer(url) as app:
        ws_url = f"ws://127.0.0.1:{app.port}/chat/limit/ws"
        for _ in range(30):
            with connect(ws_url, open_timeout=10):
                pass
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, open_timeout=10)
        assert refused.value.response.status_code == 403
        sse = httpx.get(f"{app.url}/chat/limit/events", timeout=10)  # the same budget
        assert sse.status_code == 429
        assert sse.headers["RateLimit-Policy"].startswith('"30/60s"')


@pytest.mark.redis
def test_health_follows_a_redis_outage(fresh_server: RedisServer) -> None:
    """200 while Redis answers, 503 with it killed (liveness and the page still served, the
    session endpoints a clear 503, the cached answer still computed), 200 after the restart."""
    with AppServer(fresh_server.url) as app:
        cookies = login(app, "ada")
        assert httpx.get(f"{app.url}/health").status_code == 200
        fresh_server.kill()
        down = health_once_reused_reports_expire(app, 503)
        assert down.json()["status"] == "fail"
        assert httpx.get(f"{app.url}/health/live").status_code == 200
        me = httpx.get(f"{app.url}/me", headers=header(cookies), timeout=10)
        assert me.status_code == 503
        assert "session store is unavailable" in me.json()["detail"]
        assert httpx.get(f"{app.url}/ai/answer", params={"q": "down"}, timeout=10).is_success
        fresh_server.start(fresh_server.port)
        assert health_once_reused_reports_expire(app, 200).json()["status"] == "pass"


@pytest.mark.redis
def test_an_open_event_stream_survives_a_redis_restart(fresh_server: RedisServer) -> None:
    """An SSE client connected before Redis was killed stays connected (idle comments) and
    receives what is posted after the restart, on the same connection."""
    with AppServer(fresh_server.url) as app:
        cookies = login(app, "grace")
        post_url = f"{app.url}/chat/outage/messages"
        with httpx.stream("GET", f"{app.url}/chat/outage/events", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            fresh_server.kill()
            failed = httpx.post(post_url, json={"text": "lost"}, headers=header(cookies))
            assert failed.status_code == 503  # not taken, so never shown
            fresh_server.start(fresh_server.port)
            cookies = login_when_up(app, "grace")
            posted = httpx.post(post_url, json={"text": "back"}, headers=header(cookies))
            assert posted.status_code == 200
            entry, message = read_event(lines)
    assert (entry, message["text"]) == (posted.json()["id"], "back")
