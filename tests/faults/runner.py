"""Run one fault schedule through a Router over the real adapters; check the ledgers.

A :class:`Schedule` is a POS's afternoon: a few orders charged with stored billing keys
at one to three providers (Toss Payments, NICEPAY, PortOne, in the instruments' order),
some refunded, ``recover()`` run now and then, while the providers misbehave request by
request (:mod:`tests.faults.emulator`). When a fault kills the POS (:class:`Crash`, or
the journal closed under it), a new Router starts on the same SQLite journal file after
``restart_gap`` seconds and runs ``recover()`` first, as a restarted POS does.

Then the providers come back. Time passes (past every lease, lookup lag and late commit);
``recover()`` runs; the POS charges its unpaid orders once more (safe: per-order
idempotent) and runs ``recover()`` again, until it reports clean or four rounds have
passed. Then the ledgers are held against the journal (:class:`Outcome`):

* **double charges** — an order with more than one live charge across all ledgers;
* **orphaned charges** — a live charge that is not its order's recorded payment and that
  no refund in the journal is giving back;
* **lost refunds** — a refund the journal owes that is still owed, or one it settled that
  the ledger does not show (money the shop believes returned and the customer never got);
* **extra refunds** — more cancelled at the provider than the journal settled;
* **phantom payments** — a payment the journal recorded with no charge in the ledger;
* **unresolved** — attempts still open (unknown, pending, superseded without a refund,
  in flight), and refunds still owed; ``open_without_proof`` counts the subset that holds
  no money anywhere and whose provider has nothing that could prove it (NICEPAY, after a
  request that hung: no replay, no settle window, and its net cancel finds nothing);
* **secrets leaked** — a secret value (keys, ``Authorization`` values, billing keys,
  raw or URL-escaped) in any raised error (``str``/``repr``/context), structlog event,
  listener event, return value, or any row of any journal table, although every error
  answer of the emulator echoes them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import structlog

from payfallback import (
    AsyncRouter,
    ManualClock,
    Money,
    Order,
    PayfallbackError,
    RefundState,
    Router,
)
from payfallback._core import RecoveryReport
from payfallback.journal import SQLiteJournal
from payfallback.models import AttemptState, CheckoutSession, Method, Payment, Refund, ReturnUrls
from payfallback.provider import Proof
from tests.faults import adapters
from tests.faults.emulator import CANCEL_FAULTS, CHARGE_FAULTS, Crash, Emulator

T = TypeVar("T")

#: Rounds of "time passes, recover, charge the open orders again, recover" at the end.
FINAL_ROUNDS = 4
#: Time between those rounds: past the default lease (120 s) and any lookup lag.
ROUND_GAP = 150.0


# -- schedules -----------------------------------------------------------------------------

Faults = tuple[tuple[str, tuple[str | None, ...]], ...]


@dataclass(frozen=True)
class Pay:
    """Charge order ``order`` with the schedule's instruments."""

    order: int
    faults: Faults = ()
    down: tuple[str, ...] = ()


@dataclass(frozen=True)
class RefundStep:
    """Refund order ``order``'s payment (3,000 or all that is left), clicked ``clicks``
    times with one idempotency key."""

    order: int
    part: bool = False
    clicks: int = 1
    faults: Faults = ()
    down: tuple[str, ...] = ()
    #: Refund the payment-window order ``100 + order`` instead.
    checkout: bool = False

    @property
    def number(self) -> int:
        return 100 + self.order if self.checkout else self.order


@dataclass(frozen=True)
class Checkout:
    """Order ``100 + order`` through Toss's payment window: the checkout starts, the
    customer pays in the window, the shop's return handler completes it (under faults).
    A checkout the Router starts elsewhere (Toss's breaker open) is abandoned by the
    customer: nothing moves at a client-side ready."""

    order: int
    faults: Faults = ()
    down: tuple[str, ...] = ()

    @property
    def number(self) -> int:
        return 100 + self.order


@dataclass(frozen=True)
class Recover:
    """``recover()`` mid-afternoon (a cron ``payfallback reconcile``), under faults."""

    faults: Faults = ()
    down: tuple[str, ...] = ()


Step = Pay | RefundStep | Recover | Checkout


