"""Talking to a provider: send with retries, look up, resolve an unknown outcome, void,
record what happened, and the keys each request carries. The lowest layer of the decision
core; refunds (``_refunds``) and the Router's operations (``_core``) build on it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from secrets import token_hex
from types import MappingProxyType
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from payfallback._clock import Clock
from payfallback._flow import (
    Choice,
    FlowGen,
    Send,
    Sent,
    ask,
    pause,
)
from payfallback.adapter import Secrets
from payfallback.breaker import Admission, BreakerRegistry, BreakerSettings, CircuitBreaker
from payfallback.errors import (
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
    TxnAlreadyRecorded,
)
from payfallback.journal._checks import check_same_order
from payfallback.models import (
    CURRENCY_EXPONENTS,
    Attempt,
    AttemptState,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Refund,
)
from payfallback.provider import (
    MONEY_MOVING,
    Approved,
    ApproveRequest,
    Cancelled,
    ChargeRequest,
    Failed,
    LookupRequest,
    Operation,
    Outcome,
    Provider,
    Status,
    TxnState,
    VoidRequest,
    classify_transport_error,
    is_failure_of_provider,
)
from payfallback.retry import RetryBudget, RetryPolicy

T = TypeVar("T")


class Resolved(Enum):
    """What resolving an unknown outcome found (``payment.resolved``'s ``result``)."""

    #: The provider holds the charge: journal it as the order's payment.
    PAID = "paid"
    #: Positive proof that nothing was charged (:meth:`ProviderCalls._proves_nothing_moved`).
    NOT_PAID = "not_paid"
    #: Neither yet: the attempt stays unknown, and the order waits for it.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _Resolution:
    """Result of resolving an unknown outcome: paid (with the approval to journal),
    certainly not paid, or still unknown (with the last lookup's error, if any)."""

    state: Resolved
    approved: Approved | None = None
    error: PayfallbackError | None = None

    def __post_init__(self) -> None:
        if (self.state is Resolved.PAID) is (self.approved is None):
            raise AssertionError("a resolution carries an approval if and only if it is paid")


_OPEN_CHECKOUT = frozenset({AttemptState.REDIRECTED, AttemptState.PENDING, AttemptState.UNKNOWN})
_NOTHING_MOVED = frozenset(
    {TxnState.NOT_PAID, TxnState.NOT_FOUND, TxnState.CANCELLED, TxnState.AWAITING_CUSTOMER}
)

#: A provider that declared no secrets (shared: a Secrets never changes).
_NO_SECRETS = Secrets()


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


@functools.lru_cache(maxsize=len(CURRENCY_EXPONENTS))
def _nothing_in(currency: str) -> Money:
    """Zero in ``currency``: a new payment's refunded amount (a Money is immutable, so one
    serves every payment)."""
    return Money(amount=0, currency=currency)


def _paid_charge(outcome: Outcome | None, txn_id: str | None) -> Approved | None:
    """The charge a lookup found paid (with its transaction id), or None."""
    if not (isinstance(outcome, Status) and outcome.state == TxnState.PAID and outcome.amount):
        return None
    txn = outcome.provider_txn_id or txn_id
    if not txn:
        return None
    return Approved(
        provider_txn_id=txn,
        amount=outcome.amount,
        provider_status=outcome.provider_status,
        receipt=outcome.receipt,
        answer=outcome.answer,
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


class ProviderCalls:
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
            events.scrub_with(self._all_secrets.mask, shortest=self._all_secrets.shortest)
        #: Each provider's timeouts (money-moving or not), with the settings and documented
        #: read timeout they are for.
        self._timeouts_in_force: dict[
            tuple[str, bool], tuple[BreakerSettings, float | None, Mapping[str, float | None]]
        ] = {}

    def _clean(
        self, provider: Provider, error: PayfallbackError, extra: RequestSecrets = ()
    ) -> PayfallbackError:
        """An error from an adapter with every secret it could quote masked."""
        secrets = self._secrets.get(provider.name) or _NO_SECRETS
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
    ) -> Mapping[str, float | None]:
        """Connect and read timeouts from the breaker's policy in force; on a money-moving
        call, at least the read timeout the provider documents for it (``money``). Worked
        out once for each provider, settings in force and documented read timeout."""
        settings = adm.settings
        documented = provider.capabilities.read_timeout
        known = self._timeouts_in_force.get((provider.name, money))
        if known is not None and known[0] is settings and known[1] == documented:
            return known[2]
        read = settings.read_timeout
        if money and documented is not None:
            # The provider's documented processing time wins over our impatience: cutting
            # it short only manufactures unknown outcomes.
            read = max(read, documented)
        timeouts = MappingProxyType(
            httpx.Timeout(
                connect=settings.connect_timeout,
                read=read,
                write=read,
                pool=settings.connect_timeout,
            ).as_dict()
        )
        self._timeouts_in_force[(provider.name, money)] = (settings, documented, timeouts)
        return timeouts

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
        sent: Sent = yield Send(provider, request, operation in MONEY_MOVING)
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
        got, due = approved.amount, order.amount
        if got.amount != due.amount or got.currency != due.currency:
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
        # 128 random bits as 32 hex digits (uuid4's form, without building a UUID).
        return token_hex(16)[: max(16, provider.capabilities.idempotency_key_max_length)]

    def _payment(
        self,
        attempt: Attempt,
        order: Order,
        approved: Approved,
        method: Method,
        secrets: RequestSecrets = (),
    ) -> Payment:
        return Payment(
            payment_id=f"pay_{order.order_id}",
            order_id=order.order_id,
            provider=attempt.provider,
            method=method,
            provider_txn_id=approved.provider_txn_id,
            attempt_id=attempt.attempt_id,
            amount=approved.amount,
            refunded=_nothing_in(approved.amount.currency),
            status=PaymentStatus.PAID,
            approved_at=approved.approved_at or self.clock.now(),
            attempts=attempt.seq,
            receipt=approved.receipt,
            provider_answer=self._kept_answer(attempt.provider, approved.answer, secrets),
        )

    def _kept_answer(
        self, provider: str, answer: Mapping[str, Any] | None, extra: RequestSecrets = ()
    ) -> dict[str, Any] | None:
        """A provider's answer as the journal may keep it: secrets (the adapter's and the
        request's own, such as the billing key) and card numbers masked."""
        if answer is None:
            return None
        declared = self._secrets.get(provider) or _NO_SECRETS
        return declared.scrub_answer(answer, Secrets(*extra) if extra else None)

    def _check_same_order(self, order: Order) -> FlowGen[Payment | None]:
        """Refuse a changed order; return its payment if it already has one."""
        _require_order(order)
        known: Order | None = yield from ask("get_order", order.order_id)
        if known is not None:
            check_same_order(order, known)
        paid: Payment | None = yield from ask("payment_for_order", order.order_id)
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
            yield from pause(step)
            waited += step
            step = min(step * 2, 2.0)
            payment = yield from ask("payment_for_order", order.order_id)
            if payment is not None:
                return self._duplicate(payment)
            attempts = yield from ask("attempts_for_order", order.order_id)
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
                return _Resolution(Resolved.UNKNOWN, error=last)
            if isinstance(outcome, Status):
                state = outcome.state
                if state == TxnState.PAID and outcome.amount is not None and outcome.cancelled == 0:
                    if (approved := _paid_charge(outcome, txn_id)) is not None:
                        return _Resolution(Resolved.PAID, approved=approved)
                elif state == TxnState.PAID:
                    # Paid and partly cancelled already: money moved; report as paid with
                    # what the provider holds so the caller can act on it.
                    approved = Approved(
                        provider_txn_id=outcome.provider_txn_id or txn_id or "",
                        amount=outcome.amount or order.amount,
                        provider_status=outcome.provider_status,
                        receipt=outcome.receipt,
                        answer=outcome.answer,
                    )
                    return _Resolution(Resolved.PAID, approved=approved)
                elif self._proves_nothing_moved(provider, outcome, since):
                    return _Resolution(Resolved.NOT_PAID)
                # IN_PROGRESS / AWAITING_CUSTOMER, or "not found" / a failed record that
                # proves nothing yet: ask again after a pause.
            elif isinstance(outcome, Failed):
                last = outcome.error
            if n < count:
                delay = self.retry.lookup_delay(n)
                if deadline_at is not None and self.clock.monotonic() + delay >= deadline_at:
                    break
                yield from pause(delay)
        return _Resolution(Resolved.UNKNOWN, error=last)

    def _void(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        txn_id: str | None,
        callback_params: Mapping[str, str] | None = None,
        secrets: RequestSecrets = (),
    ) -> FlowGen[bool]:
        """Undo an approval of unknown outcome where the provider offers it (net cancel).
        ``callback_params``: the return's parameters of the approval just sent, in this
        process only (never journaled)."""
        window = provider.capabilities.void_window
        if window is None or self.clock.now() - attempt.created_at > window:
            return False
        req = VoidRequest(
            attempt_id=attempt.attempt_id,
            order=order,
            provider_txn_id=txn_id,
            amount=order.amount,
            idempotency_key=self._derived_key(provider, attempt, "-void"),
            method=attempt.method,
            callback_params=dict(callback_params or {}),
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
            secrets,
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
        callback_params: Mapping[str, str] | None = None,
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
                return (
                    yield from self._succeed(provider, attempt, order, method, outcome, secrets)
                )
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
                if resolution.state is Resolved.PAID and resolution.approved is not None:
                    self.events.emit(
                        "payment.resolved",
                        attempt_id=attempt.attempt_id,
                        provider=provider.name,
                        result=resolution.state.value,
                    )
                    return (
                        yield from self._succeed(
                            provider, attempt, order, method, resolution.approved, secrets
                        )
                    )
                if resolution.state is Resolved.NOT_PAID:
                    self.events.emit(
                        "payment.resolved",
                        attempt_id=attempt.attempt_id,
                        provider=provider.name,
                        result=resolution.state.value,
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
                    yield from pause(wait)
                    yield from self._journal_pending(attempt)
                    continue
                if (
                    provider.capabilities.idempotency_header is not None
                    and replays < self.retry.attempts_per_provider
                    and (wait := self._replay_wait(state, error)) is not None
                ):
                    replays += 1
                    yield from pause(wait)
                    yield from self._journal_pending(attempt)
                    continue
                if (
                    yield from self._void(
                        provider, attempt, order, txn_id, callback_params, secrets
                    )
                ):
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
                        yield from pause(wait)
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
        if not (yield from ask("renew_lease", aid, lease, pending=True)):
            # Another worker's lease: the same request (same key) goes out under it.
            yield from ask("update_attempt", aid, state=AttemptState.PENDING)

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
        yield from ask(
            "update_attempt",
            aid,
            state=state,
            error_code=code,
            error_message=message,
            sent=sent,
            recheck_until=until,
        )

    def _succeed(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        method: Method,
        approved: Approved,
        secrets: RequestSecrets = (),
    ) -> FlowGen[Payment | PayfallbackError]:
        aid = attempt.attempt_id
        txn = approved.provider_txn_id
        try:
            self._check_amount(order, approved, provider.name, aid)
        except InvalidRequest as exc:
            # Money moved for the wrong amount: it cannot be the order's payment. Record
            # the charge as superseded, journal its refund, then send it.
            note = exc.message[:500]
            yield from ask(
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
        payment = self._payment(attempt, order, approved, method, secrets)
        try:
            stored: Payment = yield from ask("record_success", aid, payment)
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
        paid = yield from ask("payment_for_order", order.order_id)
        return paid is not None and (paid.provider, paid.provider_txn_id) == (provider, txn)

    def _compensate(
        self,
        provider: Provider,
        attempt: Attempt,
        order: Order,
        approved: Approved,
        *,
        reason: str,
    ) -> FlowGen[Refund | None]:
        """Give back a charge that cannot be the order's payment (the refunds layer)."""
        raise NotImplementedError
        yield  # a flow
