"""The sync ``Router`` under threads, against bare ``httpx.Client``, on a small httpcore pool.

A threaded shop backend (a WSGI server's worker threads) shares one ``Router`` and its
client. The provider is :mod:`benchmarks.provider_process` (a separate process answering
each charge after 20-50 ms, as for ``bench_throughput.py``). At 16 and 64 threads, each
thread takes the next order of a fresh batch as it finishes one:

* ``bare``: ``client.send(provider.build_charge(...))`` on an ``httpx.Client`` with
  ``httpx.Limits(max_connections=16, max_keepalive_connections=16)``;
* ``router``: ``Router([provider], client=<the same settings>, journal=SQLiteJournal(tmp,
  durable=False))``, structlog events rendered as JSON at INFO into a null sink.

At 64 threads, 48 of them wait for a connection: bare httpx's in httpcore's pool, which
walks every waiting request on every request and release (encode/httpcore#1035), the
Router's at its gate (``payfallback.transports._gate.PoolGate``). Both variants run in the
same rounds, alternating which goes first; each row gives the median payments/s with its
quartiles, the CPU milliseconds per payment (``time.process_time``: every thread), and the
medians of the per-round ratios Router / bare (payments/s and CPU per payment) with their
interquartile ranges. It has no goal: it shows what the gate does for threads.

Run ``python benchmarks/bench_threads.py [--quick] [--json out.json]``; :func:`run` returns
the figures as a dict and prints nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypedDict

import httpx
from pydantic import SecretStr

from benchmarks._events import event_logging
from benchmarks._output import command
from benchmarks.bench_core import _Orders, _quartiles, _unexpected, bare_charge
from benchmarks.bench_throughput import ProviderProcess, _rotated
from payfallback import Instrument, Order, PaymentStatus, Router
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeProvider

__all__ = ["LIMITS", "THREADS", "ThreadsReport", "ThreadsRow", "format_table", "main", "run"]

#: Threads paying at once.
THREADS = (16, 64)
#: The pool both variants send through.
LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)

One = Callable[[Order], None]


class ThreadsRow(TypedDict):
    threads: int
    router_per_s: float
    router_p25: float
    router_p75: float
    bare_per_s: float
    bare_p25: float
    bare_p75: float
    router_cpu_ms: float
    bare_cpu_ms: float
    ratio: float
    ratio_p25: float
    ratio_p75: float
    cpu_ratio: float
    cpu_ratio_p25: float
    cpu_ratio_p75: float


class ThreadsReport(TypedDict):
    meta: dict[str, Any]
    rows: list[ThreadsRow]


@dataclass(frozen=True)
class _Plan:
    rounds: int
    #: payments per round, by threads
    sizes: dict[int, int]


_FULL = _Plan(rounds=5, sizes={16: 480, 64: 640})
_QUICK = _Plan(rounds=2, sizes={16: 32, 64: 64})


@dataclass
class _Sample:
    per_s: float
    cpu_ms: float


def _drive(orders: list[Order], threads: int, one: One) -> tuple[float, float]:
    """Serve ``orders`` from ``threads`` threads at once; (wall seconds, CPU seconds)."""
    todo = iter(orders)
    lock = threading.Lock()

    def customer() -> None:
        while True:
            with lock:
                order = next(todo, None)
            if order is None:
                return
            one(order)

    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(customer) for _ in range(threads)]:
            done.result()
    return time.perf_counter() - t0, time.process_time() - cpu0


def _variants(provider: FakeProvider, journal: SQLiteJournal, stack: ExitStack) -> dict[str, One]:
    inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0004"))
    bare_client = stack.enter_context(httpx.Client(limits=LIMITS, timeout=10.0))
    router_client = stack.enter_context(httpx.Client(limits=LIMITS, timeout=10.0))
    router = stack.enter_context(Router([provider], client=router_client, journal=journal))
    insts = [inst]

    def bare(order: Order) -> None:
        request = bare_charge(provider, order, inst)
        if bare_client.send(request).status_code != 200:
            raise _unexpected("the bare charge was not answered 200")

    def via_router(order: Order) -> None:
        if router.charge(order, insts).status is not PaymentStatus.PAID:
            raise _unexpected("Router.charge did not pay")

    return {"router": via_router, "bare": bare}


def _row(threads: int, router: list[_Sample], bare: list[_Sample]) -> ThreadsRow:
    rq = _quartiles([s.per_s for s in router])
    bq = _quartiles([s.per_s for s in bare])
    pairs = list(zip(router, bare, strict=True))
    qq = _quartiles([a.per_s / b.per_s for a, b in pairs])
    cq = _quartiles([a.cpu_ms / b.cpu_ms for a, b in pairs])
    return ThreadsRow(
        threads=threads,
        router_per_s=rq[1],
        router_p25=rq[0],
        router_p75=rq[2],
        bare_per_s=bq[1],
        bare_p25=bq[0],
        bare_p75=bq[2],
        router_cpu_ms=_quartiles([s.cpu_ms for s in router])[1],
        bare_cpu_ms=_quartiles([s.cpu_ms for s in bare])[1],
        ratio=qq[1],
        ratio_p25=qq[0],
        ratio_p75=qq[2],
        cpu_ratio=cq[1],
        cpu_ratio_p25=cq[0],
        cpu_ratio_p75=cq[2],
    )


def run(quick: bool = False) -> ThreadsReport:
    """Measure both variants at every thread count, in the same rounds."""
    plan = _QUICK if quick else _FULL
    workdir = tempfile.mkdtemp(prefix="payfallback-threads-")
    started = time.perf_counter()
    orders = _Orders()
    rows: list[ThreadsRow] = []
    try:
        with (
            event_logging(),
            ProviderProcess() as server,
            SQLiteJournal(os.path.join(workdir, "threads.sqlite3"), durable=False) as journal,
            ExitStack() as stack,
        ):
            provider = FakeProvider("loop", base_url=server.base_url)
            variants = _variants(provider, journal, stack)
            for threads in THREADS:
                for key, one in variants.items():  # warm-up: connections, caches
                    _drive(orders.take(threads * 2, "w" + key[0]), threads, one)
                got: dict[str, list[_Sample]] = {key: [] for key in variants}
                for r in range(plan.rounds):
                    for key in _rotated(list(got), r):
                        n = plan.sizes[threads]
                        wall, cpu = _drive(orders.take(n, "pay"), threads, variants[key])
                        got[key].append(_Sample(n / wall, cpu * 1000 / n))
                rows.append(_row(threads, got["router"], got["bare"]))
            requests = server.stats()["requests"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "quick": quick,
        "rounds": plan.rounds,
        "payments_per_round": {str(k): v for k, v in plan.sizes.items()},
        "limits": f"{LIMITS.max_connections} / {LIMITS.max_keepalive_connections}",
        "provider_requests": requests,
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "httpx": httpx.__version__,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return ThreadsReport(meta=meta, rows=rows)


def format_table(report: ThreadsReport) -> str:
    meta = report["meta"]
    lines = [
        "== threads: sync Router.charge vs bare httpx.Client.send, provider in another "
        f"process answering in 20-50 ms, pool {meta['limits']}"
        + (" (quick: rough figures)" if meta["quick"] else ""),
        f"{meta['rounds']} rounds; ratios: medians of the per-round ratios Router / bare, "
        "with their IQR",
        f"{'threads':>7}  {'Router/s':>8}  {'bare/s':>8}  {'ratio':>5}  {'IQR':>12}  "
        f"{'CPU ms R / bare':>15}  {'CPU ratio':>9}  {'IQR':>12}",
    ]
    for row in report["rows"]:
        lines.append(
            f"{row['threads']:>7}  {row['router_per_s']:>8.0f}  {row['bare_per_s']:>8.0f}  "
            f"{row['ratio']:>4.2f}x  [{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}]  "
            f"{row['router_cpu_ms']:>6.2f} / {row['bare_cpu_ms']:<6.2f}  "
            f"{row['cpu_ratio']:>8.2f}x  [{row['cpu_ratio_p25']:.2f}, {row['cpu_ratio_p75']:.2f}]"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return command(
        argv,
        prog="bench_threads.py",
        description="sync Router.charge under threads vs bare httpx, provider in another process",
        quick="smoke run: seconds, rough",
        run=run,
        table=format_table,
    )


if __name__ == "__main__":
    sys.exit(main())
