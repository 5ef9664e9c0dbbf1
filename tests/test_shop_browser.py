"""End to end in headless Chromium: the example shop keeps selling when Kakao Pay goes down.

A customer pays with Kakao Pay; then Kakao Pay starts resetting every connection; two
checkouts that ask for it fail there (the customer is offered Naver Pay instead and goes
back); its breaker opens, the checkout page stops offering it and says so; the customer
pays with Naver Pay and is refunded. The providers are the fake ones on a loopback port;
the browser clicks through their approval pages as it would through a real wallet's.

Debian's ``chromium`` is driven with Playwright for Python (its pip package brings the
driver; no browser is downloaded). ``.ci/browser-setup`` installs Chromium in CI. The
screenshot of the checkout page with the fallback notice is saved under ``tmp_path``, and
also to ``docs/img/checkout-fallback.png`` when ``PAYFALLBACK_SAVE_SCREENSHOT=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from payfallback.testing import double_charges

ROOT = Path(__file__).resolve().parent.parent
# The examples are scripts and a package run from the repository root, not a distribution:
# their directory goes on the path so they are imported by the names mypy checks them under.
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))

from fastapi_shop import (  # noqa: E402  (needs the path above)
    FakeBackends,
    Settings,
    create_app,
    demo_breaker_policy,
)
from fastapi_shop.serve import serve_in_thread  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_IN_REPO = (
    Path(__file__).resolve().parent.parent / "docs" / "img" / "checkout-fallback.png"
)
# Every wait in the test is bounded by this (milliseconds).
WAIT_MS = 10_000


@contextmanager
def chromium_page(profile: Path) -> Iterator[Page]:
    """A page of a fresh headless Chromium with its own user-data dir."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: run .ci/browser-setup (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),  # --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,  # --headless
            args=CHROMIUM_FLAGS,
            viewport={"width": 760, "height": 620},
            timeout=3 * WAIT_MS,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            context.close()


def _approve_at_provider(page: Page, provider_url: str) -> None:
    """On the fake provider's approval page, approve (as the customer would in the wallet)."""
    page.wait_for_url(re.compile(re.escape(provider_url) + r"/pay/"))
    expect(page.locator("h1")).to_contain_text("pay")
    page.click("#approve")


def test_checkout_falls_back_from_kakao_pay_to_naver_pay_and_refunds(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "shop", breaker_policy=demo_breaker_policy(), recover_every=None
    )
    with FakeBackends() as fakes:
        kakao, naver = fakes.banks["kakaopay"], fakes.banks["naverpay"]
        app = create_app(settings, fakes.providers, demo=fakes)
        with serve_in_thread(app) as shop, chromium_page(tmp_path / "chromium-profile") as page:
            # 1. Kakao Pay works: the usual wallet is offered first, with no notice.
            page.goto(shop + "/")
            page.click("#buy-house-blend")
            expect(page.locator("#pay-kakaopay")).to_be_visible()
            expect(page.locator("#fallback-notice")).to_have_count(0)
            page.click("#pay-kakaopay")
            _approve_at_provider(page, fakes.server.url_for(kakao))
            page.wait_for_url(re.compile(re.escape(shop) + r"/orders/WEB-[^/?]+$"))
            expect(page.locator("#status")).to_have_text("Paid")
            expect(page.locator("#receipt-paid-with")).to_have_text("Kakao Pay")
            expect(page.locator("#receipt-amount")).to_have_text("39,000 KRW")
            assert [(e.status, e.amount) for e in kakao.ledger] == [("paid", 39_000)]

            # 2. Kakao Pay goes down: every connection to it is reset.
            kakao.refuse = True
            page.goto(shop + "/")
            page.click("#buy-drip-bags")
            order_id = page.inner_text("#order-id")
            for _ in range(2):
                # Still offered (its breaker has not seen enough yet); the attempt fails
                # there and the Router prepares Naver Pay instead. The customer goes back.
                page.click("#pay-kakaopay")
                expect(page.locator("#switched")).to_contain_text("Kakao Pay did not answer")
                expect(page.locator("#continue")).to_have_text("Continue with Naver Pay")
                page.click("#back")
            assert kakao.requests["ready"] == 3  # one success, then the two that failed

            # 3. Its breaker is open: Kakao Pay is no longer offered, and the page says why.
            expect(page.locator("#fallback-notice")).to_contain_text(
                "Kakao Pay is not available right now"
            )
            expect(page.locator("#pay-kakaopay")).to_have_count(0)
            expect(page.locator("#pay-naverpay")).to_be_visible()
            shot = tmp_path / "checkout-fallback.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 5_000
            if os.environ.get("PAYFALLBACK_SAVE_SCREENSHOT") == "1":
                SCREENSHOT_IN_REPO.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT_IN_REPO)
            health = httpx.get(shop + "/health", timeout=WAIT_MS / 1000).json()
            states = {(b["provider"], b["method"]): b["state"] for b in health["breakers"]}
            assert states[("kakaopay", "kakaopay")] == "open"
            assert health["status"] == "degraded"
            assert health["methods"]["kakaopay"] == []

            # 4. Pay with Naver Pay.
            page.click("#pay-naverpay")
            _approve_at_provider(page, fakes.server.url_for(naver))
            page.wait_for_url(re.compile(re.escape(f"{shop}/orders/{order_id}") + "$"))
            expect(page.locator("#receipt-paid-with")).to_have_text("Naver Pay")
            expect(page.locator("#receipt-amount")).to_have_text("12,000 KRW")
            assert kakao.requests["ready"] == 3  # not asked again while its breaker is open

            # 5. Refund.
            page.click("#refund")
            expect(page.locator("#status")).to_have_text("Refunded")
            expect(page.locator("#refunds")).to_contain_text("12,000 KRW: done")

        paid_at_naver = [e for e in naver.ledger if e.approved_at is not None]
        assert [(e.status, e.cancelled_amount) for e in paid_at_naver] == [("cancelled", 12_000)]
        # The two Naver Pay checkouts prepared during the fallback were never approved.
        assert [e.status for e in naver.ledger if e.approved_at is None] == ["ready", "ready"]
        assert double_charges(kakao, naver, fakes.banks["tosspayments"]) == {}
