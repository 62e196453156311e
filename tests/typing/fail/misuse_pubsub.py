"""Typed channel misuses mypy must reject. Each offending line ends with ``# E: <code>``.

Checked by ``tests/api/test_typing.py``; excluded from the normal ``mypy`` run and from ruff.
"""

from __future__ import annotations

from arketic_cache import Gap, PubSub, SyncPubSub
from tests.typing.typing_fixtures import Chat, ChatChannel, Profile, ProfileKey


def wrong_messages(pubsub: SyncPubSub) -> None:
    pubsub.publish(ChatChannel(chat_id="c1"), Profile(name="x"))  # E: misc
    pubsub.publish(ChatChannel(chat_id="c1"), {"text": "hi"})  # E: misc
    pubsub.publish("chat:c1", Chat(text="hi"))  # E: arg-type
    pubsub.publish(ProfileKey(user_id=1), Chat(text="hi"))  # E: arg-type
    ChatChannel(chat_id=1)  # E: arg-type


def wrong_topics(pubsub: SyncPubSub) -> None:
    pubsub.subscribe("chat:c1")  # E: call-overload
    pubsub.subscribe(ProfileKey(user_id=1))  # E: call-overload
    pubsub.subscribe(ChatChannel(chat_id="c1"), on_overflow="drop_newest")  # E: call-overload


async def items_are_checked(pubsub: PubSub) -> None:
    async with pubsub.subscribe(ChatChannel(chat_id="c1")) as items:
        async for item in items:
            item.message  # E: union-attr
            item.channel  # E: union-attr
    async with pubsub.subscribe(ChatChannel(chat_id="c1"), on_gap=print) as typed:
        async for received in typed:
            gap: Gap = received  # E: assignment
            received.message.txt  # E: attr-defined
