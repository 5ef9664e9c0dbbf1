"""Receipts: what the till prints, pinned against answers shaped like Naver Pay's.

A wallet paid by card (lump sum and installments), by card and Naver Pay points together,
by Naver Pay points / money alone, by a bank account, a refund's receipt, the decline text
for the cashier, and the answer the Router keeps with the payment, with every secret
masked.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from naverpay_support import (
    BASE_URL,
    PAYMENT_ID,
    SECRET,
    answer,
    approve_request,
    cancel_request,
    code_answer,
    make_order,
    make_provider,
    payload,
)
from payfallback_naverpay import NaverPay

from payfallback import Router
from payfallback.errors import Declined
from payfallback.models import Method, Money, PaidWith, Receipt, RefundReceipt, ReturnUrls
from payfallback.provider import Approved, Cancelled, Failed

KST = timezone(timedelta(hours=9))


def approved(provider: NaverPay, data: dict[str, Any]) -> Approved:
    req = approve_request()
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        naver.post("/v2.2/apply/payment").respond(200, json=data)
        with httpx.Client() as client:
            response = client.send(provider.build_approve(req))
    outcome = provider.parse_approve(req, response)
    assert isinstance(outcome, Approved), outcome
    return outcome


def test_card_and_naver_pay_points_together(provider: NaverPay) -> None:
    # apply_success: 11,000 on a card, 1,000 in Naver Pay points, paid at once.
    outcome = approved(provider, payload("apply_success"))
    assert outcome.receipt == Receipt(
        approval_number="17545616",
        issuer_code="C0",
        card_number="465887**********",
        installment_months=0,
        paid_with=PaidWith.MIXED,
    )
    assert outcome.answer is not None
    assert outcome.answer["body"]["detail"]["payHistId"] == "20170201NP1043587781"


def test_wallet_paid_by_card_in_installments(provider: NaverPay) -> None:
    outcome = approved(provider, payload("apply_card_installment"))
    assert outcome.receipt == Receipt(
        approval_number="30007781",
        issuer_code="C1",
        card_number="541234**********",
        installment_months=6,
        paid_with=PaidWith.CARD,
    )


def test_wallet_paid_by_naver_pay_money(provider: NaverPay) -> None:
    # Points / money alone: no card, so nothing about a card is printed.
    outcome = approved(provider, payload("apply_npay_money"))
    assert outcome.receipt == Receipt(paid_with=PaidWith.MONEY)
    assert outcome.amount == Money(amount=12000)


def test_wallet_paid_from_a_bank_account(provider: NaverPay) -> None:
    outcome = approved(provider, payload("apply_bank"))
    assert outcome.receipt == Receipt(paid_with=PaidWith.BANK)


@pytest.mark.parametrize(
    ("amounts", "paid_with"),
    [
        ({"primaryPayAmount": 10000, "npointPayAmount": 0, "giftCardAmount": 2000}, PaidWith.MIXED),
        ({"primaryPayAmount": 0, "npointPayAmount": 0, "giftCardAmount": 12000}, None),
        (
            {"primaryPayAmount": None, "npointPayAmount": None, "giftCardAmount": None},
            PaidWith.CARD,
        ),
    ],
)
def test_gift_cards_and_missing_amounts(
    provider: NaverPay, amounts: dict[str, int | None], paid_with: PaidWith | None
) -> None:
    data = payload("apply_card_installment")
    detail = data["body"]["detail"]
    for key, value in amounts.items():
        if value is None:
            del detail[key]
        else:
            detail[key] = value
    receipt = approved(provider, data).receipt
    assert receipt is not None
    assert receipt.paid_with is paid_with


@pytest.mark.parametrize(
    "odd",
    [
        {"cardInstCount": "six"},
        {"cardInstCount": -1},
        {"cardInstCount": 120},
        {"cardAuthNo": {"nested": True}, "cardInstCount": None},
    ],
)
def test_receipt_fields_in_an_odd_shape_are_left_out_and_the_payment_stands(
    provider: NaverPay, odd: dict[str, Any]
) -> None:
    data = payload("apply_card_installment")
    data["body"]["detail"].update(odd)
    outcome = approved(provider, data)
    assert outcome.amount == Money(amount=12000)
    assert outcome.receipt is not None
    assert outcome.receipt.installment_months is None
    assert outcome.receipt.paid_with is PaidWith.CARD


def test_refund_receipt(provider: NaverPay) -> None:
    outcome = provider.parse_cancel(cancel_request(3000), answer(payload("cancel_partial")))
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="20170201NP1043587999",
        cancelled_at=datetime(2017, 2, 1, 16, 3, 12, tzinfo=KST),
        remaining=9000,
    )
    assert outcome.answer is not None
    assert outcome.answer["body"]["primaryPayRestAmount"] == 8000


def test_full_refund_receipt_says_nothing_remains(provider: NaverPay) -> None:
    outcome = provider.parse_cancel(
        cancel_request(12000, remaining=12000), answer(payload("cancel_full"))
    )
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt is not None
    assert outcome.receipt.remaining == 0


def test_a_decline_carries_naver_pays_words_for_the_cashier(provider: NaverPay) -> None:
    outcome = provider.parse_approve(approve_request(), code_answer("Fail", "카드 한도초과"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "카드 한도초과"


def test_a_window_that_ended_without_a_payment_carries_its_message(provider: NaverPay) -> None:
    callback = {"resultCode": "OwnerAuthFail", "resultMessage": "본인인증 실패"}
    with pytest.raises(Declined) as caught:
        provider.build_approve(approve_request(callback))
    assert caught.value.user_message == "본인인증 실패"


def test_the_router_keeps_the_receipt_and_a_masked_answer(tmp_path: Path) -> None:
    provider = make_provider()
    order = make_order(12000)
    urls = ReturnUrls(
        success="https://shop.example/ok",
        cancel="https://shop.example/cancel",
        fail="https://shop.example/fail",
    )
    with (
        respx.mock(base_url=BASE_URL, assert_all_called=True) as naver,
        httpx.Client() as client,
        Router([provider], client=client, journal=f"sqlite:///{tmp_path / 'j.db'}") as router,
    ):
        session = router.start_checkout(order, Method.NAVERPAY, urls)
        applied = payload("apply_card_installment")
        applied["body"]["detail"]["merchantPayKey"] = session.session_id
        # An answer that echoes the client secret must not bring it into the journal.
        applied["body"]["detail"]["productName"] = f"echo {SECRET}"
        cancelled = payload("cancel_partial")
        cancelled["body"]["echo"] = SECRET
        naver.post("/v2.2/apply/payment").respond(200, json=applied)
        naver.post("/v1/cancel").respond(200, json=cancelled)
        payment = router.complete_checkout(
            session.session_id, {"resultCode": "Success", "paymentId": PAYMENT_ID}
        )
        refund = router.refund(payment.payment_id, Money(amount=3000), reason="고객 요청")
        stored = router.journal.get_payment(payment.payment_id)

    assert stored is not None
    for kept in (payment, stored):
        assert kept.receipt is not None
        assert (kept.receipt.approval_number, kept.receipt.installment_months) == ("30007781", 6)
        assert kept.provider_answer is not None
        assert SECRET not in json.dumps(kept.provider_answer, ensure_ascii=False)
        assert kept.provider_answer["body"]["detail"]["cardAuthNo"] == "30007781"
    assert refund.receipt == RefundReceipt(
        cancel_id="20170201NP1043587999",
        cancelled_at=datetime(2017, 2, 1, 16, 3, 12, tzinfo=KST),
        remaining=9000,
    )
    assert refund.provider_answer is not None
    assert SECRET not in json.dumps(refund.provider_answer, ensure_ascii=False)
