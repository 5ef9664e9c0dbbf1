"""Drive the same scenario through ``Router`` or the async ``AsyncRouter``.

Tests parametrized over ``kind in ("sync", "async")`` call one synchronous API; the async
side runs on one event loop for the harness's lifetime. The transport must work for both
``httpx.Client`` and ``httpx.AsyncClient`` (``httpx.MockTransport`` does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Unpack

import httpx

from payfallback._clock import ManualClock
from payfallback._core import Choice, RecoveryReport
from payfallback.breaker import BreakerSnapshot
from payfallback.models import (
    CheckoutSession,
    Instrument,
    Method,
    Money,
    Order,
    Payment,
    Platform,
    Refund,
    ReturnUrls,
)
from payfallback.provider import Provider
from payfallback.router import AsyncRouter, Router, RouterOptions

__all__ = ["RouterHarness"]

Kind = Literal["sync", "async"]


class RouterHarness:
    """One synchronous face over a Router or a Router, for parametrized tests.

    With a :class:`ManualClock` in ``options["clock"]``, sleeps advance that clock instead
    of waiting, so retries and lookups cost no real time.
    """

    def __init__(
        self,
        kind: Kind,
        providers: Iterable[Provider],
        transport: httpx.MockTransport | httpx.BaseTransport,
        **options: Unpack[RouterOptions],
    ) -> None:
        self.kind = kind
        clock = options.get("clock")
        self._runner: asyncio.Runner | None = None
        self.router: Router | AsyncRouter
        if kind == "sync":
            sync_sleep = clock.sleep if isinstance(clock, ManualClock) else None
            self._client: httpx.Client | httpx.AsyncClient = httpx.Client(transport=transport)
            self.router = Router(providers, client=self._client, sleep=sync_sleep, **options)
        else:
            if not isinstance(transport, httpx.AsyncBaseTransport):
                raise TypeError("the async harness needs a transport usable by AsyncClient")
            async_sleep = clock.asleep if isinstance(clock, ManualClock) else None
            self._runner = asyncio.Runner()
            self._client = httpx.AsyncClient(transport=transport)
            self.router = AsyncRouter(providers, client=self._client, sleep=async_sleep, **options)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.router, name)
        if self._runner is None:
            return method(*args, **kwargs)
        return self._runner.run(method(*args, **kwargs))

    def charge(self, order: Order, instruments: Sequence[Instrument]) -> Payment:
        result: Payment = self._call("charge", order, instruments)
        return result

    def start_checkout(
        self,
        order: Order,
        method: Method,
        return_urls: ReturnUrls,
        *,
        platform: Platform = Platform.PC,
        fallback_methods: Sequence[Method] | None = None,
    ) -> CheckoutSession:
        result: CheckoutSession = self._call(
            "start_checkout",
            order,
            method,
            return_urls,
            platform=platform,
            fallback_methods=fallback_methods,
        )
        return result

    def complete_checkout(self, session_id: str, callback_params: Mapping[str, str]) -> Payment:
        result: Payment = self._call("complete_checkout", session_id, callback_params)
        return result

    def refund(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        reason: str = "",
        idempotency_key: str | None = None,
        tax_free_amount: int | None = None,
    ) -> Refund:
        result: Refund = self._call(
            "refund",
            payment_id,
            amount,
            reason=reason,
            idempotency_key=idempotency_key,
            tax_free_amount=tax_free_amount,
        )
        return result

    def recover(self) -> RecoveryReport:
        result: RecoveryReport = self._call("recover")
        return result

    def available(self, method: Method | None = None) -> list[Choice]:
        return self.router.available(method)

    def health(self) -> list[BreakerSnapshot]:
        return self.router.health()

    def close(self) -> None:
        """Close the client and, if the router opened it, the journal."""
        if isinstance(self.router, Router):
            self.router.close()
            assert isinstance(self._client, httpx.Client)
            self._client.close()
        else:
            assert self._runner is not None
            assert isinstance(self._client, httpx.AsyncClient)
            self._runner.run(self.router.aclose())
            self._runner.run(self._client.aclose())
            self._runner.close()

    def __enter__(self) -> RouterHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
