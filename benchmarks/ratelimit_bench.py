"""Rate limiting: one decision against a raw INCR, a trivial script, and ``limits``' strategies.

What is timed, sync and async alike: one decision at 100 requests per trailing minute. Every
contender cycles over a key set of its own (at least 512 keys, more when the run is long), and
key ``i`` starts with ``i % 64`` admitted requests in its window, so the timed decisions see
windows from empty to 63 of 100 full, and no key can reach the limit during the run: every
timed decision admits and records the request (what an API mostly does). For ours that is
the exact log (``mode="auto"`` keeps a sorted set up to 128 requests). Rows:

- floor: redis-py ``r.incr(k)``, the raw INCR a fixed-window counter costs;
- info: redis-py ``r.evalsha`` of ``return 1`` (one key): the cost of any script call; and
  redis-py ``r.evalsha`` of our ``rate_log.lua`` (the script of one exact log) with the
  arguments ours sends, which splits a gap to the floor into the script's work in Redis and
  our Python layer;
- ours: ``SyncRedisRateLimiter().is_allowed(key, 100)`` (the spec's tuple) and
  ``check(key, 100)`` (the full ``Decision``: count, remaining, retry-after, reset), each one
  EVALSHA; ``RedisRateLimiter`` for the async row;
- peers: ``limits`` (see ``ratelimit_peers``), ``hit()`` alone and ``hit()`` +
  ``get_window_stats()``, the second call being what it takes to get remaining and reset.

The bucket rows time one decision at 100,000 requests per minute in buckets,
``check(key, Limit(100_000, 60, "buckets"))``: 64 sub-window counters in a hash, beside their
running total, so the script reads four fields and drops only the sub-windows that left the
window since the key's last decision (each once: O(1) amortised). Their keys (as many, cycled
alike) are primed last of all, ours with one admitted request in each of the 64 sub-windows
of the minute ending at Redis' time, through a limiter of its own on the ``clock=`` seam (the
timed ones use Redis' clock): every sub-window live, the worst case of a whole-hash read.
From then on one leaves the window every 0.94 s, dropped by the key's next decision (the
note gives how long priming took, so how many the first decisions drop). Rows:

- floor: ``limits``' ``FixedWindowRateLimiter.hit()`` at the same limit, each key primed with
  64 admitted requests: one counter (an INCRBY script), the cheapest windowed limit, which
  ours must not be slower than;
- info: redis-py ``r.incr(k)``, the raw INCR (the floor, with no target, without ``limits``);
- ours: ``SyncRedisRateLimiter().check(key, Limit(100_000, 60, "buckets"))``;
  ``RedisRateLimiter`` for the async row.

Every contender is primed and probed before it is timed (the probe must admit with the
expected count: ours at buckets probed as soon as primed, every sub-window still live), and
our limiters must have answered every decision from Redis (none ``degraded``) when the run
ends. Memory is measured once, not timed, and reported in notes:
``MEMORY USAGE`` of a key after ``limit`` admitted requests, ours and ``limits``'.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack
from typing import Any

import redis
import redis.asyncio

from arketic_cache import Limit, RedisConnection, RedisRateLimiter, SyncRedisRateLimiter
from arketic_cache._lua import RATE_LOG
from arketic_cache.testing import RedisServer

from .cache_bench import Sizes
from .clients import open_clients
from .peers import skip_note
from .ratelimit_peers import (
    BUCKET_FLOORS,
    BUCKET_LIMIT,
    BUCKETS,
    FILL_LEVELS,
    LIMIT,
    ROW_KINDS,
    RowKind,
    cycling_over,
    fill,
    footprint,
    key_names,
    limits_memory,
    peer_rows,
)
from .timing import Benchmark, Contender, Role, Target, async_batch, sync_batch

__all__ = ["WINDOW_US", "keys_per_contender", "rate_limit_benchmarks"]

SYNC_TARGET = Target(1.25, "ratio", "rate-limit decision (sync) vs raw INCR")
ASYNC_TARGET = Target(1.4, "ratio", "rate-limit decision (async) vs raw INCR")
BUCKET_TARGET = Target(1.0, "ratio", "bucket decision vs limits' fixed window hit()")
#: Fewest keys per contender; more when the run could fill a key to its limit.
MIN_KEYS = 512
WINDOW_US = 60_000_000
TRIVIAL_SCRIPT = "return 1"
#: The limits of the memory notes: ``mode="auto"`` keeps a log at the first, buckets at the second.
MEMORY_LIMITS = (100, 1000)
#: The bucket rows' limit: 64 sub-window counters in a hash.
BUCKET = Limit(BUCKET_LIMIT, WINDOW_US / 1_000_000, "buckets")


def keys_per_contender(rounds: int, calls: int) -> int:
    """Keys per contender so that no key reaches ``LIMIT``: the warm-up, every round, a probe."""
    decisions = (rounds + 1) * calls + 1
    return max(MIN_KEYS, math.ceil(decisions / (LIMIT - FILL_LEVELS)))


def _expect_admitted(
    label: str, got: tuple[bool, int, int], count: int, limit: int = LIMIT
) -> None:
    if got != (True, count, limit - count):
        raise RuntimeError(f"{label}: got {got}, not an admission at count {count}")


async def _check_decided(limiters: Sequence[SyncRedisRateLimiter | RedisRateLimiter]) -> None:
    """Fail loudly if a decision fell back: then our rows timed answers given without Redis."""
    if any(limiter.degraded_decisions for limiter in limiters):
        raise RuntimeError("a rate-limit decision was degraded during the run; rerun the benchmark")


async def _floors(
    raw: redis.Redis, araw: redis.asyncio.Redis, key_count: int
) -> dict[RowKind, list[Contender]]:
    trivial, ours = raw.script_load(TRIVIAL_SCRIPT), raw.script_load(RATE_LOG.text)
    incr_keys, aincr_keys = key_names("incr", key_count), key_names("incr-aio", key_count)
    noop_keys, anoop_keys = key_names("noop", key_count), key_names("noop-aio", key_count)
    script_keys, ascript_keys = key_names("script", key_count), key_names("script-aio", key_count)
    for index, (key, akey) in enumerate(zip(script_keys, ascript_keys, strict=True)):
        if fill(index):
            for name in (key, akey):
                reply = raw.evalsha(ours, 1, name, fill(index), 1, "", 1, LIMIT, WINDOW_US)
                if reply.split()[0] != b"1":
                    raise RuntimeError(f"priming our script was refused: {reply}")

    def incr(key: str) -> Any:
        return raw.incr(key)

    async def aincr(key: str) -> Any:
        return await araw.incr(key)

    def noop(key: str) -> Any:
        return raw.evalsha(trivial, 1, key)

    async def anoop(key: str) -> Any:
        return await araw.evalsha(trivial, 1, key)

    # What ``check(key, 100)`` sends: cost, a fresh request id, Redis' clock, a log of 100/60 s.
    def ours_raw(key: str) -> Any:
        return raw.evalsha(ours, 1, key, 1, secrets.randbits(40), "", 1, LIMIT, WINDOW_US)

    async def aours_raw(key: str) -> Any:
        return await araw.evalsha(ours, 1, key, 1, secrets.randbits(40), "", 1, LIMIT, WINDOW_US)

    probes = [
        ("raw INCR", incr(incr_keys[0]), 1),
        ("async raw INCR", await aincr(aincr_keys[0]), 1),
        ("raw EVALSHA return 1", noop(noop_keys[0]), 1),
        ("async raw EVALSHA return 1", await anoop(anoop_keys[0]), 1),
        ("our script on redis-py", ours_raw(script_keys[0]).split()[0], b"1"),
        ("our script on redis.asyncio", (await aours_raw(ascript_keys[0])).split()[0], b"1"),
    ]
    for label, got, want in probes:
        if got != want:
            raise RuntimeError(f"{label} returned {got!r}, not {want!r}")
    return {
        "decision sync": [
            Contender(
                "redis-py `r.incr(k)` (raw INCR floor)",
                sync_batch(cycling_over(incr, incr_keys)),
                "floor",
            ),
            Contender(
                "redis-py `r.evalsha` of `return 1` (script floor)",
                sync_batch(cycling_over(noop, noop_keys)),
                "info",
            ),
            Contender(
                "redis-py `r.evalsha` of our rate_log.lua (same args)",
                sync_batch(cycling_over(ours_raw, script_keys)),
                "info",
            ),
        ],
        "decision async": [
            Contender(
                "redis.asyncio `await r.incr(k)` (raw INCR floor)",
                async_batch(cycling_over(aincr, aincr_keys)),
                "floor",
            ),
            Contender(
                "redis.asyncio `await r.evalsha` of `return 1` (script floor)",
                async_batch(cycling_over(anoop, anoop_keys)),
                "info",
            ),
            Contender(
                "redis.asyncio `await r.evalsha` of our rate_log.lua (same args)",
                async_batch(cycling_over(aours_raw, ascript_keys)),
                "info",
            ),
        ],
    }


async def _ours(
    conn: RedisConnection, key_count: int, stack: AsyncExitStack
) -> dict[RowKind, list[Contender]]:
    limiter, alimiter = SyncRedisRateLimiter(connection=conn), RedisRateLimiter(connection=conn)
    stack.push_async_callback(_check_decided, (limiter, alimiter))
    sets = {
        tag: key_names(tag, key_count)
        for tag in ("ours-is-allowed", "ours-check", "ours-is-allowed-aio", "ours-check-aio")
    }
    for index in range(key_count):
        if not fill(index):
            continue
        for tag, names in sets.items():
            primed = limiter.check(names[index], LIMIT, cost=fill(index))
            if primed.as_tuple() != (True, fill(index), LIMIT - fill(index)):
                raise RuntimeError(f"priming {tag} was refused: {primed}")

    def is_allowed(key: str) -> tuple[bool, int, int]:
        return limiter.is_allowed(key, LIMIT)

    def check(key: str) -> Any:
        return limiter.check(key, LIMIT)

    async def ais_allowed(key: str) -> tuple[bool, int, int]:
        return await alimiter.is_allowed(key, LIMIT)

    async def acheck(key: str) -> Any:
        return await alimiter.check(key, LIMIT)

    _expect_admitted("is_allowed", is_allowed(sets["ours-is-allowed"][0]), 1)
    _expect_admitted("check", check(sets["ours-check"][0]).as_tuple(), 1)
    _expect_admitted("async is_allowed", await ais_allowed(sets["ours-is-allowed-aio"][0]), 1)
    _expect_admitted("async check", (await acheck(sets["ours-check-aio"][0])).as_tuple(), 1)
    return {
        "decision sync": [
            Contender(
                "`SyncRedisRateLimiter.is_allowed(k, 100)`",
                sync_batch(cycling_over(is_allowed, sets["ours-is-allowed"])),
            ),
            Contender(
                "`SyncRedisRateLimiter.check(k, 100)` (full Decision)",
                sync_batch(cycling_over(check, sets["ours-check"])),
            ),
        ],
        "decision async": [
            Contender(
                "`await RedisRateLimiter.is_allowed(k, 100)`",
                async_batch(cycling_over(ais_allowed, sets["ours-is-allowed-aio"])),
            ),
            Contender(
                "`await RedisRateLimiter.check(k, 100)` (full Decision)",
                async_batch(cycling_over(acheck, sets["ours-check-aio"])),
            ),
        ],
    }


# -- buckets ---------------------------------------------------------------------------------------
def _bucket_primer(conn: RedisConnection, raw: redis.Redis) -> Callable[[str], None]:
    """Prime a key with one admitted request in each of the ``BUCKETS`` sub-windows of the
    minute that ends now (Redis' time, read per key), through a limiter of its own whose
    ``clock=`` steps over that minute."""
    ticks = _spread_clock(raw, BUCKETS)
    primer = SyncRedisRateLimiter(connection=conn, clock=lambda: ticks())

    def prime(name: str) -> None:
        nonlocal ticks
        ticks = _spread_clock(raw, BUCKETS)
        for count in range(1, BUCKETS + 1):
            got = primer.check(name, BUCKET).as_tuple()
            if got != (True, count, BUCKET_LIMIT - count):
                raise RuntimeError(f"priming {name} got {got}, not an admission at count {count}")

    return prime


async def _buckets(
    conn: RedisConnection,
    raw: redis.Redis,
    araw: redis.asyncio.Redis,
    key_count: int,
    floored: Collection[RowKind],
    stack: AsyncExitStack,
) -> tuple[dict[RowKind, list[Contender]], float]:
    """The raw INCR and our rows of the bucket benchmarks, and the seconds ours took to prime.

    The raw INCR is an info row of the kinds in ``floored`` (those have limits' fixed window),
    else the floor.
    """
    limiter, alimiter = SyncRedisRateLimiter(connection=conn), RedisRateLimiter(connection=conn)
    stack.push_async_callback(_check_decided, (limiter, alimiter))
    incr_keys = key_names("incr-buckets", key_count)
    aincr_keys = key_names("incr-buckets-aio", key_count)
    names, anames = key_names("ours-buckets", key_count), key_names("ours-buckets-aio", key_count)

    def incr(key: str) -> Any:
        return raw.incr(key)

    async def aincr(key: str) -> Any:
        return await araw.incr(key)

    def check(key: str) -> Any:
        return limiter.check(key, BUCKET)

    async def acheck(key: str) -> Any:
        return await alimiter.check(key, BUCKET)

    prime = _bucket_primer(conn, raw)
    started = time.perf_counter()
    prime(names[0])
    prime(anames[0])
    # Probed at once, before a sub-window can leave the window: the count is exact.
    admitted = BUCKETS + 1
    _expect_admitted("buckets check", check(names[0]).as_tuple(), admitted, BUCKET_LIMIT)
    got = (await acheck(anames[0])).as_tuple()
    _expect_admitted("async buckets check", got, admitted, BUCKET_LIMIT)
    for name, aname in zip(names[1:], anames[1:], strict=True):
        prime(name)
        prime(aname)
    primed_s = time.perf_counter() - started
    for label, reply in (
        ("raw INCR", incr(incr_keys[0])),
        ("async raw INCR", await aincr(aincr_keys[0])),
    ):
        if reply != 1:
            raise RuntimeError(f"{label} returned {reply!r}, not 1")

    def incr_role(kind: RowKind) -> Role:
        return "info" if kind in floored else "floor"

    return {
        "buckets sync": [
            Contender(
                "redis-py `r.incr(k)` (raw INCR)",
                sync_batch(cycling_over(incr, incr_keys)),
                incr_role("buckets sync"),
            ),
            Contender(
                '`SyncRedisRateLimiter.check(k, Limit(100_000, 60, "buckets"))`',
                sync_batch(cycling_over(check, names)),
            ),
        ],
        "buckets async": [
            Contender(
                "redis.asyncio `await r.incr(k)` (raw INCR)",
                async_batch(cycling_over(aincr, aincr_keys)),
                incr_role("buckets async"),
            ),
            Contender(
                '`await RedisRateLimiter.check(k, Limit(100_000, 60, "buckets"))`',
                async_batch(cycling_over(acheck, anames)),
            ),
        ],
    }, primed_s


# -- memory ----------------------------------------------------------------------------------------
def _spread_clock(raw: redis.Redis, size: int) -> Callable[[], int]:
    """A clock for ``size`` requests at even steps over the window that ends now (Redis time)."""
    seconds, micros = raw.time()
    now = seconds * 1_000_000 + micros
    ticks = iter(range(now - WINDOW_US + WINDOW_US // size, now + 1, WINDOW_US // size))
    return lambda: next(ticks)


def _our_memory(
    conn: RedisConnection, raw: redis.Redis, variant: str, mode: Any, spread: bool
) -> list[tuple[str, int, int, str]]:
    """(variant, limit, bytes, encoding) after ``limit`` admitted requests on one fresh key.

    ``spread`` times the requests evenly over the window through the limiter's clock seam
    (the buckets' worst case: every sub-window holds some); otherwise they arrive back to back.
    """
    found: list[tuple[str, int, int, str]] = []
    for size in MEMORY_LIMITS:
        limiter = SyncRedisRateLimiter(
            connection=conn, clock=_spread_clock(raw, size) if spread else None
        )
        key = f"bench:rl:mem:{variant}:{size}"
        limit = Limit(size, WINDOW_US / 1_000_000, mode)
        for _ in range(size):
            if not limiter.check(key, limit).allowed or limiter.degraded_decisions:
                raise RuntimeError(f"memory of ours ({variant}): a request was not admitted")
        found.append((variant, size, *footprint(raw, [key])))
    return found


def _memory_notes(rows: Sequence[tuple[str, int, int, str]]) -> list[str]:
    by_variant: dict[str, list[str]] = {}
    for variant, size, used, encoding in rows:
        by_variant.setdefault(variant, []).append(
            f"limit {size} → {used:,} B ({used / size:.1f} B/request, {encoding})"
        )
    notes = [
        "rate-limit memory (not timed): `MEMORY USAGE key SAMPLES 0` (key name and Redis' "
        "per-key overhead included) after `limit` admitted requests of cost 1 on a fresh key, "
        "60 s window; sent back to back unless spread"
    ]
    notes += [f"memory, {variant}: {'; '.join(cells)}" for variant, cells in by_variant.items()]
    return notes


async def _memory(
    server: RedisServer, conn: RedisConnection, raw: redis.Redis, stack: AsyncExitStack
) -> list[str]:
    rows = _our_memory(conn, raw, 'ours `mode="auto"`', "auto", spread=False)
    rows += _our_memory(
        conn, raw, 'ours `mode="auto"`, spread evenly over the window', "auto", spread=True
    )
    rows += _our_memory(conn, raw, 'ours `mode="log"`', "log", spread=False)
    try:
        rows += limits_memory(server, raw, MEMORY_LIMITS, stack)
    except ImportError:
        pass  # peer_rows notes that limits is missing
    except Exception as exc:  # a peer's incompatibility must not stop our own benchmarks
        return [*_memory_notes(rows), skip_note(exc, "limits", "limits memory", server)]
    return _memory_notes(rows)


async def rate_limit_benchmarks(
    server: RedisServer, sizes: Sizes, rounds: int, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """Prime and probe every rate-limit contender and peer; return the benchmarks and notes.

    ``rounds`` sizes the key sets, so that no key fills up during the run.
    """
    url = server.url
    conn, raw, araw = open_clients(url, stack)

    calls = sizes.get_calls
    key_count = keys_per_contender(rounds, calls)
    rows: dict[RowKind, list[Contender]] = {kind: [] for kind in ROW_KINDS}
    for part in (await _floors(raw, araw, key_count), await _ours(conn, key_count, stack)):
        for kind, contenders in part.items():
            rows[kind] += contenders
    peers, notes = await peer_rows(server, key_count, stack)
    for kind, contenders in peers.items():
        rows[kind] += contenders
    notes += await _memory(server, conn, raw, stack)
    # Last, so that as few of our keys' sub-windows as can be leave the window before timing.
    floors, floor_notes = await peer_rows(server, key_count, stack, BUCKET_FLOORS)
    notes += [note for note in floor_notes if note not in notes]  # limits missing: noted once
    for kind, contenders in floors.items():
        rows[kind] += contenders
    ours, primed_s = await _buckets(conn, raw, araw, key_count, floors, stack)
    for kind, contenders in ours.items():
        rows[kind] += contenders
    notes.insert(
        0,
        f"rate limit: {LIMIT}/min per key; each contender cycles over {key_count} keys of its "
        f"own, key i starting with i % {FILL_LEVELS} admitted requests; every timed "
        "decision admits",
    )
    notes.insert(
        1,
        f"rate limit, buckets: {BUCKET_LIMIT:,}/min per key, {key_count} keys per contender, "
        f"each starting with {BUCKETS} admitted requests (limits' fixed window: one counter; "
        f"ours: one in each of the {BUCKETS} sub-windows of the minute before, primed in "
        f"{primed_s:.1f} s, key 0 first); a sub-window leaves the window every "
        f"{WINDOW_US / BUCKETS / 1e6:.2f} s, which a key's next decision drops; every timed "
        "decision admits",
    )

    specs: Sequence[tuple[RowKind, str, Target | None]] = (
        ("decision sync", "rate limit decision (sync)", SYNC_TARGET),
        ("decision async", "rate limit decision (async)", ASYNC_TARGET),
        (
            "buckets sync",
            "rate limit buckets (sync)",
            BUCKET_TARGET if "buckets sync" in floors else None,
        ),
        (
            "buckets async",
            "rate limit buckets (async)",
            BUCKET_TARGET if "buckets async" in floors else None,
        ),
    )
    benchmarks = [Benchmark(name, calls, rows[kind], target) for kind, name, target in specs]
    return benchmarks, notes
