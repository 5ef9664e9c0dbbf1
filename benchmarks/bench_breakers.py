"""Breaker admission + record against pybreaker and purgatory, as ratios measured in one run.

Each breaker wraps the same trivial call, in the way its documentation shows:

* payfallback: ``adm = breaker.admit(); fn(); breaker.record(adm, duration=…, failure=False)``;
  on a new breaker, and on one whose sliding window is full, as under steady traffic;
* pybreaker: ``pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60).call(fn)``;
* purgatory (sync API): ``with factory.get_breaker("name"): fn()``, the context manager of
  its README, and the ``@factory("name")`` decorator, which does the same per call.

A bare ``fn()`` (plus loop) is measured in the same rounds and subtracted, so the ratios
compare the breakers' own cost. The measuring helpers (rounds, rotated order, medians of
per-round ratios) are ``bench_core``'s.

Run ``python benchmarks/bench_breakers.py [--quick] [--json out.json]``; :func:`run`
returns the figures as a dict and prints nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any, TypedDict

import purgatory
import pybreaker

from benchmarks.bench_core import (
    BREAKER_GOAL,
    Batch,
    Row,
    _FastMonotonicClock,
    _measure,
    _minus,
    _noop,
    _ns,
    _paired,
    _row,
    ratio_cells,
)
from payfallback.breaker import BreakerRegistry, CircuitBreaker
from payfallback.models import Method

__all__ = ["BreakersReport", "format_table", "main", "run"]


class BreakersReport(TypedDict):
    meta: dict[str, Any]
    rows: list[Row]


_FULL = (31, 5000, 3)  # rounds, batch, warm-up batches
_QUICK = (7, 1000, 1)


def _timed(call: Callable[[], None]) -> Batch:
    def batch(n: int) -> int:
        c = call
        t0 = time.perf_counter_ns()
        for _ in range(n):
            c()
        return time.perf_counter_ns() - t0

    return batch


def _ours(breaker: CircuitBreaker) -> Batch:
    def batch(n: int) -> int:
        b, f = breaker, _noop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            adm = b.admit()
            f()
            b.record(adm, duration=0.001, failure=False)
        return time.perf_counter_ns() - t0

    return batch


def _pybreaker() -> Batch:
    # As pybreaker's README sets up an integration point.
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

    def batch(n: int) -> int:
        b, f = breaker, _noop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            b.call(f)
        return time.perf_counter_ns() - t0

    return batch


def _purgatory_with() -> Batch:
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)

    def batch(n: int) -> int:
        fac, f = factory, _noop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            with fac.get_breaker("bench"):
                f()
        return time.perf_counter_ns() - t0

    return batch


def _purgatory_decorated() -> Batch:
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    guarded: Callable[[], None] = factory("bench")(_noop)
    return _timed(guarded)


def run(quick: bool = False) -> BreakersReport:
    """Measure every breaker once and return the figures (nothing is printed)."""
    rounds, batch, warmup = _QUICK if quick else _FULL
    started = time.perf_counter()
    s = _measure(
        {
            "bare": _timed(_noop),
            "ours": _ours(BreakerRegistry().get("bench", Method.CARD.value)),
            "steady": _ours(
                BreakerRegistry(clock=_FastMonotonicClock(1000.0)).get("bench", Method.CARD.value)
            ),
            "pybreaker": _pybreaker(),
            "purgatory": _purgatory_with(),
            "purgatory_deco": _purgatory_decorated(),
        },
        rounds=rounds,
        batch=batch,
        warmup=warmup,
    )
    net = {k: _minus(v, s["bare"]) for k, v in s.items() if k != "bare"}
    py_base = "pybreaker call, net of fn()"
    pg_base = "purgatory with get_breaker(), net of fn()"

    def vs(name: str, key: str, base: str, base_name: str, goal: float | None) -> Row:
        return _row(
            name,
            net[key],
            baseline=base_name,
            ratios=_paired(net[key], net[base]),
            baseline_per_op=net[base],
            goal=goal,
        )

    rows = [
        _row("bare fn() + loop", s["bare"]),
        _row(py_base, net["pybreaker"]),
        _row(pg_base, net["purgatory"]),
        vs("purgatory @decorator, net of fn()", "purgatory_deco", "pybreaker", py_base, None),
        vs("breaker admit+record, net of fn()", "ours", "pybreaker", py_base, BREAKER_GOAL),
        vs("same, full window (steady traffic)", "steady", "pybreaker", py_base, BREAKER_GOAL),
        vs("breaker admit+record, net of fn()", "ours", "purgatory", pg_base, None),
        vs("same, full window (steady traffic)", "steady", "purgatory", pg_base, None),
    ]
    meta = {
        "quick": quick,
        "python": platform.python_version(),
        "pybreaker": version("pybreaker"),
        "purgatory": version("purgatory"),
        "rounds": rounds,
        "batch": batch,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return BreakersReport(meta=meta, rows=rows)


def format_table(report: BreakersReport) -> str:
    meta = report["meta"]
    lines = [
        f"== breakers{' (quick: rough figures)' if meta['quick'] else ''}: "
        f"pybreaker {meta['pybreaker']}, purgatory {meta['purgatory']}, {meta['seconds']} s",
        f"{'name':<42} {'median/op':>10} {'ratio':>6} {'IQR':>13} {'of min':>6} {'goal':>6} met",
    ]
    for row in report["rows"]:
        ratio, iqr, of_min, goal, met = ratio_cells(row)
        lines.append(
            f"{row['name']:<42} {_ns(row['ns_per_op']):>10} {ratio:>6} {iqr:>13} "
            f"{of_min:>6} {goal:>6} {met}"
        )
        if row["baseline"] is not None:
            lines.append(f"{'':<4}vs {row['baseline']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_breakers.py",
        description="breaker admission + record: payfallback vs pybreaker vs purgatory",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a few seconds, rough")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    report = run(quick=args.quick)
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
