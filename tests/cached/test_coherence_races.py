"""Invalidations racing a reader: a dropped value never re-enters L1.

An invalidation delivered between a reader's L2 read and its L1 fill, or while its L1 copies
an entry to another call shape, must not leave the dropped value in L1: nothing would evict it
again, and it would be served for the whole TTL. Hooks put the delivery exactly in those
windows (no timing luck). One process, two connections: the invalidating one stands for
another process (each connection has its own listener and origin).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from arketic_cache import RedisConnection, cached
from arketic_cache._codec import Envelope, EnvelopeCodec
from arketic_cache.testing import RedisServer

pytestmark = pytest.mark.redis

DEADLINE = 10.0


class Evictions:
    """Keys a listener evicted, waitable."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.cond = threading.Condition()

    def __call__(self, key: str | None) -> None:
        with self.cond:
            self.keys.append(key)
            self.cond.notify_all()

    def wait_beyond(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.keys) > count, timeout=DEADLINE)


class PausingCodec(EnvelopeCodec):
    """Runs ``before`` when an L2 reply is decoded: between the GET and the L1 fill."""

    __slots__ = ("_before", "_inner")

    def __init__(self, inner: EnvelopeCodec, before: Callable[[], None]) -> None:
        self._inner, self._before = inner, before
        self.max_bytes = inner.max_bytes

    def encode(self, value: Any, compute_seconds: float) -> bytes:
        return self._inner.encode(value, compute_seconds)

    def decode(self, raw: str | bytes) -> Envelope:
        self._before()
        return self._inner.decode(raw)


class Pair:
    """Two connections to one server, each with ``body`` decorated on it (A and B)."""

    def __init__(self, url: str, protocol: int) -> None:
        prefix = f"race-{uuid.uuid4().hex[:8]}:"
        self.raw = redis.Redis.from_url(url, decode_responses=True)
        self.backing = f"{prefix}backing"
        self.conn_a = RedisConnection(url=url, key_prefix=prefix, protocol=protocol)
        self.conn_b = RedisConnection(url=url, key_prefix=prefix, protocol=protocol)
        self.fa = cached(connection=self.conn_a, namespace="race")(self.body)
        self.fb = cached(connection=self.conn_b, namespace="race")(self.body)
        self.evictions = Evictions()
        for fn in (self.fa, self.fb):
            state = fn._state
            state.bind()
            assert state.coherence is not None
            assert state.coherence.settle(state.l1, DEADLINE)
        coherence_b = self.fb._state.coherence
        assert coherence_b is not None
        coherence_b.observe(self.evictions)

    def body(self, x: int) -> int:
        return int(self.raw.get(self.backing) or -1)

    def invalidate_from_a(self) -> None:
        """A invalidates f(1); returns once B's listener has evicted it."""
        count = len(self.evictions.keys)
        self.fa.invalidate(1)
        assert self.evictions.wait_beyond(count), "B's listener got no invalidation"

    def close(self) -> None:
        self.conn_a.close_sync()
        self.conn_b.close_sync()
        self.raw.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pair(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Pair]:
    both = Pair(redis_server.url, request.param)
    yield both
    both.close()


def test_invalidation_racing_an_l2_read(pair: Pair) -> None:
    """B reads the old value from L2; before B keeps it in L1, A invalidates the entry and
    B's listener evicts it (nothing to drop yet). B may return what it read, not keep it."""
    pair.raw.set(pair.backing, 300)
    assert pair.fa(1) == 300  # in L2 (and A's L1); B has never called
    pair.raw.set(pair.backing, 301)
    state = pair.fb._state
    codec = state.codec
    state.codec = PausingCodec(codec, pair.invalidate_from_a)
    try:
        assert pair.fb(1) == 300  # read before the invalidation: fine to return
    finally:
        state.codec = codec
    assert pair.fb(1) == 301, "B kept a value in L1 that was invalidated during its read"


class HookedLock:
    """Wraps an L1 store's lock: runs ``hook`` after the ``at``-th release by this thread.

    The listener changes L1 only inside the store's critical sections, so delivering an
    invalidation after each of the caller's sections in turn covers every interleaving.
    """

    def __init__(self, inner: Any, at: int, hook: Callable[[], None]) -> None:
        self.inner, self.at, self.hook = inner, at, hook
        self.owner = threading.get_ident()
        self.releases = 0

    def __enter__(self) -> Any:
        return self.inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)
        if threading.get_ident() == self.owner:
            self.releases += 1
            if self.releases == self.at:
                self.hook()


def test_invalidation_racing_an_l1_lookup(pair: Pair) -> None:
    """``f(x=1)`` misses L1 under its own call shape, finds ``f(1)``'s entry by L2 key and
    keeps it under the new shape too. Delivered after each of the call's critical sections on
    L1 in turn, the invalidation leaves the old value gone under every shape."""
    store = pair.fb._state.l1
    assert store is not None
    inner = store.lock
    at = 1
    while True:
        pair.fa.cache_clear()
        pair.fa(1)  # an entry in L2, so that invalidating it is a write that is reported
        pair.invalidate_from_a()  # a clean slate: nothing in L2, nothing in flight to B
        pair.fb.cache_clear()
        pair.raw.set(pair.backing, 100)
        assert pair.fb(1) == 100  # in L2, and in B's L1 under the shape (1,)
        pair.raw.set(pair.backing, 101)
        hooked = HookedLock(inner, at, pair.invalidate_from_a)
        store.lock = cast(Any, hooked)  # the store takes it like its own lock
        try:
            assert pair.fb(x=1) in (100, 101)
        finally:
            store.lock = inner
        if hooked.releases < at:
            break  # the call had fewer critical sections: every point was tried
        assert pair.fb(x=1) == 101, f"stale after an invalidation at critical section {at}"
        assert pair.fb(1) == 101, f"stale after an invalidation at critical section {at}"
        at += 1
    assert at > 1, "the call never took the L1 lock"
