"""The adapter for the fake provider's JSON API (see :mod:`payfallback.testing._fake`).

An ordinary sans-IO adapter, written as every real one is: pure ``build_<op>`` and
``parse_<op>``, a code table that maps every code the API answers with to one outcome
class, an unmapped code on a money-moving call as ``OutcomeUnknown``, and a success body
that lacks what we need as ``OutcomeUnknown`` too. Transport errors are not its business
(:func:`payfallback.provider.classify_transport_error` decides those).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr

from payfallback.adapter import Secrets
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
    CURRENCY_EXPONENTS,
    CardKind,
    Method,
    Money,
    Platform,
    Receipt,
    RefundReceipt,
)
from payfallback.provider import (
    MONEY_MOVING,
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    Capabilities,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Operation,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
    classify_http_status,
    parse_retry_after,
)

__all__ = ["CODE_TABLE", "FakeProvider"]

#: Every error code of the fake API and what it means for us. ``None``: the HTTP status
#: decides (:func:`classify_http_status`: a 500 may have acted on a money-moving call).
CODE_TABLE: dict[str, type[PayfallbackError] | None] = {
    "UNAUTHORIZED": ConfigurationError,
    "INVALID_REQUEST": InvalidRequest,
    # lookup turns it into Status(NOT_FOUND); elsewhere nothing was there to act on.
    "NOT_FOUND": InvalidRequest,
    "METHOD_NOT_ALLOWED": InvalidRequest,
    "USER_CANCELLED": Declined,
    "INVALID_TOKEN": InvalidRequest,
    "AMOUNT_MISMATCH": InvalidRequest,
    "CARD_DECLINED": Declined,
    "INSUFFICIENT_FUNDS": Declined,
    # An earlier request for this attempt got there first: it may have paid. Look it up.
    "ALREADY_APPROVED": OutcomeUnknown,
    "DUPLICATE_ORDER_REF": OutcomeUnknown,
    "NOT_APPROVABLE": InvalidRequest,
    "NOT_PAID": InvalidRequest,
    # The cancellable amount moved since we read it, perhaps by an earlier try of this
    # very cancel: only a lookup can say whether our refund happened.
    "REMAINING_MISMATCH": OutcomeUnknown,
    "EXCEEDS_REMAINING": InvalidRequest,
    "NOT_VOIDABLE": InvalidRequest,
    "VOID_WINDOW_EXPIRED": InvalidRequest,
    "IDEMPOTENCY_KEY_REUSED": InvalidRequest,
    # The first request with this key is still being processed (a late commit): it may
    # yet pay. Replaying the same key later answers with its outcome.
    "IDEMPOTENT_REQUEST_PROCESSING": RequestInFlight,
    # Another request for this order_ref or checkout is being committed: it may yet pay.
    "IN_PROGRESS": OutcomeUnknown,
    "MAINTENANCE": ProviderUnavailable,
    "RATE_LIMITED": ProviderUnavailable,
    "INTERNAL_ERROR": None,
}

_LOOKUP_STATES = {
    "ready": TxnState.AWAITING_CUSTOMER,
    "paid": TxnState.PAID,
    "partially_cancelled": TxnState.PAID,
    "cancelled": TxnState.CANCELLED,
    "failed": TxnState.NOT_PAID,
}

_JSON = "application/json"


class FakeProvider:
    """Adapter for a :class:`~payfallback.testing.FakeBank`, registered as ``fake``.

    ``name`` picks the bank: the default ``base_url`` is ``https://{name}.fake.test``,
    which :func:`~payfallback.testing.mock_transport` routes to the bank of that name.
    The switches change what the adapter declares and does, so tests can stand in for
    providers without idempotency keys (``idempotency=False``: no header is sent and
    the Router must look up before a repeat), without lookup by our attempt id, or
    without void.

    ``settle_window`` is the fake's documented promise: a request that may have reached
    the bank is committed, and visible to lookups, within this long after it left. The
    bank keeps it as long as the client's read timeout plus its ``late_commit_delay`` and
    ``lookup_lag`` (2 s and 10 s by default) stay within it, so with the default 30 s any
    read timeout up to 18 s. None declares no settle window ("not found" is never proof).
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        secret: SecretStr | str = "fake-secret",
        base_url: str | None = None,
        methods: Iterable[Method] = tuple(Method),
        idempotency: bool = True,
        lookup_by_order_id: bool = True,
        void_window: timedelta | None = timedelta(hours=1),
        settle_window: timedelta | None = timedelta(seconds=30),
        failed_record_is_final: bool = True,
    ) -> None:
        self.name = name
        self.base_url = (base_url or f"https://{name}.fake.test").rstrip("/")
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        #: The key and the header value built from it, scrubbed from everything by the Router.
        self.secrets = Secrets(self._secret, f"Bearer {self._secret.get_secret_value()}")
        self._idempotency = idempotency
        self.capabilities = Capabilities(
            methods=frozenset(methods),
            flows=frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE}),
            lookup_by_order_id=lookup_by_order_id,
            idempotency_header="Idempotency-Key" if idempotency else None,
            idempotency_retention=timedelta(days=15) if idempotency else None,
            partial_cancel=True,
            void_window=void_window,
            currencies=frozenset(CURRENCY_EXPONENTS),
            # The approval page sends the customer back with ``tid`` in the return URL.
            callback_txn_id_param="tid",
            settle_window=settle_window,
            failed_record_is_final=failed_record_is_final,
        )

    def __repr__(self) -> str:
        return f"FakeProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- ready ---------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request:
        if req.method not in self.capabilities.methods:
            raise InvalidRequest(
                f"{self.name} does not take {req.method.value} payments",
                provider=self.name,
                operation=Operation.READY.value,
                attempt_id=req.attempt_id,
            )
        order = req.order
        body = {
            "order_ref": req.attempt_id,
            "amount": order.amount.amount,
            "currency": order.amount.currency,
            "name": order.name,
            "method": req.method.value,
            "return_url": req.return_urls.success,
            "cancel_url": req.return_urls.cancel,
        }
        return self._post("/v1/checkouts", body, req.idempotency_key)

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        if response is None:
            raise TypeError("FakeProvider.build_ready always sends; parse its response")
        body = self._body(Operation.READY, req.attempt_id, response)
        if isinstance(body, Failed):
            return body
        tid, url = body.get("tid"), body.get("redirect_url")
        if not isinstance(tid, str) or not isinstance(url, str) or body.get("status") != "ready":
            return self._missing(
                Operation.READY, req.attempt_id, response, "tid, redirect_url or status"
            )
        return Redirect(provider_txn_id=tid, redirect_urls={Platform.PC: url, Platform.MOBILE: url})

    # -- approve and charge --------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        tid = req.provider_txn_id or req.callback_params.get("tid")
        token = req.callback_params.get("token")
        if not tid or not token:
            raise InvalidRequest(
                "the return URL carried no token (or tid): the customer did not come back "
                "from the approval page",
                provider=self.name,
                operation=Operation.APPROVE.value,
                attempt_id=req.attempt_id,
            )
        body = {"token": token, "amount": req.order.amount.amount}
        return self._post(f"/v1/checkouts/{tid}/approve", body, req.idempotency_key)

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        return self._paid(Operation.APPROVE, req.attempt_id, response)

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        if req.instrument.provider != self.name:
            raise InvalidRequest(
                f"the instrument belongs to {req.instrument.provider}, not {self.name}",
                provider=self.name,
                operation=Operation.CHARGE.value,
                attempt_id=req.attempt_id,
            )
        amount = req.order.amount
        body = {
            "order_ref": req.attempt_id,
            "billing_key": req.instrument.billing_key.get_secret_value(),
            "amount": amount.amount,
            "currency": amount.currency,
        }
        return self._post("/v1/charges", body, req.idempotency_key)

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        return self._paid(Operation.CHARGE, req.attempt_id, response)

    def _paid(self, op: Operation, attempt_id: str, response: httpx.Response) -> Outcome:
        body = self._body(op, attempt_id, response)
        if isinstance(body, Failed):
            return body
        payment = _payment(body)
        if payment is None or payment[1] != "paid" or body.get("order_ref") != attempt_id:
            return self._missing(op, attempt_id, response, "a paid payment for this attempt")
        tid, status, money, _cancelled = payment
        return Approved(
            provider_txn_id=tid,
            amount=money,
            approved_at=_when(body.get("approved_at")),
            provider_status=status,
            receipt=_receipt(body),
            answer=body,
        )

    # -- lookup --------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        if req.provider_txn_id:
            return self._get(f"/v1/payments/{req.provider_txn_id}", None)
        if not self.capabilities.lookup_by_order_id:
            raise InvalidRequest(
                f"{self.name} looks payments up by its own id only, and this attempt has none",
                provider=self.name,
                operation=Operation.LOOKUP.value,
                attempt_id=req.attempt_id,
            )
        return self._get("/v1/payments", {"order_ref": req.attempt_id})

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        body = self._body(Operation.LOOKUP, req.attempt_id, response)
        if isinstance(body, Failed):
            if body.error.provider_code == "NOT_FOUND":
                return Status(state=TxnState.NOT_FOUND, provider_txn_id=req.provider_txn_id)
            return body
        payment = _payment(body)
        if payment is None:
            return self._missing(
                Operation.LOOKUP, req.attempt_id, response, "tid, status and amount"
            )
        tid, status, money, cancelled = payment
        state = _LOOKUP_STATES.get(status)
        if state is None:
            # A state we do not know says nothing about whether money moved.
            return Failed(
                OutcomeUnknown(
                    f"lookup answered the unmapped status {status!r}",
                    **self._where(Operation.LOOKUP, req.attempt_id, response, status),
                )
            )
        paid = state is TxnState.PAID
        return Status(
            state=state,
            provider_txn_id=tid,
            amount=money,
            cancelled=cancelled,
            provider_status=status,
            receipt=_receipt(body) if paid else None,
            answer=body if paid else None,
        )

    # -- cancel and void -----------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        amount = req.amount
        problem = None
        if amount.currency != req.order.amount.currency:
            problem = f"refund in {amount.currency} of an order in {req.order.amount.currency}"
        elif amount.amount <= 0:
            problem = "a refund must be greater than zero"
        elif amount.amount > req.expected_remaining:
            problem = (
                f"refund of {amount.amount} exceeds the {req.expected_remaining} still refundable"
            )
        if problem:
            raise InvalidRequest(
                problem,
                provider=self.name,
                operation=Operation.CANCEL.value,
                attempt_id=req.attempt_id,
            )
        body = {
            "amount": amount.amount,
            "expected_remaining": req.expected_remaining,
            "reason": req.reason,
        }
        path = f"/v1/payments/{req.provider_txn_id}/cancel"
        return self._post(path, body, req.idempotency_key)

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        body = self._body(Operation.CANCEL, req.attempt_id, response)
        if isinstance(body, Failed):
            return body
        expected = req.expected_remaining - req.amount.amount
        payment = _payment(body)
        if payment is not None:
            tid, status, money, cancelled = payment
            if (
                tid == req.provider_txn_id
                and status in ("cancelled", "partially_cancelled")
                and money.amount - cancelled == expected
            ):
                return Cancelled(
                    provider_txn_id=tid,
                    amount=req.amount,
                    remaining=expected,
                    receipt=RefundReceipt(
                        cancel_id=f"{tid}-cancel-{cancelled}", remaining=expected
                    ),
                    answer=body,
                )
        what = f"a cancelled payment with {expected} left"
        return self._missing(Operation.CANCEL, req.attempt_id, response, what)

    def build_void(self, req: VoidRequest) -> httpx.Request:
        if self.capabilities.void_window is None:
            raise NotImplementedError(f"build_void: {self.name} is configured without void")
        body = {"amount": req.amount.amount}
        if req.provider_txn_id:
            path = f"/v1/payments/{req.provider_txn_id}/void"
        else:
            path = f"/v1/orders/{req.attempt_id}/void"
        return self._post(path, body, req.idempotency_key)

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        body = self._body(Operation.VOID, req.attempt_id, response)
        if isinstance(body, Failed):
            return body
        payment = _payment(body)
        if payment is None or payment[1] not in ("cancelled", "failed"):
            return self._missing(
                Operation.VOID, req.attempt_id, response, "a cancelled or failed payment"
            )
        tid, status, money, cancelled = payment
        # A checkout never approved is closed with nothing to give back: amount zero.
        given_back = cancelled if status == "cancelled" else 0
        return Cancelled(
            provider_txn_id=tid,
            amount=Money(amount=given_back, currency=money.currency),
            remaining=0,
        )

    # -- plumbing ------------------------------------------------------------------------

    def _headers(self) -> list[tuple[str, str]]:
        return [
            ("authorization", f"Bearer {self._secret.get_secret_value()}"),
            ("accept", _JSON),
        ]

    def _post(self, path: str, body: dict[str, Any], key: str) -> httpx.Request:
        headers = self._headers()
        headers.append(("content-type", _JSON))
        if self._idempotency:
            headers.append(("idempotency-key", key))
        content = json.dumps(body, separators=(",", ":")).encode()
        return httpx.Request("POST", _url(self.base_url, path), headers=headers, content=content)

    def _get(self, path: str, params: dict[str, str] | None) -> httpx.Request:
        url = _url(self.base_url, path)
        return httpx.Request("GET", url, headers=self._headers(), params=params)

    def _where(
        self, op: Operation, attempt_id: str, response: httpx.Response, code: str | None
    ) -> dict[str, Any]:
        return {
            "provider": self.name,
            "operation": op.value,
            "attempt_id": attempt_id,
            "provider_code": code,
            "provider_request_id": response.headers.get("x-request-id"),
        }

    def _missing(
        self, op: Operation, attempt_id: str, response: httpx.Response, what: str
    ) -> Failed:
        # Missing fields are not an answer: a money-moving call may still have acted.
        cls = OutcomeUnknown if op in MONEY_MOVING else ProviderUnavailable
        where = self._where(op, attempt_id, response, None)
        return Failed(cls(f"the answer lacks {what}", **where))

    def _body(
        self, op: Operation, attempt_id: str, response: httpx.Response
    ) -> dict[str, Any] | Failed:
        """The JSON object of a 2xx answer, or the failure any other answer means."""
        status = response.status_code
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if 200 <= status < 300:
            if isinstance(body, dict):
                return body
            return self._missing(op, attempt_id, response, "a JSON object")
        code = body.get("code") if isinstance(body, dict) else None
        code = code if isinstance(code, str) else None
        where = self._where(op, attempt_id, response, code)
        cls = CODE_TABLE.get(code) if code is not None else None
        if cls is None:
            if op in MONEY_MOVING and code not in CODE_TABLE:
                return Failed(OutcomeUnknown(f"HTTP {status} with an unmapped code", **where))
            by_status = classify_http_status(
                response,
                provider=self.name,
                operation=op,
                attempt_id=attempt_id,
                provider_code=code,
            )
            return Failed(by_status)
        message = f"HTTP {status} {code}"
        if cls in (ProviderUnavailable, OutcomeUnknown, RequestInFlight):
            # For an unknown outcome, when to ask again (a request still being processed).
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return Failed(cls(message, retry_after=retry_after, **where))
        if cls is ConfigurationError:
            message += "; check the fake provider's secret"
        if cls is Declined:
            said = body.get("message") if isinstance(body, dict) else None
            user_message = said if isinstance(said, str) and said else None
            return Failed(Declined(message, user_message=user_message, **where))
        return Failed(cls(message, **where))


