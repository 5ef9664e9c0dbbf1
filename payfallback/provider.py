"""The provider contract: what an adapter is, and the only things it may do.

An adapter is *sans-IO*. For each operation of ours it offers a pure ``build_<op>`` that
turns our request value into an :class:`httpx.Request`, and a pure ``parse_<op>`` that
turns the provider's :class:`httpx.Response` into an :data:`Outcome`. It never sends,
sleeps, retries, logs or keeps state between calls; the Router owns all of that, which is
why the :class:`~payfallback.AsyncRouter` and the :class:`~payfallback.Router` share
every line of adapter code and why adapter tests are about bytes, not timing.

Operations (``Operation``):

========  =======================================================  ============
op        what it does                                             moves money?
========  =======================================================  ============
ready     start a redirect/wallet checkout; returns redirect URLs  no
approve   confirm what the customer approved at the provider       yes
charge    server-side charge with a stored instrument (billing)    yes
lookup    status inquiry by provider txn id, or by our attempt id  no
cancel    full or partial cancel/refund of a paid transaction      yes
void      undo an approval of unknown outcome within a short       yes
          window (NICEPAY net cancel); optional
========  =======================================================  ============

Transport errors never reach an adapter: :func:`classify_transport_error` decides, in one
place for every provider, whether the request certainly was not sent
(:class:`httpx.ConnectError`, :class:`httpx.ConnectTimeout`, :class:`httpx.PoolTimeout`
→ ``ProviderUnavailable``, unless an aiohttp error chained under it was raised after the
connection was had: :func:`payfallback.transports.cause_says_sent`) or may have been
(:class:`httpx.ReadTimeout`,
:class:`httpx.WriteTimeout`, :class:`httpx.RemoteProtocolError`, anything else →
``OutcomeUnknown`` on a money-moving call). Adapters classify what the provider *said*:
every documented status and error code maps to one outcome, and an unmapped code on a
money-moving call is ``OutcomeUnknown``, never success. :func:`classify_http_status` is
the fallback for bodies that carry no code the adapter knows.

``build_<op>`` may raise :class:`~payfallback.errors.InvalidRequest` (or
``ConfigurationError``) for input the provider would reject, and ``Declined`` when the
return-URL parameters already say the customer cancelled or failed authentication;
nothing is sent then.

Adapters are found by name through the ``payfallback.providers`` entry-point group
(:func:`load_provider`); a provider distribution registers one line::

    [project.entry-points."payfallback.providers"]
    tosspayments = "payfallback_tosspayments:TossPayments"
"""

from __future__ import annotations

import email.utils
import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import httpx

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import (
    Instrument,
    Method,
    Money,
    Order,
    Platform,
    Receipt,
    RefundReceipt,
    ReturnUrls,
)
from payfallback.transports import cause_says_sent

__all__ = [
    "MONEY_MOVING",
    "ApproveRequest",
    "Approved",
    "CancelRequest",
    "Cancelled",
    "Capabilities",
    "ChargeRequest",
    "Failed",
    "Flow",
    "LookupRequest",
    "Operation",
    "Outcome",
    "Proof",
    "Provider",
    "ReadyRequest",
    "Redirect",
    "Status",
    "TxnState",
    "VoidRequest",
    "classify_http_status",
    "classify_transport_error",
    "installed_providers",
    "load_provider",
    "parse_retry_after",
]

ENTRY_POINT_GROUP = "payfallback.providers"

#: Where the adapters are listed: the Providers section of the README.
ADAPTERS_URL = "https://github.com/payfallback/payfallback#providers"


class Operation(StrEnum):
    READY = "ready"
    APPROVE = "approve"
    CHARGE = "charge"
    LOOKUP = "lookup"
    CANCEL = "cancel"
    VOID = "void"


#: Operations after which a lost answer means money may have moved.
MONEY_MOVING = frozenset({Operation.APPROVE, Operation.CHARGE, Operation.CANCEL, Operation.VOID})


class Flow(StrEnum):
    REDIRECT = "redirect"  # ready → customer approves at the provider → approve
    SERVER_CHARGE = "server_charge"  # charge with a stored instrument, no customer present


