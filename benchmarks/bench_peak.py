"""Peak load on the async path: charges/s, client CPU and latency of ``AsyncRouter`` against
hand-written asyncio HTTP and bare httpx on both transports (issue #15).

The provider is :mod:`benchmarks.provider_process` (started by
:class:`benchmarks.bench_throughput.ProviderProcess`): a ``FakeBank`` behind the loopback
``FakeServer`` in a **separate process**, answering each charge after a delay drawn uniformly
from 20-50 ms. At each concurrency (1, 16 and 64) that many customers pay at once:
``concurrency`` coroutines take the next order of a fresh batch as they finish one. Every
variant builds each request with the same ``FakeProvider("loop").build_charge(...)`` and
differs only in how it is sent:

* ``raw``: the request written by hand as HTTP/1.1 over ``asyncio.open_connection``, the
  answer read by its ``Content-Length``, one kept-alive connection per customer in flight:
  the practical limit of asyncio on this machine;
* ``bare-httpcore``, ``bare-aiohttp``: ``await client.send(request)`` on
  ``payfallback.transports.recommended_async_client(transport=...)`` (100 connections, all
  kept alive: the pool is never the limit);
* ``router-aiohttp``: ``AsyncRouter([provider], journal=SQLiteJournal(tmp,
  durable=False))`` without ``client=``, so the Router builds the recommended client itself
  (aiohttp with ``payfallback[aiohttp]`` installed); ``router-httpcore``: the same Router on
  ``recommended_async_client(transport="httpcore")``. Journal in WAL, ``synchronous=NORMAL``;
  structlog events rendered as JSON at INFO into a null sink. A charge that does not end
  ``PAID`` stops the benchmark.

Extra rows at 64 only: ``router-aiohttp-full`` (``durable=True``: ``synchronous=FULL``),
``router-aiohttp-postgres`` (a ``postgresql://...?schema=pf_peak_<run>`` URL: the
AsyncRouter's async PostgreSQL journal in a schema of its own, dropped after) and
``router-aiohttp-uvloop`` (the recommended Router on a uvloop event loop) and
``floor-aiohttp`` (the floor under the recommended Router: ``bench_core.Floor``'s statements,
group-committed as the Router commits them, its events, and its requests sent on the client
it builds). A row that cannot run (no uvloop, no PostgreSQL) is reported as skipped, with
the reason.

All variants run in the same rounds, in an order that rotates from round to round; the
uvloop variant has its own loop, and the two loops take turns (only one runs at a time).
Before each batch, one untimed charge per customer reopens what a pool closed while the
other variants ran. Each batch is measured at steady load (:class:`_Window`): its first
``concurrency`` charges all start at once, from idle, and are not timed with the rest (their
p50 and p99 are reported apart, as ``from_idle_*``: a burst of that many customers arriving
together); nor are the next ``concurrency``, while the customers fall out of step; the next
charges are timed; the last ``concurrency`` keep the load up until the timed ones have
ended. Each row gives the median charges/s over rounds with its quartiles,
the client's CPU milliseconds per charge (``time.process_time``: every thread, a journal's
worker threads included), both over the timed window, the p50 and p99 of each timed
charge's own time (pooled over the rounds), and the medians of the per-round ratios
against ``raw`` and against ``bare-aiohttp`` with their interquartile ranges. The provider
process is asked for its CPU seconds around every batch (its ``stats`` command): its CPU
share of one core says whether it, rather than the client, was the limit. Each row also
gives the longest garbage collection of each process during its batches
(``provider_gc_max_ms``, ``client_gc_max_ms``): a pause in either holds up every charge in
flight.

The provider's p99 is computed, not measured: the 99th percentile of its configured
answer time, U(20 ms, 50 ms), is 49.7 ms. The report also gives the p99 the ``raw`` client
saw at concurrency 1 (answer time plus loopback and parsing), as a check.

Goals at 64 in flight, for ``router-aiohttp``: ≥ 0.65x ``raw``, ≥ 0.75x ``bare-aiohttp``,
p99 ≤ the provider's p99 + 15 ms.

Run ``python benchmarks/bench_peak.py [--quick] [--json out.json]``; :func:`run` returns the
figures as a dict and prints nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from benchmarks._events import event_logging
from benchmarks._output import store_json
from benchmarks.bench_core import (
    Floor,
    _Orders,
    _quartiles,
    _unexpected,
    bare_charge,
    grouped,
    paid_by,
)
from benchmarks.bench_throughput import (
    DELAY,
    ProviderProcess,
    _drive,
    _rotated,
    _version,
    ideal_per_s,
)
from benchmarks.provider_process import LongestPause
from payfallback import AsyncRouter, Instrument, Order
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeProvider
from payfallback.transports import (
    aiohttp_available,
    owned_async_client,
    recommended_async_client,
)

__all__ = [
    "CONCURRENCY",
    "EXTRA",
    "GOALS",
    "MAIN",
    "PROVIDER_P99_MS",
    "Goal",
    "PeakReport",
    "PeakRow",
    "format_table",
    "main",
    "run",
]

CONCURRENCY = (1, 16, 64)
#: Variants measured at every concurrency, in their first round's order.
MAIN = ("raw", "bare-httpcore", "bare-aiohttp", "router-aiohttp", "router-httpcore")
#: Variants measured at 64 only.
EXTRA = (
    "router-aiohttp-full",
    "router-aiohttp-postgres",
    "router-aiohttp-uvloop",
    "floor-aiohttp",
)
GOAL_AT = 64
#: The recommended Router, whose figures the goals are about.
RECOMMENDED = "router-aiohttp"
#: (name, the ratio or slack): at least this share of raw and of bare-aiohttp; p99 at most
#: this many ms over the provider's p99.
GOALS: tuple[tuple[str, float], ...] = (
    ("vs_raw", 0.65),
    ("vs_bare_aiohttp", 0.75),
    ("p99_over_provider_ms", 15.0),
)
#: The 99th percentile of the provider's answer time, uniform over DELAY, in ms.
PROVIDER_P99_MS = round((DELAY[0] + 0.99 * (DELAY[1] - DELAY[0])) * 1000, 2)
#: A provider process busier than this share of one core may be what limits a variant.
PROVIDER_BUSY = 0.85
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
#: The client's own collections, hooked into ``gc.callbacks`` while :func:`_measure` runs.
_CLIENT_GC = LongestPause()

_DESCRIBE = {
    "raw": "hand-written HTTP/1.1 over asyncio streams",
    "bare-httpcore": "bare AsyncClient.send, httpcore",
    "bare-aiohttp": "bare AsyncClient.send, payfallback's aiohttp transport",
    "router-aiohttp": "AsyncRouter, recommended client (aiohttp), SQLite WAL NORMAL",
    "router-httpcore": "AsyncRouter on httpcore, SQLite WAL NORMAL",
    "router-aiohttp-full": "AsyncRouter, aiohttp, SQLite WAL FULL",
    "router-aiohttp-postgres": "AsyncRouter, aiohttp, PostgreSQL journal",
    "router-aiohttp-uvloop": "AsyncRouter, aiohttp, SQLite WAL NORMAL, uvloop event loop",
    "floor-aiohttp": "the floor under the AsyncRouter: its statements, group-committed, "
    "and its events, by hand, on the client it builds",
}


class PeakRow(TypedDict):
    variant: str
    concurrency: int
    what: str
    #: Charges timed over all rounds (every one answered 200, every Router charge PAID).
    charges: int
    #: Median charges per second over rounds, and the quartiles.
    per_s: float
    per_s_p25: float
    per_s_p75: float
    #: Client CPU milliseconds per charge, median over rounds.
    cpu_ms: float
    #: Client CPU seconds per wall second (1.0 = one core busy), median over rounds.
    client_cores: float
    #: Each timed charge's own time (at steady load), pooled over rounds, ms.
    p50_ms: float
    p99_ms: float
    #: The same for each batch's first ``concurrency`` charges, which all started at once
    #: from idle (a burst: not part of the timed charges), pooled over rounds, ms.
    from_idle_p50_ms: float
    from_idle_p99_ms: float
    #: Medians of per-round ratios of charges/s, with quartiles.
    vs_raw: float
    vs_raw_p25: float
    vs_raw_p75: float
    vs_bare_aiohttp: float
    vs_bare_aiohttp_p25: float
    vs_bare_aiohttp_p75: float
    #: Against router-aiohttp (the recommended Router) in the same round: what uvloop,
    #: FULL or PostgreSQL change.
    vs_recommended: float
    vs_recommended_p25: float
    vs_recommended_p75: float
    #: Provider process CPU seconds per wall second during the batches, median and max.
    provider_cores: float
    provider_cores_max: float
    #: The provider process's longest garbage collection during any of the batches, ms:
    #: a pause there answers every request in flight late (provider_process.py).
    provider_gc_max_ms: float
    #: The client process's longest garbage collection during any of the batches, ms:
    #: every charge on the loop waits for it.
    client_gc_max_ms: float
    #: Connections the provider accepted per 1000 charges (median over rounds).
    conns_per_1000: float


class Goal(TypedDict):
    name: str
    variant: str
    concurrency: int
    measured: float
    #: ``>=`` for ratios, ``<=`` for the p99.
    op: str
    limit: float
    met: bool
    text: str


class PeakReport(TypedDict):
    meta: dict[str, Any]
    rows: list[PeakRow]
    goals: list[Goal]
    #: Variants that could not run, and why.
    skipped: dict[str, str]


@dataclass(frozen=True)
class _Plan:
    rounds: int
    #: charges per round, by concurrency
    sizes: dict[int, int]


_FULL = _Plan(rounds=6, sizes={1: 30, 16: 480, 64: 1024})
_QUICK = _Plan(rounds=2, sizes={1: 3, 16: 32, 64: 64})

One = Callable[[Order], Awaitable[None]]


@dataclass
class _Variant:
    name: str
    loop: asyncio.AbstractEventLoop
    one: One
    #: Charges answered (timed, warm-up and all).
    done: int = 0
    #: Per-charge times of the timed batches, ns.
    latencies: list[int] = field(default_factory=list)
    #: Per-charge times of each batch's first charges, which started together from idle.
    from_idle: list[int] = field(default_factory=list)


@dataclass
class _Sample:
    per_s: float
    cpu_ms: float
    client_cores: float
    provider_cores: float
    provider_gc_ms: float
    client_gc_ms: float
    conns_per_1000: float


# -- the hand-written client -------------------------------------------------------------------


def _wire(request: httpx.Request) -> bytes:
    """``request`` as HTTP/1.1 bytes: request line, its headers as built, body."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n" + request.content


