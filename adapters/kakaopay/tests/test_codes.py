"""The code table: complete against the documented codes, and safe where it knows nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from kakaopay_support import TID, documented
from payfallback_kakaopay import KakaoPay, KakaoStatus
from payfallback_kakaopay._wire import CODES, ERROR_CODES, METHOD_RESULT_CODES, STATUS_STATES

from payfallback.adapter import CodeRule, Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import Money
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Operation,
    Outcome,
    Proof,
    ReadyRequest,
    Status,
    TxnState,
)

Parse = Callable[[httpx.Response], Outcome]

ERROR_CLASS: dict[Verdict, type[PayfallbackError]] = {
    Verdict.DECLINED: Declined,
    Verdict.UNAVAILABLE: ProviderUnavailable,
    Verdict.UNKNOWN: OutcomeUnknown,
    Verdict.INVALID: InvalidRequest,
    Verdict.CONFIGURATION: ConfigurationError,
}


@pytest.fixture
def parsers(
    kakao: KakaoPay,
    ready_req: ReadyRequest,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[str, Parse]:
    return {
        "ready": lambda r: kakao.parse_ready(ready_req, r),
        "approve": lambda r: kakao.parse_approve(approve_req, r),
        "charge": lambda r: kakao.parse_charge(charge_req, r),
        "lookup": lambda r: kakao.parse_lookup(lookup_req, r),
        "cancel": lambda r: kakao.parse_cancel(cancel_req, r),
    }


ERRORS = documented("error_codes")
METHODS = documented("method_result_codes")
STATUSES = documented("statuses")
MONEY_MOVING = ("approve", "charge", "cancel")
READ_ONLY = ("ready", "lookup")


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), f"expected a failure, got {outcome!r}"
    return outcome.error


def kakao_error(code: Any, method: str | None = None, *, legacy: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"code": code, "msg": "some message"}
        if legacy
        else {"error_code": code, "error_message": "some message"}
    )
    if method is not None:
        body["extras"] = {"method_result_code": method, "method_result_message": "detail"}
    return body


# -- completeness ------------------------------------------------------------------------------


def test_every_documented_error_code_is_in_the_table() -> None:
    missing = [code for code in ERRORS if code not in ERROR_CODES]
    assert not missing, f"documented but unmapped: {missing}"


def test_every_documented_method_result_code_is_in_the_table() -> None:
    missing = [code for code in METHODS if code not in METHOD_RESULT_CODES]
    assert not missing, f"documented but unmapped: {missing}"


def test_the_table_holds_only_documented_codes() -> None:
    # A code in the table with no source is a guess; keep the data and the table in step.
    assert set(ERROR_CODES) == set(ERRORS)
    assert set(METHOD_RESULT_CODES) == set(METHODS)
    # The kit classifies with one table; the two kinds of code never share a key.
    assert set(CODES) == set(ERRORS) | set(METHODS)
    assert not set(ERRORS) & set(METHODS)


@pytest.mark.parametrize("code", list(CODES))
def test_every_rule_is_a_kit_rule_with_a_meaning_and_a_source(code: str) -> None:
    rule = CODES[code]
    assert isinstance(rule, CodeRule)
    assert rule.meaning
    assert rule.source


def test_every_documented_status_is_mapped() -> None:
    documented = list(STATUSES)
    assert len(documented) == 13
    assert [s.value for s in KakaoStatus] == documented
    assert set(STATUS_STATES) == set(KakaoStatus)


# -- each documented code, through the parsers -----------------------------------------------


@pytest.mark.parametrize("code", list(ERRORS))
@pytest.mark.parametrize("op", MONEY_MOVING + READ_ONLY)
def test_each_documented_code_becomes_its_verdict(
    parsers: dict[str, Parse], code: str, op: str
) -> None:
    verdict = ERROR_CODES[code].verdict_for(Operation(op))
    response = httpx.Response(400, json=kakao_error(int(code)), headers={"x-request-id": "rq-1"})
    error = error_of(parsers[op](response))
    assert type(error) is ERROR_CLASS[verdict]
    assert error.provider_code == code
    assert error.provider_request_id == "rq-1"
    assert error.provider == "kakaopay"
    assert error.operation == op


@pytest.mark.parametrize(
    ("method", "op", "expected"),
    [
        ("LACK_BALANCE", "approve", Declined),
        ("LACK_BALANCE", "charge", Declined),
        ("8326", "approve", Declined),
        # Another request on the same tid/sid may be ours, still running: never a decline.
        ("USER_LOCKED", "approve", OutcomeUnknown),
        ("USER_LOCKED", "charge", OutcomeUnknown),
        ("USER_LOCKED", "cancel", OutcomeUnknown),
        ("USER_LOCKED", "ready", ProviderUnavailable),
        # An approval failure whose reason we cannot read is settled by a lookup.
        ("SOMETHING_NEW", "approve", OutcomeUnknown),
        ("SOMETHING_NEW", "charge", OutcomeUnknown),
        (None, "approve", OutcomeUnknown),
        (None, "ready", ProviderUnavailable),
    ],
)
def test_approval_failure_by_method_result(
    parsers: dict[str, Parse], method: str | None, op: str, expected: type[PayfallbackError]
) -> None:
    error = error_of(parsers[op](httpx.Response(400, json=kakao_error(-780, method))))
    assert type(error) is expected
    assert error.provider_code == (f"-780/{method}" if method else "-780")


@pytest.mark.parametrize("payload_name", ["error_user_locked", "legacy_error_user_locked"])
def test_user_locked_payloads_of_both_generations(
    parsers: dict[str, Parse], payload_name: str, payload: Callable[[str], dict[str, Any]]
) -> None:
    error = error_of(parsers["approve"](httpx.Response(400, json=payload(payload_name))))
    assert isinstance(error, OutcomeUnknown)
    assert "진행중인 거래가 있습니다" in error.message


def test_declined_payload(
    parsers: dict[str, Parse], payload: Callable[[str], dict[str, Any]]
) -> None:
    error = error_of(parsers["approve"](httpx.Response(400, json=payload("error_lack_balance"))))
    assert isinstance(error, Declined)
    assert error.provider_code == "-780/LACK_BALANCE"


# -- what the table does not know ---------------------------------------------------------------


@pytest.mark.parametrize("op", MONEY_MOVING)
@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("status", [400, 403, 409, 500])
def test_an_unmapped_code_on_a_money_moving_call_is_unknown(
    parsers: dict[str, Parse], op: str, legacy: bool, status: int
) -> None:
    response = httpx.Response(status, json=kakao_error(-799, legacy=legacy))
    error = error_of(parsers[op](response))
    # The body carried a code we do not know; that decides, whatever the HTTP status.
    assert isinstance(error, OutcomeUnknown)
    assert error.provider_code == "-799"


@pytest.mark.parametrize("op", MONEY_MOVING)
@pytest.mark.parametrize("status", [429, 503])
def test_an_unmapped_code_with_a_not_processed_status_is_unavailable(
    parsers: dict[str, Parse], op: str, status: int
) -> None:
    # The kit's shared rule: 429 and 503 say "not processed, come back later" by
    # themselves, whatever code the body carries.
    response = httpx.Response(status, json=kakao_error(-799), headers={"retry-after": "3"})
    error = error_of(parsers[op](response))
    assert isinstance(error, ProviderUnavailable)
    assert error.provider_code == "-799"
    assert error.retry_after == 3.0


@pytest.mark.parametrize("op", MONEY_MOVING)
def test_an_unmapped_method_code_alone_is_unknown(parsers: dict[str, Parse], op: str) -> None:
    body = {"extras": {"method_result_code": "NEW_REASON", "method_result_message": "?"}}
    error = error_of(parsers[op](httpx.Response(400, json=body)))
    assert isinstance(error, OutcomeUnknown)
    assert error.provider_code == "NEW_REASON"


@pytest.mark.parametrize("op", MONEY_MOVING)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, OutcomeUnknown),  # no Kakao body: cannot prove nothing moved
        (404, OutcomeUnknown),
        (500, OutcomeUnknown),
        (502, OutcomeUnknown),
        (503, ProviderUnavailable),  # central rule: 503 without a code is "not processed"
        (429, ProviderUnavailable),
        (401, ConfigurationError),
        (403, ConfigurationError),
    ],
)
def test_money_moving_call_without_a_code_falls_back_safely(
    parsers: dict[str, Parse], op: str, status: int, expected: type[PayfallbackError]
) -> None:
    error = error_of(parsers[op](httpx.Response(status, text="<html>gateway</html>")))
    assert type(error) is expected


def test_retry_after_is_kept_on_a_rate_limit(parsers: dict[str, Parse]) -> None:
    error = error_of(parsers["approve"](httpx.Response(429, headers={"retry-after": "7"})))
    assert isinstance(error, ProviderUnavailable)
    assert error.retry_after == 7.0


@pytest.mark.parametrize("op", MONEY_MOVING + READ_ONLY)
@pytest.mark.parametrize("legacy", [False, True])
def test_401_is_a_configuration_error_whatever_the_body(
    parsers: dict[str, Parse], op: str, legacy: bool
) -> None:
    for body in (kakao_error(-401, legacy=legacy), kakao_error(-799, legacy=legacy), None):
        response = (
            httpx.Response(401, json=body) if body is not None else httpx.Response(401, text="")
        )
        assert isinstance(error_of(parsers[op](response)), ConfigurationError)


@pytest.mark.parametrize(
    ("op", "status", "expected"),
    [
        ("ready", 400, InvalidRequest),
        ("ready", 500, ProviderUnavailable),
        ("lookup", 400, InvalidRequest),
        ("lookup", 500, ProviderUnavailable),
        ("lookup", 503, ProviderUnavailable),
    ],
)
def test_an_unmapped_code_on_a_read_only_call_uses_the_http_fallback(
    parsers: dict[str, Parse], op: str, status: int, expected: type[PayfallbackError]
) -> None:
    error = error_of(parsers[op](httpx.Response(status, json=kakao_error(-799))))
    assert type(error) is expected
    assert error.provider_code == "-799"


# -- statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(KakaoStatus))
def test_each_status_maps_to_its_state(
    parsers: dict[str, Parse], status: KakaoStatus, payload: Callable[[str], dict[str, Any]]
) -> None:
    body = payload("order_success")
    body["status"] = status.value
    outcome = parsers["lookup"](httpx.Response(200, json=body))
    assert isinstance(outcome, Status)
    assert outcome.state is STATUS_STATES[status]
    assert outcome.provider_status == status.value
    assert outcome.provider_txn_id == TID


def test_not_paid_only_where_no_money_can_have_moved() -> None:
    not_paid = {s for s, state in STATUS_STATES.items() if state is TxnState.NOT_PAID}
    assert not_paid == {
        KakaoStatus.FAIL_AUTH_PASSWORD,
        KakaoStatus.QUIT_PAYMENT,
        KakaoStatus.FAIL_PAYMENT,
        KakaoStatus.ISSUED_SID,
    }
    # The customer authenticated (method chosen / password done): Kakao has sent the
    # pg_token, our approve may be in flight, so "ask again" — never "not paid" and never
    # "waiting for the customer" (which closes an abandoned checkout as nothing moved).
    in_progress = {s for s, state in STATUS_STATES.items() if state is TxnState.IN_PROGRESS}
    assert in_progress == {KakaoStatus.SELECT_METHOD, KakaoStatus.AUTH_PASSWORD}
    awaiting = {s for s, state in STATUS_STATES.items() if state is TxnState.AWAITING_CUSTOMER}
    assert awaiting == {
        KakaoStatus.READY,
        KakaoStatus.SEND_TMS,
        KakaoStatus.OPEN_PAYMENT,
        KakaoStatus.ARS_WAITING,
    }
    assert STATUS_STATES[KakaoStatus.PART_CANCEL_PAYMENT] is TxnState.PAID


def test_the_record_is_the_only_proof_kakao_offers(kakao: KakaoPay) -> None:
    caps = kakao.capabilities
    assert caps.proofs == (Proof.RECORD,)
    assert caps.settle_window is None
    assert caps.failed_record_is_final is True


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("FAIL_AUTH_PASSWORD", TxnState.NOT_PAID),
        ("QUIT_PAYMENT", TxnState.NOT_PAID),
        ("FAIL_PAYMENT", TxnState.NOT_PAID),
        ("SELECT_METHOD", TxnState.IN_PROGRESS),
        ("AUTH_PASSWORD", TxnState.IN_PROGRESS),
    ],
)
def test_a_record_after_a_lost_approve(
    parsers: dict[str, Parse],
    payload: Callable[[str], dict[str, Any]],
    status: str,
    state: TxnState,
) -> None:
    # What the order inquiry answers for a tid whose approve never committed.
    body = payload("order_ready")
    body["status"] = status
    outcome = parsers["lookup"](httpx.Response(200, json=body))
    assert outcome == Status(
        state=state, provider_txn_id=TID, amount=Money(amount=2200), provider_status=status
    )


def test_an_undocumented_status_is_never_concluded(
    parsers: dict[str, Parse], payload: Callable[[str], dict[str, Any]]
) -> None:
    for value in ("FAIL_SOMETHING_NEW", "SUCCESS_SOMETHING_NEW", "pending"):
        body = payload("order_success")
        body["status"] = value
        error = error_of(parsers["lookup"](httpx.Response(200, json=body)))
        assert isinstance(error, OutcomeUnknown)
        assert error.provider_code == value
