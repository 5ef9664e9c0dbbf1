"""Transactions of the PostgreSQL journal, written once for a sync and an async connection.

Each journal operation is a generator (a *flow*) that yields the :class:`Query` it wants run
and is sent back its :class:`Result`; what it returns is the operation's answer. A flow
never touches a connection, so :func:`run` (``psycopg.Connection``) and :func:`arun`
(``psycopg.AsyncConnection``) carry out the very same SQL and checks, and
``PostgresJournal`` and ``AsyncPostgresJournal`` cannot drift apart: the split the Router
makes between its decision core and its two drivers.

A database error is thrown into the flow at the ``yield`` that caused it, so a flow can
turn, say, a unique violation into a typed error. Inside a transaction the error has
aborted it: a flow that catches one must raise, not query again (only a flow of one
statement, run with ``atomic=False``, may catch and return).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

__all__ = ["Flow", "Params", "Query", "Result", "Row", "arun", "one", "rows", "run"]

T = TypeVar("T")

Row: TypeAlias = dict[str, Any]
Params: TypeAlias = Sequence[Any] | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    """One statement and its parameters (``%s`` or ``%(name)s`` placeholders)."""

    statement: str | sql.Composed
    #: ``None`` sends the statement as written (no placeholders, ``%`` is literal).
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What a statement gave back: its rows (none for a bare write) and rows affected."""

    rows: list[Row]
    rowcount: int


Flow: TypeAlias = Generator[Query, Result, T]


def rows(statement: str | sql.Composed, params: Params | None = None) -> Flow[list[Row]]:
    result = yield Query(statement, params)
    return result.rows


def one(statement: str | sql.Composed, params: Params | None = None) -> Flow[Row | None]:
    """The first row, or ``None`` when there is none."""
    result = yield Query(statement, params)
    return result.rows[0] if result.rows else None


def run(conn: psycopg.Connection[Any], flow: Flow[T], *, atomic: bool = True) -> T:
    """Carry out ``flow`` on ``conn`` (in autocommit mode) and return its answer.

    ``atomic``: one transaction, committed if the flow returns, rolled back if it raises.
    A flow of one statement may pass ``atomic=False`` and save the ``BEGIN``/``COMMIT``
    round trips: a single statement is atomic by itself.
    """
    if not atomic:
        return _drive(conn, flow, atomic=False)
    with conn.transaction():
        return _drive(conn, flow, atomic=True)


def _drive(conn: psycopg.Connection[Any], flow: Flow[T], *, atomic: bool) -> T:
    with conn.cursor(row_factory=dict_row) as cur:
        try:
            query = next(flow)
            while True:
                try:
                    cur.execute(query.statement, query.params)
                    result = Result(
                        cur.fetchall() if cur.description is not None else [], cur.rowcount
                    )
                except psycopg.Error as exc:
                    query = flow.throw(exc)
                else:
                    query = flow.send(result)
                if not atomic:
                    raise _not_one_statement()
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            flow.close()


async def arun(conn: psycopg.AsyncConnection[Any], flow: Flow[T], *, atomic: bool = True) -> T:
    """:func:`run` on an async connection."""
    if not atomic:
        return await _adrive(conn, flow, atomic=False)
    async with conn.transaction():
        return await _adrive(conn, flow, atomic=True)


async def _adrive(conn: psycopg.AsyncConnection[Any], flow: Flow[T], *, atomic: bool) -> T:
    async with conn.cursor(row_factory=dict_row) as cur:
        try:
            query = next(flow)
            while True:
                try:
                    await cur.execute(query.statement, query.params)
                    result = Result(
                        await cur.fetchall() if cur.description is not None else [],
                        cur.rowcount,
                    )
                except psycopg.Error as exc:
                    query = flow.throw(exc)
                else:
                    query = flow.send(result)
                if not atomic:
                    raise _not_one_statement()
        except StopIteration as stop:
            value: T = stop.value
            return value
        finally:
            flow.close()


def _not_one_statement() -> AssertionError:
    return AssertionError("a flow of several statements must run atomic=True")
