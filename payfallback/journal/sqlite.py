"""The embedded journal: one SQLite file, stdlib ``sqlite3`` only.

The file is opened in WAL mode with ``synchronous=FULL``, so a method that returned has
its transaction on disk and survives a power cut, not only a process crash. With
``durable=False`` it uses ``synchronous=NORMAL``: still consistent and still safe against a
process crash, but the last few commits may be lost if the machine itself goes down
(acceptable for the simulator and tests, not for money).

Every method is one transaction; writes start with ``BEGIN IMMEDIATE`` so the check and
the write it guards (say, "no live pending attempt" and the insert) cannot be split by
another writer, whether that is another thread or another process on the same file.
The schema and what the database enforces by itself are described in
:mod:`payfallback.journal._migrations`.

Unknown ids passed to a method that changes a row (``update_attempt``, ``record_success``,
``renew_lease``, ``save_checkout``, ``update_refund``, ``renew_refund_lease``) and a row
that does not fit its parents (a payment for another order, a refund of another payment)
raise ``InvalidRequest`` saying which id and what to fix; ``get_*`` return ``None``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

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
    sqlite_params,
    utc,
)
from payfallback.journal._migrations import migrate
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

__all__ = ["SQLiteJournal"]

_URL_PREFIX = "sqlite:///"
_MEMORY = ":memory:"
#: How long a write waits for another process holding the file's write lock. Journal
#: transactions last milliseconds, so reaching this means something is wrong.
_BUSY_TIMEOUT_S = 10.0
_BUSY_PRAGMA = f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}"
T = TypeVar("T")
#: Attempts with nothing left to do: recovery never claims them.
_SETTLED_ATTEMPTS = (AttemptState.SUCCEEDED, AttemptState.FAILED)

_OPEN_ATTEMPTS = sqlite_params(OPEN_ATTEMPTS_SQL)

# Shared by unresolved_attempts() and counts() so the two can never disagree.
_UNRESOLVED_WHERE = """
    a.state = 'unknown'
    OR (a.state = 'pending' AND a.lease_until <= :now)
    OR (a.state = 'superseded' AND NOT EXISTS (
        SELECT 1 FROM refunds r
        WHERE r.attempt_id = a.attempt_id AND r.kind = 'compensation'
    ))
"""

# Pending attempts with a live lease that may be moving money: a ``ready`` attempt moves
# none while it starts its checkout, but once the checkout is saved, going back to
# ``pending`` means its approval is being sent.
_IN_FLIGHT_WHERE = """
    a.state = 'pending' AND a.lease_until > :now
    AND (a.operation <> 'ready'
         OR EXISTS (SELECT 1 FROM checkouts c WHERE c.session_id = a.attempt_id))
"""


#: How often the background thread checkpoints a journal file, by default.
CHECKPOINT_INTERVAL_S = 1.0
#: How far (in 4 KiB pages) the log may grow before a commit checkpoints it itself: at
#: about 16 pages a charge, some 600 charges between two background checkpoints.
WAL_BOUND_PAGES = 10_000


def _passive_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(row[1]), int(row[2])


class _Checkpointer:
    """A daemon thread with its own connection that checkpoints the journal's log every
    ``interval`` seconds, so that a payment's commit never does (an fsync of the database
    file, milliseconds, once every few dozen charges otherwise). A ``PASSIVE`` checkpoint
    waits for no one: it copies what no reader still needs and leaves the rest for the
    next round. A failed round is tried again at the next; commits checkpoint for
    themselves past ``WAL_BOUND_PAGES``, so the log stays bounded even then."""

    def __init__(self, path: str, interval: float) -> None:
        if not interval > 0:
            raise ConfigurationError(f"checkpoint_interval must be positive, got {interval!r}")
        self._stop = threading.Event()
        self._conn = sqlite3.connect(
            path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self.rounds = 0
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name=f"payfallback-checkpoint:{path}", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        try:
            while not self._stop.wait(interval):
                with contextlib.suppress(sqlite3.Error):
                    _passive_checkpoint(self._conn)
                    self.rounds += 1
        finally:
            self._conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text: sorts and compares in SQL exactly as the instants do."""
    # Naive datetimes are taken as UTC, the only zone the journal stores.
    # isoformat is C and pads the year; with microseconds always shown, the text is
    # YYYY-MM-DDTHH:MM:SS.ffffff+00:00, the zone written "Z".
    return utc(moment, "time").isoformat(timespec="microseconds")[:-6] + "Z"


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _attempt(row: sqlite3.Row) -> Attempt:
    return attempt_from_row(row, _dt)


def _payment(row: sqlite3.Row) -> Payment:
    return payment_from_row(row, _dt)


def _refund(row: sqlite3.Row) -> Refund:
    return refund_from_row(row, _dt)


