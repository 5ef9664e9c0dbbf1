"""Fixtures for the NHN KCP adapter tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (kcp_support, kcp_kit) from here.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from kcp_support import provider
from payfallback_kcp import Kcp


@pytest.fixture
def kcp() -> Kcp:
    return provider()


@pytest.fixture
def sandbox() -> Kcp:
    return provider(sandbox=True)
