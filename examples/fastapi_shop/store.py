"""The shop's own records: its orders, its checkout references and the webhooks it processed.

They live in the shop's database (``shop.sqlite3``), not in the payfallback journal: the
journal's schema belongs to the library (versioned migrations, a PostgreSQL twin), and the
shop must not add tables to it. What a payment *is* — attempts, the one payment per order,
refunds — is read from the journal (``router.journal``); this store keeps only what the
shop itself decides: what was ordered, which return URL belongs to which checkout, and which
webhook deliveries were already handled.

Webhook idempotency: ``webhook_events`` has the primary key ``(provider, event_id)``, so a
delivery is recorded at most once. It is recorded *after* it was processed. Processing is
itself idempotent (``complete_checkout`` is idempotent per order, and a provider's report is
only noted), so the window between processing and recording costs at most a repeat of
harmless work if the process dies in it; a redelivery that finds its row is answered at once
and nothing is sent to the provider.

Webhook re-fetches: ``webhook_refetches`` keeps when the provider was asked about which
attempt because of a delivery, so :meth:`ShopStore.take_refetch` can bound the lookups per
attempt in a time window (forged Toss deliveries must not make the shop hammer Toss).

Each call opens its own short connection: the methods are called from worker threads
(``asyncio.to_thread``) and SQLite connections should not be shared across threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from payfallback import Money, Order

__all__ = ["CATALOG", "Product", "ShopOrder", "ShopStore", "WebhookEvent"]


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    price: int  # KRW, which has no minor unit


CATALOG: dict[str, Product] = {
    p.sku: p
    for p in (
        Product("house-blend", "House blend beans, 1 kg", 39_000),
        Product("drip-bags", "Drip bags, box of 10", 12_000),
        Product("mug", "Shop mug", 15_000),
    )
}


@dataclass(frozen=True, slots=True)
class ShopOrder:
    """What the customer ordered, before and after any payment."""

    order_id: str
    sku: str
    name: str
    amount: int
    currency: str
    created_at: datetime

    def to_order(self) -> Order:
        return Order(
            order_id=self.order_id,
            amount=Money(amount=self.amount, currency=self.currency),
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One processed webhook delivery and what the shop made of it."""

    provider: str
    event_id: str
    event_type: str
    order_id: str | None
    attempt_id: str | None
    #: What the provider said when asked (``paid``, ``cancelled`` …), never the body's claim.
    verified_state: str | None
    note: str
    received_at: datetime


_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id   TEXT PRIMARY KEY,
    sku        TEXT NOT NULL,
    name       TEXT NOT NULL,
    amount     INTEGER NOT NULL CHECK (amount > 0),
    currency   TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkouts (
    ref        TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (order_id),
    method     TEXT NOT NULL,
    session_id TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    provider       TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    order_id       TEXT,
    attempt_id     TEXT,
    verified_state TEXT,
    note           TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_events_order ON webhook_events (order_id);
CREATE TABLE IF NOT EXISTS webhook_refetches (
    provider   TEXT NOT NULL,
    attempt_id TEXT NOT NULL,
    asked_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_refetches_attempt
    ON webhook_refetches (provider, attempt_id, asked_at);
"""


def _now() -> datetime:
    return datetime.now(UTC)


class ShopStore:
    """The shop's SQLite database at ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10.0)) as db:
            db.execute("PRAGMA foreign_keys=ON")
            with db:  # one transaction: committed on success, rolled back on error
                yield db

    # -- orders ------------------------------------------------------------------------------

    def add_order(self, order: ShopOrder) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
                (
                    order.order_id,
                    order.sku,
                    order.name,
                    order.amount,
                    order.currency,
                    order.created_at.isoformat(),
                ),
            )

    def get_order(self, order_id: str) -> ShopOrder | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT order_id, sku, name, amount, currency, created_at FROM orders "
                "WHERE order_id = ?",
                (order_id,),
            ).fetchone()
        if row is None:
            return None
        return ShopOrder(row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]))

    # -- checkouts ---------------------------------------------------------------------------

    def add_checkout(self, ref: str, order_id: str, method: str) -> None:
        """Reserve the return-URL reference of a checkout about to start."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO checkouts (ref, order_id, method, created_at) VALUES (?, ?, ?, ?)",
                (ref, order_id, method, _now().isoformat()),
            )

    def set_session(self, ref: str, session_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE checkouts SET session_id = ? WHERE ref = ?", (session_id, ref))

    def checkout(self, ref: str) -> tuple[str, str | None] | None:
        """``(order_id, session_id)`` of a checkout reference, if it exists."""
        with self._connect() as db:
            row = db.execute(
                "SELECT order_id, session_id FROM checkouts WHERE ref = ?", (ref,)
            ).fetchone()
        return None if row is None else (row[0], row[1])

    # -- webhooks ----------------------------------------------------------------------------

    def seen_event(self, provider: str, event_id: str) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM webhook_events WHERE provider = ? AND event_id = ?",
                (provider, event_id),
            ).fetchone()
        return row is not None

    def record_event(self, event: WebhookEvent) -> bool:
        """Record a processed delivery; False if it was recorded already (a racing twin)."""
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO webhook_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.provider,
                        event.event_id,
                        event.event_type,
                        event.order_id,
                        event.attempt_id,
                        event.verified_state,
                        event.note,
                        event.received_at.isoformat(),
                    ),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def take_refetch(
        self, provider: str, attempt_id: str, now: datetime, limit: int, window: timedelta
    ) -> bool:
        """Count one provider lookup about ``attempt_id``; False if ``limit`` were taken
        within ``window`` before ``now`` (then nothing is counted)."""
        # One fixed format (microseconds always shown, UTC) so the text sorts as the time.
        since = (now - window).astimezone(UTC).isoformat(timespec="microseconds")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # count and insert as one step across workers
            db.execute("DELETE FROM webhook_refetches WHERE asked_at <= ?", (since,))
            (taken,) = db.execute(
                "SELECT count(*) FROM webhook_refetches WHERE provider = ? AND attempt_id = ?",
                (provider, attempt_id),
            ).fetchone()
            if taken >= limit:
                return False
            db.execute(
                "INSERT INTO webhook_refetches VALUES (?, ?, ?)",
                (provider, attempt_id, now.astimezone(UTC).isoformat(timespec="microseconds")),
            )
        return True

    def events(self, order_id: str | None = None) -> list[WebhookEvent]:
        """Processed deliveries, oldest first; only those about ``order_id`` if given."""
        query = (
            "SELECT provider, event_id, event_type, order_id, attempt_id, verified_state, note, "
            "received_at FROM webhook_events"
        )
        args: tuple[str, ...] = ()
        if order_id is not None:
            query += " WHERE order_id = ?"
            args = (order_id,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY received_at, rowid", args).fetchall()
        return [
            WebhookEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], datetime.fromisoformat(r[7]))
            for r in rows
        ]
