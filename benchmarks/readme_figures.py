"""The README's figures: the simulator's tables from ``payfallback simulate --json``, and the
performance table from a stored benchmark run.

Usage, from the repository root::

    python benchmarks/readme_figures.py            # rewrite README.md's tables and the chart
    python benchmarks/readme_figures.py --check    # exit 1 if a section differs from a new run
    python benchmarks/readme_figures.py --no-plot  # the tables only
    python benchmarks/readme_figures.py --perf-run # run the benchmarks, store them, rewrite
    python benchmarks/readme_figures.py --perf-from benchmarks/results.json  # from run_all.py
    python benchmarks/readme_figures.py --peak-run # bench_peak only: its key and the section

The performance section (``perf-table``) is rendered from :data:`PERF`, the figures of one
benchmark run stored in the repository (``--perf-run`` measures and writes it; ``--perf-from``
takes them from a ``run_all.py`` output). It is never measured by ``--check`` or the tests,
which compare the README with the stored run: timings vary, the stored run does not. The
section's "Peak load (async)" table is the ``bench_peak`` key of :data:`PERF`, with its own
date and commit: ``--peak-run`` measures ``benchmarks/bench_peak.py`` alone (a few minutes,
against the full run's ten), stores that key, keeps every other stored figure, and rewrites
only the performance section.

Each section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` (in README.md, and
the kakao-fire table in docs/simulator.md) is rendered from one run of the command in
:data:`SECTIONS`; the chart,
``docs/img/kakao-fire-2022.png``, is drawn by the same kakao-fire run (``--plot``).
``tests/test_readme.py`` runs the same commands and fails when a section differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CHART = ROOT / "docs" / "img" / "kakao-fire-2022.png"
REGENERATE = "python benchmarks/readme_figures.py"
#: The benchmark run the README's performance section shows.
PERF = ROOT / "benchmarks" / "perf.json"
PERF_SECTION = "perf-table"
PERF_RUN = "python benchmarks/readme_figures.py --perf-run"
PEAK_RUN = "python benchmarks/readme_figures.py --peak-run"

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


# -- performance -----------------------------------------------------------------------------

# Row names as the benchmarks print them.
_FRESH = "breaker admit+record, net of fn()"
_FULL = "same, full window (steady traffic)"
_PYBREAKER = "pybreaker call, net of fn()"
_PURGATORY = "purgatory with get_breaker(), net of fn()"
_AIOBREAKER = "aiobreaker call, net of fn()"
_BARE_SYNC = "bare Client.send(build_charge)"
_BARE_ASYNC = "bare AsyncClient.send(build_charge)"
_BARE_LOOP = "loopback HTTP: bare Client.send(build_charge)"
_ROUTER_NORMAL = "Router.charge, WAL synchronous=NORMAL"
_ROUTER_FULL = "Router.charge, WAL synchronous=FULL"
_ROUTER_ASYNC = "Router.charge (async), WAL synchronous=NORMAL"
_FLOOR_NORMAL = "floor: the Router's statements, commits and events by hand, NORMAL"
_FLOOR_FULL = "floor: the Router's statements, commits and events by hand, FULL"
_FLOOR_ASYNC = "floor (async): the Router's statements, commits and events by hand, NORMAL"
_FLOOR_LOOPBACK = "loopback HTTP: the floor, NORMAL"
_ROUTER_LOOPBACK = "loopback HTTP: Router.charge, NORMAL"
#: (floor, bare, Router): the floor against the bare request and the Router against it,
#: as the four Router rows above them: NORMAL, FULL, async NORMAL and loopback.
_FLOORS = (
    (_FLOOR_NORMAL, _BARE_SYNC, _ROUTER_NORMAL),
    (_FLOOR_FULL, _BARE_SYNC, _ROUTER_FULL),
    (_FLOOR_ASYNC, _BARE_ASYNC, _ROUTER_ASYNC),
    (_FLOOR_LOOPBACK, _BARE_LOOP, _ROUTER_LOOPBACK),
)
#: What the README's table shows, in its order: label, rows (name, baseline), goal, the
#: ratio that meets it at most (None: reported).
_ROUTER_ROWS = (
    (
        "`Router.charge` vs the bare request on `MockTransport`, WAL `synchronous=NORMAL`",
        _ROUTER_NORMAL,
        _BARE_SYNC,
        3.0,
    ),
    (
        "same, `synchronous=FULL` (the default)",
        _ROUTER_FULL,
        _BARE_SYNC,
        6.0,
    ),
    (
        "`AsyncRouter.charge` vs the bare `AsyncClient.send`, NORMAL",
        _ROUTER_ASYNC,
        _BARE_ASYNC,
        3.0,
    ),
    (
        "`Router.charge` over loopback HTTP vs the bare request, NORMAL",
        _ROUTER_LOOPBACK,
        _BARE_LOOP,
        1.4,
    ),
)


def _find(rows: Sequence[Mapping[str, Any]], name: str, baseline: str) -> Mapping[str, Any]:
    for row in rows:
        if row["name"] == name and row.get("baseline") == baseline:
            return row
    raise LookupError(f"the stored benchmark run has no row {name!r} against {baseline!r}")


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def _ratio(row: Mapping[str, Any]) -> str:
    return f"{_x(row['ratio'])} [{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}]"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _load(meta: Mapping[str, Any]) -> str:
    start = f"{meta['loadavg'][0]:.2f} at the start"
    end = meta.get("loadavg_end")
    return start if end is None else f"{start}, {end[0]:.2f} at the end"


def _bare_us(router: Sequence[Mapping[str, Any]]) -> str:
    """The bare sync request's median time in µs: the yardstick every router row is a
    multiple of, and a rough measure of how fast the machine was."""
    row = next(r for r in router if r["name"] == _BARE_SYNC)
    return f"{row['ns_per_op'] / 1000:.0f}"


def floor_lines(router: Sequence[Mapping[str, Any]]) -> list[str]:
    """The floor's two rows: what the Router's own journal statements, commits and events
    cost by hand against the bare request, and the Router against that floor (none in a
    run from before the floor was measured)."""
    try:
        pairs = [
            (_find(router, floor, bare), _find(router, mine, floor))
            for floor, bare, mine in _FLOORS
        ]
    except LookupError:
        return []
    return [
        "| the floor under `Router.charge`: its own SQL statements, its two commits and its "
        "two events, by hand, with nothing else, vs the bare request (NORMAL / FULL / async / "
        "loopback) | " + " / ".join(_ratio(floor) for floor, _ in pairs) + " | reported | |",
        "| `Router.charge` vs that floor (NORMAL / FULL / async / loopback) | "
        + " / ".join(_ratio(mine) for _, mine in pairs)
        + " | reported | |",
    ]


def perf_table(doc: Mapping[str, Any]) -> str:
    """The README's performance section, from a stored run (:data:`PERF`)."""
    meta = doc["meta"]
    breakers = doc["bench_breakers"]["rows"]
    router = doc["bench_core"]["router"]
    throughput = doc["bench_throughput"]
    weekend = doc["weekend"]
    lines = [
        "## Performance",
        "",
        f"Measured on {meta['date']} at commit {meta['commit']} ({meta['cpus']} CPUs, Python "
        f"{meta['python']}, load average {_load(meta)}) by `{PERF_RUN}`, which stores the "
        "run in `benchmarks/perf.json` and writes this table from it. The machine's own "
        "speed, to compare with a run elsewhere: a bare httpx request on `MockTransport` "
        f"took {_bare_us(router)} µs. Each ratio is the "
        "median of per-round ratios, both sides measured in the same rounds, with the "
        "interquartile range in brackets; lower is better except for payments/s. How each "
        "row is measured: [benchmarks/README.md](benchmarks/README.md).",
        "",
        "| | today | goal | met |",
        "|---|---|---|---|",
    ]
    for label, baseline, goal in (
        ("pybreaker `call`", _PYBREAKER, 0.4),
        ("purgatory", _PURGATORY, 0.6),
        ("aiobreaker `call`", _AIOBREAKER, None),
    ):
        try:
            fresh, full = (_find(breakers, name, baseline) for name in (_FRESH, _FULL))
        except LookupError:
            if goal is None:  # aiobreaker is optional
                continue
            raise
        today = f"{_ratio(fresh)} / {_ratio(full)}"
        if goal is None:
            lines.append(
                f"| breaker `admit()`+`record()` vs {label}, net of `fn()` (fresh / full "
                f"window) | {today} | reported | |"
            )
            continue
        ok = fresh["ratio"] <= goal and full["ratio"] <= goal
        lines.append(
            f"| breaker `admit()`+`record()` vs {label}, net of `fn()` (fresh / full window) "
            f"| {today} | ≤ {goal:g}x | {_met(ok)} |"
        )
    for label, name, baseline, goal in _ROUTER_ROWS:
        row = _find(router, name, baseline)
        lines.append(f"| {label} | {_ratio(row)} | ≤ {goal:g}x | {_met(row['ratio'] <= goal)} |")
    lines += floor_lines(router)
    by = {row["concurrency"]: row for row in throughput["rows"]}
    at64 = by[64]
    lines.append(
        "| payments/s, `AsyncRouter` vs bare httpx, provider in another process answering in "
        "20-50 ms, concurrency 1 / 16 / 64, both on a pool of 16 connections (beyond 16, the "
        "Router's payments wait at its gate, bare httpx's in httpcore's pool: "
        "[benchmarks/README.md](benchmarks/README.md#client-settings-encodehttpcore1035)) | "
        + " / ".join(_ratio(by[c]) for c in sorted(by))
        + " | ≥ 0.95x at 64, IQR within ±10 % | "
        + _met(bool(at64["met"]))
        + " |"
    )
    lines.append(
        "| same at 64: payments/s, Router / bare (client CPU per payment) | "
        f"{at64['router_per_s']:,.0f} / {at64['bare_per_s']:,.0f} "
        f"({at64['router_cpu_ms']:.2f} / {at64['bare_cpu_ms']:.2f} ms) | reported | |"
    )
    settings = [s for s in throughput["settings"] if s["variant"] == "bare"]
    if settings:
        lines.append(
            "| bare httpx at 64 by `httpx.Limits` (connections / kept alive): payments/s "
            "(CPU per request, new connections per 1000) | "
            + "; ".join(
                f"{s['max_connections']} / {s['max_keepalive_connections']}: "
                f"{s['per_s']:,.0f} ({s['cpu_ms']:.2f} ms, {s['conns_per_1000']:,.0f})"
                for s in settings
            )
            + " | reported | |"
        )
    wall_ok = weekend["wall_s"] < 12
    rss_ok = weekend["peak_rss_mib"] < 150
    lines.append(
        "| `payfallback simulate --scenario kakao-fire-2022 --seed 1`: wall time, peak RSS | "
        f"{weekend['wall_s']:.1f} s, {weekend['peak_rss_mib']:.0f} MiB "
        f"({weekend['workers']} worker processes) | < 12 s, < 150 MiB | "
        f"{_met(wall_ok and rss_ok)} |"
    )
    runs = weekend["runs"]
    ratio = weekend["payfallback_cpu_vs_naive"]
    lines.append(
        "| same run: payfallback's strategy vs the naive strategy, CPU seconds | "
        f"{_x(ratio)} ({runs['payfallback']['cpu_s']:.1f} s / {runs['naive']['cpu_s']:.1f} s) "
        f"| ≤ 1.5x | {_met(ratio <= 1.5)} |"
    )
    return "\n".join([*lines, "", *peak_lines(doc["bench_peak"])])


