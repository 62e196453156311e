"""The rate-limit flows stepped by hand with canned script replies (no Redis, no driver): the
script and arguments a plan sends, the decision each reply reads as, and refunds."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from arketic_cache import InvalidInputError
from arketic_cache._core import _ratelimit as flows
from arketic_cache._core._effects import Eval
from arketic_cache._core._ratelimit import Limit, LimitState, Plan
from arketic_cache._lua import RATE_LIMIT, RATE_LOG, RATE_REFUND

from ..helpers import step

AT_US = 1_773_144_000_000_000  # 2026-03-10 12:00 UTC
ONE = Plan.of((Limit(10, 60),))
TWO = Plan.of((Limit(5, 1), Limit(1000, 3600)))


class TestPlan:
    """What a plan sends, worked out once."""

    def test_one_small_limit_is_an_exact_log(self) -> None:
        """One limit of at most LOG_MAX is a log on rate_log.lua."""
        assert ONE.script is RATE_LOG
        assert ONE.tail == (1, 10, 60_000_000)
        assert ONE.suffixes == ("",)

    def test_several_limits_share_rate_limit(self) -> None:
        """Several limits go to rate_limit.lua, kinds and sizes first, then the windows."""
        plan = Plan.of((Limit(5, 1), Limit(1000, 3600), Limit.monthly(9)))
        assert plan.script is RATE_LIMIT
        assert plan.tail == (1, 5, 2, 1000, 3, 9, 1_000_000, 3_600_000_000, 0)
        assert plan.suffixes == (":5/1s", ":1000/3600s", ":month")
        assert plan.tightest == Limit(5, 1)

    @pytest.mark.parametrize("limits", [(), (Limit(5, 1), Limit(5, 1))], ids=["none", "twice"])
    def test_refused(self, limits: tuple[Limit, ...]) -> None:
        """No limit, or one limit twice, is refused."""
        with pytest.raises(InvalidInputError):
            Plan.of(limits)


class TestDecide:
    """decide: one script call; its reply becomes the decision of the binding limit."""

    def test_allowed(self) -> None:
        """An admitted request reads count, remaining and reset from the reply."""
        flow = flows.decide(("rate:k",), ONE, 1, 7)
        effects, decision = step(flow, [f"1 {AT_US} 1 3 7 0 60000000"])
        assert effects == [Eval(RATE_LOG, ("rate:k",), (1, 7, "", 1, 10, 60_000_000))]
        assert decision.as_tuple() == (True, 3, 7)
        assert (decision.retry_after, decision.reset_after) == (0.0, 60.0)
        assert (decision.limit, decision.window, decision.at) == (10, 60, AT_US / 1_000_000)
        assert (decision.keys, decision.request_id, decision.at_us) == (("rate:k",), 7, AT_US)
        assert not decision.degraded

    def test_denied_by_the_second_limit(self) -> None:
        """The binding index (1-based in the reply) picks which limit answers."""
        flow = flows.decide(("rate:k:a", "rate:k:b"), TWO, 2, 8, now_us=AT_US)
        reply = f"0 {AT_US} 2 2 3 0 1000000 1000 0 1500000 3600000000"
        effects, decision = step(flow, [reply])
        assert effects == [Eval(RATE_LIMIT, ("rate:k:a", "rate:k:b"), (2, 8, AT_US, *TWO.tail))]
        assert decision.as_tuple() == (False, 1000, 0)
        assert (decision.limit, decision.window, decision.binding) == (1000, 3600, 1)
        assert decision.retry_after == 1.5
        assert decision.states == (
            LimitState(Limit(5, 1), 2, 3, 0.0, 1.0),
            LimitState(Limit(1000, 3600), 1000, 0, 1.5, 3600.0),
        )
        assert decision.cost == 2

    @pytest.mark.parametrize(
        "reply",
        [None, "", f"1 {AT_US}", f"1 {AT_US} 1 3 7", f"1 {AT_US} x 3 7 0 0", 17],
        ids=["none", "empty", "no-states", "short-state", "not-a-number", "int"],
    )
    def test_unexpected_reply_never_becomes_a_decision(self, reply: Any) -> None:
        """A reply of another shape raises rather than admitting or denying on made-up counts."""
        flow = flows.decide(("rate:k",), ONE, 1, 7)
        next(flow)
        with pytest.raises((AttributeError, IndexError, ValueError)):
            flow.send(reply)


class TestWithoutRedis:
    """The answers given without a script call."""

    @pytest.mark.parametrize("allowed", [True, False])
    def test_degraded(self, allowed: bool) -> None:
        """Fail open (or closed) on the tightest limit, with nothing counted."""
        decision = flows.degraded(TWO, 3, allowed)
        assert decision.degraded
        assert decision.as_tuple() == (allowed, 0, 5 if allowed else 0)
        assert decision.limit == 5
        assert decision.states == ()

    def test_too_costly(self) -> None:
        """A request larger than a limit is denied for ever."""
        decision = flows.too_costly(TWO, 6)
        assert decision.as_tuple() == (False, 0, 0)
        assert decision.retry_after == math.inf
        assert not decision.degraded


class TestRefund:
    """refund: one script call naming the request, its windows and its month."""

    def test_sends_the_request_and_returns_the_least_refunded(self) -> None:
        """Each limit's kind and window go along; the answer is the least given back."""
        _, decision = step(
            flows.decide(("a", "b"), TWO, 4, 9),
            [f"1 {AT_US} 1 4 1 0 1000000 4 996 0 3600000000"],
        )
        effects, refunded = step(flows.refund(decision, 3, 4), [[3, 2]])
        month = flows.month_number(AT_US)
        args = (3, 4, 9, AT_US, "", 1, 1_000_000, 2, 3_600_000_000, month)
        assert effects == [Eval(RATE_REFUND, ("a", "b"), args)]
        assert refunded == 2

    def test_month_number(self) -> None:
        """Months count from year 0, as the scripts number them (UTC)."""
        assert flows.month_number(AT_US) == 2026 * 12 + 2
        end_of_january = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC).timestamp()
        assert flows.month_number(round(end_of_january * 1_000_000)) == 2026 * 12
