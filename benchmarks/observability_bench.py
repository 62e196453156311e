"""What observing the library costs: metrics and tracing, off against on, on the same calls.

Each benchmark's floor is the call with nothing installed; its other rows run the same call
with one exporter on, switched on and off around their own batch (outside the timed part), so
the rounds interleave as everywhere else. Rows:

- ``SyncRedisCache.get`` / ``RedisCache.get`` (a 1 KB hit) and an ``@cached`` L1 hit;
- Prometheus: the collector registered (it reads the counters at scrape time only, so a call
  pays nothing); a scrape's own cost is an info row;
- OpenTelemetry: ``instrument()`` with the SDK's TracerProvider (BatchSpanProcessor to an
  exporter that drops spans) and a MeterProvider whose reader collects on demand.

"Off adds nothing" is the other benchmarks' floor ratios: with nothing installed the drivers
pay one global check per flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from arketic_cache import RedisCache, SyncRedisCache, cached, prometheus
from arketic_cache._invalidation import coherence
from arketic_cache.otel import instrument, uninstrument
from arketic_cache.testing import RedisServer

from .cache_bench import one_kb_value
from .calls import IDS, cycling
from .clients import open_clients
from .timing import BatchRunner, Benchmark, Contender, Target, async_batch, sync_batch

__all__ = ["observability_benchmarks"]

PROMETHEUS_TARGET = Target(1.03, "ratio", "Prometheus collector registered vs nothing")
TRACING_TARGET = Target(1.10, "ratio", "OpenTelemetry on vs off, on a Redis call")
L1_TRACING_TARGET = Target(1.03, "ratio", "OpenTelemetry on vs off, on an @cached L1 hit")
KEY = "bench:observed:1k"


class _Dropping(SpanExporter):
    """Receives every span batch and keeps none (the exporting thread's work stays real)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Variant:
    """Switch one exporter on (``enter``) and off (``leave``) around a batch."""

    def __init__(self, enter: Callable[[], None], leave: Callable[[], None]) -> None:
        self.enter, self.leave = enter, leave

    def around(self, batch: BatchRunner) -> BatchRunner:
        async def run(n: int) -> int:
            self.enter()
            try:
                return await batch(n)
            finally:
                self.leave()

        return run


def _variants(stack: AsyncExitStack) -> tuple[dict[str, _Variant], TracerProvider, MeterProvider]:
    registry = CollectorRegistry()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    stack.callback(tracer_provider.shutdown)
    stack.callback(meter_provider.shutdown)
    variants = {
        "Prometheus collector registered": _Variant(
            lambda: (prometheus.register(registry), None)[1],
            lambda: prometheus.unregister(registry),
        ),
        "OpenTelemetry instrument()": _Variant(
            lambda: instrument(tracer_provider=tracer_provider, meter_provider=meter_provider),
            uninstrument,
        ),
    }
    return variants, tracer_provider, meter_provider


async def observability_benchmarks(
    server: RedisServer, calls: int, l1_calls: int, stack: AsyncExitStack
) -> tuple[list[Benchmark], list[str]]:
    """The off-versus-on rows; clients and providers are closed by ``stack``."""
    conn, raw, _ = open_clients(server.url, stack)
    value = one_kb_value()
    sync_cache, async_cache = SyncRedisCache(conn), RedisCache(conn)
    if not sync_cache.set(KEY, value, ttl=3600) or sync_cache.get(KEY) != value:
        raise RuntimeError("could not store the benchmark value")

    @cached(ttl=3600, connection=conn, namespace="bench-observed-l1")
    def profile(user_id: int) -> dict[str, Any]:
        return {"id": user_id}

    state = profile._state
    state.bind()
    if not coherence(conn).settle(state.l1, 10):  # its first subscription flushes L1
        raise RuntimeError("the invalidation listener did not subscribe")
    for user_id in IDS:
        profile(user_id)
    l1_hit = cycling(profile)
    before = profile.cache_info().l1_hits
    for _ in IDS:
        l1_hit()
    if profile.cache_info().l1_hits - before != len(IDS):
        raise RuntimeError("the @cached rows would not time L1 hits")

    variants, tracer_provider, meter_provider = _variants(stack)
    prom, otel = variants["Prometheus collector registered"], variants["OpenTelemetry instrument()"]

    def get() -> Any:
        return sync_cache.get(KEY)

    async def aget() -> Any:
        return await async_cache.get(KEY)

    def rows(name: str, batch: BatchRunner, variant: _Variant, target: Target, n: int) -> Benchmark:
        return Benchmark(
            name,
            n,
            [
                Contender("nothing installed", batch, "floor"),
                Contender(f"{name.split(',')[1].strip()}", variant.around(batch)),
            ],
            target,
        )

    registry = CollectorRegistry()
    prometheus.register(registry)
    stack.callback(prometheus.unregister, registry)

    def scrape() -> Any:
        return generate_latest(registry)

    tracer = tracer_provider.get_tracer("bench")
    durations = meter_provider.get_meter("bench").create_histogram("bench.duration", unit="s")
    shape: dict[str, Any] = {
        "db.system.name": "redis",
        "db.operation.name": "GET",
        "db.namespace": "0",
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }

    def sdk_alone() -> Any:
        span = tracer.start_span("GET", kind=SpanKind.CLIENT, attributes=shape)
        span.end()
        durations.record(0.0001, shape)

    def raw_get() -> Any:
        return raw.get(KEY)

    def raw_get_traced() -> Any:
        start = time.perf_counter()
        span = tracer.start_span("GET", kind=SpanKind.CLIENT, attributes=shape)
        found = raw.get(KEY)
        span.end()
        durations.record(time.perf_counter() - start, shape)
        return found

    sget, aget_ = sync_batch(get), async_batch(aget)
    benchmarks = [
        rows("SyncRedisCache.get, Prometheus registered", sget, prom, PROMETHEUS_TARGET, calls),
        rows("RedisCache.get, Prometheus registered", aget_, prom, PROMETHEUS_TARGET, calls),
        rows("SyncRedisCache.get, tracing on", sget, otel, TRACING_TARGET, calls),
        rows("RedisCache.get, tracing on", aget_, otel, TRACING_TARGET, calls),
        rows("@cached L1 hit, tracing on", sync_batch(l1_hit), otel, L1_TRACING_TARGET, l1_calls),
        Benchmark(
            "the OpenTelemetry SDK's own cost: one span and one duration",
            calls,
            [
                Contender("redis-py GET", sync_batch(raw_get), "floor"),
                Contender(
                    "redis-py GET in a bare SDK span + record", sync_batch(raw_get_traced), "info"
                ),
                Contender("the span + record alone, no Redis", sync_batch(sdk_alone), "info"),
            ],
        ),
        Benchmark(
            "one Prometheus scrape of every counter",
            20,
            [Contender("generate_latest(registry)", sync_batch(scrape), "info")],
        ),
    ]
    notes = [
        "observability: each floor is the same call with nothing installed; tracing exports "
        "through a BatchSpanProcessor to an exporter that drops the spans. The SDK's own row "
        "wraps a raw redis-py GET in the same span and histogram record by hand: the part of "
        "'tracing on' that no instrumentation can avoid"
    ]
    return benchmarks, notes
