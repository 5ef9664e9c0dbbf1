"""What every journal does the same way, whatever database it writes to: checks, and
rebuilding our models from rows (``sqlite3.Row`` and psycopg dict rows alike)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from payfallback.errors import ConfigurationError, InvalidRequest
from payfallback.models import (
    MAX_AMOUNT,
    Attempt,
    AttemptState,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Receipt,
    Refund,
    RefundReceipt,
    RefundState,
)

#: The longest lease taken: a lease guards one request (seconds, minutes); anything longer
#: is a unit mistake, and would overflow ``datetime`` long before it meant anything.
MAX_LEASE_SECONDS = 7 * 24 * 3600
#: The largest count (a payment's ``attempts``) a PostgreSQL ``integer`` column holds.
MAX_COUNT = 2**31 - 1
REFUND_KINDS = ("refund", "compensation")


_NUMBERS = (int, float)


def lease_duration(lease_seconds: float) -> timedelta:
    """A lease length from seconds, refusing what is not a finite number of seconds from 0
    to a week."""
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, _NUMBERS)
        or not (math.isfinite(lease_seconds) and 0 <= lease_seconds <= MAX_LEASE_SECONDS)
    ):
        raise InvalidRequest(
            f"lease_seconds must be a finite number of seconds from 0 to {MAX_LEASE_SECONDS} "
            f"(a week), got {lease_seconds!r}"
        )
    return timedelta(seconds=lease_seconds)


def utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC, the only zone the journal stores);
    ``InvalidRequest`` naming ``what`` if it has no UTC equivalent a ``datetime`` can hold."""
    if not isinstance(moment, datetime):
        raise InvalidRequest(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{what} {moment.isoformat()} is out of range") from None


#: Attempts of an order that may have moved money and whose outcome nobody is finding out
#: right now: ``unknown``, and ``pending`` with a lease that ran out (its worker died
#: mid-request) — but not a ``ready`` attempt with no checkout saved, which was starting a
#: checkout and moves nothing. Named parameters ``order_id`` and ``now``.
OPEN_ATTEMPTS_SQL = """
    SELECT a.attempt_id FROM attempts a
    WHERE a.order_id = %(order_id)s AND (
        a.state = 'unknown'
        OR (a.state = 'pending' AND a.lease_until <= %(now)s
            AND (a.operation <> 'ready'
                 OR EXISTS (SELECT 1 FROM checkouts c WHERE c.session_id = a.attempt_id)))
    )
    ORDER BY a.seq
"""


def attempt_is_open(attempt: Attempt, now: datetime, *, checkout_saved: bool) -> bool:
    """The rule of ``OPEN_ATTEMPTS_SQL``, for an attempt already read: it may have moved
    money and nobody is finding out right now. ``checkout_saved``: whether a ``ready``
    attempt's checkout was saved (only then can it be approving). A test holds the two to
    the same answers."""
    if attempt.state is AttemptState.UNKNOWN:
        return True
    if attempt.state is not AttemptState.PENDING:
        return False
    lease_over = attempt.lease_until is None or attempt.lease_until <= now
    return lease_over and (attempt.operation != "ready" or checkout_saved)


def check_same_order(order: Order, journaled: Order) -> None:
    """Refuse ``order`` if its id was journaled with other amounts: an order's amount,
    currency and tax-free part never change once journaled."""
    if journaled.amount != order.amount:
        raise InvalidRequest(
            f"order {order.order_id} was already journaled for {journaled.amount}, not "
            f"{order.amount}; an order's amount never changes — use a new order id"
        )
    if journaled.tax_free_amount != order.tax_free_amount:
        raise InvalidRequest(
            f"order {order.order_id} was already journaled with a tax-free part of "
            f"{journaled.tax_free_amount}, not {order.tax_free_amount}; an order's amounts "
            "never change — use a new order id"
        )


def journal_closed(where: str) -> ConfigurationError:
    """A call on a journal that ``close()`` has closed (it stays closed)."""
    return ConfigurationError(
        f"journal {where} is closed: close it only once nothing uses it any more (a Router "
        "that opened its own journal closes it with itself), or open a new one"
    )


def key_reused(attempt_id: str, provider: str) -> InvalidRequest:
    """An idempotency key already journaled for another attempt at ``provider``."""
    return InvalidRequest(
        f"attempt {attempt_id} already used this idempotency key at {provider}: mint a new "
        "key for "
        "every attempt (retries of one attempt reuse its key without a new begin_attempt)",
        provider=provider,
    )


def check_payment_amount(payment: Payment, attempt: Attempt, journaled: Money) -> None:
    """A payment is for its order's journaled amount, or it is not the order's payment."""
    if payment.amount != journaled:
        raise InvalidRequest(
            f"payment {payment.payment_id} is for {payment.amount}, but order "
            f"{attempt.order_id} was journaled for {journaled}: a charge of another "
            "amount cannot be the order's payment (mark the attempt superseded and "
            "compensate it)",
            attempt_id=attempt.attempt_id,
        )


def payment_id_taken(payment_id: str, owner: str, attempt_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"payment id {payment_id} is already the payment of {owner}; payment ids are unique",
        attempt_id=attempt_id,
    )


def check_attempt_update(
    attempt_id: str, state: AttemptState, recheck_until: datetime | None
) -> datetime | None:
    """What ``update_attempt`` refuses before it reads anything; the recheck time in UTC."""
    if state is AttemptState.SUCCEEDED:
        raise InvalidRequest(
            f"attempt {attempt_id} cannot be marked succeeded by update_attempt; use "
            "record_success, which stores its payment in the same transaction",
            attempt_id=attempt_id,
        )
    if recheck_until is None:
        return None
    if state is not AttemptState.FAILED:
        raise InvalidRequest(
            f"attempt {attempt_id}: recheck_until is kept only for an attempt that ends "
            f"failed, not {state.value} (every other state is looked after by recover() "
            "already)",
            attempt_id=attempt_id,
        )
    return utc(recheck_until, f"attempt {attempt_id}: recheck_until")


def check_payment_fits(attempt: Attempt, payment: Payment) -> None:
    """``record_success`` takes only a new payment of this very attempt."""
    if payment.attempt_id == attempt.attempt_id and (
        payment.order_id != attempt.order_id or payment.provider != attempt.provider
    ):
        raise InvalidRequest(
            f"payment {payment.payment_id} for attempt {attempt.attempt_id} is for order "
            f"{payment.order_id} at {payment.provider}, but the attempt is for order "
            f"{attempt.order_id} at {attempt.provider}",
            attempt_id=attempt.attempt_id,
        )
    check_new_payment(attempt.attempt_id, payment)


def check_new_payment(attempt_id: str, payment: Payment) -> None:
    """What :func:`check_payment_fits` refuses without reading the attempt."""

    def where() -> str:
        return f"payment {payment.payment_id} for attempt {attempt_id}"

    if payment.attempt_id != attempt_id:
        raise InvalidRequest(
            f"{where()} names attempt {payment.attempt_id}; record it on its own attempt",
            attempt_id=attempt_id,
        )
    if isinstance(payment.attempts, bool) or not 0 <= payment.attempts <= MAX_COUNT:
        raise InvalidRequest(
            f"{where()}: attempts must be a count from 0 to {MAX_COUNT}, got {payment.attempts}",
            attempt_id=attempt_id,
        )
    if payment.approved_at.tzinfo is not UTC:
        utc(payment.approved_at, f"{where()}: approved_at")
    refunded = payment.refunded
    if (
        refunded.amount != 0
        or refunded.currency != payment.amount.currency
        or payment.status is not PaymentStatus.PAID
    ):
        raise InvalidRequest(
            f"{where()} must be recorded as new (status paid, nothing refunded); refunds "
            "are journaled with add_refund",
            attempt_id=attempt_id,
        )


def check_new_refund(refund: Refund) -> None:
    """What ``add_refund`` refuses before it reads anything."""
    if refund.kind not in REFUND_KINDS:
        raise InvalidRequest(
            f"refund {refund.refund_id}: kind must be 'refund' or 'compensation', got "
            f"{refund.kind!r}"
        )
    if refund.state is not RefundState.OWED or refund.tries != 0:
        raise InvalidRequest(
            f"refund {refund.refund_id} must be journaled as owed with no tries; "
            "update_refund records what happened next"
        )
    if refund.amount.amount <= 0:
        raise InvalidRequest(f"refund {refund.refund_id}: amount must be greater than zero")
    if not 0 <= refund.tax_free_amount <= refund.amount.amount:
        raise InvalidRequest(
            f"refund {refund.refund_id}: tax_free_amount {refund.tax_free_amount} must be "
            f"from 0 to the refund's amount {refund.amount.amount}"
        )
    if not 0 <= refund.expected_remaining <= MAX_AMOUNT:
        raise InvalidRequest(
            f"refund {refund.refund_id}: expected_remaining {refund.expected_remaining} must "
            f"be from 0 to {MAX_AMOUNT}"
        )
    if refund.request_key is not None and refund.payment_id is None:
        raise InvalidRequest(
            f"refund {refund.refund_id} has a request_key but names no payment; a request "
            "key is unique per payment"
        )
    if refund.request_fingerprint is not None and refund.request_key is None:
        raise InvalidRequest(
            f"refund {refund.refund_id} has a request_fingerprint but no request_key; the "
            "fingerprint records what its key was first used with"
        )
    utc(refund.created_at, f"refund {refund.refund_id}: created_at")
    utc(refund.updated_at, f"refund {refund.refund_id}: updated_at")


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


def aware(value: Any) -> datetime:
    # PostgreSQL hands back aware datetimes already (timestamptz).
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
    return value


def _maybe(dt: Callable[[Any], datetime], value: Any) -> datetime | None:
    return None if value is None else dt(value)


def attempt_from_row(row: RowLike, dt: Callable[[Any], datetime] = aware) -> Attempt:
    state = AttemptState(row["state"])
    return Attempt(
        attempt_id=row["attempt_id"],
        order_id=row["order_id"],
        seq=row["seq"],
        provider=row["provider"],
        method=Method(row["method"]),
        operation=row["operation"],
        idempotency_key=row["idempotency_key"],
        state=state,
        provider_txn_id=row["provider_txn_id"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        created_at=dt(row["created_at"]),
        updated_at=dt(row["updated_at"]),
        # The column also holds recovery's claims on redirected, unknown and superseded
        # attempts; the model shows a lease only where it means "being sent".
        lease_until=dt(row["lease_until"]) if state is AttemptState.PENDING else None,
        sent_at=_maybe(dt, row["sent_at"]),
        recheck_until=_maybe(dt, row["recheck_until"]),
    )


def payment_from_row(row: RowLike, dt: Callable[[Any], datetime] = aware) -> Payment:
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
        receipt=None
        if row["receipt_json"] is None
        else Receipt.model_validate_json(row["receipt_json"], strict=False),
        provider_answer=_answer(row["answer_json"]),
    )


def _answer(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def receipt_json(receipt: Receipt | RefundReceipt | None) -> str | None:
    """How a receipt is kept in the journal (JSON text; None when there is none)."""
    return None if receipt is None else receipt.model_dump_json(exclude_none=True)


def answer_json(answer: Mapping[str, Any] | None) -> str | None:
    """How a provider's (masked) answer is kept in the journal."""
    return None if answer is None else json.dumps(answer, ensure_ascii=False, default=str)


def refund_from_row(row: RowLike, dt: Callable[[Any], datetime] = aware) -> Refund:
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
        tax_free_amount=row["tax_free_amount"],
        request_key=row["request_key"],
        request_fingerprint=row["request_fingerprint"],
        receipt=None
        if row["receipt_json"] is None
        else RefundReceipt.model_validate_json(row["receipt_json"], strict=False),
        provider_answer=_answer(row["answer_json"]),
    )
