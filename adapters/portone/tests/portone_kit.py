"""Conformance kits for PortOne: its answers, shaped like the OpenAPI schemas' examples.

Two kits, one per flow:

* :class:`PortOneBillingKit` — SERVER_CHARGE through ``POST /payments/{id}/billing-key``;
* :class:`PortOneCheckoutKit` — REDIRECT: the browser SDK pays client-side (no ``ready``
  request), and ``approve`` is the verification ``GET /payments/{id}``.

PortOne's ``approve`` and ``lookup`` are the same request (``GET /payments/{paymentId}``),
so the checkout kit tells them apart by order: the first GET for a paymentId is the
approve, every later one a lookup. Each kit instance serves one scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import httpx
from payfallback_portone import PortOne
from portone_support import API_SECRET, BILLING_KEY, CHANNEL_KEY, STORE_ID, load
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

__all__ = ["PortOneBillingKit", "PortOneCheckoutKit"]


def payment_id_of(request: httpx.Request) -> str:
    """The ``{paymentId}`` path segment (``/payments/{paymentId}[/…]``)."""
    parts = request.url.path.split("/")
    return unquote(parts[2]) if len(parts) > 2 and parts[1] == "payments" else "probe_1"


def _json(status: int, body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body)


def paid_payment(request: httpx.Request, *, txn_id: str, amount: int) -> dict[str, Any]:
    payment = load("payment_paid")
    payment["id"] = payment_id_of(request)
    payment["transactionId"] = txn_id
    payment["amount"].update(
        total=amount, paid=amount, vat=amount // 11, supply=amount - amount // 11
    )
    return payment


def failed_payment(request: httpx.Request, *, pg_code: str, pg_message: str) -> dict[str, Any]:
    payment = load("payment_failed")
    payment["id"] = payment_id_of(request)
    payment["failure"] = {"reason": pg_message, "pgCode": pg_code, "pgMessage": pg_message}
    return payment


class _PortOneKit(ConformanceKit):
    def make_provider(self) -> Provider:
        return PortOne(
            api_secret=SecretStr(API_SECRET),
            store_id=STORE_ID,
            channel_key=CHANNEL_KEY,
            pg_provider="TOSSPAYMENTS",
        )

    def _post_operation(self, request: httpx.Request) -> Operation:
        path = request.url.path
        if path.endswith("/cancel"):
            return Operation.CANCEL
        if path.endswith(("/billing-key", "/instant")):
            return Operation.CHARGE
        raise AssertionError(f"not a PortOne payment request: {request.method} {path}")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        return _json(200, paid_payment(request, txn_id=txn_id, amount=amount))

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        answer = load("cancel_succeeded")
        answer["cancellation"].update(
            totalAmount=amount, vatAmount=amount // 11, reason="customer returned the goods"
        )
        return _json(200, answer)

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return _json(401, load("error_unauthorized"))


class PortOneBillingKit(_PortOneKit):
    """Billing-key payments: ``POST /payments/{attempt id}/billing-key``."""

    flow = Flow.SERVER_CHARGE

    def operation_of(self, request: httpx.Request) -> Operation:
        if request.method == "GET":
            return Operation.LOOKUP
        return self._post_operation(request)

    def instrument(self) -> Instrument:
        return Instrument(
            provider="portone", billing_key=SecretStr(BILLING_KEY), customer_key="customer-1"
        )

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        answer = load("billing_key_paid")
        answer["payment"]["pgTxId"] = txn_id
        return _json(200, answer)

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        # 502 PG_PROVIDER carrying Toss Payments' "card company refused": a decline.
        return _json(502, load("error_pg_provider_decline"))

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        # 502 PG_PROVIDER with a code nobody documents: the PG may have charged.
        return _json(502, load("error_pg_provider_unknown"))

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        return _json(
            200,
            failed_payment(
                request, pg_code="REJECT_CARD_COMPANY", pg_message="[RC02] 한도초과 또는 잔액부족"
            ),
        )

    def replay_in_progress_response(self, request: httpx.Request) -> httpx.Response | None:
        return _json(409, load("error_idempotency_outstanding"))


class PortOneCheckoutKit(_PortOneKit):
    """Browser-SDK checkout, verified with ``GET /payments/{attempt id}``."""

    flow = Flow.REDIRECT

    def __init__(self) -> None:
        self._approved: set[str] = set()

    def operation_of(self, request: httpx.Request) -> Operation:
        if request.method != "GET":
            return self._post_operation(request)
        payment_id = payment_id_of(request)
        if payment_id in self._approved:
            return Operation.LOOKUP
        self._approved.add(payment_id)
        return Operation.APPROVE

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        return _json(200, paid_payment(request, txn_id=txn_id, amount=amount))

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        return _json(
            200,
            failed_payment(
                request, pg_code="REJECT_CARD_COMPANY", pg_message="[RC02] 한도초과 또는 잔액부족"
            ),
        )

    def user_cancel_response(self, request: httpx.Request) -> httpx.Response | None:
        return _json(
            200,
            failed_payment(
                request,
                pg_code="PAY_PROCESS_CANCELED",
                pg_message="사용자에 의해 결제가 취소되었습니다.",
            ),
        )

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        # No 5xx is documented for getPayment; a gateway's bare 500 is what arrives.
        return httpx.Response(500, text="Internal Server Error")

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        return _json(404, load("error_payment_not_found"))
