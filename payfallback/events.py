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

Every event — its name, level and fields — is listed once, in :data:`CATALOGUE`;
``docs/events.md`` is generated from it (:func:`catalogue_markdown`), and
:meth:`Events.emit` refuses a name or a field that is not there, so the two cannot drift.
Metrics listeners for Prometheus and OpenTelemetry are in :mod:`payfallback.metrics`.

:func:`redact_processor` is the same redaction as a structlog processor, for merchants
who want it on their own log lines too::

    structlog.configure(processors=[payfallback.events.redact_processor, ...])
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic import SecretBytes, SecretStr

__all__ = [
    "CATALOGUE",
    "EVENT_NAMES",
    "EventSpec",
    "Events",
    "Level",
    "Listener",
    "Only",
    "catalogue_markdown",
    "is_sensitive_key",
    "redact",
    "redact_processor",
    "scrub",
]


class Level(StrEnum):
    """How loud an event is: the stdlib logging level it is logged at."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_LEVELS = {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event of the catalogue: its name, level, meaning and the fields it may carry.

    ``fields`` maps each field name to a one-line meaning; an event carries a subset of
    them (some are present only in some cases, as the meaning says). ``reserved`` names an
    event kept for compatibility that this release does not emit.
    """

    name: str
    level: Level
    meaning: str
    fields: Mapping[str, str]
    reserved: bool = False
    allowed: frozenset[str] = field(init=False, repr=False, compare=False)
    #: The stdlib level number, and the name of the logger's method, for ``level``.
    level_no: int = field(init=False, repr=False, compare=False)
    log_method: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        object.__setattr__(self, "allowed", frozenset(self.fields))
        object.__setattr__(self, "level_no", _LEVELS[self.level])
        object.__setattr__(self, "log_method", self.level.value)


_ORDER = "the merchant's order id"
_ATTEMPT = "payfallback's id of the attempt (one per provider tried for an order)"
_PROVIDER = "the provider's name as configured (`toss`, `kakaopay` …)"
_METHOD = "the payment method (`card`, `kakaopay` …)"
_REASON = "why, in one sentence (provider text scrubbed)"
_CODE = "the provider's error code, if it gave one"
_REFUND = "payfallback's id of the refund"
_AMOUNT = "the amount in the currency's minor unit (won)"
_BREAKER = {"provider": _PROVIDER, "method": "the method the breaker guards (or `refund`)"}
_TRIPS = "how many times this breaker has opened in its trip memory"
_STORE = {"store": "the shared breaker state store (`redis`)", "namespace": "its key prefix"}

