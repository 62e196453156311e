"""Rate limiting: RedisRateLimiter, SyncRedisRateLimiter, @rate_limited and the headers.

Every behaviour test runs on fakeredis and a real server, sync and async (``flavor``). Time is
driven by the limiter's ``clock=`` seam (microseconds replacing Redis ``TIME`` in the script),
so window expiry and month rollover are exact and nothing sleeps. A limiter on a connection
to a dead port with ``strict=True`` proves that a call made no I/O: any I/O would raise.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import inspect
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

import arketic_cache
from arketic_cache import (
    BackendUnavailable,
    ConfigurationError,
    Decision,
    InvalidInputError,
    Limit,
    LimitState,
    NotInitializedError,
    RateLimitApiKey,
    RateLimitExceeded,
    RateLimitUploadKey,
    RedisRateLimiter,
    SyncRedisRateLimiter,
    close_redis,
    close_redis_sync,
    init_redis,
    init_redis_sync,
    rate_limit_headers,
    rate_limited,
)
from arketic_cache._lua import RATE_LIMIT, RATE_LOG, RATE_REFUND
from arketic_cache._settings import ENVIRONMENT_VARIABLES

from ..helpers import Bridge, Flavor

SECOND = 1_000_000
#: For tests about a real redis-server only: ``flavor`` and ``raw`` on the harness' server.
real_redis_only = pytest.mark.parametrize(
    "backend_url", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)


def micros(moment: datetime) -> int:
    """An aware datetime as epoch microseconds (computed by the test, not the library)."""
    return int(moment.timestamp()) * SECOND + moment.microsecond


def us(seconds: float) -> int:
    """A duration of a decision (float seconds) as whole microseconds."""
    return round(seconds * SECOND)


#: 2026-03-10T12:00:00Z: a realistic server time, on a whole second.
T0 = micros(datetime(2026, 3, 10, 12, tzinfo=UTC))


class FakeClock:
    """The limiter's clock seam: epoch microseconds that move only when the test says so."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float = 0, *, micro: int = 0) -> None:
        """Move time forward by ``seconds`` plus ``micro`` microseconds."""
        self.now += us(seconds) + micro

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self.now = micros(moment)


def limiter(flavor: Flavor, window_size: float = 60, **options: Any) -> Any:
    """A strict limiter of the flavour (async bridged) on its connection unless given one."""
    options.setdefault("connection", flavor.connection)
    options.setdefault("strict", True)
    return flavor.wrap(
        SyncRedisRateLimiter(window_size, **options), RedisRateLimiter(window_size, **options)
    )


def no_io_limiter(flavor: Flavor, **options: Any) -> Any:
    """A limiter on a dead connection (strict unless told otherwise): I/O would fail."""
    return limiter(flavor, connection=flavor.dead_connection(), **options)


def view(decision: Decision) -> tuple[Any, ...]:
    """What a decision says, in exact units (microseconds), without its random request id."""
    return (
        decision.allowed,
        decision.count,
        decision.remaining,
        us(decision.retry_after),
        us(decision.reset_after),
        decision.limit,
        decision.window,
        decision.binding,
        decision.at,
    )


def max_in_any_window(admitted: list[tuple[int, int]], window_us: int) -> int:
    """The most units admitted in any trailing window (entries are (admitted_at, units))."""
    times = [at for at, _ in admitted]
    worst = 0
    for index, (at, _) in enumerate(admitted):
        first = bisect.bisect_right(times, at - window_us)  # entries still inside at ``at``
        worst = max(worst, sum(units for _, units in admitted[first : index + 1]))
    return worst


# --- 1. the spec's tuple ------------------------------------------------------------------------


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


# --- 2. the sliding window ------------------------------------------------------------------


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


# --- 3. costs and refunds ---------------------------------------------------------------------


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
        assert (raw.zcard("k:3/10s"), raw.zcard("k:5/60s")) == (1, 1)
        assert rl.refund(decision) == 1  # the other unit
        assert (raw.zcard("k:3/10s"), raw.zcard("k:5/60s")) == (0, 0)
        again = rl.check("k", *limits, cost=2)
        raw.delete("k:3/10s")  # as when its TTL runs out
        assert rl.refund(again) == 0
        assert raw.zcard("k:5/60s") == 0  # the minute limit still got its units back

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


