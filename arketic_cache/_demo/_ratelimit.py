"""Rate limiting in the demo: the spec's call, several limits at once, headers, refunds."""

from __future__ import annotations

from .._catalogue import RateLimitApiKey
from .._core._ratelimit import Decision, Limit, rate_limit_headers
from .._ratelimit import RedisRateLimiter
from ._narration import PREFIX, heading, note, show

__all__ = ["rate_limit_demo"]


async def rate_limit_demo() -> None:
    heading("Rate limiting (exact sliding window, one script on Redis' clock)")
    limiter = RedisRateLimiter(window_size=60, key_prefix=PREFIX)
    key = RateLimitApiKey(user_id=123, endpoint="chat")
    note("is_allowed returns (allowed, requests counted in the last 60 s, remaining);")
    note("a denied request is not counted, and its remaining is 0")
    for n in range(1, 5):
        show(f"is_allowed({key.render()!r}, limit=3) #{n}", await limiter.is_allowed(key, 3))
    if limiter.degraded_decisions:
        note("degraded: each allowed without Redis, so none counted (0) and all 3 remain")
    limits = (Limit(10, 1), Limit(50, 60))
    note("check() takes several limits at once: here 10 units/1 s and 50 units/60 s")
    tokens = await limiter.check("rate:ai:123:tokens", *limits, cost=8)
    show("check(..., cost=8).remaining", tokens.remaining, *_explain(tokens))
    denied = await limiter.check("rate:ai:123:tokens", *limits, cost=5)
    show("check(..., cost=5).allowed", denied.allowed, *_explain(denied))
    show(
        "cost=5: binding limit, retry_after (s)",
        (denied.limit, round(denied.retry_after, 2)),
        "the limit that decided, and how long until this request would fit",
    )
    headers = rate_limit_headers(denied)
    if not headers:
        show(
            "cost=5: rate_limit_headers(...)", headers, "none: a degraded decision counted nothing"
        )
    for name, value in headers.items():
        show(f"cost=5: header {name}", value, _HEADERS.get(name, ""))
    if tokens.degraded:
        note("refund(): skipped, a degraded decision recorded nothing to give back")
    else:
        refunded = await limiter.refund(tokens, 6)
        show("refund(the cost=8 request, 6)", refunded, "units given back: 2 of the 8 stay counted")
        again = await limiter.check("rate:ai:123:tokens", *limits, cost=5)
        show("check(..., cost=5) again: allowed", again.allowed, *_explain(again))
    quota = await limiter.quota("rate:ai:org7:monthly", 1_000_000, cost=1200)
    show(
        "quota(org, 1_000_000/month, cost=1200)",
        (quota.count, quota.remaining),
        *(
            _explain(quota)
            if quota.degraded
            else ("(units used this calendar month, remaining): 1_000_000 - 1200",)
        ),
    )


#: What each rate-limit header says.
_HEADERS = {
    "RateLimit-Policy": "each limit: q units per w seconds",
    "RateLimit": "the binding limit: r units left, t seconds until it resets",
    "X-RateLimit-Limit": "the binding limit's size (for older clients)",
    "X-RateLimit-Remaining": "units left, 0 when denied",
    "X-RateLimit-Reset": "when the window resets, as a Unix time by Redis' clock",
    "Retry-After": "seconds to wait before trying again",
}


def _explain(decision: Decision) -> tuple[str, ...]:
    """Each limit's count against its size, worked out from the decision itself."""
    if decision.degraded:
        verdict = "allowed" if decision.allowed else "denied"
        return (
            f"degraded: {verdict} without Redis; nothing counted, so the count is 0 and"
            f" remaining is the whole {decision.limit}",
        )
    counts = "; ".join(
        f"{state.limit.tag}: {state.count} counted, {state.remaining} left"
        for state in decision.states
    )
    binding = decision.states[decision.binding].limit
    if decision.allowed:
        why = f"the {decision.cost} units counted in both; .remaining is the tighter one's"
    else:
        why = (
            f"{decision.cost} units do not fit the {binding.tag} limit's {decision.remaining} left,"
            " so none were counted"
        )
    return counts, why
