"""The state and the plans behind one ``@cached`` function, written once for both flavours.

A *plan* is a generator that yields steps (plain data: run this flow, compute the value, join
the single flight for this key, spawn this plan in the background, wait for this signal) and
receives each step's result. The sync and async interpreters in ``_cached.py`` carry the steps
out with their paired primitives (``_primitives.py``); everything else (keys, L1, freshness,
leases, counters) is decided here, once. Nothing here does I/O.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Generator
from typing import Any, NamedTuple

from . import _connection
from ._cached_steps import Block, Call, Compute, Join, NewSignal, Plan, Run, Spawn, Step, Wait
from ._codec import EnvelopeCodec
from ._core._cache import CacheStats
from ._core._cached import (
    CallKeyer,
    Claim,
    Entry,
    call_key,
    claim_lease,
    freshness,
    invalidate_entry,
    invalidation_message,
    jittered_ttl,
    lease_key,
    load_entry,
    release_lease,
    return_type,
    store_entry,
)
from ._core._effects import Flow
from ._counters import track
from ._exceptions import ConfigurationError, SerializationError
from ._invalidation import Coherence, coherence, coherence_mode
from ._keys import KeySchema
from ._l1 import L1Store
from ._primitives import AsyncFlights, Flights
from ._ttl import TTL

__all__ = ["FAILED", "CacheInfo", "CachedState", "live_states"]

logger = logging.getLogger("arketic_cache")

FAILED = object()  # an L2 read that failed (counted as an error, treated as a miss)
#: Extra wait past a holder's lease before trying to take it over.
LEASE_GRACE = 0.05
MAX_LEASE_ROUNDS = 8


class CacheInfo(NamedTuple):
    """Counters of one decorated function, and its L1 coherence mode."""

    l1_hits: int
    l2_hits: int
    misses: int
    errors: int
    l1_size: int
    coherence: str


_PLAIN = frozenset({int, str, bool, float, bytes, type(None)})


def _plain(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True if every argument is an immutable scalar (its key cannot change under us)."""
    return all(type(a) in _PLAIN for a in args) and all(type(v) in _PLAIN for v in kwargs.values())


