"""One snapshot of every counter the library keeps: ``metrics_snapshot()``.

The Prometheus collector and the OpenTelemetry observable instruments read it at scrape time;
nothing is counted twice and the hot paths only ever increment plain ints. Counters are this
process's totals since it started (a collected cache's counts stay in them); the breaker state,
L1 sizes and listener modes are current. Names are bounded: a key prefix, a key schema or a
``@cached`` function's namespace, and servers as ``host:port/db`` (never a password or a key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from . import _connection
from ._cached_state import live_states
from ._counters import totals
from ._drive import FAILURE_KINDS
from ._invalidation import coherence_of
from ._settings import RedisSettings

__all__ = [
    "SERIES",
    "BackendMetrics",
    "CacheMetrics",
    "ListenerMetrics",
    "MetricsSnapshot",
    "RateLimitMetrics",
    "Series",
    "SessionMetrics",
    "metrics_snapshot",
    "series",
    "server_label",
]

CacheKind = Literal["cache", "repository", "cached"]
BreakerState = Literal["closed", "open", "half-open"]
_WORST: dict[str, int] = {"closed": 0, "half-open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class CacheMetrics:
    """The lookups of the caches of one kind and name (summed over their instances)."""

    kind: CacheKind  #: ``cache`` (RedisCache), ``repository`` or ``cached``
    name: str  #: key prefix ("default": the connection's), schema class, or function label
    l1_hits: int  #: served from the in-process level (``@cached`` only)
    l2_hits: int  #: found in Redis
    misses: int
    decode_errors: int  #: entries found unreadable (dropped, counted as misses)
    errors: int  #: calls that failed on Redis and were answered with the degraded default
    invalidations_sent: int  #: ``invalidate()`` calls that reached Redis (``@cached``)
    l1_entries: int  #: entries held in L1 now (``@cached``)


@dataclass(frozen=True, slots=True)
class BackendMetrics:
    """The drivers' failure counters of the connections to one server, summed."""

    server: str  #: ``host:port/db``, a socket path, or ``memory`` (see ``server_label``)
    connections: int  #: RedisConnection objects to it
    breaker: BreakerState  #: the worst of their circuit breakers
    failures: Mapping[str, int]  #: failed calls by kind (``FAILURE_KINDS``)
    short_circuits: int  #: calls not sent because a breaker was open
    breaker_opens: int  #: times a breaker opened
    pool_waits: int  #: calls that found every connection busy and queued for one


@dataclass(frozen=True, slots=True)
class ListenerMetrics:
    """The L1 coherence listeners of the connections to one server."""

    server: str
    modes: Mapping[str, int]  #: listeners by mode (``tracking``, ``announce``, ``none``)
    invalidations_received: int  #: keys evicted on another writer's report
    l1_flushes: int  #: whole-L1 flushes (after a gap in coherence, or a FLUSHDB)
    reconnects: int  #: subscriber connections opened
    failing: int  #: listeners now between failed attempts


@dataclass(frozen=True, slots=True)
class RateLimitMetrics:
    """The decisions of the rate limiters of one key prefix, by outcome."""

    name: str
    allowed: int
    denied: int
    degraded: int  #: answered without Redis (allowed, or denied when failing closed)
    misconfigured: int  #: answered without Redis because a key holds another type


@dataclass(frozen=True, slots=True)
class SessionMetrics:
    """The events of the session managers of one key prefix."""

    name: str
    created: int
    rotated: int
    refreshed: int  #: sessions made from a refresh token
    ended: int  #: deleted or logged out
    refresh_reuse_detected: int  #: refresh tokens used twice (their family revoked)
    corrupt: int
    update_conflicts: int  #: updates retried because another one won


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every counter at one moment; ``as_dict()`` is its JSON form."""

    caches: tuple[CacheMetrics, ...]
    backends: tuple[BackendMetrics, ...]
    listeners: tuple[ListenerMetrics, ...]
    rate_limits: tuple[RateLimitMetrics, ...]
    sessions: tuple[SessionMetrics, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain dicts (and tuples), ready for ``json.dumps``: a monitoring endpoint's body."""
        return asdict(self)


