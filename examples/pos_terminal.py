#!/usr/bin/env python3
"""A point-of-sale terminal on :class:`~payfallback.Router`: enter an amount, pick a way
to pay, scan the customer's code, print a receipt — and when the wallet is down, say so and
take another way instead of keeping the customer waiting.

Interactive (one sale after another; an empty amount quits)::

    python examples/pos_terminal.py --fake-down kakaopay

One sale from arguments, e.g. from a till app or a script (exit status 0 when paid)::

    python examples/pos_terminal.py --amount 4500 --method kakaopay --fake-down kakaopay

Kakao Pay, Naver Pay and a card PG are fake providers here (in memory, with a ledger), and
``--fake-down`` makes some of them refuse every connection. The payment itself is the call a
real terminal makes: ``router.charge(order, instruments)`` with the code the customer
presented, journaled in SQLite before anything is sent, so a crash or a lost answer can
never charge the customer twice — charging the same order id again returns the payment
already made. With real adapters only the provider list changes, for example
``load_provider("tosspayments", secret_key=SecretStr(...))``.

When the chosen way to pay fails before anything was charged (the provider is down, its
breaker is open) the terminal offers the others, which ``router.available()`` reports
healthy; non-interactively it takes them in ``--fallback`` order. A decline is the
customer's answer and is never retried elsewhere by itself; an unknown outcome stops the
sale with the order id to check, because charging again could charge twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from payfallback import (
    Declined,
    Instrument,
    InvalidRequest,
    JournalUnavailable,
    Method,
    Money,
    Order,
    OutcomeUnknown,
    Payment,
    ProviderUnavailable,
    Router,
)
from payfallback.testing import FakeBank, FakeProvider, mock_transport

SHOP = "Mokdong Coffee"
SEOUL = ZoneInfo("Asia/Seoul")

#: The terminal's ways to pay, in the order it offers them, and the fake provider of each.
METHODS: dict[Method, tuple[str, str]] = {
    Method.KAKAOPAY: ("Kakao Pay", "kakaopay"),
    Method.NAVERPAY: ("Naver Pay", "naverpay"),
    Method.CARD: ("Card", "tosspayments"),
}

# Exit statuses of a non-interactive sale.
PAID, NOT_PAID, BAD_INPUT, UNKNOWN = 0, 1, 2, 3


class Quit(Exception):
    """The operator ended the session (empty amount, or end of input)."""


def label(method: Method) -> str:
    return METHODS[method][0]


class Terminal:
    """One till: a router, a way to ask the operator, and a way to print."""

    def __init__(
        self,
        router: Router,
        *,
        ask: Callable[[str], str] | None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.router = router
        self.ask = ask  # None: non-interactive, never prompt
        self.say = say
        self.sales = 0

    def healthy(self, exclude: set[Method]) -> list[Method]:
        """The terminal's methods with a healthy provider now, minus those excluded."""
        up = {choice.method for choice in self.router.available()}
        return [m for m in METHODS if m in up and m not in exclude]

    def pick(self, offered: list[Method]) -> Method:
        assert self.ask is not None
        self.say("Pay with:")
        for n, method in enumerate(offered, start=1):
            self.say(f"  {n}) {label(method)}")
        while True:
            answer = self.ask(f"Choice [1-{len(offered)}, Enter for 1]: ").strip() or "1"
            if answer.isdigit() and 1 <= int(answer) <= len(offered):
                return offered[int(answer) - 1]
            self.say("  Type one of the numbers above.")

    def code_for(self, method: Method, given: str | None, order: Order) -> str:
        if given:
            return given
        if self.ask is not None:
            scanned = self.ask(f"Scan the customer's {label(method)} code (Enter: test code): ")
            if scanned.strip():
                return scanned.strip()
        # The fake providers accept any code but "bk-declined" and "bk-insufficient".
        return f"test-{method.value}-{order.order_id}"

    def sell(
        self,
        amount: int,
        *,
        method: Method | None,
        fallback: Sequence[Method],
        code: str | None = None,
        order_id: str | None = None,
        item: str = "Coffee",
    ) -> int:
        """Take one payment; prints the receipt. Returns an exit status (``PAID`` …)."""
        now = datetime.now(SEOUL)
        self.sales += 1
        order = Order(
            order_id=order_id or f"POS-{now:%Y%m%d-%H%M%S}-{self.sales:03d}",
            amount=Money(amount=amount),
            name=item,
        )
        tried: dict[Method, str] = {}  # what failed in this sale, and how
        choice = method
        while True:
            offered = self.healthy(set(tried))
            if choice is not None and choice not in offered:
                self.say(f"{label(choice)} is not available right now.")
                tried.setdefault(choice, "was not available")
                choice = None
            if choice is None:
                if not offered:
                    self.say("No way to pay is available right now. Nothing was charged.")
                    return NOT_PAID
                if self.ask is not None:
                    choice = self.pick(offered)
                else:
                    choice = next((m for m in fallback if m in offered), None)
                    if choice is None:
                        self.say("No fallback left (see --fallback). Nothing was charged.")
                        return NOT_PAID
                    self.say(f"Falling back to {label(choice)}.")
            secret = self.code_for(choice, None if tried else code, order)
            instruments = [
                Instrument(provider=c.provider, billing_key=SecretStr(secret), method=choice)
                for c in self.router.available(choice)
            ]
            try:
                payment = self.router.charge(order, instruments)
            except Declined as exc:
                self.say(f"Declined by {label(choice)}: {exc.message}. Nothing was charged.")
                if self.ask is None:
                    return NOT_PAID
                tried[choice] = "declined"
                choice = None
                continue
            except ProviderUnavailable:
                # Certainly not charged (connection refused, breaker open …): the same order
                # may be paid another way.
                self.say(f"{label(choice)} is not answering. Nothing was charged.")
                tried[choice] = "was not answering"
                choice = None
                continue
            except OutcomeUnknown:
                self.say(
                    f"The answer from {label(choice)} was lost and a status inquiry could not "
                    f"settle it yet. Do NOT take another payment for order {order.order_id}: "
                    "the attempt is journaled and router.recover() settles it."
                )
                return UNKNOWN
            except JournalUnavailable:
                # The till's own journal (its disk) failed before anything was sent.
                self.say(
                    "This till cannot record payments right now (its journal failed). "
                    "Nothing was charged: take cash, or try again once it is fixed."
                )
                return NOT_PAID
            self.say(receipt(payment, order, failed=tried))
            return PAID


