"""Metrics and tracing listeners over real Routers: a Prometheus CollectorRegistry and
OpenTelemetry's in-memory metric reader and span exporter."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest

from payfallback import (
    AllProvidersUnavailable,
    BreakerState,
    Declined,
    ManualClock,
    Money,
    RefundState,
)
from payfallback.metrics import OUTCOMES, EventMetrics
from payfallback.metrics.otel import OpenTelemetryListener
from payfallback.metrics.prometheus import PrometheusListener
from payfallback.testing import FakeBank, FakeProvider, Fault, RouterHarness
from tests.conftest import MakeRouter
from tests.helpers import card, order

SECRET = "test_sk_zXLkKEypNArWmo50nX3lmeaxYG5R"
BILLING_KEY = "bk-ok-7f3a9c2e51d04b6aa1c0"


@pytest.fixture
def banks(clock: ManualClock) -> tuple[FakeBank, FakeBank]:
    toss = FakeBank("toss", clock=clock, secret=SECRET)
    nice = FakeBank("nice", clock=clock, secret=SECRET)
    # The fake banks advance the manual clock by their latency: tries take known times.
    toss.latency_fn = lambda op: 0.4
    nice.latency_fn = lambda op: 1.5
    return toss, nice


def make(
    make_router: MakeRouter, banks: tuple[FakeBank, FakeBank], listener: EventMetrics
) -> RouterHarness:
    return make_router(
        *banks,
        providers=[FakeProvider(b.name, secret=SECRET) for b in banks],
        listeners=[listener],
        compensate=True,
    )


# -- Prometheus ------------------------------------------------------------------------------


class Prom:
    """Reads one registry's samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def __call__(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def tries(self, provider: str, outcome: str, operation: str = "charge") -> float:
        return self(
            "payfallback_attempts_total",
            provider=provider,
            method="card",
            operation=operation,
            outcome=outcome,
        )


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def prom(registry: CollectorRegistry) -> Prom:
    return Prom(registry)


def test_prometheus_counts_tries_by_outcome_and_times_them(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    registry: CollectorRegistry,
    prom: Prom,
) -> None:
    toss, _ = banks
    router = make(make_router, banks, PrometheusListener(registry, timer=clock.monotonic))

    toss.retry_after = 1  # a 503 with Retry-After is retried on the same provider
    toss.fail_next("charge", Fault.UNAVAILABLE_503)
    assert router.charge(order("ORD-1"), [card("toss"), card("nice")]).provider == "toss"
    with pytest.raises(Declined):
        router.charge(order("ORD-2"), [card("toss", "bk-declined"), card("nice")])
    toss.fail_next("charge", Fault.MALFORMED)  # an answer that proves nothing: unknown
    router.charge(order("ORD-3"), [card("toss"), card("nice")])

    assert prom.tries("toss", "retried") == 1
    assert prom.tries("toss", "succeeded") == 1
    assert prom.tries("toss", "declined") == 1
    assert prom.tries("toss", "unknown") == 1
    assert prom.tries("nice", "failed") == 0
    # Every try was timed from payment.attempt to its end, on the banks' latency.
    labels = {"provider": "toss", "method": "card", "operation": "charge"}
    assert prom("payfallback_attempt_duration_seconds_count", **labels) == 4
    assert prom("payfallback_attempt_duration_seconds_sum", **labels) == pytest.approx(4 * 0.4)
    assert prom("payfallback_attempt_duration_seconds_bucket", **labels, le="0.25") == 0
    assert prom("payfallback_attempt_duration_seconds_bucket", **labels, le="0.5") == 4
    # Every try counted once, under one of the documented outcomes.
    text = generate_latest(registry).decode()
    for line in text.splitlines():
        if line.startswith("payfallback_attempts_total{"):
            assert any(f'outcome="{o}"' in line for o in OUTCOMES), line
    assert SECRET not in text
    assert BILLING_KEY not in text


