"""LIST, SET, ZSET and STREAM repositories, async and sync twins."""

from __future__ import annotations

from typing import Any, assert_type

from arketic_cache import (
    ChatMessagesKey,
    ListRepository,
    SessionUserKey,
    SetRepository,
    SortedSetRepository,
    StreamRepository,
    SyncListRepository,
    SyncSetRepository,
    SyncSortedSetRepository,
    SyncStreamRepository,
    UserPermissionsKey,
)
from tests.typing.typing_fixtures import (
    ChatEvent,
    ChatStreamKey,
    InboxKey,
    LeaderboardKey,
    TagsKey,
)


async def list_repository() -> None:
    inbox = ListRepository(InboxKey)
    assert_type(inbox, ListRepository[InboxKey, ChatEvent])

    key = InboxKey(user_id=1)
    event = ChatEvent(author="ada", text="hi")
    assert_type(await inbox.push(key, event), int)
    assert_type(await inbox.push(key, event, event, max_length=100), int)
    assert_type(await inbox.push_front(key, event), int)
    assert_type(await inbox.pop(key), ChatEvent | None)
    assert_type(await inbox.pop_back(key), ChatEvent | None)
    assert_type(await inbox.range(key), list[ChatEvent])
    assert_type(await inbox.range(key, 0, 9), list[ChatEvent])
    assert_type(await inbox.trim(key, 0, 99), bool)
    assert_type(await inbox.length(key), int)
    assert_type(await inbox.delete(key), bool)

    messages = ListRepository(ChatMessagesKey)
    assert_type(messages, ListRepository[ChatMessagesKey, dict[str, Any]])
    assert_type(await messages.range(ChatMessagesKey(chat_id="c")), list[dict[str, Any]])


def sync_list_repository() -> None:
    inbox = SyncListRepository(InboxKey)
    assert_type(inbox, SyncListRepository[InboxKey, ChatEvent])

    key = InboxKey(user_id=1)
    assert_type(inbox.push(key, ChatEvent(author="ada", text="hi")), int)
    assert_type(inbox.pop(key), ChatEvent | None)
    assert_type(inbox.range(key), list[ChatEvent])
    assert_type(inbox.length(key), int)


async def set_repository() -> None:
    tags = SetRepository(TagsKey)
    assert_type(tags, SetRepository[TagsKey, str])

    key = TagsKey(item_id="i1")
    assert_type(await tags.add(key, "red", "blue"), int)
    assert_type(await tags.remove(key, "red"), int)
    assert_type(await tags.members(key), list[str])
    assert_type(await tags.contains(key, "blue"), bool)
    assert_type(await tags.size(key), int)
    assert_type(await tags.delete(key), bool)

    permissions = SetRepository(UserPermissionsKey)
    assert_type(permissions, SetRepository[UserPermissionsKey, str])
    assert_type(await permissions.members(UserPermissionsKey(user_id=1)), list[str])


def sync_set_repository() -> None:
    tags = SyncSetRepository(TagsKey)
    assert_type(tags, SyncSetRepository[TagsKey, str])
    assert_type(tags.add(TagsKey(item_id="i1"), "red"), int)
    assert_type(tags.members(TagsKey(item_id="i1")), list[str])
    assert_type(tags.contains(TagsKey(item_id="i1"), "red"), bool)


async def sorted_set_repository() -> None:
    board = SortedSetRepository(LeaderboardKey)
    assert_type(board, SortedSetRepository[LeaderboardKey, str])

    key = LeaderboardKey(game="chess")
    assert_type(await board.add(key, "ada", 10.5), int)
    assert_type(await board.add(key, "bob", 3), int)  # an int score is a float
    assert_type(await board.add_many(key, [("ada", 1.0), ("bob", 2.0)]), int)
    assert_type(await board.increment(key, "ada"), float | None)
    assert_type(await board.increment(key, "ada", 2.5), float | None)
    assert_type(await board.range_by_rank(key), list[tuple[str, float]])
    assert_type(await board.range_by_rank(key, 0, 9, desc=True), list[tuple[str, float]])
    assert_type(await board.range_by_score(key), list[tuple[str, float]])
    assert_type(
        await board.range_by_score(key, 0, 100, desc=True, offset=10, count=10),
        list[tuple[str, float]],
    )
    assert_type(await board.score(key, "ada"), float | None)
    assert_type(await board.remove(key, "ada", "bob"), int)
    assert_type(await board.size(key), int)
    assert_type(await board.delete(key), bool)

    for member, score in await board.range_by_rank(key):
        assert_type(member, str)
        assert_type(score, float)

    sessions = SortedSetRepository(SessionUserKey)
    assert_type(sessions, SortedSetRepository[SessionUserKey, str])


def sync_sorted_set_repository() -> None:
    board = SyncSortedSetRepository(LeaderboardKey)
    assert_type(board, SyncSortedSetRepository[LeaderboardKey, str])

    key = LeaderboardKey(game="chess")
    assert_type(board.add(key, "ada", 1.0), int)
    assert_type(board.range_by_score(key, 0, 10), list[tuple[str, float]])
    assert_type(board.score(key, "ada"), float | None)


async def stream_repository() -> None:
    events = StreamRepository(ChatStreamKey)
    assert_type(events, StreamRepository[ChatStreamKey, ChatEvent])

    key = ChatStreamKey(chat_id="c1")
    event = ChatEvent(author="ada", text="hi")
    assert_type(await events.append(key, event), str | None)
    assert_type(await events.append(key, event, max_length=1000, approximate=False), str | None)
    assert_type(await events.range(key), list[tuple[str, ChatEvent]])
    assert_type(await events.range(key, "-", "+", count=10), list[tuple[str, ChatEvent]])
    assert_type(await events.read_after(key, "0-0", count=10), list[tuple[str, ChatEvent]])
    assert_type(await events.length(key), int)
    assert_type(await events.delete(key), bool)

    for entry_id, entry in await events.read_after(key):
        assert_type(entry_id, str)
        assert_type(entry.text, str)


def sync_stream_repository() -> None:
    events = SyncStreamRepository(ChatStreamKey)
    assert_type(events, SyncStreamRepository[ChatStreamKey, ChatEvent])

    key = ChatStreamKey(chat_id="c1")
    assert_type(events.append(key, ChatEvent(author="ada", text="hi")), str | None)
    assert_type(events.range(key), list[tuple[str, ChatEvent]])
    assert_type(events.length(key), int)
