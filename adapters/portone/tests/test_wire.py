"""The wire format, pinned: hosts, paths, methods, headers and bodies PortOne expects.

Requests are built by the adapter and sent with a real ``httpx.Client`` through a respx
router for ``https://api.portone.io``; answers are the payload files, shaped like the
OpenAPI schemas. Every body the adapter builds is validated against the spec's request
schema with unknown fields refused.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from payfallback_portone import InstantChargeRequest, KeyInCard, PortOne, sf_string
from portone_support import (
    API_SECRET,
    ATTEMPT,
    BASE_URL,
    BILLING_KEY,
    CARD_NUMBER,
    CHANNEL_KEY,
    KAKAO_CHANNEL_KEY,
    KEY,
    STORE_ID,
    load,
    money_of,
    request_schema,
    violations,
)
from pydantic import SecretStr

from payfallback.errors import ConfigurationError, InvalidRequest
from payfallback.models import Instrument, Method, Money, Order, Platform, RefundReceipt
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Proof,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    load_provider,
)


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def body_of(request: httpx.Request) -> dict[str, Any]:
    data = json.loads(request.content)
    assert isinstance(data, dict)
    return data


# -- construction and capabilities ------------------------------------------------------------


def test_entry_point_builds_the_adapter() -> None:
    provider = load_provider("portone", api_secret="s3cr3t-value", store_id=STORE_ID)
    assert isinstance(provider, PortOne)
    assert isinstance(provider, Provider)
    assert provider.name == "portone"


def test_capabilities_declare_what_portone_offers(portone: PortOne) -> None:
    caps = portone.capabilities
    assert caps.flows == {Flow.REDIRECT, Flow.SERVER_CHARGE}
    assert caps.methods == {
        Method.CARD,
        Method.KAKAOPAY,
        Method.NAVERPAY,
        Method.TOSSPAY,
        Method.PAYCO,
        Method.SAMSUNGPAY,
        Method.BANK_TRANSFER,
        Method.VIRTUAL_ACCOUNT,
        Method.MOBILE,
    }
    assert caps.lookup_by_order_id is True
    assert caps.idempotency_header == "Idempotency-Key"
    assert caps.idempotency_retention == timedelta(hours=3)
    assert caps.idempotency_key_max_length == 256
    assert caps.partial_cancel is True
    assert caps.void_window is None
    assert caps.read_timeout == 60.0
    assert caps.currencies == {"KRW"}
    # What proves an attempt moved no money: only a same-key replay. A FAILED or READY
    # record is not final (the customer may pay again on the same paymentId), and no
    # settle window is documented, so "not found" proves nothing.
    assert caps.settle_window is None
    assert caps.failed_record_is_final is False
    assert caps.proofs == (Proof.REPLAY,)


def test_secrets_are_wrapped_and_never_shown() -> None:
    adapter = PortOne(api_secret=API_SECRET, webhook_secret="whsec_AAAA", store_id=STORE_ID)
    assert API_SECRET not in repr(adapter)
    assert API_SECRET not in str(vars(adapter))
    assert repr(adapter) == f"PortOne(store_id={STORE_ID!r}, base_url='https://api.portone.io')"


@pytest.mark.parametrize("secret", ["", "   ", SecretStr("")])
def test_an_empty_secret_is_a_configuration_error(secret: str | SecretStr) -> None:
    with pytest.raises(ConfigurationError, match="api_secret is empty"):
        PortOne(api_secret=secret)


def test_channel_keys_must_name_known_methods() -> None:
    with pytest.raises(ConfigurationError, match="unknown method 'bitcoin'"):
        PortOne(api_secret=API_SECRET, channel_keys={"bitcoin": "channel-key-x"})


def test_void_is_not_offered(portone: PortOne, order: Order) -> None:
    req = VoidRequest(
        attempt_id=ATTEMPT,
        order=order,
        provider_txn_id=ATTEMPT,
        amount=order.amount,
        idempotency_key=KEY,
    )
    with pytest.raises(NotImplementedError, match="portone: void is not supported"):
        portone.build_void(req)


# -- ready: client-side ----------------------------------------------------------------------


def test_ready_sends_nothing_and_hands_the_sdk_its_arguments(
    portone: PortOne, ready_req: ReadyRequest
) -> None:
    assert portone.build_ready(ready_req) is None
    outcome = portone.parse_ready(ready_req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.provider_txn_id == ATTEMPT
    assert dict(outcome.redirect_urls) == {}
    assert dict(outcome.client_params) == {
        "storeId": STORE_ID,
        "channelKey": CHANNEL_KEY,
        "paymentId": ATTEMPT,
        "orderName": "나이키 와플 트레이너 2 SD",
        "totalAmount": "12000",
        "currency": "CURRENCY_KRW",
        "payMethod": "CARD",
        "redirectUrl": "https://shop.example/pay/done",
        "customerId": "customer-42",
    }


def test_ready_uses_the_methods_own_channel_and_easy_pay_provider(
    portone: PortOne, ready_req: ReadyRequest
) -> None:
    req = dataclasses.replace(ready_req, method=Method.KAKAOPAY, platform=Platform.MOBILE)
    outcome = portone.parse_ready(req, None)
    assert isinstance(outcome, Redirect)
    assert outcome.client_params["channelKey"] == KAKAO_CHANNEL_KEY
    assert outcome.client_params["payMethod"] == "EASY_PAY"
    assert outcome.client_params["easyPayProvider"] == "EASY_PAY_PROVIDER_KAKAOPAY"


def test_ready_without_store_or_channel_is_a_configuration_error(ready_req: ReadyRequest) -> None:
    bare = PortOne(api_secret=API_SECRET)
    with pytest.raises(ConfigurationError, match="store_id and a channel key"):
        bare.build_ready(ready_req)
    outcome = bare.parse_ready(ready_req, None)
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, ConfigurationError)


def test_ready_refuses_currencies_not_declared(portone: PortOne, ready_req: ReadyRequest) -> None:
    usd = Order(order_id="ORDER9", amount=Money(amount=1000, currency="USD"), name="x")
    with pytest.raises(InvalidRequest, match="not USD"):
        portone.build_ready(dataclasses.replace(ready_req, order=usd))


# -- approve and lookup: GET /payments/{paymentId} -------------------------------------------


def test_approve_is_a_get_of_the_payment(portone: PortOne, approve_req: ApproveRequest) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.get(f"/payments/{ATTEMPT}", params={"storeId": STORE_ID}).respond(
            200, json=load("payment_paid")
        )
        outcome = portone.parse_approve(approve_req, send(portone.build_approve(approve_req)))
    sent = route.calls.last.request
    assert sent.url.host == "api.portone.io"
    assert sent.headers["authorization"] == f"PortOne {API_SECRET}"
    assert "idempotency-key" not in sent.headers  # PortOne ignores it on GET
    assert sent.content == b""
    assert money_of(outcome) == Approved(
        provider_txn_id=ATTEMPT,
        amount=Money(amount=12000),
        approved_at=datetime(2025, 3, 14, 5, 12, 31, 502000, tzinfo=UTC),
        provider_status="PAID",
    )


def test_lookup_by_attempt_id_reads_the_status(portone: PortOne, lookup_req: LookupRequest) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.get(f"/payments/{ATTEMPT}").respond(200, json=load("payment_partial_cancelled"))
        outcome = portone.parse_lookup(lookup_req, send(portone.build_lookup(lookup_req)))
    assert route.calls.last.request.url.params["storeId"] == STORE_ID
    assert money_of(outcome) == Status(
        state=TxnState.PAID,
        provider_txn_id=ATTEMPT,
        amount=Money(amount=12000),
        cancelled=2000,
        provider_status="PARTIAL_CANCELLED",
    )


def test_lookup_without_store_id_sends_no_query(lookup_req: LookupRequest) -> None:
    adapter = PortOne(api_secret=API_SECRET)
    request = adapter.build_lookup(lookup_req)
    assert str(request.url) == f"{BASE_URL}/payments/{ATTEMPT}"


def test_path_values_are_url_encoded(portone: PortOne, lookup_req: LookupRequest) -> None:
    request = portone.build_lookup(dataclasses.replace(lookup_req, provider_txn_id="a/b c"))
    assert request.url.raw_path.startswith(b"/payments/a%2Fb%20c?")


def test_base_url_can_point_elsewhere(lookup_req: LookupRequest) -> None:
    adapter = PortOne(api_secret=API_SECRET, base_url="https://portone.proxy.internal/")
    assert str(adapter.build_lookup(lookup_req).url) == (
        f"https://portone.proxy.internal/payments/{ATTEMPT}"
    )


# -- charge: POST /payments/{paymentId}/billing-key --------------------------------------------


def test_billing_key_charge_wire_format(portone: PortOne, charge_req: ChargeRequest) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post(f"/payments/{ATTEMPT}/billing-key").respond(
            200, json=load("billing_key_paid")
        )
        outcome = portone.parse_charge(charge_req, send(portone.build_charge(charge_req)))
    sent = route.calls.last.request
    assert sent.method == "POST"
    assert sent.url.host == "api.portone.io"
    assert sent.headers["authorization"] == f"PortOne {API_SECRET}"
    assert sent.headers["content-type"] == "application/json"
    # An RFC 8941 sf-string, as the REST overview asks (멱등 키): the exact bytes.
    assert (b"Idempotency-Key", f'"{KEY}"'.encode()) in sent.headers.raw
    assert body_of(sent) == {
        "storeId": STORE_ID,
        "billingKey": BILLING_KEY,
        "channelKey": CHANNEL_KEY,
        "orderName": "나이키 와플 트레이너 2 SD",
        "customer": {"id": "customer-42"},
        "amount": {"total": 12000},
        "currency": "KRW",
    }
    assert money_of(outcome) == Approved(
        provider_txn_id=ATTEMPT,
        amount=Money(amount=12000),
        approved_at=datetime(2025, 3, 14, 5, 12, 31, 502000, tzinfo=UTC),
        provider_status="PAID",
    )
    # The summary PortOne answers a billing-key payment with has no card and no receipt URL.
    assert isinstance(outcome, Approved)
    assert outcome.receipt is None


def test_the_same_key_gives_the_same_request(portone: PortOne, charge_req: ChargeRequest) -> None:
    first, again = portone.build_charge(charge_req), portone.build_charge(charge_req)
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"] == f'"{KEY}"'
    assert first.content == again.content
    other = portone.build_charge(dataclasses.replace(charge_req, idempotency_key="f" * 32))
    assert other.headers["idempotency-key"] == '"' + "f" * 32 + '"'


@pytest.mark.parametrize(
    ("key", "sent"),
    [
        ("0f8c1d2e3b4a5968", b'"0f8c1d2e3b4a5968"'),  # 16: the shortest
        ("k" * 256, b'"' + b"k" * 256 + b'"'),  # 256: the longest
        ("has:colon-0123456789", b'"has:colon-0123456789"'),
        ("spaced key 0123456789", b'"spaced key 0123456789"'),
        # RFC 8941 3.3.3: DQUOTE and backslash are escaped with a backslash.
        ('"quoted-0123456789"', b'"\\"quoted-0123456789\\""'),
        ("back\\slash-0123456789", b'"back\\\\slash-0123456789"'),
    ],
)
def test_the_idempotency_key_is_sent_as_an_sf_string(
    portone: PortOne, charge_req: ChargeRequest, key: str, sent: bytes
) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post(f"/payments/{ATTEMPT}/billing-key").respond(
            200, json=load("billing_key_paid")
        )
        send(portone.build_charge(dataclasses.replace(charge_req, idempotency_key=key)))
    raw = dict(route.calls.last.request.headers.raw)
    assert raw[b"Idempotency-Key"] == sent
    assert sf_string(key).encode() == sent


@pytest.mark.parametrize(
    "key",
    [
        "short-key",
        "x" * 257,
        "멱등키-0123456789abcdef",  # not ASCII
        "tab\there-0123456789",  # control characters have no sf-string form
        "newline\n-0123456789",
        "del\x7f-0123456789abcd",
    ],
)
def test_keys_portone_would_refuse_are_refused_before_sending(
    portone: PortOne, charge_req: ChargeRequest, key: str
) -> None:
    with pytest.raises(InvalidRequest, match="16-256 printable ASCII characters for PortOne"):
        portone.build_charge(dataclasses.replace(charge_req, idempotency_key=key))


def test_a_tax_free_share_is_sent(portone: PortOne, charge_req: ChargeRequest) -> None:
    order = Order(order_id="ORDER7", amount=Money(amount=12000), name="책", tax_free_amount=2000)
    body = body_of(portone.build_charge(dataclasses.replace(charge_req, order=order)))
    assert body["amount"] == {"total": 12000, "taxFree": 2000}
    assert "customer" in body  # from the instrument's customer key


def test_a_method_portone_does_not_take_is_refused(
    portone: PortOne, charge_req: ChargeRequest
) -> None:
    apple = Instrument(provider="portone", billing_key=SecretStr("bk"), method=Method.APPLEPAY)
    with pytest.raises(InvalidRequest, match="applepay is not offered"):
        portone.build_charge(dataclasses.replace(charge_req, instrument=apple))


def test_another_providers_instrument_is_refused(
    portone: PortOne, charge_req: ChargeRequest
) -> None:
    toss = Instrument(provider="tosspayments", billing_key=SecretStr("bk"))
    with pytest.raises(InvalidRequest, match="belongs to 'tosspayments'"):
        portone.build_charge(dataclasses.replace(charge_req, instrument=toss))


# -- instant: POST /payments/{paymentId}/instant -----------------------------------------------


def key_in_request(order: Order) -> InstantChargeRequest:
    card = KeyInCard(
        number=SecretStr(CARD_NUMBER),
        expiry_year="29",
        expiry_month="12",
        birth_or_business_registration_number=SecretStr("900101"),
        password_two_digits=SecretStr("12"),
        installment_month=3,
    )
    return InstantChargeRequest(attempt_id=ATTEMPT, order=order, card=card, idempotency_key=KEY)


def test_key_in_payment_wire_format(portone: PortOne, order: Order) -> None:
    req = key_in_request(order)
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post(f"/payments/{ATTEMPT}/instant").respond(200, json=load("instant_paid"))
        outcome = portone.parse_instant_charge(req, send(portone.build_instant_charge(req)))
    sent = route.calls.last.request
    assert sent.headers["idempotency-key"] == f'"{KEY}"'
    assert body_of(sent) == {
        "storeId": STORE_ID,
        "channelKey": CHANNEL_KEY,
        "method": {
            "card": {
                "credential": {
                    "number": CARD_NUMBER,
                    "expiryYear": "29",
                    "expiryMonth": "12",
                    "birthOrBusinessRegistrationNumber": "900101",
                    "passwordTwoDigits": "12",
                },
                "installmentMonth": 3,
            }
        },
        "orderName": "나이키 와플 트레이너 2 SD",
        "customer": {"id": "customer-42"},
        "amount": {"total": 12000},
        "currency": "KRW",
    }
    assert isinstance(outcome, Approved)
    assert outcome.amount == Money(amount=12000)
    assert CARD_NUMBER not in repr(req)
    assert CARD_NUMBER not in repr(req.card)


def test_key_in_needs_a_channel(order: Order) -> None:
    adapter = PortOne(api_secret=API_SECRET, store_id=STORE_ID)
    with pytest.raises(
        ConfigurationError, match="key-in payment through PortOne needs channel_key"
    ):
        adapter.build_instant_charge(key_in_request(order))


# -- cancel: POST /payments/{paymentId}/cancel ------------------------------------------------


def test_cancel_wire_format(portone: PortOne, cancel_req: CancelRequest) -> None:
    with respx.mock(base_url=BASE_URL, assert_all_called=True) as api:
        route = api.post(f"/payments/{ATTEMPT}/cancel").respond(200, json=load("cancel_succeeded"))
        outcome = portone.parse_cancel(cancel_req, send(portone.build_cancel(cancel_req)))
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"PortOne {API_SECRET}"
    assert sent.headers["idempotency-key"] == f'"{cancel_req.idempotency_key}"'
    assert body_of(sent) == {
        "storeId": STORE_ID,
        "amount": 12000,
        "taxFreeAmount": 0,
        "reason": "customer returned the goods",
        "currentCancellableAmount": 12000,
    }
    assert money_of(outcome) == Cancelled(
        provider_txn_id=ATTEMPT, amount=Money(amount=12000), remaining=0, settled=True
    )
    # The cancellation's id and time; PortOne's cancellation does not say what is left.
    assert isinstance(outcome, Cancelled)
    assert outcome.receipt == RefundReceipt(
        cancel_id="01936a8c-0003", cancelled_at=datetime(2025, 3, 15, 1, 0, tzinfo=UTC)
    )
    assert outcome.answer == load("cancel_succeeded")


def test_a_requested_cancellation_is_not_settled(
    portone: PortOne, cancel_req: CancelRequest
) -> None:
    partial = dataclasses.replace(cancel_req, amount=Money(amount=5000))
    answer = load("cancel_requested")
    answer["cancellation"]["totalAmount"] = 5000
    outcome = portone.parse_cancel(partial, httpx.Response(200, json=answer))
    assert money_of(outcome) == Cancelled(
        provider_txn_id=ATTEMPT, amount=Money(amount=5000), remaining=7000, settled=False
    )


TAXED = Order(order_id="ORDER7", amount=Money(amount=12000), name="책", tax_free_amount=2000)


def test_a_partial_cancel_carries_its_tax_free_share(
    openapi: dict[str, Any], portone: PortOne, cancel_req: CancelRequest
) -> None:
    # The Router computes the share (pro rata of the order's tax-free part); the adapter
    # sends it as PortOne's taxFreeAmount and leaves vatAmount to PortOne.
    part = dataclasses.replace(
        cancel_req, order=TAXED, amount=Money(amount=6000), tax_free_amount=1000
    )
    body = body_of(portone.build_cancel(part))
    assert body == {
        "storeId": STORE_ID,
        "amount": 6000,
        "taxFreeAmount": 1000,
        "reason": "customer returned the goods",
        "currentCancellableAmount": 12000,
    }
    assert violations(openapi, request_schema(openapi, "cancelPayment"), body, closed=True) == []


def test_a_partial_cancel_without_a_tax_free_share_says_zero(
    openapi: dict[str, Any], portone: PortOne, cancel_req: CancelRequest
) -> None:
    # Left out, taxFreeAmount means "all taxable" to PortOne; sent as 0 it says so on purpose.
    part = dataclasses.replace(cancel_req, amount=Money(amount=5000))
    body = body_of(portone.build_cancel(part))
    assert body["taxFreeAmount"] == 0
    assert "vatAmount" not in body
    assert violations(openapi, request_schema(openapi, "cancelPayment"), body, closed=True) == []


def test_a_full_cancel_carries_the_share_it_is_given(
    portone: PortOne, cancel_req: CancelRequest
) -> None:
    full = dataclasses.replace(cancel_req, order=TAXED, tax_free_amount=2000)
    assert body_of(portone.build_cancel(full))["taxFreeAmount"] == 2000


def test_a_tax_free_share_above_the_cancel_is_refused(
    portone: PortOne, cancel_req: CancelRequest
) -> None:
    wrong = dataclasses.replace(
        cancel_req, order=TAXED, amount=Money(amount=1000), tax_free_amount=1500
    )
    with pytest.raises(InvalidRequest, match="tax-free share 1500"):
        portone.build_cancel(wrong)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": Money(amount=12001)}, "only 12000 is still cancellable"),
        ({"amount": Money(amount=0)}, "greater than zero"),
        ({"amount": Money(amount=100, currency="USD")}, "takes KRW, not USD"),
        ({"reason": "  "}, "needs a reason"),
    ],
)
def test_cancels_portone_would_refuse_are_refused_before_sending(
    portone: PortOne, cancel_req: CancelRequest, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        portone.build_cancel(dataclasses.replace(cancel_req, **change))


# -- the spec ----------------------------------------------------------------------------------


def built_bodies(
    portone: PortOne, charge_req: ChargeRequest, cancel_req: CancelRequest, order: Order
) -> list[tuple[str, dict[str, Any]]]:
    bare = PortOne(api_secret=API_SECRET, channel_key=CHANNEL_KEY)
    taxed = Order(order_id="ORDER7", amount=Money(amount=12000), name="책", tax_free_amount=2000)
    anonymous = Instrument(provider="portone", billing_key=SecretStr(BILLING_KEY))
    plain = Order(order_id="ORDER8", amount=Money(amount=3000), name="커피")
    return [
        ("payWithBillingKey", body_of(portone.build_charge(charge_req))),
        ("payWithBillingKey", body_of(bare.build_charge(charge_req))),
        (
            "payWithBillingKey",
            body_of(
                PortOne(api_secret=API_SECRET).build_charge(
                    dataclasses.replace(charge_req, order=plain, instrument=anonymous)
                )
            ),
        ),
        (
            "payWithBillingKey",
            body_of(portone.build_charge(dataclasses.replace(charge_req, order=taxed))),
        ),
        ("payInstantly", body_of(portone.build_instant_charge(key_in_request(order)))),
        (
            "payInstantly",
            body_of(
                bare.build_instant_charge(
                    InstantChargeRequest(
                        attempt_id=ATTEMPT,
                        order=plain,
                        card=KeyInCard(
                            number=SecretStr(CARD_NUMBER), expiry_year="29", expiry_month="01"
                        ),
                        idempotency_key=KEY,
                    )
                )
            ),
        ),
        ("cancelPayment", body_of(portone.build_cancel(cancel_req))),
        (
            "cancelPayment",
            body_of(bare.build_cancel(dataclasses.replace(cancel_req, amount=Money(amount=500)))),
        ),
        (
            "cancelPayment",
            body_of(
                portone.build_cancel(
                    dataclasses.replace(cancel_req, order=taxed, tax_free_amount=2000)
                )
            ),
        ),
    ]


def test_every_body_the_adapter_builds_validates_against_the_spec(
    openapi: dict[str, Any],
    portone: PortOne,
    charge_req: ChargeRequest,
    cancel_req: CancelRequest,
    order: Order,
) -> None:
    bodies = built_bodies(portone, charge_req, cancel_req, order)
    assert {op for op, _ in bodies} == {"payWithBillingKey", "payInstantly", "cancelPayment"}
    for operation_id, body in bodies:
        schema = request_schema(openapi, operation_id)
        assert violations(openapi, schema, body, closed=True) == [], (operation_id, body)


def test_the_closed_validator_would_catch_a_wrong_body(openapi: dict[str, Any]) -> None:
    schema = request_schema(openapi, "payWithBillingKey")
    wrong = {
        "billingKey": "bk",
        "orderName": "x",
        "amount": {"total": "12000"},
        "currency": "KRW",
        "orderId": "x",
    }
    found = violations(openapi, schema, wrong, closed=True)
    assert any("amount/total" in v for v in found)
    assert any("orderId" in v for v in found)
    assert violations(openapi, schema, {"orderName": "x"}, closed=True)  # required fields


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("billing_key_paid", "PayWithBillingKeyResponse"),
        ("instant_paid", "PayInstantlyResponse"),
        ("cancel_succeeded", "CancelPaymentResponse"),
        ("cancel_requested", "CancelPaymentResponse"),
        ("cancel_failed", "CancelPaymentResponse"),
        ("payment_ready", "Payment"),
        ("payment_pay_pending", "Payment"),
        ("payment_virtual_account_issued", "Payment"),
        ("payment_paid", "Payment"),
        ("payment_paid_installment", "Payment"),
        ("payment_paid_check_card", "Payment"),
        ("payment_paid_kakaopay_card", "Payment"),
        ("payment_paid_kakaopay_money", "Payment"),
        ("payment_failed", "Payment"),
        ("payment_partial_cancelled", "Payment"),
        ("payment_cancelled", "Payment"),
        ("error_pg_provider_decline", "PayWithBillingKeyError"),
        ("error_pg_provider_unknown", "CancelPaymentError"),
        ("error_unauthorized", "GetPaymentError"),
        ("error_already_paid", "PayInstantlyError"),
        ("error_payment_not_found", "GetPaymentError"),
    ],
)
def test_payloads_are_shaped_like_the_spec(openapi: dict[str, Any], name: str, schema: str) -> None:
    assert violations(openapi, schema, load(name)) == []


def test_the_payload_check_would_catch_a_wrong_payment(openapi: dict[str, Any]) -> None:
    paid = load("payment_paid")
    del paid["paidAt"]
    assert violations(openapi, "Payment", paid) != []  # PaidPayment requires paidAt
    assert violations(openapi, "Payment", paid | {"status": "ALMOST_PAID"}) != []
