"""Versioned schema of the PostgreSQL journal.

Everything lives in one schema of its own (``payfallback`` unless told otherwise), so
several journals can share a database and an operator sees at a glance what is ours. The
steps are :class:`~payfallback.journal._migrations.Migration` values numbered from 1,
applied in order by :func:`migrate_step`, one transaction per step together with its row in
``schema_version`` (PostgreSQL DDL is transactional: a failed step leaves nothing behind).
A transaction-scoped advisory lock on the schema's name makes workers that open a new
database at once apply each step exactly once. A database whose version is newer than the
last step this code knows is refused, as for SQLite. To change the schema, append a step;
never edit a released one.

Statements name tables without a schema: the journal's connections put its schema alone
on the ``search_path``. Trigger functions keep that path with ``SET search_path FROM
CURRENT``, so they work the same for an operator's ``psql`` session.

What the database itself enforces, as for SQLite (the journal checks first to raise typed
errors; these are the backstop, for hand-written SQL too):

* at most one ``succeeded`` attempt per order (a partial unique index); at most one payment
  per order and per attempt (unique columns), made by an attempt of that order (a foreign
  key on ``(attempt_id, order_id)``);
* at most one payment per provider transaction (``provider``, ``provider_txn_id``): a
  charge never pays two orders (unique index, version 2);
* no new attempt for an order that has a payment, no second ``pending`` attempt (new or
  moved back to pending) while another one's lease is live, and a ``succeeded`` attempt
  never changes state (a trigger, which first locks the order's row, so two transactions
  cannot both pass the check);
* an order's amount and currency never change (trigger);
* money is ``bigint`` and positive where it must be; refunded never exceeds the amount paid,
  and a refund's tax-free part never exceeds the refund;
* only a ``failed`` attempt has a ``recheck_until`` (check);
* at most one refund per payment and merchant request key (partial unique index), and a
  request key only on a refund that names its payment (check);
* an ``owed`` refund row cannot be deleted (trigger).

Timestamps are ``timestamptz`` (microseconds, like Python's ``datetime``). Rows also carry a
``row_no`` identity so that rows stamped at the same instant list in the order they were
written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from payfallback.errors import ConfigurationError
from payfallback.journal._flow import Flow, Query, one
from payfallback.journal._migrations import Migration

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "check_schema_name",
    "check_steps",
    "current_version",
    "migrate_step",
    "too_new",
]

_ATTEMPT_STATES = "'pending', 'redirected', 'succeeded', 'failed', 'unknown', 'superseded'"

_V1 = Migration(
    version=1,
    name="orders, attempts, payments, refunds, checkouts",
    statements=(
        """
        CREATE TABLE orders (
            order_id    text PRIMARY KEY,
            amount      bigint NOT NULL CHECK (amount > 0),
            currency    text NOT NULL,
            order_json  json NOT NULL,
            created_at  timestamptz NOT NULL
        )
        """,
        f"""
        CREATE TABLE attempts (
            attempt_id       text PRIMARY KEY,
            row_no           bigint GENERATED ALWAYS AS IDENTITY,
            order_id         text NOT NULL REFERENCES orders (order_id),
            seq              integer NOT NULL CHECK (seq >= 1),
            provider         text NOT NULL,
            method           text NOT NULL,
            operation        text NOT NULL,
            idempotency_key  text NOT NULL,
            state            text NOT NULL CHECK (state IN ({_ATTEMPT_STATES})),
            provider_txn_id  text,
            error_code       text,
            error_message    text,
            lease_until      timestamptz NOT NULL,
            created_at       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL,
            CONSTRAINT attempts_seq_per_order UNIQUE (order_id, seq),
            CONSTRAINT attempts_key_once UNIQUE (provider, idempotency_key),
            CONSTRAINT attempts_of_order UNIQUE (attempt_id, order_id)
        )
        """,
        # The rule the whole library exists for: one successful charge per order.
        """
        CREATE UNIQUE INDEX attempts_one_success_per_order
            ON attempts (order_id) WHERE state = 'succeeded'
        """,
        """
        CREATE INDEX attempts_open ON attempts (created_at, row_no)
            WHERE state IN ('pending', 'unknown', 'superseded')
        """,
        """
        CREATE TABLE payments (
            payment_id       text PRIMARY KEY,
            order_id         text NOT NULL UNIQUE REFERENCES orders (order_id),
            attempt_id       text NOT NULL UNIQUE,
            provider         text NOT NULL,
            method           text NOT NULL,
            provider_txn_id  text NOT NULL,
            amount           bigint NOT NULL CHECK (amount > 0),
            refunded         bigint NOT NULL CHECK (refunded >= 0 AND refunded <= amount),
            currency         text NOT NULL,
            status           text NOT NULL
                             CHECK (status IN ('paid', 'partially_refunded', 'refunded')),
            approved_at      timestamptz NOT NULL,
            attempts         integer NOT NULL,
            created_at       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL,
            CONSTRAINT payments_belong_to_their_attempt FOREIGN KEY (attempt_id, order_id)
                REFERENCES attempts (attempt_id, order_id)
        )
        """,
        # A partial unique index cannot express "pending with a live lease" (it needs the
        # current time), so a trigger checks it against the written row's own timestamp.
        # It locks the order's row first: under READ COMMITTED two inserts would otherwise
        # both find no live attempt. The journal holds that lock already, so this costs it
        # nothing.
        """
        CREATE FUNCTION attempts_guard() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        DECLARE
            stamped timestamptz;
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.state = 'succeeded' AND NEW.state <> 'succeeded' THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    MESSAGE = 'a succeeded attempt is its order''s payment and never moves';
            END IF;
            PERFORM 1 FROM orders WHERE order_id = NEW.order_id FOR UPDATE;
            IF TG_OP = 'INSERT' THEN
                IF EXISTS (SELECT 1 FROM payments WHERE order_id = NEW.order_id) THEN
                    RAISE EXCEPTION USING ERRCODE = 'check_violation',
                        MESSAGE = 'order ' || NEW.order_id || ' is already paid';
                END IF;
                stamped := NEW.created_at;
            ELSE
                stamped := NEW.updated_at;
            END IF;
            IF NEW.state = 'pending' AND (TG_OP = 'INSERT' OR OLD.state <> 'pending')
               AND EXISTS (
                   SELECT 1 FROM attempts
                   WHERE order_id = NEW.order_id AND attempt_id <> NEW.attempt_id
                     AND state = 'pending' AND lease_until > stamped)
            THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    MESSAGE = 'order ' || NEW.order_id
                              || ' has a pending attempt with a live lease';
            END IF;
            RETURN NEW;
        END
        $$
        """,
        """
        CREATE TRIGGER attempts_guard BEFORE INSERT OR UPDATE ON attempts
            FOR EACH ROW EXECUTE FUNCTION attempts_guard()
        """,
        """
        CREATE FUNCTION orders_amount_is_fixed() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF NEW.amount IS DISTINCT FROM OLD.amount
               OR NEW.currency IS DISTINCT FROM OLD.currency THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    MESSAGE = 'an order''s amount never changes once journaled';
            END IF;
            RETURN NEW;
        END
        $$
        """,
        """
        CREATE TRIGGER orders_amount_is_fixed BEFORE UPDATE ON orders
            FOR EACH ROW EXECUTE FUNCTION orders_amount_is_fixed()
        """,
        """
        CREATE TABLE refunds (
            refund_id           text PRIMARY KEY,
            row_no              bigint GENERATED ALWAYS AS IDENTITY,
            payment_id          text REFERENCES payments (payment_id),
            order_id            text NOT NULL REFERENCES orders (order_id),
            attempt_id          text NOT NULL,
            provider            text NOT NULL,
            provider_txn_id     text NOT NULL,
            amount              bigint NOT NULL CHECK (amount > 0),
            currency            text NOT NULL,
            expected_remaining  bigint NOT NULL CHECK (expected_remaining >= 0),
            reason              text NOT NULL,
            kind                text NOT NULL CHECK (kind IN ('refund', 'compensation')),
            idempotency_key     text NOT NULL CONSTRAINT refunds_key_once UNIQUE,
            state               text NOT NULL CHECK (state IN ('owed', 'succeeded', 'failed')),
            error_code          text,
            tries               integer NOT NULL CHECK (tries >= 0),
            lease_until         timestamptz,
            created_at          timestamptz NOT NULL,
            updated_at          timestamptz NOT NULL,
            CHECK (kind = 'compensation' OR payment_id IS NOT NULL),
            CONSTRAINT refunds_of_an_attempt_of_the_order FOREIGN KEY (attempt_id, order_id)
                REFERENCES attempts (attempt_id, order_id)
        )
        """,
        "CREATE INDEX refunds_owed ON refunds (created_at, row_no) WHERE state = 'owed'",
        "CREATE INDEX refunds_by_order ON refunds (order_id)",
        "CREATE INDEX refunds_by_attempt ON refunds (attempt_id, kind)",
        "CREATE INDEX refunds_by_payment ON refunds (payment_id, kind, state)",
        """
        CREATE FUNCTION refunds_owed_are_kept() RETURNS trigger
        LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF OLD.state = 'owed' THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    MESSAGE = 'an owed refund is kept until it settles';
            END IF;
            RETURN OLD;
        END
        $$
        """,
        """
        CREATE TRIGGER refunds_owed_are_kept BEFORE DELETE ON refunds
            FOR EACH ROW EXECUTE FUNCTION refunds_owed_are_kept()
        """,
        """
        CREATE TABLE checkouts (
            session_id    text PRIMARY KEY REFERENCES attempts (attempt_id),
            order_id      text NOT NULL REFERENCES orders (order_id),
            session_json  json NOT NULL,
            created_at    timestamptz NOT NULL,
            updated_at    timestamptz NOT NULL
        )
        """,
    ),
)

_V2 = Migration(
    version=2,
    name="attempt send and recheck times, one payment per provider transaction, refund keys",
    statements=(
        # sent_at: when a request of the attempt last may have reached the provider.
        # recheck_until: until when recover() looks again at a failed attempt for a charge
        # appearing late; only a failed attempt has one.
        """
        ALTER TABLE attempts
            ADD COLUMN sent_at timestamptz,
            ADD COLUMN recheck_until timestamptz,
            ADD CONSTRAINT attempts_recheck_only_failed
                CHECK (recheck_until IS NULL OR state = 'failed')
        """,
        # Ranged on the time, so windows long past cost nothing to skip.
        """
        CREATE INDEX attempts_to_recheck ON attempts (recheck_until)
            WHERE state = 'failed' AND recheck_until IS NOT NULL
        """,
        # One provider transaction pays at most one order. A v1 schema holding two payments
        # with the same transaction fails this step and stays at version 1: one charge
        # counted as two orders' payment must be sorted out by hand before upgrading.
        """
        CREATE UNIQUE INDEX payments_one_per_provider_txn
            ON payments (provider, provider_txn_id)
        """,
        """
        ALTER TABLE refunds
            ADD COLUMN tax_free_amount bigint NOT NULL DEFAULT 0,
            ADD COLUMN request_key text,
            ADD COLUMN request_fingerprint text,
            ADD CONSTRAINT refunds_tax_free_within_amount
                CHECK (tax_free_amount >= 0 AND tax_free_amount <= amount),
            ADD CONSTRAINT refunds_request_key_of_a_payment
                CHECK (request_key IS NULL OR payment_id IS NOT NULL),
            ADD CONSTRAINT refunds_fingerprint_of_a_key
                CHECK (request_fingerprint IS NULL OR request_key IS NOT NULL)
        """,
        # The merchant's own key for a refund request, unique per payment.
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
        # What the till prints, and the provider's answer with secrets and card numbers
        # masked, for reconciliation: JSON text, as SQLite keeps them.
        """
        ALTER TABLE payments
            ADD COLUMN receipt_json text,
            ADD COLUMN answer_json text
        """,
        """
        ALTER TABLE refunds
            ADD COLUMN receipt_json text,
            ADD COLUMN answer_json text
        """,
        # A day's payments and refunds, for the export.
        "CREATE INDEX payments_by_approved_at ON payments (approved_at)",
        "CREATE INDEX refunds_by_updated_at ON refunds (updated_at)",
    ),
)

#: Every schema step, oldest first; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3)
LATEST_VERSION: int = MIGRATIONS[-1].version

#: First key of the advisory lock taken while migrating ("pfjl"); the second is the
#: schema name's hash, so journals in different schemas migrate independently.
_MIGRATION_LOCK = 0x70666A6C

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    """``schema`` if it is a plain lower-case identifier; ``ConfigurationError`` if not.

    Plain names need no quoting in ``psql`` and cannot be confused with another schema
    by case.
    """
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"journal schema {schema!r} is not a plain PostgreSQL name: use lower-case "
            "letters, digits and '_', starting with a letter or '_', at most 63 characters"
        )
    return schema


def check_steps(migrations: Sequence[Migration]) -> None:
    for index, step in enumerate(migrations):
        if step.version != index + 1:
            raise ValueError(
                f"migration {step.name!r} has version {step.version}, expected {index + 1}: "
                "versions count from 1 without gaps"
            )


def current_version() -> Flow[int]:
    """The schema's version without waiting for anyone: 0 if it has no journal yet.

    One statement, so opening an up-to-date journal costs one round trip; only a schema
    that needs a step takes the lock in :func:`migrate_step`.
    """
    try:
        row = yield from one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
    except pg_errors.UndefinedTable:
        return 0
    return int(row["version"]) if row is not None else 0


def too_new(where: str, current: int, latest: int) -> ConfigurationError:
    return ConfigurationError(
        f"journal {where} has schema version {current}, but this version of payfallback "
        f"only knows versions up to {latest}: it was written by a newer payfallback. "
        "Upgrade payfallback to open it (downgrading against a live journal is not "
        "supported)"
    )


def migrate_step(
    *,
    schema: str,
    applied_at: datetime,
    where: str,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> Flow[int | None]:
    """One transaction of migrating: apply the next step the schema lacks.

    Returns the schema's version once it is up to date, ``None`` after applying a step (run
    it again). Creates the schema and its ``schema_version`` table the first time. The
    connection's ``search_path`` must be ``schema``. ``where`` names the journal in error
    messages.

    Raises ``ConfigurationError`` if the schema is newer than ``migrations`` or a step fails
    (the failed step is rolled back; earlier ones stay).
    """
    check_steps(migrations)
    latest = len(migrations)
    # Held to the end of this transaction: a second worker waits here, then finds the step
    # applied (READ COMMITTED gives each statement a fresh snapshot).
    yield Query("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_MIGRATION_LOCK, schema))
    exists = yield from one("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if exists is None:
        # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
        # database even when the schema is there, and a journal's role may lack it.
        yield Query(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield Query(
        """
        CREATE TABLE IF NOT EXISTS schema_version (
            version     integer PRIMARY KEY,
            name        text NOT NULL,
            applied_at  timestamptz NOT NULL
        )
        """
    )
    row = yield from one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
    current = int(row["version"]) if row is not None else 0
    if current > latest:
        raise too_new(where, current, latest)
    if current == latest:
        return current
    step = migrations[current]
    try:
        for statement in step.statements:
            yield Query(statement)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"journal {where}: schema migration {step.version} ({step.name}) failed and was "
            f"rolled back, the journal stays at version {current}: {exc}"
        ) from exc
    yield Query(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
        (step.version, step.name, applied_at),
    )
    return None
