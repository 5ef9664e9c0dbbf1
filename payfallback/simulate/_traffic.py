"""The shop's customers: when they arrive, how they pay, how much, and what they intend.

Arrivals are a Poisson process whose rate follows the local hour and weekday
(:func:`weight`): quiet before dawn, a lunch bump, and an evening peak that is highest on
Friday and Saturday. The traffic depends only on the scenario and the seed, so every
strategy of one run serves exactly the same customers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from payfallback.models import Method
from payfallback.simulate._shop import WALLETS

__all__ = ["DEFAULT_MIX", "Customer", "Intent", "expected_weight", "generate", "weight"]

#: Share of customers paying each way (``card``: a billing key at both card PGs).
DEFAULT_MIX: Mapping[str, float] = {
    "kakaopay": 0.35,
    "naverpay": 0.20,
    "tosspay": 0.10,
    "card": 0.35,
}

# Relative traffic by local hour (0-23) and by weekday (Mon-Sun); the evening of Friday
# and Saturday gets an extra lift on top.
_HOURLY = (
    0.50, 0.30, 0.20, 0.10, 0.10, 0.10, 0.20, 0.40, 0.60, 0.80, 0.90, 1.10,
    1.30, 1.20, 1.00, 1.00, 1.10, 1.30, 1.60, 1.90, 2.00, 1.80, 1.30, 0.90,
)  # fmt: skip
_DAILY = (0.90, 0.90, 0.95, 1.00, 1.10, 1.25, 1.15)
_EVENING_PEAK = (4, 5)  # Friday, Saturday
_EVENING_HOURS = range(18, 22)
_EVENING_LIFT = 1.3


def _raw(hour: int, day: int) -> float:
    lift = _EVENING_LIFT if day in _EVENING_PEAK and hour in _EVENING_HOURS else 1.0
    return _HOURLY[hour] * _DAILY[day] * lift


_MEAN = sum(_raw(h, d) for h in range(24) for d in range(7)) / (24 * 7)


def weight(local: datetime) -> float:
    """Traffic at local time ``local`` relative to the shop's weekly average (mean 1.0)."""
    return _raw(local.hour, local.weekday()) / _MEAN


def _minutes(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, float]]:
    """``(minute start, weight)`` for every minute of the window."""
    out = []
    t = start
    step = timedelta(minutes=1)
    while t < end:
        out.append((t, weight(t.astimezone(tz))))
        t += step
    return out


def expected_weight(start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """Integral of :func:`weight` over the window, in hours: expected payments per unit
    of ``payments_per_hour``."""
    return sum(w for _, w in _minutes(start, end, tz)) / 60.0


class Intent(Enum):
    """What the customer will do at the provider, whatever state the providers are in."""

    PAY = "pay"
    #: Cancels at the wallet's approval page.
    CANCEL = "cancel"
    #: Card declined (a ``bk-declined`` billing key).
    DECLINED = "declined"
    #: Balance too low (a ``bk-insufficient`` billing key).
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    arrival: datetime
    #: The wallet provider's name, or ``card``.
    pays_with: str
    amount: int
    intent: Intent

    @property
    def order_id(self) -> str:
        return f"SIM-{self.index:06d}"

    @property
    def method(self) -> Method:
        return WALLETS.get(self.pays_with, Method.CARD)


def _amount(rng: random.Random, median: int) -> int:
    # Log-normal basket sizes, to the 100 won, within what a small shop sells.
    raw = median * math.exp(0.6 * rng.gauss(0.0, 1.0))
    return max(1_000, min(2_000_000, round(raw / 100) * 100))


def generate(
    *,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    payments_per_hour: float,
    mix: Mapping[str, float],
    median_amount: int,
    declines: float,
    cancels: float,
    seed: int,
) -> list[Customer]:
    """Every customer of the window, in order of arrival."""
    rng = random.Random(f"{seed}:traffic")
    ways = list(mix)
    shares = [mix[w] for w in ways]
    customers: list[Customer] = []
    for minute, w in _minutes(start, end, tz):
        # Poisson arrivals at this minute's rate: exponential gaps, memoryless, so the
        # process restarts cleanly at every minute boundary.
        rate = payments_per_hour * w / 60.0  # per minute
        if rate <= 0:
            continue
        t = rng.expovariate(rate)
        while t < 1.0:
            pays_with = rng.choices(ways, shares)[0]
            draw = rng.random()
            if pays_with == "card":
                intent = (
                    Intent.PAY
                    if draw >= declines
                    else (Intent.DECLINED if draw < declines * 2 / 3 else Intent.INSUFFICIENT)
                )
            else:
                intent = Intent.CANCEL if draw < cancels else Intent.PAY
            customers.append(
                Customer(
                    index=len(customers),
                    arrival=minute + timedelta(minutes=t),
                    pays_with=pays_with,
                    amount=_amount(rng, median_amount),
                    intent=intent,
                )
            )
            t += rng.expovariate(rate)
    return customers
