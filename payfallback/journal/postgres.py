"""The shared journal: PostgreSQL through psycopg 3 and its connection pool.

For several backend instances (or POS terminals behind one server) that share orders.
:class:`PostgresJournal` is a :class:`~payfallback.journal.Journal` (synchronous, safe to
share between threads: the async ``Router`` calls it in worker threads);
:class:`AsyncPostgresJournal` offers the same methods as coroutines over an async pool, for
code of your own that runs on an event loop. Both run the same transactions as the SQLite
journal (see :mod:`payfallback.journal._transactions`). The schema, its migrations and what
the database enforces by itself are described in :mod:`payfallback.journal._pg_migrations`.

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
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed

from payfallback._clock import Clock, SystemClock
from payfallback.errors import ConfigurationError
from payfallback.journal._base import CheckoutState, JournalCounts
from payfallback.journal._checks import aware, journal_closed
from payfallback.journal._methods import SyncJournalMethods
from payfallback.journal._migrations import Migration
from payfallback.journal._pg_flow import Flow, arun, run
from payfallback.journal._pg_migrations import (
    MIGRATIONS,
    check_schema_name,
    current_version,
    migrate_step,
    too_new,
)
from payfallback.journal._transactions import Dialect, Transactions
from payfallback.models import (
    Attempt,
    AttemptState,
    CheckoutSession,
    Method,
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
#: A pooled connection that answered this recently is handed out without a round trip to
#: check it first (HikariCP's ``aliveBypassWindowMs``, 500 ms there too).
CHECK_BYPASS_S = 0.5
_URL_PREFIXES = ("postgresql://", "postgres://")
_PASSWORD_IN_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?]*:)[^@/?]*@")


class _Liveness:
    """Whether the pool must check a connection before handing it out.

    A check is a round trip (an empty query): under load, two more per charge for
    connections that answered milliseconds before. A connection idle for longer than
    :data:`CHECK_BYPASS_S`, or never used, is still checked, so one the server dropped while
    idle (a restart, a failover, an idle timeout) is replaced before a payment uses it.
    """

    def __init__(self) -> None:
        self._answered: weakref.WeakKeyDictionary[object, float] = weakref.WeakKeyDictionary()

    def answered(self, conn: object) -> None:
        """``conn`` just carried a journal call through."""
        self._answered[conn] = time.monotonic()

    def _recent(self, conn: object) -> bool:
        answered = self._answered.get(conn)
        return answered is not None and time.monotonic() - answered < CHECK_BYPASS_S

    def check(self, conn: psycopg.Connection[Any]) -> None:
        if not self._recent(conn):
            ConnectionPool.check_connection(conn)

    async def acheck(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if not self._recent(conn):
            await AsyncConnectionPool.check_connection(conn)


def _as_is(value: datetime) -> datetime:
    return value


#: PostgreSQL takes and gives back datetimes; every transaction locks the rows it checks.
_DIALECT = Dialect(
    ts=_as_is, dt=aware, row_locks=True, returning=True, payments_tiebreak="payment_id"
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


class PostgresJournal(SyncJournalMethods):
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
        self._alive = _Liveness()
        self._tx = Transactions(settings.clock, _DIALECT)
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
            check=self._alive.check,
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

    def _run(self, flow: Flow[T], *, atomic: bool = True) -> T:
        try:
            with self._pool.connection() as conn:
                value = run(conn, flow, atomic=atomic)
                self._alive.answered(conn)
                return value
        except PoolClosed as exc:  # only getting a connection raises it
            flow.close()
            raise journal_closed(self._settings.where) from exc

    def _read(self, flow: Flow[T]) -> T:
        """Run a flow of one statement: atomic by itself, no ``BEGIN``/``COMMIT`` needed."""
        return self._run(flow, atomic=False)

    # A write locks the rows it checks (racing workers are serialised per order); a read of
    # several statements runs in one transaction, so they agree.
    _write = _run
    _read_consistent = _run

    # -- the Journal protocol: each method is one transaction of _Transactions -------------


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
        self._alive = _Liveness()
        self._tx = Transactions(self._settings.clock, _DIALECT)
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
            check=self._alive.acheck,
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
        try:
            async with self._pool.connection() as conn:
                value = await arun(conn, flow, atomic=atomic)
                self._alive.answered(conn)
                return value
        except PoolClosed as exc:  # only getting a connection raises it
            flow.close()
            raise journal_closed(self._settings.where) from exc

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

    async def renew_lease(
        self, attempt_id: str, lease_seconds: float, *, pending: bool = False
    ) -> bool:
        return await self._run(self._tx.renew_lease(attempt_id, lease_seconds, pending=pending))

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
