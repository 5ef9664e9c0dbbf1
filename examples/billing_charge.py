"""A monthly subscription run: charge each subscriber's billing key, failing over from Toss
Payments to NICEPAY safely.

Each subscriber has a billing key at both PGs. The order id is the subscriber and the billing
period (``SUB-alice-202506``), so however often the job runs in a month — a cron double
fire, a restart after a crash — a subscriber is charged at most once: ``router.charge`` on
a paid order returns the payment already made and sends nothing. For each charge payfallback

* retries Toss only when the request certainly did not take effect, then moves to NICEPAY;
* after a lost answer (a timeout after the request left) asks Toss what happened and never
  charges at NICEPAY while that is unsettled;
* treats a decline as the customer's answer: no second card is charged without asking;
* stops sending to Toss once its breaker opens, so the rest of the run goes straight to
  NICEPAY instead of waiting on a dead PG.

Run the scripted night against fake PGs (a lost answer, a declined card, then Toss goes
down), twice, and check both ledgers for double charges::

    python examples/billing_charge.py

Charge one real subscriber with test keys (``--live``; variables in examples/README.md)::

    TOSS_SECRET_KEY=test_sk_… NICEPAY_CLIENT_KEY=… NICEPAY_SECRET_KEY=… \\
    BILLING_CUSTOMER=alice BILLING_AMOUNT=9900 BILLING_TOSS_KEY=… \\
    BILLING_TOSS_CUSTOMER_KEY=… BILLING_NICEPAY_BID=… python examples/billing_charge.py --live
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from payfallback import (
    BreakerPolicy,
    BreakerSettings,
    Clock,
    Declined,
    Instrument,
    Money,
    Order,
    OutcomeUnknown,
    Payment,
    ProviderUnavailable,
    Router,
    load_provider,
)
from payfallback.testing import FakeBank, FakeProvider, Fault, double_charges, mock_transport

#: A nightly batch has no peak hours: one fixed set of thresholds (the defaults), and a PG
#: whose breaker opened is probed again after two minutes.
NIGHTLY = BreakerPolicy(normal=BreakerSettings(open_seconds=120.0))


@dataclass(frozen=True, slots=True)
class Subscriber:
    customer: str
    plan: str
    amount: int  # KRW
    #: Billing key per PG (``tosspayments``, ``nicepay``), in the order to try them.
    keys: Mapping[str, str]
    #: Toss charges a billing key only with the customer key it was issued for.
    toss_customer_key: str | None = None

    def order(self, period: str) -> Order:
        return Order(
            order_id=f"SUB-{self.customer}-{period}",
            amount=Money(amount=self.amount),
            name=f"{self.plan} subscription {period}",
            customer_ref=self.customer,
        )

    def instruments(self) -> list[Instrument]:
        return [
            Instrument(
                provider=pg,
                billing_key=SecretStr(key),
                customer_key=self.toss_customer_key if pg == "tosspayments" else None,
            )
            for pg, key in self.keys.items()
        ]


@dataclass(slots=True)
class ChargeResult:
    """What the run did for one subscriber."""

    customer: str
    order_id: str
    #: ``paid``, ``declined``, ``unknown`` (journaled; resolved later, never charged twice)
    #: or ``retry`` (no PG could take it now; nothing was charged).
    status: str
    provider: str | None = None
    payment_id: str | None = None
    detail: str = ""


@dataclass(slots=True)
class RunReport:
    period: str
    outcomes: list[ChargeResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def charge_all(router: Router, subscribers: Sequence[Subscriber], period: str) -> RunReport:
    """Charge every subscriber for ``period``; never raises for one subscriber's failure."""
    report = RunReport(period)
    for sub in subscribers:
        order = sub.order(period)
        try:
            payment: Payment = router.charge(order, sub.instruments())
        except Declined as exc:
            # The customer's card said no: dunning (ask for another card), not failover.
            outcome = ChargeResult(
                sub.customer, order.order_id, "declined", exc.provider, None, exc.message
            )
        except OutcomeUnknown as exc:
            outcome = ChargeResult(
                sub.customer, order.order_id, "unknown", exc.provider, None, exc.message
            )
        except ProviderUnavailable as exc:  # AllProvidersUnavailable: none could take it now
            outcome = ChargeResult(sub.customer, order.order_id, "retry", None, None, exc.message)
        else:
            outcome = ChargeResult(
                sub.customer, order.order_id, "paid", payment.provider, payment.payment_id
            )
        report.outcomes.append(outcome)
    return report


