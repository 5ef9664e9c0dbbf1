"""The conformance kits answer like KG Inicis: each answer parses into what the kit promises,
through the adapter's own build_ and parse_ functions."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from inicis_kit import SUITE_ATTEMPT, InicisBillingKit, InicisWindowKit
from inicis_support import make_order
from payfallback_inicis import Inicis

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
)

TXN = "StdpayCARDINIpayTest20221015153000KIT001"
AMOUNT = 50_000
WINDOW = InicisWindowKit()
BILLING = InicisBillingKit()
_MADE = WINDOW.make_provider()
assert isinstance(_MADE, Inicis)
PROVIDER: Inicis = _MADE
ORDER = make_order("ORD-CONF-1", AMOUNT)


def approve_req() -> ApproveRequest:
    return ApproveRequest(
        attempt_id=SUITE_ATTEMPT,
        order=ORDER,
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=WINDOW.callback_params(TXN, AMOUNT),
        idempotency_key="k",
    )


def charge_req() -> ChargeRequest:
    return ChargeRequest(
        attempt_id=SUITE_ATTEMPT, order=ORDER, instrument=BILLING.instrument(), idempotency_key="k"
    )


def lookup_req() -> LookupRequest:
    return LookupRequest(attempt_id=SUITE_ATTEMPT, order=ORDER, provider_txn_id=None)


def cancel_req(amount: int, remaining: int) -> CancelRequest:
    return CancelRequest(
        refund_id="RF-KIT",
        attempt_id=SUITE_ATTEMPT,
        order=ORDER,
        provider_txn_id=TXN,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="kit",
        idempotency_key="k",
    )


def sent(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    request.read()
    response.request = request
    return response


def test_the_kits_name_their_flows() -> None:
    assert WINDOW.flow is Flow.REDIRECT
    assert BILLING.flow is Flow.SERVER_CHARGE


def test_each_request_is_told_apart_by_its_path() -> None:
    assert WINDOW.operation_of(PROVIDER.build_approve(approve_req())) is Operation.APPROVE
    assert WINDOW.operation_of(PROVIDER.build_charge(charge_req())) is Operation.CHARGE
    assert WINDOW.operation_of(PROVIDER.build_lookup(lookup_req())) is Operation.LOOKUP
    assert WINDOW.operation_of(PROVIDER.build_cancel(cancel_req(AMOUNT, AMOUNT))) is (
        Operation.CANCEL
    )
    assert WINDOW.operation_of(PROVIDER.build_net_cancel(approve_req())) is Operation.VOID
    with pytest.raises(AssertionError):
        WINDOW.operation_of(httpx.Request("GET", "https://iniapi.inicis.com/other"))


def test_the_window_kit_approves_and_declines() -> None:
    request = PROVIDER.build_approve(approve_req())
    paid = PROVIDER.parse_approve(
        approve_req(), sent(request, WINDOW.paid_response(request, txn_id=TXN, amount=AMOUNT))
    )
    assert isinstance(paid, Approved)
    # The receipt and the kept answer are pinned in test_receipts.
    assert dataclasses.replace(paid, receipt=None, answer=None) == Approved(
        provider_txn_id=TXN,
        amount=Money(amount=AMOUNT),
        approved_at=paid.approved_at,
        provider_status="0000",
    )
    declined = PROVIDER.parse_approve(
        approve_req(), sent(request, WINDOW.decline_response(request))
    )
    assert isinstance(declined, Failed)
    assert isinstance(declined.error, Declined)


def test_the_billing_kit_charges_and_its_refusal_is_unknown() -> None:
    request = PROVIDER.build_charge(charge_req())
    paid = PROVIDER.parse_charge(
        charge_req(), BILLING.paid_response(request, txn_id=TXN, amount=AMOUNT)
    )
    assert isinstance(paid, Approved)
    assert paid.amount == Money(amount=AMOUNT)
    refused = PROVIDER.parse_charge(charge_req(), BILLING.decline_response(request))
    assert isinstance(refused, Failed)
    assert isinstance(refused.error, OutcomeUnknown)


def test_the_kit_lookups_read_paid_and_not_found() -> None:
    request = PROVIDER.build_lookup(lookup_req())
    paid = PROVIDER.parse_lookup(
        lookup_req(), WINDOW.lookup_paid_response(request, txn_id=TXN, amount=AMOUNT)
    )
    assert paid == Status(
        state=TxnState.PAID, provider_txn_id=TXN, amount=Money(amount=AMOUNT), provider_status="0"
    )
    missing = PROVIDER.parse_lookup(
        lookup_req(), WINDOW.lookup_not_paid_response(request, txn_id=TXN)
    )
    assert isinstance(missing, Status)
    assert missing.state is TxnState.NOT_FOUND


@pytest.mark.parametrize(
    ("amount", "remaining"), [(AMOUNT, AMOUNT), (20_000, AMOUNT), (30_000, 30_000)]
)
def test_the_kit_cancels_full_and_partial(amount: int, remaining: int) -> None:
    req = cancel_req(amount, remaining)
    request = PROVIDER.build_cancel(req)
    outcome = PROVIDER.parse_cancel(
        req,
        WINDOW.cancel_response(request, txn_id=TXN, amount=amount, remaining=remaining - amount),
    )
    assert isinstance(outcome, Cancelled)
    assert dataclasses.replace(outcome, receipt=None, answer=None) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=amount), remaining=remaining - amount
    )
    assert outcome.receipt is not None
    whole = amount == remaining == AMOUNT
    assert outcome.receipt.remaining == (None if whole else remaining - amount)


def test_bad_credentials_and_server_errors() -> None:
    request = PROVIDER.build_charge(charge_req())
    bad = PROVIDER.parse_charge(charge_req(), WINDOW.bad_credentials_response(request))
    assert isinstance(bad, Failed)
    assert isinstance(bad.error, ConfigurationError)
    broken = PROVIDER.parse_charge(charge_req(), WINDOW.server_error_response(request))
    assert isinstance(broken, Failed)
    assert isinstance(broken.error, OutcomeUnknown)
