"""The session flows stepped by hand with canned replies (no Redis, no driver): the script
calls they make, and what they return for every reply, a missing or corrupt session included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arketic_cache import InvalidInputError
from arketic_cache._core import _session as flows
from arketic_cache._core._effects import Command, Eval
from arketic_cache._lua import SESSION

from ..helpers import step

KEY = "session:h1"
HANDLE = "h1"
PREFIX = "app:"


def stored(data: Any, version: int = 1, index: str | None = None) -> str:
    """A stored session envelope, as session.lua writes it."""
    head = f'{{"v":{version},"c":1,"d":0,"f":null,"i":{json.dumps(index)},"data":'
    return head + json.dumps(data, separators=(",", ":")) + "}"


def script(op: str, keys: tuple[str, ...], *args: Any, now: Any = "") -> Eval:
    """The session script call the flows make for ``op``."""
    return Eval(SESSION, keys, (op, now, PREFIX, *args))


END = script("delete", (KEY,), "h1")

CORRUPT = [
    pytest.param("not json", id="not-an-envelope"),
    pytest.param(stored([1, 2]), id="data-not-an-object"),
    pytest.param(stored({"a": 1})[:-1], id="truncated"),
    pytest.param('{"v":1,"c":1,"d":0,"f":null,"i":7,"data":{}}', id="index-not-a-str"),
    pytest.param(stored({"a": "\udcff"}).replace("\\udcff", "\udcff"), id="bytes-not-utf8"),
]


class TestRead:
    """read and touch: the data, or None, and a corrupt session ended."""

    def test_found(self) -> None:
        """A stored envelope gives back its data object."""
        stats = flows.SessionStats()
        effects, result = step(flows.read(KEY, HANDLE, PREFIX, stats), [stored({"u": 1})])
        assert effects == [Command(("GET", KEY))]
        assert result == {"u": 1}
        assert stats.corrupt == 0

    def test_missing_is_none_without_more_io(self) -> None:
        """A None reply (no such session) is None; nothing else is sent."""
        stats = flows.SessionStats()
        effects, result = step(flows.read(KEY, HANDLE, PREFIX, stats), [None])
        assert effects == [Command(("GET", KEY))]
        assert result is None

    @pytest.mark.parametrize("raw", CORRUPT)
    def test_corrupt_is_ended_and_reads_as_none(self, raw: str) -> None:
        """Stored data that fails to decode is a miss: the session is ended and counted."""
        stats = flows.SessionStats()
        effects, result = step(flows.read(KEY, HANDLE, PREFIX, stats), [raw, 1])
        assert effects == [Command(("GET", KEY)), END]
        assert result is None
        assert stats.corrupt == 1

    def test_touch_reads_and_slides_in_one_call(self) -> None:
        """touch is one extend call that also returns the data ("1")."""
        stats = flows.SessionStats()
        flow = flows.touch(KEY, HANDLE, 5000, PREFIX, 42, stats)
        effects, result = step(flow, [stored({"u": 2})])
        assert effects == [script("extend", (KEY,), 5000, "h1", "1", now=42)]
        assert result == {"u": 2}

    @pytest.mark.parametrize(("reply", "ends"), [(None, False), ("garbage", True)])
    def test_touch_missing_or_corrupt(self, reply: Any, ends: bool) -> None:
        """A gone session is None; a corrupt one is ended too."""
        stats = flows.SessionStats()
        effects, result = step(flows.touch(KEY, HANDLE, 5000, PREFIX, None, stats), [reply, 1])
        assert result is None
        assert (effects[1:] == [END]) is ends
        assert stats.corrupt == int(ends)


class TestWrites:
    """The one-call writes: their script arguments and how each reply reads."""

    def test_create_with_index(self) -> None:
        """The index key rides along as a second key, its JSON name as an argument."""
        stats = flows.SessionStats()
        index = ("idx:u1", '"idx:u1"')
        flow = flows.create(KEY, HANDLE, b"{}", index, 10, 20, PREFIX, None, stats)
        effects, result = step(flow, [1])
        assert effects == [script("create", (KEY, "idx:u1"), b"{}", '"idx:u1"', 10, 20, "h1")]
        assert result is True
        assert stats.created == 1

    def test_create_taken_id(self) -> None:
        """Without an index a single key goes; a 0 reply (id taken) is False."""
        stats = flows.SessionStats()
        flow = flows.create(KEY, HANDLE, b"{}", None, 10, 20, PREFIX, 7, stats)
        effects, result = step(flow, [0])
        assert effects == [script("create", (KEY,), b"{}", "", 10, 20, "h1", now=7)]
        assert result is False
        assert stats.created == 0, "a taken id created nothing"

    @pytest.mark.parametrize(("reply", "expected"), [(None, False), (0, True), (3600, True)])
    def test_extend(self, reply: Any, expected: bool) -> None:
        """extend is False only when the session is gone (a None reply)."""
        effects, result = step(flows.extend(KEY, HANDLE, 100, PREFIX, None), [reply])
        assert effects == [script("extend", (KEY,), 100, "h1", "0")]
        assert result is expected

    @pytest.mark.parametrize(("reply", "expected"), [(1, True), (0, False), (None, False)])
    def test_delete(self, reply: Any, expected: bool) -> None:
        """delete says whether a session ended."""
        stats = flows.SessionStats()
        effects, result = step(flows.delete(KEY, HANDLE, PREFIX, stats), [reply])
        assert effects == [END]
        assert result is expected
        assert stats.ended == int(expected)

    def test_rotate(self) -> None:
        """rotate moves both keys in one call."""
        stats = flows.SessionStats()
        flow = flows.rotate(KEY, HANDLE, "session:h2", "h2", 9, PREFIX, None, stats)
        effects, result = step(flow, [1])
        assert effects == [script("rotate", (KEY, "session:h2"), 9, "h1", "h2")]
        assert result is True
        assert stats.rotated == 1

    def test_logout_counts(self) -> None:
        """logout returns how many sessions ended."""
        stats = flows.SessionStats()
        effects, result = step(flows.logout("idx:u1", PREFIX, 5, stats), [3])
        assert effects == [script("logout", ("idx:u1",), now=5)]
        assert result == 3
        assert stats.ended == 3

    @pytest.mark.parametrize(
        ("reply", "expected", "reuse"), [(1, True, 0), (0, False, 0), (-1, False, 1)]
    )
    def test_refresh(self, reply: int, expected: bool, reuse: int) -> None:
        """1 is a new session; 0 an unknown token; -1 a reused one, counted."""
        stats = flows.SessionStats()
        flow = flows.refresh("rt:x", "h2", "t2", 1, 2, 3, PREFIX, None, stats)
        effects, result = step(flow, [reply])
        assert effects == [script("refresh", ("rt:x",), "h2", "t2", 1, 2, 3)]
        assert result is expected
        assert stats.refresh_reuse == reuse
        assert stats.refreshed == int(expected)


class TestUpdate:
    """update: read, merge, compare-and-set on the version, retried when another update won."""

    def test_merges_and_sets_on_the_version_read(self) -> None:
        """The new data is the merge; the update names the version it read."""
        stats = flows.SessionStats()
        flow = flows.update(KEY, {"b": 2}, 1000, PREFIX, stats)
        effects, result = step(flow, [stored({"a": 1}, version=4), 1])
        assert effects[0] == Command(("GET", KEY))
        assert effects[1] == script("update", (KEY,), 4, b'{"a":1,"b":2}')
        assert result is True

    def test_lost_race_is_retried(self) -> None:
        """A 0 reply (the version moved) reads again and retries; the conflict is counted."""
        stats = flows.SessionStats()
        flow = flows.update(KEY, {"b": 2}, 1000, PREFIX, stats)
        replies = [stored({"a": 1}, version=4), 0, stored({"a": 9}, version=5), 1]
        effects, result = step(flow, replies)
        assert [e.args[3] for e in effects if isinstance(e, Eval)] == [4, 5]
        assert result is True
        assert stats.update_conflicts == 1

    def test_gives_up_after_every_attempt_lost(self) -> None:
        """After UPDATE_ATTEMPTS lost races in a row it returns False."""
        stats = flows.SessionStats()
        flow = flows.update(KEY, {"b": 2}, 1000, PREFIX, stats)
        replies = [stored({"a": 1}), 0] * flows.UPDATE_ATTEMPTS
        effects, result = step(flow, replies)
        assert len(effects) == 2 * flows.UPDATE_ATTEMPTS
        assert result is False
        assert stats.update_conflicts == flows.UPDATE_ATTEMPTS

    @pytest.mark.parametrize("raw", [None, "garbage", stored([1])])
    def test_missing_or_corrupt_writes_nothing(self, raw: Any) -> None:
        """No session, or one that fails to decode: False, and no update is sent."""
        flow = flows.update(KEY, {"b": 2}, 1000, PREFIX, flows.SessionStats())
        effects, result = step(flow, [raw])
        assert effects == [Command(("GET", KEY))]
        assert result is False

    def test_user_change_refused_before_writing(self) -> None:
        """Changing user_id raises after the read, with no update sent."""
        flow = flows.update(KEY, {"user_id": "bob"}, 1000, PREFIX, flows.SessionStats())
        assert next(flow) == Command(("GET", KEY))
        with pytest.raises(InvalidInputError, match="user_id cannot change"):
            flow.send(stored({"user_id": "alice"}))


class TestSessionsOf:
    """sessions_of: triples of id, envelope and remaining TTL; corrupt entries skipped."""

    def test_lists_live_sessions_and_skips_corrupt(self) -> None:
        """Each triple becomes a UserSession (TTL in seconds); a corrupt one is counted."""
        stats = flows.SessionStats()
        reply = ["s1", stored({"n": 1}), 1500, "s2", "garbage", 10, "s3", stored({"n": 3}), 0]
        effects, result = step(flows.sessions_of("idx:u1", PREFIX, None, stats), [reply])
        assert effects == [script("list", ("idx:u1",))]
        assert [(s.handle, s.data, s.expires_in) for s in result] == [
            ("s1", {"n": 1}, 1.5),
            ("s3", {"n": 3}, 0.0),
        ]
        assert stats.corrupt == 1

    def test_empty(self) -> None:
        """An empty reply is no session."""
        _, result = step(flows.sessions_of("idx:u1", PREFIX, None, flows.SessionStats()), [[]])
        assert result == []
