"""The shared conformance suite, driven through the Router with Toss Payments' answers:
once for the payment-window flow (confirm) and once for billing-key charges."""

from __future__ import annotations

from tosspayments_kit import TossBillingKit, TossRedirectKit

from payfallback.testing.conformance import conformance_tests

test_conformance_redirect = conformance_tests(TossRedirectKit)
test_conformance_billing = conformance_tests(TossBillingKit)
