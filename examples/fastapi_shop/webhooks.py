"""Provider webhooks: trust nothing a delivery says until the provider confirms it.

* **PortOne** signs deliveries (Standard Webhooks): the signature is checked over the raw
  body with :func:`payfallback_portone.verify_webhook` before anything else; a bad one is
  answered ``400`` and changes nothing. The event id is the ``webhook-id`` header.
* **Toss Payments** does not sign ``PAYMENT_STATUS_CHANGED``; the delivery is only a hint
  to ask. The event id is the ``tosspayments-webhook-transmission-id`` header, or the
  SHA-256 of the body when it is missing.

For both, the payment is then *re-fetched* with the provider adapter's own ``lookup``
(``build_lookup`` → the shop's httpx client → ``parse_lookup``), and only that answer is
acted on: a payment the provider reports paid but the journal does not have is completed
with ``router.complete_checkout()`` (idempotent per order: the customer may have paid and
closed the tab before the return URL loaded), a cancellation the shop did not make is noted
on the order for staff, and anything else is just noted. Deliveries about attempts that are
not this shop's are ignored without asking the provider anything.

Toss's deliveries are unauthenticated, so anyone can send one, with a fresh transmission
id each time, about any attempt id they can guess. Two rules keep that from making the
shop hammer Toss:

* **Only what the journal needs is asked.** The delivery's claimed status
  (``data.status``; for PortOne the event type) is weighed against the attempt as the
  journal holds it, and a claim that could not change anything is ignored without a
  request: "paid" about an attempt already recorded as the payment, "cancelled" about a
  payment already refunded in full, "failed" about one that succeeded or failed already,
  and statuses the shop does not act on (``READY``, ``IN_PROGRESS`` …). A "paid" claim
  about an attempt recorded as failed *is* asked: if it were true, money would be held
  that the shop believes it never took. (:func:`needs_asking`)
* **Re-fetches are bounded per attempt**: at most ``Settings.webhook_refetch_limit``
  provider lookups per attempt within ``Settings.webhook_refetch_window`` seconds (counted
  in the shop's database, so across restarts and workers). Past that the delivery is
  answered ``429 throttled`` and nothing is recorded; Toss delivers a non-200 again later
  (up to 7 times, 1 minute to about 68 hours apart:
  https://docs.tosspayments.com/guides/webhook, official, high confidence), so a genuine
  delivery is delayed, not lost — and the return URL and ``router.recover()`` settle the
  payment anyway.

A delivery already recorded is answered ``200`` at once (see :mod:`.store` for why recording
after processing is safe). When the provider cannot be asked now, the answer is ``503`` and
nothing is recorded, so the provider delivers again later.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from payfallback_portone import verify_webhook
from pydantic import SecretStr

from payfallback import (
    AsyncRouter,
    Attempt,
    AttemptState,
    Order,
    OutcomeUnknown,
    PayfallbackError,
    Payment,
    ProviderUnavailable,
)
from payfallback.provider import Failed, LookupRequest, Status, TxnState

from .settings import PROVIDER_LABELS
from .store import ShopStore, WebhookEvent

__all__ = [
    "BadDelivery",
    "Claim",
    "Notification",
    "WebhookResult",
    "needs_asking",
    "parse_portone",
    "parse_toss",
    "process",
]

_log = logging.getLogger("examples.fastapi_shop.webhooks")


class Claim(StrEnum):
    """What a delivery says happened. Never acted on; only used to decide whether to ask."""

    PAID = "paid"
    CANCELLED = "cancelled"
    PARTLY_CANCELLED = "partly cancelled"
    FAILED = "failed"
    OTHER = "other"  # a status the shop does not act on


#: Toss ``Payment.status`` values (https://docs.tosspayments.com/reference, the Payment
#: object, and https://docs.tosspayments.com/en/webhooks; official, high confidence).
#: READY, IN_PROGRESS and WAITING_FOR_DEPOSIT are OTHER.
_TOSS_CLAIMS = {
    "DONE": Claim.PAID,
    "CANCELED": Claim.CANCELLED,
    "PARTIAL_CANCELED": Claim.PARTLY_CANCELLED,
    "ABORTED": Claim.FAILED,
    "EXPIRED": Claim.FAILED,
}
#: PortOne V2 ``Transaction.*`` webhook types (https://developers.portone.io/opi/ko/
#: integration/webhook/readme-v2, official, high confidence); others are OTHER.
_PORTONE_CLAIMS = {
    "Transaction.Paid": Claim.PAID,
    "Transaction.Cancelled": Claim.CANCELLED,
    "Transaction.PartialCancelled": Claim.PARTLY_CANCELLED,
    "Transaction.Failed": Claim.FAILED,
}


@dataclass(frozen=True, slots=True)
class Notification:
    """What a delivery points at: which attempt, at which provider. Never what happened."""

    provider: str
    event_id: str
    event_type: str
    attempt_id: str
    provider_txn_id: str | None
    #: What the return URL would have carried, for completing a checkout from here.
    callback_params: Mapping[str, str]
    #: What the delivery claims; decides only whether the provider is worth asking.
    claim: Claim


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """The HTTP answer to a delivery."""

    status_code: int
    body: dict[str, str]
    headers: dict[str, str] | None = None


class BadDelivery(Exception):
    """The delivery is unreadable or fails verification: answer 400, do nothing."""


def parse_portone(
    headers: Mapping[str, str], body: bytes, *, secret: SecretStr
) -> Notification | None:
    """Verify a PortOne delivery; None for event types the shop does not act on.

    Raises :class:`BadDelivery` when the signature, timestamp or body does not verify.
    """
    try:
        payload = verify_webhook(headers, body, secret=secret)
    except PayfallbackError as exc:  # WebhookSignatureError, or a signed body not JSON
        raise BadDelivery(exc.message) from None
    event_type = payload.get("type")
    data = payload.get("data")
    # Types the shop does not handle (BillingKey.*, new ones) are to be ignored quietly.
    if not isinstance(event_type, str) or not event_type.startswith("Transaction."):
        return None
    payment_id = data.get("paymentId") if isinstance(data, dict) else None
    if not isinstance(payment_id, str) or not payment_id:
        raise BadDelivery("a Transaction event without data.paymentId")
    event_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    return Notification(
        provider="portone",
        event_id=event_id,
        event_type=event_type,
        attempt_id=payment_id,  # the shop's PortOne paymentId is its attempt id
        provider_txn_id=payment_id,
        callback_params={"paymentId": payment_id},
        claim=_PORTONE_CLAIMS.get(event_type, Claim.OTHER),
    )


def parse_toss(headers: Mapping[str, str], body: bytes) -> Notification | None:
    """Read a Toss Payments delivery; None for event types the shop does not act on.

    Raises :class:`BadDelivery` when the body is not a payment notification.
    """
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadDelivery("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadDelivery("the body is not a JSON object")
    event_type = payload.get("eventType")
    if event_type != "PAYMENT_STATUS_CHANGED":
        return None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise BadDelivery("PAYMENT_STATUS_CHANGED without data")
    payment_key, order_id = data.get("paymentKey"), data.get("orderId")
    if not isinstance(payment_key, str) or not payment_key:
        raise BadDelivery("PAYMENT_STATUS_CHANGED without data.paymentKey")
    if not isinstance(order_id, str) or not order_id:
        raise BadDelivery("PAYMENT_STATUS_CHANGED without data.orderId")
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise BadDelivery("PAYMENT_STATUS_CHANGED without data.status")
    lowered = {k.lower(): v for k, v in headers.items()}
    event_id = lowered.get("tosspayments-webhook-transmission-id") or (
        "sha256:" + hashlib.sha256(body).hexdigest()
    )
    return Notification(
        provider="tosspayments",
        event_id=event_id,
        event_type=event_type,
        attempt_id=order_id,  # the shop's Toss orderId is its attempt id
        provider_txn_id=payment_key,
        callback_params={"paymentKey": payment_key, "orderId": order_id},
        claim=_TOSS_CLAIMS.get(status, Claim.OTHER),
    )


def needs_asking(claim: Claim, attempt: Attempt, payment: Payment | None) -> str | None:
    """None when the claim could change what the journal holds; else why it cannot."""
    if claim is Claim.OTHER:
        return "a status the shop does not act on"
    state = attempt.state
    if state in (AttemptState.PENDING, AttemptState.REDIRECTED, AttemptState.UNKNOWN):
        return None  # open: any settled status may be news
    if state is AttemptState.FAILED:
        # Asked only about a charge the shop believes it never took.
        return None if claim is Claim.PAID else "already recorded as failed"
    # SUCCEEDED (the order's payment) or SUPERSEDED (took effect; a refund is owed).
    if claim is Claim.PAID:
        return "already recorded as paid"
    if claim is Claim.FAILED:
        return "recorded as paid; a paid payment does not fail afterwards"
    if (
        payment is not None
        and payment.attempt_id == attempt.attempt_id
        and payment.refundable.amount == 0
    ):
        return "already refunded in full"
    return None


async def _ask(
    router: AsyncRouter,
    client: httpx.AsyncClient,
    note: Notification,
    attempt: Attempt,
    order: Order,
) -> Status | PayfallbackError:
    """The provider's own answer about the attempt (its ``lookup``), or why there is none."""
    provider = router.providers[note.provider]
    req = LookupRequest(
        attempt_id=attempt.attempt_id,
        order=order,
        provider_txn_id=attempt.provider_txn_id or note.provider_txn_id,
        attempted_at=attempt.created_at,
    )
    try:
        request = provider.build_lookup(req)
    except PayfallbackError as exc:
        return exc
    # Explicit timeouts, as the Router uses for its own calls.
    settings = router.breakers.settings_now()
    read = max(settings.read_timeout, provider.capabilities.read_timeout or 0.0)
    request.extensions["timeout"] = httpx.Timeout(
        connect=settings.connect_timeout, read=read, write=read, pool=settings.connect_timeout
    ).as_dict()
    try:
        response = await client.send(request)
    except httpx.TransportError as exc:
        return ProviderUnavailable(
            f"{type(exc).__name__} while asking about the payment", provider=provider.name
        )
    try:
        outcome = provider.parse_lookup(req, response)
    except PayfallbackError as exc:
        return exc
    if isinstance(outcome, Failed):
        return outcome.error
    if not isinstance(outcome, Status):
        return OutcomeUnknown("lookup gave no status", provider=provider.name)
    return outcome


