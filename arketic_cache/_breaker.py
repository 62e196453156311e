"""A circuit breaker shared by a connection's sync and async drivers.

Closed: calls go to Redis. After ``threshold`` consecutive transport failures it opens: calls
skip Redis for ``cooldown`` seconds. Then one call is let through as a probe (half-open);
success closes the breaker, failure re-opens it for another cool-down. A probe that never
reports back (a cancelled task) cannot wedge it: the next probe is due one cool-down later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker"]

BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Count consecutive transport failures and decide whether Redis may be called."""

    __slots__ = ("_clock", "_failures", "_retry_at", "cooldown", "threshold")

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock or time.monotonic
        self._failures = 0
        self._retry_at = 0.0  # 0.0 while closed

    @property
    def is_closed(self) -> bool:
        """True while calls go straight to Redis (the hot path checks only this)."""
        return self._retry_at == 0.0

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` (skipping Redis) or ``half-open`` (a probe is due)."""
        if self._retry_at == 0.0:
            return "closed"
        return "half-open" if self._clock() >= self._retry_at else "open"

    def allow(self) -> bool:
        """Return True if this call may go to Redis; claims the probe when one is due."""
        if self._retry_at == 0.0:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self.cooldown  # this call is the probe; others wait
        return True

    def record_success(self) -> None:
        """Close the breaker."""
        self._failures = 0
        self._retry_at = 0.0

    def record_failure(self) -> bool:
        """Count a transport failure; return True if the breaker opened (or re-opened)."""
        self._failures += 1
        if self._retry_at != 0.0 or self._failures >= self.threshold:
            self._retry_at = self._clock() + self.cooldown
            return True
        return False
