"""Fault campaign: real adapters, an emulated provider ledger, faults, crashes, recovery.

Each *schedule* pays a few orders through a :class:`payfallback.Router` over the real
Toss Payments and NICEPAY billing adapters (either one primary), with a fault drawn for
each charge request (see :mod:`tests.fault_emulator`) and, after a crash, a new Router on
the same SQLite journal running ``recover()`` as a restarted POS would. Then the providers
behave again, time passes, the POS charges its open orders once more and ``recover()``
runs, and the ledgers are held against the journal:

* no order has more than one live charge (**double charges**);
* every live charge is its order's recorded payment (**orphaned charges**: charged, but
  the journal does not know it);
* no refund the journal owes is left unsent or unconfirmed (**lost refunds**);
* every attempt left open holds no money and is reported open (**unresolved**, with the
  number still open counted apart: NICEPAY offers no proof for a request that never
  arrived, so such an attempt stays open, honestly, with nothing charged);
* no secret — keys, Authorization values, billing keys — in any error, event, log line or
  journal row, although the emulator echoes all of them into its error answers.

Run the long campaign (documented in the README)::

    python -m tests.fault_campaign --schedules 10000 --seed 1

The test suite runs a few hundred hypothesis-drawn schedules of the same runner.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from payfallback_nicepay import Nicepay
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback import (
    Instrument,
    ManualClock,
    Money,
    Order,
    PayfallbackError,
    RefundState,
    RetryPolicy,
    Router,
)
from payfallback.journal import SQLiteJournal
from payfallback.provider import Provider
from tests.fault_emulator import FAULTS, NICE_CLIENT_KEY, NICE_SECRET, Crash, Emulator

TOSS_SECRET = "test_sk_fault0000000000000000Secret"
TOSS_BILLING_KEY = "Z_t5vOvQxrj4499PeiJcjen28-FaultKey3pWbLe3w"
NICE_BID = "BIKYnictest04m2210151530009999"
AUTH_TOSS = "Basic " + __import__("base64").b64encode(f"{TOSS_SECRET}:".encode()).decode()
AUTH_NICE = (
    "Basic " + __import__("base64").b64encode(f"{NICE_CLIENT_KEY}:{NICE_SECRET}".encode()).decode()
)
SECRETS = (TOSS_SECRET, TOSS_BILLING_KEY, NICE_BID, NICE_SECRET, AUTH_TOSS, AUTH_NICE)


@dataclass(frozen=True)
class Step:
    order: int  # which of the schedule's orders is charged
    toss: str | None  # fault for Toss's next charge request
    nice: str | None  # fault for NICEPAY's next charge request


@dataclass(frozen=True)
class Schedule:
    primary: str  # "tosspayments" | "nicepay"
    steps: tuple[Step, ...]


@dataclass
class Outcome:
    orders: int = 0
    double_charges: int = 0
    orphaned_charges: int = 0
    lost_refunds: int = 0
    unresolved_holding_money: int = 0
    open_without_proof: int = 0
    secrets_leaked: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        for name in (
            "orders",
            "double_charges",
            "orphaned_charges",
            "lost_refunds",
            "unresolved_holding_money",
            "open_without_proof",
            "secrets_leaked",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems[:3])

    @property
    def ok(self) -> bool:
        return not (
            self.double_charges
            or self.orphaned_charges
            or self.lost_refunds
            or self.unresolved_holding_money
            or self.secrets_leaked
        )


def _order(n: int) -> Order:
    return Order(order_id=f"F-{n}", amount=Money(amount=10_000 + 1_000 * n), name="커피 원두")


def _instruments(primary: str) -> list[Instrument]:
    toss = Instrument(
        provider="tosspayments",
        billing_key=SecretStr(TOSS_BILLING_KEY),
        customer_key="c5f2a1b0-7e4d-4f5a-9c33-customer",
    )
    nice = Instrument(provider="nicepay", billing_key=SecretStr(NICE_BID))
    return [toss, nice] if primary == "tosspayments" else [nice, toss]


def _router(emu: Emulator, journal: SQLiteJournal, seen: list[Any]) -> tuple[Router, httpx.Client]:
    client = httpx.Client(transport=httpx.MockTransport(emu))
    providers: list[Provider] = [
        TossPayments(secret_key=SecretStr(TOSS_SECRET)),
        Nicepay(client_key=NICE_CLIENT_KEY, secret_key=SecretStr(NICE_SECRET)),
    ]
    router = Router(
        providers,
        client=client,
        journal=journal,
        clock=emu.clock,
        sleep=emu.clock.sleep,
        retry=RetryPolicy(attempts_per_provider=2, lookup_attempts=3, deadline=30.0),
        listeners=[lambda name, fields: seen.append((name, dict(fields)))],
        lease_seconds=60.0,
    )
    return router, client


def run_schedule(schedule: Schedule) -> Outcome:
    """Pay the schedule's orders under its faults, crash and recover; check the ledgers."""
    clock = ManualClock()
    emu = Emulator(clock)
    seen: list[Any] = []
    texts: list[str] = []
    instruments = _instruments(schedule.primary)
    orders = sorted({s.order for s in schedule.steps})
    with tempfile.TemporaryDirectory() as tmp, structlog.testing.capture_logs() as logs:
        path = Path(tmp) / "journal.sqlite3"
        journal = SQLiteJournal(path, clock=clock)
        router, client = _router(emu, journal, seen)
        try:
            for step in schedule.steps:
                emu.faults = {"tosspayments": [step.toss], "nicepay": [step.nice]}
                try:
                    router.charge(_order(step.order), instruments)
                except PayfallbackError as exc:
                    texts.append(f"{exc!s} {exc!r}")
                except Crash:
                    # The process died: a new one starts on the same file after the dead
                    # one's leases ran out, and recovers first.
                    router.close()
                    client.close()
                    journal.close()
                    clock.advance(61.0)
                    journal = SQLiteJournal(path, clock=clock)
                    router, client = _router(emu, journal, seen)
                    emu.faults = {}
                    router.recover()
                clock.advance(3.0)
            # The providers behave again; time passes; the POS charges its open orders
            # again (safe: idempotent per order) and recovers.
            emu.faults = {}
            for _ in range(3):
                clock.advance(120.0)
                for n in orders:
                    try:
                        router.charge(_order(n), instruments)
                    except PayfallbackError as exc:
                        texts.append(f"{exc!s} {exc!r}")
                report = router.recover()
                if report.clean:
                    break
            return _check(emu, journal, path, report.still_unresolved, orders, texts, logs, seen)
        finally:
            router.close()
            client.close()
            journal.close()