async def _reconcile(
    router: AsyncRouter, note: Notification, status: Status, payment: Payment | None
) -> str:
    """Act on the provider's answer; returns the note kept on the order."""
    label = PROVIDER_LABELS.get(note.provider, note.provider)
    if status.state is TxnState.PAID:
        if payment is None:
            # Paid there, not here: the return URL never arrived (tab closed) or its answer
            # was lost. complete_checkout verifies and records it, once.
            completed = await router.complete_checkout(note.attempt_id, note.callback_params)
            return f"paid at {label}; completed here from this notification ({completed.amount})"
        if payment.attempt_id != note.attempt_id:
            return (
                f"ATTENTION: {label} reports attempt {note.attempt_id} paid, but the order was "
                f"paid by {payment.attempt_id}; give this one back from the {label} console"
            )
        if status.cancelled > payment.refunded.amount:
            return (
                f"partly cancelled at {label} outside this shop ({status.cancelled:,} given back)"
            )
        return f"paid at {label}; matches this shop's record"
    if status.state is TxnState.CANCELLED:
        if payment is not None and payment.attempt_id == note.attempt_id:
            if payment.refundable.amount > 0:
                return f"cancelled at {label} outside this shop (not refunded here)"
            return f"cancelled at {label}; matches this shop's refund"
        return f"cancelled at {label}"
    return f"{status.state.value.replace('_', ' ')} at {label}; nothing to do"


