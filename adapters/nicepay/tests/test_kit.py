"""The conformance kits answer like NICEPAY: each answer parses into what the kit promises."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
from nicepay_kit import NicepayBillingKit, NicepayKit
from nicepay_support import BID, make_order, money_of
from payfallback_nicepay import KST, Nicepay

from payfallback.errors import ConfigurationError, Declined, OutcomeUnknown
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
    VoidRequest,
)

TXN = "nicuntct1m0101221015153000K001"
ATTEMPT = "ORD-KIT-1_1"
AMOUNT = 12000

KIT = NicepayKit()
BILLING = NicepayBillingKit()
PROVIDER = KIT.make_provider()
ORDER = make_order("ORD-KIT-1", AMOUNT)


def approve_req() -> ApproveRequest:
    return ApproveRequest(
        attempt_id=ATTEMPT,
        order=ORDER,
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=KIT.callback_params(TXN, AMOUNT),
        idempotency_key="k",
    )


def charge_req() -> ChargeRequest:
    return ChargeRequest(
        attempt_id=ATTEMPT, order=ORDER, instrument=BILLING.instrument(), idempotency_key="k"
    )


def lookup_req(tid: str | None = TXN) -> LookupRequest:
    return LookupRequest(
        attempt_id=ATTEMPT,
        order=ORDER,
        provider_txn_id=tid,
        attempted_at=datetime(2022, 10, 15, 15, 30, tzinfo=KST),
    )


def cancel_req(amount: int, remaining: int) -> CancelRequest:
    return CancelRequest(
        refund_id="rf_1",
        attempt_id=ATTEMPT,
        order=ORDER,
        provider_txn_id=TXN,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="kit",
        idempotency_key="0123456789abcdef0123456789abcdef",
    )


def test_the_kits_cover_both_flows() -> None:
    assert KIT.flow is Flow.REDIRECT
    assert BILLING.flow is Flow.SERVER_CHARGE
    assert isinstance(PROVIDER, Nicepay)
    assert BILLING.instrument().billing_key.get_secret_value() == BID
    assert KIT.user_cancel_response(httpx.Request("POST", "https://x")) is None


def test_operation_of_recognises_every_request_the_adapter_builds() -> None:
    void = VoidRequest(
        attempt_id=ATTEMPT,
        order=ORDER,
        provider_txn_id=None,
        amount=ORDER.amount,
        idempotency_key="k",
    )
    built = {
        Operation.APPROVE: PROVIDER.build_approve(approve_req()),
        Operation.CHARGE: PROVIDER.build_charge(charge_req()),
        Operation.LOOKUP: PROVIDER.build_lookup(lookup_req()),
        Operation.CANCEL: PROVIDER.build_cancel(cancel_req(AMOUNT, AMOUNT)),
        Operation.VOID: PROVIDER.build_void(void),
    }
    by_order_id = PROVIDER.build_lookup(lookup_req(None))
    assert {op: KIT.operation_of(r) for op, r in built.items()} == {op: op for op in built}
    assert KIT.operation_of(by_order_id) is Operation.LOOKUP
    with pytest.raises(AssertionError):
        KIT.operation_of(httpx.Request("DELETE", "https://api.nicepay.co.kr/v1/payments/x"))


def test_the_callback_verifies_and_approves_its_tid() -> None:
    request = PROVIDER.build_approve(approve_req())
    assert request.url.path == f"/v1/payments/{TXN}"
    assert json.loads(request.content) == {"amount": AMOUNT}


def test_paid_answers_approve() -> None:
    approve = PROVIDER.build_approve(approve_req())
    outcome = PROVIDER.parse_approve(
        approve_req(), KIT.paid_response(approve, txn_id=TXN, amount=AMOUNT)
    )
    assert isinstance(outcome, Approved)
    assert (outcome.provider_txn_id, outcome.amount) == (TXN, Money(amount=AMOUNT))

    charge = PROVIDER.build_charge(charge_req())
    charged = PROVIDER.parse_charge(
        charge_req(), BILLING.paid_response(charge, txn_id=TXN, amount=AMOUNT)
    )
    assert isinstance(charged, Approved)
    assert charged.amount == Money(amount=AMOUNT)


def test_declines_decline() -> None:
    approve = PROVIDER.parse_approve(
        approve_req(), KIT.decline_response(PROVIDER.build_approve(approve_req()))
    )
    charge = PROVIDER.parse_charge(
        charge_req(), BILLING.decline_response(PROVIDER.build_charge(charge_req()))
    )
    for outcome in (approve, charge):
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, Declined)
        assert outcome.error.provider_code == "3011"


def test_server_errors_are_unknown() -> None:
    request = PROVIDER.build_approve(approve_req())
    for outcome in (
        PROVIDER.parse_approve(approve_req(), KIT.server_error_response(request)),
        PROVIDER.parse_charge(charge_req(), BILLING.server_error_response(request)),
    ):
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, OutcomeUnknown)


@pytest.mark.parametrize("tid", [TXN, None])
def test_lookup_answers(tid: str | None) -> None:
    request = PROVIDER.build_lookup(lookup_req(tid))
    paid = PROVIDER.parse_lookup(
        lookup_req(tid), KIT.lookup_paid_response(request, txn_id=TXN, amount=AMOUNT)
    )
    assert money_of(paid) == Status(
        state=TxnState.PAID,
        provider_txn_id=TXN,
        amount=Money(amount=AMOUNT),
        cancelled=0,
        provider_status="paid",
    )
    not_paid = PROVIDER.parse_lookup(
        lookup_req(tid), KIT.lookup_not_paid_response(request, txn_id=TXN)
    )
    assert isinstance(not_paid, Status)
    assert not_paid.state is TxnState.NOT_PAID


def test_cancel_answers() -> None:
    kit = NicepayKit()
    kit.paid_response(PROVIDER.build_approve(approve_req()), txn_id=TXN, amount=AMOUNT)
    first = cancel_req(5000, AMOUNT)
    partial = PROVIDER.parse_cancel(
        first,
        kit.cancel_response(PROVIDER.build_cancel(first), txn_id=TXN, amount=5000, remaining=7000),
    )
    assert money_of(partial) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=5000), remaining=7000
    )
    rest = cancel_req(7000, 7000)
    full = PROVIDER.parse_cancel(
        rest, kit.cancel_response(PROVIDER.build_cancel(rest), txn_id=TXN, amount=7000, remaining=0)
    )
    assert money_of(full) == Cancelled(provider_txn_id=TXN, amount=Money(amount=7000), remaining=0)


def test_bad_credentials_are_a_configuration_error() -> None:
    request = PROVIDER.build_approve(approve_req())
    outcome = PROVIDER.parse_approve(approve_req(), KIT.bad_credentials_response(request))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ConfigurationError)
    assert outcome.error.provider_code == "U304"
