"""The :class:`~payfallback.journal.Journal` methods of the synchronous journals, written once.

Every method is one transaction of :class:`~payfallback.journal._transactions.Transactions`
(its SQL and checks); a journal only says how a flow is carried out:

* ``_write``: a transaction that may write (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
  transaction that locks the rows it checks);
* ``_read``: a read of one statement (SQLite ``BEGIN DEFERRED``; PostgreSQL no
  transaction at all);
* ``_read_consistent``: a read of several statements that must agree with each other.

:class:`~payfallback.journal.SQLiteJournal` and
:class:`~payfallback.journal.postgres.PostgresJournal` share them;
:class:`~payfallback.journal.postgres.AsyncPostgresJournal` awaits the same transactions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from payfallback.journal._base import CheckoutState, JournalCounts
from payfallback.journal._flow import Flow
from payfallback.journal._transactions import Transactions
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

__all__ = ["SyncJournalMethods"]

T = TypeVar("T")


class SyncJournalMethods:
    """The Journal protocol's methods over ``_write``, ``_read`` and ``_read_consistent``."""

    _tx: Transactions

    def _write(self, flow: Flow[T]) -> T:
        raise NotImplementedError

    def _read(self, flow: Flow[T]) -> T:
        raise NotImplementedError

    def _read_consistent(self, flow: Flow[T]) -> T:
        raise NotImplementedError

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
        return self._write(
            self._tx.begin_attempt(
                order,
                provider=provider,
                method=method,
                operation=operation,
                idempotency_key=idempotency_key,
                lease_seconds=lease_seconds,
                settle_first=settle_first,
            )
        )

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

        ``SUCCEEDED`` is reached only through :meth:`record_success` (it needs its payment),
        and a ``SUCCEEDED`` attempt never moves again: it is the order's payment. Moving an
        attempt back to ``PENDING`` (say, a redirected checkout whose approval is about to
        be sent, after :meth:`renew_lease` claimed it) raises ``AttemptInFlight`` if another
        attempt of the order is pending with a live lease, as :meth:`begin_attempt` does.
        ``sent`` and ``recheck_until`` are as :meth:`Journal.update_attempt
        <payfallback.journal.Journal.update_attempt>` says.
        """
        return self._write(
            self._tx.update_attempt(
                attempt_id,
                state=state,
                provider_txn_id=provider_txn_id,
                error_code=error_code,
                error_message=error_message,
                sent=sent,
                recheck_until=recheck_until,
            )
        )

    def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        """Mark the attempt ``SUCCEEDED`` and store ``payment``, atomically.

        If the order already has a payment from another attempt, the attempt becomes
        ``SUPERSEDED`` (keeping ``payment.provider_txn_id``, which its compensation needs)
        and the existing payment is returned. Recording the same attempt twice returns the
        stored payment. ``payment`` must be new (nothing refunded, status ``PAID``), name
        this attempt, its order and provider, and carry the order's journaled amount. A
        provider transaction that is already another order's payment raises
        ``TxnAlreadyRecorded`` and writes nothing.
        """
        return self._write(self._tx.record_success(attempt_id, payment))

    def renew_lease(self, attempt_id: str, lease_seconds: float, *, pending: bool = False) -> bool:
        """Claim an attempt for work if its lease ran out; True if this call claimed it.

        Settled attempts (``SUCCEEDED``, ``FAILED``) have nothing left to do and are never
        claimed. A live lease is never extended, not even by the worker holding it, so two
        workers can never both hold one attempt.

        ``pending=True`` claims it for a request about to be sent (a checkout's approval, a
        same-key replay): the attempt moves to ``PENDING`` in the same write, as
        :meth:`update_attempt` would move it, and if another attempt of its order is
        pending with a live lease nothing is written and ``AttemptInFlight`` is raised.
        """
        return self._write(self._tx.renew_lease(attempt_id, lease_seconds, pending=pending))

    def get_order(self, order_id: str) -> Order | None:
        return self._read(self._tx.get_order(order_id))

    def get_attempt(self, attempt_id: str) -> Attempt | None:
        return self._read(self._tx.get_attempt(attempt_id))

    def attempts_for_order(self, order_id: str) -> Sequence[Attempt]:
        return self._read(self._tx.attempts_for_order(order_id))

    def get_payment(self, payment_id: str) -> Payment | None:
        return self._read(self._tx.get_payment(payment_id))

    def payment_for_order(self, order_id: str) -> Payment | None:
        return self._read(self._tx.payment_for_order(order_id))

    def unresolved_attempts(self) -> Sequence[Attempt]:
        return self._read(self._tx.unresolved_attempts())

    def attempts_to_recheck(self) -> Sequence[Attempt]:
        """See :meth:`Journal.attempts_to_recheck`; oldest first."""
        return self._read(self._tx.attempts_to_recheck())

    def in_flight_attempts(self) -> Sequence[Attempt]:
        """See :meth:`Journal.in_flight_attempts`; oldest first."""
        return self._read(self._tx.in_flight_attempts())

    def save_checkout(self, session: CheckoutSession) -> None:
        """Store a started checkout under its attempt; the attempt moves to ``REDIRECTED``.

        ``session.session_id`` is the attempt id. Saving a session again replaces it (a
        refreshed expiry, say); the attempt must still be pending or redirected.
        """
        self._write(self._tx.save_checkout(session))

    def get_checkout(self, session_id: str) -> CheckoutSession | None:
        return self._read(self._tx.get_checkout(session_id))

    def checkout_state(self, session_id: str) -> CheckoutState | None:
        return self._read_consistent(self._tx.checkout_state(session_id))

    def add_refund(self, refund: Refund) -> Refund:
        """Journal a refund as ``OWED`` before anything is sent; see :class:`Journal`.

        The refund must be new (``OWED``, no tries) with a positive amount, and its
        attempt must be journaled for its order. A ``"refund"`` names its payment and that
        payment's attempt, in the payment's currency. The new row has no lease: the caller
        claims it with :meth:`renew_refund_lease` before sending its cancel. A refund with
        the same id, or the same ``request_key`` for its payment, is returned unchanged.
        """
        return self._write(self._tx.add_refund(refund))

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
        """Record one try of a refund: still ``OWED``, or settled.

        Every call counts a try. ``SUCCEEDED`` and ``FAILED`` are final: a settled refund
        can be reported again in the same state but never moves to another. The first
        ``SUCCEEDED`` of a ``"refund"`` adds its amount to the payment's ``refunded`` and
        sets the payment's status, in the same transaction. ``None`` keeps the last error
        code.
        """
        return self._write(
            self._tx.update_refund(
                refund_id,
                state=state,
                error_code=error_code,
                idempotency_key=idempotency_key,
                receipt=receipt,
                provider_answer=provider_answer,
            )
        )

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> bool:
        """Claim an owed refund if no other worker holds it; True if this call claimed it.

        Settled refunds are never claimed, and a live lease is never extended.
        """
        return self._write(self._tx.renew_refund_lease(refund_id, lease_seconds))

    def get_refund(self, refund_id: str) -> Refund | None:
        return self._read(self._tx.get_refund(refund_id))

    def refund_by_request_key(self, payment_id: str, request_key: str) -> Refund | None:
        """See :meth:`Journal.refund_by_request_key`."""
        return self._read(self._tx.refund_by_request_key(payment_id, request_key))

    def refunds_for_order(self, order_id: str) -> Sequence[Refund]:
        return self._read(self._tx.refunds_for_order(order_id))

    def refunds_owed(self) -> Sequence[Refund]:
        return self._read(self._tx.refunds_owed())

    def payments_between(self, start: datetime, end: datetime) -> Sequence[Payment]:
        return self._read(self._tx.payments_between(start, end))

    def refunds_between(self, start: datetime, end: datetime) -> Sequence[Refund]:
        return self._read(self._tx.refunds_between(start, end))

    def counts(self) -> JournalCounts:
        return self._read(self._tx.counts())