def receipt(payment: Payment, order: Order, *, failed: Mapping[Method, str] | None = None) -> str:
    when = payment.approved_at.astimezone(SEOUL)
    method = Method(payment.method)
    slip = payment.receipt
    rows = [("Paid with", f"{label(method)} ({payment.provider})")]
    if slip is not None:
        # What a Korean receipt prints: 승인번호, card, 할부 (0 = 일시불), 신용/체크.
        if slip.approval_number:
            rows.append(("Approval no", slip.approval_number))
        if slip.issuer or slip.issuer_code:
            rows.append(("Card issuer", slip.issuer or slip.issuer_code or ""))
        if slip.card_number:
            kind = f" ({slip.card_kind.value})" if slip.card_kind else ""
            rows.append(("Card", f"{slip.card_number}{kind}"))
        if slip.installment_months is not None:
            months = slip.installment_months
            rows.append(("Installments", "lump sum" if months == 0 else f"{months} months"))
        if slip.paid_with is not None:
            rows.append(("Wallet paid by", slip.paid_with.value))
    rows += [
        ("Transaction", payment.provider_txn_id),
        ("Payment id", payment.payment_id),
        ("Order", order.order_id),
    ]
    if slip is not None and slip.receipt_url:
        rows.append(("Receipt URL", slip.receipt_url))
    for tried, why in (failed or {}).items():
        rows.append(("Note", f"{label(tried)} {why}"))
    line = "-" * 44
    return "\n".join(
        [
            "=" * 44,
            f"  {SHOP} — receipt",
            f"  {when:%Y-%m-%d %H:%M:%S} KST",
            line,
            f"  {order.name:<26}{payment.amount!s:>16}",
            line,
            *(f"  {k:<16}{v}" for k, v in rows),
            "=" * 44,
        ]
    )


def fake_router(down: Sequence[str], journal: Path) -> tuple[Router, httpx.Client]:
    """A Router over the fake providers (and its client, to close after it); those
    named in ``down`` refuse every connection."""
    banks = [FakeBank(provider) for _, provider in METHODS.values()]
    for bank in banks:
        bank.refuse = bank.name in down
    providers = [FakeProvider(provider, methods=[m]) for m, (_, provider) in METHODS.items()]
    client = httpx.Client(transport=mock_transport(*banks))
    return Router(providers, client=client, journal=f"sqlite:///{journal}"), client


