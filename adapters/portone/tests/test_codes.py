"""The code tables: every documented status and error type maps to exactly one outcome.

The documented error types come from the OpenAPI excerpt itself (each operation's error
unions, with the HTTP status each error schema declares); the few codes documented
elsewhere are data in ``documented_codes.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from payfallback_portone import InstantChargeRequest, KeyInCard, PortOne
from payfallback_portone._wire import (
    CODES,
    LOOKUP_STATES,
    PG_CODE_TABLES,
    CancellationStatus,
    PaymentStatus,
    classify_pg_code,
)
from portone_support import (
    API_SECRET,
    ATTEMPT,
    BILLING_KEY,
    CARD_NUMBER,
    KEY,
    SPEC_OPERATIONS,
    documented,
    error_types,
    load,
    respond,
)
from pydantic import SecretStr

from payfallback.adapter import Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.models import Money
from payfallback.provider import (
    Approved,
    ApproveRequest,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Operation,
    Outcome,
    Status,
    TxnState,
    is_failure_of_provider,
)

Parse = Callable[[httpx.Response], Outcome]
MONEY_TABLES = ("approve", "charge", "instant", "cancel")
#: Our parser (documented operation) → the operation its errors name.
OPERATIONS = {
    "approve": Operation.APPROVE,
    "lookup": Operation.LOOKUP,
    "charge": Operation.CHARGE,
    "instant": Operation.CHARGE,
    "cancel": Operation.CANCEL,
}
#: The class names documented_codes.json uses → the kit's verdicts.
VERDICTS = {
    "Declined": Verdict.DECLINED,
    "ProviderUnavailable": Verdict.UNAVAILABLE,
    "ConfigurationError": Verdict.CONFIGURATION,
    "InvalidRequest": Verdict.INVALID,
    "OutcomeUnknown": Verdict.UNKNOWN,
}


@pytest.fixture
def parsers(
    portone: PortOne,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[str, Parse]:
    instant = InstantChargeRequest(
        attempt_id=ATTEMPT,
        order=charge_req.order,
        card=KeyInCard(number=SecretStr(CARD_NUMBER), expiry_year="29", expiry_month="12"),
        idempotency_key=KEY,
    )
    return {
        "approve": lambda r: portone.parse_approve(approve_req, r),
        "lookup": lambda r: portone.parse_lookup(lookup_req, r),
        "charge": lambda r: portone.parse_charge(charge_req, r),
        "instant": lambda r: portone.parse_instant_charge(instant, r),
        "cancel": lambda r: portone.parse_cancel(cancel_req, r),
    }


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def documented_error_types(openapi: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(table, error type, HTTP status) for every error the spec and the docs list."""
    out = [
        (table, error_type, status)
        for table, operation_id in SPEC_OPERATIONS.items()
        for error_type, status in error_types(openapi, operation_id).items()
    ]
    overview = documented()["overview_page_error_types"]
    out += [(t, code, 409) for t in overview["applies_to"] for code in overview["codes"]]
    return out


# -- completeness -----------------------------------------------------------------------------


def test_the_spec_documents_what_we_expect_to_map(openapi: dict[str, Any]) -> None:
    # Guards the extraction itself: these are the unions the excerpt must expose.
    assert set(error_types(openapi, "getPayment")) == {
        "FORBIDDEN",
        "INVALID_REQUEST",
        "PAYMENT_NOT_FOUND",
        "UNAUTHORIZED",
    }
    assert error_types(openapi, "payWithBillingKey")["PG_PROVIDER"] == 502
    assert error_types(openapi, "cancelPayment")["PAYMENT_ALREADY_CANCELLED"] == 409
    counts = {op: len(error_types(openapi, op)) for op in set(SPEC_OPERATIONS.values())}
    assert counts == {
        "getPayment": 4,
        "payWithBillingKey": 13,
        "payInstantly": 11,
        "cancelPayment": 14,
    }


def test_every_documented_error_type_is_in_the_table(openapi: dict[str, Any]) -> None:
    missing = [
        f"{table}: {error_type}"
        for table, error_type, _ in documented_error_types(openapi)
        if error_type not in CODES
    ]
    assert missing == []


