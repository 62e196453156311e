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
* when the topics change, the new subscription is made before the old one is dropped, so no
  message falls in between.

``SubscriberThread`` and ``SubscriberTask`` are twins: the protocol itself (what to send, what a
frame means, when to ping) is in ``_core/_subscribe.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    Confirm,
    Event,
    Heartbeat,
    Invalidation,
    Message,
    Pong,
    Refused,
    Reply,
    Send,
    Subscribed,
    Topics,
    classify,
    handshake,
    reconnect_delay,
)

__all__ = ["Listener", "SubscriberTask", "SubscriberThread"]

logger = logging.getLogger("arketic_cache")

#: What ends a subscription: the server went away, froze, or the socket broke.
LOST = (redis.ConnectionError, redis.TimeoutError, OSError, EOFError)
#: Longest a blocked read lasts, so stop() and topic changes are noticed promptly.
SLICE = 0.2


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


def _keep_push(frame: Any) -> Any:
    return frame


async def _akeep_push(frame: Any) -> Any:
    return frame


class _Subscriber:
    """What both twins share: counters, the heartbeat settings, routing of frames."""

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

    def _begin(self) -> tuple[Any, Generator[Send, list[Any], Subscribed]]:
        """A new connection (not connected) and the handshake for the current topics."""
        self._changed = False
        plan = handshake(self.listener.topics(), self.resp3)
        conn = self._connect()
        self.connections += 1
        return conn, plan

    def _listening(self, result: Subscribed, gapless: bool) -> None:
        self.result = result
        self.listener.on_subscribed(result, gapless)

    def _forked(self) -> bool:
        """True (and the per-process state reset) on the first start in a forked child."""
        if self._pid == os.getpid():
            return False
        self._pid, self.result, self.failures, self.connections = os.getpid(), None, 0, 0
        return True

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
        if isinstance(exc, Refused):
            self.listener.on_refused(str(exc))
            return True
        self.result = None
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
        stop = self._stop
        assert stop is not None
        while not stop.is_set():
            conn: Any = None
            refused = False
            try:
                conn = self._open()
                self.failures = 0
                conn = self._pump(conn, stop)
            except Exception as exc:
                refused = self._failed(exc)
            finally:
                _close(conn)
            if not stop.is_set():
                stop.wait(self._backoff(refused))

    def _open(self, gapless: bool = False) -> Any:
        conn, plan = self._begin()
        try:
            conn.connect()
            if self.resp3:
                conn._parser.set_invalidation_push_handler(_keep_push)
            result = self._run_handshake(conn, plan)
        except BaseException:
            _close(conn)
            raise
        self._listening(result, gapless)
        return conn

    def _run_handshake(self, conn: Any, plan: Generator[Send, list[Any], Subscribed]) -> Subscribed:
        answers: Any = None  # a plan starts on None
        while True:
            try:
                step = plan.send(answers)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            conn.send_command(*step.args, check_health=False)
            answers = []
            while len(answers) < step.replies:
                self._answers(self._route(_read(conn)), answers)

    def _pump(self, conn: Any, stop: threading.Event) -> Any:
        beat = Heartbeat(self.ping_interval, self.ping_timeout, time.monotonic())
        while not stop.is_set():
            if self._changed:
                conn = self._swap(conn)
            now = time.monotonic()
            due = beat.due(now)
            if due == "dead":
                raise Frozen(f"no answer to PING within {self.ping_timeout} s")
            if due == "ping":
                conn.send_command("PING", check_health=False)
                beat.sent(now)
            if conn.can_read(timeout=min(beat.wait(now), SLICE)):
                self._route(_read(conn))
                beat.heard(time.monotonic())
        return conn

    def _swap(self, old: Any) -> Any:
        """Subscribe on a new connection, then drain and drop the old one."""
        new = self._open(gapless=True)
        try:
            old.send_command("PING", check_health=False)
            while type(self._route(_read(old))) is not Pong:
                pass
        except LOST:
            pass  # the new subscription already covers what follows
        _close(old)
        return new


def _read(conn: Any) -> Any:
    try:
        return conn.read_response(push_request=True)
    except redis.ResponseError as error:  # an error reply: an answer like any other
        return error


def _close(conn: Any) -> None:
    if conn is not None:
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
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.result = None

    async def _run(self) -> None:
        stop = self._stop
        assert stop is not None
        while not stop.is_set():
            conn: Any = None
            refused = False
            try:
                conn = await self._open()
                self.failures = 0
                conn = await self._pump(conn, stop)
            except Exception as exc:
                refused = self._failed(exc)
            finally:
                await _aclose(conn)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._backoff(refused))

    async def _open(self, gapless: bool = False) -> Any:
        conn, plan = self._begin()
        try:
            await conn.connect()
            if self.resp3:
                conn._parser.set_invalidation_push_handler(_akeep_push)
            result = await self._run_handshake(conn, plan)
        except BaseException:
            await _aclose(conn)
            raise
        self._listening(result, gapless)
        return conn

    async def _run_handshake(
        self, conn: Any, plan: Generator[Send, list[Any], Subscribed]
    ) -> Subscribed:
        answers: Any = None  # a plan starts on None
        while True:
            try:
                step = plan.send(answers)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await conn.send_command(*step.args, check_health=False)
            answers = []
            while len(answers) < step.replies:
                frame = await _aread(conn, self.ping_timeout)
                if frame is _NOTHING:
                    raise Frozen("no answer during the handshake")
                self._answers(self._route(frame), answers)

    async def _pump(self, conn: Any, stop: asyncio.Event) -> Any:
        beat = Heartbeat(self.ping_interval, self.ping_timeout, time.monotonic())
        while not stop.is_set():
            if self._changed:
                conn = await self._swap(conn)
            now = time.monotonic()
            due = beat.due(now)
            if due == "dead":
                raise Frozen(f"no answer to PING within {self.ping_timeout} s")
            if due == "ping":
                await conn.send_command("PING", check_health=False)
                beat.sent(now)
            frame = await _aread(conn, max(min(beat.wait(now), SLICE), 0.001))
            if frame is not _NOTHING:
                self._route(frame)
                beat.heard(time.monotonic())
        return conn

    async def _swap(self, old: Any) -> Any:
        new = await self._open(gapless=True)
        try:
            await old.send_command("PING", check_health=False)
            while True:
                frame = await _aread(old, self.ping_timeout)
                if frame is _NOTHING or type(self._route(frame)) is Pong:
                    break
        except LOST:
            pass
        await _aclose(old)
        return new


_NOTHING = object()


async def _aread(conn: Any, seconds: float) -> Any:
    """One frame, or ``_NOTHING`` when none arrived within ``seconds``."""
    try:
        frame = await conn.read_response(timeout=seconds, push_request=True)
    except redis.ResponseError as error:
        return error
    return _NOTHING if frame is None else frame


async def _aclose(conn: Any) -> None:
    if conn is not None:
        with contextlib.suppress(*LOST, RuntimeError):
            await conn.disconnect(nowait=True)
