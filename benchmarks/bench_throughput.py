"""Payments per second through ``AsyncRouter`` against a provider in another process, vs bare httpx.

The provider is :mod:`benchmarks.provider_process`: a ``FakeBank`` behind the loopback
``FakeServer``, started as a **separate process** (``subprocess``), answering each charge
after a delay drawn uniformly from 20-50 ms, as a payment provider's API does. It has its
own interpreter and GIL, so the client measured here competes with it only for the
machine's cores, not for its own process.

At each concurrency (1, 16 and 64) that many customers pay at once, each a new order, for
a batch of payments (``concurrency`` coroutines taking the next order as they finish one):

* **Router**: ``await AsyncRouter.charge(order, [instrument])``, journal
  ``SQLiteJournal(tmp, durable=False)`` (WAL, ``synchronous=NORMAL``), structlog events
  rendered as JSON at INFO into a null sink;
* **bare httpx**: ``await AsyncClient.send(provider.build_charge(...))``, the same charge
  request to the same server.

Both clients have the same settings: ``httpx.Limits(max_connections=16,
max_keepalive_connections=16)`` (see below) and a 10 s timeout. At 64 in flight, 48 payments
wait for a connection: bare httpx's in httpcore's pool, whose scans grow with them; the
Router's at its own gate in front of the pool (``payfallback.transports._gate``), so that
the pool holds no more of its requests than it has connections. The variants run in the same
rounds, alternating which goes first; the ratio is the median of the per-round ratios
(Router payments/s over bare payments/s) with its interquartile range. Each row also gives
the CPU seconds the client process spent per payment (``time.process_time``, every thread, a
journal's worker threads included), and the connections the provider accepted per 1000
payments. Before each timed batch, one untimed payment per customer opens again what expired
while the other variants ran (httpx closes a connection idle for 5 s), so a batch measures
steady traffic.

Goal, at concurrency 64: at least 0.95x bare, and stable, the ratio's IQR within ±10 % of
its median.

**Client settings** (encode/httpcore#1035): httpcore's pool walks its connections on every
request and on every release, and when ``max_keepalive_connections`` is below
``max_connections`` it counts *all* connections against the keep-alive limit, closing
idle ones that it should keep; the next request then opens a new connection. The settings
table measures bare httpx and the Router at concurrency 64 with httpx's default
``Limits()`` (100 connections, 20 kept alive), with the pool sized to the concurrency and
every connection kept (``64/64``), and with a small pool, every connection kept
(``16/16``), in the same rounds; each setting's ratio is against the default in the same
round.

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
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypedDict

import httpx
from pydantic import SecretStr

from benchmarks._events import event_logging
from benchmarks._output import store_json
from benchmarks.bench_core import _Orders, _quartiles, _unexpected, bare_charge, paid_by
from payfallback import AsyncRouter, Instrument, Order
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeProvider

__all__ = [
    "CONCURRENCY",
    "SETTINGS",
    "ProviderProcess",
    "SettingRow",
    "ThroughputReport",
    "ThroughputRow",
    "format_table",
    "main",
    "run",
]

CONCURRENCY = (1, 16, 64)
THROUGHPUT_GOAL = 0.95  # at concurrency 64
#: The ratio's IQR must lie within this share of its median, either side.
STABLE_WITHIN = 0.10
_GOAL_AT = 64
#: The provider's answer time, seconds, drawn uniformly.
DELAY = (0.020, 0.050)
_ROOT = Path(__file__).resolve().parent.parent

#: Client settings compared at concurrency 64: label -> (max_connections, keep-alive).
SETTINGS: dict[str, tuple[int, int]] = {
    "httpx default Limits() (100 / 20 kept alive)": (100, 20),
    "keep-alive = max, sized to concurrency (64 / 64)": (64, 64),
    "keep-alive = max, small pool (16 / 16)": (16, 16),
}
#: The setting of the main table (both clients): what benchmarks/README.md recommends.
MAIN_SETTING = "keep-alive = max, small pool (16 / 16)"
_DEFAULT_SETTING = "httpx default Limits() (100 / 20 kept alive)"


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
    #: Client CPU milliseconds per payment (median over rounds).
    router_cpu_ms: float
    bare_cpu_ms: float
    #: Connections the provider accepted per 1000 payments (median over rounds).
    router_conns_per_1000: float
    bare_conns_per_1000: float
    goal: float | None
    met: bool | None
    #: Whether the ratio's IQR lies within ±STABLE_WITHIN of its median.
    stable: bool


class SettingRow(TypedDict):
    setting: str
    max_connections: int
    max_keepalive_connections: int
    variant: str  # "bare" or "router"
    per_s: float
    per_s_p25: float
    per_s_p75: float
    cpu_ms: float
    conns_per_1000: float
    #: Median of per-round ratios against the default setting, same variant, same round.
    vs_default: float
    vs_default_p25: float
    vs_default_p75: float


class ThroughputReport(TypedDict):
    meta: dict[str, Any]
    rows: list[ThroughputRow]
    settings: list[SettingRow]


@dataclass(frozen=True)
class _Plan:
    rounds: int
    #: payments per round, by concurrency
    sizes: dict[int, int]
    settings_rounds: int
    settings_size: int


_FULL = _Plan(rounds=7, sizes={1: 40, 16: 480, 64: 640}, settings_rounds=4, settings_size=512)
_QUICK = _Plan(rounds=2, sizes={1: 4, 16: 32, 64: 64}, settings_rounds=1, settings_size=32)


class ProviderProcess:
    """:mod:`benchmarks.provider_process` as a child process; a context manager."""

    def __init__(self, delay: tuple[float, float] = DELAY, *, seed: int = 1) -> None:
        self.delay = delay
        self._argv = [
            sys.executable,
            "-m",
            "benchmarks.provider_process",
            "--min-delay",
            str(delay[0]),
            "--max-delay",
            str(delay[1]),
            "--seed",
            str(seed),
        ]
        self._child: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> ProviderProcess:
        child = subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=_ROOT,
        )
        self._child = child
        assert child.stdout is not None
        self.base_url = child.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the provider process did not start (it said {self.base_url!r})")
        return self

    def stats(self) -> dict[str, float]:
        """Connections accepted, requests answered and CPU seconds of the provider so far."""
        child = self._child
        assert child is not None
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write("stats\n")
        child.stdin.flush()
        doc: dict[str, float] = json.loads(child.stdout.readline())
        return doc

    @property
    def pid(self) -> int:
        assert self._child is not None
        return self._child.pid

    def __exit__(self, *_exc: object) -> None:
        child = self._child
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
        self._child = None


@dataclass
class _Sample:
    per_s: float
    cpu_ms: float
    conns_per_1000: float


One = Callable[[Order], Awaitable[None]]


async def _drive(orders: list[Order], concurrency: int, one: One) -> tuple[int, int]:
    """Serve ``orders`` with ``concurrency`` payments in flight; (wall ns, CPU ns)."""
    todo = iter(orders)

    async def customer() -> None:
        for order in todo:
            await one(order)

    cpu0 = time.process_time_ns()
    t0 = time.perf_counter_ns()
    await asyncio.gather(*(customer() for _ in range(concurrency)))
    return time.perf_counter_ns() - t0, time.process_time_ns() - cpu0


async def _sample(
    provider: ProviderProcess, orders: _Orders, n: int, concurrency: int, one: One
) -> _Sample:
    # One untimed payment per customer first: connections that expired while the other
    # variants ran (httpx keeps an idle one 5 s) are opened again outside the round.
    await _drive(orders.take(concurrency, "warm"), concurrency, one)
    todo = orders.take(n, "pay")
    before = provider.stats()
    gc.collect()
    wall, cpu = await _drive(todo, concurrency, one)
    opened = provider.stats()["connections"] - before["connections"]
    return _Sample(n / (wall / 1e9), cpu / 1e6 / n, opened * 1000 / n)


class _Variants:
    """A bare client and a Router (on its own client) with one client setting."""

    def __init__(
        self,
        provider: FakeProvider,
        journal: SQLiteJournal,
        stack: AsyncExitStack,
        limits: tuple[int, int],
    ) -> None:
        self.provider = provider
        self.journal = journal
        self.stack = stack
        self.limits = httpx.Limits(max_connections=limits[0], max_keepalive_connections=limits[1])
        self.inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0003"))

    async def build(self) -> dict[str, One]:
        timeout = httpx.Timeout(10.0)
        rclient = await self.stack.enter_async_context(
            httpx.AsyncClient(timeout=timeout, limits=self.limits)
        )
        bclient = await self.stack.enter_async_context(
            httpx.AsyncClient(timeout=timeout, limits=self.limits)
        )
        router = AsyncRouter([self.provider], client=rclient, journal=self.journal)
        provider, inst = self.provider, self.inst

        async def bare(order: Order) -> None:
            req = bare_charge(provider, order, inst)
            if (await bclient.send(req)).status_code != 200:
                raise _unexpected("the bare charge was not answered 200")

        return {"router": paid_by(router, inst), "bare": bare}


def _rotated(keys: Sequence[str], r: int) -> list[str]:
    k = r % len(keys)
    return [*keys[k:], *keys[:k]]


async def _main_rows(
    server: ProviderProcess, variants: dict[str, One], plan: _Plan, orders: _Orders
) -> list[ThroughputRow]:
    rows: list[ThroughputRow] = []
    for concurrency in CONCURRENCY:
        n = plan.sizes[concurrency]
        # Warm-up: connections opened, caches filled, at this concurrency.
        for key, fn in variants.items():
            await _drive(orders.take(concurrency * 2, "w" + key[0]), concurrency, fn)
        got: dict[str, list[_Sample]] = {"router": [], "bare": []}
        for r in range(plan.rounds):
            for key in _rotated(list(got), r):
                got[key].append(await _sample(server, orders, n, concurrency, variants[key]))
        rq = _quartiles([s.per_s for s in got["router"]])
        bq = _quartiles([s.per_s for s in got["bare"]])
        qq = _quartiles(
            [a.per_s / b.per_s for a, b in zip(got["router"], got["bare"], strict=True)]
        )
        goal = THROUGHPUT_GOAL if concurrency == _GOAL_AT else None
        stable = qq[0] >= qq[1] * (1 - STABLE_WITHIN) and qq[2] <= qq[1] * (1 + STABLE_WITHIN)
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
                router_cpu_ms=_quartiles([s.cpu_ms for s in got["router"]])[1],
                bare_cpu_ms=_quartiles([s.cpu_ms for s in got["bare"]])[1],
                router_conns_per_1000=_quartiles([s.conns_per_1000 for s in got["router"]])[1],
                bare_conns_per_1000=_quartiles([s.conns_per_1000 for s in got["bare"]])[1],
                goal=goal,
                met=None if goal is None else (qq[1] >= goal and stable),
                stable=stable,
            )
        )
    return rows


async def _settings_rows(
    server: ProviderProcess, by_setting: dict[str, dict[str, One]], plan: _Plan, orders: _Orders
) -> list[SettingRow]:
    concurrency = _GOAL_AT
    keys = [(s, v) for s in by_setting for v in ("bare", "router")]
    for setting, variant in keys:
        fn = by_setting[setting][variant]
        await _drive(orders.take(concurrency * 2, "ws"), concurrency, fn)
    got: dict[tuple[str, str], list[_Sample]] = {k: [] for k in keys}
    for r in range(plan.settings_rounds):
        for key in _rotated([f"{s}\0{v}" for s, v in keys], r):
            setting, variant = key.split("\0")
            fn = by_setting[setting][variant]
            got[setting, variant].append(
                await _sample(server, orders, plan.settings_size, concurrency, fn)
            )
    rows: list[SettingRow] = []
    for setting, variant in keys:
        samples = got[setting, variant]
        base = got[_DEFAULT_SETTING, variant]
        pq = _quartiles([s.per_s for s in samples])
        vq = _quartiles([a.per_s / b.per_s for a, b in zip(samples, base, strict=True)])
        most, kept = SETTINGS[setting]
        rows.append(
            SettingRow(
                setting=setting,
                max_connections=most,
                max_keepalive_connections=kept,
                variant=variant,
                per_s=pq[1],
                per_s_p25=pq[0],
                per_s_p75=pq[2],
                cpu_ms=_quartiles([s.cpu_ms for s in samples])[1],
                conns_per_1000=_quartiles([s.conns_per_1000 for s in samples])[1],
                vs_default=vq[1],
                vs_default_p25=vq[0],
                vs_default_p75=vq[2],
            )
        )
    return rows


async def _measure(
    workdir: str, plan: _Plan, settings: bool
) -> tuple[list[ThroughputRow], list[SettingRow], dict[str, Any]]:
    orders = _Orders()
    with ProviderProcess() as server:
        provider = FakeProvider("loop", base_url=server.base_url)
        path = os.path.join(workdir, "throughput.sqlite3")
        with SQLiteJournal(path, durable=False) as journal:
            async with AsyncExitStack() as stack:
                by_setting = {
                    name: await _Variants(provider, journal, stack, limits).build()
                    for name, limits in SETTINGS.items()
                    if settings or name == MAIN_SETTING
                }
                rows = await _main_rows(server, by_setting[MAIN_SETTING], plan, orders)
                setting_rows = (
                    await _settings_rows(server, by_setting, plan, orders) if settings else []
                )
        stats = server.stats()
        pid = server.pid
    meta = {
        "provider_pid": pid,
        "rounds": plan.rounds,
        "payments_per_round": {str(k): v for k, v in plan.sizes.items()},
        "settings_rounds": plan.settings_rounds if settings else 0,
        "settings_payments_per_round": plan.settings_size if settings else 0,
        "provider_requests": stats["requests"],
        "provider_cpu_ms_per_request": (
            round(stats["cpu_s"] * 1000 / stats["requests"], 3) if stats["requests"] else None
        ),
    }
    return rows, setting_rows, meta


def run(
    quick: bool = False, *, journal_dir: str | None = None, settings: bool = True
) -> ThroughputReport:
    """Measure every concurrency (and, with ``settings``, the client settings at 64)."""
    plan = _QUICK if quick else _FULL
    workdir = tempfile.mkdtemp(prefix="payfallback-throughput-", dir=journal_dir)
    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    try:
        with event_logging():
            rows, setting_rows, meta = loop.run_until_complete(_measure(workdir, plan, settings))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
        shutil.rmtree(workdir, ignore_errors=True)
    meta.update(
        quick=quick,
        cpus=os.cpu_count(),
        loadavg=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        httpx=httpx.__version__,
        httpcore=_version("httpcore"),
        seconds=round(time.perf_counter() - started, 1),
        server=(
            "benchmarks.provider_process: FakeServer in a separate process, answering "
            f"after {DELAY[0] * 1000:g}-{DELAY[1] * 1000:g} ms (uniform)"
        ),
        client_limits=MAIN_SETTING,
    )
    return ThroughputReport(meta=meta, rows=rows, settings=setting_rows)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def ideal_per_s(concurrency: int, delay: tuple[float, float] = DELAY) -> float:
    """Payments/s if the client cost nothing: ``concurrency`` over the mean answer time."""
    return concurrency / ((delay[0] + delay[1]) / 2)


def format_table(report: ThroughputReport) -> str:
    meta = report["meta"]
    lines = [
        f"== throughput{' (quick: rough figures)' if meta['quick'] else ''}: AsyncRouter.charge "
        f"vs bare AsyncClient.send, provider in another process answering in "
        f"{DELAY[0] * 1000:g}-{DELAY[1] * 1000:g} ms, {meta['seconds']} s",
        f"client Limits: {meta['client_limits']}; {meta['rounds']} rounds",
        f"{'concurrency':>11} {'ideal/s':>8} {'Router/s':>9} {'bare/s':>9} {'ratio':>6} "
        f"{'IQR':>13} {'CPU ms/payment R / bare':>24} {'conns/1000 R / bare':>20} "
        f"{'goal':>6} met",
    ]
    for row in report["rows"]:
        goal = met = ""
        if row["goal"] is not None:
            goal = f">={row['goal']:g}x"
            met = "yes" if row["met"] else ("NO (unstable)" if not row["stable"] else "NO")
        cpu = f"{row['router_cpu_ms']:.2f} / {row['bare_cpu_ms']:.2f}"
        conns = f"{row['router_conns_per_1000']:.0f} / {row['bare_conns_per_1000']:.0f}"
        lines.append(
            f"{row['concurrency']:>11} {ideal_per_s(row['concurrency']):>8.0f} "
            f"{row['router_per_s']:>9.0f} {row['bare_per_s']:>9.0f} "
            f"{row['ratio']:>5.2f}x [{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}] "
            f"{cpu:>24} {conns:>20} {goal:>6} {met}"
        )
    if report["settings"]:
        lines += [
            "",
            f"client settings at concurrency {_GOAL_AT} (encode/httpcore#1035), "
            f"{meta['settings_rounds']} rounds; ratio vs httpx's default Limits() in the "
            "same round",
            f"{'setting':<46} {'variant':<7} {'per s':>7} {'vs default':>10} {'IQR':>13} "
            f"{'CPU ms':>7} {'conns/1000':>10}",
        ]
        for s in report["settings"]:
            lines.append(
                f"{s['setting']:<46} {s['variant']:<7} {s['per_s']:>7.0f} "
                f"{s['vs_default']:>9.2f}x [{s['vs_default_p25']:.2f}, "
                f"{s['vs_default_p75']:.2f}] {s['cpu_ms']:>7.2f} {s['conns_per_1000']:>10.0f}"
            )
    provider_ms = meta.get("provider_cpu_ms_per_request")
    if provider_ms is not None:
        lines.append(f"provider process: {provider_ms:.2f} ms CPU per request")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_throughput.py",
        description="AsyncRouter.charge payments/s vs bare httpx, provider in another process",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a few seconds, rough")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--journal-dir", metavar="DIR", help="where the temporary journal lives")
    parser.add_argument(
        "--no-settings", action="store_true", help="skip the client settings comparison"
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick, journal_dir=args.journal_dir, settings=not args.no_settings)
    print(format_table(report))
    return store_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
