"""Fault schedules over the real adapters: hypothesis-drawn ones, the issue's two
reproductions, and the crash and secret cases spelled out.

Every test holds the emulator's ledgers against the journal after the providers came
back and ``recover()`` ran (:func:`tests.faults.runner.check`): no double charge, no
orphaned charge, no lost or extra refund, no phantom payment, nothing left open that
could be settled, and no secret in any error, event, log line or journal row. On a
failure the message carries the figures, the problems, and the ledger, journal and
request trace of the first order concerned.

The long campaign is ``python -m tests.faults.campaign --schedules 10000 --seed 1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.faults.adapters import NICE, PORTONE, TOSS
from tests.faults.runner import (
    Checkout,
    Outcome,
    Pay,
    Recover,
    RefundStep,
    Schedule,
    draw_schedule,
    run_schedule,
)

T = TypeVar("T")
PROFILE = os.environ.get("PAYFALLBACK_FAULTS_PROFILE", "faults")


class _Draw:
    """hypothesis's ``draw`` as the runner's :class:`~tests.faults.runner.Pick`."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def choice(self, options: Sequence[T]) -> T:
        value: T = self._draw(st.sampled_from(list(options)))
        return value

    def integer(self, low: int, high: int) -> int:
        value: int = self._draw(st.integers(low, high))
        return value


