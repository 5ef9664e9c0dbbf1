"""What sharing state across processes costs: local state against Redis + PostgreSQL, in one run.

Two measurements, each against what a single-process shop runs today:

* **Throughput**: payments per second through ``Router.charge`` (a new order each call)
  from 1 and from 4 OS processes (``--processes``), with the state local to each process
  (``MemoryStateStore`` + a ``SQLiteJournal`` file of its own, ``durable=False``) and with
  the state shared (``RedisStateStore`` in one namespace + ``PostgresJournal`` in one
  schema); and at one process with the PostgreSQL journal and the memory store, which splits
  the shared variant's cost between the journal and Redis. Each process charges through its
  own in-memory ``mock_transport`` to a fake bank of its own, so the network to the provider
  is not what is measured: the state is. All the variants stay up side by side and are
  measured in the same rounds, in rotated order; in a round every process of the variant
  starts on one barrier, and the round's rate is all their payments over the time from the
  first start to the last finish (on the system-wide monotonic clock, comparable across
  processes).
* **Latency Redis adds per payment**: one process, two ``Router`` alike but for the
  state store (``MemoryStateStore`` against ``RedisStateStore``), charging one payment each
  in turn, so machine noise hits both alike. Their SQLite journals (``durable=False``) live
  on tmpfs where there is one: a WAL checkpoint's fsync on a disk stalls a payment for
  milliseconds, which would swamp the tail being compared. Reported, for wall-clock time
  and for the paying thread's CPU time (which other processes on a busy machine cannot
  inflate, but which would not show a wait on Redis either): p50 and p99 of each, their
  differences (the goal: at most 0.2 ms wall-clock at p99 on the happy path), the same
  differences per round (median and quartiles); and how many Redis commands the paying
  thread sent (by design none: admission reads a cached view and only the store's
  background refresher talks to Redis).

The Router's events are rendered as JSON at INFO into a null sink in every process, as a
production setup would pay for them. The Redis namespace and the PostgreSQL schema are made
for the run and removed after it, whatever happens.

Run ``python benchmarks/bench_scale.py [--quick] [--json out.json] [--redis-url URL]
[--postgres-url URL] [--processes N] [--journal-dir DIR]``. ``--quick`` is a smoke run
(rough figures); ``--journal-dir`` is where the throughput's SQLite files go (default: the
system temp dir). The PostgreSQL URL defaults to ``$PAYFALLBACK_BENCH_POSTGRES``, else
``$PAYFALLBACK_TEST_POSTGRES``, else ``postgresql://postgres@127.0.0.1:5432/test``.
:func:`run` returns the same figures as a dict and prints nothing.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, Literal, TypedDict
from urllib.parse import urlsplit

import httpx
import psycopg
import redis
from psycopg import sql
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from benchmarks._events import event_logging
from benchmarks._output import store_json
from payfallback import Instrument, Money, Order, PaymentStatus, Router
from payfallback.breaker import StateStore
from payfallback.breaker.redis import RedisStateStore
from payfallback.journal import Journal, SQLiteJournal
from payfallback.journal.postgres import PostgresJournal
from payfallback.testing import FakeBank, FakeProvider, mock_transport

__all__ = ["Latency", "Quantiles", "ScaleReport", "ThroughputRow", "format_table", "main", "run"]

#: The goal for what Redis may add to one payment at p99 on the happy path, in ns.
REDIS_P99_GOAL_NS = 200_000.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = os.environ.get(
    "PAYFALLBACK_BENCH_POSTGRES",
    os.environ.get("PAYFALLBACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
)

#: local: MemoryStateStore + SQLite; shared: Redis + PostgreSQL; journal: MemoryStateStore +
#: PostgreSQL (one process only), which tells the journal's share of the cost from Redis's.
State = Literal["local", "journal", "shared"]
_LABEL: dict[State, str] = {
    "local": "memory + SQLite",
    "journal": "memory + PostgreSQL",
    "shared": "Redis + PostgreSQL",
}
_CURRENCY = "KRW"


class ThroughputRow(TypedDict):
    """Payments per second for one variant, over rounds."""

    name: str
    state: State
    processes: int
    #: Median over rounds, its quartiles and the best round.
    per_second: float
    p25: float
    p75: float
    best: float
    #: The row this one is compared with, and the median of the per-round ratios to it
    #: (this / that) with their quartiles (``None`` for a baseline).
    baseline: str | None
    ratio: float | None
    ratio_p25: float | None
    ratio_p75: float | None
    #: ``storage.degraded`` events the processes heard (a slow or lost Redis), all rounds.
    degraded: int


class Quantiles(TypedDict):
    """p50 and p99 of one store's payments, and of Redis minus memory; times in ns."""

    memory_p50: float
    memory_p99: float
    redis_p50: float
    redis_p99: float
    #: Redis minus memory, over all payments.
    added_p50: float
    added_p99: float
    #: The same differences taken round by round: median over rounds and quartiles. An
    #: interquartile range wider than the goal means the machine was too busy to tell.
    added_p50_rounds: tuple[float, float, float]
    added_p99_rounds: tuple[float, float, float]


