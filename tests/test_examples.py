"""The examples integrators copy: the POS terminal, the billing run and the FastAPI shop.

The POS terminal and the billing script run as programs (``python examples/…``), through
their arguments and their stdin, and their receipts and reports are checked along with
the journal they leave. The shop runs in-process under uvicorn on a loopback port; its
providers are mocked only at HTTP — fake banks behind respx, and the real Toss Payments,
Naver Pay and PortOne adapters against respx routes shaped like the providers' documented
answers. The browser walk-through is ``test_shop_browser.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from payfallback_naverpay import NaverPay
from payfallback_portone import PortOne
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr

from payfallback import ConfigurationError, ManualClock, Method, Provider, Router
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, double_charges, mock_transport

ROOT = Path(__file__).resolve().parent.parent
# The examples are scripts and a package run from the repository root, not a distribution:
# their directory goes on the path so they are imported by the names mypy checks them under.
if str(ROOT / "examples") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples"))

import billing_charge  # noqa: E402  (needs the path above)
import pos_terminal  # noqa: E402
from fastapi_shop import (  # noqa: E402
    FakeBackends,
    Settings,
    create_app,
    demo_breaker_policy,
)
from fastapi_shop.serve import serve_in_thread  # noqa: E402
from fastapi_shop.settings import live_providers, only_methods  # noqa: E402
from fastapi_shop.store import ShopStore  # noqa: E402

from tests.test_journal_failures import FailingOnce  # noqa: E402

POS = ROOT / "examples" / "pos_terminal.py"
BILLING = ROOT / "examples" / "billing_charge.py"
TOSS_PAYLOADS = ROOT / "adapters" / "tosspayments" / "tests" / "payloads"
PORTONE_PAYLOADS = ROOT / "adapters" / "portone" / "tests" / "payloads"

TOSS_SECRET = "test_sk_shop-example-SECRET-0001"
TOSS_CLIENT = "test_ck_shop-example-0001"
PAYMENT_KEY = "tgen_20250601shopexample0001"
PORTONE_SECRET = "portone-api-SECRET-never-shown"
PORTONE_STORE = "store-4ff4af41-85e3-4559-8eb8-0d08a2c6ceec"
PORTONE_CHANNEL = "channel-key-893597d6-e62d-410f-83f9-119f530b4b11"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"shop-example-webhook-key-0001").decode()


# -- the POS terminal ---------------------------------------------------------------------------


def run_program(
    script: Path, *args: str, stdin: str = "", cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def receipt_fields(stdout: str) -> dict[str, str]:
    """The ``label  value`` lines of the last receipt printed."""
    receipt = stdout.rsplit("— receipt", 1)[-1]
    labels = (
        "Paid with|Approval no|Card issuer|Card|Installments|Wallet paid by|Transaction"
        "|Payment id|Order|Note|Receipt URL"
    )
    return {
        m.group(1): m.group(2)
        for m in re.finditer(rf"^  ({labels})\s{{2,}}(.+)$", receipt, re.MULTILINE)
    }


def test_pos_falls_back_from_kakao_pay_from_its_arguments(tmp_path: Path) -> None:
    journal = tmp_path / "pos.sqlite3"
    done = run_program(
        POS,
        *("--amount", "4500", "--method", "kakaopay", "--fake-down", "kakaopay"),
        *("--order-id", "POS-TEST-0001", "--item", "Americano", "--journal", str(journal)),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Kakao Pay is not answering. Nothing was charged." in out
    assert "Falling back to Naver Pay." in out
    assert re.search(r"^  Americano\s+4,500 KRW$", out, re.MULTILINE)
    fields = receipt_fields(out)
    # 승인번호, the card, 할부: what a Korean receipt prints, from the provider's answer.
    assert re.fullmatch(r"\d{8}", fields.pop("Approval no"))
    assert fields == {
        "Paid with": "Naver Pay (naverpay)",
        "Card": "5365-10**-****-7543 (credit)",
        "Installments": "lump sum",
        "Transaction": "naverpay-000001",
        "Payment id": "pay_POS-TEST-0001",
        "Order": "POS-TEST-0001",
        "Note": "Kakao Pay was not answering",
        "Receipt URL": "https://naverpay.fake.test/receipts/naverpay-000001",
    }
    with SQLiteJournal(journal) as record:
        payment = record.payment_for_order("POS-TEST-0001")
        assert payment is not None
        assert (payment.provider, payment.amount.amount) == ("naverpay", 4500)
        attempts = record.attempts_for_order("POS-TEST-0001")
        assert [(a.provider, a.state.value) for a in attempts] == [
            ("kakaopay", "failed"),
            ("naverpay", "succeeded"),
        ]
    # The Router's decisions are logged to stderr, not mixed into the receipt.
    assert "payment.attempt" in done.stderr
    assert "payment.attempt" not in out


def test_pos_charged_twice_for_one_order_returns_the_first_payment(tmp_path: Path) -> None:
    journal = ["--journal", str(tmp_path / "pos.sqlite3"), "--order-id", "POS-TEST-0002"]
    first = run_program(
        POS,
        "--amount",
        "4500",
        "--method",
        "kakaopay",
        "--fake-down",
        "kakaopay",
        *journal,
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    # Kakao Pay answers again: charging the order again must not charge it there.
    again = run_program(POS, "--amount", "4500", "--method", "kakaopay", *journal, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert receipt_fields(again.stdout)["Paid with"] == "Naver Pay (naverpay)"
    assert receipt_fields(again.stdout)["Payment id"] == receipt_fields(first.stdout)["Payment id"]


def test_pos_refund_pressed_twice_refunds_once(tmp_path: Path) -> None:
    journal = ["--journal", str(tmp_path / "pos.sqlite3")]
    sold = run_program(
        POS,
        "--amount",
        "4500",
        "--method",
        "card",
        "--order-id",
        "POS-RF-1",
        *journal,
        cwd=tmp_path,
    )
    assert sold.returncode == 0, sold.stderr
    first = run_program(POS, "--refund", "POS-RF-1", *journal, cwd=tmp_path)
    again = run_program(POS, "--refund", "POS-RF-1", *journal, cwd=tmp_path)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    ids = [re.search(r"Refund id\s+(\S+)", r.stdout) for r in (first, again)]
    assert ids[0] is not None
    assert ids[1] is not None
    assert ids[0].group(1) == ids[1].group(1)
    assert "4,500 KRW" in first.stdout
    with sqlite3.connect(tmp_path / "pos.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM refunds").fetchone() == (1,)
    missing = run_program(POS, "--refund", "POS-NOPE", *journal, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no payment to refund" in missing.stderr


def test_pos_takes_a_card_when_both_wallets_are_down(tmp_path: Path) -> None:
    done = run_program(
        POS,
        *("--amount", "12000", "--method", "kakaopay", "--fake-down", "kakaopay,naverpay"),
        *("--journal", str(tmp_path / "pos.sqlite3")),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    fields = receipt_fields(done.stdout)
    assert fields["Paid with"] == "Card (tosspayments)"
    assert fields["Transaction"] == "tosspayments-000001"
    assert "12,000 KRW" in done.stdout


def test_pos_decline_is_not_taken_elsewhere(tmp_path: Path) -> None:
    journal = tmp_path / "pos.sqlite3"
    done = run_program(
        POS,
        *("--amount", "4500", "--method", "naverpay", "--code", "bk-declined"),
        *("--order-id", "POS-TEST-0003", "--journal", str(journal)),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Declined by Naver Pay" in done.stdout
    assert "receipt" not in done.stdout
    with SQLiteJournal(journal) as record:
        assert record.payment_for_order("POS-TEST-0003") is None
        assert [a.provider for a in record.attempts_for_order("POS-TEST-0003")] == ["naverpay"]


def test_pos_says_nothing_was_charged_when_its_journal_fails(tmp_path: Path) -> None:
    """The till's journal (its disk) fails before the charge is sent: the till says nothing
    was charged, and ends the sale unpaid rather than with a traceback."""
    banks = [FakeBank(provider) for _, provider in pos_terminal.METHODS.values()]
    providers = [
        FakeProvider(provider, methods=[method])
        for method, (_, provider) in pos_terminal.METHODS.items()
    ]
    said: list[str] = []
    with (
        httpx.Client(transport=mock_transport(*banks)) as client,
        FailingOnce(tmp_path / "pos.sqlite3", durable=False) as journal,
    ):
        journal.fails = "begin_attempt"
        till = pos_terminal.Terminal(
            Router(providers, client=client, journal=journal), ask=None, say=said.append
        )
        status = till.sell(4500, method=Method.KAKAOPAY, fallback=[], order_id="POS-TEST-0009")
        assert journal.attempts_for_order("POS-TEST-0009") == []
    assert status == pos_terminal.NOT_PAID
    assert "its journal failed" in said[-1]
    assert "Nothing was charged" in said[-1]
    assert sum(bank.requests["charge"] for bank in banks) == 0


def test_pos_interactive_session_through_stdin(tmp_path: Path) -> None:
    # Amount, Kakao Pay (1), the test code; Kakao Pay fails; Naver Pay (now 1), the test
    # code; the receipt; an empty amount ends the session.
    done = run_program(
        POS,
        "--fake-down",
        "kakaopay",
        "--journal",
        str(tmp_path / "pos.sqlite3"),
        stdin="4,500\n1\n\n1\n\n\n",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    menus = re.findall(r"Pay with:\n((?:  \d\) .+\n)+)", out)
    assert menus == [
        "  1) Kakao Pay\n  2) Naver Pay\n  3) Card\n",
        "  1) Naver Pay\n  2) Card\n",
    ]
    assert "Kakao Pay is not answering. Nothing was charged." in out
    fields = receipt_fields(out)
    assert fields["Paid with"] == "Naver Pay (naverpay)"
    assert fields["Transaction"] == "naverpay-000001"
    assert re.search(r"^  Coffee\s+4,500 KRW$", out, re.MULTILINE)
    assert out.rstrip().endswith("Amount in won (Enter to quit):")


def test_pos_refuses_an_unknown_provider_to_take_down(tmp_path: Path) -> None:
    done = run_program(
        POS, "--amount", "100", "--method", "card", "--fake-down", "vanpay", cwd=tmp_path
    )
    assert done.returncode == 2
    assert "unknown provider(s) vanpay" in done.stderr


# -- the billing run ----------------------------------------------------------------------------


def test_billing_run_fails_over_safely_and_a_second_run_charges_nobody(tmp_path: Path) -> None:
    lines: list[str] = []
    # 02:00 KST on a Sunday: a nightly job, far from any peak window.
    clock = ManualClock(datetime(2025, 6, 1, 17, 0, tzinfo=UTC))
    first, second, night = billing_charge.run_fake(
        tmp_path / "billing.sqlite3", clock=clock, say=lines.append
    )

    def outcomes(report: billing_charge.RunReport) -> list[tuple[str, str, str | None]]:
        return [(o.customer, o.status, o.provider) for o in report.outcomes]

    assert outcomes(first) == [
        ("alice", "paid", "tosspayments"),
        ("bob", "paid", "tosspayments"),  # its answer was lost; a lookup found it paid
        ("chloe", "declined", "tosspayments"),  # a decline is not taken to NICEPAY
        ("dan", "paid", "nicepay"),
        ("eun", "paid", "nicepay"),
        ("fay", "paid", "nicepay"),
    ]
    assert outcomes(second) == [
        ("alice", "paid", "tosspayments"),
        ("bob", "paid", "tosspayments"),
        ("chloe", "declined", "nicepay"),
        ("dan", "paid", "nicepay"),
        ("eun", "paid", "nicepay"),
        ("fay", "paid", "nicepay"),
    ]
    assert [o.payment_id for o in second.outcomes] == [o.payment_id for o in first.outcomes]
    # Bob was charged once, at Toss, although Toss's answer never reached the run.
    assert [e.status for e in night.toss.charges_for_order("SUB-bob-202506")] == ["paid"]
    assert night.nice.charges_for_order("SUB-bob-202506") == []
    assert double_charges(night.toss, night.nice) == {}
    text = "\n".join(lines)
    assert "tosspayments: the answer was lost" in text
    assert "tosspayments says: paid" in text
    assert "tosspayments skipped: its breaker is open" in text
    assert "requests sent on the second run: 1" in text
    assert "double charges across both PGs: 0" in text


def test_billing_script_runs_from_the_command_line(tmp_path: Path) -> None:
    done = run_program(BILLING, "--journal", str(tmp_path / "billing.sqlite3"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("paid 5, declined 1, unknown 0, to retry 0") == 2
    assert "double charges across both PGs: 0" in done.stdout


def test_billing_live_mode_names_what_is_missing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BILLING), "--live", "--journal", str(tmp_path / "j.sqlite3")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TOSS_SECRET_KEY": "test_sk_x"},
    )
    assert done.returncode == 2
    missing = done.stderr.split("--live needs ", 1)[1].split(" (see", 1)[0].split(", ")
    assert missing == [
        "NICEPAY_CLIENT_KEY",
        "NICEPAY_SECRET_KEY",
        "BILLING_CUSTOMER",
        "BILLING_AMOUNT",
        "BILLING_TOSS_KEY",
        "BILLING_TOSS_CUSTOMER_KEY",
        "BILLING_NICEPAY_BID",
    ]


# -- the shop: helpers --------------------------------------------------------------------------


@contextmanager
def shop(
    tmp_path: Path,
    providers: Sequence[Provider],
    transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> Iterator[httpx.Client]:
    """The shop on a loopback port, and a client that does not follow redirects."""
    config = Settings(
        data_dir=tmp_path / "shop",
        breaker_policy=demo_breaker_policy(),
        recover_every=None,
        **settings,
    )
    app = create_app(config, providers, transport=transport)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        yield http


def fake_routes(mock: respx.MockRouter, *banks: FakeBank) -> None:
    for bank in banks:
        mock.route(host=bank.host).mock(side_effect=bank.respond)


def new_order(http: httpx.Client, sku: str = "drip-bags") -> str:
    made = http.post("/orders", data={"sku": sku})
    assert made.status_code == 303
    found = re.fullmatch(r"/orders/(WEB-[0-9]{8}-[0-9A-F]{8})/checkout", made.headers["location"])
    assert found is not None
    return found.group(1)


def start_checkout(http: httpx.Client, order_id: str, method: str) -> tuple[str, str]:
    """Pay with ``method``; returns the ``/pay/{ref}`` path and the page it shows."""
    started = http.post(f"/orders/{order_id}/pay", data={"method": method})
    assert started.status_code == 303, started.text
    pay = started.headers["location"]
    assert re.fullmatch(r"/pay/[A-Za-z0-9_-]{16}", pay)
    return pay, http.get(pay).text


def sdk_params(page: str) -> dict[str, str]:
    found = re.search(r"const p = (\{.*?\});\n", page)
    assert found is not None, page
    params = json.loads(found.group(1))
    assert isinstance(params, dict)
    return params


def toss_payment(name: str, **changes: Any) -> dict[str, Any]:
    payment = json.loads((TOSS_PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(payment, dict)
    payment.update(changes)
    return payment


def toss_provider() -> TossPayments:
    return TossPayments(
        secret_key=TOSS_SECRET, client_key=TOSS_CLIENT, methods=[Method.TOSSPAY, Method.CARD]
    )


def order_text(http: httpx.Client, order_id: str) -> str:
    page = http.get(f"/orders/{order_id}")
    assert page.status_code == 200
    return re.sub(r"<[^>]+>", " ", page.text)


# -- the shop: Toss Payments, from the SDK page to a webhook ------------------------------------


def test_shop_toss_checkout_confirm_and_webhooks_verified_by_refetching(tmp_path: Path) -> None:
    kakao, naver = FakeBank("kakaopay"), FakeBank("naverpay")
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    fake_routes(mock, kakao, naver)
    toss_api = "https://api.tosspayments.com/v1/payments"
    providers: list[Provider] = [
        FakeProvider("kakaopay", methods=[Method.KAKAOPAY]),
        FakeProvider("naverpay", methods=[Method.NAVERPAY]),
        toss_provider(),
    ]
    with shop(tmp_path, providers, httpx.MockTransport(mock.async_handler)) as http:
        order_id = new_order(http)
        attempt = f"{order_id}_1"
        _, page = start_checkout(http, order_id, "tosspay")

        # The page opens Toss's SDK with what the adapter prepared, and no secret.
        assert "https://js.tosspayments.com/v2/standard" in page
        params = sdk_params(page)
        assert params["orderId"] == attempt
        assert (params["amount"], params["currency"]) == ("12000", "KRW")
        assert (params["method"], params["flowMode"], params["easyPay"]) == (
            "CARD",
            "DIRECT",
            "TOSSPAY",
        )
        assert params["clientKey"] == TOSS_CLIENT
        assert TOSS_SECRET not in page

        # The customer authenticates at Toss, which sends them to successUrl; the shop
        # confirms (the amount in the URL is checked against the order first).
        done = toss_payment(
            "payment_done_tosspay",
            paymentKey=PAYMENT_KEY,
            orderId=attempt,
            totalAmount=12_000,
            balanceAmount=12_000,
        )
        confirm = mock.post(f"{toss_api}/confirm").respond(200, json=done)
        success = httpx.URL(params["successUrl"]).copy_merge_params(
            {"paymentKey": PAYMENT_KEY, "orderId": attempt, "amount": "12000"}
        )
        back = http.get(str(success))
        assert (back.status_code, back.headers["location"]) == (303, f"/orders/{order_id}")
        assert confirm.call_count == 1
        assert json.loads(confirm.calls.last.request.content) == {
            "paymentKey": PAYMENT_KEY,
            "orderId": attempt,
            "amount": 12_000,
        }
        receipt = order_text(http, order_id)
        assert "Toss Pay via Toss Payments" in receipt
        assert "12,000 KRW" in receipt

        # Webhooks: the body is only a pointer; what Toss answers when asked is what counts.
        canceled = toss_payment(
            "payment_canceled", paymentKey=PAYMENT_KEY, orderId=attempt, totalAmount=12_000
        )
        refetch = mock.get(f"{toss_api}/{PAYMENT_KEY}").mock(
            side_effect=[
                httpx.Response(200, json=done),  # a delivery claiming a cancel Toss denies
                httpx.Response(200, json=canceled),  # the real cancel, made at Toss's console
            ]
        )

        def deliver(transmission: str, status: str, order: str = attempt) -> httpx.Response:
            body = {
                "eventType": "PAYMENT_STATUS_CHANGED",
                "createdAt": "2025-06-01T10:05:40.000000",
                "data": {"paymentKey": PAYMENT_KEY, "orderId": order, "status": status},
            }
            return http.post(
                "/webhooks/tosspayments",
                json=body,
                headers={"tosspayments-webhook-transmission-id": transmission},
            )

        forged = deliver("tx-forged", "CANCELED")
        assert forged.json() == {
            "status": "processed",
            "note": "paid at Toss Payments; matches this shop's record",
        }
        real = deliver("tx-real", "CANCELED")
        assert real.json() == {
            "status": "processed",
            "note": "cancelled at Toss Payments outside this shop (not refunded here)",
        }
        assert refetch.call_count == 2
        # A redelivery is answered at once: Toss is not asked again.
        assert deliver("tx-real", "CANCELED").json() == {"status": "duplicate"}
        # A delivery about someone else's payment is ignored without asking Toss anything.
        stranger = deliver("tx-other", "DONE", order="WEB-20250101-00000000_1")
        assert stranger.json()["status"] == "ignored"
        assert refetch.call_count == 2

        events = ShopStore(tmp_path / "shop" / "shop.sqlite3").events(order_id)
        assert [(e.event_id, e.verified_state) for e in events] == [
            ("tx-forged", "paid"),
            ("tx-real", "cancelled"),
        ]
        assert "cancelled at Toss Payments outside this shop" in order_text(http, order_id)


def test_shop_toss_webhook_waits_when_toss_cannot_be_asked(tmp_path: Path) -> None:
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    providers: list[Provider] = [toss_provider()]
    with shop(tmp_path, providers, httpx.MockTransport(mock.async_handler)) as http:
        order_id = new_order(http)
        attempt = f"{order_id}_1"
        start_checkout(http, order_id, "card")
        done = toss_payment(
            "payment_done_card",
            paymentKey=PAYMENT_KEY,
            orderId=attempt,
            totalAmount=12_000,
            balanceAmount=12_000,
        )
        refetch = mock.get(f"https://api.tosspayments.com/v1/payments/{PAYMENT_KEY}").mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=done)]
        )
        # Toss says DONE; the confirm's own answer was lost, so the journal has no payment.
        confirm = mock.post("https://api.tosspayments.com/v1/payments/confirm").mock(
            side_effect=[httpx.Response(200, json=done)]
        )
        body = {
            "eventType": "PAYMENT_STATUS_CHANGED",
            "createdAt": "2025-06-01T10:05:40.000000",
            "data": {"paymentKey": PAYMENT_KEY, "orderId": attempt, "status": "DONE"},
        }
        first = http.post("/webhooks/tosspayments", json=body)
        assert first.status_code == 503  # Toss retries later
        assert ShopStore(tmp_path / "shop" / "shop.sqlite3").events() == []
        assert "Not paid yet" in order_text(http, order_id)

        again = http.post("/webhooks/tosspayments", json=body)
        assert again.status_code == 200
        assert again.json()["note"].startswith("paid at Toss Payments; completed here")
        assert (refetch.call_count, confirm.call_count) == (2, 1)
        assert "Card via Toss Payments" in order_text(http, order_id)
        events = ShopStore(tmp_path / "shop" / "shop.sqlite3").events()
        # Without a transmission id the body's SHA-256 identifies the delivery.
        expected = "sha256:" + hashlib.sha256(again.request.content).hexdigest()
        assert [e.event_id for e in events] == [expected]


def paid_by_toss(http: httpx.Client, mock: respx.MockRouter) -> tuple[str, str, dict[str, Any]]:
    """An order paid with Toss Pay through the shop: its id, its attempt id, Toss's payment."""
    order_id = new_order(http)
    attempt = f"{order_id}_1"
    _, page = start_checkout(http, order_id, "tosspay")
    done = toss_payment(
        "payment_done_tosspay",
        paymentKey=PAYMENT_KEY,
        orderId=attempt,
        totalAmount=12_000,
        balanceAmount=12_000,
    )
    mock.post("https://api.tosspayments.com/v1/payments/confirm").respond(200, json=done)
    success = httpx.URL(sdk_params(page)["successUrl"]).copy_merge_params(
        {"paymentKey": PAYMENT_KEY, "orderId": attempt, "amount": "12000"}
    )
    assert http.get(str(success)).headers["location"] == f"/orders/{order_id}"
    return order_id, attempt, done


