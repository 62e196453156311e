"""The peers' caching decorators on the ``@cached`` rows: cashews, aiocache, dogpile.cache.

Each peer decorates the same ``user_id -> 1 KB dict`` function (under a name of its own, so no
two contenders share keys), stores its values as JSON on the same server (or in its own memory,
for the in-process rows), and is primed and checked like our own rows before it is timed. All
three are optional (``pip install -e '.[bench]'``) and imported dynamically; a missing or
failing peer row becomes a note, not a failure.

- cashews (async): ``@cache(ttl=...)`` on redis (L2 row), on ``mem://`` and with its
  client-side cache, an in-memory copy over redis (L1 rows); invalidation deletes the
  decorator's key (``cache.delete``).
- aiocache (async): ``@cached`` with ``RedisCache`` and ``JsonSerializer`` (L2 row) or its
  ``SimpleMemoryCache`` (L1 row); invalidation deletes the decorator's key.
- dogpile.cache (sync): ``cache_on_arguments`` on the redis backend with JSON serialisation
  (L2 row) or on its memory backend (L1 row); invalidation is ``fn.invalidate(user_id)``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, Literal

from arketic_cache.testing import RedisServer

from .calls import IDS, Source, cycling, primed_async, primed_sync
from .peers import skip_note
from .timing import Contender, async_batch, sync_batch

__all__ = ["ROW_KINDS", "RowKind", "peer_rows"]

RowKind = Literal[
    "l1 sync", "l1 async", "l2 sync", "l2 async", "invalidate sync", "invalidate async"
]
ROW_KINDS: tuple[RowKind, ...] = (
    "l1 sync",
    "l1 async",
    "l2 sync",
    "l2 async",
    "invalidate sync",
    "invalidate async",
)
TTL_SECONDS = 3600
Rows = dict[RowKind, list[Contender]]
Builder = Callable[[RedisServer, Source, AsyncExitStack], Coroutine[Any, Any, Contender]]


def _named(fn: Any, tag: str) -> Any:
    """Every peer derives keys from the function's name: each contender gets its own keys."""
    fn.__name__ = fn.__qualname__ = f"profile_{tag}"
    return fn


def _async_body(source: Source, tag: str) -> Callable[[int], Awaitable[dict[str, Any]]]:
    async def profile(user_id: int) -> dict[str, Any]:
        return source(user_id)

    return _named(profile, tag)  # type: ignore[no-any-return]


def _sync_body(source: Source, tag: str) -> Callable[[int], dict[str, Any]]:
    def profile(user_id: int) -> dict[str, Any]:
        return source(user_id)

    return _named(profile, tag)  # type: ignore[no-any-return]


async def _fill_and_drop(
    label: str, fn: Callable[[int], Awaitable[Any]], drop: Callable[[int], Awaitable[Any]]
) -> None:
    """Store every key through the decorator, then check that ``drop`` deletes each one."""
    for user_id in IDS:
        await fn(user_id)
    for user_id in IDS:
        if not await drop(user_id):
            raise RuntimeError(f"{label}: the derived key was not the decorator's")


# -- cashews ---------------------------------------------------------------------------------------
def _cashews_cache(url: str, stack: AsyncExitStack, **options: Any) -> Any:
    cache = importlib.import_module("cashews").Cache()
    cache.setup(url, pickle_type="json", **options)
    stack.push_async_callback(cache.close)
    return cache


def _cashews_hit(label: str, tag: str, where: str, **options: Any) -> Builder:
    async def build(server: RedisServer, source: Source, stack: AsyncExitStack) -> Contender:
        cache = _cashews_cache(server.url if where == "redis" else where, stack, **options)
        fn = cache(ttl=TTL_SECONDS)(_async_body(source, f"cashews_{tag}"))
        return Contender(label, async_batch(await primed_async(label, fn, source)), "peer")

    return build


async def _cashews_invalidate(
    server: RedisServer, source: Source, stack: AsyncExitStack
) -> Contender:
    keys = importlib.import_module("cashews.key")
    cache = _cashews_cache(server.url, stack, client_side=False)
    body = _async_body(source, "cashews_invalidate")
    template = keys.get_cache_key_template(body)

    def delete(user_id: int) -> Awaitable[Any]:
        return cache.delete(keys.get_cache_key(body, template, (user_id,), {}))  # type: ignore[no-any-return]

    label = "cashews `cache.delete(<decorator's key>)`"
    await _fill_and_drop(label, cache(ttl=TTL_SECONDS)(body), delete)
    return Contender(label, async_batch(cycling(delete)), "peer")


# -- aiocache --------------------------------------------------------------------------------------
def _aiocache_redis(server: RedisServer) -> dict[str, Any]:
    aiocache = importlib.import_module("aiocache")
    serializers = importlib.import_module("aiocache.serializers")
    return {
        "cache": aiocache.RedisCache,
        "serializer": serializers.JsonSerializer(),
        "endpoint": "127.0.0.1",
        "port": server.port,
        "password": server.password,
    }


