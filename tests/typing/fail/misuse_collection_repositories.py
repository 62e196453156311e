"""LIST, SET, ZSET and STREAM repository misuses mypy must reject (``# E: <code>`` markers).

Checked by ``tests/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import (
    ListRepository,
    SetRepository,
    SortedSetRepository,
    StreamRepository,
    SyncListRepository,
)
from tests.typing.typing_fixtures import (
    ChatEvent,
    ChatStreamKey,
    InboxKey,
    LeaderboardKey,
    PreferencesKey,
    Profile,
    ProfileKey,
    TagsKey,
)


async def methods_of_another_redis_type() -> None:
    inbox = ListRepository(InboxKey)
    tags = SetRepository(TagsKey)
    board = SortedSetRepository(LeaderboardKey)
    events = StreamRepository(ChatStreamKey)
    await tags.push(TagsKey(item_id="i"), "red")  # E: attr-defined
    await tags.pop(TagsKey(item_id="i"))  # E: attr-defined
    await inbox.add(InboxKey(user_id=1), ChatEvent(author="a", text="b"))  # E: attr-defined
    await inbox.members(InboxKey(user_id=1))  # E: attr-defined
    await board.push(LeaderboardKey(game="g"), "ada")  # E: attr-defined
    await events.get(ChatStreamKey(chat_id="c"))  # E: attr-defined
    await events.set(ChatStreamKey(chat_id="c"), ChatEvent(author="a", text="b"))  # E: attr-defined
    sync_inbox = SyncListRepository(InboxKey)
    sync_inbox.add(InboxKey(user_id=1), ChatEvent(author="a", text="b"))  # E: attr-defined


def repository_of_another_redis_type() -> None:
    ListRepository(TagsKey)  # E: type-var, arg-type
    SetRepository(InboxKey)  # E: type-var, arg-type
    SortedSetRepository(TagsKey)  # E: type-var, arg-type
    StreamRepository(PreferencesKey)  # E: type-var, arg-type
    ListRepository(ProfileKey)  # E: type-var, arg-type


async def wrong_keys_and_members() -> None:
    inbox = ListRepository(InboxKey)
    tags = SetRepository(TagsKey)
    board = SortedSetRepository(LeaderboardKey)
    events = StreamRepository(ChatStreamKey)
    event = ChatEvent(author="a", text="b")
    await inbox.push(TagsKey(item_id="i"), event)  # E: arg-type
    await inbox.push("app:inbox:1", event)  # E: arg-type
    await inbox.push(InboxKey(user_id=1), "hello")  # E: arg-type
    await inbox.push(InboxKey(user_id=1), event, Profile(name="Ada"))  # E: arg-type
    await tags.add(TagsKey(item_id="i"), 1)  # E: arg-type
    await tags.contains(InboxKey(user_id=1), "red")  # E: arg-type
    await board.add(LeaderboardKey(game="g"), "ada", "10")  # E: arg-type
    await board.add(LeaderboardKey(game="g"), 1, 10.0)  # E: arg-type
    await board.add_many(LeaderboardKey(game="g"), [(1.0, "ada")])  # E: list-item
    await events.append(ChatStreamKey(chat_id="c"), Profile(name="Ada"))  # E: arg-type
    await events.append(ChatStreamKey(chat_id="c"), {"author": "a", "text": "b"})  # E: arg-type


async def optional_and_tuple_results() -> None:
    inbox = ListRepository(InboxKey)
    board = SortedSetRepository(LeaderboardKey)
    popped = await inbox.pop(InboxKey(user_id=1))
    popped.text  # E: union-attr
    score: float = await board.score(LeaderboardKey(game="g"), "ada")  # E: assignment
    for member, rank_score in await board.range_by_rank(LeaderboardKey(game="g")):
        member.text  # E: attr-defined
    entries = await StreamRepository(ChatStreamKey).range(ChatStreamKey(chat_id="c"))
    entries[0].text  # E: attr-defined
