"""L1 coherence across two real OS processes on a real redis-server.

The test process plays process A; process B is a ``spawn``ed worker (``_worker`` below) that
decorates the same functions (same namespace, same server, same key prefix) and answers
commands over a pipe. Each function reads its result from a *backing value* in Redis, so a
result tells where it came from: when A changes the backing value and announces a change, B
returning the new value proves that B's L1 copy was dropped.

Races: an invalidation delivered between B's L2 read and its L1 fill, or while B's L1 copies
an entry to another call shape, must not leave the dropped value in L1 (there is nothing left
to announce it again, so it would be served for the whole TTL). Hooks put the delivery exactly
in those windows: no timing luck involved.

Nothing sleeps. B learns of an invalidation through its listener thread, asynchronously; it
waits for that delivery with ``bus.watch`` (a callback run after the L1 drop) on a condition,
bounded by a deadline. Only the listener's flush after a lost connection has no hook: B polls
``bus.flushes`` then, bounded by the same deadline (see ``_until``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, cast

import pytest
import redis

from arketic_cache import RedisConnection, cached
from arketic_cache._core._memo import Envelope, EnvelopeCodec
from arketic_cache.testing import RedisServer

pytestmark = pytest.mark.redis

#: Bound on every wait for something asynchronous (a message, a resubscription, a reply).
DEADLINE = 10.0
SYNC_NS, ASYNC_NS = "coherence-sync", "coherence-async"


def backing_key(prefix: str, name: str, x: int) -> str:
    """Where the function ``name`` reads its result for ``x``."""
    return f"{prefix}backing:{name}:{x}"


def _until(predicate: Callable[[], bool]) -> bool:
    """Poll ``predicate`` every 10 ms until it holds or ``DEADLINE`` passes.

    Used only for the listener's flush after a lost connection, which happens on the listener
    thread with no callback to wait on; the wait is for that asynchronous event, not a delay.
    """
    deadline = time.monotonic() + DEADLINE
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.01)
    return True


# -- process B ------------------------------------------------------------------------------------
class _Deliveries:
    """The keys B's listener announced (after dropping them from L1), waitable."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, key: str) -> None:
        with self.cond:
            self.keys.append(key)
            self.cond.notify_all()

    def wait_beyond(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.keys) > count, timeout=DEADLINE)


class _PausingCodec(EnvelopeCodec):
    """Runs ``before`` when an L2 reply is decoded: between the GET and the L1 fill."""

    __slots__ = ("_before", "_inner")

    def __init__(self, inner: EnvelopeCodec, before: Callable[[], None]) -> None:
        self._inner, self._before = inner, before
        self.max_bytes = inner.max_bytes

    def encode(self, value: Any, expires_at: float, compute_seconds: float) -> bytes:
        return self._inner.encode(value, expires_at, compute_seconds)

    def decode(self, raw: str | bytes) -> Envelope:
        self._before()
        return self._inner.decode(raw)


