"""End to end in headless Chromium: the example shop keeps selling when Kakao Pay goes down.

A customer pays with Kakao Pay; then Kakao Pay starts resetting every connection; two
checkouts that ask for it fail there (the customer is offered Naver Pay instead and goes
back); its breaker opens, the checkout page stops offering it and says so; the customer
pays with Naver Pay and is refunded. The providers are the fake ones on a loopback port;
the browser clicks through their approval pages as it would through a real wallet's.

Debian's ``chromium`` is driven with Playwright for Python (its pip package brings the
driver; no browser is downloaded). When ``/usr/bin/chromium`` is missing, the session
fixture :func:`chromium` runs ``.ci/browser-setup`` to install it, and fails the test with
that script's output when it cannot. The screenshot of the checkout page with the fallback
notice is saved under ``tmp_path``, and also to ``docs/img/checkout-fallback.png`` when
``PAYFALLBACK_SAVE_SCREENSHOT=1``.

The browser stays on this machine. Its host resolver answers only for ``localhost`` and
``127.0.0.1``; every other name fails inside Chromium before any lookup (``^NOTFOUND``:
no DNS query, and no IPv6 route probe, which Chromium makes only for names it resolves
itself). Background networking, component updates, sync, default apps, extensions, domain
reliability, client-side phishing detection, pings and crash reporting are off. Chromium
writes its net log (``--log-net-log``) and the test reads it back: no DNS transaction, no
name resolved and no socket opened for anything but loopback, and every request Chromium
starts on its own for an outside host (it still does: the optimisation guide's on-demand
component check and the Google account check) ended with ``ERR_NAME_NOT_RESOLVED``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
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
BROWSER_SETUP = ROOT / ".ci" / "browser-setup"
#: Names Chromium may resolve; everything else fails inside the browser, before any lookup.
HOST_RESOLVER_RULES = "MAP * ^NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    f"--host-resolver-rules={HOST_RESOLVER_RULES}",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    "--no-service-autorun",
    "--metrics-recording-only",
]
SCREENSHOT_IN_REPO = ROOT / "docs" / "img" / "checkout-fallback.png"
# Every wait in the test is bounded by this (milliseconds).
WAIT_MS = 10_000
#: net::ERR_NAME_NOT_RESOLVED, what the resolver rules answer for any outside name.
ERR_NAME_NOT_RESOLVED = -105


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with ``.ci/browser-setup`` when it is missing."""
    if not CHROMIUM.exists():
        setup = subprocess.run(
            [str(BROWSER_SETUP)], capture_output=True, text=True, timeout=900, check=False
        )
        if setup.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(
                f"{CHROMIUM} is missing and {BROWSER_SETUP.name} could not install it "
                f"(exit {setup.returncode}):\n{setup.stdout}{setup.stderr}",
                pytrace=False,
            )
    return CHROMIUM


@contextmanager
def chromium_page(executable: Path, profile: Path, net_log: Path) -> Iterator[Page]:
    """A page of a fresh headless Chromium with its own user-data dir, logging to ``net_log``."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),  # --user-data-dir
            executable_path=str(executable),
            headless=True,  # --headless
            # Everything: the log then shows every datagram sent, not only connects.
            args=[*CHROMIUM_FLAGS, f"--log-net-log={net_log}", "--net-log-capture-mode=Everything"],
            viewport={"width": 760, "height": 620},
            timeout=3 * WAIT_MS,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            context.close()  # Chromium finishes the net log as it exits


# -- the net log ----------------------------------------------------------------------------

#: Events that mean Chromium looked a name up, or opened (or tried) a connection.
_RESOLVE = re.compile(r"^(HOST_RESOLVER_|DNS_)")
_CONNECT = re.compile(r"(_CONNECT|_CONNECT_ATTEMPT|_CONNECT_JOB_CONNECT)$")


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(value: str) -> str:
    """The host in ``https://name:443``, ``name``, ``1.2.3.4:53`` or ``[::1]:80``."""
    if "://" in value:
        return urlsplit(value).hostname or ""
    if value.startswith("["):
        return value[1 : value.index("]")]
    head, colon, port = value.rpartition(":")
    return head if colon and port.isdigit() and head.count(":") == 0 else value


