"""The circuit breaker: trips, open time, half-open probes, peak and maintenance windows.

Every test moves a ManualClock by hand; nothing sleeps and nothing is timed.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
from dataclasses import astuple
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import payfallback.breaker as breaker_package
import payfallback.breaker._breaker as breaker_module
from payfallback._clock import ManualClock
from payfallback.breaker import (
    Admission,
    BreakerPolicy,
    BreakerRegistry,
    BreakerSettings,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    MaintenanceWindow,
    MemoryStateStore,
    PeakWindow,
    StateStore,
)
from payfallback.breaker._window import SlidingWindow, WindowStats, open_duration, trip_reason
from payfallback.models import Method

KST = ZoneInfo("Asia/Seoul")
#: Wednesday 12:00 KST: outside the default peak windows.
WEDNESDAY_NOON_KST = datetime(2024, 5, 15, 3, 0, tzinfo=UTC)

SETTINGS = BreakerSettings(
    window_seconds=60.0,
    minimum_calls=5,
    failure_rate_threshold=0.5,
    slow_call_duration=5.0,
    slow_call_rate_threshold=0.8,
    hard_failure_run=3,
    open_seconds=15.0,
    max_open_seconds=300.0,
    open_growth=2.0,
    trip_memory_seconds=600.0,
    half_open_probes=2,
    connect_timeout=3.0,
    read_timeout=15.0,
)
PEAK = dataclasses.replace(
    SETTINGS,
    window_seconds=30.0,
    minimum_calls=3,
    failure_rate_threshold=0.3,
    slow_call_duration=3.0,
    hard_failure_run=2,
    connect_timeout=2.0,
    read_timeout=10.0,
)
FRI_TO_SUN_EVENINGS_KST = PeakWindow(
    days=frozenset({4, 5, 6}), start=time(17), end=time(21), tz="Asia/Seoul"
)

Event = tuple[str, dict[str, object]]


class Recorder:
    """An ``on_transition`` listener that keeps what it hears."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, name: str, fields: dict[str, object]) -> None:
        self.events.append((name, fields))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def make_registry(
    clock: ManualClock,
    listener: Recorder | None = None,
    *,
    normal: BreakerSettings = SETTINGS,
    policy: BreakerPolicy | None = None,
    maintenance: tuple[MaintenanceWindow, ...] = (),
    store: StateStore | None = None,
) -> BreakerRegistry:
    return BreakerRegistry(
        policy=policy if policy is not None else BreakerPolicy(normal=normal),
        clock=clock,
        store=store if store is not None else MemoryStateStore(clock),
        maintenance=maintenance,
        on_transition=listener,
    )