class _RawClient:
    """HTTP/1.1 over ``asyncio.open_connection``: a stack of kept-alive connections, at most
    one per request in flight; answers read by ``Content-Length``."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, request: httpx.Request) -> int:
        """Send ``request``; its status code."""
        data = _wire(request)
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        writer.write(data)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        length, keep = 0, True
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if length:
            await reader.readexactly(length)
        if keep:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return int(status_line.split(b" ", 2)[1])

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with suppress(OSError):
                await writer.wait_closed()


# -- variants ----------------------------------------------------------------------------------


class _Build:
    """Builds the variants on the loop that runs them; closes what it opened."""

    def __init__(self, base_url: str, workdir: str) -> None:
        self.provider = FakeProvider("loop", base_url=base_url)
        self.base_url = base_url
        self.workdir = workdir
        self.inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0015"))
        self.stack = AsyncExitStack()
        self.journals: list[SQLiteJournal] = []

    def journal(self, name: str, *, durable: bool) -> SQLiteJournal:
        journal = SQLiteJournal(os.path.join(self.workdir, f"{name}.sqlite3"), durable=durable)
        self.journals.append(journal)
        return journal

    async def raw(self) -> One:
        client = _RawClient(self.base_url)
        self.stack.push_async_callback(client.aclose)

        async def one(order: Order) -> None:
            if await client.send(bare_charge(self.provider, order, self.inst)) != 200:
                raise _unexpected("the raw charge was not answered 200")

        return one

    async def bare(self, transport: str) -> One:
        client = recommended_async_client(limits=_LIMITS, transport=transport)
        await self.stack.enter_async_context(client)

        async def one(order: Order) -> None:
            if (await client.send(bare_charge(self.provider, order, self.inst))).status_code != 200:
                raise _unexpected("the bare charge was not answered 200")

        return one

    async def router(
        self,
        journal: SQLiteJournal | str,
        client: httpx.AsyncClient | None = None,
    ) -> One:
        # Without client=, the AsyncRouter builds the recommended client and closes it.
        router = AsyncRouter([self.provider], client=client, journal=journal)
        if client is not None:
            await self.stack.enter_async_context(client)
        self.stack.push_async_callback(router.aclose)
        return paid_by(router, self.inst)

    async def floor(self) -> One:
        """The floor under the recommended Router (``bench_core.Floor``): its statements,
        group-committed as it commits them (every charge's writes from this turn of the
        loop until ``BATCH_TURNS`` turns later in one transaction), its events, and its
        requests sent as it sends them, on the client it builds; nothing else."""
        floor = Floor(self.provider, self.inst, self.journal("floor", durable=False))
        client, direct = owned_async_client()
        await self.stack.enter_async_context(client)
        return grouped(floor, direct or client.send)

    async def main(self, pg_journal: str | None) -> dict[str, One]:
        made = {
            "raw": await self.raw(),
            "bare-httpcore": await self.bare("httpcore"),
            "bare-aiohttp": await self.bare("aiohttp"),
            "router-aiohttp": await self.router(self.journal("normal", durable=False)),
            "router-httpcore": await self.router(
                self.journal("httpcore", durable=False),
                recommended_async_client(transport="httpcore"),
            ),
            "router-aiohttp-full": await self.router(self.journal("full", durable=True)),
        }
        if pg_journal is not None:
            made["router-aiohttp-postgres"] = await self.router(pg_journal)
        if aiohttp_available():
            made["floor-aiohttp"] = await self.floor()
        return made

    async def aclose(self) -> None:
        try:
            await self.stack.aclose()
        finally:
            for journal in self.journals:
                journal.close()


# -- measuring ---------------------------------------------------------------------------------


def _counted(variant: _Variant) -> One:
    """``variant``'s charge, counted but not timed (first charges, warm-ups); the timed
    charges are a :class:`_Window`'s."""
    one = variant.one

    async def counted(order: Order) -> None:
        await one(order)
        variant.done += 1

    return counted


