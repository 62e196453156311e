"""Apps under test, served through httpx's ASGI transport with their lifespan run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from arketic_cache.fastapi import health_router, install, redis_lifespan

T = TypeVar("T")

#: httpx sends Secure cookies back over https only, as a browser does.
BASE_URL = "https://testserver"


def make_app(url: str, **lifespan: Any) -> FastAPI:
    """An app whose lifespan sets Redis up at ``url``, with the handlers and health routes."""
    app = FastAPI(lifespan=redis_lifespan(url, **lifespan))
    install(app)
    app.include_router(health_router(cache_seconds=0))
    return app


@asynccontextmanager
async def serve(
    app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client talking to it from ``client``."""
    async with app.router.lifespan_context(app), peer(app, client) as http:
        yield http


def peer(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    """Another client of a running app (its own cookies and address)."""
    transport = httpx.ASGITransport(app=app, client=client)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async scenario to its end in a loop of its own."""
    return asyncio.run(scenario())
