"""``@cached``: L1 hits, L2 hits and invalidations against their floors and the peers' decorators.

Every contender decorates the same kind of function (``user_id -> 1 KB dict``) and is called
on the same key set (``IDS``, cycled), so key building is part of what is timed. Rows:

- L1 hit, sync: ``@cached`` (L1 over L2) against an unlocked ``cachetools.cached(TTLCache)``;
  the same with ``lock=Lock()`` is an info row;
- L1 hit, async: ``await`` of the async ``@cached`` against ``await`` of an ``async def``
  returning the same unlocked cachetools function's hit (the sync hit is an info row);
- L2 hit, 1 KB: ``@cached(l1=False)`` against redis-py ``json.loads(r.get(k))``;
- invalidate: ``fn.invalidate(user_id)`` (UNLINK + PUBLISH in one MULTI/EXEC) against a plain
  ``r.delete(k)``; info rows send a plain ``r.unlink(k)``, and our commands on raw redis-py,
  so a gap splits into the announcement (which this process's own invalidation listener
  receives too) and our layer.
  The keys are gone after the first pass: every contender then drops a missing key, one
  round trip each;
- coherence (``coherence_bench``): another client's raw DEL until this process's L1 copy is
  gone, against a PING round trip.

Peers (cashews, aiocache, dogpile.cache; see ``cached_peers``) join each row that they can
serve on the same server in the same run. Each contender is primed (every key computed and
stored), then checked: a second pass must return the value without running the function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import cachetools

from arketic_cache import cached
from arketic_cache._invalidation import coherence
from arketic_cache.testing import RedisServer

from .cache_bench import Sizes, one_kb_value
from .cached_peers import ROW_KINDS, RowKind, peer_rows
from .calls import IDS, Source, cycling, expect, primed_async, primed_sync
from .clients import open_clients
from .coherence_bench import coherence_benchmark
from .timing import Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["cached_benchmarks"]

TTL_SECONDS = 3600
L1_SYNC_TARGET = Target(1.5, "ratio", "@cached sync L1 hit vs cachetools.cached hit")
L1_ASYNC_TARGET = Target(2.0, "ratio", "@cached async L1 hit vs async def of a cachetools hit")
L2_TARGET = Target(1.10, "ratio", "@cached L2 hit vs raw GET + json.loads")
RAW_PREFIX = "bench:cached:raw:"
GONE_PREFIX = "bench:cached:gone:"


def _hits(label: str, fn: Any, field: str, before: int) -> None:
    """Our own rows must be served from the level they claim to time."""
    if getattr(fn.cache_info(), field) - before != len(IDS):
        raise RuntimeError(f"{label} was not served from {field}: {fn.cache_info()}")


async def cached_benchmarks(
    server: RedisServer, sizes: Sizes, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Prime and check every ``@cached`` contender and peer; return the benchmarks and notes."""
    value = one_kb_value()
    url = server.url
    conn, raw, araw = open_clients(url, stack)
    encoded = json.dumps(value, separators=(",", ":"))
    raw_keys = [f"{RAW_PREFIX}{user_id}" for user_id in IDS]
    raw.mset(dict.fromkeys(raw_keys, encoded))
    raw.unlink(*(f"{GONE_PREFIX}{user_id}" for user_id in IDS))

    rows: dict[RowKind, list[Contender]] = {kind: [] for kind in ROW_KINDS}

    # -- floors ---------------------------------------------------------------------------------
    floor_source = Source(value)

    @cachetools.cached(cachetools.TTLCache(1024, TTL_SECONDS))
    def tools(user_id: int) -> dict[str, Any]:
        return floor_source(user_id)

    @cachetools.cached(cachetools.TTLCache(1024, TTL_SECONDS), lock=threading.Lock())
    def locked_tools(user_id: int) -> dict[str, Any]:
        return floor_source(user_id)

    async def atools(user_id: int) -> dict[str, Any]:
        return tools(user_id)

    tools_hit = primed_sync("cachetools.cached", tools, floor_source)
    locked_hit = primed_sync("cachetools.cached(lock=Lock())", locked_tools, floor_source)
    atools_hit = await primed_async("async def of cachetools.cached", atools, floor_source)
    tools_name = "`cachetools.cached(TTLCache(...))` hit"
    rows["l1 sync"] += [
        Contender(tools_name, sync_batch(tools_hit), "floor"),
        Contender(
            "`cachetools.cached(TTLCache(...), lock=Lock())` hit", sync_batch(locked_hit), "info"
        ),
    ]
    rows["l1 async"] += [
        Contender(
            f"`await` of an `async def` returning a {tools_name}", async_batch(atools_hit), "floor"
        ),
        Contender(f"{tools_name} (sync, no `await`)", sync_batch(tools_hit), "info"),
    ]

    def raw_get(user_id: int) -> Any:
        return json.loads(raw.get(raw_keys[user_id]))  # type: ignore[arg-type]

    async def araw_get(user_id: int) -> Any:
        return json.loads(await araw.get(raw_keys[user_id]))  # type: ignore[arg-type]

    for user_id in IDS:
        expect("raw get", raw_get(user_id), value)
        expect("async raw get", await araw_get(user_id), value)
    rows["l2 sync"].append(
        Contender("redis-py `json.loads(r.get(k))`", sync_batch(cycling(raw_get)), "floor")
    )
    rows["l2 async"].append(
        Contender(
            "redis.asyncio `json.loads(await r.get(k))`", async_batch(cycling(araw_get)), "floor"
        )
    )

    gone = [f"{GONE_PREFIX}{user_id}" for user_id in IDS]
    listener = coherence(conn)
    channel = listener.channel
    # What fn.invalidate publishes: [origin, key]; our own listener receives and skips it.
    notices = [json.dumps([listener.origin, key], separators=(",", ":")) for key in gone]

    def raw_delete(user_id: int) -> Any:
        return raw.delete(gone[user_id])

    async def araw_delete(user_id: int) -> Any:
        return await araw.delete(gone[user_id])

    def raw_unlink(user_id: int) -> Any:
        return raw.unlink(gone[user_id])

    async def araw_unlink(user_id: int) -> Any:
        return await araw.unlink(gone[user_id])

    def raw_announced(user_id: int) -> Any:
        pipe = raw.pipeline(transaction=True)
        pipe.unlink(gone[user_id])
        pipe.publish(channel, notices[user_id])
        return pipe.execute()

    async def araw_announced(user_id: int) -> Any:
        pipe = araw.pipeline(transaction=True)
        pipe.unlink(gone[user_id])
        pipe.publish(channel, notices[user_id])
        return await pipe.execute()

    rows["invalidate sync"] += [
        Contender("redis-py `r.delete(k)`", sync_batch(cycling(raw_delete)), "floor"),
        Contender("redis-py `r.unlink(k)`", sync_batch(cycling(raw_unlink)), "info"),
        Contender(
            "redis-py MULTI UNLINK + PUBLISH (our commands)",
            sync_batch(cycling(raw_announced)),
            "info",
        ),
    ]
    rows["invalidate async"] += [
        Contender("redis.asyncio `await r.delete(k)`", async_batch(cycling(araw_delete)), "floor"),
        Contender("redis.asyncio `await r.unlink(k)`", async_batch(cycling(araw_unlink)), "info"),
        Contender(
            "redis.asyncio MULTI UNLINK + PUBLISH (our commands)",
            async_batch(cycling(araw_announced)),
            "info",
        ),
    ]

    # -- ours -----------------------------------------------------------------------------------
    ours = Source(value)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-l1")
    def profile(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-l1-async")
    async def aprofile(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-l2", l1=False)
    def profile_l2(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-l2-async", l1=False)
    async def aprofile_l2(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-invalidate")
    def dropped(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace="bench-invalidate-async")
    async def adropped(user_id: int) -> dict[str, Any]:
        return ours(user_id)

    # The invalidation listener flushes an L1 once it covers it (anything written before may
    # have been missed): let it cover each one first, or it may flush the primed entries.
    for fn in (profile, aprofile, profile_l2, aprofile_l2, dropped, adropped):
        state = fn._state
        state.bind()
        if not listener.settle(state.l1, 10):
            raise RuntimeError("the invalidation listener did not subscribe")
    before = [profile.cache_info().l1_hits, aprofile.cache_info().l1_hits]
    l1_hit = primed_sync("@cached sync", profile, ours)
    al1_hit = await primed_async("@cached async", aprofile, ours)
    _hits("@cached sync", profile, "l1_hits", before[0])
    _hits("@cached async", aprofile, "l1_hits", before[1])
    before = [profile_l2.cache_info().l2_hits, aprofile_l2.cache_info().l2_hits]
    l2_hit = primed_sync("@cached(l1=False) sync", profile_l2, ours)
    al2_hit = await primed_async("@cached(l1=False) async", aprofile_l2, ours)
    _hits("@cached(l1=False) sync", profile_l2, "l2_hits", before[0])
    _hits("@cached(l1=False) async", aprofile_l2, "l2_hits", before[1])
    for user_id in IDS:
        dropped(user_id)
        await adropped(user_id)
        if not (dropped.invalidate(user_id) and await adropped.invalidate(user_id)):
            raise RuntimeError("invalidate found no entry to drop")

    rows["l1 sync"].append(Contender("`@cached` sync, L1 hit", sync_batch(l1_hit)))
    rows["l1 async"].append(Contender("`@cached` async, L1 hit", async_batch(al1_hit)))
    rows["l2 sync"].append(Contender("`@cached(l1=False)` sync, L2 hit", sync_batch(l2_hit)))
    rows["l2 async"].append(Contender("`@cached(l1=False)` async, L2 hit", async_batch(al2_hit)))
    rows["invalidate sync"].append(
        Contender("`fn.invalidate(user_id)`", sync_batch(cycling(dropped.invalidate)))
    )
    rows["invalidate async"].append(
        Contender("`await fn.invalidate(user_id)`", async_batch(cycling(adropped.invalidate)))
    )

    # -- peers ----------------------------------------------------------------------------------
    peers, notes = await peer_rows(server, value, stack)
    for kind, contenders in peers.items():
        rows[kind] += contenders

    l1_calls, l2_calls = sizes.l1_calls, sizes.get_calls
    specs: Sequence[tuple[RowKind, str, int, Target | None]] = (
        ("l1 sync", "@cached L1 hit (sync)", l1_calls, L1_SYNC_TARGET),
        ("l1 async", "@cached L1 hit (async)", l1_calls, L1_ASYNC_TARGET),
        ("l2 sync", "@cached L2 hit 1 KB (sync)", l2_calls, L2_TARGET),
        ("l2 async", "@cached L2 hit 1 KB (async)", l2_calls, L2_TARGET),
        ("invalidate sync", "@cached invalidate (sync)", l2_calls, None),
        ("invalidate async", "@cached invalidate (async)", l2_calls, None),
    )
    benchmarks = [Benchmark(name, calls, rows[kind], target) for kind, name, calls, target in specs]
    benchmarks.append(await coherence_benchmark(conn, raw, url, value, stack))
    return benchmarks, notes
