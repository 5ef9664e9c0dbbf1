"""The shop's web application: :func:`create_app` builds it from settings and providers.

Routes
======

=======================================  =====================================================
``GET  /``                               the products
``POST /orders``                         create an order (form ``sku``) → its checkout page
``GET  /orders/{id}/checkout``           ways to pay that ``router.available()`` calls healthy
``POST /orders/{id}/pay``                ``router.start_checkout()`` (form ``method``)
``GET  /pay/{ref}``                      to the provider's page, or its SDK in the browser
``GET  /return/{ref}/{success|cancel|fail}``  the return URLs: ``router.complete_checkout()``
``GET  /orders/{id}``                    the receipt
``POST /orders/{id}/refund``             ``router.refund()`` (form ``amount``, default all)
``GET  /health``                         breaker states, healthy methods, journal counts
``POST /webhooks/portone``               PortOne webhooks (Standard Webhooks signature)
``POST /webhooks/tosspayments``          Toss ``PAYMENT_STATUS_CHANGED`` (re-fetched)
``GET  /demo``, ``POST /demo/{p}/down``  fake mode only: take a fake provider down / up
=======================================  =====================================================

Return URLs carry a random reference (``/return/{ref}/…``) made before the checkout starts
and tied to the checkout session once it has one: the URLs have to be given to the provider
before the session id exists, and a wallet's return URL (Kakao Pay's ``pg_token``) does not
name the session by itself.

The refund endpoint is open to anyone here; a real shop puts it behind staff login.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from payfallback import (
    AllProvidersUnavailable,
    AsyncRouter,
    AttemptState,
    Declined,
    InvalidRequest,
    Method,
    Money,
    OutcomeUnknown,
    PayfallbackError,
    Provider,
    ProviderUnavailable,
    ReturnUrls,
)
from payfallback.transports import DEFAULT_TIMEOUT, recommended_async_client

from . import pages, webhooks
from .fakes import FakeBackends
from .settings import SHOP_METHODS, Settings
from .store import CATALOG, ShopOrder, ShopStore

__all__ = ["Shop", "create_app"]

_log = logging.getLogger("examples.fastapi_shop")

#: Messages the checkout and order pages show, by the key in their ``msg`` parameter, so
#: no text from a URL is ever put on a page.
_MESSAGES = {
    "unavailable": "That way to pay is not answering right now. Nothing was charged; "
    "please choose another.",
    "declined": "The payment was cancelled or declined. Nothing was charged; you can try "
    "again or choose another way to pay.",
    "confirming": "We are confirming your payment with the provider. This page shows the "
    "result as soon as it is known; please do not pay again.",
    "refund-pending": "The provider did not confirm the refund yet. It is kept and retried "
    "until it is done.",
    "refunded": "Refunded.",
}


@dataclass
class Shop:
    """Everything a request needs, built once when the app starts."""

    settings: Settings
    router: AsyncRouter
    client: httpx.AsyncClient
    store: ShopStore
    demo: FakeBackends | None

    def offered(self) -> list[Method]:
        """The shop's ways to pay with at least one healthy provider, in page order."""
        healthy = {choice.method for choice in self.router.available()}
        return [m for m in SHOP_METHODS if m in healthy]

    def configured(self, method: Method) -> bool:
        return any(method in p.capabilities.methods for p in self.router.providers.values())

    def base_url(self, request: Request) -> str:
        return (self.settings.public_url or str(request.base_url)).rstrip("/")


def _shop(request: Request) -> Shop:
    shop = getattr(request.app.state, "shop", None)
    if not isinstance(shop, Shop):
        raise RuntimeError("the shop is not started: run the app with its lifespan")
    return shop


async def _form(request: Request) -> dict[str, str]:
    # URL-encoded forms are parsed here rather than with python-multipart: every form of
    # the shop is a few plain fields.
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _see_other(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)


def _html(text: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code)


async def _webhook(shop: Shop, note: webhooks.Notification) -> JSONResponse:
    result = await webhooks.process(
        shop.router,
        shop.client,
        shop.store,
        note,
        refetch_limit=shop.settings.webhook_refetch_limit,
        refetch_window=shop.settings.webhook_refetch_window,
    )
    return JSONResponse(result.body, result.status_code, headers=result.headers)


