"""No secret comes back out: KCP answers that echo every secret we sent, in every string
field, on every operation, on the success shape and on each error shape.

The secrets: the service certificate (as configured, on one line, its base64 body and
each of its lines), the merchant's private key PEM (whole, its body and each line) and its
password — the adapter's own :attr:`Kcp.secrets` — and the request secrets the adapter has
in hand while it parses: the batch key of a charge, the ``enc_data`` and ``enc_info`` of
the window's return. KCP's answers carry ``res_msg`` and other text fields that can hold
anything, so every string field is tried, and the request-id header too. The ``tno`` and
the signature (``kcp_sign_data``, over public values) are not secrets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kcp_support import (
    ATTEMPT,
    BATCH_KEY,
    ENC_DATA,
    ENC_INFO,
    PASSWORD,
    TNO,
    approve_request,
    callback,
    cancel_request,
    certificate_pem,
    charge_request,
    load,
    lookup_request,
    one_line_cert,
    private_key_pem,
    provider,
    ready_request,
)
from payfallback_kcp import Kcp

from payfallback.errors import ConfigurationError, Declined, InvalidRequest, PayfallbackError
from payfallback.models import Money, Order
from payfallback.provider import (
    Approved,
    Cancelled,
    Failed,
    Outcome,
    Redirect,
    Status,
)
from payfallback.testing.secrets import (
    assert_no_secret,
    echo_text,
    echoed,
    forms,
    header_text,
)


def _body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


CERT_BODY = _body(certificate_pem())
KEY_BODY = _body(private_key_pem())
OWN = (certificate_pem(), one_line_cert(), CERT_BODY, private_key_pem(), KEY_BODY, PASSWORD)
EVERY_SECRET = (*OWN, BATCH_KEY, ENC_DATA, ENC_INFO)

OPERATIONS = ("approve", "charge", "lookup", "cancel")

#: The answer each operation succeeds with, and the fields that must stay as KCP sent
#: them for the success path to be reached (everything else is echoed).
SUCCESS: dict[str, tuple[str, type[object], frozenset[str]]] = {
    "approve": ("approve_paid.json", Approved, frozenset({"res_cd", "tno", "amount", "order_no"})),
    "charge": ("batch_paid.json", Approved, frozenset({"res_cd", "tno", "amount", "order_no"})),
    "lookup": ("lookup_paid.json", Status, frozenset({"res_cd", "tno", "amount", "rem_mny"})),
    "cancel": (
        "cancel_partial.json",
        Cancelled,
        frozenset({"res_cd", "tno", "mod_mny", "rem_mny", "amount"}),
    ),
}

#: KCP's error answers, one per verdict, with the HTTP status they come with.
ERRORS: tuple[tuple[dict[str, Any], int], ...] = (
    ({"res_cd": "8186", "res_msg": "일일 한도 초과"}, 200),  # declined
    ({"res_cd": "8178", "res_msg": "취소 불가"}, 200),  # refused cancel / unknown
    ({"res_cd": "8059", "res_msg": "포맷에러(지불정보-공통:결제금액 불일치)"}, 200),  # invalid
    ({"res_cd": "S032", "res_msg": "접근권한이 없습니다"}, 200),  # configuration
    ({"res_cd": "ZZ99", "res_msg": "새로운 오류"}, 200),  # undocumented
    ({"res_cd": "0000", "res_msg": "정상처리"}, 500),  # success code, 5xx
    (load("declined.json"), 200),
)
CODE_FIELDS = frozenset({"res_cd"})


@dataclasses.dataclass
class Case:
    provider: Kcp
    request: httpx.Request
    parse: Callable[[httpx.Response], Outcome]
    #: Values that must not appear anywhere in what the parse hands back.
    forbidden: tuple[str, ...]


@pytest.fixture
def cases(kcp: Kcp) -> dict[str, Case]:
    p = kcp
    approve, charge = approve_request(), charge_request()
    lookup, cancel = lookup_request(), cancel_request(amount=5000)
    return {
        "approve": Case(
            p,
            p.build_approve(approve),
            lambda r: p.parse_approve(approve, r),
            (*OWN, ENC_DATA, ENC_INFO),
        ),
        "charge": Case(
            p, p.build_charge(charge), lambda r: p.parse_charge(charge, r), (*OWN, BATCH_KEY)
        ),
        "lookup": Case(p, p.build_lookup(lookup), lambda r: p.parse_lookup(lookup, r), OWN),
        "cancel": Case(p, p.build_cancel(cancel), lambda r: p.parse_cancel(cancel, r), OWN),
    }


def _echo(case: Case) -> str:
    """Every secret we know of, and the request itself (its body carries the certificate,
    the batch key and the window's enc_data), in the forms a server may echo them in."""
    return echo_text(*EVERY_SECRET, case.request)


def _respond(status: int, case: Case, **kwargs: Any) -> httpx.Response:
    headers = {"x-request-id": header_text(_echo(case))}
    return httpx.Response(status, headers=headers, **kwargs)


def _assert_clean(outcome: Outcome, case: Case) -> None:
    assert_no_secret(outcome, case.forbidden, declared=case.provider.secrets)


# -- the adapter declares its secrets -----------------------------------------------------------


def test_the_certificate_the_key_and_its_password_are_declared(cases: dict[str, Case]) -> None:
    for case in cases.values():
        secrets = case.provider.secrets
        assert case.provider.kit.secrets is secrets
        for value in OWN:
            assert secrets.contains(value)
        for line in (*certificate_pem().splitlines()[1:-1], *private_key_pem().splitlines()[1:-1]):
            assert secrets.contains(line)
        assert PASSWORD not in repr(secrets)
        # The tno, the site code and our attempt id are not secrets.
        assert not secrets.contains(TNO)
        assert not secrets.contains(ATTEMPT)
        assert not secrets.contains("T0000^")


def test_the_provider_object_shows_no_secret(kcp: Kcp) -> None:
    assert_no_secret((repr(kcp), str(vars(kcp))), OWN)


def test_the_key_is_never_sent_and_the_certificate_only_as_kcp_cert_info(
    cases: dict[str, Case],
) -> None:
    for case in cases.values():
        text = case.request.content.decode()
        for value in (private_key_pem(), KEY_BODY, PASSWORD, certificate_pem()):
            for form in forms(value):
                assert form not in text
        assert case.request.url.host == "spl.kcp.co.kr"
        assert case.request.url.scheme == "https"


# -- success shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_echoing_secrets_keeps_them_out_of_the_outcome(
    cases: dict[str, Case], op: str
) -> None:
    case = cases[op]
    name, success, keep = SUCCESS[op]
    body = echoed(load(name), _echo(case), keep)
    outcome = case.parse(_respond(200, case, json=body))
    assert isinstance(outcome, success), outcome
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_with_secrets_in_every_field_is_never_taken_as_it_is(
    cases: dict[str, Case], op: str
) -> None:
    case = cases[op]
    name, _, _ = SUCCESS[op]
    body = echoed(load(name), _echo(case), frozenset())
    outcome = case.parse(_respond(200, case, json=body))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", ["approve", "charge"])
