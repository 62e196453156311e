"""Peer libraries (cashews, aiocache) reading the same 1 KB value from the same server.

Both are optional (``pip install -e '.[bench]'``) and imported dynamically, so the harness and
its type check work without them; a missing or broken peer becomes a note, not a failure.
Each peer stores the value with its own JSON serializer under its own key, then reads it back.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from arketic_cache.testing import RedisServer

from .timing import Contender, async_batch

__all__ = ["peer_contenders", "skip_note"]

KEY = "bench:peer:1k"


def skip_note(exc: Exception, peer: str, label: str, server: RedisServer) -> str:
    """Why a peer's rows are skipped: it is not installed, or it fails here (the reason with
    the server's password taken out)."""
    if isinstance(exc, ImportError):
        return f"{peer}: not installed (pip install -e '.[bench]'), its rows skipped"
    reason = str(exc).replace(server.password, "***")
    return f"{label}: skipped, {type(exc).__name__}: {reason}"


async def _cashews(server: RedisServer, value: Any, stack: AsyncExitStack) -> Contender:
    cashews = importlib.import_module("cashews")
    cache = cashews.Cache()
    cache.setup(server.url, pickle_type="json", client_side=False)
    stack.push_async_callback(cache.close)
    await cache.set(KEY, value, expire=3600)

    async def get() -> Any:
        return await cache.get(KEY)

    return await _checked("cashews `await cache.get(k)`", get, value)


async def _aiocache(server: RedisServer, value: Any, stack: AsyncExitStack) -> Contender:
    aiocache = importlib.import_module("aiocache")
    serializers = importlib.import_module("aiocache.serializers")
    cache = aiocache.RedisCache(
        endpoint="127.0.0.1",
        port=server.port,
        password=server.password,
        serializer=serializers.JsonSerializer(),
    )
    stack.push_async_callback(cache.close)
    await cache.set(KEY, value, ttl=3600)

    async def get() -> Any:
        return await cache.get(KEY)

    return await _checked("aiocache `await cache.get(k)`", get, value)


async def _checked(name: str, get: Callable[[], Awaitable[Any]], value: Any) -> Contender:
    if await get() != value:
        raise RuntimeError("read back a different value")
    return Contender(name, async_batch(get), "peer")


async def peer_contenders(
    server: RedisServer, value: Any, stack: AsyncExitStack
) -> tuple[list[Contender], list[str]]:
    """Return a contender per peer that works here, and a note for each one skipped."""
    contenders: list[Contender] = []
    notes: list[str] = []
    for name, build in (("cashews", _cashews), ("aiocache", _aiocache)):
        try:
            contenders.append(await build(server, value, stack))
        except Exception as exc:  # a missing or broken peer must not stop our own benchmarks
            notes.append(skip_note(exc, name, name, server))
    return contenders, notes
