"""Proof before "not paid": late commits, replays, voids, settle windows, rechecks, returns.

A small provider built on the adapter kit talks JSON to an emulator with an authoritative
ledger (``httpx.MockTransport`` on a manual clock). The emulator can commit a charge *after*
the client's read timeout and answer "not found" to lookups for a while after the commit —
the pattern that turned one timeout into two charges.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from pydantic import SecretStr

from payfallback import (
    Instrument,
    InvalidRequest,
    ManualClock,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    PaymentStatus,
    ReturnUrls,
)
from payfallback.adapter import AdapterKit, CodeRule, Secrets, Verdict, code_table, read_object
from payfallback.breaker import BreakerPolicy, BreakerSettings, PeakWindow
from payfallback.errors import Declined
from payfallback.models import AttemptState, RefundState
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    Capabilities,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Operation,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
)
from payfallback.retry import RetryPolicy
from payfallback.testing import RouterHarness

KEY = "live_secret_9f8e7d6c5b4a"
BILLING = "bk_live_0123456789abcdef"

CODES = code_table(
    {
        "DECLINED": CodeRule(Verdict.DECLINED, "card refused"),
        "IN_FLIGHT": CodeRule(Verdict.IN_FLIGHT, "same key still running"),
        "NOT_FOUND": CodeRule(Verdict.NOT_FOUND, "no such payment"),
        "UNAUTHORIZED": CodeRule(Verdict.CONFIGURATION, "bad key"),
    }
)


class MiniPG:
    """A provider on the kit: JSON over POST /charge, GET /payments/{orderId}, cancel, void."""

    def __init__(
        self,
        name: str,
        *,
        replay: bool = False,
        void: bool = False,
        settle: timedelta | None = None,
        final_failures: bool = True,
    ) -> None:
        self.name = name
        self.base = f"https://{name}.test"
        self.secrets = Secrets(KEY, f"Bearer {KEY}")
        self.kit = AdapterKit(
            provider=name,
            label=name,
            codes=CODES,
            request_id_headers=("x-mini-trace",),
            secrets=self.secrets,
        )
        self.capabilities = Capabilities(
            methods=frozenset({Method.CARD}),
            flows=frozenset({Flow.SERVER_CHARGE, Flow.REDIRECT}),
            lookup_by_order_id=True,
            idempotency_header="Idempotency-Key" if replay else None,
            void_window=timedelta(hours=1) if void else None,
            settle_window=settle,
            failed_record_is_final=final_failures,
            callback_txn_id_param="txnId",
        )

    def _post(self, path: str, body: dict[str, Any], key: str) -> httpx.Request:
        headers = {"Authorization": f"Bearer {KEY}"}
        if self.capabilities.idempotency_header:
            headers["Idempotency-Key"] = key
        return httpx.Request("POST", self.base + path, json=body, headers=headers)

    def _fail(self, op: Operation, attempt_id: str, response: httpx.Response) -> Failed:
        body = read_object(response) or {}
        return Failed(
            self.kit.classify(
                op, attempt_id, response, code=body.get("code"), message=body.get("message")
            )
        )

    def _paid(self, op: Operation, attempt_id: str, response: httpx.Response) -> Outcome:
        if not response.is_success:
            return self._fail(op, attempt_id, response)
        body = read_object(response)
        if body is None or body.get("status") != "PAID":
            return Failed(self.kit.unreadable("not a payment", op, attempt_id, response))
        return Approved(body["txnId"], Money(amount=body["amount"]))

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        return Redirect(None, {}, {"orderId": req.attempt_id})

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        params = req.callback_params
        if params.get("code"):
            raise Declined(f"the window says {params['code']}", provider=self.name)
        if params.get("amount") != str(req.order.amount.amount):
            raise self.kit.invalid("callback amount differs", Operation.APPROVE, req.attempt_id)
        body = {"orderId": req.attempt_id, "txnId": params["txnId"], "token": params.get("token")}
        return self._post("/confirm", body, req.idempotency_key)

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        return self._paid(Operation.APPROVE, req.attempt_id, response)

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        billing = self.kit.check_instrument(req.instrument, req.attempt_id)
        body = {"orderId": req.attempt_id, "amount": req.order.amount.amount, "billing": billing}
        return self._post("/charge", body, req.idempotency_key)

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        return self._paid(Operation.CHARGE, req.attempt_id, response)

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        return httpx.Request("GET", f"{self.base}/payments/{req.attempt_id}")

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        body = read_object(response) or {}
        if response.status_code == 404 and body.get("code") == "NOT_FOUND":
            return Status(TxnState.NOT_FOUND)
        if not response.is_success:
            return self._fail(Operation.LOOKUP, req.attempt_id, response)
        states = {
            "PAID": TxnState.PAID,
            "FAILED": TxnState.NOT_PAID,
            "CANCELLED": TxnState.CANCELLED,
            "READY": TxnState.AWAITING_CUSTOMER,
        }
        return Status(
            states[body["status"]],
            body.get("txnId"),
            Money(amount=body["amount"]) if body.get("amount") else None,
            body.get("cancelled", 0),
        )

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        self.kit.check_cancel(req, self.capabilities)
        body = {"amount": req.amount.amount, "taxFree": req.tax_free_amount}
        return self._post(f"/payments/{req.provider_txn_id}/cancel", body, req.idempotency_key)

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        if not response.is_success:
            return self._fail(Operation.CANCEL, req.attempt_id, response)
        return Cancelled(req.provider_txn_id, req.amount)

    def build_void(self, req: VoidRequest) -> httpx.Request:
        return self._post("/void", {"orderId": req.attempt_id}, req.idempotency_key)

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        if not response.is_success:
            return self._fail(Operation.VOID, req.attempt_id, response)
        return Cancelled(req.attempt_id, req.amount)


class Crash(BaseException):
    """The process dies (power cut, kill -9): nothing after this point runs."""


@dataclass
class Charge:
    order_id: str  # the attempt id
    txn: str
    amount: int
    committed_at: float
    cancelled: int = 0
    tax_free_cancelled: int = 0


@dataclass
class Emulator:
    """Two providers' ledgers; faults by attempt id."""

    clock: ManualClock
    late: dict[str, float] = field(default_factory=dict)  # attempt id -> commit delay
    lost: set[str] = field(default_factory=set)  # timeout, never arrived
    lag: float = 0.0  # lookups say "not found" this long after a commit
    decline: set[str] = field(default_factory=set)
    crash_after_commit: set[str] = field(default_factory=set)  # the client process dies
    echo: bool = False
    ledger: dict[tuple[str, str], Charge] = field(default_factory=dict)
    pending: dict[tuple[str, str], Charge] = field(default_factory=dict)
    keys: dict[tuple[str, str], httpx.Response] = field(default_factory=dict)
    # Answers of requests still running at the provider: (commit time, answer) by key.
    running: dict[tuple[str, str], tuple[float, httpx.Response]] = field(default_factory=dict)
    cancels: list[tuple[str, int, int]] = field(default_factory=list)

    def _settle(self) -> None:
        for k, c in list(self.pending.items()):
            if c.committed_at <= self.clock.monotonic():
                self.ledger[k] = self.pending.pop(k)

    def _error(self, status: int, code: str, request: httpx.Request) -> httpx.Response:
        message = f"{code}"
        if self.echo:  # a provider that echoes what it was sent
            message += (
                f" auth={request.headers.get('authorization')} body={request.content.decode()}"
            )
        return httpx.Response(status, json={"code": code, "message": message})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self._settle()
        pg = request.url.host.split(".")[0]
        path = request.url.path
        if request.method == "GET":
            aid = path.rsplit("/", 1)[1]
            c = self.ledger.get((pg, aid))
            if c is None or self.clock.monotonic() < c.committed_at + self.lag:
                return self._error(404, "NOT_FOUND", request)
            status = "CANCELLED" if c.cancelled >= c.amount else "PAID"
            return httpx.Response(
                200,
                json={
                    "status": status,
                    "txnId": c.txn,
                    "amount": c.amount,
                    "cancelled": c.cancelled,
                },
            )
        body = json.loads(request.content)
        key = (pg, request.headers.get("idempotency-key", ""))
        if path in ("/charge", "/confirm"):
            aid = body["orderId"]
            if key[1] and key in self.keys:
                return self.keys[key]
            if key[1] and key in self.running:
                done_at, answer = self.running[key]
                if self.clock.monotonic() < done_at:
                    return self._error(409, "IN_FLIGHT", request)
                return answer
            if aid in self.lost:
                self.lost.discard(aid)
                raise httpx.ReadTimeout("lost", request=request)
            if aid in self.decline:
                answer = self._error(400, "DECLINED", request)
            else:
                amount = body.get("amount") or 39_000
                charge = Charge(aid, f"T-{pg}-{aid}", amount, self.clock.monotonic())
                answer = httpx.Response(
                    200, json={"status": "PAID", "txnId": charge.txn, "amount": amount}
                )
                if aid in self.late:
                    charge.committed_at += self.late.pop(aid)
                    self.pending[(pg, aid)] = charge
                    if key[1]:
                        self.running[key] = (charge.committed_at, answer)
                    raise httpx.ReadTimeout("slow", request=request)
                self.ledger[(pg, aid)] = charge
                if aid in self.crash_after_commit:
                    self.crash_after_commit.discard(aid)
                    raise Crash(aid)
            if key[1]:
                self.keys[key] = answer
            return answer
        if path == "/void":
            aid = body["orderId"]
            self.pending.pop((pg, aid), None)
            if (c := self.ledger.get((pg, aid))) is not None:
                c.cancelled = c.amount
            return httpx.Response(200, json={"status": "VOIDED"})
        txn = path.split("/")[2]
        for c in self.ledger.values():
            if c.txn == txn:
                c.cancelled += body["amount"]
                c.tax_free_cancelled += body["taxFree"]
                self.cancels.append((txn, body["amount"], body["taxFree"]))
                return httpx.Response(200, json={"ok": True})
        return self._error(404, "NOT_FOUND", request)

    def live(self) -> dict[str, list[Charge]]:
        """Live charges by merchant order id (attempt ids are ``{order}_{n}``)."""
        self._settle()
        out: dict[str, list[Charge]] = {}
        for c in self.ledger.values():
            if c.cancelled < c.amount:
                out.setdefault(c.order_id.rsplit("_", 1)[0], []).append(c)
        return out


