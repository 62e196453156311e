"""The two drivers: the only code that sends effects to Redis.

A driver runs a flow, maps redis-py exceptions to ours (here and nowhere else), feeds the
circuit breaker, counts and logs failures once per burst, and either returns the caller's
fallback (the spec's degraded answer) or, in strict mode, raises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import select
import socket
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeAlias, TypeVar

import redis
import redis.asyncio
from redis._parsers.socket import SocketBuffer
from redis.exceptions import (
    MaxConnectionsError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
)

from ._breaker import CircuitBreaker
from ._core._effects import Arg, Batch, Command, Effect, Eval, Flow
from ._core._resp import pack_all
from ._exceptions import (
    BackendError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    PoolExhausted,
)

__all__ = ["AsyncDriver", "BackendState", "SyncDriver", "map_error"]

T = TypeVar("T")
#: redis-py's reply parsers by command name (a case-insensitive dict of plain functions).
Callbacks: TypeAlias = Mapping[Any, Callable[[Any], Any]]


class SyncConnection(Protocol):
    """What the sync driver uses of a redis-py connection."""

    def can_read(self, timeout: float = 0) -> bool: ...
    def connect(self) -> None: ...
    def disconnect(self, *args: Any, **kwargs: Any) -> None: ...
    def pack_commands(self, commands: Any) -> list[bytes]: ...
    def send_packed_command(self, command: Any, check_health: bool = True) -> None: ...
    def read_response(self) -> Any: ...


class AsyncConnection(Protocol):
    """What the asyncio driver uses of a redis-py connection."""

    async def can_read(self) -> bool: ...
    async def connect(self) -> None: ...
    async def disconnect(self, nowait: bool = False) -> None: ...
    def pack_commands(self, commands: Any) -> list[bytes]: ...
    async def send_packed_command(self, command: Any, check_health: bool = True) -> None: ...
    async def check_health(self) -> None: ...
    async def read_response(self) -> Any: ...

    socket_timeout: float | None

    @property
    def is_connected(self) -> bool: ...


logger = logging.getLogger("arketic_cache")

#: What a Redis call can raise. RedisClusterException is not a RedisError; OSError covers
#: socket errors that escape redis-py and asyncio's TimeoutError.
REDIS_ERRORS = (redis.RedisError, RedisClusterException, OSError)


class BackendState:
    """What a connection's sync and async drivers share: the breaker and the failure counters."""

    __slots__ = (
        "breaker",
        "errors",
        "failing",
        "pool_exhausted",
        "pool_size",
        "pool_timeout",
        "secrets",
        "short_circuits",
    )

    def __init__(
        self,
        breaker: CircuitBreaker,
        secrets: tuple[str, ...] = (),
        *,
        pool_size: int = 20,
        pool_timeout: float = 0.5,
    ) -> None:
        self.breaker = breaker
        self.secrets = tuple(s for s in secrets if s)
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.errors = 0
        self.short_circuits = 0
        self.pool_exhausted = 0
        self.failing = False

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
            "breaker": self.breaker.state,
        }


def map_error(exc: BaseException, state: BackendState) -> BackendError:
    """Translate a redis-py or socket exception into our hierarchy, with secrets removed."""
    message = state.redact(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, MaxConnectionsError):
        return PoolExhausted(message)
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return BackendTimeout(message)
    if isinstance(exc, redis.ConnectionError | RedisClusterException | OSError):
        return BackendUnavailable(message)
    return BackendResponseError(message)