#: bench_peak's variants as the README's peak table names them, in its order.
_PEAK_LABELS = (
    ("raw", "raw asyncio: hand-written HTTP/1.1 on `asyncio` streams (the practical limit)"),
    ("bare-aiohttp", "bare `AsyncClient.send`, payfallback's aiohttp transport"),
    ("bare-httpcore", "bare `AsyncClient.send`, httpcore"),
    (
        "router-aiohttp",
        "**`AsyncRouter`, the client it builds with `[aiohttp]`**, SQLite WAL NORMAL",
    ),
    ("router-httpcore", "`AsyncRouter` on httpcore (no `[aiohttp]`), SQLite WAL NORMAL"),
    ("router-aiohttp-full", "`AsyncRouter` (aiohttp), SQLite `synchronous=FULL`"),
    ("router-aiohttp-postgres", "`AsyncRouter` (aiohttp), PostgreSQL journal"),
    ("router-aiohttp-uvloop", "`AsyncRouter` (aiohttp), SQLite WAL NORMAL, on uvloop"),
    (
        "floor-aiohttp",
        "the floor under the `AsyncRouter` (aiohttp): its own statements, group-committed as "
        "it commits them, and its events, by hand, with nothing else",
    ),
)
RECOMMENDED_PEAK = "router-aiohttp"
#: Rows that change one thing about the recommended Router: their ratio against it.
_PEAK_EFFECT = {
    "router-aiohttp-full": "of NORMAL",
    "router-aiohttp-postgres": "of SQLite",
    "router-aiohttp-uvloop": "of asyncio's loop",
    "floor-aiohttp": "of the Router",
}


