"""The PortOne V2 adapter: capabilities plus pure ``build_<op>`` / ``parse_<op>``.

How our operations map onto PortOne:

=========  ======================================================  ==========================
ours       PortOne                                                 notes
=========  ======================================================  ==========================
ready      nothing: the browser SDK (``PortOne.requestPayment``)    ``build_ready`` → None;
           creates and pays the payment client-side                ``client_params`` feed it
approve    ``GET /payments/{paymentId}``                           verification, see below
charge     ``POST /payments/{paymentId}/billing-key``              Idempotency-Key
lookup     ``GET /payments/{paymentId}``                           by our attempt id
cancel     ``POST /payments/{paymentId}/cancel``                   Idempotency-Key, guarded
                                                                   by the cancellable balance
void       not offered                                             NotImplementedError
=========  ======================================================  ==========================

``paymentId`` is always our attempt id: PortOne keys payments by the merchant's id, lets
several attempts run on one id but lets only one of them succeed (``ALREADY_PAID``), and
answers status inquiries by it. That is why ``lookup`` works before we know anything of
PortOne's own ids, and why the provider transaction id we report is the paymentId.

**approve is a verification.** With PortOne's browser SDK the customer's payment is
requested and approved client-side; the merchant server then fetches the payment and
checks it. No money moves in that GET, but its answer decides the attempt, so it is
classified as approve:

* ``PAID`` → :class:`Approved` with PortOne's ``amount.total`` (the Router compares it
  with the order; a mismatch is a tampered checkout);
* ``FAILED`` → ``Declined`` (or what the PG's ``failure.pgCode`` says: the payment is
  terminal, so never ``OutcomeUnknown``);
* ``READY`` → ``Declined`` when the redirect carried an error ``code`` (the customer
  closed or failed the payment window), else ``OutcomeUnknown`` (the payment may still
  complete; a lookup decides);
* ``PENDING``/``PAY_PENDING``/``VIRTUAL_ACCOUNT_ISSUED`` → ``OutcomeUnknown``: money may
  still move (a PG settling, a deposit to come), so the attempt waits for lookup;
* ``PARTIAL_CANCELLED``/``CANCELLED`` → ``OutcomeUnknown``: it was paid, and part or all
  of it given back since; the lookup's ``Status`` carries the amounts for the Router;
* 404 ``PAYMENT_NOT_FOUND`` → ``Declined``: nothing was ever paid under our id.

Errors are ``{type, message}`` (``PG_PROVIDER`` adds ``pgCode``/``pgMessage``); see
:mod:`payfallback_portone._wire` for the tables. An error type the tables do not know is
``OutcomeUnknown`` on a money-moving call (except 401/403/429/503, which the HTTP status
explains), and is classified by HTTP status on read-only ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.events import scrub
from payfallback.models import Method, Money, Order
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
from payfallback_portone._webhook import verify_webhook
from payfallback_portone._wire import (
    ERROR_TABLE,
    LOOKUP_STATES,
    BillingKeyPaymentInput,
    CancellationStatus,
    CancelPaymentBody,
    CancelPaymentResponse,
    CardCredential,
    CustomerInput,
    ErrorBody,
    InstantPaymentInput,
    InstantPaymentMethodInput,
    InstantPaymentMethodInputCard,
    Payment,
    PaymentAmountInput,
    PaymentStatus,
    PayResponse,
    Rule,
    classify_pg_code,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "IDEMPOTENCY_KEY_PATTERN",
    "InstantChargeRequest",
    "KeyInCard",
    "PortOne",
]

NAME: Final = "portone"
DEFAULT_BASE_URL: Final = "https://api.portone.io"

#: The overview page: "16~256 characters of letters, digits, - and _".
IDEMPOTENCY_KEY_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{16,256}$")

# Browser SDK ``payMethod`` (and ``easyPay.easyPayProvider``) for each of our methods.
_PAY_METHODS: Mapping[Method, tuple[str, str | None]] = {
    Method.CARD: ("CARD", None),
    Method.KAKAOPAY: ("EASY_PAY", "EASY_PAY_PROVIDER_KAKAOPAY"),
    Method.NAVERPAY: ("EASY_PAY", "EASY_PAY_PROVIDER_NAVERPAY"),
    Method.TOSSPAY: ("EASY_PAY", "EASY_PAY_PROVIDER_TOSSPAY"),
    Method.PAYCO: ("EASY_PAY", "EASY_PAY_PROVIDER_PAYCO"),
    Method.SAMSUNGPAY: ("EASY_PAY", "EASY_PAY_PROVIDER_SAMSUNGPAY"),
    Method.BANK_TRANSFER: ("TRANSFER", None),
    Method.VIRTUAL_ACCOUNT: ("VIRTUAL_ACCOUNT", None),
    Method.MOBILE: ("MOBILE", None),
}

_REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-trace-id", "x-trace-id")

# What a PG code may say about a FAILED payment besides "declined": nothing moved either
# way, but these name a provider or integration fault rather than a customer's "no".
_REFINES_FAILED: frozenset[type[PayfallbackError]] = frozenset(
    {ProviderUnavailable, ConfigurationError, InvalidRequest}
)
_MESSAGE_LIMIT = 200
# PortOne billing keys are "billing-key-<uuid>"; masked in any provider text by shape, in
# case an answer echoes one we did not send in that request.
_BILLING_KEY_SHAPE = re.compile(r"billing-key-[A-Za-z0-9-]+")
_UNSAFE_CODE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")

_M = TypeVar("_M", bound=BaseModel)


class KeyInCard(BaseModel):
    """Card details for a key-in (``instant``) payment. Every sensitive field is secret."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    number: SecretStr
    expiry_year: str
    expiry_month: str
    birth_or_business_registration_number: SecretStr | None = None
    password_two_digits: SecretStr | None = None
    installment_month: int | None = None

    def __repr__(self) -> str:
        return "KeyInCard(number=SecretStr('**********'))"


