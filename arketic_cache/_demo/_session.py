"""Sessions in the demo: the life of one session, refresh-token reuse, the user's index."""

from __future__ import annotations

from .._core._session import SessionData
from .._session import RedisSessionManager
from ._narration import PREFIX, heading, note, show

__all__ = ["session_demo"]


async def session_demo() -> None:
    heading("Sessions (ids drawn by the manager, stored hashed; per-user index; refresh tokens)")
    sessions = RedisSessionManager(key_prefix=PREFIX)
    data = {"user_id": "u-123", "email": "ada@example.com", "role": "user"}
    session_id = await sessions.new_session(data)
    if session_id is None:
        show("new_session({user_id, email, role})", None, "None: Redis failed, no session")
        show(
            "get_session('x' * 43)",
            await sessions.get_session("x" * 43),
            "a session read answers None when Redis fails",
        )
        show("get_user_sessions('u-123')", await sessions.get_user_sessions("u-123"))
        note("the rest of this section needs a session, so it is skipped")
        return
    show(
        "new_session({user_id, email, role})",
        f"{session_id[:8]}...",
        f"the id: {len(session_id)} chars, 256 random bits; Redis only sees its SHA-256",
    )
    show("get_session(id)", await sessions.get_session(session_id))
    show(
        "update_session(id, {'role': 'admin'})",
        await sessions.update_session(session_id, {"role": "admin"}),
    )
    show(
        "get_session_data(id).role",
        (await sessions.get_session_data(session_id) or SessionData()).role,
    )
    show("extend_session(id)", await sessions.extend_session(session_id), "idle TTL restarted")
    rotated = await sessions.rotate_session(session_id)
    show("rotate_session(id): the old id now reads", await sessions.get_session(session_id))
    token = None if rotated is None else await sessions.issue_refresh_token(rotated)
    fresh = None if token is None else await sessions.refresh_session(token)
    show(
        "refresh_session(token): new session + token",
        fresh is not None,
        "the rotated session and the token end; a new pair replaces them",
    )
    if token is not None:
        show("refresh_session(the same token again)", await sessions.refresh_session(token))
    show(
        "reuse revoked the family: the new session",
        await sessions.get_session(fresh[0]) if fresh else None,
    )
    left = len(await sessions.get_user_sessions("u-123"))
    show(
        "get_user_sessions('u-123'): sessions now",
        left,
        "the first session was rotated, refreshed, then revoked with its family",
    )
    for device in ("phone", "laptop"):
        await sessions.new_session({**data, "device": device})
    show(
        "after 2 more new_session() (phone, laptop)",
        len(await sessions.get_user_sessions("u-123")),
        "the number of live sessions of u-123: the two just created",
    )
    show(
        "delete_user_sessions('u-123')  (everywhere)",
        await sessions.delete_user_sessions("u-123"),
        "the number of sessions it ended",
    )