def _method(text: str) -> Method:
    try:
        method = Method(text.strip().lower())
    except ValueError:
        method = None
    if method not in METHODS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: choose one of {', '.join(m.value for m in METHODS)}"
        )
    return method


def _methods(text: str) -> list[Method]:
    return [_method(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="A POS terminal with payment fallback (fake providers)."
    )
    parser.add_argument("--amount", type=int, help="amount in won; with --method: one sale")
    parser.add_argument("--method", type=_method, help="kakaopay, naverpay or card")
    parser.add_argument(
        "--fallback",
        type=_methods,
        default=list(METHODS),
        help="methods to fall back to, in order (default: kakaopay,naverpay,card)",
    )
    parser.add_argument("--code", help="the customer's payment code (default: a test code)")
    parser.add_argument("--item", default="Coffee", help="what is sold (receipt line)")
    parser.add_argument("--order-id", help="the order id (default: POS-<date>-<time>-<n>)")
    parser.add_argument(
        "--fake-down",
        default="",
        help="fake providers that refuse every connection, e.g. kakaopay or kakaopay,naverpay",
    )
    parser.add_argument(
        "--refund",
        metavar="ORDER_ID",
        help="refund (all that is left of) this order's payment; pressing it twice refunds once",
    )
    parser.add_argument("--journal", type=Path, default=Path("pos-journal.sqlite3"))
    return parser.parse_args(argv)


def refund(router: Router, order_id: str) -> int:
    """Refund an order's payment at the till. The idempotency key is the order's own, so a
    second press of 환불 (or a retry after a crash) returns the same refund and sends
    nothing; a refund the provider cannot confirm now stays owed and is retried."""
    payment = router.journal.payment_for_order(order_id)
    if payment is None:
        print(f"order {order_id} has no payment to refund", file=sys.stderr)
        return BAD_INPUT
    done = router.refund(
        payment.payment_id, reason="refund at the till", idempotency_key=f"till-{order_id}"
    )
    print(f"refund receipt — {SHOP}")
    for label_, value in (
        ("Order", order_id),
        ("Refund id", done.refund_id),
        ("Refunded", str(done.amount)),
        ("Tax-free part", f"{done.tax_free_amount:,} {done.amount.currency}"),
        ("State", "done" if done.state.value == "succeeded" else "owed (will be retried)"),
    ):
        print(f"  {label_:<14}{value}")
    return PAID


def _ask(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        raise Quit from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    down = [name.strip() for name in args.fake_down.split(",") if name.strip()]
    known = {provider for _, provider in METHODS.values()}
    if unknown := sorted(set(down) - known):
        print(f"--fake-down: unknown provider(s) {', '.join(unknown)}", file=sys.stderr)
        return BAD_INPUT
    if args.amount is not None and args.amount <= 0:
        print("--amount must be a positive number of won", file=sys.stderr)
        return BAD_INPUT
    # Decisions are logged to stderr; the terminal's own lines and receipts go to stdout.
    # payfallback is quiet until logging is configured; its events go to stderr here.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its own request lines
    router, client = fake_router(down, args.journal)
    with client, router:
        status = " (fake providers; down: " + (", ".join(down) or "none") + ")"
        print(f"payfallback POS — {SHOP}{status}")
        if args.refund is not None:
            try:
                return refund(router, args.refund)
            except InvalidRequest as exc:
                print(exc.message, file=sys.stderr)
                return BAD_INPUT
        if args.amount is not None and args.method is not None:
            terminal = Terminal(router, ask=None)
            try:
                return terminal.sell(
                    args.amount,
                    method=args.method,
                    fallback=args.fallback,
                    code=args.code,
                    order_id=args.order_id,
                    item=args.item,
                )
            except InvalidRequest as exc:
                print(exc.message, file=sys.stderr)
                return BAD_INPUT
        terminal = Terminal(router, ask=_ask)
        amount = args.amount
        try:
            while True:
                if amount is None:
                    text = _ask("Amount in won (Enter to quit): ").strip().replace(",", "")
                    if not text:
                        break
                    if not text.isdigit() or int(text) <= 0:
                        print("  Type the amount as a whole number of won, e.g. 4500.")
                        continue
                    amount = int(text)
                try:
                    terminal.sell(
                        amount, method=args.method, fallback=args.fallback, item=args.item
                    )
                except InvalidRequest as exc:
                    print(f"  {exc.message}")
                amount = None
        except Quit:
            pass
    return PAID


if __name__ == "__main__":
    sys.exit(main())
