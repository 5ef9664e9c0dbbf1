"""The fake provider: its API, its ledger, its faults, its loopback server and its adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from payfallback import ManualClock
from payfallback._clock import SystemClock
from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.models import (
    CardKind,
    Instrument,
    Method,
    Money,
    Order,
    Platform,
    RefundReceipt,
    ReturnUrls,
)
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Outcome,
    Proof,
    Provider,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    load_provider,
)
from payfallback.testing import (
    FakeBank,
    FakeProvider,
    FakeServer,
    Fault,
    FaultMode,
    double_charges,
    mock_transport,
)
from payfallback.testing._fake import ERROR_CODES
from payfallback.testing._provider import CODE_TABLE

AUTH = {"authorization": "Bearer fake-secret"}
TIMEOUT = httpx.Timeout(10.0, read=5.0)


@pytest.fixture
def bank(clock: ManualClock) -> FakeBank:
    return FakeBank("toss", clock=clock)


@pytest.fixture
def client(bank: FakeBank) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
    ) as client:
        yield client


def charge(
    client: httpx.Client,
    order_ref: str = "ORD-1_1",
    *,
    amount: int = 39_000,
    billing_key: str = "bk-ok",
    key: str | None = None,
) -> httpx.Response:
    headers = {"idempotency-key": key} if key else {}
    body = {"order_ref": order_ref, "billing_key": billing_key, "amount": amount, "currency": "KRW"}
    return client.post("/v1/charges", json=body, headers=headers)


def checkout(client: httpx.Client, order_ref: str = "ORD-1_1", amount: int = 39_000) -> str:
    response = client.post(
        "/v1/checkouts",
        json={
            "order_ref": order_ref,
            "amount": amount,
            "currency": "KRW",
            "name": "americano",
            "return_url": "https://shop.example/ok?cart=7",
            "cancel_url": "https://shop.example/no",
        },
    )
    assert response.status_code == 200
    tid: str = response.json()["tid"]
    return tid


def approve(
    client: httpx.Client, tid: str, *, token: str | None = None, amount: int = 39_000
) -> httpx.Response:
    body = {"token": token or f"ok-{tid}", "amount": amount}
    return client.post(f"/v1/checkouts/{tid}/approve", json=body)


def code(response: httpx.Response) -> str:
    value: str = response.json()["code"]
    return value


# -- the API through the mock transport ------------------------------------------------------


def test_checkout_round_trip_through_the_approval_page(
    bank: FakeBank, client: httpx.Client
) -> None:
    ready = client.post(
        "/v1/checkouts",
        json={
            "order_ref": "ORD-1_1",
            "amount": 39_000,
            "currency": "KRW",
            "name": "americano",
            "return_url": "https://shop.example/ok?cart=7",
            "cancel_url": "https://shop.example/no",
        },
    )
    assert ready.status_code == 200
    tid = ready.json()["tid"]
    assert ready.json() == {
        "tid": tid,
        "redirect_url": f"https://toss.fake.test/pay/{tid}",
        "status": "ready",
    }

    page = httpx.Client(transport=bank.transport()).get(ready.json()["redirect_url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    links = dict(re.findall(r'id="(\w+)" href="([^"]+)"', page.text))
    approve_url = httpx.URL(links["approve"].replace("&amp;", "&"))
    cancel_url = httpx.URL(links["cancel"].replace("&amp;", "&"))
    assert approve_url.host == "shop.example"
    assert dict(approve_url.params) == {"cart": "7", "token": f"ok-{tid}", "tid": tid}
    assert cancel_url.path == "/no"
    assert dict(cancel_url.params) == {"token": "cancel", "tid": tid}

    paid = approve(client, tid, token=approve_url.params["token"])
    assert paid.status_code == 200
    body = paid.json()
    assert body["tid"] == tid
    assert body["order_ref"] == "ORD-1_1"
    assert body["status"] == "paid"
    assert (body["amount"], body["currency"], body["cancelled_amount"]) == (39_000, "KRW", 0)
    assert datetime.fromisoformat(body["approved_at"]) == bank.clock.now()

    assert client.get(f"/v1/payments/{tid}").json() == body
    assert client.get("/v1/payments", params={"order_ref": "ORD-1_1"}).json() == body
    [entry] = bank.ledger
    assert (entry.txn_id, entry.order_ref, entry.status, entry.kind) == (
        tid,
        "ORD-1_1",
        "paid",
        "checkout",
    )
    assert bank.live_charges() == [entry]
    # Paid: the page no longer offers to pay again.
    again = httpx.Client(transport=bank.transport()).get(ready.json()["redirect_url"])
    assert 'id="approve"' not in again.text
    assert "paid" in again.text


def test_user_cancel_fails_the_checkout(bank: FakeBank, client: httpx.Client) -> None:
    tid = checkout(client)
    cancelled = approve(client, tid, token="cancel")
    assert (cancelled.status_code, code(cancelled)) == (400, "USER_CANCELLED")
    assert bank.ledger[0].status == "failed"
    late = approve(client, tid)
    assert (late.status_code, code(late)) == (409, "NOT_APPROVABLE")
    assert bank.live_charges() == []


def test_approve_checks_token_amount_and_state(bank: FakeBank, client: httpx.Client) -> None:
    tid = checkout(client)
    bad_token = approve(client, tid, token="ok-someone-else")
    assert (bad_token.status_code, code(bad_token)) == (400, "INVALID_TOKEN")
    bad_amount = approve(client, tid, amount=1_000)
    assert (bad_amount.status_code, code(bad_amount)) == (400, "AMOUNT_MISMATCH")
    unknown = approve(client, "toss-999999")
    assert (unknown.status_code, code(unknown)) == (404, "NOT_FOUND")
    assert bank.ledger[0].status == "ready"
    assert approve(client, tid).status_code == 200
    twice = approve(client, tid)
    assert (twice.status_code, code(twice)) == (409, "ALREADY_APPROVED")
    assert len(bank.live_charges()) == 1


def test_charge_refuses_a_second_charge_for_the_same_order_ref(
    bank: FakeBank, client: httpx.Client
) -> None:
    first = charge(client)
    assert first.status_code == 200
    assert first.json()["status"] == "paid"
    second = charge(client)
    assert (second.status_code, code(second)) == (409, "DUPLICATE_ORDER_REF")
    assert [e.txn_id for e in bank.ledger] == [first.json()["tid"]]
    assert charge(client, "ORD-1_2").status_code == 200
    assert len(bank.charges_for_order("ORD-1")) == 2


def test_banks_with_a_prefix_each_never_hand_out_the_same_transaction_id(
    clock: ManualClock,
) -> None:
    """Banks standing for one provider in several processes: each id is its prefix's."""
    tids: list[str] = []
    for prefix in (None, "w0", "w1"):
        bank = FakeBank("toss", clock=clock, txn_prefix=prefix)
        with httpx.Client(
            base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
        ) as client:
            for n in (1, 2):
                answer = charge(client, f"ORD-{n}_1")
                assert answer.status_code == 200
                tids.append(answer.json()["tid"])
                assert bank.entry(answer.json()["tid"]) is not None
    assert tids == [
        "toss-000001",
        "toss-000002",
        "toss-w0-000001",
        "toss-w0-000002",
        "toss-w1-000001",
        "toss-w1-000002",
    ]


@pytest.mark.parametrize(
    ("billing_key", "expected"),
    [("bk-declined", "CARD_DECLINED"), ("bk-insufficient", "INSUFFICIENT_FUNDS")],
)
def test_test_billing_keys_decline(
    bank: FakeBank, client: httpx.Client, billing_key: str, expected: str
) -> None:
    declined = charge(client, billing_key=billing_key)
    assert declined.status_code == 402
    assert declined.json()["code"] == expected
    [entry] = bank.ledger
    assert declined.json()["tid"] == entry.txn_id
    assert entry.status == "failed"
    looked_up = client.get("/v1/payments", params={"order_ref": "ORD-1_1"}).json()
    assert looked_up["status"] == "failed"
    # A failed charge does not block a new try with the same order_ref.
    assert charge(client).status_code == 200
    assert client.get("/v1/payments", params={"order_ref": "ORD-1_1"}).json()["status"] == "paid"


def test_lookup_of_nothing_is_not_found(client: httpx.Client) -> None:
    for response in (
        client.get("/v1/payments/toss-000042"),
        client.get("/v1/payments", params={"order_ref": "X_1"}),
    ):
        assert (response.status_code, code(response)) == (404, "NOT_FOUND")
    assert code(client.get("/v1/payments")) == "NOT_FOUND"


