"""The decision core: every routing, retry, lookup and compensation decision, written once.

Each Router operation is a generator ("flow") that yields I/O *actions* and receives their
results, like httpx's ``Auth.auth_flow`` or tenacity's ``iter()``:

* :class:`Send` — send this request to this provider; the driver answers with a
  :class:`Sent` (the response or the transport error, and how long it took);
* :class:`Sleep` — wait this many seconds;
* :class:`JournalCall` — run this function against the journal (the async driver runs it
  in a worker thread); an exception it raises is thrown back into the flow.

The :class:`~payfallback.AsyncRouter` and the :class:`~payfallback.Router` only carry
actions out (``payfallback/router.py``), so sync and async behave identically by
construction. Breakers, the retry budget, events and the clock are in-memory and never
block, so the flow calls them directly.

The money rules live here:

1. An attempt is journaled (``PENDING``) before its request is built and sent.
2. Only ``ProviderUnavailable`` (certainly not taken effect) is retried or rerouted.
3. ``OutcomeUnknown`` is resolved by status inquiry (and, where the provider keys requests
   by an idempotency header, by replaying the same request with the same key). Until it
   is resolved the order goes nowhere else — unless the merchant opted in to *reroute
   with compensation* and the provider can be asked about the attempt later; then the
   attempt stays journaled as ``UNKNOWN`` and :meth:`Core.recover` refunds it if it turns
   out to have succeeded.
4. An order's payment is recorded under a database constraint; a second success becomes
   ``SUPERSEDED`` and a compensation refund is journaled before it is sent.
5. A refund is journaled ``OWED`` before its cancel is sent and stays owed until the
   provider confirms it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, TypeVar

import httpx
from pydantic import SecretStr

from payfallback._clock import Clock
from payfallback.adapter import Secrets
from payfallback.breaker import Admission, BreakerRegistry, CircuitBreaker
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
from payfallback.events import Events, is_sensitive_key
from payfallback.journal import (
    AttemptInFlight,
    AttemptsOpen,
    OrderAlreadyPaid,
    TxnAlreadyRecorded,
)
from payfallback.journal._checks import check_same_order
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Instrument,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Platform,
    Refund,
    RefundState,
    ReturnUrls,
    check_text,
)
from payfallback.provider import (
    MONEY_MOVING,
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Operation,
    Outcome,
    Proof,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    classify_transport_error,
    is_failure_of_provider,
)
from payfallback.retry import RetryBudget, RetryPolicy

T = TypeVar("T")

# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    provider: Provider
    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sent:
    result: httpx.Response | httpx.TransportError
    duration: float


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class JournalCall:
    """One journal method, by name, and its arguments. A driver carries it out: the sync
    Router calls it, the AsyncRouter awaits it on an async journal or runs it in a worker
    thread on a sync one."""

    operation: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def call(self, journal: object) -> Any:
        return getattr(journal, self.operation)(*self.args, **self.kwargs)


Action = Send | Sleep | JournalCall
FlowGen = Generator[Action, Any, T]


def _journal(operation: str, /, *args: Any, **kwargs: Any) -> FlowGen[Any]:
    """Ask the journal: ``yield from _journal("get_order", order_id)``."""
    return (yield JournalCall(operation, args, kwargs))


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's result."""

    value: T


def advance(flow: FlowGen[T], value: Any, error: BaseException | None) -> Action | Done[T]:
    """Step ``flow`` with the answer to its last action (or the error it raised): its next
    action, or :class:`Done` with its result. Both drivers step flows through this one
    function, so they cannot differ in how a flow is resumed."""
    try:
        return flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as stop:
        return Done(stop.value)


def _sleep(seconds: float) -> FlowGen[None]:
    if seconds > 0:
        yield Sleep(seconds)


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """A provider that can take ``method`` now."""

    provider: str
    method: Method


@dataclass(frozen=True, slots=True)
class InFlight:
    """An attempt another worker (or a process that died) holds until ``lease_until``: its
    request may be at the provider right now, so nothing can be said of it before then."""

    attempt_id: str
    order_id: str
    provider: str
    lease_until: datetime | None


@dataclass(slots=True)
class RecoveryReport:
    """What :meth:`Router.recover` settled and what is still open.

    ``clean`` is True only when nothing is open: no attempt of unknown outcome, no refund
    owed, and no attempt in flight (a lease still live after a crash is *not* clean: the
    killed worker's request may have charged; call ``recover()`` again after
    ``in_flight[i].lease_until``).
    """

    resolved: list[str] = field(default_factory=list)  # attempt ids settled either way
    paid: list[str] = field(default_factory=list)  # attempt ids that turned out paid
    compensations: list[str] = field(default_factory=list)  # refund ids journaled
    refunds_settled: list[str] = field(default_factory=list)
    still_unresolved: list[str] = field(default_factory=list)
    refunds_still_owed: list[str] = field(default_factory=list)
    in_flight: list[InFlight] = field(default_factory=list)
    #: Attempts that had ended failed and turned out charged after all (refund journaled).
    late_charges: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.still_unresolved and not self.refunds_still_owed and not self.in_flight


@dataclass(frozen=True, slots=True)
class _Resolution:
    """Result of resolving an unknown outcome: paid, certainly not paid, or still unknown."""

    state: str  # "paid" | "not_paid" | "unknown"
    approved: Approved | None = None
    error: PayfallbackError | None = None


_OPEN_CHECKOUT = frozenset({AttemptState.REDIRECTED, AttemptState.PENDING, AttemptState.UNKNOWN})
_NOTHING_MOVED = frozenset(
    {TxnState.NOT_PAID, TxnState.NOT_FOUND, TxnState.CANCELLED, TxnState.AWAITING_CUSTOMER}
)

_PAID = "paid"
_NOT_PAID = "not_paid"
_UNKNOWN = "unknown"


def _raise_configuration(tried: Sequence[PayfallbackError], skipped: Mapping[str, str]) -> None:
    """When every provider tried was refused for our configuration, say that, not "down"."""
    if (
        tried
        and len(tried) == len(skipped)
        and all(isinstance(e, ConfigurationError) for e in tried)
    ):
        first = tried[0]
        raise ConfigurationError(
            "every provider refused our configuration: "
            + "; ".join(f"{p}: {why}" for p, why in skipped.items()),
            **first.context(),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class CoreConfig:
    """Behaviour switches of a Router (see ``Router.__init__`` for the meaning of each)."""

    compensate: bool = False
    fallback_methods: Mapping[Method, Sequence[Method]] = field(default_factory=dict)
    lease_seconds: float = 120.0
    #: How long ``recover()`` keeps looking for a late charge on an attempt that ended
    #: failed after its request may have reached the provider.
    recheck_window: timedelta = timedelta(days=1)


def _require_order(order: object) -> None:
    if not isinstance(order, Order):
        raise InvalidRequest(
            f"expected an Order(order_id=..., amount=Money(...), name=...), got "
            f"{type(order).__name__}"
        )


def _secrets_of(provider: Provider) -> Secrets:
    """What an adapter declared as secret (``provider.secrets``), as one :class:`Secrets`."""
    declared = getattr(provider, "secrets", None)
    if declared is None:
        return Secrets()
    if isinstance(declared, Secrets):
        return declared
    if isinstance(declared, str | bytes):
        return Secrets(declared)
    if isinstance(declared, Iterable):
        return Secrets(*declared)
    return Secrets(declared)


#: Secret values of one request, as given (a :class:`Secrets` is built from them only when
#: an error has to be scrubbed: the happy path compiles nothing).
RequestSecrets = tuple[SecretStr | str, ...]


def _request_secrets(req: object) -> RequestSecrets:
    """The secrets a request carries that the adapter could not declare up front: the
    instrument's billing key, one-time tokens in the return URL's parameters."""
    if isinstance(req, ChargeRequest):
        return (req.instrument.billing_key,)
    if isinstance(req, ApproveRequest):
        return tuple(v for k, v in req.callback_params.items() if is_sensitive_key(k))
    return ()


_REQUEST_KEY_MAX = 255


def _paid_charge(outcome: Outcome | None, txn_id: str | None) -> Approved | None:
    """The charge a lookup found paid (with its transaction id), or None."""
    if not (isinstance(outcome, Status) and outcome.state == TxnState.PAID and outcome.amount):
        return None
    txn = outcome.provider_txn_id or txn_id
    if not txn:
        return None
    return Approved(
        provider_txn_id=txn, amount=outcome.amount, provider_status=outcome.provider_status
    )


def _method(value: object, what: str) -> Method:
    """A Method from a Method or its string value ("card"), or InvalidRequest listing them."""
    if isinstance(value, Method):
        return value
    if isinstance(value, str):
        try:
            return Method(value)
        except ValueError:
            pass
    names = ", ".join(m.value for m in Method)
    raise InvalidRequest(f"{what}: {value!r} is not a payment method; use one of {names}")


def _check_refund_args(
    payment_id: object,
    amount: object,
    reason: object,
    idempotency_key: object,
    tax_free_amount: object,
) -> None:
    """Refund arguments of the right types, or an ``InvalidRequest`` saying what to pass."""
    if not isinstance(payment_id, str) or not payment_id:
        raise InvalidRequest(
            f"payment_id must be the Payment.payment_id string, got {type(payment_id).__name__}"
        )
    if amount is not None and not isinstance(amount, Money):
        raise InvalidRequest(
            f"amount must be Money(amount=..., currency=...) or None for all that is left, "
            f"got {type(amount).__name__} {amount!r}"
        )
    if not isinstance(reason, str):
        raise InvalidRequest(f"reason must be a string, got {type(reason).__name__}")
    check_text(reason, "the refund reason")
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str)
        or not 1 <= len(idempotency_key) <= _REQUEST_KEY_MAX
        or not idempotency_key.isascii()
        or not idempotency_key.isprintable()
    ):
        raise InvalidRequest(
            f"idempotency_key must be 1-{_REQUEST_KEY_MAX} printable ASCII characters "
            "(e.g. the id of the refund request in your system, or a uuid4)"
        )
    if tax_free_amount is not None and (
        isinstance(tax_free_amount, bool) or not isinstance(tax_free_amount, int)
    ):
        raise InvalidRequest(
            f"tax_free_amount must be an int in minor units or None, got "
            f"{type(tax_free_amount).__name__}"
        )