def call(
    breaker: CircuitBreaker,
    clock: ManualClock,
    *,
    failure: bool = False,
    hard: bool = False,
    duration: float = 0.2,
    gap: float = 1.0,
) -> Admission:
    """One admitted call that takes ``gap`` seconds of clock time and reports ``duration``."""
    admission = breaker.admit()
    assert admission.allowed, admission.reason
    clock.advance(gap)
    breaker.record(admission, duration=duration, failure=failure, hard=hard)
    return admission


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (a call, so the type checker does not pin it)."""
    return breaker.state


def trip(breaker: CircuitBreaker, clock: ManualClock) -> None:
    for _ in range(SETTINGS.hard_failure_run):
        call(breaker, clock, failure=True, hard=True, gap=0.0)
    assert state(breaker) is BreakerState.OPEN


def half_open(breaker: CircuitBreaker, clock: ManualClock) -> None:
    """Let the current open period run out."""
    until = breaker.snapshot().open_until
    assert until is not None
    clock.advance((until - clock.now()).total_seconds())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY_NOON_KST)


@pytest.fixture
def events() -> Recorder:
    return Recorder()


@pytest.fixture
def breaker(clock: ManualClock, events: Recorder) -> CircuitBreaker:
    return make_registry(clock, events).get("kakaopay", "kakaopay")


# -- tripping -------------------------------------------------------------------------------


def test_opens_on_failure_rate_once_minimum_calls_are_seen(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    for failure in (False, False, True, True):
        call(breaker, clock, failure=failure)
    assert state(breaker) is BreakerState.CLOSED  # 50 % of 4 calls: below the minimum of 5

    call(breaker, clock, failure=True)

    assert state(breaker) is BreakerState.OPEN
    assert events.events == [
        (
            "breaker.opened",
            {
                "provider": "kakaopay",
                "method": "kakaopay",
                "reason": "failure rate 0.60 >= 0.50 over 5 calls",
                "open_seconds": 15.0,
                "trips": 1,
            },
        )
    ]
    denied = breaker.admit()
    assert not denied.allowed
    assert not denied.probe
    until = (clock.now() + timedelta(seconds=15)).isoformat(timespec="seconds")
    assert denied.reason == f"open until {until} (failure rate 0.60 >= 0.50 over 5 calls)"


def test_never_opens_before_minimum_calls_on_soft_failures(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    for _ in range(SETTINGS.minimum_calls - 1):
        call(breaker, clock, failure=True)
        assert state(breaker) is BreakerState.CLOSED
    assert breaker.snapshot().failure_rate == 1.0

    call(breaker, clock, failure=True)

    assert state(breaker) is BreakerState.OPEN


def test_opens_on_slow_call_rate(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    call(breaker, clock, duration=0.3)
    for _ in range(4):
        call(breaker, clock, duration=SETTINGS.slow_call_duration)  # the threshold is slow

    assert state(breaker) is BreakerState.OPEN
    assert events.events[-1][1]["reason"] == (
        "slow-call rate 0.80 >= 0.80 over 5 calls (slow = 5 s or more)"
    )


def test_calls_just_under_the_slow_duration_are_not_slow(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    for _ in range(10):
        call(breaker, clock, duration=SETTINGS.slow_call_duration - 0.01)

    snap = breaker.snapshot()
    assert (snap.state, snap.slow_rate, snap.calls) == (BreakerState.CLOSED, 0.0, 10)


def test_hard_failure_run_opens_before_minimum_calls(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    call(breaker, clock, failure=True, hard=True)
    call(breaker, clock, failure=True, hard=True)
    assert state(breaker) is BreakerState.CLOSED

    call(breaker, clock, failure=True, hard=True)

    assert state(breaker) is BreakerState.OPEN
    assert events.events[-1][1]["reason"] == "3 hard failures in a row"


def test_a_success_breaks_a_hard_run_and_a_soft_failure_does_not(clock: ManualClock) -> None:
    # A high minimum keeps the failure-rate rule out of the way.
    registry = make_registry(clock, normal=dataclasses.replace(SETTINGS, minimum_calls=50))
    breaker = registry.get("nicepay", "card")
    for failure, hard in [(True, True), (True, True), (False, False), (True, True)]:
        call(breaker, clock, failure=failure, hard=hard)
    assert state(breaker) is BreakerState.CLOSED  # the success reset the run

    call(breaker, clock, failure=True)  # a read timeout: soft, the run goes on
    call(breaker, clock, failure=True, hard=True)
    assert state(breaker) is BreakerState.CLOSED
    call(breaker, clock, failure=True, hard=True)

    assert state(breaker) is BreakerState.OPEN


def test_hard_failures_older_than_the_window_leave_the_run(clock: ManualClock) -> None:
    registry = make_registry(clock, normal=dataclasses.replace(SETTINGS, minimum_calls=50))
    breaker = registry.get("nicepay", "card")
    call(breaker, clock, failure=True, hard=True)
    call(breaker, clock, failure=True, hard=True)
    clock.advance(SETTINGS.window_seconds)

    call(breaker, clock, failure=True, hard=True)

    assert state(breaker) is BreakerState.CLOSED


def test_failures_slide_out_of_the_time_window(clock: ManualClock, breaker: CircuitBreaker) -> None:
    for _ in range(4):
        call(breaker, clock, failure=True)
    clock.advance(SETTINGS.window_seconds)

    call(breaker, clock, failure=True)
    for _ in range(4):
        call(breaker, clock)

    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.failure_rate) == (BreakerState.CLOSED, 5, 0.2)


def test_declines_are_successes_to_the_breaker(clock: ManualClock, breaker: CircuitBreaker) -> None:
    # The breaker has no notion of a decline: a provider that answered "card refused" answered,
    # and the caller records that as failure=False.
    assert list(inspect.signature(CircuitBreaker.record).parameters) == [
        "self",
        "admission",
        "duration",
        "failure",
        "hard",
    ]
    assert {f.name for f in dataclasses.fields(Admission)} == {
        "allowed",
        "reason",
        "probe",
        "settings",
        "key",
        "lease",
    }
    for _ in range(100):
        call(breaker, clock, failure=False, gap=0.1)

    snap = breaker.snapshot()
    assert (snap.state, snap.failure_rate, snap.calls) == (BreakerState.CLOSED, 0.0, 100)


def test_record_rejects_calls_it_cannot_have_seen(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    other = make_registry(clock).get("tosspayments", "card")
    admission = breaker.admit()
    with pytest.raises(ValueError, match="pass failure=True"):
        breaker.record(admission, duration=0.1, failure=False, hard=True)
    with pytest.raises(ValueError, match="duration must be"):
        breaker.record(admission, duration=-1.0, failure=False)
    with pytest.raises(ValueError, match="from breaker 'kakaopay:kakaopay'"):
        other.record(admission, duration=0.1, failure=True)
    trip(breaker, clock)
    denied = breaker.admit()
    with pytest.raises(ValueError, match="denied admission"):
        breaker.record(denied, duration=0.1, failure=True)


# -- open, half-open, closed ----------------------------------------------------------------


def test_half_open_admits_a_bounded_number_of_probes_then_closes(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    trip(breaker, clock)
    clock.advance(SETTINGS.open_seconds - 0.5)
    assert not breaker.admit().allowed
    clock.advance(0.5)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.is_available() == (True, None)

    first, second, third = breaker.admit(), breaker.admit(), breaker.admit()

    assert (first.allowed, first.probe, second.allowed, second.probe) == (True, True, True, True)
    assert (third.allowed, third.probe) == (False, False)
    assert third.reason == "half-open probe limit reached"
    assert breaker.is_available() == (False, "half-open probe limit reached")
    assert events.names == ["breaker.opened", "breaker.half_opened"]

    breaker.record(first, duration=0.2, failure=False)
    assert state(breaker) is BreakerState.HALF_OPEN  # one success of the two needed
    fourth = breaker.admit()  # the freed slot goes to the next call
    assert fourth.probe
    breaker.record(second, duration=0.2, failure=False)

    assert state(breaker) is BreakerState.CLOSED
    assert events.names == ["breaker.opened", "breaker.half_opened", "breaker.closed"]
    breaker.record(fourth, duration=9.0, failure=True)  # its half-open period is over
    assert state(breaker) is BreakerState.CLOSED
    after = breaker.admit()
    assert (after.allowed, after.probe) == (True, False)
    assert breaker.snapshot().calls == 0  # the window restarted when the breaker closed


def test_is_available_consumes_no_probe(clock: ManualClock, breaker: CircuitBreaker) -> None:
    trip(breaker, clock)
    half_open(breaker, clock)
    for _ in range(10):
        assert breaker.is_available() == (True, None)

    assert [breaker.admit().probe for _ in range(3)] == [True, True, False]


def test_a_failed_probe_reopens_for_longer_up_to_the_cap(clock: ManualClock) -> None:
    events = Recorder()
    capped = dataclasses.replace(SETTINGS, max_open_seconds=50.0)
    breaker = make_registry(clock, events, normal=capped).get("kakaopay", "kakaopay")
    trip(breaker, clock)

    for _ in range(3):
        half_open(breaker, clock)
        probe = breaker.admit()
        assert probe.probe
        breaker.record(probe, duration=0.1, failure=True)

    opened = [fields for name, fields in events.events if name == "breaker.opened"]
    assert [(f["trips"], f["open_seconds"]) for f in opened] == [
        (1, 15.0),
        (2, 30.0),
        (3, 50.0),
        (4, 50.0),
    ]
    assert [f["reason"] for f in opened[1:]] == ["probe failed"] * 3
    snap = breaker.snapshot()
    assert snap.open_until == clock.now() + timedelta(seconds=50)
    assert snap.trips == 4


def test_a_slow_probe_counts_as_failed(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    trip(breaker, clock)
    half_open(breaker, clock)
    probe = breaker.admit()

    breaker.record(probe, duration=6.0, failure=False)

    assert state(breaker) is BreakerState.OPEN
    assert events.events[-1][1]["reason"] == "probe slow (6.0 s >= 5 s)"


def test_open_time_decays_after_staying_closed_for_trip_memory(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    def close() -> None:
        half_open(breaker, clock)
        probes = [breaker.admit() for _ in range(SETTINGS.half_open_probes)]
        for probe in probes:
            breaker.record(probe, duration=0.1, failure=False)
        assert state(breaker) is BreakerState.CLOSED

    def last_open() -> tuple[object, object]:
        fields = [f for name, f in events.events if name == "breaker.opened"][-1]
        return fields["trips"], fields["open_seconds"]

    trip(breaker, clock)
    close()
    clock.advance(SETTINGS.trip_memory_seconds - 1)
    trip(breaker, clock)
    assert last_open() == (2, 30.0)  # closed too briefly: the trip counts as a repeat

    close()
    clock.advance(SETTINGS.trip_memory_seconds)
    trip(breaker, clock)
    assert last_open() == (1, 15.0)


def test_a_probe_that_is_never_recorded_gives_its_slot_back(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    trip(breaker, clock)
    half_open(breaker, clock)
    lost = [breaker.admit(), breaker.admit()]
    assert all(a.probe for a in lost)
    clock.advance(SETTINGS.connect_timeout + SETTINGS.read_timeout - 0.1)
    assert not breaker.admit().allowed

    clock.advance(0.1)

    assert breaker.admit().probe


def test_release_frees_a_probe_slot_at_once(clock: ManualClock, breaker: CircuitBreaker) -> None:
    trip(breaker, clock)
    half_open(breaker, clock)
    first, _ = breaker.admit(), breaker.admit()
    assert not breaker.admit().allowed

    breaker.release(first)

    assert breaker.admit().probe
    assert state(breaker) is BreakerState.HALF_OPEN  # a released probe is no verdict


def test_outcomes_of_calls_admitted_before_the_trip_are_ignored(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    in_flight = [breaker.admit() for _ in range(5)]
    trip(breaker, clock)

    for admission in in_flight:
        breaker.record(admission, duration=30.0, failure=True, hard=True)

    assert events.names == ["breaker.opened"]
    snap = breaker.snapshot()
    assert (snap.trips, snap.calls) == (1, 0)


def test_reset_closes_and_forgets_the_window(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    trip(breaker, clock)

    breaker.reset()

    snap = breaker.snapshot()
    assert (snap.state, snap.calls, snap.open_until, snap.reason) == (
        BreakerState.CLOSED,
        0,
        None,
        None,
    )
    assert events.names == ["breaker.opened", "breaker.closed"]


# -- peak hours -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "peak"),
    [
        (datetime(2024, 5, 17, 7, 59, tzinfo=UTC), False),  # Fri 16:59 KST
        (datetime(2024, 5, 17, 8, 0, tzinfo=UTC), True),  # Fri 17:00 KST
        (datetime(2024, 5, 17, 11, 59, 59, tzinfo=UTC), True),  # Fri 20:59:59 KST
        (datetime(2024, 5, 17, 12, 0, tzinfo=UTC), False),  # Fri 21:00 KST: end is exclusive
        (datetime(2024, 5, 16, 8, 0, tzinfo=UTC), False),  # Thu 17:00 KST
        (datetime(2024, 5, 19, 11, 0, tzinfo=UTC), True),  # Sun 20:00 KST
        (datetime(2024, 5, 19, 23, 0, tzinfo=UTC), False),  # Sunday in UTC, Mon 08:00 KST
        (datetime(2024, 5, 17, 17, 0, tzinfo=KST), True),  # the same instants given in KST
        (datetime(2024, 5, 17, 16, 59, tzinfo=KST), False),
    ],
)
def test_peak_settings_follow_the_window_in_its_own_zone(when: datetime, peak: bool) -> None:
    policy = BreakerPolicy(normal=SETTINGS, peak=PEAK, peak_windows=(FRI_TO_SUN_EVENINGS_KST,))

    assert policy.settings_at(when) is (PEAK if peak else SETTINGS)


def test_peak_day_of_week_is_the_local_day_not_the_utc_day() -> None:
    saturday_small_hours = PeakWindow(
        days=frozenset({5}), start=time(0), end=time(2), tz="Asia/Seoul"
    )

    assert saturday_small_hours.contains(datetime(2024, 5, 17, 15, 30, tzinfo=UTC))  # Fri in UTC
    assert not saturday_small_hours.contains(datetime(2024, 5, 18, 15, 30, tzinfo=UTC))  # Sat


def test_a_peak_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = PeakWindow(days=frozenset({4}), start=time(22), end=time(2), tz="Asia/Seoul")

    assert friday_night.contains(datetime(2024, 5, 17, 23, 0, tzinfo=KST))  # Fri 23:00
    assert friday_night.contains(datetime(2024, 5, 18, 1, 59, tzinfo=KST))  # Sat 01:59
    assert not friday_night.contains(datetime(2024, 5, 18, 2, 0, tzinfo=KST))  # Sat 02:00
    assert not friday_night.contains(datetime(2024, 5, 17, 1, 0, tzinfo=KST))  # Fri 01:00
    assert not friday_night.contains(datetime(2024, 5, 18, 23, 0, tzinfo=KST))  # Sat 23:00
    assert str(friday_night) == "Fri 22:00-02:00 Asia/Seoul"


def test_the_breaker_switches_to_peak_settings_at_the_edge(events: Recorder) -> None:
    clock = ManualClock(datetime(2024, 5, 17, 7, 59, 50, tzinfo=UTC))  # Friday 16:59:50 KST
    policy = BreakerPolicy(normal=SETTINGS, peak=PEAK, peak_windows=(FRI_TO_SUN_EVENINGS_KST,))
    registry = make_registry(clock, events, policy=policy)
    breaker = registry.get("tosspayments", "card")

    before = call(breaker, clock, failure=True, gap=4.0)
    call(breaker, clock, failure=True, gap=5.0)
    last = call(breaker, clock, failure=True, gap=0.0)  # 16:59:59 KST, 07:59:59 UTC
    assert before.settings is SETTINGS
    assert (last.settings.connect_timeout, last.settings.read_timeout) == (3.0, 15.0)
    assert state(breaker) is BreakerState.CLOSED  # 3 calls: under the normal minimum of 5

    clock.advance(1.0)  # Friday 17:00 KST
    assert registry.settings_now() is PEAK
    at_peak = call(breaker, clock, gap=0.0)

    assert (at_peak.settings.connect_timeout, at_peak.settings.read_timeout) == (2.0, 10.0)
    assert state(breaker) is BreakerState.OPEN
    assert events.events[-1][1]["reason"] == "failure rate 0.75 >= 0.30 over 4 calls"


def test_default_policy_has_a_stricter_kst_weekend_evening_peak() -> None:
    policy = BreakerPolicy.default()
    peak = policy.settings_at(datetime(2024, 5, 18, 18, 0, tzinfo=KST))  # Saturday
    normal = policy.settings_at(datetime(2024, 5, 15, 18, 0, tzinfo=KST))  # Wednesday

    assert peak is policy.peak
    assert normal is policy.normal
    assert peak.minimum_calls < normal.minimum_calls
    assert peak.failure_rate_threshold < normal.failure_rate_threshold
    assert peak.read_timeout < normal.read_timeout
    assert peak.connect_timeout < normal.connect_timeout


# -- maintenance ----------------------------------------------------------------------------


def test_maintenance_window_denies_every_method_of_the_provider_with_its_reason(
    clock: ManualClock, events: Recorder
) -> None:
    start = clock.now() + timedelta(hours=1)
    window = MaintenanceWindow(
        provider="kakaopay",
        start=start,
        end=start + timedelta(hours=2),
        reason="announced maintenance",
    )
    registry = make_registry(clock, events, maintenance=(window,))
    wallet, card = registry.get("kakaopay", "kakaopay"), registry.get("kakaopay", "card")
    other = registry.get("tosspayments", "card")
    assert wallet.admit().allowed

    clock.advance(3600)
    denied = wallet.admit()

    assert not denied.allowed
    assert denied.reason == "maintenance until 2024-05-15T06:00+00:00 (announced maintenance)"
    assert not card.admit().allowed
    assert other.admit().allowed
    assert registry.is_available("kakaopay", "kakaopay") == (False, denied.reason)
    assert state(wallet) is BreakerState.CLOSED  # maintenance is not a failure
    assert events.events == []

    clock.advance(7200)
    assert wallet.admit().allowed


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (datetime(2024, 5, 15, 3), datetime(2024, 5, 15, 5, tzinfo=UTC), "aware datetime"),
        (datetime(2024, 5, 15, 5, tzinfo=UTC), datetime(2024, 5, 15, 3, tzinfo=UTC), "ends"),
    ],
)
def test_maintenance_window_is_validated(start: datetime, end: datetime, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MaintenanceWindow(provider="kakaopay", start=start, end=end)


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window_seconds": 0.0}, "window_seconds"),
        ({"window_seconds": float("inf")}, "window_seconds"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"minimum_calls": 2.5}, "minimum_calls"),
        ({"minimum_calls": True}, "minimum_calls"),
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"slow_call_rate_threshold": float("nan")}, "slow_call_rate_threshold"),
        ({"hard_failure_run": 0}, "hard_failure_run"),
        ({"open_growth": 0.5}, "open_growth"),
        ({"max_open_seconds": 10.0}, "max_open_seconds"),
        ({"trip_memory_seconds": -1.0}, "trip_memory_seconds"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"read_timeout": 0}, "read_timeout"),
    ],
)
def test_settings_are_validated(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"BreakerSettings\.{field}"):
        dataclasses.replace(SETTINGS, **changes)  # type: ignore[arg-type]


def test_settings_are_frozen_and_default_to_the_documented_values() -> None:
    assert BreakerSettings() == SETTINGS
    with pytest.raises(dataclasses.FrozenInstanceError):
        SETTINGS.minimum_calls = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"days": frozenset({7}), "start": time(17), "end": time(21)}, "weekday numbers"),
        ({"days": frozenset(), "start": time(17), "end": time(21)}, "weekday numbers"),
        ({"days": frozenset({4}), "start": time(17), "end": time(17)}, "needs a length"),
        ({"days": frozenset({4}), "start": time(17, tzinfo=UTC), "end": time(21)}, "naive"),
        (
            {"days": frozenset({4}), "start": time(17), "end": time(21), "tz": "Asia/Busan"},
            "unknown time zone 'Asia/Busan'",
        ),
    ],
)
def test_peak_window_is_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PeakWindow(**kwargs)  # type: ignore[arg-type]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="no peak settings"):
        BreakerPolicy(normal=SETTINGS, peak_windows=(FRI_TO_SUN_EVENINGS_KST,))
    with pytest.raises(ValueError, match="aware datetime"):
        BreakerPolicy.default().settings_at(datetime(2024, 5, 17, 17))


# -- registry, snapshots, listeners, threads ------------------------------------------------


def test_registry_hands_out_one_breaker_per_provider_and_method(clock: ManualClock) -> None:
    registry = make_registry(clock)

    wallet = registry.get("kakaopay", "kakaopay")

    assert registry.get("kakaopay", Method.KAKAOPAY) is wallet
    assert registry.get("kakaopay", "card") is not wallet
    assert wallet.key == "kakaopay:kakaopay"
    with pytest.raises(ValueError, match="without ':'"):
        registry.get("kakao:pay", "card")


def test_snapshot_reports_every_breaker(clock: ManualClock) -> None:
    registry = make_registry(clock)
    toss, kakao = registry.get("tosspayments", "card"), registry.get("kakaopay", "kakaopay")
    call(toss, clock, failure=True)
    call(toss, clock)
    trip(kakao, clock)

    snapshots = registry.snapshot()

    assert snapshots == [
        BreakerSnapshot(
            provider="kakaopay",
            method="kakaopay",
            state=BreakerState.OPEN,
            failure_rate=0.0,
            slow_rate=0.0,
            calls=0,
            open_until=clock.now() + timedelta(seconds=15),
            trips=1,
            reason="3 hard failures in a row",
        ),
        BreakerSnapshot(
            provider="tosspayments",
            method="card",
            state=BreakerState.CLOSED,
            failure_rate=0.5,
            slow_rate=0.0,
            calls=2,
            open_until=None,
            trips=0,
        ),
    ]


def test_breakers_sharing_a_store_share_the_open_state(clock: ManualClock) -> None:
    store = MemoryStateStore(clock)
    seen_by_b = Recorder()
    a = make_registry(clock, store=store).get("kakaopay", "kakaopay")
    b = make_registry(clock, seen_by_b, store=store).get("kakaopay", "kakaopay")

    trip(a, clock)

    denied = b.admit()
    assert not denied.allowed
    assert denied.reason is not None
    assert denied.reason.endswith("(3 hard failures in a row)")
    assert seen_by_b.names == ["breaker.opened"]


def test_a_failing_listener_never_breaks_a_call(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(name: str, fields: dict[str, object]) -> None:
        raise RuntimeError("metrics backend down")

    breaker = BreakerRegistry(
        policy=BreakerPolicy(normal=SETTINGS), clock=clock, on_transition=broken
    ).get("kakaopay", "kakaopay")

    with caplog.at_level(logging.ERROR, logger="payfallback.breaker"):
        trip(breaker, clock)

    assert state(breaker) is BreakerState.OPEN
    assert "breaker listener failed on breaker.opened for kakaopay:kakaopay" in caplog.text


def test_listeners_run_outside_the_lock(clock: ManualClock) -> None:
    seen: list[BreakerState] = []
    registry: BreakerRegistry

    def listener(name: str, fields: dict[str, object]) -> None:
        # Reads the breaker again: this would deadlock if the breaker's lock were held.
        seen.append(registry.get("kakaopay", "kakaopay").state)

    registry = BreakerRegistry(
        policy=BreakerPolicy(normal=SETTINGS), clock=clock, on_transition=listener
    )
    worker = threading.Thread(target=trip, args=(registry.get("kakaopay", "kakaopay"), clock))
    worker.start()
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert seen == [BreakerState.OPEN]


def test_no_lock_is_held_between_admit_and_record(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    pending = breaker.admit()  # the provider call for this one is "in progress"
    finished: list[bool] = []

    def other_payment() -> None:
        admission = breaker.admit()
        breaker.record(admission, duration=0.1, failure=False)
        finished.append(admission.allowed)

    worker = threading.Thread(target=other_payment)
    worker.start()
    worker.join(timeout=30)
    breaker.record(pending, duration=0.1, failure=False)

    assert finished == [True]
    assert breaker.snapshot().calls == 2


def test_threads_racing_for_probes_get_no_more_than_the_limit(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    trip(breaker, clock)
    half_open(breaker, clock)
    threads = 16
    start = threading.Barrier(threads)
    admissions: list[Admission] = []
    lock = threading.Lock()

    def contend() -> None:
        start.wait(timeout=30)
        admission = breaker.admit()
        with lock:
            admissions.append(admission)

    workers = [threading.Thread(target=contend) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert len(admissions) == threads
    assert sum(a.probe for a in admissions) == SETTINGS.half_open_probes
    assert all(a.probe == a.allowed for a in admissions)


def test_bypass_takes_no_probe_and_counts_only_while_closed(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    lookup = breaker.bypass()
    breaker.record(lookup, duration=0.1, failure=True)
    assert breaker.snapshot().calls == 1

    trip(breaker, clock)
    half_open(breaker, clock)
    inquiries = [breaker.bypass() for _ in range(5)]

    assert all(a.allowed and not a.probe for a in inquiries)
    for inquiry in inquiries:
        breaker.record(inquiry, duration=0.1, failure=True)
    assert [breaker.admit().probe for _ in range(3)] == [True, True, False]


def test_public_names_are_sorted_and_importable() -> None:
    assert breaker_package.__all__ == sorted(breaker_package.__all__)
    assert all(hasattr(breaker_package, name) for name in breaker_package.__all__)


# -- the store on its own -------------------------------------------------------------------


def test_memory_store_transitions(clock: ManualClock) -> None:
    store: StateStore = MemoryStateStore(clock)
    kw = {"base": 10.0, "growth": 2.0, "cap": 100.0, "memory": 60.0}

    opened = store.trip("p:m", lease=None, reason="r", **kw)
    again = store.trip("p:m", lease=None, reason="r", **kw)  # a racing process: no second trip
    assert (opened.state, opened.trips, opened.open_until) == (BreakerState.OPEN, 1, 1010.0)
    assert again == opened

    assert store.acquire_probe("p:m", limit=1, ttl=5.0).lease is None  # still open
    clock.advance(10)
    grant = store.acquire_probe("p:m", limit=1, ttl=5.0)
    assert grant.lease is not None
    assert (grant.view.state, grant.view.probes) == (BreakerState.HALF_OPEN, 1)
    assert store.acquire_probe("p:m", limit=1, ttl=5.0).lease is None
    assert store.trip("p:m", lease="not-a-lease", reason="r", **kw).state is BreakerState.HALF_OPEN

    still = store.probe_succeeded("p:m", grant.lease, needed=2)
    twice = store.probe_succeeded("p:m", grant.lease, needed=2)  # recorded twice: counts once
    assert (still.state, still.successes, still.probes) == (BreakerState.HALF_OPEN, 1, 0)
    assert twice == still

    second = store.acquire_probe("p:m", limit=1, ttl=5.0)
    assert second.lease is not None
    reopened = store.trip("p:m", lease=second.lease, reason="probe failed", **kw)
    assert (reopened.state, reopened.trips, reopened.open_seconds) == (BreakerState.OPEN, 2, 20.0)
    assert reopened.successes == 0

    closed = store.close("p:m")
    assert (closed.state, closed.trips, closed.open_until) == (BreakerState.CLOSED, 2, None)
    assert store.view("never:seen").version == 0


def test_sliding_window_counts_only_the_span_asked_for() -> None:
    window = SlidingWindow(resolution=1.0, retention=60.0)
    window.add(100.0, failure=True, slow=False)
    window.add(130.0, failure=False, slow=True)
    window.add(150.0, failure=False, slow=False)

    assert window.stats(150.5, 60.0) == WindowStats(calls=3, failures=1, slow=1)
    assert window.stats(150.5, 30.0) == WindowStats(calls=2, failures=0, slow=1)
    assert window.stats(170.5, 60.0) == WindowStats(calls=2, failures=0, slow=1)


def test_trip_reason_and_open_duration() -> None:
    assert trip_reason(WindowStats(calls=4, failures=4), 0, SETTINGS) is None
    assert trip_reason(WindowStats(calls=4, failures=4), 3, SETTINGS) == "3 hard failures in a row"
    assert trip_reason(WindowStats(calls=10, failures=4, slow=7), 0, SETTINGS) is None
    assert open_duration(1, base=15, growth=2, cap=300) == 15
    assert open_duration(5, base=15, growth=2, cap=300) == 240
    assert open_duration(6, base=15, growth=2, cap=300) == 300
    assert open_duration(5000, base=15, growth=2, cap=300) == 300  # no float overflow
    assert open_duration(9, base=15, growth=1, cap=300) == 15


# -- properties -----------------------------------------------------------------------------


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.just(0), st.just(0.0)),
        st.tuples(st.just("record"), st.integers(0, 20), st.sampled_from([0.1, 6.0, -1.0])),
        st.tuples(st.just("release"), st.integers(0, 20), st.just(0.0)),
        st.tuples(st.just("wait"), st.just(0), st.floats(0.0, 40.0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(limit=st.integers(1, 4), ops=_ops)
def test_property_never_more_live_probes_than_the_limit(
    limit: int, ops: list[tuple[str, int, float]]
) -> None:
    # Open time (30 s) outlasts a probe's lease (18 s): a live probe always belongs to the
    # current half-open period.
    tuned = dataclasses.replace(SETTINGS, half_open_probes=limit, open_seconds=30.0)
    clock = ManualClock(WEDNESDAY_NOON_KST)
    store = MemoryStateStore(clock)
    breaker = make_registry(clock, normal=tuned, store=store).get("kakaopay", "kakaopay")
    trip(breaker, clock)
    pending: list[tuple[Admission, float]] = []

    for op, index, value in ops:
        if op == "admit":
            admission = breaker.admit()
            if admission.allowed:
                pending.append((admission, clock.monotonic()))
        elif op == "wait":
            clock.advance(value)
        elif pending:
            admission, _ = pending.pop(index % len(pending))
            if op == "release":
                breaker.release(admission)
            else:  # duration 6.0 is a slow success, -1.0 stands for a failure
                breaker.record(admission, duration=max(value, 0.1), failure=value < 0)
        now = clock.monotonic()
        live = [a for a, at in pending if a.probe and now < at + tuned.probe_ttl]
        assert len(live) <= limit
        assert store.view(breaker.key).probes <= limit


_outcomes = st.lists(
    st.tuples(
        st.sampled_from(["ok", "slow", "fail", "hard"]),
        st.floats(0.0, 4.0),  # gap before the next call: all calls stay inside the window
    ),
    max_size=14,
)


@settings(max_examples=300, deadline=None)
@given(outcomes=_outcomes, minimum=st.integers(2, 12))
def test_property_opens_exactly_when_a_rule_says_so(
    outcomes: list[tuple[str, float]], minimum: int
) -> None:
    tuned = dataclasses.replace(SETTINGS, minimum_calls=minimum)
    clock = ManualClock(WEDNESDAY_NOON_KST)
    breaker = make_registry(clock, normal=tuned).get("kakaopay", "kakaopay")
    failures = slow = run = 0

    for calls, (kind, gap) in enumerate(outcomes, start=1):
        admission = breaker.admit()
        assert admission.allowed
        breaker.record(
            admission,
            duration=6.0 if kind == "slow" else 0.1,
            failure=kind in ("fail", "hard"),
            hard=kind == "hard",
        )
        failures += kind in ("fail", "hard")
        slow += kind == "slow"
        run = run + 1 if kind == "hard" else 0 if kind in ("ok", "slow") else run
        should_open = run >= tuned.hard_failure_run or (
            calls >= minimum
            and (
                failures / calls >= tuned.failure_rate_threshold
                or slow / calls >= tuned.slow_call_rate_threshold
            )
        )
        assert (state(breaker) is BreakerState.OPEN) == should_open
        if should_open:
            # Never before the minimum, unless a run of hard failures.
            assert calls >= minimum or run >= tuned.hard_failure_run
            break
        clock.advance(gap)


# -- the fast path: cached settings, running totals, lock-free successes -----------------------


class CountingClock(ManualClock):
    """A ManualClock that counts how often the wall clock is read."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.wall_reads = 0

    def now(self) -> datetime:
        self.wall_reads += 1
        return super().now()