@dataclass
class NetLogReport:
    """What a Chromium net log says about the network outside this machine."""

    #: Outside names Chromium looked up itself, or sent a DNS query for.
    resolved: set[str] = field(default_factory=set)
    #: Outside addresses Chromium opened a connection to or sent a datagram to.
    connected: set[str] = field(default_factory=set)
    #: Outside addresses of UDP sockets that were connected but never sent anything: a
    #: routing-table lookup, no packet (Chromium's IPv6 reachability check connects a UDP
    #: socket to Google Public DNS, and stock Chromium has no switch to turn it off).
    route_lookups: set[str] = field(default_factory=set)
    #: Requests to outside hosts, by source id: their URL and their final net error.
    outside_requests: dict[int, tuple[str, int | None]] = field(default_factory=dict)
    #: Loopback URLs requested (the shop and the fake providers).
    loopback_urls: set[str] = field(default_factory=set)

    @property
    def reached_out(self) -> bool:
        unrefused = [u for u, e in self.outside_requests.values() if e != ERR_NAME_NOT_RESOLVED]
        return bool(self.resolved or self.connected or unrefused)


def _read_net_log(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        log: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        # A log cut short (the browser did not exit cleanly) lacks its closing "]}".
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    return log


def read_net_log(path: Path) -> NetLogReport:
    log = _read_net_log(path)
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    source_types = {number: name for name, number in log["constants"]["logSourceType"].items()}
    report = NetLogReport()
    remote: dict[int, set[str]] = {}  # outside addresses by socket (source id)
    udp: set[int] = set()  # UDP sockets, by source id
    sent: set[int] = set()  # sockets that sent a datagram
    socket_of: dict[int, int] = {}  # a UDP socket's source -> its client socket's
    for event in log["events"]:
        kind = names.get(event["type"], "")
        params = event.get("params") or {}
        source = int(event["source"]["id"])
        if kind == "DNS_TRANSACTION" and "hostname" in params:
            report.resolved.add(str(params["hostname"]))  # a query on the wire, always
        if _RESOLVE.match(kind):
            for key in ("host", "hostname"):
                if isinstance(params.get(key), str):
                    host = _host_of(params[key])
                    if not is_loopback(host):
                        report.resolved.add(host)
        if source_types.get(event["source"]["type"], "").startswith("UDP_"):
            udp.add(source)
            depends = params.get("source_dependency")
            if (
                kind == "SOCKET_ALIVE"
                and isinstance(depends, dict)
                and source_types.get(depends.get("type"), "").startswith("UDP_")
            ):
                socket_of[source] = int(depends["id"])
        if kind in ("UDP_BYTES_SENT", "UDP_SEND_ERROR"):
            sent.add(source)
        if _CONNECT.search(kind) or kind in ("UDP_BYTES_SENT", "UDP_SEND_ERROR"):
            addresses = params.get("address_list") or [params.get("address")]
            for address in addresses:
                if isinstance(address, str) and not is_loopback(_host_of(address)):
                    remote.setdefault(source, set()).add(address)
        if kind == "URL_REQUEST_START_JOB" and isinstance(params.get("url"), str):
            url = params["url"]
            host = urlsplit(url).hostname or ""
            if is_loopback(host):
                report.loopback_urls.add(url)
            else:
                report.outside_requests[source] = (url, None)
        if source in report.outside_requests and "net_error" in params:
            url, _ = report.outside_requests[source]
            report.outside_requests[source] = (url, int(params["net_error"]))
    sent |= {socket_of.get(source, source) for source in sent}
    for source, addresses in remote.items():
        if source in udp and socket_of.get(source, source) not in sent:
            report.route_lookups |= addresses
        else:
            report.connected |= addresses
    return report


def test_the_net_log_check_sees_lookups_probes_and_requests(tmp_path: Path) -> None:
    """What the check flags, on a log shaped like Chromium's without the resolver rules."""
    types = {
        "URL_REQUEST_START_JOB": 2,
        "HOST_RESOLVER_MANAGER_REQUEST": 3,
        "DNS_TRANSACTION": 4,
        "UDP_CONNECT": 5,
        "TCP_CONNECT": 6,
        "DNS_CONFIG_CHANGED": 7,
        "UDP_LOCAL_ADDRESS": 8,
        "UDP_BYTES_SENT": 9,
    }

    sources = {"URL_REQUEST": 1, "HOST_RESOLVER_IMPL_JOB": 2, "UDP_SOCKET": 3}

    def event(kind: str, source: int, **params: Any) -> dict[str, Any]:
        of = sources["UDP_SOCKET" if kind.startswith("UDP_") else "URL_REQUEST"]
        return {"type": types[kind], "source": {"id": source, "type": of}, "params": params}

    leaky = [
        event("DNS_CONFIG_CHANGED", 1, nameservers=["10.255.255.53:53"]),
        event("URL_REQUEST_START_JOB", 10, url="http://127.0.0.1:8000/", method="GET"),
        event("TCP_CONNECT", 11, address_list=["127.0.0.1:8000"]),
        event("URL_REQUEST_START_JOB", 20, url="https://accounts.google.com/ListAccounts"),
        event("HOST_RESOLVER_MANAGER_REQUEST", 21, host="https://accounts.google.com"),
        event("UDP_CONNECT", 22, address="[2001:4860:4860::8888]:443"),
        event("UDP_LOCAL_ADDRESS", 22, address="[fd00::2]:40260"),
        event("DNS_TRANSACTION", 23, hostname="accounts.google.com", query_type=1),
        event("UDP_CONNECT", 23, address="10.255.255.53:53"),
        event("UDP_BYTES_SENT", 23, byte_count=37),
        event("URL_REQUEST_START_JOB", 20, net_error=ERR_NAME_NOT_RESOLVED),
    ]
    path = tmp_path / "leaky.json"
    path.write_text(
        json.dumps(
            {"constants": {"logEventTypes": types, "logSourceType": sources}, "events": leaky}
        )
    )
    report = read_net_log(path)
    assert report.reached_out
    assert report.resolved == {"accounts.google.com"}
    assert report.connected == {"10.255.255.53:53"}  # the DNS query went out
    assert report.route_lookups == {"[2001:4860:4860::8888]:443"}  # connected, nothing sent
    assert report.loopback_urls == {"http://127.0.0.1:8000/"}

    # The same request refused inside the browser, in a log cut short: nothing left.
    quiet = [leaky[1], leaky[2], leaky[3], leaky[5], leaky[6], leaky[-1]]
    cut = (
        json.dumps(
            {"constants": {"logEventTypes": types, "logSourceType": sources}, "events": quiet}
        )[:-2]
        + ",\n"
    )
    path.write_text(cut)
    report = read_net_log(path)
    assert not report.reached_out
    assert report.route_lookups == {"[2001:4860:4860::8888]:443"}
    assert report.outside_requests == {
        20: ("https://accounts.google.com/ListAccounts", ERR_NAME_NOT_RESOLVED)
    }


# -- the walk-through -----------------------------------------------------------------------


def _approve_at_provider(page: Page, provider_url: str) -> None:
    """On the fake provider's approval page, approve (as the customer would in the wallet)."""
    page.wait_for_url(re.compile(re.escape(provider_url) + r"/pay/"))
    expect(page.locator("h1")).to_contain_text("pay")
    page.click("#approve")


def test_checkout_falls_back_from_kakao_pay_to_naver_pay_and_refunds(
    tmp_path: Path, chromium: Path
) -> None:
    net_log = tmp_path / "chromium-net-log.json"
    settings = Settings(
        data_dir=tmp_path / "shop", breaker_policy=demo_breaker_policy(), recover_every=None
    )
    with FakeBackends() as fakes:
        kakao, naver = fakes.banks["kakaopay"], fakes.banks["naverpay"]
        app = create_app(settings, fakes.providers, demo=fakes)
        with (
            serve_in_thread(app) as shop,
            chromium_page(chromium, tmp_path / "chromium-profile", net_log) as page,
        ):
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

    # The browser reached nothing but this machine.
    report = read_net_log(net_log)
    assert f"{shop}/" in report.loopback_urls  # the log covers the walk-through itself
    assert report.resolved == set(), "Chromium looked up outside names"
    assert report.connected == set(), "Chromium connected or sent outside this machine"
    sent = [
        url for url, error in report.outside_requests.values() if error != ERR_NAME_NOT_RESOLVED
    ]
    assert sent == [], "Chromium sent a request outside this machine"
    assert not report.reached_out
