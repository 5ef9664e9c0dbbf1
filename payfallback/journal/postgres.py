"""The shared journal: PostgreSQL through psycopg 3 and its connection pool.

For several backend instances (or POS terminals behind one server) that share orders.
:class:`PostgresJournal` is a :class:`~payfallback.journal.Journal` (synchronous, safe to
share between threads: the async ``Router`` calls it in worker threads);
:class:`AsyncPostgresJournal` offers the same methods as coroutines over an async pool, for
code of your own that runs on an event loop. Both run the same transactions (see
:mod:`payfallback.journal._pg_flow`). The schema, its migrations and what the database
enforces by itself are described in :mod:`payfallback.journal._pg_migrations`.

Semantics are the SQLite journal's, rule for rule (the shared contract tests run against
both). Every method is one transaction at ``READ COMMITTED``, committed before it returns
(durable with PostgreSQL's default ``synchronous_commit = on``). Where SQLite serialises
all writers with ``BEGIN IMMEDIATE``, here every transaction that changes an order's
attempts, payment or refunds first locks that order's row (``SELECT … FOR UPDATE``), so:

* two workers racing ``begin_attempt`` on one order run one after the other, and the
  second finds the first one's live attempt (``AttemptInFlight``) or its payment
  (``OrderAlreadyPaid``); orders never wait on each other;
* two workers racing ``record_success`` on one order make one payment; the other attempt
  becomes ``SUPERSEDED`` and both get the same ``Payment``;
* two orders racing to record one provider transaction make one payment: orders do not
  lock each other, so the unique index on (provider, provider_txn_id) decides, and the
  other gets ``TxnAlreadyRecorded``; likewise two refunds of one payment racing with one
  request key: both get the refund journaled first;
* claims (``renew_lease``, ``renew_refund_lease``) are decided on the latest committed row
  by whoever holds the lock, so ``recover()`` running in several workers at once gives each
  attempt or refund to exactly one of them. A claim waits for the lock rather than skipping
  a locked row (``SKIP LOCKED``): the lock is held for one short transaction, never across
  a provider call, and waiting gives an exact answer where skipping could wrongly tell a
  customer's returning checkout that someone else holds it.

Locks are always taken order row first, then the rows of that order (a refund claim locks
its refund's row and nothing else), so transactions cannot deadlock one another. Reads of
one statement run without ``BEGIN``/``COMMIT``: a single statement sees one snapshot.

Times come from the injected clock, as in SQLite, never from the database server's
``now()``: tests and the simulator move time by hand, and a lease means the same on every
worker as long as their clocks agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from payfallback._clock import Clock, SystemClock
from payfallback.errors import ConfigurationError, InvalidRequest
from payfallback.journal._base import (
    AttemptInFlight,
    AttemptsOpen,
    CheckoutState,
    JournalCounts,
    OrderAlreadyPaid,
    TxnAlreadyRecorded,
)
from payfallback.journal._checks import (
    OPEN_ATTEMPTS_SQL,
    answer_json,
    attempt_from_row,
    check_attempt_update,
    check_new_refund,
    check_payment_amount,
    check_payment_fits,
    check_refund_fits,
    check_same_order,
    key_reused,
    lease_duration,
    payment_from_row,
    payment_id_taken,
    receipt_json,
    refund_from_row,
)
from payfallback.journal._migrations import Migration
from payfallback.journal._pg_flow import Flow, Query, Row, arun, one, rows, run
from payfallback.journal._pg_migrations import (
    MIGRATIONS,
    check_schema_name,
    current_version,
    migrate_step,
    too_new,
)
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Method,
    Money,
    Order,
    Payment,
    Refund,
    RefundReceipt,
    RefundState,
)

__all__ = ["AsyncPostgresJournal", "PostgresJournal"]

T = TypeVar("T")

_DEFAULT_SCHEMA = "payfallback"
_DEFAULT_POOL_SIZE = 10
#: Reaching the server; libpq's own ``connect_timeout`` in the URL wins.
_CONNECT_TIMEOUT_S = 10
#: Waiting for a free pooled connection. Journal transactions last milliseconds, so
#: reaching this means the pool is far too small or the server is stuck.
_POOL_TIMEOUT_S = 30.0
_URL_PREFIXES = ("postgresql://", "postgres://")
_PASSWORD_IN_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?]*:)[^@/?]*@")

# Columns are named, never ``*``: psycopg prepares statements it runs often, and PostgreSQL
# refuses to run a prepared statement whose result columns changed, so a worker still
# running the previous release would fail the moment a newer one added a column.
_ATTEMPT = (
    "attempt_id, order_id, seq, provider, method, operation, idempotency_key, state,"
    " provider_txn_id, error_code, error_message, created_at, updated_at, lease_until,"
    " sent_at, recheck_until"
)
_PAYMENT = (
    "payment_id, order_id, attempt_id, provider, method, provider_txn_id, amount, refunded,"
    " currency, status, approved_at, attempts, receipt_json, answer_json"
)
_REFUND = (
    "refund_id, payment_id, order_id, attempt_id, provider, provider_txn_id, amount, currency,"
    " expected_remaining, reason, kind, idempotency_key, state, error_code, tries, created_at,"
    " updated_at, tax_free_amount, request_key, request_fingerprint, receipt_json, answer_json"
)

# Shared by unresolved_attempts() and counts() so the two can never disagree.
_UNRESOLVED_WHERE = """
    a.state = 'unknown'
    OR (a.state = 'pending' AND a.lease_until <= %(now)s)
    OR (a.state = 'superseded' AND NOT EXISTS (
        SELECT 1 FROM refunds r
        WHERE r.attempt_id = a.attempt_id AND r.kind = 'compensation'
    ))
"""

# Pending attempts with a live lease that may be moving money: a ``ready`` attempt moves
# none while it starts its checkout, but once the checkout is saved, going back to
# ``pending`` means its approval is being sent.
_IN_FLIGHT_WHERE = """
    a.state = 'pending' AND a.lease_until > %(now)s
    AND (a.operation <> 'ready'
         OR EXISTS (SELECT 1 FROM checkouts c WHERE c.session_id = a.attempt_id))