def test_a_success_whose_tno_is_a_secret_is_not_taken(cases: dict[str, Case], op: str) -> None:
    # The tno would become the payment's id, in the journal and the events.
    case = cases[op]
    name, _, _ = SUCCESS[op]
    for secret in case.forbidden:
        outcome = case.parse(httpx.Response(200, json=load(name, tno=secret)))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_unusable_amounts_made_of_a_secret_are_masked(cases: dict[str, Case], op: str) -> None:
    case = cases[op]
    name, _, _ = SUCCESS[op]
    for secret in case.forbidden:
        fields = {"amount": secret, "rem_mny": secret, "mod_mny": secret, "order_no": secret}
        outcome = case.parse(httpx.Response(200, json=load(name, **fields)))
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
    outcome = case.parse(_respond(status, case, json=answer))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("status", [200, 400, 401, 404, 429, 500, 502, 503])
def test_a_non_json_page_echoing_secrets_keeps_them_out(
    cases: dict[str, Case], op: str, status: int
) -> None:
    case = cases[op]
    outcome = case.parse(_respond(status, case, text=f"<html>{_echo(case)}</html>"))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_code_made_of_a_secret_is_masked(cases: dict[str, Case], op: str) -> None:
    case = cases[op]
    for secret in case.forbidden:
        for status in (200, 400):
            body = {"res_cd": secret, "res_msg": secret, "res_en_msg": secret}
            outcome = case.parse(httpx.Response(status, json=body))
            assert isinstance(outcome, Failed)
            _assert_clean(outcome, case)


# -- the window's return and requests refused before sending -------------------------------------


def test_a_failed_authentication_echoing_secrets_is_declined_cleanly(kcp: Kcp) -> None:
    text = "인증 실패 " + " ".join(f for v in EVERY_SECRET for f in forms(v))
    for code in ("3001", text):
        params = {**callback(), "res_cd": code, "res_msg": text}
        with pytest.raises(Declined) as caught:
            kcp.build_approve(approve_request(params))
        assert_no_secret(caught.value, (*OWN, ENC_DATA, ENC_INFO), declared=kcp.secrets)


@pytest.mark.parametrize("field", ["ordr_idxx", "tran_cd"])
def test_a_return_with_secrets_in_its_fields_is_refused_cleanly(kcp: Kcp, field: str) -> None:
    for secret in EVERY_SECRET:
        params = {**callback(), field: secret}
        with pytest.raises(PayfallbackError) as caught:
            kcp.build_approve(approve_request(params))
        assert_no_secret(caught.value, EVERY_SECRET, declared=kcp.secrets)


def test_refusals_before_sending_never_quote_request_secrets(kcp: Kcp) -> None:
    charge = charge_request()
    usd = Order(order_id="SUB-2001", amount=Money(amount=100, currency="USD"), name="x")
    refusals: list[Callable[[], object]] = [
        lambda: kcp.build_charge(charge_request(instrument_provider="nicepay")),
        lambda: kcp.build_charge(dataclasses.replace(charge, order=usd)),
        lambda: kcp.build_charge(dataclasses.replace(charge, attempt_id="x" * 41)),
        lambda: kcp.build_charge(charge_request(key=BATCH_KEY * 3)),
        lambda: kcp.build_approve(approve_request(order=usd)),
        lambda: kcp.build_lookup(lookup_request(tno=None)),
        lambda: kcp.build_cancel(cancel_request(amount=13000)),
    ]
    for refuse in refusals:
        with pytest.raises(InvalidRequest) as caught:
            refuse()
        assert_no_secret(caught.value, (*EVERY_SECRET, BATCH_KEY * 3), declared=kcp.secrets)


def test_bad_settings_quote_no_secret() -> None:
    settings: dict[str, Any]
    for settings in (
        {"private_key_password": "wrong-" + PASSWORD},
        {"cert_info": private_key_pem()},
        {"private_key": certificate_pem()},
    ):
        with pytest.raises(ConfigurationError) as caught:
            provider(**settings)
        assert_no_secret(caught.value, (*OWN, "wrong-" + PASSWORD))


def test_ready_hands_no_secret_to_the_page(kcp: Kcp) -> None:
    outcome = kcp.parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    assert_no_secret(outcome, OWN, declared=kcp.secrets)
