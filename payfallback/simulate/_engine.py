"""Run a scenario: the same customers through each strategy, and the figures that compare them."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import random
import sys
import time
import traceback
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from payfallback.simulate._clock import SimClock
from payfallback.simulate._scenario import Scenario
from payfallback.simulate._shop import Shop
from payfallback.simulate._strategies import (
    STRATEGIES,
    Naive,
    NoFallback,
    Result,
    Strategy,
    WithPayfallback,
)
from payfallback.simulate._traffic import Customer, generate
from payfallback.testing import double_charges

__all__ = [
    "RUNS",
    "BaselineReport",
    "BreakerTrip",
    "RunTiming",
    "SimulationReport",
    "StrategyReport",
    "Timeline",
    "run_one",
    "simulate",
]

#: Every run of a simulation: the no-outage baseline, then each strategy.
RUNS: tuple[str, ...] = ("baseline", *STRATEGIES)

#: A customer who waits longer than this at checkout is counted as having waited too long.
WAIT_LIMIT = 5.0

#: ``progress(run, customers done, customers in all)``
Progress = Callable[[str, int, int], None]

_PROGRESS_EVERY = 250


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """How fast payfallback's breaker reacted to one incident."""

    incident: str
    provider: str
    #: Seconds from the incident's start to the first ``breaker.opened`` for its provider
    #: (None: it never opened, e.g. an announced window routed around in advance).
    opened_after_s: float | None
    #: Requests that met the incident's faults before the breaker opened (all of them if
    #: it never did).
    failed_calls_before_open: int
    announced: bool


@dataclass(frozen=True, slots=True)
class StrategyReport:
    """One strategy's figures over the scenario (keys are stable: they are the JSON's)."""

    strategy: str
    label: str
    customers: int
    approved: int
    approval_rate: float
    #: ``approval_rate`` over the baseline's.
    approval_vs_baseline: float
    revenue_krw: int
    #: Baseline revenue minus this strategy's: sales lost to the incidents.
    lost_revenue_krw: int
    #: Customers with more than one live charge at the providers, from their ledgers.
    double_charges: int
    double_charged_krw: int
    #: Customers charged by a provider whose payment the shop never recorded.
    charged_not_recorded: int
    charged_not_recorded_krw: int
    #: Customers whose checkout took longer than ``WAIT_LIMIT`` seconds.
    waited_over_5s: int
    checkout_p50_s: float
    checkout_p99_s: float
    #: Customers whose outcome was unknown at checkout (payfallback; settled by recover).
    pending_at_checkout: int
    #: Of those, still unresolved at the end.
    unresolved: int
    declined_by_customer: int
    failed: int
    #: Money the shop owes back: journaled compensations (payfallback), or the extra
    #: and unrecorded charges nobody tracks (the others).
    refunds_owed: int
    refunds_owed_krw: int
    refunds_settled: int
    refunds_settled_krw: int
    breaker: tuple[BreakerTrip, ...] = ()


@dataclass(frozen=True, slots=True)
class BaselineReport:
    """The same customers with no incident (served without fallback: nothing fails)."""

    customers: int
    approved: int
    approval_rate: float
    revenue_krw: int
    checkout_p50_s: float
    checkout_p99_s: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """Approval rate per time bucket (by arrival), for the chart; None where no customer."""

    bucket_minutes: int
    starts: tuple[datetime, ...]
    approval: dict[str, tuple[float | None, ...]]
    #: Customers per bucket who waited longer than ``WAIT_LIMIT`` at checkout.
    waited: dict[str, tuple[int, ...]]
    customers: tuple[int, ...]
    #: Customers per bucket (by arrival) charged more than once, from the ledgers at the end.
    double_charges: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunTiming:
    """What one run cost this machine: not a figure of the scenario, so not compared."""

    #: ``time.perf_counter`` seconds around the run (serving, settling, counting).
    wall_s: float
    #: ``time.process_time`` seconds of the process that ran it, over the same span.
    cpu_s: float


