"""payfallback: keep selling when a payment provider goes down.

One provider-agnostic interface over Korean PG and wallet APIs, a circuit breaker per
(provider, method), safe retries, a durable journal and failover that never charges a
customer twice. Build a :class:`Router` (sync) or :class:`AsyncRouter` (async) with your
providers and your httpx client; everything else has embedded defaults.
"""

# What is exported, and from where. ``import payfallback`` loads none of it: each name is
# imported on first use (PEP 562), so a program that needs the Router pays for the Router,
# and one that imports ``payfallback.testing`` or ``payfallback.metrics`` alone pays for
# nothing else. Type checkers and editors read the imports below.
import typing as _typing

if _typing.TYPE_CHECKING:
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
        JournalUnavailable,
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

_EXPORTS: dict[str, str] = {
    "EVENT_NAMES": "payfallback.events",
    "AllProvidersUnavailable": "payfallback.errors",
    "AsyncRouter": "payfallback.router",
    "Attempt": "payfallback.models",
    "AttemptState": "payfallback.models",
    "BreakerPolicy": "payfallback.breaker",
    "BreakerSettings": "payfallback.breaker",
    "BreakerSnapshot": "payfallback.breaker",
    "BreakerState": "payfallback.breaker",
    "Capabilities": "payfallback.provider",
    "CheckoutSession": "payfallback.models",
    "Choice": "payfallback._core",
    "Clock": "payfallback._clock",
    "ConfigurationError": "payfallback.errors",
    "Declined": "payfallback.errors",
    "Flow": "payfallback.provider",
    "InFlight": "payfallback._core",
    "Instrument": "payfallback.models",
    "InvalidRequest": "payfallback.errors",
    "JournalUnavailable": "payfallback.errors",
    "LineItem": "payfallback.models",
    "MaintenanceWindow": "payfallback.breaker",
    "ManualClock": "payfallback._clock",
    "Method": "payfallback.models",
    "Money": "payfallback.models",
    "Order": "payfallback.models",
    "OutcomeUnknown": "payfallback.errors",
    "PayfallbackError": "payfallback.errors",
    "Payment": "payfallback.models",
    "PaymentStatus": "payfallback.models",
    "PeakWindow": "payfallback.breaker",
    "Platform": "payfallback.models",
    "Provider": "payfallback.provider",
    "ProviderUnavailable": "payfallback.errors",
    "RecoveryReport": "payfallback._core",
    "Refund": "payfallback.models",
    "RefundState": "payfallback.models",
    "RequestInFlight": "payfallback.errors",
    "RetryPolicy": "payfallback.retry",
    "ReturnUrls": "payfallback.models",
    "Router": "payfallback.router",
    "RouterOptions": "payfallback.router",
    "SystemClock": "payfallback._clock",
    "load_provider": "payfallback.provider",
    "redact_processor": "payfallback.events",
}

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
    "JournalUnavailable",
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


def __getattr__(name: str) -> _typing.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'payfallback' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
