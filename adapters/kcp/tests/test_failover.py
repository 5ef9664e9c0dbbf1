"""Failover through the Router between KCP and NICEPAY, on both routers, with KCP's and
NICEPAY's answers at the HTTP layer.

* A KCP batch payment whose answer is lost (``ReadTimeout`` after the request left) may
  have charged the card. KCP offers no proof that it did not (no idempotency key, no
  inquiry without the ``tno``, no net cancel), so the order waits for reconciliation: it is
  never sent to KCP again nor to NICEPAY — no double charge.
* A KCP batch payment that never left (connect error) goes to NICEPAY's billing key.
* A KCP window checkout while KCP is down (connect errors: nothing sent): the approval is
  refused as unavailable, KCP's breaker opens, and the next checkout of the order goes to
  NICEPAY's window and is paid there, once.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kcp_kit import json_response, paid
from kcp_support import BATCH_KEY, callback, provider
from payfallback_nicepay import Nicepay
from payfallback_nicepay._wire import auth_signature, response_signature
from pydantic import SecretStr

from payfallback._clock import ManualClock
from payfallback.errors import OutcomeUnknown, ProviderUnavailable
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.models import (
    AttemptState,
    Instrument,
    Method,
    Money,
    Order,
    PaymentStatus,
    ReturnUrls,
)
from payfallback.retry import RetryPolicy
from payfallback.testing._harness import Kind, RouterHarness

NICE_CLIENT = "S2_0a1b2c3d4e5f40718293a4b5c6d7e8f9"
NICE_SECRET = "0f1e2d3c4b5a49687766554433221100"
NICE_BID = "BIKYnictest04m2210151530000001"
NICE_TID = "nictest04m0116221015153000B001"
NICE_WINDOW_TID = "nicuntct1m0101221015153000A001"
NICE_AUTH_TOKEN = "NICEUNTT0123456789ABCDEF0123456789ABCDEF"
EDI_DATE = "2022-10-15T15:30:01.000+0900"
KCP_TNO = "20221015998877"
AMOUNT = 9900

URLS = ReturnUrls(
    success="https://shop.example/pay/return",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)

Handler = Callable[[httpx.Request], httpx.Response]


def nicepay() -> Nicepay:
    return Nicepay(client_key=NICE_CLIENT, secret_key=SecretStr(NICE_SECRET))


def nicepay_paid(request: httpx.Request, tid: str) -> httpx.Response:
    """NICEPAY's payment object (api/status-transaction.md), signed with the test secret."""
    order_id = json.loads(request.content).get("orderId")
    body: dict[str, Any] = {
        "resultCode": "0000",
        "resultMsg": "정상 처리되었습니다.",
        "tid": tid,
        "cancelledTid": None,
        "orderId": order_id,
        "ediDate": EDI_DATE,
        "signature": response_signature(
            tid=tid, amount=AMOUNT, edi_date=EDI_DATE, secret_key=NICE_SECRET
        ),
        "status": "paid",
        "paidAt": "2022-10-15T15:30:00.000+0900",
        "failedAt": "0",
        "cancelledAt": "0",
        "payMethod": "card",
        "amount": AMOUNT,
        "balanceAmt": AMOUNT,
        "goodsName": "월간 구독",
        "currency": "KRW",
        "channel": "pc",
        "approveNo": "30012345",
    }
    if order_id is None:
        del body["orderId"]
    return httpx.Response(200, json=body)


def nicepay_callback(amount: int = AMOUNT) -> dict[str, str]:
    return {
        "authResultCode": "0000",
        "authResultMsg": "인증 성공",
        "tid": NICE_WINDOW_TID,
        "clientId": NICE_CLIENT,
        "amount": str(amount),
        "mallReserved": "",
        "authToken": NICE_AUTH_TOKEN,
        "signature": auth_signature(
            auth_token=NICE_AUTH_TOKEN, client_id=NICE_CLIENT, amount=amount, secret_key=NICE_SECRET
        ),
    }


class Providers(httpx.MockTransport):
    """KCP and NICEPAY on their real hosts; every request counted by host and path."""

    def __init__(self, kcp: Handler, nice: Handler) -> None:
        self.calls: Counter[str] = Counter()
        self._kcp, self._nice = kcp, nice
        super().__init__(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.calls[f"{request.url.host}{request.url.path}"] += 1
        if request.url.host == "spl.kcp.co.kr":
            return self._kcp(request)
        if request.url.host == "api.nicepay.co.kr":
            return self._nice(request)
        raise AssertionError(f"unexpected request: {request.method} {request.url}")

    def kcp(self, path: str) -> int:
        return self.calls[f"spl.kcp.co.kr{path}"]

    def nice(self) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith("api.nicepay.co.kr"))


def lost(request: httpx.Request) -> httpx.Response:
    """The request reached KCP; its answer never came back."""
    raise httpx.ReadTimeout("read timed out", request=request)


def down(request: httpx.Request) -> httpx.Response:
    """KCP unreachable: the connection was refused before a byte left."""
    raise httpx.ConnectError("connection refused", request=request)


def nice_billing(request: httpx.Request) -> httpx.Response:
    assert request.url.path == f"/v1/subscribe/{NICE_BID}/payments"
    return nicepay_paid(request, NICE_TID)


@pytest.fixture
def clock() -> ManualClock:
    """One clock for the journal and the Router: sleeps advance it, no real time passes."""
    return ManualClock()


@pytest.fixture
def journal(clock: ManualClock) -> Iterator[SQLiteJournal]:
    with tempfile.TemporaryDirectory() as tmp:
        db = SQLiteJournal(Path(tmp) / "journal.sqlite3", clock=clock)
        yield db
        db.close()