def test_settings_switch_exactly_at_the_peak_edges_however_the_clock_gets_there() -> None:
    clock = CountingClock(datetime(2024, 5, 17, 7, 59, 59, tzinfo=UTC))  # Fri 16:59:59 KST
    policy = BreakerPolicy(normal=SETTINGS, peak=PEAK, peak_windows=(FRI_TO_SUN_EVENINGS_KST,))
    breaker = make_registry(clock, policy=policy).get("tosspayments", "card")

    seen = []
    for _ in range(4):  # 16:59:59.00, .25, .50, .75
        seen.append(breaker.admit().settings)
        clock.advance(0.25)
    assert seen == [SETTINGS] * 4
    assert breaker.admit().settings is PEAK  # 17:00:00.000 KST
    assert breaker.bypass().settings is PEAK

    clock.advance(4 * 3600 - 0.001)  # 20:59:59.999 KST
    assert breaker.admit().settings is PEAK
    clock.advance(0.001)  # 21:00 KST: the end is exclusive
    assert breaker.admit().settings is SETTINGS
    assert breaker.is_available() == (True, None)


def test_the_wall_clock_is_read_about_once_a_second_not_on_every_call() -> None:
    clock = CountingClock(WEDNESDAY_NOON_KST)
    policy = BreakerPolicy(normal=SETTINGS, peak=PEAK, peak_windows=(FRI_TO_SUN_EVENINGS_KST,))
    breaker = make_registry(clock, policy=policy).get("tosspayments", "card")

    for _ in range(1000):  # 1000 calls over 10 seconds
        call(breaker, clock, gap=0.01)

    assert clock.wall_reads <= 11
    assert breaker.snapshot().calls == 1000


