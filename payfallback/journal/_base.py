"""The journal contract: the durable record the Router writes before it sends anything.

Rules every implementation keeps (SQLite here, PostgreSQL in ``payfallback.journal.postgres``):

* Every write is committed before the method returns (durably, unless the backend was
  explicitly configured otherwise); nothing is half-written: each method is one
  transaction.
* An order has at most one ``SUCCEEDED`` attempt and at most one payment: a unique
  constraint in the database, not a check in Python.
* A provider transaction (``provider``, ``provider_txn_id``) is the payment of at most one
  order: a unique index; recording it for a second order raises ``TxnAlreadyRecorded``.
* An order has at most one ``PENDING`` attempt whose lease has not run out, so two workers
  racing on one order never both send; :meth:`Journal.in_flight_attempts` lists those
  that may be moving money right now.
* An attempt that ended ``FAILED`` after its request may have reached the provider can
  carry ``recheck_until``: until then :meth:`Journal.attempts_to_recheck` lists it, so a
  charge that appears late is still found. Only a ``FAILED`` attempt has one (a check in
  the database); any other state clears it.
* A refund row is written (``OWED``) before its cancel is sent and is never deleted; it is
  returned by :meth:`Journal.refunds_owed` until it settles. A refund's tax-free part
  never exceeds its amount (a check), and a payment has at most one refund per merchant
  request key (a unique index): journaling the same key again returns the first refund.
* Amounts of an order never change once journaled: a second call with the same order id
  and a different amount or currency is refused with ``InvalidRequest``.
* Schema changes are numbered steps applied when a journal is opened; a database made by
  an older release is upgraded in place, one step per transaction.

Methods are synchronous. The AsyncRouter calls them in a worker thread so the event loop
never blocks on a commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from payfallback.errors import PayfallbackError
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Method,
    Order,
    Payment,
    Refund,
    RefundReceipt,
    RefundState,
)

__all__ = [
    "AttemptInFlight",
    "AttemptsOpen",
    "CheckoutState",
    "Journal",
    "JournalCounts",
    "OrderAlreadyPaid",
    "TxnAlreadyRecorded",
]


class AttemptInFlight(PayfallbackError):
    """Another attempt for this order is being sent right now (its lease is live)."""

    def __init__(self, order_id: str, attempt_id: str) -> None:
        super().__init__(
            f"order {order_id} has an attempt in flight; wait for it to finish",
            attempt_id=attempt_id,
        )
        self.order_id = order_id


class AttemptsOpen(PayfallbackError):
    """The order has attempts that may have moved money and whose outcome is not known
    (``attempt_ids``, oldest first): they must be settled before another is sent. Nothing
    was written. Raised by ``begin_attempt(..., settle_first=True)``."""

    def __init__(self, order_id: str, attempt_ids: Sequence[str]) -> None:
        super().__init__(
            f"order {order_id} has attempts of unknown outcome ({', '.join(attempt_ids)}); "
            "settle them before sending another",
            attempt_id=attempt_ids[0],
        )
        self.order_id = order_id
        self.attempt_ids = tuple(attempt_ids)


class OrderAlreadyPaid(PayfallbackError):
    """The order already has its payment; ``payment`` is it. Nothing new may be sent."""

    def __init__(self, payment: Payment) -> None:
        super().__init__(f"order {payment.order_id} is already paid", provider=payment.provider)
        self.payment = payment


class TxnAlreadyRecorded(PayfallbackError):
    """The provider transaction is already the payment of another order; ``payment`` is
    that payment. Nothing was written: one charge never pays two orders."""

    def __init__(self, payment: Payment, *, attempt_id: str | None = None) -> None:
        super().__init__(
            f"this {payment.provider} transaction is already payment {payment.payment_id} "
            f"of order {payment.order_id}; it cannot pay another order",
            provider=payment.provider,
            attempt_id=attempt_id,
        )
        self.payment = payment


@dataclass(frozen=True, slots=True)
class CheckoutState:
    """A checkout as completing it finds it (see :meth:`Journal.checkout_state`)."""

    session: CheckoutSession
    order: Order
    attempt: Attempt
    payment: Payment | None


@dataclass(frozen=True, slots=True)
class JournalCounts:
    orders: int
    payments: int
    unresolved_attempts: int
    refunds_owed: int
    refunds_owed_amount: int


@runtime_checkable
class Journal(Protocol):
    """Durable record of orders, attempts, payments, refunds and checkout sessions."""

    def begin_attempt(
        self,
        order: Order,
        *,
        provider: str,
        method: Method,
        operation: str,
        idempotency_key: str,
        lease_seconds: float,
        settle_first: bool = False,
    ) -> Attempt:
        """Journal a new ``PENDING`` attempt (and the order, the first time), then return it.

        One transaction, and the only one a charge needs before it sends: every check is
        made here, by the database, so the Router reads nothing first. The attempt id is
        ``f"{order.order_id}_{seq}"`` with ``seq`` counting the order's attempts from 1.
        Raises ``OrderAlreadyPaid`` if the order has a payment, ``AttemptInFlight`` if
        another attempt is ``PENDING`` with a live lease, ``InvalidRequest`` if the order id
        was journaled with another amount, currency or tax-free part, and — with
        ``settle_first`` — ``AttemptsOpen`` if the order has attempts of unknown outcome
        (``UNKNOWN``, or ``PENDING`` with a lease that ran out). Nothing is written when it
        raises.
        """
        ...

    def update_attempt(
        self,
        attempt_id: str,
        *,
        state: AttemptState,
        provider_txn_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        sent: bool = False,
        recheck_until: datetime | None = None,
    ) -> Attempt:
        """Move an attempt to ``state``; ``None`` never erases a value already journaled.

        ``SUCCEEDED`` is reached only through :meth:`record_success`, and a ``SUCCEEDED``
        attempt never moves again; every other move is allowed (a ``FAILED`` attempt whose
        charge appears late becomes ``SUPERSEDED``, or ``UNKNOWN`` while it is looked up).
        Leaving ``PENDING`` ends the lease; going back to ``PENDING`` raises
        ``AttemptInFlight`` while another attempt of the order is live.

        ``sent=True`` stamps ``sent_at`` with the journal's now: the last moment a request
        of this attempt may have reached the provider. ``recheck_until`` is stored with
        ``state=FAILED`` only (``InvalidRequest`` otherwise); a failed attempt keeps the
        one it has when none is given, and a move to any other state clears it.
        """
        ...

    def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        """Mark the attempt ``SUCCEEDED`` and store ``payment``, atomically.

        If the order already has a payment from another attempt, the attempt becomes
        ``SUPERSEDED`` instead and the existing payment is returned: the caller must then
        compensate (refund or void) this attempt's charge. Recording the same attempt
        again returns its payment. Raises ``TxnAlreadyRecorded`` (writing nothing) if the
        payment's provider transaction is already the payment of another order. Either
        way the attempt's ``recheck_until`` is cleared.
        """
        ...

    def renew_lease(self, attempt_id: str, lease_seconds: float, *, pending: bool = False) -> bool:
        """Claim an attempt for work (recovery) if its lease ran out; True if claimed.

        With ``pending=True`` the claim is for a request about to be sent: the attempt
        moves to ``PENDING`` in the same write, and if another attempt of its order is
        pending with a live lease nothing is written and ``AttemptInFlight`` is raised.
        """
        ...

    def get_order(self, order_id: str) -> Order | None: ...

    def get_attempt(self, attempt_id: str) -> Attempt | None: ...

    def attempts_for_order(self, order_id: str) -> Sequence[Attempt]: ...

    def get_payment(self, payment_id: str) -> Payment | None: ...

    def payment_for_order(self, order_id: str) -> Payment | None: ...

    def save_checkout(self, session: CheckoutSession) -> None:
        """Store a started checkout (its attempt moves to ``REDIRECTED`` alongside)."""
        ...

    def get_checkout(self, session_id: str) -> CheckoutSession | None: ...

    def checkout_state(self, session_id: str) -> CheckoutState | None:
        """A checkout with its order, its attempt and the order's payment (if paid), read
        together in one transaction; None for an unknown session. What completing a
        checkout needs before the approval is sent."""
        ...

    def add_refund(self, refund: Refund) -> Refund:
        """Journal a refund as ``OWED`` before anything is sent.

        For ``kind="refund"`` the amount must fit in the payment's refundable amount minus
        refunds already owed: otherwise ``InvalidRequest`` says how much is left. Its
        ``tax_free_amount`` must be from 0 to its amount. A refund with the same
        ``refund_id``, or with the same ``request_key`` for the same payment, already
        journaled is returned unchanged (before any check of what is left): the caller
        compares ``request_fingerprint`` to tell a repeat from a key reused for another
        request. A ``request_key`` needs a ``payment_id``.
        """
        ...

    def refund_by_request_key(self, payment_id: str, request_key: str) -> Refund | None:
        """The refund of ``payment_id`` journaled with the merchant's ``request_key``."""
        ...

    def update_refund(
        self,
        refund_id: str,
        *,
        state: RefundState,
        error_code: str | None = None,
        idempotency_key: str | None = None,
        receipt: RefundReceipt | None = None,
        provider_answer: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Settle or retry-count a refund; ``SUCCEEDED`` adds to the payment's refunded sum.

        ``receipt`` and ``provider_answer`` keep what the provider reported about a refund
        it made (its answer already masked). ``idempotency_key`` replaces the key for the
        next try. The Router gives one only
        after a try that certainly did not take effect: providers that replay a stored
        error for a known key (Toss Payments keeps them 15 days) would otherwise answer
        every later try of an owed refund with that same error.
        """
        ...

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> bool:
        """Claim an owed refund for work if no other worker holds it; True if claimed."""
        ...

    def get_refund(self, refund_id: str) -> Refund | None: ...

    def refunds_for_order(self, order_id: str) -> Sequence[Refund]: ...

    def refunds_owed(self) -> Sequence[Refund]: ...

    def payments_between(self, start: datetime, end: datetime) -> Sequence[Payment]:
        """Payments approved in ``[start, end)``, oldest first (a day's sales, for the
        export an accountant gets)."""
        ...

    def refunds_between(self, start: datetime, end: datetime) -> Sequence[Refund]:
        """Refunds and compensations settled (``SUCCEEDED``) in ``[start, end)``, oldest
        first."""
        ...

    def unresolved_attempts(self) -> Sequence[Attempt]:
        """``UNKNOWN`` attempts, ``PENDING`` ones whose lease ran out, and ``SUPERSEDED``
        ones with no refund journaled yet; oldest first. Neither a ``FAILED`` attempt
        waiting for a recheck nor one in flight is listed."""
        ...

    def attempts_to_recheck(self) -> Sequence[Attempt]:
        """``FAILED`` attempts whose ``recheck_until`` is after now; oldest first."""
        ...

    def in_flight_attempts(self) -> Sequence[Attempt]:
        """``PENDING`` attempts whose lease is live and that may be moving money, oldest
        first: every operation but ``ready`` (starting a checkout moves nothing), and a
        ``ready`` attempt whose checkout is saved (it went back to ``PENDING`` to approve)."""
        ...

    def counts(self) -> JournalCounts: ...

    def close(self) -> None: ...
