"""Shared constants, payload loading and request builders for the KG Inicis tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from payfallback_inicis import Inicis
from payfallback_inicis._wire import auth_signature
from pydantic import SecretStr

from payfallback.models import Instrument, Method, Money, Order, ReturnUrls
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    ReadyRequest,
)

PAYLOADS = Path(__file__).parent / "payloads"

#: Inicis's published test merchant: INIpayTest, its INIAPI key and its web signKey
#: (manual.inicis.com/iniapi/ sample; manual.inicis.com/stdpay/ sample form).
MID = "INIpayTest"
INIAPI_KEY = "ItEQKi3rY7uvDS8l"
SIGN_KEY = "SU5JTElURV9UUklQTEVERVNfS0VZU1RS"
CLIENT_IP = "203.0.113.10"
SITE_URL = "https://shop.example"

TID = "StdpayCARDINIpayTest20221015153000123456"
BILLING_TID = "INIAPICARDINIBillTst20221015153001654321"
ATTEMPT = "ORD-1001_1"
BILLING_ATTEMPT = "SUB-2001_1"
BILL_KEY = "4b3c9e0d1a2f48c6b2e1d0c9f8a7b6c5d4e3f2a1"
#: 2022-10-15 15:30:00 KST: the moment the payloads describe.
NOW = datetime(2022, 10, 15, 6, 30, tzinfo=UTC)
MILLIS = str(int(NOW.timestamp() * 1000))
API_TIMESTAMP = "20221015153000"

URLS = ReturnUrls(
    success="https://shop.example/pay/inicis/return",
    cancel="https://shop.example/pay/inicis/close",
    fail="https://shop.example/pay/fail",
)


def provider(*, sign_key: str | None = SIGN_KEY, **settings: Any) -> Inicis:
    options: dict[str, Any] = {
        "mid": MID,
        "iniapi_key": SecretStr(INIAPI_KEY),
        "client_ip": CLIENT_IP,
        "sign_key": SecretStr(sign_key) if sign_key else None,
        "site_url": SITE_URL,
        "buyer_name": "홍길동",
        "buyer_email": "buyer@shop.example",
        "buyer_tel": "01012345678",
        "clock": lambda: NOW,
    }
    options.update(settings)
    return Inicis(**options)


def make_order(
    order_id: str = "ORD-1001", amount: int = 12000, name: str = "아메리카노 외 2건"
) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name=name, customer_ref="cust-7")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text(encoding="utf-8"))
    return data


def form_of(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.read().decode("utf-8"), keep_blank_values=True))


def callback(**changes: str) -> dict[str, str]:
    params: dict[str, str] = {k: str(v) for k, v in load("auth_result.json").items()}
    params.update(changes)
    return {k: v for k, v in params.items() if v != "<drop>"}


def signed_approval(request: httpx.Request, **changes: Any) -> dict[str, Any]:
    """The approval answer, its ``authSignature`` computed from the timestamp ``request``
    carried (as Inicis computes it)."""
    body = load("approve_paid.json")
    body.update(changes)
    form = form_of(request)
    body["authSignature"] = auth_signature(
        mid=form.get("mid", MID),
        tstamp=form["timestamp"],
        moid=str(body.get("MOID", "")),
        tot_price=str(body.get("TotPrice", "")),
    )
    return body


def ready_request(method: Method = Method.CARD, amount: int = 12000) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT,
        order=make_order(amount=amount),
        method=method,
        return_urls=URLS,
        idempotency_key="key-ready",
    )


def approve_request(params: dict[str, str] | None = None, amount: int = 12000) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=make_order(amount=amount),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=callback() if params is None else params,
        idempotency_key="key-approve",
    )


def instrument(key: str = BILL_KEY) -> Instrument:
    return Instrument(provider="inicis", billing_key=SecretStr(key), customer_key="cust-7")


def charge_request(amount: int = 12000) -> ChargeRequest:
    return ChargeRequest(
        attempt_id=BILLING_ATTEMPT,
        order=make_order("SUB-2001", amount, "월간 원두 구독"),
        instrument=instrument(),
        idempotency_key="key-charge",
    )


def lookup_request(tid: str | None = TID, attempt: str = ATTEMPT) -> LookupRequest:
    return LookupRequest(
        attempt_id=attempt,
        order=make_order(),
        provider_txn_id=tid,
        attempted_at=NOW,
    )


def cancel_request(amount: int = 12000, remaining: int = 12000) -> CancelRequest:
    return CancelRequest(
        refund_id="RF-1",
        attempt_id=ATTEMPT,
        order=make_order(),
        provider_txn_id=TID,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="고객 요청 취소",
        idempotency_key="key-cancel",
    )