async def _recover_forever(router: AsyncRouter, every: float) -> None:
    """Settle refunds owed and unknown outcomes in the background, every ``every`` seconds."""
    while True:
        await asyncio.sleep(every)
        try:
            report = await router.recover()
        except Exception:  # keep the loop alive; the next run tries again
            _log.exception("recover() failed")
            continue
        if not report.clean:
            _log.warning(
                "still open after recover(): %d attempts, %d refunds",
                len(report.still_unresolved),
                len(report.refunds_still_owed),
            )


def create_app(
    settings: Settings,
    providers: Sequence[Provider],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    demo: FakeBackends | None = None,
) -> FastAPI:
    """The shop, routing payments over ``providers`` (first is primary for its methods).

    ``transport`` replaces the network for the providers (tests mount a mock there);
    ``demo`` enables the ``/demo`` page that takes fake providers down and up.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await asyncio.to_thread(ShopStore, settings.shop_db_path)
        # The recommended client (payfallback.transports): aiohttp's pool under
        # payfallback's phase-correct transport with the [aiohttp] extra, which is what
        # carries a Saturday evening's peak; httpcore otherwise. The Router sets connect
        # and read timeouts on every request it sends; the client's own are only the
        # fallback for anything else sent on it (the webhooks' lookups).
        client = (
            recommended_async_client()
            if transport is None
            else httpx.AsyncClient(transport=transport, timeout=DEFAULT_TIMEOUT)
        )
        async with client:
            router = AsyncRouter(
                providers,
                client=client,
                journal=f"sqlite:///{settings.journal_path}",
                breaker_policy=settings.breaker_policy,
                fallback_methods=settings.fallback_methods,
            )
            app.state.shop = Shop(settings, router, client, store, demo)
            recovering = (
                asyncio.create_task(_recover_forever(router, settings.recover_every))
                if settings.recover_every
                else None
            )
            try:
                yield
            finally:
                if recovering is not None:
                    recovering.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await recovering
                await router.aclose()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = FastAPI(title="payfallback example shop", lifespan=lifespan)

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return _html(pages.home_page())

    @app.post("/orders")
    async def create_order(request: Request) -> Response:
        shop = _shop(request)
        product = CATALOG.get((await _form(request)).get("sku", ""))
        if product is None:
            return _html(pages.message_page("Unknown product", "Pick a product."), 400)
        now = datetime.now(UTC)
        order = ShopOrder(
            order_id=f"WEB-{now:%Y%m%d}-{secrets.token_hex(4).upper()}",
            sku=product.sku,
            name=product.name,
            amount=product.price,
            currency="KRW",
            created_at=now,
        )
        await asyncio.to_thread(shop.store.add_order, order)
        return _see_other(f"/orders/{order.order_id}/checkout")

    @app.get("/orders/{order_id}/checkout", response_class=HTMLResponse)
    async def checkout(request: Request, order_id: str, msg: str = "") -> Response:
        shop = _shop(request)
        order = await asyncio.to_thread(shop.store.get_order, order_id)
        if order is None:
            return _html(pages.message_page("No such order", "This order does not exist."), 404)
        if await asyncio.to_thread(shop.router.journal.payment_for_order, order_id):
            return _see_other(f"/orders/{order_id}")
        offered = shop.offered()
        usual = shop.settings.usual_method
        return _html(
            pages.checkout_page(
                order,
                offered,
                usual=usual,
                usual_down=shop.configured(usual) and usual not in offered,
                message=_MESSAGES.get(msg),
            )
        )

    @app.post("/orders/{order_id}/pay")
    async def pay(request: Request, order_id: str) -> Response:
        shop = _shop(request)
        order = await asyncio.to_thread(shop.store.get_order, order_id)
        if order is None:
            return _html(pages.message_page("No such order", "This order does not exist."), 404)
        try:
            method = Method((await _form(request)).get("method", ""))
        except ValueError:
            method = None
        if method is None or method not in SHOP_METHODS or not shop.configured(method):
            return _html(pages.message_page("Checkout", "Choose a way to pay."), 400)
        ref = secrets.token_urlsafe(12)
        await asyncio.to_thread(shop.store.add_checkout, ref, order_id, method.value)
        base = f"{shop.base_url(request)}/return/{ref}"
        urls = ReturnUrls(success=f"{base}/success", cancel=f"{base}/cancel", fail=f"{base}/fail")
        try:
            session = await shop.router.start_checkout(order.to_order(), method, urls)
        except AllProvidersUnavailable:
            return _see_other(f"/orders/{order_id}/checkout", msg="unavailable")
        except InvalidRequest as exc:
            if await asyncio.to_thread(shop.router.journal.payment_for_order, order_id):
                return _see_other(f"/orders/{order_id}")
            return _html(pages.message_page("Checkout", exc.message, back=f"/orders/{order_id}"))
        except PayfallbackError as exc:  # ConfigurationError: ours to fix, not the customer's
            _log.error("checkout of %s with %s failed: %s", order_id, method.value, exc)
            return _see_other(f"/orders/{order_id}/checkout", msg="unavailable")
        await asyncio.to_thread(shop.store.set_session, ref, session.session_id)
        if session.fallback_from:
            return _html(pages.fallback_page(order, session, method, ref))
        return _see_other(f"/pay/{ref}")

    @app.get("/pay/{ref}")
    async def to_provider(request: Request, ref: str) -> Response:
        shop = _shop(request)
        found = await asyncio.to_thread(shop.store.checkout, ref)
        session = (
            await asyncio.to_thread(shop.router.journal.get_checkout, found[1])
            if found is not None and found[1] is not None
            else None
        )
        order = await asyncio.to_thread(shop.store.get_order, found[0]) if found else None
        if session is None or order is None:
            return _html(pages.message_page("Checkout", "This checkout does not exist."), 404)
        if await asyncio.to_thread(shop.router.journal.payment_for_order, order.order_id):
            return _see_other(f"/orders/{order.order_id}")
        url = session.redirect_url()
        if url:
            return RedirectResponse(url, status_code=303)
        page = pages.sdk_page(order, session)
        if page is None:
            text = f"{session.provider} opens its payment window with an SDK this shop lacks."
            return _html(pages.message_page("Checkout", text), 501)
        return _html(page)

    @app.get("/return/{ref}/{kind}")
    async def returned(request: Request, ref: str, kind: str) -> Response:
        shop = _shop(request)
        found = await asyncio.to_thread(shop.store.checkout, ref)
        order_id, session_id = found if found is not None else ("", None)
        if session_id is None or kind not in ("success", "cancel", "fail"):
            return _html(pages.message_page("Checkout", "This checkout does not exist."), 404)
        # Whatever the provider appended (pg_token, paymentKey, resultCode, token …): the
        # adapter decides what it means, including "cancelled" on the cancel and fail URLs.
        params = dict(request.query_params)
        try:
            await shop.router.complete_checkout(session_id, params)
        except Declined:
            return _see_other(f"/orders/{order_id}/checkout", msg="declined")
        except OutcomeUnknown:
            return _see_other(f"/orders/{order_id}", msg="confirming")
        except ProviderUnavailable:
            # Certainly not approved; the same return URL may be followed again.
            text = (
                "The provider did not answer while confirming your payment. Nothing was "
                "charged. Try again in a moment."
            )
            return _html(
                pages.message_page("Checkout", text, back=str(request.url), back_label="Try again"),
                503,
            )
        except InvalidRequest as exc:
            back = f"/orders/{order_id}/checkout"
            return _html(pages.message_page("Checkout", exc.message, back=back), 400)
        except PayfallbackError as exc:  # ConfigurationError: ours to fix
            _log.error("completing checkout %s failed: %s", session_id, exc)
            text = "We could not confirm the payment. Nothing more will be charged; please ask us."
            return _html(pages.message_page("Checkout", text, back=f"/orders/{order_id}"), 502)
        return _see_other(f"/orders/{order_id}")

    @app.get("/orders/{order_id}", response_class=HTMLResponse)
    async def receipt(request: Request, order_id: str, msg: str = "") -> Response:
        shop = _shop(request)
        order = await asyncio.to_thread(shop.store.get_order, order_id)
        if order is None:
            return _html(pages.message_page("No such order", "This order does not exist."), 404)
        journal = shop.router.journal
        payment = await asyncio.to_thread(journal.payment_for_order, order_id)
        refunds = await asyncio.to_thread(journal.refunds_for_order, order_id)
        attempts = await asyncio.to_thread(journal.attempts_for_order, order_id)
        events = await asyncio.to_thread(shop.store.events, order_id)
        # An attempt whose outcome is unknown may have charged: never invite a second payment.
        confirming = payment is None and any(a.state is AttemptState.UNKNOWN for a in attempts)
        page = pages.order_page(
            order, payment, refunds, events, confirming=confirming, message=_MESSAGES.get(msg)
        )
        return _html(page)

    @app.post("/orders/{order_id}/refund")
    async def refund(request: Request, order_id: str) -> Response:
        shop = _shop(request)
        payment = await asyncio.to_thread(shop.router.journal.payment_for_order, order_id)
        if payment is None:
            back = f"/orders/{order_id}"
            text = "This order has no payment to refund."
            return _html(pages.message_page("Refund", text, back=back), 400)
        form = await _form(request)
        raw = form.get("amount", "").strip()
        # The form's own id: a double-clicked 환불 button is one refund.
        request_id = form.get("request_id", "").strip() or None
        amount = None
        if raw:
            if not raw.isdigit():
                text = "Give the amount to refund in won, e.g. 5000, or leave it out for all."
                return _html(pages.message_page("Refund", text, back=f"/orders/{order_id}"), 400)
            amount = Money(amount=int(raw), currency=payment.amount.currency)
        try:
            done = await shop.router.refund(
                payment.payment_id,
                amount,
                reason="requested by the customer",
                idempotency_key=request_id,
            )
        except InvalidRequest as exc:
            back = f"/orders/{order_id}"
            return _html(pages.message_page("Refund", exc.message, back=back), 400)
        msg = "refunded" if done.state.value == "succeeded" else "refund-pending"
        return _see_other(f"/orders/{order_id}", msg=msg)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        shop = _shop(request)
        router = shop.router
        choices = router.available()  # also creates a breaker for every (provider, method)
        methods: dict[str, list[str]] = {}
        for choice in choices:
            methods.setdefault(choice.method.value, []).append(choice.provider)
        breakers = [
            {
                "provider": b.provider,
                "method": b.method,
                "state": b.state.value,
                "failure_rate": round(b.failure_rate, 3),
                "slow_rate": round(b.slow_rate, 3),
                "calls": b.calls,
                "open_until": b.open_until.isoformat() if b.open_until else None,
                "trips": b.trips,
                "reason": b.reason,
            }
            for b in router.health()
        ]
        counts = await asyncio.to_thread(router.journal.counts)
        offered = [m for m in SHOP_METHODS if shop.configured(m)]
        healthy = [m for m in offered if m.value in methods]
        status = "ok" if len(healthy) == len(offered) else "degraded" if healthy else "down"
        body: dict[str, Any] = {
            "status": status,
            "methods": {m.value: methods.get(m.value, []) for m in offered},
            "breakers": breakers,
            "journal": {
                "orders": counts.orders,
                "payments": counts.payments,
                "unresolved_attempts": counts.unresolved_attempts,
                "refunds_owed": counts.refunds_owed,
                "refunds_owed_amount": counts.refunds_owed_amount,
            },
        }
        # 200 even when degraded: the shop itself is up, and a load balancer must not take
        # it out of rotation because one wallet is down.
        return JSONResponse(body)

    @app.post("/webhooks/portone")
    async def portone_webhook(request: Request) -> JSONResponse:
        shop = _shop(request)
        secret = shop.settings.portone_webhook_secret
        if secret is None:
            return JSONResponse({"detail": "PortOne webhooks are not configured"}, 404)
        body = await request.body()  # the raw bytes: the signature covers them exactly
        try:
            note = webhooks.parse_portone(request.headers, body, secret=secret)
        except webhooks.BadDelivery as exc:
            return JSONResponse({"detail": f"rejected: {exc}"}, 400)
        if note is None:
            return JSONResponse({"status": "ignored", "reason": "event type not handled"})
        return await _webhook(shop, note)

    @app.post("/webhooks/tosspayments")
    async def toss_webhook(request: Request) -> JSONResponse:
        shop = _shop(request)
        try:
            note = webhooks.parse_toss(request.headers, await request.body())
        except webhooks.BadDelivery as exc:
            return JSONResponse({"detail": f"rejected: {exc}"}, 400)
        if note is None:
            return JSONResponse({"status": "ignored", "reason": "event type not handled"})
        return await _webhook(shop, note)

    if demo is not None:

        @app.get("/demo", response_class=HTMLResponse)
        async def demo_page() -> HTMLResponse:
            return _html(pages.demo_page({name: demo.is_down(name) for name in demo.banks}))

        @app.post("/demo/{name}/{change}")
        async def demo_switch(name: str, change: str) -> Response:
            if name not in demo.banks or change not in ("up", "down"):
                return _html(pages.message_page("Demo", "No such provider or change."), 404)
            demo.set_down(name, change == "down")
            return _see_other("/demo")

    return app
