"""Failover through the Router with the real adapters, each provider mocked at its own host.

Kakao Pay is the primary wallet, Naver Pay and Toss Pay (Toss Payments' ``tosspay`` method)
the fallbacks; Toss Payments and NICEPAY hold billing keys for server-side charges. respx
stands in for the providers on their real hosts and answers with the adapters' own payload
files (``adapters/<name>/tests/payloads``), with ids and amounts echoed from each request.
Behind the billing hosts a small ledger records every charge a provider actually made, so a
test can say not only what the Router returned but how many times money moved. Every test
runs through both ``Router`` and the async ``Router``, on a manual clock.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import respx
from payfallback_kakaopay import KakaoPay
from payfallback_naverpay import NaverPay
from payfallback_nicepay import Nicepay
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback import (
    AttemptState,
    BreakerPolicy,
    BreakerSettings,
    BreakerState,
    Instrument,
    MaintenanceWindow,
    ManualClock,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    Provider,
    RetryPolicy,
    ReturnUrls,
)
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import RouterHarness

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"

KAKAO = "open-api.kakaopay.com"
NAVER = "apis.naver.com"
TOSS = "api.tosspayments.com"
NICE = "api.nicepay.co.kr"

NAVER_PARTNER = "np_partner"
TOSS_SECRET = "test_sk_pf0000000000000000000Secret"
NICE_SECRET = "0f1e2d3c4b5a49687766554433221100"
TOSS_BILLING_KEY = "Z_t5vOvQxrj4499PeiJcjen28-KCej3pWbLe3w"
NICE_BID = "BIKYnictest04m2210151530000001"

URLS = ReturnUrls(
    success="https://shop.example/pay/success",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)

#: A wallet gets five seconds to answer: a hang costs that much, not the default fifteen.
POLICY = BreakerPolicy(normal=BreakerSettings(read_timeout=5.0))
RETRY = RetryPolicy(deadline=60.0)
Handler = Callable[[httpx.Request], httpx.Response]
Build = Callable[..., RouterHarness]


def payload(adapter: str, name: str) -> dict[str, Any]:
    """A payload file of an adapter's own tests, fresh on every call."""
    path = ADAPTERS / adapter / "tests" / "payloads" / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def order(order_id: str, amount: int = 15_000) -> Order:
    return Order(
        order_id=order_id,
        amount=Money(amount=amount),
        name="토스 티셔츠 외 2건",
        customer_ref="customer-42",
    )


def host_calls(wire: respx.MockRouter, host: str) -> list[httpx.Request]:
    return [call.request for call in wire.calls if call.request.url.host == host]


def sequence(wire: respx.MockRouter) -> list[str]:
    """Every request the providers received, in order, as ``METHOD host/path``."""
    return [
        f"{call.request.method} {call.request.url.host}{call.request.url.path}"
        for call in wire.calls
    ]


# -- the adapters, configured as a shop would ---------------------------------------------------


def kakaopay() -> KakaoPay:
    return KakaoPay(secret_key=SecretStr("DEV7c0ffee5ecretKEY"))


def naverpay() -> NaverPay:
    return NaverPay(
        client_id="np-client-id",
        client_secret=SecretStr("np-client-secret-7f3a9c"),
        chain_id="np-chain-id",
        partner_id=NAVER_PARTNER,
    )


def tosspayments(*methods: Method) -> TossPayments:
    return TossPayments(
        secret_key=SecretStr(TOSS_SECRET),
        client_key="test_ck_pf0000000000000000000Client",
        methods=methods or None,
    )


def nicepay() -> Nicepay:
    return Nicepay(client_key="S2_0a1b2c3d4e5f40718293a4b5c6d7e8f9", secret_key=NICE_SECRET)


def billing_keys() -> list[Instrument]:
    return [
        Instrument(
            provider="tosspayments",
            billing_key=SecretStr(TOSS_BILLING_KEY),
            customer_key="c5f2a1b0-7e4d-4f5a-9c33-customer",
        ),
        Instrument(provider="nicepay", billing_key=SecretStr(NICE_BID)),
    ]


