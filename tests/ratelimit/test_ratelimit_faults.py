"""The rate limiter on a real redis-server that fails: down, killed, frozen, restarted.

Each test gets its own server and runs in both flavours, on the shared ``Rig``: short
socket timeouts and a manual clock for the breaker's cool-down, so nothing sleeps; the only
waits are redis-server's readiness and one socket timeout per call that reaches a frozen
server. A ``durable`` server (AOF, fsync on every write) keeps its data across a SIGKILL, so a
test can check that the calls made during an outage recorded nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    Decision,
    Limit,
    RedisRateLimiter,
    SyncRedisRateLimiter,
)
from arketic_cache.testing import RedisServer

from ..helpers import FAILED, RECOVERED, Rig, messages, rigs

pytestmark = pytest.mark.redis

KEY = "rate:user:1"
#: Outage decisions: fail open (the spec) or closed; the limiter's own answer either way.
FAIL_MODES = [pytest.param(False, id="fail-open"), pytest.param(True, id="fail-closed")]


class LimiterRig(Rig):
    """A ``Rig`` that also builds rate limiters and looks at the stored log."""

    def limiter(self, **kwargs: Any) -> Any:
        """A limiter of this flavour on the current connection (async ones bridged)."""
        conn = self.connection
        return self.flavor.wrap(
            SyncRedisRateLimiter(connection=conn, **kwargs),
            RedisRateLimiter(connection=conn, **kwargs),
        )

    def stored(self, key: str = KEY) -> int:
        """Entries in a log-mode limit's sorted set, read with a plain client."""
        with redis.Redis.from_url(self.server.url) as admin:
            return int(admin.zcard(key))


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[LimiterRig]:
    """A sync or async rig on this test's own (non-persistent) server."""
    yield from rigs(LimiterRig, request.param, fresh_server)


@pytest.fixture(params=["sync", "async"])
def durable(request: pytest.FixtureRequest, durable_server: RedisServer) -> Iterator[LimiterRig]:
    """A sync or async rig on a persistent server."""
    yield from rigs(LimiterRig, request.param, durable_server)


def assert_degraded(decision: Decision, *, allowed: bool, limit: int) -> None:
    """The answer given without Redis: nothing counted, no server time."""
    assert decision.degraded is True
    assert decision.allowed is allowed
    assert decision.count == 0
    assert decision.at is None
    assert decision.limit == limit
    assert decision.remaining == (limit if allowed else 0)
    assert decision.retry_after == (0.0 if allowed else 1.0)


def assert_recorded(decision: Decision, count: int, limit: int) -> None:
    """A real admission: Redis counted it, including itself."""
    assert decision.degraded is False
    assert decision.allowed is True
    assert decision.at is not None
    assert (decision.count, decision.remaining) == (count, limit - count)


def assert_denied(decision: Decision, limit: int) -> None:
    """A real denial from Redis: the window is full and nothing was recorded."""
    assert decision.degraded is False
    assert decision.allowed is False
    assert decision.at is not None
    assert (decision.count, decision.remaining) == (limit, 0)
    assert 0 < decision.retry_after <= 60


