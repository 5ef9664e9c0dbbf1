"""No secret comes back out: NICEPAY answers that echo every secret we sent, in every
string field, on every operation, on the success shape and on each error shape.

The secrets: the secret key, the ``Authorization: Basic`` value built with it and its
base64 credentials alone (the adapter's own :attr:`Nicepay.secrets`; the client key is
public — the JS SDK's clientId — and is not one),
and the request secrets the adapter has in hand while it parses — the billing key
(``bid``) of a charge, the ``authToken`` and ``signature`` of the return callback of an
approve. NICEPAY echoes request fields back in its answers (``resultMsg`` of a partner's
refusal, ``mallReserved``, ``goodsName`` …), so every string field is tried. The ``tid``
is not a secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from nicepay_support import (
    AUTH_TOKEN,
    BID,
    CLIENT_KEY,
    SECRET,
    TID,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    provider,
    ready_request,
    void_request,
)
from payfallback_nicepay import Nicepay
from payfallback_nicepay._wire import response_signature

from payfallback import Router
from payfallback.adapter import basic_auth
from payfallback.errors import Declined, InvalidRequest, PayfallbackError
from payfallback.models import Instrument, Method, Money, Order
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    Failed,
    Outcome,
    Redirect,
    Status,
)
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed, forms

AUTHORIZATION = basic_auth(CLIENT_KEY, SECRET)
CREDENTIALS = AUTHORIZATION.removeprefix("Basic ")
CALLBACK = callback()
CALLBACK_SIGNATURE = CALLBACK["signature"]
OWN = (SECRET, AUTHORIZATION, CREDENTIALS)
EVERY_SECRET = (*OWN, BID, AUTH_TOKEN, CALLBACK_SIGNATURE)

OPERATIONS = ("approve", "charge", "lookup", "lookup_by_order_id", "cancel", "void")

#: The answer each operation succeeds with, and the fields that must stay as NICEPAY sent
#: them for the success path to be reached (everything else is echoed): the result code,
#: the ids the adapter checks, the status, and what the signature is computed over.
_SIGNED = frozenset({"resultCode", "tid", "status", "signature", "ediDate", "orderId", "currency"})
SUCCESS: dict[str, tuple[str, type[object], frozenset[str]]] = {
    "approve": ("approve_paid.json", Approved, _SIGNED),
    "charge": ("billing_paid.json", Approved, _SIGNED),
    "lookup": ("lookup_paid.json", Status, _SIGNED),
    "lookup_by_order_id": ("lookup_paid.json", Status, _SIGNED),
    "cancel": ("cancel_partial.json", Cancelled, _SIGNED | {"cancelledTid"}),
    "void": ("netcancel.json", Cancelled, _SIGNED),
}

#: NICEPAY's error shapes: the short ``{resultCode, resultMsg}`` body of each verdict, with
#: the HTTP status NICEPAY answers it with, and the payment object of a failed approval.
ERRORS: tuple[tuple[dict[str, Any], int], ...] = (
    ({"resultCode": "3011", "resultMsg": "카드번호 오류"}, 200),  # declined
    ({"resultCode": "A110", "resultMsg": "외부 연동결과 실패"}, 200),  # a partner's text
    ({"resultCode": "A127", "resultMsg": "주문번호 중복 오류"}, 200),  # duplicate
    ({"resultCode": "A299", "resultMsg": "API 지연처리"}, 200),  # unknown
    ({"resultCode": "A246", "resultMsg": "비정상 과다접속"}, 200),  # unavailable
    ({"resultCode": "A118", "resultMsg": "조회 결과데이터 없음"}, 200),  # not found
    ({"resultCode": "2020", "resultMsg": "망상 취소 허용시간 초과"}, 200),  # invalid
    ({"resultCode": "U304", "resultMsg": "BASIC AUTHENTICATION 실패"}, 401),  # configuration
    ({"resultCode": "ZZ99", "resultMsg": "새로운 오류"}, 200),  # undocumented
    ({"resultCode": "0000", "resultMsg": "정상 처리되었습니다."}, 500),  # success code, 5xx
    (load("approve_declined.json"), 200),  # the payment object of a failed approval
)
CODE_FIELDS = frozenset({"resultCode"})


@dataclasses.dataclass
class Case:
    provider: Nicepay
    request: httpx.Request
    parse: Callable[[httpx.Response], Outcome]
    #: Values that must not appear anywhere in what the parse hands back.
    forbidden: tuple[str, ...]


@pytest.fixture
def nicepay() -> Nicepay:
    return provider()


@pytest.fixture
def cases(nicepay: Nicepay) -> dict[str, Case]:
    p = nicepay
    approve, charge = approve_request(CALLBACK), charge_request()
    lookup, by_order_id = lookup_request(), lookup_request(tid=None)
    cancel, void = cancel_request(amount=5000), void_request(tid=TID)
    return {
        "approve": Case(
            p,
            p.build_approve(approve),
            lambda r: p.parse_approve(approve, r),
            (*OWN, AUTH_TOKEN, CALLBACK_SIGNATURE),
        ),
        "charge": Case(p, p.build_charge(charge), lambda r: p.parse_charge(charge, r), (*OWN, BID)),
        "lookup": Case(p, p.build_lookup(lookup), lambda r: p.parse_lookup(lookup, r), OWN),
        "lookup_by_order_id": Case(
            p, p.build_lookup(by_order_id), lambda r: p.parse_lookup(by_order_id, r), OWN
        ),
        "cancel": Case(p, p.build_cancel(cancel), lambda r: p.parse_cancel(cancel, r), OWN),
        "void": Case(p, p.build_void(void), lambda r: p.parse_void(void, r), OWN),
    }


def _echo(case: Case) -> str:
    """Every secret we know of, and the request itself (its URL carries the bid of a
    charge), in the forms a server may echo them in."""
    return echo_text(*EVERY_SECRET, case.request)


def _assert_clean(outcome: Outcome, case: Case) -> None:
    assert_no_secret(outcome, case.forbidden, declared=case.provider.secrets)


# -- the adapter declares its secrets -----------------------------------------------------------


def test_own_secrets_and_auth_header_values_are_declared(cases: dict[str, Case]) -> None:
    for case in cases.values():
        secrets = case.provider.secrets
        assert case.provider.kit.secrets is secrets
        assert case.request.headers["authorization"] == AUTHORIZATION
        for value in OWN:
            assert secrets.contains(value)
        assert SECRET not in repr(secrets)
        # The tid and our attempt id are not secrets: they must stay readable.
        assert not secrets.contains(TID)
        assert not secrets.contains("ORD-1001_1")


def test_the_provider_object_shows_no_secret(nicepay: Nicepay) -> None:
    assert_no_secret((repr(nicepay), str(vars(nicepay))), (SECRET, AUTHORIZATION, CREDENTIALS))


# -- success shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_echoing_secrets_keeps_them_out_of_the_outcome(
    cases: dict[str, Case], op: str
) -> None:
    case = cases[op]
    name, success, keep = SUCCESS[op]
    body = echoed(load(name), _echo(case), keep)
    outcome = case.parse(httpx.Response(200, json=body))
    assert isinstance(outcome, success), outcome
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_with_secrets_in_every_field_is_never_taken_as_it_is(
    cases: dict[str, Case], op: str
) -> None:
    # resultCode, tid, status and orderId echoed too: the answer cannot be used.
    case = cases[op]
    name, _, _ = SUCCESS[op]
    body = echoed(load(name), _echo(case), frozenset())
    outcome = case.parse(httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", ["charge", "lookup_by_order_id", "void"])
def test_a_signed_success_whose_tid_is_a_secret_is_not_taken(
    cases: dict[str, Case], op: str
) -> None:
    # The tid would become the payment's id, in the journal and the events: an answer
    # naming one of our secrets as its tid is not used, even with a valid signature.
    case = cases[op]
    name, _, _ = SUCCESS[op]
    for secret in case.forbidden:
        body = load(name, tid=secret)
        body["signature"] = response_signature(
            tid=secret, amount=body["amount"], edi_date=body["ediDate"], secret_key=SECRET
        )
        outcome = case.parse(httpx.Response(200, json=body))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


@pytest.mark.parametrize("op", ["approve", "charge", "cancel", "void", "lookup"])
def test_an_undocumented_status_made_of_a_secret_is_masked(cases: dict[str, Case], op: str) -> None:
    case = cases[op]
    name, _, _ = SUCCESS[op]
    for secret in case.forbidden:
        outcome = case.parse(httpx.Response(200, json=load(name, status=secret)))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


@pytest.mark.parametrize("op", ["approve", "charge", "cancel"])
def test_an_unusable_currency_made_of_a_secret_is_masked(cases: dict[str, Case], op: str) -> None:
    case = cases[op]
    name, _, _ = SUCCESS[op]
    for secret in case.forbidden:
        outcome = case.parse(httpx.Response(200, json=load(name, currency=secret)))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


# -- error shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize(("body", "status"), ERRORS)
@pytest.mark.parametrize("codes", ["kept", "echoed"])
def test_an_error_answer_echoing_secrets_keeps_them_out_of_the_error(
    cases: dict[str, Case], op: str, body: dict[str, Any], status: int, codes: str
) -> None:
    case = cases[op]
    keep = CODE_FIELDS if codes == "kept" else frozenset()
    answer = echoed(body, _echo(case), keep)
    outcome = case.parse(httpx.Response(status, json=answer))
    if codes == "kept" and body["resultCode"] == "A118" and op.startswith("lookup"):
        assert isinstance(outcome, Status)  # "not found" is an answer, not an error
    else:
        assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 500, 502, 503])
def test_a_non_json_page_echoing_secrets_keeps_them_out(
    cases: dict[str, Case], op: str, status: int
) -> None:
    case = cases[op]
    outcome = case.parse(httpx.Response(status, text=f"<html>{_echo(case)}</html>"))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_code_made_of_a_secret_is_masked(cases: dict[str, Case], op: str) -> None:
    # The code itself travels into provider_code; it passes through the kit's cleaner.
    case = cases[op]
    for secret in case.forbidden:
        for status in (200, 400):
            body = {"resultCode": secret, "resultMsg": secret, "mallReserved": secret}
            outcome = case.parse(httpx.Response(status, json=body))
            assert isinstance(outcome, Failed)
            _assert_clean(outcome, case)


# -- the return callback and requests refused before sending ------------------------------------


def test_a_failed_authentication_echoing_secrets_is_declined_cleanly(nicepay: Nicepay) -> None:
    text = "인증 실패 " + " ".join(f for v in EVERY_SECRET for f in forms(v))
    for code in ("I002", text):
        params = {**CALLBACK, "authResultCode": code, "authResultMsg": text}
        with pytest.raises(Declined) as caught:
            nicepay.build_approve(approve_request(params))
        assert_no_secret(
            caught.value, (*OWN, AUTH_TOKEN, CALLBACK_SIGNATURE), declared=nicepay.secrets
        )


@pytest.mark.parametrize("field", ["orderId", "amount", "tid", "signature"])
def test_a_callback_with_secrets_in_its_fields_is_refused_cleanly(
    nicepay: Nicepay, field: str
) -> None:
    for secret in EVERY_SECRET:
        if secret == CALLBACK[field]:
            continue  # the callback as NICEPAY sent it
        params = {**CALLBACK, field: secret}
        if field == "tid":
            # A tid made of a secret passes the callback check (the signature does not
            # cover it); NICEPAY's answer naming another tid is then not taken.
            req = approve_request(params)
            outcome = nicepay.parse_approve(
                req, httpx.Response(200, json=load("approve_paid.json"))
            )
            assert isinstance(outcome, Failed)
            assert_no_secret(outcome, EVERY_SECRET, declared=nicepay.secrets)
            continue
        with pytest.raises(PayfallbackError) as caught:
            nicepay.build_approve(approve_request(params))
        assert_no_secret(caught.value, EVERY_SECRET, declared=nicepay.secrets)


def test_refusals_before_sending_never_quote_request_secrets(nicepay: Nicepay) -> None:
    charge = charge_request()
    usd = Order(order_id="SUB-2001", amount=Money(amount=100, currency="USD"), name="x")
    refusals: list[Callable[[], object]] = [
        lambda: nicepay.build_charge(charge_request(instrument_provider="kakaopay")),
        lambda: nicepay.build_charge(
            dataclasses.replace(
                charge,
                instrument=Instrument(
                    provider="nicepay",
                    billing_key=charge.instrument.billing_key,
                    method=Method.KAKAOPAY,
                ),
            )
        ),
        lambda: nicepay.build_charge(dataclasses.replace(charge, order=usd)),
        lambda: nicepay.build_charge(dataclasses.replace(charge, attempt_id="x" * 65)),
        lambda: nicepay.build_approve(
            ApproveRequest(
                attempt_id="ORD-1001_1",
                order=usd,
                method=Method.CARD,
                provider_txn_id=None,
                callback_params=CALLBACK,
                idempotency_key="k",
            )
        ),
        lambda: nicepay.build_lookup(lookup_request(tid=None, attempted_at=None)),
        lambda: nicepay.build_cancel(cancel_request(refund_id=BID * 3)),
    ]
    for refuse in refusals:
        with pytest.raises(InvalidRequest) as caught:
            refuse()
        assert_no_secret(caught.value, (*EVERY_SECRET, BID * 3), declared=nicepay.secrets)


def test_ready_hands_the_client_key_only_to_the_payment_window(nicepay: Nicepay) -> None:
    # The JS SDK needs the client key as clientId; nothing else of a Redirect carries a
    # secret, and a refused ready quotes none.
    outcome = nicepay.parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    params = dict(outcome.client_params)
    assert params.pop("clientId") == CLIENT_KEY
    rest = repr(dataclasses.replace(outcome, client_params=params))
    assert_no_secret(rest, OWN, declared=nicepay.secrets)
    refused = nicepay.parse_ready(ready_request(Method.TOSSPAY), None)
    assert isinstance(refused, Failed)
    assert_no_secret(refused, OWN, declared=nicepay.secrets)


def test_a_charge_request_is_never_sent_to_the_wrong_host(nicepay: Nicepay) -> None:
    # The bid travels in the URL path; the request goes to NICEPAY's API host only.
    request = nicepay.build_charge(charge_request())
    assert request.url.host == "api.nicepay.co.kr"
    assert request.url.scheme == "https"
    assert BID in request.url.path


# -- what the Router keeps ---------------------------------------------------------------------


def test_the_answer_the_router_keeps_with_the_payment_holds_no_secret(
    nicepay: Nicepay, tmp_path: Path
) -> None:
    # A billing charge answered with every secret (the bid of the request included) echoed
    # into each string field the adapter does not check: the payment's kept answer and its
    # receipt carry none of them, while the receipt fields NICEPAY sent as they are remain.
    charge = charge_request()

    def billing(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        body = echoed(
            load("billing_paid.json", orderId=sent["orderId"]),
            echo_text(*EVERY_SECRET, request),
            _SIGNED | {"approveNo", "cardNum", "cardType", "cardName"},
        )
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(billing))
    router = Router(
        [nicepay],
        client=client,
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        sleep=lambda _: None,
    )
    try:
        paid = router.charge(charge.order, [charge.instrument])
    finally:
        router.close()
        client.close()
    assert paid.receipt is not None
    assert paid.receipt.approval_number == "30012345"
    assert paid.receipt.issuer == "삼성"
    assert paid.provider_answer is not None
    assert paid.provider_answer["approveNo"] == "30012345"
    assert_no_secret(
        (paid.model_dump_json(), json.dumps(paid.provider_answer, ensure_ascii=False)),
        (*OWN, BID),
        declared=nicepay.secrets,
    )