def _worker(url: str, prefix: str, protocol: int, pipe: Connection) -> None:
    """Process B: decorate ``f`` (sync) and ``g`` (async), then serve the test's commands."""
    conn = RedisConnection(url=url, protocol=protocol, key_prefix=prefix)
    backing = redis.Redis.from_url(url, decode_responses=True)
    computed: dict[str, int] = {"f": 0, "g": 0}

    def read(name: str, x: int) -> int:
        computed[name] += 1
        return int(backing.get(backing_key(prefix, name, x)) or -1)

    @cached(connection=conn, namespace=SYNC_NS)
    def f(x: int) -> int:
        return read("f", x)

    @cached(connection=conn, namespace=ASYNC_NS)
    async def g(x: int) -> int:
        return read("g", x)

    deliveries = _Deliveries()
    bus = conn.bus
    bus.watch(deliveries)  # starts the listener
    runner = asyncio.Runner()

    def state(value: Any = None) -> dict[str, Any]:
        return {
            "value": value,
            "computed": dict(computed),
            "delivered": list(deliveries.keys),
            "flushes": bus.flushes,
            "subscribed": bus.subscribed.is_set(),
            "f": f.cache_info()._asdict(),
            "g": g.cache_info()._asdict(),
        }

    def paused_call(name: str, x: int) -> Any:
        """Call, pausing once the L2 reply is in until another invalidation was delivered."""
        memo = (f if name == "f" else g)._memo
        codec = memo.codec

        def before() -> None:
            count = len(deliveries.keys)
            pipe.send(("paused", count))
            if not deliveries.wait_beyond(count):
                raise TimeoutError("no invalidation delivered while paused")

        memo.codec = _PausingCodec(codec, before)
        try:
            return f(x) if name == "f" else runner.run(g(x))
        finally:
            memo.codec = codec

    def handle(command: str, arg: Any) -> dict[str, Any]:
        if command == "paused_call":
            return state(paused_call(*arg))
        if command == "call_f":
            return state(f(arg))
        if command == "call_g":
            return state(runner.run(g(arg)))
        if command == "await_delivery":  # a message announced after `arg` earlier ones
            return state(deliveries.wait_beyond(arg))
        if command == "await_resubscribed":  # flushed after losing Redis, then listening again
            flushed = _until(lambda: bus.flushes > arg)
            return state(flushed and bus.subscribed.wait(DEADLINE))
        if command == "state":
            return state()
        raise ValueError(f"unknown command {command!r}")

    try:
        pipe.send(("ok", state(bus.subscribed.wait(DEADLINE))))
        while True:
            command, arg = pipe.recv()
            if command == "stop":
                break
            try:
                pipe.send(("ok", handle(command, arg)))
            except Exception:
                pipe.send(("error", traceback.format_exc()))
    finally:
        runner.run(conn.aclose())
        runner.close()
        backing.close()
        pipe.close()


