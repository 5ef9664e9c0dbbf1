"""The journal's transactions, written once for SQLite and PostgreSQL.

Every :class:`~payfallback.journal.Journal` method is one flow of :class:`Transactions` (see
:mod:`payfallback.journal._flow`): its SQL and every check, with no I/O of its own. A
:class:`Dialect` says what the flows must know about the database beneath:

* how times go in and come out (PostgreSQL: ``timestamptz`` and aware datetimes; SQLite:
  fixed-width ISO-8601 UTC text);
* whether a transaction locks the rows it checks (PostgreSQL, ``SELECT … FOR UPDATE``, order
  row first) or the database admits one writer at a time anyway (SQLite, ``BEGIN
  IMMEDIATE``): a lock-only statement is skipped there, and a driver drops ``FOR UPDATE``;
* whether a write hands back the row it wrote (``RETURNING``) or the row is read back.

Statements are PostgreSQL's (``%s``, ``%(name)s``, ``::json`` casts, ``row_no``); the SQLite
driver translates each once. On the charge's path nothing is read that a constraint can
check: ``begin_attempt`` of a new order writes the order and its attempt, ``record_success``
writes the payment only where it fits its attempt and order (``INSERT … SELECT … WHERE``)
and the attempt's state; why a write was refused is worked out only then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payfallback._clock import Clock
from payfallback.errors import InvalidRequest
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
    check_new_payment,
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
    utc,
)
from payfallback.journal._flow import Conflict, Flow, Params, Query, Row, one, rows
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

__all__ = ["Dialect", "Transactions"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What the flows need to know about the database they run on."""

    #: A time as a statement's parameter.
    ts: Callable[[datetime], Any]
    #: A time as a row holds it.
    dt: Callable[[Any], datetime]
    #: Checked rows are locked first (``FOR UPDATE``); else writers are serialised already.
    row_locks: bool
    #: A write can return the row it wrote (``RETURNING``); else it is read back.
    returning: bool
    #: Orders payments approved at the same instant (SQLite: as written).
    payments_tiebreak: str


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


_INSERT_ORDER = (
    "INSERT INTO orders (order_id, amount, currency, order_json, created_at)"
    " VALUES (%s, %s, %s, %s::json, %s) ON CONFLICT (order_id) DO NOTHING"
)
# A key another attempt took (of any order: orders do not lock each other) is refused by
# the unique constraint, with nothing written.
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (attempt_id, order_id, seq, provider, method, operation,"
    " idempotency_key, state, lease_until, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s, %s)"
    " ON CONFLICT (provider, idempotency_key) DO NOTHING"
)
# The payment, only if it fits its attempt and the order's journaled amount; the unique
# constraints decide the rest (one payment per order, per payment id, per provider
# transaction). The order's row is locked first, as every write to an order's rows does,
# and DO NOTHING waits for a racing order's transaction and keeps this one alive.
_INSERT_PAYMENT = (
    "INSERT INTO payments (payment_id, order_id, attempt_id, provider, method,"
    " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
    " created_at, updated_at, receipt_json, answer_json)"
    " SELECT %s, a.order_id, a.attempt_id, a.provider, %s, %s, o.amount, 0, o.currency,"
    " 'paid', %s, %s, %s, %s, %s, %s"
    " FROM attempts a JOIN orders o ON o.order_id = a.order_id"
    " WHERE a.attempt_id = %s AND a.order_id = %s AND a.provider = %s"
    " AND o.amount = %s AND o.currency = %s"
    " FOR UPDATE OF o ON CONFLICT DO NOTHING"
)
_SUCCEEDED = (
    "UPDATE attempts SET state = 'succeeded', provider_txn_id = %s,"
    " recheck_until = NULL, updated_at = %s WHERE attempt_id = %s"
)
_COLUMNS = {"attempts": _ATTEMPT, "payments": _PAYMENT, "refunds": _REFUND}


#: An attempt a worker may claim (the row being updated): not settled, its lease run out.
_CLAIMABLE = "state NOT IN ('succeeded', 'failed') AND lease_until <= %(now)s"
#: Another attempt of the same order is pending with a live lease (``attempts`` is the row
#: being updated).
_OTHER_LIVE = (
    "EXISTS (SELECT 1 FROM attempts other"
    " WHERE other.order_id = attempts.order_id"
    " AND other.attempt_id <> attempts.attempt_id"
    " AND other.state = 'pending' AND other.lease_until > %(now)s)"
)


