"""The counters as OpenTelemetry observable instruments, read by the SDK's in-memory reader."""

from __future__ import annotations

import ast
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from arketic_cache import _observed
from arketic_cache._metrics import SERIES, series
from arketic_cache._observed import observe

from ..helpers import Flavor, metric_points


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryMetricReader]:
    monkeypatch.setattr(_observed, "_FRESH", 0.0)  # every collection reads the counters anew
    mine = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[mine])
    observe(provider.get_meter("tests"))
    yield mine
    provider.shutdown()


def value(found: dict[str, list[Any]], name: str, **attributes: str) -> float:
    (point,) = [p for p in found[name] if dict(p.attributes) == attributes]
    return float(point.value)


def test_cache_counters_reach_the_reader(flavor: Flavor, reader: InMemoryMetricReader) -> None:
    prefix = f"otel-{uuid.uuid4().hex[:8]}:"
    cache = flavor.cache(key_prefix=prefix)
    cache.set("a", 1)
    cache.get("a")
    cache.get("b")
    found = metric_points(reader)
    labels = {"cache": prefix, "kind": "cache"}
    assert value(found, "arketic_cache.hits", level="l2", **labels) == 1
    assert value(found, "arketic_cache.misses", **labels) == 1
    cache.get("a")
    assert value(metric_points(reader), "arketic_cache.hits", level="l2", **labels) == 2


def test_every_series_is_an_instrument(flavor: Flavor, reader: InMemoryMetricReader) -> None:
    flavor.cache(key_prefix="otel-all:").get("k")
    found = metric_points(reader)
    expected = {f"arketic_cache.{s.name}" for s in SERIES}
    # a series with no sample yet (no listener, no @cached) has no data point to export
    assert {name for name in found} <= expected
    assert {"arketic_cache.hits", "arketic_cache.backend_failures"} <= set(found)


def test_one_snapshot_serves_a_whole_collection(
    flavor: Flavor, reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[int] = []
    real = series

    def counting(snapshot: Any) -> Any:
        taken.append(1)
        return real(snapshot)

    monkeypatch.setattr("arketic_cache._observed.series", counting)
    monkeypatch.setattr(_observed, "_FRESH", 60.0)
    flavor.cache(key_prefix="otel-once:").get("k")
    metric_points(reader)
    metric_points(reader)
    assert len(taken) == 1


def loaded_exporters(imports: str) -> list[str]:
    """The prometheus_client and opentelemetry modules loaded after ``imports``."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {imports}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'prometheus_client', 'opentelemetry'}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return ast.literal_eval(done.stdout.strip())  # type: ignore[no-any-return]


def test_the_package_imports_no_exporter() -> None:
    """prometheus_client loads only with ``arketic_cache.prometheus``; the package adds no
    opentelemetry module to those redis-py itself imports (when installed)."""
    assert loaded_exporters("redis, arketic_cache") == loaded_exporters("redis")
    assert not any(m.startswith("prometheus_client") for m in loaded_exporters("arketic_cache"))