def _payment(body: dict[str, Any]) -> tuple[str, str, Money, int] | None:
    """``(tid, status, amount, cancelled)`` of a payment body, None if any is missing."""
    tid, status = body.get("tid"), body.get("status")
    amount, currency = body.get("amount"), body.get("currency")
    cancelled = body.get("cancelled_amount", 0)
    if not isinstance(tid, str) or not tid or not isinstance(status, str):
        return None
    if type(amount) is not int or type(cancelled) is not int or not isinstance(currency, str):
        return None
    try:
        money = Money(amount=amount, currency=currency)
    except InvalidRequest:
        return None
    return tid, status, money, cancelled


@functools.lru_cache(maxsize=512)
def _url(base: str, path: str) -> httpx.URL:
    """The endpoint's URL, parsed once per endpoint (URLs are immutable)."""
    return httpx.URL(base + path)


def _receipt(body: Mapping[str, Any]) -> Receipt:
    """The fake bank's receipt fields, as a card PG's adapter maps them."""
    card = body.get("card")
    card = card if isinstance(card, Mapping) else {}
    months = card.get("installment")
    kind = {"credit": CardKind.CREDIT, "check": CardKind.CHECK}.get(str(card.get("type")))
    approval = body.get("approval_no")
    url = body.get("receipt_url")
    number = card.get("number")
    return Receipt(
        approval_number=approval if isinstance(approval, str) else None,
        card_number=number if isinstance(number, str) else None,
        installment_months=months if type(months) is int and months >= 0 else None,
        card_kind=kind,
        receipt_url=url if isinstance(url, str) else None,
    )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