def test_prometheus_tries_that_fail_over_are_failed_and_the_next_provider_counts(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    prom: Prom,
    registry: CollectorRegistry,
) -> None:
    toss, _ = banks
    router = make(make_router, banks, PrometheusListener(registry, timer=clock.monotonic))
    toss.refuse = True  # connection refused: certainly not charged, rerouted
    assert router.charge(order("ORD-1"), [card("toss"), card("nice")]).provider == "nice"
    assert prom.tries("toss", "failed") >= 1
    assert prom.tries("toss", "succeeded") == 0
    assert prom.tries("nice", "succeeded") == 1
    nice_labels = {"provider": "nice", "method": "card", "operation": "charge"}
    assert prom("payfallback_attempt_duration_seconds_sum", **nice_labels) == pytest.approx(1.5)


def test_prometheus_breaker_state_gauge_and_transitions(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    prom: Prom,
    registry: CollectorRegistry,
) -> None:
    toss, _ = banks
    router = make(make_router, banks, PrometheusListener(registry, timer=clock.monotonic))
    toss.refuse = True
    n = 0
    while not _breaker_is(router, "toss", BreakerState.OPEN):
        n += 1
        assert n < 20, "the breaker never opened"
        router.charge(order(f"ORD-{n}"), [card("toss"), card("nice")])
    breaker = {"provider": "toss", "method": "card"}
    assert prom("payfallback_breaker_state", **breaker) == 2
    assert prom("payfallback_breaker_transitions_total", **breaker, state="open") == 1
    # Skipped while open: nothing sent to toss, no try counted for it.
    failed_before = prom.tries("toss", "failed")
    router.charge(order("ORD-SKIP"), [card("toss"), card("nice")])
    assert prom.tries("toss", "failed") == failed_before

    # Toss comes back: the breaker half opens, the probes succeed, it closes.
    toss.refuse = False
    clock.advance(3600)
    while not _breaker_is(router, "toss", BreakerState.CLOSED):
        n += 1
        assert n < 40, "the breaker never closed"
        router.charge(order(f"ORD-{n}"), [card("toss"), card("nice")])
    assert prom("payfallback_breaker_state", **breaker) == 0
    assert prom("payfallback_breaker_transitions_total", **breaker, state="half_open") == 1
    assert prom("payfallback_breaker_transitions_total", **breaker, state="closed") == 1
    assert prom("payfallback_breaker_state", provider="nice", method="card") == 0


def _breaker_is(router: RouterHarness, provider: str, state: BreakerState) -> bool:
    return any(s.provider == provider and s.state == state for s in router.health())


def test_prometheus_refunds_owed_rise_and_fall_with_the_journal(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    prom: Prom,
    registry: CollectorRegistry,
) -> None:
    toss, _ = banks
    router = make(make_router, banks, PrometheusListener(registry, timer=clock.monotonic))
    payment = router.charge(order("ORD-1", amount=39_000), [card("toss")])
    toss.fail_next("cancel", Fault.UNAVAILABLE_503, times=20)
    refund = router.refund(payment.payment_id, amount=Money(amount=10_000))
    assert refund.state == RefundState.OWED
    assert prom("payfallback_refunds_owed", provider="toss") == 1
    assert prom("payfallback_refunds_owed_amount", provider="toss") == 10_000

    toss.clear_faults()
    report = router.recover()
    assert refund.refund_id in report.refunds_settled
    assert prom("payfallback_refunds_owed", provider="toss") == 0
    assert prom("payfallback_refunds_owed_amount", provider="toss") == 0


def test_prometheus_unknown_outcomes_resolved_by_the_provider(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    prom: Prom,
    registry: CollectorRegistry,
) -> None:
    toss, _ = banks
    router = make(make_router, banks, PrometheusListener(registry, timer=clock.monotonic))
    toss.fail_next("charge", Fault.LOST_RESPONSE)  # charged; the answer is lost
    payment = router.charge(order("ORD-1"), [card("toss"), card("nice")])
    assert payment.provider == "toss"
    assert prom.tries("toss", "unknown") == 1
    assert prom("payfallback_unknown_resolved_total", provider="toss", result="paid") == 1
    assert prom.tries("nice", "succeeded") == 0


