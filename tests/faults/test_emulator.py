"""The emulator keeps the providers' rules, and the real adapters read its answers.

Requests are built by the real adapters (``build_<op>``) and answers read back by them
(``parse_<op>``), so these tests pin both the emulator's provider rules (idempotent
replays, "still processing", net cancel, lookups from the ledger with their lag, the
cancel guards) and that its answers are shaped the way the adapters expect.
"""

from __future__ import annotations

import contextlib

import httpx
import pytest

from payfallback import ManualClock, Money
from payfallback.errors import Declined, OutcomeUnknown, PayfallbackError, RequestInFlight
from payfallback.models import Method
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Outcome,
    Provider,
    Status,
    TxnState,
    VoidRequest,
)
from tests.faults import adapters
from tests.faults.adapters import NICE, PORTONE, TOSS
from tests.faults.emulator import Crash, Emulator
from tests.faults.runner import order

ATTEMPT = "ORD-0001_1"


class Client:
    """One provider's adapter over the emulator: build, send, parse."""

    def __init__(self, name: str, *, commit_delay: float = 2.0, lookup_lag: float = 10.0) -> None:
        self.clock = ManualClock()
        self.emu = Emulator(self.clock, commit_delay=commit_delay, lookup_lag=lookup_lag)
        self.http = httpx.Client(transport=self.emu.transport())
        self.name = name
        self.provider: Provider = adapters.provider(name)

    def charge(self, key: str = "k" * 32, attempt_id: str = ATTEMPT) -> Outcome:
        req = ChargeRequest(
            attempt_id=attempt_id,
            order=order(1),
            instrument=adapters.instrument(self.name),
            idempotency_key=key,
        )
        request = self.provider.build_charge(req)
        request.extensions["timeout"] = {"connect": 5.0, "read": 60.0, "write": 60.0, "pool": 5.0}
        return self.provider.parse_charge(req, self.http.send(request))

    def lookup(self, txn: str | None = None, attempt_id: str = ATTEMPT) -> Outcome:
        req = LookupRequest(
            attempt_id=attempt_id,
            order=order(1),
            provider_txn_id=txn,
            attempted_at=self.clock.now(),
        )
        return self.provider.parse_lookup(req, self.http.send(self.provider.build_lookup(req)))

    def cancel(self, txn: str, amount: int, remaining: int, key: str = "c" * 32) -> Outcome:
        req = CancelRequest(
            refund_id=f"rf_{key[:20]}",  # one refund per key here
            attempt_id=ATTEMPT,
            order=order(1),
            provider_txn_id=txn,
            amount=Money(amount=amount),
            expected_remaining=remaining,
            reason="고객 요청",
            idempotency_key=key,
        )
        return self.provider.parse_cancel(req, self.http.send(self.provider.build_cancel(req)))

    def void(self) -> Outcome:
        req = VoidRequest(
            attempt_id=ATTEMPT,
            order=order(1),
            provider_txn_id=None,
            amount=order(1).amount,
            idempotency_key="v" * 32,
        )
        return self.provider.parse_void(req, self.http.send(self.provider.build_void(req)))


def _paid(outcome: Outcome) -> Approved:
    assert isinstance(outcome, Approved), outcome
    return outcome


