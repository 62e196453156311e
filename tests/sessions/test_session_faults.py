"""The session manager on a real redis-server that fails, holds bad data, or gets bad input.

Each test gets its own server and runs in both flavours, on the shared ``Rig``: short
socket timeouts and a manual clock for the breaker's cool-down, so nothing sleeps; the only
waits are redis-server's readiness and socket timeouts against a frozen server. A ``durable``
server (AOF, fsync on every write) keeps its data across a SIGKILL, so a test can check that
the writes tried during an outage changed nothing. Bad input is sent to a strict manager on a
port where nothing listens: any I/O would raise ``BackendError``, so the expected
``InvalidInputError`` / ``SerializationError`` proves it was refused before any I/O."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from arketic_cache import BackendError, BackendTimeout, BackendUnavailable, CircuitOpen

from ..helpers import FAILED, RECOVERED, TIMEOUT, messages
from .fault_helpers import (
    DATA,
    DEGRADED,
    METHODS,
    NEW_ID,
    OTHER_ID,
    SID,
    SLOW_TIMEOUT,
    USER,
    SessionRig,
    assert_degraded,
    assert_works,
    handle_of,
    same,
)

pytestmark = pytest.mark.redis


# ============================================================================================
class TestDownAtStart:
    """Nothing listens on the configured port from the start."""

    def test_every_method_degrades_and_counts(self, rig: SessionRig) -> None:
        """Each method gives the spec's answer and counts one error (breaker kept out)."""
        rig.server.kill()
        rig.connect(breaker_threshold=100)  # every call reaches the socket
        manager = rig.manager()
        calls = assert_degraded(manager)
        assert rig.manager(sliding=True).get_session(SID) is None  # the scripted read
        info = manager.get_info()
        assert info["errors"] == calls + 1
        assert (info["short_circuits"], info["breaker"]) == (0, "closed")
        assert (info["corrupt_sessions"], info["update_conflicts"]) == (0, 0)
        assert info["refresh_reuse_detected"] == 0

    def test_breaker_opens_then_every_method_short_circuits(self, rig: SessionRig) -> None:
        """Default breaker: three errors, then every method skips Redis with the same answer."""
        rig.server.kill()
        manager = rig.manager()
        calls = assert_degraded(manager)
        info = manager.get_info()
        assert (info["errors"], info["short_circuits"]) == (3, calls - 3)
        assert info["breaker"] == "open"
        assert_degraded(manager)
        info = manager.get_info()
        assert (info["errors"], info["short_circuits"]) == (3, 2 * calls - 3)

    @pytest.mark.parametrize("method", METHODS)
    def test_strict_raises_backend_unavailable(self, rig: SessionRig, method: str) -> None:
        """strict=True: every method raises BackendUnavailable (redis' ConnectionError)."""
        rig.server.kill()
        manager = rig.manager(strict=True)
        call, _ = DEGRADED[method]
        with pytest.raises(BackendUnavailable) as raised:
            call(manager)
        assert isinstance(raised.value, BackendError)
        assert isinstance(raised.value.__cause__, redis.ConnectionError)
        assert rig.server.password not in str(raised.value)
        assert manager.get_info()["errors"] == 1

    def test_strict_circuit_open_for_every_method(self, rig: SessionRig) -> None:
        """After three BackendUnavailable, every method raises CircuitOpen without I/O."""
        rig.server.kill()
        manager = rig.manager(strict=True)
        for method in ("get_session", "update_session", "refresh_session"):
            with pytest.raises(BackendUnavailable):
                DEGRADED[method][0](manager)
        assert rig.breaker == "open"
        for method, (call, _) in DEGRADED.items():
            with pytest.raises(CircuitOpen):
                call(manager)
            assert rig.errors == 3, method
        assert rig.short_circuits == len(DEGRADED)

    def test_get_info_needs_no_server(self, rig: SessionRig) -> None:
        """get_info answers from counters alone: no I/O, no failure, no secret."""
        rig.server.kill()
        manager = rig.manager(strict=True)
        info = manager.get_info()
        for key in ("corrupt_sessions", "update_conflicts", "refresh_reuse_detected"):
            assert info[key] == 0
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (0, 0, "closed")
        assert rig.server.password not in str(info)


