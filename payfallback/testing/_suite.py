"""The conformance scenarios, run through the Router against a kit's scripted answers."""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from payfallback._clock import ManualClock
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.models import (
    AttemptState,
    Method,
    Money,
    Order,
    Payment,
    PaymentStatus,
    RefundState,
    ReturnUrls,
)
from payfallback.provider import (
    Flow,
    LookupRequest,
    Operation,
    Provider,
    ReadyRequest,
    Status,
    TxnState,
)
from payfallback.retry import RetryPolicy
from payfallback.testing._harness import Kind, RouterHarness
from payfallback.testing.conformance import ConformanceKit

Handler = Callable[[httpx.Request], httpx.Response]

AMOUNT = 50_000
TXN = "T20221015153000000001"


class ScriptedTransport(httpx.MockTransport):
    """Answers requests in the order a scenario expects them, checking each operation."""

    def __init__(self, kit: ConformanceKit) -> None:
        self.kit = kit
        self.script: deque[tuple[Operation, Handler]] = deque()
        self.calls: list[tuple[Operation, httpx.Request]] = []
        self.standing: dict[Operation, Handler] = {}
        super().__init__(self._handle)

    def expect(self, op: Operation, handler: Handler) -> None:
        self.script.append((op, handler))

    def always(self, op: Operation, handler: Handler) -> None:
        """Answer every ``op`` request the script does not expect next with ``handler``
        (for lookups, whose number depends on the retry policy)."""
        self.standing[op] = handler

    def _handle(self, request: httpx.Request) -> httpx.Response:
        op = self.kit.operation_of(request)
        self.calls.append((op, request))
        if op in self.standing and (not self.script or self.script[0][0] != op):
            return self.standing[op](request)
        if not self.script:
            raise AssertionError(f"unexpected {op.value} request: {request.method} {request.url}")
        expected, handler = self.script.popleft()
        if op != expected:
            raise AssertionError(f"expected a {expected.value} request, the Router sent {op.value}")
        return handler(request)

    def ops(self) -> list[Operation]:
        return [op for op, _ in self.calls]

    def done(self) -> None:
        left = [op.value for op, _ in self.script]
        assert not left, f"the Router never sent: {left}"


