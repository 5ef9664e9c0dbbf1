"""The circuit breaker for one (provider, method), and the registry that hands them out."""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from payfallback._clock import Clock, SystemClock

from ._settings import BreakerPolicy, BreakerSettings, MaintenanceWindow, active_maintenance
from ._states import Gate, shown_state, state_of
from ._store import BreakerState, MemoryStateStore, StateStore, StoreView
from ._window import SlidingWindow, trip_reason

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


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to ``admit()``; pass it back to ``record()`` (or ``release()``) exactly once.

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


class CircuitBreaker:
    """A breaker for one (provider, method): ``admit()`` before the call, ``record()`` after.

    It knows only failure, success and slowness. The caller decides what a failure is and calls
    ``record(failure=True)`` for provider failures only: a decline is a provider that answered,
    so it is recorded as ``failure=False`` and never moves the breaker.

    Thread-safe. Its lock is held only to read and update local state (the window, the last
    view); no lock is held between ``admit()`` and ``record()``, where the provider call runs,
    nor during a state-store call, nor while listeners run.
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
        spans = [s.window_seconds for s in policy.all_settings]
        self._lock = threading.Lock()
        self._window = SlidingWindow(resolution=min(spans) / _BUCKETS, retention=max(spans))
        self._hard_run: deque[float] = deque()  # times of hard failures since the last success
        self._seen = StoreView()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.key} {self.state}>"

    @property
    def state(self) -> BreakerState:
        """CLOSED, OPEN or HALF_OPEN (an OPEN breaker whose time is up reads HALF_OPEN)."""
        view = self._observe(self._store.view(self.key))
        return shown_state(view, self._clock.monotonic())

    def admit(self) -> Admission:
        """Whether a call may go to the provider now; takes a probe slot when half-open."""
        settings, gate, denied = self._look()
        if denied is not None:
            return self._deny(denied, settings)
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

    def bypass(self) -> Admission:
        """An admission that skips the gate, for calls that must be made whatever the state
        (status inquiries, voids, refunds owed). It takes no probe slot, and its outcome counts
        in the window only while the breaker is closed, like any ordinary call."""
        return self._allow(self._policy.settings_at(self._clock.now()))

    def record(
        self, admission: Admission, *, duration: float, failure: bool, hard: bool = False
    ) -> None:
        """Record how an admitted call went.

        ``failure`` is a *provider* failure (unavailable, unknown outcome, configuration error),
        never a decline. ``hard`` marks a failure that proves the provider is down (connection
        refused, DNS failure): a run of them opens the breaker before ``minimum_calls``. The call
        is slow if ``duration`` reached the admission's ``slow_call_duration``.
        """
        self._check(admission)
        if hard and not failure:
            raise ValueError("hard=True marks a kind of failure: pass failure=True with it")
        if isinstance(duration, bool) or not math.isfinite(duration) or duration < 0:
            raise ValueError(f"duration must be seconds >= 0, got {duration!r}")
        now = self._clock.monotonic()
        settings = self._policy.settings_at(self._clock.now())
        slow = duration >= admission.settings.slow_call_duration
        if admission.probe:
            self._record_probe(admission, settings, failure=failure, slow=slow, duration=duration)
            return
        fresh = self._store.view(self.key)
        with self._lock:
            events = self._take(fresh)
            reason = None
            if state_of(self._seen).counts_calls:
                reason = self._count(now, settings, failure=failure, slow=slow, hard=hard)
        self._emit(events)
        if reason is not None:
            self._trip(settings, lease=None, reason=reason)

    def release(self, admission: Admission) -> None:
        """Give back an admission whose call was never made (frees a probe slot at once)."""
        self._check(admission)
        if admission.lease is not None:
            self._observe(self._store.release_probe(self.key, admission.lease))

    def is_available(self) -> tuple[bool, str | None]:
        """What ``admit()`` would answer now, without taking a probe slot."""
        settings, _, denied = self._look()
        if denied is not None:
            return False, denied
        view = self._seen
        if view.state is BreakerState.HALF_OPEN and view.probes >= settings.half_open_probes:
            return False, PROBE_LIMIT_REACHED
        return True, None

    def snapshot(self) -> BreakerSnapshot:
        settings = self._policy.settings_at(self._clock.now())
        view = self._observe(self._store.view(self.key))
        now = self._clock.monotonic()
        with self._lock:
            stats = self._window.stats(now, settings.window_seconds)
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

    # -- internals ---------------------------------------------------------------------------

    def _look(self) -> tuple[BreakerSettings, Gate, str | None]:
        """The settings in force, what the gate says, and why it is shut (maintenance first)."""
        settings = self._policy.settings_at(self._clock.now())
        window = active_maintenance(self._maintenance, self.provider, self._clock.now())
        if window is not None:
            until = window.end.isoformat(timespec="minutes")
            return settings, Gate.SHUT, f"maintenance until {until} ({window.reason})"
        view = self._observe(self._store.view(self.key))
        gate = state_of(view).gate(view, self._clock.monotonic())
        return settings, gate, self._open_reason(view) if gate is Gate.SHUT else None

    def _check(self, admission: Admission) -> None:
        if admission.key != self.key:
            raise ValueError(
                f"this admission came from breaker {admission.key!r}, not {self.key!r}"
            )
        if not admission.allowed:
            raise ValueError(f"a denied admission has no call to record ({admission.reason})")

    def _count(
        self, now: float, settings: BreakerSettings, *, failure: bool, slow: bool, hard: bool
    ) -> str | None:
        """Add one outcome to the window and say why to trip, if so (call with the lock held)."""
        self._window.add(now, failure=failure, slow=slow)
        if hard:
            self._hard_run.append(now)
        elif not failure:
            self._hard_run.clear()
        # Soft failures neither extend nor break the run; hard failures older than the window
        # no longer prove anything about now.
        while self._hard_run and (
            self._hard_run[0] <= now - settings.window_seconds
            or len(self._hard_run) > settings.hard_failure_run
        ):
            self._hard_run.popleft()
        return trip_reason(
            self._window.stats(now, settings.window_seconds), len(self._hard_run), settings
        )

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
        if view.version == old.version:
            return []
        base: dict[str, object] = {"provider": self.provider, "method": self.method}
        if view.state is not old.state:
            # The window describes the current closed period only: what was seen before a
            # trip must not trip the breaker again the moment it closes.
            self._window.clear()
            self._hard_run.clear()
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
