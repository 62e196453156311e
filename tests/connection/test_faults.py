"""Faults on a real redis-server of the test's own: down, killed, frozen, restarted.

Each test gets its own server (``fresh_server``), free to be stopped, SIGKILLed, SIGSTOPped or
restarted on the same port. The breaker's cool-down runs on a manual clock, so nothing sleeps;
the only waits are redis-server's own readiness and the short socket timeouts of a frozen server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from arketic_cache import (
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    RedisCache,
    RedisConnection,
)
from arketic_cache.testing import RedisServer

from ..helpers import (
    CONNECT_TIMEOUT,
    FAILED,
    RECOVERED,
    TIMEOUT,
    ManualClock,
    Rig,
    breaker_state,
    messages,
    rigs,
    thaw_if_running,
)

pytestmark = pytest.mark.redis

#: INFO fields a reachable server fills; None when it cannot be asked.
SERVER_FIELDS = (
    "connected_clients",
    "used_memory_human",
    "used_memory",
    "total_commands_processed",
    "keyspace_hits",
    "keyspace_misses",
    "uptime_in_seconds",
    "maxmemory",
    "maxmemory_policy",
    "redis_version",
    "hit_rate",
    "persistence",
)


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[Rig]:
    """A sync or async (bridged) rig on this test's own server and event loop."""
    yield from rigs(Rig, request.param, fresh_server)


def assert_degraded(cache: Any) -> int:
    """Call every operation once and check the spec's degraded answer; return the call count."""
    assert cache.get("a") is None
    assert cache.get_many(["a", "b"]) == {}
    assert cache.set("a", 1) is False
    assert cache.set_many({"a": 1, "b": 2}) is False
    assert cache.delete("a") is False
    assert cache.exists("a") is False
    assert cache.expire("a", 10) is False
    assert cache.increment("n") is None
    assert cache.get_keys("a*") == []
    assert cache.flush_pattern("a*") == 0
    return 10


def assert_unknown_server(info: dict[str, Any], rig: Rig) -> None:
    """get_info's report when Redis could not be asked: None fields, live client counters."""
    for field in SERVER_FIELDS:
        assert info[field] is None, field
    client = info["client"]
    assert client["backend"] == "redis"
    assert rig.server.password not in client["url"]
    for counter in ("hits", "misses", "decode_errors", "errors", "short_circuits", "breaker"):
        assert counter in client


