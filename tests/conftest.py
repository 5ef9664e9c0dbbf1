"""Shared fixtures: a manual clock, fake banks, and routers of both kinds over them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from payfallback import ManualClock, RetryPolicy
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, RouterHarness, mock_transport

KINDS = ["sync", "async"]

MakeRouter = Callable[..., RouterHarness]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Every router test runs once through SyncRouter and once through the async Router."""
    return str(request.param)


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def make_router(kind: str, clock: ManualClock, journal_path: Path) -> Iterator[MakeRouter]:
    """Build a router of this test's kind over fake banks, on the manual clock."""
    made: list[RouterHarness] = []

    def make(
        *banks: FakeBank, providers: list[FakeProvider] | None = None, **options: Any
    ) -> RouterHarness:
        options.setdefault("clock", clock)
        options.setdefault("journal", SQLiteJournal(journal_path, clock=clock))
        options.setdefault("retry", RetryPolicy(deadline=60.0))
        provs = providers if providers is not None else [FakeProvider(b.name) for b in banks]
        harness = RouterHarness(kind, provs, mock_transport(*banks), **options)  # type: ignore[arg-type]
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
        harness.router.journal.close()
