"""Refunds and compensation: a refund is journaled ``OWED`` before its cancel is sent and
stays owed until the provider confirms it; a charge that cannot be the order's payment is
given back the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from payfallback._calls import (
    _REQUEST_KEY_MAX,
    ProviderCalls,
)
from payfallback._flow import (
    FlowGen,
    ask,
    pause,
)
from payfallback.errors import (
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import (
    Attempt,
    AttemptState,
    Money,
    Order,
    Payment,
    Refund,
    RefundState,
    check_text,
)
from payfallback.provider import (
    Approved,
    Cancelled,
    CancelRequest,
    Failed,
    Operation,
    Provider,
    Status,
    TxnState,
)


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


class Refunds(ProviderCalls):
    """Refunds, compensation and what they need on top of talking to providers."""

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
            earlier = yield from ask("refund_by_request_key", payment_id, key)
            if earlier is not None:
                return self._same_refund(earlier, fingerprint)
        payment = yield from ask("get_payment", payment_id)
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
        order = yield from ask("get_order", payment.order_id)
        if order is None:  # pragma: no cover - the journal keeps orders with payments
            raise InvalidRequest(f"payment {payment_id} has no journaled order")
        earlier_refunds = yield from ask("refunds_for_order", payment.order_id)
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
        stored = yield from ask("add_refund", refund)
        return stored, (yield from self._claim_refund(stored))

    def _claim_refund(self, refund: Refund) -> FlowGen[bool]:
        rid = refund.refund_id
        lease = self.config.lease_seconds
        claimed: bool = yield from ask("renew_refund_lease", rid, lease)
        return claimed

    def _still_owed(
        self, refund: Refund, reason: str, *, new_key: str | None = None
    ) -> FlowGen[Refund]:
        rid = refund.refund_id
        updated: Refund = yield from ask(
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

    def _settle_refund(self, refund: Refund, cancelled: Cancelled | None = None) -> FlowGen[Refund]:
        rid = refund.refund_id
        updated: Refund = yield from ask(
            "update_refund",
            rid,
            state=RefundState.SUCCEEDED,
            receipt=cancelled.receipt if cancelled else None,
            provider_answer=self._kept_answer(refund.provider, cancelled.answer)
            if cancelled
            else None,
        )
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
        payment = yield from ask("get_payment", pid)
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
        older = yield from ask("refunds_for_order", oid)
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
            payment = yield from ask("get_payment", payment_id)
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
            yield from ask("update_refund", rid, state=RefundState.FAILED, error_code=code)
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
                    return (yield from self._settle_refund(refund, outcome))
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
                    yield from pause(wait)
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
                yield from ask(
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
        attempt = yield from ask("get_attempt", aid)
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
