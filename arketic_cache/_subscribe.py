"""The subscription seam: one long-lived subscriber connection, kept alive and honest.

Everything that listens to Redis (L1 invalidation, typed channels) goes through here:

* a connection of its own, whose reads wait as long as the heartbeat allows, not the short
  data timeout;
* a PING on an idle connection that must be answered within a deadline, so a frozen or
  unreachable server is noticed (a pub/sub read alone would wait forever);
* reconnect with capped, jittered exponential backoff, resubscribe, and tell the listener
  each time messages may have been lost (``on_lost``) and when it listens again (``on_subscribed``);
* a refusal (an ACL without the permission) is ``on_refused``: the same backoff, one connection
  at a time, never a tight loop;
* after ``os.fork()`` the child's first ``start()`` opens a new connection (the parent's socket
  is never touched);
* when the topics change, the live connection subscribes to what is new before it drops what
  is gone, so no message falls in between and none comes twice; with tracking, a new
  connection is subscribed before the old one is dropped.

The life of a subscription (open, handshake, pump with heartbeat, swap, back off) is written once,
as a generator of I/O steps (``Connect``, ``Send``, ``Read``, ``Close``, ``Release``, ``Pause``);
``SubscriberThread`` and ``SubscriberTask`` are twins that only perform those steps. The protocol
itself (what to send, what a frame means, when to ping) is in ``_core/_subscribe.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Protocol

import redis
import redis.asyncio

from ._core._subscribe import (
    NOTHING,
    Close,
    Confirm,
    Connect,
    Event,
    Heartbeat,
    Invalidation,
    Life,
    Message,
    Pause,
    Pong,
    Read,
    Refused,
    Release,
    Reply,
    Step,
    Subscribed,
    Topics,
    Write,
    amendable,
    amended,
    amendment,
    classify,
    handshake,
    reconnect_delay,
)
from ._wire import akeep_push_frames, aread_frame, keep_push_frames, read_frame

__all__ = ["Listener", "SubscriberTask", "SubscriberThread"]

logger = logging.getLogger("arketic_cache")

#: What ends a subscription: the server went away, froze, or the socket broke.
LOST = (redis.ConnectionError, redis.TimeoutError, OSError, EOFError)
#: Longest a blocked read lasts, so stop() and topic changes are noticed promptly.
SLICE = 0.05


class Listener(Protocol):
    """What a subscriber reports to (called on the subscriber's thread or event loop)."""

    def topics(self) -> Topics: ...
    def on_subscribed(self, result: Subscribed, gapless: bool) -> None: ...
    def on_lost(self, reason: str) -> None: ...
    def on_refused(self, reason: str) -> None: ...
    def on_invalidate(self, keys: tuple[str, ...] | None) -> None: ...
    def on_message(self, message: Message) -> None: ...


class Frozen(Exception):
    """A PING was not answered within the deadline."""


class _Subscriber:
    """What both twins share: the life of a subscription, counters, routing of frames."""

    _stop: threading.Event | asyncio.Event | None = None

    def __init__(
        self,
        connect: Callable[[], Any],
        listener: Listener,
        *,
        ping_interval: float = 1.0,
        ping_timeout: float = 1.0,
        resp3: bool = True,
    ) -> None:
        self._connect = connect
        self.listener = listener
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.resp3 = resp3
        self.connections = 0  # opened so far (a refusal or an outage must keep this small)
        self.failures = 0  # consecutive failed attempts (the backoff exponent)
        self.result: Subscribed | None = None
        self._pid = os.getpid()
        self._changed = False

    def resubscribe(self) -> None:
        """The listener's topics changed: subscribe anew (without a gap)."""
        self._changed = True

    def halt(self) -> None:
        """From a listener's callback: stop once the current step is done (no more retries)."""
        if self._stop is not None:
            self._stop.set()

    @property
    def halting(self) -> bool:
        """True once asked to stop (by ``stop()`` or ``halt()``)."""
        return self._stop is not None and self._stop.is_set()

    def _forked(self) -> bool:
        """True (and the per-process state reset) on the first start in a forked child."""
        if self._pid == os.getpid():
            return False
        self._pid, self.result, self.failures, self.connections = os.getpid(), None, 0, 0
        return True

    def _new(self) -> Any:
        conn = self._connect()
        self.connections += 1
        return conn

    # -- the life of a subscription, written once --------------------------------------------------
    def _life(self, stopped: Callable[[], bool]) -> Life:
        """Subscribe, listen until lost, back off, again; until ``stopped()``."""
        while not stopped():
            refused = False
            try:
                conn = yield from self._open()
                self.failures = 0
                yield from self._pump(conn, stopped)
            except Exception as exc:
                refused = self._failed(exc)
            yield Release()
            if not stopped():
                yield Pause(self._backoff(refused))

    def _open(self, gapless: bool = False) -> Generator[Step, Any, Any]:
        """A new connection, subscribed to the listener's current topics."""
        self._changed = False
        plan = handshake(self.listener.topics(), self.resp3)
        conn = yield Connect()
        answers: Any = None  # a plan starts on None
        while True:
            try:
                step = plan.send(answers)
            except StopIteration as done:
                result: Subscribed = done.value
                break
            yield Write(conn, step.args)
            answers = []
            while len(answers) < step.replies:
                frame = yield Read(conn, self.ping_timeout)
                if frame is NOTHING:
                    raise Frozen("no answer during the handshake")
                self._answers(self._route(frame), answers)
                if answers and isinstance(answers[-1], Exception):
                    break  # a refusal is one error reply, however many names were sent
        self.result = result
        self.listener.on_subscribed(result, gapless)
        return conn

    def _pump(self, conn: Any, stopped: Callable[[], bool]) -> Life:
        """Route frames until stopped; PING when idle, and fail when no answer comes in time."""
        beat = Heartbeat(self.ping_interval, self.ping_timeout, time.monotonic())
        while not stopped():
            if self._changed:
                conn = yield from self._change(conn)
                beat.heard(time.monotonic())
            now = time.monotonic()
            due = beat.due(now)
            if due == "dead":
                raise Frozen(f"no answer to PING within {self.ping_timeout} s")
            if due == "ping":
                yield Write(conn, ("PING",))
                beat.sent(now)
            frame = yield Read(conn, max(min(beat.wait(now), SLICE), 0.001))
            if frame is not NOTHING:
                self._route(frame)
                beat.heard(time.monotonic())

    def _change(self, conn: Any) -> Generator[Step, Any, Any]:
        """Follow the listener's new topics: in place when no tracking is involved (no new
        connection, no duplicate, no gap), else by swapping connections."""
        self._changed = False
        topics = self.listener.topics()
        if not amendable(self.result, topics):
            return (yield from self._swap(conn))
        assert self.result is not None
        current = self.result.topics
        plan = amendment(current, topics)
        for send, _, _ in plan:
            yield Write(conn, send.args)
        refused: str | None = None
        for send, kind, names in plan:  # the answers come in order, messages in between
            confirmed = 0
            while confirmed < send.replies:
                frame = yield Read(conn, self.ping_timeout)
                if frame is NOTHING:
                    raise Frozen("no answer to a subscription change")
                event = self._route(frame)
                if type(event) is Confirm:
                    confirmed += 1
                elif type(event) is Reply and isinstance(event.value, Exception):
                    refused = refused or f"{type(event.value).__name__}: {event.value}"
                    break  # one error answers the whole command
            else:
                current = amended(current, kind, names)
        self.result = Subscribed(False, current)
        if refused is not None:
            self.listener.on_refused(refused)
        self.listener.on_subscribed(self.result, True)
        return conn

    def _swap(self, old: Any) -> Generator[Step, Any, Any]:
        """Subscribe on a new connection, then drain and drop the old one."""
        new = yield from self._open(gapless=True)
        try:
            yield Write(old, ("PING",))
            while True:
                frame = yield Read(old, self.ping_timeout)
                if frame is NOTHING or type(self._route(frame)) is Pong:
                    break
        except LOST:
            pass  # the new subscription already covers what follows
        yield Close(old)
        return new

    def _begin(self) -> tuple[Life, Step | None]:
        stop = self._stop
        assert stop is not None
        life = self._life(stop.is_set)
        return life, self._next(life, None, None)

    @staticmethod
    def _next(life: Life, reply: Any, error: Exception | None) -> Step | None:
        """The step after ``reply`` (or ``error``, raised at the last step); None at the end."""
        try:
            return life.send(reply) if error is None else life.throw(error)
        except StopIteration:
            return None

    # -- what the steps report ---------------------------------------------------------------------
    def _route(self, frame: Any) -> Event:
        event = classify(frame)
        if type(event) is Invalidation:
            self.listener.on_invalidate(event.keys)
        elif type(event) is Message:
            self.listener.on_message(event)
        return event

    def _answers(self, event: Event, answers: list[Any]) -> None:
        if type(event) is Confirm:
            answers.append(event.subscriptions)
        elif type(event) is Reply:
            answers.append(event.value)

    def _backoff(self, refused: bool) -> float:
        cap = 30.0 if refused else 2.0
        delay = reconnect_delay(self.failures, random.random(), base=0.05, cap=cap)
        self.failures += 1
        return delay

    def _failed(self, exc: Exception) -> bool:
        """Tell the listener; True when it was a refusal."""
        if not isinstance(exc, (Refused, Frozen, *LOST)):  # a bug must not end listening
            if not self.failures:
                logger.error("subscriber failed", exc_info=exc)
            exc = ConnectionError("subscriber error")
        self.result = None  # nothing is subscribed now, whatever was before
        if isinstance(exc, Refused):
            self.listener.on_refused(str(exc))
            return True
        self.listener.on_lost(
            type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
        )
        return False


class SubscriberThread(_Subscriber):
    """A daemon thread holding one subscriber connection from ``connect()``."""

    name = "arketic-cache-subscriber"
    _thread: threading.Thread | None = None
    _stop: threading.Event | None = None

    @property
    def running(self) -> bool:
        """True while this process's thread runs (a forked child's copy does not)."""
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start listening, unless already listening in this process."""
        if self.running:
            return
        self._forked()  # a forked child: the parent's socket is not touched, only forgotten
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wait for the thread."""
        if self._stop is not None:
            self._stop.set()
        thread, self._thread = self._thread, None
        mine = thread is not None and thread is not threading.current_thread()
        if mine and self._pid == os.getpid():
            assert thread is not None
            thread.join(timeout=5)
        self.result = None

    def _run(self) -> None:
        held: list[Any] = []
        life, step = self._begin()
        try:
            while step is not None:
                step = self._next(life, *(self._outcome(step, held)))
        finally:
            while held:
                _close(held.pop())

    def _outcome(self, step: Step, held: list[Any]) -> tuple[Any, Exception | None]:
        try:
            return self._perform(step, held), None
        except Exception as exc:
            return None, exc

    def _perform(self, step: Step, held: list[Any]) -> Any:
        match step:
            case Read(conn, seconds):
                return read_frame(conn) if conn.can_read(timeout=seconds) else NOTHING
            case Write(conn, args):
                conn.send_command(*args, check_health=False)
            case Connect():
                conn = self._new()
                held.append(conn)
                conn.connect()
                if self.resp3:
                    keep_push_frames(conn)
                return conn
            case Close(conn):
                held.remove(conn)
                _close(conn)
            case Release():
                while held:
                    _close(held.pop())
            case Pause(seconds):
                assert self._stop is not None
                self._stop.wait(seconds)
        return None


def _close(conn: Any) -> None:
    with contextlib.suppress(*LOST, RuntimeError):
        conn.disconnect()


class SubscriberTask(_Subscriber):
    """An asyncio task holding one subscriber connection from ``connect()``."""

    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """True while this process's task runs."""
        task = self._task
        return self._pid == os.getpid() and task is not None and not task.done()

    def start(self) -> None:
        """Start listening on the running event loop, unless already listening."""
        if self.running:
            return
        self._forked()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop listening and wait for the task."""
        if self._stop is not None:
            self._stop.set()
        task, self._task = self._task, None
        if task is not None and self._pid == os.getpid() and not task.done():
            # It notices within a read and closes its connection itself; a cancelled read
            # would make redis-py drop the socket unclosed.
            done, _ = await asyncio.wait({task}, timeout=self.ping_timeout + SLICE)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.result = None

    async def _run(self) -> None:
        held: list[Any] = []
        life, step = self._begin()
        try:
            while step is not None:
                step = self._next(life, *(await self._outcome(step, held)))
        finally:
            while held:
                await _aclose(held.pop())

    async def _outcome(self, step: Step, held: list[Any]) -> tuple[Any, Exception | None]:
        try:
            return await self._perform(step, held), None
        except Exception as exc:
            return None, exc

    async def _perform(self, step: Step, held: list[Any]) -> Any:
        match step:
            case Read(conn, seconds):
                return await aread_frame(conn, seconds)
            case Write(conn, args):
                await conn.send_command(*args, check_health=False)
            case Connect():
                made = self._new()  # a connection, or a coroutine that places one first
                conn = await made if inspect.isawaitable(made) else made
                held.append(conn)
                await conn.connect()
                if self.resp3:
                    akeep_push_frames(conn)
                return conn
            case Close(conn):
                held.remove(conn)
                await _aclose(conn)
            case Release():
                while held:
                    await _aclose(held.pop())
            case Pause(seconds):
                assert self._stop is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), seconds)
        return None


async def _aclose(conn: Any) -> None:
    # fakeredis' asyncio connection drops its socket without closing it, so the embedded server
    # would count its subscriptions until garbage collection: unsubscribe from everything first
    # (the embedded server runs a command as it is written).
    if type(conn).__module__.startswith("fakeredis") and getattr(conn, "_sock", None):
        with contextlib.suppress(Exception):
            await conn.send_command("UNSUBSCRIBE", check_health=False)
            await conn.send_command("PUNSUBSCRIBE", check_health=False)
    with contextlib.suppress(*LOST, RuntimeError):
        await conn.disconnect(nowait=True)