_SPECS = (
    EventSpec(
        "payment.attempt",
        Level.INFO,
        "A request that may move money is about to be sent (each try of an attempt).",
        {
            "order_id": _ORDER,
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "method": _METHOD,
            "operation": "`charge` (billing key) or `approve` (a checkout's return)",
            "try_number": "1 for the first try of this attempt, then 2, 3 …",
        },
    ),
    EventSpec(
        "payment.retry",
        Level.INFO,
        "The try failed before money could move; the same attempt is sent again after a wait.",
        {
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "wait": "seconds waited before the next try",
            "reason": _REASON,
        },
    ),
    EventSpec(
        "payment.succeeded",
        Level.INFO,
        "The provider approved the payment and it is journaled as the order's payment.",
        {
            "order_id": _ORDER,
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "method": _METHOD,
            "amount": _AMOUNT,
            "currency": "ISO 4217 code (`KRW`)",
        },
    ),
    EventSpec(
        "payment.declined",
        Level.INFO,
        "The provider refused the payment (card declined, limit, customer cancelled): "
        "no money moved and no other provider is tried.",
        {"order_id": _ORDER, "provider": _PROVIDER, "code": _CODE, "reason": _REASON},
    ),
    EventSpec(
        "payment.failed",
        Level.INFO,
        "An attempt ended with no money moved and no decline: the provider was unavailable "
        "and no retry was left, or it refused our request or configuration.",
        {
            "order_id": _ORDER,
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "method": _METHOD,
            "operation": "`charge` or `approve`",
            "reason": _REASON,
            "code": _CODE,
        },
    ),
    EventSpec(
        "payment.skipped",
        Level.INFO,
        "A provider was not tried because its breaker does not admit calls.",
        {"order_id": _ORDER, "provider": _PROVIDER, "method": _METHOD, "reason": _REASON},
    ),
    EventSpec(
        "payment.rerouted",
        Level.WARNING,
        "The order moves on from a provider that was skipped or failed (with `compensate=True`, "
        "also from an attempt of unknown outcome, which is refunded if it went through).",
        {
            "order_id": _ORDER,
            "from_provider": "the provider left behind",
            "to_provider": "the provider tried next (server charges only)",
            "reason": "why the provider left behind was skipped or failed (may be empty)",
        },
    ),
    EventSpec(
        "payment.unknown",
        Level.WARNING,
        "A request may have reached the provider and its outcome is not known yet; the "
        "attempt is journaled UNKNOWN and resolved before anything else is sent.",
        {
            "order_id": _ORDER,
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "reason": _REASON,
            "code": _CODE,
        },
    ),
    EventSpec(
        "payment.resolved",
        Level.INFO,
        "An unknown outcome was settled by the provider's own record.",
        {
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "result": "`paid` or `not_paid`",
        },
    ),
    EventSpec(
        "payment.duplicate",
        Level.INFO,
        "The order is already paid: its payment is returned and nothing is sent.",
        {
            "order_id": _ORDER,
            "payment_id": "payfallback's id of the existing payment",
            "provider": "the provider that was paid",
            "reason": _REASON,
        },
    ),
    EventSpec(
        "payment.in_flight",
        Level.INFO,
        "Another worker is paying this order right now: this call waits for its result.",
        {"order_id": _ORDER, "attempt_id": "the other worker's attempt (may be empty)"},
    ),
    EventSpec(
        "payment.compensating",
        Level.WARNING,
        "A charge that is not the order's payment (the order was paid elsewhere, or it "
        "appeared late) is being refunded; the refund was journaled first.",
        {
            "order_id": _ORDER,
            "attempt_id": _ATTEMPT,
            "provider": _PROVIDER,
            "refund_id": _REFUND,
            "reason": _REASON,
        },
    ),
    EventSpec(
        "payment.late_charge",
        Level.INFO,
        "An attempt that had ended failed turned out charged at the provider; a "
        "`payment.compensating` refund follows.",
        {"order_id": _ORDER, "attempt_id": _ATTEMPT, "provider": _PROVIDER, "amount": _AMOUNT},
    ),
    EventSpec(
        "checkout.started",
        Level.INFO,
        "A redirect checkout is ready: the customer is sent to the provider's page.",
        {
            "order_id": _ORDER,
            "session_id": "payfallback's id of the checkout session",
            "provider": _PROVIDER,
            "method": _METHOD,
            "fell_back": "true when an earlier provider or method was skipped or failed",
        },
    ),
    EventSpec(
        "checkout.completed",
        Level.INFO,
        "A checkout's return was approved and journaled as the order's payment.",
        {
            "order_id": _ORDER,
            "session_id": "payfallback's id of the checkout session",
            "provider": _PROVIDER,
        },
    ),
    EventSpec(
        "refund.requested",
        Level.INFO,
        "A refund was journaled as owed and is about to be sent.",
        {
            "refund_id": _REFUND,
            "payment_id": "payfallback's id of the payment refunded",
            "provider": _PROVIDER,
            "amount": _AMOUNT,
        },
    ),
    EventSpec(
        "refund.succeeded",
        Level.INFO,
        "The provider confirmed the refund; it is no longer owed.",
        {
            "refund_id": _REFUND,
            "provider": _PROVIDER,
            "amount": _AMOUNT,
            "kind": "`refund` (asked for) or `compensation` (a charge given back)",
        },
    ),
    EventSpec(
        "refund.owed",
        Level.WARNING,
        "The refund is not confirmed yet and stays owed; `recover()` sends it again.",
        {"refund_id": _REFUND, "provider": _PROVIDER, "amount": _AMOUNT, "reason": _REASON},
    ),
    EventSpec(
        "refund.failed",
        Level.WARNING,
        "The provider refused the refund for good (it is journaled FAILED with its reason).",
        {"refund_id": _REFUND, "provider": _PROVIDER, "reason": _REASON, "code": _CODE},
    ),
    EventSpec(
        "breaker.opened",
        Level.WARNING,
        "A breaker opened (or opened again): calls to the provider/method are skipped.",
        {
            **_BREAKER,
            "reason": "what tripped it (failure rate, slow calls, a hard failure …)",
            "open_seconds": "how long it stays open before a probe is let through",
            "trips": _TRIPS,
        },
    ),
    EventSpec(
        "breaker.half_opened",
        Level.INFO,
        "A breaker lets probe calls through to see whether the provider is back.",
        {**_BREAKER, "trips": _TRIPS},
    ),
    EventSpec(
        "breaker.closed",
        Level.INFO,
        "A breaker closed: the provider/method takes calls again.",
        {**_BREAKER, "trips": _TRIPS},
    ),
    EventSpec(
        "retry.budget_exhausted",
        Level.WARNING,
        "A retry was not sent because the Router's retry budget is spent (a retry storm "
        "is being held back).",
        {"provider": _PROVIDER, "attempt_id": _ATTEMPT},
    ),
    EventSpec(
        "recover.finished",
        Level.INFO,
        "`recover()` finished; each field counts what it found.",
        {
            "resolved": "unknown attempts settled",
            "paid": "of those, found paid",
            "compensations": "charges being given back",
            "refunds_settled": "owed refunds confirmed",
            "still_unresolved": "attempts still of unknown outcome",
            "refunds_still_owed": "refunds still owed",
            "in_flight": "attempts another worker is sending",
            "late_charges": "failed attempts found charged late",
        },
    ),
    EventSpec(
        "storage.degraded",
        Level.WARNING,
        "The shared breaker state store is unreachable: breakers run on local state.",
        {**_STORE, "error": "the error's class name only"},
    ),
    EventSpec(
        "storage.recovered",
        Level.INFO,
        "The shared breaker state store is reachable again and in use.",
        {**_STORE, "outage_seconds": "how long it was unreachable"},
    ),
    EventSpec(
        "listener.failed",
        Level.ERROR,
        "A listener raised; the payment went on (a metrics hook never breaks a payment). "
        "Logged only: listeners do not hear it.",
        {"listener": "the listener's repr", "error": "the exception, scrubbed"},
    ),
)

