"""The spec's ``RedisSessionManager`` (async) and its blocking twin ``SyncRedisSessionManager``.

The spec's five calls keep their names and return types; beyond them: ids drawn by the manager
(``new_session``), rotation, an absolute lifetime, the per-user index (list, log out
everywhere) and refresh tokens with reuse detection. Session ids and refresh tokens never
reach Redis: keys hold their SHA-256 (``_core/_session.py``).
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from . import _connection
from ._catalogue import Id, SessionUserKey
from ._core import _session as flows
from ._core._effects import Flow
from ._core._session import (
    MIN_ID_LENGTH,
    TAG_LENGTH,
    SessionData,
    SessionStats,
    UserSession,
    check_new_id,
    encode_data,
    handle_of,
    index_json,
    lookup_handle,
    new_family,
    new_secret,
    slot_prefix,
    tag_of,
    tagged,
    user_tag,
)
from ._counters import track
from ._exceptions import ConfigurationError, InvalidInputError
from ._shell import AsyncShell, Shell, SyncShell, check_clock, check_flag, misplaced_str

__all__ = ["RedisSessionManager", "SyncRedisSessionManager"]

logger = logging.getLogger("arketic_cache")

T = TypeVar("T")

_HANDLE = re.compile(r"[0-9a-f]{64}")


#: Longest duration a manager accepts (about 100 years): Redis expiry times must stay in range.
MAX_SECONDS = 100 * 366 * 86400


def _ms(name: str, seconds: Any) -> int:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0.001 <= seconds <= MAX_SECONDS  # NaN fails too
    ):
        raise ConfigurationError(
            f"{name} is a number of seconds from 0.001 to {MAX_SECONDS}, not {seconds!r}"
        )
    return math.ceil(seconds * 1000)


def _then(flow: Flow[bool], result: T) -> Flow[T | None]:
    """``result`` once ``flow`` succeeded, else None."""
    done = yield from flow
    return result if done else None


class _SessionBase(Shell):
    """Argument handling shared by both twins."""

    __slots__ = (
        "_clock",
        "_indexes",
        "_lifetime_ms",
        "_refresh_ttl_ms",
        "_session_stats",
        "_ttl_ms",
        "max_data_bytes",
        "max_lifetime",
        "min_id_length",
        "refresh_ttl",
        "sliding",
        "ttl",
    )

    def __init__(
        self,
        ttl: float = 3600,
        *,
        connection: _connection.RedisConnection | None = None,
        key_prefix: str | None = None,
        max_lifetime: float | None = None,
        sliding: bool = False,
        refresh_ttl: float = 14 * 86400,
        max_data_bytes: int = 64 * 1024,
        min_id_length: int = MIN_ID_LENGTH,
        strict: bool = False,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """Sessions that expire after ``ttl`` idle seconds (the spec's 3600).

        ``extend_session`` restarts the idle TTL; ``sliding=True`` also restarts it on every
        read. ``max_lifetime`` caps a session's whole life (from creation), whatever the
        extensions. Refresh tokens live ``refresh_ttl`` seconds from issue or last use.
        Session data is a JSON object of at most ``max_data_bytes``; caller-chosen ids must
        have at least ``min_id_length`` characters. On a Redis failure reads return None and
        writes False (the spec's degradation); ``strict=True`` raises ``BackendError``.
        ``clock`` replaces Redis' clock with one returning epoch milliseconds: a seam for
        tests, never for production.

        Raises:
            ConfigurationError: a bad duration, size or id length.
        """
        super().__init__(connection, key_prefix=key_prefix, strict=strict)
        if isinstance(ttl, str):
            raise misplaced_str(type(self).__name__, "ttl", "a number of seconds", ttl)
        check_clock(type(self).__name__, clock)
        self._ttl_ms = _ms("ttl", ttl)
        self._lifetime_ms = 0 if max_lifetime is None else _ms("max_lifetime", max_lifetime)
        self._refresh_ttl_ms = _ms("refresh_ttl", refresh_ttl)
        if type(max_data_bytes) is not int or max_data_bytes < 2:
            raise ConfigurationError(f"max_data_bytes is an int >= 2, not {max_data_bytes!r}")
        if type(min_id_length) is not int or min_id_length < 16:
            raise ConfigurationError(
                f"min_id_length is an int >= 16 (ids are secrets), not {min_id_length!r}"
            )
        self.ttl = ttl
        self.max_lifetime = max_lifetime
        self.refresh_ttl = refresh_ttl
        self.sliding = check_flag(type(self).__name__, "sliding", sliding)
        self.max_data_bytes = max_data_bytes
        self.min_id_length = min_id_length
        self._clock = clock
        self._session_stats = SessionStats()
        track(self, "session", self._metric_name(), self._session_stats)
        # Rendered index keys by user id: rendering validates through pydantic (microseconds).
        self._indexes: dict[tuple[Id, str, bool], tuple[str, str, str]] = {}

    def _track(self) -> None:
        """Its session events are tracked (``_session_stats``), not lookups."""

    # -- keys ---------------------------------------------------------------------------------
    @property
    def _sessions(self) -> str:
        """The prefix of every session key (also what the script derives other keys from)."""
        self._bind()
        return self._prefix + "session:"

    def _place(self, secret: str, handle: str) -> str:
        """The session prefix of the keys a presented id or token names: on a cluster, that
        of the slot its tag names (every key of a user's sessions shares one slot)."""
        sessions = self._sessions
        if not self._bind().cluster:
            return sessions
        return slot_prefix(sessions, tag_of(secret, handle))

    def _index(self, user_id: Id) -> tuple[str, str, str]:
        """The user's index key, its JSON form and the session prefix of its slot (rendered
        once per user id and prefix)."""
        if type(user_id) not in (str, int) or user_id == "":
            raise InvalidInputError(f"a user id is a non-empty str or an int, not {user_id!r}")
        sessions = self._sessions  # first: the prefix comes from the connection's settings
        indexes = self._indexes
        cluster = self._bind().cluster
        index = indexes.get((user_id, sessions, cluster))
        if index is None:
            if len(indexes) >= 4096:
                indexes.clear()
            name = str(SessionUserKey(user_id=user_id).render())
            if cluster:
                at = slot_prefix(sessions, user_tag(str(user_id)))
                name = at + name.removeprefix("session:")  # session:{tttt}:user:{id}
            else:
                at, name = sessions, self._prefix + name
            index = indexes[user_id, sessions, cluster] = (name, index_json(name), at)
        return index

    def _index_tag(self, user_id: str | None) -> str:
        """The tag of a new id: its user's, or a random one (a session without a user)."""
        return user_tag(user_id) if user_id is not None else secrets.token_hex(TAG_LENGTH // 2)

    def _at(self, secret: str) -> tuple[str, str] | None:
        """(session prefix, handle) of a presented id, or None if it cannot be one."""
        handle = lookup_handle(secret, self.min_id_length)
        return None if handle is None else (self._place(secret, handle), handle)

    def _fresh(self, like: str | None = None, user_id: str | None = None) -> str:
        """A fresh id or token; on a cluster tagged as ``like`` (an id of the same session)
        or as ``user_id``'s sessions."""
        secret = new_secret()
        if not self._bind().cluster:
            return secret
        tag = tag_of(like, handle_of(like)) if like is not None else self._index_tag(user_id)
        return tagged(tag, secret)

    def _now(self) -> int | None:
        return None if self._clock is None else self._clock()

    # -- flows with their arguments checked ------------------------------------------------------
    def _create(self, secret: str, data: Any, encoded: tuple[bytes, str | None]) -> Flow[bool]:
        text, user_id = encoded
        handle = handle_of(secret)
        at = self._place(secret, handle)
        index = None
        if user_id is not None:
            name, json_name, index_at = self._index(user_id)
            if index_at != at:
                raise InvalidInputError(
                    "on a Redis Cluster a user's session id names the user's slot: let "
                    "new_session() draw it, or start it with session_id_prefix(user_id)"
                )
            index = (name, json_name)
        return flows.create(
            at + handle,
            handle,
            text,
            index,
            self._ttl_ms,
            self._lifetime_ms,
            at,
            self._now(),
            self._session_stats,
        )

    def session_id_prefix(self, user_id: Id) -> str:
        """What a caller-chosen id of ``user_id``'s session must start with: on a Redis
        Cluster the tag of the user's slot (``"tttt."``), elsewhere nothing."""
        if not self._bind().cluster:
            return ""
        self._index(user_id)  # validates the user id
        return tagged(user_tag(str(user_id)), "")

    def _read(self, at: str, handle: str) -> Flow[dict[str, Any] | None]:
        key, stats = at + handle, self._session_stats
        if self.sliding:
            return flows.touch(key, handle, self._ttl_ms, at, self._now(), stats)
        return flows.read(key, handle, at, stats)

    def _update(self, at: str, handle: str, data: Any) -> Flow[bool]:
        encode_data(data, self.max_data_bytes)  # refuse what cannot be stored before any I/O
        return flows.update(at + handle, data, self.max_data_bytes, at, self._session_stats)

    def _list(self, user_id: Id) -> Flow[list[UserSession]]:
        index, _, at = self._index(user_id)
        label = at[len(self._sessions) + 1 : -2] + "." if self._bind().cluster else ""
        return flows.sessions_of(index, at, self._now(), self._session_stats, label)

    def _logout(self, user_id: Id) -> Flow[int]:
        index, _, at = self._index(user_id)
        return flows.logout(index, at, self._now(), self._session_stats)

    def _delete(self, at: str, handle: str) -> Flow[bool]:
        return flows.delete(at + handle, handle, at, self._session_stats)

    def _extend(self, at: str, handle: str) -> Flow[bool]:
        return flows.extend(at + handle, handle, self._ttl_ms, at, self._now())

    def _new(self, data: Any) -> Flow[str | None]:
        encoded = encode_data(data, self.max_data_bytes)
        session_id = self._fresh(user_id=encoded[1])
        return _then(self._create(session_id, data, encoded), session_id)

    def _rotation(self, session_id: str) -> Flow[str | None] | None:
        found = self._at(session_id)
        if found is None:
            return None
        at, handle = found
        new_id = self._fresh(like=session_id)
        new_handle = handle_of(new_id)
        flow = flows.rotate(
            at + handle,
            handle,
            at + new_handle,
            new_handle,
            self._ttl_ms,
            at,
            self._now(),
            self._session_stats,
        )
        return _then(flow, new_id)

    def _issuing(self, session_id: str) -> Flow[str | None] | None:
        found = self._at(session_id)
        if found is None:
            return None
        at, handle = found
        token = self._fresh(like=session_id)
        flow = flows.issue(
            at + handle,
            handle,
            handle_of(token),
            new_family(),
            self._refresh_ttl_ms,
            at,
            self._now(),
        )
        return _then(flow, token)

    def _refreshing(self, refresh_token: str) -> Flow[tuple[str, str] | None] | None:
        token_handle = lookup_handle(refresh_token)
        if token_handle is None:
            return None
        at = self._place(refresh_token, token_handle)
        new_id, new_token = self._fresh(like=refresh_token), self._fresh(like=refresh_token)
        flow = flows.refresh(
            at + "refresh:" + token_handle,
            handle_of(new_id),
            handle_of(new_token),
            self._ttl_ms,
            self._lifetime_ms,
            self._refresh_ttl_ms,
            at,
            self._now(),
            self._session_stats,
        )
        return _then(flow, (new_id, new_token))

    def _handle(self, handle: Any) -> tuple[str, str]:
        """(session prefix, hash) of a handle ``get_user_sessions`` gave (on a cluster it
        starts with the slot's tag)."""
        if type(handle) is str and self._bind().cluster:
            tag, dot, digest = handle.partition(".")
            if dot and _HANDLE.fullmatch(digest) and tag_of(handle, digest) == tag:
                return slot_prefix(self._sessions, tag), digest
        elif type(handle) is str and _HANDLE.fullmatch(handle):
            return self._sessions, handle
        raise InvalidInputError("a session handle is what get_user_sessions gave (hex digits)")

    def _typed(self, data: dict[str, Any] | None) -> SessionData | None:
        if data is None:
            return None
        try:
            return SessionData.model_validate(data)
        except ValidationError:
            self._session_stats.corrupt += 1
            logger.warning("a session's data does not fit SessionData; read it as a dict")
            return None

    def get_info(self) -> dict[str, Any]:
        """Counters: corrupt sessions dropped, update conflicts, refresh-token reuse, failures."""
        stats = self._session_stats
        return self._report(
            corrupt_sessions=stats.corrupt,
            update_conflicts=stats.update_conflicts,
            refresh_reuse_detected=stats.refresh_reuse,
        )


class SyncRedisSessionManager(_SessionBase, SyncShell):
    """Blocking twin of ``RedisSessionManager``: the same methods, without ``await``."""

    __slots__ = ()

    def create_session(self, session_id: str, data: Mapping[str, Any] | SessionData) -> bool:
        """Store a new session under a caller-chosen id; False if that id is taken.

        Raises:
            InvalidInputError: the id is not a str of ``min_id_length`` to 512 characters.
            SerializationError: the data is not a JSON object or is too large.
        """
        check_new_id(session_id, self.min_id_length)
        flow = self._create(session_id, data, encode_data(data, self.max_data_bytes))
        return self._run(flow, False)

    def new_session(self, data: Mapping[str, Any] | SessionData) -> str | None:
        """Create a session under a fresh 256-bit id and return it (None if Redis failed)."""
        return self._run(self._new(data), None)

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None (unknown, expired, corrupt, or Redis failed)."""
        found = self._at(session_id)
        return None if found is None else self._run(self._read(*found), None)

    def get_session_data(self, session_id: str) -> SessionData | None:
        """``get_session`` as a ``SessionData``."""
        return self._typed(self.get_session(session_id))

    def update_session(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Merge ``data`` into the session's top-level keys, atomically; False if none."""
        found = self._at(session_id)
        return found is not None and self._run(self._update(*found, data), False)

    def delete_session(self, session_id: str) -> bool:
        """End the session (and its refresh tokens); False if there was none."""
        found = self._at(session_id)
        return found is not None and self._run(self._delete(*found), False)

    def extend_session(self, session_id: str) -> bool:
        """Restart the idle TTL (never past ``max_lifetime``); False if there is no session."""
        found = self._at(session_id)
        return found is not None and self._run(self._extend(*found), False)

    def rotate_session(self, session_id: str) -> str | None:
        """Move the session to a fresh id, atomically, and return it; the old id dies.

        Call it on login and on any privilege change (session fixation).
        """
        flow = self._rotation(session_id)
        return None if flow is None else self._run(flow, None)

    def get_user_sessions(self, user_id: Id) -> list[UserSession]:
        """The user's live sessions with their data (for a "your devices" page)."""
        return self._run(self._list(user_id), [])

    def delete_user_sessions(self, user_id: Id) -> int:
        """Log the user out everywhere in one atomic step; how many sessions ended."""
        return self._run(self._logout(user_id), 0)

    def revoke_session(self, handle: str) -> bool:
        """End a session by its handle (from ``get_user_sessions``)."""
        return self._run(self._delete(*self._handle(handle)), False)

    def issue_refresh_token(self, session_id: str) -> str | None:
        """A refresh token (256 bits) for the session, replacing any earlier one; None if
        there is no session."""
        flow = self._issuing(session_id)
        return None if flow is None else self._run(flow, None)

    def refresh_session(self, refresh_token: str) -> tuple[str, str] | None:
        """Exchange a refresh token for ``(new session id, new refresh token)``; the old
        session and token end. None for an unknown, expired or reused token; reuse also
        revokes every session and token of its family."""
        flow = self._refreshing(refresh_token)
        return None if flow is None else self._run(flow, None)


class RedisSessionManager(_SessionBase, AsyncShell):
    """The spec's session manager: hashed ids, per-user index, refresh tokens, 1 h idle TTL."""

    __slots__ = ()

    async def create_session(self, session_id: str, data: Mapping[str, Any] | SessionData) -> bool:
        """Store a new session under a caller-chosen id; False if that id is taken.

        Raises:
            InvalidInputError: the id is not a str of ``min_id_length`` to 512 characters.
            SerializationError: the data is not a JSON object or is too large.
        """
        check_new_id(session_id, self.min_id_length)
        flow = self._create(session_id, data, encode_data(data, self.max_data_bytes))
        return await self._run(flow, False)

    async def new_session(self, data: Mapping[str, Any] | SessionData) -> str | None:
        """Create a session under a fresh 256-bit id and return it (None if Redis failed)."""
        return await self._run(self._new(data), None)

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session's data, or None (unknown, expired, corrupt, or Redis failed)."""
        found = self._at(session_id)
        return None if found is None else await self._run(self._read(*found), None)

    async def get_session_data(self, session_id: str) -> SessionData | None:
        """``get_session`` as a ``SessionData``."""
        return self._typed(await self.get_session(session_id))

    async def update_session(self, session_id: str, data: Mapping[str, Any]) -> bool:
        """Merge ``data`` into the session's top-level keys, atomically; False if none."""
        found = self._at(session_id)
        return found is not None and await self._run(self._update(*found, data), False)

    async def delete_session(self, session_id: str) -> bool:
        """End the session (and its refresh tokens); False if there was none."""
        found = self._at(session_id)
        return found is not None and await self._run(self._delete(*found), False)

    async def extend_session(self, session_id: str) -> bool:
        """Restart the idle TTL (never past ``max_lifetime``); False if there is no session."""
        found = self._at(session_id)
        return found is not None and await self._run(self._extend(*found), False)

    async def rotate_session(self, session_id: str) -> str | None:
        """Move the session to a fresh id, atomically, and return it; the old id dies.

        Call it on login and on any privilege change (session fixation).
        """
        flow = self._rotation(session_id)
        return None if flow is None else await self._run(flow, None)

    async def get_user_sessions(self, user_id: Id) -> list[UserSession]:
        """The user's live sessions with their data (for a "your devices" page)."""
        return await self._run(self._list(user_id), [])

    async def delete_user_sessions(self, user_id: Id) -> int:
        """Log the user out everywhere in one atomic step; how many sessions ended."""
        return await self._run(self._logout(user_id), 0)

    async def revoke_session(self, handle: str) -> bool:
        """End a session by its handle (from ``get_user_sessions``)."""
        return await self._run(self._delete(*self._handle(handle)), False)

    async def issue_refresh_token(self, session_id: str) -> str | None:
        """A refresh token (256 bits) for the session, replacing any earlier one; None if
        there is no session."""
        flow = self._issuing(session_id)
        return None if flow is None else await self._run(flow, None)

    async def refresh_session(self, refresh_token: str) -> tuple[str, str] | None:
        """Exchange a refresh token for ``(new session id, new refresh token)``; the old
        session and token end. None for an unknown, expired or reused token; reuse also
        revokes every session and token of its family."""
        flow = self._refreshing(refresh_token)
        return None if flow is None else await self._run(flow, None)
