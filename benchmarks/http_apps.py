"""The HTTP benchmark's applications: one FastAPI app, five ways (``BENCH_HTTP_APP``).

Run by ``http_bench`` as ``uvicorn --factory benchmarks.http_apps:create`` with ``REDIS_URL``
set; the peers are imported dynamically (optional, ``pip install -e '.[bench]'``). Every
variant serves ``GET /ping`` (readiness) and the same two routes, each returning the same 1 KB
JSON object through the same return annotation:

- ``GET /answer?q=...``: the cached endpoint. ``bare``: the value, no Redis (what the
  framework alone costs); ``raw``: a hand-written redis.asyncio cache (GET, ``json.loads``;
  SET EX on a miss): the floor; ``arketic``: ``@cached`` (``/answer``, L1 over L2) and
  ``@cached(l1=False)`` (``/answer-l2``, every hit read from Redis); ``fastapi-cache2``:
  its ``@cache`` on its redis.asyncio backend.
- ``GET /limited``: the rate-limited endpoint, 100 per minute per ``X-API-Key``. ``bare``: no
  limit; ``raw``: a redis.asyncio fixed window (INCR + EXPIRE NX in one round trip), the floor;
  ``arketic``: ``Depends(rate_limit(100, by="api_key"))`` (the exact trailing minute, headers
  on every response); ``slowapi``: its ``@limiter.limit("100/minute")`` on its Redis
  storage (``limits``' fixed window).

``GET /computed`` tells how often the cached value was computed (the harness checks that every
timed request was a hit).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio
from fastapi import Depends, FastAPI, HTTPException, Request

from .cache_bench import one_kb_value

__all__ = ["API_KEY_HEADER", "KINDS", "LIMIT", "TTL_SECONDS", "build", "create"]

KINDS = ("bare", "raw", "arketic", "fastapi-cache2", "slowapi")
LIMIT = 100
TTL_SECONDS = 3600
API_KEY_HEADER = "X-API-Key"
VALUE = one_kb_value()


class _Counter:
    computed = 0


def compute(q: str) -> dict[str, Any]:
    """The answer (the same object for every question), counted."""
    _Counter.computed += 1
    return VALUE


def _base(lifespan: Any = None) -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/computed")
    async def computed() -> dict[str, int]:
        return {"computed": _Counter.computed}

    return app


def _bare() -> FastAPI:
    app = _base()

    @app.get("/answer")
    async def answer(q: str) -> dict[str, Any]:
        return compute(q)

    @app.get("/limited")
    async def limited() -> dict[str, Any]:
        return VALUE

    return app


def _raw(url: str) -> FastAPI:
    client = redis.asyncio.Redis.from_url(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = _base(lifespan)

    @app.get("/answer")
    async def answer(q: str) -> dict[str, Any]:
        key = f"bench:http:raw:answer:{q}"
        stored = await client.get(key)
        if stored is not None:
            value: dict[str, Any] = json.loads(stored)
            return value
        value = compute(q)
        await client.set(key, json.dumps(value, separators=(",", ":")), ex=TTL_SECONDS)
        return value

    async def fixed_window(request: Request) -> None:
        key = f"bench:http:raw:limit:{request.headers.get(API_KEY_HEADER, '')}"
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 60, nx=True)
            count, _ = await pipe.execute()
        if count > LIMIT:
            raise HTTPException(429, "rate limit exceeded")

    @app.get("/limited", dependencies=[Depends(fixed_window)])
    async def limited() -> dict[str, Any]:
        return VALUE

    return app


def _arketic(url: str) -> FastAPI:
    from arketic_cache import cached
    from arketic_cache.fastapi import install, rate_limit, redis_lifespan

    app = _base(redis_lifespan(url))
    install(app)

    @app.get("/answer")
    @cached(TTL_SECONDS, namespace="bench.http.answer")
    async def answer(q: str) -> dict[str, Any]:
        return compute(q)

    @app.get("/answer-l2")
    @cached(TTL_SECONDS, namespace="bench.http.answer-l2", l1=False)
    async def answer_l2(q: str) -> dict[str, Any]:
        return compute(q)

    limit = rate_limit(LIMIT, window=60, by="api_key", api_key_header=API_KEY_HEADER)

    @app.get("/limited", dependencies=[Depends(limit)])
    async def limited() -> dict[str, Any]:
        return VALUE

    return app


def _fastapi_cache2(url: str) -> FastAPI:
    backends = importlib.import_module("fastapi_cache.backends.redis")
    fastapi_cache = importlib.import_module("fastapi_cache")
    cache = importlib.import_module("fastapi_cache.decorator").cache
    client = redis.asyncio.Redis.from_url(url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fastapi_cache.FastAPICache.init(backends.RedisBackend(client), prefix="bench-http-fc2")
        yield
        await client.aclose()

    app = _base(lifespan)

    async def answer(q: str) -> dict[str, Any]:
        return compute(q)

    app.get("/answer")(cache(expire=TTL_SECONDS)(answer))
    return app


def _slowapi(url: str) -> FastAPI:
    slowapi = importlib.import_module("slowapi")
    errors = importlib.import_module("slowapi.errors")

    def api_key(request: Request) -> str:
        return request.headers.get(API_KEY_HEADER, "")

    limiter = slowapi.Limiter(key_func=api_key, storage_uri=url)
    app = _base()
    app.state.limiter = limiter
    app.add_exception_handler(errors.RateLimitExceeded, slowapi._rate_limit_exceeded_handler)

    async def limited(request: Request) -> dict[str, Any]:
        return VALUE

    app.get("/limited")(limiter.limit(f"{LIMIT}/minute")(limited))
    return app


def build(kind: str, url: str) -> FastAPI:
    """The ``kind`` variant of the app, on the Redis at ``url``."""
    if kind == "bare":
        return _bare()
    if kind == "raw":
        return _raw(url)
    if kind == "arketic":
        return _arketic(url)
    if kind == "fastapi-cache2":
        return _fastapi_cache2(url)
    if kind == "slowapi":
        return _slowapi(url)
    raise ValueError(f"BENCH_HTTP_APP is one of {', '.join(KINDS)}, not {kind!r}")


def create() -> FastAPI:
    """The app ``BENCH_HTTP_APP`` names (``uvicorn --factory benchmarks.http_apps:create``)."""
    return build(os.environ["BENCH_HTTP_APP"], os.environ.get("REDIS_URL", ""))
