"""Payments per second through the async ``AsyncRouter`` against a loopback fake, vs bare httpx.

At each concurrency (1, 16 and 64) a batch of customers, each with a new order, is served
by ``asyncio.gather`` in waves of ``concurrency`` at once:

* **Router**: ``await Router.charge(order, [instrument])`` against a
  :class:`~payfallback.testing.FakeServer` on 127.0.0.1 (real sockets, real HTTP/1.1),
  journal ``SQLiteJournal(tmp, durable=False)`` (WAL, ``synchronous=NORMAL``);
* **bare httpx**: ``await AsyncClient.send(provider.build_charge(...))`` of the same charge
  request to the same server, on an ``AsyncClient`` with the same connection limits.

Both variants run in the same rounds, alternating, and the ratio is the median of the
per-round ratios (Router payments/s over bare payments/s). The goal: at concurrency 64,
at least 0.85x.

The ``FakeServer`` is one asyncio loop in one thread of the same process (and under the
same GIL) as the client, so both variants share its ceiling: if the bare rate barely grows
from concurrency 16 to 64, the server (or the GIL) is the bottleneck, and the ratio says
how much of that shared budget the Router's own work takes.

Run ``python benchmarks/bench_throughput.py [--quick] [--json out.json]``; :func:`run`
returns the figures as a dict and prints nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypedDict

import httpx
from pydantic import SecretStr

from benchmarks.bench_core import _event_logging, _Orders, _quartiles, _unexpected
from payfallback import AsyncRouter, Instrument, Order, PaymentStatus
from payfallback.journal import SQLiteJournal
from payfallback.provider import ChargeRequest
from payfallback.testing import FakeBank, FakeProvider, FakeServer

__all__ = ["ThroughputReport", "ThroughputRow", "format_table", "main", "run"]

CONCURRENCY = (1, 16, 64)
THROUGHPUT_GOAL = 0.85  # at concurrency 64
_GOAL_AT = 64


class ThroughputRow(TypedDict):
    concurrency: int
    #: Median payments per second over rounds, and their quartiles.
    router_per_s: float
    router_p25: float
    router_p75: float
    bare_per_s: float
    bare_p25: float
    bare_p75: float
    #: Median of per-round ratios (router over bare) and their quartiles.
    ratio: float
    ratio_p25: float
    ratio_p75: float
    goal: float | None
    met: bool | None


class ThroughputReport(TypedDict):
    meta: dict[str, Any]
    rows: list[ThroughputRow]


#: Per concurrency: (rounds, payments per round)
_FULL = (7, {1: 100, 16: 480, 64: 960})
_QUICK = (3, {1: 30, 16: 128, 64: 256})


async def _waves(
    orders: list[Order], concurrency: int, one: Callable[[Order], Awaitable[None]]
) -> int:
    t0 = time.perf_counter_ns()
    for k in range(0, len(orders), concurrency):
        await asyncio.gather(*(one(o) for o in orders[k : k + concurrency]))
    return time.perf_counter_ns() - t0


async def _measure(workdir: str, quick: bool) -> tuple[list[ThroughputRow], dict[str, Any]]:
    rounds, sizes = _QUICK if quick else _FULL
    bank = FakeBank("loop")
    inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0003"))
    insts = [inst]
    orders = _Orders()
    rows: list[ThroughputRow] = []
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    with FakeServer(bank) as server:
        provider = FakeProvider("loop", base_url=server.url_for(bank))
        with SQLiteJournal(os.path.join(workdir, "throughput.sqlite3"), durable=False) as journal:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=limits) as rclient,
                httpx.AsyncClient(timeout=httpx.Timeout(10.0), limits=limits) as bclient,
            ):
                router = AsyncRouter([provider], client=rclient, journal=journal)

                async def via_router(order: Order) -> None:
                    if (await router.charge(order, insts)).status is not PaymentStatus.PAID:
                        raise _unexpected("Router.charge did not pay")

                async def bare(order: Order) -> None:
                    req = provider.build_charge(
                        ChargeRequest(
                            attempt_id=order.order_id + "_1",
                            order=order,
                            instrument=inst,
                            idempotency_key=uuid.uuid4().hex,
                        )
                    )
                    if (await bclient.send(req)).status_code != 200:
                        raise _unexpected("the bare charge was not answered 200")

                for concurrency in CONCURRENCY:
                    n = sizes[concurrency]
                    # Warm-up: connections opened, caches filled, at this concurrency.
                    await _waves(orders.take(concurrency * 2, "wr"), concurrency, via_router)
                    await _waves(orders.take(concurrency * 2, "wb"), concurrency, bare)
                    r_rate: list[float] = []
                    b_rate: list[float] = []
                    for r in range(rounds):
                        pair = [("r", via_router), ("b", bare)]
                        if r % 2:
                            pair.reverse()
                        for key, fn in pair:
                            todo = orders.take(n, key)
                            gc.collect()
                            ns = await _waves(todo, concurrency, fn)
                            (r_rate if key == "r" else b_rate).append(n / (ns / 1e9))
                    ratios = [a / b for a, b in zip(r_rate, b_rate, strict=True)]
                    rq, bq, qq = _quartiles(r_rate), _quartiles(b_rate), _quartiles(ratios)
                    goal = THROUGHPUT_GOAL if concurrency == _GOAL_AT else None
                    rows.append(
                        ThroughputRow(
                            concurrency=concurrency,
                            router_per_s=rq[1],
                            router_p25=rq[0],
                            router_p75=rq[2],
                            bare_per_s=bq[1],
                            bare_p25=bq[0],
                            bare_p75=bq[2],
                            ratio=qq[1],
                            ratio_p25=qq[0],
                            ratio_p75=qq[2],
                            goal=goal,
                            met=None if goal is None else qq[1] >= goal,
                        )
                    )
    meta = {"rounds": rounds, "payments_per_round": {str(k): v for k, v in sizes.items()}}
    return rows, meta


def run(quick: bool = False, *, journal_dir: str | None = None) -> ThroughputReport:
    """Measure every concurrency once and return the figures (nothing is printed)."""
    workdir = tempfile.mkdtemp(prefix="payfallback-throughput-", dir=journal_dir)
    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    try:
        with _event_logging():
            rows, meta = loop.run_until_complete(_measure(workdir, quick))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
        shutil.rmtree(workdir, ignore_errors=True)
    meta.update(
        quick=quick,
        cpus=os.cpu_count(),
        httpx=httpx.__version__,
        seconds=round(time.perf_counter() - started, 1),
        server="FakeServer: one asyncio loop in a thread of this process",
    )
    return ThroughputReport(meta=meta, rows=rows)


def server_bound(rows: Sequence[ThroughputRow]) -> bool:
    """Whether bare httpx at concurrency 64 does less than 1.5x its rate at concurrency 1.

    Concurrency can only pay off where someone waits; on loopback nobody does, and the
    server (one asyncio loop in a thread) shares the GIL with the client, so the whole
    process is then the ceiling for both variants, not the network.
    """
    by = {row["concurrency"]: row["bare_per_s"] for row in rows}
    return 1 in by and 64 in by and by[64] < by[1] * 1.5


def format_table(report: ThroughputReport) -> str:
    meta = report["meta"]
    rows = report["rows"]
    lines = [
        f"== throughput{' (quick: rough figures)' if meta['quick'] else ''}: AsyncRouter.charge "
        f"vs bare AsyncClient.send, loopback FakeServer, {meta['seconds']} s",
        f"{'concurrency':>11} {'Router/s':>9} {'bare/s':>9} {'ratio':>6} {'IQR':>13} "
        f"{'goal':>6} met",
    ]
    for row in rows:
        goal = met = ""
        if row["goal"] is not None:
            goal = f">={row['goal']:g}x"
            met = "yes" if row["met"] else "NO"
        lines.append(
            f"{row['concurrency']:>11} {row['router_per_s']:>9.0f} {row['bare_per_s']:>9.0f} "
            f"{row['ratio']:>5.2f}x [{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}] "
            f"{goal:>6} {met}"
        )
    bound = server_bound(rows)
    lines.append(
        "bare httpx gains < 1.5x from concurrency 1 to 64: the process (client and the "
        "one-thread loopback server under one GIL) is the ceiling for both variants"
        if bound
        else "bare httpx scales with concurrency: the server is not the ceiling"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_throughput.py",
        description="AsyncRouter.charge payments/s vs bare httpx over loopback HTTP",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a few seconds, rough")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--journal-dir", metavar="DIR", help="where the temporary journal lives")
    args = parser.parse_args(argv)
    report = run(quick=args.quick, journal_dir=args.journal_dir)
    print(format_table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
