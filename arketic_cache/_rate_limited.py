"""``@rate_limited``: one decorator for sync and async functions, and rate-limit HTTP headers."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

from . import _connection
from ._core._cached import CallKeyer
from ._core._ratelimit import Decision, Limit
from ._exceptions import ConfigurationError, InvalidInputError, RateLimitExceeded
from ._keys import KeySchema, escape_part
from ._ratelimit import RedisRateLimiter, SyncRedisRateLimiter

__all__ = ["rate_limit_headers", "rate_limited"]

F = TypeVar("F", bound=Callable[..., Any])


def rate_limited(
    limit: int | Limit,
    *more: Limit,
    window: float = 60,
    key: type[KeySchema] | Callable[..., str | KeySchema] | str | None = None,
    cost: int | Callable[..., int] = 1,
    connection: _connection.RedisConnection | None = None,
    fail_closed: bool = False,
) -> Callable[[F], F]:
    """Allow at most ``limit`` calls (or cost units) per trailing ``window`` seconds.

    The same decorator serves sync and async functions and keeps their signature. ``key``
    names what is limited: a key schema whose fields are taken from the call's arguments,
    a function of the arguments returning a key, or a fixed string; by default the function
    itself (one limit for all its callers). ``cost`` is an int or a function of the
    arguments. More limits (``Limit(10, 1), Limit(1000, 3600)``) are checked atomically with
    the first. A denied call raises ``RateLimitExceeded`` (with the ``Decision``) and the
    function does not run. On a Redis failure calls go through, unless ``fail_closed``.

    Raises:
        ConfigurationError: a key schema needs a field the function lacks, or bad limits.
    """
    try:
        limits = tuple(
            each if isinstance(each, Limit) else Limit(each, window) for each in (limit, *more)
        )
    except InvalidInputError as exc:
        raise ConfigurationError(str(exc)) from None

    def decorate(fn: F) -> F:
        keyer = _keyer(fn, key)
        options: dict[str, Any] = {"connection": connection, "fail_closed": fail_closed}

        def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | KeySchema, int]:
            units = cost(*args, **kwargs) if callable(cost) else cost
            return keyer(args, kwargs), units

        if inspect.iscoroutinefunction(fn):
            alimiter = RedisRateLimiter(**options)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                name, units = plan(args, kwargs)
                decision = await alimiter.check(name, *limits, cost=units)
                if not decision.allowed:
                    raise RateLimitExceeded(decision)
                return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        limiter = SyncRedisRateLimiter(**options)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name, units = plan(args, kwargs)
            decision = limiter.check(name, *limits, cost=units)
            if not decision.allowed:
                raise RateLimitExceeded(decision)
            return fn(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def _keyer(
    fn: Callable[..., Any], key: type[KeySchema] | Callable[..., str | KeySchema] | str | None
) -> Callable[[tuple[Any, ...], dict[str, Any]], str | KeySchema]:
    if key is None or isinstance(key, str):
        fixed = key or f"ratelimit:{escape_part(f'{fn.__module__}.{fn.__qualname__}')}"
        return lambda args, kwargs: fixed
    if isinstance(key, type) and issubclass(key, KeySchema):
        return CallKeyer(fn, namespace=None, key=key, exclude=())
    if not callable(key):
        raise ConfigurationError(f"key must be a key schema, a function or a str, not {key!r}")
    key_fn = cast(Callable[..., str | KeySchema], key)
    return lambda args, kwargs: key_fn(*args, **kwargs)


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