class _Window:
    """One batch at steady load, as ``one`` for :func:`_drive`.

    The batch's ``concurrency`` customers take ``2 * concurrency + n + concurrency`` orders
    in turn. The first ``concurrency`` all start at once, from idle: their times are kept
    apart (``from_idle``). They also end close together (within the provider's 20-50 ms),
    and so do the charges that follow them: the next ``concurrency`` are not timed either,
    while the customers' charges fall out of step. The next ``n`` are the timed charges.
    The last ``concurrency`` keep that many in flight until the timed ones have ended. The
    window runs from the start of the first timed charge to the start of the first of the
    last ones: in a closed loop every start in it follows the end of a charge, so ``n``
    charges ended in it, and charges/s and CPU per charge are the window's.
    """

    def __init__(self, variant: _Variant, concurrency: int, n: int) -> None:
        self.variant, self.concurrency, self.n = variant, concurrency, n
        #: Where the timed charges start and end, by the order in which charges start.
        self.first, self.last = 2 * concurrency, 2 * concurrency + n
        self.started = 0
        #: (wall ns, CPU ns) at the window's start and at its end.
        self.marks: list[tuple[int, int]] = []

    def orders(self, orders: _Orders) -> list[Order]:
        c = self.concurrency
        return [
            *orders.take(c, "idle"),
            *orders.take(c, "ramp"),
            *orders.take(self.n, "pay"),
            *orders.take(c, "tail"),
        ]

    async def __call__(self, order: Order) -> None:
        index, self.started = self.started, self.started + 1
        if index in (self.first, self.last):
            self.marks.append((time.perf_counter_ns(), time.process_time_ns()))
        t0 = time.perf_counter_ns()
        await self.variant.one(order)
        took = time.perf_counter_ns() - t0
        self.variant.done += 1
        if index < self.concurrency:
            self.variant.from_idle.append(took)
        elif self.first <= index < self.last:
            self.variant.latencies.append(took)

    def wall_cpu(self) -> tuple[int, int]:
        """The window's wall and CPU nanoseconds."""
        (w0, c0), (w1, c1) = self.marks
        return w1 - w0, c1 - c0


