"""The wire format, pinned with respx on KCP's real hosts: method, URL, headers and body of
every call, the signature over the documented string, and what each answer becomes."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
import respx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from kcp_support import (
    ATTEMPT,
    BATCH_KEY,
    BILLING_ATTEMPT,
    ENC_DATA,
    ENC_INFO,
    GROUP_ID,
    PASSWORD,
    SITE_CD,
    TNO,
    approve_request,
    bare,
    callback,
    cancel_request,
    certificate_pem,
    charge_request,
    load,
    lookup_request,
    make_order,
    one_line_cert,
    private_key,
    private_key_pem,
    provider,
    ready_request,
)
from payfallback_kcp import KST, Kcp
from payfallback_kcp._wire import load_private_key, sign, sign_data
from pydantic import SecretStr

from payfallback import load_provider
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import Method, Money
from payfallback.provider import (
    Approved,
    Cancelled,
    Failed,
    Flow,
    Outcome,
    Provider,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
)

HOST = "https://spl.kcp.co.kr"


def body_of(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.content)
    return data


def verify(signature: str, text: str) -> None:
    """Raises InvalidSignature unless ``signature`` is SHA256withRSA over ``text`` by the
    merchant's key."""
    private_key().public_key().verify(
        base64.b64decode(signature), text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def send(request: httpx.Request, route_path: str, answer: httpx.Response) -> httpx.Request:
    with respx.mock(base_url=HOST, assert_all_called=True) as mock, httpx.Client() as client:
        route = mock.post(route_path).mock(return_value=answer)
        client.send(request)
    sent: httpx.Request = route.calls.last.request
    return sent


# -- signature --------------------------------------------------------------------------------


def test_the_signed_string_is_the_manuals_example() -> None:
    # developer.kcp.co.kr/page/document/inquery: makeSignatureData(priKey,
    # "T0000^20210719000000^PACA") — site_cd ^ tno ^ pay_type.
    assert sign_data("T0000", "20210719000000", "PACA") == "T0000^20210719000000^PACA"
    assert sign_data("T0000", "20210719000000", "STSC") == "T0000^20210719000000^STSC"


def test_kcp_sign_data_is_sha256withrsa_verified_by_the_public_key() -> None:
    key = load_private_key(private_key_pem(), PASSWORD)
    signature = sign(key, "T0000^20210719000000^PACA")
    verify(signature, "T0000^20210719000000^PACA")
    with pytest.raises(InvalidSignature):
        verify(signature, "T0000^20210719000000^STSC")
    # A 2048-bit key gives 256 bytes: 344 base64 characters ending "==", the shape of the
    # manual's example ("QdwMF6y3GU1J…0qH7NSq0c6BpedDZb04w==").
    assert len(signature) == 344
    assert signature.endswith("==")
    # PKCS#1 v1.5 is deterministic: a retried cancel is the same bytes.
    assert sign(key, "T0000^20210719000000^PACA") == signature


def test_an_unencrypted_pkcs8_key_is_read_too() -> None:
    pem = (
        private_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    kcp = provider(private_key=pem, private_key_password=None)
    request = kcp.build_lookup(lookup_request())
    verify(body_of(request)["kcp_sign_data"], f"{SITE_CD}^{TNO}^PACA")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"private_key_password": "wrong"}, "could not be read"),
        ({"private_key_password": None}, "could not be read"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, "PKCS#8"),
        ({"cert_info": "MIIDgTCCAmmgAwIBAgIHkiG9w0"}, "BEGIN CERTIFICATE"),
        ({"site_cd": ""}, "site_cd"),
        ({"batch_group_id": " "}, "batch_group_id"),
    ],
)
def test_bad_settings_are_configuration_errors_that_quote_nothing(
    settings: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        provider(**settings)
    assert says in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert private_key_pem()[40:80] not in str(caught.value)


def test_a_key_that_is_not_rsa_is_refused() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ConfigurationError, match="not an RSA key"):
        provider(private_key=pem, private_key_password=None)


# -- set-up -----------------------------------------------------------------------------------


