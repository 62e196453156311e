"""The user index keeps Redis' compact encoding (bare 64-byte members), and an index written
before, with quoted members, is still read, cleaned and rewritten by every operation."""

from __future__ import annotations

import json
from typing import cast

import pytest
import redis

from ..helpers import Flavor
from .helpers import (
    SECOND,
    handle,
    index_key,
    index_members,
    key_of,
    manager,
    member,
    new_id,
    server_clock,
    sha,
)


@pytest.mark.parametrize(
    "backend_url",
    [
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
    ],
    indirect=True,
)
@pytest.mark.parametrize("sessions", [1, 10])
def test_an_index_stays_a_listpack(flavor: Flavor, raw: redis.Redis, sessions: int) -> None:
    """One and ten sessions, one with a refresh token: a listpack of about eighty
    bytes an entry (a quoted 66-byte member made even a one-entry index a skiplist)."""
    sm = manager(flavor)
    ids = [sm.new_session({"user_id": 5}) for _ in range(sessions)]
    assert sm.issue_refresh_token(ids[0]) is not None
    assert raw.object("encoding", index_key(5)) == "listpack"
    size = raw.memory_usage(index_key(5), samples=0)
    assert size is not None
    assert size < 100 + 90 * (sessions + 1), size  # about 80 B an entry


def quote_index(raw: redis.Redis, user: object) -> None:
    """Rewrite an index as the earlier layout stored it: every member a JSON string."""
    entries = cast(list[tuple[str, float]], raw.zrange(index_key(user), 0, -1, withscores=True))
    raw.delete(index_key(user))
    raw.zadd(index_key(user), {json.dumps(m): score for m, score in entries})


def test_an_index_of_quoted_members_is_read_and_rewritten(flavor: Flavor, raw: redis.Redis) -> None:
    clock = server_clock(raw)
    sm = manager(flavor, 600, clock=clock)
    keep, rotate, end = new_id(3), new_id(3), new_id(3)
    for sid in (keep, rotate, end):
        assert sm.create_session(sid, {"user_id": 3})
    token = sm.issue_refresh_token(keep)
    assert token is not None
    quote_index(raw, 3)
    assert all(m.startswith('"') for m in index_members(raw, 3))
    listed = {s.handle for s in sm.get_user_sessions(3)}
    assert listed == {handle(keep), handle(rotate), handle(end)}
    clock.advance(10)
    assert sm.extend_session(keep)  # its entry is rewritten bare, not listed twice
    rotated = sm.rotate_session(rotate)
    assert rotated is not None
    assert sm.delete_session(end)
    members = index_members(raw, 3)
    assert member(keep) in members
    assert json.dumps(sha(keep)) not in members
    assert member(rotated) in members
    assert not {json.dumps(sha(rotate)), json.dumps(sha(end)), member(end)} & members
    assert raw.zscore(index_key(3), member(keep)) == clock.now + 600 * SECOND
    assert len(sm.get_user_sessions(3)) == 2
    assert sm.delete_user_sessions(3) == 2
    assert raw.exists(key_of(keep), key_of(rotated), index_key(3)) == 0
    assert sm.refresh_session(token) is None  # the family went with the log-out