def test_maintenance_starts_and_ends_exactly_on_its_edges() -> None:
    clock = ManualClock(WEDNESDAY_NOON_KST)
    start = clock.now() + timedelta(seconds=10)
    window = MaintenanceWindow(provider="kakaopay", start=start, end=start + timedelta(hours=1))
    breaker = make_registry(clock, maintenance=(window,)).get("kakaopay", "card")

    assert breaker.admit().allowed  # primes what is in force at 12:00:00
    clock.advance(10 - 0.001)
    assert breaker.admit().allowed
    clock.advance(0.001)
    denied = breaker.admit()
    assert not denied.allowed
    assert denied.reason == "maintenance until 2024-05-15T04:00+00:00 (announced maintenance)"
    clock.advance(3600 - 0.001)
    assert not breaker.admit().allowed
    assert breaker.bypass().allowed  # inquiries still go through
    clock.advance(0.001)
    assert breaker.admit().allowed


@pytest.mark.parametrize(
    ("when", "edge"),
    [
        # Wednesday noon KST: the next edge is 17:00 KST that day (edges of every day count).
        (datetime(2024, 5, 15, 12, 0, tzinfo=KST), datetime(2024, 5, 15, 17, 0, tzinfo=KST)),
        (datetime(2024, 5, 17, 16, 59, 59, tzinfo=KST), datetime(2024, 5, 17, 17, tzinfo=KST)),
        (datetime(2024, 5, 17, 17, 0, tzinfo=KST), datetime(2024, 5, 17, 21, tzinfo=KST)),
        (datetime(2024, 5, 17, 21, 0, tzinfo=KST), datetime(2024, 5, 18, 17, tzinfo=KST)),
    ],
)
def test_next_edge_is_the_next_start_or_end_in_the_windows_zone(
    when: datetime, edge: datetime
) -> None:
    assert FRI_TO_SUN_EVENINGS_KST.next_edge(when) == edge