def test_the_entry_point_builds_the_adapter() -> None:
    built = load_provider(
        "kcp",
        site_cd=SITE_CD,
        cert_info=SecretStr(certificate_pem()),
        private_key=SecretStr(private_key_pem()),
        private_key_password=SecretStr(PASSWORD),
    )
    assert isinstance(built, Kcp)
    assert isinstance(built, Provider)
    assert built.name == "kcp"
    # Without a batch group id only the window is offered.
    assert built.capabilities.flows == frozenset({Flow.REDIRECT})
    with pytest.raises(ConfigurationError, match="batch_group_id"):
        built.build_charge(charge_request())


def test_capabilities_claim_no_proof_kcp_does_not_document(kcp: Kcp) -> None:
    caps = kcp.capabilities
    assert caps.flows == frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE})
    assert caps.methods == frozenset({Method.CARD})
    assert caps.idempotency_header is None
    assert caps.lookup_by_order_id is False
    assert caps.void_window is None
    assert caps.settle_window is None
    assert caps.callback_txn_id_param is None
    # Nothing ends a lost approval or batch payment "not paid": it waits for reconciliation.
    assert caps.proofs == ()
    with pytest.raises(NotImplementedError, match="void"):
        kcp.build_void(
            VoidRequest(
                attempt_id=ATTEMPT,
                order=make_order(),
                provider_txn_id=None,
                amount=Money(amount=12000),
                idempotency_key="k",
            )
        )


def test_repr_shows_no_secret(kcp: Kcp) -> None:
    assert repr(kcp) == "Kcp(site_cd='T0000', sandbox=False)"


# -- ready ------------------------------------------------------------------------------------


def test_ready_is_client_side_with_the_order_form_fields(kcp: Kcp, sandbox: Kcp) -> None:
    req = ready_request()
    assert kcp.build_ready(req) is None
    outcome = kcp.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params == {
        "jsUrl": "https://spay.kcp.co.kr/plugin/kcp_spay_hub.js",
        "site_cd": "T0000",
        "pay_method": "100000000000",
        "ordr_idxx": ATTEMPT,
        "good_name": "아메리카노 외 2건",
        "good_mny": "12000",
        "Ret_URL": "https://shop.example/pay/kcp/return",
    }
    redirect = sandbox.parse_ready(req, None)
    assert isinstance(redirect, Redirect)
    assert redirect.client_params["jsUrl"] == "https://testspay.kcp.co.kr/plugin/kcp_spay_hub.js"
    with pytest.raises(InvalidRequest):
        kcp.build_ready(ready_request(Method.KAKAOPAY))


# -- approve ----------------------------------------------------------------------------------


def test_approve_sends_the_documented_request(kcp: Kcp) -> None:
    req = approve_request()
    sent = send(kcp.build_approve(req), "/gw/enc/v1/payment", httpx.Response(200, json={}))
    assert sent.method == "POST"
    assert str(sent.url) == "https://spl.kcp.co.kr/gw/enc/v1/payment"
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    assert body_of(sent) == {
        "tran_cd": "00100000",
        "site_cd": "T0000",
        "kcp_cert_info": one_line_cert(),
        "enc_data": ENC_DATA,
        "enc_info": ENC_INFO,
        "ordr_mony": "12000",
    }
    # The certificate travels on one line: a line break inside is refused (S032).
    cert = body_of(sent)["kcp_cert_info"]
    assert "\n" not in cert
    assert "\r" not in cert
    assert cert.startswith("-----BEGIN CERTIFICATE-----MII")
    assert cert.endswith("-----END CERTIFICATE-----")


def test_the_sandbox_uses_the_test_host(sandbox: Kcp) -> None:
    assert str(sandbox.build_approve(approve_request()).url) == (
        "https://stg-spl.kcp.co.kr/gw/enc/v1/payment"
    )
    assert str(sandbox.build_lookup(lookup_request()).url) == (
        "https://stg-spl.kcp.co.kr/std/inquery"
    )