#: The event catalogue: every event payfallback emits, by name. Names are stable across
#: releases; :meth:`Events.emit` refuses a name or a field that is not here.
CATALOGUE: Mapping[str, EventSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})

#: Every event name payfallback emits (the catalogue's keys).
EVENT_NAMES = frozenset(CATALOGUE)


#: The shell command that writes ``docs/events.md`` from the catalogue.
REGENERATE = (
    "python -c 'import payfallback.events as e; print(e.catalogue_markdown(), end=\"\")' "
    "> docs/events.md"
)


def catalogue_markdown() -> str:
    """The catalogue as Markdown: the text of ``docs/events.md``.

    Regenerate that file with :data:`REGENERATE` (run from the repository root).
    """
    lines = [
        "# Events",
        "",
        f"<!-- Generated from payfallback/events.py; do not edit. Regenerate: {REGENERATE} -->",
        "",
        "Every event payfallback emits, with its level and fields. Events go to the standard",
        "`logging` logger `payfallback` (through structlog) and to each listener given to",
        "`Router(listeners=[...])` / `AsyncRouter(listeners=[...])` as `listener(name, fields)`.",
        "Secrets never appear in a field. An event carries a subset of its fields.",
        "",
        "| event | level | meaning |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{s.name}` | {s.level.value} | {s.meaning} |" for s in _SPECS]
    for spec in _SPECS:
        lines += ["", f"## `{spec.name}`", "", f"Level: **{spec.level.value}**. {spec.meaning}", ""]
        lines += [f"- `{name}`: {meaning}" for name, meaning in spec.fields.items()]
    return "\n".join(lines) + "\n"


Listener = Callable[[str, Mapping[str, Any]], None]


class Only:
    """A listener that hears only the events it names: the Router redacts and hands over
    an event only when someone listens for it. ``Only({"breaker.opened"}, on_open)``."""

    __slots__ = ("events", "listener")

    def __init__(self, events: Iterable[str], listener: Listener) -> None:
        self.events = frozenset(events)
        unknown = sorted(self.events - CATALOGUE.keys())
        if unknown:
            raise ValueError(f"unknown event name(s) {', '.join(unknown)}")
        self.listener = listener

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        self.listener(name, fields)

    def __repr__(self) -> str:
        return f"Only({sorted(self.events)!r}, {self.listener!r})"


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
# Not inside an id of letters and digits (a NICEPAY tid holds a run of digits, not a card).
_PAN = re.compile(r"(?<![0-9A-Za-z])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])")
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


