"""Several Router processes sharing Redis (breaker state) and PostgreSQL (the journal).

Two stories, against the real servers (Redis at 127.0.0.1:6379, PostgreSQL at
``PAYFALLBACK_TEST_POSTGRES``), each test in a Redis namespace and a PostgreSQL schema of
its own, both removed afterwards:

* Four OS processes charge overlapping order ids through their own ``Router`` and
  ``httpx.Client`` against two fake providers served over real loopback HTTP by this (the
  test) process, whose banks keep the ledgers. Bank A starts failing; one process sees every
  failure, and the breaker opens in all four, including one that sees it only through the
  refresher and one that starts afterwards. No order is charged twice and each has one
  payment in PostgreSQL.
* Redis goes away while a Router is taking payments: they keep succeeding on local state,
  the Router says so once (``storage.degraded``), a trip made meanwhile becomes everyone's
  when Redis is back (``storage.recovered``).

Bank A fails with ``503 MAINTENANCE`` (``Fault.UNAVAILABLE_503``), a clean "not processed"
answer: each failure counts against A's breaker and the Router reroutes the order to B at
once, so the failures drive the breaker and nothing else. A reset connection
(``bank.refuse``) would be a maybe-sent outcome instead: the Router would hold each order
for status inquiries (which the refusing bank also resets) and never reroute it, which tests
the unknown-outcome path, not the breaker shared between processes.

The processes wait on one another and on the shared state with bounded polls; nothing
asserts on time.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg
import pytest
import redis
from psycopg import sql
from pydantic import SecretStr

from payfallback import (
    Instrument,
    ManualClock,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    RetryPolicy,
    Router,
)
from payfallback.breaker import BreakerPolicy, BreakerSettings, BreakerState, CircuitBreaker
from payfallback.breaker.redis import RedisStateStore
from payfallback.errors import OutcomeUnknown
from payfallback.journal.postgres import PostgresJournal
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import (
    FakeBank,
    FakeProvider,
    FakeServer,
    Fault,
    double_charges,
    mock_transport,
)
from tests.test_redis_store import DEAD_PORT, REDIS_HOST, REDIS_PORT, CountingRedis, pool

# The same server and variable as tests/test_journal.py (not imported from there: the worker
# processes import this module, and that one pulls in hypothesis).
PG_URL = os.environ.get("PAYFALLBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"

A, B = "bank-a", "bank-b"
CARD = Method.CARD.value

#: No peak windows (a run on a Friday evening must judge by the same numbers), an open time
#: far longer than the test (no half-open probe is ever due), and a failure-rate trip.
SETTINGS = BreakerSettings(
    window_seconds=60.0,
    minimum_calls=5,
    failure_rate_threshold=0.5,
    hard_failure_run=3,
    open_seconds=120.0,
    max_open_seconds=300.0,
    connect_timeout=2.0,
    read_timeout=5.0,
)
POLICY = BreakerPolicy(normal=SETTINGS)

Event = tuple[str, dict[str, object]]


def order(order_id: str) -> Order:
    return Order(order_id=order_id, amount=Money(amount=12_000), name="아이스 라떼")


INSTRUMENTS = (
    Instrument(provider=A, billing_key=SecretStr("bk-ok-a-0001")),
    Instrument(provider=B, billing_key=SecretStr("bk-ok-b-0001")),
)


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (a call, so the type checker does not pin it)."""
    return breaker.state


class Recorder:
    """A Router listener keeping the breaker and storage events (not every payment's)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        if name.startswith(("breaker.", "storage.")):
            self.events.append((name, dict(fields)))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def named(self, name: str) -> list[dict[str, object]]:
        return [fields for n, fields in self.events if n == name]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    client = redis.Redis(connection_pool=pool())
    yield client
    client.close()


@pytest.fixture
def namespace(admin: redis.Redis) -> Iterator[str]:
    """A Redis namespace of this test's own; its keys (and only those) are deleted after."""
    ns = f"pftest-scale-{uuid.uuid4().hex[:12]}"
    yield ns
    for key in admin.scan_iter(match=f"{ns}:*"):
        admin.delete(key)


