"""The README's simulator figures, generated from what ``payfallback simulate --json`` prints.

Usage, from the repository root::

    python benchmarks/readme_figures.py            # rewrite README.md's tables and the chart
    python benchmarks/readme_figures.py --check    # exit 1 if a section differs from a new run
    python benchmarks/readme_figures.py --no-plot  # the tables only

Each section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (in README.md, and
the kakao-fire table in docs/simulator.md) is rendered from one run of the command in
:data:`SECTIONS`; the chart,
``docs/img/kakao-fire-2022.png``, is drawn by the same kakao-fire run (``--plot``).
``tests/test_readme.py`` runs the same commands and fails when a section differs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHART = ROOT / "docs" / "img" / "kakao-fire-2022.png"
REGENERATE = "python benchmarks/readme_figures.py"

_NAMES = {
    "kakaopay": "Kakao Pay",
    "naverpay": "Naver Pay",
    "tosspay": "Toss Pay",
    "tosspayments": "Toss Payments",
    "nicepay": "NICEPAY",
}
_COLUMNS = ("no_fallback", "naive", "payfallback")


def command(scenario: str, *, seed: int = 1) -> list[str]:
    """The command whose ``--json`` output a section is rendered from (as a user types it)."""
    return ["payfallback", "simulate", "--scenario", scenario, "--seed", str(seed), "--json"]


def simulate(scenario: str, *, seed: int = 1, plot: Path | None = None) -> dict[str, Any]:
    """Run :func:`command` in a fresh interpreter and return the JSON it prints."""
    argv = [sys.executable, "-m", "payfallback", *command(scenario, seed=seed)[1:], "--quiet"]
    if plot is not None:
        argv += ["--plot", str(plot)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command(scenario, seed=seed))} exited {done.returncode}:\n{done.stderr}"
        )
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _pct(share: float) -> str:
    return f"{share:.2%}"


def _krw(amount: int) -> str:
    return f"{amount:,} KRW"


def _twice(s: Mapping[str, Any], *, bold: bool) -> str:
    if not s["double_charges"]:
        return "**0**" if bold else "0"
    text = f"{s['double_charges']:,}"
    return f"**{text} ({_krw(s['double_charged_krw'])})**" if bold else text


def _when(iso: str, zone: ZoneInfo) -> str:
    return f"{datetime.fromisoformat(iso).astimezone(zone):%a %H:%M}"


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | {' | '.join(cells)} |"


def fire_rows(doc: Mapping[str, Any]) -> str:
    """The kakao-fire table: the three strategies side by side."""
    s = doc["strategies"]
    cols = [s[k] for k in _COLUMNS]
    rows = [
        "| | no fallback | naive retries | payfallback |",
        "|---|---|---|---|",
        _row("approval rate", [_pct(c["approval_rate"]) for c in cols]),
        _row(
            f"vs the same traffic with no outage ({_pct(doc['baseline']['approval_rate'])})",
            [_pct(c["approval_vs_baseline"]) for c in cols[:2]]
            + [f"**{_pct(cols[2]['approval_vs_baseline'])}**"],
        ),
        _row("lost revenue", [_krw(c["lost_revenue_krw"]) for c in cols]),
        _row(
            "customers charged twice",
            [_twice(c, bold=c["strategy"] != "no_fallback") for c in cols],
        ),
        _row("charged, sale not recorded", [f"{c['charged_not_recorded']:,}" for c in cols]),
        _row("customers who waited > 5 s", [f"{c['waited_over_5s']:,}" for c in cols]),
        _row(
            "checkout p50 / p99",
            [f"{c['checkout_p50_s']:.2f} / {c['checkout_p99_s']:.2f} s" for c in cols],
        ),
    ]
    for trip in cols[2]["breaker"]:
        name = _NAMES.get(trip["provider"], trip["provider"])
        after = trip["opened_after_s"]
        calls = trip["failed_calls_before_open"]
        opened = (
            "never opened"
            if after is None
            else f"{after:,.1f} s ({calls:,} failed call{'s' if calls != 1 else ''})"
        )
        rows.append(_row(f"{name} breaker open after", ["no breaker", "no breaker", opened]))
    rows.append(
        _row(
            "refunds owed / settled",
            [f"{c['refunds_owed']:,} / {c['refunds_settled']:,}" for c in cols],
        )
    )
    return "\n".join(rows)


def fire_table(doc: Mapping[str, Any]) -> str:
    """The README's "What fallback saves" section: one sentence on the run, then the table."""
    scenario = doc["scenario"]
    zone = ZoneInfo(scenario["timezone"])
    start, end = (datetime.fromisoformat(scenario[k]).astimezone(zone) for k in ("start", "end"))
    incidents = "; ".join(
        f"{i['label']}, {_when(i['start'], zone)} to {_when(i['end'], zone)}"
        for i in scenario["incidents"]
    )
    intro = (
        f"`{' '.join(command(scenario['name'], seed=doc['seed'])[:-1])}`: "
        f"{doc['customers']:,} customers from {start:%a %d %b %Y %H:%M} to "
        f"{end:%a %d %b %H:%M} {start.tzname()}. {incidents}."
    )
    return f"{intro}\n\n{fire_rows(doc)}"


