"""The benchmark scripts run and report every figure (their numbers are not judged here)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx
import psycopg
import structlog
from pydantic import SecretStr

from benchmarks import readme_figures
from benchmarks._events import event_logging
from benchmarks.bench_breakers import format_table as breakers_table
from benchmarks.bench_breakers import run as run_breakers
from benchmarks.bench_brownout import run as run_brownout
from benchmarks.bench_core import Floor, format_table, run
from benchmarks.bench_import import format_table as import_table
from benchmarks.bench_import import run as run_import
from benchmarks.bench_instructions import VARIANTS
from benchmarks.bench_instructions import pay as pay_instructions
from benchmarks.bench_scale import DEFAULT_POSTGRES_URL
from benchmarks.bench_scale import run as run_scale
from benchmarks.bench_threads import THREADS
from benchmarks.bench_threads import format_table as threads_table
from benchmarks.bench_threads import run as run_threads
from benchmarks.bench_throughput import SETTINGS
from benchmarks.bench_throughput import format_table as throughput_table
from benchmarks.bench_throughput import run as run_throughput
from payfallback import AttemptState, Instrument, Money, Order, Router
from payfallback.events import Events
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, mock_transport


class _Lines(logging.Handler):
    """Keeps every line the standard logger hands it (structlog's rendered JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_bench_core_quick_run_reports_every_row_and_splits_a_charge() -> None:
    # One quick run with the profile: the rows are the same as without it, and the core
    # benchmark is the suite's slowest smoke run, so it runs once.
    before = structlog.get_config()
    report = run(quick=True, profile=True)
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
    # Every row the README's performance table looks for, under the name it looks for.
    names = {(row["name"], row["baseline"]) for row in report["router"]}
    for label, name, baseline, _goal in readme_figures._ROUTER_ROWS:
        assert (name, baseline) in names, label
    for floor, bare, router in readme_figures._FLOORS:
        assert (floor, bare) in names
        assert (router, floor) in names
    assert structlog.get_config() == before

    assert report["profile"] is not None
    assert "Router.charge x" in report["profile"]
    steps = dict(report["components"] or [])
    assert "journal: begin_attempt (NORMAL)" in steps
    assert all(ns > 0 for ns in steps.values())
    split = report["split"]
    assert split is not None
    (_, whole), (_, journal), (_, send), (_, rest) = split
    # Each part was timed in place, and the rest is what neither the journal nor the send
    # took: all three are real shares of the whole (none counted twice).
    assert 0 < journal < whole
    assert 0 < send < whole
    assert rest > 0


def test_the_floor_journals_and_logs_a_charge_as_the_router_does(tmp_path: Path) -> None:
    """bench_core's floor is only a floor if it does what the Router must: the same rows
    in the journal, read back through the journal's own API, and the same events."""
    provider = FakeProvider("fake")
    inst = Instrument(provider="fake", billing_key=SecretStr("bk-floor-0001"))
    amount = Money(amount=15000, currency="KRW")
    by_router, by_hand = (
        Order(order_id=f"floor-{who}", amount=amount, name="bench") for who in ("router", "hand")
    )
    capture = _Lines()
    lines = capture.lines
    std = logging.getLogger("payfallback")
    with (
        event_logging(),
        httpx.Client(transport=mock_transport(FakeBank("fake"))) as client,
        SQLiteJournal(tmp_path / "router.sqlite3", durable=False) as router_journal,
        SQLiteJournal(tmp_path / "floor.sqlite3", durable=False) as floor_journal,
    ):
        std.addHandler(capture)
        try:
            Router([provider], client=client, journal=router_journal).charge(by_router, [inst])
            router_events = [json.loads(line) for line in lines]
            lines.clear()
            floor = Floor(provider, inst, floor_journal)
            req, request = floor.begin(by_hand)
            floor.finish(req, client.send(request))
            floor_events = [json.loads(line) for line in lines]
        finally:
            std.removeHandler(capture)
        paid = [
            journal.payment_for_order(order.order_id)
            for journal, order in ((router_journal, by_router), (floor_journal, by_hand))
        ]
        tried = [
            journal.attempts_for_order(order.order_id)
            for journal, order in ((router_journal, by_router), (floor_journal, by_hand))
        ]
        counts = [journal.counts() for journal in (router_journal, floor_journal)]

    assert paid[0] is not None
    assert paid[1] is not None
    ids = {"payment_id", "order_id", "attempt_id", "provider_txn_id", "approved_at"}
    kept = ids | {"provider_answer", "receipt"}
    assert paid[0].model_dump(exclude=kept) == paid[1].model_dump(exclude=kept)
    assert paid[0].receipt is not None
    assert paid[1].receipt is not None
    per_charge = {"approval_number", "receipt_url"}
    assert paid[0].receipt.model_dump(exclude=per_charge) == paid[1].receipt.model_dump(
        exclude=per_charge
    )
    assert paid[0].provider_answer is not None
    assert paid[1].provider_answer is not None
    assert paid[0].provider_answer.keys() == paid[1].provider_answer.keys()
    assert [(a.seq, a.provider, a.method, a.operation, a.state) for a in tried[0]] == [
        (a.seq, a.provider, a.method, a.operation, a.state) for a in tried[1]
    ]
    assert tried[1][0].state is AttemptState.SUCCEEDED
    assert counts[0] == counts[1]

    def shape(events: list[dict[str, object]]) -> list[tuple[object, frozenset[str]]]:
        return [(e["event"], frozenset(e)) for e in events]

    assert [e["event"] for e in floor_events] == ["payment.attempt", "payment.succeeded"]
    assert shape(floor_events) == shape(router_events)


def test_the_benchmarks_write_info_events_where_a_shop_logging_them_would() -> None:
    """The events are rendered by structlog and written by the standard logger
    ``payfallback`` at INFO, not rendered and then dropped at its default WARNING."""
    std = logging.getLogger("payfallback")

    def handlers() -> list[logging.Handler]:
        # Events() gives the logger a NullHandler if it has none; that one stays.
        return [h for h in std.handlers if not isinstance(h, logging.NullHandler)]

    before = (std.level, std.propagate, handlers(), structlog.get_config())
    capture = _Lines()
    lines = capture.lines
    with event_logging() as set_level:
        std.addHandler(capture)
        try:
            events = Events()
            events.emit("payment.duplicate", order_id="o-1", payment_id="pay_o-1", provider="x")
            set_level(logging.WARNING)  # structlog's filter: the INFO event is not rendered
            events.emit("payment.duplicate", order_id="o-2", payment_id="pay_o-2", provider="x")
        finally:
            std.removeHandler(capture)
        assert not std.propagate
    assert [json.loads(line)["order_id"] for line in lines] == ["o-1"]
    assert json.loads(lines[0])["event"] == "payment.duplicate"
    assert (std.level, std.propagate, handlers(), structlog.get_config()) == before


def test_bench_instructions_pays_every_order_through_both_variants() -> None:
    # What callgrind counts (python benchmarks/bench_instructions.py), run here without
    # it: every order of the warm-up and of the run ends as a payment in the journal.
    for variant in VARIANTS:
        assert pay_instructions(variant, 70, warm_up=64) == 134


def test_bench_breakers_quick_compares_with_pybreaker_purgatory_and_aiobreaker() -> None:
    report = run_breakers(quick=True)
    compared = [row for row in report["rows"] if row["baseline"] is not None]
    baselines = {row["baseline"] for row in compared}
    assert {"pybreaker call, net of fn()", "purgatory with get_breaker(), net of fn()"} <= baselines
    if report["meta"]["aiobreaker"] is not None:
        assert {
            "aiobreaker call, net of fn()",
            "aiobreaker @breaker async, net of await afn()",
        } <= baselines
    for row in compared:
        assert row["ratio"] is not None
        assert row["ratio"] > 0
        assert row["ratio_p25"] is not None
        assert row["ratio_p75"] is not None
    # Fresh and full window, each against pybreaker and purgatory with its goal.
    goals = {(row["name"], row["baseline"]): row["goal"] for row in compared if row["goal"]}
    assert len(goals) == 4
    # The full-window rows ran on breakers whose window was full: 60 s at 2 ms a call, 250
    # calls in each of its 120 buckets (the newest may have just started).
    assert all(29_750 <= calls <= 30_000 for calls in report["meta"]["full_window_calls"])
    assert "purgatory" in breakers_table(report)


def test_bench_throughput_quick_pays_a_provider_in_another_process() -> None:
    report = run_throughput(quick=True)
    meta = report["meta"]
    assert meta["provider_pid"] != os.getpid()
    rows = report["rows"]
    assert [row["concurrency"] for row in rows] == [1, 16, 64]
    for row in rows:
        assert row["router_per_s"] > 0
        assert row["bare_per_s"] > 0
        assert row["ratio_p25"] <= row["ratio"] <= row["ratio_p75"]
        assert row["router_cpu_ms"] > 0
        assert row["bare_cpu_ms"] > 0
    # The provider process answered every timed payment of both variants (and the warm-ups).
    timed = sum(meta["payments_per_round"].values()) * meta["rounds"] * 2
    timed += len(SETTINGS) * 2 * meta["settings_rounds"] * meta["settings_payments_per_round"]
    assert meta["provider_requests"] > timed
    # Each client setting, bare and Router, against httpx's default in the same rounds.
    assert {(s["setting"], s["variant"]) for s in report["settings"]} == {
        (setting, variant) for setting in SETTINGS for variant in ("bare", "router")
    }
    for s in report["settings"]:
        if (s["max_connections"], s["max_keepalive_connections"]) == (100, 20):
            assert s["vs_default"] == 1.0
        assert s["per_s"] > 0
    assert "another process" in throughput_table(report)


def test_bench_threads_quick_pays_from_threads_through_both_variants() -> None:
    report = run_threads(quick=True)
    meta = report["meta"]
    rows = report["rows"]
    assert [row["threads"] for row in rows] == list(THREADS)
    for row in rows:
        assert row["router_per_s"] > 0
        assert row["bare_per_s"] > 0
        assert row["ratio_p25"] <= row["ratio"] <= row["ratio_p75"]
        assert row["cpu_ratio_p25"] <= row["cpu_ratio"] <= row["cpu_ratio_p75"]
    # Every timed payment of both variants reached the provider process (and the warm-ups).
    timed = sum(meta["payments_per_round"].values()) * meta["rounds"] * 2
    assert meta["provider_requests"] > timed
    assert "threads" in threads_table(report)


def test_bench_brownout_quick_trips_payfallback_first_and_charges_nobody_twice() -> None:
    # A deterministic simulation (fixed seed), so the comparison itself is checked.
    report = run_brownout(quick=True)
    ours, theirs = report["strategies"]
    assert ours["strategy"] == "payfallback"
    assert theirs["strategy"] == "pybreaker + tenacity"
    assert ours["customers"] == theirs["customers"] > 0
    assert ours["opened_after_s"] is not None
    assert theirs["opened_after_s"] is None or theirs["opened_after_s"] > ours["opened_after_s"]
    assert ours["double_charges"] == 0
    assert ours["affected"] < theirs["affected"]


def test_bench_import_quick_times_both_imports_and_never_loads_typer() -> None:
    report = run_import(quick=True)
    assert [t["statement"] for t in report["timings"]] == [
        "import payfallback",
        "from payfallback import Router, Order",
        "import httpx, pydantic",
    ]
    for timing in report["timings"]:
        assert timing["median_ms"] > 0
        assert "typer" not in timing["loaded"]
        assert "matplotlib" not in timing["loaded"]
    for key in ("ratio", "router_ratio"):
        low, high = report[key + "_iqr"]  # type: ignore[literal-required]
        assert 0 < low <= report[key] <= high
    assert report["payfallback_loads_typer"] is False
    assert "httpx + pydantic" in import_table(report)


def _bench_schemas() -> set[str]:
    with psycopg.connect(DEFAULT_POSTGRES_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pf_bench_%'"
        ).fetchall()
    return {row[0] for row in rows}


def test_bench_scale_quick_pays_from_processes_sharing_redis_and_postgresql() -> None:
    """Every worker process pays through one PostgreSQL journal (and one Redis state store):
    their fake banks stand for one provider and never repeat a transaction id, so no charge
    is refused as another order's; the run's schema is dropped after."""
    schemas = _bench_schemas()
    report = run_scale(quick=True, processes=2)
    measured = {(row["state"], row["processes"]) for row in report["throughput"]}
    assert {("local", 1), ("journal", 1), ("shared", 1), ("local", 2), ("shared", 2)} <= measured
    for row in report["throughput"]:
        assert row["per_second"] > 0
        assert row["degraded"] == 0
    assert report["latency"]["payments_each"] > 0
    assert report["latency"]["redis_commands_per_payment"] == 0
    assert _bench_schemas() == schemas