def describe(o: ChargeResult) -> str:
    where = f" at {o.provider}" if o.provider else ""
    extra = f" ({o.detail})" if o.detail and o.status != "paid" else ""
    return f"  {o.customer:<8} {o.status:<9}{where}{extra}"


def summary(report: RunReport) -> str:
    return (
        f"  paid {report.count('paid')}, declined {report.count('declined')}, "
        f"unknown {report.count('unknown')}, to retry {report.count('retry')}"
    )


def print_report(report: RunReport, say: Callable[[str], None] = print) -> None:
    say(f"Billing run for {report.period}:")
    for o in report.outcomes:
        say(describe(o))
    say(summary(report))


def narrate(say: Callable[[str], None]) -> Callable[[str, Mapping[str, Any]], None]:
    """A Router listener that tells, in a line each, the decisions worth seeing."""
    texts: dict[str, Callable[[Mapping[str, Any]], str]] = {
        "payment.unknown": lambda f: (
            f"{f['provider']}: the answer was lost; asking it what happened, charging "
            "nowhere else meanwhile"
        ),
        "payment.resolved": lambda f: f"{f['provider']} says: {f['result']}",
        "payment.skipped": lambda f: f"{f['provider']} skipped: its breaker is open",
        "payment.rerouted": lambda f: (
            f"{f['from_provider']} failed ({f['reason']}); trying {f['to_provider']}"
        ),
        "breaker.opened": lambda f: f"{f['provider']} breaker opened: {f['reason']}",
    }

    def listener(name: str, fields: Mapping[str, Any]) -> None:
        if name in texts:
            say(f"      · {texts[name](fields)}")

    return listener


# -- the scripted night against fake PGs ------------------------------------------------------

SUBSCRIBERS: tuple[Subscriber, ...] = tuple(
    Subscriber(
        customer=name,
        plan="Beans monthly",
        amount=19_900,
        keys={"tosspayments": toss_key, "nicepay": nice_key},
    )
    for name, toss_key, nice_key in (
        ("alice", "bk-ok-toss-alice", "bk-ok-nice-alice"),
        ("bob", "bk-ok-toss-bob", "bk-ok-nice-bob"),
        # Chloe's card is refused: both keys are for that one card.
        ("chloe", "bk-declined", "bk-declined"),
        ("dan", "bk-ok-toss-dan", "bk-ok-nice-dan"),
        ("eun", "bk-ok-toss-eun", "bk-ok-nice-eun"),
        ("fay", "bk-ok-toss-fay", "bk-ok-nice-fay"),
    )
)


@dataclass(slots=True)
class FakeNight:
    """Two fake PGs and the router over them, and the faults of the night."""

    toss: FakeBank
    nice: FakeBank
    router: Router
    client: httpx.Client

    @classmethod
    def build(
        cls,
        journal: Path,
        *,
        clock: Clock | None = None,
        listeners: Sequence[Callable[[str, Mapping[str, Any]], None]] = (),
    ) -> FakeNight:
        toss = FakeBank("tosspayments", clock=clock)
        nice = FakeBank("nicepay", clock=clock)
        client = httpx.Client(transport=mock_transport(toss, nice))
        router = Router(
            [FakeProvider("tosspayments"), FakeProvider("nicepay")],
            client=client,
            journal=f"sqlite:///{journal}",
            breaker_policy=NIGHTLY,
            clock=clock,
            # With a simulated clock, waits between tries move it instead of sleeping.
            sleep=getattr(clock, "sleep", None),
            listeners=listeners,
        )
        return cls(toss, nice, router, client)

    def close(self) -> None:
        self.router.close()
        self.client.close()