def test_one_listener_serves_several_routers(
    make_router: MakeRouter,
    banks: tuple[FakeBank, FakeBank],
    clock: ManualClock,
    prom: Prom,
    registry: CollectorRegistry,
) -> None:
    listener = PrometheusListener(registry, timer=clock.monotonic)
    first, second = make(make_router, banks, listener), make(make_router, banks, listener)
    first.charge(order("ORD-1"), [card("toss")])
    second.charge(order("ORD-2"), [card("toss")])
    assert prom.tries("toss", "succeeded") == 2
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusListener(registry)  # one listener per registry


def test_tries_whose_end_is_never_seen_are_dropped_as_failed() -> None:
    registry = CollectorRegistry()
    listener = PrometheusListener(registry, max_open=2, timer=lambda: 0.0)
    for n in range(3):
        fields = {"order_id": f"O{n}", "attempt_id": f"A{n}", "provider": "toss"}
        listener("payment.attempt", {**fields, "method": "card", "operation": "approve"})
    prom = Prom(registry)
    assert prom.tries("toss", "failed", operation="approve") == 1
    labels = {"provider": "toss", "method": "card", "operation": "approve"}
    assert prom("payfallback_attempt_duration_seconds_count", **labels) == 0
    listener("payment.succeeded", {"attempt_id": "A2", "provider": "toss"})
    listener("payment.succeeded", {"attempt_id": "A0", "provider": "toss"})  # dropped
    assert prom.tries("toss", "succeeded", operation="approve") == 1
    # A later try of the same order closes one whose end was never announced, untimed.
    again = {"order_id": "O2", "attempt_id": "A3", "provider": "toss", "method": "card"}
    listener("payment.attempt", {**again, "operation": "approve"})
    listener("payment.attempt", {**again, "attempt_id": "A4", "operation": "approve"})
    assert prom.tries("toss", "failed", operation="approve") == 2
    assert prom("payfallback_attempt_duration_seconds_count", **labels) == 1


def test_the_state_store_gauge() -> None:
    registry = CollectorRegistry()
    listener = PrometheusListener(registry)
    where = {"store": "redis", "namespace": "pf"}
    listener("storage.degraded", {**where, "error": "ConnectionError"})
    assert Prom(registry)("payfallback_state_store_degraded", **where) == 1
    listener("storage.recovered", {**where, "outage_seconds": 3.0})
    assert Prom(registry)("payfallback_state_store_degraded", **where) == 0


# -- OpenTelemetry ---------------------------------------------------------------------------


