"""Prometheus metrics from payfallback's events (``pip install 'payfallback[prometheus]'``).

::

    from prometheus_client import start_http_server
    from payfallback.metrics.prometheus import PrometheusListener

    metrics = PrometheusListener()          # or PrometheusListener(registry=my_registry)
    router = payfallback.Router([...], listeners=[metrics])
    start_http_server(9464)                 # or mount prometheus_client's ASGI/WSGI app

The metrics, their labels and how a try's ``outcome`` is decided are described in
:mod:`payfallback.metrics`. The breaker state gauge holds one value per breaker:
``0`` closed, ``1`` half open, ``2`` open. Label values are provider and method names,
operations and outcomes: never an order id, an amount or a secret.

Create one listener per registry (registering the same metric names twice in one registry
fails) and give it to every Router of the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "payfallback.metrics.prometheus needs prometheus-client: "
        "pip install 'payfallback[prometheus]'"
    ) from exc

from payfallback.metrics import DURATION_BUCKETS, EventMetrics, Try

__all__ = ["PrometheusListener"]


class PrometheusListener(EventMetrics):
    """An event listener that keeps payfallback's metrics in a Prometheus registry.

    ``registry`` defaults to prometheus_client's global ``REGISTRY``; ``buckets`` are the try
    duration histogram's (seconds); ``timer`` times tries (a monotonic clock, in seconds).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] = DURATION_BUCKETS,
        timer: Callable[[], float] = time.perf_counter,
        max_open: int = 10_000,
    ) -> None:
        super().__init__(timer=timer, max_open=max_open)
        reg = REGISTRY if registry is None else registry
        self.breaker_state = Gauge(
            "payfallback_breaker_state",
            "Circuit breaker state: 0 closed, 1 half open, 2 open.",
            ["provider", "method"],
            registry=reg,
        )
        self.breaker_transitions = Counter(
            "payfallback_breaker_transitions",
            "Circuit breaker transitions, by the state entered.",
            ["provider", "method", "state"],
            registry=reg,
        )
        self.attempts = Counter(
            "payfallback_attempts",
            "Tries of money-moving requests, by how each ended.",
            ["provider", "method", "operation", "outcome"],
            registry=reg,
        )
        self.attempt_duration = Histogram(
            "payfallback_attempt_duration_seconds",
            "Seconds from a try's payment.attempt event to the event that ended it.",
            ["provider", "method", "operation"],
            buckets=tuple(buckets),
            registry=reg,
        )
        self.unknown_resolved = Counter(
            "payfallback_unknown_resolved",
            "Unknown outcomes settled by the provider's record, by result.",
            ["provider", "result"],
            registry=reg,
        )
        self.refunds_owed = Gauge(
            "payfallback_refunds_owed",
            "Refunds journaled as owed and not yet confirmed by the provider.",
            ["provider"],
            registry=reg,
        )
        self.refunds_owed_amount = Gauge(
            "payfallback_refunds_owed_amount",
            "Sum of the refunds owed, in the currency's minor unit (won).",
            ["provider"],
            registry=reg,
        )
        self.state_store_degraded = Gauge(
            "payfallback_state_store_degraded",
            "1 while the shared breaker state store is unreachable.",
            ["store", "namespace"],
            registry=reg,
        )

    def _on_breaker(self, provider: str, method: str, state: str, value: int) -> None:
        self.breaker_state.labels(provider, method).set(value)
        self.breaker_transitions.labels(provider, method, state).inc()

    def _on_try_end(self, ended: Try, outcome: str, duration: float | None) -> None:
        labels = (ended.provider, ended.method, ended.operation)
        self.attempts.labels(*labels, outcome).inc()
        if duration is not None:
            self.attempt_duration.labels(*labels).observe(duration)

    def _on_resolved(self, provider: str, result: str) -> None:
        self.unknown_resolved.labels(provider, result).inc()

    def _on_refunds_owed(self, provider: str, count: int, amount: int) -> None:
        # Changes, not totals: they add up right whatever order threads report them in.
        self.refunds_owed.labels(provider).inc(count)
        self.refunds_owed_amount.labels(provider).inc(amount)

    def _on_storage(self, store: str, namespace: str, degraded: bool) -> None:
        self.state_store_degraded.labels(store, namespace).set(1 if degraded else 0)