def _refund_fingerprint(amount: Money | None, reason: str, tax_free_amount: int | None) -> str:
    what = "all that is left" if amount is None else str(amount)
    tax_free = "pro rata" if tax_free_amount is None else f"tax-free {tax_free_amount}"
    return f"{what}, {tax_free}, reason {reason!r}"


def _tax_free_share(
    payment: Payment,
    order: Order,
    amount: int,
    earlier: Sequence[Refund],
    asked: int | None,
) -> int:
    """The tax-free (면세) part of a refund of ``amount``.

    Default: pro rata of the order's ``tax_free_amount`` (rounded down), and the refund
    that empties the payment takes whatever tax-free part is left, so the parts add up to
    the order's exactly. An explicit share is checked against what is left of both parts.
    """
    tax_free_total = min(order.tax_free_amount, payment.amount.amount)
    left_tax_free = tax_free_total - sum(r.tax_free_amount for r in earlier)
    left_total = payment.amount.amount - sum(r.amount.amount for r in earlier)
    after = left_total - amount  # what stays refundable after this one
    # This refund must take at least what cannot fit in what stays, and at most what is
    # left of the tax-free part (and of the refund itself).
    lowest = max(0, left_tax_free - after)
    highest = max(0, min(amount, left_tax_free))
    if asked is not None:
        if not lowest <= asked <= highest:
            raise InvalidRequest(
                f"tax_free_amount {asked} does not fit this refund of {amount}: it must be "
                f"between {lowest} and {highest} ({left_tax_free} of the order's tax-free "
                f"{tax_free_total} is left to refund)"
            )
        return asked
    if after <= 0:
        return highest
    share = amount * tax_free_total // payment.amount.amount
    return min(max(share, lowest), highest)


