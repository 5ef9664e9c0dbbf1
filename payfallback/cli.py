"""The ``payfallback`` command line.

* ``payfallback simulate`` — replay an outage against fake providers on a simulated clock
  and compare no fallback, naive retries and payfallback (``docs/simulator.md``);
* ``payfallback demo`` — a short failover run that prints every routing decision;
* ``payfallback status`` — breaker states (from a Redis state store) and what a journal
  holds: orders, payments, unresolved attempts, refunds owed;
* ``payfallback reconcile`` — settle what a journal left open (``Router.recover()``).

``status`` and ``reconcile`` read :class:`~payfallback.settings.Settings` (the environment,
and the TOML file ``--config``/``PAYFALLBACK_CONFIG`` names); their options win.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import Enum
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import structlog

try:
    import typer
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - depends on what was installed
    raise SystemExit(
        f"the payfallback command line needs typer and rich ({exc.name} is missing): "
        "pip install 'payfallback[cli]'"
    ) from None

from payfallback import SystemClock, _demo
from payfallback.errors import ConfigurationError, PayfallbackError
from payfallback.journal import Journal
from payfallback.journal._migrations import LATEST_VERSION, schema_version
from payfallback.models import Attempt, Payment, Receipt, Refund
from payfallback.provider import Provider, installed_providers
from payfallback.router import DEFAULT_JOURNAL_PATH, Router, open_journal
from payfallback.settings import (
    ProviderSettings,
    Settings,
    build_provider,
    redact_url,
    unknown_provider,
)
from payfallback.simulate import (
    STRATEGIES,
    PlotUnavailable,
    Scenario,
    ScenarioError,
    SimulationReport,
    builtin_scenarios,
    load_scenario,
    plot_report,
    require_matplotlib,
)
from payfallback.simulate import simulate as run_simulation

__all__ = ["app", "main"]

app = typer.Typer(
    name="payfallback",
    help="Keep selling when a payment provider goes down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: flags without a value placeholder, each option's text on the full width
    # (legible at 80 columns), and examples kept as written.
    rich_markup_mode=None,
)

_RUN_LABELS = {"baseline": "no outage (baseline)", **STRATEGIES}
_JOURNAL_HELP = (
    "The journal: sqlite:///relative/path, sqlite:////absolute/path or postgresql://…; "
    f"default: the Router's default, sqlite:///{DEFAULT_JOURNAL_PATH}"
)


def main() -> None:
    """Console-script entry point."""
    app()


def _version() -> str:
    try:
        return installed_version("payfallback")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree, not installed
        from payfallback import __version__  # noqa: PLC0415

        return __version__


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"payfallback {_version()}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Keep selling when a payment provider goes down."""


