"""Rate-limit dependencies: the 429 sequence with its headers, keys by route template and
client, forged X-Forwarded-For ignored, the off switch, and the pure ASGI middleware."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from arketic_cache import Limit
from arketic_cache.fastapi import RateLimitMiddleware, rate_limit, rate_limits_enabled

from .helpers import make_app, peer, run, serve

chat_limit = rate_limit(3, window=60)


def limited_app(url: str) -> FastAPI:
    app = make_app(url)

    @app.get("/chats/{chat_id}", dependencies=[Depends(chat_limit)])
    async def chat(chat_id: str) -> dict[str, Any]:
        return {"chat": chat_id}

    proxied = rate_limit(1, name="proxied", trusted_proxies=["10.0.0.0/8"])

    @app.get("/proxied", dependencies=[Depends(proxied)])
    async def behind_proxy() -> dict[str, Any]:
        return {}

    return app


def test_the_429_sequence_and_its_headers(backend_url: str) -> None:
    async def scenario() -> list[Any]:
        async with serve(limited_app(backend_url)) as http:
            return [await http.get(f"/chats/{n}") for n in range(4)]  # one route template

    replies = run(scenario)
    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0", "0"]
    assert replies[0].headers["RateLimit-Policy"].endswith(";q=3;w=60")
    denied = replies[3]
    assert int(denied.headers["Retry-After"]) >= 1
    assert "rate limit of 3 per 60" in denied.json()["detail"]
    assert "Retry-After" not in replies[0].headers


def test_clients_count_apart_and_forged_forwarding_is_ignored(backend_url: str) -> None:
    async def scenario() -> list[int]:
        app = limited_app(backend_url)
        async with serve(app, client=("192.0.2.1", 1)) as one:
            codes = [(await one.get("/chats/a")).status_code for _ in range(4)]
            async with peer(app, client=("192.0.2.2", 1)) as two:
                codes.append((await two.get("/chats/a")).status_code)  # another IP
            forged = {"X-Forwarded-For": "198.51.100.7"}
            codes.append((await one.get("/chats/a", headers=forged)).status_code)
            async with peer(app, client=("10.1.2.3", 1)) as proxy:  # a trusted proxy
                for client in ("198.51.100.8", "198.51.100.9", "198.51.100.8"):
                    hops = {"X-Forwarded-For": f"{client}, 10.9.9.9"}
                    codes.append((await proxy.get("/proxied", headers=hops)).status_code)
            return codes

    assert run(scenario) == [200, 200, 200, 429, 200, 429, 200, 200, 429]


def test_the_off_switch_and_one_limits_override(backend_url: str) -> None:
    async def scenario() -> list[int]:
        app = limited_app(backend_url)
        async with serve(app) as http:
            app.dependency_overrides[rate_limits_enabled] = lambda: False
            codes = [(await http.get("/chats/a")).status_code for _ in range(5)]
            app.dependency_overrides.clear()
            app.dependency_overrides[chat_limit] = lambda: None
            codes += [(await http.get("/chats/a")).status_code for _ in range(5)]
            app.dependency_overrides.clear()
            codes += [(await http.get("/chats/a")).status_code for _ in range(4)]
            return codes

    assert run(scenario) == [200] * 13 + [429]


def test_allowed_responses_carry_the_headers_through_a_returned_decision(
    backend_url: str,
) -> None:
    app = make_app(backend_url)
    limit = rate_limit(Limit(2, 1), Limit(5, 60), name="two-limits")

    @app.get("/d")
    async def decided(decision: Any = Depends(limit)) -> dict[str, Any]:  # noqa: B008
        return {"remaining": decision.remaining, "limit": decision.limit}

    async def scenario() -> list[Any]:
        async with serve(app) as http:
            return [await http.get("/d") for _ in range(3)]

    first, second, third = run(scenario)
    assert first.json() == {"remaining": 1, "limit": 2}
    assert second.json() == {"remaining": 0, "limit": 2}
    assert third.status_code == 429
    assert first.headers["RateLimit-Policy"].count(";q=") == 2


def test_the_middleware_limits_every_path_but_health(backend_url: str) -> None:
    app = make_app(backend_url)
    app.add_middleware(RateLimitMiddleware, limits=(2,), window=60)

    @app.get("/a")
    async def a() -> dict[str, Any]:
        return {}

    async def scenario() -> list[tuple[int, str | None]]:
        async with serve(app) as http:
            paths = ["/a", "/a", "/a", "/health", "/health"]
            replies = [await http.get(p) for p in paths]
            return [(r.status_code, r.headers.get("X-RateLimit-Remaining")) for r in replies]

    assert run(scenario) == [(200, "1"), (200, "0"), (429, "0"), (200, None), (200, None)]
