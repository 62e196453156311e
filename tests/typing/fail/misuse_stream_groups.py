"""Consumer-group misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/api/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import SyncStreamRepository
from tests.typing.typing_fixtures import ChatEvent, ChatStreamKey, ProfileKey


def misuse() -> None:
    events = SyncStreamRepository(ChatStreamKey)
    key = ChatStreamKey(chat_id="c")
    events.read_group(ProfileKey(user_id=1), "g", "w")  # E: arg-type
    events.read_group(key, "g")  # E: call-arg
    events.ack(key, "g", 12)  # E: arg-type
    events.claim(key, "g", "w")  # E: call-arg
    events.claim(key, "g", "w", min_idle=0, dead_letter=ProfileKey(user_id=1))  # E: arg-type
    event: ChatEvent = events.read_group(key, "g", "w")[0]  # E: assignment
    events.trim(key, max_age="1d")  # E: arg-type