async def _sample(
    server: ProviderProcess, orders: _Orders, n: int, concurrency: int, variant: _Variant
) -> _Sample:
    # One untimed charge per customer first: what a pool closed while the other variants
    # ran is opened again outside the timed batch.
    await _drive(orders.take(concurrency, "warm"), concurrency, _counted(variant))
    window = _Window(variant, concurrency, n)
    todo = window.orders(orders)
    gc.collect()
    _CLIENT_GC.take()  # not the collection just forced
    before = server.stats()
    drive_wall, _ = await _drive(todo, concurrency, window)
    client_gc_s = _CLIENT_GC.take()
    after = server.stats()
    wall, cpu = window.wall_cpu()
    return _Sample(
        per_s=n / (wall / 1e9),
        cpu_ms=cpu / 1e6 / n,
        client_cores=cpu / wall,
        provider_cores=(after["cpu_s"] - before["cpu_s"]) / (drive_wall / 1e9),
        provider_gc_ms=after["gc_max_ms"],
        client_gc_ms=client_gc_s * 1000,
        conns_per_1000=(after["connections"] - before["connections"]) * 1000 / len(todo),
    )


def _pct(xs: Sequence[int], q: int) -> float:
    """The q-th percentile of ``xs`` (ns) in ms."""
    if len(xs) < 2:
        return xs[0] / 1e6
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] / 1e6