def test_the_table_maps_nothing_undocumented(openapi: dict[str, Any]) -> None:
    known = {e for _, e, _ in documented_error_types(openapi)}
    assert sorted(set(CODES) - known) == []


def test_every_row_says_what_it_means_and_where_that_was_read() -> None:
    for code, rule in CODES.items():
        assert rule.meaning, code
        assert rule.source.startswith("https://developers.portone.io/"), code
    for family, table in PG_CODE_TABLES.items():
        for code, rule in table.items():
            assert rule.meaning, (family, code)
            assert rule.source.startswith("https://"), (family, code)


def test_every_documented_payment_status_is_mapped(openapi: dict[str, Any]) -> None:
    in_spec = set(openapi["components"]["schemas"]["Payment"]["discriminator"]["mapping"])
    in_docs = set(documented()["payment_statuses"]["codes"])
    assert {"PAY_PENDING", "PENDING"} <= in_spec | in_docs  # both spellings
    for status in in_spec | in_docs:
        assert PaymentStatus(status) in LOOKUP_STATES


def test_every_documented_cancellation_status_is_known(openapi: dict[str, Any]) -> None:
    mapping = openapi["components"]["schemas"]["PaymentCancellation"]["discriminator"]["mapping"]
    assert {CancellationStatus(s) for s in mapping} == set(CancellationStatus)


def test_documented_pg_codes_map_as_the_pg_describes() -> None:
    pg = documented()["pg_codes"]
    for family in ("TOSSPAYMENTS", "NICE"):
        for code, expected in pg[family].items():
            rule = PG_CODE_TABLES[family].get(code)
            assert rule is not None, (family, code)
            assert rule.verdict is VERDICTS[expected], (family, code)


# -- every documented error, through the parser ------------------------------------------------


def error_class(verdict: Verdict, operation: Operation) -> type[PayfallbackError]:
    """The error class a verdict becomes on an operation (the kit's documented mapping)."""
    money = operation is not Operation.LOOKUP
    return {
        Verdict.DECLINED: Declined,
        Verdict.UNAVAILABLE: ProviderUnavailable,
        Verdict.UNKNOWN: OutcomeUnknown if money else ProviderUnavailable,
        Verdict.IN_FLIGHT: RequestInFlight if money else ProviderUnavailable,
        Verdict.NOT_FOUND: InvalidRequest,
        Verdict.INVALID: InvalidRequest,
        Verdict.CONFIGURATION: ConfigurationError,
    }[verdict]


#: The answers that decide money, pinned here independently of the table.
PINNED: dict[tuple[str, str], type[PayfallbackError]] = {
    ("approve", "PAYMENT_NOT_FOUND"): Declined,
    ("cancel", "PAYMENT_NOT_FOUND"): InvalidRequest,
    ("charge", "ALREADY_PAID"): OutcomeUnknown,
    ("instant", "ALREADY_PAID"): OutcomeUnknown,
    ("charge", "BILLING_KEY_ALREADY_DELETED"): Declined,
    ("charge", "BILLING_KEY_NOT_FOUND"): InvalidRequest,
    ("charge", "IDEMPOTENCY_OUTSTANDING_REQUEST"): RequestInFlight,
    ("instant", "IDEMPOTENCY_OUTSTANDING_REQUEST"): RequestInFlight,
    ("cancel", "IDEMPOTENCY_OUTSTANDING_REQUEST"): RequestInFlight,
    ("cancel", "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN"): OutcomeUnknown,
    ("cancel", "PAYMENT_ALREADY_CANCELLED"): OutcomeUnknown,
    ("cancel", "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT"): InvalidRequest,
    ("charge", "UNAUTHORIZED"): ConfigurationError,
    ("lookup", "FORBIDDEN"): ConfigurationError,
    ("charge", "CHANNEL_NOT_FOUND"): ConfigurationError,
}


