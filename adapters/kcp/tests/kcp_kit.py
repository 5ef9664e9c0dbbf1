"""NHN KCP's answers for the shared conformance suite, shaped like KCP's own answers.

Two kits: the payment window (REDIRECT: client-side ready, the window's return, approval at
``/gw/enc/v1/payment``) and batch keys (SERVER_CHARGE at ``/gw/hub/v1/payment``). Every
answer is the flat ``res_cd``/``res_msg`` object KCP sends, with amounts as digit strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from kcp_support import BATCH_KEY, callback, load, provider
from pydantic import SecretStr

from payfallback.models import Instrument
from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

OPERATIONS = {
    "/gw/enc/v1/payment": Operation.APPROVE,
    "/gw/hub/v1/payment": Operation.CHARGE,
    "/gw/mod/v1/cancel": Operation.CANCEL,
    "/std/inquery": Operation.LOOKUP,
}


def json_response(body: Mapping[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, json=dict(body), headers={"Content-Type": "application/json;charset=UTF-8"}
    )


def sent(request: httpx.Request) -> dict[str, Any]:
    """The JSON body the adapter sent."""
    data: dict[str, Any] = json.loads(request.content)
    return data


def order_no_of(request: httpx.Request) -> str | None:
    """The order number of a batch payment, which KCP's answer echoes as ``order_no``; an
    approval's answer names the window's ``ordr_idxx``, which the request does not carry
    (None: the answer leaves ``order_no`` out)."""
    value = sent(request).get("ordr_idxx")
    return value if isinstance(value, str) else None


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def paid(request: httpx.Request, *, tno: str, amount: int) -> dict[str, Any]:
    name = "approve_paid.json" if request.url.path == "/gw/enc/v1/payment" else "batch_paid.json"
    return _without_none(
        load(name, tno=tno, amount=str(amount), card_mny=str(amount), order_no=order_no_of(request))
    )


def cancelled(request: httpx.Request, *, amount: int, remaining: int) -> dict[str, Any]:
    body = sent(request)
    if body["mod_type"] == "STSC":
        return load("cancel_full.json", tno=body["tno"], amount=str(amount), rem_mny="0")
    return load(
        "cancel_partial.json",
        tno=body["tno"],
        amount=str(int(body["rem_mny"])),
        mod_mny=str(amount),
        card_mod_mny=str(amount),
        rem_mny=str(remaining),
    )


class KcpKit(ConformanceKit):
    """The payment window: ``ready`` is client-side, the window posts back, we approve."""

    flow = Flow.REDIRECT

    def make_provider(self) -> Provider:
        return provider()

    def operation_of(self, request: httpx.Request) -> Operation:
        assert request.method == "POST", f"KCP takes POST only: {request.method} {request.url}"
        assert request.url.host in ("spl.kcp.co.kr", "stg-spl.kcp.co.kr"), request.url
        op = OPERATIONS.get(request.url.path)
        if op is None:
            raise AssertionError(f"not a KCP call: {request.method} {request.url}")
        return op

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        # No ordr_idxx: this hook does not know the Router's attempt id (the adapter
        # checks it only when the return carries it).
        return callback(order_id=None)

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        return json_response(paid(request, tno=txn_id, amount=amount))

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        return json_response(_without_none(load("declined.json", order_no=order_no_of(request))))

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        # KCP documents no 5xx; this is what a failing gateway in front of it sends.
        return httpx.Response(502, text="Bad Gateway")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        return json_response(
            load("lookup_paid.json", tno=txn_id, amount=str(amount), rem_mny=str(amount))
        )

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        # The inquiry knows only approved transactions (by tno): the one that holds no
        # money is a fully cancelled one.
        return json_response(load("lookup_paid.json", tno=txn_id, rem_mny="0"))

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        return json_response(cancelled(request, amount=amount, remaining=remaining))

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        return json_response(load("no_access.json"))


class KcpBatchKit(KcpKit):
    """Batch keys: ``POST /gw/hub/v1/payment`` with no customer present."""

    flow = Flow.SERVER_CHARGE

    def instrument(self) -> Instrument:
        return Instrument(provider="kcp", billing_key=SecretStr(BATCH_KEY))
