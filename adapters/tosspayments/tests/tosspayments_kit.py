"""Toss Payments for the shared conformance suite: answers shaped like Toss's own.

Two kits, one per flow: :class:`TossRedirectKit` (payment window → confirm) and
:class:`TossBillingKit` (billing-key charge). Each answer is built from the payload files
next to the tests (the documented Payment object) and echoes what the request carried —
``orderId``, ``paymentKey``, amounts — the way Toss does. A kit remembers which ``orderId``
each ``paymentKey`` belongs to and what it cancelled, because a lookup by ``paymentKey``
or a second partial cancel is answered with the whole payment, as Toss answers it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import httpx
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr
from tosspayments_support import BILLING_KEY, CLIENT, CUSTOMER_KEY, SECRET, TRACE, load

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

_CONFIRM = re.compile(r"^/v1/payments/confirm$")
_CANCEL = re.compile(r"^/v1/payments/(?P<key>[^/]+)/cancel$")
_BY_ORDER = re.compile(r"^/v1/payments/orders/(?P<order>[^/]+)$")
_BY_KEY = re.compile(r"^/v1/payments/(?P<key>[^/]+)$")
_BILLING = re.compile(r"^/v1/billing/(?P<billing>[^/]+)$")


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        data = json.loads(request.content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _path(request: httpx.Request) -> str:
    # The raw path: an escaped "/" inside a key must not split it into two segments.
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


def _answer(status: int, body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=dict(body), headers={"X-TossPayments-Trace-Id": TRACE})


def _error(status: int, code: str, message: str) -> httpx.Response:
    return _answer(status, {"code": code, "message": message})


class _TossKit(ConformanceKit):
    payload = "payment_done_card"

    def __init__(self) -> None:
        self.order_of: dict[str, str] = {}  # paymentKey -> orderId
        self.total_of: dict[str, int] = {}  # paymentKey -> totalAmount
        self.cancels_of: dict[str, list[dict[str, Any]]] = {}
        self.last_order_id: str | None = None

    def make_provider(self) -> Provider:
        return TossPayments(secret_key=SecretStr(SECRET), client_key=CLIENT)

    def operation_of(self, request: httpx.Request) -> Operation:
        path = _path(request)
        body = _body(request)
        if isinstance(order_id := body.get("orderId"), str):
            # The suite's transport asks this for every request, even one it then fails
            # with a timeout: remember whose orderId a paymentKey is, as Toss would know.
            self.last_order_id = order_id
            if isinstance(key := body.get("paymentKey"), str):
                self.order_of[key] = order_id
        if request.method == "POST" and _CONFIRM.match(path):
            return Operation.APPROVE
        if request.method == "POST" and _CANCEL.match(path):
            return Operation.CANCEL
        if request.method == "POST" and _BILLING.match(path):
            return Operation.CHARGE
        if request.method == "GET" and (_BY_ORDER.match(path) or _BY_KEY.match(path)):
            return Operation.LOOKUP
        raise AssertionError(f"not a Toss API this adapter calls: {request.method} {path}")

    # -- answers -------------------------------------------------------------------------

    def _payment(
        self, txn_id: str, order_id: str | None, payload: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        data = load(payload or self.payload, paymentKey=txn_id, **fields)
        if order_id is None:
            data.pop("orderId", None)
        else:
            data["orderId"] = order_id
        return data

    def _order_id_for(self, request: httpx.Request, txn_id: str) -> str | None:
        if m := _BY_ORDER.match(_path(request)):
            return unquote(m["order"])
        return self.order_of.get(txn_id, self.last_order_id)

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        body = _body(request)
        order_id = body.get("orderId")
        order_id = order_id if isinstance(order_id, str) else None
        sent_key = body.get("paymentKey")
        # A confirm names its paymentKey; a billing charge learns it from this answer.
        key = sent_key if isinstance(sent_key, str) else txn_id
        if order_id is not None:
            self.order_of[key] = order_id
        self.total_of[key] = amount
        return _answer(
            200,
            self._payment(key, order_id, status="DONE", totalAmount=amount, balanceAmount=amount),
        )

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        return _error(403, "REJECT_CARD_COMPANY", "결제 승인이 거절되었습니다.")

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        return _error(
            500,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
        )

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        order_id = self._order_id_for(request, txn_id)
        if order_id is not None:
            self.order_of[txn_id] = order_id
        self.total_of[txn_id] = amount
        return _answer(
            200,
            self._payment(
                txn_id, order_id, status="DONE", totalAmount=amount, balanceAmount=amount
            ),
        )

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        m = _CANCEL.match(_path(request))
        key = unquote(m["key"]) if m else txn_id
        body = _body(request)
        cancels = self.cancels_of.setdefault(key, [])
        total = self.total_of.get(key, amount + remaining + sum(c["cancelAmount"] for c in cancels))
        cancels.append(
            {
                "transactionKey": f"090A796806E726BBB929F4A2CA7DB9{len(cancels):02d}",
                "cancelReason": body.get("cancelReason", "고객 변심"),
                "taxExemptionAmount": 0,
                "canceledAt": "2024-02-13T12:20:23+09:00",
                "transferDiscountAmount": 0,
                "easyPayDiscountAmount": 0,
                "receiptKey": None,
                "cancelAmount": amount,
                "taxFreeAmount": 0,
                "refundableAmount": remaining,
                "cancelStatus": "DONE",
                "cancelRequestId": None,
            }
        )
        # Toss: cancelled in one go → CANCELED; after a partial cancel the payment stays
        # PARTIAL_CANCELED, even when the rest is cancelled too.
        status = "CANCELED" if remaining == 0 and len(cancels) == 1 else "PARTIAL_CANCELED"
        return _answer(
            200,
            self._payment(
                key,
                self.order_of.get(key, self.last_order_id),
                status=status,
                totalAmount=total,
                balanceAmount=remaining,
                cancels=list(cancels),
            ),
        )

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return _error(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")

    def replay_in_progress_response(self, request: httpx.Request) -> httpx.Response | None:
        return _error(409, "IDEMPOTENT_REQUEST_PROCESSING", "이전 멱등 요청이 처리중입니다.")


class TossRedirectKit(_TossKit):
    """Payment window → ``POST /v1/payments/confirm``."""

    flow = Flow.REDIRECT

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        # successUrl?paymentKey=…&orderId=…&amount=… (the suite does not know our orderId).
        return {"paymentKey": txn_id, "amount": str(amount), "paymentType": "NORMAL"}

    def user_cancel_response(self, request: httpx.Request) -> httpx.Response | None:
        # A confirm after the customer closed the window: Toss reports the cancelled session.
        return _error(400, "PAY_PROCESS_CANCELED", "사용자에 의해 결제가 취소되었습니다.")

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        # The customer authenticated but no confirm reached Toss: the payment expires.
        order_id = self._order_id_for(request, txn_id)
        return _answer(200, self._payment(txn_id, order_id, "payment_expired"))


class TossBillingKit(_TossKit):
    """``POST /v1/billing/{billingKey}``."""

    flow = Flow.SERVER_CHARGE
    payload = "payment_done_billing"

    def instrument(self) -> Instrument:
        return Instrument(
            provider="tosspayments",
            billing_key=SecretStr(BILLING_KEY),
            customer_key=CUSTOMER_KEY,
        )

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        # The charge never reached Toss: no payment under that orderId (or paymentKey).
        return _error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