def _error(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


@pytest.mark.parametrize("name", adapters.BILLING)
def test_a_charge_is_in_the_ledger_and_its_lookup_sees_it_after_the_lag(name: str) -> None:
    c = Client(name, lookup_lag=10.0)
    paid = _paid(c.charge())
    assert paid.amount == order(1).amount
    [charge] = c.emu.ledger.live()
    assert (charge.provider, charge.attempt_id, charge.txn) == (name, ATTEMPT, paid.provider_txn_id)
    looked = c.lookup()
    assert isinstance(looked, Status)
    assert looked.state is TxnState.NOT_FOUND
    c.clock.advance(10.0)
    looked = c.lookup()
    assert isinstance(looked, Status)
    assert (looked.state, looked.provider_txn_id) == (TxnState.PAID, paid.provider_txn_id)


@pytest.mark.parametrize("name", [TOSS, PORTONE])
def test_a_same_key_replay_answers_in_progress_then_the_first_answer_and_charges_once(
    name: str,
) -> None:
    c = Client(name, commit_delay=5.0)
    c.emu.faults = {name: ["late"]}
    with pytest.raises(httpx.ReadTimeout):
        c.charge()
    assert c.emu.ledger.live() == []  # not committed yet
    assert isinstance(_error(c.charge()), RequestInFlight)
    c.clock.advance(5.0)
    [charge] = c.emu.ledger.live()
    assert _paid(c.charge()).provider_txn_id == charge.txn
    assert len(c.emu.ledger.charges) == 1


@pytest.mark.parametrize("name", [TOSS, PORTONE])
def test_a_request_that_never_arrived_is_run_by_its_replay(name: str) -> None:
    c = Client(name)
    for fault in ("refuse", "hang", "5xx_before", "garbage_before"):
        c.emu.faults = {name: [fault]}
        outcome: Outcome | None = None
        with contextlib.suppress(httpx.ConnectError, httpx.ReadTimeout):
            outcome = c.charge()
        assert outcome is None or isinstance(outcome, Failed), (fault, outcome)
        assert c.emu.ledger.charges == [], fault
    _paid(c.charge())
    assert len(c.emu.ledger.live()) == 1


@pytest.mark.parametrize("name", [TOSS, PORTONE])
def test_a_decline_is_replayed_as_a_decline(name: str) -> None:
    c = Client(name)
    c.emu.faults = {name: ["decline"]}
    assert isinstance(_error(c.charge()), Declined)
    assert isinstance(_error(c.charge()), Declined)
    assert c.emu.ledger.charges == []


@pytest.mark.parametrize("name", adapters.BILLING)
def test_a_second_charge_of_one_attempt_id_under_another_key_is_refused(name: str) -> None:
    c = Client(name)
    _paid(c.charge(key="a" * 32))
    assert isinstance(_error(c.charge(key="b" * 32)), OutcomeUnknown)
    assert len(c.emu.ledger.charges) == 1


def test_nicepay_net_cancel_stops_a_late_commit_and_undoes_a_committed_charge() -> None:
    c = Client(NICE, commit_delay=5.0)
    c.emu.faults = {NICE: ["late"]}
    with pytest.raises(httpx.ReadTimeout):
        c.charge()
    voided = c.void()
    assert isinstance(voided, Cancelled)
    assert voided.settled
    c.clock.advance(60.0)
    assert c.emu.ledger.live() == []
    looked = c.lookup()
    assert isinstance(looked, Status)
    assert looked.state is TxnState.CANCELLED

    c = Client(NICE)
    _paid(c.charge())
    assert isinstance(c.void(), Cancelled)
    assert c.emu.ledger.live() == []


def test_nicepay_net_cancel_of_nothing_proves_nothing() -> None:
    c = Client(NICE)
    c.emu.faults = {NICE: ["hang"]}
    with pytest.raises(httpx.ReadTimeout):
        c.charge()
    assert isinstance(_error(c.void()), OutcomeUnknown)


def test_nicepay_net_cancel_window_is_an_hour() -> None:
    c = Client(NICE)
    _paid(c.charge())
    c.clock.advance(3601.0)
    assert not isinstance(c.void(), Cancelled)
    assert len(c.emu.ledger.live()) == 1


def test_nicepay_keeps_a_failed_record_and_a_cancel_order_id_once() -> None:
    c = Client(NICE)
    c.emu.faults = {NICE: ["decline"]}
    assert isinstance(_error(c.charge()), Declined)
    looked = c.lookup()
    assert isinstance(looked, Status)
    assert looked.state is TxnState.NOT_PAID
    paid = _paid(c.charge())  # a failed orderId can be paid again
    total = order(1).amount.amount
    assert isinstance(c.cancel(paid.provider_txn_id, 3_000, total, key="cancel-1"), Cancelled)
    again = c.cancel(paid.provider_txn_id, 3_000, total - 3_000, key="cancel-1")
    assert isinstance(_error(again), OutcomeUnknown)
    [charge] = c.emu.ledger.charges
    assert charge.cancelled(c.emu.now) == 3_000


@pytest.mark.parametrize("name", adapters.BILLING)
def test_cancels_are_guarded_by_the_balance_and_show_in_lookups(name: str) -> None:
    c = Client(name, lookup_lag=0.0)
    paid = _paid(c.charge())
    total = order(1).amount.amount
    done = c.cancel(paid.provider_txn_id, 3_000, total, key="c" * 32)
    assert isinstance(done, Cancelled)
    assert done.amount.amount == 3_000
    if name != NICE:  # Toss and PortOne check the balance we believe in
        stale = c.cancel(paid.provider_txn_id, 3_000, total, key="d" * 32)
        assert isinstance(_error(stale), OutcomeUnknown)
    looked = c.lookup(paid.provider_txn_id)
    assert isinstance(looked, Status)
    assert (looked.state, looked.cancelled) == (TxnState.PAID, 3_000)
    rest = c.cancel(paid.provider_txn_id, total - 3_000, total - 3_000, key="e" * 32)
    assert isinstance(rest, Cancelled)
    assert c.emu.ledger.live() == []


@pytest.mark.parametrize("name", adapters.BILLING)
def test_faults_after_the_commit_commit_and_crashes_leave_the_charge_behind(name: str) -> None:
    for fault in ("lost", "5xx_after", "garbage_after", "crash_after", "crash_late"):
        c = Client(name, commit_delay=1.0)
        c.emu.faults = {name: [fault]}
        outcome: Outcome | None = None
        with contextlib.suppress(httpx.ReadTimeout, Crash):
            outcome = c.charge()
        # The client never learns of the charge: a lost answer, a crash, or an answer
        # the adapter cannot take as a success.
        assert outcome is None or isinstance(outcome, Failed), (fault, outcome)
        c.clock.advance(1.0)
        assert len(c.emu.ledger.live()) == 1, fault


@pytest.mark.parametrize("name", adapters.BILLING)
def test_error_answers_echo_every_secret_the_request_carried(name: str) -> None:
    c = Client(name)
    c.emu.faults = {name: ["5xx_before"]}
    req = ChargeRequest(
        attempt_id=ATTEMPT,
        order=order(1),
        instrument=adapters.instrument(name),
        idempotency_key="k" * 32,
    )
    answer = c.http.send(c.provider.build_charge(req))
    creds = adapters.credentials()[name]
    assert creds["authorization"] in answer.text
    assert creds["billing_key"] in answer.text
    # ...and the adapter hands none of it back.
    error = _error(c.provider.parse_charge(req, answer))
    for secret in adapters.secret_values():
        assert secret not in f"{error!s} {error!r} {error.context()!r}"


def test_a_provider_that_is_down_refuses_every_request() -> None:
    c = Client(TOSS)
    c.emu.down = {TOSS}
    with pytest.raises(httpx.ConnectError):
        c.charge()
    with pytest.raises(httpx.ConnectError):
        c.lookup()
    assert c.emu.ledger.charges == []


def test_toss_payment_window_confirm_within_ten_minutes_replays_and_expires() -> None:
    c = Client(TOSS, lookup_lag=0.0)
    params = c.emu.toss_authenticate(ATTEMPT, order(1).amount.amount)
    looked = c.lookup(params["paymentKey"])
    assert isinstance(looked, Status)
    assert looked.state is TxnState.IN_PROGRESS  # authenticated, not confirmed

    req = ApproveRequest(
        attempt_id=ATTEMPT,
        order=order(1),
        method=Method.CARD,
        provider_txn_id=None,
        callback_params=params,
        idempotency_key="a" * 32,
    )

    def confirm() -> Outcome:
        request = c.provider.build_approve(req)
        return c.provider.parse_approve(req, c.http.send(request))

    paid = _paid(confirm())
    assert paid.provider_txn_id == params["paymentKey"]
    assert _paid(confirm()).provider_txn_id == paid.provider_txn_id  # same-key replay
    assert len(c.emu.ledger.live()) == 1

    late = c.emu.toss_authenticate("ORD-0001_2", order(1).amount.amount)
    c.clock.advance(601.0)
    looked = c.lookup(late["paymentKey"], attempt_id="ORD-0001_2")
    assert isinstance(looked, Status)
    assert looked.state is TxnState.NOT_PAID  # EXPIRED
