"""Session manager misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import RedisSessionManager, SessionData, SyncRedisSessionManager


async def calls(manager: RedisSessionManager, sync: SyncRedisSessionManager) -> None:
    await manager.create_session(123, {"user_id": "u1"})  # E: arg-type
    await manager.create_session("s" * 43, ["user_id"])  # E: arg-type
    await manager.create_session("s" * 43)  # E: call-arg
    await manager.get_session(b"session")  # E: arg-type
    created: str = await manager.create_session("s" * 43, {})  # E: assignment
    data = await manager.get_session("s" * 43)
    data["role"]  # E: index
    typed = await manager.get_session_data("s" * 43)
    typed.role  # E: union-attr
    new_id = await manager.new_session({})
    new_id.upper()  # E: union-attr
    await manager.get_user_sessions(3.5)  # E: arg-type
    count: str = await manager.delete_user_sessions("u1")  # E: assignment
    pair = await manager.refresh_session("t" * 43)
    session_id, token = pair  # E: misc
    manager.get_session("s" * 43).get("role")  # E: attr-defined
    sync.get_session("s" * 43).get("role")  # E: union-attr
    await sync.get_session("s" * 43)  # E: misc
    SessionData(login_time=[1])  # E: arg-type
    RedisSessionManager(ttl="1h")  # E: arg-type
