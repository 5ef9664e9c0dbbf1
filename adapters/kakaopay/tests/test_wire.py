"""The real wire format, pinned with respx: host, path, auth, encoding, body fields."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from kakaopay_support import ADMIN_KEY, ATTEMPT, CID_SECRET, SECRET, SID, TID
from payfallback_kakaopay import CURRENT_HOST, LEGACY_HOST, RESULT_PARAM, KakaoPay
from pydantic import SecretStr

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    ProviderUnavailable,
)
from payfallback.models import Instrument, LineItem, Method, Money, Order, Platform, ReturnUrls
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    installed_providers,
    load_provider,
)

Payload = Callable[[str], dict[str, Any]]
JSON_BODY = "application/json"
FORM_BODY = "application/x-www-form-urlencoded;charset=utf-8"


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def json_body(request: httpx.Request) -> dict[str, Any]:
    data = json.loads(request.content)
    assert isinstance(data, dict)
    return data


def form_body(request: httpx.Request) -> dict[str, str]:
    parsed = parse_qs(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in parsed.values())
    return {key: values[0] for key, values in parsed.items()}


# -- current API ------------------------------------------------------------------------------


def test_ready_sends_the_documented_request_and_parses_the_redirect(
    kakao: KakaoPay, ready_req: ReadyRequest, payload: Payload
) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/ready").respond(200, json=payload("ready"))
        outcome = kakao.parse_ready(ready_req, send(kakao.build_ready(ready_req)))

    sent = route.calls.last.request
    assert sent.url == "https://open-api.kakaopay.com/online/v1/payment/ready"
    assert sent.headers["authorization"] == f"SECRET_KEY {SECRET}"
    assert sent.headers["content-type"] == JSON_BODY
    assert json_body(sent) == {
        "cid": "TC0ONETIME",
        "partner_order_id": ATTEMPT,
        "partner_user_id": "customer-7",
        "item_name": "초코파이",
        "quantity": 1,
        "total_amount": 2200,
        "tax_free_amount": 0,
        "approval_url": "https://shop.example/pay/kakao/success",
        "cancel_url": f"https://shop.example/pay/kakao/cancel?{RESULT_PARAM}=cancel",
        "fail_url": f"https://shop.example/pay/kakao/fail?{RESULT_PARAM}=fail",
    }
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id == TID
    assert outcome.redirect_urls == {
        Platform.PC: "https://mockup-pg-web.kakao.com/v1/xxxxxxxxxx/info",
        Platform.MOBILE: "https://mockup-pg-web.kakao.com/v1/xxxxxxxxxx/mInfo",
        Platform.APP: "https://mockup-pg-web.kakao.com/v1/xxxxxxxxxx/aInfo",
    }
    assert set(outcome.client_params) == {"android_app_scheme", "ios_app_scheme"}
    assert outcome.expires_at is None


def test_approve_repeats_ready_ids_and_reads_the_approved_amount(
    kakao: KakaoPay, ready_req: ReadyRequest, approve_req: ApproveRequest, payload: Payload
) -> None:
    ready_body = json_body(kakao.build_ready(ready_req))
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/approve").respond(200, json=payload("approve_card"))
        outcome = kakao.parse_approve(approve_req, send(kakao.build_approve(approve_req)))

    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"SECRET_KEY {SECRET}"
    assert sent.headers["content-type"] == JSON_BODY
    body = json_body(sent)
    assert body == {
        "cid": "TC0ONETIME",
        "tid": TID,
        "partner_order_id": ATTEMPT,
        "partner_user_id": "customer-7",
        "pg_token": "xxxxxxxxxxxxxxxxxxxx",
        "total_amount": 2200,
    }
    # Kakao refuses an approve whose ids differ from ready's.
    assert body["partner_order_id"] == ready_body["partner_order_id"]
    assert body["partner_user_id"] == ready_body["partner_user_id"]
    assert isinstance(outcome, Approved)
    assert outcome.provider_txn_id == TID
    assert outcome.amount == Money(amount=2200, currency="KRW")
    assert outcome.approved_at is not None
    assert outcome.approved_at.utcoffset() == timedelta(hours=9)
    assert outcome.approved_at.replace(tzinfo=None) == datetime(2024, 6, 20, 14, 51, 47)


def test_order_inquiry_is_by_cid_and_tid(
    kakao: KakaoPay, lookup_req: LookupRequest, payload: Payload
) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/order").respond(200, json=payload("order_success"))
        outcome = kakao.parse_lookup(lookup_req, send(kakao.build_lookup(lookup_req)))

    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"SECRET_KEY {SECRET}"
    assert json_body(sent) == {"cid": "TC0ONETIME", "tid": TID}
    assert outcome == Status(
        state=TxnState.PAID,
        provider_txn_id=TID,
        amount=Money(amount=2200),
        cancelled=0,
        provider_status="SUCCESS_PAYMENT",
    )


def test_partial_cancel_sends_the_double_cancel_guard(
    kakao: KakaoPay, cancel_req: CancelRequest, payload: Payload
) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/cancel").respond(200, json=payload("cancel_partial"))
        outcome = kakao.parse_cancel(cancel_req, send(kakao.build_cancel(cancel_req)))

    sent = route.calls.last.request
    assert sent.headers["content-type"] == JSON_BODY
    assert json_body(sent) == {
        "cid": "TC0ONETIME",
        "tid": TID,
        "cancel_amount": 1000,
        "cancel_tax_free_amount": 0,
        # What was cancellable before this cancel: a replay after it succeeded is refused.
        "cancel_available_amount": 2200,
        "payload": "one item back",
    }
    assert isinstance(outcome, Cancelled)
    assert (outcome.provider_txn_id, outcome.amount, outcome.remaining) == (
        TID,
        Money(amount=1000),
        1200,
    )


def test_subscription_charge_uses_the_sid_and_the_subscription_cid(
    kakao: KakaoPay, charge_req: ChargeRequest, payload: Payload
) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/subscription").respond(
            200, json=payload("subscription")
        )
        outcome = kakao.parse_charge(charge_req, send(kakao.build_charge(charge_req)))

    assert json_body(route.calls.last.request) == {
        "cid": "TCSUBSCRIP",
        "sid": SID,
        "partner_order_id": "SUB-2024-06_1",
        "partner_user_id": "member-42",
        "item_name": "monthly plan",
        "quantity": 1,
        "total_amount": 9900,
        "tax_free_amount": 0,
    }
    assert isinstance(outcome, Approved)
    assert outcome.amount == Money(amount=9900)
    # Kakao finds this tid only under the subscription cid; the id carries it.
    assert outcome.provider_txn_id == "TCSUBSCRIP:T2222222222222222222"


def test_lookup_and_cancel_of_a_subscription_charge_use_its_cid(
    kakao: KakaoPay, subscription_order: Order
) -> None:
    txn = "TCSUBSCRIP:T2222222222222222222"
    lookup = kakao.build_lookup(
        LookupRequest(attempt_id="SUB-2024-06_1", order=subscription_order, provider_txn_id=txn)
    )
    assert json_body(lookup) == {"cid": "TCSUBSCRIP", "tid": "T2222222222222222222"}
    cancel = kakao.build_cancel(
        CancelRequest(
            refund_id="R9",
            attempt_id="SUB-2024-06_1",
            order=subscription_order,
            provider_txn_id=txn,
            amount=Money(amount=9900),
            expected_remaining=9900,
            reason="",
            idempotency_key="k",
        )
    )
    body = json_body(cancel)
    assert (body["cid"], body["tid"]) == ("TCSUBSCRIP", "T2222222222222222222")
    assert "payload" not in body


def test_cid_secret_travels_on_every_call(
    ready_req: ReadyRequest,
    approve_req: ApproveRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
    charge_req: ChargeRequest,
) -> None:
    kakao = KakaoPay(secret_key=SECRET, cid="CIDREAL001", cid_secret=CID_SECRET)
    for request in (
        kakao.build_ready(ready_req),
        kakao.build_approve(approve_req),
        kakao.build_lookup(lookup_req),
        kakao.build_cancel(cancel_req),
        kakao.build_charge(charge_req),
    ):
        assert json_body(request)["cid_secret"] == CID_SECRET
    assert json_body(kakao.build_ready(ready_req))["cid"] == "CIDREAL001"


def test_no_idempotency_header_and_replays_are_byte_identical(
    kakao: KakaoPay, approve_req: ApproveRequest, cancel_req: CancelRequest
) -> None:
    assert kakao.capabilities.idempotency_header is None
    builds: list[Callable[[], httpx.Request]] = [
        lambda: kakao.build_approve(approve_req),
        lambda: kakao.build_cancel(cancel_req),
    ]
    for build in builds:
        first, second = build(), build()
        assert first.content == second.content
        assert dict(first.headers) == dict(second.headers)
        assert "idempotency-key" not in first.headers


# -- legacy API -------------------------------------------------------------------------------


def test_legacy_ready_is_form_encoded_with_the_admin_key(
    legacy: KakaoPay, ready_req: ReadyRequest, payload: Payload
) -> None:
    with respx.mock(base_url=LEGACY_HOST, assert_all_called=True) as mock:
        route = mock.post("/v1/payment/ready").respond(200, json=payload("ready"))
        outcome = legacy.parse_ready(ready_req, send(legacy.build_ready(ready_req)))

    sent = route.calls.last.request
    assert sent.url == "https://kapi.kakao.com/v1/payment/ready"
    assert sent.headers["authorization"] == f"KakaoAK {ADMIN_KEY}"
    assert sent.headers["content-type"] == FORM_BODY
    body = form_body(sent)
    assert body["cid"] == "TC0ONETIME"
    assert body["partner_order_id"] == ATTEMPT
    assert body["item_name"] == "초코파이"
    assert body["total_amount"] == "2200"
    assert body["cancel_url"] == f"https://shop.example/pay/kakao/cancel?{RESULT_PARAM}=cancel"
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id == TID


@pytest.mark.parametrize(
    ("path", "build"),
    [
        ("approve", "approve"),
        ("order", "lookup"),
        ("cancel", "cancel"),
        ("subscription", "charge"),
    ],
)
def test_legacy_paths(
    legacy: KakaoPay,
    path: str,
    build: str,
    approve_req: ApproveRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
    charge_req: ChargeRequest,
) -> None:
    requests = {
        "approve": lambda: legacy.build_approve(approve_req),
        "lookup": lambda: legacy.build_lookup(lookup_req),
        "cancel": lambda: legacy.build_cancel(cancel_req),
        "charge": lambda: legacy.build_charge(charge_req),
    }
    request = requests[build]()
    assert request.method == "POST"
    assert str(request.url) == f"https://kapi.kakao.com/v1/payment/{path}"
    assert request.headers["authorization"] == f"KakaoAK {ADMIN_KEY}"
    assert request.headers["content-type"] == FORM_BODY
    assert form_body(request)["cid"] in ("TC0ONETIME", "TCSUBSCRIP")


def test_legacy_error_body_is_read(
    legacy: KakaoPay, approve_req: ApproveRequest, payload: Payload
) -> None:
    with respx.mock(base_url=LEGACY_HOST, assert_all_called=True) as mock:
        mock.post("/v1/payment/approve").respond(400, json=payload("legacy_error_user_locked"))
        outcome = legacy.parse_approve(approve_req, send(legacy.build_approve(approve_req)))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)
    assert outcome.error.provider_code == "-780/USER_LOCKED"


# -- approve: the return convention -----------------------------------------------------------


@pytest.mark.parametrize("result", ["cancel", "fail"])
def test_return_through_cancel_or_fail_url_is_a_decline_without_a_request(
    kakao: KakaoPay, approve_req: ApproveRequest, result: str
) -> None:
    req = ApproveRequest(
        attempt_id=approve_req.attempt_id,
        order=approve_req.order,
        method=approve_req.method,
        provider_txn_id=TID,
        callback_params={RESULT_PARAM: result},
        idempotency_key="k",
    )
    with pytest.raises(Declined) as caught:
        kakao.build_approve(req)
    assert caught.value.provider_code == f"{result}_url"
    assert caught.value.attempt_id == ATTEMPT
    assert "nothing was charged" in caught.value.message


def test_pg_token_wins_over_a_result_flag(kakao: KakaoPay, approve_req: ApproveRequest) -> None:
    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.KAKAOPAY,
        provider_txn_id=TID,
        callback_params={"pg_token": "tok", RESULT_PARAM: "cancel"},
        idempotency_key="k",
    )
    assert json_body(kakao.build_approve(req))["pg_token"] == "tok"


def test_approve_without_pg_token_or_tid_is_refused_before_sending(
    kakao: KakaoPay, approve_req: ApproveRequest
) -> None:
    no_token = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.KAKAOPAY,
        provider_txn_id=TID,
        callback_params={},
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="pg_token"):
        kakao.build_approve(no_token)
    no_tid = ApproveRequest(
        attempt_id=ATTEMPT,
        order=approve_req.order,
        method=Method.KAKAOPAY,
        provider_txn_id=None,
        callback_params={"pg_token": "tok"},
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="tid"):
        kakao.build_approve(no_tid)


def test_return_urls_keep_their_query_and_fragment(kakao: KakaoPay, order: Order) -> None:
    req = ReadyRequest(
        attempt_id=ATTEMPT,
        order=order,
        method=Method.KAKAOPAY,
        return_urls=ReturnUrls(
            success="https://shop.example/ok?shop=7",
            cancel="https://shop.example/back?shop=7&x=%20y#top",
            fail="https://shop.example/fail",
        ),
        idempotency_key="k",
    )
    body = json_body(kakao.build_ready(req))
    assert body["approval_url"] == "https://shop.example/ok?shop=7"
    assert (
        body["cancel_url"] == f"https://shop.example/back?shop=7&x=%20y&{RESULT_PARAM}=cancel#top"
    )


def test_a_return_url_too_long_after_tagging_is_refused(kakao: KakaoPay, order: Order) -> None:
    long_url = "https://shop.example/" + "a" * 230
    req = ReadyRequest(
        attempt_id=ATTEMPT,
        order=order,
        method=Method.KAKAOPAY,
        return_urls=ReturnUrls(success=long_url, cancel=long_url, fail=long_url),
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="cancel_url"):
        kakao.build_ready(req)


# -- what a success answer must contain --------------------------------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("tid"),
        lambda b: b.pop("amount"),
        lambda b: b["amount"].pop("total"),
        lambda b: b["amount"].update(total="2200"),
        lambda b: b["amount"].update(total=-2200),
        lambda b: b.update(tid="T9999999999999999999"),
    ],
    ids=["no-tid", "no-amount", "no-total", "string-total", "negative-total", "other-tid"],
)
def test_an_incomplete_approval_is_an_unknown_outcome(
    kakao: KakaoPay, approve_req: ApproveRequest, payload: Payload, mutate: Any
) -> None:
    body = payload("approve")
    mutate(body)
    outcome = kakao.parse_approve(approve_req, httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_non_json_success_is_an_unknown_outcome(
    kakao: KakaoPay,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    cancel_req: CancelRequest,
) -> None:
    garbage = httpx.Response(200, text="<html>ok</html>")
    for outcome in (
        kakao.parse_approve(approve_req, garbage),
        kakao.parse_charge(charge_req, garbage),
        kakao.parse_cancel(cancel_req, garbage),
    ):
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, OutcomeUnknown)


def test_a_cancel_answer_without_the_cancelled_amount_is_unknown(
    kakao: KakaoPay, cancel_req: CancelRequest, payload: Payload
) -> None:
    body = payload("cancel_partial")
    del body["approved_cancel_amount"]
    outcome = kakao.parse_cancel(cancel_req, httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, OutcomeUnknown)


def test_a_ready_answer_without_tid_or_urls_is_unavailable(
    kakao: KakaoPay, ready_req: ReadyRequest, payload: Payload
) -> None:
    for key in ("tid", None):
        body = payload("ready")
        if key:
            del body[key]
        else:
            for name in (
                "next_redirect_pc_url",
                "next_redirect_mobile_url",
                "next_redirect_app_url",
            ):
                del body[name]
        outcome = kakao.parse_ready(ready_req, httpx.Response(200, json=body))
        assert isinstance(outcome, Failed)
        assert isinstance(outcome.error, ProviderUnavailable)
    missing = kakao.parse_ready(ready_req, None)
    assert isinstance(missing, Failed)
    assert isinstance(missing.error, ProviderUnavailable)


# -- lookup answers ---------------------------------------------------------------------------


def test_partly_cancelled_is_paid_with_the_cancelled_part(
    kakao: KakaoPay, lookup_req: LookupRequest, payload: Payload
) -> None:
    outcome = kakao.parse_lookup(lookup_req, httpx.Response(200, json=payload("order_part_cancel")))
    assert outcome == Status(
        state=TxnState.PAID,
        provider_txn_id=TID,
        amount=Money(amount=2200),
        cancelled=1000,
        provider_status="PART_CANCEL_PAYMENT",
    )


def test_fully_cancelled_reports_the_cancelled_total(
    kakao: KakaoPay, lookup_req: LookupRequest, payload: Payload
) -> None:
    body = payload("order_part_cancel")
    body["status"] = "CANCEL_PAYMENT"
    body["canceled_amount"]["total"] = 2200
    outcome = kakao.parse_lookup(lookup_req, httpx.Response(200, json=body))
    assert isinstance(outcome, Status)
    assert (outcome.state, outcome.cancelled) == (TxnState.CANCELLED, 2200)


def test_ready_status_is_awaiting_the_customer(
    kakao: KakaoPay, lookup_req: LookupRequest, payload: Payload
) -> None:
    outcome = kakao.parse_lookup(lookup_req, httpx.Response(200, json=payload("order_ready")))
    assert isinstance(outcome, Status)
    assert outcome.state is TxnState.AWAITING_CUSTOMER


def test_paid_without_amount_is_not_a_status(
    kakao: KakaoPay, lookup_req: LookupRequest, payload: Payload
) -> None:
    body = payload("order_success")
    del body["amount"]
    outcome = kakao.parse_lookup(lookup_req, httpx.Response(200, json=body))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ProviderUnavailable)


def test_lookup_needs_the_tid(kakao: KakaoPay, order: Order) -> None:
    with pytest.raises(InvalidRequest, match="tid"):
        kakao.build_lookup(LookupRequest(attempt_id=ATTEMPT, order=order, provider_txn_id=None))


# -- requests refused before sending ----------------------------------------------------------


def test_cancel_over_the_cancellable_amount_is_refused(
    kakao: KakaoPay, cancel_req: CancelRequest
) -> None:
    over = CancelRequest(
        refund_id="R2",
        attempt_id=ATTEMPT,
        order=cancel_req.order,
        provider_txn_id=TID,
        amount=Money(amount=1201),
        expected_remaining=1200,
        reason="",
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="1200"):
        kakao.build_cancel(over)
    zero = CancelRequest(
        refund_id="R3",
        attempt_id=ATTEMPT,
        order=cancel_req.order,
        provider_txn_id=TID,
        amount=Money(amount=0),
        expected_remaining=1200,
        reason="",
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="greater than zero"):
        kakao.build_cancel(zero)


def _mixed_cancel(amount: int, tax_free: int, *, remaining: int = 10000) -> CancelRequest:
    # An order of 10,000 KRW of which 3,000 is tax-free (면세); the Router computes the
    # cancel's tax-free share and the adapter sends it as it is.
    order = Order(
        order_id="TAXFREE1", amount=Money(amount=10000), name="mixed", tax_free_amount=3000
    )
    return CancelRequest(
        refund_id="R",
        attempt_id="TAXFREE1_1",
        order=order,
        provider_txn_id=TID,
        amount=Money(amount=amount),
        expected_remaining=remaining,
        reason="partial refund",
        idempotency_key="k",
        tax_free_amount=tax_free,
    )


def test_partial_cancel_sends_its_tax_free_share(kakao: KakaoPay, payload: Payload) -> None:
    with respx.mock(base_url=CURRENT_HOST, assert_all_called=True) as mock:
        route = mock.post("/online/v1/payment/cancel").respond(200, json=payload("cancel_partial"))
        kakao.parse_cancel(
            _mixed_cancel(5000, 1500), send(kakao.build_cancel(_mixed_cancel(5000, 1500)))
        )
    assert json_body(route.calls.last.request) == {
        "cid": "TC0ONETIME",
        "tid": TID,
        "cancel_amount": 5000,
        "cancel_tax_free_amount": 1500,
        "cancel_available_amount": 10000,
        "payload": "partial refund",
    }


def test_partial_cancel_without_a_tax_free_share_sends_zero(kakao: KakaoPay) -> None:
    # cancel_tax_free_amount is required by Kakao even when it is zero; cancel_vat_amount
    # is left to Kakao's default, (cancel - tax-free) / 11.
    body = json_body(kakao.build_cancel(_mixed_cancel(5000, 0)))
    assert body["cancel_tax_free_amount"] == 0
    assert "cancel_vat_amount" not in body
    form = form_body(
        KakaoPay(legacy=True, admin_key=ADMIN_KEY).build_cancel(_mixed_cancel(5000, 1500))
    )
    assert (form["cancel_amount"], form["cancel_tax_free_amount"]) == ("5000", "1500")


@pytest.mark.parametrize("tax_free", [-1, 5001])
def test_a_tax_free_share_outside_the_cancel_is_refused(kakao: KakaoPay, tax_free: int) -> None:
    with pytest.raises(InvalidRequest, match="tax-free share"):
        kakao.build_cancel(_mixed_cancel(5000, tax_free))


def test_quantity_is_the_sum_of_item_quantities(kakao: KakaoPay, urls: ReturnUrls) -> None:
    order = Order(
        order_id="ITEMS1",
        amount=Money(amount=5000),
        name="two things",
        items=(
            LineItem(name="a", quantity=2, unit_price=Money(amount=1000)),
            LineItem(name="b", quantity=3, unit_price=Money(amount=1000)),
        ),
    )
    req = ReadyRequest(
        attempt_id="ITEMS1_2",
        order=order,
        method=Method.KAKAOPAY,
        return_urls=urls,
        idempotency_key="k",
    )
    body = json_body(kakao.build_ready(req))
    assert body["quantity"] == 5
    # A guest (no customer_ref) is identified by the merchant's order id.
    assert body["partner_user_id"] == "ITEMS1"


def test_only_kakaopay_and_krw(kakao: KakaoPay, ready_req: ReadyRequest, urls: ReturnUrls) -> None:
    card = ReadyRequest(
        attempt_id=ATTEMPT,
        order=ready_req.order,
        method=Method.CARD,
        return_urls=urls,
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="kakaopay"):
        kakao.build_ready(card)
    usd = ReadyRequest(
        attempt_id="USD1_1",
        order=Order(order_id="USD1", amount=Money(amount=1000, currency="USD"), name="x"),
        method=Method.KAKAOPAY,
        return_urls=urls,
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest, match="KRW"):
        kakao.build_ready(usd)


def test_charge_needs_a_kakaopay_instrument(kakao: KakaoPay, charge_req: ChargeRequest) -> None:
    other = ChargeRequest(
        attempt_id=charge_req.attempt_id,
        order=charge_req.order,
        instrument=Instrument(provider="tosspayments", billing_key=SecretStr("bk_live_1")),
        idempotency_key="k",
    )
    with pytest.raises(InvalidRequest) as caught:
        kakao.build_charge(other)
    assert "bk_live_1" not in str(caught.value)


def test_void_is_not_supported(kakao: KakaoPay, order: Order) -> None:
    assert kakao.capabilities.void_window is None
    req = VoidRequest(
        attempt_id=ATTEMPT,
        order=order,
        provider_txn_id=TID,
        amount=order.amount,
        idempotency_key="k",
    )
    with pytest.raises(NotImplementedError, match="kakaopay: void is not supported"):
        kakao.build_void(req)


# -- construction, discovery, secrecy ---------------------------------------------------------


def test_settings_and_capabilities(kakao: KakaoPay) -> None:
    caps = kakao.capabilities
    assert kakao.name == "kakaopay"
    assert caps.methods == {Method.KAKAOPAY}
    assert caps.flows == {Flow.REDIRECT, Flow.SERVER_CHARGE}
    assert caps.lookup_by_order_id is False
    assert caps.partial_cancel is True
    assert caps.currencies == {"KRW"}


def test_missing_credentials_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="secret_key"):
        KakaoPay()
    with pytest.raises(ConfigurationError, match="admin_key"):
        KakaoPay(legacy=True, secret_key=SECRET)
    with pytest.raises(ConfigurationError, match="cid"):
        KakaoPay(secret_key=SECRET, cid="")


def test_registered_as_an_entry_point() -> None:
    assert installed_providers()["kakaopay"] == "payfallback_kakaopay:KakaoPay"
    provider = load_provider("kakaopay", secret_key=SecretStr(SECRET), cid="CIDREAL001")
    assert isinstance(provider, Provider)
    assert isinstance(provider, KakaoPay)


def test_secrets_never_show(
    charge_req: ChargeRequest, approve_req: ApproveRequest, payload: Payload
) -> None:
    kakao = KakaoPay(secret_key=SECRET, cid_secret=CID_SECRET)
    legacy = KakaoPay(legacy=True, admin_key=ADMIN_KEY, cid_secret=CID_SECRET)
    texts = [repr(kakao), repr(legacy), str(kakao.__dict__), str(legacy.__dict__)]
    for provider in (kakao, legacy):
        for status, body in (
            (401, payload("error_unauthorized")),
            (400, payload("error_user_locked")),
        ):
            for outcome in (
                provider.parse_charge(charge_req, httpx.Response(status, json=body)),
                provider.parse_approve(approve_req, httpx.Response(status, json=body)),
            ):
                assert isinstance(outcome, Failed)
                texts += [str(outcome.error), repr(outcome.error), str(outcome.error.context())]
    # Kakao echoes the key it rejects ("wrong appKey(…) format"); the message must not.
    for provider, key in ((kakao, SECRET), (legacy, ADMIN_KEY)):
        body = {"code": -401, "msg": f"wrong appKey({key}) format"}
        echoed = provider.parse_approve(approve_req, httpx.Response(401, json=body))
        assert isinstance(echoed, Failed)
        assert "wrong appKey" in echoed.error.message
        texts.append(str(echoed.error))
        body = {"error_code": -780, "error_message": f"sid {SID} is locked"}
        locked = provider.parse_charge(charge_req, httpx.Response(400, json=body))
        assert isinstance(locked, Failed)
        texts.append(str(locked.error))
    joined = "\n".join(texts)
    for secret in (SECRET, ADMIN_KEY, CID_SECRET, SID):
        assert secret not in joined
