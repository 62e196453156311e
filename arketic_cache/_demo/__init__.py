"""The demo behind ``make demo``: each operation of the layer, with what it returned and why.

Every line the demo prints is one of:

- blank;
- a heading: not indented, ending with ``:``;
- a result: two spaces, what was called, `` -> `` and the value it returned;
- a note: four spaces and prose, saying what a number means or where it came from; the
  library's own log records (the ``arketic_cache`` logger) are notes too, ``logged (level): ...``,
  printed under the call during which they were emitted.

The demo runs on the embedded backend unless ``REDIS_URL`` is set. When that Redis cannot be
reached it goes on anyway, to show the degradation: the calls return the spec's defaults, no
call raises, and the demo exits with 0.
"""

from __future__ import annotations

import asyncio
import os

from .._cache import RedisCache
from .._connection import close_redis, current_connection, init_redis
from .._exceptions import BackendError
from ._cache import cache_demo, info_demo
from ._cached import cached_demo
from ._health import health_demo, metrics_demo
from ._messaging import messaging_demo
from ._narration import PREFIX, flush_logs, heading, narrating_logs, note, show
from ._ratelimit import rate_limit_demo
from ._repositories import repository_demo, schema_demo
from ._session import session_demo

__all__ = ["main"]

EMBEDDED_URL = "memory://demo"


async def _demo() -> None:
    url = os.environ.get("REDIS_URL") or EMBEDDED_URL
    try:
        await init_redis(url=url, require=True)
        reachable = True
    except BackendError as exc:
        reachable = False
        failure = str(exc.__cause__ or exc)
    conn = current_connection()
    where = conn.settings.display_url
    if url == EMBEDDED_URL:
        heading("REDIS_URL is unset, so the demo runs on the embedded in-process backend", "")
        note("memory://demo: a fakeredis server inside this process; set REDIS_URL to use a")
        note("real Redis")
    elif reachable:
        heading(f"Using Redis at {where} (from REDIS_URL)", "")
        note(f"the demo's keys go under {PREFIX!r} (and @cached's under 'cached:demo%3Aanswer:');")
        note(f"its clean-up at the end deletes every key under {PREFIX!r} on this server")
    else:
        heading(f"Redis at {where} (from REDIS_URL) is unreachable", "")
        note(f"PING at start-up failed: {failure}")
        note("The demo goes on to show the degradation: no call below raises. Cache reads")
        note("miss (None), writes and deletes return False, counters return None, the rate")
        note("limiter allows each request but marks it degraded (nothing is counted), and")
        note("session reads return None. The library's warnings show up as 'logged' notes.")
        note("Start that Redis, or unset REDIS_URL to run on the embedded backend.")
    cache = RedisCache(key_prefix=PREFIX)
    await cache_demo(cache, reachable)
    await info_demo(cache, conn.backend == "memory", reachable)
    schema_demo()
    await repository_demo()
    await cached_demo()
    await rate_limit_demo()
    await session_demo()
    await messaging_demo(reachable)
    await health_demo(conn.backend == "memory", reachable)
    metrics_demo()
    heading(f"Clean-up (through the library, so it degrades too; keys under {PREFIX!r})")
    left = await cache.get_keys("*")
    show("get_keys('*')", left, f"the {len(left)} keys the sections above left behind")
    removed = await cache.flush_pattern("*", allow_all=True)
    show("flush_pattern('*', allow_all=True)", removed, "the number of keys deleted")
    if not reachable:
        heading("Redis was unreachable throughout")
        note("Every result above is the library's degraded default; nothing was stored.")
    await close_redis()
    flush_logs()


def main() -> int:
    """Run the demo (``arketic-cache demo``)."""
    with narrating_logs():
        asyncio.run(_demo())
    return 0