class TestDownAtStart:
    """Nothing listens on the configured port from the start."""

    def test_every_operation_degrades(self, rig: Rig) -> None:
        """Construction succeeds; each call returns the spec's default and counts one error."""
        rig.server.kill()
        rig.connect(breaker_threshold=100)  # keep the breaker out: every call reaches the socket
        cache = rig.cache()
        calls = assert_degraded(cache)
        assert rig.errors == calls
        assert rig.short_circuits == 0
        assert rig.breaker == "closed"

    def test_get_info_reports_unknown_server(self, rig: Rig) -> None:
        """get_info returns a dict with None server fields and the client's counters."""
        rig.server.kill()
        rig.connect(breaker_threshold=100)
        info = rig.cache().get_info()
        assert_unknown_server(info, rig)

    def test_breaker_opens_and_short_circuits(self, rig: Rig) -> None:
        """After breaker_threshold failures calls skip Redis: short_circuits grows, errors not."""
        rig.server.kill()
        cache = rig.cache()
        threshold = rig.connection.settings.breaker_threshold
        assert threshold == 3
        for _ in range(threshold - 1):
            assert cache.get("a") is None
        assert rig.breaker == "closed"
        assert cache.get("a") is None
        assert rig.breaker == "open"
        assert rig.errors == threshold
        calls = assert_degraded(cache)
        assert rig.errors == threshold
        assert rig.short_circuits == calls
        info = cache.get_info()
        assert_unknown_server(info, rig)
        assert info["client"]["breaker"] == "open"
        assert rig.errors == threshold
        assert rig.short_circuits == calls + 1

    def test_strict_raises_unavailable_then_circuit_open(self, rig: Rig) -> None:
        """strict=True surfaces BackendUnavailable (from redis' error), then CircuitOpen."""
        rig.server.kill()
        cache = rig.cache(strict=True)
        calls: list[Callable[[], Any]] = [
            lambda: cache.get("a"),
            lambda: cache.set("a", 1),
            lambda: cache.get_keys("a*"),
        ]
        for call in calls:
            with pytest.raises(BackendUnavailable) as raised:
                call()
            assert isinstance(raised.value.__cause__, redis.ConnectionError)
            assert rig.server.password not in str(raised.value)
        assert rig.breaker == "open"
        with pytest.raises(CircuitOpen):
            cache.get("a")
        with pytest.raises(CircuitOpen):
            cache.increment("n")
        assert rig.errors == 3
        assert rig.short_circuits == 2

    def test_get_info_failures_count_toward_breaker(
        self, rig: Rig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A get_info that cannot reach Redis is a failure: it must not close the breaker."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        rig.server.kill()
        cache = rig.cache()
        assert cache.get("a") is None
        assert cache.get("a") is None
        assert_unknown_server(cache.get_info(), rig)
        assert rig.errors == 3
        assert rig.breaker == "open"
        assert messages(caplog, logging.INFO, RECOVERED) == []

    def test_strict_get_info_raises(self, rig: Rig) -> None:
        """In strict mode an unreachable server makes get_info raise, like every other call."""
        rig.server.kill()
        cache = rig.cache(strict=True)
        with pytest.raises(BackendUnavailable):
            cache.get_info()


class TestKilled:
    """The server is SIGKILLed mid-run, then started again on the same port."""

    def test_degrades_then_recovers_after_cooldown(self, rig: Rig) -> None:
        """Calls degrade, the breaker opens; after restart and cool-down one probe closes it."""
        cache = rig.cache()
        assert cache.set("k", "before") is True
        assert cache.get("k") == "before"
        rig.server.kill()
        assert cache.get("k") is None
        assert cache.set("k", "during") is False
        assert cache.increment("n") is None
        assert rig.breaker == "open"
        assert rig.errors == 3
        calls = assert_degraded(cache)
        assert rig.short_circuits == calls
        rig.server.start(rig.server.port)
        # Still inside the cool-down: Redis is not even tried.
        assert cache.set("k", "early") is False
        assert rig.short_circuits == calls + 1
        assert rig.errors == 3
        rig.wait_out_cooldown()
        assert rig.breaker == "half-open"
        assert cache.set("k", "after") is True
        assert rig.breaker == "closed"
        assert cache.get("k") == "after"
        assert cache.increment("n") == 1
        assert rig.errors == 3
        assert rig.short_circuits == calls + 1

    def test_failed_probe_reopens_for_another_cooldown(self, rig: Rig) -> None:
        """A probe into a still-dead server re-opens the breaker at once (one more error)."""
        cache = rig.cache()
        assert cache.set("k", 1) is True
        rig.server.kill()
        for _ in range(3):
            assert cache.get("k") is None
        assert rig.breaker == "open"
        rig.wait_out_cooldown()
        assert rig.breaker == "half-open"
        assert cache.get("k") is None  # the probe
        assert rig.errors == 4
        assert rig.breaker == "open"
        assert cache.get("k") is None
        assert rig.short_circuits == 1
        rig.server.start(rig.server.port)
        rig.wait_out_cooldown()
        assert cache.set("k", 2) is True
        assert rig.breaker == "closed"
        assert cache.get("k") == 2

    def test_strict_raises_then_recovers(self, rig: Rig) -> None:
        """strict=True: BackendUnavailable until the breaker opens, CircuitOpen, then values."""
        cache = rig.cache(strict=True)
        assert cache.set("k", 1) is True
        rig.server.kill()
        for _ in range(3):
            with pytest.raises(BackendUnavailable):
                cache.get("k")
        with pytest.raises(CircuitOpen):
            cache.set("k", 2)
        rig.server.start(rig.server.port)
        rig.wait_out_cooldown()
        assert cache.set("k", 3) is True
        assert cache.get("k") == 3
        assert rig.breaker == "closed"


class TestFrozen:
    """SIGSTOP: the server keeps its sockets open and answers nothing."""

    def test_timeouts_degrade_open_breaker_and_recover(
        self, rig: Rig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Reads time out (counted), the breaker opens; after SIGCONT and cool-down, values."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        cache = rig.cache()
        assert cache.set("a", "A") is True
        rig.server.freeze()
        assert cache.get("a") is None
        assert rig.errors == 1
        assert "TimeoutError" in messages(caplog, logging.WARNING, FAILED)[0]
        assert cache.set("a", "X") is False
        assert cache.exists("a") is False
        assert rig.errors == 3
        assert rig.breaker == "open"
        assert cache.get("a") is None  # short-circuited: no wait on the frozen server
        assert rig.short_circuits == 1
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert cache.get("a") in ("A", "X")  # a timed-out write may or may not have applied
        assert rig.breaker == "closed"
        assert cache.set("a", "B") is True
        assert cache.get("a") == "B"
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1

    def test_strict_raises_backend_timeout(self, rig: Rig) -> None:
        """strict=True surfaces BackendTimeout (from redis' TimeoutError), then CircuitOpen."""
        rig.connect(breaker_threshold=1)
        cache = rig.cache(strict=True)
        assert cache.set("a", "A") is True
        rig.server.freeze()
        with pytest.raises(BackendTimeout) as raised:
            cache.get("a")
        assert isinstance(raised.value.__cause__, redis.TimeoutError)
        assert rig.breaker == "open"
        with pytest.raises(CircuitOpen):
            cache.get("a")
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert cache.get("a") == "A"

    def test_new_connection_to_frozen_server_times_out(self, rig: Rig) -> None:
        """A connection made while frozen (TCP accepted, handshake unanswered) times out too."""
        rig.server.freeze()
        cache = rig.cache()
        assert cache.get("a") is None
        assert rig.errors == 1
        rig.server.thaw()
        assert cache.set("a", 1) is True
        assert cache.get("a") == 1

    def test_no_stale_or_crossed_reply_after_thaw(self, rig: Rig) -> None:
        """A reply that arrives after its timeout never answers a later call."""
        rig.connect(breaker_threshold=10)  # three timeouts in a row would open the breaker
        cache = rig.cache()
        assert cache.set_many({"a": "value of a", "b": "value of b"}) is True
        while_frozen: list[Callable[[], Any]] = [
            lambda: cache.get("a"),
            lambda: cache.get_many(["a"]),
            lambda: cache.get("a"),
        ]
        for call in while_frozen:
            rig.server.freeze()
            assert call() in (None, {})
            rig.server.thaw()
            assert cache.get("b") == "value of b"
            assert cache.get("a") == "value of a"
            assert cache.get_many(["b", "a"]) == {"a": "value of a", "b": "value of b"}
            assert cache.exists("b") is True
        assert rig.errors == len(while_frozen)
        assert rig.breaker == "closed"


class TestCancelled:
    """asyncio only: a call cancelled by the caller (a deadline) while the server is frozen."""

    def test_no_crossed_reply_after_cancellation(self, fresh_server: RedisServer) -> None:
        """A get cancelled mid-read leaves no reply behind for the next call on the pool."""
        conn = RedisConnection(
            url=fresh_server.url, socket_timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT
        )
        cache = RedisCache(conn)

        async def scenario() -> None:
            try:
                assert await cache.set_many({"a": "A", "b": "B"}) is True
                for _ in range(3):
                    fresh_server.freeze()
                    with pytest.raises(TimeoutError):
                        # Cancelled well before the socket timeout: not a Redis failure.
                        await asyncio.wait_for(cache.get("a"), TIMEOUT / 4)
                    fresh_server.thaw()
                    assert await cache.get("b") == "B"
                    assert await cache.get("a") == "A"
                    assert await cache.get_many(["b", "a"]) == {"a": "A", "b": "B"}
                assert conn.state.errors == 0
                assert breaker_state(conn) == "closed"
            finally:
                thaw_if_running(fresh_server)
                await conn.aclose()

        with asyncio.Runner() as runner:
            runner.run(scenario())

    def test_cancelled_probe_does_not_wedge_breaker(self, fresh_server: RedisServer) -> None:
        """A half-open probe that never reports back leaves the breaker open, not stuck."""
        clock = ManualClock()
        conn = RedisConnection(
            url=fresh_server.url,
            socket_timeout=TIMEOUT,
            connect_timeout=CONNECT_TIMEOUT,
            clock=clock,
        )
        cache = RedisCache(conn)
        cooldown = conn.settings.breaker_cooldown + 0.001

        async def scenario() -> None:
            try:
                assert await cache.set("k", "v") is True
                fresh_server.kill()
                for _ in range(3):
                    assert await cache.get("k") is None
                assert breaker_state(conn) == "open"
                fresh_server.start(fresh_server.port)
                fresh_server.freeze()
                clock.advance(cooldown)
                assert breaker_state(conn) == "half-open"
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(cache.get("k"), TIMEOUT / 4)  # the probe, cancelled
                assert breaker_state(conn) == "open"
                assert await cache.get("k") is None  # short-circuited while the probe is out
                short_circuits = conn.state.short_circuits
                fresh_server.thaw()
                clock.advance(cooldown)
                assert await cache.set("k", "back") is True
                assert breaker_state(conn) == "closed"
                assert await cache.get("k") == "back"
                assert conn.state.short_circuits == short_circuits
            finally:
                thaw_if_running(fresh_server)
                await conn.aclose()

        with asyncio.Runner() as runner:
            runner.run(scenario())


class TestWriteBlocked:
    """asyncio only: a request larger than the socket buffers, sent to a frozen server.

    The driver writes without redis-py's per-write task, so these check that a write which
    cannot drain still ends within the socket timeout, and that a request cut short (by the
    timeout or by the caller) never leaves half a command on a connection used again.
    """

    #: Far more than loopback socket buffers hold (a few MB), so the write must block.
    BIG = 48 * 1024 * 1024

    def blocked(
        self, server: RedisServer, step: Callable[[RedisCache, str], Awaitable[None]]
    ) -> RedisConnection:
        """Run ``step`` (given the cache and a big value) while ``server`` is frozen, then
        check that every later reply is its own and the cut request never ran."""
        conn = RedisConnection(
            url=server.url,
            socket_timeout=TIMEOUT,
            connect_timeout=CONNECT_TIMEOUT,
            max_value_bytes=self.BIG * 2,
        )
        cache = RedisCache(conn)

        async def scenario() -> None:
            try:
                assert await cache.set("a", "A") is True
                server.freeze()
                await step(cache, "x" * self.BIG)
                server.thaw()
                assert await cache.get("a") == "A"
                assert await cache.exists("big") is False
                assert await cache.set("b", "B") is True
                assert await cache.get_many(["b", "a"]) == {"a": "A", "b": "B"}
            finally:
                thaw_if_running(server)
                await conn.aclose()

        with asyncio.Runner() as runner:
            runner.run(scenario())
        return conn

    def test_blocked_write_times_out_and_the_socket_is_not_reused(
        self, fresh_server: RedisServer
    ) -> None:
        """The set degrades after about one timeout (a Redis failure, counted once)."""

        async def step(cache: RedisCache, big: str) -> None:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await cache.set("big", big) is False
            assert loop.time() - started < 20 * TIMEOUT  # bounded, not hung

        conn = self.blocked(fresh_server, step)
        assert conn.state.errors == 1

    def test_write_cancelled_while_blocked_leaves_nothing_behind(
        self, fresh_server: RedisServer
    ) -> None:
        """A caller's deadline during a blocked write is no Redis failure."""

        async def step(cache: RedisCache, big: str) -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(cache.set("big", big), TIMEOUT / 4)

        conn = self.blocked(fresh_server, step)
        assert conn.state.errors == 0
        assert breaker_state(conn) == "closed"


class TestRestarted:
    """SIGTERM and start again on the same port: no persistence, so the data is gone."""

    def test_next_call_after_restart_works(self, rig: Rig) -> None:
        """Pooled connections are re-validated: the first call after restart succeeds."""
        cache = rig.cache(strict=True)  # any failure would raise
        assert cache.set("old", 1) is True
        for round_ in range(2):
            rig.server.restart()
            rig.let_loop_run()
            assert cache.set("k", round_) is True
            assert cache.get("k") == round_
            assert cache.get("old") is None
        assert rig.errors == 0
        assert rig.short_circuits == 0
        assert rig.breaker == "closed"

    def test_connection_killed_while_idle_is_replaced(self, rig: Rig) -> None:
        """A pooled connection the server closed (CLIENT KILL) is replaced before the next call."""
        cache = rig.cache(strict=True)
        assert cache.set("k", 1) is True
        with redis.Redis.from_url(rig.server.url) as admin:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        rig.let_loop_run()
        assert cache.get("k") == 1
        assert rig.errors == 0


class TestLogging:
    """A burst of failures logs one warning, recovery one INFO line."""

    def test_one_warning_per_burst(self, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
        """Twenty failing calls log one warning; recovery logs INFO once; a new burst warns."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        rig.connect(breaker_threshold=100)
        cache = rig.cache()
        assert cache.set("k", 1) is True
        rig.server.kill()
        for _ in range(20):
            assert cache.get("k") is None
        assert rig.errors == 20
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 1
        assert rig.server.password not in warnings[0]
        assert messages(caplog, logging.INFO, RECOVERED) == []
        rig.server.start(rig.server.port)
        for _ in range(5):
            assert cache.set("k", 2) is True
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
        assert len(messages(caplog, logging.WARNING, FAILED)) == 1
        rig.server.kill()
        for _ in range(5):
            assert cache.get("k") is None
        assert len(messages(caplog, logging.WARNING, FAILED)) == 2

    def test_breaker_opening_logged_once(self, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
        """With the default breaker: one warning at the first failure, one when it opens."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        cache = rig.cache()
        assert cache.set("k", 1) is True
        rig.server.kill()
        for _ in range(20):
            assert cache.get("k") is None
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 2
        assert "skipping Redis" not in warnings[0]
        assert "skipping Redis" in warnings[1]
        assert rig.short_circuits == 17
        rig.server.start(rig.server.port)
        rig.wait_out_cooldown()
        assert cache.set("k", 2) is True
        assert cache.get("k") == 2
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
        assert len(messages(caplog, logging.WARNING, FAILED)) == 2