class Latency(TypedDict):
    """Per-payment latency, memory store against Redis store."""

    payments_each: int
    #: Wall-clock time per payment: what a customer waits.
    wall: Quantiles
    #: CPU time of the paying thread per payment: blind to waiting (a Redis round trip would
    #: not show), but also to the other processes of a busy machine, which the wall-clock
    #: tail cannot escape.
    cpu: Quantiles
    #: Redis commands the paying thread sent, per payment (admission reads a cached view).
    redis_commands_per_payment: float
    #: Commands the store's refresher thread sent while the payments were measured.
    refresher_commands: int
    goal_p99: float
    #: Whether the wall-clock ``added_p99`` is within the goal.
    met: bool
    degraded: int


class ScaleReport(TypedDict):
    meta: dict[str, Any]
    throughput: list[ThroughputRow]
    latency: Latency


@dataclass(frozen=True)
class _Plan:
    #: Unmeasured rounds first (connection pools, caches, the first sight of the breaker).
    warmup_rounds: int
    rounds: int
    #: Payments per process per round.
    batch: int
    latency_warmup: int
    latency_rounds: int
    latency_pairs: int


_FULL = _Plan(
    warmup_rounds=1,
    rounds=9,
    batch=200,
    latency_warmup=200,
    latency_rounds=15,
    latency_pairs=400,
)
_QUICK = _Plan(
    warmup_rounds=1,
    rounds=3,
    batch=40,
    latency_warmup=30,
    latency_rounds=3,
    latency_pairs=100,
)


class BenchmarkError(RuntimeError):
    """A payment did not take the happy path, or a worker failed: the figures would lie."""


# -- shared pieces -----------------------------------------------------------------------------


def _orders(prefix: str, n: int) -> list[Order]:
    amount = Money(amount=15_000, currency=_CURRENCY)
    return [Order(order_id=f"{prefix}-{i}", amount=amount, name="bench") for i in range(n)]


def _charge(router: Router, order: Order, instruments: Sequence[Instrument]) -> None:
    if router.charge(order, instruments).status is not PaymentStatus.PAID:
        raise BenchmarkError(f"order {order.order_id} was not paid: the happy path only")


def _journal_url(postgres_url: str, schema: str) -> str:
    return f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"