def _row(
    name: str,
    concurrency: int,
    samples: list[_Sample],
    latencies: list[int],
    from_idle: list[int],
    raw: list[_Sample],
    bare: list[_Sample],
    recommended: list[_Sample],
) -> PeakRow:
    pq = _quartiles([s.per_s for s in samples])
    rq = _quartiles([a.per_s / b.per_s for a, b in zip(samples, raw, strict=True)])
    bq = _quartiles([a.per_s / b.per_s for a, b in zip(samples, bare, strict=True)])
    eq = _quartiles([a.per_s / b.per_s for a, b in zip(samples, recommended, strict=True)])
    return PeakRow(
        variant=name,
        concurrency=concurrency,
        what=_DESCRIBE[name],
        charges=len(latencies),
        per_s=pq[1],
        per_s_p25=pq[0],
        per_s_p75=pq[2],
        cpu_ms=_quartiles([s.cpu_ms for s in samples])[1],
        client_cores=_quartiles([s.client_cores for s in samples])[1],
        p50_ms=_pct(latencies, 50),
        p99_ms=_pct(latencies, 99),
        from_idle_p50_ms=_pct(from_idle, 50),
        from_idle_p99_ms=_pct(from_idle, 99),
        vs_raw=rq[1],
        vs_raw_p25=rq[0],
        vs_raw_p75=rq[2],
        vs_bare_aiohttp=bq[1],
        vs_bare_aiohttp_p25=bq[0],
        vs_bare_aiohttp_p75=bq[2],
        vs_recommended=eq[1],
        vs_recommended_p25=eq[0],
        vs_recommended_p75=eq[2],
        provider_cores=_quartiles([s.provider_cores for s in samples])[1],
        provider_cores_max=max(s.provider_cores for s in samples),
        provider_gc_max_ms=max(s.provider_gc_ms for s in samples),
        client_gc_max_ms=round(max(s.client_gc_ms for s in samples), 3),
        conns_per_1000=_quartiles([s.conns_per_1000 for s in samples])[1],
    )