@contextmanager
def _quiet_events() -> Iterator[None]:
    """Drop structlog output while a command runs; it prints its own summary."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    try:
        yield
    finally:
        structlog.configure(**saved)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


# -- simulate ------------------------------------------------------------------------------


def _krw(amount: int) -> str:
    return f"{amount:,} KRW"


def _when(scenario: Scenario, moment: datetime) -> str:
    return scenario.local(moment).strftime("%a %d %b %H:%M")


def _header(scenario: Scenario, customers: float, seed: int) -> None:
    lines = [f"{scenario.name} (seed {seed})"]
    if scenario.description:
        lines.append(scenario.description)
    lines.append(
        f"{_when(scenario, scenario.start)} to {_when(scenario, scenario.end)} "
        f"({scenario.tz}), about {customers:,.0f} customers"
    )
    for incident in scenario.incidents:
        note = ", announced" if incident.announced else ""
        lines.append(
            f"  - {incident.label}: {incident.provider}, {_when(scenario, incident.start)} to "
            f"{_when(scenario, incident.end)}{note}"
        )
    typer.echo("\n".join(lines), err=True)


def _table(report: SimulationReport) -> Table:
    table = Table(title=f"{report.scenario.name}, seed {report.seed}", title_justify="left")
    table.add_column("")
    for label in STRATEGIES.values():
        table.add_column(label, justify="right")
    rows = list(report.strategies.values())

    def row(name: str, cells: Sequence[str]) -> None:
        table.add_row(name, *cells)

    row("approval rate", [f"{r.approval_rate:.2%}" for r in rows])
    row("vs no-outage baseline", [f"{r.approval_vs_baseline:.2%}" for r in rows])
    row("lost revenue", [_krw(r.lost_revenue_krw) for r in rows])
    row(
        "double charges",
        [
            f"{r.double_charges:,}"
            + (f" ({_krw(r.double_charged_krw)})" if r.double_charges else "")
            for r in rows
        ],
    )
    row("charged, sale not recorded", [f"{r.charged_not_recorded:,}" for r in rows])
    row("waited > 5 s", [f"{r.waited_over_5s:,}" for r in rows])
    row("checkout p50 / p99", [f"{r.checkout_p50_s:.2f} / {r.checkout_p99_s:.2f} s" for r in rows])
    incidents = report.scenario.incidents
    for n, incident in enumerate(incidents):
        name = incident.provider
        if sum(i.provider == name for i in incidents) > 1:
            name += f" (incident {n + 1})"
        cells = []
        for r in rows:
            trip = r.breaker[n] if r.breaker else None
            if trip is None:
                cells.append("no breaker")
            elif trip.opened_after_s is not None:
                cells.append(
                    f"{trip.opened_after_s:,.1f} s ({trip.failed_calls_before_open} failed calls)"
                )
            elif trip.announced:
                cells.append(f"routed around ({trip.failed_calls_before_open} failed calls)")
            else:
                cells.append(f"never opened ({trip.failed_calls_before_open} failed calls)")
        row(f"breaker open: {name}", cells)
    row(
        "refunds owed / settled",
        [f"{r.refunds_owed:,} / {r.refunds_settled:,}" for r in rows],
    )
    row("unknown at checkout", [f"{r.pending_at_checkout:,} ({r.unresolved} open)" for r in rows])
    return table


def _check_plot(path: Path) -> None:
    """Refuse a chart path before the run, not after it: a run can take a minute."""
    if path.suffix.lower() != ".png":
        raise _fail(f"--plot {path}: the chart is a PNG; give a path ending in .png", 2)
    folder = path.parent
    if not folder.is_dir():
        raise _fail(f"--plot {path}: no folder {folder} to write the chart into", 2)
    if path.is_dir():
        raise _fail(f"--plot {path}: that is a folder; give a file name ending in .png", 2)
    if not os.access(folder, os.W_OK):
        raise _fail(f"--plot {path}: cannot write into {folder}", 2)


@app.command(short_help="Replay an outage: no fallback vs naive retries vs payfallback.")
def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario", "-s", help="A built-in scenario (see --list) or a scenario TOML file."
        ),
    ] = "kakao-fire-2022",
    seed: Annotated[
        int, typer.Option(help="Seed for traffic, latency and faults: same seed, same figures.")
    ] = 1,
    hours: Annotated[
        float | None, typer.Option(help="Simulate only the first HOURS of the scenario.")
    ] = None,
    payments: Annotated[
        int | None,
        typer.Option(help="About this many customers in the window (default: the scenario's)."),
    ] = None,
    compensate: Annotated[
        bool,
        typer.Option(
            "--compensate/--no-compensate",
            help="payfallback's reroute with compensation (pay elsewhere now, refund an "
            "unknown charge that went through).",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a PNG chart of approval rate over time to this .png file (needs "
            "the 'plot' extra).",
            metavar="FILE.png",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes to run in (default: one per CPU, up to 4; 1: this one)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    list_scenarios: Annotated[
        bool, typer.Option("--list", help="List the built-in scenarios and exit.")
    ] = False,
) -> None:
    """Replay an outage against fake providers: no fallback vs naive retries vs payfallback."""
    if list_scenarios:
        for name, description in builtin_scenarios().items():
            typer.echo(f"{name:<18} {description}")
        return
    try:
        chosen = load_scenario(scenario)
        if hours is not None:
            chosen = chosen.trimmed(hours)
        if payments is not None:
            chosen = chosen.with_payments(payments)
    except ScenarioError as exc:
        raise _fail(str(exc), code=2) from None
    if plot is not None:
        # Before the run, not after it: a wrong path or a missing extra should not cost
        # the wait.
        _check_plot(plot)
        try:
            require_matplotlib()
        except PlotUnavailable as exc:
            raise _fail(str(exc)) from None

    if not as_json:
        _header(chosen, chosen.expected_payments(), seed)
    began = time.perf_counter()
    err = Console(stderr=True)
    show = not quiet and err.is_terminal
    # Refreshed from this thread (auto_refresh off): no thread runs beside the workers.
    with Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        auto_refresh=False,
        disable=not show,
        transient=False,
    ) as bar:
        tasks = {run: bar.add_task(label, total=None) for run, label in _RUN_LABELS.items()}

        def progress(run: str, done: int, total: int) -> None:
            bar.update(tasks[run], completed=done, total=total)
            bar.refresh()

        report = run_simulation(
            chosen, seed=seed, compensate=compensate, progress=progress, workers=workers
        )
    elapsed = time.perf_counter() - began

    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        Console(highlight=False).print(_table(report))
        base = report.baseline
        typer.echo(
            f"baseline (same customers, no outage): {base.approval_rate:.2%} approved, "
            f"{_krw(base.revenue_krw)}; {report.customers:,} customers simulated in "
            f"{elapsed:.1f} s"
        )
    if plot is not None:
        written = plot_report(report, plot)
        typer.echo(f"chart written to {written}", err=True)


# -- demo ----------------------------------------------------------------------------------


@app.command(short_help="A short failover run, printing every routing decision.")
def demo(
    payments: Annotated[int, typer.Option(min=1, help="Payments to take.")] = 60,
    quiet: Annotated[bool, typer.Option("--quiet", help="Only the summary.")] = False,
) -> None:
    """A short failover run against fake providers, printing every routing decision."""
    with _quiet_events():
        summary = _demo.run(payments, verbose=not quiet)
    if quiet:
        typer.echo(json.dumps(summary, ensure_ascii=False))
    raise typer.Exit(0 if summary["double_charges"] == 0 else 1)


# -- status and reconcile ------------------------------------------------------------------


_CONFIG_HELP = (
    "A TOML settings file (journal, state_store, providers); the environment's "
    "PAYFALLBACK_* variables override it, and options override both"
)


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except ConfigurationError as exc:
        raise _fail(exc.message, 2) from None


def _check_sqlite(spec: str, path: str) -> None:
    """Read-only checks of a SQLite journal file: there, and a payfallback journal."""
    if path == ":memory:":
        raise _fail(f"{spec} is a new, empty journal in every process; give the journal's file")
    if not Path(path).is_file():
        raise _fail(
            f"no journal at {path} (from {spec}); give --journal or set PAYFALLBACK_JOURNAL"
        )
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = schema_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise _fail(f"cannot read {path} as a journal: {exc}") from None
    _check_version(version, f"{path}")


def _check_postgres(spec: str) -> None:
    """Read-only checks of a PostgreSQL journal: its schema and tables are there."""
    try:
        import psycopg  # noqa: PLC0415 - the optional 'postgres' extra
        from psycopg import sql  # noqa: PLC0415 - same
    except ImportError:
        raise _fail(
            "the PostgreSQL journal needs psycopg: pip install 'payfallback[postgres]'"
        ) from None
    base, _, query = spec.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    schema = dict(params).get("schema", "payfallback")
    libpq = [(key, value) for key, value in params if key not in ("schema", "pool_size")]
    conninfo = f"{base}?{urlencode(libpq)}" if libpq else base
    where = f"{redact_url(base)} (schema {schema})"
    try:
        with psycopg.connect(conninfo, connect_timeout=5, autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
            ).fetchone()
            if found is None:
                raise _fail(f"no journal at {where}: the schema does not exist")
            table = conn.execute(
                "SELECT to_regclass(format('%%I.schema_version', %s::text))", (schema,)
            ).fetchone()
            version = 0
            if table is not None and table[0] is not None:
                row = conn.execute(
                    sql.SQL("SELECT MAX(version) FROM {}.schema_version").format(
                        sql.Identifier(schema)
                    )
                ).fetchone()
                version = int(row[0] or 0) if row is not None else 0
    except psycopg.Error as exc:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        password = httpx.URL(base).password if "://" in base else None
        if password:
            cause = cause.replace(password, "***")
        raise _fail(f"cannot read the journal at {where}: {type(exc).__name__}: {cause}") from None
    _check_version(version, where)


def _check_version(version: int, where: str) -> None:
    latest = LATEST_VERSION
    if version == 0:
        raise _fail(f"no journal at {where}: it holds no payfallback tables")
    if version < latest:
        raise _fail(
            f"the journal at {where} is at schema version {version}; this payfallback "
            f"reads version {latest}, and status changes nothing: the next Router (or "
            "`payfallback reconcile`) that opens it upgrades it"
        )


def _open(spec: str, *, read_only: bool) -> Journal:
    """The journal ``spec`` names. ``read_only``: checked first, so that a missing file,
    an empty database or an old schema is reported instead of being created or upgraded."""
    if read_only:
        if spec.startswith("sqlite:///"):
            _check_sqlite(spec, spec.removeprefix("sqlite:///"))
        elif spec.startswith(("postgresql:", "postgres:")):
            _check_postgres(spec)
    elif spec.startswith("sqlite:///"):
        path = spec.removeprefix("sqlite:///")
        # Reconcile settles what a journal holds; it must not create an empty one.
        if path and path != ":memory:" and not Path(path).is_file():
            raise _fail(
                f"no journal at {path} (from {spec}); give --journal or set PAYFALLBACK_JOURNAL"
            )
    try:
        journal, _ = open_journal(spec, SystemClock())
    except ConfigurationError as exc:
        raise _fail(redact_url(exc.message)) from None
    return journal


def _journal_spec(option: str | None, settings: Settings) -> str:
    return option or settings.journal or f"sqlite:///{DEFAULT_JOURNAL_PATH}"


_STATE_STORE_HELP = (
    "Where the Routers keep breaker state: redis://host:port/db?namespace=NAME (also rediss://, "
    "unix://), as given to the Router; default: memory, held by each running process"
)


def _breakers(spec: str) -> tuple[str, list[dict[str, Any]]]:
    """``(namespace, rows)``: every breaker a Redis state store holds, one row each."""
    try:
        import redis  # noqa: PLC0415 - the optional 'redis' extra

        from payfallback.breaker.redis import RedisStateStore  # noqa: PLC0415 - same
    except ImportError:
        raise _fail(
            "reading breaker state from Redis needs redis-py: pip install 'payfallback[redis]'"
        ) from None
    url = httpx.URL(spec)
    namespace = url.params.get("namespace", "payfallback")
    bare = str(url.copy_remove_param("namespace"))
    clock = SystemClock()
    try:
        # Not the Router's 50 ms: an operator's Redis may be a network away, and nobody's
        # payment waits on this command.
        store = RedisStateStore.from_url(bare, namespace=namespace, timeout=3.0, clock=clock)
    except ValueError as exc:
        raise _fail(f"--state-store: {exc}", 2) from None
    try:
        listed = store.breakers()
    except redis.RedisError as exc:
        where = url.path if url.scheme == "unix" else f"{url.host}:{url.port or 6379}"
        cause = str(exc)
        # A Redis error message can carry the URL, password included.
        if url.password:
            cause = cause.replace(url.password, "***")
        raise _fail(
            f"cannot read breaker state from Redis at {where} (namespace {namespace!r}): "
            f"{type(exc).__name__}: {cause}"
        ) from None
    finally:
        store.shutdown()
    now_mono, now_wall = clock.monotonic(), clock.now()
    rows: list[dict[str, Any]] = []
    for key, view in listed:
        provider, _, method = key.rpartition(":")
        left = None if view.open_until is None else view.open_until - now_mono
        rows.append(
            {
                "provider": provider,
                "method": method,
                "state": view.state.value,
                "open_until": None
                if left is None
                else (now_wall + timedelta(seconds=left)).isoformat(timespec="seconds"),
                "open_seconds_left": None if left is None else max(0.0, round(left, 1)),
                "trips": view.trips,
                "reason": view.reason,
            }
        )
    return namespace, rows


@app.command(short_help="Breaker states and what a journal holds.")
def status(
    journal: Annotated[
        str | None, typer.Option(envvar="PAYFALLBACK_JOURNAL", help=_JOURNAL_HELP)
    ] = None,
    state_store: Annotated[
        str | None,
        typer.Option("--state-store", envvar="PAYFALLBACK_STATE_STORE", help=_STATE_STORE_HELP),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    config: Annotated[
        Path | None, typer.Option(envvar="PAYFALLBACK_CONFIG", help=_CONFIG_HELP)
    ] = None,
) -> None:
    """Breaker states and what a journal holds: orders, payments, unresolved attempts,
    refunds owed.

    Breaker states are shown from a shared (Redis) state store; with the default
    in-memory store they live in each running process and only that process can tell
    them. Nothing is created or upgraded: a missing or empty journal is an error (exit 1).
    """
    settings = _settings(config)
    store_spec = state_store or settings.state_store or "memory"
    if store_spec != "memory" and not store_spec.startswith(("redis://", "rediss://", "unix://")):
        raise _fail(
            f"--state-store: unknown state store URL {store_spec.split(':', 1)[0]!r}; use "
            "redis://host:port/db?namespace=NAME or 'memory'",
            2,
        )
    opened = _open(_journal_spec(journal, settings), read_only=True)
    try:
        counts = opened.counts()
        unresolved = list(opened.unresolved_attempts())
        owed = list(opened.refunds_owed())
    finally:
        opened.close()
    namespace: str | None = None
    breakers: list[dict[str, Any]] | None = None
    if store_spec != "memory":
        namespace, breakers = _breakers(store_spec)
    doc: dict[str, Any] = {
        "state_store": "memory" if breakers is None else "redis",
        "namespace": namespace,
        # None: in-memory state, not readable from outside the process that holds it.
        "breakers": breakers,
        "orders": counts.orders,
        "payments": counts.payments,
        "unresolved_attempts": counts.unresolved_attempts,
        "refunds_owed": counts.refunds_owed,
        "refunds_owed_amount": counts.refunds_owed_amount,
        "unresolved": [
            {
                "attempt_id": a.attempt_id,
                "provider": a.provider,
                "state": a.state.value,
                "since": a.updated_at.isoformat(),
            }
            for a in unresolved
        ],
        "owed": [
            {
                "refund_id": r.refund_id,
                "provider": r.provider,
                "amount": r.amount.amount,
                "currency": r.amount.currency,
                "tries": r.tries,
            }
            for r in owed
        ],
    }
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    out = Console(highlight=False)
    if breakers is None:
        typer.echo(
            "breakers: state lives in the memory of each running process (no shared state "
            "store); give --state-store redis://… or set PAYFALLBACK_STATE_STORE to see it"
        )
    elif not breakers:
        typer.echo(f"breakers: none recorded in Redis namespace {namespace!r} (all closed)")
    else:
        shown = Table(title=f"breakers (Redis namespace {namespace})", title_justify="left")
        for name in ("provider", "method", "state", "open until", "trips"):
            shown.add_column(name, justify="right" if name == "trips" else "left")
        for b in breakers:
            until = "-"
            if b["open_until"] is not None and b["state"] == "open":
                left = b["open_seconds_left"]
                until = f"{b['open_until']} " + (
                    f"(in {left:,.0f} s)" if left > 0 else "(passed: the next call probes)"
                )
            shown.add_row(b["provider"], b["method"], b["state"], until, f"{b['trips']:,}")
        out.print(shown)
    table = Table(title="journal", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    for key in ("orders", "payments", "unresolved_attempts", "refunds_owed"):
        table.add_row(key.replace("_", " "), f"{doc[key]:,}")
    table.add_row("refunds owed (amount)", f"{counts.refunds_owed_amount:,}")
    out.print(table)
    for a in doc["unresolved"][:20]:
        typer.echo(f"  unresolved {a['attempt_id']} at {a['provider']} ({a['state']})")
    for r in doc["owed"][:20]:
        typer.echo(f"  owed {r['refund_id']} at {r['provider']}: {r['amount']:,} {r['currency']}")
    if doc["unresolved"] or doc["owed"]:
        typer.echo("run `payfallback reconcile` to settle them")


def _provider(spec: str) -> Provider:
    """``NAME[:key=value,...]``; a value ``env:VAR`` is read from the environment."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in installed_providers():
        raise _fail(unknown_provider(name).message, 2)
    settings: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise _fail(f"--provider {spec!r}: settings are key=value, separated by commas", 2)
        if value.startswith("env:"):
            var = value.removeprefix("env:")
            if var not in os.environ:
                raise _fail(f"--provider {name}: {key}=env:{var}, but {var} is not set", 2)
            value = os.environ[var]
        settings[key.strip()] = value
    try:
        # Converted as a settings file's values are: sandbox=false is False, not "false".
        return build_provider(name, ProviderSettings.model_validate(settings))
    except ConfigurationError as exc:
        raise _fail(exc.message, 2) from None
    except TypeError as exc:
        raise _fail(f"--provider {name}: {exc}", 2) from None


