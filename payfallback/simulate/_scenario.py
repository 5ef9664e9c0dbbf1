"""Scenarios: a window of the shop's traffic and the incidents that strike its providers.

A scenario is a TOML file (the format is documented in ``docs/simulator.md``; the built-in
scenarios in ``payfallback/simulate/scenarios/`` are examples of it). :func:`load_scenario`
takes a built-in name or a path and returns a :class:`Scenario`, or raises
:class:`ScenarioError` whose message names the file, the key and what to write instead.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Self, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from payfallback.simulate._shop import (
    CARD_PGS,
    DEFAULT_LATENCY,
    LATE_COMMIT_DELAY,
    LONGEST_READ_TIMEOUT,
    LOOKUP_LAG,
    SETTLE_WINDOW,
    WALLETS,
    IncidentSpec,
)
from payfallback.simulate._traffic import DEFAULT_MIX, expected_weight
from payfallback.testing import Fault

__all__ = ["Scenario", "ScenarioError", "Traffic", "builtin_scenarios", "load_scenario"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DEFAULT_RATE = 290.0


class ScenarioError(ValueError):
    """A scenario file that cannot be read or does not describe a valid scenario."""


# -- the file format ------------------------------------------------------------------------

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(gt=0.0)]
ProviderName = Literal[
    "kakaopay", "naverpay", "tosspay", "tosspayments", "nicepay", "inicis", "kcp"
]
CardPG = Literal["tosspayments", "nicepay", "inicis", "kcp"]
Operation = Literal["ready", "approve", "charge", "lookup", "cancel", "void"]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Flap(_File):
    down_minutes: Seconds
    up_minutes: Seconds


class _Incident(_File):
    provider: ProviderName
    start: datetime
    hours: Seconds | None = None
    minutes: Seconds | None = None
    end: datetime | None = None
    faults: dict[Fault, Share] = Field(default_factory=dict)
    latency: Seconds | None = None
    latency_factor: Annotated[float, Field(gt=0.0)] = 1.0
    operations: list[Operation] | None = None
    flap: _Flap | None = None
    announced: bool = False
    label: str = ""
    commit_delay: Annotated[float, Field(ge=0.0)] | None = None
    lookup_lag: Annotated[float, Field(ge=0.0)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        self._check_late_commit()
        given = [k for k in ("hours", "minutes", "end") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give the incident's length as exactly one of hours, minutes or end"
                + (f" (got {', '.join(given)})" if given else "")
            )
        total = sum(self.faults.values())
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"faults add up to {total:g} of requests; the shares must add up to at most 1"
            )
        idle = not self.faults and self.latency is None and self.latency_factor == 1.0
        if idle and not self.announced:
            raise ValueError(
                "the incident does nothing: give faults, latency or latency_factor "
                "(or announced = true for a maintenance window)"
            )
        if self.operations is not None and not self.operations:
            raise ValueError("operations is empty; leave it out to strike every operation")
        return self

    def _check_late_commit(self) -> None:
        timings = [k for k in ("commit_delay", "lookup_lag") if getattr(self, k) is not None]
        if timings and not self.faults.get(Fault.LATE_COMMIT):
            raise ValueError(
                f"late_commit is not among the faults, so {' and '.join(timings)} would time "
                "nothing; add late_commit to faults, or leave the timing out"
            )
        delay = LATE_COMMIT_DELAY if self.commit_delay is None else self.commit_delay
        lag = LOOKUP_LAG if self.lookup_lag is None else self.lookup_lag
        room = SETTLE_WINDOW - LONGEST_READ_TIMEOUT
        if delay + lag > room:
            raise ValueError(
                f"commit_delay + lookup_lag is {delay + lag:g} s; the fake providers promise a "
                f"{SETTLE_WINDOW:g} s settle window, so after a {LONGEST_READ_TIMEOUT:g} s "
                f"read timeout they must add up to at most {room:g} s"
            )


class _Traffic(_File):
    payments: Annotated[int, Field(gt=0)] | None = None
    payments_per_hour: Seconds | None = None
    mix: dict[Literal["kakaopay", "naverpay", "tosspay", "card"], Share] | None = None
    median_amount: Annotated[int, Field(ge=1_000)] = 29_000
    declines: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.03
    cancels: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.03

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.payments is not None and self.payments_per_hour is not None:
            raise ValueError("give payments or payments_per_hour, not both")
        if self.mix is not None:
            total = sum(self.mix.values())
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"mix shares add up to {total:g}; they must add up to 1")
        return self


def _default_card_pgs() -> list[CardPG]:
    # The shop's own default (CARD_PGS), typed for the file format.
    return cast("list[CardPG]", list(CARD_PGS))


class _Scenario(_File):
    name: str
    description: str = ""
    start: datetime
    hours: Seconds
    timezone: str = "Asia/Seoul"
    traffic: _Traffic = Field(default_factory=_Traffic)
    latency: dict[ProviderName, Seconds] = Field(default_factory=dict)
    #: The shop's card PGs, primary first.
    card_pgs: list[CardPG] = Field(default_factory=_default_card_pgs, min_length=1)
    incident: list[_Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name {self.name!r} must be 1-64 lowercase letters, digits and '-'")
        if len(set(self.card_pgs)) != len(self.card_pgs):
            raise ValueError(f"card_pgs {self.card_pgs} names a PG twice")
        shop = {*WALLETS, *self.card_pgs}
        for incident in self.incident:
            if incident.provider not in shop:
                raise ValueError(
                    f"incident at {incident.provider!r}, which this shop does not use; its "
                    f"card PGs are {', '.join(self.card_pgs)} (set card_pgs)"
                )
        return self


# -- the validated scenario -----------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """The shop's customers in a scenario's window (see :mod:`._traffic`)."""

    #: Customers per hour at the shop's weekly average; the local hour and weekday shape it.
    payments_per_hour: float = _DEFAULT_RATE
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    median_amount: int = 29_000
    #: Share of card customers whose card is declined.
    declines: float = 0.03
    #: Share of wallet customers who cancel at the approval page.
    cancels: float = 0.03


@dataclass(frozen=True)
class Scenario:
    """A window of traffic, ``[start, start + hours)``, and the incidents within it."""

    name: str
    description: str
    start: datetime
    hours: float
    tz: ZoneInfo
    traffic: Traffic
    incidents: tuple[IncidentSpec, ...]
    latency: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LATENCY))
    #: The shop's card PGs, primary first.
    card_pgs: tuple[str, ...] = CARD_PGS

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    def expected_payments(self) -> float:
        return self.traffic.payments_per_hour * expected_weight(self.start, self.end, self.tz)

    def trimmed(self, hours: float) -> Scenario:
        """The first ``hours`` of the window, at the same traffic rate."""
        if not hours > 0:
            raise ScenarioError(f"--hours must be greater than 0, got {hours:g}")
        return replace(self, hours=min(hours, self.hours))

    def with_payments(self, payments: int) -> Scenario:
        """The same window with about ``payments`` customers in it."""
        if payments <= 0:
            raise ScenarioError(f"--payments must be greater than 0, got {payments}")
        rate = payments / expected_weight(self.start, self.end, self.tz)
        return replace(self, traffic=replace(self.traffic, payments_per_hour=rate))

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz)


def _zone(name: str, source: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(
            f"{source}: timezone: unknown time zone {name!r}; use an IANA name such as 'Asia/Seoul'"
        ) from None


def _aware(when: datetime, tz: ZoneInfo) -> datetime:
    # A TOML local date-time (no offset) is read in the scenario's time zone.
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]" or part.startswith(("function-", "literal[", "enum[", "union[")):
            continue  # pydantic's internal validator steps, not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out


def _explain(source: str, exc: ValidationError) -> ScenarioError:
    lines = []
    for err in exc.errors(include_url=False):
        where = _where(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (see docs/simulator.md for the format)"
        elif err["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {where or '(top level)'}: {message}")
    plural = "s" if len(lines) > 1 else ""
    return ScenarioError(
        f"{source}: invalid scenario ({len(lines)} problem{plural}):\n" + "\n".join(lines)
    )


def parse_scenario(data: Mapping[str, Any], *, source: str = "<scenario>") -> Scenario:
    """Validate a scenario read from TOML (or built as a dict)."""
    try:
        raw = _Scenario.model_validate(data)
    except ValidationError as exc:
        raise _explain(source, exc) from None
    tz = _zone(raw.timezone, source)
    start = _aware(raw.start, tz)
    end = start + timedelta(hours=raw.hours)
    incidents = []
    for n, inc in enumerate(raw.incident):
        i_start = _aware(inc.start, tz)
        if inc.end is not None:
            i_end = _aware(inc.end, tz)
        else:
            i_end = i_start + timedelta(hours=inc.hours or 0.0, minutes=inc.minutes or 0.0)
        if i_end <= i_start:
            raise ScenarioError(f"{source}: incident[{n}]: end is not after start")
        if i_end <= start or i_start >= end:
            raise ScenarioError(
                f"{source}: incident[{n}]: {i_start.isoformat()} to {i_end.isoformat()} lies "
                f"outside the scenario's window ({start.isoformat()} to {end.isoformat()})"
            )
        faults = dict(inc.faults)
        if inc.announced and not faults and inc.latency is None:
            faults = {Fault.UNAVAILABLE_503: 1.0}
        incidents.append(
            IncidentSpec(
                provider=inc.provider,
                start=i_start,
                end=i_end,
                faults=tuple((f, s) for f, s in faults.items() if s > 0),
                latency=inc.latency,
                latency_factor=inc.latency_factor,
                operations=frozenset(inc.operations) if inc.operations is not None else None,
                flap=(inc.flap.down_minutes, inc.flap.up_minutes) if inc.flap else None,
                announced=inc.announced,
                label=inc.label or f"{inc.provider} incident",
                commit_delay=LATE_COMMIT_DELAY if inc.commit_delay is None else inc.commit_delay,
                lookup_lag=LOOKUP_LAG if inc.lookup_lag is None else inc.lookup_lag,
            )
        )
    t = raw.traffic
    traffic = Traffic(
        mix={str(k): v for k, v in t.mix.items()} if t.mix is not None else dict(DEFAULT_MIX),
        median_amount=t.median_amount,
        declines=t.declines,
        cancels=t.cancels,
    )
    scenario = Scenario(
        name=raw.name,
        description=raw.description,
        start=start,
        hours=raw.hours,
        tz=tz,
        traffic=traffic,
        incidents=tuple(incidents),
        latency={**DEFAULT_LATENCY, **{str(k): v for k, v in raw.latency.items()}},
        card_pgs=tuple(raw.card_pgs),
    )
    if t.payments is not None:
        return scenario.with_payments(t.payments)
    if t.payments_per_hour is not None:
        return replace(scenario, traffic=replace(traffic, payments_per_hour=t.payments_per_hour))
    return scenario


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None


_SCENARIOS = resources.files("payfallback.simulate").joinpath("scenarios")


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names with their one-line descriptions."""
    out = {}
    for entry in sorted(_SCENARIOS.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = _read_toml(entry.read_text(encoding="utf-8"), entry.name)
            out[entry.name.removesuffix(".toml")] = str(data.get("description", ""))
    return out


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name (``kakao-fire-2022``) or a scenario TOML file by path."""
    text = str(name_or_path)
    builtin = _SCENARIOS.joinpath(f"{text}.toml")
    if _NAME.fullmatch(text) and builtin.is_file():
        return parse_scenario(
            _read_toml(builtin.read_text(encoding="utf-8"), f"{text}.toml"), source=text
        )
    path = Path(name_or_path)
    if not path.is_file():
        names = ", ".join(builtin_scenarios())
        raise ScenarioError(f"no scenario {text!r}: not a built-in ({names}) and no such file")
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(_read_toml(content, str(path)), source=str(path))
