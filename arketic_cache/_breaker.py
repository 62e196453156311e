"""A circuit breaker shared by a connection's sync and async drivers.

Closed: calls go to Redis. After ``threshold`` transport failures within ``window`` seconds it
opens: calls skip Redis for ``cooldown`` seconds. Successes in between do not hide failures, so
a server that answers reads but times out on writes still trips it. Then one call is let
through as a probe (half-open); success closes the breaker, failure re-opens it for another
cool-down. A probe that never reports back (a cancelled task) cannot wedge it: the next probe
is due one cool-down later.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Literal

__all__ = ["CircuitBreaker", "NodeBreakers"]

BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Count recent transport failures and decide whether Redis may be called."""

    __slots__ = ("_clock", "_failures", "_retry_at", "cooldown", "threshold", "window")

    def __init__(
        self,
        threshold: int = 3,
        cooldown: float = 2.0,
        clock: Callable[[], float] | None = None,
        window: float = 10.0,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.window = window
        self._clock = clock or time.monotonic
        self._failures: deque[float] = deque(maxlen=threshold)
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
        """Close the breaker after a successful probe; in the closed state, change nothing."""
        if self._retry_at != 0.0:
            self._retry_at = 0.0
            self._failures.clear()

    def record_failure(self) -> bool:
        """Count a transport failure; return True if the breaker opened (or re-opened)."""
        now = self._clock()
        failures = self._failures
        failures.append(now)
        recent = len(failures) == self.threshold and now - failures[0] <= self.window
        if self._retry_at != 0.0 or recent:
            self._retry_at = now + self.cooldown
            return True
        return False


_WORST = {"closed": 0, "half-open": 1, "open": 2}


class NodeBreakers(CircuitBreaker):
    """A cluster's breakers, one per node: a node that fails is skipped while the others
    serve their slots. As the connection's breaker it never skips a call itself (the node a
    call is routed to decides); its ``state`` is the worst of the nodes'."""

    __slots__ = ("_nodes",)

    def __init__(
        self, threshold: int = 3, cooldown: float = 2.0, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__(threshold, cooldown, clock)
        self._nodes: dict[Hashable, CircuitBreaker] = {}

    def of(self, node: Hashable) -> CircuitBreaker:
        """The breaker of ``node`` (created closed on first use)."""
        found = self._nodes.get(node)
        if found is None:
            found = self._nodes.setdefault(
                node, CircuitBreaker(self.threshold, self.cooldown, self._clock, self.window)
            )
        return found

    def states(self) -> dict[Hashable, BreakerState]:
        """Every node's breaker state."""
        return {node: breaker.state for node, breaker in list(self._nodes.items())}

    @property
    def is_closed(self) -> bool:
        return True

    @property
    def state(self) -> BreakerState:
        worst: BreakerState = "closed"
        for state in self.states().values():
            if _WORST[state] > _WORST[worst]:
                worst = state
        return worst

    def allow(self) -> bool:
        return True

    def record_success(self) -> None:
        """Nothing: successes are the nodes'."""

    def record_failure(self) -> bool:
        """Nothing: failures are the nodes'."""
        return False