def _aiocache_hit(label: str, on_redis: bool) -> Builder:
    async def build(server: RedisServer, source: Source, stack: AsyncExitStack) -> Contender:
        aiocache = importlib.import_module("aiocache")
        options = _aiocache_redis(server) if on_redis else {}
        tag = f"aiocache_{'redis' if on_redis else 'memory'}"
        fn = aiocache.cached(ttl=TTL_SECONDS, **options)(_async_body(source, tag))
        stack.push_async_callback(fn.cache.close)
        return Contender(label, async_batch(await primed_async(label, fn, source)), "peer")

    return build


async def _aiocache_invalidate(
    server: RedisServer, source: Source, stack: AsyncExitStack
) -> Contender:
    aiocache = importlib.import_module("aiocache")
    body = _async_body(source, "aiocache_invalidate")
    decorator = aiocache.cached(ttl=TTL_SECONDS, **_aiocache_redis(server))
    fn = decorator(body)
    stack.push_async_callback(fn.cache.close)

    def delete(user_id: int) -> Awaitable[Any]:
        return fn.cache.delete(decorator.get_cache_key(body, (user_id,), {}))  # type: ignore[no-any-return]

    label = "aiocache `fn.cache.delete(<decorator's key>)`"
    await _fill_and_drop(label, fn, delete)
    return Contender(label, async_batch(cycling(delete)), "peer")


# -- dogpile.cache ---------------------------------------------------------------------------------
def _dogpile_region(server: RedisServer, stack: AsyncExitStack, on_redis: bool) -> Any:
    dogpile = importlib.import_module("dogpile.cache")
    if not on_redis:
        return dogpile.make_region().configure("dogpile.cache.memory", expiration_time=TTL_SECONDS)
    region = dogpile.make_region(
        serializer=lambda payload: json.dumps(payload, separators=(",", ":")).encode(),
        deserializer=json.loads,
    ).configure(
        "dogpile.cache.redis",
        expiration_time=TTL_SECONDS,
        arguments={"url": server.url, "redis_expiration_time": TTL_SECONDS + 60},
    )
    stack.callback(region.backend.writer_client.close)
    return region


def _dogpile_hit(label: str, on_redis: bool) -> Builder:
    async def build(server: RedisServer, source: Source, stack: AsyncExitStack) -> Contender:
        region = _dogpile_region(server, stack, on_redis)
        tag = f"dogpile_{'redis' if on_redis else 'memory'}"
        fn = region.cache_on_arguments()(_sync_body(source, tag))
        return Contender(label, sync_batch(primed_sync(label, fn, source)), "peer")

    return build


async def _dogpile_invalidate(
    server: RedisServer, source: Source, stack: AsyncExitStack
) -> Contender:
    region = _dogpile_region(server, stack, on_redis=True)
    fn = region.cache_on_arguments()(_sync_body(source, "dogpile_invalidate"))
    for user_id in IDS:
        fn(user_id)
    for user_id in IDS:
        fn.invalidate(user_id)
    no_value = importlib.import_module("dogpile.cache.api").NO_VALUE
    if any(fn.get(user_id) is not no_value for user_id in IDS):
        raise RuntimeError("dogpile.cache: invalidate left an entry in redis")
    label = "dogpile.cache `fn.invalidate(user_id)`"
    return Contender(label, sync_batch(cycling(fn.invalidate)), "peer")


PEERS: tuple[tuple[str, RowKind, Builder], ...] = (
    ("cashews", "l2 async", _cashews_hit("cashews `@cache(ttl=…)`, redis", "l2", "redis")),
    ("cashews", "l1 async", _cashews_hit("cashews `@cache(ttl=…)`, `mem://`", "mem", "mem://")),
    (
        "cashews",
        "l1 async",
        _cashews_hit(
            "cashews `@cache(ttl=…)`, redis + client-side cache",
            "client_side",
            "redis",
            client_side=True,
        ),
    ),
    ("cashews", "invalidate async", _cashews_invalidate),
    ("aiocache", "l2 async", _aiocache_hit("aiocache `@cached`, RedisCache + JSON", True)),
    ("aiocache", "l1 async", _aiocache_hit("aiocache `@cached`, SimpleMemoryCache", False)),
    ("aiocache", "invalidate async", _aiocache_invalidate),
    ("dogpile.cache", "l2 sync", _dogpile_hit("dogpile.cache `cache_on_arguments`, redis", True)),
    ("dogpile.cache", "l1 sync", _dogpile_hit("dogpile.cache `cache_on_arguments`, memory", False)),
    ("dogpile.cache", "invalidate sync", _dogpile_invalidate),
)


async def peer_rows(
    server: RedisServer, value: dict[str, Any], stack: AsyncExitStack
) -> tuple[Rows, list[str]]:
    """The peers' contenders by row, and a note for each row skipped."""
    rows: Rows = {}
    notes: list[str] = []
    missing: set[str] = set()
    for peer, kind, build in PEERS:
        if peer in missing:
            continue
        try:
            contender = await build(server, Source(value), stack)
        except Exception as exc:  # a missing or broken peer must not stop our own benchmarks
            if isinstance(exc, ImportError):
                missing.add(peer)
            notes.append(skip_note(exc, peer, f"{peer} ({kind} row)", server))
            continue
        rows.setdefault(kind, []).append(contender)
    return rows, notes