class CachedState:
    """Everything a decorated function's wrappers share, and the plans they run."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        ttl: int | TTL | None,
        key: type[KeySchema] | Callable[..., str] | None,
        namespace: str | None,
        exclude: Collection[str],
        l1: bool,
        l2: bool,
        l1_maxsize: int,
        l1_ttl: float | None,
        cache_none: bool,
        condition: Callable[[Any], bool] | None,
        jitter: float,
        early_refresh: float,
        lock: bool,
        lock_ttl: int | None,
        stale_while_revalidate: int,
        connection: _connection.RedisConnection | None,
    ) -> None:
        if not (l1 or l2):
            raise ConfigurationError("enable L1, L2 or both")
        if ttl is not None and not isinstance(ttl, TTL) and (type(ttl) is not int or ttl <= 0):
            raise ConfigurationError(f"ttl must be a positive int or a TTL row, not {ttl!r}")
        if not 0 <= jitter < 1:
            raise ConfigurationError("jitter is a fraction of the TTL in [0, 1)")
        if early_refresh < 0:
            raise ConfigurationError("early_refresh (XFetch beta) must be >= 0")
        if l1_ttl is not None and l1_ttl <= 0:
            raise ConfigurationError("l1_ttl must be positive")
        if type(stale_while_revalidate) is not int or stale_while_revalidate < 0:
            raise ConfigurationError("stale_while_revalidate is a number of seconds (>= 0)")
        if lock and not l2:
            raise ConfigurationError("lock=True coordinates processes through Redis: keep l2")
        if lock_ttl is not None and (type(lock_ttl) is not int or lock_ttl <= 0):
            raise ConfigurationError("lock_ttl must be a positive int of seconds")
        self.fn = fn
        self.keyer = CallKeyer(fn, namespace=namespace, key=key, exclude=exclude)
        self.skip = 1 if self.keyer.skips_first else 0
        # Argument tuples identify L1 entries only when every argument is part of the key; a
        # key function may read anything (self included), and excluded parameters must not
        # split or pin L1 entries: those calls find L1 entries by their L2 key instead.
        self.fast_keys = (
            not exclude and not self.keyer.injected and (key is None or isinstance(key, type))
        )
        if ttl is None and isinstance(key, type) and issubclass(key, KeySchema):
            ttl = key.ttl
        self.ttl = ttl
        grace = 2.0 if l2 else None  # set from the connection's settings when bound
        self.l1 = L1Store(l1_maxsize, l1_ttl or float("inf"), grace=grace) if l1 else None
        self.l2 = l2
        self.cache_none = cache_none
        self.condition = condition
        self.jitter = jitter
        self.early_refresh = early_refresh
        self.lock = lock
        self.lease_ms = 1000 * (lock_ttl or TTL.TEMPORARY_LOCK.seconds)
        self.lease_waits = 0
        self.swr = stale_while_revalidate
        # The remaining TTL of an L2 hit sets the L1 lifetime, staleness and early refresh;
        # with none of them a hit is fresh while Redis keeps it, and PTTL is not asked.
        self.wants_ttl = bool(l1 or stale_while_revalidate or early_refresh)
        self.refreshing: set[str] = set()
        self.background: set[Any] = set()  # running refreshes (threads or tasks)
        self._refreshing_lock = threading.Lock()
        self._connection = connection
        self._bound: _connection.RedisConnection | None = None
        self.coherence: Coherence | None = None
        self._prefix = ""
        self.codec = EnvelopeCodec(return_type(fn), 1 << 20)
        self.stats = CacheStats()
        track(self, "cached", self.keyer.label, self.stats)
        self.flights: Flights[Any] = Flights()
        self.aflights: AsyncFlights[Any] = AsyncFlights()
        # Rendering a key binds the signature and hashes the arguments (~10 us): remember it
        # per call shape, for calls whose arguments are plain values.
        self.keys: dict[Any, str] = {}
        self.max_keys = max(1024, l1_maxsize)
        _alive.add(self)

    def _after_fork(self) -> None:
        # A flight or refresh the parent's threads were running never finishes in the child:
        # joining it would wait forever, and a lock held at fork() would never be released.
        self.flights = Flights()
        self.aflights = AsyncFlights()
        self.refreshing = set()
        self.background = set()
        self._refreshing_lock = threading.Lock()

    # -- binding and keys ------------------------------------------------------------------------
    def bind(self) -> _connection.RedisConnection:
        """The connection, (re)deriving what depends on it; keeps its listener running."""
        conn = self._connection or _connection.current_connection()
        if conn is not self._bound:
            self._bound = conn
            self._prefix = conn.settings.key_prefix
            self.keys.clear()
            self.codec.max_bytes = conn.settings.max_value_bytes
            self.coherence = coherence(conn)
            store = self.l1
            if store is not None:
                store.clear()
                store.grace = conn.settings.coherence_grace
                store.prefix = self._prefix + self.keyer.prefix
                store.degrade()
            if store is not None or self.lock:  # lease waiters are woken by it too
                self.coherence.register(self._prefix + self.keyer.prefix, store)
        elif self.coherence is not None:
            self.coherence.ensure()  # after a fork: the child's first use starts it
        return conn

    def call_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The L1 key of a call, or None (a key function, excluded or unhashable arguments)."""
        if not self.fast_keys:
            return None
        key = call_key(args[self.skip :], kwargs)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def l2_key(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_key: Any = None) -> str:
        """The Redis key of a call, remembered per call shape when the arguments are plain."""
        if call_key is not None:
            known = self.keys.get(call_key)
            if known is not None:
                return known
        key = self._prefix + self.keyer(args, kwargs)
        if call_key is not None and _plain(args[self.skip :], kwargs):
            if len(self.keys) >= self.max_keys:
                self.keys.clear()
            self.keys[call_key] = key
        return key

    def ttl_seconds(self, conn: _connection.RedisConnection | None, draw: float) -> int:
        ttl = self.ttl
        default = conn.settings.default_ttl if conn is not None else TTL.DEFAULT.seconds
        seconds = (ttl or TTL.DEFAULT).resolve(default) if not isinstance(ttl, int) else ttl
        return jittered_ttl(seconds, self.jitter, draw) if self.jitter else seconds

    # -- L1 --------------------------------------------------------------------------------------
    def seen(self) -> int:
        """The L1 version before a read: a fill overtaken by an invalidation is refused."""
        return self.l1.version if self.l1 is not None else 0

    def remember(self, call_key: Any, l2_key: str, value: Any, lifetime: float, seen: int) -> None:
        if self.l1 is not None:
            self.l1.put(l2_key if call_key is None else call_key, l2_key, value, lifetime, seen)

    def recall(self, call_key: Any, l2_key: str) -> tuple[bool, Any]:
        """An L1 entry stored for ``l2_key`` under any call shape (kept for this one too)."""
        if self.l1 is None:
            return False, None
        found = self.l1.recall(l2_key, call_key)
        if found is None:
            return False, None
        self.stats.l1_hits += 1
        return True, found[0]

    def info(self) -> CacheInfo:
        size = len(self.l1) if self.l1 is not None else 0
        errors = self.stats.errors + self.stats.decode_errors  # failures and unreadable entries
        mode = coherence_mode(self._bound) if self._bound is not None else "none"
        stats = self.stats
        return CacheInfo(stats.l1_hits, stats.hits, stats.misses, errors, size, mode)

    def cacheable(self, value: Any) -> bool:
        if value is None and not self.cache_none:
            return False
        return self.condition is None or bool(self.condition(value))

    def claim_refresh(self, l2_key: str) -> bool:
        """True if this caller should start the background refresh of ``l2_key``."""
        with self._refreshing_lock:
            if l2_key in self.refreshing:
                return False
            self.refreshing.add(l2_key)
            return True

    def refreshed(self, l2_key: str) -> None:
        with self._refreshing_lock:
            self.refreshing.discard(l2_key)

    # -- plans -----------------------------------------------------------------------------------
    def load(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Plan:
        """A call that missed the hot path: L1 by any call shape, L2, else the single flight."""
        call_key = self.call_key(args, kwargs)
        if call_key is not None and self.l1 is not None:
            entry = self.l1.get(call_key)
            if entry is not None:
                self.stats.l1_hits += 1
                return entry[0]
        conn = self.bind() if self.l2 else None
        l2_key = self.l2_key(args, kwargs, call_key)
        found, value = self.recall(call_key, l2_key)
        if found:
            return value
        call = Call(args, kwargs, call_key, l2_key, self.seen())
        if conn is not None:
            outcome, value = yield from self._read(call, conn)
            if outcome == "hit":
                return value
            if outcome == "failed":
                conn = None  # Redis is failing: one timeout per call at most, no write attempt
        return (yield Join(l2_key, self._miss(call, conn)))

    def _read(self, call: Call, conn: _connection.RedisConnection) -> Plan:
        """Read L2: ``("hit", value)``, ``("miss", None)`` or ``("failed", None)``."""
        entry = yield Run(
            conn, load_entry(call.l2_key, self.codec, self.stats, self.wants_ttl), FAILED
        )
        if entry is FAILED:
            self.stats.errors += 1
            return "failed", None
        if entry is None:
            return "miss", None
        verdict = freshness(entry, self.swr, self.early_refresh, 1.0 - random.random())
        if verdict == "miss":
            return "miss", None
        return "hit", (yield from self._serve(entry, verdict, call, conn))

    def _serve(
        self, entry: Entry, verdict: str, call: Call, conn: _connection.RedisConnection
    ) -> Plan:
        """Count an L2 hit; keep a fresh one in L1, refresh a stale one in the background."""
        self.stats.hits += 1
        if verdict == "fresh":
            lifetime = entry.remaining - self.swr
            self.remember(call.key, call.l2_key, entry.value, lifetime, call.seen)
        elif self.claim_refresh(call.l2_key):
            yield Spawn(self._refresh(call, conn))
        return entry.value

    def _miss(self, call: Call, conn: _connection.RedisConnection | None) -> Plan:
        """The one computation of a missed key in this process (after a lease wait)."""
        found, value = self.recall(call.key, call.l2_key)  # a flight that just ended left it
        if found:
            return value
        if self.l1 is None and conn is not None:  # without L1, it left it in Redis
            outcome, value = yield from self._read(call, conn)
            if outcome == "hit":
                return value
        token = None
        if conn is not None and self.lock:
            landed, token = yield from self._lease(conn, call.l2_key)
            if landed is not None:
                verdict = "fresh" if landed.remaining > self.swr else "stale"
                return (yield from self._serve(landed, verdict, call, conn))
        self.stats.misses += 1
        try:
            return (yield from self._compute(call, conn))
        finally:
            if conn is not None and token is not None:  # the lease this process took
                yield Run(conn, self._release(call.l2_key, token), False)

    def _compute(self, call: Call, conn: _connection.RedisConnection | None) -> Plan:
        """Call the function; keep the result in L1 and store it in L2 (announced)."""
        value, seconds = yield Compute(call.args, call.kwargs)
        if not self.cacheable(value):
            return value
        ttl = self.ttl_seconds(self._bound, random.random())
        l2_key = call.l2_key
        self.remember(call.key, l2_key, value, ttl, call.seen)
        if conn is None:
            return value
        try:
            data = self.codec.encode(value, seconds)
        except SerializationError as exc:
            self.stats.errors += 1
            logger.warning("%s: result not cached in Redis: %s", self.keyer.namespace, exc)
            return value
        co = self._coherence()
        flow = store_entry(
            l2_key, data, ttl + self.swr, co.channel, self._notice(l2_key), co.own_listeners
        )
        # Our own write must not evict the copy we just kept; only if L1 is covered, else
        # its report would never come and a later one would be skipped instead.
        expected = self.l1 is not None and self.l1.coherent and co.expect(l2_key)
        if not (yield Run(conn, flow, False)):
            self.stats.errors += 1
            if expected:  # if it landed after all, its report evicts the copy: conservative
                co.unexpect(l2_key)
        return value

    def _refresh(self, call: Call, conn: _connection.RedisConnection) -> Plan:
        """The background refresh of a stale entry."""
        try:
            yield from self._compute(call._replace(seen=self.seen()), conn)
        except Exception:
            logger.exception("%s: background refresh failed", self.keyer.namespace)
        finally:
            self.refreshed(call.l2_key)

    def _lease(
        self, conn: _connection.RedisConnection, l2_key: str
    ) -> Generator[Step, Any, tuple[Entry | None, str | None]]:
        """Wait for another process's computation, or take the lease: ``(entry, token)``.

        A wait ends early when the holder's write or release reaches the listener; else its
        lease ran out (it died) and the next round may take it over.
        """
        co = self._coherence()
        if not co.subscribed.is_set() and not (
            yield Block(co.subscribed, conn.settings.connect_timeout)
        ):
            return None, None  # no listener to be woken by: compute here
        signal = yield NewSignal()
        unwatch = co.watch((l2_key, lease_key(l2_key)), signal.set)
        try:
            for _ in range(MAX_LEASE_ROUNDS):
                token = uuid.uuid4().hex
                claim: Claim | None = yield Run(
                    conn, claim_lease(l2_key, token, self.lease_ms, self.codec, self.stats), None
                )
                if claim is None:  # Redis failed: compute here
                    self.stats.errors += 1
                    return None, None
                if claim.acquired and claim.entry is not None:  # it landed as we claimed
                    yield Run(conn, self._release(l2_key, token), False)
                    return claim.entry, None
                if claim.acquired or claim.entry is not None:
                    return claim.entry, token if claim.acquired else None
                self.lease_waits += 1
                yield Wait(signal, claim.lease_ms / 1000 + LEASE_GRACE)
            return None, None
        finally:
            unwatch()

    def invalidation(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Plan:
        """Drop a call's entry from L1, then from L2 (announced to every process).

        True if an entry was dropped; False if there was none, or if Redis was not reached
        (the entry may then still be in L2, and in other processes' L1 until coherence ends it).
        """
        conn = self.bind() if self.l2 else None
        l2_key = self.l2_key(args, kwargs, self.call_key(args, kwargs))
        dropped = self.l1.drop(l2_key) > 0 if self.l1 is not None else False
        if conn is None:
            return dropped
        co = self._coherence()
        flow = invalidate_entry(l2_key, co.channel, self._notice(l2_key), co.own_listeners)
        existed = yield Run(conn, flow, FAILED)
        if existed is FAILED:  # still in L2, and other processes still serve their copies
            self.stats.errors += 1
            return False
        self.stats.invalidations += 1
        return bool(existed) or dropped

    # -- helpers ---------------------------------------------------------------------------------
    def _coherence(self) -> Coherence:
        assert self.coherence is not None, "bound first"
        return self.coherence

    def _notice(self, l2_key: str) -> str:
        return invalidation_message(self._coherence().origin, l2_key)

    def _release(self, l2_key: str, token: str) -> Flow[bool]:
        """The flow that gives a lease back and wakes its waiters."""
        return release_lease(l2_key, token, self._coherence().channel, self._notice(l2_key))


_alive: weakref.WeakSet[CachedState] = weakref.WeakSet()


def live_states() -> list[CachedState]:
    """Every decorated function's state not yet collected (what the metrics read)."""
    return list(_alive)


def _after_fork_in_child() -> None:
    for each in list(_alive):
        each._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
