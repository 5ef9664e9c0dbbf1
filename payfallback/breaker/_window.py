"""The breaker's arithmetic: a time-based sliding window and the rules that read it.

Pure and lock-free: the caller passes the time in and holds whatever lock it needs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ._settings import BreakerSettings

__all__ = ["SlidingWindow", "WindowStats", "open_duration", "trip_reason"]


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Counts over one span of the window."""

    calls: int = 0
    failures: int = 0
    slow: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        return self.slow / self.calls if self.calls else 0.0


class SlidingWindow:
    """Call outcomes kept in time buckets of ``resolution`` seconds for ``retention`` seconds.

    Buckets rather than one entry per call keep memory bounded at any traffic; the price is that
    a span is measured to within one bucket. The span asked for can change from call to call
    (peak and normal settings may use different windows) as long as it fits in ``retention``.
    """

    def __init__(self, *, resolution: float, retention: float) -> None:
        if resolution <= 0 or retention < resolution:
            raise ValueError("SlidingWindow needs 0 < resolution <= retention")
        self._resolution = resolution
        self._retention = retention
        # [bucket index, calls, failures, slow], oldest first; only buckets that saw a call.
        self._buckets: deque[list[int]] = deque()

    def add(self, now: float, *, failure: bool, slow: bool) -> None:
        index = self._index(now)
        if not self._buckets or self._buckets[-1][0] != index:
            self._buckets.append([index, 0, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += failure
        bucket[3] += slow
        self._drop_older_than(now - self._retention)

    def stats(self, now: float, span: float) -> WindowStats:
        """Counts for the calls in the last ``span`` seconds (bucket-aligned)."""
        first = self._index(now - span) + 1
        calls = failures = slow = 0
        for index, c, f, s in reversed(self._buckets):
            if index < first:
                break
            calls, failures, slow = calls + c, failures + f, slow + s
        return WindowStats(calls=calls, failures=failures, slow=slow)

    def clear(self) -> None:
        self._buckets.clear()

    def _index(self, t: float) -> int:
        return int(t // self._resolution)

    def _drop_older_than(self, t: float) -> None:
        first = self._index(t) + 1
        while self._buckets and self._buckets[0][0] < first:
            self._buckets.popleft()


def trip_reason(stats: WindowStats, hard_run: int, settings: BreakerSettings) -> str | None:
    """Why the breaker must open now, or ``None``.

    A run of hard failures opens it whatever the count, so a shop with a few payments a minute
    still trips fast; the rates count only once the window holds ``minimum_calls`` calls.
    """
    if hard_run >= settings.hard_failure_run:
        return f"{hard_run} hard failures in a row"
    if stats.calls < settings.minimum_calls:
        return None
    if stats.failure_rate >= settings.failure_rate_threshold:
        return (
            f"failure rate {stats.failure_rate:.2f} >= {settings.failure_rate_threshold:.2f}"
            f" over {stats.calls} calls"
        )
    if stats.slow_rate >= settings.slow_call_rate_threshold:
        return (
            f"slow-call rate {stats.slow_rate:.2f} >= {settings.slow_call_rate_threshold:.2f}"
            f" over {stats.calls} calls (slow = {settings.slow_call_duration:g} s or more)"
        )
    return None


def open_duration(trips: int, *, base: float, growth: float, cap: float) -> float:
    """Open time after the ``trips``-th trip in a row: ``base * growth**(trips-1)``, capped."""
    if trips < 1:
        raise ValueError(f"trips counts from 1, got {trips}")
    try:
        return min(cap, base * growth ** (trips - 1))
    except OverflowError:  # a provider down for days trips often enough to overflow a float
        return cap