"""


def _attempt(row: Row) -> Attempt:
    return attempt_from_row(row)


def _payment(row: Row) -> Payment:
    return payment_from_row(row)


def _refund(row: Row) -> Refund:
    return refund_from_row(row)


def _violates(exc: psycopg.Error, constraint: str) -> bool:
    return isinstance(exc, pg_errors.UniqueViolation) and exc.diag.constraint_name == constraint


class _Transactions:
    """The journal's methods as flows: the SQL and every check, with no I/O of their own.

    Each flow is one transaction; the journals below only carry them out.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    # -- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _lock_order(order_id: str) -> Flow[Row | None]:
        """Lock the order's row for the rest of the transaction; its amount and currency."""
        return (
            yield from one(
                "SELECT amount, currency FROM orders WHERE order_id = %s FOR UPDATE", (order_id,)
            )
        )

    @staticmethod
    def _attempt_row(attempt_id: str) -> Flow[Attempt | None]:
        row = yield from one(
            f"SELECT {_ATTEMPT} FROM attempts WHERE attempt_id = %s", (attempt_id,)
        )
        return None if row is None else _attempt(row)

    @classmethod
    def _lock_attempt(cls, attempt_id: str) -> Flow[Attempt]:
        """Lock the attempt's order, then read the attempt as the lock holder sees it."""
        locked = yield from one(
            "SELECT o.order_id FROM orders o JOIN attempts a ON a.order_id = o.order_id"
            " WHERE a.attempt_id = %s FOR UPDATE OF o",
            (attempt_id,),
        )
        if locked is None:
            raise InvalidRequest(
                f"no attempt {attempt_id!r} in the journal; attempts are created by begin_attempt",
                attempt_id=attempt_id,
            )
        # A statement of its own: under READ COMMITTED it sees what the previous lock holder
        # committed, which the locking statement's snapshot may not.
        attempt = yield from cls._attempt_row(attempt_id)
        assert attempt is not None  # attempts are never deleted
        return attempt

    @staticmethod
    def _payment_by(column: str, value: str) -> Flow[Payment | None]:
        # ``column`` is one of our own literals, never caller input.
        row = yield from one(f"SELECT {_PAYMENT} FROM payments WHERE {column} = %s", (value,))
        return None if row is None else _payment(row)

    @staticmethod
    def _refund_row(refund_id: str) -> Flow[Refund | None]:
        row = yield from one(f"SELECT {_REFUND} FROM refunds WHERE refund_id = %s", (refund_id,))
        return None if row is None else _refund(row)

    @staticmethod
    def _no_refund(refund_id: str) -> InvalidRequest:
        return InvalidRequest(
            f"no refund {refund_id!r} in the journal; refunds are created by add_refund"
        )

    # -- attempts -------------------------------------------------------------------------

    def begin_attempt(
        self,
        order: Order,
        *,
        provider: str,
        method: Method,
        operation: str,
        idempotency_key: str,
        lease_seconds: float,
        settle_first: bool = False,
    ) -> Flow[Attempt]:
        lease = lease_duration(lease_seconds)
        now = self._clock.now()
        # A new order's row is written first so that there is a row to lock; if another
        # transaction is writing the same new order, this waits for it to finish. A row
        # inserted here is locked by this transaction, and a new order has no payment and
        # no attempts: its first attempt needs no reads.
        inserted = yield from one(
            "INSERT INTO orders (order_id, amount, currency, order_json, created_at)"
            " VALUES (%s, %s, %s, %s::json, %s) ON CONFLICT (order_id) DO NOTHING"
            " RETURNING order_id",
            (
                order.order_id,
                order.amount.amount,
                order.amount.currency,
                order.model_dump_json(),
                now,
            ),
        )
        seq = 1 if inserted is not None else (yield from self._next_seq(order, now, settle_first))
        # A key another attempt took (of any order: orders do not lock each other) is
        # refused by the unique constraint, with nothing written.
        stored = yield from one(
            "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
            " idempotency_key, state, lease_until, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s)"
            " ON CONFLICT (provider, idempotency_key) DO NOTHING"
            f" RETURNING {_ATTEMPT}",
            (
                f"{order.order_id}_{seq}",
                order.order_id,
                seq,
                provider,
                Method(method).value,
                operation,
                idempotency_key,
                now + lease,
                now,
                now,
            ),
        )
        if stored is None:
            reused = yield from one(
                "SELECT attempt_id FROM attempts WHERE provider = %s AND idempotency_key = %s",
                (provider, idempotency_key),
            )
            assert reused is not None  # the row the insert collided with
            raise key_reused(reused["attempt_id"], provider)
        return _attempt(stored)

    def _next_seq(self, order: Order, now: datetime, settle_first: bool) -> Flow[int]:
        """An order journaled before: lock it, check it may take another attempt, and
        number the attempt."""
        row = yield from one(
            "SELECT order_json FROM orders WHERE order_id = %s FOR UPDATE", (order.order_id,)
        )
        assert row is not None  # the insert that found it there; orders are never deleted
        check_same_order(order, Order.model_validate(row["order_json"], strict=False))
        payment = yield from self._payment_by("order_id", order.order_id)
        if payment is not None:
            raise OrderAlreadyPaid(payment)
        live = yield from one(
            "SELECT attempt_id FROM attempts WHERE order_id = %s AND state = 'pending'"
            " AND lease_until > %s ORDER BY seq LIMIT 1",
            (order.order_id, now),
        )
        if live is not None:
            raise AttemptInFlight(order.order_id, live["attempt_id"])
        if settle_first:
            open_ = yield from rows(OPEN_ATTEMPTS_SQL, {"order_id": order.order_id, "now": now})
            if open_:
                raise AttemptsOpen(order.order_id, [r["attempt_id"] for r in open_])
        seq_row = yield from one(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM attempts WHERE order_id = %s",
            (order.order_id,),
        )
        assert seq_row is not None  # an aggregate always yields a row
        return int(seq_row["seq"])

    def update_attempt(
        self,
        attempt_id: str,
        *,
        state: AttemptState,
        provider_txn_id: str | None,
        error_code: str | None,
        error_message: str | None,
        sent: bool,
        recheck_until: datetime | None,
    ) -> Flow[Attempt]:
        state = AttemptState(state)
        recheck = check_attempt_update(attempt_id, state, recheck_until)
        now = self._clock.now()
        current = yield from self._lock_attempt(attempt_id)
        if current.state is AttemptState.SUCCEEDED:
            raise InvalidRequest(
                f"attempt {attempt_id} is the payment of order {current.order_id}; it "
                f"cannot move to {state.value} (refund the payment instead)",
                attempt_id=attempt_id,
            )
        if state is AttemptState.PENDING and current.state is not AttemptState.PENDING:
            live = yield from one(
                "SELECT attempt_id FROM attempts WHERE order_id = %s AND attempt_id <> %s"
                " AND state = 'pending' AND lease_until > %s ORDER BY seq LIMIT 1",
                (current.order_id, attempt_id, now),
            )
            if live is not None:
                raise AttemptInFlight(current.order_id, live["attempt_id"])
        # A lease guards work in flight; once an attempt leaves PENDING that work is over,
        # so its lease ends with it (a redirected checkout must be claimable the moment
        # the customer comes back).
        stored = yield from one(
            "UPDATE attempts SET state = %(state)s,"
            " provider_txn_id = COALESCE(%(txn)s, provider_txn_id),"
            " error_code = COALESCE(%(code)s, error_code),"
            " error_message = COALESCE(%(message)s, error_message),"
            " lease_until = CASE WHEN %(pending)s THEN lease_until ELSE %(now)s END,"
            " sent_at = CASE WHEN %(sent)s THEN %(now)s ELSE sent_at END,"
            " recheck_until = CASE WHEN %(failed)s"
            "   THEN COALESCE(%(recheck)s, recheck_until) END,"
            " updated_at = %(now)s WHERE attempt_id = %(id)s"
            f" RETURNING {_ATTEMPT}",
            {
                "state": state.value,
                "txn": provider_txn_id,
                "code": error_code,
                "message": error_message,
                "pending": state is AttemptState.PENDING,
                "sent": bool(sent),
                "failed": state is AttemptState.FAILED,
                "recheck": recheck,
                "now": now,
                "id": attempt_id,
            },
        )
        assert stored is not None
        return _attempt(stored)

    def record_success(self, attempt_id: str, payment: Payment) -> Flow[Payment]:
        now = self._clock.now()
        attempt = yield from self._lock_attempt(attempt_id)
        check_payment_fits(attempt, payment)
        # An order's amount never changes (a trigger), so it is read without its lock.
        order = yield from one(
            "SELECT amount, currency FROM orders WHERE order_id = %s", (attempt.order_id,)
        )
        assert order is not None  # attempts reference their order
        check_payment_amount(
            payment, attempt, Money(amount=order["amount"], currency=order["currency"])
        )
        # The unique constraints decide (one payment per order, per payment id, per
        # provider transaction); only when one refuses is anything read to say which.
        # DO NOTHING waits for a racing order's transaction and keeps this one alive.
        stored = yield from one(
            "INSERT INTO payments (payment_id, order_id, attempt_id, provider, method,"
            " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
            " created_at, updated_at, receipt_json, answer_json)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, 'paid', %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING"
            f" RETURNING {_PAYMENT}",
            (
                payment.payment_id,
                payment.order_id,
                attempt_id,
                payment.provider,
                payment.method.value,
                payment.provider_txn_id,
                payment.amount.amount,
                payment.amount.currency,
                payment.approved_at,
                payment.attempts,
                now,
                now,
                receipt_json(payment.receipt),
                answer_json(payment.provider_answer),
            ),
        )
        if stored is None:
            return (yield from self._payment_refused(attempt, payment, now))
        yield Query(
            "UPDATE attempts SET state = 'succeeded', provider_txn_id = %s,"
            " recheck_until = NULL, updated_at = %s WHERE attempt_id = %s",
            (payment.provider_txn_id, now, attempt_id),
        )
        return _payment(stored)

    def _payment_refused(self, attempt: Attempt, payment: Payment, now: datetime) -> Flow[Payment]:
        """Why a payment was not written: the order's own payment (returned, this attempt
        superseded unless it is that payment's), or a typed error."""
        existing = yield from self._payment_by("order_id", attempt.order_id)
        if existing is not None:
            if existing.attempt_id != attempt.attempt_id:
                yield Query(
                    "UPDATE attempts SET state = 'superseded',"
                    " provider_txn_id = COALESCE(%s, provider_txn_id),"
                    " recheck_until = NULL, updated_at = %s"
                    " WHERE attempt_id = %s",
                    (payment.provider_txn_id, now, attempt.attempt_id),
                )
            return existing
        clash = yield from self._payment_by("payment_id", payment.payment_id)
        if clash is not None:
            owner = f"order {clash.order_id}"
            raise payment_id_taken(payment.payment_id, owner, attempt.attempt_id)
        # This order has no payment (its row is locked), so the payment with this
        # transaction is another order's: the same charge cannot pay both.
        taken = yield from self._payment_by_txn(payment.provider, payment.provider_txn_id)
        assert taken is not None  # the only unique constraint left; payments stay
        raise TxnAlreadyRecorded(taken, attempt_id=attempt.attempt_id)

    @staticmethod
    def _payment_by_txn(provider: str, provider_txn_id: str) -> Flow[Payment | None]:
        row = yield from one(
            f"SELECT {_PAYMENT} FROM payments WHERE provider = %s AND provider_txn_id = %s",
            (provider, provider_txn_id),
        )
        return None if row is None else _payment(row)

    def renew_lease(self, attempt_id: str, lease_seconds: float) -> Flow[bool]:
        lease = lease_duration(lease_seconds)
        now = self._clock.now()
        yield from self._lock_attempt(attempt_id)
        # A stale PENDING attempt is not revived while another attempt of the same order
        # is live: one order, one request in flight.
        result = yield Query(
            "UPDATE attempts SET lease_until = %(until)s"
            " WHERE attempt_id = %(id)s AND state NOT IN ('succeeded', 'failed')"
            " AND lease_until <= %(now)s"
            " AND NOT (state = 'pending' AND EXISTS (SELECT 1 FROM attempts other"
            "   WHERE other.order_id = attempts.order_id"
            "   AND other.attempt_id <> attempts.attempt_id"
            "   AND other.state = 'pending' AND other.lease_until > %(now)s))",
            {"until": now + lease, "id": attempt_id, "now": now},
        )
        return result.rowcount == 1

    def get_order(self, order_id: str) -> Flow[Order | None]:
        row = yield from one(
            "SELECT order_json::text AS order_json FROM orders WHERE order_id = %s", (order_id,)
        )
        return None if row is None else Order.model_validate_json(row["order_json"], strict=False)

    def get_attempt(self, attempt_id: str) -> Flow[Attempt | None]:
        return (yield from self._attempt_row(attempt_id))

    def attempts_for_order(self, order_id: str) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts WHERE order_id = %s ORDER BY seq", (order_id,)
        )
        return [_attempt(row) for row in found]

    def get_payment(self, payment_id: str) -> Flow[Payment | None]:
        return (yield from self._payment_by("payment_id", payment_id))

    def payment_for_order(self, order_id: str) -> Flow[Payment | None]:
        return (yield from self._payment_by("order_id", order_id))

    def unresolved_attempts(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts a WHERE {_UNRESOLVED_WHERE}"
            " ORDER BY a.created_at, a.row_no",
            {"now": self._clock.now()},
        )
        return [_attempt(row) for row in found]

    def attempts_to_recheck(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts WHERE state = 'failed' AND recheck_until > %s"
            " ORDER BY created_at, row_no",
            (self._clock.now(),),
        )
        return [_attempt(row) for row in found]

    def in_flight_attempts(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts a WHERE {_IN_FLIGHT_WHERE}"
            " ORDER BY a.created_at, a.row_no",
            {"now": self._clock.now()},
        )
        return [_attempt(row) for row in found]

    # -- checkouts ------------------------------------------------------------------------

    def save_checkout(self, session: CheckoutSession) -> Flow[None]:
        now = self._clock.now()
        attempt = yield from self._lock_attempt(session.session_id)
        if attempt.order_id != session.order_id or attempt.provider != session.provider:
            raise InvalidRequest(
                f"checkout {session.session_id} is for order {session.order_id} at "
                f"{session.provider}, but its attempt is for order {attempt.order_id} at "
                f"{attempt.provider}",
                attempt_id=attempt.attempt_id,
            )
        if attempt.state not in (AttemptState.PENDING, AttemptState.REDIRECTED):
            raise InvalidRequest(
                f"attempt {attempt.attempt_id} is {attempt.state.value}; a checkout is "
                "saved while its attempt is pending (or redirected, to replace it)",
                attempt_id=attempt.attempt_id,
            )
        yield Query(
            "INSERT INTO checkouts (session_id, order_id, session_json, created_at, updated_at)"
            " VALUES (%s, %s, %s::json, %s, %s)"
            " ON CONFLICT (session_id) DO UPDATE SET"
            " session_json = excluded.session_json, updated_at = excluded.updated_at",
            (session.session_id, session.order_id, session.model_dump_json(), now, now),
        )
        yield Query(
            "UPDATE attempts SET state = 'redirected',"
            " provider_txn_id = COALESCE(%s, provider_txn_id), lease_until = %s,"
            " updated_at = %s WHERE attempt_id = %s",
            (session.provider_txn_id, now, now, attempt.attempt_id),
        )

    def get_checkout(self, session_id: str) -> Flow[CheckoutSession | None]:
        row = yield from one(
            "SELECT session_json::text AS session_json FROM checkouts WHERE session_id = %s",
            (session_id,),
        )
        if row is None:
            return None
        return CheckoutSession.model_validate_json(row["session_json"], strict=False)

    def checkout_state(self, session_id: str) -> Flow[CheckoutState | None]:
        row = yield from one(
            "SELECT c.session_json::text AS session_json, o.order_json::text AS order_json"
            " FROM checkouts c JOIN orders o ON o.order_id = c.order_id"
            " WHERE c.session_id = %s",
            (session_id,),
        )
        if row is None:
            return None
        attempt = yield from self._attempt_row(session_id)
        session = CheckoutSession.model_validate_json(row["session_json"], strict=False)
        payment = yield from self._payment_by("order_id", session.order_id)
        if attempt is None:
            return None
        order = Order.model_validate_json(row["order_json"], strict=False)
        return CheckoutState(session=session, order=order, attempt=attempt, payment=payment)

    # -- refunds --------------------------------------------------------------------------

    def _same_refund(self, refund: Refund) -> Flow[Refund | None]:
        """The refund already journaled with ``refund``'s id, or its payment and key."""
        existing = yield from self._refund_row(refund.refund_id)
        if existing is None and refund.request_key is not None:
            assert refund.payment_id is not None  # check_new_refund
            existing = yield from self._refund_by_key(refund.payment_id, refund.request_key)
        return existing

    @staticmethod
    def _refund_by_key(payment_id: str, request_key: str) -> Flow[Refund | None]:
        row = yield from one(
            f"SELECT {_REFUND} FROM refunds WHERE payment_id = %s AND request_key = %s",
            (payment_id, request_key),
        )
        return None if row is None else _refund(row)

    def add_refund(self, refund: Refund) -> Flow[Refund]:
        check_new_refund(refund)
        existing = yield from self._same_refund(refund)
        if existing is not None:
            return existing
        attempt = yield from self._lock_attempt(refund.attempt_id)
        # Again under the lock: the same refund may have been journaled meanwhile.
        existing = yield from self._same_refund(refund)
        if existing is not None:
            return existing
        if attempt.order_id != refund.order_id:
            raise InvalidRequest(
                f"refund {refund.refund_id} is for order {refund.order_id}, but attempt "
                f"{attempt.attempt_id} belongs to order {attempt.order_id}",
                attempt_id=attempt.attempt_id,
            )
        if refund.kind == "refund":
            yield from self._check_refundable(refund)
        elif refund.payment_id is not None:
            named = yield from self._payment_by("payment_id", refund.payment_id)
            if named is None:
                raise InvalidRequest(
                    f"compensation {refund.refund_id} names payment {refund.payment_id}, "
                    "which is not in the journal; use None for a charge that is no payment"
                )
        reused = yield from one(
            "SELECT refund_id FROM refunds WHERE idempotency_key = %s", (refund.idempotency_key,)
        )
        if reused is not None:
            raise self._refund_key_reused(reused["refund_id"], refund.refund_id)
        try:
            stored = yield from one(
                "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " idempotency_key, state, error_code, tries, lease_until, created_at,"
                " updated_at, tax_free_amount, request_key, request_fingerprint)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'owed', %s, 0, NULL,"
                " %s, %s, %s, %s, %s)"
                # A refund naming the payment under another order's lock (a compensation
                # may) could take the key meanwhile: the unique index decides, and DO
                # NOTHING keeps this transaction alive to return that refund.
                " ON CONFLICT (payment_id, request_key) WHERE request_key IS NOT NULL"
                " DO NOTHING"
                f" RETURNING {_REFUND}",
                (
                    refund.refund_id,
                    refund.payment_id,
                    refund.order_id,
                    refund.attempt_id,
                    refund.provider,
                    refund.provider_txn_id,
                    refund.amount.amount,
                    refund.amount.currency,
                    refund.expected_remaining,
                    refund.reason,
                    refund.kind,
                    refund.idempotency_key,
                    refund.error_code,
                    refund.created_at,
                    refund.updated_at,
                    refund.tax_free_amount,
                    refund.request_key,
                    refund.request_fingerprint,
                ),
            )
        except psycopg.Error as exc:
            # A refund of another order took the key after the check above.
            if _violates(exc, "refunds_key_once"):
                raise self._refund_key_reused("of another order", refund.refund_id) from exc
            raise
        if stored is None:
            assert refund.payment_id is not None
            assert refund.request_key is not None
            same = yield from self._refund_by_key(refund.payment_id, refund.request_key)
            assert same is not None  # the conflicting row is committed; refunds stay
            return same
        return _refund(stored)

    @staticmethod
    def _refund_key_reused(other: str, refund_id: str) -> InvalidRequest:
        return InvalidRequest(
            f"refund {other} already used this idempotency key; mint a new key for refund "
            f"{refund_id}"
        )

    def _check_refundable(self, refund: Refund) -> Flow[None]:
        if refund.payment_id is None:
            raise InvalidRequest(
                f"refund {refund.refund_id} names no payment; only a compensation (giving "
                "back a charge that is not the order's payment) may omit it"
            )
        payment = yield from self._payment_by("payment_id", refund.payment_id)
        payment = check_refund_fits(refund, payment)
        row = yield from one(
            "SELECT COALESCE(SUM(amount), 0) AS owed FROM refunds"
            " WHERE payment_id = %s AND kind = 'refund' AND state = 'owed'",
            (payment.payment_id,),
        )
        owed = Money(
            amount=int(row["owed"]) if row is not None else 0, currency=payment.amount.currency
        )
        left = payment.refundable - owed
        if refund.amount.amount > left.amount:
            raise InvalidRequest(
                f"refund {refund.refund_id} of {refund.amount} is more than payment "
                f"{payment.payment_id} (order {payment.order_id}) has left to refund: "
                f"{left} can still be refunded ({payment.amount} paid, {payment.refunded} "
                f"refunded, {owed} owed)"
            )

    def update_refund(
        self,
        refund_id: str,
        *,
        state: RefundState,
        error_code: str | None,
        idempotency_key: str | None = None,
        receipt: RefundReceipt | None = None,
        provider_answer: Mapping[str, Any] | None = None,
    ) -> Flow[Refund]:
        state = RefundState(state)
        now = self._clock.now()
        found = yield from one("SELECT order_id FROM refunds WHERE refund_id = %s", (refund_id,))
        if found is None:
            raise self._no_refund(refund_id)
        yield from self._lock_order(found["order_id"])
        current = yield from self._refund_row(refund_id)
        assert current is not None  # refunds are never deleted while owed, nor by us
        if current.state is not RefundState.OWED and state is not current.state:
            raise InvalidRequest(
                f"refund {refund_id} already {current.state.value}; it cannot become "
                f"{state.value} (journal a new refund if money must still move)"
            )
        # Each try ends the lease that claimed it, so the next recover() can retry.
        stored = yield from one(
            "UPDATE refunds SET state = %s, error_code = COALESCE(%s, error_code),"
            " idempotency_key = COALESCE(%s, idempotency_key),"
            " receipt_json = COALESCE(%s, receipt_json), answer_json = COALESCE(%s, answer_json),"
            " tries = tries + 1, lease_until = NULL, updated_at = %s WHERE refund_id = %s"
            f" RETURNING {_REFUND}",
            (
                state.value,
                error_code,
                idempotency_key,
                receipt_json(receipt),
                answer_json(provider_answer),
                now,
                refund_id,
            ),
        )
        settles_payment = (
            state is RefundState.SUCCEEDED
            and current.state is RefundState.OWED
            and current.kind == "refund"
            and current.payment_id is not None
        )
        if settles_payment:
            yield Query(
                "UPDATE payments SET refunded = refunded + %(amount)s,"
                " status = CASE WHEN refunded + %(amount)s >= amount THEN 'refunded'"
                " ELSE 'partially_refunded' END, updated_at = %(now)s"
                " WHERE payment_id = %(payment_id)s",
                {"amount": current.amount.amount, "now": now, "payment_id": current.payment_id},
            )
        assert stored is not None
        return _refund(stored)

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> Flow[bool]:
        lease = lease_duration(lease_seconds)
        now = self._clock.now()
        # One UPDATE: a second claimer waits for the first one's row lock, then re-checks
        # the lease on the row the first one committed and finds it live.
        result = yield Query(
            "UPDATE refunds SET lease_until = %s WHERE refund_id = %s AND state = 'owed'"
            " AND (lease_until IS NULL OR lease_until <= %s)",
            (now + lease, refund_id, now),
        )
        if result.rowcount == 1:
            return True
        exists = yield from one("SELECT 1 FROM refunds WHERE refund_id = %s", (refund_id,))
        if exists is None:
            raise self._no_refund(refund_id)
        return False

    def get_refund(self, refund_id: str) -> Flow[Refund | None]:
        return (yield from self._refund_row(refund_id))

    def refund_by_request_key(self, payment_id: str, request_key: str) -> Flow[Refund | None]:
        return (yield from self._refund_by_key(payment_id, request_key))

    def refunds_for_order(self, order_id: str) -> Flow[Sequence[Refund]]:
        found = yield from rows(
            f"SELECT {_REFUND} FROM refunds WHERE order_id = %s ORDER BY created_at, row_no",
            (order_id,),
        )
        return [_refund(row) for row in found]

    def refunds_owed(self) -> Flow[Sequence[Refund]]:
        found = yield from rows(
            f"SELECT {_REFUND} FROM refunds WHERE state = 'owed' ORDER BY created_at, row_no"
        )
        return [_refund(row) for row in found]

    @staticmethod
    def payments_between(start: datetime, end: datetime) -> Flow[Sequence[Payment]]:
        found = yield from rows(
            f"SELECT {_PAYMENT} FROM payments WHERE approved_at >= %s AND approved_at < %s"
            " ORDER BY approved_at, payment_id",
            (start, end),
        )
        return [_payment(row) for row in found]

    @staticmethod
    def refunds_between(start: datetime, end: datetime) -> Flow[Sequence[Refund]]:
        found = yield from rows(
            f"SELECT {_REFUND} FROM refunds WHERE state = 'succeeded'"
            " AND updated_at >= %s AND updated_at < %s ORDER BY updated_at, row_no",
            (start, end),
        )
        return [_refund(row) for row in found]

    def counts(self) -> Flow[JournalCounts]:
        # One statement, so one snapshot: the figures agree with each other.
        row = yield from one(
            "SELECT (SELECT COUNT(*) FROM orders) AS orders,"
            " (SELECT COUNT(*) FROM payments) AS payments,"
            f" (SELECT COUNT(*) FROM attempts a WHERE {_UNRESOLVED_WHERE}) AS unresolved,"
            " (SELECT COUNT(*) FROM refunds WHERE state = 'owed') AS owed,"
            " (SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE state = 'owed')"
            " AS owed_amount",
            {"now": self._clock.now()},
        )
        assert row is not None
        return JournalCounts(
            orders=int(row["orders"]),
            payments=int(row["payments"]),
            unresolved_attempts=int(row["unresolved"]),
            refunds_owed=int(row["owed"]),
            refunds_owed_amount=int(row["owed_amount"]),
        )


