"""Kakao Pay's answers for the shared conformance suite, shaped like the documented examples.

Kakao Pay's customer-cancel is not an answer to approve: the customer comes back through
``cancel_url`` and the adapter declines without calling Kakao Pay (see ``test_wire``), so
:meth:`KakaoPayKit.user_cancel_response` is ``None``. Kakao Pay has no idempotency
header, so there is no replay answer either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from kakaopay_support import SECRET, load
from payfallback_kakaopay import KakaoPay

from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

_OPERATIONS = {
    "ready": Operation.READY,
    "approve": Operation.APPROVE,
    "order": Operation.LOOKUP,
    "cancel": Operation.CANCEL,
    "subscription": Operation.CHARGE,
}


def _sent(request: httpx.Request) -> dict[str, Any]:
    data = json.loads(request.content) if request.content else {}
    assert isinstance(data, dict)
    return data


def _amount(total: int) -> dict[str, int]:
    vat = round(total / 11)
    return {
        "total": total,
        "tax_free": 0,
        "vat": vat,
        "point": 0,
        "discount": 0,
        "green_deposit": 0,
    }


class KakaoPayKit(ConformanceKit):
    flow = Flow.REDIRECT

    def __init__(self) -> None:
        #: What the approve answered, so cancel answers can carry the original total.
        self._paid: int | None = None

    def make_provider(self) -> Provider:
        return KakaoPay(secret_key=SECRET)

    def operation_of(self, request: httpx.Request) -> Operation:
        path = request.url.path
        if request.method != "POST" or not path.startswith("/online/v1/payment/"):
            raise AssertionError(f"not a Kakao Pay call: {request.method} {request.url}")
        return _OPERATIONS[path.rsplit("/", 1)[-1]]

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        # Kakao appends only pg_token to approval_url.
        return {"pg_token": "xxxxxxxxxxxxxxxxxxxx"}

    def ready_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        body = load("ready")
        body["tid"] = txn_id
        return httpx.Response(200, json=body)

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        sent = _sent(request)
        self._paid = amount
        body = load("approve")
        body.update(
            tid=txn_id,
            partner_order_id=sent["partner_order_id"],
            partner_user_id=sent["partner_user_id"],
            amount=_amount(amount),
        )
        return httpx.Response(200, json=body)

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=load("error_lack_balance"))

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        body = load("order_success")
        body.update(tid=txn_id, amount=_amount(amount), cancel_available_amount=_amount(amount))
        return httpx.Response(200, json=body)

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        body = load("order_success")
        body.update(
            tid=txn_id,
            status="FAIL_PAYMENT",
            approved_at=None,
            cancel_available_amount=_amount(0),
            payment_action_details=[],
        )
        return httpx.Response(200, json=body)

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        sent = _sent(request)
        paid = self._paid if self._paid is not None else int(sent["cancel_available_amount"])
        body = load("cancel_partial")
        body.update(
            tid=txn_id,
            status="CANCEL_PAYMENT" if remaining == 0 else "PART_CANCEL_PAYMENT",
            amount=_amount(paid),
            approved_cancel_amount=_amount(amount),
            canceled_amount=_amount(paid - remaining),
            cancel_available_amount=_amount(remaining),
            payload=sent.get("payload", ""),
        )
        return httpx.Response(200, json=body)

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=load("error_unauthorized"))
