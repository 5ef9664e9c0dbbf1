"""The approval-rate chart (``payfallback simulate --plot out.png``); needs matplotlib."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

from payfallback.simulate._engine import WAIT_LIMIT, SimulationReport
from payfallback.simulate._strategies import STRATEGIES

__all__ = ["PlotUnavailable", "plot_report", "require_matplotlib"]

_STYLE = {
    "no_fallback": {"color": "#d62728", "lw": 1.3, "ls": "-"},
    "naive": {"color": "#ff7f0e", "lw": 1.3, "ls": "-."},
    "payfallback": {"color": "#2ca02c", "lw": 2.0, "ls": "-"},
}


_MISSING = "--plot needs matplotlib, an optional extra: pip install 'payfallback[plot]'"


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency, imported on use

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise PlotUnavailable(_MISSING) from None
    return plt


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` now if a chart could not be drawn later.

    Finds matplotlib without importing it: the simulation's worker processes are forked
    from this one and need not carry it.
    """
    if "matplotlib" in sys.modules:
        found = sys.modules["matplotlib"] is not None  # None: imports of it are blocked
    else:
        found = importlib.util.find_spec("matplotlib") is not None
    if not found:
        raise PlotUnavailable(_MISSING)


def _pct(value: float | None) -> float:
    # An empty bucket (no customer at all, deep in the night) is drawn as a gap.
    return math.nan if value is None else 100.0 * value


def plot_report(report: SimulationReport, path: str | Path) -> Path:
    """Write a PNG: approval rate over time for the three strategies and the no-outage
    baseline (top), customers kept waiting over 5 s (bottom), each incident shaded.
    Returns the path written."""
    plt = _pyplot()
    mdates: Any = importlib.import_module("matplotlib.dates")

    scenario = report.scenario
    timeline = report.timeline
    x = [scenario.local(t) for t in timeline.starts]
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(11, 7),
        dpi=110,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.2]},
    )
    try:
        for axis in (top, bottom):
            for n, incident in enumerate(scenario.incidents):
                axis.axvspan(
                    scenario.local(max(incident.start, scenario.start)),
                    scenario.local(min(incident.end, scenario.end)),
                    color="#9e9e9e" if incident.announced else "#e57373",
                    alpha=0.22 if n == 0 else 0.12,
                    lw=0,
                    label=incident.label if axis is top else None,
                )
        rates = [_pct(v) for v in timeline.approval["baseline"]]
        top.step(x, rates, where="post", color="#555555", lw=1.0, ls="--", label="no outage")
        lowest = min((r for r in rates if not math.isnan(r)), default=100.0)
        for key, label in STRATEGIES.items():
            series = [_pct(v) for v in timeline.approval[key]]
            lowest = min([lowest, *(r for r in series if not math.isnan(r))])
            summary = report.strategies[key]
            top.step(
                x,
                series,
                where="post",
                label=f"{label}: {summary.approval_rate:.2%} approved, "
                f"{summary.double_charges:,} double charges",
                **_STYLE[key],
            )
            bottom.step(x, timeline.waited[key], where="post", **_STYLE[key])
        top.set_ylim(max(0.0, math.floor(lowest / 10.0) * 10.0 - 5.0), 101)
        top.set_ylabel(f"approved (%, per {timeline.bucket_minutes} min)")
        top.set_title(
            f"{scenario.name}: seed {report.seed}, {report.customers:,} customers",
            loc="left",
        )
        top.legend(loc="lower left", fontsize=8, framealpha=0.9)
        top.grid(alpha=0.3)
        bottom.set_ylabel(f"waited > {WAIT_LIMIT:g} s")
        bottom.grid(alpha=0.3)
        bottom.set_xlim(scenario.local(scenario.start), scenario.local(scenario.end))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=scenario.tz))
        fig.autofmt_xdate()
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png")
        return out
    finally:
        plt.close(fig)