def test_cancel_partial_then_rest_guarded_by_expected_remaining(
    bank: FakeBank, client: httpx.Client
) -> None:
    tid = charge(client).json()["tid"]
    url = f"/v1/payments/{tid}/cancel"
    stale = client.post(url, json={"amount": 9_000, "expected_remaining": 30_000})
    assert (stale.status_code, code(stale)) == (409, "REMAINING_MISMATCH")
    partial = client.post(
        url, json={"amount": 9_000, "expected_remaining": 39_000, "reason": "one cup"}
    )
    assert partial.status_code == 200
    assert (partial.json()["status"], partial.json()["cancelled_amount"]) == (
        "partially_cancelled",
        9_000,
    )
    replayed = client.post(url, json={"amount": 9_000, "expected_remaining": 39_000})
    assert code(replayed) == "REMAINING_MISMATCH", "a replayed cancel never refunds twice"
    too_much = client.post(url, json={"amount": 30_001, "expected_remaining": 30_000})
    assert (too_much.status_code, code(too_much)) == (400, "EXCEEDS_REMAINING")
    rest = client.post(url, json={"amount": 30_000, "expected_remaining": 30_000})
    assert (rest.json()["status"], rest.json()["cancelled_amount"]) == ("cancelled", 39_000)
    assert bank.live_charges() == []
    assert bank.ledger[0].remaining == 0


def test_cancel_refuses_what_was_never_paid_or_is_malformed(client: httpx.Client) -> None:
    tid = checkout(client)
    not_paid = client.post(f"/v1/payments/{tid}/cancel", json={"amount": 1})
    assert (not_paid.status_code, code(not_paid)) == (409, "NOT_PAID")
    paid = charge(client, "ORD-2_1").json()["tid"]
    for bad in ({"amount": 0}, {"amount": "100"}, {"amount": True}, {}):
        response = client.post(f"/v1/payments/{paid}/cancel", json=bad)
        assert (response.status_code, code(response)) == (400, "INVALID_REQUEST")
    missing = client.post("/v1/payments/toss-000099/cancel", json={"amount": 1})
    assert code(missing) == "NOT_FOUND"


def test_void_within_the_window_cancels_in_full(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    tid = charge(client).json()["tid"]
    clock.advance(59 * 60)
    voided = client.post(f"/v1/payments/{tid}/void", json={"amount": 39_000})
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["cancelled_amount"]) == ("cancelled", 39_000)
    again = client.post(f"/v1/payments/{tid}/void")
    assert again.json() == voided.json(), "voiding twice changes nothing"
    assert bank.live_charges() == []


def test_void_refuses_after_the_window_or_a_partial_cancel(
    client: httpx.Client, clock: ManualClock
) -> None:
    late = charge(client, "ORD-1_1").json()["tid"]
    wrong_amount = client.post(f"/v1/payments/{late}/void", json={"amount": 1})
    assert code(wrong_amount) == "AMOUNT_MISMATCH"
    clock.advance(3601)
    expired = client.post(f"/v1/payments/{late}/void")
    assert (expired.status_code, code(expired)) == (409, "VOID_WINDOW_EXPIRED")
    partial = charge(client, "ORD-2_1").json()["tid"]
    client.post(f"/v1/payments/{partial}/cancel", json={"amount": 1})
    refused = client.post(f"/v1/payments/{partial}/void")
    assert (refused.status_code, code(refused)) == (409, "NOT_VOIDABLE")


def test_void_by_order_ref_closes_a_checkout_before_approval(
    bank: FakeBank, client: httpx.Client
) -> None:
    tid = checkout(client, "ORD-1_1")
    voided = client.post("/v1/orders/ORD-1_1/void")
    assert voided.status_code == 200
    assert (voided.json()["tid"], voided.json()["status"]) == (tid, "failed")
    late = approve(client, tid)
    assert code(late) == "NOT_APPROVABLE", "a voided checkout can never be approved late"
    assert bank.live_charges() == []
    assert code(client.post("/v1/orders/NOPE_1/void")) == "NOT_FOUND"


def test_credentials_are_checked_except_on_the_approval_page(bank: FakeBank) -> None:
    wrong = httpx.Client(
        base_url=bank.base_url, headers={"authorization": "Bearer nope"}, transport=bank.transport()
    )
    response = charge(wrong)
    assert (response.status_code, code(response)) == (401, "UNAUTHORIZED")
    assert "nope" not in response.text
    assert (
        httpx.Client(base_url=bank.base_url, transport=bank.transport())
        .get("/v1/payments/x")
        .status_code
        == 401
    )
    assert bank.ledger == []
    right = httpx.Client(base_url=bank.base_url, headers=AUTH, transport=bank.transport())
    tid = checkout(right)
    assert wrong.get(f"/pay/{tid}").status_code == 200


def test_invalid_bodies_and_routes(client: httpx.Client) -> None:
    not_json = client.post(
        "/v1/charges", content=b"amount=1", headers={"content-type": "text/plain"}
    )
    assert (not_json.status_code, code(not_json)) == (400, "INVALID_REQUEST")
    not_object = client.post("/v1/charges", json=[1, 2])
    assert code(not_object) == "INVALID_REQUEST"
    float_amount = client.post(
        "/v1/charges",
        json={"order_ref": "A_1", "billing_key": "bk", "amount": 1.5, "currency": "KRW"},
    )
    assert code(float_amount) == "INVALID_REQUEST"
    no_key = client.post("/v1/charges", json={"order_ref": "A_1", "amount": 1, "currency": "KRW"})
    assert code(no_key) == "INVALID_REQUEST"
    no_return_url = client.post(
        "/v1/checkouts", json={"order_ref": "A_1", "amount": 1, "currency": "KRW"}
    )
    assert code(no_return_url) == "INVALID_REQUEST"
    assert (client.get("/v2/anything").status_code, code(client.get("/v2/anything"))) == (
        404,
        "NOT_FOUND",
    )
    wrong_method = client.get("/v1/charges")
    assert (wrong_method.status_code, code(wrong_method)) == (405, "METHOD_NOT_ALLOWED")
    assert client.get("/pay/toss-000404").status_code == 404


def test_request_counters_and_request_ids(bank: FakeBank, client: httpx.Client) -> None:
    first = charge(client)
    client.get(f"/v1/payments/{first.json()['tid']}")
    client.get("/v1/payments", params={"order_ref": "ORD-1_1"})
    assert bank.requests == {"charge": 1, "lookup": 2}
    assert first.headers["x-request-id"] == "toss-req-1"
    assert client.get("/v1/payments/x").headers["x-request-id"] == "toss-req-4"


def test_async_client_through_the_same_transport(bank: FakeBank) -> None:
    async def pay() -> list[int]:
        async with httpx.AsyncClient(
            base_url=bank.base_url, headers=AUTH, transport=bank.transport()
        ) as client:
            bodies = [
                {
                    "order_ref": f"ORD-{i}_1",
                    "billing_key": "bk",
                    "amount": 1_000 + i,
                    "currency": "KRW",
                }
                for i in range(5)
            ]
            responses = await asyncio.gather(*(client.post("/v1/charges", json=b) for b in bodies))
            return [r.status_code for r in responses]

    assert asyncio.run(pay()) == [200] * 5
    assert sorted(e.amount for e in bank.live_charges()) == [1_000, 1_001, 1_002, 1_003, 1_004]


def test_mock_transport_routes_by_host() -> None:
    toss, nice = FakeBank("toss"), FakeBank("nice")
    with httpx.Client(headers=AUTH, transport=mock_transport(toss, nice)) as client:
        body = {"order_ref": "ORD-1_1", "billing_key": "bk", "amount": 500, "currency": "KRW"}
        assert (
            client.post("https://nice.fake.test/v1/charges", json=body)
            .json()["tid"]
            .startswith("nice-")
        )
        with pytest.raises(httpx.ConnectError):
            client.get("https://kakao.fake.test/v1/payments/x")
    assert toss.ledger == []
    assert len(nice.ledger) == 1
    with pytest.raises(ValueError, match="share a name"):
        mock_transport(FakeBank("a"), FakeBank("a"))


# -- idempotency ------------------------------------------------------------------------------


def test_idempotent_replay_returns_the_first_answer_and_charges_once(
    bank: FakeBank, client: httpx.Client
) -> None:
    first = charge(client, key="idem-1")
    replay = charge(client, key="idem-1")
    assert replay.status_code == 200
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(bank.ledger) == 1
    assert bank.ledger[0].idempotency_key == "idem-1"
    assert bank.requests["charge"] == 2