def _raise(exc: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("scripted", request=request)

    return handler


@dataclass
class Case:
    kit: ConformanceKit
    provider: Provider
    harness: RouterHarness
    transport: ScriptedTransport
    journal: SQLiteJournal
    order: Order
    method: Method

    @property
    def redirect(self) -> bool:
        return self.kit.flow == Flow.REDIRECT

    @property
    def money_op(self) -> Operation:
        return Operation.APPROVE if self.redirect else Operation.CHARGE

    def ready_is_server_side(self) -> bool:
        return _ready_is_server_side(self.provider)

    def can_look_up(self) -> bool:
        caps = self.provider.capabilities
        if caps.lookup_by_order_id:
            return True
        if self.redirect:
            return self.ready_is_server_side() or caps.callback_txn_id_param is not None
        return False

    def pay(self, *handlers: tuple[Operation, Handler]) -> Payment:
        """Run the money-moving step (checkout or charge) with these scripted answers."""
        if self.redirect:
            if self.ready_is_server_side():
                self.transport.expect(
                    Operation.READY, lambda r: self.kit.ready_response(r, txn_id=TXN)
                )
            session = self.harness.start_checkout(self.order, self.method, _URLS)
            for op, handler in handlers:
                self.transport.expect(op, handler)
            return self.harness.complete_checkout(
                session.session_id, self.kit.callback_params(TXN, AMOUNT)
            )
        for op, handler in handlers:
            self.transport.expect(op, handler)
        return self.harness.charge(self.order, [self.kit.instrument()])

    def paid(self) -> tuple[Operation, Handler]:
        return self.money_op, lambda r: self.kit.paid_response(r, txn_id=TXN, amount=AMOUNT)

    def lookup_paid(self) -> tuple[Operation, Handler]:
        return Operation.LOOKUP, lambda r: self.kit.lookup_paid_response(
            r, txn_id=TXN, amount=AMOUNT
        )


def _ready_is_server_side(provider: Provider) -> bool:
    order = Order(order_id="ORD-PROBE", amount=Money(amount=AMOUNT), name="probe")
    probe = ReadyRequest(
        attempt_id="ORD-PROBE_1",
        order=order,
        method=sorted(provider.capabilities.methods, key=list(Method).index)[0],
        return_urls=_URLS,
        idempotency_key="probe",
    )
    return provider.build_ready(probe) is not None


_URLS = ReturnUrls(
    success="https://shop.example/pay/success",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)


@contextmanager
def _case(kit_cls: type[ConformanceKit], kind: Kind, directory: Path) -> Iterator[Case]:
    kit = kit_cls()
    provider = kit.make_provider()
    transport = ScriptedTransport(kit)
    clock = ManualClock()
    journal = SQLiteJournal(directory / "journal.sqlite3", clock=clock)
    method = sorted(provider.capabilities.methods, key=list(Method).index)[0]
    harness = RouterHarness(
        kind,
        [provider],
        transport,
        journal=journal,
        clock=clock,
        retry=RetryPolicy(attempts_per_provider=3, lookup_attempts=2, deadline=120.0),
    )
    order = Order(
        order_id="ORD-CONF-1",
        amount=Money(amount=AMOUNT, currency="KRW"),
        name="conformance order",
        customer_ref="customer-1",
    )
    try:
        yield Case(kit, provider, harness, transport, journal, order, method)
    finally:
        harness.close()
        journal.close()


def _raises(exc: type[PayfallbackError], fn: Callable[[], Any]) -> PayfallbackError:
    try:
        fn()
    except exc as caught:
        return caught
    raise AssertionError(f"expected {exc.__name__}")


# -- scenarios ------------------------------------------------------------------------------


def happy_path(c: Case) -> None:
    payment = c.pay(c.paid())
    assert payment.amount == c.order.amount
    assert payment.provider == c.provider.name
    assert payment.status == PaymentStatus.PAID
    assert c.transport.ops().count(c.money_op) == 1
    header = c.provider.capabilities.idempotency_header
    money = [r for op, r in c.transport.calls if op == c.money_op]
    # The header makes a *write* safe to replay. Where the money-moving step is a GET
    # (PortOne's approve verifies a payment the browser SDK already made), repeating it
    # is safe without a key and providers ignore the header on GET, so it is not required.
    if header is not None and money[0].method != "GET":
        assert money[0].headers.get(header), f"{header} missing on {c.money_op.value}"
    # Idempotent per order: asking again sends nothing.
    sent = len(c.transport.calls)
    again = c.harness.charge(c.order, [c.kit.instrument()]) if not c.redirect else None
    if again is not None:
        assert again == payment
    assert len(c.transport.calls) == sent


def decline(c: Case) -> None:
    _raises(Declined, lambda: c.pay((c.money_op, c.kit.decline_response)))
    # A decline is the customer's outcome: the provider stays healthy.
    assert any(ch.provider == c.provider.name for ch in c.harness.available())
    assert c.journal.payment_for_order(c.order.order_id) is None


def user_cancel(c: Case) -> None:
    _raises(Declined, lambda: c.pay((c.money_op, _cancel_handler(c.kit))))
    assert c.journal.payment_for_order(c.order.order_id) is None


def _cancel_handler(kit: ConformanceKit) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        response = kit.user_cancel_response(request)
        assert response is not None
        return response

    return handler


def timeout_then_lookup(c: Case) -> None:
    _lost_answer_then_lookup(c, _raise(httpx.ReadTimeout))


def server_error_then_lookup(c: Case) -> None:
    _lost_answer_then_lookup(c, c.kit.server_error_response)


def _lost_answer_then_lookup(c: Case, lost: Handler) -> None:
    if c.can_look_up():
        payment = c.pay((c.money_op, lost), c.lookup_paid())
        assert payment.amount == c.order.amount
        # Looked up before anything else; never sent the charge twice.
        ops = c.transport.ops()
        assert ops.count(c.money_op) == 1
        assert ops[-1] == Operation.LOOKUP
    elif c.provider.capabilities.idempotency_header is not None:
        payment = c.pay((c.money_op, lost), c.paid())
        money = [r for op, r in c.transport.calls if op == c.money_op]
        header = c.provider.capabilities.idempotency_header
        assert len({r.headers[header] for r in money}) == 1, "replay must reuse the key"
        assert payment.amount == c.order.amount
    else:
        _raises(OutcomeUnknown, lambda: c.pay((c.money_op, lost)))
        assert c.transport.ops().count(c.money_op) == 1
    c.transport.done()


def unknown_then_not_paid(c: Case) -> None:
    """A lost answer, then lookups that find no payment. Whether that ends the attempt
    depends on what the provider's answer proves (``Capabilities.proofs``): a final record
    of a failure does; "not found" right after the timeout does not, and then the Router
    uses the provider's next proof — a same-key replay, a net cancel — or keeps the order
    where it is."""
    c.transport.always(Operation.LOOKUP, lambda r: c.kit.lookup_not_paid_response(r, txn_id=TXN))
    caps = c.provider.capabilities
    lost = (c.money_op, _raise(httpx.ReadTimeout))
    if _not_paid_is_a_final_record(c):
        _raises(ProviderUnavailable, lambda: c.pay(lost))
        assert c.transport.ops().count(c.money_op) == 1
    elif caps.idempotency_header is not None:
        # The replay is the proof: its answer (here a decline) is the first request's.
        _raises(Declined, lambda: c.pay(lost, (c.money_op, c.kit.decline_response)))
        money = [r for op, r in c.transport.calls if op == c.money_op]
        assert len({r.headers.get(caps.idempotency_header) for r in money}) == 1
    elif caps.void_window is not None and c.kit.void_response(_PROBE) is not None:

        def void(request: httpx.Request) -> httpx.Response:
            response = c.kit.void_response(request)
            assert response is not None
            return response

        _raises(ProviderUnavailable, lambda: c.pay(lost, (Operation.VOID, void)))
        assert c.transport.ops().count(c.money_op) == 1
    else:
        _raises(OutcomeUnknown, lambda: c.pay(lost))
        assert c.transport.ops().count(c.money_op) == 1
        attempts = c.journal.attempts_for_order(c.order.order_id)
        assert attempts[-1].state == AttemptState.UNKNOWN, "no proof: still open"
    assert c.journal.payment_for_order(c.order.order_id) is None


_PROBE = httpx.Request("POST", "https://probe.invalid/")


def _not_paid_is_a_final_record(c: Case) -> bool:
    """Whether the kit's "no payment" lookup answer is proof by itself."""
    order = c.order
    req = LookupRequest(attempt_id=f"{order.order_id}_1", order=order, provider_txn_id=TXN)
    response = c.kit.lookup_not_paid_response(c.provider.build_lookup(req), txn_id=TXN)
    status = c.provider.parse_lookup(req, response)
    caps = c.provider.capabilities
    if not isinstance(status, Status):
        return False
    if status.state == TxnState.CANCELLED:
        return True
    return status.state == TxnState.NOT_PAID and caps.failed_record_is_final


def full_cancel(c: Case) -> None:
    payment = c.pay(c.paid())
    c.transport.expect(
        Operation.CANCEL,
        lambda r: c.kit.cancel_response(r, txn_id=TXN, amount=AMOUNT, remaining=0),
    )
    refund = c.harness.refund(payment.payment_id, reason="customer returned the goods")
    assert refund.state == RefundState.SUCCEEDED
    stored = c.journal.get_payment(payment.payment_id)
    assert stored is not None
    assert stored.status == PaymentStatus.REFUNDED
    assert stored.refunded == payment.amount


def partial_cancel(c: Case) -> None:
    payment = c.pay(c.paid())
    first = 20_000
    c.transport.expect(
        Operation.CANCEL,
        lambda r: c.kit.cancel_response(r, txn_id=TXN, amount=first, remaining=AMOUNT - first),
    )
    refund = c.harness.refund(payment.payment_id, Money(amount=first), reason="one item back")
    assert refund.state == RefundState.SUCCEEDED
    assert refund.expected_remaining == AMOUNT
    c.transport.expect(
        Operation.CANCEL,
        lambda r: c.kit.cancel_response(r, txn_id=TXN, amount=AMOUNT - first, remaining=0),
    )
    rest = c.harness.refund(payment.payment_id, reason="the rest")
    assert rest.amount.amount == AMOUNT - first
    assert rest.expected_remaining == AMOUNT - first
    stored = c.journal.get_payment(payment.payment_id)
    assert stored is not None
    assert stored.status == PaymentStatus.REFUNDED


def refund_over_paid(c: Case) -> None:
    payment = c.pay(c.paid())
    sent = len(c.transport.calls)
    _raises(InvalidRequest, lambda: c.harness.refund(payment.payment_id, Money(amount=AMOUNT + 1)))
    assert len(c.transport.calls) == sent, "an over-refund must be refused before sending"


def bad_credentials(c: Case) -> None:
    if c.redirect and c.ready_is_server_side():
        c.transport.expect(Operation.READY, c.kit.bad_credentials_response)
        _raises(ConfigurationError, lambda: c.harness.start_checkout(c.order, c.method, _URLS))
        return
    _raises(ConfigurationError, lambda: c.pay((c.money_op, c.kit.bad_credentials_response)))


def replayed_idempotent_request(c: Case) -> None:
    header = c.provider.capabilities.idempotency_header
    assert header is not None

    def in_progress(request: httpx.Request) -> httpx.Response:
        response = c.kit.replay_in_progress_response(request)
        assert response is not None
        return response

    steps: list[tuple[Operation, Handler]] = [(c.money_op, _raise(httpx.ReadTimeout))]
    if c.can_look_up():
        # Both inquiries fail to get through, so only a replay can tell.
        steps += [(Operation.LOOKUP, _raise(httpx.ConnectError))] * 2
    steps += [(c.money_op, in_progress)]
    if c.can_look_up():
        steps += [(Operation.LOOKUP, _raise(httpx.ConnectError))] * 2
    steps += [c.paid()]
    payment = c.pay(*steps)
    assert payment.amount == c.order.amount
    keys = {r.headers.get(header) for op, r in c.transport.calls if op == c.money_op}
    assert None not in keys, "every replay must carry the key"
    assert len(keys) == 1, "every replay must carry the same key"


def scenarios(kit: ConformanceKit) -> dict[str, Callable[[Case], None]]:
    """The scenarios that apply to a kit's provider and flow."""
    provider = kit.make_provider()
    out: dict[str, Callable[[Case], None]] = {
        "happy_path": happy_path,
        "timeout_then_lookup": timeout_then_lookup,
        "server_error_then_lookup": server_error_then_lookup,
        "full_cancel": full_cancel,
        "refund_over_paid": refund_over_paid,
        "bad_credentials": bad_credentials,
    }
    if kit.documented_declines:
        out["decline"] = decline
    probe = httpx.Request("POST", "https://probe.invalid/")
    if kit.flow == Flow.REDIRECT and kit.user_cancel_response(probe) is not None:
        out["user_cancel"] = user_cancel
    caps = provider.capabilities
    if caps.lookup_by_order_id or (
        kit.flow == Flow.REDIRECT
        and (caps.callback_txn_id_param is not None or _ready_is_server_side(provider))
    ):
        out["unknown_then_not_paid"] = unknown_then_not_paid
    if provider.capabilities.partial_cancel:
        out["partial_cancel"] = partial_cancel
    if (
        provider.capabilities.idempotency_header is not None
        and kit.replay_in_progress_response(probe) is not None
    ):
        out["replayed_idempotent_request"] = replayed_idempotent_request
    return out


def run(kit_cls: type[ConformanceKit], scenario: str, kind: Kind) -> None:
    """Run one scenario of ``kit_cls`` through a ``kind`` router."""
    fn = scenarios(kit_cls())[scenario]
    with tempfile.TemporaryDirectory() as tmp, _case(kit_cls, kind, Path(tmp)) as case:
        fn(case)