def order(oid: str = "ORD-1", amount: int = 39_000, **kw: Any) -> Order:
    return Order(order_id=oid, amount=Money(amount=amount), name="아메리카노", **kw)


def cards() -> list[Instrument]:
    return [
        Instrument(provider="primary", billing_key=SecretStr(BILLING)),
        Instrument(provider="second", billing_key=SecretStr(BILLING + "2")),
    ]


def harness(
    kind: str,
    tmp_path: Path,
    emu: Emulator,
    primary: MiniPG,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **options: Any,
) -> RouterHarness:
    """A Router over ``primary`` and a second PG, on ``emu`` (or ``handler`` in front of
    it)."""
    return RouterHarness(
        kind,  # type: ignore[arg-type]
        [primary, MiniPG("second")],
        httpx.MockTransport(handler or emu),
        journal=f"sqlite:///{tmp_path / 'j.sqlite3'}",
        clock=emu.clock,
        retry=RetryPolicy(lookup_attempts=3, deadline=10.0),
        **options,
    )


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_not_found_right_after_a_timeout_is_not_proof(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock(), late={"ORD-1_1": 20.0})
    with harness(kind, tmp_path, emu, MiniPG("primary", settle=timedelta(minutes=5))) as h:
        with pytest.raises(OutcomeUnknown):
            h.charge(order(), cards())
        assert emu.live() == {}  # nothing committed yet, and nothing sent elsewhere
        emu.clock.advance(60)
        report = h.recover()
        assert report.paid == ["ORD-1_1"]
        assert report.clean
        assert [c.txn for c in emu.live()["ORD-1"]] == ["T-primary-ORD-1_1"]
        assert h.charge(order(), cards()).provider == "primary"  # paid once, answered again


