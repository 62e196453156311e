"""``@cached``: one decorator for sync and async functions, an L1 in process over Redis L2.

* L1 (cachetools) is looked up with the call's own argument tuple: a hit builds no Redis key,
  no generator and no model. An L1 entry never outlives its L2 copy.
* L2 keys come from the bound arguments (defaults applied), a key schema or a key function.
  Values go through the return annotation as JSON, in an envelope with their expiry.
* Concurrent callers missing the same key share one computation (threads or tasks); a
  cancelled first caller does not cancel the others.
* Writes and invalidations are announced on the connection's invalidation channel, so every
  other process drops its L1 copy (see ``_bus.py``).
* Redis failures never reach the caller: the function's own result is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Coroutine
from typing import Any, Concatenate, Generic, NamedTuple, ParamSpec, Protocol, TypeVar, overload

from . import _connection
from ._core._cache import CacheStats
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

__all__ = ["AsyncCached", "CacheInfo", "Cached", "CachedDecorator", "cached"]

logger = logging.getLogger("arketic_cache")

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")

_KW = object()  # separates positional from keyword arguments in L1 call keys
_FAILED = object()  # an L2 read that failed (counted as an error, treated as a miss)
#: Extra wait past a holder's lease before trying to take it over.
LEASE_GRACE = 0.05


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


class _Flight:
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


class _Memo:
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
        self.flights: dict[str, _Flight] = {}
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
            return (*positional, _KW, *kwargs.items(), *map(type, positional), *map(type, values))
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
        if entry is _FAILED:
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

    max_lease_rounds = 8

    def notice(self, conn: _connection.RedisConnection, l2_key: str) -> str:
        return invalidation_message(conn.bus.origin, l2_key)

    def info(self) -> CacheInfo:
        size = len(self.l1) if self.l1 is not None else 0
        errors = self.errors + self.stats.decode_errors  # failures and unreadable entries
        return CacheInfo(self.l1_hits, self.stats.hits, self.stats.misses, errors, size)

    def forget_local(self, l2_key: str) -> int:
        return self.l1.drop(l2_key) if self.l1 is not None else 0


class Cached(Generic[P, R]):
    """A cached sync function: call it as the function; ``invalidate`` with the same arguments."""

    def __init__(self, fn: Callable[P, R], memo: _Memo) -> None:
        self.__wrapped__ = fn
        self._memo = memo
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "cached")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = fn.__module__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        memo = self._memo
        call_key = None
        if memo.fast_keys:
            call_key = memo.call_key(args, kwargs)
            store = memo.l1
            if store is not None:
                try:
                    with store.lock:
                        entry = store.cache[call_key]
                    memo.l1_hits += 1
                    return entry[0]  # type: ignore[no-any-return]
                except KeyError:
                    pass
                except TypeError:  # unhashable arguments: found by their L2 key instead
                    call_key = None
        return self._load(args, kwargs, call_key)

    def _load(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_key: Any) -> R:
        memo = self._memo
        conn = memo.bind() if memo.l2 else None
        l2_key = memo.l2_key(args, kwargs, call_key)
        found, value = memo.recall(call_key, l2_key)
        if found:
            return value  # type: ignore[no-any-return]
        seen = memo.seen()
        if conn is not None:
            loaded = conn.sync_driver.run(
                load_entry(l2_key, memo.codec, memo.stats), _FAILED, False
            )
            if loaded is _FAILED:
                conn = None  # Redis is failing: one timeout per call at most, no write attempt
            else:
                entry = memo.fresh(loaded)
                if entry is not None:
                    return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        with memo.flights_lock:
            flight = memo.flights.get(l2_key)
            leader = flight is None
            if flight is None:
                flight = memo.flights[l2_key] = _Flight()
        if not leader:
            return flight.wait()  # type: ignore[no-any-return]
        try:
            flight.value = self._miss(args, kwargs, call_key, l2_key, conn, seen)
            return flight.value  # type: ignore[no-any-return]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with memo.flights_lock:
                memo.flights.pop(l2_key, None)
            flight.finish()

    def _serve(
        self,
        entry: Envelope,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection,
        seen: int,
    ) -> R:
        memo = self._memo
        memo.stats.hits += 1
        if not memo.is_stale(entry):
            memo.remember(call_key, l2_key, entry.value, entry.expires_at, seen)
        elif memo.claim_refresh(l2_key):
            refresh = (args, kwargs, call_key, l2_key, conn)
            worker = threading.Thread(target=self._refresh, args=refresh, daemon=True)
            memo.background.add(worker)
            worker.start()
        return entry.value  # type: ignore[no-any-return]

    def _miss(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
        seen: int,
    ) -> R:
        """The single computation for a missed key (after a lease wait, when ``lock``)."""
        memo = self._memo
        found, value = memo.recall(call_key, l2_key)  # a flight that just ended left it here
        if found:
            return value  # type: ignore[no-any-return]
        if memo.l1 is None and conn is not None:  # without L1, it left it in Redis
            flow = load_entry(l2_key, memo.codec, memo.stats)
            entry = memo.fresh(conn.sync_driver.run(flow, None, False))
            if entry is not None:
                return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        token = None
        if conn is not None and memo.lock:
            entry, token = self._lease(conn, l2_key)
            if entry is not None:
                return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        memo.stats.misses += 1
        try:
            return self._compute(args, kwargs, call_key, l2_key, conn, seen)
        finally:
            if conn is not None and token is not None:
                release = release_lease(l2_key, token, conn.bus.channel, memo.notice(conn, l2_key))
                conn.sync_driver.run(release, False, strict=False)

    def _compute(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
        seen: int,
    ) -> R:
        memo = self._memo
        started = time.perf_counter()
        value = self.__wrapped__(*args, **kwargs)
        if memo.cacheable(value):
            ttl, expires_at, data = memo.prepare(conn, value, time.perf_counter() - started)
            if conn is not None and data is not None:
                bus = conn.bus
                store = store_entry(
                    l2_key, data, ttl, bus.channel, memo.notice(conn, l2_key), bus.own_listeners
                )
                if not conn.sync_driver.run(store, False, strict=False):
                    memo.errors += 1
            memo.remember(call_key, l2_key, value, expires_at, seen)
        return value

    def _refresh(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
    ) -> None:
        try:
            self._compute(args, kwargs, call_key, l2_key, conn, self._memo.seen())
        except Exception:
            logger.exception("%s: background refresh failed", self._memo.keyer.namespace)
        finally:
            self._memo.refreshed(l2_key)
            self._memo.background.discard(threading.current_thread())

    def _lease(
        self, conn: _connection.RedisConnection, l2_key: str
    ) -> tuple[Envelope | None, str | None]:
        """Wait for another process's computation, or take the lease: ``(entry, token)``."""
        memo = self._memo
        bus = conn.bus
        if not bus.subscribed.wait(conn.settings.connect_timeout):
            return None, None  # no listener to be woken by: compute here
        landed = threading.Event()
        unwatch = bus.watch(lambda key: landed.set() if key == l2_key else None)
        try:
            for _ in range(memo.max_lease_rounds):
                token = uuid.uuid4().hex
                flow = claim_lease(l2_key, token, memo.lease_ms, memo.codec, memo.stats)
                claim = conn.sync_driver.run(flow, None, strict=False)
                if claim is None:
                    return None, None
                if claim.acquired and claim.entry is not None:  # it landed as we claimed
                    release = release_lease(l2_key, token, bus.channel, memo.notice(conn, l2_key))
                    conn.sync_driver.run(release, False, strict=False)
                    return claim.entry, None
                if claim.acquired or claim.entry is not None:
                    return claim.entry, token if claim.acquired else None
                memo.lease_waits += 1
                # Woken by the holder's announcement; else its lease ran out (it died).
                landed.wait(claim.lease_ms / 1000 + LEASE_GRACE)
                landed.clear()
            return None, None
        finally:
            unwatch()

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process."""
        memo = self._memo
        conn = memo.bind() if memo.l2 else None
        call_key = memo.call_key(args, kwargs) if memo.fast_keys else None
        l2_key = memo.l2_key(args, kwargs, call_key)
        dropped = memo.forget_local(l2_key) > 0
        if conn is None:
            return dropped
        bus = conn.bus
        message = invalidation_message(bus.origin, l2_key)
        flow = invalidate_entry(l2_key, bus.channel, message, bus.own_listeners)
        return conn.sync_driver.run(flow, False, strict=False) or dropped

    def cache_info(self) -> CacheInfo:
        """L1 hits, L2 hits, misses, errors and the L1 size."""
        return self._memo.info()

    def cache_clear(self) -> None:
        """Drop this function's L1 entries (L2 is untouched)."""
        if self._memo.l1 is not None:
            self._memo.l1.clear()

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Cached[P, R]: ...
    @overload
    def __get__(
        self: Cached[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> Cached[P2, R]: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else _BoundCached(self, instance)


class _BoundCached:
    """A cached method bound to its instance."""

    __slots__ = ("_cached", "_instance")

    def __init__(self, cached: Any, instance: Any) -> None:
        self._cached = cached
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached(self._instance, *args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        return self._cached.invalidate(self._instance, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cached, name)


class AsyncCached(Generic[P, R]):
    """A cached coroutine function: await it as the function; ``invalidate`` is awaitable."""

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, R]], memo: _Memo) -> None:
        self.__wrapped__ = fn
        self._memo = memo
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "cached")
        self.__qualname__ = getattr(fn, "__qualname__", self.__name__)
        self.__module__ = fn.__module__

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        memo = self._memo
        call_key = None
        if memo.fast_keys:
            call_key = memo.call_key(args, kwargs)
            store = memo.l1
            if store is not None:
                try:
                    with store.lock:
                        entry = store.cache[call_key]
                    memo.l1_hits += 1
                    return entry[0]  # type: ignore[no-any-return]
                except KeyError:
                    pass
                except TypeError:
                    call_key = None
        return await self._load(args, kwargs, call_key)

    async def _load(self, args: tuple[Any, ...], kwargs: dict[str, Any], call_key: Any) -> R:
        memo = self._memo
        conn = memo.bind() if memo.l2 else None
        l2_key = memo.l2_key(args, kwargs, call_key)
        found, value = memo.recall(call_key, l2_key)
        if found:
            return value  # type: ignore[no-any-return]
        seen = memo.seen()
        if conn is not None:
            flow = load_entry(l2_key, memo.codec, memo.stats)
            loaded = await conn.async_driver.run(flow, _FAILED, False)
            if loaded is _FAILED:
                conn = None  # Redis is failing: one timeout per call at most, no write attempt
            else:
                entry = memo.fresh(loaded)
                if entry is not None:
                    return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        loop = asyncio.get_running_loop()
        task = memo.tasks.get(l2_key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._miss(args, kwargs, call_key, l2_key, conn, seen))
            memo.tasks[l2_key] = task
            task.add_done_callback(lambda done: _settle(memo.tasks, l2_key, done))
        # The computation is a task of its own: cancelling one caller cancels only its wait.
        return await asyncio.shield(task)

    def _serve(
        self,
        entry: Envelope,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection,
        seen: int,
    ) -> R:
        memo = self._memo
        memo.stats.hits += 1
        if not memo.is_stale(entry):
            memo.remember(call_key, l2_key, entry.value, entry.expires_at, seen)
        elif memo.claim_refresh(l2_key):
            refresh = self._refresh(args, kwargs, call_key, l2_key, conn)
            task = asyncio.get_running_loop().create_task(refresh)
            memo.background.add(task)
            task.add_done_callback(memo.background.discard)
        return entry.value  # type: ignore[no-any-return]

    async def _miss(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
        seen: int,
    ) -> R:
        """The single computation for a missed key (after a lease wait, when ``lock``)."""
        memo = self._memo
        found, value = memo.recall(call_key, l2_key)  # a task that just ended left it here
        if found:
            return value  # type: ignore[no-any-return]
        if memo.l1 is None and conn is not None:  # without L1, it left it in Redis
            flow = load_entry(l2_key, memo.codec, memo.stats)
            entry = memo.fresh(await conn.async_driver.run(flow, None, False))
            if entry is not None:
                return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        token = None
        if conn is not None and memo.lock:
            entry, token = await self._lease(conn, l2_key)
            if entry is not None:
                return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        memo.stats.misses += 1
        try:
            return await self._compute(args, kwargs, call_key, l2_key, conn, seen)
        finally:
            if conn is not None and token is not None:
                release = release_lease(l2_key, token, conn.bus.channel, memo.notice(conn, l2_key))
                await conn.async_driver.run(release, False, strict=False)

    async def _compute(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
        seen: int,
    ) -> R:
        memo = self._memo
        started = time.perf_counter()
        value = await self.__wrapped__(*args, **kwargs)
        if memo.cacheable(value):
            ttl, expires_at, data = memo.prepare(conn, value, time.perf_counter() - started)
            if conn is not None and data is not None:
                bus = conn.bus
                store = store_entry(
                    l2_key, data, ttl, bus.channel, memo.notice(conn, l2_key), bus.own_listeners
                )
                if not await conn.async_driver.run(store, False, strict=False):
                    memo.errors += 1
            memo.remember(call_key, l2_key, value, expires_at, seen)
        return value

    async def _refresh(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call_key: Any,
        l2_key: str,
        conn: _connection.RedisConnection | None,
    ) -> None:
        try:
            await self._compute(args, kwargs, call_key, l2_key, conn, self._memo.seen())
        except Exception:
            logger.exception("%s: background refresh failed", self._memo.keyer.namespace)
        finally:
            self._memo.refreshed(l2_key)

    async def _lease(
        self, conn: _connection.RedisConnection, l2_key: str
    ) -> tuple[Envelope | None, str | None]:
        """Wait for another process's computation, or take the lease: ``(entry, token)``."""
        memo = self._memo
        bus = conn.bus
        loop = asyncio.get_running_loop()
        if not bus.subscribed.is_set() and not await loop.run_in_executor(
            None, bus.subscribed.wait, conn.settings.connect_timeout
        ):
            return None, None
        landed = asyncio.Event()

        def announced(key: str) -> None:  # runs on the listener thread
            if key == l2_key:
                loop.call_soon_threadsafe(landed.set)

        unwatch = bus.watch(announced)
        try:
            for _ in range(memo.max_lease_rounds):
                token = uuid.uuid4().hex
                flow = claim_lease(l2_key, token, memo.lease_ms, memo.codec, memo.stats)
                claim = await conn.async_driver.run(flow, None, strict=False)
                if claim is None:
                    return None, None
                if claim.acquired and claim.entry is not None:  # it landed as we claimed
                    release = release_lease(l2_key, token, bus.channel, memo.notice(conn, l2_key))
                    await conn.async_driver.run(release, False, strict=False)
                    return claim.entry, None
                if claim.acquired or claim.entry is not None:
                    return claim.entry, token if claim.acquired else None
                memo.lease_waits += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(landed.wait(), claim.lease_ms / 1000 + LEASE_GRACE)
                landed.clear()
            return None, None
        finally:
            unwatch()

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process."""
        memo = self._memo
        conn = memo.bind() if memo.l2 else None
        call_key = memo.call_key(args, kwargs) if memo.fast_keys else None
        l2_key = memo.l2_key(args, kwargs, call_key)
        dropped = memo.forget_local(l2_key) > 0
        if conn is None:
            return dropped
        bus = conn.bus
        message = invalidation_message(bus.origin, l2_key)
        flow = invalidate_entry(l2_key, bus.channel, message, bus.own_listeners)
        return await conn.async_driver.run(flow, False, strict=False) or dropped

    def cache_info(self) -> CacheInfo:
        """L1 hits, L2 hits, misses, errors and the L1 size."""
        return self._memo.info()

    def cache_clear(self) -> None:
        """Drop this function's L1 entries (L2 is untouched)."""
        if self._memo.l1 is not None:
            self._memo.l1.clear()

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> AsyncCached[P, R]: ...
    @overload
    def __get__(
        self: AsyncCached[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> AsyncCached[P2, R]: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else _BoundCached(self, instance)


def _settle(tasks: dict[str, asyncio.Task[Any]], key: str, task: asyncio.Task[Any]) -> None:
    if tasks.get(key) is task:
        del tasks[key]
    if not task.cancelled():
        task.exception()  # retrieved: every caller may have been cancelled meanwhile


class CachedDecorator(Protocol):
    """What ``cached(...)`` returns: sync functions stay sync, coroutine functions stay async."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncCached[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Cached[P, R]: ...


def cached(
    ttl: int | TTL | None = None,
    *,
    key: type[KeySchema] | Callable[..., str] | None = None,
    namespace: str | None = None,
    exclude: Collection[str] = (),
    l1: bool = True,
    l2: bool = True,
    l1_maxsize: int = 1024,
    l1_ttl: float | None = None,
    cache_none: bool = False,
    condition: Callable[[Any], bool] | None = None,
    jitter: float = 0.0,
    early_refresh: float = 0.0,
    lock: bool = False,
    lock_ttl: int | None = None,
    stale_while_revalidate: int = 0,
    connection: _connection.RedisConnection | None = None,
) -> CachedDecorator:
    """Cache a sync or async function in an in-process L1 over Redis L2.

    Args:
        ttl: seconds, or a TTL row (default: ``TTL.DEFAULT``, i.e. ``RESPONSE_CACHE_TTL``).
        key: a key schema whose fields are taken from the arguments, or a function of the
            arguments returning the key; default: the qualified name and the bound arguments.
        namespace: replaces the qualified name in default keys (keep keys stable across renames).
        exclude: parameters left out of the key (e.g. an injected database session).
        l1, l2: enable the in-process and the Redis level (at least one).
        l1_maxsize, l1_ttl: L1 capacity, and a cap on how long L1 keeps an entry.
        cache_none: also cache ``None`` results.
        condition: cache a result only if ``condition(result)`` is true.
        jitter: shorten each TTL by a random fraction up to this, so entries written together
            do not expire together.
        early_refresh: XFetch beta (0: off; 1: the paper's default): hot entries are recomputed
            shortly before they expire, the more likely the slower they are to compute.
        lock: on an L2 miss, take a short lease in Redis so that one process computes while
            the others wait and are woken when the value lands (no polling); if the holder
            dies, its lease expires and a waiter takes over.
        lock_ttl: the lease in seconds (default: the "temporary locks" row, 30 s).
        stale_while_revalidate: keep entries this many seconds past their TTL; a call in
            that time gets the stale value at once while one background refresh runs.
        connection: default: the one ``init_redis()`` sets up, resolved at the first call.

    Raises:
        ConfigurationError: an option or a key schema does not fit the function.
    """

    def decorate(fn: Any) -> Any:
        wrapper: type[Cached[Any, Any]] | type[AsyncCached[Any, Any]]
        inner = fn.__func__ if isinstance(fn, classmethod | staticmethod) else fn
        memo = _Memo(
            inner,
            ttl=ttl,
            key=key,
            namespace=namespace,
            exclude=exclude,
            l1=l1,
            l2=l2,
            l1_maxsize=l1_maxsize,
            l1_ttl=l1_ttl,
            cache_none=cache_none,
            condition=condition,
            jitter=jitter,
            early_refresh=early_refresh,
            lock=lock,
            lock_ttl=lock_ttl,
            stale_while_revalidate=stale_while_revalidate,
            connection=connection,
        )
        wrapper = AsyncCached if inspect.iscoroutinefunction(inner) else Cached
        result: Any = wrapper(inner, memo)
        return type(fn)(result) if isinstance(fn, classmethod | staticmethod) else result

    return decorate
