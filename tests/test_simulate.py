"""The outage simulator: scenarios and their validation, traffic, the clock, and the
figures a fixed seed produces on a short scenario."""

from __future__ import annotations

import itertools
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from payfallback.simulate import (
    STRATEGIES,
    ScenarioError,
    SimulationReport,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
    simulate,
)
from payfallback.simulate._clock import SimClock
from payfallback.simulate._engine import RUNS, customers_of
from payfallback.simulate._shop import CARD_PGS, SECRET, Shop
from payfallback.simulate._traffic import Intent, weight
from payfallback.testing import Fault

SEOUL = ZoneInfo("Asia/Seoul")

#: Saturday evening, three hours: Kakao Pay down, Naver Pay degraded alongside, and the
#: primary card PG losing answers after it charged for 45 minutes.
SHORT = """
name = "short-fire"
description = "Kakao Pay down for two hours at peak, Naver Pay and Toss Payments losing answers"
start = 2022-10-15T17:00:00
hours = 3

[traffic]
payments = 800

[[incident]]
label = "Kakao Pay down"
provider = "kakaopay"
start = 2022-10-15T17:30:00
hours = 2
faults = { connect_refused = 1.0 }

[[incident]]
label = "Naver Pay degraded"
provider = "naverpay"
start = 2022-10-15T17:30:00
hours = 2
latency_factor = 2.0
faults = { lost_response = 0.05, hang = 0.03, unavailable_503 = 0.04 }

[[incident]]
label = "Toss Payments losing answers"
provider = "tosspayments"
start = 2022-10-15T18:00:00
minutes = 45
faults = { lost_response = 0.2 }
"""


def _scenario(text: str = SHORT) -> Any:
    return parse_scenario(tomllib.loads(text), source="short.toml")


@pytest.fixture(scope="module")
def report() -> SimulationReport:
    return simulate(_scenario(), seed=7, workers=1)


# -- the figures of a fixed seed ---------------------------------------------------------------


def test_fixed_seed_approval_rates(report: SimulationReport) -> None:
    assert report.customers == 790
    assert report.baseline.approved == 769
    assert report.baseline.approval_rate == 0.9734
    rates = {k: (r.approved, r.approval_rate) for k, r in report.strategies.items()}
    assert rates == {
        "no_fallback": (540, 0.6835),
        "naive": (769, 0.9734),
        "payfallback": (769, 0.9734),
    }
    # The target the simulator exists to check: payfallback keeps 99 % of the sales.
    assert report.strategies["payfallback"].approval_vs_baseline == 1.0
    assert report.strategies["payfallback"].approval_vs_baseline >= 0.99


def test_fixed_seed_double_charges(report: SimulationReport) -> None:
    charged = {
        k: (r.double_charges, r.double_charged_krw, r.charged_not_recorded)
        for k, r in report.strategies.items()
    }
    assert charged == {
        # One try, no fallback: an answer lost after the charge is a sale the shop never
        # recorded, but nobody is charged twice.
        "no_fallback": (0, 0, 24),
        # Retried blindly, refused as a duplicate, sent on to pay again elsewhere.
        "naive": (34, 1_102_100, 0),
        "payfallback": (0, 0, 0),
    }
    naive = report.strategies["naive"]
    assert (naive.refunds_owed, naive.refunds_settled) == (34, 0)


def test_fixed_seed_breaker_trips(report: SimulationReport) -> None:
    trips = [
        (t.provider, t.opened_after_s, t.failed_calls_before_open)
        for t in report.strategies["payfallback"].breaker
    ]
    assert trips == [
        ("kakaopay", 15.8, 1),
        ("naverpay", 89.8, 1),
        ("tosspayments", 342.9, 4),
    ]
    # Hard down at peak: open within 5 failed calls or 10 s of the start.
    assert trips[0][2] <= 5
    assert report.strategies["naive"].breaker == ()


def test_fixed_seed_waits_and_lost_revenue(report: SimulationReport) -> None:
    waits = {
        k: (r.waited_over_5s, r.checkout_p50_s, r.checkout_p99_s, r.lost_revenue_krw)
        for k, r in report.strategies.items()
    }
    assert waits == {
        "no_fallback": (37, 0.501, 10.411, 7_701_800),
        "naive": (92, 0.749, 16.774, 0),
        "payfallback": (40, 0.571, 10.968, 0),
    }
    pf = report.strategies["payfallback"]
    assert (pf.pending_at_checkout, pf.unresolved, pf.failed) == (0, 0, 0)


