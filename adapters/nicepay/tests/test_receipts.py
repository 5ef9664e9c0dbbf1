"""What a till prints, read off NICEPAY's payment object: each mapping pinned against answers
shaped like the manual's (api/payment-window-server.md and api/payment-subscribe.md, 응답
명세: 공통 and 카드; api/cancel.md for the cancel's own tid), sent through respx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from nicepay_support import (
    BID,
    BILLING_TID,
    TID,
    approve_request,
    callback,
    charge_request,
    load,
    lookup_request,
    make_order,
)
from payfallback_nicepay import Nicepay

from payfallback.errors import Declined
from payfallback.models import CardKind, PaidWith, Receipt
from payfallback.provider import Approved, Failed, Outcome, Status, TxnState

API = "https://api.nicepay.co.kr"
RECEIPT_URL = f"https://npg.nicepay.co.kr/issue/IssueLoader.do?type=0&innerWin=Y&TID={TID}"
#: approve_paid.json: a Samsung credit card, paid at once.
SAMSUNG = Receipt(
    approval_number="30012345",
    issuer="삼성",
    issuer_code="04",
    acquirer="삼성",
    acquirer_code="04",
    card_number="12341234****1234",
    installment_months=0,
    interest_free=False,
    card_kind=CardKind.CREDIT,
    receipt_url=RECEIPT_URL,
)


def _approve(nicepay: Nicepay, body: dict[str, Any], amount: int = 12000) -> Outcome:
    req = approve_request(params=callback(amount=amount), order=make_order(amount=amount))
    with respx.mock(base_url=API, assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(f"/v1/payments/{TID}").mock(return_value=httpx.Response(200, json=body))
        with httpx.Client() as client:
            response = client.send(nicepay.build_approve(req))
    return nicepay.parse_approve(req, response)


def _approved(outcome: Outcome) -> Approved:
    assert isinstance(outcome, Approved), outcome
    return outcome


def test_a_card_payment_prints_approval_number_card_companies_and_receipt_url(
    nicepay: Nicepay,
) -> None:
    approved = _approved(_approve(nicepay, load("approve_paid.json")))
    assert approved.receipt == SAMSUNG
    assert approved.receipt.paid_with is None  # not a wallet
    assert approved.answer is not None
    assert approved.answer["approveNo"] == "30012345"
    assert approved.answer["card"]["cardName"] == "삼성"
    # NICEPAY's response signature is kept masked, like every field named as a secret.
    assert approved.answer["signature"] != load("approve_paid.json")["signature"]


def test_an_installment_card_payment(nicepay: Nicepay) -> None:
    body = load("approve_paid_installment.json")
    approved = _approved(_approve(nicepay, body, amount=60_000))
    assert approved.receipt == Receipt(
        approval_number="30054321",
        issuer="신한",
        issuer_code="06",
        acquirer="신한",
        acquirer_code="06",
        card_number="45184212****5678",
        installment_months=3,
        interest_free=True,
        card_kind=CardKind.CREDIT,
        receipt_url=RECEIPT_URL,
    )


def test_a_check_card_payment(nicepay: Nicepay) -> None:
    approved = _approved(_approve(nicepay, load("approve_paid_check.json")))
    assert approved.receipt == Receipt(
        approval_number="30098765",
        issuer="국민",
        issuer_code="02",
        acquirer="국민",
        acquirer_code="02",
        card_number="94909912****4321",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CHECK,
        receipt_url=RECEIPT_URL,
    )


def test_kakao_pay_paid_by_card(nicepay: Nicepay) -> None:
    approved = _approved(_approve(nicepay, load("approve_paid_kakaopay_card.json")))
    assert approved.receipt == Receipt(
        approval_number="30011111",
        issuer="현대",
        issuer_code="07",
        acquirer="현대",
        acquirer_code="07",
        card_number="53611234****1234",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CREDIT,
        paid_with=PaidWith.CARD,
        receipt_url=RECEIPT_URL,
    )


def test_kakao_pay_paid_by_kakao_money(nicepay: Nicepay) -> None:
    approved = _approved(_approve(nicepay, load("approve_paid_kakaopay_money.json")))
    assert approved.receipt == Receipt(paid_with=PaidWith.MONEY, receipt_url=RECEIPT_URL)


def test_a_wallet_payment_whose_card_number_is_null_was_paid_by_the_wallet(
    nicepay: Nicepay,
) -> None:
    # "카카오머니/네이버포인트/페이코포인트 전액결제 거래인경우 null" (card.cardNum).
    body = load("approve_paid_kakaopay_card.json")
    body["card"] = {**body["card"], "cardNum": None}
    approved = _approved(_approve(nicepay, body))
    assert approved.receipt is not None
    assert approved.receipt.paid_with is PaidWith.MONEY
    assert approved.receipt.card_number is None


def test_a_billing_charge_prints_its_card(nicepay: Nicepay) -> None:
    req = charge_request()
    with respx.mock(base_url=API, assert_all_called=True, assert_all_mocked=True) as mock:
        mock.post(f"/v1/subscribe/{BID}/payments").mock(
            return_value=httpx.Response(200, json=load("billing_paid.json"))
        )
        with httpx.Client() as client:
            response = client.send(nicepay.build_charge(req))
    approved = _approved(nicepay.parse_charge(req, response))
    assert approved.receipt == SAMSUNG.model_copy(
        update={"receipt_url": RECEIPT_URL.replace(TID, BILLING_TID)}
    )


@pytest.mark.parametrize(
    ("card_type", "kind"), [("credit", CardKind.CREDIT), ("check", CardKind.CHECK), (None, None)]
)
def test_card_type(nicepay: Nicepay, card_type: str | None, kind: CardKind | None) -> None:
    body = load("approve_paid.json")
    body["card"] = {**body["card"], "cardType": card_type}
    approved = _approved(_approve(nicepay, body))
    assert approved.receipt is not None
    assert approved.receipt.card_kind is kind


def test_a_card_object_that_does_not_read_is_left_out_never_an_error(nicepay: Nicepay) -> None:
    body = load("approve_paid.json", card={"cardQuota": "three", "isInterestFree": "maybe"})
    approved = _approved(_approve(nicepay, body))
    assert approved.amount.amount == 12000
    assert approved.receipt == Receipt(approval_number="30012345", receipt_url=RECEIPT_URL)


# -- declines carry NICEPAY's own words -------------------------------------------------------


def test_an_approval_decline_carries_nicepay_message_for_the_cashier(nicepay: Nicepay) -> None:
    outcome = _approve(nicepay, load("approve_declined.json"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "카드번호 오류"


def test_a_failed_authentication_carries_nicepay_message(nicepay: Nicepay) -> None:
    params = {**callback(), "authResultCode": "3011", "authResultMsg": "카드번호 오류"}
    with pytest.raises(Declined) as raised:
        nicepay.build_approve(approve_request(params=params))
    assert raised.value.user_message == "카드번호 오류"


# -- lookups: a payment found paid brings its receipt ------------------------------------------


def test_a_lookup_that_finds_the_payment_paid_reads_its_receipt(nicepay: Nicepay) -> None:
    status = nicepay.parse_lookup(
        lookup_request(), httpx.Response(200, json=load("lookup_paid.json"))
    )
    assert isinstance(status, Status)
    assert status.state is TxnState.PAID
    assert status.receipt is not None
    assert status.receipt.approval_number == load("lookup_paid.json")["approveNo"]
    assert status.receipt.card_kind is CardKind.CREDIT
    assert status.answer is not None
    assert status.answer["approveNo"] == "30012345"
    assert status.answer["card"]["cardName"] == "삼성"


def test_a_lookup_of_a_failed_payment_carries_no_receipt(nicepay: Nicepay) -> None:
    status = nicepay.parse_lookup(
        lookup_request(), httpx.Response(200, json=load("lookup_failed.json"))
    )
    assert isinstance(status, Status)
    assert status.state is TxnState.NOT_PAID
    assert status.receipt is None
    assert status.answer is None
