"""What a till prints, read off PortOne's ``Payment``: each mapping pinned against payloads
the OpenAPI document validates (``test_payloads_are_shaped_like_the_spec``), answered to
the approve's GET through respx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from payfallback_portone import PortOne
from portone_support import ATTEMPT, BASE_URL, load
from pydantic import SecretStr

from payfallback.errors import Declined
from payfallback.models import CardKind, PaidWith, Receipt
from payfallback.provider import (
    Approved,
    ApproveRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Outcome,
    Status,
    TxnState,
)

TOSS_RECEIPT = (
    "https://dashboard.tosspayments.com/receipt/redirection?transactionId=tgen_20250314141231AbCd1"
)
KAKAO_RECEIPT = "https://pg-receipt.example/kakaopay/T1234567890123456789"
#: payment_paid.json: a Shinhan credit card through Toss Payments, paid at once.
SHINHAN = Receipt(
    approval_number="00000000",
    issuer_code="SHINHAN",
    card_number="53275000****123*",
    installment_months=0,
    interest_free=False,
    card_kind=CardKind.CREDIT,
    receipt_url=TOSS_RECEIPT,
)


def _approve(portone: PortOne, req: ApproveRequest, body: dict[str, Any]) -> Outcome:
    with respx.mock(base_url=BASE_URL, assert_all_called=True, assert_all_mocked=True) as api:
        api.get(f"/payments/{ATTEMPT}").respond(200, json=body)
        with httpx.Client() as client:
            response = client.send(portone.build_approve(req))
    return portone.parse_approve(req, response)


def _approved(outcome: Outcome) -> Approved:
    assert isinstance(outcome, Approved), outcome
    return outcome


def test_a_card_payment_prints_approval_number_card_and_receipt_url(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    approved = _approved(_approve(portone, approve_req, load("payment_paid")))
    assert approved.receipt == SHINHAN
    assert approved.receipt.paid_with is None  # not a wallet
    assert approved.answer is not None
    assert approved.answer["method"]["approvalNumber"] == "00000000"
    assert approved.answer["pgTxId"] == "tgen_20250314141231AbCd1"


def test_an_installment_card_payment(portone: PortOne, approve_req: ApproveRequest) -> None:
    approved = _approved(_approve(portone, approve_req, load("payment_paid_installment")))
    assert approved.receipt == SHINHAN.model_copy(
        update={"approval_number": "30046371", "installment_months": 3, "interest_free": True}
    )


def test_a_check_card_payment(portone: PortOne, approve_req: ApproveRequest) -> None:
    approved = _approved(_approve(portone, approve_req, load("payment_paid_check_card")))
    assert approved.receipt == Receipt(
        approval_number="51742210",
        issuer_code="KOOKMIN",
        card_number="94909912****432*",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CHECK,
        receipt_url=TOSS_RECEIPT,
    )


@pytest.mark.parametrize(
    ("card_type", "kind"),
    [("CREDIT", CardKind.CREDIT), ("DEBIT", CardKind.CHECK), ("GIFT", CardKind.GIFT)],
)
def test_card_types(
    portone: PortOne, approve_req: ApproveRequest, card_type: str, kind: CardKind
) -> None:
    body = load("payment_paid")
    body["method"]["card"]["type"] = card_type
    approved = _approved(_approve(portone, approve_req, body))
    assert approved.receipt is not None
    assert approved.receipt.card_kind is kind


def test_kakao_pay_paid_by_card(portone: PortOne, approve_req: ApproveRequest) -> None:
    approved = _approved(_approve(portone, approve_req, load("payment_paid_kakaopay_card")))
    assert approved.receipt == Receipt(
        approval_number="30011111",
        issuer_code="HYUNDAI",
        card_number="53611234****123*",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CREDIT,
        paid_with=PaidWith.CARD,
        receipt_url=KAKAO_RECEIPT,
    )


def test_kakao_pay_paid_by_kakao_money(portone: PortOne, approve_req: ApproveRequest) -> None:
    approved = _approved(_approve(portone, approve_req, load("payment_paid_kakaopay_money")))
    assert approved.receipt == Receipt(paid_with=PaidWith.MONEY, receipt_url=KAKAO_RECEIPT)


def test_a_wallet_paid_from_a_linked_account(portone: PortOne, approve_req: ApproveRequest) -> None:
    body = load("payment_paid_kakaopay_money")
    body["method"]["easyPayMethod"] = {"type": "PaymentMethodTransfer", "bank": "KOOKMIN"}
    approved = _approved(_approve(portone, approve_req, body))
    assert approved.receipt == Receipt(paid_with=PaidWith.BANK, receipt_url=KAKAO_RECEIPT)


def test_a_method_part_that_does_not_read_is_left_out_never_an_error(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    body = load("payment_paid")
    body["method"]["installment"] = {"month": "three", "isInterestFree": "maybe"}
    approved = _approved(_approve(portone, approve_req, body))
    assert approved.amount.amount == 12000
    assert approved.receipt == Receipt(receipt_url=TOSS_RECEIPT)


def test_a_billing_key_payment_has_no_receipt_fields_to_read(
    portone: PortOne, charge_req: ChargeRequest
) -> None:
    # {payment: {pgTxId, paidAt}}: the answer is kept, there is nothing to print from it.
    outcome = portone.parse_charge(charge_req, httpx.Response(200, json=load("billing_key_paid")))
    approved = _approved(outcome)
    assert approved.receipt is None
    assert approved.answer == load("billing_key_paid")


# -- declines carry the PG's own words ---------------------------------------------------------


def test_a_failed_payment_carries_the_pg_message_for_the_cashier(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    outcome = _approve(portone, approve_req, load("payment_failed"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "[RC02] 한도초과 또는 잔액부족"


def test_a_pg_decline_carries_the_pg_message(charge_req: ChargeRequest) -> None:
    portone = PortOne(api_secret=SecretStr("pOrT0nE-v2-test"), pg_provider="TOSSPAYMENTS")
    answer = httpx.Response(502, json=load("error_pg_provider_decline"))
    outcome = portone.parse_charge(charge_req, answer)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "[RC02] 한도초과 또는 잔액부족"


def test_a_window_the_customer_left_carries_the_sdk_message(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    said = "사용자가 결제를 취소하였습니다"
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=approve_req.method,
        provider_txn_id=ATTEMPT,
        callback_params={"paymentId": ATTEMPT, "code": "FAILURE_TYPE_PG", "message": said},
        idempotency_key=approve_req.idempotency_key,
    )
    outcome = _approve(portone, req, load("payment_ready"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == said


# -- lookups: a payment found paid brings its receipt ------------------------------------------


def test_a_lookup_that_finds_the_payment_paid_reads_its_receipt(
    portone: PortOne, lookup_req: LookupRequest
) -> None:
    answer = httpx.Response(200, json=load("payment_paid_kakaopay_card"))
    status = portone.parse_lookup(lookup_req, answer)
    assert isinstance(status, Status)
    assert status.state is TxnState.PAID
    assert status.receipt is not None
    assert status.receipt.paid_with is PaidWith.CARD
    assert status.receipt.approval_number == "30011111"
    assert status.answer is not None
    assert status.answer["method"]["provider"] == "KAKAOPAY"


def test_a_lookup_of_a_cancelled_payment_carries_no_receipt(
    portone: PortOne, lookup_req: LookupRequest
) -> None:
    status = portone.parse_lookup(lookup_req, httpx.Response(200, json=load("payment_cancelled")))
    assert isinstance(status, Status)
    assert status.state is TxnState.CANCELLED
    assert status.receipt is None
    assert status.answer is None
