"""The peer on the rate-limit rows: ``limits`` (5.x), three of its Redis strategies.

- ``MovingWindowRateLimiter``: exact, a Redis list of admission times per key (the client's
  clock), one script call per ``hit()``;
- ``SlidingWindowCounterRateLimiter``: approximate, two counters per key (this window and the
  previous one, weighted by how much of it still overlaps), one script call per ``hit()``;
- ``FixedWindowRateLimiter``: one counter per key and window (INCRBY, and EXPIRE when it
  starts a window), one script call per ``hit()``: the cheapest windowed limit there is, so
  the floor of the bucket rows (``BUCKET_LIMIT``), not a peer of the exact-log rows.

``hit()`` answers only admitted or not; the remaining count and reset time, which our single
call returns, take ``get_window_stats()``: a second script call. Each sliding strategy is timed
with ``hit()`` alone and with ``hit()`` + ``get_window_stats()``, on the exact-log rows at
``LIMIT`` (peers); the fixed window with ``hit()`` alone, on the bucket rows (their floor),
each key primed with ``BUCKETS`` admitted requests like ours there. Sync rows use
``limits.storage.RedisStorage`` (redis-py), async rows ``limits.aio.storage.RedisStorage``
with ``implementation="redispy"`` (``redis.asyncio``, the client ours and the floors use;
limits' default there is coredis). Both connect with the server's own URL (port, password).

``limits`` is optional (``pip install -e '.[bench]'``) and imported dynamically; a missing or
failing peer row becomes a note, not a failure. This module also holds what every rate-limit
contender shares: the limits, the key sets and their fill levels.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import redis

from arketic_cache.testing import RedisServer

from .peers import skip_note
from .timing import Contender, Role, async_batch, sync_batch

__all__ = [
    "BUCKETS",
    "BUCKET_FLOORS",
    "BUCKET_LIMIT",
    "FILL_LEVELS",
    "LIMIT",
    "ROW_KINDS",
    "RowKind",
    "cycling_over",
    "fill",
    "footprint",
    "key_names",
    "limits_memory",
    "peer_rows",
]

RowKind = Literal["decision sync", "decision async", "buckets sync", "buckets async"]
ROW_KINDS: tuple[RowKind, ...] = (
    "decision sync",
    "decision async",
    "buckets sync",
    "buckets async",
)
#: The decision rows' limit: requests per trailing minute.
LIMIT = 100
#: Key ``i`` of a set starts with ``i % FILL_LEVELS`` admitted requests in its window.
FILL_LEVELS = 64
#: The bucket rows' limit per minute: far above what a run sends to a key, so all admit.
BUCKET_LIMIT = 100_000
#: Sub-window counters of a bucket limit (the library's); every bucket-row key starts with
#: this many admitted requests.
BUCKETS = 64
Rows = dict[RowKind, list[Contender]]
Builder = Callable[
    [RedisServer, Sequence[str], AsyncExitStack], Coroutine[Any, Any, tuple[RowKind, Contender]]
]


def key_names(tag: str, count: int) -> tuple[str, ...]:
    """The keys one contender cycles over: its own, so no two contenders share windows."""
    return tuple(f"bench:rl:{tag}:{i}" for i in range(count))


def fill(index: int) -> int:
    """How many admitted requests key ``index`` of a set holds before timing starts."""
    return index % FILL_LEVELS


def cycling_over(fn: Callable[[str], Any], names: Sequence[str]) -> Callable[[], Any]:
    """A zero-argument call of ``fn`` on the next key of ``names``, round and round."""
    keys = itertools.cycle(names)
    return lambda: fn(next(keys))


def _refuse(label: str, what: str) -> None:
    raise RuntimeError(f"{label}: {what}; the benchmark would be meaningless")


@dataclass(frozen=True, slots=True)
class _Row:
    """Where a strategy's contender goes (sync and async kinds, role), its limit and priming."""

    sync: RowKind
    aio: RowKind
    role: Role
    limit: int
    primed: Callable[[int], int]  # admitted requests key ``index`` holds before timing


