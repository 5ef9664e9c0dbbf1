"""Receipts at the till and for the accountant.

A payment keeps what the provider reported for the receipt and a masked copy of its
answer (nothing secret, no card number); a decline carries the provider's own words for
the cashier; ``payfallback export`` writes a day's payments and refunds as CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from payfallback import Declined, Instrument, ManualClock, Money, Order, Router
from payfallback.adapter import Secrets
from payfallback.cli import EXPORT_COLUMNS, app
from payfallback.journal import SQLiteJournal
from payfallback.models import CardKind, Receipt
from payfallback.testing import FakeBank, FakeProvider, Fault, mock_transport

SECRET = "fake-secret-9d2e7a"
BILLING_KEY = "bk-ok-toss-7f1c"
PAN = "4111111111111111"


def card(key: str = BILLING_KEY) -> list[Instrument]:
    return [Instrument(provider="toss", billing_key=SecretStr(key))]


def order(order_id: str, amount: int = 15_000) -> Order:
    return Order(order_id=order_id, amount=Money(amount=amount), name="tea")


def echoing(bank: FakeBank) -> httpx.MockTransport:
    """The bank, with every JSON answer echoing the secret key, the billing key and a card
    number back in fields of its own (as a provider's debug echo would)."""
    inner = mock_transport(bank)

    def respond(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        response.read()
        body = json.loads(response.content)
        if isinstance(body, dict):
            body["echo"] = f"auth Bearer {SECRET} for card {PAN}"
            body["billingKey"] = BILLING_KEY
            body["detail"] = {"note": f"key {SECRET}", "cards": [PAN]}
        return httpx.Response(response.status_code, json=body, headers={"x-request-id": "r-1"})

    return httpx.MockTransport(respond)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2022, 10, 15, 9, 0, tzinfo=UTC))  # 18:00 KST


@pytest.fixture
def journal(tmp_path: Path, clock: ManualClock) -> Iterator[SQLiteJournal]:
    with SQLiteJournal(tmp_path / "journal.sqlite3", clock=clock) as journal:
        yield journal


def router(bank: FakeBank, journal: SQLiteJournal, clock: ManualClock) -> Router:
    return Router(
        [FakeProvider("toss", secret=SECRET)],
        client=httpx.Client(transport=echoing(bank)),
        journal=journal,
        clock=clock,
        sleep=clock.sleep,
    )