def test_each_documented_error_parses_to_its_class(
    openapi: dict[str, Any], parsers: dict[str, Parse]
) -> None:
    seen: set[tuple[str, str]] = set()
    for table, error_type, status in documented_error_types(openapi):
        body: dict[str, Any] = {"type": error_type, "message": f"{error_type} happened"}
        if error_type == "PG_PROVIDER":
            body |= {"pgCode": "REJECT_CARD_COMPANY", "pgMessage": "[RC02] 한도초과"}
        outcome = parsers[table](respond(status, body, **{"x-request-id": "req-7"}))
        operation = OPERATIONS[table]
        verdict = CODES[error_type].verdict_for(operation)
        if verdict is Verdict.NOT_FOUND and operation is Operation.LOOKUP:
            assert outcome == Status(state=TxnState.NOT_FOUND, provider_status=error_type)
            continue
        error = error_of(outcome)
        wanted = Declined if error_type == "PG_PROVIDER" else error_class(verdict, operation)
        assert type(error) is wanted, (table, error_type, error)
        if (table, error_type) in PINNED:
            assert type(error) is PINNED[table, error_type], (table, error_type)
            seen.add((table, error_type))
        assert error.provider == "portone"
        assert error.operation == ("charge" if table == "instant" else table)
        assert error.attempt_id == ATTEMPT
        assert error.provider_request_id == "req-7"
        assert error.provider_code is not None
        assert error.provider_code.startswith(error_type)
    assert seen == set(PINNED)  # every pinned answer is documented and was parsed


@pytest.mark.parametrize("table", MONEY_TABLES)
@pytest.mark.parametrize("status", [400, 404, 409, 500, 502])
def test_an_unmapped_error_type_on_a_money_moving_call_is_unknown(
    parsers: dict[str, Parse], table: str, status: int
) -> None:
    outcome = parsers[table](respond(status, {"type": "SOMETHING_NEW", "message": "새 오류"}))
    error = error_of(outcome)
    assert type(error) is OutcomeUnknown
    assert error.provider_code == "SOMETHING_NEW"


@pytest.mark.parametrize("table", MONEY_TABLES)
def test_http_status_explains_throttling_even_for_unknown_types(
    parsers: dict[str, Parse], table: str
) -> None:
    limited = error_of(
        parsers[table](respond(429, {"type": "TOO_MANY_REQUESTS"}, **{"retry-after": "7"}))
    )
    assert type(limited) is ProviderUnavailable
    assert limited.retry_after == 7.0
    # PortOne's documented 401 type is a configuration error on every call ...
    unauthorized = error_of(parsers[table](respond(401, load("error_unauthorized"))))
    assert type(unauthorized) is ConfigurationError
    assert "V2 API secret" in unauthorized.message  # the hint


@pytest.mark.parametrize("table", MONEY_TABLES)
def test_an_unknown_type_with_401_on_a_money_moving_call_is_unknown(
    parsers: dict[str, Parse], table: str
) -> None:
    # ... but a type nobody documents is the kit's rule: on a money-moving call only 429
    # and 503 say "not processed" by themselves.
    error = error_of(parsers[table](respond(401, {"type": "EXPIRED_SECRET"})))
    assert type(error) is OutcomeUnknown
    assert error.provider_code == "EXPIRED_SECRET"
    lookup = error_of(parsers["lookup"](respond(401, {"type": "EXPIRED_SECRET"})))
    assert type(lookup) is ConfigurationError


@pytest.mark.parametrize("table", MONEY_TABLES)
def test_a_bare_5xx_on_a_money_moving_call_is_unknown(
    parsers: dict[str, Parse], table: str
) -> None:
    assert type(error_of(parsers[table](respond(500, "Internal Server Error")))) is OutcomeUnknown
    assert type(error_of(parsers[table](respond(503, "busy")))) is ProviderUnavailable


def test_lookup_falls_back_to_the_http_status(parsers: dict[str, Parse]) -> None:
    assert type(error_of(parsers["lookup"](respond(400, {"type": "NEW_TYPE"})))) is InvalidRequest
    assert type(error_of(parsers["lookup"](respond(500, "oops")))) is ProviderUnavailable
    assert type(error_of(parsers["lookup"](respond(200, "not json")))) is ProviderUnavailable


