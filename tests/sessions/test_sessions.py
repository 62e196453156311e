"""Sessions: RedisSessionManager, SyncRedisSessionManager, the user index and refresh tokens.

Every behaviour test runs on fakeredis and a real server, sync and async (``flavor``). Time is
driven by the manager's ``clock=`` seam (epoch milliseconds replacing Redis ``TIME`` in the
script), anchored at the server's own clock so that what the script computes and what Redis
expires agree; idle time that has "passed" is simulated by shortening a key's PTTL behind the
manager's back. A few tests wait for Redis itself to expire a key (the remaining PTTL it
reports, nothing more). A manager on a connection to a dead port with ``strict=True`` proves
that a call made no I/O: any I/O would raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import redis

import arketic_cache
from arketic_cache import (
    ConfigurationError,
    InvalidInputError,
    NotInitializedError,
    RedisSessionManager,
    SerializationError,
    SessionData,
    SessionMetadata,
    SyncRedisSessionManager,
    UserSession,
    close_redis,
    close_redis_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache._settings import ENVIRONMENT_VARIABLES

from ..helpers import Flavor

SECOND = 1000  # the seam's unit: milliseconds
HOUR_MS = 3600 * SECOND
REFRESH_TTL_MS = 14 * 86400 * SECOND

#: The spec's "Session Data Structure", verbatim.
SPEC_DATA: dict[str, Any] = {
    "user_id": "uuid",
    "email": "user@example.com",
    "role": "user",
    "login_time": "2024-01-01T00:00:00Z",
    "ip_address": "192.168.1.1",
    "user_agent": "Mozilla/5.0...",
    "last_activity": "2024-01-01T00:00:00Z",
    "metadata": {"device_type": "desktop", "browser": "chrome", "os": "windows"},
}

URLSAFE_43 = re.compile(r"[A-Za-z0-9_-]{43}")


def new_id() -> str:
    """A caller-chosen session id as an application would draw it (256 bits, 43 chars)."""
    return secrets.token_urlsafe(32)


def id_whose_hash(*, starts_with_zero: bool) -> str:
    """A fresh id whose SHA-256 (hex) starts, or does not start, with 0."""
    while True:
        session_id = new_id()
        if (sha(session_id)[0] == "0") == starts_with_zero:
            return session_id


def sha(secret: str) -> str:
    """The SHA-256 (hex) of an id or token, computed by the test."""
    return hashlib.sha256(secret.encode()).hexdigest()


def key_of(session_id: str, prefix: str = "") -> str:
    """Where the session of ``session_id`` lives."""
    return f"{prefix}session:{sha(session_id)}"


def member(session_id: str) -> str:
    """The session's member in its user's index (a JSON string of its hash)."""
    return json.dumps(sha(session_id))


def token_key(token: str) -> str:
    """Where a refresh token's record lives."""
    return f"session:refresh:{sha(token)}"


def families(raw: redis.Redis, prefix: str = "") -> set[str]:
    """The ids of every refresh-token family stored."""
    start = f"{prefix}session:refresh:family:"
    return {text(k)[len(start) :] for k in raw.keys(f"{start}*")}


def the_family(raw: redis.Redis, prefix: str = "") -> str:
    """The id of the only refresh-token family stored."""
    (family,) = families(raw, prefix)
    return family


def family_key(family: str) -> str:
    """Where a refresh-token family lives."""
    return f"session:refresh:family:{family}"


def text(value: object) -> str:
    """A reply of the ``raw`` client (decode_responses=True) as the str it is."""
    assert isinstance(value, str), value
    return value


def index_members(raw: redis.Redis, user_id: str | int) -> set[str]:
    """Every member of the user's index, live or not."""
    return {text(m) for m in raw.zrange(f"session:user:{user_id}", 0, -1)}


def indexed_families(raw: redis.Redis, user_id: str | int) -> set[str]:
    """The refresh-token families listed in the user's index (members ``"r:<id>"``)."""
    return {m[3:-1] for m in index_members(raw, user_id) if m.startswith('"r:')}


def server_ms(raw: redis.Redis) -> int:
    """The server's clock in epoch milliseconds."""
    seconds, micro = raw.time()
    return int(seconds) * SECOND + int(micro) // 1000


class FakeClock:
    """The manager's clock seam: epoch milliseconds that move only when the test says so."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 0, *, ms: int = 0) -> None:
        """Move time forward by ``seconds`` plus ``ms`` milliseconds."""
        self.now += round(seconds * SECOND) + ms


def server_clock(raw: redis.Redis) -> FakeClock:
    """A seam clock starting at the server's own time."""
    return FakeClock(server_ms(raw))


def manager(flavor: Flavor, ttl: float = 3600, **options: Any) -> Any:
    """A strict manager of the flavour (async bridged) on its connection unless given one."""
    options.setdefault("connection", flavor.connection)
    options.setdefault("strict", True)
    return flavor.wrap(SyncRedisSessionManager(ttl, **options), RedisSessionManager(ttl, **options))


def no_io_manager(flavor: Flavor, **options: Any) -> Any:
    """A strict manager on a dead connection: any I/O would raise ``BackendError``."""
    return manager(flavor, connection=flavor.dead_connection(), **options)


def wait_until_gone(raw: redis.Redis, key: str, limit: float = 5.0) -> None:
    """Wait until Redis reports ``key`` gone, sleeping exactly the PTTL it reports."""
    give_up = time.monotonic() + limit
    while (left := raw.pttl(key)) != -2:
        assert left >= 0, f"{key} has no TTL: it would never expire"
        assert time.monotonic() < give_up, f"{key} still there after {limit} s"
        time.sleep(max(left, 1) / SECOND)


def everything_in(raw: redis.Redis) -> list[str]:
    """Every key, and every field, member and value of every key, as text."""
    texts: list[str] = []
    for key in map(text, raw.scan_iter("*")):
        texts.append(key)
        kind = text(raw.type(key))
        if kind == "string":
            texts.append(text(raw.get(key) or ""))
        elif kind == "hash":
            for field, value in raw.hgetall(key).items():
                texts += [text(field), text(value)]
        elif kind == "zset":
            texts += [text(m) for m in raw.zrange(key, 0, -1)]
        elif kind == "list":
            texts += [text(v) for v in raw.lrange(key, 0, -1)]
        elif kind == "set":
            texts += [text(v) for v in raw.smembers(key)]
        else:
            pytest.fail(f"unexpected type {kind} at {key}")
    return texts


