"""KG Inicis's answers for the shared conformance suite, shaped like Inicis's own.

Two kits: the payment window (REDIRECT: client-side ready, the authentication result
posted to returnUrl, approval at authUrl) and INIAPI billing (SERVER_CHARGE). Every
approval answer carries an ``authSignature`` computed from the timestamp the request
carried, so the adapter's verification runs on every scenario.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from inicis_support import BILL_KEY, CLIENT_IP, INIAPI_KEY, MID, SIGN_KEY, form_of, load
from payfallback_inicis import Inicis
from payfallback_inicis._wire import auth_signature
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

#: The suite's order (``ORD-CONF-1``) and its first attempt: the approval answer names the
#: oid it approved, which the approval request itself does not carry.
SUITE_ATTEMPT = "ORD-CONF-1_1"
AUTH_TOKEN = "conformance+authToken/0123456789abcdefABCDEF=="


def _json(status: int, body: Mapping[str, Any]) -> httpx.Response:
    return httpx.Response(
        status, json=dict(body), headers={"Content-Type": "application/json;charset=UTF-8"}
    )


def _fields(request: httpx.Request) -> dict[str, str]:
    """An INIAPI request's fields: the v1 form, or the v2 envelope with its ``data``."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body: dict[str, Any] = json.loads(request.read())
        return {**{k: v for k, v in body.items() if k != "data"}, **body["data"]}
    return form_of(request)


def _forbidden() -> httpx.Response:
    # Inicis documents no credential-error code; an HTTP 403 refusal in front of the API
    # (a server address not registered with Inicis) is what the kit's HTTP rule reads as a
    # set-up error.
    return httpx.Response(403, text="<html><body>403 Forbidden</body></html>")


class _Common(ConformanceKit):
    iniapi_version: Literal[1, 2] = 1

    def make_provider(self) -> Provider:
        return Inicis(
            iniapi_version=self.iniapi_version,
            mid=MID,
            iniapi_key=SecretStr(INIAPI_KEY),
            sign_key=SecretStr(SIGN_KEY),
            client_ip=CLIENT_IP,
            site_url="https://shop.example",
            buyer_name="홍길동",
            buyer_email="buyer@shop.example",
            buyer_tel="01012345678",
        )

    def operation_of(self, request: httpx.Request) -> Operation:
        path = request.url.path
        if path == "/api/payAuth":
            return Operation.APPROVE
        if path == "/api/netCancel":
            return Operation.VOID
        if path in ("/api/v1/billing", "/v2/pg/billing"):
            return Operation.CHARGE
        if path == "/api/v1/extra":
            return Operation.LOOKUP
        if path in ("/api/v1/refund", "/v2/pg/refund", "/v2/pg/partialRefund"):
            return Operation.CANCEL
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        form = form_of(request)
        body = load("inquiry_paid.json")
        body.update(tid=txn_id, oid=form["oid"], price=str(amount))
        return _json(200, body)

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        return _json(200, load("inquiry_not_found.json"))

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        fields = _fields(request)
        if fields["type"] in ("Refund", "refund"):
            return _json(200, load("refund_full.json"))
        body = load("refund_partial.json")
        body.update(prtcTid=fields["tid"], prtcPrice=str(amount), prtcRemains=str(remaining))
        return _json(200, body)

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return _forbidden()


class InicisWindowKit(_Common):
    flow = Flow.REDIRECT

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        params = {k: str(v) for k, v in load("auth_result.json").items()}
        params.update(authToken=AUTH_TOKEN, orderNumber=SUITE_ATTEMPT)
        return params

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        form = form_of(request)
        body = load("approve_paid.json")
        body.update(tid=txn_id, MOID=SUITE_ATTEMPT, TotPrice=str(amount))
        body["authSignature"] = auth_signature(
            mid=form["mid"], tstamp=form["timestamp"], moid=SUITE_ATTEMPT, tot_price=str(amount)
        )
        return _json(200, body)

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        body = load("approve_failed.json")
        body["MOID"] = SUITE_ATTEMPT
        return _json(200, body)

    def void_response(self, request: httpx.Request) -> httpx.Response | None:
        """Inicis acknowledging the net cancel of the approval whose answer was lost."""
        body = load("net_cancel.json")
        body["MOID"] = SUITE_ATTEMPT
        return _json(200, body)


class InicisBillingKit(_Common):
    flow = Flow.SERVER_CHARGE
    # Inicis publishes no billing failure codes, and a refused billing answer has been seen
    # with the card charged: every refusal is inquired about, never taken as a decline.
    documented_declines = False

    def instrument(self) -> Instrument:
        return Instrument(provider="inicis", billing_key=SecretStr(BILL_KEY))

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        body = load("billing_paid.json")
        body.update(tid=txn_id, price=str(amount))
        return _json(200, body)

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        # Inicis documents no refusal code for billing, and a refusal has been seen with
        # the card charged: this answer is an unknown outcome (see test_conformance).
        return _json(200, load("billing_refused.json"))


class InicisBillingV2Kit(InicisBillingKit):
    """Billing and refunds on INIAPI v2 (JSON); the inquiry stays on v1."""

    iniapi_version: Literal[1, 2] = 2