def test_a_payment_keeps_its_receipt_and_a_masked_copy_of_the_answer(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    bank = FakeBank("toss", secret=SECRET, clock=clock)
    with router(bank, journal, clock) as r:
        payment = r.charge(order("R-1"), card())
    receipt = payment.receipt
    assert receipt is not None
    assert receipt.approval_number is not None
    assert len(receipt.approval_number) == 8
    assert (receipt.card_number, receipt.installment_months, receipt.card_kind) == (
        "5365-10**-****-7543",
        0,
        CardKind.CREDIT,
    )
    assert receipt.receipt_url == f"https://toss.fake.test/receipts/{payment.provider_txn_id}"
    answer = payment.provider_answer
    assert answer is not None
    assert answer["tid"] == payment.provider_txn_id
    assert answer["approval_no"] == receipt.approval_number
    # Nothing secret and no card number is kept, at any depth, in memory or in the journal.
    stored = journal.get_payment(payment.payment_id)
    assert stored == payment
    kept = json.dumps(answer, ensure_ascii=False)
    for secret in (SECRET, BILLING_KEY, PAN):
        assert secret not in kept
    assert answer["billingKey"] != BILLING_KEY


def test_a_payment_found_by_lookup_after_a_lost_answer_has_its_receipt_too(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    bank = FakeBank("toss", secret=SECRET, clock=clock)
    bank.fail_next("charge", Fault.LOST_RESPONSE)  # charged, the answer never comes
    bank.fail_next("charge", Fault.UNAVAILABLE_503, times=5)  # and no replay answers
    with router(bank, journal, clock) as r:
        payment = r.charge(order("R-L"), card())
    assert journal.attempts_for_order("R-L")[0].state.value == "succeeded"
    assert payment.receipt is not None
    assert payment.receipt.approval_number is not None
    assert payment.provider_answer is not None
    assert SECRET not in json.dumps(payment.provider_answer)


def test_a_card_number_given_whole_is_masked_by_the_receipt_itself() -> None:
    assert Receipt(card_number=PAN).card_number == "************1111"
    assert Receipt(card_number="4111 1111 1111 1111").card_number == "**** **** **** 1111"
    assert Receipt(card_number="4111-1111-1111-1111").card_number == "****-****-****-1111"
    # A number the provider masked already is kept as it gave it.
    assert Receipt(card_number="536510******7543").card_number == "536510******7543"
    assert Receipt(card_number="5365-10**-****-7543").card_number == "5365-10**-****-7543"


def test_a_decline_carries_the_providers_words_for_the_cashier(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    bank = FakeBank("toss", secret=SECRET, clock=clock)
    with router(bank, journal, clock) as r, pytest.raises(Declined) as caught:
        r.charge(order("R-2"), card("bk-declined"))
    assert caught.value.user_message == "카드사 승인 거절"
    assert "CARD_DECLINED" in str(caught.value)


def test_a_refund_keeps_what_the_provider_said_about_it(
    journal: SQLiteJournal, clock: ManualClock
) -> None:
    bank = FakeBank("toss", secret=SECRET, clock=clock)
    with router(bank, journal, clock) as r:
        payment = r.charge(order("R-3"), card())
        refund = r.refund(payment.payment_id, Money(amount=5_000), reason="one cup returned")
    assert refund.receipt is not None
    assert refund.receipt.remaining == 10_000
    assert refund.receipt.cancel_id == f"{payment.provider_txn_id}-cancel-5000"
    assert refund.provider_answer is not None
    assert SECRET not in json.dumps(refund.provider_answer)
    assert journal.get_refund(refund.refund_id) == refund


def _export(*args: str) -> list[dict[str, str]]:
    result = CliRunner().invoke(app, ["export", *args])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_export_writes_a_days_payments_and_refunds_with_their_receipts(
    tmp_path: Path, journal: SQLiteJournal, clock: ManualClock
) -> None:
    bank = FakeBank("toss", secret=SECRET, clock=clock)
    with router(bank, journal, clock) as r:
        first = r.charge(order("E-1"), card())
        clock.advance(600)
        second = r.charge(order("E-2", amount=4_500), card())
        clock.advance(600)
        refund = r.refund(first.payment_id, Money(amount=5_000), reason="returned")
        clock.advance(6 * 3600 + 600)  # 00:30 KST on the 16th: not in the export of the 15th
        r.charge(order("E-3"), card())
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    rows = _export("--date", "2022-10-15", "--journal", url)
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [(row["type"], row["order_id"], row["amount"]) for row in rows] == [
        ("payment", "E-1", "15000"),
        ("payment", "E-2", "4500"),
        ("refund", "E-1", "-5000"),
    ]
    assert sum(int(row["amount"]) for row in rows) == 15_000 + 4_500 - 5_000
    pay = rows[0]
    assert first.receipt is not None
    assert pay["approval_number"] == first.receipt.approval_number
    assert (pay["card_number"], pay["installment_months"], pay["card_kind"]) == (
        "5365-10**-****-7543",
        "0",
        "credit",
    )
    assert pay["at"] == "2022-10-15T18:00:00+09:00"
    assert pay["provider_txn_id"] == first.provider_txn_id
    assert rows[1]["payment_id"] == second.payment_id
    back = rows[2]
    assert (back["refund_id"], back["remaining"], back["method"]) == (
        refund.refund_id,
        "10000",
        "card",
    )
    assert back["at"] == "2022-10-15T18:20:00+09:00"
    # Another zone moves the day's edges: 00:30 KST on the 16th is 15:30 UTC on the 15th.
    in_utc = _export("--date", "2022-10-15", "--tz", "UTC", "--journal", url)
    assert [row["order_id"] for row in in_utc if row["type"] == "payment"] == ["E-1", "E-2", "E-3"]
    # To a file.
    out = tmp_path / "2022-10-15.csv"
    result = CliRunner().invoke(
        app, ["export", "--date", "2022-10-15", "--journal", url, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 payments and 1 refunds of 2022-10-15" in result.stdout
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(EXPORT_COLUMNS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--date", "15/10/2022"], "--date: '15/10/2022' is not a date; use YYYY-MM-DD"),
        (["--tz", "Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_export_says_what_to_fix(tmp_path: Path, args: list[str], expected: str) -> None:
    SQLiteJournal(tmp_path / "j.sqlite3").close()
    result = CliRunner().invoke(
        app, ["export", *args, "--journal", f"sqlite:///{tmp_path / 'j.sqlite3'}"]
    )
    assert result.exit_code == 2
    assert expected in result.stderr


def test_the_kept_answer_hides_the_buyers_details_and_keeps_the_ids() -> None:
    kept = Secrets(SECRET).scrub_answer(
        {
            "tid": "nicuntct1m0101221015153000A001",  # digits inside an id: not a card
            "buyerName": "홍길동",
            "buyerTel": "010-1234-5678",
            "customer": {"name": "홍길동", "email": "buyer@example.com"},
            "email": "buyer@example.com",
            "goodsName": "아메리카노",
            "card": {"cardNum": PAN, "cardName": "신한"},
            "message": f"echo {SECRET}",
        }
    )
    assert kept["tid"] == "nicuntct1m0101221015153000A001"
    assert kept["goodsName"] == "아메리카노"
    for key in ("buyerName", "buyerTel", "customer", "email"):
        assert kept[key] == "[redacted]", key
    assert kept["card"] == {"cardNum": "[card ****1111]", "cardName": "신한"}
    assert SECRET not in kept["message"]
