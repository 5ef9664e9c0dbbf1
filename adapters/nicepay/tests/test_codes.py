"""The code table: every documented resultCode mapped, and mapped safely, on every operation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nicepay_support import (
    approve_request,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    provider,
    void_request,
)
from payfallback_nicepay import CODE_TABLE, CODES_SOURCE
from payfallback_nicepay._wire import CANCEL_SUCCESS_CODES, SUCCESS_CODE

from payfallback.adapter import CodeRule, Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.provider import Cancelled, Failed, Operation, Outcome, Status, TxnState

DOCUMENTED: list[dict[str, str]] = json.loads(
    (Path(__file__).parent / "documented_codes.json").read_text(encoding="utf-8")
)["codes"]
DOCUMENTED_CODES = sorted({row["code"] for row in DOCUMENTED})

NICEPAY = provider()

Parse = Callable[[httpx.Response], Outcome]
PARSERS: dict[Operation, Parse] = {
    Operation.APPROVE: lambda r: NICEPAY.parse_approve(approve_request(), r),
    Operation.CHARGE: lambda r: NICEPAY.parse_charge(charge_request(), r),
    Operation.LOOKUP: lambda r: NICEPAY.parse_lookup(lookup_request(), r),
    Operation.CANCEL: lambda r: NICEPAY.parse_cancel(cancel_request(), r),
    Operation.VOID: lambda r: NICEPAY.parse_void(void_request(), r),
}
MONEY_MOVING = [Operation.APPROVE, Operation.CHARGE, Operation.CANCEL, Operation.VOID]


def code_answer(code: str, message: str = "", status: int = 200) -> httpx.Response:
    """The short error body NICEPAY sends: resultCode and resultMsg only."""
    return httpx.Response(status, json={"resultCode": code, "resultMsg": message})


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


# -- completeness -----------------------------------------------------------------------------


def test_the_documented_list_was_copied_whole() -> None:
    # common/code.md "API 응답코드": 483 rows, 479 distinct codes (four codes have two rows).
    assert len(DOCUMENTED) == 483
    assert len(DOCUMENTED_CODES) == 479


def test_every_documented_code_is_in_the_table() -> None:
    missing = [code for code in DOCUMENTED_CODES if code not in CODE_TABLE]
    assert missing == []


def test_the_table_holds_only_documented_codes() -> None:
    assert sorted(set(CODE_TABLE) - set(DOCUMENTED_CODES)) == []


def test_every_rule_carries_the_manuals_meaning_and_source() -> None:
    meanings: dict[str, list[str]] = {}
    for row in DOCUMENTED:
        text = " ".join(row["message"].split())
        if text not in meanings.setdefault(row["code"], []):
            meanings[row["code"]].append(text)
    wrong = [
        code
        for code, rule in CODE_TABLE.items()
        if not isinstance(rule, CodeRule)
        or rule.meaning != " / ".join(meanings[code])
        or rule.source != CODES_SOURCE
    ]
    assert wrong == []
    assert CODES_SOURCE.startswith("https://github.com/nicepayments/nicepay-manual/")


def test_only_0000_is_success_and_only_2001_2211_also_on_cancels() -> None:
    # Success is read before the table, with the payment object. In the table a success
    # code is out of place (an HTTP error, another call, no readable body): unknown.
    assert SUCCESS_CODE == "0000"
    assert sorted(CANCEL_SUCCESS_CODES) == ["0000", "2001", "2211"]
    for code in ("0000", "2001", "2211", "3001", "4000", "F200", "W000"):
        assert CODE_TABLE[code].verdict is Verdict.UNKNOWN, code


def test_the_table_cannot_be_changed_at_run_time() -> None:
    with pytest.raises(TypeError):
        CODE_TABLE["0000"] = CodeRule(Verdict.DECLINED)  # type: ignore[index]


# -- every code, every operation --------------------------------------------------------------


def expected(rule: CodeRule, op: Operation) -> type[PayfallbackError] | TxnState:
    """What a short ``{resultCode, resultMsg}`` answer must become, written independently of
    the adapter: the safety rules of DESIGN.md applied to each verdict of the table."""
    lookup = op is Operation.LOOKUP
    verdict = rule.verdict
    if verdict is Verdict.DECLINED:
        # A decline answering an inquiry says nothing about the transaction.
        return ProviderUnavailable if lookup else Declined
    if verdict is Verdict.UNAVAILABLE:
        return ProviderUnavailable
    if verdict is Verdict.UNKNOWN:
        # Includes success codes without the payment object: never success.
        return ProviderUnavailable if lookup else OutcomeUnknown
    if verdict is Verdict.NOT_FOUND:
        if lookup:
            return TxnState.NOT_FOUND
        # "Nothing to net-cancel" is no proof that nothing was charged.
        return OutcomeUnknown if op is Operation.VOID else InvalidRequest
    if verdict is Verdict.INVALID:
        return InvalidRequest
    assert verdict is Verdict.CONFIGURATION
    return ConfigurationError


@pytest.mark.parametrize("op", list(PARSERS))
def test_every_documented_code_maps_to_one_outcome_on_every_operation(op: Operation) -> None:
    wrong: list[str] = []
    for row in DOCUMENTED:
        code, message = row["code"], row["message"]
        outcome = PARSERS[op](code_answer(code, message))
        want = expected(CODE_TABLE[code], op)
        if isinstance(want, TxnState):
            ok = isinstance(outcome, Status) and outcome.state is want
        else:
            ok = isinstance(outcome, Failed) and type(outcome.error) is want
            if ok:
                assert isinstance(outcome, Failed)
                err = outcome.error
                ok = (err.provider_code, err.operation, err.provider) == (code, op.value, "nicepay")
        if not ok:
            wrong.append(f"{code}: {outcome!r}, expected {want!r}")
    assert wrong == []


@pytest.mark.parametrize("op", MONEY_MOVING)
@given(code=st.from_regex(r"\A[0-9A-Z]{4}\Z").filter(lambda c: c not in CODE_TABLE))
def test_an_unmapped_code_on_a_money_moving_call_is_unknown(op: Operation, code: str) -> None:
    error = error_of(PARSERS[op](code_answer(code, "새로운 오류")))
    assert isinstance(error, OutcomeUnknown)
    assert error.provider_code == code


@given(code=st.from_regex(r"\A[0-9A-Z]{4}\Z").filter(lambda c: c not in CODE_TABLE))
def test_an_unmapped_code_on_lookup_is_a_failed_inquiry(code: str) -> None:
    error = error_of(PARSERS[Operation.LOOKUP](code_answer(code)))
    assert isinstance(error, ProviderUnavailable)


@pytest.mark.parametrize("op", MONEY_MOVING)
def test_an_unmapped_code_with_a_full_paid_body_is_still_unknown(op: Operation) -> None:
    body = load("approve_paid.json", resultCode="Q123", resultMsg="?")
    assert isinstance(error_of(PARSERS[op](httpx.Response(200, json=body))), OutcomeUnknown)


# -- the decisions that matter most, pinned one by one ----------------------------------------


@pytest.mark.parametrize("code", ["A127", "U112", "P015", "2201", "A225", "U114", "2156", "I003"])
@pytest.mark.parametrize("op", [Operation.APPROVE, Operation.CHARGE])
def test_duplicates_are_unknown_and_settled_by_lookup(code: str, op: Operation) -> None:
    assert isinstance(error_of(PARSERS[op](code_answer(code))), OutcomeUnknown)


@pytest.mark.parametrize(
    "code", ["A299", "U303", "9002", "S999", "X003", "X004", "A401", "A226", "2000", "U504"]
)
def test_failures_part_way_are_unknown_on_money_moving_calls(code: str) -> None:
    for op in MONEY_MOVING:
        assert isinstance(error_of(PARSERS[op](code_answer(code))), OutcomeUnknown), op


@pytest.mark.parametrize("code", ["A246", "V003", "2159", "4008", "X002", "U508", "A400"])
def test_refusals_before_processing_are_unavailable(code: str) -> None:
    for op in MONEY_MOVING:
        assert isinstance(error_of(PARSERS[op](code_answer(code))), ProviderUnavailable), op


@pytest.mark.parametrize("code", ["3011", "3021", "3095", "I002", "A245", "U311", "P091", "F118"])
def test_customer_refusals_are_declined(code: str) -> None:
    assert isinstance(error_of(PARSERS[Operation.APPROVE](code_answer(code))), Declined)
    assert isinstance(error_of(PARSERS[Operation.CHARGE](code_answer(code))), Declined)


@pytest.mark.parametrize("code", ["U304", "U305", "U104", "U103", "A224", "U315", "A114", "A122"])
def test_key_and_merchant_problems_are_configuration_errors(code: str) -> None:
    for op, parse in PARSERS.items():
        assert isinstance(error_of(parse(code_answer(code))), ConfigurationError), op


@pytest.mark.parametrize("code", ["A118", "A251", "U107", "U126", "2012", "A214"])
def test_not_found_codes(code: str) -> None:
    assert PARSERS[Operation.LOOKUP](code_answer(code)) == Status(
        state=TxnState.NOT_FOUND, provider_status=code
    )
    assert isinstance(error_of(PARSERS[Operation.CANCEL](code_answer(code))), InvalidRequest)


@pytest.mark.parametrize("code", ["2001", "2211"])
def test_cancel_success_codes_with_the_payment_object_cancel(code: str) -> None:
    body = load("cancel_full.json", resultCode=code)
    outcome = PARSERS[Operation.CANCEL](httpx.Response(200, json=body))
    assert isinstance(outcome, Cancelled)
    voided = PARSERS[Operation.VOID](
        httpx.Response(200, json=load("netcancel.json", resultCode=code))
    )
    assert isinstance(voided, Cancelled)


@pytest.mark.parametrize("code", ["2001", "2211", "3001", "F200", "W000"])
def test_a_success_code_of_another_kind_never_approves(code: str) -> None:
    body = load("approve_paid.json", resultCode=code)
    for op in (Operation.APPROVE, Operation.CHARGE):
        assert isinstance(error_of(PARSERS[op](httpx.Response(200, json=body))), OutcomeUnknown)


@pytest.mark.parametrize("code", ["2013", "2015"])
def test_already_cancelled_is_unknown_for_cancel_and_void(code: str) -> None:
    for op in (Operation.CANCEL, Operation.VOID):
        assert isinstance(error_of(PARSERS[op](code_answer(code))), OutcomeUnknown)


def test_a_success_code_on_an_http_error_is_not_success() -> None:
    body: dict[str, Any] = load("approve_paid.json")
    error = error_of(PARSERS[Operation.APPROVE](httpx.Response(500, json=body)))
    assert isinstance(error, OutcomeUnknown)


def test_a_code_on_an_http_error_still_classifies() -> None:
    error = error_of(PARSERS[Operation.LOOKUP](code_answer("U304", "인증 실패", status=401)))
    assert isinstance(error, ConfigurationError)
    assert error.provider_code == "U304"
    assert PARSERS[Operation.LOOKUP](code_answer("A118", status=404)) == Status(
        state=TxnState.NOT_FOUND, provider_status="A118"
    )


def test_the_message_is_nicepays_text_and_says_which_call() -> None:
    error = error_of(PARSERS[Operation.CHARGE](code_answer("3021", "유효기간 오류")))
    assert error.message == "NICEPAY declined the payment: 유효기간 오류"
    assert str(error) == (
        "NICEPAY declined the payment: 유효기간 오류 (provider=nicepay, operation=charge, "
        "attempt=SUB-2001_1, code=3021)"
    )


def test_configuration_codes_say_what_to_check() -> None:
    error = error_of(PARSERS[Operation.APPROVE](code_answer("U304", "BASIC AUTHENTICATION 실패")))
    assert isinstance(error, ConfigurationError)
    assert error.message == (
        "NICEPAY rejected the merchant set-up: BASIC AUTHENTICATION 실패 — check the NICEPAY "
        "keys, MID contract and IP allow-list"
    )