def _mask_pan(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    if 13 <= len(digits) <= 19 and _luhn_ok(digits):
        return f"[card ****{digits[-4:]}]"
    return m.group(0)


def _mask_auth(m: re.Match[str]) -> str:
    return f"{m.group(1)} {REDACTED}"


# Any of the three shapes (kept as the definition :func:`shaped` answers for, and checked
# against it by the tests).
_ANY_SHAPE = re.compile("|".join(f"(?:{p.pattern})" for p in (_PAN, _KEYLIKE, _AUTH)))
#: The shortest text any of the three shapes matches ("sk_" and six characters): most
#: values an event or an answer carries ("paid", "KRW", "card") are shorter.
SHORTEST_SHAPE = 9


def unmasked_below(shortest: int) -> int:
    """The length under which a string holds nothing to mask: no shape, and no value of a
    mask whose shortest value is ``shortest`` characters long."""
    return min(max(shortest, 0), SHORTEST_SHAPE)


# What each shape cannot match without, cheaper to look for than the shape itself:
# a card number is a run of 13 or more digits, spaces and dashes from digit to digit; a
# key shape holds "_" or "billing-key-"; an auth value follows one of the schemes' names.
_PAN_RUN = re.compile(r"\d[\d -]{11,}\d")
# The same for ASCII text, where it finds what _PAN_RUN finds, sooner (\d is [0-9] there
# and needs no Unicode lookup for each character).
_PAN_RUN_ASCII = re.compile(r"[0-9][0-9 -]{11,}[0-9]")


def shaped(text: str) -> bool:
    """Whether ``text`` holds a card number, a key-shaped token or an auth header value
    (what :func:`scrub` masks besides declared values): one search of ``_ANY_SHAPE``
    answers the same, and this answers it with fewer, each shape looked for only where
    what it cannot match without is there. (Most texts, ids and dates, hold none.)"""
    if len(text) < SHORTEST_SHAPE:
        return False
    if ("_" in text or "billing-key-" in text) and _KEYLIKE.search(text) is not None:
        return True
    run = _PAN_RUN_ASCII if text.isascii() else _PAN_RUN
    if run.search(text) is not None and _PAN.search(text) is not None:
        return True
    return (
        "Basic" in text
        or "Bearer" in text
        or "KakaoAK" in text
        or "SECRET_KEY" in text
        or "PortOne" in text
    ) and _AUTH.search(text) is not None


def scrub(text: str, mask: Callable[[str], str] | None = None) -> str:
    """Mask card numbers, key-shaped tokens and auth header values inside free text; with
    ``mask`` (a by-value mask such as :meth:`Secrets.mask
    <payfallback.adapter.Secrets.mask>`), the declared values first. In that order:
    masking a value can end a card number's run (``…<secret>4111 1111 1111 1111``) where
    it began, and the number is then masked too."""
    if mask is not None:
        text = mask(text)
    if not shaped(text):
        return text
    text = _PAN.sub(_mask_pan, text)
    text = _KEYLIKE.sub(REDACTED, text)
    return _AUTH.sub(_mask_auth, text)


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    # Field names repeat on every event: decide once per name.
    return key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) is not None


def is_sensitive_key(key: str) -> bool:
    """Whether a field or parameter of this name holds a secret (``pg_token``, ``authToken``,
    ``billingKey``, ``signature`` …); its value is never shown."""
    return _sensitive(key)


#: Values an event shows as they are, unless their field is named like a secret (exact
#: types: a subclass may print anything).
_AS_IS = frozenset({int, float, bool, type(None)})
_MAPPINGS = (dict, Mapping)
_SEQUENCES = (list, tuple)
_SECRET_VALUES = (SecretStr, SecretBytes)


def _redact_value(
    key: str, value: Any, mask: Callable[[str], str] | None = None, short: int = 0
) -> Any:
    """``value`` as an event may show it under ``key``: secrets hidden, every string
    scrubbed (:func:`scrub`, with ``mask``) but for one shorter than ``short``, which can
    hold neither a shape nor a value ``mask`` masks."""
    kind = type(value)
    if kind is str or isinstance(value, str):
        if key in _SAFE_KEYS:
            # Our own ids: a POS order id of date and time digits is not a card number. A
            # declared value in one is still masked.
            return value if mask is None or len(value) < short else mask(value)
        if _sensitive(key):
            return REDACTED
        return value if len(value) < short else scrub(value, mask)
    if _sensitive(key) or isinstance(value, _SECRET_VALUES):
        return REDACTED
    if kind in _AS_IS:
        return value
    if isinstance(value, _MAPPINGS):
        return {str(k): _redact_value(str(k), v, mask, short) for k, v in value.items()}
    if isinstance(value, _SEQUENCES):
        return type(value)(_redact_value(key, v, mask, short) for v in value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}", mask)
    return value


