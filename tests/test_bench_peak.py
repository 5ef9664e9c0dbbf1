"""The peak-load benchmark runs every variant and accounts for every charge (its figures are
not judged here: the machine is shared)."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
import structlog
from pydantic import SecretStr

from benchmarks import bench_peak
from benchmarks.bench_core import _Orders
from benchmarks.bench_peak import CONCURRENCY, EXTRA, GOAL_AT, MAIN, format_table, run
from benchmarks.bench_throughput import _drive
from payfallback import Instrument, Money, Order
from payfallback.provider import ChargeRequest
from payfallback.testing import FakeProvider


@pytest.fixture(scope="module")
def report() -> bench_peak.PeakReport:
    before = structlog.get_config()
    done = run(quick=True)
    assert structlog.get_config() == before
    return done


def test_every_variant_is_measured_at_every_concurrency(report: bench_peak.PeakReport) -> None:
    measured = {(row["variant"], row["concurrency"]) for row in report["rows"]}
    assert {(v, c) for v in MAIN for c in CONCURRENCY} <= measured
    # The extra rows run at 64 only, or say why they did not run.
    for name in EXTRA:
        assert ((name, GOAL_AT) in measured) != (name in report["skipped"])
        assert not any((name, c) in measured for c in CONCURRENCY if c != GOAL_AT)
    assert len(measured) == len(report["rows"])


def test_each_row_carries_its_figures(report: bench_peak.PeakReport) -> None:
    meta = report["meta"]
    for row in report["rows"]:
        # Every timed charge answered (a Router charge that did not end PAID stops the run).
        assert row["charges"] == meta["rounds"] * meta["charges_per_round"][str(row["concurrency"])]
        assert row["per_s_p25"] <= row["per_s"] <= row["per_s_p75"]
        assert row["per_s"] > 0
        assert row["cpu_ms"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
        assert 0 < row["from_idle_p50_ms"] <= row["from_idle_p99_ms"]
        for ratio in ("vs_raw", "vs_bare_aiohttp", "vs_recommended"):
            assert row[f"{ratio}_p25"] <= row[ratio] <= row[f"{ratio}_p75"]  # type: ignore[literal-required]
        assert row["provider_cores"] >= 0
        assert row["provider_gc_max_ms"] >= 0
        assert row["client_gc_max_ms"] >= 0
    for row in report["rows"]:
        if row["variant"] == "raw":
            assert row["vs_raw"] == pytest.approx(1.0)
        if row["variant"] == "bare-aiohttp":
            assert row["vs_bare_aiohttp"] == pytest.approx(1.0)


def test_the_provider_answered_every_charge_of_every_variant_once(
    report: bench_peak.PeakReport,
) -> None:
    meta = report["meta"]
    assert meta["provider_pid"] != os.getpid()
    by_variant: dict[str, int] = meta["charges_by_variant"]
    sizes: dict[int, int] = {int(c): n for c, n in meta["charges_per_round"].items()}
    rounds: int = meta["rounds"]

    def expected(concurrencies: list[int]) -> int:
        # One charge alone first; a warm-up of two per customer at each concurrency; then
        # per round one untimed charge per customer, and the batch: two per customer
        # before the timed charges (the first from idle), the timed ones, one per
        # customer after.
        return 1 + sum(2 * c + rounds * (c + 2 * c + sizes[c] + c) for c in concurrencies)

    for name in MAIN:
        assert by_variant[name] == expected(list(CONCURRENCY))
    for name in EXTRA:
        assert by_variant.get(name, 0) == (0 if name in report["skipped"] else expected([GOAL_AT]))
    # One request per charge, Router or not: no retries, lookups or second sends.
    assert meta["provider_requests"] == sum(by_variant.values())


def test_goals_and_the_provider_reference(report: bench_peak.PeakReport) -> None:
    goals = {goal["name"]: goal for goal in report["goals"]}
    assert set(goals) == {name for name, _ in bench_peak.GOALS}
    for goal in goals.values():
        assert goal["variant"] == "router-aiohttp"
        assert goal["concurrency"] == GOAL_AT
        assert isinstance(goal["met"], bool)
    assert goals["p99_over_provider_ms"]["limit"] == pytest.approx(49.7 + 15)
    assert report["meta"]["provider_p99_ms"] == pytest.approx(49.7)
    table = format_table(report)
    for name in (*MAIN, *EXTRA):
        assert name in table


def test_the_raw_client_sends_the_request_the_provider_builds() -> None:
    provider = FakeProvider("loop", base_url="http://127.0.0.1:8080")
    order = Order(order_id="peak-1", amount=Money(amount=15_000), name="bench")
    inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0015"))
    request = provider.build_charge(
        ChargeRequest(attempt_id="peak-1_1", order=order, instrument=inst, idempotency_key="k1")
    )
    wire = bench_peak._wire(request)
    head, _, body = wire.partition(b"\r\n\r\n")
    line, *headers = head.split(b"\r\n")
    assert line == b"POST /v1/charges HTTP/1.1"
    assert body == request.content
    parsed = httpx.Headers([(n, v) for n, _, v in (h.partition(b": ") for h in headers)])
    assert parsed["host"] == "127.0.0.1:8080"
    assert parsed["idempotency-key"] == "k1"
    assert int(parsed["content-length"]) == len(body)


def test_a_batch_times_its_charges_at_steady_load_and_its_burst_from_idle_apart() -> None:
    """The first customers' charges start together from idle and are kept apart; the
    charges that follow them while the customers fall out of step, and those that keep the
    load up at the end, are not timed; the window holds exactly the timed charges."""
    concurrency, n = 4, 12
    kinds: list[str] = []
    in_flight = 0
    most_in_window: list[int] = []

    async def one(order: Order) -> None:
        nonlocal in_flight
        kind = order.order_id.split("-", 1)[0]
        kinds.append(kind)
        in_flight += 1
        if kind == "pay":
            most_in_window.append(in_flight)
        # A burst from idle is slow, the rest quick: where each time lands shows who is who.
        await asyncio.sleep(0.05 if kind == "idle" else 0.001)
        in_flight -= 1

    variant = bench_peak._Variant("v", asyncio.new_event_loop(), one)
    window = bench_peak._Window(variant, concurrency, n)
    todo = window.orders(_Orders())
    try:
        variant.loop.run_until_complete(_drive(todo, concurrency, window))
    finally:
        variant.loop.close()
    assert kinds == ["idle"] * 4 + ["ramp"] * 4 + ["pay"] * 12 + ["tail"] * 4
    assert variant.done == len(todo) == 24
    assert len(variant.from_idle) == concurrency
    assert min(variant.from_idle) >= 0.05e9
    assert len(variant.latencies) == n
    assert max(variant.latencies) < 0.05e9
    # Every timed charge started with the customers all busy.
    assert most_in_window == [concurrency] * n
    # n charges ended in the window, each after at least 1 ms.
    wall, _ = window.wall_cpu()
    assert wall >= 0.001e9