def _where(url: str) -> str:
    """Host and port of a URL, for the report (never its user or password)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def _percentile(xs: Sequence[float], p: int) -> float:
    """The ``p``-th percentile (1..99), interpolated between the samples around it."""
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1]


# -- throughput: worker processes --------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """What one worker process needs to build its Router (picklable, for ``spawn``)."""

    state: State
    index: int
    processes: int
    workdir: str
    redis_url: str
    namespace: str
    journal_url: str
    run_id: str


def _build(setup: _Setup, stack: ExitStack, heard: list[str]) -> Router:
    # Each worker's bank stands for the same provider: its transaction ids must not
    # repeat another worker's in the journal they share.
    bank = FakeBank("fake", txn_prefix=f"{setup.state}-{setup.processes}p{setup.index}")
    client = stack.enter_context(httpx.Client(transport=mock_transport(bank)))
    store: StateStore | None = None  # None: the Router's own MemoryStateStore
    journal: Journal
    if setup.state == "local":
        path = os.path.join(setup.workdir, f"local-{setup.processes}p-{setup.index}.sqlite3")
        journal = stack.enter_context(SQLiteJournal(path, durable=False))
    else:
        journal = stack.enter_context(PostgresJournal.from_url(setup.journal_url))
    if setup.state == "shared":
        redis_store = RedisStateStore.from_url(
            setup.redis_url,
            namespace=setup.namespace,
            on_event=lambda name, fields: heard.append(name),
        )
        stack.callback(redis_store.shutdown)
        store = redis_store
    return Router([FakeProvider("fake")], client=client, journal=journal, state_store=store)


def _worker(setup: _Setup, commands: Any, results: Any, start: Any) -> None:
    """One payment process: wait for a round, charge its batch of new orders, report."""
    try:
        heard: list[str] = []
        insts = [Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))]
        with event_logging(), ExitStack() as stack:
            router = _build(setup, stack, heard)
            results.put(("ready", setup.index, None))
            while (command := commands.get()) is not None:
                tag, n = command
                todo = _orders(f"{setup.run_id}-{tag}-w{setup.index}", n)
                gc.collect()
                start.wait(timeout=120)
                t0 = time.monotonic_ns()
                for order in todo:
                    _charge(router, order, insts)
                t1 = time.monotonic_ns()
                degraded = heard.count("storage.degraded")
                results.put(("done", setup.index, (t0, t1, degraded)))
    except BaseException:
        results.put(("error", setup.index, traceback.format_exc()))


class _Pool:
    """``processes`` workers of one variant, kept up between rounds."""

    def __init__(self, context: SpawnContext, state: State, processes: int, **setup: Any) -> None:
        self.state, self.processes = state, processes
        self.name = f"{_LABEL[state]}, {processes} process{'es' if processes > 1 else ''}"
        self._results = context.Queue()
        self._commands = [context.Queue() for _ in range(processes)]
        start = context.Barrier(processes)
        self._procs: list[SpawnProcess] = [
            context.Process(
                target=_worker,
                args=(
                    _Setup(state=state, index=i, processes=processes, **setup),
                    self._commands[i],
                    self._results,
                    start,
                ),
                daemon=True,
            )
            for i in range(processes)
        ]
        self.degraded = 0
        try:
            for proc in self._procs:
                proc.start()
            self._collect("ready")
        except BaseException:
            self.close()
            raise

    def _collect(self, kind: str) -> list[Any]:
        got: list[Any] = []
        while len(got) < self.processes:
            try:
                what, index, value = self._results.get(timeout=180)
            except queue.Empty:
                raise BenchmarkError(f"{self.name}: a worker did not answer") from None
            if what == "error":
                raise BenchmarkError(f"{self.name}, worker {index} failed:\n{value}")
            if what != kind:
                raise BenchmarkError(f"{self.name}: expected {kind!r}, got {what!r}")
            got.append(value)
        return got

    def round(self, tag: str, batch: int) -> float:
        """Payments per second of one round: every worker charges ``batch`` new orders."""
        for commands in self._commands:
            commands.put((tag, batch))
        done = self._collect("done")
        first = min(t0 for t0, _, _ in done)
        last = max(t1 for _, t1, _ in done)
        # Counts are cumulative per worker: keep the latest total.
        self.degraded = sum(d for _, _, d in done)
        return float(self.processes * batch / ((last - first) / 1e9))

    def close(self) -> None:
        for commands in self._commands:
            commands.put(None)
        for proc in self._procs:
            if proc.pid is None:  # never started
                continue
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)


def bench_throughput(
    plan: _Plan,
    processes: int,
    *,
    workdir: str,
    redis_url: str,
    journal_url: str,
    namespace: str,
    run_id: str,
) -> list[ThroughputRow]:
    """Payments/s for local and shared state at 1 and ``processes`` processes, and for the
    PostgreSQL journal alone (memory store) at 1 process, to tell its cost from Redis's."""
    context = multiprocessing.get_context("spawn")
    setup = {
        "workdir": workdir,
        "redis_url": redis_url,
        "namespace": namespace,
        "journal_url": journal_url,
        "run_id": run_id,
    }
    variants: list[tuple[State, int]] = [
        ("local", 1),
        ("journal", 1),
        ("shared", 1),
        ("local", processes),
        ("shared", processes),
    ]
    with ExitStack() as stack:
        pools: dict[tuple[State, int], _Pool] = {}
        for state, n in variants:
            pool = _Pool(context, state, n, **setup)
            stack.callback(pool.close)
            pools[(state, n)] = pool
        for w in range(plan.warmup_rounds):
            for key, pool in pools.items():
                pool.round(f"w{w}{key[0][0]}{key[1]}", plan.batch)
        rates: dict[tuple[State, int], list[float]] = {key: [] for key in pools}
        keys = list(pools)
        for r in range(plan.rounds):
            k = r % len(keys)
            for key in keys[k:] + keys[:k]:
                rates[key].append(pools[key].round(f"r{r}{key[0][0]}{key[1]}", plan.batch))

    def row(key: tuple[State, int], base: tuple[State, int] | None) -> ThroughputRow:
        xs = rates[key]
        p25, med, p75 = _quartiles(xs)
        ratios = None if base is None else [a / b for a, b in zip(xs, rates[base], strict=True)]
        r25 = rmed = r75 = None
        if ratios is not None:
            r25, rmed, r75 = _quartiles(ratios)
        return ThroughputRow(
            name=pools[key].name,
            state=key[0],
            processes=key[1],
            per_second=med,
            p25=p25,
            p75=p75,
            best=max(xs),
            baseline=None if base is None else pools[base].name,
            ratio=rmed,
            ratio_p25=r25,
            ratio_p75=r75,
            degraded=pools[key].degraded,
        )

    def also(key: tuple[State, int], base: tuple[State, int], note: str) -> ThroughputRow:
        again = row(key, base)
        again["name"] += f" ({note})"
        return again

    n = processes
    return [
        row(("local", 1), None),
        row(("journal", 1), ("local", 1)),
        row(("shared", 1), ("local", 1)),
        also(("shared", 1), ("journal", 1), "Redis's share"),
        row(("local", n), ("local", 1)),
        row(("shared", n), ("local", n)),
        also(("shared", n), ("shared", 1), "scaling"),
    ]