def late_commit_table(doc: Mapping[str, Any]) -> str:
    """The late-commit scenario's double charges, naive retries against payfallback."""
    s = doc["strategies"]
    naive, pf = s["naive"], s["payfallback"]
    return "\n".join(
        [
            f"| `{' '.join(command(doc['scenario']['name'], seed=doc['seed'])[:-1])}` "
            f"({doc['customers']:,} customers) | naive retries | payfallback |",
            "|---|---|---|",
            _row("customers charged twice", [_twice(naive, bold=True), _twice(pf, bold=True)]),
            _row(
                "vs the same traffic with no outage",
                [_pct(naive["approval_vs_baseline"]), _pct(pf["approval_vs_baseline"])],
            ),
        ]
    )


@dataclass(frozen=True)
class Section:
    """A generated part of a document: its file, marker name, scenario and renderer."""

    name: str
    scenario: str
    render: Callable[[Mapping[str, Any]], str]
    chart: Path | None = None
    path: Path = README


SECTIONS = (
    Section("fire-table", "kakao-fire-2022", fire_table, chart=CHART),
    Section("late-commit-table", "late-commit", late_commit_table),
    Section("fire-table", "kakao-fire-2022", fire_rows, path=ROOT / "docs" / "simulator.md"),
)


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- {re.escape(name)}:start -->\n)(.*?)(<!-- {re.escape(name)}:end -->)", re.DOTALL
    )


def section(text: str, name: str) -> str:
    """What README text holds between the markers of section ``name`` (without them)."""
    found = _pattern(name).search(text)
    if found is None:
        raise LookupError(f"no <!-- {name}:start --> … <!-- {name}:end --> section")
    return found.group(2).rstrip("\n")


def replace(text: str, name: str, body: str) -> str:
    """README text with section ``name`` replaced by ``body``."""
    section(text, name)  # it must be there
    return _pattern(name).sub(lambda m: f"{m.group(1)}{body}\n{m.group(3)}", text, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a section is stale"
    )
    parser.add_argument("--no-plot", action="store_true", help="leave the chart as it is")
    args = parser.parse_args(argv)
    texts = {part.path: part.path.read_text(encoding="utf-8") for part in SECTIONS}
    docs: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    for part in SECTIONS:
        plot = None if args.check or args.no_plot else part.chart
        if part.scenario not in docs or plot is not None:
            docs[part.scenario] = simulate(part.scenario, plot=plot)
            if plot is not None:
                print(f"chart written to {plot.relative_to(ROOT)}", file=sys.stderr)
        body = part.render(docs[part.scenario])
        where = f"{part.path.relative_to(ROOT)} section {part.name}"
        if section(texts[part.path], part.name) != body:
            stale.append(where)
            texts[part.path] = replace(texts[part.path], part.name, body)
    if args.check:
        for where in stale:
            print(f"{where} is stale: run {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in texts.items():
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
    print(f"rewritten: {', '.join(stale) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
