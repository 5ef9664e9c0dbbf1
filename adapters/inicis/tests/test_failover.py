"""Failover through the Router: KG Inicis billing first, Toss Payments billing behind it; and
a Kakao Pay checkout that lands on Kakao Pay through Inicis when direct Kakao Pay is down.

Both providers are mocked on their real hosts with respx. Behind Inicis's billing endpoint
a ledger records every charge Inicis actually made — also when its answer is lost — and its
inquiry answers from that ledger, so each test says not only what the Router returned but
how many times money moved. Every test runs through ``Router`` and ``AsyncRouter`` on a
manual clock.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inicis_support import CLIENT_IP, INIAPI_KEY, MID, SIGN_KEY, SITE_URL, load, signed_approval
from payfallback_inicis import Inicis
from payfallback_kakaopay import KakaoPay
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback import (
    AttemptState,
    Instrument,
    ManualClock,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    PayfallbackError,
    RetryPolicy,
    ReturnUrls,
)
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import RouterHarness

INICIS = "iniapi.inicis.com"
TOSS = "api.tosspayments.com"
TOSS_SECRET = "test_sk_pf0000000000000000000Secret"
TOSS_BILLING_KEY = "Z_t5vOvQxrj4499PeiJcjen28-KCej3pWbLe3w"
INICIS_BILL_KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
TOSS_PAYLOADS = Path(__file__).resolve().parents[2] / "tosspayments" / "tests" / "payloads"

Kind = Literal["sync", "async"]


def order(order_id: str, amount: int = 15_000) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name="원두 정기배송")


def instruments() -> list[Instrument]:
    return [
        Instrument(provider="inicis", billing_key=SecretStr(INICIS_BILL_KEY)),
        Instrument(
            provider="tosspayments",
            billing_key=SecretStr(TOSS_BILLING_KEY),
            customer_key="c5f2a1b0-7e4d-4f5a-9c33-customer",
        ),
    ]


@dataclass
class Ledger:
    """What the providers actually charged: (provider, our attempt id)."""

    charges: list[tuple[str, str]] = field(default_factory=list)

    def per_order(self) -> Counter[str]:
        return Counter(attempt.rsplit("_", 1)[0] for _, attempt in self.charges)


class Hosts:
    """Inicis's INIAPI and Toss Payments' billing endpoint behind one respx router."""

    def __init__(self, wire: respx.MockRouter) -> None:
        self.ledger = Ledger()
        self.inicis_charge = wire.post(host=INICIS, path="/api/v1/billing")
        self.inicis_inquiry = wire.post(host=INICIS, path="/api/v1/extra")
        self.inicis_inquiry.mock(side_effect=self._inquiry)
        self.toss_charge = wire.post(host=TOSS, path__regex=r"^/v1/billing/[^/]+$")
        self.toss_charge.mock(side_effect=self._toss_charges)
        self._tids: dict[str, str] = {}

    @staticmethod
    def _form(request: httpx.Request) -> dict[str, str]:
        return dict(parse_qsl(request.content.decode("utf-8")))

    def inicis_charges(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        tid = f"INIAPICARDINIBillTst2022101515300{len(self.ledger.charges):07d}"
        self._tids[form["moid"]] = tid
        self.ledger.charges.append(("inicis", form["moid"]))
        body = load("billing_paid.json")
        body.update(tid=tid, price=form["price"])
        return httpx.Response(200, json=body)

    def inicis_charges_answer_lost(self, request: httpx.Request) -> httpx.Response:
        """Inicis charges the card; its answer never comes back."""
        self.inicis_charges(request)
        raise httpx.ReadTimeout("timed out", request=request)

    @staticmethod
    def inicis_times_out_unprocessed(request: httpx.Request) -> httpx.Response:
        """The request left, nothing came back, and Inicis never processed it."""
        raise httpx.ReadTimeout("timed out", request=request)

    @staticmethod
    def inicis_refused_to_connect(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    @staticmethod
    def inicis_refuses(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=load("billing_refused.json"))

    def _inquiry(self, request: httpx.Request) -> httpx.Response:
        form = self._form(request)
        oid = form["oid"]
        if ("inicis", oid) not in self.ledger.charges:
            return httpx.Response(200, json=load("inquiry_not_found.json"))
        body = load("inquiry_paid.json")
        charged = next(
            self._form(call.request)["price"]
            for call in self.inicis_charge.calls
            if self._form(call.request)["moid"] == oid
        )
        body.update(tid=self._tids[oid], oid=oid, price=charged)
        return httpx.Response(200, json=body)

    def _toss_charges(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.ledger.charges.append(("tosspayments", body["orderId"]))
        answer = json.loads((TOSS_PAYLOADS / "payment_done_billing.json").read_text("utf-8"))
        answer.update(
            paymentKey=f"tbill{body['orderId'].replace('-', '').replace('_', '')}",
            orderId=body["orderId"],
            totalAmount=body["amount"],
            balanceAmount=body["amount"],
        )
        answer["card"]["amount"] = body["amount"]
        return httpx.Response(200, json=answer)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    return value


@pytest.fixture
def wire() -> respx.MockRouter:
    return respx.MockRouter(assert_all_mocked=True, assert_all_called=False)


@pytest.fixture
def hosts(wire: respx.MockRouter) -> Hosts:
    return Hosts(wire)


@pytest.fixture
def router(kind: Kind, wire: respx.MockRouter, tmp_path: Path) -> Iterator[RouterHarness]:
    clock = ManualClock()
    journal = SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock)
    inicis = Inicis(
        mid=MID,
        iniapi_key=SecretStr(INIAPI_KEY),
        client_ip=CLIENT_IP,
        site_url=SITE_URL,
        buyer_name="홍길동",
        buyer_email="buyer@shop.example",
        buyer_tel="01012345678",
    )
    toss = TossPayments(
        secret_key=SecretStr(TOSS_SECRET), client_key="test_ck_pf0000000000000000000Client"
    )
    harness = RouterHarness(
        kind,
        [inicis, toss],
        httpx.MockTransport(wire.handler),
        journal=journal,
        clock=clock,
        retry=RetryPolicy(deadline=60.0),
    )
    yield harness
    harness.close()
    journal.close()


def paths(wire: respx.MockRouter) -> list[str]:
    return [f"{c.request.url.host}{c.request.url.path}" for c in wire.calls]


def test_a_lost_inicis_answer_is_inquired_and_the_charge_found_toss_never_charged(
    router: RouterHarness, hosts: Hosts, wire: respx.MockRouter
) -> None:
    hosts.inicis_charge.mock(side_effect=hosts.inicis_charges_answer_lost)

    payment = router.charge(order("SUB-1"), instruments())

    assert payment.provider == "inicis"
    assert payment.amount == Money(amount=15_000)
    assert paths(wire) == [f"{INICIS}/api/v1/billing", f"{INICIS}/api/v1/extra"]
    assert hosts.toss_charge.call_count == 0
    assert hosts.ledger.per_order() == {"SUB-1": 1}
    # Asking again for the paid order sends nothing anywhere.
    sent = len(wire.calls)
    assert router.charge(order("SUB-1"), instruments()) == payment
    assert len(wire.calls) == sent


def test_a_lost_answer_inicis_never_processed_keeps_the_order_open_and_toss_uncharged(
    router: RouterHarness, hosts: Hosts, wire: respx.MockRouter
) -> None:
    hosts.inicis_charge.mock(side_effect=hosts.inicis_times_out_unprocessed)

    with pytest.raises(OutcomeUnknown):
        router.charge(order("SUB-2"), instruments())

    # "Not found" right after the timeout is no proof (Inicis documents no settle window):
    # the attempt stays open for reconciliation and Toss Payments is never asked.
    assert hosts.inicis_charge.call_count == 1
    assert hosts.inicis_inquiry.call_count >= 1
    assert hosts.toss_charge.call_count == 0
    attempts = router.router.journal.attempts_for_order("SUB-2")
    assert [a.state for a in attempts] == [AttemptState.UNKNOWN]
    assert router.router.journal.payment_for_order("SUB-2") is None

    # The merchant's POS asks again: whatever the Router answers, the open Inicis attempt
    # is never sent a second time blindly and Toss Payments still charges nothing.
    with pytest.raises(PayfallbackError) as again:
        router.charge(order("SUB-2"), instruments())
    assert isinstance(again.value, OutcomeUnknown), type(again.value)
    assert hosts.inicis_charge.call_count == 1
    assert hosts.toss_charge.call_count == 0
    assert hosts.ledger.per_order() == Counter()


def test_a_lost_answer_then_a_late_inicis_commit_is_found_and_charged_once(
    router: RouterHarness, hosts: Hosts, wire: respx.MockRouter
) -> None:
    hosts.inicis_charge.mock(side_effect=hosts.inicis_times_out_unprocessed)
    with pytest.raises(OutcomeUnknown):
        router.charge(order("SUB-3"), instruments())
    # Inicis commits the charge after all (the request was only slow).
    first = hosts.inicis_charge.calls[0].request
    hosts.inicis_charges(first)

    # The POS asks again: the open attempt is inquired first, and the charge is found.
    payment = router.charge(order("SUB-3"), instruments())
    assert payment.provider == "inicis"
    assert payment.amount == Money(amount=15_000)
    assert hosts.toss_charge.call_count == 0
    assert hosts.inicis_charge.call_count == 1
    assert hosts.ledger.per_order() == {"SUB-3": 1}


def test_an_inicis_refusal_is_inquired_not_rerouted(
    router: RouterHarness, hosts: Hosts, wire: respx.MockRouter
) -> None:
    hosts.inicis_charge.mock(side_effect=hosts.inicis_refuses)

    with pytest.raises(OutcomeUnknown):
        router.charge(order("SUB-4"), instruments())

    assert paths(wire)[0] == f"{INICIS}/api/v1/billing"
    assert f"{INICIS}/api/v1/extra" in paths(wire)
    assert hosts.toss_charge.call_count == 0


def test_inicis_unreachable_fails_over_to_toss_which_charges_once(
    router: RouterHarness, hosts: Hosts, wire: respx.MockRouter
) -> None:
    hosts.inicis_charge.mock(side_effect=hosts.inicis_refused_to_connect)

    payment = router.charge(order("SUB-5"), instruments())

    assert payment.provider == "tosspayments"
    assert payment.amount == Money(amount=15_000)
    assert hosts.toss_charge.call_count == 1
    assert hosts.ledger.per_order() == {"SUB-5": 1}
    assert all(call.request.url.path != "/api/v1/extra" for call in wire.calls)


# -- the payment window: direct Kakao Pay down, Kakao Pay through Inicis ---------------------

KAKAO = "open-api.kakaopay.com"


@pytest.fixture
def wallets(kind: Kind, wire: respx.MockRouter, tmp_path: Path) -> Iterator[RouterHarness]:

    clock = ManualClock()
    journal = SQLiteJournal(tmp_path / "wallets.sqlite3", clock=clock)
    inicis = Inicis(
        mid=MID, iniapi_key=SecretStr(INIAPI_KEY), sign_key=SecretStr(SIGN_KEY), client_ip=CLIENT_IP
    )
    harness = RouterHarness(
        kind,
        [KakaoPay(secret_key=SecretStr("DEV7c0ffee5ecretKEY")), inicis],
        httpx.MockTransport(wire.handler),
        journal=journal,
        clock=clock,
        retry=RetryPolicy(deadline=60.0),
    )
    yield harness
    harness.close()
    journal.close()


def test_direct_kakao_pay_down_the_checkout_lands_on_kakao_pay_through_inicis(
    wallets: RouterHarness, wire: respx.MockRouter
) -> None:

    kakao = wire.route(host=KAKAO).mock(
        side_effect=httpx.ConnectError("[Errno 111] Connection refused")
    )
    approve = wire.post(host="fcstdpay.inicis.com", path="/api/payAuth")
    urls = ReturnUrls(
        success="https://shop.example/pay/return",
        cancel="https://shop.example/pay/close",
        fail="https://shop.example/pay/fail",
    )

    session = wallets.start_checkout(order("ORD-WALLET"), Method.KAKAOPAY, urls)

    assert kakao.call_count >= 1
    assert session.provider == "inicis"
    assert session.method is Method.KAKAOPAY
    assert session.client_params["gopaymethod"] == "onlykakaopay"
    assert session.client_params["oid"] == session.session_id

    callback = {k: str(v) for k, v in load("auth_result.json").items()}
    callback["orderNumber"] = session.session_id

    def approved(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json=signed_approval(request, MOID=session.session_id, TotPrice="15000"),
        )

    approve.mock(side_effect=approved)
    payment = wallets.complete_checkout(session.session_id, callback)

    assert payment.provider == "inicis"
    assert payment.amount == Money(amount=15_000)
    assert approve.call_count == 1


# -- any schedule: never two charges for one order --------------------------------------------

_BEHAVIOURS = ("paid", "charged_answer_lost", "lost_unprocessed", "refused_to_connect", "refuses")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(st.sampled_from(_BEHAVIOURS), min_size=1, max_size=6))
def test_no_schedule_of_inicis_answers_charges_an_order_twice(
    schedule: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    wire = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    hosts = Hosts(wire)
    answers = iter(schedule)
    handlers = {
        "paid": hosts.inicis_charges,
        "charged_answer_lost": hosts.inicis_charges_answer_lost,
        "lost_unprocessed": hosts.inicis_times_out_unprocessed,
        "refused_to_connect": hosts.inicis_refused_to_connect,
        "refuses": hosts.inicis_refuses,
    }

    def inicis(request: httpx.Request) -> httpx.Response:
        return handlers[next(answers, "paid")](request)

    hosts.inicis_charge.mock(side_effect=inicis)
    clock = ManualClock()
    journal = SQLiteJournal(tmp_path_factory.mktemp("j") / "journal.sqlite3", clock=clock)
    provider = Inicis(
        mid=MID,
        iniapi_key=SecretStr(INIAPI_KEY),
        client_ip=CLIENT_IP,
        site_url=SITE_URL,
        buyer_name="홍길동",
        buyer_email="buyer@shop.example",
        buyer_tel="01012345678",
    )
    toss = TossPayments(
        secret_key=SecretStr(TOSS_SECRET), client_key="test_ck_pf0000000000000000000Client"
    )
    router = RouterHarness(
        "sync",
        [provider, toss],
        httpx.MockTransport(wire.handler),
        journal=journal,
        clock=clock,
        retry=RetryPolicy(deadline=60.0),
    )
    try:
        for n in range(len(schedule)):
            # Each order asked twice, as a POS retries: the second ask must not charge again.
            for _ in range(2):
                with contextlib.suppress(PayfallbackError):
                    router.charge(order(f"SUB-H{n}"), instruments())
        charged = hosts.ledger.per_order()
        assert all(count == 1 for count in charged.values()), charged
        for n in range(len(schedule)):
            paid = journal.payment_for_order(f"SUB-H{n}")
            if paid is not None:
                assert charged[f"SUB-H{n}"] == 1
    finally:
        router.close()
        journal.close()