def toss_delivery(
    http: httpx.Client, transmission: str, order: str, status: str | None, key: str = PAYMENT_KEY
) -> httpx.Response:
    data = {"paymentKey": key, "orderId": order}
    if status is not None:
        data["status"] = status
    body = {
        "eventType": "PAYMENT_STATUS_CHANGED",
        "createdAt": "2025-06-01T10:05:40.000000",
        "data": data,
    }
    headers = {"tosspayments-webhook-transmission-id": transmission}
    return http.post("/webhooks/tosspayments", json=body, headers=headers)


def test_shop_toss_webhook_ignores_claims_the_journal_does_not_need(tmp_path: Path) -> None:
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    providers: list[Provider] = [toss_provider()]
    with shop(tmp_path, providers, httpx.MockTransport(mock.async_handler)) as http:
        order_id, attempt, done = paid_by_toss(http, mock)
        refetch = mock.get(f"https://api.tosspayments.com/v1/payments/{PAYMENT_KEY}").respond(
            200, json=done
        )
        # Forged deliveries, each with a fresh transmission id: none of them could change
        # what the journal holds, so Toss is not asked about any.
        unneeded = {
            ("tx-1", attempt, "DONE"): "already recorded as paid",
            ("tx-2", attempt, "ABORTED"): "recorded as paid; a paid payment does not fail "
            "afterwards",
            ("tx-3", attempt, "EXPIRED"): "recorded as paid; a paid payment does not fail "
            "afterwards",
            ("tx-4", attempt, "IN_PROGRESS"): "a status the shop does not act on",
            ("tx-5", attempt, "SOMETHING_NEW"): "a status the shop does not act on",
            ("tx-6", f"{order_id}_2", "DONE"): "not this shop's payment",  # never journaled
            ("tx-7", "WEB-20250101-00000000_1", "CANCELED"): "not this shop's payment",
        }
        for (transmission, order, status), reason in unneeded.items():
            answer = toss_delivery(http, transmission, order, status)
            assert (answer.status_code, answer.json()) == (
                200,
                {"status": "ignored", "reason": reason},
            ), transmission
        without_status = toss_delivery(http, "tx-8", attempt, None)
        assert without_status.status_code == 400
        assert without_status.json()["detail"] == (
            "rejected: PAYMENT_STATUS_CHANGED without data.status"
        )
        assert refetch.call_count == 0

        # Refunded in full by the shop: a cancellation is then old news, too.
        canceled = toss_payment(
            "payment_canceled", paymentKey=PAYMENT_KEY, orderId=attempt, totalAmount=12_000
        )
        canceled["cancels"][0]["cancelAmount"] = 12_000
        cancel = mock.post(f"https://api.tosspayments.com/v1/payments/{PAYMENT_KEY}/cancel")
        cancel.respond(200, json=canceled)
        refunded = http.post(f"/orders/{order_id}/refund", data={"request_id": "rf-1"})
        assert refunded.headers["location"] == f"/orders/{order_id}?msg=refunded"
        assert cancel.call_count == 1
        for transmission, status in (("tx-9", "CANCELED"), ("tx-10", "PARTIAL_CANCELED")):
            answer = toss_delivery(http, transmission, attempt, status)
            assert answer.json() == {"status": "ignored", "reason": "already refunded in full"}
        assert refetch.call_count == 0
        assert ShopStore(tmp_path / "shop" / "shop.sqlite3").events() == []


