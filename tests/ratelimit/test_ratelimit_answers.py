"""What the limiter tells its caller: the rate-limit headers, the spec's answer when Redis
fails, and input it refuses before any I/O.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from arketic_cache import (
    BackendUnavailable,
    ConfigurationError,
    InvalidInputError,
    Limit,
    rate_limit_headers,
)

from ..helpers import Flavor
from .helpers import SECOND, T0, FakeClock, limiter, no_io_limiter, us


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
        with pytest.raises(ConfigurationError, match="window"):
            limiter(flavor, bad)

    def test_bad_mode(self, flavor: Flavor) -> None:
        """mode is 'auto', 'log' or 'buckets'."""
        with pytest.raises(InvalidInputError, match="mode"):
            Limit(5, 60, "exact")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="mode"):
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