def _buckets_primed(index: int) -> int:
    return BUCKETS


DECISION = _Row("decision sync", "decision async", "peer", LIMIT, fill)
BUCKET = _Row("buckets sync", "buckets async", "floor", BUCKET_LIMIT, _buckets_primed)


# -- sync ------------------------------------------------------------------------------------------
def _sync_storage(server: RedisServer, stack: AsyncExitStack) -> Any:
    storage = importlib.import_module("limits.storage").RedisStorage(server.url)
    stack.callback(storage.storage.close)
    return storage


def _limits_sync(strategy: str, with_stats: bool, row: _Row = DECISION) -> Builder:
    async def build(
        server: RedisServer, names: Sequence[str], stack: AsyncExitStack
    ) -> tuple[RowKind, Contender]:
        limits = importlib.import_module("limits")
        limiter = getattr(limits.strategies, strategy)(_sync_storage(server, stack))
        item = limits.RateLimitItemPerMinute(row.limit)
        label = f"limits `{strategy}.hit()`" + (" + `get_window_stats()`" if with_stats else "")
        for index, name in enumerate(names):
            cost = row.primed(index)
            if cost and not limiter.hit(item, name, cost=cost):
                _refuse(label, "priming was refused")

        def hit(name: str) -> bool:
            return limiter.hit(item, name)  # type: ignore[no-any-return]

        def hit_and_stats(name: str) -> tuple[bool, Any]:
            return limiter.hit(item, name), limiter.get_window_stats(item, name)

        if with_stats:
            admitted, stats = hit_and_stats(names[0])
            if not admitted or stats.remaining != row.limit - row.primed(0) - 1:
                _refuse(label, f"the probe got {admitted}, {stats}")
            run = sync_batch(cycling_over(hit_and_stats, names))
        else:
            if not hit(names[0]):
                _refuse(label, "the probe was refused")
            run = sync_batch(cycling_over(hit, names))
        return row.sync, Contender(label, run, row.role)

    return build


# -- async -----------------------------------------------------------------------------------------
def _async_storage(server: RedisServer, stack: AsyncExitStack) -> Any:
    storage = importlib.import_module("limits.aio.storage").RedisStorage(
        f"async+{server.url}", implementation="redispy"
    )
    stack.push_async_callback(storage.bridge.storage.aclose)
    return storage


def _async_cycling(
    fn: Callable[[str], Awaitable[Any]], names: Sequence[str]
) -> Callable[[], Awaitable[Any]]:
    return cycling_over(fn, names)


def _limits_async(strategy: str, with_stats: bool, row: _Row = DECISION) -> Builder:
    async def build(
        server: RedisServer, names: Sequence[str], stack: AsyncExitStack
    ) -> tuple[RowKind, Contender]:
        limits = importlib.import_module("limits")
        strategies = importlib.import_module("limits.aio.strategies")
        limiter = getattr(strategies, strategy)(_async_storage(server, stack))
        item = limits.RateLimitItemPerMinute(row.limit)
        label = f"limits.aio `await {strategy}.hit()`" + (
            " + `get_window_stats()`" if with_stats else ""
        )
        for index, name in enumerate(names):
            cost = row.primed(index)
            if cost and not await limiter.hit(item, name, cost=cost):
                _refuse(label, "priming was refused")

        async def hit(name: str) -> bool:
            return await limiter.hit(item, name)  # type: ignore[no-any-return]

        async def hit_and_stats(name: str) -> tuple[bool, Any]:
            return await limiter.hit(item, name), await limiter.get_window_stats(item, name)

        if with_stats:
            admitted, stats = await hit_and_stats(names[0])
            if not admitted or stats.remaining != row.limit - row.primed(0) - 1:
                _refuse(label, f"the probe got {admitted}, {stats}")
            run = async_batch(_async_cycling(hit_and_stats, names))
        else:
            if not await hit(names[0]):
                _refuse(label, "the probe was refused")
            run = async_batch(_async_cycling(hit, names))
        return row.aio, Contender(label, run, row.role)

    return build


