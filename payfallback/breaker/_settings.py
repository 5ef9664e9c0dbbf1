"""Breaker settings, the peak-hours policy that picks between two sets of them, and maintenance.

Everything here is a frozen value checked when it is built, so a wrong number fails at start-up
with a message naming the field, not at 19:00 on a Friday when the breaker first needs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BreakerPolicy", "BreakerSettings", "MaintenanceWindow", "PeakWindow"]

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _positive(x: float) -> bool:
    return x > 0


def _rate(x: float) -> bool:
    return 0 < x <= 1


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSettings:
    """How one breaker judges a provider and how long the Router waits on it.

    The defaults suit a small shop: a few payments a minute, so ``minimum_calls`` is small and a
    short run of hard failures (connection refused) trips at once.
    """

    #: Span of the time-based sliding window the rates are computed over, in seconds.
    window_seconds: float = 60.0
    #: Calls the window must hold before a rate can trip the breaker.
    minimum_calls: int = 5
    #: Share of failed calls in the window at or above which the breaker opens.
    failure_rate_threshold: float = 0.5
    #: A call that took at least this long (seconds) is slow, whatever its outcome.
    slow_call_duration: float = 5.0
    #: Share of slow calls in the window at or above which the breaker opens.
    slow_call_rate_threshold: float = 0.8
    #: Hard failures without a success in between that open the breaker whatever the count.
    hard_failure_run: int = 3
    #: Open time after the first trip, in seconds.
    open_seconds: float = 15.0
    #: Cap on the open time however often the breaker trips.
    max_open_seconds: float = 300.0
    #: Factor the open time grows by on each further trip.
    open_growth: float = 2.0
    #: Once closed this long, the trip count starts over (open time back to ``open_seconds``).
    trip_memory_seconds: float = 600.0
    #: Probes admitted at once in half-open; this many must succeed for the breaker to close.
    half_open_probes: int = 2
    #: Connect timeout the Router uses for calls admitted under these settings.
    connect_timeout: float = 3.0
    #: Read timeout the Router uses for calls admitted under these settings.
    read_timeout: float = 15.0

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, Callable[[float], bool], str], ...] = (
            ("window_seconds", _positive, "a number of seconds > 0"),
            ("minimum_calls", _positive, "an int >= 1"),
            ("failure_rate_threshold", _rate, "a share in (0, 1]"),
            ("slow_call_duration", _positive, "a number of seconds > 0"),
            ("slow_call_rate_threshold", _rate, "a share in (0, 1]"),
            ("hard_failure_run", _positive, "an int >= 1"),
            ("open_seconds", _positive, "a number of seconds > 0"),
            ("max_open_seconds", _positive, "a number of seconds > 0"),
            ("open_growth", lambda x: x >= 1, "a factor >= 1"),
            ("trip_memory_seconds", lambda x: x >= 0, "a number of seconds >= 0"),
            ("half_open_probes", _positive, "an int >= 1"),
            ("connect_timeout", _positive, "a number of seconds > 0"),
            ("read_timeout", _positive, "a number of seconds > 0"),
        )
        for name, ok, expected in checks:
            value = getattr(self, name)
            wants_int = expected.startswith("an int")
            # bool is an int subclass; True calls or True seconds are always a mistake.
            if (
                isinstance(value, bool)
                or not isinstance(value, int if wants_int else (int, float))
                or not math.isfinite(value)
                or not ok(value)
            ):
                raise ValueError(f"BreakerSettings.{name} must be {expected}, got {value!r}")
        if self.max_open_seconds < self.open_seconds:
            raise ValueError(
                f"BreakerSettings.max_open_seconds ({self.max_open_seconds!r}) must be >= "
                f"open_seconds ({self.open_seconds!r})"
            )

    @property
    def probe_ttl(self) -> float:
        """Seconds a half-open probe slot stays taken if its call is never recorded."""
        return self.connect_timeout + self.read_timeout


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Asia/Seoul' "
            "(install the 'tzdata' package where the system has no zoneinfo)"
        ) from exc


@dataclass(frozen=True, slots=True)
class PeakWindow:
    """Local wall-clock hours on some weekdays, in one time zone, when peak settings apply.

    ``days`` are ``datetime.weekday()`` numbers (Monday 0 … Sunday 6) *in ``tz``*, ``start`` is
    inclusive and ``end`` exclusive. A window whose ``end`` is before its ``start`` runs past
    midnight and belongs to the day it starts on: ``days={4}, start=22:00, end=02:00`` covers
    Friday 22:00 to Saturday 02:00.
    """

    days: frozenset[int]
    start: time
    end: time
    tz: str = "Asia/Seoul"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable of weekday numbers at run time; store the frozen form.
        days = frozenset(self.days)
        object.__setattr__(self, "days", days)
        if not days or any(
            isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days
        ):
            raise ValueError(
                f"PeakWindow.days must be a non-empty set of weekday numbers 0 (Mon) to 6 (Sun), "
                f"got {sorted(days, key=str)!r}"
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(
                    f"PeakWindow.{name} must be a naive datetime.time read in tz={self.tz!r}, "
                    f"got {value!r}"
                )
        if self.start == self.end:
            raise ValueError(
                f"PeakWindow start and end are both {self.start}: a window needs a length "
                "(for a whole day use start=time(0), end=time.max)"
            )
        object.__setattr__(self, "_zone", _zone(self.tz))

    def contains(self, when: datetime) -> bool:
        """Whether the aware instant ``when`` falls inside this window."""
        local = _aware(when, "PeakWindow.contains").astimezone(self._zone)
        clock, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= clock < self.end
        # Past midnight: the late part belongs to the day the window started on.
        return (day in self.days and clock >= self.start) or (
            (day - 1) % 7 in self.days and clock < self.end
        )

    def next_edge(self, after: datetime) -> datetime:
        """The first instant after ``after`` at which :meth:`contains` may change its answer.

        That is the next ``start`` or ``end`` of any day, in ``tz``, whether or not the window
        runs that day (an edge too many only makes the caller ask again). Where a clock change
        moves or repeats the local time of an edge, the answer may also change at the clock
        change itself, so from one reading of that edge to the other it is the next whole
        second.
        """
        after = _aware(after, "PeakWindow.next_edge")
        today = after.astimezone(self._zone).date()
        best: datetime | None = None
        for days in (-1, 0, 1, 2):
            day = today + timedelta(days=days)
            for edge in (self.start, self.end):
                local = datetime.combine(day, edge, tzinfo=self._zone)
                first = local.astimezone(UTC)
                second = local.replace(fold=1).astimezone(UTC)
                lo, hi = min(first, second), max(first, second)
                if lo <= after < hi:  # a clock change around this edge: look every second
                    found = datetime.fromtimestamp(math.floor(after.timestamp()) + 1, UTC)
                elif lo > after:
                    found = lo
                else:
                    continue
                if best is None or found < best:
                    best = found
        assert best is not None  # every day has its edges, and the days run past tomorrow
        return best

    def __str__(self) -> str:
        days = ",".join(_WEEKDAYS[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.tz}"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A provider's announced downtime: every method of ``provider`` is denied in [start, end)."""

    provider: str
    start: datetime
    end: datetime
    reason: str = "announced maintenance"

    def __post_init__(self) -> None:
        _aware(self.start, "MaintenanceWindow.start")
        _aware(self.end, "MaintenanceWindow.end")
        if self.end <= self.start:
            raise ValueError(
                f"MaintenanceWindow for {self.provider!r} ends ({self.end.isoformat()}) "
                f"before it starts ({self.start.isoformat()})"
            )

    def contains(self, when: datetime) -> bool:
        """Whether the aware instant ``when`` falls inside this window."""
        return self.start <= _aware(when, "MaintenanceWindow.contains") < self.end


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Which settings are in force when: ``peak`` inside any of ``peak_windows``, else ``normal``.

    Peak settings are meant to be stricter (trip sooner, shorter timeouts): at peak every second
    a customer waits on a struggling provider is a sale at risk, and a fallback is ready.
    """

    normal: BreakerSettings = field(default_factory=BreakerSettings)
    peak: BreakerSettings | None = None
    peak_windows: tuple[PeakWindow, ...] = ()
    # The last answer of settings_until: (asked at, valid until, settings). Every breaker asks
    # it about once a second; converting to the windows' time zones is the costly part.
    _memo: list[tuple[datetime, datetime | None, BreakerSettings]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak_windows", tuple(self.peak_windows))
        if self.peak_windows and self.peak is None:
            raise ValueError("BreakerPolicy has peak_windows but no peak settings to use in them")

    def settings_at(self, now: datetime) -> BreakerSettings:
        """The settings in force at the aware instant ``now``."""
        return self.settings_until(now)[0]

    def settings_until(self, now: datetime) -> tuple[BreakerSettings, datetime | None]:
        """The settings in force at the aware instant ``now``, and the first instant after it
        at which they may change (``None``: never). Breakers keep the answer until then."""
        _aware(now, "BreakerPolicy.settings_until")
        if self.peak is None or not self.peak_windows:
            return self.normal, None
        memo = self._memo
        if memo:
            since, until, found = memo[0]
            if since <= now and (until is None or now < until):
                return found, until
        found = self.peak if any(w.contains(now) for w in self.peak_windows) else self.normal
        until = min(w.next_edge(now) for w in self.peak_windows)
        memo[:] = [(now, until, found)]  # one store: readers on other threads see old or new
        return found, until

    @property
    def all_settings(self) -> tuple[BreakerSettings, ...]:
        """Every settings value the policy can put in force."""
        return (self.normal,) if self.peak is None else (self.normal, self.peak)

    @classmethod
    def default(cls) -> BreakerPolicy:
        """Defaults for a Korean shop: Friday to Sunday 17:00-21:00 KST is peak.

        At peak the breaker trips on fewer calls and lower rates, a call is slow sooner and the
        timeouts are shorter, so traffic moves to the fallback provider before customers give up.
        """
        return cls(
            normal=BreakerSettings(),
            peak=BreakerSettings(
                window_seconds=30.0,
                minimum_calls=3,
                failure_rate_threshold=0.3,
                slow_call_duration=3.0,
                slow_call_rate_threshold=0.5,
                hard_failure_run=2,
                connect_timeout=2.0,
                read_timeout=10.0,
            ),
            peak_windows=(
                PeakWindow(
                    days=frozenset({4, 5, 6}), start=time(17), end=time(21), tz="Asia/Seoul"
                ),
            ),
        )


def maintenance_until(
    windows: Iterable[MaintenanceWindow], provider: str, now: datetime
) -> tuple[MaintenanceWindow | None, datetime | None]:
    """:func:`active_maintenance` at ``now``, and the first instant after it at which the
    answer may change: the next start or end of one of ``provider``'s windows (``None``:
    never)."""
    ours = [w for w in windows if w.provider == provider]
    edges = [t for w in ours for t in (w.start, w.end) if t > now]
    return active_maintenance(ours, provider, now), min(edges, default=None)


def active_maintenance(
    windows: Iterable[MaintenanceWindow], provider: str, now: datetime
) -> MaintenanceWindow | None:
    """The maintenance window of ``provider`` in force at ``now`` that ends last, if any."""
    active = [w for w in windows if w.provider == provider and w.contains(now)]
    return max(active, key=lambda w: w.end, default=None)


def _aware(when: datetime, where: str) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{where} needs an aware datetime (e.g. tzinfo=UTC), got {when!r}")
    return when
