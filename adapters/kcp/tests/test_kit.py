"""The conformance kits answer like KCP: each answer parses into what the kit promises."""

from __future__ import annotations

import httpx
import pytest
from kcp_kit import KcpBatchKit, KcpKit, sent
from kcp_support import BATCH_KEY, approve_request, bare, cancel_request, make_order
from payfallback_kcp import Kcp

from payfallback.errors import ConfigurationError, Declined, OutcomeUnknown
from payfallback.models import Money
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

TNO = "20221015112233"
ATTEMPT = "ORD-KIT-1_1"
AMOUNT = 12000

KIT = KcpKit()
BATCH = KcpBatchKit()
PROVIDER = KIT.make_provider()
ORDER = make_order("ORD-KIT-1", AMOUNT)


def approve_req() -> ApproveRequest:
    return approve_request(dict(KIT.callback_params(TNO, AMOUNT)), ORDER, ATTEMPT)


def charge_req() -> ChargeRequest:
    return ChargeRequest(
        attempt_id=ATTEMPT, order=ORDER, instrument=BATCH.instrument(), idempotency_key="k"
    )


def lookup_req() -> LookupRequest:
    return LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=TNO)


def cancel_req(amount: int, remaining: int) -> CancelRequest:
    base = cancel_request(amount, remaining, order=ORDER)
    return CancelRequest(
        refund_id=base.refund_id,
        attempt_id=ATTEMPT,
        order=ORDER,
        provider_txn_id=TNO,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="kit",
        idempotency_key=base.idempotency_key,
    )


def test_the_kits_cover_both_flows() -> None:
    assert KIT.flow is Flow.REDIRECT
    assert BATCH.flow is Flow.SERVER_CHARGE
    assert isinstance(PROVIDER, Kcp)
    assert BATCH.instrument().billing_key.get_secret_value() == BATCH_KEY
    # The window's cancel never reaches the approval: build_approve declines it.
    assert KIT.user_cancel_response(httpx.Request("POST", "https://spl.kcp.co.kr/")) is None


def test_operation_of_recognises_every_request_the_adapter_builds() -> None:
    built = {
        Operation.APPROVE: PROVIDER.build_approve(approve_req()),
        Operation.CHARGE: PROVIDER.build_charge(charge_req()),
        Operation.LOOKUP: PROVIDER.build_lookup(lookup_req()),
        Operation.CANCEL: PROVIDER.build_cancel(cancel_req(AMOUNT, AMOUNT)),
    }
    assert {op: KIT.operation_of(r) for op, r in built.items()} == {op: op for op in built}
    with pytest.raises(AssertionError):
        KIT.operation_of(httpx.Request("POST", "https://spl.kcp.co.kr/std/tradeReg/register"))
    with pytest.raises(AssertionError):
        KIT.operation_of(httpx.Request("GET", "https://spl.kcp.co.kr/std/inquery"))


def test_paid_answers_approve_for_this_attempt() -> None:
    approve = PROVIDER.build_approve(approve_req())
    outcome = PROVIDER.parse_approve(
        approve_req(), KIT.paid_response(approve, txn_id=TNO, amount=AMOUNT)
    )
    assert isinstance(outcome, Approved)
    assert (outcome.provider_txn_id, outcome.amount) == (TNO, Money(amount=AMOUNT))
    charge = PROVIDER.build_charge(charge_req())
    answer = BATCH.paid_response(charge, txn_id=TNO, amount=AMOUNT)
    assert sent(charge)["ordr_idxx"] == ATTEMPT
    charged = PROVIDER.parse_charge(charge_req(), answer)
    assert isinstance(charged, Approved)
    assert charged.amount == Money(amount=AMOUNT)


def test_declines_decline() -> None:
    approve = PROVIDER.parse_approve(
        approve_req(), KIT.decline_response(PROVIDER.build_approve(approve_req()))
    )
    charge = PROVIDER.parse_charge(
        charge_req(), BATCH.decline_response(PROVIDER.build_charge(charge_req()))
    )
    for outcome in (approve, charge):
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, Declined)
        assert outcome.error.provider_code == "8186"


def test_server_errors_are_unknown() -> None:
    request = PROVIDER.build_approve(approve_req())
    for outcome in (
        PROVIDER.parse_approve(approve_req(), KIT.server_error_response(request)),
        PROVIDER.parse_charge(charge_req(), BATCH.server_error_response(request)),
    ):
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, OutcomeUnknown)


def test_lookup_answers() -> None:
    request = PROVIDER.build_lookup(lookup_req())
    paid = PROVIDER.parse_lookup(
        lookup_req(), KIT.lookup_paid_response(request, txn_id=TNO, amount=AMOUNT)
    )
    assert paid == Status(
        state=TxnState.PAID,
        provider_txn_id=TNO,
        amount=Money(amount=AMOUNT),
        cancelled=0,
        provider_status="PACA",
    )
    nothing = PROVIDER.parse_lookup(lookup_req(), KIT.lookup_not_paid_response(request, txn_id=TNO))
    assert isinstance(nothing, Status)
    assert nothing.state is TxnState.CANCELLED


def test_cancel_answers() -> None:
    first = cancel_req(5000, AMOUNT)
    request = PROVIDER.build_cancel(first)
    assert sent(request)["mod_type"] == "STPC"
    partial = PROVIDER.parse_cancel(
        first, KIT.cancel_response(request, txn_id=TNO, amount=5000, remaining=7000)
    )
    assert bare(partial) == Cancelled(
        provider_txn_id=TNO, amount=Money(amount=5000), remaining=7000
    )
    rest = cancel_req(7000, 7000)
    emptied = PROVIDER.parse_cancel(
        rest, KIT.cancel_response(PROVIDER.build_cancel(rest), txn_id=TNO, amount=7000, remaining=0)
    )
    assert bare(emptied) == Cancelled(provider_txn_id=TNO, amount=Money(amount=7000), remaining=0)
    whole = cancel_req(AMOUNT, AMOUNT)
    full_request = PROVIDER.build_cancel(whole)
    assert sent(full_request)["mod_type"] == "STSC"
    full = PROVIDER.parse_cancel(
        whole, KIT.cancel_response(full_request, txn_id=TNO, amount=AMOUNT, remaining=0)
    )
    assert bare(full) == Cancelled(provider_txn_id=TNO, amount=Money(amount=AMOUNT), remaining=0)


def test_bad_credentials_are_a_configuration_error() -> None:
    request = PROVIDER.build_approve(approve_req())
    outcome = PROVIDER.parse_approve(approve_req(), KIT.bad_credentials_response(request))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ConfigurationError)
    assert outcome.error.provider_code == "S032"