@pytest.fixture
def schema() -> Iterator[str]:
    """A PostgreSQL schema of this test's own, dropped after."""
    name = f"pf_test_{uuid.uuid4().hex[:12]}_scale"
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def journal_url(schema: str) -> str:
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


# -- several processes ------------------------------------------------------------------------

Role = Literal["witness", "watcher", "late"]


@dataclass(frozen=True)
class Plan:
    """What one worker process charges, and when.

    ``before`` is charged while bank A is healthy (by the early workers, at once); ``after``
    once the worker's role lets it: the witness as soon as A fails (it sees every failure),
    a watcher once its own breaker for A reads OPEN, the late worker once the breaker is
    open in Redis (it has not looked at it before).
    """

    index: int
    role: Role
    before: tuple[str, ...]
    after: tuple[str, ...]


@dataclass
class Report:
    """What one worker saw, sent back through the queue."""

    index: int
    role: Role
    #: order id -> (provider, provider_txn_id, payment_id) of the Payment it was given.
    paid: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: Requests this process sent to bank A: in all, before ``after``, and when it heard
    #: ``breaker.opened`` for A (``None`` if it never did).
    a_sent: int = 0
    a_sent_before: int = 0
    a_sent_when_opened: int | None = None
    #: The late worker's first look at A's breaker.
    first_look: str | None = None
    state_at_end: str = ""
    events: list[Event] = field(default_factory=list)
    #: ``OutcomeUnknown`` answers ("in flight elsewhere; ask again shortly") asked again.
    asked_again: int = 0
    error: str | None = None


def _charge_all(router: Router, order_ids: tuple[str, ...], report: Report) -> None:
    for order_id in order_ids:
        for _ in range(5):  # what a merchant does with "ask again shortly"
            try:
                payment = router.charge(order(order_id), INSTRUMENTS)
            except OutcomeUnknown:
                report.asked_again += 1
                continue
            if payment.status is not PaymentStatus.PAID:
                raise AssertionError(f"{order_id}: {payment.status}")
            report.paid[order_id] = (
                payment.provider,
                payment.provider_txn_id,
                payment.payment_id,
            )
            break
        else:
            raise AssertionError(f"{order_id} was never settled")