@dataclass(frozen=True)
class Schedule:
    instruments: tuple[str, ...]
    steps: tuple[Step, ...]
    commit_delay: float = 2.0
    lookup_lag: float = 10.0
    #: Seconds between a crash and the new process (a lease may still be live).
    restart_gap: float = 130.0
    compensate: bool = False
    kind: str = "sync"

    @property
    def orders(self) -> list[int]:
        """The orders charged with billing keys."""
        return sorted({s.order for s in self.steps if isinstance(s, Pay)})

    @property
    def checkouts(self) -> list[int]:
        """The orders paid through Toss's payment window."""
        return sorted({s.number for s in self.steps if isinstance(s, Checkout)})


URLS = ReturnUrls(
    success="https://shop.example/pay/success",
    cancel="https://shop.example/pay/cancel",
    fail="https://shop.example/pay/fail",
)


def order(n: int) -> Order:
    return Order(order_id=f"ORD-{n:04d}", amount=Money(amount=10_000 + 1_000 * n), name="커피 원두")


class Pick(Protocol):
    """Where a schedule's choices come from: hypothesis's ``draw`` or a seeded Random."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...


PAY_FAULTS: tuple[str | None, ...] = (None, None, None, None, *CHARGE_FAULTS)
REFUND_FAULTS: tuple[str | None, ...] = (None, None, None, *CANCEL_FAULTS)


def _faults(pick: Pick, providers: Sequence[str], menu: tuple[str | None, ...]) -> Faults:
    out = []
    for name in providers:
        faults = tuple(pick.choice(menu) for _ in range(pick.integer(0, 2)))
        if any(faults):
            out.append((name, faults))
    return tuple(out)


def _down(pick: Pick, providers: Sequence[str]) -> tuple[str, ...]:
    return tuple(p for p in providers if pick.integer(0, 9) == 0)


def draw_schedule(pick: Pick, *, max_steps: int = 6, max_orders: int = 4) -> Schedule:
    """One schedule; the same code draws for hypothesis and for the campaign."""
    pool = list(adapters.BILLING)
    instruments = []
    for _ in range(pick.integer(1, 3)):
        chosen = pick.choice(pool)
        pool.remove(chosen)
        instruments.append(chosen)
    steps: list[Step] = []
    for _ in range(pick.integer(1, max_steps)):
        menu: tuple[str, ...] = ("pay", "pay", "pay", "pay", "refund", "refund", "recover")
        if adapters.TOSS in instruments:
            menu = (*menu, "checkout", "checkout")
        what = pick.choice(menu)
        n = pick.integer(0, max_orders - 1)
        if what == "checkout":
            steps.append(
                Checkout(n, _faults(pick, instruments, PAY_FAULTS), _down(pick, instruments))
            )
        elif what == "pay" or not steps:
            steps.append(Pay(n, _faults(pick, instruments, PAY_FAULTS), _down(pick, instruments)))
        elif what == "refund":
            steps.append(
                RefundStep(
                    n,
                    part=pick.choice((True, False)),
                    clicks=pick.choice((1, 1, 2)),
                    faults=_faults(pick, instruments, REFUND_FAULTS),
                    down=_down(pick, instruments),
                    checkout=adapters.TOSS in instruments and pick.choice((False, True)),
                )
            )
        else:
            steps.append(
                Recover(_faults(pick, instruments, REFUND_FAULTS), _down(pick, instruments))
            )
    return Schedule(
        instruments=tuple(instruments),
        steps=tuple(steps),
        commit_delay=pick.choice((0.5, 2.0, 20.0)),
        lookup_lag=pick.choice((0.0, 10.0, 90.0)),
        restart_gap=pick.choice((1.0, 130.0)),
        compensate=pick.choice((False, False, True)),
        kind=pick.choice(("sync", "sync", "sync", "async")),
    )


# -- outcome -------------------------------------------------------------------------------

COUNTS = (
    "orders",
    "double_charges",
    "orphaned_charges",
    "lost_refunds",
    "extra_refunds",
    "phantom_payments",
    "unresolved",
    "open_without_proof",
    "secrets_leaked",
    "library_errors",
)


@dataclass
class Outcome:
    schedules: int = 1
    orders: int = 0
    double_charges: int = 0
    orphaned_charges: int = 0
    lost_refunds: int = 0
    extra_refunds: int = 0
    phantom_payments: int = 0
    unresolved: int = 0
    open_without_proof: int = 0
    secrets_leaked: int = 0
    #: Exceptions out of the Router that are not PayfallbackError.
    library_errors: int = 0
    crashes: int = 0
    #: What the secret check looked through: error answers that echoed secrets, and
    #: structlog and listener events captured.
    secrets_echoed: int = 0
    log_events: int = 0
    #: What is left open, by kind: provider, attempt state, whether the order was paid
    #: (elsewhere), whether the attempt holds money.
    open_kinds: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    #: Ledger and journal of the first order with a problem, for the failure report.
    state: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.schedules += other.schedules
        self.crashes += other.crashes
        self.secrets_echoed += other.secrets_echoed
        self.log_events += other.log_events
        self.open_kinds.update(other.open_kinds)
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if len(self.problems) < 20:
            self.problems.extend(other.problems[:5])
        if not self.state:
            self.state = list(other.state)

    @property
    def money_ok(self) -> bool:
        """The one promise: nothing charged twice, nothing charged unknown, no refund lost."""
        return not (
            self.double_charges
            or self.orphaned_charges
            or self.lost_refunds
            or self.extra_refunds
            or self.phantom_payments
        )

    @property
    def ok(self) -> bool:
        return (
            self.money_ok and self.unresolved == self.open_without_proof and not self.secrets_leaked
        )

    def figures(self) -> dict[str, int]:
        out = {"schedules": self.schedules}
        out.update({name: getattr(self, name) for name in COUNTS})
        out["crashes"] = self.crashes
        out["secrets_echoed"] = self.secrets_echoed
        out["log_events"] = self.log_events
        return out

    def report(self) -> str:
        lines = [f"{k}={v}" for k, v in self.figures().items() if v]
        return "\n".join([", ".join(lines), *self.problems, *self.state])


# -- one POS process -----------------------------------------------------------------------


class _Pos:
    """One POS process: a Router (sync or async) on the shared journal file."""

    def __init__(
        self, schedule: Schedule, emu: Emulator, path: Path, listener: Callable[..., None]
    ) -> None:
        self.clock = emu.clock
        self.journal = SQLiteJournal(path, clock=self.clock, durable=False)
        # Toss first: start_checkout takes the first healthy provider for the method, and
        # the emulator's payment window is Toss's (charge() follows the instruments' order).
        names = sorted(schedule.instruments, key=lambda name: name != adapters.TOSS)
        providers = [adapters.provider(name) for name in names]
        options: dict[str, Any] = {
            "journal": self.journal,
            "clock": self.clock,
            "listeners": [listener],
            "compensate": schedule.compensate,
        }
        self._runner: asyncio.Runner | None = None
        if schedule.kind == "async":
            self._runner = asyncio.Runner()
            self._aclient = httpx.AsyncClient(transport=emu.transport())
            self.arouter = AsyncRouter(
                providers, client=self._aclient, sleep=self.clock.asleep, **options
            )
        else:
            self._client = httpx.Client(transport=emu.transport())
            self.router = Router(providers, client=self._client, sleep=self.clock.sleep, **options)
        self.closed = False
        self.journal_lost = False

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._runner is not None
        return self._runner.run(coro)

    def charge(self, n: int, instruments: Sequence[str]) -> Payment:
        insts = [adapters.instrument(name) for name in instruments]
        if self._runner is not None:
            return self._run(self.arouter.charge(order(n), insts))
        return self.router.charge(order(n), insts)

    def refund(self, payment_id: str, amount: Money | None, key: str) -> Refund:
        if self._runner is not None:
            return self._run(
                self.arouter.refund(payment_id, amount, reason="고객 요청", idempotency_key=key)
            )
        return self.router.refund(payment_id, amount, reason="고객 요청", idempotency_key=key)

    def start_checkout(self, n: int) -> CheckoutSession:
        if self._runner is not None:
            return self._run(self.arouter.start_checkout(order(n), Method.CARD, URLS))
        return self.router.start_checkout(order(n), Method.CARD, URLS)

    def complete_checkout(self, session_id: str, params: Mapping[str, str]) -> Payment:
        if self._runner is not None:
            return self._run(self.arouter.complete_checkout(session_id, params))
        return self.router.complete_checkout(session_id, params)

    def recover(self) -> RecoveryReport:
        if self._runner is not None:
            return self._run(self.arouter.recover())
        return self.router.recover()

    def close(self) -> None:
        """The process ends (or died): its connections go away, nothing else runs."""
        if self.closed:
            return
        self.closed = True
        if self._runner is not None:
            self._runner.run(self._aclient.aclose())
            self._runner.close()
        else:
            self._client.close()
        self.journal.close()


# -- running -------------------------------------------------------------------------------


@contextmanager
def _journal_dir() -> Iterator[Path]:
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() else None
    with tempfile.TemporaryDirectory(dir=base, prefix="pf-faults-") as tmp:
        yield Path(tmp)


class _Run:
    def __init__(self, schedule: Schedule, path: Path) -> None:
        self.schedule = schedule
        self.clock = ManualClock()
        self.emu = Emulator(
            self.clock, commit_delay=schedule.commit_delay, lookup_lag=schedule.lookup_lag
        )
        self.emu.on_close = self._journal_lost
        self.path = path
        self.texts: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.crashes = 0
        self.unexpected: list[str] = []
        #: Checkout order → (session id, successUrl parameters): the customer's browser
        #: calls the return URL again until it gets an answer.
        self.returns: dict[int, tuple[str, dict[str, str]]] = {}
        self.pos = self._start()

    def _listen(self, name: str, fields: Any) -> None:
        self.events.append((name, dict(fields)))

    def _start(self) -> _Pos:
        return _Pos(self.schedule, self.emu, self.path, self._listen)

    def _journal_lost(self) -> None:
        # The journal goes away under the running Router (disk gone, process torn down).
        self.pos.journal.close()
        self.pos.journal_lost = True

    def restart(self) -> None:
        """The POS died: a new process starts on the same file and recovers first."""
        self.crashes += 1
        self.pos.close()
        self.emu.faults = {}
        self.emu.down = set()
        self.clock.advance(self.schedule.restart_gap)
        self.pos = self._start()
        self.attempt(self.pos.recover)

    def attempt(self, fn: Callable[[], T]) -> T | None:
        """Run one POS action; errors are the merchant's to see, a crash restarts the POS."""
        try:
            result = fn()
        except PayfallbackError as exc:
            self.texts.append(f"{exc!s} | {exc!r} | {exc.context()!r}")
            if self.pos.journal_lost:  # the process notices its journal is gone, and ends
                self.restart()
            return None
        except Crash:
            self.restart()
            return None
        except Exception as exc:
            self.texts.append(f"{exc!s} | {exc!r}")
            if self.pos.journal_lost:
                # The journal was closed under the Router: that process is gone.
                self.restart()
            else:
                # Not one of the library's errors: the till would show a traceback.
                self.unexpected.append(f"{type(exc).__name__}: {exc}")
            return None
        if isinstance(result, CheckoutSession):
            # client_params are for the browser (NICEPAY's clientId among them): the one
            # place a client key is meant to go. The journal row is still checked.
            shown: object = result.model_copy(update={"client_params": {}})
        else:
            shown = result
        self.texts.append(repr(shown))
        if self.pos.journal_lost:
            self.restart()
        return result

    def arm(self, step: Step) -> None:
        self.emu.faults = {name: list(faults) for name, faults in step.faults}
        self.emu.down = set(step.down)

    def run_step(self, index: int, step: Step) -> None:
        self.arm(step)
        if isinstance(step, Pay):
            self.attempt(lambda: self.pos.charge(step.order, self.schedule.instruments))
        elif isinstance(step, Checkout):
            self.checkout(step.number)
        elif isinstance(step, RefundStep):
            payment = self.pos.journal.payment_for_order(order(step.number).order_id)
            if payment is not None and payment.refundable.amount > 0:
                amount = Money(amount=min(3_000, payment.refundable.amount)) if step.part else None
                key = f"refund-{step.number}-{index}"
                for _ in range(step.clicks):
                    pid = payment.payment_id
                    self.attempt(lambda pid=pid: self.pos.refund(pid, amount, key))  # type: ignore[misc]
        else:
            self.attempt(self.pos.recover)
        self.emu.faults = {}
        self.emu.down = set()
        self.clock.advance(3.0)

    def checkout(self, n: int) -> None:
        if self.pos.journal.payment_for_order(order(n).order_id) is not None:
            return
        session = self.attempt(lambda: self.pos.start_checkout(n))
        if session is None or session.provider != adapters.TOSS:
            return  # no window opened, or another provider's: the customer leaves
        params = self.emu.toss_authenticate(session.session_id, order(n).amount.amount)
        self.returns[n] = (session.session_id, params)
        self.attempt(lambda: self.pos.complete_checkout(session.session_id, params))

    def finish(self) -> RecoveryReport | None:
        """The providers behave again: recover, charge the open orders again, recover."""
        report: RecoveryReport | None = None
        for _ in range(FINAL_ROUNDS):
            self.clock.advance(ROUND_GAP)
            self.attempt(self.pos.recover)
            for n in self.schedule.orders:
                if self.pos.journal.payment_for_order(order(n).order_id) is None:
                    self.attempt(lambda n=n: self.pos.charge(n, self.schedule.instruments))  # type: ignore[misc]
            for n, (sid, params) in self.returns.items():
                if self.pos.journal.payment_for_order(order(n).order_id) is None:
                    # The customer reloads the success page.
                    self.attempt(lambda sid=sid, p=params: self.pos.complete_checkout(sid, p))  # type: ignore[misc]
            report = self.attempt(self.pos.recover)
            if report is not None and report.clean:
                break
        return report


