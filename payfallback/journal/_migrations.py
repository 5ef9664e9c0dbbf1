"""Versioned schema of the SQLite journal.

The schema is an ordered list of :class:`Migration` steps, numbered from 1. Opening a
journal applies every step the file has not seen yet, each in its own transaction together
with its row in ``schema_version``, so a crash mid-upgrade leaves the file at the last
complete version and the next open carries on from there. A file whose version is newer
than the last step this code knows is refused: an older payfallback must not write rows
that a newer schema gives a different meaning.

To change the schema, append a step; never edit a step that has been released, since
files out there already carry it.

What the database itself enforces (so no code path, and no hand-written SQL, can break it):

* at most one ``succeeded`` attempt per order (a partial unique index) and at most one
  payment per order and per attempt (unique columns), made by an attempt of that order;
* at most one payment per provider transaction (``provider``, ``provider_txn_id``): a
  charge never pays two orders (unique index, version 2);
* no new attempt for an order that has a payment, no second ``pending`` attempt (new or
  moved back to pending) while another one's lease is live, and a ``succeeded`` attempt
  never changes state (triggers; the journal checks first to raise a typed error, the
  triggers are the backstop);
* an order's amount and currency never change (trigger);
* money and counters are integers (``typeof`` checks: a float never gets in), refunded
  never exceeds the amount paid, a refund's tax-free part never exceeds the refund
  (checks);
* only a ``failed`` attempt has a ``recheck_until`` (check);
* at most one refund per payment and merchant request key (partial unique index), and a
  request key only on a refund that names its payment (check);
* an ``owed`` refund row cannot be deleted (trigger).

Timestamps are ISO-8601 UTC text with microseconds and a ``Z`` suffix
(``2022-10-15T06:30:00.000000Z``): fixed width, so text order is time order and lease
checks compare them directly in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from payfallback.errors import ConfigurationError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "migrate", "schema_version"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its statements run in order inside a single transaction."""

    version: int
    name: str
    #: One SQL statement each (``sqlite3`` runs one statement per ``execute``, and
    #: ``executescript`` would commit in the middle of our transaction).
    statements: tuple[str, ...]


_ATTEMPT_STATES = "'pending', 'redirected', 'succeeded', 'failed', 'unknown', 'superseded'"