def _wait_until_open(breaker: CircuitBreaker, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while state(breaker) is not BreakerState.OPEN and time.monotonic() < deadline:
        time.sleep(0.01)


def _work(
    plan: Plan,
    urls: dict[str, str],
    namespace: str,
    journal: str,
    phase1_done: Any,
    a_failing: Any,
    tripped: Any,
) -> Report:
    report = Report(plan.index, plan.role)
    a_path = f"/{A}/"

    def count(request: httpx.Request) -> None:
        if request.url.path.startswith(a_path):
            report.a_sent += 1

    def listen(name: str, fields: Mapping[str, Any]) -> None:
        if not name.startswith(("breaker.", "storage.")):
            return
        report.events.append((name, dict(fields)))
        opened_a = name == "breaker.opened" and fields["provider"] == A
        if opened_a and report.a_sent_when_opened is None:
            report.a_sent_when_opened = report.a_sent

    # A generous Redis timeout: this test is about sharing, not about a slow Redis, and four
    # processes plus PostgreSQL on a small machine must not look like an outage.
    store = RedisStateStore.from_url(
        REDIS_URL, namespace=namespace, timeout=1.0, refresh_interval=0.05
    )
    with (
        httpx.Client(event_hooks={"request": [count]}) as client,
        Router(
            [FakeProvider(A, base_url=urls[A]), FakeProvider(B, base_url=urls[B])],
            client=client,
            journal=journal,
            state_store=store,
            breaker_policy=POLICY,
            retry=RetryPolicy(deadline=30.0),
            listeners=[listen],
        ) as router,
    ):
        try:
            breaker = router.breakers.get(A, CARD)
            if plan.role != "late":
                _charge_all(router, plan.before, report)
                phase1_done.wait(timeout=60)
            report.a_sent_before = report.a_sent
            if plan.role == "witness":
                a_failing.wait(timeout=60)
            elif plan.role == "watcher":
                _wait_until_open(breaker, 30.0)
            else:
                tripped.wait(timeout=60)
                report.first_look = str(state(breaker))
            _charge_all(router, plan.after, report)
            report.state_at_end = str(state(breaker))
        finally:
            store.shutdown()
    return report


def _worker(
    plan: Plan,
    urls: dict[str, str],
    namespace: str,
    journal: str,
    phase1_done: Any,
    a_failing: Any,
    tripped: Any,
    results: Any,
) -> None:
    """One payment process: its own Router, httpx client, Redis store and journal pool."""
    try:
        report = _work(plan, urls, namespace, journal, phase1_done, a_failing, tripped)
    except BaseException:
        # Handed to the test, which fails with it, rather than a bare queue timeout.
        report = Report(plan.index, plan.role, error=traceback.format_exc())
    results.put(report)


def _failures(results: Any) -> str:
    """Tracebacks of the workers that failed, from what is left in the queue."""
    found = []
    while True:
        try:
            report: Report = results.get(timeout=2)
        except queue.Empty:
            break
        if report.error:
            found.append(f"worker {report.index} ({report.role}):\n{report.error}")
    return "\n".join(found) or "no worker reported an error"


ORDER_IDS = [f"SO-{n:02d}" for n in range(40)]
#: Failures the witness needs at most: one per success it saw while A was healthy (the
#: failure rate reaches 0.5), and at least ``minimum_calls`` calls in all.
BEFORE = 6
FRESH = 10


def plans() -> list[Plan]:
    """4 workers x 30 orders from 40 ids: overlapping, drawn with a fixed seed.

    The ids the three early workers charge while A is healthy come from the first half; the
    witness's first ``FRESH`` orders once A fails come from the second half, so nobody has
    paid them and each one goes to A first: the breaker trips within them whatever the
    early workers' races left in the witness's window.
    """
    rng = random.Random(20221015)
    first, second = ORDER_IDS[:20], ORDER_IDS[20:]
    early: list[tuple[int, Role]] = [(0, "witness"), (1, "watcher"), (2, "watcher")]
    out: list[Plan] = []
    for index, role in early:
        before = tuple(rng.sample(first, BEFORE))
        if role == "witness":
            fresh = rng.sample(second, FRESH)
            rest = rng.sample([i for i in ORDER_IDS if i not in fresh], 30 - BEFORE - FRESH)
            after = tuple(fresh + rest)
        else:
            after = tuple(rng.sample(ORDER_IDS, 30 - BEFORE))
        out.append(Plan(index, role, before, after))
    out.append(Plan(3, "late", (), tuple(rng.sample(ORDER_IDS, 30))))
    return out


def test_four_processes_share_one_breaker_and_never_charge_twice(
    namespace: str, schema: str, admin: redis.Redis
) -> None:
    bank_a, bank_b = FakeBank(A), FakeBank(B)
    all_plans = plans()
    early = [p for p in all_plans if p.role != "late"]
    context = multiprocessing.get_context("spawn")
    phase1_done = context.Barrier(len(early) + 1)
    a_failing, tripped = context.Event(), context.Event()
    results = context.Queue()
    breaker_key = f"{namespace}:breaker:{{{A}:{CARD}}}"

    # The schema is made here, once, rather than by four processes racing to migrate it.
    with (
        PostgresJournal(PG_URL, schema=schema, pool_size=2) as journal,
        FakeServer(bank_a, bank_b) as server,
    ):
        urls = {A: server.url_for(bank_a), B: server.url_for(bank_b)}
        processes = [
            context.Process(
                target=_worker,
                args=(
                    plan,
                    urls,
                    namespace,
                    journal_url(schema),
                    phase1_done,
                    a_failing,
                    tripped,
                    results,
                ),
            )
            for plan in all_plans
        ]
        for process in processes:
            process.start()
        reports: dict[int, Report] = {}
        try:
            phase1_done.wait(timeout=60)  # the early workers have paid their first orders
            bank_a.set_mode(Fault.UNAVAILABLE_503)
            a_failing.set()
            deadline = time.monotonic() + 30.0
            while admin.hget(breaker_key, "state") != b"open" and time.monotonic() < deadline:
                time.sleep(0.01)
            tripped.set()
            for _ in processes:
                report = results.get(timeout=60)
                reports[report.index] = report
        except Exception as exc:
            # A worker that failed early leaves the others waiting: show its traceback.
            raise AssertionError(_failures(results)) from exc
        finally:
            a_failing.set()
            tripped.set()
            for process in processes:
                process.join(timeout=30)
        for process in processes:
            if process.is_alive():
                process.kill()

        errors = [r.error for r in reports.values() if r.error]
        assert errors == []
        assert [p.exitcode for p in processes] == [0] * len(processes)

        # -- the breaker: opened once, in Redis, by the failures one process saw ----------
        shared = admin.hgetall(breaker_key)
        assert (shared[b"state"], shared[b"trips"]) == (b"open", b"1")
        raw_reason = shared[b"reason"]
        reason = raw_reason.decode() if isinstance(raw_reason, bytes) else raw_reason
        assert reason.startswith("failure rate")
        failures = bank_a.faults[Fault.UNAVAILABLE_503]
        witness = reports[0]
        # Every 503 from A went to the witness, and it sent A nothing after hearing the trip.
        assert witness.a_sent_when_opened is not None
        assert witness.a_sent_when_opened - witness.a_sent_before == failures
        assert 1 <= failures <= max(BEFORE, SETTINGS.minimum_calls)
        for report in reports.values():
            opened = [f for n, f in report.events if n == "breaker.opened" and f["provider"] == A]
            assert len(opened) == 1, (report.index, report.events)
            assert (opened[0]["reason"], opened[0]["trips"]) == (reason, 1)
            assert report.state_at_end == "open", report
            assert report.a_sent == report.a_sent_when_opened, report  # nothing sent to A after
            assert not [n for n, _ in report.events if n.startswith("storage.")]
        for report in (reports[1], reports[2]):  # saw no failure: learned it from Redis
            assert report.a_sent == report.a_sent_before, report
        late = reports[3]
        assert late.first_look == "open"
        assert late.a_sent == 0

        # -- the money: one payment per order, one live charge per order ----------------------
        assert double_charges(bank_a, bank_b) == {}
        charged = {order_id for plan in all_plans for order_id in plan.before + plan.after}
        with psycopg.connect(PG_URL, autocommit=True, options=f"-c search_path={schema}") as conn:
            per_order: dict[str, int] = dict(
                conn.execute("SELECT order_id, COUNT(*) FROM payments GROUP BY order_id")
            )
            attempts: dict[str, int] = dict(
                conn.execute("SELECT state, COUNT(*) FROM attempts GROUP BY state")
            )
            failed_at: dict[str, int] = dict(
                conn.execute(
                    "SELECT provider, COUNT(*) FROM attempts WHERE state = 'failed' "
                    "GROUP BY provider"
                )
            )
        assert per_order == dict.fromkeys(charged, 1)
        # Every attempt settled: paid, or failed at A with a 503 (and rerouted).
        assert attempts == {"succeeded": len(charged), "failed": failures}
        assert failed_at == {A: failures}
        banks = {A: bank_a, B: bank_b}
        for order_id in sorted(charged):
            payment = journal.payment_for_order(order_id)
            assert payment is not None
            live = [e for e in banks[payment.provider].charges_for_order(order_id) if e.live]
            assert [e.txn_id for e in live] == [payment.provider_txn_id]
            other = B if payment.provider == A else A
            assert [e for e in banks[other].charges_for_order(order_id) if e.live] == []
            told = {r.paid[order_id] for r in reports.values() if order_id in r.paid}
            assert told == {(payment.provider, payment.provider_txn_id, payment.payment_id)}
        # Both ledgers took part: A before it failed, B after.
        assert bank_a.live_charges()
        assert bank_b.live_charges()


# -- Redis going away under a Router ----------------------------------------------------------


def test_a_redis_outage_is_ridden_out_and_what_was_learned_is_shared_after(
    namespace: str, admin: redis.Redis, tmp_path: Path
) -> None:
    clock = ManualClock()
    bank_a, bank_b = FakeBank(A, clock=clock), FakeBank(B, clock=clock)
    up, down = pool(), pool(DEAD_PORT)
    client = CountingRedis(connection_pool=up)
    store = RedisStateStore(client, namespace=namespace, clock=clock, refresh_interval=3600.0)
    # The refresher would run every hour: each store.refresh() below stands for one of its
    # ticks, so the test decides when the outage is noticed and when it ends.
    heard = Recorder()
    other_store = RedisStateStore(
        redis.Redis(connection_pool=pool()),
        namespace=namespace,
        clock=clock,
        refresh_interval=3600.0,
    )
    paid: list[Payment] = []
    with (
        SQLiteJournal(tmp_path / "shop.sqlite3", clock=clock) as journal,
        SQLiteJournal(tmp_path / "other.sqlite3", clock=clock) as other_journal,
        httpx.Client(transport=mock_transport(bank_a, bank_b)) as http,
        Router(
            [FakeProvider(A), FakeProvider(B)],
            client=http,
            journal=journal,
            state_store=store,
            breaker_policy=POLICY,
            clock=clock,
            sleep=clock.sleep,
            listeners=[heard],
        ) as router,
        httpx.Client(transport=mock_transport(bank_a, bank_b)) as other_http,
        Router(
            [FakeProvider(A), FakeProvider(B)],
            client=other_http,
            journal=other_journal,
            state_store=other_store,
            breaker_policy=POLICY,
            clock=clock,
            sleep=clock.sleep,
        ) as other_router,
    ):
        try:
            breaker = router.breakers.get(A, CARD)
            paid += [router.charge(order(f"UP-{n}"), INSTRUMENTS) for n in range(2)]
            assert store.refresh()
            assert not store.degraded

            # Redis goes away; the refresher's next tick notices.
            client.connection_pool = down
            assert not store.refresh()
            assert store.degraded
            assert heard.named("storage.degraded") == [
                {"store": "redis", "namespace": namespace, "error": "ConnectionError"}
            ]
            sent_before = len(client.mine())

            # Payments go on, on this process's own judgement: A fails, they reroute to B,
            # and A's breaker opens locally.
            paid += [router.charge(order(f"DOWN-{n}"), INSTRUMENTS) for n in range(2)]
            bank_a.set_mode(Fault.UNAVAILABLE_503)
            down_paid = [router.charge(order(f"FAIL-{n}"), INSTRUMENTS) for n in range(8)]
            paid += down_paid
            assert state(breaker) is BreakerState.OPEN
            a_requests = bank_a.requests["charge"]
            paid.append(router.charge(order("FAIL-8"), INSTRUMENTS))
            assert bank_a.requests["charge"] == a_requests  # skipped, not tried
            # Not one of these payments waited on Redis: the outage was known, so no call
            # was even attempted from the paying thread.
            assert len(client.mine()) == sent_before
            clock.advance(30.0)
            assert not store.refresh()  # still down: nothing new is said
            assert heard.names() == ["storage.degraded", "breaker.opened"]
            # Another process, which can reach Redis, has not heard of the trip.
            assert other_store.refresh()
            assert other_router.breakers.get(A, CARD).state is BreakerState.CLOSED

            # Redis is back: the trip made meanwhile is pushed, and shared again.
            client.connection_pool = up
            assert store.refresh()
            assert not store.degraded
            recovered = heard.named("storage.recovered")
            assert recovered == [{"store": "redis", "namespace": namespace, "outage_seconds": 30.0}]
            assert heard.names() == ["storage.degraded", "breaker.opened", "storage.recovered"]
            key = store.redis_key(breaker.key)
            assert admin.hget(key, "state") == b"open"
            reason = heard.named("breaker.opened")[0]["reason"]
            assert admin.hget(key, "reason") == str(reason).encode()
            assert state(breaker) is BreakerState.OPEN  # no flicker on the way back

            assert other_store.refresh()
            a_requests = bank_a.requests["charge"]
            elsewhere = other_router.charge(order("AFTER-1"), INSTRUMENTS)
            assert elsewhere.provider == B
            assert bank_a.requests["charge"] == a_requests  # the other process skips A too
        finally:
            store.shutdown()
            other_store.shutdown()
            client.close()

    assert all(p.status is PaymentStatus.PAID for p in paid)
    assert [p.provider for p in paid[:4]] == [A] * 4
    assert {p.provider for p in down_paid} == {B}
    assert double_charges(bank_a, bank_b) == {}
