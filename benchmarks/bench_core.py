"""What payfallback's core costs on the happy path, as ratios measured in one run.

Two comparisons, each against the alternative a merchant would otherwise use:

* **Breaker**: ``CircuitBreaker.admit()`` + ``record()`` around a trivial call, against
  ``pybreaker.CircuitBreaker().call(fn)``. The bare ``fn()`` (plus loop) is measured too and
  subtracted from both, so the goal (at most 0.4x) is judged on the breakers' own cost.
  Measured twice: with the fresh window of a new breaker, and with the full window a
  breaker holds under steady traffic (every bucket of its sliding window in use).
  ``bench_breakers.py`` adds purgatory and aiobreaker.
* **Router**: ``Router.charge(order, [instrument])`` for a new order each call, against
  the bare request (``FakeProvider.build_charge`` + ``Client.send``) on the same
  ``httpx.Client`` and the same in-memory ``MockTransport`` to a ``FakeBank``; likewise the
  async ``Router.charge`` against a bare ``AsyncClient.send``. The journal is a SQLite file
  in WAL mode, with ``synchronous=NORMAL`` (``durable=False``; goal at most 3x, sync and
  async) and with ``synchronous=FULL`` (``durable=True``: an fsync per commit; goal at most
  6x). A charge commits twice before it returns, and those two commits alone cost more
  than the bare in-memory request, so the goals are set above what two commits cost. The
  bank answers in microseconds, so these ratios are the worst case: against a real
  provider's tens or hundreds of milliseconds the same absolute overhead is noise. The
  sync pair is also measured over real loopback HTTP (``FakeServer``; goal at most 1.4x).
* **The floor under the Router**: what any design that journals a charge as the Router
  does must pay, measured in the same rounds: the bare request, parsed by the adapter,
  plus the Router's own four statements of a new order's charge (from
  ``payfallback.journal._transactions``, as the SQLite journal translates them) in its two
  transactions, on a journal file of the same schema and settings, and its two events
  written through structlog as the Router writes them. Nothing else: no checks, no
  models, no masking, no breaker, no retries. Reported against the bare request and the
  Router against it: NORMAL, FULL, async NORMAL and over loopback HTTP, and NORMAL with
  INFO events filtered (against the Router's row of the same name); it has no goal.
  Where the floor is itself above a goal, the goal cannot be met with this schema's
  constraints and these events.

Every variant of a group is measured in the same rounds, interleaved (the order rotates
each round), so machine noise hits them alike; each round runs a batch of operations timed
with ``time.perf_counter_ns``, after a warm-up. Reported: the median per-operation time
over rounds with its interquartile range, and the median of the per-round (paired) ratios.
The Router's events are rendered as JSON at INFO into a null sink, as a production setup
would pay for them; one extra variant shows the cost with INFO events filtered out.

Run ``python benchmarks/bench_core.py [--quick] [--json out.json] [--profile]
[--journal-dir DIR]``; ``--quick`` is a smoke run of a few seconds (its figures are rough),
``--profile`` adds each step of one charge timed alone and a cProfile summary.
:func:`run` returns the same figures as a dict for programmatic use.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import itertools
import logging
import os
import platform
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import httpx
import pybreaker
from pydantic import SecretStr

from benchmarks._events import event_logging
from benchmarks._output import store_json
from payfallback import (
    AsyncRouter,
    Attempt,
    Instrument,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Router,
)
from payfallback.breaker import BreakerPolicy, BreakerRegistry, BreakerSettings, CircuitBreaker
from payfallback.events import Events
from payfallback.journal import SQLiteJournal
from payfallback.journal import _transactions as statements
from payfallback.journal._checks import answer_json, receipt_json
from payfallback.journal.sqlite import _translate, _ts
from payfallback.provider import Approved, ChargeRequest
from payfallback.router import BATCH_TURNS, after_turns
from payfallback.testing import FakeBank, FakeProvider, FakeServer, mock_transport
from payfallback.transports import let_go

__all__ = [
    "Floor",
    "Report",
    "Row",
    "Step",
    "bare_charge",
    "format_table",
    "grouped",
    "main",
    "paid_by",
    "run",
]

#: Runs ``n`` operations of one variant and returns the nanoseconds they took (setup such
#: as building the orders happens before the clock starts).
Batch = Callable[[int], int]

BREAKER_GOAL = 0.4
#: Router.charge over the bare request on MockTransport, WAL synchronous=NORMAL (sync and
#: async alike); with synchronous=FULL; and over loopback HTTP (NORMAL).
ROUTER_GOAL = 3.0
ROUTER_FULL_GOAL = 6.0
LOOPBACK_GOAL = 1.4
_CURRENCY = "KRW"
#: The lease the floor's attempt is written with (the Router's default).
_LEASE = timedelta(seconds=120)


class Row(TypedDict):
    """One line of the report. Times are nanoseconds per operation."""

    name: str
    #: Median over rounds, its quartiles and the fastest round.
    ns_per_op: float
    ns_p25: float
    ns_p75: float
    ns_min: float
    #: The row this one is compared with (``None`` for a baseline).
    baseline: str | None
    #: Median of the per-round ratios to the baseline, and their quartiles.
    ratio: float | None
    ratio_p25: float | None
    ratio_p75: float | None
    #: Fastest round over fastest round of the baseline: the least noisy estimate on a
    #: busy machine (both minima are the runs that were disturbed least).
    ratio_of_mins: float | None
    goal: float | None
    met: bool | None


class Report(TypedDict):
    meta: dict[str, Any]
    breaker: list[Row]
    router: list[Row]
    #: cProfile text of ``Router.charge`` (only when asked for).
    profile: str | None
    #: ``(step, ns)`` for each step of one charge, measured alone (only with the profile).
    components: list[tuple[str, float]] | None
    #: ``(part, ns)``: one ``Router.charge`` split into its journal calls, its sends and
    #: the rest, timed in place (only with the profile).
    split: list[tuple[str, float]] | None


@dataclass(frozen=True)
class _Plan:
    warmup: int
    breaker_rounds: int
    breaker_batch: int
    router_rounds: int
    router_batch: int
    profile_calls: int


_FULL = _Plan(
    warmup=3,
    breaker_rounds=31,
    breaker_batch=5000,
    router_rounds=31,
    router_batch=60,
    profile_calls=1000,
)
_QUICK = _Plan(
    warmup=1,
    breaker_rounds=7,
    breaker_batch=1000,
    router_rounds=7,
    router_batch=20,
    profile_calls=200,
)


class BenchmarkError(RuntimeError):
    """An operation did not take the happy path: its timing would mean nothing."""


# -- measuring ---------------------------------------------------------------------------------


def _measure(
    variants: dict[str, Batch], *, rounds: int, batch: int, warmup: int
) -> dict[str, list[float]]:
    """Per-round ns/op of each variant; each round runs every variant once, in rotated order."""
    names = list(variants)
    for name in names:
        for _ in range(warmup):
            variants[name](batch)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            # Start each batch without the previous variant's garbage; collections that the
            # batch itself causes stay in its time.
            gc.collect()
            samples[name].append(variants[name](batch) / batch)
    return samples


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def _row(
    name: str,
    per_op: Sequence[float],
    *,
    baseline: str | None = None,
    ratios: Sequence[float] | None = None,
    baseline_per_op: Sequence[float] | None = None,
    goal: float | None = None,
) -> Row:
    p25, med, p75 = _quartiles(per_op)
    r25 = rmed = r75 = None
    if ratios is not None:
        r25, rmed, r75 = _quartiles(ratios)
    return Row(
        name=name,
        ns_per_op=med,
        ns_p25=p25,
        ns_p75=p75,
        ns_min=min(per_op),
        baseline=baseline,
        ratio=rmed,
        ratio_p25=r25,
        ratio_p75=r75,
        ratio_of_mins=None if baseline_per_op is None else min(per_op) / min(baseline_per_op),
        goal=goal,
        met=None if goal is None or rmed is None else rmed <= goal,
    )


def _paired(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]


def _minus(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x - y for x, y in zip(a, b, strict=True)]


# -- breaker -----------------------------------------------------------------------------------


def _noop() -> None:
    return None


class SteadyClock:
    """A clock for a breaker under steady traffic: monotonic time moves ``step`` seconds on
    each reading, wall time is real.

    The monotonic reading is one C call (an ``itertools.count``), as cheap as
    ``time.monotonic``, so the figures are the breaker's and not a Python clock's. At the
    default 1 ms a reading (one ``admit()`` + ``record()`` reads it twice), a 0.5 s bucket of
    the default policy's window takes 250 calls and its 120 s of buckets are all in use after
    60,000: a shop taking 500 payments a second. :func:`fill` gets a breaker there.
    """

    def __init__(self, start: float = 1000.0, step: float = 0.001) -> None:
        self.monotonic: Callable[[], float] = itertools.count(start, step).__next__

    def now(self) -> datetime:
        return datetime.now(UTC)


#: The default policy's normal settings, without its peak windows (Friday to Sunday
#: 17:00-21:00 KST, a 30 s window): a breaker's figures do not depend on the hour they are
#: taken.
STEADY_POLICY = BreakerPolicy(normal=BreakerSettings())


def bench_breaker_of(clock: SteadyClock | None = None) -> CircuitBreaker:
    """A breaker of :data:`STEADY_POLICY` (on ``clock``, else the system's), as a Router
    gets one from its registry."""
    return BreakerRegistry(policy=STEADY_POLICY, clock=clock).get("bench", Method.CARD.value)


def fill(breaker: CircuitBreaker, calls: int = 70_000) -> int:
    """Record ``calls`` successes on ``breaker``; returns the calls its window then holds
    (30,000 on a :class:`SteadyClock`: every bucket in use)."""
    for _ in range(calls):
        adm = breaker.admit()
        breaker.record(adm, duration=0.001, failure=False)
    return breaker.snapshot().calls


def bench_breaker(plan: _Plan) -> list[Row]:
    """Our breaker's admit + record against pybreaker's ``call``, both around ``_noop``."""
    ours = bench_breaker_of()
    steady = bench_breaker_of(SteadyClock())
    fill(steady)
    theirs = pybreaker.CircuitBreaker()
    fn = _noop

    def bare(n: int) -> int:
        f = fn
        t0 = time.perf_counter_ns()
        for _ in range(n):
            f()
        return time.perf_counter_ns() - t0

    def payfallback_breaker(breaker: CircuitBreaker) -> Batch:
        def batch(n: int) -> int:
            b, f = breaker, fn
            t0 = time.perf_counter_ns()
            for _ in range(n):
                adm = b.admit()
                f()
                b.record(adm, duration=0.001, failure=False)
            return time.perf_counter_ns() - t0

        return batch

    def pybreaker_call(n: int) -> int:
        b, f = theirs, fn
        t0 = time.perf_counter_ns()
        for _ in range(n):
            b.call(f)
        return time.perf_counter_ns() - t0

    s = _measure(
        {
            "bare": bare,
            "ours": payfallback_breaker(ours),
            "steady": payfallback_breaker(steady),
            "pybreaker": pybreaker_call,
        },
        rounds=plan.breaker_rounds,
        batch=plan.breaker_batch,
        warmup=plan.warmup,
    )
    ours_net = _minus(s["ours"], s["bare"])
    steady_net = _minus(s["steady"], s["bare"])
    theirs_net = _minus(s["pybreaker"], s["bare"])
    return [
        _row("bare fn() + loop", s["bare"]),
        _row("pybreaker CircuitBreaker.call(fn)", s["pybreaker"]),
        _row(
            "breaker admit+fn()+record",
            s["ours"],
            baseline="pybreaker CircuitBreaker.call(fn)",
            ratios=_paired(s["ours"], s["pybreaker"]),
            baseline_per_op=s["pybreaker"],
        ),
        _row(
            "breaker admit+record, net of fn()",
            ours_net,
            baseline="pybreaker call, net of fn()",
            ratios=_paired(ours_net, theirs_net),
            baseline_per_op=theirs_net,
            goal=BREAKER_GOAL,
        ),
        _row(
            "same, full window (steady traffic)",
            steady_net,
            baseline="pybreaker call, net of fn()",
            ratios=_paired(steady_net, theirs_net),
            baseline_per_op=theirs_net,
            goal=BREAKER_GOAL,
        ),
    ]


# -- router ------------------------------------------------------------------------------------


class _Orders:
    """Fresh orders: every charge is for an order the journal and the bank have never seen."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]

    def take(self, n: int, tag: str) -> list[Order]:
        amount = Money(amount=15000, currency=_CURRENCY)
        return [
            Order(order_id=f"{tag}-{self._run}-{next(self._seq)}", amount=amount, name="bench")
            for _ in range(n)
        ]


def _unexpected(what: str) -> BenchmarkError:
    return BenchmarkError(f"{what}: the benchmark measures the happy path only")


def bare_charge(provider: FakeProvider, order: Order, inst: Instrument) -> httpx.Request:
    """The charge request the Router would send for ``order``'s first attempt, built by the
    same adapter, with a new idempotency key: what the bare variants send."""
    return provider.build_charge(
        ChargeRequest(
            attempt_id=order.order_id + "_1",
            order=order,
            instrument=inst,
            idempotency_key=uuid.uuid4().hex,
        )
    )


def _bare_sync(
    client: httpx.Client, provider: FakeProvider, inst: Instrument, orders: _Orders, tag: str
) -> Batch:
    def one(order: Order) -> None:
        if client.send(bare_charge(provider, order, inst)).status_code != 200:
            raise _unexpected("the bare charge was not answered 200")

    return _timed(orders, tag, one)


def _timed(
    orders: _Orders,
    tag: str,
    one: Callable[[Order], None],
    set_level: Callable[[int], None] | None = None,
) -> Batch:
    """A batch of ``one(order)`` over new orders; with ``set_level``, INFO events are
    filtered out while it runs."""

    def batch(n: int) -> int:
        todo = orders.take(n, tag)
        if set_level is not None:
            set_level(logging.WARNING)
        try:
            t0 = time.perf_counter_ns()
            for order in todo:
                one(order)
            return time.perf_counter_ns() - t0
        finally:
            if set_level is not None:
                set_level(logging.INFO)

    return batch


def _router_sync(
    router: Router,
    inst: Instrument,
    orders: _Orders,
    tag: str,
    set_level: Callable[[int], None] | None = None,
) -> Batch:
    insts = [inst]

    def one(order: Order) -> None:
        if router.charge(order, insts).status is not PaymentStatus.PAID:
            raise _unexpected("Router.charge did not pay")

    return _timed(orders, tag, one, set_level)


def _on_loop(
    loop: asyncio.AbstractEventLoop, coro: Callable[[int], Coroutine[Any, Any, int]]
) -> Batch:
    return lambda n: loop.run_until_complete(coro(n))


def _timed_async(
    orders: _Orders, tag: str, one: Callable[[Order], Awaitable[None]]
) -> Callable[[int], Coroutine[Any, Any, int]]:
    """A batch of ``await one(order)`` over new orders, on the caller's loop."""

    async def batch(n: int) -> int:
        todo = orders.take(n, tag)
        t0 = time.perf_counter_ns()
        for order in todo:
            await one(order)
        return time.perf_counter_ns() - t0

    return batch


def _bare_async(
    client: httpx.AsyncClient, provider: FakeProvider, inst: Instrument, orders: _Orders
) -> Callable[[int], Coroutine[Any, Any, int]]:
    async def one(order: Order) -> None:
        if (await client.send(bare_charge(provider, order, inst))).status_code != 200:
            raise _unexpected("the bare async charge was not answered 200")

    return _timed_async(orders, "ba", one)


def paid_by(router: AsyncRouter, inst: Instrument) -> Callable[[Order], Awaitable[None]]:
    """``await router.charge(order, [inst])``, which must pay: what every async benchmark
    times as one charge through the Router."""
    insts = [inst]

    async def one(order: Order) -> None:
        if (await router.charge(order, insts)).status is not PaymentStatus.PAID:
            raise _unexpected("AsyncRouter.charge did not pay")

    return one


def _router_async(
    router: AsyncRouter, inst: Instrument, orders: _Orders, tag: str
) -> Callable[[int], Coroutine[Any, Any, int]]:
    return _timed_async(orders, tag, paid_by(router, inst))


#: One statement of the floor's journal writes and its parameters.
Step = tuple[str, tuple[Any, ...]]


class Floor:
    """The floor (see the module's docstring): a new order's charge with nothing but what
    it cannot do without, on ``journal``'s connection and schema, by hand.

    ``begin`` journals the attempt and gives the request to send; ``finish`` parses the
    answer and journals the payment; each commits on its own. Group-committed instead, as
    the ``AsyncRouter`` commits its payments' journal calls: ``attempt_steps`` and
    ``payment_steps`` give the statements, ``commit`` runs several charges' in one
    transaction, and ``attempted`` / ``paid`` write the events."""

    def __init__(self, provider: FakeProvider, inst: Instrument, journal: SQLiteJournal) -> None:
        # The Router's events go through Events' structlog logger over the standard logger
        # "payfallback" (wrapped again when structlog's configuration changes); the floor
        # writes to that logger without the Router's catalogue checks and redaction.
        self._log = Events()._logger
        self._conn = journal._conn
        self._order, self._attempt, self._payment, self._succeeded = (
            _translate(text)
            for text in (
                statements._INSERT_ORDER,
                statements._INSERT_ATTEMPT,
                statements._INSERT_PAYMENT,
                statements._SUCCEEDED,
            )
        )
        self._provider = provider
        self._inst = inst

    def commit(self, *steps: Step) -> None:
        """Run ``steps`` in one transaction (each must write its row)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for text, params in steps:
                if conn.execute(text, params).rowcount != 1:
                    raise _unexpected("a floor statement wrote nothing")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _fields(self, order: Order) -> dict[str, Any]:
        oid = order.order_id
        return {"order_id": oid, "attempt_id": f"{oid}_1", "provider": self._provider.name}

    def attempt_steps(self, order: Order) -> tuple[list[Step], ChargeRequest, httpx.Request]:
        """The attempt's statements, and the request to send once they are committed."""
        fields = self._fields(order)
        oid, aid, name = fields["order_id"], fields["attempt_id"], fields["provider"]
        amount = order.amount
        now = datetime.now(UTC)
        stamp = _ts(now)
        key = uuid.uuid4().hex
        steps: list[Step] = [
            (self._order, (oid, amount.amount, amount.currency, order.model_dump_json(), stamp)),
            (
                self._attempt,
                (aid, oid, 1, name, "card", "charge", key, _ts(now + _LEASE), stamp, stamp),
            ),
        ]
        req = ChargeRequest(attempt_id=aid, order=order, instrument=self._inst, idempotency_key=key)
        return steps, req, self._provider.build_charge(req)

    def attempted(self, req: ChargeRequest) -> None:
        self._log().info(
            "payment.attempt",
            **self._fields(req.order),
            method="card",
            operation="charge",
            try_number=1,
        )

    def payment_steps(self, req: ChargeRequest, response: httpx.Response) -> list[Step]:
        """The answer, parsed, and the payment's statements."""
        approved = self._provider.parse_charge(req, response)
        if not isinstance(approved, Approved):
            raise _unexpected("the floor's charge was not approved")
        order, fields = req.order, self._fields(req.order)
        oid, aid, amount = order.order_id, req.attempt_id, order.amount
        now = datetime.now(UTC)
        stamp = _ts(now)
        return [
            (
                self._payment,
                (
                    f"pay_{oid}",
                    "card",
                    approved.provider_txn_id,
                    _ts(approved.approved_at or now),
                    1,
                    stamp,
                    stamp,
                    receipt_json(approved.receipt),
                    answer_json(approved.answer),
                    aid,
                    oid,
                    fields["provider"],
                    amount.amount,
                    amount.currency,
                ),
            ),
            (self._succeeded, (approved.provider_txn_id, stamp, aid)),
        ]

    def paid(self, req: ChargeRequest) -> None:
        amount = req.order.amount
        self._log().info(
            "payment.succeeded",
            **self._fields(req.order),
            method="card",
            amount=amount.amount,
            currency=amount.currency,
        )

    def begin(self, order: Order) -> tuple[ChargeRequest, httpx.Request]:
        steps, req, request = self.attempt_steps(order)
        self.commit(*steps)
        self.attempted(req)
        return req, request

    def finish(self, req: ChargeRequest, response: httpx.Response) -> None:
        self.commit(*self.payment_steps(req, response))
        self.paid(req)


def grouped(
    floor: Floor, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
) -> Callable[[Order], Awaitable[None]]:
    """The floor's charge on the running event loop, as the ``AsyncRouter`` charges at
    load: every charge's statements from this turn of the loop until ``BATCH_TURNS`` turns
    later committed in one transaction (the Router's group commit), its events written, its
    request sent with ``send`` (``bench_peak``: the Router's own send;
    ``bench_instructions``: ``client.send``)."""
    loop = asyncio.get_running_loop()
    pending: list[tuple[list[Step], asyncio.Future[None]]] = []

    def commit() -> None:
        batch = pending[:]
        pending.clear()
        try:
            floor.commit(*(step for steps, _ in batch for step in steps))
        except Exception as exc:
            for _, done in batch:
                done.set_exception(exc)
            return
        for _, done in batch:
            done.set_result(None)

    async def write(steps: list[Step]) -> None:
        done: asyncio.Future[None] = loop.create_future()
        pending.append((steps, done))
        if len(pending) == 1:
            after_turns(loop, BATCH_TURNS, commit)
        await done

    async def one(order: Order) -> None:
        steps, req, request = floor.attempt_steps(order)
        await write(steps)
        floor.attempted(req)
        response = let_go(await send(request))
        await write(floor.payment_steps(req, response))
        floor.paid(req)

    return one


def _floor_sync(
    client: httpx.Client,
    floor: Floor,
    orders: _Orders,
    tag: str,
    set_level: Callable[[int], None] | None = None,
) -> Batch:
    def one(order: Order) -> None:
        req, request = floor.begin(order)
        floor.finish(req, client.send(request))

    return _timed(orders, tag, one, set_level)


def _floor_async(
    client: httpx.AsyncClient, floor: Floor, orders: _Orders, tag: str
) -> Callable[[int], Coroutine[Any, Any, int]]:
    async def one(order: Order) -> None:
        req, request = floor.begin(order)
        floor.finish(req, await client.send(request))

    return _timed_async(orders, tag, one)


BARE_SYNC = "bare Client.send(build_charge)"
BARE_ASYNC = "bare AsyncClient.send(build_charge)"
FLOOR_NORMAL = "floor: the Router's statements, commits and events by hand, NORMAL"
FLOOR_FULL = "floor: the Router's statements, commits and events by hand, FULL"
FLOOR_ASYNC = "floor (async): the Router's statements, commits and events by hand, NORMAL"
FLOOR_LOOPBACK = "loopback HTTP: the floor, NORMAL"
FLOOR_QUIET = "floor, NORMAL, INFO events filtered"


def bench_router(plan: _Plan, journal_dir: str, set_level: Callable[[int], None]) -> list[Row]:
    """``Router.charge`` / ``Router.charge`` against the bare request, same transport.

    Besides the in-memory ``MockTransport`` (the comparison the goal is set on), the sync
    pair is also measured over real loopback HTTP (:class:`FakeServer`), where the bare
    request pays for sockets and parsing as any network request does.
    """
    bank = FakeBank("fake")
    transport = mock_transport(bank)
    provider = FakeProvider("fake")
    inst = Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))
    loop_bank = FakeBank("loop")
    loop_inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0002"))
    orders = _Orders()
    loop = asyncio.new_event_loop()
    with ExitStack() as stack:
        journals = {
            name: stack.enter_context(
                SQLiteJournal(os.path.join(journal_dir, f"{name}.sqlite3"), durable=durable)
            )
            for name, durable in (
                ("sync-normal", False),
                ("sync-full", True),
                ("async-normal", False),
                ("async-full", True),
                ("loopback-normal", False),
                ("floor-normal", False),
                ("floor-quiet", False),
                ("floor-full", True),
                ("floor-async", False),
                ("floor-loopback", False),
            )
        }
        stack.callback(loop.close)
        client = stack.enter_context(httpx.Client(transport=transport))
        aclient = httpx.AsyncClient(transport=transport)
        stack.callback(lambda: loop.run_until_complete(loop.shutdown_default_executor()))
        stack.callback(lambda: loop.run_until_complete(aclient.aclose()))
        server = stack.enter_context(FakeServer(loop_bank))
        loop_provider = FakeProvider("loop", base_url=server.url_for(loop_bank))
        loop_client = stack.enter_context(httpx.Client(timeout=httpx.Timeout(5.0)))

        sync_normal = Router([provider], client=client, journal=journals["sync-normal"])
        sync_full = Router([provider], client=client, journal=journals["sync-full"])
        async_normal = AsyncRouter([provider], client=aclient, journal=journals["async-normal"])
        async_full = AsyncRouter([provider], client=aclient, journal=journals["async-full"])

        def floor(name: str, on: FakeProvider = provider, card: Instrument = inst) -> Floor:
            return Floor(on, card, journals[name])

        loop_normal = Router(
            [loop_provider], client=loop_client, journal=journals["loopback-normal"]
        )
        names = {
            "bs": BARE_SYNC,
            "sn": "Router.charge, WAL synchronous=NORMAL",
            "sf": "Router.charge, WAL synchronous=FULL",
            "sq": "Router.charge, NORMAL, INFO events filtered",
            "fq": FLOOR_QUIET,
            "ba": BARE_ASYNC,
            "an": "Router.charge (async), WAL synchronous=NORMAL",
            "af": "Router.charge (async), WAL synchronous=FULL",
            "bl": "loopback HTTP: bare Client.send(build_charge)",
            "ln": "loopback HTTP: Router.charge, NORMAL",
            "fn": FLOOR_NORMAL,
            "ff": FLOOR_FULL,
            "fa": FLOOR_ASYNC,
            "fl": FLOOR_LOOPBACK,
        }
        s = _measure(
            {
                "bs": _bare_sync(client, provider, inst, orders, "bs"),
                "sn": _router_sync(sync_normal, inst, orders, "sn"),
                "sf": _router_sync(sync_full, inst, orders, "sf"),
                "sq": _router_sync(sync_normal, inst, orders, "sq", set_level),
                "fq": _floor_sync(client, floor("floor-quiet"), orders, "fq", set_level),
                "ba": _on_loop(loop, _bare_async(aclient, provider, inst, orders)),
                "an": _on_loop(loop, _router_async(async_normal, inst, orders, "an")),
                "af": _on_loop(loop, _router_async(async_full, inst, orders, "af")),
                "bl": _bare_sync(loop_client, loop_provider, loop_inst, orders, "bl"),
                "ln": _router_sync(loop_normal, loop_inst, orders, "ln"),
                "fn": _floor_sync(client, floor("floor-normal"), orders, "fn"),
                "ff": _floor_sync(client, floor("floor-full"), orders, "ff"),
                "fa": _on_loop(loop, _floor_async(aclient, floor("floor-async"), orders, "fa")),
                "fl": _floor_sync(
                    loop_client, floor("floor-loopback", loop_provider, loop_inst), orders, "fl"
                ),
            },
            rounds=plan.router_rounds,
            batch=plan.router_batch,
            warmup=plan.warmup,
        )

    def vs(key: str, base: str, goal: float | None) -> Row:
        return _row(
            names[key],
            s[key],
            baseline=names[base],
            ratios=_paired(s[key], s[base]),
            baseline_per_op=s[base],
            goal=goal,
        )

    return [
        _row(BARE_SYNC, s["bs"]),
        vs("sn", "bs", ROUTER_GOAL),
        vs("sf", "bs", ROUTER_FULL_GOAL),
        vs("sq", "bs", None),
        _row(BARE_ASYNC, s["ba"]),
        vs("an", "ba", ROUTER_GOAL),
        vs("af", "ba", None),
        _row(names["bl"], s["bl"]),
        vs("ln", "bl", LOOPBACK_GOAL),
        vs("fn", "bs", None),
        vs("ff", "bs", None),
        vs("fa", "ba", None),
        vs("fl", "bl", None),
        vs("sn", "fn", None),
        vs("sf", "ff", None),
        vs("fq", "bs", None),
        vs("sq", "fq", None),
        vs("an", "fa", None),
        vs("ln", "fl", None),
    ]


