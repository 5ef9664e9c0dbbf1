"""Breaker admission + record against pybreaker, purgatory and aiobreaker, as ratios in one run.

Each breaker wraps the same trivial call, in the way its documentation shows:

* payfallback: ``adm = breaker.admit(); fn(); breaker.record(adm, duration=…, failure=False)``,
  on a new breaker (fresh window) and on one whose sliding window is full, as under steady
  traffic (``bench_core.SteadyClock``: 500 payments a second, every bucket in use);
* pybreaker: ``pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60).call(fn)``;
* purgatory (sync API): ``with factory.get_breaker("name"): fn()``, the context manager of
  its README, and the ``@factory("name")`` decorator, which does the same per call;
* aiobreaker, when installed: ``CircuitBreaker(fail_max=5, timeout_duration=timedelta(
  seconds=60))`` around an ``async def`` as its README shows (``@breaker``, awaited), against
  payfallback around the same coroutine; and its synchronous ``call(fn)`` next to pybreaker's.

A bare ``fn()`` (and a bare ``await afn()`` for the async rows) is measured in the same rounds
and subtracted, so the ratios compare the breakers' own cost. Every variant runs in every
round, in an order that rotates from round to round; a ratio is the median of the per-round
ratios, with their interquartile range. The measuring helpers are ``bench_core``'s.

Run ``python benchmarks/bench_breakers.py [--quick] [--json out.json]``; :func:`run`
returns the figures as a dict and prints nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypedDict

import purgatory
import pybreaker

from benchmarks._output import command
from benchmarks.bench_core import (
    BREAKER_GOAL,
    Batch,
    Row,
    SteadyClock,
    _measure,
    _minus,
    _noop,
    _ns,
    _paired,
    _row,
    bench_breaker_of,
    fill,
    ratio_cells,
)
from payfallback.breaker import CircuitBreaker

aiobreaker: Any  # untyped; optional (in the ``dev`` extra, but the comparison runs without it)
try:
    aiobreaker = importlib.import_module("aiobreaker")
except ImportError:  # pragma: no cover - depends on the environment
    aiobreaker = None

__all__ = ["PURGATORY_GOAL", "BreakersReport", "format_table", "main", "run"]

#: payfallback's admit + record, net of the call, against purgatory's context manager.
PURGATORY_GOAL = 0.6

PYBREAKER = "pybreaker call, net of fn()"
PURGATORY = "purgatory with get_breaker(), net of fn()"
AIOBREAKER = "aiobreaker call, net of fn()"
AIOBREAKER_ASYNC = "aiobreaker @breaker async, net of await afn()"


class BreakersReport(TypedDict):
    meta: dict[str, Any]
    rows: list[Row]


_FULL = (31, 5000, 3)  # rounds, batch, warm-up batches
_QUICK = (7, 1000, 1)


def _timed(call: Callable[[], object]) -> Batch:
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


def _aiobreaker_call() -> Batch:
    breaker = _aiobreaker()

    def batch(n: int) -> int:
        b, f = breaker, _noop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            b.call(f)
        return time.perf_counter_ns() - t0

    return batch


def _aiobreaker() -> Any:
    """A breaker as aiobreaker's README builds one (its ``reset_timeout`` is now called
    ``timeout_duration``)."""
    assert aiobreaker is not None
    return aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))


async def _anoop() -> None:
    return None


def _on_loop(loop: asyncio.AbstractEventLoop, batch: Callable[[int], Awaitable[int]]) -> Batch:
    """A batch of awaits, timed inside one task (the loop's own start-up is not timed)."""

    def run(n: int) -> int:
        async def main() -> int:
            return await batch(n)

        return loop.run_until_complete(main())

    return run


def _async_bare(n: int) -> Awaitable[int]:
    async def batch() -> int:
        f = _anoop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await f()
        return time.perf_counter_ns() - t0

    return batch()


def _async_ours(breaker: CircuitBreaker) -> Callable[[int], Awaitable[int]]:
    async def batch(n: int) -> int:
        b, f = breaker, _anoop
        t0 = time.perf_counter_ns()
        for _ in range(n):
            adm = b.admit()
            await f()
            b.record(adm, duration=0.001, failure=False)
        return time.perf_counter_ns() - t0

    return batch


def _async_aiobreaker() -> Callable[[int], Awaitable[int]]:
    guarded: Callable[[], Awaitable[None]] = _aiobreaker()(_anoop)

    async def batch(n: int) -> int:
        f = guarded
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await f()
        return time.perf_counter_ns() - t0

    return batch


def run(quick: bool = False) -> BreakersReport:
    """Measure every breaker once and return the figures (nothing is printed)."""
    rounds, batch, warmup = _QUICK if quick else _FULL
    started = time.perf_counter()
    steady = bench_breaker_of(SteadyClock())
    steady_async = bench_breaker_of(SteadyClock())
    full = [fill(steady), fill(steady_async)]
    loop = asyncio.new_event_loop()
    variants: dict[str, Batch] = {
        "bare": _timed(_noop),
        "ours": _ours(bench_breaker_of()),
        "steady": _ours(steady),
        "pybreaker": _pybreaker(),
        "purgatory": _purgatory_with(),
        "purgatory_deco": _purgatory_decorated(),
    }
    if aiobreaker is not None:
        variants |= {
            "aiobreaker": _aiobreaker_call(),
            "abare": _on_loop(loop, _async_bare),
            "aours": _on_loop(loop, _async_ours(bench_breaker_of())),
            "asteady": _on_loop(loop, _async_ours(steady_async)),
            "aiobreaker_async": _on_loop(loop, _async_aiobreaker()),
        }
    try:
        s = _measure(variants, rounds=rounds, batch=batch, warmup=warmup)
    finally:
        loop.close()
    net = {k: _minus(v, s["bare"]) for k, v in s.items() if k in _SYNC and k != "bare"}
    net |= {k: _minus(v, s["abare"]) for k, v in s.items() if k not in _SYNC and k != "abare"}

    def vs(name: str, key: str, base: str, base_name: str, goal: float | None = None) -> Row:
        return _row(
            name,
            net[key],
            baseline=base_name,
            ratios=_paired(net[key], net[base]),
            baseline_per_op=net[base],
            goal=goal,
        )

    fresh, steady_name = "breaker admit+record, net of fn()", "same, full window (steady traffic)"
    rows = [
        _row("bare fn() + loop", s["bare"]),
        _row(PYBREAKER, net["pybreaker"]),
        _row(PURGATORY, net["purgatory"]),
        vs("purgatory @decorator, net of fn()", "purgatory_deco", "pybreaker", PYBREAKER),
        vs(fresh, "ours", "pybreaker", PYBREAKER, BREAKER_GOAL),
        vs(steady_name, "steady", "pybreaker", PYBREAKER, BREAKER_GOAL),
        vs(fresh, "ours", "purgatory", PURGATORY, PURGATORY_GOAL),
        vs(steady_name, "steady", "purgatory", PURGATORY, PURGATORY_GOAL),
    ]
    if aiobreaker is not None:
        async_fresh = "breaker admit+await+record, net of await afn()"
        rows += [
            _row(AIOBREAKER, net["aiobreaker"]),
            vs(fresh, "ours", "aiobreaker", AIOBREAKER),
            vs(steady_name, "steady", "aiobreaker", AIOBREAKER),
            _row("bare await afn() + loop", s["abare"]),
            _row(AIOBREAKER_ASYNC, net["aiobreaker_async"]),
            vs(async_fresh, "aours", "aiobreaker_async", AIOBREAKER_ASYNC),
            vs(steady_name, "asteady", "aiobreaker_async", AIOBREAKER_ASYNC),
        ]
    meta = {
        "quick": quick,
        "python": platform.python_version(),
        "pybreaker": version("pybreaker"),
        "purgatory": version("purgatory"),
        "aiobreaker": _version_or_none("aiobreaker"),
        "rounds": rounds,
        "batch": batch,
        # Calls in the last 60 s of the full-window breakers once filled: 250 in each of the
        # 120 buckets (30,000, or 29,750 if the newest has just started).
        "full_window_calls": full,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return BreakersReport(meta=meta, rows=rows)


#: The variants timed around a plain call (the others await a coroutine).
_SYNC = frozenset(
    {"bare", "ours", "steady", "pybreaker", "purgatory", "purgatory_deco", "aiobreaker"}
)


def _version_or_none(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def format_table(report: BreakersReport) -> str:
    meta = report["meta"]
    aio = f", aiobreaker {meta['aiobreaker']}" if meta["aiobreaker"] else ", no aiobreaker"
    lines = [
        f"== breakers{' (quick: rough figures)' if meta['quick'] else ''}: "
        f"pybreaker {meta['pybreaker']}, purgatory {meta['purgatory']}{aio}, "
        f"{meta['rounds']} rounds of {meta['batch']}, {meta['seconds']} s",
        f"{'name':<48} {'median/op':>10} {'ratio':>6} {'IQR':>13} {'of min':>6} {'goal':>6} met",
    ]
    for row in report["rows"]:
        ratio, iqr, of_min, goal, met = ratio_cells(row)
        lines.append(
            f"{row['name']:<48} {_ns(row['ns_per_op']):>10} {ratio:>6} {iqr:>13} "
            f"{of_min:>6} {goal:>6} {met}"
        )
        if row["baseline"] is not None:
            lines.append(f"{'':<4}vs {row['baseline']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return command(
        argv,
        prog="bench_breakers.py",
        description="breaker admission + record: payfallback vs pybreaker, purgatory, aiobreaker",
        quick="smoke run: a few seconds, rough",
        run=run,
        table=format_table,
    )


if __name__ == "__main__":
    sys.exit(main())
