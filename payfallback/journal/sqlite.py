"""The embedded journal: one SQLite file, stdlib ``sqlite3`` only.

The file is opened in WAL mode with ``synchronous=FULL``, so a method that returned has
its transaction on disk and survives a power cut, not only a process crash. With
``durable=False`` it uses ``synchronous=NORMAL``: still consistent and still safe against a
process crash, but the last few commits may be lost if the machine itself goes down
(acceptable for the simulator and tests, not for money).

Every method is one transaction, the same one the PostgreSQL journal runs (see
:mod:`payfallback.journal._transactions`); writes start with ``BEGIN IMMEDIATE`` so the
check and the write it guards (say, "no live pending attempt" and the insert) cannot be
split by another writer, whether that is another thread or another process on the same
file.
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
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from payfallback._clock import Clock, SystemClock
from payfallback.errors import ConfigurationError
from payfallback.journal._checks import journal_closed, utc
from payfallback.journal._flow import Conflict, Flow, throw
from payfallback.journal._methods import SyncJournalMethods
from payfallback.journal._migrations import migrate
from payfallback.journal._transactions import Dialect, Transactions

__all__ = ["SQLiteJournal"]

_URL_PREFIX = "sqlite:///"
_MEMORY = ":memory:"
#: How long a write waits for another process holding the file's write lock. Journal
#: transactions last milliseconds, so reaching this means something is wrong.
_BUSY_TIMEOUT_S = 10.0
_BUSY_PRAGMA = f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}"
T = TypeVar("T")


#: How often the background thread checkpoints a journal file, at most seconds apart.
CHECKPOINT_INTERVAL_S = 0.25
#: How far (in 4 KiB pages) the log may grow before a commit checkpoints it itself.
WAL_BOUND_PAGES = 10_000
#: From this many pages in the log, a background round also starts the log over (see
#: ``_Checkpointer``); the thread comes back sooner the faster the log grows, so that
#: under load it does so at about this size, well before a commit would at the bound.
WAL_RESTART_PAGES = WAL_BOUND_PAGES // 4
#: The background thread's shortest wait between two rounds, in seconds.
CHECKPOINT_MIN_WAIT_S = 0.05
#: How long the background thread's restart waits for the write lock, or for readers to
#: move off the log, in ms; it holds other writers back meanwhile. Past it, the round ends
#: as a ``PASSIVE`` one and the next tries again.
RESTART_BUSY_MS = 20
#: After two restarts in a row that had to give up (a reader keeps the log, and a restart
#: holds other writers back while it waits for it), the background tries none for this
#: long, in seconds. (One alone is as likely a commit that held the write lock past
#: ``RESTART_BUSY_MS``: a FULL journal's, waiting for its fsync.)
RESTART_BACKOFF_S = 1.0
#: The connection's page cache, in KiB (SQLite's default is 2,000). A charge inserts into
#: about a dozen B-trees, most keyed by ids in no particular order, so each lands on a leaf
#: page of its own; once the journal outgrows the cache, every such page is read back from
#: the file first. Measured on a 32 MB journal: a quarter less CPU per charge.
CACHE_KIB = 16 * 1024


def _passive_checkpoint(conn: sqlite3.Connection) -> tuple[int, int]:
    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(row[1]), int(row[2])


class _Checkpointer:
    """A daemon thread with its own connection that checkpoints the journal's log, so that
    a payment's commit never does (two syncs, of the log and of the database file: tens of
    milliseconds on the event loop or the paying thread otherwise).

    A round is a ``PASSIVE`` checkpoint, which waits for no one: it copies what no reader
    still needs and leaves the rest for the next round. But while payments keep
    committing, it never finds the whole log copied, and only a fully copied log starts
    over: the log would grow to ``WAL_BOUND_PAGES``, where a payment's commit checkpoints
    it itself, syncs and all. So from ``WAL_RESTART_PAGES`` a round goes on with a
    ``RESTART`` checkpoint: it takes the write lock (at most ``RESTART_BUSY_MS`` of
    waiting), copies the few pages committed since its ``PASSIVE`` pass and leaves the log
    to start over at the next commit. Other writers wait for it meanwhile (so after two in a
    row that gave up, say on a long read in another process, none is tried for
    ``RESTART_BACKOFF_S``); an :class:`~payfallback.AsyncRouter`'s batch that finds the lock
    taken goes to a worker thread rather than wait on the event loop.

    Rounds come every ``interval`` seconds, and sooner the faster the log grew since the
    last one, down to ``CHECKPOINT_MIN_WAIT_S``: about when the log will have reached
    ``WAL_RESTART_PAGES`` again. A failed round is tried again at the next; commits
    checkpoint for themselves past ``WAL_BOUND_PAGES``, so the log stays bounded even
    then."""

    def __init__(self, path: str, interval: float) -> None:
        if not interval > 0:
            raise ConfigurationError(f"checkpoint_interval must be positive, got {interval!r}")
        self._stop = threading.Event()
        # Its only waits are a restart's (see RESTART_BUSY_MS); a PASSIVE round waits for
        # no one.
        self._conn = sqlite3.connect(
            path, timeout=RESTART_BUSY_MS / 1000, isolation_level=None, check_same_thread=False
        )
        self.rounds = 0
        #: Rounds that started the log over, and restarts that gave up.
        self.restarts = 0
        self.restarts_given_up = 0
        self._given_up_in_a_row = 0
        self._gave_up_at = -float("inf")
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name=f"payfallback-checkpoint:{path}", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        wait, left, at = interval, 0, time.monotonic()
        try:
            while not self._stop.wait(wait):
                with contextlib.suppress(sqlite3.Error):
                    found, restarted = self._round()
                    now = time.monotonic()
                    self.rounds += 1
                    if found < 0:
                        # Another connection was checkpointing (a commit, past the bound):
                        # this thread is behind. Come back soon.
                        wait = CHECKPOINT_MIN_WAIT_S
                        continue
                    # Pages a second since the last round, whose log held ``left`` after
                    # it (a log that started over since holds only what came after).
                    grown = found - left if found >= left else found
                    rate = grown / max(now - at, 1e-3)
                    left, at = (0 if restarted else found), now
                    wait = interval
                    if rate > 0:
                        wait = min(interval, max(CHECKPOINT_MIN_WAIT_S, WAL_RESTART_PAGES / rate))
        finally:
            self._conn.close()

    def _round(self) -> tuple[int, bool]:
        """One round: the pages it found in the log (-1 if another connection was
        checkpointing it), and whether the log starts over."""
        log, _ = _passive_checkpoint(self._conn)
        if log < WAL_RESTART_PAGES or time.monotonic() - self._gave_up_at < RESTART_BACKOFF_S:
            return log, False
        busy, log, copied = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if busy or copied != log:
            self.restarts_given_up += 1
            self._given_up_in_a_row += 1
            if self._given_up_in_a_row >= 2:
                self._given_up_in_a_row = 0
                self._gave_up_at = time.monotonic()
            return int(log), False
        self._given_up_in_a_row = 0
        self.restarts += 1
        return int(log), True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text: sorts and compares in SQL exactly as the instants do."""
    # Naive datetimes are taken as UTC, the only zone the journal stores.
    # isoformat is C and pads the year; with microseconds always shown, the text is
    # YYYY-MM-DDTHH:MM:SS.ffffff+00:00, the zone written "Z". A clock's UTC time (most
    # of what is written) needs no converting.
    if type(moment) is not datetime or moment.tzinfo is not UTC:
        moment = utc(moment, "time")
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


