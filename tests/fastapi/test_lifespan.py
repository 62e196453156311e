"""The lifespan sets up and closes the process-wide connection, around the app's own; app
after app in one process, each on its own Redis; overrides replace the dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import Depends, FastAPI

from arketic_cache import (
    BackendUnavailable,
    NotInitializedError,
    RedisCache,
    cached,
)
from arketic_cache._connection import current_connection
from arketic_cache.fastapi import CacheDep, get_cache, provide, redis_lifespan
from arketic_cache.testing import free_port

from .helpers import make_app, peer, run, serve


def connected() -> bool:
    try:
        current_connection()
    except NotInitializedError:
        return False
    return True


def test_the_connection_lives_as_long_as_the_app(backend_url: str) -> None:
    app = make_app(backend_url)
    seen: list[bool] = []

    @app.get("/put/{value}")
    async def put(value: str, cache: CacheDep) -> dict[str, Any]:
        return {"stored": await cache.set("k", value), "read": await cache.get("k")}

    async def scenario() -> None:
        assert not connected()
        async with serve(app) as http:
            seen.append(connected())
            reply = await http.get("/put/v1")
            assert reply.json() == {"stored": True, "read": "v1"}
        seen.append(connected())

    run(scenario)
    assert seen == [True, False]


def test_the_apps_own_lifespan_runs_inside_with_redis_up(backend_url: str) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        from arketic_cache import cache

        events.append(f"startup stored={await cache.set('warm', 1)}")
        yield {"answer": 42}
        events.append(f"shutdown read={await cache.get('warm')}")

    app = FastAPI(lifespan=redis_lifespan(backend_url, then=own))

    async def scenario() -> None:
        async with app.router.lifespan_context(app) as state:
            assert state is not None
            assert state["answer"] == 42
            assert state["redis"] is current_connection()

    run(scenario)
    assert events == ["startup stored=True", "shutdown read=1"]
    assert not connected()


def test_two_apps_in_a_row_share_nothing() -> None:
    """Each startup makes a new connection: the second app (another database) sees neither
    the first one's keys nor its @cached L1 copies."""
    calls: list[int] = []

    @cached(ttl=60)
    async def compute(n: int) -> int:
        calls.append(n)
        return n * len(calls)

    def app_on(url: str) -> FastAPI:
        app = make_app(url)

        @app.get("/compute/{n}")
        async def endpoint(n: int, cache: CacheDep) -> dict[str, Any]:
            before = await cache.get("marker")
            await cache.set("marker", url)
            return {"value": await compute(n), "marker_before": before}

        return app

    async def scenario() -> list[dict[str, Any]]:
        replies = []
        for url in ("memory://fastapi-app-one", "memory://fastapi-app-two"):
            async with serve(app_on(url)) as http:
                replies.append((await http.get("/compute/3")).json())
                replies.append((await http.get("/compute/3")).json())
        return replies

    first, again, second, second_again = run(scenario)
    assert first == {"value": 3, "marker_before": None}
    assert again == {"value": 3, "marker_before": "memory://fastapi-app-one"}  # an L1 hit
    assert second == {"value": 6, "marker_before": None}  # computed again: nothing leaked
    assert second_again["value"] == 6
    assert calls == [3, 3]


def test_startup_goes_on_while_redis_is_down_and_health_says_so() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(url, connect_timeout=0.2)

    async def scenario() -> tuple[int, str]:
        async with serve(app) as http:
            reply = await http.get("/health")
            return reply.status_code, reply.json()["status"]

    assert run(scenario) == (503, "fail")


def test_require_fails_startup_and_leaves_no_connection() -> None:
    url = f"redis://:secret-pw-123@127.0.0.1:{free_port()}/0"
    app = make_app(url, require=True, connect_timeout=0.2)

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            raise AssertionError("the app must not start")

    with pytest.raises(BackendUnavailable) as caught:
        run(scenario)
    assert "secret-pw-123" not in str(caught.value)
    assert not connected()


def test_dependency_overrides_replace_the_cache(backend_url: str) -> None:
    app = make_app(backend_url)
    mine = RedisCache(key_prefix="mine:")
    provided = provide(mine)
    assert provide(mine) is provided  # the same callable: overridable

    @app.get("/where")
    async def where(
        cache: CacheDep,
        other: RedisCache = Depends(provided),  # noqa: B008 (a local dependency)
    ) -> dict[str, Any]:
        await cache.set("k", "v")
        return {"same": cache is other, "prefix": await other.get_keys("*")}

    async def scenario() -> list[dict[str, Any]]:
        async with serve(app) as http:
            before = (await http.get("/where")).json()
            app.dependency_overrides[get_cache] = lambda: mine
            after = (await http.get("/where")).json()
            app.dependency_overrides.clear()
            async with peer(app) as other:
                restored = (await other.get("/where")).json()
            return [before, after, restored]

    before, after, restored = run(scenario)
    assert before == {"same": False, "prefix": []}
    assert after == {"same": True, "prefix": ["k"]}  # the override wrote under mine:
    assert restored["same"] is False