class Proof(StrEnum):
    """Positive proof that an attempt which may have reached the provider moved no money.

    Only these end such an attempt ``FAILED``; a return URL's failure parameters, or one
    "not found" right after a timeout, never do (the provider may still be committing it).
    Strongest first.
    """

    #: Replaying the same request with the same idempotency key answers with the first
    #: request's outcome (or runs it, once): Toss Payments, PortOne.
    REPLAY = "replay"
    #: An acknowledged void / net cancel undoes whatever the request did (NICEPAY).
    VOID = "void"
    #: The provider's record of the transaction says it failed or was never completed.
    RECORD = "record"
    #: "Not found" once the provider's documented settle window has passed since the
    #: request last left.
    NOT_FOUND_AFTER_SETTLE = "not_found_after_settle"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; the Router plans retries and recovery from this."""

    methods: frozenset[Method]
    flows: frozenset[Flow]
    #: ``lookup`` works with only our attempt id (no provider txn id yet). Without it, an
    #: unknown outcome before we learned the provider's id cannot be resolved, so the
    #: Router never reroutes past it, even with compensation on.
    lookup_by_order_id: bool = False
    #: Header that makes a POST idempotent at the provider (``Idempotency-Key``), if any.
    idempotency_header: str | None = None
    #: How long the provider keeps idempotency keys; replays after that are not safe.
    idempotency_retention: timedelta | None = None
    idempotency_key_max_length: int = 64
    partial_cancel: bool = True
    #: How long after an approval ``void`` can undo it (NICEPAY net cancel: 1 hour).
    void_window: timedelta | None = None
    currencies: frozenset[str] = frozenset({"KRW"})
    #: Read timeout the provider documents for money-moving calls (Naver Pay apply: 60 s);
    #: lookups and ``ready`` keep the breaker policy's own, shorter one.
    read_timeout: float | None = None
    #: Return-URL parameter that carries the provider's transaction id when ``ready`` is
    #: client-side (Toss ``paymentKey``, Naver Pay ``paymentId``, NICEPAY ``tid``); the
    #: Router uses it to look the approval up if its answer is lost.
    callback_txn_id_param: str | None = None
    #: How long after a request may have reached the provider it can still commit it:
    #: a lookup answering "not found" is proof that nothing moved only once this much time
    #: has passed since the request last left. None: "not found" is never proof (the
    #: attempt stays unknown until a replay, a void or the provider's own record proves
    #: it). Cite the provider's documentation for the value in the adapter.
    settle_window: timedelta | None = None
    #: Whether a lookup's record of a failed/abandoned transaction (``NOT_PAID``) is final.
    #: False where the customer can pay again on the same provider id after a failure
    #: (PortOne lets a paymentId be retried until it is paid).
    failed_record_is_final: bool = True

    @property
    def proofs(self) -> tuple[Proof, ...]:
        """The proofs this provider offers that an attempt moved no money, strongest first."""
        out: list[Proof] = []
        if self.idempotency_header is not None:
            out.append(Proof.REPLAY)
        if self.void_window is not None:
            out.append(Proof.VOID)
        if self.failed_record_is_final:
            out.append(Proof.RECORD)
        if self.settle_window is not None:
            out.append(Proof.NOT_FOUND_AFTER_SETTLE)
        return tuple(out)


# -- what the Router hands an adapter --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyRequest:
    attempt_id: str
    order: Order
    method: Method
    return_urls: ReturnUrls
    idempotency_key: str
    platform: Platform = Platform.PC


@dataclass(frozen=True, slots=True)
class ApproveRequest:
    attempt_id: str
    order: Order
    method: Method
    #: The id ``ready`` returned (Kakao ``tid``); None where ready is client-side (Toss).
    provider_txn_id: str | None
    #: Query or form parameters the provider sent to the return URL (``pg_token``, …).
    callback_params: Mapping[str, str]
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    attempt_id: str
    order: Order
    instrument: Instrument
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class LookupRequest:
    attempt_id: str
    order: Order
    provider_txn_id: str | None
    #: When the attempt was made (NICEPAY's order-id inquiry needs the date).
    attempted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CancelRequest:
    refund_id: str
    attempt_id: str
    order: Order
    provider_txn_id: str
    amount: Money
    #: Cancellable amount before this cancel (Kakao ``cancel_available_amount``).
    expected_remaining: int
    reason: str
    idempotency_key: str
    #: The tax-free (면세) part of ``amount``; adapters send it where the provider has the
    #: field (Toss ``taxFreeAmount``, NICEPAY ``taxFreeAmt``, PortOne ``taxFreeAmount``).
    #: The Router computes it (see ``Router.refund``).
    tax_free_amount: int = 0


@dataclass(frozen=True, slots=True)
class VoidRequest:
    attempt_id: str
    order: Order
    provider_txn_id: str | None
    amount: Money
    idempotency_key: str
    #: The attempt's method, for providers whose net cancel depends on it.
    method: Method | None = None
    #: When the void undoes an approval this process just sent and lost the answer of: the
    #: return's parameters that approval carried (a net cancel may need its one-time token,
    #: KG Inicis ``authToken``). Never journaled: a void sent later (``recover()``) has
    #: none, and an adapter that needs them cannot void then.
    callback_params: Mapping[str, str] = field(default_factory=dict)


# -- what an adapter hands back --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redirect:
    """``ready`` succeeded: where to send the customer."""

    provider_txn_id: str | None
    redirect_urls: Mapping[Platform, str]
    client_params: Mapping[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Approved:
    """Money moved: ``approve`` or ``charge`` succeeded for ``amount``."""

    provider_txn_id: str
    amount: Money
    approved_at: datetime | None = None
    provider_status: str | None = None
    #: What the till prints, mapped from the provider's answer.
    receipt: Receipt | None = None
    #: The provider's answer as parsed (the Router masks secrets and card numbers in it
    #: before it is kept with the payment; it is left out of ``repr``).
    answer: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Cancelled:
    """``cancel`` or ``void`` succeeded; ``remaining`` is what is still cancellable."""

    provider_txn_id: str
    amount: Money
    remaining: int | None = None
    #: The provider accepted the cancel but has not finished it (PortOne ``REQUESTED``).
    settled: bool = True
    #: What the provider reported about the cancel, mapped from its answer.
    receipt: RefundReceipt | None = None
    #: The provider's answer as parsed (masked by the Router before it is kept; it is left
    #: out of ``repr``).
    answer: Mapping[str, Any] | None = field(default=None, repr=False)


class TxnState(StrEnum):
    """What a status inquiry learned about a transaction."""

    PAID = "paid"  # approved and (at least partly) not cancelled
    CANCELLED = "cancelled"  # fully cancelled
    NOT_PAID = "not_paid"  # failed, abandoned, declined: certainly no money moved
    NOT_FOUND = "not_found"  # the provider has no such transaction: nothing moved
    IN_PROGRESS = "in_progress"  # still being processed; ask again later
    AWAITING_CUSTOMER = "awaiting_customer"  # ready done, the customer has not approved yet


@dataclass(frozen=True, slots=True)
class Status:
    """Answer of ``lookup``."""

    state: TxnState
    provider_txn_id: str | None = None
    amount: Money | None = None
    cancelled: int = 0
    provider_status: str | None = None
    #: For a paid payment: what the till prints, where the lookup's answer says it.
    receipt: Receipt | None = None
    #: The provider's answer as parsed (masked by the Router before it is kept; it is left
    #: out of ``repr``).
    answer: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Failed:
    """The operation did not succeed; ``error`` says whether the provider could have acted.

    A decline is a value here, not an exception: the breaker never sees it, and only the
    Router's public edge raises it.
    """

    error: PayfallbackError


Outcome = Redirect | Approved | Cancelled | Status | Failed


@runtime_checkable
class Provider(Protocol):
    """A provider adapter: pure build/parse per operation, plus what it can do.

    ``name`` is the entry-point name (``"kakaopay"``); the Router keys breakers, events and
    journal rows by it. Adapters that lack an operation raise ``NotImplementedError`` from
    its ``build_`` function, naming it; the Router never calls an operation the
    capabilities rule out.
    """

    name: str
    capabilities: Capabilities

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """Request for ``ready``; ``None`` when the checkout starts client-side."""
        ...

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome: ...

    def build_approve(self, req: ApproveRequest) -> httpx.Request: ...

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome: ...

    def build_charge(self, req: ChargeRequest) -> httpx.Request: ...

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome: ...

    def build_lookup(self, req: LookupRequest) -> httpx.Request: ...

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome: ...

    def build_cancel(self, req: CancelRequest) -> httpx.Request: ...

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome: ...

    def build_void(self, req: VoidRequest) -> httpx.Request: ...

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome: ...


# -- central classification ------------------------------------------------------------------

_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def may_have_left(exc: httpx.TransportError) -> bool:
    """Whether the request may have reached the provider when ``exc`` was raised: every
    error but a failure to get a connection. The name is believed only when nothing chained
    under it says otherwise: a transport can call a reset after the request was read
    "ConnectTimeout" (httpx-aiohttp's map)."""
    return not isinstance(exc, _NEVER_SENT) or cause_says_sent(exc)


def classify_transport_error(
    exc: httpx.TransportError, *, provider: str, operation: Operation, attempt_id: str
) -> PayfallbackError:
    """Whether a transport error means "never sent" or "may have been sent"."""
    kind = type(exc).__name__
    error_type: type[PayfallbackError]
    if not may_have_left(exc):
        error_type, text = ProviderUnavailable, f"{kind}: the request was not sent"
    elif operation not in MONEY_MOVING:
        error_type, text = ProviderUnavailable, f"{kind} on a read-only {operation.value}"
    else:
        # ReadTimeout, WriteTimeout, RemoteProtocolError, ReadError, WriteError, ProxyError…:
        # the bytes may have reached the provider.
        error_type, text = OutcomeUnknown, f"{kind} after the request may have been sent"
    return error_type(text, provider=provider, operation=operation.value, attempt_id=attempt_id)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), capped at 1 h."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(delta, 3600.0))


