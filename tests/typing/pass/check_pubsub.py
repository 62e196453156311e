"""Typed channels mypy must accept; ``assert_type`` pins what users see."""

from __future__ import annotations

from typing import assert_type

from arketic_cache import (
    ChannelPattern,
    Gap,
    PubSub,
    Received,
    Subscription,
    SyncPubSub,
    SyncSubscription,
)
from tests.typing.typing_fixtures import Chat, ChatChannel


def sync_side(pubsub: SyncPubSub) -> None:
    receivers = pubsub.publish(ChatChannel(chat_id="c1"), Chat(text="hi"))
    assert_type(receivers, int)
    assert_type(ChatChannel.every(), ChannelPattern[ChatChannel, Chat])
    subscription = pubsub.subscribe(ChatChannel(chat_id="c1"), ChatChannel.every())
    assert_type(subscription, SyncSubscription[Received[ChatChannel, Chat] | Gap])
    with subscription as items:
        for item in items:
            if isinstance(item, Gap):
                assert_type(item.missed, int | None)
                continue
            assert_type(item.channel.chat_id, str)
            assert_type(item.message, Chat)
            assert_type(item.id, str)
        assert_type(items.receive(1.0), Received[ChatChannel, Chat] | Gap | None)


async def async_side(pubsub: PubSub) -> None:
    receivers = await pubsub.publish(ChatChannel(chat_id="c1"), Chat(text="hi"))
    assert_type(receivers, int)

    def gap(item: Gap) -> None:
        print(item.reason)

    subscription = pubsub.subscribe(ChatChannel.every(), on_gap=gap)
    assert_type(subscription, Subscription[Received[ChatChannel, Chat]])
    async with subscription as items:
        async for item in items:
            assert_type(item.message.text, str)