def test_shop_toss_webhook_lookups_are_bounded_per_attempt(tmp_path: Path) -> None:
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    providers: list[Provider] = [toss_provider()]
    with shop(tmp_path, providers, httpx.MockTransport(mock.async_handler)) as http:
        order_id, attempt, done = paid_by_toss(http, mock)
        refetch = mock.get(f"https://api.tosspayments.com/v1/payments/{PAYMENT_KEY}").respond(
            200, json=done
        )
        # "Cancelled" about a paid, unrefunded payment is worth asking about; a forger
        # sends it over and over with fresh transmission ids. Toss (which says DONE) is
        # asked three times in the window; then the shop answers 429 and asks nothing.
        answers = [toss_delivery(http, f"forged-{n}", attempt, "CANCELED") for n in range(6)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429, 429]
        assert {a.json()["status"] for a in answers[:3]} == {"processed"}
        assert answers[3].json() == {
            "status": "throttled",
            "reason": "this payment was asked about too often",
        }
        assert answers[3].headers["retry-after"] == "600"
        assert refetch.call_count == 3
        # Throttled deliveries are not recorded: Toss delivers a genuine one again later.
        events = ShopStore(tmp_path / "shop" / "shop.sqlite3").events(order_id)
        assert [e.event_id for e in events] == ["forged-0", "forged-1", "forged-2"]
        assert "Paid" in order_text(http, order_id)

        # The bound is per attempt: another order's open checkout is still looked up.
        other_order = new_order(http, "mug")
        start_checkout(http, other_order, "card")
        other_key = "tgen_20250601shopexample0002"
        in_progress = toss_payment(
            "payment_in_progress", paymentKey=other_key, orderId=f"{other_order}_1"
        )
        other = mock.get(f"https://api.tosspayments.com/v1/payments/{other_key}").respond(
            200, json=in_progress
        )
        answer = toss_delivery(http, "tx-other", f"{other_order}_1", "DONE", key=other_key)
        assert answer.status_code == 200
        assert answer.json()["status"] == "processed"
        assert other.call_count == 1
        assert refetch.call_count == 3