@KINDS
def test_compensate_moves_on_and_gives_the_late_charge_back(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock(), late={"ORD-1_1": 20.0})
    primary = MiniPG("primary", settle=timedelta(minutes=5))
    with harness(kind, tmp_path, emu, primary, compensate=True) as h:
        assert h.charge(order(), cards()).provider == "second"
        emu.clock.advance(60)
        report = h.recover()
        assert report.compensations
        assert report.clean
        assert [c.txn for c in emu.live()["ORD-1"]] == ["T-second-ORD-1_2"]


@KINDS
def test_a_same_key_replay_is_proof(kind: str, tmp_path: Path) -> None:
    # The first request never arrived; the replay runs it once and answers.
    emu = Emulator(ManualClock(), lost={"ORD-1_1"}, decline={"ORD-1_1"})
    with harness(kind, tmp_path, emu, MiniPG("primary", replay=True)) as h, pytest.raises(Declined):
        h.charge(order(), cards())
    assert emu.live() == {}


@KINDS
def test_a_replay_waits_out_the_first_request(kind: str, tmp_path: Path) -> None:
    # Committed 2 s after our timeout; the replay meanwhile answers 409 in flight.
    emu = Emulator(ManualClock(), late={"ORD-1_1": 2.0}, lag=30.0)
    with harness(kind, tmp_path, emu, MiniPG("primary", replay=True)) as h:
        payment = h.charge(order(), cards())
    assert payment.provider == "primary"
    assert list(emu.live()) == ["ORD-1"]
    assert len(emu.live()["ORD-1"]) == 1