def harness(
    kind: Kind, transport: Providers, journal: SQLiteJournal, clock: ManualClock, **options: Any
) -> RouterHarness:
    return RouterHarness(
        kind,
        [provider(), nicepay()],
        transport,
        journal=journal,
        clock=clock,
        retry=RetryPolicy(attempts_per_provider=3, lookup_attempts=2, deadline=120.0),
        **options,
    )


ORDER = Order(order_id="SUB-2001", amount=Money(amount=AMOUNT), name="월간 구독")
INSTRUMENTS = [
    Instrument(provider="kcp", billing_key=SecretStr(BATCH_KEY)),
    Instrument(provider="nicepay", billing_key=SecretStr(NICE_BID)),
]


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("compensate", [False, True])
def test_a_lost_kcp_batch_answer_is_never_charged_again_anywhere(
    kind: Kind, compensate: bool, journal: SQLiteJournal, clock: ManualClock
) -> None:
    transport = Providers(kcp=lost, nice=nice_billing)
    with harness(kind, transport, journal, clock, compensate=compensate) as router:
        with pytest.raises(OutcomeUnknown):
            router.charge(ORDER, INSTRUMENTS)
        # Sent once; never replayed blindly, never rerouted (no proof nothing moved, and
        # KCP cannot be asked without the tno the lost answer carried).
        assert transport.kcp("/gw/hub/v1/payment") == 1
        assert transport.nice() == 0
        attempts = journal.attempts_for_order(ORDER.order_id)
        assert [a.provider for a in attempts] == ["kcp"]
        assert attempts[0].state is AttemptState.UNKNOWN
        assert journal.payment_for_order(ORDER.order_id) is None

        # The POS asks again, and reconciliation runs: still nothing sent anywhere.
        with pytest.raises(OutcomeUnknown):
            router.charge(ORDER, INSTRUMENTS)
        report = router.recover()
        # Reconciliation lists it as open: nothing proves it paid or not.
        assert not report.clean
        assert report.still_unresolved == [attempts[0].attempt_id]
        assert not report.paid
        assert not report.compensations
        assert transport.kcp("/gw/hub/v1/payment") == 1
        assert transport.kcp("/std/inquery") == 0
        assert transport.nice() == 0
        assert journal.attempts_for_order(ORDER.order_id)[-1].state is AttemptState.UNKNOWN
        assert journal.payment_for_order(ORDER.order_id) is None


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_kcp_batch_payment_that_never_left_goes_to_nicepay_once(
    kind: Kind, journal: SQLiteJournal, clock: ManualClock
) -> None:
    transport = Providers(kcp=down, nice=nice_billing)
    with harness(kind, transport, journal, clock) as router:
        payment = router.charge(ORDER, INSTRUMENTS)
        assert payment.provider == "nicepay"
        assert payment.provider_txn_id == NICE_TID
        assert payment.amount == ORDER.amount
        assert payment.status is PaymentStatus.PAID
        assert transport.nice() == 1
        assert transport.kcp("/gw/hub/v1/payment") >= 1
        # Asking again returns the same payment and sends nothing.
        sent = sum(transport.calls.values())
        assert router.charge(ORDER, INSTRUMENTS) == payment
        assert sum(transport.calls.values()) == sent


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_kcp_batch_payment_is_paid_at_kcp_when_kcp_answers(
    kind: Kind, journal: SQLiteJournal, clock: ManualClock
) -> None:
    def kcp(request: httpx.Request) -> httpx.Response:
        return json_response(paid(request, tno=KCP_TNO, amount=AMOUNT))

    transport = Providers(kcp=kcp, nice=nice_billing)
    with harness(kind, transport, journal, clock) as router:
        payment = router.charge(ORDER, INSTRUMENTS)
        assert (payment.provider, payment.provider_txn_id) == ("kcp", KCP_TNO)
        assert transport.nice() == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_kcp_window_checkout_falls_back_to_nicepay_while_kcp_is_down(
    kind: Kind, journal: SQLiteJournal, clock: ManualClock
) -> None:
    def nice_window(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v1/payments/{NICE_WINDOW_TID}"
        return nicepay_paid(request, NICE_WINDOW_TID)

    transport = Providers(kcp=down, nice=nice_window)
    with harness(kind, transport, journal, clock) as router:
        # KCP is first in line: the checkouts open KCP's window, and each approval fails
        # to connect (nothing sent, nothing charged) until KCP's breaker opens.
        refused = 0
        for n in range(1, 11):
            order = Order(order_id=f"ORD-{n}", amount=Money(amount=AMOUNT), name="아메리카노")
            session = router.start_checkout(order, Method.CARD, URLS)
            if session.provider != "kcp":
                break
            with pytest.raises(ProviderUnavailable):
                router.complete_checkout(session.session_id, callback(order_id=None))
            refused += 1
            assert journal.payment_for_order(order.order_id) is None
        else:
            pytest.fail("KCP's breaker never opened on a run of connect errors")
        assert refused >= 1
        # Retried while nothing was sent (a connect error is safe to retry), then given up.
        tried = transport.kcp("/gw/enc/v1/payment")
        assert tried >= refused
        # While KCP is down the checkout goes to NICEPAY's window and is paid there, once.
        assert session.provider == "nicepay"
        payment = router.complete_checkout(session.session_id, nicepay_callback())
        assert (payment.provider, payment.provider_txn_id) == ("nicepay", NICE_WINDOW_TID)
        assert payment.amount == Money(amount=AMOUNT)
        assert transport.nice() == 1
        assert transport.kcp("/gw/enc/v1/payment") == tried
        # An order whose KCP approval never left can be paid again: through NICEPAY now.
        first = Order(order_id="ORD-1", amount=Money(amount=AMOUNT), name="아메리카노")
        again = router.start_checkout(first, Method.CARD, URLS)
        assert again.provider == "nicepay"