def test_shop_store_counts_lookups_per_attempt_in_a_window(tmp_path: Path) -> None:
    store = ShopStore(tmp_path / "shop.sqlite3")
    t0 = datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    window = timedelta(minutes=10)

    def take(attempt: str, at: datetime) -> bool:
        return store.take_refetch("tosspayments", attempt, at, 2, window)

    assert take("A_1", t0)
    assert take("A_1", t0 + timedelta(seconds=1))
    assert not take("A_1", t0 + timedelta(seconds=2))  # two within ten minutes
    assert not take("A_1", t0 + window - timedelta(microseconds=1))  # the first still counts
    assert take("B_1", t0 + timedelta(seconds=3))  # another attempt has its own count
    assert store.take_refetch("portone", "A_1", t0, 2, window)  # and another provider
    # Once the first lookup is a window old, one more is allowed, and only one.
    assert take("A_1", t0 + window)
    assert not take("A_1", t0 + window + timedelta(microseconds=1))


# -- the shop: PortOne webhooks -----------------------------------------------------------------


def portone_delivery(
    payment_id: str, *, secret: str = WEBHOOK_SECRET, msg_id: str = "msg_1", age: float = 0.0
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "type": "Transaction.Paid",
            "timestamp": "2025-06-01T05:12:31.502Z",
            "data": {
                "storeId": PORTONE_STORE,
                "paymentId": payment_id,
                "transactionId": "01936a8b-6c31-3c5b-a9e0-5a5c2b1f0e11",
            },
        }
    ).encode()
    stamp = str(int(time.time() - age))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return body, headers


