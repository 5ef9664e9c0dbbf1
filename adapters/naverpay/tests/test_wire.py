"""The real wire format, pinned: hosts, paths, headers, bodies, and how answers parse.

Requests are built by the adapter and sent with :class:`httpx.Client` through a respx
router for Naver Pay's sandbox host; nothing is patched but the transport.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from naverpay_support import (
    ATTEMPT_ID,
    BASE_URL,
    CHAIN_ID,
    CLIENT_ID,
    IDEMPOTENCY_KEY,
    PAYMENT_ID,
    SECRET,
    answer,
    approve_request,
    cancel_request,
    code_answer,
    lookup_request,
    make_order,
    make_provider,
    payload,
    ready_request,
)
from payfallback_naverpay import IDEMPOTENCY_HEADER, SDK_URL, DomainSet, NaverPay
from pydantic import SecretStr

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import Instrument, LineItem, Method, Money
from payfallback.provider import (
    Approved,
    Cancelled,
    ChargeRequest,
    Failed,
    Flow,
    Outcome,
    Proof,
    Provider,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    load_provider,
)

KST = timezone(timedelta(hours=9))


def bare(outcome: object) -> object:
    """The outcome without its receipt and answer (those are pinned in test_receipts)."""
    assert isinstance(outcome, Approved | Cancelled), outcome
    return dataclasses.replace(outcome, receipt=None, answer=None)


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def form_of(request: httpx.Request) -> dict[str, str]:
    fields = parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)
    return {k: v[0] for k, v in fields.items()}


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


# -- settings, discovery, capabilities ----------------------------------------------------------


def test_entry_point_builds_the_adapter_and_it_is_a_provider() -> None:
    adapter = load_provider(
        "naverpay",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        chain_id=CHAIN_ID,
        partner_id="np_partner",
    )
    assert isinstance(adapter, NaverPay)
    assert isinstance(adapter, Provider)
    assert adapter.name == "naverpay"


def test_capabilities_declare_what_naver_pay_offers(provider: NaverPay) -> None:
    caps = provider.capabilities
    assert caps.methods == frozenset({Method.NAVERPAY})
    assert caps.flows == frozenset({Flow.REDIRECT})
    assert caps.lookup_by_order_id is False
    assert caps.callback_txn_id_param == "paymentId"
    assert caps.idempotency_header == "X-NaverPay-Idempotency-Key"
    assert caps.idempotency_key_max_length == 64
    assert caps.idempotency_retention is None
    assert caps.partial_cancel is True
    assert caps.void_window is None
    assert caps.currencies == frozenset({"KRW"})
    assert caps.read_timeout == 60.0
    # Proofs that an apply moved no money: a same-key replay (409 + the first answer) and
    # the history's FAIL record; no net cancel, and no documented settle window.
    assert caps.settle_window is None
    assert caps.failed_record_is_final is True
    assert caps.proofs == (Proof.REPLAY, Proof.RECORD)


def test_repr_and_errors_never_show_the_secret() -> None:
    adapter = make_provider(client_secret=SecretStr(SECRET))
    assert SECRET not in repr(adapter)
    assert SECRET not in str(adapter)
    with pytest.raises(ConfigurationError) as info:
        make_provider(client_secret=SECRET + " with spaces")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"client_id": ""}, "client_id"),
        ({"chain_id": "   "}, "chain_id"),
        ({"partner_id": "np/partner"}, "partner_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"domain_set": "legacy"}, "domain_set"),
        ({"api_host": "http://apis.naver.com"}, "https"),
        ({"api_host": "apis.naver.com/x"}, "api_host"),
    ],
)
def test_bad_settings_are_configuration_errors(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        make_provider(**overrides)


@pytest.mark.parametrize(
    ("settings", "base"),
    [
        ({"sandbox": False}, "https://apis.naver.com/np_partner/naverpay/payments"),
        ({"sandbox": True}, "https://dev.apis.naver.com/np_partner/naverpay/payments"),
        (
            {"sandbox": False, "domain_set": DomainSet.PAYGATE},
            "https://pay.paygate.naver.com/np_partner/naverpay/payments",
        ),
        (
            {"sandbox": True, "domain_set": "paygate"},
            "https://dev-pay.paygate.naver.com/np_partner/naverpay/payments",
        ),
        (
            {"sandbox": True, "api_host": "https://dev-pub.apis.naver.com/"},
            "https://dev-pub.apis.naver.com/np_partner/naverpay/payments",
        ),
    ],
)
def test_both_domain_sets_and_a_custom_host(settings: dict[str, Any], base: str) -> None:
    adapter = make_provider(**settings)
    assert adapter.base_url == base
    assert str(adapter.build_lookup(lookup_request()).url).startswith(base + "/")


def test_charge_and_void_are_not_offered(provider: NaverPay) -> None:
    order = make_order()
    with pytest.raises(NotImplementedError, match="naverpay: charge is not supported"):
        provider.build_charge(ChargeRequest("a_1", order, _instrument(), IDEMPOTENCY_KEY))
    with pytest.raises(NotImplementedError, match="naverpay: void is not supported"):
        provider.build_void(
            VoidRequest("a_1", order, PAYMENT_ID, Money(amount=1000), IDEMPOTENCY_KEY)
        )


def _instrument() -> Instrument:
    return Instrument(provider="naverpay", billing_key=SecretStr("bk"))


# -- ready: client-side SDK --------------------------------------------------------------------


def test_ready_sends_nothing_and_hands_the_sdk_its_parameters(provider: NaverPay) -> None:
    req = ready_request(make_order(customer_ref="customer-42"))
    assert provider.build_ready(req) is None
    outcome = provider.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id is None
    assert dict(outcome.redirect_urls) == {}
    params = dict(outcome.client_params)
    items = json.loads(params.pop("productItems"))
    assert params == {
        "sdkUrl": SDK_URL,
        "mode": "development",
        "clientId": CLIENT_ID,
        "chainId": CHAIN_ID,
        "merchantPayKey": ATTEMPT_ID,
        "merchantUserKey": "customer-42",
        "productName": "커피 원두 1kg",
        "productCount": "1",
        "totalPayAmount": "12000",
        "taxScopeAmount": "12000",
        "taxExScopeAmount": "0",
        "returnUrl": "https://shop.example/pay/naver/return",
    }
    assert items == [
        {
            "categoryType": "PRODUCT",
            "categoryId": "GENERAL",
            "uid": "ORDER123-1",
            "name": "커피 원두 1kg",
            "count": 1,
        }
    ]
    assert SECRET not in json.dumps(dict(outcome.client_params), ensure_ascii=False)


def test_ready_lists_items_and_splits_tax(provider: NaverPay) -> None:
    order = make_order(
        15000,
        tax_free=5000,
        items=(
            LineItem(name="원두", quantity=2, unit_price=Money(amount=5000)),
            LineItem(name="우유", quantity=1, unit_price=Money(amount=5000)),
        ),
    )
    outcome = make_provider(sandbox=False).parse_ready(ready_request(order), None)
    assert isinstance(outcome, Redirect)
    params = outcome.client_params
    assert params["mode"] == "production"
    assert (params["totalPayAmount"], params["taxScopeAmount"], params["taxExScopeAmount"]) == (
        "15000",
        "10000",
        "5000",
    )
    assert params["productCount"] == "3"
    assert [(i["name"], i["count"]) for i in json.loads(params["productItems"])] == [
        ("원두", 2),
        ("우유", 1),
    ]
    assert "merchantUserKey" not in params


def test_ready_refuses_other_currencies_before_a_session_starts(provider: NaverPay) -> None:
    order = make_order().model_copy(update={"amount": Money(amount=1000, currency="USD")})
    with pytest.raises(InvalidRequest, match="takes KRW, not USD"):
        provider.build_ready(ready_request(order))
    assert isinstance(error_of(provider.parse_ready(ready_request(order), None)), InvalidRequest)


# -- approve: apply ----------------------------------------------------------------------------


def test_apply_wire_format_and_success(provider: NaverPay) -> None:
    req = approve_request()
    request = provider.build_approve(req)
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        route = naver.post("/v2.2/apply/payment").mock(
            return_value=answer(
                payload("apply_success"), headers={IDEMPOTENCY_HEADER: IDEMPOTENCY_KEY}
            )
        )
        response = send(request)
    sent = route.calls.last.request
    assert sent.url.host == "dev.apis.naver.com"
    assert sent.url.path == "/np_partner/naverpay/payments/v2.2/apply/payment"
    assert sent.method == "POST"
    assert sent.headers["X-Naver-Client-Id"] == CLIENT_ID
    assert sent.headers["X-Naver-Client-Secret"] == SECRET
    assert sent.headers["X-NaverPay-Chain-Id"] == CHAIN_ID
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers[IDEMPOTENCY_HEADER] == IDEMPOTENCY_KEY
    assert "X-NaverPay-Financial-Id" not in sent.headers
    assert form_of(sent) == {"paymentId": PAYMENT_ID}

    outcome = provider.parse_approve(req, response)
    assert bare(outcome) == Approved(
        provider_txn_id=PAYMENT_ID,
        amount=Money(amount=12000, currency="KRW"),
        approved_at=datetime(2017, 2, 1, 15, 17, 22, tzinfo=KST),
        provider_status="SUCCESS",
    )


def test_idempotency_key_is_copied_verbatim_and_stable(provider: NaverPay) -> None:
    first = provider.build_approve(approve_request())
    again = provider.build_approve(approve_request())
    other = provider.build_approve(approve_request(key="idem-other"))
    assert first.headers[IDEMPOTENCY_HEADER] == again.headers[IDEMPOTENCY_HEADER]
    assert first.headers[IDEMPOTENCY_HEADER] == IDEMPOTENCY_KEY
    assert other.headers[IDEMPOTENCY_HEADER] == "idem-other"
    assert first.content == again.content


@pytest.mark.parametrize("key", ["", "k" * 65, "has space", "한글키"])
def test_unusable_idempotency_keys_are_refused(provider: NaverPay, key: str) -> None:
    with pytest.raises(InvalidRequest, match="idempotency key"):
        provider.build_approve(approve_request(key=key))


def test_financial_id_header_when_configured() -> None:
    request = make_provider(financial_id="fin-01").build_approve(approve_request())
    assert request.headers["X-NaverPay-Financial-Id"] == "fin-01"


def test_a_409_replay_whose_body_says_success_is_a_success(provider: NaverPay) -> None:
    req = approve_request()
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        naver.post("/v2.2/apply/payment").mock(
            side_effect=[
                answer(payload("apply_success")),
                answer(payload("apply_success"), status=409),
            ]
        )
        first = provider.parse_approve(req, send(provider.build_approve(req)))
        replay = provider.parse_approve(req, send(provider.build_approve(req)))
    assert isinstance(first, Approved)
    assert replay == first


def test_a_409_replay_of_a_refusal_is_that_refusal(provider: NaverPay) -> None:
    outcome = provider.parse_approve(
        approve_request(), code_answer("NotEnoughAccountBalance", "잔액 부족", status=409)
    )
    err = error_of(outcome)
    assert isinstance(err, Declined)
    assert err.provider_code == "NotEnoughAccountBalance"


def test_an_unreadable_409_on_apply_is_unknown(provider: NaverPay) -> None:
    err = error_of(provider.parse_approve(approve_request(), answer(text="Conflict", status=409)))
    assert isinstance(err, OutcomeUnknown)
    assert "409" in err.message


@pytest.mark.parametrize(
    ("callback", "code"),
    [
        ({"resultCode": "UserCancel", "resultMessage": "사용자 취소"}, "UserCancel"),
        ({"resultCode": "OwnerAuthFail", "reserveId": "r1"}, "OwnerAuthFail"),
        ({"resultCode": "SomethingNew"}, "SomethingNew"),
    ],
)
def test_a_callback_without_success_is_declined_before_sending(
    provider: NaverPay, callback: dict[str, str], code: str
) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as naver:
        route = naver.post("/v2.2/apply/payment")
        with pytest.raises(Declined) as info:
            provider.build_approve(approve_request(callback))
    assert not route.called
    assert info.value.provider_code == code
    assert info.value.operation == "approve"
    assert info.value.attempt_id == ATTEMPT_ID


@pytest.mark.parametrize(
    "callback",
    [
        {"paymentId": PAYMENT_ID},
        {"resultCode": "Success"},
        {"resultCode": "Success", "paymentId": "../../v1/cancel"},
        {"resultCode": "Success", "paymentId": "x" * 51},
    ],
)
def test_malformed_callbacks_are_invalid_requests(
    provider: NaverPay, callback: dict[str, str]
) -> None:
    with pytest.raises(InvalidRequest) as info:
        provider.build_approve(approve_request(callback))
    assert "../" not in str(info.value)


def _apply_with(**detail: Any) -> httpx.Response:
    data = payload("apply_success")
    data["body"]["detail"].update(detail)
    return answer(data)


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (_apply_with(totalPayAmount=None), "amount"),
        (answer({"code": "Success", "message": "성공", "body": None}), "amount"),
        (answer({"code": "Success", "message": "성공", "body": "oops"}), "unreadable"),
        (_apply_with(paymentId="20170201NP0000000001"), "paymentId"),
        (_apply_with(admissionState="FAIL"), "admissionState"),
        (_apply_with(totalPayAmount="12000.5"), "unreadable"),
    ],
)
def test_a_success_missing_what_we_need_is_unknown(
    provider: NaverPay, response: httpx.Response, fragment: str
) -> None:
    err = error_of(provider.parse_approve(approve_request(), response))
    assert isinstance(err, OutcomeUnknown)
    assert fragment in err.message


def test_a_success_without_a_date_still_approves(provider: NaverPay) -> None:
    data = payload("apply_success")
    data["body"]["detail"]["admissionYmdt"] = "not-a-date"
    data["body"]["detail"]["someFieldNaverAddsLater"] = {"x": 1}
    outcome = provider.parse_approve(approve_request(), answer(data))
    assert isinstance(outcome, Approved)
    assert outcome.amount == Money(amount=12000)
    assert outcome.approved_at is None


# -- merchantPayKey: what ties a paymentId to its checkout --------------------------------------


def test_apply_without_merchant_pay_key_is_not_recorded_but_looked_up(provider: NaverPay) -> None:
    data = payload("apply_success")
    del data["body"]["detail"]["merchantPayKey"]
    err = error_of(provider.parse_approve(approve_request(), answer(data)))
    # Unknown, not approved: the Router looks the paymentId up and the history decides.
    assert isinstance(err, OutcomeUnknown)
    assert "not tied to this checkout" in err.message
    assert "lookup" in err.message
    assert err.provider_code == "Success"
    null_key = payload("apply_success")
    null_key["body"]["detail"]["merchantPayKey"] = None
    assert isinstance(
        error_of(provider.parse_approve(approve_request(), answer(null_key))), OutcomeUnknown
    )


def test_apply_for_another_checkout_is_refused_not_recorded(provider: NaverPay) -> None:
    # Two checkouts of the same amount; the second one's return URL carries the first
    # one's paymentId. Naver echoes the first checkout's merchantPayKey.
    first = approve_request(attempt_id="ORDER123_1")
    second = approve_request(attempt_id="ORDER456_1")
    data = payload("apply_success")  # merchantPayKey ORDER123_1
    assert isinstance(provider.parse_approve(first, answer(data)), Approved)
    err = error_of(provider.parse_approve(second, answer(data)))
    assert isinstance(err, InvalidRequest)
    assert "belongs to another checkout" in err.message
    assert "ORDER123_1" in err.message
    assert err.attempt_id == "ORDER456_1"


def _keyed_row(type_code: str, state: str, key: str | None, amount: int = 12000) -> dict[str, Any]:
    row: dict[str, Any] = payload("history_paid")["body"]["list"][0]
    row.update(admissionTypeCode=type_code, admissionState=state, totalPayAmount=amount)
    if key is None:
        del row["merchantPayKey"]
    else:
        row["merchantPayKey"] = key
    return row


@pytest.mark.parametrize(
    ("rows", "state"),
    [
        ([("01", "SUCCESS", ATTEMPT_ID)], TxnState.PAID),
        ([("01", "FAIL", ATTEMPT_ID)], TxnState.NOT_PAID),
        # Our approval proves the payment whatever an untied row says.
        ([("01", "SUCCESS", ATTEMPT_ID), ("01", "FAIL", None)], TxnState.PAID),
        # A cancel row need not repeat the key; the approval row ties the paymentId.
        ([("04", "SUCCESS", None, 3000), ("01", "SUCCESS", ATTEMPT_ID)], TxnState.PAID),
        ([("03", "SUCCESS", None), ("01", "SUCCESS", ATTEMPT_ID)], TxnState.CANCELLED),
    ],
)
def test_history_speaks_for_this_checkout_only_through_its_merchant_pay_key(
    provider: NaverPay, rows: list[tuple[Any, ...]], state: TxnState
) -> None:
    outcome = provider.parse_lookup(lookup_request(), _history(*(_keyed_row(*r) for r in rows)))
    assert isinstance(outcome, Status), outcome
    assert outcome.state is state


@pytest.mark.parametrize(
    "rows",
    [
        [("01", "SUCCESS", None)],
        [("01", "FAIL", None)],
        # Ours failed, an untied one succeeded: neither paid nor not paid is proven.
        [("01", "FAIL", ATTEMPT_ID), ("01", "SUCCESS", None)],
    ],
)
def test_history_rows_without_merchant_pay_key_prove_nothing(
    provider: NaverPay, rows: list[tuple[Any, ...]]
) -> None:
    err = error_of(
        provider.parse_lookup(lookup_request(), _history(*(_keyed_row(*r) for r in rows)))
    )
    # Never "paid", never "not paid": the attempt stays unknown and is asked again.
    assert isinstance(err, ProviderUnavailable)
    assert "merchantPayKey" in err.message
    assert "neither paid nor not paid" in err.message


@pytest.mark.parametrize(
    "rows",
    [
        [("01", "SUCCESS", "ORDER999_1")],
        [("01", "FAIL", "ORDER999_1")],
        [("03", "SUCCESS", "ORDER999_1"), ("01", "SUCCESS", ATTEMPT_ID)],
    ],
)
def test_history_of_another_checkout_is_refused(
    provider: NaverPay, rows: list[tuple[Any, ...]]
) -> None:
    err = error_of(
        provider.parse_lookup(lookup_request(), _history(*(_keyed_row(*r) for r in rows)))
    )
    assert isinstance(err, InvalidRequest)
    assert "another checkout" in err.message


def test_the_approved_amount_is_what_naver_says(provider: NaverPay) -> None:
    outcome = provider.parse_approve(approve_request(), _apply_with(totalPayAmount=11000))
    assert isinstance(outcome, Approved)
    assert outcome.amount.amount == 11000  # the Router compares it with the order


def test_server_errors_on_apply(provider: NaverPay) -> None:
    req = approve_request()
    unknown = error_of(provider.parse_approve(req, answer(text="<html>500</html>", status=500)))
    assert isinstance(unknown, OutcomeUnknown)
    # A 5xx is never trusted to mean "refused", whatever its body says.
    still_unknown = error_of(provider.parse_approve(req, code_answer("Fail", status=500)))
    assert isinstance(still_unknown, OutcomeUnknown)
    maintenance = error_of(
        provider.parse_approve(
            req,
            answer(payload("maintenance"), status=503, headers={"Retry-After": "120"}),
        )
    )
    assert isinstance(maintenance, ProviderUnavailable)
    assert maintenance.retry_after == 120.0
    assert maintenance.provider_code == "MaintenanceOngoing"


def test_bad_credentials_answer_from_the_gateway(provider: NaverPay) -> None:
    err = error_of(
        provider.parse_approve(
            approve_request(),
            answer(payload("gateway_401"), status=401, headers={"X-Request-Id": "req-9"}),
        )
    )
    assert isinstance(err, ConfigurationError)
    assert err.provider_code == "024"
    assert err.provider_request_id == "req-9"
    assert SECRET not in str(err)


# -- lookup: history ---------------------------------------------------------------------------


def test_history_wire_format(provider: NaverPay) -> None:
    request = provider.build_lookup(lookup_request())
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        route = naver.post(f"/v2.2/list/history/{PAYMENT_ID}").mock(
            return_value=answer(payload("history_paid"))
        )
        response = send(request)
    sent = route.calls.last.request
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Naver-Client-Id"] == CLIENT_ID
    assert sent.headers["X-Naver-Client-Secret"] == SECRET
    assert sent.headers["X-NaverPay-Chain-Id"] == CHAIN_ID
    assert IDEMPOTENCY_HEADER not in sent.headers  # read-only
    assert json.loads(sent.content) == {"pageNumber": 1, "rowsPerPage": 20}
    outcome = provider.parse_lookup(lookup_request(), response)
    assert outcome == Status(
        state=TxnState.PAID,
        provider_txn_id=PAYMENT_ID,
        amount=Money(amount=12000),
        cancelled=0,
        provider_status="01:SUCCESS",
    )


@pytest.mark.parametrize(
    ("name", "state", "cancelled"),
    [
        ("history_paid", TxnState.PAID, 0),
        ("history_partially_cancelled", TxnState.PAID, 3000),
        ("history_cancelled", TxnState.CANCELLED, 12000),
        ("history_failed", TxnState.NOT_PAID, 0),
        ("history_empty", TxnState.IN_PROGRESS, 0),
    ],
)
def test_history_states(provider: NaverPay, name: str, state: TxnState, cancelled: int) -> None:
    outcome = provider.parse_lookup(lookup_request(), answer(payload(name)))
    assert isinstance(outcome, Status)
    assert outcome.state is state
    assert outcome.cancelled == cancelled
    assert outcome.provider_txn_id == PAYMENT_ID
    if state in (TxnState.PAID, TxnState.CANCELLED):
        assert outcome.amount == Money(amount=12000)


def _history(*rows: dict[str, Any]) -> httpx.Response:
    data = payload("history_empty")
    data["body"]["list"] = list(rows)
    return answer(data)


def _row(type_code: str, state: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "paymentId": PAYMENT_ID,
        "merchantPayKey": ATTEMPT_ID,
        "admissionTypeCode": type_code,
        "admissionState": state,
        "totalPayAmount": amount,
        **extra,
    }


def test_history_edge_cases(provider: NaverPay) -> None:
    req = lookup_request()

    def state(response: httpx.Response) -> TxnState:
        outcome = provider.parse_lookup(req, response)
        assert isinstance(outcome, Status), outcome
        return outcome.state

    # A failed cancel does not count; partial cancels covering the amount do.
    assert state(_history(_row("04", "FAIL", 5000), _row("01", "SUCCESS", 12000))) is TxnState.PAID
    assert (
        state(
            _history(
                _row("04", "SUCCESS", 7000),
                _row("04", "SUCCESS", 5000),
                _row("01", "SUCCESS", 12000),
            )
        )
        is TxnState.CANCELLED
    )
    # A failed approval retried successfully is paid.
    assert state(_history(_row("01", "SUCCESS", 12000), _row("01", "FAIL", 12000))) is TxnState.PAID
    # An approval state Naver adds later is not known to be final: ask again.
    assert state(_history(_row("01", "PENDING", 12000))) is TxnState.IN_PROGRESS
    # Rows of an unknown type alone say nothing yet.
    assert state(_history(_row("99", "SUCCESS", 12000))) is TxnState.IN_PROGRESS
    # Rows of other paymentIds are ignored.
    other = _row("01", "SUCCESS", 500, paymentId="20170201NP0000000001")
    assert state(_history(other)) is TxnState.IN_PROGRESS
    # "list": null is an empty history.
    null_list = payload("history_empty")
    null_list["body"]["list"] = None
    assert state(answer(null_list)) is TxnState.IN_PROGRESS


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        (_history(_row("01", "SUCCESS", 12000, totalPayAmount=None)), "amounts"),
        (_history(_row("03", "SUCCESS", 12000)), "no approval row"),
    ],
)
def test_history_that_cannot_be_trusted_is_asked_again(
    provider: NaverPay, response: httpx.Response, fragment: str
) -> None:
    # A lookup moves no money: an answer it cannot use is "ask again", never "unknown".
    err = error_of(provider.parse_lookup(lookup_request(), response))
    assert isinstance(err, ProviderUnavailable)
    assert fragment in err.message


def test_history_status_shows_only_known_values(provider: NaverPay) -> None:
    outcome = provider.parse_lookup(
        lookup_request(),
        _history(_row("01", "SUCCESS", 12000), _row("77", "SOMETHING NEW", 1)),
    )
    assert isinstance(outcome, Status)
    assert outcome.provider_status == "01:SUCCESS,?:?"


def test_history_failures_are_asked_again_not_unknown(provider: NaverPay) -> None:
    req = lookup_request()
    assert isinstance(
        error_of(provider.parse_lookup(req, answer(payload("maintenance")))), ProviderUnavailable
    )
    assert isinstance(
        error_of(provider.parse_lookup(req, answer(text="oops", status=500))), ProviderUnavailable
    )
    assert isinstance(
        error_of(provider.parse_lookup(req, code_answer("SomethingNew"))), ProviderUnavailable
    )
    broken = answer({"code": "Success", "message": "성공", "body": {"list": "nope"}})
    assert isinstance(error_of(provider.parse_lookup(req, broken)), ProviderUnavailable)


def test_lookup_needs_the_payment_id(provider: NaverPay) -> None:
    with pytest.raises(InvalidRequest, match="merchantPayKey"):
        provider.build_lookup(lookup_request(None))
    with pytest.raises(InvalidRequest, match="not a paymentId"):
        provider.build_lookup(lookup_request("a/b"))


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_wire_format_and_partial_success(provider: NaverPay) -> None:
    req = cancel_request(3000, remaining=12000)
    request = provider.build_cancel(req)
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        route = naver.post("/v1/cancel").mock(return_value=answer(payload("cancel_partial")))
        response = send(request)
    sent = route.calls.last.request
    assert sent.url.path == "/np_partner/naverpay/payments/v1/cancel"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.headers["X-Naver-Client-Secret"] == SECRET
    assert sent.headers[IDEMPOTENCY_HEADER] == IDEMPOTENCY_KEY
    assert form_of(sent) == {
        "paymentId": PAYMENT_ID,
        "cancelAmount": "3000",
        "cancelReason": "고객 요청",
        "cancelRequester": "2",
        "taxScopeAmount": "3000",
        "taxExScopeAmount": "0",
        "doCompareRest": "1",
        "expectedRestAmount": "9000",
    }
    outcome = provider.parse_cancel(req, response)
    assert bare(outcome) == Cancelled(
        provider_txn_id=PAYMENT_ID, amount=Money(amount=3000), remaining=9000, settled=True
    )


def test_full_cancel_sums_every_means_of_payment(provider: NaverPay) -> None:
    req = cancel_request(12000, remaining=12000)
    assert form_of(provider.build_cancel(req))["expectedRestAmount"] == "0"
    outcome = provider.parse_cancel(req, answer(payload("cancel_full")))
    assert bare(outcome) == Cancelled(
        provider_txn_id=PAYMENT_ID, amount=Money(amount=12000), remaining=0
    )


@pytest.mark.parametrize(
    ("amount", "tax_free", "expected"),
    [
        (3000, 0, ("3000", "0")),  # partial, all taxable
        (3000, 1000, ("2000", "1000")),  # partial with a tax-free share
        (15000, 5000, ("10000", "5000")),  # full cancel of a mixed order
        (1000, 1000, ("0", "1000")),  # all tax-free
    ],
)
def test_cancel_sends_the_tax_free_share_it_is_given(
    provider: NaverPay, amount: int, tax_free: int, expected: tuple[str, str]
) -> None:
    order = make_order(15000, tax_free=5000)
    req = cancel_request(amount, remaining=15000, order=order, tax_free=tax_free)
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as naver:
        route = naver.post("/v1/cancel").mock(return_value=answer(payload("cancel_partial")))
        send(provider.build_cancel(req))
    form = form_of(route.calls.last.request)
    assert (form["taxScopeAmount"], form["taxExScopeAmount"]) == expected
    assert form["cancelAmount"] == str(amount)
    assert int(form["taxScopeAmount"]) + int(form["taxExScopeAmount"]) == amount


@pytest.mark.parametrize("tax_free", [-1, 3001])
def test_a_tax_free_share_outside_the_cancel_is_refused(provider: NaverPay, tax_free: int) -> None:
    with pytest.raises(InvalidRequest, match="tax-free share"):
        provider.build_cancel(cancel_request(3000, tax_free=tax_free))


def test_cancel_reason_is_kept_within_256_bytes(provider: NaverPay) -> None:
    form = form_of(provider.build_cancel(cancel_request(reason="환불 " * 100)))
    assert len(form["cancelReason"].encode()) <= 256
    assert form["cancelReason"].startswith("환불 환불")


@pytest.mark.parametrize(
    ("req_kwargs", "fragment"),
    [
        ({"amount": 13000, "remaining": 12000}, "still cancellable"),
        ({"amount": 5000, "remaining": 4000}, "still cancellable"),
        ({"reason": "   "}, "reason"),
    ],
)
def test_cancels_refused_before_sending(
    provider: NaverPay, req_kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        provider.build_cancel(cancel_request(**req_kwargs))


def test_cancel_not_complete_is_resolved_by_history_not_repeated(provider: NaverPay) -> None:
    err = error_of(
        provider.parse_cancel(cancel_request(), code_answer("CancelNotComplete", "취소 미완료"))
    )
    assert isinstance(err, OutcomeUnknown)
    assert err.provider_code == "CancelNotComplete"
    assert "history" in err.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"paymentId": "20170201NP0000000001", "totalRestAmount": 0}, "different paymentId"),
        ({"paymentId": PAYMENT_ID}, "no amounts"),
        ("nope", "unreadable"),
    ],
)
def test_a_cancel_success_missing_what_we_need_is_unknown(
    provider: NaverPay, body: Any, fragment: str
) -> None:
    response = answer({"code": "Success", "message": "성공", "body": body})
    err = error_of(provider.parse_cancel(cancel_request(), response))
    assert isinstance(err, OutcomeUnknown)
    assert fragment in err.message


def test_a_cancel_success_with_only_the_rest_amount(provider: NaverPay) -> None:
    response = answer({"code": "Success", "message": "성공", "body": {"totalRestAmount": 9000}})
    outcome = provider.parse_cancel(cancel_request(3000), response)
    assert bare(outcome) == Cancelled(
        provider_txn_id=PAYMENT_ID, amount=Money(amount=3000), remaining=9000
    )


def test_no_error_message_carries_a_secret_or_a_body(provider: NaverPay) -> None:
    failures = [
        provider.parse_approve(approve_request(), answer(payload("gateway_401"), status=401)),
        provider.parse_approve(approve_request(), code_answer("InvalidMerchant")),
        provider.parse_cancel(cancel_request(), code_answer("RestAmountDiff")),
        provider.parse_lookup(lookup_request(), answer(text=SECRET, status=500)),
    ]
    for outcome in failures:
        err = error_of(outcome)
        for text in (str(err), repr(err), err.message):
            assert SECRET not in text
            assert "{" not in text  # no JSON body pasted into a message