# -- latency Redis adds ------------------------------------------------------------------------


class _CountingRedis(redis.Redis):
    """A client that counts the commands it sends, from the paying thread and from others."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.payer = threading.get_ident()
        self.from_payer = 0
        self.from_others = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if threading.get_ident() == self.payer:
            self.from_payer += 1
        else:
            self.from_others += 1
        # redis-py leaves execute_command unannotated.
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def _quantiles(memory: list[list[float]], redis_: list[list[float]]) -> Quantiles:
    """Quantiles of per-round samples (one list per round) of each store."""
    mem = list(itertools.chain.from_iterable(memory))
    red = list(itertools.chain.from_iterable(redis_))
    rounds = list(zip(memory, redis_, strict=True))
    return Quantiles(
        memory_p50=statistics.median(mem),
        memory_p99=_percentile(mem, 99),
        redis_p50=statistics.median(red),
        redis_p99=_percentile(red, 99),
        added_p50=statistics.median(red) - statistics.median(mem),
        added_p99=_percentile(red, 99) - _percentile(mem, 99),
        added_p50_rounds=_quartiles(
            [statistics.median(b) - statistics.median(a) for a, b in rounds]
        ),
        added_p99_rounds=_quartiles([_percentile(b, 99) - _percentile(a, 99) for a, b in rounds]),
    )


def bench_latency(plan: _Plan, *, workdir: str, redis_url: str, namespace: str) -> Latency:
    """One payment at a time, in turn through a Router on memory and one on Redis."""
    insts = [Instrument(provider="fake", billing_key=SecretStr("bk-bench-0001"))]
    heard: list[str] = []
    # The client RedisStateStore.from_url builds (short timeouts, no retries), counting.
    connections = redis.ConnectionPool.from_url(
        redis_url, socket_timeout=0.05, socket_connect_timeout=0.05, retry=Retry(NoBackoff(), 0)
    )
    client = _CountingRedis(connection_pool=connections)
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        stack.callback(connections.disconnect)
        stack.callback(client.close)
        store = RedisStateStore(
            client, namespace=namespace, on_event=lambda name, fields: heard.append(name)
        )
        stack.callback(store.shutdown)
        routers: dict[str, Router] = {}
        stores: dict[str, StateStore | None] = {"memory": None, "redis": store}
        for name, state_store in stores.items():
            http = stack.enter_context(httpx.Client(transport=mock_transport(FakeBank("fake"))))
            journal = stack.enter_context(
                SQLiteJournal(os.path.join(workdir, f"latency-{name}.sqlite3"), durable=False)
            )
            routers[name] = Router(
                [FakeProvider("fake")], client=http, journal=journal, state_store=state_store
            )
        names = list(routers)
        # Warm-up: pools, caches, and the Redis store's first sight of the breaker (the one
        # inline fetch it makes).
        for name in names:
            for order in _orders(f"{run_id}-lw-{name}", plan.latency_warmup):
                _charge(routers[name], order, insts)

        wall: dict[str, list[list[float]]] = {name: [] for name in names}
        cpu: dict[str, list[list[float]]] = {name: [] for name in names}
        payer_before, others_before = client.from_payer, client.from_others
        for r in range(plan.latency_rounds):
            todo = {name: _orders(f"{run_id}-l{r}-{name}", plan.latency_pairs) for name in names}
            for name in names:
                wall[name].append([])
                cpu[name].append([])
            gc.collect()
            for i in range(plan.latency_pairs):
                # Who goes first alternates, so neither always follows the other's garbage.
                for name in names if i % 2 == 0 else names[::-1]:
                    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                    _charge(routers[name], todo[name][i], insts)
                    t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                    wall[name][-1].append(float(t1 - t0))
                    cpu[name][-1].append(float(c1 - c0))
        payer = client.from_payer - payer_before
        refresher = client.from_others - others_before

    walls = _quantiles(wall["memory"], wall["redis"])
    payments = sum(len(xs) for xs in wall["redis"])
    return Latency(
        payments_each=payments,
        wall=walls,
        cpu=_quantiles(cpu["memory"], cpu["redis"]),
        redis_commands_per_payment=payer / payments,
        refresher_commands=refresher,
        goal_p99=REDIS_P99_GOAL_NS,
        met=walls["added_p99"] <= REDIS_P99_GOAL_NS,
        degraded=heard.count("storage.degraded"),
    )


# -- environment -------------------------------------------------------------------------------


def _loadavg() -> list[float] | None:
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def _tmpfs() -> str | None:
    """``/dev/shm`` if it is a writable tmpfs, else ``None`` (the system temp dir)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK) and filesystem_of(shm) == "tmpfs":
        return shm
    return None