class Otel:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(SimpleSpanProcessor(self.spans))

    def points(self, name: str) -> list[tuple[dict[str, object], object]]:
        """(attributes, data point) of every point of the metric ``name``."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            (dict(point.attributes or {}), point)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def point(self, name: str, **attributes: str) -> object:
        found = [p for a, p in self.points(name) if a == attributes]
        assert len(found) == 1, (name, attributes, self.points(name))
        return found[0]

    def number(self, name: str, **attributes: str) -> float:
        point = self.point(name, **attributes)
        assert isinstance(point, NumberDataPoint), point
        return point.value

    def histogram(self, name: str, **attributes: str) -> HistogramDataPoint:
        point = self.point(name, **attributes)
        assert isinstance(point, HistogramDataPoint), point
        return point

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


@pytest.fixture
def otel() -> Iterator[Otel]:
    made = Otel()
    yield made
    made.meters.shutdown()
    made.tracers.shutdown()


def test_otel_one_span_per_try_with_safe_attributes(
    make_router: MakeRouter, banks: tuple[FakeBank, FakeBank], clock: ManualClock, otel: Otel
) -> None:
    toss, _ = banks
    listener = OpenTelemetryListener(
        meter_provider=otel.meters, tracer_provider=otel.tracers, timer=clock.monotonic
    )
    router = make(make_router, banks, listener)
    toss.retry_after = 1
    toss.fail_next("charge", Fault.UNAVAILABLE_503)
    toss.fail_next("charge", Fault.MALFORMED)
    outer = otel.tracers.get_tracer("shop")
    with outer.start_as_current_span("checkout") as parent:
        router.charge(order("ORD-1", customer_ref=BILLING_KEY), [card("toss", BILLING_KEY)])
    spans = otel.finished()
    tries = [s for s in spans if s.name == "payfallback.charge"]
    assert [s.attributes["payfallback.outcome"] for s in tries if s.attributes] == [
        "retried",
        "unknown",
    ]
    for span in tries:
        attrs = dict(span.attributes or {})
        assert attrs["payfallback.provider"] == "toss"
        assert attrs["payfallback.method"] == "card"
        assert attrs["payfallback.operation"] == "charge"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.ERROR
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.end_time is not None
        everything = repr(attrs) + repr(span.events) + str(span.status.description)
        for secret in (SECRET, BILLING_KEY):
            assert secret not in everything
    assert [dict(s.attributes or {})["payfallback.try_number"] for s in tries] == [1, 2]


def test_otel_metrics_match_the_prometheus_ones(
    make_router: MakeRouter, banks: tuple[FakeBank, FakeBank], clock: ManualClock, otel: Otel
) -> None:
    toss, nice = banks
    listener = OpenTelemetryListener(
        meter_provider=otel.meters, tracer_provider=otel.tracers, timer=clock.monotonic
    )
    router = make(make_router, banks, listener)
    toss.refuse = True
    n = 0
    while not _breaker_is(router, "toss", BreakerState.OPEN):
        n += 1
        assert n < 20, "the breaker never opened"
        router.charge(order(f"ORD-{n}"), [card("toss"), card("nice")])
    breaker = {"provider": "toss", "method": "card"}
    assert otel.number("payfallback.breaker.state", **breaker) == 2
    assert otel.number("payfallback.breaker.transitions", **breaker, state="open") == 1
    nice_ok = {"provider": "nice", "method": "card", "operation": "charge"}
    assert otel.number("payfallback.attempts", **nice_ok, outcome="succeeded") == n
    assert (
        otel.number("payfallback.attempts", **nice_ok | {"provider": "toss"}, outcome="failed") >= 1
    )
    latency = otel.histogram("payfallback.attempt.duration", **nice_ok)
    assert latency.count == n
    assert latency.sum == pytest.approx(1.5 * n)
    spans = otel.finished()
    assert len([s for s in spans if dict(s.attributes or {}).get("payfallback.outcome")]) == len(
        spans
    )

    payment = router.charge(order("ORD-R"), [card("nice")])
    nice.fail_next("cancel", Fault.UNAVAILABLE_503, times=20)
    router.refund(payment.payment_id)
    assert otel.number("payfallback.refunds.owed", provider="nice") == 1
    assert otel.number("payfallback.refunds.owed.amount", provider="nice") == payment.amount.amount
    nice.clear_faults()
    router.recover()
    assert otel.number("payfallback.refunds.owed", provider="nice") == 0
    assert otel.number("payfallback.refunds.owed.amount", provider="nice") == 0


def test_otel_without_an_sdk_is_a_silent_no_op(
    make_router: MakeRouter, banks: tuple[FakeBank, FakeBank]
) -> None:
    router = make(make_router, banks, OpenTelemetryListener())
    toss, _ = banks
    toss.refuse = True
    with pytest.raises(AllProvidersUnavailable):
        router.charge(order("ORD-1"), [card("toss")])
    assert router.charge(order("ORD-2"), [card("nice")]).provider == "nice"


# -- optional dependencies -------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_payfallback_does_not_import_the_metrics_backends() -> None:
    done = _python(
        "import sys, payfallback, payfallback.metrics\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'opentelemetry'))\n"
        "print(loaded)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "backend", "extra"),
    [("prometheus", "prometheus_client", "prometheus"), ("otel", "opentelemetry", "otel")],
)
def test_a_missing_extra_names_the_install_command(module: str, backend: str, extra: str) -> None:
    done = _python(
        f"import sys; sys.modules[{backend!r}] = None\nimport payfallback.metrics.{module}\n"
    )
    assert done.returncode != 0
    assert f"pip install 'payfallback[{extra}]'" in done.stderr