def profile_charge(calls: int, journal_dir: str) -> str:
    """cProfile of ``Router.charge`` (WAL, synchronous=NORMAL): top 15 by cumulative
    and by own time. The profiler inflates pure-Python code more than C (SQLite, JSON),
    so read it for *where* the time goes, and the table for how much."""
    bank = FakeBank("fake")
    provider = FakeProvider("fake")
    insts = [Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))]
    orders = _Orders()
    path = os.path.join(journal_dir, "profile.sqlite3")
    with (
        httpx.Client(transport=mock_transport(bank)) as client,
        SQLiteJournal(path, durable=False) as journal,
    ):
        router = Router([provider], client=client, journal=journal)
        for order in orders.take(50, "pw"):
            router.charge(order, insts)
        todo = orders.take(calls, "pr")
        profiler = cProfile.Profile()
        profiler.enable()
        for order in todo:
            router.charge(order, insts)
        profiler.disable()
    out = io.StringIO()
    for key in ("cumulative", "tottime"):
        out.write(f"--- Router.charge x {calls}: top 15 by {key} ---\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(key).print_stats(15)
    return out.getvalue()


class _TimedJournal:
    """A journal whose every call adds its time to ``ns`` (a Router asks it by name)."""

    def __init__(self, journal: SQLiteJournal) -> None:
        self._journal = journal
        self.ns = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._journal, name)
        if not callable(method):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return method(*args, **kwargs)
            finally:
                self.ns += time.perf_counter_ns() - t0

        return timed


