"""Stored session data that is corrupt, broken, rewritten in place or of the wrong Redis type:
reads miss (or raise in strict mode) and writes never build on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from arketic_cache import BackendError, BackendResponseError

from .fault_helpers import (
    DATA,
    OTHER_ID,
    SID,
    USER,
    PatientSessionRig,
    SessionRig,
    envelope,
    handle_of,
    session_key,
)

#: The ``rig`` fixture builds this kind: these tests are about data, not faults.
RIG = PatientSessionRig


pytestmark = pytest.mark.redis


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
        """A non-string at the session key: None (counted as a misconfiguration, apart from
        outages), never an exception; the breaker stays closed (Redis answered)."""
        with rig.admin() as admin:
            make(admin, session_key(SID))
        manager = rig.manager(sliding=sliding)
        assert manager.get_session(SID) is None
        assert manager.get_session_data(SID) is None
        assert manager.update_session(SID, {"n": 2}) is False
        info = manager.get_info()
        assert (info["wrong_type_errors"], info["errors"]) == (3, 0)
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
        assert manager.get_info()["wrong_type_errors"] == 1
        assert not rig.exists(SID)
        assert manager.get_session(SID) is None
