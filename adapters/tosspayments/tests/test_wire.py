"""Toss Payments on the wire: requests built by the adapter, sent with httpx through respx,
answers parsed back. Hosts, paths, headers and bodies are Toss's documented ones."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx
from payfallback_tosspayments import SUPPORTED_METHODS, TossPayments
from pydantic import SecretStr
from tosspayments_support import (
    AMOUNT,
    ATTEMPT,
    AUTH,
    BASE,
    BILLING_KEY,
    BILLING_PAYMENT_KEY,
    CLIENT,
    CUSTOMER_KEY,
    PAYMENT_KEY,
    SECRET,
    TRACE,
    error,
    load,
    money_of,
    order,
    payment,
)

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.events import REDACTED
from payfallback.models import Instrument, Method, Money, RefundReceipt
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Outcome,
    Proof,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    load_provider,
)

KST = timezone(timedelta(hours=9))


def _send(request: httpx.Request, answer: httpx.Response) -> tuple[httpx.Request, httpx.Response]:
    """Send through respx as a client would; return what went out and what came back."""
    with respx.mock(base_url=BASE, assert_all_called=True, assert_all_mocked=True) as router:
        route = router.route(method=request.method, url=str(request.url)).mock(return_value=answer)
        with httpx.Client() as client:
            response = client.send(request)
        assert route.call_count == 1
        sent = route.calls.last.request
    return sent, response


def _error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


# -- the adapter as a provider --------------------------------------------------------------


def test_capabilities_declare_what_toss_offers(toss: TossPayments) -> None:
    caps = toss.capabilities
    assert isinstance(toss, Provider)
    assert toss.name == "tosspayments"
    assert caps.flows == frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE})
    assert caps.methods == SUPPORTED_METHODS
    assert {
        Method.CARD,
        Method.TOSSPAY,
        Method.BANK_TRANSFER,
        Method.VIRTUAL_ACCOUNT,
        Method.MOBILE,
    } <= caps.methods
    assert {
        Method.KAKAOPAY,
        Method.NAVERPAY,
        Method.PAYCO,
        Method.SAMSUNGPAY,
        Method.APPLEPAY,
    } <= caps.methods
    assert caps.lookup_by_order_id is True
    assert caps.idempotency_header == "Idempotency-Key"
    assert caps.idempotency_retention == timedelta(days=15)
    assert caps.idempotency_key_max_length == 300
    assert caps.partial_cancel is True
    assert caps.void_window is None
    assert caps.currencies == frozenset({"KRW"})
    assert caps.callback_txn_id_param == "paymentKey"
    # Toss: a billing charge takes up to 60 s; set the timeout to at least 60 s.
    assert caps.read_timeout == 60.0
    assert timedelta(minutes=10) == TossPayments.CONFIRM_WINDOW
    assert timedelta(minutes=30) == TossPayments.AUTH_WINDOW


def test_loads_by_entry_point_name_and_wraps_a_plain_string_secret() -> None:
    provider = load_provider("tosspayments", secret_key=SECRET)
    assert isinstance(provider, TossPayments)
    request = provider.build_lookup(
        LookupRequest(attempt_id=ATTEMPT, order=order(), provider_txn_id=None)
    )
    assert request.headers["Authorization"] == AUTH


def test_settings_narrow_methods_and_flows() -> None:
    toss = TossPayments(secret_key=SECRET, methods=[Method.CARD], flows=[Flow.SERVER_CHARGE])
    assert toss.capabilities.methods == frozenset({Method.CARD})
    assert toss.capabilities.flows == frozenset({Flow.SERVER_CHARGE})
    # Strings name methods too (settings often come from configuration files).
    assert TossPayments(secret_key=SECRET, methods=["card"]).capabilities.methods == {Method.CARD}
    with pytest.raises(ConfigurationError, match="does not offer wechat"):
        TossPayments(secret_key=SECRET, methods=[Method.CARD, "wechat"])


def test_repr_and_attributes_never_show_the_secret(toss: TossPayments) -> None:
    assert repr(toss) == "TossPayments(mode='test', base_url='https://api.tosspayments.com')"
    assert SECRET not in repr(vars(toss))
    assert SECRET not in str(vars(toss))


@pytest.mark.parametrize(
    ("secret_key", "client_key", "match"),
    [
        (CLIENT, None, "looks like a client key"),
        (SECRET, SECRET, "looks like a secret key"),
        ("   ", None, "secret_key is empty"),
        (SecretStr(""), None, "secret_key is empty"),
    ],
)
def test_refuses_keys_in_the_wrong_place(
    secret_key: str | SecretStr, client_key: str | None, match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        TossPayments(secret_key=secret_key, client_key=client_key)
    assert SECRET not in str(caught.value)
    assert CLIENT not in str(caught.value)


# -- ready: client-side ---------------------------------------------------------------------


def test_ready_sends_nothing_and_hands_the_sdk_its_parameters(
    toss: TossPayments, ready_req: ReadyRequest
) -> None:
    assert toss.build_ready(ready_req) is None
    outcome = toss.parse_ready(ready_req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id is None
    assert dict(outcome.redirect_urls) == {}
    assert dict(outcome.client_params) == {
        "clientKey": CLIENT,
        "orderId": ATTEMPT,
        "amount": "15000",
        "currency": "KRW",
        "orderName": "토스 티셔츠 외 2건",
        "successUrl": "https://shop.example/pay/success",
        "failUrl": "https://shop.example/pay/fail",
        "method": "CARD",
    }


@pytest.mark.parametrize(
    ("method", "sdk"),
    [
        (Method.TOSSPAY, {"method": "CARD", "flowMode": "DIRECT", "easyPay": "TOSSPAY"}),
        (Method.KAKAOPAY, {"method": "CARD", "flowMode": "DIRECT", "easyPay": "KAKAOPAY"}),
        (Method.NAVERPAY, {"method": "CARD", "flowMode": "DIRECT", "easyPay": "NAVERPAY"}),
        (Method.BANK_TRANSFER, {"method": "TRANSFER"}),
        (Method.VIRTUAL_ACCOUNT, {"method": "VIRTUAL_ACCOUNT"}),
        (Method.MOBILE, {"method": "MOBILE_PHONE"}),
    ],
)
def test_ready_names_the_sdk_method(
    toss: TossPayments, ready_req: ReadyRequest, method: Method, sdk: dict[str, str]
) -> None:
    req = ReadyRequest(
        attempt_id=ready_req.attempt_id,
        order=order(tax_free_amount=1_000),
        method=method,
        return_urls=ready_req.return_urls,
        idempotency_key="k",
    )
    assert toss.build_ready(req) is None
    outcome = toss.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    params = dict(outcome.client_params)
    assert {k: params[k] for k in sdk} == sdk
    assert set(params) - set(sdk) >= {"orderId", "amount", "successUrl", "failUrl"}
    assert params["taxFreeAmount"] == "1000"


def test_ready_without_client_key_leaves_it_to_the_page(ready_req: ReadyRequest) -> None:
    outcome = TossPayments(secret_key=SECRET).parse_ready(ready_req, None)
    assert isinstance(outcome, Redirect)
    assert "clientKey" not in outcome.client_params


def test_ready_refuses_what_toss_would(toss: TossPayments, ready_req: ReadyRequest) -> None:
    relative = ReadyRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.CARD,
        return_urls=type(ready_req.return_urls)(
            success="/pay/ok", cancel="/pay/no", fail="/pay/no"
        ),
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="absolute"):
        toss.build_ready(relative)
    short = ReadyRequest(
        attempt_id="A_1",
        order=order(),
        method=Method.CARD,
        return_urls=ready_req.return_urls,
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="6-64"):
        toss.build_ready(short)
    card_only = TossPayments(secret_key=SECRET, methods=[Method.CARD])
    wallet = ReadyRequest(
        attempt_id=ATTEMPT,
        order=order(),
        method=Method.KAKAOPAY,
        return_urls=ready_req.return_urls,
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="kakaopay is not offered"):
        card_only.build_ready(wallet)


# -- approve: POST /v1/payments/confirm -----------------------------------------------------


def test_confirm_wire_format(toss: TossPayments, approve_req: ApproveRequest) -> None:
    request = toss.build_approve(approve_req)
    sent, response = _send(request, payment("payment_done_card", orderId=ATTEMPT))
    assert sent.method == "POST"
    assert sent.url.host == "api.tosspayments.com"
    assert sent.url.scheme == "https"
    assert sent.url.path == "/v1/payments/confirm"
    assert sent.headers["Authorization"] == AUTH
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Idempotency-Key"] == "idem-approve-1"
    assert json.loads(sent.content) == {
        "paymentKey": PAYMENT_KEY,
        "orderId": ATTEMPT,
        "amount": 15000,
    }

    outcome = toss.parse_approve(approve_req, response)
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == PAYMENT_KEY
    assert outcome.amount == Money(amount=15_000, currency="KRW")
    assert outcome.provider_status == "DONE"
    assert outcome.approved_at is not None
    assert outcome.approved_at.isoformat() == "2021-01-01T10:05:40+09:00"


def test_the_same_attempt_always_carries_the_same_key(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    first, again = toss.build_approve(approve_req), toss.build_approve(approve_req)
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"] == "idem-approve-1"
    assert first.content == again.content


def test_confirm_of_an_easy_pay_wallet(toss: TossPayments, approve_req: ApproveRequest) -> None:
    outcome = toss.parse_approve(approve_req, payment("payment_done_tosspay", orderId=ATTEMPT))
    assert isinstance(outcome, Approved)
    assert outcome.amount.amount == AMOUNT


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"paymentKey": PAYMENT_KEY, "orderId": ATTEMPT, "amount": "1500"},
            "does not match the order amount",
        ),
        ({"paymentKey": PAYMENT_KEY, "amount": "15,000"}, "does not match the order amount"),
        (
            {"paymentKey": PAYMENT_KEY, "orderId": "ORDER-2024-0002_1", "amount": "15000"},
            "another checkout",
        ),
        ({"orderId": ATTEMPT, "amount": "15000"}, "no paymentKey"),
        ({"paymentKey": "x" * 201, "amount": "15000"}, "paymentKey must be 1-200 characters"),
        ({"code": "INVALID_CARD_COMPANY_CODE_NEW", "message": "?", "orderId": ATTEMPT}, "failUrl"),
    ],
)
def test_confirm_checks_the_callback_before_sending(
    toss: TossPayments, approve_req: ApproveRequest, params: dict[str, str], match: str
) -> None:
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=params,
        idempotency_key="idem-approve-1",
    )
    with respx.mock(assert_all_mocked=True) as router:  # nothing may be sent
        with pytest.raises(InvalidRequest, match=match) as caught:
            toss.build_approve(req)
        assert router.calls.call_count == 0
    assert caught.value.operation == "approve"
    assert caught.value.attempt_id == ATTEMPT


def test_fail_url_parameters_are_the_decline_they_describe(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.CARD,
        provider_txn_id=None,
        callback_params={
            "code": "PAY_PROCESS_CANCELED",
            "message": "사용자에 의해 결제가 취소되었습니다.",
            "orderId": ATTEMPT,
        },
        idempotency_key="k",
    )
    with pytest.raises(Declined, match="사용자에 의해") as caught:
        toss.build_approve(req)
    assert caught.value.provider_code == "PAY_PROCESS_CANCELED"


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        # A reused key replays another order's answer: never this order's success.
        (payment("payment_done_card", orderId="ORDER-2023-9999_1"), "not 'ORDER-2024-0001_1'"),
        (payment("payment_done_card", orderId=ATTEMPT, paymentKey=None), "no paymentKey"),
        (payment("payment_done_card", orderId=ATTEMPT, paymentKey="other"), "different paymentKey"),
        (payment("payment_done_card", orderId=ATTEMPT, totalAmount=None), "no totalAmount"),
        (payment("payment_in_progress", orderId=ATTEMPT), "a status other than DONE"),
        (payment("payment_done_card", orderId=ATTEMPT, currency="MUSD"), "cannot read"),
        (httpx.Response(200, text="<html>ok</html>"), "not a Payment"),
        (httpx.Response(200, json=["DONE"]), "not a Payment"),
    ],
)
def test_a_success_answer_missing_what_we_need_is_unknown(
    toss: TossPayments, approve_req: ApproveRequest, answer: httpx.Response, match: str
) -> None:
    error = _error_of(toss.parse_approve(approve_req, answer))
    assert isinstance(error, OutcomeUnknown)
    assert match in error.message
    assert error.operation == "approve"


def test_a_virtual_account_confirm_is_not_money_yet(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    outcome = toss.parse_approve(
        approve_req, payment("payment_waiting_for_deposit", orderId=ATTEMPT)
    )
    assert outcome == Status(
        state=TxnState.AWAITING_CUSTOMER,
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=AMOUNT),
        provider_status="WAITING_FOR_DEPOSIT",
    )


def test_errors_carry_code_request_id_and_tosss_message_but_no_secret(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    answer = error(403, "REJECT_CARD_COMPANY", "결제 승인이 거절되었습니다.")
    error_ = _error_of(toss.parse_approve(approve_req, answer))
    assert isinstance(error_, Declined)
    assert error_.provider == "tosspayments"
    assert error_.operation == "approve"
    assert error_.attempt_id == ATTEMPT
    assert error_.provider_code == "REJECT_CARD_COMPANY"
    assert error_.provider_request_id == TRACE
    assert "결제 승인이 거절되었습니다." in error_.message
    assert str(error_).startswith(f"Request {TRACE}: ")
    assert SECRET not in str(error_)
    assert AUTH not in str(error_)


def test_in_flight_replay_is_unknown_with_a_retry_hint(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    answer = error(409, "IDEMPOTENT_REQUEST_PROCESSING", "이전 멱등 요청이 처리중입니다.")
    error_ = _error_of(toss.parse_approve(approve_req, answer))
    # Not ProviderUnavailable: that would let the Router reroute while the first request
    # may still be charging the customer. RequestInFlight is the OutcomeUnknown that says
    # "replay with the same key later".
    assert type(error_) is RequestInFlight
    assert isinstance(error_, OutcomeUnknown)
    assert error_.retry_after == 1.0
    assert "SAME Idempotency-Key" in error_.message
    told = error(409, "IDEMPOTENT_REQUEST_PROCESSING", "처리중", **{"Retry-After": "3"})
    assert _error_of(toss.parse_approve(approve_req, told)).retry_after == 3.0


def test_idempotency_key_longer_than_toss_keeps_is_refused(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=approve_req.callback_params,
        idempotency_key="k" * 301,
    )
    with pytest.raises(InvalidRequest, match="1-300"):
        toss.build_approve(req)


# -- charge: POST /v1/billing/{billingKey} --------------------------------------------------


def test_billing_charge_wire_format(toss: TossPayments, charge_req: ChargeRequest) -> None:
    request = toss.build_charge(charge_req)
    answer = payment("payment_done_billing", orderId=ATTEMPT)
    sent, response = _send(request, answer)
    assert sent.method == "POST"
    assert sent.url.host == "api.tosspayments.com"
    # The billing key is one escaped path segment ("/" and "=" included).
    assert sent.url.raw_path == b"/v1/billing/Z_t5vOvQxrj4499PeiJcjen28-KCej3pWbLe3w%2Fyrk%3DSeCrEt"
    assert sent.headers["Authorization"] == AUTH
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Idempotency-Key"] == "idem-charge-1"
    assert json.loads(sent.content) == {
        "customerKey": CUSTOMER_KEY,
        "amount": 15000,
        "orderId": ATTEMPT,
        "orderName": "토스 티셔츠 외 2건",
    }
    assert BILLING_KEY.encode() not in sent.content

    outcome = toss.parse_charge(charge_req, response)
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == BILLING_PAYMENT_KEY
    assert outcome.amount == Money(amount=15_000)


def test_billing_charge_sends_the_tax_free_part(
    toss: TossPayments, charge_req: ChargeRequest
) -> None:
    req = ChargeRequest(
        attempt_id=ATTEMPT,
        order=order(tax_free_amount=5_000),
        instrument=charge_req.instrument,
        idempotency_key="k",
    )
    assert json.loads(toss.build_charge(req).content)["taxFreeAmount"] == 5000


@pytest.mark.parametrize(
    ("instrument", "match"),
    [
        (
            Instrument(provider="nicepay", billing_key=SecretStr(BILLING_KEY), customer_key="c1"),
            "belongs to 'nicepay'",
        ),
        (Instrument(provider="tosspayments", billing_key=SecretStr(BILLING_KEY)), "customer_key"),
        (
            Instrument(
                provider="tosspayments", billing_key=SecretStr("b" * 201), customer_key="c1"
            ),
            "1-200",
        ),
    ],
)
def test_billing_charge_checks_the_instrument(
    toss: TossPayments, instrument: Instrument, match: str
) -> None:
    req = ChargeRequest(
        attempt_id=ATTEMPT, order=order(), instrument=instrument, idempotency_key="k"
    )
    with pytest.raises(InvalidRequest, match=match) as caught:
        toss.build_charge(req)
    assert BILLING_KEY not in str(caught.value)


def test_billing_charge_answer_for_another_order_is_unknown(
    toss: TossPayments, charge_req: ChargeRequest
) -> None:
    outcome = toss.parse_charge(
        charge_req, payment("payment_done_billing", orderId="ORDER-2023-9999_1")
    )
    assert isinstance(_error_of(outcome), OutcomeUnknown)


# -- lookup ----------------------------------------------------------------------------------


def test_lookup_by_payment_key_wire_format(toss: TossPayments, lookup_req: LookupRequest) -> None:
    sent, response = _send(
        toss.build_lookup(lookup_req), payment("payment_done_card", orderId=ATTEMPT)
    )
    assert sent.method == "GET"
    assert sent.url.path == f"/v1/payments/{PAYMENT_KEY}"
    assert sent.headers["Authorization"] == AUTH
    assert "Idempotency-Key" not in sent.headers
    assert sent.content == b""
    assert money_of(toss.parse_lookup(lookup_req, response)) == Status(
        state=TxnState.PAID,
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=15_000),
        cancelled=0,
        provider_status="DONE",
    )


def test_lookup_by_order_id_needs_only_the_attempt_id(
    toss: TossPayments, lookup_by_order_req: LookupRequest
) -> None:
    sent, response = _send(
        toss.build_lookup(lookup_by_order_req), payment("payment_done_card", orderId=ATTEMPT)
    )
    assert sent.method == "GET"
    assert sent.url.path == f"/v1/payments/orders/{ATTEMPT}"
    outcome = toss.parse_lookup(lookup_by_order_req, response)
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.PAID
    assert outcome.provider_txn_id == PAYMENT_KEY


@pytest.mark.parametrize(
    ("name", "state", "cancelled"),
    [
        ("payment_ready", TxnState.AWAITING_CUSTOMER, 0),
        ("payment_in_progress", TxnState.IN_PROGRESS, 0),
        ("payment_waiting_for_deposit", TxnState.AWAITING_CUSTOMER, 0),
        ("payment_done_card", TxnState.PAID, 0),
        ("payment_partial_canceled", TxnState.PAID, 10_000),
        # Toss leaves a payment PARTIAL_CANCELED when its rest is cancelled too.
        ("payment_partial_canceled_to_zero", TxnState.CANCELLED, 15_000),
        ("payment_canceled", TxnState.CANCELLED, 15_000),
        ("payment_aborted", TxnState.NOT_PAID, 0),
        ("payment_expired", TxnState.NOT_PAID, 0),
    ],
)
def test_lookup_maps_each_status(
    toss: TossPayments, lookup_req: LookupRequest, name: str, state: TxnState, cancelled: int
) -> None:
    raw = load(name)["status"]
    outcome = toss.parse_lookup(lookup_req, payment(name, orderId=ATTEMPT))
    assert isinstance(outcome, Status)
    assert outcome.state is state
    assert outcome.cancelled == cancelled
    assert outcome.amount == Money(amount=15_000)
    assert outcome.provider_status == raw


def test_lookup_of_an_unknown_status_is_never_a_guess(
    toss: TossPayments, lookup_req: LookupRequest
) -> None:
    error_ = _error_of(
        toss.parse_lookup(lookup_req, payment("payment_done_card", orderId=ATTEMPT, status="HELD"))
    )
    assert isinstance(error_, OutcomeUnknown)
    assert error_.provider_code == "HELD"
    assert "does not know" in error_.message


def test_lookup_refuses_a_payment_of_another_order(
    toss: TossPayments, lookup_req: LookupRequest
) -> None:
    # A paymentKey from the browser could point at another (paid) payment: never take it.
    outcome = toss.parse_lookup(
        lookup_req, payment("payment_done_card", orderId="ORDER-2023-9999_1")
    )
    assert isinstance(_error_of(outcome), InvalidRequest)
    other_key = toss.parse_lookup(
        lookup_req, payment("payment_done_card", orderId=ATTEMPT, paymentKey="zzz")
    )
    assert isinstance(_error_of(other_key), InvalidRequest)


def test_lookup_of_a_payment_toss_never_had(
    toss: TossPayments, lookup_by_order_req: LookupRequest
) -> None:
    outcome = toss.parse_lookup(
        lookup_by_order_req, error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
    )
    assert outcome == Status(state=TxnState.NOT_FOUND, provider_txn_id=None)


def test_lookup_throttled_asks_to_come_back(toss: TossPayments, lookup_req: LookupRequest) -> None:
    answer = error(
        403,
        "FORBIDDEN_CONSECUTIVE_REQUEST",
        "반복적인 요청은 허용되지 않습니다.",
        **{"Retry-After": "2"},
    )
    error_ = _error_of(toss.parse_lookup(lookup_req, answer))
    assert isinstance(error_, ProviderUnavailable)
    assert error_.retry_after == 2.0


def test_lookup_answer_that_is_not_a_payment_is_no_answer(
    toss: TossPayments, lookup_req: LookupRequest
) -> None:
    assert isinstance(
        _error_of(toss.parse_lookup(lookup_req, httpx.Response(200, text="oops"))),
        ProviderUnavailable,
    )


# -- what proves a payment did not go through ----------------------------------------------


def test_a_same_key_replay_and_the_record_are_the_proofs_toss_offers(toss: TossPayments) -> None:
    caps = toss.capabilities
    assert caps.proofs == (Proof.REPLAY, Proof.RECORD)
    # Toss documents no settle window: "not found" after a timeout is never proof.
    assert caps.settle_window is None
    assert caps.failed_record_is_final is True
    assert caps.void_window is None


@pytest.mark.parametrize("by_order", [False, True])
@pytest.mark.parametrize(
    ("name", "state"),
    [
        # Toss's record of a confirm that failed, or of a window never confirmed in time.
        ("payment_aborted", TxnState.NOT_PAID),
        ("payment_expired", TxnState.NOT_PAID),
        # Authenticated, not confirmed yet: our confirm may still be on its way.
        ("payment_in_progress", TxnState.IN_PROGRESS),
        ("payment_done_card", TxnState.PAID),
    ],
)
def test_the_record_after_a_lost_confirm(
    toss: TossPayments,
    lookup_req: LookupRequest,
    lookup_by_order_req: LookupRequest,
    by_order: bool,
    name: str,
    state: TxnState,
) -> None:
    req = lookup_by_order_req if by_order else lookup_req
    outcome = toss.parse_lookup(req, payment(name, orderId=ATTEMPT))
    assert isinstance(outcome, Status)
    assert outcome.state is state
    assert outcome.provider_txn_id == PAYMENT_KEY


@pytest.mark.parametrize("by_order", [False, True])
def test_no_such_payment_is_not_found_never_not_paid(
    toss: TossPayments,
    lookup_req: LookupRequest,
    lookup_by_order_req: LookupRequest,
    by_order: bool,
) -> None:
    # GET /v1/payments/orders/{orderId} right after a lost billing charge may answer this
    # while Toss is still committing it: the adapter reports what Toss said, and the Router
    # (with no settle window here) never takes it as proof that nothing moved.
    req = lookup_by_order_req if by_order else lookup_req
    outcome = toss.parse_lookup(
        req, error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
    )
    assert outcome == Status(state=TxnState.NOT_FOUND, provider_txn_id=req.provider_txn_id)
    # "존재하지 않는 정보" without saying what is missing: no answer at all.
    vague = toss.parse_lookup(req, error(404, "NOT_FOUND", "존재하지 않는 정보 입니다."))
    assert isinstance(_error_of(vague), ProviderUnavailable)


def test_a_replay_answers_with_the_first_requests_outcome(
    toss: TossPayments, charge_req: ChargeRequest
) -> None:
    # The same attempt replayed with its key: Toss answers with the first request's
    # Payment, which names this attempt's orderId — taken as this attempt's outcome.
    first, again = toss.build_charge(charge_req), toss.build_charge(charge_req)
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    answer = payment("payment_done_billing", orderId=ATTEMPT)
    assert toss.parse_charge(charge_req, answer) == toss.parse_charge(charge_req, answer)
    outcome = toss.parse_charge(charge_req, answer)
    assert isinstance(outcome, Approved)
    # While the first one still runs: RequestInFlight, to be replayed with the same key.
    busy = toss.parse_charge(charge_req, error(409, "IDEMPOTENT_REQUEST_PROCESSING", "처리중"))
    assert type(_error_of(busy)) is RequestInFlight


# -- cancel: POST /v1/payments/{paymentKey}/cancel ------------------------------------------


def test_cancel_wire_format(toss: TossPayments, cancel_req: CancelRequest) -> None:
    sent, response = _send(
        toss.build_cancel(cancel_req), payment("payment_canceled", orderId=ATTEMPT)
    )
    assert sent.method == "POST"
    assert sent.url.path == f"/v1/payments/{PAYMENT_KEY}/cancel"
    assert sent.headers["Authorization"] == AUTH
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Idempotency-Key"] == "idem-cancel-1"
    assert json.loads(sent.content) == {
        "cancelReason": "고객 변심",
        "cancelAmount": 15000,
        "refundableAmount": 15000,
    }
    outcome = toss.parse_cancel(cancel_req, response)
    assert money_of(outcome) == Cancelled(
        provider_txn_id=PAYMENT_KEY, amount=Money(amount=15_000), remaining=0, settled=True
    )
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="090A796806E726BBB929F4A2CA7DB9A7",
        cancelled_at=datetime(2024, 2, 13, 12, 20, 23, tzinfo=KST),
        remaining=0,
    )
    # The answer as parsed, a field named like a secret hidden (Toss's virtual-account
    # ``secret``); the Router masks it again before keeping it.
    assert outcome.answer == {**response.json(), "secret": REDACTED}


def test_partial_cancel(toss: TossPayments, cancel_req: CancelRequest) -> None:
    req = CancelRequest(
        refund_id="R-2",
        attempt_id=ATTEMPT,
        order=cancel_req.order,
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=10_000),
        expected_remaining=15_000,
        reason="한 벌 반품",
        idempotency_key="idem-cancel-2",
    )
    body = json.loads(toss.build_cancel(req).content)
    assert body == {"cancelReason": "한 벌 반품", "cancelAmount": 10000, "refundableAmount": 15000}
    outcome = toss.parse_cancel(req, payment("payment_partial_canceled", orderId=ATTEMPT))
    assert money_of(outcome) == Cancelled(
        provider_txn_id=PAYMENT_KEY, amount=Money(amount=10_000), remaining=5_000, settled=True
    )
    # The refund's receipt: cancels[-1].transactionKey and canceledAt, balanceAmount left.
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="090A796806E726BBB929F4A2CA7DB9A7",
        cancelled_at=datetime(2024, 2, 13, 12, 20, 23, tzinfo=KST),
        remaining=5_000,
    )


def _cancel(
    cancel_req: CancelRequest, amount: int, remaining: int, tax_free: int, key: str = "k"
) -> CancelRequest:
    return dataclasses.replace(
        cancel_req,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        tax_free_amount=tax_free,
        idempotency_key=key,
    )


@pytest.mark.parametrize(
    ("amount", "remaining", "tax_free", "body"),
    [
        # A partial cancel with a tax-free share: taxFreeAmount is its tax-free part.
        (
            10_000,
            15_000,
            4_000,
            {
                "cancelReason": "고객 변심",
                "cancelAmount": 10000,
                "refundableAmount": 15000,
                "taxFreeAmount": 4000,
            },
        ),
        # A partial cancel without one: left out (Toss's documented default is 0).
        (
            10_000,
            15_000,
            0,
            {"cancelReason": "고객 변심", "cancelAmount": 10000, "refundableAmount": 15000},
        ),
        # The last part of a partly tax-free payment: the rest of the tax-free amount.
        (
            5_000,
            5_000,
            1_000,
            {
                "cancelReason": "고객 변심",
                "cancelAmount": 5000,
                "refundableAmount": 5000,
                "taxFreeAmount": 1000,
            },
        ),
        # All of it tax-free.
        (
            15_000,
            15_000,
            15_000,
            {
                "cancelReason": "고객 변심",
                "cancelAmount": 15000,
                "refundableAmount": 15000,
                "taxFreeAmount": 15000,
            },
        ),
    ],
)
def test_cancel_sends_the_tax_free_share(
    toss: TossPayments,
    cancel_req: CancelRequest,
    amount: int,
    remaining: int,
    tax_free: int,
    body: dict[str, object],
) -> None:
    req = _cancel(cancel_req, amount, remaining, tax_free, key="idem-cancel-tf")
    sent, _ = _send(toss.build_cancel(req), payment("payment_partial_canceled", orderId=ATTEMPT))
    assert sent.url.path == f"/v1/payments/{PAYMENT_KEY}/cancel"
    assert sent.headers["Idempotency-Key"] == "idem-cancel-tf"
    assert json.loads(sent.content) == body


@pytest.mark.parametrize("tax_free", [-1, 10_001])
def test_a_tax_free_share_outside_the_cancel_amount_is_refused(
    toss: TossPayments, cancel_req: CancelRequest, tax_free: int
) -> None:
    with pytest.raises(InvalidRequest, match="tax-free share") as caught:
        toss.build_cancel(_cancel(cancel_req, 10_000, 15_000, tax_free))
    assert caught.value.operation == "cancel"


@pytest.mark.parametrize(
    ("amount", "reason", "match"),
    [
        (15_001, "고객 변심", "only 15000 is still cancellable"),
        (0, "고객 변심", "greater than zero"),
        (1_000, "   ", "cancel reason"),
        (1_000, "x" * 201, "cancel reason"),
    ],
)
def test_cancel_is_refused_before_sending(
    toss: TossPayments, cancel_req: CancelRequest, amount: int, reason: str, match: str
) -> None:
    req = CancelRequest(
        refund_id="R-3",
        attempt_id=ATTEMPT,
        order=cancel_req.order,
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=amount),
        expected_remaining=15_000,
        reason=reason,
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match=match):
        toss.build_cancel(req)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (payment("payment_done_card", orderId=ATTEMPT), "without a cancel record"),
        (payment("payment_partial_canceled", orderId=ATTEMPT), "latest cancel is 10000"),
        (payment("payment_canceled", orderId=ATTEMPT, paymentKey="other"), "different paymentKey"),
    ],
)
def test_a_cancel_answer_that_does_not_show_our_cancel_is_unknown(
    toss: TossPayments, cancel_req: CancelRequest, answer: httpx.Response, expected: str
) -> None:
    error_ = _error_of(toss.parse_cancel(cancel_req, answer))
    assert isinstance(error_, OutcomeUnknown)
    assert expected in error_.message


def test_an_asynchronous_cancel_is_accepted_but_not_settled(
    toss: TossPayments, cancel_req: CancelRequest
) -> None:
    body = load("payment_canceled", orderId=ATTEMPT)
    body["cancels"][0]["cancelStatus"] = "IN_PROGRESS"
    outcome = toss.parse_cancel(cancel_req, httpx.Response(200, json=body))
    assert isinstance(outcome, Cancelled)
    assert outcome.settled is False
    body["cancels"][0]["cancelStatus"] = "ABORTED"
    assert isinstance(
        _error_of(toss.parse_cancel(cancel_req, httpx.Response(200, json=body))), OutcomeUnknown
    )


# -- void ------------------------------------------------------------------------------------


def test_there_is_no_void(toss: TossPayments) -> None:
    req = VoidRequest(
        attempt_id=ATTEMPT,
        order=order(),
        provider_txn_id=PAYMENT_KEY,
        amount=Money(amount=AMOUNT),
        idempotency_key="k",
    )
    with pytest.raises(NotImplementedError, match="tosspayments: void is not supported"):
        toss.build_void(req)


def test_other_than_krw_is_refused(toss: TossPayments, approve_req: ApproveRequest) -> None:
    usd = ApproveRequest(
        attempt_id=ATTEMPT,
        order=type(approve_req.order)(
            order_id="ORDER-2024-0001", amount=Money(amount=1500, currency="USD"), name="x"
        ),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params={"paymentKey": PAYMENT_KEY, "amount": "1500"},
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="KRW"):
        toss.build_approve(usd)
