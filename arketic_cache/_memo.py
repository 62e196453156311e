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
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Generator
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from . import _connection
from ._core._memo import (
    Envelope,
    load_entry,
)
from ._keys import KeySchema
from ._memo_state import FAILED, CacheInfo, Flight, Memo, Run, Step, Wait, Wrapper
from ._ttl import TTL

__all__ = ["AsyncCached", "CacheInfo", "Cached", "CachedDecorator", "cached"]

logger = logging.getLogger("arketic_cache")

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")


class Cached(Wrapper, Generic[P, R]):
    """A cached sync function: call it as the function; ``invalidate`` with the same arguments."""

    __wrapped__: Callable[P, R]

    def __init__(self, fn: Callable[P, R], memo: Memo) -> None:
        super().__init__(fn, memo)

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
            loaded = conn.sync_driver.run(load_entry(l2_key, memo.codec, memo.stats), FAILED, False)
            if loaded is FAILED:
                conn = None  # Redis is failing: one timeout per call at most, no write attempt
            else:
                entry = memo.fresh(loaded)
                if entry is not None:
                    return self._serve(entry, args, kwargs, call_key, l2_key, conn, seen)
        with memo.flights_lock:
            flight = memo.flights.get(l2_key)
            leader = flight is None
            if flight is None:
                flight = memo.flights[l2_key] = Flight()
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
        if memo.served(entry, call_key, l2_key, seen):
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
        kind, value = _sync_steps(memo.miss(call_key, l2_key, conn), conn, lease=self._lease)
        if kind == "value":
            return value  # type: ignore[no-any-return]
        if kind == "serve" and conn is not None:
            return self._serve(value, args, kwargs, call_key, l2_key, conn, seen)
        try:
            return self._compute(args, kwargs, call_key, l2_key, conn, seen)
        finally:
            if conn is not None and value is not None:  # the lease this process took
                conn.sync_driver.run(memo.release(conn, l2_key, value), False, strict=False)

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
        store = memo.computed(conn, call_key, l2_key, value, time.perf_counter() - started, seen)
        if conn is not None and store is not None and not conn.sync_driver.run(store, False, False):
            memo.errors += 1
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
        bus = conn.bus
        if not bus.subscribed.wait(conn.settings.connect_timeout):
            return None, None  # no listener to be woken by: compute here
        landed = threading.Event()
        unwatch = bus.watch(lambda key: landed.set() if key == l2_key else None)
        try:
            return _sync_steps(self._memo.lease(conn, l2_key), conn, landed=landed)
        finally:
            unwatch()

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process."""
        conn, flow, dropped = self._memo.invalidation(args, kwargs)
        if conn is None or flow is None:
            return dropped
        return conn.sync_driver.run(flow, False, strict=False) or dropped

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


class AsyncCached(Wrapper, Generic[P, R]):
    """A cached coroutine function: await it as the function; ``invalidate`` is awaitable."""

    __wrapped__: Callable[P, Coroutine[Any, Any, R]]

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, R]], memo: Memo) -> None:
        super().__init__(fn, memo)

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
            loaded = await conn.async_driver.run(flow, FAILED, False)
            if loaded is FAILED:
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
        if memo.served(entry, call_key, l2_key, seen):
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
        plan = memo.miss(call_key, l2_key, conn)
        kind, value = await _async_steps(plan, conn, lease=self._lease)
        if kind == "value":
            return value  # type: ignore[no-any-return]
        if kind == "serve" and conn is not None:
            return self._serve(value, args, kwargs, call_key, l2_key, conn, seen)
        try:
            return await self._compute(args, kwargs, call_key, l2_key, conn, seen)
        finally:
            if conn is not None and value is not None:  # the lease this process took
                await conn.async_driver.run(memo.release(conn, l2_key, value), False, strict=False)

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
        store = memo.computed(conn, call_key, l2_key, value, time.perf_counter() - started, seen)
        if conn is not None and store is not None:
            stored = await conn.async_driver.run(store, False, strict=False)
            if not stored:
                memo.errors += 1
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
            return await _async_steps(self._memo.lease(conn, l2_key), conn, landed=landed)
        finally:
            unwatch()

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process."""
        conn, flow, dropped = self._memo.invalidation(args, kwargs)
        if conn is None or flow is None:
            return dropped
        return await conn.async_driver.run(flow, False, strict=False) or dropped

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> AsyncCached[P, R]: ...
    @overload
    def __get__(
        self: AsyncCached[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> AsyncCached[P2, R]: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else _BoundCached(self, instance)


def _sync_steps(
    plan: Generator[Step, Any, T],
    conn: _connection.RedisConnection | None,
    *,
    lease: Callable[[_connection.RedisConnection, str], Any] | None = None,
    landed: threading.Event | None = None,
) -> T:
    """Carry out a miss or lease plan's steps on the blocking driver."""
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        assert conn is not None  # a plan without a connection takes no step
        if isinstance(step, Run):
            reply = conn.sync_driver.run(step.flow, step.fallback, strict=False)
        elif isinstance(step, Wait):
            assert landed is not None
            landed.wait(step.seconds)
            landed.clear()
            reply = None
        else:
            assert lease is not None
            reply = lease(conn, step.l2_key)


async def _async_steps(
    plan: Generator[Step, Any, T],
    conn: _connection.RedisConnection | None,
    *,
    lease: Callable[[_connection.RedisConnection, str], Awaitable[Any]] | None = None,
    landed: asyncio.Event | None = None,
) -> T:
    """Carry out a miss or lease plan's steps on the asyncio driver."""
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        assert conn is not None  # a plan without a connection takes no step
        if isinstance(step, Run):
            reply = await conn.async_driver.run(step.flow, step.fallback, strict=False)
        elif isinstance(step, Wait):
            assert landed is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(landed.wait(), step.seconds)
            landed.clear()
            reply = None
        else:
            assert lease is not None
            reply = await lease(conn, step.l2_key)


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
        memo = Memo(
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
