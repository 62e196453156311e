"""The two drivers: the only code that sends effects to Redis.

A driver runs a flow, maps redis-py exceptions to ours (here and nowhere else), feeds the
circuit breaker, counts and logs failures once per burst, and either returns the caller's
fallback (the spec's degraded answer) or, in strict mode, raises.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.exceptions import MaxConnectionsError, NoScriptError, RedisClusterException

from ._breaker import CircuitBreaker
from ._core._effects import Batch, Command, Effect, Eval, Flow
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


class _Driver:
    """Failure handling shared by both drivers; subclasses add only the I/O loop."""

    __slots__ = ("state",)

    def __init__(self, state: BackendState) -> None:
        self.state = state

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


class SyncDriver(_Driver):
    """Run flows on a blocking redis-py client."""

    __slots__ = ("_slots", "client")

    def __init__(self, client: redis.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        # One token per pooled connection: a flow holds one connection at a time, so callers
        # wait here (up to pool_timeout) rather than in redis-py's pool. SimpleQueue is C code:
        # a free token costs far less than threading.Semaphore's Python-level acquire.
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(state.pool_size):
            self._slots.put(None)

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
        try:
            return self._drive(flow, fallback, strict)
        finally:
            slots.put(None)

    def _drive(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        reply: Any = None
        try:
            while True:
                effect = flow.send(reply)
                try:
                    reply = self._execute(effect)
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

    def _execute(self, effect: Effect) -> Any:
        client = self.client
        if type(effect) is Command:
            return client.execute_command(*effect.args)  # type: ignore[no-untyped-call]
        if type(effect) is Eval:
            keys, args = effect.keys, effect.args
            try:
                return client.evalsha(effect.script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return client.eval(effect.script.text, len(keys), *keys, *args)
        assert type(effect) is Batch
        pipe = client.pipeline(transaction=effect.transaction)
        for command in effect.commands:
            pipe.execute_command(*command.args)  # type: ignore[no-untyped-call]
        return pipe.execute()


class AsyncDriver(_Driver):
    """Run flows on an asyncio redis-py client."""

    __slots__ = ("_slots", "client")

    def __init__(self, client: redis.asyncio.Redis, state: BackendState) -> None:
        super().__init__(state)
        self.client = client
        # redis-py's asyncio BlockingConnectionPool arms a timer and takes a Condition on
        # every checkout (+15% on a GET); this semaphore costs nothing until it is contended.
        self._slots = asyncio.BoundedSemaphore(state.pool_size)

    async def run(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        """Run ``flow`` to its result; on a Redis failure return ``fallback`` or raise if strict."""
        if not self.state.breaker.allow():
            flow.close()
            return self._short_circuit(fallback, strict)
        slots = self._slots
        if slots.locked():
            try:
                await asyncio.wait_for(slots.acquire(), self.state.pool_timeout)
            except TimeoutError:
                flow.close()
                return self._exhausted(fallback, strict)
        else:
            await slots.acquire()  # free: returns at once
        try:
            return await self._drive(flow, fallback, strict)
        finally:
            slots.release()

    async def _drive(self, flow: Flow[T], fallback: T, strict: bool) -> T:
        reply: Any = None
        try:
            while True:
                effect = flow.send(reply)
                try:
                    reply = await self._execute(effect)
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

    async def _execute(self, effect: Effect) -> Any:
        client = self.client
        if type(effect) is Command:
            return await client.execute_command(*effect.args)  # type: ignore[no-untyped-call]
        if type(effect) is Eval:
            keys, args = effect.keys, effect.args
            try:
                return await client.evalsha(effect.script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await client.eval(effect.script.text, len(keys), *keys, *args)
        assert type(effect) is Batch
        pipe = client.pipeline(transaction=effect.transaction)
        for command in effect.commands:
            pipe.execute_command(*command.args)
        return await pipe.execute()
