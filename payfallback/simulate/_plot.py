"""The chart of a run (``payfallback simulate --plot out.png``); needs matplotlib."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from payfallback.simulate._engine import WAIT_LIMIT, SimulationReport
from payfallback.simulate._strategies import STRATEGIES

__all__ = ["PlotUnavailable", "plot_report", "require_matplotlib"]

# Lines that coincide for hours (naive retries, payfallback and the no-outage baseline all
# approve ~97 % outside the outage; two strategies never charge twice) stay apart: the
# widest line is drawn lowest and pale, a thin solid one above it, then a dashed and a
# dotted one on top, each with its own marker placed at its own phase along the line.
_STYLE: dict[str, dict[str, Any]] = {
    "no_fallback": {
        "color": "#d62728",
        "lw": 1.2,
        "ls": "-",
        "marker": "v",
        "zorder": 3,
    },
    "naive": {
        "color": "#ff7f0e",
        "lw": 1.6,
        "ls": (0, (5, 2)),
        "marker": "s",
        "zorder": 4,
    },
    "payfallback": {
        "color": "#2ca02c",
        "lw": 4.0,
        "ls": "-",
        "marker": "o",
        "zorder": 2,
        "alpha": 0.55,
    },
}
_MARKERS = 14  # markers per line
_PHASE = {"no_fallback": 0.0, "naive": 1 / 3, "payfallback": 2 / 3}
_STYLE_BASELINE: dict[str, Any] = {"color": "#222222", "lw": 1.0, "ls": (0, (1, 1.5)), "zorder": 5}
# The end labels of lines that finish at the same count are spread apart vertically.
_LABEL_NUDGE = {"no_fallback": 9.0, "naive": 0.0, "payfallback": -9.0}


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


def _line(key: str, count: int) -> dict[str, Any]:
    """Matplotlib keywords for one strategy's line over ``count`` buckets."""
    style = dict(_STYLE[key])
    if style.pop("marker"):
        every = max(1, count // _MARKERS)
        style["marker"] = _STYLE[key]["marker"]
        style["markevery"] = (int(every * _PHASE[key]), every)
        style["markersize"] = 6 if key == "payfallback" else 4.5
    return style


def _cumulative(counts: Sequence[int]) -> list[int]:
    total, out = 0, []
    for n in counts:
        total += n
        out.append(total)
    return out


def plot_report(report: SimulationReport, path: str | Path) -> Path:
    """Write a PNG of the run over time, each incident shaded: approval rate for the three
    strategies and the no-outage baseline (top), customers charged twice so far (middle),
    customers kept waiting over 5 s (bottom), on the scenario's local time.
    Returns the path written."""
    plt = _pyplot()
    mdates: Any = importlib.import_module("matplotlib.dates")

    scenario = report.scenario
    timeline = report.timeline
    x = [scenario.local(t) for t in timeline.starts]
    count = len(x)
    fig, (top, middle, bottom) = plt.subplots(
        3,
        1,
        figsize=(11, 8.6),
        dpi=110,
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1.5, 1.2]},
    )
    try:
        for axis in (top, middle, bottom):
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
        top.step(x, rates, where="post", label="same customers, no outage", **_STYLE_BASELINE)
        lowest = min((r for r in rates if not math.isnan(r)), default=100.0)
        doubled = timeline.double_charges
        most = 0
        for key, label in STRATEGIES.items():
            line = _line(key, count)
            series = [_pct(v) for v in timeline.approval[key]]
            lowest = min([lowest, *(r for r in series if not math.isnan(r))])
            summary = report.strategies[key]
            top.step(
                x,
                series,
                where="post",
                label=f"{label}: {summary.approval_rate:.2%} approved, "
                f"{summary.double_charges:,} charged twice",
                **line,
            )
            so_far = _cumulative(doubled.get(key, (0,) * count))
            most = max(most, so_far[-1] if so_far else 0)
            middle.step(x, so_far, where="post", **line)
            middle.annotate(
                f"{label}: {summary.double_charges:,}",
                xy=(1.0, so_far[-1] if so_far else 0),
                xycoords=("axes fraction", "data"),
                xytext=(4, _LABEL_NUDGE[key]),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=line["color"],
                annotation_clip=False,
            )
            bottom.step(x, timeline.waited[key], where="post", **line)
        top.set_ylim(max(0.0, math.floor(lowest / 10.0) * 10.0 - 5.0), 101)
        top.set_ylabel(f"approved (%, per {timeline.bucket_minutes} min)")
        top.set_title(
            f"{scenario.name}: seed {report.seed}, {report.customers:,} customers",
            loc="left",
        )
        top.legend(loc="lower left", fontsize=8, framealpha=0.9)
        top.grid(alpha=0.3)
        middle.set_ylim(-0.06 * max(most, 1), max(most, 1) * 1.15)
        middle.set_ylabel("customers charged\ntwice, so far")
        middle.grid(alpha=0.3)
        bottom.set_ylabel(f"waited > {WAIT_LIMIT:g} s\n(per {timeline.bucket_minutes} min)")
        bottom.grid(alpha=0.3)
        bottom.set_xlim(scenario.local(scenario.start), scenario.local(scenario.end))
        bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=scenario.tz))
        zone = scenario.local(scenario.start).tzname() or str(scenario.tz)
        bottom.set_xlabel(f"time ({zone}, {scenario.tz}); customers by arrival")
        fig.autofmt_xdate()
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, format="png")
        return out
    finally:
        plt.close(fig)
