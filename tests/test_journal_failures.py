"""The journal's own database failing under a payment: a typed error that says whether money
may have moved, and nothing charged twice once the journal is back."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from payfallback import (
    AsyncRouter,
    AttemptState,
    JournalUnavailable,
    ManualClock,
    OutcomeUnknown,
    PayfallbackError,
    Payment,
    Router,
)
from payfallback.journal import SQLiteJournal
from payfallback.journal.postgres import AsyncPostgresJournal
from payfallback.testing import FakeBank, FakeProvider, mock_transport
from tests.helpers import card, order
from tests.test_journal import PG_URL, PgSchemas


class FailingOnce(SQLiteJournal):
    """A journal whose database fails once, at ``fails``: a full disk."""

    fails = ""

    def _fail(self, name: str) -> None:
        if self.fails == name:
            self.fails = ""
            raise sqlite3.OperationalError("database or disk is full")

    def begin_attempt(self, *args: Any, **kwargs: Any) -> Any:
        self._fail("begin_attempt")
        return super().begin_attempt(*args, **kwargs)

    def record_success(self, *args: Any, **kwargs: Any) -> Any:
        self._fail("record_success")
        return super().record_success(*args, **kwargs)


def _charge(kind: str, journal: SQLiteJournal, bank: FakeBank, clock: ManualClock) -> Any:
    """One charge of ORD-1 through a router of ``kind``; its payment or its error, then, the
    journal working again and the lease run out, what ``recover()`` and a second charge of
    the order give."""
    options: dict[str, Any] = {"journal": journal, "clock": clock}
    if kind == "sync":
        with httpx.Client(transport=mock_transport(bank)) as client:
            router = Router([FakeProvider(bank.name)], client=client, **options)
            try:
                first: Payment | BaseException = router.charge(order(), [card(bank.name)])
            except BaseException as exc:  # the test looks at it
                first = exc
            clock.advance(300.0)
            router.recover()
            return first, router.charge(order(), [card(bank.name)])

    async def run() -> tuple[Payment | BaseException, Payment]:
        async with httpx.AsyncClient(transport=mock_transport(bank)) as client:
            router = AsyncRouter([FakeProvider(bank.name)], client=client, **options)
            try:
                first: Payment | BaseException = await router.charge(order(), [card(bank.name)])
            except BaseException as exc:  # the test looks at it
                first = exc
            clock.advance(300.0)
            await router.recover()
            return first, await router.charge(order(), [card(bank.name)])

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(
    ("fails", "error"),
    [("begin_attempt", JournalUnavailable), ("record_success", OutcomeUnknown)],
    ids=["before-the-request", "after-the-charge"],
)
def test_a_journal_failing_under_a_charge_says_whether_money_may_have_moved(
    kind: str, fails: str, error: type[PayfallbackError], tmp_path: Path
) -> None:
    """A full disk before the request: ``JournalUnavailable``, nothing was sent. After the
    provider charged: ``OutcomeUnknown``, and ``recover()`` journals the charge once the
    journal works. Either way the order ends paid once, by its first attempt."""
    clock = ManualClock()
    bank = FakeBank("toss", clock=clock)
    with FailingOnce(tmp_path / "journal.sqlite3", durable=False, clock=clock) as journal:
        journal.fails = fails
        first, again = _charge(kind, journal, bank, clock)
        assert type(first) is error, first
        assert isinstance(first, PayfallbackError)
        assert first.may_have_acted is (error is OutcomeUnknown)
        assert isinstance(first.__cause__, sqlite3.OperationalError)
        assert again.attempt_id == "ORD-1_1"
        assert [a.state for a in journal.attempts_for_order("ORD-1")] == [AttemptState.SUCCEEDED]
    assert bank.requests["charge"] == 1
    assert [e.order_ref for e in bank.live_charges()] == ["ORD-1_1"]


def test_a_postgresql_connection_dropped_mid_charge_is_an_unknown_outcome_settled_later() -> None:
    """The journal's one pooled connection is cut by the server (a restart, a failover)
    while the provider is charging. The next journal write meets it within the half second
    in which a connection is not checked before use: ``OutcomeUnknown``, with psycopg's
    error under it. The pool replaces the connection, and once the lease has run out
    ``recover()`` finds the charge and journals it."""
    schemas = PgSchemas()
    app = "pf-test-dropped"
    url = f"{PG_URL}?schema={schemas.name('dropped')}&pool_size=1&application_name={app}"
    clock = ManualClock()
    bank = FakeBank("toss", clock=clock)

    async def answer(request: httpx.Request) -> httpx.Response:
        response = bank.respond(request)
        if request.url.path == "/v1/charges":
            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as admin:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = %s",
                    (app,),
                )
        return response

    async def run() -> tuple[Payment | BaseException, Payment]:
        journal = AsyncPostgresJournal.from_url(url, clock=clock)
        async with (
            journal,
            httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client,
            AsyncRouter(
                [FakeProvider("toss")], client=client, journal=journal, clock=clock
            ) as router,
        ):
            try:
                first: Payment | BaseException = await router.charge(order(), [card("toss")])
            except BaseException as exc:  # the test looks at it
                first = exc
            clock.advance(300.0)
            report = await router.recover()
            assert report.paid == ["ORD-1_1"]
            return first, await router.charge(order(), [card("toss")])

    try:
        first, again = asyncio.run(run())
    finally:
        schemas.drop()
    assert isinstance(first, OutcomeUnknown), first
    assert isinstance(first.__cause__, psycopg.OperationalError)
    assert again.attempt_id == "ORD-1_1"
    assert [e.order_ref for e in bank.live_charges()] == ["ORD-1_1"]
