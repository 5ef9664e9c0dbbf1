"""Each conformance-kit answer parses through the adapter into what the kit promises."""

from __future__ import annotations

import httpx
import pytest
from kakaopay_kit import KakaoPayKit
from kakaopay_support import TID
from payfallback_kakaopay import KakaoPay

from payfallback.errors import ConfigurationError, Declined, OutcomeUnknown
from payfallback.models import Money
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    Failed,
    LookupRequest,
    Operation,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
)


@pytest.fixture
def kit() -> KakaoPayKit:
    return KakaoPayKit()


@pytest.fixture
def provider(kit: KakaoPayKit) -> KakaoPay:
    made = kit.make_provider()
    assert isinstance(made, KakaoPay)
    return made


def test_operation_of_every_call(
    kit: KakaoPayKit,
    provider: KakaoPay,
    ready_req: ReadyRequest,
    approve_req: ApproveRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> None:
    assert kit.operation_of(provider.build_ready(ready_req)) is Operation.READY
    assert kit.operation_of(provider.build_approve(approve_req)) is Operation.APPROVE
    assert kit.operation_of(provider.build_lookup(lookup_req)) is Operation.LOOKUP
    assert kit.operation_of(provider.build_cancel(cancel_req)) is Operation.CANCEL
    with pytest.raises(AssertionError):
        kit.operation_of(
            httpx.Request("GET", "https://open-api.kakaopay.com/online/v1/payment/order")
        )


def test_ready_and_paid(
    kit: KakaoPayKit, provider: KakaoPay, ready_req: ReadyRequest, approve_req: ApproveRequest
) -> None:
    ready = provider.parse_ready(
        ready_req, kit.ready_response(provider.build_ready(ready_req), txn_id=TID)
    )
    assert isinstance(ready, Redirect)
    assert ready.provider_txn_id == TID
    params = kit.callback_params(TID, 2200)
    req = ApproveRequest(
        attempt_id=approve_req.attempt_id,
        order=approve_req.order,
        method=approve_req.method,
        provider_txn_id=ready.provider_txn_id,
        callback_params=params,
        idempotency_key="k",
    )
    request = provider.build_approve(req)
    paid = provider.parse_approve(req, kit.paid_response(request, txn_id=TID, amount=2200))
    assert isinstance(paid, Approved)
    assert (paid.provider_txn_id, paid.amount) == (TID, Money(amount=2200))


def test_decline_server_error_and_bad_credentials(
    kit: KakaoPayKit, provider: KakaoPay, approve_req: ApproveRequest
) -> None:
    request = provider.build_approve(approve_req)
    for response, expected in (
        (kit.decline_response(request), Declined),
        (kit.server_error_response(request), OutcomeUnknown),
        (kit.bad_credentials_response(request), ConfigurationError),
    ):
        outcome = provider.parse_approve(approve_req, response)
        assert isinstance(outcome, Failed)
        assert type(outcome.error) is expected


def test_lookups(kit: KakaoPayKit, provider: KakaoPay, lookup_req: LookupRequest) -> None:
    request = provider.build_lookup(lookup_req)
    paid = provider.parse_lookup(
        lookup_req, kit.lookup_paid_response(request, txn_id=TID, amount=2200)
    )
    assert isinstance(paid, Status)
    assert (paid.state, paid.amount, paid.cancelled) == (TxnState.PAID, Money(amount=2200), 0)
    not_paid = provider.parse_lookup(lookup_req, kit.lookup_not_paid_response(request, txn_id=TID))
    assert isinstance(not_paid, Status)
    assert not_paid.state is TxnState.NOT_PAID


def test_cancel(
    kit: KakaoPayKit, provider: KakaoPay, approve_req: ApproveRequest, cancel_req: CancelRequest
) -> None:
    kit.paid_response(provider.build_approve(approve_req), txn_id=TID, amount=2200)
    request = provider.build_cancel(cancel_req)
    outcome = provider.parse_cancel(
        cancel_req, kit.cancel_response(request, txn_id=TID, amount=1000, remaining=1200)
    )
    assert isinstance(outcome, Cancelled)
    assert (outcome.provider_txn_id, outcome.amount, outcome.remaining) == (
        TID,
        Money(amount=1000),
        1200,
    )
    assert outcome.receipt is not None
    assert outcome.receipt.remaining == 1200


def test_no_user_cancel_answer_and_no_replay(kit: KakaoPayKit) -> None:
    probe = httpx.Request("POST", "https://open-api.kakaopay.com/online/v1/payment/approve")
    assert kit.user_cancel_response(probe) is None
    assert kit.replay_in_progress_response(probe) is None
