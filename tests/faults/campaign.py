"""Fault campaign: thousands of schedules over the real adapters, one table of figures.

Run it from the repository root::

    python -m tests.faults.campaign --schedules 10000 --seed 1
    python -m tests.faults.campaign --schedules 10000 --seed 1 --json
    python -m tests.faults.campaign --seed 1 --only 4711      # one schedule, in detail

Schedule ``i`` of seed ``s`` is drawn (:func:`tests.faults.runner.draw_schedule`, the
same drawing the test suite's hypothesis strategy uses) from ``random.Random(f"{s}-{i}")``
and runs with the global ``random`` seeded alike (tenacity's jitter), so any schedule can
be run again alone with ``--only i``. Each pays one to four orders at one to three of
Toss Payments, NICEPAY and PortOne (billing keys) under per-request faults and crashes
(:mod:`tests.faults.emulator`), then lets the providers come back and runs ``recover()``
(:mod:`tests.faults.runner`). The figures:

================  =========================================================================
double charges    orders with more than one live charge across the providers' ledgers
orphaned charges  live charges the journal neither records as the payment nor gives back
lost refunds      refunds still owed, or settled in the journal but not at the provider
extra refunds     more cancelled at a provider than the journal settled
phantom payments  payments the journal recorded that no ledger holds
unresolved        attempts (and refunds) still open after the bounded recovery
open w/o proof    of those, ones that hold no money and whose provider offers nothing
                  that could prove it (NICEPAY after a request that hung)
secrets leaked    secret values found in errors, events, logs, return values or the journal
errors not …      exceptions out of the Router that are not a ``PayfallbackError``
================  =========================================================================

The exit status is 0 only when the money figures are all zero, nothing but the
proof-less is left open, and no secret leaked. ``--jobs N`` spreads the schedules over N
processes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from tests.faults.runner import Outcome, Schedule, draw_schedule, run_schedule

T = TypeVar("T")

LABELS = {
    "schedules": "schedules run",
    "orders": "orders",
    "double_charges": "double charges",
    "orphaned_charges": "orphaned charges",
    "lost_refunds": "lost refunds",
    "extra_refunds": "extra refunds",
    "phantom_payments": "phantom payments",
    "unresolved": "unresolved",
    "open_without_proof": "  of which open without proof",
    "secrets_leaked": "secrets leaked",
    "library_errors": "errors not PayfallbackError",
    "crashes": "crashes (POS restarts)",
    "secrets_echoed": "answers echoing secrets",
    "log_events": "events checked",
}


class _Random:
    """A seeded :class:`random.Random` as the runner's ``Pick``."""

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)


def schedule_for(seed: int, index: int) -> Schedule:
    return draw_schedule(_Random(f"{seed}-{index}"))


def run_one(seed: int, index: int) -> Outcome:
    random.seed(f"{seed}-{index}-run")
    outcome = run_schedule(schedule_for(seed, index))
    if not outcome.ok:
        outcome.problems = [f"schedule {index}: {p}" for p in outcome.problems]
    return outcome


def run_range(seed: int, start: int, stop: int) -> Outcome:
    total = Outcome(schedules=0)
    for index in range(start, stop):
        total.add(run_one(seed, index))
    return total


def campaign(schedules: int, seed: int, jobs: int = 1) -> Outcome:
    if jobs <= 1:
        return run_range(seed, 0, schedules)
    step = max(1, schedules // (jobs * 8))
    bounds = [(i, min(i + step, schedules)) for i in range(0, schedules, step)]
    total = Outcome(schedules=0)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_range, seed, a, b) for a, b in bounds]
        for future in futures:
            total.add(future.result())
    return total


def table(doc: dict[str, Any]) -> str:
    width = max(len(v) for v in LABELS.values()) + 2
    lines = [f"{label:<{width}}{doc[key]:>10,}" for key, label in LABELS.items()]
    lines.append(f"{'seed':<{width}}{doc['seed']:>10}")
    lines.append(f"{'seconds':<{width}}{doc['seconds']:>10}")
    lines.append(f"{'verdict':<{width}}{'PASS' if doc['ok'] else 'FAIL':>10}")
    if doc["open_kinds"]:
        lines.append("")
        lines.append("left open, by kind:")
        lines.extend(f"  {n:>6,}  {kind}" for kind, n in doc["open_kinds"].items())
    if doc["problems"]:
        lines.append("")
        lines.append("first problems:")
        lines.extend(f"  {p}" for p in doc["problems"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.campaign",
        description="Run fault schedules over the real adapters and print the figures.",
    )
    parser.add_argument("--schedules", type=int, default=1_000, help="how many (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="campaign seed (default 1)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--only", type=int, default=None, help="run schedule ONLY alone and show it in detail"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.only is not None:
        schedule = schedule_for(args.seed, args.only)
        print(schedule)
        outcome = run_one(args.seed, args.only)
        print(outcome.report())
        return 0 if outcome.ok else 1
    outcome = campaign(args.schedules, args.seed, args.jobs)
    doc: dict[str, Any] = {
        **outcome.figures(),
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "ok": outcome.ok,
        "open_kinds": dict(outcome.open_kinds.most_common()),
        "problems": outcome.problems[:10],
    }
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print(table(doc))
        if outcome.state:
            print("\nfirst failing order:")
            print("\n".join(f"  {line}" for line in outcome.state))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