class TestKilled:
    """SIGKILL mid-use, then a start on the same port."""

    def test_degrades_then_recovers(self, durable: SessionRig) -> None:
        """Degraded during the outage; after restart and cool-down the old sessions are
        intact and every method works again."""
        rig = durable
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.kill()
        calls = assert_degraded(manager)
        assert (rig.errors, rig.short_circuits, rig.breaker) == (3, calls - 3, "open")
        rig.restart_after_kill()
        assert manager.get_session(SID) is None  # still inside the cool-down: not tried
        assert (rig.errors, rig.short_circuits) == (3, calls - 2)
        rig.wait_out_cooldown()
        assert rig.breaker == "half-open"
        assert manager.get_session(SID) == DATA  # the probe
        assert rig.breaker == "closed"
        assert_works(manager)
        info = manager.get_info()
        assert (info["errors"], info["short_circuits"], info["breaker"]) == (3, calls - 2, "closed")

    def test_strict_raises_then_recovers(self, durable: SessionRig) -> None:
        """strict=True: BackendUnavailable, then CircuitOpen, then real answers again."""
        rig = durable
        manager = rig.manager(strict=True)
        assert manager.create_session(SID, DATA) is True
        rig.server.kill()
        for _ in range(3):
            with pytest.raises(BackendUnavailable):
                manager.get_session(SID)
        with pytest.raises(CircuitOpen):
            manager.update_session(SID, {"n": 2})
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        assert manager.get_session(SID) == DATA
        assert_works(manager)
        assert rig.errors == 3

    def test_failed_probe_reopens(self, rig: SessionRig) -> None:
        """A probe into a still-dead server is one more error and re-opens the breaker."""
        manager = rig.manager()
        rig.server.kill()
        for _ in range(3):
            assert manager.get_session(SID) is None
        rig.wait_out_cooldown()
        assert manager.extend_session(SID) is False  # the probe
        assert (rig.errors, rig.short_circuits, rig.breaker) == (4, 0, "open")
        assert manager.new_session(DATA) is None
        assert rig.short_circuits == 1
        rig.restart_after_kill()
        rig.wait_out_cooldown()
        assert_works(manager)
        assert rig.breaker == "closed"


class TestNoLossAcrossOutage:
    """An outage neither loses what was acknowledged nor applies what was refused."""

    def test_sessions_survive_and_outage_writes_change_nothing(self, durable: SessionRig) -> None:
        """Acknowledged sessions survive a SIGKILL (AOF); every write tried during the outage
        returned its failure answer and changed no key, value or TTL."""
        rig = durable
        rig.connect(breaker_threshold=100)  # every write below reaches the dead socket
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        assert manager.update_session(SID, {"n": 2}) is True
        token = manager.issue_refresh_token(SID)
        assert isinstance(token, str)
        other = manager.new_session({"user_id": USER, "role": "viewer"})
        assert isinstance(other, str)
        before = rig.snapshot()
        assert rig.stored(SID)["v"] == 2
        rig.server.kill()
        writes: list[tuple[Callable[[], Any], Any]] = [
            (lambda: manager.update_session(SID, {"n": 99, "role": "root"}), False),
            (lambda: manager.delete_session(other), False),
            (lambda: manager.extend_session(SID), False),
            (lambda: manager.rotate_session(SID), None),
            (lambda: manager.issue_refresh_token(SID), None),
            (lambda: manager.refresh_session(token), None),
            (lambda: manager.revoke_session(handle_of(other)), False),
            (lambda: manager.delete_user_sessions(USER), 0),
            (lambda: manager.create_session(NEW_ID, DATA), False),
            (lambda: manager.new_session(DATA), None),
        ]
        for write, expected in writes:
            got = write()
            assert same(got, expected), got
        assert rig.errors == len(writes)
        rig.restart_after_kill()
        assert rig.snapshot() == before
        expected_data = {**DATA, "n": 2}
        assert manager.get_session(SID) == expected_data
        assert rig.stored(SID)["v"] == 2
        assert manager.get_session(other) == {"user_id": USER, "role": "viewer"}
        assert manager.get_session(NEW_ID) is None
        # The refresh tried during the outage did not burn the token.
        pair = manager.refresh_session(token)
        assert pair is not None
        assert manager.get_info()["refresh_reuse_detected"] == 0
        assert manager.get_session(pair[0]) == expected_data
        assert manager.update_session(pair[0], {"n": 3}) is True
        assert rig.stored(pair[0])["v"] == 2  # the new session's first update
        assert len(manager.get_user_sessions(USER)) == 2

    def test_timed_out_update_writes_nothing(self, rig: SessionRig) -> None:
        """An update whose read times out never sends its write: data and version stay."""
        rig.connect(breaker_threshold=10)
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.freeze()
        assert manager.update_session(SID, {"role": "admin"}) is False
        rig.server.thaw()
        assert manager.get_session(SID) == DATA
        assert rig.stored(SID)["v"] == 1
        assert manager.update_session(SID, {"role": "admin"}) is True
        assert rig.stored(SID)["v"] == 2
        assert rig.errors == 1