def _iqr(row: Mapping[str, Any], key: str) -> str:
    return f"{_x(row[key])} [{row[key + '_p25']:.2f}, {row[key + '_p75']:.2f}]"


def peak_lines(peak: Mapping[str, Any]) -> list[str]:
    """The "Peak load (async)" table of the performance section, from ``bench_peak``."""
    meta = peak["meta"]
    rows = {(r["variant"], r["concurrency"]): r for r in peak["rows"]}
    at = max(r["concurrency"] for r in peak["rows"])
    low = sorted({r["concurrency"] for r in peak["rows"]} - {at})
    lines = [
        "### Peak load (async)",
        "",
        f"Measured on {meta['date']} at commit {meta['commit']} ({meta['cpus']} CPUs, Python "
        f"{meta['python']}, load average {_load(meta)}) by `{PEAK_RUN}` "
        "([benchmarks/bench_peak.py](benchmarks/bench_peak.py)), in "
        f"{meta['rounds']} rounds, every variant in the same rounds. The provider runs in "
        "another process and answers each charge in 20-50 ms (uniform: p99 "
        f"{meta['provider_p99_ms']:g} ms); every charge is a new order. Each batch is "
        "timed at steady load: its first customers' charges, which all start at once from "
        "idle, and the next as many, while the customers fall out of step, are not timed, "
        "and as many more keep the load up at its end. charges/s and CPU (the client "
        "process's, per charge) are over the timed charges, p50 / p99 each timed charge's "
        'own time; "p99 from idle" is that of the first charges, a burst of as many '
        'customers arriving together. "vs" is the median of per-round ratios of '
        "charges/s with their interquartile range.",
        "",
        f"| {at} in flight | charges/s | CPU ms per charge | p50 / p99 ms | p99 from idle, ms "
        f"| vs raw | vs bare aiohttp | charges/s at {' / '.join(map(str, low))} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, label in _PEAK_LABELS:
        row = rows.get((variant, at))
        if row is None:
            why = peak["skipped"].get(variant, "not in this run")
            lines.append(f"| {label} | not measured: {why} | | | | | | |")
            continue
        effect = _PEAK_EFFECT.get(variant)
        per_s = f"{row['per_s']:,.0f}"
        if effect is not None:
            per_s += f" ({_iqr(row, 'vs_recommended')} {effect})"
        lower = " / ".join(f"{rows[variant, c]['per_s']:,.0f}" for c in low if (variant, c) in rows)
        lines.append(
            f"| {label} | {per_s} | {row['cpu_ms']:.2f} | {row['p50_ms']:.1f} / "
            f"{row['p99_ms']:.1f} | {row['from_idle_p99_ms']:.1f} | {_iqr(row, 'vs_raw')} "
            f"| {_iqr(row, 'vs_bare_aiohttp')} "
            f"| {lower} |"
        )
    lines += ["", f"| goal at {at} in flight, `AsyncRouter` (aiohttp) | today | goal | met |"]
    lines.append("|---|---|---|---|")
    for goal in peak["goals"]:
        row = rows[goal["variant"], goal["concurrency"]]
        if goal["name"] == "vs_raw":
            label, today = "charges/s vs raw asyncio, same rounds", _iqr(row, "vs_raw")
            limit = f"≥ {goal['limit']:g}x"
        elif goal["name"] == "vs_bare_aiohttp":
            label = "charges/s vs bare httpx on the aiohttp transport, same rounds"
            today, limit = _iqr(row, "vs_bare_aiohttp"), f"≥ {goal['limit']:g}x"
        else:
            label = "p99 latency at steady load vs the provider's own p99"
            today = f"{goal['measured']:.1f} ms"
            limit = f"≤ {meta['provider_p99_ms']:g} + 15 = {goal['limit']:g} ms"
        lines.append(f"| {label} | {today} | {limit} | {_met(goal['met'])} |")
    busy = meta["provider_bottleneck"]
    most = max(r["provider_cores_max"] for r in peak["rows"])
    raw = rows["raw", at]
    router = rows[RECOMMENDED_PEAK, at]
    lines += [
        "",
        f"The provider process used at most {most:.0%} of a core in any batch "
        f"({meta['provider_cpu_ms_per_request']:.2f} ms of CPU per request)"
        + (
            f"; it was busy enough to be the limit during: {', '.join(busy)}."
            if busy
            else ": it was not the limit."
        )
        + f" Raw asyncio reached {raw['per_s']:,.0f} charges/s at {at} in flight, against "
        f"{meta['ideal_per_s'][str(at)]:,.0f} if the client cost nothing ({at} / 35 ms). "
        f"The client process was busy {raw['client_cores']:.0%} of the time with raw "
        f"asyncio and {router['client_cores']:.0%} with the `AsyncRouter` (aiohttp) (CPU "
        "seconds per second, every thread): where that nears 100 %, the client's event "
        "loop is the limit, and charges queue for it (p50, p99).",
        "",
        "For peak load install the aiohttp extra: `pip install 'payfallback[aiohttp]'`. "
        "With it, an `AsyncRouter` built without `client=` builds its client on "
        "payfallback's aiohttp transport itself (`payfallback.transports."
        "recommended_async_client`) and hands its requests to that transport directly "
        "(`owned_async_client`: a client nobody else holds needs nothing `AsyncClient.send` "
        "adds); without it, on httpcore, whose connection pool is the "
        f"limit at {at} in flight (encode/httpcore#1035: "
        "[benchmarks/README.md](benchmarks/README.md#client-settings-encodehttpcore1035)). "
        "A client you pass in is used through `send`, as it is.",
    ]
    return lines


def perf_doc(
    *,
    weekend: Mapping[str, Any],
    core: Mapping[str, Any],
    breakers: Mapping[str, Any],
    throughput: Mapping[str, Any],
    peak: Mapping[str, Any],
    quick: bool,
) -> dict[str, Any]:
    """What :data:`PERF` stores: the figures the table needs, and where they were measured."""
    return {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "commit": _commit(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0],
            "quick": quick,
        },
        "weekend": dict(weekend),
        "bench_core": {k: core[k] for k in ("meta", "breaker", "router")},
        "bench_breakers": dict(breakers),
        "bench_throughput": dict(throughput),
        "bench_peak": peak_doc(peak),
    }


