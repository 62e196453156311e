"""The spec's ``RedisRateLimiter`` (async) and its blocking twin ``SyncRedisRateLimiter``.

``is_allowed(key, limit)`` is the spec's call; ``check`` returns the whole ``Decision`` and
takes several limits and a cost; ``quota`` counts per calendar month; ``refund`` gives units
back. Each decision is one script call on Redis' clock (``_core/_ratelimit.py``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from . import _connection
from ._core._effects import Flow
from ._core._ratelimit import (
    Decision,
    Limit,
    Mode,
    Plan,
    RateStats,
    decide,
    degraded,
    refund,
    too_costly,
)
from ._core._validate import check_key
from ._counters import track
from ._exceptions import ConfigurationError, InvalidInputError
from ._keys import KeySchema, RateLimitKey
from ._shell import AsyncShell, Shell, SyncShell, check_clock, check_flag, misplaced_str

__all__ = ["RedisRateLimiter", "SyncRedisRateLimiter"]

logger = logging.getLogger("arketic_cache")

#: A rate-limit key: a string, or a ``RateLimitKey`` schema instance (e.g. ``RateLimitApiKey``).
RateKey = str | RateLimitKey


class _LimiterBase(Shell):
    """Argument handling shared by both twins."""

    __slots__ = (
        "_clock",
        "_mode",
        "_plans",
        "_rate_stats",
        "_refunded",
        "fail_closed",
        "window_size",
    )

    def __init__(
        self,
        window_size: float = 60,
        *,
        connection: _connection.RedisConnection | None = None,
        key_prefix: str | None = None,
        fail_closed: bool = False,
        mode: Mode = "auto",
        strict: bool = False,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """Limit per trailing ``window_size`` seconds (the spec's default is 60).

        On a Redis failure requests are allowed and marked ``degraded`` (the spec's graceful
        degradation); ``fail_closed=True`` denies them instead (for login or brute-force
        limits), and ``strict=True`` raises ``BackendError``. ``mode`` is the storage of
        windowed limits (see ``Limit``). ``clock`` replaces Redis' clock with one returning
        microseconds: a seam for tests, never for production.

        Raises:
            ConfigurationError: a bad window, mode, connection or flag.
        """
        super().__init__(connection, key_prefix=key_prefix, strict=strict)
        owner = type(self).__name__
        if isinstance(window_size, str):
            raise misplaced_str(owner, "window_size", "a number of seconds", window_size)
        try:
            Limit(1, window_size, mode)  # validates both
        except InvalidInputError as exc:
            raise ConfigurationError(f"{owner}(window_size=..., mode=...): {exc}") from None
        check_clock(owner, clock)
        self.window_size = window_size
        self.fail_closed = check_flag(owner, "fail_closed", fail_closed)
        self._mode = mode
        self._clock = clock
        self._plans: dict[tuple[int | Limit, ...], Plan] = {}
        # Units already given back, per request id: a second refund of the same decision must
        # not take back other requests' units from a shared counter (buckets, month).
        self._refunded: dict[int, int] = {}
        self._rate_stats = RateStats()
        track(self, "ratelimit", self._metric_name(), self._rate_stats)

    def _track(self) -> None:
        """Its decisions are tracked (``_rate_stats``), not lookups."""

    @property
    def degraded_decisions(self) -> int:
        """Decisions answered without Redis (an outage, or a key holding another type)."""
        stats = self._rate_stats
        return stats.degraded + stats.misconfigured

    def limit(self, limit: int | Limit) -> Limit:
        """``limit`` as a ``Limit`` (an int means per ``window_size``)."""
        if isinstance(limit, Limit):
            return limit
        return Limit(limit, self.window_size, self._mode)

    def _key(self, key: RateKey) -> str:
        if isinstance(key, RateLimitKey):
            text: str = key.render()
        elif isinstance(key, KeySchema):
            raise InvalidInputError(
                f"{type(key).__name__} is a {type(key).redis_type.value} key of another service: "
                "rate limits take a RateLimitKey schema (e.g. RateLimitApiKey) or a str"
            )
        else:
            text = key
        conn = self.connection  # binds first: the prefix comes from its settings
        return self._prefix + check_key(text, conn.settings.max_key_bytes)

    def _deciding(
        self, key: RateKey, limits: tuple[int | Limit, ...], cost: int
    ) -> Decision | tuple[Flow[Decision], Plan]:
        """The decision if it needs no Redis (too costly), else the flow that makes it."""
        keys, plan, early = self._plan(key, limits, cost)
        if early is not None:
            self._rate_stats.denied += 1
            return early
        return decide(keys, plan, cost, secrets.randbits(40), self._now()), plan

    def _plan(
        self, key: RateKey, limits: tuple[int | Limit, ...], cost: int
    ) -> tuple[tuple[str, ...], Plan, Decision | None]:
        plan = self._plans.get(limits)
        if plan is None:
            plan = Plan.of(tuple(self.limit(limit) for limit in limits))
            if len(self._plans) >= 256:
                self._plans.clear()
            self._plans[limits] = plan
        if type(cost) is not int or cost < 1:
            raise InvalidInputError(f"a cost is a positive int, not {cost!r}")
        base = self._key(key)
        if len(plan.suffixes) > 1 and self.connection.cluster:
            base = f"{{{base}}}"  # one hash tag: a script's keys stay in one cluster slot
        keys = tuple(base + suffix for suffix in plan.suffixes)
        if cost > plan.tightest.limit:
            return keys, plan, too_costly(plan, cost)
        return keys, plan, None

    def _decided(self, decision: Decision | None, plan: Plan, cost: int) -> Decision:
        """Count Redis' decision; None (Redis failed) becomes the degraded one."""
        stats = self._rate_stats
        if decision is None:
            if self._bind().state.last_kind == "wrong_type":
                stats.misconfigured += 1
            else:
                stats.degraded += 1
            return degraded(plan, cost, allowed=not self.fail_closed)
        if decision.allowed:
            stats.allowed += 1
        else:
            stats.denied += 1
        return decision

    def _now(self) -> int | None:
        return None if self._clock is None else self._clock()

    def _amount(self, decision: Decision, amount: int | None) -> tuple[int, int]:
        """The units this refund may still give back (0: already refunded by this limiter),
        and how many of the request's units remain before it (the last ones go first)."""
        if not decision.allowed or decision.degraded or not decision.keys:
            raise InvalidInputError("only an admitted, recorded decision can be refunded")
        amount = decision.cost if amount is None else amount
        if type(amount) is not int or not 1 <= amount <= decision.cost:
            raise InvalidInputError(f"a refund is an int from 1 to the cost ({decision.cost})")
        done = self._refunded.get(decision.request_id, 0)
        amount = min(amount, decision.cost - done)
        if amount:
            if len(self._refunded) >= 10_000:
                self._refunded.clear()
            self._refunded[decision.request_id] = done + amount
        return amount, decision.cost - done

    def get_info(self) -> dict[str, Any]:
        """Counters: decisions answered without Redis, and the connection's failure counters."""
        return self._report(degraded_decisions=self.degraded_decisions)


class SyncRedisRateLimiter(_LimiterBase, SyncShell):
    """Blocking twin of ``RedisRateLimiter``: the same methods, without ``await``."""

    __slots__ = ()

    def is_allowed(self, key: RateKey, limit: int) -> tuple[bool, int, int]:
        """The spec's call: ``(is_allowed, current_count, remaining)`` per ``window_size``."""
        return self.check(key, limit).as_tuple()

    def check(self, key: RateKey, *limits: int | Limit, cost: int = 1) -> Decision:
        """Admit a request of ``cost`` units if it fits every limit (then count it in all)."""
        step = self._deciding(key, limits, cost)
        if isinstance(step, Decision):
            return step
        flow, plan = step
        return self._decided(self._run(flow, None), plan, cost)

    def quota(self, key: RateKey, limit: int, *, cost: int = 1) -> Decision:
        """A calendar-month quota (UTC): ``reset_after`` runs to 00:00 on the 1st."""
        return self.check(key, Limit.monthly(limit), cost=cost)

    def refund(self, decision: Decision, amount: int | None = None) -> int:
        """Give back ``amount`` (default: all) of an admitted request's units; how many were."""
        amount, top = self._amount(decision, amount)
        return self._run(refund(decision, amount, top, self._now()), 0) if amount else 0


class RedisRateLimiter(_LimiterBase, AsyncShell):
    """The spec's sliding-window rate limiter: exact, atomic, on Redis' clock, failing open."""

    __slots__ = ()

    async def is_allowed(self, key: RateKey, limit: int) -> tuple[bool, int, int]:
        """The spec's call: ``(is_allowed, current_count, remaining)`` per ``window_size``."""
        return (await self.check(key, limit)).as_tuple()

    async def check(self, key: RateKey, *limits: int | Limit, cost: int = 1) -> Decision:
        """Admit a request of ``cost`` units if it fits every limit (then count it in all)."""
        step = self._deciding(key, limits, cost)
        if isinstance(step, Decision):
            return step
        flow, plan = step
        return self._decided(await self._run(flow, None), plan, cost)

    async def quota(self, key: RateKey, limit: int, *, cost: int = 1) -> Decision:
        """A calendar-month quota (UTC): ``reset_after`` runs to 00:00 on the 1st."""
        return await self.check(key, Limit.monthly(limit), cost=cost)

    async def refund(self, decision: Decision, amount: int | None = None) -> int:
        """Give back ``amount`` (default: all) of an admitted request's units; how many were."""
        amount, top = self._amount(decision, amount)
        return await self._run(refund(decision, amount, top, self._now()), 0) if amount else 0