class TestFrozen:
    """SIGSTOP: the server keeps its sockets open and answers nothing."""

    def test_strict_raises_backend_timeout_then_circuit_open(self, rig: SessionRig) -> None:
        """strict=True surfaces BackendTimeout (redis' TimeoutError), then CircuitOpen."""
        rig.connect(breaker_threshold=1)
        manager = rig.manager(strict=True)
        assert manager.create_session(SID, DATA) is True
        rig.server.freeze()
        with pytest.raises(BackendTimeout) as raised:
            manager.get_session(SID)
        assert isinstance(raised.value.__cause__, redis.TimeoutError)
        assert rig.server.password not in str(raised.value)
        for method, (call, _) in DEGRADED.items():
            with pytest.raises(CircuitOpen):
                call(manager)
            assert rig.errors == 1, method
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert manager.get_session(SID) == DATA
        assert_works(manager)

    def test_breaker_short_circuits_without_waiting(self, rig: SessionRig) -> None:
        """Default breaker: three reads time out, then every method answers at once."""
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.freeze()
        assert manager.get_session(SID) is None
        assert manager.get_session_data(SID) is None
        assert manager.get_user_sessions(USER) == []
        assert (rig.errors, rig.breaker) == (3, "open")
        for method, (call, expected) in DEGRADED.items():
            started = time.monotonic()
            got = call(manager)
            assert time.monotonic() - started < TIMEOUT / 2, method  # no socket wait
            assert same(got, expected), method
        info = manager.get_info()
        assert (info["errors"], info["short_circuits"]) == (3, len(DEGRADED))
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert manager.get_session(SID) == DATA  # the reads that timed out changed nothing
        assert rig.breaker == "closed"
        assert_works(manager)

    def test_each_call_costs_at_most_one_timeout(self, rig: SessionRig) -> None:
        """With the breaker kept out, each call to a frozen server waits one socket timeout,
        not more (including calls that must open a new connection to it)."""
        rig.connect(socket_timeout=SLOW_TIMEOUT, breaker_threshold=100)
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.freeze()
        waits: dict[str, float] = {}
        for method in ("get_session", "update_session", "get_user_sessions", "create_session"):
            started = time.monotonic()
            got = DEGRADED[method][0](manager)
            waits[method] = round(time.monotonic() - started, 3)
            assert same(got, DEGRADED[method][1])
        assert rig.errors == len(waits)
        assert all(wait < 1.5 * SLOW_TIMEOUT for wait in waits.values()), waits

    def test_no_stale_reply_answers_another_session(self, rig: SessionRig) -> None:
        """A reply that arrives after its timeout never becomes another user's session."""
        rig.connect(breaker_threshold=10)
        manager = rig.manager()
        alice, bob = {"user_id": "alice"}, {"user_id": "bob"}
        assert manager.create_session(SID, alice) is True
        assert manager.create_session(OTHER_ID, bob) is True
        frozen_calls: list[Callable[[], Any]] = [
            lambda: manager.get_session(SID),
            lambda: manager.get_user_sessions("alice"),
            lambda: manager.get_session_data(SID),
        ]
        for call in frozen_calls:
            rig.server.freeze()
            assert call() in (None, [])
            rig.server.thaw()
            assert manager.get_session(OTHER_ID) == bob
            assert [s.data for s in manager.get_user_sessions("bob")] == [bob]
            assert manager.get_session(SID) == alice
        assert rig.errors == len(frozen_calls)
        assert rig.breaker == "closed"


class TestRestarted:
    """SIGTERM and start again on the same port: no persistence, so the sessions are gone."""

    def test_next_call_after_restart_works(self, rig: SessionRig) -> None:
        """Pooled connections are re-validated and the script reloaded: no error at all."""
        manager = rig.manager(strict=True)  # any failure would raise
        assert manager.create_session(SID, DATA) is True
        for round_ in range(2):
            rig.server.restart()
            rig.let_loop_run()
            assert manager.get_session(SID) is None
            assert manager.extend_session(SID) is False  # the script (NOSCRIPT, then EVAL)
            assert_works(manager, user=f"round-{round_}")
        assert (rig.errors, rig.short_circuits, rig.breaker) == (0, 0, "closed")


class TestLogging:
    """A burst of failures logs one warning, recovery one INFO line."""

    def test_one_warning_per_burst(self, rig: SessionRig, caplog: pytest.LogCaptureFixture) -> None:
        """Every method failing logs one warning; recovery logs once; a new burst warns."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        rig.connect(breaker_threshold=100)
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.kill()
        calls = assert_degraded(manager) + assert_degraded(manager)
        assert manager.get_info()["errors"] == calls
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 1
        assert rig.server.password not in warnings[0]
        assert messages(caplog, logging.INFO, RECOVERED) == []
        rig.restart_after_kill()
        assert_works(manager)
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
        assert len(messages(caplog, logging.WARNING, FAILED)) == 1
        rig.server.kill()
        assert_degraded(manager)
        assert len(messages(caplog, logging.WARNING, FAILED)) == 2

    def test_breaker_opening_logged_once(
        self, rig: SessionRig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Default breaker on a frozen server: a warning at the first timeout, one at opening."""
        caplog.set_level(logging.INFO, logger="arketic_cache")
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        rig.server.freeze()
        for _ in range(3):
            assert manager.get_session(SID) is None
        assert_degraded(manager)
        warnings = messages(caplog, logging.WARNING, FAILED)
        assert len(warnings) == 2
        assert "TimeoutError" in warnings[0]
        assert "skipping Redis" in warnings[1]
        rig.server.thaw()
        rig.wait_out_cooldown()
        assert manager.get_session(SID) == DATA
        assert len(messages(caplog, logging.INFO, RECOVERED)) == 1