def test_shop_portone_webhook_signature_is_checked_before_anything(tmp_path: Path) -> None:
    kakao = FakeBank("kakaopay")
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    fake_routes(mock, kakao)
    portone = PortOne(
        api_secret=PORTONE_SECRET, store_id=PORTONE_STORE, channel_key=PORTONE_CHANNEL
    )
    providers: list[Provider] = [
        FakeProvider("kakaopay", methods=[Method.KAKAOPAY]),
        only_methods(portone, frozenset({Method.CARD})),
    ]
    secret = SecretStr(WEBHOOK_SECRET)
    with shop(
        tmp_path, providers, httpx.MockTransport(mock.async_handler), portone_webhook_secret=secret
    ) as http:
        order_id = new_order(http, "mug")
        attempt = f"{order_id}_1"
        pay, page = start_checkout(http, order_id, "card")
        assert "https://cdn.portone.io/v2/browser-sdk.js" in page
        params = sdk_params(page)
        assert (params["paymentId"], params["storeId"]) == (attempt, PORTONE_STORE)
        assert (params["payMethod"], params["totalAmount"]) == ("CARD", "15000")
        assert PORTONE_SECRET not in page

        # The customer pays in PortOne's window and closes the tab: no redirect arrives.
        paid = json.loads((PORTONE_PAYLOADS / "payment_paid.json").read_text(encoding="utf-8"))
        paid.update(id=attempt, storeId=PORTONE_STORE)
        paid["amount"].update(total=15_000, paid=15_000, vat=1_364, supply=13_636)
        get_payment = mock.get(f"https://api.portone.io/payments/{attempt}").respond(200, json=paid)
        store = ShopStore(tmp_path / "shop" / "shop.sqlite3")

        # Forged (another secret), stale (replayed after ten minutes) and unsigned
        # deliveries are refused with 400 and change nothing.
        forged = portone_delivery(attempt, secret="whsec_" + base64.b64encode(b"x" * 24).decode())
        stale = portone_delivery(attempt, age=600)
        unsigned_body, unsigned_headers = portone_delivery(attempt)
        del unsigned_headers["webhook-signature"]
        for body, headers in (forged, stale, (unsigned_body, unsigned_headers)):
            refused = http.post("/webhooks/portone", content=body, headers=headers)
            assert refused.status_code == 400
            assert refused.json()["detail"].startswith("rejected: webhook rejected")
        assert get_payment.call_count == 0
        assert store.events() == []
        assert "Not paid yet" in order_text(http, order_id)

        # A genuine delivery: PortOne is asked, and the payment completed from here.
        body, headers = portone_delivery(attempt)
        accepted = http.post("/webhooks/portone", content=body, headers=headers)
        assert accepted.json() == {
            "status": "processed",
            "note": "paid at PortOne; completed here from this notification (15,000 KRW)",
        }
        asked = get_payment.call_count
        assert asked == 2  # the lookup, then complete_checkout's own verification
        receipt = order_text(http, order_id)
        assert "Card via PortOne" in receipt
        assert "15,000 KRW" in receipt
        # Redelivered: nothing is asked or done again.
        assert http.post("/webhooks/portone", content=body, headers=headers).json() == {
            "status": "duplicate"
        }
        # The browser's late return lands on the receipt; the order is not approved again.
        late = http.get(
            pay.replace("/pay/", "/return/") + "/success", params={"paymentId": attempt}
        )
        assert (late.status_code, late.headers["location"]) == (303, f"/orders/{order_id}")
        assert get_payment.call_count == asked
        assert [e.event_id for e in store.events(order_id)] == ["msg_1"]