#: SQLite gives back and takes the ISO-8601 text of ``_ts``; writers are serialised by
#: ``BEGIN IMMEDIATE``, so nothing is locked row by row.
_DIALECT = Dialect(ts=_ts, dt=_dt, row_locks=False, returning=False, payments_tiebreak="rowid")

# The flows' statements are PostgreSQL's: placeholders become SQLite's, row locks and casts
# go (SQLite has neither; its JSON is text), and the insertion order is the rowid.
_TRANSLATIONS = (
    (re.compile(r"%\((\w+)\)s"), r":\1"),
    (re.compile(r"%s"), "?"),
    (re.compile(r" FOR UPDATE(?: OF \w+)?"), ""),
    (re.compile(r"::(?:json|text)\b"), ""),
    (re.compile(r"\brow_no\b"), "rowid"),
)
#: Each statement's SQLite text, translated once.
_SQLITE_TEXT: dict[object, str] = {}
#: The constraints a flow may react to (see ``Conflict``), by what SQLite says.
_CONFLICTS = {"UNIQUE constraint failed: refunds.idempotency_key": "refunds_key_once"}


def _translate(statement: object) -> str:
    if not isinstance(statement, str):
        raise TypeError(f"SQLite runs statements given as text, not {type(statement).__name__}")
    text = statement
    for pattern, replacement in _TRANSLATIONS:
        text = pattern.sub(replacement, text)
    _SQLITE_TEXT[statement] = text
    return text