class ProcessB:
    """The test's handle on process B."""

    def __init__(self, url: str, prefix: str, protocol: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(
            target=_worker, args=(url, prefix, protocol, child), daemon=True
        )
        self.process.start()
        child.close()
        self.ready = self._reply()

    def _reply(self) -> dict[str, Any]:
        # The worker answers at once, or after one bounded wait of its own (plus a spawn).
        assert self.pipe.poll(DEADLINE + 20), "process B did not answer"
        status, payload = self.pipe.recv()
        assert status == "ok", f"process B failed:\n{payload}"
        return payload  # type: ignore[no-any-return]

    def ask(self, command: str, arg: Any = None) -> dict[str, Any]:
        self.pipe.send((command, arg))
        return self._reply()

    def ask_paused(self, name: str, x: int, meanwhile: Callable[[], object]) -> dict[str, Any]:
        """Call ``name(x)`` in B; run ``meanwhile`` here after B's GET and before its L1 fill."""
        self.pipe.send(("paused_call", (name, x)))
        assert self.pipe.poll(DEADLINE), "process B did not pause"
        status, payload = self.pipe.recv()
        assert status == "paused", f"process B did not pause: {payload}"
        meanwhile()
        return self._reply()

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.pipe.send(("stop", None))
            self.process.join(DEADLINE)
        finally:
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.pipe.close()
            self.process.close()


# -- process A (this one) -------------------------------------------------------------------------
class ProcessA:
    """The same functions as process B's, decorated here, with a raw client for the test."""

    def __init__(self, url: str, prefix: str, protocol: int) -> None:
        self.prefix = prefix
        self.conn = RedisConnection(url=url, protocol=protocol, key_prefix=prefix)
        self.raw = redis.Redis.from_url(url, decode_responses=True)
        self.runner = asyncio.Runner()
        raw = self.raw

        @cached(connection=self.conn, namespace=SYNC_NS)
        def f(x: int) -> int:
            return int(raw.get(backing_key(prefix, "f", x)) or -1)

        @cached(connection=self.conn, namespace=ASYNC_NS)
        async def g(x: int) -> int:
            return int(raw.get(backing_key(prefix, "g", x)) or -1)

        self.f, self.g = f, g

    def set_backing(self, name: str, x: int, value: int) -> None:
        self.raw.set(backing_key(self.prefix, name, x), value)

    def call(self, name: str, x: int) -> int:
        return self.f(x) if name == "f" else self.runner.run(self.g(x))

    def invalidate(self, name: str, x: int) -> bool:
        return self.f.invalidate(x) if name == "f" else self.runner.run(self.g.invalidate(x))

    def l2_key(self, name: str, x: int) -> str:
        memo = (self.f if name == "f" else self.g)._memo
        memo.bind()
        return memo.l2_key((x,), {})

    def close(self) -> None:
        self.runner.run(self.conn.aclose())
        self.runner.close()
        self.raw.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own: its keys and its invalidation channel are private."""
    return f"coherence-{uuid.uuid4().hex[:8]}:"


@contextmanager
def pair(url: str, prefix: str, protocol: int) -> Iterator[tuple[ProcessA, ProcessB]]:
    """Process A (this one) and a started process B, both closed afterwards."""
    a = ProcessA(url, prefix, protocol)
    try:
        b = ProcessB(url, prefix, protocol)
        try:
            assert b.ready["value"] is True, "process B's listener did not subscribe"
            yield a, b
        finally:
            b.close()
    finally:
        a.close()


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", ["f", "g"])
def test_invalidation_and_writes_reach_the_other_process(
    redis_server: RedisServer, prefix: str, protocol: int, name: str
) -> None:
    """A's invalidate and A's write each make B drop its L1 copy (sync f, async g; RESP2/3)."""
    with pair(redis_server.url, prefix, protocol) as (a, b):
        call = f"call_{name}"

        # -- invalidate: B recomputes from the new backing value -----------------------------
        a.set_backing(name, 1, 100)
        assert b.ask(call, 1)["value"] == 100  # computed in B, now in B's L1 and in L2
        a.set_backing(name, 1, 101)
        seen = b.ask(call, 1)
        assert seen["value"] == 100, "control: unannounced, B keeps serving its L1 copy"
        assert seen["computed"][name] == 1
        assert seen[name]["l1_hits"] == 1
        assert a.invalidate(name, 1) is True
        delivered = b.ask("await_delivery", len(seen["delivered"]))
        assert delivered["value"] is True, "B's listener got no invalidation"
        assert delivered["delivered"][-1] == a.l2_key(name, 1)
        after = b.ask(call, 1)
        assert after["value"] == 101, "B served a stale L1 copy after A's invalidate"
        assert after["computed"][name] == 2

        # -- write: A computes and stores a new value; B drops L1 and reads it from L2 --------
        a.set_backing(name, 2, 200)
        assert b.ask(call, 2)["value"] == 200
        # The L2 copy leaves without an announcement (as on eviction under maxmemory), so
        # A's next call misses, computes the new value and stores it, announcing the write.
        a.raw.unlink(a.l2_key(name, 2))
        a.set_backing(name, 2, 201)
        before = b.ask(call, 2)
        assert before["value"] == 200, "control: B still serves its L1 copy"
        assert a.call(name, 2) == 201
        delivered = b.ask("await_delivery", len(before["delivered"]))
        assert delivered["value"] is True, "B's listener got no write announcement"
        assert delivered["delivered"][-1] == a.l2_key(name, 2)
        after = b.ask(call, 2)
        assert after["value"] == 201, "B served a stale L1 copy after A's write"
        assert after["computed"][name] == before["computed"][name], "B read A's value from L2"
        assert after[name]["l2_hits"] == before[name]["l2_hits"] + 1
        assert after[name]["errors"] == 0


@pytest.mark.parametrize("protocol", [2, 3])
def test_lost_listener_flushes_l1_and_coherence_resumes(
    fresh_server: RedisServer, prefix: str, protocol: int
) -> None:
    """Killing and restarting the server flushes B's L1; after resubscribing, B is coherent."""
    with pair(fresh_server.url, prefix, protocol) as (a, b):
        a.set_backing("f", 1, 100)
        cached_in_b = b.ask("call_f", 1)
        assert cached_in_b["value"] == 100
        assert cached_in_b["f"]["l1_size"] == 1

        fresh_server.kill()  # SIGKILL: no goodbye to the clients; every key is lost
        fresh_server.restart()  # the same port and password: B's listener reconnects
        back = b.ask("await_resubscribed", cached_in_b["flushes"])
        assert back["value"] is True, "B's listener did not flush and resubscribe"
        assert back["flushes"] > cached_in_b["flushes"]
        assert back["f"]["l1_size"] == 0, "B's L1 survived a lost invalidation channel"

        a.set_backing("f", 1, 101)  # the restart lost the old backing value too
        after = b.ask("call_f", 1)
        assert after["value"] == 101, "B served a stale L1 copy after the reconnect"
        assert after["computed"]["f"] == 2

        # Coherence works again over the new subscription.
        a.set_backing("f", 1, 102)
        assert a.invalidate("f", 1) is True
        delivered = b.ask("await_delivery", len(after["delivered"]))
        assert delivered["value"] is True, "B's listener got no invalidation after reconnecting"
        again = b.ask("call_f", 1)
        assert again["value"] == 102
        assert again["computed"]["f"] == 3


@pytest.mark.parametrize("name", ["f", "g"])
def test_invalidation_racing_an_l2_read(redis_server: RedisServer, prefix: str, name: str) -> None:
    """An invalidation delivered between B's GET and B's L1 fill must keep that value out of L1.

    B reads the old value from L2; before B stores it in L1, A invalidates the entry and B's
    listener processes the message (dropping nothing: L1 is still empty). B's call may return
    the value it read, but must not keep it: L2 no longer has it, nothing will announce it again,
    and B would serve it for the whole TTL.
    """
    with pair(redis_server.url, prefix, 3) as (a, b):
        a.set_backing(name, 3, 300)
        assert a.call(name, 3) == 300  # in L2 (and A's L1); B has never called
        a.set_backing(name, 3, 301)
        racing = b.ask_paused(name, 3, lambda: a.invalidate(name, 3))
        assert racing["value"] == 300  # read before the invalidation: fine to return
        assert racing["delivered"][-1] == a.l2_key(name, 3)
        after = b.ask(f"call_{name}", 3)
        assert after["value"] == 301, "B kept a value in L1 that was invalidated during its read"


class _HookedLock:
    """Wraps an L1 store's lock: runs ``hook`` after the ``at``-th release by this thread.

    The listener can change L1 only between the caller's critical sections, so delivering an
    invalidation after each one in turn covers every interleaving that matters to L1.
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


def test_invalidation_racing_an_l1_lookup(redis_server: RedisServer, prefix: str) -> None:
    """However an invalidation interleaves with an L1 lookup, the dropped value stays dropped.

    ``f(x=1)`` misses L1 under its own call shape, finds ``f(1)``'s entry by L2 key and keeps it
    under the new shape too. The invalidation is delivered after each of the call's critical
    sections on L1 in turn; afterwards the old value must be gone under every shape. (One
    process with two connections: the invalidating one stands for process A.)
    """
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    conn_a = RedisConnection(url=redis_server.url, key_prefix=prefix)
    conn_b = RedisConnection(url=redis_server.url, key_prefix=prefix)
    backing = backing_key(prefix, "f", 1)

    def body(x: int) -> int:
        return int(raw.get(backing) or -1)

    fa = cached(connection=conn_a, namespace=SYNC_NS)(body)
    fb = cached(connection=conn_b, namespace=SYNC_NS)(body)
    deliveries = _Deliveries()

    def invalidate_from_a() -> None:
        count = len(deliveries.keys)
        fa.invalidate(1)
        assert deliveries.wait_beyond(count), "B's listener got no invalidation"

    try:
        conn_b.bus.watch(deliveries)
        assert conn_b.bus.subscribed.wait(DEADLINE)
        store = fb._memo.l1
        assert store is not None
        inner = store.lock
        at = 1
        while True:
            invalidate_from_a()  # a clean slate: nothing in L2, nothing in flight to B
            fb.cache_clear()
            raw.set(backing, 100)
            assert fb(1) == 100  # in L2, and in B's L1 under the shape (1,)
            raw.set(backing, 101)
            hooked = _HookedLock(inner, at, invalidate_from_a)
            store.lock = cast(Any, hooked)  # the store takes it like its own lock
            try:
                assert fb(x=1) in (100, 101)
            finally:
                store.lock = inner
            if hooked.releases < at:
                break  # the call had fewer critical sections: every point was tried
            assert fb(x=1) == 101, f"stale after an invalidation at critical section {at}"
            assert fb(1) == 101, f"stale after an invalidation at critical section {at}"
            at += 1
        assert at > 2, "the call never looked L1 up by its L2 key"
    finally:
        conn_a.close_sync()
        conn_b.close_sync()
        raw.close()
