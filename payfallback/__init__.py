"""payfallback: keep selling when a payment provider goes down.

One provider-agnostic interface over Korean PG and wallet APIs, a circuit breaker per
(provider, method), safe retries, a durable journal and failover that never charges a
customer twice. Build a :class:`Router` (sync) or :class:`AsyncRouter` (async) with your
providers and your httpx client; everything else has embedded defaults.
"""

from payfallback._clock import Clock, ManualClock, SystemClock
from payfallback._core import Choice, InFlight, RecoveryReport
from payfallback.breaker import (
    BreakerPolicy,
    BreakerSettings,
    BreakerSnapshot,
    BreakerState,
    MaintenanceWindow,
    PeakWindow,
)
from payfallback.errors import (
    AllProvidersUnavailable,
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.events import EVENT_NAMES, redact_processor
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Instrument,
    LineItem,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Platform,
    Refund,
    RefundState,
    ReturnUrls,
)
from payfallback.provider import Capabilities, Flow, Provider, load_provider
from payfallback.retry import RetryPolicy
from payfallback.router import AsyncRouter, Router, RouterOptions

__version__ = "0.1.0"

__all__ = [
    "EVENT_NAMES",
    "AllProvidersUnavailable",
    "AsyncRouter",
    "Attempt",
    "AttemptState",
    "BreakerPolicy",
    "BreakerSettings",
    "BreakerSnapshot",
    "BreakerState",
    "Capabilities",
    "CheckoutSession",
    "Choice",
    "Clock",
    "ConfigurationError",
    "Declined",
    "Flow",
    "InFlight",
    "Instrument",
    "InvalidRequest",
    "LineItem",
    "MaintenanceWindow",
    "ManualClock",
    "Method",
    "Money",
    "Order",
    "OutcomeUnknown",
    "PayfallbackError",
    "Payment",
    "PaymentStatus",
    "PeakWindow",
    "Platform",
    "Provider",
    "ProviderUnavailable",
    "RecoveryReport",
    "Refund",
    "RefundState",
    "RequestInFlight",
    "RetryPolicy",
    "ReturnUrls",
    "Router",
    "RouterOptions",
    "SystemClock",
    "load_provider",
    "redact_processor",
]
