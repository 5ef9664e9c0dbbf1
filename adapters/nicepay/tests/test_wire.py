"""The wire format NICEPAY expects, pinned with respx, and how its answers are read."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
from nicepay_support import (
    ATTEMPT,
    BID,
    BILLING_ATTEMPT,
    BILLING_TID,
    CLIENT_KEY,
    MANUAL_CLIENT_KEY,
    MANUAL_ORDER_ID,
    MANUAL_SECRET,
    MANUAL_TID,
    PAYLOADS,
    SECRET,
    TID,
    approve_request,
    callback,
    cancel_request,
    charge_request,
    load,
    lookup_request,
    make_order,
    money_of,
    provider,
    ready_request,
    void_request,
)
from payfallback_nicepay import KST, Nicepay
from payfallback_nicepay._wire import auth_signature, response_signature

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import LineItem, Method, Money, Order, RefundReceipt
from payfallback.provider import (
    Approved,
    Cancelled,
    Failed,
    Flow,
    Proof,
    Provider,
    Redirect,
    Status,
    TxnState,
    load_provider,
)

API = "https://api.nicepay.co.kr"
SANDBOX_API = "https://sandbox-api.nicepay.co.kr"


def basic(client_key: str = CLIENT_KEY, secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_key}:{secret}".encode()).decode()


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def error_of(outcome: object) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


# -- settings and capabilities ----------------------------------------------------------------


def test_capabilities_declare_what_nicepay_offers(nicepay: Nicepay) -> None:
    caps = nicepay.capabilities
    assert caps.methods == {
        Method.CARD,
        Method.BANK_TRANSFER,
        Method.KAKAOPAY,
        Method.NAVERPAY,
        Method.PAYCO,
        Method.SAMSUNGPAY,
    }
    assert caps.flows == {Flow.REDIRECT, Flow.SERVER_CHARGE}
    assert caps.lookup_by_order_id is True
    assert caps.idempotency_header is None
    assert caps.idempotency_retention is None
    assert caps.idempotency_key_max_length == 64
    assert caps.void_window == timedelta(hours=1)
    assert caps.partial_cancel is True
    assert caps.currencies == {"KRW"}
    assert caps.read_timeout == 30.0
    assert caps.callback_txn_id_param == "tid"


def test_the_one_proof_nicepay_offers_is_the_net_cancel(nicepay: Nicepay) -> None:
    caps = nicepay.capabilities
    # No documented settle window: "not found" is never proof by itself.
    assert caps.settle_window is None
    # A failed orderId can be paid again ("결제된 orderId로 재호출 불가" only refuses a paid
    # one): a failed record is not final.
    assert caps.failed_record_is_final is False
    assert caps.proofs == (Proof.VOID,)


def test_sandbox_cannot_partially_cancel(sandbox: Nicepay) -> None:
    assert sandbox.capabilities.partial_cancel is False
    assert sandbox.base_url == SANDBOX_API


def test_phone_billing_is_offered_once_the_goods_type_is_set() -> None:
    assert Method.MOBILE in provider(mobile_goods="physical").capabilities.methods
    with pytest.raises(ConfigurationError):
        provider(mobile_goods="software")


def test_load_provider_builds_it_from_the_entry_point() -> None:
    loaded = load_provider("nicepay", client_key=CLIENT_KEY, secret_key=SECRET, sandbox=True)
    assert isinstance(loaded, Nicepay)
    assert isinstance(loaded, Provider)
    assert loaded.name == "nicepay"
    assert loaded.sandbox is True


@pytest.mark.parametrize(
    ("client_key", "secret_key"), [("", SECRET), ("  ", SECRET), (CLIENT_KEY, "")]
)
def test_missing_keys_are_a_configuration_error(client_key: str, secret_key: str) -> None:
    with pytest.raises(ConfigurationError):
        Nicepay(client_key=client_key, secret_key=secret_key)


def test_repr_shows_no_key(nicepay: Nicepay) -> None:
    text = repr(nicepay) + str(vars(nicepay))
    assert SECRET not in text
    assert repr(nicepay) == "Nicepay(sandbox=False)"


# -- ready: the JS SDK opens the window -------------------------------------------------------


def test_ready_sends_nothing_and_hands_the_sdk_its_arguments(nicepay: Nicepay) -> None:
    req = ready_request()
    assert nicepay.build_ready(req) is None
    outcome = nicepay.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id is None
    assert outcome.redirect_urls == {}
    assert outcome.client_params == {
        "sdkUrl": "https://pay.nicepay.co.kr/v1/js/",
        "clientId": CLIENT_KEY,
        "method": "card",
        "orderId": ATTEMPT,
        "amount": "12000",
        "goodsName": "아메리카노 외 2건",
        "returnUrl": "https://shop.example/pay/nicepay/return",
    }


def test_sandbox_window_uses_the_sandbox_sdk(sandbox: Nicepay) -> None:
    outcome = sandbox.parse_ready(ready_request(), None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["sdkUrl"] == "https://sandbox-pay.nicepay.co.kr/v1/js/"


@pytest.mark.parametrize(
    ("method", "js"),
    [
        (Method.BANK_TRANSFER, "bank"),
        (Method.KAKAOPAY, "kakaopay"),
        (Method.NAVERPAY, "naverpayCard"),
        (Method.PAYCO, "payco"),
        (Method.SAMSUNGPAY, "samsungpayCard"),
    ],
)
def test_wallets_and_transfers_map_to_the_sdk_method(
    nicepay: Nicepay, method: Method, js: str
) -> None:
    outcome = nicepay.parse_ready(ready_request(method), None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["method"] == js


def test_phone_billing_passes_is_digital() -> None:
    content = provider(mobile_goods="content").parse_ready(ready_request(Method.MOBILE), None)
    physical = provider(mobile_goods="physical").parse_ready(ready_request(Method.MOBILE), None)
    assert isinstance(content, Redirect)
    assert isinstance(physical, Redirect)
    assert (content.client_params["method"], content.client_params["isDigital"]) == (
        "cellphone",
        "0",
    )
    assert physical.client_params["isDigital"] == "1"


def test_tax_free_amount_is_passed_to_the_window(nicepay: Nicepay) -> None:
    order = Order(order_id="ORD-1001", amount=Money(amount=12000), name="책", tax_free_amount=2000)
    outcome = nicepay.parse_ready(ready_request(order=order), None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["taxFreeAmt"] == "2000"


def test_goods_name_is_cut_to_forty_bytes(nicepay: Nicepay) -> None:
    name = "프리미엄 유기농 원두 커피 선물세트 1kg 2개 묶음 특가 한정판"
    outcome = nicepay.parse_ready(ready_request(order=make_order(name=name)), None)
    assert isinstance(outcome, Redirect)
    goods = outcome.client_params["goodsName"]
    assert name.startswith(goods)
    assert len(goods.encode("cp949")) <= 40
    assert len(goods) > 15


@pytest.mark.parametrize("method", [Method.TOSSPAY, Method.APPLEPAY, Method.VIRTUAL_ACCOUNT])
def test_methods_not_offered_are_refused_before_anything(nicepay: Nicepay, method: Method) -> None:
    with pytest.raises(InvalidRequest):
        nicepay.build_ready(ready_request(method))
    assert isinstance(error_of(nicepay.parse_ready(ready_request(method), None)), InvalidRequest)


def test_phone_billing_without_goods_type_is_a_configuration_error(nicepay: Nicepay) -> None:
    with pytest.raises(ConfigurationError, match="mobile_goods"):
        nicepay.build_ready(ready_request(Method.MOBILE))


def test_other_currencies_are_refused(nicepay: Nicepay) -> None:
    order = Order(order_id="ORD-1001", amount=Money(amount=1000, currency="USD"), name="x")
    with pytest.raises(InvalidRequest, match="KRW"):
        nicepay.build_ready(ready_request(order=order))


# -- approve ----------------------------------------------------------------------------------


def test_approve_posts_the_amount_to_the_tid(nicepay: Nicepay) -> None:
    req = approve_request()
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/payments/{TID}").mock(
            return_value=answer(load("approve_paid.json"))
        )
        response = send(nicepay.build_approve(req))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic()
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(sent.content) == {"amount": 12000}
    outcome = nicepay.parse_approve(req, response)
    assert money_of(outcome) == Approved(
        provider_txn_id=TID,
        amount=Money(amount=12000),
        approved_at=datetime(2022, 10, 15, 15, 30, tzinfo=KST),
        provider_status="paid",
    )


def test_approve_goes_to_the_sandbox_host_in_the_sandbox(sandbox: Nicepay) -> None:
    with respx.mock(base_url=SANDBOX_API, assert_all_called=True) as mock:
        mock.post(f"/v1/payments/{TID}").mock(return_value=answer(load("approve_paid.json")))
        response = send(sandbox.build_approve(approve_request()))
    assert isinstance(sandbox.parse_approve(approve_request(), response), Approved)


def test_the_manuals_sandbox_example_verifies_end_to_end() -> None:
    """common/test.md: its callback and its approval answer, with its own sandbox keys."""
    manual = Nicepay(client_key=MANUAL_CLIENT_KEY, secret_key=MANUAL_SECRET, sandbox=True)
    params = json.loads(load_text("manual_sandbox_callback.json"))
    order = Order(order_id="b0980639-52db", amount=Money(amount=1004), name="나이스페이-상품")
    req = approve_request(params, order=order, attempt_id=MANUAL_ORDER_ID)
    with respx.mock(base_url=SANDBOX_API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/payments/{MANUAL_TID}").mock(
            return_value=answer(json.loads(load_text("manual_sandbox_approve.json")))
        )
        response = send(manual.build_approve(req))
    assert route.calls.last.request.headers["Authorization"] == basic(
        MANUAL_CLIENT_KEY, MANUAL_SECRET
    )
    outcome = manual.parse_approve(req, response)
    assert isinstance(outcome, Approved)
    assert (outcome.provider_txn_id, outcome.amount) == (MANUAL_TID, Money(amount=1004))


def load_text(name: str) -> str:
    return (PAYLOADS / name).read_text(encoding="utf-8")


def test_signature_formulas_match_the_manuals_example() -> None:
    assert (
        response_signature(
            tid=MANUAL_TID,
            amount=1004,
            edi_date="2021-10-05T16:56:34.447+0900",
            secret_key=MANUAL_SECRET,
        )
        == "28c2e8bae912847541d4885db17648f963c7cc8e8249ff010097d6f1395df993"
    )
    assert (
        auth_signature(
            auth_token="NICEUNTT9FBBD87FD2393AFEE45A7DCA61C194AA",
            client_id=MANUAL_CLIENT_KEY,
            amount=1004,
            secret_key=MANUAL_SECRET,
        )
        == "7cc95c592e2a12f0292e1a20d68dd9eb8132fd3c0af675b981a4c1c2ce63a93b"
    )


@pytest.mark.parametrize(
    ("code", "msg"), [("I002", "사용자가 결제를 취소하였습니다"), ("C002", "")]
)
def test_a_failed_authentication_is_declined_without_sending(
    nicepay: Nicepay, code: str, msg: str
) -> None:
    params = {**callback(code=code), "authResultMsg": msg}
    with pytest.raises(Declined) as caught:
        nicepay.build_approve(approve_request(params))
    assert caught.value.provider_code == code
    assert caught.value.attempt_id == ATTEMPT
    assert caught.value.operation == "approve"


@pytest.mark.parametrize(
    ("params", "why"),
    [
        (callback(amount=1000), "amount"),
        ({**callback(), "amount": "12,000"}, "amount"),
        (callback(order_id="ORD-9999_1"), "orderId"),
        ({**callback(), "signature": "0" * 64}, "signature"),
        (callback(secret="another-secret"), "signature"),
        (callback(client_key="S2_window_opened_with_other_keys"), "signature"),
        ({k: v for k, v in callback().items() if k != "tid"}, "tid"),
        ({k: v for k, v in callback().items() if k != "signature"}, "signature"),
        ({k: v for k, v in callback().items() if k != "authResultCode"}, "authResultCode"),
    ],
)
def test_a_callback_that_does_not_match_the_order_is_not_approved(
    nicepay: Nicepay, params: dict[str, str], why: str
) -> None:
    with pytest.raises(InvalidRequest, match=why):
        nicepay.build_approve(approve_request(params))


def test_a_forged_amount_in_the_callback_is_refused_even_when_signed_for_it(
    nicepay: Nicepay,
) -> None:
    # Signed correctly for 1,000 won, but the order is 12,000: never approve another amount.
    with pytest.raises(InvalidRequest, match="amount"):
        nicepay.build_approve(approve_request(callback(amount=1000)))


def approve_with(nicepay: Nicepay, body: Any, status: int = 200) -> object:
    req = approve_request()
    return nicepay.parse_approve(req, answer(body, status))


def test_a_success_whose_signature_does_not_verify_is_unknown(nicepay: Nicepay) -> None:
    tampered = {**load("approve_paid.json"), "amount": 1200}  # signed for 12,000
    error = error_of(approve_with(nicepay, tampered))
    assert isinstance(error, OutcomeUnknown)
    assert "signature" in error.message
    assert error.provider_code == "0000"


def test_a_success_signed_with_another_secret_is_unknown(nicepay: Nicepay) -> None:
    body = load("approve_paid.json")
    body["signature"] = response_signature(
        tid=TID, amount=12000, edi_date=body["ediDate"], secret_key="not-our-secret"
    )
    assert isinstance(error_of(approve_with(nicepay, body)), OutcomeUnknown)


def test_a_success_without_signature_is_accepted(nicepay: Nicepay) -> None:
    # The manual lists signature as optional; only one that is present must verify.
    outcome = approve_with(nicepay, {**load("approve_paid.json"), "signature": None})
    assert isinstance(outcome, Approved)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"tid": None}, "no tid"),
        ({"amount": None, "signature": None}, "no amount"),
        ({"tid": "nicuntct1m0101221015153000ZZZZ", "signature": None}, "another tid"),
        ({"orderId": "ORD-9999_1"}, "another orderId"),
        ({"status": "failed"}, "status"),
        ({"status": "ready"}, "status"),
        ({"currency": "XYZ"}, "currency"),
    ],
)
def test_a_success_missing_what_we_need_is_unknown(
    nicepay: Nicepay, change: dict[str, Any], why: str
) -> None:
    error = error_of(approve_with(nicepay, {**load("approve_paid.json"), **change}))
    assert isinstance(error, OutcomeUnknown)
    assert why in error.message


def test_the_approved_amount_is_what_nicepay_says(nicepay: Nicepay) -> None:
    body = load("approve_paid.json", amount=11000, signature="SIGNED")
    outcome = approve_with(nicepay, body)
    assert isinstance(outcome, Approved)
    assert outcome.amount == Money(amount=11000)  # the Router compares it with the order


def test_extra_fields_and_an_undocumented_pay_method_do_not_break_a_success(
    nicepay: Nicepay,
) -> None:
    body = load("approve_paid.json", payMethod="tosspay", newField={"x": 1})
    assert isinstance(approve_with(nicepay, body), Approved)


def test_a_decline_is_declined(nicepay: Nicepay) -> None:
    error = error_of(approve_with(nicepay, load("approve_declined.json")))
    assert isinstance(error, Declined)
    assert error.provider_code == "3011"
    assert "카드번호 오류" in error.message


def test_card_numbers_echoed_in_a_message_are_masked(nicepay: Nicepay) -> None:
    body = {"resultCode": "3011", "resultMsg": "카드번호 오류 (5361123412341234)\n재시도"}
    error = error_of(approve_with(nicepay, body))
    assert "5361123412341234" not in str(error)
    assert "\n" not in error.message
    assert "[card ****1234]" in error.message


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, None, ConfigurationError),
        (403, None, ConfigurationError),
        (401, {"resultCode": "U304", "resultMsg": "BASIC AUTHENTICATION 실패"}, ConfigurationError),
        (500, None, OutcomeUnknown),
        (502, {"resultCode": "0000"}, OutcomeUnknown),
        (503, None, ProviderUnavailable),
        (429, None, ProviderUnavailable),
        (404, None, InvalidRequest),
        (200, None, OutcomeUnknown),
        (200, {"resultMsg": "no code"}, OutcomeUnknown),
        (200, {"resultCode": "0000"}, OutcomeUnknown),
    ],
)
def test_http_answers_without_a_usable_code(
    nicepay: Nicepay, status: int, body: dict[str, str] | None, kind: type[PayfallbackError]
) -> None:
    response = (
        httpx.Response(status, text="<html>error</html>") if body is None else answer(body, status)
    )
    error = error_of(nicepay.parse_approve(approve_request(), response))
    assert type(error) is kind
    assert (error.provider, error.operation, error.attempt_id) == ("nicepay", "approve", ATTEMPT)


def test_retry_after_and_request_id_are_kept(nicepay: Nicepay) -> None:
    response = answer(
        {"resultCode": "A246", "resultMsg": "비정상 과다접속으로 인한 오류입니다"},
        200,
        **{"Retry-After": "7", "X-Request-Id": "req-42"},
    )
    error = error_of(nicepay.parse_charge(charge_request(), response))
    assert isinstance(error, ProviderUnavailable)
    assert error.retry_after == 7.0
    assert error.provider_request_id == "req-42"


# -- charge (billing key) ---------------------------------------------------------------------


def test_charge_posts_to_the_billing_key(nicepay: Nicepay) -> None:
    req = charge_request()
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/subscribe/{BID}/payments").mock(
            return_value=answer(load("billing_paid.json"))
        )
        response = send(nicepay.build_charge(req))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic()
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(sent.content) == {
        "orderId": BILLING_ATTEMPT,
        "amount": 9900,
        "goodsName": "월간 구독",
        "cardQuota": 0,
        "useShopInterest": False,
    }
    outcome = nicepay.parse_charge(req, response)
    assert isinstance(outcome, Approved)
    assert (outcome.provider_txn_id, outcome.amount) == (BILLING_TID, Money(amount=9900))


def test_a_replayed_charge_sends_the_same_order_id(nicepay: Nicepay) -> None:
    # No idempotency header: the attempt's orderId is what makes a replay safe.
    first, second = nicepay.build_charge(charge_request()), nicepay.build_charge(charge_request())
    assert first.content == second.content
    assert first.url == second.url
    assert "Idempotency-Key" not in first.headers


def test_charge_sends_the_tax_free_amount(nicepay: Nicepay) -> None:
    order = Order(
        order_id="SUB-2001",
        amount=Money(amount=9900),
        name="도서 구독",
        tax_free_amount=9900,
        items=(LineItem(name="도서", unit_price=Money(amount=9900)),),
    )
    req = charge_request()
    req = type(req)(
        attempt_id=req.attempt_id,
        order=order,
        instrument=req.instrument,
        idempotency_key=req.idempotency_key,
    )
    assert json.loads(nicepay.build_charge(req).content)["taxFreeAmt"] == 9900


def test_a_charge_answer_for_another_order_is_unknown(nicepay: Nicepay) -> None:
    body = load("billing_paid.json", orderId="SUB-9999_1")
    assert isinstance(
        error_of(nicepay.parse_charge(charge_request(), answer(body))), OutcomeUnknown
    )


def test_an_instrument_of_another_provider_is_refused(nicepay: Nicepay) -> None:
    with pytest.raises(InvalidRequest) as caught:
        nicepay.build_charge(charge_request(instrument_provider="tosspayments"))
    assert BID not in str(caught.value)


def test_an_empty_billing_key_is_refused(nicepay: Nicepay) -> None:
    with pytest.raises(InvalidRequest, match="billing key"):
        nicepay.build_charge(charge_request(bid="  "))


def test_a_duplicate_order_id_is_resolved_by_lookup_not_retried(nicepay: Nicepay) -> None:
    error = error_of(nicepay.parse_charge(charge_request(), answer(load("duplicate_order.json"))))
    assert isinstance(error, OutcomeUnknown)
    assert error.provider_code == "A127"


# -- lookup -----------------------------------------------------------------------------------


def test_lookup_by_tid(nicepay: Nicepay) -> None:
    req = lookup_request()
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.get(f"/v1/payments/{TID}").mock(return_value=answer(load("lookup_paid.json")))
        response = send(nicepay.build_lookup(req))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic()
    assert sent.url.query == b""
    assert sent.content == b""
    assert money_of(nicepay.parse_lookup(req, response)) == Status(
        state=TxnState.PAID,
        provider_txn_id=TID,
        amount=Money(amount=12000),
        cancelled=0,
        provider_status="paid",
    )


def test_lookup_by_order_id_sends_the_order_date_in_kst(nicepay: Nicepay) -> None:
    req = lookup_request(tid=None)
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.get(f"/v1/payments/find/{ATTEMPT}", params={"orderDate": "20221015"}).mock(
            return_value=answer(load("lookup_paid.json"))
        )
        response = send(nicepay.build_lookup(req))
    assert route.calls.last.request.headers["Authorization"] == basic()
    outcome = nicepay.parse_lookup(req, response)
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.PAID


@pytest.mark.parametrize(
    ("attempted_at", "order_date"),
    [
        (datetime(2022, 10, 15, 14, 59, tzinfo=UTC), "20221015"),  # 23:59 KST
        (datetime(2022, 10, 15, 15, 0, tzinfo=UTC), "20221016"),  # 00:00 KST next day
        (datetime(2022, 10, 15, 15, 30), "20221016"),  # naive: taken as UTC
        (datetime(2022, 10, 16, 1, 0, tzinfo=timezone(timedelta(hours=9))), "20221016"),
    ],
)
def test_the_order_date_is_the_kst_date_of_the_attempt(
    nicepay: Nicepay, attempted_at: datetime, order_date: str
) -> None:
    request = nicepay.build_lookup(lookup_request(tid=None, attempted_at=attempted_at))
    assert request.url.params["orderDate"] == order_date


def test_lookup_by_order_id_without_a_date_is_refused(nicepay: Nicepay) -> None:
    with pytest.raises(InvalidRequest, match="attempted_at"):
        nicepay.build_lookup(lookup_request(tid=None, attempted_at=None))


def lookup_with(nicepay: Nicepay, body: Any, *, tid: str | None = TID, **kw: Any) -> object:
    return nicepay.parse_lookup(lookup_request(tid=tid, **kw), answer(body))


@pytest.mark.parametrize(
    ("name", "overrides", "state", "cancelled"),
    [
        ("lookup_paid.json", {}, TxnState.PAID, 0),
        ("lookup_partial_cancelled.json", {}, TxnState.PAID, 5000),
        ("lookup_paid.json", {"status": "cancelled", "balanceAmt": 0}, TxnState.CANCELLED, 12000),
        ("lookup_failed.json", {}, TxnState.NOT_PAID, 0),
        ("lookup_failed.json", {"status": "expired"}, TxnState.NOT_PAID, 0),
        ("lookup_failed.json", {"status": "ready"}, TxnState.IN_PROGRESS, 0),
        (
            "lookup_failed.json",
            {"status": "ready", "payMethod": "vbank"},
            TxnState.AWAITING_CUSTOMER,
            0,
        ),
        # An inquiry may carry the failed approval's own code: the status still tells.
        ("approve_declined.json", {}, TxnState.NOT_PAID, 0),
    ],
)
def test_every_documented_status_has_a_state(
    nicepay: Nicepay, name: str, overrides: dict[str, Any], state: TxnState, cancelled: int
) -> None:
    outcome = lookup_with(nicepay, load(name, **overrides))
    assert isinstance(outcome, Status)
    assert (outcome.state, outcome.cancelled, outcome.provider_txn_id) == (state, cancelled, TID)


def test_not_found_is_not_found(nicepay: Nicepay) -> None:
    outcome = lookup_with(nicepay, load("not_found.json"), tid=None)
    assert outcome == Status(state=TxnState.NOT_FOUND, provider_status="A118")


def test_not_found_near_midnight_kst_is_not_proof(nicepay: Nicepay) -> None:
    late = datetime(2022, 10, 15, 14, 55, tzinfo=UTC)  # 23:55 KST
    error = error_of(lookup_with(nicepay, load("not_found.json"), tid=None, attempted_at=late))
    assert isinstance(error, OutcomeUnknown)
    assert "midnight" in error.message
    # By tid the date plays no part.
    by_tid = lookup_with(nicepay, load("not_found.json"), attempted_at=late)
    assert isinstance(by_tid, Status)
    assert by_tid.state is TxnState.NOT_FOUND


def test_an_undocumented_status_is_never_read_as_paid_or_unpaid(nicepay: Nicepay) -> None:
    error = error_of(lookup_with(nicepay, load("lookup_paid.json", status="refunded")))
    assert isinstance(error, ProviderUnavailable)
    assert "refunded" in error.message


def test_a_lookup_whose_signature_does_not_verify_is_not_trusted(nicepay: Nicepay) -> None:
    body = {**load("lookup_paid.json"), "status": "failed"}  # keeps the paid answer's signature
    body["signature"] = response_signature(
        tid=TID, amount=12000, edi_date=body["ediDate"], secret_key="not-our-secret"
    )
    assert isinstance(error_of(lookup_with(nicepay, body)), ProviderUnavailable)


def test_a_lookup_answer_for_another_order_is_refused(nicepay: Nicepay) -> None:
    body = load("lookup_paid.json", orderId="ORD-9999_1")
    assert isinstance(error_of(lookup_with(nicepay, body)), InvalidRequest)


def test_a_paid_answer_without_an_amount_is_not_trusted(nicepay: Nicepay) -> None:
    body = {**load("lookup_paid.json"), "amount": None, "signature": None}
    assert isinstance(error_of(lookup_with(nicepay, body)), ProviderUnavailable)


def test_a_server_error_on_lookup_is_unavailable(nicepay: Nicepay) -> None:
    response = httpx.Response(500, text="Internal Server Error")
    error = error_of(nicepay.parse_lookup(lookup_request(), response))
    assert isinstance(error, ProviderUnavailable)


# -- cancel -----------------------------------------------------------------------------------


def test_full_cancel_leaves_cancel_amt_out(nicepay: Nicepay) -> None:
    req = cancel_request()
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/payments/{TID}/cancel").mock(
            return_value=answer(load("cancel_full.json"))
        )
        response = send(nicepay.build_cancel(req))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic()
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(sent.content) == {
        "reason": "고객 요청",
        "orderId": "rf_3f2a9c1e5b7d4f60a1b2",
    }
    outcome = nicepay.parse_cancel(req, response)
    assert money_of(outcome) == Cancelled(
        provider_txn_id=TID, amount=Money(amount=12000), remaining=0
    )
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id=TID,  # a full cancel's cancelledTid is the tid itself
        cancelled_at=datetime(2022, 10, 16, 10, 0, tzinfo=KST),
        remaining=0,
    )


def test_partial_cancel_sends_cancel_amt(nicepay: Nicepay) -> None:
    req = cancel_request(amount=5000)
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/payments/{TID}/cancel").mock(
            return_value=answer(load("cancel_partial.json"))
        )
        response = send(nicepay.build_cancel(req))
    assert json.loads(route.calls.last.request.content)["cancelAmt"] == 5000
    outcome = nicepay.parse_cancel(req, response)
    assert money_of(outcome) == Cancelled(
        provider_txn_id=TID, amount=Money(amount=5000), remaining=7000
    )
    # A partial cancel has its own tid (cancelledTid), found again in cancels[].
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="nicuntct1m0101221016100000C001",
        cancelled_at=datetime(2022, 10, 16, 10, 0, tzinfo=KST),
        remaining=7000,
    )


def test_cancelling_the_rest_after_a_partial_cancel_names_the_amount(nicepay: Nicepay) -> None:
    body = json.loads(nicepay.build_cancel(cancel_request(amount=7000, remaining=7000)).content)
    assert body["cancelAmt"] == 7000


def test_a_retried_cancel_sends_the_same_order_id(nicepay: Nicepay) -> None:
    first = nicepay.build_cancel(cancel_request(amount=5000))
    again = nicepay.build_cancel(cancel_request(amount=5000))
    # A later try of the same refund under a fresh idempotency key is still the same
    # cancel to NICEPAY: an earlier try that committed late makes it refuse this one.
    rekeyed = nicepay.build_cancel(cancel_request(amount=5000, key="9" * 32))
    other = nicepay.build_cancel(cancel_request(amount=5000, refund_id="rf_0000000000000000002"))
    assert first.content == again.content == rekeyed.content
    assert json.loads(first.content)["orderId"] != json.loads(other.content)["orderId"]


def test_a_cancel_over_what_is_left_is_refused_before_sending(nicepay: Nicepay) -> None:
    with pytest.raises(InvalidRequest, match="only 7000 is still cancellable"):
        nicepay.build_cancel(cancel_request(amount=8000, remaining=7000))


def test_a_refund_id_too_long_for_order_id_is_refused(nicepay: Nicepay) -> None:
    with pytest.raises(InvalidRequest, match="64"):
        nicepay.build_cancel(cancel_request(refund_id="r" * 65))


def test_a_cancel_answer_for_another_tid_is_unknown(nicepay: Nicepay) -> None:
    body = {**load("cancel_full.json"), "tid": "nicuntct1m0101221015153000ZZZZ", "signature": None}
    error = error_of(nicepay.parse_cancel(cancel_request(), answer(body)))
    assert isinstance(error, OutcomeUnknown)


def test_a_cancel_success_that_does_not_say_how_much_is_unknown(nicepay: Nicepay) -> None:
    body = {**load("cancel_full.json"), "cancels": None, "balanceAmt": None}
    assert isinstance(
        error_of(nicepay.parse_cancel(cancel_request(), answer(body))), OutcomeUnknown
    )


def test_already_cancelled_is_resolved_by_lookup(nicepay: Nicepay) -> None:
    body = {"resultCode": "2013", "resultMsg": "취소 완료 거래"}
    error = error_of(nicepay.parse_cancel(cancel_request(), answer(body)))
    assert isinstance(error, OutcomeUnknown)


def taxed_order(tax_free: int = 2000) -> Order:
    return Order(
        order_id="ORD-1001", amount=Money(amount=12000), name="책과 커피", tax_free_amount=tax_free
    )


def test_a_partial_cancel_sends_its_tax_free_share(nicepay: Nicepay) -> None:
    req = cancel_request(amount=6000, tax_free=1000, order=taxed_order())
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post(f"/v1/payments/{TID}/cancel").mock(
            return_value=answer(load("cancel_partial.json"))
        )
        send(nicepay.build_cancel(req))
    assert json.loads(route.calls.last.request.content) == {
        "reason": "고객 요청",
        "orderId": "rf_3f2a9c1e5b7d4f60a1b2",
        "cancelAmt": 6000,
        "taxFreeAmt": 1000,
    }


def test_a_partial_cancel_without_a_tax_free_part_sends_none(nicepay: Nicepay) -> None:
    body = json.loads(nicepay.build_cancel(cancel_request(amount=5000)).content)
    assert body == {
        "reason": "고객 요청",
        "orderId": "rf_3f2a9c1e5b7d4f60a1b2",
        "cancelAmt": 5000,
    }


def test_a_zero_tax_free_share_of_a_taxed_order_is_said_explicitly(nicepay: Nicepay) -> None:
    # The order has a tax-free part but this cancel takes none of it: NICEPAY is told so
    # rather than left to guess.
    body = json.loads(nicepay.build_cancel(cancel_request(amount=100, order=taxed_order())).content)
    assert (body["cancelAmt"], body["taxFreeAmt"]) == (100, 0)


def test_a_full_cancel_of_a_taxed_order_sends_the_tax_free_share(nicepay: Nicepay) -> None:
    body = json.loads(
        nicepay.build_cancel(cancel_request(tax_free=2000, order=taxed_order())).content
    )
    assert body == {
        "reason": "고객 요청",
        "orderId": "rf_3f2a9c1e5b7d4f60a1b2",
        "taxFreeAmt": 2000,
    }


@pytest.mark.parametrize("tax_free", [-1, 6001])
def test_a_tax_free_share_outside_the_cancel_is_refused(nicepay: Nicepay, tax_free: int) -> None:
    with pytest.raises(InvalidRequest, match="tax-free"):
        nicepay.build_cancel(cancel_request(amount=6000, tax_free=tax_free, order=taxed_order()))


def test_the_sandbox_refuses_a_partial_cancel_before_sending(sandbox: Nicepay) -> None:
    with pytest.raises(InvalidRequest, match="only in full"):
        sandbox.build_cancel(cancel_request(amount=5000))
    assert "cancelAmt" not in json.loads(sandbox.build_cancel(cancel_request()).content)


def test_partial_cancel_in_the_sandbox_is_refused_by_nicepay(sandbox: Nicepay) -> None:
    body = {"resultCode": "U128", "resultMsg": "부분취소는 운영 환경에서 이용 가능"}
    error = error_of(sandbox.parse_cancel(cancel_request(amount=5000), answer(body)))
    assert isinstance(error, InvalidRequest)


# -- void (net cancel) ------------------------------------------------------------------------


def test_void_is_a_net_cancel_by_order_id(nicepay: Nicepay) -> None:
    req = void_request()
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        route = mock.post("/v1/payments/netcancel").mock(
            return_value=answer(load("netcancel.json"))
        )
        response = send(nicepay.build_void(req))
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == basic()
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(sent.content) == {"orderId": ATTEMPT}
    outcome = nicepay.parse_void(req, response)
    assert money_of(outcome) == Cancelled(
        provider_txn_id=TID, amount=Money(amount=12000), remaining=0
    )
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id=TID, cancelled_at=datetime(2022, 10, 15, 15, 31, tzinfo=KST), remaining=0
    )


def test_void_after_the_window_is_refused_by_nicepay(nicepay: Nicepay) -> None:
    error = error_of(nicepay.parse_void(void_request(), answer(load("net_cancel_expired.json"))))
    assert isinstance(error, InvalidRequest)
    assert error.provider_code == "2020"


def test_nothing_to_void_is_settled_by_lookup(nicepay: Nicepay) -> None:
    error = error_of(nicepay.parse_void(void_request(), answer(load("not_found.json"))))
    assert isinstance(error, OutcomeUnknown)


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        ("A118", "조회 결과데이터 없음"),
        ("2012", "취소 해당거래 없음"),
        ("U122", "취소 해당거래 없음"),
        ("U126", "orderId가 존재 하지 않습니다."),
        ("A251", "거래내역이 존재하지 않습니다."),
    ],
)
def test_a_net_cancel_finding_no_transaction_is_no_proof(
    nicepay: Nicepay, code: str, msg: str
) -> None:
    # The manual does not say what a net cancel of a transaction that never happened
    # answers, and the approval may still be committing: never "cancelled", never final.
    outcome = nicepay.parse_void(void_request(), answer({"resultCode": code, "resultMsg": msg}))
    error = error_of(outcome)
    assert isinstance(error, OutcomeUnknown)
    assert error.provider_code == code
    assert "no proof" in error.message


def test_an_acknowledged_net_cancel_is_settled(nicepay: Nicepay) -> None:
    outcome = nicepay.parse_void(void_request(tid=TID), answer(load("netcancel.json")))
    assert isinstance(outcome, Cancelled)
    assert outcome.settled is True
    assert (outcome.provider_txn_id, outcome.amount, outcome.remaining) == (
        TID,
        Money(amount=12000),
        0,
    )


@pytest.mark.parametrize(
    "change",
    [
        {"status": None},
        {"status": "partialCancelled", "balanceAmt": 2000},
        {"status": "failed"},
        {"balanceAmt": 2000},
        {"amount": None, "signature": None},
        {"orderId": "ORD-9999_1"},
        {"signature": "0" * 64},
    ],
)
def test_a_net_cancel_that_is_not_acknowledged_in_full_is_no_proof(
    nicepay: Nicepay, change: dict[str, Any]
) -> None:
    body = {**load("netcancel.json"), **change}
    outcome = nicepay.parse_void(void_request(), answer(body))
    assert isinstance(error_of(outcome), OutcomeUnknown)


def test_a_lookup_by_order_id_right_after_a_timeout_reports_not_found(nicepay: Nicepay) -> None:
    # A118 by orderId is what NICEPAY said, reported as it is; whether it proves anything
    # is the core's decision (and with no settle window, it never does).
    req = lookup_request(tid=None)
    with respx.mock(base_url=API, assert_all_called=True) as mock:
        mock.get(f"/v1/payments/find/{ATTEMPT}").mock(return_value=answer(load("not_found.json")))
        response = send(nicepay.build_lookup(req))
    assert nicepay.parse_lookup(req, response) == Status(
        state=TxnState.NOT_FOUND, provider_status="A118"
    )


def test_a_void_success_that_is_not_cancelled_is_unknown(nicepay: Nicepay) -> None:
    body = load("netcancel.json", status="paid", balanceAmt=12000)
    assert isinstance(error_of(nicepay.parse_void(void_request(), answer(body))), OutcomeUnknown)


def test_a_void_success_for_another_tid_is_unknown(nicepay: Nicepay) -> None:
    body = load("netcancel.json")
    other = "nicuntct1m0101221015153000ZZZZ"
    error = error_of(nicepay.parse_void(void_request(tid=other), answer(body)))
    assert isinstance(error, OutcomeUnknown)


# -- secrets ----------------------------------------------------------------------------------


def test_no_secret_reaches_an_error_message(nicepay: Nicepay) -> None:
    errors: list[PayfallbackError] = []
    for body, status in [
        (load("basic_auth_failed.json"), 401),
        (load("duplicate_order.json"), 200),
        (load("approve_declined.json"), 200),
        ({"resultCode": "ZZ99"}, 200),
    ]:
        errors.append(error_of(nicepay.parse_charge(charge_request(), answer(body, status))))
    with pytest.raises(InvalidRequest) as caught:
        nicepay.build_charge(charge_request(instrument_provider="kakaopay"))
    errors.append(caught.value)
    for error in errors:
        text = f"{error} {error!r} {error.context()}"
        assert SECRET not in text
        assert BID not in text
        assert basic() not in text
