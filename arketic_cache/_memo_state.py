"""The state behind one ``@cached`` function, shared by its sync and async faces.

Nothing here sends a Redis command: it decides call and Redis keys, TTLs, what L1 keeps, which
flow to run on a hit, a miss or an invalidation. ``_memo.py`` holds the two faces that run
those flows and call the function.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Generator
from typing import Any, NamedTuple

from . import _connection
from ._core._cache import CacheStats
from ._core._effects import Flow
from ._core._memo import (
    CallKeyer,
    Envelope,
    EnvelopeCodec,
    claim_lease,
    early_refresh_due,
    invalidate_entry,
    invalidation_message,
    jittered_ttl,
    load_entry,
    release_lease,
    return_type,
    store_entry,
)
from ._exceptions import ConfigurationError, SerializationError
from ._keys import KeySchema
from ._l1 import L1Store
from ._ttl import TTL

__all__ = [
    "FAILED",
    "KW",
    "LEASE_GRACE",
    "CacheInfo",
    "Flight",
    "Lease",
    "Memo",
    "Outcome",
    "Run",
    "Step",
    "Wait",
    "Wrapper",
]

logger = logging.getLogger("arketic_cache")

KW = object()  # separates positional from keyword arguments in L1 call keys
FAILED = object()  # an L2 read that failed (counted as an error, treated as a miss)
#: Extra wait past a holder's lease before trying to take it over.
LEASE_GRACE = 0.05


class Run(NamedTuple):
    """A step of a miss: run this flow (non-strict) and send back its result."""

    flow: Flow[Any]
    fallback: Any


class Wait(NamedTuple):
    """A step of a lease: wait up to ``seconds`` for the holder's announcement."""

    seconds: float


class Lease(NamedTuple):
    """A step of a miss: take part in the cross-process lease for ``l2_key``
    (see ``Memo.lease``); the reply is ``(entry, token)``."""

    l2_key: str


#: A step the sync and async wrappers carry out for ``Memo.miss`` and ``Memo.lease``.
Step = Run | Wait | Lease


class Outcome(NamedTuple):
    """How a miss ends: ``value`` (found), ``serve`` (an entry) or ``compute`` (a token)."""

    kind: str
    value: Any


class CacheInfo(NamedTuple):
    """Counters of one decorated function."""

    l1_hits: int
    l2_hits: int
    misses: int
    errors: int
    l1_size: int


_PLAIN = frozenset({int, str, bool, float, bytes, type(None)})