def server_label(settings: RedisSettings) -> str:
    """Where a connection goes, without credentials: ``host:port/db``, a socket path, or
    ``memory`` (``memory://name`` for a named embedded server)."""
    address, port, db = settings.endpoint
    return address if port is None else f"{address}:{port}/{db}"


def _caches() -> tuple[CacheMetrics, ...]:
    entries: dict[str, int] = {}
    for state in live_states():
        if state.l1 is not None:
            name = state.keyer.label
            entries[name] = entries.get(name, 0) + len(state.l1)
    found = []
    for (family, name), c in sorted(totals("cache", "repository", "cached").items()):
        found.append(
            CacheMetrics(
                kind=family,  # type: ignore[arg-type]
                name=name,
                l2_hits=c.pop("hits"),
                invalidations_sent=c.pop("invalidations"),
                l1_entries=entries.get(name, 0) if family == "cached" else 0,
                **c,
            )
        )
    return tuple(found)


def _servers() -> tuple[tuple[BackendMetrics, ...], tuple[ListenerMetrics, ...]]:
    backends: dict[str, dict[str, Any]] = {}
    listeners: dict[str, dict[str, Any]] = {}
    for conn in _connection.live_connections():
        server = server_label(conn.settings)
        state = conn.state
        b = backends.setdefault(
            server,
            {"connections": 0, "breaker": "closed", "failures": dict.fromkeys(FAILURE_KINDS, 0)}
            | dict.fromkeys(("short_circuits", "breaker_opens", "pool_waits"), 0),
        )
        b["connections"] += 1
        breaker = state.breaker.state
        if _WORST[breaker] > _WORST[b["breaker"]]:
            b["breaker"] = breaker
        for kind, count in state.failures.items():
            b["failures"][kind] += count
        b["short_circuits"] += state.short_circuits
        b["breaker_opens"] += state.breaker_opens
        b["pool_waits"] += state.pool_waits
        co = coherence_of(conn)
        if co is not None:
            entry = listeners.setdefault(
                server,
                {"modes": {}}
                | dict.fromkeys(
                    ("invalidations_received", "l1_flushes", "reconnects", "failing"), 0
                ),
            )
            entry["modes"][co.mode] = entry["modes"].get(co.mode, 0) + 1
            entry["invalidations_received"] += co.received
            entry["l1_flushes"] += co.flushes
            entry["reconnects"] += co.subscriber.connections
            entry["failing"] += co.subscriber.failures > 0
    return (
        tuple(BackendMetrics(server=s, **b) for s, b in sorted(backends.items())),
        tuple(ListenerMetrics(server=s, **e) for s, e in sorted(listeners.items())),
    )


def metrics_snapshot() -> MetricsSnapshot:
    """Every counter this process keeps, read now (cheap: no Redis call, no lock held long)."""
    backends, listeners = _servers()
    limits = totals("ratelimit")
    sessions = totals("session")
    return MetricsSnapshot(
        caches=_caches(),
        backends=backends,
        listeners=listeners,
        rate_limits=tuple(
            RateLimitMetrics(name=name, **counts) for (_, name), counts in sorted(limits.items())
        ),
        sessions=tuple(
            SessionMetrics(name=name, refresh_reuse_detected=c.pop("refresh_reuse"), **c)
            for (_, name), c in sorted(sessions.items())
        ),
    )


