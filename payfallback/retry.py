"""Retry policy, composed from small explicit tenacity strategies, and a retry budget.

Only what certainly did not take effect is retried (:func:`is_safe_to_retry`: a
``ProviderUnavailable``), always with the same request and the same idempotency key, and
never past the breaker, the per-request cap, the request's deadline or the router-wide
budget. Unknown outcomes are not "retried": they are resolved by lookup (or by an
idempotent replay where the provider keys requests), which lives in the decision core.

``Retry-After`` from a 429/503 is honoured: the wait is the larger of the backoff and what
the provider asked for (if that fits within the deadline; otherwise we stop and reroute).

Sleeping is not done here: the decision core turns a wait into a ``Sleep`` action, so tests
and the simulator control time.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import tenacity
from tenacity import RetryCallState
from tenacity.retry import retry_base, retry_if_exception
from tenacity.stop import stop_after_attempt, stop_after_delay, stop_base
from tenacity.wait import wait_base, wait_exponential, wait_random

from payfallback._clock import Clock
from payfallback.errors import AllProvidersUnavailable, ProviderUnavailable

__all__ = ["RetryBudget", "RetryPolicy", "is_safe_to_retry"]


def is_safe_to_retry(exc: BaseException) -> bool:
    """True only for errors after which the provider certainly did not act."""
    return isinstance(exc, ProviderUnavailable) and not isinstance(exc, AllProvidersUnavailable)


def _default_wait() -> wait_base:
    # 0.2 s, 0.4 s, 0.8 s … capped at 2 s, plus up to 0.2 s of jitter.
    return wait_exponential(multiplier=0.1, exp_base=2, max=2.0) + wait_random(0, 0.2)


def _default_lookup_wait() -> wait_base:
    # 0.5 s, 1 s, 2 s … capped at 4 s, plus up to 0.25 s of jitter.
    return wait_exponential(multiplier=0.25, exp_base=2, max=4.0) + wait_random(0, 0.25)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one provider before moving on, and how to resolve unknowns.

    ``attempts_per_provider`` counts sends of one attempt (the first plus retries).
    ``deadline`` bounds the whole request, all providers and lookups included, so a
    customer at the till is never kept waiting open-endedly.
    """

    attempts_per_provider: int = 2
    deadline: float = 30.0
    wait: wait_base = field(default_factory=_default_wait)
    #: Status inquiries made to resolve one unknown outcome before giving up for now.
    lookup_attempts: int = 4
    lookup_wait: wait_base = field(default_factory=_default_lookup_wait)
    #: Longest single wait before resending to the same provider. A ``Retry-After``
    #: longer than this means "not now": the payment moves to the next provider instead
    #: of keeping a customer at the till.
    max_wait: float = 5.0
    #: How long to wait for another worker's in-flight attempt on the same order.
    in_flight_wait: float = 15.0
    retry: retry_base = field(default_factory=lambda: retry_if_exception(is_safe_to_retry))
    _stop: stop_base = field(init=False, repr=False, compare=False)
    _retrying: tenacity.Retrying = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts_per_provider < 1:
            raise ValueError("attempts_per_provider must be at least 1")
        if self.lookup_attempts < 0:
            raise ValueError("lookup_attempts must not be negative")
        if self.deadline <= 0:
            raise ValueError("deadline must be positive")
        # Built once: every attempt's state refers to the same strategies (they hold no
        # per-attempt state; RetryCallState does).
        stop = stop_after_attempt(self.attempts_per_provider) | stop_after_delay(self.deadline)
        object.__setattr__(self, "_stop", stop)
        object.__setattr__(
            self, "_retrying", tenacity.Retrying(stop=stop, wait=self.wait, retry=self.retry)
        )

    @property
    def stop(self) -> stop_base:
        return self._stop

    def start(self, now: float) -> RetryCallState:
        """Fresh tenacity state for one attempt, timed by our clock."""
        state = RetryCallState(retry_object=self._retrying, fn=None, args=(), kwargs={})
        state.start_time = now
        return state

    def next_wait(self, state: RetryCallState, error: BaseException, now: float) -> float | None:
        """Seconds to wait before resending after ``error``, or None to stop.

        Mirrors one turn of tenacity's own loop (retry? stop? wait?) without sleeping.
        """
        state.set_exception((type(error), error, error.__traceback__))
        state.outcome_timestamp = now
        if not self.retry(state) or self.stop(state):
            return None
        wait = float(self.wait(state))
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, float(retry_after))
        if wait > self.max_wait or (now - state.start_time) + wait >= self.deadline:
            return None
        state.idle_for += wait
        state.prepare_for_next_attempt()
        return wait

    def lookup_delay(self, number: int) -> float:
        """Wait before status inquiry number ``number`` (1-based) after an unknown outcome."""
        state = RetryCallState(retry_object=self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = number
        return float(self.lookup_wait(state))


class RetryBudget:
    """Router-wide cap: retries stay under ``ratio`` of requests over a sliding window.

    After Envoy's retry budgets and the Google SRE book's client-side ratio: at an outage,
    retries must not multiply the load on a failing provider. ``min_retries`` lets a
    small shop with a handful of requests still retry a little.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ratio: float = 0.2,
        min_retries: int = 3,
        window: float = 60.0,
    ) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("ratio must be between 0 and 1")
        self._clock = clock
        self.ratio = ratio
        self.min_retries = min_retries
        self.window = window
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        cutoff = now - self.window
        for q in (self._requests, self._retries):
            while q and q[0] < cutoff:
                q.popleft()

    def record_request(self) -> None:
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            self._requests.append(now)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is used up."""
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            allowed = self.min_retries + self.ratio * len(self._requests)
            if len(self._retries) + 1 > allowed:
                return False
            self._retries.append(now)
            return True

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._trim(self._clock.monotonic())
            return {"requests": len(self._requests), "retries": len(self._retries)}
