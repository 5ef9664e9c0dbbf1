"""Router behaviour over fake providers, run through both Router and AsyncRouter."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from payfallback import (
    AllProvidersUnavailable,
    AttemptState,
    BreakerPolicy,
    BreakerState,
    ConfigurationError,
    Declined,
    InvalidRequest,
    MaintenanceWindow,
    ManualClock,
    Method,
    Money,
    OutcomeUnknown,
    PaymentStatus,
    RefundState,
    RetryPolicy,
    ReturnUrls,
)
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, Fault, RouterHarness, double_charges
from tests.conftest import MakeRouter
from tests.helpers import card, charging_elsewhere, order, paid_at_the_providers_page

URLS = ReturnUrls(
    success="https://shop.example/ok",
    cancel="https://shop.example/no",
    fail="https://shop.example/fail",
)


@pytest.fixture
def banks(clock: ManualClock) -> tuple[FakeBank, FakeBank, FakeBank]:
    return (
        FakeBank("toss", clock=clock),
        FakeBank("nice", clock=clock),
        FakeBank("portone", clock=clock),
    )


def charges(bank: FakeBank) -> int:
    return bank.requests["charge"]


# -- charge --------------------------------------------------------------------------------


def test_happy_path_charges_once_and_journals(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    router = make_router(a, b)
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "toss"
    assert payment.amount == Money(amount=39_000)
    assert payment.status == PaymentStatus.PAID
    assert [e.order_ref for e in a.live_charges()] == [payment.attempt_id]
    assert charges(b) == 0
    attempts = router.router.journal.attempts_for_order("ORD-1")
    assert [x.state for x in attempts] == [AttemptState.SUCCEEDED]


def test_second_charge_for_same_order_returns_same_payment_and_sends_nothing(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    router = make_router(a, b)
    first = router.charge(order(), [card("toss"), card("nice")])
    sent = sum(a.requests.values()) + sum(b.requests.values())
    again = router.charge(order(), [card("nice"), card("toss")])
    assert again == first
    assert sum(a.requests.values()) + sum(b.requests.values()) == sent


def test_same_order_id_with_another_amount_is_refused(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a)
    router.charge(order(amount=10_000), [card("toss")])
    with pytest.raises(InvalidRequest, match="already journaled for 10,000 KRW"):
        router.charge(order(amount=12_000), [card("toss")])


def test_connection_refused_reroutes_to_next_provider(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.refuse = True
    router = make_router(a, b)
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert a.ledger == []
    assert len(b.live_charges()) == 1


def test_decline_is_not_rerouted_and_does_not_move_the_breaker(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    router = make_router(a, b)
    for n in range(8):
        with pytest.raises(Declined):
            router.charge(order(f"ORD-D{n}"), [card("toss", "bk-declined"), card("nice")])
    assert charges(b) == 0
    assert all(s.state == BreakerState.CLOSED for s in router.health())
    assert [c.provider for c in router.available(Method.CARD)] == ["toss", "nice"]


def test_lost_response_is_looked_up_not_rerouted(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    router = make_router(a, b)
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "toss"
    assert a.requests["lookup"] >= 1
    assert charges(b) == 0
    assert double_charges(a, b) == {}


def test_hang_before_processing_is_looked_up_then_rerouted(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.HANG, times=2)
    # No idempotency replay and no void: only "not found" once the provider's settle window
    # has passed since the request left proves nothing was charged. The lookups right after
    # the hang take at least 0.75 s (RetryPolicy's lookup waits).
    toss = FakeProvider(
        "toss", idempotency=False, void_window=None, settle_window=timedelta(seconds=0.5)
    )
    router = make_router(a, b, providers=[toss, FakeProvider("nice")])
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert a.requests["lookup"] >= 2
    assert a.live_charges() == []
    attempts = router.router.journal.attempts_for_order("ORD-1")
    assert [x.state for x in attempts] == [AttemptState.FAILED, AttemptState.SUCCEEDED]
    # Failed after a request may have reached the provider: recover() keeps watching it.
    assert attempts[0].recheck_until is not None


def test_hang_without_proof_keeps_the_order_where_it_is(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.HANG)
    # "Not found" right after the hang proves nothing: Toss may still be committing it.
    toss = FakeProvider("toss", idempotency=False, void_window=None)
    router = make_router(a, b, providers=[toss, FakeProvider("nice")])
    with pytest.raises(OutcomeUnknown, match="will not be sent elsewhere"):
        router.charge(order(), [card("toss"), card("nice")])
    assert charges(b) == 0
    attempts = router.router.journal.attempts_for_order("ORD-1")
    assert [x.state for x in attempts] == [AttemptState.UNKNOWN]


def test_unresolvable_unknown_outcome_is_never_sent_elsewhere(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.UNAVAILABLE_503, times=50)
    router = make_router(
        a,
        b,
        providers=[FakeProvider("toss", idempotency=False, void_window=None), FakeProvider("nice")],
    )
    with pytest.raises(OutcomeUnknown, match="will not be sent elsewhere"):
        router.charge(order(), [card("toss"), card("nice")])
    assert charges(b) == 0
    attempts = router.router.journal.attempts_for_order("ORD-1")
    assert [x.state for x in attempts] == [AttemptState.UNKNOWN]
    # Calling charge again resolves first instead of sending a new charge.
    a.clear_faults()
    payment = router.charge(order(), [card("nice")])
    assert payment.provider == "toss"
    assert charges(b) == 0
    assert charges(a) == 1


def test_unknown_approval_is_voided_within_its_window_then_rerouted(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    # NICEPAY-style net cancel: when lookups cannot tell, undo the approval and move on.
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.UNAVAILABLE_503, times=50)
    router = make_router(
        a, b, providers=[FakeProvider("toss", idempotency=False), FakeProvider("nice")]
    )
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert a.requests["void"] == 1
    assert a.live_charges() == []
    assert double_charges(a, b) == {}


def test_recover_resolves_unknown_attempt_once_provider_is_back(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.UNAVAILABLE_503, times=50)
    router = make_router(
        a,
        b,
        providers=[FakeProvider("toss", idempotency=False, void_window=None), FakeProvider("nice")],
    )
    with pytest.raises(OutcomeUnknown):
        router.charge(order(), [card("toss"), card("nice")])
    a.clear_faults()
    report = router.recover()
    assert report.paid == ["ORD-1_1"]
    assert report.clean
    payment = router.router.journal.payment_for_order("ORD-1")
    assert payment is not None
    assert payment.provider == "toss"


def test_reroute_with_compensation_refunds_a_late_success(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.UNAVAILABLE_503, times=50)
    router = make_router(
        a,
        b,
        providers=[FakeProvider("toss", idempotency=False, void_window=None), FakeProvider("nice")],
        compensate=True,
    )
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    # The customer is charged twice for now: the first attempt succeeded unseen.
    assert len(a.live_charges()) == 1
    a.clear_faults()
    report = router.recover()
    assert report.paid == ["ORD-1_1"]
    assert report.compensations == ["cmp_ORD-1_1"]
    assert a.live_charges() == []
    assert double_charges(a, b) == {}
    refund = router.router.journal.get_refund("cmp_ORD-1_1")
    assert refund is not None
    assert refund.state == RefundState.SUCCEEDED


def test_all_providers_down_lists_why_each_was_skipped(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, c = banks
    a.refuse = True
    b.fail_next("charge", Fault.UNAVAILABLE_503, times=10)
    c.fail_next("charge", Fault.CONNECT_TIMEOUT, times=10)
    router = make_router(a, b, c)
    with pytest.raises(AllProvidersUnavailable) as info:
        router.charge(order(), [card("toss"), card("nice"), card("portone")])
    assert set(info.value.skipped) == {"toss", "nice", "portone"}
    assert "MAINTENANCE" in info.value.skipped["nice"] or "503" in info.value.skipped["nice"]
    assert "ConnectTimeout" in info.value.skipped["portone"]


def test_breaker_opens_and_later_payments_skip_the_failing_provider(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, b, _ = banks
    a.refuse = True
    router = make_router(a, b)
    for n in range(4):
        router.charge(order(f"ORD-B{n}"), [card("toss"), card("nice")])
    assert any(s.provider == "toss" and s.state == BreakerState.OPEN for s in router.health())
    sent_before = sum(a.requests.values())
    payment = router.charge(order("ORD-B9"), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert sum(a.requests.values()) == sent_before, "an open breaker sends nothing"
    assert [c.provider for c in router.available(Method.CARD)] == ["nice"]


def test_retry_after_is_honoured_on_the_same_provider(
    make_router: MakeRouter, banks: tuple[FakeBank, ...], clock: ManualClock
) -> None:
    a, b, _ = banks
    a.retry_after = 2
    a.fail_next("charge", Fault.UNAVAILABLE_503)
    router = make_router(a, b)
    before = clock.monotonic()
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "toss"
    assert charges(a) == 2
    assert clock.monotonic() - before >= 2.0


def test_retry_after_longer_than_a_customer_waits_reroutes_now(
    make_router: MakeRouter, banks: tuple[FakeBank, ...], clock: ManualClock
) -> None:
    a, b, _ = banks
    a.retry_after = 30
    a.fail_next("charge", Fault.UNAVAILABLE_503)
    router = make_router(a, b)
    before = clock.monotonic()
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert charges(a) == 1
    assert clock.monotonic() - before < 30


def test_bad_credentials_everywhere_is_a_configuration_error(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a, providers=[FakeProvider("toss", secret="wrong")])
    with pytest.raises(ConfigurationError, match="every provider refused our configuration"):
        router.charge(order(), [card("toss")])


def test_instrument_for_unconfigured_provider_is_a_clear_error(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a)
    with pytest.raises(ConfigurationError, match="not configured on this Router"):
        router.charge(order(), [card("kakaopay")])


# -- refunds -------------------------------------------------------------------------------


def test_partial_then_full_refund(make_router: MakeRouter, banks: tuple[FakeBank, ...]) -> None:
    a, _, _ = banks
    router = make_router(a)
    payment = router.charge(order(), [card("toss")])
    first = router.refund(payment.payment_id, Money(amount=9_000), reason="한 잔 취소")
    assert first.state == RefundState.SUCCEEDED
    assert first.expected_remaining == 39_000
    rest = router.refund(payment.payment_id)
    assert rest.amount == Money(amount=30_000)
    stored = router.router.journal.get_payment(payment.payment_id)
    assert stored is not None
    assert stored.status == PaymentStatus.REFUNDED
    assert a.live_charges() == []
    with pytest.raises(InvalidRequest, match="nothing left to refund"):
        router.refund(payment.payment_id)


def test_refund_over_paid_amount_is_refused_before_sending(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a)
    payment = router.charge(order(), [card("toss")])
    with pytest.raises(InvalidRequest, match="only 39,000 KRW is left"):
        router.refund(payment.payment_id, Money(amount=40_000))
    assert a.requests["cancel"] == 0


def test_refund_while_provider_down_is_owed_then_settled_by_recover(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a)
    payment = router.charge(order(), [card("toss")])
    a.refuse = True
    refund = router.refund(payment.payment_id)
    assert refund.state == RefundState.OWED
    assert [r.refund_id for r in router.router.journal.refunds_owed()] == [refund.refund_id]
    report = router.recover()
    assert report.refunds_still_owed == [refund.refund_id]
    a.refuse = False
    report = router.recover()
    assert report.refunds_settled == [refund.refund_id]
    assert a.live_charges() == []
    assert router.router.journal.refunds_owed() == []


def test_refund_with_lost_answer_is_reconciled_by_lookup(
    make_router: MakeRouter, banks: tuple[FakeBank, ...]
) -> None:
    a, _, _ = banks
    router = make_router(a)
    payment = router.charge(order(), [card("toss")])
    a.fail_next("cancel", Fault.LOST_RESPONSE)
    refund = router.refund(payment.payment_id)
    assert refund.state == RefundState.SUCCEEDED
    assert a.requests["cancel"] == 1, "a lost cancel is looked up, not blindly resent"
    assert a.live_charges() == []


# -- checkout ------------------------------------------------------------------------------


def wallets(clock: ManualClock) -> tuple[FakeBank, FakeBank]:
    return FakeBank("kakaopay", clock=clock), FakeBank("naverpay", clock=clock)


def wallet_providers() -> list[FakeProvider]:
    return [
        FakeProvider("kakaopay", methods=[Method.KAKAOPAY]),
        FakeProvider("naverpay", methods=[Method.NAVERPAY]),
    ]


def approve_params(session_redirect_tid: str | None) -> dict[str, str]:
    assert session_redirect_tid is not None
    return {"token": f"ok-{session_redirect_tid}", "tid": session_redirect_tid}


def test_checkout_falls_back_to_next_wallet_when_primary_is_down(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    kakao, naver = wallets(clock)
    kakao.refuse = True
    router = make_router(
        kakao,
        naver,
        providers=wallet_providers(),
        fallback_methods={Method.KAKAOPAY: [Method.NAVERPAY]},
    )
    session = router.start_checkout(order(), Method.KAKAOPAY, URLS)
    assert session.provider == "naverpay"
    assert "kakaopay/kakaopay" in session.fallback_from
    payment = router.complete_checkout(session.session_id, approve_params(session.provider_txn_id))
    assert payment.provider == "naverpay"
    assert payment.amount == Money(amount=39_000)
    # A repeated callback (browser refresh) approves nothing new.
    again = router.complete_checkout(session.session_id, approve_params(session.provider_txn_id))
    assert again == payment
    assert naver.requests["approve"] == 1


def test_checkout_user_cancel_is_a_decline(make_router: MakeRouter, clock: ManualClock) -> None:
    kakao, naver = wallets(clock)
    router = make_router(kakao, naver, providers=wallet_providers())
    session = router.start_checkout(order(), Method.KAKAOPAY, URLS)
    with pytest.raises(Declined):
        router.complete_checkout(
            session.session_id, {"token": "cancel", "tid": session.provider_txn_id or ""}
        )
    assert kakao.live_charges() == []


def test_two_approved_checkouts_for_one_order_keep_one_charge(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    kakao, naver = wallets(clock)
    router = make_router(kakao, naver, providers=wallet_providers())
    first = router.start_checkout(order(), Method.KAKAOPAY, URLS)
    second = router.start_checkout(order(), Method.NAVERPAY, URLS)
    paid = router.complete_checkout(second.session_id, approve_params(second.provider_txn_id))
    late = router.complete_checkout(first.session_id, approve_params(first.provider_txn_id))
    assert late == paid
    assert kakao.requests["approve"] == 0, "a paid order is never approved again"
    assert double_charges(kakao, naver) == {}


def test_a_checkout_started_while_the_order_is_being_paid_waits_and_sends_nothing(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    kakao, naver = wallets(clock)
    router = make_router(kakao, naver, providers=wallet_providers())
    journal = router.router.journal
    # Another till is charging this order right now.
    other = charging_elsewhere(journal, order(), "naverpay", Method.NAVERPAY)
    with pytest.raises(OutcomeUnknown, match="in flight elsewhere") as caught:
        router.start_checkout(order(), Method.KAKAOPAY, URLS)
    assert caught.value.attempt_id == other.attempt_id
    assert kakao.requests["ready"] == 0
    assert [a.attempt_id for a in journal.attempts_for_order(order().order_id)] == [
        other.attempt_id
    ]


def test_a_return_while_another_attempt_is_in_flight_sends_nothing_and_keeps_the_checkout(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    kakao, naver = wallets(clock)
    router = make_router(kakao, naver, providers=wallet_providers())
    session = router.start_checkout(order(), Method.KAKAOPAY, URLS)
    journal = router.router.journal
    # Another worker is charging the same order right now (its attempt is in flight).
    other = charging_elsewhere(journal, order(), "naverpay", Method.NAVERPAY)
    params = approve_params(session.provider_txn_id)
    with pytest.raises(OutcomeUnknown, match="in flight elsewhere") as caught:
        router.complete_checkout(session.session_id, params)
    assert caught.value.attempt_id == other.attempt_id
    assert kakao.requests["approve"] == 0
    held = journal.get_attempt(session.session_id)
    assert held is not None
    assert held.state is AttemptState.REDIRECTED  # nothing written: still the customer's
    # The other attempt ends without a payment: the customer's next return completes it.
    journal.update_attempt(other.attempt_id, state=AttemptState.FAILED)
    payment = router.complete_checkout(session.session_id, params)
    assert payment.provider == "kakaopay"
    assert kakao.requests["approve"] == 1


def test_checkout_approved_amount_is_checked_against_the_order(
    kind: str, clock: ManualClock, journal_path: object
) -> None:
    bank = FakeBank("kakaopay", clock=clock)

    def tamper(request: httpx.Request) -> httpx.Response:
        response = bank.respond(request)
        if request.url.path.endswith("/approve") and response.status_code == 200:
            body = response.json()
            body["amount"] = 1_000
            return httpx.Response(200, json=body)
        return response

    journal = SQLiteJournal(str(journal_path), clock=clock)
    with RouterHarness(
        kind,  # type: ignore[arg-type]
        [FakeProvider("kakaopay", methods=[Method.KAKAOPAY])],
        httpx.MockTransport(tamper),
        clock=clock,
        journal=journal,
    ) as router:
        session = router.start_checkout(order(), Method.KAKAOPAY, URLS)
        with pytest.raises(InvalidRequest, match="approved 1,000 KRW"):
            router.complete_checkout(session.session_id, approve_params(session.provider_txn_id))
        assert journal.payment_for_order("ORD-1") is None
        # The wrongly approved charge is given back, journaled first.
        assert [r.kind for r in journal.refunds_for_order("ORD-1")] == ["compensation"]
    journal.close()


def test_bad_order_input_is_rejected_with_what_to_fix() -> None:
    with pytest.raises(InvalidRequest, match="must be an int in minor units"):
        Money(amount=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="unknown currency"):
        Money(amount=100, currency="XYZ")
    with pytest.raises(InvalidRequest, match="not valid"):
        order(order_id="")


def test_retry_policy_deadline_bounds_the_request(
    make_router: MakeRouter, banks: tuple[FakeBank, ...], clock: ManualClock
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.UNAVAILABLE_503, times=20)
    router = make_router(a, b, retry=RetryPolicy(attempts_per_provider=10, deadline=3.0))
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert charges(a) < 10


def test_maintenance_window_routes_around_the_provider_in_advance(
    make_router: MakeRouter, banks: tuple[FakeBank, ...], clock: ManualClock
) -> None:
    a, b, _ = banks
    window = MaintenanceWindow(
        provider="toss",
        start=clock.now() - timedelta(minutes=1),
        end=clock.now() + timedelta(hours=2),
        reason="announced maintenance",
    )
    events: list[tuple[str, dict[str, object]]] = []
    router = make_router(
        a, b, maintenance=[window], listeners=[lambda n, f: events.append((n, dict(f)))]
    )
    payment = router.charge(order(), [card("toss"), card("nice")])
    assert payment.provider == "nice"
    assert sum(a.requests.values()) == 0
    skipped = [f for n, f in events if n == "payment.skipped"]
    assert "announced maintenance" in str(skipped[0]["reason"])
    assert [c.provider for c in router.available(Method.CARD)] == ["nice"]
    clock.advance(3 * 3600)
    assert [c.provider for c in router.available(Method.CARD)] == ["toss", "nice"]


def test_a_second_checkout_charged_by_the_providers_own_page_is_given_back(
    make_router: MakeRouter, clock: ManualClock
) -> None:
    # Some providers' browser SDKs take the money themselves (PortOne); when the order was
    # already paid through another checkout, that second charge must be refunded.
    kakao, naver = wallets(clock)
    router = make_router(kakao, naver, providers=wallet_providers())
    first = router.start_checkout(order(), Method.KAKAOPAY, URLS)
    second = router.start_checkout(order(), Method.NAVERPAY, URLS)
    paid = router.complete_checkout(second.session_id, approve_params(second.provider_txn_id))
    # The customer also finished the first checkout, and that provider charged on its own.
    tid = first.provider_txn_id
    paid_at_the_providers_page(kakao, tid, 39_000)
    assert len(kakao.live_charges()) == 1
    late = router.complete_checkout(first.session_id, approve_params(tid))
    assert late == paid
    assert kakao.live_charges() == []
    assert double_charges(kakao, naver) == {}
    refunds = router.router.journal.refunds_for_order("ORD-1")
    assert [(r.kind, r.state) for r in refunds] == [("compensation", RefundState.SUCCEEDED)]


def test_lookups_stop_at_the_request_deadline(
    make_router: MakeRouter, banks: tuple[FakeBank, ...], clock: ManualClock
) -> None:
    a, b, _ = banks
    a.fail_next("charge", Fault.LOST_RESPONSE)
    a.fail_next("lookup", Fault.HANG, times=50)  # every inquiry waits out its read timeout
    router = make_router(
        a,
        b,
        providers=[FakeProvider("toss", idempotency=False, void_window=None), FakeProvider("nice")],
        retry=RetryPolicy(deadline=20.0, lookup_attempts=10),
    )
    before = clock.monotonic()
    with pytest.raises(OutcomeUnknown):
        router.charge(order(), [card("toss"), card("nice")])
    waited = clock.monotonic() - before
    read_timeout = max(s.read_timeout for s in BreakerPolicy.default().all_settings)
    assert waited < 20.0 + 2 * read_timeout  # bounded by the deadline, not by 10 lookups
    assert a.requests["lookup"] < 10
    assert charges(b) == 0


def test_an_owed_refund_gets_a_new_key_after_a_try_that_certainly_failed(
    kind: str, clock: ManualClock, journal_path: object
) -> None:
    # Providers that replay a stored error for a known key would otherwise refuse every
    # later try of the owed refund with that same error.
    bank = FakeBank("toss", clock=clock)
    keys: list[str | None] = []

    def spy(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            keys.append(request.headers.get("idempotency-key"))
        return bank.respond(request)

    journal = SQLiteJournal(str(journal_path), clock=clock)
    with RouterHarness(
        kind,  # type: ignore[arg-type]
        [FakeProvider("toss")],
        httpx.MockTransport(spy),
        clock=clock,
        journal=journal,
    ) as router:
        payment = router.charge(order(), [card("toss")])
        bank.fail_next("cancel", Fault.UNAVAILABLE_503, times=10)
        refund = router.refund(payment.payment_id)
        assert refund.state == RefundState.OWED
        assert keys
        assert len(set(keys)) == 1  # retries within one try reuse their key
        assert refund.idempotency_key not in keys  # the next try has a key of its own
        bank.clear_faults()
        report = router.recover()
        assert report.refunds_settled == [refund.refund_id]
        assert keys[-1] == refund.idempotency_key
        assert bank.live_charges() == []
    journal.close()
