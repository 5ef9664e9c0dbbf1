"""The code table against what Inicis documents, and the safe reading of everything else.

Inicis documents success codes only ("0000" on the payment window, "00" on INIAPI; "이외
실패" — anything else is a failure, with no published table). Those are kept as data in
``documented_codes.json`` with their source; the table must hold exactly them, and every
other code must take the reading that can never charge twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from inicis_support import (
    approve_request,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    provider,
)
from payfallback_inicis import CODE_TABLE, CODES_SOURCE, INQUIRY_STATUS

from payfallback.adapter import Verdict
from payfallback.errors import Declined, OutcomeUnknown, ProviderUnavailable
from payfallback.provider import Failed, Operation, Status, TxnState

DOCUMENTED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "documented_codes.json").read_text(encoding="utf-8")
)
DOCUMENTED_CODES = sorted(row["code"] for row in DOCUMENTED["codes"])
DOCUMENTED_STATUS = sorted(row["status"] for row in DOCUMENTED["inquiry_status"])
INICIS = provider()

codes = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=6).filter(
    lambda c: c not in CODE_TABLE
)


def answer(code: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"resultCode": code, "resultMsg": "결과 메시지"})


def test_every_documented_code_is_in_the_table() -> None:
    assert [c for c in DOCUMENTED_CODES if c not in CODE_TABLE] == []


def test_the_table_holds_only_documented_codes() -> None:
    assert sorted(set(CODE_TABLE) - set(DOCUMENTED_CODES)) == []


def test_every_row_says_what_it_means_and_where_that_was_read() -> None:
    for code, rule in CODE_TABLE.items():
        assert rule.meaning, code
        assert rule.source == CODES_SOURCE
        assert rule.source.startswith("https://manual.inicis.com/")


def test_a_success_code_that_reaches_the_table_is_never_success_or_a_refusal() -> None:
    # It reaches the table only with an HTTP error or without a usable body.
    for rule in CODE_TABLE.values():
        assert rule.verdict_for(Operation.CHARGE) is Verdict.UNKNOWN
        assert rule.verdict_for(Operation.CANCEL) is Verdict.UNKNOWN
        assert rule.verdict_for(Operation.LOOKUP) is Verdict.UNAVAILABLE


def test_every_documented_inquiry_status_is_read() -> None:
    assert sorted(INQUIRY_STATUS) == DOCUMENTED_STATUS
    states = {}
    for status in DOCUMENTED_STATUS:
        body = load("inquiry_paid.json")
        body["status"] = status
        outcome = INICIS.parse_lookup(lookup_request(), httpx.Response(200, json=body))
        assert isinstance(outcome, Status), status
        states[status] = outcome.state
    assert states == {"0": TxnState.PAID, "1": TxnState.CANCELLED, "9": TxnState.NOT_FOUND}


@settings(max_examples=60)
@given(code=codes)
def test_any_other_code_on_a_billing_charge_is_unknown(code: str) -> None:
    outcome = INICIS.parse_charge(charge_request(), answer(code))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


@settings(max_examples=60)
@given(code=codes)
def test_any_other_code_on_a_refund_is_unknown(code: str) -> None:
    outcome = INICIS.parse_cancel(cancel_request(), answer(code))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


@settings(max_examples=60)
@given(code=codes)
def test_any_other_code_on_an_inquiry_is_a_failed_inquiry(code: str) -> None:
    outcome = INICIS.parse_lookup(lookup_request(), answer(code))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)


@settings(max_examples=60)
@given(code=codes)
def test_any_other_code_in_a_readable_approval_answer_is_a_decline(code: str) -> None:
    # "0000 성공, 이외 실패", as Inicis's own sample reads the approval answer.
    outcome = INICIS.parse_approve(approve_request(), answer(code))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, Declined)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("code", DOCUMENTED_CODES)
def test_a_success_code_with_an_http_error_is_never_success(code: str, status: int) -> None:
    for outcome in (
        INICIS.parse_charge(charge_request(), answer(code, status)),
        INICIS.parse_approve(approve_request(), answer(code, status)),
        INICIS.parse_cancel(cancel_request(), answer(code, status)),
    ):
        assert isinstance(outcome, Failed)
        # Even a 503: a success code says the call may have gone through.
        assert isinstance(outcome.error, OutcomeUnknown)
