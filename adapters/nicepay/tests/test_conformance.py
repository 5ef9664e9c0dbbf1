"""The shared conformance suite, driven through the Router with NICEPAY's answers."""

from __future__ import annotations

from nicepay_kit import NicepayBillingKit, NicepayKit

from payfallback.testing.conformance import conformance_tests

test_conformance_window = conformance_tests(NicepayKit)
test_conformance_billing = conformance_tests(NicepayBillingKit)
