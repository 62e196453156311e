"""Faults on a real redis-server of the test's own: down, killed, frozen, restarted.

Each test gets its own server (``fresh_server``), free to be stopped, SIGKILLed, SIGSTOPped or
restarted on the same port. The breaker's cool-down runs on a manual clock, so nothing sleeps;
the only waits are redis-server's own readiness and the short socket timeouts of a frozen server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

from arketic_cache import BackendTimeout, BackendUnavailable, CircuitOpen

from ..helpers import FAILED, RECOVERED, Rig, messages
from .fault_helpers import assert_degraded, assert_unknown_server

pytestmark = pytest.mark.redis


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