class TestDownAtStart:
    """Nothing listens on the configured port from the start."""

    def test_fails_open_degraded_and_counted(self, rig: LimiterRig) -> None:
        """Allowed (even past the limit), marked degraded, counted; the breaker then opens."""
        rig.server.kill()
        limiter = rig.limiter()
        for _ in range(5):
            assert limiter.is_allowed(KEY, 2) == (True, 0, 2)
        assert_degraded(limiter.check(KEY, 2), allowed=True, limit=2)
        info = limiter.get_info()
        assert info["degraded_decisions"] == 6
        assert info["errors"] == 3
        assert info["short_circuits"] == 3
        assert info["breaker"] == "open"

    def test_fail_closed_denies(self, rig: LimiterRig) -> None:
        """fail_closed=True: every decision is denied and degraded (retry in a second)."""
        rig.server.kill()
        limiter = rig.limiter(fail_closed=True)
        for _ in range(4):
            assert limiter.is_allowed(KEY, 2) == (False, 0, 0)
        assert_degraded(limiter.check(KEY, 2), allowed=False, limit=2)
        info = limiter.get_info()
        assert info["degraded_decisions"] == 5
        assert (info["errors"], info["short_circuits"]) == (3, 2)

    @pytest.mark.parametrize("fail_closed", FAIL_MODES)
    def test_strict_raises(self, rig: LimiterRig, fail_closed: bool) -> None:
        """strict=True: BackendUnavailable until the breaker opens, then CircuitOpen."""
        rig.server.kill()
        limiter = rig.limiter(strict=True, fail_closed=fail_closed)
        for _ in range(3):
            with pytest.raises(BackendUnavailable) as raised:
                limiter.is_allowed(KEY, 2)
            assert isinstance(raised.value, BackendError)
            assert isinstance(raised.value.__cause__, redis.ConnectionError)
            assert rig.server.password not in str(raised.value)
        with pytest.raises(CircuitOpen) as opened:
            limiter.check(KEY, 2)
        assert isinstance(opened.value, BackendError)
        info = limiter.get_info()
        assert info["degraded_decisions"] == 0  # nothing was answered: it raised
        assert (info["errors"], info["short_circuits"]) == (3, 1)

    def test_degraded_answer_names_the_tightest_limit(self, rig: LimiterRig) -> None:
        """With several limits, the degraded decision reports the smallest one."""
        rig.server.kill()
        limiter = rig.limiter()
        decision = limiter.check(KEY, Limit(10, 60), Limit(3, 1), Limit(100, 3600))
        assert_degraded(decision, allowed=True, limit=3)
        assert decision.window == 1

    def test_too_costly_is_denied_without_redis(self, rig: LimiterRig) -> None:
        """A cost above the limit is denied before any I/O: failing open never admits it."""
        rig.server.kill()
        limiter = rig.limiter()
        decision = limiter.check(KEY, 3, cost=4)
        assert decision.allowed is False
        assert decision.degraded is False
        assert decision.retry_after == math.inf
        info = limiter.get_info()
        assert (info["degraded_decisions"], info["errors"]) == (0, 0)


class TestKilled:
    """SIGKILL mid-run, then a start on the same port."""

    @pytest.mark.parametrize("fail_closed", FAIL_MODES)
    def test_degrades_then_resumes_counting(self, durable: LimiterRig, fail_closed: bool) -> None:
        """Degraded during the outage; after restart and cool-down the count goes on from 3."""
        rig = durable
        limiter = rig.limiter(fail_closed=fail_closed)
        for count in (1, 2, 3):
            assert limiter.is_allowed(KEY, 5) == (True, count, 5 - count)
        rig.server.kill()
        for _ in range(3):
            assert_degraded(limiter.check(KEY, 5), allowed=not fail_closed, limit=5)
        assert rig.breaker == "open"
        assert rig.errors == 3
        for _ in range(2):
            assert_degraded(limiter.check(KEY, 5), allowed=not fail_closed, limit=5)
        assert rig.short_circuits == 2
        rig.restart_after_kill()
        # Still inside the cool-down: Redis is not even tried.
        assert_degraded(limiter.check(KEY, 5), allowed=not fail_closed, limit=5)
        assert rig.short_circuits == 3
        assert rig.stored() == 3  # the AOF kept the three admissions; the outage added none
        rig.wait_out_cooldown()
        assert rig.breaker == "half-open"
        assert_recorded(limiter.check(KEY, 5), 4, 5)  # the probe (the script is reloaded)
        assert rig.breaker == "closed"
        assert limiter.is_allowed(KEY, 5) == (True, 5, 0)
        assert_denied(limiter.check(KEY, 5), 5)
        assert rig.stored() == 5
        info = limiter.get_info()
        assert info["degraded_decisions"] == 6
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (3, 3, "closed")

    def test_restart_without_persistence_starts_afresh(self, rig: LimiterRig) -> None:
        """A server that lost its data starts a new window; the outage recorded nothing."""
        limiter = rig.limiter()
        for count in (1, 2):
            assert limiter.is_allowed(KEY, 3) == (True, count, 3 - count)
        rig.server.kill()
        for _ in range(5):
            assert limiter.is_allowed(KEY, 3) == (True, 0, 3)
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        for count in (1, 2, 3):
            assert limiter.is_allowed(KEY, 3) == (True, count, 3 - count)
        assert limiter.is_allowed(KEY, 3) == (False, 3, 0)
        assert rig.stored() == 3

    def test_failed_probe_reopens(self, rig: LimiterRig) -> None:
        """A probe into a still-dead server is one more error and re-opens the breaker."""
        limiter = rig.limiter()
        rig.server.kill()
        for _ in range(3):
            assert limiter.is_allowed(KEY, 3) == (True, 0, 3)
        rig.wait_out_cooldown()
        assert_degraded(limiter.check(KEY, 3), allowed=True, limit=3)  # the probe
        assert (rig.errors, rig.short_circuits, rig.breaker) == (4, 0, "open")
        assert_degraded(limiter.check(KEY, 3), allowed=True, limit=3)
        assert rig.short_circuits == 1
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        assert_recorded(limiter.check(KEY, 3), 1, 3)
        assert rig.breaker == "closed"

    def test_strict_raises_then_recovers(self, durable: LimiterRig) -> None:
        """strict=True: BackendUnavailable, then CircuitOpen, then real decisions again."""
        rig = durable
        limiter = rig.limiter(strict=True)
        assert limiter.is_allowed(KEY, 2) == (True, 1, 1)
        rig.server.kill()
        for _ in range(3):
            with pytest.raises(BackendUnavailable):
                limiter.check(KEY, 2)
        with pytest.raises(CircuitOpen):
            limiter.check(KEY, 2)
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        assert limiter.is_allowed(KEY, 2) == (True, 2, 0)
        assert limiter.is_allowed(KEY, 2) == (False, 2, 0)
        assert limiter.get_info()["degraded_decisions"] == 0


