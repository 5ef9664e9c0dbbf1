"""Each answer of the conformance kits parses, through the adapter, into what it promises."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from payfallback_tosspayments import TossPayments
from tosspayments_kit import TossBillingKit, TossRedirectKit
from tosspayments_support import ATTEMPT, BILLING_KEY, PAYMENT_KEY, money_of, order

from payfallback.errors import ConfigurationError, Declined, OutcomeUnknown, RequestInFlight
from payfallback.models import Method, Money
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Operation,
    Status,
    TxnState,
)

TXN = "T20221015153000000001"
AMOUNT = 15_000


def _approve_req(kit: TossRedirectKit) -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=kit.callback_params(TXN, AMOUNT),
        idempotency_key="idem-1",
    )


def _charge_req(kit: TossBillingKit) -> ChargeRequest:
    return ChargeRequest(
        attempt_id=ATTEMPT, order=order(), instrument=kit.instrument(), idempotency_key="idem-1"
    )


def _cancel_req(amount: int, remaining: int, key: str = "idem-c") -> CancelRequest:
    return CancelRequest(
        refund_id="R-1",
        attempt_id=ATTEMPT,
        order=order(),
        provider_txn_id=TXN,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="고객 변심",
        idempotency_key=key,
    )


@pytest.fixture
def redirect() -> tuple[TossRedirectKit, TossPayments]:
    kit = TossRedirectKit()
    provider = kit.make_provider()
    assert isinstance(provider, TossPayments)
    return kit, provider


@pytest.fixture
def billing() -> tuple[TossBillingKit, TossPayments]:
    kit = TossBillingKit()
    provider = kit.make_provider()
    assert isinstance(provider, TossPayments)
    return kit, provider


def test_kits_declare_their_flow() -> None:
    assert TossRedirectKit.flow is Flow.REDIRECT
    assert TossBillingKit.flow is Flow.SERVER_CHARGE


def test_operation_of_names_every_request_the_adapter_builds(
    redirect: tuple[TossRedirectKit, TossPayments], billing: tuple[TossBillingKit, TossPayments]
) -> None:
    kit, toss = redirect
    assert kit.operation_of(toss.build_approve(_approve_req(kit))) is Operation.APPROVE
    assert kit.operation_of(toss.build_charge(_charge_req(billing[0]))) is Operation.CHARGE
    by_key = LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=TXN)
    by_order = LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=None)
    assert kit.operation_of(toss.build_lookup(by_key)) is Operation.LOOKUP
    assert kit.operation_of(toss.build_lookup(by_order)) is Operation.LOOKUP
    assert kit.operation_of(toss.build_cancel(_cancel_req(AMOUNT, AMOUNT))) is Operation.CANCEL
    with pytest.raises(AssertionError, match="not a Toss API"):
        kit.operation_of(
            httpx.Request(
                "DELETE", f"https://api.tosspayments.com/v1/billing/{quote(BILLING_KEY, safe='')}"
            )
        )


def test_redirect_kit_paid_and_lookups(redirect: tuple[TossRedirectKit, TossPayments]) -> None:
    kit, toss = redirect
    req = _approve_req(kit)
    request = toss.build_approve(req)
    assert json.loads(request.content)["paymentKey"] == TXN
    kit.operation_of(request)  # the suite's transport always asks first
    paid = toss.parse_approve(req, kit.paid_response(request, txn_id=TXN, amount=AMOUNT))
    assert isinstance(paid, Approved)
    assert money_of(paid) == Approved(
        provider_txn_id=TXN,
        amount=Money(amount=AMOUNT),
        approved_at=paid.approved_at,
        provider_status="DONE",
    )
    assert paid.receipt is not None
    assert paid.receipt.approval_number == "00000000"
    assert paid.answer is not None
    assert paid.answer["paymentKey"] == TXN

    # After the answer was lost: by paymentKey (from successUrl) and by orderId.
    for txn_id in (TXN, None):
        look = LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=txn_id)
        lookup = toss.build_lookup(look)
        status = toss.parse_lookup(
            look, kit.lookup_paid_response(lookup, txn_id=TXN, amount=AMOUNT)
        )
        assert isinstance(status, Status)
        assert status.state is TxnState.PAID
        assert status.amount == Money(amount=AMOUNT)
        not_paid = toss.parse_lookup(look, kit.lookup_not_paid_response(lookup, txn_id=TXN))
        assert isinstance(not_paid, Status)
        assert not_paid.state in (TxnState.NOT_PAID, TxnState.NOT_FOUND)


def test_redirect_kit_failures(redirect: tuple[TossRedirectKit, TossPayments]) -> None:
    kit, toss = redirect
    req = _approve_req(kit)
    request = toss.build_approve(req)
    probe = httpx.Request("POST", "https://probe.invalid/")
    cancel = kit.user_cancel_response(probe)
    replay = kit.replay_in_progress_response(probe)
    assert cancel is not None
    assert replay is not None
    expectations = [
        (kit.decline_response(request), Declined),
        (cancel, Declined),
        (kit.server_error_response(request), OutcomeUnknown),
        (kit.bad_credentials_response(request), ConfigurationError),
        (replay, RequestInFlight),
    ]
    for response, expected in expectations:
        outcome = toss.parse_approve(req, response)
        assert isinstance(outcome, Failed)
        assert type(outcome.error) is expected
    in_flight = toss.parse_approve(req, replay)
    assert isinstance(in_flight, Failed)
    assert in_flight.error.retry_after is not None


def test_billing_kit_paid_and_not_paid(billing: tuple[TossBillingKit, TossPayments]) -> None:
    kit, toss = billing
    req = _charge_req(kit)
    request = toss.build_charge(req)
    kit.operation_of(request)
    paid = toss.parse_charge(req, kit.paid_response(request, txn_id=TXN, amount=AMOUNT))
    assert isinstance(paid, Approved)
    assert paid.provider_txn_id == TXN
    assert paid.amount == Money(amount=AMOUNT)
    for txn_id in (TXN, None):
        look = LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=txn_id)
        lookup = toss.build_lookup(look)
        status = toss.parse_lookup(
            look, kit.lookup_paid_response(lookup, txn_id=TXN, amount=AMOUNT)
        )
        assert isinstance(status, Status)
        assert status.state is TxnState.PAID
        assert toss.parse_lookup(look, kit.lookup_not_paid_response(lookup, txn_id=TXN)) == Status(
            state=TxnState.NOT_FOUND, provider_txn_id=txn_id
        )
    failures = [
        (kit.decline_response(request), Declined),
        (kit.server_error_response(request), OutcomeUnknown),
        (kit.bad_credentials_response(request), ConfigurationError),
    ]
    for response, expected in failures:
        outcome = toss.parse_charge(req, response)
        assert isinstance(outcome, Failed)
        assert type(outcome.error) is expected


@pytest.mark.parametrize("kit_cls", [TossRedirectKit, TossBillingKit])
def test_cancel_answers_full_and_in_parts(kit_cls: type[TossRedirectKit | TossBillingKit]) -> None:
    kit = kit_cls()
    toss = kit.make_provider()
    assert isinstance(toss, TossPayments)
    first = _cancel_req(6_000, AMOUNT, "idem-c1")
    request = toss.build_cancel(first)
    cancelled = toss.parse_cancel(
        first, kit.cancel_response(request, txn_id=TXN, amount=6_000, remaining=9_000)
    )
    assert isinstance(cancelled, Cancelled)
    assert money_of(cancelled) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=6_000), remaining=9_000, settled=True
    )
    assert cancelled.receipt is not None
    assert cancelled.receipt.remaining == 9_000
    rest = _cancel_req(9_000, 9_000, "idem-c2")
    request = toss.build_cancel(rest)
    response = kit.cancel_response(request, txn_id=TXN, amount=9_000, remaining=0)
    assert response.json()["status"] == "PARTIAL_CANCELED"  # as Toss leaves it
    assert money_of(toss.parse_cancel(rest, response)) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=9_000), remaining=0, settled=True
    )
    # A lookup now sees it cancelled in full.
    look = LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=TXN)
    status = toss.parse_lookup(look, httpx.Response(200, json=response.json()))
    assert isinstance(status, Status)
    assert status.state is TxnState.CANCELLED


def test_full_cancel_in_one_go_is_canceled() -> None:
    kit = TossRedirectKit()
    toss = kit.make_provider()
    req = _cancel_req(AMOUNT, AMOUNT)
    response = kit.cancel_response(toss.build_cancel(req), txn_id=TXN, amount=AMOUNT, remaining=0)
    assert response.json()["status"] == "CANCELED"
    assert money_of(toss.parse_cancel(req, response)) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=AMOUNT), remaining=0, settled=True
    )


def test_kit_uses_no_real_key() -> None:
    toss = TossRedirectKit().make_provider()
    assert repr(toss) == "TossPayments(mode='test', base_url='https://api.tosspayments.com')"
    assert PAYMENT_KEY not in repr(toss)
