"""Metrics and tracing from payfallback's events: listeners for Prometheus and OpenTelemetry.

A metrics listener is an ordinary event listener (``listener(name, fields)``, see
``docs/events.md``) given to a Router::

    from payfallback.metrics.prometheus import PrometheusListener

    metrics = PrometheusListener()  # registers in prometheus_client's default registry
    router = payfallback.Router([...], listeners=[metrics])

Both listeners keep the same metrics (names below are Prometheus'; OpenTelemetry uses
dotted names, e.g. ``payfallback.breaker.state``):

========================================= ========== ==================================
metric                                    labels     meaning
========================================= ========== ==================================
``payfallback_breaker_state``             provider,  0 closed, 1 half open, 2 open (one
                                          method     series per breaker, from its first
                                                     transition in this process)
``payfallback_breaker_transitions_total`` provider,  transitions, by the state entered
                                          method,    (``closed``/``half_open``/``open``)
                                          state
``payfallback_attempts_total``            provider,  tries of money-moving requests, by
                                          method,    how each ended (see below)
                                          operation,
                                          outcome
``payfallback_attempt_duration_seconds``  provider,  seconds from ``payment.attempt`` to
                                          method,    the event that ended the try
                                          operation  (the charge latency)
``payfallback_unknown_resolved_total``    provider,  unknown outcomes settled by the
                                          result     provider's record (``paid``/``not_paid``)
``payfallback_refunds_owed``              provider   refunds journaled and not yet confirmed
``payfallback_refunds_owed_amount``       provider   their sum, in the minor unit (won)
``payfallback_state_store_degraded``      store,     1 while the shared breaker store is
                                          namespace  unreachable
========================================= ========== ==================================

``operation`` is ``charge`` (a billing-key charge) or ``approve`` (a checkout's return).
Each ``payment.attempt`` event starts a *try*; its ``outcome`` is one of :data:`OUTCOMES`:

- ``succeeded`` — ``payment.succeeded``;
- ``declined`` — ``payment.declined`` (no money moved);
- ``unknown`` — ``payment.unknown`` (may have been charged: resolved later, counted in
  ``payfallback_unknown_resolved_total``);
- ``retried`` — ``payment.retry`` (the provider was unavailable; the same attempt is sent
  again and that try is counted on its own);
- ``failed`` — ended without money moving for any other reason: unavailable with no retry
  left (``retry.budget_exhausted``), a configuration or invalid-request error. The core
  announces these only indirectly, so such a try is closed by the next event of its order:
  ``payment.rerouted`` or ``payment.skipped`` (sent right after it ended: timed), or a later
  ``payment.attempt`` of the order (not timed). A try never closed that way is dropped as
  ``failed``, without a duration, once ``max_open`` tries are open.

The refunds-owed gauges count what *this process* saw journaled as owed (``refund.requested``,
``payment.compensating``, ``refund.owed``) and not yet settled (``refund.succeeded``,
``refund.failed``); after a restart they fill again as ``recover()`` retries the owed
refunds. The journal stays the record (``payfallback status``).

One listener may serve several Routers (it is thread-safe); create one per registry or
meter provider. Importing :mod:`payfallback` never imports ``prometheus_client`` or
``opentelemetry``: only these listeners' modules do.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payfallback.metrics.otel import OpenTelemetryListener
    from payfallback.metrics.prometheus import PrometheusListener

__all__ = [
    "BREAKER_STATES",
    "DURATION_BUCKETS",
    "OUTCOMES",
    "EventMetrics",
    "OpenTelemetryListener",
    "PrometheusListener",
    "Try",
]

#: How each try of a money-moving request ended (the ``outcome`` label).
OUTCOMES = ("succeeded", "declined", "unknown", "retried", "failed")

#: Breaker state gauge values, by the event that enters the state.
BREAKER_STATES: Mapping[str, tuple[str, int]] = {
    "breaker.closed": ("closed", 0),
    "breaker.half_opened": ("half_open", 1),
    "breaker.opened": ("open", 2),
}

#: Histogram buckets (seconds) for the try duration: PG answers take 0.1-3 s, timeouts 10-30 s.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)

# Events that end the try of the attempt they name, and the outcome they mean.
_ENDS_BY_ATTEMPT = {
    "payment.succeeded": "succeeded",
    "payment.unknown": "unknown",
    "payment.retry": "retried",
    "retry.budget_exhausted": "failed",
    "payment.failed": "failed",
}


@dataclass(slots=True)
class Try:
    """One try in flight: from its ``payment.attempt`` event to the event that ends it."""

    attempt_id: str
    order_id: str
    provider: str
    method: str
    operation: str
    try_number: int
    started: float
    #: What a listener keeps with the try (the OpenTelemetry span).
    handle: Any = field(default=None)


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return "" if value is None else str(value)


class EventMetrics:
    """Turns events into metric updates; :class:`PrometheusListener` and
    :class:`OpenTelemetryListener` implement the ``_on_*`` hooks.

    ``timer`` is the monotonic clock tries are timed with (seconds); ``max_open`` bounds how
    many tries are remembered while in flight.
    """

    def __init__(
        self, *, timer: Callable[[], float] = time.perf_counter, max_open: int = 10_000
    ) -> None:
        self._timer = timer
        self._max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Try] = OrderedDict()
        self._by_order: dict[str, str] = {}  # order id -> its try in flight
        self._owed: dict[str, tuple[str, int]] = {}  # refund id -> (provider, amount)

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        if name in BREAKER_STATES:
            state, value = BREAKER_STATES[name]
            provider, method = _text(fields, "provider"), _text(fields, "method")
            self._on_breaker(provider, method, state, value)
        elif name == "payment.attempt":
            self._start(fields)
        elif name in _ENDS_BY_ATTEMPT:
            self._end(self._pop(_text(fields, "attempt_id")), _ENDS_BY_ATTEMPT[name])
        elif name == "payment.declined":
            self._end(self._pop_order(fields, "provider"), "declined")
        elif name == "payment.rerouted":
            self._end(self._pop_order(fields, "from_provider"), "failed")
        elif name == "payment.skipped":
            self._end(self._pop_order(fields, None), "failed")
        elif name == "payment.resolved":
            self._on_resolved(_text(fields, "provider"), _text(fields, "result"))
        elif name in ("refund.requested", "payment.compensating", "refund.owed"):
            self._refund_owed(fields)
        elif name in ("refund.succeeded", "refund.failed"):
            self._refund_done(_text(fields, "refund_id"))
        elif name in ("storage.degraded", "storage.recovered"):
            store, namespace = _text(fields, "store"), _text(fields, "namespace")
            self._on_storage(store, namespace, name == "storage.degraded")

    # -- tries -------------------------------------------------------------------------------

    def _start(self, fields: Mapping[str, Any]) -> None:
        now = self._timer()
        new = Try(
            attempt_id=_text(fields, "attempt_id"),
            order_id=_text(fields, "order_id"),
            provider=_text(fields, "provider"),
            method=_text(fields, "method"),
            operation=_text(fields, "operation"),
            try_number=int(fields.get("try_number") or 1),
            started=now,
        )
        dropped: list[Try] = []
        with self._lock:
            # A try still open for this order ended without an event of its own.
            earlier = self._by_order.get(new.order_id)
            ended = self._take(earlier) if earlier is not None else None
            ended = ended or self._take(new.attempt_id)
            self._open[new.attempt_id] = new
            self._by_order[new.order_id] = new.attempt_id
            while len(self._open) > self._max_open:
                dropped.append(self._take_oldest())
        # Their end was not seen when it happened: no duration for them.
        for old in ([ended] if ended is not None else []) + dropped:
            self._on_try_end(old, "failed", None)
        self._on_try_start(new)

    def _take(self, attempt_id: str) -> Try | None:
        """Forget a try in flight (call with the lock held)."""
        found = self._open.pop(attempt_id, None)
        if found is not None and self._by_order.get(found.order_id) == attempt_id:
            del self._by_order[found.order_id]
        return found

    def _take_oldest(self) -> Try:
        attempt_id = next(iter(self._open))
        found = self._take(attempt_id)
        assert found is not None
        return found

    def _pop(self, attempt_id: str) -> Try | None:
        with self._lock:
            return self._take(attempt_id)

    def _pop_order(self, fields: Mapping[str, Any], provider_key: str | None) -> Try | None:
        """The order's try in flight (at that provider, when the event names one)."""
        with self._lock:
            attempt_id = self._by_order.get(_text(fields, "order_id"))
            found = self._open.get(attempt_id) if attempt_id is not None else None
            if found is None:
                return None
            if provider_key is not None and found.provider != _text(fields, provider_key):
                return None
            return self._take(found.attempt_id)

    def _end(self, found: Try | None, outcome: str) -> None:
        if found is None:
            return  # not a try this listener saw start (a resolution, a recovery)
        self._on_try_end(found, outcome, max(0.0, self._timer() - found.started))

    # -- refunds -----------------------------------------------------------------------------

    def _refund_owed(self, fields: Mapping[str, Any]) -> None:
        refund_id, provider = _text(fields, "refund_id"), _text(fields, "provider")
        amount = fields.get("amount")
        with self._lock:
            known = self._owed.get(refund_id)
            if known is None:
                owed = amount if isinstance(amount, int) else 0
                self._owed[refund_id] = (provider, owed)
                change = (provider, 1, owed)
            elif isinstance(amount, int) and amount != known[1]:
                # payment.compensating carries no amount: the next refund.owed does.
                self._owed[refund_id] = (known[0], amount)
                change = (known[0], 0, amount - known[1])
            else:
                return
        self._on_refunds_owed(*change)

    def _refund_done(self, refund_id: str) -> None:
        with self._lock:
            known = self._owed.pop(refund_id, None)
        if known is not None:
            self._on_refunds_owed(known[0], -1, -known[1])

    # -- what a listener records -------------------------------------------------------------

    def _on_breaker(self, provider: str, method: str, state: str, value: int) -> None:
        """A breaker entered ``state`` (gauge ``value``)."""

    def _on_try_start(self, started: Try) -> None:
        """A try began (its ``payment.attempt`` event)."""

    def _on_try_end(self, ended: Try, outcome: str, duration: float | None) -> None:
        """A try ended; ``duration`` is None when its end was never seen."""

    def _on_resolved(self, provider: str, result: str) -> None:
        """An unknown outcome was settled (``paid`` or ``not_paid``)."""

    def _on_refunds_owed(self, provider: str, count: int, amount: int) -> None:
        """The refunds owed at ``provider`` changed by ``count`` refunds and ``amount``."""

    def _on_storage(self, store: str, namespace: str, degraded: bool) -> None:
        """The shared breaker state store became unreachable (or reachable again)."""


_LAZY = {
    "PrometheusListener": "payfallback.metrics.prometheus",
    "OpenTelemetryListener": "payfallback.metrics.otel",
}


def __getattr__(name: str) -> Any:
    # The listeners load their optional dependency only when asked for.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