@KINDS
def test_an_acknowledged_void_is_proof(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock(), late={"ORD-1_1": 1.0}, lag=600.0)
    with harness(kind, tmp_path, emu, MiniPG("primary", void=True)) as h:
        assert h.charge(order(), cards()).provider == "second"
    assert [c.txn for c in emu.live()["ORD-1"]] == ["T-second-ORD-1_2"]


@KINDS
def test_not_found_after_the_settle_window_is_proof_and_stays_watched(
    kind: str, tmp_path: Path
) -> None:
    emu = Emulator(ManualClock(), late={"ORD-1_1": 3600.0})
    # The lookups after the timeout take at least 0.75 s (RetryPolicy's lookup waits).
    with harness(kind, tmp_path, emu, MiniPG("primary", settle=timedelta(seconds=0.5))) as h:
        assert h.charge(order(), cards()).provider == "second"
        emu.clock.advance(3700)  # the provider commits it after all, an hour late
        report = h.recover()
        assert report.late_charges == ["ORD-1_1"]
        assert report.clean
    assert [c.txn for c in emu.live()["ORD-1"]] == ["T-second-ORD-1_2"]


@KINDS
def test_recover_is_not_clean_while_an_attempt_is_leased(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock())
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        journal = h.router.journal
        journal.begin_attempt(
            order(),
            provider="primary",
            method=Method.CARD,
            operation="charge",
            idempotency_key="k1",
            lease_seconds=120,
        )
        report = h.recover()
        assert not report.clean
        assert [f.attempt_id for f in report.in_flight] == ["ORD-1_1"]
        assert report.in_flight[0].lease_until is not None


