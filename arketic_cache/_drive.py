"""The two drivers: the only code that runs flows against Redis, and their failure policy.

A driver runs a flow, maps redis-py exceptions to ours (here and nowhere else), feeds the
circuit breaker, counts and logs failures once per burst, and either returns the caller's
fallback (the spec's degraded answer) or, in strict mode, raises. The sockets themselves
(connections, readiness checks, RESP) are ``_wire.py``'s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import weakref
from typing import Any, Protocol, TypeVar, cast

import redis
import redis.asyncio
from redis.exceptions import (
    ClusterDownError,
    MaxConnectionsError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

from ._breaker import CircuitBreaker
from ._core._effects import Batch, Effect, Flow, keys_of
from ._exceptions import (
    BackendError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    PoolExhausted,
)
from ._wire import (
    AsyncConnection,
    Callbacks,
    SyncConnection,
    aexecute,
    aready,
    execute,
    new_connection,
    ready,
    tolerates,
)

__all__ = [
    "FAILURE_KINDS",
    "REDIS_ERRORS",
    "AsyncDriver",
    "BackendState",
    "Skipped",
    "SyncDriver",
    "Tracing",
    "error_code",
    "kind_of",
    "map_error",
    "set_tracing",
]

T = TypeVar("T")


logger = logging.getLogger("arketic_cache")


class Skipped(Exception):
    """Raised inside a flow's run when its call is kept from Redis (a cluster node's open
    breaker): the run short-circuits."""


#: What a Redis call can raise. RedisClusterException is not a RedisError; OSError covers
#: socket errors that escape redis-py and asyncio's TimeoutError.
REDIS_ERRORS = (redis.RedisError, RedisClusterException, OSError)


#: The kinds of failure counted apart (``BackendState.failures``, the metrics' ``kind`` label).
FAILURE_KINDS = ("timeout", "unavailable", "response", "pool_exhausted", "wrong_type")


def kind_of(error: BackendError) -> str:
    """The failure kind of ``error``: one of ``FAILURE_KINDS``, or ``circuit_open``."""
    if isinstance(error, PoolExhausted):
        return "pool_exhausted"
    if isinstance(error, BackendTimeout):
        return "timeout"
    if isinstance(error, CircuitOpen):
        return "circuit_open"
    if isinstance(error, BackendUnavailable):
        return "unavailable"
    return "wrong_type" if error_code(error) == "WRONGTYPE" else "response"


def error_code(error: BackendError) -> str:
    """The Redis error prefix of a server's error reply (``WRONGTYPE``, ``NOSCRIPT``, ``ERR``)."""
    return str(error).partition(": ")[2].split(" ", 1)[0]  # map_error's "Type: message"


