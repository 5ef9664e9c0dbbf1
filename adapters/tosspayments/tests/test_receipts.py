"""What a till prints, read off Toss's Payment object: each mapping pinned against answers
shaped like the documented ones (https://docs.tosspayments.com/reference, Payment 객체;
https://docs.tosspayments.com/common/easypay-response for the wallet cases), sent through
respx as a client would."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import respx
from payfallback_tosspayments import TossPayments
from tosspayments_support import (
    AMOUNT,
    ATTEMPT,
    BASE,
    BILLING_PAYMENT_KEY,
    PAYMENT_KEY,
    error,
    load,
    order,
    payment,
)

from payfallback import Router
from payfallback.errors import Declined
from payfallback.models import CardKind, Method, PaidWith, Receipt
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

KST = timezone(timedelta(hours=9))
RECEIPT_URL = (
    f"https://dashboard.tosspayments.com/receipt/redirection?transactionId={PAYMENT_KEY}&ref=PX"
)
#: The card part every card payload carries (payment_done_card.json).
CARD = Receipt(
    approval_number="00000000",
    issuer_code="61",
    acquirer_code="31",
    card_number="12341234****123*",
    installment_months=0,
    interest_free=False,
    card_kind=CardKind.CREDIT,
    receipt_url=RECEIPT_URL,
)


def _approve(toss: TossPayments, answer: httpx.Response, amount: int = AMOUNT) -> Outcome:
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=order(amount),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params={"paymentKey": PAYMENT_KEY, "orderId": ATTEMPT, "amount": str(amount)},
        idempotency_key="idem-approve-r",
    )
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as router:
        router.post("/v1/payments/confirm").mock(return_value=answer)
        with httpx.Client() as client:
            response = client.send(toss.build_approve(req))
    return toss.parse_approve(req, response)


def _approved(outcome: Outcome) -> Approved:
    assert isinstance(outcome, Approved), outcome
    return outcome


def test_a_card_payment_prints_approval_number_card_and_receipt_url(toss: TossPayments) -> None:
    approved = _approved(_approve(toss, payment("payment_done_card", orderId=ATTEMPT)))
    assert approved.receipt == CARD
    assert approved.receipt.paid_with is None  # not a wallet
    assert approved.receipt.issuer is None  # Toss sends codes, no names
    assert approved.answer is not None
    assert approved.answer["card"]["approveNo"] == "00000000"
    assert approved.answer["method"] == "카드"


def test_an_installment_card_payment(toss: TossPayments) -> None:
    answer = payment("payment_done_card_installment", orderId=ATTEMPT)
    approved = _approved(_approve(toss, answer, amount=60_000))
    assert approved.receipt == Receipt(
        approval_number="30046371",
        issuer_code="51",
        acquirer_code="51",
        card_number="12341234****123*",
        installment_months=3,
        interest_free=True,
        card_kind=CardKind.CREDIT,
        receipt_url=RECEIPT_URL,
    )


def test_a_check_card_payment(toss: TossPayments) -> None:
    approved = _approved(_approve(toss, payment("payment_done_check_card", orderId=ATTEMPT)))
    assert approved.receipt is not None
    assert approved.receipt.card_kind is CardKind.CHECK
    assert approved.receipt.approval_number == "51742210"
    assert approved.receipt.issuer_code == "24"
    assert approved.receipt.installment_months == 0


@pytest.mark.parametrize(
    ("card_type", "kind"),
    [
        ("신용", CardKind.CREDIT),
        ("체크", CardKind.CHECK),
        ("기프트", CardKind.GIFT),
        ("미확인", None),
    ],
)
def test_card_type_labels(toss: TossPayments, card_type: str, kind: CardKind | None) -> None:
    body = load("payment_done_card", orderId=ATTEMPT)
    body["card"]["cardType"] = card_type
    approved = _approved(_approve(toss, httpx.Response(200, json=body)))
    assert approved.receipt is not None
    assert approved.receipt.card_kind is kind


def test_a_wallet_paid_by_its_registered_card(toss: TossPayments) -> None:
    # Case 1 of the easy-pay guide: card.amount is the whole payment, easyPay.amount 0.
    approved = _approved(_approve(toss, payment("payment_done_tosspay", orderId=ATTEMPT)))
    assert approved.receipt == CARD.model_copy(update={"paid_with": PaidWith.CARD})


def test_a_wallet_paid_by_its_money(toss: TossPayments) -> None:
    # Charged means (linked account, 토스머니, 카카오페이 머니): no card, easyPay.amount.
    approved = _approved(_approve(toss, payment("payment_done_tosspay_money", orderId=ATTEMPT)))
    assert approved.receipt == Receipt(paid_with=PaidWith.MONEY, receipt_url=RECEIPT_URL)


def test_a_wallet_paid_by_card_and_points_is_mixed(toss: TossPayments) -> None:
    # Case 2 of the easy-pay guide: 10,000 by card, 5,000 by 토스포인트 (discountAmount).
    answer = payment("payment_done_tosspay_card_and_points", orderId=ATTEMPT)
    approved = _approved(_approve(toss, answer))
    assert approved.amount.amount == AMOUNT
    assert approved.receipt == CARD.model_copy(update={"paid_with": PaidWith.MIXED})


def test_a_billing_charge_prints_its_card(toss: TossPayments, charge_req: ChargeRequest) -> None:
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as router:
        router.route(method="POST").mock(
            return_value=payment("payment_done_billing", orderId=ATTEMPT)
        )
        with httpx.Client() as client:
            response = client.send(toss.build_charge(charge_req))
    approved = _approved(toss.parse_charge(charge_req, response))
    assert approved.provider_txn_id == BILLING_PAYMENT_KEY
    assert approved.receipt == CARD.model_copy(
        update={"receipt_url": RECEIPT_URL.replace(PAYMENT_KEY, BILLING_PAYMENT_KEY)}
    )


def test_a_receipt_part_that_does_not_read_is_left_out_never_an_error(
    toss: TossPayments,
) -> None:
    body = load("payment_done_card", orderId=ATTEMPT)
    body["card"] = {"installmentPlanMonths": "three", "approveNo": ["x"]}
    body["receipt"] = "not an object"
    approved = _approved(_approve(toss, httpx.Response(200, json=body)))
    assert approved.amount.amount == AMOUNT
    assert approved.receipt is None


def test_a_payment_with_no_receipt_field_has_no_receipt(toss: TossPayments) -> None:
    body = load("payment_done_card", orderId=ATTEMPT, card=None, receipt=None)
    approved = _approved(_approve(toss, httpx.Response(200, json=body)))
    assert approved.receipt is None


# -- declines carry Toss's own words ----------------------------------------------------------


def test_a_decline_carries_toss_message_for_the_cashier(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    said = "카드사에서 거절한 결제입니다. 카드사에 문의해 주세요."
    outcome = toss.parse_approve(approve_req, error(403, "REJECT_CARD_COMPANY", said))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.user_message == said


def test_a_fail_url_decline_carries_toss_message(toss: TossPayments) -> None:
    said = "사용자에 의해 결제가 취소되었습니다."
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params={"code": "PAY_PROCESS_CANCELED", "message": said, "orderId": ATTEMPT},
        idempotency_key="idem-approve-f",
    )
    with pytest.raises(Declined) as raised:
        toss.build_approve(req)
    assert raised.value.user_message == said
    assert said in raised.value.message


def test_an_approval_time_comes_with_the_receipt(toss: TossPayments) -> None:
    approved = _approved(_approve(toss, payment("payment_done_card", orderId=ATTEMPT)))
    assert approved.approved_at == datetime(2021, 1, 1, 10, 5, 40, tzinfo=KST)


# -- lookups: a payment found paid brings its receipt ------------------------------------------


def test_a_lookup_that_finds_the_payment_paid_reads_its_receipt(
    toss: TossPayments, lookup_by_order_req: LookupRequest
) -> None:
    status = toss.parse_lookup(
        lookup_by_order_req, payment("payment_done_tosspay", orderId=ATTEMPT)
    )
    assert isinstance(status, Status)
    assert status.state is TxnState.PAID
    assert status.receipt == CARD.model_copy(update={"paid_with": PaidWith.CARD})
    assert status.answer is not None
    assert status.answer["easyPay"]["provider"] == "토스페이"


def test_a_lookup_of_a_cancelled_payment_carries_no_receipt(
    toss: TossPayments, lookup_req: LookupRequest
) -> None:
    status = toss.parse_lookup(lookup_req, payment("payment_canceled", orderId=ATTEMPT))
    assert isinstance(status, Status)
    assert status.state is TxnState.CANCELLED
    assert status.receipt is None


def test_a_charge_whose_answer_was_lost_is_found_with_its_receipt(
    toss: TossPayments, charge_req: ChargeRequest, tmp_path: Path
) -> None:
    # The billing charge times out every time; the Router finds it by orderId, paid.
    def toss_api(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("timed out", request=request)
        order_id = request.url.path.rsplit("/", 1)[-1]
        return payment("payment_done_billing", orderId=order_id)

    client = httpx.Client(transport=httpx.MockTransport(toss_api))
    router = Router(
        [toss],
        client=client,
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        sleep=lambda _: None,
    )
    try:
        paid = router.charge(order(), [charge_req.instrument])
    finally:
        router.close()
        client.close()
    assert paid.provider_txn_id == BILLING_PAYMENT_KEY
    assert paid.receipt == CARD.model_copy(
        update={"receipt_url": RECEIPT_URL.replace(PAYMENT_KEY, BILLING_PAYMENT_KEY)}
    )
    assert paid.provider_answer is not None
    assert paid.provider_answer["card"]["approveNo"] == "00000000"
