"""OpenTelemetry metrics and one span per try (``pip install 'payfallback[otel]'``).

::

    from payfallback.metrics.otel import OpenTelemetryListener

    telemetry = OpenTelemetryListener()     # the global meter and tracer providers
    router = payfallback.Router([...], listeners=[telemetry])

Only the OpenTelemetry *API* is used: the application sets up the SDK and its exporters
(or passes ``meter_provider=`` / ``tracer_provider=``); without an SDK everything is a
no-op.

Metrics (the same as :mod:`payfallback.metrics.prometheus`, with dotted names):
``payfallback.breaker.state`` (gauge: 0 closed, 1 half open, 2 open),
``payfallback.breaker.transitions``, ``payfallback.attempts`` (by ``outcome``),
``payfallback.attempt.duration`` (histogram, seconds), ``payfallback.unknown.resolved``,
``payfallback.refunds.owed`` and ``payfallback.refunds.owed.amount`` (up-down counters),
``payfallback.state_store.degraded`` (gauge). Attributes are ``provider``, ``method``,
``operation``, ``outcome``, ``state``, ``result``, ``store`` and ``namespace``.

Spans: each try of a money-moving request is one span, named ``payfallback.charge`` or
``payfallback.approve``, of kind CLIENT, started at its ``payment.attempt`` event and ended
at the event that ends it (see :mod:`payfallback.metrics` for the outcomes). Its parent is
the span current where the Router was called. Attributes: ``payfallback.provider``,
``payfallback.method``, ``payfallback.operation``, ``payfallback.try_number``,
``payfallback.attempt_id`` (payfallback's own id, as in the journal) and
``payfallback.outcome``; the status is ERROR for ``unknown``, ``retried`` and ``failed``.
Never an amount, a key, a token or a provider's message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

try:
    from opentelemetry import metrics, trace
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "payfallback.metrics.otel needs opentelemetry-api: pip install 'payfallback[otel]'"
    ) from exc

from payfallback import __version__
from payfallback.metrics import DURATION_BUCKETS, EventMetrics, Try

__all__ = ["OpenTelemetryListener"]

_SCOPE = "payfallback"
_ERRORS = frozenset({"unknown", "retried", "failed"})


class OpenTelemetryListener(EventMetrics):
    """An event listener that records payfallback's metrics and a span per try through the
    OpenTelemetry API.

    ``meter_provider`` / ``tracer_provider`` default to the global ones; ``buckets`` advise
    the duration histogram's boundaries (seconds); ``timer`` times tries for the histogram.
    """

    def __init__(
        self,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        buckets: Sequence[float] = DURATION_BUCKETS,
        timer: Callable[[], float] = time.perf_counter,
        max_open: int = 10_000,
    ) -> None:
        super().__init__(timer=timer, max_open=max_open)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        self.breaker_state = meter.create_gauge(
            "payfallback.breaker.state", description="0 closed, 1 half open, 2 open"
        )
        self.breaker_transitions = meter.create_counter(
            "payfallback.breaker.transitions",
            unit="{transition}",
            description="Circuit breaker transitions, by the state entered",
        )
        self.attempts = meter.create_counter(
            "payfallback.attempts",
            unit="{try}",
            description="Tries of money-moving requests, by how each ended",
        )
        self.attempt_duration = meter.create_histogram(
            "payfallback.attempt.duration",
            unit="s",
            description="From a try's payment.attempt event to the event that ended it",
            explicit_bucket_boundaries_advisory=list(buckets),
        )
        self.unknown_resolved = meter.create_counter(
            "payfallback.unknown.resolved",
            unit="{attempt}",
            description="Unknown outcomes settled by the provider's record, by result",
        )
        self.refunds_owed = meter.create_up_down_counter(
            "payfallback.refunds.owed",
            unit="{refund}",
            description="Refunds journaled as owed and not yet confirmed by the provider",
        )
        self.refunds_owed_amount = meter.create_up_down_counter(
            "payfallback.refunds.owed.amount",
            description="Sum of the refunds owed, in the currency's minor unit (won)",
        )
        self.state_store_degraded = meter.create_gauge(
            "payfallback.state_store.degraded",
            description="1 while the shared breaker state store is unreachable",
        )

    def _on_breaker(self, provider: str, method: str, state: str, value: int) -> None:
        attributes = {"provider": provider, "method": method}
        self.breaker_state.set(value, attributes)
        self.breaker_transitions.add(1, {**attributes, "state": state})

    def _on_try_start(self, started: Try) -> None:
        started.handle = self._tracer.start_span(
            f"payfallback.{started.operation or 'attempt'}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "payfallback.provider": started.provider,
                "payfallback.method": started.method,
                "payfallback.operation": started.operation,
                "payfallback.try_number": started.try_number,
                "payfallback.attempt_id": started.attempt_id,
            },
        )

    def _on_try_end(self, ended: Try, outcome: str, duration: float | None) -> None:
        attributes = {
            "provider": ended.provider,
            "method": ended.method,
            "operation": ended.operation,
        }
        self.attempts.add(1, {**attributes, "outcome": outcome})
        if duration is not None:
            self.attempt_duration.record(duration, attributes)
        span = ended.handle
        if isinstance(span, trace.Span):
            span.set_attribute("payfallback.outcome", outcome)
            if outcome in _ERRORS:
                span.set_status(trace.Status(trace.StatusCode.ERROR, outcome))
            span.end()

    def _on_resolved(self, provider: str, result: str) -> None:
        self.unknown_resolved.add(1, {"provider": provider, "result": result})

    def _on_refunds_owed(self, provider: str, count: int, amount: int) -> None:
        self.refunds_owed.add(count, {"provider": provider})
        self.refunds_owed_amount.add(amount, {"provider": provider})

    def _on_storage(self, store: str, namespace: str, degraded: bool) -> None:
        attributes = {"store": store, "namespace": namespace}
        self.state_store_degraded.set(1 if degraded else 0, attributes)
