"""@cached basics on both backends, sync and async: keys, L1 over L2, single-flight, invalidate."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pydantic
import pytest
import redis

from arketic_cache import RedisConnection, cached

from ..helpers import Flavor


class Answer(pydantic.BaseModel):
    text: str
    score: float


def make(flavor: Flavor, calls: list[Any], **options: Any) -> Any:
    """The same function, decorated in the test's flavour, recording its calls."""
    options.setdefault("connection", flavor.connection)
    if flavor.name == "sync":

        @cached(**options)
        def answer(question: str, limit: int = 3) -> Answer:
            calls.append((question, limit))
            return Answer(text=question.upper(), score=limit / 10)

        return answer

    @cached(**options)
    async def answer_async(question: str, limit: int = 3) -> Answer:
        calls.append((question, limit))
        return Answer(text=question.upper(), score=limit / 10)

    return flavor.wrap(None, answer_async)


class TestCaching:
    """Equivalent calls share one entry; the model survives L2; invalidate reaches L2."""

    def test_equivalent_calls_share_an_entry(self, flavor: Flavor) -> None:
        """f(x), f(x, default) and f(question=x) compute once."""
        calls: list[Any] = []
        answer = make(flavor, calls)
        first = answer("hi")
        assert answer("hi", 3) == first
        assert answer(question="hi", limit=3) == first
        assert answer("hi", limit=4) != first
        assert calls == [("hi", 3), ("hi", 4)]

    def test_l2_returns_the_model(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A fresh process (no L1) gets the value from Redis as the declared model."""
        answer = make(flavor, [], ttl=120)
        answer("hi")
        later_calls: list[Any] = []
        other = make(flavor, later_calls, ttl=120, l1=False, namespace=None)
        assert isinstance(other("hi"), Answer)
        assert later_calls == []
        (key,) = raw.keys("cached:*")  # our own throwaway database
        assert 110 <= raw.ttl(key) <= 120

    def test_invalidate(self, flavor: Flavor, raw: redis.Redis) -> None:
        """invalidate removes the entry from L1 and L2; the next call recomputes."""
        calls: list[Any] = []
        answer = make(flavor, calls)
        answer("hi")
        assert answer.invalidate("hi") is True
        assert raw.keys("cached:*") == []
        answer("hi")
        assert len(calls) == 2


def test_single_flight_threads() -> None:
    """Eight threads missing the same key share one computation."""
    conn = RedisConnection(url="memory://single-flight-threads")
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    @cached(connection=conn)
    def slow(x: int) -> int:
        calls.append(x)
        entered.set()
        release.wait(10)
        return x

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(7))) for _ in range(8)]
    threads[0].start()
    assert entered.wait(10)
    (flight,) = slow._state.flights.running.values()
    for thread in threads[1:]:
        thread.start()
    with flight.cond:  # every follower is waiting on the leader's computation
        assert flight.cond.wait_for(lambda: flight.waiters == 7, timeout=10)
    release.set()
    for thread in threads:
        thread.join()
    assert results == [7] * 8
    assert calls == [7]
    conn.close_sync()


def test_single_flight_tasks_survive_cancelled_leader() -> None:
    """Tasks share one computation, and cancelling the first caller does not cancel it."""
    conn = RedisConnection(url="memory://single-flight-tasks")
    calls: list[int] = []

    async def scenario() -> None:
        gate, started = asyncio.Event(), asyncio.Event()

        @cached(connection=conn)
        async def slow(x: int) -> int:
            calls.append(x)
            started.set()
            await gate.wait()
            return x

        leader = asyncio.create_task(slow(1))
        await started.wait()  # the computation runs, on the leader's behalf
        followers = [asyncio.create_task(slow(1)) for _ in range(5)]
        for _ in range(5):  # let the followers reach the shared computation
            await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        gate.set()
        assert await asyncio.gather(*followers) == [1] * 5
        await conn.aclose()

    asyncio.run(scenario())
    assert calls == [1]


@pytest.mark.parametrize("flavor_name", ["sync", "async"])
def test_stale_while_revalidate(flavor_name: str) -> None:
    """A stale entry is served at once while one background refresh replaces it."""
    conn = RedisConnection(url=f"memory://swr-{flavor_name}")
    calls: list[int] = []

    if flavor_name == "sync":

        @cached(ttl=60, stale_while_revalidate=30, connection=conn)
        def value(x: int) -> int:
            calls.append(x)
            return x * 2

        memo = value._state
    else:

        @cached(ttl=60, stale_while_revalidate=30, connection=conn)
        async def avalue(x: int) -> int:
            calls.append(x)
            return x * 2

        memo = avalue._state
    key = memo.keyer((5,), {})
    stale = {"v": 999, "x": time.time() - 1, "d": 0.01}  # expired a second ago, kept for SWR
    conn.sync_client.set(key, json.dumps(stale), ex=30)

    async def in_async() -> tuple[int, int]:
        first = await avalue(5)
        await asyncio.gather(*memo.background)
        return first, await avalue(5)

    if flavor_name == "sync":
        first = value(5)
        for worker in list(memo.background):
            worker.join(10)
        second = value(5)
    else:
        first, second = asyncio.run(in_async())
    assert first == 999  # the stale value, without waiting for the computation
    assert second == 10  # the refreshed one
    assert calls == [5]
    fresh = json.loads(conn.sync_client.get(key) or "{}")
    assert fresh["v"] == 10
    assert 80 <= conn.sync_client.ttl(key) <= 90  # 60 s TTL + 30 s of staleness allowed
    conn.close_sync()
