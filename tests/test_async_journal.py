"""The AsyncRouter's journal on the event loop.

With PostgreSQL the journal is awaited on the loop over psycopg's async pool: a charge
hands nothing to a worker thread. SQLite in WAL NORMAL commits on the loop too, unless that
could mean waiting (another process holds the write lock, another thread is in a
transaction); with FULL the journal calls go to a worker thread in batches, one batch at
a time, so the loop never waits on a disk sync. All are checked by counting what reaches the
loop's default executor (where ``asyncio.to_thread`` sends its work), against the real
PostgreSQL on 127.0.0.1 and real SQLite files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg.sql
import pytest
from pydantic import SecretStr

from payfallback import (
    AsyncRouter,
    Attempt,
    AttemptState,
    ConfigurationError,
    Instrument,
    ManualClock,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    Payment,
    RefundState,
    ReturnUrls,
    Router,
)
from payfallback.journal import AttemptInFlight, JournalCounts, SQLiteJournal
from payfallback.journal.postgres import AsyncPostgresJournal
from payfallback.router import BATCH_TURNS, after_turns
from payfallback.testing import FakeBank, FakeProvider, double_charges, mock_transport
from tests.test_journal import PG_URL, PgSchemas


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # asyncio.to_thread hands over partial(context.run, func, *args): name the func, or
        # for a journal call, the journal method it carries.
        target = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn
        if getattr(target, "__name__", "") == "run_batch":
            # A group commit: the journal operations it carries, in order.
            assert isinstance(fn, functools.partial)
            calls = fn.args[1]
            self.submitted.append("+".join(str(c.__self__.operation) for c in calls))
            return super().submit(fn, *args, **kwargs)
        owner = getattr(target, "__self__", None)
        operation = getattr(owner, "operation", None)
        self.submitted.append(str(operation or getattr(target, "__qualname__", repr(target))))
        return super().submit(fn, *args, **kwargs)


def run_counting(main: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, list[str]]:
    executor = CountingExecutor()

    async def counted() -> Any:
        asyncio.get_running_loop().set_default_executor(executor)
        return await main()

    try:
        return asyncio.run(counted()), executor.submitted
    finally:
        executor.shutdown()


@pytest.fixture
def schemas() -> Iterator[PgSchemas]:
    made = PgSchemas()
    try:
        yield made
    finally:
        made.drop()


def card(provider: str) -> Instrument:
    return Instrument(provider=provider, billing_key=SecretStr(f"bk-ok-{provider}"))


def order(order_id: str) -> Order:
    return Order(order_id=order_id, amount=Money(amount=4_500), name="Americano")


def test_a_postgresql_url_gives_the_async_router_an_async_journal_and_no_thread_hop(
    schemas: PgSchemas,
) -> None:
    url = f"{PG_URL}?schema={schemas.name('async_router')}&pool_size=2"
    toss, nice = FakeBank("toss"), FakeBank("nice")
    toss.refuse = True  # the primary is down: the charge fails over to NICE

    async def main() -> tuple[str, str, int, bool, type]:
        client = httpx.AsyncClient(transport=mock_transport(toss, nice))
        async with (
            client,
            AsyncRouter(
                [FakeProvider("toss"), FakeProvider("nice")], client=client, journal=url
            ) as router,
        ):
            payment = await router.charge(order("A-1"), [card("toss"), card("nice")])
            again = await router.charge(order("A-1"), [card("toss"), card("nice")])
            report = await router.recover()
            return (
                payment.provider,
                again.payment_id,
                payment.attempts,
                report.clean,
                type(router.journal),
            )

    (provider, again_id, attempts, clean, kind), submitted = run_counting(main)
    assert (provider, again_id, attempts, clean) == ("nice", "pay_A-1", 2, True)
    assert kind is AsyncPostgresJournal
    assert submitted == []
    assert [e.order_ref for e in nice.live_charges()] == ["A-1_2"]


class CountingOpens(AsyncPostgresJournal):
    """An AsyncPostgresJournal that counts how often it is asked to open."""

    opens = 0

    async def open(self) -> CountingOpens:
        type(self).opens += 1
        return await super().open()


def test_payments_arriving_at_once_on_a_new_router_open_the_journal_once(
    schemas: PgSchemas,
) -> None:
    journal = CountingOpens(PG_URL, schema=schemas.name("async_once"), pool_size=2)
    bank = FakeBank("toss")

    async def main() -> list[str]:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with client, AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as r:
            payments = await asyncio.gather(
                *(r.charge(order(f"O-{n}"), [card("toss")]) for n in range(8))
            )
        await journal.close()
        return sorted(p.payment_id for p in payments)

    paid, _ = run_counting(main)
    assert paid == sorted(f"pay_O-{n}" for n in range(8))
    assert CountingOpens.opens == 1


def test_an_async_postgres_journal_object_is_used_on_the_loop_and_left_open(
    schemas: PgSchemas,
) -> None:
    journal = AsyncPostgresJournal(PG_URL, schema=schemas.name("async_given"), pool_size=2)
    bank = FakeBank("toss")

    async def main() -> tuple[str, int]:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with client:
            await journal.open()
            async with AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as r:
                payment = await r.charge(order("B-1"), [card("toss")])
            # The Router did not own it: still open after the Router closed.
            found = await journal.payment_for_order("B-1")
            await journal.close()
            assert found is not None
            return found.payment_id, payment.attempts

    result, submitted = run_counting(main)
    assert result == ("pay_B-1", 1)
    assert submitted == []


def test_with_sqlite_full_a_charge_makes_two_hops_to_a_worker_thread(tmp_path: Path) -> None:
    bank = FakeBank("toss")

    async def main() -> str:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with (
            client,
            AsyncRouter(
                [FakeProvider("toss")],
                client=client,
                journal=f"sqlite:///{tmp_path / 'journal.sqlite3'}",
            ) as router,
        ):
            return (await router.charge(order("C-1"), [card("toss")])).payment_id

    payment_id, submitted = run_counting(main)
    assert payment_id == "pay_C-1"
    # The attempt before the request, the payment after; then closing the journal.
    assert submitted == ["begin_attempt", "record_success", "_RouterBase._close_journal"]


def _charge_with(journal: SQLiteJournal, bank: FakeBank, order_id: str) -> str:
    async def main() -> str:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with client:
            router = AsyncRouter([FakeProvider("toss")], client=client, journal=journal)
            return (await router.charge(order(order_id), [card("toss")])).payment_id

    payment_id, submitted = run_counting(main)
    return f"{payment_id} {submitted}"


def test_with_sqlite_normal_a_charge_commits_on_the_loop(tmp_path: Path) -> None:
    bank = FakeBank("toss")
    with SQLiteJournal(tmp_path / "journal.sqlite3", durable=False) as journal:
        assert _charge_with(journal, bank, "C-1") == "pay_C-1 []"
        assert journal.get_payment("pay_C-1") is not None


def test_while_another_process_writes_the_loop_hands_the_call_to_a_thread(
    tmp_path: Path,
) -> None:
    """Another connection (as another process would) holds the file's write lock for a
    moment: the charge's first journal call does not wait on the loop; it goes to a worker
    thread, which waits for the lock, and the loop goes on serving other coroutines."""
    path = tmp_path / "journal.sqlite3"
    bank = FakeBank("toss")
    with SQLiteJournal(path, durable=False) as journal:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        ticks: list[int] = []

        async def main() -> str:
            async def tick() -> None:
                while True:
                    ticks.append(1)
                    await asyncio.sleep(0.01)

            ticker = asyncio.ensure_future(tick())
            threading.Timer(0.3, other.execute, ("COMMIT",)).start()
            client = httpx.AsyncClient(transport=mock_transport(bank))
            async with client:
                router = AsyncRouter([FakeProvider("toss")], client=client, journal=journal)
                started = len(ticks)
                payment = await router.charge(order("C-2"), [card("toss")])
                waited = len(ticks) - started
            ticker.cancel()
            return f"{payment.payment_id} waited={waited > 0}"

        (result, submitted) = run_counting(main)
        other.close()
    assert result == "pay_C-2 waited=True"
    # The first call met the lock and went to a thread; the second found the file free.
    assert submitted == ["begin_attempt"]


def test_run_inline_runs_nothing_that_could_wait(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    ran: list[str] = []

    def call(journal: SQLiteJournal) -> str:
        ran.append(threading.current_thread().name)
        return journal.path

    with SQLiteJournal(path, durable=True) as full:
        assert full.run_inline(call) == (False, None), "FULL waits for the disk"
    with SQLiteJournal(":memory:", durable=True) as memory:
        assert memory.run_inline(call) == (True, ":memory:"), "a memory has no disk to wait on"
    ran.clear()
    with SQLiteJournal(path, durable=False) as journal:
        assert journal.run_inline(call) == (True, str(path))
        assert ran == [threading.current_thread().name]
        # Another thread of ours in a transaction: not now.
        entered, leave = threading.Event(), threading.Event()

        def hold() -> None:
            def in_transaction(_: SQLiteJournal) -> None:
                entered.set()
                leave.wait(5)

            journal.run_batch([in_transaction], wait=True)

        holder = threading.Thread(target=hold)
        holder.start()
        entered.wait(5)
        assert journal.run_inline(call) == (False, None)
        leave.set()
        holder.join()
        # Another process's write lock: handed back before anything was written.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        def begin(j: SQLiteJournal) -> object:
            return j.begin_attempt(
                order("C-9"),
                provider="toss",
                method=Method.CARD,
                operation="charge",
                idempotency_key="key-1",
                lease_seconds=60.0,
            )

        assert journal.run_inline(begin) == (False, None)
        # A batch takes the write lock first, whatever its calls do: a read is handed back
        # too (to a worker thread, where it runs at once: WAL readers never wait).
        assert journal.run_inline(lambda j: j.attempts_for_order("C-9")) == (False, None)
        other.execute("COMMIT")
        other.close()
        done, attempt = journal.run_inline(begin)
        assert done
        assert attempt is not None
        assert [a.attempt_id for a in journal.attempts_for_order("C-9")] == ["C-9_1"]
        assert len(ran) == 1


def begin_call(order_id: str, key: str) -> Callable[[SQLiteJournal], Attempt]:
    """A journal call (as ``run_batch`` takes them) beginning an attempt for a new order."""

    def call(j: SQLiteJournal) -> Attempt:
        return j.begin_attempt(
            order(order_id),
            provider="toss",
            method=Method.CARD,
            operation="charge",
            idempotency_key=key,
            lease_seconds=60.0,
        )

    return call


def test_a_call_that_may_wait_waits_for_the_lock_after_batches_that_may_not(
    tmp_path: Path,
) -> None:
    """A batch on the event loop begins with no busy timeout: another process's write lock
    hands it back at once. A transaction that may wait, after it (the paying thread's, a
    worker thread's batch), still waits for that lock; and the loop's next batch again
    does not."""
    path = tmp_path / "journal.sqlite3"

    def begin(order_id: str) -> Callable[[SQLiteJournal], Attempt]:
        return begin_call(order_id, f"key-{order_id}")

    with SQLiteJournal(path, durable=False) as journal:
        done, _ = journal.run_inline(begin("E-1"))
        assert done
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        releases: list[threading.Timer] = []

        def release_soon() -> threading.Timer:
            release = threading.Timer(0.3, other.execute, args=("COMMIT",))
            releases.append(release)
            release.start()
            return release

        try:
            other.execute("BEGIN IMMEDIATE")
            assert journal.run_inline(begin("E-2")) == (False, None)
            release = release_soon()
            # On this thread, outside a batch. Without its timeout back, this would fail at
            # once: "database is locked".
            attempt = begin("E-3")(journal)
            release.join()
            assert attempt.attempt_id == "E-3_1"
            other.execute("BEGIN IMMEDIATE")
            assert journal.run_inline(begin("E-4")) == (False, None)
            # A worker thread's batch waits too.
            release = release_soon()
            results = journal.run_batch([begin("E-5")], wait=True)
            release.join()
            assert results is not None
            assert results[0][0]
        finally:
            for release in releases:
                release.cancel()
                release.join()
            other.close()
        assert journal.get_order("E-2") is None
        assert journal.get_order("E-4") is None
        assert [o for o in ("E-1", "E-3", "E-5") if journal.get_order(o) is None] == []


def test_the_sync_router_refuses_an_async_journal() -> None:
    journal = AsyncPostgresJournal(PG_URL, schema="unused", pool_size=1)
    with pytest.raises(ConfigurationError, match="AsyncPostgresJournal goes with the AsyncRouter"):
        Router([FakeProvider("toss")], client=httpx.Client(), journal=journal)


def test_a_batch_commits_once_and_undoes_only_the_call_that_failed(tmp_path: Path) -> None:
    begin = begin_call

    def wrong(j: SQLiteJournal) -> object:
        # Writes, then fails: its write must not survive.
        begin("D-3", "key-3")(j)
        raise RuntimeError("the adapter's bug")

    with SQLiteJournal(tmp_path / "journal.sqlite3", durable=False) as journal:
        results = journal.run_batch(
            [begin("D-1", "key-1"), begin("D-1", "key-2"), wrong, begin("D-2", "key-4")]
        )
        assert results is not None
        assert [ok for ok, _ in results] == [True, False, False, True]
        assert isinstance(results[1][1], AttemptInFlight)
        assert str(results[2][1]) == "the adapter's bug"
        assert [a.attempt_id for a in journal.attempts_for_order("D-1")] == ["D-1_1"]
        assert journal.attempts_for_order("D-3") == []
        assert journal.get_order("D-3") is None
        assert [a.attempt_id for a in journal.attempts_for_order("D-2")] == ["D-2_1"]
        # Alone in its batch, the failing call is undone just the same.
        alone = journal.run_batch([wrong])
        assert alone is not None
        assert [(ok, str(error)) for ok, error in alone] == [(False, "the adapter's bug")]
        assert journal.get_order("D-3") is None


def test_a_batch_takes_savepoints_only_when_a_call_fails(tmp_path: Path) -> None:
    """A batch whose calls all succeed runs without savepoints (SQLite would copy every
    page each call changes to undo it), in one transaction. One with a call that raises is
    rolled back and run again, each call in a savepoint: the others' writes are committed
    exactly once and the failing call's not at all."""
    seen: list[str] = []
    ran: list[str] = []

    def begin(order_id: str) -> Callable[[SQLiteJournal], Attempt]:
        journal_call = begin_call(order_id, f"key-{order_id}")

        def call(j: SQLiteJournal) -> Attempt:
            ran.append(order_id)
            return journal_call(j)

        return call

    def wrong(j: SQLiteJournal) -> object:
        begin("S-bad")(j)
        raise RuntimeError("the adapter's bug")

    with SQLiteJournal(tmp_path / "journal.sqlite3", durable=False) as journal:
        journal._conn.set_trace_callback(seen.append)
        results = journal.run_batch([begin("S-1"), begin("S-2")])
        assert results is not None
        assert [ok for ok, _ in results] == [True, True]
        assert [s for s in seen if s.split()[0] in ("BEGIN", "SAVEPOINT", "COMMIT")] == [
            "BEGIN IMMEDIATE",
            "COMMIT",
        ]
        assert ran == ["S-1", "S-2"]

        seen.clear()
        ran.clear()
        results = journal.run_batch([begin("S-3"), wrong, begin("S-4")])
        assert results is not None
        assert [ok for ok, _ in results] == [True, False, True]
        assert str(results[1][1]) == "the adapter's bug"
        assert ran == ["S-3", "S-bad", "S-3", "S-bad", "S-4"]
        assert "ROLLBACK" in seen
        assert sum(s == "SAVEPOINT call" for s in seen) == 3
        journal._conn.set_trace_callback(None)
        for order_id in ("S-1", "S-2", "S-3", "S-4"):
            assert [a.attempt_id for a in journal.attempts_for_order(order_id)] == [f"{order_id}_1"]
        assert journal.get_order("S-bad") is None


def test_payments_in_flight_together_share_commits(tmp_path: Path) -> None:
    """With FULL, sixteen charges at once: their journal calls reach the worker thread in
    batches (one fsync for several payments), every payment recorded once."""
    bank = FakeBank("toss")

    async def main() -> list[str]:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with (
            client,
            AsyncRouter(
                [FakeProvider("toss")],
                client=client,
                journal=f"sqlite:///{tmp_path / 'journal.sqlite3'}",
            ) as router,
        ):
            payments = await asyncio.gather(
                *(router.charge(order(f"G-{n}"), [card("toss")]) for n in range(16))
            )
        return sorted(p.payment_id for p in payments)

    paid, submitted = run_counting(main)
    assert paid == sorted(f"pay_G-{n}" for n in range(16))
    operations = [op for batch in submitted[:-1] for op in batch.split("+")]
    assert sorted(operations) == ["begin_attempt"] * 16 + ["record_success"] * 16
    assert len(submitted) - 1 < 32, "no two journal calls shared a commit"
    assert len(bank.live_charges()) == 16


class BatchSizes(SQLiteJournal):
    """A journal that notes how many calls each batch it commits carries."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, durable=False)
        self.sizes: list[int] = []

    def run_batch(self, calls: Any, *, wait: bool = False) -> list[tuple[bool, Any]] | None:
        self.sizes.append(len(calls))
        return super().run_batch(calls, wait=wait)


def test_journal_calls_of_the_batch_turns_share_a_commit(tmp_path: Path) -> None:
    """A batch stays open ``BATCH_TURNS`` turns of the loop after its first call: a call
    made in each of those turns joins it; one made after it committed starts the next."""
    journal = BatchSizes(tmp_path / "journal.sqlite3")

    async def main() -> list[JournalCounts]:
        client = httpx.AsyncClient(transport=mock_transport(FakeBank("toss")))
        async with (
            client,
            AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as router,
        ):
            # Each task makes its call when it first runs, the turn after it is made:
            # one call in each of BATCH_TURNS turns in a row.
            calls = []
            for _ in range(BATCH_TURNS):
                calls.append(asyncio.ensure_future(router._batched(lambda j: j.counts())))
                await asyncio.sleep(0)
            together = await asyncio.gather(*calls)
            later = await router._batched(lambda j: j.counts())
            return [*together, later]

    counted = asyncio.run(main())
    assert len(counted) == BATCH_TURNS + 1
    assert journal.sizes == [BATCH_TURNS, 1]


def test_after_turns_counts_turns_of_the_loop() -> None:
    """``after_turns(loop, n, f)`` runs ``f`` in the n-th turn from now, whatever else
    runs meanwhile."""
    seen: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for n in (1, 2, BATCH_TURNS):
            after_turns(loop, n, partial(seen.append, f"after {n}"))
        for turn in range(1, BATCH_TURNS + 1):
            await asyncio.sleep(0)  # resumes in the next turn, after what it scheduled
            seen.append(f"turn {turn}")

    asyncio.run(main())
    expected = []
    for turn in range(1, BATCH_TURNS + 1):
        if turn in (1, 2, BATCH_TURNS):
            expected.append(f"after {turn}")
        expected.append(f"turn {turn}")
    assert seen == expected


class SlowCommits(SQLiteJournal):
    """A FULL journal whose every batch in a worker thread takes 20 ms more (a slow disk),
    counting how many run at once and how many calls each carries."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, durable=True)
        self.running = 0
        self.most_at_once = 0
        self.sizes: list[int] = []
        self._count = threading.Lock()

    def run_batch(self, calls: Any, *, wait: bool = False) -> list[tuple[bool, Any]] | None:
        if not wait:
            return super().run_batch(calls, wait=wait)
        with self._count:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.sizes.append(len(calls))
        try:
            threading.Event().wait(0.02)
            return super().run_batch(calls, wait=wait)
        finally:
            with self._count:
                self.running -= 1


def test_one_batch_at_a_time_goes_to_the_thread_and_the_rest_wait_for_the_next(
    tmp_path: Path,
) -> None:
    """Thirty-two payments, arriving a few at a time while a slow commit runs: what they
    journal meanwhile waits and goes as the next batch. No two batches are ever in the
    worker thread together (each would only queue there for the journal, one fsync per
    call), and the batches grow with how long a commit takes."""
    bank = FakeBank("toss")
    journal = SlowCommits(tmp_path / "journal.sqlite3")

    async def main() -> list[str]:
        client = httpx.AsyncClient(transport=mock_transport(bank))

        async def arrive(n: int) -> str:
            await asyncio.sleep(0.002 * n)  # a new customer every 2 ms
            return (await router.charge(order(f"S-{n}"), [card("toss")])).payment_id

        async with (
            client,
            AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as router,
        ):
            return sorted(await asyncio.gather(*(arrive(n) for n in range(32))))

    paid = asyncio.run(main())
    journal.close()
    assert paid == sorted(f"pay_S-{n}" for n in range(32))
    assert journal.most_at_once == 1
    assert sum(journal.sizes) == 64  # every begin_attempt and record_success, once
    # 64 calls over 64 ms of arrivals and 20 ms commits: a handful of batches, not 64.
    assert len(journal.sizes) <= 16, journal.sizes
    assert max(journal.sizes) >= 4, journal.sizes
    assert len(bank.live_charges()) == 32


class HoldOne:
    """A mock link to fake banks that answers every request but one: once ``armed``, the
    first request to ``bank``, which it keeps until the caller is cancelled (the shop's own
    deadline). With ``taken`` the bank makes it first: its answer is what is lost."""

    def __init__(self, bank: FakeBank, *others: FakeBank, taken: bool, armed: bool = True):
        self.banks = {b.host: b for b in (bank, *others)}
        self.bank, self.taken, self.armed = bank, taken, armed
        self.held: list[httpx.Request] = []
        #: Every request, in order, the held one included.
        self.sent: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        bank = self.banks[request.url.host]
        if self.armed and bank is self.bank and not self.held:
            self.held.append(request)
            if self.taken:
                bank.respond(request)
            await asyncio.Event().wait()
        return bank.respond(request)


@contextlib.asynccontextmanager
async def router_over(
    link: HoldOne, clock: ManualClock, path: Path, providers: list[FakeProvider] | None = None
) -> AsyncIterator[AsyncRouter]:
    """An AsyncRouter over ``link``'s banks (a card FakeProvider each, unless
    ``providers``), on ``clock``, with a SQLite journal at ``path``."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(link))
    if providers is None:
        providers = [FakeProvider(b.name) for b in link.banks.values()]
    async with (
        client,
        AsyncRouter(
            providers, client=client, journal=f"sqlite:///{path}", clock=clock, sleep=clock.asleep
        ) as router,
    ):
        yield router


@pytest.mark.parametrize("taken", [True, False], ids=["provider-took-it", "provider-never-did"])
def test_a_charge_cancelled_while_its_request_is_out_is_paid_once(
    tmp_path: Path, taken: bool
) -> None:
    """The shop's own deadline (``asyncio.timeout``) cancels a charge while its request is
    at the provider, which took the charge (or never got to it). The attempt stays
    journaled as possibly sent: the same order charged again at once, in the same process,
    waits for it and sends nothing elsewhere. Once its lease has run out, ``recover()``
    settles it by the provider's record: the charge found and journaled, or "not found"
    taken as proof only past the provider's settle window. Either way the order is paid
    once."""
    clock = ManualClock()
    toss, nice = FakeBank("toss", clock=clock), FakeBank("nice", clock=clock)
    link = HoldOne(toss, nice, taken=taken)

    async def main() -> None:
        async with router_over(link, clock, tmp_path / "journal.sqlite3") as router:
            journal = router.journal
            assert isinstance(journal, SQLiteJournal)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await router.charge(order("F-1"), [card("toss"), card("nice")])
            assert len(link.held) == 1
            assert len(toss.live_charges()) == (1 if taken else 0)
            [attempt] = journal.attempts_for_order("F-1")
            assert (attempt.provider, attempt.state) == ("toss", AttemptState.PENDING)
            # At once, in the same process: it may have been charged, so nothing is sent.
            with pytest.raises(OutcomeUnknown, match="in flight"):
                await router.charge(order("F-1"), [card("nice")])
            assert nice.requests["charge"] == 0
            clock.advance(120.0)  # the lease runs out
            report = await router.recover()
            assert report.resolved == [attempt.attempt_id]
            assert report.paid == ([attempt.attempt_id] if taken else [])
            payment = await router.charge(order("F-1"), [card("toss"), card("nice")])
            assert payment.provider == "toss"
            assert payment.attempt_id == (attempt.attempt_id if taken else "F-1_2")
            assert nice.requests["charge"] == 0

    asyncio.run(main())
    assert len(toss.live_charges()) == 1
    assert double_charges(toss, nice) == {}


def test_a_charge_cancelled_while_its_postgresql_write_waits_leaves_nothing_half_written(
    schemas: PgSchemas,
) -> None:
    """The shop's deadline cancels a charge whose first journal write is waiting on
    PostgreSQL (another transaction holds the same new order). psycopg cancels the
    statement and the transaction rolls back: no attempt is journaled and nothing is sent.
    The pool's one connection is usable again, so the order's next charge is its first
    attempt, paid once."""
    schema = schemas.name("cancelled_write")
    url = f"{PG_URL}?schema={schema}&pool_size=1"
    toss = FakeBank("toss")

    async def main() -> None:
        client = httpx.AsyncClient(transport=mock_transport(toss))
        async with (
            client,
            AsyncRouter([FakeProvider("toss")], client=client, journal=url) as router,
        ):
            await router.charge(order("G-0"), [card("toss")])  # the schema and the pool
            other = await psycopg.AsyncConnection.connect(PG_URL)
            try:
                await other.execute(
                    psycopg.sql.SQL(
                        "INSERT INTO {}.orders (order_id, amount, currency, order_json,"
                        " created_at) VALUES ('G-1', 4500, 'KRW', '{{}}', now())"
                    ).format(psycopg.sql.Identifier(schema))
                )
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await router.charge(order("G-1"), [card("toss")])
            finally:
                await other.rollback()
                await other.close()
            assert toss.requests["charge"] == 1  # G-0's only
            journal = router.journal
            assert isinstance(journal, AsyncPostgresJournal)
            assert await journal.attempts_for_order("G-1") == []
            payment = await router.charge(order("G-1"), [card("toss")])
            assert payment.attempt_id == "G-1_1"

    asyncio.run(main())
    assert [e.order_ref for e in toss.live_charges()] == ["G-0_1", "G-1_1"]


@pytest.mark.parametrize("durable", [False, True], ids=["on-the-loop", "in-the-thread"])
def test_a_charge_cancelled_after_the_provider_approved_it_still_journals_the_payment(
    tmp_path: Path, durable: bool
) -> None:
    """The provider approves the charge, and the shop's deadline cancels the charge while
    it waits for its success to be committed (in the loop's next journal batch, or the
    worker thread's with FULL). The batch still commits it: the order's next charge
    returns that payment without sending anything."""
    toss = FakeBank("toss")
    tasks: list[asyncio.Task[Payment]] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        response = toss.respond(request)
        if tasks:  # the first charge: cancelled once it next waits, for its success
            asyncio.get_running_loop().call_soon(tasks.pop().cancel)
        return response

    async def main() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        async with (
            client,
            AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as router,
        ):
            first = asyncio.create_task(router.charge(order("H-1"), [card("toss")]))
            tasks.append(first)
            with pytest.raises(asyncio.CancelledError):
                await first
            # Its journal calls go after the cancelled charge's, in the same batch or the
            # next one.
            again = await router.charge(order("H-1"), [card("toss")])
            assert again.attempt_id == "H-1_1"

    with SQLiteJournal(tmp_path / "journal.sqlite3", durable=durable) as journal:
        asyncio.run(main())
        assert [a.state for a in journal.attempts_for_order("H-1")] == [AttemptState.SUCCEEDED]
    assert toss.requests["charge"] == 1
    assert [e.order_ref for e in toss.live_charges()] == ["H-1_1"]


@pytest.mark.parametrize("taken", [True, False], ids=["provider-took-it", "provider-never-did"])
def test_a_refund_cancelled_while_its_request_is_out_is_refunded_once(
    tmp_path: Path, taken: bool
) -> None:
    """The shop's deadline cancels a refund while its request is at the provider, which
    made it (or never got to it). The refund was journaled as owed before it was sent, and
    stays owed: ``recover()`` settles it, and the customer gets the money back once."""
    clock = ManualClock()
    toss = FakeBank("toss", clock=clock)
    link = HoldOne(toss, taken=taken, armed=False)

    async def main() -> None:
        async with router_over(link, clock, tmp_path / "journal.sqlite3") as router:
            journal = router.journal
            assert isinstance(journal, SQLiteJournal)
            payment = await router.charge(order("J-1"), [card("toss")])
            link.armed = True
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await router.refund(payment.payment_id, reason="changed their mind")
            assert len(link.held) == 1
            assert [r.state for r in journal.refunds_owed()] == [RefundState.OWED]
            clock.advance(120.0)  # the refund's lease runs out
            report = await router.recover()
            assert report.refunds_still_owed == []
            assert [r.state for r in journal.refunds_for_order("J-1")] == [RefundState.SUCCEEDED]
            paid = journal.payment_for_order("J-1")
            assert paid is not None
            assert paid.refunded == payment.amount

    asyncio.run(main())
    [entry] = toss.ledger
    assert (entry.cancelled_amount, entry.live) == (entry.amount, False)


@pytest.mark.parametrize("taken", [True, False], ids=["provider-took-it", "provider-never-did"])
def test_a_checkout_return_cancelled_while_its_approval_is_out_is_paid_once(
    tmp_path: Path, taken: bool
) -> None:
    """The customer comes back from the wallet, and the shop's handler of the return is
    cancelled (its deadline, a dropped connection) while the approval is at the provider,
    which made it (or never got to it). The browser calls the return again: the approval is
    in flight, so nothing is sent. Once its lease has run out, the next return settles it,
    and the customer pays once."""
    clock = ManualClock()
    kakao = FakeBank("kakaopay", clock=clock)
    link = HoldOne(kakao, taken=taken, armed=False)
    wallet = [FakeProvider("kakaopay", methods=[Method.KAKAOPAY])]
    urls = ReturnUrls(
        success="https://shop.example/ok",
        cancel="https://shop.example/no",
        fail="https://shop.example/fail",
    )

    async def main() -> None:
        async with router_over(link, clock, tmp_path / "journal.sqlite3", wallet) as router:
            session = await router.start_checkout(order("K-1"), Method.KAKAOPAY, urls)
            tid = session.provider_txn_id
            assert tid is not None
            back = {"token": f"ok-{tid}", "tid": tid}
            link.armed = True
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await router.complete_checkout(session.session_id, back)
            assert len(link.held) == 1
            with pytest.raises(OutcomeUnknown, match="in flight"):
                await router.complete_checkout(session.session_id, back)
            clock.advance(120.0)  # the approval's lease runs out
            payment = await router.complete_checkout(session.session_id, back)
            assert (payment.order_id, payment.provider) == ("K-1", "kakaopay")
            again = await router.complete_checkout(session.session_id, back)
            assert again == payment

    asyncio.run(main())
    assert [e.order_ref for e in kakao.live_charges()] == ["K-1_1"]
    # The approval went out again under the same key: the provider's replay of the one it
    # made answered (or it made it then, the first never having arrived).
    approvals = [r for r in link.sent if r.url.path.endswith("/approve")]
    assert len({r.headers["Idempotency-Key"] for r in approvals}) == 1
    assert (len(approvals), kakao.requests["approve"]) == (2, 2 if taken else 1)
