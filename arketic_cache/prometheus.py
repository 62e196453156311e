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
from ._metrics import MetricsSnapshot, metrics_snapshot

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - exercised by a test that hides the package
    raise ConfigurationError(
        "arketic_cache.prometheus needs prometheus_client: pip install 'arketic-cache[prometheus]'"
    ) from None

__all__ = ["ArketicCollector", "register", "unregister"]

_BREAKER_STATES = ("closed", "half-open", "open")
_SESSION_EVENTS = (
    "created",
    "rotated",
    "refreshed",
    "ended",
    "refresh_reuse_detected",
    "corrupt",
    "update_conflicts",
)


def _counter(name: str, doc: str, labels: Iterable[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


def _families(snapshot: MetricsSnapshot) -> list[Metric]:
    """The snapshot as metric families (empty ones too: ``describe`` lists them all)."""
    cache = ("cache", "kind")
    hits = _counter("arketic_cache_hits", "Cache lookups found, by level.", (*cache, "level"))
    misses = _counter("arketic_cache_misses", "Cache lookups not found.", cache)
    decode = _counter(
        "arketic_cache_decode_errors", "Entries found unreadable (dropped, a miss).", cache
    )
    degraded = _counter(
        "arketic_cache_degraded_calls",
        "Calls that failed on Redis and returned the degraded default.",
        cache,
    )
    sent = _counter(
        "arketic_cache_invalidations_sent", "@cached invalidate() calls that reached Redis.", cache
    )
    entries = GaugeMetricFamily("arketic_cache_l1_entries", "Entries held in L1.", labels=cache)
    for c in snapshot.caches:
        labels = [c.name, c.kind]
        if c.kind == "cached":
            hits.add_metric([*labels, "l1"], c.l1_hits)
            sent.add_metric(labels, c.invalidations_sent)
            entries.add_metric(labels, c.l1_entries)
        hits.add_metric([*labels, "l2"], c.l2_hits)
        misses.add_metric(labels, c.misses)
        decode.add_metric(labels, c.decode_errors)
        degraded.add_metric(labels, c.errors)

    server = ("server",)
    failures = _counter(
        "arketic_cache_backend_failures", "Failed Redis calls, by kind.", (*server, "kind")
    )
    short = _counter(
        "arketic_cache_short_circuits", "Calls not sent: the circuit breaker was open.", server
    )
    opens = _counter("arketic_cache_circuit_breaker_opens", "Times a breaker opened.", server)
    state = GaugeMetricFamily(
        "arketic_cache_circuit_breaker_state",
        "1 for the breaker's current state (the worst of the server's connections).",
        labels=[*server, "state"],
    )
    waits = _counter(
        "arketic_cache_pool_waits", "Calls that queued for a free pooled connection.", server
    )
    connections = GaugeMetricFamily(
        "arketic_cache_connections", "RedisConnection objects to the server.", labels=server
    )
    for b in snapshot.backends:
        for kind, count in b.failures.items():
            failures.add_metric([b.server, kind], count)
        short.add_metric([b.server], b.short_circuits)
        opens.add_metric([b.server], b.breaker_opens)
        for name in _BREAKER_STATES:
            state.add_metric([b.server, name], float(b.breaker == name))
        waits.add_metric([b.server], b.pool_waits)
        connections.add_metric([b.server], b.connections)

    received = _counter(
        "arketic_cache_invalidations_received",
        "L1 keys evicted on a report of another writer's change.",
        server,
    )
    flushes = _counter(
        "arketic_cache_l1_flushes",
        "Whole-L1 flushes (after a gap in coherence, a FLUSHDB).",
        server,
    )
    reconnects = _counter(
        "arketic_cache_listener_connections", "Invalidation listener connections opened.", server
    )
    listeners = GaugeMetricFamily(
        "arketic_cache_listeners",
        "Invalidation listeners by mode (none: L1 entries live at most coherence_grace).",
        labels=[*server, "mode"],
    )
    for li in snapshot.listeners:
        received.add_metric([li.server], li.invalidations_received)
        flushes.add_metric([li.server], li.l1_flushes)
        reconnects.add_metric([li.server], li.reconnects)
        for mode in ("tracking", "announce", "none"):
            listeners.add_metric([li.server, mode], li.modes.get(mode, 0))

    decisions = _counter(
        "arketic_cache_ratelimit_decisions",
        "Rate-limit decisions by outcome (degraded/misconfigured: answered without Redis).",
        ("limiter", "outcome"),
    )
    for r in snapshot.rate_limits:
        for outcome in ("allowed", "denied", "degraded", "misconfigured"):
            decisions.add_metric([r.name, outcome], getattr(r, outcome))

    events = _counter("arketic_cache_session_events", "Session events.", ("manager", "event"))
    for s in snapshot.sessions:
        for event in _SESSION_EVENTS:
            events.add_metric([s.name, event], getattr(s, event))

    return [
        hits,
        misses,
        decode,
        degraded,
        sent,
        entries,
        failures,
        short,
        opens,
        state,
        waits,
        connections,
        received,
        flushes,
        reconnects,
        listeners,
        decisions,
        events,
    ]


_EMPTY = MetricsSnapshot((), (), (), (), ())


class ArketicCollector(Collector):
    """Every counter of ``metrics_snapshot()`` as Prometheus metrics, read on each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _families(metrics_snapshot())

    def describe(self) -> Iterator[Metric]:
        # The names alone: registration must not read the counters.
        yield from _families(_EMPTY)


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