def test_next_edge_steps_by_the_second_across_a_clock_change_on_an_edge() -> None:
    # Berlin springs forward from 02:00 to 03:00 on 2024-03-31: 02:30 never happens there, and
    # the window's answer changes at the clock change (01:00 UTC) instead.
    berlin = PeakWindow(days=frozenset({6}), start=time(2, 30), end=time(4), tz="Europe/Berlin")
    before = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)  # 01:30 CET: the gap's readings are ahead
    inside = datetime(2024, 3, 31, 0, 59, 59, 500000, tzinfo=UTC)

    assert berlin.next_edge(before) == datetime(2024, 3, 31, 0, 30, 1, tzinfo=UTC)
    assert berlin.next_edge(inside) == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert not berlin.contains(inside)
    assert berlin.contains(datetime(2024, 3, 31, 1, 0, tzinfo=UTC))  # 03:00 CEST


#: Clock changes in the zones below (UTC): the instants where a window's edges get moved or
#: repeated.
_CLOCK_CHANGES = (
    datetime(2024, 3, 31, 1, 0, tzinfo=UTC),  # Berlin, forward
    datetime(2024, 10, 27, 1, 0, tzinfo=UTC),  # Berlin, back
    datetime(2024, 3, 10, 7, 0, tzinfo=UTC),  # New York, forward
    datetime(2024, 11, 3, 6, 0, tzinfo=UTC),  # New York, back
    datetime(2024, 4, 6, 15, 0, tzinfo=UTC),  # Lord Howe, back half an hour
    datetime(2024, 10, 5, 15, 30, tzinfo=UTC),  # Lord Howe, forward half an hour
)


