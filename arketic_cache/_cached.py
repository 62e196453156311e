"""``@cached``: one decorator for sync and async functions, an L1 in process over Redis L2.

* L1 is looked up with the call's own argument tuple: a hit builds no Redis key, no generator
  and no model, and takes no lock. An L1 entry never outlives its L2 copy.
* L2 keys come from the bound arguments (defaults applied), a key schema or a key function.
  Values go through the return annotation as JSON.
* Concurrent callers missing the same key share one computation (threads or tasks); a
  cancelled first caller does not cancel the others.
* Any client's write, delete, expiry or flush of a cached key evicts L1 copies in every process
  (``_invalidation.py``).
* Redis failures never reach the caller: the function's own result is returned.

Everything past the L1 hit is a plan in ``_cached_state.py``, written once; this module holds
the two hot paths and the two small interpreters that carry a plan's steps out.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Collection, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast, overload

from . import _connection
from ._cached_state import CachedState, CacheInfo
from ._cached_steps import Block, Compute, Join, NewSignal, Plan, Run, Spawn, Wait
from ._keys import KeySchema
from ._primitives import AsyncSignal, Signal, aspawn, spawn
from ._shell import check_connection, check_flag
from ._ttl import TTL

__all__ = ["AsyncCached", "CacheInfo", "Cached", "CachedDecorator", "cached"]

P = ParamSpec("P")
P2 = ParamSpec("P2")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
S = TypeVar("S")


class _Control(Protocol):
    """What both kinds of cached function offer besides the call."""

    _state: CachedState

    def cache_info(self) -> CacheInfo:
        """L1 hits, L2 hits, misses, errors, the L1 size and the coherence mode."""
        ...

    def cache_clear(self) -> None:
        """Drop this function's L1 entries (L2 is untouched)."""
        ...