class _WouldWait(Exception):
    """``SQLITE_BUSY`` at the start of a :meth:`SQLiteJournal.run_batch` on the event loop."""


def _begin_without_waiting(conn: sqlite3.Connection, begin: str) -> None:
    """``begin`` with no busy timeout: :class:`_WouldWait` if another process writes."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute(begin)
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF == sqlite3.SQLITE_BUSY:
            raise _WouldWait from exc
        raise
    finally:
        conn.execute(_BUSY_PRAGMA)


class SQLiteJournal:
    """A :class:`~payfallback.journal.Journal` in one SQLite file (or ``":memory:"``).

    Safe to share between threads, which is how the async ``Router`` uses it (each call in
    ``asyncio.to_thread``). It keeps *one* connection, opened with
    ``check_same_thread=False`` and serialised by a lock held for exactly one transaction,
    never across anything else: SQLite admits one writer at a time anyway, so a connection
    per thread would buy only ``SQLITE_BUSY`` waits between our own threads, and it would
    give each thread its own private database for ``":memory:"``. Several processes on the
    same file are serialised by SQLite's file lock (``BEGIN IMMEDIATE`` plus
    ``busy_timeout``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "payfallback.sqlite3",
        *,
        durable: bool = True,
        clock: Clock | None = None,
        checkpoint_interval: float | None = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._path = os.fspath(path)
        self._durable = durable
        self._checkpointer: _Checkpointer | None = None
        self._clock: Clock = clock if clock is not None else SystemClock()
        # Reentrant: run_batch holds it across the calls it runs, whose transactions take
        # it again on the same thread.
        self._lock = threading.RLock()
        #: Set by run_batch (under the lock): the calls' transactions are its savepoints.
        self._in_batch = False
        # isolation_level=None: the sqlite3 module opens no transactions of its own; every
        # method says BEGIN/COMMIT itself, so each is exactly one transaction.
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(
                f"cannot open journal {self._path}: {exc}; check that its directory exists "
                "and is writable"
            ) from exc
        try:
            conn.row_factory = sqlite3.Row
            self._configure(conn)
            migrate(conn, applied_at=_ts(self._clock.now()), where=self._path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if checkpoint_interval is not None and self._path not in ("", _MEMORY):
            self._checkpointer = _Checkpointer(self._path, checkpoint_interval)

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.execute(_BUSY_PRAGMA)
        mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal" and self._path not in ("", _MEMORY):
            raise ConfigurationError(
                f"journal {self._path}: SQLite could not switch the file to WAL mode (it "
                f"stays in {mode!r}); put the journal on a local disk, not a network share"
            )
        # In WAL mode FULL syncs the log on every commit (durable across power loss);
        # NORMAL syncs only at checkpoints (durable across a process crash).
        conn.execute(f"PRAGMA synchronous = {'FULL' if self._durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        # Checkpoints are a background thread's work (see _Checkpointer): a payment's commit
        # copies the log back into the database itself only if that thread has fallen
        # WAL_BOUND_PAGES behind, which also bounds the log.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BOUND_PAGES}")

    @classmethod
    def from_url(cls, url: str, *, durable: bool = True, clock: Clock | None = None) -> Self:
        """Open the journal a URL names.

        ``sqlite:///relative/path.sqlite3`` (relative to the working directory),
        ``sqlite:////absolute/path.sqlite3`` (note the fourth slash) or
        ``sqlite:///:memory:``.
        """
        path = url[len(_URL_PREFIX) :] if url.startswith(_URL_PREFIX) else ""
        if not path or "?" in path:
            raise ConfigurationError(
                f"not a SQLite journal URL: {url!r}; use sqlite:///relative/path.sqlite3, "
                "sqlite:////absolute/path.sqlite3 or sqlite:///:memory:"
            )
        return cls(path, durable=durable, clock=clock)

    @property
    def path(self) -> str:
        return self._path

    @property
    def durable(self) -> bool:
        return self._durable

    def __repr__(self) -> str:
        return f"SQLiteJournal(path={self._path!r}, durable={self._durable})"

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
        """Close the connection; calling it again does nothing."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._conn.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy the write-ahead log back into the database now, without waiting for
        readers or writers (a ``PASSIVE`` checkpoint); the log's frames and how many of them
        are in the database. The background thread does this every
        ``checkpoint_interval`` seconds."""
        with self._lock:
            return _passive_checkpoint(self._conn)

    # -- plumbing -------------------------------------------------------------------------

    def run_batch(
        self, calls: Sequence[Callable[[Self], Any]], *, wait: bool = False
    ) -> list[tuple[bool, Any]] | None:
        """Run ``calls`` (each ``call(self)``) in one transaction with one commit: a group
        commit. Each call runs in a savepoint of its own, so one that raises is undone
        alone and the others are kept. Returns, after the commit, ``(True, result)`` or
        ``(False, the exception)`` for each call in order; if the commit itself fails,
        every call gets that failure (nothing was written).

        The :class:`~payfallback.AsyncRouter` hands over every journal call its payments
        make in one turn of the event loop, so at tens of payments in flight a commit (and
        with ``durable=True`` its fsync) is shared by many. ``wait=False`` is for the event
        loop: nothing is run, and ``None`` is returned, if it could mean waiting —

        * with ``durable=True`` (FULL): a commit waits for the disk (the Router runs such
          a batch in a worker thread, ``wait=True``);
        * while another thread of ours is in a transaction (the lock is taken without
          waiting);
        * while another process holds the file's write lock (``BEGIN IMMEDIATE`` runs with
          no busy timeout; ``SQLITE_BUSY`` hands the batch back before anything is
          written).

        What is left to hold the loop is the batch's own CPU time and, rarely, a commit
        that finds the background checkpointer ``WAL_BOUND_PAGES`` behind and copies the
        log itself.
        """
        if not wait and (self._durable or not self._lock.acquire(blocking=False)):
            return None
        if wait:
            self._lock.acquire()
        try:
            conn = self._conn
            try:
                if wait:
                    conn.execute("BEGIN IMMEDIATE")
                else:
                    _begin_without_waiting(conn, "BEGIN IMMEDIATE")
            except _WouldWait:
                return None
            results: list[tuple[bool, Any]] = []
            self._in_batch = True
            try:
                if len(calls) == 1:
                    # Alone, a call needs no savepoint: if it fails, nothing is committed.
                    try:
                        results.append((True, calls[0](self)))
                    except Exception as exc:
                        conn.execute("ROLLBACK")
                        return [(False, exc)]
                    conn.execute("COMMIT")
                    return results
                for call in calls:
                    conn.execute("SAVEPOINT call")
                    try:
                        value = call(self)
                    except Exception as exc:
                        # A statement's error undoes that statement only (SQLite's ABORT);
                        # this undoes the rest of the call's writes.
                        conn.execute("ROLLBACK TO call")
                        conn.execute("RELEASE call")
                        results.append((False, exc))
                    else:
                        conn.execute("RELEASE call")
                        results.append((True, value))
                conn.execute("COMMIT")
            except Exception as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return [(False, exc)] * len(calls)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._in_batch = False
            return results
        finally:
            self._lock.release()

    def run_inline(self, call: Callable[[Self], T]) -> tuple[bool, T | None]:
        """Run ``call(self)`` now, on the calling thread, if that cannot mean waiting:
        ``(True, its result)``; ``(False, None)``, having done nothing, if it could. A
        batch of one (:meth:`run_batch`); what the call raises is raised."""
        results = self.run_batch([call])
        if results is None:
            return False, None
        done, value = results[0]
        if not done:
            raise value
        return True, value

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            if self._in_batch:
                # Inside run_batch: its transaction, and the call's savepoint, hold this.
                yield conn
                return
            # IMMEDIATE takes the write lock up front: a read-then-write transaction that
            # started DEFERRED could find, at its first write, that another process wrote
            # in between, and SQLite would have to fail it rather than wait.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _now(self) -> datetime:
        return self._clock.now()

    @staticmethod
    def _one(db: sqlite3.Connection, sql: str, *params: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(sql, params).fetchone()
        return row

    def _attempt_row(self, db: sqlite3.Connection, attempt_id: str) -> Attempt | None:
        row = self._one(db, "SELECT * FROM attempts WHERE attempt_id = ?", attempt_id)
        return None if row is None else _attempt(row)

    def _require_attempt(self, db: sqlite3.Connection, attempt_id: str) -> Attempt:
        attempt = self._attempt_row(db, attempt_id)
        if attempt is None:
            raise InvalidRequest(
                f"no attempt {attempt_id!r} in the journal; attempts are created by begin_attempt",
                attempt_id=attempt_id,
            )
        return attempt

    def _payment_by(self, db: sqlite3.Connection, column: str, value: str) -> Payment | None:
        # ``column`` is one of our own literals below, never caller input.
        row = self._one(db, f"SELECT * FROM payments WHERE {column} = ?", value)
        return None if row is None else _payment(row)

    def _refund_row(self, db: sqlite3.Connection, refund_id: str) -> Refund | None:
        row = self._one(db, "SELECT * FROM refunds WHERE refund_id = ?", refund_id)
        return None if row is None else _refund(row)

    def _refund_by_key(
        self, db: sqlite3.Connection, payment_id: str, request_key: str
    ) -> Refund | None:
        row = self._one(
            db,
            "SELECT * FROM refunds WHERE payment_id = ? AND request_key = ?",
            payment_id,
            request_key,
        )
        return None if row is None else _refund(row)

    def _require_refund(self, db: sqlite3.Connection, refund_id: str) -> Refund:
        refund = self._refund_row(db, refund_id)
        if refund is None:
            raise InvalidRequest(
                f"no refund {refund_id!r} in the journal; refunds are created by add_refund"
            )
        return refund

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
    ) -> Attempt:
        lease = lease_duration(lease_seconds)
        now = utc(self._now(), "now")
        stamp = _ts(now)
        method = Method(method)
        with self._transaction(write=True) as db:
            new_order = db.execute(
                "INSERT INTO orders (order_id, amount, currency, order_json, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
                (
                    order.order_id,
                    order.amount.amount,
                    order.amount.currency,
                    order.model_dump_json(),
                    stamp,
                ),
            ).rowcount
            # A new order has no payment and no attempts: its first attempt needs no reads.
            seq = 1 if new_order else self._next_seq(db, order, stamp, settle_first)
            attempt_id = f"{order.order_id}_{seq}"
            # A key another attempt took is refused by the unique constraint.
            written = db.execute(
                "INSERT INTO attempts (attempt_id, order_id, seq, provider, method,"
                " operation, idempotency_key, state, lease_until, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
                " ON CONFLICT (provider, idempotency_key) DO NOTHING",
                (
                    attempt_id,
                    order.order_id,
                    seq,
                    provider,
                    method.value,
                    operation,
                    idempotency_key,
                    _ts(now + lease),
                    stamp,
                    stamp,
                ),
            ).rowcount
            if not written:
                reused = self._one(
                    db,
                    "SELECT attempt_id FROM attempts WHERE provider = ? AND idempotency_key = ?",
                    provider,
                    idempotency_key,
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

    def _next_seq(
        self, db: sqlite3.Connection, order: Order, stamp: str, settle_first: bool
    ) -> int:
        """An order journaled before: check it may take another attempt, and its number."""
        row = self._one(db, "SELECT order_json FROM orders WHERE order_id = ?", order.order_id)
        assert row is not None  # the insert that found it there; orders are never deleted
        check_same_order(order, Order.model_validate_json(row[0], strict=False))
        payment = self._payment_by(db, "order_id", order.order_id)
        if payment is not None:
            raise OrderAlreadyPaid(payment)
        live = self._one(
            db,
            "SELECT attempt_id FROM attempts WHERE order_id = ? AND state = 'pending'"
            " AND lease_until > ? ORDER BY seq LIMIT 1",
            order.order_id,
            stamp,
        )
        if live is not None:
            raise AttemptInFlight(order.order_id, live["attempt_id"])
        if settle_first:
            open_ = db.execute(
                _OPEN_ATTEMPTS, {"order_id": order.order_id, "now": stamp}
            ).fetchall()
            if open_:
                raise AttemptsOpen(order.order_id, [r[0] for r in open_])
        seq_row = self._one(
            db, "SELECT COALESCE(MAX(seq), 0) + 1 FROM attempts WHERE order_id = ?", order.order_id
        )
        assert seq_row is not None  # an aggregate always yields a row
        return int(seq_row[0])

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

        ``SUCCEEDED`` is reached only through :meth:`record_success` (it needs its payment),
        and a ``SUCCEEDED`` attempt never moves again: it is the order's payment. Moving an
        attempt back to ``PENDING`` (say, a redirected checkout whose approval is about to
        be sent, after :meth:`renew_lease` claimed it) raises ``AttemptInFlight`` if another
        attempt of the order is pending with a live lease, as :meth:`begin_attempt` does.
        ``sent`` and ``recheck_until`` are as :meth:`Journal.update_attempt
        <payfallback.journal.Journal.update_attempt>` says.
        """
        state = AttemptState(state)
        recheck = check_attempt_update(attempt_id, state, recheck_until)
        now = self._now()
        with self._transaction(write=True) as db:
            current = self._require_attempt(db, attempt_id)
            if current.state is AttemptState.SUCCEEDED:
                raise InvalidRequest(
                    f"attempt {attempt_id} is the payment of order {current.order_id}; it "
                    f"cannot move to {state.value} (refund the payment instead)",
                    attempt_id=attempt_id,
                )
            if state is AttemptState.PENDING and current.state is not AttemptState.PENDING:
                live = self._one(
                    db,
                    "SELECT attempt_id FROM attempts WHERE order_id = ? AND attempt_id != ?"
                    " AND state = 'pending' AND lease_until > ? ORDER BY seq LIMIT 1",
                    current.order_id,
                    attempt_id,
                    _ts(now),
                )
                if live is not None:
                    raise AttemptInFlight(current.order_id, live["attempt_id"])
            # A lease guards work in flight; once an attempt leaves PENDING that work is
            # over, so its lease ends with it (a redirected checkout must be claimable the
            # moment the customer comes back).
            db.execute(
                "UPDATE attempts SET state = :state,"
                " provider_txn_id = COALESCE(:txn, provider_txn_id),"
                " error_code = COALESCE(:code, error_code),"
                " error_message = COALESCE(:message, error_message),"
                " lease_until = CASE WHEN :state = 'pending' THEN lease_until ELSE :now END,"
                " sent_at = CASE WHEN :sent THEN :now ELSE sent_at END,"
                " recheck_until = CASE WHEN :state = 'failed'"
                "   THEN COALESCE(:recheck, recheck_until) END,"
                " updated_at = :now WHERE attempt_id = :id",
                {
                    "state": state.value,
                    "txn": provider_txn_id,
                    "code": error_code,
                    "message": error_message,
                    "now": _ts(now),
                    "sent": bool(sent),
                    "recheck": None if recheck is None else _ts(recheck),
                    "id": attempt_id,
                },
            )
            stored = self._attempt_row(db, attempt_id)
        assert stored is not None
        return stored

    def record_success(self, attempt_id: str, payment: Payment) -> Payment:
        """Mark the attempt ``SUCCEEDED`` and store ``payment``, atomically.

        If the order already has a payment from another attempt, the attempt becomes
        ``SUPERSEDED`` (keeping ``payment.provider_txn_id``, which its compensation needs)
        and the existing payment is returned. Recording the same attempt twice returns the
        stored payment. ``payment`` must be new (nothing refunded, status ``PAID``), name
        this attempt, its order and provider, and carry the order's journaled amount. A
        provider transaction that is already another order's payment raises
        ``TxnAlreadyRecorded`` and writes nothing.
        """
        stamp = _ts(self._now())
        # As the journal keeps it: the approval time in UTC, to the microsecond.
        recorded = payment.model_copy(update={"approved_at": _dt(_ts(payment.approved_at))})
        with self._transaction(write=True) as db:
            row = self._one(
                db,
                "SELECT a.*, o.amount AS order_amount, o.currency AS order_currency"
                " FROM attempts a JOIN orders o ON o.order_id = a.order_id"
                " WHERE a.attempt_id = ?",
                attempt_id,
            )
            if row is None:
                raise InvalidRequest(
                    f"no attempt {attempt_id!r} in the journal; attempts are created by "
                    "begin_attempt",
                    attempt_id=attempt_id,
                )
            attempt = _attempt(row)
            check_payment_fits(attempt, payment)
            check_payment_amount(
                payment, attempt, Money(amount=row["order_amount"], currency=row["order_currency"])
            )
            # The unique constraints decide (one payment per order, per payment id, per
            # provider transaction); only when one refuses is anything read to say which.
            written = db.execute(
                "INSERT INTO payments (payment_id, order_id, attempt_id, provider, method,"
                " provider_txn_id, amount, refunded, currency, status, approved_at, attempts,"
                " created_at, updated_at, receipt_json, answer_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'paid', ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    payment.payment_id,
                    payment.order_id,
                    attempt_id,
                    payment.provider,
                    payment.method.value,
                    payment.provider_txn_id,
                    payment.amount.amount,
                    payment.amount.currency,
                    _ts(payment.approved_at),
                    payment.attempts,
                    stamp,
                    stamp,
                    receipt_json(payment.receipt),
                    answer_json(payment.provider_answer),
                ),
            ).rowcount
            if not written:
                return self._payment_refused(db, attempt, payment, stamp)
            db.execute(
                "UPDATE attempts SET state = 'succeeded', provider_txn_id = ?,"
                " recheck_until = NULL, updated_at = ? WHERE attempt_id = ?",
                (payment.provider_txn_id, stamp, attempt_id),
            )
        return recorded

    def _payment_refused(
        self, db: sqlite3.Connection, attempt: Attempt, payment: Payment, stamp: str
    ) -> Payment:
        """Why a payment was not written: the order's own payment (returned, this attempt
        superseded unless it is that payment's), or a typed error."""
        existing = self._payment_by(db, "order_id", attempt.order_id)
        if existing is not None:
            if existing.attempt_id != attempt.attempt_id:
                db.execute(
                    "UPDATE attempts SET state = 'superseded',"
                    " provider_txn_id = COALESCE(?, provider_txn_id),"
                    " recheck_until = NULL, updated_at = ?"
                    " WHERE attempt_id = ?",
                    (payment.provider_txn_id, stamp, attempt.attempt_id),
                )
            return existing
        clash = self._payment_by(db, "payment_id", payment.payment_id)
        if clash is not None:
            raise payment_id_taken(
                payment.payment_id, f"order {clash.order_id}", attempt.attempt_id
            )
        # This order has no payment, so the payment with this transaction is another
        # order's: the same charge cannot pay both.
        taken = self._one(
            db,
            "SELECT * FROM payments WHERE provider = ? AND provider_txn_id = ?",
            payment.provider,
            payment.provider_txn_id,
        )
        assert taken is not None  # the only unique constraint left
        raise TxnAlreadyRecorded(_payment(taken), attempt_id=attempt.attempt_id)

    def renew_lease(self, attempt_id: str, lease_seconds: float) -> bool:
        """Claim an attempt for work if its lease ran out; True if this call claimed it.

        Settled attempts (``SUCCEEDED``, ``FAILED``) have nothing left to do and are never
        claimed. A live lease is never extended, not even by the worker holding it, so two
        workers can never both hold one attempt.
        """
        lease = lease_duration(lease_seconds)
        now = self._now()
        with self._transaction(write=True) as db:
            self._require_attempt(db, attempt_id)
            # A stale PENDING attempt is not revived while another attempt of the same
            # order is live: one order, one request in flight.
            claimed = db.execute(
                "UPDATE attempts SET lease_until = :until"
                " WHERE attempt_id = :id AND state NOT IN (:s1, :s2) AND lease_until <= :now"
                " AND NOT (state = 'pending' AND EXISTS (SELECT 1 FROM attempts other"
                "   WHERE other.order_id = attempts.order_id"
                "   AND other.attempt_id != attempts.attempt_id"
                "   AND other.state = 'pending' AND other.lease_until > :now))",
                {
                    "until": _ts(now + lease),
                    "id": attempt_id,
                    "s1": _SETTLED_ATTEMPTS[0].value,
                    "s2": _SETTLED_ATTEMPTS[1].value,
                    "now": _ts(now),
                },
            ).rowcount
        return claimed == 1

    def get_order(self, order_id: str) -> Order | None:
        with self._transaction(write=False) as db:
            row = self._one(db, "SELECT order_json FROM orders WHERE order_id = ?", order_id)
        return None if row is None else Order.model_validate_json(row[0], strict=False)

    def get_attempt(self, attempt_id: str) -> Attempt | None:
        with self._transaction(write=False) as db:
            return self._attempt_row(db, attempt_id)

    def attempts_for_order(self, order_id: str) -> Sequence[Attempt]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM attempts WHERE order_id = ? ORDER BY seq", (order_id,)
            ).fetchall()
        return [_attempt(row) for row in rows]

    def get_payment(self, payment_id: str) -> Payment | None:
        with self._transaction(write=False) as db:
            return self._payment_by(db, "payment_id", payment_id)

    def payment_for_order(self, order_id: str) -> Payment | None:
        with self._transaction(write=False) as db:
            return self._payment_by(db, "order_id", order_id)

    def unresolved_attempts(self) -> Sequence[Attempt]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                f"SELECT a.* FROM attempts a WHERE {_UNRESOLVED_WHERE}"
                " ORDER BY a.created_at, a.rowid",
                {"now": _ts(self._now())},
            ).fetchall()
        return [_attempt(row) for row in rows]

    def attempts_to_recheck(self) -> Sequence[Attempt]:
        """See :meth:`Journal.attempts_to_recheck`; oldest first."""
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM attempts WHERE state = 'failed' AND recheck_until > ?"
                " ORDER BY created_at, rowid",
                (_ts(self._now()),),
            ).fetchall()
        return [_attempt(row) for row in rows]

    def in_flight_attempts(self) -> Sequence[Attempt]:
        """See :meth:`Journal.in_flight_attempts`; oldest first."""
        with self._transaction(write=False) as db:
            rows = db.execute(
                f"SELECT a.* FROM attempts a WHERE {_IN_FLIGHT_WHERE}"
                " ORDER BY a.created_at, a.rowid",
                {"now": _ts(self._now())},
            ).fetchall()
        return [_attempt(row) for row in rows]

    # -- checkouts ------------------------------------------------------------------------

    def save_checkout(self, session: CheckoutSession) -> None:
        """Store a started checkout under its attempt; the attempt moves to ``REDIRECTED``.

        ``session.session_id`` is the attempt id. Saving a session again replaces it (a
        refreshed expiry, say); the attempt must still be pending or redirected.
        """
        now = self._now()
        with self._transaction(write=True) as db:
            attempt = self._require_attempt(db, session.session_id)
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
            db.execute(
                "INSERT INTO checkouts (session_id, order_id, session_json, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (session_id) DO UPDATE SET"
                " session_json = excluded.session_json, updated_at = excluded.updated_at",
                (
                    session.session_id,
                    session.order_id,
                    session.model_dump_json(),
                    _ts(now),
                    _ts(now),
                ),
            )
            db.execute(
                "UPDATE attempts SET state = 'redirected',"
                " provider_txn_id = COALESCE(?, provider_txn_id), lease_until = ?,"
                " updated_at = ? WHERE attempt_id = ?",
                (session.provider_txn_id, _ts(now), _ts(now), attempt.attempt_id),
            )

    def get_checkout(self, session_id: str) -> CheckoutSession | None:
        with self._transaction(write=False) as db:
            row = self._one(
                db, "SELECT session_json FROM checkouts WHERE session_id = ?", session_id
            )
        if row is None:
            return None
        return CheckoutSession.model_validate_json(row[0], strict=False)

    def checkout_state(self, session_id: str) -> CheckoutState | None:
        with self._transaction(write=False) as db:
            row = self._one(
                db,
                "SELECT c.session_json, o.order_json FROM checkouts c"
                " JOIN orders o ON o.order_id = c.order_id WHERE c.session_id = ?",
                session_id,
            )
            if row is None:
                return None
            attempt = self._attempt_row(db, session_id)
            session = CheckoutSession.model_validate_json(row[0], strict=False)
            payment = self._payment_by(db, "order_id", session.order_id)
        if attempt is None:
            return None
        order = Order.model_validate_json(row[1], strict=False)
        return CheckoutState(session=session, order=order, attempt=attempt, payment=payment)

    # -- refunds --------------------------------------------------------------------------

    def add_refund(self, refund: Refund) -> Refund:
        """Journal a refund as ``OWED`` before anything is sent; see :class:`Journal`.

        The refund must be new (``OWED``, no tries) with a positive amount, and its
        attempt must be journaled for its order. A ``"refund"`` names its payment and that
        payment's attempt, in the payment's currency. The new row has no lease: the caller
        claims it with :meth:`renew_refund_lease` before sending its cancel. A refund with
        the same id, or the same ``request_key`` for its payment, is returned unchanged.
        """
        check_new_refund(refund)
        with self._transaction(write=True) as db:
            existing = self._refund_row(db, refund.refund_id)
            if existing is None and refund.request_key is not None:
                assert refund.payment_id is not None  # check_new_refund
                existing = self._refund_by_key(db, refund.payment_id, refund.request_key)
            if existing is not None:
                return existing
            attempt = self._require_attempt(db, refund.attempt_id)
            if attempt.order_id != refund.order_id:
                raise InvalidRequest(
                    f"refund {refund.refund_id} is for order {refund.order_id}, but attempt "
                    f"{attempt.attempt_id} belongs to order {attempt.order_id}",
                    attempt_id=attempt.attempt_id,
                )
            if refund.kind == "refund":
                self._check_refundable(db, refund)
            elif refund.payment_id is not None and (
                self._payment_by(db, "payment_id", refund.payment_id) is None
            ):
                raise InvalidRequest(
                    f"compensation {refund.refund_id} names payment {refund.payment_id}, "
                    "which is not in the journal; use None for a charge that is no payment"
                )
            reused = self._one(
                db,
                "SELECT refund_id FROM refunds WHERE idempotency_key = ?",
                refund.idempotency_key,
            )
            if reused is not None:
                raise InvalidRequest(
                    f"refund {reused['refund_id']} already used this idempotency key; mint a "
                    f"new key for refund {refund.refund_id}"
                )
            db.execute(
                "INSERT INTO refunds (refund_id, payment_id, order_id, attempt_id, provider,"
                " provider_txn_id, amount, currency, expected_remaining, reason, kind,"
                " idempotency_key, state, error_code, tries, lease_until, created_at,"
                " updated_at, tax_free_amount, request_key, request_fingerprint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'owed', ?, 0, NULL, ?, ?, ?, ?, ?)",
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
                    _ts(refund.created_at),
                    _ts(refund.updated_at),
                    refund.tax_free_amount,
                    refund.request_key,
                    refund.request_fingerprint,
                ),
            )
            stored = self._refund_row(db, refund.refund_id)
        assert stored is not None
        return stored

    def _check_refundable(self, db: sqlite3.Connection, refund: Refund) -> None:
        if refund.payment_id is None:
            raise InvalidRequest(
                f"refund {refund.refund_id} names no payment; only a compensation (giving "
                "back a charge that is not the order's payment) may omit it"
            )
        payment = self._payment_by(db, "payment_id", refund.payment_id)
        payment = check_refund_fits(refund, payment)
        row = self._one(
            db,
            "SELECT COALESCE(SUM(amount), 0) FROM refunds"
            " WHERE payment_id = ? AND kind = 'refund' AND state = 'owed'",
            payment.payment_id,
        )
        owed = Money(amount=int(row[0]) if row is not None else 0, currency=payment.amount.currency)
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
        error_code: str | None = None,
        idempotency_key: str | None = None,
        receipt: RefundReceipt | None = None,
        provider_answer: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Record one try of a refund: still ``OWED``, or settled.

        Every call counts a try. ``SUCCEEDED`` and ``FAILED`` are final: a settled refund
        can be reported again in the same state but never moves to another. The first
        ``SUCCEEDED`` of a ``"refund"`` adds its amount to the payment's ``refunded`` and
        sets the payment's status, in the same transaction. ``None`` keeps the last error
        code.
        """
        state = RefundState(state)
        now = self._now()
        with self._transaction(write=True) as db:
            current = self._require_refund(db, refund_id)
            if current.state is not RefundState.OWED and state is not current.state:
                raise InvalidRequest(
                    f"refund {refund_id} already {current.state.value}; it cannot become "
                    f"{state.value} (journal a new refund if money must still move)"
                )
            # Each try ends the lease that claimed it, so the next recover() can retry.
            db.execute(
                "UPDATE refunds SET state = ?, error_code = COALESCE(?, error_code),"
                " idempotency_key = COALESCE(?, idempotency_key),"
                " receipt_json = COALESCE(?, receipt_json), answer_json = COALESCE(?, answer_json),"
                " tries = tries + 1, lease_until = NULL, updated_at = ? WHERE refund_id = ?",
                (
                    state.value,
                    error_code,
                    idempotency_key,
                    receipt_json(receipt),
                    answer_json(provider_answer),
                    _ts(now),
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
                db.execute(
                    "UPDATE payments SET refunded = refunded + :amount,"
                    " status = CASE WHEN refunded + :amount >= amount THEN 'refunded'"
                    " ELSE 'partially_refunded' END, updated_at = :now"
                    " WHERE payment_id = :payment_id",
                    {
                        "amount": current.amount.amount,
                        "now": _ts(now),
                        "payment_id": current.payment_id,
                    },
                )
            stored = self._refund_row(db, refund_id)
        assert stored is not None
        return stored

    def renew_refund_lease(self, refund_id: str, lease_seconds: float) -> bool:
        """Claim an owed refund if no other worker holds it; True if this call claimed it.

        Settled refunds are never claimed, and a live lease is never extended.
        """
        lease = lease_duration(lease_seconds)
        now = self._now()
        with self._transaction(write=True) as db:
            self._require_refund(db, refund_id)
            claimed = db.execute(
                "UPDATE refunds SET lease_until = ? WHERE refund_id = ? AND state = 'owed'"
                " AND (lease_until IS NULL OR lease_until <= ?)",
                (_ts(now + lease), refund_id, _ts(now)),
            ).rowcount
        return claimed == 1

    def get_refund(self, refund_id: str) -> Refund | None:
        with self._transaction(write=False) as db:
            return self._refund_row(db, refund_id)

    def refund_by_request_key(self, payment_id: str, request_key: str) -> Refund | None:
        """See :meth:`Journal.refund_by_request_key`."""
        with self._transaction(write=False) as db:
            return self._refund_by_key(db, payment_id, request_key)

    def refunds_for_order(self, order_id: str) -> Sequence[Refund]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM refunds WHERE order_id = ? ORDER BY created_at, rowid",
                (order_id,),
            ).fetchall()
        return [_refund(row) for row in rows]

    def refunds_owed(self) -> Sequence[Refund]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM refunds WHERE state = 'owed' ORDER BY created_at, rowid"
            ).fetchall()
        return [_refund(row) for row in rows]

    def payments_between(self, start: datetime, end: datetime) -> Sequence[Payment]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM payments WHERE approved_at >= ? AND approved_at < ?"
                " ORDER BY approved_at, rowid",
                (_ts(start), _ts(end)),
            ).fetchall()
        return [_payment(row) for row in rows]

    def refunds_between(self, start: datetime, end: datetime) -> Sequence[Refund]:
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT * FROM refunds WHERE state = 'succeeded'"
                " AND updated_at >= ? AND updated_at < ? ORDER BY updated_at, rowid",
                (_ts(start), _ts(end)),
            ).fetchall()
        return [_refund(row) for row in rows]

    def counts(self) -> JournalCounts:
        with self._transaction(write=False) as db:
            orders = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
            payments = db.execute("SELECT COUNT(*) FROM payments").fetchone()[0]
            unresolved = db.execute(
                f"SELECT COUNT(*) FROM attempts a WHERE {_UNRESOLVED_WHERE}",
                {"now": _ts(self._now())},
            ).fetchone()[0]
            # SQLite's SUM fails past 2**63. Amounts are below 2**53: summed as high and low
            # 32 bits apart, the total stays exact up to two billion owed refunds.
            owed, high, low = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(amount >> 32), 0),"
                " COALESCE(SUM(amount & 4294967295), 0) FROM refunds WHERE state = 'owed'"
            ).fetchone()
        return JournalCounts(
            orders=int(orders),
            payments=int(payments),
            unresolved_attempts=int(unresolved),
            refunds_owed=int(owed),
            refunds_owed_amount=(int(high) << 32) + int(low),
        )