async def process(
    router: AsyncRouter,
    client: httpx.AsyncClient,
    store: ShopStore,
    note: Notification,
    *,
    refetch_limit: int = 3,
    refetch_window: float = 600.0,
) -> WebhookResult:
    """Handle one verified-or-hinted delivery (see the module docstring).

    At most ``refetch_limit`` provider lookups per attempt within ``refetch_window`` seconds.
    """
    if note.provider not in router.providers:
        return WebhookResult(200, {"status": "ignored", "reason": f"{note.provider} is not used"})
    journal = router.journal
    attempt = await asyncio.to_thread(journal.get_attempt, note.attempt_id)
    if attempt is None or attempt.provider != note.provider:
        # Not one of this shop's attempts: do not let anyone make us query the provider.
        return WebhookResult(200, {"status": "ignored", "reason": "not this shop's payment"})
    if await asyncio.to_thread(store.seen_event, note.provider, note.event_id):
        return WebhookResult(200, {"status": "duplicate"})
    order = await asyncio.to_thread(journal.get_order, attempt.order_id)
    if order is None:  # the journal keeps the order of every attempt
        return WebhookResult(200, {"status": "ignored", "reason": "no journaled order"})
    recorded = await asyncio.to_thread(journal.payment_for_order, order.order_id)
    why_not = needs_asking(note.claim, attempt, recorded)
    if why_not is not None:
        return WebhookResult(200, {"status": "ignored", "reason": why_not})
    window = timedelta(seconds=refetch_window)
    allowed = await asyncio.to_thread(
        store.take_refetch, note.provider, note.attempt_id, datetime.now(UTC), refetch_limit, window
    )
    if not allowed:
        _log.warning("webhook %s from %s: lookups throttled", note.event_id, note.provider)
        return WebhookResult(
            429,
            {"status": "throttled", "reason": "this payment was asked about too often"},
            {"Retry-After": str(int(refetch_window))},
        )

    answer = await _ask(router, client, note, attempt, order)
    if isinstance(answer, ProviderUnavailable | OutcomeUnknown):
        _log.warning("webhook %s from %s: provider not reachable", note.event_id, note.provider)
        return WebhookResult(503, {"status": "retry", "reason": "the provider cannot be asked now"})
    if isinstance(answer, PayfallbackError):
        verified: str | None = None
        text = f"the provider does not confirm it ({answer.message})"
    else:
        verified = answer.state.value
        payment = await asyncio.to_thread(journal.payment_for_order, order.order_id)
        try:
            text = await _reconcile(router, note, answer, payment)
        except (ProviderUnavailable, OutcomeUnknown):
            return WebhookResult(503, {"status": "retry", "reason": "completing it must wait"})
        except PayfallbackError as exc:
            text = f"ATTENTION: paid at the provider but not completed here ({exc.message})"
    event = WebhookEvent(
        provider=note.provider,
        event_id=note.event_id,
        event_type=note.event_type,
        order_id=order.order_id,
        attempt_id=note.attempt_id,
        verified_state=verified,
        note=text,
        received_at=datetime.now(UTC),
    )
    if not await asyncio.to_thread(store.record_event, event):
        return WebhookResult(200, {"status": "duplicate"})
    return WebhookResult(200, {"status": "processed", "note": text})