_V1 = Migration(
    version=1,
    name="orders, attempts, payments, refunds, checkouts",
    statements=(
        """
        CREATE TABLE orders (
            order_id    TEXT PRIMARY KEY,
            amount      INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
            currency    TEXT NOT NULL,
            order_json  TEXT NOT NULL,
            created_at  TEXT NOT NULL
        )
        """,
        f"""
        CREATE TABLE attempts (
            attempt_id       TEXT PRIMARY KEY,
            order_id         TEXT NOT NULL REFERENCES orders (order_id),
            seq              INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),
            provider         TEXT NOT NULL,
            method           TEXT NOT NULL,
            operation        TEXT NOT NULL,
            idempotency_key  TEXT NOT NULL,
            state            TEXT NOT NULL CHECK (state IN ({_ATTEMPT_STATES})),
            provider_txn_id  TEXT,
            error_code       TEXT,
            error_message    TEXT,
            lease_until      TEXT NOT NULL,
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL,
            UNIQUE (order_id, seq),
            UNIQUE (provider, idempotency_key)
        )
        """,
        # The rule the whole library exists for: one successful charge per order.
        """
        CREATE UNIQUE INDEX attempts_one_success_per_order
            ON attempts (order_id) WHERE state = 'succeeded'
        """,
        "CREATE INDEX attempts_by_state ON attempts (state, created_at)",
        """
        CREATE TABLE payments (
            payment_id       TEXT PRIMARY KEY,
            order_id         TEXT NOT NULL UNIQUE REFERENCES orders (order_id),
            attempt_id       TEXT NOT NULL UNIQUE REFERENCES attempts (attempt_id),
            provider         TEXT NOT NULL,
            method           TEXT NOT NULL,
            provider_txn_id  TEXT NOT NULL,
            amount           INTEGER NOT NULL
                             CHECK (typeof(amount) = 'integer' AND amount > 0),
            refunded         INTEGER NOT NULL
                             CHECK (typeof(refunded) = 'integer'
                                    AND refunded >= 0 AND refunded <= amount),
            currency         TEXT NOT NULL,
            status           TEXT NOT NULL
                             CHECK (status IN ('paid', 'partially_refunded', 'refunded')),
            approved_at      TEXT NOT NULL,
            attempts         INTEGER NOT NULL CHECK (typeof(attempts) = 'integer'),
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL
        )
        """,
        """
        CREATE TRIGGER payments_belong_to_their_attempt
        BEFORE INSERT ON payments
        WHEN NOT EXISTS (
            SELECT 1 FROM attempts
            WHERE attempt_id = NEW.attempt_id AND order_id = NEW.order_id
        )
        BEGIN
            SELECT RAISE(ABORT, 'a payment belongs to an attempt of the same order');
        END
        """,
        # A partial unique index cannot express "pending with a live lease" (it needs the
        # current time), so triggers check it against the written row's own timestamp.
        """
        CREATE TRIGGER attempts_one_live_pending_per_order
        BEFORE INSERT ON attempts
        WHEN NEW.state = 'pending' AND EXISTS (
            SELECT 1 FROM attempts
            WHERE order_id = NEW.order_id AND state = 'pending'
              AND lease_until > NEW.created_at
        )
        BEGIN
            SELECT RAISE(ABORT, 'order has a pending attempt with a live lease');
        END
        """,
        """
        CREATE TRIGGER attempts_one_live_pending_per_order_on_update
        BEFORE UPDATE OF state ON attempts
        WHEN NEW.state = 'pending' AND OLD.state IS NOT 'pending' AND EXISTS (
            SELECT 1 FROM attempts
            WHERE order_id = NEW.order_id AND attempt_id IS NOT NEW.attempt_id
              AND state = 'pending' AND lease_until > NEW.updated_at
        )
        BEGIN
            SELECT RAISE(ABORT, 'order has a pending attempt with a live lease');
        END
        """,
        """
        CREATE TRIGGER attempts_success_is_final
        BEFORE UPDATE OF state ON attempts
        WHEN OLD.state = 'succeeded' AND NEW.state IS NOT 'succeeded'
        BEGIN
            SELECT RAISE(ABORT, 'a succeeded attempt is its order''s payment and never moves');
        END
        """,
        """
        CREATE TRIGGER attempts_none_after_payment
        BEFORE INSERT ON attempts
        WHEN EXISTS (SELECT 1 FROM payments WHERE order_id = NEW.order_id)
        BEGIN
            SELECT RAISE(ABORT, 'order is already paid');
        END
        """,
        """
        CREATE TRIGGER orders_amount_is_fixed
        BEFORE UPDATE OF amount, currency ON orders
        WHEN NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency
        BEGIN
            SELECT RAISE(ABORT, 'an order''s amount never changes once journaled');
        END
        """,
        """
        CREATE TABLE refunds (
            refund_id           TEXT PRIMARY KEY,
            payment_id          TEXT REFERENCES payments (payment_id),
            order_id            TEXT NOT NULL REFERENCES orders (order_id),
            attempt_id          TEXT NOT NULL REFERENCES attempts (attempt_id),
            provider            TEXT NOT NULL,
            provider_txn_id     TEXT NOT NULL,
            amount              INTEGER NOT NULL
                                CHECK (typeof(amount) = 'integer' AND amount > 0),
            currency            TEXT NOT NULL,
            expected_remaining  INTEGER NOT NULL
                                CHECK (typeof(expected_remaining) = 'integer'
                                       AND expected_remaining >= 0),
            reason              TEXT NOT NULL,
            kind                TEXT NOT NULL CHECK (kind IN ('refund', 'compensation')),
            idempotency_key     TEXT NOT NULL UNIQUE,
            state               TEXT NOT NULL CHECK (state IN ('owed', 'succeeded', 'failed')),
            error_code          TEXT,
            tries               INTEGER NOT NULL CHECK (typeof(tries) = 'integer' AND tries >= 0),
            lease_until         TEXT,
            created_at          TEXT NOT NULL,
            updated_at          TEXT NOT NULL,
            CHECK (kind = 'compensation' OR payment_id IS NOT NULL)
        )
        """,
        "CREATE INDEX refunds_by_state ON refunds (state, created_at)",
        "CREATE INDEX refunds_by_order ON refunds (order_id)",
        "CREATE INDEX refunds_by_attempt ON refunds (attempt_id, kind)",
        "CREATE INDEX refunds_by_payment ON refunds (payment_id, kind, state)",
        """
        CREATE TRIGGER refunds_owed_are_kept
        BEFORE DELETE ON refunds
        WHEN OLD.state = 'owed'
        BEGIN
            SELECT RAISE(ABORT, 'an owed refund is kept until it settles');
        END
        """,
        """
        CREATE TABLE checkouts (
            session_id    TEXT PRIMARY KEY REFERENCES attempts (attempt_id),
            order_id      TEXT NOT NULL REFERENCES orders (order_id),
            session_json  TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        )
        """,
    ),
)

