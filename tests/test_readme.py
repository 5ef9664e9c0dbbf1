"""The README: quick starts that run twice and print what it shows, simulator figures that are
what the command prints, and the test command CI runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_core, bench_peak, readme_figures

README = Path(__file__).resolve().parent.parent / "README.md"


def _quick_starts() -> list[tuple[str, str]]:
    """Each quick start's code and the output the README says it prints."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"```python\n(.*?)```\n\nIt prints:\n\n```text\n(.*?)```", text, re.DOTALL)
    return [(code, printed) for code, printed in found]


def _quick_start(marker: str) -> tuple[str, str]:
    return next((c, p) for c, p in _quick_starts() if marker in c)


def _run(code: str, cwd: Path) -> tuple[str, dict[str, Any]]:
    """Run README code as a script in ``cwd``: what it printed, and its globals."""
    out = io.StringIO()
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(old)
    return out.getvalue(), namespace


def test_readme_shows_what_both_quick_starts_print() -> None:
    assert len(_quick_starts()) == 2


def test_sync_pos_quick_start_runs_twice_and_the_second_run_sends_nothing(
    tmp_path: Path,
) -> None:
    code, printed = _quick_start("Router([")
    assert len(code.strip().splitlines()) <= 15
    first, ns = _run(code, tmp_path)
    assert first == printed == "nice 4,500 KRW\n"
    assert len(ns["nice"].live_charges()) == 1
    # Again, as a POS restarted after a crash would: the journal holds the payment.
    second, ns = _run(code, tmp_path)
    assert second == printed
    assert ns["nice"].live_charges() == []
    assert ns["toss"].live_charges() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pos-journal.sqlite3"]


def test_async_backend_quick_start_runs_twice_and_leaves_nothing_behind(tmp_path: Path) -> None:
    code, printed = _quick_start("asyncio.run(main())")
    for _ in range(2):
        output, _ns = _run(code, tmp_path)
        assert output == printed
        assert output.splitlines()[0] == "naverpay 39,000 KRW"
        assert "kakaopay/kakaopay" in output.splitlines()[1]
    assert list(tmp_path.iterdir()) == []


# -- the simulator's figures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs() -> Callable[[str], dict[str, Any]]:
    """``payfallback simulate --scenario NAME --seed 1 --json``, run once per scenario."""
    done: dict[str, dict[str, Any]] = {}

    def run(scenario: str) -> dict[str, Any]:
        if scenario not in done:
            done[scenario] = readme_figures.simulate(scenario)
        return done[scenario]

    return run


@pytest.mark.parametrize("part", readme_figures.SECTIONS, ids=lambda p: f"{p.path.name}:{p.name}")
def test_readme_figures_are_what_the_simulation_prints(
    part: readme_figures.Section, runs: Callable[[str], dict[str, Any]]
) -> None:
    # The full scenario, as the README states it: the kakao-fire weekend takes 20-40 s.
    doc = runs(part.scenario)
    expected = part.render(doc)
    shown = readme_figures.section(part.path.read_text(encoding="utf-8"), part.name)
    assert shown == expected, (
        f"{part.path.name}'s {part.name} section differs from what "
        f"`{' '.join(readme_figures.command(part.scenario))}` prints now; regenerate it "
        f"(and the chart) with: {readme_figures.REGENERATE}"
    )


def test_fire_figures_say_what_the_issue_is_about(runs: Callable[[str], dict[str, Any]]) -> None:
    doc = runs("kakao-fire-2022")
    strategies = doc["strategies"]
    assert strategies["payfallback"]["double_charges"] == 0
    assert strategies["naive"]["double_charges"] > 0
    # The chart's double-charge panel adds up to the table's figures.
    per_bucket = doc["timeline"]["double_charges"]
    for key, report in strategies.items():
        assert sum(per_bucket[key]) == report["double_charges"]
    assert sum(per_bucket["baseline"]) == 0
    section = readme_figures.section(README.read_text(encoding="utf-8"), "fire-table")
    assert f"**{strategies['naive']['double_charges']:,} (" in section
    assert "KST" in section


def test_performance_section_is_the_stored_benchmark_run() -> None:
    # Rendered from benchmarks/perf.json, the figures of one benchmark run kept in the
    # repository: the README cannot drift from them, and no timing is measured here.
    stored = readme_figures.stored_perf()
    shown = readme_figures.section(README.read_text(encoding="utf-8"), readme_figures.PERF_SECTION)
    assert shown == readme_figures.perf_table(stored), (
        f"README.md's {readme_figures.PERF_SECTION} section differs from "
        f"benchmarks/perf.json; regenerate it with: {readme_figures.REGENERATE}"
    )
    assert stored["meta"]["quick"] is False
    assert stored["bench_peak"]["meta"]["quick"] is False
    # Every goal stands beside today's figure.
    for goal in (
        "≥ 0.65x",
        "≥ 0.75x",
        f"≤ {stored['bench_peak']['meta']['provider_p99_ms']:g} + 15 = ",
        "≤ 0.4x",
        "≤ 0.6x",
        "≤ 3x",
        "≤ 6x",
        "≤ 1.4x",
        "≥ 0.95x at 64, IQR within ±10 %",
        "< 12 s, < 150 MiB",
        "≤ 1.5x",
    ):
        assert goal in shown
    # Beside the Router's goals, the floor under them, and the Router against the floor.
    floor_rows = readme_figures.floor_lines(stored["bench_core"]["router"])
    assert len(floor_rows) == 2
    for row in floor_rows:
        assert row in shown
    # The peak table names every variant bench_peak measures, and the extra to install.
    peak = shown[shown.index("### Peak load (async)") :]
    labels = dict(readme_figures._PEAK_LABELS)
    assert set(labels) == {*bench_peak.MAIN, *bench_peak.EXTRA}
    for label in labels.values():
        assert f"| {label} |" in peak
    assert "`pip install 'payfallback[aiohttp]'`" in peak
    # After the late-commit table, before the quick starts.
    text = README.read_text(encoding="utf-8")
    assert (
        text.index("<!-- late-commit-table:end -->")
        < text.index(f"<!-- {readme_figures.PERF_SECTION}:start -->")
        < text.index("## Quick start")
    )