def test_the_same_seed_gives_the_same_report(report: SimulationReport) -> None:
    again = simulate(_scenario(), seed=7, workers=1)
    assert again.figures() == report.figures()
    assert again == report


def test_another_seed_gives_other_traffic() -> None:
    scenario = _scenario()
    assert customers_of(scenario, 7) == customers_of(scenario, 7)
    assert customers_of(scenario, 7) != customers_of(scenario, 8)


def test_worker_processes_give_the_same_report(report: SimulationReport) -> None:
    # Forked workers where fork is safe, one run after another elsewhere: same report.
    assert simulate(_scenario(), seed=7, workers=2).figures() == report.figures()


def test_report_document_has_stable_keys(report: SimulationReport) -> None:
    doc = report.to_dict()
    assert list(doc) == [
        "scenario",
        "seed",
        "compensate",
        "customers",
        "baseline",
        "strategies",
        "timeline",
        "timing",
    ]
    assert list(doc["strategies"]) == list(STRATEGIES)
    assert set(doc["timeline"]["approval_rate"]) == set(RUNS)
    assert doc["scenario"]["start"] == "2022-10-15T17:00:00+09:00"
    assert len(doc["timeline"]["starts"]) == 36  # 3 hours in 5-minute buckets
    assert sum(doc["timeline"]["customers"]) == report.customers


def test_each_run_reports_its_wall_and_cpu_seconds(report: SimulationReport) -> None:
    timing = report.to_dict()["timing"]
    assert list(timing["runs"]) == list(RUNS)
    for run in RUNS:
        seconds = timing["runs"][run]
        assert set(seconds) == {"wall_s", "cpu_s"}
        assert seconds["wall_s"] > 0
        assert seconds["cpu_s"] > 0
    assert timing["workers"] == 1
    assert timing["wall_s"] >= sum(s["wall_s"] for s in timing["runs"].values())
    pf, naive = timing["runs"]["payfallback"], timing["runs"]["naive"]
    assert timing["payfallback_cpu_vs_naive"] == round(pf["cpu_s"] / naive["cpu_s"], 3)
    # Seconds are what this machine took, not figures of the scenario.
    assert "timing" not in report.figures()


# -- late commits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def late_report() -> SimulationReport:
    # The built-in scenario's first 2.5 hours: the card PG commits late for the last 30
    # minutes, with about 400 customers in all (half a second a run).
    scenario = load_scenario("late-commit").trimmed(2.5).with_payments(400)
    return simulate(scenario, seed=1, workers=1)


def test_late_commit_scenario_is_the_card_pg_committing_after_the_timeout() -> None:
    scenario = load_scenario("late-commit")
    (incident,) = scenario.incidents
    assert (incident.provider, incident.label) == ("tosspayments", "Toss Payments committing late")
    assert incident.faults == ((Fault.LATE_COMMIT, 0.2),)
    assert incident.operations == frozenset({"charge"})
    assert (incident.commit_delay, incident.lookup_lag) == (2.0, 10.0)
    assert incident.start == datetime(2022, 10, 14, 18, 0, tzinfo=SEOUL)
    assert incident.end - incident.start == timedelta(hours=2)


def test_late_commit_breaks_naive_failover_and_not_payfallback(
    late_report: SimulationReport,
) -> None:
    assert (late_report.customers, late_report.baseline.approved) == (390, 376)
    charged = {
        k: (r.double_charges, r.double_charged_krw, r.charged_not_recorded)
        for k, r in late_report.strategies.items()
        if k != "payfallback"
    }
    assert charged == {
        # The charge lands after the shop gave up on it: taken, never recorded.
        "no_fallback": (0, 0, 16),
        # Timed out, retried into 409 IN_PROGRESS or DUPLICATE_ORDER_REF, sent on to NICEPAY
        # while the first charge was still committing.
        "naive": (14, 469_000, 0),
    }
    naive = late_report.strategies["naive"]
    assert naive.double_charges > 0
    assert (naive.approved, naive.approval_vs_baseline) == (376, 1.0)
    assert (naive.refunds_owed, naive.refunds_owed_krw, naive.refunds_settled) == (14, 469_000, 0)
    # "Not found" right after a timeout is no proof: payfallback charges nobody twice.
    pf = late_report.strategies["payfallback"]
    assert pf.double_charges == 0
    assert (pf.double_charged_krw, pf.charged_not_recorded, pf.unresolved) == (0, 0, 0)
    assert pf.approval_vs_baseline >= 0.99
    [trip] = pf.breaker
    assert (trip.incident, trip.provider, trip.announced) == (
        "Toss Payments committing late",
        "tosspayments",
        False,
    )
    assert trip.failed_calls_before_open >= 1


