"""The wire format, pinned with respx on Inicis's real hosts: what each build_ sends, field
by field, and what each documented answer parses into."""

from __future__ import annotations

import dataclasses
import hashlib

import httpx
import pytest
import respx
from inicis_support import (
    API_TIMESTAMP,
    ATTEMPT,
    BILL_KEY,
    BILLING_ATTEMPT,
    BILLING_TID,
    CLIENT_IP,
    INIAPI_KEY,
    MID,
    MILLIS,
    SIGN_KEY,
    SITE_URL,
    TID,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    form_of,
    load,
    lookup_request,
    provider,
    ready_request,
    signed_approval,
)
from payfallback_inicis import KST, Inicis

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    ProviderUnavailable,
)
from payfallback.models import Method, Money
from payfallback.provider import (
    Approved,
    Cancelled,
    Failed,
    Flow,
    Outcome,
    Proof,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
)

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sha512(text: str) -> str:
    return hashlib.sha512(text.encode()).hexdigest()


# -- ready ------------------------------------------------------------------------------------


def test_ready_returns_the_window_form_signed_as_inicis_documents(inicis: Inicis) -> None:
    req = ready_request()
    assert inicis.build_ready(req) is None
    outcome = inicis.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    p = outcome.client_params
    assert p["sdkUrl"] == "https://stdpay.inicis.com/stdjs/INIStdPay.js"
    assert p["mid"] == MID
    assert p["oid"] == ATTEMPT
    assert p["price"] == "12000"
    assert p["timestamp"] == MILLIS
    assert p["gopaymethod"] == "Card"
    assert p["signature"] == sha256(f"oid={ATTEMPT}&price=12000&timestamp={MILLIS}")
    assert p["verification"] == sha256(
        f"oid={ATTEMPT}&price=12000&signKey={SIGN_KEY}&timestamp={MILLIS}"
    )
    assert p["mKey"] == sha256(SIGN_KEY)
    assert p["use_chkfake"] == "Y"
    assert p["currency"] == "WON"
    assert "centerCd(Y)" in p["acceptmethod"].split(":")
    assert p["returnUrl"] == "https://shop.example/pay/inicis/return"
    assert p["closeUrl"] == "https://shop.example/pay/inicis/close"
    assert SIGN_KEY not in str(p)


@pytest.mark.parametrize(
    ("method", "gopaymethod"),
    [
        (Method.KAKAOPAY, "onlykakaopay"),
        (Method.NAVERPAY, "onlynaverpay"),
        (Method.PAYCO, "onlypayco"),
        (Method.SAMSUNGPAY, "onlyssp"),
    ],
)
def test_wallets_inicis_fronts_open_alone_in_the_window(
    inicis: Inicis, method: Method, gopaymethod: str
) -> None:
    outcome = inicis.parse_ready(ready_request(method), None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["gopaymethod"] == gopaymethod
    assert "cardonly" in outcome.client_params["acceptmethod"].split(":")


def test_bank_transfer_is_not_offered_as_its_refund_needs_another_paymethod(
    inicis: Inicis,
) -> None:
    assert Method.BANK_TRANSFER not in inicis.capabilities.methods
    outcome = inicis.parse_ready(ready_request(Method.BANK_TRANSFER), None)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, InvalidRequest)


def test_without_a_sign_key_only_billing_is_offered() -> None:
    billing_only = provider(sign_key=None)
    assert billing_only.capabilities.flows == frozenset({Flow.SERVER_CHARGE})
    assert billing_only.capabilities.methods == frozenset({Method.CARD})
    outcome = billing_only.parse_ready(ready_request(), None)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ConfigurationError)


def test_an_oid_longer_than_inicis_takes_is_refused_before_sending(inicis: Inicis) -> None:
    req = ready_request()
    long = type(req)(
        attempt_id="O" * 41,
        order=req.order,
        method=req.method,
        return_urls=req.return_urls,
        idempotency_key="k",
    )
    outcome = inicis.parse_ready(long, None)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, InvalidRequest)


# -- approve ----------------------------------------------------------------------------------


