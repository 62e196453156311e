"""Rate limiting: RedisRateLimiter, SyncRedisRateLimiter, @rate_limited and the headers.

Every behaviour test runs on fakeredis and a real server, sync and async (``flavor``). Time is
driven by the limiter's ``clock=`` seam (microseconds replacing Redis ``TIME`` in the script),
so window expiry and month rollover are exact and nothing sleeps. A limiter on a connection
to a dead port with ``strict=True`` proves that a call made no I/O: any I/O would raise."""

from __future__ import annotations

import math
from typing import Any

import pytest
import redis

from arketic_cache import InvalidInputError, Limit, LimitState, RateLimitApiKey

from ..helpers import Flavor
from .helpers import SECOND, T0, FakeClock, limiter, no_io_limiter, several, us


class TestSpecTuple:
    """``is_allowed(key, limit)`` returns ``(is_allowed, current_count, remaining)``."""

    def test_limit_three(self, flavor: Flavor, raw: redis.Redis) -> None:
        """(True,1,2), (True,2,1), (True,3,0), then (False,3,0); a denial records nothing."""
        rl = limiter(flavor)
        results = [rl.is_allowed("rate:api:1:chat", 3) for _ in range(4)]
        assert results == [(True, 1, 2), (True, 2, 1), (True, 3, 0), (False, 3, 0)]
        assert raw.zcard("rate:api:1:chat") == 3
        assert rl.is_allowed("rate:api:1:chat", 3) == (False, 3, 0)
        assert raw.zcard("rate:api:1:chat") == 3
        # The log expires by itself: it outlives its newest entry by a window, at most two.
        assert 50_000 < raw.pttl("rate:api:1:chat") <= 120_000

    def test_keys_are_independent(self, flavor: Flavor) -> None:
        """Each key has its own window."""
        rl = limiter(flavor)
        assert rl.is_allowed("a", 1) == (True, 1, 0)
        assert rl.is_allowed("a", 1) == (False, 1, 0)
        assert rl.is_allowed("b", 1) == (True, 1, 0)

    def test_key_schema_and_prefix(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A key schema instance renders to its key; the key prefix is applied."""
        rl = limiter(flavor, key_prefix="app1:")
        assert rl.is_allowed(RateLimitApiKey(user_id=1, endpoint="chat"), 2) == (True, 1, 1)
        assert raw.zcard("app1:rate:api:1:chat") == 1
        assert rl.is_allowed("rate:api:1:chat", 2) == (True, 2, 0)
        assert raw.keys("*") == ["app1:rate:api:1:chat"]

    def test_denial_with_room_left_for_a_smaller_request(self, flavor: Flavor) -> None:
        """A denied cost leaves ``remaining`` in the Decision, but the spec's tuple says 0."""
        rl = limiter(flavor)
        rl.check("k", 5, cost=3)
        denied = rl.check("k", 5, cost=3)
        assert (denied.allowed, denied.count, denied.remaining) == (False, 3, 2)
        assert denied.as_tuple() == (False, 3, 0)


class TestSlidingWindow:
    """Entries leave exactly when ``now - window >= admitted_at``; waits are exact."""

    def test_entry_leaves_exactly_one_window_after_admission(
        self, flavor: Flavor, raw: redis.Redis
    ) -> None:
        """Admitted at t, still counted at t+W-1µs, gone at t+W."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        assert rl.is_allowed("k", 1) == (True, 1, 0)
        clock.advance(10, micro=-1)
        assert rl.is_allowed("k", 1) == (False, 1, 0)
        clock.advance(micro=1)
        assert rl.is_allowed("k", 1) == (True, 1, 0)
        assert raw.zcard("k") == 1
        assert raw.zrange("k", 0, -1, withscores=True)[0][1] == T0 + 10 * SECOND

    def test_retry_after_is_when_the_oldest_needed_entry_leaves(self, flavor: Flavor) -> None:
        """Denied at t0+5s with entries at t0, t0+1, t0+2 (W=10): retry after 5 s (cost 1)
        or 6 s (cost 2: two entries must leave), and the wait is exact to the microsecond."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        for _ in range(3):
            assert rl.check("k", 3).allowed
            clock.advance(1)
        clock.now = T0 + 5 * SECOND

        one = rl.check("k", 3)
        two = rl.check("k", 3, cost=2)
        assert (one.allowed, us(one.retry_after)) == (False, 5 * SECOND)
        assert (two.allowed, us(two.retry_after)) == (False, 6 * SECOND)
        assert us(one.reset_after) == us(two.reset_after) == 7 * SECOND  # newest: t0+2s

        clock.advance(6, micro=-1)
        assert not rl.check("k", 3, cost=2).allowed  # t0+1s is still inside
        clock.advance(micro=1)
        admitted = rl.check("k", 3, cost=2)
        assert (admitted.allowed, admitted.count, admitted.remaining) == (True, 3, 0)

    def test_retry_after_when_full_is_the_oldest_entry(self, flavor: Flavor) -> None:
        """At the limit the wait is until the first entry leaves; at t+W it fits."""
        clock = FakeClock()
        rl = limiter(flavor, 30, clock=clock)
        rl.check("k", 2)
        clock.advance(12.5)
        rl.check("k", 2)
        clock.advance(0.25)
        denied = rl.check("k", 2)
        assert us(denied.retry_after) == 30 * SECOND - us(12.75)
        clock.advance(denied.retry_after)
        assert clock.now == T0 + 30 * SECOND
        assert rl.check("k", 2).allowed

    def test_reset_after(self, flavor: Flavor) -> None:
        """reset_after: until everything counted now has left (a full window after the newest
        admission); retry_after is 0 when allowed; at is the script's clock."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        first = rl.check("k", 5)
        assert (us(first.retry_after), us(first.reset_after)) == (0, 10 * SECOND)
        assert first.at == T0 / SECOND
        clock.advance(4)
        second = rl.check("k", 5)
        assert us(second.reset_after) == 10 * SECOND
        clock.advance(3)
        denied = rl.check("k", 5, cost=4)  # 2 counted + 4 > 5: nothing recorded
        assert (denied.allowed, denied.count) == (False, 2)
        assert us(denied.reset_after) == 7 * SECOND  # the newest (t0+4s) leaves at t0+14s
        assert us(denied.retry_after) == 3 * SECOND  # one entry must leave: t0 at t0+10s


class TestCosts:
    """A request of cost c fits only as a whole; refunds give units back."""

    def test_cost_admitted_only_if_it_fits(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A denied cost consumes nothing: a smaller request that fits is then admitted."""
        rl = limiter(flavor)
        assert rl.check("k", 10, cost=6).as_tuple() == (True, 6, 4)
        denied = rl.check("k", 10, cost=5)
        assert (denied.allowed, denied.count, denied.cost) == (False, 6, 5)
        assert raw.zcard("k") == 6
        assert rl.check("k", 10, cost=4).as_tuple() == (True, 10, 0)
        assert raw.zcard("k") == 10
        assert rl.check("k", 10, cost=1).as_tuple() == (False, 10, 0)

    def test_cost_above_limit_denied_without_io(self, flavor: Flavor, raw: redis.Redis) -> None:
        """cost > limit can never fit: denied with an infinite wait, no I/O at all."""
        dead = no_io_limiter(flavor)
        decision = dead.check("k", 5, cost=6)
        assert (decision.allowed, decision.count, decision.remaining) == (False, 0, 0)
        assert decision.retry_after == math.inf
        assert (decision.limit, decision.degraded, decision.at) == (5, False, None)
        multi = dead.check("k", Limit(10, 1), Limit(100, 60), cost=11)
        assert (multi.allowed, multi.retry_after, multi.limit) == (False, math.inf, 10)

        live = limiter(flavor)
        assert live.check("k", 5, cost=6).retry_after == math.inf
        assert raw.keys("*") == []

    def test_refund_partial_and_full(self, flavor: Flavor, raw: redis.Redis) -> None:
        """refund(d, n) gives back n units; refund(d) gives back all of them."""
        rl = limiter(flavor)
        first = rl.check("k", 10, cost=6)
        assert rl.refund(first, 2) == 2
        assert raw.zcard("k") == 4
        assert rl.check("k", 10, cost=6).as_tuple() == (True, 10, 0)
        assert rl.refund(first) == 4  # the rest of the first request
        assert raw.zcard("k") == 6
        assert rl.is_allowed("k", 10) == (True, 7, 3)

    @pytest.mark.parametrize(
        "limit", [Limit(10, 60, "log"), Limit(10, 60, "buckets"), Limit.monthly(10)], ids=str
    )
    def test_refund_is_exact_in_every_mode(self, flavor: Flavor, limit: Limit) -> None:
        """Each storage gives back what was asked and counts it as free room again."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        decision = rl.check("k", limit, cost=7)
        assert rl.refund(decision, 3) == 3
        assert rl.check("k", limit, cost=6).as_tuple() == (True, 10, 0)

    @pytest.mark.parametrize(
        "limit", [Limit(10, 60, "log"), Limit(10, 60, "buckets"), Limit.monthly(10)], ids=str
    )
    def test_refunding_twice_gives_nothing_more(self, flavor: Flavor, limit: Limit) -> None:
        """A repeated refund of one decision must not give back another request's units:
        with A(5) and B(5) admitted at limit 10, refunding A twice leaves B's 5 counted, so a
        request of 6 is still denied (else 11 units would be admitted in one window)."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        first = rl.check("k", limit, cost=5)
        assert rl.check("k", limit, cost=5).as_tuple() == (True, 10, 0)
        assert rl.refund(first) == 5
        again = rl.refund(first)
        after = rl.check("k", limit, cost=6)
        assert (again, after.allowed, after.count) == (0, False, 5), (again, after)

    def test_refund_of_expired_units_gives_nothing(self, flavor: Flavor) -> None:
        """A at t0 (cost 3), B at t0+5s, W=10s: at t0+10s A's units have left the window, so
        refunding A gives back 0 ("0 where they have already expired"), as after a check."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        first = rl.check("k", 5, cost=3)
        clock.advance(5)
        assert rl.check("k", 5).as_tuple() == (True, 4, 1)  # keeps the key alive past t0+10s
        clock.advance(5)
        assert rl.refund(first) == 0
        assert rl.check("k", 5, cost=4).as_tuple() == (True, 5, 0)

    def test_refund_of_several_limits(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Every limit gets its units back; the result is the least given back by one limit."""
        rl = limiter(flavor)
        limits = (Limit(3, 10), Limit(5, 60))
        decision = rl.check("k", *limits, cost=2)
        assert rl.refund(decision, 1) == 1
        assert (raw.zcard(several(raw, "k", "3/10s")), raw.zcard(several(raw, "k", "5/60s"))) == (
            1,
            1,
        )
        assert rl.refund(decision) == 1  # the other unit
        assert (raw.zcard(several(raw, "k", "3/10s")), raw.zcard(several(raw, "k", "5/60s"))) == (
            0,
            0,
        )
        again = rl.check("k", *limits, cost=2)
        raw.delete(several(raw, "k", "3/10s"))  # as when its TTL runs out
        assert rl.refund(again) == 0
        assert (
            raw.zcard(several(raw, "k", "5/60s")) == 0
        )  # the minute limit still got its units back

    def test_refund_of_unrecorded_decisions_raises(self, flavor: Flavor) -> None:
        """Only an admitted, recorded decision can be refunded: not a denial, not a request
        denied for its cost, not a degraded answer (open or closed)."""
        rl = limiter(flavor)
        rl.check("k", 1)
        denied = rl.check("k", 1)
        too_big = rl.check("k", 1, cost=2)
        open_ = no_io_limiter(flavor, strict=False).check("k", 1)
        closed = no_io_limiter(flavor, strict=False, fail_closed=True).check("k", 1)
        assert (open_.allowed, open_.degraded, closed.allowed, closed.degraded) == (
            True,
            True,
            False,
            True,
        )
        for decision in (denied, too_big, open_, closed):
            with pytest.raises(InvalidInputError, match="refunded"):
                rl.refund(decision)

    @pytest.mark.parametrize("amount", [0, -1, 4, 1.5, True, "1"], ids=repr)
    def test_refund_amount_validated(self, flavor: Flavor, raw: redis.Redis, amount: Any) -> None:
        """The amount is an int from 1 to the request's cost; a bad one changes nothing."""
        rl = limiter(flavor)
        decision = rl.check("k", 5, cost=3)
        with pytest.raises(InvalidInputError, match="refund"):
            rl.refund(decision, amount)
        assert raw.zcard("k") == 3


class TestSeveralLimits:
    """Several limits on one key are checked and recorded atomically: all or none."""

    def test_denied_by_one_recorded_in_none(self, flavor: Flavor, raw: redis.Redis) -> None:
        """3/1s and 5/60s: whichever denies, neither records; the binding limit is named."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        limits = (Limit(3, 1), Limit(5, 60))
        first = rl.check("k", *limits)
        assert (first.binding, first.limit, first.window, first.remaining) == (0, 3, 1, 2)
        assert [(s.count, s.remaining) for s in first.states] == [(1, 2), (1, 4)]
        rl.check("k", *limits)
        rl.check("k", *limits)

        by_second = rl.check("k", *limits)
        assert (by_second.allowed, by_second.binding, by_second.limit) == (False, 0, 3)
        assert by_second.states[by_second.binding].limit == Limit(3, 1)
        assert us(by_second.retry_after) == SECOND
        assert (raw.zcard(several(raw, "k", "3/1s")), raw.zcard(several(raw, "k", "5/60s"))) == (
            3,
            3,
        )

        clock.advance(1)
        assert rl.check("k", *limits).allowed
        fifth = rl.check("k", *limits)
        assert (fifth.allowed, fifth.binding, fifth.limit, fifth.remaining) == (True, 1, 5, 0)
        by_minute = rl.check("k", *limits)
        assert (by_minute.allowed, by_minute.binding, by_minute.limit) == (False, 1, 5)
        assert (by_minute.window, by_minute.count) == (60, 5)
        assert by_minute.states[1] == LimitState(Limit(5, 60), 5, 0, 59.0, 60.0)
        assert by_minute.states[0].count == 2  # the 1 s limit had room, yet recorded nothing
        assert (raw.zcard(several(raw, "k", "3/1s")), raw.zcard(several(raw, "k", "5/60s"))) == (
            2,
            5,
        )
        assert raw.exists("k") == 0

    def test_binding_is_the_longest_wait_when_several_deny(self, flavor: Flavor) -> None:
        """Both deny: the decision is the one whose wait is longer (49 s over 4 s)."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        limits = (Limit(2, 10), Limit(3, 60))
        for step in (0, 5, 5):
            clock.advance(step)
            assert rl.check("k", *limits).allowed
        clock.advance(1)  # t0+11s
        denied = rl.check("k", *limits)
        assert [us(s.retry_after) for s in denied.states] == [4 * SECOND, 49 * SECOND]
        assert (denied.binding, denied.limit, us(denied.retry_after)) == (1, 3, 49 * SECOND)

    def test_month_and_window_together(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A windowed limit and a monthly quota on one key: stored side by side."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        decision = rl.check("org", Limit(10, 60), Limit.monthly(2), cost=2)
        assert (decision.allowed, decision.binding, decision.window) == (True, 1, "month")
        assert raw.hget(several(raw, "org", "month"), "n") == "2"
        assert raw.zcard(several(raw, "org", "10/60s")) == 2
        assert rl.check("org", Limit(10, 60), Limit.monthly(2)).limit == 2
        assert raw.zcard(several(raw, "org", "10/60s")) == 2
