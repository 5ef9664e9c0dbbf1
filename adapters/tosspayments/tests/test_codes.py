"""The code table against Toss's documented codes, kept as data in documented_codes.json.

A documented code the table lacks fails here; so does a table entry nobody documented (a
typo would otherwise sit there unused). Every documented (HTTP status, code) pair is then
parsed through the operation it belongs to, and the decisions that matter most for money
are pinned one by one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from payfallback_tosspayments import CODE_TABLE, STATUS_STATES, PaymentStatus, TossPayments
from payfallback_tosspayments._wire import _table
from tosspayments_support import ATTEMPT, AUTH, BILLING_KEY, SECRET, TRACE, documented, error

from payfallback.adapter import CodeRule, Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.provider import (
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Operation,
    Outcome,
    Status,
    TxnState,
)

DOCS = documented()

ERROR_OF_VERDICT: dict[Verdict, type[PayfallbackError]] = {
    Verdict.DECLINED: Declined,
    Verdict.UNAVAILABLE: ProviderUnavailable,
    Verdict.UNKNOWN: OutcomeUnknown,
    Verdict.IN_FLIGHT: RequestInFlight,
    Verdict.INVALID: InvalidRequest,
    Verdict.CONFIGURATION: ConfigurationError,
}


def _codes(section: dict[str, Any]) -> list[tuple[int, str]]:
    return [(row["status"], row["code"]) for row in section["codes"]]


def _all_documented() -> set[str]:
    codes = {code for section in DOCS["endpoints"].values() for _, code in _codes(section)}
    codes |= {code for _, code in _codes(DOCS["catalog"])}
    codes |= {code for _, code in _codes(DOCS["observed"])}
    return codes


def _endpoint_cases() -> list[Any]:
    cases = []
    for name, section in DOCS["endpoints"].items():
        ops = (
            [Operation.APPROVE, Operation.CHARGE, Operation.CANCEL]
            if name == "idempotency"
            else [Operation(section["operation"])]
        )
        for op in ops:
            for status, code in _codes(section):
                cases.append(pytest.param(op, status, code, id=f"{op.value}-{status}-{code}"))
    return cases


@pytest.fixture
def requests(
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[Operation, Any]:
    return {
        Operation.APPROVE: approve_req,
        Operation.CHARGE: charge_req,
        Operation.LOOKUP: lookup_req,
        Operation.CANCEL: cancel_req,
    }


def _parse(toss: TossPayments, op: Operation, req: Any, response: httpx.Response) -> Outcome:
    if op is Operation.APPROVE:
        return toss.parse_approve(req, response)
    if op is Operation.CHARGE:
        return toss.parse_charge(req, response)
    if op is Operation.CANCEL:
        return toss.parse_cancel(req, response)
    return toss.parse_lookup(req, response)


# -- completeness ----------------------------------------------------------------------------


def test_every_documented_code_is_classified() -> None:
    missing = sorted(_all_documented() - set(CODE_TABLE))
    assert not missing, f"documented Toss codes missing from CODE_TABLE: {missing}"


def test_the_table_holds_only_documented_codes() -> None:
    extra = sorted(set(CODE_TABLE) - _all_documented())
    assert not extra, f"CODE_TABLE codes no document lists (typo?): {extra}"


def test_the_documented_lists_are_the_ones_copied() -> None:
    sizes = {name: len(section["codes"]) for name, section in DOCS["endpoints"].items()}
    assert sizes == {
        "confirm": 47,
        "cancel": 30,
        "billing_charge": 22,
        "lookup": 7,
        "idempotency": 2,
    }
    assert len(DOCS["catalog"]["codes"]) >= 140


def test_every_documented_status_is_mapped() -> None:
    documented_statuses = set(DOCS["statuses"]["values"])
    assert {s.value for s in PaymentStatus} == documented_statuses
    assert set(STATUS_STATES) == set(PaymentStatus)


def test_terminal_statuses_never_ask_again() -> None:
    asks_again = {TxnState.IN_PROGRESS, TxnState.AWAITING_CUSTOMER}
    for status in (
        PaymentStatus.DONE,
        PaymentStatus.CANCELED,
        PaymentStatus.ABORTED,
        PaymentStatus.EXPIRED,
    ):
        assert STATUS_STATES[status] not in asks_again


def test_a_code_cannot_be_classified_twice() -> None:
    with pytest.raises(ValueError, match="COMMON_ERROR is classified twice"):
        _table(
            [("COMMON_ERROR", CodeRule(Verdict.UNKNOWN))],
            [("COMMON_ERROR", CodeRule(Verdict.DECLINED))],
        )


@pytest.mark.parametrize("code", list(CODE_TABLE))
def test_every_rule_is_a_kit_rule_with_a_meaning_and_a_source(code: str) -> None:
    rule = CODE_TABLE[code]
    assert isinstance(rule, CodeRule)
    assert rule.meaning
    assert "tosspayments.com" in rule.source or "[3rd-party]" in rule.source


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        CODE_TABLE["COMMON_ERROR"] = CodeRule(Verdict.DECLINED)  # type: ignore[index]


def test_a_decline_on_a_read_only_call_is_only_no_answer() -> None:
    # A lookup cannot have been declined: the decline rows say "no answer" there.
    declines = [code for code, rule in CODE_TABLE.items() if rule.verdict is Verdict.DECLINED]
    assert len(declines) > 50
    for code in declines:
        assert CODE_TABLE[code].verdict_for(Operation.LOOKUP) is Verdict.UNAVAILABLE
        assert CODE_TABLE[code].verdict_for(Operation.CANCEL) is Verdict.DECLINED


# -- every documented code, through the operation that returns it -------------------------


@pytest.mark.parametrize(("op", "status", "code"), _endpoint_cases())
def test_documented_code_parses_to_its_class(
    toss: TossPayments, requests: dict[Operation, Any], op: Operation, status: int, code: str
) -> None:
    outcome = _parse(toss, op, requests[op], error(status, code))
    verdict = CODE_TABLE[code].verdict_for(op)
    if verdict is Verdict.NOT_FOUND:
        assert outcome == Status(
            state=TxnState.NOT_FOUND, provider_txn_id=requests[op].provider_txn_id
        )
        return
    assert isinstance(outcome, Failed), f"{code} on {op.value} must never be a success"
    assert type(outcome.error) is ERROR_OF_VERDICT[verdict]
    assert outcome.error.provider_code == code
    assert outcome.error.provider_request_id == TRACE
    assert outcome.error.operation == op.value
    assert outcome.error.attempt_id == ATTEMPT
    shown = f"{outcome.error!s} {outcome.error!r} {outcome.error.context()}"
    for secret in (SECRET, BILLING_KEY, AUTH.removeprefix("Basic ")):
        assert secret not in shown
    if op is Operation.LOOKUP:
        # A read-only call cannot have moved money.
        assert not isinstance(outcome.error, OutcomeUnknown)


# -- the decisions that matter most, pinned ----------------------------------------------------

PINNED = [
    # confirm
    (Operation.APPROVE, 400, "ALREADY_PROCESSED_PAYMENT", OutcomeUnknown),
    (Operation.APPROVE, 409, "IDEMPOTENT_REQUEST_PROCESSING", RequestInFlight),
    (Operation.APPROVE, 400, "PROVIDER_ERROR", OutcomeUnknown),
    (Operation.APPROVE, 400, "CARD_PROCESSING_ERROR", OutcomeUnknown),
    (Operation.APPROVE, 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", OutcomeUnknown),
    (Operation.APPROVE, 500, "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", OutcomeUnknown),
    (Operation.APPROVE, 500, "UNKNOWN_PAYMENT_ERROR", OutcomeUnknown),
    (Operation.APPROVE, 403, "FORBIDDEN_CONSECUTIVE_REQUEST", OutcomeUnknown),
    (Operation.APPROVE, 403, "REJECT_CARD_COMPANY", Declined),
    (Operation.APPROVE, 403, "REJECT_CARD_PAYMENT", Declined),
    (Operation.APPROVE, 403, "REJECT_ACCOUNT_PAYMENT", Declined),
    (Operation.APPROVE, 400, "INVALID_STOPPED_CARD", Declined),
    (Operation.APPROVE, 400, "INVALID_CARD_EXPIRATION", Declined),
    (Operation.APPROVE, 403, "FDS_ERROR", Declined),
    (Operation.APPROVE, 400, "PAY_PROCESS_CANCELED", Declined),
    (Operation.APPROVE, 404, "NOT_FOUND_PAYMENT_SESSION", Declined),
    (Operation.APPROVE, 400, "NOT_AVAILABLE_PAYMENT", ProviderUnavailable),
    (Operation.APPROVE, 403, "NOT_AVAILABLE_BANK", ProviderUnavailable),
    (Operation.APPROVE, 400, "MAINTAINED_METHOD", ProviderUnavailable),
    (Operation.APPROVE, 401, "UNAUTHORIZED_KEY", ConfigurationError),
    (Operation.APPROVE, 400, "INVALID_API_KEY", ConfigurationError),
    (Operation.APPROVE, 403, "INCORRECT_BASIC_AUTH_FORMAT", ConfigurationError),
    (Operation.APPROVE, 403, "FORBIDDEN_REQUEST", ConfigurationError),
    (Operation.APPROVE, 400, "INVALID_REQUEST", InvalidRequest),
    (Operation.APPROVE, 400, "BELOW_MINIMUM_AMOUNT", InvalidRequest),
    (Operation.APPROVE, 404, "NOT_FOUND_PAYMENT", InvalidRequest),
    # billing charge
    (Operation.CHARGE, 400, "DUPLICATED_ORDER_ID", OutcomeUnknown),
    (Operation.CHARGE, 500, "FAILED_DB_PROCESSING", OutcomeUnknown),
    (Operation.CHARGE, 500, "FAILED_CARD_COMPANY_RESPONSE", OutcomeUnknown),
    (Operation.CHARGE, 409, "IDEMPOTENT_REQUEST_PROCESSING", RequestInFlight),
    (Operation.CHARGE, 400, "INVALID_BILL_KEY_REQUEST", Declined),
    (Operation.CHARGE, 400, "ALREADY_REMOVED_BILLING_KEY", Declined),
    (Operation.CHARGE, 400, "NOT_MATCHES_CUSTOMER_KEY", InvalidRequest),
    (Operation.CHARGE, 400, "NOT_SUPPORTED_METHOD", ConfigurationError),
    # cancel
    (Operation.CANCEL, 400, "ALREADY_CANCELED_PAYMENT", OutcomeUnknown),
    (Operation.CANCEL, 400, "ALREADY_REFUND_PAYMENT", OutcomeUnknown),
    (Operation.CANCEL, 403, "NOT_CANCELABLE_AMOUNT", OutcomeUnknown),
    (Operation.CANCEL, 400, "NOT_MATCHES_REFUNDABLE_AMOUNT", OutcomeUnknown),
    (Operation.CANCEL, 500, "FAILED_REFUND_PROCESS", OutcomeUnknown),
    (Operation.CANCEL, 409, "IDEMPOTENT_REQUEST_PROCESSING", RequestInFlight),
    (Operation.CANCEL, 403, "FORBIDDEN_CONSECUTIVE_REQUEST", ProviderUnavailable),
    (Operation.CANCEL, 403, "EXCEED_CANCEL_LIMIT", ProviderUnavailable),
    (Operation.CANCEL, 403, "NOT_AVAILABLE_BANK", ProviderUnavailable),
    (Operation.CANCEL, 403, "NOT_CANCELABLE_PAYMENT", Declined),
    (Operation.CANCEL, 403, "EXCEED_MAX_REFUND_DUE", Declined),
    (Operation.CANCEL, 400, "REFUND_REJECTED", Declined),
    (Operation.CANCEL, 403, "NOT_ALLOWED_PARTIAL_REFUND", InvalidRequest),
    (Operation.CANCEL, 400, "INVALID_REFUND_ACCOUNT_INFO", InvalidRequest),
    (Operation.CANCEL, 404, "NOT_FOUND_PAYMENT", InvalidRequest),
    (Operation.CANCEL, 401, "UNAUTHORIZED_KEY", ConfigurationError),
    # lookup
    (Operation.LOOKUP, 404, "NOT_FOUND", ProviderUnavailable),
    (Operation.LOOKUP, 403, "FORBIDDEN_CONSECUTIVE_REQUEST", ProviderUnavailable),
    (Operation.LOOKUP, 500, "FAILED_INTERNAL_SYSTEM_PROCESSING", ProviderUnavailable),
    (Operation.LOOKUP, 401, "UNAUTHORIZED_KEY", ConfigurationError),
    (Operation.LOOKUP, 403, "INCORRECT_BASIC_AUTH_FORMAT", ConfigurationError),
]


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=f"{case[0].value}-{case[2]}") for case in PINNED]
)
def test_pinned_classification(
    toss: TossPayments,
    requests: dict[Operation, Any],
    case: tuple[Operation, int, str, type[PayfallbackError]],
) -> None:
    op, status, code, expected = case
    outcome = _parse(toss, op, requests[op], error(status, code))
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is expected


def test_not_found_payment_on_lookup_is_the_answer_not_an_error(
    toss: TossPayments, lookup_by_order_req: LookupRequest
) -> None:
    outcome = toss.parse_lookup(lookup_by_order_req, error(404, "NOT_FOUND_PAYMENT"))
    assert outcome == Status(state=TxnState.NOT_FOUND)


# -- what the table does not know ------------------------------------------------------------

MONEY_MOVING_OPS = [Operation.APPROVE, Operation.CHARGE, Operation.CANCEL]


# 403 included: Toss answers 403 for outcomes of processing too (REJECT_CARD_COMPANY,
# FDS_ERROR, NOT_CANCELABLE_AMOUNT), so there it does not mean "refused before processing".
@pytest.mark.parametrize("op", MONEY_MOVING_OPS)
@pytest.mark.parametrize("status", [400, 403, 404, 409, 500, 502])
def test_an_unmapped_code_on_a_money_moving_call_is_unknown(
    toss: TossPayments, requests: dict[Operation, Any], op: Operation, status: int
) -> None:
    outcome = _parse(toss, op, requests[op], error(status, "SOMETHING_TOSS_ADDED_LATER", "새 에러"))
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is OutcomeUnknown
    assert outcome.error.provider_code == "SOMETHING_TOSS_ADDED_LATER"
    assert "새 에러" in outcome.error.message


@pytest.mark.parametrize("op", MONEY_MOVING_OPS)
def test_rate_limited_is_unavailable_whatever_the_code(
    toss: TossPayments, requests: dict[Operation, Any], op: Operation
) -> None:
    # 429 is answered before anything is processed; Retry-After is honoured.
    answer = error(429, "TOO_MANY_REQUESTS", "요청이 너무 많습니다.", **{"Retry-After": "7"})
    outcome = _parse(toss, op, requests[op], answer)
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is ProviderUnavailable
    assert outcome.error.retry_after == 7.0


@pytest.mark.parametrize(
    ("op", "status", "expected"),
    [
        (Operation.APPROVE, 502, OutcomeUnknown),
        (Operation.CHARGE, 504, OutcomeUnknown),
        (Operation.CANCEL, 500, OutcomeUnknown),
        (Operation.APPROVE, 503, ProviderUnavailable),
        (Operation.APPROVE, 400, InvalidRequest),
        (Operation.LOOKUP, 502, ProviderUnavailable),
        (Operation.LOOKUP, 401, ConfigurationError),
    ],
)
def test_a_body_without_a_code_falls_back_to_the_http_status(
    toss: TossPayments,
    requests: dict[Operation, Any],
    op: Operation,
    status: int,
    expected: type[PayfallbackError],
) -> None:
    answer = httpx.Response(status, text="<html><body>Bad Gateway</body></html>")
    outcome = _parse(toss, op, requests[op], answer)
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is expected
    assert outcome.error.provider == "tosspayments"


def test_an_unmapped_code_on_a_lookup_goes_by_http_status(
    toss: TossPayments, lookup_req: LookupRequest
) -> None:
    server = toss.parse_lookup(lookup_req, error(500, "SOMETHING_TOSS_ADDED_LATER"))
    client = toss.parse_lookup(lookup_req, error(400, "SOMETHING_TOSS_ADDED_LATER"))
    assert isinstance(server, Failed)
    assert type(server.error) is ProviderUnavailable
    assert isinstance(client, Failed)
    assert type(client.error) is InvalidRequest
