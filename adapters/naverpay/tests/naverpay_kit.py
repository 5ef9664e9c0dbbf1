"""Naver Pay's answers for the shared conformance suite, shaped like the documented examples.

- ``ready`` sends nothing (the JS SDK opens the window), so there is no ready answer.
- The customer's cancel is not an answer to apply: Naver redirects with
  ``resultCode=UserCancel`` and no paymentId, and the adapter declines without calling
  Naver (see ``test_wire``), so :meth:`NaverPayKit.user_cancel_response` is ``None``.
- Naver echoes ``merchantPayKey`` — what the browser passed to ``oPay.open``, our attempt
  id — on apply and in the history; without it the adapter does not record the approval.
  Apply carries only the paymentId, so the kit answers with the attempt id the suite's
  order gets: the journal names attempts ``{order_id}_{n}`` and the suite's order is
  ``ORD-CONF-1`` (:data:`ATTEMPT_ID`). ``test_wire`` covers the other cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import httpx
from naverpay_support import CHAIN_ID, CLIENT_ID, PARTNER_ID, SECRET, payload
from payfallback_naverpay import NaverPay

from payfallback.provider import Flow, Operation, Provider
from payfallback.testing.conformance import ConformanceKit

_PREFIX = f"/{PARTNER_ID}/naverpay/payments/"
#: The conformance suite's first (and only) attempt at its order.
ATTEMPT_ID = "ORD-CONF-1_1"


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _detail(txn_id: str, amount: int) -> dict[str, Any]:
    detail: dict[str, Any] = payload("apply_success")["body"]["detail"]
    detail.update(
        paymentId=txn_id,
        merchantPayKey=ATTEMPT_ID,
        totalPayAmount=amount,
        applyPayAmount=amount,
        primaryPayAmount=amount,
        npointPayAmount=0,
        taxScopeAmount=amount,
        taxExScopeAmount=0,
    )
    return detail


def _history(*rows: dict[str, Any]) -> dict[str, Any]:
    data = payload("history_empty")
    data["body"].update(
        list=list(rows), totalCount=len(rows), responseCount=len(rows), totalPageCount=1
    )
    return data


class NaverPayKit(ConformanceKit):
    flow = Flow.REDIRECT

    def make_provider(self) -> Provider:
        return NaverPay(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            chain_id=CHAIN_ID,
            partner_id=PARTNER_ID,
            sandbox=True,
        )

    def operation_of(self, request: httpx.Request) -> Operation:
        path = request.url.path
        if request.method != "POST" or not path.startswith(_PREFIX):
            raise AssertionError(f"not a Naver Pay call: {request.method} {request.url}")
        api = path.removeprefix(_PREFIX)
        if api == "v2.2/apply/payment":
            return Operation.APPROVE
        if api == "v1/cancel":
            return Operation.CANCEL
        if api.startswith("v2.2/list/history/"):
            return Operation.LOOKUP
        raise AssertionError(f"not an API the adapter uses: {path}")

    def callback_params(self, txn_id: str, amount: int) -> Mapping[str, str]:
        # returnUrl?resultCode=Success&paymentId=…
        return {"resultCode": "Success", "paymentId": txn_id}

    def ready_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        raise AssertionError("Naver Pay's ready is client-side: the adapter sends nothing")

    def paid_response(self, request: httpx.Request, *, txn_id: str, amount: int) -> httpx.Response:
        assert _form(request) == {"paymentId": txn_id}
        body = {"paymentId": txn_id, "detail": _detail(txn_id, amount)}
        return httpx.Response(200, json={"code": "Success", "message": "성공", "body": body})

    def decline_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "code": "NotEnoughAccountBalance",
                "message": "충전 계좌 잔고 부족",
                "body": None,
            },
        )

    def server_error_response(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    def lookup_paid_response(
        self, request: httpx.Request, *, txn_id: str, amount: int
    ) -> httpx.Response:
        return httpx.Response(200, json=_history(_detail(txn_id, amount)))

    def lookup_not_paid_response(self, request: httpx.Request, *, txn_id: str) -> httpx.Response:
        # The approval attempt's final result was FAIL: no money moved.
        row = _detail(txn_id, 0) | {"admissionState": "FAIL"}
        return httpx.Response(200, json=_history(row))

    def cancel_response(
        self, request: httpx.Request, *, txn_id: str, amount: int, remaining: int
    ) -> httpx.Response:
        sent = _form(request)
        assert sent["paymentId"] == txn_id
        assert sent["doCompareRest"] == "1"
        assert int(sent["expectedRestAmount"]) == remaining
        data = payload("cancel_partial")
        data["body"].update(
            paymentId=txn_id,
            primaryPayCancelAmount=amount,
            primaryPayRestAmount=remaining,
            npointCancelAmount=0,
            npointRestAmount=0,
            totalRestAmount=remaining,
            applyRestAmount=remaining,
            taxScopeAmount=amount,
            taxScopeRestAmount=remaining,
        )
        return httpx.Response(200, json=data)

    def bad_credentials_response(self, request: httpx.Request) -> httpx.Response:
        # Naver's API gateway turns a bad key away with 401 before Naver Pay sees it.
        return httpx.Response(401, json=payload("gateway_401"))

    def replay_in_progress_response(self, request: httpx.Request) -> httpx.Response | None:
        # The same key again while the first apply is still running.
        return httpx.Response(
            409,
            json={
                "code": "AlreadyOnGoing",
                "message": "해당 결제번호로 결제가 이미 진행 중",
                "body": None,
            },
        )
