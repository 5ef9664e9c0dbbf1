"""What the till prints: a KCP card answer's fields mapped onto ``Receipt``, a cancel's onto
``RefundReceipt``, KCP's own decline text as ``user_message``, and the answer kept with the
payment with no secret in it. Answers are shaped like KCP's (the approval / batch payment
answer and the cancel answer), mocked with respx on KCP's real hosts."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from kcp_support import (
    ATTEMPT,
    BATCH_KEY,
    BILLING_ATTEMPT,
    BILLING_TNO,
    TNO,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    load,
    make_order,
    one_line_cert,
    provider,
)
from payfallback_kcp import KST, Kcp
from pydantic import SecretStr

from payfallback import Instrument, ManualClock
from payfallback.errors import Declined
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.models import Receipt, RefundReceipt
from payfallback.provider import Approved, Cancelled, Failed, Outcome
from payfallback.testing import RouterHarness
from payfallback.testing.secrets import assert_no_secret

RECEIPT_PAGE = "https://admin8.kcp.co.kr/assist/bill.BillActionNew.do"
TEST_RECEIPT_PAGE = "https://testadmin8.kcp.co.kr/assist/bill.BillActionNew.do"


def approve(kcp: Kcp, **changes: Any) -> Outcome:
    req = approve_request()
    with (
        respx.mock(base_url=kcp.base_url, assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/gw/enc/v1/payment").respond(200, json=load("approve_paid.json", **changes))
        return kcp.parse_approve(req, client.send(kcp.build_approve(req)))


def charge(kcp: Kcp, payload: str = "batch_paid.json", **changes: Any) -> Outcome:
    req = charge_request()
    with (
        respx.mock(base_url=kcp.base_url, assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/gw/hub/v1/payment").respond(200, json=load(payload, **changes))
        return kcp.parse_charge(req, client.send(kcp.build_charge(req)))


def cancel(kcp: Kcp, payload: str, amount: int, remaining: int) -> Outcome:
    req = cancel_request(amount, remaining)
    with (
        respx.mock(base_url=kcp.base_url, assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        mock.post("/gw/mod/v1/cancel").respond(200, json=load(payload))
        return kcp.parse_cancel(req, client.send(kcp.build_cancel(req)))


# -- approvals and batch payments -------------------------------------------------------------


def test_a_lump_sum_card_approval_prints_its_receipt(kcp: Kcp) -> None:
    outcome = approve(kcp)
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        approval_number="30012345",
        issuer="신한카드",
        issuer_code="CCLG",
        acquirer="신한카드",
        acquirer_code="CCLG",
        card_number="451842******1234",
        installment_months=0,
        interest_free=False,
        receipt_url=(f"{RECEIPT_PAGE}?cmd=card_bill&tno={TNO}&order_no={ATTEMPT}&trade_mony=12000"),
    )


def test_an_interest_free_installment_approval(kcp: Kcp) -> None:
    outcome = approve(
        kcp, quota="06", noinf="Y", card_cd="CCBC", card_name="BC카드", acqu_cd="CCBC"
    )
    assert isinstance(outcome, Approved)
    assert outcome.receipt is not None
    assert outcome.receipt.installment_months == 6
    assert outcome.receipt.interest_free is True
    assert (outcome.receipt.issuer, outcome.receipt.issuer_code) == ("BC카드", "CCBC")
    assert outcome.receipt.acquirer_code == "CCBC"


def test_the_card_kind_is_not_guessed_from_undocumented_bin_types(kcp: Kcp) -> None:
    # card_bin_type_02 ("카드구분2") comes with every card answer, but no KCP page or sample
    # says what its values mean: a check card is not told from a credit card.
    for value in ("0", "1", "2"):
        outcome = approve(kcp, card_bin_type_02=value)
        assert isinstance(outcome, Approved)
        assert outcome.receipt is not None
        assert outcome.receipt.card_kind is None


def test_fields_kcp_leaves_out_stay_empty(kcp: Kcp) -> None:
    outcome = approve(
        kcp, app_no="", card_cd="", card_name="", acqu_cd="", acqu_name="", card_no="", quota=""
    )
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        interest_free=False,
        receipt_url=(f"{RECEIPT_PAGE}?cmd=card_bill&tno={TNO}&order_no={ATTEMPT}&trade_mony=12000"),
    )


def test_a_batch_payment_prints_its_receipt_on_the_test_receipt_page(sandbox: Kcp) -> None:
    outcome = charge(sandbox)
    assert isinstance(outcome, Approved)
    assert outcome.receipt == Receipt(
        approval_number="30012346",
        issuer="신한카드",
        issuer_code="CCLG",
        acquirer="신한카드",
        acquirer_code="CCLG",
        card_number="451842******1234",
        installment_months=0,
        interest_free=False,
        receipt_url=(
            f"{TEST_RECEIPT_PAGE}?cmd=card_bill&tno={BILLING_TNO}"
            f"&order_no={BILLING_ATTEMPT}&trade_mony=9900"
        ),
    )


def test_the_answer_is_kept_as_kcp_sent_it(kcp: Kcp) -> None:
    outcome = approve(kcp)
    assert isinstance(outcome, Approved)
    assert outcome.answer == load("approve_paid.json")


# -- cancels ----------------------------------------------------------------------------------


def test_a_full_cancel_says_when(kcp: Kcp) -> None:
    outcome = cancel(kcp, "cancel_full.json", 12000, 12000)
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(cancelled_at=datetime(2022, 10, 16, 10, 15, tzinfo=KST))
    assert outcome.answer == load("cancel_full.json")


def test_a_partial_cancel_says_when_and_not_its_ambiguous_rem_mny(kcp: Kcp) -> None:
    outcome = cancel(kcp, "cancel_partial.json", 5000, 12000)
    assert isinstance(outcome, Cancelled)
    # rem_mny is read as the balance before the cancel by one KCP guide and after it by
    # others: the receipt does not repeat it; the Router's own figure is `remaining`.
    assert outcome.receipt == RefundReceipt(cancelled_at=datetime(2022, 10, 16, 10, 15, tzinfo=KST))
    assert outcome.remaining == 7000


# -- declines ---------------------------------------------------------------------------------


def test_a_card_refusal_carries_kcps_words_for_the_cashier(kcp: Kcp) -> None:
    outcome = charge(kcp, "declined.json")
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == "일일 한도 초과"


def test_a_closed_window_carries_kcps_words(kcp: Kcp) -> None:
    req = approve_request(callback(code="3001", message="사용자가 취소하였습니다"))
    with pytest.raises(Declined) as caught:
        kcp.build_approve(req)
    assert caught.value.user_message == "사용자가 취소하였습니다"


# -- kept with the payment --------------------------------------------------------------------


def test_the_router_keeps_the_receipt_and_an_answer_without_secrets() -> None:
    """A batch answer that echoes the batch key and the certificate into fields the receipt
    does not read: the payment keeps the receipt, and no secret, in the journal."""
    kcp = provider()
    body = load("batch_paid.json", order_no="SUB-7_1", amount="9900", card_mny="9900")
    body.update(
        bt_batch_key=BATCH_KEY,
        res_en_msg=f"processing completed {BATCH_KEY}",
        memo=f"echo {one_line_cert()}",
    )
    clock = ManualClock()
    wire = respx.MockRouter(assert_all_mocked=True)
    wire.post(f"{kcp.base_url}/gw/hub/v1/payment").respond(200, json=body)
    with tempfile.TemporaryDirectory() as tmp:
        journal = SQLiteJournal(Path(tmp) / "journal.sqlite3", clock=clock)
        router = RouterHarness(
            "sync", [kcp], httpx.MockTransport(wire.handler), journal=journal, clock=clock
        )
        try:
            payment = router.charge(
                make_order("SUB-7", 9900, "월간 구독"),
                [Instrument(provider="kcp", billing_key=SecretStr(BATCH_KEY))],
            )
            kept = journal.payment_for_order("SUB-7")
        finally:
            router.close()
            journal.close()
    assert payment.receipt is not None
    assert payment.receipt.approval_number == "30012346"
    assert kept is not None
    assert kept.receipt == payment.receipt
    assert kept.provider_answer is not None
    assert kept.provider_answer["app_no"] == "30012346"
    for where in (payment.provider_answer, kept.provider_answer):
        assert_no_secret(repr(where), (BATCH_KEY, one_line_cert()), kcp.secrets)
