"""``payfallback demo``: a short failover run against fake providers, on a simulated clock.

A small shop takes 60 payments on a Saturday evening. Halfway through, its primary PG
stops answering (connections refused), a few answers of the second one are lost after it
charged, and later the primary comes back. The demo prints every routing decision and a
summary, and checks the ledgers of all providers for double charges.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from pydantic import SecretStr

from payfallback._clock import ManualClock
from payfallback.errors import PayfallbackError
from payfallback.models import Instrument, Money, Order
from payfallback.router import Router
from payfallback.testing import FakeBank, FakeProvider, Fault, double_charges, mock_transport

#: The shop's time, as the simulator shows it.
_SEOUL = ZoneInfo("Asia/Seoul")

_SHOWN = {
    "payment.rerouted",
    "payment.unknown",
    "payment.resolved",
    "payment.skipped",
    "breaker.opened",
    "breaker.half_opened",
    "breaker.closed",
    "refund.owed",
    "refund.succeeded",
}


def run(
    payments: int = 60, *, verbose: bool = True, journal_dir: Path | None = None
) -> dict[str, Any]:
    """Run the demo; returns the summary it prints."""
    # Saturday 15 October 2022, 18:00 KST (09:00 UTC): peak hours.
    clock = ManualClock(datetime(2022, 10, 15, 9, 0, tzinfo=UTC))
    toss, nice = FakeBank("toss", clock=clock), FakeBank("nice", clock=clock)
    shown: list[str] = []

    def listen(name: str, fields: Mapping[str, Any]) -> None:
        if name in _SHOWN:
            at = clock.now().astimezone(_SEOUL).strftime("%H:%M:%S")
            detail = ", ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, ""))
            shown.append(f"  {at}  {name:<20} {detail}")
            if verbose:
                print(shown[-1])

    tmp = tempfile.TemporaryDirectory() if journal_dir is None else None
    directory = journal_dir or Path(tmp.name if tmp else ".")
    outcomes: Counter[str] = Counter()
    client = httpx.Client(transport=mock_transport(toss, nice))
    router = Router(
        [FakeProvider("toss"), FakeProvider("nice")],
        client=client,
        journal=f"sqlite:///{directory / 'demo.sqlite3'}",
        clock=clock,
        sleep=clock.sleep,
        listeners=[listen],
    )
    instruments: Sequence[Instrument] = [
        Instrument(provider="toss", billing_key=SecretStr("bk-ok-toss")),
        Instrument(provider="nice", billing_key=SecretStr("bk-ok-nice")),
    ]
    if verbose:
        start = clock.now().astimezone(_SEOUL)
        print(f"  {start:%a %d %b %Y}, from {start:%H:%M} KST (Asia/Seoul), simulated clock")
    try:
        for n in range(payments):
            if n == payments // 3:
                toss.refuse = True
                if verbose:
                    print(f"  -- payment {n}: the primary PG stops answering")
            if n == payments // 2:
                nice.fail_next("charge", Fault.LOST_RESPONSE, times=2)
            if n == (2 * payments) // 3:
                toss.refuse = False
                if verbose:
                    print(f"  -- payment {n}: the primary PG is back")
            order = Order(
                order_id=f"DEMO-{n:04d}", amount=Money(amount=4_500 + 500 * (n % 7)), name="커피"
            )
            try:
                payment = router.charge(order, instruments)
                outcomes[f"paid at {payment.provider}"] += 1
            except PayfallbackError as exc:
                outcomes[type(exc).__name__] += 1
            clock.advance(20.0)
        clock.advance(600.0)
        report = router.recover()
    finally:
        router.close()
        client.close()
        if tmp is not None:
            tmp.cleanup()
    summary = {
        "payments": payments,
        "outcomes": dict(outcomes),
        "double_charges": len(double_charges(toss, nice)),
        "unresolved_after_recover": len(report.still_unresolved),
        "refunds_owed_after_recover": len(report.refunds_still_owed),
    }
    if verbose:
        print()
        for key, value in summary.items():
            print(f"  {key:<28} {value}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payfallback", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a short failover run against fake providers")
    demo.add_argument("--payments", type=int, default=60)
    demo.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    # The command line owns this process: its events are shown by the demo's own listener.
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    if args.command == "demo":
        summary = run(args.payments, verbose=not args.quiet)
        return 0 if summary["double_charges"] == 0 else 1
    return 2  # pragma: no cover - argparse rejects other commands