def test_approve_posts_the_documented_form_to_the_checked_auth_url(inicis: Inicis) -> None:
    req = approve_request()
    token = req.callback_params["authToken"]
    with (
        respx.mock(base_url="https://fcstdpay.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/payAuth").mock(
            side_effect=lambda r: httpx.Response(200, json=signed_approval(r))
        )
        outcome = inicis.parse_approve(req, client.send(inicis.build_approve(req)))
    sent = route.calls.last.request
    assert sent.headers["content-type"] == FORM
    assert form_of(sent) == {
        "mid": MID,
        "authToken": token,
        "timestamp": MILLIS,
        "signature": sha256(f"authToken={token}&timestamp={MILLIS}"),
        "verification": sha256(f"authToken={token}&signKey={SIGN_KEY}&timestamp={MILLIS}"),
        "charset": "UTF-8",
        "format": "JSON",
    }
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == TID
    assert outcome.amount == Money(amount=12000)
    assert outcome.approved_at is not None
    assert outcome.approved_at.astimezone(KST).strftime("%Y%m%d%H%M%S") == "20221015153001"


@pytest.mark.parametrize(
    "changes",
    [
        {"authUrl": "https://evil.example/api/payAuth"},
        {"authUrl": "https://ksstdpay.inicis.com/api/payAuth"},  # not the idc_name's host
        {"authUrl": "http://fcstdpay.inicis.com/api/payAuth"},
        {"authUrl": "https://fcstdpay.inicis.com:8443/api/payAuth"},
        {"authUrl": "https://fcstdpay.inicis.com@evil.example/api/payAuth"},
        {"authUrl": "https://fcstdpay.inicis.com/api/payAuth?next=https://evil.example"},
        {"authUrl": "https://fcstdpay.inicis.com/other"},
        {"idc_name": "xx"},
        {"idc_name": "<drop>"},
        {"netCancelUrl": "https://evil.example/api/netCancel"},
        {"mid": "OTHERMID01"},
        {"orderNumber": "ORD-9999_1"},
        {"authToken": ""},
    ],
)
def test_a_forged_or_foreign_return_is_refused_and_nothing_is_sent(
    inicis: Inicis, changes: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inicis.build_approve(approve_request(callback(**changes)))
    assert "evil.example" not in str(caught.value)


def test_each_idc_names_its_own_host(inicis: Inicis) -> None:
    for idc in ("fc", "ks", "stg"):
        host = f"https://{idc}stdpay.inicis.com"
        req = approve_request(
            callback(
                idc_name=idc, authUrl=f"{host}/api/payAuth", netCancelUrl=f"{host}/api/netCancel"
            )
        )
        assert str(inicis.build_approve(req).url) == f"{host}/api/payAuth"


def test_a_failed_authentication_is_a_decline_and_nothing_is_sent(inicis: Inicis) -> None:
    req = approve_request(callback(resultCode="V013", resultMsg="사용자가 결제를 취소하였습니다"))
    with pytest.raises(Declined) as caught:
        inicis.build_approve(req)
    assert caught.value.provider_code == "V013"


def _approve_with(
    inicis: Inicis, answer: httpx.Response | None = None, **changes: object
) -> Outcome:
    req = approve_request()
    request = inicis.build_approve(req)
    request.read()
    if answer is None:
        answer = httpx.Response(200, json=signed_approval(request, **changes), request=request)
    else:
        answer.request = request
    return inicis.parse_approve(req, answer)


def test_an_auth_signature_that_does_not_verify_is_unknown(inicis: Inicis) -> None:
    req = approve_request()
    request = inicis.build_approve(req)
    body = signed_approval(request)
    body["authSignature"] = "0" * 64
    outcome = inicis.parse_approve(req, httpx.Response(200, json=body, request=request))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_price_changed_after_signing_is_unknown(inicis: Inicis) -> None:
    req = approve_request()
    request = inicis.build_approve(req)
    body = signed_approval(request)
    body["TotPrice"] = "1000"  # the signature was over 12000
    outcome = inicis.parse_approve(req, httpx.Response(200, json=body, request=request))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


@pytest.mark.parametrize("changes", [{"tid": None}, {"MOID": "ORD-9999_1"}, {"TotPrice": "12,000"}])
def test_a_0000_answer_missing_what_we_need_is_unknown(
    inicis: Inicis, changes: dict[str, object]
) -> None:
    outcome = _approve_with(inicis, None, **changes)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_an_approval_failure_answer_is_a_decline(inicis: Inicis) -> None:
    outcome = _approve_with(inicis, httpx.Response(200, json=load("approve_failed.json")))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)
    assert outcome.error.provider_code == "R201"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_on_approval_is_unknown(inicis: Inicis, status: int) -> None:
    outcome = _approve_with(inicis, httpx.Response(status, text="error"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_an_unreadable_approval_answer_is_unknown(inicis: Inicis) -> None:
    outcome = _approve_with(inicis, httpx.Response(200, text="<html>oops</html>"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


# -- net cancel -------------------------------------------------------------------------------


def test_net_cancel_posts_the_approval_form_to_the_checked_net_cancel_url(inicis: Inicis) -> None:
    req = approve_request()
    with (
        respx.mock(base_url="https://fcstdpay.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/netCancel").respond(200, json=load("net_cancel.json"))
        outcome = inicis.parse_net_cancel(req, client.send(inicis.build_net_cancel(req)))
    sent = form_of(route.calls.last.request)
    assert sent["authToken"] == req.callback_params["authToken"]
    assert sent["mid"] == MID
    assert sent["format"] == "JSON"
    assert isinstance(outcome, Cancelled)
    assert outcome.settled
    assert outcome.remaining == 0


def test_a_net_cancel_that_is_not_acknowledged_proves_nothing(inicis: Inicis) -> None:
    req = approve_request()
    outcome = inicis.parse_net_cancel(req, httpx.Response(200, json={"resultCode": "V999"}))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_void_is_the_net_cancel_of_the_approval_just_sent(inicis: Inicis) -> None:
    approval = approve_request()
    assert inicis.capabilities.void_window is not None
    void = VoidRequest(
        attempt_id=ATTEMPT,
        order=approval.order,
        provider_txn_id=None,
        amount=Money(amount=12000),
        idempotency_key="k",
        method=approval.method,
        callback_params=approval.callback_params,
    )
    sent = inicis.build_void(void)
    assert sent.url == inicis.build_net_cancel(approval).url
    assert sent.url.path == "/api/netCancel"
    outcome = inicis.parse_void(void, httpx.Response(200, json=load("net_cancel.json")))
    assert isinstance(outcome, Cancelled)
    assert outcome.settled


def test_without_the_returns_parameters_there_is_no_void(inicis: Inicis) -> None:
    # A billing charge, or a void sent later by recover(): Inicis offers nothing to undo it.
    req = VoidRequest(
        attempt_id=ATTEMPT,
        order=approve_request().order,
        provider_txn_id=None,
        amount=Money(amount=12000),
        idempotency_key="k",
    )
    with pytest.raises(NotImplementedError):
        inicis.build_void(req)


# -- charge (billing) -------------------------------------------------------------------------


def test_charge_posts_the_documented_billing_form(inicis: Inicis) -> None:
    req = charge_request()
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/v1/billing").respond(200, json=load("billing_paid.json"))
        outcome = inicis.parse_charge(req, client.send(inicis.build_charge(req)))
    sent = route.calls.last.request
    assert sent.headers["content-type"] == FORM
    hash_data = sha512(
        f"{INIAPI_KEY}BillingCard{API_TIMESTAMP}{CLIENT_IP}{MID}{BILLING_ATTEMPT}12000{BILL_KEY}"
    )
    assert form_of(sent) == {
        "type": "Billing",
        "paymethod": "Card",
        "timestamp": API_TIMESTAMP,
        "clientIp": CLIENT_IP,
        "mid": MID,
        "url": SITE_URL,
        "moid": BILLING_ATTEMPT,
        "goodName": "월간 원두 구독",
        "buyerName": "홍길동",
        "buyerEmail": "buyer@shop.example",
        "buyerTel": "01012345678",
        "price": "12000",
        "billKey": BILL_KEY,
        "authentification": "00",
        "cardQuota": "00",
        "quotaInterest": "0",
        "hashData": hash_data,
    }
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == BILLING_TID
    assert outcome.amount == Money(amount=12000)


def test_the_sandbox_uses_the_test_iniapi_host() -> None:
    req = charge_request()
    assert str(provider(sandbox=True).build_charge(req).url) == (
        "https://stginiapi.inicis.com/api/v1/billing"
    )


def test_a_billing_refusal_is_unknown_never_a_decline(inicis: Inicis) -> None:
    outcome = inicis.parse_charge(
        charge_request(), httpx.Response(200, json=load("billing_refused.json"))
    )
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


@pytest.mark.parametrize("changes", [{"tid": None}, {"price": "1000"}, {"moid": "SUB-9_1"}])
def test_a_billing_00_answer_missing_or_contradicting_is_unknown(
    inicis: Inicis, changes: dict[str, object]
) -> None:
    body = load("billing_paid.json")
    body.update(changes)
    outcome = inicis.parse_charge(charge_request(), httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_billing_without_buyer_settings_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        provider(buyer_email=None).build_charge(charge_request())


def test_a_billing_key_of_another_provider_is_refused(inicis: Inicis) -> None:
    req = charge_request()
    other = type(req)(
        attempt_id=req.attempt_id,
        order=req.order,
        instrument=req.instrument.model_copy(update={"provider": "nicepay"}),
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest):
        inicis.build_charge(other)


# -- lookup (inquiry) -------------------------------------------------------------------------


def test_lookup_posts_the_documented_inquiry(inicis: Inicis) -> None:
    req = lookup_request()
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/v1/extra").respond(200, json=load("inquiry_paid.json"))
        outcome = inicis.parse_lookup(req, client.send(inicis.build_lookup(req)))
    assert form_of(route.calls.last.request) == {
        "type": "Extra",
        "paymethod": "Inquiry",
        "timestamp": API_TIMESTAMP,
        "clientIp": CLIENT_IP,
        "mid": MID,
        "originalTid": TID,
        "oid": ATTEMPT,
        "hashData": sha512(f"{INIAPI_KEY}ExtraInquiry{API_TIMESTAMP}{CLIENT_IP}{MID}"),
    }
    assert outcome == Status(
        state=TxnState.PAID, provider_txn_id=TID, amount=Money(amount=12000), provider_status="0"
    )


def test_lookup_by_order_id_alone_sends_no_tid(inicis: Inicis) -> None:
    sent = form_of(inicis.build_lookup(lookup_request(tid=None)))
    assert "originalTid" not in sent
    assert sent["oid"] == ATTEMPT


def test_status_9_under_result_code_00_is_not_found(inicis: Inicis) -> None:
    outcome = inicis.parse_lookup(
        lookup_request(), httpx.Response(200, json=load("inquiry_not_found.json"))
    )
    assert outcome == Status(state=TxnState.NOT_FOUND, provider_status="9")


def test_a_cancelled_transaction_reads_cancelled(inicis: Inicis) -> None:
    outcome = inicis.parse_lookup(
        lookup_request(), httpx.Response(200, json=load("inquiry_cancelled.json"))
    )
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.CANCELLED
    assert outcome.cancelled == 12000


@pytest.mark.parametrize("status", ["N", "Y", "", "2"])
def test_an_undocumented_status_leaves_the_transaction_unresolved(
    inicis: Inicis, status: str
) -> None:
    body = load("inquiry_paid.json")
    body["status"] = status
    outcome = inicis.parse_lookup(lookup_request(), httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)


def test_a_lookup_answer_for_another_oid_is_refused(inicis: Inicis) -> None:
    body = load("inquiry_paid.json")
    body["oid"] = "ORD-9999_1"
    outcome = inicis.parse_lookup(lookup_request(), httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, InvalidRequest)


def test_a_failed_inquiry_is_unavailable(inicis: Inicis) -> None:
    outcome = inicis.parse_lookup(
        lookup_request(), httpx.Response(200, json={"resultCode": "01", "resultMsg": "실패"})
    )
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)


# -- cancel (refund) --------------------------------------------------------------------------


def test_a_full_refund_posts_type_refund(inicis: Inicis) -> None:
    req = cancel_request()
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/v1/refund").respond(200, json=load("refund_full.json"))
        outcome = inicis.parse_cancel(req, client.send(inicis.build_cancel(req)))
    assert form_of(route.calls.last.request) == {
        "type": "Refund",
        "paymethod": "Card",
        "timestamp": API_TIMESTAMP,
        "clientIp": CLIENT_IP,
        "mid": MID,
        "tid": TID,
        "msg": "고객 요청 취소",
        "hashData": sha512(f"{INIAPI_KEY}RefundCard{API_TIMESTAMP}{CLIENT_IP}{MID}{TID}"),
    }
    assert isinstance(outcome, Cancelled)
    assert dataclasses.replace(outcome, receipt=None, answer=None) == Cancelled(
        provider_txn_id=TID, amount=Money(amount=12000), remaining=0
    )


def test_a_partial_refund_sends_price_and_the_balance_left_after_it(inicis: Inicis) -> None:
    req = cancel_request(amount=2000, remaining=12000)
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/api/v1/refund").respond(200, json=load("refund_partial.json"))
        outcome = inicis.parse_cancel(req, client.send(inicis.build_cancel(req)))
    sent = form_of(route.calls.last.request)
    assert sent["type"] == "PartialRefund"
    assert sent["price"] == "2000"
    assert sent["confirmPrice"] == "10000"
    assert sent["hashData"] == sha512(
        f"{INIAPI_KEY}PartialRefundCard{API_TIMESTAMP}{CLIENT_IP}{MID}{TID}200010000"
    )
    assert isinstance(outcome, Cancelled)
    assert dataclasses.replace(outcome, receipt=None, answer=None) == Cancelled(
        provider_txn_id=TID, amount=Money(amount=2000), remaining=10000
    )


def test_confirm_price_comes_from_the_request_alone_on_every_try(inicis: Inicis) -> None:
    # The same journaled refund built twice (a retry) sends the same confirmPrice: it is a
    # function of the request's expected_remaining and amount, never of a fresh balance.
    req = cancel_request(amount=3000, remaining=10000)
    first = form_of(inicis.build_cancel(req))
    second = form_of(inicis.build_cancel(req))
    assert first["confirmPrice"] == second["confirmPrice"] == "7000"


def test_the_rest_of_a_partly_refunded_payment_is_a_partial_refund_to_zero(
    inicis: Inicis,
) -> None:
    sent = form_of(inicis.build_cancel(cancel_request(amount=10000, remaining=10000)))
    assert sent["type"] == "PartialRefund"
    assert (sent["price"], sent["confirmPrice"]) == ("10000", "0")


def test_a_refund_answer_with_other_amounts_is_unknown(inicis: Inicis) -> None:
    body = load("refund_partial.json")
    body["prtcRemains"] = "8000"
    outcome = inicis.parse_cancel(
        cancel_request(amount=2000, remaining=12000), httpx.Response(200, json=body)
    )
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_refund_refusal_is_unknown(inicis: Inicis) -> None:
    outcome = inicis.parse_cancel(
        cancel_request(), httpx.Response(200, json={"resultCode": "01", "resultMsg": "실패"})
    )
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_refund_over_the_balance_is_refused_before_sending(inicis: Inicis) -> None:
    with pytest.raises(InvalidRequest):
        inicis.build_cancel(cancel_request(amount=13000, remaining=12000))


# -- discovery --------------------------------------------------------------------------------


def test_registered_as_the_inicis_provider() -> None:
    from payfallback.provider import Provider, installed_providers, load_provider  # noqa: PLC0415

    assert installed_providers()["inicis"] == "payfallback_inicis:Inicis"
    loaded = load_provider(
        "inicis", mid=MID, iniapi_key=INIAPI_KEY, client_ip=CLIENT_IP, sign_key=SIGN_KEY
    )
    assert isinstance(loaded, Provider)
    assert loaded.capabilities.lookup_by_order_id
    assert loaded.capabilities.idempotency_header is None
    assert loaded.capabilities.settle_window is None
    # Only the net cancel of a window approval just sent (see build_void).
    assert loaded.capabilities.proofs == (Proof.VOID,)
    assert INIAPI_KEY not in repr(loaded)
    assert SIGN_KEY not in repr(loaded)


# -- INIAPI v2 (JSON) -------------------------------------------------------------------------


def _json_of(request: httpx.Request) -> dict[str, object]:
    import json  # noqa: PLC0415

    body: dict[str, object] = json.loads(request.read())
    return body


def test_v2_billing_posts_json_hashed_over_the_data_object() -> None:
    v2 = provider(iniapi_version=2)
    req = charge_request()
    with (
        respx.mock(base_url="https://iniapi.inicis.com", assert_all_called=True) as mock,
        httpx.Client() as client,
    ):
        route = mock.post("/v2/pg/billing").respond(200, json=load("billing_paid.json"))
        outcome = v2.parse_charge(req, client.send(v2.build_charge(req)))
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json;charset=utf-8"
    body = _json_of(sent)
    data = (
        f'{{"url":"{SITE_URL}","moid":"{BILLING_ATTEMPT}","goodName":"월간 원두 구독",'
        '"buyerName":"홍길동","buyerEmail":"buyer@shop.example","buyerTel":"01012345678",'
        f'"price":"12000","billKey":"{BILL_KEY}","authentification":"00","cardQuota":"00",'
        '"quotaInterest":"0"}'
    )
    # The raw bytes carry data exactly as hashed: compact, Hangul and "/" unescaped.
    assert data in sent.content.decode("utf-8")
    assert body["hashData"] == sha512(f"{INIAPI_KEY}{MID}billing{API_TIMESTAMP}{data}")
    assert {k: body[k] for k in ("mid", "type", "paymethod", "timestamp", "clientIp")} == {
        "mid": MID,
        "type": "billing",
        "paymethod": "Card",
        "timestamp": API_TIMESTAMP,
        "clientIp": CLIENT_IP,
    }
    assert isinstance(outcome, Approved)


def test_v2_refunds_post_to_refund_and_partial_refund() -> None:
    v2 = provider(iniapi_version=2)
    full = v2.build_cancel(cancel_request())
    assert str(full.url) == "https://iniapi.inicis.com/v2/pg/refund"
    body = _json_of(full)
    data = f'{{"tid":"{TID}","msg":"고객 요청 취소"}}'
    assert body["data"] == {"tid": TID, "msg": "고객 요청 취소"}
    assert body["hashData"] == sha512(f"{INIAPI_KEY}{MID}refund{API_TIMESTAMP}{data}")

    part = v2.build_cancel(cancel_request(amount=2000, remaining=12000))
    assert str(part.url) == "https://iniapi.inicis.com/v2/pg/partialRefund"
    body = _json_of(part)
    assert body["type"] == "partialRefund"
    assert body["data"] == {
        "tid": TID,
        "msg": "고객 요청 취소",
        "price": "2000",
        "confirmPrice": "10000",
        "currency": "WON",
    }
    data = (
        f'{{"tid":"{TID}","msg":"고객 요청 취소","price":"2000","confirmPrice":"10000",'
        '"currency":"WON"}'
    )
    assert body["hashData"] == sha512(f"{INIAPI_KEY}{MID}partialRefund{API_TIMESTAMP}{data}")


def test_v2_keeps_the_inquiry_on_v1_because_it_finds_our_order_id() -> None:
    request = provider(iniapi_version=2).build_lookup(lookup_request(tid=None))
    assert str(request.url) == "https://iniapi.inicis.com/api/v1/extra"


def test_only_versions_1_and_2_exist() -> None:
    with pytest.raises(ConfigurationError):
        provider(iniapi_version=3)


# -- signature and hash vectors ---------------------------------------------------------------

#: Window signatures Inicis's sample form rendered for its test merchant INIpayTest
#: (oid, price, timestamp → signature), and INIpayTest's mKey as the manual's form shows it.
SAMPLE_SIGNATURES = [
    (
        "INIpayTest_1635471010951",
        1000,
        "1635471010951",
        "47da3c3e55ed4874e6301d3ee74bef9e70ccadf51ca501482267db9fa982ab0e",
    ),
    (
        "INIpayTest_1628840602127",
        1000,
        "1628840602127",
        "162868db635c605a7f4d4876ba650ba97f28e95b8702e9b29f922cc969678993",
    ),
    (
        "INIpayTest_1613007569462",
        1000,
        "1613007569462",
        "033dfcaf17a3c22c61cfdd8b773da4c1cab2711d99b766d79044b49ffdb43712",
    ),
    (
        "INIpayTest_1361252896871",
        1004,
        "1361252896871",
        "422a0e78529b419d9412d6e344c6e138584d9174c691da6cd91d4330240b9192",
    ),
]
MANUAL_MKEY = "3a9503069192f207491d4b19bd743fc249a761ed94246c8c42fed06c3cd15a33"


@pytest.mark.parametrize(("oid", "price", "timestamp", "expected"), SAMPLE_SIGNATURES)
def test_window_signatures_reproduce_inicis_sample_forms(
    oid: str, price: int, timestamp: str, expected: str
) -> None:
    from payfallback_inicis._wire import window_signature  # noqa: PLC0415

    assert window_signature(oid=oid, price=price, timestamp=timestamp) == expected


def test_mkey_of_the_test_sign_key_is_the_manuals() -> None:
    from payfallback_inicis._wire import mkey  # noqa: PLC0415

    assert mkey(SIGN_KEY) == MANUAL_MKEY
    outcome = provider().parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["mKey"] == MANUAL_MKEY


#: INIStdPayUtil.makeSignatureAuth: the timestamp's last digit picks the fields and order.
AUTH_ORDERS = {
    "1": "MOID={o}&mid={m}&tstamp={t}",
    "2": "MOID={o}&tstamp={t}&mid={m}",
    "3": "mid={m}&MOID={o}&tstamp={t}",
    "4": "mid={m}&tstamp={t}&MOID={o}",
    "5": "tstamp={t}&mid={m}&MOID={o}",
    "6": "tstamp={t}&MOID={o}&mid={m}",
    "7": "TotPrice={p}&mid={m}&tstamp={t}",
    "8": "TotPrice={p}&tstamp={t}&mid={m}",
    "9": "TotPrice={p}&MOID={o}&tstamp={t}",
    "0": "TotPrice={p}&tstamp={t}&MOID={o}",
}


@pytest.mark.parametrize("digit", sorted(AUTH_ORDERS))
def test_auth_signature_follows_the_sample_utility_for_every_last_digit(digit: str) -> None:
    from payfallback_inicis._wire import auth_signature  # noqa: PLC0415

    t = f"166581540000{digit}"
    plain = AUTH_ORDERS[digit].format(o=ATTEMPT, m=MID, t=t, p="12000")
    assert auth_signature(mid=MID, tstamp=t, moid=ATTEMPT, tot_price="12000") == sha256(plain)


def test_auth_signature_without_a_timestamp_never_verifies() -> None:
    from payfallback_inicis._wire import auth_signature, signature_matches  # noqa: PLC0415

    assert auth_signature(mid=MID, tstamp="", moid=ATTEMPT, tot_price="12000") == ""
    assert not signature_matches("", "")


@pytest.mark.parametrize(
    ("given", "sandbox"), [("true", True), ("false", False), ("0", False), (True, True)]
)
def test_settings_given_as_text_mean_what_they_say(given: object, sandbox: bool) -> None:
    # `payfallback reconcile --provider inicis:sandbox=false,...` passes text.
    loaded = provider(sandbox=given, iniapi_version="2")
    assert loaded.sandbox is sandbox
    assert loaded.iniapi_version == 2
    with pytest.raises(ConfigurationError):
        provider(sandbox="maybe")
