"""The seam between the journal's one set of transactions and the databases beneath it.

The transactions themselves are held to the journal contract in ``test_journal.py``, on
SQLite and PostgreSQL alike; here: how the SQLite driver translates PostgreSQL's statements,
how a database's own error reaches a flow as one neutral ``Conflict``, and that a charge's
two writes read nothing first.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from payfallback._clock import ManualClock
from payfallback.errors import InvalidRequest
from payfallback.journal._flow import Conflict, Flow, Query, Rows, throw
from payfallback.journal._transactions import Transactions
from payfallback.journal.sqlite import SQLiteJournal, _translate
from payfallback.models import Attempt, Method, Money, Order, Payment, PaymentStatus

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def journal(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteJournal]:
    with SQLiteJournal(tmp_path / "journal.sqlite3", durable=False, clock=clock) as opened:
        yield opened


def _order(order_id: str = "ord-1", amount: int = 10_000) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name="coffee")


def _begin(journal: SQLiteJournal, order: Order) -> Attempt:
    return journal.begin_attempt(
        order,
        provider="tosspayments",
        method=Method.CARD,
        operation="charge",
        idempotency_key=uuid.uuid4().hex,
        lease_seconds=30,
    )


def _payment(attempt: Attempt, clock: ManualClock, **changes: object) -> Payment:
    payment = Payment(
        payment_id=f"pay_{attempt.attempt_id}",
        order_id=attempt.order_id,
        provider=attempt.provider,
        method=attempt.method,
        provider_txn_id=f"txn-{attempt.attempt_id}",
        attempt_id=attempt.attempt_id,
        amount=Money(amount=10_000),
        refunded=Money(amount=0),
        status=PaymentStatus.PAID,
        approved_at=clock.now(),
        attempts=attempt.seq,
    )
    return payment.model_copy(update=changes)


def _statements(journal: SQLiteJournal) -> list[str]:
    """Every statement the journal's connection runs from now on, by its first words (a
    statement's triggers are reported as the statement again, and left out)."""
    seen: list[str] = []

    def trace(text: str) -> None:
        words = " ".join(text.split()[:3])
        if not seen or seen[-1] != words:
            seen.append(words)

    journal._conn.set_trace_callback(trace)
    return seen


# --------------------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("postgres", "sqlite"),
    [
        ("SELECT 1 FROM t WHERE a = %s AND b = %s", "SELECT 1 FROM t WHERE a = ? AND b = ?"),
        ("UPDATE t SET a = %(a)s WHERE b = %(b)s", "UPDATE t SET a = :a WHERE b = :b"),
        (
            "SELECT 1 FROM orders WHERE order_id = %s FOR UPDATE",
            "SELECT 1 FROM orders WHERE order_id = ?",
        ),
        (
            "SELECT o.order_id FROM orders o JOIN attempts a ON a.order_id = o.order_id"
            " WHERE a.attempt_id = %s FOR UPDATE OF o",
            "SELECT o.order_id FROM orders o JOIN attempts a ON a.order_id = o.order_id"
            " WHERE a.attempt_id = ?",
        ),
        (
            "INSERT INTO c (j) VALUES (%s::json)",
            "INSERT INTO c (j) VALUES (?)",
        ),
        (
            "SELECT j::text AS j FROM c ORDER BY created_at, row_no",
            "SELECT j AS j FROM c ORDER BY created_at, rowid",
        ),
    ],
)
def test_statements_are_translated_to_sqlite(postgres: str, sqlite: str) -> None:
    assert _translate(postgres) == sqlite


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def _catching(caught: list[str]) -> Flow[str]:
    try:
        yield Query("INSERT")
    except Conflict as exc:
        caught.append(exc.name)
        return "handled"
    return "written"


def _not_catching() -> Flow[None]:
    yield Query("INSERT")


def test_a_conflict_reaches_the_flow_with_its_constraint_name() -> None:
    caught: list[str] = []
    flow = _catching(caught)
    next(flow)
    native = sqlite3.IntegrityError("UNIQUE constraint failed: refunds.idempotency_key")
    with pytest.raises(StopIteration) as stop:
        throw(flow, native, Conflict("refunds_key_once"))
    assert stop.value.value == "handled"
    assert caught == ["refunds_key_once"]


def test_a_conflict_the_flow_leaves_alone_is_the_databases_own_error() -> None:
    flow = _not_catching()
    next(flow)
    native = sqlite3.IntegrityError("UNIQUE constraint failed: refunds.idempotency_key")
    with pytest.raises(sqlite3.IntegrityError) as raised:
        throw(flow, native, Conflict("refunds_key_once"))
    assert raised.value is native