class _TimedClient(httpx.Client):
    """An ``httpx.Client`` whose sends add their time to ``ns``."""

    ns = 0

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        t0 = time.perf_counter_ns()
        try:
            return super().send(request, **kwargs)
        finally:
            self.ns += time.perf_counter_ns() - t0


def charge_split(journal_dir: str, n: int, rounds: int = 5) -> list[tuple[str, float]]:
    """One ``Router.charge`` for a new order (WAL NORMAL, ``MockTransport``, events as JSON
    at INFO), split in place, without a profiler: the time in its journal calls, in its
    sends (httpx and the fake bank) and in the rest (the core, the adapter's build and
    parse, events, masking, models). Medians over ``rounds`` rounds of ``n`` charges, in
    ns per charge."""
    provider = FakeProvider("fake")
    insts = [Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))]
    orders = _Orders()
    parts: dict[str, list[float]] = {"whole": [], "journal": [], "send": []}
    path = os.path.join(journal_dir, "split.sqlite3")
    with (
        _TimedClient(transport=mock_transport(FakeBank("fake"))) as client,
        SQLiteJournal(path, durable=False) as journal,
    ):
        timed = _TimedJournal(journal)
        router = Router([provider], client=client, journal=timed)
        for order in orders.take(n, "sw"):
            router.charge(order, insts)
        for _ in range(rounds):
            todo = orders.take(n, "sp")
            gc.collect()
            timed.ns = client.ns = 0
            t0 = time.perf_counter_ns()
            for order in todo:
                router.charge(order, insts)
            parts["whole"].append((time.perf_counter_ns() - t0) / n)
            parts["journal"].append(timed.ns / n)
            parts["send"].append(client.ns / n)
    whole, in_journal, sending = (statistics.median(parts[k]) for k in ("whole", "journal", "send"))
    return [
        ("Router.charge, NORMAL", whole),
        ("  its 2 journal calls (each one transaction)", in_journal),
        ("  its send (httpx and the fake bank)", sending),
        ("  the rest (core, adapter, events, masking, models)", whole - in_journal - sending),
    ]


