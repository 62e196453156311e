"""A user's sessions: the per-user index, logging out everywhere, and the global managers.

Every test runs on fakeredis and a real server, sync and async (``flavor``), on the manager's
clock seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import arketic_cache
from arketic_cache import (
    InvalidInputError,
    NotInitializedError,
    UserSession,
    close_redis,
    close_redis_sync,
    init_redis,
    init_redis_sync,
)
from arketic_cache._settings import ENVIRONMENT_VARIABLES

from ..helpers import Flavor
from .helpers import (
    HOUR_MS,
    REFRESH_TTL_MS,
    SECOND,
    FakeClock,
    families,
    handle,
    id_whose_hash,
    index_key,
    index_members,
    indexed_families,
    key_of,
    manager,
    member,
    new_id,
    no_io_manager,
    server_clock,
    server_ms,
    text,
    token_key,
)


class TestUserIndex:
    """session:user:<id> lists exactly the live sessions, and never outgrows them."""

    def test_lists_exactly_the_live_sessions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Of five sessions, one expired (clock past its score), one deleted behind the
        manager's back and one deleted by it: the other two are listed, and the ZSET holds
        nothing else after the call."""
        clock = server_clock(raw)
        sm = manager(flavor, 600, clock=clock)
        expired = new_id("u")
        assert sm.create_session(expired, {"user_id": "u", "n": 0})
        clock.advance(300)
        ids = [new_id("u") for _ in range(4)]
        for n, sid in enumerate(ids, 1):
            assert sm.create_session(sid, {"user_id": "u", "n": n})
        raw.delete(key_of(ids[0]))
        assert sm.delete_session(ids[1])
        clock.advance(301)  # the first session's score is past
        listed = sm.get_user_sessions("u")
        assert sorted((s.handle, s.data["n"]) for s in listed) == sorted(
            [(handle(ids[2]), 3), (handle(ids[3]), 4)]
        )
        assert all(isinstance(s, UserSession) and 0 < s.expires_in <= 600 for s in listed)
        assert index_members(raw, "u") == {member(ids[2]), member(ids[3])}

    def test_never_outgrows_the_live_sessions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Expired entries leave on every read of the index and on the creates whose hash
        starts with 0 (1 in 16): forty create/expire cycles leave nothing behind."""
        clock = server_clock(raw)
        sm = manager(flavor, 60, clock=clock)
        for cycle in range(40):
            sid = id_whose_hash(starts_with_zero=cycle % 8 == 7, user=8)
            assert sm.create_session(sid, {"user_id": 8})
            if cycle % 8 == 7:  # a cleaning create: only itself is left
                assert raw.zrange(index_key(8), 0, -1) == [member(sid)]
            else:  # expired entries (and the last cleaner) wait for the next cleaner or read
                assert raw.zcard(index_key(8)) == cycle % 8 + 1 + (cycle > 7)
            clock.advance(61)
        live = [id_whose_hash(starts_with_zero=False, user=8) for _ in range(3)]
        for sid in live:
            assert sm.create_session(sid, {"user_id": 8})
        assert {s.handle for s in sm.get_user_sessions(8)} == {handle(sid) for sid in live}
        assert index_members(raw, 8) == {member(sid) for sid in live}  # the read cleaned up

    def test_index_outlives_its_longest_session(self, flavor: Flavor, raw: redis.Redis) -> None:
        """On Redis' own clock the index expires no earlier than its longest-lived member,
        whatever manager (ttl) wrote last, after extensions and refresh-token issues."""
        short, long = manager(flavor, 60), manager(flavor, 3600)
        index = index_key(9)

        def check() -> None:
            keys = [text(k) for k in raw.keys("session:*")]
            expiries = [raw.pexpiretime(k) for k in keys if k != index]
            # The script sets the index to expire at TIME (floored to the ms) + ttl, and its
            # members PEXPIRE ttl on the server's ms clock a moment later: up to 2 ms apart.
            assert raw.pexpiretime(index) >= max(expiries) - 2

        a, b = new_id(9), new_id(9)
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
        keep, end = new_id(4), new_id(4)
        assert sm.create_session(keep, {"user_id": 4, "device": "phone"})
        assert sm.create_session(end, {"user_id": 4, "device": "laptop"})
        token = sm.issue_refresh_token(end)
        assert token is not None
        (laptop,) = [s for s in sm.get_user_sessions(4) if s.data["device"] == "laptop"]
        assert laptop.handle == handle(end)
        assert sm.revoke_session(laptop.handle) is True
        assert sm.get_session(end) is None
        assert sm.refresh_session(token) is None
        assert sm.revoke_session(laptop.handle) is False
        assert [s.handle for s in sm.get_user_sessions(4)] == [handle(keep)]
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
        sid = new_id(1)
        assert sm.create_session(sid, {"user_id": 1})
        with contextlib.suppress(InvalidInputError):
            sm.update_session(sid, {"user_id": 2})
        owner = (sm.get_session(sid) or {})["user_id"]
        for user in (1, 2):
            listed = [s.handle for s in sm.get_user_sessions(user)]
            assert listed == ([handle(sid)] if str(owner) == str(user) else [])

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
        sid = new_id(12)
        assert sm.create_session(sid, {"user_id": 12})
        assert [s.handle for s in sm.get_user_sessions(12)] == [handle(sid)]
        assert raw.pttl(index_key(12)) >= raw.pttl(key_of(sid)) - SECOND


class TestLogoutEverywhere:
    """delete_user_sessions ends every session of the user and their refresh tokens."""

    def test_logout_everywhere(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Returns how many sessions ended; they and their tokens are dead; the index is
        gone; another user keeps everything."""
        sm = manager(flavor)
        a, b, c, expired = new_id(7), new_id(7), new_id(7), new_id(7)
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
        other = new_id(8)
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
        assert raw.exists(index_key(7)) == 0
        assert sm.get_session(other) == {"user_id": 8}
        assert [s.handle for s in sm.get_user_sessions(8)] == [handle(other)]
        assert sm.refresh_session(token_other) is not None
        assert sm.get_info()["refresh_reuse_detected"] == 0
        assert sm.delete_user_sessions(7) == 0

    def test_logout_unknown_user(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A user without sessions: 0, and nothing written."""
        sm = manager(flavor)
        assert sm.delete_user_sessions("ghost") == 0
        assert sm.delete_user_sessions(99) == 0
        assert raw.keys("*") == []


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
            sid = new_id(1)
            assert sm.create_session(sid, {"user_id": 1, "role": "user"})
            assert sm.get_session(sid) == {"user_id": 1, "role": "user"}
            assert HOUR_MS - 2 * SECOND < conn.sync_client.pttl(key_of(sid)) <= HOUR_MS
            assert sm.update_session(sid, {"role": "admin"})
            assert sm.extend_session(sid)
            assert [s.handle for s in sm.get_user_sessions(1)] == [handle(sid)]
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
                sid = new_id(1)
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