# --- 4. several limits --------------------------------------------------------------------


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
        assert (raw.zcard("k:3/1s"), raw.zcard("k:5/60s")) == (3, 3)

        clock.advance(1)
        assert rl.check("k", *limits).allowed
        fifth = rl.check("k", *limits)
        assert (fifth.allowed, fifth.binding, fifth.limit, fifth.remaining) == (True, 1, 5, 0)
        by_minute = rl.check("k", *limits)
        assert (by_minute.allowed, by_minute.binding, by_minute.limit) == (False, 1, 5)
        assert (by_minute.window, by_minute.count) == (60, 5)
        assert by_minute.states[1] == LimitState(Limit(5, 60), 5, 0, 59.0, 60.0)
        assert by_minute.states[0].count == 2  # the 1 s limit had room, yet recorded nothing
        assert (raw.zcard("k:3/1s"), raw.zcard("k:5/60s")) == (2, 5)
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
        assert raw.hget("org:month", "n") == "2"
        assert raw.zcard("org:10/60s") == 2
        assert rl.check("org", Limit(10, 60), Limit.monthly(2)).limit == 2
        assert raw.zcard("org:10/60s") == 2


# --- 5. buckets ---------------------------------------------------------------------------


ADVERSARIAL = [
    pytest.param(Limit(100, 64, "log"), id="log-100"),
    pytest.param(Limit(100, 64, "buckets"), id="buckets-100"),
    pytest.param(Limit(200, 64), id="auto-200"),
]


