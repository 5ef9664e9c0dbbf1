"""The decision core stepped directly, one action at a time.

A ``Core`` flow is a generator of actions (send this request, sleep, ask the journal);
the Routers only carry them out. Stepping it here, as tenacity's tests step its decision
engine, pins what a charge asks of the journal and the network, in order, whatever driver
runs it: a new order's charge writes the journal twice (the attempt before it is sent, the
payment after) and reads nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from payfallback import (
    AllProvidersUnavailable,
    Instrument,
    InvalidRequest,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    Platform,
    ReturnUrls,
)
from payfallback._calls import Resolved, _Resolution
from payfallback._clock import ManualClock
from payfallback._core import (
    Core,
    CoreConfig,
    Done,
    FlowGen,
    JournalCall,
    Send,
    Sent,
    Sleep,
    advance,
)
from payfallback.breaker import (
    BreakerPolicy,
    BreakerRegistry,
    BreakerState,
    MaintenanceWindow,
    MemoryStateStore,
)
from payfallback.events import Events
from payfallback.journal import AttemptInFlight, AttemptsOpen, OrderAlreadyPaid, SQLiteJournal
from payfallback.models import Attempt, AttemptState, CheckoutSession, RefundState
from payfallback.provider import Approved
from payfallback.retry import RetryBudget, RetryPolicy
from payfallback.testing import FakeBank, FakeProvider, mock_transport
from payfallback.testing._fake import Fault
from tests.helpers import charging_elsewhere, paid_at_the_providers_page

Step = tuple[str, str]  # ("journal", method) | ("send", operation path) | ("sleep", "")


class Stepper:
    """Carries out a flow's actions against a real SQLite journal and fake banks, and
    records each one."""

    def __init__(self, journal: SQLiteJournal, *banks: FakeBank) -> None:
        self.journal = journal
        self.transport = mock_transport(*banks)
        self.steps: list[Step] = []
        self.raised: list[str] = []
        #: Called at each sleep: what another worker does meanwhile.
        self.meanwhile: Callable[[], None] = lambda: None

    def run(self, flow: FlowGen[Any]) -> Any:
        value: Any = None
        error: BaseException | None = None
        while True:
            action = advance(flow, value, error)
            if isinstance(action, Done):
                return action.value
            value, error = None, None
            try:
                if isinstance(action, JournalCall):
                    self.steps.append(("journal", action.operation))
                    value = action.call(self.journal)
                elif isinstance(action, Send):
                    self.steps.append(("send", action.request.url.path))
                    try:
                        response = self.transport.handle_request(action.request)
                        response.read()
                        value = Sent(response, 0.01)
                    except httpx.TransportError as exc:  # as the Routers hand it back
                        value = Sent(exc, 0.01)
                else:
                    assert isinstance(action, Sleep)
                    self.steps.append(("sleep", ""))
                    self.meanwhile()
            except Exception as exc:
                self.raised.append(type(exc).__name__)
                error = exc

    def journal_calls(self) -> list[str]:
        return [name for kind, name in self.steps if kind == "journal"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def journal(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteJournal]:
    with SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock) as journal:
        yield journal


def make_core(
    clock: ManualClock,
    *names: str,
    maintenance: Sequence[MaintenanceWindow] = (),
    wallets: Sequence[FakeProvider] = (),
) -> Core:
    return Core(
        [FakeProvider(name) for name in names] + list(wallets),
        breakers=BreakerRegistry(
            policy=BreakerPolicy.default(),
            clock=clock,
            store=MemoryStateStore(clock),
            maintenance=list(maintenance),
        ),
        retry=RetryPolicy(deadline=60.0),
        budget=RetryBudget(clock),
        events=Events(),
        clock=clock,
        config=CoreConfig(),
    )


URLS = ReturnUrls(
    success="https://shop.example/ok",
    cancel="https://shop.example/no",
    fail="https://shop.example/fail",
)


def kakaopay() -> FakeProvider:
    return FakeProvider("kakaopay", methods=[Method.KAKAOPAY])


def card(provider: str) -> Instrument:
    return Instrument(provider=provider, billing_key=SecretStr(f"bk-ok-{provider}"))


def order(order_id: str = "ord-1") -> Order:
    return Order(order_id=order_id, amount=Money(amount=4_500), name="Americano")


def test_a_new_orders_charge_writes_the_journal_twice_and_reads_nothing(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    core = make_core(clock, "toss")
    stepper = Stepper(journal, FakeBank("toss"))
    payment = stepper.run(core.charge(order(), [card("toss")]))
    assert isinstance(payment, Payment)
    assert stepper.journal_calls() == ["begin_attempt", "record_success"]
    assert [kind for kind, _ in stepper.steps] == ["journal", "send", "journal"]
    assert journal.payment_for_order("ord-1") == payment


def test_a_wallet_checkout_writes_before_each_request_and_after_the_approval(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    core = make_core(clock, wallets=[kakaopay()])
    stepper = Stepper(journal, FakeBank("kakaopay", clock=clock))
    session = stepper.run(core.start_checkout(order(), Method.KAKAOPAY, URLS, Platform.PC, None))
    assert stepper.journal_calls() == ["begin_attempt", "save_checkout"]
    stepper.steps.clear()
    tid = session.provider_txn_id
    payment = stepper.run(core.complete_checkout(session.session_id, {"token": f"ok-{tid}"}))
    assert isinstance(payment, Payment)
    # One read, then the claim that puts the attempt back to PENDING (one write, before
    # the approval goes out), then the payment.
    assert stepper.steps == [
        ("journal", "checkout_state"),
        ("journal", "renew_lease"),
        ("send", f"/v1/checkouts/{tid}/approve"),
        ("journal", "record_success"),
    ]
    assert journal.payment_for_order("ord-1") == payment


def test_a_paid_order_is_answered_by_the_one_write_that_finds_the_payment(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    core = make_core(clock, "toss")
    bank = FakeBank("toss")
    first = Stepper(journal, bank).run(core.charge(order(), [card("toss")]))
    again = Stepper(journal, bank)
    assert again.run(core.charge(order(), [card("toss")])) == first
    assert again.steps == [("journal", "begin_attempt")]
    assert again.raised == [OrderAlreadyPaid.__name__]


def test_an_order_with_an_attempt_of_unknown_outcome_settles_it_before_sending_another(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    core = make_core(clock, "toss", "nice")
    toss, nice = FakeBank("toss"), FakeBank("nice")
    # The first charge's answer is lost after Toss took it, and neither the lookups, the
    # same-key replays nor the void that follow get an answer: the attempt stays of
    # unknown outcome.
    toss.fail_next("charge", Fault.LOST_RESPONSE)
    for op in ("charge", "lookup", "void"):
        toss.fail_next(op, Fault.UNAVAILABLE_503, times=50)
    first = Stepper(journal, toss, nice)
    with pytest.raises(Exception, match="may have gone through"):
        first.run(core.charge(order(), [card("toss"), card("nice")]))
    [attempt] = journal.attempts_for_order("ord-1")
    assert attempt.state is AttemptState.UNKNOWN
    assert not any(path.startswith("/nice") for kind, path in first.steps if kind == "send")

    # Toss answers again: the next charge is refused by the journal until the open attempt
    # is settled, finds it paid, and never sends a charge to NICE.
    toss.clear_faults()
    second = Stepper(journal, toss, nice)
    payment = second.run(core.charge(order(), [card("toss"), card("nice")]))
    assert isinstance(payment, Payment)
    assert payment.provider == "toss"
    assert payment.attempt_id == attempt.attempt_id
    assert second.journal_calls()[:2] == ["begin_attempt", "attempts_for_order"]
    assert second.raised[0] == AttemptsOpen.__name__
    assert nice.charges_for_order("ord-1") == []


def test_with_every_breaker_open_the_journal_is_still_asked_before_no_provider_is_said(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    bank = FakeBank("toss")
    paid = Stepper(journal, bank).run(make_core(clock, "toss").charge(order(), [card("toss")]))
    down = MaintenanceWindow("toss", clock.now(), clock.now() + timedelta(hours=1))
    core = make_core(clock, "toss", maintenance=[down])
    stepper = Stepper(journal, bank)
    # A paid order is still paid, though nothing can be sent...
    assert stepper.run(core.charge(order(), [card("toss")])) == paid
    assert stepper.journal_calls() == ["get_order", "payment_for_order"]
    # ...and a new one hears why nothing was sent, with nothing written.
    fresh = Stepper(journal, bank)
    with pytest.raises(AllProvidersUnavailable):
        fresh.run(core.charge(order("ord-2"), [card("toss")]))
    assert "send" not in [kind for kind, _ in fresh.steps]
    assert journal.get_order("ord-2") is None


@pytest.mark.parametrize("open_breakers", [False, True], ids=["breakers-closed", "all-open"])
def test_a_checkout_for_a_paid_or_changed_order_is_refused_and_nothing_is_sent(
    clock: ManualClock, journal: SQLiteJournal, open_breakers: bool
) -> None:
    paid = Stepper(journal, FakeBank("toss")).run(
        make_core(clock, "toss").charge(order(), [card("toss")])
    )
    down = MaintenanceWindow("kakaopay", clock.now(), clock.now() + timedelta(hours=1))
    core = make_core(clock, wallets=[kakaopay()], maintenance=[down] if open_breakers else [])
    bank = FakeBank("kakaopay", clock=clock)
    stepper = Stepper(journal, bank)
    with pytest.raises(InvalidRequest, match=rf"already paid \({paid.payment_id}\); nothing to"):
        stepper.run(core.start_checkout(order(), Method.KAKAOPAY, URLS, Platform.PC, None))
    # Breakers closed: the one write that would journal the attempt finds the payment
    # (and writes nothing). All open: nothing can be sent, and the journal is still asked.
    expected = ["get_order", "payment_for_order"] if open_breakers else ["begin_attempt"]
    assert stepper.journal_calls() == expected
    changed = Order(order_id="ord-1", amount=Money(amount=9_900), name="Americano")
    with pytest.raises(InvalidRequest, match="never changes"):
        stepper.run(core.start_checkout(changed, Method.KAKAOPAY, URLS, Platform.PC, None))
    assert "send" not in [kind for kind, _ in stepper.steps]
    assert [a.operation for a in journal.attempts_for_order("ord-1")] == ["charge"]


def other_payment(attempt: Attempt, clock: ManualClock) -> Payment:
    """The payment another worker's card charge of ``order()`` ends in."""
    return Payment(
        payment_id="pay_ord-1",
        order_id="ord-1",
        provider="toss",
        method=Method.CARD,
        provider_txn_id="T-other",
        attempt_id=attempt.attempt_id,
        amount=Money(amount=4_500),
        refunded=Money(amount=0),
        status=PaymentStatus.PAID,
        approved_at=clock.now(),
        attempts=1,
    )