# --- 1. the spec's API and examples -----------------------------------------------------------


class TestSpecApi:
    """The spec's five calls, its data structure, its example, TTL and key prefix."""

    def test_round_trip(self, flavor: Flavor) -> None:
        """create, get, update (merge), extend, delete; then every call sees no session."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": "u1", "role": "user"}) is True
        assert sm.get_session(sid) == {"user_id": "u1", "role": "user"}
        assert sm.update_session(sid, {"role": "admin", "theme": "dark"}) is True
        assert sm.get_session(sid) == {"user_id": "u1", "role": "admin", "theme": "dark"}
        assert sm.extend_session(sid) is True
        assert sm.delete_session(sid) is True
        assert sm.get_session(sid) is None
        assert sm.get_session_data(sid) is None
        assert sm.delete_session(sid) is False
        assert sm.extend_session(sid) is False
        assert sm.update_session(sid, {"role": "x"}) is False

    def test_spec_session_data_structure(self, flavor: Flavor) -> None:
        """The spec's example comes back as stored, and typed as ``SessionData``."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, SPEC_DATA)
        assert sm.get_session(sid) == SPEC_DATA
        typed = sm.get_session_data(sid)
        assert isinstance(typed, SessionData)
        assert (typed.user_id, typed.email, typed.role) == ("uuid", "user@example.com", "user")
        assert typed.login_time == datetime(2024, 1, 1, tzinfo=UTC)
        assert typed.last_activity == datetime(2024, 1, 1, tzinfo=UTC)
        assert (typed.ip_address, typed.user_agent) == ("192.168.1.1", "Mozilla/5.0...")
        assert typed.metadata == SessionMetadata(
            device_type="desktop", browser="chrome", os="windows"
        )

    def test_session_data_model_is_stored_as_json(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A ``SessionData`` is stored as its JSON form (unset fields left out, extra fields
        kept) and listed under its user."""
        sm = manager(flavor)
        sid = new_id()
        model = SessionData.model_validate(
            {
                "user_id": 42,
                "email": "a@example.com",
                "login_time": datetime(2024, 1, 1, 12, tzinfo=UTC),
                "metadata": {"browser": "firefox"},
                "plan": "pro",
            }
        )
        assert sm.create_session(sid, model)
        assert raw.exists(key_of(sid)) == 1
        assert sm.get_session(sid) == {
            "user_id": "42",
            "email": "a@example.com",
            "login_time": "2024-01-01T12:00:00Z",
            "metadata": {"browser": "firefox"},
            "plan": "pro",
        }
        typed = sm.get_session_data(sid)
        assert typed is not None
        assert typed.model_extra == {"plan": "pro"}
        assert [s.handle for s in sm.get_user_sessions(42)] == [sha(sid)]

    def test_user_authentication_example(self, flavor: Flavor) -> None:
        """The spec's "User Authentication" call, by keyword, with an int user id."""
        sm = manager(flavor)
        user = SimpleNamespace(id=1234, email="ada@example.com", role="admin")
        token = secrets.token_urlsafe(32)
        created = sm.create_session(
            session_id=token, data={"user_id": user.id, "email": user.email, "role": user.role}
        )
        assert created is True
        assert sm.get_session(token) == {
            "user_id": 1234,
            "email": "ada@example.com",
            "role": "admin",
        }
        listed = sm.get_user_sessions(user.id)
        assert [s.handle for s in listed] == [sha(token)]
        as_str = sm.get_user_sessions("1234")  # int and str ids render alike
        assert [(s.handle, s.data) for s in as_str] == [(s.handle, s.data) for s in listed]

    def test_default_ttl_and_key_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Sessions live 3600 s by default, at ``session:<sha256 of the id>``."""
        sm = manager(flavor)
        assert sm.ttl == 3600
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 7})
        key = key_of(sid)
        assert HOUR_MS - 2 * SECOND < raw.pttl(key) <= HOUR_MS
        assert sorted(raw.keys("*")) == sorted([key, "session:user:7"])
        assert raw.type("session:user:7") == "zset"

    @pytest.mark.parametrize("where", ["manager", "connection"])
    def test_configured_key_prefix(self, flavor: Flavor, raw: redis.Redis, where: str) -> None:
        """A key prefix (the manager's ``key_prefix``, or the connection's, as set by
        REDIS_KEY_PREFIX) is put before every key the manager writes, from its first call."""
        if where == "manager":
            sm = manager(flavor, key_prefix="app1:")
        else:
            sm = manager(flavor, connection=flavor.connect(key_prefix="app1:"))
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 7})  # the manager's first call
        token = sm.issue_refresh_token(sid)
        assert token is not None
        assert sorted(raw.keys("*")) == sorted(
            [
                key_of(sid, "app1:"),
                "app1:session:user:7",
                f"app1:session:refresh:{sha(token)}",
                f"app1:session:refresh:family:{the_family(raw, 'app1:')}",
            ]
        )
        assert sm.get_session(sid) == {"user_id": 7}
        assert [s.handle for s in sm.get_user_sessions(7)] == [sha(sid)]

    def test_key_prefix_for_a_first_user_call(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A fresh prefixed manager whose first call is get_user_sessions or
        delete_user_sessions finds the user's (prefixed) index."""
        warm = manager(flavor, key_prefix="app1:")
        assert warm.get_session(new_id()) is None  # the manager has made a call
        sid = new_id()
        assert warm.create_session(sid, {"user_id": 7})
        assert raw.exists("app1:session:user:7") == 1
        listed = manager(flavor, key_prefix="app1:").get_user_sessions(7)
        assert [s.handle for s in listed] == [sha(sid)]
        assert manager(flavor, key_prefix="app1:").delete_user_sessions(7) == 1
        assert raw.keys("*") == []

    def test_survives_script_flush(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After SCRIPT FLUSH every call still works (the script is reloaded)."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 1})
        raw.script_flush()
        assert sm.extend_session(sid)
        raw.script_flush()
        assert sm.update_session(sid, {"a": 1})
        assert sm.get_session(sid) == {"user_id": 1, "a": 1}

    @pytest.mark.parametrize(
        "options",
        [
            {"ttl": 0},
            {"ttl": -1},
            {"ttl": float("nan")},
            {"ttl": float("inf")},
            {"ttl": True},
            {"ttl": "3600"},
            {"max_lifetime": 0},
            {"refresh_ttl": -5},
            {"max_data_bytes": 1},
            {"max_data_bytes": 100.0},
            {"min_id_length": 8},
            {"min_id_length": True},
        ],
        ids=repr,
    )
    def test_bad_configuration(self, options: dict[str, Any]) -> None:
        """Bad durations and sizes are refused by both twins at construction."""
        with pytest.raises(ConfigurationError):
            SyncRedisSessionManager(**options)
        with pytest.raises(ConfigurationError):
            RedisSessionManager(**options)


# --- 2. secure by construction ----------------------------------------------------------------


class TestSecureIds:
    """Ids are long secrets, never overwritten, and never reach Redis in the clear."""

    def test_new_session_ids(self, flavor: Flavor, raw: redis.Redis) -> None:
        """new_session draws 43-char URL-safe ids, all distinct, each holding its data."""
        sm = manager(flavor)
        ids = [sm.new_session({"n": n}) for n in range(20)]
        assert all(isinstance(i, str) and URLSAFE_43.fullmatch(i) for i in ids), ids
        assert len(set(ids)) == 20
        for n, sid in enumerate(ids):
            assert sm.get_session(sid) == {"n": n}
            assert raw.exists(key_of(sid)) == 1

    @pytest.mark.parametrize(
        "session_id",
        ["x" * 31, "", "x" * 513, b"x" * 43, None, 12345678901234567890123456789012345],
    )
    def test_create_refuses_bad_ids(
        self, flavor: Flavor, raw: redis.Redis, session_id: Any
    ) -> None:
        """A caller-chosen id must be a str of 32 to 512 characters: no key is written."""
        sm = manager(flavor)
        with pytest.raises(InvalidInputError):
            sm.create_session(session_id, {"user_id": 1})
        assert raw.keys("*") == []
        with pytest.raises(InvalidInputError):
            no_io_manager(flavor).create_session(session_id, {"user_id": 1})

    def test_id_length_bounds(self, flavor: Flavor) -> None:
        """32 and 512 characters are accepted and readable."""
        sm = manager(flavor)
        for sid in ("a" * 32, "b" * 512):
            assert sm.create_session(sid, {"len": len(sid)})
            assert sm.get_session(sid) == {"len": len(sid)}

    def test_existing_id_is_never_overwritten(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Creating under a taken id returns False; the stored value and its TTL stay."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": "victim", "role": "admin"})
        raw.pexpire(key_of(sid), 50_000)
        before = raw.dump(key_of(sid))
        assert sm.create_session(sid, {"user_id": "attacker", "role": "user"}) is False
        assert sm.get_session(sid) == {"user_id": "victim", "role": "admin"}
        assert raw.dump(key_of(sid)) == before
        assert raw.pttl(key_of(sid)) <= 50_000
        assert sm.get_user_sessions("attacker") == []
        assert raw.exists("session:user:attacker") == 0

    def test_longer_min_id_length(self, flavor: Flavor) -> None:
        """``min_id_length=64``: 63 characters refused, 64 accepted."""
        sm = manager(flavor, min_id_length=64)
        with pytest.raises(InvalidInputError):
            sm.create_session("x" * 63, {})
        assert sm.create_session("y" * 64, {"ok": True})
        assert sm.get_session("y" * 64) == {"ok": True}

    def test_shorter_min_id_length_ids_are_usable(self, flavor: Flavor) -> None:
        """``min_id_length=16``: a 24-char id that create_session accepts can be read,
        extended and deleted."""
        sm = manager(flavor, min_id_length=16)
        sid = secrets.token_urlsafe(18)  # 24 characters
        assert len(sid) == 24
        assert sm.create_session(sid, {"short": True})
        assert sm.get_session(sid) == {"short": True}
        assert sm.extend_session(sid) is True
        assert sm.delete_session(sid) is True

    @pytest.mark.parametrize(
        "data",
        [
            [1, 2],
            "text",
            None,
            {1: "int key"},
            {"x": object()},
            {"x": "a" * 100},
            {"user_id": True},
            {"user_id": ""},
            {"user_id": 1.5},
        ],
        ids=repr,
    )
    def test_bad_data_refused_before_io(self, flavor: Flavor, raw: redis.Redis, data: Any) -> None:
        """Data that is not a str-keyed JSON object of at most max_data_bytes (or whose
        user_id is not a non-empty str or int) raises SerializationError with no I/O."""
        with pytest.raises(SerializationError):
            no_io_manager(flavor, max_data_bytes=64).create_session(new_id(), data)
        with pytest.raises(SerializationError):
            no_io_manager(flavor, max_data_bytes=64).new_session(data)
        with pytest.raises(SerializationError):
            manager(flavor, max_data_bytes=64).create_session(new_id(), data)
        assert raw.keys("*") == []

    @pytest.mark.parametrize("presented", ["", "short", "x" * 31, "x" * 513])
    def test_impossible_ids_make_no_io(self, flavor: Flavor, presented: str) -> None:
        """A str that cannot be an id or token reads as no session, with no I/O."""
        sm = no_io_manager(flavor)
        assert sm.get_session(presented) is None
        assert sm.get_session_data(presented) is None
        assert sm.update_session(presented, {"a": 1}) is False
        assert sm.delete_session(presented) is False
        assert sm.extend_session(presented) is False
        assert sm.rotate_session(presented) is None
        assert sm.issue_refresh_token(presented) is None
        assert sm.refresh_session(presented) is None

    @pytest.mark.parametrize("presented", [None, 42, b"x" * 43, ["x" * 43]], ids=repr)
    def test_non_str_ids_raise(self, flavor: Flavor, presented: Any) -> None:
        """A non-str id or token is a programming error: InvalidInputError, no I/O."""
        sm = no_io_manager(flavor)
        calls: list[tuple[str, tuple[Any, ...]]] = [
            ("get_session", ()),
            ("get_session_data", ()),
            ("update_session", ({"a": 1},)),
            ("delete_session", ()),
            ("extend_session", ()),
            ("rotate_session", ()),
            ("issue_refresh_token", ()),
            ("refresh_session", ()),
        ]
        for name, more in calls:
            with pytest.raises(InvalidInputError):
                getattr(sm, name)(presented, *more)

    def test_no_raw_secret_anywhere_in_redis(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After a realistic workload no key, field, member or value of any type contains a
        raw session id or refresh token: only their hashes are stored."""
        sm = manager(flavor)
        secrets_seen: list[str] = []

        def seen(value: str | None) -> str:
            assert value is not None
            secrets_seen.append(value)
            return value

        # Alice: a caller-chosen id, updated, extended, rotated, refreshed twice.
        alice = seen(new_id())
        assert sm.create_session(alice, {**SPEC_DATA, "user_id": "alice"})
        assert sm.update_session(alice, {"last_activity": "2024-01-01T00:10:00Z"})
        assert sm.extend_session(alice)
        alice = seen(sm.rotate_session(alice))
        token = seen(sm.issue_refresh_token(alice))
        pair = sm.refresh_session(token)
        assert pair is not None
        alice, token = seen(pair[0]), seen(pair[1])
        pair = sm.refresh_session(token)
        assert pair is not None
        alice, token = seen(pair[0]), seen(pair[1])
        # Bob: generated ids; one token stolen and replayed (the family is revoked).
        bob = seen(sm.new_session({"user_id": "bob"}))
        stolen = seen(sm.issue_refresh_token(bob))
        pair = sm.refresh_session(stolen)
        assert pair is not None
        seen(pair[0]), seen(pair[1])
        assert sm.refresh_session(stolen) is None
        bob2 = seen(sm.new_session({"user_id": "bob"}))
        seen(sm.issue_refresh_token(bob2))
        seen(sm.issue_refresh_token(bob2))  # replaces the first
        # Carol: a session without user, with a token; one deleted session.
        carol = seen(sm.new_session({"theme": "dark"}))
        seen(sm.issue_refresh_token(carol))
        gone = seen(sm.new_session({"user_id": "alice"}))
        assert sm.delete_session(gone)
        assert sm.get_user_sessions("alice")

        texts = everything_in(raw)
        assert key_of(alice) in texts
        assert key_of(bob2) in texts
        assert key_of(carol) in texts
        assert token_key(token) in texts
        leaked = [(s, t) for s in secrets_seen for t in texts if s in t]
        assert leaked == []


# --- 3. updates: merge, atomic ----------------------------------------------------------------


class TestUpdate:
    """update_session merges top-level keys with compare-and-set; concurrent merges all land."""

    def test_shallow_merge_keeps_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """dict.update semantics (a nested object is replaced, not merged); TTL untouched."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, SPEC_DATA)
        raw.pexpire(key_of(sid), 50_000)
        assert sm.update_session(sid, {"metadata": {"os": "linux"}, "cart": [1, 2]})
        assert sm.get_session(sid) == {**SPEC_DATA, "metadata": {"os": "linux"}, "cart": [1, 2]}
        assert 0 < raw.pttl(key_of(sid)) <= 50_000

    def test_update_missing_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Updating an unknown (or ended) session returns False and writes nothing."""
        sm = manager(flavor)
        assert sm.update_session(new_id(), {"user_id": 1, "role": "admin"}) is False
        assert raw.keys("*") == []
        sid = new_id()
        assert sm.create_session(sid, {"a": 1})
        assert sm.delete_session(sid)
        assert sm.update_session(sid, {"a": 2}) is False
        assert raw.keys("*") == []

    def test_bad_update_data(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Non-mapping data raises with no I/O; a merge that would grow past max_data_bytes
        raises and leaves the session as it was."""
        with pytest.raises(SerializationError):
            no_io_manager(flavor).update_session(new_id(), [("a", 1)])
        with pytest.raises(SerializationError):
            no_io_manager(flavor).update_session(new_id(), {"x": {1, 2, object()}})
        sm = manager(flavor, max_data_bytes=64)
        sid = new_id()
        assert sm.create_session(sid, {"a": "x" * 30})
        with pytest.raises(SerializationError):
            sm.update_session(sid, {"b": "y" * 30})
        assert sm.get_session(sid) == {"a": "x" * 30}

    def test_concurrent_updates_all_survive(self, flavor: Flavor, raw: redis.Redis) -> None:
        """16 updates of different fields racing (threads released by a Barrier, or one
        asyncio.gather) all land: every field is there."""
        workers = 16
        sid = new_id()
        options: dict[str, Any] = {"connection": flavor.connection, "strict": True}
        if flavor.name == "sync":
            sync_sm = SyncRedisSessionManager(**options)
            assert sync_sm.create_session(sid, {"base": 0})
            barrier = threading.Barrier(workers)

            def update(n: int) -> bool:
                barrier.wait()
                return sync_sm.update_session(sid, {f"field{n}": n})

            with ThreadPoolExecutor(workers) as pool:
                results = list(pool.map(update, range(workers)))
            data = sync_sm.get_session(sid)
        else:
            async_sm = RedisSessionManager(**options)

            async def race() -> tuple[list[bool], dict[str, Any] | None]:
                assert await async_sm.create_session(sid, {"base": 0})
                updates = [async_sm.update_session(sid, {f"field{n}": n}) for n in range(workers)]
                done = await asyncio.gather(*updates)
                return list(done), await async_sm.get_session(sid)

            results, data = flavor.runner.run(race())
            # Every task read version 1 before any wrote: all but one had to retry.
            assert async_sm.get_info()["update_conflicts"] >= workers - 1
        assert results == [True] * workers
        assert data == {"base": 0, **{f"field{n}": n for n in range(workers)}}

    def test_corrupt_session_reads_as_none(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Stored data that is not a JSON object is dropped and counted, not returned."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"a": 1})
        raw.set(key_of(sid), "[1, 2]", keepttl=True)  # not what the manager writes
        assert sm.get_session(sid) is None
        assert raw.exists(key_of(sid)) == 0
        assert sm.get_info()["corrupt_sessions"] == 1


# --- 4. expiry and extension ------------------------------------------------------------------


class TestExpiry:
    """Idle TTL: extend and sliding reads restart it; plain reads and updates do not."""

    def test_extend_resets_idle_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After idle time (PTTL cut behind the back) extend restarts the full TTL, and the
        index score follows the seam's clock exactly."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 3})
        assert raw.zscore("session:user:3", member(sid)) == clock.now + 600 * SECOND
        raw.pexpire(key_of(sid), 5_000)
        clock.advance(595)
        assert sm.extend_session(sid) is True
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert raw.zscore("session:user:3", member(sid)) == clock.now + 600 * SECOND
        (listed,) = sm.get_user_sessions(3)
        assert 590 < listed.expires_in <= 600

    def test_read_without_sliding_leaves_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Without sliding, get_session / get_session_data / get_user_sessions keep the TTL."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 3})
        raw.pexpire(key_of(sid), 5_000)
        assert sm.get_session(sid) == {"user_id": 3}
        assert sm.get_session_data(sid) is not None
        assert len(sm.get_user_sessions(3)) == 1
        assert 0 < raw.pttl(key_of(sid)) <= 5_000

    def test_sliding_read_restarts_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """With sliding=True every read restarts the idle TTL and moves the index score."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, sliding=True, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 3})
        raw.pexpire(key_of(sid), 5_000)
        clock.advance(595)
        assert sm.get_session(sid) == {"user_id": 3}
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert raw.zscore("session:user:3", member(sid)) == clock.now + 600 * SECOND
        raw.pexpire(key_of(sid), 5_000)
        typed = sm.get_session_data(sid)
        assert typed is not None
        assert typed.user_id == "3"
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert sm.get_session(new_id()) is None

    def test_redis_expires_the_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """With ttl=0.05 Redis itself ends the session: every call then sees none."""
        sm = manager(flavor, 0.05)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 11})
        assert 0 < raw.pttl(key_of(sid)) <= 50
        wait_until_gone(raw, key_of(sid))
        assert sm.get_session(sid) is None
        assert sm.extend_session(sid) is False
        assert sm.update_session(sid, {"a": 1}) is False
        assert sm.rotate_session(sid) is None
        assert sm.issue_refresh_token(sid) is None
        assert sm.get_user_sessions(11) == []
        assert raw.keys("*") == []  # the index went with it


# --- 5. absolute lifetime ---------------------------------------------------------------------


class TestAbsoluteLifetime:
    """Nothing keeps a session past created + max_lifetime."""

    def test_extend_is_capped_then_refused(self, flavor: Flavor, raw: redis.Redis) -> None:
        """At created+max_lifetime-1s extend caps the PTTL to 1 s; at the deadline extend
        returns False and the session is gone, from its key and its user's index."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, max_lifetime=3600, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5})
        clock.advance(3000)
        assert sm.extend_session(sid)
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        clock.advance(599)  # created + 3599 s
        assert sm.extend_session(sid)
        assert 900 < raw.pttl(key_of(sid)) <= 1000
        assert raw.zscore("session:user:5", member(sid)) == clock.now + 1000
        clock.advance(1)  # created + 3600 s
        assert sm.extend_session(sid) is False
        assert raw.exists(key_of(sid)) == 0
        assert member(sid) not in index_members(raw, 5)
        assert sm.get_session(sid) is None
        assert sm.get_user_sessions(5) == []

    def test_lifetime_shorter_than_ttl_caps_creation(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """max_lifetime below the idle TTL: the session is created with the lifetime."""
        sm = manager(flavor, 3600, max_lifetime=10)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5})
        assert 9 * SECOND < raw.pttl(key_of(sid)) <= 10 * SECOND
        assert sm.extend_session(sid)
        assert raw.pttl(key_of(sid)) <= 10 * SECOND

    def test_rotate_is_capped_then_refused(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Rotation keeps the original deadline; past it rotate returns None, session gone."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, max_lifetime=3600, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5})
        clock.advance(3590)
        rotated = sm.rotate_session(sid)
        assert rotated is not None
        assert 9 * SECOND < raw.pttl(key_of(rotated)) <= 10 * SECOND
        clock.advance(10)
        assert sm.rotate_session(rotated) is None
        assert raw.exists(key_of(rotated)) == 0
        assert index_members(raw, 5) == set()

    def test_sliding_read_is_capped_then_refused(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A sliding read 1 s before the deadline leaves 1 s; at the deadline it sees none."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, max_lifetime=3600, sliding=True, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5})
        clock.advance(3599)
        assert sm.get_session(sid) == {"user_id": 5}
        assert 900 < raw.pttl(key_of(sid)) <= 1000
        clock.advance(1)
        assert sm.get_session(sid) is None
        assert raw.exists(key_of(sid)) == 0
        assert member(sid) not in index_members(raw, 5)


# --- 6. the user index ------------------------------------------------------------------------


class TestUserIndex:
    """session:user:<id> lists exactly the live sessions, and never outgrows them."""

    def test_lists_exactly_the_live_sessions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Of five sessions, one expired (clock past its score), one deleted behind the
        manager's back and one deleted by it: the other two are listed, and the ZSET holds
        nothing else after the call."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, clock=clock)
        expired = new_id()
        assert sm.create_session(expired, {"user_id": "u", "n": 0})
        clock.advance(300)
        ids = [new_id() for _ in range(4)]
        for n, sid in enumerate(ids, 1):
            assert sm.create_session(sid, {"user_id": "u", "n": n})
        raw.delete(key_of(ids[0]))
        assert sm.delete_session(ids[1])
        clock.advance(301)  # the first session's score is past
        listed = sm.get_user_sessions("u")
        assert sorted((s.handle, s.data["n"]) for s in listed) == sorted(
            [(sha(ids[2]), 3), (sha(ids[3]), 4)]
        )
        assert all(isinstance(s, UserSession) and 0 < s.expires_in <= 600 for s in listed)
        assert index_members(raw, "u") == {member(ids[2]), member(ids[3])}

    def test_never_outgrows_the_live_sessions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Expired entries leave on every read of the index and on the creates whose hash
        starts with 0 (1 in 16): forty create/expire cycles leave nothing behind."""
        clock = server_clock(raw)
        sm = manager(flavor, 60, clock=clock)
        for cycle in range(40):
            sid = id_whose_hash(starts_with_zero=cycle % 8 == 7)
            assert sm.create_session(sid, {"user_id": 8})
            if cycle % 8 == 7:  # a cleaning create: only itself is left
                assert raw.zrange("session:user:8", 0, -1) == [member(sid)]
            else:  # expired entries (and the last cleaner) wait for the next cleaner or read
                assert raw.zcard("session:user:8") == cycle % 8 + 1 + (cycle > 7)
            clock.advance(61)
        live = [id_whose_hash(starts_with_zero=False) for _ in range(3)]
        for sid in live:
            assert sm.create_session(sid, {"user_id": 8})
        assert {s.handle for s in sm.get_user_sessions(8)} == {sha(sid) for sid in live}
        assert index_members(raw, 8) == {member(sid) for sid in live}  # the read cleaned up

    def test_index_outlives_its_longest_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """On Redis' own clock the index expires no earlier than its longest-lived member,
        whatever manager (ttl) wrote last, after extensions and refresh-token issues."""
        short, long = manager(flavor, 60), manager(flavor, 3600)
        index = "session:user:9"

        def check() -> None:
            keys = [text(k) for k in raw.keys("session:*")]
            expiries = [raw.pexpiretime(k) for k in keys if k != index]
            # The script sets the index to expire at TIME (floored to the ms) + ttl, and its
            # members PEXPIRE ttl on the server's ms clock a moment later: up to 2 ms apart.
            assert raw.pexpiretime(index) >= max(expiries) - 2

        a, b = new_id(), new_id()
        assert long.create_session(a, {"user_id": 9})
        check()
        assert short.create_session(b, {"user_id": 9})
        check()
        assert 3500 * SECOND < raw.pttl(index) <= HOUR_MS
        assert long.extend_session(b)
        check()
        assert short.extend_session(a)
        check()
        token = long.issue_refresh_token(a)
        assert token is not None
        check()
        assert raw.pttl(index) > REFRESH_TTL_MS - 60 * SECOND

    def test_revoke_by_handle(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A handle from get_user_sessions ends that session (and its refresh token) only."""
        sm = manager(flavor)
        keep, end = new_id(), new_id()
        assert sm.create_session(keep, {"user_id": 4, "device": "phone"})
        assert sm.create_session(end, {"user_id": 4, "device": "laptop"})
        token = sm.issue_refresh_token(end)
        assert token is not None
        (laptop,) = [s for s in sm.get_user_sessions(4) if s.data["device"] == "laptop"]
        assert laptop.handle == sha(end)
        assert sm.revoke_session(laptop.handle) is True
        assert sm.get_session(end) is None
        assert sm.refresh_session(token) is None
        assert sm.revoke_session(laptop.handle) is False
        assert [s.handle for s in sm.get_user_sessions(4)] == [sha(keep)]
        assert index_members(raw, 4) == {member(keep)}

    @pytest.mark.parametrize(
        "handle", ["abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, None, 7], ids=repr
    )
    def test_malformed_handle(self, flavor: Flavor, handle: Any) -> None:
        """revoke_session takes only 64 lowercase hex digits (no I/O otherwise)."""
        with pytest.raises(InvalidInputError):
            no_io_manager(flavor).revoke_session(handle)

    @pytest.mark.parametrize("user_id", ["", None, True, 1.5, b"u"], ids=repr)
    def test_bad_user_id(self, flavor: Flavor, user_id: Any) -> None:
        """get_user_sessions / delete_user_sessions refuse a bad user id before any I/O."""
        sm = no_io_manager(flavor)
        with pytest.raises(InvalidInputError):
            sm.get_user_sessions(user_id)
        with pytest.raises(InvalidInputError):
            sm.delete_user_sessions(user_id)

    def test_update_never_leaves_a_session_under_another_user(self, flavor: Flavor) -> None:
        """An update naming another user_id (refused, or moving the session) leaves each
        user's list holding exactly the sessions whose data names that user."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 1})
        with contextlib.suppress(InvalidInputError):
            sm.update_session(sid, {"user_id": 2})
        owner = (sm.get_session(sid) or {})["user_id"]
        for user in (1, 2):
            listed = [s.handle for s in sm.get_user_sessions(user)]
            assert listed == ([sha(sid)] if str(owner) == str(user) else [])

    def test_sessions_without_user_are_not_indexed(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Data without user_id makes no index; another user's list stays empty."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"anonymous": True})
        assert raw.keys("*") == [key_of(sid)]
        assert sm.get_user_sessions("nobody") == []

    def test_seam_clock_behind_the_server(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The seam replaces Redis' clock for the index too: with a clock a day behind the
        server's, a fresh session is still listed and its index keeps a TTL >= the session's."""
        clock = FakeClock(server_ms(raw) - 86400 * SECOND)
        sm = manager(flavor, clock=clock)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 12})
        assert [s.handle for s in sm.get_user_sessions(12)] == [sha(sid)]
        assert raw.pttl("session:user:12") >= raw.pttl(key_of(sid)) - SECOND


# --- 7. log out everywhere --------------------------------------------------------------------


class TestLogoutEverywhere:
    """delete_user_sessions ends every session of the user and their refresh tokens."""

    def test_logout_everywhere(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Returns how many sessions ended; they and their tokens are dead; the index is
        gone; another user keeps everything."""
        sm = manager(flavor)
        a, b, c, expired = new_id(), new_id(), new_id(), new_id()
        for sid in (a, b, c, expired):
            assert sm.create_session(sid, {"user_id": 7})
        token_a = sm.issue_refresh_token(a)
        token_b = sm.issue_refresh_token(b)
        assert token_a is not None
        assert token_b is not None
        pair = sm.refresh_session(token_b)  # b ends; b2 and token_b2 take over
        assert pair is not None
        b2, token_b2 = pair
        raw.delete(key_of(expired))  # as if Redis had expired it
        other = new_id()
        assert sm.create_session(other, {"user_id": 8})
        token_other = sm.issue_refresh_token(other)
        assert token_other is not None

        assert sm.delete_user_sessions(7) == 3  # a, c, b2
        for sid in (a, b2, c):
            assert sm.get_session(sid) is None
        assert sm.refresh_session(token_a) is None
        assert sm.refresh_session(token_b2) is None
        assert sm.get_user_sessions(7) == []
        assert raw.exists(token_key(token_a), token_key(token_b2)) == 0
        assert families(raw) == indexed_families(raw, 8)
        assert len(families(raw)) == 1
        assert raw.exists("session:user:7") == 0
        assert sm.get_session(other) == {"user_id": 8}
        assert [s.handle for s in sm.get_user_sessions(8)] == [sha(other)]
        assert sm.refresh_session(token_other) is not None
        assert sm.get_info()["refresh_reuse_detected"] == 0
        assert sm.delete_user_sessions(7) == 0

    def test_logout_unknown_user(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A user without sessions: 0, and nothing written."""
        sm = manager(flavor)
        assert sm.delete_user_sessions("ghost") == 0
        assert sm.delete_user_sessions(99) == 0
        assert raw.keys("*") == []


# --- 8. rotation ------------------------------------------------------------------------------


class TestRotation:
    """rotate_session moves a session to a fresh id in one step."""

    def test_rotation(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The old id is dead for every call, the new one has the data and a fresh idle TTL,
        and the user's index lists only the new handle."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5, "role": "user"})
        raw.pexpire(key_of(sid), 5_000)
        rotated = sm.rotate_session(sid)
        assert isinstance(rotated, str)
        assert URLSAFE_43.fullmatch(rotated)
        assert rotated != sid
        assert sm.get_session(rotated) == {"user_id": 5, "role": "user"}
        assert HOUR_MS - 2 * SECOND < raw.pttl(key_of(rotated)) <= HOUR_MS
        assert raw.exists(key_of(sid)) == 0
        assert sm.get_session(sid) is None
        assert sm.update_session(sid, {"role": "admin"}) is False
        assert sm.extend_session(sid) is False
        assert sm.rotate_session(sid) is None
        assert sm.issue_refresh_token(sid) is None
        assert sm.delete_session(sid) is False
        assert [s.handle for s in sm.get_user_sessions(5)] == [sha(rotated)]
        assert index_members(raw, 5) == {member(rotated)}
        assert sm.get_session(rotated) == {"user_id": 5, "role": "user"}

    def test_rotate_unknown_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """No session: None, and nothing written."""
        sm = manager(flavor)
        assert sm.rotate_session(new_id()) is None
        assert raw.keys("*") == []

    def test_refresh_token_follows_rotation(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A token issued before rotation refreshes the rotated session (which then ends)."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 5})
        token = sm.issue_refresh_token(sid)
        assert token is not None
        rotated = sm.rotate_session(sid)
        assert rotated is not None
        assert sm.update_session(rotated, {"step": "after rotation"})
        pair = sm.refresh_session(token)
        assert pair is not None
        fresh, _ = pair
        assert sm.get_session(fresh) == {"user_id": 5, "step": "after rotation"}
        assert sm.get_session(rotated) is None
        assert [s.handle for s in sm.get_user_sessions(5)] == [sha(fresh)]

    def test_rotation_after_the_family_expired(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Rotating a session whose refresh family Redis has expired leaves no key without a
        TTL behind (every key the manager writes expires)."""
        sm = manager(flavor, refresh_ttl=0.05)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 6})
        token = sm.issue_refresh_token(sid)
        assert token is not None
        family = family_key(the_family(raw))
        wait_until_gone(raw, family)
        wait_until_gone(raw, token_key(token))
        rotated = sm.rotate_session(sid)
        assert rotated is not None
        assert sm.get_session(rotated) == {"user_id": 6}
        assert {k: raw.pttl(k) for k in raw.keys("*") if raw.pttl(k) < 0} == {}


# --- 9. refresh tokens ------------------------------------------------------------------------


class TestRefresh:
    """refresh_session exchanges a token for a new session and token; reuse ends the family."""

    def test_exchange_rotates_session_and_token(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The old session ends, the new one has its data, the token changes; the new token
        exchanges again; tokens are stored by hash with the refresh TTL."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2, "role": "user"})
        token = sm.issue_refresh_token(sid)
        assert isinstance(token, str)
        assert URLSAFE_43.fullmatch(token)
        assert REFRESH_TTL_MS - 60 * SECOND < raw.pttl(token_key(token)) <= REFRESH_TTL_MS
        family = the_family(raw)

        pair = sm.refresh_session(token)
        assert pair is not None
        new_sid, new_token = pair
        assert URLSAFE_43.fullmatch(new_sid)
        assert URLSAFE_43.fullmatch(new_token)
        assert len({sid, token, new_sid, new_token}) == 4
        assert sm.get_session(sid) is None
        assert sm.get_session(new_sid) == {"user_id": 2, "role": "user"}
        assert HOUR_MS - 2 * SECOND < raw.pttl(key_of(new_sid)) <= HOUR_MS
        assert families(raw) == {family}
        assert index_members(raw, 2) == {member(new_sid), json.dumps(f"r:{family}")}
        assert [s.handle for s in sm.get_user_sessions(2)] == [sha(new_sid)]

        third = sm.refresh_session(new_token)
        assert third is not None
        assert sm.get_session(new_sid) is None
        assert sm.get_session(third[0]) == {"user_id": 2, "role": "user"}
        assert sm.get_info()["refresh_reuse_detected"] == 0

    def test_reuse_revokes_the_family(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A stolen token used by the thief, then replayed by the owner: None, and the
        newest session and newest token both stop working; the reuse is counted once."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2})
        token = sm.issue_refresh_token(sid)
        assert token is not None
        family = the_family(raw)
        pair = sm.refresh_session(token)  # the thief
        assert pair is not None
        thief_sid, thief_token = pair
        assert sm.refresh_session(token) is None  # the owner: reuse
        assert sm.get_info()["refresh_reuse_detected"] == 1
        assert sm.get_session(thief_sid) is None
        assert sm.refresh_session(thief_token) is None
        assert sm.get_info()["refresh_reuse_detected"] == 1  # a dead token is not reuse
        assert sm.get_user_sessions(2) == []
        assert raw.exists(family_key(family)) == 0
        assert index_members(raw, 2) == set()

    def test_other_families_survive_a_reuse(self, flavor: Flavor) -> None:
        """Reuse ends only its own family: the user's other session and token still work."""
        sm = manager(flavor)
        phone, laptop = new_id(), new_id()
        assert sm.create_session(phone, {"user_id": 2, "device": "phone"})
        assert sm.create_session(laptop, {"user_id": 2, "device": "laptop"})
        phone_token = sm.issue_refresh_token(phone)
        laptop_token = sm.issue_refresh_token(laptop)
        assert phone_token is not None
        assert laptop_token is not None
        assert sm.refresh_session(phone_token) is not None
        assert sm.refresh_session(phone_token) is None
        assert sm.get_session(laptop) == {"user_id": 2, "device": "laptop"}
        assert [s.data["device"] for s in sm.get_user_sessions(2)] == ["laptop"]
        assert sm.refresh_session(laptop_token) is not None

    def test_unknown_and_garbage_tokens(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A token never issued, a session id, or garbage: None, nothing written or counted."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2})
        before = sorted(raw.keys("*"))
        for presented in (new_id(), sid, "garbage", "x" * 600, "é" * 40, sha(sid)):
            assert sm.refresh_session(presented) is None
        assert sorted(raw.keys("*")) == before
        assert sm.get_session(sid) == {"user_id": 2}
        assert sm.get_info()["refresh_reuse_detected"] == 0
        assert sm.issue_refresh_token(new_id()) is None
        assert sorted(raw.keys("*")) == before

    def test_refresh_after_the_session_expired(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Once Redis has expired the session, its token starts a new one with the data the
        family kept, listed under the user."""
        short, normal = manager(flavor, 0.05), manager(flavor)
        sid = new_id()
        assert short.create_session(sid, {"user_id": 2, "role": "user"})
        token = short.issue_refresh_token(sid)
        assert token is not None
        wait_until_gone(raw, key_of(sid))
        assert normal.get_session(sid) is None
        pair = normal.refresh_session(token)
        assert pair is not None
        assert normal.get_session(pair[0]) == {"user_id": 2, "role": "user"}
        assert HOUR_MS - 2 * SECOND < raw.pttl(key_of(pair[0])) <= HOUR_MS
        assert [s.handle for s in normal.get_user_sessions(2)] == [sha(pair[0])]

    def test_refresh_after_expiry_carries_the_latest_data(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """A session demoted by update_session and then expired: the refreshed session has
        the demoted data, not the data from when the token was issued."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2, "role": "admin"})
        token = sm.issue_refresh_token(sid)
        assert token is not None
        assert sm.update_session(sid, {"role": "user"})
        raw.delete(key_of(sid))  # as if Redis had expired it
        pair = sm.refresh_session(token)
        assert pair is not None
        assert sm.get_session(pair[0]) == {"user_id": 2, "role": "user"}

    def test_logout_revokes_the_token(self, flavor: Flavor, raw: redis.Redis) -> None:
        """delete_session ends the session's refresh token too (not counted as reuse)."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2})
        token = sm.issue_refresh_token(sid)
        assert token is not None
        family = the_family(raw)
        assert sm.delete_session(sid)
        assert sm.refresh_session(token) is None
        assert raw.exists(family_key(family), token_key(token)) == 0
        assert index_members(raw, 2) == set()
        assert sm.get_info()["refresh_reuse_detected"] == 0

    def test_reissue_replaces_the_token(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A second issue for the same session revokes the first token; the second works."""
        sm = manager(flavor)
        sid = new_id()
        assert sm.create_session(sid, {"user_id": 2})
        first = sm.issue_refresh_token(sid)
        second = sm.issue_refresh_token(sid)
        assert first is not None
        assert second is not None
        assert first != second
        assert sm.refresh_session(first) is None
        assert sm.get_session(sid) == {"user_id": 2}  # a revoked token is not reuse
        assert len([m for m in index_members(raw, 2) if m.startswith('"r:')]) == 1
        pair = sm.refresh_session(second)
        assert pair is not None
        assert sm.get_session(pair[0]) == {"user_id": 2}


# --- 10. the global managers ------------------------------------------------------------------


@pytest.fixture
def no_global_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No REDIS_* variable leaks in; no global connection before or after the test."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_session_manager.get_session(new_id())
    yield
    close_redis_sync()
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_session_manager.get_session(new_id())


@pytest.mark.usefixtures("no_global_connection")
class TestGlobalManagers:
    """``session_manager`` / ``sync_session_manager`` after init_redis."""

    def test_sync_session_manager(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """After init_redis_sync() (URL from REDIS_URL) the blocking global manager works,
        with the spec's 1 h TTL under ``session:``."""
        monkeypatch.setenv("REDIS_URL", f"memory://test-{uuid.uuid4().hex}")
        try:
            conn = init_redis_sync()
            sm = arketic_cache.sync_session_manager
            assert sm.ttl == 3600
            sid = new_id()
            assert sm.create_session(sid, {"user_id": 1, "role": "user"})
            assert sm.get_session(sid) == {"user_id": 1, "role": "user"}
            assert HOUR_MS - 2 * SECOND < conn.sync_client.pttl(key_of(sid)) <= HOUR_MS
            assert sm.update_session(sid, {"role": "admin"})
            assert sm.extend_session(sid)
            assert [s.handle for s in sm.get_user_sessions(1)] == [sha(sid)]
            assert sm.delete_session(sid)
            assert sm.get_session(sid) is None
        finally:
            close_redis_sync()

    def test_async_session_manager(self) -> None:
        """After await init_redis(url) the async global manager works."""

        async def main() -> None:
            conn = await init_redis(f"memory://test-{uuid.uuid4().hex}")
            try:
                sm = arketic_cache.session_manager
                sid = new_id()
                assert await sm.create_session(sid, {"user_id": 1})
                assert await sm.get_session(sid) == {"user_id": 1}
                assert HOUR_MS - 2 * SECOND < await conn.client.pttl(key_of(sid)) <= HOUR_MS
                assert await sm.extend_session(sid)
                generated = await sm.new_session({"user_id": 1})
                assert generated is not None
                assert await sm.delete_user_sessions(1) == 2
            finally:
                await close_redis()

        asyncio.run(main())
