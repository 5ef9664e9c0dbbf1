"""The breaker's arithmetic: a time-based sliding window and the rules that read it.

Pure and lock-free: the caller passes the time in and holds whatever lock it needs.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
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
    a span is measured to within one bucket: the span of ``s`` seconds at time ``t`` is the
    ``round(s / resolution)`` buckets ending with the one ``t`` falls in. The span asked for can
    change from call to call (peak and normal settings may use different windows) as long as it
    fits in ``retention``.

    The counts of one span, the one last asked for, are kept as running totals in ``calls``,
    ``failures`` and ``slow``: each outcome is added once, and a bucket leaving the span is
    subtracted once, so counting a call and reading the counts cost the same however many
    buckets the window holds. Asking for another span counts it afresh, once (a switch between
    normal and peak settings).

    Every method but :meth:`tick` needs the caller's lock. ``tick()`` counts one success in the
    newest bucket without it (one atomic step of a C counter); it is for a caller that knows
    the call falls in the newest bucket (``now < next_bucket_at``) and that a success there
    cannot trip anything. Ticks join the totals at the next locked call.
    """

    __slots__ = (
        "_bucket",
        "_buckets",
        "_counted",
        "_head",
        "_keep",
        "_next",
        "_resolution",
        "_span",
        "_tallied",
        "_width",
        "calls",
        "failures",
        "slow",
        "tick",
    )

    def __init__(self, *, resolution: float, retention: float) -> None:
        if resolution <= 0 or retention < resolution:
            raise ValueError("SlidingWindow needs 0 < resolution <= retention")
        self._resolution = resolution
        self._keep = self._buckets_in(retention)
        # [bucket index, calls, failures, slow], oldest first; only buckets that saw a call.
        self._buckets: deque[list[int]] = deque()
        #: The newest bucket, its index, and when the one after it starts.
        self._bucket: list[int] = [0, 0, 0, 0]
        self._head: int | None = None
        self._next = -math.inf
        #: The span the running totals are for, in seconds and in buckets.
        self._span = float(retention)
        self._width = self._keep
        #: How many of the newest buckets the running totals hold.
        self._counted = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0
        #: Counts one success, lock-free: each call returns the next number of one counter;
        #: ``_tallied`` is the first number not yet added to the totals.
        self.tick: Callable[[], int] = itertools.count().__next__
        self._tallied = 0

    @property
    def span(self) -> float:
        """The span, in seconds, that ``calls``, ``failures`` and ``slow`` count."""
        return self._span

    @property
    def next_bucket_at(self) -> float:
        """When the bucket after the newest one starts (``-inf`` while no bucket is in the
        span): until then a call falls in the newest bucket."""
        return self._next

    def add(self, now: float, *, failure: bool, slow: bool) -> None:
        """Count one outcome at ``now``; the running totals include it afterwards."""
        self._fold()
        if now >= self._next and not self._open(now):
            return
        bucket = self._bucket
        bucket[1] += 1
        self.calls += 1
        if failure:
            bucket[2] += 1
            self.failures += 1
        if slow:
            bucket[3] += 1
            self.slow += 1

    def stats(self, now: float, span: float) -> WindowStats:
        """Counts for the calls in the last ``span`` seconds (bucket-aligned) as of ``now``.

        Moves the running totals to ``span`` (and to ``now``) if they were for another one.
        """
        self.focus(now, span)
        return WindowStats(calls=self.calls, failures=self.failures, slow=self.slow)

    def focus(self, now: float, span: float) -> None:
        """Make the running totals count the last ``span`` seconds as of ``now``."""
        self._fold()
        if span != self._span:
            width = self._buckets_in(span)
            if width > self._keep:
                raise ValueError(f"a span of {span!r} s is longer than the window keeps")
            self._span, self._width = float(span), width
            buckets = self._buckets
            self._counted = len(buckets)
            self.calls = sum(b[1] for b in buckets)
            self.failures = sum(b[2] for b in buckets)
            self.slow = sum(b[3] for b in buckets)
        if self._head is not None:
            self._expire(max(int(now // self._resolution), self._head))

    def clear(self) -> None:
        self._tallied = self.tick() + 1  # ticks so far belong to what is forgotten
        self._buckets.clear()
        self._bucket = [0, 0, 0, 0]
        self._head = None
        self._next = -math.inf
        self._counted = self.calls = self.failures = self.slow = 0

    def _fold(self) -> None:
        """Add the ticks since the last locked call to the newest bucket (if still counted)."""
        mark = self.tick()  # this number is the fold's own, not a success
        ticks = mark - self._tallied
        self._tallied = mark + 1
        if ticks and self._counted:
            self._bucket[1] += ticks
            self.calls += ticks

    def _buckets_in(self, seconds: float) -> int:
        return max(1, round(seconds / self._resolution))

    def _open(self, now: float) -> bool:
        """Start the bucket ``now`` falls in, after dropping what has left the window by then;
        whether a call at ``now`` counts (into ``self._bucket``)."""
        index = int(now // self._resolution)
        if self._head is not None and index <= self._head:
            # On the newest bucket's upper edge (float rounding), or timed before a later read
            # of the counts moved the span on: it counts in the newest bucket while that one is
            # in the span, and not at all once it left (it is older than the span, then).
            return self._counted > 0
        self._expire(index)
        self._bucket = [index, 0, 0, 0]
        self._buckets.append(self._bucket)
        self._head = index
        self._next = (index + 1) * self._resolution
        self._counted += 1
        return True

    def _expire(self, index: int) -> None:
        """Subtract the buckets that have left the span by bucket ``index``; drop those that
        have left the window."""
        buckets = self._buckets
        first = index - self._width + 1
        counted = self._counted
        while counted and buckets[-counted][0] < first:
            gone = buckets[-counted]
            self.calls -= gone[1]
            self.failures -= gone[2]
            self.slow -= gone[3]
            counted -= 1
        self._counted = counted
        if not counted:  # the newest bucket has left the span: the next call opens another
            self._next = -math.inf
        first = index - self._keep + 1
        while buckets and buckets[0][0] < first:
            buckets.popleft()


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