def test_shop_portone_webhook_is_off_without_a_secret(tmp_path: Path) -> None:
    kakao = FakeBank("kakaopay")
    mock = respx.MockRouter(assert_all_mocked=True, assert_all_called=False)
    fake_routes(mock, kakao)
    providers: list[Provider] = [FakeProvider("kakaopay", methods=[Method.KAKAOPAY])]
    with shop(tmp_path, providers, httpx.MockTransport(mock.async_handler)) as http:
        body, headers = portone_delivery("WEB-20250101-00000000_1")
        assert http.post("/webhooks/portone", content=body, headers=headers).status_code == 404


# -- the shop: other pages ----------------------------------------------------------------------


def test_shop_naver_pay_page_hands_the_sdk_its_parameters_and_no_secret(tmp_path: Path) -> None:
    naver = NaverPay(
        client_id="np-client-0001",
        client_secret="np-SECRET-never-shown",
        chain_id="np-chain-0001",
        partner_id="np_partner_0001",
        sandbox=True,
    )
    # Naver Pay's ready happens in the browser: nothing is sent, so nothing is mocked.
    mock = respx.MockRouter(assert_all_mocked=True)
    with shop(tmp_path, [naver], httpx.MockTransport(mock.async_handler)) as http:
        order_id = new_order(http, "house-blend")
        pay, page = start_checkout(http, order_id, "naverpay")
        assert '<script src="https://nsp.pay.naver.com/sdk/js/naverpay.min.js"></script>' in page
        params = sdk_params(page)
        assert params["merchantPayKey"] == f"{order_id}_1"
        assert params["totalPayAmount"] == "39000"
        assert params["mode"] == "development"
        ref = pay.removeprefix("/pay/")
        assert params["returnUrl"] == str(http.base_url.join(f"/return/{ref}/success"))
        assert "np-SECRET-never-shown" not in page


