"""Sessions, pure: ids and their hashes, the typed session data, and the session flows.

A session id is a bearer secret, so Redis never sees it: the session lives at
``session:<sha256(id)>`` (the *handle*), and refresh tokens are stored by their hash alone.
A session is one string: a small JSON envelope (version, created, absolute deadline, refresh
family, index key) around the data. Reads are one GET; every write is one call of
``session.lua``, timed by Redis' clock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from .._codec import encode
from .._exceptions import InvalidInputError, SerializationError
from .._lua import SESSION
from ._effects import Arg, Command, Eval, Flow

__all__ = [
    "MAX_ID_LENGTH",
    "MIN_ID_LENGTH",
    "SessionData",
    "SessionMetadata",
    "SessionStats",
    "UserSession",
    "handle_of",
    "new_secret",
]

logger = logging.getLogger("arketic_cache")

#: Shortest session id ``create_session`` accepts from a caller (``new_session`` makes 43).
MIN_ID_LENGTH = 32
#: Longest id looked up; anything longer cannot be one of ours.
MAX_ID_LENGTH = 512
#: Update attempts before giving up under contention (each retry follows a winning write).
UPDATE_ATTEMPTS = 32


class SessionMetadata(BaseModel):
    """The device a session was opened from (the spec's ``metadata``)."""

    model_config = ConfigDict(extra="allow")

    device_type: str | None = None
    browser: str | None = None
    os: str | None = None


class SessionData(BaseModel):
    """The spec's session data; fields it does not name are kept (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    user_id: str | None = None
    email: str | None = None
    role: str | None = None
    login_time: datetime | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    last_activity: datetime | None = None
    metadata: SessionMetadata | None = None


@dataclass(frozen=True, slots=True)
class UserSession:
    """One live session of a user: its ``handle`` (the id's hash, safe to show and to pass
    to ``revoke_session``), its data and the seconds until it expires if left idle."""

    handle: str
    data: dict[str, Any]
    expires_in: float


@dataclass(slots=True)
class SessionStats:
    """This manager's own counters."""

    created: int = 0
    rotated: int = 0
    refreshed: int = 0  # sessions made from a refresh token
    ended: int = 0  # deleted or logged out (expiry is Redis')
    corrupt: int = 0
    update_conflicts: int = 0
    refresh_reuse: int = 0


def new_secret() -> str:
    """A fresh session id or refresh token: 256 bits from ``secrets``, URL-safe (43 chars)."""
    return secrets.token_urlsafe(32)


def new_family() -> str:
    """A fresh refresh-token family id (128 bits, hex)."""
    return secrets.token_hex(16)


#: On a Redis Cluster every key of a user's sessions shares one hash tag of this many hex
#: digits: ids and tokens carry it as a ``tttt.`` head, so a presented one names its slot.
TAG_LENGTH = 4
_TAG = re.compile(r"[0-9a-f]{4}\.")


def user_tag(user_id: str) -> str:
    """The slot tag of a user's sessions (a digest: ids never reveal the user id)."""
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:TAG_LENGTH]


def tag_of(secret: str, handle: str) -> str:
    """The slot tag a presented id or token carries (its ``tttt.`` head), or else the
    first digits of its handle (a caller-chosen id of a session without a user)."""
    return secret[:TAG_LENGTH] if _TAG.match(secret) else handle[:TAG_LENGTH]


def tagged(tag: str, secret: str) -> str:
    """A fresh id or token that names its slot."""
    return f"{tag}.{secret}"


def slot_prefix(sessions: str, tag: str) -> str:
    """The session prefix of the keys in ``tag``'s slot (``session:{tttt}:``)."""
    return f"{sessions}{{{tag}}}:"


