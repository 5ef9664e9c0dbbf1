"""No secret comes back out: Toss Payments answers that echo every secret we sent, in every
string field and in the trace-id header, on every operation, on the success shape and on
each error shape.

The secrets: the secret key and the ``Authorization`` value built from it (whole, and its
base64 part alone) — the adapter's own :attr:`TossPayments.secrets` — and the request
secrets the adapter has in hand while it parses a charge: the billing key (which travels
in the URL path) and the customer key it is paired with. Toss's success URL carries no
one-time token (``paymentKey``, ``orderId``, ``amount``); the client key is public by
design; the ``paymentKey`` is the transaction id, not a secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from payfallback_tosspayments import TossPayments
from pydantic import SecretStr
from tosspayments_support import (
    AUTH,
    BILLING_KEY,
    CLIENT,
    CUSTOMER_KEY,
    PAYMENT_KEY,
    SECRET,
    load,
    order,
)

from payfallback import Router
from payfallback.errors import Declined, InvalidRequest, ProviderUnavailable
from payfallback.models import Instrument
from payfallback.provider import (
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    ChargeRequest,
    Failed,
    LookupRequest,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
)
from payfallback.testing.secrets import assert_no_secret, echo_text, echoed, header_text

TOKEN = AUTH.removeprefix("Basic ")
OWN = (SECRET, AUTH, TOKEN)
OPERATIONS = ("approve", "charge", "lookup", "lookup_by_order", "cancel")

#: The answer each operation succeeds with, and the fields that must stay as Toss sent
#: them for the success path to be reached (every other string is echoed).
KEEP = frozenset({"paymentKey", "orderId", "status", "currency", "cancelStatus"})
SUCCESS: dict[str, tuple[str, type[object]]] = {
    "approve": ("payment_done_card", Approved),
    "charge": ("payment_done_billing", Approved),
    "lookup": ("payment_done_card", Status),
    "lookup_by_order": ("payment_done_card", Status),
    "cancel": ("payment_canceled", Cancelled),
}

#: Error answers ``{code, message}`` Toss gives, by HTTP status.
ERRORS = (
    (400, "PROVIDER_ERROR"),
    (401, "UNAUTHORIZED_KEY"),
    (403, "REJECT_CARD_COMPANY"),
    (404, "NOT_FOUND_PAYMENT"),
    (409, "IDEMPOTENT_REQUEST_PROCESSING"),
    (429, "TOO_MANY_REQUESTS"),
    (500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
)


@dataclasses.dataclass
class Case:
    request: httpx.Request
    parse: Callable[[httpx.Response], Outcome]
    #: Values that must not appear anywhere in what the parse hands back.
    forbidden: tuple[str, ...]
    #: The success answer's paymentKey (a charge learns a new one; the others are ours).
    payment_key: str


@pytest.fixture
def cases(
    toss: TossPayments,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    lookup_req: LookupRequest,
    lookup_by_order_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[str, Case]:
    t = toss
    return {
        "approve": Case(
            t.build_approve(approve_req),
            lambda r: t.parse_approve(approve_req, r),
            OWN,
            PAYMENT_KEY,
        ),
        "charge": Case(
            t.build_charge(charge_req),
            lambda r: t.parse_charge(charge_req, r),
            (*OWN, BILLING_KEY, CUSTOMER_KEY),
            "tbill20240101100130xyz12",
        ),
        "lookup": Case(
            t.build_lookup(lookup_req), lambda r: t.parse_lookup(lookup_req, r), OWN, PAYMENT_KEY
        ),
        "lookup_by_order": Case(
            t.build_lookup(lookup_by_order_req),
            lambda r: t.parse_lookup(lookup_by_order_req, r),
            OWN,
            PAYMENT_KEY,
        ),
        "cancel": Case(
            t.build_cancel(cancel_req), lambda r: t.parse_cancel(cancel_req, r), OWN, PAYMENT_KEY
        ),
    }


def _echo(case: Case) -> str:
    """Every secret we know of, and the request itself, in the forms a server may echo."""
    return echo_text(SECRET, TOKEN, BILLING_KEY, CUSTOMER_KEY, case.request)


def _answer(status: int, body: Any, case: Case) -> httpx.Response:
    # Toss's trace-id header echoes the secrets too.
    trace = header_text(_echo(case))
    return httpx.Response(status, json=body, headers={"X-TossPayments-Trace-Id": trace})


def _assert_clean(outcome: Outcome, forbidden: tuple[str, ...], toss: TossPayments) -> None:
    assert_no_secret(outcome, forbidden, declared=toss.secrets)


# -- the adapter declares its secrets -----------------------------------------------------------


def test_own_secrets_and_auth_header_values_are_declared(
    toss: TossPayments, cases: dict[str, Case]
) -> None:
    secrets = toss.secrets
    assert toss.kit.secrets is secrets
    for case in cases.values():
        assert secrets.contains(case.request.headers["authorization"])
    assert secrets.contains(SECRET)
    assert secrets.contains(TOKEN)  # the base64 part alone, as a server might echo it
    assert "test_sk" not in repr(secrets)
    # Public by design, or transaction ids: never masked.
    assert not secrets.contains(CLIENT)
    assert not secrets.contains(PAYMENT_KEY)


def test_the_instance_shows_no_secret(toss: TossPayments) -> None:
    assert_no_secret((repr(toss), str(vars(toss)), repr(toss.kit)), (SECRET, TOKEN))


# -- ready: nothing is sent, nothing secret is handed to the page -------------------------------


def test_ready_hands_the_page_no_secret(toss: TossPayments, ready_req: ReadyRequest) -> None:
    assert toss.build_ready(ready_req) is None
    outcome = toss.parse_ready(ready_req, None)
    assert isinstance(outcome, Redirect)
    _assert_clean(outcome, OWN, toss)
    assert outcome.client_params["clientKey"] == CLIENT


# -- success shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_echoing_secrets_keeps_them_out_of_the_outcome(
    toss: TossPayments, cases: dict[str, Case], op: str
) -> None:
    case = cases[op]
    name, success = SUCCESS[op]
    body = echoed(load(name, paymentKey=case.payment_key), _echo(case), KEEP)
    outcome = case.parse(_answer(200, body, case))
    assert isinstance(outcome, success), outcome
    _assert_clean(outcome, case.forbidden, toss)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_success_answer_with_secrets_in_every_field_is_never_taken_as_it_is(
    toss: TossPayments, cases: dict[str, Case], op: str
) -> None:
    # paymentKey, orderId and status echoed too: the answer names another payment (or a
    # credential as its id), so it cannot be used as it stands.
    case = cases[op]
    name, _ = SUCCESS[op]
    body = echoed(load(name), _echo(case), frozenset())
    outcome = case.parse(_answer(200, body, case))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.forbidden, toss)


@pytest.mark.parametrize("op", ["charge", "lookup_by_order"])
@pytest.mark.parametrize("secret", [SECRET, TOKEN])
def test_a_new_payment_key_made_of_a_credential_is_refused(
    toss: TossPayments, cases: dict[str, Case], op: str, secret: str
) -> None:
    # Where the paymentKey is learnt from the answer, a credential there would become the
    # transaction id the journal keeps: never.
    case = cases[op]
    name, _ = SUCCESS[op]
    outcome = case.parse(_answer(200, load(name, paymentKey=f"pk_{secret}"), case))
    assert isinstance(outcome, Failed)
    if op == "lookup_by_order":
        assert isinstance(outcome.error, ProviderUnavailable)
    _assert_clean(outcome, case.forbidden, toss)


def test_a_charge_answer_with_the_billing_key_as_payment_key_is_refused(
    toss: TossPayments, cases: dict[str, Case]
) -> None:
    case = cases["charge"]
    outcome = case.parse(_answer(200, load("payment_done_billing", paymentKey=BILLING_KEY), case))
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.forbidden, toss)


@pytest.mark.parametrize("op", ["lookup", "lookup_by_order"])
@pytest.mark.parametrize("status", ["HELD", "ABORTED"])
def test_a_lookup_with_a_secret_in_every_other_field_reads_its_status(
    toss: TossPayments, cases: dict[str, Case], op: str, status: str
) -> None:
    # An unknown status is reported as its code; a known one is read. Neither carries
    # what was echoed.
    case = cases[op]
    body = echoed(load("payment_aborted", status=status), _echo(case), KEEP)
    outcome = case.parse(_answer(200, body, case))
    if status == "ABORTED":
        assert isinstance(outcome, Status)
        assert outcome.state is TxnState.NOT_PAID
    else:
        assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.forbidden, toss)


# -- error shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize(("status", "code"), ERRORS)
@pytest.mark.parametrize("codes", ["kept", "echoed"])
def test_an_error_answer_echoing_secrets_keeps_them_out_of_the_error(
    toss: TossPayments, cases: dict[str, Case], op: str, status: int, code: str, codes: str
) -> None:
    case = cases[op]
    body = {"code": code, "message": "원문"}
    keep = frozenset({"code"}) if codes == "kept" else frozenset()
    outcome = case.parse(_answer(status, echoed(body, _echo(case), keep), case))
    if op.startswith("lookup") and code == "NOT_FOUND_PAYMENT" and codes == "kept":
        assert isinstance(outcome, Status)  # "no such payment" is a lookup's answer
    else:
        assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.forbidden, toss)


@pytest.mark.parametrize("op", OPERATIONS)
@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 502, 503])
def test_a_non_json_error_page_echoing_secrets_keeps_them_out(
    toss: TossPayments, cases: dict[str, Case], op: str, status: int
) -> None:
    case = cases[op]
    page = httpx.Response(
        status,
        text=f"<html>{_echo(case)}</html>",
        headers={"X-TossPayments-Trace-Id": SECRET},
    )
    outcome = case.parse(page)
    assert isinstance(outcome, Failed)
    _assert_clean(outcome, case.forbidden, toss)


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_code_made_of_a_secret_is_masked(
    toss: TossPayments, cases: dict[str, Case], op: str
) -> None:
    # The code itself travels into provider_code; it passes through the kit's cleaner.
    case = cases[op]
    for secret in case.forbidden:
        outcome = case.parse(_answer(400, {"code": secret, "message": secret}, case))
        assert isinstance(outcome, Failed)
        _assert_clean(outcome, case.forbidden, toss)


def test_a_fail_url_echoing_secrets_keeps_them_out_of_the_decline(
    toss: TossPayments, approve_req: ApproveRequest
) -> None:
    # The fail URL's message comes through the browser: scrubbed like Toss's own text.
    for code in ("PAY_PROCESS_CANCELED", "SOMETHING_NEW"):
        req = dataclasses.replace(
            approve_req,
            callback_params={"code": code, "message": f"echo {SECRET} {AUTH}", "orderId": "x"},
        )
        with pytest.raises((Declined, InvalidRequest)) as caught:
            toss.build_approve(req)
        assert_no_secret(caught.value, OWN)


# -- requests refused before sending ------------------------------------------------------------


def test_refusals_before_sending_never_quote_request_secrets(
    toss: TossPayments, charge_req: ChargeRequest
) -> None:
    long_key = Instrument(
        provider="tosspayments",
        billing_key=SecretStr(BILLING_KEY * 5),
        customer_key=CUSTOMER_KEY,
    )
    long_customer = Instrument(
        provider="tosspayments",
        billing_key=SecretStr(BILLING_KEY),
        customer_key=CUSTOMER_KEY * 10,
    )
    refusals: list[Callable[[], object]] = [
        lambda: toss.build_charge(dataclasses.replace(charge_req, instrument=long_key)),
        lambda: toss.build_charge(dataclasses.replace(charge_req, instrument=long_customer)),
        lambda: toss.build_charge(dataclasses.replace(charge_req, idempotency_key="k" * 301)),
    ]
    for refuse in refusals:
        with pytest.raises(InvalidRequest) as caught:
            refuse()
        assert_no_secret(caught.value, (*OWN, BILLING_KEY, CUSTOMER_KEY))


# -- what the Router keeps ---------------------------------------------------------------------


def test_the_answer_the_router_keeps_with_the_payment_holds_no_secret(
    toss: TossPayments, charge_req: ChargeRequest, tmp_path: Path
) -> None:
    # A billing charge answered with every secret (the billing key and customer key of the
    # request included) echoed into each string field: the payment's kept answer and its
    # receipt carry none of them, while the receipt fields Toss sent as they are remain.
    def billing(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        body = echoed(
            load("payment_done_billing", orderId=sent["orderId"]),
            echo_text(SECRET, TOKEN, BILLING_KEY, CUSTOMER_KEY, request),
            KEEP | {"approveNo", "number", "cardType"},
        )
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(billing))
    router = Router(
        [toss],
        client=client,
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        sleep=lambda _: None,
    )
    try:
        paid = router.charge(order(), [charge_req.instrument])
    finally:
        router.close()
        client.close()
    assert paid.receipt is not None
    assert paid.receipt.approval_number == "00000000"
    assert paid.receipt.card_number == "12341234****123*"
    assert paid.provider_answer is not None
    assert paid.provider_answer["card"]["approveNo"] == "00000000"
    assert_no_secret(
        (paid.model_dump_json(), json.dumps(paid.provider_answer, ensure_ascii=False)),
        (*OWN, BILLING_KEY, CUSTOMER_KEY),
        declared=toss.secrets,
    )
