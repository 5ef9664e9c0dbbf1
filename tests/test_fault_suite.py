"""The fault suite: real adapters against an emulated provider ledger (tests/fault_emulator.py).

The long campaign (≥ 10,000 schedules) is ``python -m tests.fault_campaign --schedules
10000 --seed 1``; here hypothesis draws a few hundred schedules of the same runner, and the
two fire-night reproductions run in full.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fault_campaign import Schedule, Step, run_schedule
from tests.fault_emulator import FAULTS

faults = st.sampled_from([None, None, None, *FAULTS])
schedules = st.builds(
    Schedule,
    primary=st.sampled_from(["tosspayments", "nicepay"]),
    steps=st.lists(
        st.builds(Step, order=st.integers(0, 3), toss=faults, nice=faults), min_size=1, max_size=6
    ).map(tuple),
)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(schedule=schedules)
def test_no_fault_schedule_charges_twice_orphans_loses_or_leaks(schedule: Schedule) -> None:
    outcome = run_schedule(schedule)
    assert outcome.ok, outcome.problems


def test_toss_committing_30_percent_of_charges_after_the_timeout() -> None:
    # The fire-night pattern: Toss answers slowly, not never. Every third or so charge
    # commits 2 s after our read timeout and its lookup says "not found" for 10 s more.
    steps = tuple(Step(n, "late" if n % 10 in (1, 4, 7) else None, None) for n in range(100))
    outcome = run_schedule(Schedule("tosspayments", steps))
    assert outcome.orders == 100
    assert (outcome.double_charges, outcome.orphaned_charges, outcome.lost_refunds) == (0, 0, 0)
    assert outcome.ok, outcome.problems


def test_nicepay_primary_with_10_percent_late_commits() -> None:
    steps = tuple(Step(n, None, "late" if n % 10 == 3 else None) for n in range(100))
    outcome = run_schedule(Schedule("nicepay", steps))
    assert outcome.orders == 100
    assert (outcome.double_charges, outcome.orphaned_charges, outcome.lost_refunds) == (0, 0, 0)
    assert outcome.ok, outcome.problems
