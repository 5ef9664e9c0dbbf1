"""Each conformance-kit answer parses, through the adapter, into the outcome it promises."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from naverpay_kit import ATTEMPT_ID, NaverPayKit
from naverpay_support import (
    approve_request,
    cancel_request,
    lookup_request,
    make_order,
    ready_request,
)
from payfallback_naverpay import NaverPay

from payfallback.errors import ConfigurationError, Declined, OutcomeUnknown
from payfallback.models import Money
from payfallback.provider import Approved, Cancelled, Failed, Operation, Status, TxnState

TXN = "T20221015153000000001"


def bare(outcome: object) -> object:
    """The outcome without its receipt and answer (those are pinned in test_receipts)."""
    assert isinstance(outcome, Approved | Cancelled), outcome
    return dataclasses.replace(outcome, receipt=None, answer=None)


@pytest.fixture
def kit() -> NaverPayKit:
    return NaverPayKit()


@pytest.fixture
def adapter(kit: NaverPayKit) -> NaverPay:
    provider = kit.make_provider()
    assert isinstance(provider, NaverPay)
    return provider


def test_operation_of_names_every_request_the_adapter_builds(
    kit: NaverPayKit, adapter: NaverPay
) -> None:
    approve = approve_request(kit.callback_params(TXN, 50_000), attempt_id=ATTEMPT_ID)
    assert kit.operation_of(adapter.build_approve(approve)) is Operation.APPROVE
    assert kit.operation_of(adapter.build_lookup(lookup_request(TXN))) is Operation.LOOKUP
    assert kit.operation_of(adapter.build_cancel(cancel_request())) is Operation.CANCEL
    with pytest.raises(AssertionError):
        kit.operation_of(httpx.Request("POST", "https://dev.apis.naver.com/other/path"))


def test_paid_response_is_approved_for_the_amount(kit: NaverPayKit, adapter: NaverPay) -> None:
    req = approve_request(
        kit.callback_params(TXN, 50_000), order=make_order(50_000), attempt_id=ATTEMPT_ID
    )
    request = adapter.build_approve(req)
    outcome = adapter.parse_approve(req, kit.paid_response(request, txn_id=TXN, amount=50_000))
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == TXN
    assert outcome.amount == Money(amount=50_000)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("decline_response", Declined),
        ("server_error_response", OutcomeUnknown),
        ("bad_credentials_response", ConfigurationError),
        ("replay_in_progress_response", OutcomeUnknown),
    ],
)
def test_failure_answers_on_apply(
    kit: NaverPayKit, adapter: NaverPay, answer: str, expected: type[Exception]
) -> None:
    req = approve_request(kit.callback_params(TXN, 50_000), attempt_id=ATTEMPT_ID)
    response = getattr(kit, answer)(adapter.build_approve(req))
    outcome = adapter.parse_approve(req, response)
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is expected


def test_lookup_answers(kit: NaverPayKit, adapter: NaverPay) -> None:
    req = lookup_request(TXN, attempt_id=ATTEMPT_ID)
    request = adapter.build_lookup(req)
    paid = adapter.parse_lookup(req, kit.lookup_paid_response(request, txn_id=TXN, amount=50_000))
    assert isinstance(paid, Status)
    assert (paid.state, paid.amount, paid.cancelled) == (TxnState.PAID, Money(amount=50_000), 0)
    not_paid = adapter.parse_lookup(req, kit.lookup_not_paid_response(request, txn_id=TXN))
    assert isinstance(not_paid, Status)
    assert not_paid.state is TxnState.NOT_PAID


@pytest.mark.parametrize(("amount", "remaining"), [(20_000, 30_000), (50_000, 0)])
def test_cancel_answer(kit: NaverPayKit, adapter: NaverPay, amount: int, remaining: int) -> None:
    req = cancel_request(
        amount, remaining=amount + remaining, order=make_order(50_000), payment_id=TXN
    )
    response = kit.cancel_response(
        adapter.build_cancel(req), txn_id=TXN, amount=amount, remaining=remaining
    )
    outcome = adapter.parse_cancel(req, response)
    assert bare(outcome) == Cancelled(
        provider_txn_id=TXN, amount=Money(amount=amount), remaining=remaining
    )


def test_user_cancel_is_not_an_answer_to_apply(kit: NaverPayKit, adapter: NaverPay) -> None:
    probe = httpx.Request("POST", "https://probe.invalid/")
    assert kit.user_cancel_response(probe) is None
    with pytest.raises(Declined):
        adapter.build_approve(approve_request({"resultCode": "UserCancel"}))


def test_ready_sends_nothing(kit: NaverPayKit, adapter: NaverPay) -> None:
    assert adapter.build_ready(ready_request()) is None
    with pytest.raises(AssertionError, match="client-side"):
        kit.ready_response(httpx.Request("POST", "https://probe.invalid/"), txn_id=TXN)