class BackendState:
    """What a connection's sync and async drivers share: the breaker and the failure counters."""

    __slots__ = (
        "breaker",
        "breaker_opens",
        "endpoint",
        "epoch",
        "failing",
        "failures",
        "last_failure",
        "last_kind",
        "pool_size",
        "pool_timeout",
        "pool_waits",
        "secrets",
        "short_circuits",
        "skipping",
        "tls_hint",
        "wrong_type_keys",
    )

    def __init__(
        self,
        breaker: CircuitBreaker,
        secrets: tuple[str, ...] = (),
        *,
        pool_size: int = 20,
        pool_timeout: float = 0.5,
        tls_hint: bool = False,
        endpoint: tuple[str, int | None, str] = ("localhost", 6379, "0"),
    ) -> None:
        self.breaker = breaker
        #: Bumped when the server behind the URL changes (a sentinel's +switch-master): the
        #: drivers then disconnect every connection made before, so none writes to the old one.
        self.epoch = 0
        #: (address, port, database index): what tracing reports as the server.
        self.endpoint = endpoint
        #: A plain redis:// TCP URL: a reset connection may be a TLS port (hint at rediss://).
        self.tls_hint = tls_hint
        self.secrets = tuple(s for s in secrets if s)
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        #: Failed calls by kind (``FAILURE_KINDS``): every other failure count derives from it.
        self.failures = dict.fromkeys(FAILURE_KINDS, 0)
        #: The kind of the last failed or short-circuited call (what a degraded answer was for).
        self.last_kind: str | None = None
        self.short_circuits = 0
        self.breaker_opens = 0
        self.pool_waits = 0  # calls that found every connection busy and queued for one
        self.failing = False
        self.skipping = False  # the breaker's opening was logged for this burst
        #: The keys a WRONGTYPE was already logged for (each once).
        self.wrong_type_keys: set[str] = set()
        #: The last transport failure: what a ``CircuitOpen`` reports as its cause.
        self.last_failure: BackendError | None = None

    @property
    def errors(self) -> int:
        """Failed calls, WRONGTYPE aside (a misconfiguration, not an outage)."""
        failures = self.failures
        return sum(failures.values()) - failures["wrong_type"]

    @property
    def pool_exhausted(self) -> int:
        """Calls that found no free connection in time."""
        return self.failures["pool_exhausted"]

    @property
    def wrong_type(self) -> int:
        """Calls refused with WRONGTYPE: a key holding another type than the call uses."""
        return self.failures["wrong_type"]

    def redact(self, text: str) -> str:
        """Remove every known secret from ``text``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def counters(self) -> dict[str, Any]:
        """Failure counters and breaker state, for ``get_info()``."""
        return {
            "errors": self.errors,
            "short_circuits": self.short_circuits,
            "pool_exhausted": self.pool_exhausted,
            "wrong_type_errors": self.wrong_type,
            "breaker": self.breaker.state,
        }


#: Failures that mean "not now" rather than "no": the server is gone, or is not (yet) the
#: one to ask (a demoted primary answering READONLY, a cluster between owners of a slot).
_UNAVAILABLE = (
    redis.ConnectionError,
    RedisClusterException,
    OSError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
)


def map_error(exc: BaseException, state: BackendState) -> BackendError:
    """Translate a redis-py or socket exception into our hierarchy, with secrets removed."""
    message = state.redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, MaxConnectionsError):
        return PoolExhausted(message)
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return BackendTimeout(message)
    if isinstance(exc, _UNAVAILABLE):
        if state.tls_hint and "reset by peer" in message:
            message += " (if this port speaks TLS, use a rediss:// URL)"
        return BackendUnavailable(message)
    return BackendResponseError(message)


class Tracing(Protocol):
    """What ``arketic_cache.otel`` installs: it wraps each flow a driver runs."""

    def wrap(self, flow: Flow[T], state: BackendState) -> Flow[T]:
        """``flow``, observed (a flow wrapped this way may be told ``failed(error)``)."""
        ...


#: The installed tracing, if any: the drivers' only cost when it is off is this check.
_tracing: Tracing | None = None


def set_tracing(tracing: Tracing | None) -> None:
    """Trace every flow every driver runs from now on (None: stop)."""
    global _tracing
    _tracing = tracing


#: Every driver alive, so that a forked child can drop the sockets it shares with its parent.
_drivers: weakref.WeakSet[_Driver] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for driver in list(_drivers):
        driver._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Driver:
    """Failure handling shared by both drivers; subclasses add only the I/O loop."""

    __slots__ = ("__weakref__", "_epoch", "_made", "_probe", "_stale", "state")

    def __init__(self, state: BackendState) -> None:
        self.state = state
        self._epoch = state.epoch
        self._stale: set[Any] = set()  # connections made before the server changed
        _drivers.add(self)

    _made: list[Any]  # every connection the driver made (set by the subclasses)
    _probe: Any  # the health probe's connection, or None

    def _forget_connections(self) -> None:
        """Drop every connection without closing it (a forked child's are its parent's)."""
        raise NotImplementedError

    def _breaker_of(self, conn: Any, exc: BaseException) -> CircuitBreaker | None:
        """The breaker a failure on ``conn`` counts on (None: the connection's)."""
        return None

    def _renew(self) -> None:
        """The server changed: every connection made so far reconnects before its next use."""
        self._epoch = self.state.epoch
        self._stale = {*self._made, *([self._probe] if self._probe is not None else [])}

    def _record(
        self,
        exc: BaseException,
        effect: Effect | None = None,
        strict: bool = False,
        breaker: CircuitBreaker | None = None,
    ) -> BackendError:
        """Count a failure; ``breaker`` is the one to tell (default: the connection's)."""
        state = self.state
        error = map_error(exc, state)
        breaker = state.breaker if breaker is None else breaker
        opened = False
        if isinstance(error, BackendResponseError):
            breaker.record_success()  # Redis answered: the link itself is fine
            if kind_of(error) == "wrong_type":
                self._wrong_type(error, effect)
                return error
        elif not isinstance(error, PoolExhausted):  # busy, not broken: the breaker is not told
            opened = breaker.record_failure()
            state.last_failure = error
        self._count(error, opened, strict)
        return error

    def _count(self, error: BackendError, opened: bool, strict: bool) -> None:
        state = self.state
        kind = state.last_kind = kind_of(error)
        state.failures[kind] += 1
        if opened:
            state.breaker_opens += 1
        announce = opened and not state.skipping
        if not state.failing or announce:
            state.failing = True
            state.skipping = state.skipping or opened
            logger.warning(
                "Redis call failed (%s); %s%s",
                error,
                "raising it (strict)" if strict else "degrading",
                " and skipping Redis for a while" if announce else "",
            )

    def _wrong_type(self, error: BackendError, effect: Effect | None) -> None:
        """Count a WRONGTYPE apart from outages and log it once per key, as an error."""
        state = self.state
        state.failures["wrong_type"] += 1
        state.last_kind = "wrong_type"
        keys = ", ".join(keys_of(effect)) if effect is not None else "?"
        if keys in state.wrong_type_keys:
            return
        if len(state.wrong_type_keys) >= 1024:
            state.wrong_type_keys.clear()
        state.wrong_type_keys.add(keys)
        logger.error(
            "Redis key %s holds another data type than this call uses (%s): a misconfiguration "
            "(two schemas or services share the key), not an outage; calls on it degrade until "
            "the key or the schema is fixed",
            keys,
            error,
        )

    def _tolerated(self, exc: BaseException) -> BackendError:
        # A refused optional command (INFO under an ACL, on fakeredis or managed Redis) is an
        # answer, not a failure. A transport error is a failure like any other: re-raised.
        error = map_error(exc, self.state)
        if not isinstance(error, BackendResponseError):
            raise exc
        logger.debug("optional Redis command refused: %s", error)
        return error

    def _tolerate_all(self, effect: Effect, reply: Any) -> Any:
        """A batch's tolerated error replies as ``BackendError`` objects."""
        if type(effect) is Batch and any(c.errors_as_reply for c in effect.commands):
            return [self._tolerated(r) if isinstance(r, ResponseError) else r for r in reply]
        return reply

    def _failed(
        self,
        exc: BaseException,
        flow: Flow[T],
        fallback: T,
        strict: bool,
        effect: Effect | None,
        breaker: CircuitBreaker | None = None,
    ) -> T:
        error = self._record(exc, effect, strict, breaker)
        failed = getattr(flow, "failed", None)  # a traced flow records why it ended
        if failed is not None:
            failed(error)
        flow.close()
        if strict:
            raise error from exc
        return fallback

    def _exhausted(self, fallback: T, strict: bool) -> T:
        state = self.state
        busy = PoolExhausted(
            f"all {state.pool_size} connections stayed busy for {state.pool_timeout} s"
        )
        self._count(busy, opened=False, strict=strict)
        if strict:
            raise busy
        return fallback

    def _short_circuit(self, fallback: T, strict: bool) -> T:
        self.state.short_circuits += 1
        self.state.last_kind = "circuit_open"
        if strict:
            cause = self.state.last_failure
            why = f"; the last: {cause}" if cause is not None else ""
            raise CircuitOpen(f"circuit breaker open after repeated Redis failures{why}") from cause
        return fallback

    def _succeeded(self) -> None:
        state = self.state
        if state.failing or not state.breaker.is_closed:
            state.breaker.record_success()
            if state.failing:
                state.failing = state.skipping = False
                logger.info("Redis calls succeed again")


class SyncDriver(_Driver):
    """Run flows on a blocking redis-py client.

    The driver keeps its own connections (built from the client's pool settings) and speaks
    to them directly: no per-call pool checkout, retry wrapper or metrics hooks, which cost a
    third of a local round trip in redis-py 8. Clients handed to users keep redis-py's pool.
    """

    __slots__ = (
        "_callbacks",
        "_idle",
        "_pool",
        "_slots",
        "client",
    )

    def __init__(self, client: redis.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        self._pool = client.connection_pool
        self._callbacks: Callbacks = client.response_callbacks
        self._probe: SyncConnection | None = None
        self._made: list[SyncConnection] = []
        self._idle: list[SyncConnection] = []  # most recently used last (list ops are atomic)
        self._slots = self._new_slots()

    def _forget_connections(self) -> None:
        self._made, self._idle, self._slots = [], [], self._new_slots()
        self._probe, self._stale = None, set()

    def _new_slots(self) -> queue.SimpleQueue[None]:
        # One token per connection: a flow holds one connection at a time, so callers wait
        # here (up to pool_timeout). SimpleQueue is C code: taking a free token costs far
        # less than a threading.Semaphore or redis-py's pool.
        slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(self.state.pool_size):
            slots.put(None)
        return slots

    def close(self) -> None:
        """Disconnect every connection the driver made."""
        made, self._made, self._idle = self._made, [], []
        probe, self._probe = self._probe, None
        for conn in made if probe is None else [*made, probe]:
            conn.disconnect()

    def probe(self, flow: Flow[T]) -> T:
        """Run ``flow`` past the breaker and the pool, on a connection of its own (health).

        Bounded by the connection's timeouts; a success closes an open breaker at once.

        Raises:
            BackendError: Redis failed.
        """
        if self._epoch != self.state.epoch:
            self._renew()
        if self._probe is None:
            self._probe = new_connection(self._pool)
        elif self._probe in self._stale:
            self._stale.discard(self._probe)
            self._probe.disconnect()
        if _tracing is not None:
            flow = _tracing.wrap(flow, self.state)
        return self._drive(self._probe, flow, cast(T, None), True)

    def run(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` to its result; on a Redis failure return ``fallback`` or raise if strict."""
        if _tracing is not None:
            flow = _tracing.wrap(flow, self.state)
        breaker = self.state.breaker
        if not breaker.allow():
            flow.close()
            return self._short_circuit(fallback, strict)
        probing = not breaker.is_closed  # this call is the half-open probe
        slots = self._slots
        try:
            slots.get_nowait()
        except queue.Empty:
            self.state.pool_waits += 1
            try:
                slots.get(timeout=self.state.pool_timeout)
            except queue.Empty:
                flow.close()
                return self._exhausted(fallback, strict)
        if not (probing or breaker.is_closed):  # it opened while this call queued
            slots.put(None)
            flow.close()
            return self._short_circuit(fallback, strict)
        try:
            return self._serve(flow, fallback, strict)
        finally:
            slots.put(None)

    def _serve(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run an admitted flow on a connection of the pool."""
        if self._epoch != self.state.epoch:
            self._renew()
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = new_connection(self._pool)
            self._made.append(conn)
        else:
            if self._stale and conn in self._stale:
                self._stale.discard(conn)
                conn.disconnect()  # reconnects to the server the sentinels name now
        try:
            return self._drive(conn, flow, fallback, strict)
        finally:
            idle.append(conn)

    def _drive(self, conn: Any, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` on ``conn`` (a connection; a cluster driver's routing state)."""
        reply: Any = None
        effect: Effect | None = None
        checked = False
        try:
            while True:
                effect = flow.send(reply)
                if not checked:
                    self._ready(conn)
                    checked = True
                try:
                    reply = self._execute(conn, effect)
                except REDIS_ERRORS as exc:
                    if not tolerates(effect):
                        raise
                    reply = self._tolerated(exc)
        except StopIteration as stop:
            self._succeeded()
            return stop.value  # type: ignore[no-any-return]
        except Skipped:
            flow.close()
            return self._short_circuit(fallback, strict)
        except REDIS_ERRORS as exc:
            return self._failed(exc, flow, fallback, strict, effect, self._breaker_of(conn, exc))

    def _ready(self, conn: Any) -> None:
        ready(conn)

    def _execute(self, conn: Any, effect: Effect) -> Any:
        return self._tolerate_all(effect, execute(conn, effect, self._callbacks))


class AsyncDriver(_Driver):
    """Run flows on an asyncio redis-py client, on connections of its own (as SyncDriver)."""

    __slots__ = (
        "_callbacks",
        "_idle",
        "_loop",
        "_pool",
        "_slots",
        "client",
    )

    def __init__(self, client: redis.asyncio.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        self._pool = client.connection_pool
        self._callbacks: Callbacks = client.response_callbacks

        self._made: list[AsyncConnection] = []
        self._idle: list[AsyncConnection] = []
        self._probe: AsyncConnection | None = None
        # redis-py's asyncio BlockingConnectionPool arms a timer and takes a Condition on
        # every checkout (+15% on a GET); this semaphore costs nothing until it is contended.
        self._slots = asyncio.BoundedSemaphore(state.pool_size)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _forget_connections(self) -> None:
        self._made, self._idle, self._probe, self._stale = [], [], None, set()
        self._slots = asyncio.BoundedSemaphore(self.state.pool_size)

    def _move_to(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start afresh on another event loop (``asyncio.run`` twice, a test's own loop).

        Sockets and the slot semaphore belong to the loop they were made on, which may be
        closed by now: the old connections are dropped (a closed loop can no longer close
        them; their sockets close when collected) and new ones are made on this loop.
        """
        old = self._loop
        if old is not None and not old.is_closed() and old.is_running():
            logger.warning("one RedisConnection is used from two running event loops")
        self._forget_connections()
        self._loop = loop

    async def aclose(self) -> None:
        """Disconnect every connection the driver made (on this event loop)."""
        if asyncio.get_running_loop() is not self._loop:
            self._forget_connections()  # made on a loop that can no longer close them
            return
        made, self._made, self._idle = self._made, [], []
        probe, self._probe = self._probe, None
        for conn in made if probe is None else [*made, probe]:
            await conn.disconnect()

    async def probe(self, flow: Flow[T]) -> T:
        """Run ``flow`` past the breaker and the pool, on a connection of its own (health).

        Raises:
            BackendError: Redis failed.
        """
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())
        if self._epoch != self.state.epoch:
            self._renew()
        if self._probe is None:
            self._probe = new_connection(self._pool)
        elif self._probe in self._stale:
            self._stale.discard(self._probe)
            await self._probe.disconnect()
        if _tracing is not None:
            flow = _tracing.wrap(flow, self.state)
        return await self._drive(self._probe, flow, cast(T, None), True)

    async def run(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` to its result; on a Redis failure return ``fallback`` or raise if strict."""
        if _tracing is not None:
            flow = _tracing.wrap(flow, self.state)
        breaker = self.state.breaker
        if not breaker.allow():
            flow.close()
            return self._short_circuit(fallback, strict)
        probing = not breaker.is_closed  # this call is the half-open probe
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())
        slots = self._slots
        if slots.locked():
            self.state.pool_waits += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.state.pool_timeout)
            except TimeoutError:
                flow.close()
                return self._exhausted(fallback, strict)
            if not (probing or breaker.is_closed):  # it opened while this call queued
                slots.release()
                flow.close()
                return self._short_circuit(fallback, strict)
        else:
            await slots.acquire()  # free: returns at once
        try:
            return await self._serve(flow, fallback, strict)
        finally:
            slots.release()

    async def _serve(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run an admitted flow on a connection of the pool."""
        if self._epoch != self.state.epoch:
            self._renew()
        idle = self._idle
        if idle:
            conn = idle.pop()
            if self._stale and conn in self._stale:
                self._stale.discard(conn)
                await conn.disconnect()  # reconnects to the server the sentinels name now
        else:
            conn = new_connection(self._pool)
            self._made.append(conn)
        try:
            return await self._drive(conn, flow, fallback, strict)
        finally:
            idle.append(conn)

    async def _drive(self, conn: Any, flow: Flow[T], fallback: T, strict: bool) -> T:
        """As ``SyncDriver._drive``."""
        reply: Any = None
        effect: Effect | None = None
        checked = False
        try:
            while True:
                effect = flow.send(reply)
                if not checked:
                    await self._ready(conn)
                    checked = True
                try:
                    reply = await self._execute(conn, effect)
                except REDIS_ERRORS as exc:
                    if not tolerates(effect):
                        raise
                    reply = self._tolerated(exc)
        except StopIteration as stop:
            self._succeeded()
            return stop.value  # type: ignore[no-any-return]
        except Skipped:
            flow.close()
            return self._short_circuit(fallback, strict)
        except REDIS_ERRORS as exc:
            return self._failed(exc, flow, fallback, strict, effect, self._breaker_of(conn, exc))

    async def _ready(self, conn: Any) -> None:
        await aready(conn)

    async def _execute(self, conn: Any, effect: Effect) -> Any:
        return self._tolerate_all(effect, await aexecute(conn, effect, self._callbacks))