def classify_http_status(
    response: httpx.Response,
    *,
    provider: str,
    operation: Operation,
    attempt_id: str,
    provider_code: str | None = None,
    message: str | None = None,
    request_id: str | None = None,
) -> PayfallbackError:
    """Fallback classification by HTTP status, for answers no code table explains.

    429 and 503 are "not processed, come back later" (``Retry-After`` honoured); other
    5xx on a money-moving call may have acted; 401/403 are configuration; other 4xx are
    invalid requests. Adapters call this only after their own code table had nothing.
    """
    status = response.status_code
    where: dict[str, Any] = {
        "provider": provider,
        "operation": operation.value,
        "attempt_id": attempt_id,
        "provider_code": provider_code,
        "provider_request_id": request_id or _request_id(response),
    }
    text = f"HTTP {status}" + (f": {message}" if message else "")
    if status in (429, 503):
        return ProviderUnavailable(
            text, retry_after=parse_retry_after(response.headers.get("retry-after")), **where
        )
    if status >= 500:
        if operation in MONEY_MOVING:
            return OutcomeUnknown(text, **where)
        return ProviderUnavailable(text, **where)
    if status in (401, 403):
        return ConfigurationError(f"{text}; check the provider credentials", **where)
    if 400 <= status < 500:
        return InvalidRequest(text, **where)
    if operation in MONEY_MOVING:
        return OutcomeUnknown(f"unexpected {text}", **where)
    return ProviderUnavailable(f"unexpected {text}", **where)


