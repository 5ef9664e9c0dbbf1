"""The three breaker states, each a small class that says what it lets through and how it is left.

The transitions themselves are atomic store operations (``StateStore.trip``,
``acquire_probe``, ``probe_succeeded``); a state only answers, from a view and the time, what
``admit()`` should do next.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from ._store import BreakerState, StoreView

__all__ = ["Closed", "Gate", "HalfOpen", "Open", "shown_state", "state_of"]


class Gate(Enum):
    """What ``admit()`` does next."""

    PASS = "pass"  # admit as an ordinary call
    PROBE = "probe"  # try to take a half-open probe slot
    SHUT = "shut"  # deny: still open


class _State(Protocol):
    @property
    def name(self) -> BreakerState: ...

    #: Whether outcomes of ordinary (non-probe) calls feed the sliding window.
    @property
    def counts_calls(self) -> bool: ...

    def gate(self, view: StoreView, now: float) -> Gate: ...


class Closed:
    """Every call goes through, and its outcome lands in the local sliding window.

    Leaves for Open when a recorded outcome leaves the window with a failure rate or slow-call
    rate at or past its threshold over at least ``minimum_calls`` calls, or completes a run of
    ``hard_failure_run`` hard failures with no success between them (within the window).
    """

    name = BreakerState.CLOSED
    counts_calls = True

    def gate(self, view: StoreView, now: float) -> Gate:
        return Gate.PASS


class Open:
    """Every call is denied with "open until …" while the open time runs.

    Leaves for HalfOpen once ``open_until`` has passed and an ``admit()`` takes the first probe
    slot. Outcomes of calls admitted before the breaker opened are ignored.
    """

    name = BreakerState.OPEN
    counts_calls = False

    def gate(self, view: StoreView, now: float) -> Gate:
        if view.open_until is not None and now < view.open_until:
            return Gate.SHUT
        return Gate.PROBE


class HalfOpen:
    """At most ``half_open_probes`` calls at a time go through as probes; the rest are denied.

    Leaves for Closed once ``half_open_probes`` probes have succeeded, and for Open, with a longer
    open time, as soon as one probe fails or is slow. A probe that is never recorded gives its
    slot back after ``connect_timeout + read_timeout``, so a lost probe cannot wedge it.
    """

    name = BreakerState.HALF_OPEN
    counts_calls = False

    def gate(self, view: StoreView, now: float) -> Gate:
        return Gate.PROBE


_STATES: dict[BreakerState, _State] = {s.name: s for s in (Closed(), Open(), HalfOpen())}


def state_of(view: StoreView) -> _State:
    return _STATES[view.state]


def shown_state(view: StoreView, now: float) -> BreakerState:
    """The state to report: an Open breaker whose time has run out already admits probes."""
    if view.state is BreakerState.OPEN and state_of(view).gate(view, now) is Gate.PROBE:
        return BreakerState.HALF_OPEN
    return view.state