# -- connection settings ------------------------------------------------------------------


def _split_url(url: str) -> tuple[str, str | None, int | None]:
    """``url`` without our own query parameters, and those: ``schema``, ``pool_size``."""
    if not isinstance(url, str) or not url.startswith(_URL_PREFIXES):
        raise ConfigurationError(
            f"not a PostgreSQL journal URL: {_redact_url(url)!r}; use "
            "postgresql://user:password@host:5432/dbname (optionally ?schema=payfallback"
            "&pool_size=10, and any libpq parameter such as sslmode=require)"
        )
    base, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    ours = {key: value for key, value in query if key in ("schema", "pool_size")}
    libpq = [(key, value) for key, value in query if key not in ours]
    pool_size: int | None = None
    if "pool_size" in ours:
        try:
            pool_size = int(ours["pool_size"])
        except ValueError:
            raise ConfigurationError(
                f"journal URL: pool_size must be a whole number, got {ours['pool_size']!r}"
            ) from None
    conninfo = f"{base}?{urlencode(libpq)}" if libpq else base
    return conninfo, ours.get("schema"), pool_size


def _redact_url(url: object) -> str:
    """A URL fit for a message: no password."""
    if not isinstance(url, str):
        return repr(url)
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def _describe(conninfo: str) -> str:
    """Where a journal is, for ``repr`` and messages: never the password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"journal connection string is not valid: {exc}; use "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    user = params.get("user") or ""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or user
    return f"postgresql://{user}{'@' if user else ''}{host}:{port}/{dbname}"


def _connect_kwargs(conninfo: str) -> dict[str, Any]:
    """Defaults for what the caller's connection string leaves out."""
    given = conninfo_to_dict(conninfo)
    # Autocommit: transactions are opened by the flows' driver, only where a flow needs
    # more than one statement.
    kwargs: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in given:
        kwargs["connect_timeout"] = _CONNECT_TIMEOUT_S
    if "application_name" not in given:
        kwargs["application_name"] = "payfallback"
    return kwargs