class Cached(_Control, Protocol[P, R_co]):
    """A cached sync function: call it as the function; ``invalidate`` with the same arguments."""

    @property
    def __wrapped__(self) -> Callable[P, R_co]: ...
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry from L1 and L2, in every process; False if none or Redis unreached."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Cached[P, R_co]: ...
    @overload
    def __get__(
        self: Cached[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> Cached[P2, R]: ...


class AsyncCached(_Control, Protocol[P, R_co]):
    """A cached coroutine function: await it as the function; ``invalidate`` is awaitable."""

    @property
    def __wrapped__(self) -> Callable[P, Coroutine[Any, Any, R_co]]: ...
    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...
    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Drop the entry from L1 and L2, in every process; False if none or Redis unreached."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> AsyncCached[P, R_co]: ...
    @overload
    def __get__(
        self: AsyncCached[Concatenate[S, P2], R], instance: S, owner: type[Any]
    ) -> AsyncCached[P2, R]: ...


# -- the hot paths --------------------------------------------------------------------------------
# One source for both flavours, specialised per option set when a function is decorated (as
# dataclasses builds its methods): a shared helper on the hit path would cost a third of the
# hit. `key` is the call key of ``_core._cached.call_key`` for a call without keywords.
_HOT = """
def build(data, monotonic, state, stats, load, drive):
    {async_}def wrapper(*args, **kwargs):
        if not kwargs:
            try:
                entry = data[{key}]
            except (KeyError, TypeError):  # a miss, or unhashable arguments
                pass
            else:
                if entry[1] > monotonic():
                    stats.l1_hits += 1
                    return entry[0]
        return {await_}drive(load(args, kwargs), state)
    return wrapper
"""
_COLD = """
def build(data, monotonic, state, stats, load, drive):
    {async_}def wrapper(*args, **kwargs):
        return {await_}drive(load(args, kwargs), state)
    return wrapper
"""
_KEYS = {
    0: "(args[0], type(args[0])) if len(args) == 1 else (*args, *map(type, args))",
    1: "(args[1], type(args[1])) if len(args) == 2 else (*args[1:], *map(type, args[1:]))",
}
_built: dict[tuple[bool, bool, int], Callable[..., Callable[..., Any]]] = {}


def _builder(is_async: bool, hot: bool, skip: int) -> Callable[..., Callable[..., Any]]:
    option = (is_async, hot, skip)
    if option not in _built:
        source = (_HOT if hot else _COLD).format(
            async_="async " if is_async else "",
            await_="await " if is_async else "",
            key=_KEYS[skip],
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<cached wrapper {option}>", "exec"), namespace)
        _built[option] = namespace["build"]
    return _built[option]


# -- the interpreters -----------------------------------------------------------------------------
class _Stepper:
    """Walks a plan: hands out its steps, sends each reply or throws each error back in."""

    __slots__ = ("error", "plan", "reply")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.reply: Any = None
        self.error: BaseException | None = None

    def __iter__(self) -> _Stepper:
        return self

    def __next__(self) -> Any:
        error, self.error = self.error, None
        try:
            return self.plan.throw(error) if error is not None else self.plan.send(self.reply)
        except StopIteration as done:
            self.reply = done.value
            raise StopIteration from None


def _timed_call(fn: Callable[..., Any], step: Compute) -> tuple[Any, float]:
    started = time.perf_counter()
    return fn(*step.args, **step.kwargs), time.perf_counter() - started


async def _timed_await(fn: Callable[..., Any], step: Compute) -> tuple[Any, float]:
    started = time.perf_counter()
    return await fn(*step.args, **step.kwargs), time.perf_counter() - started


_SYNC: dict[type, Callable[[Any, CachedState], Any]] = {
    Run: lambda step, state: step.conn.sync_driver.run(step.flow, step.fallback, False),
    Compute: lambda step, state: _timed_call(state.fn, step),
    Join: lambda step, state: state.flights.join(step.key, lambda: drive(step.plan, state)),
    Spawn: lambda step, state: spawn(lambda: drive(step.plan, state), state.background),
    Block: lambda step, state: step.event.wait(step.seconds),
    NewSignal: lambda step, state: Signal(),
    Wait: lambda step, state: step.signal.wait(step.seconds),
}


def drive(plan: Plan, state: CachedState) -> Any:
    """Carry a plan out on this thread."""
    steps = _Stepper(plan)
    for step in steps:
        try:
            steps.reply = _SYNC[type(step)](step, state)
        except BaseException as exc:  # thrown into the plan: its `finally` releases leases
            steps.error = exc
    return steps.reply


async def _arun(step: Run, state: CachedState) -> Any:
    return await step.conn.async_driver.run(step.flow, step.fallback, False)


async def _ajoin(step: Join, state: CachedState) -> Any:
    return await state.aflights.join(step.key, lambda: adrive(step.plan, state))


async def _aspawn(step: Spawn, state: CachedState) -> None:
    aspawn(adrive(step.plan, state), state.background)


async def _ablock(step: Block, state: CachedState) -> bool:
    if step.event.is_set():
        return True
    return await asyncio.get_running_loop().run_in_executor(None, step.event.wait, step.seconds)


async def _asignal(step: NewSignal, state: CachedState) -> AsyncSignal:
    return AsyncSignal()


async def _await(step: Wait, state: CachedState) -> bool:
    return bool(await step.signal.wait(step.seconds))


_ASYNC: dict[type, Callable[[Any, CachedState], Coroutine[Any, Any, Any]]] = {
    Run: _arun,
    Compute: lambda step, state: _timed_await(state.fn, step),
    Join: _ajoin,
    Spawn: _aspawn,
    Block: _ablock,
    NewSignal: _asignal,
    Wait: _await,
}


async def adrive(plan: Plan, state: CachedState) -> Any:
    """Carry a plan out on the running event loop."""
    steps = _Stepper(plan)
    for step in steps:
        try:
            steps.reply = await _ASYNC[type(step)](step, state)
        except BaseException as exc:  # a cancellation too: the plan still releases its lease
            steps.error = exc
    return steps.reply


# -- wrappers -------------------------------------------------------------------------------------
def _wrap(fn: Callable[..., Any], state: CachedState) -> Any:
    """The wrapper for ``fn``: a function (a coroutine function for ``async def``)."""
    is_async = inspect.iscoroutinefunction(fn)
    store = state.l1
    hot = store is not None and state.fast_keys
    build = _builder(is_async, hot, state.skip)
    wrapper: Any = build(
        store.data if store is not None else None,
        time.monotonic,
        state,
        state.stats,
        state.load,
        adrive if is_async else drive,
    )
    functools.update_wrapper(wrapper, fn)

    async def ainvalidate(*args: Any, **kwargs: Any) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process; False if there
        was none, or if Redis was not reached (the entry may still be served elsewhere)."""
        return bool(await adrive(state.invalidation(args, kwargs), state))

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        """Drop the entry for these arguments from L1 and L2, in every process; False if there
        was none, or if Redis was not reached (the entry may still be served elsewhere)."""
        return bool(drive(state.invalidation(args, kwargs), state))

    wrapper.invalidate = ainvalidate if is_async else invalidate
    wrapper.cache_info = state.info
    wrapper.cache_clear = store.clear if store is not None else _nothing
    wrapper._state = state
    return _Method(wrapper) if state.skip else wrapper


def _nothing() -> None:
    """Nothing to clear: this function has no L1."""


class _Bound(functools.partial[Any]):
    """A cached method bound to its instance.

    A ``partial``, so ``inspect.iscoroutinefunction`` still sees the coroutine function.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.func, name)
        if name == "invalidate":
            return functools.partial(attribute, *self.args)
        return attribute


class _Method:
    """A cached method: binds like a function, and binds ``invalidate`` with it."""

    __slots__ = ("__wrapped__", "wrapper")

    def __init__(self, wrapper: Callable[..., Any]) -> None:
        self.wrapper = wrapper
        self.__wrapped__ = wrapper

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self.wrapper if instance is None else _Bound(self.wrapper, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrapper(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapper, name)


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
        l1_maxsize, l1_ttl: L1 capacity (when full, the oldest entry leaves), and a cap on
            how long L1 keeps an entry.
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

    check_connection(connection, "@cached")
    for flag, value in (("l1", l1), ("l2", l2), ("cache_none", cache_none), ("lock", lock)):
        check_flag("@cached", flag, value)

    def decorate(fn: Any) -> Any:
        inner = fn.__func__ if isinstance(fn, classmethod | staticmethod) else fn
        state = CachedState(
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
        wrapper = _wrap(inner, state)
        return type(fn)(wrapper) if isinstance(fn, classmethod | staticmethod) else wrapper

    return cast(CachedDecorator, decorate)
