"""Consumer groups, blocking reads, resuming and trimming on fakeredis and a real server, sync
and async: at-least-once delivery, claims, dead letters, bad entries and bad input."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from arketic_cache import (
    BackendUnavailable,
    Claimed,
    InvalidInputError,
    StreamRepository,
    SyncStreamRepository,
)

from ..helpers import Flavor
from .helpers import Order, OrdersKey

KEY = OrdersKey(shop="s1")
DEAD = OrdersKey(shop="s1-dead")


@pytest.fixture
def orders(flavor: Flavor) -> Any:
    conn = flavor.connection
    return flavor.wrap(SyncStreamRepository(OrdersKey, conn), StreamRepository(OrdersKey, conn))


def order(n: int) -> Order:
    return Order(order_id=n, item=f"item-{n}")


def append(orders: Any, *numbers: int) -> list[str]:
    return [orders.append(KEY, order(n)) for n in numbers]


class TestGroups:
    def test_create_is_idempotent_and_makes_the_stream_with_its_ttl(
        self, orders: Any, raw: redis.Redis
    ) -> None:
        assert orders.create_group(KEY, "billing") is True
        assert orders.create_group(KEY, "billing") is False
        assert raw.exists("orders:s1") == 1
        assert 0 < raw.ttl("orders:s1") <= orders.ttl

    def test_each_entry_goes_to_one_consumer_and_stays_pending_until_acked(
        self, orders: Any
    ) -> None:
        orders.create_group(KEY, "billing")
        ids = append(orders, 1, 2, 3)
        first = orders.read_group(KEY, "billing", "c1", count=2)
        second = orders.read_group(KEY, "billing", "c2", count=10)
        assert first == [(ids[0], order(1)), (ids[1], order(2))]
        assert second == [(ids[2], order(3))]
        assert orders.pending(KEY, "billing") == 3
        assert orders.ack(KEY, "billing", ids[0], ids[1]) == 2
        assert orders.ack(KEY, "billing", ids[0]) == 0, "never acknowledged twice"
        assert orders.pending(KEY, "billing") == 1
        assert orders.ack(KEY, "billing") == 0

    def test_a_new_group_starts_at_the_end_or_at_the_beginning(self, orders: Any) -> None:
        old = append(orders, 1)
        orders.create_group(KEY, "new-only")
        orders.create_group(KEY, "everything", start="0")
        new = append(orders, 2)
        assert [i for i, _ in orders.read_group(KEY, "new-only", "c")] == new
        assert [i for i, _ in orders.read_group(KEY, "everything", "c")] == old + new

    def test_groups_are_independent(self, orders: Any) -> None:
        orders.create_group(KEY, "billing")
        orders.create_group(KEY, "shipping")
        append(orders, 1)
        assert orders.read_group(KEY, "billing", "c") == orders.read_group(KEY, "shipping", "c")

    def test_a_blocking_read_returns_what_arrives_and_ends_empty_after_its_time(
        self, orders: Any, flavor: Flavor
    ) -> None:
        orders.create_group(KEY, "billing")
        assert orders.read_group(KEY, "billing", "c", block=0.6) == []  # over two chunks
        append(orders, 1)
        assert orders.read_group(KEY, "billing", "c", block=5)[0][1] == order(1)

    def test_a_claim_takes_over_a_dead_consumers_entries(self, orders: Any) -> None:
        orders.create_group(KEY, "billing")
        ids = append(orders, 1, 2)
        orders.read_group(KEY, "billing", "dead")
        claimed = orders.claim(KEY, "billing", "alive", min_idle=0)
        assert claimed == Claimed([(ids[0], order(1)), (ids[1], order(2))], 0)
        assert orders.claim(KEY, "billing", "other", min_idle=3600).entries == [], "not idle"
        assert orders.ack(KEY, "billing", *ids) == 2
        assert orders.claim(KEY, "billing", "other", min_idle=0) == Claimed([], 0)

    @pytest.mark.one_node  # KEY and DEAD hash to two slots (tests/cluster: a tagged pair)
    def test_entries_delivered_too_often_go_to_the_dead_letter_stream(
        self, orders: Any, raw: redis.Redis
    ) -> None:
        orders.create_group(KEY, "billing")
        (poison,) = append(orders, 666)
        orders.read_group(KEY, "billing", "c1")  # delivery 1
        assert len(orders.claim(KEY, "billing", "c2", min_idle=0).entries) == 1  # delivery 2
        claimed = orders.claim(
            KEY, "billing", "c3", min_idle=0, max_deliveries=2, dead_letter=DEAD
        )  # a third delivery would be one too many
        assert claimed == Claimed([], 1)
        assert [entry for _, entry in orders.range(DEAD)] == [order(666)]
        assert 0 < raw.ttl("orders:s1-dead") <= orders.ttl
        assert orders.pending(KEY, "billing") == 0, "acknowledged in the same step"
        assert orders.ack(KEY, "billing", poison) == 0

    @pytest.mark.one_node  # as above
    def test_a_bad_entry_is_counted_skipped_and_left_pending(
        self, orders: Any, raw: redis.Redis
    ) -> None:
        orders.create_group(KEY, "billing")
        raw.xadd("orders:s1", {"order_id": '"not an int"', "item": '"x"'})
        raw.xadd("orders:s1", {"garbage": "{"})
        (good,) = append(orders, 1)
        assert orders.read_group(KEY, "billing", "c") == [(good, order(1))]
        assert orders.stats()["decode_errors"] == 2
        assert orders.pending(KEY, "billing") == 3, "bad entries wait for the dead letters"
        orders.ack(KEY, "billing", good)
        claimed = orders.claim(KEY, "billing", "c2", min_idle=0, max_deliveries=1, dead_letter=DEAD)
        assert claimed == Claimed([], 2)
        assert orders.pending(KEY, "billing") == 0

    def test_an_entry_trimmed_while_pending_is_skipped(self, orders: Any, raw: redis.Redis) -> None:
        orders.create_group(KEY, "billing")
        gone, kept = append(orders, 1, 2)
        orders.read_group(KEY, "billing", "dead")
        raw.xdel("orders:s1", gone)
        assert orders.claim(KEY, "billing", "alive", min_idle=0).entries == [(kept, order(2))]


class TestFollowing:
    def test_read_after_resumes_from_the_last_id_seen(self, orders: Any) -> None:
        ids = append(orders, 1, 2, 3)
        assert orders.read_after(KEY, ids[0]) == [(ids[1], order(2)), (ids[2], order(3))]
        assert orders.read_after(KEY, ids[2]) == []
        assert orders.read_after(KEY, count=1) == [(ids[0], order(1))]

    def test_read_after_can_wait_for_the_next_entry(self, orders: Any) -> None:
        (last,) = append(orders, 1)
        assert orders.read_after(KEY, last, block=0.3) == []
        assert orders.read_after(KEY, "$", block=0.3) == []

    def test_read_after_skips_and_counts_a_bad_entry(self, orders: Any, raw: redis.Redis) -> None:
        raw.xadd("orders:s1", {"order_id": "[]"})
        (good,) = append(orders, 1)
        assert orders.read_after(KEY) == [(good, order(1))]
        assert orders.stats()["decode_errors"] == 1

    def test_trim_by_length(self, orders: Any) -> None:
        ids = append(orders, *range(10))
        assert orders.trim(KEY, max_length=3, approximate=False) == 7
        assert [i for i, _ in orders.range(KEY)] == ids[-3:]

    def test_trim_by_age_uses_the_servers_clock(self, orders: Any, raw: redis.Redis) -> None:
        seconds, _ = raw.time()
        old = f"{(seconds - 120) * 1000}-0"
        raw.xadd("orders:s1", {"order_id": "1", "item": '"old"'}, id=old)
        (recent,) = append(orders, 2)
        assert orders.trim(KEY, max_age=60, approximate=False) == 1
        assert [i for i, _ in orders.range(KEY)] == [recent]


class TestBadInput:
    @pytest.mark.parametrize(
        ("call", "match"),
        [
            (lambda o: o.create_group(KEY, ""), "a group name is a non-empty str"),
            (lambda o: o.create_group(KEY, "g", start="yesterday"), "a stream entry id"),
            (lambda o: o.read_group(KEY, "g", 7), "a consumer name"),
            (lambda o: o.read_group(KEY, "g", "c", count=0), "count must be a positive int"),
            (lambda o: o.read_group(KEY, "g", "c", block=-1), "block is a positive number"),
            (lambda o: o.read_group(KEY, "g", "c", block=float("inf")), "block is a positive"),
            (lambda o: o.ack(KEY, "g", "not-an-id"), "a stream entry id"),
            (lambda o: o.read_after(KEY, "1-0; DEL x"), "a stream entry id"),
            (lambda o: o.claim(KEY, "g", "c", min_idle=-1), "min_idle is a positive number"),
            (lambda o: o.claim(KEY, "g", "c", min_idle=0, max_deliveries=3), "together"),
            (lambda o: o.claim(KEY, "g", "c", min_idle=0, dead_letter=DEAD), "together"),
            (lambda o: o.trim(KEY), "one of them"),
            (lambda o: o.trim(KEY, max_length=1, max_age=1), "one of them"),
            (lambda o: o.trim(KEY, max_length=-1), "max_length is an int"),
        ],
    )
    def test_bad_arguments_fail_before_io(self, flavor: Flavor, call: Any, match: str) -> None:
        conn = flavor.dead_connection()
        orders = flavor.wrap(
            SyncStreamRepository(OrdersKey, conn, strict=True),
            StreamRepository(OrdersKey, conn, strict=True),
        )
        with pytest.raises(InvalidInputError, match=match):
            call(orders)

    def test_redis_down_degrades_to_empty_answers(self, flavor: Flavor) -> None:
        conn = flavor.dead_connection()
        orders = flavor.wrap(
            SyncStreamRepository(OrdersKey, conn), StreamRepository(OrdersKey, conn)
        )
        assert orders.create_group(KEY, "g") is False
        assert orders.read_group(KEY, "g", "c", block=1) == []
        assert orders.ack(KEY, "g", "1-0") == 0
        assert orders.claim(KEY, "g", "c", min_idle=0) == Claimed([], 0)
        assert orders.trim(KEY, max_length=1) == 0
        conn = flavor.dead_connection()
        strict = flavor.wrap(
            SyncStreamRepository(OrdersKey, conn, strict=True),
            StreamRepository(OrdersKey, conn, strict=True),
        )
        with pytest.raises(BackendUnavailable):
            strict.read_group(KEY, "g", "c")