def _check_pool_size(pool_size: int) -> int:
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ConfigurationError(
            f"pool_size must be a whole number of connections >= 1, got {pool_size!r}"
        )
    return pool_size


def _session_setup(schema: str) -> tuple[str, tuple[str]]:
    """Run on every new connection, in one round trip: unqualified names in the journal's
    SQL reach its schema and nothing else, and timestamps come back in UTC, the only zone
    the journal stores."""
    path = sql.Identifier(schema).as_string()
    return (
        "SELECT set_config('search_path', %s, false), set_config('TimeZone', 'UTC', false)",
        (path,),
    )


class _Settings:
    """What both journals are given, checked once; ``where`` is safe to show."""

    def __init__(self, conninfo: str, schema: str, pool_size: int, clock: Clock | None) -> None:
        self.conninfo = conninfo
        self.schema = check_schema_name(schema)
        self.pool_size = _check_pool_size(pool_size)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.address = _describe(conninfo)
        self.where = f"{self.address} (schema {self.schema})"
        self.kwargs = _connect_kwargs(conninfo)

    def repr(self, cls: str) -> str:
        return f"{cls}({self.address!r}, schema={self.schema!r}, pool_size={self.pool_size})"

    def cannot_connect(self, exc: psycopg.Error) -> ConfigurationError:
        return ConfigurationError(
            f"cannot open journal {self.where}: {str(exc).strip()}; check the URL, that the "
            "server is up, and that the role may connect to the database and use (or, the "
            "first time, create) the schema"
        )


