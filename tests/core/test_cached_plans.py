"""The plans of ``_cached_state.py`` stepped by hand with canned replies (no Redis, no driver), and
the hot path's agreement with them."""

from __future__ import annotations

import json
import threading
import time
import types
import uuid
from collections.abc import Callable, Generator
from typing import Any, cast

import pytest

from arketic_cache import (
    RedisConnection,
    _cached_state,
    cached,
)
from arketic_cache._cached_state import FAILED, LEASE_GRACE, CachedState
from arketic_cache._cached_steps import Block, Compute, Join, NewSignal, Run, Spawn, Wait
from arketic_cache._core._cached import (
    Claim,
    Entry,
    call_key,
    lease_key,
)
from arketic_cache._core._effects import Batch, Command, Eval
from arketic_cache._invalidation import Coherence
from arketic_cache._lua import (
    RELEASE_LEASE,
    STORE_AND_ANNOUNCE,
    UNLINK_AND_ANNOUNCE,
)
from arketic_cache._primitives import Signal

from .canned import finish


# -- the plans, stepped by hand ------------------------------------------------------------------
class FakeCoherence:
    """What the plans use of ``Coherence``, recorded."""

    def __init__(self) -> None:
        self.channel = "arketic:invalidate"
        self.origin = "me"
        self.own_listeners = 0
        self.subscribed = threading.Event()
        self.subscribed.set()
        self.tracking = True
        self.expected: list[str] = []
        self.unexpected: list[str] = []
        self.watching: list[tuple[str, ...]] = []

    def ensure(self) -> None:
        pass

    def expect(self, key: str) -> bool:
        self.expected.append(key)
        return self.tracking

    def unexpect(self, key: str) -> None:
        self.unexpected.append(key)

    def watch(self, keys: tuple[str, ...], callback: Callable[[], None]) -> Callable[[], None]:
        self.watching.append(keys)
        return lambda: self.watching.remove(keys)


def double(x: int) -> int:
    return 2 * x


class Rig:
    """A decorated ``double``'s state, bound to a connection nothing ever talks to."""

    def __init__(self, **options: Any) -> None:
        self.conn = RedisConnection(url=f"memory://plans-{uuid.uuid4().hex}")
        options.setdefault("ttl", 60)
        self.fn = cached(connection=self.conn, namespace="double", **options)(double)
        self.state: CachedState = self.fn._state
        self.co = FakeCoherence()
        # bound already: bind() returns the connection and registers nothing
        self.state._bound = self.conn
        self.state.coherence = cast(Coherence, self.co)
        if self.state.l1 is not None:
            self.state.l1.restore()  # covered by the (fake) listener
        self.key = self.state.l2_key((1,), {})

    def l1_left(self) -> list[float]:
        store = self.state.l1
        assert store is not None
        return [deadline - time.monotonic() for _, deadline, _ in store.data.values()]

    def run(self, step: Any) -> Any:
        """Assert ``step`` is a never-strict Run on our connection; its flow's first effect."""
        assert type(step) is Run
        assert step.conn is self.conn
        effect = next(step.flow)
        step.flow.close()
        return effect


