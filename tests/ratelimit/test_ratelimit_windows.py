"""Rate-limit windows: fixed buckets, calendar months, a host clock that jumps, the scripts
themselves and the memory a key costs.

Every behaviour test runs on fakeredis and a real server, sync and async (``flavor``), on the
limiter's ``clock=`` seam, so nothing sleeps.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest
import redis

from arketic_cache import Limit
from arketic_cache._lua import RATE_LIMIT, RATE_LOG, RATE_REFUND

from ..helpers import Flavor
from .helpers import (
    SECOND,
    T0,
    FakeClock,
    limiter,
    max_in_any_window,
    micros,
    real_redis_only,
    several,
    us,
    view,
)

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
        bucket = str(T0 // SECOND)
        # The bucket, and beside it the running total, oldest and newest bucket, the window.
        assert raw.hgetall("k") == {
            bucket: "2",
            "t": "2",
            "o": bucket,
            "l": bucket,
            "w": "64000000",
        }
        assert 64_000 < raw.pttl("k") <= 65_000
        clock.now = T0 + 10 * SECOND
        denied = rl.check("k", limit)
        assert (denied.allowed, us(denied.retry_after)) == (False, 55 * SECOND)
        clock.now = T0 + 65 * SECOND - 1
        assert not rl.check("k", limit).allowed
        clock.now = T0 + 65 * SECOND
        assert rl.check("k", limit).as_tuple() == (True, 1, 1)

    @pytest.mark.parametrize("alone", [True, False], ids=["alone", "with-another-limit"])
    def test_expiry_is_set_when_a_bucket_starts(
        self, flavor: Flavor, raw: redis.Redis, alone: bool
    ) -> None:
        """The key's TTL (window + one bucket) is set by a bucket's first admission, which is
        enough for every later one in that bucket; a new bucket sets it again."""
        clock = FakeClock(T0)
        rl = limiter(flavor, clock=clock)
        limit = Limit(1000, 64, "buckets")  # 1 s buckets
        limits = (limit,) if alone else (limit, Limit(10**6, 3600, "buckets"))
        key = "k" if alone else several(raw, "k", limit.tag)
        assert rl.check("k", *limits).allowed
        assert 64_000 < raw.pttl(key) <= 65_000
        raw.pexpire(key, 50_000)  # as if time had passed on the server
        clock.advance(0.5)  # the same bucket
        assert rl.check("k", *limits).allowed
        assert raw.pttl(key) <= 50_000  # not touched
        clock.advance(0.5)  # the next bucket
        assert rl.check("k", *limits).allowed
        assert 64_000 < raw.pttl(key) <= 65_000

    def test_hash_stays_within_65_fields(self, flavor: Flavor, raw: redis.Redis) -> None:
        """Admissions in every bucket for two windows: the hash never exceeds 65 buckets
        (and its four bookkeeping fields)."""
        clock = FakeClock(T0 + 777)
        rl = limiter(flavor, clock=clock)
        limit = Limit(10_000, 6.4, "buckets")
        sizes = []
        for _ in range(2 * 64 * 3):
            assert rl.check("k", limit, cost=3).allowed
            sizes.append(raw.hlen("k"))
            clock.advance(micro=limit.window_us // (64 * 3) + 1)
        assert 64 <= max(sizes) - 4 <= 65, f"fields per step ranged {min(sizes)}..{max(sizes)}"

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
        """Limit 10 000 with thousands of admissions over three windows: at most 65 buckets
        (and four bookkeeping fields)."""
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
        assert fields <= 65 + 4, info
        assert encoding == "listpack", info
        assert size is not None
        assert size < 2000, info
