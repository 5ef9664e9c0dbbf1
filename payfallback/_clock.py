"""Clocks, injected everywhere time matters so tests and the simulator move time by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic seconds for durations and windows; aware UTC wall time for calendars."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it (for tests, simulator)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._wall = start or datetime(2022, 10, 15, 6, 30, tzinfo=UTC)
        if self._wall.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime, e.g. tzinfo=UTC")
        self._mono = 1000.0

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

    async def asleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
