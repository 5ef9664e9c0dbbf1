"""Constants and helpers shared by the Toss Payments adapter tests.

Named uniquely (not ``support.py``) so it cannot clash with another adapter's helpers when
several adapters' tests run in one session; ``conftest.py`` puts this directory on
``sys.path`` because the project runs pytest with ``--import-mode=importlib``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx

from payfallback.models import Money, Order
from payfallback.provider import Approved, Cancelled, Outcome, Status

HERE = Path(__file__).parent
PAYLOADS = HERE / "payloads"
BASE = "https://api.tosspayments.com"

# Made-up keys shaped like Toss's (test_sk_/test_ck_ prefixes); no real credentials.
SECRET = "test_sk_pf0000000000000000000Secret"
CLIENT = "test_ck_pf0000000000000000000Client"
AUTH = "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
BILLING_KEY = "Z_t5vOvQxrj4499PeiJcjen28-KCej3pWbLe3w/yrk=SeCrEt"
CUSTOMER_KEY = "c5f2a1b0-7e4d-4f5a-9c33-customer"
TRACE = "a1fc9b43d8f9c55f1201d777b6e6841e"

ORDER_ID = "ORDER-2024-0001"
ATTEMPT = "ORDER-2024-0001_1"
PAYMENT_KEY = "5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6"
BILLING_PAYMENT_KEY = "tbill20240101100130xyz12"
AMOUNT = 15_000


def order(amount: int = AMOUNT, **fields: Any) -> Order:
    return Order(
        order_id=ORDER_ID,
        amount=Money(amount=amount, currency="KRW"),
        name="토스 티셔츠 외 2건",
        **fields,
    )


def load(name: str, **overrides: Any) -> dict[str, Any]:
    """A payload file (``payloads/<name>.json``), fresh on every call, fields replaced."""
    data = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    data.update(overrides)
    return data


def payment(name: str, http_status: int = 200, **overrides: Any) -> httpx.Response:
    """Toss's answer carrying the Payment object from ``payloads/<name>.json``."""
    return httpx.Response(
        http_status, json=load(name, **overrides), headers={"X-TossPayments-Trace-Id": TRACE}
    )


def error(status: int, code: str, message: str = "에러 메시지", **headers: str) -> httpx.Response:
    """Toss's error object ``{code, message}`` with its trace id."""
    return httpx.Response(
        status,
        json={"code": code, "message": message},
        headers={"X-TossPayments-Trace-Id": TRACE, **headers},
    )


def documented() -> dict[str, Any]:
    data = json.loads((HERE / "documented_codes.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def money_of(outcome: Outcome) -> Outcome:
    """An approval, a cancel or a status without its receipt and answer: what moved, to
    compare whole (the receipt and the answer are pinned by their own tests)."""
    if isinstance(outcome, Approved | Cancelled | Status):
        return dataclasses.replace(outcome, receipt=None, answer=None)
    return outcome
