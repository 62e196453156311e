"""Sessions: RedisSessionManager, SyncRedisSessionManager, the user index and refresh tokens.

Every behaviour test runs on fakeredis and a real server, sync and async (``flavor``). Time is
driven by the manager's ``clock=`` seam (epoch milliseconds replacing Redis ``TIME`` in the
script), anchored at the server's own clock so that what the script computes and what Redis
expires agree; idle time that has "passed" is simulated by shortening a key's PTTL behind the
manager's back. A few tests wait for Redis itself to expire a key (the remaining PTTL it
reports, nothing more). A manager on a connection to a dead port with ``strict=True`` proves
that a call made no I/O: any I/O would raise."""

from __future__ import annotations

import asyncio
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from arketic_cache import (
    ConfigurationError,
    RedisSessionManager,
    SerializationError,
    SessionData,
    SessionMetadata,
    SyncRedisSessionManager,
)

from ..helpers import Flavor
from .helpers import (
    HOUR_MS,
    SECOND,
    SPEC_DATA,
    family_key,
    handle,
    index_key,
    index_members,
    key_of,
    manager,
    member,
    new_id,
    no_io_manager,
    server_clock,
    the_family,
    token_key,
    wait_until_gone,
)


class TestSpecApi:
    """The spec's five calls, its data structure, its example, TTL and key prefix."""

    def test_round_trip(self, flavor: Flavor) -> None:
        """create, get, update (merge), extend, delete; then every call sees no session."""
        sm = manager(flavor)
        sid = new_id("u1")
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
        sid = new_id(SPEC_DATA["user_id"])
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
        sid = new_id(42)
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
        assert [s.handle for s in sm.get_user_sessions(42)] == [handle(sid)]

    def test_user_authentication_example(self, flavor: Flavor) -> None:
        """The spec's "User Authentication" call, by keyword, with an int user id."""
        sm = manager(flavor)
        user = SimpleNamespace(id=1234, email="ada@example.com", role="admin")
        token = sm.session_id_prefix(user.id) + secrets.token_urlsafe(32)  # "" on a server
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
        assert [s.handle for s in listed] == [handle(token)]
        as_str = sm.get_user_sessions("1234")  # int and str ids render alike
        assert [(s.handle, s.data) for s in as_str] == [(s.handle, s.data) for s in listed]

    def test_default_ttl_and_key_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Sessions live 3600 s by default, at ``session:<sha256 of the id>``."""
        sm = manager(flavor)
        assert sm.ttl == 3600
        sid = new_id(7)
        assert sm.create_session(sid, {"user_id": 7})
        key = key_of(sid)
        assert HOUR_MS - 2 * SECOND < raw.pttl(key) <= HOUR_MS
        assert sorted(raw.keys("*")) == sorted([key, index_key(7)])
        assert raw.type(index_key(7)) == "zset"

    @pytest.mark.parametrize("where", ["manager", "connection"])
    def test_configured_key_prefix(self, flavor: Flavor, raw: redis.Redis, where: str) -> None:
        """A key prefix (the manager's ``key_prefix``, or the connection's, as set by
        REDIS_KEY_PREFIX) is put before every key the manager writes, from its first call."""
        if where == "manager":
            sm = manager(flavor, key_prefix="app1:")
        else:
            sm = manager(flavor, connection=flavor.connect(key_prefix="app1:"))
        sid = new_id(7)
        assert sm.create_session(sid, {"user_id": 7})  # the manager's first call
        token = sm.issue_refresh_token(sid)
        assert token is not None
        assert sorted(raw.keys("*")) == sorted(
            [
                key_of(sid, "app1:"),
                index_key(7, "app1:"),
                token_key(token, "app1:"),
                family_key(the_family(raw, "app1:"), "app1:"),
            ]
        )
        assert sm.get_session(sid) == {"user_id": 7}
        assert [s.handle for s in sm.get_user_sessions(7)] == [handle(sid)]

    def test_key_prefix_for_a_first_user_call(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A fresh prefixed manager whose first call is get_user_sessions or
        delete_user_sessions finds the user's (prefixed) index."""
        warm = manager(flavor, key_prefix="app1:")
        assert warm.get_session(new_id()) is None  # the manager has made a call
        sid = new_id(7)
        assert warm.create_session(sid, {"user_id": 7})
        assert raw.exists(index_key(7, "app1:")) == 1
        listed = manager(flavor, key_prefix="app1:").get_user_sessions(7)
        assert [s.handle for s in listed] == [handle(sid)]
        assert manager(flavor, key_prefix="app1:").delete_user_sessions(7) == 1
        assert raw.keys("*") == []

    def test_survives_script_flush(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After SCRIPT FLUSH every call still works (the script is reloaded)."""
        sm = manager(flavor)
        sid = new_id(1)
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


class TestUpdate:
    """update_session merges top-level keys with compare-and-set; concurrent merges all land."""

    def test_shallow_merge_keeps_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """dict.update semantics (a nested object is replaced, not merged); TTL untouched."""
        sm = manager(flavor)
        sid = new_id(SPEC_DATA["user_id"])
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
            if not flavor.backend_url.startswith("memory://"):
                # Every task read version 1 before any wrote: all but one had to retry. (On
                # the embedded backend the tasks interleave only where redis-py's write waits
                # on the loop, as from redis-py 8.0 on; before, each update runs through.)
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


class TestExpiry:
    """Idle TTL: extend and sliding reads restart it; plain reads and updates do not."""

    def test_extend_resets_idle_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After idle time (PTTL cut behind the back) extend restarts the full TTL, and the
        index score follows the seam's clock exactly."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, clock=clock)
        sid = new_id(3)
        assert sm.create_session(sid, {"user_id": 3})
        assert raw.zscore(index_key(3), member(sid)) == clock.now + 600 * SECOND
        raw.pexpire(key_of(sid), 5_000)
        clock.advance(595)
        assert sm.extend_session(sid) is True
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert raw.zscore(index_key(3), member(sid)) == clock.now + 600 * SECOND
        (listed,) = sm.get_user_sessions(3)
        assert 590 < listed.expires_in <= 600

    def test_read_without_sliding_leaves_ttl(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Without sliding, get_session / get_session_data / get_user_sessions keep the TTL."""
        sm = manager(flavor)
        sid = new_id(3)
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
        sid = new_id(3)
        assert sm.create_session(sid, {"user_id": 3})
        raw.pexpire(key_of(sid), 5_000)
        clock.advance(595)
        assert sm.get_session(sid) == {"user_id": 3}
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert raw.zscore(index_key(3), member(sid)) == clock.now + 600 * SECOND
        raw.pexpire(key_of(sid), 5_000)
        typed = sm.get_session_data(sid)
        assert typed is not None
        assert typed.user_id == "3"
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        assert sm.get_session(new_id()) is None

    def test_redis_expires_the_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """With ttl=0.05 Redis itself ends the session: every call then sees none."""
        sm = manager(flavor, 0.05)
        sid = new_id(11)
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


class TestAbsoluteLifetime:
    """Nothing keeps a session past created + max_lifetime."""

    def test_extend_is_capped_then_refused(self, flavor: Flavor, raw: redis.Redis) -> None:
        """At created+max_lifetime-1s extend caps the PTTL to 1 s; at the deadline extend
        returns False and the session is gone, from its key and its user's index."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, max_lifetime=3600, clock=clock)
        sid = new_id(5)
        assert sm.create_session(sid, {"user_id": 5})
        clock.advance(3000)
        assert sm.extend_session(sid)
        assert 590 * SECOND < raw.pttl(key_of(sid)) <= 600 * SECOND
        clock.advance(599)  # created + 3599 s
        assert sm.extend_session(sid)
        assert 900 < raw.pttl(key_of(sid)) <= 1000
        assert raw.zscore(index_key(5), member(sid)) == clock.now + 1000
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
        sid = new_id(5)
        assert sm.create_session(sid, {"user_id": 5})
        assert 9 * SECOND < raw.pttl(key_of(sid)) <= 10 * SECOND
        assert sm.extend_session(sid)
        assert raw.pttl(key_of(sid)) <= 10 * SECOND

    def test_rotate_is_capped_then_refused(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Rotation keeps the original deadline; past it rotate returns None, session gone."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, max_lifetime=3600, clock=clock)
        sid = new_id(5)
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
        sid = new_id(5)
        assert sm.create_session(sid, {"user_id": 5})
        clock.advance(3599)
        assert sm.get_session(sid) == {"user_id": 5}
        assert 900 < raw.pttl(key_of(sid)) <= 1000
        clock.advance(1)
        assert sm.get_session(sid) is None
        assert raw.exists(key_of(sid)) == 0
        assert member(sid) not in index_members(raw, 5)
