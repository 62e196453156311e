"""Consumer groups mypy must accept; ``assert_type`` pins the entry types users see."""

from __future__ import annotations

from typing import assert_type

from arketic_cache import Claimed, StreamRepository, SyncStreamRepository
from tests.typing.typing_fixtures import ChatEvent, ChatStreamKey


async def consume(events: StreamRepository[ChatStreamKey, ChatEvent]) -> None:
    key = ChatStreamKey(chat_id="c")
    assert_type(await events.create_group(key, "g"), bool)
    batch = await events.read_group(key, "g", "worker-1", count=10, block=2.0)
    assert_type(batch, list[tuple[str, ChatEvent]])
    for entry_id, event in batch:
        assert_type(event.text, str)
        assert_type(await events.ack(key, "g", entry_id), int)
    claimed = await events.claim(
        key,
        "g",
        "worker-2",
        min_idle=30,
        max_deliveries=5,
        dead_letter=ChatStreamKey(chat_id="dead"),
    )
    assert_type(claimed, Claimed[ChatEvent])
    assert_type(claimed.entries, list[tuple[str, ChatEvent]])
    assert_type(await events.trim(key, max_age=86_400), int)
    assert_type(await events.read_after(key, "0-0", block=1.0), list[tuple[str, ChatEvent]])


def consume_sync() -> None:
    events = SyncStreamRepository(ChatStreamKey)
    key = ChatStreamKey(chat_id="c")
    assert_type(events.read_group(key, "g", "w"), list[tuple[str, ChatEvent]])
    assert_type(events.claim(key, "g", "w", min_idle=0), Claimed[ChatEvent])
    assert_type(events.pending(key, "g"), int)