@dataclass(frozen=True)
class SimulationReport:
    scenario: Scenario
    seed: int
    compensate: bool
    customers: int
    baseline: BaselineReport
    strategies: dict[str, StrategyReport]
    timeline: Timeline
    #: Per run (``RUNS``), its wall and CPU seconds. They differ from one run of the
    #: same seed to the next, so they are left out of comparisons (``==``) and
    #: :meth:`figures`.
    timing: dict[str, RunTiming] = field(default_factory=dict, compare=False)
    #: Seconds the whole simulation took, customers and workers included.
    wall_s: float = field(default=0.0, compare=False)
    workers: int = field(default=1, compare=False)

    def figures(self) -> dict[str, Any]:
        """:meth:`to_dict` without ``timing``: what the same seed repeats exactly."""
        doc = self.to_dict()
        del doc["timing"]
        return doc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready document with stable keys."""
        s = self.scenario
        return {
            "scenario": {
                "name": s.name,
                "description": s.description,
                "start": s.local(s.start).isoformat(),
                "end": s.local(s.end).isoformat(),
                "timezone": str(s.tz),
                "incidents": [
                    {
                        "label": i.label,
                        "provider": i.provider,
                        "start": s.local(i.start).isoformat(),
                        "end": s.local(i.end).isoformat(),
                        "announced": i.announced,
                    }
                    for i in s.incidents
                ],
            },
            "seed": self.seed,
            "compensate": self.compensate,
            "customers": self.customers,
            "baseline": asdict(self.baseline),
            "strategies": {k: _strategy_dict(v) for k, v in self.strategies.items()},
            "timeline": {
                "bucket_minutes": self.timeline.bucket_minutes,
                "starts": [s.local(t).isoformat() for t in self.timeline.starts],
                "customers": list(self.timeline.customers),
                "approval_rate": {k: list(v) for k, v in self.timeline.approval.items()},
                "waited_over_5s": {k: list(v) for k, v in self.timeline.waited.items()},
                "double_charges": {k: list(v) for k, v in self.timeline.double_charges.items()},
            },
            "timing": self._timing_dict(),
        }

    def _timing_dict(self) -> dict[str, Any]:
        runs = {run: asdict(t) for run, t in self.timing.items()}
        pf, naive = self.timing.get("payfallback"), self.timing.get("naive")
        return {
            "wall_s": self.wall_s,
            "workers": self.workers,
            "runs": runs,
            # The yardstick: payfallback's CPU seconds over the naive strategy's,
            # both serving the same customers in the same simulation.
            "payfallback_cpu_vs_naive": (
                round(pf.cpu_s / naive.cpu_s, 3) if pf is not None and naive else None
            ),
        }


def _strategy_dict(report: StrategyReport) -> dict[str, Any]:
    out = asdict(report)
    out["breaker"] = [asdict(t) for t in report.breaker]
    return out


@dataclass
class RunOutcome:
    """What one run produced, before it is compared with the others."""

    run: str
    #: Per customer, the code of their :class:`Result` (``_CODE``): compact for 20,000.
    results: bytearray
    waits: array[float]
    approved: list[bool]
    #: Indices (in ``customers``) of the customers charged more than once.
    doubled: list[int] = field(default_factory=list)
    double_charges: int = 0
    double_charged_krw: int = 0
    charged_not_recorded: int = 0
    charged_not_recorded_krw: int = 0
    refunds_owed: int = 0
    refunds_owed_krw: int = 0
    refunds_settled: int = 0
    refunds_settled_krw: int = 0
    unresolved: int = 0
    breaker: list[BreakerTrip] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


_CODE = {result: n for n, result in enumerate(Result)}
_PAID, _REFUSED, _FAILED, _PENDING = (_CODE[r] for r in Result)


@contextmanager
def _run_conditions(seed: str) -> Iterator[None]:
    """What a run needs from the process, given back afterwards.

    * Retry jitter (tenacity's ``wait_random``) draws from the ``random`` module: it is
      seeded so that a seed repeats exactly.
    * The ``payfallback`` logger is raised to CRITICAL: a weekend is some hundred thousand
      events, and an event no logger writes and no listener wants costs nothing. (The
      strategies hear the few they count through their listeners.)
    * The cyclic garbage collector runs rarely: a run allocates millions of short-lived
      objects, and full collections over the imported modules would cost a tenth of it.
    """
    state = random.getstate()
    logger = logging.getLogger("payfallback")
    level = logger.level
    threshold = gc.get_threshold()
    random.seed(seed)
    logger.setLevel(logging.CRITICAL)
    gc.freeze()
    gc.set_threshold(50_000, 20, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        logger.setLevel(level)
        random.setstate(state)


def _make(run: str, scenario: Scenario, shop: Shop, clock: SimClock, compensate: bool) -> Strategy:
    if run in ("baseline", "no_fallback"):
        return NoFallback(shop, clock)
    if run == "naive":
        return Naive(shop, clock)
    if run == "payfallback":
        return WithPayfallback(shop, clock, incidents=scenario.incidents, compensate=compensate)
    raise ValueError(f"unknown run {run!r}; use one of {', '.join(RUNS)}")


def run_one(
    run: str,
    scenario: Scenario,
    customers: Sequence[Customer],
    *,
    seed: int,
    compensate: bool = True,
    progress: Progress | None = None,
) -> RunOutcome:
    """Serve ``customers`` with one strategy (``baseline``: no fallback, no incident)."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    incidents = () if run == "baseline" else scenario.incidents
    clock = SimClock(scenario.start)
    shop = Shop(
        clock,
        seed=seed,
        incidents=incidents,
        latency=scenario.latency,
        card_pgs=scenario.card_pgs,
    )
    strategy = _make(run, scenario, shop, clock, compensate)
    results = bytearray(len(customers))
    waits = array("d", bytes(8 * len(customers)))
    total = len(customers)
    outcome: RunOutcome | None = None
    try:
        with _run_conditions(f"{seed}:{run}:jitter"):
            for n, customer in enumerate(customers):
                clock.arrive(customer.arrival)
                strategy.tick(customer.arrival)
                began = clock.monotonic()
                result = strategy.pay(customer)
                waits[n] = clock.monotonic() - began
                results[n] = _CODE[result]
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(run, n, total)
            # Settle what is left once the window is over, as the next cron run would.
            clock.arrive(max(clock.now(), scenario.end) + timedelta(minutes=15))
            strategy.finish()
        pending = [c.order_id for c, r in zip(customers, results, strict=True) if r == _PENDING]
        late = strategy.paid_orders(pending)
        approved = [
            r == _PAID or (r == _PENDING and c.order_id in late)
            for c, r in zip(customers, results, strict=True)
        ]
        outcome = RunOutcome(run, results, waits, approved)
        _ledgers(outcome, shop, customers)
        outcome.unresolved = len(pending) - len(late)
        if isinstance(strategy, WithPayfallback):
            outcome.refunds_owed = len(strategy.compensations)
            outcome.refunds_settled = len(strategy.compensations & strategy.refunds_settled)
            outcome.refunds_owed_krw, outcome.refunds_settled_krw = strategy.refund_amounts()
            outcome.breaker = _trips(scenario, shop, strategy)
        else:
            # Nobody tracks these: every extra or unrecorded charge is a refund owed.
            outcome.refunds_owed = outcome.double_charges + outcome.charged_not_recorded
            outcome.refunds_owed_krw = outcome.double_charged_krw + outcome.charged_not_recorded_krw
        if progress is not None:
            progress(run, total, total)
        return outcome
    finally:
        strategy.close()
        shop.close()
        if outcome is not None:
            outcome.wall_s = round(time.perf_counter() - wall0, 3)
            outcome.cpu_s = round(time.process_time() - cpu0, 3)


def _ledgers(outcome: RunOutcome, shop: Shop, customers: Sequence[Customer]) -> None:
    """Double and unrecorded charges, from what the providers' ledgers hold."""
    banks = list(shop.banks.values())
    doubles = double_charges(*banks)
    outcome.double_charges = len(doubles)
    outcome.double_charged_krw = sum(
        sum(e.amount - e.cancelled_amount for e in entries) - max(e.amount for e in entries)
        for entries in doubles.values()
    )
    index = {c.order_id: n for n, c in enumerate(customers)}
    outcome.doubled = sorted(index[order] for order in doubles if order in index)
    charged: dict[str, int] = {}
    for bank in banks:
        for entry in bank.live_charges():
            order = entry.order_ref.rpartition("_")[0]
            charged[order] = charged.get(order, 0) + entry.amount - entry.cancelled_amount
    for order, amount in charged.items():
        n = index.get(order)
        if n is not None and not outcome.approved[n]:
            outcome.charged_not_recorded += 1
            outcome.charged_not_recorded_krw += amount


def _trips(scenario: Scenario, shop: Shop, strategy: WithPayfallback) -> list[BreakerTrip]:
    trips = []
    for index, incident in enumerate(scenario.incidents):
        opened = next(
            (
                when
                for provider, when in strategy.opened
                if provider == incident.provider and incident.start <= when < incident.end
            ),
            None,
        )
        struck = shop.struck(index, incident.provider)
        # The call that tripped the breaker counts: it failed too.
        before = [t for t in struck if opened is None or t <= opened]
        trips.append(
            BreakerTrip(
                incident=incident.label,
                provider=incident.provider,
                opened_after_s=(
                    None if opened is None else round((opened - incident.start).total_seconds(), 1)
                ),
                failed_calls_before_open=len(before),
                announced=incident.announced,
            )
        )
    return trips


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    # Nearest rank: the smallest value with at least q of the values at or below it.
    rank = max(1, -(-len(ordered) * q // 1))
    return round(ordered[int(rank) - 1], 3)


def _bucket_minutes(hours: float) -> int:
    for minutes in (5, 10, 15, 30, 60, 120):
        if hours * 60 / minutes <= 120:
            return minutes
    return 240


def _timeline(
    scenario: Scenario, customers: Sequence[Customer], outcomes: dict[str, RunOutcome]
) -> Timeline:
    minutes = _bucket_minutes(scenario.hours)
    width = timedelta(minutes=minutes)
    count = max(1, -(-int(scenario.hours * 60) // minutes))
    starts = tuple(scenario.start + width * k for k in range(count))
    seen = [0] * count
    buckets = [
        int((c.arrival - scenario.start).total_seconds() // (minutes * 60)) for c in customers
    ]
    for b in buckets:
        seen[b] += 1
    approval: dict[str, tuple[float | None, ...]] = {}
    waited: dict[str, tuple[int, ...]] = {}
    doubled: dict[str, tuple[int, ...]] = {}
    for run in RUNS:
        outcome = outcomes[run]
        ok = [0] * count
        slow = [0] * count
        twice = [0] * count
        for b, approved, seconds in zip(buckets, outcome.approved, outcome.waits, strict=True):
            ok[b] += approved
            slow[b] += seconds > WAIT_LIMIT
        for n in outcome.doubled:
            twice[buckets[n]] += 1
        approval[run] = tuple(round(ok[k] / seen[k], 4) if seen[k] else None for k in range(count))
        waited[run] = tuple(slow)
        doubled[run] = tuple(twice)
    return Timeline(minutes, starts, approval, waited, tuple(seen), doubled)


def customers_of(scenario: Scenario, seed: int) -> list[Customer]:
    t = scenario.traffic
    return generate(
        start=scenario.start,
        end=scenario.end,
        tz=scenario.tz,
        payments_per_hour=t.payments_per_hour,
        mix=t.mix,
        median_amount=t.median_amount,
        declines=t.declines,
        cancels=t.cancels,
        seed=seed,
    )


def compare(
    scenario: Scenario,
    customers: Sequence[Customer],
    outcomes: dict[str, RunOutcome],
    *,
    seed: int,
    compensate: bool,
    workers: int = 1,
) -> SimulationReport:
    """The report over finished runs (``outcomes`` by run name, baseline included)."""
    amounts = [c.amount for c in customers]
    n = len(customers)

    def revenue(outcome: RunOutcome) -> int:
        return sum(a for a, ok in zip(amounts, outcome.approved, strict=True) if ok)

    base = outcomes["baseline"]
    base_approved = sum(base.approved)
    base_rate = base_approved / n if n else 0.0
    base_revenue = revenue(base)
    baseline = BaselineReport(
        customers=n,
        approved=base_approved,
        approval_rate=round(base_rate, 4),
        revenue_krw=base_revenue,
        checkout_p50_s=_percentile(base.waits, 0.50),
        checkout_p99_s=_percentile(base.waits, 0.99),
    )
    reports = {}
    for key, label in STRATEGIES.items():
        o = outcomes[key]
        approved = sum(o.approved)
        rate = approved / n if n else 0.0
        rev = revenue(o)
        reports[key] = StrategyReport(
            strategy=key,
            label=label,
            customers=n,
            approved=approved,
            approval_rate=round(rate, 4),
            approval_vs_baseline=round(rate / base_rate, 4) if base_rate else 0.0,
            revenue_krw=rev,
            lost_revenue_krw=base_revenue - rev,
            double_charges=o.double_charges,
            double_charged_krw=o.double_charged_krw,
            charged_not_recorded=o.charged_not_recorded,
            charged_not_recorded_krw=o.charged_not_recorded_krw,
            waited_over_5s=sum(1 for w in o.waits if w > WAIT_LIMIT),
            checkout_p50_s=_percentile(o.waits, 0.50),
            checkout_p99_s=_percentile(o.waits, 0.99),
            pending_at_checkout=o.results.count(_PENDING),
            unresolved=o.unresolved,
            declined_by_customer=o.results.count(_REFUSED),
            failed=o.results.count(_FAILED),
            refunds_owed=o.refunds_owed,
            refunds_owed_krw=o.refunds_owed_krw,
            refunds_settled=o.refunds_settled,
            refunds_settled_krw=o.refunds_settled_krw,
            breaker=tuple(o.breaker),
        )
    return SimulationReport(
        scenario=scenario,
        seed=seed,
        compensate=compensate,
        customers=n,
        baseline=baseline,
        strategies=reports,
        timeline=_timeline(scenario, customers, outcomes),
        timing={run: RunTiming(outcomes[run].wall_s, outcomes[run].cpu_s) for run in RUNS},
        workers=workers,
    )


def default_workers() -> int:
    """One process per run, up to the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(len(RUNS), cpus))


# -- running in worker processes ----------------------------------------------------------


def can_fork() -> bool:
    """Whether runs can go to forked worker processes here (Linux and the BSDs, not macOS
    or Windows, where forking is unsafe or absent; there the runs take turns)."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def _groups(workers: int) -> list[list[str]]:
    """Runs per worker: the payfallback run (the longest by far) alone, the others shared."""
    others = [r for r in RUNS if r != "payfallback"]
    groups: list[list[str]] = [["payfallback"]] + [[] for _ in range(min(workers, 4) - 1)]
    for n, run in enumerate(sorted(others, key=lambda r: r != "naive")):
        groups[1 + n % (len(groups) - 1)].append(run)
    return groups


def _child(
    conn: Connection,
    runs: list[str],
    scenario: Scenario,
    seed: int,
    compensate: bool,
    done: Any,
) -> None:
    try:
        customers = customers_of(scenario, seed)
        out = {}
        for run in runs:
            index = RUNS.index(run)

            def report(_run: str, n: int, _total: int, index: int = index) -> None:
                done[index] = n

            out[run] = run_one(
                run, scenario, customers, seed=seed, compensate=compensate, progress=report
            )
        conn.send(("ok", out))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _in_processes(
    scenario: Scenario,
    total: int,
    *,
    seed: int,
    compensate: bool,
    progress: Progress | None,
    workers: int,
) -> dict[str, RunOutcome]:
    # Forked, not spawned: a child starts at once with everything imported, and there is
    # no main module to re-import. The caller must not hold other threads mid-step (the
    # CLI's progress bar refreshes from this thread, in the callback).
    ctx = multiprocessing.get_context("fork")
    done = ctx.Array("q", len(RUNS), lock=False)
    children: dict[Connection, tuple[BaseProcess, list[str]]] = {}
    child: BaseProcess
    try:
        for group in _groups(workers):
            receive, send = ctx.Pipe(duplex=False)
            child = ctx.Process(
                target=_child,
                args=(send, group, scenario, seed, compensate, done),
                name=f"payfallback-simulate-{'-'.join(group)}",
                daemon=True,
            )
            child.start()
            send.close()
            children[receive] = (child, group)
        outcomes: dict[str, RunOutcome] = {}
        waiting = dict(children)
        while waiting:
            for ready in wait(list(waiting), timeout=0.1):
                assert isinstance(ready, Connection)
                child, group = waiting.pop(ready)
                try:
                    status, payload = ready.recv()
                except EOFError:
                    child.join()
                    raise RuntimeError(
                        f"the simulation worker for {', '.join(group)} stopped "
                        f"(exit code {child.exitcode})"
                    ) from None
                if status != "ok":
                    raise RuntimeError(f"the simulation of {', '.join(group)} failed:\n{payload}")
                outcomes.update(payload)
            if progress is not None:
                for n, run in enumerate(RUNS):
                    progress(run, total if run in outcomes else int(done[n]), total)
        return outcomes
    finally:
        for receive, (child, _) in children.items():
            if child.is_alive():
                child.terminate()
            child.join()
            receive.close()


def simulate(
    scenario: Scenario,
    *,
    seed: int = 1,
    compensate: bool = True,
    progress: Progress | None = None,
    workers: int | None = None,
) -> SimulationReport:
    """Run the no-outage baseline and the three strategies on the same customers.

    The runs are independent, so with ``workers`` > 1 (default: one per CPU, up to four)
    they run in forked processes where the platform allows (:func:`can_fork`); the report
    is the same either way. ``progress`` is called with ``(run, customers done, customers
    in all)`` as they go, from the calling thread.
    """
    began = time.perf_counter()
    customers = customers_of(scenario, seed)
    workers = default_workers() if workers is None else workers
    forked = workers > 1 and can_fork()
    if forked:
        outcomes = _in_processes(
            scenario,
            len(customers),
            seed=seed,
            compensate=compensate,
            progress=progress,
            workers=workers,
        )
    else:
        # The longest run first, while the heap is fresh; the order changes no figure.
        outcomes = {
            run: run_one(
                run, scenario, customers, seed=seed, compensate=compensate, progress=progress
            )
            for run in sorted(RUNS, key=lambda r: r != "payfallback")
        }
    report = compare(
        scenario,
        customers,
        outcomes,
        seed=seed,
        compensate=compensate,
        workers=min(workers, len(_groups(workers))) if forked else 1,
    )
    return replace(report, wall_s=round(time.perf_counter() - began, 3))
