"""The shared conformance suite, driven through both routers with KG Inicis's answers.

The payment window runs every scenario. Billing runs every scenario but ``decline``: Inicis
publishes no refusal code for INIAPI billing and a refusal has been seen with the card
charged, so the adapter reads a refusal as an unknown outcome and the Router inquires —
the stricter behaviour is pinned by the test below instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx
import pytest
from inicis_kit import InicisBillingKit, InicisBillingV2Kit, InicisWindowKit

from payfallback import AttemptState, ManualClock, Money, Order, OutcomeUnknown, RetryPolicy
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import RouterHarness
from payfallback.testing.conformance import conformance_tests

test_conformance_window = conformance_tests(InicisWindowKit)
test_conformance_billing_v1 = conformance_tests(InicisBillingKit)
test_conformance_billing_v2 = conformance_tests(InicisBillingV2Kit)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_billing_refusal_is_inquired_and_left_open_not_declined(
    kind: Literal["sync", "async"], tmp_path: Path
) -> None:
    kit = InicisBillingKit()
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/api/v1/billing":
            return kit.decline_response(request)
        return kit.lookup_not_paid_response(request, txn_id="")

    clock = ManualClock()
    journal = SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock)
    harness = RouterHarness(
        kind,
        [kit.make_provider()],
        httpx.MockTransport(answer),
        journal=journal,
        clock=clock,
        retry=RetryPolicy(attempts_per_provider=3, lookup_attempts=2, deadline=120.0),
    )
    order = Order(order_id="ORD-REFUSED", amount=Money(amount=12000), name="refused")
    try:
        with pytest.raises(OutcomeUnknown):
            harness.charge(order, [kit.instrument()])
    finally:
        harness.close()
    assert sent.count("/api/v1/billing") == 1, "a refused charge is never sent again blindly"
    assert "/api/v1/extra" in sent, "the inquiry is asked before anything else"
    attempts = journal.attempts_for_order("ORD-REFUSED")
    journal.close()
    assert attempts[-1].state == AttemptState.UNKNOWN
