"""The session manager on a real redis-server that fails, holds bad data, or gets bad input.

Each test gets its own server and runs in both flavours, on ``test_faults``' ``Rig``: short
socket timeouts and a manual clock for the breaker's cool-down, so nothing sleeps; the only
waits are redis-server's readiness and socket timeouts against a frozen server. A ``durable``
server (AOF, fsync on every write) keeps its data across a SIGKILL, so a test can check that
the writes tried during an outage changed nothing. Bad input is sent to a strict manager on a
port where nothing listens: any I/O would raise ``BackendError``, so the expected
``InvalidInputError`` / ``SerializationError`` proves it was refused before any I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from arketic_cache import (
    BackendError,
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
    InvalidInputError,
    RedisConnection,
    RedisSessionManager,
    SerializationError,
    SessionData,
    SyncRedisSessionManager,
)
from arketic_cache.testing import RedisServer, free_port

from ..helpers import FAILED, RECOVERED, TIMEOUT, Flavor, Rig, messages, rigs

pytestmark = pytest.mark.redis

USER = "u1"
DATA: dict[str, Any] = {"user_id": USER, "role": "member", "n": 1}
#: Session ids and refresh tokens are bearer secrets: long, and never stored or logged raw.
SID = "alice-session-id-Zq8vT3kLw0pR7mYx2cNf5bHs"
OTHER_ID = "bob-session-id-Jd4uQ9eWa1oV6iGz3tXr8yKm"
NEW_ID = "carol-session-id-Pn2hS7jLc5fB0wEq4vUk9aDx"
TOKEN = "refresh-token-Hy6rM1nTg8sC3zAe0kWq5pLv7b"
#: A stored-data write larger than the default max_data_bytes (64 KiB).
OVERSIZE = {"blob": "x" * 65536}
#: A socket timeout long enough that one timeout and two are far apart.
SLOW_TIMEOUT = 0.25

Call = Callable[[Any], Any]


def handle_of(session_id: str) -> str:
    """The SHA-256 hex under which the manager stores a session id (the spec's storage)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def session_key(session_id: str) -> str:
    """The session's key, a string (no key prefix is configured here)."""
    return "session:" + handle_of(session_id)


#: The envelope of a session written behind the manager's back, up to its data: version 1,
#: created at 1 ms, no deadline, no refresh family, no index (the layout session.lua reads).
ENVELOPE_HEAD = b'{"v":1,"c":1,"d":0,"f":null,"i":null,"data":'


def envelope(data: str | bytes) -> bytes:
    """A stored session in the envelope layout around ``data``, written as is (so it may be
    anything, JSON or not)."""
    raw = data.encode() if isinstance(data, str) else data
    return ENVELOPE_HEAD + raw + b"}"


def same(got: Any, expected: Any) -> bool:
    """Equal and of the same type (so 0 is not False and [] is not None)."""
    return type(got) is type(expected) and bool(got == expected)


#: Every method, called on the sessions above, with the spec's answer when Redis fails.
DEGRADED: dict[str, tuple[Call, Any]] = {
    "create_session": (lambda m: m.create_session(NEW_ID, DATA), False),
    "new_session": (lambda m: m.new_session(DATA), None),
    "get_session": (lambda m: m.get_session(SID), None),
    "get_session_data": (lambda m: m.get_session_data(SID), None),
    "update_session": (lambda m: m.update_session(SID, {"role": "admin"}), False),
    "delete_session": (lambda m: m.delete_session(SID), False),
    "extend_session": (lambda m: m.extend_session(SID), False),
    "rotate_session": (lambda m: m.rotate_session(SID), None),
    "get_user_sessions": (lambda m: m.get_user_sessions(USER), []),
    "delete_user_sessions": (lambda m: m.delete_user_sessions(USER), 0),
    "revoke_session": (lambda m: m.revoke_session(handle_of(SID)), False),
    "issue_refresh_token": (lambda m: m.issue_refresh_token(SID), None),
    "refresh_session": (lambda m: m.refresh_session(TOKEN), None),
}
METHODS = list(DEGRADED)


def assert_degraded(manager: Any) -> int:
    """Call every method once, check the spec's degraded answer; return the call count."""
    for name, (call, expected) in DEGRADED.items():
        got = call(manager)
        assert same(got, expected), f"{name} returned {got!r}, not {expected!r}"
    return len(DEGRADED)


def assert_works(manager: Any, user: str = "after") -> None:
    """A full healthy round of every method, with real answers (used after a recovery)."""
    data = {"user_id": user, "n": 1}
    sid = manager.new_session(data)
    assert isinstance(sid, str)
    assert manager.get_session(sid) == data
    assert manager.update_session(sid, {"n": 2}) is True
    data = {"user_id": user, "n": 2}
    typed = manager.get_session_data(sid)
    assert isinstance(typed, SessionData)
    assert typed.user_id == user
    assert manager.extend_session(sid) is True
    token = manager.issue_refresh_token(sid)
    assert isinstance(token, str)
    pair = manager.refresh_session(token)
    assert pair is not None
    refreshed, _ = pair
    assert manager.get_session(sid) is None
    assert manager.get_session(refreshed) == data
    rotated = manager.rotate_session(refreshed)
    assert isinstance(rotated, str)
    assert manager.get_session(refreshed) is None
    assert [s.handle for s in manager.get_user_sessions(user)] == [handle_of(rotated)]
    assert manager.revoke_session(handle_of(rotated)) is True
    assert manager.get_session(rotated) is None
    chosen = f"{user}-chosen-session-id-0123456789abcdef"
    assert manager.create_session(chosen, data) is True
    assert manager.create_session(chosen, data) is False  # taken
    assert manager.delete_user_sessions(user) == 1
    assert manager.get_session(chosen) is None
    assert manager.delete_session(chosen) is False


def session_manager(flavor: Flavor, conn: RedisConnection, **kwargs: Any) -> Any:
    """A session manager of this flavour on ``conn`` (async ones bridged)."""
    return flavor.wrap(
        SyncRedisSessionManager(connection=conn, **kwargs),
        RedisSessionManager(connection=conn, **kwargs),
    )


def content(admin: redis.Redis, key: bytes) -> Any:
    """A key's value, read according to its type."""
    kind = admin.type(key)
    if kind == b"hash":
        return kind, admin.hgetall(key)
    if kind == b"zset":
        return kind, admin.zrange(key, 0, -1, withscores=True)
    if kind == b"string":
        return kind, admin.get(key)
    raise AssertionError(f"unexpected {kind!r} at {key!r}")


class SessionRig(Rig):
    """A ``Rig`` that also builds session managers and looks at what Redis stores."""

    def manager(self, **kwargs: Any) -> Any:
        """A session manager of this flavour on the current connection."""
        return session_manager(self.flavor, self.connection, **kwargs)

    def admin(self) -> redis.Redis:
        """A plain client on the same server (bytes replies), to look behind the manager."""
        return redis.Redis.from_url(self.server.url)

    def raw_session(self, session_id: str) -> bytes | None:
        """The session's string exactly as Redis holds it (None when there is none)."""
        with self.admin() as admin:
            raw = admin.get(session_key(session_id))
        assert raw is None or isinstance(raw, bytes)
        return raw

    def stored(self, session_id: str) -> dict[str, Any]:
        """The session's envelope as Redis holds it, decoded (empty when there is none)."""
        raw = self.raw_session(session_id)
        if raw is None:
            return {}
        stored = json.loads(raw)
        assert isinstance(stored, dict)
        return stored

    def write_session(self, session_id: str, value: str | bytes) -> None:
        """Write the whole stored session string, as another program (or a corruption)
        might, with a TTL."""
        with self.admin() as admin:
            admin.set(session_key(session_id), value, px=600_000)

    def replace_data(self, session_id: str, data: str | bytes) -> None:
        """Replace a stored session's data with ``data``, written as is, keeping the rest of
        its envelope (version, deadline, refresh family, index key) and its TTL."""
        raw = self.raw_session(session_id)
        assert raw is not None
        # The first ',"data":' ends the envelope's head (quotes inside its strings are escaped).
        head = raw[: raw.index(b',"data":') + len(b',"data":')]
        tail = data.encode() if isinstance(data, str) else data
        with self.admin() as admin:
            admin.set(session_key(session_id), head + tail + b"}", keepttl=True)

    def exists(self, session_id: str) -> bool:
        """Whether the session's key exists (whatever its type)."""
        with self.admin() as admin:
            return bool(admin.exists(session_key(session_id)))

    def snapshot(self) -> dict[bytes, tuple[Any, bool]]:
        """Every key's content (by type) and whether it has a TTL. (Not DUMP: an AOF replay
        may store a hash's fields in another order.)"""
        with self.admin() as admin:
            return {
                key: (content(admin, key), admin.pttl(key) > 0)
                for key in sorted(admin.scan_iter("*"))
            }


@pytest.fixture(params=["sync", "async"])
def rig(request: pytest.FixtureRequest, fresh_server: RedisServer) -> Iterator[SessionRig]:
    """A sync or async rig on this test's own (non-persistent) server."""
    yield from rigs(SessionRig, request.param, fresh_server)


@pytest.fixture(params=["sync", "async"])
def durable(request: pytest.FixtureRequest, durable_server: RedisServer) -> Iterator[SessionRig]:
    """A sync or async rig on a persistent server."""
    yield from rigs(SessionRig, request.param, durable_server)


# -- a manager with no server behind it, for bad input ---------------------------------------
DEAD_PASSWORD = "dead-server-password-7f3a91"


class DeadRig:
    """Managers of one flavour on a port where nothing listens, strict by default."""

    def __init__(self, flavor: Flavor) -> None:
        self.flavor = flavor

    @property
    def connection(self) -> RedisConnection:
        return self.flavor.connection

    def manager(self, **kwargs: Any) -> Any:
        """A manager that raises ``BackendError`` on any I/O (unless told otherwise)."""
        return session_manager(self.flavor, self.connection, **{"strict": True, **kwargs})

    def assert_no_io(self) -> None:
        """Nothing reached the driver: no failure, no short-circuit."""
        counters = self.connection.state.counters()
        assert (counters["errors"], counters["short_circuits"]) == (0, 0), counters


@pytest.fixture(params=["sync", "async"])
def dead(request: pytest.FixtureRequest) -> Iterator[DeadRig]:
    """A sync or async manager factory on a dead port (connection refused at once)."""
    url = f"redis://:{DEAD_PASSWORD}@127.0.0.1:{free_port()}/0"
    with asyncio.Runner() as runner:
        flavor = Flavor(request.param, url, runner)
        yield DeadRig(flavor)
        flavor.close()


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


# ============================================================================================
#: A session in the envelope layout whose data is not a JSON object, whose bytes are not
#: UTF-8, or whose JSON escapes a lone surrogate: each must read as no session. The scripts
#: recognise the envelope, so every read (the sliding script's too) hands it to Python.
CORRUPT: list[Any] = [
    pytest.param(envelope("not json {"), id="not-json"),
    pytest.param(envelope("[1, 2, 3]"), id="json-array"),
    pytest.param(envelope('"a string"'), id="json-string"),
    pytest.param(envelope("null"), id="json-null"),
    pytest.param(envelope("42"), id="json-number"),
    pytest.param(envelope(""), id="empty"),
    pytest.param(envelope(b"\xff\xfe{}"), id="not-utf8"),
    pytest.param(envelope(b'{"k": "\xff\xfe"}'), id="not-utf8-in-a-string"),
    pytest.param(envelope(b'{"k": "\\ud800"}'), id="lone-surrogate"),
    pytest.param(envelope(b'{"\\udfff": 1}'), id="lone-surrogate-key"),
]
#: A string at the session key that is no session envelope: not JSON, not an object, without
#: its data or its int version, or not in the envelope's layout. Each must read as no session.
BROKEN: list[Any] = [
    pytest.param(b"not json {", id="bare-not-json"),
    pytest.param(b"[1, 2, 3]", id="bare-json-array"),
    pytest.param(b'"a string"', id="bare-json-string"),
    pytest.param(b"null", id="bare-json-null"),
    pytest.param(b"42", id="bare-json-number"),
    pytest.param(b"", id="bare-empty"),
    pytest.param(b"\xff\xfe{}", id="bare-not-utf8"),
    pytest.param(b'{"v":1,"c":1,"d":0,"f":null,"i":null}', id="no-data"),
    pytest.param(b'{"c":1,"d":0,"f":null,"i":null,"data":{}}', id="no-version"),
    pytest.param(b'{"v":"1","c":1,"d":0,"f":null,"i":null,"data":{}}', id="str-version"),
    pytest.param(b'{"v":1.5,"c":1,"d":0,"f":null,"i":null,"data":{}}', id="float-version"),
    pytest.param(b'{"v":true,"c":1,"d":0,"f":null,"i":null,"data":{}}', id="bool-version"),
    pytest.param(
        b'{"data":{"user_id":"u1"},"v":1,"c":1,"d":0,"f":null,"i":null}', id="other-field-order"
    ),
    pytest.param(
        b'{"v": 1, "c": 1, "d": 0, "f": null, "i": null, "data": {"user_id": "u1"}}', id="spaced"
    ),
]


def rewrite_spaced(rig: SessionRig, session_id: str) -> None:
    """Re-encode a live session's envelope as ``json.dumps`` writes it by default: the same
    fields in the same order, but with spaces, so no longer the layout the scripts read."""
    rig.write_session(session_id, json.dumps(rig.stored(session_id)))


#: Ways to corrupt a live session in place: its data, or its envelope's layout.
IN_PLACE: list[Any] = [
    pytest.param(lambda rig, sid: rig.replace_data(sid, "[broken"), id="data"),
    pytest.param(rewrite_spaced, id="layout"),
]
#: Ways to put a key of the wrong type where a session string belongs (a session hash of the
#: earlier storage format among them).
WRONG_TYPES: list[Any] = [
    pytest.param(
        lambda admin, key: admin.hset(key, mapping={"data": json.dumps(DATA), "version": "1"}),
        id="hash",
    ),
    pytest.param(lambda admin, key: admin.rpush(key, "a", "b"), id="list"),
    pytest.param(lambda admin, key: admin.zadd(key, {"a": 1.0}), id="zset"),
]
#: How the session is read: a plain GET, the sliding script, and in strict mode.
READ_MODES: list[Any] = [
    pytest.param({}, id="plain"),
    pytest.param({"sliding": True}, id="sliding"),
    pytest.param({"strict": True}, id="strict"),
]


class TestMalformedData:
    """Data written behind the manager's back that is not a session: no session, no raise."""

    @pytest.mark.parametrize("mode", READ_MODES)
    @pytest.mark.parametrize("raw", CORRUPT)
    def test_corrupt_data_reads_as_no_session_and_is_ended(
        self, rig: SessionRig, raw: bytes, mode: dict[str, Any]
    ) -> None:
        """get_session returns None, the corruption is counted, and the key is gone."""
        manager = rig.manager(**mode)
        rig.write_session(SID, raw)
        assert manager.get_session(SID) is None
        info = manager.get_info()
        assert info["corrupt_sessions"] == 1
        assert info["errors"] == 0  # bad data is not a Redis failure
        assert not rig.exists(SID)
        assert manager.get_session(SID) is None  # now simply unknown
        assert manager.get_info()["corrupt_sessions"] == 1

    @pytest.mark.parametrize("mode", READ_MODES)
    @pytest.mark.parametrize("raw", BROKEN)
    def test_broken_envelope_reads_as_no_session_and_is_ended(
        self, rig: SessionRig, raw: bytes, mode: dict[str, Any]
    ) -> None:
        """No envelope at all: get_session returns None and the key is gone, in every read
        mode. It is counted when Python decodes it: a plain read always does, while the
        sliding script parses the envelope itself and may refuse it before Python sees it."""
        manager = rig.manager(**mode)
        rig.write_session(SID, raw)
        assert manager.get_session(SID) is None
        info = manager.get_info()
        counted = info["corrupt_sessions"]
        assert counted == 1 or (mode.get("sliding") and counted == 0), counted
        assert info["errors"] == 0  # bad data is not a Redis failure
        assert not rig.exists(SID)
        assert manager.get_session(SID) is None  # now simply unknown
        assert manager.get_info()["corrupt_sessions"] == counted

    @pytest.mark.parametrize("raw", CORRUPT + BROKEN)
    def test_get_session_data_on_corrupt_data(self, rig: SessionRig, raw: bytes) -> None:
        """The typed read treats it the same way."""
        manager = rig.manager()
        rig.write_session(SID, raw)
        assert manager.get_session_data(SID) is None
        assert manager.get_info()["corrupt_sessions"] == 1
        assert not rig.exists(SID)

    @pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
    @pytest.mark.parametrize("raw", CORRUPT + BROKEN)
    def test_update_on_corrupt_data_returns_false(
        self, rig: SessionRig, raw: bytes, strict: bool
    ) -> None:
        """update_session refuses to merge into corrupt data: False, nothing merged."""
        manager = rig.manager(strict=strict)
        rig.write_session(SID, raw)
        before = rig.raw_session(SID)
        assert manager.update_session(SID, {"role": "admin"}) is False
        assert rig.raw_session(SID) in (before, None)  # untouched, or ended: never merged
        assert manager.get_info()["errors"] == 0
        assert manager.get_session(SID) is None

    @pytest.mark.parametrize("corrupt", IN_PLACE)
    def test_corrupt_member_is_left_out_of_user_sessions(
        self, rig: SessionRig, corrupt: Callable[[SessionRig, str], None]
    ) -> None:
        """One corrupt session among a user's sessions: the others are listed, it is counted."""
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        assert manager.create_session(OTHER_ID, {**DATA, "role": "viewer"}) is True
        corrupt(rig, SID)
        listed = manager.get_user_sessions(USER)
        assert [s.handle for s in listed] == [handle_of(OTHER_ID)]
        assert listed[0].data == {**DATA, "role": "viewer"}
        assert manager.get_info()["corrupt_sessions"] == 1
        assert manager.get_session(SID) is None
        assert [s.handle for s in manager.get_user_sessions(USER)] == [handle_of(OTHER_ID)]

    @pytest.mark.parametrize("sliding", [False, True], ids=["plain", "sliding"])
    def test_ended_corrupt_session_takes_its_refresh_token_along(
        self, rig: SessionRig, sliding: bool
    ) -> None:
        """Ending a corrupt session is ending it (as delete_session does): its refresh token
        dies with it, so the session cannot come back through refresh_session."""
        manager = rig.manager(sliding=sliding)
        assert manager.create_session(SID, DATA) is True
        token = manager.issue_refresh_token(SID)
        assert isinstance(token, str)
        assert rig.stored(SID)["f"] is not None  # the envelope names its refresh family
        rig.replace_data(SID, "not json")
        assert manager.get_session(SID) is None
        assert not rig.exists(SID)
        assert manager.refresh_session(token) is None
        assert manager.get_user_sessions(USER) == []

    def test_get_session_data_on_data_that_is_no_session_data(self, rig: SessionRig) -> None:
        """A JSON object whose fields do not fit SessionData (a login_time that is no time)
        is malformed too: no session, not a pydantic ValidationError; it is counted."""
        manager = rig.manager()
        rig.write_session(SID, envelope('{"user_id": "u1", "login_time": "not a time"}'))
        assert manager.get_session(SID) == {"user_id": "u1", "login_time": "not a time"}
        assert manager.get_info()["corrupt_sessions"] == 0
        assert manager.get_session_data(SID) is None
        assert manager.get_info()["corrupt_sessions"] == 1

    @pytest.mark.parametrize("sliding", [False, True], ids=["plain", "sliding"])
    @pytest.mark.parametrize("make", WRONG_TYPES)
    def test_wrong_type_key_reads_as_none(
        self, rig: SessionRig, make: Callable[[Any, str], Any], sliding: bool
    ) -> None:
        """A non-string at the session key: None (counted as an error), never an exception;
        the breaker stays closed (Redis answered)."""
        with rig.admin() as admin:
            make(admin, session_key(SID))
        manager = rig.manager(sliding=sliding)
        assert manager.get_session(SID) is None
        assert manager.get_session_data(SID) is None
        assert manager.update_session(SID, {"n": 2}) is False
        info = manager.get_info()
        assert info["errors"] == 3
        assert info["breaker"] == "closed"
        assert manager.create_session(SID, DATA) is False  # the id is taken by that key

    @pytest.mark.parametrize("sliding", [False, True], ids=["plain", "sliding"])
    @pytest.mark.parametrize("make", WRONG_TYPES)
    def test_wrong_type_key_strict_raises(
        self, rig: SessionRig, make: Callable[[Any, str], Any], sliding: bool
    ) -> None:
        """strict=True: a BackendError subclass (BackendResponseError, from WRONGTYPE)."""
        with rig.admin() as admin:
            make(admin, session_key(SID))
        manager = rig.manager(strict=True, sliding=sliding)
        with pytest.raises(BackendResponseError) as raised:
            manager.get_session(SID)
        assert isinstance(raised.value, BackendError)
        assert isinstance(raised.value.__cause__, redis.ResponseError)
        assert "WRONGTYPE" in str(raised.value)
        assert rig.server.password not in str(raised.value)
        assert rig.breaker == "closed"

    def test_failed_create_leaves_no_session(self, rig: SessionRig) -> None:
        """A create that fails (the user's index key has the wrong type) returns False and
        stores nothing: False never means "created anyway"."""
        with rig.admin() as admin:
            admin.set(f"session:user:{USER}", "not a sorted set")
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is False
        assert manager.get_info()["errors"] == 1
        assert not rig.exists(SID)
        assert manager.get_session(SID) is None


# ============================================================================================
#: create_session ids that are not acceptable session ids.
BAD_IDS: list[Any] = [
    pytest.param("short-id", id="short"),
    pytest.param("x" * 31, id="31-chars"),
    pytest.param("", id="empty"),
    pytest.param("x" * 513, id="513-chars"),
]
#: Ids that are not even strings (a programming error for every method).
NON_STR_IDS: list[Any] = [
    pytest.param(123, id="int"),
    pytest.param(None, id="None"),
    pytest.param(SID.encode(), id="bytes"),
    pytest.param([SID], id="list"),
]


def _recursive() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


#: Data that cannot be a session's JSON object.
BAD_DATA: list[Any] = [
    pytest.param(["a", "b"], id="list"),
    pytest.param([("user_id", "u1")], id="pairs"),
    pytest.param("text", id="str"),
    pytest.param(None, id="None"),
    pytest.param({1: "a"}, id="int-key"),
    pytest.param({("a",): 1}, id="tuple-key"),
    pytest.param({"k": object()}, id="object-value"),
    pytest.param({"k": "\ud800"}, id="lone-surrogate"),
    pytest.param(_recursive(), id="recursive"),
    pytest.param(OVERSIZE, id="over-max_data_bytes"),
]
#: A user_id the per-user index cannot hold.
BAD_USER_DATA: list[Any] = [
    pytest.param({"user_id": ""}, id="empty"),
    pytest.param({"user_id": [1]}, id="list"),
    pytest.param({"user_id": True}, id="bool"),
    pytest.param({"user_id": 1.5}, id="float"),
]
#: What revoke_session refuses: anything but 64 lowercase hex digits.
BAD_HANDLES: list[Any] = [
    pytest.param("not-a-handle", id="text"),
    pytest.param("0" * 63, id="63-hex"),
    pytest.param("0" * 65, id="65-hex"),
    pytest.param("A" * 64, id="upper-hex"),
    pytest.param(SID, id="a-session-id"),
    pytest.param(123, id="int"),
    pytest.param(None, id="None"),
]
BAD_USERS: list[Any] = [
    pytest.param("", id="empty"),
    pytest.param(None, id="None"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(b"u1", id="bytes"),
    pytest.param(["u1"], id="list"),
]
#: Every method that takes a session id or token, called with ``sid``.
ID_METHODS: dict[str, Callable[[Any, Any], Any]] = {
    "get_session": lambda m, sid: m.get_session(sid),
    "get_session_data": lambda m, sid: m.get_session_data(sid),
    "update_session": lambda m, sid: m.update_session(sid, {"n": 2}),
    "delete_session": lambda m, sid: m.delete_session(sid),
    "extend_session": lambda m, sid: m.extend_session(sid),
    "rotate_session": lambda m, sid: m.rotate_session(sid),
    "issue_refresh_token": lambda m, sid: m.issue_refresh_token(sid),
    "refresh_session": lambda m, sid: m.refresh_session(sid),
}
#: A method's "no such session" answer.
NO_SESSION: dict[str, Any] = {
    "get_session": None,
    "get_session_data": None,
    "update_session": False,
    "delete_session": False,
    "extend_session": False,
    "rotate_session": None,
    "issue_refresh_token": None,
    "refresh_session": None,
}
BAD_SETTINGS: list[Any] = [
    pytest.param({"ttl": 0}, id="ttl=0"),
    pytest.param({"ttl": -1}, id="ttl=-1"),
    pytest.param({"ttl": math.nan}, id="ttl=nan"),
    pytest.param({"ttl": math.inf}, id="ttl=inf"),
    pytest.param({"ttl": 0.0001}, id="ttl=0.1ms"),
    pytest.param({"ttl": True}, id="ttl=True"),
    pytest.param({"ttl": "3600"}, id="ttl=str"),
    pytest.param({"ttl": None}, id="ttl=None"),
    pytest.param({"max_lifetime": 0}, id="max_lifetime=0"),
    pytest.param({"max_lifetime": -5}, id="max_lifetime=-5"),
    pytest.param({"max_lifetime": math.nan}, id="max_lifetime=nan"),
    pytest.param({"refresh_ttl": 0}, id="refresh_ttl=0"),
    pytest.param({"refresh_ttl": math.inf}, id="refresh_ttl=inf"),
    pytest.param({"max_data_bytes": 0}, id="max_data_bytes=0"),
    pytest.param({"max_data_bytes": -1}, id="max_data_bytes=-1"),
    pytest.param({"max_data_bytes": 1}, id="max_data_bytes=1"),
    pytest.param({"max_data_bytes": 1.5}, id="max_data_bytes=float"),
    pytest.param({"max_data_bytes": True}, id="max_data_bytes=True"),
    pytest.param({"min_id_length": 8}, id="min_id_length=8"),
    pytest.param({"min_id_length": 15}, id="min_id_length=15"),
    pytest.param({"min_id_length": 32.0}, id="min_id_length=float"),
    pytest.param({"min_id_length": True}, id="min_id_length=True"),
]


class TestBadInput:
    """Refused with a clear exception before any I/O (a strict manager on a dead port)."""

    def test_the_dead_manager_does_raise_on_io(self, dead: DeadRig) -> None:
        """The premise: a valid call on it reaches the driver and raises."""
        manager = dead.manager()
        with pytest.raises(BackendUnavailable):
            manager.get_session(SID)
        assert dead.connection.state.errors == 1

    @pytest.mark.parametrize("session_id", BAD_IDS + NON_STR_IDS)
    def test_create_session_refuses_bad_ids(self, dead: DeadRig, session_id: Any) -> None:
        manager = dead.manager()
        with pytest.raises(InvalidInputError) as raised:
            manager.create_session(session_id, DATA)
        assert DEAD_PASSWORD not in str(raised.value)
        if isinstance(session_id, str) and session_id:
            assert session_id not in str(raised.value)  # an id is a secret
        dead.assert_no_io()

    @pytest.mark.parametrize("data", BAD_DATA + BAD_USER_DATA)
    def test_create_session_refuses_bad_data(self, dead: DeadRig, data: Any) -> None:
        manager = dead.manager()
        with pytest.raises(SerializationError):
            manager.create_session(SID, data)
        with pytest.raises(SerializationError):
            manager.new_session(data)
        dead.assert_no_io()

    def test_max_data_bytes_is_the_manager_s_own(self, dead: DeadRig) -> None:
        """A small max_data_bytes refuses what the default accepts."""
        manager = dead.manager(max_data_bytes=16)
        with pytest.raises(SerializationError):
            manager.create_session(SID, {"k": "0123456789"})
        with pytest.raises(SerializationError):
            manager.update_session(SID, {"k": "0123456789"})
        dead.assert_no_io()

    @pytest.mark.parametrize("data", BAD_DATA)
    def test_update_session_refuses_bad_data(self, dead: DeadRig, data: Any) -> None:
        manager = dead.manager()
        with pytest.raises(SerializationError):
            manager.update_session(SID, data)
        dead.assert_no_io()

    @pytest.mark.parametrize("data", BAD_USER_DATA)
    def test_update_session_refuses_bad_user_id_before_io(self, dead: DeadRig, data: Any) -> None:
        """A user_id create_session refuses is refused by update_session too, up front."""
        manager = dead.manager()
        with pytest.raises(SerializationError):
            manager.update_session(SID, data)
        dead.assert_no_io()

    @pytest.mark.parametrize("session_id", NON_STR_IDS)
    @pytest.mark.parametrize("method", list(ID_METHODS))
    def test_non_str_ids_are_refused(self, dead: DeadRig, method: str, session_id: Any) -> None:
        manager = dead.manager()
        with pytest.raises(InvalidInputError):
            ID_METHODS[method](manager, session_id)
        dead.assert_no_io()

    @pytest.mark.parametrize("session_id", BAD_IDS)
    @pytest.mark.parametrize("method", list(ID_METHODS))
    def test_impossible_ids_are_no_session_without_io(
        self, dead: DeadRig, method: str, session_id: str
    ) -> None:
        """A str that cannot be a session id (a stale or forged cookie) is simply no
        session: the "none" answer, at once."""
        manager = dead.manager()
        got = ID_METHODS[method](manager, session_id)
        assert same(got, NO_SESSION[method]), got
        dead.assert_no_io()

    @pytest.mark.parametrize("handle", BAD_HANDLES)
    def test_revoke_session_refuses_what_is_no_handle(self, dead: DeadRig, handle: Any) -> None:
        manager = dead.manager()
        with pytest.raises(InvalidInputError) as raised:
            manager.revoke_session(handle)
        assert SID not in str(raised.value)
        dead.assert_no_io()

    @pytest.mark.parametrize("user_id", BAD_USERS)
    def test_user_methods_refuse_bad_user_ids(self, dead: DeadRig, user_id: Any) -> None:
        manager = dead.manager()
        with pytest.raises(InvalidInputError):
            manager.get_user_sessions(user_id)
        with pytest.raises(InvalidInputError):
            manager.delete_user_sessions(user_id)
        dead.assert_no_io()

    @pytest.mark.parametrize("settings", BAD_SETTINGS)
    @pytest.mark.parametrize(
        "cls", [SyncRedisSessionManager, RedisSessionManager], ids=["sync", "async"]
    )
    def test_constructor_refuses_bad_settings(
        self, cls: type[Any], settings: dict[str, Any]
    ) -> None:
        """ConfigurationError at construction, whatever the connection (none here)."""
        with pytest.raises(ConfigurationError):
            cls(**settings)

    def test_bad_input_is_refused_the_same_without_strict(self, dead: DeadRig) -> None:
        """Input errors do not depend on strict mode (they are the caller's bug)."""
        manager = dead.manager(strict=False)
        with pytest.raises(InvalidInputError):
            manager.create_session("short", DATA)
        with pytest.raises(SerializationError):
            manager.create_session(SID, [1])
        with pytest.raises(InvalidInputError):
            manager.get_session(123)
        with pytest.raises(InvalidInputError):
            manager.revoke_session("not-a-handle")
        with pytest.raises(InvalidInputError):
            manager.get_user_sessions("")
        assert manager.get_session("short") is None
        dead.assert_no_io()


class TestBadInputOnALiveServer:
    """Bad input whose effect shows only on a real server."""

    def test_merged_data_over_the_limit_is_refused_and_nothing_written(
        self, rig: SessionRig
    ) -> None:
        """Each part fits; the merge does not: SerializationError, the session unchanged."""
        manager = rig.manager(max_data_bytes=30)
        assert manager.create_session(SID, {"a": "0123456789"}) is True
        with pytest.raises(SerializationError):
            manager.update_session(SID, {"b": "0123456789"})
        assert manager.get_session(SID) == {"a": "0123456789"}
        assert rig.stored(SID)["v"] == 1
        assert rig.errors == 0

    def test_min_id_length_below_the_default_still_finds_sessions(self, rig: SessionRig) -> None:
        """min_id_length=16 is accepted, so a 20-character id must work end to end."""
        manager = rig.manager(min_id_length=16)
        session_id = "k" * 20
        assert manager.create_session(session_id, DATA) is True
        assert manager.get_session(session_id) == DATA
        assert manager.delete_session(session_id) is True

    def test_huge_ttl_never_leaves_an_immortal_session(self, rig: SessionRig) -> None:
        """A ttl the constructor accepts must either work or be refused; a create that
        reports failure must not leave a session without TTL behind."""
        try:
            manager = rig.manager(ttl=1e300)
        except ConfigurationError:
            return  # refused up front: fine
        created = manager.create_session(SID, {"k": 1})
        with rig.admin() as admin:
            pttl = admin.pttl(session_key(SID))
        if created:
            assert pttl > 0
        else:
            assert pttl == -2, f"create_session returned False but left a key (pttl={pttl})"

    def test_user_id_change_keeps_log_out_everywhere_working(self, rig: SessionRig) -> None:
        """An update that changes user_id is either refused or followed by the index: the
        user the data names can always end the session with delete_user_sessions."""
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        with contextlib.suppress(InvalidInputError, SerializationError):
            manager.update_session(SID, {"user_id": "u2"})
        owner = manager.get_session(SID)["user_id"]
        assert manager.delete_user_sessions(owner) == 1
        assert manager.get_session(SID) is None


# ============================================================================================
class TestSecrets:
    """The server's password and the session ids never leak."""

    def test_password_never_appears(
        self, rig: SessionRig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Not in get_info, repr, any log record, or any exception raised in strict mode
        (response error, timeout, refused, circuit open, wrong password)."""
        caplog.set_level(logging.DEBUG)
        password = rig.server.password
        manager = rig.manager(strict=True)
        assert manager.create_session(SID, DATA) is True
        raised: list[BaseException] = []
        with rig.admin() as admin:
            admin.hset(session_key(OTHER_ID), "data", "wrong type")  # not a string: WRONGTYPE
        with pytest.raises(BackendResponseError) as response:
            manager.get_session(OTHER_ID)
        raised.append(response.value)
        rig.server.freeze()
        with pytest.raises(BackendTimeout) as timeout:
            manager.update_session(SID, {"n": 2})
        raised.append(timeout.value)
        rig.server.thaw()
        rig.server.kill()
        for _ in range(2):
            with pytest.raises(BackendUnavailable) as unavailable:
                manager.refresh_session(TOKEN)
            raised.append(unavailable.value)
        with pytest.raises(CircuitOpen) as circuit:
            manager.get_user_sessions(USER)
        raised.append(circuit.value)
        rig.restart_after_kill()
        wrong = "wrong-password-" + password[:4] + "x9"
        conn = RedisConnection(url=f"redis://:{wrong}@127.0.0.1:{rig.server.port}/0")
        rig.flavor.connections.append(conn)  # closed with the rig
        intruder = session_manager(rig.flavor, conn, strict=True)
        with pytest.raises(BackendUnavailable) as refused:
            intruder.get_session(SID)
        raised.append(refused.value)
        for exc in raised:
            for text in (str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)):
                assert password not in text
                assert wrong not in text
        for shown in (manager, intruder):
            assert password not in repr(shown)
            assert password not in str(shown.get_info())
        assert wrong not in repr(intruder) + str(intruder.get_info())
        assert caplog.records  # the failures were logged
        for record in caplog.records:
            assert password not in record.getMessage()
            assert wrong not in record.getMessage()
        assert password not in caplog.text

    def test_ids_and_tokens_never_reach_redis_or_the_logs(
        self, rig: SessionRig, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Redis holds only hashes of ids and tokens; failures never log them."""
        caplog.set_level(logging.DEBUG)
        manager = rig.manager()
        assert manager.create_session(SID, DATA) is True
        token = manager.issue_refresh_token(SID)
        assert isinstance(token, str)
        pair = manager.refresh_session(token)
        assert pair is not None
        secrets = [SID, token, *pair]
        with rig.admin() as admin:
            stored = b" ".join(
                key + b" " + (admin.dump(key) or b"") for key in admin.scan_iter("*")
            )
        for secret in secrets:
            assert secret.encode() not in stored
        rig.server.kill()
        assert manager.get_session(pair[0]) is None
        assert manager.refresh_session(pair[1]) is None
        assert manager.update_session(pair[0], {"n": 2}) is False
        for secret in secrets:
            assert secret not in caplog.text