def test_an_approval_answer_becomes_approved(kcp: Kcp) -> None:
    outcome = kcp.parse_approve(
        approve_request(), httpx.Response(200, json=load("approve_paid.json"))
    )
    assert bare(outcome) == Approved(
        provider_txn_id=TNO,
        amount=Money(amount=12000),
        approved_at=datetime(2022, 10, 15, 15, 30, tzinfo=KST),
        provider_status="PACA",
    )


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (callback(code="3001", message="사용자가 취소하였습니다"), Declined),
        (callback(order_id="ORD-9999_1"), InvalidRequest),
        ({k: v for k, v in callback().items() if k != "enc_data"}, InvalidRequest),
        ({k: v for k, v in callback().items() if k != "tran_cd"}, InvalidRequest),
        (callback() | {"tran_cd": "0010"}, InvalidRequest),
    ],
)
def test_a_return_that_cannot_be_approved_sends_nothing(
    kcp: Kcp, params: dict[str, str], error: type[PayfallbackError]
) -> None:
    with pytest.raises(error) as caught:
        kcp.build_approve(approve_request(params))
    assert ENC_DATA not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        # No tno, no amount, another order's answer: KCP may have approved it.
        (load("approve_paid.json", tno=""), OutcomeUnknown),
        (load("approve_paid.json", amount="12,000"), OutcomeUnknown),
        (load("approve_paid.json", order_no="ORD-9999_1"), OutcomeUnknown),
        # A code this adapter does not know, on a money-moving call.
        ({"res_cd": "9999", "res_msg": "알 수 없는 오류"}, OutcomeUnknown),
        ({"res_msg": "no code"}, OutcomeUnknown),
        # The ordr_mony check: KCP refused an approval for another amount.
        ({"res_cd": "8059", "res_msg": "포맷에러(지불정보-공통:결제금액 불일치)"}, InvalidRequest),
        (load("no_access.json"), ConfigurationError),
    ],
)
def test_approval_answers_that_are_not_a_payment(
    kcp: Kcp, answer: dict[str, Any], error: type[PayfallbackError]
) -> None:
    outcome = kcp.parse_approve(approve_request(), httpx.Response(200, json=answer))
    assert type(error_of(outcome)) is error


def test_an_unreadable_or_5xx_approval_answer_is_unknown(kcp: Kcp) -> None:
    req = approve_request()
    for response in (
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(500, json={"res_cd": "0000"}),
    ):
        assert isinstance(error_of(kcp.parse_approve(req, response)), OutcomeUnknown)


# -- charge (batch key) -----------------------------------------------------------------------


def test_a_batch_payment_sends_the_documented_request(kcp: Kcp) -> None:
    req = charge_request()
    sent = send(kcp.build_charge(req), "/gw/hub/v1/payment", httpx.Response(200, json={}))
    assert str(sent.url) == "https://spl.kcp.co.kr/gw/hub/v1/payment"
    assert sent.headers["content-type"] == "application/json; charset=utf-8"
    body = body_of(sent)
    assert body == {
        "site_cd": "T0000",
        "kcp_cert_info": one_line_cert(),
        "pay_method": "CARD",
        "cust_ip": "",
        "amount": "9900",
        "card_mny": "9900",
        "currency": "410",
        "quota": "00",
        "ordr_idxx": BILLING_ATTEMPT,
        "good_name": "월간 구독",
        "card_tx_type": "11511000",
        "bt_batch_key": BATCH_KEY,
        "bt_group_id": GROUP_ID,
    }
    # The REST batch payment has no good_mny (that was the old CLI module's field).
    assert "good_mny" not in body


def test_a_batch_answer_becomes_approved(kcp: Kcp) -> None:
    outcome = kcp.parse_charge(charge_request(), httpx.Response(200, json=load("batch_paid.json")))
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == "20221015998878"
    assert outcome.amount == Money(amount=9900)


def test_a_declined_batch_payment_is_declined(kcp: Kcp) -> None:
    outcome = kcp.parse_charge(charge_request(), httpx.Response(200, json=load("declined.json")))
    error = error_of(outcome)
    assert isinstance(error, Declined)
    assert error.provider_code == "8186"


def test_a_batch_key_of_another_provider_is_refused(kcp: Kcp) -> None:
    with pytest.raises(InvalidRequest):
        kcp.build_charge(charge_request(instrument_provider="nicepay"))


def test_a_5xx_on_a_batch_payment_is_unknown(kcp: Kcp) -> None:
    outcome = kcp.parse_charge(charge_request(), httpx.Response(503, text="busy"))
    assert isinstance(error_of(outcome), ProviderUnavailable)
    outcome = kcp.parse_charge(charge_request(), httpx.Response(500, text="error"))
    assert isinstance(error_of(outcome), OutcomeUnknown)