MOVING, COUNTER = "MovingWindowRateLimiter", "SlidingWindowCounterRateLimiter"
FIXED = "FixedWindowRateLimiter"
#: (tag of the contender's keys, builder), in the order the rows are shown: the decision rows'.
PEERS: tuple[tuple[str, Builder], ...] = (
    ("limits-mw", _limits_sync(MOVING, with_stats=False)),
    ("limits-mw-stats", _limits_sync(MOVING, with_stats=True)),
    ("limits-swc", _limits_sync(COUNTER, with_stats=False)),
    ("limits-swc-stats", _limits_sync(COUNTER, with_stats=True)),
    ("limits-mw-aio", _limits_async(MOVING, with_stats=False)),
    ("limits-mw-stats-aio", _limits_async(MOVING, with_stats=True)),
    ("limits-swc-aio", _limits_async(COUNTER, with_stats=False)),
    ("limits-swc-stats-aio", _limits_async(COUNTER, with_stats=True)),
)
#: The bucket rows' floors, sync and async: the fixed window at ``BUCKET_LIMIT``.
BUCKET_FLOORS: tuple[tuple[str, Builder], ...] = (
    ("limits-fw", _limits_sync(FIXED, with_stats=False, row=BUCKET)),
    ("limits-fw-aio", _limits_async(FIXED, with_stats=False, row=BUCKET)),
)


async def peer_rows(
    server: RedisServer,
    key_count: int,
    stack: AsyncExitStack,
    builders: Sequence[tuple[str, Builder]] = PEERS,
) -> tuple[Rows, list[str]]:
    """The contenders of ``builders`` by row (each primed on ``key_count`` keys), and skip notes.

    ``builders`` are the decision rows' peers unless given (``BUCKET_FLOORS``).
    """
    rows: Rows = {}
    notes: list[str] = []
    for tag, build in builders:
        try:
            kind, contender = await build(server, key_names(tag, key_count), stack)
        except Exception as exc:  # a missing or broken peer must not stop our own benchmarks
            notes.append(skip_note(exc, "limits", f"limits ({tag})", server))
            if isinstance(exc, ImportError):
                break
            continue
        rows.setdefault(kind, []).append(contender)
    return rows, notes


# -- memory ----------------------------------------------------------------------------------------
def _text(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


def footprint(raw: redis.Redis, keys: Sequence[str]) -> tuple[int, str]:
    """``MEMORY USAGE ... SAMPLES 0`` (every element counted) summed over the keys that exist."""
    total, encodings = 0, []
    for key in keys:
        used = raw.memory_usage(key, samples=0)
        if used is not None:
            total += int(used)
            kind, encoding = raw.type(key), raw.object("encoding", key)
            encodings.append(f"{_text(kind)}/{_text(encoding)}")
    return total, " + ".join(encodings) or "no key"


def limits_memory(
    server: RedisServer, raw: redis.Redis, sizes: Sequence[int], stack: AsyncExitStack
) -> list[tuple[str, int, int, str]]:
    """(strategy, limit, bytes, encoding) after ``limit`` admitted ``hit()`` calls, one key each.

    Raises ImportError without ``limits``.
    """
    limits = importlib.import_module("limits")
    storage = _sync_storage(server, stack)
    found: list[tuple[str, int, int, str]] = []
    for strategy in (MOVING, COUNTER):
        limiter = getattr(limits.strategies, strategy)(storage)
        for size in sizes:
            item = limits.RateLimitItemPerMinute(size)
            name = f"bench:rl:mem:{strategy}:{size}"
            for _ in range(size):
                if not limiter.hit(item, name):
                    _refuse(f"limits {strategy} memory", "a request was refused")
            key = item.key_for(name)
            if strategy == MOVING:
                keys = [storage.prefixed_key(key)]
            else:  # this window's counter and, once the window has moved on, the previous one
                keys = [storage.prefixed_key(f"{{{key}}}"), storage.prefixed_key(f"{{{key}}}/-1")]
            found.append((f"limits `{strategy}`", size, *footprint(raw, keys)))
    return found
