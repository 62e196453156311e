"""Rate limiting, pure: limits, decisions, and the flows that run the rate-limit scripts.

A decision is one EVALSHA of ``rate_limit.lua`` (or of ``rate_log.lua``, its lean twin for the
common single exact log): it drops expired entries, checks every limit, records the request in
all of them or none, and returns count, remaining, retry-after and reset for each, timed by
Redis' own clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from .._exceptions import InvalidInputError
from .._lua import RATE_BUCKET, RATE_LIMIT, RATE_LOG, RATE_REFUND, LuaScript
from ._effects import Arg, Eval, Flow

__all__ = [
    "LOG_MAX",
    "Decision",
    "Limit",
    "LimitState",
    "Mode",
    "Plan",
    "RateStats",
    "Window",
    "decide",
    "degraded",
    "rate_limit_headers",
    "refund",
    "too_costly",
]

#: Largest limit kept as an exact log by default: above 128 entries Redis stores a sorted set
#: in its large encoding (about 118 B per entry instead of 21).
LOG_MAX = 128
#: Largest limit a log can hold at all (members are ``id * 4096 + unit``).
LOG_HARD_MAX = 4096

Mode: TypeAlias = Literal["auto", "log", "buckets"]
Window: TypeAlias = float | Literal["month"]

_LOG, _BUCKETS, _MONTH = 1, 2, 3


@dataclass(slots=True)
class RateStats:
    """A limiter's decisions by outcome (each decision counted once)."""

    allowed: int = 0
    denied: int = 0
    degraded: int = 0  # answered without Redis (allowed, or denied when failing closed)
    misconfigured: int = 0  # answered without Redis because a key holds another type


def _seconds(window: float) -> str:
    """A window as the shortest text that names it exactly: ``60``, ``0.5``, ``1000000``."""
    if float(window).is_integer() and abs(window) < 1e15:
        return str(int(window))
    return repr(float(window))


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``limit`` units in any trailing ``window`` seconds, or per calendar month (UTC).

    ``mode`` picks the storage of a windowed limit: ``"log"`` is exact (a sorted set with one
    entry per admitted unit, about 21 B each while ``limit`` <= 128); ``"buckets"`` keeps 64
    sub-window counters (bounded memory whatever the limit; it counts the partly expired
    oldest sub-window in full, so it can admit up to 1/64 of a window late, never too many).
    ``"auto"`` uses a log up to ``LOG_MAX`` and buckets above.

    Raises:
        InvalidInputError: a non-positive or non-integer limit, a bad window or mode.
    """

    limit: int
    window: Window = 60.0
    mode: Mode = "auto"

    def __post_init__(self) -> None:
        if type(self.limit) is not int or self.limit < 1:
            raise InvalidInputError(f"a limit is a positive int, not {self.limit!r}")
        if self.window != "month":
            window = self.window
            if (
                isinstance(window, bool)
                or not isinstance(window, int | float)
                or not math.isfinite(window)
                or window < 0.001
            ):
                raise InvalidInputError(
                    f"a window is a number of seconds >= 0.001 or 'month', not {window!r}"
                )
        if self.mode not in ("auto", "log", "buckets"):
            raise InvalidInputError(f"mode is 'auto', 'log' or 'buckets', not {self.mode!r}")
        if self.mode == "log" and self.limit > LOG_HARD_MAX:
            raise InvalidInputError(f"a log holds at most {LOG_HARD_MAX} units; use buckets")

    @classmethod
    def monthly(cls, limit: int) -> Limit:
        """A calendar-month quota (UTC): it resets at 00:00 on the 1st."""
        return cls(limit, "month")

    @property
    def kind(self) -> int:
        """How the scripts store it: 1 log, 2 buckets, 3 calendar month."""
        if self.window == "month":
            return _MONTH
        if self.mode == "log" or (self.mode == "auto" and self.limit <= LOG_MAX):
            return _LOG
        return _BUCKETS

    @property
    def window_us(self) -> int:
        """The window in microseconds (0 for a calendar month)."""
        return 0 if self.window == "month" else round(self.window * 1_000_000)

    @property
    def tag(self) -> str:
        """What names this limit among several on one key, e.g. ``100/60s`` or ``month``."""
        return "month" if self.window == "month" else f"{self.limit}/{_seconds(self.window)}s"

    @property
    def policy_seconds(self) -> int:
        """The window in whole seconds, as rate-limit headers state it (a month as 30 days)."""
        return 30 * 86400 if self.window == "month" else max(1, math.ceil(self.window))


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit's part of a decision."""

    limit: Limit
    count: int
    remaining: int
    retry_after: float
    reset_after: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one rate-limit check, from the same atomic call that made it.

    ``count`` includes this request when it was allowed. ``retry_after`` (seconds) is 0 when
    allowed; when denied it is how long until this request would fit. ``reset_after`` is how
    long until everything counted now has left the window. ``limit``, ``window``, ``count``
    and ``remaining`` are the binding limit's: the one that denied (the longest wait), else
    the one with the least room left (``states[binding]``). ``degraded`` marks an answer
    given without Redis. ``at`` is Redis' time of the decision (epoch seconds).
    """

    allowed: bool
    count: int
    remaining: int
    retry_after: float
    reset_after: float
    limit: int
    window: Window
    degraded: bool = False
    at: float | None = None
    states: tuple[LimitState, ...] = ()
    binding: int = 0
    cost: int = 1
    keys: tuple[str, ...] = field(default=(), repr=False)
    request_id: int = field(default=0, repr=False)
    at_us: int = field(default=0, repr=False)

    def as_tuple(self) -> tuple[bool, int, int]:
        """The spec's ``(is_allowed, current_count, remaining)``; remaining is 0 when denied."""
        return self.allowed, self.count, self.remaining if self.allowed else 0


