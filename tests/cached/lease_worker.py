"""Worker processes for the cross-process lease tests (imported by spawned interpreters)."""

from __future__ import annotations

import threading
from multiprocessing.queues import Queue
from typing import Any

import redis

from arketic_cache import RedisConnection, cached


def run_callers(url: str, callers: int, lock_ttl: int, reports: Queue[Any]) -> None:
    """Call one cold cached function from ``callers`` threads; report each result."""
    conn = RedisConnection(url=url)
    counter = redis.Redis.from_url(url, decode_responses=True)

    @cached(ttl=60, lock=True, lock_ttl=lock_ttl, connection=conn, namespace="lease-test")
    def expensive(x: int) -> int:
        counter.incr("calls")
        reports.put(("computing", None))
        # Hold the lease until the test says so (or forever, when it kills this process).
        counter.blpop(["release"], timeout=30)
        return x * 10

    state = expensive._state
    state.bind()
    assert state.coherence is not None
    assert state.coherence.settle(state.l1, 10)

    def call() -> None:
        reports.put(("calling", None))
        reports.put(("result", expensive(4)))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports.put(("done", expensive.cache_info().misses))
    counter.close()
    conn.close_sync()
