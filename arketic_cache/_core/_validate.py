"""Argument checks done before any I/O; each failure is an ``InvalidInputError``."""

from __future__ import annotations

from typing import Any

from .._exceptions import InvalidInputError

__all__ = [
    "MAX_PATTERN_LENGTH",
    "check_amount",
    "check_key",
    "check_pattern",
    "check_ttl",
    "escape_glob",
]

#: Long glob patterns can exhaust the server (CVE-2024-31228); refuse them client-side.
MAX_PATTERN_LENGTH = 512
_INT64 = 2**63
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def check_key(key: Any, max_bytes: int) -> str:
    """Return ``key`` if it is a non-empty string within ``max_bytes`` of UTF-8."""
    if type(key) is not str:
        raise InvalidInputError(f"a key must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidInputError("a key must not be empty")
    if len(key) * 4 > max_bytes and len(key.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInputError(f"key is longer than {max_bytes} bytes")
    return key


def check_ttl(ttl: Any) -> int:
    """Return ``ttl`` if it is a positive whole number of seconds."""
    if type(ttl) is not int or ttl <= 0:
        raise InvalidInputError(f"a TTL must be a positive int of seconds, not {ttl!r}")
    return ttl


def check_amount(amount: Any) -> int:
    """Return ``amount`` if it is an int that fits a signed 64-bit counter."""
    if type(amount) is not int or not -_INT64 <= amount < _INT64:
        raise InvalidInputError(f"an increment must be a 64-bit int, not {amount!r}")
    return amount


def check_pattern(pattern: Any) -> str:
    """Return ``pattern`` if it is a non-empty glob of reasonable length."""
    if type(pattern) is not str or not pattern:
        raise InvalidInputError("a pattern must be a non-empty str")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidInputError(f"a pattern must be at most {MAX_PATTERN_LENGTH} characters")
    return pattern


def escape_glob(text: str) -> str:
    """Escape ``* ? [ ] \\`` so that ``text`` matches only itself in SCAN MATCH."""
    return text.translate(_GLOB_SPECIAL)