def test_idempotency_key_reused_for_another_request_is_refused(
    bank: FakeBank, client: httpx.Client
) -> None:
    charge(client, key="idem-1")
    other = charge(client, "ORD-2_1", key="idem-1")
    assert (other.status_code, code(other)) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert len(bank.ledger) == 1


@pytest.mark.parametrize("fault", [Fault.LOST_RESPONSE, Fault.ERROR_500_AFTER, Fault.MALFORMED])
def test_replay_after_a_lost_or_broken_answer_returns_the_charge(
    bank: FakeBank, client: httpx.Client, fault: Fault
) -> None:
    bank.fail_next("charge", fault)
    try:
        first = charge(client, key="idem-1")
    except httpx.ReadTimeout:
        pass
    else:
        assert first.status_code in (200, 500)
    replay = charge(client, key="idem-1")
    assert replay.status_code == 200
    [entry] = bank.ledger
    assert replay.json()["tid"] == entry.txn_id
    assert entry.live


def test_declines_are_replayed_too(bank: FakeBank, client: httpx.Client) -> None:
    bank.fail_next("charge", Fault.DECLINE)
    assert code(charge(client, key="idem-1")) == "CARD_DECLINED"
    assert code(charge(client, key="idem-1")) == "CARD_DECLINED"
    assert len(bank.ledger) == 1


def test_idempotency_keys_expire_after_the_retention(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    charge(client, key="idem-1")
    clock.advance(timedelta(days=15).total_seconds() + 1)
    late = charge(client, key="idem-1")
    assert code(late) == "DUPLICATE_ORDER_REF", "an expired key is a new request"


def test_faults_before_processing_are_not_stored_for_replay(
    bank: FakeBank, client: httpx.Client
) -> None:
    bank.fail_next("charge", Fault.UNAVAILABLE_503)
    assert charge(client, key="idem-1").status_code == 503
    assert charge(client, key="idem-1").status_code == 200
    assert len(bank.ledger) == 1


# -- faults -------------------------------------------------------------------------------------

# fault -> what a charge answers (status or exception), and the ledger status it leaves (None:
# nothing recorded).
CHARGE_FAULTS: dict[Fault, tuple[int | type[httpx.TransportError], str | None]] = {
    Fault.UNAVAILABLE_503: (503, None),
    Fault.RATE_LIMITED_429: (429, None),
    Fault.ERROR_500_BEFORE: (500, None),
    Fault.ERROR_500_AFTER: (500, "paid"),
    Fault.DECLINE: (402, "failed"),
    Fault.INSUFFICIENT_FUNDS: (402, "failed"),
    Fault.CONNECT_REFUSED: (httpx.ConnectError, None),
    Fault.CONNECT_TIMEOUT: (httpx.ConnectTimeout, None),
    Fault.HANG: (httpx.ReadTimeout, None),
    Fault.LOST_RESPONSE: (httpx.ReadTimeout, "paid"),
    Fault.MALFORMED: (200, "paid"),
    Fault.MISSING_FIELDS: (200, "paid"),
    Fault.BAD_CREDENTIALS: (401, None),
    Fault.SLOW: (200, "paid"),
    # Committed only after the read timeout and a delay (see the late-commit tests).
    Fault.LATE_COMMIT: (httpx.ReadTimeout, None),
}


def test_every_fault_has_an_expected_effect() -> None:
    assert set(CHARGE_FAULTS) == set(Fault)


@pytest.mark.parametrize("fault", list(Fault))
def test_fault_effect_on_the_answer_and_the_ledger(
    bank: FakeBank, client: httpx.Client, fault: Fault
) -> None:
    answer, ledger_status = CHARGE_FAULTS[fault]
    bank.fail_next("charge", fault)
    if isinstance(answer, int):
        response = charge(client)
        assert response.status_code == answer
        if answer in (503, 429):
            assert response.headers["retry-after"] == "30"
        if fault is Fault.MALFORMED:
            with pytest.raises(json.JSONDecodeError):
                response.json()
        if fault is Fault.MISSING_FIELDS:
            assert "tid" not in response.json()
    else:
        with pytest.raises(answer):
            charge(client)
    assert [e.status for e in bank.ledger] == ([ledger_status] if ledger_status else [])
    assert bank.faults == {fault: 1}
    assert bank.requests["charge"] == 1
    # The fault was for one request only.
    assert charge(client, "ORD-2_1").status_code == 200


def test_lost_approve_answer_leaves_the_checkout_paid(bank: FakeBank, client: httpx.Client) -> None:
    tid = checkout(client)
    bank.fail_next("approve", Fault.LOST_RESPONSE)
    with pytest.raises(httpx.ReadTimeout):
        approve(client, tid)
    assert bank.ledger[0].status == "paid"
    assert client.get(f"/v1/payments/{tid}").json()["status"] == "paid"


def test_hung_approve_leaves_the_checkout_ready(bank: FakeBank, client: httpx.Client) -> None:
    tid = checkout(client)
    bank.fail_next("approve", Fault.HANG)
    with pytest.raises(httpx.ReadTimeout):
        approve(client, tid)
    assert bank.ledger[0].status == "ready"
    assert approve(client, tid).status_code == 200


def test_lost_cancel_answer_still_refunds(bank: FakeBank, client: httpx.Client) -> None:
    tid = charge(client).json()["tid"]
    bank.fail_next("cancel", Fault.LOST_RESPONSE)
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            f"/v1/payments/{tid}/cancel", json={"amount": 39_000, "expected_remaining": 39_000}
        )
    assert bank.ledger[0].status == "cancelled"


def test_fail_next_queues_in_order_with_passes(bank: FakeBank, client: httpx.Client) -> None:
    bank.fail_next("charge", Fault.UNAVAILABLE_503, times=2)
    bank.fail_next("charge", None)
    bank.fail_next("charge", Fault.ERROR_500_BEFORE)
    assert bank.pending_faults("charge") == 4
    statuses = [charge(client, f"ORD-{i}_1").status_code for i in range(5)]
    assert statuses == [503, 503, 200, 500, 200]
    assert bank.pending_faults("charge") == 0
    assert bank.faults == {Fault.UNAVAILABLE_503: 2, Fault.ERROR_500_BEFORE: 1}


def test_fail_next_refuses_what_cannot_happen(bank: FakeBank) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        bank.fail_next("refund", Fault.HANG)
    with pytest.raises(ValueError, match="approve and charge only"):
        bank.fail_next("lookup", Fault.DECLINE)
    with pytest.raises(ValueError, match="negative"):
        bank.fail_next("charge", Fault.HANG, times=-1)


def test_fault_fn_drives_a_scheduled_outage(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    start = clock.now() + timedelta(hours=1)
    end = start + timedelta(hours=30)

    def outage(op: str, now: datetime) -> Fault | None:
        return Fault.CONNECT_REFUSED if start <= now < end else None

    bank.fault_fn = outage
    assert charge(client, "ORD-1_1").status_code == 200
    clock.advance(3600)
    with pytest.raises(httpx.ConnectError):
        charge(client, "ORD-2_1")
    clock.advance(30 * 3600 - 1)
    with pytest.raises(httpx.ConnectError):
        client.get("/v1/payments/toss-000001")
    clock.advance(1)
    assert charge(client, "ORD-3_1").status_code == 200
    assert [e.order_ref for e in bank.ledger] == ["ORD-1_1", "ORD-3_1"]


def test_queued_faults_win_over_fault_fn_and_mode(bank: FakeBank, client: httpx.Client) -> None:
    bank.fault_fn = lambda op, now: Fault.ERROR_500_BEFORE
    bank.set_mode(Fault.UNAVAILABLE_503)
    bank.fail_next("charge", Fault.BAD_CREDENTIALS)
    assert charge(client).status_code == 401
    assert charge(client).status_code == 500
    bank.fault_fn = None
    assert charge(client).status_code == 503
    bank.set_mode(None)
    assert charge(client).status_code == 200


def test_mode_limited_to_operations(bank: FakeBank, client: httpx.Client) -> None:
    bank.set_mode(FaultMode(Fault.UNAVAILABLE_503, operations=frozenset({"lookup"})))
    tid = charge(client).json()["tid"]
    assert client.get(f"/v1/payments/{tid}").status_code == 503


def test_mode_rate_is_reproducible_from_the_seed() -> None:
    def run(seed: int) -> list[int]:
        bank = FakeBank("toss", seed=seed)
        bank.set_mode(FaultMode(Fault.UNAVAILABLE_503, rate=0.5))
        with httpx.Client(
            base_url=bank.base_url, headers=AUTH, transport=bank.transport()
        ) as client:
            return [client.get("/v1/payments/x").status_code for _ in range(40)]

    first = run(7)
    assert first == run(7)
    assert set(first) == {503, 404}
    assert first != run(8)


def test_fault_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultMode(Fault.HANG, rate=1.5)
    with pytest.raises(ValueError, match="unknown operations"):
        FaultMode(Fault.HANG, operations=frozenset({"refund"}))


def test_random_declines_skip_operations_that_cannot_decline(
    bank: FakeBank, client: httpx.Client
) -> None:
    bank.set_mode(Fault.DECLINE)
    response = charge(client)
    assert code(response) == "CARD_DECLINED"
    assert client.get(f"/v1/payments/{response.json()['tid']}").json()["status"] == "failed"


def test_refuse_flag_and_clear_faults(bank: FakeBank, client: httpx.Client) -> None:
    bank.refuse = True
    with pytest.raises(httpx.ConnectError):
        charge(client)
    assert bank.ledger == []
    bank.fail_next("charge", Fault.HANG)
    bank.set_mode(Fault.HANG)
    bank.latency_fn = lambda op: 100.0
    bank.clear_faults()
    assert bank.refuse is False
    assert bank.pending_faults("charge") == 0
    assert charge(client).status_code == 200


# -- late commits ---------------------------------------------------------------------------------

# A bank under load: LATE_COMMIT commits 3 s after the client's 5 s read timeout, and lookups
# do not see the commit for 20 s after it.
DELAY, LAG, READ = 3.0, 20.0, 5.0


@pytest.fixture
def busy(clock: ManualClock) -> FakeBank:
    return FakeBank("toss", clock=clock, late_commit_delay=DELAY, lookup_lag=LAG)


@pytest.fixture
def busy_client(busy: FakeBank) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=busy.base_url, headers=AUTH, transport=busy.transport(), timeout=TIMEOUT
    ) as client:
        yield client