_V2 = Migration(
    version=2,
    name="attempt send and recheck times, one payment per provider transaction, refund keys",
    statements=(
        # When a request of the attempt last may have reached the provider.
        "ALTER TABLE attempts ADD COLUMN sent_at TEXT",
        # Until when recover() looks again at a failed attempt for a charge appearing late;
        # only a failed attempt has one.
        """
        ALTER TABLE attempts ADD COLUMN recheck_until TEXT
            CHECK (recheck_until IS NULL OR state = 'failed')
        """,
        # Ranged on the time, so windows long past cost nothing to skip.
        """
        CREATE INDEX attempts_to_recheck ON attempts (recheck_until)
            WHERE state = 'failed' AND recheck_until IS NOT NULL
        """,
        # One provider transaction pays at most one order. A v1 file holding two payments
        # with the same transaction fails this step and stays at version 1: one charge
        # counted as two orders' payment must be sorted out by hand before upgrading.
        """
        CREATE UNIQUE INDEX payments_one_per_provider_txn
            ON payments (provider, provider_txn_id)
        """,
        """
        ALTER TABLE refunds ADD COLUMN tax_free_amount INTEGER NOT NULL DEFAULT 0
            CHECK (typeof(tax_free_amount) = 'integer'
                   AND tax_free_amount >= 0 AND tax_free_amount <= amount)
        """,
        # The merchant's own key for a refund request, unique per payment.
        """
        ALTER TABLE refunds ADD COLUMN request_key TEXT
            CHECK (request_key IS NULL OR payment_id IS NOT NULL)
        """,
        """
        ALTER TABLE refunds ADD COLUMN request_fingerprint TEXT
            CHECK (request_fingerprint IS NULL OR request_key IS NOT NULL)
        """,
        """
        CREATE UNIQUE INDEX refunds_one_per_request_key
            ON refunds (payment_id, request_key) WHERE request_key IS NOT NULL
        """,
    ),
)

_V3 = Migration(
    version=3,
    name="receipts and the provider's masked answer on payments and refunds",
    statements=(
        # What the till prints (approval number, card, installments, receipt URL), as JSON.
        "ALTER TABLE payments ADD COLUMN receipt_json TEXT",
        # The provider's answer with secrets and card numbers masked, for reconciliation.
        "ALTER TABLE payments ADD COLUMN answer_json TEXT",
        "ALTER TABLE refunds ADD COLUMN receipt_json TEXT",
        "ALTER TABLE refunds ADD COLUMN answer_json TEXT",
        # A day's payments and refunds, for the export.
        "CREATE INDEX payments_by_approved_at ON payments (approved_at)",
        "CREATE INDEX refunds_by_updated_at ON refunds (updated_at)",
    ),
)

#: Every schema step, oldest first; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3)
LATEST_VERSION: int = MIGRATIONS[-1].version

_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
)
"""


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a database is at: 0 for a new file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    *,
    applied_at: str,
    where: str,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Apply the steps of ``migrations`` that ``conn``'s database lacks; return its version.

    ``conn`` must be in autocommit mode (``isolation_level=None``): this function opens and
    commits its own transactions, one per step. ``BEGIN IMMEDIATE`` takes the write lock
    before the version is read, so two processes opening a new file at once apply each step
    exactly once. ``where`` names the database in error messages.

    Raises ``ConfigurationError`` if the database is newer than ``migrations`` or a step
    fails (the failed step is rolled back; earlier ones stay).
    """
    for index, step in enumerate(migrations):
        if step.version != index + 1:
            raise ValueError(
                f"migration {step.name!r} has version {step.version}, expected {index + 1}: "
                "versions count from 1 without gaps"
            )
    latest = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_CREATE_VERSION_TABLE)
            current = schema_version(conn)
            if current > latest:
                raise ConfigurationError(
                    f"journal {where} has schema version {current}, but this version of "
                    f"payfallback only knows versions up to {latest}: it was written by a "
                    "newer payfallback. Upgrade payfallback to open it (downgrading against "
                    "a live journal is not supported)"
                )
            if current == latest:
                conn.execute("COMMIT")
                return current
            step = migrations[current]
            try:
                for statement in step.statements:
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise ConfigurationError(
                    f"journal {where}: schema migration {step.version} ({step.name}) failed "
                    f"and was rolled back, the journal stays at version {current}: {exc}"
                ) from exc
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (step.version, step.name, applied_at),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
