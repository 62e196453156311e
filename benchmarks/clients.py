"""The clients every benchmark opens on the throwaway server, closed by the run's exit stack."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import NamedTuple

import redis
import redis.asyncio

from arketic_cache import RedisConnection

__all__ = ["Clients", "open_clients"]


class Clients(NamedTuple):
    """Our connection, and plain redis-py clients for the floors."""

    conn: RedisConnection
    raw: redis.Redis
    araw: redis.asyncio.Redis


def open_clients(url: str, stack: AsyncExitStack) -> Clients:
    """Open the three clients on ``url``; ``stack`` closes them."""
    conn = RedisConnection(url=url)
    stack.push_async_callback(conn.aclose)
    raw = redis.Redis.from_url(url)
    stack.callback(raw.close)
    araw = redis.asyncio.Redis.from_url(url)
    stack.push_async_callback(araw.aclose)
    return Clients(conn, raw, araw)