@st.composite
def schedules(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Schedule:
    return draw_schedule(_Draw(draw))


def _money_safe(outcome: Outcome) -> tuple[int, int, int]:
    return (outcome.double_charges, outcome.orphaned_charges, outcome.lost_refunds)


@settings(settings.get_profile(PROFILE))
@given(schedule=schedules())
def test_no_schedule_charges_twice_orphans_loses_leaves_open_or_leaks(schedule: Schedule) -> None:
    outcome = run_schedule(schedule)
    assert outcome.ok, f"{schedule}\n{outcome.report()}"


def _late_every(share: int, orders: int, provider: str) -> tuple[Pay, ...]:
    """``orders`` orders; ``share`` in ten of them commit after the primary's timeout."""
    late = {1, 4, 7} if share == 3 else {3}
    return tuple(Pay(n, ((provider, ("late",)),) if n % 10 in late else ()) for n in range(orders))


def test_toss_billing_with_30_percent_late_commits_over_100_orders() -> None:
    # Issue 9, the fire-night pattern: Toss answers slowly, not never. 30 of 100 charges
    # commit 2 s after our read timeout; lookups say "not found" for 10 s more.
    schedule = Schedule(
        instruments=(TOSS, NICE),
        steps=_late_every(3, 100, TOSS),
        commit_delay=2.0,
        lookup_lag=10.0,
    )
    outcome = run_schedule(schedule)
    assert outcome.orders == 100
    assert _money_safe(outcome) == (0, 0, 0), outcome.report()
    assert outcome.ok, outcome.report()


def test_nicepay_primary_with_10_percent_late_commits_failing_over_to_toss() -> None:
    schedule = Schedule(
        instruments=(NICE, TOSS),
        steps=_late_every(1, 100, NICE),
        commit_delay=2.0,
        lookup_lag=10.0,
    )
    outcome = run_schedule(schedule)
    assert outcome.orders == 100
    assert _money_safe(outcome) == (0, 0, 0), outcome.report()
    assert outcome.ok, outcome.report()


def test_portone_primary_with_30_percent_late_commits_failing_over_to_toss() -> None:
    schedule = Schedule(
        instruments=(PORTONE, TOSS),
        steps=_late_every(3, 100, PORTONE),
        commit_delay=2.0,
        lookup_lag=10.0,
    )
    outcome = run_schedule(schedule)
    assert _money_safe(outcome) == (0, 0, 0), outcome.report()
    assert outcome.ok, outcome.report()


def test_late_commits_with_compensation_are_given_back() -> None:
    # compensate=True: the order is paid at the secondary now; the primary's late charge
    # is refunded automatically once it shows up.
    schedule = Schedule(
        instruments=(TOSS, PORTONE),
        steps=_late_every(3, 30, TOSS),
        commit_delay=2.0,
        lookup_lag=90.0,
        compensate=True,
    )
    outcome = run_schedule(schedule)
    assert _money_safe(outcome) == (0, 0, 0), outcome.report()
    assert outcome.ok, outcome.report()


def test_every_crash_point_of_every_provider_is_recovered_on_restart() -> None:
    crashes = ("crash_before", "crash_after", "crash_late", "journal_lost")
    for provider in (TOSS, NICE, PORTONE):
        for n, crash in enumerate(crashes):
            for gap in (1.0, 130.0):  # a restart inside the dead process's lease, and after
                steps = (
                    Pay(n, ((provider, (crash,)),)),
                    Pay(n + 10),
                    RefundStep(n + 10, part=True, faults=((provider, (crash,)),)),
                )
                schedule = Schedule(instruments=(provider,), steps=steps, restart_gap=gap)
                outcome = run_schedule(schedule)
                assert outcome.crashes == 2, (provider, crash)
                assert outcome.ok, f"{provider} {crash} gap={gap}\n{outcome.report()}"


def test_refunds_under_faults_are_settled_once() -> None:
    faults = ("lost", "late", "hang", "5xx_after", "garbage_after", "refuse")
    for provider in (TOSS, NICE, PORTONE):
        steps: list[Pay | RefundStep | Recover] = [Pay(n) for n in range(len(faults))]
        for n, fault in enumerate(faults):
            steps.append(RefundStep(n, part=True, clicks=2, faults=((provider, (fault,)),)))
            steps.append(RefundStep(n, faults=((provider, (fault,)),)))
        steps.append(Recover(((provider, ("lost", "late")),)))
        outcome = run_schedule(Schedule(instruments=(provider,), steps=tuple(steps)))
        assert outcome.ok, f"{provider}\n{outcome.report()}"


def test_no_secret_comes_out_although_every_error_answer_echoes_them() -> None:
    faults = ("5xx_before", "garbage_before", "decline", "5xx_after", "garbage_after")
    steps = tuple(
        Pay(n, tuple((p, (fault,)) for p in (TOSS, NICE, PORTONE)))
        for n, fault in enumerate(faults)
    )
    schedule = Schedule(instruments=(TOSS, NICE, PORTONE), steps=steps)
    outcome = run_schedule(schedule)
    # The check looked at something: answers that quoted the secrets, events that carry
    # the errors made of them.
    assert outcome.secrets_echoed >= len(steps)
    assert outcome.log_events > 0
    assert outcome.secrets_leaked == 0, outcome.report()
    assert outcome.ok, outcome.report()


def test_an_attempt_that_never_arrived_is_settled_when_the_pos_recovers_then_charges_again() -> (
    None
):
    # The Toss request dies inside Toss (read timeout, nothing processed): the charge is
    # unknown. Once Toss is back, the POS runs recover() (a start-up or cron reconcile),
    # then charges the open order again; the same-key replay settles the attempt.
    for provider in (TOSS, PORTONE):
        schedule = Schedule(instruments=(provider,), steps=(Pay(0, ((provider, ("hang",)),)),))
        outcome = run_schedule(schedule)
        assert outcome.ok, f"{provider}\n{outcome.report()}"


def test_with_compensation_an_attempt_that_never_arrived_does_not_stay_open() -> None:
    # compensate=True: Toss's request dies inside Toss, the order is paid at NICEPAY now.
    # Nothing was charged at Toss; recover() must come to rest (watching for a late
    # charge is fine, reporting the attempt open forever is not).
    schedule = Schedule(
        instruments=(TOSS, NICE), steps=(Pay(0, ((TOSS, ("hang",)),)),), compensate=True
    )
    outcome = run_schedule(schedule)
    assert outcome.ok, outcome.report()


def test_a_refund_whose_answer_was_lost_is_not_sent_twice() -> None:
    # A partial refund's cancel reaches the provider and commits after our read timeout;
    # the lookup right after cannot see it yet, so the refund stays owed. A recover()
    # while the provider refuses connections, then one after it is back: the refund must
    # be settled once. NICEPAY keys a cancel only by its orderId (no balance guard like
    # Toss's refundableAmount or PortOne's currentCancellableAmount).
    for provider in (NICE, TOSS, PORTONE):
        schedule = Schedule(
            instruments=(provider,),
            steps=(
                Pay(0),
                RefundStep(0, part=True, faults=((provider, ("late",)),)),
                Recover(down=(provider,)),
            ),
            commit_delay=20.0,
            lookup_lag=0.0,
        )
        outcome = run_schedule(schedule)
        assert outcome.ok, f"{provider}\n{outcome.report()}"


def test_toss_payment_window_checkouts_under_every_fault() -> None:
    # The shop's return handler confirms what the customer approved in Toss's window;
    # each confirm meets one fault, then the checkout's payment is partly refunded.
    faults = (None, "late", "lost", "hang", "refuse", "5xx_after", "garbage_after", "decline")
    crashes = ("crash_before", "crash_after", "crash_late", "journal_lost")
    steps: list[Checkout | RefundStep] = []
    for n, fault in enumerate((*faults, *crashes)):
        steps.append(Checkout(n, ((TOSS, (fault,)),)))
        steps.append(RefundStep(n, part=True, checkout=True))
    schedule = Schedule(instruments=(TOSS,), steps=tuple(steps), lookup_lag=90.0)
    outcome = run_schedule(schedule)
    assert outcome.orders == len(faults) + len(crashes)
    assert outcome.ok, outcome.report()


def test_a_checkout_started_at_nicepay_keeps_its_declared_secrets_out_of_the_journal() -> None:
    # NICEPAY declares its client key secret (Nicepay.secrets); its checkout hands it to
    # the browser as clientId. The CheckoutSession returned may carry it; the journal may
    # not (the runner exempts the returned client_params, and checks every journal row).
    schedule = Schedule(instruments=(NICE,), steps=(Checkout(0),))
    outcome = run_schedule(schedule)
    assert outcome.secrets_leaked == 0, outcome.report()
