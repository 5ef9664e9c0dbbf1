"""No secret comes back out: KG Inicis answers that echo every secret we sent, in every
string field and in a request-id header, on every operation, on the success shape and on
each error shape.

The secrets: the INIAPI key and the web signKey (the adapter's own :attr:`Inicis.secrets`),
and the request secrets the adapter has in hand while it parses — a charge's billing key
(``billKey``) and the return POST's ``authToken``. The ``tid`` is not a secret; the window's
``mKey``, ``signature`` and ``verification`` are hashes Inicis sends to the browser by design.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from inicis_support import (
    BILL_KEY,
    INIAPI_KEY,
    SIGN_KEY,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    provider,
    ready_request,
    signed_approval,
)

from payfallback.errors import Declined, InvalidRequest, PayfallbackError
from payfallback.provider import Approved, Cancelled, Failed, Outcome, Redirect, Status
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed, header_text

INICIS = provider()
AUTH_TOKEN = callback()["authToken"]
OWN = (INIAPI_KEY, SIGN_KEY)
EVERY_SECRET = (*OWN, BILL_KEY, AUTH_TOKEN)
#: The secrets each parser has in hand: the adapter's own, and its request's.
IN_HAND: dict[str, tuple[str, ...]] = {
    "charge": (*OWN, BILL_KEY),
    "lookup": OWN,
    "cancel": OWN,
    "net_cancel": (*OWN, AUTH_TOKEN),
    "approve": (*OWN, AUTH_TOKEN),
}

Parse = Callable[[httpx.Response], Outcome]


def _approve(body_of: Callable[[httpx.Request], dict[str, Any]]) -> Outcome:
    req = approve_request()
    request = INICIS.build_approve(req)
    request.read()
    echo = echo_text(*IN_HAND["approve"], request)
    response = httpx.Response(
        200, json=body_of(request), headers={"x-request-id": header_text(echo)}, request=request
    )
    return INICIS.parse_approve(req, response)


REQUESTS: dict[str, Callable[[], httpx.Request]] = {
    "charge": lambda: INICIS.build_charge(charge_request()),
    "lookup": lambda: INICIS.build_lookup(lookup_request()),
    "cancel": lambda: INICIS.build_cancel(cancel_request(2000, 12000)),
    "net_cancel": lambda: INICIS.build_net_cancel(approve_request()),
}


def echo_for(op: str) -> str:
    """Every secret the parser has in hand, and the request it answers, in every form."""
    return echo_text(*IN_HAND[op], REQUESTS[op]())


PARSERS: dict[str, Parse] = {
    "charge": lambda r: INICIS.parse_charge(charge_request(), r),
    "lookup": lambda r: INICIS.parse_lookup(lookup_request(), r),
    "cancel": lambda r: INICIS.parse_cancel(cancel_request(2000, 12000), r),
    "net_cancel": lambda r: INICIS.parse_net_cancel(approve_request(), r),
}

SUCCESS: dict[str, tuple[str, type[object], frozenset[str]]] = {
    "charge": ("billing_paid.json", Approved, frozenset({"resultCode", "tid", "price"})),
    "lookup": (
        "inquiry_paid.json",
        Status,
        frozenset({"resultCode", "tid", "oid", "price", "status"}),
    ),
    "cancel": (
        "refund_partial.json",
        Cancelled,
        frozenset({"resultCode", "prtcPrice", "prtcRemains"}),
    ),
    "net_cancel": ("net_cancel.json", Cancelled, frozenset({"resultCode", "tid"})),
}

ERRORS: tuple[tuple[dict[str, Any], int], ...] = (
    ({"resultCode": "01", "resultMsg": "실패"}, 200),
    (load("billing_refused.json"), 200),
    (load("approve_failed.json"), 200),
    ({"resultCode": "00", "resultMsg": "정상처리되었습니다."}, 500),
    ({"resultCode": "ER0102", "resultMsg": "파라미터 값 오류"}, 400),
    ({"resultCode": "01", "resultMsg": "인증 실패"}, 403),
)


@pytest.mark.parametrize("op", sorted(SUCCESS))
def test_a_success_answer_echoing_every_secret_keeps_them_out(op: str) -> None:
    name, kind, keep = SUCCESS[op]
    echo = echo_for(op)
    response = httpx.Response(
        200, json=echoed(load(name), echo, keep), headers={"x-request-id": header_text(echo)}
    )
    outcome = PARSERS[op](response)
    assert isinstance(outcome, kind), outcome
    assert_no_secret(outcome, IN_HAND[op], declared=INICIS.secrets)


@pytest.mark.parametrize("op", sorted(PARSERS))
@pytest.mark.parametrize(("body", "status"), ERRORS)
def test_an_error_answer_echoing_every_secret_keeps_them_out(
    op: str, body: dict[str, Any], status: int
) -> None:
    echo = echo_for(op)
    response = httpx.Response(
        status,
        json=echoed(body, echo, {"resultCode"}),
        headers={"x-request-id": header_text(echo)},
    )
    outcome = PARSERS[op](response)
    assert isinstance(outcome, Failed)
    assert_no_secret(outcome, IN_HAND[op], declared=INICIS.secrets)


@pytest.mark.parametrize("op", sorted(SUCCESS))
def test_a_success_answer_whose_ids_are_the_echo_is_not_used(op: str) -> None:
    name, _, keep = SUCCESS[op]
    echo = echo_for(op)
    body = echoed(load(name), echo, keep - {"tid", "oid"})
    outcome = PARSERS[op](httpx.Response(200, json=body))
    assert_no_secret(outcome, IN_HAND[op], declared=INICIS.secrets)


def test_an_approval_answer_echoing_every_secret_keeps_them_out() -> None:
    def body(request: httpx.Request) -> dict[str, Any]:
        signed = signed_approval(request)
        keep = {"resultCode", "tid", "MOID", "TotPrice", "authSignature"}
        out: dict[str, Any] = echoed(signed, echo_text(*IN_HAND["approve"], request), keep)
        return out

    outcome = _approve(body)
    assert isinstance(outcome, Approved)
    assert_no_secret(outcome, IN_HAND["approve"], declared=INICIS.secrets)


@pytest.mark.parametrize(("error", "status"), ERRORS)
def test_an_approval_error_echoing_every_secret_keeps_them_out(
    error: dict[str, Any], status: int
) -> None:
    req = approve_request()
    request = INICIS.build_approve(req)
    request.read()
    echo = echo_text(*IN_HAND["approve"], request)
    response = httpx.Response(
        status,
        json=echoed(error, echo, {"resultCode"}),
        headers={"x-request-id": header_text(echo)},
        request=request,
    )
    outcome = INICIS.parse_approve(req, response)
    assert isinstance(outcome, Failed)
    assert_no_secret(outcome, IN_HAND["approve"], declared=INICIS.secrets)


def test_a_failed_authentication_echoing_secrets_keeps_them_out() -> None:
    params = callback(resultCode="V013", resultMsg=echo_text(*IN_HAND["approve"]))
    with pytest.raises(Declined) as caught:
        INICIS.build_approve(approve_request(params))
    assert_no_secret(caught.value, IN_HAND["approve"], declared=INICIS.secrets)


def test_a_forged_auth_url_carrying_secrets_is_refused_without_quoting_it() -> None:
    forged = f"https://evil.example/steal?token={AUTH_TOKEN}&key={INIAPI_KEY}"
    with pytest.raises(InvalidRequest) as caught:
        INICIS.build_approve(approve_request(callback(authUrl=forged)))
    assert_no_secret(caught.value, EVERY_SECRET, declared=INICIS.secrets)


def test_build_errors_name_no_secret() -> None:
    errors: list[PayfallbackError] = []
    with pytest.raises(PayfallbackError) as charge:
        provider(buyer_tel=None).build_charge(charge_request())
    errors.append(charge.value)
    with pytest.raises(PayfallbackError) as cancel:
        INICIS.build_cancel(cancel_request(99999, 12000))
    errors.append(cancel.value)
    for error in errors:
        assert_no_secret(error, EVERY_SECRET, declared=INICIS.secrets)


def test_the_window_form_carries_no_secret() -> None:
    outcome = INICIS.parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    assert_no_secret(outcome, (INIAPI_KEY, SIGN_KEY), declared=INICIS.secrets)


def test_the_declared_secrets_are_the_keys() -> None:
    assert INICIS.secrets.contains(INIAPI_KEY)
    assert INICIS.secrets.contains(SIGN_KEY)
