"""OpenTelemetry (extra ``otel``, the API only): a span and a duration histogram per Redis
flow, and every counter of ``metrics_snapshot()`` as an observable instrument.

    from arketic_cache.otel import instrument
    instrument()          # the global providers, or instrument(tracer_provider=..., ...)

redis-py's instrumentation never sees this library's commands (its drivers speak to their
connections directly), so the drivers report them here. Nothing happens until ``instrument()``;
until then the drivers' only cost is one check per flow.

Each flow that reaches Redis is one CLIENT span, named by its first command (``GET``,
``EVALSHA rate_limit``, ``PIPELINE``), with the database semantic conventions' attributes:
``db.system.name``, ``db.operation.name``, ``db.stored_procedure.name``,
``db.operation.batch.size``, ``db.namespace``, ``server.address``, ``server.port``, and on
failure ``error.type`` (timeout, unavailable, response, pool_exhausted, wrong_type) and
``db.response.status_code`` (the Redis error prefix). Keys, values and arguments never appear.
``arketic_cache.flow`` names the library operation (``get``, ``decide``...). A call the open
circuit breaker or a full pool kept from Redis has no span (``short_circuits`` and
``backend_failures`` count them). The histogram ``db.client.operation.duration`` (seconds)
carries the same attributes less the flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import _drive
from ._core._effects import Command, Effect, Eval, Flow, Operation, describe
from ._exceptions import BackendError, BackendResponseError, ConfigurationError

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, TracerProvider
except ImportError:  # pragma: no cover - exercised by a test that hides the package
    raise ConfigurationError(
        "arketic_cache.otel needs opentelemetry-api: pip install 'arketic-cache[otel]'"
    ) from None

from ._observed import observe

__all__ = ["instrument", "uninstrument"]

T = TypeVar("T")

#: Sub-millisecond local round trips up to timeouts of seconds.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)

_lock = threading.Lock()
_stop_observing: Callable[[], None] | None = None


#: What a span of one operation on one server starts with: its name, the span's attributes
#: and the histogram's (built once per operation and server, then reused).
_Shape = tuple[str, dict[str, Any], dict[str, Any]]


class _Tracing:
    """Wraps every flow in a ``_TracedFlow`` reporting to one tracer and histogram."""

    __slots__ = ("histogram", "shapes", "tracer")

    def __init__(self, tracer: Tracer, histogram: Histogram) -> None:
        self.tracer = tracer
        self.histogram = histogram
        self.shapes: dict[tuple[Any, ...], _Shape] = {}

    def wrap(self, flow: Flow[T], state: _drive.BackendState) -> Flow[T]:
        return _TracedFlow(flow, self, state)  # type: ignore[return-value]

    def shape(self, effect: Effect, endpoint: tuple[str, int | None, str]) -> _Shape:
        """The span name and attributes of ``effect`` on ``endpoint``."""
        if type(effect) is Command:
            key: tuple[Any, ...] = (endpoint, effect.args[0])
        elif type(effect) is Eval:
            key = (endpoint, effect.script)
        else:
            key = (endpoint, describe(effect))
        found = self.shapes.get(key)
        if found is None:
            if len(self.shapes) >= 1024:  # bounded: commands and scripts are few
                self.shapes.clear()
            found = self.shapes[key] = _new_shape(describe(effect), endpoint)
        return found


def _new_shape(op: Operation, endpoint: tuple[str, int | None, str]) -> _Shape:
    address, port, db = endpoint
    measured: dict[str, Any] = {
        "db.system.name": "redis",
        "db.operation.name": op.name,
        "db.namespace": db,
        "server.address": address,
    }
    if port is not None:
        measured["server.port"] = port
    if op.procedure is not None:
        measured["db.stored_procedure.name"] = op.procedure
    spanned = dict(measured)
    if op.batch_size is not None:
        spanned["db.operation.batch.size"] = op.batch_size
    return op.summary, spanned, measured


class _TracedFlow:
    """A flow, observed: the span starts at its first effect and ends with it."""

    __slots__ = ("_flow", "_measured", "_span", "_started", "_state", "_tracing")

    def __init__(self, flow: Flow[Any], tracing: _Tracing, state: _drive.BackendState) -> None:
        self._flow = flow
        self._tracing = tracing
        self._state = state
        self._span: Span | None = None
        self._started = 0.0
        self._measured: dict[str, Any] = {}

    def send(self, reply: Any) -> Effect:
        if self._span is None:
            effect = self._flow.send(reply)  # a flow without effects ends here, unobserved
            self._begin(effect)
            return effect
        try:
            return self._flow.send(reply)
        except StopIteration:
            self._end(None)
            raise
        except BaseException as exc:  # e.g. a SerializationError raised by the flow
            self._end(type(exc).__qualname__)
            raise

    def failed(self, error: BackendError) -> None:
        """The driver's report: the flow ends because Redis failed."""
        span = self._span
        if span is None:
            return
        if isinstance(error, BackendResponseError):
            span.set_attribute("db.response.status_code", _drive.error_code(error))
        self._end(_drive.kind_of(error))

    def close(self) -> None:
        self._flow.close()
        if self._span is not None:  # closed without a report: the caller went away
            self._end("cancelled")

    def _begin(self, effect: Effect) -> None:
        tracing = self._tracing
        name, spanned, self._measured = tracing.shape(effect, self._state.endpoint)
        span = self._span = tracing.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=spanned
        )
        span.set_attribute("arketic_cache.flow", getattr(self._flow, "__name__", "?"))
        self._started = time.perf_counter()

    def _end(self, error: str | None) -> None:
        span, self._span = self._span, None
        if span is None:
            return
        seconds = time.perf_counter() - self._started
        measured = self._measured
        if error is not None:
            measured = {**measured, "error.type": error}
            span.set_attribute("error.type", error)
            span.set_status(StatusCode.ERROR, error)
        span.end()
        self._tracing.histogram.record(seconds, measured)


def instrument(
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Trace every flow and export every counter (default providers: OpenTelemetry's global
    ones). Instrumenting again replaces the previous providers."""
    global _stop_observing
    from importlib.metadata import version

    release = version("arketic-cache")
    tracer = trace.get_tracer("arketic_cache", release, tracer_provider=tracer_provider)
    meter = metrics.get_meter("arketic_cache", release, meter_provider=meter_provider)
    histogram = meter.create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of the Redis operations of arketic_cache's flows.",
        explicit_bucket_boundaries_advisory=list(BUCKETS),
    )
    with _lock:
        if _stop_observing is not None:
            _stop_observing()
        _stop_observing = observe(meter)
        _drive.set_tracing(_Tracing(tracer, histogram))


def uninstrument() -> None:
    """Stop tracing, recording durations and observing the counters."""
    global _stop_observing
    with _lock:
        _drive.set_tracing(None)
        if _stop_observing is not None:
            _stop_observing()
            _stop_observing = None