def test_a_checkout_started_while_another_worker_pays_the_order_says_it_is_paid(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    other = charging_elsewhere(journal, order())
    core = make_core(clock, wallets=[kakaopay()])
    stepper = Stepper(journal, FakeBank("kakaopay", clock=clock))
    paid: list[Payment] = []

    def the_other_worker_is_paid() -> None:
        if not paid:
            paid.append(journal.record_success(other.attempt_id, other_payment(other, clock)))

    stepper.meanwhile = the_other_worker_is_paid
    with pytest.raises(InvalidRequest, match=r"already paid \(pay_ord-1\); nothing to"):
        stepper.run(core.start_checkout(order(), Method.KAKAOPAY, URLS, Platform.PC, None))
    assert paid
    assert "send" not in [kind for kind, _ in stepper.steps]
    assert stepper.raised[0] == AttemptInFlight.__name__


def test_a_return_that_waited_for_another_payment_gives_back_what_its_own_page_took(
    clock: ManualClock, journal: SQLiteJournal
) -> None:
    # Some providers' pages take the money themselves (PortOne). A customer who returns
    # while another worker is paying the order waits for it; when that one paid, this
    # checkout's own charge must be given back, as for any return after the order was paid.
    core = make_core(clock, wallets=[kakaopay()])
    kakao = FakeBank("kakaopay", clock=clock)
    stepper = Stepper(journal, kakao)
    session = stepper.run(core.start_checkout(order(), Method.KAKAOPAY, URLS, Platform.PC, None))
    tid = session.provider_txn_id
    other = charging_elsewhere(journal, order())
    paid_at_the_providers_page(kakao, tid, 4_500)
    assert len(kakao.live_charges()) == 1

    def the_other_worker_is_paid() -> None:
        if journal.payment_for_order("ord-1") is None:
            journal.record_success(other.attempt_id, other_payment(other, clock))

    stepper.meanwhile = the_other_worker_is_paid
    paid = stepper.run(core.complete_checkout(session.session_id, {"token": f"ok-{tid}"}))
    assert paid.attempt_id == other.attempt_id
    assert kakao.live_charges() == []
    refunds = journal.refunds_for_order("ord-1")
    assert [(r.kind, r.state) for r in refunds] == [("compensation", RefundState.SUCCEEDED)]


@pytest.mark.parametrize("operation", ["charge", "checkout"])
def test_a_refused_order_gives_a_half_open_breakers_probe_slot_back(
    clock: ManualClock, journal: SQLiteJournal, operation: str
) -> None:
    toss, kakao = FakeBank("toss"), FakeBank("kakaopay", clock=clock)
    core = (
        make_core(clock, "toss")
        if operation == "charge"
        else make_core(clock, wallets=[kakaopay()])
    )
    stepper = Stepper(journal, toss, kakao)

    def pay(o: Order) -> Any:
        if operation == "charge":
            return stepper.run(core.charge(o, [card("toss")]))
        return stepper.run(core.start_checkout(o, Method.KAKAOPAY, URLS, Platform.PC, None))

    bank = toss if operation == "charge" else kakao
    breaker = core.breakers.get(bank.name, "card" if operation == "charge" else "kakaopay")
    bank.refuse = True
    for n in range(10):
        if breaker.state is BreakerState.OPEN:
            break
        with pytest.raises(AllProvidersUnavailable):
            pay(order(f"down-{n}"))
    assert breaker.state is BreakerState.OPEN
    bank.refuse = False
    # The order as first journaled (the breaker being open, straight into the journal).
    journal.begin_attempt(
        order("ord-9"),
        provider="toss",
        method=Method.CARD,
        operation="charge",
        idempotency_key="first-key",
        lease_seconds=0,
    )
    settings = BreakerPolicy.default().settings_at(clock.now())
    clock.advance(settings.open_seconds + 1)  # half-open: a few probe slots
    changed = Order(order_id="ord-9", amount=Money(amount=9_900), name="Americano")
    # More refused orders than the breaker has probe slots: each gives its slot back.
    for _ in range(settings.half_open_probes + 1):
        with pytest.raises(InvalidRequest, match="never changes"):
            pay(changed)
    assert isinstance(pay(order("ord-10")), Payment if operation == "charge" else CheckoutSession)


def test_a_journal_call_names_its_operation_and_carries_its_arguments() -> None:
    call = JournalCall("payment_for_order", ("ord-1",))

    class Answers:
        def payment_for_order(self, order_id: str) -> str:
            return f"payment of {order_id}"

    assert call.call(Answers()) == "payment of ord-1"
    with pytest.raises(AttributeError):
        JournalCall("no_such_method").call(Answers())


def test_a_resolution_carries_an_approval_exactly_when_it_is_paid() -> None:
    # "Paid" without the approval would leave nothing to journal; an approval on "not
    # paid" or "unknown" would be a charge the flow then ignores.
    approved = Approved(
        provider_txn_id="txn-1", amount=Money(amount=15000, currency="KRW"), provider_status="DONE"
    )
    assert _Resolution(Resolved.PAID, approved=approved).approved is approved
    assert _Resolution(Resolved.NOT_PAID).approved is None
    assert _Resolution(Resolved.UNKNOWN).approved is None
    with pytest.raises(AssertionError):
        _Resolution(Resolved.PAID)
    for state in (Resolved.NOT_PAID, Resolved.UNKNOWN):
        with pytest.raises(AssertionError):
            _Resolution(state, approved=approved)
