"""Interleaved timing: every contender runs one batch per round, so noise hits all alike.

Machines running these are small and noisy, so results are medians over rounds, never means.
Each round runs every contender's batch once, in an order rotated per round; the ratio to a
floor is taken per round (the two batches ran moments apart) and its median reported.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BatchRunner",
    "Benchmark",
    "Contender",
    "Outcome",
    "Role",
    "Target",
    "async_batch",
    "measure",
    "sync_batch",
]

#: Runs ``n`` calls and returns the elapsed nanoseconds.
BatchRunner = Callable[[int], Awaitable[int]]

#: ``floor`` is what the others are divided by; ``checked`` rows must meet the target;
#: ``peer`` rows are other libraries, which every checked row should beat; ``info`` rows are
#: shown for context only (diagnostics).
Role = Literal["floor", "checked", "peer", "info"]


def sync_batch(call: Callable[[], object]) -> BatchRunner:
    """Wrap a blocking call as a batch runner (it blocks the event loop, which is idle)."""

    async def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            call()
        return time.perf_counter_ns() - start

    return run


def async_batch(call: Callable[[], Awaitable[object]]) -> BatchRunner:
    """Wrap a coroutine function as a batch runner awaiting ``n`` calls one after another."""

    async def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await call()
        return time.perf_counter_ns() - start

    return run


@dataclass(frozen=True, slots=True)
class Target:
    """A bound each ``checked`` contender must meet: a ratio to the floor or absolute µs.

    ``label`` says what is bounded; the summary has a line per label and bound.
    """

    limit: float
    kind: Literal["ratio", "us"]
    label: str

    def describe(self) -> str:
        """``≤ 1.10x`` or ``< 10 µs``."""
        return f"≤ {self.limit:.2f}x" if self.kind == "ratio" else f"< {self.limit:g} µs"

    def holds(self, median_us: float, ratio: float | None) -> bool:
        """True if the measured median (or ratio) meets the bound."""
        if self.kind == "us":
            return median_us < self.limit
        return ratio is not None and ratio <= self.limit


@dataclass(frozen=True, slots=True)
class Contender:
    """One way of doing the benchmark's operation.

    ``samples``, if given, is where ``run`` appends the nanoseconds of every single call it
    timed, for a distribution beside the median of batch means (``measure`` drops the
    warm-up's).
    """

    name: str
    run: BatchRunner
    role: Role = "checked"
    samples: list[float] | None = None


@dataclass(slots=True)
class Benchmark:
    """One operation, its contenders (at most one floor) and the target for checked rows."""

    name: str
    calls: int
    contenders: list[Contender]
    target: Target | None = None

    @property
    def floor(self) -> Contender | None:
        """The contender the others are compared with, if any."""
        return next((c for c in self.contenders if c.role == "floor"), None)


@dataclass(slots=True)
class Outcome:
    """Per-round results of one contender."""

    benchmark: Benchmark
    contender: Contender
    per_call_ns: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        """Median over rounds of the per-call time, in microseconds."""
        return statistics.median(self.per_call_ns) / 1000

    @property
    def ratio(self) -> float | None:
        """Median over rounds of (this batch / the floor's batch in the same round)."""
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def meets_target(self) -> bool | None:
        """Whether a checked row meets its benchmark's target (None for other rows)."""
        target = self.benchmark.target
        if target is None or self.contender.role != "checked":
            return None
        return target.holds(self.median_us, self.ratio)


async def measure(benchmarks: Sequence[Benchmark], rounds: int, warmup: int = 1) -> list[Outcome]:
    """Warm every contender up, then run ``rounds`` interleaved rounds; return the outcomes."""
    slots = [(b, c) for b in benchmarks for c in b.contenders]
    outcomes = {id(c): Outcome(b, c) for b, c in slots}
    for bench, contender in slots:
        for _ in range(warmup):
            await contender.run(bench.calls)
    # Every batch starts from a clean heap. Frozen, the long-lived objects (imported modules,
    # clients, test data) are not rescanned by each of those collections: a full collection
    # over them took ~20 ms, more than the batch it preceded.
    for _, contender in slots:
        if contender.samples is not None:
            contender.samples.clear()  # the warm-up's calls are not measured
    gc.collect()
    gc.freeze()
    try:
        for round_no in range(rounds):
            shift = round_no % len(slots)
            per_call: dict[int, float] = {}
            for bench, contender in slots[shift:] + slots[:shift]:
                gc.collect()
                per_call[id(contender)] = await contender.run(bench.calls) / bench.calls
            for bench, contender in slots:
                outcome = outcomes[id(contender)]
                outcome.per_call_ns.append(per_call[id(contender)])
                floor = bench.floor
                if floor is not None and floor is not contender:
                    outcome.ratios.append(per_call[id(contender)] / per_call[id(floor)])
    finally:
        gc.unfreeze()
    return [outcomes[id(c)] for _, c in slots]
