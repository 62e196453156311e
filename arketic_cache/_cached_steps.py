"""The steps a ``@cached`` plan yields (plain data), and the call they are about; the
interpreters in ``_cached.py`` carry them out, each flavour with its own primitives."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any, NamedTuple, TypeAlias

from . import _connection
from ._core._effects import Flow

__all__ = ["Block", "Call", "Compute", "Join", "NewSignal", "Plan", "Run", "Spawn", "Step", "Wait"]


class Run(NamedTuple):
    """Run ``flow`` on ``conn`` (never strict): the reply is its result, or ``fallback``."""

    conn: _connection.RedisConnection
    flow: Flow[Any]
    fallback: Any


class Compute(NamedTuple):
    """Call the function: the reply is ``(value, seconds it took)``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class Join(NamedTuple):
    """Run ``plan`` unless this process already runs it for ``key``; the reply is its result."""

    key: str
    plan: Generator[Any, Any, Any]


class Spawn(NamedTuple):
    """Run ``plan`` in the background (a thread, a task)."""

    plan: Generator[Any, Any, Any]


class Block(NamedTuple):
    """Wait up to ``seconds`` for a ``threading.Event``; the reply is whether it is set."""

    event: threading.Event
    seconds: float


class NewSignal(NamedTuple):
    """The reply is a new signal of the flavour's kind (``set()`` from any thread)."""


class Wait(NamedTuple):
    """Wait up to ``seconds`` for ``signal`` (from ``NewSignal``)."""

    signal: Any
    seconds: float


Step: TypeAlias = Run | Compute | Join | Spawn | Block | NewSignal | Wait
Plan: TypeAlias = Generator[Step, Any, Any]


class Call(NamedTuple):
    """One call past the hot path: its arguments, L1 key (or None), Redis key, and the L1
    version seen before anything was read."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    key: Any
    l2_key: str
    seen: int