def run_fake(
    journal: Path, *, clock: Clock | None = None, say: Callable[[str], None] = print
) -> tuple[RunReport, RunReport, FakeNight]:
    """The scripted night, then the same run again (a cron double fire)."""
    notes: list[str] = []
    night = FakeNight.build(journal, clock=clock, listeners=[narrate(notes.append)])
    period = (clock.now() if clock is not None else datetime.now(UTC)).strftime("%Y%m")

    def run(before: Callable[[Subscriber], None] | None = None) -> RunReport:
        report = RunReport(period)
        say(f"Billing run for {period}:")
        for sub in SUBSCRIBERS:
            if before is not None:
                before(sub)
            report.outcomes += charge_all(night.router, [sub], period).outcomes
            say(describe(report.outcomes[-1]))
            for note in notes:
                say(note)
            notes.clear()
        say(summary(report))
        return report

    def faults(sub: Subscriber) -> None:
        if sub.customer == "bob":
            # Toss charges Bob, but the answer never arrives.
            night.toss.fail_next("charge", Fault.LOST_RESPONSE)
        if sub.customer == "dan":
            say("  -- Toss Payments stops answering (connections refused)")
            night.toss.refuse = True

    try:
        first = run(faults)
        sent = night.toss.requests.total() + night.nice.requests.total()
        say("The same period again (the job fired twice):")
        second = run()
        resent = night.toss.requests.total() + night.nice.requests.total() - sent
        say(f"  requests sent on the second run: {resent} (the declined card, tried again)")
        say(f"  double charges across both PGs: {len(double_charges(night.toss, night.nice))}")
    finally:
        night.close()
    return first, second, night


# -- one real subscriber ------------------------------------------------------------------------


def run_live(
    env: Mapping[str, str], journal: Path, say: Callable[[str], None] = print
) -> RunReport:
    """Charge one subscriber with real (test) keys from the environment."""
    toss = load_provider("tosspayments", secret_key=SecretStr(env["TOSS_SECRET_KEY"]))
    nice = load_provider(
        "nicepay",
        client_key=env["NICEPAY_CLIENT_KEY"],
        secret_key=SecretStr(env["NICEPAY_SECRET_KEY"]),
        sandbox=env.get("NICEPAY_SANDBOX", "1") == "1",
    )
    sub = Subscriber(
        customer=env["BILLING_CUSTOMER"],
        plan=env.get("BILLING_PLAN", "Monthly"),
        amount=int(env["BILLING_AMOUNT"]),
        keys={"tosspayments": env["BILLING_TOSS_KEY"], "nicepay": env["BILLING_NICEPAY_BID"]},
        toss_customer_key=env["BILLING_TOSS_CUSTOMER_KEY"],
    )
    period = env.get("BILLING_PERIOD") or datetime.now(UTC).strftime("%Y%m")
    with (
        httpx.Client() as client,
        Router([toss, nice], client=client, journal=f"sqlite:///{journal}") as router,
    ):
        report = charge_all(router, [sub], period)
    print_report(report, say)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", action="store_true", help="charge one real subscriber")
    parser.add_argument("--journal", type=Path, default=Path("billing-journal.sqlite3"))
    args = parser.parse_args(argv)
    # Decisions are logged to stderr; the report goes to stdout.
    # payfallback is quiet until logging is configured; its events go to stderr here.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its own request lines
    if args.live:
        missing = [
            name
            for name in (
                "TOSS_SECRET_KEY",
                "NICEPAY_CLIENT_KEY",
                "NICEPAY_SECRET_KEY",
                "BILLING_CUSTOMER",
                "BILLING_AMOUNT",
                "BILLING_TOSS_KEY",
                "BILLING_TOSS_CUSTOMER_KEY",
                "BILLING_NICEPAY_BID",
            )
            if not os.environ.get(name)
        ]
        if missing:
            print(f"--live needs {', '.join(missing)} (see examples/README.md)", file=sys.stderr)
            return 2
        report = run_live(os.environ, args.journal)
        return 0 if report.count("paid") == len(report.outcomes) else 1
    _, _, night = run_fake(args.journal)
    return 0 if not double_charges(night.toss, night.nice) else 1


if __name__ == "__main__":
    sys.exit(main())