def test_late_commit_report_document(late_report: SimulationReport) -> None:
    doc = late_report.to_dict()
    assert doc["scenario"]["name"] == "late-commit"
    assert doc["scenario"]["incidents"] == [
        {
            "label": "Toss Payments committing late",
            "provider": "tosspayments",
            "start": "2022-10-14T18:00:00+09:00",
            "end": "2022-10-14T20:00:00+09:00",
            "announced": False,
        }
    ]
    naive = doc["strategies"]["naive"]
    assert (naive["double_charges"], naive["double_charged_krw"]) == (14, 469_000)
    assert (naive["refunds_owed"], naive["refunds_settled"]) == (14, 0)


def test_late_commit_timings_follow_the_incident_that_struck() -> None:
    scenario = _scenario(
        _HEAD + '[[incident]]\nprovider = "tosspayments"\nstart = 2022-10-15T18:00:00\n'
        "minutes = 30\nfaults = { late_commit = 1.0 }\ncommit_delay = 1.0\nlookup_lag = 0.0\n"
        '[[incident]]\nprovider = "tosspayments"\nstart = 2022-10-15T18:30:00\n'
        "minutes = 30\nfaults = { late_commit = 1.0 }\n"
    )
    first, second = scenario.incidents
    assert (second.commit_delay, second.lookup_lag) == (2.0, 10.0), "the defaults"
    clock = SimClock(first.start)
    shop = Shop(clock, seed=1, incidents=scenario.incidents)
    bank = shop.banks["tosspayments"]
    body = {"billing_key": "bk-ok", "amount": 5_000, "currency": "KRW"}
    auth = {"authorization": f"Bearer {SECRET}"}
    timeout = httpx.Timeout(10.0)
    url = "https://tosspayments.fake.test"
    try:
        for n, incident in enumerate((first, second), start=1):
            clock.arrive(incident.start)
            with pytest.raises(httpx.ReadTimeout):
                shop.client.post(
                    f"{url}/v1/charges",
                    json={**body, "order_ref": f"A{n}_1"},
                    headers=auth,
                    timeout=timeout,
                )
            assert (bank.late_commit_delay, bank.lookup_lag) == (
                incident.commit_delay,
                incident.lookup_lag,
            )
            assert bank.pending_commits() == 1
            clock.advance(incident.commit_delay)
            assert bank.pending_commits() == 0
            lookup = shop.client.get(
                f"{url}/v1/payments", params={"order_ref": f"A{n}_1"}, headers=auth
            )
            assert lookup.status_code == (200 if incident.lookup_lag == 0 else 404)
        assert [(e.order_ref, e.status) for e in bank.ledger] == [
            ("A1_1", "paid"),
            ("A2_1", "paid"),
        ]
    finally:
        shop.close()


def test_progress_is_reported_for_every_run() -> None:
    seen: dict[str, tuple[int, int]] = {}

    def progress(run: str, done: int, total: int) -> None:
        seen[run] = (done, total)

    scenario = _scenario().trimmed(0.5)
    result = simulate(scenario, seed=7, workers=1, progress=progress)
    assert seen == dict.fromkeys(RUNS, (result.customers, result.customers))


# -- scenarios ---------------------------------------------------------------------------------


def test_builtin_scenarios_load() -> None:
    names = builtin_scenarios()
    assert set(names) == {
        "kakao-fire-2022",
        "peak-brownout",
        "late-commit",
        "flapping",
        "maintenance",
    }
    for name in names:
        assert load_scenario(name).name == name


def test_kakao_fire_is_the_weekend_of_the_fire() -> None:
    fire = load_scenario("kakao-fire-2022")
    kakao, naver = fire.incidents
    assert (kakao.provider, naver.provider) == ("kakaopay", "naverpay")
    assert kakao.start == datetime(2022, 10, 15, 15, 30, tzinfo=SEOUL)
    assert kakao.end - kakao.start == timedelta(hours=30)
    assert kakao.faults == ((Fault.CONNECT_REFUSED, 1.0),)
    assert round(fire.expected_payments()) == 20_000


