"""The ``payfallback`` command line: simulate, demo, status and reconcile."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from payfallback import BreakerState, ManualClock, OutcomeUnknown, Router, cli
from payfallback.breaker.redis import RedisStateStore
from payfallback.cli import app
from payfallback.journal import SQLiteJournal
from payfallback.models import Instrument, Method, Money, Order
from payfallback.settings import ADAPTERS_URL
from payfallback.testing import FakeBank, FakeProvider, FakeServer, Fault, mock_transport

runner = CliRunner()

#: The primary card PG's brown-out, cut to 2.5 hours (it strikes for the last 30 minutes)
#: and about 300 customers, in this process: a second or so.
SHORT = [
    "simulate",
    "--scenario",
    "peak-brownout",
    "--hours",
    "2.5",
    "--payments",
    "300",
    "--workers",
    "1",
]


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def _json(*args: str) -> dict[str, Any]:
    result = _invoke(*SHORT, "--json", *args)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture(scope="module")
def seeded() -> dict[str, Any]:
    return _json("--seed", "3")


def test_simulate_json_parses_with_stable_keys(seeded: dict[str, Any]) -> None:
    assert seeded["scenario"]["name"] == "peak-brownout"
    assert seeded["scenario"]["end"] == "2022-10-14T18:30:00+09:00"
    assert seeded["seed"] == 3
    assert list(seeded["strategies"]) == ["no_fallback", "naive", "payfallback"]
    assert set(seeded["strategies"]["payfallback"]) == {
        "strategy",
        "label",
        "customers",
        "approved",
        "approval_rate",
        "approval_vs_baseline",
        "revenue_krw",
        "lost_revenue_krw",
        "double_charges",
        "double_charged_krw",
        "charged_not_recorded",
        "charged_not_recorded_krw",
        "waited_over_5s",
        "checkout_p50_s",
        "checkout_p99_s",
        "pending_at_checkout",
        "unresolved",
        "declined_by_customer",
        "failed",
        "refunds_owed",
        "refunds_owed_krw",
        "refunds_settled",
        "refunds_settled_krw",
        "breaker",
    }
    (trip,) = seeded["strategies"]["payfallback"]["breaker"]
    assert trip["provider"] == "tosspayments"
    assert seeded["strategies"]["payfallback"]["double_charges"] == 0
    assert 250 < seeded["customers"] < 350


def _outcomes(doc: dict[str, Any]) -> dict[str, Any]:
    """A run's document without its timing (seconds measured on this machine)."""
    return {key: value for key, value in doc.items() if key != "timing"}


def test_simulate_is_deterministic_with_seed(seeded: dict[str, Any]) -> None:
    assert _outcomes(_json("--seed", "3")) == _outcomes(seeded)
    other = _json("--seed", "4")
    assert other["customers"] != seeded["customers"] or other["timeline"] != seeded["timeline"]


def test_simulate_prints_a_table() -> None:
    result = _invoke(*SHORT, "--seed", "3")
    assert result.exit_code == 0, result.output
    for text in ("approval rate", "double charges", "waited > 5 s", "breaker open"):
        assert text in result.stdout
    assert "customers simulated in" in result.stdout
    # The scenario's header goes to stderr, so stdout is the report alone.
    assert "peak-brownout (seed 3)" in result.stderr


