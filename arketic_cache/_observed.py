"""The metrics snapshot as OpenTelemetry observable instruments (extra ``otel``).

Each series of ``_metrics.SERIES`` becomes an observable counter or gauge named
``arketic_cache.<name>``, whose callback reads the counters when the reader collects. One
snapshot serves every instrument of a collection: it is reused for ``_FRESH`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ._metrics import SERIES, Series, metrics_snapshot, series

__all__ = ["observe"]

_FRESH = 1.0


class _Latest:
    """The latest snapshot's series by name, taken anew once older than ``_FRESH``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at = -_FRESH
        self._series: dict[str, Series] = {}
        self.stopped = False

    def __call__(self, name: str) -> Series | None:
        if self.stopped:
            return None
        with self._lock:
            now = time.monotonic()
            if now - self._at >= _FRESH:
                self._series = {s.name: s for s in series(metrics_snapshot())}
                self._at = now
            return self._series[name]


def observe(meter: Meter) -> Callable[[], None]:
    """Create one observable instrument per series on ``meter``; returns what stops them
    (OpenTelemetry cannot remove an instrument: a stopped one observes nothing)."""
    latest = _Latest()
    for spec in SERIES:

        def callback(options: CallbackOptions, name: str = spec.name) -> Iterable[Observation]:
            found = latest(name)
            if found is None:
                return []
            return [
                Observation(value, dict(zip(found.labels, labels, strict=True)))
                for labels, value in found.samples
            ]

        create = (
            meter.create_observable_counter
            if spec.kind == "counter"
            else meter.create_observable_gauge
        )
        create(f"arketic_cache.{spec.name}", [callback], description=spec.help)

    def stop() -> None:
        latest.stopped = True

    return stop
