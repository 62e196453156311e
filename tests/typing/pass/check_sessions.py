"""Session manager types users see: the spec's dict API and the typed ``SessionData`` API."""

from __future__ import annotations

from typing import Any, assert_type

from arketic_cache import (
    RedisSessionManager,
    SessionData,
    SessionMetadata,
    SyncRedisSessionManager,
    UserSession,
    session_manager,
    sync_session_manager,
)


async def spec_calls(token: str) -> None:
    created = await session_manager.create_session(
        session_id=token, data={"user_id": "u1", "email": "a@example.com", "role": "user"}
    )
    assert_type(created, bool)
    assert_type(await session_manager.get_session(token), dict[str, Any] | None)
    assert_type(await session_manager.update_session(token, {"role": "admin"}), bool)
    assert_type(await session_manager.extend_session(token), bool)
    assert_type(await session_manager.delete_session(token), bool)


async def beyond_the_spec(manager: RedisSessionManager) -> None:
    data = SessionData(user_id="u1", metadata=SessionMetadata(browser="firefox"))
    session_id = await manager.new_session(data)
    assert_type(session_id, str | None)
    if session_id is None:
        return
    typed = await manager.get_session_data(session_id)
    assert_type(typed, SessionData | None)
    if typed is not None and typed.metadata is not None:
        assert_type(typed.metadata.browser, str | None)
    assert_type(await manager.rotate_session(session_id), str | None)
    sessions = await manager.get_user_sessions("u1")
    assert_type(sessions, list[UserSession])
    assert_type(sessions[0].handle, str)
    assert_type(await manager.revoke_session(sessions[0].handle), bool)
    assert_type(await manager.delete_user_sessions(42), int)
    token = await manager.issue_refresh_token(session_id)
    assert_type(token, str | None)
    if token is not None:
        assert_type(await manager.refresh_session(token), tuple[str, str] | None)


def sync_twin(manager: SyncRedisSessionManager) -> None:
    session_id = manager.new_session({"user_id": 7})
    assert_type(session_id, str | None)
    assert_type(sync_session_manager.get_session("x" * 43), dict[str, Any] | None)
    assert_type(manager.get_user_sessions(7), list[UserSession])
    assert_type(manager.refresh_session("t" * 43), tuple[str, str] | None)
