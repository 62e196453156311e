"""The Prometheus collector: a scrape's text exposition, parsed back, shows every counter."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from arketic_cache import (
    ConfigurationError,
    RedisConnection,
    RedisRateLimiter,
    RedisSessionManager,
    SyncRedisCache,
    SyncRedisRateLimiter,
    SyncRedisSessionManager,
)
from arketic_cache import prometheus as arketic_prometheus
from arketic_cache.testing import free_port

from ..helpers import Flavor

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    mine = CollectorRegistry()
    arketic_prometheus.register(mine)
    yield mine
    arketic_prometheus.unregister(mine)


def scrape(registry: CollectorRegistry) -> Samples:
    """Every sample of a scrape, by name and labels (parsed from the text exposition)."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def test_cache_lookups_and_failures(flavor: Flavor, registry: CollectorRegistry) -> None:
    prefix = f"prom-{uuid.uuid4().hex[:8]}:"
    cache = flavor.cache(key_prefix=prefix)
    cache.set("a", 1)
    cache.get("a")
    cache.get("a")
    cache.get("b")
    samples = scrape(registry)
    labels = {"cache": prefix, "kind": "cache"}
    assert value(samples, "arketic_cache_hits_total", level="l2", **labels) == 2
    assert value(samples, "arketic_cache_misses_total", **labels) == 1
    assert value(samples, "arketic_cache_degraded_calls_total", **labels) == 0
    assert ("arketic_cache_hits_total", frozenset({**labels, "level": "l1"}.items())) not in (
        samples
    ), "RedisCache has no L1: no sample that can only read 0"


def test_backend_failures_breaker_and_no_password(registry: CollectorRegistry) -> None:
    port = free_port()
    conn = RedisConnection(url=f"redis://:hunter2@127.0.0.1:{port}/3")
    try:
        cache = SyncRedisCache(conn)
        for _ in range(4):
            cache.get("k")
        text = generate_latest(registry).decode()
        samples = scrape(registry)
    finally:
        conn.close_sync()
    server = f"127.0.0.1:{port}/3"
    assert value(samples, "arketic_cache_backend_failures_total", server=server, kind="unavailable")
    assert (
        value(samples, "arketic_cache_backend_failures_total", server=server, kind="timeout") == 0
    )
    assert value(samples, "arketic_cache_short_circuits_total", server=server) == 1
    assert value(samples, "arketic_cache_circuit_breaker_opens_total", server=server) == 1
    assert value(samples, "arketic_cache_circuit_breaker_state", server=server, state="open") == 1
    assert value(samples, "arketic_cache_circuit_breaker_state", server=server, state="closed") == 0
    assert "hunter2" not in text


def test_rate_limits_and_sessions(flavor: Flavor, registry: CollectorRegistry) -> None:
    prefix = f"prom-{uuid.uuid4().hex[:8]}:"
    conn = flavor.connection
    limiter = flavor.wrap(
        SyncRedisRateLimiter(connection=conn, key_prefix=prefix),
        RedisRateLimiter(connection=conn, key_prefix=prefix),
    )
    limiter.check("k", 1)
    limiter.check("k", 1)
    sessions = flavor.wrap(
        SyncRedisSessionManager(connection=conn, key_prefix=prefix),
        RedisSessionManager(connection=conn, key_prefix=prefix),
    )
    sessions.new_session({"user_id": "u"})
    samples = scrape(registry)
    decisions = "arketic_cache_ratelimit_decisions_total"
    assert value(samples, decisions, limiter=prefix, outcome="allowed") == 1
    assert value(samples, decisions, limiter=prefix, outcome="denied") == 1
    assert value(samples, decisions, limiter=prefix, outcome="degraded") == 0
    events = "arketic_cache_session_events_total"
    assert value(samples, events, manager=prefix, event="created") == 1
    assert value(samples, events, manager=prefix, event="refresh_reuse_detected") == 0


def test_every_name_follows_the_conventions(registry: CollectorRegistry) -> None:
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert families
    for family in families:
        assert family.name.startswith("arketic_cache_")
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
            assert not any(label in sample.labels for label in ("key", "user", "url"))


def test_nothing_is_registered_until_asked() -> None:
    importlib.reload(arketic_prometheus)
    assert b"arketic_cache_" not in generate_latest(REGISTRY)


def test_registering_twice_is_one_collector() -> None:
    mine = CollectorRegistry()
    first = arketic_prometheus.register(mine)
    try:
        assert arketic_prometheus.register(mine) is first
        assert generate_latest(mine).count(b"# TYPE arketic_cache_misses_total counter") == 1
    finally:
        arketic_prometheus.unregister(mine)
    assert b"arketic_cache_" not in generate_latest(mine)


def test_without_prometheus_client_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "arketic_cache.prometheus")
    with pytest.raises(ConfigurationError, match=r"arketic-cache\[prometheus\]"):
        importlib.import_module("arketic_cache.prometheus")