def handle_of(secret: str) -> str:
    """The SHA-256 (hex) under which a session id or refresh token is stored."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def member(handle: str) -> str:
    """A session's entry in its user's index: its handle, bare (64 bytes: the index keeps
    Redis' compact encoding; indexes written before hold it quoted, which the script reads)."""
    return handle


def lookup_handle(secret: Any, min_length: int = MIN_ID_LENGTH) -> str | None:
    """The handle of a presented id or token, or None when it cannot be one (no I/O needed).

    Raises:
        InvalidInputError: ``secret`` is not a str (a programming error, not a bad cookie).
    """
    if type(secret) is not str:
        raise InvalidInputError(f"a session id is a str, not {type(secret).__name__}")
    if not min_length <= len(secret) <= MAX_ID_LENGTH:
        return None
    return handle_of(secret)


def check_new_id(session_id: Any, min_length: int) -> str:
    """The handle of a caller-chosen id for a new session.

    Raises:
        InvalidInputError: not a str, shorter than ``min_length`` or over ``MAX_ID_LENGTH``.
    """
    if type(session_id) is not str:
        raise InvalidInputError(f"a session id is a str, not {type(session_id).__name__}")
    if not min_length <= len(session_id) <= MAX_ID_LENGTH:
        raise InvalidInputError(
            f"a session id must be {min_length} to {MAX_ID_LENGTH} characters (it is a secret:"
            " prefer new_session(), which draws 256 bits)"
        )
    return handle_of(session_id)


def index_json(index: str) -> str:
    """An index key as the envelope holds it (a JSON string, UTF-8 kept as is)."""
    return json.dumps(index, ensure_ascii=False)


def encode_data(data: Any, max_bytes: int) -> tuple[bytes, str | None]:
    """``data`` as JSON, and its ``user_id`` (as a str) if it has one.

    Raises:
        SerializationError: not a mapping with str keys, not JSON-able, or over ``max_bytes``.
    """
    if isinstance(data, SessionData):
        data = data.model_dump(mode="json", exclude_none=True)
    if not isinstance(data, Mapping) or not all(type(key) is str for key in data):
        raise SerializationError("session data is a mapping with str keys (a JSON object)")
    text = encode(data, max_bytes)
    user_id = data.get("user_id")
    if user_id is None:
        return text, None
    if type(user_id) not in (str, int) or user_id == "":
        raise SerializationError(f"user_id is a non-empty str or an int, not {user_id!r}")
    return text, str(user_id)


def _user(user_id: Any) -> str | None:
    return None if user_id is None else str(user_id)


#: The envelope's bookkeeping, as session.lua's parse() reads it (the two must agree).
_ENVELOPE = re.compile(r'\{"v":([0-9]+),"c":[0-9]+,"d":[0-9]+,"f":(?:"[0-9a-fA-F]+"|null),"i":')
_DATA = ',"data":'


def parse_stored(raw: str) -> tuple[int, dict[str, Any]]:
    """A stored session's version and data, read exactly as the scripts read them.

    Raises:
        ValueError: not a session envelope holding a JSON object (corrupt).
    """
    head = _ENVELOPE.match(raw)
    stop = raw.find(_DATA, head.end()) if head else -1
    if head is None or stop < 0 or not raw.endswith("}"):
        raise ValueError("not a session envelope")
    if not raw.isascii():
        raw.encode("utf-8")  # bytes that were not UTF-8 (read with surrogateescape) raise here
    index = json.loads(raw[head.end() : stop])
    data = json.loads(raw[stop + len(_DATA) : -1])
    if (index is not None and type(index) is not str) or type(data) is not dict:
        raise ValueError("a session envelope holds an index key and a data object")
    if "\\u" in raw:  # an escaped lone surrogate decodes to a str no encoder accepts
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        json.dumps(index, ensure_ascii=False).encode("utf-8")
    return int(head.group(1)), data


def _call(op: str, keys: tuple[str, ...], now_ms: int | None, prefix: str, *args: Arg) -> Eval:
    return Eval(SESSION, keys, (op, "" if now_ms is None else now_ms, prefix, *args))


# -- flows: keys arrive prefixed, data encoded, ttls in ms ---------------------------------------
def create(
    key: str,
    handle: str,
    data: bytes,
    index: tuple[str, str] | None,
    ttl_ms: int,
    lifetime_ms: int,
    prefix: str,
    now_ms: int | None,
    stats: SessionStats,
) -> Flow[bool]:
    """Create the session unless its id is taken; list it in its user's index (given as its
    name and its JSON form)."""
    keys, index_json = ((key,), "") if index is None else ((key, index[0]), index[1])
    args = (data, index_json, ttl_ms, lifetime_ms, member(handle))
    reply = yield _call("create", keys, now_ms, prefix, *args)
    stats.created += bool(reply)
    return bool(reply)


def read(key: str, handle: str, prefix: str, stats: SessionStats) -> Flow[dict[str, Any] | None]:
    """The session's data, or None (a corrupt session is ended and reads as none)."""
    raw = yield Command(("GET", key))
    return (yield from _decoded(key, raw, stats, handle, prefix))


def touch(
    key: str, handle: str, ttl_ms: int, prefix: str, now_ms: int | None, stats: SessionStats
) -> Flow[dict[str, Any] | None]:
    """Read the session and restart its idle TTL (sliding expiry), in one step."""
    raw = yield _call("extend", (key,), now_ms, prefix, ttl_ms, member(handle), "1")
    return (yield from _decoded(key, raw, stats, handle, prefix))


def _decoded(
    key: str, raw: Any, stats: SessionStats, handle: str, prefix: str
) -> Flow[dict[str, Any] | None]:
    if raw is None:
        return None
    try:
        return parse_stored(raw)[1]
    except ValueError:
        stats.corrupt += 1
        logger.warning("ending a session whose stored data is not a JSON object")
        yield _call("delete", (key,), None, prefix, member(handle))
        return None


def extend(key: str, handle: str, ttl_ms: int, prefix: str, now_ms: int | None) -> Flow[bool]:
    """Restart the idle TTL (never past the absolute lifetime)."""
    reply = yield _call("extend", (key,), now_ms, prefix, ttl_ms, member(handle), "0")
    return reply is not None


def update(
    key: str, changes: Mapping[str, Any], max_bytes: int, prefix: str, stats: SessionStats
) -> Flow[bool]:
    """Merge ``changes`` into the data (top-level keys), atomically: compare-and-set on the
    session's version, retried when another update won, so concurrent updates all land.

    Raises:
        SerializationError: the merged data is too large (nothing written).
        InvalidInputError: ``changes`` gives the session another user_id (nothing written).
    """
    for _ in range(UPDATE_ATTEMPTS):
        raw = yield Command(("GET", key))
        if raw is None:
            return False
        try:
            version, data = parse_stored(raw)
        except ValueError:
            return False
        if "user_id" in changes and _user(changes["user_id"]) != _user(data.get("user_id")):
            raise InvalidInputError(
                "a session's user_id cannot change (its user index would be wrong): "
                "start a new session for the other user"
            )
        data.update(changes)
        text, _ = encode_data(data, max_bytes)
        reply = yield _call("update", (key,), None, prefix, version, text)
        if reply != 0:
            return bool(reply == 1)
        stats.update_conflicts += 1
    logger.warning("a session update lost %d races in a row; giving up", UPDATE_ATTEMPTS)
    return False


def delete(key: str, handle: str, prefix: str, stats: SessionStats) -> Flow[bool]:
    """End the session: its index entry and its refresh tokens go with it."""
    reply = yield _call("delete", (key,), None, prefix, member(handle))
    stats.ended += bool(reply)
    return bool(reply)


def rotate(
    key: str,
    handle: str,
    new_key: str,
    new_handle: str,
    ttl_ms: int,
    prefix: str,
    now_ms: int | None,
    stats: SessionStats,
) -> Flow[bool]:
    """Move the session to a new id in one step; the old id stops working at once."""
    args = (ttl_ms, member(handle), member(new_handle))
    reply = yield _call("rotate", (key, new_key), now_ms, prefix, *args)
    stats.rotated += bool(reply)
    return bool(reply)


def sessions_of(
    index: str, prefix: str, now_ms: int | None, stats: SessionStats, label: str = ""
) -> Flow[list[UserSession]]:
    """The user's live sessions with their data (expired entries leave the index); each
    handle is given as ``label`` + the id's hash."""
    reply = yield _call("list", (index,), now_ms, prefix)
    found = []
    for at in range(0, len(reply), 3):
        try:
            _, data = parse_stored(reply[at + 1])
        except ValueError:
            stats.corrupt += 1
            continue
        found.append(UserSession(label + reply[at], data, int(reply[at + 2]) / 1000))
    return found


def logout(index: str, prefix: str, now_ms: int | None, stats: SessionStats) -> Flow[int]:
    """End every session of the user and revoke their refresh tokens; how many ended."""
    reply = yield _call("logout", (index,), now_ms, prefix)
    stats.ended += int(reply)
    return int(reply)


def issue(
    key: str,
    handle: str,
    token_hash: str,
    family: str,
    refresh_ttl_ms: int,
    prefix: str,
    now_ms: int | None,
) -> Flow[bool]:
    """Record a refresh token (by its hash) for the session, in a new token family."""
    args = (member(handle), token_hash, family, refresh_ttl_ms)
    reply = yield _call("issue", (key,), now_ms, prefix, *args)
    return bool(reply)


def refresh(
    token_key: str,
    new_handle: str,
    new_token_hash: str,
    ttl_ms: int,
    lifetime_ms: int,
    refresh_ttl_ms: int,
    prefix: str,
    now_ms: int | None,
    stats: SessionStats,
) -> Flow[bool]:
    """Exchange a refresh token for a new session and token. A token used twice revokes
    its whole family (RFC 9700 4.14): both the thief's and the owner's next use fail."""
    args = (member(new_handle), new_token_hash, ttl_ms, lifetime_ms, refresh_ttl_ms)
    reply = yield _call("refresh", (token_key,), now_ms, prefix, *args)
    if reply == -1:
        stats.refresh_reuse += 1
        logger.warning("a refresh token was used twice: its token family is revoked")
    stats.refreshed += reply == 1
    return bool(reply == 1)
