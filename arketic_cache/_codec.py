"""JSON value codec: what the cache stores is readable by any service, and never pickle.

Encoding goes through pydantic-core, so pydantic models, dataclasses, datetimes, UUIDs and sets
are stored as their JSON form. NaN and infinities become ``null``, as in JavaScript.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from ._exceptions import SerializationError

__all__ = ["decode", "encode"]


def encode(value: Any, max_bytes: int) -> bytes:
    """Encode ``value`` as JSON bytes.

    Raises:
        SerializationError: the value is not JSON-able or its JSON exceeds ``max_bytes``.
    """
    try:
        data = to_json(value, inf_nan_mode="null")
    except (PydanticSerializationError, ValueError, TypeError, RecursionError) as exc:
        raise SerializationError(f"cannot store a {type(value).__name__} as JSON: {exc}") from exc
    if len(data) > max_bytes:
        raise SerializationError(
            f"value is {len(data)} bytes as JSON, over the {max_bytes}-byte limit"
        )
    return data


def decode(raw: str | bytes) -> Any:
    """Decode stored JSON; raises ``ValueError`` on anything else (a corrupt entry)."""
    return json.loads(raw)
