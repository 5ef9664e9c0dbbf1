"""Fixtures for the PortOne adapter tests: the adapter, our requests, the OpenAPI excerpt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (portone_support, portone_kit) from
# this directory.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from payfallback_portone import PortOne
from portone_support import (
    API_SECRET,
    ATTEMPT,
    BILLING_KEY,
    CHANNEL_KEY,
    KAKAO_CHANNEL_KEY,
    KEY,
    STORE_ID,
    WEBHOOK_SECRET,
    spec,
)
from pydantic import SecretStr

from payfallback.models import Instrument, Method, Money, Order, ReturnUrls
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    ReadyRequest,
)


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    return spec()


@pytest.fixture
def portone() -> PortOne:
    return PortOne(
        api_secret=SecretStr(API_SECRET),
        store_id=STORE_ID,
        channel_key=CHANNEL_KEY,
        channel_keys={Method.KAKAOPAY: KAKAO_CHANNEL_KEY},
        webhook_secret=SecretStr(WEBHOOK_SECRET),
    )


@pytest.fixture
def order() -> Order:
    return Order(
        order_id="ORDER123",
        amount=Money(amount=12000),
        name="나이키 와플 트레이너 2 SD",
        customer_ref="customer-42",
    )


@pytest.fixture
def urls() -> ReturnUrls:
    return ReturnUrls(
        success="https://shop.example/pay/done",
        cancel="https://shop.example/pay/cancel",
        fail="https://shop.example/pay/fail",
    )


@pytest.fixture
def ready_req(order: Order, urls: ReturnUrls) -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT, order=order, method=Method.CARD, return_urls=urls, idempotency_key=KEY
    )


@pytest.fixture
def approve_req(order: Order) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=order,
        method=Method.CARD,
        provider_txn_id=ATTEMPT,
        callback_params={"paymentId": ATTEMPT},
        idempotency_key=KEY,
    )


@pytest.fixture
def instrument() -> Instrument:
    return Instrument(
        provider="portone", billing_key=SecretStr(BILLING_KEY), customer_key="customer-42"
    )


@pytest.fixture
def charge_req(order: Order, instrument: Instrument) -> ChargeRequest:
    return ChargeRequest(
        attempt_id=ATTEMPT, order=order, instrument=instrument, idempotency_key=KEY
    )


@pytest.fixture
def lookup_req(order: Order) -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=order, provider_txn_id=None)


@pytest.fixture
def cancel_req(order: Order) -> CancelRequest:
    return CancelRequest(
        refund_id="rf_1",
        attempt_id=ATTEMPT,
        order=order,
        provider_txn_id=ATTEMPT,
        amount=Money(amount=12000),
        expected_remaining=12000,
        reason="customer returned the goods",
        idempotency_key="a1b2c3d4e5f60718293a4b5c6d7e8f90",
    )