class Transactions:
    """The journal's methods as flows: the SQL and every check, with no I/O of their own.

    Each flow is one transaction; the journals only carry them out.
    """

    def __init__(self, clock: Clock, dialect: Dialect) -> None:
        self._clock = clock
        self._ts = dialect.ts
        self._dt = dialect.dt
        self._locks = dialect.row_locks
        self._dialect = dialect

    # -- plumbing -------------------------------------------------------------------------

    def _attempt(self, row: Row) -> Attempt:
        return attempt_from_row(row, self._dt)

    def _payment(self, row: Row) -> Payment:
        return payment_from_row(row, self._dt)

    def _refund(self, row: Row) -> Refund:
        return refund_from_row(row, self._dt)

    def _written(self, statement: str, params: Params, table: str, key: str) -> Flow[Row | None]:
        """Write one row (whose ``key`` column is the last parameter) and the row as
        stored: ``RETURNING`` where the database has it, else read back."""
        if self._dialect.returning:
            return (yield from one(f"{statement} RETURNING {_COLUMNS[table]}", params))
        yield Query(statement, params)
        value = params[-1] if isinstance(params, Sequence) else params[key]
        return (yield from one(f"SELECT {_COLUMNS[table]} FROM {table} WHERE {key} = %s", (value,)))

    def _attempt_row(self, attempt_id: str) -> Flow[Attempt | None]:
        row = yield from one(
            f"SELECT {_ATTEMPT} FROM attempts WHERE attempt_id = %s", (attempt_id,)
        )
        return None if row is None else self._attempt(row)

    def _lock_attempt(self, attempt_id: str) -> Flow[Attempt]:
        """Lock the attempt's order, then read the attempt as the lock holder sees it."""
        return self._attempt((yield from self._lock(attempt_id, _ATTEMPT)))

    def _lock(self, attempt_id: str, columns: str) -> Flow[Row]:
        """:meth:`_lock_attempt`'s row, only ``columns`` of it: for a transaction that
        needs a field or two of the attempt and not the whole of it."""
        if self._locks:
            locked = yield from one(
                "SELECT o.order_id FROM orders o JOIN attempts a ON a.order_id = o.order_id"
                " WHERE a.attempt_id = %s FOR UPDATE OF o",
                (attempt_id,),
            )
            if locked is None:
                raise self._no_attempt(attempt_id)
        # A statement of its own: under READ COMMITTED it sees what the previous lock holder
        # committed, which the locking statement's snapshot may not.
        row = yield from one(f"SELECT {columns} FROM attempts WHERE attempt_id = %s", (attempt_id,))
        if row is None:  # without row locks, the first read of it
            raise self._no_attempt(attempt_id)
        return row

    @staticmethod
    def _no_attempt(attempt_id: str) -> InvalidRequest:
        return InvalidRequest(
            f"no attempt {attempt_id!r} in the journal; attempts are created by begin_attempt",
            attempt_id=attempt_id,
        )

    def _payment_by(self, column: str, value: str) -> Flow[Payment | None]:
        # ``column`` is one of our own literals, never caller input.
        row = yield from one(f"SELECT {_PAYMENT} FROM payments WHERE {column} = %s", (value,))
        return None if row is None else self._payment(row)

    def _refund_row(self, refund_id: str) -> Flow[Refund | None]:
        row = yield from one(f"SELECT {_REFUND} FROM refunds WHERE refund_id = %s", (refund_id,))
        return None if row is None else self._refund(row)

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
        now = utc(self._clock.now(), "now")
        stamp = self._ts(now)
        method = method if type(method) is Method else Method(method)
        # A new order's row is written first so that there is a row to lock; if another
        # transaction is writing the same new order, this waits for it to finish. A row
        # inserted here is locked by this transaction, and a new order has no payment and
        # no attempts: its first attempt needs no reads.
        inserted = yield Query(
            _INSERT_ORDER,
            (
                order.order_id,
                order.amount.amount,
                order.amount.currency,
                order.model_dump_json(),
                stamp,
            ),
        )
        seq = 1 if inserted.rowcount else (yield from self._next_seq(order, stamp, settle_first))
        attempt_id = f"{order.order_id}_{seq}"
        written = yield Query(
            _INSERT_ATTEMPT,
            (
                attempt_id,
                order.order_id,
                seq,
                provider,
                method.value,
                operation,
                idempotency_key,
                self._ts(now + lease),
                stamp,
                stamp,
            ),
        )
        if not written.rowcount:
            reused = yield from one(
                "SELECT attempt_id FROM attempts WHERE provider = %s AND idempotency_key = %s",
                (provider, idempotency_key),
            )
            assert reused is not None  # the row the insert collided with
            raise key_reused(reused["attempt_id"], provider)
        # What was written, as written: nothing is read back.
        return Attempt(
            attempt_id=attempt_id,
            order_id=order.order_id,
            seq=seq,
            provider=provider,
            method=method,
            operation=operation,
            idempotency_key=idempotency_key,
            state=AttemptState.PENDING,
            created_at=now,
            updated_at=now,
            lease_until=now + lease,
        )

    def _next_seq(self, order: Order, stamp: Any, settle_first: bool) -> Flow[int]:
        """An order journaled before: lock it, check it may take another attempt, and
        number the attempt."""
        row = yield from one(
            "SELECT order_json::text AS order_json FROM orders WHERE order_id = %s FOR UPDATE",
            (order.order_id,),
        )
        assert row is not None  # the insert that found it there; orders are never deleted
        check_same_order(order, Order.model_validate_json(row["order_json"], strict=False))
        payment = yield from self._payment_by("order_id", order.order_id)
        if payment is not None:
            raise OrderAlreadyPaid(payment)
        yield from self._refuse_if_in_flight(order.order_id, stamp)
        if settle_first:
            open_ = yield from rows(OPEN_ATTEMPTS_SQL, {"order_id": order.order_id, "now": stamp})
            if open_:
                raise AttemptsOpen(order.order_id, [r["attempt_id"] for r in open_])
        seq_row = yield from one(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM attempts WHERE order_id = %s",
            (order.order_id,),
        )
        assert seq_row is not None  # an aggregate always yields a row
        return int(seq_row["seq"])

    @staticmethod
    def _refuse_if_in_flight(order_id: str, now: Any, but: str | None = None) -> Flow[None]:
        """``AttemptInFlight`` if an attempt of the order (other than ``but``) is pending
        with a live lease at ``now`` (as the database keeps time): one order, one request
        in flight."""
        statement = (
            "SELECT attempt_id FROM attempts WHERE order_id = %s AND state = 'pending'"
            " AND lease_until > %s"
        )
        params: tuple[Any, ...] = (order_id, now)
        if but is not None:
            statement += " AND attempt_id <> %s"
            params += (but,)
        live = yield from one(statement + " ORDER BY seq LIMIT 1", params)
        if live is not None:
            raise AttemptInFlight(order_id, live["attempt_id"])

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
        now = self._ts(self._clock.now())
        current = yield from self._lock_attempt(attempt_id)
        if current.state is AttemptState.SUCCEEDED:
            raise InvalidRequest(
                f"attempt {attempt_id} is the payment of order {current.order_id}; it "
                f"cannot move to {state.value} (refund the payment instead)",
                attempt_id=attempt_id,
            )
        if state is AttemptState.PENDING and current.state is not AttemptState.PENDING:
            yield from self._refuse_if_in_flight(current.order_id, now, attempt_id)
        # A lease guards work in flight; once an attempt leaves PENDING that work is over,
        # so its lease ends with it (a redirected checkout must be claimable the moment
        # the customer comes back).
        stored = yield from self._written(
            "UPDATE attempts SET state = %(state)s,"
            " provider_txn_id = COALESCE(%(txn)s, provider_txn_id),"
            " error_code = COALESCE(%(code)s, error_code),"
            " error_message = COALESCE(%(message)s, error_message),"
            " lease_until = CASE WHEN %(pending)s THEN lease_until ELSE %(now)s END,"
            " sent_at = CASE WHEN %(sent)s THEN %(now)s ELSE sent_at END,"
            " recheck_until = CASE WHEN %(failed)s"
            "   THEN COALESCE(%(recheck)s, recheck_until) END,"
            " updated_at = %(now)s WHERE attempt_id = %(attempt_id)s",
            {
                "state": state.value,
                "txn": provider_txn_id,
                "code": error_code,
                "message": error_message,
                "pending": state is AttemptState.PENDING,
                "sent": bool(sent),
                "failed": state is AttemptState.FAILED,
                "recheck": None if recheck is None else self._ts(recheck),
                "now": now,
                "attempt_id": attempt_id,
            },
            "attempts",
            "attempt_id",
        )
        assert stored is not None
        return self._attempt(stored)

    def record_success(self, attempt_id: str, payment: Payment) -> Flow[Payment]:
        try:
            check_new_payment(attempt_id, payment)
        except InvalidRequest:
            # Say the first thing wrong, as check_payment_fits orders them.
            check_payment_fits((yield from self._lock_attempt(attempt_id)), payment)
            raise
        stamp = self._ts(self._clock.now())
        written = yield Query(
            _INSERT_PAYMENT,
            (
                payment.payment_id,
                payment.method.value,
                payment.provider_txn_id,
                self._ts(payment.approved_at),
                payment.attempts,
                stamp,
                stamp,
                receipt_json(payment.receipt),
                answer_json(payment.provider_answer),
                attempt_id,
                payment.order_id,
                payment.provider,
                payment.amount.amount,
                payment.amount.currency,
            ),
        )
        if not written.rowcount:
            return (yield from self._payment_refused(attempt_id, payment, stamp))
        yield Query(_SUCCEEDED, (payment.provider_txn_id, stamp, attempt_id))
        # As the journal keeps it: the approval time in UTC; nothing is read back.
        if payment.approved_at.tzinfo is UTC:
            return payment
        return payment.model_copy(update={"approved_at": utc(payment.approved_at, "approved_at")})

    def _payment_refused(self, attempt_id: str, payment: Payment, stamp: Any) -> Flow[Payment]:
        """Why a payment was not written: it does not fit its attempt or order (a typed
        error), or the order's own payment (returned, this attempt superseded unless it is
        that payment's), or a typed error."""
        attempt = yield from self._lock_attempt(attempt_id)
        check_payment_fits(attempt, payment)
        # An order's amount never changes (a trigger).
        order = yield from one(
            "SELECT amount, currency FROM orders WHERE order_id = %s", (attempt.order_id,)
        )
        assert order is not None  # attempts reference their order
        check_payment_amount(
            payment, attempt, Money(amount=order["amount"], currency=order["currency"])
        )
        existing = yield from self._payment_by("order_id", attempt.order_id)
        if existing is not None:
            if existing.attempt_id != attempt.attempt_id:
                yield Query(
                    "UPDATE attempts SET state = 'superseded',"
                    " provider_txn_id = COALESCE(%s, provider_txn_id),"
                    " recheck_until = NULL, updated_at = %s"
                    " WHERE attempt_id = %s",
                    (payment.provider_txn_id, stamp, attempt.attempt_id),
                )
            return existing
        clash = yield from self._payment_by("payment_id", payment.payment_id)
        if clash is not None:
            owner = f"order {clash.order_id}"
            raise payment_id_taken(payment.payment_id, owner, attempt.attempt_id)
        # This order has no payment (its row is locked), so the payment with this
        # transaction is another order's: the same charge cannot pay both.
        taken = yield from one(
            f"SELECT {_PAYMENT} FROM payments WHERE provider = %s AND provider_txn_id = %s",
            (payment.provider, payment.provider_txn_id),
        )
        assert taken is not None  # the only unique constraint left; payments stay
        raise TxnAlreadyRecorded(self._payment(taken), attempt_id=attempt.attempt_id)

    def renew_lease(
        self, attempt_id: str, lease_seconds: float, *, pending: bool = False
    ) -> Flow[bool]:
        lease = lease_duration(lease_seconds)
        now = self._clock.now()
        locked = yield from self._lock(attempt_id, "order_id")
        params = {"until": self._ts(now + lease), "id": attempt_id, "now": self._ts(now)}
        if not pending:
            # A stale PENDING attempt is not revived while another attempt of the same
            # order is live: one order, one request in flight.
            result = yield Query(
                "UPDATE attempts SET lease_until = %(until)s WHERE attempt_id = %(id)s"
                f" AND {_CLAIMABLE} AND NOT (state = 'pending' AND {_OTHER_LIVE})",
                params,
            )
            return result.rowcount == 1
        # Claimed for a request about to be sent: PENDING in the same write, as
        # update_attempt(state=PENDING) would leave it (no recheck, the rest kept).
        result = yield Query(
            "UPDATE attempts SET state = 'pending', lease_until = %(until)s,"
            " recheck_until = NULL, updated_at = %(now)s WHERE attempt_id = %(id)s"
            f" AND {_CLAIMABLE} AND NOT {_OTHER_LIVE}",
            params,
        )
        if result.rowcount == 1:
            return True
        # Not claimed: say why when it is another attempt in flight (and this one could
        # have been claimed but for it); a held or settled attempt is simply not claimed.
        live = yield from one(
            "SELECT other.attempt_id FROM attempts me JOIN attempts other"
            " ON other.order_id = me.order_id AND other.attempt_id <> me.attempt_id"
            " WHERE me.attempt_id = %(id)s AND me.state NOT IN ('succeeded', 'failed')"
            " AND me.lease_until <= %(now)s"
            " AND other.state = 'pending' AND other.lease_until > %(now)s"
            " ORDER BY other.seq LIMIT 1",
            params,
        )
        if live is not None:
            raise AttemptInFlight(locked["order_id"], live["attempt_id"])
        return False

    @staticmethod
    def get_order(order_id: str) -> Flow[Order | None]:
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
        return [self._attempt(row) for row in found]

    def get_payment(self, payment_id: str) -> Flow[Payment | None]:
        return (yield from self._payment_by("payment_id", payment_id))

    def payment_for_order(self, order_id: str) -> Flow[Payment | None]:
        return (yield from self._payment_by("order_id", order_id))

    def unresolved_attempts(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts a WHERE {_UNRESOLVED_WHERE}"
            " ORDER BY a.created_at, a.row_no",
            {"now": self._ts(self._clock.now())},
        )
        return [self._attempt(row) for row in found]

    def attempts_to_recheck(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts WHERE state = 'failed' AND recheck_until > %s"
            " ORDER BY created_at, row_no",
            (self._ts(self._clock.now()),),
        )
        return [self._attempt(row) for row in found]

    def in_flight_attempts(self) -> Flow[Sequence[Attempt]]:
        found = yield from rows(
            f"SELECT {_ATTEMPT} FROM attempts a WHERE {_IN_FLIGHT_WHERE}"
            " ORDER BY a.created_at, a.row_no",
            {"now": self._ts(self._clock.now())},
        )
        return [self._attempt(row) for row in found]

    # -- checkouts ------------------------------------------------------------------------

    def save_checkout(self, session: CheckoutSession) -> Flow[None]:
        now = self._ts(self._clock.now())
        attempt_id = session.session_id
        attempt = yield from self._lock(attempt_id, "order_id, provider, state")
        if attempt["order_id"] != session.order_id or attempt["provider"] != session.provider:
            raise InvalidRequest(
                f"checkout {attempt_id} is for order {session.order_id} at "
                f"{session.provider}, but its attempt is for order {attempt['order_id']} at "
                f"{attempt['provider']}",
                attempt_id=attempt_id,
            )
        if attempt["state"] not in (AttemptState.PENDING.value, AttemptState.REDIRECTED.value):
            raise InvalidRequest(
                f"attempt {attempt_id} is {attempt['state']}; a checkout is "
                "saved while its attempt is pending (or redirected, to replace it)",
                attempt_id=attempt_id,
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
            (session.provider_txn_id, now, now, attempt_id),
        )

    @staticmethod
    def get_checkout(session_id: str) -> Flow[CheckoutSession | None]:
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

    def _refund_by_key(self, payment_id: str, request_key: str) -> Flow[Refund | None]:
        row = yield from one(
            f"SELECT {_REFUND} FROM refunds WHERE payment_id = %s AND request_key = %s",
            (payment_id, request_key),
        )
        return None if row is None else self._refund(row)

    def add_refund(self, refund: Refund) -> Flow[Refund]:
        check_new_refund(refund)
        existing = yield from self._same_refund(refund)
        if existing is not None:
            return existing
        attempt = yield from self._lock_attempt(refund.attempt_id)
        if self._locks:
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
            stored = yield from self._written(
                "INSERT INTO refunds (payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " idempotency_key, state, error_code, tries, lease_until, created_at,"
                " updated_at, tax_free_amount, request_key, request_fingerprint, refund_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'owed', %s, 0, NULL,"
                " %s, %s, %s, %s, %s, %s)"
                # A refund naming the payment under another order's lock (a compensation
                # may) could take the key meanwhile: the unique index decides, and DO
                # NOTHING keeps this transaction alive to return that refund.
                " ON CONFLICT (payment_id, request_key) WHERE request_key IS NOT NULL"
                " DO NOTHING",
                (
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
                    self._ts(refund.created_at),
                    self._ts(refund.updated_at),
                    refund.tax_free_amount,
                    refund.request_key,
                    refund.request_fingerprint,
                    refund.refund_id,
                ),
                "refunds",
                "refund_id",
            )
        except Conflict as exc:
            # A refund of another order took the key after the check above.
            if exc.name == "refunds_key_once":
                raise self._refund_key_reused("of another order", refund.refund_id) from exc
            raise
        if stored is None:
            assert refund.payment_id is not None
            assert refund.request_key is not None
            same = yield from self._refund_by_key(refund.payment_id, refund.request_key)
            assert same is not None  # the conflicting row is committed; refunds stay
            return same
        return self._refund(stored)

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
        now = self._ts(self._clock.now())
        if self._locks:
            found = yield from one(
                "SELECT order_id FROM refunds WHERE refund_id = %s", (refund_id,)
            )
            if found is None:
                raise self._no_refund(refund_id)
            yield Query("SELECT 1 FROM orders WHERE order_id = %s FOR UPDATE", (found["order_id"],))
        current = yield from self._refund_row(refund_id)
        if current is None:  # without row locks, the first read of it
            raise self._no_refund(refund_id)
        if current.state is not RefundState.OWED and state is not current.state:
            raise InvalidRequest(
                f"refund {refund_id} already {current.state.value}; it cannot become "
                f"{state.value} (journal a new refund if money must still move)"
            )
        # Each try ends the lease that claimed it, so the next recover() can retry.
        stored = yield from self._written(
            "UPDATE refunds SET state = %s, error_code = COALESCE(%s, error_code),"
            " idempotency_key = COALESCE(%s, idempotency_key),"
            " receipt_json = COALESCE(%s, receipt_json), answer_json = COALESCE(%s, answer_json),"
            " tries = tries + 1, lease_until = NULL, updated_at = %s WHERE refund_id = %s",
            (
                state.value,
                error_code,
                idempotency_key,
                receipt_json(receipt),
                answer_json(provider_answer),
                now,
                refund_id,
            ),
            "refunds",
            "refund_id",
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
        return self._refund(stored)

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> Flow[bool]:
        lease = lease_duration(lease_seconds)
        now = self._clock.now()
        # One UPDATE: a second claimer waits for the first one's row lock, then re-checks
        # the lease on the row the first one committed and finds it live.
        result = yield Query(
            "UPDATE refunds SET lease_until = %s WHERE refund_id = %s AND state = 'owed'"
            " AND (lease_until IS NULL OR lease_until <= %s)",
            (self._ts(now + lease), refund_id, self._ts(now)),
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
        return [self._refund(row) for row in found]

    def refunds_owed(self) -> Flow[Sequence[Refund]]:
        found = yield from rows(
            f"SELECT {_REFUND} FROM refunds WHERE state = 'owed' ORDER BY created_at, row_no"
        )
        return [self._refund(row) for row in found]

    def payments_between(self, start: datetime, end: datetime) -> Flow[Sequence[Payment]]:
        found = yield from rows(
            f"SELECT {_PAYMENT} FROM payments WHERE approved_at >= %s AND approved_at < %s"
            f" ORDER BY approved_at, {self._dialect.payments_tiebreak}",
            (self._ts(start), self._ts(end)),
        )
        return [self._payment(row) for row in found]

    def refunds_between(self, start: datetime, end: datetime) -> Flow[Sequence[Refund]]:
        found = yield from rows(
            f"SELECT {_REFUND} FROM refunds WHERE state = 'succeeded'"
            " AND updated_at >= %s AND updated_at < %s ORDER BY updated_at, row_no",
            (self._ts(start), self._ts(end)),
        )
        return [self._refund(row) for row in found]

    def counts(self) -> Flow[JournalCounts]:
        # One statement, so one snapshot: the figures agree with each other. SQLite's SUM
        # fails past 2**63; amounts are below 2**53: summed as high and low 32 bits apart,
        # the total stays exact up to two billion owed refunds.
        row = yield from one(
            "SELECT (SELECT COUNT(*) FROM orders) AS orders,"
            " (SELECT COUNT(*) FROM payments) AS payments,"
            f" (SELECT COUNT(*) FROM attempts a WHERE {_UNRESOLVED_WHERE}) AS unresolved,"
            " (SELECT COUNT(*) FROM refunds WHERE state = 'owed') AS owed,"
            " (SELECT COALESCE(SUM(amount >> 32), 0) FROM refunds WHERE state = 'owed')"
            " AS owed_high,"
            " (SELECT COALESCE(SUM(amount & 4294967295), 0) FROM refunds WHERE state = 'owed')"
            " AS owed_low",
            {"now": self._ts(self._clock.now())},
        )
        assert row is not None
        return JournalCounts(
            orders=int(row["orders"]),
            payments=int(row["payments"]),
            unresolved_attempts=int(row["unresolved"]),
            refunds_owed=int(row["owed"]),
            refunds_owed_amount=(int(row["owed_high"]) << 32) + int(row["owed_low"]),
        )
