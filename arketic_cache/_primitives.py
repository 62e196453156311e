"""Paired primitives: a thread version and an asyncio version with the same interface.

Code written once against these (the ``@cached`` plans) runs in either flavour; only the
interpreter that carries a plan's steps out picks the pair (as httpcore's ``_synchronization``).

* ``Flights`` / ``AsyncFlights``: single-flight. Concurrent callers of one key share the first
  caller's computation and its result or error. The asyncio leader runs as a task of its own,
  so a cancelled caller cancels only its own wait.
* ``Signal`` / ``AsyncSignal``: an event that any thread may set (the invalidation listener
  does), waited for with a timeout.
* ``spawn`` / ``aspawn``: run work in the background (a daemon thread, a task), kept
  referenced until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["AsyncFlights", "AsyncSignal", "Flights", "Signal", "aspawn", "spawn"]

T = TypeVar("T")


class _Flight:
    __slots__ = ("cond", "error", "finished", "value", "waiters")

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.waiters = 0  # followers waiting (observable, so tests need no sleeps)
        self.finished = False
        self.value: Any = None
        self.error: BaseException | None = None

    def wait(self) -> Any:
        with self.cond:
            self.waiters += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.finished)
        if self.error is not None:
            raise self.error
        return self.value

    def finish(self) -> None:
        with self.cond:
            self.finished = True
            self.cond.notify_all()


class Flights(Generic[T]):
    """Thread single-flight by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[str, _Flight] = {}

    def join(self, key: str, work: Callable[[], T]) -> T:
        """Run ``work`` unless another thread runs it for ``key``; either way return its result."""
        with self._lock:
            flight = self.running.get(key)
            leader = flight is None
            if flight is None:
                flight = self.running[key] = _Flight()
        if not leader:
            return flight.wait()  # type: ignore[no-any-return]
        try:
            flight.value = work()
            return flight.value  # type: ignore[no-any-return]
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self.running.pop(key, None)
            flight.finish()


class AsyncFlights(Generic[T]):
    """Task single-flight by key (per event loop)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[T]] = {}

    async def join(self, key: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Await ``work()`` as a task shared by every concurrent caller of ``key``."""
        loop = asyncio.get_running_loop()
        task = self._tasks.get(key)
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(work())
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: str, task: asyncio.Task[T]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have been cancelled meanwhile


class Signal:
    """A thread event: ``set()`` from any thread, ``wait(timeout)`` blocks."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Wait until set or ``timeout`` passes; clears it; True if it was set."""
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired


class AsyncSignal:
    """An asyncio event: ``set()`` from any thread, ``await wait(timeout)``."""

    __slots__ = ("_event", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 (Signal's interface)
        """Wait until set or ``timeout`` passes; clears it; True if it was set."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._event.clear()
        return True


def spawn(work: Callable[[], object], running: set[Any]) -> None:
    """Run ``work`` on a daemon thread, kept in ``running`` until it ends."""

    def run() -> None:
        try:
            work()
        finally:
            running.discard(thread)

    thread = threading.Thread(target=run, name="arketic-cache-refresh", daemon=True)
    running.add(thread)
    thread.start()


def aspawn(work: Coroutine[Any, Any, object], running: set[Any]) -> None:
    """Run ``work`` as a task on the running loop, kept in ``running`` until it ends."""
    task = asyncio.get_running_loop().create_task(work)
    running.add(task)
    task.add_done_callback(running.discard)
