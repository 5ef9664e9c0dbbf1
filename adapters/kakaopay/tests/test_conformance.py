"""The shared conformance suite, driven through the Router with Kakao Pay's answers."""

from __future__ import annotations

from kakaopay_kit import KakaoPayKit

from payfallback.testing.conformance import conformance_tests

test_conformance = conformance_tests(KakaoPayKit)
