"""Session cookies: login sets a hardened cookie, /me needs it, logout ends it (401 after),
login rotates the id, logout everywhere ends every device, and a failed store is a 503."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from arketic_cache.fastapi import SessionCookiesDep, SessionDep
from arketic_cache.testing import RedisServer

from .helpers import make_app, peer, run, serve


def session_app(url: str, **lifespan: Any) -> FastAPI:
    app = make_app(url, **lifespan)

    @app.post("/login/{user_id}")
    async def login(user_id: str, cookies: SessionCookiesDep) -> dict[str, Any]:
        await cookies.login({"user_id": user_id, "role": "user"})
        return {"ok": True}

    @app.get("/me")
    async def me(session: SessionDep) -> dict[str, Any]:
        return {"user_id": session.data.user_id, "role": session.data.role}

    @app.post("/logout")
    async def logout(cookies: SessionCookiesDep) -> dict[str, Any]:
        return {"ended": await cookies.logout()}

    @app.post("/logout-everywhere")
    async def everywhere(session: SessionDep, cookies: SessionCookiesDep) -> dict[str, Any]:
        return {"ended": await cookies.logout_everywhere(session)}

    return app


def test_login_me_logout(backend_url: str) -> None:
    async def scenario() -> list[Any]:
        async with serve(session_app(backend_url)) as http:
            login = await http.post("/login/u-1")
            me = await http.get("/me")
            out = await http.post("/logout")
            after = await http.get("/me")
            return [login, me, out, after]

    login, me, out, after = run(scenario)
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("session=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag in cookie
    assert me.status_code == 200
    assert me.json() == {"user_id": "u-1", "role": "user"}
    assert out.json() == {"ended": True}
    assert after.status_code == 401


def test_login_rotates_the_id(backend_url: str) -> None:
    async def scenario() -> tuple[str, str, int, int]:
        app = session_app(backend_url)
        async with serve(app) as http:
            await http.post("/login/u-1")
            first = http.cookies["session"]
            await http.post("/login/u-1")
            second = http.cookies["session"]
            async with peer(app) as thief:
                thief.cookies.set("session", first)
                old = (await thief.get("/me")).status_code
            return first, second, old, (await http.get("/me")).status_code

    first, second, old, current = run(scenario)
    assert first != second
    assert (old, current) == (401, 200)


def test_logout_everywhere_ends_every_device(backend_url: str) -> None:
    async def scenario() -> list[int]:
        app = session_app(backend_url)
        async with serve(app) as phone, peer(app) as laptop:
            await phone.post("/login/u-7")
            await laptop.post("/login/u-7")
            ended = (await laptop.post("/logout-everywhere")).json()["ended"]
            return [
                ended,
                (await phone.get("/me")).status_code,
                (await laptop.get("/me")).status_code,
            ]

    assert run(scenario) == [2, 401, 401]


@pytest.mark.redis
def test_a_failed_store_is_503_not_401(fresh_server: RedisServer) -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        app = session_app(fresh_server.url, socket_timeout=0.5, connect_timeout=0.5)
        async with serve(app) as http:
            await http.post("/login/u-1")
            fresh_server.kill()
            reply = await http.get("/me")
            return reply.status_code, reply.json()

    code, body = run(scenario)
    assert code == 503
    assert "session store is unavailable" in body["detail"]
