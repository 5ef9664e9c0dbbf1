"""The code tables are complete and every code reaches the outcome its table row says.

The documented code lists live in ``documented_codes.json`` (copied from the pages cited
in ``payfallback_naverpay``'s docstring); a code Naver documents but the tables lack
fails here. ``Success`` is the one code outside the tables: it is the success answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx
import pytest
from naverpay_support import (
    approve_request,
    cancel_request,
    code_answer,
    documented_codes,
    lookup_request,
)
from payfallback_naverpay import (
    APPLY_CODES,
    CALLBACK_CODES,
    CANCEL_CODES,
    HISTORY_CODES,
    SUCCESS,
    NaverPay,
)
from payfallback_naverpay._wire import AdmissionState, AdmissionType

from payfallback.adapter import CodeRule, Verdict
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.provider import Failed, Operation, Outcome

DOCUMENTED = documented_codes()
TABLES: Mapping[str, Mapping[str, CodeRule]] = {
    "apply": APPLY_CODES,
    "cancel": CANCEL_CODES,
    "history": HISTORY_CODES,
    "callback": CALLBACK_CODES,
}
ERROR_CLASS: Mapping[Verdict, type[PayfallbackError]] = {
    Verdict.DECLINED: Declined,
    Verdict.UNAVAILABLE: ProviderUnavailable,
    Verdict.UNKNOWN: OutcomeUnknown,
    Verdict.INVALID: InvalidRequest,
    Verdict.CONFIGURATION: ConfigurationError,
}
#: The operation each API's table is read for.
OPERATION: Mapping[str, Operation] = {
    "apply": Operation.APPROVE,
    "cancel": Operation.CANCEL,
    "history": Operation.LOOKUP,
}
Parse = Callable[[NaverPay, httpx.Response], Outcome]
PARSERS: Mapping[str, Parse] = {
    "apply": lambda p, r: p.parse_approve(approve_request(), r),
    "cancel": lambda p, r: p.parse_cancel(cancel_request(), r),
    "history": lambda p, r: p.parse_lookup(lookup_request(), r),
}


def _cases(*apis: str) -> list[tuple[str, str]]:
    return [(api, code) for api in apis for code in DOCUMENTED[api]]


@pytest.mark.parametrize(("api", "code"), _cases("apply", "cancel", "history", "callback"))
def test_every_documented_code_is_in_its_table(api: str, code: str) -> None:
    assert code == SUCCESS or code in TABLES[api], f"{api}: documented code {code} has no row"


@pytest.mark.parametrize("api", sorted(TABLES))
def test_tables_hold_only_documented_codes(api: str) -> None:
    assert SUCCESS in DOCUMENTED[api]
    assert SUCCESS not in TABLES[api]
    assert set(TABLES[api]) | {SUCCESS} == set(DOCUMENTED[api])


@pytest.mark.parametrize("api", sorted(TABLES))
def test_every_row_says_what_it_means_and_where_that_was_read(api: str) -> None:
    for code, rule in TABLES[api].items():
        assert rule.meaning, f"{api}: {code} has no meaning"
        assert rule.source.startswith("https://docs.pay.naver.com/docs/"), (api, code)


def test_admission_enums_match_the_docs() -> None:
    assert {s.value for s in AdmissionState} == set(DOCUMENTED["admissionState"])
    assert {t.value for t in AdmissionType} == set(DOCUMENTED["admissionTypeCode"])


def test_read_only_history_has_no_unknown_outcomes() -> None:
    assert all(rule.verdict is not Verdict.UNKNOWN for rule in HISTORY_CODES.values())


@pytest.mark.parametrize(
    ("api", "code"), [c for c in _cases("apply", "cancel", "history") if c[1] != "Success"]
)
def test_each_failure_code_becomes_the_error_its_row_names(
    provider: NaverPay, api: str, code: str
) -> None:
    response = code_answer(code, "네이버페이 메시지")
    response.headers["X-Request-Id"] = "rid-1"
    outcome = PARSERS[api](provider, response)
    assert isinstance(outcome, Failed)
    expected = ERROR_CLASS[TABLES[api][code].verdict_for(OPERATION[api])]
    assert type(outcome.error) is expected
    assert outcome.error.provider == "naverpay"
    assert outcome.error.provider_code == code
    assert outcome.error.provider_request_id == "rid-1"
    assert "네이버페이 메시지" in outcome.error.message


@pytest.mark.parametrize(
    ("api", "code", "expected"),
    [
        ("apply", "InvalidMerchant", ConfigurationError),
        ("apply", "MaintenanceOngoing", ProviderUnavailable),
        ("apply", "FaultCheckOngoing", ProviderUnavailable),
        ("apply", "AlreadyComplete", OutcomeUnknown),
        ("apply", "AlreadyOnGoing", OutcomeUnknown),
        ("apply", "TimeExpired", Declined),
        ("apply", "Fail", Declined),
        ("cancel", "Fail", OutcomeUnknown),
        ("cancel", "RestAmountDiff", OutcomeUnknown),
        ("cancel", "AlreadyCanceled", OutcomeUnknown),
        ("cancel", "PreCancelNotComplete", ProviderUnavailable),
        ("cancel", "CancelDeadlineExpired", Declined),
        ("cancel", "TaxScopeAmountError", InvalidRequest),
        ("history", "Fail", ProviderUnavailable),
        ("history", "InvalidMerchant", ConfigurationError),
    ],
)
def test_the_classifications_that_matter_most(
    provider: NaverPay, api: str, code: str, expected: type[PayfallbackError]
) -> None:
    outcome = PARSERS[api](provider, code_answer(code))
    assert isinstance(outcome, Failed)
    assert type(outcome.error) is expected


@pytest.mark.parametrize("api", ["apply", "cancel"])
@pytest.mark.parametrize("status", [200, 400, 404, 409])
def test_an_unmapped_code_on_a_money_moving_call_is_unknown(
    provider: NaverPay, api: str, status: int
) -> None:
    outcome = PARSERS[api](provider, code_answer("SomethingNaverAddedLater", status=status))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)
    assert outcome.error.provider_code == "SomethingNaverAddedLater"


@pytest.mark.parametrize("api", ["apply", "cancel"])
def test_unmapped_codes_with_a_status_that_rules_out_processing(
    provider: NaverPay, api: str
) -> None:
    unauthorized = PARSERS[api](provider, code_answer("Whatever", status=401))
    unavailable = PARSERS[api](provider, code_answer("Whatever", status=503))
    assert isinstance(unauthorized, Failed)
    assert isinstance(unauthorized.error, ConfigurationError)
    assert isinstance(unavailable, Failed)
    assert isinstance(unavailable.error, ProviderUnavailable)


def test_an_unmapped_code_on_the_history_is_asked_again(provider: NaverPay) -> None:
    outcome = PARSERS["history"](provider, code_answer("SomethingNaverAddedLater"))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)


@pytest.mark.parametrize("code", [c for c in DOCUMENTED["callback"] if c != "Success"])
def test_each_callback_failure_is_declined_before_sending(provider: NaverPay, code: str) -> None:
    assert CALLBACK_CODES[code].verdict is Verdict.DECLINED
    with pytest.raises(Declined) as info:
        provider.build_approve(approve_request({"resultCode": code}))
    assert info.value.provider_code == code


@pytest.mark.parametrize("api", ["apply", "cancel"])
def test_success_under_an_error_status_is_not_trusted(provider: NaverPay, api: str) -> None:
    outcome = PARSERS[api](provider, code_answer("Success", status=500))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)
    assert "HTTP 500" in outcome.error.message
    history = PARSERS["history"](provider, code_answer("Success", status=500))
    assert isinstance(history, Failed)
    assert isinstance(history.error, ProviderUnavailable)
