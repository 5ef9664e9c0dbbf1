"""Fixtures for the NICEPAY adapter tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (nicepay_support, nicepay_kit) from here.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from nicepay_support import provider
from payfallback_nicepay import Nicepay


@pytest.fixture
def nicepay() -> Nicepay:
    return provider()


@pytest.fixture
def sandbox() -> Nicepay:
    return provider(sandbox=True)
