"""The benchmark scripts run and report every figure (their numbers are not judged here)."""

from __future__ import annotations

import structlog

from benchmarks.bench_core import format_table, run


def test_bench_core_quick_run_reports_every_row() -> None:
    before = structlog.get_config()
    report = run(quick=True)
    assert {"meta", "breaker", "router"} <= set(report)
    rows = [*report["breaker"], *report["router"]]
    assert rows
    for row in rows:
        assert row["ns_per_op"] > 0
        if row["baseline"] is not None:  # a compared row carries its ratio and verdict
            assert row["ratio"] is not None
            assert row["ratio"] > 0
    assert any(row["goal"] is not None for row in rows)
    assert "pybreaker" in format_table(report)
    assert structlog.get_config() == before