def _median_ns(op: Callable[[int], None], n: int, rounds: int = 5) -> float:
    """Median ns per call of ``op(i)`` for ``i`` in ``range(n)``, over ``rounds`` rounds."""
    per_op = []
    for r in range(rounds):
        gc.collect()
        t0 = time.perf_counter_ns()
        for i in range(r * n, (r + 1) * n):
            op(i)
        per_op.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(per_op)


def _journal_costs(
    journal: SQLiteJournal, orders: Sequence[Order], n: int, rounds: int
) -> list[tuple[str, float]]:
    """The journal calls of one charge for a new order, each timed alone."""
    label = "FULL" if journal.durable else "NORMAL"
    out: list[tuple[str, float]] = []
    attempts: list[Attempt] = []

    def begin(i: int) -> None:
        attempts.append(
            journal.begin_attempt(
                orders[i],
                provider="fake",
                method=Method.CARD,
                operation="charge",
                idempotency_key=uuid.uuid4().hex,
                lease_seconds=120.0,
            )
        )

    out.append((f"journal: begin_attempt ({label})", _median_ns(begin, n, rounds)))
    payments = [
        Payment(
            payment_id=f"pay_{a.order_id}",
            order_id=a.order_id,
            provider="fake",
            method=Method.CARD,
            provider_txn_id=f"txn-{a.attempt_id}",
            attempt_id=a.attempt_id,
            amount=order.amount,
            refunded=Money(amount=0, currency=_CURRENCY),
            status=PaymentStatus.PAID,
            approved_at=a.created_at,
            attempts=1,
        )
        for order, a in zip(orders, attempts, strict=True)
    ]

    def succeed(i: int) -> None:
        journal.record_success(payments[i].attempt_id, payments[i])

    out.append((f"journal: record_success ({label})", _median_ns(succeed, n, rounds)))
    return out


