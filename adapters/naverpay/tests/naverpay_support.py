"""Shared helpers for the Naver Pay adapter tests: a sandbox adapter, requests, payloads.

Payload files under ``payloads/`` are shaped like Naver Pay's documented answers
(``{code, message, body}``); tests change only the fields a case is about. (The module
name is unique so the test directories of several adapters can share one session.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from payfallback_naverpay import NaverPay

from payfallback.models import Method, Money, Order, ReturnUrls
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    LookupRequest,
    ReadyRequest,
)

HERE = Path(__file__).parent
SECRET = "np-client-secret-7f3a9c"
CLIENT_ID = "np-client-id"
CHAIN_ID = "np-chain-id"
PARTNER_ID = "np_partner"
HOST = "dev.apis.naver.com"
BASE_URL = f"https://{HOST}/{PARTNER_ID}/naverpay/payments"
PAYMENT_ID = "20170201NP1043587746"
ATTEMPT_ID = "ORDER123_1"
IDEMPOTENCY_KEY = "idem-7b0e1f0c-6a55-4d5b-9d4f-2f9c8e6c1a01"


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of ``payloads/<name>.json``."""
    with (HERE / "payloads" / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return copy.deepcopy(data)


def documented_codes() -> dict[str, list[str]]:
    """The documented code lists, kept as data next to the tests."""
    with (HERE / "documented_codes.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return {k: list(v) for k, v in data.items() if not k.startswith("_")}


def answer(
    data: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    text: str | None = None,
) -> httpx.Response:
    """A response as Naver Pay sends it (JSON, or raw text for broken answers)."""
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    return httpx.Response(status, json=data, headers=headers)


def code_answer(code: str, message: str = "메시지", *, status: int = 200) -> httpx.Response:
    return answer({"code": code, "message": message, "body": None}, status=status)


def make_provider(**overrides: Any) -> NaverPay:
    settings: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "chain_id": CHAIN_ID,
        "partner_id": PARTNER_ID,
        "sandbox": True,
    }
    settings.update(overrides)
    return NaverPay(**settings)


def make_order(amount: int = 12000, *, tax_free: int = 0, **extra: Any) -> Order:
    return Order(
        order_id="ORDER123",
        amount=Money(amount=amount, currency="KRW"),
        name="커피 원두 1kg",
        tax_free_amount=tax_free,
        **extra,
    )


def ready_request(order: Order | None = None, *, attempt_id: str = ATTEMPT_ID) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=attempt_id,
        order=order or make_order(),
        method=Method.NAVERPAY,
        return_urls=ReturnUrls(
            success="https://shop.example/pay/naver/return",
            cancel="https://shop.example/pay/cancel",
            fail="https://shop.example/pay/fail",
        ),
        idempotency_key=IDEMPOTENCY_KEY,
    )


def approve_request(
    callback: Mapping[str, str] | None = None,
    *,
    order: Order | None = None,
    key: str = IDEMPOTENCY_KEY,
    attempt_id: str = ATTEMPT_ID,
) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=attempt_id,
        order=order or make_order(),
        method=Method.NAVERPAY,
        provider_txn_id=None,
        callback_params=(
            callback if callback is not None else {"resultCode": "Success", "paymentId": PAYMENT_ID}
        ),
        idempotency_key=key,
    )


def lookup_request(
    payment_id: str | None = PAYMENT_ID, *, attempt_id: str = ATTEMPT_ID
) -> LookupRequest:
    return LookupRequest(attempt_id=attempt_id, order=make_order(), provider_txn_id=payment_id)


def cancel_request(
    amount: int = 3000,
    *,
    remaining: int = 12000,
    order: Order | None = None,
    reason: str = "고객 요청",
    key: str = IDEMPOTENCY_KEY,
    payment_id: str = PAYMENT_ID,
    tax_free: int = 0,
) -> CancelRequest:
    return CancelRequest(
        refund_id="rf_ORDER123_1",
        attempt_id=ATTEMPT_ID,
        order=order or make_order(),
        provider_txn_id=payment_id,
        amount=Money(amount=amount, currency="KRW"),
        expected_remaining=remaining,
        reason=reason,
        idempotency_key=key,
        tax_free_amount=tax_free,
    )
