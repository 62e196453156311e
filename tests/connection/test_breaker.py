"""The circuit breaker, alone, behind both drivers on the embedded backend, and on a real server."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from arketic_cache import (
    BackendUnavailable,
    CircuitOpen,
    PoolExhausted,
    RedisCache,
    RedisConnection,
    SyncRedisCache,
)
from arketic_cache._breaker import CircuitBreaker
from arketic_cache._connection import _memory_server
from arketic_cache._core._effects import Command, Flow
from arketic_cache.testing import RedisServer

from ..helpers import Bridge, ManualClock


class TestStateMachine:
    """closed -> open after N consecutive failures -> one probe -> closed or open again."""

    def test_opens_after_threshold(self) -> None:
        """Failures below the threshold keep it closed; the Nth opens it."""
        breaker = CircuitBreaker(threshold=3, cooldown=5, clock=ManualClock())
        assert not breaker.record_failure()
        assert not breaker.record_failure()
        assert breaker.is_closed
        assert breaker.record_failure()
        assert breaker.state == "open"
        assert not breaker.allow()

    def test_successes_do_not_hide_failures(self) -> None:
        """Failures within the window count even with successes between them."""
        breaker = CircuitBreaker(threshold=2, cooldown=5, clock=ManualClock(), window=10)
        breaker.record_failure()
        breaker.record_success()
        assert breaker.record_failure()
        assert breaker.state == "open"

    def test_old_failures_expire(self) -> None:
        """Failures further apart than the window do not add up."""
        clock = ManualClock()
        breaker = CircuitBreaker(threshold=2, cooldown=5, clock=clock, window=10)
        breaker.record_failure()
        clock.now += 10.5
        assert not breaker.record_failure()
        assert breaker.is_closed

    def test_one_probe_after_cooldown(self) -> None:
        """After the cool-down exactly one caller probes; success closes the breaker."""
        clock = ManualClock()
        breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
        breaker.record_failure()
        clock.now += 5
        assert breaker.state == "half-open"
        assert breaker.allow()
        assert not breaker.allow()
        breaker.record_success()
        assert breaker.is_closed
        assert breaker.allow()

    def test_failed_probe_reopens(self) -> None:
        """A failed probe opens the breaker for another full cool-down."""
        clock = ManualClock()
        breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
        breaker.record_failure()
        clock.now += 5
        assert breaker.allow()
        assert breaker.record_failure()
        clock.now += 4.9
        assert not breaker.allow()
        clock.now += 0.1
        assert breaker.allow()

    def test_lost_probe_cannot_wedge_it(self) -> None:
        """A probe that never reports (a cancelled task) is replaced one cool-down later."""
        clock = ManualClock()
        breaker = CircuitBreaker(threshold=1, cooldown=5, clock=clock)
        breaker.record_failure()
        clock.now += 5
        assert breaker.allow()  # this probe vanishes
        clock.now += 5
        assert breaker.allow()


@pytest.fixture(params=["sync", "async"])
def outage(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Any, Any, RedisConnection, ManualClock]]:
    """(cache, strict cache, connection, clock) on an embedded server we can disconnect."""
    clock = ManualClock()
    url = f"memory://breaker-{uuid.uuid4().hex}"
    conn = RedisConnection(url=url, clock=clock, breaker_threshold=3, breaker_cooldown=10)
    server = _memory_server(url)
    with asyncio.Runner() as runner:
        if request.param == "sync":
            yield SyncRedisCache(conn), SyncRedisCache(conn, strict=True), conn, clock
        else:
            yield (
                Bridge(RedisCache(conn), runner),
                Bridge(RedisCache(conn, strict=True), runner),
                conn,
                clock,
            )
        server.connected = True
        runner.run(conn.aclose())


def disconnect(conn: RedisConnection, connected: bool = False) -> None:
    _memory_server(conn.settings.url).connected = connected


class TestDegrading:
    """With Redis gone, calls return the spec's defaults and the breaker opens."""

    def test_defaults_and_breaker(
        self, outage: tuple[Any, Any, RedisConnection, ManualClock]
    ) -> None:
        """Each operation returns its default; after 3 failures Redis is no longer called."""
        cache, _, conn, _ = outage
        assert cache.set("k", 1) is True
        disconnect(conn)
        assert cache.get("k") is None
        assert cache.set("k", 2) is False
        assert cache.increment("n") is None
        assert conn.state.breaker.state == "open"
        assert conn.state.errors == 3
        assert cache.delete("k") is False
        assert cache.exists("k") is False
        assert cache.expire("k", 5) is False
        assert cache.get_many(["k"]) == {}
        assert cache.set_many({"k": 1}) is False
        assert cache.get_keys("*") == []
        assert cache.flush_pattern("k*") == 0
        info = cache.get_info()
        assert info["client"]["breaker"] == "open"
        assert conn.state.errors == 3
        assert conn.state.short_circuits == 8

    def test_strict_raises(self, outage: tuple[Any, Any, RedisConnection, ManualClock]) -> None:
        """Strict mode raises BackendUnavailable, then CircuitOpen once the breaker opens."""
        _, strict, conn, _ = outage
        disconnect(conn)
        for _ in range(3):
            with pytest.raises(BackendUnavailable):
                strict.get("k")
        with pytest.raises(CircuitOpen):
            strict.get("k")

    def test_strict_failures_are_not_logged_as_degrading(
        self,
        outage: tuple[Any, Any, RedisConnection, ManualClock],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A strict call raises, so its log line says so instead of "degrading"."""
        _, strict, conn, _ = outage
        caplog.set_level(logging.WARNING, logger="arketic_cache")
        disconnect(conn)
        with pytest.raises(BackendUnavailable):
            strict.get("k")
        [line] = [r.getMessage() for r in caplog.records]
        assert "raising it (strict)" in line
        assert "degrading" not in line

    def test_recovers_after_cooldown(
        self, outage: tuple[Any, Any, RedisConnection, ManualClock]
    ) -> None:
        """Once Redis is back and the cool-down has passed, one probe closes the breaker."""
        cache, _, conn, clock = outage
        cache.set("k", 1)
        disconnect(conn)
        for _ in range(3):
            cache.get("k")
        disconnect(conn, connected=True)
        assert cache.get("k") is None  # still open: no call made
        clock.now += 10
        assert cache.get("k") == 1
        assert conn.state.breaker.state == "closed"

    def test_logs_once_per_burst(
        self,
        outage: tuple[Any, Any, RedisConnection, ManualClock],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A burst of failures logs one warning (plus one when the breaker opens)."""
        cache, _, conn, clock = outage
        caplog.set_level(logging.INFO, logger="arketic_cache")
        disconnect(conn)
        for _ in range(20):
            cache.get("k")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2
        assert "skipping Redis" in warnings[1].getMessage()
        disconnect(conn, connected=True)
        clock.now += 10
        cache.get("k")
        assert any("succeed again" in r.getMessage() for r in caplog.records)

    def test_failed_probes_do_not_log_the_opening_again(
        self,
        outage: tuple[Any, Any, RedisConnection, ManualClock],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """While the outage lasts, each failed probe re-opens the breaker without a new line."""
        cache, _, conn, clock = outage
        caplog.set_level(logging.INFO, logger="arketic_cache")
        disconnect(conn)
        for _ in range(3):
            cache.get("k")
        for _ in range(4):
            clock.now += 10  # a probe is due, and fails
            assert cache.get("k") is None
            assert conn.state.breaker.state == "open"
        assert conn.state.errors == 7
        opened = [r for r in caplog.records if "skipping Redis" in r.getMessage()]
        assert len(opened) == 1
        disconnect(conn, connected=True)
        clock.now += 10
        cache.get("k")  # the outage ends: the next one is a new burst
        disconnect(conn)
        for _ in range(3):
            cache.get("k")
        opened = [r for r in caplog.records if "skipping Redis" in r.getMessage()]
        assert len(opened) == 2


class TestPoolExhaustion:
    """Callers beyond the pool size wait, then degrade; a busy pool never opens the breaker."""

    @pytest.mark.parametrize("flavor_name", ["sync", "async"])
    def test_busy_pool(self, flavor_name: str) -> None:
        """With every connection slot taken, a call waits pool_timeout then returns its default."""
        url = f"memory://pool-{uuid.uuid4().hex}"
        conn = RedisConnection(url=url, max_connections=2, pool_timeout=0.01)
        with asyncio.Runner() as runner:
            if flavor_name == "sync":
                cache: Any = SyncRedisCache(conn)
                strict: Any = SyncRedisCache(conn, strict=True)
                tokens = conn.sync_driver._slots
                assert cache.set("k", 1) is True
                for _ in range(2):
                    tokens.get()  # what two calls in flight would hold

                def release() -> None:
                    tokens.put(None)

            else:
                cache = Bridge(RedisCache(conn), runner)
                strict = Bridge(RedisCache(conn, strict=True), runner)
                assert cache.set("k", 1) is True
                slots = conn.async_driver._slots
                for _ in range(2):
                    runner.run(slots.acquire())

                def release() -> None:
                    slots.release()

            for _ in range(5):
                assert cache.get("k") is None
            with pytest.raises(PoolExhausted):
                strict.get("k")
            assert conn.state.pool_exhausted == 6
            assert conn.state.breaker.state == "closed"
            release()
            assert cache.get("k") == 1
            runner.run(conn.aclose())


class CountedSlots(queue.SimpleQueue[None]):
    """The sync driver's slot queue, releasing ``waiting`` as each caller starts to wait."""

    def __init__(self, waiting: threading.Semaphore) -> None:
        super().__init__()
        self.waiting = waiting

    def get(self, block: bool = True, timeout: float | None = None) -> None:
        self.waiting.release()
        return super().get(block, timeout)


def marked(ran: list[str], name: str) -> Flow[Any]:
    """A flow that records that it ran."""
    ran.append(name)
    return (yield Command(("GET", "k")))


@pytest.mark.one_node  # a cluster's breakers are its nodes' (tests/cluster)
class TestQueuedCallers:
    """Callers queued for a connection when the breaker opens skip Redis once they get one.

    The test holds the only connection slot itself (as a caller stuck on a frozen server
    would), lets three callers queue for it, opens the breaker, then frees the slot.
    """

    QUEUED = 3

    def test_sync(self, backend_url: str) -> None:
        """Each queued caller short-circuits: none of their flows runs."""
        conn = RedisConnection(url=backend_url, max_connections=1, breaker_threshold=1)
        driver = conn.sync_driver
        waiting = threading.Semaphore(0)
        driver._slots = slots = CountedSlots(waiting)  # the only slot is the test's
        ran: list[str] = []
        queued = [
            threading.Thread(target=driver.run, args=(marked(ran, f"q{i}"), None, False))
            for i in range(self.QUEUED)
        ]
        for thread in queued:
            thread.start()
        for _ in queued:
            assert waiting.acquire(timeout=10)  # past the breaker check, waiting for the slot
        conn.state.breaker.record_failure()  # the stuck call fails: the breaker opens
        slots.put(None)
        for thread in queued:
            thread.join(10)
        try:
            assert ran == []
            assert conn.state.short_circuits == self.QUEUED
        finally:
            conn.close_sync()

    def test_async(self, backend_url: str) -> None:
        """The same on the asyncio driver."""
        conn = RedisConnection(url=backend_url, max_connections=1, breaker_threshold=1)
        driver = conn.async_driver
        ran: list[str] = []

        async def main() -> None:
            await driver.run(marked(ran, "warm-up"), None, False)  # binds to this loop
            slots = driver._slots
            await slots.acquire()  # the only slot is the test's
            queued = [
                asyncio.create_task(driver.run(marked(ran, f"q{i}"), None, False))
                for i in range(self.QUEUED)
            ]
            for _ in range(5):
                await asyncio.sleep(0)  # a turn of the loop: each reaches the semaphore
            conn.state.breaker.record_failure()  # the stuck call fails: the breaker opens
            slots.release()
            await asyncio.gather(*queued)
            await conn.aclose()

        asyncio.run(main())
        assert ran == ["warm-up"]
        assert conn.state.short_circuits == self.QUEUED


@pytest.mark.redis
@pytest.mark.parametrize("flavor", ["sync", "async"])
def test_circuit_open_keeps_the_failure_that_opened_it(
    flavor: str, redis_server: RedisServer
) -> None:
    """A wrong password opens the breaker; CircuitOpen then says so, and chains it."""
    conn = RedisConnection(url=f"redis://:wrong-password@127.0.0.1:{redis_server.port}/0")
    try:
        if flavor == "sync":
            cache: Any = SyncRedisCache(connection=conn, strict=True)
            call = cache.get
        else:
            acache = RedisCache(connection=conn, strict=True)

            def call(key: str) -> Any:
                return asyncio.run(acache.get(key))

        for _ in range(conn.settings.breaker_threshold):
            with pytest.raises(BackendUnavailable):
                call("k")
        with pytest.raises(CircuitOpen, match=r"(?i)password|auth") as opened:
            call("k")
        assert isinstance(opened.value.__cause__, BackendUnavailable)
        assert "wrong-password" not in str(opened.value)
    finally:
        conn.close_sync()
