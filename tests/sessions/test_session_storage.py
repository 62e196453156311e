"""What the session manager stores, and that its scripts read it back whatever the key names.

A session is one JSON string; the scripts read its bookkeeping (version, deadline, refresh
family, index key) without decoding the data, so user ids and key prefixes holding quotes,
backslashes, colons or non-ASCII text must not confuse them. Runs on fakeredis and a real
server, sync and async.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from arketic_cache import (
    RedisSessionManager,
    SessionKey,
    SessionRecord,
    SyncRedisSessionManager,
    SyncStringRepository,
)

from ..helpers import Flavor
from .helpers import Layout, index_key, key_of, sha, text, token_key

#: User ids that look like the envelope's own syntax, or are not ASCII.
AWKWARD_USERS = ["ümlaut😀", 'a","data":{"x', 'q\\"\\', "a:b:c", "42"]
#: Key prefixes with the same problems.
AWKWARD_PREFIXES = ["", 'p"x\\:', "ümlaut:"]


def manager(flavor: Flavor, **options: Any) -> Any:
    """A strict session manager of the flavour (async bridged)."""
    options.setdefault("connection", flavor.connection)
    options.setdefault("strict", True)
    return flavor.wrap(SyncRedisSessionManager(**options), RedisSessionManager(**options))


def stored(raw: redis.Redis, session_id: str, prefix: str = "") -> dict[str, Any]:
    """The JSON stored for a session id, read behind the manager's back."""
    value = raw.get(key_of(session_id, prefix))
    assert isinstance(value, str)
    result: dict[str, Any] = json.loads(value)
    return result


class TestEnvelope:
    """A session is one string: a JSON envelope around the data, readable by any service."""

    def test_layout(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Version, created (Redis time, ms), deadline, family, index key, then the data."""
        sessions = manager(flavor, max_lifetime=600)
        sid = sessions.new_session({"user_id": 7, "role": "user"})
        envelope = stored(raw, sid)
        assert list(envelope) == ["v", "c", "d", "f", "i", "data"]
        seconds, micro = raw.time()
        now_ms = seconds * 1000 + micro // 1000
        assert envelope["v"] == 1
        assert 0 <= now_ms - envelope["c"] < 60_000
        assert envelope["d"] == envelope["c"] + 600_000
        assert envelope["f"] is None
        assert envelope["i"] == index_key(7)
        assert envelope["data"] == {"user_id": 7, "role": "user"}
        assert sessions.update_session(sid, {"role": "admin"})
        assert stored(raw, sid)["v"] == 2
        assert sessions.issue_refresh_token(sid) is not None
        assert isinstance(stored(raw, sid)["f"], str)

    def test_typed_repository_reads_it(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The catalogue's ``SessionKey`` types the value: a repository reads it as a record
        (on a cluster the value validates as one)."""
        sid = manager(flavor).new_session({"user_id": "u1"})
        record: SessionRecord | None
        if Layout.cluster:  # the catalogue's key names the one-server layout
            record = SessionRecord.model_validate_json(text(raw.get(key_of(sid))))
        else:
            record = SyncStringRepository(SessionKey, connection=flavor.connection).get(
                SessionKey(session_id=sha(sid))
            )
        assert isinstance(record, SessionRecord)
        assert (record.v, record.f, record.data) == (1, None, {"user_id": "u1"})

    def test_without_user_there_is_no_index(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Data without ``user_id`` is stored with a null index key and lists nowhere."""
        sid = manager(flavor).new_session({"cart": [1, 2]})
        assert stored(raw, sid)["i"] is None
        assert [key for key in raw.scan_iter() if ":user:" in key] == []


class TestAwkwardNames:
    """Every operation works for user ids and prefixes that look like JSON or are not ASCII."""

    @pytest.mark.parametrize("prefix", AWKWARD_PREFIXES)
    @pytest.mark.parametrize("user", AWKWARD_USERS)
    def test_full_life_cycle(
        self, flavor: Flavor, raw: redis.Redis, prefix: str, user: str
    ) -> None:
        """Create, extend, update, rotate, refresh, list and log out; nothing left over."""
        sessions = manager(flavor, key_prefix=prefix)
        ids = [sessions.new_session({"user_id": user, "n": n}) for n in range(3)]
        assert all(stored(raw, sid, prefix)["data"]["user_id"] == user for sid in ids)
        token = sessions.issue_refresh_token(ids[0])
        assert token is not None
        assert sessions.extend_session(ids[1])
        assert sessions.update_session(ids[2], {"k": 1})
        rotated = sessions.rotate_session(ids[1])
        assert rotated is not None
        renewed = sessions.refresh_session(token)
        assert renewed is not None
        live = sessions.get_user_sessions(user)
        assert sorted(s.data["n"] for s in live) == [0, 1, 2]
        assert sessions.get_session(renewed[0]) == {"user_id": user, "n": 0}
        assert sessions.delete_user_sessions(user) == 3
        assert sessions.get_user_sessions(user) == []
        assert sessions.refresh_session(renewed[1]) is None
        # Only the exchanged token's record is left, until it expires (it detects reuse).
        left = list(raw.scan_iter())
        assert len(left) == 1
        assert left[0] == token_key(token, prefix)
        assert raw.pttl(left[0]) > 0