def redact(fields: Mapping[str, Any], mask: Callable[[str], str] | None = None) -> dict[str, Any]:
    """A copy of ``fields`` with every secret and card number masked (and, with ``mask``,
    every declared value: see :func:`scrub`)."""
    return _redacted(fields, mask, 0 if mask is not None else SHORTEST_SHAPE)


def _redacted(
    fields: Mapping[str, Any], mask: Callable[[str], str] | None, short: int
) -> dict[str, Any]:
    return {k: _redact_value(k, v, mask, short) for k, v in fields.items()}


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
        #: Who listens to each event name, worked out once per name.
        self._heard_by: dict[str, tuple[Listener, ...]] = {}
        self._std = _library_logger(logger_name)
        self._mask: Callable[[str], str] | None = None
        #: Strings shorter than this hold nothing to mask (see scrub_with).
        self._short = SHORTEST_SHAPE
        self._wrapped: tuple[tuple[object, ...], Any] | None = None

    def _logger(self) -> Any:
        """The structlog logger over our stdlib logger, wrapped once per structlog
        configuration: a change such as ``structlog.testing.capture_logs`` takes effect at
        the next event, and between changes no event pays for wrapping."""
        # Imported on first use: structlog's dev renderer pulls in rich, which a till
        # program that only charges cards should not pay for at start-up.
        import structlog  # noqa: PLC0415

        config = structlog.get_config()
        key = (config["processors"], config["wrapper_class"], config["context_class"])
        cached = self._wrapped
        if cached is None or cached[0] != key:
            cached = self._wrapped = (key, structlog.wrap_logger(self._std))
        return cached[1]

    def _writes(self, level: int) -> bool:
        """Whether an event at ``level`` is written anywhere. Until the application
        configures structlog, our stdlib logger decides (nothing, by default, is written);
        once it has (its own processors, ``capture_logs``), every event goes to structlog,
        whose processors decide."""
        if self._std.isEnabledFor(level):
            return True
        structlog = sys.modules.get("structlog")
        return structlog is not None and bool(structlog.is_configured())

    def scrub_with(self, mask: Callable[[str], str], *, shortest: int = 0) -> None:
        """Also mask every string of every event with ``mask`` (the Router gives
        :meth:`Secrets.mask <payfallback.adapter.Secrets.mask>` of the secrets its
        providers declared): before card numbers and key shapes are, and in the ids that
        are not scrubbed by shape too. ``shortest``: the length of the shortest text
        ``mask`` can find anything in (:attr:`Secrets.shortest
        <payfallback.adapter.Secrets.shortest>`); a string shorter than it and than every
        shape is shown without a search."""
        self._mask = mask
        self._short = unmasked_below(shortest)

    def add_listener(self, listener: Listener) -> None:
        self._listeners = (*self._listeners, listener)
        self._heard_by = {}

    def _listeners_of(self, name: str) -> tuple[Listener, ...]:
        heard = self._heard_by.get(name)
        if heard is None:
            heard = tuple(
                listener
                for listener in self._listeners
                if not isinstance(listener, Only) or name in listener.events
            )
            self._heard_by[name] = heard
        return heard

    def transition(self, name: str, fields: Mapping[str, object]) -> None:
        """Listener shape for breaker transitions: ``(name, fields)``."""
        self.emit(name, **fields)

    def emit(self, name: str, /, **fields: Any) -> None:
        spec = CATALOGUE.get(name)
        if spec is None:  # a typo here would silently break dashboards
            raise ValueError(f"unknown event name {name!r}")
        if not fields.keys() <= spec.allowed:
            extra = ", ".join(sorted(fields.keys() - spec.allowed))
            raise ValueError(
                f"event {name!r} has no field {extra} in the catalogue "
                "(add it to payfallback/events.py and regenerate docs/events.md)"
            )
        # The level first: an event nobody reads (no listener, logging off) is not redacted,
        # formatted or handed to structlog at all.
        writes = self._writes(spec.level_no)
        listeners = self._listeners_of(name)
        if not writes and not listeners:
            return
        clean = _redacted(fields, self._mask, self._short)
        if writes:
            getattr(self._logger(), spec.log_method)(name, **clean)
        for listener in listeners:
            try:
                listener(name, clean)
            except Exception as exc:  # a broken metrics hook must never break a payment
                self._logger().error(
                    "listener.failed",
                    listener=repr(listener),
                    error=_redact_value("error", repr(exc), self._mask),
                )
