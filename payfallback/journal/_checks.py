"""Checks every journal makes the same way, whatever database it writes to."""

from __future__ import annotations

import math
from datetime import timedelta

from payfallback.errors import InvalidRequest
from payfallback.models import Attempt, Money, Payment, PaymentStatus


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
