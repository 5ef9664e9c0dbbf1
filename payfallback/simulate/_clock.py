"""The simulator's clock: one timeline per customer, one monotonic clock for the run."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["SimClock"]


class SimClock:
    """A manual clock whose wall time can go back to the next customer's arrival.

    Customers are served one at a time, but in a real shop they overlap: a customer who
    arrives while another waits on a slow provider does not wait behind them. So each
    customer starts at their own arrival time (:meth:`arrive`), even if the previous
    checkout ran past it, and the run never drifts late into the scenario. The monotonic
    clock, which breaker windows, open times and retry budgets read, never goes back: it
    moves by the gap between arrivals when there is one, and by every second spent inside
    a checkout. ``advance`` and ``sleep`` move both, like
    :class:`~payfallback.ManualClock`, so the fake providers pass latency on it.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._wall = start
        self._mono = 0.0

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def arrive(self, when: datetime) -> None:
        """Start the next customer's timeline at ``when``."""
        gap = (when - self._wall).total_seconds()
        if gap > 0:
            self._mono += gap
        self._wall = when