def _check(
    emu: Emulator,
    journal: SQLiteJournal,
    path: Path,
    still_open: Sequence[str],
    orders: Sequence[int],
    texts: list[str],
    logs: list[Any],
    seen: list[Any],
) -> Outcome:
    out = Outcome(orders=len(orders))
    for order_id, charges in emu.live_by_order().items():
        if len(charges) > 1:
            out.double_charges += 1
            out.problems.append(f"{order_id} charged {len(charges)} times")
        payment = journal.payment_for_order(order_id)
        for charge in charges:
            if payment is None or (payment.provider, payment.provider_txn_id) != (
                charge.provider,
                charge.txn,
            ):
                out.orphaned_charges += 1
                out.problems.append(f"{order_id}: {charge.provider} {charge.txn} is no payment")
            elif payment.refunded.amount != charge.cancelled:
                out.lost_refunds += 1
                out.problems.append(f"{order_id}: refunded {payment.refunded} vs {charge}")
    for refund in journal.refunds_owed():
        out.lost_refunds += 1
        out.problems.append(f"refund {refund.refund_id} still owed")
    for n in orders:
        for refund in journal.refunds_for_order(_order(n).order_id):
            if refund.state == RefundState.FAILED:
                out.lost_refunds += 1
                out.problems.append(f"refund {refund.refund_id} failed")
    live = {(c.provider, c.attempt_id) for c in emu.live()}
    for attempt_id in still_open:
        attempt = journal.get_attempt(attempt_id)
        assert attempt is not None
        if (attempt.provider, attempt_id) in live:
            out.unresolved_holding_money += 1
            out.problems.append(f"{attempt_id} is open and holds a charge")
        else:
            out.open_without_proof += 1
    with sqlite3.connect(path) as db:
        rows = [
            repr(db.execute(f"SELECT * FROM {table}").fetchall())
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
    everything = " ".join([*texts, repr(logs), repr(seen), *rows])
    for secret in SECRETS:
        if secret in everything:
            out.secrets_leaked += 1
            out.problems.append(f"a secret ({secret[:6]}…) leaked")
    return out


def random_schedule(rng: random.Random) -> Schedule:
    faults: list[str | None] = [None, None, None, *FAULTS]
    steps = tuple(
        Step(rng.randrange(4), rng.choice(faults), rng.choice(faults))
        for _ in range(rng.randint(1, 6))
    )
    return Schedule(rng.choice(["tosspayments", "nicepay"]), steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--schedules", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the totals as JSON")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    total = Outcome()
    started = time.perf_counter()
    for _ in range(args.schedules):
        total.add(run_schedule(random_schedule(rng)))
    doc = {
        "schedules": args.schedules,
        "seed": args.seed,
        "orders": total.orders,
        "double_charges": total.double_charges,
        "orphaned_charges": total.orphaned_charges,
        "lost_refunds": total.lost_refunds,
        "unresolved_holding_money": total.unresolved_holding_money,
        "open_without_proof_nothing_held": total.open_without_proof,
        "secrets_leaked": total.secrets_leaked,
        "seconds": round(time.perf_counter() - started, 1),
        "problems": total.problems[:10],
    }
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for key, value in doc.items():
            print(f"{key:<34} {value}")
    return 0 if total.ok else 1


if __name__ == "__main__":
    sys.exit(main())
