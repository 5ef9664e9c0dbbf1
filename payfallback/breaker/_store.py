"""Where the shared part of a breaker lives: the ``StateStore`` protocol and its in-memory store.

The split follows what must be shared and what must be fast. Each process keeps its own sliding
window (a breaker judges what *it* saw); the store keeps, per key ``"{provider}:{method}"``, the
state, the open deadline, the trip count and the half-open probe leases, so that several
processes (or terminals) can share "Kakao Pay is down" and one probe budget.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from payfallback._clock import Clock

from ._window import open_duration

__all__ = ["BreakerState", "MemoryStateStore", "ProbeGrant", "StateStore", "StoreView"]


class BreakerState(StrEnum):
    """Where a breaker stands (the classes in ``_states`` say how each one is left)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class StoreView:
    """The shared state of one breaker, as its store last knew it.

    ``open_until`` is on the *caller's* monotonic clock (``Clock.monotonic()``), so admission
    compares it with a local reading and never asks the store what time it is. ``version`` goes
    up on every change, so a reader can tell a newer view from an older one that arrived late.
    """

    state: BreakerState = BreakerState.CLOSED
    open_until: float | None = None
    #: Length of the current (or last) open period, in seconds.
    open_seconds: float = 0.0
    #: Trips in a row (reset once the breaker has stayed closed for ``trip_memory_seconds``).
    trips: int = 0
    #: Half-open probe leases currently held.
    probes: int = 0
    #: Probes that succeeded in the current half-open period.
    successes: int = 0
    #: Why the breaker last opened.
    reason: str | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class ProbeGrant:
    """The answer to ``acquire_probe``: a lease token if a probe slot was taken, and the view."""

    lease: str | None
    view: StoreView


class StateStore(Protocol):
    """Shared breaker state, one entry per key, every change one atomic step.

    Contract for every implementation:

    - ``view`` never blocks: it answers from memory. A networked store (Redis) keeps a local
      cache, refreshed in the background and by the replies to the calls below, so admission on
      the happy path never makes a round trip.
    - Every other method is a single atomic step that decides by the *store's* clock and returns
      the view after the step. With Redis each is one Lua script reading ``redis.call('TIME')``:
      the entry is a hash (``state``, ``open_until``, ``open_seconds``, ``trips``,
      ``closed_at``, ``successes``, ``reason``, ``version``) plus a sorted set of probe leases
      scored by expiry; the reply carries the server time so the client can translate
      ``open_until`` onto its own monotonic clock.
    - A store that cannot reach its backend answers from a local fallback and reports it
      (an event), rather than raising: a payment never fails because the store did.

    Who may open the breaker is part of the contract, so that racing processes cannot trip it
    twice: a verdict from closed state (``lease=None``) opens it only while it is CLOSED, and a
    failed probe opens it only while it is HALF_OPEN and that probe's lease is still held.
    """

    def view(self, key: str) -> StoreView:
        """The last known state of ``key`` (CLOSED with ``version=0`` if never seen)."""
        ...

    def trip(
        self,
        key: str,
        *,
        lease: str | None,
        base: float,
        growth: float,
        cap: float,
        memory: float,
        reason: str,
    ) -> StoreView:
        """Open ``key``, if allowed (see the class docstring); otherwise change nothing.

        ``trips`` goes up by one, or starts over at one if the breaker had stayed closed for
        ``memory`` seconds; ``open_until`` becomes now + ``min(cap, base * growth**(trips-1))``.
        Probe leases and successes are dropped.
        """
        ...

    def acquire_probe(self, key: str, *, limit: int, ttl: float) -> ProbeGrant:
        """Take one of ``limit`` half-open probe slots for ``ttl`` seconds, if one is free.

        An OPEN entry whose deadline has passed becomes HALF_OPEN first. Expired leases are
        dropped, which is how a probe that was admitted and never recorded gives its slot back.
        No lease is granted while OPEN before the deadline, or while CLOSED (the caller then
        sees CLOSED in the view and needs no probe).
        """
        ...

    def release_probe(self, key: str, lease: str) -> StoreView:
        """Give back a probe slot whose call was never made; no verdict either way."""
        ...

    def probe_succeeded(self, key: str, lease: str, *, needed: int) -> StoreView:
        """Count a successful probe (only while HALF_OPEN and ``lease`` is held, so a probe
        recorded twice or after its lease expired counts at most once) and release its slot;
        close once ``needed`` probes have succeeded in this half-open period."""
        ...

    def close(self, key: str) -> StoreView:
        """Close ``key`` now, whatever its state (an operator's reset). Keeps ``trips``."""
        ...


