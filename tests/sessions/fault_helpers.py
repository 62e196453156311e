"""What the session fault tests share: the spec's degraded answers per method, stored
envelopes, and the rigs (a server of the test's own, a durable one, a dead port)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

import redis

from arketic_cache import RedisConnection, RedisSessionManager, SessionData, SyncRedisSessionManager

from ..helpers import Flavor, Rig

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


class PatientSessionRig(SessionRig):
    """A ``SessionRig`` with generous timeouts, for tests about data rather than faults: a
    loaded machine's slow connect must not read as a degraded call there."""

    timeouts: ClassVar[dict[str, float]] = {"socket_timeout": 5.0, "connect_timeout": 5.0}


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