@dataclass(frozen=True, slots=True)
class Plan:
    """What a set of limits sends to the script, worked out once and reused for every call."""

    limits: tuple[Limit, ...]
    suffixes: tuple[str, ...]  # appended to the key: "" for one limit, ":<tag>" for several
    tail: tuple[Arg, ...]  # each limit's kind and size, then each window
    tightest: Limit  # the smallest: what answers without Redis name
    script: LuaScript  # rate_log.lua for one exact log, else rate_limit.lua

    @classmethod
    def of(cls, limits: tuple[Limit, ...]) -> Plan:
        """The plan for ``limits`` (one key each).

        Raises:
            InvalidInputError: no limit, or the same limit twice.
        """
        if not limits:
            raise InvalidInputError("check needs at least one limit")
        tags = tuple(limit.tag for limit in limits)
        if len(set(tags)) < len(tags):
            raise InvalidInputError("the same limit is given twice")
        suffixes = ("",) if len(limits) == 1 else tuple(f":{tag}" for tag in tags)
        tail: list[Arg] = []
        for limit in limits:
            tail += [limit.kind, limit.limit]
        tail += [limit.window_us for limit in limits]
        tightest = min(limits, key=lambda limit: limit.limit)
        script = RATE_LIMIT
        if len(limits) == 1:  # the common cases have lean scripts of their own
            script = {_LOG: RATE_LOG, _BUCKETS: RATE_BUCKET}.get(limits[0].kind, RATE_LIMIT)
        return cls(limits, suffixes, tuple(tail), tightest, script)


def decide(
    keys: tuple[str, ...],
    plan: Plan,
    cost: int,
    request_id: int,
    now_us: int | None = None,
) -> Flow[Decision]:
    """Check and record one request against the plan's limits (one key each), in one trip."""
    limits = plan.limits
    args = (cost, request_id, "" if now_us is None else now_us, *plan.tail)
    reply = (yield Eval(plan.script, keys, args)).split()
    allowed, at_us, binding = reply[0] == "1", int(reply[1]), int(reply[2]) - 1
    states = tuple(
        LimitState(
            limit,
            int(reply[3 + 4 * i]),
            int(reply[4 + 4 * i]),
            int(reply[5 + 4 * i]) / 1_000_000,
            int(reply[6 + 4 * i]) / 1_000_000,
        )
        for i, limit in enumerate(limits)
    )
    main = states[binding]
    return Decision(
        allowed,
        main.count,
        main.remaining,
        main.retry_after,
        main.reset_after,
        main.limit.limit,
        main.limit.window,
        at=at_us / 1_000_000,
        states=states,
        binding=binding,
        cost=cost,
        keys=keys,
        request_id=request_id,
        at_us=at_us,
    )


def degraded(plan: Plan, cost: int, allowed: bool) -> Decision:
    """The answer when Redis cannot decide: allowed (fail open) or denied, nothing counted."""
    limit = plan.tightest
    return Decision(
        allowed,
        0,
        limit.limit if allowed else 0,
        0.0 if allowed else 1.0,
        0.0,
        limit.limit,
        limit.window,
        degraded=True,
        cost=cost,
    )


def too_costly(plan: Plan, cost: int) -> Decision:
    """A request larger than a limit can never fit: denied at once, with no I/O."""
    limit = plan.tightest
    return Decision(False, 0, 0, math.inf, 0.0, limit.limit, limit.window, cost=cost)


def month_number(at_us: int) -> int:
    """``year * 12 + month - 1`` of a server timestamp (UTC), as the scripts number months."""
    moment = datetime.fromtimestamp(at_us / 1_000_000, UTC)
    return moment.year * 12 + moment.month - 1


def refund(decision: Decision, amount: int, top: int, now_us: int | None = None) -> Flow[int]:
    """Give back ``amount`` units of an admitted request; how many were (the least per limit)."""
    now: Arg = "" if now_us is None else now_us
    args: list[Arg] = [amount, top, decision.request_id, decision.at_us, now]
    for state in decision.states:
        args += [state.limit.kind, state.limit.window_us]
    args.append(month_number(decision.at_us))
    reply = yield Eval(RATE_REFUND, decision.keys, tuple(args))
    return min(int(units) for units in reply)


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """HTTP headers for a decision: IETF ``RateLimit-Policy``/``RateLimit``, the legacy
    ``X-RateLimit-Limit/-Remaining/-Reset`` (epoch seconds, by Redis' clock) and, when denied,
    ``Retry-After``. A degraded decision (Redis unavailable) gets none: nothing was counted.
    """
    if decision.degraded:
        return {}
    headers: dict[str, str] = {}
    states = decision.states
    if states:
        headers["RateLimit-Policy"] = ", ".join(
            f'"{state.limit.tag}";q={state.limit.limit};w={state.limit.policy_seconds}'
            for state in states
        )
        binding = states[decision.binding]
        wait = decision.reset_after if decision.allowed else decision.retry_after
        headers["RateLimit"] = f'"{binding.limit.tag}";r={decision.remaining};t={math.ceil(wait)}'
    headers["X-RateLimit-Limit"] = str(decision.limit)
    headers["X-RateLimit-Remaining"] = str(decision.remaining if decision.allowed else 0)
    if decision.at is not None:
        headers["X-RateLimit-Reset"] = str(math.ceil(decision.at + decision.reset_after))
    if not decision.allowed and math.isfinite(decision.retry_after):
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return headers
