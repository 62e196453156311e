"""What the hand-stepped core tests share: ending a flow, comparing steps, canned refusals."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest
import redis

NOPERM_CHANNEL = redis.exceptions.NoPermissionError(
    "this user has no permissions to access one of the channels used as arguments"
)


def finish(flow: Generator[Any, Any, Any], reply: Any) -> Any:
    """Send the last reply; return what the flow or plan returns."""
    with pytest.raises(StopIteration) as done:
        flow.send(reply)
    return done.value.value


def same(step: Any, expected: Any) -> bool:
    """Steps and events are named tuples: ``Connect() == Release() == ()``, so compare types."""
    return type(step) is type(expected) and step == expected