class TestFrozen:
    """SIGSTOP: the server keeps its sockets open and answers nothing."""

    @pytest.mark.parametrize("fail_closed", FAIL_MODES)
    def test_one_timeout_then_short_circuits(self, rig: LimiterRig, fail_closed: bool) -> None:
        """With a breaker that opens on the first failure: one timeout, then no more waits."""
        rig.connect(breaker_threshold=1)
        limiter = rig.limiter(fail_closed=fail_closed)
        assert limiter.is_allowed(KEY, 5) == (True, 1, 4)
        rig.server.freeze()
        assert_degraded(limiter.check(KEY, 5), allowed=not fail_closed, limit=5)  # times out
        info = limiter.get_info()
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (1, 0, "open")
        for _ in range(10):
            assert_degraded(limiter.check(KEY, 5), allowed=not fail_closed, limit=5)
        info = limiter.get_info()
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (1, 10, "open")
        assert info["degraded_decisions"] == 11
        rig.server.thaw()
        rig.wait_out_cooldown()
        decision = limiter.check(KEY, 5)
        # The timed-out call was sent before the freeze was noticed; the server may run it
        # when it resumes. The ten short-circuited calls never reached it.
        assert decision.count in (2, 3)
        assert_recorded(decision, decision.count, 5)
        assert rig.stored() == decision.count
        assert rig.breaker == "closed"

    def test_hung_server_each_call_costs_at_most_one_timeout(self, rig: LimiterRig) -> None:
        """Default breaker: each call waits one timeout at most, and after three the breaker
        opens, so the remaining calls do not wait at all."""
        limiter = rig.limiter()
        assert limiter.is_allowed(KEY, 5) == (True, 1, 4)
        rig.server.freeze()
        for _ in range(6):
            assert_degraded(limiter.check(KEY, 5), allowed=True, limit=5)
        info = limiter.get_info()
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (3, 3, "open")

    def test_strict_raises_backend_timeout(self, rig: LimiterRig) -> None:
        """strict=True surfaces BackendTimeout, then CircuitOpen; after thaw, decisions."""
        rig.connect(breaker_threshold=1)
        limiter = rig.limiter(strict=True)
        assert limiter.is_allowed(KEY, 5) == (True, 1, 4)
        rig.server.freeze()
        with pytest.raises(BackendTimeout) as raised:
            limiter.check(KEY, 5)
        assert isinstance(raised.value.__cause__, redis.TimeoutError)
        with pytest.raises(CircuitOpen):
            limiter.check(KEY, 5)
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert limiter.check(KEY, 5).count in (2, 3)

    def test_timed_out_request_is_counted_at_most_once(self, rig: LimiterRig) -> None:
        """A request whose reply timed out may still have reached Redis (it runs on thaw):
        then it is counted once, never twice; the caller was told denied (fail closed)."""
        rig.connect(breaker_threshold=10)
        limiter = rig.limiter(fail_closed=True)
        assert limiter.is_allowed(KEY, 5) == (True, 1, 4)
        rig.server.freeze()
        assert_degraded(limiter.check(KEY, 5), allowed=False, limit=5)
        rig.server.thaw()
        after = limiter.check(KEY, 5)
        assert after.allowed is True
        assert after.count in (2, 3)
        assert rig.stored() == after.count

    def test_no_stale_reply_turns_a_denial_into_an_allowance(self, rig: LimiterRig) -> None:
        """A late "allowed" for one key never answers the next check of a full key."""
        rig.connect(breaker_threshold=10)  # every frozen call reaches the socket
        limiter = rig.limiter()
        for count in (1, 2, 3):
            assert limiter.is_allowed("full", 3) == (True, count, 3 - count)
        assert limiter.is_allowed("open", 100) == (True, 1, 99)
        for _ in range(3):
            rig.server.freeze()
            assert_degraded(limiter.check("open", 100), allowed=True, limit=100)
            rig.server.thaw()
            assert_denied(limiter.check("full", 3), 3)
            assert limiter.check("open", 100).allowed is True
        assert rig.stored("full") == 3
        assert rig.errors == 3
        assert rig.breaker == "closed"