def _peak_of(results: Mapping[str, Any]) -> Mapping[str, Any]:
    if "bench_peak" not in results:
        raise LookupError(
            "this run_all.py output has no bench_peak figures; run run_all.py again, "
            f"or refresh them alone with {PEAK_RUN}"
        )
    peak: Mapping[str, Any] = results["bench_peak"]
    return peak


def peak_doc(report: Mapping[str, Any]) -> dict[str, Any]:
    """``bench_peak``'s report as :data:`PERF` stores it: with the date and the commit, as
    ``--peak-run`` refreshes it apart from the rest."""
    meta = dict(report["meta"])
    meta.setdefault("date", datetime.now(UTC).strftime("%Y-%m-%d"))
    meta.setdefault("commit", _commit())
    return {**report, "meta": meta}


def _commit() -> str:
    """The checked-out commit, with ``+`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if changed else "")


def perf_run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmarks the table shows (the weekend first: it reads ``RUSAGE_CHILDREN``)."""
    # Imported here: the simulator's sections need none of the benchmarks' dependencies.
    from benchmarks import (  # noqa: PLC0415
        bench_breakers,
        bench_core,
        bench_peak,
        bench_throughput,
        run_all,
    )

    loadavg = list(os.getloadavg()) if hasattr(os, "getloadavg") else [0.0]
    weekend = run_all.weekend_memory()
    doc = perf_doc(
        weekend=weekend,
        core=bench_core.run(quick=quick),
        breakers=bench_breakers.run(quick=quick),
        throughput=bench_throughput.run(quick=quick),
        peak=bench_peak.run(quick=quick),
        quick=quick,
    )
    doc["meta"]["loadavg"] = loadavg
    doc["meta"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return doc


def perf_from(results: Mapping[str, Any]) -> dict[str, Any]:
    """The stored run from ``run_all.py``'s JSON output."""
    doc = perf_doc(
        weekend=results["weekend_memory"],
        core=results["bench_core"],
        breakers=results["bench_breakers"],
        throughput=results["bench_throughput"],
        peak=_peak_of(results),
        quick=bool(results["meta"]["quick"]),
    )
    doc["meta"]["loadavg"] = results["meta"]["loadavg"] or [0.0]
    return doc


def stored_perf() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(PERF.read_text(encoding="utf-8"))
    return doc


def peak_run(quick: bool = False) -> dict[str, Any]:
    """The stored run with its ``bench_peak`` key measured again, every other key as stored."""
    from benchmarks import bench_peak  # noqa: PLC0415

    stored = stored_perf()  # read first: a broken perf.json fails before minutes of work
    report = bench_peak.run(quick=quick)
    return {**stored, "bench_peak": peak_doc(report)}


def _store(doc: Mapping[str, Any]) -> None:
    perf_table(doc)  # it must render before it replaces the stored run
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    tmp = PERF.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(PERF)
    print(f"stored {_shown(PERF)}", file=sys.stderr)


def _shown(path: Path) -> str:
    """``path`` from the repository root when it is in the repository."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a section is stale"
    )
    parser.add_argument("--no-plot", action="store_true", help="leave the chart as it is")
    parser.add_argument(
        "--perf-run",
        action="store_true",
        help=f"run the benchmarks first and store them in {_shown(PERF)}",
    )
    parser.add_argument(
        "--perf-from", metavar="PATH", help="store the figures of a run_all.py JSON output"
    )
    parser.add_argument(
        "--peak-run",
        action="store_true",
        help="run benchmarks/bench_peak.py only, store its figures (the rest as stored) and "
        "rewrite only the performance section",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="with --perf-run or --peak-run: the smoke plans (rough figures)",
    )
    args = parser.parse_args(argv)
    if sum(map(bool, (args.check, args.perf_run, args.perf_from, args.peak_run))) > 1:
        parser.error("--check, --perf-run, --perf-from and --peak-run go one at a time")
    if args.peak_run:
        _store(peak_run(quick=args.quick))
        # Only the performance section: the simulator's sections and the chart are not
        # this run's to change.
        text = README.read_text(encoding="utf-8")
        perf = perf_table(stored_perf())
        changed = section(text, PERF_SECTION) != perf
        if changed:
            README.write_text(replace(text, PERF_SECTION, perf), encoding="utf-8")
        print(
            f"rewritten: {f'README.md section {PERF_SECTION}' if changed else 'nothing'}",
            file=sys.stderr,
        )
        return 0
    if args.perf_run or args.perf_from:
        if args.perf_run:
            doc = perf_run(quick=args.quick)
        else:
            doc = perf_from(json.loads(Path(args.perf_from).read_text(encoding="utf-8")))
        _store(doc)
    texts = {part.path: part.path.read_text(encoding="utf-8") for part in SECTIONS}
    docs: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    #: (file, section, body) of every section that differs.
    changes: list[tuple[Path, str, str]] = []
    for part in SECTIONS:
        plot = None if args.check or args.no_plot else part.chart
        if part.scenario not in docs or plot is not None:
            docs[part.scenario] = simulate(part.scenario, plot=plot)
            if plot is not None:
                print(f"chart written to {plot.relative_to(ROOT)}", file=sys.stderr)
        body = part.render(docs[part.scenario])
        if section(texts[part.path], part.name) != body:
            stale.append(f"{part.path.relative_to(ROOT)} section {part.name}")
            changes.append((part.path, part.name, body))
    perf = perf_table(stored_perf())
    if section(texts[README], PERF_SECTION) != perf:
        stale.append(f"README.md section {PERF_SECTION}")
        changes.append((README, PERF_SECTION, perf))
    if args.check:
        for where in stale:
            print(f"{where} is stale: run {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    # Read again just before writing: the simulations take a minute, and only the
    # generated sections are this script's to change.
    for path in dict.fromkeys(p for p, _, _ in changes):
        text = path.read_text(encoding="utf-8")
        for _, name, body in (c for c in changes if c[0] == path):
            text = replace(text, name, body)
        path.write_text(text, encoding="utf-8")
    print(f"rewritten: {', '.join(stale) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
