"""Each conformance-kit answer parses, through the adapter, into what the kit promises.

The kits answer requests the adapter built, so these tests also pin which request is
which operation.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from payfallback_portone import PortOne
from portone_kit import PortOneBillingKit, PortOneCheckoutKit
from portone_support import money_of, violations

from payfallback.errors import (
    ConfigurationError,
    Declined,
    OutcomeUnknown,
    PayfallbackError,
    RequestInFlight,
)
from payfallback.models import Method, Money, Order, ReturnUrls
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Operation,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
)

ATTEMPT = "ORD-CONF-1_1"
AMOUNT = 50_000
KEY = "5f0c6a8e2b7d4c1e9a3f0b6d8c2e4a17"
ORDER = Order(
    order_id="ORD-CONF-1",
    amount=Money(amount=AMOUNT),
    name="conformance order",
    customer_ref="customer-1",
)


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def adapter(kit: PortOneBillingKit | PortOneCheckoutKit) -> PortOne:
    provider = kit.make_provider()
    assert isinstance(provider, PortOne)
    return provider


def cancel_req(amount: int, remaining_before: int) -> CancelRequest:
    return CancelRequest(
        refund_id="rf_1",
        attempt_id=ATTEMPT,
        order=ORDER,
        provider_txn_id=ATTEMPT,
        amount=Money(amount=amount),
        expected_remaining=remaining_before,
        reason="returned",
        idempotency_key=KEY,
    )


# -- billing kit -----------------------------------------------------------------------------


@pytest.fixture
def billing() -> tuple[PortOneBillingKit, PortOne, ChargeRequest, httpx.Request]:
    kit = PortOneBillingKit()
    portone = adapter(kit)
    req = ChargeRequest(
        attempt_id=ATTEMPT, order=ORDER, instrument=kit.instrument(), idempotency_key=KEY
    )
    return kit, portone, req, portone.build_charge(req)


def test_billing_kit_names_each_request(
    billing: tuple[PortOneBillingKit, PortOne, ChargeRequest, httpx.Request],
) -> None:
    kit, portone, _, charge = billing
    lookup = portone.build_lookup(
        LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=None)
    )
    cancel = portone.build_cancel(cancel_req(AMOUNT, AMOUNT))
    assert kit.operation_of(charge) is Operation.CHARGE
    assert kit.operation_of(lookup) is Operation.LOOKUP
    assert kit.operation_of(lookup) is Operation.LOOKUP
    assert kit.operation_of(cancel) is Operation.CANCEL


def test_billing_kit_answers(
    billing: tuple[PortOneBillingKit, PortOne, ChargeRequest, httpx.Request],
) -> None:
    kit, portone, req, charge = billing
    paid = portone.parse_charge(req, kit.paid_response(charge, txn_id="T1", amount=AMOUNT))
    assert isinstance(paid, Approved)
    assert paid.amount == Money(amount=AMOUNT)
    assert paid.provider_txn_id == ATTEMPT

    declined = error_of(portone.parse_charge(req, kit.decline_response(charge)))
    assert type(declined) is Declined
    unknown = error_of(portone.parse_charge(req, kit.server_error_response(charge)))
    assert type(unknown) is OutcomeUnknown
    bad_key = error_of(portone.parse_charge(req, kit.bad_credentials_response(charge)))
    assert type(bad_key) is ConfigurationError
    replay = kit.replay_in_progress_response(charge)
    assert replay is not None
    assert type(error_of(portone.parse_charge(req, replay))) is RequestInFlight
    assert kit.user_cancel_response(charge) is None


def test_billing_kit_lookups_and_cancels(
    billing: tuple[PortOneBillingKit, PortOne, ChargeRequest, httpx.Request],
) -> None:
    kit, portone, _, _ = billing
    lookup_req = LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=None)
    lookup = portone.build_lookup(lookup_req)
    found = portone.parse_lookup(
        lookup_req, kit.lookup_paid_response(lookup, txn_id="T1", amount=AMOUNT)
    )
    assert money_of(found) == Status(
        state=TxnState.PAID,
        provider_txn_id=ATTEMPT,
        amount=Money(amount=AMOUNT),
        provider_status="PAID",
    )
    missing = portone.parse_lookup(lookup_req, kit.lookup_not_paid_response(lookup, txn_id="T1"))
    assert isinstance(missing, Status)
    assert missing.state is TxnState.NOT_PAID

    partial = cancel_req(20_000, AMOUNT)
    answer = kit.cancel_response(
        portone.build_cancel(partial), txn_id="T1", amount=20_000, remaining=30_000
    )
    assert money_of(portone.parse_cancel(partial, answer)) == Cancelled(
        provider_txn_id=ATTEMPT, amount=Money(amount=20_000), remaining=30_000, settled=True
    )


# -- checkout kit ----------------------------------------------------------------------------


@pytest.fixture
def checkout() -> tuple[PortOneCheckoutKit, PortOne, ApproveRequest, httpx.Request]:
    kit = PortOneCheckoutKit()
    portone = adapter(kit)
    urls = ReturnUrls(
        success="https://shop.example/ok",
        cancel="https://shop.example/c",
        fail="https://shop.example/f",
    )
    ready = ReadyRequest(
        attempt_id=ATTEMPT, order=ORDER, method=Method.CARD, return_urls=urls, idempotency_key=KEY
    )
    assert portone.build_ready(ready) is None
    assert isinstance(portone.parse_ready(ready, None), Redirect)
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=ORDER,
        method=Method.CARD,
        provider_txn_id=ATTEMPT,
        callback_params=dict(kit.callback_params("T1", AMOUNT)),
        idempotency_key=KEY,
    )
    return kit, portone, req, portone.build_approve(req)


def test_checkout_kit_tells_approve_from_lookup_by_order(
    checkout: tuple[PortOneCheckoutKit, PortOne, ApproveRequest, httpx.Request],
) -> None:
    kit, portone, _, approve = checkout
    lookup = portone.build_lookup(
        LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=ATTEMPT)
    )
    assert approve.method == lookup.method == "GET"
    assert approve.url == lookup.url
    assert kit.operation_of(approve) is Operation.APPROVE
    assert kit.operation_of(lookup) is Operation.LOOKUP
    other = portone.build_lookup(
        LookupRequest(attempt_id="ORD-2_1", order=ORDER, provider_txn_id=None)
    )
    assert kit.operation_of(other) is Operation.APPROVE
    assert kit.operation_of(portone.build_cancel(cancel_req(AMOUNT, AMOUNT))) is Operation.CANCEL


def test_checkout_kit_answers(
    checkout: tuple[PortOneCheckoutKit, PortOne, ApproveRequest, httpx.Request],
) -> None:
    kit, portone, req, approve = checkout
    paid = portone.parse_approve(req, kit.paid_response(approve, txn_id="T1", amount=AMOUNT))
    assert isinstance(paid, Approved)
    assert paid.amount == Money(amount=AMOUNT)
    assert type(error_of(portone.parse_approve(req, kit.decline_response(approve)))) is Declined
    cancelled = kit.user_cancel_response(approve)
    assert cancelled is not None
    assert type(error_of(portone.parse_approve(req, cancelled))) is Declined
    assert (
        type(error_of(portone.parse_approve(req, kit.server_error_response(approve))))
        is OutcomeUnknown
    )
    assert (
        type(error_of(portone.parse_approve(req, kit.bad_credentials_response(approve))))
        is ConfigurationError
    )
    assert kit.replay_in_progress_response(approve) is None  # GETs are never "outstanding"

    lookup_req = LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=ATTEMPT)
    lookup = portone.build_lookup(lookup_req)
    not_paid = portone.parse_lookup(lookup_req, kit.lookup_not_paid_response(lookup, txn_id="T1"))
    assert isinstance(not_paid, Status)
    assert not_paid.state is TxnState.NOT_FOUND


def test_kit_answers_to_a_probe_request() -> None:
    # The suite asks optional answers of a bare probe to learn which scenarios apply.
    probe = httpx.Request("POST", "https://probe.invalid/")
    assert PortOneCheckoutKit().user_cancel_response(probe) is not None
    assert PortOneBillingKit().replay_in_progress_response(probe) is not None
    assert PortOneCheckoutKit().replay_in_progress_response(probe) is None


@pytest.mark.parametrize("kit_cls", [PortOneBillingKit, PortOneCheckoutKit])
def test_kit_payments_are_shaped_like_the_spec(
    openapi: dict[str, Any], kit_cls: type[PortOneBillingKit | PortOneCheckoutKit]
) -> None:
    kit = kit_cls()
    portone = adapter(kit)
    lookup = portone.build_lookup(
        LookupRequest(attempt_id=ATTEMPT, order=ORDER, provider_txn_id=None)
    )
    payment = kit.lookup_paid_response(lookup, txn_id="T1", amount=AMOUNT).json()
    assert violations(openapi, "Payment", payment) == []
    assert payment["id"] == ATTEMPT
    cancel = kit.cancel_response(
        portone.build_cancel(cancel_req(AMOUNT, AMOUNT)), txn_id="T1", amount=AMOUNT, remaining=0
    ).json()
    assert violations(openapi, "CancelPaymentResponse", cancel) == []


def test_each_checkout_kit_keeps_its_own_order() -> None:
    first, second = PortOneCheckoutKit(), PortOneCheckoutKit()
    request = httpx.Request("GET", "https://api.portone.io/payments/X_1")
    assert first.operation_of(request) is Operation.APPROVE
    assert second.operation_of(request) is Operation.APPROVE
    assert first.operation_of(request) is Operation.LOOKUP
