"""The circuit breaker for one (provider, method), and the registry that hands them out."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from payfallback._clock import Clock, SystemClock

from ._settings import BreakerPolicy, BreakerSettings, MaintenanceWindow, maintenance_until
from ._states import Gate, shown_state, state_of
from ._store import BreakerState, MemoryStateStore, StateStore, StoreView
from ._window import SlidingWindow, WindowStats, trip_reason

__all__ = [
    "Admission",
    "BreakerRegistry",
    "BreakerSnapshot",
    "CircuitBreaker",
    "TransitionListener",
]

#: ``on_transition(name, fields)``: name is ``breaker.opened``, ``breaker.half_opened`` or
#: ``breaker.closed``; fields always hold ``provider`` and ``method``.
TransitionListener = Callable[[str, dict[str, object]], None]

_log = logging.getLogger("payfallback.breaker")

#: Buckets per (shortest) window: rates are exact to within 1/60 of the window span.
_BUCKETS = 60

PROBE_LIMIT_REACHED = "half-open probe limit reached"

#: Longest a breaker goes without reading the wall clock, in seconds of monotonic time.
_RECHECK = 1.0
#: How much earlier than a peak or maintenance edge the settings are looked at again.
_EARLY = 1e-6
_INF = math.inf
_CLOSED = BreakerState.CLOSED
#: Whether a success may be counted without the lock: only where the GIL makes one step of a
#: C counter atomic (a free-threaded build counts every call under the lock).
_LOCK_FREE: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to ``admit()``; pass it back to ``record()`` (or ``release()``) exactly once.

    Admissions are immutable: while a breaker is closed, ``admit()`` answers every call with
    the same one (until the settings in force change).

    ``settings`` are the settings in force when the call was admitted: the Router takes its
    connect and read timeouts from them, and ``record()`` judges slowness by them.
    """

    allowed: bool
    #: Why the call was denied (``None`` when allowed).
    reason: str | None
    #: Whether this call is a half-open probe: its outcome decides whether the breaker closes.
    probe: bool
    settings: BreakerSettings
    #: The ``"{provider}:{method}"`` of the breaker that answered.
    key: str = ""
    #: The probe's slot in the state store (opaque).
    lease: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker at one moment, for ``Router.available()``, ``payfallback status`` and metrics."""

    provider: str
    method: str
    state: BreakerState
    failure_rate: float
    slow_rate: float
    #: Calls in this process's window under the settings in force now.
    calls: int
    #: When an OPEN breaker starts letting probes through (``None`` unless OPEN).
    open_until: datetime | None
    trips: int
    #: Why it last opened (kept while open or half-open).
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _InForce:
    """What a breaker answers from until ``until`` on its monotonic clock: the settings in
    force, the admission every ordinary call gets while closed, and the denial while a
    maintenance window is on (``None`` outside one). Replaced whole, never changed."""

    until: float
    settings: BreakerSettings
    allowed: Admission
    maintenance: Admission | None
    #: ``settings.slow_call_duration``, one attribute nearer.
    slow_after: float
    #: The answer to admit() while closed: ``maintenance`` if set, else ``allowed``.
    closed: Admission


class CircuitBreaker:
    """A breaker for one (provider, method): ``admit()`` before the call, ``record()`` after.

    It knows only failure, success and slowness. The caller decides what a failure is and calls
    ``record(failure=True)`` for provider failures only: a decline is a provider that answered,
    so it is recorded as ``failure=False`` and never moves the breaker.

    Thread-safe. Its lock is held only to read and update local state (the window, the last
    view); no lock is held between ``admit()`` and ``record()``, where the provider call runs,
    nor during a state-store call, nor while listeners run.

    The happy path is a few comparisons. The settings and maintenance in force are worked out
    from the wall clock once and kept until the next peak or maintenance edge (re-read at least
    every second); ``admit()`` on a closed breaker compares the store's view with the last one
    by identity and hands out one ready ``Admission``; ``record()`` of a success, while the
    window holds nothing but successes, adds it with one atomic counter step, without the lock.
    The window keeps running totals, so a full window costs what an empty one does.
    """

    def __init__(
        self,
        provider: str,
        method: str,
        *,
        policy: BreakerPolicy,
        clock: Clock,
        store: StateStore,
        maintenance: Iterable[MaintenanceWindow] = (),
        on_transition: TransitionListener | None = None,
    ) -> None:
        if not provider or not method or ":" in provider:
            raise ValueError(
                f"a breaker needs a provider name without ':' and a method, "
                f"got provider={provider!r}, method={method!r}"
            )
        self.provider, self.method = provider, str(method)
        self.key = f"{provider}:{self.method}"
        self._policy, self._clock, self._store = policy, clock, store
        self._maintenance = tuple(w for w in maintenance if w.provider == provider)
        self._on_transition = on_transition
        # The clock is read through one bound callable; the system clock's is time.monotonic
        # itself, which saves a Python call on each admit() and record().
        self._monotonic: Callable[[], float] = (
            time.monotonic if type(clock) is SystemClock else clock.monotonic
        )
        spans = [s.window_seconds for s in policy.all_settings]
        self._lock = threading.Lock()
        self._window = SlidingWindow(resolution=min(spans) / _BUCKETS, retention=max(spans))
        self._hard_run: deque[float] = deque()  # times of hard failures since the last success
        self._seen = StoreView()
        #: ``_seen`` while it shows CLOSED (else ``None``): admit()'s one comparison.
        self._closed_view: StoreView | None = self._seen
        #: Until when (monotonic) a success may be counted without the lock: the end of the
        #: newest bucket while the breaker is closed with nothing but successes in its span and
        #: no hard failure pending; ``-inf`` otherwise. Set under the lock by ``_settle()``.
        self._quiet_until = -math.inf
        self._tick = self._window.tick
        # Expired from the start: the first call reads the wall clock and fills it in.
        allowed = self._allow(policy.normal)
        self._now = _InForce(
            until=-math.inf,
            settings=policy.normal,
            allowed=allowed,
            maintenance=None,
            slow_after=policy.normal.slow_call_duration,
            closed=allowed,
        )
        # The denial last given while open, for the view and settings it was made for.
        self._shut: tuple[StoreView, BreakerSettings, Admission] | None = None

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.key} {self.state}>"

    @property
    def state(self) -> BreakerState:
        """CLOSED, OPEN or HALF_OPEN (an OPEN breaker whose time is up reads HALF_OPEN)."""
        view = self._observe(self._store.view(self.key))
        return shown_state(view, self._monotonic())

    def admit(self) -> Admission:
        """Whether a call may go to the provider now; takes a probe slot when half-open."""
        now = self._monotonic()
        in_force = self._now
        if now >= in_force.until:
            in_force = self._refresh(now)
        view = self._store.view(self.key)
        # The store hands out the same view object until its state changes.
        if view is self._closed_view:
            return in_force.closed
        if in_force.maintenance is not None:
            return in_force.maintenance
        if view is not self._seen:
            view = self._observe(view)
            if view.state is _CLOSED:
                return in_force.allowed
        return self._admit_otherwise(view, in_force.settings, now)

    def bypass(self) -> Admission:
        """An admission that skips the gate, for calls that must be made whatever the state
        (status inquiries, voids, refunds owed). It takes no probe slot, and its outcome counts
        in the window only while the breaker is closed, like any ordinary call."""
        now = self._monotonic()
        in_force = self._now
        if now >= in_force.until:
            in_force = self._refresh(now)
        return in_force.allowed

    def record(
        self, admission: Admission, *, duration: float, failure: bool, hard: bool = False
    ) -> None:
        """Record how an admitted call went.

        ``failure`` is a *provider* failure (unavailable, unknown outcome, configuration error),
        never a decline. ``hard`` marks a failure that proves the provider is down (connection
        refused, DNS failure): a run of them opens the breaker before ``minimum_calls``. The call
        is slow if ``duration`` reached the admission's ``slow_call_duration``.
        """
        in_force = self._now
        if (
            admission is in_force.allowed
            and not failure
            and not hard
            and duration.__class__ is float
            and 0.0 <= duration < in_force.slow_after
        ):
            # The common case: an ordinary call, admitted under the settings in force, that
            # succeeded in time. While the breaker is closed with nothing but successes in its
            # window, it cannot trip anything: the window counts it without the lock. It is
            # counted against the state this breaker saw last (at the latest when the call was
            # admitted); a change made elsewhere meanwhile clears the window once it is seen.
            now = self._monotonic()
            if now < self._quiet_until:
                self._tick()
                return
        else:
            now = None
        self._record(admission, duration, failure, hard, now)

    def release(self, admission: Admission) -> None:
        """Give back an admission whose call was never made (frees a probe slot at once)."""
        self._check(admission)
        if admission.lease is not None:
            self._observe(self._store.release_probe(self.key, admission.lease))

    def is_available(self) -> tuple[bool, str | None]:
        """What ``admit()`` would answer now, without taking a probe slot."""
        now = self._monotonic()
        in_force = self._now
        if now >= in_force.until:
            in_force = self._refresh(now)
        if in_force.maintenance is not None:
            return False, in_force.maintenance.reason
        view = self._observe(self._store.view(self.key))
        if state_of(view).gate(view, now) is Gate.SHUT:
            return False, self._open_reason(view)
        if (
            view.state is BreakerState.HALF_OPEN
            and view.probes >= in_force.settings.half_open_probes
        ):
            return False, PROBE_LIMIT_REACHED
        return True, None

    def snapshot(self) -> BreakerSnapshot:
        now = self._monotonic()
        in_force = self._now
        if now >= in_force.until:
            in_force = self._refresh(now)
        view = self._observe(self._store.view(self.key))
        with self._lock:
            stats = self._window.stats(now, in_force.settings.window_seconds)
        state = shown_state(view, now)
        open_until = view.open_until if state is BreakerState.OPEN else None
        return BreakerSnapshot(
            provider=self.provider,
            method=self.method,
            state=state,
            failure_rate=stats.failure_rate,
            slow_rate=stats.slow_rate,
            calls=stats.calls,
            open_until=self._wall(open_until) if open_until is not None else None,
            trips=view.trips,
            reason=view.reason if view.state is not BreakerState.CLOSED else None,
        )

    def reset(self) -> None:
        """Close the breaker now and forget this process's window (an operator's action)."""
        self._observe(self._store.close(self.key))
        with self._lock:
            self._window.clear()
            self._hard_run.clear()
            self._quiet_until = -math.inf

    # -- internals ---------------------------------------------------------------------------

    def _refresh(self, now: float) -> _InForce:
        """Read the wall clock: the settings and maintenance in force, and until when.

        The answer holds until the next peak or maintenance edge, translated onto the
        monotonic clock, or ``_RECHECK`` seconds, whichever comes first, so a wall clock that
        was stepped (or a simulated one sent back) is noticed within that.
        """
        wall = self._clock.now()
        settings, until = self._policy.settings_until(wall)
        window, edge = maintenance_until(self._maintenance, self.provider, wall)
        if edge is not None and (until is None or edge < until):
            until = edge
        ahead = _RECHECK
        if until is not None:
            # A hair early, so that float rounding never lets a call past the edge.
            ahead = min(ahead, (until - wall).total_seconds() - _EARLY)
        old = self._now
        allowed = old.allowed if old.settings is settings else self._allow(settings)
        denied = None
        if window is not None:
            end = window.end.isoformat(timespec="minutes")
            reason = f"maintenance until {end} ({window.reason})"
            denied = old.maintenance
            if denied is None or denied.reason != reason or denied.settings is not settings:
                denied = self._deny(reason, settings)
        in_force = self._now = _InForce(
            until=now + ahead,
            settings=settings,
            allowed=allowed,
            maintenance=denied,
            slow_after=settings.slow_call_duration,
            closed=allowed if denied is None else denied,
        )
        return in_force

    def _admit_otherwise(self, view: StoreView, settings: BreakerSettings, now: float) -> Admission:
        """``admit()`` for a breaker that is not closed: deny, or try for a probe slot."""
        gate = state_of(view).gate(view, now)
        if gate is Gate.SHUT:
            shut = self._shut
            if shut is not None and shut[0] is view and shut[1] is settings:
                return shut[2]
            denied = self._deny(self._open_reason(view), settings)
            self._shut = (view, settings, denied)
            return denied
        if gate is Gate.PASS:
            return self._allow(settings)
        grant = self._store.acquire_probe(
            self.key, limit=settings.half_open_probes, ttl=settings.probe_ttl
        )
        view = self._observe(grant.view)
        if grant.lease is not None:
            return Admission(
                allowed=True,
                reason=None,
                probe=True,
                settings=settings,
                key=self.key,
                lease=grant.lease,
            )
        if view.state is BreakerState.CLOSED:  # closed meanwhile, by a probe elsewhere
            return self._allow(settings)
        if view.state is BreakerState.OPEN:  # a probe elsewhere failed meanwhile
            return self._deny(self._open_reason(view), settings)
        return self._deny(PROBE_LIMIT_REACHED, settings)

    def _check(self, admission: Admission) -> None:
        if admission.key != self.key:
            raise ValueError(
                f"this admission came from breaker {admission.key!r}, not {self.key!r}"
            )
        if not admission.allowed:
            raise ValueError(f"a denied admission has no call to record ({admission.reason})")

    def _record(
        self,
        admission: Admission,
        duration: float,
        failure: bool,
        hard: bool,
        now: float | None,
    ) -> None:
        """``record()`` for every other case: checks its arguments, counts failures and slow
        calls, gives probes their verdict."""
        self._check(admission)
        if hard and not failure:
            raise ValueError("hard=True marks a kind of failure: pass failure=True with it")
        if isinstance(duration, bool) or not math.isfinite(duration) or duration < 0:
            raise ValueError(f"duration must be seconds >= 0, got {duration!r}")
        if now is None:
            now = self._monotonic()
        in_force = self._now
        if now >= in_force.until:
            in_force = self._refresh(now)
        settings = in_force.settings
        slow = duration >= admission.settings.slow_call_duration
        if admission.probe:
            self._record_probe(admission, settings, failure=failure, slow=slow, duration=duration)
            return
        fresh = self._store.view(self.key)
        events: list[tuple[str, dict[str, object]]] = []
        reason = None
        with self._lock:
            if fresh is not self._seen:
                events = self._take(fresh)
            if state_of(self._seen).counts_calls:
                reason = self._count(now, settings, failure=failure, slow=slow, hard=hard)
            self._settle()
        if events:
            self._emit(events)
        if reason is not None:
            self._trip(settings, lease=None, reason=reason)

    def _count(
        self, now: float, settings: BreakerSettings, *, failure: bool, slow: bool, hard: bool
    ) -> str | None:
        """Add one outcome to the window and say why to trip, if so (call with the lock held)."""
        self._window.add(now, failure=failure, slow=slow)
        run = self._hard_run
        if hard:
            run.append(now)
        elif not failure:
            run.clear()
        return self._rules(now, settings)

    def _settle(self) -> None:
        """Say until when successes may be counted without the lock (call with it held)."""
        window = self._window
        quiet = (
            _LOCK_FREE
            and self._seen.state is _CLOSED
            and not (window.failures or window.slow or self._hard_run)
        )
        self._quiet_until = window.next_bucket_at if quiet else -math.inf

    def _rules(self, now: float, settings: BreakerSettings) -> str | None:
        """Why the breaker must open now, if it must (call with the lock held).

        O(1): the window keeps running totals over the span in force.
        """
        window = self._window
        if window.span != settings.window_seconds:  # peak and normal settings differ
            window.focus(now, settings.window_seconds)
        run = self._hard_run
        # Soft failures neither extend nor break the run; hard failures older than the window
        # no longer prove anything about now.
        while run and (
            run[0] <= now - settings.window_seconds or len(run) > settings.hard_failure_run
        ):
            run.popleft()
        if not (run or window.failures or window.slow):
            return None  # nothing but successes: no rule can trip (every threshold is > 0)
        stats = WindowStats(calls=window.calls, failures=window.failures, slow=window.slow)
        return trip_reason(stats, len(run), settings)

    def _record_probe(
        self,
        admission: Admission,
        settings: BreakerSettings,
        *,
        failure: bool,
        slow: bool,
        duration: float,
    ) -> None:
        assert admission.lease is not None  # admit() gives every probe a lease
        if failure or slow:
            limit = admission.settings.slow_call_duration
            reason = "probe failed" if failure else f"probe slow ({duration:.1f} s >= {limit:g} s)"
            self._trip(settings, lease=admission.lease, reason=reason)
        else:
            self._observe(
                self._store.probe_succeeded(
                    self.key, admission.lease, needed=settings.half_open_probes
                )
            )

    def _trip(self, settings: BreakerSettings, *, lease: str | None, reason: str) -> None:
        self._observe(
            self._store.trip(
                self.key,
                lease=lease,
                base=settings.open_seconds,
                growth=settings.open_growth,
                cap=settings.max_open_seconds,
                memory=settings.trip_memory_seconds,
                reason=reason,
            )
        )

    def _observe(self, view: StoreView) -> StoreView:
        """Take in a view from the store, announce any transition, return the newest view."""
        with self._lock:
            events = self._take(view)
            newest = self._seen
        self._emit(events)
        return newest

    def _take(self, view: StoreView) -> list[tuple[str, dict[str, object]]]:
        """Adopt ``view`` if it is not older than the last one; list the transitions it shows.

        Called with the lock held. Comparing versions makes each transition announced once per
        breaker even when replies from racing threads arrive out of order.
        """
        old = self._seen
        if view.version < old.version:
            return []
        self._seen = view
        self._closed_view = view if view.state is _CLOSED else None
        if view.version == old.version:
            return []
        base: dict[str, object] = {"provider": self.provider, "method": self.method}
        if view.state is not old.state:
            # The window describes the current closed period only: what was seen before a
            # trip must not trip the breaker again the moment it closes.
            self._window.clear()
            self._hard_run.clear()
            self._quiet_until = -math.inf
        opened = view.state is BreakerState.OPEN and (
            old.state is not BreakerState.OPEN or view.trips != old.trips
        )
        if opened:
            fields = base | {
                "reason": view.reason,
                "open_seconds": view.open_seconds,
                "trips": view.trips,
            }
            return [("breaker.opened", fields)]
        if view.state is BreakerState.HALF_OPEN and old.state is not BreakerState.HALF_OPEN:
            return [("breaker.half_opened", base | {"trips": view.trips})]
        if view.state is BreakerState.CLOSED and old.state is not BreakerState.CLOSED:
            return [("breaker.closed", base | {"trips": view.trips})]
        return []

    def _emit(self, events: list[tuple[str, dict[str, object]]]) -> None:
        if self._on_transition is None:
            return
        for name, fields in events:
            try:
                self._on_transition(name, fields)
            except Exception:
                # A metrics hook must never fail a payment: record() runs after money moved.
                _log.exception("breaker listener failed on %s for %s", name, self.key)

    def _open_reason(self, view: StoreView) -> str:
        until = "a probe is let through"
        if view.open_until is not None:
            until = self._wall(view.open_until).isoformat(timespec="seconds")
        return f"open until {until}" + (f" ({view.reason})" if view.reason else "")

    def _wall(self, monotonic: float) -> datetime:
        return self._clock.now() + timedelta(seconds=monotonic - self._clock.monotonic())

    def _allow(self, settings: BreakerSettings) -> Admission:
        return Admission(allowed=True, reason=None, probe=False, settings=settings, key=self.key)

    def _deny(self, reason: str, settings: BreakerSettings) -> Admission:
        return Admission(allowed=False, reason=reason, probe=False, settings=settings, key=self.key)


class BreakerRegistry:
    """All breakers of one Router, one per (provider, method), created on first use.

    The composition root for breakers: one policy, one clock, one state store, the announced
    maintenance windows and one transition listener, shared by every breaker it hands out.
    """

    def __init__(
        self,
        *,
        policy: BreakerPolicy | None = None,
        clock: Clock | None = None,
        store: StateStore | None = None,
        maintenance: Iterable[MaintenanceWindow] = (),
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.policy = policy if policy is not None else BreakerPolicy.default()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.store: StateStore = store if store is not None else MemoryStateStore(self.clock)
        self.maintenance = tuple(maintenance)
        self._on_transition = on_transition
        self._lock = threading.Lock()
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

    def get(self, provider: str, method: str) -> CircuitBreaker:
        """The breaker for (provider, method): the same object on every call."""
        name = (provider, str(method))
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._breakers[name] = CircuitBreaker(
                    provider,
                    method,
                    policy=self.policy,
                    clock=self.clock,
                    store=self.store,
                    maintenance=self.maintenance,
                    on_transition=self._on_transition,
                )
            return breaker

    def is_available(self, provider: str, method: str) -> tuple[bool, str | None]:
        """Like ``admit()`` on that breaker, but consumes nothing (for ``Router.available()``)."""
        return self.get(provider, method).is_available()

    def settings_now(self) -> BreakerSettings:
        """The settings in force now (peak or normal)."""
        return self.policy.settings_at(self.clock.now())

    def snapshot(self) -> list[BreakerSnapshot]:
        """Every breaker created so far, sorted by provider then method."""
        with self._lock:
            breakers = sorted(self._breakers.items())
        return [breaker.snapshot() for _, breaker in breakers]
