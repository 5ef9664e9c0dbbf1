"""No secret comes back out: Naver Pay answers that echo every secret we sent, in every
string field, on every operation, on the success shape and on each error shape.

The one secret is the client secret, sent as the ``X-Naver-Client-Secret`` value as it is
(:attr:`NaverPay.secrets`). The client id (handed to the browser SDK), the chain id and
the idempotency key are not secret. Naver's return URL carries no one-time token
(``resultCode``, ``paymentId``, ``resultMessage``), so the only request text the adapter
quotes is ``resultMessage``, which goes through the kit's cleaner like any provider text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from naverpay_support import (
    CHAIN_ID,
    CLIENT_ID,
    IDEMPOTENCY_KEY,
    PAYMENT_ID,
    SECRET,
    approve_request,
    cancel_request,
    lookup_request,
    make_order,
    make_provider,
    payload,
    ready_request,
)
from payfallback_naverpay import NaverPay

from payfallback.errors import Declined, InvalidRequest, PayfallbackError
from payfallback.models import Money
from payfallback.provider import (
    Approved,
    Cancelled,
    Failed,
    Operation,
    Outcome,
    Redirect,
    Status,
    TxnState,
)
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed, forms

OPERATIONS = ("approve", "lookup", "cancel")

#: The answer each operation succeeds with, and the fields that must stay as Naver sent
#: them for the success path to be reached (every other string is echoed).
SUCCESS: dict[str, tuple[str, type[object], frozenset[str]]] = {
    "approve": (
        "apply_success",
        Approved,
        frozenset({"code", "paymentId", "merchantPayKey", "admissionState"}),
    ),
    "lookup": (
        "history_paid",
        Status,
        frozenset({"code", "paymentId", "merchantPayKey", "admissionState", "admissionTypeCode"}),
    ),
    "cancel": ("cancel_partial", Cancelled, frozenset({"code", "paymentId"})),
}

#: Error answers, each as Naver (or its gateway) shapes it: a documented code of the API
#: with its message, a code nobody documented, maintenance, and the gateway's 401 body.
ERRORS: dict[str, tuple[dict[str, Any], ...]] = {
    "approve": (
        {"code": "NotEnoughAccountBalance", "message": "잔액 부족", "body": None},
        {"code": "InvalidMerchant", "message": "가맹점 인증 실패", "body": None},
        {"code": "AlreadyOnGoing", "message": "진행 중", "body": None},
    ),
    "lookup": (
        {"code": "Fail", "message": "조회 실패", "body": None},
        {"code": "InvalidParameter", "message": "파라미터 오류", "body": None},
    ),
    "cancel": (
        {"code": "RestAmountDiff", "message": "잔여 금액 불일치", "body": None},
        {"code": "CancelNotComplete", "message": "취소 미완료", "body": None},
        {"code": "TaxScopeAmountError", "message": "과세 금액 오류", "body": None},
    ),
}
COMMON_ERRORS: tuple[dict[str, Any], ...] = (
    {"code": "SomethingNaverAddsLater", "message": "새 코드", "body": None},
    payload("maintenance"),
    payload("gateway_401"),
)
STATUSES = (200, 400, 401, 409, 500, 503)


@dataclasses.dataclass
class Case:
    provider: NaverPay
    request: httpx.Request
    parse: Callable[[httpx.Response], Outcome]


def _cases(provider: NaverPay) -> dict[str, Case]:
    approve = approve_request()
    lookup = lookup_request()
    cancel = cancel_request(3000, remaining=12000, tax_free=1000)
    p = provider
    return {
        "approve": Case(p, p.build_approve(approve), lambda r: p.parse_approve(approve, r)),
        "lookup": Case(p, p.build_lookup(lookup), lambda r: p.parse_lookup(lookup, r)),
        "cancel": Case(p, p.build_cancel(cancel), lambda r: p.parse_cancel(cancel, r)),
    }


@pytest.fixture
def cases(provider: NaverPay) -> dict[str, Case]:
    return _cases(provider)


def _echo(case: Case) -> str:
    """The client secret, and the request itself (headers and body) pasted back, in the
    forms a server may echo them in."""
    return echo_text(SECRET, case.request)


def _assert_clean(outcome: Outcome | PayfallbackError, provider: NaverPay) -> None:
    assert_no_secret(outcome, (SECRET,), declared=provider.secrets)


# -- the adapter declares its secrets -----------------------------------------------------------


def test_the_client_secret_and_its_header_value_are_declared(cases: dict[str, Case]) -> None:
    for name, case in cases.items():
        secrets = case.provider.secrets
        assert case.provider.kit.secrets is secrets
        op = {"approve": Operation.APPROVE, "lookup": Operation.LOOKUP}.get(name, Operation.CANCEL)
        assert case.provider.kit_for(op).secrets is secrets
        assert secrets.contains(case.request.headers["X-Naver-Client-Secret"])
        assert secrets.contains(SECRET)
        assert SECRET not in repr(secrets)


def test_ids_that_are_not_secret_stay_readable(provider: NaverPay) -> None:
    secrets = provider.secrets
    for value in (CLIENT_ID, CHAIN_ID, IDEMPOTENCY_KEY, PAYMENT_ID):
        assert not secrets.contains(value), value


# -- success shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_that_echoes_secrets_in_every_other_field_hands_none_back(
    cases: dict[str, Case], op: str
) -> None:
    name, expected, keep = SUCCESS[op]
    case = cases[op]
    data = echoed(payload(name), _echo(case), keep)
    outcome = case.parse(httpx.Response(200, json=data))
    assert isinstance(outcome, expected), outcome
    _assert_clean(outcome, case.provider)


@pytest.mark.parametrize("status", [200, 409])
@pytest.mark.parametrize("keep", [frozenset({"code"}), frozenset()], ids=["code-kept", "all"])
@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_shape_echoed_everywhere_fails_without_a_secret(
    cases: dict[str, Case], op: str, keep: frozenset[str], status: int
) -> None:
    name, _, _ = SUCCESS[op]
    case = cases[op]
    data = echoed(payload(name), _echo(case), keep)
    outcome = case.parse(httpx.Response(status, json=data))
    # No id, key or state survived the echo: nothing is approved, cancelled or decided
    # (history rows of another paymentId are ignored, leaving the inquiry in progress).
    if isinstance(outcome, Status):
        assert outcome.state is TxnState.IN_PROGRESS
    else:
        assert isinstance(outcome, Failed), outcome
    _assert_clean(outcome, case.provider)


def test_an_approval_for_another_checkout_named_by_an_echoed_key_is_scrubbed(
    cases: dict[str, Case],
) -> None:
    case = cases["approve"]
    data = payload("apply_success")
    data["body"]["detail"]["merchantPayKey"] = _echo(case)
    outcome = case.parse(httpx.Response(200, json=data))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, InvalidRequest)  # another checkout's, and quoted clean
    _assert_clean(outcome, case.provider)


# -- error shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("keep", [frozenset({"code"}), frozenset()], ids=["code-kept", "all"])
@pytest.mark.parametrize("op", OPERATIONS)
def test_every_error_shape_echoing_secrets_hands_none_back(
    cases: dict[str, Case], op: str, keep: frozenset[str], status: int
) -> None:
    case = cases[op]
    echo = _echo(case)
    for shape in (*ERRORS[op], *COMMON_ERRORS):
        outcome = case.parse(httpx.Response(status, json=echoed(shape, echo, keep)))
        assert isinstance(outcome, Failed), (shape, outcome)
        _assert_clean(outcome, case.provider)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("op", OPERATIONS)
def test_a_body_that_is_not_json_echoing_secrets_hands_none_back(
    cases: dict[str, Case], op: str, status: int
) -> None:
    case = cases[op]
    outcome = case.parse(httpx.Response(status, text=_echo(case)))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.provider)


# -- ready and the return URL --------------------------------------------------------------------


def test_ready_hands_the_browser_no_secret(provider: NaverPay) -> None:
    outcome = provider.parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    _assert_clean(outcome, provider)
    assert SECRET not in json.dumps(dict(outcome.client_params), ensure_ascii=False)
    usd = make_order().model_copy(update={"amount": Money(amount=1000, currency="USD")})
    refused = provider.parse_ready(ready_request(usd), None)
    assert isinstance(refused, Failed)
    _assert_clean(refused, provider)


def test_a_return_url_message_echoing_the_secret_is_scrubbed(provider: NaverPay) -> None:
    echo = " | ".join(forms(SECRET))
    with pytest.raises(Declined) as info:
        provider.build_approve(approve_request({"resultCode": "UserCancel", "resultMessage": echo}))
    _assert_clean(info.value, provider)
    with pytest.raises(Declined) as unknown_code:
        provider.build_approve(approve_request({"resultCode": SECRET}))
    _assert_clean(unknown_code.value, provider)


def test_errors_of_an_adapter_with_another_secret_scrub_that_one() -> None:
    other = "another-client-secret-9c1d"
    adapter = make_provider(client_secret=other)
    case = _cases(adapter)["cancel"]
    body = {"code": "RestAmountDiff", "message": f"echo {other}", "body": None}
    outcome = case.parse(httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert_no_secret(outcome, (other,), declared=adapter.secrets)
    assert adapter.secrets.contains(other)
    assert not adapter.secrets.contains(SECRET)
