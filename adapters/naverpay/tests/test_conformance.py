"""The shared conformance suite, driven through the Router with Naver Pay's answers."""

from __future__ import annotations

from naverpay_kit import NaverPayKit

from payfallback.testing.conformance import conformance_tests

test_conformance = conformance_tests(NaverPayKit)
