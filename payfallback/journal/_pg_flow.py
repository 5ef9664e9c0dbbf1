"""Carrying out flows (:mod:`payfallback.journal._flow`) on psycopg connections.

:func:`run` (``psycopg.Connection``) and :func:`arun` (``psycopg.AsyncConnection``) drive
the very same flows, so ``PostgresJournal`` and ``AsyncPostgresJournal`` cannot drift apart:
the split the Router makes between its decision core and its two drivers.
"""

from __future__ import annotations

from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from payfallback.journal._flow import Conflict, Flow, Query, Result, Row, Rows, one, rows, throw

__all__ = ["Flow", "Query", "Result", "Row", "arun", "one", "rows", "run"]

T = TypeVar("T")

#: Constraints a flow may react to (see :class:`Conflict`); any other error stays psycopg's.
_CONFLICTS = frozenset({"refunds_key_once"})


def _conflict(exc: psycopg.Error) -> Conflict | None:
    if isinstance(exc, pg_errors.IntegrityError) and exc.diag.constraint_name in _CONFLICTS:
        return Conflict(exc.diag.constraint_name)
    return None


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
                    result = Rows(
                        cur.fetchall() if cur.description is not None else [], cur.rowcount
                    )
                except psycopg.Error as exc:
                    query = throw(flow, exc, _conflict(exc))
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
                    result = Rows(
                        await cur.fetchall() if cur.description is not None else [],
                        cur.rowcount,
                    )
                except psycopg.Error as exc:
                    query = throw(flow, exc, _conflict(exc))
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
