"""Shared constants, payload loading and request builders for the NICEPAY tests."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from payfallback_nicepay import Nicepay
from payfallback_nicepay._wire import auth_signature, response_signature
from pydantic import SecretStr

from payfallback.models import Instrument, Method, Money, Order, ReturnUrls
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    Outcome,
    ReadyRequest,
    Status,
    VoidRequest,
)

PAYLOADS = Path(__file__).parent / "payloads"

CLIENT_KEY = "S2_0a1b2c3d4e5f40718293a4b5c6d7e8f9"
SECRET = "0f1e2d3c4b5a49687766554433221100"

#: The sandbox key pair printed in the manual's worked example (common/test.md: the Basic
#: header of the approve call). With it the manual's own callback and approval signatures
#: verify, which pins both signature formulas to NICEPAY's documentation.
MANUAL_CLIENT_KEY = "58e3b578555e45738d6b569e53d5ae54"
MANUAL_SECRET = "4f13ca267dfa4fc6964148bedcda15ef"
MANUAL_TID = "UT0000113m01012110051656331001"
MANUAL_ORDER_ID = "b0980639-52db-4504-9e4d-97200827dc48"

TID = "nicuntct1m0101221015153000A001"
BILLING_TID = "nictest04m0116221015153000B001"
ATTEMPT = "ORD-1001_1"
BILLING_ATTEMPT = "SUB-2001_1"
BID = "BIKYnictest04m2210151530000001"
AUTH_TOKEN = "NICEUNTT0123456789ABCDEF0123456789ABCDEF"
#: 2022-10-15 15:30 KST: the moment the payloads describe.
ATTEMPTED_AT = datetime(2022, 10, 15, 6, 30, tzinfo=UTC)

URLS = ReturnUrls(
    success="https://shop.example/pay/nicepay/return",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)


def provider(*, sandbox: bool = False, **settings: Any) -> Nicepay:
    return Nicepay(client_key=CLIENT_KEY, secret_key=SecretStr(SECRET), sandbox=sandbox, **settings)


def make_order(
    order_id: str = "ORD-1001", amount: int = 12000, name: str = "아메리카노 외 2건"
) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name=name, customer_ref="cust-7")


def sign(payload: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    """The payload with ``signature`` computed as NICEPAY does, where it says ``"SIGNED"``."""
    if payload.get("signature") == "SIGNED":
        payload = {
            **payload,
            "signature": response_signature(
                tid=payload["tid"],
                amount=payload["amount"],
                edi_date=payload["ediDate"],
                secret_key=secret,
            ),
        }
    return payload


def load(name: str, **overrides: Any) -> dict[str, Any]:
    """A payload file, with ``overrides`` applied, then signed with the test secret."""
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return sign({**data, **overrides})


def callback(
    *,
    tid: str = TID,
    amount: int = 12000,
    order_id: str | None = ATTEMPT,
    code: str = "0000",
    client_key: str = CLIENT_KEY,
    secret: str = SECRET,
) -> dict[str, str]:
    """What NICEPAY POSTs to returnUrl after a successful authentication."""
    params = {
        "authResultCode": code,
        "authResultMsg": "인증 성공" if code == "0000" else "인증 실패",
        "tid": tid,
        "clientId": client_key,
        "amount": str(amount),
        "mallReserved": "",
        "authToken": AUTH_TOKEN,
        "signature": auth_signature(
            auth_token=AUTH_TOKEN, client_id=client_key, amount=amount, secret_key=secret
        ),
    }
    if order_id is not None:
        params["orderId"] = order_id
    return params


def ready_request(method: Method = Method.CARD, order: Order | None = None) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT,
        order=order or make_order(),
        method=method,
        return_urls=URLS,
        idempotency_key="idem-ready-1",
    )


def approve_request(
    params: dict[str, str] | None = None, order: Order | None = None, attempt_id: str = ATTEMPT
) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=attempt_id,
        order=order or make_order(),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=callback() if params is None else params,
        idempotency_key="idem-approve-1",
    )


def charge_request(
    *, bid: str = BID, instrument_provider: str = "nicepay", amount: int = 9900
) -> ChargeRequest:
    return ChargeRequest(
        attempt_id=BILLING_ATTEMPT,
        order=make_order("SUB-2001", amount, "월간 구독"),
        instrument=Instrument(provider=instrument_provider, billing_key=SecretStr(bid)),
        idempotency_key="idem-charge-1",
    )


def lookup_request(
    tid: str | None = TID, attempted_at: datetime | None = ATTEMPTED_AT
) -> LookupRequest:
    return LookupRequest(
        attempt_id=ATTEMPT, order=make_order(), provider_txn_id=tid, attempted_at=attempted_at
    )


def cancel_request(
    amount: int = 12000,
    remaining: int = 12000,
    key: str = "3f2a9c1e5b7d4f60a1b2c3d4e5f60718",
    *,
    tax_free: int = 0,
    order: Order | None = None,
    refund_id: str = "rf_3f2a9c1e5b7d4f60a1b2",
) -> CancelRequest:
    return CancelRequest(
        refund_id=refund_id,
        attempt_id=ATTEMPT,
        order=order or make_order(),
        provider_txn_id=TID,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="고객 요청",
        idempotency_key=key,
        tax_free_amount=tax_free,
    )


def void_request(tid: str | None = None) -> VoidRequest:
    return VoidRequest(
        attempt_id=ATTEMPT,
        order=make_order(),
        provider_txn_id=tid,
        amount=Money(amount=12000),
        idempotency_key="idem-approve-1",
    )


def money_of(outcome: Outcome) -> Outcome:
    """An approval, a cancel or a status without its receipt and answer: what moved, to
    compare whole (the receipt and the answer are pinned by their own tests)."""
    if isinstance(outcome, Approved | Cancelled | Status):
        return dataclasses.replace(outcome, receipt=None, answer=None)
    return outcome