@KINDS
def test_refund_with_an_idempotency_key_is_sent_once(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock())
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        paid = h.charge(order(tax_free_amount=9_000), cards())
        first = h.refund(
            paid.payment_id, Money(amount=10_000), reason="반품", idempotency_key="rf-1"
        )
        again = h.refund(
            paid.payment_id, Money(amount=10_000), reason="반품", idempotency_key="rf-1"
        )
        assert again.refund_id == first.refund_id
        assert first.state == RefundState.SUCCEEDED
        assert len(emu.cancels) == 1
        with pytest.raises(InvalidRequest, match="other arguments"):
            h.refund(paid.payment_id, Money(amount=5_000), reason="반품", idempotency_key="rf-1")
        # Pro rata: 10,000 of 39,000 takes 2,307 of the 9,000 tax-free; the last takes the rest.
        h.refund(paid.payment_id, None, reason="나머지")
        assert [c[2] for c in emu.cancels] == [10_000 * 9_000 // 39_000, 9_000 - 2_307]


@KINDS
def test_bad_refund_and_checkout_input_is_a_typed_error(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock())
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        paid = h.charge(order(), cards())
        with pytest.raises(InvalidRequest, match="Money"):
            h.refund(paid.payment_id, 5)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match="control character"):
            h.refund(paid.payment_id, reason="a\nb")
        urls = ReturnUrls(success="https://s/ok", cancel="https://s/c", fail="https://s/f")
        session = h.start_checkout(order("ORD-2"), "card", urls)  # type: ignore[arg-type]
        assert session.method == Method.CARD
        with pytest.raises(InvalidRequest, match="not a payment method"):
            h.start_checkout(order("ORD-3"), "cash", urls)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match="tax-free"):
            h.charge(order(tax_free_amount=1), cards())


def test_amounts_and_names_are_checked() -> None:
    with pytest.raises(InvalidRequest, match="largest amount"):
        Money(amount=2**63)
    with pytest.raises(InvalidRequest, match="control character"):
        Order(order_id="ORD-9", amount=Money(amount=1), name="coffee\r\nX-Injected: 1")


@KINDS
def test_a_forged_failure_return_does_not_wreck_the_checkout(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock())
    urls = ReturnUrls(success="https://s/ok", cancel="https://s/c", fail="https://s/f")
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        session = h.start_checkout(order(), Method.CARD, urls)
        with pytest.raises(Declined):
            h.complete_checkout(session.session_id, {"code": "USER_CANCEL"})
        with pytest.raises(InvalidRequest):
            h.complete_checkout(session.session_id, {"txnId": "T1", "amount": "1"})
        attempt = h.router.journal.get_attempt(session.session_id)
        assert attempt is not None
        assert attempt.state == AttemptState.REDIRECTED
        paid = h.complete_checkout(session.session_id, {"txnId": "T1", "amount": "39000"})
        assert paid.provider == "primary"


@KINDS
def test_secrets_echoed_by_a_provider_go_nowhere(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock(), echo=True, decline={"ORD-1_1", "ORD-1_2"})
    seen: list[Any] = []
    with (
        structlog.testing.capture_logs() as logs,
        harness(
            kind, tmp_path, emu, MiniPG("primary"), listeners=[lambda n, f: seen.append((n, f))]
        ) as h,
    ):
        with pytest.raises(Declined) as info:
            h.charge(order(), cards())
        rows = h.router.journal
    text = f"{info.value!s} {info.value!r} {logs} {seen}"
    with sqlite3.connect(tmp_path / "j.sqlite3") as db:
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            text += repr(db.execute(f"SELECT * FROM {table}").fetchall())
    assert rows is not None
    assert "DECLINED" in text  # the provider's words did get through
    for secret in (KEY, BILLING, BILLING + "2"):
        assert secret not in text


