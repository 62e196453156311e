"""``arketic_cache.otel``: a span and a duration per Redis flow, read back from the SDK's
in-memory exporter and reader, on the embedded backend and on real servers (with faults)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from arketic_cache import (
    BackendTimeout,
    BackendUnavailable,
    ConfigurationError,
    RedisCache,
    RedisConnection,
    RedisRateLimiter,
    SyncRedisCache,
    SyncRedisRateLimiter,
    cached,
)
from arketic_cache.otel import instrument, uninstrument
from arketic_cache.testing import RedisServer

from ..cached.helpers import settle
from ..helpers import CONNECT_TIMEOUT, TIMEOUT, Flavor, metric_points, thaw_if_running


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """The data points of the metric ``name``, read now."""
        return metric_points(self.reader).get(name, [])

    def durations(self) -> list[Any]:
        """The data points of ``db.client.operation.duration``."""
        return self.points("db.client.operation.duration")


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Telemetry(spans, reader, tracer_provider)
    uninstrument()
    meter_provider.shutdown()
    tracer_provider.shutdown()


def where(conn: RedisConnection) -> dict[str, Any]:
    """The server attributes of every span on ``conn``."""
    address, port, db = conn.settings.endpoint
    found: dict[str, Any] = {"db.namespace": db, "server.address": address}
    if port is not None:
        found["server.port"] = port
    return found


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


class TestSpans:
    def test_get_and_set(self, flavor: Flavor, telemetry: Telemetry) -> None:
        cache = flavor.cache()
        cache.set("user:1", {"name": "Ada"})
        assert cache.get("user:1") == {"name": "Ada"}
        set_span, get_span = telemetry.finished()
        for span, command, flow in ((set_span, "SET", "set_value"), (get_span, "GET", "get")):
            assert span.name == command
            assert span.kind is SpanKind.CLIENT
            assert span.status.status_code is StatusCode.UNSET
            assert attributes(span) == {
                "db.system.name": "redis",
                "db.operation.name": command,
                "arketic_cache.flow": flow,
                **where(flavor.connection),
            }

    def test_a_transaction_is_one_span_with_its_size(
        self, flavor: Flavor, telemetry: Telemetry
    ) -> None:
        flavor.cache().set_many({"a": 1, "b": 2, "c": 3})
        (span,) = telemetry.finished()
        # On a cluster the keys' slots differ: a pipeline of three, split over the nodes.
        assert span.name == ("PIPELINE" if flavor.connection.cluster else "MULTI")
        assert attributes(span)["db.operation.batch.size"] == 3

    def test_a_rate_limit_decision_names_its_script(
        self, flavor: Flavor, telemetry: Telemetry
    ) -> None:
        conn = flavor.connection
        limiter = flavor.wrap(
            SyncRedisRateLimiter(connection=conn), RedisRateLimiter(connection=conn)
        )
        limiter.check("user:1", 5)
        (span,) = telemetry.finished()
        assert span.name == "EVALSHA rate_log"
        assert attributes(span)["db.stored_procedure.name"] == "rate_log"
        assert attributes(span)["arketic_cache.flow"] == "decide"

    def test_an_l1_hit_makes_no_span(self, flavor: Flavor, telemetry: Telemetry) -> None:
        namespace = f"traced-{uuid.uuid4().hex[:8]}"

        def double(x: int) -> int:
            return 2 * x

        fn = cached(namespace=namespace, connection=flavor.connection)(double)
        settle(fn)
        telemetry.spans.clear()
        assert fn(2) == 4  # L2 miss, computed, stored
        after_miss = telemetry.finished()
        assert after_miss, "the L2 read and write reached Redis"
        assert fn(2) == 4  # L1 hit
        assert telemetry.finished() == after_miss

    def test_the_caller_span_is_the_parent(self, flavor: Flavor, telemetry: Telemetry) -> None:
        tracer = telemetry.tracer_provider.get_tracer("app")
        conn = flavor.connection
        if flavor.name == "sync":
            with tracer.start_as_current_span("request") as request:
                SyncRedisCache(conn).get("k")
        else:

            async def handler() -> Any:  # the span is current in the task that awaits
                with tracer.start_as_current_span("request") as span:
                    await RedisCache(conn).get("k")
                return span

            request = flavor.runner.run(handler())
        redis_span, request_span = telemetry.finished()
        assert redis_span.parent is not None
        assert redis_span.parent.span_id == request.get_span_context().span_id
        assert request_span.name == "request"

    def test_one_duration_per_flow(self, flavor: Flavor, telemetry: Telemetry) -> None:
        cache = flavor.cache()
        for _ in range(3):
            cache.get("k")
        cache.set("k", 1)
        by_operation = {
            point.attributes["db.operation.name"]: point for point in telemetry.durations()
        }
        assert by_operation["GET"].count == 3
        assert by_operation["SET"].count == 1
        assert dict(by_operation["GET"].attributes) == {
            "db.system.name": "redis",
            "db.operation.name": "GET",
            **where(flavor.connection),
        }
        assert 0 < by_operation["GET"].sum < 3 * flavor.connection.settings.socket_timeout

    def test_nothing_before_instrument_or_after_uninstrument(self, flavor: Flavor) -> None:
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        cache = flavor.cache()
        cache.get("before")
        instrument(tracer_provider=provider, meter_provider=MeterProvider())
        cache.get("during")
        uninstrument()
        cache.get("after")
        assert [span.name for span in spans.get_finished_spans()] == ["GET"]

    def test_instrumenting_again_replaces(self, flavor: Flavor, telemetry: Telemetry) -> None:
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        instrument(tracer_provider=provider, meter_provider=MeterProvider())
        flavor.cache().get("k")
        assert [span.name for span in spans.get_finished_spans()] == ["GET"]
        assert telemetry.finished() == [], "the first providers no longer receive spans"

    def test_the_counters_are_observed_too(self, flavor: Flavor, telemetry: Telemetry) -> None:
        prefix = f"observed-{uuid.uuid4().hex[:8]}:"
        flavor.cache(key_prefix=prefix).get("k")
        misses = [
            point
            for point in telemetry.points("arketic_cache.misses")
            if point.attributes.get("cache") == prefix
        ]
        assert [point.value for point in misses] == [1]


class TestFailures:
    @pytest.fixture
    def conn(self, fresh_server: RedisServer) -> Iterator[RedisConnection]:
        connection = RedisConnection(
            url=fresh_server.url, socket_timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT
        )
        yield connection
        thaw_if_running(fresh_server)
        connection.close_sync()

    @pytest.mark.redis
    def test_a_killed_server(
        self, conn: RedisConnection, fresh_server: RedisServer, telemetry: Telemetry
    ) -> None:
        cache = SyncRedisCache(conn)
        assert cache.set("k", 1)
        fresh_server.kill()
        telemetry.spans.clear()
        assert cache.get("k") is None  # degraded: the span still says it failed
        with pytest.raises(BackendUnavailable):
            SyncRedisCache(conn, strict=True).get("k")
        degraded, strict = telemetry.finished()
        for span in (degraded, strict):
            assert span.status.status_code is StatusCode.ERROR
            assert attributes(span)["error.type"] == "unavailable"
        failed = [p for p in telemetry.durations() if p.attributes.get("error.type")]
        assert [p.count for p in failed] == [2]

    @pytest.mark.redis
    def test_a_frozen_server_times_out(
        self, conn: RedisConnection, fresh_server: RedisServer, telemetry: Telemetry
    ) -> None:
        cache = RedisCache(conn, strict=True)

        async def read() -> Any:
            return await cache.get("k")

        with asyncio.Runner() as runner:
            runner.run(cache.set("k", 1))
            fresh_server.freeze()
            with pytest.raises(BackendTimeout):
                runner.run(read())
            fresh_server.thaw()
            runner.run(conn.aclose())
        span = telemetry.finished()[-1]
        assert attributes(span)["error.type"] == "timeout"
        assert span.status.status_code is StatusCode.ERROR

    def test_wrong_type_names_the_redis_error(
        self, flavor: Flavor, raw: redis.Redis, telemetry: Telemetry
    ) -> None:
        raw.rpush("a-list", "x")
        assert flavor.cache().get("a-list") is None
        (span,) = telemetry.finished()
        assert attributes(span)["error.type"] == "wrong_type"
        assert attributes(span)["db.response.status_code"] == "WRONGTYPE"

    @pytest.mark.redis
    def test_an_open_breaker_makes_no_span(
        self, conn: RedisConnection, fresh_server: RedisServer, telemetry: Telemetry
    ) -> None:
        cache = SyncRedisCache(conn)
        fresh_server.kill()
        for _ in range(conn.settings.breaker_threshold):
            cache.get("k")
        assert conn.state.breaker.state == "open"
        telemetry.spans.clear()
        cache.get("k")
        assert telemetry.finished() == []
        assert conn.state.short_circuits == 1


@pytest.mark.redis
def test_no_key_value_or_password_in_any_span(
    redis_server: RedisServer, telemetry: Telemetry
) -> None:
    conn = RedisConnection(url=redis_server.url)
    try:
        cache = SyncRedisCache(conn, key_prefix="secret-prefix:")
        cache.set("secret-key", "secret-value")
        cache.get("secret-key")
        cache.set_many({"secret-a": "secret-b"})
        SyncRedisRateLimiter(connection=conn).check("secret-user", 3)
    finally:
        conn.close_sync()
    text = repr([(s.name, attributes(s), s.status.description) for s in telemetry.finished()])
    assert "EVALSHA" in text
    assert "secret" not in text
    assert redis_server.password not in text


def test_without_opentelemetry_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "arketic_cache.otel")
    with pytest.raises(ConfigurationError, match=r"arketic-cache\[otel\]"):
        importlib.import_module("arketic_cache.otel")
