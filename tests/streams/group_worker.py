"""A consumer process for the crash tests: it takes entries from a group, reports their ids on
stdout, and then hangs "mid-processing" (reading stdin) until the test kills it.

Run as ``python -m tests.streams.group_worker URL GROUP CONSUMER COUNT``."""

from __future__ import annotations

import json
import sys

from arketic_cache import RedisConnection, SyncStreamRepository

from .helpers import OrdersKey


def main(url: str, group: str, consumer: str, count: int) -> None:
    orders = SyncStreamRepository(OrdersKey, RedisConnection(url=url), strict=True)
    taken = orders.read_group(OrdersKey(shop="s1"), group, consumer, count=count, block=5)
    print(json.dumps([entry_id for entry_id, _ in taken]), flush=True)
    sys.stdin.read()  # processing... never finished, never acknowledged


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
