"""No secret comes back out: PortOne answers that echo every secret, in every string field
(and in the request-id headers), on every operation, on the success shape and on each
error shape.

The secrets: the V2 API secret and the ``Authorization: PortOne …`` value built from it,
the webhook secret (with and without its ``whsec_`` prefix) — the adapter's own
:attr:`PortOne.secrets` — and the request secrets the adapter has in hand while it parses:
the billing key of a charge and the card of a key-in payment. PortOne's return URL carries
no one-time token (``paymentId``, ``code``, ``message``, ``pgCode``, ``pgMessage``, none of
them secret), so an approve has no request secret; its ``message`` is still provider text
and goes through the kit's cleaner. The store id and channel keys are not secrets.

Each answer is echoed twice: once keeping the fields that choose the path (``status``,
``type``, ``id``, ``currency``) so the success or the documented error is reached, once
echoing those too (an unknown status or error type must not carry a secret out either).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from payfallback_portone import InstantChargeRequest, KeyInCard, PortOne
from portone_support import (
    API_SECRET,
    ATTEMPT,
    BILLING_KEY,
    CARD_NUMBER,
    KEY,
    SPEC_OPERATIONS,
    WEBHOOK_SECRET,
    error_types,
    load,
)
from pydantic import SecretStr

from payfallback import Router
from payfallback.adapter import Secrets
from payfallback.errors import InvalidRequest, PayfallbackError
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
    Status,
)
from payfallback.testing.secrets import echo_text, echoed, leaks

AUTHORIZATION = f"PortOne {API_SECRET}"
WEBHOOK_RAW = WEBHOOK_SECRET.removeprefix("whsec_")
OWN = (API_SECRET, AUTHORIZATION, WEBHOOK_SECRET, WEBHOOK_RAW)
#: Fields that choose the parser's path (and the currency of an amount); kept in the
#: first pass, echoed in the second.
PATH_FIELDS = frozenset({"status", "type", "id", "currency"})

Parse = Callable[[httpx.Response], Outcome]


@pytest.fixture
def instant_req(charge_req: ChargeRequest) -> InstantChargeRequest:
    card = KeyInCard(
        number=SecretStr(CARD_NUMBER),
        expiry_year="29",
        expiry_month="12",
        birth_or_business_registration_number=SecretStr("900101"),
        password_two_digits=SecretStr("12"),
    )
    return InstantChargeRequest(
        attempt_id=ATTEMPT, order=charge_req.order, card=card, idempotency_key=KEY
    )


@pytest.fixture
def cases(
    portone: PortOne,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    instant_req: InstantChargeRequest,
    lookup_req: LookupRequest,
    cancel_req: CancelRequest,
) -> dict[str, tuple[Parse, tuple[str, ...], list[str]]]:
    """Per operation: its parser, the secrets it must keep in, its success payloads."""
    return {
        "approve": (
            lambda r: portone.parse_approve(approve_req, r),
            OWN,
            [
                "payment_paid",
                "payment_paid_kakaopay_card",
                "payment_failed",
                "payment_ready",
                "payment_pay_pending",
            ],
        ),
        "lookup": (
            lambda r: portone.parse_lookup(lookup_req, r),
            OWN,
            ["payment_paid", "payment_failed", "payment_partial_cancelled", "payment_cancelled"],
        ),
        "charge": (
            lambda r: portone.parse_charge(charge_req, r),
            (*OWN, BILLING_KEY),
            ["billing_key_paid"],
        ),
        "instant": (
            lambda r: portone.parse_instant_charge(instant_req, r),
            (*OWN, CARD_NUMBER, "900101"),
            ["instant_paid"],
        ),
        "cancel": (
            lambda r: portone.parse_cancel(cancel_req, r),
            OWN,
            ["cancel_succeeded", "cancel_requested", "cancel_failed"],
        ),
    }


def loud(secrets: tuple[str, ...]) -> str:
    """Every secret, in the forms a provider might echo them."""
    return echo_text(*secrets, f"Authorization: {AUTHORIZATION} key={secrets[-1]}")


@pytest.mark.parametrize("table", ["approve", "lookup", "charge", "instant", "cancel"])
@pytest.mark.parametrize("keep", [PATH_FIELDS, frozenset()], ids=["path-kept", "all-echoed"])
def test_success_shapes_that_echo_secrets_carry_none_out(
    portone: PortOne,
    cases: dict[str, tuple[Parse, tuple[str, ...], list[str]]],
    table: str,
    keep: frozenset[str],
) -> None:
    parse, secrets, payloads = cases[table]
    reached: set[type[object]] = set()
    for name in payloads:
        answer = echoed(load(name), loud(secrets), keep)
        if "id" in keep and "id" in answer:
            answer["id"] = ATTEMPT
        outcome = parse(httpx.Response(200, json=answer, headers={"x-request-id": loud(secrets)}))
        reached.add(type(outcome))
        assert leaks(outcome, secrets, portone.secrets) == [], (table, name)
    if keep:  # the success path itself was taken, with the secrets all around it
        assert reached & {Approved, Status, Cancelled}, (table, reached)


@pytest.mark.parametrize("table", ["approve", "lookup", "charge", "instant", "cancel"])
@pytest.mark.parametrize("keep", [PATH_FIELDS, frozenset()], ids=["path-kept", "all-echoed"])
def test_every_error_shape_that_echoes_secrets_carries_none_out(
    portone: PortOne,
    openapi: dict[str, Any],
    cases: dict[str, tuple[Parse, tuple[str, ...], list[str]]],
    table: str,
    keep: frozenset[str],
) -> None:
    parse, secrets, _ = cases[table]
    text = loud(secrets)
    documented = error_types(openapi, SPEC_OPERATIONS[table])
    answers = [
        httpx.Response(
            status,
            json=echoed({"type": t, "message": "m", "pgCode": "c", "pgMessage": "p"}, text, keep),
        )
        for t, status in documented.items()
    ]
    answers += [
        httpx.Response(409, json=echoed(load("error_idempotency_outstanding"), text, keep)),
        httpx.Response(502, json=echoed(load("error_pg_provider_decline"), text, keep)),
        httpx.Response(400, json={"type": text, "message": text}),  # an unknown type
        httpx.Response(500, json={"message": text}),  # no type at all
        httpx.Response(502, text=f"<html>{text}</html>"),  # a gateway's page
        httpx.Response(200, text=text),  # a success status with an unreadable body
    ]
    for response in answers:
        # The request-id header echoes them too; the error quotes it first in str().
        for header in ("x-request-id", "x-amzn-trace-id"):
            response.headers[header] = text
        outcome = parse(response)
        assert leaks(outcome, secrets, portone.secrets) == [], (
            table,
            response.status_code,
            outcome,
        )


def test_ready_with_an_answer_carries_no_secret_out(
    portone: PortOne, ready_req: ReadyRequest
) -> None:
    outcome = portone.parse_ready(ready_req, httpx.Response(200, text=loud(OWN)))
    assert isinstance(outcome, Failed)
    assert isinstance(outcome.error, InvalidRequest)
    assert leaks(outcome, OWN, portone.secrets) == []


def test_the_return_urls_message_is_cleaned_by_the_kit(
    portone: PortOne, approve_req: ApproveRequest
) -> None:
    # The browser hands back PortOne's message; it is provider text, cleaned like any other.
    req = dataclasses.replace(
        approve_req,
        callback_params={
            "paymentId": ATTEMPT,
            "code": "FAILURE_TYPE_PG",
            "message": f"결제가   취소되었습니다\n{API_SECRET} {'가' * 500}",
        },
    )
    outcome = portone.parse_approve(req, httpx.Response(200, json=load("payment_ready")))
    assert isinstance(outcome, Failed)
    message = outcome.error.message
    assert message.startswith(
        "the customer did not complete the payment at PortOne: 결제가 취소되었습니다 "
    )
    assert API_SECRET not in message
    assert "[redacted]" in message
    assert len(message) < 400  # clipped by the kit


def test_the_adapter_declares_its_secrets_to_the_router(portone: PortOne) -> None:
    assert portone.kit.secrets is portone.secrets
    for secret in OWN:
        assert portone.secrets.contains(f"…{secret}…"), secret[:12]
    assert not portone.secrets.contains("store-4ff4af41-85e3-4559-8eb8-0d08a2c6ceec")
    assert API_SECRET not in repr(portone.secrets)
    assert API_SECRET not in repr(vars(portone))
    # Without a webhook secret only the API secret and its header are declared.
    bare = PortOne(api_secret=API_SECRET)
    assert bare.secrets.contains(AUTHORIZATION)
    assert not bare.secrets.contains(WEBHOOK_RAW)


def test_our_own_words_survive_the_scrubber(
    portone: PortOne,
    approve_req: ApproveRequest,
    charge_req: ChargeRequest,
    cancel_req: CancelRequest,
) -> None:
    # The Router scrubs every message again; a message must not lose words doing so (the
    # scrubber masks the word after "PortOne" as if it were an Authorization value).
    errors: list[PayfallbackError] = []
    for outcome in (
        portone.parse_approve(approve_req, httpx.Response(200, json=load("payment_failed"))),
        portone.parse_charge(
            charge_req, httpx.Response(502, json=load("error_pg_provider_decline"))
        ),
        portone.parse_charge(charge_req, httpx.Response(401, json=load("error_unauthorized"))),
        portone.parse_charge(charge_req, httpx.Response(409, json=load("error_already_paid"))),
        portone.parse_cancel(cancel_req, httpx.Response(200, json=load("cancel_failed"))),
    ):
        assert isinstance(outcome, Failed)
        errors.append(outcome.error)
    for bad in (
        dataclasses.replace(cancel_req, reason=" "),
        dataclasses.replace(cancel_req, amount=cancel_req.amount.model_copy(update={"amount": 0})),
    ):
        with pytest.raises(InvalidRequest) as caught:
            portone.build_cancel(bad)
        errors.append(caught.value)
    with pytest.raises(InvalidRequest) as caught:
        portone.build_charge(dataclasses.replace(charge_req, idempotency_key="short"))
    errors.append(caught.value)
    router_view = portone.secrets | Secrets(BILLING_KEY)
    for error in errors:
        assert "[redacted]" not in error.message, error.message
        assert router_view.scrub(error.message) == error.message, error.message


# -- what the Router keeps ---------------------------------------------------------------------


def test_the_answer_the_router_keeps_with_the_payment_holds_no_secret(
    portone: PortOne, charge_req: ChargeRequest, tmp_path: Path
) -> None:
    # A billing-key payment answered with every secret (the request's billing key too)
    # echoed into each string field but the PG's transaction id: the kept answer holds none.
    def billing(request: httpx.Request) -> httpx.Response:
        body = echoed(load("billing_key_paid"), loud((*OWN, BILLING_KEY)), {"pgTxId", "paidAt"})
        return httpx.Response(200, json=body)

    client = httpx.Client(transport=httpx.MockTransport(billing))
    router = Router(
        [portone],
        client=client,
        journal=f"sqlite:///{tmp_path / 'journal.db'}",
        sleep=lambda _: None,
    )
    try:
        paid = router.charge(charge_req.order, [charge_req.instrument])
    finally:
        router.close()
        client.close()
    assert paid.provider_answer is not None
    assert (
        paid.provider_answer["payment"]["pgTxId"] == load("billing_key_paid")["payment"]["pgTxId"]
    )
    kept = (paid.model_dump_json(), json.dumps(paid.provider_answer, ensure_ascii=False))
    assert leaks(kept, (*OWN, BILLING_KEY), portone.secrets) == []
