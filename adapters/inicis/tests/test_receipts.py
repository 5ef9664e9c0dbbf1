"""What the till prints: each KG Inicis answer's card fields mapped onto ``Receipt`` and
``RefundReceipt``, the provider's own decline text as ``user_message``, and the answer kept
with the payment with no secret in it. Answers are shaped like Inicis's (승인결과 상세,
INIAPI 빌링승인 and 취소), mocked with respx on Inicis's real hosts."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from inicis_support import (
    BILL_KEY,
    BILLING_TID,
    CLIENT_IP,
    INIAPI_KEY,
    MID,
    SITE_URL,
    TID,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    instrument,
    load,
    make_order,
    signed_approval,
)
from payfallback_inicis import KST, Inicis
from pydantic import SecretStr

from payfallback import ManualClock
from payfallback.errors import Declined
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.models import CardKind, Method, PaidWith, Receipt, RefundReceipt
from payfallback.provider import Approved, ApproveRequest, Cancelled, Failed, Outcome
from payfallback.testing import RouterHarness
from payfallback.testing.secrets import assert_no_secret

RECEIPT_PAGE = "https://iniweb.inicis.com/DefaultWebApp/mall/cr/cm/mCmReceipt_head.jsp"


def approve(
    inicis: Inicis, req: ApproveRequest | None = None, **changes: Any
) -> tuple[Outcome, dict[str, Any]]:
    """Approve through the mocked authUrl; the answer is approve_paid.json with ``changes``."""
    req = req or approve_request()
    answered: dict[str, Any] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        answered.update(signed_approval(request, **changes))
        return httpx.Response(200, json=answered)

    with (
        respx.mock(base_url="https://fcstdpay.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/api/payAuth").mock(side_effect=answer)
        outcome = inicis.parse_approve(req, client.send(inicis.build_approve(req)))
    return outcome, answered


def charge(inicis: Inicis, **changes: Any) -> Outcome:
    body = load("billing_paid.json")
    body.update(changes)
    req = charge_request()
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/api/v1/billing").respond(200, json=body)
        return inicis.parse_charge(req, client.send(inicis.build_charge(req)))


def refund(inicis: Inicis, payload: str, amount: int, remaining: int) -> Outcome:
    req = cancel_request(amount=amount, remaining=remaining)
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/api/v1/refund").respond(200, json=load(payload))
        return inicis.parse_cancel(req, client.send(inicis.build_cancel(req)))


# -- window approval --------------------------------------------------------------------------


def test_a_lump_sum_credit_card_approval_prints_its_receipt(inicis: Inicis) -> None:
    outcome, _ = approve(inicis)
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        approval_number="30012345",
        issuer_code="04",
        card_number="53611234****1234",
        installment_months=0,
        interest_free=False,
        card_kind=CardKind.CREDIT,
        receipt_url=f"{RECEIPT_PAGE}?noTid={TID}&noMethod=1",
    )


def test_an_interest_free_installment_approval(inicis: Inicis) -> None:
    outcome, _ = approve(inicis, CARD_Quota="03", CARD_Interest="1", CARD_Code="06")
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert outcome.receipt.installment_months == 3
    assert outcome.receipt.interest_free is True
    assert outcome.receipt.issuer_code == "06"


@pytest.mark.parametrize(
    ("flag", "kind"), [("0", CardKind.CREDIT), ("1", CardKind.CHECK), ("2", CardKind.GIFT)]
)
def test_check_and_gift_cards_are_told_from_credit(
    inicis: Inicis, flag: str, kind: CardKind
) -> None:
    outcome, _ = approve(inicis, CARD_CheckFlag=flag)
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert outcome.receipt.card_kind is kind


def test_fields_inicis_leaves_out_stay_empty(inicis: Inicis) -> None:
    outcome, _ = approve(
        inicis, applNum="", CARD_Num="", CARD_Quota="", CARD_Interest="", CARD_CheckFlag="9"
    )
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        issuer_code="04", receipt_url=f"{RECEIPT_PAGE}?noTid={TID}&noMethod=1"
    )


def test_kakao_pay_through_inicis_is_a_wallet_paid_by_card(inicis: Inicis) -> None:
    req = dataclasses.replace(approve_request(), method=Method.KAKAOPAY)
    outcome, _ = approve(inicis, req)
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert outcome.receipt.paid_with is PaidWith.CARD
    assert outcome.receipt.approval_number == "30012345"
    # A card payment made as a card is no wallet payment.
    plain, _ = approve(inicis)
    assert isinstance(plain, Approved)
    assert plain.receipt is not None
    assert plain.receipt.paid_with is None


def test_the_approval_answer_is_kept_as_inicis_sent_it(inicis: Inicis) -> None:
    outcome, answered = approve(inicis)
    assert isinstance(outcome, Approved)
    assert outcome.answer is not None
    assert outcome.answer["tid"] == TID
    assert outcome.answer["applNum"] == "30012345"
    assert outcome.answer["CARD_BankCode"] == answered["CARD_BankCode"]
    assert outcome.answer["authSignature"] != answered["authSignature"]  # a signature: hidden


# -- billing ----------------------------------------------------------------------------------


def test_a_billing_charge_prints_its_receipt(inicis: Inicis) -> None:
    outcome = charge(inicis)
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        approval_number="30012345",
        issuer_code="04",
        installment_months=0,
        card_kind=CardKind.CREDIT,
        receipt_url=f"{RECEIPT_PAGE}?noTid={BILLING_TID}&noMethod=1",
    )
    assert outcome.answer is not None
    assert outcome.answer["payAuthCode"] == "30012345"


def test_a_billing_charge_on_a_check_card(inicis: Inicis) -> None:
    outcome = charge(inicis, checkFlg="1", cardCode="11")
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert outcome.receipt.card_kind is CardKind.CHECK
    assert outcome.receipt.issuer_code == "11"


# -- refunds ----------------------------------------------------------------------------------


def test_a_whole_refund_says_when(inicis: Inicis) -> None:
    outcome = refund(inicis, "refund_full.json", 12000, 12000)
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(cancelled_at=datetime(2022, 10, 16, 10, 15, tzinfo=KST))
    assert outcome.answer == load("refund_full.json")


def test_a_partial_refund_says_its_tid_when_and_what_is_left(inicis: Inicis) -> None:
    outcome = refund(inicis, "refund_partial.json", 2000, 12000)
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="StdpayCARDINIpayTest20221016101500777777",
        cancelled_at=datetime(2022, 10, 16, 10, 15, tzinfo=KST),
        remaining=10000,
    )


# -- declines ---------------------------------------------------------------------------------


def test_an_approval_refusal_carries_inicis_words_for_the_cashier(inicis: Inicis) -> None:
    req = approve_request()
    with (
        respx.mock(base_url="https://fcstdpay.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/api/payAuth").respond(200, json=load("approve_failed.json"))
        outcome = inicis.parse_approve(req, client.send(inicis.build_approve(req)))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "[R201]한도초과 거래입니다."


def test_a_failed_authentication_carries_inicis_words(inicis: Inicis) -> None:
    req = approve_request(callback(resultCode="V013", resultMsg="사용자가 결제를 취소하였습니다"))
    with pytest.raises(Declined) as caught:
        inicis.build_approve(req)
    assert caught.value.user_message == "사용자가 결제를 취소하였습니다"


# -- kept with the payment --------------------------------------------------------------------


def test_the_router_keeps_the_receipt_and_an_answer_without_secrets(tmp_path: Path) -> None:
    """A billing answer that echoes the INIAPI key and the billing key into fields the
    receipt does not read: the payment keeps the receipt, and no secret, in the journal."""
    inicis = Inicis(
        mid=MID,
        iniapi_key=SecretStr(INIAPI_KEY),
        client_ip=CLIENT_IP,
        site_url=SITE_URL,
        buyer_name="홍길동",
        buyer_email="buyer@shop.example",
        buyer_tel="01012345678",
    )
    body = load("billing_paid.json")
    body.update(
        price="15000",
        resultMsg=f"정상처리되었습니다. {INIAPI_KEY}",
        billKey=BILL_KEY,
        cardNumber="5361123456781234",
        memo=f"echo {BILL_KEY} {INIAPI_KEY}",
    )
    clock = ManualClock()
    journal = SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock)
    wire = respx.MockRouter(assert_all_mocked=True)
    wire.post("https://iniapi.inicis.com/api/v1/billing").respond(200, json=body)
    router = RouterHarness(
        "sync", [inicis], httpx.MockTransport(wire.handler), journal=journal, clock=clock
    )
    try:
        payment = router.charge(make_order("SUB-7", 15000), [instrument()])
        kept = journal.payment_for_order("SUB-7")
    finally:
        router.close()
        journal.close()
    assert payment.receipt is not None
    assert payment.receipt.approval_number == "30012345"
    assert kept is not None
    assert kept.receipt == payment.receipt
    assert kept.provider_answer is not None
    assert kept.provider_answer["payAuthCode"] == "30012345"
    assert kept.provider_answer["cardNumber"] != "5361123456781234"
    for where in (payment.provider_answer, kept.provider_answer):
        assert_no_secret(repr(where), (INIAPI_KEY, BILL_KEY), inicis.secrets)
