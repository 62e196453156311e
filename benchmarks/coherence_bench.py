"""``@cached`` coherence: how soon another client's raw ``DEL`` evicts this process's L1 copy.

One cycle: a call of a sync ``@cached`` function fills its L1 (and L2) copy; another redis-py
client sends ``DEL`` of the cached key; the time from sending the ``DEL`` until this process's
L1 no longer holds the entry is the cycle's delay. The eviction comes from the listener
connection's ``CLIENT TRACKING ... BCAST`` report, handled on the listener's thread. It is
observed two ways:

- spinning on the store's ``get`` (a tight loop, bounded on the monotonic clock): what a busy
  caller on the main thread sees. The listener thread then waits for the GIL, which a spinning
  thread gives up only every ``sys.getswitchinterval()`` (5 ms by default);
- waiting on a coherence observer (called right after the store dropped the key): the
  delivery itself, with the main thread blocked and the GIL free.

The floor is a redis-py ``PING`` round trip on the same server. Every single delay is kept,
for the median, p90 and worst over all rounds.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import AsyncExitStack
from typing import Any, Protocol

import redis

from arketic_cache import RedisConnection, cached
from arketic_cache._invalidation import Coherence
from arketic_cache._l1 import L1Store

from .calls import IDS, Source
from .timing import BatchRunner, Benchmark, Contender

__all__ = ["COHERENCE_CALLS", "coherence_benchmark"]

COHERENCE_CALLS = 50
TTL_SECONDS = 3600
#: A cycle not evicted within this is a failure, not a slow sample.
DEADLINE_SECONDS = 2.0


def _pinged(raw: redis.Redis, samples: list[float]) -> BatchRunner:
    async def run(n: int) -> int:
        total = 0
        for _ in range(n):
            start = time.perf_counter_ns()
            raw.ping()
            elapsed = time.perf_counter_ns() - start
            samples.append(elapsed)
            total += elapsed
        return total

    return run


class _Watch(Protocol):
    """How a cycle sees the eviction: armed before the ``DEL`` is sent, then waited on."""

    def arm(self, l2_key: str) -> None: ...
    def evicted(self, call_key: Any) -> int:
        """``perf_counter_ns`` when the copy was seen gone."""
        ...


class _Spin:
    """A tight loop on the store's ``get``, bounded on the monotonic clock."""

    def __init__(self, store: L1Store) -> None:
        self.get = store.get

    def arm(self, l2_key: str) -> None:
        pass

    def evicted(self, call_key: Any) -> int:
        get = self.get
        deadline = time.monotonic() + DEADLINE_SECONDS
        while get(call_key) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError("coherence: the L1 copy outlived a raw DEL")
        return time.perf_counter_ns()


class _Observe:
    """A coherence observer, called on the listener's thread right after the store's drop."""

    def __init__(self, store: L1Store, listener: Coherence, stack: AsyncExitStack) -> None:
        self.store = store
        self.done = threading.Event()
        self.awaited = ""
        self.at = 0
        stack.callback(listener.observe(self._seen))

    def _seen(self, key: str | None) -> None:
        if key == self.awaited:
            self.at = time.perf_counter_ns()
            self.done.set()

    def arm(self, l2_key: str) -> None:
        self.done.clear()
        self.awaited = l2_key

    def evicted(self, call_key: Any) -> int:
        if not self.done.wait(DEADLINE_SECONDS):
            raise RuntimeError("coherence: no eviction reported after a raw DEL")
        if self.store.get(call_key) is not None:
            raise RuntimeError("coherence: reported before the store dropped the copy")
        return self.at


def _cycles(fn: Any, writer: redis.Redis, watch: _Watch, samples: list[float]) -> BatchRunner:
    """``n`` cycles: fill the L1 copy, ``DEL`` its key from ``writer``, time the eviction."""
    state = fn._state
    store, listener = state.l1, state.coherence
    keys = []
    for user_id in IDS:
        call_key = state.call_key((user_id,), {})
        keys.append((user_id, call_key, state.l2_key((user_id,), {}, call_key)))
    cycle = itertools.cycle(keys)

    async def run(n: int) -> int:
        total = 0
        for _ in range(n):
            user_id, call_key, l2_key = next(cycle)
            fn(user_id)
            if store.get(call_key) is None or listener.mode != "tracking":
                raise RuntimeError(f"coherence: no tracked L1 copy to evict ({listener.mode})")
            watch.arm(l2_key)
            sent = time.perf_counter_ns()
            writer.delete(l2_key)
            elapsed = watch.evicted(call_key) - sent
            samples.append(elapsed)
            total += elapsed
        return total

    return run


def _watched(conn: RedisConnection, tag: str, value: dict[str, Any]) -> Any:
    """A sync ``@cached`` function of its own, bound and covered by the listener."""
    source = Source(value)

    @cached(ttl=TTL_SECONDS, connection=conn, namespace=f"bench-coherence-{tag}")
    def watched(user_id: int) -> dict[str, Any]:
        return source(user_id)

    state = watched._state
    state.bind()
    listener = state.coherence
    if listener is None or not listener.settle(state.l1, 10):
        raise RuntimeError("the invalidation listener did not subscribe")
    return watched


async def coherence_benchmark(
    conn: RedisConnection, raw: redis.Redis, url: str, value: dict[str, Any], stack: AsyncExitStack
) -> Benchmark:
    """The coherence cycle, spinning and observing, against a ``PING`` round trip on ``raw``."""
    writer = redis.Redis.from_url(url)  # "another client": not ours, not the floor's
    stack.callback(writer.close)
    pings: list[float] = []
    contenders = [Contender("redis-py `r.ping()` round trip", _pinged(raw, pings), "floor", pings)]
    spinning = _watched(conn, "spin", value)
    observed = _watched(conn, "observe", value)
    watches: tuple[tuple[str, Any, _Watch], ...] = (
        ("spinning on the store's `get`", spinning, _Spin(spinning._state.l1)),
        (
            "waiting on a coherence observer",
            observed,
            _Observe(observed._state.l1, observed._state.coherence, stack),
        ),
    )
    for how, fn, watch in watches:
        samples: list[float] = []
        runner = _cycles(fn, writer, watch, samples)
        contenders.append(Contender(f"raw DEL -> L1 copy gone, {how}", runner, "info", samples))
    return Benchmark("@cached coherence: another client's DEL", COHERENCE_CALLS, contenders)
