"""A consumer killed mid-processing on a real server: its entries are claimed and processed
by another consumer (sync or async), none lost and none acknowledged twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from arketic_cache import RedisConnection, StreamRepository, SyncStreamRepository
from arketic_cache.testing import RedisServer

from ..helpers import Bridge
from .helpers import Order, OrdersKey

pytestmark = pytest.mark.redis
KEY = OrdersKey(shop="s1")


@pytest.fixture(params=["sync", "async"])
def orders(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[Any]:
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.delete("orders:s1")  # our own server's key, from an earlier test
    conn = RedisConnection(url=redis_server.url)
    with asyncio.Runner() as runner:
        if request.param == "sync":
            yield SyncStreamRepository(OrdersKey, conn, strict=True)
        else:
            yield Bridge(StreamRepository(OrdersKey, conn, strict=True), runner)
        runner.run(conn.aclose())


def test_a_killed_consumers_entries_are_claimed_and_processed_once(
    orders: Any, redis_server: RedisServer
) -> None:
    orders.create_group(KEY, "billing")
    ids = [orders.append(KEY, Order(order_id=n, item="x")) for n in range(10)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.streams.group_worker", redis_server.url, "billing", "w1",
         "4"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        taken_by_dead = json.loads(worker.stdout.readline())
    finally:
        worker.kill()
        worker.communicate(timeout=10)  # reaped, its pipes closed
    assert taken_by_dead == ids[:4]

    processed: list[str] = []
    claimed = orders.claim(KEY, "billing", "w2", min_idle=0)  # what the dead one held
    rest = orders.read_group(KEY, "billing", "w2", count=100)  # what nobody had taken
    for entry_id, entry in claimed.entries + rest:
        assert entry == Order(order_id=ids.index(entry_id), item="x")
        assert orders.ack(KEY, "billing", entry_id) == 1
        processed.append(entry_id)
    assert sorted(processed) == ids, "none lost"
    assert [i for i, _ in claimed.entries] == taken_by_dead
    assert orders.ack(KEY, "billing", *ids) == 0, "none acknowledged twice"
    assert orders.pending(KEY, "billing") == 0
    assert orders.claim(KEY, "billing", "w3", min_idle=0).entries == []
