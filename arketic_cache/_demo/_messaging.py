"""Messaging in the demo: a typed chat channel, then a stream with a consumer group."""

from __future__ import annotations

from pydantic import BaseModel

from .._channels import Channel, Gap
from .._connection import get_redis
from .._keys import StreamKey
from .._pubsub import PubSub
from .._repositories import StreamRepository
from .._ttl import TTL
from ._narration import PREFIX, either, heading, note, show

__all__ = ["messaging_demo"]


class ChatMessage(BaseModel):
    """One chat message, on the channel and in the chat's history."""

    user_id: int
    text: str


class ChatChannel(Channel[ChatMessage]):
    """``chat:{chat_id}``, the spec's chat channel, carrying ChatMessages."""

    template = "chat:{chat_id}"
    chat_id: str


class ChatHistoryKey(StreamKey[ChatMessage]):
    """``chat:{chat_id}:history``: what must not be lost goes in a stream."""

    template = "chat:{chat_id}:history"
    ttl = TTL.DEFAULT
    chat_id: str


async def _channel_demo(reachable: bool) -> None:
    pubsub = PubSub(key_prefix=PREFIX)
    general = ChatChannel(chat_id="general")
    hello = ChatMessage(user_id=42, text="Hello")
    show(
        "ChatChannel(chat_id='1*:x').render()",
        ChatChannel(chat_id="1*:x").render(),
        "escaped: a part cannot subscribe to other chats' channels",
    )
    if not reachable:
        show("publish(chat 'general', ChatMessage)", await pubsub.publish(general, hello))
        note("0 receivers: Redis failed, the message went nowhere (counted, logged)")
        note("subscribing needs a server, so the subscription is skipped")
        return
    async with pubsub.subscribe(general) as updates:
        note("subscribed: Redis confirmed the subscription before publish below")
        await get_redis().publish(PREFIX + general.render(), "not an envelope")
        show(
            "publish(chat 'general', ChatMessage)",
            await pubsub.publish(general, hello),
            "the number of receivers: the demo's own subscription",
        )
        item = await updates.receive(timeout=5.0)
    if isinstance(item, Gap) or item is None:
        show("receive()", item, "no message: the subscriber did not get it in time")
        return
    show(
        "receive(): channel, message",
        (item.channel.chat_id, item.message.text),
        "the channel parsed back into ChatChannel, the message a validated ChatMessage",
    )
    stats = pubsub.stats()
    show(
        "stats()['decode_errors']",
        stats["decode_errors"],
        "a raw string another client published there: counted and skipped, never raised",
    )


async def _stream_demo(reachable: bool) -> None:
    history = StreamRepository(ChatHistoryKey, key_prefix=PREFIX)
    chat = ChatHistoryKey(chat_id="general")
    seen = await history.append(chat, ChatMessage(user_id=42, text="Hello"), max_length=1000)
    await history.append(chat, ChatMessage(user_id=7, text="Hi Ada"), max_length=1000)
    show(
        "read_after(chat, id of the first)",
        [entry.text for _, entry in await history.read_after(chat, seen or "0-0")],
        either(
            reachable,
            "a client that reconnects resumes after the last id it saw",
            "Redis failed: nothing stored, nothing read",
        ),
    )
    if not reachable:
        note("the consumer-group calls need a server too, so they are skipped")
        return
    show(
        "create_group(chat, 'moderation', start='0')",
        await history.create_group(chat, "moderation", start="0"),
        "True: the group is new (False when it exists: creating it again is harmless)",
    )
    taken = await history.read_group(chat, "moderation", "worker-1", count=10)
    show(
        "read_group(..., 'worker-1')",
        len(taken),
        "the number of entries handed to worker-1, pending until acknowledged",
    )
    note("worker-1 dies before acknowledging; worker-2 claims what it held")
    claimed = await history.claim(
        chat,
        "moderation",
        "worker-2",
        min_idle=0.0,
        max_deliveries=5,
        dead_letter=ChatHistoryKey(chat_id="general-dead"),
    )
    show(
        "claim(..., 'worker-2', min_idle=0)",
        len(claimed.entries),
        "the number of entries worker-2 took over (none went to the dead-letter stream)",
    )
    acked = await history.ack(chat, "moderation", *(entry_id for entry_id, _ in claimed.entries))
    show("ack(...) those entries", acked, "the number acknowledged (each once)")
    show(
        "pending(chat, 'moderation')",
        await history.pending(chat, "moderation"),
        "entries still unacknowledged",
    )
    show(
        "trim(chat, max_length=1)",
        await history.trim(chat, max_length=1, approximate=False),
        "the number of oldest entries dropped; the stream never grows without bound",
    )


async def messaging_demo(reachable: bool) -> None:
    heading("Messaging (typed pub/sub channels; streams with consumer groups)")
    await _channel_demo(reachable)
    await _stream_demo(reachable)
