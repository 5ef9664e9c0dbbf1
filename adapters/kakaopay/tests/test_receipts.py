"""Receipts: what the till prints, pinned against answers shaped like Kakao Pay's.

A wallet paid by card (lump sum and installments, credit and check), a wallet paid by
Kakao Pay money, points, a refund's receipt, the decline text for the cashier, and the
answer the Router keeps with the payment, with every secret masked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from kakaopay_support import CID_SECRET, SECRET, SID, TID
from payfallback_kakaopay import CURRENT_HOST, KakaoPay

from payfallback import Router
from payfallback.errors import Declined
from payfallback.models import (
    CardKind,
    Method,
    Money,
    Order,
    PaidWith,
    Receipt,
    RefundReceipt,
    ReturnUrls,
)
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
)

Payload = Callable[[str], dict[str, Any]]
KST_OFFSET = 9 * 3600


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def approved(kakao: KakaoPay, req: ApproveRequest, answer: dict[str, Any]) -> Approved:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        mock.post("/online/v1/payment/approve").respond(200, json=answer)
        outcome = kakao.parse_approve(req, send(kakao.build_approve(req)))
    assert isinstance(outcome, Approved), outcome
    return outcome


def test_wallet_paid_by_card_lump_sum(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    outcome = approved(kakao, approve_req, payload("approve_card"))
    assert outcome.receipt == Receipt(
        approval_number="12345678",
        issuer="수협은행",
        issuer_code="212",
        acquirer="비씨카드",
        acquirer_code="104",
        card_number=None,
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CREDIT,
        paid_with=PaidWith.CARD,
        receipt_url=None,
    )
    # The whole answer travels with the outcome, for the journal to keep.
    assert outcome.answer is not None
    assert outcome.answer["card_info"]["bin"] == "123456"
    assert outcome.answer["aid"] == "A5678901234567890124"


def test_card_installments_interest_free(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    receipt = approved(kakao, approve_req, payload("approve_card_installment")).receipt
    assert receipt == Receipt(
        approval_number="30012345",
        # The kakaopay_ pair wins over the older issuer_corp / purchase_corp pair.
        issuer="신한카드",
        issuer_code="102",
        acquirer="신한카드",
        acquirer_code="102",
        installment_months=3,
        interest_free=True,
        card_kind=CardKind.CREDIT,
        paid_with=PaidWith.CARD,
    )


def test_check_card_with_only_the_older_corp_fields(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    receipt = approved(kakao, approve_req, payload("approve_check_card_legacy")).receipt
    assert receipt == Receipt(
        approval_number="12345678",
        issuer="수협카드",
        issuer_code="13",
        acquirer="비씨카드",
        acquirer_code="01",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CHECK,
        paid_with=PaidWith.CARD,
    )


def test_wallet_paid_by_kakao_pay_money(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    # MONEY: no card_info at all, so nothing about a card is printed.
    receipt = approved(kakao, approve_req, payload("approve")).receipt
    assert receipt == Receipt(paid_with=PaidWith.MONEY)


@pytest.mark.parametrize(
    ("method", "point", "paid_with"),
    [
        ("MONEY", 700, PaidWith.MIXED),
        ("CARD", 700, PaidWith.MIXED),
        ("MONEY", 2200, PaidWith.POINT),
        ("CARD", 0, PaidWith.CARD),
    ],
)
def test_points_make_a_mixed_or_a_points_payment(
    kakao: KakaoPay,
    approve_req: ApproveRequest,
    payload: Payload,
    method: str,
    point: int,
    paid_with: PaidWith,
) -> None:
    answer = payload("approve")
    answer["payment_method_type"] = method
    answer["amount"]["point"] = point
    receipt = approved(kakao, approve_req, answer).receipt
    assert receipt is not None
    assert receipt.paid_with is paid_with


@pytest.mark.parametrize(
    "card_info",
    [
        "not an object",
        {"install_month": "twelve", "card_type": "기타", "interest_free_install": 1},
        {"install_month": -3, "approved_id": {"nested": True}},
        {"install_month": "99"},
    ],
)
def test_receipt_fields_in_an_odd_shape_are_left_out_and_the_payment_stands(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload, card_info: object
) -> None:
    answer = payload("approve_card")
    answer["card_info"] = card_info
    outcome = approved(kakao, approve_req, answer)
    assert outcome.amount == Money(amount=2200)
    assert outcome.receipt is not None
    assert outcome.receipt.installment_months is None
    assert outcome.receipt.card_kind is None
    assert outcome.receipt.interest_free is None
    assert outcome.receipt.paid_with is PaidWith.CARD


def test_subscription_charge_receipt_and_the_sid_is_not_kept(
    kakao: KakaoPay, charge_req: ChargeRequest, payload: Payload
) -> None:
    answer = payload("subscription")
    answer["payment_method_type"] = "CARD"
    answer["card_info"] = payload("approve_card_installment")["card_info"]
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        mock.post("/online/v1/payment/subscription").respond(200, json=answer)
        outcome = kakao.parse_charge(charge_req, send(kakao.build_charge(charge_req)))
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert (outcome.receipt.installment_months, outcome.receipt.approval_number) == (3, "30012345")
    assert outcome.answer is not None
    assert SID not in json.dumps(outcome.answer, ensure_ascii=False)


def test_refund_receipt(kakao: KakaoPay, cancel_req: CancelRequest, payload: Payload) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        mock.post("/online/v1/payment/cancel").respond(200, json=payload("cancel_partial"))
        outcome = kakao.parse_cancel(cancel_req, send(kakao.build_cancel(cancel_req)))
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="A5678901234567890199",
        cancelled_at=datetime.fromisoformat("2024-06-21T09:12:03+09:00"),
        remaining=1200,
    )
    cancelled_at = outcome.receipt.cancelled_at
    assert cancelled_at is not None
    assert cancelled_at.utcoffset() == timedelta(seconds=KST_OFFSET)
    assert outcome.answer is not None
    assert outcome.answer["status"] == "PART_CANCEL_PAYMENT"


def test_a_decline_carries_kakaos_words_for_the_cashier(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    response = httpx.Response(
        400,
        json=payload("error_lack_balance"),
        request=kakao.build_approve(approve_req),
    )
    outcome = kakao.parse_approve(approve_req, response)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    # The payment method's own message, not our English meaning nor "approval failure!".
    assert outcome.error.user_message == "잔액이 부족합니다."
    assert "insufficient balance" in outcome.error.message


def test_the_router_keeps_the_receipt_and_a_masked_answer(tmp_path: Path, payload: Payload) -> None:
    kakao = KakaoPay(secret_key=SECRET, cid_secret=CID_SECRET)
    approve = payload("approve_card_installment")
    # An answer that echoes the credentials must not bring them into the journal.
    approve["payload"] = f"SECRET_KEY {SECRET} / {CID_SECRET}"
    cancel = payload("cancel_partial")
    cancel["payload"] = f"echo {SECRET}"
    order = Order(order_id="ORDER123", amount=Money(amount=2200), name="초코파이")
    urls = ReturnUrls(
        success="https://shop.example/ok",
        cancel="https://shop.example/cancel",
        fail="https://shop.example/fail",
    )
    with (
        respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock,
        httpx.Client() as client,
        Router([kakao], client=client, journal=f"sqlite:///{tmp_path / 'j.db'}") as router,
    ):
        mock.post("/online/v1/payment/ready").respond(200, json=payload("ready"))
        mock.post("/online/v1/payment/approve").respond(200, json=approve)
        mock.post("/online/v1/payment/cancel").respond(200, json=cancel)
        session = router.start_checkout(order, Method.KAKAOPAY, urls)
        assert session.provider_txn_id == TID
        payment = router.complete_checkout(session.session_id, {"pg_token": "pgtok0123456789"})
        refund = router.refund(payment.payment_id, Money(amount=1000), reason="one item back")
        stored = router.journal.get_payment(payment.payment_id)

    assert stored is not None
    for kept in (payment, stored):
        assert kept.receipt is not None
        assert (kept.receipt.approval_number, kept.receipt.installment_months) == ("30012345", 3)
        assert kept.receipt.paid_with is PaidWith.CARD
        assert kept.provider_answer is not None
        text = json.dumps(kept.provider_answer, ensure_ascii=False)
        assert SECRET not in text
        assert CID_SECRET not in text
        assert kept.provider_answer["card_info"]["approved_id"] == "30012345"
    assert refund.receipt == RefundReceipt(
        cancel_id="A5678901234567890199",
        cancelled_at=datetime.fromisoformat("2024-06-21T09:12:03+09:00"),
        remaining=1200,
    )
    assert refund.provider_answer is not None
    assert SECRET not in json.dumps(refund.provider_answer, ensure_ascii=False)
