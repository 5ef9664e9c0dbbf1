"""Every benchmark in one run: one table on stdout, every figure in one JSON file.

``python benchmarks/run_all.py [--quick] [--out benchmarks/results.json] [--no-services]``

Runs, in this order:

* the peak memory and wall time of a weekend simulation: ``payfallback simulate --scenario
  kakao-fire-2022 --seed 1 --json`` in a subprocess (first, so that the largest process
  this script has waited for is one of the simulation's: ``ru_maxrss`` of
  ``RUSAGE_CHILDREN`` is the peak RSS of the largest process in the subprocess's tree);
* ``bench_core`` (breaker vs pybreaker, Router vs bare httpx), ``bench_breakers`` (vs
  pybreaker and purgatory), ``bench_throughput`` (loopback, concurrency 1/16/64),
  ``bench_peak`` (the AsyncRouter at peak load against raw asyncio and bare httpx; its
  PostgreSQL row is skipped with ``--no-services``), ``bench_threads`` (the sync Router
  from 16 and 64 threads vs bare ``httpx.Client``), ``bench_brownout``
  (``peak-brownout`` vs pybreaker + tenacity) and ``bench_import`` (``import
  payfallback`` vs ``import httpx, pydantic`` in fresh interpreters);
* ``bench_scale``, which needs Redis and PostgreSQL. ``--no-services`` skips it, and says
  so; without the flag, a bench_scale that cannot be imported or fails is an error.

``--quick`` runs each benchmark's smoke plan (under a minute in all; the weekend
simulation is always the whole weekend). Each module's ``run(quick=...)`` returns its
figures; the JSON holds them under the module's name, with ``meta`` for the whole run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["BENCHES", "main", "run", "weekend_memory"]

#: Bench modules run in process, in this order; ``bench_scale`` needs services.
BENCHES: tuple[str, ...] = (
    "bench_core",
    "bench_breakers",
    "bench_throughput",
    "bench_peak",
    "bench_threads",
    "bench_brownout",
    "bench_import",
    "bench_scale",
)
_NEEDS_SERVICES = frozenset({"bench_scale"})
#: Options for a module's ``run`` under ``--no-services``: what it leaves out.
_WITHOUT_SERVICES: dict[str, dict[str, Any]] = {"bench_peak": {"postgres": ""}}
_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = _ROOT / "benchmarks" / "results.json"


def weekend_memory(scenario: str = "kakao-fire-2022", seed: int = 1) -> dict[str, Any]:
    """Peak RSS and wall time of ``payfallback simulate`` over a whole scenario.

    ``ru_maxrss`` of ``RUSAGE_CHILDREN`` is the largest peak of any process this one has
    waited for (and of theirs); called before any other subprocess, that is the
    simulation's largest process: a worker, or the parent when it runs alone.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    command = [
        sys.executable,
        "-m",
        "payfallback",
        "simulate",
        "--scenario",
        scenario,
        "--seed",
        str(seed),
        "--json",
        "--quiet",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=_ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"payfallback simulate failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(done.stdout)
    pf = report["strategies"]["payfallback"]
    timing = report.get("timing") or {}
    return {
        "command": " ".join(["payfallback", *command[3:]]),
        "wall_s": round(wall, 1),
        # Linux reports ru_maxrss in KiB.
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_is_this_run": peak_kib > before,
        "customers": report["customers"],
        "payfallback_approval_vs_baseline": pf["approval_vs_baseline"],
        "payfallback_double_charges": pf["double_charges"],
        # Each run's wall and CPU seconds, as the simulation reports them (--json timing).
        "workers": timing.get("workers"),
        "runs": timing.get("runs"),
        "payfallback_cpu_vs_naive": timing.get("payfallback_cpu_vs_naive"),
    }


def _run_seconds(memory: dict[str, Any]) -> str:
    runs = memory.get("runs")
    if not runs:
        return ""
    each = ", ".join(f"{run} {t['cpu_s']:.1f} s" for run, t in runs.items())
    ratio = memory.get("payfallback_cpu_vs_naive")
    return (
        f"\nCPU per run ({memory.get('workers')} worker processes): {each}; payfallback "
        f"{ratio:.2f}x the naive strategy's CPU (goal <= 1.5x)"
    )


def _module(name: str) -> Any:
    return importlib.import_module(f"benchmarks.{name}")


def run(
    quick: bool = False,
    *,
    services: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, Any], list[str]]:
    """Run everything; returns the JSON document and the table's sections.

    ``say`` receives progress lines (module started, module skipped and why).
    """
    started = time.perf_counter()
    results: dict[str, Any] = {}
    tables: list[str] = []
    skipped: dict[str, str] = {}

    say("weekend simulation (kakao-fire-2022, seed 1) in a subprocess ...")
    memory = weekend_memory()
    results["weekend_memory"] = memory
    tables.append(
        f"== weekend simulation: {memory['command']}\n"
        f"{memory['customers']} customers, wall {memory['wall_s']} s, "
        f"peak RSS {memory['peak_rss_mib']} MiB (largest process), payfallback "
        f"{memory['payfallback_approval_vs_baseline']:.2%} of baseline, "
        f"{memory['payfallback_double_charges']} double charges" + _run_seconds(memory)
    )

    for name in BENCHES:
        if name in _NEEDS_SERVICES:
            if not services:
                skipped[name] = "--no-services: it needs Redis and PostgreSQL"
                say(f"{name}: skipped ({skipped[name]})")
                continue
            if not (_ROOT / "benchmarks" / f"{name}.py").exists():
                skipped[name] = "benchmarks/bench_scale.py is not there yet"
                say(f"{name}: skipped ({skipped[name]})")
                continue
        say(f"{name} ...")
        module = _module(name)
        t0 = time.perf_counter()
        report = module.run(quick=quick, **({} if services else _WITHOUT_SERVICES.get(name, {})))
        say(f"{name}: {time.perf_counter() - t0:.1f} s")
        results[name] = report
        tables.append(module.format_table(report))

    doc = {
        "meta": {
            "quick": quick,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - started, 1),
        },
        **results,
    }
    return doc, tables


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_all.py", description="run every payfallback benchmark, write one JSON file"
    )
    parser.add_argument("--quick", action="store_true", help="smoke plans: under a minute")
    parser.add_argument(
        "--out", metavar="PATH", default=str(DEFAULT_OUT), help=f"JSON file (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--no-services",
        action="store_true",
        help="skip the benchmarks that need Redis and PostgreSQL (bench_scale)",
    )
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    doc, tables = run(quick=args.quick, services=not args.no_services, say=say)
    print("\n\n".join(tables))
    for name, why in doc["meta"]["skipped"].items():
        print(f"\n{name}: skipped: {why}")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, default=str)
        f.write("\n")
    print(f"\nwrote {args.out} ({doc['meta']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