def test_shop_cancel_at_the_wallet_and_the_demo_switches(tmp_path: Path) -> None:
    config = Settings(
        data_dir=tmp_path / "shop", breaker_policy=demo_breaker_policy(), recover_every=None
    )
    with FakeBackends() as fakes:
        app = create_app(config, fakes.providers, demo=fakes)
        with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10.0) as http:
            health = http.get("/health").json()
            assert health["status"] == "ok"
            assert health["methods"] == {
                "kakaopay": ["kakaopay"],
                "naverpay": ["naverpay"],
                "tosspay": ["tosspayments"],
                "card": ["tosspayments"],
            }
            assert {b["state"] for b in health["breakers"]} == {"closed"}
            assert health["journal"]["payments"] == 0

            # The customer cancels on the wallet's page: nothing is charged.
            order_id = new_order(http)
            pay, _ = start_checkout(http, order_id, "kakaopay")
            wallet_page = httpx.get(http.get(pay).headers["location"], timeout=10.0).text
            found = re.search(r'id="cancel" href="([^"]+)"', wallet_page)
            assert found is not None
            cancelled = http.get(found.group(1).replace("&amp;", "&"))
            assert cancelled.status_code == 303
            assert cancelled.headers["location"] == f"/orders/{order_id}/checkout?msg=declined"
            assert "Nothing was charged" in http.get(cancelled.headers["location"]).text
            assert [e.status for e in fakes.banks["kakaopay"].ledger] == ["failed"]

            # /demo takes a fake provider down and brings it back.
            assert http.post("/demo/naverpay/down").status_code == 303
            assert fakes.is_down("naverpay")
            assert "Naver Pay is DOWN" in http.get("/demo").text
            http.post("/demo/naverpay/up")
            assert not fakes.is_down("naverpay")
            assert http.post("/demo/vanpay/down").status_code == 404

            # Refunding an order that has no payment is refused.
            refused = http.post(f"/orders/{order_id}/refund")
            assert refused.status_code == 400
            assert "no payment to refund" in refused.text


# -- the shop: configuration --------------------------------------------------------------------


def test_shop_live_providers_come_from_the_environment() -> None:
    env = {
        "KAKAOPAY_SECRET_KEY": "DEV-kakao-secret",
        "TOSS_SECRET_KEY": TOSS_SECRET,
        "TOSS_CLIENT_KEY": TOSS_CLIENT,
        "PORTONE_API_SECRET": PORTONE_SECRET,
        "PORTONE_STORE_ID": PORTONE_STORE,
        "PORTONE_CHANNEL_KEY": PORTONE_CHANNEL,
    }
    providers = live_providers(env)
    assert [p.name for p in providers] == ["kakaopay", "tosspayments", "portone"]
    methods = {p.name: p.capabilities.methods for p in providers}
    assert methods["tosspayments"] == {Method.TOSSPAY, Method.CARD}
    assert methods["portone"] == {Method.CARD}  # a card channel is not a wallet fallback
    for provider in providers:
        assert "secret" not in repr(provider).lower()
    with pytest.raises(ConfigurationError, match="at least one provider"):
        live_providers({})
