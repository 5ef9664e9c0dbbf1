"""The providers' authoritative ledger: what was really charged and cancelled, and when.

Time is the emulator's :class:`~payfallback.ManualClock` (monotonic seconds). A charge is
recorded when its request reaches the provider; it *commits* at ``committed_at`` (later
than the answer for a late commit) unless a net cancel stopped it first, and lookups see it
only from ``visible_at`` (a lagging read side). A cancel counts from its ``at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from payfallback import ManualClock


@dataclass
class Cancel:
    """One cancel (refund, compensation or net cancel) of part or all of a charge."""

    amount: int
    at: float
    #: The cancel's own id at the provider (Toss transactionKey, NICEPAY cancelledTid, …).
    cancel_id: str
    #: What the request was keyed by (Idempotency-Key, NICEPAY's cancel orderId), if any.
    key: str | None = None
    reason: str = ""
    tax_free: int = 0


@dataclass
class Charge:
    """One charge at one provider, under the id we sent (our attempt id)."""

    provider: str
    attempt_id: str
    #: The provider's transaction id, as the adapter reports it (Toss paymentKey, NICEPAY
    #: tid, PortOne paymentId — which is our attempt id).
    txn: str
    amount: int
    arrived_at: float
    committed_at: float
    visible_at: float
    cancels: list[Cancel] = field(default_factory=list)
    #: Net-cancelled before it committed: it never will.
    stopped: bool = False
    #: Provider-side details an answer needs (PortOne's pgTxId, …).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def order_id(self) -> str:
        return self.attempt_id.rsplit("_", 1)[0]

    def committed(self, now: float) -> bool:
        return not self.stopped and now >= self.committed_at

    def visible(self, now: float) -> bool:
        return self.committed(now) and now >= self.visible_at

    def cancelled(self, now: float) -> int:
        return sum(c.amount for c in self.cancels if c.at <= now)

    def balance(self, now: float) -> int:
        return self.amount - self.cancelled(now)

    def live(self, now: float) -> bool:
        """Money held from the customer right now."""
        return self.committed(now) and self.balance(now) > 0


@dataclass
class Failure:
    """A provider's record of a refused charge (NICEPAY ``failed``, PortOne ``FAILED``)."""

    provider: str
    attempt_id: str
    txn: str
    amount: int
    at: float


@dataclass
class Ledger:
    clock: ManualClock
    charges: list[Charge] = field(default_factory=list)
    failures: dict[tuple[str, str], Failure] = field(default_factory=dict)

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def add(self, charge: Charge) -> Charge:
        self.charges.append(charge)
        return charge

    def by_attempt(self, provider: str, attempt_id: str) -> Charge | None:
        """The charge made under ``attempt_id`` (stopped ones included), newest first."""
        for charge in reversed(self.charges):
            if charge.provider == provider and charge.attempt_id == attempt_id:
                return charge
        return None

    def by_txn(self, provider: str, txn: str) -> Charge | None:
        for charge in self.charges:
            if charge.provider == provider and charge.txn == txn:
                return charge
        return None

    def live(self) -> list[Charge]:
        now = self.now
        return [c for c in self.charges if c.live(now)]

    def live_by_order(self) -> dict[str, list[Charge]]:
        out: dict[str, list[Charge]] = {}
        for charge in self.live():
            out.setdefault(charge.order_id, []).append(charge)
        return out

    def describe(self, order_id: str | None = None) -> list[str]:
        """One line per charge (of one order), for a failure report."""
        now = self.now
        lines = []
        for c in self.charges:
            if order_id is not None and c.order_id != order_id:
                continue
            state = (
                "stopped"
                if c.stopped
                else "pending"
                if not c.committed(now)
                else f"live {c.balance(now)}"
                if c.live(now)
                else "cancelled"
            )
            cancels = ", ".join(f"-{x.amount}@{x.at - 1000:.1f}" for x in c.cancels)
            lines.append(
                f"{c.provider} {c.attempt_id} txn={c.txn} amount={c.amount} "
                f"arrived@{c.arrived_at - 1000:.1f} commits@{c.committed_at - 1000:.1f} "
                f"visible@{c.visible_at - 1000:.1f} {state}"
                + (f" cancels[{cancels}]" if cancels else "")
            )
        return lines


__all__ = ["Cancel", "Charge", "Failure", "Ledger"]