def lookup_ref(client: httpx.Client, order_ref: str = "ORD-1_1") -> httpx.Response:
    return client.get("/v1/payments", params={"order_ref": order_ref})


def test_late_commit_charges_after_the_clients_read_timeout(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    sent_at, before = clock.now(), clock.monotonic()
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client)
    assert clock.monotonic() - before == READ, "the client gave up at its read timeout"
    assert (busy.ledger, busy.pending_commits()) == ([], 1)
    clock.advance(DELAY - 0.5)
    assert (busy.ledger, busy.pending_commits()) == ([], 1)
    clock.advance(0.5)
    [entry] = busy.ledger
    committed_at = sent_at + timedelta(seconds=READ + DELAY)
    assert (entry.order_ref, entry.kind, entry.status, entry.amount) == (
        "ORD-1_1",
        "charge",
        "paid",
        39_000,
    )
    assert (entry.created_at, entry.approved_at) == (committed_at, committed_at)
    assert entry.idempotency_key is None
    assert busy.pending_commits() == 0
    assert (busy.requests["charge"], busy.faults) == (1, {Fault.LATE_COMMIT: 1})


def test_late_commit_lookup_says_not_found_until_the_lag_has_passed(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client)
    assert code(lookup_ref(busy_client)) == "NOT_FOUND", "not committed yet"
    clock.advance(DELAY)
    [entry] = busy.live_charges()  # the ledger holds it from the commit on
    clock.advance(LAG - 0.5)
    for response in (lookup_ref(busy_client), busy_client.get(f"/v1/payments/{entry.txn_id}")):
        assert (response.status_code, code(response)) == (404, "NOT_FOUND")
    clock.advance(0.5)
    for response in (lookup_ref(busy_client), busy_client.get(f"/v1/payments/{entry.txn_id}")):
        assert response.status_code == 200
        assert (response.json()["tid"], response.json()["status"]) == (entry.txn_id, "paid")
    assert busy.requests["lookup"] == 5


def test_without_lookup_lag_the_commit_is_seen_at_once(clock: ManualClock) -> None:
    bank = FakeBank("toss", clock=clock, late_commit_delay=1.0, lookup_lag=0.0)
    with httpx.Client(
        base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
    ) as client:
        bank.fail_next("charge", Fault.LATE_COMMIT)
        with pytest.raises(httpx.ReadTimeout):
            charge(client)
        clock.advance(1.0)
        assert lookup_ref(client).json()["status"] == "paid"
    assert [e.status for e in bank.ledger] == ["paid"]


def test_same_key_replay_is_in_flight_until_the_commit_then_the_stored_answer(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client, key="idem-1")
    early = charge(busy_client, key="idem-1")
    assert (early.status_code, code(early)) == (409, "IDEMPOTENT_REQUEST_PROCESSING")
    assert early.headers["retry-after"] == "1"
    other = charge(busy_client, amount=1_000, key="idem-1")
    assert (other.status_code, code(other)) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert busy.ledger == []
    clock.advance(DELAY)
    replay = charge(busy_client, key="idem-1")
    [entry] = busy.ledger
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert (replay.json()["tid"], replay.json()["status"]) == (entry.txn_id, "paid")
    assert entry.idempotency_key == "idem-1"
    assert charge(busy_client, key="idem-1").content == replay.content
    assert len(busy.ledger) == 1
    assert busy.requests["charge"] == 5


def test_a_repeat_without_the_key_is_refused_while_committing_and_after(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client)
    repeat = charge(busy_client)
    assert (repeat.status_code, code(repeat)) == (409, "IN_PROGRESS")
    assert (busy.ledger, busy.pending_commits()) == ([], 1)
    clock.advance(DELAY)
    assert code(charge(busy_client)) == "DUPLICATE_ORDER_REF"
    assert [(e.order_ref, e.status) for e in busy.ledger] == [("ORD-1_1", "paid")]
    # A repeat that meets the fault too while the order_ref is held: nothing more to commit.
    busy.fail_next("charge", Fault.LATE_COMMIT, times=2)
    for _ in range(2):
        with pytest.raises(httpx.ReadTimeout):
            charge(busy_client, "ORD-2_1")
    assert busy.pending_commits() == 0, "the first committed while the repeat timed out"
    assert [(e.order_ref, e.status) for e in busy.ledger] == [
        ("ORD-1_1", "paid"),
        ("ORD-2_1", "paid"),
    ]


def test_naive_failover_under_late_commit_charges_twice(clock: ManualClock) -> None:
    toss = FakeBank("toss", clock=clock, late_commit_delay=DELAY, lookup_lag=LAG)
    nice = FakeBank("nice", clock=clock)
    toss.fail_next("charge", Fault.LATE_COMMIT)
    body = {"billing_key": "bk-ok", "amount": 39_000, "currency": "KRW"}
    with httpx.Client(headers=AUTH, transport=mock_transport(toss, nice), timeout=TIMEOUT) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("https://toss.fake.test/v1/charges", json={**body, "order_ref": "A_1"})
        # "Not found" right after the timeout, and the next provider charges.
        lookup = c.get("https://toss.fake.test/v1/payments", params={"order_ref": "A_1"})
        assert code(lookup) == "NOT_FOUND"
        paid = c.post("https://nice.fake.test/v1/charges", json={**body, "order_ref": "A_2"})
        assert paid.json()["status"] == "paid"
        assert double_charges(toss, nice) == {}
        clock.advance(DELAY)
        # Still "not found" to a lookup, but charged.
        lookup = c.get("https://toss.fake.test/v1/payments", params={"order_ref": "A_1"})
        assert code(lookup) == "NOT_FOUND"
    doubles = double_charges(toss, nice)
    assert {o: [(e.provider, e.order_ref) for e in es] for o, es in doubles.items()} == {
        "A": [("toss", "A_1"), ("nice", "A_2")]
    }


def test_void_by_order_ref_before_the_commit_finds_nothing_and_the_commit_stands(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client)
    void = busy_client.post("/v1/orders/ORD-1_1/void", json={"amount": 39_000})
    assert (void.status_code, code(void)) == (404, "NOT_FOUND")
    clock.advance(DELAY)
    assert [(e.status, e.live) for e in busy.ledger] == [("paid", True)]
    # Once committed, a void reaches it even while lookups lag.
    void = busy_client.post("/v1/orders/ORD-1_1/void", json={"amount": 39_000})
    assert void.json()["status"] == "cancelled"
    assert busy.live_charges() == []


