"""Fixtures for the Naver Pay adapter tests (helpers live in ``naverpay_support``)."""

from __future__ import annotations

import sys
from pathlib import Path

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (naverpay_support, naverpay_kit) from
# this directory.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from naverpay_support import make_provider
from payfallback_naverpay import NaverPay


@pytest.fixture
def provider() -> NaverPay:
    return make_provider()
