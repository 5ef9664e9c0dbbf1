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
  terminal for this attempt, so never ``OutcomeUnknown``);
* ``READY`` → ``Declined`` when the redirect carried an error ``code`` (the customer
  closed or failed the payment window; the message carries the SDK's ``message``, cleaned),
  else ``OutcomeUnknown`` (the payment may still complete; a lookup decides). The return
  URL's parameters never decide alone: PortOne's own record is read first, and a ``PAID``
  record wins over any ``code``;
* ``PENDING``/``PAY_PENDING``/``VIRTUAL_ACCOUNT_ISSUED`` → ``OutcomeUnknown``: money may
  still move (a PG settling, a deposit to come), so the attempt waits for lookup;
* ``PARTIAL_CANCELLED``/``CANCELLED`` → ``OutcomeUnknown``: it was paid, and part or all
  of it given back since; the lookup's ``Status`` carries the amounts for the Router;
* 404 ``PAYMENT_NOT_FOUND`` → ``Declined``: nothing was ever paid under our id.

Errors are ``{type, message}`` (``PG_PROVIDER`` adds ``pgCode``/``pgMessage``); the code
table is :data:`payfallback_portone._wire.CODES` and every error is made by the adapter
kit (:class:`payfallback.adapter.AdapterKit`): an error type the table does not know is
``OutcomeUnknown`` on a money-moving call (unless the HTTP status is 429/503) and is
classified by HTTP status on a lookup. The one PortOne quirk kept here is ``PG_PROVIDER``:
its ``pgCode`` is looked up in the PG's own table first.

The Idempotency-Key is sent as an RFC 8941 sf-string (``Idempotency-Key: "…"``, with
``\\`` and ``"`` escaped), as the REST overview asks since 2025-10-21.
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

from payfallback.adapter import AdapterKit, Secrets, Verdict, read_object
from payfallback.errors import ConfigurationError, InvalidRequest
from payfallback.models import Method, Money, Order
from payfallback.provider import (
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
)
from payfallback_portone._receipt import receipt_of, refund_receipt_of
from payfallback_portone._webhook import verify_webhook
from payfallback_portone._wire import (
    CODES,
    HINTS,
    LOOKUP_STATES,
    PG_PROVIDER,
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
    classify_pg_code,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "IDEMPOTENCY_KEY_PATTERN",
    "InstantChargeRequest",
    "KeyInCard",
    "PortOne",
    "sf_string",
]

NAME: Final = "portone"
# "PortOne V2", not "PortOne": the shared scrubber reads "PortOne <word>" as an
# Authorization value and would mask the word after it ("PortOne [redacted] the payment").
LABEL: Final = "PortOne V2"
DEFAULT_BASE_URL: Final = "https://api.portone.io"

#: The REST overview (https://developers.portone.io/api/rest-v2#idempotency-key): "16~256자의
#: ASCII 문자열(권장: 영문 대소문자, 숫자, -, _)". Printable ASCII only, since the key travels
#: inside an RFC 8941 sf-string, which admits nothing else.
IDEMPOTENCY_KEY_PATTERN: Final = re.compile(r"[\x20-\x7e]{16,256}")

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

# PortOne documents no request-id response header; a conventional one is taken if present.
_REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-trace-id", "x-trace-id")

# What a PG code may say about a FAILED payment besides "declined": nothing moved either
# way, but these name a provider or integration fault rather than a customer's "no".
_REFINES_FAILED = frozenset({Verdict.UNAVAILABLE, Verdict.CONFIGURATION, Verdict.INVALID})
# The SDK's error ``code`` comes back through the browser: keep only a code-shaped prefix.
_UNSAFE_CODE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_CODE_MAX = 64

_M = TypeVar("_M", bound=BaseModel)


def sf_string(value: str) -> str:
    """``value`` as an RFC 8941 §3.3.3 sf-string: in double quotes, ``\\`` and ``"``
    escaped with a backslash. ``value`` must be printable ASCII (%x20-7E)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
      the secret's store) but required by the browser SDK, hence by ``ready``. Not secret.
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

    ``secrets`` holds the API secret, the ``Authorization`` value built from it and the
    webhook secret (with and without its ``whsec_`` prefix); the Router scrubs them, and
    each request's billing key or card, from everything it records.
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
                "api_secret is empty; pass the PortOne V2 API secret from the console "
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
        webhook_raw = self._webhook_secret.get_secret_value() if self._webhook_secret else None
        self.secrets = Secrets(
            secret,
            self._authorization(),
            webhook_raw,
            webhook_raw.removeprefix("whsec_") if webhook_raw else None,
        )
        self.kit = AdapterKit(
            provider=NAME,
            label=LABEL,
            codes=CODES,
            request_id_headers=_REQUEST_ID_HEADERS,
            hints=HINTS,
            secrets=self.secrets,
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
            # REST overview, 멱등 키: a replay of a finished request returns its stored
            # answer; one still running answers 409 IDEMPOTENCY_OUTSTANDING_REQUEST.
            idempotency_header="Idempotency-Key",
            idempotency_retention=timedelta(hours=3),
            idempotency_key_max_length=256,
            partial_cancel=True,
            void_window=None,
            currencies=frozenset({"KRW"}),
            # "최소 60초의 읽기 타임아웃" (REST overview, 요청 타임아웃 정책).
            read_timeout=60.0,
            # No documented bound on how long a request PortOne received may still commit
            # ("연결을 끊은 경우에도 요청이 취소되지 않습니다"): "not found" is never proof.
            settle_window=None,
            # "같은 paymentId에 대해 여러 번의 결제 시도가 가능하나, 최종적으로 결제에 성공하는
            # 것은 단 한 번만 가능합니다" (V2 checkout guide): a FAILED or READY payment can
            # still be paid on the same paymentId.
            failed_record_is_final=False,
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
            return Failed(
                self.kit.invalid(
                    "checkouts at PortOne start client-side; ready sends no request",
                    Operation.READY,
                    req.attempt_id,
                    response,
                )
            )
        try:
            params = self._checkout_params(req)
        except (InvalidRequest, ConfigurationError) as exc:
            return Failed(exc)
        return Redirect(provider_txn_id=req.attempt_id, redirect_urls={}, client_params=params)

    def _checkout_params(self, req: ReadyRequest) -> dict[str, str]:
        op = Operation.READY
        self.kit.check_method(req.method, self.capabilities, op, req.attempt_id)
        self.kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        channel_key = self._channel_for(req.method)
        if self.store_id is None or channel_key is None:
            raise self.kit.error(
                Verdict.CONFIGURATION,
                op,
                req.attempt_id,
                text="a PortOne V2 checkout needs store_id and a channel key (channel_key, or "
                f"channel_keys[{req.method.value!r}]); find both in the console under 결제연동",
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
        kit = self.kit
        payment_id = req.provider_txn_id or req.attempt_id
        if not response.is_success:
            return self._error(kit, op, req.attempt_id, response)
        payment = _read(Payment, response)
        if payment is None:
            return Failed(
                kit.unreadable("unreadable payment in the answer", op, req.attempt_id, response)
            )
        if payment.id is not None and payment.id != payment_id:
            return Failed(
                kit.unknown(
                    "the answer is about another payment; look it up",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        status = PaymentStatus.parse(payment.status)
        if status is PaymentStatus.PAID:
            money = self._money(payment, req.order)
            if money is None:
                return Failed(
                    kit.unknown(
                        "PAID without a readable amount; look the payment up",
                        op,
                        req.attempt_id,
                        response,
                        code=payment.status,
                    )
                )
            data = read_object(response) or {}
            return Approved(
                provider_txn_id=payment_id,
                amount=money,
                approved_at=_parse_time(payment.paid_at),
                provider_status=status.value,
                receipt=receipt_of(data, kit.secrets),
                answer=kit.secrets.scrub_answer(data),
            )
        if status is PaymentStatus.FAILED:
            return self._failed_payment(kit, payment, op, req.attempt_id, response)
        sdk_code = req.callback_params.get("code")
        if status is PaymentStatus.READY and sdk_code:
            # The browser SDK reported an error (window closed, PG refused) and PortOne's
            # record confirms nothing was paid yet.
            shaped = _UNSAFE_CODE_CHARS.sub("", sdk_code)
            said = kit.clean(
                req.callback_params.get("message") or req.callback_params.get("pgMessage")
            )
            return Failed(
                kit.error(
                    Verdict.DECLINED,
                    op,
                    req.attempt_id,
                    response=response,
                    code=f"READY:{shaped}"[:_CODE_MAX],
                    # The SDK's message (the PG's words, passed on) is the user_message.
                    message=req.callback_params.get("message")
                    or req.callback_params.get("pgMessage"),
                    text="the customer did not complete the payment at PortOne"
                    + (f": {said}" if said else ""),
                )
            )
        if status is None:
            why = "the payment has a status this adapter does not know"
        elif status is PaymentStatus.READY:
            why = "payment is READY: the customer may still complete it"
        elif status in (PaymentStatus.PARTIAL_CANCELLED, PaymentStatus.CANCELLED):
            why = f"payment was paid and is now {status.value}"
        else:
            why = f"payment is {status.value}: money may still move"
        return Failed(
            kit.unknown(f"{why}; look it up", op, req.attempt_id, response, code=payment.status)
        )

    # -- charge (billing key) -------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        op = Operation.CHARGE
        kit = self.kit
        instrument = req.instrument
        kit.check_instrument(instrument, req.attempt_id)
        kit.check_method(instrument.method, self.capabilities, op, req.attempt_id)
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        customer_id = instrument.customer_key or req.order.customer_ref
        body = kit.body(
            BillingKeyPaymentInput,
            op,
            req.attempt_id,
            store_id=self.store_id,
            billing_key=instrument.billing_key,
            channel_key=self._channel_for(instrument.method),
            order_name=req.order.name,
            customer=self._customer(customer_id, op, req.attempt_id),
            amount=self._amount(req.order, op, req.attempt_id),
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
        kit = self.kit.with_request_secrets(req.instrument.billing_key)
        return self._parse_pay(kit, req.attempt_id, req.order, response)

    # -- instant (key-in card): not one of the Router's operations -------------------------

    def build_instant_charge(self, req: InstantChargeRequest) -> httpx.Request:
        """``POST /payments/{paymentId}/instant`` with a key-in card (channel key required)."""
        op = Operation.CHARGE
        kit = self.kit
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        channel_key = self._channel_for(Method.CARD)
        if channel_key is None:
            raise kit.error(
                Verdict.CONFIGURATION,
                op,
                req.attempt_id,
                text="a key-in payment through PortOne needs channel_key (or channel_keys['card'])",
            )
        card = req.card
        credential = kit.body(
            CardCredential,
            op,
            req.attempt_id,
            number=card.number,
            expiry_year=card.expiry_year,
            expiry_month=card.expiry_month,
            birth_or_business_registration_number=card.birth_or_business_registration_number,
            password_two_digits=card.password_two_digits,
        )
        method = kit.body(
            InstantPaymentMethodInput,
            op,
            req.attempt_id,
            card=kit.body(
                InstantPaymentMethodInputCard,
                op,
                req.attempt_id,
                credential=credential,
                installment_month=card.installment_month,
            ),
        )
        body = kit.body(
            InstantPaymentInput,
            op,
            req.attempt_id,
            store_id=self.store_id,
            channel_key=channel_key,
            method=method,
            order_name=req.order.name,
            customer=self._customer(req.order.customer_ref, op, req.attempt_id),
            amount=self._amount(req.order, op, req.attempt_id),
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
        kit = self.kit.with_request_secrets(
            card.number, card.birth_or_business_registration_number, card.password_two_digits
        )
        return self._parse_pay(kit, req.attempt_id, req.order, response)

    def _parse_pay(
        self, kit: AdapterKit, attempt_id: str, order: Order, response: httpx.Response
    ) -> Outcome:
        op = Operation.CHARGE
        if not response.is_success:
            return self._error(kit, op, attempt_id, response)
        answer = _read(PayResponse, response)
        if answer is None or answer.payment is None or not answer.payment.pg_tx_id:
            return Failed(
                kit.unknown(
                    "success answer without payment.pgTxId; look the payment up",
                    op,
                    attempt_id,
                    response,
                )
            )
        # The documented success body is {payment: {pgTxId, paidAt}}: no amount. A 200 is
        # PortOne saying this paymentId is PAID for the request it answers, and with an
        # Idempotency-Key a replay can only ever answer that same request; so the amount
        # approved is the amount we asked for (lookup reports PortOne's own figure).
        # No receipt either: the summary carries no card, approval number or receipt URL
        # (``BillingKeyPaymentSummary``/``InstantPaymentSummary``: pgTxId, paidAt only).
        return Approved(
            provider_txn_id=attempt_id,
            amount=order.amount,
            approved_at=_parse_time(answer.payment.paid_at),
            provider_status=PaymentStatus.PAID.value,
            # Masked here with the request's secrets too (billing key, key-in card).
            answer=kit.secrets.scrub_answer(read_object(response) or {}),
        )

    # -- lookup ---------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        return self._get_payment(req.provider_txn_id or req.attempt_id)

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        op = Operation.LOOKUP
        kit = self.kit
        payment_id = req.provider_txn_id or req.attempt_id
        if not response.is_success:
            return self._error(kit, op, req.attempt_id, response)
        payment = _read(Payment, response)
        if payment is None:
            return Failed(
                kit.unreadable("unreadable payment in the answer", op, req.attempt_id, response)
            )
        status = PaymentStatus.parse(payment.status)
        if status is None:
            # Neither proof of payment nor proof of none: keep asking, never conclude.
            return Status(
                state=TxnState.IN_PROGRESS,
                provider_txn_id=payment_id,
                provider_status=kit.clean(payment.status, limit=_CODE_MAX),
            )
        state = LOOKUP_STATES[status]
        if status is PaymentStatus.READY and payment.billing_key is not None:
            # A billing-key payment is READY while PortOne is calling the PG.
            state = TxnState.IN_PROGRESS
        money = self._money(payment, req.order)
        if money is None and state in (TxnState.PAID, TxnState.CANCELLED):
            return Failed(
                kit.unknown(
                    f"{status.value} without a readable amount",
                    op,
                    req.attempt_id,
                    response,
                    code=status.value,
                )
            )
        cancelled = payment.amount.cancelled if payment.amount else None
        data = (read_object(response) or {}) if state is TxnState.PAID else {}
        return Status(
            state=state,
            provider_txn_id=payment_id,
            amount=money,
            cancelled=cancelled or 0,
            provider_status=status.value,
            # A payment found paid becomes the order's payment: its receipt and answer too.
            receipt=receipt_of(data, kit.secrets) if data else None,
            answer=kit.secrets.scrub_answer(data) if data else None,
        )

    # -- cancel ---------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        op = Operation.CANCEL
        kit = self.kit
        kit.check_cancel(req, self.capabilities)
        if not req.reason.strip():
            raise kit.invalid(
                "a cancel at PortOne needs a reason; pass reason=...", op, req.attempt_id
            )
        body = kit.body(
            CancelPaymentBody,
            op,
            req.attempt_id,
            store_id=self.store_id,
            amount=req.amount.amount,
            # Always sent: left out, PortOne cancels the whole amount as taxable.
            tax_free_amount=req.tax_free_amount,
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
        kit = self.kit
        if not response.is_success:
            return self._error(kit, op, req.attempt_id, response)
        answer = _read(CancelPaymentResponse, response)
        cancellation = answer.cancellation if answer else None
        if cancellation is None:
            return Failed(
                kit.unknown(
                    "success answer without a cancellation; look the payment up",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        status = CancellationStatus.parse(cancellation.status)
        if status is CancellationStatus.FAILED:
            return Failed(
                kit.error(
                    Verdict.DECLINED,
                    op,
                    req.attempt_id,
                    response=response,
                    code="CANCELLATION_FAILED",
                    text="the cancellation FAILED at the PG behind PortOne; nothing was cancelled",
                )
            )
        if status is None or cancellation.total_amount is None:
            return Failed(
                kit.unknown(
                    "a cancellation with an unknown status or without an amount; look the "
                    "payment up",
                    op,
                    req.attempt_id,
                    response,
                    code=cancellation.status,
                )
            )
        remaining = req.expected_remaining - cancellation.total_amount
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=cancellation.total_amount, currency=req.amount.currency),
            remaining=remaining if remaining >= 0 else None,
            # REQUESTED: accepted, finished asynchronously (Transaction.CancelPending);
            # the Router keeps the refund open until a lookup shows it done.
            settled=status is CancellationStatus.SUCCEEDED,
            receipt=refund_receipt_of(
                cancellation.id, _parse_time(cancellation.cancelled_at), kit.secrets
            ),
            answer=kit.secrets.scrub_answer(read_object(response) or {}),
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

    def _authorization(self) -> str:
        return f"PortOne {self._api_secret.get_secret_value()}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization(), "Accept": "application/json"}

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
            raise self.kit.invalid(
                "the Idempotency-Key must be 16-256 printable ASCII characters for PortOne "
                f"(got {len(idempotency_key)} characters); mint it as uuid4().hex",
                operation,
                attempt_id,
            )
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = sf_string(idempotency_key)
        # Compact, stable bytes: a retry with the same key must be the same request.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return httpx.Request("POST", f"{self.base_url}{path}", content=content, headers=headers)

    def _channel_for(self, method: Method) -> str | None:
        return self.channel_keys.get(method) or self.channel_key

    def _amount(self, order: Order, op: Operation, attempt_id: str) -> PaymentAmountInput:
        return self.kit.body(
            PaymentAmountInput,
            op,
            attempt_id,
            total=order.amount.amount,
            tax_free=order.tax_free_amount or None,
        )

    def _customer(
        self, customer_id: str | None, op: Operation, attempt_id: str
    ) -> CustomerInput | None:
        if not customer_id:
            return None
        return self.kit.body(CustomerInput, op, attempt_id, id=customer_id)

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

    def _failed_payment(
        self,
        kit: AdapterKit,
        payment: Payment,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
    ) -> Failed:
        failure = payment.failure
        pg_code = failure.pg_code if failure else None
        pg_provider = payment.channel.pg_provider if payment.channel else None
        # FAILED ends this attempt at PortOne, so the PG's code can only refine *why*
        # nothing moved: never "may have acted".
        rule = classify_pg_code(pg_code, pg_provider or self.pg_provider)
        verdict = rule.verdict_for(op) if rule is not None else Verdict.DECLINED
        if verdict not in _REFINES_FAILED:
            verdict = Verdict.DECLINED
        words = (failure.pg_message or failure.reason) if failure else None
        said = kit.clean(words)
        return Failed(
            kit.error(
                verdict,
                op,
                attempt_id,
                response=response,
                code=f"FAILED:{pg_code}" if pg_code else "FAILED",
                # The PG's own words (pgMessage, else PortOne's reason): the user_message.
                message=words,
                text="payment FAILED at PortOne" + (f": {said}" if said else ""),
            )
        )

    def _error(
        self, kit: AdapterKit, op: Operation, attempt_id: str, response: httpx.Response
    ) -> Outcome:
        body = _read(ErrorBody, response)
        if body is None:
            return Failed(kit.classify(op, attempt_id, response, code=None))
        if body.type == PG_PROVIDER:
            # The PG's own code decides; an unknown one takes the PG_PROVIDER row (may
            # have acted on a money-moving call).
            rule = classify_pg_code(body.pg_code, self.pg_provider)
            verdict = (rule or CODES[PG_PROVIDER]).verdict_for(op)
            return Failed(
                kit.error(
                    verdict,
                    op,
                    attempt_id,
                    response=response,
                    code=f"{PG_PROVIDER}:{body.pg_code}" if body.pg_code else PG_PROVIDER,
                    message=body.pg_message or body.message,
                )
            )
        if op is Operation.LOOKUP and kit.verdict(body.type, op) is Verdict.NOT_FOUND:
            return Status(state=TxnState.NOT_FOUND, provider_status=body.type)
        return Failed(kit.classify(op, attempt_id, response, code=body.type, message=body.message))


def _segment(value: str) -> str:
    # Path values are URL-encoded (REST overview: "encodeURIComponent").
    return quote(value, safe="")