def test_the_performance_table_finds_its_rows_by_the_names_bench_core_gives_them() -> None:
    # readme_figures names bench_core's rows itself (it does not import the benchmarks).
    assert readme_figures._FLOORS == (
        (bench_core.FLOOR_NORMAL, bench_core.BARE_SYNC, "Router.charge, WAL synchronous=NORMAL"),
        (bench_core.FLOOR_FULL, bench_core.BARE_SYNC, "Router.charge, WAL synchronous=FULL"),
        (
            bench_core.FLOOR_ASYNC,
            bench_core.BARE_ASYNC,
            "Router.charge (async), WAL synchronous=NORMAL",
        ),
        (
            bench_core.FLOOR_LOOPBACK,
            "loopback HTTP: bare Client.send(build_charge)",
            "loopback HTTP: Router.charge, NORMAL",
        ),
    )
    # That bench_core reports each of these rows is checked on its quick run, in
    # tests/test_benchmarks_smoke.py.


def test_peak_run_replaces_only_the_peak_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --peak-run: bench_peak measured again (here: its stored report, with a new date),
    # every other stored figure kept, and only the performance section of the README
    # rewritten. Nothing is measured.
    stored = readme_figures.stored_perf()
    perf, readme = tmp_path / "perf.json", tmp_path / "README.md"
    perf.write_text(readme_figures.PERF.read_text(encoding="utf-8"), encoding="utf-8")
    other = "intro\n<!-- fire-table:start -->\nkept as it is\n<!-- fire-table:end -->\n"
    readme.write_text(
        f"{other}<!-- {readme_figures.PERF_SECTION}:start -->\nold\n"
        f"<!-- {readme_figures.PERF_SECTION}:end -->\nafter\n",
        encoding="utf-8",
    )
    report = {**stored["bench_peak"], "meta": {**stored["bench_peak"]["meta"]}}
    for key in ("date", "commit"):
        del report["meta"][key]
    calls: list[bool] = []

    def fake_run(quick: bool = False) -> dict[str, Any]:
        calls.append(quick)
        return report

    monkeypatch.setattr(readme_figures, "PERF", perf)
    monkeypatch.setattr(readme_figures, "README", readme)
    monkeypatch.setattr(bench_peak, "run", fake_run)
    monkeypatch.setattr(readme_figures, "_commit", lambda: "abc1234")
    assert readme_figures.main(["--peak-run"]) == 0
    assert calls == [False]
    new = json.loads(perf.read_text(encoding="utf-8"))
    assert {k: v for k, v in new.items() if k != "bench_peak"} == {
        k: v for k, v in stored.items() if k != "bench_peak"
    }
    assert new["bench_peak"]["meta"]["commit"] == "abc1234"
    assert new["bench_peak"]["rows"] == stored["bench_peak"]["rows"]
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(other)
    assert text.endswith("after\n")
    assert readme_figures.section(text, readme_figures.PERF_SECTION) == readme_figures.perf_table(
        new
    )
    assert "at commit abc1234" in text


def test_the_regenerate_command_rewrites_only_its_section() -> None:
    text = "intro\n<!-- fire-table:start -->\nold\n<!-- fire-table:end -->\nafter\n"
    assert readme_figures.replace(text, "fire-table", "new\nrows") == (
        "intro\n<!-- fire-table:start -->\nnew\nrows\n<!-- fire-table:end -->\nafter\n"
    )
    with pytest.raises(LookupError, match="late-commit-table"):
        readme_figures.section(text, "late-commit-table")


def test_first_command_runs_the_simulation_without_the_browser_set_up() -> None:
    text = README.read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.*?)\n```", text, re.DOTALL)
    assert first is not None
    command = first.group(1)
    assert "payfallback simulate --scenario kakao-fire-2022 --seed 1" in command
    assert "browser-setup" not in command
    assert "chromium" not in command.lower()


def test_ci_runs_the_readme_test_command() -> None:
    commands = re.findall(r"^python -m pytest.*$", README.read_text(encoding="utf-8"), re.MULTILINE)
    assert commands == ["python -m pytest -q"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "grep -m1 -E '^python -m pytest' README.md" in ci


ADAPTERS = sorted(p.parent.name for p in (README.parent / "adapters").glob("*/pyproject.toml"))


def test_every_adapter_is_found() -> None:
    assert {"inicis", "kakaopay", "kcp", "naverpay", "nicepay", "portone", "tosspayments"} <= set(
        ADAPTERS
    )


@pytest.mark.parametrize("name", ADAPTERS)
def test_readme_links_every_adapter(name: str) -> None:
    assert f"adapters/{name}/README.md" in README.read_text(encoding="utf-8")
    assert (README.parent / "adapters" / name / "README.md").exists()