# -- lookup -----------------------------------------------------------------------------------


def test_the_inquiry_sends_the_documented_signed_request(kcp: Kcp) -> None:
    sent = send(kcp.build_lookup(lookup_request()), "/std/inquery", httpx.Response(200, json={}))
    assert str(sent.url) == "https://spl.kcp.co.kr/std/inquery"
    body = body_of(sent)
    signature = body.pop("kcp_sign_data")
    assert body == {
        "site_cd": "T0000",
        "kcp_cert_info": one_line_cert(),
        "tno": TNO,
        "pay_type": "PACA",
    }
    verify(signature, f"T0000^{TNO}^PACA")


def test_the_inquiry_needs_a_tno(kcp: Kcp) -> None:
    with pytest.raises(InvalidRequest, match="tno"):
        kcp.build_lookup(lookup_request(tno=None))


@pytest.mark.parametrize(
    ("remaining", "state", "cancelled"),
    [("12000", TxnState.PAID, 0), ("7000", TxnState.PAID, 5000), ("0", TxnState.CANCELLED, 12000)],
)
def test_inquiry_answers_become_a_status(
    kcp: Kcp, remaining: str, state: TxnState, cancelled: int
) -> None:
    answer = load("lookup_paid.json", rem_mny=remaining)
    outcome = kcp.parse_lookup(lookup_request(), httpx.Response(200, json=answer))
    assert outcome == Status(
        state=state,
        provider_txn_id=TNO,
        amount=Money(amount=12000),
        cancelled=cancelled,
        provider_status="PACA",
    )


@pytest.mark.parametrize(
    "answer",
    [
        load("lookup_paid.json", rem_mny=None),
        load("lookup_paid.json", rem_mny="13000"),
        load("lookup_paid.json", tno="20221015000000"),
        {"res_cd": "9999", "res_msg": "조회 오류"},
    ],
)
def test_inquiry_answers_that_tell_nothing_are_try_later(kcp: Kcp, answer: dict[str, Any]) -> None:
    outcome = kcp.parse_lookup(lookup_request(), httpx.Response(200, json=answer))
    assert isinstance(error_of(outcome), ProviderUnavailable)


# -- cancel -----------------------------------------------------------------------------------


def test_a_full_cancel_is_stsc_signed_over_site_tno_mod_type(kcp: Kcp) -> None:
    req = cancel_request()
    sent = send(kcp.build_cancel(req), "/gw/mod/v1/cancel", httpx.Response(200, json={}))
    assert str(sent.url) == "https://spl.kcp.co.kr/gw/mod/v1/cancel"
    body = body_of(sent)
    signature = body.pop("kcp_sign_data")
    assert body == {
        "site_cd": "T0000",
        "tno": TNO,
        "kcp_cert_info": one_line_cert(),
        "mod_type": "STSC",
        "mod_desc": "고객 요청",
    }
    verify(signature, f"T0000^{TNO}^STSC")
    outcome = kcp.parse_cancel(req, httpx.Response(200, json=load("cancel_full.json")))
    assert bare(outcome) == Cancelled(provider_txn_id=TNO, amount=Money(amount=12000), remaining=0)


def test_a_partial_cancel_is_stpc_with_the_balance_before_it(kcp: Kcp) -> None:
    req = cancel_request(amount=5000, remaining=12000)
    request = kcp.build_cancel(req)
    body = body_of(request)
    signature = body.pop("kcp_sign_data")
    assert body == {
        "site_cd": "T0000",
        "tno": TNO,
        "kcp_cert_info": one_line_cert(),
        "mod_type": "STPC",
        "mod_desc": "고객 요청",
        "mod_mny": "5000",
        # rem_mny: the cancellable balance BEFORE this cancel.
        "rem_mny": "12000",
    }
    verify(signature, f"T0000^{TNO}^STPC")
    outcome = kcp.parse_cancel(req, httpx.Response(200, json=load("cancel_partial.json")))
    assert bare(outcome) == Cancelled(
        provider_txn_id=TNO, amount=Money(amount=5000), remaining=7000
    )