class _Cursor(sqlite3.Cursor):
    """A cursor as a flow reads a statement's result (see ``Result``): ``rows`` fetches
    what the statement gave back, once."""

    @property
    def rows(self) -> list[Any]:
        return self.fetchall()


def _conflict(exc: sqlite3.Error) -> Conflict | None:
    name = _CONFLICTS.get(str(exc)) if isinstance(exc, sqlite3.IntegrityError) else None
    return None if name is None else Conflict(name)


# IMMEDIATE takes the write lock up front: a read-then-write transaction that started
# DEFERRED could find, at its first write, that another process wrote in between, and
# SQLite would have to fail it rather than wait.
_BEGIN = {True: "BEGIN IMMEDIATE", False: "BEGIN DEFERRED"}


def _steps(conn: sqlite3.Connection, flow: Flow[T]) -> T:
    """Run ``flow``'s statements, each in SQLite's text, on one cursor, which the flow is
    sent back as its result; an error is thrown in where it happened."""
    texts = _SQLITE_TEXT
    cursor = conn.cursor(_Cursor)
    try:
        query = next(flow)
        while True:
            statement = query.statement
            text = texts.get(statement) or _translate(statement)
            params = query.params
            try:
                cursor.execute(text) if params is None else cursor.execute(text, params)
            except sqlite3.Error as exc:
                query = throw(flow, exc, _conflict(exc))
            else:
                query = flow.send(cursor)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        flow.close()
        cursor.close()


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


def _begin_batch(conn: sqlite3.Connection, *, wait: bool) -> bool:
    """``BEGIN IMMEDIATE`` for :meth:`SQLiteJournal.run_batch`; without ``wait``, False
    (nothing begun) where it would have to wait for another process's write lock."""
    if wait:
        conn.execute("BEGIN IMMEDIATE")
        return True
    try:
        _begin_without_waiting(conn, "BEGIN IMMEDIATE")
    except _WouldWait:
        return False
    return True


