"""Flows: the actions a decision flow yields to its driver, and what flows return.

A Router operation is a generator ("flow") that yields I/O *actions* and receives their
results, like httpx's ``Auth.auth_flow`` or tenacity's ``iter()``:

* :class:`Send` — send this request to this provider; the driver answers with a
  :class:`Sent` (the response or the transport error, and how long it took);
* :class:`Sleep` — wait this many seconds;
* :class:`JournalCall` — call this journal method with these arguments (the async driver
  awaits it on an async journal, or runs it in a worker thread); a journal error
  (a :class:`~payfallback.errors.PayfallbackError`) it raises is thrown back into the
  flow. Any other error is the journal's database failing: the driver ends the call there,
  as a crash would (:func:`thrown`).

Both drivers resume flows through :func:`advance`, so they cannot differ in how.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx

from payfallback.errors import JournalUnavailable, OutcomeUnknown, PayfallbackError
from payfallback.events import scrub
from payfallback.models import (
    Method,
)
from payfallback.provider import (
    Provider,
    may_have_left,
)

T = TypeVar("T")

# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    provider: Provider
    request: httpx.Request
    #: Whether the request may move money (a charge, an approval, a cancel, a void), not
    #: only read or prepare (a lookup, a checkout's ready).
    moves_money: bool = True


@dataclass(frozen=True, slots=True)
class Sent:
    result: httpx.Response | httpx.TransportError
    duration: float


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class JournalCall:
    """One journal method, by name, and its arguments. A driver carries it out: the sync
    Router calls it, the AsyncRouter awaits it on an async journal or runs it in a worker
    thread on a sync one."""

    operation: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def call(self, journal: object) -> Any:
        return getattr(journal, self.operation)(*self.args, **self.kwargs)


Action = Send | Sleep | JournalCall
FlowGen = Generator[Action, Any, T]


def ask(operation: str, /, *args: Any, **kwargs: Any) -> FlowGen[Any]:
    """Ask the journal: ``yield from ask("get_order", order_id)``."""
    return (yield JournalCall(operation, args, kwargs))


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A flow's result."""

    value: T


def advance(flow: FlowGen[T], value: Any, error: BaseException | None) -> Action | Done[T]:
    """Step ``flow`` with the answer to its last action (or the error it raised): its next
    action, or :class:`Done` with its result. Both drivers step flows through this one
    function, so they cannot differ in how a flow is resumed."""
    try:
        return flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as stop:
        return Done(stop.value)


def moved_money(action: Send, result: httpx.Response | httpx.TransportError) -> bool:
    """Whether ``action`` may have moved money: a money-moving request that was answered, or
    failed after it may have reached the provider."""
    return action.moves_money and (isinstance(result, httpx.Response) or may_have_left(result))


def journal_failed(exc: Exception, *, sent: bool) -> PayfallbackError:
    """The error a call ends with when the journal's database fails under it (``exc``, not
    one of the journal's own errors): nothing more is sent or written, as after a crash.

    After a request of the call may have moved money (``sent``: :func:`moved_money`), the
    provider may have acted and the journal may not say what it did:
    :class:`OutcomeUnknown`. The attempt stays open in the journal, and ``recover()``
    settles it from the provider's record once the journal works. Before:
    :class:`JournalUnavailable`, nothing was sent."""
    what = scrub(f"{type(exc).__name__}: {exc}")
    if sent:
        return OutcomeUnknown(
            f"the journal failed ({what}) after a request of this call went to the provider: "
            "what the provider did is not journaled; its attempt stays open, and recover() "
            "settles it from the provider's record once the journal works again. Do not "
            "charge the order another way meanwhile"
        )
    return JournalUnavailable(
        f"the journal failed ({what}); nothing was sent, so nothing was charged: take the "
        "payment again once the journal (its disk, its database) works"
    )


def thrown(flow: FlowGen[Any], action: Action, exc: Exception, *, sent: bool) -> Exception:
    """What a driver throws back into ``flow`` for ``exc``, raised carrying out ``action``.
    A journal call's error that is not one of the journal's own is its database failing:
    the call ends there instead, as a crash would, with :func:`journal_failed`'s error."""
    if isinstance(action, JournalCall) and not isinstance(exc, PayfallbackError):
        flow.close()
        raise journal_failed(exc, sent=sent) from exc
    return exc


def pause(seconds: float) -> FlowGen[None]:
    if seconds > 0:
        yield Sleep(seconds)


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    """A provider that can take ``method`` now."""

    provider: str
    method: Method


@dataclass(frozen=True, slots=True)
class InFlight:
    """An attempt another worker (or a process that died) holds until ``lease_until``: its
    request may be at the provider right now, so nothing can be said of it before then."""

    attempt_id: str
    order_id: str
    provider: str
    lease_until: datetime | None


@dataclass(slots=True)
class RecoveryReport:
    """What :meth:`Router.recover` settled and what is still open.

    ``clean`` is True only when nothing is open: no attempt of unknown outcome, no refund
    owed, and no attempt in flight (a lease still live after a crash is *not* clean: the
    killed worker's request may have charged; call ``recover()`` again after
    ``in_flight[i].lease_until``).
    """

    resolved: list[str] = field(default_factory=list)  # attempt ids settled either way
    paid: list[str] = field(default_factory=list)  # attempt ids that turned out paid
    compensations: list[str] = field(default_factory=list)  # refund ids journaled
    refunds_settled: list[str] = field(default_factory=list)
    still_unresolved: list[str] = field(default_factory=list)
    refunds_still_owed: list[str] = field(default_factory=list)
    in_flight: list[InFlight] = field(default_factory=list)
    #: Attempts that had ended failed and turned out charged after all (refund journaled).
    late_charges: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.still_unresolved and not self.refunds_still_owed and not self.in_flight
