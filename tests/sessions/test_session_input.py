"""Bad input is refused before any I/O (a strict manager on a dead port would raise
``BackendError`` otherwise), on a live server too; secrets never reach logs or errors.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest

from arketic_cache import (
    BackendResponseError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
    InvalidInputError,
    RedisConnection,
    RedisSessionManager,
    SerializationError,
    SyncRedisSessionManager,
)

from .fault_helpers import (
    DATA,
    DEAD_PASSWORD,
    OTHER_ID,
    OVERSIZE,
    SID,
    TOKEN,
    USER,
    DeadRig,
    PatientSessionRig,
    SessionRig,
    same,
    session_key,
    session_manager,
)

#: The ``rig`` fixture builds this kind: these tests are about data, not faults.
RIG = PatientSessionRig


pytestmark = pytest.mark.redis


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
