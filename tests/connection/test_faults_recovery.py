"""Faults met mid-call and recovered from: a call cancelled mid-read, writes refused by a full
server, a restart on the same port, and what the log says.

Each test gets its own server (``fresh_server``); the breaker's cool-down runs on a manual clock,
so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
import redis

from arketic_cache import RedisCache, RedisConnection
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
    thaw_if_running,
)

pytestmark = pytest.mark.redis


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