class Core:
    """Pure decision logic shared by Router and AsyncRouter. Holds no I/O handles."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        breakers: BreakerRegistry,
        retry: RetryPolicy,
        budget: RetryBudget,
        events: Events,
        clock: Clock,
        config: CoreConfig,
    ) -> None:
        if not providers:
            raise ConfigurationError("a Router needs at least one provider")
        self.providers: dict[str, Provider] = {}
        for p in providers:
            if not isinstance(p, Provider):
                raise ConfigurationError(
                    f"{p!r} is not a payfallback Provider (missing build_/parse_ functions "
                    "or capabilities)"
                )
            if p.name in self.providers:
                raise ConfigurationError(f"provider {p.name!r} is configured twice")
            self.providers[p.name] = p
        self.breakers = breakers
        self.retry = retry
        self.budget = budget
        self.events = events
        self.clock = clock
        self.config = config
        # The one place secrets are scrubbed from what leaves the core: every error an
        # adapter raises or returns, every event, every journal row.
        self._secrets: dict[str, Secrets] = {n: _secrets_of(p) for n, p in self.providers.items()}
        self._all_secrets = Secrets()
        for declared in self._secrets.values():
            self._all_secrets = self._all_secrets | declared
        if self._all_secrets:
            events.scrub_with(self._all_secrets.scrub)

    def _clean(
        self, provider: Provider, error: PayfallbackError, extra: RequestSecrets = ()
    ) -> PayfallbackError:
        """An error from an adapter with every secret it could quote masked."""
        secrets = self._secrets.get(provider.name, Secrets())
        if extra:
            secrets = secrets | Secrets(*extra)
        return secrets.scrub_error(error)

    # -- availability ----------------------------------------------------------------------

    def available(self, method: Method | None = None) -> list[Choice]:
        """Providers whose breaker admits traffic now, in configured order."""
        out: list[Choice] = []
        for p in self.providers.values():
            for m in sorted(p.capabilities.methods, key=list(Method).index):
                if method is not None and m != method:
                    continue
                ok, _ = self.breakers.is_available(p.name, m.value)
                if ok:
                    out.append(Choice(p.name, m))
        return out

    def _provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(self.providers)
            raise ConfigurationError(
                f"provider {name!r} is not configured on this Router (configured: {known})"
            ) from None

    # -- shared pieces -----------------------------------------------------------------------

    def _timeouts(
        self, provider: Provider, adm: Admission, *, money: bool = True
    ) -> dict[str, float | None]:
        """Connect and read timeouts from the breaker's policy in force; on a money-moving
        call, at least the read timeout the provider documents for it (``money``)."""
        settings = adm.settings
        read = settings.read_timeout
        if money and provider.capabilities.read_timeout is not None:
            # The provider's documented processing time wins over our impatience: cutting
            # it short only manufactures unknown outcomes.
            read = max(read, provider.capabilities.read_timeout)
        return httpx.Timeout(
            connect=settings.connect_timeout, read=read, write=read, pool=settings.connect_timeout
        ).as_dict()

    def _unconditional(self, provider: str, method: str) -> Admission:
        """An admission past the breaker's gate, for calls that must be made whatever its
        state: status inquiries, voids, refunds, and approvals of what a customer already
        approved at the provider."""
        return self.breakers.get(provider, method).bypass()

    def _send(
        self,
        provider: Provider,
        request: httpx.Request,
        operation: Operation,
        attempt_id: str,
        timeouts: Mapping[str, float | None] | None,
        parse: Callable[[httpx.Response], Outcome],
        secrets: RequestSecrets = (),
    ) -> FlowGen[tuple[Outcome, float, bool]]:
        """Send once; returns (outcome, duration, hard failure?). A failure's error comes
        back with the provider's and the request's secrets masked."""
        if timeouts is not None:
            request.extensions["timeout"] = dict(timeouts)
        sent: Sent = yield Send(provider, request)
        if isinstance(sent.result, httpx.TransportError):
            error = classify_transport_error(
                sent.result, provider=provider.name, operation=operation, attempt_id=attempt_id
            )
            hard = isinstance(sent.result, httpx.ConnectError)
            return Failed(error), sent.duration, hard
        try:
            outcome = parse(sent.result)
        except PayfallbackError as exc:
            outcome = Failed(exc)
        except Exception as exc:  # an adapter bug must not be mistaken for a success
            unreadable: PayfallbackError
            if operation in MONEY_MOVING:
                unreadable = OutcomeUnknown(
                    f"could not read the provider's answer ({type(exc).__name__})",
                    provider=provider.name,
                    operation=operation.value,
                    attempt_id=attempt_id,
                )
            else:
                unreadable = ProviderUnavailable(
                    f"could not read the provider's answer ({type(exc).__name__})",
                    provider=provider.name,
                    operation=operation.value,
                    attempt_id=attempt_id,
                )
            outcome = Failed(unreadable)
        if isinstance(outcome, Failed):
            self._clean(provider, outcome.error, secrets)
        return outcome, sent.duration, False

    def _record(
        self, breaker: CircuitBreaker, adm: Admission, outcome: Outcome, duration: float, hard: bool
    ) -> None:
        failure = isinstance(outcome, Failed) and is_failure_of_provider(outcome.error)
        breaker.record(adm, duration=duration, failure=failure, hard=hard)

    def _check_amount(
        self, order: Order, approved: Approved, provider: str, attempt_id: str
    ) -> None:
        if approved.amount != order.amount:
            raise InvalidRequest(
                f"{provider} approved {approved.amount} for order {order.order_id}, which is "
                f"{order.amount}; the charge is being given back",
                provider=provider,
                attempt_id=attempt_id,
            )

    @staticmethod
    def _derived_key(provider: Provider, attempt: Attempt, suffix: str) -> str:
        """A second request of one attempt (approve after ready, void after charge) needs
        its own idempotency key: providers refuse a key reused for another request. It is
        derived from the journaled key, so it is the same on every retry and restart."""
        limit = provider.capabilities.idempotency_key_max_length
        return attempt.idempotency_key[: max(1, limit - len(suffix))] + suffix

    def _mint_key(self, provider: Provider) -> str:
        return uuid.uuid4().hex[: max(16, provider.capabilities.idempotency_key_max_length)]

    def _payment(
        self, attempt: Attempt, order: Order, approved: Approved, method: Method
    ) -> Payment:
        return Payment(
            payment_id=f"pay_{order.order_id}",
            order_id=order.order_id,
            provider=attempt.provider,
            method=method,
            provider_txn_id=approved.provider_txn_id,
            attempt_id=attempt.attempt_id,
            amount=approved.amount,
            refunded=Money(amount=0, currency=approved.amount.currency),
            status=PaymentStatus.PAID,
            approved_at=approved.approved_at or self.clock.now(),
            attempts=attempt.seq,
        )

    def _check_same_order(self, order: Order) -> FlowGen[Payment | None]:
        """Refuse a changed order; return its payment if it already has one."""
        _require_order(order)
        known: Order | None = yield from _journal("get_order", order.order_id)
        if known is not None:
            check_same_order(order, known)
        paid: Payment | None = yield from _journal("payment_for_order", order.order_id)
        return paid

    def _duplicate(self, payment: Payment) -> Payment:
        self.events.emit(
            "payment.duplicate",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            provider=payment.provider,
            reason="order already paid; nothing sent",
        )
        return payment

    def _wait_in_flight(self, order: Order, exc: AttemptInFlight) -> FlowGen[Payment]:
        """Another worker holds the order: wait for its result instead of sending."""
        self.events.emit(
            "payment.in_flight", order_id=order.order_id, attempt_id=exc.attempt_id or ""
        )
        waited = 0.0
        step = 0.25
        while waited < self.retry.in_flight_wait:
            yield from _sleep(step)
            waited += step
            step = min(step * 2, 2.0)
            payment = yield from _journal("payment_for_order", order.order_id)
            if payment is not None:
                return self._duplicate(payment)
            attempts = yield from _journal("attempts_for_order", order.order_id)
            if not any(a.state == AttemptState.PENDING for a in attempts):
                break
        raise OutcomeUnknown(
            f"order {order.order_id} has an attempt in flight elsewhere "
            f"({exc.attempt_id}); its outcome is not known yet — ask again shortly",
            attempt_id=exc.attempt_id,
        )

    # -- resolving unknown outcomes ----------------------------------------------------------

    def _lookup(
        self, provider: Provider, attempt: Attempt, order: Order, txn_id: str | None
    ) -> FlowGen[Outcome | None]:
        if txn_id is None and not provider.capabilities.lookup_by_order_id:
            return None
        req = LookupRequest(
            attempt_id=attempt.attempt_id,
            order=order,
            provider_txn_id=txn_id,
            attempted_at=attempt.created_at,
        )
        try:
            request = provider.build_lookup(req)
        except NotImplementedError:
            return None
        outcome, _, _ = yield from self._send(
            provider,
            request,
            Operation.LOOKUP,
            attempt.attempt_id,
            self._timeouts(
                provider, self._unconditional(provider.name, attempt.method.value), money=False
            ),
            lambda r: provider.parse_lookup(req, r),
        )
        return outcome

    def _proves_nothing_moved(
        self, provider: Provider, status: Status, sent_at: datetime | None
    ) -> bool:
        """Whether a lookup's answer is *proof* that the attempt moved no money.

        This is the one place that decides it. A fully cancelled transaction holds nothing.
        The provider's record of a failed transaction is proof where such a record is final
        (``Capabilities.failed_record_is_final``). "Not found" is proof only once the
        provider's documented settle window has passed since the request last left
        (``sent_at``): right after a timeout the provider may still be committing it, and
        a lookup then answers "not found" for a charge that lands a second later.
        """
        caps = provider.capabilities
        if status.state == TxnState.CANCELLED:
            return True
        if status.state == TxnState.NOT_PAID:
            return caps.failed_record_is_final
        if status.state == TxnState.NOT_FOUND:
            window = caps.settle_window
            if window is None or sent_at is None:
                return False
            return self.clock.now() - sent_at >= window
        return False

    @staticmethod
    def _sent_at(attempt: Attempt) -> datetime:
        """When a journaled attempt's request last may have left: ``sent_at`` once an
        outcome turned out unknown, else the last write before the send (later than the
        send, so a settle window counted from it is never cut short)."""
        return attempt.sent_at or attempt.updated_at

    def _resolve(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        txn_id: str | None,
        *,
        lookups: int | None = None,
        deadline_at: float | None = None,
        sent_at: datetime | None = None,
    ) -> FlowGen[_Resolution]:
        """Bounded status inquiries for an attempt whose outcome is unknown.

        At most ``lookups`` inquiries, and none started after ``deadline_at`` (monotonic)
        but the first: a customer at the till is not kept waiting past the request's
        deadline; what is still unknown then stays journaled for later. "Not paid" only on
        proof (:meth:`_proves_nothing_moved`), counted from ``sent_at`` (default: what the
        journal says of the attempt).
        """
        since = sent_at if sent_at is not None else self._sent_at(attempt)
        count = self.retry.lookup_attempts if lookups is None else lookups
        last: PayfallbackError | None = None
        for n in range(1, count + 1):
            outcome = yield from self._lookup(provider, attempt, order, txn_id)
            if outcome is None:
                return _Resolution(_UNKNOWN, error=last)
            if isinstance(outcome, Status):
                state = outcome.state
                if state == TxnState.PAID and outcome.amount is not None and outcome.cancelled == 0:
                    if (approved := _paid_charge(outcome, txn_id)) is not None:
                        return _Resolution(_PAID, approved=approved)
                elif state == TxnState.PAID:
                    # Paid and partly cancelled already: money moved; report as paid with
                    # what the provider holds so the caller can act on it.
                    approved = Approved(
                        provider_txn_id=outcome.provider_txn_id or txn_id or "",
                        amount=outcome.amount or order.amount,
                        provider_status=outcome.provider_status,
                    )
                    return _Resolution(_PAID, approved=approved)
                elif self._proves_nothing_moved(provider, outcome, since):
                    return _Resolution(_NOT_PAID)
                # IN_PROGRESS / AWAITING_CUSTOMER, or "not found" / a failed record that
                # proves nothing yet: ask again after a pause.
            elif isinstance(outcome, Failed):
                last = outcome.error
            if n < count:
                delay = self.retry.lookup_delay(n)
                if deadline_at is not None and self.clock.monotonic() + delay >= deadline_at:
                    break
                yield from _sleep(delay)
        return _Resolution(_UNKNOWN, error=last)

    def _void(
        self, provider: Provider, attempt: Attempt, order: Order, txn_id: str | None
    ) -> FlowGen[bool]:
        """Undo an approval of unknown outcome where the provider offers it (net cancel)."""
        window = provider.capabilities.void_window
        if window is None or self.clock.now() - attempt.created_at > window:
            return False
        req = VoidRequest(
            attempt_id=attempt.attempt_id,
            order=order,
            provider_txn_id=txn_id,
            amount=order.amount,
            idempotency_key=self._derived_key(provider, attempt, "-void"),
        )
        try:
            request = provider.build_void(req)
        except NotImplementedError:
            return False
        adm = self._unconditional(provider.name, attempt.method.value)
        outcome, _, _ = yield from self._send(
            provider,
            request,
            Operation.VOID,
            attempt.attempt_id,
            self._timeouts(provider, adm),
            lambda r: provider.parse_void(req, r),
        )
        return isinstance(outcome, Cancelled) and outcome.settled

    # -- one money-moving attempt ------------------------------------------------------------

    def _run_attempt(
        self,
        provider: Provider,
        breaker: CircuitBreaker,
        adm: Admission,
        attempt: Attempt,
        order: Order,
        method: Method,
        operation: Operation,
        build: Callable[[], httpx.Request],
        parse: Callable[[httpx.Response], Outcome],
        txn_id: str | None,
        secrets: RequestSecrets = (),
        uncertain: OutcomeUnknown | None = None,
    ) -> FlowGen[Payment | PayfallbackError]:
        """Send one attempt with safe retries and resolve an unknown outcome.

        Returns the Payment, or the error that ended the attempt: ``ProviderUnavailable``
        (certainly no money moved: the caller may reroute), ``OutcomeUnknown`` (unresolved:
        the attempt is journaled UNKNOWN), or a ``Declined``/``InvalidRequest``/
        ``ConfigurationError`` (no money moved; the caller decides).
        """
        try:
            request = build()
        except PayfallbackError as exc:
            self._clean(provider, exc, secrets)
            yield from self._finish(attempt, AttemptState.FAILED, exc)
            breaker.release(adm)
            if not isinstance(exc, Declined):
                self._emit_failed(attempt, order, provider, method, operation, exc)
            return exc
        timeouts = self._timeouts(provider, adm)
        state = self.retry.start(self.clock.monotonic())
        replays = 0
        # When the last request that may have reached the provider came back: a settle
        # window is counted from here.
        unknown_since: datetime | None = None
        while True:
            self.events.emit(
                "payment.attempt",
                order_id=order.order_id,
                attempt_id=attempt.attempt_id,
                provider=provider.name,
                method=method.value,
                operation=operation.value,
                try_number=state.attempt_number,
            )
            outcome, duration, hard = yield from self._send(
                provider, request, operation, attempt.attempt_id, timeouts, parse, secrets
            )
            self._record(breaker, adm, outcome, duration, hard)

            if isinstance(outcome, Approved):
                return (yield from self._succeed(provider, attempt, order, method, outcome))
            if not isinstance(outcome, Failed):
                error: PayfallbackError = OutcomeUnknown(
                    f"unexpected {type(outcome).__name__} answer to {operation.value}",
                    provider=provider.name,
                    operation=operation.value,
                    attempt_id=attempt.attempt_id,
                )
            else:
                error = outcome.error
            if uncertain is not None and not isinstance(error, OutcomeUnknown | Declined):
                # A replay that fails to get through proves nothing about the original
                # request, which may have taken effect: still unknown.
                error = OutcomeUnknown(
                    f"{uncertain.message}; a replay got: {error.message}",
                    **uncertain.context(),  # type: ignore[arg-type]
                )

            if isinstance(error, OutcomeUnknown):
                uncertain = error
                unknown_since = self.clock.now()
                yield from self._finish(attempt, AttemptState.UNKNOWN, error, sent=True)
                self.events.emit(
                    "payment.unknown",
                    order_id=order.order_id,
                    attempt_id=attempt.attempt_id,
                    provider=provider.name,
                    reason=error.message,
                    code=error.provider_code,
                )
                resolution = yield from self._resolve(
                    provider,
                    attempt,
                    order,
                    txn_id,
                    deadline_at=state.start_time + self.retry.deadline,
                    sent_at=unknown_since,
                )
                if resolution.state == _PAID and resolution.approved is not None:
                    self.events.emit(
                        "payment.resolved",
                        attempt_id=attempt.attempt_id,
                        provider=provider.name,
                        result="paid",
                    )
                    return (
                        yield from self._succeed(
                            provider, attempt, order, method, resolution.approved
                        )
                    )
                if resolution.state == _NOT_PAID:
                    self.events.emit(
                        "payment.resolved",
                        attempt_id=attempt.attempt_id,
                        provider=provider.name,
                        result="not_paid",
                    )
                    done = ProviderUnavailable(
                        f"{error.message}; the provider's record proves no payment was made",
                        **error.context(),  # type: ignore[arg-type]
                    )
                    yield from self._finish(attempt, AttemptState.FAILED, done, recheck=True)
                    return done
                # Still unknown. Where the provider keys requests, replaying the same request
                # with the same key is safe and tells us the truth. "Still running" answers
                # do not use up the replays: only the request's deadline bounds them.
                if (
                    isinstance(error, RequestInFlight)
                    and (wait := self._in_flight_wait(state, error)) is not None
                ):
                    yield from _sleep(wait)
                    yield from self._journal_pending(attempt)
                    continue
                if (
                    provider.capabilities.idempotency_header is not None
                    and replays < self.retry.attempts_per_provider
                    and (wait := self._replay_wait(state, error)) is not None
                ):
                    replays += 1
                    yield from _sleep(wait)
                    yield from self._journal_pending(attempt)
                    continue
                if (yield from self._void(provider, attempt, order, txn_id)):
                    done = ProviderUnavailable(
                        f"{error.message}; the approval was voided",
                        **error.context(),  # type: ignore[arg-type]
                    )
                    yield from self._finish(attempt, AttemptState.FAILED, done, recheck=True)
                    return done
                return error

            if isinstance(error, ProviderUnavailable):
                wait = self.retry.next_wait(state, error, self.clock.monotonic())
                if wait is not None and self.breakers.is_available(provider.name, method.value)[0]:
                    if self.budget.try_spend():
                        self.events.emit(
                            "payment.retry",
                            attempt_id=attempt.attempt_id,
                            provider=provider.name,
                            wait=round(wait, 3),
                            reason=error.message,
                        )
                        yield from _sleep(wait)
                        continue
                    self.events.emit(
                        "retry.budget_exhausted",
                        provider=provider.name,
                        attempt_id=attempt.attempt_id,
                    )
                yield from self._finish(attempt, AttemptState.FAILED, error)
                self._emit_failed(attempt, order, provider, method, operation, error)
                return error

            # Declined, InvalidRequest, ConfigurationError: no money moved. After an unknown
            # outcome this is a same-key replay's answer: the proof, kept under watch.
            yield from self._finish(
                attempt, AttemptState.FAILED, error, recheck=uncertain is not None
            )
            if not isinstance(error, Declined):
                self._emit_failed(attempt, order, provider, method, operation, error)
            return error

    def _emit_declined(self, order: Order, provider: Provider, error: Declined) -> None:
        self.events.emit(
            "payment.declined",
            order_id=order.order_id,
            provider=provider.name,
            code=error.provider_code,
            reason=error.message,
        )

    def _emit_failed(
        self,
        attempt: Attempt,
        order: Order,
        provider: Provider,
        method: Method,
        operation: Operation,
        error: PayfallbackError,
    ) -> None:
        self.events.emit(
            "payment.failed",
            order_id=order.order_id,
            attempt_id=attempt.attempt_id,
            provider=provider.name,
            method=method.value,
            operation=operation.value,
            reason=error.message,
            code=error.provider_code,
        )

    def _in_flight_wait(self, state: Any, error: RequestInFlight) -> float | None:
        """How long to wait before replaying a request the provider is still running, or
        None when that would pass the request's deadline."""
        wait = error.retry_after if error.retry_after is not None else 1.0
        wait = min(max(wait, 0.0), self.retry.max_wait)
        if self.clock.monotonic() + wait >= state.start_time + self.retry.deadline:
            return None
        return wait

    def _replay_wait(self, state: Any, error: PayfallbackError) -> float | None:
        # A replay with the same idempotency key is safe, so ask the retry policy as if the
        # error were "not taken effect" (the key guarantees it takes effect at most once).
        probe = ProviderUnavailable(error.message, retry_after=error.retry_after)
        return self.retry.next_wait(state, probe, self.clock.monotonic())

    def _journal_pending(self, attempt: Attempt) -> FlowGen[None]:
        """Back to PENDING before a request is (re)sent, holding the order's lease."""
        aid = attempt.attempt_id
        lease = self.config.lease_seconds
        yield from _journal("renew_lease", aid, lease)
        yield from _journal("update_attempt", aid, state=AttemptState.PENDING)

    def _finish(
        self,
        attempt: Attempt,
        state: AttemptState,
        error: PayfallbackError | None,
        *,
        sent: bool = False,
        recheck: bool = False,
    ) -> FlowGen[None]:
        """Journal an attempt's new state. ``sent``: a request may have reached the provider
        just now (the settle window counts from here). ``recheck``: it ends failed after a
        request may have reached the provider, so ``recover()`` keeps looking for a late
        charge until ``recheck_window`` has passed."""
        aid = attempt.attempt_id
        code = error.provider_code if error else None
        message = self._all_secrets.scrub(error.message)[:500] if error else None
        until = self.clock.now() + self.config.recheck_window if recheck else None
        yield from _journal(
            "update_attempt",
            aid,
            state=state,
            error_code=code,
            error_message=message,
            sent=sent,
            recheck_until=until,
        )

    def _succeed(
        self, provider: Provider, attempt: Attempt, order: Order, method: Method, approved: Approved
    ) -> FlowGen[Payment | PayfallbackError]:
        aid = attempt.attempt_id
        txn = approved.provider_txn_id
        try:
            self._check_amount(order, approved, provider.name, aid)
        except InvalidRequest as exc:
            # Money moved for the wrong amount: it cannot be the order's payment. Record
            # the charge as superseded, journal its refund, then send it.
            note = exc.message[:500]
            yield from _journal(
                "update_attempt",
                aid,
                state=AttemptState.SUPERSEDED,
                provider_txn_id=txn,
                error_message=note,
            )
            yield from self._compensate(
                provider, attempt, order, approved, reason="amount mismatch"
            )
            return exc
        payment = self._payment(attempt, order, approved, method)
        try:
            stored: Payment = yield from _journal("record_success", aid, payment)
        except TxnAlreadyRecorded as exc:
            # The provider's transaction already pays another order: this attempt did not
            # make a charge of its own (a forged or misbound return). Nothing to refund —
            # refunding would give back the other order's payment.
            refused = InvalidRequest(
                f"{provider.name} transaction {txn} already pays order {exc.payment.order_id}; "
                f"it is not order {order.order_id}'s payment",
                provider=provider.name,
                attempt_id=aid,
            )
            yield from self._finish(attempt, AttemptState.FAILED, refused)
            return refused
        if stored.attempt_id != aid:
            # Another attempt already paid this order (a second checkout approved, a
            # racing worker): give this charge back.
            yield from self._compensate(
                provider, attempt, order, approved, reason="order already paid"
            )
            return stored
        self.events.emit(
            "payment.succeeded",
            order_id=order.order_id,
            attempt_id=aid,
            provider=provider.name,
            method=method.value,
            amount=approved.amount.amount,
            currency=approved.amount.currency,
        )
        return stored

    def _is_the_payment(self, provider: str, order: Order, txn: str) -> FlowGen[bool]:
        """Whether ``txn`` at ``provider`` is the order's recorded payment itself."""
        paid = yield from _journal("payment_for_order", order.order_id)
        return paid is not None and (paid.provider, paid.provider_txn_id) == (provider, txn)

    def _compensate(
        self, provider: Provider, attempt: Attempt, order: Order, approved: Approved, *, reason: str
    ) -> FlowGen[Refund | None]:
        """Journal, then send, the refund of a charge that is not the order's payment.

        None when the charge *is* the order's payment (another attempt reported the same
        provider transaction): giving it back would refund the sale itself.
        """
        if (yield from self._is_the_payment(provider.name, order, approved.provider_txn_id)):
            same = InvalidRequest(
                "this attempt reported the order's own payment transaction; nothing to give back",
                provider=provider.name,
                attempt_id=attempt.attempt_id,
            )
            yield from self._finish(attempt, AttemptState.FAILED, same)
            return None
        now = self.clock.now()
        refund = Refund(
            refund_id=f"cmp_{attempt.attempt_id}",
            payment_id=None,
            order_id=order.order_id,
            attempt_id=attempt.attempt_id,
            provider=provider.name,
            provider_txn_id=approved.provider_txn_id,
            amount=approved.amount,
            expected_remaining=approved.amount.amount,
            reason=reason,
            kind="compensation",
            tax_free_amount=min(order.tax_free_amount, approved.amount.amount),
            idempotency_key=self._mint_key(provider),
            state=RefundState.OWED,
            created_at=now,
            updated_at=now,
        )
        refund, mine = yield from self._journal_refund(refund)
        if not mine:
            return refund  # another worker is sending it
        self.events.emit(
            "payment.compensating",
            order_id=order.order_id,
            attempt_id=attempt.attempt_id,
            provider=provider.name,
            refund_id=refund.refund_id,
            reason=reason,
        )
        return (yield from self._execute_refund(refund, order))

    # -- server-side charge --------------------------------------------------------------------

    def charge(self, order: Order, instruments: Sequence[Instrument]) -> FlowGen[Payment]:
        if not instruments:
            raise InvalidRequest(
                "charge() needs at least one Instrument (a billing key at a provider)"
            )
        for inst in instruments:
            if not isinstance(inst, Instrument):
                raise InvalidRequest(
                    "charge() takes a list of Instrument(provider=..., billing_key=...), got "
                    f"a {type(inst).__name__}"
                )
            p = self._provider(inst.provider)
            caps = p.capabilities
            if Flow.SERVER_CHARGE not in caps.flows:
                raise InvalidRequest(
                    f"provider {p.name!r} does not support server-side charges; use "
                    "start_checkout() for it"
                )
            if order.amount.currency not in caps.currencies:
                raise InvalidRequest(
                    f"provider {p.name!r} does not take {order.amount.currency} "
                    f"(takes {', '.join(sorted(caps.currencies))})"
                )
        _require_order(order)
        self.budget.record_request()
        skipped: dict[str, str] = {}
        tried: list[PayfallbackError] = []
        previous: str | None = None
        # The journal is asked nothing before the first attempt is written: begin_attempt
        # checks the order, its payment, a live lease and attempts of unknown outcome in
        # the one transaction that journals the attempt. Only when the order has such
        # attempts are they settled (by lookup, replay or void), and the attempt begun
        # again.
        settled = False
        queue = list(instruments)
        while queue:
            inst = queue[0]
            provider = self.providers[inst.provider]
            breaker = self.breakers.get(provider.name, inst.method.value)
            adm = breaker.admit()
            if not adm.allowed:
                queue.pop(0)
                skipped[provider.name] = adm.reason or "breaker open"
                self.events.emit(
                    "payment.skipped",
                    order_id=order.order_id,
                    provider=provider.name,
                    method=inst.method.value,
                    reason=skipped[provider.name],
                )
                continue
            key = self._mint_key(provider)
            try:
                attempt = yield from _journal(
                    "begin_attempt",
                    order,
                    provider=provider.name,
                    method=inst.method,
                    operation=Operation.CHARGE.value,
                    idempotency_key=key,
                    lease_seconds=self.config.lease_seconds,
                    settle_first=not settled,
                )
            except OrderAlreadyPaid as exc:
                breaker.release(adm)
                return self._duplicate(exc.payment)
            except AttemptInFlight as exc:
                breaker.release(adm)
                return (yield from self._wait_in_flight(order, exc))
            except AttemptsOpen:
                breaker.release(adm)
                settled = True
                paid = yield from self._settle_open_attempts(order, instruments)
                if paid is not None:
                    return paid
                continue
            settled = True
            queue.pop(0)
            if previous is not None:
                self.events.emit(
                    "payment.rerouted",
                    order_id=order.order_id,
                    from_provider=previous,
                    to_provider=provider.name,
                    reason=skipped.get(previous, ""),
                )
            req = ChargeRequest(
                attempt_id=attempt.attempt_id,
                order=order,
                instrument=inst,
                idempotency_key=attempt.idempotency_key,
            )
            result = yield from self._run_attempt(
                provider,
                breaker,
                adm,
                attempt,
                order,
                inst.method,
                Operation.CHARGE,
                partial(provider.build_charge, req),
                partial(provider.parse_charge, req),
                None,
                _request_secrets(req),
            )
            if isinstance(result, Payment):
                return result
            previous = provider.name
            if isinstance(result, Declined):
                self._emit_declined(order, provider, result)
                raise result
            if isinstance(result, InvalidRequest):
                raise result
            if isinstance(result, OutcomeUnknown):
                if self.config.compensate and provider.capabilities.lookup_by_order_id:
                    skipped[provider.name] = "outcome unknown; will be refunded if it went through"
                    continue
                raise OutcomeUnknown(
                    f"the charge at {provider.name} may have gone through and could not be "
                    "confirmed yet; it is journaled and will not be sent elsewhere — call "
                    "charge() again or recover() later",
                    **result.context(),  # type: ignore[arg-type]
                )
            skipped[provider.name] = result.message
            tried.append(result)
        if not settled:
            # No breaker admitted anything, so the journal was not asked: a paid order is
            # still paid, a changed one still refused, and attempts of unknown outcome are
            # still settled (by lookup) before the shop hears "no provider".
            paid = yield from self._check_same_order(order)
            if paid is not None:
                return self._duplicate(paid)
            paid = yield from self._settle_open_attempts(order, instruments)
            if paid is not None:
                return paid
        _raise_configuration(tried, skipped)
        raise AllProvidersUnavailable(
            f"no provider could charge order {order.order_id}", skipped=skipped
        )

    def _settle_open_attempts(
        self, order: Order, instruments: Sequence[Instrument]
    ) -> FlowGen[Payment | None]:
        """Before a new attempt: resolve this order's attempts of unknown outcome — by
        lookup, then by replaying the charge with its own key where that proves it."""
        attempts = yield from _journal("attempts_for_order", order.order_id)
        now = self.clock.now()
        for attempt in attempts:
            if attempt.state not in (AttemptState.UNKNOWN, AttemptState.PENDING):
                continue
            if attempt.state == AttemptState.PENDING and attempt.operation == Operation.READY.value:
                aid = attempt.attempt_id
                if (yield from _journal("get_checkout", aid)) is None:
                    continue  # a checkout being started: no money moves at ready
            if (
                attempt.state == AttemptState.PENDING
                and (now - attempt.updated_at).total_seconds() < self.config.lease_seconds
            ):
                # Another worker is sending it right now: wait for its result.
                in_flight = AttemptInFlight(order.order_id, attempt.attempt_id)
                return (yield from self._wait_in_flight(order, in_flight))
            provider = self.providers.get(attempt.provider)
            if provider is None:
                raise ConfigurationError(
                    f"order {order.order_id} has an unresolved attempt at {attempt.provider!r}, "
                    "which is not configured on this Router; add it so the attempt can be "
                    "looked up"
                )
            res = yield from self._resolve(provider, attempt, order, attempt.provider_txn_id)
            if res.state == _PAID and res.approved is not None:
                result = yield from self._succeed(
                    provider, attempt, order, attempt.method, res.approved
                )
                if isinstance(result, Payment):
                    return result
            elif res.state == _NOT_PAID:
                yield from self._finish(
                    attempt,
                    AttemptState.FAILED,
                    ProviderUnavailable("the provider's record proves no payment was made"),
                    recheck=True,
                )
            else:
                replayed = yield from self._replay_charge(provider, attempt, order, instruments)
                if isinstance(replayed, Payment):
                    return replayed
                if isinstance(replayed, Declined):
                    raise replayed
                if replayed is None and (yield from self._void_open(provider, attempt, order)):
                    continue
                if replayed is None or isinstance(replayed, OutcomeUnknown):
                    if self.config.compensate and provider.capabilities.lookup_by_order_id:
                        continue
                    raise OutcomeUnknown(
                        f"order {order.order_id} has an earlier attempt at {attempt.provider} "
                        "whose outcome is still unknown; it will not be charged elsewhere "
                        "until that is resolved — try again later or run recover()",
                        attempt_id=attempt.attempt_id,
                        provider=attempt.provider,
                    )
        return None

    def _paid_elsewhere(self, attempt: Attempt, order: Order) -> FlowGen[bool]:
        """An unresolved attempt of an order another attempt already paid (reroute with
        compensation): nothing waits on it any more, so it stops counting as open and is
        watched instead — if it turns out charged within ``recheck_window``, the charge is
        refunded like any late charge. Its order is never charged again because of it."""
        paid = yield from _journal("payment_for_order", order.order_id)
        if paid is None or paid.attempt_id == attempt.attempt_id:
            return False
        yield from self._finish(
            attempt,
            AttemptState.FAILED,
            ProviderUnavailable(
                f"outcome not proven; order paid by {paid.attempt_id}, so this attempt is "
                "watched for a late charge, refunded if one shows up"
            ),
            recheck=True,
        )
        return True

    def _void_open(self, provider: Provider, attempt: Attempt, order: Order) -> FlowGen[bool]:
        """Net-cancel a journaled attempt of unknown outcome where the provider offers it;
        True when acknowledged (the attempt then ends failed, still watched)."""
        if not (yield from self._void(provider, attempt, order, attempt.provider_txn_id)):
            return False
        yield from self._finish(
            attempt,
            AttemptState.FAILED,
            ProviderUnavailable("the provider acknowledged a void of the attempt"),
            recheck=True,
        )
        return True

    def _replay_charge(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        instruments: Sequence[Instrument],
    ) -> FlowGen[Payment | PayfallbackError | None]:
        """Replay an unresolved charge with its own idempotency key, where the provider
        answers a replay with the first request's outcome (``Proof.REPLAY``). Needs the
        caller's instrument (billing keys are never journaled); None when it cannot."""
        if Proof.REPLAY not in provider.capabilities.proofs:
            return None
        if attempt.operation != Operation.CHARGE.value:
            return None
        inst = next(
            (i for i in instruments if i.provider == provider.name and i.method == attempt.method),
            None,
        )
        if inst is None:
            return None
        aid = attempt.attempt_id
        claimed = yield from _journal("renew_lease", aid, self.config.lease_seconds)
        if not claimed:
            return None  # another worker is on it
        yield from _journal("update_attempt", aid, state=AttemptState.PENDING)
        req = ChargeRequest(
            attempt_id=aid, order=order, instrument=inst, idempotency_key=attempt.idempotency_key
        )
        breaker = self.breakers.get(provider.name, inst.method.value)
        earlier = OutcomeUnknown(
            attempt.error_message or "an earlier request's outcome is unknown",
            provider=provider.name,
            operation=Operation.CHARGE.value,
            attempt_id=aid,
        )
        return (
            yield from self._run_attempt(
                provider,
                breaker,
                self._unconditional(provider.name, inst.method.value),
                attempt,
                order,
                inst.method,
                Operation.CHARGE,
                lambda: provider.build_charge(req),
                lambda r: provider.parse_charge(req, r),
                None,
                _request_secrets(req),
                uncertain=earlier,
            )
        )

    # -- redirect checkout ---------------------------------------------------------------------

    def start_checkout(
        self,
        order: Order,
        method: Method,
        return_urls: ReturnUrls,
        platform: Platform,
        fallback_methods: Sequence[Method] | None,
    ) -> FlowGen[CheckoutSession]:
        method = _method(method, "method")
        if fallback_methods is not None:
            fallback_methods = [_method(m, "fallback_methods") for m in fallback_methods]
        if not isinstance(return_urls, ReturnUrls):
            raise InvalidRequest(
                "return_urls must be ReturnUrls(success=..., cancel=..., fail=...), got "
                f"{type(return_urls).__name__}"
            )
        methods = [
            method,
            *(
                fallback_methods
                if fallback_methods is not None
                else self.config.fallback_methods.get(method, ())
            ),
        ]
        candidates = [
            (p, m)
            for m in methods
            for p in self.providers.values()
            if m in p.capabilities.methods and Flow.REDIRECT in p.capabilities.flows
        ]
        if not candidates:
            raise InvalidRequest(
                f"no configured provider offers {method.value} checkout; configured: "
                + ", ".join(
                    f"{p.name} ({', '.join(sorted(m.value for m in p.capabilities.methods))})"
                    for p in self.providers.values()
                )
            )
        paid = yield from self._check_same_order(order)
        if paid is not None:
            raise InvalidRequest(
                f"order {order.order_id} is already paid ({paid.payment_id}); nothing to check out"
            )
        skipped: dict[str, str] = {}
        tried: list[PayfallbackError] = []
        for provider, m in candidates:
            breaker = self.breakers.get(provider.name, m.value)
            adm = breaker.admit()
            label = f"{provider.name}/{m.value}"
            if not adm.allowed:
                skipped[label] = adm.reason or "breaker open"
                self.events.emit(
                    "payment.skipped",
                    order_id=order.order_id,
                    provider=provider.name,
                    method=m.value,
                    reason=skipped[label],
                )
                continue
            try:
                attempt = yield from _journal(
                    "begin_attempt",
                    order,
                    provider=provider.name,
                    method=m,
                    operation=Operation.READY.value,
                    idempotency_key=self._mint_key(provider),
                    lease_seconds=self.config.lease_seconds,
                )
            except (OrderAlreadyPaid, AttemptInFlight):
                breaker.release(adm)
                raise InvalidRequest(
                    f"order {order.order_id} is already paid or being paid; nothing to check out"
                ) from None
            req = ReadyRequest(
                attempt_id=attempt.attempt_id,
                order=order,
                method=m,
                return_urls=return_urls,
                idempotency_key=attempt.idempotency_key,
                platform=platform,
            )
            outcome: Outcome
            try:
                request = provider.build_ready(req)
            except PayfallbackError as exc:
                outcome = Failed(exc)
                request = None
                breaker.release(adm)
            else:
                if request is None:
                    outcome = provider.parse_ready(req, None)
                    breaker.release(adm)
                else:
                    outcome, duration, hard = yield from self._send(
                        provider,
                        request,
                        Operation.READY,
                        attempt.attempt_id,
                        self._timeouts(provider, adm, money=False),
                        partial(provider.parse_ready, req),
                    )
                    self._record(breaker, adm, outcome, duration, hard)
            if isinstance(outcome, Redirect):
                session = CheckoutSession(
                    session_id=attempt.attempt_id,
                    order_id=order.order_id,
                    provider=provider.name,
                    method=m,
                    provider_txn_id=outcome.provider_txn_id,
                    redirect_urls=dict(outcome.redirect_urls),
                    client_params=dict(outcome.client_params),
                    expires_at=outcome.expires_at,
                    fallback_from=dict(skipped),
                )
                yield from _journal("save_checkout", session)
                self.events.emit(
                    "checkout.started",
                    order_id=order.order_id,
                    session_id=session.session_id,
                    provider=provider.name,
                    method=m.value,
                    fell_back=bool(skipped),
                )
                return session
            error = (
                outcome.error
                if isinstance(outcome, Failed)
                else OutcomeUnknown(
                    f"unexpected {type(outcome).__name__} answer to ready", provider=provider.name
                )
            )
            # No money moves at ready: whatever happened, this attempt is over.
            yield from self._finish(attempt, AttemptState.FAILED, error)
            if isinstance(error, Declined | InvalidRequest):
                raise error
            skipped[label] = error.message
            tried.append(error)
            self.events.emit(
                "payment.rerouted",
                order_id=order.order_id,
                from_provider=provider.name,
                reason=error.message,
            )
        _raise_configuration(tried, skipped)
        raise AllProvidersUnavailable(
            f"no provider could start a {method.value} checkout for order {order.order_id}",
            skipped=skipped,
        )

    def complete_checkout(
        self, session_id: str, callback_params: Mapping[str, str]
    ) -> FlowGen[Payment]:
        session = yield from _journal("get_checkout", session_id)
        if session is None:
            raise InvalidRequest(
                f"unknown checkout session {session_id!r}; use the session_id returned by "
                "start_checkout()"
            )
        order = yield from _journal("get_order", session.order_id)
        attempt = yield from _journal("get_attempt", session_id)
        if order is None or attempt is None:
            raise InvalidRequest(f"checkout session {session_id!r} has no journaled order")
        paid = yield from _journal("payment_for_order", order.order_id)
        if paid is not None:
            # Paid already (this session, a repeated callback, or another session): do not
            # approve again; the order's payment is the answer.
            if paid.attempt_id != session_id and attempt.state in _OPEN_CHECKOUT:
                yield from self._settle_second_checkout(session, attempt, order, callback_params)
            return self._duplicate(paid)
        provider = self._provider(session.provider)
        if attempt.state not in _OPEN_CHECKOUT:
            raise InvalidRequest(
                f"checkout session {session_id} is {attempt.state.value}; start a new checkout"
            )
        txn_id = session.provider_txn_id
        param = provider.capabilities.callback_txn_id_param
        if txn_id is None and param is not None and callback_params.get(param):
            txn_id = callback_params[param]
        req = ApproveRequest(
            attempt_id=session_id,
            order=order,
            method=session.method,
            provider_txn_id=txn_id,
            callback_params=dict(callback_params),
            idempotency_key=self._derived_key(provider, attempt, "-approve"),
        )
        secrets = _request_secrets(req)
        # Read the return before anything is written: anyone can call a return URL, so a
        # hit that says "failed" or carries a wrong amount must not end or block the
        # checkout — the genuine return still completes it.
        try:
            request = provider.build_approve(req)
        except Declined as exc:
            self._clean(provider, exc, secrets)
            return (yield from self._failed_return(provider, session, attempt, order, txn_id, exc))
        except PayfallbackError as exc:
            raise self._clean(provider, exc, secrets) from None
        claimed = yield from _journal("renew_lease", session_id, self.config.lease_seconds)
        if not claimed:
            return (
                yield from self._wait_in_flight(order, AttemptInFlight(order.order_id, session_id))
            )
        if attempt.state == AttemptState.UNKNOWN:
            res = yield from self._resolve(
                provider, attempt, order, attempt.provider_txn_id or txn_id
            )
            if res.state == _PAID and res.approved is not None:
                result = yield from self._succeed(
                    provider, attempt, order, session.method, res.approved
                )
                return self._raise_or_payment(result)
            if res.state == _UNKNOWN:
                raise OutcomeUnknown(
                    f"the approval of checkout {session_id} is still being resolved; "
                    "try again later",
                    provider=provider.name,
                    attempt_id=session_id,
                )
        yield from self._journal_pending(attempt)
        breaker = self.breakers.get(provider.name, session.method.value)
        # The customer already approved there: never skip it, but let it count.
        adm = self._unconditional(provider.name, session.method.value)
        result = yield from self._run_attempt(
            provider,
            breaker,
            adm,
            attempt,
            order,
            session.method,
            Operation.APPROVE,
            lambda: request,
            lambda r: provider.parse_approve(req, r),
            txn_id,
            secrets,
        )
        if isinstance(result, ProviderUnavailable):
            # Certainly not approved: the customer may try the same session again.
            yield from _journal("update_attempt", session_id, state=AttemptState.REDIRECTED)
        if isinstance(result, Declined):
            self._emit_declined(order, provider, result)
        if isinstance(result, Payment):
            self.events.emit(
                "checkout.completed",
                order_id=order.order_id,
                session_id=session_id,
                provider=provider.name,
            )
        return self._raise_or_payment(result)

    def _failed_return(
        self,
        provider: Provider,
        session: CheckoutSession,
        attempt: Attempt,
        order: Order,
        txn_id: str | None,
        declined: Declined,
    ) -> FlowGen[Payment]:
        """A return whose parameters say the payment failed. They are the browser's word,
        not the provider's: ask the provider. A payment it holds is recorded; otherwise the
        checkout stays open (the customer may pay again on it, and the genuine return still
        completes it) and the decline goes to the caller."""
        outcome = yield from self._lookup(
            provider, attempt, order, txn_id or attempt.provider_txn_id
        )
        approved = _paid_charge(outcome, txn_id or attempt.provider_txn_id)
        if approved is not None:
            result = yield from self._succeed(provider, attempt, order, session.method, approved)
            return self._raise_or_payment(result)
        self._emit_declined(order, provider, declined)
        raise declined

    def _settle_second_checkout(
        self,
        session: CheckoutSession,
        attempt: Attempt,
        order: Order,
        callback_params: Mapping[str, str],
    ) -> FlowGen[None]:
        """Another checkout already paid this order. Where a provider's own page or SDK
        takes the money without our approve call (PortOne), this one may have been charged
        too: ask, and give it back (journaled first) if so."""
        provider = self._provider(session.provider)
        txn_id = session.provider_txn_id
        param = provider.capabilities.callback_txn_id_param
        if txn_id is None and param is not None and callback_params.get(param):
            txn_id = callback_params[param]
        outcome = yield from self._lookup(provider, attempt, order, txn_id)
        approved = _paid_charge(outcome, txn_id)
        if approved is not None:
            yield from self._succeed(provider, attempt, order, session.method, approved)
            return
        if isinstance(outcome, Status) and (
            # Never approved by us: nothing moved so far. Or an approve that may have
            # been sent, with proof that it did not go through.
            (attempt.state == AttemptState.REDIRECTED and outcome.state in _NOTHING_MOVED)
            or self._proves_nothing_moved(provider, outcome, self._sent_at(attempt))
        ):
            abandoned = Declined("the order was paid by another checkout")
            # The provider's own page may still charge it (PortOne): keep looking.
            yield from self._finish(attempt, AttemptState.FAILED, abandoned, recheck=True)
            return
        # Cannot tell now: keep it open for recover(), which compensates a late charge.
        aid = attempt.attempt_id
        yield from _journal("update_attempt", aid, state=AttemptState.UNKNOWN)

    @staticmethod
    def _raise_or_payment(result: Payment | PayfallbackError) -> Payment:
        if isinstance(result, PayfallbackError):
            raise result
        return result

    # -- refunds ---------------------------------------------------------------------------------

    def refund(
        self,
        payment_id: str,
        amount: Money | None,
        reason: str,
        *,
        idempotency_key: str | None = None,
        tax_free_amount: int | None = None,
    ) -> FlowGen[Refund]:
        _check_refund_args(payment_id, amount, reason, idempotency_key, tax_free_amount)
        fingerprint = _refund_fingerprint(amount, reason, tax_free_amount)
        if idempotency_key is not None:
            key = idempotency_key
            earlier = yield from _journal("refund_by_request_key", payment_id, key)
            if earlier is not None:
                return self._same_refund(earlier, fingerprint)
        payment = yield from _journal("get_payment", payment_id)
        if payment is None:
            raise InvalidRequest(f"unknown payment {payment_id!r}; use Payment.payment_id")
        provider = self._provider(payment.provider)
        amount = amount or payment.refundable
        if amount.currency != payment.amount.currency:
            raise InvalidRequest(
                f"refund is in {amount.currency} but payment {payment_id} is in "
                f"{payment.amount.currency}"
            )
        if amount.amount <= 0:
            raise InvalidRequest(f"payment {payment_id} has nothing left to refund")
        if amount.amount > payment.refundable.amount:
            raise InvalidRequest(
                f"cannot refund {amount} of payment {payment_id}: only {payment.refundable} is "
                "left to refund"
            )
        if amount != payment.refundable and not provider.capabilities.partial_cancel:
            raise InvalidRequest(
                f"{provider.name} does not support partial cancels; refund the full "
                f"{payment.refundable}"
            )
        order = yield from _journal("get_order", payment.order_id)
        if order is None:  # pragma: no cover - the journal keeps orders with payments
            raise InvalidRequest(f"payment {payment_id} has no journaled order")
        earlier_refunds = yield from _journal("refunds_for_order", payment.order_id)
        tax_free = _tax_free_share(
            payment,
            order,
            amount.amount,
            [
                r
                for r in earlier_refunds
                if r.payment_id == payment_id and r.state != RefundState.FAILED
            ],
            tax_free_amount,
        )
        now = self.clock.now()
        refund = Refund(
            refund_id=f"rf_{uuid.uuid4().hex[:20]}",
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            attempt_id=payment.attempt_id,
            provider=payment.provider,
            provider_txn_id=payment.provider_txn_id,
            amount=amount,
            expected_remaining=payment.refundable.amount,
            reason=reason or "requested by merchant",
            kind="refund",
            idempotency_key=self._mint_key(provider),
            state=RefundState.OWED,
            created_at=now,
            updated_at=now,
            tax_free_amount=tax_free,
            request_key=idempotency_key,
            request_fingerprint=fingerprint if idempotency_key is not None else None,
        )
        stored, mine = yield from self._journal_refund(refund)
        if stored.refund_id != refund.refund_id:
            # Two clicks at once with the same key: the other one journaled it first.
            return self._same_refund(stored, fingerprint)
        if not mine:
            return stored  # another worker is sending it
        self.events.emit(
            "refund.requested",
            refund_id=stored.refund_id,
            payment_id=payment_id,
            provider=provider.name,
            amount=amount.amount,
        )
        return (yield from self._execute_refund(stored, order))

    @staticmethod
    def _same_refund(earlier: Refund, fingerprint: str) -> Refund:
        """A repeat of a refund request with the same idempotency key: the same refund,
        nothing sent — unless the arguments differ, which is a mistake to report."""
        if earlier.request_fingerprint is not None and earlier.request_fingerprint != fingerprint:
            raise InvalidRequest(
                f"idempotency_key {earlier.request_key!r} was already used for refund "
                f"{earlier.refund_id} of payment {earlier.payment_id} with other arguments "
                f"({earlier.request_fingerprint}, now {fingerprint}); use a new key for a "
                "different refund"
            )
        return earlier

    def _journal_refund(self, refund: Refund) -> FlowGen[tuple[Refund, bool]]:
        """Journal a refund as OWED before anything is sent, and claim it for sending.

        The flag is False when another worker holds it (it is then theirs to send)."""
        stored = yield from _journal("add_refund", refund)
        return stored, (yield from self._claim_refund(stored))

    def _claim_refund(self, refund: Refund) -> FlowGen[bool]:
        rid = refund.refund_id
        lease = self.config.lease_seconds
        claimed: bool = yield from _journal("renew_refund_lease", rid, lease)
        return claimed

    def _still_owed(
        self, refund: Refund, reason: str, *, new_key: str | None = None
    ) -> FlowGen[Refund]:
        rid = refund.refund_id
        updated: Refund = yield from _journal(
            "update_refund", rid, state=RefundState.OWED, idempotency_key=new_key
        )
        self.events.emit(
            "refund.owed",
            refund_id=rid,
            provider=refund.provider,
            amount=refund.amount.amount,
            reason=reason,
        )
        return updated

    def _settle_refund(self, refund: Refund) -> FlowGen[Refund]:
        rid = refund.refund_id
        updated: Refund = yield from _journal("update_refund", rid, state=RefundState.SUCCEEDED)
        self.events.emit(
            "refund.succeeded",
            refund_id=rid,
            provider=refund.provider,
            amount=refund.amount.amount,
            kind=refund.kind,
        )
        return updated

    def _refunded_before(self, refund: Refund) -> FlowGen[int | None]:
        """What the journal has settled of the refund's payment so far (None if no payment)."""
        if refund.payment_id is None:
            return None
        pid = refund.payment_id
        payment = yield from _journal("get_payment", pid)
        return None if payment is None else payment.refunded.amount

    def _execute_refund(self, refund: Refund, order: Order) -> FlowGen[Refund]:
        """Send an owed refund; it stays OWED (and is retried later) unless settled.

        Refunds of one payment go out one at a time, oldest first, so each can tell the
        provider exactly what must still be cancellable before it (Kakao Pay
        ``cancel_available_amount``, Naver Pay ``expectedRestAmount``): a replay or a
        stale refund is then refused by the provider instead of cancelling twice.
        """
        provider = self._provider(refund.provider)
        rid = refund.refund_id
        oid = refund.order_id
        older = yield from _journal("refunds_for_order", oid)
        ahead = [
            r
            for r in older
            if r.state == RefundState.OWED
            and r.payment_id == refund.payment_id
            and r.refund_id != rid
            and (r.created_at, r.refund_id) < (refund.created_at, refund.refund_id)
        ]
        if ahead:
            return (
                yield from self._still_owed(refund, f"queued behind refund {ahead[0].refund_id}")
            )
        refunded = yield from self._refunded_before(refund)
        expected = (
            refund.expected_remaining
            if refunded is None
            else refund.amount.amount + (refund.expected_remaining - refund.amount.amount)
        )
        if refunded is not None:
            payment_id = refund.payment_id or ""
            payment = yield from _journal("get_payment", payment_id)
            expected = payment.amount.amount - refunded if payment is not None else expected
        if refund.tries > 0:
            # An earlier try may have been carried out (its answer lost, committed late):
            # ask the provider before sending it again, with whatever key it now has.
            earlier = yield from self._refund_settled(provider, refund, order, refunded)
            if earlier is True:
                return (yield from self._settle_refund(refund))
            if earlier is None:
                return (
                    yield from self._still_owed(
                        refund, "an earlier try may have gone through; not confirmed yet"
                    )
                )
        req = CancelRequest(
            refund_id=rid,
            attempt_id=refund.attempt_id,
            order=order,
            provider_txn_id=refund.provider_txn_id,
            amount=refund.amount,
            expected_remaining=expected,
            reason=refund.reason,
            idempotency_key=refund.idempotency_key,
            tax_free_amount=refund.tax_free_amount,
        )
        try:
            request = provider.build_cancel(req)
        except PayfallbackError as exc:
            self._clean(provider, exc)
            code = exc.provider_code
            yield from _journal("update_refund", rid, state=RefundState.FAILED, error_code=code)
            self.events.emit(
                "refund.failed", refund_id=rid, provider=provider.name, reason=exc.message
            )
            raise
        adm = self._unconditional(provider.name, "refund")
        state = self.retry.start(self.clock.monotonic())
        while True:
            outcome, _, _ = yield from self._send(
                provider,
                request,
                Operation.CANCEL,
                refund.attempt_id,
                self._timeouts(provider, adm),
                lambda r: provider.parse_cancel(req, r),
            )
            if isinstance(outcome, Cancelled):
                if outcome.settled:
                    return (yield from self._settle_refund(refund))
                # Accepted, not finished (PortOne REQUESTED): owed until a check sees it done.
                return (
                    yield from self._still_owed(
                        refund, "the provider accepted the cancel; not done yet"
                    )
                )
            error = (
                outcome.error
                if isinstance(outcome, Failed)
                else OutcomeUnknown("unexpected answer to cancel", provider=provider.name)
            )
            if isinstance(error, ProviderUnavailable):
                wait = self.retry.next_wait(state, error, self.clock.monotonic())
                if wait is not None:
                    yield from _sleep(wait)
                    continue
                # Certainly not taken effect: the next try gets a key of its own, since some
                # providers answer a known key with its stored error for days.
                fresh = self._mint_key(provider)
                return (
                    yield from self._still_owed(
                        refund, f"provider unavailable: {error.message}", new_key=fresh
                    )
                )
            # Unknown, or refused: ask the provider what it holds now.
            settled = yield from self._refund_settled(provider, refund, order, refunded)
            if settled:
                return (yield from self._settle_refund(refund))
            if isinstance(error, Declined | InvalidRequest) and settled is False:
                failed_code = error.provider_code
                yield from _journal(
                    "update_refund", rid, state=RefundState.FAILED, error_code=failed_code
                )
                self.events.emit(
                    "refund.failed",
                    refund_id=rid,
                    provider=provider.name,
                    reason=error.message,
                    code=error.provider_code,
                )
                raise error
            # Configuration errors and unknowns: keep it owed; recover() tries again.
            return (yield from self._still_owed(refund, f"not confirmed yet: {error.message}"))

    def _refund_settled(
        self, provider: Provider, refund: Refund, order: Order, refunded_before: int | None
    ) -> FlowGen[bool | None]:
        """Whether the provider's record shows this refund done; None if it cannot tell."""
        aid = refund.attempt_id
        attempt = yield from _journal("get_attempt", aid)
        if attempt is None:
            return None
        outcome = yield from self._lookup(provider, attempt, order, refund.provider_txn_id)
        if not isinstance(outcome, Status):
            return None
        original = outcome.amount.amount if outcome.amount else order.amount.amount
        if outcome.state == TxnState.CANCELLED:
            cancelled = original
        elif outcome.state == TxnState.PAID:
            cancelled = outcome.cancelled
        elif outcome.state in (TxnState.NOT_PAID, TxnState.NOT_FOUND):
            # Nothing is held there: a compensation has nothing left to give back.
            return True if refund.kind == "compensation" else None
        else:
            return None
        before = 0 if refunded_before is None else refunded_before
        if cancelled >= before + refund.amount.amount:
            return True
        if cancelled == before:
            return False
        return None

    # -- recovery ----------------------------------------------------------------------------------

    def recover(self) -> FlowGen[RecoveryReport]:
        report = RecoveryReport()
        unresolved = yield from _journal("unresolved_attempts")
        for attempt in unresolved:
            aid = attempt.attempt_id
            claimed = yield from _journal("renew_lease", aid, self.config.lease_seconds)
            if not claimed:
                # Another worker holds it now: open, and not ours to settle.
                held = yield from _journal("get_attempt", aid)
                report.in_flight.append(
                    InFlight(
                        aid,
                        attempt.order_id,
                        attempt.provider,
                        held.lease_until if held is not None else None,
                    )
                )
                continue
            order = yield from _journal("get_order", attempt.order_id)
            provider = self.providers.get(attempt.provider)
            if order is None or provider is None:
                report.still_unresolved.append(aid)
                continue
            if (
                attempt.operation == Operation.READY.value
                and attempt.state == AttemptState.PENDING
                and (yield from _journal("get_checkout", aid)) is None
            ):
                # Crashed while starting a checkout: no money moves at ready. (A saved
                # checkout back at pending was sending its approval: that is looked up.)
                yield from self._finish(
                    attempt, AttemptState.FAILED, ProviderUnavailable("abandoned at ready")
                )
                report.resolved.append(aid)
                continue
            res = yield from self._resolve(provider, attempt, order, attempt.provider_txn_id)
            if res.state == _PAID and res.approved is not None:
                report.paid.append(aid)
                if attempt.state == AttemptState.SUPERSEDED:
                    refund = yield from self._compensate(
                        provider, attempt, order, res.approved, reason="order already paid"
                    )
                    if refund is not None:
                        report.compensations.append(refund.refund_id)
                else:
                    result = yield from self._succeed(
                        provider, attempt, order, attempt.method, res.approved
                    )
                    if not (isinstance(result, Payment) and result.attempt_id == aid):
                        report.compensations.append(f"cmp_{aid}")
                report.resolved.append(aid)
            elif res.state == _NOT_PAID:
                yield from self._finish(
                    attempt,
                    AttemptState.FAILED,
                    ProviderUnavailable("the provider's record proves no payment was made"),
                    recheck=True,
                )
                report.resolved.append(aid)
            elif attempt.state != AttemptState.SUPERSEDED and (
                (yield from self._void_open(provider, attempt, order))
                or (yield from self._paid_elsewhere(attempt, order))
            ):
                report.resolved.append(aid)
            else:
                # Still unknown. A crashed PENDING attempt becomes UNKNOWN, its settle window
                # counting from no earlier than now; either way the claim taken above ends,
                # so the POS's next charge() of the order can replay it at once.
                if attempt.state in (AttemptState.PENDING, AttemptState.UNKNOWN):
                    crashed = attempt.state == AttemptState.PENDING
                    yield from self._finish(attempt, AttemptState.UNKNOWN, None, sent=crashed)
                report.still_unresolved.append(aid)
        in_flight = yield from _journal("in_flight_attempts")
        known = {f.attempt_id for f in report.in_flight}
        for attempt in in_flight:
            if attempt.attempt_id not in known and attempt.attempt_id not in report.resolved:
                report.in_flight.append(
                    InFlight(
                        attempt.attempt_id, attempt.order_id, attempt.provider, attempt.lease_until
                    )
                )
        yield from self._recheck_failed(report)
        owed = yield from _journal("refunds_owed")
        for refund in owed:
            rid = refund.refund_id
            claimed = yield from self._claim_refund(refund)
            if not claimed:
                report.refunds_still_owed.append(rid)  # another worker is sending it
                continue
            order = yield from _journal("get_order", refund.order_id)
            if order is None or refund.provider not in self.providers:
                report.refunds_still_owed.append(rid)
                continue
            try:
                done = yield from self._execute_refund(refund, order)
            except PayfallbackError:
                continue  # refused for good: journaled FAILED with its reason
            if done.state == RefundState.SUCCEEDED:
                report.refunds_settled.append(rid)
            else:
                report.refunds_still_owed.append(rid)
        self.events.emit(
            "recover.finished",
            resolved=len(report.resolved),
            paid=len(report.paid),
            compensations=len(report.compensations),
            refunds_settled=len(report.refunds_settled),
            still_unresolved=len(report.still_unresolved),
            refunds_still_owed=len(report.refunds_still_owed),
            in_flight=len(report.in_flight),
            late_charges=len(report.late_charges),
        )
        return report

    def _recheck_failed(self, report: RecoveryReport) -> FlowGen[None]:
        """Look again at attempts that ended failed after a request may have reached the
        provider (within ``recheck_window``): a charge that appears late is given back,
        journaled first — the caller was told it failed."""
        watched = yield from _journal("attempts_to_recheck")
        for attempt in watched:
            provider = self.providers.get(attempt.provider)
            order = yield from _journal("get_order", attempt.order_id)
            if provider is None or order is None:
                continue
            outcome = yield from self._lookup(provider, attempt, order, attempt.provider_txn_id)
            approved = _paid_charge(outcome, attempt.provider_txn_id)
            if approved is None:
                continue
            aid = attempt.attempt_id
            txn = approved.provider_txn_id
            if (yield from self._is_the_payment(provider.name, order, txn)):
                continue
            note = "charged after the attempt had ended failed; being given back"
            yield from _journal(
                "update_attempt",
                aid,
                state=AttemptState.SUPERSEDED,
                provider_txn_id=txn,
                error_message=note,
            )
            self.events.emit(
                "payment.late_charge",
                order_id=order.order_id,
                attempt_id=aid,
                provider=provider.name,
                amount=approved.amount.amount,
            )
            refund = yield from self._compensate(
                provider, attempt, order, approved, reason="late charge on a failed attempt"
            )
            if refund is None:
                continue
            report.late_charges.append(aid)
            report.compensations.append(refund.refund_id)
            if refund.state != RefundState.SUCCEEDED:
                report.refunds_still_owed.append(refund.refund_id)