def _goals(rows: list[PeakRow]) -> list[Goal]:
    row = next(r for r in rows if r["variant"] == RECOMMENDED and r["concurrency"] == GOAL_AT)
    goals: list[Goal] = []
    for name, value in GOALS:
        if name == "p99_over_provider_ms":
            limit = round(PROVIDER_P99_MS + value, 2)
            measured, op = row["p99_ms"], "<="
            text = (
                f"{RECOMMENDED} p99 at {GOAL_AT} <= provider p99 ({PROVIDER_P99_MS:g} ms) "
                f"+ {value:g} ms"
            )
            met = measured <= limit
        else:
            limit, op = value, ">="
            measured = row["vs_raw"] if name == "vs_raw" else row["vs_bare_aiohttp"]
            against = "raw" if name == "vs_raw" else "bare-aiohttp"
            text = f"{RECOMMENDED} charges/s at {GOAL_AT} >= {value:g}x {against}"
            met = measured >= limit
        goals.append(
            Goal(
                name=name,
                variant=RECOMMENDED,
                concurrency=GOAL_AT,
                measured=measured,
                op=op,
                limit=limit,
                met=met,
                text=text,
            )
        )
    return goals


# -- PostgreSQL and uvloop ---------------------------------------------------------------------


def _postgres(url: str | None) -> tuple[str | None, str | None, str]:
    """(server URL, journal URL with a new schema, why not) for the PostgreSQL row."""
    try:
        import psycopg  # noqa: PLC0415 (optional: the row is skipped without it)

        from benchmarks.bench_scale import DEFAULT_POSTGRES_URL, _journal_url  # noqa: PLC0415
    except ImportError as exc:
        return None, None, f"psycopg is not installed ({exc})"
    server = url or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return None, None, f"PostgreSQL at {_where(server)} cannot be reached ({exc})"
    schema = f"pf_peak_{uuid.uuid4().hex[:10]}"
    return server, _journal_url(server, schema), schema


def _drop_schema(server: str, schema: str) -> None:
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def _uvloop() -> tuple[asyncio.AbstractEventLoop | None, str]:
    try:
        import uvloop  # noqa: PLC0415 (optional: the row is skipped without it)
    except ImportError as exc:
        return None, f"uvloop is not installed ({exc}); pip install uvloop"
    return uvloop.new_event_loop(), str(getattr(uvloop, "__version__", "unknown"))


# -- entry points ------------------------------------------------------------------------------