class TestOutageDoesNotChangeTheWindow:
    """Neither failing open nor failing closed resets or fills what Redis holds."""

    @pytest.mark.parametrize("fail_closed", FAIL_MODES)
    def test_full_key_stays_denied_across_an_outage(
        self, durable: LimiterRig, fail_closed: bool
    ) -> None:
        """Denied before, degraded during (the limiter's mode), denied again after."""
        rig = durable
        limiter = rig.limiter(fail_closed=fail_closed)
        for count in (1, 2, 3):
            assert_recorded(limiter.check(KEY, 3), count, 3)
        assert_denied(limiter.check(KEY, 3), 3)
        rig.server.kill()
        for _ in range(6):
            assert_degraded(limiter.check(KEY, 3), allowed=not fail_closed, limit=3)
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        assert_denied(limiter.check(KEY, 3), 3)
        assert limiter.is_allowed(KEY, 3) == (False, 3, 0)
        assert rig.stored() == 3

    def test_outage_calls_record_nothing_in_any_limit(self, durable: LimiterRig) -> None:
        """Several limits, a cost, both storages: the stored state is the same after."""
        rig = durable
        limiter = rig.limiter()
        limits = (Limit(10, 60, "log"), Limit(20, 60, "buckets"))
        assert_recorded(limiter.check(KEY, *limits, cost=2), 2, 10)
        with redis.Redis.from_url(rig.server.url) as admin:
            before = sorted(admin.scan_iter("*"))
            snapshot = {key: admin.dump(key) for key in before}
        rig.server.kill()
        for _ in range(5):
            assert limiter.check(KEY, *limits, cost=2).degraded is True
        rig.restart_after_kill()
        with redis.Redis.from_url(rig.server.url) as admin:
            assert sorted(admin.scan_iter("*")) == before
            assert {key: admin.dump(key) for key in before} == snapshot
        rig.wait_out_cooldown()
        decision = limiter.check(KEY, *limits, cost=2)
        assert [state.count for state in decision.states] == [4, 4]


class TestLogging:
    """A burst of failures logs one warning, recovery one INFO line."""

    def test_one_warning_per_burst(self, rig: LimiterRig, caplog: pytest.LogCaptureFixture) -> None:
        """Twenty failing decisions log one warning; recovery logs once; a new burst warns."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        rig.connect(breaker_threshold=100)  # every call reaches the socket and fails
        limiter = rig.limiter()
        assert limiter.is_allowed(KEY, 50) == (True, 1, 49)
        rig.server.kill()
        for _ in range(20):
            assert limiter.is_allowed(KEY, 50) == (True, 0, 50)
        assert rig.errors == 20
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 1
        assert rig.server.password not in warnings[0]
        assert messages(caplog, logging.INFO, RECOVERED) == []
        rig.restart_after_kill()
        for count in (1, 2, 3):
            assert limiter.is_allowed(KEY, 50) == (True, count, 50 - count)
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
        assert len(messages(caplog, logging.WARNING, FAILED)) == 1
        rig.server.kill()
        for _ in range(5):
            assert limiter.is_allowed(KEY, 50) == (True, 0, 50)
        assert len(messages(caplog, logging.WARNING, FAILED)) == 2
        assert limiter.get_info()["degraded_decisions"] == 25

    def test_frozen_burst_warns_once_and_breaker_opening_once(
        self, rig: LimiterRig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Default breaker on a frozen server: a warning at the first timeout, one at opening."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        limiter = rig.limiter(fail_closed=True)
        assert limiter.is_allowed(KEY, 5) == (True, 1, 4)
        rig.server.freeze()
        for _ in range(20):
            assert limiter.is_allowed(KEY, 5) == (False, 0, 0)
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 2
        assert "TimeoutError" in warnings[0]
        assert "skipping Redis" not in warnings[0]
        assert "skipping Redis" in warnings[1]
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert limiter.check(KEY, 5).degraded is False
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
        assert len(messages(caplog, logging.WARNING, FAILED)) == 2