def test_a_retried_partial_cancel_is_the_same_bytes(kcp: Kcp) -> None:
    # rem_mny is computed once (the Router's expected_remaining) and replayed unchanged,
    # so KCP refuses the replay of a cancel that already went through.
    req = cancel_request(amount=5000, remaining=12000)
    assert kcp.build_cancel(req).content == kcp.build_cancel(req).content


def test_the_cancel_that_empties_a_partly_cancelled_payment_is_stpc(kcp: Kcp) -> None:
    req = cancel_request(amount=7000, remaining=7000)
    body = body_of(kcp.build_cancel(req))
    assert (body["mod_type"], body["mod_mny"], body["rem_mny"]) == ("STPC", "7000", "7000")
    verify(body["kcp_sign_data"], f"T0000^{TNO}^STPC")
    answer = load("cancel_partial.json", mod_mny="7000", rem_mny="0")
    outcome = kcp.parse_cancel(req, httpx.Response(200, json=answer))
    assert bare(outcome) == Cancelled(provider_txn_id=TNO, amount=Money(amount=7000), remaining=0)


@pytest.mark.parametrize(
    "answer",
    [
        load("cancel_partial.json", mod_mny="4000"),
        load("cancel_partial.json", panc_mod_mny="4000"),
        load("cancel_partial.json", mod_mny="five thousand"),
        load("cancel_partial.json", tno="20221015000000"),
    ],
)
def test_a_cancel_answer_with_other_amounts_is_unknown(kcp: Kcp, answer: dict[str, Any]) -> None:
    req = cancel_request(amount=5000, remaining=12000)
    assert isinstance(
        error_of(kcp.parse_cancel(req, httpx.Response(200, json=answer))), OutcomeUnknown
    )


def test_the_remaining_balance_is_ours_not_the_answers(kcp: Kcp) -> None:
    # KCP's guide calls rem_mny "부분취소 이전에 남은 금액" (before); integrations read the
    # answer's as after. Neither reading changes what the Router computed.
    req = cancel_request(amount=5000, remaining=12000)
    for left in ("12000", "7000"):
        answer = load("cancel_partial.json", rem_mny=left)
        outcome = kcp.parse_cancel(req, httpx.Response(200, json=answer))
        assert bare(outcome) == Cancelled(
            provider_txn_id=TNO, amount=Money(amount=5000), remaining=7000
        )


def test_a_cancel_from_an_unregistered_server_is_a_configuration_error(kcp: Kcp) -> None:
    req = cancel_request()
    refused = {"res_cd": "8012", "res_msg": "취소불가-상점관리자 문의"}
    error = error_of(kcp.parse_cancel(req, httpx.Response(200, json=refused)))
    assert isinstance(error, ConfigurationError)
    assert "결제서버 IP설정" in error.message


def test_cancel_refusals(kcp: Kcp) -> None:
    req = cancel_request(amount=5000, remaining=12000)
    refused = {"res_cd": "8178", "res_msg": "취소 불가: 상계 금액 부족"}
    assert isinstance(error_of(kcp.parse_cancel(req, httpx.Response(200, json=refused))), Declined)
    unknown = {"res_cd": "9999", "res_msg": "?"}
    assert isinstance(
        error_of(kcp.parse_cancel(req, httpx.Response(200, json=unknown))), OutcomeUnknown
    )


@pytest.mark.parametrize(("amount", "remaining"), [(0, 12000), (13000, 12000)])
def test_a_cancel_kcp_would_refuse_is_refused_before_sending(
    kcp: Kcp, amount: int, remaining: int
) -> None:
    with pytest.raises(InvalidRequest):
        kcp.build_cancel(cancel_request(amount=amount, remaining=remaining))


def test_a_key_not_sent_in_any_request(kcp: Kcp) -> None:
    pem = private_key_pem()
    key_body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    for request in (
        kcp.build_approve(approve_request()),
        kcp.build_charge(charge_request()),
        kcp.build_lookup(lookup_request()),
        kcp.build_cancel(cancel_request(amount=5000)),
    ):
        text = request.content.decode()
        assert key_body[:40] not in text
        assert PASSWORD not in text
    assert isinstance(private_key(), rsa.RSAPrivateKey)