def run_schedule(schedule: Schedule) -> Outcome:
    """Pay the schedule's orders under its faults, crash and recover; check the ledgers."""
    with _journal_dir() as tmp, structlog.testing.capture_logs() as logs:
        run = _Run(schedule, tmp / "journal.sqlite3")
        try:
            for index, step in enumerate(schedule.steps):
                run.run_step(index, step)
            report = run.finish()
            return check(run, report, logs)
        finally:
            run.pos.close()


# -- invariants ----------------------------------------------------------------------------


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [f"{t}: {db.execute(f'SELECT * FROM {t}').fetchall()!r}" for t in tables]


def _journal_state(run: _Run, order_id: str) -> list[str]:
    journal = run.pos.journal
    lines = [f"journal payment: {journal.payment_for_order(order_id)!r}"]
    lines += [
        f"journal attempt: {a.attempt_id} {a.provider} {a.state.value} txn={a.provider_txn_id} "
        f"err={a.error_message!r} recheck_until={a.recheck_until}"
        for a in journal.attempts_for_order(order_id)
    ]
    lines += [
        f"journal refund: {r.refund_id} {r.kind} {r.provider} txn={r.provider_txn_id} "
        f"{r.amount.amount} {r.state.value}"
        for r in journal.refunds_for_order(order_id)
    ]
    return lines


