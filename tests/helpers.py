"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from payfallback import Instrument, Method, Money, Order
from payfallback.journal import Journal
from payfallback.models import Attempt
from payfallback.testing import FakeBank


def order(order_id: str = "ORD-1", amount: int = 39_000, **kw: Any) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name="아메리카노 외 2건", **kw)


def card(provider: str, billing_key: str = "bk-ok-0001") -> Instrument:
    return Instrument(provider=provider, billing_key=SecretStr(billing_key))


def charging_elsewhere(
    journal: Journal, order: Order, provider: str = "toss", method: Method = Method.CARD
) -> Attempt:
    """Another worker's charge of ``order``, being sent right now (its lease is live)."""
    return journal.begin_attempt(
        order,
        provider=provider,
        method=method,
        operation="charge",
        idempotency_key=f"elsewhere-{order.order_id}",
        lease_seconds=600,
    )


def paid_at_the_providers_page(bank: FakeBank, tid: str | None, amount: int) -> None:
    """The customer approves checkout ``tid`` and the provider's own page (or SDK) takes the
    money, without the Router's approve call (PortOne's pages do)."""
    assert tid is not None
    with httpx.Client(transport=bank.transport()) as sdk:
        taken = sdk.post(
            f"{bank.base_url}/v1/checkouts/{tid}/approve",
            json={"token": f"ok-{tid}", "amount": amount},
            headers={"Authorization": "Bearer fake-secret"},
        )
    assert taken.status_code == 200
