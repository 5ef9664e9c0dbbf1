"""The shared conformance suite, driven through both Routers with KCP's answers."""

from __future__ import annotations

from kcp_kit import KcpBatchKit, KcpKit

from payfallback.testing.conformance import conformance_tests

test_conformance_window = conformance_tests(KcpKit)
test_conformance_batch = conformance_tests(KcpBatchKit)
