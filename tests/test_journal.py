"""The journal contract, run against every backend, then what only SQLite has.

``TestJournalContract`` and ``test_random_operations_keep_the_invariants`` hold the
behaviour every :class:`~payfallback.journal.Journal` must show. They reach journals only
through the ``journal_factory`` fixture: that fixture is the one place that knows which
backends exist, so a new backend joins every contract test by adding one param there.

The backends are SQLite, PostgreSQL (``PostgresJournal``) and the async PostgreSQL journal
(``AsyncPostgresJournal``, each call run on an event loop of its own). The PostgreSQL ones
talk to the real server named by ``PAYFALLBACK_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each test in schemas of its own that are
dropped at teardown. What only PostgreSQL has is in ``test_journal_postgres.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from payfallback._clock import Clock, ManualClock
from payfallback.errors import ConfigurationError, InvalidRequest, PayfallbackError
from payfallback.journal import (
    AttemptInFlight,
    AttemptsOpen,
    Journal,
    JournalCounts,
    OrderAlreadyPaid,
    TxnAlreadyRecorded,
)
from payfallback.journal import sqlite as sqlite_journal
from payfallback.journal._checks import attempt_is_open
from payfallback.journal._migrations import LATEST_VERSION, MIGRATIONS, Migration, migrate
from payfallback.journal.postgres import AsyncPostgresJournal, PostgresJournal
from payfallback.journal.sqlite import CACHE_KIB, WAL_BOUND_PAGES, SQLiteJournal
from payfallback.models import (
    MAX_AMOUNT,
    Attempt,
    AttemptState,
    CardKind,
    CheckoutSession,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Platform,
    Receipt,
    Refund,
    RefundReceipt,
    RefundState,
)

T = TypeVar("T")

# --------------------------------------------------------------------------------------
# Backends: the only place that knows which journals exist.
# --------------------------------------------------------------------------------------


@dataclass
class JournalFactory:
    """Opens journals of one backend.

    ``open(name, clock)`` opens the store called ``name``, empty the first time; opening the
    same name again, before or after closing the first, reaches the same data, as another
    process would. Everything opened is closed at teardown.
    """

    backend: str
    opener: Callable[[str, Clock], Journal]
    opened: list[Journal] = field(default_factory=list)

    def open(self, name: str, clock: Clock) -> Journal:
        journal = self.opener(name, clock)
        self.opened.append(journal)
        return journal


#: The PostgreSQL server the PostgreSQL journals are tested against (trust auth in CI).
PG_URL = os.environ.get("PAYFALLBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class PgSchemas:
    """Names schemas for one test, unique to it, and drops exactly those at teardown."""

    def __init__(self) -> None:
        self.prefix = f"pf_test_{uuid.uuid4().hex[:12]}"
        self.made: set[str] = set()

    def name(self, store: str) -> str:
        schema = f"{self.prefix}_{re.sub(r'[^a-z0-9_]', '_', store.lower())}"[:63]
        self.made.add(schema)
        return schema

    def drop(self) -> None:
        if not self.made:
            return
        names = psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, sorted(self.made)))
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(names))


class LoopThread:
    """An event loop running in a thread of its own, for driving async code from sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class AsyncJournalOnALoop:
    """An ``AsyncPostgresJournal`` behind the synchronous ``Journal`` face: every call is
    awaited on one event loop, so threads racing through it race as coroutines do."""

    def __init__(self, journal: AsyncPostgresJournal, loop: LoopThread) -> None:
        self._journal = journal
        self._loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._journal, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(method(*args, **kwargs))

        return call


@pytest.fixture(params=["sqlite", "postgres", "postgres-async"])
def journal_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalFactory]:
    backend = cast(str, request.param)
    schemas = PgSchemas()
    loop: LoopThread | None = None
    if backend == "sqlite":

        def opener(name: str, clock: Clock) -> Journal:
            return SQLiteJournal(tmp_path / f"{name}.sqlite3", clock=clock)

    elif backend == "postgres":

        def opener(name: str, clock: Clock) -> Journal:
            return PostgresJournal(PG_URL, schema=schemas.name(name), pool_size=4, clock=clock)

    elif backend == "postgres-async":
        loop = LoopThread()

        def opener(name: str, clock: Clock) -> Journal:
            assert loop is not None
            journal = AsyncPostgresJournal(
                PG_URL, schema=schemas.name(name), pool_size=4, clock=clock
            )
            return cast(Journal, AsyncJournalOnALoop(loop.run(journal.open()), loop))

    else:  # pragma: no cover - a new param without its opener
        raise AssertionError(f"no opener for backend {backend!r}")
    factory = JournalFactory(backend, opener)
    try:
        yield factory
    finally:
        for journal in factory.opened:
            journal.close()
        if loop is not None:
            loop.stop()
        schemas.drop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def journal(journal_factory: JournalFactory, clock: ManualClock) -> Journal:
    return journal_factory.open("main", clock)


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def make_order(order_id: str = "ord-1", amount: int = 10_000, currency: str = "KRW") -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount, currency=currency), name="coffee")


def begin(
    journal: Journal,
    order: Order,
    *,
    provider: str = "tosspayments",
    lease: float = 30.0,
    key: str | None = None,
) -> Attempt:
    return journal.begin_attempt(
        order,
        provider=provider,
        method=Method.CARD,
        operation="charge",
        idempotency_key=key or uuid.uuid4().hex,
        lease_seconds=lease,
    )


def make_payment(
    attempt: Attempt,
    order: Order,
    clock: Clock,
    *,
    txn: str | None = None,
    payment_id: str | None = None,
) -> Payment:
    return Payment(
        payment_id=payment_id or f"pay_{attempt.attempt_id}",
        order_id=order.order_id,
        provider=attempt.provider,
        method=attempt.method,
        provider_txn_id=txn or f"txn-{attempt.attempt_id}",
        attempt_id=attempt.attempt_id,
        amount=order.amount,
        refunded=Money(amount=0, currency=order.amount.currency),
        status=PaymentStatus.PAID,
        approved_at=clock.now(),
        attempts=attempt.seq,
    )


def make_refund(
    payment: Payment, clock: Clock, *, refund_id: str, amount: int, key: str | None = None
) -> Refund:
    return Refund(
        refund_id=refund_id,
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        attempt_id=payment.attempt_id,
        provider=payment.provider,
        provider_txn_id=payment.provider_txn_id,
        amount=Money(amount=amount, currency=payment.amount.currency),
        expected_remaining=payment.refundable.amount,
        reason="customer asked",
        idempotency_key=key or uuid.uuid4().hex,
        state=RefundState.OWED,
        created_at=clock.now(),
        updated_at=clock.now(),
    )


def make_compensation(
    attempt: Attempt, order: Order, clock: Clock, *, refund_id: str | None = None
) -> Refund:
    return Refund(
        refund_id=refund_id or f"comp_{attempt.attempt_id}",
        payment_id=None,
        order_id=order.order_id,
        attempt_id=attempt.attempt_id,
        provider=attempt.provider,
        provider_txn_id=attempt.provider_txn_id or f"txn-{attempt.attempt_id}",
        amount=order.amount,
        expected_remaining=order.amount.amount,
        reason="charged after another attempt became the payment",
        kind="compensation",
        idempotency_key=uuid.uuid4().hex,
        state=RefundState.OWED,
        created_at=clock.now(),
        updated_at=clock.now(),
    )


def paid_order(
    journal: Journal, clock: Clock, order: Order | None = None
) -> tuple[Order, Attempt, Payment]:
    order = order or make_order()
    attempt = begin(journal, order)
    payment = journal.record_success(attempt.attempt_id, make_payment(attempt, order, clock))
    return order, attempt, payment


def superseded_attempt(journal: Journal, clock: ManualClock) -> tuple[Order, Attempt, Payment]:
    """An order paid by attempt 2 whose attempt 1 also charged, late."""
    order = make_order()
    first = begin(journal, order, provider="kakaopay", lease=10)
    clock.advance(10)
    second = begin(journal, order)
    payment = journal.record_success(second.attempt_id, make_payment(second, order, clock))
    late = make_payment(first, order, clock, txn="T-late")
    assert journal.record_success(first.attempt_id, late) == payment
    attempt = journal.get_attempt(first.attempt_id)
    assert attempt is not None
    return order, attempt, payment