def component_costs(journal_dir: str, n: int) -> list[tuple[str, float]]:
    """What each step of one happy-path charge costs on its own (no profiler), in ns.

    The steps are those ``Router.charge`` takes for a new order, called directly
    through public APIs: two journal writes (a new order's charge reads nothing first), two
    events, one breaker admit/record, the adapter's build and parse, and what one
    ``asyncio.to_thread`` hop costs (the ``AsyncRouter`` makes one per journal batch with
    FULL, none in NORMAL).
    """
    rounds = 5
    orders = _Orders().take(n * rounds, "cc")
    out: list[tuple[str, float]] = []
    for durable in (False, True):
        path = os.path.join(journal_dir, f"components-{durable}.sqlite3")
        with SQLiteJournal(path, durable=durable) as journal:
            out += _journal_costs(journal, orders, n, rounds)

    events = Events()
    fields: dict[str, Any] = {
        "order_id": orders[0].order_id,
        "attempt_id": orders[0].order_id + "_1",
        "provider": "fake",
        "method": "card",
    }

    def emit_two(i: int) -> None:
        events.emit("payment.attempt", **fields, operation="charge", try_number=1)
        events.emit("payment.succeeded", **fields, amount=15000, currency=_CURRENCY)

    out.append(("events: 2 emits (JSON at INFO)", _median_ns(emit_two, n * 10, rounds)))

    breaker = bench_breaker_of()

    def admit_record(i: int) -> None:
        breaker.record(breaker.admit(), duration=0.001, failure=False)

    out.append(("breaker: admit + record", _median_ns(admit_record, n * 10, rounds)))

    provider = FakeProvider("fake")
    inst = Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))
    req = ChargeRequest(
        attempt_id=orders[0].order_id + "_1", order=orders[0], instrument=inst, idempotency_key="k"
    )
    with httpx.Client(transport=mock_transport(FakeBank("fake"))) as client:
        answer = client.send(provider.build_charge(req))

    def build_parse(i: int) -> None:
        provider.parse_charge(req, answer)
        provider.build_charge(req)

    out.append(("adapter: build_charge + parse_charge", _median_ns(build_parse, n * 10, rounds)))

    loop = asyncio.new_event_loop()
    try:

        async def hops(count: int) -> int:
            t0 = time.perf_counter_ns()
            for _ in range(count):
                await asyncio.to_thread(_noop)
            return time.perf_counter_ns() - t0

        hop = statistics.median(loop.run_until_complete(hops(n)) / n for _ in range(rounds))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    out.append(("async: one asyncio.to_thread hop", hop))
    return out


