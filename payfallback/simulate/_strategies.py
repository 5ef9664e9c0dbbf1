"""The three ways a shop can take a payment, each serving one customer at a time.

* :class:`NoFallback` — the customer's own provider (Toss Payments for cards), one call
  each, no retries: a failure is a lost sale.
* :class:`Naive` — what people write by hand: plain httpx, tenacity retries on transport
  errors and 5xx (``stop_after_attempt(3)``, ``wait_exponential``), then the next provider;
  no status inquiry, no idempotency key, no journal. A request whose answer was lost is
  retried blindly, and when the provider refuses the repeat (the order was already paid)
  the customer is sent on to pay again elsewhere: that is how double charges happen.
* :class:`WithPayfallback` — a :class:`~payfallback.Router` over the same providers,
  with an in-memory journal, breakers at the default policy, and a ``recover()`` run
  every 15 minutes, as a cron job would. When an approval certainly did not happen, the
  customer taps "pay" once more, 10 seconds later, as the shop's page invites them to.

Wallet customers accept the other wallets when theirs is unavailable, in the shop's
order; card customers have a billing key at both card PGs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from payfallback.breaker import MaintenanceWindow
from payfallback.errors import Declined, OutcomeUnknown, PayfallbackError, ProviderUnavailable
from payfallback.events import Only
from payfallback.journal import SQLiteJournal
from payfallback.models import Instrument, Method, Money, Order, RefundState, ReturnUrls
from payfallback.router import Router
from payfallback.simulate._clock import SimClock
from payfallback.simulate._shop import (
    NO_PROOF,
    SECRET,
    SETTLE_WINDOW,
    WALLETS,
    IncidentSpec,
    Shop,
)
from payfallback.simulate._traffic import Customer, Intent
from payfallback.testing import FakeProvider

__all__ = ["STRATEGIES", "Naive", "NoFallback", "Result", "Strategy", "WithPayfallback"]

#: Strategy keys (stable: they are the JSON report's keys) and their labels.
STRATEGIES: Mapping[str, str] = {
    "no_fallback": "no fallback",
    "naive": "naive retries",
    "payfallback": "payfallback",
}

#: Wallets a customer accepts when their own is unavailable, in the shop's order.
FALLBACK_WALLETS: Mapping[Method, tuple[Method, ...]] = {
    m: tuple(other for other in WALLETS.values() if other is not m) for m in WALLETS.values()
}

_BILLING_KEYS = {
    Intent.PAY: "bk-ok",
    Intent.DECLINED: "bk-declined",
    Intent.INSUFFICIENT: "bk-insufficient",
    Intent.CANCEL: "bk-ok",
}
_RETURN = "https://shop.example/pay/return"
_CUSTOMER_REFUSALS = frozenset({"USER_CANCELLED", "CARD_DECLINED", "INSUFFICIENT_FUNDS"})


class Result(Enum):
    """How one customer's checkout ended, as the shop saw it."""

    PAID = "paid"
    #: The customer's own answer: declined card, cancelled at the approval page.
    REFUSED = "refused"
    #: The shop could not take the payment.
    FAILED = "failed"
    #: The outcome was not known at checkout (payfallback: settled later by recover).
    PENDING = "pending"


class Strategy:
    """Serves customers one by one on the shop's providers."""

    key = ""

    def pay(self, customer: Customer) -> Result:
        raise NotImplementedError("pay")

    def tick(self, now: datetime) -> None:
        """Called before each customer; periodic work goes here."""

    def finish(self) -> None:
        """After the last customer (and the clock moved past the window)."""

    def paid_orders(self, pending: Iterable[str]) -> set[str]:
        """Which of the ``pending`` orders turned out paid by the end."""
        return set()

    def close(self) -> None:
        """Release what the strategy holds."""


class _ServerError(Exception):
    """A 5xx, raised so tenacity retries it."""