def test_a_replay_while_the_first_request_runs_is_unknown_with_its_wait(
    parsers: dict[str, Parse],
) -> None:
    body = load("error_idempotency_outstanding")
    for table in ("charge", "instant", "cancel"):
        error = error_of(parsers[table](respond(409, body, **{"retry-after": "2"})))
        assert type(error) is RequestInFlight
        assert isinstance(error, OutcomeUnknown)
        assert error.retry_after == 2.0
        assert error.provider_code == "IDEMPOTENCY_OUTSTANDING_REQUEST"
        # Without Retry-After the kit still gives the Router's replay a wait.
        bare = error_of(parsers[table](respond(409, body)))
        assert type(bare) is RequestInFlight
        assert bare.retry_after is not None


def test_already_paid_is_resolved_by_lookup_not_rerouted(parsers: dict[str, Parse]) -> None:
    error = error_of(parsers["charge"](respond(409, load("error_already_paid"))))
    assert type(error) is OutcomeUnknown
    assert error.may_have_acted


# -- PG_PROVIDER: decided by the PG's own code --------------------------------------------------


@pytest.mark.parametrize("table", ["charge", "instant", "cancel"])
def test_a_card_decline_is_a_decline_not_an_outage(parsers: dict[str, Parse], table: str) -> None:
    error = error_of(parsers[table](respond(502, load("error_pg_provider_decline"))))
    assert type(error) is Declined
    assert error.provider_code == "PG_PROVIDER:REJECT_CARD_COMPANY"
    assert "한도초과" in error.message
    assert not is_failure_of_provider(error)


@pytest.mark.parametrize("table", ["charge", "instant", "cancel"])
def test_an_unknown_pg_code_on_a_money_moving_call_is_unknown(
    parsers: dict[str, Parse], table: str
) -> None:
    error = error_of(parsers[table](respond(502, load("error_pg_provider_unknown"))))
    assert type(error) is OutcomeUnknown
    assert error.provider_code == "PG_PROVIDER:ZZ99"
    assert is_failure_of_provider(error)


def test_pg_maintenance_is_unavailable(parsers: dict[str, Parse]) -> None:
    body = {"type": "PG_PROVIDER", "pgCode": "MAINTAINED_METHOD", "pgMessage": "점검 중"}
    assert type(error_of(parsers["charge"](respond(502, body)))) is ProviderUnavailable


def test_numeric_pg_codes_apply_only_when_the_pg_is_known(charge_req: ChargeRequest) -> None:
    body = {"type": "PG_PROVIDER", "pgCode": "3011", "pgMessage": "카드번호 오류"}
    unknown_pg = PortOne(api_secret=API_SECRET)
    nice = PortOne(api_secret=API_SECRET, pg_provider="nice_v2")
    assert type(error_of(unknown_pg.parse_charge(charge_req, respond(502, body)))) is OutcomeUnknown
    assert type(error_of(nice.parse_charge(charge_req, respond(502, body)))) is Declined
    # Another PG's table is never applied to a known PG.
    toss_code = {"type": "PG_PROVIDER", "pgCode": "REJECT_CARD_COMPANY", "pgMessage": "x"}
    assert type(error_of(nice.parse_charge(charge_req, respond(502, toss_code)))) is OutcomeUnknown


def test_classify_pg_code_edges() -> None:
    assert classify_pg_code(None, None) is None
    assert classify_pg_code("", "TOSSPAYMENTS") is None
    assert classify_pg_code("REJECT_CARD_COMPANY", "KCP_V2") is None
    rule = classify_pg_code("REJECT_CARD_COMPANY", "tosspayments")
    assert rule is not None
    assert rule.verdict is Verdict.DECLINED