# -- environment -------------------------------------------------------------------------------


def _unescape_mount(path: str) -> str:
    # /proc/mounts writes spaces and the like as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def filesystem_of(path: str) -> str:
    """The filesystem type ``path`` lives on (``tmpfs``, ``ext4``, …), from /proc/mounts."""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return "unknown"
    best, fstype = "", "unknown"
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = _unescape_mount(parts[1])
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        # The last of equal mount points is the one in effect (it is mounted over the others).
        if inside and len(mount) >= len(best):
            best, fstype = mount, parts[2]
    return fstype


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages: a loaded machine makes every figure noisier."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def _meta(plan: _Plan, quick: bool, journal_dir: str) -> dict[str, Any]:
    fstype = filesystem_of(journal_dir)
    in_ram = fstype in ("tmpfs", "ramfs")
    return {
        "quick": quick,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": _loadavg(),
        "httpx": httpx.__version__,
        "pybreaker": getattr(pybreaker, "__version__", "unknown"),
        "sqlite": __import__("sqlite3").sqlite_version,
        "journal_dir": journal_dir,
        "journal_fs": fstype,
        "journal_fs_note": (
            "in RAM: fsync costs nothing, so the FULL figure is a lower bound"
            if in_ram
            else "disk-backed: FULL pays an fsync per commit"
        ),
        "plan": {
            "warmup_batches": plan.warmup,
            "breaker_rounds": plan.breaker_rounds,
            "breaker_batch": plan.breaker_batch,
            "router_rounds": plan.router_rounds,
            "router_batch": plan.router_batch,
        },
    }


