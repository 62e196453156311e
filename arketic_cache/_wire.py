"""The drivers' wire: their own connections, socket checks, and RESP written and read.

Everything here talks to a socket; what to do when that fails (error mapping, breaker,
fallbacks) is ``_drive.py``'s. The drivers bypass redis-py's ``execute_command`` (its pool
checkout, retry wrapper and hooks cost about a third of a local round trip), so this module
leans on a few redis-py internals, listed here; redis-py is pinned below its next major for
them, and each use falls back to redis-py's public path when the internal is not as expected:

* ``redis._parsers.socket.SocketBuffer`` and ``Connection._sock``, ``Connection._parser._buffer``:
  a poll on an idle socket instead of ``can_read``'s three system calls (``_idle_data``);
* ``asyncio Connection._writer``: a write into the transport without a task per request
  (``_asend``);
* ``Connection._parser.set_invalidation_push_handler``: RESP3 invalidation pushes kept as
  frames on a subscriber connection (``keep_push_frames``);
* ``Connection.read_response(push_request=True)``: push frames returned by a read
  (``read_frame``, ``aread_frame``).

One public name differs across the supported redis-py releases: the asyncio connection's
``can_read`` is ``can_read_destructive`` before 8.0 (``aready``).
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeAlias

import redis
import redis.asyncio
from redis._parsers.socket import SocketBuffer
from redis.exceptions import NoScriptError, ResponseError

from ._core._effects import Arg, Batch, Command, Effect, Eval
from ._core._resp import pack_all
from ._core._subscribe import NOTHING

__all__ = [
    "AsyncConnection",
    "Callbacks",
    "SyncConnection",
    "aexecute",
    "aexecute_asking",
    "akeep_push_frames",
    "aread_frame",
    "aready",
    "areceive",
    "asend",
    "execute",
    "execute_asking",
    "keep_push_frames",
    "new_connection",
    "read_frame",
    "ready",
    "receive",
    "send",
    "tolerates",
]

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
    async def can_read_destructive(self) -> bool: ...
    async def connect(self) -> None: ...
    async def disconnect(self, nowait: bool = False) -> None: ...
    def pack_commands(self, commands: Any) -> list[bytes]: ...
    async def send_packed_command(self, command: Any, check_health: bool = True) -> None: ...
    async def check_health(self) -> None: ...
    async def read_response(self) -> Any: ...

    socket_timeout: float | None

    @property
    def is_connected(self) -> bool: ...


def tolerates(effect: Effect) -> bool:
    return type(effect) is Command and effect.errors_as_reply


def commands(effect: Effect) -> list[tuple[Arg, ...]]:
    """The commands an effect sends, in order (a script goes by SHA)."""
    if type(effect) is Command:
        return [effect.args]
    if type(effect) is Eval:
        keys = effect.keys
        return [("EVALSHA", effect.script.sha, len(keys), *keys, *effect.args)]
    assert type(effect) is Batch
    commands = [command.args for command in effect.commands]
    return [("MULTI",), *commands, ("EXEC",)] if effect.transaction else commands


def eval_commands(effect: Eval) -> list[tuple[Arg, ...]]:
    keys = effect.keys
    return [("EVAL", effect.script.text, len(keys), *keys, *effect.args)]


def _parsed(args: tuple[Arg, ...], reply: Any, callbacks: Callbacks) -> Any:
    if isinstance(reply, ResponseError):
        raise reply
    name = args[0]
    return callbacks[name](reply) if name in callbacks else reply


def result(effect: Effect, replies: list[Any], callbacks: Callbacks) -> Any:
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


def ready(conn: SyncConnection) -> None:
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


def exchange(conn: SyncConnection, wire: list[tuple[Arg, ...]]) -> list[Any]:
    """Send the commands in one write and read every reply (error replies as objects).

    A transport error or an interruption disconnects the connection (redis-py does this
    inside send and read), so no reply is ever left behind for the next caller.
    """
    send(conn, wire)
    return receive(conn, len(wire))


def send(conn: SyncConnection, wire: list[tuple[Arg, ...]]) -> None:
    """Send the commands in one write (their replies are ``receive``'s to read)."""
    packed = pack_all(wire)
    conn.send_packed_command(conn.pack_commands(wire) if packed is None else [packed])


def receive(conn: SyncConnection, count: int) -> list[Any]:
    """Read ``count`` replies (error replies as objects)."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(conn.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


async def aready(conn: AsyncConnection) -> None:
    """As ``ready``, for an asyncio connection."""
    if not conn.is_connected:
        await conn.connect()
        return
    try:
        try:
            can_read = conn.can_read
        except AttributeError:  # redis-py before 8.0
            can_read = conn.can_read_destructive
        stale = await can_read()
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


async def aexchange(conn: AsyncConnection, wire: list[tuple[Arg, ...]]) -> list[Any]:
    """As ``exchange``; a cancelled read disconnects too."""
    await asend(conn, wire)
    return await areceive(conn, len(wire))


async def asend(conn: AsyncConnection, wire: list[tuple[Arg, ...]]) -> None:
    """As ``send``, on an asyncio connection."""
    packed = pack_all(wire)
    if packed is None:
        await conn.send_packed_command(conn.pack_commands(wire))
    else:
        await _asend(conn, packed)


async def areceive(conn: AsyncConnection, count: int) -> list[Any]:
    """As ``receive``, on an asyncio connection."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await conn.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


def new_connection(pool: Any) -> Any:
    """A connection made as ``pool`` would make it, owned by the caller (not pooled)."""
    return pool.connection_class(**pool.connection_kwargs)


def execute(conn: SyncConnection, effect: Effect, callbacks: Callbacks) -> Any:
    """Send an effect and return its parsed reply; a script unknown to the server is sent
    whole once (NOSCRIPT)."""
    try:
        return result(effect, exchange(conn, commands(effect)), callbacks)
    except NoScriptError:
        if type(effect) is not Eval:
            raise
        return result(effect, exchange(conn, eval_commands(effect)), callbacks)


async def aexecute(conn: AsyncConnection, effect: Effect, callbacks: Callbacks) -> Any:
    """As ``execute``, on an asyncio connection."""
    try:
        return result(effect, await aexchange(conn, commands(effect)), callbacks)
    except NoScriptError:
        if type(effect) is not Eval:
            raise
        return result(effect, await aexchange(conn, eval_commands(effect)), callbacks)


def execute_asking(conn: SyncConnection, effect: Effect, callbacks: Callbacks) -> Any:
    """As ``execute``, each send preceded by ASKING (a cluster node's ASK redirection)."""
    try:
        return result(effect, exchange(conn, [("ASKING",), *commands(effect)])[1:], callbacks)
    except NoScriptError:
        if type(effect) is not Eval:
            raise
        wire = [("ASKING",), *eval_commands(effect)]
        return result(effect, exchange(conn, wire)[1:], callbacks)


async def aexecute_asking(conn: AsyncConnection, effect: Effect, callbacks: Callbacks) -> Any:
    """As ``execute_asking``, on an asyncio connection."""
    try:
        wire = [("ASKING",), *commands(effect)]
        return result(effect, (await aexchange(conn, wire))[1:], callbacks)
    except NoScriptError:
        if type(effect) is not Eval:
            raise
        wire = [("ASKING",), *eval_commands(effect)]
        return result(effect, (await aexchange(conn, wire))[1:], callbacks)


# -- subscriber connections ---------------------------------------------------------------------
def _keep(frame: Any) -> Any:
    return frame


async def _akeep(frame: Any) -> Any:
    return frame


def keep_push_frames(conn: Any) -> None:
    """Have a RESP3 connection return invalidation pushes from reads instead of handling them."""
    conn._parser.set_invalidation_push_handler(_keep)


def akeep_push_frames(conn: Any) -> None:
    """As ``keep_push_frames``, on an asyncio connection."""
    conn._parser.set_invalidation_push_handler(_akeep)


def read_frame(conn: Any) -> Any:
    """The next frame, push frames included; an error reply as the exception object."""
    try:
        return conn.read_response(push_request=True)
    except redis.ResponseError as error:  # an error reply: an answer like any other
        return error


async def aread_frame(conn: Any, seconds: float) -> Any:
    """The next frame, or ``NOTHING`` when none arrived within ``seconds``."""
    try:
        frame = await conn.read_response(timeout=seconds, push_request=True)
    except redis.ResponseError as error:
        return error
    return NOTHING if frame is None else frame
