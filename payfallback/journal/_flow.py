"""Journal transactions as flows, written once for every database and driver.

Each journal operation is a generator (a *flow*) that yields the :class:`Query` it wants run
and is sent back its :class:`Result`; what it returns is the operation's answer. A flow
never touches a connection, so a driver for SQLite (``sqlite3``) and drivers for PostgreSQL
(``psycopg``, sync and async) carry out the very same transactions and checks.

Statements are written in PostgreSQL's dialect with psycopg's placeholders (``%s``,
``%(name)s``); a driver for another database translates each statement once (see
:mod:`payfallback.journal.sqlite`). A constraint a flow wants to react to reaches it as a
:class:`Conflict` naming the constraint as the PostgreSQL schema names it, whatever the
database said; any other database error is thrown into the flow as the driver's own. Inside
a transaction the error has aborted it: a flow that catches one must raise, not query
again (only a flow of one statement, run without a transaction, may catch and return).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar

if TYPE_CHECKING:
    from psycopg import sql

__all__ = ["Conflict", "Flow", "Params", "Query", "Result", "Row", "Rows", "one", "rows", "throw"]

T = TypeVar("T")

#: A row read by column name: a psycopg dict row, a ``sqlite3.Row``.
Row: TypeAlias = Any
Params: TypeAlias = Sequence[Any] | Mapping[str, Any]


# Not frozen: a frozen dataclass is slower to make, and a driver makes one per statement.
@dataclass(slots=True)
class Query:
    """One statement and its parameters (``%s`` or ``%(name)s`` placeholders)."""

    statement: str | sql.Composed
    #: ``None`` sends the statement as written (no placeholders, ``%`` is literal).
    params: Params | None = None


class Result(Protocol):
    """What a statement gave back: its rows (none for a bare write) and rows affected. A
    flow reads each result once, before its next statement."""

    @property
    def rows(self) -> list[Row]: ...

    @property
    def rowcount(self) -> int: ...


@dataclass(slots=True)
class Rows:
    """A :class:`Result` fetched whole."""

    rows: list[Row]
    rowcount: int


Flow: TypeAlias = Generator[Query, Result, T]


class Conflict(Exception):
    """A statement broke the constraint ``name`` (as named in the PostgreSQL schema)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def rows(statement: str | sql.Composed, params: Params | None = None) -> Flow[list[Row]]:
    result = yield Query(statement, params)
    return result.rows


def one(statement: str | sql.Composed, params: Params | None = None) -> Flow[Row | None]:
    """The first row, or ``None`` when there is none."""
    found = (yield Query(statement, params)).rows
    return found[0] if found else None


def throw(flow: Flow[T], native: BaseException, conflict: Conflict | None) -> Query:
    """Throw a database error into ``flow`` at the ``yield`` that caused it; the flow's next
    query. ``conflict``: how the flow sees ``native`` (``None``: as it is). A conflict the
    flow does not handle leaves it as the database's own error."""
    if conflict is None:
        return flow.throw(native)
    conflict.__cause__ = native
    try:
        return flow.throw(conflict)
    except Conflict as unhandled:
        if unhandled is conflict:
            raise native from None
        raise
