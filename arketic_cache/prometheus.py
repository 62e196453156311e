"""Prometheus metrics (extra ``prometheus``): a collector that reads ``metrics_snapshot()``
at scrape time, so no call of the library pays anything for it.

    from arketic_cache.prometheus import register
    register()                      # prometheus_client's default REGISTRY, or register(mine)

Nothing is registered at import. Names follow Prometheus conventions (``arketic_cache_`` and
``_total`` on counters); labels are bounded: caches by key prefix, schema or ``@cached``
function, servers as ``host:port/db``, never a key, user or password.

Multiprocess servers (gunicorn workers, ``PROMETHEUS_MULTIPROC_DIR``): prometheus_client's
multiprocess mode does not run custom collectors, and the counters are per process, so each
scrape sees only the worker that answered it. Scrape each worker on a port of its own (or run
one worker per container); do not sum a multiprocess registry with this collector.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator

from ._exceptions import ConfigurationError
from ._metrics import SERIES, Series, metrics_snapshot, series

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - exercised by a test that hides the package
    raise ConfigurationError(
        "arketic_cache.prometheus needs prometheus_client: pip install 'arketic-cache[prometheus]'"
    ) from None

__all__ = ["ArketicCollector", "register", "unregister"]


def _families(found: Iterable[Series]) -> Iterator[Metric]:
    for s in found:
        name = f"arketic_cache_{s.name}"
        family: CounterMetricFamily | GaugeMetricFamily
        if s.kind == "counter":
            family = CounterMetricFamily(name, s.help, labels=s.labels)
        else:
            family = GaugeMetricFamily(name, s.help, labels=s.labels)
        for labels, value in s.samples:
            family.add_metric(labels, value)
        yield family


class ArketicCollector(Collector):
    """Every counter of ``metrics_snapshot()`` as Prometheus metrics, read on each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _families(series(metrics_snapshot()))

    def describe(self) -> Iterator[Metric]:
        # The names alone: registration must not read the counters.
        yield from _families(SERIES)


_lock = threading.Lock()
_registered: weakref.WeakKeyDictionary[CollectorRegistry, ArketicCollector] = (
    weakref.WeakKeyDictionary()
)


def register(registry: CollectorRegistry | None = None) -> ArketicCollector:
    """Register the collector in ``registry`` (default: prometheus_client's ``REGISTRY``).

    Registering twice in one registry returns the collector already there.
    """
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _registered.get(target)
        if found is None:
            found = _registered[target] = ArketicCollector()
            target.register(found)
    return found


def unregister(registry: CollectorRegistry | None = None) -> None:
    """Remove the collector from ``registry`` (default: ``REGISTRY``) if it is there."""
    target = REGISTRY if registry is None else registry
    with _lock:
        found = _registered.pop(target, None)
    if found is not None:
        target.unregister(found)
