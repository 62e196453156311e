"""Typed channels on fakeredis and a real server, sync and async: publish, subscribe, patterns,
tenant isolation, bad messages, queue overflow, and changing subscriptions in place."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from pydantic import BaseModel

from arketic_cache import (
    BackendUnavailable,
    Channel,
    Gap,
    InvalidInputError,
    KeySchemaError,
    PubSub,
    Received,
    RedisConnection,
    SerializationError,
    SubscriptionOverflow,
    SyncPubSub,
)
from arketic_cache.testing import free_port

from ..helpers import Flavor
from .helpers import Chat, ChatChannel, Side, TenantChannel


@pytest.fixture
def side(flavor: Flavor) -> Side:
    return Side(flavor.name, flavor.connection, flavor.runner)


def chat(text: str, user: str = "ada") -> Chat:
    return Chat(user=user, text=text)


class TestPublishSubscribe:
    def test_a_message_arrives_typed_with_its_channel_and_envelope(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"))
        before = time.time()
        assert side.publish(ChatChannel(chat_id="c1"), chat("hi")) == 1
        item = sub.receive()
        assert type(item) is Received
        assert item.channel == ChatChannel(chat_id="c1")
        assert item.message == chat("hi")
        assert before - 1 <= item.published_at <= time.time() + 1
        assert side.publish(ChatChannel(chat_id="c1"), chat("again")) == 1
        assert sub.receive().id != item.id
        assert side.stats()["published"] == 2
        assert side.stats()["received"] == 2

    def test_nobody_listening_is_zero_receivers(self, side: Side) -> None:
        assert side.publish(ChatChannel(chat_id="nobody"), chat("hi")) == 0

    def test_messages_keep_their_order(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"))
        for n in range(50):
            side.publish(ChatChannel(chat_id="c1"), chat(str(n)))
        assert [sub.receive().message.text for _ in range(50)] == [str(n) for n in range(50)]

    def test_the_key_prefix_is_applied_to_channels(self, flavor: Flavor, raw: redis.Redis) -> None:
        side = Side(flavor.name, flavor.connect(key_prefix="app:"), flavor.runner)
        sub = side.subscribe(ChatChannel(chat_id="c1"))
        assert sub.subscription.channels == ["app:chat:c1"]
        assert raw.pubsub_numsub("app:chat:c1") == [("app:chat:c1", 1)]
        assert raw.pubsub_numsub("chat:c1") == [("chat:c1", 0)]
        side.publish(ChatChannel(chat_id="c1"), chat("hi"))
        assert sub.receive().message == chat("hi")

    def test_the_wire_holds_one_versioned_json_envelope(self, side: Side, raw: redis.Redis) -> None:
        listener = raw.pubsub()
        listener.subscribe("chat:c1")
        assert listener.get_message(timeout=5)["type"] == "subscribe"
        side.publish(ChatChannel(chat_id="c1"), chat("hi"))
        wire = listener.get_message(timeout=5)
        listener.close()
        envelope = json.loads(wire["data"])
        assert envelope.keys() == {"v", "id", "ts", "m"}
        assert envelope["v"] == 1
        assert envelope["m"] == {"user": "ada", "text": "hi"}

    def test_two_subscriptions_share_one_server_subscription(
        self, side: Side, raw: redis.Redis
    ) -> None:
        first = side.subscribe(ChatChannel(chat_id="c1"))
        second = side.subscribe(ChatChannel(chat_id="c1"), ChatChannel(chat_id="c2"))
        hub = side.hub()
        assert hub.subscriber.connections == 1
        assert raw.pubsub_numsub("chat:c1") == [("chat:c1", 1)]
        assert side.publish(ChatChannel(chat_id="c1"), chat("both")) == 1
        assert first.receive().message.text == "both"
        assert second.receive().message.text == "both"
        side.publish(ChatChannel(chat_id="c2"), chat("second only"))
        assert second.receive().message.text == "second only"
        assert first.receive(0.2) is None

    def test_closing_unsubscribes_in_place_and_the_last_close_stops(
        self, side: Side, raw: redis.Redis
    ) -> None:
        first = side.subscribe(ChatChannel(chat_id="c1"))
        second = side.subscribe(ChatChannel(chat_id="c2"))
        hub = side.hub()
        first.close()  # returns once Redis confirmed it
        assert raw.pubsub_numsub("chat:c1", "chat:c2") == [("chat:c1", 0), ("chat:c2", 1)]
        side.publish(ChatChannel(chat_id="c2"), chat("still here"))
        assert second.receive().message.text == "still here"
        assert hub.subscriber.connections == 1, "changed in place, never reconnected"
        second.close()
        assert not hub.subscriber.running
        assert raw.pubsub_numsub("chat:c2") == [("chat:c2", 0)]

    def test_nothing_is_lost_or_repeated_while_another_subscription_joins(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"))
        for n in range(30):
            side.publish(ChatChannel(chat_id="c1"), chat(str(n)))
            if n % 10 == 5:
                side.subscribe(ChatChannel(chat_id=f"other{n}"))
        assert [item.message.text for item in sub.drain()] == [str(n) for n in range(30)]


class TestPatterns:
    def test_every_channel_of_a_schema_with_its_fields_parsed(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel.every())
        side.publish(ChatChannel(chat_id="c1"), chat("one"))
        side.publish(ChatChannel(chat_id="c2"), chat("two"))
        items = [sub.receive(), sub.receive()]
        assert [(i.channel.chat_id, i.message.text) for i in items] == [
            ("c1", "one"),
            ("c2", "two"),
        ]

    def test_fixed_fields_narrow_the_pattern(self, side: Side) -> None:
        sub = side.subscribe(TenantChannel.every(tenant="acme"))
        side.publish(TenantChannel(tenant="other", room="r1"), chat("not for acme"))
        side.publish(TenantChannel(tenant="acme", room="r1"), chat("for acme"))
        item = sub.receive()
        assert item.channel == TenantChannel(tenant="acme", room="r1")
        assert sub.receive(0.2) is None

    def test_a_channel_and_a_pattern_both_matching_deliver_once(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"), ChatChannel.every())
        side.publish(ChatChannel(chat_id="c1"), chat("once"))
        side.publish(ChatChannel(chat_id="c2"), chat("pattern only"))
        assert [i.message.text for i in sub.drain()] == ["once", "pattern only"]

    @pytest.mark.parametrize("hostile", ["*", "a*", "?", "[a-z]", "x:*", "acme:room:*", "\\*"])
    def test_glob_and_separator_characters_cannot_reach_other_tenants(
        self, side: Side, hostile: str
    ) -> None:
        by_part = side.subscribe(TenantChannel(tenant=hostile, room="r1"))
        by_pattern = side.subscribe(TenantChannel.every(tenant=hostile))
        side.publish(TenantChannel(tenant="acme", room="r1"), chat("acme's secret"))
        side.publish(TenantChannel(tenant=hostile, room="r1"), chat("hostile's own"))
        for sub in (by_part, by_pattern):
            items = sub.drain()
            assert [i.message.text for i in items] == ["hostile's own"]
            assert items[0].channel.tenant == hostile

    def test_a_channel_of_another_schema_under_the_pattern_is_skipped(
        self, side: Side, raw: redis.Redis
    ) -> None:
        sub = side.subscribe(ChatChannel.every())
        raw.publish("chat:c1:typing", "{}")  # matches chat:* but is no ChatChannel
        side.publish(ChatChannel(chat_id="c1"), chat("real"))
        assert [i.message.text for i in sub.drain()] == ["real"]
        assert side.stats()["decode_errors"] == 1


class TestBadMessages:
    @pytest.mark.parametrize(
        "wire",
        [
            "not json",
            "",
            '{"v":1,"id":"x","ts":1,"m":{"user":"a"}}',  # a field missing
            '{"v":2,"id":"x","ts":1,"m":{"user":"a","text":"b"}}',  # an unknown version
            '{"user":"a","text":"b"}',  # no envelope
            "\udcff\udcfe",  # not UTF-8
        ],
    )
    def test_undecodable_messages_are_counted_and_skipped(
        self, side: Side, raw: redis.Redis, wire: str
    ) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"))
        raw.publish("chat:c1", wire.encode("utf-8", "surrogateescape"))
        side.publish(ChatChannel(chat_id="c1"), chat("after"))
        assert [i.message.text for i in sub.drain()] == ["after"]
        assert side.stats()["decode_errors"] == 1

    def test_a_message_of_another_model_is_refused_before_io(self, flavor: Flavor) -> None:
        class Other(BaseModel):
            n: int

        side = Side(flavor.name, flavor.dead_connection(), flavor.runner, strict=True)
        with pytest.raises(SerializationError, match="expected a Chat message, not Other"):
            side.publish(ChatChannel(chat_id="c1"), Other(n=1))

    def test_an_oversized_message_is_refused_before_io(self, flavor: Flavor) -> None:
        conn = RedisConnection(url=f"redis://127.0.0.1:{free_port()}/0", max_value_bytes=1000)
        flavor.connections.append(conn)
        side = Side(flavor.name, conn, flavor.runner, strict=True)
        with pytest.raises(SerializationError, match="over the 1000-byte limit"):
            side.publish(ChatChannel(chat_id="c1"), chat("x" * 1000))

    def test_publishing_while_redis_is_down_answers_zero(self, flavor: Flavor) -> None:
        side = Side(flavor.name, flavor.dead_connection(), flavor.runner)
        assert side.publish(ChatChannel(chat_id="c1"), chat("lost")) == 0
        assert side.stats()["errors"] == 1
        assert side.stats()["published"] == 0
        strict = Side(flavor.name, flavor.dead_connection(), flavor.runner, strict=True)
        with pytest.raises(BackendUnavailable):
            strict.publish(ChatChannel(chat_id="c1"), chat("lost"))


class TestOverflow:
    def test_drop_oldest_keeps_the_newest_and_reports_how_many_were_dropped(
        self, side: Side
    ) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"), max_queued=3)
        for n in range(10):
            side.publish(ChatChannel(chat_id="c1"), chat(str(n)))
        sub.wait(lambda: side.stats()["dropped"] == 7, "seven drops")
        assert sub.pending == 3, "the memory a stopped reader pins is bounded"
        gap = sub.receive()
        assert gap == Gap("overflow: the consumer fell behind", 7)
        assert [i.message.text for i in sub.drain()] == ["7", "8", "9"]
        assert side.stats()["gaps"] == 1

    def test_close_ends_the_subscription_with_an_error(self, side: Side) -> None:
        sub = side.subscribe(ChatChannel(chat_id="c1"), max_queued=2, on_overflow="close")
        for n in range(5):
            side.publish(ChatChannel(chat_id="c1"), chat(str(n)))
        sub.wait(lambda: sub.subscription._end.mailbox.closed is not None, "closed")
        with pytest.raises(SubscriptionOverflow, match="more than 2 messages"):
            sub.receive()

    def test_on_gap_takes_the_gaps_out_of_the_stream(self, side: Side) -> None:
        gaps: list[Gap] = []
        sub = side.subscribe(ChatChannel(chat_id="c1"), max_queued=2, on_gap=gaps.append)
        for n in range(5):
            side.publish(ChatChannel(chat_id="c1"), chat(str(n)))
        sub.wait(lambda: side.stats()["dropped"] == 3, "three drops")
        assert [i.message.text for i in sub.drain()] == ["3", "4"]
        assert gaps == [Gap("overflow: the consumer fell behind", 3)]


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_queued": 0}, "max_queued must be a positive int"),
            ({"max_queued": "10"}, "max_queued must be a positive int"),
            ({"on_overflow": "drop_newest"}, "on_overflow is one of"),
            ({"on_gap": "print"}, "on_gap is a function or None"),
        ],
    )
    def test_bad_options_fail_at_once(self, side: Side, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(InvalidInputError, match=match):
            side.pubsub.subscribe(ChatChannel(chat_id="c1"), **kwargs)

    @pytest.mark.parametrize("topic", ["chat:c1", ChatChannel, None])
    def test_a_topic_must_be_a_channel_or_a_pattern(self, side: Side, topic: Any) -> None:
        with pytest.raises(InvalidInputError, match="subscribe takes Channel schemas"):
            side.pubsub.subscribe(topic)
        with pytest.raises(InvalidInputError, match="at least one channel"):
            side.pubsub.subscribe()

    def test_publish_needs_a_channel_instance(self, side: Side) -> None:
        with pytest.raises(InvalidInputError, match="publish to a Channel schema instance"):
            side.publish("chat:c1", chat("hi"))  # type: ignore[arg-type]

    def test_pattern_fields_are_checked(self) -> None:
        with pytest.raises(InvalidInputError, match="has no field"):
            ChatChannel.every(chat="c1")


def test_a_channel_schema_needs_a_model_and_a_sound_template() -> None:
    with pytest.raises(KeySchemaError, match=r"derive from Channel\[Model\]"):

        class Untyped(Channel):  # type: ignore[type-arg]
            template = "x:{a}"
            a: str

    with pytest.raises(KeySchemaError, match="differ from model fields"):

        class Mismatch(Channel[Chat]):
            template = "x:{a}"
            b: str


def test_the_twins_are_the_same_class_shape() -> None:
    public = {n for n in dir(PubSub) if not n.startswith("_")}
    assert public == {n for n in dir(SyncPubSub) if not n.startswith("_")}