def test_an_unmapped_error_reaches_the_flow_as_it_is() -> None:
    flow = _not_catching()
    next(flow)
    native = sqlite3.OperationalError("disk I/O error")
    with pytest.raises(sqlite3.OperationalError) as raised:
        throw(flow, native, None)
    assert raised.value is native


def test_a_flow_is_sent_rows_and_rows_affected(journal: SQLiteJournal) -> None:
    def flow() -> Flow[tuple[int, int, list[int]]]:
        written = yield Query("INSERT INTO schema_version VALUES (%s, %s, %s)", (99, "x", "t"))
        written_count = written.rowcount
        found = yield Query("SELECT version FROM schema_version WHERE version >= %(v)s", {"v": 99})
        versions = [row["version"] for row in found.rows]
        gone = yield Query("DELETE FROM schema_version WHERE version = %s", (99,))
        return written_count, gone.rowcount, versions

    assert journal._write(flow()) == (1, 1, [99])


# --------------------------------------------------------------------------------------
# A charge's two writes
# --------------------------------------------------------------------------------------


def test_a_new_orders_attempt_is_two_inserts(journal: SQLiteJournal) -> None:
    seen = _statements(journal)
    _begin(journal, _order())
    assert seen == [
        "BEGIN IMMEDIATE",
        "INSERT INTO orders",
        "INSERT INTO attempts",
        "COMMIT",
    ]


def test_a_payment_is_written_with_no_read_before_it(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    attempt = _begin(journal, _order())
    seen = _statements(journal)
    payment = journal.record_success(attempt.attempt_id, _payment(attempt, clock))
    assert seen == [
        "BEGIN IMMEDIATE",
        "INSERT INTO payments",
        "UPDATE attempts SET",
        "COMMIT",
    ]
    assert journal.get_payment(payment.payment_id) == payment


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": Money(amount=9_000)}, "was journaled for"),
        ({"order_id": "ord-2"}, "is for order ord-2"),
        ({"provider": "nicepay"}, "at nicepay"),
        # Two things wrong: the first one in check_payment_fits's order is said.
        ({"order_id": "ord-2", "attempts": -1}, "is for order ord-2"),
        ({"attempts": -1}, "attempts must be a count"),
        ({"attempt_id": "ord-1_7"}, "names attempt ord-1_7"),
    ],
)
def test_a_payment_that_does_not_fit_is_refused_and_nothing_is_written(
    journal: SQLiteJournal, clock: ManualClock, changes: dict[str, object], message: str
) -> None:
    journal.begin_attempt(
        _order("ord-2"),
        provider="tosspayments",
        method=Method.CARD,
        operation="charge",
        idempotency_key="other",
        lease_seconds=30,
    )
    attempt = _begin(journal, _order())
    with pytest.raises(InvalidRequest, match=message):
        journal.record_success(attempt.attempt_id, _payment(attempt, clock, **changes))
    assert journal.payment_for_order("ord-1") is None
    assert journal.payment_for_order("ord-2") is None
    stored = journal.get_attempt(attempt.attempt_id)
    assert stored is not None
    assert stored.state is attempt.state


def test_a_payment_of_an_unknown_attempt_names_it(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    attempt = _begin(journal, _order())
    ghost = attempt.model_copy(update={"attempt_id": "ord-1_9"})
    with pytest.raises(InvalidRequest, match="no attempt 'ord-1_9'"):
        journal.record_success("ord-1_9", _payment(ghost, clock))


def test_on_postgresql_too_a_charge_is_two_writes_each_way(clock: ManualClock) -> None:
    """The same flows with PostgreSQL's dialect: the order row is locked by the payment's
    own statement, and nothing is read before either write."""
    from payfallback.journal.postgres import _DIALECT  # noqa: PLC0415 - needs psycopg

    transactions = Transactions(clock, _DIALECT)
    begin = transactions.begin_attempt(
        _order(),
        provider="tosspayments",
        method=Method.CARD,
        operation="charge",
        idempotency_key="k-1",
        lease_seconds=30,
    )
    statements = [next(begin).statement, begin.send(Rows([], 1)).statement]
    with pytest.raises(StopIteration) as begun:
        begin.send(Rows([], 1))
    attempt: Attempt = begun.value.value
    assert attempt.attempt_id == "ord-1_1"
    record = transactions.record_success(attempt.attempt_id, _payment(attempt, clock))
    statements += [next(record).statement, record.send(Rows([], 1)).statement]
    with pytest.raises(StopIteration) as recorded:
        record.send(Rows([], 1))
    assert recorded.value.value == _payment(attempt, clock)
    assert [" ".join(str(text).split()[:3]) for text in statements] == [
        "INSERT INTO orders",
        "INSERT INTO attempts",
        "INSERT INTO payments",
        "UPDATE attempts SET",
    ]
    assert "FOR UPDATE OF o" in str(statements[2])