def _plain(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True if every argument is an immutable scalar (its key cannot change under us)."""
    return all(type(a) in _PLAIN for a in args) and all(type(v) in _PLAIN for v in kwargs.values())


class Flight:
    """One in-process computation that concurrent callers of the same key wait for."""

    __slots__ = ("cond", "error", "finished", "value", "waiters")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.waiters = 0
        self.finished = False
        self.value: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        """Wait for the leader; return its value or raise its error."""
        with self.cond:
            self.waiters += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.finished)
        if self.error is not None:
            raise self.error
        return self.value

    def finish(self) -> None:
        """Wake every waiter."""
        with self.cond:
            self.finished = True
            self.cond.notify_all()


class Memo:
    """Everything a decorated function's sync and async faces share."""

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
        self.fast_keys = not exclude and (key is None or isinstance(key, type))
        if ttl is None and isinstance(key, type) and issubclass(key, KeySchema):
            ttl = key.ttl
        self.ttl = ttl
        self.l1 = L1Store(l1_maxsize, l1_ttl or float("inf")) if l1 else None
        self.l2 = l2
        self.cache_none = cache_none
        self.condition = condition
        self.jitter = jitter
        self.early_refresh = early_refresh
        self.lock = lock
        self.lease_ms = 1000 * (lock_ttl or TTL.TEMPORARY_LOCK.seconds)
        self.lease_waits = 0
        self.swr = stale_while_revalidate
        self.refreshing: set[str] = set()
        self.background: set[Any] = set()  # running refresh tasks (kept referenced)
        self._connection = connection
        self._bound: _connection.RedisConnection | None = None
        self._prefix = ""
        self.codec = EnvelopeCodec(return_type(fn), 1 << 20)
        self.stats = CacheStats()
        self.l1_hits = 0
        self.errors = 0
        self.flights: dict[str, Flight] = {}
        self.flights_lock = threading.Lock()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        # Rendering a key binds the signature and hashes the arguments (~10 us): remember it
        # per call shape, for calls whose arguments are plain values.
        self.keys: dict[Any, str] = {}
        self.max_keys = max(1024, l1_maxsize)

    # -- binding -------------------------------------------------------------------------------
    def bind(self) -> _connection.RedisConnection:
        conn = self._connection or _connection.current_connection()
        if conn is not self._bound:
            self._bound = conn
            self._prefix = conn.settings.key_prefix
            self.keys.clear()
            self.codec.max_bytes = conn.settings.max_value_bytes
            if self.l1 is not None:
                self.l1.clear()
                conn.bus.register(self.l1)
            if self.lock:
                conn.bus.start()  # lease waiters are woken through it
        return conn

    def call_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The L1 key of a call: its arguments with their types (1, 1.0 and True differ)."""
        positional = args[self.skip :]
        if kwargs:
            values = kwargs.values()
            return (*positional, KW, *kwargs.items(), *map(type, positional), *map(type, values))
        return (*positional, *map(type, positional))

    def l2_key(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_key: Any = None) -> str:
        """The Redis key of a call, remembered per call shape when the arguments are plain."""
        if call_key is not None:
            try:
                known = self.keys.get(call_key)
            except TypeError:  # unhashable arguments
                call_key = None
            else:
                if known is not None:
                    return known
        key = self._prefix + self.keyer(args, kwargs)
        if call_key is not None and _plain(args[self.skip :], kwargs):
            if len(self.keys) >= self.max_keys:
                self.keys.clear()
            self.keys[call_key] = key
        return key

    def ttl_seconds(self, conn: _connection.RedisConnection | None) -> int:
        ttl = self.ttl
        default = conn.settings.default_ttl if conn is not None else TTL.DEFAULT.seconds
        seconds = (ttl or TTL.DEFAULT).resolve(default) if not isinstance(ttl, int) else ttl
        return jittered_ttl(seconds, self.jitter, random.random()) if self.jitter else seconds

    # -- decisions -----------------------------------------------------------------------------
    def cacheable(self, value: Any) -> bool:
        if value is None and not self.cache_none:
            return False
        return self.condition is None or bool(self.condition(value))

    def fresh(self, entry: object) -> Envelope | None:
        """The L2 entry if it should be served (not a miss, failure or due for early refresh)."""
        if entry is FAILED:
            self.errors += 1
            return None
        if entry is None:
            return None
        assert isinstance(entry, Envelope)
        if not self.swr and entry.expires_at <= time.time():
            return None  # past its time (clock skew between writers): a miss
        if self.early_refresh and early_refresh_due(
            entry, self.early_refresh, time.time(), 1.0 - random.random()
        ):
            return None
        return entry

    def is_stale(self, entry: Envelope) -> bool:
        """True for an entry kept past its expiry for stale-while-revalidate."""
        return bool(self.swr) and entry.expires_at <= time.time()

    def claim_refresh(self, l2_key: str) -> bool:
        """True if this caller should start the background refresh of ``l2_key``."""
        with self.flights_lock:
            if l2_key in self.refreshing:
                return False
            self.refreshing.add(l2_key)
            return True

    def refreshed(self, l2_key: str) -> None:
        with self.flights_lock:
            self.refreshing.discard(l2_key)

    def seen(self) -> int:
        """The L1 version before a read: ``remember`` skips values overtaken meanwhile."""
        return self.l1.version if self.l1 is not None else 0

    def remember(
        self, call_key: Any, l2_key: str, value: Any, expires_at: float, seen: int
    ) -> None:
        if self.l1 is not None:
            key = l2_key if call_key is None else call_key
            self.l1.put(key, l2_key, value, expires_at - time.time(), seen)

    def recall(self, call_key: Any, l2_key: str) -> tuple[bool, Any]:
        """An L1 entry stored for ``l2_key`` under any call shape (kept for this one too)."""
        if self.l1 is None:
            return False, None
        found = self.l1.recall(l2_key, call_key)
        if found is None:
            return False, None
        self.l1_hits += 1
        return True, found[0]

    def prepare(
        self, conn: _connection.RedisConnection | None, value: Any, seconds: float
    ) -> tuple[int, float, bytes | None]:
        """Redis TTL, expiry and the envelope to store (None when it cannot be stored).

        With stale-while-revalidate the key outlives its expiry by that many seconds.
        """
        ttl = self.ttl_seconds(self._bound)
        expires_at = time.time() + ttl
        if conn is None:
            return ttl, expires_at, None
        try:
            return ttl + self.swr, expires_at, self.codec.encode(value, expires_at, seconds)
        except SerializationError as exc:
            self.errors += 1
            logger.warning("%s: result not cached in Redis: %s", self.keyer.namespace, exc)
            return ttl + self.swr, expires_at, None

    def served(self, entry: Envelope, call_key: Any, l2_key: str, seen: int) -> bool:
        """Count an L2 hit and keep it in L1; True if a background refresh should start."""
        self.stats.hits += 1
        if not self.is_stale(entry):
            self.remember(call_key, l2_key, entry.value, entry.expires_at, seen)
            return False
        return self.claim_refresh(l2_key)

    def computed(
        self,
        conn: _connection.RedisConnection | None,
        call_key: Any,
        l2_key: str,
        value: Any,
        seconds: float,
        seen: int,
    ) -> Flow[bool] | None:
        """Keep a fresh result in L1; the flow that stores and announces it, if any."""
        if not self.cacheable(value):
            return None
        ttl, expires_at, data = self.prepare(conn, value, seconds)
        self.remember(call_key, l2_key, value, expires_at, seen)
        if conn is None or data is None:
            return None
        bus = conn.bus
        return store_entry(
            l2_key, data, ttl, bus.channel, self.notice(conn, l2_key), bus.own_listeners
        )

    def release(self, conn: _connection.RedisConnection, l2_key: str, token: str) -> Flow[bool]:
        """The flow that gives a lease back and wakes its waiters."""
        return release_lease(l2_key, token, conn.bus.channel, self.notice(conn, l2_key))

    def miss(
        self, call_key: Any, l2_key: str, conn: _connection.RedisConnection | None
    ) -> Generator[Step, Any, Outcome]:
        """What the single computation for a missed key does first, for either flavour: a
        copy another caller just left, an L2 hit (without L1), or another process's result
        after a lease wait; else ``Outcome("compute", token)`` (the lease to give back)."""
        found, value = self.recall(call_key, l2_key)  # a flight that just ended left it here
        if found:
            return Outcome("value", value)
        if self.l1 is None and conn is not None:  # without L1, it left it in Redis
            entry = self.fresh((yield Run(load_entry(l2_key, self.codec, self.stats), None)))
            if entry is not None:
                return Outcome("serve", entry)
        token = None
        if conn is not None and self.lock:
            entry, token = yield Lease(l2_key)
            if entry is not None:
                return Outcome("serve", entry)
        self.stats.misses += 1
        return Outcome("compute", token)

    def lease(
        self, conn: _connection.RedisConnection, l2_key: str
    ) -> Generator[Run | Wait, Any, tuple[Envelope | None, str | None]]:
        """Wait for another process's computation, or take the lease: ``(entry, token)``.

        ``Wait`` ends early when the holder announces its result; else its lease ran out
        (it died) and the next round may take it over.
        """
        for _ in range(self.max_lease_rounds):
            token = uuid.uuid4().hex
            claim = yield Run(
                claim_lease(l2_key, token, self.lease_ms, self.codec, self.stats), None
            )
            if claim is None:
                return None, None
            if claim.acquired and claim.entry is not None:  # it landed as we claimed
                yield Run(self.release(conn, l2_key, token), False)
                return claim.entry, None
            if claim.acquired or claim.entry is not None:
                return claim.entry, token if claim.acquired else None
            self.lease_waits += 1
            yield Wait(claim.lease_ms / 1000 + LEASE_GRACE)
        return None, None

    def invalidation(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[_connection.RedisConnection | None, Flow[bool] | None, bool]:
        """Drop a call's entry from L1: the connection and flow to drop it from L2 too."""
        conn = self.bind() if self.l2 else None
        call_key = self.call_key(args, kwargs) if self.fast_keys else None
        l2_key = self.l2_key(args, kwargs, call_key)
        dropped = self.forget_local(l2_key) > 0
        if conn is None:
            return None, None, dropped
        bus = conn.bus
        message = invalidation_message(bus.origin, l2_key)
        return conn, invalidate_entry(l2_key, bus.channel, message, bus.own_listeners), dropped

    max_lease_rounds = 8

    def notice(self, conn: _connection.RedisConnection, l2_key: str) -> str:
        return invalidation_message(conn.bus.origin, l2_key)

    def info(self) -> CacheInfo:
        size = len(self.l1) if self.l1 is not None else 0
        errors = self.errors + self.stats.decode_errors  # failures and unreadable entries
        return CacheInfo(self.l1_hits, self.stats.hits, self.stats.misses, errors, size)

    def forget_local(self, l2_key: str) -> int:
        return self.l1.drop(l2_key) if self.l1 is not None else 0


class Wrapper:
    """What the sync and async faces share that involves no I/O."""

    def __init__(self, fn: Callable[..., Any], memo: Memo) -> None:
        self.__wrapped__ = fn
        self._memo = memo
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "cached")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = fn.__module__

    def cache_info(self) -> CacheInfo:
        """L1 hits, L2 hits, misses, errors and the L1 size."""
        return self._memo.info()

    def cache_clear(self) -> None:
        """Drop this function's L1 entries (L2 is untouched)."""
        if self._memo.l1 is not None:
            self._memo.l1.clear()
