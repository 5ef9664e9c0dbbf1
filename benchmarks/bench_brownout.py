"""``peak-brownout``: payfallback against a pybreaker + tenacity composition, same traffic.

The ``peak-brownout`` scenario (Friday 18:00-20:00, the primary card PG answers in about
5 s and 30 % of its calls time out) is run on the simulator's clock for:

* **payfallback**: the simulator's own ``payfallback`` strategy, through the public
  :func:`payfallback.simulate.simulate` (its breaker-trip figure), and served once more
  customer by customer to count who was affected;
* **pybreaker + tenacity**: the simulator's hand-written shop (plain httpx, the next
  provider when one fails: ``naive``), with each request wrapped as the two libraries'
  documentation shows. One ``pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)`` per
  provider, living for the whole run ("Usage" in pybreaker's README,
  https://pypi.org/project/pybreaker), inside a tenacity retry with
  ``stop=stop_after_attempt(3)`` and ``wait=wait_exponential(multiplier=1, min=4, max=10)``
  (the exponential-wait example of tenacity's README, https://github.com/jd/tenacity,
  "Waiting before retrying"), retrying transport errors and 5xx. An open breaker
  (``CircuitBreakerError``) is not retried: the shop moves on to the next provider.

The simulator's public API has no hook for an extra strategy, so the composition is
served by this file with the simulator's own pieces: the same generated customers, the
same :class:`~payfallback.testing.FakeBank` providers whose ``fault_fn`` and
``latency_fn`` follow the scenario, the same clock, and the same loop as the simulator's
runs. pybreaker reads the wall clock (``datetime.now``) for its reset timeout; its state
storage here translates that to the simulated clock, so ``reset_timeout=60`` means 60
simulated seconds.

Figures per strategy: time from the brown-out's start to the first breaker opening for
the struck provider, the faulted requests up to then, and the customers affected (their
checkout took over 5 s, or the shop could not take the payment), with double charges and
charges the shop never recorded from the providers' ledgers.

Run ``python benchmarks/bench_brownout.py [--quick] [--json out.json]``; ``--quick`` runs
the first 3 hours (the brown-out's first hour). :func:`run` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any, TypedDict

import httpx
import pybreaker
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from benchmarks._output import store_json
from payfallback.simulate import Scenario, load_scenario, simulate
from payfallback.simulate._clock import SimClock
from payfallback.simulate._engine import (
    WAIT_LIMIT,
    RunOutcome,
    _ledgers,
    _run_conditions,
    customers_of,
    run_one,
)
from payfallback.simulate._shop import PROVIDERS, Shop
from payfallback.simulate._strategies import Naive, Result, _ServerError
from payfallback.simulate._traffic import Customer

__all__ = ["BrownoutReport", "StrategyFigures", "format_table", "main", "run"]

SCENARIO = "peak-brownout"


class StrategyFigures(TypedDict):
    strategy: str
    customers: int
    approved: int
    #: Seconds from the incident's start to the first breaker opening for its provider.
    opened_after_s: float | None
    #: Requests that met the incident's faults up to then (all of them if it never opened).
    failed_calls_before_open: int
    #: Breaker openings for the struck provider during the incident (None: not counted;
    #: the simulator reports payfallback's first opening only).
    openings: int | None
    waited_over_5s: int
    failed: int
    #: Customers who waited over 5 s or whose payment the shop could not take.
    affected: int
    double_charges: int
    charged_not_recorded: int


class BrownoutReport(TypedDict):
    meta: dict[str, Any]
    strategies: list[StrategyFigures]
    #: ``affected`` of the composition over payfallback's (how many times more customers).
    affected_ratio: float | None


class _SimTimeStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-memory state, with its open time on the simulated clock.

    pybreaker compares ``opened_at`` with ``datetime.now(UTC)``; this storage keeps the
    simulated opening time and reports the wall time that lies as far in the past as the
    opening does on the simulated clock.
    """

    def __init__(self, clock: SimClock) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._sim_opened: float | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._sim_opened is None:
            return None
        return datetime.now(UTC) - timedelta(seconds=self._clock.monotonic() - self._sim_opened)

    @opened_at.setter
    def opened_at(self, value: datetime) -> None:
        self._sim_opened = self._clock.monotonic()