def _measure(
    server: ProviderProcess,
    plan: _Plan,
    workdir: str,
    postgres: str | None,
    skipped: dict[str, str],
) -> tuple[list[PeakRow], dict[str, Any]]:
    orders = _Orders()
    main_loop = asyncio.new_event_loop()
    uv_loop, uv_note = _uvloop()
    pg_server = pg_url = None
    pg_note = ""
    if postgres == "":
        skipped["router-aiohttp-postgres"] = "PostgreSQL left out (--no-services, or postgres='')"
    else:
        pg_server, pg_url, pg_note = _postgres(postgres)
        if pg_url is None:
            skipped["router-aiohttp-postgres"] = pg_note
    if uv_loop is None:
        skipped["router-aiohttp-uvloop"] = uv_note
    if not aiohttp_available():
        skipped["floor-aiohttp"] = "the aiohttp extra is not installed"
    builds: list[tuple[asyncio.AbstractEventLoop, _Build]] = []
    variants: dict[str, _Variant] = {}
    gc.callbacks.append(_CLIENT_GC)
    try:
        build = _Build(server.base_url, workdir)
        builds.append((main_loop, build))
        for name, one in main_loop.run_until_complete(build.main(pg_url)).items():
            variants[name] = _Variant(name, main_loop, one)
        if uv_loop is not None:
            uv_build = _Build(server.base_url, workdir)
            builds.append((uv_loop, uv_build))
            one = uv_loop.run_until_complete(uv_build.router(uv_build.journal("uv", durable=False)))
            variants["router-aiohttp-uvloop"] = _Variant("router-aiohttp-uvloop", uv_loop, one)
        # One charge each, alone, first: what a variant opens on first use (its pool, the
        # PostgreSQL journal's connection pool) is opened once, not by 64 charges at once.
        for v in variants.values():
            v.loop.run_until_complete(_drive(orders.take(1, "first"), 1, _counted(v)))
        rows: list[PeakRow] = []
        for concurrency in CONCURRENCY:
            names = [*MAIN, *(e for e in EXTRA if e in variants and concurrency == GOAL_AT)]
            for name in names:  # warm-up at this concurrency: connections, caches
                v = variants[name]
                v.loop.run_until_complete(
                    _drive(orders.take(concurrency * 2, "w"), concurrency, _counted(v))
                )
            got: dict[str, list[_Sample]] = {name: [] for name in names}
            n = plan.sizes[concurrency]
            for r in range(plan.rounds):
                for name in _rotated(names, r):
                    v = variants[name]
                    got[name].append(
                        v.loop.run_until_complete(_sample(server, orders, n, concurrency, v))
                    )
            for name in names:
                rows.append(
                    _row(
                        name,
                        concurrency,
                        got[name],
                        variants[name].latencies,
                        variants[name].from_idle,
                        got["raw"],
                        got["bare-aiohttp"],
                        got[RECOMMENDED],
                    )
                )
                variants[name].latencies = []
                variants[name].from_idle = []
    finally:
        gc.callbacks.remove(_CLIENT_GC)
        for loop, b in builds:
            loop.run_until_complete(b.aclose())
            loop.run_until_complete(loop.shutdown_default_executor())
        for loop in {main_loop, *([uv_loop] if uv_loop else [])}:
            loop.close()
        if pg_server is not None and pg_url is not None:
            _drop_schema(pg_server, pg_note)
    meta = {
        "charges_by_variant": {name: v.done for name, v in variants.items()},
        "uvloop": uv_note if uv_loop is not None else None,
        "postgres": _where(pg_server) if pg_server else None,
    }
    return rows, meta


def run(quick: bool = False, *, postgres: str | None = None) -> PeakReport:
    """Measure every variant at 1, 16 and 64 in flight (the extra rows at 64).

    ``postgres``: the server for the PostgreSQL row (default: ``bench_scale``'s, from
    ``$PAYFALLBACK_BENCH_POSTGRES`` / ``$PAYFALLBACK_TEST_POSTGRES``); ``""`` skips it.
    """
    plan = _QUICK if quick else _FULL
    workdir = tempfile.mkdtemp(prefix="payfallback-peak-")
    started = time.perf_counter()
    loadavg = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    skipped: dict[str, str] = {}
    try:
        with event_logging(), ProviderProcess() as server:
            rows, meta = _measure(server, plan, workdir, postgres, skipped)
            stats = server.stats()
            pid = server.pid
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    raw1 = next(r for r in rows if r["variant"] == "raw" and r["concurrency"] == 1)
    busy = [r for r in rows if r["provider_cores_max"] >= PROVIDER_BUSY]
    meta.update(
        quick=quick,
        rounds=plan.rounds,
        charges_per_round={str(k): v for k, v in plan.sizes.items()},
        cpus=os.cpu_count(),
        loadavg=loadavg,
        loadavg_end=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        seconds=round(time.perf_counter() - started, 1),
        python=sys.version.split()[0],
        httpx=httpx.__version__,
        httpcore=_version("httpcore"),
        aiohttp=_version("aiohttp"),
        httpx_aiohttp=_version("httpx-aiohttp"),
        aiohttp_extra=aiohttp_available(),
        server=(
            "benchmarks.provider_process: FakeServer in a separate process, answering "
            f"after {DELAY[0] * 1000:g}-{DELAY[1] * 1000:g} ms (uniform)"
        ),
        provider_pid=pid,
        provider_requests=stats["requests"],
        provider_cpu_ms_per_request=(
            round(stats["cpu_s"] * 1000 / stats["requests"], 3) if stats["requests"] else None
        ),
        provider_p99_ms=PROVIDER_P99_MS,
        provider_p99_source=(
            f"computed: the 99th percentile of U({DELAY[0] * 1000:g}, {DELAY[1] * 1000:g}) ms, "
            "the provider's configured answer time"
        ),
        raw_p99_at_1_ms=raw1["p99_ms"],
        ideal_per_s={str(c): round(ideal_per_s(c), 1) for c in CONCURRENCY},
        provider_busy_share=PROVIDER_BUSY,
        provider_bottleneck=[f"{r['variant']} at {r['concurrency']}" for r in busy],
    )
    return PeakReport(meta=meta, rows=rows, goals=_goals(rows), skipped=skipped)