#: Every driver alive, so that a forked child can drop the sockets it shares with its parent.
_drivers: weakref.WeakSet[_Driver] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for driver in list(_drivers):
        driver._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Driver:
    """Failure handling shared by both drivers; subclasses add only the I/O loop."""

    __slots__ = ("__weakref__", "state")

    def __init__(self, state: BackendState) -> None:
        self.state = state
        _drivers.add(self)

    def _forget_connections(self) -> None:
        """Drop every connection without closing it (a forked child's are its parent's)."""
        raise NotImplementedError

    def _record(self, exc: BaseException) -> BackendError:
        state = self.state
        error = map_error(exc, state)
        opened = False
        if isinstance(error, BackendResponseError):
            state.breaker.record_success()  # Redis answered: the link itself is fine
        elif isinstance(error, PoolExhausted):
            state.pool_exhausted += 1  # busy, not broken: the breaker is not told
        else:
            opened = state.breaker.record_failure()
        self._count(error, opened)
        return error

    def _count(self, error: BackendError, opened: bool) -> None:
        state = self.state
        state.errors += 1
        if not state.failing or opened:
            state.failing = True
            logger.warning(
                "Redis call failed (%s); degrading%s",
                error,
                " and skipping Redis for a while" if opened else "",
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

    def _failed(self, exc: BaseException, fallback: T, strict: bool) -> T:
        error = self._record(exc)
        if strict:
            raise error from exc
        return fallback

    def _exhausted(self, fallback: T, strict: bool) -> T:
        state = self.state
        state.pool_exhausted += 1
        busy = PoolExhausted(
            f"all {state.pool_size} connections stayed busy for {state.pool_timeout} s"
        )
        self._count(busy, opened=False)
        if strict:
            raise busy
        return fallback

    def _short_circuit(self, fallback: T, strict: bool) -> T:
        self.state.short_circuits += 1
        if strict:
            raise CircuitOpen("circuit breaker open after repeated Redis failures")
        return fallback

    def _succeeded(self) -> None:
        state = self.state
        if state.failing or not state.breaker.is_closed:
            state.breaker.record_success()
            if state.failing:
                state.failing = False
                logger.info("Redis calls succeed again")


def _tolerates(effect: Effect) -> bool:
    return type(effect) is Command and effect.errors_as_reply


def _wire(effect: Effect) -> list[tuple[Arg, ...]]:
    """The commands an effect sends, in order (a script goes by SHA)."""
    if type(effect) is Command:
        return [effect.args]
    if type(effect) is Eval:
        keys = effect.keys
        return [("EVALSHA", effect.script.sha, len(keys), *keys, *effect.args)]
    assert type(effect) is Batch
    commands = [command.args for command in effect.commands]
    return [("MULTI",), *commands, ("EXEC",)] if effect.transaction else commands


def _eval_wire(effect: Eval) -> list[tuple[Arg, ...]]:
    keys = effect.keys
    return [("EVAL", effect.script.text, len(keys), *keys, *effect.args)]


def _parsed(args: tuple[Arg, ...], reply: Any, callbacks: Callbacks) -> Any:
    if isinstance(reply, ResponseError):
        raise reply
    name = args[0]
    return callbacks[name](reply) if name in callbacks else reply


def _result(effect: Effect, replies: list[Any], callbacks: Callbacks) -> Any:
    """An effect's reply from what its commands answered, parsed as redis-py parses it.

    Error replies arrive as ``ResponseError`` objects (every reply is read first, so the
    connection stays in step) and the first one is raised, as redis-py's pipelines do.
    """
    if type(effect) is Command:
        return _parsed(effect.args, replies[0], callbacks)
    if type(effect) is Eval:
        if isinstance(replies[0], ResponseError):
            raise replies[0]
        return replies[0]
    assert type(effect) is Batch
    results = replies
    if effect.transaction:
        for reply in replies[:-1]:  # MULTI's OK, then QUEUED or why a command was refused
            if isinstance(reply, ResponseError):
                raise reply
        results = replies[-1]
        if isinstance(results, ResponseError):
            raise results
    return [
        reply  # mapped by the driver (``_tolerate_all``), handed to the flow
        if command.errors_as_reply and isinstance(reply, ResponseError)
        else _parsed(command.args, reply, callbacks)
        for command, reply in zip(effect.commands, results, strict=True)
    ]


class SyncDriver(_Driver):
    """Run flows on a blocking redis-py client.

    The driver keeps its own connections (built from the client's pool settings) and speaks
    to them directly: no per-call pool checkout, retry wrapper or metrics hooks, which cost a
    third of a local round trip in redis-py 8. Clients handed to users keep redis-py's pool.
    """

    __slots__ = ("_callbacks", "_idle", "_made", "_pool", "_slots", "client")

    def __init__(self, client: redis.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        self._pool = client.connection_pool
        self._callbacks: Callbacks = client.response_callbacks
        self._made: list[SyncConnection] = []
        self._idle: list[SyncConnection] = []  # most recently used last (list ops are atomic)
        self._slots = self._new_slots()

    def _forget_connections(self) -> None:
        self._made, self._idle, self._slots = [], [], self._new_slots()

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
        for conn in made:
            conn.disconnect()

    def run(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` to its result; on a Redis failure return ``fallback`` or raise if strict."""
        if not self.state.breaker.allow():
            flow.close()
            return self._short_circuit(fallback, strict)
        slots = self._slots
        try:
            slots.get(timeout=self.state.pool_timeout)
        except queue.Empty:
            flow.close()
            return self._exhausted(fallback, strict)
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            self._made.append(conn)
        try:
            return self._drive(conn, flow, fallback, strict)
        finally:
            idle.append(conn)
            slots.put(None)

    def _drive(self, conn: SyncConnection, flow: Flow[T], fallback: T, strict: bool) -> T:
        reply: Any = None
        checked = False
        try:
            while True:
                effect = flow.send(reply)
                if not checked:
                    _ready(conn)
                    checked = True
                try:
                    reply = self._execute(conn, effect)
                except REDIS_ERRORS as exc:
                    if not _tolerates(effect):
                        raise
                    reply = self._tolerated(exc)
        except StopIteration as stop:
            self._succeeded()
            return stop.value  # type: ignore[no-any-return]
        except REDIS_ERRORS as exc:
            flow.close()
            return self._failed(exc, fallback, strict)

    def _execute(self, conn: SyncConnection, effect: Effect) -> Any:
        try:
            reply = _result(effect, _exchange(conn, _wire(effect)), self._callbacks)
            return self._tolerate_all(effect, reply)
        except NoScriptError:
            if type(effect) is not Eval:
                raise
            return _result(effect, _exchange(conn, _eval_wire(effect)), self._callbacks)


_POLL = getattr(select, "poll", None)


def _idle_data(conn: SyncConnection) -> bool:
    """Whether an idle connection has anything to read (a stray reply, or the server's EOF).

    On a plain socket with redis-py's own parser this is one poll; redis-py's ``can_read``
    switches the socket's timeout twice around a recv (three system calls per request).
    Anything else (TLS, hiredis, not yet connected, fakeredis, no poll) asks ``can_read``.
    """
    sock = getattr(conn, "_sock", None)
    buffer = getattr(getattr(conn, "_parser", None), "_buffer", None)
    if type(sock) is not socket.socket or type(buffer) is not SocketBuffer or _POLL is None:
        return conn.can_read()  # connects first if needed
    if buffer.unread_bytes():
        return True
    poller = _POLL()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _ready(conn: SyncConnection) -> None:
    """Connect if needed; replace a socket the server closed while it sat idle.

    Only a socket that was already open is retried: a connect that fails or times out is
    not tried twice, so a call to a frozen server waits one timeout, not two.
    """
    if getattr(conn, "_sock", None) is None:
        conn.connect()
        return
    try:
        stale = _idle_data(conn)
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        stale = True
    if stale:
        conn.disconnect()
        conn.connect()


def _exchange(conn: SyncConnection, wire: list[tuple[Arg, ...]]) -> list[Any]:
    """Send the commands in one write and read every reply (error replies as objects).

    A transport error or an interruption disconnects the connection (redis-py does this
    inside send and read), so no reply is ever left behind for the next caller.
    """
    packed = pack_all(wire)
    conn.send_packed_command(conn.pack_commands(wire) if packed is None else [packed])
    replies: list[Any] = []
    for _ in wire:
        try:
            replies.append(conn.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


class AsyncDriver(_Driver):
    """Run flows on an asyncio redis-py client, on connections of its own (as SyncDriver)."""

    __slots__ = ("_callbacks", "_idle", "_loop", "_made", "_pool", "_slots", "client")

    def __init__(self, client: redis.asyncio.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        self._pool = client.connection_pool
        self._callbacks: Callbacks = client.response_callbacks
        self._made: list[AsyncConnection] = []
        self._idle: list[AsyncConnection] = []
        # redis-py's asyncio BlockingConnectionPool arms a timer and takes a Condition on
        # every checkout (+15% on a GET); this semaphore costs nothing until it is contended.
        self._slots = asyncio.BoundedSemaphore(state.pool_size)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _forget_connections(self) -> None:
        self._made, self._idle = [], []
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
        for conn in made:
            await conn.disconnect()

    async def run(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` to its result; on a Redis failure return ``fallback`` or raise if strict."""
        if not self.state.breaker.allow():
            flow.close()
            return self._short_circuit(fallback, strict)
        if asyncio.get_running_loop() is not self._loop:
            self._move_to(asyncio.get_running_loop())
        slots = self._slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self.state.pool_timeout)
            except TimeoutError:
                flow.close()
                return self._exhausted(fallback, strict)
        else:
            await slots.acquire()  # free: returns at once
        idle = self._idle
        if idle:
            conn = idle.pop()
        else:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
            self._made.append(conn)
        try:
            return await self._drive(conn, flow, fallback, strict)
        finally:
            idle.append(conn)
            slots.release()

    async def _drive(self, conn: AsyncConnection, flow: Flow[T], fallback: T, strict: bool) -> T:
        reply: Any = None
        checked = False
        try:
            while True:
                effect = flow.send(reply)
                if not checked:
                    await _aready(conn)
                    checked = True
                try:
                    reply = await self._execute(conn, effect)
                except REDIS_ERRORS as exc:
                    if not _tolerates(effect):
                        raise
                    reply = self._tolerated(exc)
        except StopIteration as stop:
            self._succeeded()
            return stop.value  # type: ignore[no-any-return]
        except REDIS_ERRORS as exc:
            flow.close()
            return self._failed(exc, fallback, strict)

    async def _execute(self, conn: AsyncConnection, effect: Effect) -> Any:
        try:
            reply = _result(effect, await _aexchange(conn, _wire(effect)), self._callbacks)
            return self._tolerate_all(effect, reply)
        except NoScriptError:
            if type(effect) is not Eval:
                raise
            return _result(effect, await _aexchange(conn, _eval_wire(effect)), self._callbacks)


async def _aready(conn: AsyncConnection) -> None:
    """As ``_ready``, for an asyncio connection."""
    if not conn.is_connected:
        await conn.connect()
        return
    try:
        stale = await conn.can_read()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        stale = True
    if stale:
        await conn.disconnect()
        await conn.connect()


async def _asend(conn: AsyncConnection, packed: bytes) -> None:
    """Write a request on a connected socket.

    redis-py wraps every write in ``asyncio.wait_for`` (a new task, +15% on a round trip)
    although a small write only lands in the transport's buffer. This waits, within the
    socket timeout, only when the buffer is full; the read that follows has its own timeout.
    """
    await conn.check_health()  # may reconnect: read the writer after it
    writer = getattr(conn, "_writer", None)
    if type(writer) is not asyncio.StreamWriter:  # not a socket (fakeredis): redis-py's path
        await conn.send_packed_command([packed], check_health=False)
        return
    writer.write(packed)
    if not writer.transport.get_write_buffer_size():
        return
    try:
        await asyncio.wait_for(writer.drain(), conn.socket_timeout)
    except BaseException as exc:
        # Part of the request is still buffered: drop it with the socket (a plain close
        # would wait to flush it), so no half command ever reaches the server or is reused.
        writer.transport.abort()
        await conn.disconnect(nowait=True)
        if isinstance(exc, TimeoutError):
            raise redis.TimeoutError("Timeout writing to socket") from None
        if isinstance(exc, OSError):
            raise redis.ConnectionError(f"Error while writing to socket: {exc}") from None
        raise


async def _aexchange(conn: AsyncConnection, wire: list[tuple[Arg, ...]]) -> list[Any]:
    """As ``_exchange``; a cancelled read disconnects too."""
    packed = pack_all(wire)
    if packed is None:
        await conn.send_packed_command(conn.pack_commands(wire))
    else:
        await _asend(conn, packed)
    replies: list[Any] = []
    for _ in wire:
        try:
            replies.append(await conn.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies
