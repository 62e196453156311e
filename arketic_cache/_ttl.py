"""The spec's TTL strategy table, as one enum."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final

__all__ = ["TTL", "TTL_SECONDS"]


class TTL(Enum):
    """A row of the TTL strategy table; ``DEFAULT`` follows ``RESPONSE_CACHE_TTL``."""

    USER_SESSION = "user_session"
    API_RESPONSE = "api_response"
    AI_RESPONSE = "ai_response"
    SEARCH_RESULT = "search_result"
    RATE_LIMIT_WINDOW = "rate_limit_window"
    TEMPORARY_LOCK = "temporary_lock"
    DEFAULT = "default"

    @property
    def seconds(self) -> int:
        """The table's value in seconds (``DEFAULT``: the spec's 3600)."""
        return TTL_SECONDS[self]

    def resolve(self, default_ttl: int) -> int:
        """Seconds for this row, with ``DEFAULT`` taken from the configured default TTL."""
        return default_ttl if self is TTL.DEFAULT else TTL_SECONDS[self]


#: The spec's "TTL Strategy" table.
TTL_SECONDS: Final[Mapping[TTL, int]] = MappingProxyType(
    {
        TTL.USER_SESSION: 3600,  # security and resource management
        TTL.API_RESPONSE: 300,  # fresh data while reducing load
        TTL.AI_RESPONSE: 3600,  # expensive computations
        TTL.SEARCH_RESULT: 900,  # balance freshness and performance
        TTL.RATE_LIMIT_WINDOW: 60,  # sliding window clean-up
        TTL.TEMPORARY_LOCK: 30,  # prevent deadlocks
        TTL.DEFAULT: 3600,  # RESPONSE_CACHE_TTL unless configured
    }
)