def format_table(report: PeakReport) -> str:
    meta = report["meta"]
    lines = [
        f"== peak load{' (quick: rough figures)' if meta['quick'] else ''}: provider in "
        f"another process answering in {DELAY[0] * 1000:g}-{DELAY[1] * 1000:g} ms, "
        f"{meta['rounds']} rounds, {meta['seconds']} s, {meta['cpus']} CPUs",
        f"{'variant':<24} {'in flight':>9} {'charges/s':>9} {'IQR':>13} {'CPU ms':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'idle p99':>8} {'vs raw':>6} {'IQR':>13} "
        f"{'vs bare-aio':>11} {'IQR':>13} {'provider CPU':>12}",
    ]
    for row in report["rows"]:
        lines.append(
            f"{row['variant']:<24} {row['concurrency']:>9} {row['per_s']:>9.0f} "
            f"[{row['per_s_p25']:>5.0f}, {row['per_s_p75']:>5.0f}] {row['cpu_ms']:>7.2f} "
            f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['from_idle_p99_ms']:>8.1f} "
            f"{row['vs_raw']:>5.2f}x "
            f"[{row['vs_raw_p25']:.2f}, {row['vs_raw_p75']:.2f}] "
            f"{row['vs_bare_aiohttp']:>10.2f}x "
            f"[{row['vs_bare_aiohttp_p25']:.2f}, {row['vs_bare_aiohttp_p75']:.2f}] "
            f"{row['provider_cores']:>11.0%}"
        )
    for name, why in report["skipped"].items():
        lines.append(f"{name:<24} skipped: {why}")
    lines.append("")
    for row in report["rows"]:
        if row["variant"] in EXTRA:
            lines.append(
                f"{row['variant']} vs {RECOMMENDED} at {row['concurrency']}, same rounds: "
                f"{row['vs_recommended']:.2f}x [{row['vs_recommended_p25']:.2f}, "
                f"{row['vs_recommended_p75']:.2f}]"
            )
    for goal in report["goals"]:
        unit = "x" if goal["op"] == ">=" else " ms"
        lines.append(
            f"goal: {goal['text']}: {goal['measured']:.2f}{unit} (limit {goal['limit']:g}{unit})"
            f" {'met' if goal['met'] else 'NOT met'}"
        )
    lines.append(
        f"provider p99 {meta['provider_p99_ms']:g} ms ({meta['provider_p99_source']}); raw "
        f"client's p99 at 1 in flight {meta['raw_p99_at_1_ms']:.1f} ms"
    )
    ms = meta.get("provider_cpu_ms_per_request")
    busy = meta["provider_bottleneck"]
    lines.append(
        f"provider process: {ms} ms CPU per request; "
        + (
            f"busy over {meta['provider_busy_share']:.0%} of a core during: {', '.join(busy)}"
            if busy
            else f"never over {meta['provider_busy_share']:.0%} of a core: not the limit"
        )
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_peak.py",
        description="AsyncRouter at peak load vs raw asyncio and bare httpx (both transports)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: under 30 s, rough")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--postgres-url", metavar="URL", help="PostgreSQL for the extra row ('' skips it)"
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick, postgres=args.postgres_url)
    print(format_table(report))
    return store_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
