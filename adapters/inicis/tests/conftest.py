"""Fixtures for the KG Inicis adapter tests."""

from __future__ import annotations

import sys
from pathlib import Path

# The project runs pytest with --import-mode=importlib, which leaves sys.path alone; the
# test modules import their uniquely named helpers (inicis_support, inicis_kit) from here.
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from inicis_support import provider
from payfallback_inicis import Inicis


@pytest.fixture
def inicis() -> Inicis:
    return provider()