def race(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Run ``calls`` on as many threads, released together; each one's result or error."""
    barrier = threading.Barrier(len(calls))
    results: list[T | Exception | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=60)
        try:
            results[index] = calls[index]()
        except Exception as exc:  # collected for the test to assert on
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing call never returned"
    return cast(list[T | Exception], results)


def ids_of(payments: Sequence[Payment]) -> list[str]:
    return [p.payment_id for p in payments]


def ids(items: Sequence[Attempt] | Sequence[Refund]) -> list[str]:
    return [item.attempt_id if isinstance(item, Attempt) else item.refund_id for item in items]


# --------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------


def redirected_beside_a_charge(
    journal: Journal, clock: ManualClock
) -> tuple[Order, Attempt, Attempt]:
    """An order with a redirected checkout whose lease ran out and a charge in flight: the
    order, the checkout's attempt and the charge's."""
    order = make_order()
    checkout = begin(journal, order, provider="kakaopay", lease=10)
    journal.update_attempt(checkout.attempt_id, state=AttemptState.REDIRECTED)
    other = begin(journal, order, lease=60)
    clock.advance(10)
    return order, checkout, other


class TestJournalContract:
    def test_is_a_journal(self, journal: Journal) -> None:
        assert isinstance(journal, Journal)

    def test_a_closed_journal_refuses_every_call_with_a_typed_error(self, journal: Journal) -> None:
        """What a closed journal is asked (a read, a write, on the SQLite journal a batch)
        raises ``ConfigurationError`` naming it, not the driver's own error."""
        begin(journal, make_order("ord-open"))
        journal.close()
        with pytest.raises(ConfigurationError, match="is closed"):
            journal.get_order("ord-open")
        with pytest.raises(ConfigurationError, match="is closed"):
            begin(journal, make_order("ord-late"))
        if isinstance(journal, SQLiteJournal):
            with pytest.raises(ConfigurationError, match="is closed"):
                journal.run_batch([lambda j: j.get_order("ord-open")], wait=True)

    # -- begin_attempt ------------------------------------------------------------------

    def test_begin_attempt_journals_the_order_and_a_pending_attempt(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = journal.begin_attempt(
            order,
            provider="kakaopay",
            method=Method.KAKAOPAY,
            operation="ready",
            idempotency_key="key-1",
            lease_seconds=30,
        )
        assert attempt.attempt_id == "ord-1_1"
        assert attempt.seq == 1
        assert (attempt.order_id, attempt.provider, attempt.method) == (
            "ord-1",
            "kakaopay",
            Method.KAKAOPAY,
        )
        assert (attempt.operation, attempt.idempotency_key) == ("ready", "key-1")
        assert attempt.state is AttemptState.PENDING
        assert attempt.created_at == attempt.updated_at == clock.now()
        assert journal.get_order("ord-1") == order
        assert journal.get_attempt("ord-1_1") == attempt
        assert list(journal.attempts_for_order("ord-1")) == [attempt]

    def test_attempts_are_numbered_from_one_per_order(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        for _ in range(3):
            attempt = begin(journal, order)
            journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        other = begin(journal, make_order("ord-2"))
        attempts = journal.attempts_for_order("ord-1")
        assert [a.seq for a in attempts] == [1, 2, 3]
        assert ids(attempts) == ["ord-1_1", "ord-1_2", "ord-1_3"]
        assert other.attempt_id == "ord-2_1"

    def test_a_paid_order_refuses_a_new_attempt(self, journal: Journal, clock: ManualClock) -> None:
        order, _, payment = paid_order(journal, clock)
        with pytest.raises(OrderAlreadyPaid) as caught:
            begin(journal, order)
        assert caught.value.payment == payment
        assert len(journal.attempts_for_order(order.order_id)) == 1

    def test_a_live_pending_attempt_blocks_another(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        first = begin(journal, order, lease=30)
        clock.advance(29)
        with pytest.raises(AttemptInFlight) as caught:
            begin(journal, order, provider="nicepay")
        assert caught.value.attempt_id == first.attempt_id
        assert caught.value.order_id == order.order_id
        assert ids(journal.attempts_for_order(order.order_id)) == [first.attempt_id]

    def test_an_expired_lease_lets_the_next_attempt_start(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        first = begin(journal, order, lease=30)
        clock.advance(30)  # the lease ends at created + 30 s, exactly now
        second = begin(journal, order, provider="nicepay")
        assert second.seq == 2
        assert ids(journal.unresolved_attempts()) == [first.attempt_id]

    def test_settle_first_refuses_while_attempts_of_unknown_outcome_are_open(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        unknown = begin(journal, order)
        journal.update_attempt(unknown.attempt_id, state=AttemptState.UNKNOWN, sent=True)
        crashed = begin(journal, order, lease=30)  # its worker dies mid-request
        clock.advance(31)
        with pytest.raises(AttemptsOpen) as caught:
            journal.begin_attempt(
                order,
                provider="nicepay",
                method=Method.CARD,
                operation="charge",
                idempotency_key="key-settle",
                lease_seconds=30,
                settle_first=True,
            )
        assert caught.value.attempt_ids == (unknown.attempt_id, crashed.attempt_id)
        assert caught.value.order_id == order.order_id
        # Nothing written: the key is still free, and no third attempt exists.
        assert ids(journal.attempts_for_order(order.order_id)) == [
            unknown.attempt_id,
            crashed.attempt_id,
        ]
        # Once they are settled (or when the caller chose to go on), the attempt begins.
        journal.update_attempt(unknown.attempt_id, state=AttemptState.FAILED)
        journal.update_attempt(crashed.attempt_id, state=AttemptState.FAILED)
        third = journal.begin_attempt(
            order,
            provider="nicepay",
            method=Method.CARD,
            operation="charge",
            idempotency_key="key-settle",
            lease_seconds=30,
            settle_first=True,
        )
        assert third.seq == 3
        assert journal.get_attempt(third.attempt_id) == third

    @pytest.mark.parametrize(
        "case",
        [
            "unknown",
            "failed",
            "pending-lease-over",
            "ready-no-checkout",
            "ready-approving",
            "redirected",
        ],
    )
    def test_the_open_attempt_rule_is_the_same_in_sql_and_in_python(
        self, journal: Journal, clock: ManualClock, case: str
    ) -> None:
        # OPEN_ATTEMPTS_SQL (the journal's refusal) and attempt_is_open (the core's settling)
        # must never disagree about an attempt.
        order = make_order()
        ready = case.startswith("ready") or case == "redirected"
        attempt = journal.begin_attempt(
            order,
            provider="kakaopay",
            method=Method.KAKAOPAY if ready else Method.CARD,
            operation="ready" if ready else "charge",
            idempotency_key="key-case",
            lease_seconds=30,
        )
        if case in ("ready-approving", "redirected"):
            journal.save_checkout(
                CheckoutSession(
                    session_id=attempt.attempt_id,
                    order_id=order.order_id,
                    provider="kakaopay",
                    method=Method.KAKAOPAY,
                    provider_txn_id="T-ready",
                    redirect_urls={Platform.PC: "https://pay.example/pc"},
                    expires_at=clock.now() + timedelta(minutes=15),
                )
            )
        if case == "ready-approving":
            assert journal.renew_lease(attempt.attempt_id, 30)
            journal.update_attempt(attempt.attempt_id, state=AttemptState.PENDING)
        if case == "unknown":
            journal.update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN)
        if case == "failed":
            journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        clock.advance(31)  # every lease is over
        held = journal.get_attempt(attempt.attempt_id)
        assert held is not None
        saved = journal.get_checkout(attempt.attempt_id) is not None
        in_python = attempt_is_open(held, clock.now(), checkout_saved=saved)
        try:
            journal.begin_attempt(
                order,
                provider="tosspayments",
                method=Method.CARD,
                operation="charge",
                idempotency_key="key-next",
                lease_seconds=30,
                settle_first=True,
            )
            in_sql = False
        except AttemptsOpen as exc:
            in_sql = exc.attempt_ids == (attempt.attempt_id,)
        assert in_python == in_sql
        assert in_python is (case in ("unknown", "pending-lease-over", "ready-approving"))

    def test_settle_first_passes_over_a_checkout_being_started(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        # A ``ready`` attempt with no checkout saved moves no money, even after its lease.
        order = make_order()
        journal.begin_attempt(
            order,
            provider="kakaopay",
            method=Method.KAKAOPAY,
            operation="ready",
            idempotency_key="key-ready",
            lease_seconds=30,
        )
        clock.advance(31)
        attempt = journal.begin_attempt(
            order,
            provider="tosspayments",
            method=Method.CARD,
            operation="charge",
            idempotency_key="key-charge",
            lease_seconds=30,
            settle_first=True,
        )
        assert attempt.seq == 2

    def test_begin_attempt_returns_what_it_wrote(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        first = begin(journal, order)
        journal.update_attempt(first.attempt_id, state=AttemptState.FAILED)
        second = begin(journal, order, provider="nicepay")
        for attempt in (first, second):
            stored = journal.get_attempt(attempt.attempt_id)
            assert stored is not None
            assert stored.model_dump(exclude={"state", "updated_at", "lease_until"}) == (
                attempt.model_dump(exclude={"state", "updated_at", "lease_until"})
            )
        assert journal.get_attempt(second.attempt_id) == second

    def test_an_order_journaled_with_another_tax_free_part_is_refused(
        self, journal: Journal
    ) -> None:
        order = make_order()
        begin(journal, order)
        changed = order.model_copy(update={"tax_free_amount": 1_000})
        with pytest.raises(InvalidRequest, match="tax-free part"):
            begin(journal, changed)
        assert len(journal.attempts_for_order(order.order_id)) == 1

    @pytest.mark.parametrize(
        "state", [AttemptState.FAILED, AttemptState.UNKNOWN, AttemptState.REDIRECTED]
    )
    def test_only_pending_attempts_are_in_flight(
        self, journal: Journal, state: AttemptState
    ) -> None:
        order = make_order()
        first = begin(journal, order, lease=600)
        journal.update_attempt(first.attempt_id, state=state)
        assert begin(journal, order).seq == 2

    @pytest.mark.parametrize(
        ("amount", "currency", "given"),
        [(12_000, "KRW", "12,000 KRW"), (10_000, "USD", "100.00 USD")],
    )
    def test_an_order_id_never_changes_amount(
        self, journal: Journal, amount: int, currency: str, given: str
    ) -> None:
        first = begin(journal, make_order(amount=10_000), lease=0)
        with pytest.raises(InvalidRequest) as caught:
            begin(journal, make_order(amount=amount, currency=currency))
        message = str(caught.value)
        assert "ord-1" in message
        assert "10,000 KRW" in message
        assert given in message
        assert ids(journal.attempts_for_order("ord-1")) == [first.attempt_id]
        assert journal.get_order("ord-1") == make_order(amount=10_000)

    def test_an_idempotency_key_is_used_by_one_attempt(self, journal: Journal) -> None:
        begin(journal, make_order(), key="shared", lease=0)
        with pytest.raises(InvalidRequest, match="ord-1_1 already used this idempotency key"):
            begin(journal, make_order(), key="shared")
        # Another provider has its own key space.
        assert begin(journal, make_order(), key="shared", provider="nicepay").seq == 2

    @pytest.mark.parametrize("lease", [-1.0, float("nan"), float("inf")])
    def test_a_lease_is_a_finite_number_of_seconds(self, journal: Journal, lease: float) -> None:
        with pytest.raises(InvalidRequest, match="lease_seconds"):
            begin(journal, make_order(), lease=lease)
        assert journal.get_order("ord-1") is None

    # -- update_attempt -----------------------------------------------------------------

    def test_update_attempt_never_forgets_what_it_learned(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        attempt = begin(journal, make_order())
        clock.advance(5)
        unknown = journal.update_attempt(
            attempt.attempt_id,
            state=AttemptState.UNKNOWN,
            provider_txn_id="T-1",
            error_code="read_timeout",
            error_message="no answer within 10 s",
        )
        assert unknown.updated_at == clock.now() != unknown.created_at
        failed = journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        assert failed.state is AttemptState.FAILED
        assert failed.provider_txn_id == "T-1"
        assert (failed.error_code, failed.error_message) == (
            "read_timeout",
            "no answer within 10 s",
        )
        assert journal.get_attempt(attempt.attempt_id) == failed

    def test_success_is_recorded_only_with_its_payment(self, journal: Journal) -> None:
        attempt = begin(journal, make_order())
        with pytest.raises(InvalidRequest, match="record_success"):
            journal.update_attempt(attempt.attempt_id, state=AttemptState.SUCCEEDED)
        assert journal.payment_for_order("ord-1") is None
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert got.state is AttemptState.PENDING

    def test_a_succeeded_attempt_never_moves(self, journal: Journal, clock: ManualClock) -> None:
        _, attempt, _ = paid_order(journal, clock)
        with pytest.raises(InvalidRequest, match="is the payment of order"):
            journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert got.state is AttemptState.SUCCEEDED

    def test_an_attempt_goes_back_to_pending_only_if_none_other_is_in_flight(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order, checkout, other = redirected_beside_a_charge(journal, clock)
        assert journal.renew_lease(checkout.attempt_id, 60) is True
        with pytest.raises(AttemptInFlight) as caught:
            journal.update_attempt(checkout.attempt_id, state=AttemptState.PENDING)
        assert caught.value.attempt_id == other.attempt_id
        journal.update_attempt(other.attempt_id, state=AttemptState.FAILED)
        approving = journal.update_attempt(checkout.attempt_id, state=AttemptState.PENDING)
        assert approving.state is AttemptState.PENDING
        with pytest.raises(AttemptInFlight):
            begin(journal, order)

    def test_a_claim_to_send_moves_the_attempt_to_pending_in_the_same_write(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        checkout = begin(journal, order, provider="kakaopay", lease=600)
        journal.update_attempt(
            checkout.attempt_id, state=AttemptState.REDIRECTED, provider_txn_id="T-ready"
        )
        clock.advance(1)
        assert journal.renew_lease(checkout.attempt_id, 60, pending=True) is True
        got = journal.get_attempt(checkout.attempt_id)
        assert got is not None
        assert got.state is AttemptState.PENDING
        assert got.lease_until == clock.now() + timedelta(seconds=60)
        assert got.updated_at == clock.now()
        assert got.provider_txn_id == "T-ready"  # the rest is kept
        assert ids(journal.in_flight_attempts()) == [checkout.attempt_id]
        # Held now, by this claim: neither kind of claim takes it again.
        assert journal.renew_lease(checkout.attempt_id, 60, pending=True) is False
        assert journal.renew_lease(checkout.attempt_id, 60) is False
        with pytest.raises(AttemptInFlight):
            begin(journal, order)

    def test_a_claim_to_send_is_refused_while_another_attempt_is_in_flight(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, checkout, other = redirected_beside_a_charge(journal, clock)
        before = journal.get_attempt(checkout.attempt_id)
        with pytest.raises(AttemptInFlight) as caught:
            journal.renew_lease(checkout.attempt_id, 60, pending=True)
        assert caught.value.attempt_id == other.attempt_id
        # Nothing written: still redirected, its lease not taken.
        assert journal.get_attempt(checkout.attempt_id) == before
        # Held or settled, an attempt is simply not claimed, in flight elsewhere or not.
        assert journal.renew_lease(other.attempt_id, 60, pending=True) is False
        settled = begin(journal, make_order("ord-2"), lease=10)
        journal.update_attempt(settled.attempt_id, state=AttemptState.FAILED)
        begin(journal, make_order("ord-2"), lease=600)  # in flight
        assert journal.renew_lease(settled.attempt_id, 60, pending=True) is False
        journal.update_attempt(other.attempt_id, state=AttemptState.FAILED)
        assert journal.renew_lease(checkout.attempt_id, 60, pending=True) is True

    def test_a_claim_to_send_clears_a_recheck_and_never_takes_a_settled_attempt(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order, lease=10)
        journal.update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN, sent=True)
        assert journal.renew_lease(attempt.attempt_id, 30, pending=True) is True
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert (got.state, got.recheck_until) == (AttemptState.PENDING, None)
        assert got.sent_at is not None  # kept: it was sent before
        journal.update_attempt(
            attempt.attempt_id,
            state=AttemptState.FAILED,
            recheck_until=clock.now() + timedelta(hours=1),
        )
        clock.advance(60)
        assert journal.renew_lease(attempt.attempt_id, 30, pending=True) is False
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert got.state is AttemptState.FAILED
        assert got.recheck_until is not None

    def test_changing_an_unknown_attempt_is_refused(self, journal: Journal) -> None:
        with pytest.raises(InvalidRequest, match="no attempt 'nope_1'"):
            journal.update_attempt("nope_1", state=AttemptState.FAILED)
        with pytest.raises(InvalidRequest, match="no attempt 'nope_1'"):
            journal.renew_lease("nope_1", 30)
        assert journal.get_attempt("nope_1") is None

    # -- record_success -----------------------------------------------------------------

    def test_record_success_stores_the_payment_and_marks_the_attempt(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order)
        payment = make_payment(attempt, order, clock, txn="T-42")
        stored = journal.record_success(attempt.attempt_id, payment)
        assert stored == payment
        assert journal.get_payment(payment.payment_id) == payment
        assert journal.payment_for_order(order.order_id) == payment
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert (got.state, got.provider_txn_id) == (AttemptState.SUCCEEDED, "T-42")

    def test_a_payment_comes_back_with_its_approval_time_in_utc(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        """Recorded with an approval time in another zone (a provider's KST), the payment
        comes back, and is read back, at the same instant in UTC; one already in UTC comes
        back as it went in."""
        kst = timezone(timedelta(hours=9))
        for n, zone in enumerate((kst, UTC)):
            order = make_order(f"O-tz-{n}")
            attempt = begin(journal, order)
            approved = datetime(2022, 10, 15, 17, 31, 2, 123456, tzinfo=zone)
            payment = make_payment(attempt, order, clock, txn=f"T-tz-{n}").model_copy(
                update={"approved_at": approved}
            )
            stored = journal.record_success(attempt.attempt_id, payment)
            assert stored.approved_at == approved
            assert stored.approved_at.utcoffset() == timedelta(0)
            assert stored == payment.model_copy(update={"approved_at": approved.astimezone(UTC)})
            assert journal.get_payment(payment.payment_id) == stored

    def test_a_payment_keeps_its_receipt_and_the_providers_answer(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order)
        receipt = Receipt(
            approval_number="00000000",
            issuer="신한",
            issuer_code="41",
            card_number="43301234****123*",
            installment_months=3,
            interest_free=False,
            card_kind=CardKind.CHECK,
            receipt_url="https://dashboard.tosspayments.com/receipt/redirection?transactionId=x",
        )
        answer = {"status": "DONE", "card": {"approveNo": "00000000"}, "totalAmount": 10_000}
        payment = make_payment(attempt, order, clock, txn="T-r").model_copy(
            update={"receipt": receipt, "provider_answer": answer}
        )
        assert journal.record_success(attempt.attempt_id, payment) == payment
        stored = journal.get_payment(payment.payment_id)
        assert stored is not None
        assert stored.receipt == receipt
        assert stored.provider_answer == answer

    def test_a_settled_refund_keeps_what_the_provider_said_about_it(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        refund = journal.add_refund(make_refund(payment, clock, refund_id="rf-r", amount=4_000))
        receipt = RefundReceipt(cancel_id="tx-cancel-1", cancelled_at=clock.now(), remaining=6_000)
        settled = journal.update_refund(
            refund.refund_id,
            state=RefundState.SUCCEEDED,
            receipt=receipt,
            provider_answer={"cancels": [{"transactionKey": "tx-cancel-1"}]},
        )
        assert settled.receipt == receipt
        assert settled.provider_answer == {"cancels": [{"transactionKey": "tx-cancel-1"}]}
        assert journal.get_refund(refund.refund_id) == settled

    def test_a_days_payments_and_settled_refunds_are_listed_for_export(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        day = clock.now()
        first = make_order("day-1")
        attempt = begin(journal, first)
        paid = journal.record_success(attempt.attempt_id, make_payment(attempt, first, clock))
        clock.advance(3600)
        second = make_order("day-2")
        attempt2 = begin(journal, second)
        paid2 = journal.record_success(attempt2.attempt_id, make_payment(attempt2, second, clock))
        owed = journal.add_refund(make_refund(paid, clock, refund_id="rf-day-1", amount=1_000))
        settled = journal.add_refund(make_refund(paid2, clock, refund_id="rf-day-2", amount=2_000))
        settled = journal.update_refund(settled.refund_id, state=RefundState.SUCCEEDED)
        later = day + timedelta(days=1)
        assert ids_of(journal.payments_between(day, later)) == [paid.payment_id, paid2.payment_id]
        assert ids_of(journal.payments_between(day + timedelta(seconds=1), later)) == [
            paid2.payment_id
        ]
        assert journal.payments_between(later, later + timedelta(days=1)) == []
        # Only money that moved: the owed refund is not in it yet.
        assert [r.refund_id for r in journal.refunds_between(day, later)] == [settled.refund_id]
        assert owed.state is RefundState.OWED

    def test_record_success_twice_returns_the_same_payment(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order, attempt, payment = paid_order(journal, clock)
        again = journal.record_success(attempt.attempt_id, make_payment(attempt, order, clock))
        assert again == payment
        assert journal.counts().payments == 1

    def test_a_second_success_is_superseded_and_returns_the_payment(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order, first, payment = superseded_attempt(journal, clock)
        assert payment.attempt_id == "ord-1_2"
        assert first.state is AttemptState.SUPERSEDED
        assert first.provider_txn_id == "T-late"  # what its compensation must cancel
        assert journal.payment_for_order(order.order_id) == payment
        states = [a.state for a in journal.attempts_for_order(order.order_id)]
        assert states == [AttemptState.SUPERSEDED, AttemptState.SUCCEEDED]

    def test_record_success_refuses_a_payment_that_does_not_fit(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order)
        good = make_payment(attempt, order, clock)
        wrong_amount = good.model_copy(update={"amount": Money(amount=9_000)})
        with pytest.raises(
            InvalidRequest, match="is for 9,000 KRW, but order ord-1 was journaled for 10,000 KRW"
        ):
            journal.record_success(attempt.attempt_id, wrong_amount)
        wrong_attempt = good.model_copy(update={"attempt_id": "ord-1_7"})
        with pytest.raises(InvalidRequest, match="names attempt ord-1_7"):
            journal.record_success(attempt.attempt_id, wrong_attempt)
        refunded = good.model_copy(
            update={"refunded": Money(amount=1), "status": PaymentStatus.PARTIALLY_REFUNDED}
        )
        with pytest.raises(InvalidRequest, match="recorded as new"):
            journal.record_success(attempt.attempt_id, refunded)
        assert journal.payment_for_order(order.order_id) is None

    def test_a_payment_id_belongs_to_one_order(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        other = make_order("ord-2")
        attempt = begin(journal, other)
        clash = make_payment(attempt, other, clock, payment_id=payment.payment_id)
        with pytest.raises(InvalidRequest, match="already the payment of order ord-1"):
            journal.record_success(attempt.attempt_id, clash)
        assert journal.payment_for_order("ord-2") is None

    # -- leases and recovery ------------------------------------------------------------

    def test_renew_lease_claims_only_an_expired_lease(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        attempt = begin(journal, make_order(), lease=30)
        assert journal.renew_lease(attempt.attempt_id, 60) is False  # its sender holds it
        clock.advance(30)
        assert journal.renew_lease(attempt.attempt_id, 60) is True
        assert journal.renew_lease(attempt.attempt_id, 60) is False  # held by the claimer
        clock.advance(59)
        assert journal.renew_lease(attempt.attempt_id, 60) is False
        clock.advance(1)
        assert journal.renew_lease(attempt.attempt_id, 60) is True

    def test_leaving_pending_ends_the_lease(self, journal: Journal, clock: ManualClock) -> None:
        # A redirected checkout must be claimable the moment the customer returns.
        attempt = begin(journal, make_order(), lease=600)
        journal.update_attempt(attempt.attempt_id, state=AttemptState.REDIRECTED)
        assert journal.renew_lease(attempt.attempt_id, 60) is True
        journal.update_attempt(attempt.attempt_id, state=AttemptState.PENDING)
        assert journal.renew_lease(attempt.attempt_id, 60) is False

    def test_a_claimed_pending_attempt_is_in_flight_again(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order, lease=10)
        clock.advance(10)
        assert ids(journal.unresolved_attempts()) == [attempt.attempt_id]
        assert journal.renew_lease(attempt.attempt_id, 60) is True
        assert journal.unresolved_attempts() == []
        with pytest.raises(AttemptInFlight):
            begin(journal, order)

    @pytest.mark.parametrize("state", [AttemptState.FAILED, AttemptState.SUCCEEDED])
    def test_settled_attempts_are_never_claimed(
        self, journal: Journal, clock: ManualClock, state: AttemptState
    ) -> None:
        order = make_order()
        attempt = begin(journal, order, lease=10)
        if state is AttemptState.SUCCEEDED:
            journal.record_success(attempt.attempt_id, make_payment(attempt, order, clock))
        else:
            journal.update_attempt(attempt.attempt_id, state=state)
        clock.advance(10)
        assert journal.renew_lease(attempt.attempt_id, 60) is False

    def test_unresolved_attempts_are_the_ones_recovery_must_settle(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        # Settled or still being worked on: never listed.
        failed = begin(journal, make_order("ord-failed"))
        journal.update_attempt(failed.attempt_id, state=AttemptState.FAILED)
        paid_order(journal, clock, make_order("ord-paid"))
        redirected = begin(journal, make_order("ord-redirected"))
        journal.update_attempt(redirected.attempt_id, state=AttemptState.REDIRECTED)
        live = begin(journal, make_order("ord-live"), lease=600)
        # To settle, oldest first.
        clock.advance(1)
        unknown = begin(journal, make_order("ord-unknown"), lease=600)
        journal.update_attempt(unknown.attempt_id, state=AttemptState.UNKNOWN)
        clock.advance(1)
        stale = begin(journal, make_order("ord-stale"), lease=5)
        clock.advance(1)
        order, superseded, _ = superseded_attempt(journal, clock)
        clock.advance(5)

        assert ids(journal.unresolved_attempts()) == [
            unknown.attempt_id,
            stale.attempt_id,
            superseded.attempt_id,
        ]
        assert live.attempt_id not in ids(journal.unresolved_attempts())
        # Journaling the compensation (in any state) settles the superseded attempt.
        comp = journal.add_refund(make_compensation(superseded, order, clock))
        journal.update_refund(comp.refund_id, state=RefundState.FAILED)
        assert ids(journal.unresolved_attempts()) == [unknown.attempt_id, stale.attempt_id]
        assert journal.counts().unresolved_attempts == 2

    # -- checkouts ----------------------------------------------------------------------

    def test_a_checkout_round_trips_and_redirects_its_attempt(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        attempt = begin(journal, make_order(), provider="kakaopay")
        session = CheckoutSession(
            session_id=attempt.attempt_id,
            order_id="ord-1",
            provider="kakaopay",
            method=Method.KAKAOPAY,
            provider_txn_id="T-ready",
            redirect_urls={Platform.PC: "https://pay.example/pc", Platform.APP: "app://pay"},
            client_params={"widget": "on"},
            expires_at=clock.now() + timedelta(minutes=15),
            fallback_from={"naverpay": "breaker open"},
        )
        journal.save_checkout(session)
        assert journal.get_checkout(attempt.attempt_id) == session
        got = journal.get_attempt(attempt.attempt_id)
        assert got is not None
        assert (got.state, got.provider_txn_id) == (AttemptState.REDIRECTED, "T-ready")
        assert journal.get_checkout("ord-1_9") is None

        refreshed = session.model_copy(update={"expires_at": clock.now() + timedelta(hours=1)})
        journal.save_checkout(refreshed)
        assert journal.get_checkout(attempt.attempt_id) == refreshed

    def test_a_checkouts_state_is_read_whole(self, journal: Journal, clock: ManualClock) -> None:
        order = make_order()
        attempt = begin(journal, order, provider="kakaopay")
        session = CheckoutSession(
            session_id=attempt.attempt_id,
            order_id=order.order_id,
            provider="kakaopay",
            method=Method.KAKAOPAY,
            provider_txn_id="T-ready",
            redirect_urls={Platform.PC: "https://pay.example/pc"},
            expires_at=clock.now() + timedelta(minutes=15),
        )
        journal.save_checkout(session)
        state = journal.checkout_state(attempt.attempt_id)
        assert state is not None
        assert (state.session, state.order, state.payment) == (session, order, None)
        assert state.attempt == journal.get_attempt(attempt.attempt_id)
        assert state.attempt.state is AttemptState.REDIRECTED
        assert journal.checkout_state("ord-1_9") is None
        # Paid (here by another attempt of the order): the payment comes with it.
        journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        other = begin(journal, order)
        paid = journal.record_success(other.attempt_id, make_payment(other, order, clock))
        again = journal.checkout_state(attempt.attempt_id)
        assert again is not None
        assert again.payment == paid

    def test_a_checkout_needs_its_attempt_open(self, journal: Journal) -> None:
        attempt = begin(journal, make_order(), provider="kakaopay")
        journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED)
        session = CheckoutSession(
            session_id=attempt.attempt_id,
            order_id="ord-1",
            provider="kakaopay",
            method=Method.KAKAOPAY,
            provider_txn_id=None,
            redirect_urls={Platform.PC: "https://pay.example/pc"},
        )
        with pytest.raises(InvalidRequest, match="is failed"):
            journal.save_checkout(session)
        assert journal.get_checkout(attempt.attempt_id) is None

    # -- refunds ------------------------------------------------------------------------

    def test_add_refund_journals_it_owed_and_is_idempotent(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        refund = make_refund(payment, clock, refund_id="rf-1", amount=4_000)
        assert journal.add_refund(refund) == refund
        replay = make_refund(payment, clock, refund_id="rf-1", amount=1_000)
        assert journal.add_refund(replay) == refund
        assert ids(journal.refunds_owed()) == ["rf-1"]
        assert journal.get_refund("rf-1") == refund
        assert list(journal.refunds_for_order(payment.order_id)) == [refund]
        assert journal.get_payment(payment.payment_id) == payment  # nothing moved yet

    def test_a_refund_must_fit_what_is_left(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=3_000))
        journal.update_refund("rf-1", state=RefundState.SUCCEEDED)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-2", amount=2_000))
        with pytest.raises(InvalidRequest) as caught:
            journal.add_refund(make_refund(payment, clock, refund_id="rf-3", amount=5_001))
        message = str(caught.value)
        assert "5,000 KRW can still be refunded" in message
        assert "10,000 KRW paid, 3,000 KRW refunded, 2,000 KRW owed" in message
        assert journal.get_refund("rf-3") is None
        journal.add_refund(make_refund(payment, clock, refund_id="rf-4", amount=5_000))
        assert ids(journal.refunds_owed()) == ["rf-2", "rf-4"]

    def test_a_refund_names_its_payment(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        refund = make_refund(payment, clock, refund_id="rf-1", amount=1_000)
        with pytest.raises(InvalidRequest, match="names no payment"):
            journal.add_refund(refund.model_copy(update={"payment_id": None}))
        with pytest.raises(InvalidRequest, match="kind must be"):
            journal.add_refund(refund.model_copy(update={"kind": "chargeback"}))
        with pytest.raises(InvalidRequest, match="journaled as owed"):
            journal.add_refund(refund.model_copy(update={"state": RefundState.SUCCEEDED}))
        with pytest.raises(InvalidRequest, match="greater than zero"):
            journal.add_refund(refund.model_copy(update={"amount": Money(amount=0)}))
        assert journal.refunds_owed() == []

    def test_refund_success_moves_the_payment(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=4_000))
        journal.add_refund(make_refund(payment, clock, refund_id="rf-2", amount=6_000))

        done = journal.update_refund("rf-1", state=RefundState.SUCCEEDED)
        assert (done.state, done.tries) == (RefundState.SUCCEEDED, 1)
        partly = journal.get_payment(payment.payment_id)
        assert partly is not None
        assert partly.refunded == Money(amount=4_000)
        assert partly.status is PaymentStatus.PARTIALLY_REFUNDED

        journal.update_refund("rf-2", state=RefundState.SUCCEEDED)
        journal.update_refund("rf-2", state=RefundState.SUCCEEDED)  # reported twice
        whole = journal.get_payment(payment.payment_id)
        assert whole is not None
        assert whole.refunded == Money(amount=10_000)
        assert whole.status is PaymentStatus.REFUNDED
        assert journal.refunds_owed() == []

    def test_an_owed_refund_counts_its_tries(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=1_000))
        journal.update_refund("rf-1", state=RefundState.OWED, error_code="provider_down")
        clock.advance(60)
        again = journal.update_refund("rf-1", state=RefundState.OWED)
        assert (again.state, again.tries, again.error_code) == (
            RefundState.OWED,
            2,
            "provider_down",
        )
        assert again.updated_at == clock.now()
        assert ids(journal.refunds_owed()) == ["rf-1"]

    def test_a_settled_refund_stays_settled(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-ok", amount=1_000))
        journal.add_refund(make_refund(payment, clock, refund_id="rf-no", amount=1_000))
        journal.update_refund("rf-ok", state=RefundState.SUCCEEDED)
        journal.update_refund("rf-no", state=RefundState.FAILED, error_code="not_cancellable")
        with pytest.raises(InvalidRequest, match="already succeeded"):
            journal.update_refund("rf-ok", state=RefundState.OWED)
        with pytest.raises(InvalidRequest, match="already failed"):
            journal.update_refund("rf-no", state=RefundState.SUCCEEDED)
        settled = journal.get_payment(payment.payment_id)
        assert settled is not None
        assert settled.refunded == Money(amount=1_000)
        # A failed refund no longer holds its amount back.
        journal.add_refund(make_refund(payment, clock, refund_id="rf-3", amount=9_000))

    def test_a_compensation_does_not_touch_the_payment(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order, superseded, payment = superseded_attempt(journal, clock)
        # The payment itself is refunded in full; the stray charge is still given back.
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=10_000))
        comp = make_compensation(superseded, order, clock)
        assert journal.add_refund(comp) == comp
        assert comp.provider_txn_id == "T-late"
        journal.update_refund(comp.refund_id, state=RefundState.SUCCEEDED)
        untouched = journal.get_payment(payment.payment_id)
        assert untouched is not None
        assert untouched.refunded == Money(amount=0)
        assert ids(journal.refunds_owed()) == ["rf-1"]

    def test_refunds_owed_are_oldest_first(self, journal: Journal, clock: ManualClock) -> None:
        _, _, payment = paid_order(journal, clock)
        for n in (1, 2, 3):
            journal.add_refund(make_refund(payment, clock, refund_id=f"rf-{n}", amount=1_000))
            clock.advance(1)
        journal.update_refund("rf-2", state=RefundState.SUCCEEDED)
        assert ids(journal.refunds_owed()) == ["rf-1", "rf-3"]

    def test_renew_refund_lease_claims_only_a_free_owed_refund(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=1_000))
        assert journal.renew_refund_lease("rf-1", 30) is True
        assert journal.renew_refund_lease("rf-1", 30) is False
        clock.advance(30)
        assert journal.renew_refund_lease("rf-1", 30) is True
        journal.update_refund("rf-1", state=RefundState.SUCCEEDED)
        clock.advance(30)
        assert journal.renew_refund_lease("rf-1", 30) is False
        with pytest.raises(InvalidRequest, match="no refund 'rf-9'"):
            journal.renew_refund_lease("rf-9", 30)

    def test_counts(self, journal: Journal, clock: ManualClock) -> None:
        assert journal.counts() == JournalCounts(0, 0, 0, 0, 0)
        _, _, payment = paid_order(journal, clock)
        unknown = begin(journal, make_order("ord-2"))
        journal.update_attempt(unknown.attempt_id, state=AttemptState.UNKNOWN)
        journal.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=2_500))
        journal.add_refund(make_refund(payment, clock, refund_id="rf-2", amount=1_500))
        assert journal.counts() == JournalCounts(
            orders=2,
            payments=1,
            unresolved_attempts=1,
            refunds_owed=2,
            refunds_owed_amount=4_000,
        )

    # -- sending, rechecking, in flight (schema version 2) ------------------------------

    def test_an_attempt_shows_its_lease_only_while_pending(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        attempt = begin(journal, order, provider="kakaopay", lease=30)
        assert attempt.lease_until == clock.now() + timedelta(seconds=30)
        assert (attempt.sent_at, attempt.recheck_until) == (None, None)
        redirected = journal.update_attempt(attempt.attempt_id, state=AttemptState.REDIRECTED)
        assert redirected.lease_until is None
        clock.advance(1)
        assert journal.renew_lease(attempt.attempt_id, 60) is True
        claimed = journal.get_attempt(attempt.attempt_id)
        assert claimed is not None
        assert claimed.lease_until is None  # a recovery claim, not a request being sent
        approving = journal.update_attempt(attempt.attempt_id, state=AttemptState.PENDING)
        assert approving.lease_until == clock.now() + timedelta(seconds=60)
        assert journal.get_attempt(attempt.attempt_id) == approving

    def test_sent_stamps_the_last_moment_a_request_may_have_left(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        attempt = begin(journal, make_order())
        clock.advance(2)
        first = journal.update_attempt(attempt.attempt_id, state=AttemptState.PENDING, sent=True)
        assert first.sent_at == clock.now()
        clock.advance(3)
        unknown = journal.update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN)
        assert unknown.sent_at == first.sent_at  # not sent again: the stamp stays
        clock.advance(4)
        again = journal.update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN, sent=True)
        assert again.sent_at == clock.now()
        assert journal.get_attempt(attempt.attempt_id) == again

    def test_a_failed_attempt_is_rechecked_until_its_window_ends(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        first = begin(journal, make_order("ord-1"))
        clock.advance(1)
        second = begin(journal, make_order("ord-2"))
        plain = begin(journal, make_order("ord-3"))
        journal.update_attempt(plain.attempt_id, state=AttemptState.FAILED)
        # The later one is failed first: the list is oldest first all the same.
        later = clock.now() + timedelta(minutes=30)
        got = journal.update_attempt(
            second.attempt_id, state=AttemptState.FAILED, sent=True, recheck_until=later
        )
        assert (got.state, got.recheck_until, got.sent_at) == (
            AttemptState.FAILED,
            later,
            clock.now(),
        )
        sooner = clock.now() + timedelta(minutes=10)
        journal.update_attempt(first.attempt_id, state=AttemptState.FAILED, recheck_until=sooner)
        assert ids(journal.attempts_to_recheck()) == [first.attempt_id, second.attempt_id]
        # Nothing for recovery to settle: a recheck is not an unresolved attempt.
        assert journal.unresolved_attempts() == []
        assert journal.counts().unresolved_attempts == 0
        # Failed again without a window keeps the one it has.
        kept = journal.update_attempt(first.attempt_id, state=AttemptState.FAILED)
        assert kept.recheck_until == sooner
        clock.advance(600)  # exactly the end of the first window: over
        assert ids(journal.attempts_to_recheck()) == [second.attempt_id]
        clock.advance(1200)
        assert journal.attempts_to_recheck() == []
        still = journal.get_attempt(second.attempt_id)
        assert still is not None
        assert still.recheck_until == later  # kept as a record, no longer listed

    def test_a_naive_recheck_time_is_utc(self, journal: Journal, clock: ManualClock) -> None:
        attempt = begin(journal, make_order())
        until = clock.now() + timedelta(minutes=5)
        got = journal.update_attempt(
            attempt.attempt_id,
            state=AttemptState.FAILED,
            recheck_until=until.astimezone(UTC).replace(tzinfo=None),
        )
        assert got.recheck_until == until
        assert ids(journal.attempts_to_recheck()) == [attempt.attempt_id]

    @pytest.mark.parametrize(
        "state",
        [
            AttemptState.PENDING,
            AttemptState.REDIRECTED,
            AttemptState.UNKNOWN,
            AttemptState.SUPERSEDED,
        ],
    )
    def test_only_a_failed_attempt_takes_a_recheck_window(
        self, journal: Journal, clock: ManualClock, state: AttemptState
    ) -> None:
        attempt = begin(journal, make_order())
        with pytest.raises(InvalidRequest, match="recheck_until is kept only for an attempt"):
            journal.update_attempt(
                attempt.attempt_id, state=state, recheck_until=clock.now() + timedelta(hours=1)
            )
        assert journal.get_attempt(attempt.attempt_id) == attempt

    @pytest.mark.parametrize("state", [AttemptState.SUPERSEDED, AttemptState.UNKNOWN])
    def test_a_failed_attempt_can_still_turn_out_charged(
        self, journal: Journal, clock: ManualClock, state: AttemptState
    ) -> None:
        # Failed on the provider's word, then its charge shows up late: superseded (to be
        # given back) or unknown (to be looked up). Either way recovery owns it again.
        attempt = begin(journal, make_order())
        journal.update_attempt(
            attempt.attempt_id,
            state=AttemptState.FAILED,
            recheck_until=clock.now() + timedelta(hours=1),
        )
        moved = journal.update_attempt(attempt.attempt_id, state=state, provider_txn_id="T-late")
        assert (moved.state, moved.provider_txn_id, moved.recheck_until) == (state, "T-late", None)
        assert journal.attempts_to_recheck() == []
        assert ids(journal.unresolved_attempts()) == [attempt.attempt_id]
        if state is AttemptState.SUPERSEDED:
            order = make_order()
            journal.add_refund(make_compensation(moved, order, clock))
            assert journal.unresolved_attempts() == []

    def test_a_late_charge_on_a_failed_attempt_ends_its_recheck(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order = make_order()
        first = begin(journal, order, lease=0)
        window = clock.now() + timedelta(hours=1)
        journal.update_attempt(first.attempt_id, state=AttemptState.FAILED, recheck_until=window)
        second = begin(journal, make_order("ord-2"), lease=0)
        journal.update_attempt(second.attempt_id, state=AttemptState.FAILED, recheck_until=window)
        # The first one's charge was found and is the order's payment.
        payment = journal.record_success(first.attempt_id, make_payment(first, order, clock))
        # The second order was paid by another attempt meanwhile; its late charge is not.
        _, _, paid = paid_order(journal, clock, make_order("ord-2"))
        late = make_payment(second, make_order("ord-2"), clock, txn="T-late")
        assert journal.record_success(second.attempt_id, late) == paid
        assert [(a.state, a.recheck_until) for a in journal.attempts_for_order("ord-1")] == [
            (AttemptState.SUCCEEDED, None)
        ]
        superseded = journal.get_attempt(second.attempt_id)
        assert superseded is not None
        assert (superseded.state, superseded.recheck_until) == (AttemptState.SUPERSEDED, None)
        assert journal.attempts_to_recheck() == []
        assert journal.payment_for_order("ord-1") == payment

    def test_in_flight_attempts_are_the_live_ones_that_may_move_money(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        charging = begin(journal, make_order("ord-charge"), lease=60)
        clock.advance(1)
        # Starting a checkout moves no money.
        starting = journal.begin_attempt(
            make_order("ord-ready"),
            provider="kakaopay",
            method=Method.KAKAOPAY,
            operation="ready",
            idempotency_key="k-ready",
            lease_seconds=60,
        )
        approving = journal.begin_attempt(
            make_order("ord-approve"),
            provider="kakaopay",
            method=Method.KAKAOPAY,
            operation="ready",
            idempotency_key="k-approve",
            lease_seconds=60,
        )
        journal.save_checkout(
            CheckoutSession(
                session_id=approving.attempt_id,
                order_id="ord-approve",
                provider="kakaopay",
                method=Method.KAKAOPAY,
                provider_txn_id="T-ready",
                redirect_urls={Platform.PC: "https://pay.example/pc"},
            )
        )
        waiting = begin(journal, make_order("ord-waiting"), provider="kakaopay", lease=60)
        journal.update_attempt(waiting.attempt_id, state=AttemptState.REDIRECTED)
        unknown = begin(journal, make_order("ord-unknown"), lease=60)
        journal.update_attempt(unknown.attempt_id, state=AttemptState.UNKNOWN)
        stale = begin(journal, make_order("ord-stale"), lease=5)
        assert ids(journal.in_flight_attempts()) == [charging.attempt_id, stale.attempt_id]
        # The customer approved: the approval is being sent, and money may move.
        journal.renew_lease(approving.attempt_id, 60)
        journal.update_attempt(approving.attempt_id, state=AttemptState.PENDING)
        assert ids(journal.in_flight_attempts()) == [
            charging.attempt_id,
            approving.attempt_id,
            stale.attempt_id,
        ]
        clock.advance(5)  # the stale one's lease runs out: recovery's, not in flight
        assert ids(journal.in_flight_attempts()) == [charging.attempt_id, approving.attempt_id]
        assert stale.attempt_id in ids(journal.unresolved_attempts())
        assert starting.attempt_id not in ids(journal.in_flight_attempts())
        clock.advance(55)
        assert journal.in_flight_attempts() == []
        # Claimed by recovery and sent again: in flight once more.
        assert journal.renew_lease(stale.attempt_id, 30) is True
        assert ids(journal.in_flight_attempts()) == [stale.attempt_id]

    # -- one payment per provider transaction -------------------------------------------

    def test_a_provider_transaction_pays_one_order(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        other = make_order("ord-2")
        attempt = begin(journal, other)
        window = clock.now() + timedelta(hours=1)
        journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED, recheck_until=window)
        before = journal.get_attempt(attempt.attempt_id)
        same_txn = make_payment(attempt, other, clock, txn=payment.provider_txn_id)
        with pytest.raises(TxnAlreadyRecorded) as caught:
            journal.record_success(attempt.attempt_id, same_txn)
        assert isinstance(caught.value, PayfallbackError)
        assert caught.value.payment == payment
        assert caught.value.attempt_id == attempt.attempt_id
        assert "order ord-1" in str(caught.value)
        # Nothing was written: no payment, the attempt as it was.
        assert journal.payment_for_order("ord-2") is None
        assert journal.get_attempt(attempt.attempt_id) == before
        assert journal.counts().payments == 1
        # The same transaction id at another provider is another transaction.
        elsewhere = begin(journal, make_order("ord-3"), provider="nicepay")
        stored = journal.record_success(
            elsewhere.attempt_id,
            make_payment(elsewhere, make_order("ord-3"), clock, txn=payment.provider_txn_id),
        )
        assert stored.provider_txn_id == payment.provider_txn_id

    def test_recording_the_same_attempt_again_still_returns_its_payment(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        order, attempt, payment = paid_order(journal, clock)
        same = make_payment(attempt, order, clock, txn=payment.provider_txn_id)
        assert journal.record_success(attempt.attempt_id, same) == payment

    def test_racing_orders_cannot_both_record_one_transaction(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(2)]
        orders = [make_order(f"ord-{n}") for n in range(6)]
        attempts = [begin(journals[0], o) for o in orders]
        results = race(
            [
                partial(
                    journals[n % 2].record_success,
                    a.attempt_id,
                    make_payment(a, orders[n], clock, txn="T-shared"),
                )
                for n, a in enumerate(attempts)
            ]
        )
        payments = [r for r in results if isinstance(r, Payment)]
        refused = [r for r in results if isinstance(r, TxnAlreadyRecorded)]
        assert (len(payments), len(refused)) == (1, 5)
        assert all(r.payment == payments[0] for r in refused)
        assert journals[1].counts().payments == 1

    def test_a_returning_checkout_and_new_charges_racing_for_one_order_send_one_request(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(3)]
        order = make_order()
        checkout = begin(journals[0], order, provider="kakaopay", lease=10)
        journals[0].update_attempt(checkout.attempt_id, state=AttemptState.REDIRECTED)
        clock.advance(10)
        claims = [
            partial(journals[n % 3].renew_lease, checkout.attempt_id, 60, pending=True)
            for n in range(6)
        ]
        charges = [
            partial(begin, journals[n % 3], order, key=f"charge-key-{n}", lease=60)
            for n in range(6)
        ]
        results = race([c for pair in zip(claims, charges, strict=True) for c in pair])
        # Whichever came first is the order's one request in flight; every other claim and
        # charge found it there (a claim of the held checkout is simply not claimed).
        won = [r for r in results if r is True or isinstance(r, Attempt)]
        assert len(won) == 1, results
        assert all(r is False or isinstance(r, AttemptInFlight) for r in results if r not in won)
        assert len(journals[1].in_flight_attempts()) == 1

    # -- refund request keys and tax-free amounts ---------------------------------------

    def test_a_refund_keeps_its_tax_free_part_and_request_key(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        refund = make_refund(payment, clock, refund_id="rf-1", amount=4_000).model_copy(
            update={"tax_free_amount": 1_000, "request_key": "req-1", "request_fingerprint": "f1"}
        )
        assert journal.add_refund(refund) == refund
        assert journal.get_refund("rf-1") == refund
        assert journal.refund_by_request_key(payment.payment_id, "req-1") == refund
        assert journal.refund_by_request_key(payment.payment_id, "req-2") is None
        assert journal.refund_by_request_key("pay_other", "req-1") is None
        plain = journal.add_refund(make_refund(payment, clock, refund_id="rf-2", amount=1_000))
        assert (plain.tax_free_amount, plain.request_key, plain.request_fingerprint) == (
            0,
            None,
            None,
        )

    @pytest.mark.parametrize("tax_free", [-1, 4_001])
    def test_the_tax_free_part_fits_in_the_refund(
        self, journal: Journal, clock: ManualClock, tax_free: int
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        refund = make_refund(payment, clock, refund_id="rf-1", amount=4_000)
        with pytest.raises(InvalidRequest, match="tax_free_amount"):
            journal.add_refund(refund.model_copy(update={"tax_free_amount": tax_free}))
        assert journal.get_refund("rf-1") is None
        full = refund.model_copy(update={"tax_free_amount": 4_000})
        assert journal.add_refund(full).tax_free_amount == 4_000

    def test_a_request_key_journals_one_refund_per_payment(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        _, _, payment = paid_order(journal, clock)
        first = make_refund(payment, clock, refund_id="rf-1", amount=10_000).model_copy(
            update={"request_key": "req-1", "request_fingerprint": "amount=10000"}
        )
        journal.add_refund(first)
        journal.update_refund("rf-1", state=RefundState.SUCCEEDED)
        stored = journal.get_refund("rf-1")
        # A repeat with the same key returns the first refund as it stands, even with other
        # arguments and nothing left to refund: the caller compares the fingerprints.
        repeat = make_refund(payment, clock, refund_id="rf-2", amount=500).model_copy(
            update={"request_key": "req-1", "request_fingerprint": "amount=500"}
        )
        assert journal.add_refund(repeat) == stored
        assert journal.get_refund("rf-2") is None
        assert ids(journal.refunds_for_order(payment.order_id)) == ["rf-1"]
        # Another payment has keys of its own.
        _, _, other = paid_order(journal, clock, make_order("ord-2"))
        theirs = make_refund(other, clock, refund_id="rf-3", amount=500).model_copy(
            update={"request_key": "req-1"}
        )
        assert journal.add_refund(theirs) == theirs

    def test_a_request_key_needs_a_payment(self, journal: Journal, clock: ManualClock) -> None:
        order, superseded, _ = superseded_attempt(journal, clock)
        comp = make_compensation(superseded, order, clock)
        with pytest.raises(InvalidRequest, match="request_key but names no payment"):
            journal.add_refund(comp.model_copy(update={"request_key": "req-1"}))
        with pytest.raises(InvalidRequest, match="request_fingerprint but no request_key"):
            journal.add_refund(comp.model_copy(update={"request_fingerprint": "f"}))
        assert journal.refunds_for_order(order.order_id) == []

    def test_racing_refunds_with_one_request_key_journal_one(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(2)]
        _, _, payment = paid_order(journals[0], clock)
        results = race(
            [
                partial(
                    journals[n % 2].add_refund,
                    make_refund(payment, clock, refund_id=f"rf-{n}", amount=3_000).model_copy(
                        update={"request_key": "req-1"}
                    ),
                )
                for n in range(6)
            ]
        )
        refunds = [r for r in results if isinstance(r, Refund)]
        assert len(refunds) == 6
        assert len({r.refund_id for r in refunds}) == 1
        assert journals[1].counts().refunds_owed_amount == 3_000

    # -- values the databases cannot hold -----------------------------------------------

    def test_values_beyond_what_is_stored_are_invalid_requests(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        with pytest.raises(InvalidRequest, match="lease_seconds"):
            begin(journal, make_order(), lease=1e12)
        order = make_order()
        attempt = begin(journal, order, lease=0)
        huge = make_payment(attempt, order, clock).model_copy(update={"attempts": 2**63})
        with pytest.raises(InvalidRequest, match="attempts must be a count"):
            journal.record_success(attempt.attempt_id, huge)
        far = datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))
        with pytest.raises(InvalidRequest, match="out of range"):
            journal.update_attempt(attempt.attempt_id, state=AttemptState.FAILED, recheck_until=far)
        _, _, payment = paid_order(journal, clock, make_order("ord-2"))
        refund = make_refund(payment, clock, refund_id="rf-1", amount=1_000)
        with pytest.raises(InvalidRequest, match="expected_remaining"):
            journal.add_refund(refund.model_copy(update={"expected_remaining": 2**64}))
        assert journal.get_refund("rf-1") is None
        assert journal.payment_for_order(order.order_id) is None

    # -- durability ---------------------------------------------------------------------

    def test_a_returned_write_is_visible_to_another_process(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        writer = journal_factory.open("shared", clock)
        _, attempt, payment = paid_order(writer, clock)
        # The writer is never closed, as after a crash: what it returned must be stored.
        reader = journal_factory.open("shared", clock)
        assert reader.payment_for_order("ord-1") == payment
        assert reader.get_attempt(attempt.attempt_id) == writer.get_attempt(attempt.attempt_id)

    def test_everything_survives_close_and_reopen(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        first = journal_factory.open("reopen", clock)
        order, superseded, payment = superseded_attempt(first, clock)
        first.add_refund(make_refund(payment, clock, refund_id="rf-1", amount=1_000))
        before = (
            first.get_order(order.order_id),
            list(first.attempts_for_order(order.order_id)),
            first.get_payment(payment.payment_id),
            list(first.refunds_owed()),
            list(first.unresolved_attempts()),
            first.counts(),
        )
        first.close()
        first.close()  # closing twice is harmless

        second = journal_factory.open("reopen", clock)
        after = (
            second.get_order(order.order_id),
            list(second.attempts_for_order(order.order_id)),
            second.get_payment(payment.payment_id),
            list(second.refunds_owed()),
            list(second.unresolved_attempts()),
            second.counts(),
        )
        assert after == before
        assert ids(after[4]) == [superseded.attempt_id]
        with pytest.raises(OrderAlreadyPaid):
            begin(second, order)

    # -- concurrency --------------------------------------------------------------------

    @pytest.mark.parametrize("instances", [1, 2], ids=["one-instance", "two-instances"])
    def test_racing_attempts_on_one_order_let_one_through(
        self, journal_factory: JournalFactory, clock: ManualClock, instances: int
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(instances)]
        order = make_order()

        def attempt_and_pay(journal: Journal) -> Payment:
            attempt = begin(journal, order, lease=600)
            return journal.record_success(attempt.attempt_id, make_payment(attempt, order, clock))

        results = race([partial(attempt_and_pay, journals[i % instances]) for i in range(8)])
        payments = [r for r in results if isinstance(r, Payment)]
        refused = [r for r in results if isinstance(r, AttemptInFlight | OrderAlreadyPaid)]
        assert len(payments) == 1
        assert len(refused) == 7
        assert all(r.payment == payments[0] for r in refused if isinstance(r, OrderAlreadyPaid))
        assert len(journals[0].attempts_for_order(order.order_id)) == 1
        assert journals[-1].payment_for_order(order.order_id) == payments[0]

    def test_racing_successes_make_one_payment(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(2)]
        order = make_order()
        attempts = []
        for _ in range(4):
            attempts.append(begin(journals[0], order, lease=0))
        results = race(
            [
                partial(journals[i % 2].record_success, a.attempt_id, make_payment(a, order, clock))
                for i, a in enumerate(attempts)
            ]
        )
        assert all(isinstance(r, Payment) for r in results)
        assert len({r.payment_id for r in results if isinstance(r, Payment)}) == 1
        states = sorted(a.state for a in journals[1].attempts_for_order(order.order_id))
        assert states == sorted([AttemptState.SUCCEEDED] + [AttemptState.SUPERSEDED] * 3)

    def test_racing_claims_give_one_worker_the_attempt(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(2)]
        attempt = begin(journals[0], make_order(), lease=0)
        journals[0].update_attempt(attempt.attempt_id, state=AttemptState.UNKNOWN)
        results = race(
            [partial(journals[i % 2].renew_lease, attempt.attempt_id, 60) for i in range(8)]
        )
        assert sorted(results, key=bool) == [False] * 7 + [True]

    def test_racing_refunds_never_exceed_the_payment(
        self, journal_factory: JournalFactory, clock: ManualClock
    ) -> None:
        journals = [journal_factory.open("race", clock) for _ in range(2)]
        _, _, payment = paid_order(journals[0], clock)
        results = race(
            [
                partial(
                    journals[n % 2].add_refund,
                    make_refund(payment, clock, refund_id=f"rf-{n}", amount=3_000),
                )
                for n in range(8)
            ]
        )
        assert sum(isinstance(r, Refund) for r in results) == 3
        assert sum(isinstance(r, InvalidRequest) for r in results) == 5
        assert journals[1].counts().refunds_owed_amount == 9_000

    def test_async_callers_share_one_journal_through_threads(
        self, journal: Journal, clock: ManualClock
    ) -> None:
        async def main() -> list[Attempt]:
            return await asyncio.gather(
                *(asyncio.to_thread(begin, journal, make_order(f"ord-{n}")) for n in range(20))
            )

        attempts = asyncio.run(main())
        assert sorted(ids(attempts)) == sorted(f"ord-{n}_1" for n in range(20))
        assert journal.counts().orders == 20

    # -- properties ---------------------------------------------------------------------

    def test_random_operations_keep_the_invariants(self, journal_factory: JournalFactory) -> None:
        class Machine(JournalMachine):
            factory = journal_factory

        run_state_machine_as_test(
            Machine,
            settings=settings(
                max_examples=MACHINE_EXAMPLES[journal_factory.backend],
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


# --------------------------------------------------------------------------------------
# The contract as a state machine: random sequences of operations against a small model.
# --------------------------------------------------------------------------------------

ORDER_AMOUNTS = {"ord-a": 10_000, "ord-b": 2_500, "ord-c": 1}
#: Sequences run per backend. A PostgreSQL step costs round trips to a server, and
#: ``reopen`` a new pool, so fewer sequences keep the suite quick; the async journal runs
#: the very same transactions as the sync one (one set of flows, two drivers), so its runs
#: check the async driver rather than the semantics, and need fewer still.
MACHINE_EXAMPLES = {"sqlite": 50, "postgres": 12, "postgres-async": 5}
_STORES = itertools.count()


@dataclass
class _AttemptModel:
    order_id: str
    state: AttemptState
    lease_until: datetime
    txn: str | None = None
    sent_at: datetime | None = None
    recheck_until: datetime | None = None


@dataclass
class _RefundModel:
    order_id: str
    kind: str
    amount: int
    attempt_id: str
    state: RefundState = RefundState.OWED


class JournalMachine(RuleBasedStateMachine):
    """Drives one journal and a plain-Python model of it side by side.

    After every step: at most one live pending attempt, one success and one payment per
    order, and the payment is the succeeded attempt's; refunded never exceeds the amount
    and equals the refunds that succeeded; the owed refunds and the unresolved attempts
    are exactly the model's (so none ever vanishes), in order.
    """

    #: Set by the test that runs the machine, from its ``journal_factory`` fixture.
    factory: ClassVar[JournalFactory]

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.store = f"machine-{next(_STORES)}"
        self.journal = self.factory.open(self.store, self.clock)
        self.attempts: dict[str, _AttemptModel] = {}
        self.paid_by: dict[str, str] = {}
        self.refunds: dict[str, _RefundModel] = {}

    def teardown(self) -> None:
        self.journal.close()

    def _order(self, order_id: str) -> Order:
        return make_order(order_id, ORDER_AMOUNTS[order_id])

    def _payment(self, order_id: str) -> Payment:
        payment = self.journal.payment_for_order(order_id)
        assert payment is not None
        return payment

    # -- rules --------------------------------------------------------------------------

    @rule(
        order_id=st.sampled_from(sorted(ORDER_AMOUNTS)),
        provider=st.sampled_from(["tosspayments", "kakaopay"]),
        lease=st.sampled_from([0, 10, 60]),
        other_amount=st.booleans(),
    )
    def start(self, order_id: str, provider: str, lease: int, other_amount: bool) -> None:
        now = self.clock.now()
        known = any(a.order_id == order_id for a in self.attempts.values())
        order = self._order(order_id)
        if other_amount and known:
            wrong = make_order(order_id, ORDER_AMOUNTS[order_id] + 1)
            with pytest.raises(InvalidRequest, match="never changes"):
                begin(self.journal, wrong, provider=provider, lease=lease)
            return
        live = [
            attempt_id
            for attempt_id, a in self.attempts.items()
            if a.order_id == order_id and a.state is AttemptState.PENDING and a.lease_until > now
        ]
        if order_id in self.paid_by:
            with pytest.raises(OrderAlreadyPaid) as paid:
                begin(self.journal, order, provider=provider, lease=lease)
            assert paid.value.payment.attempt_id == self.paid_by[order_id]
        elif live:
            with pytest.raises(AttemptInFlight) as flight:
                begin(self.journal, order, provider=provider, lease=lease)
            assert flight.value.attempt_id in live
        else:
            attempt = begin(self.journal, order, provider=provider, lease=lease)
            seq = 1 + sum(a.order_id == order_id for a in self.attempts.values())
            assert attempt.attempt_id == f"{order_id}_{seq}"
            self.attempts[attempt.attempt_id] = _AttemptModel(
                order_id, AttemptState.PENDING, now + timedelta(seconds=lease)
            )

    @precondition(lambda self: self.attempts)
    @rule(
        data=st.data(),
        state=st.sampled_from(
            [
                AttemptState.FAILED,
                AttemptState.UNKNOWN,
                AttemptState.REDIRECTED,
                AttemptState.PENDING,
            ]
        ),
        txn=st.sampled_from([None, "T-1", "T-2"]),
        sent=st.booleans(),
        recheck=st.sampled_from([None, 0, 30, 120]),
    )
    def update(
        self,
        data: st.DataObject,
        state: AttemptState,
        txn: str | None,
        sent: bool,
        recheck: int | None,
    ) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(self.attempts)))
        model = self.attempts[attempt_id]
        now = self.clock.now()
        until = None if recheck is None else now + timedelta(seconds=recheck)
        if state is not AttemptState.FAILED and until is not None:
            with pytest.raises(InvalidRequest, match="recheck_until"):
                self.journal.update_attempt(attempt_id, state=state, recheck_until=until)
            return
        if model.state is AttemptState.SUCCEEDED:
            with pytest.raises(InvalidRequest):
                self.journal.update_attempt(attempt_id, state=state, provider_txn_id=txn)
            return
        others_live = [
            other_id
            for other_id, a in self.attempts.items()
            if other_id != attempt_id
            and a.order_id == model.order_id
            and a.state is AttemptState.PENDING
            and a.lease_until > now
        ]
        if state is AttemptState.PENDING and model.state is not state and others_live:
            with pytest.raises(AttemptInFlight) as flight:
                self.journal.update_attempt(attempt_id, state=state, provider_txn_id=txn)
            assert flight.value.attempt_id in others_live
            return
        got = self.journal.update_attempt(
            attempt_id, state=state, provider_txn_id=txn, sent=sent, recheck_until=until
        )
        model.state = state
        model.txn = txn or model.txn
        if state is not AttemptState.PENDING:
            model.lease_until = now  # leaving PENDING ends the lease
        if sent:
            model.sent_at = now
        if state is AttemptState.FAILED:
            model.recheck_until = until or model.recheck_until
        else:
            model.recheck_until = None
        assert (got.state, got.provider_txn_id) == (state, model.txn)
        assert (got.sent_at, got.recheck_until) == (model.sent_at, model.recheck_until)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data())
    def succeed(self, data: st.DataObject) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(self.attempts)))
        model = self.attempts[attempt_id]
        attempt = self.journal.get_attempt(attempt_id)
        assert attempt is not None
        txn = f"T-{attempt_id}"
        stored = self.journal.record_success(
            attempt_id, make_payment(attempt, self._order(model.order_id), self.clock, txn=txn)
        )
        owner = self.paid_by.setdefault(model.order_id, attempt_id)
        assert stored.attempt_id == owner
        model.state = AttemptState.SUCCEEDED if owner == attempt_id else AttemptState.SUPERSEDED
        model.txn = txn
        model.recheck_until = None

    @precondition(lambda self: self.paid_by)
    @rule(data=st.data())
    def record_a_taken_transaction(self, data: st.DataObject) -> None:
        unpaid = sorted(i for i, a in self.attempts.items() if a.order_id not in self.paid_by)
        if not unpaid:
            return
        attempt_id = data.draw(st.sampled_from(unpaid))
        attempt = self.journal.get_attempt(attempt_id)
        assert attempt is not None
        taken = [
            payment
            for payment in map(self._payment, sorted(self.paid_by))
            if payment.provider == attempt.provider
        ]
        if not taken:
            return
        other = data.draw(st.sampled_from(taken))
        order = self._order(attempt.order_id)
        stolen = make_payment(attempt, order, self.clock, txn=other.provider_txn_id)
        with pytest.raises(TxnAlreadyRecorded) as caught:
            self.journal.record_success(attempt_id, stolen)
        assert caught.value.payment == other
        assert self.journal.get_attempt(attempt_id) == attempt

    @rule(seconds=st.sampled_from([1, 10, 30, 90]))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data(), lease=st.sampled_from([0, 10, 60]), to_send=st.booleans())
    def claim(self, data: st.DataObject, lease: int, to_send: bool) -> None:
        attempt_id = data.draw(st.sampled_from(sorted(self.attempts)))
        model = self.attempts[attempt_id]
        now = self.clock.now()
        other_live = any(
            a.order_id == model.order_id
            and a is not model
            and a.state is AttemptState.PENDING
            and a.lease_until > now
            for a in self.attempts.values()
        )
        claimable = (
            model.state not in (AttemptState.SUCCEEDED, AttemptState.FAILED)
            and model.lease_until <= now
        )
        if to_send:
            # Claimed for a request about to be sent: PENDING in the same write, refused
            # (nothing written) while another attempt of the order is in flight.
            if claimable and other_live:
                with pytest.raises(AttemptInFlight):
                    self.journal.renew_lease(attempt_id, lease, pending=True)
                return
            assert self.journal.renew_lease(attempt_id, lease, pending=True) is claimable
            if claimable:
                model.state = AttemptState.PENDING
                model.lease_until = now + timedelta(seconds=lease)
                model.recheck_until = None
            return
        expected = claimable and not (model.state is AttemptState.PENDING and other_live)
        assert self.journal.renew_lease(attempt_id, lease) is expected
        if expected:
            model.lease_until = now + timedelta(seconds=lease)

    @precondition(lambda self: self.paid_by)
    @rule(data=st.data(), share=st.integers(min_value=1, max_value=100))
    def refund(self, data: st.DataObject, share: int) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.paid_by)))
        payment = self._payment(order_id)
        amount = max(1, payment.amount.amount * share // 100)
        taken = sum(
            r.amount
            for r in self.refunds.values()
            if r.order_id == order_id
            and r.kind == "refund"
            and r.state in (RefundState.OWED, RefundState.SUCCEEDED)
        )
        refund_id = f"rf-{len(self.refunds)}"
        refund = make_refund(payment, self.clock, refund_id=refund_id, amount=amount)
        if amount > payment.amount.amount - taken:
            with pytest.raises(InvalidRequest, match="can still be refunded"):
                self.journal.add_refund(refund)
            return
        assert self.journal.add_refund(refund) == refund
        self.refunds[refund_id] = _RefundModel(order_id, "refund", amount, payment.attempt_id)

    @precondition(
        lambda self: any(a.state is AttemptState.SUPERSEDED for a in self.attempts.values())
    )
    @rule(data=st.data())
    def compensate(self, data: st.DataObject) -> None:
        superseded = sorted(
            attempt_id
            for attempt_id, a in self.attempts.items()
            if a.state is AttemptState.SUPERSEDED
        )
        attempt_id = data.draw(st.sampled_from(superseded))
        attempt = self.journal.get_attempt(attempt_id)
        assert attempt is not None
        order_id = self.attempts[attempt_id].order_id
        refund_id = f"rf-{len(self.refunds)}"
        comp = make_compensation(attempt, self._order(order_id), self.clock, refund_id=refund_id)
        assert self.journal.add_refund(comp) == comp
        self.refunds[refund_id] = _RefundModel(
            order_id, "compensation", comp.amount.amount, attempt_id
        )

    @precondition(lambda self: self.refunds)
    @rule(data=st.data(), state=st.sampled_from(list(RefundState)))
    def settle(self, data: st.DataObject, state: RefundState) -> None:
        refund_id = data.draw(st.sampled_from(sorted(self.refunds)))
        model = self.refunds[refund_id]
        if model.state is not RefundState.OWED and state is not model.state:
            with pytest.raises(InvalidRequest, match="already"):
                self.journal.update_refund(refund_id, state=state)
            return
        assert self.journal.update_refund(refund_id, state=state).state is state
        model.state = state

    @rule()
    def reopen(self) -> None:
        self.journal.close()
        self.journal = self.factory.open(self.store, self.clock)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def one_in_flight_one_success_one_payment_per_order(self) -> None:
        for order_id in ORDER_AMOUNTS:
            attempts = self.journal.attempts_for_order(order_id)
            modelled = {i: a.state for i, a in self.attempts.items() if a.order_id == order_id}
            assert {a.attempt_id: a.state for a in attempts} == modelled
            now = self.clock.now()
            live = [
                a
                for a in self.attempts.values()
                if a.order_id == order_id
                and a.state is AttemptState.PENDING
                and a.lease_until > now
            ]
            assert len(live) <= 1
            succeeded = [a.attempt_id for a in attempts if a.state is AttemptState.SUCCEEDED]
            payment = self.journal.payment_for_order(order_id)
            if order_id in self.paid_by:
                assert payment is not None
                assert succeeded == [payment.attempt_id] == [self.paid_by[order_id]]
            else:
                assert payment is None
                assert succeeded == []

    @invariant()
    def refunded_is_what_succeeded_and_never_more_than_paid(self) -> None:
        for order_id in self.paid_by:
            payment = self._payment(order_id)
            done = sum(
                r.amount
                for r in self.refunds.values()
                if r.order_id == order_id
                and r.kind == "refund"
                and r.state is RefundState.SUCCEEDED
            )
            assert payment.refunded.amount == done <= payment.amount.amount
            expected = (
                PaymentStatus.PAID
                if done == 0
                else PaymentStatus.REFUNDED
                if done == payment.amount.amount
                else PaymentStatus.PARTIALLY_REFUNDED
            )
            assert payment.status is expected

    @invariant()
    def owed_refunds_never_vanish(self) -> None:
        owed = [i for i, r in self.refunds.items() if r.state is RefundState.OWED]
        assert ids(self.journal.refunds_owed()) == owed
        counts = self.journal.counts()
        assert counts.refunds_owed == len(owed)
        assert counts.refunds_owed_amount == sum(self.refunds[i].amount for i in owed)

    @invariant()
    def attempts_carry_their_lease_send_and_recheck_times(self) -> None:
        for attempt_id, model in self.attempts.items():
            got = self.journal.get_attempt(attempt_id)
            assert got is not None
            lease = model.lease_until if model.state is AttemptState.PENDING else None
            assert (got.lease_until, got.sent_at, got.recheck_until) == (
                lease,
                model.sent_at,
                model.recheck_until,
            )

    @invariant()
    def rechecks_and_in_flight_are_exactly_the_models(self) -> None:
        now = self.clock.now()
        # Oldest first; attempts begun at the same instant keep the order they were begun.
        assert ids(self.journal.attempts_to_recheck()) == [
            attempt_id
            for attempt_id, a in self.attempts.items()
            if a.state is AttemptState.FAILED
            and a.recheck_until is not None
            and a.recheck_until > now
        ]
        assert ids(self.journal.in_flight_attempts()) == [
            attempt_id
            for attempt_id, a in self.attempts.items()
            if a.state is AttemptState.PENDING and a.lease_until > now
        ]

    @invariant()
    def unresolved_attempts_are_exactly_the_open_ones(self) -> None:
        now = self.clock.now()
        compensated = {r.attempt_id for r in self.refunds.values() if r.kind == "compensation"}
        expected = [
            attempt_id
            for attempt_id, a in self.attempts.items()
            if a.state is AttemptState.UNKNOWN
            or (a.state is AttemptState.PENDING and a.lease_until <= now)
            or (a.state is AttemptState.SUPERSEDED and attempt_id not in compensated)
        ]
        # Oldest first; attempts begun at the same instant keep the order they were begun.
        assert ids(self.journal.unresolved_attempts()) == expected
        assert self.journal.counts().unresolved_attempts == len(expected)


# --------------------------------------------------------------------------------------
# A database written by schema version 1, for the upgrade tests of both backends.
# --------------------------------------------------------------------------------------

_V1_TS = "'2022-10-15T06:30:00.000000Z'"  # the ManualClock's start; text SQLite and PostgreSQL
_V1_ORDER = (
    "INSERT INTO orders (order_id, amount, currency, order_json, created_at)"
    " VALUES ('{id}', 10000, 'KRW', '{json}', " + _V1_TS + ")"
)
_V1_ATTEMPT = (
    "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
    " idempotency_key, state, provider_txn_id, lease_until, created_at, updated_at)"
    " VALUES ('{order}_{seq}', '{order}', {seq}, 'tosspayments', 'card', 'charge',"
    " 'k-{order}-{seq}', '{state}', {txn}, {lease}, " + _V1_TS + ", " + _V1_TS + ")"
)
_V1_PAYMENT = (
    "INSERT INTO payments (payment_id, order_id, attempt_id, provider, method,"
    " provider_txn_id, amount, refunded, currency, status, approved_at, attempts, created_at,"
    " updated_at) VALUES ('{id}', '{order}', '{order}_{seq}', 'tosspayments', 'card', 'T-1',"
    " 10000, 0, 'KRW', 'paid', " + _V1_TS + ", {seq}, " + _V1_TS + ", " + _V1_TS + ")"
)
#: Rows as a version 1 journal wrote them: ord-1 paid with T-1 and partly refunded (owed),
#: ord-2's attempt failed, ord-3's attempt in flight until 2030.
V1_ROWS: tuple[str, ...] = (
    *(
        _V1_ORDER.format(id=order_id, json=make_order(order_id).model_dump_json())
        for order_id in ("ord-1", "ord-2", "ord-3")
    ),
    _V1_ATTEMPT.format(order="ord-1", seq=1, state="succeeded", txn="'T-1'", lease=_V1_TS),
    _V1_ATTEMPT.format(order="ord-2", seq=1, state="failed", txn="NULL", lease=_V1_TS),
    _V1_ATTEMPT.format(
        order="ord-3", seq=1, state="pending", txn="NULL", lease="'2030-01-01T00:00:00.000000Z'"
    ),
    _V1_PAYMENT.format(id="pay-1", order="ord-1", seq=1),
    "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
    " provider_txn_id, amount, currency, expected_remaining, reason, kind, idempotency_key,"
    " state, error_code, tries, lease_until, created_at, updated_at) VALUES ('rf-1', 'pay-1',"
    " 'ord-1', 'ord-1_1', 'tosspayments', 'T-1', 1000, 'KRW', 10000, 'customer asked',"
    f" 'refund', 'key-rf-1', 'owed', NULL, 0, NULL, {_V1_TS}, {_V1_TS})",
)
#: ord-2 paid too, by a second attempt, with ord-1's transaction: version 1 allowed it.
V1_SAME_TXN_ROWS: tuple[str, ...] = (
    _V1_ATTEMPT.format(order="ord-2", seq=2, state="succeeded", txn="'T-1'", lease=_V1_TS),
    _V1_PAYMENT.format(id="pay-2", order="ord-2", seq=2),
)


def check_upgraded_v1_rows(journal: Journal, clock: ManualClock) -> None:
    """The rows of :data:`V1_ROWS` read back through a journal at the latest version, and
    the new rules hold for them."""
    paid = journal.get_attempt("ord-1_1")
    assert paid is not None
    assert (paid.state, paid.provider_txn_id) == (AttemptState.SUCCEEDED, "T-1")
    assert (paid.lease_until, paid.sent_at, paid.recheck_until) == (None, None, None)
    payment = journal.payment_for_order("ord-1")
    assert payment is not None
    assert (payment.payment_id, payment.provider_txn_id) == ("pay-1", "T-1")
    refund = journal.get_refund("rf-1")
    assert refund is not None
    assert (refund.amount.amount, refund.tax_free_amount) == (1_000, 0)
    assert (refund.request_key, refund.request_fingerprint) == (None, None)
    assert ids(journal.refunds_owed()) == ["rf-1"]
    flying = journal.in_flight_attempts()
    assert ids(flying) == ["ord-3_1"]
    assert flying[0].lease_until == datetime(2030, 1, 1, tzinfo=UTC)
    assert journal.unresolved_attempts() == []
    assert journal.counts() == JournalCounts(3, 1, 0, 1, 1_000)
    # The failed attempt takes a recheck window.
    window = clock.now() + timedelta(hours=1)
    journal.update_attempt("ord-2_1", state=AttemptState.FAILED, recheck_until=window)
    assert ids(journal.attempts_to_recheck()) == ["ord-2_1"]
    # T-1 already pays ord-1: it cannot pay ord-2 too.
    order = make_order("ord-2")
    attempt = begin(journal, order)
    with pytest.raises(TxnAlreadyRecorded) as caught:
        journal.record_success(attempt.attempt_id, make_payment(attempt, order, clock, txn="T-1"))
    assert caught.value.payment == payment
    # Refund request keys work on an old payment.
    keyed = make_refund(payment, clock, refund_id="rf-2", amount=2_000).model_copy(
        update={"request_key": "req-1", "tax_free_amount": 500}
    )
    assert journal.add_refund(keyed) == keyed
    again = keyed.model_copy(update={"refund_id": "rf-3"})
    assert journal.add_refund(again) == keyed


# --------------------------------------------------------------------------------------
# SQLite only: the file, its pragmas, the schema's own guards, migrations, URLs.
# --------------------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


def raw(path: Path) -> sqlite3.Connection:
    """A connection of our own to the journal's file, as an operator's sqlite3 shell."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def pragma(journal: SQLiteJournal, name: str) -> object:
    # Some pragmas are per connection: ask the journal's own.
    return journal._conn.execute(f"PRAGMA {name}").fetchone()[0]


class TestSQLiteFile:
    @pytest.mark.parametrize(("durable", "synchronous"), [(True, 2), (False, 1)])
    def test_wal_and_sync_level(self, db_path: Path, durable: bool, synchronous: int) -> None:
        with SQLiteJournal(db_path, durable=durable) as journal:
            assert journal.durable is durable
            assert journal.path == str(db_path)
            assert pragma(journal, "journal_mode") == "wal"
            assert pragma(journal, "synchronous") == synchronous  # FULL = 2, NORMAL = 1
            assert pragma(journal, "foreign_keys") == 1
            assert cast(int, pragma(journal, "busy_timeout")) > 0
            # A journal bigger than SQLite's 2 MB default cache keeps its hot pages.
            assert pragma(journal, "cache_size") == -CACHE_KIB <= -16 * 1024

    def test_commits_leave_checkpoints_to_the_background_up_to_a_bound(self, db_path: Path) -> None:
        with SQLiteJournal(db_path, durable=False, checkpoint_interval=None) as journal:
            assert pragma(journal, "wal_autocheckpoint") == WAL_BOUND_PAGES
            for n in range(150):  # well over SQLite's default of 1,000 pages
                begin(journal, make_order(f"ord-{n}"))
            frames, copied = journal.checkpoint()
            assert frames > 1_000  # no commit checkpointed on its own
            assert copied == frames  # nothing reads: the whole log goes back at once
            assert journal.checkpoint() == (frames, frames)

    def test_a_background_thread_checkpoints_while_the_journal_is_open(self, db_path: Path) -> None:
        journal = SQLiteJournal(db_path, durable=False, checkpoint_interval=0.01)
        checkpointer = journal._checkpointer
        assert checkpointer is not None
        begin(journal, make_order())
        deadline = time.monotonic() + 30  # a bound on a wait, not a timing assertion
        while checkpointer.rounds < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.rounds >= 2
        journal.close()
        assert not any(
            t.name.startswith("payfallback-checkpoint:") and str(db_path) in t.name
            for t in threading.enumerate()
        )
        # A journal in memory has no log to checkpoint, and no thread.
        with SQLiteJournal(":memory:") as memory:
            assert memory._checkpointer is None

    def test_under_steady_writes_the_background_starts_the_log_over(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past WAL_RESTART_PAGES a background round starts the log over, so a payment's
        commit never reaches WAL_BOUND_PAGES and checkpoints it itself. Eight bursts of
        writes, each past the restart size (made small here), with background rounds
        between them as payments leave gaps: the log starts over each time, so the file
        never holds much more than one burst. (Under steady load a PASSIVE round alone
        would not do it: it never finds the log copied to its end. What that costs, a
        commit that syncs on the event loop, shows in ``benchmarks/bench_peak.py``'s p99.)"""
        monkeypatch.setattr(sqlite_journal, "WAL_RESTART_PAGES", 100)
        journal = SQLiteJournal(db_path, durable=False, checkpoint_interval=0.01)
        checkpointer = journal._checkpointer
        assert checkpointer is not None
        try:
            for burst in range(8):
                for n in range(100):  # some 5-8 pages each
                    begin(journal, make_order(f"ord-{burst}-{n}"))
                rounds = checkpointer.rounds
                deadline = time.monotonic() + 30  # a bound on a wait, not a timing assertion
                while checkpointer.rounds < rounds + 2 and time.monotonic() < deadline:
                    time.sleep(0.005)
            assert checkpointer.restarts >= 6
            # 8 bursts kept in one log would be 4,000 pages and more.
            pages = (Path(f"{db_path}-wal").stat().st_size - 32) // (4096 + 24)
            assert pages <= 2_000
        finally:
            journal.close()

    def test_a_reader_on_the_log_keeps_it_from_starting_over_and_blocks_nothing(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A RESTART must wait for readers to leave the log, holding other writers back
        meanwhile; it waits RESTART_BUSY_MS at most and the round ends as a PASSIVE one.
        After two such in a row, none is tried for RESTART_BACKOFF_S, however many rounds
        come. Writes go on
        throughout, and once the reader leaves (and the back-off ends) the log starts
        over again."""
        monkeypatch.setattr(sqlite_journal, "WAL_RESTART_PAGES", 50)
        monkeypatch.setattr(sqlite_journal, "RESTART_BACKOFF_S", 3600.0)
        journal = SQLiteJournal(db_path, durable=False, checkpoint_interval=0.01)
        checkpointer = journal._checkpointer
        assert checkpointer is not None
        reader = raw(db_path)
        try:
            for n in range(30):
                begin(journal, make_order(f"ord-a-{n}"))
            # Counted before the reader starts: on a slow machine both give-ups (and so the
            # back-off) can come while the 30 writes below are still going on.
            given_up = checkpointer.restarts_given_up
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM orders").fetchone()  # a snapshot in the log
            for n in range(30):
                begin(journal, make_order(f"ord-b-{n}"))
            restarts = checkpointer.restarts
            deadline = time.monotonic() + 30  # a bound on a wait, not a timing assertion

            def write_for(more_rounds: int) -> None:
                until = checkpointer.rounds + more_rounds
                while checkpointer.rounds < until and time.monotonic() < deadline:
                    begin(journal, make_order(f"ord-c-{time.monotonic_ns()}"))
                assert checkpointer.rounds >= until

            write_for(5)
            assert checkpointer.restarts == restarts
            # One or two gave up since the reader came (one, if the round before it gave up
            # on a commit), and then the back-off: no more, however many rounds come.
            tried = checkpointer.restarts_given_up
            assert 1 <= tried - given_up <= 2
            write_for(5)
            assert checkpointer.restarts_given_up == tried
            assert checkpointer.restarts == restarts
            reader.execute("COMMIT")
            monkeypatch.setattr(sqlite_journal, "RESTART_BACKOFF_S", 0.0)
            while checkpointer.restarts == restarts and time.monotonic() < deadline:
                begin(journal, make_order(f"ord-d-{time.monotonic_ns()}"))
                time.sleep(0.005)
            assert checkpointer.restarts > restarts
        finally:
            reader.close()
            journal.close()

    def test_repr_names_the_file(self, db_path: Path) -> None:
        with SQLiteJournal(db_path, durable=False) as journal:
            assert repr(journal) == f"SQLiteJournal(path={str(db_path)!r}, durable=False)"

    def test_from_url(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        with SQLiteJournal.from_url("sqlite:///rel.sqlite3") as rel:
            assert rel.path == "rel.sqlite3"
            begin(rel, make_order())
        assert (tmp_path / "rel.sqlite3").exists()
        with SQLiteJournal.from_url(f"sqlite:///{tmp_path}/abs.sqlite3", durable=False) as j:
            assert j.path == f"{tmp_path}/abs.sqlite3"
            assert j.durable is False
        assert (tmp_path / "abs.sqlite3").exists()
        with SQLiteJournal.from_url("sqlite:///:memory:") as mem:
            assert mem.path == ":memory:"
            assert begin(mem, make_order()).seq == 1

    @pytest.mark.parametrize(
        "url",
        ["postgresql://db/pay", "sqlite://relative.sqlite3", "sqlite:///", "sqlite:///j?mode=ro"],
    )
    def test_from_url_refuses_other_urls(self, url: str) -> None:
        with pytest.raises(ConfigurationError, match="sqlite:////absolute/path"):
            SQLiteJournal.from_url(url)

    def test_a_missing_directory_is_a_configuration_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="check that its directory exists"):
            SQLiteJournal(tmp_path / "missing" / "journal.sqlite3")

    def test_memory_journal_is_shared_by_threads(self) -> None:
        with SQLiteJournal(":memory:") as journal:
            results = race([partial(begin, journal, make_order(f"ord-{n}")) for n in range(8)])
            assert all(isinstance(r, Attempt) for r in results)
            assert journal.counts().orders == 8


_TS = "'2022-10-15T06:30:00.000000Z'"
_RAW_ATTEMPT = (
    "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
    " idempotency_key, state, lease_until, created_at, updated_at) VALUES"
    " ('{id}', '{order}', 9, 'toss', 'card', 'charge', '{id}', 'pending',"
    f" '2030-01-01T00:00:00.000000Z', {_TS}, {_TS})"
)


def guarded_rows(journal: Journal, clock: ManualClock) -> None:
    """What the raw-write tests of both backends try to break: ord-1 paid (T-1 style txn)
    with an owed refund under a request key, ord-2 with a failed and a live attempt."""
    _, _, payment = paid_order(journal, clock)
    failed = begin(journal, make_order("ord-2"), lease=0)
    journal.update_attempt(failed.attempt_id, state=AttemptState.FAILED)
    begin(journal, make_order("ord-2"), lease=600)
    refund = make_refund(payment, clock, refund_id="rf-1", amount=100)
    journal.add_refund(refund.model_copy(update={"request_key": "req-1"}))


#: Raw writes breaking the rules of schema version 2, on the rows of :func:`guarded_rows`;
#: the same SQL for SQLite and PostgreSQL.
RAW_WRITES_V2 = [
    pytest.param(
        "INSERT INTO payments SELECT 'pay-2', 'ord-2', 'ord-2_1', provider, method,"
        " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
        " created_at, updated_at, receipt_json, answer_json FROM payments",
        id="another-orders-payment-with-the-same-txn",
    ),
    pytest.param(
        "UPDATE attempts SET recheck_until = '2030-01-01T00:00:00.000000Z'"
        " WHERE attempt_id = 'ord-2_2'",
        id="recheck-on-a-pending-attempt",
    ),
    pytest.param("UPDATE refunds SET tax_free_amount = amount + 1", id="tax-free-over-refund"),
    pytest.param("UPDATE refunds SET tax_free_amount = -1", id="negative-tax-free"),
    pytest.param(
        "UPDATE refunds SET kind = 'compensation', payment_id = NULL",
        id="request-key-without-payment",
    ),
    pytest.param(
        "UPDATE refunds SET request_key = NULL, request_fingerprint = 'f'",
        id="fingerprint-without-request-key",
    ),
    pytest.param(
        "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
        " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
        " idempotency_key, state, tries, created_at, updated_at, request_key)"
        " SELECT 'rf-2', payment_id, order_id, attempt_id, provider, provider_txn_id, amount,"
        " currency, expected_remaining, reason, kind, 'another-key', state, tries, created_at,"
        " updated_at, request_key FROM refunds",
        id="second-refund-with-the-request-key",
    ),
]


class TestSQLiteSchemaGuards:
    """The database refuses what the journal never writes, even from hand-written SQL."""

    def test_two_successes_for_one_order_violate_a_unique_index(self, db_path: Path) -> None:
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            order = make_order()
            first = begin(journal, order, lease=0)
            journal.update_attempt(first.attempt_id, state=AttemptState.FAILED)
            paid_order(journal, clock, order)
        conn = raw(db_path)
        with pytest.raises(
            sqlite3.IntegrityError, match=r"UNIQUE constraint failed: attempts\.order_id"
        ):
            conn.execute("UPDATE attempts SET state = 'succeeded' WHERE attempt_id = 'ord-1_1'")
        conn.close()

    def test_a_raw_second_success_insert_is_refused(self, db_path: Path) -> None:
        SQLiteJournal(db_path).close()
        conn = raw(db_path)
        conn.execute(
            "INSERT INTO orders VALUES ('ord-9', 1000, 'KRW', '{}', '2022-10-15T06:30:00.000000Z')"
        )
        insert = (
            "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
            " idempotency_key, state, lease_until, created_at, updated_at) VALUES"
            " (?, 'ord-9', ?, 'toss', 'card', 'charge', ?, 'succeeded',"
            " '2022-10-15T06:30:00.000000Z', '2022-10-15T06:30:00.000000Z',"
            " '2022-10-15T06:30:00.000000Z')"
        )
        conn.execute(insert, ("ord-9_1", 1, "k1"))
        with pytest.raises(
            sqlite3.IntegrityError, match=r"UNIQUE constraint failed: attempts\.order_id"
        ):
            conn.execute(insert, ("ord-9_2", 2, "k2"))
        assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
        conn.close()

    @pytest.mark.parametrize(
        "sql",
        [
            pytest.param(_RAW_ATTEMPT.format(id="ord-1_9", order="ord-1"), id="attempt-after-paid"),
            pytest.param(
                _RAW_ATTEMPT.format(id="ord-2_9", order="ord-2"), id="second-live-pending"
            ),
            pytest.param(
                "INSERT INTO payments SELECT 'pay-2', order_id, attempt_id, provider, method,"
                " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
                " created_at, updated_at, receipt_json, answer_json FROM payments",
                id="second-payment",
            ),
            pytest.param(
                "INSERT INTO payments SELECT 'pay-2', 'ord-2', attempt_id, provider, method,"
                " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
                " created_at, updated_at, receipt_json, answer_json FROM payments",
                id="payment-of-another-orders-attempt",
            ),
            pytest.param("UPDATE orders SET amount = 1", id="order-amount-changed"),
            pytest.param("UPDATE orders SET currency = 'USD'", id="order-currency-changed"),
            pytest.param("UPDATE payments SET refunded = 10.5", id="float-money"),
            pytest.param("UPDATE payments SET refunded = amount + 1", id="over-refunded"),
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
            *RAW_WRITES_V2,
            pytest.param("UPDATE refunds SET tax_free_amount = 0.5", id="float-tax-free"),
        ],
    )
    def test_raw_writes_that_break_a_rule_are_refused(self, db_path: Path, sql: str) -> None:
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            guarded_rows(journal, clock)
        conn = raw(db_path)
        before = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("orders", "attempts", "payments", "refunds")
        }
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql)
        after = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in before
        }
        assert after == before
        conn.close()


class TestSQLiteSums:
    def test_owed_amounts_are_counted_exactly_beyond_64_bits(self, db_path: Path) -> None:
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            _, _, payment = paid_order(journal, clock, make_order(amount=MAX_AMOUNT))
            journal.add_refund(make_refund(payment, clock, refund_id="rf-0", amount=MAX_AMOUNT))
            conn = raw(db_path)
            # 1,100 owed refunds of the largest amount, written by hand (the journal keeps
            # each payment's refunds within what it paid): together past 2**63.
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1099)"
                " INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " idempotency_key, state, tries, created_at, updated_at)"
                " SELECT 'rf-' || i, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " 'key-' || i, state, tries, created_at, updated_at FROM n, refunds"
                " WHERE refund_id = 'rf-0'"
            )
            with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
                conn.execute("SELECT SUM(amount) FROM refunds").fetchone()
            conn.close()
            counts = journal.counts()
        assert counts.refunds_owed == 1_100
        assert counts.refunds_owed_amount == 1_100 * MAX_AMOUNT > 2**63


class TestSQLiteMigrations:
    def test_a_version_1_file_is_upgraded_in_place(self, db_path: Path) -> None:
        conn = raw(db_path)
        assert migrate(conn, applied_at="v1", where="test", migrations=MIGRATIONS[:1]) == 1
        for statement in V1_ROWS:
            conn.execute(statement)
        conn.close()
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            check_upgraded_v1_rows(journal, clock)
        conn = raw(db_path)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,), (3,)]
        conn.close()

    def test_a_version_1_file_with_one_charge_paying_two_orders_stays_at_version_1(
        self, db_path: Path
    ) -> None:
        conn = raw(db_path)
        migrate(conn, applied_at="v1", where="test", migrations=MIGRATIONS[:1])
        for statement in (*V1_ROWS, *V1_SAME_TXN_ROWS):
            conn.execute(statement)
        conn.close()
        with pytest.raises(ConfigurationError, match=r"schema migration 2 \(") as caught:
            SQLiteJournal(db_path)
        message = str(caught.value)
        assert "stays at version 1" in message
        assert "payments.provider, payments.provider_txn_id" in message
        conn = raw(db_path)
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM payments").fetchone() == (2,)
        columns = [r[1] for r in conn.execute("PRAGMA table_info(attempts)")]
        assert "recheck_until" not in columns
        conn.close()

    def test_a_new_file_gets_every_step(self, db_path: Path) -> None:
        SQLiteJournal(db_path).close()
        conn = raw(db_path)
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        assert versions == [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))
        conn.close()

    def test_reopening_applies_nothing_twice(self, db_path: Path) -> None:
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            paid_order(journal, clock)
        with SQLiteJournal(db_path, clock=clock) as journal:
            assert journal.counts().payments == 1
        conn = raw(db_path)
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == LATEST_VERSION
        conn.close()

    def test_an_old_file_is_brought_up_to_date_and_keeps_its_rows(self, db_path: Path) -> None:
        clock = ManualClock()
        with SQLiteJournal(db_path, clock=clock) as journal:
            paid_order(journal, clock)
        later = Migration(
            version=LATEST_VERSION + 1,
            name="payments note",
            statements=(
                "ALTER TABLE payments ADD COLUMN note TEXT NOT NULL DEFAULT ''",
                "CREATE INDEX payments_by_note ON payments (note)",
            ),
        )
        conn = raw(db_path)
        version = migrate(conn, applied_at="now", where="test", migrations=[*MIGRATIONS, later])
        assert version == LATEST_VERSION + 1
        assert conn.execute("SELECT order_id, note FROM payments").fetchall() == [("ord-1", "")]
        conn.close()

    def test_steps_apply_one_by_one_from_where_the_file_is(self, tmp_path: Path) -> None:
        steps = [
            Migration(1, "a", ("CREATE TABLE a (x INTEGER)",)),
            Migration(2, "b", ("CREATE TABLE b (x INTEGER)", "INSERT INTO b VALUES (2)")),
            Migration(3, "c", ("CREATE TABLE c (x INTEGER)",)),
        ]
        conn = raw(tmp_path / "steps.sqlite3")
        assert migrate(conn, applied_at="t1", where="test", migrations=steps[:1]) == 1
        assert migrate(conn, applied_at="t2", where="test", migrations=steps) == 3
        applied = conn.execute("SELECT version, applied_at FROM schema_version").fetchall()
        assert applied == [(1, "t1"), (2, "t2"), (3, "t2")]
        assert conn.execute("SELECT x FROM b").fetchall() == [(2,)]
        conn.close()

    def test_a_failing_step_is_rolled_back_alone(self, tmp_path: Path) -> None:
        steps = [
            Migration(1, "a", ("CREATE TABLE a (x INTEGER)",)),
            Migration(
                2, "broken", ("CREATE TABLE b (x INTEGER)", "INSERT INTO nowhere VALUES (1)")
            ),
        ]
        conn = raw(tmp_path / "broken.sqlite3")
        with pytest.raises(ConfigurationError, match=r"migration 2 \(broken\) failed") as caught:
            migrate(conn, applied_at="t", where="test", migrations=steps)
        assert "stays at version 1" in str(caught.value)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"schema_version", "a"}
        assert not conn.in_transaction
        conn.close()

    def test_a_newer_file_is_refused(self, db_path: Path) -> None:
        SQLiteJournal(db_path).close()
        conn = raw(db_path)
        conn.execute(
            "INSERT INTO schema_version VALUES (?, 'from the future', 't')", (LATEST_VERSION + 1,)
        )
        conn.close()
        with pytest.raises(ConfigurationError) as caught:
            SQLiteJournal(db_path)
        message = str(caught.value)
        assert f"schema version {LATEST_VERSION + 1}" in message
        assert f"only knows versions up to {LATEST_VERSION}" in message
        assert "Upgrade payfallback" in message

    def test_versions_must_count_from_one(self, tmp_path: Path) -> None:
        conn = raw(tmp_path / "gaps.sqlite3")
        with pytest.raises(ValueError, match="expected 1"):
            migrate(conn, applied_at="t", where="test", migrations=[Migration(2, "x", ())])
        conn.close()
