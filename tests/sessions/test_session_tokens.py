"""Session ids and refresh tokens: ids are secure and stored only hashed, rotation replaces
an id atomically, refresh tokens are single-use within their family.

Every test runs on fakeredis and a real server, sync and async (``flavor``), on the manager's
clock seam.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import redis

from arketic_cache import InvalidInputError, SerializationError

from ..helpers import Flavor
from .helpers import (
    HOUR_MS,
    REFRESH_TTL_MS,
    SECOND,
    SPEC_DATA,
    Layout,
    everything_in,
    families,
    family_key,
    handle,
    index_key,
    index_members,
    key_of,
    manager,
    member,
    new_id,
    no_io_manager,
    sha,
    the_family,
    token_key,
    wait_until_gone,
    well_formed,
)


class TestSecureIds:
    """Ids are long secrets, never overwritten, and never reach Redis in the clear."""

    def test_new_session_ids(self, flavor: Flavor, raw: redis.Redis) -> None:
        """new_session draws 43-char URL-safe ids, all distinct, each holding its data."""
        sm = manager(flavor)
        ids = [sm.new_session({"n": n}) for n in range(20)]
        assert all(isinstance(i, str) and well_formed(i) for i in ids), ids
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
        sid = new_id("victim")
        assert sm.create_session(sid, {"user_id": "victim", "role": "admin"})
        raw.pexpire(key_of(sid), 50_000)
        before = raw.dump(key_of(sid))
        if Layout.cluster:  # the id names the victim's slot: refused before any I/O
            with pytest.raises(InvalidInputError, match="session_id_prefix"):
                sm.create_session(sid, {"user_id": "attacker", "role": "user"})
        else:
            assert sm.create_session(sid, {"user_id": "attacker", "role": "user"}) is False
        assert sm.get_session(sid) == {"user_id": "victim", "role": "admin"}
        assert raw.dump(key_of(sid)) == before
        assert raw.pttl(key_of(sid)) <= 50_000
        assert sm.get_user_sessions("attacker") == []
        assert raw.exists(index_key("attacker")) == 0

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
        alice = seen(new_id("alice"))
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


class TestRotation:
    """rotate_session moves a session to a fresh id in one step."""

    def test_rotation(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The old id is dead for every call, the new one has the data and a fresh idle TTL,
        and the user's index lists only the new handle."""
        sm = manager(flavor)
        sid = new_id(5)
        assert sm.create_session(sid, {"user_id": 5, "role": "user"})
        raw.pexpire(key_of(sid), 5_000)
        rotated = sm.rotate_session(sid)
        assert isinstance(rotated, str)
        assert well_formed(rotated)
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
        assert [s.handle for s in sm.get_user_sessions(5)] == [handle(rotated)]
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
        sid = new_id(5)
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
        assert [s.handle for s in sm.get_user_sessions(5)] == [handle(fresh)]

    def test_rotation_after_the_family_expired(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Rotating a session whose refresh family Redis has expired leaves no key without a
        TTL behind (every key the manager writes expires)."""
        sm = manager(flavor, refresh_ttl=0.05)
        sid = new_id(6)
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


class TestRefresh:
    """refresh_session exchanges a token for a new session and token; reuse ends the family."""

    def test_exchange_rotates_session_and_token(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The old session ends, the new one has its data, the token changes; the new token
        exchanges again; tokens are stored by hash with the refresh TTL."""
        sm = manager(flavor)
        sid = new_id(2)
        assert sm.create_session(sid, {"user_id": 2, "role": "user"})
        token = sm.issue_refresh_token(sid)
        assert isinstance(token, str)
        assert well_formed(token)
        assert REFRESH_TTL_MS - 60 * SECOND < raw.pttl(token_key(token)) <= REFRESH_TTL_MS
        family = the_family(raw)

        pair = sm.refresh_session(token)
        assert pair is not None
        new_sid, new_token = pair
        assert well_formed(new_sid)
        assert well_formed(new_token)
        assert len({sid, token, new_sid, new_token}) == 4
        assert sm.get_session(sid) is None
        assert sm.get_session(new_sid) == {"user_id": 2, "role": "user"}
        assert HOUR_MS - 2 * SECOND < raw.pttl(key_of(new_sid)) <= HOUR_MS
        assert families(raw) == {family}
        assert index_members(raw, 2) == {member(new_sid), f"r:{family}"}
        assert [s.handle for s in sm.get_user_sessions(2)] == [handle(new_sid)]

        third = sm.refresh_session(new_token)
        assert third is not None
        assert sm.get_session(new_sid) is None
        assert sm.get_session(third[0]) == {"user_id": 2, "role": "user"}
        assert sm.get_info()["refresh_reuse_detected"] == 0

    def test_reuse_revokes_the_family(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A stolen token used by the thief, then replayed by the owner: None, and the
        newest session and newest token both stop working; the reuse is counted once."""
        sm = manager(flavor)
        sid = new_id(2)
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
        phone, laptop = new_id(2), new_id(2)
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
        sid = new_id(2)
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
        sid = new_id(2)
        assert short.create_session(sid, {"user_id": 2, "role": "user"})
        token = short.issue_refresh_token(sid)
        assert token is not None
        wait_until_gone(raw, key_of(sid))
        assert normal.get_session(sid) is None
        pair = normal.refresh_session(token)
        assert pair is not None
        assert normal.get_session(pair[0]) == {"user_id": 2, "role": "user"}
        assert HOUR_MS - 2 * SECOND < raw.pttl(key_of(pair[0])) <= HOUR_MS
        assert [s.handle for s in normal.get_user_sessions(2)] == [handle(pair[0])]

    def test_refresh_after_expiry_carries_the_latest_data(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """A session demoted by update_session and then expired: the refreshed session has
        the demoted data, not the data from when the token was issued."""
        sm = manager(flavor)
        sid = new_id(2)
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
        sid = new_id(2)
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
        sid = new_id(2)
        assert sm.create_session(sid, {"user_id": 2})
        first = sm.issue_refresh_token(sid)
        second = sm.issue_refresh_token(sid)
        assert first is not None
        assert second is not None
        assert first != second
        assert sm.refresh_session(first) is None
        assert sm.get_session(sid) == {"user_id": 2}  # a revoked token is not reuse
        assert len([m for m in index_members(raw, 2) if m.startswith("r:")]) == 1
        pair = sm.refresh_session(second)
        assert pair is not None
        assert sm.get_session(pair[0]) == {"user_id": 2}