EXPORT_COLUMNS = (
    "type",
    "at",
    "order_id",
    "payment_id",
    "refund_id",
    "provider",
    "method",
    "provider_txn_id",
    "amount",
    "currency",
    "status",
    "approval_number",
    "issuer",
    "issuer_code",
    "acquirer",
    "acquirer_code",
    "card_number",
    "installment_months",
    "interest_free",
    "card_kind",
    "paid_with",
    "receipt_url",
    "cancel_id",
    "remaining",
)


@app.command(short_help="A day's payments and refunds as CSV, for the accountant.")
def export(
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            help="The day to export, in --tz; default: today.",
        ),
    ] = None,
    tz: Annotated[
        str, typer.Option("--tz", help="The time zone the day and the times are in.")
    ] = "Asia/Seoul",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV here, not to stdout.")
    ] = None,
    journal: Annotated[
        str | None, typer.Option(envvar="PAYFALLBACK_JOURNAL", help=_JOURNAL_HELP)
    ] = None,
    config: Annotated[
        Path | None, typer.Option(envvar="PAYFALLBACK_CONFIG", help=_CONFIG_HELP)
    ] = None,
) -> None:
    """A day's payments and settled refunds from the journal, as CSV with the receipt
    fields: what a merchant hands an accountant, and holds against the PG's settlement file.

    One row per payment (type "payment", amount positive) and per refund or compensation
    made that day (type "refund" or "compensation", amount negative, so the column sums to
    the day's net). Times are in --tz. For example:

    \b
      payfallback export --date 2022-10-15 --journal sqlite:///pos.sqlite3 -o 2022-10-15.csv
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"--tz: unknown time zone {tz!r}; use an IANA name such as Asia/Seoul"
        raise _fail(message, 2) from None
    try:
        date = dt.date.fromisoformat(day) if day else datetime.now(zone).date()
    except ValueError:
        raise _fail(f"--date: {day!r} is not a date; use YYYY-MM-DD", 2) from None
    start = datetime.combine(date, dt.time(), zone)
    end = datetime.combine(date + timedelta(days=1), dt.time(), zone)
    opened = _open(_journal_spec(journal, _settings(config)), read_only=False)
    try:
        payments = list(opened.payments_between(start, end))
        refunds = list(opened.refunds_between(start, end))
        method_of = {p.payment_id: p.method.value for p in payments}
        for refund in refunds:
            if refund.payment_id and refund.payment_id not in method_of:
                paid = opened.get_payment(refund.payment_id)
                if paid is not None:
                    method_of[paid.payment_id] = paid.method.value
    finally:
        opened.close()
    rows = [_payment_row(p, zone) for p in payments]
    rows += [_refund_row(r, zone, method_of) for r in refunds]
    rows.sort(key=lambda row: str(row["at"]))
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if output:
            stream.close()
    if output:
        typer.echo(f"{len(payments)} payments and {len(refunds)} refunds of {date} in {output}")


def _payment_row(payment: Payment, zone: ZoneInfo) -> dict[str, object]:
    receipt = payment.receipt or Receipt()
    return {
        "type": "payment",
        "at": payment.approved_at.astimezone(zone).isoformat(),
        "order_id": payment.order_id,
        "payment_id": payment.payment_id,
        "provider": payment.provider,
        "method": payment.method.value,
        "provider_txn_id": payment.provider_txn_id,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "status": payment.status.value,
        **{
            key: _cell(value)
            for key, value in receipt.model_dump().items()
            if key in EXPORT_COLUMNS
        },
    }


def _refund_row(refund: Refund, zone: ZoneInfo, method_of: dict[str, str]) -> dict[str, object]:
    receipt = refund.receipt
    return {
        "type": refund.kind,
        "at": (receipt.cancelled_at if receipt and receipt.cancelled_at else refund.updated_at)
        .astimezone(zone)
        .isoformat(),
        "order_id": refund.order_id,
        "payment_id": refund.payment_id or "",
        "refund_id": refund.refund_id,
        "provider": refund.provider,
        "method": method_of.get(refund.payment_id or "", ""),
        "provider_txn_id": refund.provider_txn_id,
        "amount": -refund.amount.amount,
        "currency": refund.amount.currency,
        "status": refund.state.value,
        "cancel_id": (receipt.cancel_id if receipt else None) or "",
        "remaining": _cell(receipt.remaining if receipt else None),
    }


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return value.value
    return value


@app.command(short_help="Settle what a journal left open (for cron).")
def reconcile(
    provider: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            metavar="NAME[:KEY=VALUE,...]",
            help="A provider to settle with: its entry-point name, then :key=value "
            "settings; a value env:VAR is read from the environment. Repeat for each "
            "provider. Default: the providers of the settings (--config, "
            "PAYFALLBACK_PROVIDERS__<NAME>__<KEY>).",
        ),
    ] = None,
    journal: Annotated[
        str | None, typer.Option(envvar="PAYFALLBACK_JOURNAL", help=_JOURNAL_HELP)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    config: Annotated[
        Path | None, typer.Option(envvar="PAYFALLBACK_CONFIG", help=_CONFIG_HELP)
    ] = None,
) -> None:
    """Settle what the journal left open: look unknown attempts up, send owed refunds,
    give back charges that appeared late on attempts that had failed.

    Exits 1 while anything is still open — attempts still in flight included — so a
    cron job can alert on it. For example:

    \b
      export TOSS_SECRET_KEY=live_sk_...
      payfallback reconcile \\
        --journal sqlite:////var/lib/pos/payfallback.sqlite3 \\
        --provider tosspayments:secret_key=env:TOSS_SECRET_KEY
    """
    settings = _settings(config)
    if provider:
        providers = [_provider(spec) for spec in provider]
    else:
        try:
            providers = [
                build_provider(name, options) for name, options in settings.ordered_providers()
            ]
        except ConfigurationError as exc:
            raise _fail(exc.message, 2) from None
        if not providers:
            raise _fail(
                "no provider to settle with: give --provider, or configure providers in "
                "the settings (--config, PAYFALLBACK_PROVIDERS__<NAME>__<KEY>)",
                2,
            )
    opened = _open(_journal_spec(journal, settings), read_only=False)
    try:
        named = {p.name for p in providers}
        open_at = {a.provider for a in opened.unresolved_attempts()}
        open_at |= {r.provider for r in opened.refunds_owed()}
        missing = sorted(open_at - named)
        if missing:
            typer.echo(
                f"warning: the journal has open work at {', '.join(missing)}, not given "
                "with --provider; it stays open",
                err=True,
            )
        # The Router builds (and closes) the recommended client.
        with _quiet_events(), Router(providers, journal=opened) as router:
            report = router.recover()
            by_hand = _cannot_be_looked_up(opened, router, report.still_unresolved)
    except PayfallbackError as exc:
        raise _fail(exc.message) from None
    finally:
        opened.close()
    doc = {
        "resolved": report.resolved,
        "paid": report.paid,
        "compensations": report.compensations,
        "refunds_settled": report.refunds_settled,
        "still_unresolved": report.still_unresolved,
        "refunds_still_owed": report.refunds_still_owed,
        "late_charges": report.late_charges,
        # Held by a worker (or a process that died) until the lease ends: may be charging.
        "in_flight": [f.attempt_id for f in report.in_flight],
        # Unresolved attempts no lookup can settle: the provider gave no transaction id
        # and cannot be asked by our order id (NHN KCP, for one).
        "check_by_hand": [a.attempt_id for a in by_hand],
    }
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for key, ids in doc.items():
            typer.echo(f"{key.replace('_', ' '):<20} {len(ids):>6}  {' '.join(ids[:5])}")
    for held in report.in_flight:
        until = held.lease_until.isoformat() if held.lease_until else "unknown"
        typer.echo(
            f"in flight: {held.attempt_id} at {held.provider} until {until}; "
            "run reconcile again after that",
            err=True,
        )
    for attempt in by_hand:
        typer.echo(
            f"check by hand: {attempt.attempt_id} at {attempt.provider} cannot be looked up "
            f"(no transaction id); find order {attempt.order_id} in {attempt.provider}'s "
            "merchant admin, then charge or refund it there",
            err=True,
        )
    if not report.clean:
        raise typer.Exit(1)


def _cannot_be_looked_up(
    journal: Journal, router: Router, attempt_ids: Sequence[str]
) -> list[Attempt]:
    """The attempts among ``attempt_ids`` that no lookup can settle."""
    found = []
    for attempt_id in attempt_ids:
        attempt = journal.get_attempt(attempt_id)
        provider = router.providers.get(attempt.provider) if attempt else None
        if (
            attempt is not None
            and provider is not None
            and attempt.provider_txn_id is None
            and not provider.capabilities.lookup_by_order_id
        ):
            found.append(attempt)
    return found