@pytest.fixture
def wire() -> respx.MockRouter:
    """The providers' hosts; a request to a route nobody mocked fails the test."""
    return respx.MockRouter(assert_all_mocked=True, assert_all_called=False)


@pytest.fixture
def build(
    kind: str, clock: ManualClock, journal_path: Path, wire: respx.MockRouter
) -> Iterator[Build]:
    """A router of this test's kind over the respx hosts, on the manual clock."""
    made: list[RouterHarness] = []
    harness_kind: Literal["sync", "async"] = "sync" if kind == "sync" else "async"

    def make(providers: list[Provider], **options: Any) -> RouterHarness:
        options.setdefault("clock", clock)
        options.setdefault("journal", SQLiteJournal(journal_path, clock=clock))
        options.setdefault("retry", RETRY)
        options.setdefault("breaker_policy", POLICY)
        harness = RouterHarness(
            harness_kind, providers, httpx.MockTransport(wire.handler), **options
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
        harness.router.journal.close()


# -- wallets: Kakao Pay down, Naver Pay and Toss Pay take the checkout --------------------------


@dataclass(frozen=True)
class KakaoFault:
    """How Kakao Pay fails, what the fallback notice says, and what opens its breaker."""

    name: str
    answer: Callable[[ManualClock], Handler]
    notice: str
    trips_after: int
    trip_reason: str

    def __str__(self) -> str:
        return self.name


def _refused(clock: ManualClock) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    return handler


def _internal_error(clock: ManualClock) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error_code": -1, "error_message": "internal error"})

    return handler


def _maintenance(clock: ManualClock) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error_code": -9798, "error_message": "서비스 점검중"})

    return handler


def _hang(clock: ManualClock) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        # The client gives up after the read timeout the Router set on the request.
        timeout = request.extensions["timeout"]["read"]
        clock.advance(timeout)
        raise httpx.ReadTimeout("timed out", request=request)

    return handler


KAKAO_FAULTS = [
    KakaoFault(
        "connection-refused",
        _refused,
        "ConnectError: the request was not sent",
        trips_after=3,
        trip_reason="3 hard failures in a row",
    ),
    KakaoFault(
        "http-500",
        _internal_error,
        "internal error while the server was processing",
        trips_after=5,
        trip_reason="failure rate 1.00 >= 0.50 over 5 calls",
    ),
    KakaoFault(
        "http-503-maintenance",
        _maintenance,
        "service under maintenance",
        trips_after=5,
        trip_reason="failure rate 1.00 >= 0.50 over 5 calls",
    ),
    KakaoFault(
        "hang",
        _hang,
        "ReadTimeout on a read-only ready",
        trips_after=5,
        trip_reason="failure rate 1.00 >= 0.50 over 5 calls",
    ),
]


class NaverWindow:
    """Naver Pay's side of its payment window: which paymentId the customer approved for
    which checkout, and the ``apply`` answer for it."""

    def __init__(self) -> None:
        self.approved: dict[str, tuple[str, int]] = {}

    def pay(self, session_id: str, amount: int) -> dict[str, str]:
        """The customer pays in the window; returns what Naver appends to returnUrl."""
        payment_id = f"2022101{len(self.approved) + 1}NP1043587746"
        self.approved[payment_id] = (session_id, amount)
        return {"resultCode": "Success", "paymentId": payment_id}

    def apply(self, request: httpx.Request) -> httpx.Response:
        payment_id = parse_qs(request.content.decode())["paymentId"][0]
        attempt_id, amount = self.approved[payment_id]
        answer = payload("naverpay", "apply_success")
        answer["body"]["paymentId"] = payment_id
        answer["body"]["detail"].update(
            paymentId=payment_id,
            merchantPayKey=attempt_id,
            totalPayAmount=amount,
            applyPayAmount=amount,
            primaryPayAmount=amount,
            npointPayAmount=0,
        )
        return httpx.Response(200, json=answer)


def wallets(build: Build, **options: Any) -> RouterHarness:
    """Kakao Pay first; Naver Pay, then Toss Pay (through Toss Payments) as fallbacks."""
    return build(
        [kakaopay(), naverpay(), tosspayments(Method.TOSSPAY)],
        fallback_methods={Method.KAKAOPAY: [Method.NAVERPAY, Method.TOSSPAY]},
        **options,
    )


def kakao_open(router: RouterHarness) -> bool:
    return any(s.provider == "kakaopay" and s.state == BreakerState.OPEN for s in router.health())


@pytest.mark.parametrize("fault", KAKAO_FAULTS, ids=str)
def test_failing_kakao_pay_falls_back_to_naver_pay_and_its_breaker_opens(
    fault: KakaoFault, build: Build, wire: respx.MockRouter, clock: ManualClock
) -> None:
    ready = wire.post(f"https://{KAKAO}/online/v1/payment/ready").mock(
        side_effect=fault.answer(clock)
    )
    naver = NaverWindow()
    apply = wire.post(f"https://{NAVER}/{NAVER_PARTNER}/naverpay/payments/v2.2/apply/payment")
    apply.mock(side_effect=naver.apply)
    router = wallets(build)
    assert [c.provider for c in router.available(Method.KAKAOPAY)] == ["kakaopay"]

    for n in range(1, fault.trips_after + 1):
        session = router.start_checkout(order(f"WEB-{n}"), Method.KAKAOPAY, URLS)
        # Every failure costs one try at Kakao Pay, and the customer still gets a wallet.
        assert (session.provider, session.method) == ("naverpay", Method.NAVERPAY)
        assert fault.notice in session.fallback_from["kakaopay/kakaopay"]
        assert session.client_params["merchantPayKey"] == session.session_id
        assert ready.call_count == n
        assert kakao_open(router) == (n == fault.trips_after)

    # Open: Kakao Pay is no longer offered, and says why.
    assert router.available(Method.KAKAOPAY) == []
    assert [(c.provider, c.method) for c in router.available()] == [
        ("naverpay", Method.NAVERPAY),
        ("tosspayments", Method.TOSSPAY),
    ]
    [snapshot] = [s for s in router.health() if s.provider == "kakaopay"]
    assert snapshot.reason == fault.trip_reason

    last = order("WEB-OPEN", 12_000)
    session = router.start_checkout(last, Method.KAKAOPAY, URLS)
    notice = session.fallback_from["kakaopay/kakaopay"]
    assert notice.startswith("open until ")
    assert fault.trip_reason in notice
    assert len(host_calls(wire, KAKAO)) == fault.trips_after, "an open breaker sends nothing"

    payment = router.complete_checkout(session.session_id, naver.pay(session.session_id, 12_000))
    assert (payment.provider, payment.method) == ("naverpay", Method.NAVERPAY)
    assert payment.amount == last.amount
    assert apply.call_count == 1
    assert apply.calls.last.request.headers["X-NaverPay-Idempotency-Key"]
    assert len(host_calls(wire, KAKAO)) == fault.trips_after


def test_kakao_pay_down_and_naver_pay_in_maintenance_lands_on_toss_pay(
    build: Build, wire: respx.MockRouter, clock: ManualClock
) -> None:
    wire.post(f"https://{KAKAO}/online/v1/payment/ready").mock(side_effect=_refused(clock))
    window = MaintenanceWindow(
        "naverpay",
        start=clock.now() - timedelta(hours=1),
        end=clock.now() + timedelta(hours=2),
        reason="정기 점검",
    )
    router = wallets(build, maintenance=[window])

    paid = order("WEB-TOSSPAY")
    session = router.start_checkout(paid, Method.KAKAOPAY, URLS)
    assert (session.provider, session.method) == ("tosspayments", Method.TOSSPAY)
    assert set(session.fallback_from) == {"kakaopay/kakaopay", "naverpay/naverpay"}
    assert "ConnectError" in session.fallback_from["kakaopay/kakaopay"]
    assert "maintenance until" in session.fallback_from["naverpay/naverpay"]
    assert "정기 점검" in session.fallback_from["naverpay/naverpay"]
    # Toss's window opens in the browser straight onto Toss Pay, for this attempt.
    params = session.client_params
    assert (params["easyPay"], params["flowMode"]) == ("TOSSPAY", "DIRECT")
    assert (params["orderId"], params["amount"]) == (session.session_id, "15000")

    payment_key = "5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6"

    def confirmed(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        answer = payload("tosspayments", "payment_done_tosspay")
        answer.update(paymentKey=body["paymentKey"], orderId=body["orderId"])
        assert body["amount"] == answer["totalAmount"] == 15_000
        return httpx.Response(200, json=answer)

    confirm = wire.post(f"https://{TOSS}/v1/payments/confirm").mock(side_effect=confirmed)
    callback = {
        "paymentKey": payment_key,
        "orderId": session.session_id,
        "amount": "15000",
        "paymentType": "NORMAL",
    }
    payment = router.complete_checkout(session.session_id, callback)
    assert (payment.provider, payment.method) == ("tosspayments", Method.TOSSPAY)
    assert payment.provider_txn_id == payment_key
    assert payment.amount == paid.amount
    assert confirm.call_count == 1
    assert confirm.calls.last.request.headers["Idempotency-Key"]
    assert host_calls(wire, NAVER) == []
    assert len(host_calls(wire, KAKAO)) == 1


def test_kakao_pay_is_probed_back_once_its_open_time_is_over(
    build: Build, wire: respx.MockRouter, clock: ManualClock
) -> None:
    ready = wire.post(f"https://{KAKAO}/online/v1/payment/ready").mock(side_effect=_refused(clock))
    router = wallets(build)
    for n in range(3):
        router.start_checkout(order(f"WEB-{n}"), Method.KAKAOPAY, URLS)
    assert kakao_open(router)

    # Kakao Pay is back; once the open time is over, probes reach it again.
    ready.mock(
        side_effect=None, return_value=httpx.Response(200, json=payload("kakaopay", "ready"))
    )
    clock.advance(POLICY.normal.open_seconds)
    assert [c.provider for c in router.available(Method.KAKAOPAY)] == ["kakaopay"]
    for n in range(POLICY.normal.half_open_probes):
        session = router.start_checkout(order(f"WEB-BACK-{n}"), Method.KAKAOPAY, URLS)
        assert session.provider == "kakaopay"
        assert session.provider_txn_id == "T1234567890123456789"
        assert session.redirect_url() == "https://mockup-pg-web.kakao.com/v1/xxxxxxxxxx/info"
        assert session.fallback_from == {}
    assert ready.call_count == 3 + POLICY.normal.half_open_probes
    [snapshot] = [s for s in router.health() if s.provider == "kakaopay"]
    assert snapshot.state == BreakerState.CLOSED


# -- billing keys: Toss Payments first, NICEPAY second ------------------------------------------


@dataclass
class Ledger:
    """What the providers behind the billing hosts actually charged: (provider, orderId)."""

    charges: list[tuple[str, str]] = field(default_factory=list)

    def charged(self, provider: str, attempt_id: str) -> bool:
        return (provider, attempt_id) in self.charges

    def per_order(self) -> Counter[str]:
        """Charges per merchant order (our attempt id is ``{order_id}_{seq}``)."""
        return Counter(attempt.rsplit("_", 1)[0] for _, attempt in self.charges)


class BillingHosts:
    """Toss Payments' and NICEPAY's billing endpoints, answering from their payload files."""

    def __init__(self, wire: respx.MockRouter) -> None:
        self.ledger = Ledger()
        self.toss_charge = wire.post(host=TOSS, path__regex=r"^/v1/billing/[^/]+$")
        self.toss_lookup = wire.get(host=TOSS, path__regex=r"^/v1/payments/orders/[^/]+$")
        self.toss_lookup.mock(side_effect=self._toss_lookup)
        self.nice_charge = wire.post(host=NICE, path__regex=r"^/v1/subscribe/[^/]+/payments$")
        self.nice_charge.mock(side_effect=self._nice_charge)

    # Toss Payments ---------------------------------------------------------------------------

    def toss_payment(self, attempt_id: str, amount: int) -> dict[str, Any]:
        answer = payload("tosspayments", "payment_done_billing")
        answer.update(
            paymentKey=f"tbill{attempt_id.replace('-', '').replace('_', '')}",
            orderId=attempt_id,
            totalAmount=amount,
            balanceAmount=amount,
        )
        answer["card"]["amount"] = amount
        return answer

    def toss_charges(self, request: httpx.Request) -> httpx.Response:
        """Toss charges the billing key and answers."""
        body = json.loads(request.content)
        self.ledger.charges.append(("tosspayments", body["orderId"]))
        return httpx.Response(200, json=self.toss_payment(body["orderId"], body["amount"]))

    def toss_charges_answer_lost(self, request: httpx.Request) -> httpx.Response:
        """Toss charges the card, but its answer never comes back."""
        self.toss_charges(request)
        raise httpx.ReadTimeout("timed out", request=request)

    @staticmethod
    def toss_times_out_unprocessed(request: httpx.Request) -> httpx.Response:
        """The request left, nothing came back, and Toss never processed it."""
        raise httpx.ReadTimeout("timed out", request=request)

    @staticmethod
    def toss_unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="no healthy upstream")

    @staticmethod
    def toss_refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def _toss_lookup(self, request: httpx.Request) -> httpx.Response:
        attempt_id = unquote(request.url.path.rsplit("/", 1)[1])
        if not self.ledger.charged("tosspayments", attempt_id):
            return httpx.Response(
                404,
                json={"code": "NOT_FOUND_PAYMENT", "message": "존재하지 않는 결제 정보 입니다."},
            )
        amount = next(
            json.loads(call.request.content)["amount"]
            for call in self.toss_charge.calls
            if json.loads(call.request.content)["orderId"] == attempt_id
        )
        return httpx.Response(200, json=self.toss_payment(attempt_id, amount))

    # NICEPAY ---------------------------------------------------------------------------------

    def _nice_charge(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        attempt_id, amount = body["orderId"], body["amount"]
        self.ledger.charges.append(("nicepay", attempt_id))
        answer = payload("nicepay", "billing_paid")
        tid = f"nictest04m0116221015{len(self.ledger.charges):010d}"
        answer.update(
            tid=tid,
            orderId=attempt_id,
            amount=amount,
            balanceAmt=amount,
            goodsName=body["goodsName"],
        )
        # NICEPAY signs the payment object: hex(sha256(tid + amount + ediDate + SecretKey)).
        signed = f"{tid}{amount}{answer['ediDate']}{NICE_SECRET}"
        answer["signature"] = hashlib.sha256(signed.encode()).hexdigest()
        return httpx.Response(200, json=answer)


@pytest.fixture
def hosts(wire: respx.MockRouter) -> BillingHosts:
    return BillingHosts(wire)


def billing(build: Build, **options: Any) -> RouterHarness:
    return build([tosspayments(), nicepay()], **options)


def test_toss_read_timeout_is_looked_up_before_anything_else(
    build: Build, hosts: BillingHosts, wire: respx.MockRouter
) -> None:
    hosts.toss_charge.mock(side_effect=hosts.toss_charges_answer_lost)
    router = billing(build)

    payment = router.charge(order("SUB-1"), billing_keys())

    # The lookup by our attempt id found the charge: that is the payment, and NICEPAY
    # never hears of the order.
    assert payment.provider == "tosspayments"
    assert payment.provider_txn_id == "tbillSUB11"
    assert payment.amount == Money(amount=15_000)
    assert sequence(wire) == [
        f"POST {TOSS}/v1/billing/{TOSS_BILLING_KEY}",
        f"GET {TOSS}/v1/payments/orders/SUB-1_1",
    ]
    assert hosts.nice_charge.call_count == 0
    assert hosts.ledger.per_order() == {"SUB-1": 1}
    journal = router.router.journal
    assert journal.payment_for_order("SUB-1") == payment
    # Asking again for the paid order sends nothing anywhere.
    assert router.charge(order("SUB-1"), billing_keys()) == payment
    assert len(wire.calls) == 2


def test_toss_not_found_right_after_a_timeout_is_no_proof_a_replay_is(
    build: Build, hosts: BillingHosts, wire: respx.MockRouter
) -> None:
    # The first request never reached Toss; its replay (same Idempotency-Key) does.
    answers = iter([hosts.toss_times_out_unprocessed, hosts.toss_charges])

    def toss(request: httpx.Request) -> httpx.Response:
        return next(answers)(request)

    hosts.toss_charge.mock(side_effect=toss)
    router = billing(build)

    payment = router.charge(order("SUB-2"), billing_keys())

    # "Not found" right after the timeout proved nothing; the replay's answer is the
    # first request's answer: Toss charged once, NICEPAY never heard of the order.
    assert payment.provider == "tosspayments"
    calls = sequence(wire)
    assert calls[0] == f"POST {TOSS}/v1/billing/{TOSS_BILLING_KEY}"
    assert calls[-1] == f"POST {TOSS}/v1/billing/{TOSS_BILLING_KEY}"
    assert set(calls[1:-1]) == {f"GET {TOSS}/v1/payments/orders/SUB-2_1"}
    keys = {call.request.headers["Idempotency-Key"] for call in hosts.toss_charge.calls}
    assert len(keys) == 1
    assert hosts.nice_charge.call_count == 0
    assert hosts.ledger.charges == [("tosspayments", "SUB-2_1")]


def test_toss_that_never_answers_keeps_the_order_where_it_is(
    build: Build, hosts: BillingHosts, wire: respx.MockRouter
) -> None:
    # Every request to Toss times out and every lookup says "not found": there is no proof
    # that nothing was charged, so the order is not charged anywhere else.
    hosts.toss_charge.mock(side_effect=hosts.toss_times_out_unprocessed)
    router = billing(build)

    with pytest.raises(OutcomeUnknown):
        router.charge(order("SUB-2"), billing_keys())

    assert hosts.nice_charge.call_count == 0
    attempts = router.router.journal.attempts_for_order("SUB-2")
    assert [(a.provider, a.state) for a in attempts] == [("tosspayments", AttemptState.UNKNOWN)]
    assert attempts[0].sent_at is not None


@pytest.mark.parametrize("fault", ["toss_unavailable", "toss_refused"])
def test_toss_unavailable_fails_over_to_nicepay(
    fault: str, build: Build, hosts: BillingHosts, wire: respx.MockRouter
) -> None:
    hosts.toss_charge.mock(side_effect=getattr(hosts, fault))
    router = billing(build)

    payment = router.charge(order("SUB-3"), billing_keys())

    assert payment.provider == "nicepay"
    assert payment.amount == Money(amount=15_000)
    # Certainly not taken effect at Toss: retried there with the attempt's one key, never
    # looked up, then rerouted; NICEPAY charged once.
    toss_keys = {call.request.headers["Idempotency-Key"] for call in hosts.toss_charge.calls}
    assert hosts.toss_charge.call_count == RETRY.attempts_per_provider
    assert len(toss_keys) == 1
    assert hosts.toss_lookup.call_count == 0
    assert hosts.nice_charge.call_count == 1
    assert json.loads(hosts.nice_charge.calls.last.request.content)["orderId"] == "SUB-3_2"
    assert hosts.ledger.charges == [("nicepay", "SUB-3_2")]


def test_connect_errors_open_tosss_breaker_and_later_charges_go_straight_to_nicepay(
    build: Build, hosts: BillingHosts, wire: respx.MockRouter
) -> None:
    hosts.toss_charge.mock(side_effect=hosts.toss_refused)
    events: list[tuple[str, dict[str, Any]]] = []
    router = billing(build, listeners=[lambda name, fields: events.append((name, dict(fields)))])

    n = 0
    while not any(
        s.provider == "tosspayments" and s.state == BreakerState.OPEN for s in router.health()
    ):
        n += 1
        assert n <= 3, "three connection refusals must open the breaker"
        assert router.charge(order(f"SUB-{n}"), billing_keys()).provider == "nicepay"
    assert [c.provider for c in router.available(Method.CARD)] == ["nicepay"]

    sent_to_toss = hosts.toss_charge.call_count
    payment = router.charge(order("SUB-OPEN"), billing_keys())
    assert payment.provider == "nicepay"
    assert hosts.toss_charge.call_count == sent_to_toss, "an open breaker sends nothing"
    skipped = [f for name, f in events if name == "payment.skipped" and f["order_id"] == "SUB-OPEN"]
    assert [f["provider"] for f in skipped] == ["tosspayments"]
    assert "3 hard failures in a row" in skipped[0]["reason"]
    assert hosts.ledger.per_order() == Counter(
        {f"SUB-{i}": 1 for i in range(1, n + 1)} | {"SUB-OPEN": 1}
    )


def test_a_flapping_toss_never_charges_an_order_twice(
    build: Build, hosts: BillingHosts, wire: respx.MockRouter, clock: ManualClock
) -> None:
    # Toss cycles through every way a charge can go: fine, answer lost after charging,
    # timed out unprocessed, 503, refused. Whatever happens, one charge per order.
    behaviours: list[Handler] = [
        hosts.toss_charges,
        hosts.toss_charges_answer_lost,
        hosts.toss_times_out_unprocessed,
        hosts.toss_unavailable,
        hosts.toss_refused,
    ]
    upcoming = itertools.cycle(behaviours)
    seen: Counter[str] = Counter()

    processed: dict[str, httpx.Response] = {}

    def flapping(request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        if key in processed:  # Toss replays the first answer to a key it processed
            return processed[key]
        behaviour = next(upcoming)
        seen[behaviour.__name__] += 1
        if behaviour in (hosts.toss_charges, hosts.toss_charges_answer_lost):
            body = json.loads(request.content)
            processed[key] = httpx.Response(
                200, json=hosts.toss_payment(body["orderId"], body["amount"])
            )
        return behaviour(request)

    hosts.toss_charge.mock(side_effect=flapping)
    router = billing(build)

    payments = []
    for n in range(1, 13):
        for _ in range(10):
            try:
                payments.append(router.charge(order(f"SUB-{n}"), billing_keys()))
                break
            except OutcomeUnknown:
                # No proof either way yet: the order stays put; the renewal job asks again.
                clock.advance(30)
        else:
            pytest.fail(f"SUB-{n} never settled")
        # Renewals half a minute apart: Toss stays just healthy enough to keep being tried.
        clock.advance(30)

    assert set(seen) == {b.__name__ for b in behaviours}
    assert min(seen.values()) >= 2
    assert hosts.ledger.per_order() == {f"SUB-{n}": 1 for n in range(1, 13)}
    for payment in payments:
        [(provider, attempt_id)] = [
            c for c in hosts.ledger.charges if c[1].rsplit("_", 1)[0] == payment.order_id
        ]
        assert (payment.provider, payment.attempt_id) == (provider, attempt_id)
    assert "tosspayments" in {p.provider for p in payments}
    # Every read timeout was followed at once by a lookup of that very attempt, and only an
    # attempt that was sent is ever looked up.
    timeouts = seen["toss_charges_answer_lost"] + seen["toss_times_out_unprocessed"]
    assert hosts.toss_lookup.call_count >= timeouts
    requests = [call.request for call in wire.calls]
    for before, after in itertools.pairwise(requests):
        if before.method == "POST" and before.url.host == TOSS and after.method == "GET":
            attempt_id = json.loads(before.content)["orderId"]
            assert after.url.path == f"/v1/payments/orders/{attempt_id}"
    sent = {json.loads(r.content)["orderId"] for r in requests if r.method == "POST"}
    for lookup in (r for r in requests if r.method == "GET"):
        assert unquote(lookup.url.path.rsplit("/", 1)[1]) in sent