# -- statuses: lookup ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state", "cancelled"),
    [
        ("payment_ready", TxnState.AWAITING_CUSTOMER, 0),
        ("payment_pay_pending", TxnState.IN_PROGRESS, 0),
        ("payment_virtual_account_issued", TxnState.AWAITING_CUSTOMER, 0),
        ("payment_paid", TxnState.PAID, 0),
        ("payment_partial_cancelled", TxnState.PAID, 2000),
        ("payment_cancelled", TxnState.CANCELLED, 12000),
        ("payment_failed", TxnState.NOT_PAID, 0),
    ],
)
def test_lookup_maps_each_status(
    parsers: dict[str, Parse], name: str, state: TxnState, cancelled: int
) -> None:
    payment = load(name)
    outcome = parsers["lookup"](respond(200, payment))
    assert isinstance(outcome, Status)
    assert outcome.state is state
    assert outcome.provider_txn_id == ATTEMPT
    assert outcome.provider_status == payment["status"]
    assert outcome.cancelled == cancelled
    assert outcome.amount == Money(amount=12000)


def test_the_filter_spelling_pending_is_in_progress(parsers: dict[str, Parse]) -> None:
    payment = load("payment_pay_pending") | {"status": "PENDING"}
    outcome = parsers["lookup"](respond(200, payment))
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.IN_PROGRESS


def test_a_billing_key_payment_that_is_ready_is_in_progress(parsers: dict[str, Parse]) -> None:
    payment = load("payment_ready") | {"billingKey": BILLING_KEY}
    outcome = parsers["lookup"](respond(200, payment))
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.IN_PROGRESS
    assert BILLING_KEY not in repr(outcome)


def test_an_unknown_status_is_never_concluded(parsers: dict[str, Parse]) -> None:
    outcome = parsers["lookup"](respond(200, load("payment_paid") | {"status": "REFUNDED_LATER"}))
    assert outcome == Status(
        state=TxnState.IN_PROGRESS, provider_txn_id=ATTEMPT, provider_status="REFUNDED_LATER"
    )


def test_payment_not_found_is_an_answer(parsers: dict[str, Parse]) -> None:
    outcome = parsers["lookup"](respond(404, load("error_payment_not_found")))
    assert outcome == Status(state=TxnState.NOT_FOUND, provider_status="PAYMENT_NOT_FOUND")


def test_paid_without_an_amount_is_unknown(parsers: dict[str, Parse]) -> None:
    payment = load("payment_paid")
    del payment["amount"]
    assert type(error_of(parsers["lookup"](respond(200, payment)))) is OutcomeUnknown
    assert type(error_of(parsers["approve"](respond(200, payment)))) is OutcomeUnknown


def test_a_float_amount_is_not_read_as_money(parsers: dict[str, Parse]) -> None:
    payment = load("payment_paid")
    payment["amount"]["total"] = 12000.5
    assert type(error_of(parsers["approve"](respond(200, payment)))) is OutcomeUnknown


# -- statuses: approve (the verification GET) ---------------------------------------------------


def test_approve_paid_reports_portones_amount(parsers: dict[str, Parse]) -> None:
    payment = load("payment_paid")
    payment["amount"]["total"] = 1000  # tampered client-side: the Router compares
    outcome = parsers["approve"](respond(200, payment))
    assert isinstance(outcome, Approved)
    assert outcome.amount.amount == 1000


def test_approve_failed_is_declined_with_the_pg_code(parsers: dict[str, Parse]) -> None:
    error = error_of(parsers["approve"](respond(200, load("payment_failed"))))
    assert type(error) is Declined
    assert error.provider_code == "FAILED:REJECT_CARD_COMPANY"
    assert "한도초과" in error.message


def test_approve_failed_for_pg_maintenance_is_unavailable(parsers: dict[str, Parse]) -> None:
    payment = load("payment_failed")
    payment["failure"] = {"reason": "점검", "pgCode": "MAINTAINED_METHOD", "pgMessage": "점검 중"}
    assert type(error_of(parsers["approve"](respond(200, payment)))) is ProviderUnavailable


def test_approve_failed_with_an_unknown_code_is_still_declined(parsers: dict[str, Parse]) -> None:
    payment = load("payment_failed")
    payment["failure"] = {"pgCode": "PROVIDER_ERROR"}  # "may have acted" elsewhere; FAILED is final
    assert type(error_of(parsers["approve"](respond(200, payment)))) is Declined