def filesystem_of(path: str) -> str:
    """The filesystem type ``path`` lives on (``tmpfs``, ``ext4``, …), from /proc/mounts."""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return "unknown"
    best, fstype = "", "unknown"
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        # /proc/mounts writes a space in a mount point as \040.
        mount = parts[1].replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        # The last of equal mount points is the one in effect (mounted over the others).
        if inside and len(mount) >= len(best):
            best, fstype = mount, parts[2]
    return fstype


def _servers(redis_url: str, postgres_url: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        redis_version = str(client.info("server").get("redis_version", "unknown"))
    finally:
        client.close()
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {"redis": redis_version, "postgresql": str(row[0]) if row else "unknown"}


def _cleanup(redis_url: str, namespace: str, postgres_url: str, schema: str) -> None:
    """Delete the run's Redis keys and drop its schema."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        for key in client.scan_iter(match=f"{namespace}:*"):
            client.delete(key)
    finally:
        client.close()
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- entry points ------------------------------------------------------------------------------


def run(
    quick: bool = False,
    *,
    redis_url: str = DEFAULT_REDIS_URL,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    processes: int = 4,
    journal_dir: str | None = None,
) -> ScaleReport:
    """Measure everything once and return the figures (nothing is printed).

    Makes a Redis namespace and a PostgreSQL schema of its own and removes both after.
    ``journal_dir`` is where the throughput's SQLite files go (default: the system temp
    dir); the latency comparison keeps its journals on tmpfs where there is one.
    """
    if processes < 2:
        raise ValueError(f"processes must be at least 2 (compared with 1), got {processes}")
    plan = _QUICK if quick else _FULL
    run_id = uuid.uuid4().hex[:8]
    namespace = f"pfbench-{run_id}"
    schema = f"pf_bench_{run_id}"
    journal_url = _journal_url(postgres_url, schema)
    servers = _servers(redis_url, postgres_url)  # fails early if either cannot be reached
    workdir = tempfile.mkdtemp(prefix="payfallback-bench-scale-", dir=journal_dir)
    latency_dir = tempfile.mkdtemp(prefix="payfallback-bench-scale-", dir=_tmpfs())
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "quick": quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": _loadavg(),
        "redis_url": _where(redis_url),
        "postgres_url": _where(postgres_url),
        "servers": servers,
        "namespace": namespace,
        "schema": schema,
        "journal_dir": workdir,
        "journal_fs": filesystem_of(workdir),
        "latency_journal_dir": latency_dir,
        "latency_journal_fs": filesystem_of(latency_dir),
        "processes": processes,
        "plan": {
            "warmup_rounds": plan.warmup_rounds,
            "rounds": plan.rounds,
            "payments_per_process_per_round": plan.batch,
            "latency_warmup": plan.latency_warmup,
            "latency_rounds": plan.latency_rounds,
            "latency_pairs_per_round": plan.latency_pairs,
        },
    }
    try:
        # Latency first, while PostgreSQL is quiet (the throughput rounds leave it busy
        # checkpointing and vacuuming for a while).
        with event_logging():
            latency = bench_latency(
                plan, workdir=latency_dir, redis_url=redis_url, namespace=namespace
            )
        # Made once here, so the workers do not race to migrate it (they would manage, but
        # the first round would time the migration).
        PostgresJournal.from_url(journal_url).close()
        throughput = bench_throughput(
            plan,
            processes,
            workdir=workdir,
            redis_url=redis_url,
            journal_url=journal_url,
            namespace=namespace,
            run_id=run_id,
        )
    finally:
        _cleanup(redis_url, namespace, postgres_url, schema)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(latency_dir, ignore_errors=True)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["loadavg_end"] = _loadavg()
    return ScaleReport(meta=meta, throughput=throughput, latency=latency)


def _us(ns: float) -> str:
    if abs(ns) >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


def _spread(q: tuple[float, float, float]) -> str:
    return f"{_us(q[1])} [{_us(q[0])}, {_us(q[2])}]"


def format_table(report: ScaleReport) -> str:
    """The report as plain text: one table for throughput, one block for latency."""
    meta = report["meta"]
    lines = [
        f"payfallback scale-out benchmarks{' (quick: rough figures)' if meta['quick'] else ''}",
        f"python {meta['python']} on {meta['platform']}, {meta['cpus']} CPUs, "
        f"load {meta['loadavg_start']} -> {meta['loadavg_end']}, {meta['seconds']} s",
        f"redis {meta['servers']['redis']} at {meta['redis_url']}, "
        f"postgresql {meta['servers']['postgresql']} at {meta['postgres_url']}",
        f"SQLite journals: throughput in {meta['journal_dir']} ({meta['journal_fs']}), "
        f"latency in {meta['latency_journal_dir']} ({meta['latency_journal_fs']})",
        f"{meta['plan']['rounds']} rounds of {meta['plan']['payments_per_process_per_round']} "
        "payments per process; payments/s = median over rounds [IQR]; ratio = median of "
        "per-round ratios [IQR]",
        "",
        "== throughput: Router.charge, a new order each call, in-memory transport",
        f"{'variant':<48} {'payments/s':>10} {'IQR':>15} {'best':>7} {'ratio':>6} "
        f"{'IQR':>13} degraded",
    ]
    for row in report["throughput"]:
        ratio = iqr = ""
        if row["ratio"] is not None:
            ratio = f"{row['ratio']:.2f}x"
            iqr = f"[{row['ratio_p25']:.2f}, {row['ratio_p75']:.2f}]"
        spread = f"[{row['p25']:.0f}, {row['p75']:.0f}]"
        lines.append(
            f"{row['name']:<48} {row['per_second']:>10.0f} {spread:>15} {row['best']:>7.0f} "
            f"{ratio:>6} {iqr:>13} {row['degraded']:>8}"
        )
        if row["baseline"] is not None:
            lines.append(f"{'':<4}vs {row['baseline']}")
    lat = report["latency"]
    wall, cpu = lat["wall"], lat["cpu"]
    noisy = wall["added_p99_rounds"][2] - wall["added_p99_rounds"][0] > lat["goal_p99"]
    verdict = "met" if lat["met"] else "NOT met"
    if noisy:
        verdict += " (per-round p99 differences spread wider than the goal: a busy machine)"
    lines += [
        "",
        f"== latency Redis adds per payment: {lat['payments_each']} payments each, in turn, "
        f"one process, SQLite journals (NORMAL) on {meta['latency_journal_fs']}",
        f"{'':<34} {'wall p50':>10} {'wall p99':>10} {'CPU p50':>10} {'CPU p99':>10}",
    ]
    rows = (
        (
            "MemoryStateStore",
            wall["memory_p50"],
            wall["memory_p99"],
            cpu["memory_p50"],
            cpu["memory_p99"],
        ),
        (
            "RedisStateStore",
            wall["redis_p50"],
            wall["redis_p99"],
            cpu["redis_p50"],
            cpu["redis_p99"],
        ),
    )
    for label, *times in rows:
        lines.append(f"{label:<34} " + " ".join(f"{_us(t):>10}" for t in times))
    lines += [
        f"{'added by Redis, all payments':<34} {_us(wall['added_p50']):>10} "
        f"{_us(wall['added_p99']):>10} {_us(cpu['added_p50']):>10} {_us(cpu['added_p99']):>10}",
        f"added by Redis, per round: wall p50 {_spread(wall['added_p50_rounds'])}, "
        f"p99 {_spread(wall['added_p99_rounds'])}",
        f"{'':<27}CPU p50 {_spread(cpu['added_p50_rounds'])}, "
        f"p99 {_spread(cpu['added_p99_rounds'])}",
        f"goal: wall-clock p99 added <= {_us(lat['goal_p99'])}: {verdict}",
        f"Redis commands from the paying thread per payment: "
        f"{lat['redis_commands_per_payment']:.3f}; from the refresher meanwhile: "
        f"{lat['refresher_commands']}; storage.degraded events: {lat['degraded']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_scale.py",
        description="payfallback with local vs shared (Redis + PostgreSQL) state",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: rough figures")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Redis to share through")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL for the journal"
    )
    parser.add_argument(
        "--processes", type=int, default=4, help="processes to compare with one (default 4)"
    )
    parser.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the throughput's SQLite journals live (default: the system temp dir)",
    )
    args = parser.parse_args(argv)
    report = run(
        quick=args.quick,
        redis_url=args.redis_url,
        postgres_url=args.postgres_url,
        processes=args.processes,
        journal_dir=args.journal_dir,
    )
    print(format_table(report))
    return store_json(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
