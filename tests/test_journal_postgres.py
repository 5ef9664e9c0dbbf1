"""What only the PostgreSQL journal has: URLs, the schema's own guards, migrations, workers
racing in threads and processes, the async journal, and two Routers sharing one journal.

The behaviour every journal shares is pinned by ``test_journal.py`` (whose
``journal_factory`` runs it against PostgreSQL too). Everything here talks to the real
server at ``PAYFALLBACK_TEST_POSTGRES``, each test in schemas of its own, dropped at
teardown.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from queue import Queue
from typing import Any, cast

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from payfallback._clock import ManualClock
from payfallback.errors import ConfigurationError, InvalidRequest
from payfallback.journal import AttemptInFlight, Journal, JournalCounts, TxnAlreadyRecorded
from payfallback.journal._migrations import Migration
from payfallback.journal._pg_flow import run
from payfallback.journal._pg_migrations import LATEST_VERSION, MIGRATIONS, migrate_step
from payfallback.journal.postgres import CHECK_BYPASS_S, AsyncPostgresJournal, PostgresJournal
from payfallback.models import (
    MAX_AMOUNT,
    Attempt,
    AttemptState,
    Method,
    Money,
    Payment,
    Refund,
    RefundState,
)
from payfallback.retry import RetryPolicy
from payfallback.router import Router, open_journal
from payfallback.testing import FakeBank, FakeProvider, double_charges, mock_transport
from tests.helpers import card, order
from tests.test_journal import (
    PG_URL,
    RAW_WRITES_V2,
    V1_ROWS,
    V1_SAME_TXN_ROWS,
    AsyncJournalOnALoop,
    LoopThread,
    PgSchemas,
    begin,
    check_upgraded_v1_rows,
    guarded_rows,
    ids,
    make_order,
    make_payment,
    make_refund,
    paid_order,
    race,
)

OpenJournal = Callable[..., PostgresJournal]


@pytest.fixture
def schemas() -> Iterator[PgSchemas]:
    made = PgSchemas()
    yield made
    made.drop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def open_journal_in(schemas: PgSchemas, clock: ManualClock) -> Iterator[OpenJournal]:
    """``open(store="main", **options)``: a journal in this test's schema called ``store``."""
    opened: list[PostgresJournal] = []

    def open_(store: str = "main", **options: Any) -> PostgresJournal:
        options.setdefault("clock", clock)
        options.setdefault("pool_size", 4)
        journal = PostgresJournal(PG_URL, schema=schemas.name(store), **options)
        opened.append(journal)
        return journal

    yield open_
    for journal in opened:
        journal.close()


@pytest.fixture
def journal(open_journal_in: OpenJournal) -> PostgresJournal:
    return open_journal_in()


def raw(schema: str) -> psycopg.Connection[Any]:
    """A connection of our own to the journal's schema, as an operator's ``psql``."""
    return psycopg.connect(PG_URL, autocommit=True, options=f"-c search_path={schema}")


def scalar(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params if params else None).fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------------------
# Opening: URLs, settings, errors
# --------------------------------------------------------------------------------------


