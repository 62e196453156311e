"""The example application under test overrides, in process (httpx's ASGI transport, the
lifespan run on this test's backend): what its own tests would do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from arketic_cache import SessionData
from arketic_cache.fastapi import (
    CurrentSession,
    current_session,
    rate_limits_enabled,
    redis_lifespan,
)
from examples import app as example

from .helpers import run, serve


@pytest.fixture
def app(backend_url: str) -> Iterator[FastAPI]:
    """The example app, its lifespan pointed at ``backend_url``, its overrides undone after."""
    own = example.app.router.lifespan_context
    example.app.router.lifespan_context = redis_lifespan(backend_url)
    try:
        yield example.app
    finally:
        example.app.router.lifespan_context = own
        example.app.dependency_overrides.clear()


async def fake_ada() -> CurrentSession:
    return CurrentSession("a-test-session", SessionData(user_id="ada", role="admin"))


def test_a_faked_session_needs_no_login(app: FastAPI) -> None:
    app.dependency_overrides[current_session] = fake_ada

    async def scenario() -> None:
        async with serve(app) as http:
            me = await http.get("/me")
            assert (me.status_code, me.json()) == (200, {"user_id": "ada", "role": "admin"})
            posted = await http.post("/chat/overrides/messages", json={"text": "hi"})
            assert posted.status_code == 200
            recent = await example.chat.recent(example.ChatHistoryKey(chat_id="overrides"), 1)
            assert [(m.user, m.text) for _, m in recent] == [("ada", "hi")]

    run(scenario)


def test_limits_switched_off_for_a_test(app: FastAPI) -> None:
    app.dependency_overrides[current_session] = fake_ada

    async def scenario() -> None:
        async with serve(app) as http:
            url = "/chat/unlimited/messages"
            limited = [(await http.post(url, json={"text": f"{n}"})).status_code for n in range(6)]
            assert limited == [200] * 5 + [429]  # the real limit first: 5 per 10 s
            app.dependency_overrides[rate_limits_enabled] = lambda: False
            free = [(await http.post(url, json={"text": f"{n}"})).status_code for n in range(6)]
            assert free == [200] * 6
            unlimited = await http.post(url, json={"text": "x"})
            assert "x-ratelimit-remaining" not in unlimited.headers  # no decision was made

    run(scenario)