@pytest.mark.parametrize(
    "name",
    [
        "payment_ready",
        "payment_pay_pending",
        "payment_virtual_account_issued",
        "payment_partial_cancelled",
        "payment_cancelled",
    ],
)
def test_approve_of_an_unsettled_payment_is_unknown(parsers: dict[str, Parse], name: str) -> None:
    error = error_of(parsers["approve"](respond(200, load(name))))
    assert type(error) is OutcomeUnknown
    assert error.provider_code == load(name)["status"]


def test_approve_ready_after_the_sdk_reported_an_error_is_declined(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    req = dataclasses.replace(
        approve_req,
        callback_params={
            "paymentId": ATTEMPT,
            "code": "FAILURE_TYPE_PG",
            "message": "사용자가 결제를 취소하였습니다",
        },
    )
    error = error_of(portone.parse_approve(req, respond(200, load("payment_ready"))))
    assert type(error) is Declined
    assert error.provider_code == "READY:FAILURE_TYPE_PG"
    assert error.message.endswith(": 사용자가 결제를 취소하였습니다")
    hostile = dataclasses.replace(req, callback_params={"code": "X<script>" + "A" * 500})
    error = error_of(portone.parse_approve(hostile, respond(200, load("payment_ready"))))
    assert error.provider_code == "READY:Xscript" + "A" * 51
    # The server's answer wins over the browser's: a PAID payment is paid.
    assert isinstance(portone.parse_approve(req, respond(200, load("payment_paid"))), Approved)


def test_approve_of_a_payment_that_does_not_exist_is_declined(parsers: dict[str, Parse]) -> None:
    error = error_of(parsers["approve"](respond(404, load("error_payment_not_found"))))
    assert type(error) is Declined


def test_approve_of_another_payment_is_unknown(parsers: dict[str, Parse]) -> None:
    payment = load("payment_paid") | {"id": "SOMEONE_ELSE_1"}
    assert type(error_of(parsers["approve"](respond(200, payment)))) is OutcomeUnknown


# -- success bodies missing what we need ----------------------------------------------------------


@pytest.mark.parametrize(
    "body", [{}, {"payment": {}}, {"payment": {"paidAt": "2025-03-14T05:12:31Z"}}, "<html>"]
)
@pytest.mark.parametrize("table", ["charge", "instant"])
def test_a_payment_success_without_pg_tx_id_is_unknown(
    parsers: dict[str, Parse], table: str, body: dict[str, Any] | str
) -> None:
    assert type(error_of(parsers[table](respond(200, body)))) is OutcomeUnknown


def test_cancel_answers(parsers: dict[str, Parse]) -> None:
    failed = error_of(parsers["cancel"](respond(200, load("cancel_failed"))))
    assert type(failed) is Declined
    assert failed.provider_code == "CANCELLATION_FAILED"
    for body in (
        {},
        {"cancellation": {"status": "SOMETHING_NEW", "totalAmount": 12000}},
        {"cancellation": {"status": "SUCCEEDED"}},
    ):
        assert type(error_of(parsers["cancel"](respond(200, body)))) is OutcomeUnknown


# -- nothing secret in any error -----------------------------------------------------------------


def test_no_error_carries_a_secret(openapi: dict[str, Any], parsers: dict[str, Parse]) -> None:
    leaky = f"PortOne {API_SECRET} billing {BILLING_KEY} card {CARD_NUMBER}"
    for table, error_type, status in documented_error_types(openapi):
        body = {"type": error_type, "message": leaky, "pgCode": "ZZ", "pgMessage": leaky}
        outcome = parsers[table](respond(status, body))
        if isinstance(outcome, Failed):
            text = f"{outcome.error} {outcome.error!r} {outcome.error.context()}"
            assert API_SECRET not in text
            assert CARD_NUMBER not in text
            if table == "charge":  # the request's billing key: the adapter has it in hand
                assert BILLING_KEY not in text