# -- the journals -------------------------------------------------------------------------


class PostgresJournal:
    """A :class:`~payfallback.journal.Journal` in a PostgreSQL schema, for shared orders.

    ``conninfo`` is a libpq connection string or URL; the role needs to create the schema
    the first time (or an administrator creates it and grants the role its use). Opening
    applies the schema's pending migrations on a connection of its own (so a wrong URL or
    password fails at once, with PostgreSQL's own message, as ``ConfigurationError``), then
    opens a pool of up to ``pool_size`` connections, shared by the threads that call the
    journal. Close it (or use it as a context manager) to close the pool.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = _DEFAULT_SCHEMA,
        pool_size: int = _DEFAULT_POOL_SIZE,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings = _Settings(conninfo, schema, pool_size, clock)
        self._tx = _Transactions(settings.clock)
        try:
            with psycopg.connect(conninfo, **settings.kwargs) as conn:
                self._setup(conn)
                self._migrate(conn, MIGRATIONS)
        except psycopg.Error as exc:
            raise settings.cannot_connect(exc) from exc
        pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            conninfo,
            kwargs=settings.kwargs,
            min_size=1,
            max_size=settings.pool_size,
            open=False,
            configure=self._setup,
            check=ConnectionPool.check_connection,
            name=f"payfallback-journal-{settings.schema}",
            timeout=_POOL_TIMEOUT_S,
        )
        try:
            pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            pool.close()
            raise settings.cannot_connect(exc) from exc
        self._pool = pool

    def _migrate(self, conn: psycopg.Connection[Any], migrations: Sequence[Migration]) -> None:
        settings = self._settings
        current = run(conn, current_version(), atomic=False)
        if current > len(migrations):
            raise too_new(settings.where, current, len(migrations))
        while current != len(migrations):
            step = migrate_step(
                schema=settings.schema,
                applied_at=settings.clock.now(),
                where=settings.where,
                migrations=migrations,
            )
            # None: a step was applied; the next run applies another or says we are done.
            version: int | None = run(conn, step)
            current = version or 0

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(*_session_setup(self._settings.schema))

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> Self:
        """Open the journal a URL names.

        ``postgresql://user:password@host:5432/dbname`` (or ``postgres://``), with
        optional ``schema`` (default ``payfallback``) and ``pool_size`` (default 10) query
        parameters; any other query parameter goes to libpq (``sslmode=require``, say).
        """
        conninfo, schema, pool_size = _split_url(url)
        return cls(
            conninfo,
            schema=schema if schema is not None else _DEFAULT_SCHEMA,
            pool_size=pool_size if pool_size is not None else _DEFAULT_POOL_SIZE,
            clock=clock,
        )

    @property
    def schema(self) -> str:
        return self._settings.schema

    @property
    def pool_size(self) -> int:
        return self._settings.pool_size

    def __repr__(self) -> str:
        return self._settings.repr(type(self).__name__)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pool; calling it again does nothing."""
        self._pool.close()

    def _run(self, flow: Flow[T]) -> T:
        with self._pool.connection() as conn:
            return run(conn, flow)

    def _read(self, flow: Flow[T]) -> T:
        """Run a flow of one statement: atomic by itself, no ``BEGIN``/``COMMIT`` needed."""
        with self._pool.connection() as conn:
            return run(conn, flow, atomic=False)

    # -- the Journal protocol: each method is one transaction of _Transactions -------------

    def begin_attempt(
        self,
        order: Order,
        *,
        provider: str,
        method: Method,
        operation: str,
        idempotency_key: str,
        lease_seconds: float,
        settle_first: bool = False,
    ) -> Attempt:
        """See :meth:`Journal.begin_attempt`; racing workers are serialised per order."""
        return self._run(
            self._tx.begin_attempt(
                order,
                provider=provider,
                method=method,
                operation=operation,
                idempotency_key=idempotency_key,
                lease_seconds=lease_seconds,
                settle_first=settle_first,
            )
        )

    def update_attempt(
        self,
        attempt_id: str,
        *,
        state: AttemptState,
        provider_txn_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        sent: bool = False,
        recheck_until: datetime | None = None,
    ) -> Attempt:
        """Move an attempt to ``state``; ``None`` never erases a value already journaled.

        As :meth:`SQLiteJournal.update_attempt
        <payfallback.journal.sqlite.SQLiteJournal.update_attempt>`: ``SUCCEEDED`` only
        through :meth:`record_success`, a succeeded attempt never moves, leaving
        ``PENDING`` ends the lease, and going back to ``PENDING`` raises
        ``AttemptInFlight`` while another attempt of the order is live. ``sent`` stamps
        ``sent_at``; ``recheck_until`` goes with ``FAILED`` only, and any other state
        clears it.
        """
        return self._run(
            self._tx.update_attempt(
                attempt_id,
                state=state,
                provider_txn_id=provider_txn_id,
                error_code=error_code,
                error_message=error_message,
                sent=sent,
                recheck_until=recheck_until,
            )
        )

    def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        """See :meth:`Journal.record_success`; the payment must fit its attempt and order.

        Two orders racing to record one provider transaction: the first to commit makes
        the payment, the other gets ``TxnAlreadyRecorded``."""
        return self._run(self._tx.record_success(attempt_id, payment))

    def renew_lease(self, attempt_id: str, lease_seconds: float) -> bool:
        """Claim an attempt for work if its lease ran out; True if this call claimed it.

        Settled attempts are never claimed, a live lease is never extended, and a stale
        ``PENDING`` attempt is not revived while another attempt of its order is live.
        """
        return self._run(self._tx.renew_lease(attempt_id, lease_seconds))

    def get_order(self, order_id: str) -> Order | None:
        return self._read(self._tx.get_order(order_id))

    def get_attempt(self, attempt_id: str) -> Attempt | None:
        return self._read(self._tx.get_attempt(attempt_id))

    def attempts_for_order(self, order_id: str) -> Sequence[Attempt]:
        return self._read(self._tx.attempts_for_order(order_id))

    def get_payment(self, payment_id: str) -> Payment | None:
        return self._read(self._tx.get_payment(payment_id))

    def payment_for_order(self, order_id: str) -> Payment | None:
        return self._read(self._tx.payment_for_order(order_id))

    def save_checkout(self, session: CheckoutSession) -> None:
        """Store a started checkout under its attempt, which moves to ``REDIRECTED`` and
        whose lease ends; saving again replaces the session."""
        self._run(self._tx.save_checkout(session))

    def get_checkout(self, session_id: str) -> CheckoutSession | None:
        return self._read(self._tx.get_checkout(session_id))

    def checkout_state(self, session_id: str) -> CheckoutState | None:
        """See :meth:`Journal.checkout_state`; one snapshot."""
        return self._run(self._tx.checkout_state(session_id))

    def add_refund(self, refund: Refund) -> Refund:
        """See :meth:`Journal.add_refund`; the new row has no lease until claimed."""
        return self._run(self._tx.add_refund(refund))

    def update_refund(
        self,
        refund_id: str,
        *,
        state: RefundState,
        error_code: str | None = None,
        idempotency_key: str | None = None,
        receipt: RefundReceipt | None = None,
        provider_answer: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Record one try of a refund (it ends the refund's lease); settled is final."""
        return self._run(
            self._tx.update_refund(
                refund_id,
                state=state,
                error_code=error_code,
                idempotency_key=idempotency_key,
                receipt=receipt,
                provider_answer=provider_answer,
            )
        )

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> bool:
        """Claim an owed refund if no other worker holds it; True if this call claimed it."""
        return self._run(self._tx.renew_refund_lease(refund_id, lease_seconds))

    def get_refund(self, refund_id: str) -> Refund | None:
        return self._read(self._tx.get_refund(refund_id))

    def refund_by_request_key(self, payment_id: str, request_key: str) -> Refund | None:
        """See :meth:`Journal.refund_by_request_key`."""
        return self._read(self._tx.refund_by_request_key(payment_id, request_key))

    def refunds_for_order(self, order_id: str) -> Sequence[Refund]:
        return self._read(self._tx.refunds_for_order(order_id))

    def refunds_owed(self) -> Sequence[Refund]:
        return self._read(self._tx.refunds_owed())

    def payments_between(self, start: datetime, end: datetime) -> Sequence[Payment]:
        """See :meth:`Journal.payments_between`."""
        return self._read(self._tx.payments_between(start, end))

    def refunds_between(self, start: datetime, end: datetime) -> Sequence[Refund]:
        """See :meth:`Journal.refunds_between`."""
        return self._read(self._tx.refunds_between(start, end))

    def unresolved_attempts(self) -> Sequence[Attempt]:
        """See :meth:`Journal.unresolved_attempts`; oldest first."""
        return self._read(self._tx.unresolved_attempts())

    def attempts_to_recheck(self) -> Sequence[Attempt]:
        """See :meth:`Journal.attempts_to_recheck`; oldest first."""
        return self._read(self._tx.attempts_to_recheck())

    def in_flight_attempts(self) -> Sequence[Attempt]:
        """See :meth:`Journal.in_flight_attempts`; oldest first."""
        return self._read(self._tx.in_flight_attempts())

    def counts(self) -> JournalCounts:
        return self._read(self._tx.counts())


class AsyncPostgresJournal:
    """:class:`PostgresJournal`'s methods as coroutines, over an async connection pool.

    For code that runs on an event loop and reads or writes the journal itself (a
    reconciliation job, an admin view); the ``Router`` takes the synchronous
    :class:`PostgresJournal`. It is not a :class:`~payfallback.journal.Journal`, whose
    methods are synchronous, but every method has the same arguments, answers and errors.

    Nothing is connected until :meth:`open` (or ``async with``), since connecting needs a
    running loop::

        async with AsyncPostgresJournal.from_url("postgresql://pay@db/shop") as journal:
            owed = await journal.refunds_owed()
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = _DEFAULT_SCHEMA,
        pool_size: int = _DEFAULT_POOL_SIZE,
        clock: Clock | None = None,
    ) -> None:
        self._settings = _Settings(conninfo, schema, pool_size, clock)
        self._tx = _Transactions(self._settings.clock)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None

    async def _migrate(
        self, conn: psycopg.AsyncConnection[Any], migrations: Sequence[Migration]
    ) -> None:
        settings = self._settings
        current = await arun(conn, current_version(), atomic=False)
        if current > len(migrations):
            raise too_new(settings.where, current, len(migrations))
        while current != len(migrations):
            step = migrate_step(
                schema=settings.schema,
                applied_at=settings.clock.now(),
                where=settings.where,
                migrations=migrations,
            )
            version: int | None = await arun(conn, step)
            current = version or 0

    async def _setup(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(*_session_setup(self._settings.schema))

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> Self:
        """The journal a URL names (see :meth:`PostgresJournal.from_url`), not yet open."""
        conninfo, schema, pool_size = _split_url(url)
        return cls(
            conninfo,
            schema=schema if schema is not None else _DEFAULT_SCHEMA,
            pool_size=pool_size if pool_size is not None else _DEFAULT_POOL_SIZE,
            clock=clock,
        )

    async def open(self) -> Self:
        """Apply pending migrations and open the pool; calling it again does nothing."""
        if self._pool is not None:
            return self
        settings = self._settings
        try:
            async with await psycopg.AsyncConnection.connect(
                settings.conninfo, **settings.kwargs
            ) as conn:
                await self._setup(conn)
                await self._migrate(conn, MIGRATIONS)
        except psycopg.Error as exc:
            raise settings.cannot_connect(exc) from exc
        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            settings.conninfo,
            kwargs=settings.kwargs,
            min_size=1,
            max_size=settings.pool_size,
            open=False,
            configure=self._setup,
            check=AsyncConnectionPool.check_connection,
            name=f"payfallback-journal-{settings.schema}",
            timeout=_POOL_TIMEOUT_S,
        )
        try:
            await pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            await pool.close()
            raise settings.cannot_connect(exc) from exc
        self._pool = pool
        return self

    @property
    def schema(self) -> str:
        return self._settings.schema

    @property
    def pool_size(self) -> int:
        return self._settings.pool_size

    def __repr__(self) -> str:
        return self._settings.repr(type(self).__name__)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pool; calling it again (or before opening) does nothing."""
        if self._pool is not None:
            await self._pool.close()

    async def _run(self, flow: Flow[T], *, atomic: bool = True) -> T:
        if self._pool is None:
            flow.close()
            raise ConfigurationError(
                f"journal {self._settings.where} is not open: await journal.open() or use "
                "`async with` first"
            )
        async with self._pool.connection() as conn:
            return await arun(conn, flow, atomic=atomic)

    async def _read(self, flow: Flow[T]) -> T:
        """Run a flow of one statement: atomic by itself, no ``BEGIN``/``COMMIT`` needed."""
        return await self._run(flow, atomic=False)

    async def begin_attempt(
        self,
        order: Order,
        *,
        provider: str,
        method: Method,
        operation: str,
        idempotency_key: str,
        lease_seconds: float,
        settle_first: bool = False,
    ) -> Attempt:
        return await self._run(
            self._tx.begin_attempt(
                order,
                provider=provider,
                method=method,
                operation=operation,
                idempotency_key=idempotency_key,
                lease_seconds=lease_seconds,
                settle_first=settle_first,
            )
        )

    async def update_attempt(
        self,
        attempt_id: str,
        *,
        state: AttemptState,
        provider_txn_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        sent: bool = False,
        recheck_until: datetime | None = None,
    ) -> Attempt:
        return await self._run(
            self._tx.update_attempt(
                attempt_id,
                state=state,
                provider_txn_id=provider_txn_id,
                error_code=error_code,
                error_message=error_message,
                sent=sent,
                recheck_until=recheck_until,
            )
        )

    async def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        return await self._run(self._tx.record_success(attempt_id, payment))

    async def renew_lease(self, attempt_id: str, lease_seconds: float) -> bool:
        return await self._run(self._tx.renew_lease(attempt_id, lease_seconds))

    async def get_order(self, order_id: str) -> Order | None:
        return await self._read(self._tx.get_order(order_id))

    async def get_attempt(self, attempt_id: str) -> Attempt | None:
        return await self._read(self._tx.get_attempt(attempt_id))

    async def attempts_for_order(self, order_id: str) -> Sequence[Attempt]:
        return await self._read(self._tx.attempts_for_order(order_id))

    async def get_payment(self, payment_id: str) -> Payment | None:
        return await self._read(self._tx.get_payment(payment_id))

    async def payment_for_order(self, order_id: str) -> Payment | None:
        return await self._read(self._tx.payment_for_order(order_id))

    async def save_checkout(self, session: CheckoutSession) -> None:
        await self._run(self._tx.save_checkout(session))

    async def get_checkout(self, session_id: str) -> CheckoutSession | None:
        return await self._read(self._tx.get_checkout(session_id))

    async def checkout_state(self, session_id: str) -> CheckoutState | None:
        return await self._run(self._tx.checkout_state(session_id))

    async def add_refund(self, refund: Refund) -> Refund:
        return await self._run(self._tx.add_refund(refund))

    async def update_refund(
        self,
        refund_id: str,
        *,
        state: RefundState,
        error_code: str | None = None,
        idempotency_key: str | None = None,
        receipt: RefundReceipt | None = None,
        provider_answer: Mapping[str, Any] | None = None,
    ) -> Refund:
        return await self._run(
            self._tx.update_refund(
                refund_id,
                state=state,
                error_code=error_code,
                idempotency_key=idempotency_key,
                receipt=receipt,
                provider_answer=provider_answer,
            )
        )

    async def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> bool:
        return await self._run(self._tx.renew_refund_lease(refund_id, lease_seconds))

    async def get_refund(self, refund_id: str) -> Refund | None:
        return await self._read(self._tx.get_refund(refund_id))

    async def refund_by_request_key(self, payment_id: str, request_key: str) -> Refund | None:
        return await self._read(self._tx.refund_by_request_key(payment_id, request_key))

    async def refunds_for_order(self, order_id: str) -> Sequence[Refund]:
        return await self._read(self._tx.refunds_for_order(order_id))

    async def refunds_owed(self) -> Sequence[Refund]:
        return await self._read(self._tx.refunds_owed())

    async def payments_between(self, start: datetime, end: datetime) -> Sequence[Payment]:
        return await self._read(self._tx.payments_between(start, end))

    async def refunds_between(self, start: datetime, end: datetime) -> Sequence[Refund]:
        return await self._read(self._tx.refunds_between(start, end))

    async def unresolved_attempts(self) -> Sequence[Attempt]:
        return await self._read(self._tx.unresolved_attempts())

    async def attempts_to_recheck(self) -> Sequence[Attempt]:
        return await self._read(self._tx.attempts_to_recheck())

    async def in_flight_attempts(self) -> Sequence[Attempt]:
        return await self._read(self._tx.in_flight_attempts())

    async def counts(self) -> JournalCounts:
        return await self._read(self._tx.counts())
