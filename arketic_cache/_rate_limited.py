"""``@rate_limited``: one decorator for sync and async functions, and rate-limit HTTP headers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from . import _connection
from ._core._cached import CallKeyer
from ._core._ratelimit import Limit
from ._exceptions import ConfigurationError, InvalidInputError, RateLimitExceeded
from ._keys import KeySchema, RateLimitKey, escape_part
from ._ratelimit import RedisRateLimiter, SyncRedisRateLimiter
from ._shell import check_connection, check_flag

__all__ = ["rate_limited"]

F = TypeVar("F", bound=Callable[..., Any])


def rate_limited(
    limit: int | Limit,
    *more: Limit,
    window: float = 60,
    key: type[RateLimitKey] | Callable[..., str | RateLimitKey] | str | None = None,
    cost: int | Callable[..., int] = 1,
    connection: _connection.RedisConnection | None = None,
    fail_closed: bool = False,
) -> Callable[[F], F]:
    """Allow at most ``limit`` calls (or cost units) per trailing ``window`` seconds.

    The same decorator serves sync and async functions and keeps their signature. ``key``
    names what is limited: a ``RateLimitKey`` schema whose fields are taken from the call's
    arguments, a function of the arguments returning a key, or a fixed string; by default the
    function itself (one limit for all its callers). ``cost`` is an int or a function of the
    arguments. More limits (``Limit(10, 1), Limit(1000, 3600)``) are checked atomically with
    the first. A denied call raises ``RateLimitExceeded`` (with the ``Decision``) and the
    function does not run. On a Redis failure calls go through, unless ``fail_closed``.

    Raises:
        ConfigurationError: a key schema needs a field the function lacks, or bad limits.
    """
    check_connection(connection, "@rate_limited")
    check_flag("@rate_limited", "fail_closed", fail_closed)
    try:
        limits = tuple(
            each if isinstance(each, Limit) else Limit(each, window) for each in (limit, *more)
        )
    except InvalidInputError as exc:
        raise ConfigurationError(str(exc)) from None

    def decorate(fn: F) -> F:
        keyer = _keyer(fn, key)
        options: dict[str, Any] = {"connection": connection, "fail_closed": fail_closed}

        def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str | RateLimitKey, int]:
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
    fn: Callable[..., Any], key: type[RateLimitKey] | Callable[..., str | RateLimitKey] | str | None
) -> Callable[[tuple[Any, ...], dict[str, Any]], str | RateLimitKey]:
    if key is None or isinstance(key, str):
        fixed = key or f"ratelimit:{escape_part(f'{fn.__module__}.{fn.__qualname__}')}"
        return lambda args, kwargs: fixed
    if isinstance(key, type) and issubclass(key, RateLimitKey):
        return CallKeyer(fn, namespace=None, key=key, exclude=())
    if isinstance(key, type) and issubclass(key, KeySchema):
        raise ConfigurationError(
            f"key={key.__name__} is a {key.redis_type.value} key of another service: "
            "rate limits take a RateLimitKey schema (e.g. RateLimitApiKey)"
        )
    if not callable(key):
        raise ConfigurationError(f"key must be a key schema, a function or a str, not {key!r}")
    key_fn = cast(Callable[..., str | RateLimitKey], key)
    return lambda args, kwargs: key_fn(*args, **kwargs)
