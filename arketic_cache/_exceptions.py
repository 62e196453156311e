"""Every exception arketic_cache raises.

::

    ArketicCacheError                  the root: catch this to catch everything below
    ├── ConfigurationError(ValueError) bad settings, URL or constructor argument
    │   └── KeySchemaError             a key schema class is ill-defined (raised at class creation)
    ├── InvalidInputError(ValueError)  bad call argument: key, TTL, amount, pattern
    │   └── ExportFormatError          an export file is corrupt, cut short or too new (its line)
    ├── SerializationError(ValueError) a value cannot be stored as JSON, or is too large
    ├── NotInitializedError            a global instance was used before init_redis()
    ├── RateLimitExceeded              a @rate_limited call was denied; carries the Decision
    ├── SubscriptionOverflow           a subscriber fell behind under on_overflow="close"
    └── BackendError                   Redis failed; the redis-py error is the __cause__
        ├── BackendUnavailable         refused, reset, authentication failed
        │   └── PoolExhausted          every pooled connection stayed busy for the pool timeout
        ├── BackendTimeout             connect or read timed out
        ├── CircuitOpen                the breaker is open, so Redis was not called
        └── BackendResponseError       Redis answered with an error (WRONGTYPE, OOM, NOPERM, ...)
            └── SubscriptionRefused    the ACL does not permit a channel (raised at subscribe)

Input errors are raised before any I/O, whatever the mode. ``BackendError`` reaches the caller only
from instances built with ``strict=True``; otherwise the spec's default value is returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._core._ratelimit import Decision

__all__ = [
    "ArketicCacheError",
    "BackendError",
    "BackendResponseError",
    "BackendTimeout",
    "BackendUnavailable",
    "CircuitOpen",
    "ConfigurationError",
    "ExportFormatError",
    "InvalidInputError",
    "KeySchemaError",
    "NotInitializedError",
    "PoolExhausted",
    "RateLimitExceeded",
    "SerializationError",
    "SubscriptionOverflow",
    "SubscriptionRefused",
]


class ArketicCacheError(Exception):
    """Root of the hierarchy; never raised itself."""


class ConfigurationError(ArketicCacheError, ValueError):
    """A setting, URL or constructor argument is invalid: fix the configuration."""


class KeySchemaError(ConfigurationError):
    """A key schema's template, fields or options do not fit: fix the class definition."""


class InvalidInputError(ArketicCacheError, ValueError):
    """A call argument is invalid (key, TTL, amount, pattern): fix the call."""


class ExportFormatError(InvalidInputError):
    """An export file does not fit the format: ``line`` is the 1-based line at fault."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class SerializationError(ArketicCacheError, ValueError):
    """A value cannot be encoded as JSON or exceeds the size limit: store something else."""


class NotInitializedError(ArketicCacheError, RuntimeError):
    """A global instance was used before ``init_redis()``: call it at start-up."""


class RateLimitExceeded(ArketicCacheError):
    """A rate-limited call was denied; ``decision.retry_after`` says when to try again."""

    def __init__(self, decision: Decision) -> None:
        wait = decision.retry_after
        super().__init__(
            f"rate limit of {decision.limit} per {decision.window}"
            f"{'' if decision.window == 'month' else ' s'} exceeded; retry after {wait:.3f} s"
        )
        self.decision = decision

    @property
    def retry_after(self) -> float:
        """Seconds until the call would fit."""
        return self.decision.retry_after


class BackendError(ArketicCacheError):
    """Redis failed; only instances built with ``strict=True`` raise it."""


class BackendUnavailable(BackendError):
    """Redis could not be reached (refused, reset, authentication failed)."""


class PoolExhausted(BackendUnavailable):
    """Every pooled connection stayed busy for the pool timeout: raise the pool size.

    Redis itself may be fine, so this never opens the circuit breaker.
    """


class BackendTimeout(BackendError):
    """Redis did not answer within the configured timeout."""


class CircuitOpen(BackendError):
    """The circuit breaker is open after repeated failures; retry after the cool-down."""


class BackendResponseError(BackendError):
    """Redis answered with an error, e.g. WRONGTYPE, OOM or NOPERM."""


class SubscriptionRefused(BackendResponseError):
    """Redis refused to subscribe (an ACL without the channel): grant it, or subscribe less.

    Raised by ``subscribe()`` whatever the mode: the subscription never existed.
    """


class SubscriptionOverflow(ArketicCacheError):
    """A subscriber under ``on_overflow="close"`` fell more than ``max_queued`` messages behind."""