def _request_id(response: httpx.Response) -> str | None:
    # Generic names only: an adapter passes its provider's own header (AdapterKit).
    for header in ("x-request-id", "x-trace-id"):
        if value := response.headers.get(header):
            return str(value)
    return None


def is_failure_of_provider(error: PayfallbackError) -> bool:
    """Whether an error counts against the provider's health in its breaker.

    Declines and our own invalid requests never do; unavailability, unknown outcomes
    (the provider failed to answer) and configuration errors do.
    """
    return isinstance(error, ProviderUnavailable | OutcomeUnknown | ConfigurationError) and not (
        isinstance(error, Declined | InvalidRequest)
    )


# -- discovery --------------------------------------------------------------------------------


def installed_providers() -> dict[str, str]:
    """Installed adapters by entry-point name, with the object each one points at."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def unknown_provider(name: str) -> ConfigurationError:
    """The error for a provider name no installed adapter registers: the installed ones,
    and where the adapters are listed (never a guessed package name)."""
    names = ", ".join(sorted(installed_providers())) or "none"
    return ConfigurationError(
        f"no payment provider named {name!r} is installed (installed: {names}); "
        f"the adapters and how to install them are listed at {ADAPTERS_URL}"
    )


def load_provider(name: str, /, **settings: Any) -> Provider:
    """Build the adapter registered as ``name`` with its settings (credentials, …).

    Raises :class:`ConfigurationError` naming the installed providers when ``name`` is
    unknown.
    """
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise unknown_provider(name)
    factory = matches[0].load()
    try:
        inspect.signature(factory).bind(**settings)
    except TypeError as exc:  # names the setting, never its value
        accepted = ", ".join(inspect.signature(factory).parameters)
        raise ConfigurationError(
            f"provider {name!r}: {exc}; it takes: {accepted}", provider=name
        ) from None
    provider = factory(**settings)
    if not isinstance(provider, Provider):
        raise ConfigurationError(
            f"entry point {name!r} ({matches[0].value}) did not build a payfallback Provider"
        )
    return provider
