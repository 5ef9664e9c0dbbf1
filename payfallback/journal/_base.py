"""The journal contract: the durable record the Router writes before it sends anything.

Rules every implementation keeps (SQLite here, PostgreSQL in ``payfallback.journal.postgres``):

* Every write is committed before the method returns (durably, unless the backend was
  explicitly configured otherwise); nothing is half-written: each method is one
  transaction.
* An order has at most one ``SUCCEEDED`` attempt and at most one payment: a unique
  constraint in the database, not a check in Python.
* An order has at most one ``PENDING`` attempt whose lease has not run out, so two workers
  racing on one order never both send.
* A refund row is written (``OWED``) before its cancel is sent and is never deleted; it is
  returned by :meth:`Journal.refunds_owed` until it settles.
* Amounts of an order never change once journaled: a second call with the same order id
  and a different amount or currency is refused with ``InvalidRequest``.

Methods are synchronous. The async Router calls them in a worker thread so the event loop
never blocks on a commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from payfallback.errors import PayfallbackError
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Method,
    Order,
    Payment,
    Refund,
    RefundState,
)

__all__ = [
    "AttemptInFlight",
    "Journal",
    "JournalCounts",
    "OrderAlreadyPaid",
]


class AttemptInFlight(PayfallbackError):
    """Another attempt for this order is being sent right now (its lease is live)."""

    def __init__(self, order_id: str, attempt_id: str) -> None:
        super().__init__(
            f"order {order_id} has an attempt in flight; wait for it to finish",
            attempt_id=attempt_id,
        )
        self.order_id = order_id


class OrderAlreadyPaid(PayfallbackError):
    """The order already has its payment; ``payment`` is it. Nothing new may be sent."""

    def __init__(self, payment: Payment) -> None:
        super().__init__(f"order {payment.order_id} is already paid", provider=payment.provider)
        self.payment = payment


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
    ) -> Attempt:
        """Journal a new ``PENDING`` attempt (and the order, the first time), then return it.

        The attempt id is ``f"{order.order_id}_{seq}"`` with ``seq`` counting the order's
        attempts from 1. Raises ``OrderAlreadyPaid`` if the order has a payment,
        ``AttemptInFlight`` if another attempt is ``PENDING`` with a live lease, and
        ``InvalidRequest`` if the order id was journaled with another amount or currency.
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
    ) -> Attempt:
        """Move an attempt to ``state``; ``provider_txn_id`` is kept once learned."""
        ...

    def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        """Mark the attempt ``SUCCEEDED`` and store ``payment``, atomically.

        If the order already has a payment from another attempt, the attempt becomes
        ``SUPERSEDED`` instead and the existing payment is returned: the caller must then
        compensate (refund or void) this attempt's charge.
        """
        ...

    def renew_lease(self, attempt_id: str, lease_seconds: float) -> bool:
        """Claim an attempt for work (recovery) if its lease ran out; True if claimed."""
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

    def add_refund(self, refund: Refund) -> Refund:
        """Journal a refund as ``OWED`` before anything is sent.

        For ``kind="refund"`` the amount must fit in the payment's refundable amount minus
        refunds already owed: otherwise ``InvalidRequest`` says how much is left. A refund
        with the same ``refund_id`` already journaled is returned unchanged.
        """
        ...

    def update_refund(
        self,
        refund_id: str,
        *,
        state: RefundState,
        error_code: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Settle or retry-count a refund; ``SUCCEEDED`` adds to the payment's refunded sum.

        ``idempotency_key`` replaces the key for the next try. The Router gives one only
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

    def unresolved_attempts(self) -> Sequence[Attempt]:
        """``UNKNOWN`` attempts, ``PENDING`` ones whose lease ran out, and ``SUPERSEDED``
        ones with no refund journaled yet; oldest first."""
        ...

    def counts(self) -> JournalCounts: ...

    def close(self) -> None: ...
