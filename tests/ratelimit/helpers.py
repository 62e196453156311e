"""What the rate-limit tests share: the limiter's clock seam in epoch microseconds, limiters
of a flavour, a decision's comparable view, and the trailing-window bound."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from arketic_cache import Decision, RedisRateLimiter, SyncRedisRateLimiter

from ..helpers import Flavor

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


def several(raw: redis.Redis, base: str, limit: str) -> str:
    """The key of one of several limits on ``base`` (on a cluster all share ``{base}``'s slot)."""
    return f"{{{base}}}:{limit}" if isinstance(raw, RedisCluster) else f"{base}:{limit}"