@KINDS
def test_a_crash_mid_approval_is_looked_up_not_failed(kind: str, tmp_path: Path) -> None:
    emu = Emulator(ManualClock(), crash_after_commit={"ORD-1_1"})
    urls = ReturnUrls(success="https://s/ok", cancel="https://s/c", fail="https://s/f")
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        session = h.start_checkout(order(), Method.CARD, urls)
        with pytest.raises(Crash):
            h.complete_checkout(session.session_id, {"txnId": "T1", "amount": "39000"})
    emu.clock.advance(300)  # the dead worker's lease runs out
    with harness(kind, tmp_path, emu, MiniPG("primary")) as h:
        report = h.recover()
        assert report.paid == ["ORD-1_1"]
        assert report.clean
        payment = h.router.journal.payment_for_order("ORD-1")
        assert payment is not None
        assert payment.provider_txn_id == "T-primary-ORD-1_1"


@KINDS
def test_the_providers_long_read_timeout_is_for_money_calls_not_lookups(
    kind: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, float | None]] = []
    emu = Emulator(ManualClock(), late={"ORD-1_1": 1.0}, lag=600.0)

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.extensions["timeout"]["read"]))
        return emu(request)

    slow = MiniPG("primary")
    slow.capabilities = dataclasses.replace(slow.capabilities, read_timeout=60.0)
    with (
        RouterHarness(
            kind,  # type: ignore[arg-type]
            [slow, MiniPG("second")],
            httpx.MockTransport(recording),
            journal=f"sqlite:///{tmp_path / 'j.sqlite3'}",
            clock=emu.clock,
            retry=RetryPolicy(lookup_attempts=2, deadline=10.0),
        ) as h,
        pytest.raises(OutcomeUnknown),
    ):
        h.charge(order(), cards())
    assert seen[0] == ("POST", 60.0)  # a billing charge may take the provider 60 s
    lookups = {read for method, read in seen if method == "GET"}
    assert lookups
    assert all(read is not None and read < 60.0 for read in lookups)


def _read_timeouts(
    emu: Emulator,
) -> tuple[list[float | None], Callable[[httpx.Request], httpx.Response]]:
    """The read timeout of every request, in order, and a handler in front of ``emu`` that
    records them."""
    seen: list[float | None] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return emu(request)

    return seen, recording


@KINDS
def test_a_charge_waits_as_long_as_the_settings_in_force_say(kind: str, tmp_path: Path) -> None:
    """The read timeout on each charge is that of the breaker settings in force when it is
    sent: peak hours' shorter one inside the peak window, the normal one outside it, and
    the normal one again after (the Router works each out once, not once only)."""
    emu = Emulator(ManualClock(datetime(2022, 10, 15, 7, 30, tzinfo=UTC)))  # 16:30 KST
    seen, recording = _read_timeouts(emu)
    policy = BreakerPolicy(
        normal=BreakerSettings(read_timeout=12.0),
        peak=BreakerSettings(read_timeout=4.0),
        peak_windows=(
            PeakWindow(days=frozenset({5}), start=dt_time(17), end=dt_time(21), tz="Asia/Seoul"),
        ),
    )
    with harness(kind, tmp_path, emu, MiniPG("primary"), recording, breaker_policy=policy) as h:
        for n, hours in enumerate((0, 1, 1, 4)):  # 16:30, 17:30, 18:30, 22:30 KST
            emu.clock.advance(hours * 3600)
            assert h.charge(order(f"ORD-{n}"), cards()).status is PaymentStatus.PAID
    assert seen == [12.0, 4.0, 4.0, 12.0]


@KINDS
def test_a_providers_new_documented_read_timeout_holds_from_the_next_charge(
    kind: str, tmp_path: Path
) -> None:
    emu = Emulator(ManualClock())
    seen, recording = _read_timeouts(emu)
    primary = MiniPG("primary")
    policy = BreakerPolicy(normal=BreakerSettings(read_timeout=12.0))
    with harness(kind, tmp_path, emu, primary, recording, breaker_policy=policy) as h:
        assert h.charge(order("ORD-1"), cards()).status is PaymentStatus.PAID
        primary.capabilities = dataclasses.replace(primary.capabilities, read_timeout=60.0)
        assert h.charge(order("ORD-2"), cards()).status is PaymentStatus.PAID
    assert seen == [12.0, 60.0]