@dataclass(frozen=True, slots=True)
class InstantChargeRequest:
    """A key-in card payment: like :class:`~payfallback.provider.ChargeRequest`, with the
    card itself instead of a stored instrument (needs a key-in contract with the PG)."""

    attempt_id: str
    order: Order
    card: KeyInCard
    idempotency_key: str


def _request_id(response: httpx.Response) -> str | None:
    # PortOne documents no request-id header; take a conventional one if it is there.
    for header in _REQUEST_ID_HEADERS:
        if value := response.headers.get(header):
            return str(value)
    return None


def _text(value: str | None, hide: tuple[str, ...] = ()) -> str | None:
    """Provider text fit for a message: secrets we sent removed, then scrubbed, short."""
    if not value:
        return None
    for secret in hide:
        if secret:
            value = value.replace(secret, "[redacted]")
    cleaned = scrub(_BILLING_KEY_SHAPE.sub("[redacted]", " ".join(value.split())))
    return cleaned[:_MESSAGE_LIMIT]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _read(model: type[_M], response: httpx.Response) -> _M | None:
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError):
        # ValueError covers undecodable JSON; ValidationError a body of another shape.
        return None


class PortOne:
    """PortOne V2 (``https://api.portone.io``), one store, one V2 API secret.

    Settings (keyword-only, as :func:`payfallback.load_provider` passes them):

    * ``api_secret`` — the V2 API secret (console, 결제연동 > 연동 정보 > V2 API). Sent as
      ``Authorization: PortOne <secret>``.
    * ``store_id`` — the store (``store-…``). Optional for the REST calls (PortOne uses
      the secret's store) but required by the browser SDK, hence by ``ready``.
    * ``channel_key`` — the channel (PG contract) payments go through; required by
      ``ready`` and key-in payments. Billing-key payments send it too, to pick the channel
      of a key issued on several; leave it unset when the key alone should decide (a
      channel-group "super" billing key). ``channel_keys`` overrides it per method
      (``{"kakaopay": "channel-key-…"}``), since each wallet or PG is a channel of its own.
    * ``webhook_secret`` — the ``whsec_…`` secret for :meth:`verify_webhook`.
    * ``pg_provider`` — the channel's PortOne ``PgProvider`` (``"TOSSPAYMENTS"``,
      ``"NICE_V2"`` …). It picks the PG's own code table for ``PG_PROVIDER`` errors, whose
      body does not name the PG. Leave it unset for channel groups.
    * ``base_url`` — defaults to ``https://api.portone.io`` (there is no sandbox host:
      test channels decide test mode).
    """

    name: str = NAME

    def __init__(
        self,
        *,
        api_secret: SecretStr | str,
        store_id: str | None = None,
        channel_key: str | None = None,
        channel_keys: Mapping[Method | str, str] | None = None,
        webhook_secret: SecretStr | str | None = None,
        pg_provider: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        secret = api_secret if isinstance(api_secret, SecretStr) else SecretStr(api_secret)
        if not secret.get_secret_value().strip():
            raise ConfigurationError(
                "PortOne api_secret is empty; pass the V2 API secret from the console "
                "(결제연동 > 연동 정보)",
                provider=NAME,
            )
        self._api_secret = secret
        self._webhook_secret = (
            None
            if webhook_secret is None
            else webhook_secret
            if isinstance(webhook_secret, SecretStr)
            else SecretStr(webhook_secret)
        )
        self.store_id = store_id or None
        self.channel_key = channel_key or None
        self.channel_keys: dict[Method, str] = {}
        for method, key in (channel_keys or {}).items():
            try:
                self.channel_keys[Method(method)] = key
            except ValueError:
                known = ", ".join(m.value for m in Method)
                raise ConfigurationError(
                    f"channel_keys has an unknown method {method!r}; use one of {known}",
                    provider=NAME,
                ) from None
        self.pg_provider = pg_provider.upper() if pg_provider else None
        self.base_url = base_url.rstrip("/")
        self.capabilities = Capabilities(
            methods=frozenset(_PAY_METHODS),
            flows=frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE}),
            lookup_by_order_id=True,
            idempotency_header="Idempotency-Key",
            idempotency_retention=timedelta(hours=3),
            idempotency_key_max_length=256,
            partial_cancel=True,
            void_window=None,
            currencies=frozenset({"KRW"}),
            # "set a read timeout of at least 60 s" (REST overview, 요청 타임아웃 정책).
            read_timeout=60.0,
        )

    def __repr__(self) -> str:
        return f"PortOne(store_id={self.store_id!r}, base_url={self.base_url!r})"

    # -- ready (client-side) --------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """Nothing to send: the browser SDK creates the payment. Checks what it needs."""
        self._checkout_params(req)
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """What the page passes to ``PortOne.requestPayment``, as ``client_params``.

        Keys are the SDK's: ``storeId``, ``channelKey``, ``paymentId`` (= the attempt id),
        ``orderName``, ``totalAmount``, ``currency``, ``payMethod``, ``redirectUrl`` and,
        when present, ``taxFreeAmount``, ``customerId`` (→ ``customer.customerId``) and
        ``easyPayProvider`` (→ ``easyPay.easyPayProvider``). ``totalAmount`` is a string
        here; pass it to the SDK as a number.
        """
        if response is not None:
            return self._failed(
                InvalidRequest,
                "PortOne checkouts start client-side; ready sends no request",
                Operation.READY,
                req.attempt_id,
            )
        try:
            params = self._checkout_params(req)
        except PayfallbackError as exc:
            return Failed(exc)
        return Redirect(provider_txn_id=req.attempt_id, redirect_urls={}, client_params=params)

    def _checkout_params(self, req: ReadyRequest) -> dict[str, str]:
        self._check_method(req.method, Operation.READY, req.attempt_id)
        self._check_currency(req.order, Operation.READY, req.attempt_id)
        channel_key = self._channel_for(req.method)
        if self.store_id is None or channel_key is None:
            raise ConfigurationError(
                "PortOne checkout needs store_id and a channel key (channel_key, or "
                f"channel_keys[{req.method.value!r}]); find both in the console under 결제연동",
                provider=NAME,
                operation=Operation.READY.value,
                attempt_id=req.attempt_id,
            )
        pay_method, easy_pay_provider = _PAY_METHODS[req.method]
        order = req.order
        params = {
            "storeId": self.store_id,
            "channelKey": channel_key,
            "paymentId": req.attempt_id,
            "orderName": order.name,
            "totalAmount": str(order.amount.amount),
            "currency": f"CURRENCY_{order.amount.currency}",
            "payMethod": pay_method,
            "redirectUrl": req.return_urls.success,
        }
        if order.tax_free_amount:
            params["taxFreeAmount"] = str(order.tax_free_amount)
        if order.customer_ref:
            params["customerId"] = order.customer_ref
        if easy_pay_provider:
            params["easyPayProvider"] = easy_pay_provider
        return params

    # -- approve (server-side verification) -----------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        return self._get_payment(req.provider_txn_id or req.attempt_id)

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        op = Operation.APPROVE
        payment_id = req.provider_txn_id or req.attempt_id
        if not response.is_success:
            return self._error(op, "approve", req.attempt_id, response, self._hide())
        payment = _read(Payment, response)
        if payment is None:
            return self._failed(
                OutcomeUnknown, "unreadable payment in the answer", op, req.attempt_id, response
            )
        if payment.id is not None and payment.id != payment_id:
            return self._failed(
                OutcomeUnknown, "the answer is about another payment", op, req.attempt_id, response
            )
        status = PaymentStatus.parse(payment.status)
        code = payment.status
        if status is PaymentStatus.PAID:
            money = self._money(payment, req.order)
            if money is None:
                return self._failed(
                    OutcomeUnknown,
                    "PAID without a readable amount; look the payment up",
                    op,
                    req.attempt_id,
                    response,
                    code=code,
                )
            return Approved(
                provider_txn_id=payment_id,
                amount=money,
                approved_at=_parse_time(payment.paid_at),
                provider_status=payment.status,
            )
        if status is PaymentStatus.FAILED:
            return self._failed_payment(payment, op, req.attempt_id, response)
        if status is PaymentStatus.READY and req.callback_params.get("code"):
            # The browser SDK reported an error (window closed, PG refused) and PortOne
            # confirms nothing was paid.
            # The query string comes from the browser: keep only a code-shaped prefix.
            sdk_code = _UNSAFE_CODE_CHARS.sub("", req.callback_params["code"])[:64]
            detail = _text(req.callback_params.get("message"), self._hide())
            return self._failed(
                Declined,
                "the customer did not complete the payment" + (f": {detail}" if detail else ""),
                op,
                req.attempt_id,
                response,
                code=f"READY:{sdk_code}",
            )
        if status is None:
            why = f"unrecognised payment status {payment.status!r}"
        elif status is PaymentStatus.READY:
            why = "payment is READY: the customer may still complete it"
        elif status in (PaymentStatus.PARTIAL_CANCELLED, PaymentStatus.CANCELLED):
            why = f"payment was paid and is now {status.value}"
        else:
            why = f"payment is {status.value}: money may still move"
        return self._failed(
            OutcomeUnknown, f"{why}; look it up", op, req.attempt_id, response, code=code
        )

    # -- charge (billing key) -------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        op = Operation.CHARGE
        instrument = req.instrument
        if instrument.provider != NAME:
            raise InvalidRequest(
                f"the instrument belongs to {instrument.provider!r}, not {NAME!r}; "
                "a PortOne charge needs a PortOne billing key",
                provider=NAME,
                operation=op.value,
                attempt_id=req.attempt_id,
            )
        self._check_method(instrument.method, op, req.attempt_id)
        self._check_currency(req.order, op, req.attempt_id)
        customer_id = instrument.customer_key or req.order.customer_ref
        body = BillingKeyPaymentInput(
            store_id=self.store_id,
            billing_key=instrument.billing_key,
            channel_key=self._channel_for(instrument.method),
            order_name=req.order.name,
            customer=CustomerInput(id=customer_id) if customer_id else None,
            amount=self._amount(req.order),
            currency=req.order.amount.currency,
        )
        return self._post(
            f"/payments/{_segment(req.attempt_id)}/billing-key",
            body.to_json(),
            idempotency_key=req.idempotency_key,
            operation=op,
            attempt_id=req.attempt_id,
        )

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        hide = self._hide(req.instrument.billing_key)
        return self._parse_pay("charge", req.attempt_id, req.order, response, hide)

    # -- instant (key-in card): not one of the Router's operations -------------------------

    def build_instant_charge(self, req: InstantChargeRequest) -> httpx.Request:
        """``POST /payments/{paymentId}/instant`` with a key-in card (channel key required)."""
        op = Operation.CHARGE
        self._check_currency(req.order, op, req.attempt_id)
        channel_key = self._channel_for(Method.CARD)
        if channel_key is None:
            raise ConfigurationError(
                "a PortOne key-in payment needs channel_key (or channel_keys['card'])",
                provider=NAME,
                operation=op.value,
                attempt_id=req.attempt_id,
            )
        card = req.card
        body = InstantPaymentInput(
            store_id=self.store_id,
            channel_key=channel_key,
            method=InstantPaymentMethodInput(
                card=InstantPaymentMethodInputCard(
                    credential=CardCredential(
                        number=card.number,
                        expiry_year=card.expiry_year,
                        expiry_month=card.expiry_month,
                        birth_or_business_registration_number=(
                            card.birth_or_business_registration_number
                        ),
                        password_two_digits=card.password_two_digits,
                    ),
                    installment_month=card.installment_month,
                )
            ),
            order_name=req.order.name,
            customer=CustomerInput(id=req.order.customer_ref) if req.order.customer_ref else None,
            amount=self._amount(req.order),
            currency=req.order.amount.currency,
        )
        return self._post(
            f"/payments/{_segment(req.attempt_id)}/instant",
            body.to_json(),
            idempotency_key=req.idempotency_key,
            operation=op,
            attempt_id=req.attempt_id,
        )

    def parse_instant_charge(self, req: InstantChargeRequest, response: httpx.Response) -> Outcome:
        card = req.card
        hide = self._hide(
            card.number, card.birth_or_business_registration_number, card.password_two_digits
        )
        return self._parse_pay("instant", req.attempt_id, req.order, response, hide)

    def _parse_pay(
        self,
        table: str,
        attempt_id: str,
        order: Order,
        response: httpx.Response,
        hide: tuple[str, ...],
    ) -> Outcome:
        op = Operation.CHARGE
        if not response.is_success:
            return self._error(op, table, attempt_id, response, hide)
        answer = _read(PayResponse, response)
        if answer is None or answer.payment is None or not answer.payment.pg_tx_id:
            return self._failed(
                OutcomeUnknown,
                "success answer without payment.pgTxId; look the payment up",
                op,
                attempt_id,
                response,
            )
        # The documented success body is {payment: {pgTxId, paidAt}}: no amount. A 200 is
        # PortOne saying this paymentId is PAID for the request it answers, and with an
        # Idempotency-Key a replay can only ever answer that same request; so the amount
        # approved is the amount we asked for (lookup reports PortOne's own figure).
        return Approved(
            provider_txn_id=attempt_id,
            amount=order.amount,
            approved_at=_parse_time(answer.payment.paid_at),
            provider_status=PaymentStatus.PAID.value,
        )

    # -- lookup ---------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        return self._get_payment(req.provider_txn_id or req.attempt_id)

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        op = Operation.LOOKUP
        payment_id = req.provider_txn_id or req.attempt_id
        if not response.is_success:
            return self._error(op, "lookup", req.attempt_id, response, self._hide())
        payment = _read(Payment, response)
        if payment is None:
            return self._failed(
                ProviderUnavailable,
                "unreadable payment in the answer",
                op,
                req.attempt_id,
                response,
            )
        status = PaymentStatus.parse(payment.status)
        if status is None:
            # Neither proof of payment nor proof of none: keep asking, never conclude.
            return Status(
                state=TxnState.IN_PROGRESS,
                provider_txn_id=payment_id,
                provider_status=payment.status,
            )
        state = LOOKUP_STATES[status]
        if status is PaymentStatus.READY and payment.billing_key is not None:
            # A billing-key payment is READY while PortOne is calling the PG.
            state = TxnState.IN_PROGRESS
        money = self._money(payment, req.order)
        if money is None and state in (TxnState.PAID, TxnState.CANCELLED):
            return self._failed(
                OutcomeUnknown,
                f"{payment.status} without a readable amount",
                op,
                req.attempt_id,
                response,
                code=payment.status,
            )
        cancelled = payment.amount.cancelled if payment.amount else None
        return Status(
            state=state,
            provider_txn_id=payment_id,
            amount=money,
            cancelled=cancelled or 0,
            provider_status=payment.status,
        )

    # -- cancel ---------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        op = Operation.CANCEL
        where: dict[str, Any] = {
            "provider": NAME,
            "operation": op.value,
            "attempt_id": req.attempt_id,
        }
        if req.amount.currency != req.order.amount.currency:
            raise InvalidRequest(
                f"cancel is in {req.amount.currency} but the payment is in "
                f"{req.order.amount.currency}",
                **where,
            )
        if req.amount.amount <= 0:
            raise InvalidRequest("cancel amount must be greater than zero", **where)
        if req.amount.amount > req.expected_remaining:
            raise InvalidRequest(
                f"cancel of {req.amount.amount} exceeds the cancellable balance "
                f"{req.expected_remaining}",
                **where,
            )
        if not req.reason.strip():
            raise InvalidRequest("PortOne requires a cancel reason; pass reason=...", **where)
        # The tax-free share of a partial cancel is the merchant's call; of a full cancel
        # it is the order's.
        full = req.amount.amount == req.expected_remaining == req.order.amount.amount
        tax_free = req.order.tax_free_amount if full else 0
        body = CancelPaymentBody(
            store_id=self.store_id,
            amount=req.amount.amount,
            tax_free_amount=tax_free or None,
            reason=req.reason,
            current_cancellable_amount=req.expected_remaining,
        )
        return self._post(
            f"/payments/{_segment(req.provider_txn_id)}/cancel",
            body.to_json(),
            idempotency_key=req.idempotency_key,
            operation=op,
            attempt_id=req.attempt_id,
        )

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        op = Operation.CANCEL
        if not response.is_success:
            return self._error(op, "cancel", req.attempt_id, response, self._hide())
        answer = _read(CancelPaymentResponse, response)
        cancellation = answer.cancellation if answer else None
        if cancellation is None:
            return self._failed(
                OutcomeUnknown,
                "success answer without a cancellation",
                op,
                req.attempt_id,
                response,
            )
        status = CancellationStatus.parse(cancellation.status)
        if status is CancellationStatus.FAILED:
            return self._failed(
                Declined,
                "PortOne reports the cancellation FAILED at the PG; nothing was cancelled",
                op,
                req.attempt_id,
                response,
                code="CANCELLATION_FAILED",
            )
        if status is None or cancellation.total_amount is None:
            return self._failed(
                OutcomeUnknown,
                f"cancellation {cancellation.status!r} without a known status and amount; "
                "look the payment up",
                op,
                req.attempt_id,
                response,
                code=cancellation.status,
            )
        remaining = req.expected_remaining - cancellation.total_amount
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=cancellation.total_amount, currency=req.amount.currency),
            remaining=remaining if remaining >= 0 else None,
            # REQUESTED: accepted, finished asynchronously (Transaction.CancelPending);
            # the Router keeps the refund open until a lookup shows it done.
            settled=status is CancellationStatus.SUCCEEDED,
        )

    # -- void -----------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        raise NotImplementedError("portone: void is not supported")

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError("portone: void is not supported")

    # -- webhooks -------------------------------------------------------------------------

    def verify_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
        tolerance: timedelta = timedelta(minutes=5),
    ) -> dict[str, Any]:
        """:func:`payfallback_portone.verify_webhook` with the configured ``webhook_secret``."""
        if self._webhook_secret is None:
            raise ConfigurationError(
                "no webhook_secret configured; pass the whsec_… secret from the console",
                provider=NAME,
            )
        return verify_webhook(
            headers, body, secret=self._webhook_secret, now=now, tolerance=tolerance
        )

    # -- helpers --------------------------------------------------------------------------

    def _hide(self, *secrets: SecretStr | None) -> tuple[str, ...]:
        """Secret values that must never reach a message, even if a provider echoes them."""
        values = [self._api_secret, *secrets]
        return tuple(v.get_secret_value() for v in values if v is not None)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"PortOne {self._api_secret.get_secret_value()}",
            "Accept": "application/json",
        }

    def _get_payment(self, payment_id: str) -> httpx.Request:
        params = {"storeId": self.store_id} if self.store_id else None
        return httpx.Request(
            "GET",
            f"{self.base_url}/payments/{_segment(payment_id)}",
            params=params,
            headers=self._headers(),
        )

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        operation: Operation,
        attempt_id: str,
    ) -> httpx.Request:
        if not IDEMPOTENCY_KEY_PATTERN.fullmatch(idempotency_key):
            raise InvalidRequest(
                "PortOne Idempotency-Key must be 16-256 characters of letters, digits, '-' "
                f"and '_' (got {len(idempotency_key)} characters); mint it as uuid4().hex",
                provider=NAME,
                operation=operation.value,
                attempt_id=attempt_id,
            )
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = idempotency_key
        # Compact, stable bytes: a retry with the same key must be the same request.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return httpx.Request("POST", f"{self.base_url}{path}", content=content, headers=headers)

    def _channel_for(self, method: Method) -> str | None:
        return self.channel_keys.get(method) or self.channel_key

    def _check_method(self, method: Method, op: Operation, attempt_id: str) -> None:
        if method not in _PAY_METHODS:
            raise InvalidRequest(
                f"PortOne does not take {method.value!r} through this adapter",
                provider=NAME,
                operation=op.value,
                attempt_id=attempt_id,
            )

    def _check_currency(self, order: Order, op: Operation, attempt_id: str) -> None:
        if order.amount.currency not in self.capabilities.currencies:
            raise InvalidRequest(
                f"PortOne is configured for {', '.join(sorted(self.capabilities.currencies))} "
                f"only, not {order.amount.currency}",
                provider=NAME,
                operation=op.value,
                attempt_id=attempt_id,
            )

    @staticmethod
    def _amount(order: Order) -> PaymentAmountInput:
        return PaymentAmountInput(
            total=order.amount.amount,
            tax_free=order.tax_free_amount or None,
        )

    @staticmethod
    def _money(payment: Payment, order: Order) -> Money | None:
        if payment.amount is None:
            return None
        try:
            return Money(
                amount=payment.amount.total, currency=payment.currency or order.amount.currency
            )
        except InvalidRequest:
            return None

    def _failed(
        self,
        cls: type[PayfallbackError],
        message: str,
        op: Operation,
        attempt_id: str,
        response: httpx.Response | None = None,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> Failed:
        return Failed(
            cls(
                message,
                provider=NAME,
                operation=op.value,
                attempt_id=attempt_id,
                provider_code=code,
                provider_request_id=_request_id(response) if response is not None else None,
                retry_after=retry_after,
            )
        )

    def _failed_payment(
        self, payment: Payment, op: Operation, attempt_id: str, response: httpx.Response
    ) -> Failed:
        failure = payment.failure
        pg_code = failure.pg_code if failure else None
        pg_provider = payment.channel.pg_provider if payment.channel else None
        # FAILED is terminal, so the PG's code can only refine *why* nothing moved.
        verdict = classify_pg_code(pg_code, pg_provider or self.pg_provider)
        cls: type[PayfallbackError] = Declined
        if verdict in _REFINES_FAILED and verdict is not None:
            cls = verdict
        detail = _text((failure.pg_message or failure.reason) if failure else None, self._hide())
        return self._failed(
            cls,
            "payment FAILED" + (f": {detail}" if detail else ""),
            op,
            attempt_id,
            response,
            code=f"FAILED:{pg_code}" if pg_code else "FAILED",
        )

    def _error(
        self,
        op: Operation,
        table: str,
        attempt_id: str,
        response: httpx.Response,
        hide: tuple[str, ...],
    ) -> Outcome:
        body = _read(ErrorBody, response)
        if body is None:
            return Failed(
                classify_http_status(response, provider=NAME, operation=op, attempt_id=attempt_id)
            )
        message = _text(body.message, hide)
        verdict = ERROR_TABLE[table].get(body.type)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if verdict is Rule.NOT_FOUND:
            return Status(state=TxnState.NOT_FOUND, provider_status=body.type)
        if verdict is Rule.BY_PG_CODE:
            pg_message = _text(body.pg_message, hide)
            pg_verdict = classify_pg_code(body.pg_code, self.pg_provider)
            code = f"{body.type}:{body.pg_code}" if body.pg_code else body.type
            text = "the PG refused" + (f": {pg_message}" if pg_message else "")
            if pg_verdict is None:
                pg_verdict = OutcomeUnknown if op in MONEY_MOVING else ProviderUnavailable
                text = "the PG answered with an error PortOne does not explain" + (
                    f": {pg_message}" if pg_message else ""
                )
            return self._failed(pg_verdict, text, op, attempt_id, response, code=code)
        if verdict is None:
            if op in MONEY_MOVING and response.status_code not in (401, 403, 429, 503):
                return self._failed(
                    OutcomeUnknown,
                    f"HTTP {response.status_code} with an unknown error type"
                    + (f": {message}" if message else ""),
                    op,
                    attempt_id,
                    response,
                    code=body.type,
                    retry_after=retry_after,
                )
            return Failed(
                classify_http_status(
                    response,
                    provider=NAME,
                    operation=op,
                    attempt_id=attempt_id,
                    provider_code=body.type,
                    message=message,
                )
            )
        return self._failed(
            verdict,
            message or body.type,
            op,
            attempt_id,
            response,
            code=body.type,
            retry_after=retry_after,
        )


def _segment(value: str) -> str:
    # Path values are URL-encoded (REST overview: "encodeURIComponent").
    return quote(value, safe="")
