"""The code table: every documented res_cd mapped, and mapped safely, on every operation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kcp_support import (
    approve_request,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    provider,
)
from payfallback_kcp import CODE_TABLE, CODES_SOURCE
from payfallback_kcp._wire import SUCCESS_CODE

from payfallback.adapter import Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.provider import Approved, Cancelled, Failed, Operation, Outcome, Status

DATA: dict[str, Any] = json.loads(
    (Path(__file__).parent / "documented_codes.json").read_text(encoding="utf-8")
)
DOCUMENTED: list[dict[str, str]] = DATA["codes"]
DOCUMENTED_CODES = sorted({row["code"] for row in DOCUMENTED})
SUCCESS_CODES = {row["code"] for row in DATA["success"]}

KCP = provider()

Parse = Callable[[httpx.Response], Outcome]
PARSERS: dict[Operation, Parse] = {
    Operation.APPROVE: lambda r: KCP.parse_approve(approve_request(), r),
    Operation.CHARGE: lambda r: KCP.parse_charge(charge_request(), r),
    Operation.LOOKUP: lambda r: KCP.parse_lookup(lookup_request(), r),
    Operation.CANCEL: lambda r: KCP.parse_cancel(cancel_request(amount=5000), r),
}
MONEY_MOVING = (Operation.APPROVE, Operation.CHARGE, Operation.CANCEL)

#: The error each verdict becomes on a money-moving call and on the inquiry.
ON_MONEY: dict[Verdict, type[PayfallbackError]] = {
    Verdict.DECLINED: Declined,
    Verdict.UNAVAILABLE: ProviderUnavailable,
    Verdict.UNKNOWN: OutcomeUnknown,
    Verdict.INVALID: InvalidRequest,
    Verdict.CONFIGURATION: ConfigurationError,
}


def code_answer(code: str, message: str = "", status: int = 200) -> httpx.Response:
    """KCP's error answer: res_cd and res_msg (and the English message) in a 200."""
    return httpx.Response(status, json={"res_cd": code, "res_msg": message, "res_en_msg": message})


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def test_the_documented_list_and_the_table_agree() -> None:
    missing = sorted(set(DOCUMENTED_CODES) - set(CODE_TABLE))
    undocumented = sorted(set(CODE_TABLE) - set(DOCUMENTED_CODES))
    assert not missing, f"documented codes the table lacks: {missing}"
    assert not undocumented, f"table rows nobody documented: {undocumented}"
    assert {SUCCESS_CODE} == SUCCESS_CODES
    assert SUCCESS_CODE not in CODE_TABLE


def test_every_row_says_what_it_means_and_where_it_was_read() -> None:
    sources = {row["code"]: row["source"] for row in DOCUMENTED}
    for code, rule in CODE_TABLE.items():
        assert rule.meaning, code
        assert rule.source.startswith(("https://", "http://")), code
        assert rule.source == sources[code], code
    assert CODES_SOURCE.startswith("https://developer.kcp.co.kr/")


@pytest.mark.parametrize("code", DOCUMENTED_CODES)
@pytest.mark.parametrize("op", list(PARSERS))
def test_every_documented_code_parses_to_its_verdict(code: str, op: Operation) -> None:
    rule = CODE_TABLE[code]
    outcome = PARSERS[op](code_answer(code, "메시지"))
    error = error_of(outcome)
    assert error.provider_code == code
    verdict = rule.verdict_for(op)
    if op is Operation.LOOKUP:
        # The inquiry moves no money: a "may have acted" means "try later" there.
        assert not isinstance(error, OutcomeUnknown)
        assert type(error) is ON_MONEY.get(verdict, ProviderUnavailable)
    else:
        assert type(error) is ON_MONEY[verdict]


@pytest.mark.parametrize("code", DOCUMENTED_CODES)
def test_no_documented_code_is_success_and_declines_say_nothing_on_a_lookup(code: str) -> None:
    rule = CODE_TABLE[code]
    for op in MONEY_MOVING:
        assert not isinstance(PARSERS[op](code_answer(code)), Approved | Cancelled)
    if rule.verdict is Verdict.DECLINED:
        assert rule.read is Verdict.UNAVAILABLE


_UNKNOWN_CODES = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4)


@given(code=_UNKNOWN_CODES)
def test_a_code_nobody_documented_is_unknown_on_money_and_try_later_on_a_lookup(
    code: str,
) -> None:
    if code in CODE_TABLE or code == SUCCESS_CODE:
        return
    for op in MONEY_MOVING:
        assert isinstance(error_of(PARSERS[op](code_answer(code))), OutcomeUnknown)
    assert isinstance(error_of(PARSERS[Operation.LOOKUP](code_answer(code))), ProviderUnavailable)


def test_the_success_code_is_success_only_with_what_the_router_needs() -> None:
    assert isinstance(
        PARSERS[Operation.APPROVE](httpx.Response(200, json=load("approve_paid.json"))), Approved
    )
    assert isinstance(
        PARSERS[Operation.LOOKUP](httpx.Response(200, json=load("lookup_paid.json"))), Status
    )
    # "0000" alone carries no tno and no amount: KCP may have approved — unknown.
    for op in (Operation.APPROVE, Operation.CHARGE):
        assert isinstance(error_of(PARSERS[op](code_answer(SUCCESS_CODE))), OutcomeUnknown)
    # A success code on a 5xx is not success.
    assert isinstance(
        error_of(PARSERS[Operation.CHARGE](code_answer(SUCCESS_CODE, status=500))), OutcomeUnknown
    )
