"""What every ``@cached`` contender shares: the key set, the function body, priming and checks."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["IDS", "Source", "cycling", "expect", "primed_async", "primed_sync"]

#: The arguments every contender is called with, in turn.
IDS = tuple(range(16))


class Source:
    """The body of every cached function: returns the value and counts its computations."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.calls = 0

    def __call__(self, user_id: int) -> dict[str, Any]:
        self.calls += 1
        return self.value


def expect(label: str, got: object, want: object) -> None:
    """Refuse to time a contender that returns something else."""
    if got != want:
        raise RuntimeError(f"{label} returned a wrong value; the benchmark would be meaningless")


def cycling(fn: Callable[[int], Any]) -> Callable[[], Any]:
    """A zero-argument call of ``fn`` on the next id of ``IDS``, round and round."""
    ids = itertools.cycle(IDS)
    return lambda: fn(next(ids))


def primed_sync(label: str, fn: Callable[[int], Any], source: Source) -> Callable[[], Any]:
    """Compute and store every key, check that a second pass hits, return the timed call."""
    for user_id in IDS:
        expect(label, fn(user_id), source.value)
    computed = source.calls
    for user_id in IDS:
        expect(label, fn(user_id), source.value)
    if source.calls != computed:
        raise RuntimeError(f"{label} ran the function on a hit; the benchmark would be wrong")
    return cycling(fn)


async def primed_async(
    label: str, fn: Callable[[int], Awaitable[Any]], source: Source
) -> Callable[[], Awaitable[Any]]:
    """The async twin of ``primed_sync``."""
    for user_id in IDS:
        expect(label, await fn(user_id), source.value)
    computed = source.calls
    for user_id in IDS:
        expect(label, await fn(user_id), source.value)
    if source.calls != computed:
        raise RuntimeError(f"{label} ran the function on a hit; the benchmark would be wrong")
    return cycling(fn)
