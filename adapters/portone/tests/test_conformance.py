"""The shared conformance suite, driven through the Router with PortOne's answers.

Both flows run the whole suite: billing-key payments (SERVER_CHARGE) and the browser-SDK
checkout (REDIRECT). In the checkout the money-moving step is the verification
``GET /payments/{paymentId}``, which is safe to repeat and on which PortOne ignores
``Idempotency-Key``; the suite asks for that header only on money-moving writes.
"""

from __future__ import annotations

from typing import Any

from portone_kit import PortOneBillingKit, PortOneCheckoutKit

from payfallback.testing.conformance import conformance_tests

test_conformance = conformance_tests(PortOneBillingKit)

test_checkout_conformance = conformance_tests(PortOneCheckoutKit)


def _scenarios(test: Any) -> set[str]:
    """The scenario names a generated conformance test is parametrized over."""
    marks = vars(test)["pytestmark"]
    return {
        name
        for mark in marks
        if mark.name == "parametrize" and mark.args[0] == "scenario"
        for name in mark.args[1]
    }


def test_checkout_runs_the_scenarios_that_matter_for_a_redirect_flow() -> None:
    assert {
        "happy_path",
        "decline",
        "user_cancel",
        "timeout_then_lookup",
        "server_error_then_lookup",
        "unknown_then_not_paid",
        "full_cancel",
        "partial_cancel",
        "refund_over_paid",
        "bad_credentials",
    } <= _scenarios(test_checkout_conformance)
