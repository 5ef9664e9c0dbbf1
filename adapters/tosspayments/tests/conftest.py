"""Fixtures for the Toss Payments adapter tests: the adapter and one request per operation."""

from __future__ import annotations

import sys
from pathlib import Path

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (tosspayments_support,
# tosspayments_kit) from this directory.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr
from tosspayments_support import (
    ATTEMPT,
    BILLING_KEY,
    CLIENT,
    CUSTOMER_KEY,
    PAYMENT_KEY,
    SECRET,
    order,
)

from payfallback.models import Instrument, Method, Money, ReturnUrls
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    LookupRequest,
    ReadyRequest,
)

URLS = ReturnUrls(
    success="https://shop.example/pay/success",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)


@pytest.fixture
def toss() -> TossPayments:
    return TossPayments(secret_key=SecretStr(SECRET), client_key=CLIENT)


@pytest.fixture
def ready_req() -> ReadyRequest:
    return ReadyRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.CARD,
        return_urls=URLS,
        idempotency_key="idem-ready-1",
    )


@pytest.fixture
def approve_req() -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params={
            "paymentKey": PAYMENT_KEY,
            "orderId": ATTEMPT,
            "amount": "15000",
            "paymentType": "NORMAL",
        },
        idempotency_key="idem-approve-1",
    )


@pytest.fixture
def charge_req() -> ChargeRequest:
    return ChargeRequest(
        attempt_id=ATTEMPT,
        order=order(),
        instrument=Instrument(
            provider="tosspayments",
            billing_key=SecretStr(BILLING_KEY),
            customer_key=CUSTOMER_KEY,
        ),
        idempotency_key="idem-charge-1",
    )


@pytest.fixture
def lookup_req() -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=PAYMENT_KEY)


@pytest.fixture
def lookup_by_order_req() -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=None)


@pytest.fixture
def cancel_req() -> CancelRequest:
    return CancelRequest(
        refund_id="R-1",
        attempt_id=ATTEMPT,
        order=order(),
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=15_000),
        expected_remaining=15_000,
        reason="고객 변심",
        idempotency_key="idem-cancel-1",
    )