class TestBuckets:
    """Large limits: 64 sub-window counters, never more than the limit in any window."""

    @pytest.mark.parametrize("limit", ADVERSARIAL)
    def test_adversarial_trace(self, flavor: Flavor, limit: Limit) -> None:
        """1 at t=0, L-1 at 0.95W, L at 1.02W: only one more is admitted at 1.02W."""
        clock = FakeClock(T0 + 123_457)  # not on a bucket boundary
        rl = limiter(flavor, clock=clock)
        window, n = limit.window_us, limit.limit
        admitted: list[tuple[int, int]] = []
        per_phase = []
        for at, requests in ((0, 1), (window * 95 // 100, n - 1), (window * 102 // 100, n)):
            clock.now = T0 + 123_457 + at
            allowed = [rl.check("k", limit).allowed for _ in range(requests)]
            admitted += [(clock.now, 1)] * sum(allowed)
            per_phase.append(sum(allowed))
        assert per_phase == [1, n - 1, 1]
        assert max_in_any_window(admitted, window) == n

    @pytest.mark.parametrize(
        "limit", [Limit(20, 6.4, "buckets"), Limit(129, 6.4), Limit(20, 6.4, "log")], ids=str
    )
    def test_random_schedule_never_exceeds_the_limit(self, flavor: Flavor, limit: Limit) -> None:
        """Random gaps and costs: in every trailing window at most ``limit`` units."""
        rng = random.Random(20260310)
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        window = limit.window_us
        admitted: list[tuple[int, int]] = []
        denied = 0
        for _ in range(300):
            gaps = [0, 1, window // 64, window // 10, rng.randrange(window)]
            clock.advance(micro=rng.choice(gaps))
            cost = rng.choice([1, 1, 2, 5, limit.limit // 4])
            decision = rl.check("k", limit, cost=cost)
            if decision.allowed:
                admitted.append((clock.now, cost))
            else:
                denied += 1
        assert denied > 0, "the schedule never reached the limit"
        worst = max_in_any_window(admitted, window)
        assert worst <= limit.limit, f"{worst} units admitted in one window of {limit}"

    def test_bucket_wait_and_reset(self, flavor: Flavor, raw: redis.Redis) -> None:
        """W=64s (1 s buckets): a unit admitted at t0+0.5s counts until t0+65s."""
        clock = FakeClock(T0 + SECOND // 2)
        rl = limiter(flavor, clock=clock)
        limit = Limit(2, 64, "buckets")
        first = rl.check("k", limit, cost=2)
        assert us(first.reset_after) == 64 * SECOND + SECOND // 2
        assert raw.hgetall("k") == {str(T0 // SECOND): "2"}
        assert 64_000 < raw.pttl("k") <= 65_000
        clock.now = T0 + 10 * SECOND
        denied = rl.check("k", limit)
        assert (denied.allowed, us(denied.retry_after)) == (False, 55 * SECOND)
        clock.now = T0 + 65 * SECOND - 1
        assert not rl.check("k", limit).allowed
        clock.now = T0 + 65 * SECOND
        assert rl.check("k", limit).as_tuple() == (True, 1, 1)

    def test_hash_stays_within_65_fields(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Admissions in every bucket for two windows: the hash never exceeds 65 fields."""
        clock = FakeClock(T0 + 777)
        rl = limiter(flavor, clock=clock)
        limit = Limit(10_000, 6.4, "buckets")
        sizes = []
        for _ in range(2 * 64 * 3):
            assert rl.check("k", limit, cost=3).allowed
            sizes.append(raw.hlen("k"))
            clock.advance(micro=limit.window_us // (64 * 3) + 1)
        assert 64 <= max(sizes) <= 65, f"fields per step ranged {min(sizes)}..{max(sizes)}"

    @pytest.mark.parametrize(
        ("limit", "kind"),
        [
            (Limit(128, 60), "zset"),
            (Limit(129, 60), "hash"),
            (Limit(5, 60, "buckets"), "hash"),
            (Limit(4096, 60, "log"), "zset"),
            (Limit.monthly(5), "hash"),
        ],
        ids=str,
    )
    def test_storage_by_mode(
        self, flavor: Flavor, raw: redis.Redis, limit: Limit, kind: str
    ) -> None:
        """auto is a log up to 128 and buckets above; explicit modes are obeyed."""
        limiter(flavor).check("k", limit)
        assert raw.type("k") == kind

    def test_is_allowed_above_128_uses_buckets(self, flavor: Flavor, raw: redis.Redis) -> None:
        """The spec's call with a large limit counts in buckets, with the same tuple."""
        rl = limiter(flavor)
        assert rl.is_allowed("k", 1000) == (True, 1, 999)
        assert rl.is_allowed("k", 1000) == (True, 2, 998)
        assert raw.type("k") == "hash"


# --- 6. calendar months -------------------------------------------------------------------


class TestCalendarMonth:
    """quota() counts per calendar month (UTC) and resets at 00:00 on the 1st."""

    def test_quota_resets_at_month_start(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Filled in January: still full at 23:59:59.999999 on the 31st, empty at Feb 1."""
        clock = FakeClock()
        clock.set(datetime(2026, 1, 31, tzinfo=UTC))
        rl = limiter(flavor, clock=clock)
        assert rl.quota("q", 3, cost=3).as_tuple() == (True, 3, 0)
        clock.set(datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC))
        full = rl.quota("q", 3)
        assert (full.allowed, full.count, us(full.retry_after), us(full.reset_after)) == (
            False,
            3,
            1,
            1,
        )
        clock.set(datetime(2026, 2, 1, tzinfo=UTC))
        fresh = rl.quota("q", 3)
        assert fresh.as_tuple() == (True, 1, 2)
        assert us(fresh.reset_after) == 28 * 86400 * SECOND
        assert raw.hget("q", "n") == "1"

    @pytest.mark.parametrize(
        ("now", "next_month"),
        [
            (datetime(2026, 1, 31, 23, 59, 59, 999_999), datetime(2026, 2, 1)),
            (datetime(2026, 1, 1), datetime(2026, 2, 1)),
            (datetime(2026, 12, 31, 23, 59, 59, 500_000), datetime(2027, 1, 1)),
            (datetime(2028, 2, 28, 12), datetime(2028, 3, 1)),
            (datetime(2028, 2, 29, 23, 59, 59), datetime(2028, 3, 1)),
            (datetime(2027, 2, 28, 12), datetime(2027, 3, 1)),
            (datetime(2100, 2, 28, 12), datetime(2100, 3, 1)),
        ],
        ids=str,
    )
    def test_reset_after_is_exactly_the_time_to_next_month(
        self, flavor: Flavor, now: datetime, next_month: datetime
    ) -> None:
        """The first call's reset_after runs to 00:00:00 UTC on the next 1st, to the µs."""
        clock = FakeClock(micros(now.replace(tzinfo=UTC)))
        decision = limiter(flavor, clock=clock).quota("q", 10)
        assert decision.window == "month"
        expected = micros(next_month.replace(tzinfo=UTC)) - clock.now
        assert us(decision.reset_after) == expected

    def test_december_rolls_over_to_january(self, flavor: Flavor) -> None:
        """December's quota is December's; January 1st starts from zero."""
        clock = FakeClock()
        clock.set(datetime(2026, 12, 1, tzinfo=UTC))
        rl = limiter(flavor, clock=clock)
        assert rl.quota("q", 2, cost=2).allowed
        clock.set(datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
        assert rl.quota("q", 2).as_tuple() == (False, 2, 0)
        clock.set(datetime(2027, 1, 1, tzinfo=UTC))
        assert rl.quota("q", 2).as_tuple() == (True, 1, 1)

    def test_leap_february(self, flavor: Flavor) -> None:
        """2028-02-29 is still February; March 1st resets; a February refund then gives 0."""
        clock = FakeClock()
        clock.set(datetime(2028, 2, 1, tzinfo=UTC))
        rl = limiter(flavor, clock=clock)
        february = rl.quota("q", 2, cost=2)
        assert us(february.reset_after) == 29 * 86400 * SECOND
        clock.set(datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC))
        assert rl.quota("q", 2).as_tuple() == (False, 2, 0)
        clock.set(datetime(2028, 3, 1, tzinfo=UTC))
        assert rl.quota("q", 2).as_tuple() == (True, 1, 1)
        assert rl.refund(february) == 0
        assert rl.quota("q", 2).as_tuple() == (True, 2, 0)


# --- 7. the host clock ----------------------------------------------------------------------


def shift_host_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make ``time.time`` run ``seconds`` off (as on a host whose clock is wrong)."""
    monkeypatch.setattr(time, "time", lambda real=time.time: real() + seconds)


class TestHostClock:
    """Decisions use Redis' clock (or the seam), never the application host's."""

    def test_shifted_host_clock_changes_nothing(
        self, flavor: Flavor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The same schedule under a host clock -600 s, 0 and +600 s off: equal decisions."""
        runs = {}
        for shift in (0, -600, 600):
            with monkeypatch.context() as patch:
                shift_host_clock(patch, shift)
                clock = FakeClock()
                rl = limiter(flavor, 10, clock=clock)
                key = f"k{shift}"
                seen = []
                for step in (0, 1, 1, 1, 5, 3, 0.5):
                    clock.advance(step)
                    seen.append(view(rl.check(key, 3)))
                    seen.append(view(rl.check(f"{key}:b", Limit(200, 64), cost=60)))
                seen.append(view(rl.quota(f"{key}:m", 5)))
                runs[shift] = seen
        assert runs[-600] == runs[0] == runs[600]
        assert runs[0][6][0] is False  # the schedule does hit the limit

    @real_redis_only
    def test_server_time_decides(
        self, flavor: Flavor, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Real server, no seam: after the host clock jumps 600 s either way, a 60 s window
        still holds its entry, and ``at`` is the server's time."""
        rl = limiter(flavor)
        first = rl.check("k", 1)
        assert first.allowed
        for shift in (600, -600):
            with monkeypatch.context() as patch:
                shift_host_clock(patch, shift)
                denied = rl.check("k", 1)
            seconds, micro = raw.time()
            assert (denied.allowed, denied.count) == (False, 1)
            assert denied.at is not None
            assert abs(denied.at - (seconds + micro / SECOND)) < 60, (denied.at, shift)
            assert 0 < denied.retry_after <= 60


# --- 8. scripts ---------------------------------------------------------------------------


class TestScripts:
    """The scripts are sent by SHA and reloaded when Redis lost them."""

    def test_decisions_survive_script_flush(self, flavor: Flavor, raw: redis.Redis) -> None:
        """After SCRIPT FLUSH the next check and refund still work (NOSCRIPT, then reload)."""
        rl = limiter(flavor)
        decision = rl.check("k", 5, cost=2)
        assert raw.script_exists(RATE_LOG.sha) == [True]
        raw.script_flush()
        assert raw.script_exists(RATE_LOG.sha, RATE_REFUND.sha) == [False, False]
        assert rl.check("k", 5).as_tuple() == (True, 3, 2)
        raw.script_flush()
        assert rl.refund(decision) == 2
        assert raw.script_exists(RATE_LOG.sha, RATE_REFUND.sha) == [False, True]
        assert raw.zcard("k") == 1

    @pytest.mark.parametrize("seed", range(4))
    def test_lean_log_script_answers_as_the_general_one(self, raw: redis.Redis, seed: int) -> None:
        """rate_log.lua (one exact log) replies and stores exactly what rate_limit.lua does.

        Both scripts get the same random requests (costs, clock steps across the window,
        limits changed between calls) on keys of their own; every reply, every stored entry
        and the keys' expiry (to the wall-clock moment between them) must agree.
        """
        rng = random.Random(seed)
        assert (raw.script_load(RATE_LIMIT.text), raw.script_load(RATE_LOG.text)) == (
            RATE_LIMIT.sha,
            RATE_LOG.sha,
        )
        now, verdicts = T0, set()
        for call in range(300):
            now += rng.choice((0, 1, 250_000, 900_000, 1_500_000, 4_000_000))
            limit = rng.choice((5, 8, 8, 8, 128))
            cost = rng.randint(1, 3)
            args = (cost, rng.getrandbits(40), now, 1, limit, 5 * SECOND)
            general = raw.evalsha(RATE_LIMIT.sha, 1, "general", *args)
            lean = raw.evalsha(RATE_LOG.sha, 1, "lean", *args)
            assert lean == general, (call, args)
            verdicts.add(lean.split()[0])
            assert raw.zrange("lean", 0, -1, withscores=True) == raw.zrange(
                "general", 0, -1, withscores=True
            )
            # Expiry runs on the wall clock: the keys were written a moment apart.
            assert abs(raw.pttl("lean") - raw.pttl("general")) < 100
        assert verdicts == {"0", "1"}  # the run saw admissions and denials


# --- 9. memory on a real server -------------------------------------------------------------


@real_redis_only
class TestMemory:
    """What a limit costs on a real redis-server."""

    def test_log_of_100_is_a_small_listpack(self, flavor: Flavor, raw: redis.Redis) -> None:
        """100 admitted at limit 100: a listpack under 2300 bytes."""
        rl = limiter(flavor)
        for _ in range(100):
            assert rl.check("rate:api:1:chat", 100).allowed
        assert raw.zcard("rate:api:1:chat") == 100
        encoding = raw.object("encoding", "rate:api:1:chat")
        size = raw.memory_usage("rate:api:1:chat", samples=0)
        assert encoding == "listpack", f"encoding {encoding}, {size} bytes"
        assert size is not None
        assert size < 2300, f"MEMORY USAGE of a 100-entry log: {size} bytes"

    def test_buckets_of_10000_stay_small(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Limit 10 000 with thousands of admissions over three windows: at most 65 fields."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        limit = Limit(10_000, 64)
        admitted = 0
        for _ in range(600):
            decision = rl.check("k", limit, cost=50)
            admitted += decision.cost if decision.allowed else 0
            clock.advance(0.32)
        fields = raw.hlen("k")
        encoding = raw.object("encoding", "k")
        size = raw.memory_usage("k", samples=0)
        info = f"{admitted} units admitted, {fields} fields, {encoding}, {size} bytes"
        assert admitted >= 25_000, info
        assert fields <= 65, info
        assert encoding == "listpack", info
        assert size is not None
        assert size < 2000, info


# --- 10. headers --------------------------------------------------------------------------


class TestHeaders:
    """rate_limit_headers: IETF RateLimit-Policy / RateLimit, legacy X-RateLimit-*."""

    def test_allowed(self, flavor: Flavor) -> None:
        """An admitted request: policy, remaining and reset; no Retry-After."""
        clock = FakeClock(T0 + 250_000)
        decision = limiter(flavor, 10, clock=clock).check("k", 3)
        assert rate_limit_headers(decision) == {
            "RateLimit-Policy": '"3/10s";q=3;w=10',
            "RateLimit": '"3/10s";r=2;t=10',
            "X-RateLimit-Limit": "3",
            "X-RateLimit-Remaining": "2",
            "X-RateLimit-Reset": str(T0 // SECOND + 11),
        }

    def test_denied(self, flavor: Flavor) -> None:
        """A denial: remaining 0, Retry-After rounded up, at least 1."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        rl.check("k", 1)
        clock.advance(7.2)
        headers = rate_limit_headers(rl.check("k", 1))
        assert headers["Retry-After"] == "3"
        assert headers["RateLimit"] == '"1/10s";r=0;t=3'
        assert headers["X-RateLimit-Remaining"] == "0"
        assert headers["X-RateLimit-Reset"] == str(T0 // SECOND + 10)
        clock.now = T0 + 10 * SECOND - 1
        last = rl.check("k", 1)
        assert us(last.retry_after) == 1
        assert rate_limit_headers(last)["Retry-After"] == "1"

    def test_denied_by_cost_with_room_left(self, flavor: Flavor) -> None:
        """The IETF header states the true room; the legacy one says 0 for a denial."""
        clock = FakeClock()
        rl = limiter(flavor, 10, clock=clock)
        rl.check("k", 5, cost=3)
        headers = rate_limit_headers(rl.check("k", 5, cost=3))
        assert headers["RateLimit"] == '"5/10s";r=2;t=10'
        assert headers["X-RateLimit-Remaining"] == "0"
        assert headers["Retry-After"] == "10"

    def test_several_limits_and_month(self, flavor: Flavor) -> None:
        """Every limit is in the policy; RateLimit names the binding one."""
        clock = FakeClock()
        rl = limiter(flavor, clock=clock)
        decision = rl.check("k", Limit(10, 1), Limit(100, 3600), Limit.monthly(5), cost=4)
        headers = rate_limit_headers(decision)
        assert headers["RateLimit-Policy"] == (
            f'"10/1s";q=10;w=1, "100/3600s";q=100;w=3600, "month";q=5;w={30 * 86400}'
        )
        assert headers["RateLimit"].startswith('"month";r=1;t=')
        assert headers["X-RateLimit-Limit"] == "5"

    def test_too_costly_has_no_retry_after(self, flavor: Flavor) -> None:
        """A request that can never fit gets no Retry-After (it would be infinite)."""
        headers = rate_limit_headers(limiter(flavor).check("k", 2, cost=3))
        assert "Retry-After" not in headers
        assert headers["X-RateLimit-Remaining"] == "0"

    def test_degraded_gets_none(self, flavor: Flavor) -> None:
        """Redis unavailable: nothing was counted, so no header claims anything."""
        for fail_closed in (False, True):
            rl = no_io_limiter(flavor, strict=False, fail_closed=fail_closed)
            decision = rl.check("k", 5)
            assert decision.degraded
            assert rate_limit_headers(decision) == {}


# --- degraded answers ---------------------------------------------------------------------


class TestDegraded:
    """On a Redis failure: allowed and marked (fail open), denied (fail closed), or raised."""

    def test_fail_open_closed_and_strict(self, flavor: Flavor) -> None:
        """Each degraded answer is counted in get_info(); strict raises instead."""
        open_ = no_io_limiter(flavor, strict=False)
        assert open_.is_allowed("k", 5) == (True, 0, 5)
        assert open_.get_info()["degraded_decisions"] == 1
        closed = no_io_limiter(flavor, strict=False, fail_closed=True)
        decision = closed.check("k", 5)
        assert (decision.allowed, decision.degraded, decision.remaining) == (False, True, 0)
        assert closed.get_info()["degraded_decisions"] == 1
        with pytest.raises(BackendUnavailable):
            no_io_limiter(flavor).check("k", 5)


# --- 11. input validation -----------------------------------------------------------------


BAD_LIMITS = [0, -1, 1.5, True, "10", None]
BAD_WINDOWS = [0, -1, 0.0005, math.nan, math.inf, "60", True, None]
BAD_COSTS = [0, -1, 1.5, True, "1", None]


class TestValidation:
    """Bad arguments raise InvalidInputError before any I/O (the limiter's port is dead)."""

    @pytest.mark.parametrize("bad", BAD_LIMITS, ids=repr)
    def test_bad_limit(self, flavor: Flavor, bad: Any) -> None:
        """A limit is a positive int, wherever it is given."""
        rl = no_io_limiter(flavor)
        with pytest.raises(InvalidInputError, match="limit"):
            rl.is_allowed("k", bad)
        with pytest.raises(InvalidInputError, match="limit"):
            rl.check("k", 5, bad)
        with pytest.raises(InvalidInputError, match="limit"):
            rl.quota("k", bad)
        with pytest.raises(InvalidInputError, match="limit"):
            Limit(bad)

    @pytest.mark.parametrize("bad", BAD_WINDOWS, ids=repr)
    def test_bad_window(self, flavor: Flavor, bad: Any) -> None:
        """A window is a number of seconds >= 0.001 or 'month'."""
        with pytest.raises(InvalidInputError, match="window"):
            Limit(5, bad)
        with pytest.raises(InvalidInputError, match="window"):
            limiter(flavor, bad)

    def test_bad_mode(self, flavor: Flavor) -> None:
        """mode is 'auto', 'log' or 'buckets'."""
        with pytest.raises(InvalidInputError, match="mode"):
            Limit(5, 60, "exact")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="mode"):
            limiter(flavor, mode="exact")

    @pytest.mark.parametrize("bad", BAD_COSTS, ids=repr)
    def test_bad_cost(self, flavor: Flavor, bad: Any) -> None:
        """A cost is a positive int."""
        rl = no_io_limiter(flavor)
        with pytest.raises(InvalidInputError, match="cost"):
            rl.check("k", 5, cost=bad)
        with pytest.raises(InvalidInputError, match="cost"):
            rl.quota("k", 5, cost=bad)

    @pytest.mark.parametrize("bad", ["", 5, None, b"k", "k" * 2000], ids=repr)
    def test_bad_key(self, flavor: Flavor, bad: Any) -> None:
        """A key is a non-empty str (or a key schema instance) within the size limit."""
        rl = no_io_limiter(flavor)
        with pytest.raises(InvalidInputError, match="key"):
            rl.is_allowed(bad, 5)
        with pytest.raises(InvalidInputError, match="key"):
            rl.check(bad, 5, cost=10)  # even a request too large for its limit

    def test_duplicate_or_missing_limits(self, flavor: Flavor) -> None:
        """The same limit twice (even in another mode) or no limit at all is rejected."""
        rl = no_io_limiter(flavor)
        for limits in ((5, 5), (Limit(5, 60), Limit(5, 60.0, "buckets")), (5, Limit(5))):
            with pytest.raises(InvalidInputError, match="twice"):
                rl.check("k", *limits)
        with pytest.raises(InvalidInputError, match="limit"):
            rl.check("k")

    def test_tags_name_windows_exactly(self) -> None:
        """Several limits on one key are stored under tags that never collide or round."""
        assert [Limit(5, w).tag for w in (60, 60.0, 0.5, 1e6, 86400 * 30)] == [
            "5/60s",
            "5/60s",
            "5/0.5s",
            "5/1000000s",
            "5/2592000s",
        ]
        assert Limit(5, 60.0000001).tag != Limit(5, 60.0000002).tag
        assert Limit(5, 1e20).tag == "5/1e+20s"
        assert Limit.monthly(5).tag == "month"

    def test_log_capacity(self) -> None:
        """A log holds at most 4096 units; auto and buckets have no such bound."""
        with pytest.raises(InvalidInputError, match="4096"):
            Limit(5000, mode="log")
        assert Limit(4096, mode="log").kind == 1
        assert Limit(5000).kind == Limit(5000, mode="buckets").kind == 2


# --- 12. the decorator --------------------------------------------------------------------


def limited(flavor: Flavor, *limits: Any, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@rate_limited`` of the flavour: the function itself (sync), or an async twin of it
    decorated and bridged (async). Both keep the function's name and signature."""
    options.setdefault("connection", flavor.connection)

    def apply(fn: Callable[..., Any]) -> Any:
        if flavor.name == "sync":
            return rate_limited(*limits, **options)(fn)

        @functools.wraps(fn)
        async def twin(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return fn(*args, **kwargs)

        return Bridge(rate_limited(*limits, **options)(twin), flavor.runner)

    return apply


class TestDecorator:
    """@rate_limited on sync and async functions and methods."""

    def test_function(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Calls within the limit run; a denied call raises and its body does not run."""
        calls: list[int] = []

        @limited(flavor, 2, window=60)
        def work(n: int) -> int:
            calls.append(n)
            return n * 2

        assert (work(1), work(2)) == (2, 4)
        with pytest.raises(RateLimitExceeded) as caught:
            work(3)
        assert calls == [1, 2]
        decision = caught.value.decision
        assert (decision.allowed, decision.count, decision.limit, decision.window) == (
            False,
            2,
            2,
            60,
        )
        assert caught.value.retry_after == decision.retry_after
        assert 0 < decision.retry_after <= 60
        assert "rate limit of 2 per 60 s exceeded" in str(caught.value)
        [key] = raw.keys("ratelimit:*")  # by default, one limit for the function
        assert "work" in key
        assert raw.zcard(key) == 2

    def test_method_keyed_by_schema(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key=RateLimitApiKey takes user_id and endpoint from the call (self left out)."""
        connection = flavor.connection
        sent: list[tuple[int, str]] = []

        class SyncApi:
            @rate_limited(1, key=RateLimitApiKey, connection=connection)
            def send(self, user_id: int, endpoint: str, body: str = "") -> str:
                sent.append((user_id, endpoint))
                return body

        class AsyncApi:
            @rate_limited(1, key=RateLimitApiKey, connection=connection)
            async def send(self, user_id: int, endpoint: str, body: str = "") -> str:
                sent.append((user_id, endpoint))
                return body

        send = SyncApi().send if flavor.name == "sync" else Bridge(AsyncApi().send, flavor.runner)
        assert send(1, "chat", body="hi") == "hi"
        assert send(2, endpoint="chat") == ""
        assert send(user_id=1, endpoint="upload") == ""
        with pytest.raises(RateLimitExceeded):
            send(1, "chat", "again")
        assert sent == [(1, "chat"), (2, "chat"), (1, "upload")]
        assert sorted(raw.keys("*")) == ["rate:api:1:chat", "rate:api:1:upload", "rate:api:2:chat"]

    def test_key_and_cost_functions(self, flavor: Flavor, raw: redis.Redis) -> None:
        """key= and cost= are functions of the arguments; a denied cost runs nothing."""
        calls: list[str] = []

        @limited(
            flavor,
            10,
            key=lambda user_id, prompt: f"rate:ai:{user_id}:tokens",
            cost=lambda user_id, prompt: len(prompt),
        )
        def ask(user_id: int, prompt: str) -> str:
            calls.append(prompt)
            return prompt.upper()

        assert ask(1, "abcdef") == "ABCDEF"
        with pytest.raises(RateLimitExceeded) as caught:
            ask(1, "abcde")
        assert (caught.value.decision.cost, caught.value.decision.count) == (5, 6)
        assert ask(1, "abcd") == "ABCD"
        assert ask(2, "x" * 10) == "X" * 10
        with pytest.raises(RateLimitExceeded) as too_long:
            ask(3, "x" * 11)
        assert too_long.value.retry_after == math.inf
        assert calls == ["abcdef", "abcd", "x" * 10]
        assert (raw.zcard("rate:ai:1:tokens"), raw.zcard("rate:ai:2:tokens")) == (10, 10)
        assert raw.exists("rate:ai:3:tokens") == 0

    def test_key_function_may_return_a_schema(self, flavor: Flavor, raw: redis.Redis) -> None:
        """A key function may return a key schema instance."""

        @limited(flavor, 1, key=lambda user_id: RateLimitUploadKey(user_id=user_id))
        def upload(user_id: int) -> None:
            pass

        upload(7)
        with pytest.raises(RateLimitExceeded):
            upload(7)
        assert raw.keys("*") == ["rate:upload:7"]

    def test_several_limits(self, flavor: Flavor, raw: redis.Redis) -> None:
        """More limits are checked with the first, atomically; the binding one is reported."""
        calls: list[None] = []

        @limited(flavor, Limit(2, 600), Limit(3, 3600), key="rate:multi")
        def ping() -> None:
            calls.append(None)

        ping()
        ping()
        with pytest.raises(RateLimitExceeded) as caught:
            ping()
        assert (caught.value.decision.limit, caught.value.decision.window) == (2, 600)
        assert len(calls) == 2
        assert (raw.zcard("rate:multi:2/600s"), raw.zcard("rate:multi:3/3600s")) == (2, 2)

    def test_bad_cost_from_function(self, flavor: Flavor) -> None:
        """A cost function returning a non-positive int is rejected; the body does not run."""
        calls: list[int] = []

        @limited(flavor, 5, cost=lambda n: n)
        def work(n: int) -> None:
            calls.append(n)

        with pytest.raises(InvalidInputError, match="cost"):
            work(0)
        assert calls == []

    def test_metadata_kept(self) -> None:
        """functools.wraps: name, doc, module, qualname, __wrapped__, signature, and an async
        function stays a coroutine function."""

        def plain(user_id: int, endpoint: str = "chat") -> str:
            """Plain doc."""
            return endpoint

        async def coro(user_id: int) -> int:
            """Async doc."""
            return user_id

        for fn in (plain, coro):
            wrapped = rate_limited(5)(fn)  # binds no connection until called
            assert wrapped is not fn
            assert inspect.unwrap(wrapped) is fn
            for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
                assert getattr(wrapped, attribute) == getattr(fn, attribute)
            assert inspect.signature(wrapped) == inspect.signature(fn)
            assert inspect.iscoroutinefunction(wrapped) is inspect.iscoroutinefunction(fn)

    def test_configuration_errors_at_decoration(self) -> None:
        """A schema field the function lacks, a bad limit or a bad key: ConfigurationError."""

        def by_user(user_id: int) -> None:
            pass

        with pytest.raises(ConfigurationError, match="endpoint"):
            rate_limited(5, key=RateLimitApiKey)(by_user)
        with pytest.raises(ConfigurationError, match="limit"):
            rate_limited(0)
        with pytest.raises(ConfigurationError, match="window"):
            rate_limited(5, window=0)
        with pytest.raises(ConfigurationError, match="key"):
            rate_limited(5, key=42)(by_user)  # type: ignore[arg-type]


# --- 13. the global limiters ----------------------------------------------------------------


@pytest.fixture
def no_global_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No REDIS_* variable leaks in; no global connection before or after the test."""
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_rate_limiter.is_allowed("k", 1)
    yield
    close_redis_sync()
    with pytest.raises(NotInitializedError):
        arketic_cache.sync_rate_limiter.is_allowed("k", 1)


@pytest.mark.usefixtures("no_global_connection")
class TestGlobalLimiters:
    """``rate_limiter`` / ``sync_rate_limiter`` and a connection-less @rate_limited."""

    def test_sync_rate_limiter(self) -> None:
        """After init_redis_sync the blocking global limiter and decorator work."""
        try:
            init_redis_sync(f"memory://test-{uuid.uuid4().hex}")
            limiter = arketic_cache.sync_rate_limiter
            assert [limiter.is_allowed("g", 2) for _ in range(3)] == [
                (True, 1, 1),
                (True, 2, 0),
                (False, 2, 0),
            ]
            assert limiter.window_size == 60
            assert limiter.get_info()["degraded_decisions"] == 0

            @rate_limited(1, key="g:decorated")
            def once() -> str:
                return "ran"

            assert once() == "ran"
            with pytest.raises(RateLimitExceeded):
                once()
        finally:
            close_redis_sync()

    def test_async_rate_limiter(self) -> None:
        """After await init_redis the async global limiter and decorator work."""

        @rate_limited(1, key="g:decorated")
        async def once() -> str:
            return "ran"

        async def main() -> None:
            await init_redis(f"memory://test-{uuid.uuid4().hex}")
            try:
                limiter = arketic_cache.rate_limiter
                assert await limiter.is_allowed("g", 1) == (True, 1, 0)
                assert await limiter.is_allowed("g", 1) == (False, 1, 0)
                decision = await limiter.quota("g:month", 5, cost=2)
                assert (decision.allowed, decision.count, decision.degraded) == (True, 2, False)
                assert await once() == "ran"
                with pytest.raises(RateLimitExceeded):
                    await once()
            finally:
                await close_redis()

        asyncio.run(main())