def test_late_commit_of_an_approval(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    tid = checkout(busy_client)
    busy.fail_next("approve", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        approve(busy_client, tid)
    assert busy_client.get(f"/v1/payments/{tid}").json()["status"] == "ready"
    again = approve(busy_client, tid)
    assert (again.status_code, code(again)) == (409, "IN_PROGRESS")
    clock.advance(DELAY)
    [entry] = busy.ledger
    assert (entry.txn_id, entry.status, entry.live) == (tid, "paid", True)
    # A lagging lookup still shows the checkout as it was before the approval.
    for response in (busy_client.get(f"/v1/payments/{tid}"), lookup_ref(busy_client)):
        assert (response.json()["status"], response.json()["approved_at"]) == ("ready", None)
    assert code(approve(busy_client, tid)) == "ALREADY_APPROVED"
    clock.advance(LAG)
    assert busy_client.get(f"/v1/payments/{tid}").json()["status"] == "paid"


def test_void_of_a_checkout_before_its_late_approval_commits_makes_it_fail(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    tid = checkout(busy_client)
    busy.fail_next("approve", Fault.LATE_COMMIT)
    body = {"token": f"ok-{tid}", "amount": 39_000}
    headers = {"idempotency-key": "idem-approve"}
    with pytest.raises(httpx.ReadTimeout):
        busy_client.post(f"/v1/checkouts/{tid}/approve", json=body, headers=headers)
    assert busy_client.post(f"/v1/payments/{tid}/void").json()["status"] == "failed"
    clock.advance(DELAY)
    assert [(e.status, e.live) for e in busy.ledger] == [("failed", False)]
    replay = busy_client.post(f"/v1/checkouts/{tid}/approve", json=body, headers=headers)
    assert (replay.status_code, code(replay)) == (409, "NOT_APPROVABLE")


def test_a_late_decline_commits_the_decline(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    busy.fail_next("charge", Fault.LATE_COMMIT)
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client, billing_key="bk-declined", key="idem-1")
    clock.advance(DELAY)
    assert [(e.status, e.live) for e in busy.ledger] == [("failed", False)]
    assert code(charge(busy_client, billing_key="bk-declined", key="idem-1")) == "CARD_DECLINED"


def test_late_commit_is_for_paying_operations_only(
    busy: FakeBank, busy_client: httpx.Client, clock: ManualClock
) -> None:
    with pytest.raises(ValueError, match="approve and charge only"):
        busy.fail_next("lookup", Fault.LATE_COMMIT)
    busy.set_mode(Fault.LATE_COMMIT)
    tid = checkout(busy_client)  # ready is untouched
    assert code(lookup_ref(busy_client, "ORD-9_1")) == "NOT_FOUND"
    with pytest.raises(httpx.ReadTimeout):
        charge(busy_client)
    with pytest.raises(httpx.ReadTimeout):
        approve(busy_client, tid)
    assert busy.faults == {Fault.LATE_COMMIT: 2}
    assert busy.pending_commits() == 1, "the charge committed while the approve timed out"
    busy.set_mode(None)
    clock.advance(DELAY)
    assert sorted((e.kind, e.status) for e in busy.ledger) == [
        ("charge", "paid"),
        ("checkout", "paid"),
    ]


def test_without_a_read_timeout_the_commit_follows_the_request(clock: ManualClock) -> None:
    bank = FakeBank("toss", clock=clock, late_commit_delay=2.0)
    bank.fail_next("charge", Fault.LATE_COMMIT)
    body = b'{"order_ref":"ORD-1_1","billing_key":"bk-ok","amount":500,"currency":"KRW"}'
    reply = bank.handle("POST", "/v1/charges", authorization=AUTH["authorization"], body=body)
    assert reply.delivery.value == "drop"
    clock.advance(2.0)
    assert [e.status for e in bank.ledger] == ["paid"]


# -- latency and timeouts on a manual clock ---------------------------------------------------


def test_latency_advances_the_manual_clock(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    bank.latency_fn = lambda op: 1.5 if op == "charge" else 0.25
    before = clock.monotonic()
    tid = charge(client).json()["tid"]
    assert clock.monotonic() - before == 1.5
    client.get(f"/v1/payments/{tid}")
    assert clock.monotonic() - before == 1.75


def test_latency_past_the_read_timeout_is_a_read_timeout_after_processing(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    bank.latency_fn = lambda op: 12.0
    before = clock.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        charge(client)
    assert clock.monotonic() - before == 5.0, "the client gave up at its read timeout"
    assert bank.ledger[0].status == "paid"


def test_slow_adds_slow_seconds(clock: ManualClock) -> None:
    bank = FakeBank("toss", clock=clock, slow_seconds=3.0)
    with httpx.Client(
        base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
    ) as client:
        bank.fail_next("charge", Fault.SLOW)
        before = clock.monotonic()
        assert charge(client).status_code == 200
        assert clock.monotonic() - before == 3.0
        bank.slow_seconds = 8.0
        bank.fail_next("charge", Fault.SLOW)
        with pytest.raises(httpx.ReadTimeout):
            charge(client, "ORD-2_1")
    assert [e.status for e in bank.ledger] == ["paid", "paid"]


def test_hang_and_connect_timeout_take_the_clients_timeouts(
    bank: FakeBank, client: httpx.Client, clock: ManualClock
) -> None:
    bank.fail_next("charge", Fault.HANG)
    bank.fail_next("charge", Fault.CONNECT_TIMEOUT)
    before = clock.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        charge(client)
    assert clock.monotonic() - before == 5.0
    with pytest.raises(httpx.ConnectTimeout):
        charge(client)
    assert clock.monotonic() - before == 15.0
    assert bank.ledger == []


def test_without_a_manual_clock_timeouts_still_happen() -> None:
    bank = FakeBank("toss", clock=SystemClock())
    bank.latency_fn = lambda op: 3600.0
    with (
        httpx.Client(
            base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
        ) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        charge(client)
    assert bank.ledger[0].status == "paid"


# -- the ledger ---------------------------------------------------------------------------------


def test_double_charges_across_banks() -> None:
    toss, nice = FakeBank("toss"), FakeBank("nice")
    transport = mock_transport(toss, nice)
    with httpx.Client(headers=AUTH, transport=transport) as client:
        body = {"billing_key": "bk", "amount": 500, "currency": "KRW"}
        client.post("https://toss.fake.test/v1/charges", json={**body, "order_ref": "A_1"})
        client.post("https://toss.fake.test/v1/charges", json={**body, "order_ref": "A_1_1"})
        nice_tid = client.post(
            "https://nice.fake.test/v1/charges", json={**body, "order_ref": "A_2"}
        ).json()["tid"]
        assert {o: [e.provider for e in es] for o, es in double_charges(toss, nice).items()} == {
            "A": ["toss", "nice"]
        }
        assert [e.order_ref for e in toss.charges_for_order("A")] == ["A_1", "A_1_1"]
        client.post(f"https://nice.fake.test/v1/payments/{nice_tid}/void")
    assert double_charges(toss, nice) == {}
    assert [e.live for e in nice.ledger] == [False]


@settings(max_examples=60, deadline=None)
@given(
    faults=st.lists(st.sampled_from([*list(Fault), None]), min_size=1, max_size=12),
    use_key=st.booleans(),
)
def test_retrying_a_charge_through_any_faults_never_charges_twice(
    faults: list[Fault | None], use_key: bool
) -> None:
    bank = FakeBank("toss", clock=ManualClock())
    for fault in faults:
        bank.fail_next("charge", fault)
    answered: tuple[int, str] | None = None  # (status, tid) of the first clear answer
    with httpx.Client(
        base_url=bank.base_url, headers=AUTH, transport=bank.transport(), timeout=TIMEOUT
    ) as client:
        for _ in range(len(faults) + 1):
            try:
                response = charge(client, key="idem-1" if use_key else None)
                body = response.json()
            except (httpx.TransportError, ValueError):
                continue  # no answer, or not one we can read: try again
            if response.status_code in (200, 402) and "tid" in body:
                answered = (response.status_code, body["tid"])
                break
            if response.status_code == 409:  # DUPLICATE_ORDER_REF: it was charged already
                break
    assert len(bank.live_charges()) <= 1
    if answered is not None:
        [entry] = [e for e in bank.ledger if e.txn_id == answered[1]]
        assert entry.live == (answered[0] == 200)


# -- the loopback server -------------------------------------------------------------------------


def test_server_round_trip_with_a_sync_client() -> None:
    toss, nice = FakeBank("toss"), FakeBank("nice")
    with FakeServer(toss, nice) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=server.url_for(nice), headers=AUTH, timeout=2.0) as client:
            paid = charge(client)
            assert paid.status_code == 200
            assert paid.headers["x-request-id"] == "nice-req-1"
            tid = paid.json()["tid"]
            assert client.get("/v1/payments", params={"order_ref": "ORD-1_1"}).json()["tid"] == tid
            ready = client.post(
                "/v1/checkouts",
                json={
                    "order_ref": "ORD-2_1",
                    "amount": 10,
                    "currency": "KRW",
                    "return_url": "https://s/ok",
                },
            )
            page_url = ready.json()["redirect_url"]
            assert page_url.startswith(server.url_for(nice) + "/pay/")
            page = client.get(page_url, headers={"authorization": ""})
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert 'id="approve"' in page.text
            assert code(client.get("/v1/charges")) == "METHOD_NOT_ALLOWED"
        assert httpx.get(server.url + "/kakao/v1/payments/x").status_code == 404
    assert toss.ledger == []
    assert [e.order_ref for e in nice.ledger] == ["ORD-1_1", "ORD-2_1"]


def test_server_with_one_bank_also_answers_at_the_root() -> None:
    bank = FakeBank("toss")
    with FakeServer(bank) as server, httpx.Client(base_url=server.url, headers=AUTH) as client:
        assert charge(client).status_code == 200
        assert client.get("/toss/v1/payments", params={"order_ref": "ORD-1_1"}).status_code == 200


def test_server_with_an_async_client() -> None:
    bank = FakeBank("toss")

    async def pay(url: str) -> set[int]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=5.0) as client:
            bodies = [
                {"order_ref": f"ORD-{i}_1", "billing_key": "bk", "amount": 100, "currency": "KRW"}
                for i in range(20)
            ]
            responses = await asyncio.gather(*(client.post("/v1/charges", json=b) for b in bodies))
            return {r.status_code for r in responses}

    with FakeServer(bank) as server:
        assert asyncio.run(pay(server.url_for(bank))) == {200}
    assert len(bank.live_charges()) == 20


def test_server_lost_answer_and_hang_are_read_timeouts() -> None:
    bank = FakeBank("toss")
    with (
        FakeServer(bank, hang_seconds=2.0) as server,
        httpx.Client(
            base_url=server.url, headers=AUTH, timeout=httpx.Timeout(2.0, read=0.2)
        ) as client,
    ):
        bank.fail_next("charge", Fault.LOST_RESPONSE)
        with pytest.raises(httpx.ReadTimeout):
            charge(client, "ORD-1_1")
        bank.fail_next("charge", Fault.HANG)
        with pytest.raises(httpx.ReadTimeout):
            charge(client, "ORD-2_1")
        bank.latency_fn = lambda op: 1.0
        with pytest.raises(httpx.ReadTimeout):
            charge(client, "ORD-3_1")
    assert [(e.order_ref, e.status) for e in bank.ledger] == [
        ("ORD-1_1", "paid"),
        ("ORD-3_1", "paid"),
    ]


def test_server_late_commit_is_a_read_timeout_then_a_charge(clock: ManualClock) -> None:
    bank = FakeBank("toss", clock=clock, late_commit_delay=2.0)
    with (
        FakeServer(bank, hang_seconds=0.5) as server,
        httpx.Client(
            base_url=server.url, headers=AUTH, timeout=httpx.Timeout(2.0, read=0.1)
        ) as client,
    ):
        bank.fail_next("charge", Fault.LATE_COMMIT)
        with pytest.raises(httpx.ReadTimeout):
            charge(client, key="idem-1")
        assert code(charge(client, key="idem-1")) == "IDEMPOTENT_REQUEST_PROCESSING"
        # The server holds it for hang_seconds; the commit follows 2 s later, bank time.
        clock.advance(2.4)
        assert bank.pending_commits() == 1
        clock.advance(0.1)
        assert charge(client, key="idem-1").json()["status"] == "paid"
    assert [(e.order_ref, e.status) for e in bank.ledger] == [("ORD-1_1", "paid")]


def test_server_refusal_resets_and_refused_url_refuses() -> None:
    bank = FakeBank("toss")
    with FakeServer(bank) as server:
        bank.refuse = True
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                charge(client)
            bank.refuse = False
            assert charge(client).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.refused_url + "/v1/payments/x")
    assert len(bank.ledger) == 1


def test_server_refuses_chunked_bodies() -> None:
    with (
        FakeServer(FakeBank("toss")) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        response = client.post("/v1/charges", content=iter([b'{"order_ref": "A_1"}']))
        assert response.status_code == 411


def test_server_drops_a_connection_that_does_not_speak_http() -> None:
    bank = FakeBank("toss")
    with FakeServer(bank) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as raw:
            raw.sendall(b"HELLO\r\n\r\n")
            assert raw.recv(1024) == b""
        # The server is still there for the next client.
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            assert charge(client).status_code == 200


def test_server_life_cycle_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FakeServer()
    bank = FakeBank("toss")
    server = FakeServer(bank)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        with pytest.raises(KeyError):
            server.url_for("nice")
        with pytest.raises(RuntimeError, match="started already"):
            server.start()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


# -- the adapter ---------------------------------------------------------------------------------

ORDER = Order(order_id="ORD-1", amount=Money(amount=39_000), name="americano")
URLS = ReturnUrls(
    success="https://shop.example/ok",
    cancel="https://shop.example/no",
    fail="https://shop.example/f",
)
BILLING_KEY = "bk-secret-4242"


def ready_req(method: Method = Method.KAKAOPAY) -> ReadyRequest:
    return ReadyRequest("ORD-1_1", ORDER, method, URLS, "key-ready")


def charge_req(provider: str = "toss") -> ChargeRequest:
    return ChargeRequest(
        "ORD-1_1",
        ORDER,
        Instrument(provider=provider, billing_key=SecretStr(BILLING_KEY)),
        "key-charge",
    )


def approve_req(
    tid: str | None, params: dict[str, str], key: str = "key-approve"
) -> ApproveRequest:
    return ApproveRequest("ORD-1_1", ORDER, Method.KAKAOPAY, tid, params, key)


def cancel_req(tid: str, amount: int = 9_000, remaining: int = 39_000) -> CancelRequest:
    return CancelRequest(
        "R-1", "ORD-1_1", ORDER, tid, Money(amount=amount), remaining, "one cup", "key-cancel"
    )


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider("toss", secret=SecretStr("fake-secret"))


def send(bank: FakeBank, request: httpx.Request) -> httpx.Response:
    with httpx.Client(transport=bank.transport()) as client:
        return client.send(request)


def error_of(outcome: Outcome) -> PayfallbackError:
    assert isinstance(outcome, Failed), outcome
    return outcome.error


def test_provider_is_a_provider_built_from_keyword_settings() -> None:
    provider = FakeProvider(
        name="kakao",
        secret="s3cr3t-value",
        idempotency=False,
        lookup_by_order_id=False,
        void_window=None,
        methods=[Method.KAKAOPAY],
    )
    assert isinstance(provider, Provider)
    caps = provider.capabilities
    assert caps.methods == frozenset({Method.KAKAOPAY})
    assert (caps.idempotency_header, caps.idempotency_retention) == (None, None)
    assert caps.lookup_by_order_id is False
    assert caps.void_window is None
    assert provider.base_url == "https://kakao.fake.test"
    assert "s3cr3t-value" not in repr(provider)
    defaults = FakeProvider().capabilities
    assert defaults.methods == frozenset(Method)
    assert defaults.idempotency_header == "Idempotency-Key"
    assert defaults.idempotency_retention == timedelta(days=15)
    assert defaults.void_window == timedelta(hours=1)


def test_fake_entry_point_builds_a_provider() -> None:
    provider = load_provider("fake", name="naver", secret="x", base_url="http://127.0.0.1:9/naver")
    assert isinstance(provider, FakeProvider)
    assert (provider.name, provider.base_url) == ("naver", "http://127.0.0.1:9/naver")


def test_build_requests_pin_the_wire_format(provider: FakeProvider) -> None:
    ready = provider.build_ready(ready_req())
    assert (ready.method, str(ready.url)) == ("POST", "https://toss.fake.test/v1/checkouts")
    assert ready.headers["authorization"] == "Bearer fake-secret"
    assert ready.headers["idempotency-key"] == "key-ready"
    assert ready.headers["content-type"] == "application/json"
    assert json.loads(ready.content) == {
        "order_ref": "ORD-1_1",
        "amount": 39_000,
        "currency": "KRW",
        "name": "americano",
        "method": "kakaopay",
        "return_url": "https://shop.example/ok",
        "cancel_url": "https://shop.example/no",
    }
    approve = provider.build_approve(
        approve_req(None, {"token": "ok-toss-000001", "tid": "toss-000001"})
    )
    assert str(approve.url) == "https://toss.fake.test/v1/checkouts/toss-000001/approve"
    assert json.loads(approve.content) == {"token": "ok-toss-000001", "amount": 39_000}
    charge = provider.build_charge(charge_req())
    assert str(charge.url) == "https://toss.fake.test/v1/charges"
    assert json.loads(charge.content) == {
        "order_ref": "ORD-1_1",
        "billing_key": BILLING_KEY,
        "amount": 39_000,
        "currency": "KRW",
    }
    by_tid = provider.build_lookup(LookupRequest("ORD-1_1", ORDER, "toss-000001"))
    assert (by_tid.method, str(by_tid.url)) == (
        "GET",
        "https://toss.fake.test/v1/payments/toss-000001",
    )
    assert "idempotency-key" not in by_tid.headers
    by_ref = provider.build_lookup(LookupRequest("ORD-1_1", ORDER, None))
    assert str(by_ref.url) == "https://toss.fake.test/v1/payments?order_ref=ORD-1_1"
    cancel = provider.build_cancel(cancel_req("toss-000001"))
    assert str(cancel.url) == "https://toss.fake.test/v1/payments/toss-000001/cancel"
    assert json.loads(cancel.content) == {
        "amount": 9_000,
        "expected_remaining": 39_000,
        "reason": "one cup",
    }
    void = provider.build_void(
        VoidRequest("ORD-1_1", ORDER, "toss-000001", Money(amount=39_000), "key-void")
    )
    assert str(void.url) == "https://toss.fake.test/v1/payments/toss-000001/void"
    void_by_ref = provider.build_void(
        VoidRequest("ORD-1_1", ORDER, None, Money(amount=39_000), "key-void")
    )
    assert str(void_by_ref.url) == "https://toss.fake.test/v1/orders/ORD-1_1/void"


def test_without_idempotency_no_key_is_sent() -> None:
    provider = FakeProvider("toss", idempotency=False)
    assert "idempotency-key" not in provider.build_charge(charge_req()).headers


def test_build_refuses_what_the_provider_would(provider: FakeProvider) -> None:
    with pytest.raises(InvalidRequest, match="does not take kakaopay"):
        FakeProvider("toss", methods=[Method.CARD]).build_ready(ready_req())
    with pytest.raises(InvalidRequest, match="belongs to nice"):
        provider.build_charge(charge_req("nice"))
    with pytest.raises(InvalidRequest, match="no token"):
        provider.build_approve(approve_req("toss-000001", {}))
    with pytest.raises(InvalidRequest, match="own id only"):
        FakeProvider("toss", lookup_by_order_id=False).build_lookup(
            LookupRequest("ORD-1_1", ORDER, None)
        )
    with pytest.raises(InvalidRequest, match="exceeds"):
        provider.build_cancel(cancel_req("toss-000001", amount=40_000))
    with pytest.raises(InvalidRequest, match="greater than zero"):
        provider.build_cancel(cancel_req("toss-000001", amount=0))
    with pytest.raises(NotImplementedError, match="build_void"):
        FakeProvider("toss", void_window=None).build_void(
            VoidRequest("ORD-1_1", ORDER, "toss-000001", Money(amount=1), "k")
        )


def test_adapter_round_trip_redirect_flow(provider: FakeProvider, bank: FakeBank) -> None:
    req = ready_req()
    redirect = provider.parse_ready(req, send(bank, provider.build_ready(req)))
    assert isinstance(redirect, Redirect)
    tid = redirect.provider_txn_id
    assert tid == bank.ledger[0].txn_id
    assert redirect.redirect_urls[Platform.PC] == f"https://toss.fake.test/pay/{tid}"
    params = {"token": f"ok-{tid}", "tid": tid}
    approve = approve_req(tid, params)
    approved = provider.parse_approve(approve, send(bank, provider.build_approve(approve)))
    assert isinstance(approved, Approved)
    assert (approved.provider_txn_id, approved.amount, approved.provider_status) == (
        tid,
        Money(amount=39_000),
        "paid",
    )
    assert approved.approved_at == bank.clock.now()
    cancelled = approve_req(tid, {"token": "cancel", "tid": tid}, key="key-approve-2")
    again = provider.parse_approve(cancelled, send(bank, provider.build_approve(cancelled)))
    assert isinstance(error_of(again), OutcomeUnknown), "ALREADY_APPROVED: look it up"


def test_adapter_round_trip_charge_lookup_cancel_void(
    provider: FakeProvider, bank: FakeBank
) -> None:
    req = charge_req()
    approved = provider.parse_charge(req, send(bank, provider.build_charge(req)))
    assert isinstance(approved, Approved)
    tid = approved.provider_txn_id
    # What a till prints, as a card PG's adapter maps it.
    assert approved.receipt is not None
    assert approved.receipt.approval_number is not None
    assert len(approved.receipt.approval_number) == 8
    assert approved.receipt.card_number == "5365-10**-****-7543"
    assert (approved.receipt.installment_months, approved.receipt.card_kind) == (
        0,
        CardKind.CREDIT,
    )
    assert approved.receipt.receipt_url == f"https://toss.fake.test/receipts/{tid}"
    assert approved.answer is not None
    assert approved.answer["tid"] == tid
    for lookup in (LookupRequest("ORD-1_1", ORDER, tid), LookupRequest("ORD-1_1", ORDER, None)):
        status = provider.parse_lookup(lookup, send(bank, provider.build_lookup(lookup)))
        assert isinstance(status, Status)
        assert status.receipt == approved.receipt  # a payment found by lookup has one too
        assert dataclasses.replace(status, receipt=None, answer=None) == Status(
            TxnState.PAID, tid, Money(amount=39_000), 0, "paid"
        )
    cancel = cancel_req(tid)
    cancelled = provider.parse_cancel(cancel, send(bank, provider.build_cancel(cancel)))
    assert isinstance(cancelled, Cancelled)
    assert (cancelled.provider_txn_id, cancelled.amount, cancelled.remaining) == (
        tid,
        Money(amount=9_000),
        30_000,
    )
    assert cancelled.receipt == RefundReceipt(cancel_id=f"{tid}-cancel-9000", remaining=30_000)
    void = VoidRequest("ORD-1_1", ORDER, tid, Money(amount=39_000), "key-void")
    refused = provider.parse_void(void, send(bank, provider.build_void(void)))
    assert isinstance(error_of(refused), InvalidRequest)
    assert error_of(refused).provider_code == "NOT_VOIDABLE"
    missing = LookupRequest("ORD-9_1", ORDER, None)
    assert provider.parse_lookup(missing, send(bank, provider.build_lookup(missing))) == Status(
        TxnState.NOT_FOUND
    )


def test_adapter_void_of_a_paid_and_of_an_unapproved_payment(
    provider: FakeProvider, bank: FakeBank
) -> None:
    tid = provider.parse_charge(charge_req(), send(bank, provider.build_charge(charge_req())))
    assert isinstance(tid, Approved)
    void = VoidRequest("ORD-1_1", ORDER, None, Money(amount=39_000), "key-void")
    assert provider.parse_void(void, send(bank, provider.build_void(void))) == Cancelled(
        tid.provider_txn_id, Money(amount=39_000), remaining=0
    )
    ready = ReadyRequest("ORD-2_1", ORDER, Method.CARD, URLS, "key-ready-2")
    redirect = provider.parse_ready(ready, send(bank, provider.build_ready(ready)))
    assert isinstance(redirect, Redirect)
    closed = VoidRequest(
        "ORD-2_1", ORDER, redirect.provider_txn_id, Money(amount=39_000), "key-void-2"
    )
    outcome = provider.parse_void(closed, send(bank, provider.build_void(closed)))
    assert outcome == Cancelled(redirect.provider_txn_id or "", Money(amount=0), remaining=0)
    lookup = LookupRequest("ORD-2_1", ORDER, redirect.provider_txn_id)
    status = provider.parse_lookup(lookup, send(bank, provider.build_lookup(lookup)))
    assert isinstance(status, Status)
    assert status.state is TxnState.NOT_PAID


def test_code_table_maps_every_code_the_bank_answers() -> None:
    assert set(CODE_TABLE) == ERROR_CODES


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(
        status, content=content, headers={"x-request-id": "req-7", **(headers or {})}
    )


@pytest.mark.parametrize("error_code", sorted(ERROR_CODES))
def test_every_code_on_a_charge_is_classified_by_the_table(
    provider: FakeProvider, error_code: str
) -> None:
    status = {
        "UNAUTHORIZED": 401,
        "MAINTENANCE": 503,
        "RATE_LIMITED": 429,
        "INTERNAL_ERROR": 500,
    }.get(error_code, 400)
    error = error_of(
        provider.parse_charge(charge_req(), answer(status, {"code": error_code, "message": "m"}))
    )
    expected = CODE_TABLE[error_code] or OutcomeUnknown  # a 500 on a charge may have acted
    assert type(error) is expected
    assert (error.provider_code, error.provider_request_id, error.provider) == (
        error_code,
        "req-7",
        "toss",
    )
    assert error.attempt_id == "ORD-1_1"


def test_error_classes_carry_what_the_router_needs(provider: FakeProvider) -> None:
    req = charge_req()
    declined = error_of(
        provider.parse_charge(
            req, answer(402, {"code": "CARD_DECLINED", "message": "m", "tid": "t"})
        )
    )
    assert isinstance(declined, Declined)
    busy = error_of(
        provider.parse_charge(req, answer(503, {"code": "MAINTENANCE"}, {"retry-after": "30"}))
    )
    assert isinstance(busy, ProviderUnavailable)
    assert busy.retry_after == 30.0
    config = error_of(provider.parse_charge(req, answer(401, {"code": "UNAUTHORIZED"})))
    assert isinstance(config, ConfigurationError)
    assert "secret" in str(config)
    lookup = LookupRequest("ORD-1_1", ORDER, "toss-000001")
    internal = error_of(provider.parse_lookup(lookup, answer(500, {"code": "INTERNAL_ERROR"})))
    assert isinstance(internal, ProviderUnavailable), "a 500 on a read-only call moved nothing"


def test_unmapped_codes_are_unknown_on_money_moving_calls(provider: FakeProvider) -> None:
    weird = answer(400, {"code": "SOMETHING_NEW", "message": "?"})
    assert isinstance(error_of(provider.parse_charge(charge_req(), weird)), OutcomeUnknown)
    assert isinstance(error_of(provider.parse_cancel(cancel_req("t"), weird)), OutcomeUnknown)
    approve = approve_req("t", {"token": "ok-t"})
    assert isinstance(
        error_of(provider.parse_approve(approve, answer(418, b"not json"))), OutcomeUnknown
    )
    # Read-only calls fall back to the HTTP status.
    lookup = LookupRequest("ORD-1_1", ORDER, "t")
    assert isinstance(error_of(provider.parse_lookup(lookup, weird)), InvalidRequest)
    assert isinstance(
        error_of(provider.parse_ready(ready_req(), answer(502, b"<html>"))), ProviderUnavailable
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"tid": "',
        {"result": "ok"},
        {"tid": "toss-000001", "order_ref": "ORD-1_1", "status": "paid", "currency": "KRW"},
        {
            "tid": "toss-000001",
            "order_ref": "ORD-1_1",
            "status": "paid",
            "amount": "39000",
            "currency": "KRW",
        },
        {
            "tid": "toss-000001",
            "order_ref": "ORD-1_1",
            "status": "paid",
            "amount": 39_000,
            "currency": "XXX",
        },
        {
            "tid": "toss-000001",
            "order_ref": "ORD-2_1",
            "status": "paid",
            "amount": 39_000,
            "currency": "KRW",
        },
        {
            "tid": "toss-000001",
            "order_ref": "ORD-1_1",
            "status": "ready",
            "amount": 39_000,
            "currency": "KRW",
        },
        [1, 2, 3],
    ],
)
def test_a_success_body_lacking_what_we_need_is_unknown(provider: FakeProvider, body: Any) -> None:
    error = error_of(provider.parse_charge(charge_req(), answer(200, body)))
    assert isinstance(error, OutcomeUnknown)
    assert (error.operation, error.provider_request_id) == ("charge", "req-7")


def test_malformed_answers_on_read_only_calls_are_unavailable(provider: FakeProvider) -> None:
    lookup = LookupRequest("ORD-1_1", ORDER, "toss-000001")
    assert isinstance(
        error_of(provider.parse_lookup(lookup, answer(200, b"{"))), ProviderUnavailable
    )
    assert isinstance(
        error_of(provider.parse_ready(ready_req(), answer(200, {"tid": 1}))), ProviderUnavailable
    )
    unknown_state = answer(
        200,
        {
            "tid": "toss-000001",
            "status": "refunding",
            "amount": 1,
            "currency": "KRW",
            "cancelled_amount": 0,
        },
    )
    assert isinstance(error_of(provider.parse_lookup(lookup, unknown_state)), OutcomeUnknown)


def test_cancel_answer_must_match_what_we_cancelled(provider: FakeProvider) -> None:
    body = {
        "tid": "toss-000001",
        "order_ref": "ORD-1_1",
        "status": "partially_cancelled",
        "amount": 39_000,
        "currency": "KRW",
        "cancelled_amount": 1_000,  # we cancelled 9,000 of 39,000
        "approved_at": None,
    }
    assert isinstance(
        error_of(provider.parse_cancel(cancel_req("toss-000001"), answer(200, body))),
        OutcomeUnknown,
    )


def test_secrets_never_reach_errors(provider: FakeProvider, bank: FakeBank) -> None:
    bank.fail_next("charge", Fault.MISSING_FIELDS)
    outcomes = [
        provider.parse_charge(charge_req(), send(bank, provider.build_charge(charge_req()))),
        FakeProvider("toss", secret="wrong-secret").parse_charge(
            charge_req(),
            send(bank, FakeProvider("toss", secret="wrong-secret").build_charge(charge_req())),
        ),
    ]
    for outcome in outcomes:
        error = error_of(outcome)
        for text in (str(error), repr(error), repr(error.context())):
            assert BILLING_KEY not in text
            assert "fake-secret" not in text
            assert "wrong-secret" not in text


def test_provider_declares_its_settle_window_and_secrets() -> None:
    provider = FakeProvider("toss", secret="s3cr3t-value")
    caps = provider.capabilities
    assert caps.settle_window == timedelta(seconds=30)
    assert caps.proofs == (Proof.REPLAY, Proof.VOID, Proof.RECORD, Proof.NOT_FOUND_AFTER_SETTLE)
    assert provider.secrets.contains("Authorization: Bearer s3cr3t-value")
    assert not provider.secrets.contains("fake-secret")
    assert "s3cr3t-value" not in repr(provider.secrets)
    never = FakeProvider("toss", settle_window=None, idempotency=False).capabilities
    assert never.settle_window is None
    assert never.proofs == (Proof.VOID, Proof.RECORD)


def test_adapter_through_a_late_commit(provider: FakeProvider, clock: ManualClock) -> None:
    bank = FakeBank("toss", clock=clock, late_commit_delay=2.0, lookup_lag=10.0)
    req = charge_req()
    lookup = LookupRequest("ORD-1_1", ORDER, None)
    bank.fail_next("charge", Fault.LATE_COMMIT)
    with httpx.Client(transport=bank.transport(), timeout=TIMEOUT) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.send(provider.build_charge(req))
        busy = error_of(provider.parse_charge(req, client.send(provider.build_charge(req))))
        assert type(busy) is RequestInFlight  # an OutcomeUnknown: replay later, same key
        assert (busy.provider_code, busy.retry_after) == ("IDEMPOTENT_REQUEST_PROCESSING", 1.0)
        found = provider.parse_lookup(lookup, client.send(provider.build_lookup(lookup)))
        assert isinstance(found, Status)
        assert found.state is TxnState.NOT_FOUND
        clock.advance(2.0)
        approved = provider.parse_charge(req, client.send(provider.build_charge(req)))
        assert isinstance(approved, Approved)
        found = provider.parse_lookup(lookup, client.send(provider.build_lookup(lookup)))
        assert isinstance(found, Status)
        assert found.state is TxnState.NOT_FOUND, "lookups lag the commit"
        clock.advance(10.0)
        found = provider.parse_lookup(lookup, client.send(provider.build_lookup(lookup)))
        assert isinstance(found, Status)
        assert (found.state, found.provider_txn_id) == (TxnState.PAID, approved.provider_txn_id)
    [entry] = bank.ledger
    assert (entry.txn_id, entry.idempotency_key, entry.live) == (
        approved.provider_txn_id,
        "key-charge",
        True,
    )


def test_in_progress_is_unknown_on_a_charge(provider: FakeProvider) -> None:
    error = error_of(provider.parse_charge(charge_req(), answer(409, {"code": "IN_PROGRESS"})))
    assert type(error) is OutcomeUnknown
    assert error.retry_after is None