@pytest.fixture
def chance(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """``random.random()`` inside ``_cached_state``, fixed (the XFetch draw is ``1 - it``)."""
    values = [0.0]
    monkeypatch.setattr(_cached_state, "random", types.SimpleNamespace(random=lambda: values[0]))
    return values


@pytest.mark.usefixtures("chance")
class TestLoadPlan:
    def test_l1_by_another_call_shape_yields_nothing(self) -> None:
        rig = Rig()
        rig.state.remember(rig.state.call_key((1,), {}), rig.key, 2, 30.0, rig.state.seen())
        plan = rig.state.load((), {"x": 1})
        assert finish(plan, None) == 2
        assert rig.state.stats.l1_hits == 1

    def test_fresh_l2_hit_is_kept_for_its_remaining_ttl(self) -> None:
        rig = Rig(stale_while_revalidate=5)
        plan = rig.state.load((1,), {})
        step = next(plan)
        assert rig.run(step) == Batch(
            (
                Command(("GET", rig.key), errors_as_reply=True),
                Command(("PTTL", rig.key), errors_as_reply=True),
            )
        )
        assert type(step) is Run
        assert step.fallback is FAILED
        assert finish(plan, Entry(2, 0.0, 30.0)) == 2
        assert rig.state.stats.hits == 1
        (left,) = rig.l1_left()
        assert 24.0 < left <= 25.0  # remaining 30 s less the stale period

    def test_stale_hit_is_served_and_refreshed_once(self) -> None:
        rig = Rig(stale_while_revalidate=10)
        plan = rig.state.load((1,), {})
        next(plan)
        spawn = plan.send(Entry(5, 0.0, 4.0))
        assert type(spawn) is Spawn
        assert finish(plan, None) == 5
        assert rig.l1_left() == [], "a stale value is not kept in L1"

        again = rig.state.load((1,), {})
        next(again)
        assert finish(again, Entry(5, 0.0, 3.0)) == 5, "no second refresh"

        refresh = spawn.plan
        assert next(refresh) == Compute((1,), {})
        store = refresh.send((2, 0.01))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        finish(refresh, True)
        assert rig.state.refreshing == set()

    def test_miss_computes_stores_and_announces(self) -> None:
        rig = Rig(stale_while_revalidate=5)
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        assert join.key == rig.key
        miss = join.plan
        assert next(miss) == Compute((1,), {})
        store = miss.send((2, 0.5))
        effect = rig.run(store)
        assert type(effect) is Eval
        assert effect.script is STORE_AND_ANNOUNCE
        assert effect.keys == (rig.key,)
        data, ttl, channel, message, listeners = effect.args
        assert isinstance(data, bytes)
        assert json.loads(data) == {"v": 2, "d": 0.5}
        assert (ttl, channel, listeners) == (65, "arketic:invalidate", 0)
        assert json.loads(str(message)) == ["me", rig.key]
        assert finish(miss, True) == 2
        assert finish(plan, 2) == 2
        assert rig.state.stats.misses == 1
        assert rig.co.expected == [rig.key], "our own write's report is skipped"
        assert rig.co.unexpected == []
        assert len(rig.l1_left()) == 1

    def test_failed_store_is_counted_and_unexpected(self) -> None:
        rig = Rig()
        miss = self.miss_plan(rig)
        assert next(miss) == Compute((1,), {})
        miss.send((2, 0.0))
        assert finish(miss, False) == 2
        assert rig.state.stats.errors == 1
        assert rig.co.unexpected == [rig.key]

    def test_failed_read_computes_without_writing(self) -> None:
        rig = Rig()
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(FAILED)
        assert type(join) is Join
        assert next(join.plan) == Compute((1,), {})
        assert finish(join.plan, (2, 0.0)) == 2, "no Run: one failure per call at most"
        assert rig.state.stats.errors == 1

    def test_uncacheable_result_is_not_stored(self) -> None:
        rig = Rig()
        miss = self.miss_plan(rig)
        next(miss)
        assert finish(miss, (None, 0.0)) is None
        assert rig.l1_left() == []

    @pytest.mark.parametrize(("random", "verdict"), [(0.5, "miss"), (0.1, "hit")])
    def test_early_refresh_draw(self, chance: list[float], random: float, verdict: str) -> None:
        rig = Rig(early_refresh=1.0)
        chance[0] = random  # draw 1 - random: 0.5 -> 6.93 s lead, 0.9 -> 1.05 s
        plan = rig.state.load((1,), {})
        next(plan)
        entry = Entry(2, 10.0, 5.0)
        if verdict == "miss":
            assert type(plan.send(entry)) is Join
        else:
            assert finish(plan, entry) == 2

    def test_without_l1_the_flight_reads_l2_again_without_its_ttl(self) -> None:
        """Nothing uses the remaining TTL without L1, staleness or early refresh: GET alone."""
        rig = Rig(l1=False)
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        reread = next(join.plan)
        assert rig.run(reread) == Command(("GET", rig.key), errors_as_reply=True)
        assert finish(join.plan, Entry(9, 0.0, 30.0)) == 9, "another flight stored it"

    @pytest.mark.parametrize("option", [{"early_refresh": 1.0}, {"stale_while_revalidate": 5}])
    def test_without_l1_the_ttl_is_read_when_freshness_needs_it(
        self, option: dict[str, float]
    ) -> None:
        rig = Rig(l1=False, **option)
        read = rig.run(next(rig.state.load((1,), {})))
        assert read == Batch(
            (
                Command(("GET", rig.key), errors_as_reply=True),
                Command(("PTTL", rig.key), errors_as_reply=True),
            )
        )

    @staticmethod
    def miss_plan(rig: Rig) -> Generator[Any, Any, Any]:
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        return join.plan


class TestLeasePlan:
    @staticmethod
    def first_claim(rig: Rig) -> tuple[Generator[Any, Any, Any], Signal, Any]:
        """A miss with ``lock=True`` up to its first claim: the flight, its signal, the claim."""
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        miss = join.plan
        assert type(next(miss)) is NewSignal
        signal = Signal()
        return miss, signal, miss.send(signal)

    def test_waits_for_the_holder_then_takes_over(self) -> None:
        rig = Rig(lock=True, lock_ttl=3)
        miss, signal, claim = self.first_claim(rig)
        effect = rig.run(claim)
        assert type(effect) is Batch
        assert effect.commands[0].args[:2] == ("SET", lease_key(rig.key))
        assert effect.commands[0].args[3:] == ("NX", "PX", 3000)
        assert claim.fallback is None
        assert rig.co.watching == [(rig.key, lease_key(rig.key))]
        wait = miss.send(Claim(False, 500, None))
        assert wait == Wait(signal, 0.5 + LEASE_GRACE)
        assert rig.state.lease_waits == 1
        retry = miss.send(False)  # the holder died: its lease ran out
        assert type(rig.run(retry)) is Batch
        assert miss.send(Claim(True, 3000, None)) == Compute((1,), {})
        assert rig.co.watching == [], "unwatched once the lease is taken"
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        release = miss.send(True)
        effect = rig.run(release)
        assert type(effect) is Eval
        assert effect.script is RELEASE_LEASE
        assert effect.keys == (lease_key(rig.key),)
        assert finish(miss, True) == 2
        assert rig.state.stats.misses == 1

    def test_gives_up_after_the_rounds(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        for _ in range(_cached_state.MAX_LEASE_ROUNDS):
            assert type(miss.send(Claim(False, 100, None))) is Wait
            step = miss.send(True)
        assert step == Compute((1,), {}), "computed here, no lease to release"
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2
        assert rig.state.lease_waits == _cached_state.MAX_LEASE_ROUNDS

    def test_value_landed_while_waiting(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert finish(miss, Claim(False, 700, Entry(2, 0.0, 30.0))) == 2
        assert rig.state.stats.misses == 0
        assert rig.state.stats.hits == 1
        assert len(rig.l1_left()) == 1

    def test_taken_as_the_value_landed_is_given_back(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        release = miss.send(Claim(True, 30000, Entry(2, 0.0, 30.0)))
        assert rig.run(release).script is RELEASE_LEASE
        assert finish(miss, True) == 2
        assert rig.state.stats.misses == 0

    def test_failed_claim_computes_without_a_lease(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert miss.send(None) == Compute((1,), {})
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2

    def test_no_listener_computes_without_a_lease(self) -> None:
        rig = Rig(lock=True)
        rig.co.subscribed.clear()
        plan = rig.state.load((1,), {})
        next(plan)
        join = plan.send(None)
        assert type(join) is Join
        miss = join.plan
        block = next(miss)
        assert block == Block(rig.co.subscribed, rig.conn.settings.connect_timeout)
        assert miss.send(False) == Compute((1,), {})
        store = miss.send((2, 0.0))
        assert rig.run(store).script is STORE_AND_ANNOUNCE
        assert finish(miss, True) == 2, "no lease to release"

    def test_compute_failure_still_releases(self) -> None:
        rig = Rig(lock=True)
        miss, _, _ = self.first_claim(rig)
        assert miss.send(Claim(True, 30000, None)) == Compute((1,), {})
        release = miss.throw(ZeroDivisionError())
        assert rig.run(release).script is RELEASE_LEASE
        with pytest.raises(ZeroDivisionError):
            miss.send(True)


class TestInvalidationPlan:
    def test_drops_l1_then_l2_announced(self) -> None:
        rig = Rig()
        rig.state.remember(rig.state.call_key((1,), {}), rig.key, 2, 30.0, rig.state.seen())
        plan = rig.state.invalidation((), {"x": 1})
        step = next(plan)
        effect = rig.run(step)
        assert effect == Eval(
            UNLINK_AND_ANNOUNCE, (rig.key,), ("arketic:invalidate", f'["me","{rig.key}"]', 0)
        )
        assert rig.l1_left() == [], "L1 first"
        assert finish(plan, False) is True, "held in L1: dropped"

    def test_only_in_l2(self) -> None:
        rig = Rig()
        plan = rig.state.invalidation((1,), {})
        next(plan)
        assert finish(plan, True) is True

    def test_nowhere(self) -> None:
        rig = Rig()
        plan = rig.state.invalidation((1,), {})
        next(plan)
        assert finish(plan, False) is False


# -- the hot path ----------------------------------------------------------------------------------
class TestHotPath:
    def test_second_call_never_reaches_the_plan(self, monkeypatch: pytest.MonkeyPatch) -> None:
        computed: list[int] = []

        @cached(l2=False)
        def f(x: int, y: str = "a") -> int:
            computed.append(x)
            return x

        state = f._state
        assert f(1) == 1
        assert state.l1 is not None
        assert list(state.l1.data) == [call_key((1,), {})]

        def forbidden(*args: Any) -> Any:
            raise AssertionError("the slow path ran")

        monkeypatch.setattr(CachedState, "call_key", forbidden)
        assert f(1) == 1
        assert computed == [1]
        assert state.stats.l1_hits == 1

    def test_method_key_leaves_self_out(self, monkeypatch: pytest.MonkeyPatch) -> None:
        class Shop:
            @cached(l2=False)
            def price(self, item: int) -> int:
                return item * 10

        assert Shop().price(3) == 30
        state = Shop.price._state
        assert state.l1 is not None
        assert list(state.l1.data) == [call_key((3,), {})]
        monkeypatch.setattr(CachedState, "call_key", lambda *a: pytest.fail("slow path"))
        assert Shop().price(3) == 30, "another instance, the same entry, the hot path"

    def test_unhashable_arguments_fall_back_to_the_l2_key(self) -> None:
        @cached(l2=False)
        def total(items: list[int]) -> int:
            return sum(items)

        assert total([1, 2]) == 3
        state = total._state
        assert state.l1 is not None
        assert list(state.l1.data) == [state.l2_key(([1, 2],), {})]
        assert total([1, 2]) == 3
        assert state.stats.l1_hits == 1