@settings(max_examples=200, deadline=None)
@given(
    tz=st.sampled_from(["Asia/Seoul", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.integers(0, 24 * 4 - 1),
    length=st.integers(1, 24 * 4 - 1),
    at=st.one_of(
        st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
        ),
        st.builds(
            lambda change, minutes: change + timedelta(minutes=minutes),
            st.sampled_from(_CLOCK_CHANGES),
            st.floats(-24 * 60, 24 * 60),
        ),
    ),
)
def test_property_a_peak_window_answers_the_same_until_its_next_edge(
    tz: str, days: frozenset[int], start: int, length: int, at: datetime
) -> None:
    def quarter(q: int) -> time:
        return time((q % 96) // 4, (q % 4) * 15)

    window = PeakWindow(days=days, start=quarter(start), end=quarter(start + length), tz=tz)
    edge = window.next_edge(at)
    # At most a local day ahead: 25 hours across a fall-back clock change.
    assert at < edge <= at + timedelta(days=1, hours=1)
    answer = window.contains(at)
    probe = at
    while probe < edge:  # every minute up to the edge, and its last microsecond
        assert window.contains(probe) == answer, probe
        probe += timedelta(minutes=1)
    assert window.contains(edge - timedelta(microseconds=1)) == answer


#: (operation, seconds, failure, slow): count a success (lock-free when it may), count an
#: outcome, let time pass (within a bucket or two, or past most of the window), read another
#: span, or forget everything.
_window_ops = st.lists(
    st.tuples(
        st.sampled_from(["tick", "add", "wait", "jump", "span", "clear"]),
        st.floats(0.0, 3.0),
        st.booleans(),
        st.booleans(),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops=_window_ops, start=st.floats(0.0, 1e6))
def test_property_running_totals_equal_a_full_recount(
    ops: list[tuple[str, float, bool, bool]], start: float
) -> None:
    resolution = 0.5
    window = SlidingWindow(resolution=resolution, retention=60.0)
    now, span = start, 60.0
    seen: list[tuple[int, bool, bool]] = []  # (bucket, failure, slow) of every counted call

    def recount(at: float, over: float) -> WindowStats:
        last = int(at // resolution)
        first = last - round(over / resolution) + 1
        kept = [(f, s) for i, f, s in seen if first <= i <= last]
        return WindowStats(
            calls=len(kept), failures=sum(f for f, _ in kept), slow=sum(s for _, s in kept)
        )

    for op, seconds, failed, was_slow in ops:
        if op == "tick" and now < window.next_bucket_at:
            window.tick()  # lock-free: a success in the newest bucket
            seen.append((int(now // resolution), False, False))
        elif op in ("tick", "add"):
            failure, slow = (failed, was_slow) if op == "add" else (False, False)
            window.add(now, failure=failure, slow=slow)
            seen.append((int(now // resolution), failure, slow))
        elif op == "wait":
            now += seconds
        elif op == "jump":
            now += 20 * seconds + 10
        elif op == "span":
            span = 30.0 if failed else 60.0
        else:
            window.clear()
            seen.clear()
        assert window.stats(now, span) == recount(now, span)
        assert (window.calls, window.failures, window.slow) == astuple(recount(now, span))
    for other in (30.0, 60.0):
        assert window.stats(now, other) == recount(now, other)


@pytest.mark.parametrize("lock_free", [True, False])
@settings(max_examples=100, deadline=None)
@given(
    outcomes=st.lists(
        st.tuples(st.sampled_from(["ok", "ok", "ok", "slow", "fail"]), st.floats(0.0, 8.0)),
        max_size=80,
    )
)
def test_property_the_breaker_counts_what_a_recount_of_its_calls_gives(
    lock_free: bool, outcomes: list[tuple[str, float]]
) -> None:
    # Thresholds no mix of outcomes can reach, so every call stays in one closed period.
    tuned = dataclasses.replace(
        SETTINGS,
        minimum_calls=10_000,
        slow_call_rate_threshold=1.0,
        failure_rate_threshold=1.0,
    )
    clock = ManualClock(WEDNESDAY_NOON_KST)
    breaker = make_registry(clock, normal=tuned).get("kakaopay", "card")
    resolution = tuned.window_seconds / 60  # the window's buckets: 60 per window
    calls: list[tuple[float, str]] = []

    with pytest.MonkeyPatch.context() as patch:
        # Whether successes may be counted without the lock (False on free-threaded builds).
        patch.setattr(breaker_module, "_LOCK_FREE", lock_free)
        for kind, gap in outcomes:
            call(
                breaker,
                clock,
                failure=kind == "fail",
                duration=6.0 if kind == "slow" else 0.1,
                gap=gap,
            )
            calls.append((clock.monotonic(), kind))
            last = int(clock.monotonic() // resolution)
            recent = [k for t, k in calls if int(t // resolution) > last - 60]
            snap = breaker.snapshot()
            assert snap.calls == len(recent)
            assert snap.failure_rate == recent.count("fail") / len(recent)
            assert snap.slow_rate == recent.count("slow") / len(recent)


def test_successes_from_many_threads_are_all_counted(
    clock: ManualClock, breaker: CircuitBreaker
) -> None:
    threads, each = 8, 5000
    start = threading.Barrier(threads)

    def succeed() -> None:
        start.wait(timeout=30)
        for _ in range(each):
            admission = breaker.admit()
            breaker.record(admission, duration=0.01, failure=False)

    workers = [threading.Thread(target=succeed) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert breaker.snapshot().calls == threads * each


def test_a_success_after_failures_still_trips_on_the_rate(
    clock: ManualClock, events: Recorder, breaker: CircuitBreaker
) -> None:
    # Four failures fall short of the minimum of five calls; the fifth call, a success, makes
    # the rate count (4/5 >= 0.5): a success must not slip past the rules.
    for _ in range(4):
        call(breaker, clock, failure=True)
    assert state(breaker) is BreakerState.CLOSED

    call(breaker, clock)

    assert state(breaker) is BreakerState.OPEN
    assert events.events[-1][1]["reason"] == "failure rate 0.80 >= 0.50 over 5 calls"