class TestOpening:
    def test_from_url_reads_schema_and_pool_size(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        schema = schemas.name("url")
        url = f"{PG_URL}?schema={schema}&pool_size=3&connect_timeout=5"
        with PostgresJournal.from_url(url, clock=clock) as journal:
            assert (journal.schema, journal.pool_size) == (schema, 3)
            assert begin(journal, make_order()).attempt_id == "ord-1_1"
        with raw(schema) as conn:
            assert scalar(conn, "SELECT COUNT(*) FROM attempts") == 1

    def test_the_router_opens_a_postgres_url_and_owns_it(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        schema = schemas.name("router")
        journal, owned = open_journal(f"{PG_URL}?schema={schema}", clock)
        try:
            assert isinstance(journal, PostgresJournal)
            assert isinstance(journal, Journal)
            assert owned is True
            assert journal.schema == schema
        finally:
            journal.close()

    @pytest.mark.parametrize(
        "url", ["sqlite:///journal.sqlite3", "mysql://db/pay", "postgresql:db", "127.0.0.1:5432"]
    )
    def test_from_url_refuses_other_urls(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="not a PostgreSQL journal URL"):
            PostgresJournal.from_url(url)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"schema": "Payments"}, "not a plain PostgreSQL name"),
            ({"schema": "pay-fallback"}, "not a plain PostgreSQL name"),
            ({"schema": "x" * 64}, "not a plain PostgreSQL name"),
            ({"schema": ""}, "not a plain PostgreSQL name"),
            ({"pool_size": 0}, "pool_size must be"),
            ({"pool_size": True}, "pool_size must be"),
        ],
    )
    def test_bad_settings_are_refused_before_connecting(
        self, options: dict[str, Any], message: str
    ) -> None:
        # Port 1 is closed: reaching the server at all would fail with another message.
        with pytest.raises(ConfigurationError, match=message):
            PostgresJournal("postgresql://postgres@127.0.0.1:1/test", **options)
        with pytest.raises(ConfigurationError, match=message):
            AsyncPostgresJournal("postgresql://postgres@127.0.0.1:1/test", **options)

    def test_a_bad_pool_size_in_the_url_is_refused(self) -> None:
        with pytest.raises(ConfigurationError, match="pool_size must be a whole number"):
            PostgresJournal.from_url(f"{PG_URL}?pool_size=many")

    def test_a_server_that_cannot_be_reached_is_a_configuration_error(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            PostgresJournal("postgresql://postgres:s3cret-pw@127.0.0.1:1/test?connect_timeout=5")
        message = str(caught.value)
        assert "cannot open journal postgresql://postgres@127.0.0.1:1/test" in message
        assert "Connection refused" in message  # PostgreSQL's own reason, passed on
        assert "check the URL" in message
        assert "s3cret-pw" not in message

    def test_an_unknown_database_is_a_configuration_error(self) -> None:
        url = PG_URL.rsplit("/", 1)[0] + "/payfallback_no_such_database"
        with pytest.raises(ConfigurationError, match=r"no_such_database.* does not exist"):
            PostgresJournal(url)

    def test_repr_and_messages_never_show_the_password(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        # Trust authentication ignores the password, so this one connects.
        with_password = make_conninfo(PG_URL, password="s3cret-pw")
        schema = schemas.name("repr")
        with PostgresJournal(with_password, schema=schema, pool_size=2, clock=clock) as journal:
            text = repr(journal)
            assert "s3cret-pw" not in text
            assert text.startswith("PostgresJournal('postgresql://")
            assert f"schema={schema!r}, pool_size=2" in text
        with pytest.raises(ConfigurationError) as caught:
            PostgresJournal.from_url("postgresql-x://postgres:s3cret-pw@db/pay")
        assert "s3cret-pw" not in str(caught.value)


# --------------------------------------------------------------------------------------
# The schema's own guards
# --------------------------------------------------------------------------------------


_TS = "'2022-10-15T06:30:00Z'"
_RAW_ATTEMPT = (
    "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
    " idempotency_key, state, lease_until, created_at, updated_at) VALUES"
    " ('{id}', '{order}', 9, 'toss', 'card', 'charge', '{id}', 'pending',"
    f" '2030-01-01T00:00:00Z', {_TS}, {_TS})"
)
_TABLES = ("orders", "attempts", "payments", "refunds")


class TestSchemaGuards:
    """The database refuses what the journal never writes, even from hand-written SQL."""

    def test_money_is_bigint_and_times_are_timestamptz(self, journal: PostgresJournal) -> None:
        with raw(journal.schema) as conn:
            types = dict(
                conn.execute(
                    "SELECT table_name || '.' || column_name, data_type"
                    " FROM information_schema.columns WHERE table_schema = %s",
                    (journal.schema,),
                ).fetchall()
            )
        money = ["orders.amount", "payments.amount", "payments.refunded", "refunds.amount"]
        money += ["refunds.expected_remaining", "refunds.tax_free_amount"]
        assert {types[c] for c in money} == {"bigint"}
        times = [c for c in types if c.endswith(("_at", ".lease_until"))]
        assert len(times) >= 12
        assert {types[c] for c in times} == {"timestamp with time zone"}

    def test_amounts_beyond_32_bits_are_kept_exactly(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        big = make_order("ord-big", amount=5_000_000_000)
        _, _, payment = paid_order(journal, clock, big)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=3_000_000_000))
        journal.add_refund(make_refund(payment, clock, refund_id="rf-2", amount=1_999_999_999))
        assert journal.get_payment(payment.payment_id) == payment
        assert journal.counts().refunds_owed_amount == 4_999_999_999
        journal.update_refund("rf-1", state=RefundState.SUCCEEDED)
        refunded = journal.get_payment(payment.payment_id)
        assert refunded is not None
        assert refunded.refunded == Money(amount=3_000_000_000)

    def test_owed_amounts_are_counted_exactly_beyond_64_bits(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock, make_order(amount=MAX_AMOUNT))
        journal.add_refund(make_refund(payment, clock, refund_id="rf-0", amount=MAX_AMOUNT))
        with raw(journal.schema) as conn:
            # Written by hand: the journal keeps each payment's refunds within what it paid.
            conn.execute(
                "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " idempotency_key, state, tries, created_at, updated_at)"
                " SELECT 'rf-' || i, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " 'key-' || i, state, tries, created_at, updated_at"
                " FROM generate_series(1, 1099) AS i, refunds WHERE refund_id = 'rf-0'"
            )
        counts = journal.counts()
        assert counts.refunds_owed == 1_100
        assert counts.refunds_owed_amount == 1_100 * MAX_AMOUNT > 2**63

    def test_two_successes_for_one_order_violate_a_unique_index(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        order_ = make_order()
        first = begin(journal, order_, lease=0)
        journal.update_attempt(first.attempt_id, state=AttemptState.FAILED)
        paid_order(journal, clock, order_)
        with (
            raw(journal.schema) as conn,
            pytest.raises(psycopg.errors.UniqueViolation, match="attempts_one_success"),
        ):
            conn.execute("UPDATE attempts SET state = 'succeeded' WHERE attempt_id = 'ord-1_1'")

    @pytest.mark.parametrize(
        "statement",
        [
            pytest.param(_RAW_ATTEMPT.format(id="ord-1_9", order="ord-1"), id="attempt-after-paid"),
            pytest.param(
                _RAW_ATTEMPT.format(id="ord-2_9", order="ord-2"), id="second-live-pending"
            ),
            pytest.param(
                "INSERT INTO payments SELECT 'pay-2', order_id, attempt_id, provider, method,"
                " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
                " created_at, updated_at FROM payments",
                id="second-payment",
            ),
            pytest.param(
                "INSERT INTO payments SELECT 'pay-2', 'ord-2', attempt_id, provider, method,"
                " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
                " created_at, updated_at FROM payments",
                id="payment-of-another-orders-attempt",
            ),
            pytest.param("UPDATE orders SET amount = 1", id="order-amount-changed"),
            pytest.param("UPDATE orders SET currency = 'USD'", id="order-currency-changed"),
            pytest.param("UPDATE payments SET refunded = amount + 1", id="over-refunded"),
            pytest.param("UPDATE payments SET amount = 0, refunded = 0", id="zero-payment"),
            pytest.param("UPDATE attempts SET state = 'lost'", id="unknown-state"),
            pytest.param(
                "UPDATE attempts SET state = 'pending' WHERE attempt_id = 'ord-2_1'",
                id="back-to-pending-while-another-is-live",
            ),
            pytest.param(
                "UPDATE attempts SET state = 'failed' WHERE attempt_id = 'ord-1_1'",
                id="succeeded-attempt-moved",
            ),
            pytest.param("DELETE FROM refunds WHERE state = 'owed'", id="owed-refund-deleted"),
            pytest.param(
                "UPDATE refunds SET order_id = 'ord-2'", id="refund-of-another-orders-attempt"
            ),
            *RAW_WRITES_V2,
        ],
    )
    def test_raw_writes_that_break_a_rule_are_refused(
        self, journal: PostgresJournal, clock: ManualClock, statement: str
    ) -> None:
        guarded_rows(journal, clock)
        with raw(journal.schema) as conn:

            def tables() -> dict[str, list[tuple[Any, ...]]]:
                return {
                    table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                    for table in _TABLES
                }

            before = tables()
            with pytest.raises(psycopg.errors.IntegrityError):
                conn.execute(statement)
            assert tables() == before


# --------------------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------------------


def applied(schema: str) -> list[tuple[int, datetime]]:
    with raw(schema) as conn:
        rows = conn.execute("SELECT version, applied_at FROM schema_version ORDER BY 1")
        return [(int(r[0]), r[1]) for r in rows.fetchall()]


def migrate_raw(schema: str, steps: list[Migration], applied_at: datetime) -> int:
    """Apply ``steps`` to ``schema`` as the journal does, one transaction per step."""
    with raw(schema) as conn:
        while True:
            version = run(
                conn,
                migrate_step(schema=schema, applied_at=applied_at, where="test", migrations=steps),
            )
            if version is not None:
                return version


class TestMigrations:
    def test_a_new_schema_gets_every_step(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
        assert applied(journal.schema) == [(m.version, clock.now()) for m in MIGRATIONS]

    def test_workers_opening_a_new_schema_at_once_apply_each_step_once(
        self, open_journal_in: OpenJournal
    ) -> None:
        journals = race([partial(open_journal_in, "fresh", pool_size=1) for _ in range(6)])
        assert all(isinstance(j, PostgresJournal) for j in journals)
        opened = [j for j in journals if isinstance(j, PostgresJournal)]
        assert len(applied(opened[0].schema)) == LATEST_VERSION

    def test_reopening_applies_nothing_twice_and_keeps_the_rows(
        self, open_journal_in: OpenJournal, clock: ManualClock
    ) -> None:
        created = clock.now()
        with open_journal_in("again") as first:
            _, _, payment = paid_order(first, clock)
        clock.advance(3600)
        with open_journal_in("again") as second:
            assert second.payment_for_order("ord-1") == payment
            assert applied(second.schema) == [(m.version, created) for m in MIGRATIONS]

    def test_steps_apply_one_by_one_from_where_the_schema_is(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        schema = schemas.name("steps")
        steps = [
            Migration(1, "a", ("CREATE TABLE a (x integer)",)),
            Migration(2, "b", ("CREATE TABLE b (x integer)", "INSERT INTO b VALUES (2)")),
            Migration(3, "c", ("CREATE TABLE c (x integer)",)),
        ]
        first = clock.now()
        assert migrate_raw(schema, steps[:1], first) == 1
        clock.advance(60)
        assert migrate_raw(schema, steps, clock.now()) == 3
        assert applied(schema) == [(1, first), (2, clock.now()), (3, clock.now())]
        with raw(schema) as conn:
            assert scalar(conn, "SELECT x FROM b") == 2

    def test_a_failing_step_is_rolled_back_alone(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        schema = schemas.name("broken")
        steps = [
            Migration(1, "a", ("CREATE TABLE a (x integer)",)),
            Migration(
                2, "broken", ("CREATE TABLE b (x integer)", "INSERT INTO nowhere VALUES (1)")
            ),
        ]
        with pytest.raises(ConfigurationError, match=r"migration 2 \(broken\) failed") as caught:
            migrate_raw(schema, steps, clock.now())
        assert "stays at version 1" in str(caught.value)
        with raw(schema) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            ).fetchall()
        assert {t[0] for t in tables} == {"schema_version", "a"}

    def test_a_newer_schema_is_refused(
        self, open_journal_in: OpenJournal, clock: ManualClock
    ) -> None:
        schema = open_journal_in("future").schema
        later = Migration(
            LATEST_VERSION + 1,
            "payments note",
            ("ALTER TABLE payments ADD COLUMN note text NOT NULL DEFAULT ''",),
        )
        assert migrate_raw(schema, [*MIGRATIONS, later], clock.now()) == LATEST_VERSION + 1
        with pytest.raises(ConfigurationError) as caught:
            open_journal_in("future")
        message = str(caught.value)
        assert f"schema version {LATEST_VERSION + 1}" in message
        assert f"only knows versions up to {LATEST_VERSION}" in message
        assert "Upgrade payfallback" in message
        newer = AsyncPostgresJournal(PG_URL, schema=schema, clock=clock)
        with pytest.raises(ConfigurationError, match="Upgrade payfallback"):
            asyncio.run(newer.open())

    def test_a_running_worker_survives_a_newer_release_adding_columns(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        _, attempt, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=100))
        for _ in range(6):  # often enough for psycopg to prepare the statements
            assert journal.payment_for_order("ord-1") == payment
            assert journal.get_attempt(attempt.attempt_id) is not None
            assert ids(journal.refunds_owed()) == ["rf-1"]
        later = Migration(
            LATEST_VERSION + 1,
            "notes",
            tuple(
                f"ALTER TABLE {table} ADD COLUMN note text NOT NULL DEFAULT ''"
                for table in ("attempts", "payments", "refunds")
            ),
        )
        migrate_raw(journal.schema, [*MIGRATIONS, later], clock.now())
        assert journal.payment_for_order("ord-1") == payment
        assert journal.get_attempt(attempt.attempt_id) is not None
        assert ids(journal.refunds_owed()) == ["rf-1"]

    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_a_version_1_schema_is_upgraded_in_place(
        self, schemas: PgSchemas, clock: ManualClock, kind: str
    ) -> None:
        schema = schemas.name(f"v1_{kind}")
        made = clock.now()
        assert migrate_raw(schema, list(MIGRATIONS[:1]), made) == 1
        with raw(schema) as conn:
            for statement in V1_ROWS:
                conn.execute(statement)
        clock.advance(60)
        if kind == "sync":
            with PostgresJournal(PG_URL, schema=schema, pool_size=2, clock=clock) as journal:
                check_upgraded_v1_rows(journal, clock)
        else:
            loop = LoopThread()
            opened = AsyncPostgresJournal(PG_URL, schema=schema, pool_size=2, clock=clock)
            try:
                face = AsyncJournalOnALoop(loop.run(opened.open()), loop)
                check_upgraded_v1_rows(cast(Journal, face), clock)
            finally:
                loop.run(opened.close())
                loop.stop()
        upgraded = made + timedelta(seconds=60)
        assert applied(schema) == [(1, made), (2, upgraded), (3, upgraded)]

    def test_a_version_1_schema_with_one_charge_paying_two_orders_stays_at_version_1(
        self, open_journal_in: OpenJournal, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        schema = schemas.name("v1_same_txn")
        migrate_raw(schema, list(MIGRATIONS[:1]), clock.now())
        with raw(schema) as conn:
            for statement in (*V1_ROWS, *V1_SAME_TXN_ROWS):
                conn.execute(statement)
        with pytest.raises(ConfigurationError, match=r"schema migration 2 \(") as caught:
            open_journal_in("v1_same_txn")
        message = str(caught.value)
        assert "stays at version 1" in message
        assert "payments_one_per_provider_txn" in message
        assert [version for version, _ in applied(schema)] == [1]
        with raw(schema) as conn:
            assert scalar(conn, "SELECT COUNT(*) FROM payments") == 2
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = 'attempts'",
                (schema,),
            ).fetchall()
        assert ("recheck_until",) not in columns

    def test_versions_must_count_from_one(self, schemas: PgSchemas, clock: ManualClock) -> None:
        with pytest.raises(ValueError, match="expected 1"):
            migrate_raw(schemas.name("gaps"), [Migration(2, "x", ())], clock.now())


# --------------------------------------------------------------------------------------
# Workers racing
# --------------------------------------------------------------------------------------


class TestWorkers:
    def test_eight_workers_racing_one_order_start_one_attempt(
        self, open_journal_in: OpenJournal
    ) -> None:
        # One journal (one pool) per worker, as eight backend instances would have.
        workers = [open_journal_in("race", pool_size=1) for _ in range(8)]
        results = race([partial(begin, w, make_order(), lease=600) for w in workers])
        started = [r for r in results if isinstance(r, Attempt)]
        refused = [r for r in results if isinstance(r, AttemptInFlight)]
        assert len(started) == 1
        assert len(refused) == 7
        assert {r.attempt_id for r in refused} == {started[0].attempt_id}
        assert ids(workers[0].attempts_for_order("ord-1")) == [started[0].attempt_id]

    def test_a_transaction_on_an_order_holds_that_order_and_no_other(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        begin(journal, make_order("ord-1"), lease=0)
        begin(journal, make_order("ord-2"), lease=0)
        clock.advance(1)
        done: Queue[Attempt | Exception] = Queue()

        def start_ord_1() -> None:
            try:
                done.put(begin(journal, make_order("ord-1")))
            except Exception as exc:  # handed to the test to assert on
                done.put(exc)

        with raw(journal.schema) as conn, raw(journal.schema) as watcher, conn.transaction():
            # Another worker holds ord-1 and, before committing, starts an attempt of its own.
            conn.execute("SELECT 1 FROM orders WHERE order_id = 'ord-1' FOR UPDATE")
            holder = scalar(conn, "SELECT pg_backend_pid()")
            waiting = threading.Thread(target=start_ord_1)
            waiting.start()
            # Poll (bounded) until PostgreSQL shows the journal waiting on that lock; from
            # a connection outside the transaction, whose view of activity is frozen.
            blocked = 0
            for _ in range(1000):
                blocked = scalar(
                    watcher,
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    holder,
                )
                if blocked or not waiting.is_alive():
                    break
                threading.Event().wait(0.01)
            assert blocked == 1
            # Other orders are not held up.
            assert begin(journal, make_order("ord-2")).attempt_id == "ord-2_2"
            assert waiting.is_alive()
            conn.execute(_RAW_ATTEMPT.format(id="ord-1_9", order="ord-1"))
        waiting.join(timeout=30)
        # The waiter decided on what the holder committed: an attempt in flight.
        outcome = done.get_nowait()
        assert isinstance(outcome, AttemptInFlight)
        assert outcome.attempt_id == "ord-1_9"

    def test_two_processes_racing_record_success_make_one_payment(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        order_ = make_order()
        attempts = [begin(journal, order_, lease=0), begin(journal, order_, lease=0)]
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(2)
        results = ctx.Queue()
        processes = [
            ctx.Process(
                target=record_success_in_a_process,
                args=(
                    journal.schema,
                    a.attempt_id,
                    make_payment(a, order_, clock).model_dump_json(),
                    barrier,
                    results,
                ),
            )
            for a in attempts
        ]
        for process in processes:
            process.start()
        got = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0, 0]
        payments = [Payment.model_validate_json(text, strict=False) for _, text in got]
        assert payments[0] == payments[1]
        paid = journal.payment_for_order(order_.order_id)
        assert paid == payments[0]
        states = {a.attempt_id: a.state for a in journal.attempts_for_order(order_.order_id)}
        assert sorted(states.values()) == [AttemptState.SUCCEEDED, AttemptState.SUPERSEDED]
        assert states[paid.attempt_id] is AttemptState.SUCCEEDED
        assert journal.counts().payments == 1

    def test_recover_in_many_workers_claims_everything_once(
        self, open_journal_in: OpenJournal, clock: ManualClock
    ) -> None:
        setup = open_journal_in("recover")
        for n in range(5):
            attempt = begin(setup, make_order(f"ord-{n}"), lease=10)
            if n % 2:
                setup.update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN)
        _, _, payment = paid_order(setup, clock, make_order("ord-paid"))
        for n in range(3):
            setup.add_refund(make_refund(payment, clock, refund_id=f"rf-{n}", amount=1_000))
        clock.advance(10)
        unresolved = ids(setup.unresolved_attempts())
        owed = ids(setup.refunds_owed())
        assert (len(unresolved), len(owed)) == (5, 3)

        def recover_pass(worker: PostgresJournal) -> list[str]:
            claimed = [a.attempt_id for a in worker.unresolved_attempts()]
            mine = [a for a in claimed if worker.renew_lease(a, 60)]
            refunds = [r.refund_id for r in worker.refunds_owed()]
            return mine + [r for r in refunds if worker.renew_refund_lease(r, 60)]

        workers = [open_journal_in("recover", pool_size=1) for _ in range(6)]
        results = race([partial(recover_pass, w) for w in workers])
        claims = [c for r in results if isinstance(r, list) for c in r]
        assert sorted(claims) == sorted(unresolved + owed)
        # While the leases run, another pass finds nothing left to take.
        assert recover_pass(setup) == []
        # Unknown attempts stay listed (and refunds owed) until they are settled.
        assert [a.state for a in setup.unresolved_attempts()] == [AttemptState.UNKNOWN] * 2
        assert setup.counts().refunds_owed == 3

    def test_many_threads_claiming_one_refund_give_it_to_one(
        self, open_journal_in: OpenJournal, clock: ManualClock
    ) -> None:
        workers = [open_journal_in("claims", pool_size=2) for _ in range(4)]
        _, _, payment = paid_order(workers[0], clock)
        workers[0].add_refund(make_refund(payment, clock, refund_id="rf-1", amount=500))
        results = race([partial(workers[i % 4].renew_refund_lease, "rf-1", 60) for i in range(12)])
        assert sorted(results, key=bool) == [False] * 11 + [True]

    def test_counts_agree_across_workers(
        self, open_journal_in: OpenJournal, clock: ManualClock
    ) -> None:
        writer, reader = open_journal_in("counts"), open_journal_in("counts")
        assert reader.counts() == JournalCounts(0, 0, 0, 0, 0)
        _, _, payment = paid_order(writer, clock)
        unknown = begin(writer, make_order("ord-2"))
        writer.update_attempt(unknown.attempt_id, state=AttemptState.UNKNOWN)
        stale = begin(writer, make_order("ord-3"), lease=5)
        writer.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=2_500))
        assert reader.counts() == JournalCounts(3, 1, 1, 1, 2_500)
        clock.advance(5)  # ord-3's lease runs out: now it needs recovery too
        assert reader.counts() == JournalCounts(3, 1, 2, 1, 2_500)
        assert ids(reader.unresolved_attempts()) == [unknown.attempt_id, stale.attempt_id]

    def test_a_transaction_recorded_by_another_order_meanwhile_is_refused(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        mine = make_order("ord-2")
        begin(journal, make_order("ord-1"))
        attempt = begin(journal, mine)
        payment = make_payment(attempt, mine, clock, txn="T-shared")
        with raw(journal.schema) as conn, raw(journal.schema) as watcher:
            with conn.transaction():
                # Another worker records T-shared for ord-1 and has not committed yet: the
                # journal's own check cannot see it, the unique index makes it wait.
                conn.execute(
                    "INSERT INTO payments (payment_id, order_id, attempt_id, provider, method,"
                    " provider_txn_id, amount, refunded, currency, status, approved_at,"
                    " attempts, created_at, updated_at) VALUES ('pay-other', 'ord-1', 'ord-1_1',"
                    " 'tosspayments', 'card', 'T-shared', 10000, 0, 'KRW', 'paid', now(), 1,"
                    " now(), now())"
                )
                outcome = in_a_thread(partial(journal.record_success, attempt.attempt_id, payment))
                wait_until_blocked(watcher, scalar(conn, "SELECT pg_backend_pid()"), outcome)
            refused = outcome.result()
        assert isinstance(refused, TxnAlreadyRecorded)
        assert refused.payment.payment_id == "pay-other"
        assert "order ord-1" in str(refused)
        assert journal.payment_for_order("ord-2") is None
        assert journal.get_attempt(attempt.attempt_id) == attempt

    def test_a_request_key_taken_meanwhile_returns_that_refund(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        other = begin(journal, make_order("ord-2"))
        refund = make_refund(payment, clock, refund_id="rf-mine", amount=1_000).model_copy(
            update={"request_key": "req-1"}
        )
        with raw(journal.schema) as conn, raw(journal.schema) as watcher:
            with conn.transaction():
                # A compensation of another order's attempt naming the payment takes the
                # key, uncommitted: it holds no lock on ord-1, only the index entry.
                conn.execute(
                    "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
                    " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                    " idempotency_key, state, tries, created_at, updated_at, request_key)"
                    " VALUES ('rf-other', %s, 'ord-2', %s, 'tosspayments', 'T-9', 500, 'KRW',"
                    " 500, 'stray charge', 'compensation', 'k-other', 'owed', 0, now(), now(),"
                    " 'req-1')",
                    (payment.payment_id, other.attempt_id),
                )
                outcome = in_a_thread(partial(journal.add_refund, refund))
                wait_until_blocked(watcher, scalar(conn, "SELECT pg_backend_pid()"), outcome)
            got = outcome.result()
        assert isinstance(got, Refund)
        assert got.refund_id == "rf-other"
        assert journal.get_refund("rf-mine") is None

    def test_a_key_taken_by_another_order_meanwhile_is_invalid(
        self, journal: PostgresJournal
    ) -> None:
        begin(journal, make_order("ord-1"), key="shared")
        with pytest.raises(InvalidRequest, match="already used this idempotency key"):
            begin(journal, make_order("ord-2"), key="shared")
        assert journal.get_order("ord-2") is None


class _Outcome:
    """What a call run in a thread of its own returned or raised."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._done: Queue[Any] = Queue()
        self.thread = threading.Thread(target=self._run, args=(call,))
        self.thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._done.put(call())
        except Exception as exc:  # handed to the test to assert on
            self._done.put(exc)

    def result(self) -> Any:
        self.thread.join(timeout=30)
        return self._done.get_nowait()


def in_a_thread(call: Callable[[], Any]) -> _Outcome:
    return _Outcome(call)


def wait_until_blocked(watcher: psycopg.Connection[Any], holder: int, outcome: _Outcome) -> None:
    """Poll (bounded) until PostgreSQL shows a session waiting on ``holder``'s locks; from a
    connection outside the holder's transaction, whose view of activity is frozen."""
    for _ in range(1000):
        blocked = scalar(
            watcher,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            holder,
        )
        if blocked or not outcome.thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert blocked == 1, "the journal never waited on the other transaction"


def record_success_in_a_process(
    schema: str, attempt_id: str, payment_json: str, barrier: Any, results: Any
) -> None:
    """Run in a process of its own (spawned): open the journal, wait for the other, record."""
    with PostgresJournal(PG_URL, schema=schema, pool_size=1, clock=ManualClock()) as journal:
        payment = Payment.model_validate_json(payment_json, strict=False)
        barrier.wait(timeout=60)
        stored = journal.record_success(attempt_id, payment)
        results.put((attempt_id, stored.model_dump_json()))


# --------------------------------------------------------------------------------------
# The async journal
# --------------------------------------------------------------------------------------


class TestAsyncJournal:
    def test_it_offers_every_journal_method_as_a_coroutine(self) -> None:
        members = [
            name
            for name in dir(Journal)
            if not name.startswith("_") and callable(getattr(Journal, name))
        ]
        assert "begin_attempt" in members
        for name in members:
            sync, coro = getattr(PostgresJournal, name), getattr(AsyncPostgresJournal, name)
            assert not inspect.iscoroutinefunction(sync), name
            assert inspect.iscoroutinefunction(coro), name
            expected = inspect.signature(getattr(Journal, name))
            assert list(inspect.signature(sync).parameters) == list(expected.parameters)
            assert list(inspect.signature(coro).parameters) == list(expected.parameters)

    def test_it_works_in_async_with_and_shares_the_schema(
        self, journal: PostgresJournal, clock: ManualClock
    ) -> None:
        url = f"{PG_URL}?schema={journal.schema}&pool_size=2"

        async def main() -> tuple[Payment, list[Attempt | BaseException]]:
            async with AsyncPostgresJournal.from_url(url, clock=clock) as aj:
                assert repr(aj).startswith("AsyncPostgresJournal('postgresql://")
                assert (aj.schema, aj.pool_size) == (journal.schema, 2)
                order_ = make_order()
                attempt = await aj.begin_attempt(
                    order_,
                    provider="kakaopay",
                    method=Method.KAKAOPAY,
                    operation="charge",
                    idempotency_key="k-1",
                    lease_seconds=30,
                )
                payment = await aj.record_success(
                    attempt.attempt_id, make_payment(attempt, order_, clock)
                )
                racing = await asyncio.gather(
                    *(
                        aj.begin_attempt(
                            make_order("ord-2"),
                            provider="kakaopay",
                            method=Method.KAKAOPAY,
                            operation="charge",
                            idempotency_key=f"k-2-{n}",
                            lease_seconds=30,
                        )
                        for n in range(5)
                    ),
                    return_exceptions=True,
                )
            await aj.close()  # closing again is harmless
            return payment, racing

        payment, racing = asyncio.run(main())
        assert journal.payment_for_order("ord-1") == payment
        assert sum(isinstance(r, Attempt) for r in racing) == 1
        assert sum(isinstance(r, AttemptInFlight) for r in racing) == 4

    def test_an_unopened_async_journal_says_so(self, clock: ManualClock) -> None:
        aj = AsyncPostgresJournal(PG_URL, schema="payfallback_never_opened", clock=clock)
        with pytest.raises(ConfigurationError, match=r"is not open: await journal.open\(\)"):
            asyncio.run(aj.get_order("ord-1"))
        asyncio.run(aj.close())

    def test_an_unreachable_server_is_a_configuration_error(self) -> None:
        aj = AsyncPostgresJournal("postgresql://postgres@127.0.0.1:1/test")
        with pytest.raises(ConfigurationError, match="cannot open journal"):
            asyncio.run(aj.open())


# --------------------------------------------------------------------------------------
# Two Routers, one journal
# --------------------------------------------------------------------------------------


class _GatedTransport(httpx.BaseTransport):
    """The bank behind a gate: the first charge waits until the test opens it."""

    def __init__(self, bank: FakeBank) -> None:
        self._inner = mock_transport(bank)
        self.charge_sent = threading.Event()
        self.open = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/charges" and not self.charge_sent.is_set():
            self.charge_sent.set()
            assert self.open.wait(timeout=30), "the test never opened the gate"
        return self._inner.handle_request(request)


MakeRouter = Callable[[PostgresJournal, httpx.BaseTransport, Callable[[float], None]], Router]


@pytest.fixture
def make_router(clock: ManualClock) -> Iterator[MakeRouter]:
    """``make(journal, transport, sleep)``: a Router over the fake bank ``toss``."""
    clients: list[httpx.Client] = []

    def make(
        journal: PostgresJournal, transport: httpx.BaseTransport, sleep: Callable[[float], None]
    ) -> Router:
        client = httpx.Client(transport=transport)
        clients.append(client)
        return Router(
            [FakeProvider("toss")],
            client=client,
            sleep=sleep,
            journal=journal,
            clock=clock,
            retry=RetryPolicy(deadline=60.0),
        )

    yield make
    for client in clients:
        client.close()


class TestTwoRouters:
    def test_two_routers_racing_one_order_charge_once_and_agree(
        self, open_journal_in: OpenJournal, make_router: MakeRouter, clock: ManualClock
    ) -> None:
        bank = FakeBank("toss", clock=clock)
        finished = [threading.Event(), threading.Event()]

        def wait_for_the_other(me: int, seconds: float) -> None:
            # A router that finds the order in flight sleeps before looking again: here it
            # waits for the other router's charge to finish instead of guessing a time.
            finished[1 - me].wait(timeout=30)

        routers = [
            make_router(
                open_journal_in("shop"), mock_transport(bank), partial(wait_for_the_other, i)
            )
            for i in range(2)
        ]

        def charge(me: int) -> Payment:
            try:
                return routers[me].charge(order(), [card("toss")])
            finally:
                finished[me].set()

        try:
            results = race([partial(charge, 0), partial(charge, 1)])
        finally:
            for router in routers:
                router.close()
        assert all(isinstance(r, Payment) for r in results), results
        assert results[0] == results[1]
        assert len(bank.charges_for_order("ORD-1")) == 1
        assert double_charges(bank) == {}
        journal = open_journal_in("shop")
        assert [a.state for a in journal.attempts_for_order("ORD-1")] == [AttemptState.SUCCEEDED]

    def test_a_router_waits_for_the_charge_another_instance_has_in_flight(
        self, open_journal_in: OpenJournal, make_router: MakeRouter, clock: ManualClock
    ) -> None:
        bank = FakeBank("toss", clock=clock)
        gate = _GatedTransport(bank)
        first_done = threading.Event()
        slept: list[float] = []

        def second_sleeps(seconds: float) -> None:
            # The second router found the first one's attempt in flight: let the first
            # one's charge through, then look again once it has finished.
            slept.append(seconds)
            gate.open.set()
            first_done.wait(timeout=30)

        first = make_router(open_journal_in("shop"), gate, clock.sleep)
        second = make_router(open_journal_in("shop"), mock_transport(bank), second_sleeps)
        outcome: Queue[Payment | Exception] = Queue()

        def charge_first() -> None:
            try:
                outcome.put(first.charge(order(), [card("toss")]))
            except Exception as exc:  # handed to the test to assert on
                outcome.put(exc)
            finally:
                first_done.set()

        thread = threading.Thread(target=charge_first)
        try:
            thread.start()
            assert gate.charge_sent.wait(timeout=30)
            waited = second.charge(order(), [card("toss")])
            thread.join(timeout=30)
        finally:
            gate.open.set()
            first.close()
            second.close()
        paid = outcome.get_nowait()
        assert isinstance(paid, Payment)
        assert waited == paid
        assert slept  # the second one did wait for the first, it did not send
        assert bank.requests["charge"] == 1
        assert len(bank.charges_for_order("ORD-1")) == 1


# --------------------------------------------------------------------------------------
# Pooled connections: checked when idle, not between calls moments apart
# --------------------------------------------------------------------------------------


def _named(schemas: PgSchemas, store: str, query: str = "") -> tuple[str, str]:
    """A journal URL whose connections carry an application name of their own, and it."""
    name = f"pf-alive-{uuid.uuid4().hex[:8]}"
    return name, f"{PG_URL}?schema={schemas.name(store)}&application_name={name}{query}"


def _drop_backends(application_name: str) -> int:
    """What a server restart does to a pool: every backend of this application ends."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


class TestPooledConnections:
    """A pooled connection is checked (a round trip) before it is handed out only if it has
    been idle longer than CHECK_BYPASS_S: under load, a check per journal call would be two
    more round trips per charge for connections that answered milliseconds before. So a
    connection the server dropped while idle is replaced before a payment uses it; one
    dropped within the window fails the next call (no write happens: the statement never
    reaches a server), as it would between any check and the call that follows it."""

    def test_a_connection_dropped_while_idle_is_replaced(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        name, url = _named(schemas, "alive")
        with PostgresJournal.from_url(url, clock=clock) as journal:
            begin(journal, make_order("idle-1"))
            assert _drop_backends(name) >= 1
            threading.Event().wait(CHECK_BYPASS_S + 0.2)  # idle past the window
            assert begin(journal, make_order("idle-2")).attempt_id == "idle-2_1"
            assert [o for o in ("idle-1", "idle-2") if journal.get_order(o)] == [
                "idle-1",
                "idle-2",
            ]

    def test_a_connection_that_just_answered_goes_out_unchecked(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        name, url = _named(schemas, "busy", "&pool_size=1")
        with PostgresJournal.from_url(url, clock=clock) as journal:
            begin(journal, make_order("busy-1"))
            assert _drop_backends(name) == 1
            with pytest.raises(psycopg.OperationalError):
                begin(journal, make_order("busy-2"))
            # The pool let the broken connection go: the next call has a new one.
            assert begin(journal, make_order("busy-3")).attempt_id == "busy-3_1"
            assert journal.get_order("busy-2") is None

    def test_the_async_journal_replaces_an_idle_connection_too(
        self, schemas: PgSchemas, clock: ManualClock
    ) -> None:
        name, url = _named(schemas, "aalive", "&pool_size=1")

        async def main() -> tuple[str, bool]:
            async with AsyncPostgresJournal.from_url(url, clock=clock) as aj:
                await aj.get_order("warm")
                assert _drop_backends(name) == 1
                await asyncio.sleep(CHECK_BYPASS_S + 0.2)
                attempt = await aj.begin_attempt(
                    make_order("aidle-1"),
                    provider="toss",
                    method=Method.CARD,
                    operation="charge",
                    idempotency_key="k-aidle",
                    lease_seconds=30,
                )
                return attempt.attempt_id, (await aj.get_order("aidle-1")) is not None

        assert asyncio.run(main()) == ("aidle-1_1", True)