def test_maintenance_is_announced() -> None:
    (window,) = load_scenario("maintenance").incidents
    assert window.announced
    assert window.faults == ((Fault.UNAVAILABLE_503, 1.0),)


def test_trimming_keeps_the_rate_and_payments_rescales() -> None:
    fire = load_scenario("kakao-fire-2022")
    short = fire.trimmed(3)
    assert short.end == fire.start + timedelta(hours=3)
    assert short.traffic.payments_per_hour == fire.traffic.payments_per_hour
    assert round(fire.with_payments(500).expected_payments()) == 500
    with pytest.raises(ScenarioError, match="--hours must be greater than 0"):
        fire.trimmed(0)


def test_a_scenario_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(SHORT, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "short-fire"
    # Local date-times are read in Asia/Seoul.
    assert scenario.start == datetime(2022, 10, 15, 8, 0, tzinfo=UTC)


def test_an_unknown_scenario_names_the_builtins() -> None:
    with pytest.raises(ScenarioError, match=r"no scenario 'nope'.*kakao-fire-2022"):
        load_scenario("nope")


def _invalid(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(tomllib.loads(text), source="bad.toml")
    return str(caught.value)


_HEAD = 'name = "x"\nstart = 2022-10-15T17:00:00\nhours = 3\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "faults = { hangs = 0.5 }",
            "  incident[0].faults.hangs: Input should be 'unavailable_503'",
        ),
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "faults = { hang = 0.7, lost_response = 0.5 }",
            "faults add up to 1.2 of requests; the shares must add up to at most 1",
        ),
        (
            '[[incident]]\nprovider = "kakao"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "faults = { hang = 0.5 }",
            "incident[0].provider: Input should be 'kakaopay', 'naverpay'",
        ),
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\n'
            "faults = { hang = 0.5 }",
            "exactly one of hours, minutes or end",
        ),
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "minutes = 30\nfaults = { hang = 0.5 }",
            "exactly one of hours, minutes or end (got hours, minutes)",
        ),
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1',
            "the incident does nothing",
        ),
        (
            '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            'faults = { hang = 1.0 }\noperations = ["charge", "refund"]',
            "incident[0].operations[1]",
        ),
        ("[traffic]\nmix = { kakaopay = 0.5, card = 0.4 }", "mix shares add up to 0.9"),
        ("[traffic]\npayments = 10\npayments_per_hour = 10", "payments or payments_per_hour"),
        ("[traffic]\npaymets = 10", "traffic.paymets: unknown key"),
        ("[latency]\nkakaopay = -1", "latency.kakaopay: Input should be greater than 0"),
        (
            '[[incident]]\nprovider = "nicepay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "faults = { hang = 0.5 }\nlookup_lag = 5",
            "late_commit is not among the faults, so lookup_lag would time nothing",
        ),
        (
            '[[incident]]\nprovider = "nicepay"\nstart = 2022-10-15T18:00:00\nhours = 1\n'
            "faults = { late_commit = 0.5 }\ncommit_delay = 5\nlookup_lag = 11",
            "commit_delay + lookup_lag is 16 s; the fake providers promise a 30 s settle "
            "window, so after a 15 s read timeout they must add up to at most 15 s",
        ),
    ],
)
def test_invalid_scenarios_say_where_and_what(body: str, expected: str) -> None:
    message = _invalid(_HEAD + body)
    assert message.startswith("bad.toml: invalid scenario")
    assert expected in message


def test_missing_keys_are_listed_together() -> None:
    message = _invalid('description = "no name, no window"')
    assert "(3 problems)" in message
    for key in ("name", "start", "hours"):
        assert f"  {key}: required key is missing" in message


def test_an_incident_outside_the_window_is_refused() -> None:
    message = _invalid(
        _HEAD + '[[incident]]\nprovider = "kakaopay"\nstart = 2022-10-16T18:00:00\nhours = 1\n'
        "faults = { hang = 0.5 }"
    )
    assert "incident[0]" in message
    assert "outside the scenario's window" in message


def test_a_bad_name_and_time_zone_are_refused() -> None:
    assert "name 'Fire!' must be 1-64 lowercase" in _invalid(
        'name = "Fire!"\nstart = 2022-10-15T17:00:00\nhours = 1'
    )
    assert "unknown time zone 'Mars/Olympus'" in _invalid(_HEAD + 'timezone = "Mars/Olympus"')