# -- entry points ------------------------------------------------------------------------------


def run(quick: bool = False, *, journal_dir: str | None = None, profile: bool = False) -> Report:
    """Measure everything once and return the figures (nothing is printed).

    ``journal_dir`` is where the temporary journal files go (default: the system temp
    dir); put it on a disk or on tmpfs to see what the FULL figure depends on.
    """
    plan = _QUICK if quick else _FULL
    workdir = tempfile.mkdtemp(prefix="payfallback-bench-", dir=journal_dir)
    started = time.perf_counter()
    try:
        meta = _meta(plan, quick, workdir)
        breaker = bench_breaker(plan)
        with event_logging() as set_level:
            router = bench_router(plan, workdir, set_level)
            profiled = components = split = None
            if profile:
                profiled = profile_charge(plan.profile_calls, workdir)
                components = component_costs(workdir, plan.profile_calls // 5)
                split = charge_split(workdir, plan.profile_calls)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_end"] = _loadavg()
    return Report(
        meta=meta,
        breaker=breaker,
        router=router,
        profile=profiled,
        components=components,
        split=split,
    )


def _ns(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.2f} ms"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.1f} µs"
    return f"{value:.0f} ns"


def format_table(report: Report) -> str:
    """The report as a plain-text table (one section per comparison)."""
    meta = report["meta"]
    lines = [
        f"payfallback core benchmarks{' (quick: rough figures)' if meta['quick'] else ''}",
        f"python {meta['python']} on {meta['platform']}, {meta['cpus']} CPUs, "
        f"load {meta['loadavg_start']} -> {meta['loadavg_end']}, {meta['seconds']} s",
        f"journal: {meta['journal_dir']} on {meta['journal_fs']} ({meta['journal_fs_note']})",
        "median per op over rounds [IQR]; ratio = median of per-round ratios [IQR]; "
        "of min = fastest round / baseline's fastest round",
    ]
    header = (
        f"{'name':<50} {'median/op':>10} {'IQR':>21} {'ratio':>6} {'IQR':>13} "
        f"{'of min':>6} {'goal':>6} met"
    )
    for title, rows in (("breaker", report["breaker"]), ("router", report["router"])):
        lines += ["", f"== {title}", header]
        for row in rows:
            iqr = f"[{_ns(row['ns_p25'])}, {_ns(row['ns_p75'])}]"
            ratio, iqr_r, of_min, goal, met = ratio_cells(row)
            lines.append(
                f"{row['name']:<50} {_ns(row['ns_per_op']):>10} {iqr:>21} "
                f"{ratio:>6} {iqr_r:>13} {of_min:>6} {goal:>6} {met}"
            )
            if row["baseline"] is not None:
                lines.append(f"{'':<4}vs {row['baseline']}")
    return "\n".join(lines)


def ratio_cells(row: Row) -> tuple[str, str, str, str, str]:
    """A row's ratio, its IQR, the ratio of fastest rounds, the goal and met?, as table cells."""
    ratio = iqr = of_min = goal = met = ""
    if row["ratio"] is not None:
        ratio = f"{row['ratio']:.2f}x"
        iqr = f"[{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}]"
    if row["ratio_of_mins"] is not None:
        of_min = f"{row['ratio_of_mins']:.2f}x"
    if row["goal"] is not None:
        goal = f"<={row['goal']:g}x"
        met = "yes" if row["met"] else "NO"
    return ratio, iqr, of_min, goal, met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_core.py",
        description="payfallback core overhead, as ratios measured in one run",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a few seconds, rough")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile summary of Router.charge"
    )
    parser.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the temporary journals live (default: the system temp dir)",
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick, journal_dir=args.journal_dir, profile=args.profile)
    print(format_table(report))
    if report["components"] is not None:
        print()
        print("--- one charge, step by step (each measured alone, no profiler) ---")
        for step, ns in report["components"]:
            print(f"{step:<50} {_ns(ns):>10}")
    if report["split"] is not None:
        print()
        print("--- one charge, split in place (no profiler) ---")
        for part, ns in report["split"]:
            print(f"{part:<50} {_ns(ns):>10}")
    if report["profile"] is not None:
        print()
        print(report["profile"])
    return store_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