class SQLiteJournal(SyncJournalMethods):
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
        self._tx = Transactions(self._clock, _DIALECT)
        #: Set by run_batch (under the lock): the calls' transactions are its savepoints.
        self._in_batch = False
        #: Set by close() (under the lock): every later call is refused.
        self._closed = False
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
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
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
            self._closed = True
            self._conn.close()

    def checkpoint(self) -> tuple[int, int]:
        """Copy the write-ahead log back into the database now, without waiting for
        readers or writers (a ``PASSIVE`` checkpoint); the log's frames and how many of them
        are in the database. The background thread does this at most
        ``checkpoint_interval`` seconds apart, sooner the faster the log grows, and starts
        the log over past ``WAL_RESTART_PAGES`` (see ``_Checkpointer``)."""
        with self._lock:
            return _passive_checkpoint(self._conn)

    # -- plumbing -------------------------------------------------------------------------

    def run_batch(
        self, calls: Sequence[Callable[[Self], Any]], *, wait: bool = False
    ) -> list[tuple[bool, Any]] | None:
        """Run ``calls`` (each ``call(self)``) in one transaction with one commit: a group
        commit. A call that raises is undone alone and the others are kept: the batch is
        rolled back and run again, each call in a savepoint of its own. So a call must do
        nothing but call journal methods, and may be run more than once before its result
        is committed. Returns, after the commit, ``(True, result)`` or ``(False, the
        exception)`` for each call in order, as the run that was committed gave them; if
        the commit itself fails, every call gets that failure (nothing was written).

        The :class:`~payfallback.AsyncRouter` hands over every journal call its payments
        make in a few turns of the event loop (``payfallback.router.BATCH_TURNS``), so at
        tens of payments in flight a commit (and with ``durable=True`` its fsync) is shared
        by many. ``wait=False`` is for the event loop: nothing is run, and ``None`` is
        returned, if it could mean waiting —

        * with ``durable=True`` (FULL) on a file: a commit waits for the disk (the Router
          runs such a batch in a worker thread, ``wait=True``); ``":memory:"`` has none;
        * while another thread of ours is in a transaction (the lock is taken without
          waiting);
        * while another process holds the file's write lock (``BEGIN IMMEDIATE`` runs with
          no busy timeout; ``SQLITE_BUSY`` hands the batch back before anything is
          written).

        What is left to hold the loop is the batch's own CPU time and, rarely, a commit
        that finds the background checkpointer ``WAL_BOUND_PAGES`` behind and copies the
        log itself.
        """
        syncs = self._durable and self._path not in ("", _MEMORY)  # a memory has no disk
        if not wait and (syncs or not self._lock.acquire(blocking=False)):
            return None
        if wait:
            self._lock.acquire()
        try:
            if self._closed:
                raise journal_closed(self._path)
            conn = self._conn
            if not _begin_batch(conn, wait=wait):
                return None
            results: list[tuple[bool, Any]] = []
            self._in_batch = True
            try:
                # Most batches have no call that fails, and they need no savepoints (in
                # one, SQLite keeps a copy of every page a call changes, to undo it). So a
                # batch runs without them first; should a call raise, the batch is rolled
                # back and run again, each call in a savepoint of its own. Alone, a call
                # needs none at all: if it fails, nothing is committed.
                for call in calls:
                    try:
                        results.append((True, call(self)))
                    except Exception as exc:
                        if conn.in_transaction:  # some errors end it themselves
                            conn.execute("ROLLBACK")
                        if len(calls) == 1:
                            return [(False, exc)]
                        break
                else:
                    conn.execute("COMMIT")
                    return results
                if not _begin_batch(conn, wait=wait):
                    return None  # nothing is committed: the caller runs the batch again
                results = []
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

    def _write(self, flow: Flow[T]) -> T:
        return self._drive(flow, write=True)

    def _read(self, flow: Flow[T]) -> T:
        return self._drive(flow, write=False)

    _read_consistent = _read  # a DEFERRED transaction reads one snapshot

    def _drive(self, flow: Flow[T], *, write: bool) -> T:
        """Carry out ``flow`` as one transaction (or, inside :meth:`run_batch`, in the
        batch's transaction and the call's savepoint)."""
        with self._lock:
            if self._closed:
                flow.close()
                raise journal_closed(self._path)
            conn = self._conn
            if self._in_batch:
                # Inside run_batch: its transaction, and the call's savepoint, hold this.
                return _steps(conn, flow)
            conn.execute(_BEGIN[write])
            try:
                value = _steps(conn, flow)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return value

    # -- the Journal protocol: each method is one transaction of Transactions --------------
