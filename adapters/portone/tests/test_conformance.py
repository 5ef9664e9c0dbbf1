"""The shared conformance suite, driven through the Router with PortOne's answers.

Billing-key payments (SERVER_CHARGE) run the whole suite. The browser-SDK checkout
(REDIRECT) runs every scenario but ``happy_path``: that scenario asserts the money-moving
request carries the ``Idempotency-Key`` header, and PortOne's approve is the verification
``GET /payments/{paymentId}``, on which PortOne documents the header as ignored (and which
is safe to repeat without one), so the adapter does not send it. Everything else
``happy_path`` checks is checked by the scenarios that pay first (``full_cancel``,
``partial_cancel``, ``refund_over_paid``) and by ``test_kit.py``.
"""

from __future__ import annotations

import pytest
from portone_kit import PortOneBillingKit, PortOneCheckoutKit

from payfallback.testing._suite import run, scenarios
from payfallback.testing.conformance import conformance_tests

test_conformance = conformance_tests(PortOneBillingKit)

_CHECKOUT = sorted(set(scenarios(PortOneCheckoutKit())) - {"happy_path"})


def test_checkout_runs_the_scenarios_that_matter_for_a_redirect_flow() -> None:
    assert {
        "decline",
        "user_cancel",
        "timeout_then_lookup",
        "server_error_then_lookup",
        "unknown_then_not_paid",
        "full_cancel",
        "partial_cancel",
        "bad_credentials",
    } <= set(_CHECKOUT)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("scenario", _CHECKOUT)
def test_checkout_conformance(scenario: str, kind: str) -> None:
    run(PortOneCheckoutKit, scenario, kind)  # type: ignore[arg-type]