@dataclass(slots=True)
class _Entry:
    state: BreakerState = BreakerState.CLOSED
    open_until: float | None = None
    open_seconds: float = 0.0
    trips: int = 0
    closed_at: float | None = None
    successes: int = 0
    reason: str | None = None
    version: int = 0
    leases: dict[str, float] = field(default_factory=dict)
    #: The view of the current version, built on first read and dropped by ``bump()``: a
    #: breaker that gets the same object back knows at once that nothing changed.
    shown: StoreView | None = None

    def view(self) -> StoreView:
        shown = self.shown
        if shown is None:
            shown = self.shown = StoreView(
                state=self.state,
                open_until=self.open_until,
                open_seconds=self.open_seconds,
                trips=self.trips,
                probes=len(self.leases),
                successes=self.successes,
                reason=self.reason,
                version=self.version,
            )
        return shown

    def bump(self) -> None:
        """Mark a change (call after changing any field, with the store's lock held)."""
        self.version += 1
        self.shown = None


class MemoryStateStore:
    """The in-process store: a dict behind one short lock, timed by the injected clock.

    Share one instance between registries to model several processes on one machine.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._tokens = itertools.count(1)

    def view(self, key: str) -> StoreView:
        # Without the lock when no probe lease can have expired: the entry's view is an
        # immutable object replaced as a whole, so a reader racing a change gets the view from
        # just before it or (through the lock) the one after.
        entry = self._entries.get(key)
        if entry is not None and not entry.leases:
            shown = entry.shown
            if shown is not None:
                return shown
        with self._lock:
            return self._entry(key).view()

    def trip(
        self,
        key: str,
        *,
        lease: str | None,
        base: float,
        growth: float,
        cap: float,
        memory: float,
        reason: str,
    ) -> StoreView:
        with self._lock:
            now, entry = self._clock.monotonic(), self._entry(key)
            if lease is None:
                allowed = entry.state is BreakerState.CLOSED
            else:
                allowed = entry.state is BreakerState.HALF_OPEN and lease in entry.leases
            if not allowed:
                return entry.view()
            if (
                entry.state is BreakerState.CLOSED
                and entry.closed_at is not None
                and now - entry.closed_at >= memory
            ):
                entry.trips = 0
            entry.trips += 1
            entry.open_seconds = open_duration(entry.trips, base=base, growth=growth, cap=cap)
            entry.open_until = now + entry.open_seconds
            entry.state, entry.reason = BreakerState.OPEN, reason
            entry.leases.clear()
            entry.successes = 0
            entry.bump()
            return entry.view()

    def acquire_probe(self, key: str, *, limit: int, ttl: float) -> ProbeGrant:
        with self._lock:
            now, entry = self._clock.monotonic(), self._entry(key)
            if entry.state is BreakerState.CLOSED:
                return ProbeGrant(None, entry.view())
            if entry.state is BreakerState.OPEN:
                if entry.open_until is not None and now < entry.open_until:
                    return ProbeGrant(None, entry.view())
                entry.state = BreakerState.HALF_OPEN
                entry.successes = 0
                entry.bump()
            if len(entry.leases) >= limit:
                return ProbeGrant(None, entry.view())
            token = f"probe-{next(self._tokens)}"
            entry.leases[token] = now + ttl
            entry.bump()
            return ProbeGrant(token, entry.view())

    def release_probe(self, key: str, lease: str) -> StoreView:
        with self._lock:
            entry = self._entry(key)
            if entry.leases.pop(lease, None) is not None:
                entry.bump()
            return entry.view()

    def probe_succeeded(self, key: str, lease: str, *, needed: int) -> StoreView:
        with self._lock:
            entry = self._entry(key)
            if entry.state is not BreakerState.HALF_OPEN or lease not in entry.leases:
                return entry.view()
            del entry.leases[lease]
            entry.successes += 1
            entry.bump()
            if entry.successes >= needed:
                self._close(entry)
            return entry.view()

    def close(self, key: str) -> StoreView:
        with self._lock:
            entry = self._entry(key)
            if entry.state is not BreakerState.CLOSED:
                self._close(entry)
            return entry.view()

    def _entry(self, key: str) -> _Entry:
        """The entry for ``key`` with expired probe leases dropped (call with the lock held)."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        if not entry.leases:  # the common case: nothing to expire
            return entry
        now = self._clock.monotonic()
        expired = [token for token, until in entry.leases.items() if until <= now]
        for token in expired:
            del entry.leases[token]
        if expired:
            entry.bump()
        return entry

    def _close(self, entry: _Entry) -> None:
        entry.state = BreakerState.CLOSED
        entry.closed_at = self._clock.monotonic()
        entry.open_until, entry.reason = None, None
        entry.leases.clear()
        entry.successes = 0
        entry.bump()
