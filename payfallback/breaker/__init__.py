"""Circuit breakers, one per (provider, method).

The model, in short:

- **Closed** admits every call. Each outcome lands in a time-based sliding window kept by this
  process. The breaker opens when, over at least ``minimum_calls`` calls in the window, the
  failure rate or the slow-call rate reaches its threshold, or at once after
  ``hard_failure_run`` hard failures (connection refused) with no success between them, so a
  shop that sees a few payments a minute still trips fast.
- **Open** denies every call until its open time runs out. The open time grows by
  ``open_growth`` on each trip in a row, up to ``max_open_seconds``, and starts over once the
  breaker has stayed closed for ``trip_memory_seconds``.
- **Half-open** lets through at most ``half_open_probes`` probes at a time. It closes once that
  many probes have succeeded and opens again, for longer, on a failed or slow probe. A probe
  that is never recorded gives its slot back after ``connect_timeout + read_timeout``.

The breaker only knows failure, success and slowness: the caller records
``failure=True`` for provider failures only, so a decline never moves it. Time comes from an
injected clock. Which settings are in force follows a :class:`BreakerPolicy`: stricter
thresholds and shorter timeouts inside peak windows (for instance Friday to Sunday
17:00-21:00 Asia/Seoul); a provider's :class:`MaintenanceWindow` denies it outright, with
the reason.

The shared part of the state (open or not, until when, trips, probe slots) lives behind the
:class:`StateStore` protocol, in memory by default. Each transition is one atomic store step,
so a Redis store can make each one Lua script on the server's clock, and admission on the happy
path reads only a locally cached view. No lock is held across a provider call, which happens
between ``admit()`` and ``record()``::

    registry = BreakerRegistry(clock=clock)
    breaker = registry.get("kakaopay", "kakaopay")
    admission = breaker.admit()
    if admission.allowed:
        ...  # call the provider with admission.settings.connect_timeout / read_timeout
        breaker.record(admission, duration=elapsed, failure=provider_failed, hard=refused)
"""

from ._breaker import (
    Admission,
    BreakerRegistry,
    BreakerSnapshot,
    CircuitBreaker,
    TransitionListener,
)
from ._settings import BreakerPolicy, BreakerSettings, MaintenanceWindow, PeakWindow
from ._store import BreakerState, MemoryStateStore, ProbeGrant, StateStore, StoreView

__all__ = [
    "Admission",
    "BreakerPolicy",
    "BreakerRegistry",
    "BreakerSettings",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "MaintenanceWindow",
    "MemoryStateStore",
    "PeakWindow",
    "ProbeGrant",
    "StateStore",
    "StoreView",
    "TransitionListener",
]
