"""Fixtures for the Kakao Pay adapter tests: providers, requests and payload files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (kakaopay_support, kakaopay_kit) from
# this directory.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from kakaopay_support import ADMIN_KEY, ATTEMPT, SECRET, SID, TID, load
from payfallback_kakaopay import KakaoPay
from pydantic import SecretStr

from payfallback.models import Instrument, LineItem, Method, Money, Order, ReturnUrls
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    ReadyRequest,
)


@pytest.fixture
def payload() -> Callable[[str], dict[str, Any]]:
    return load


@pytest.fixture
def kakao() -> KakaoPay:
    return KakaoPay(secret_key=SECRET)


@pytest.fixture
def legacy() -> KakaoPay:
    return KakaoPay(legacy=True, admin_key=ADMIN_KEY)


@pytest.fixture
def order() -> Order:
    return Order(
        order_id="ORDER123",
        amount=Money(amount=2200),
        name="초코파이",
        customer_ref="customer-7",
    )


@pytest.fixture
def urls() -> ReturnUrls:
    return ReturnUrls(
        success="https://shop.example/pay/kakao/success",
        cancel="https://shop.example/pay/kakao/cancel",
        fail="https://shop.example/pay/kakao/fail",
    )


@pytest.fixture
def ready_req(order: Order, urls: ReturnUrls) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT,
        order=order,
        method=Method.KAKAOPAY,
        return_urls=urls,
        idempotency_key="idem-ready-1",
    )


@pytest.fixture
def approve_req(order: Order) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=order,
        method=Method.KAKAOPAY,
        provider_txn_id=TID,
        callback_params={"pg_token": "xxxxxxxxxxxxxxxxxxxx"},
        idempotency_key="idem-approve-1",
    )


@pytest.fixture
def lookup_req(order: Order) -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=order, provider_txn_id=TID)


@pytest.fixture
def cancel_req(order: Order) -> CancelRequest:
    return CancelRequest(
        refund_id="R1",
        attempt_id=ATTEMPT,
        order=order,
        provider_txn_id=TID,
        amount=Money(amount=1000),
        expected_remaining=2200,
        reason="one item back",
        idempotency_key="idem-cancel-1",
    )


@pytest.fixture
def subscription_order() -> Order:
    return Order(
        order_id="SUB-2024-06",
        amount=Money(amount=9900),
        name="monthly plan",
        customer_ref="customer-7",
        items=(LineItem(name="monthly plan", quantity=1, unit_price=Money(amount=9900)),),
    )


@pytest.fixture
def charge_req(subscription_order: Order) -> ChargeRequest:
    return ChargeRequest(
        attempt_id="SUB-2024-06_1",
        order=subscription_order,
        instrument=Instrument(
            provider="kakaopay",
            billing_key=SecretStr(SID),
            customer_key="member-42",
            method=Method.KAKAOPAY,
        ),
        idempotency_key="idem-charge-1",
    )