def test_simulate_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    result = _invoke(*SHORT, "--quiet", "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert f"chart written to {out}" in result.stderr


def test_simulate_plot_without_matplotlib_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # None in sys.modules makes ``import matplotlib`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "chart.png"
    result = _invoke(*SHORT, "--plot", str(out))
    assert result.exit_code == 1
    assert "pip install 'payfallback[plot]'" in result.stderr
    assert not out.exists()
    assert "approval rate" not in result.stdout  # it stopped before simulating


def test_simulate_lists_builtin_scenarios() -> None:
    result = _invoke("simulate", "--list")
    assert result.exit_code == 0
    for name in ("kakao-fire-2022", "peak-brownout", "flapping", "maintenance"):
        assert name in result.stdout


def test_simulate_reports_an_invalid_scenario(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\nstart = 2022-10-15T17:00:00\nhours = 2\n'
        '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
        "faults = { down = 1.0 }\n",
        encoding="utf-8",
    )
    result = _invoke("simulate", "--scenario", str(path))
    assert result.exit_code == 2
    assert "invalid scenario" in result.stderr
    assert "incident[0].faults.down" in result.stderr


def test_simulate_refuses_an_unknown_scenario() -> None:
    result = _invoke("simulate", "--scenario", "no-such-outage")
    assert result.exit_code == 2
    assert "not a built-in" in result.stderr


def test_demo_runs_without_double_charges() -> None:
    result = _invoke("demo", "--payments", "30", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["payments"] == 30
    assert summary["double_charges"] == 0


# -- status and reconcile ----------------------------------------------------------------------


@pytest.fixture
def open_journal(tmp_path: Path) -> tuple[str, FakeBank]:
    """A journal holding one charge whose answer was lost and could not be looked up."""
    clock = ManualClock()
    toss = FakeBank("toss", clock=clock)
    toss.fail_next("charge", Fault.LOST_RESPONSE)
    toss.fail_next("lookup", Fault.UNAVAILABLE_503, times=4)
    path = tmp_path / "journal.sqlite3"
    journal = SQLiteJournal(path, clock=clock)
    with httpx.Client(transport=mock_transport(toss)) as client:
        router = Router(
            # No idempotency key and no void: nothing but a lookup can tell what happened.
            [FakeProvider("toss", idempotency=False, void_window=None)],
            client=client,
            journal=journal,
            clock=clock,
            sleep=clock.sleep,
        )
        order = Order(order_id="CLI-1", amount=Money(amount=15_000), name="tea")
        with pytest.raises(OutcomeUnknown):
            router.charge(order, [Instrument(provider="toss", billing_key=SecretStr("bk-ok"))])
    journal.close()
    assert toss.pending_faults("lookup") == 0
    return f"sqlite:///{path}", toss


def test_status_shows_what_the_journal_holds(open_journal: tuple[str, FakeBank]) -> None:
    url, _ = open_journal
    result = _invoke("status", "--journal", url, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["orders"], doc["payments"], doc["unresolved_attempts"]) == (1, 0, 1)
    assert doc["unresolved"][0]["attempt_id"] == "CLI-1_1"
    assert doc["unresolved"][0]["state"] == "unknown"

    table = _invoke("status", env={"PAYFALLBACK_JOURNAL": url})
    assert table.exit_code == 0, table.output
    assert "unresolved CLI-1_1 at toss (unknown)" in table.stdout
    assert "payfallback reconcile" in table.stdout


def test_status_does_not_create_a_journal(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.sqlite3"
    result = _invoke("status", "--journal", f"sqlite:///{missing}")
    assert result.exit_code == 1
    assert f"no journal at {missing}" in result.stderr
    assert not missing.exists()


def test_reconcile_settles_the_unknown_charge(open_journal: tuple[str, FakeBank]) -> None:
    url, toss = open_journal
    with FakeServer(toss) as server:
        result = _invoke(
            "reconcile", "--journal", url, "--provider", f"fake:name=toss,base_url={server.url}"
        )
        assert result.exit_code == 0, result.output
        assert "paid" in result.stdout
        again = _invoke(
            "reconcile",
            "--journal",
            url,
            "--provider",
            f"fake:name=toss,base_url={server.url}",
            "--json",
        )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["still_unresolved"] == []
    status = json.loads(_invoke("status", "--journal", url, "--json").stdout)
    assert (status["payments"], status["unresolved_attempts"]) == (1, 0)


def test_reconcile_exits_1_while_something_is_open(open_journal: tuple[str, FakeBank]) -> None:
    url, _ = open_journal
    # Only another provider is given: the attempt at toss cannot be looked up.
    result = _invoke("reconcile", "--journal", url, "--provider", "fake:name=nice", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["still_unresolved"] == ["CLI-1_1"]
    assert "open work at toss, not given with --provider" in result.stderr


def test_reconcile_names_what_no_lookup_can_settle(open_journal: tuple[str, FakeBank]) -> None:
    # The provider cannot be asked by our order id (as NHN KCP), and its answer was lost
    # before it gave a transaction id: only its merchant admin can tell.
    url, toss = open_journal
    toss.set_mode(Fault.UNAVAILABLE_503)
    spec = "fake:name=toss,lookup_by_order_id=false,idempotency=false"
    with FakeServer(toss) as server:
        result = _invoke(
            "reconcile", "--journal", url, "--provider", f"{spec},base_url={server.url}", "--json"
        )
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["still_unresolved"] == doc["check_by_hand"] == ["CLI-1_1"]
    assert "check by hand: CLI-1_1 at toss cannot be looked up" in result.stderr
    assert "find order CLI-1 in toss's merchant admin" in result.stderr


def test_reconcile_is_not_clean_while_an_attempt_is_in_flight(tmp_path: Path) -> None:
    # A POS died mid-charge a moment ago: its lease is live, its request may be charging.
    path = tmp_path / "journal.sqlite3"
    with SQLiteJournal(path) as journal:
        journal.begin_attempt(
            Order(order_id="CLI-2", amount=Money(amount=4_500), name="latte"),
            provider="toss",
            method=Method.CARD,
            operation="charge",
            idempotency_key="k-cli-2",
            lease_seconds=300,
        )
    result = _invoke(
        "reconcile", "--journal", f"sqlite:///{path}", "--provider", "fake:name=toss", "--json"
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["in_flight"] == ["CLI-2_1"]
    assert "in flight: CLI-2_1 at toss until" in result.stderr


def test_reconcile_reads_settings_from_the_environment(
    open_journal: tuple[str, FakeBank],
) -> None:
    url, toss = open_journal
    with FakeServer(toss) as server:
        result = _invoke(
            "reconcile",
            "--journal",
            url,
            "--provider",
            "fake:name=toss,base_url=env:TOSS_URL",
            "--json",
            env={"TOSS_URL": server.url},
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["paid"] == ["CLI-1_1"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nope", "no payment provider named 'nope' is installed"),
        ("nope", ADAPTERS_URL),
        ("fake:name", "settings are key=value"),
        ("fake:base_url=env:PAYFALLBACK_TEST_UNSET", "PAYFALLBACK_TEST_UNSET is not set"),
        ("fake:colour=red", "unexpected keyword argument 'colour'"),
    ],
)
def test_reconcile_rejects_bad_provider_specs(
    open_journal: tuple[str, FakeBank], spec: str, expected: str
) -> None:
    url, _ = open_journal
    result = _invoke("reconcile", "--journal", url, "--provider", spec)
    assert result.exit_code == 2
    assert expected in result.stderr


# -- status: breakers from a Redis state store -------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"


def _escaped(namespace: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in namespace)


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A namespace of this test's own (with a glob character in it, which a listing by SCAN
    must take literally); its keys, and only those, are deleted afterwards."""
    ns = f"pftest-cli-{uuid.uuid4().hex[:10]}?"
    yield ns
    admin = redis.Redis.from_url(REDIS_URL)
    for key in admin.scan_iter(match=f"{_escaped(ns[:-1])}*"):
        admin.delete(key)
    admin.close()


def result_rows(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)["breakers"]
    return rows


def _store_url(namespace: str) -> str:
    return f"{REDIS_URL}?namespace={quote(namespace)}"


def test_status_shows_breakers_from_a_redis_state_store(
    open_journal: tuple[str, FakeBank], redis_namespace: str
) -> None:
    url, _ = open_journal
    clock = ManualClock()
    # The toss breaker trips on refused connections, as a Router sharing Redis would see it.
    toss = FakeBank("toss", clock=clock)
    toss.refuse = True
    nice = FakeBank("nice", clock=clock)
    with (
        httpx.Client(transport=mock_transport(toss, nice)) as client,
        SQLiteJournal(":memory:", clock=clock) as journal,
        Router(
            [FakeProvider("toss"), FakeProvider("nice")],
            client=client,
            journal=journal,
            clock=clock,
            sleep=clock.sleep,
            state_store=_store_url(redis_namespace),
        ) as router,
    ):
        for n in range(4):
            card = [
                Instrument(provider=p, billing_key=SecretStr("bk-ok")) for p in ("toss", "nice")
            ]
            router.charge(Order(order_id=f"BRK-{n}", amount=Money(amount=1_000), name="tea"), card)
        assert [c.provider for c in router.available(Method.CARD)] == ["nice"]
    # Another namespace that an unescaped "?" in the SCAN pattern would match.
    with RedisStateStore.from_url(REDIS_URL, namespace=redis_namespace[:-1] + "x") as other:
        other.trip("portone:card", lease=None, base=60, growth=2, cap=300, memory=600, reason="x")

    result = _invoke(
        "status", "--journal", url, "--state-store", _store_url(redis_namespace), "--json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["state_store"], doc["namespace"]) == ("redis", redis_namespace)
    assert [(b["provider"], b["method"], b["state"], b["trips"]) for b in doc["breakers"]] == [
        ("toss", "card", "open", 1)
    ]
    assert doc["breakers"][0]["open_until"] is not None
    assert doc["breakers"][0]["open_seconds_left"] > 0
    assert doc["unresolved_attempts"] == 1, "the journal counts are still there"

    table = _invoke(
        "status", "--journal", url, env={"PAYFALLBACK_STATE_STORE": _store_url(redis_namespace)}
    )
    assert table.exit_code == 0, table.output
    assert f"breakers (Redis namespace {redis_namespace})" in table.stdout
    row = next(line for line in table.stdout.splitlines() if "toss" in line and "card" in line)
    assert "open" in row
    assert "(in " in row
    assert "unresolved CLI-1_1 at toss (unknown)" in table.stdout


def test_status_lists_closed_breakers_and_an_empty_namespace(
    open_journal: tuple[str, FakeBank], redis_namespace: str
) -> None:
    url, _ = open_journal
    store_url = _store_url(redis_namespace)
    empty = _invoke("status", "--journal", url, "--state-store", store_url)
    assert empty.exit_code == 0, empty.output
    assert f"none recorded in Redis namespace {redis_namespace!r}" in empty.stdout

    with RedisStateStore.from_url(REDIS_URL, namespace=redis_namespace) as store:
        for key in ("toss:card", "nice:kakaopay"):
            store.trip(key, lease=None, base=60, growth=2, cap=300, memory=600, reason="down")
        store.close("nice:kakaopay")
        listed = store.breakers()
    assert [(k, v.state, v.trips) for k, v in listed] == [
        ("nice:kakaopay", BreakerState.CLOSED, 1),
        ("toss:card", BreakerState.OPEN, 1),
    ]
    result = _invoke("status", "--journal", url, "--state-store", store_url, "--json")
    rows = [(b["provider"], b["method"], b["state"], b["open_until"]) for b in result_rows(result)]
    assert rows[0] == ("nice", "kakaopay", "closed", None)
    assert [(r[0], r[2]) for r in rows] == [("nice", "closed"), ("toss", "open")]


def test_status_without_a_state_store_says_where_breaker_state_lives(
    open_journal: tuple[str, FakeBank],
) -> None:
    url, _ = open_journal
    result = _invoke("status", "--journal", url)
    assert result.exit_code == 0, result.output
    assert "memory of each running process" in result.stdout
    doc = json.loads(_invoke("status", "--journal", url, "--json").stdout)
    assert (doc["state_store"], doc["breakers"]) == ("memory", None)


def test_status_with_redis_unreachable_fails_without_the_password(
    open_journal: tuple[str, FakeBank],
) -> None:
    url, _ = open_journal
    spec = "redis://:hunter2-secret@127.0.0.1:1/0?namespace=pftest-down"
    result = _invoke("status", "--journal", url, "--state-store", spec)
    assert result.exit_code == 1
    # Where, and why: host:port and the cause, not only the error's class.
    assert "cannot read breaker state from Redis at 127.0.0.1:1" in result.stderr
    assert "ConnectionError" in result.stderr
    assert "refused" in result.stderr.lower()
    assert "hunter2" not in result.output


def test_status_rejects_an_unknown_state_store(open_journal: tuple[str, FakeBank]) -> None:
    url, _ = open_journal
    result = _invoke("status", "--journal", url, "--state-store", "memcached://x")
    assert result.exit_code == 2
    assert "unknown state store URL 'memcached'" in result.stderr


# -- polish: version, help, --plot, status that creates nothing, settings, KST ----------------


def test_version() -> None:
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"payfallback {version('payfallback')}"


@pytest.mark.parametrize("command", ["simulate", "demo", "status", "reconcile"])
def test_help_fits_80_columns_without_value_placeholders_on_flags(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "<bool>" not in result.stdout
    flags = [line for line in lines if line.strip().startswith(("--json", "--quiet", "--help"))]
    assert flags
    for line in flags:
        assert line.split()[1][0].isupper(), line  # the help text follows the flag directly


def test_reconcile_help_shows_its_example_whole() -> None:
    result = CliRunner().invoke(app, ["reconcile", "--help"], terminal_width=80)
    assert "      --provider tosspayments:secret_key=env:TOSS_SECRET_KEY\n" in result.stdout


@pytest.mark.parametrize(
    ("plot", "expected"),
    [
        ("no-such-folder/chart.png", "no folder no-such-folder to write the chart into"),
        ("chart.txt", "the chart is a PNG; give a path ending in .png"),
    ],
)
def test_simulate_checks_the_plot_path_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plot: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _invoke(*SHORT, "--plot", plot)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "approval rate" not in result.stdout  # refused before simulating
    assert "seed" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_status_on_an_empty_sqlite_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    result = _invoke("status", "--journal", f"sqlite:///{empty}")
    assert result.exit_code == 1
    assert f"no journal at {empty}: it holds no payfallback tables" in result.stderr
    assert empty.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite3"]


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_schema_tables(schema: str) -> tuple[bool, int]:
    import psycopg  # noqa: PLC0415 - the optional 'postgres' extra

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        exists = found.fetchone() is not None
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    return exists, int(row[0]) if row else 0


def test_status_on_postgres_without_a_journal_creates_no_schema_or_table() -> None:
    import psycopg  # noqa: PLC0415 - same
    from psycopg import sql  # noqa: PLC0415 - same

    missing = f"pftest_cli_{uuid.uuid4().hex[:10]}"
    result = _invoke("status", "--journal", f"{PG_URL}?schema={missing}")
    assert result.exit_code == 1
    assert f"(schema {missing}): the schema does not exist" in result.stderr
    assert _pg_schema_tables(missing) == (False, 0)

    empty = f"pftest_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(empty)))
    try:
        result = _invoke("status", "--journal", f"{PG_URL}?schema={empty}", "--json")
        assert result.exit_code == 1
        assert "it holds no payfallback tables" in result.stderr
        assert result.stdout == ""  # no zeros that look like a healthy journal
        assert _pg_schema_tables(empty) == (True, 0)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(empty)))


def test_status_reads_a_postgres_journal_that_exists() -> None:
    from payfallback.journal.postgres import PostgresJournal  # noqa: PLC0415 - same

    schema = f"pftest_cli_{uuid.uuid4().hex[:10]}"
    with PostgresJournal(PG_URL, schema=schema, pool_size=1) as journal:
        journal.begin_attempt(
            Order(order_id="PG-1", amount=Money(amount=1_000), name="tea"),
            provider="toss",
            method=Method.CARD,
            operation="charge",
            idempotency_key="k-pg-1",
            lease_seconds=1,
        )
    import psycopg  # noqa: PLC0415 - same
    from psycopg import sql  # noqa: PLC0415 - same

    try:
        result = _invoke("status", "--journal", f"{PG_URL}?schema={schema}", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["orders"] == 1
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_reconcile_takes_providers_and_journal_from_a_settings_file(
    open_journal: tuple[str, FakeBank], tmp_path: Path
) -> None:
    url, toss = open_journal
    config = tmp_path / "payfallback.toml"
    with FakeServer(toss) as server:
        config.write_text(
            f'journal = "{url}"\n[providers.toss]\nadapter = "fake"\nname = "toss"\n'
            f'base_url = "{server.url}"\n',
            encoding="utf-8",
        )
        result = _invoke("reconcile", "--json", env={"PAYFALLBACK_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["paid"] == ["CLI-1_1"]
    status = _invoke("status", "--config", str(config), "--json")
    assert json.loads(status.stdout)["payments"] == 1


def test_reconcile_without_any_provider_says_how_to_give_one(
    open_journal: tuple[str, FakeBank],
) -> None:
    url, _ = open_journal
    result = _invoke("reconcile", "--journal", url)
    assert result.exit_code == 2
    assert "no provider to settle with: give --provider" in result.stderr


def test_demo_shows_the_shop_time_in_kst() -> None:
    result = _invoke("demo", "--payments", "12")
    assert result.exit_code == 0, result.output
    assert "Sat 15 Oct 2022, from 18:00 KST (Asia/Seoul)" in result.stdout
    times = [line.split()[0] for line in result.stdout.splitlines() if "breaker.opened" in line]
    assert times
    assert all(t.startswith("18:") for t in times)


@pytest.mark.parametrize(("text", "sandbox"), [("false", False), ("true", True), ("0", False)])
def test_provider_settings_on_the_command_line_are_converted_like_a_settings_files(
    text: str, sandbox: bool
) -> None:
    # "sandbox=false" must reach the adapter as False: bool("false") would be True and send
    # a live shop's reconciliation to the sandbox.
    nice = cli._provider(f"nicepay:client_key=S2_client,secret_key=S2_secret,sandbox={text}")
    assert nice.sandbox is sandbox  # type: ignore[attr-defined]


def test_a_provider_setting_of_the_wrong_kind_is_refused_by_name() -> None:
    with pytest.raises(typer.Exit):
        cli._provider("nicepay:client_key=S2_client,secret_key=S2_secret,sandbox=maybe")