# -- the exporters' form -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Series:
    """One exported metric: Prometheus calls it ``arketic_cache_<name>`` (``_total`` added on
    counters), OpenTelemetry ``arketic_cache.<name>``; ``samples`` are (label values, value)."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    labels: tuple[str, ...]
    samples: tuple[tuple[tuple[str, ...], float], ...] = ()


#: Every series, without samples: what a collector describes before any scrape.
SERIES: tuple[Series, ...] = (
    Series("hits", "counter", "Cache lookups found, by level.", ("cache", "kind", "level")),
    Series("misses", "counter", "Cache lookups not found.", ("cache", "kind")),
    Series(
        "decode_errors", "counter", "Entries found unreadable (dropped, a miss).", ("cache", "kind")
    ),
    Series(
        "degraded_calls",
        "counter",
        "Calls that failed on Redis and returned the degraded default.",
        ("cache", "kind"),
    ),
    Series(
        "invalidations_sent",
        "counter",
        "@cached invalidate() calls that reached Redis.",
        ("cache", "kind"),
    ),
    Series("l1_entries", "gauge", "Entries held in L1.", ("cache", "kind")),
    Series("backend_failures", "counter", "Failed Redis calls, by kind.", ("server", "kind")),
    Series(
        "short_circuits", "counter", "Calls not sent: the circuit breaker was open.", ("server",)
    ),
    Series("circuit_breaker_opens", "counter", "Times a circuit breaker opened.", ("server",)),
    Series(
        "circuit_breaker_state",
        "gauge",
        "1 for the breaker's current state (the worst of the server's connections).",
        ("server", "state"),
    ),
    Series("pool_waits", "counter", "Calls that queued for a free pooled connection.", ("server",)),
    Series("connections", "gauge", "RedisConnection objects to the server.", ("server",)),
    Series(
        "invalidations_received",
        "counter",
        "L1 keys evicted on a report of another writer's change.",
        ("server",),
    ),
    Series(
        "l1_flushes",
        "counter",
        "Whole-L1 flushes (after a gap in coherence, or a flush of the database).",
        ("server",),
    ),
    Series(
        "listener_connections", "counter", "Invalidation listener connections opened.", ("server",)
    ),
    Series(
        "listeners",
        "gauge",
        "Invalidation listeners by mode (none: L1 entries live at most coherence_grace).",
        ("server", "mode"),
    ),
    Series(
        "ratelimit_decisions",
        "counter",
        "Rate-limit decisions by outcome (degraded, misconfigured: answered without Redis).",
        ("limiter", "outcome"),
    ),
    Series("session_events", "counter", "Session events.", ("manager", "event")),
)

_BREAKER_STATES = ("closed", "half-open", "open")
_LISTENER_MODES = ("tracking", "announce", "none")
_OUTCOMES = ("allowed", "denied", "degraded", "misconfigured")
_SESSION_EVENTS = tuple(f for f in SessionMetrics.__dataclass_fields__ if f != "name")


def series(snapshot: MetricsSnapshot) -> list[Series]:
    """The snapshot as exported series (every one of ``SERIES``, in that order)."""
    found: dict[str, list[tuple[tuple[str, ...], float]]] = {s.name: [] for s in SERIES}

    def add(name: str, value: float, *labels: str) -> None:
        found[name].append((labels, value))

    for c in snapshot.caches:
        if c.kind == "cached":  # only @cached has L1 (no sample that can only read 0)
            add("hits", c.l1_hits, c.name, c.kind, "l1")
            add("invalidations_sent", c.invalidations_sent, c.name, c.kind)
            add("l1_entries", c.l1_entries, c.name, c.kind)
        add("hits", c.l2_hits, c.name, c.kind, "l2")
        add("misses", c.misses, c.name, c.kind)
        add("decode_errors", c.decode_errors, c.name, c.kind)
        add("degraded_calls", c.errors, c.name, c.kind)
    for b in snapshot.backends:
        for kind, count in b.failures.items():
            add("backend_failures", count, b.server, kind)
        add("short_circuits", b.short_circuits, b.server)
        add("circuit_breaker_opens", b.breaker_opens, b.server)
        for state in _BREAKER_STATES:
            add("circuit_breaker_state", float(b.breaker == state), b.server, state)
        add("pool_waits", b.pool_waits, b.server)
        add("connections", b.connections, b.server)
    for li in snapshot.listeners:
        add("invalidations_received", li.invalidations_received, li.server)
        add("l1_flushes", li.l1_flushes, li.server)
        add("listener_connections", li.reconnects, li.server)
        for mode in _LISTENER_MODES:
            add("listeners", li.modes.get(mode, 0), li.server, mode)
    for r in snapshot.rate_limits:
        for outcome in _OUTCOMES:
            add("ratelimit_decisions", getattr(r, outcome), r.name, outcome)
    for sm in snapshot.sessions:
        for event in _SESSION_EVENTS:
            add("session_events", getattr(sm, event), sm.name, event)
    return [Series(s.name, s.kind, s.help, s.labels, tuple(found[s.name])) for s in SERIES]
