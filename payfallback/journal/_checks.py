"""What every journal does the same way, whatever database it writes to: checks, and
rebuilding our models from rows (``sqlite3.Row`` and psycopg dict rows alike)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from payfallback.errors import InvalidRequest
from payfallback.models import (
    Attempt,
    AttemptState,
    Method,
    Money,
    Payment,
    PaymentStatus,
    Refund,
    RefundState,
)


def lease_duration(lease_seconds: float) -> timedelta:
    """A lease length from seconds, refusing what is not a finite, non-negative number."""
    if isinstance(lease_seconds, bool) or not (math.isfinite(lease_seconds) and lease_seconds >= 0):
        raise InvalidRequest(
            f"lease_seconds must be a finite number of seconds >= 0, got {lease_seconds!r}"
        )
    return timedelta(seconds=lease_seconds)


def check_payment_fits(attempt: Attempt, payment: Payment) -> None:
    """``record_success`` takes only a new payment of this very attempt."""
    where = f"payment {payment.payment_id} for attempt {attempt.attempt_id}"
    if payment.attempt_id != attempt.attempt_id:
        raise InvalidRequest(
            f"{where} names attempt {payment.attempt_id}; record it on its own attempt",
            attempt_id=attempt.attempt_id,
        )
    if payment.order_id != attempt.order_id or payment.provider != attempt.provider:
        raise InvalidRequest(
            f"{where} is for order {payment.order_id} at {payment.provider}, but the "
            f"attempt is for order {attempt.order_id} at {attempt.provider}",
            attempt_id=attempt.attempt_id,
        )
    if payment.refunded != Money(amount=0, currency=payment.amount.currency) or (
        payment.status is not PaymentStatus.PAID
    ):
        raise InvalidRequest(
            f"{where} must be recorded as new (status paid, nothing refunded); refunds "
            "are journaled with add_refund",
            attempt_id=attempt.attempt_id,
        )


def check_refund_fits(refund: Refund, payment: Payment | None) -> Payment:
    """A ``"refund"`` must name an existing payment, its order and attempt, in its currency;
    returns that payment."""
    if payment is None:
        raise InvalidRequest(
            f"refund {refund.refund_id}: no payment {refund.payment_id} in the journal"
        )
    if (payment.order_id, payment.attempt_id) != (refund.order_id, refund.attempt_id):
        raise InvalidRequest(
            f"refund {refund.refund_id} must name order {payment.order_id} and attempt "
            f"{payment.attempt_id}, which made payment {payment.payment_id}",
            attempt_id=refund.attempt_id,
        )
    if refund.amount.currency != payment.amount.currency:
        raise InvalidRequest(
            f"refund {refund.refund_id} is in {refund.amount.currency}, payment "
            f"{payment.payment_id} in {payment.amount.currency}"
        )
    return payment


class RowLike(Protocol):
    """A database row read by column name (``sqlite3.Row``, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _as_is(value: Any) -> datetime:
    # PostgreSQL hands back aware datetimes already (timestamptz).
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
    return value


def attempt_from_row(row: RowLike, dt: Callable[[Any], datetime] = _as_is) -> Attempt:
    return Attempt(
        attempt_id=row["attempt_id"],
        order_id=row["order_id"],
        seq=row["seq"],
        provider=row["provider"],
        method=Method(row["method"]),
        operation=row["operation"],
        idempotency_key=row["idempotency_key"],
        state=AttemptState(row["state"]),
        provider_txn_id=row["provider_txn_id"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        created_at=dt(row["created_at"]),
        updated_at=dt(row["updated_at"]),
    )


def payment_from_row(row: RowLike, dt: Callable[[Any], datetime] = _as_is) -> Payment:
    return Payment(
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        provider=row["provider"],
        method=Method(row["method"]),
        provider_txn_id=row["provider_txn_id"],
        attempt_id=row["attempt_id"],
        amount=Money(amount=row["amount"], currency=row["currency"]),
        refunded=Money(amount=row["refunded"], currency=row["currency"]),
        status=PaymentStatus(row["status"]),
        approved_at=dt(row["approved_at"]),
        attempts=row["attempts"],
    )


def refund_from_row(row: RowLike, dt: Callable[[Any], datetime] = _as_is) -> Refund:
    return Refund(
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        attempt_id=row["attempt_id"],
        provider=row["provider"],
        provider_txn_id=row["provider_txn_id"],
        amount=Money(amount=row["amount"], currency=row["currency"]),
        expected_remaining=row["expected_remaining"],
        reason=row["reason"],
        kind=row["kind"],
        idempotency_key=row["idempotency_key"],
        state=RefundState(row["state"]),
        error_code=row["error_code"],
        tries=row["tries"],
        created_at=dt(row["created_at"]),
        updated_at=dt(row["updated_at"]),
    )
