"""Structured events: stable dotted names, the reason for every decision, no secrets.

Every routing decision is emitted once, through structlog bound to the standard
``logging`` logger ``"payfallback"``, and to any listeners the Router was given (for
metrics and alerts). Like every library, payfallback is quiet by default: that logger has
a ``NullHandler``, so nothing is printed until the application configures logging, e.g.::

    import logging
    logging.basicConfig(level=logging.INFO)  # payfallback's events on stderr

(``logging.getLogger("payfallback").setLevel(logging.WARNING)`` keeps only the warnings:
unknown outcomes, reroutes, owed refunds, breakers opening.) structlog's own
configuration — its processors and renderer — still shapes each line. Fields are redacted
*before* they reach either: values of sensitive keys are replaced, :class:`SecretStr`
values are never unwrapped, and card-number-like digit runs are masked inside any string.
Bodies and headers are never part of an event.

:func:`redact_processor` is the same redaction as a structlog processor, for merchants
who want it on their own log lines too::

    structlog.configure(processors=[payfallback.events.redact_processor, ...])
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

import structlog
from pydantic import SecretBytes, SecretStr

__all__ = [
    "EVENT_NAMES",
    "Events",
    "Listener",
    "is_sensitive_key",
    "redact",
    "redact_processor",
    "scrub",
]

#: Every event name payfallback emits; names are stable across releases.
EVENT_NAMES = frozenset(
    {
        "payment.attempt",
        "payment.retry",
        "payment.succeeded",
        "payment.declined",
        "payment.failed",
        "payment.skipped",
        "payment.rerouted",
        "payment.unknown",
        "payment.resolved",
        "payment.duplicate",
        "payment.in_flight",
        "payment.compensating",
        "payment.late_charge",
        "checkout.started",
        "checkout.completed",
        "refund.requested",
        "refund.succeeded",
        "refund.owed",
        "refund.failed",
        "breaker.opened",
        "breaker.half_opened",
        "breaker.closed",
        "retry.budget_exhausted",
        "recover.finished",
        "storage.degraded",
        "storage.recovered",
        "listener.failed",
    }
)

Listener = Callable[[str, Mapping[str, Any]], None]

REDACTED = "[redacted]"

_SENSITIVE_KEY = re.compile(
    r"(secret|password|passwd|token|api[_-]?key|billing[_-]?key|authorization|card[_-]?number"
    r"|cardno|cvc|cvv|cookie|signature|credential|private"
    r"|(?:^|_)(?:auth|pan|sid|bid|key)(?:$|_))",
    re.IGNORECASE,
)
# Keys that contain a sensitive word but are not secret.
_SAFE_KEYS = frozenset({"provider_txn_id", "attempt_id", "order_id", "payment_id", "refund_id"})

# 13-19 digits, optionally split by spaces or dashes (PAN-shaped).
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Provider secret key shapes: Toss test_sk_/live_sk_, Stripe-like sk_, Standard Webhooks whsec_.
_KEYLIKE = re.compile(
    r"\b(?:(?:test_|live_)?(?:sk|gsk|ck|gck|whsec|bk)_[A-Za-z0-9+/=_-]{6,}"
    # PortOne V2 billing keys: billing-key-<uuid>.
    r"|billing-key-[A-Za-z0-9-]{8,})"
)
# An auth scheme followed by a credential: a token with a digit or a symbol of base64,
# or a long one — not the next word of a sentence ("PortOne declined the payment").
_AUTH = re.compile(
    r"\b(Basic|Bearer|KakaoAK|SECRET_KEY|PortOne)\s+"
    r"(?:(?=[A-Za-z0-9+/=._-]*[0-9+/=_.-])[A-Za-z0-9+/=._-]{6,}|[A-Za-z0-9+/=._-]{16,})"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def scrub(text: str) -> str:
    """Mask card numbers, key-shaped tokens and auth header values inside free text."""

    def _mask_pan(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            return f"[card ****{digits[-4:]}]"
        return m.group(0)

    text = _PAN.sub(_mask_pan, text)
    text = _KEYLIKE.sub(REDACTED, text)
    return _AUTH.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    # Field names repeat on every event: decide once per name.
    return key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) is not None


def is_sensitive_key(key: str) -> bool:
    """Whether a field or parameter of this name holds a secret (``pg_token``, ``authToken``,
    ``billingKey``, ``signature`` …); its value is never shown."""
    return _sensitive(key)


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if key in _SAFE_KEYS and isinstance(value, str):
        # Our own ids: a POS order id of date and time digits is not a card number.
        # (Secret values are still masked by value, by the Router's scrubber.)
        return value
    if _sensitive(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(key, v) for v in value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    return value


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``fields`` with every secret and card number masked."""
    return {k: _redact_value(k, v) for k, v in fields.items()}


def redact_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor applying :func:`redact` to every event."""
    event = event_dict.get("event")
    redacted = redact({k: v for k, v in event_dict.items() if k != "event"})
    if isinstance(event, str):
        redacted["event"] = scrub(event)
    return redacted


def _library_logger(name: str) -> logging.Logger:
    """The stdlib logger events go to, with a NullHandler: silent until the application
    configures logging (the convention for libraries in the logging HOWTO)."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


class Events:
    """Emits events to structlog and to listeners; one per Router (no module state)."""

    def __init__(self, listeners: Iterable[Listener] = (), *, logger_name: str = "payfallback"):
        self._listeners = tuple(listeners)
        self._std = _library_logger(logger_name)
        self._scrubber: Callable[[str], str] | None = None

    def _logger(self) -> Any:
        # Wrapped on every call (cheap) so structlog configuration changes, such as
        # structlog.testing.capture_logs, take effect; the output always goes to the stdlib
        # logger, never straight to stdout.
        return structlog.wrap_logger(self._std)

    def scrub_with(self, scrubber: Callable[[str], str]) -> None:
        """Also pass every string of every event through ``scrubber`` (the Router gives the
        secrets its providers declared, masked by value)."""
        self._scrubber = scrubber

    def _by_value(self, value: Any) -> Any:
        scrubber = self._scrubber
        if scrubber is None:
            return value
        if isinstance(value, str):
            return scrubber(value)
        if isinstance(value, Mapping):
            return {k: self._by_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._by_value(v) for v in value)
        return value

    def add_listener(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)

    def transition(self, name: str, fields: Mapping[str, object]) -> None:
        """Listener shape for breaker transitions: ``(name, fields)``."""
        self.emit(name, **fields)

    def emit(self, name: str, /, **fields: Any) -> None:
        if name not in EVENT_NAMES:  # a typo here would silently break dashboards
            raise ValueError(f"unknown event name {name!r}")
        clean = redact(fields)
        if self._scrubber is not None:
            clean = {k: self._by_value(v) for k, v in clean.items()}
        level = "warning" if name in _WARNINGS else "info"
        getattr(self._logger(), level)(name, **clean)
        for listener in self._listeners:
            try:
                listener(name, clean)
            except Exception as exc:  # a broken metrics hook must never break a payment
                self._logger().error(
                    "listener.failed",
                    listener=repr(listener),
                    error=self._by_value(scrub(repr(exc))),
                )


_WARNINGS = frozenset(
    {
        "payment.unknown",
        "payment.rerouted",
        "payment.compensating",
        "refund.owed",
        "refund.failed",
        "breaker.opened",
        "retry.budget_exhausted",
        "storage.degraded",
    }
)
