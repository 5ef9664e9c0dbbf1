"""What importing payfallback costs, against ``import httpx, pydantic``, in fresh processes.

Two statements are timed against the baseline ``import httpx, pydantic``:

* ``import payfallback``: the package alone. Its exports are imported on first use, so
  this is what a program pays that only reaches for ``payfallback.testing`` or a submodule;
* ``from payfallback import Router, Order``: what a quick start pays, the Router with its
  decision core, breaker, journal and models.

Each round starts one new interpreter per statement and times the statement inside it
(``time.perf_counter()`` around it, so the interpreter's own start-up is not counted); the
statements run in an order that alternates from round to round, after one warm-up round
that writes the bytecode caches (the children run without ``PYTHONDONTWRITEBYTECODE``, as
an installed wheel has its ``.pyc`` files). Each ratio is the median of the per-round
ratios against the baseline, with their interquartile range.

Each child also reports which heavy optional modules its import pulled in (typer, rich,
click, pygments, matplotlib, pydantic_settings). payfallback imports none of them: the
command line is the ``cli`` extra. Where click, rich and pygments are installed (the
``cli`` or ``dev`` extra), httpx imports its own command line (``httpx._main``) and they
load with ``import httpx`` — on both sides alike.

Run ``python benchmarks/bench_import.py [--quick] [--json out.json]``; :func:`run` returns
the figures as a dict and prints nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

from benchmarks._output import command

__all__ = ["HEAVY", "STATEMENTS", "format_table", "import_once", "main", "run"]

#: The statements timed, by label.
STATEMENTS: dict[str, str] = {
    "payfallback": "import payfallback",
    "router": "from payfallback import Router, Order",
    "httpx + pydantic": "import httpx, pydantic",
}
#: Modules whose presence after the import is reported.
HEAVY: tuple[str, ...] = ("typer", "rich", "click", "pygments", "matplotlib", "pydantic_settings")
_ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
{statement}
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


class Timing(TypedDict):
    statement: str
    median_ms: float
    min_ms: float
    loaded: list[str]


class ImportReport(TypedDict):
    rounds: int
    python: str
    timings: list[Timing]
    ratio: float
    ratio_iqr: tuple[float, float]
    router_ratio: float
    router_ratio_iqr: tuple[float, float]
    payfallback_loads_typer: bool


def import_once(statement: str) -> tuple[float, list[str]]:
    """Seconds ``statement`` takes in a fresh interpreter, and the heavy modules it loaded."""
    code = _CHILD.format(statement=statement, heavy=HEAVY)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=_ROOT,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{statement!r} failed: {done.stderr[-2000:]}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    return float(doc["seconds"]), list(doc["loaded"])


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def run(quick: bool = False) -> ImportReport:
    """Time both imports over several rounds (5 with ``quick``, else 21)."""
    rounds = 5 if quick else 21
    labels = list(STATEMENTS)
    for label in labels:  # warm-up: bytecode caches, the OS's file cache
        import_once(STATEMENTS[label])
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    loaded: dict[str, list[str]] = {}
    for n in range(rounds):
        for label in labels if n % 2 == 0 else reversed(labels):
            took, modules = import_once(STATEMENTS[label])
            seconds[label].append(took)
            loaded[label] = modules
    theirs = seconds["httpx + pydantic"]
    ratios = [a / b for a, b in zip(seconds["payfallback"], theirs, strict=True)]
    router = [a / b for a, b in zip(seconds["router"], theirs, strict=True)]
    return {
        "rounds": rounds,
        "python": sys.version.split()[0],
        "timings": [
            {
                "statement": STATEMENTS[label],
                "median_ms": round(statistics.median(seconds[label]) * 1000, 1),
                "min_ms": round(min(seconds[label]) * 1000, 1),
                "loaded": loaded[label],
            }
            for label in labels
        ],
        "ratio": round(statistics.median(ratios), 2),
        "ratio_iqr": tuple(round(q, 2) for q in _quartiles(ratios)),  # type: ignore[typeddict-item]
        "router_ratio": round(statistics.median(router), 2),
        "router_ratio_iqr": tuple(round(q, 2) for q in _quartiles(router)),  # type: ignore[typeddict-item]
        "payfallback_loads_typer": "typer" in loaded["payfallback"] + loaded["router"],
    }


def format_table(report: ImportReport) -> str:
    lines = [
        f"== import time (fresh interpreter each, {report['rounds']} rounds, "
        f"Python {report['python']})",
        f"{'statement':<38} {'median ms':>10} {'min ms':>8}  heavy modules loaded",
    ]
    for t in report["timings"]:
        lines.append(
            f"{t['statement']:<38} {t['median_ms']:>10.1f} {t['min_ms']:>8.1f}  "
            f"{', '.join(t['loaded']) or '-'}"
        )
    low, high = report["ratio_iqr"]
    r_low, r_high = report["router_ratio_iqr"]
    typer = "yes" if report["payfallback_loads_typer"] else "no"
    lines.append(
        f"import payfallback / (httpx + pydantic): {report['ratio']:.2f}x "
        f"(IQR {low:.2f}-{high:.2f})"
    )
    lines.append(
        f"from payfallback import Router, Order / (httpx + pydantic): "
        f"{report['router_ratio']:.2f}x (IQR {r_low:.2f}-{r_high:.2f}); "
        f"typer loaded by payfallback: {typer}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return command(
        argv,
        prog="bench_import.py",
        description=__doc__ or "",
        quick="5 rounds instead of 21",
        run=run,
        table=format_table,
    )


if __name__ == "__main__":
    sys.exit(main())