def test_toml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x\nhours = 3\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(path)


def test_announced_window_defaults_to_maintenance_answers() -> None:
    scenario = _scenario(
        _HEAD + '[[incident]]\nprovider = "naverpay"\nstart = 2022-10-15T18:00:00\n'
        "end = 2022-10-15T19:00:00\nannounced = true"
    )
    (window,) = scenario.incidents
    assert window.faults == ((Fault.UNAVAILABLE_503, 1.0),)
    assert window.end - window.start == timedelta(hours=1)


# -- traffic and the clock ---------------------------------------------------------------------


def test_evening_peak_on_friday_and_saturday() -> None:
    saturday_evening = weight(datetime(2022, 10, 15, 20, 0))
    tuesday_evening = weight(datetime(2022, 10, 11, 20, 0))
    tuesday_night = weight(datetime(2022, 10, 11, 4, 0))
    assert saturday_evening > 1.5 * tuesday_evening
    assert tuesday_evening > 10 * tuesday_night


def test_traffic_mix_and_intents() -> None:
    customers = customers_of(load_scenario("kakao-fire-2022").trimmed(24), 1)
    assert [c.index for c in customers] == list(range(len(customers)))
    assert all(a.arrival <= b.arrival for a, b in itertools.pairwise(customers))
    cards = [c for c in customers if c.pays_with == "card"]
    kakao = [c for c in customers if c.pays_with == "kakaopay"]
    assert 0.30 < len(cards) / len(customers) < 0.40
    assert 0.30 < len(kakao) / len(customers) < 0.40
    assert all(c.intent is not Intent.CANCEL for c in cards)
    assert all(c.intent in (Intent.PAY, Intent.CANCEL) for c in kakao)
    assert all(1_000 <= c.amount <= 2_000_000 and c.amount % 100 == 0 for c in customers)


def test_sim_clock_starts_each_customer_at_their_arrival() -> None:
    start = datetime(2022, 10, 15, 8, 0, tzinfo=UTC)
    clock = SimClock(start)
    clock.arrive(start + timedelta(seconds=10))
    assert (clock.now(), clock.monotonic()) == (start + timedelta(seconds=10), 10.0)
    clock.advance(30.0)  # a long checkout
    # The next customer arrived while it ran: their timeline starts at their arrival,
    # and the monotonic clock never goes back.
    clock.arrive(start + timedelta(seconds=20))
    assert (clock.now(), clock.monotonic()) == (start + timedelta(seconds=20), 40.0)
    clock.arrive(start + timedelta(seconds=50))
    assert clock.monotonic() == 70.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1.0)


_INICIS_KCP = """
name = "inicis-kcp"
description = "A shop on KG Inicis and NHN KCP: the primary loses answers"
start = 2022-10-15T17:00:00
hours = 3
card_pgs = ["inicis", "kcp"]

[traffic]
payments = 400
mix = { card = 1.0 }

[[incident]]
label = "KG Inicis losing answers"
provider = "inicis"
start = 2022-10-15T17:30:00
hours = 1
faults = { lost_response = 0.3, connect_refused = 0.2 }
"""


def test_a_shop_on_inicis_and_kcp_fails_over_without_charging_twice() -> None:
    scenario = _scenario(_INICIS_KCP)
    assert scenario.card_pgs == ("inicis", "kcp")
    report = simulate(scenario, seed=3, workers=1)
    ours = report.strategies["payfallback"]
    naive = report.strategies["naive"]
    # KG Inicis takes no idempotency key and has no void: a lost answer is settled by its
    # inquiry, never by sending the order to NHN KCP blindly.
    assert ours.double_charges == 0
    assert naive.double_charges > 0
    # A payment that never left is paid at NHN KCP instead.
    assert ours.approved > report.strategies["no_fallback"].approved


def test_card_pgs_are_the_shops_and_default_to_toss_payments_and_nicepay() -> None:
    assert _scenario().card_pgs == CARD_PGS == ("tosspayments", "nicepay")
    message = _invalid(_HEAD + 'card_pgs = ["inicis", "inicis"]')
    assert "names a PG twice" in message
    message = _invalid(
        _HEAD + 'card_pgs = ["kcp"]\n[[incident]]\nprovider = "nicepay"\n'
        "start = 2022-10-15T18:00:00\nhours = 1\nfaults = { hang = 0.5 }"
    )
    assert "incident at 'nicepay', which this shop does not use" in message
