"""NICEPAY's answers for the shared conformance suite, shaped like the manual's examples.

Two kits: the payment window (REDIRECT: client-side ready, callback, approve) and billing
keys (SERVER_CHARGE). Every success answer is the documented payment object, with a
``signature`` computed as NICEPAY computes it, so the adapter's verification is exercised
on every scenario.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from nicepay_support import BID, SECRET, callback, provider
from payfallback_nicepay._wire import response_signature
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

EDI_DATE = "2022-10-15T15:30:01.000+0900"
PAID_AT = "2022-10-15T15:30:00.000+0900"
DECLINED_TID = "nicuntct1m0101221015153000D001"
#: The tid of a billing charge whose answer was lost: the net cancel's answer names it.
VOIDED_TID = "nictest04m0116221015153000V001"


def _json(status: int, body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, json=dict(body), headers={"Content-Type": "application/json;charset=utf-8"}
    )


def payment_object(
    *,
    tid: str,
    amount: int,
    status: str = "paid",
    result_code: str = "0000",
    result_msg: str = "정상 처리되었습니다.",
    order_id: str | None = None,
    balance: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The payment object of api/status-transaction.md, signed with the kit's secret."""
    body: dict[str, Any] = {
        "resultCode": result_code,
        "resultMsg": result_msg,
        "tid": tid,
        "cancelledTid": None,
        "ediDate": EDI_DATE,
        "signature": response_signature(
            tid=tid, amount=amount, edi_date=EDI_DATE, secret_key=SECRET
        ),
        "status": status,
        "paidAt": PAID_AT if status in ("paid", "partialCancelled", "cancelled") else "0",
        "failedAt": EDI_DATE if status == "failed" else "0",
        "cancelledAt": EDI_DATE if status in ("partialCancelled", "cancelled") else "0",
        "payMethod": "card",
        "amount": amount,
        "balanceAmt": amount if balance is None else balance,
        "goodsName": "conformance order",
        "mallReserved": None,
        "useEscrow": False,
        "currency": "KRW",
        "channel": "pc",
        "approveNo": "30012345",
        "card": {
            "cardCode": "04",
            "cardName": "삼성",
            "cardNum": "53611234****1234",
            "cardQuota": 0,
            "isInterestFree": False,
            "cardType": "credit",
            "canPartCancel": True,
            "acquCardCode": "04",
            "acquCardName": "삼성",
        },
        "vbank": None,
        "cancels": None,
        "cashReceipts": None,
    }
    if order_id is not None:
        # The suite's hooks do not pass our attempt id; where the request carries it
        # (billing, inquiry by orderId) the answer echoes it, as NICEPAY's does.
        body["orderId"] = order_id
    body.update(extra)
    return body


def _order_id_of(request: httpx.Request) -> str | None:
    if request.method == "POST" and request.content:
        value = json.loads(request.content).get("orderId")
        return value if isinstance(value, str) else None
    if request.url.path.startswith("/v1/payments/find/"):
        return request.url.path.rsplit("/", 1)[-1]
    return None


class NicepayKit(ConformanceKit):
    """The payment window: ``ready`` is client-side, NICEPAY posts the callback, we approve."""

    flow = Flow.REDIRECT

    def __init__(self) -> None:
        self._paid: int | None = None
        self._cancels = 0
        self._tid: str | None = None

    def make_provider(self) -> Provider:
        return provider()

    def operation_of(self, request: httpx.Request) -> Operation:
        path = request.url.path
        if request.method == "GET" and path.startswith("/v1/payments/"):
            return Operation.LOOKUP
        if request.method == "POST":
            if path == "/v1/payments/netcancel":
                return Operation.VOID
            if path.startswith("/v1/payments/") and path.endswith("/cancel"):
                return Operation.CANCEL
            if path.startswith("/v1/subscribe/") and path.endswith("/payments"):
                return Operation.CHARGE
            if path.startswith("/v1/payments/") and path.count("/") == 3:
                return Operation.APPROVE
        raise AssertionError(f"not a NICEPAY call: {request.method} {request.url}")

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        # No orderId: this hook does not know the Router's attempt id (the adapter checks
        # orderId only when the callback carries it; amount and signature always).
        self._tid = txn_id
        return callback(tid=txn_id, amount=amount, order_id=None)

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        self._paid = amount
        return _json(200, payment_object(tid=txn_id, amount=amount, order_id=_order_id_of(request)))

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        body = payment_object(
            tid=DECLINED_TID,
            amount=0,
            status="failed",
            result_code="3011",
            result_msg="카드번호 오류",
            order_id=_order_id_of(request),
            balance=0,
            signature=None,
            card=None,
        )
        return _json(200, body)

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        # NICEPAY documents no 5xx; this is what a failing gateway in front of it sends.
        return httpx.Response(500, text="Internal Server Error")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        return _json(200, payment_object(tid=txn_id, amount=amount, order_id=_order_id_of(request)))

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        # A failed approval keeps the amount that was asked for; the hook does not pass it.
        body = payment_object(
            tid=txn_id,
            amount=self._paid or 50_000,
            status="failed",
            order_id=_order_id_of(request),
            balance=0,
            card=None,
        )
        return _json(200, body)

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        self._cancels += 1
        cancelled_tid = f"{txn_id[:-3]}C{self._cancels:02d}"
        paid = self._paid if self._paid is not None else amount + remaining
        body = payment_object(
            tid=txn_id,
            amount=paid,
            status="cancelled" if remaining == 0 else "partialCancelled",
            balance=remaining,
            cancelledTid=cancelled_tid,
            cancels=[
                {
                    "tid": cancelled_tid,
                    "amount": amount,
                    "cancelledAt": EDI_DATE,
                    "reason": json.loads(request.content).get("reason"),
                    "receiptUrl": None,
                    "couponAmt": 0,
                }
            ],
        )
        return _json(200, body)

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return _json(401, {"resultCode": "U304", "resultMsg": "BASIC AUTHENTICATION 실패"})

    def void_response(self, request: httpx.Request) -> httpx.Response | None:
        """An acknowledged net cancel (api/cancel.md, 망취소 응답 명세): the payment object,
        ``cancelled``, nothing left, for the tid of the callback (window) or a new one
        (billing: the lost answer carried it)."""
        tid = self._tid or VOIDED_TID
        amount = self._paid or 50_000
        body = payment_object(
            tid=tid,
            amount=amount,
            status="cancelled",
            order_id=_order_id_of(request),
            balance=0,
            cancelledTid=tid,
            cancels=[
                {
                    "tid": tid,
                    "amount": amount,
                    "cancelledAt": EDI_DATE,
                    "reason": "망취소",
                    "receiptUrl": None,
                    "couponAmt": 0,
                }
            ],
        )
        return _json(200, body)


class NicepayBillingKit(NicepayKit):
    """Billing keys: ``POST /v1/subscribe/{bid}/payments`` with no customer present."""

    flow = Flow.SERVER_CHARGE

    def instrument(self) -> Instrument:
        return Instrument(provider="nicepay", billing_key=SecretStr(BID))