class _Openings(pybreaker.CircuitBreakerListener):
    def __init__(self, provider: str, clock: SimClock, out: list[tuple[str, datetime]]) -> None:
        self._provider, self._clock, self._out = provider, clock, out

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self._out.append((self._provider, self._clock.now()))


class PybreakerTenacity(Naive):
    """The simulator's hand-written shop, each request in a pybreaker breaker inside tenacity."""

    key = "pybreaker_tenacity"

    def __init__(self, shop: Shop, clock: SimClock) -> None:
        super().__init__(shop, clock)
        #: ``(provider, when)`` of every opening.
        self.opened: list[tuple[str, datetime]] = []
        self._breakers = {
            name: pybreaker.CircuitBreaker(
                fail_max=5,
                reset_timeout=60,
                state_storage=_SimTimeStorage(clock),
                listeners=[_Openings(name, clock, self.opened)],
                name=name,
            )
            for name in PROVIDERS
        }
        self._retry = Retrying(
            stop=stop_after_attempt(3),
            wait=wait_exponential(multiplier=1, min=4, max=10),
            # What the hand-written shop retries: transport errors and 5xx.
            retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
            sleep=clock.sleep,
            reraise=True,
        )

    def _post(self, provider: str, path: str, body: dict[str, Any]) -> Any:
        breaker = self._breakers[provider]

        url = self._url(provider, path)

        def once() -> Any:
            return self._send(url, body)

        return self._retry(lambda: breaker.call(once))

    def _call(self, provider: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return super()._call(provider, path, body)
        except pybreaker.CircuitBreakerError:
            # Open (or just tripped): this provider is skipped, the next one is tried.
            return None


def _serve(
    scenario: Scenario, customers: Sequence[Customer], seed: int
) -> tuple[RunOutcome, list[tuple[str, datetime]], list[datetime]]:
    """Serve ``customers`` with the composition, as the simulator serves a run."""
    clock = SimClock(scenario.start)
    shop = Shop(clock, seed=seed, incidents=scenario.incidents, latency=scenario.latency)
    strategy = PybreakerTenacity(shop, clock)
    results = bytearray(len(customers))
    waits = array("d", bytes(8 * len(customers)))
    codes = {r: n for n, r in enumerate(Result)}
    try:
        with _run_conditions(f"{seed}:pybreaker_tenacity:jitter"):
            for n, customer in enumerate(customers):
                clock.arrive(customer.arrival)
                began = clock.monotonic()
                result = strategy.pay(customer)
                waits[n] = clock.monotonic() - began
                results[n] = codes[result]
        approved = [r == codes[Result.PAID] for r in results]
        outcome = RunOutcome("pybreaker_tenacity", results, waits, approved)
        _ledgers(outcome, shop, customers)
        return outcome, strategy.opened, list(shop.struck(0, scenario.incidents[0].provider))
    finally:
        strategy.close()
        shop.close()


def _figures(
    name: str,
    scenario: Scenario,
    outcome: RunOutcome,
    opened: Sequence[tuple[str, datetime]],
    struck: Sequence[datetime],
) -> StrategyFigures:
    incident = scenario.incidents[0]
    during = [
        when
        for provider, when in opened
        if provider == incident.provider and incident.start <= when < incident.end
    ]
    first = during[0] if during else None
    failed_code = list(Result).index(Result.FAILED)
    affected = sum(
        1
        for code, wait in zip(outcome.results, outcome.waits, strict=True)
        if code == failed_code or wait > WAIT_LIMIT
    )
    return StrategyFigures(
        strategy=name,
        customers=len(outcome.results),
        approved=sum(outcome.approved),
        opened_after_s=(
            None if first is None else round((first - incident.start).total_seconds(), 1)
        ),
        failed_calls_before_open=len([t for t in struck if first is None or t <= first]),
        openings=len(during),
        waited_over_5s=sum(1 for w in outcome.waits if w > WAIT_LIMIT),
        failed=outcome.results.count(failed_code),
        affected=affected,
        double_charges=outcome.double_charges,
        charged_not_recorded=outcome.charged_not_recorded,
    )


def run(quick: bool = False, *, seed: int = 1) -> BrownoutReport:
    """Run both strategies over the scenario and return the figures (nothing is printed)."""
    started = time.perf_counter()
    scenario = load_scenario(SCENARIO)
    if quick:
        scenario = scenario.trimmed(3.0)
    customers = customers_of(scenario, seed)

    # payfallback through the public API (the breaker figure the simulator reports) ...
    public = simulate(scenario, seed=seed, workers=1).strategies["payfallback"]
    # ... and its run once more, to see each customer (the same run: same seed, same figures).
    ours = run_one("payfallback", scenario, customers, seed=seed)
    incident = scenario.incidents[0]
    trip = ours.breaker[0]
    if public.breaker[0] != trip or public.waited_over_5s != sum(
        w > WAIT_LIMIT for w in ours.waits
    ):
        raise RuntimeError("the payfallback run did not repeat the public simulate() figures")
    ours_fig = _figures("payfallback", scenario, ours, [], [])
    ours_fig["opened_after_s"] = trip.opened_after_s
    ours_fig["failed_calls_before_open"] = trip.failed_calls_before_open
    ours_fig["openings"] = None

    theirs, their_opened, struck = _serve(scenario, customers, seed)
    theirs_fig = _figures("pybreaker + tenacity", scenario, theirs, their_opened, struck)
    meta = {
        "quick": quick,
        "scenario": scenario.name,
        "hours": scenario.hours,
        "seed": seed,
        "incident": f"{incident.label} ({incident.provider})",
        "wait_limit_s": WAIT_LIMIT,
        "pybreaker": version("pybreaker"),
        "tenacity": version("tenacity"),
        "composition": "pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60) per provider "
        "inside tenacity Retrying(stop_after_attempt(3), wait_exponential(multiplier=1, "
        "min=4, max=10)), 10 s timeout, next provider when one fails or is open",
        "seconds": round(time.perf_counter() - started, 1),
    }
    ratio = theirs_fig["affected"] / ours_fig["affected"] if ours_fig["affected"] else None
    return BrownoutReport(meta=meta, strategies=[ours_fig, theirs_fig], affected_ratio=ratio)


def format_table(report: BrownoutReport) -> str:
    meta = report["meta"]
    lines = [
        f"== {meta['scenario']}{' (quick: first 3 h)' if meta['quick'] else ''}, seed "
        f"{meta['seed']}: {meta['incident']}, {meta['seconds']} s",
        f"{'strategy':<22} {'opened after':>12} {'faulted calls':>13} {'waited>5s':>9} "
        f"{'failed':>6} {'affected':>8} {'approved':>8} {'double':>6} {'unrecorded':>10}",
    ]
    for f in report["strategies"]:
        opened = "never" if f["opened_after_s"] is None else f"{f['opened_after_s']:.1f} s"
        lines.append(
            f"{f['strategy']:<22} {opened:>12} {f['failed_calls_before_open']:>13} "
            f"{f['waited_over_5s']:>9} {f['failed']:>6} {f['affected']:>8} "
            f"{f['approved']:>8} {f['double_charges']:>6} {f['charged_not_recorded']:>10}"
        )
    if report["affected_ratio"] is not None:
        lines.append(
            f"customers affected (waited > {meta['wait_limit_s']:g} s or failed): "
            f"pybreaker + tenacity / payfallback = {report['affected_ratio']:.2f}x"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_brownout.py",
        description="peak-brownout: payfallback vs a pybreaker + tenacity composition",
    )
    parser.add_argument("--quick", action="store_true", help="the first 3 hours only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    report = run(quick=args.quick, seed=args.seed)
    print(format_table(report))
    return store_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