class _HandWritten(Strategy):
    """Plain httpx against each provider's API, as a shop writes it without a library."""

    def __init__(self, shop: Shop, clock: SimClock, *, retries: bool, fallback: bool) -> None:
        self._client = shop.client
        self._card_pgs = shop.card_pgs
        self._fallback = fallback
        # One 10 s timeout for connect and read alike; the fake honours it on the sim clock.
        self._timeout = {"timeout": httpx.Timeout(10.0).as_dict()}
        self._headers = {"Authorization": f"Bearer {SECRET}"}
        self._urls: dict[str, httpx.URL] = {}
        self._retrying = (
            Retrying(
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=1, min=1, max=10),
                retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
                sleep=clock.sleep,
                reraise=True,
            )
            if retries
            else None
        )

    def _url(self, provider: str, path: str) -> httpx.URL:
        # The fixed endpoints are parsed once; an approval's path names its checkout.
        address = f"https://{provider}.fake.test{path}"
        if "/v1/checkouts/" in path:
            return httpx.URL(address)
        url = self._urls.get(address)
        if url is None:
            url = self._urls[address] = httpx.URL(address)
        return url

    def _send(self, url: httpx.URL, body: dict[str, Any]) -> httpx.Response:
        """One POST: what ``client.post(url, json=body, headers=..., timeout=...)`` sends,
        built as the request itself (the client's merging of defaults, base URL, cookies
        and its own headers, has nothing to merge here); a 5xx raises ``_ServerError``."""
        request = httpx.Request(
            "POST", url, json=body, headers=self._headers, extensions=self._timeout
        )
        response = self._client.send(request)
        if response.status_code >= 500:
            raise _ServerError(response.status_code)
        return response

    def _post(self, provider: str, path: str, body: dict[str, Any]) -> httpx.Response:
        url = self._url(provider, path)
        if self._retrying is None:
            return self._send(url, body)
        return self._retrying(self._send, url, body)

    def _call(self, provider: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON answer, or None when the call failed (after retries)."""
        try:
            response = self._post(provider, path, body)
            data = response.json()
        except (httpx.TransportError, _ServerError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        data["_status"] = response.status_code
        return data

    def pay(self, customer: Customer) -> Result:
        if customer.pays_with == "card":
            providers: tuple[str, ...] = self._card_pgs
        else:
            own = customer.method
            providers = (
                customer.pays_with,
                *(name for name, m in WALLETS.items() if m in FALLBACK_WALLETS[own]),
            )
        if not self._fallback:
            providers = providers[:1]
        for n, provider in enumerate(providers, start=1):
            ref = f"{customer.order_id}_{n}"
            if customer.pays_with == "card":
                body = {
                    "order_ref": ref,
                    "billing_key": _BILLING_KEYS[customer.intent],
                    "amount": customer.amount,
                    "currency": "KRW",
                }
                answer = self._call(provider, "/v1/charges", body)
            else:
                checkout = self._call(
                    provider,
                    "/v1/checkouts",
                    {
                        "order_ref": ref,
                        "amount": customer.amount,
                        "currency": "KRW",
                        "name": "order",
                        "return_url": _RETURN,
                    },
                )
                tid = checkout.get("tid") if checkout is not None else None
                if checkout is None or checkout["_status"] != 200 or not isinstance(tid, str):
                    continue
                token = "cancel" if customer.intent is Intent.CANCEL else f"ok-{tid}"
                answer = self._call(
                    provider,
                    f"/v1/checkouts/{tid}/approve",
                    {"token": token, "amount": customer.amount},
                )
            if answer is None:
                continue
            if answer["_status"] == 200 and answer.get("status") == "paid":
                return Result.PAID
            if answer.get("code") in _CUSTOMER_REFUSALS:
                return Result.REFUSED
        return Result.FAILED


class NoFallback(_HandWritten):
    key = "no_fallback"

    def __init__(self, shop: Shop, clock: SimClock) -> None:
        super().__init__(shop, clock, retries=False, fallback=False)


class Naive(_HandWritten):
    key = "naive"

    def __init__(self, shop: Shop, clock: SimClock) -> None:
        super().__init__(shop, clock, retries=True, fallback=True)


class WithPayfallback(Strategy):
    """A Router over the shop, recording breaker trips and refunds from its events."""

    key = "payfallback"
    recover_every = timedelta(minutes=15)
    customer_retry_after = 10.0

    def __init__(
        self,
        shop: Shop,
        clock: SimClock,
        *,
        incidents: Iterable[IncidentSpec] = (),
        compensate: bool = True,
    ) -> None:
        self._clock = clock
        settle = timedelta(seconds=SETTLE_WINDOW)
        providers = [
            FakeProvider(name, secret=SECRET, methods=[method], settle_window=settle)
            for name, method in WALLETS.items()
        ] + [
            FakeProvider(
                name,
                secret=SECRET,
                methods=[Method.CARD],
                **{"settle_window": settle, **NO_PROOF.get(name, {})},  # type: ignore[arg-type]
            )
            for name in shop.card_pgs
        ]
        # The journal is the real SQLite one, in memory: every rule it enforces holds, and
        # a weekend of payments needs no disk.
        self.journal = SQLiteJournal(":memory:", durable=False, clock=clock)
        self.router = Router(
            providers,
            client=shop.client,
            journal=self.journal,
            clock=clock,
            sleep=clock.sleep,
            # Only what the report counts: the other events cost nothing.
            listeners=[
                Only({"breaker.opened", "payment.compensating", "refund.succeeded"}, self._listen)
            ],
            maintenance=[
                MaintenanceWindow(i.provider, i.start, i.end, reason=i.label)
                for i in incidents
                if i.announced
            ],
            fallback_methods=FALLBACK_WALLETS,
            compensate=compensate,
        )
        self._instruments = {
            intent: [
                Instrument(provider=pg, billing_key=SecretStr(key), method=Method.CARD)
                for pg in shop.card_pgs
            ]
            for intent, key in _BILLING_KEYS.items()
        }
        self._urls = ReturnUrls(success=_RETURN, cancel=_RETURN, fail=_RETURN)
        self._next_recover: datetime | None = None
        #: ``(provider, when)`` of every ``breaker.opened``.
        self.opened: list[tuple[str, datetime]] = []
        #: Refund ids journaled to give back a charge that must not stand.
        self.compensations: set[str] = set()
        self.refunds_settled: set[str] = set()

    def _listen(self, name: str, fields: Mapping[str, Any]) -> None:
        if name == "breaker.opened":
            self.opened.append((str(fields.get("provider")), self._clock.now()))
        elif name == "payment.compensating":
            self.compensations.add(str(fields.get("refund_id")))
        elif name == "refund.succeeded":
            self.refunds_settled.add(str(fields.get("refund_id")))

    def tick(self, now: datetime) -> None:
        if self._next_recover is None:
            self._next_recover = now + self.recover_every
        elif now >= self._next_recover:
            self._next_recover = now + self.recover_every
            self.router.recover()

    def pay(self, customer: Customer) -> Result:
        order = Order(
            order_id=customer.order_id, amount=Money(amount=customer.amount), name="order"
        )
        try:
            if customer.pays_with == "card":
                self.router.charge(order, self._instruments[customer.intent])
                return Result.PAID
            session = self.router.start_checkout(order, customer.method, self._urls)
            tid = session.provider_txn_id or ""
            token = "cancel" if customer.intent is Intent.CANCEL else f"ok-{tid}"
            params = {"token": token, "tid": tid}
            try:
                self.router.complete_checkout(session.session_id, params)
            except ProviderUnavailable:
                # Certainly not approved, so the shop's page says "try again" and the
                # customer taps once more, a few seconds later, on the same session.
                self._clock.sleep(self.customer_retry_after)
                self.router.complete_checkout(session.session_id, params)
            return Result.PAID
        except Declined:
            return Result.REFUSED
        except OutcomeUnknown:
            return Result.PENDING
        except PayfallbackError:
            return Result.FAILED

    def finish(self) -> None:
        self.router.recover()

    def paid_orders(self, pending: Iterable[str]) -> set[str]:
        return {o for o in pending if self.journal.payment_for_order(o) is not None}

    def refund_amounts(self) -> tuple[int, int]:
        """KRW journaled to give back, and KRW of it settled."""
        owed = settled = 0
        for refund_id in self.compensations:
            refund = self.journal.get_refund(refund_id)
            if refund is not None:
                owed += refund.amount.amount
                if refund.state == RefundState.SUCCEEDED:
                    settled += refund.amount.amount
        return owed, settled

    def close(self) -> None:
        self.router.close()
        self.journal.close()