def check(run: _Run, report: RecoveryReport | None, logs: Sequence[Any]) -> Outcome:
    schedule, emu, journal = run.schedule, run.emu, run.pos.journal
    ledger = emu.ledger
    now = ledger.now
    out = Outcome(orders=len(schedule.orders) + len(schedule.checkouts), crashes=run.crashes)
    bad: list[str] = []
    out.library_errors = len(run.unexpected)
    out.secrets_echoed = emu.echoed
    out.log_events = len(logs) + len(run.events)
    out.problems.extend(f"not a PayfallbackError: {e}" for e in run.unexpected[:3])

    def problem(order_id: str, text: str) -> None:
        out.problems.append(f"{order_id}: {text}")
        bad.append(order_id)

    order_ids = {order(n).order_id for n in [*schedule.orders, *schedule.checkouts]} | {
        c.order_id for c in ledger.charges
    }
    for order_id in sorted(order_ids):
        live = [c for c in ledger.charges if c.order_id == order_id and c.live(now)]
        payment = journal.payment_for_order(order_id)
        refunds = journal.refunds_for_order(order_id)
        if len(live) > 1:
            out.double_charges += 1
            problem(order_id, f"charged {len(live)} times: {[(c.provider, c.txn) for c in live]}")
        for charge in live:
            if payment is not None and (payment.provider, payment.provider_txn_id) == (
                charge.provider,
                charge.txn,
            ):
                continue
            giving_back = [
                r
                for r in refunds
                if (r.provider, r.provider_txn_id) == (charge.provider, charge.txn)
                and r.state != RefundState.FAILED
            ]
            if giving_back:
                out.lost_refunds += 1
                owed = giving_back[0]
                problem(
                    order_id,
                    f"{charge.provider} {charge.txn} still live; refund {owed.refund_id} "
                    f"{owed.state.value}",
                )
            else:
                out.orphaned_charges += 1
                problem(order_id, f"{charge.provider} {charge.txn} live and unknown to the journal")
        if payment is not None:
            held = ledger.by_txn(payment.provider, payment.provider_txn_id)
            if held is None or not held.committed(now):
                out.phantom_payments += 1
                problem(
                    order_id,
                    f"payment {payment.provider} {payment.provider_txn_id} not in the ledger",
                )
            else:
                at_provider = held.cancelled(now)
                if at_provider < payment.refunded.amount:
                    out.lost_refunds += 1
                    problem(
                        order_id,
                        f"journal refunded {payment.refunded.amount}, ledger {at_provider}",
                    )
                elif at_provider > payment.refunded.amount:
                    out.extra_refunds += 1
                    problem(
                        order_id,
                        f"ledger cancelled {at_provider}, journal {payment.refunded.amount}",
                    )
    for refund in journal.refunds_owed():
        out.lost_refunds += 1
        problem(refund.order_id, f"refund {refund.refund_id} ({refund.kind}) still owed")

    # Still open: attempts of unknown outcome, pending or in flight, superseded charges
    # with no refund journaled; owed refunds are counted above.
    open_attempts = {a.attempt_id: a for a in journal.unresolved_attempts()}
    open_attempts.update({a.attempt_id: a for a in journal.in_flight_attempts()})
    if report is not None:
        for aid in [*report.still_unresolved, *(f.attempt_id for f in report.in_flight)]:
            found = journal.get_attempt(aid)
            if found is not None:
                open_attempts[aid] = found
    for attempt in open_attempts.values():
        out.unresolved += 1
        made = ledger.by_attempt(attempt.provider, attempt.attempt_id)
        holds = made is not None and made.live(now)
        provable = Proof.REPLAY in adapters.provider(attempt.provider).capabilities.proofs
        paid = journal.payment_for_order(attempt.order_id) is not None
        out.open_kinds[
            f"{attempt.provider} {attempt.state.value}, order "
            f"{'paid' if paid else 'unpaid'}, {'holds money' if holds else 'nothing held'}"
        ] += 1
        if not holds and not provable and attempt.state != AttemptState.SUPERSEDED:
            out.open_without_proof += 1
        else:
            problem(attempt.order_id, f"attempt {attempt.attempt_id} still {attempt.state.value}")

    # Secrets: everything that came out of the library, and every journal row.
    sources = {
        "errors and return values": "\n".join(run.texts),
        "structlog events": repr(list(logs)),
        "listener events": repr(run.events),
        "recovery report": repr(report),
        **{f"journal {row.split(':', 1)[0]}": row for row in _dump(run.path)},
    }
    for secret in adapters.secret_values():
        where = [name for name, text in sources.items() if secret in text]
        if where:
            out.secrets_leaked += 1
            text = sources[where[0]]
            at = text.index(secret)
            out.problems.append(
                f"secret {secret[:8]}… in {', '.join(where)}: …{text[max(0, at - 100) : at]}…"
            )
    if bad:
        first = bad[0]
        out.state = [
            "--- ledger:",
            *ledger.describe(first),
            "--- journal:",
            *_journal_state(run, first),
            "--- requests:",
            *emu.trace[-40:],
        ]
    return out


__all__ = [
    "Checkout",
    "Outcome",
    "Pay",
    "Pick",
    "Recover",
    "RefundStep",
    "Schedule",
    "check",
    "draw_schedule",
    "order",
    "run_schedule",
]
