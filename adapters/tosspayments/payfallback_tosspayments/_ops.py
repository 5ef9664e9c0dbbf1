"""The Toss Payments adapter: capabilities and pure ``build_<op>`` / ``parse_<op>``.

Flows:

* REDIRECT — Toss's "ready" happens in the browser: the merchant page opens the payment
  window with the Toss SDK, using the values :meth:`TossPayments.parse_ready` returns as
  ``client_params`` (``orderId`` is our attempt id). After the customer authenticates,
  Toss redirects to ``successUrl?paymentKey=…&orderId=…&amount=…`` and ``approve``
  confirms with ``POST /v1/payments/confirm`` — within 10 minutes, or Toss expires the
  payment (``NOT_FOUND_PAYMENT_SESSION`` on a late confirm, ``EXPIRED`` on lookup).
* SERVER_CHARGE — ``POST /v1/billing/{billingKey}`` with the customer key the billing
  key was issued for, our attempt id as ``orderId``.

Every POST carries ``Idempotency-Key`` (the Router mints it once per attempt and reuses it
on every retry; Toss keeps it 15 days and replays the first answer — errors included — to
any repeat). Lookups use ``GET /v1/payments/{paymentKey}`` once the payment key is known
and ``GET /v1/payments/orders/{orderId}`` before, so an attempt whose answer was lost is
found by our attempt id alone.

Every error is made by the instance's :class:`~payfallback.adapter.AdapterKit`; what stays
here are Toss's quirks: the ``orderId`` alphabet, the fail URL's ``code``/``message``, a
success answer that must name this attempt's ``orderId`` and ``paymentKey`` (idempotency
keys are scoped by URL, not body), ``PARTIAL_CANCELED`` with nothing left, and
``NOT_FOUND_PAYMENT`` as a lookup's answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from payfallback.adapter import AdapterKit, Secrets, Verdict, basic_auth, read_object
from payfallback.errors import ConfigurationError, PayfallbackError
from payfallback.models import Method, Money
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
)
from payfallback_tosspayments._receipt import receipt_of, refund_receipt_of
from payfallback_tosspayments._wire import (
    CODE_TABLE,
    STATUS_STATES,
    BillingChargeBody,
    CancelBody,
    ConfirmBody,
    PaymentStatus,
    TossError,
    TossPayment,
)

__all__ = ["BASE_URL", "LABEL", "NAME", "SUPPORTED_METHODS", "TossPayments"]

NAME: Final = "tosspayments"
#: The provider's name in messages.
LABEL: Final = "Toss Payments"
BASE_URL: Final = "https://api.tosspayments.com"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
#: Toss's request id on its answers, which Toss support asks for (threads on
#: https://techchat.tosspayments.com quote it; every captured answer carries it)
#: [3rd-party; sure]. Kept as ``provider_request_id``.
TRACE_HEADER: Final = "x-tosspayments-trace-id"

#: What the merchant page passes to the Toss SDK's ``requestPayment`` for each method. The
#: wallets Toss fronts open directly with ``flowMode: DIRECT`` and their ``easyPay`` code.
_SDK_METHOD: dict[Method, dict[str, str]] = {
    Method.CARD: {"method": "CARD"},
    Method.BANK_TRANSFER: {"method": "TRANSFER"},
    Method.VIRTUAL_ACCOUNT: {"method": "VIRTUAL_ACCOUNT"},
    Method.MOBILE: {"method": "MOBILE_PHONE"},
    Method.TOSSPAY: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "TOSSPAY"},
    Method.KAKAOPAY: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "KAKAOPAY"},
    Method.NAVERPAY: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "NAVERPAY"},
    Method.PAYCO: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "PAYCO"},
    Method.SAMSUNGPAY: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "SAMSUNGPAY"},
    Method.APPLEPAY: {"method": "CARD", "flowMode": "DIRECT", "easyPay": "APPLEPAY"},
}

SUPPORTED_METHODS: frozenset[Method] = frozenset(_SDK_METHOD)

# orderId: 6-64 characters of letters, digits, "-" and "_" (INVALID_ORDER_ID's own text).
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")
_PAYMENT_KEY_MAX = 200
_BILLING_KEY_MAX = 200
_CANCEL_REASON_MAX = 200
_IDEMPOTENCY_KEY_MAX = 300
#: Seconds Toss documents a billing charge may take (see ``Capabilities.read_timeout``).
_READ_TIMEOUT = 60.0
# Toss does not say how long "still processing" lasts; a second is a hint to the Router's
# replay policy, not a promise.
_IN_FLIGHT_RETRY_AFTER = 1.0
_MESSAGE_MAX = 300

_CLIENT_KEY_PREFIXES = ("test_ck_", "live_ck_", "test_gck_", "live_gck_")
_SECRET_KEY_PREFIXES = ("test_sk_", "live_sk_", "test_gsk_", "live_gsk_")

# Hints for codes whose fix is specific, appended to the error message.
_HINTS: dict[str, str] = {
    "UNAUTHORIZED_KEY": (
        "check secret_key: the secret key of this MID (test_sk_/live_sk_; payment-widget "
        "MIDs use test_gsk_/live_gsk_), paired with the client key the page uses"
    ),
    "INVALID_API_KEY": (
        "the secret key does not match this integration: check that test and live keys "
        "are not mixed and that client and secret keys are a pair"
    ),
    "INCORRECT_BASIC_AUTH_FORMAT": "the Authorization header must be Basic base64('{secret}:')",
    "NOT_SUPPORTED_METHOD": (
        "this method is not in the merchant's Toss contract (billing charges need their "
        "own contract and MID)"
    ),
    "NOT_FOUND_PAYMENT_SESSION": (
        "the payment session expired: Toss must be confirmed within 10 minutes of the "
        "customer's authentication; the customer has to pay again"
    ),
    "NOT_MATCHES_CUSTOMER_KEY": (
        "the Instrument's customer_key is not the customer key the billing key was issued "
        "for; store and pass them as a pair"
    ),
    "NOT_MATCHES_REFUNDABLE_AMOUNT": (
        "Toss holds a different cancellable balance than expected_remaining: an earlier "
        "cancel may have gone through; look the payment up"
    ),
    "INVALID_REFUND_ACCOUNT_INFO": (
        "refunding a paid virtual account needs the customer's refund account, which this "
        "adapter does not send; refund it from the Toss dashboard"
    ),
    "INVALID_IDEMPOTENCY_KEY": "Idempotency-Key must be 1-300 characters",
    "IDEMPOTENT_REQUEST_PROCESSING": (
        "replay the request later with the SAME Idempotency-Key (a new key could run it "
        "twice) to get the first request's answer"
    ),
}


def _secret(value: SecretStr | str, setting: str) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    if not secret.get_secret_value().strip():
        raise ConfigurationError(
            f"tosspayments: {setting} is empty; pass the secret key from the Toss developer "
            "center (test_sk_… for test, live_sk_… for live)",
            provider=NAME,
        )
    return secret


def _methods(methods: Iterable[Method | str]) -> frozenset[Method]:
    chosen, unknown = set(), []
    for item in methods:
        try:
            method = Method(item)
        except ValueError:
            unknown.append(str(item))
            continue
        if method in SUPPORTED_METHODS:
            chosen.add(method)
        else:  # a Method added to payfallback that Toss does not front
            unknown.append(method.value)
    if unknown:
        raise ConfigurationError(
            f"tosspayments does not offer {', '.join(unknown)}; supported: "
            + ", ".join(sorted(m.value for m in SUPPORTED_METHODS)),
            provider=NAME,
        )
    return frozenset(chosen)


def _flows(flows: Iterable[Flow | str]) -> frozenset[Flow]:
    try:
        return frozenset(Flow(f) for f in flows)
    except ValueError:
        raise ConfigurationError(
            "tosspayments: flows must be among " + ", ".join(f.value for f in Flow),
            provider=NAME,
        ) from None


def _json(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _error_body(response: httpx.Response) -> TossError:
    data = read_object(response)
    try:
        return TossError.model_validate(data) if data is not None else TossError()
    except ValidationError:  # e.g. a non-string code: treat as no code at all
        return TossError()


class TossPayments:
    """Toss Payments core API v1 (``https://api.tosspayments.com``).

    Settings (keyword-only, so ``load_provider("tosspayments", secret_key=...)`` works):

    * ``secret_key`` — the secret key of the MID (``test_sk_…``/``live_sk_…``, or
      ``…_gsk_…`` for payment-widget MIDs). Sent as ``Basic base64("{secret_key}:")``.
    * ``client_key`` — optional and public: handed to the merchant page in
      ``client_params["clientKey"]`` for the Toss SDK.
    * ``methods`` / ``flows`` — narrow what this MID is contracted for (billing charges
      need their own contract); default: everything the adapter supports.
    * ``base_url`` — for tests against a stub; the same host serves test and live keys.

    Secrets. :attr:`secrets` holds the secret key and the ``Authorization`` value built
    from it (whole, and its base64 part alone); the Router scrubs them from everything,
    and every error text here passes through the kit's cleaner, which scrubs them too.
    The billing key of a charge (and the customer key it is paired with) are request
    secrets: the parse of that charge scrubs them as well. The client key is public by
    design, and the success URL carries no one-time token (``paymentKey``, ``orderId``,
    ``amount``): neither is declared. Error texts never quote an echoed field.

    What proves a payment did not go through (``Capabilities.proofs``, strongest first):

    - REPLAY — offered. Every POST carries ``Idempotency-Key``; "같은 요청이 여러 번
      일어나도 항상 첫 번째 요청과 같은 결과가 돌아옵니다" (a repeat gets the first request's
      answer, and is not executed again), keys are valid 15 days from first use, and
      ``409 IDEMPOTENT_REQUEST_PROCESSING`` answers a repeat while the first request still
      runs (``RequestInFlight``: replay later with the SAME key). Source:
      https://docs.tosspayments.com/guides/using-api/idempotency-key and
      https://docs.tosspayments.com/reference/using-api/authorization (멱등키 헤더)
      [official; sure]. The key is scoped by API key + URL + method, not by body (same
      authorization page), and a key reused for another payment replays that payment's
      answer (https://techchat.tosspayments.com/m/1186570706016809030) [community report;
      sure]: a replayed answer is taken only when it names this attempt's ``orderId``.
    - RECORD — offered. A lookup returns Toss's record of the payment with its status;
      ``ABORTED`` ("결제 승인이 실패한 상태", with ``failure{code, message}``) and
      ``EXPIRED`` ("결제 유효 시간 30분이 지나 거래가 취소된 상태"; an ``IN_PROGRESS``
      payment not confirmed in time) read ``NOT_PAID``. Source: Payment 객체 ``status``
      and ``failure`` on https://docs.tosspayments.com/reference [official; sure]. Both are
      final for their ``paymentKey`` — the key "결제 상태가 변해도 값이 유지됩니다", and paying
      again opens a new window with a new ``paymentKey`` (``failed_record_is_final``)
      [official for the statuses; inferred for "new key", likely]. A lookup by ``orderId``
      reads the payment Toss holds under our attempt id; this adapter never reuses an
      attempt id, but a merchant page that reopens the window with the same
      ``client_params`` after a failure would put a second payment under it.
    - VOID — not offered: Toss has no net cancel; ``cancel`` needs a confirmed payment.
    - NOT_FOUND_AFTER_SETTLE — not offered: Toss documents no time after which a request
      that may have reached it can no longer commit (searched the reference, the
      idempotency, timeout-glossary and cancel pages), so ``settle_window`` is None and
      ``404 NOT_FOUND_PAYMENT`` from ``GET /v1/payments/orders/{orderId}`` right after a
      timeout proves nothing by itself. The only timing Toss states is how long a
      billing charge may take to answer (see ``read_timeout``), which bounds the answer,
      not when a lookup sees the commit. Lookups still return ``TxnState.NOT_FOUND`` for
      "no such payment"; the Router decides what that proves.
    """

    name: str = NAME
    capabilities: Capabilities

    #: Toss expires a payment the merchant does not confirm this long after the
    #: customer authenticated (IN_PROGRESS → EXPIRED); a late confirm is answered
    #: ``NOT_FOUND_PAYMENT_SESSION``.
    CONFIRM_WINDOW: ClassVar[timedelta] = timedelta(minutes=10)
    #: How long the payment window stays valid for the customer to authenticate
    #: (READY → EXPIRED).
    AUTH_WINDOW: ClassVar[timedelta] = timedelta(minutes=30)

    def __init__(
        self,
        *,
        secret_key: SecretStr | str,
        client_key: str | None = None,
        methods: Iterable[Method | str] | None = None,
        flows: Iterable[Flow | str] | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        self._secret_key = _secret(secret_key, "secret_key")
        raw = self._secret_key.get_secret_value()
        if raw.startswith(_CLIENT_KEY_PREFIXES):
            raise ConfigurationError(
                "tosspayments: secret_key looks like a client key (…_ck_/…_gck_); pass the "
                "secret key (…_sk_/…_gsk_) as secret_key and the client key as client_key",
                provider=self.name,
            )
        if client_key is not None and client_key.startswith(_SECRET_KEY_PREFIXES):
            # client_key goes to the browser: a secret key there would leak it.
            raise ConfigurationError(
                "tosspayments: client_key looks like a secret key (…_sk_/…_gsk_); never "
                "hand a secret key to the browser — pass the client key (…_ck_/…_gck_)",
                provider=self.name,
            )
        self.client_key = client_key or None
        # Basic auth with the secret key as user name and an empty password: the trailing
        # colon is part of what is encoded.
        self._auth = SecretStr(basic_auth(raw))
        #: Every credential and the Authorization value built from it; the Router scrubs
        #: these from every error, event, log line and journal row.
        self.secrets: Secrets = Secrets(
            self._secret_key,
            self._auth,
            self._auth.get_secret_value().removeprefix("Basic "),
        )
        self.kit = AdapterKit(
            provider=NAME,
            label=LABEL,
            codes=CODE_TABLE,
            request_id_headers=(TRACE_HEADER,),
            hints=_HINTS,
            secrets=self.secrets,
            in_flight_retry_after=_IN_FLIGHT_RETRY_AFTER,
            message_max=_MESSAGE_MAX,
        )
        chosen_methods = SUPPORTED_METHODS if methods is None else _methods(methods)
        chosen_flows = frozenset(Flow) if flows is None else _flows(flows)
        self.base_url = base_url.rstrip("/")
        self.capabilities = Capabilities(
            methods=chosen_methods,
            flows=chosen_flows,
            lookup_by_order_id=True,
            idempotency_header=IDEMPOTENCY_HEADER,
            idempotency_retention=timedelta(days=15),
            idempotency_key_max_length=_IDEMPOTENCY_KEY_MAX,
            partial_cancel=True,
            void_window=None,
            currencies=frozenset({"KRW"}),
            # "자동결제 승인은 최대 60초가 소요됩니다. 타임아웃 값을 최소 60초로 설정하세요"
            # (a billing charge takes up to 60 s; set the timeout to at least 60 s),
            # https://docs.tosspayments.com/reference, 자동결제 승인 [official; sure]. A
            # shorter read timeout would only turn slow charges into unknown outcomes.
            read_timeout=_READ_TIMEOUT,
            # successUrl carries the paymentKey; lookups by it still check that the payment
            # belongs to this attempt's orderId, since the browser could have altered it.
            callback_txn_id_param="paymentKey",
            # No documented settle window: "not found" is never proof (see the class
            # docstring); a same-key replay is.
            settle_window=None,
            # ABORTED and EXPIRED are final for their paymentKey: paying again opens a new
            # window and gets a new paymentKey.
            failed_record_is_final=True,
        )

    def __repr__(self) -> str:
        raw = self._secret_key.get_secret_value()
        mode = "test" if raw.startswith("test_") else "live" if raw.startswith("live_") else "?"
        return f"TossPayments(mode={mode!r}, base_url={self.base_url!r})"

    # -- ready: client-side ------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """No request (None): the payment window opens in the browser from ``client_params``.

        Raises ``InvalidRequest`` for a checkout Toss would refuse.
        """
        op, kit = Operation.READY, self.kit
        kit.check_method(req.method, self.capabilities, op, req.attempt_id)
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        self._check_order_id(req.attempt_id, op)
        for label, url in (("success", req.return_urls.success), ("fail", req.return_urls.fail)):
            if not url.startswith(("https://", "http://")):
                raise kit.invalid(
                    f"return_urls.{label} must be an absolute http(s) URL: Toss redirects the "
                    "customer to it",
                    op,
                    req.attempt_id,
                )
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """What the merchant page hands to the Toss SDK; there are no redirect URLs.

        ``return_urls.cancel`` is not used: Toss sends a customer who gives up to
        ``failUrl`` with ``code=PAY_PROCESS_CANCELED``.
        """
        params: dict[str, str] = {
            "orderId": req.attempt_id,
            "amount": str(req.order.amount.amount),
            "currency": req.order.amount.currency,
            "orderName": req.order.name,
            "successUrl": req.return_urls.success,
            "failUrl": req.return_urls.fail,
            **_SDK_METHOD[req.method],
        }
        if self.client_key:
            params["clientKey"] = self.client_key
        if req.order.tax_free_amount:
            params["taxFreeAmount"] = str(req.order.tax_free_amount)
        return Redirect(provider_txn_id=None, redirect_urls={}, client_params=params)

    # -- approve: POST /v1/payments/confirm --------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        op, kit = Operation.APPROVE, self.kit
        params = req.callback_params
        payment_key = params.get("paymentKey") or req.provider_txn_id
        if not payment_key:
            if code := params.get("code"):
                # The fail URL's parameters (code, message, orderId): the customer or the
                # card company ended the payment in the window; there is nothing to confirm.
                raise self._callback_failure(code, params.get("message"), req.attempt_id)
            raise kit.invalid(
                "callback_params has no paymentKey: pass the query parameters Toss appended "
                "to successUrl (paymentKey, orderId, amount)",
                op,
                req.attempt_id,
            )
        kit.check_length(payment_key, "paymentKey", op, req.attempt_id, maximum=_PAYMENT_KEY_MAX)
        if (order_id := params.get("orderId")) is not None and order_id != req.attempt_id:
            raise kit.invalid(
                f"the callback's orderId is not this checkout's {req.attempt_id!r}; the "
                "redirect belongs to another checkout",
                op,
                req.attempt_id,
            )
        expected = req.order.amount.amount
        if (amount := params.get("amount")) is not None and amount.strip() != str(expected):
            # Toss's docs require this check before confirming: the amount travelled
            # through the browser and may have been altered.
            raise kit.invalid(
                f"the callback's amount does not match the order amount {expected}; not "
                "confirming a payment for a different amount",
                op,
                req.attempt_id,
            )
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        self._check_order_id(req.attempt_id, op)
        body = kit.body(
            ConfirmBody,
            op,
            req.attempt_id,
            payment_key=payment_key,
            order_id=req.attempt_id,
            amount=expected,
        )
        return self._post("/v1/payments/confirm", body.body(), req.idempotency_key, op, req)

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        payment_key = req.callback_params.get("paymentKey") or req.provider_txn_id
        return self._parse_payment(
            self.kit, Operation.APPROVE, req.attempt_id, response, payment_key
        )

    # -- charge: POST /v1/billing/{billingKey} -----------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        op = Operation.CHARGE
        billing_key = self.kit.check_instrument(req.instrument, req.attempt_id)
        kit = self._charge_kit(req)
        if not req.instrument.customer_key:
            raise kit.invalid(
                "Toss charges a billing key only with the customerKey it was issued for; set "
                "Instrument.customer_key",
                op,
                req.attempt_id,
            )
        kit.check_length(
            billing_key, "the billing key", op, req.attempt_id, maximum=_BILLING_KEY_MAX
        )
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        self._check_order_id(req.attempt_id, op)
        body = kit.body(
            BillingChargeBody,
            op,
            req.attempt_id,
            customer_key=req.instrument.customer_key,
            amount=req.order.amount.amount,
            order_id=req.attempt_id,
            order_name=req.order.name,
            tax_free_amount=req.order.tax_free_amount or None,
        )
        # The billing key is a path segment: escape everything, "/" and "=" included.
        path = "/v1/billing/" + quote(billing_key, safe="")
        return self._post(path, body.body(), req.idempotency_key, op, req)

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        return self._parse_payment(
            self._charge_kit(req), Operation.CHARGE, req.attempt_id, response, None
        )

    # -- lookup: GET /v1/payments/{paymentKey} | /v1/payments/orders/{orderId} --------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        op, kit = Operation.LOOKUP, self.kit
        if req.provider_txn_id:
            if len(req.provider_txn_id) > _PAYMENT_KEY_MAX:
                raise kit.invalid("provider_txn_id is not a Toss paymentKey", op, req.attempt_id)
            path = "/v1/payments/" + quote(req.provider_txn_id, safe="")
        else:
            self._check_order_id(req.attempt_id, op)
            path = "/v1/payments/orders/" + quote(req.attempt_id, safe="")
        return httpx.Request("GET", self.base_url + path, headers=self._headers())

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """The payment's status as a :class:`Status`.

        ``NOT_FOUND`` for the documented "no such payment" (``404 NOT_FOUND_PAYMENT``):
        whether that proves nothing moved is the Router's decision (Toss documents no
        settle window, so it never does). ``NOT_PAID`` only for a record that says the
        payment failed (``ABORTED``) or ran out (``EXPIRED``).
        """
        op, kit = Operation.LOOKUP, self.kit
        if not response.is_success:
            code = _error_body(response).code
            if kit.verdict(code, op) is Verdict.NOT_FOUND:
                # The documented "no such payment": nothing is held under this key now.
                return Status(state=TxnState.NOT_FOUND, provider_txn_id=req.provider_txn_id)
            return self._failure(kit, op, req.attempt_id, response)
        read = self._read_payment(kit, response, op, req.attempt_id)
        if isinstance(read, Failed):
            return read
        payment, data = read
        if payment.order_id is not None and payment.order_id != req.attempt_id:
            return Failed(
                kit.invalid(
                    f"the payment Toss returned belongs to another orderId, not to attempt "
                    f"{req.attempt_id!r}; the paymentKey on record is wrong",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        if req.provider_txn_id:
            if payment.payment_key and payment.payment_key != req.provider_txn_id:
                return Failed(
                    kit.invalid(
                        "Toss returned a different paymentKey than the one looked up",
                        op,
                        req.attempt_id,
                        response,
                    )
                )
        elif kit.carries_secret(payment.payment_key):
            return Failed(
                kit.unreadable(
                    "Toss answered the lookup with a credential as its paymentKey",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        return self._status(kit, payment, op, req.attempt_id, req.provider_txn_id, response, data)

    # -- cancel: POST /v1/payments/{paymentKey}/cancel ---------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """Full or partial cancel: ``cancelAmount`` always explicit, ``refundableAmount`` as
        the double-cancel guard, and ``CancelRequest.tax_free_amount`` as ``taxFreeAmount``.

        ``taxFreeAmount`` is "취소할 금액 중 면세 금액입니다. 값을 넣지 않으면 기본값인 0으로
        설정됩니다" — the tax-free part of the cancel amount, 0 when left out — and is
        applied only for tax-free or mixed-tax merchants (https://docs.tosspayments.com/reference,
        결제 취소, request body) [official; sure]. It is left out when 0, so an ordinary
        merchant's cancel body is unchanged.
        """
        op, kit = Operation.CANCEL, self.kit
        if not req.provider_txn_id or len(req.provider_txn_id) > _PAYMENT_KEY_MAX:
            raise kit.invalid(
                "provider_txn_id must be the Toss paymentKey of the payment", op, req.attempt_id
            )
        kit.check_cancel(req, self.capabilities)
        reason = kit.check_length(
            req.reason.strip(), "the cancel reason", op, req.attempt_id, maximum=_CANCEL_REASON_MAX
        )
        body = kit.body(
            CancelBody,
            op,
            req.attempt_id,
            cancel_reason=reason,
            # Always explicit: an omitted cancelAmount cancels whatever is left.
            cancel_amount=req.amount.amount,
            refundable_amount=req.expected_remaining,
            # Omitted when 0, which Toss documents as the default.
            tax_free_amount=req.tax_free_amount or None,
        )
        path = f"/v1/payments/{quote(req.provider_txn_id, safe='')}/cancel"
        return self._post(path, body.body(), req.idempotency_key, op, req)

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        op, kit = Operation.CANCEL, self.kit
        if not response.is_success:
            return self._failure(kit, op, req.attempt_id, response)
        read = self._read_payment(kit, response, op, req.attempt_id)
        if isinstance(read, Failed):
            return read
        payment, data = read
        if payment.payment_key and payment.payment_key != req.provider_txn_id:
            return Failed(
                kit.unknown(
                    "Toss answered the cancel for a different paymentKey",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        last = payment.cancels[-1] if payment.cancels else None
        if last is None or last.cancel_amount is None:
            return Failed(
                kit.unknown(
                    "Toss answered the cancel without a cancel record", op, req.attempt_id, response
                )
            )
        if last.cancel_amount != req.amount.amount:
            return Failed(
                kit.unknown(
                    f"Toss's latest cancel is {last.cancel_amount}, not the {req.amount.amount} "
                    "asked for; look the payment up",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        if last.cancel_status in (None, "DONE"):
            settled = True
        elif last.cancel_status == "IN_PROGRESS":
            settled = False  # overseas wallets cancel asynchronously
        else:
            return Failed(
                kit.unknown(
                    "Toss's latest cancel is neither DONE nor IN_PROGRESS; look the payment up",
                    op,
                    req.attempt_id,
                    response,
                    code=last.cancel_status,
                )
            )
        remaining = (
            payment.balance_amount if payment.balance_amount is not None else last.refundable_amount
        )
        money = self._money(
            kit,
            last.cancel_amount,
            payment.currency or req.amount.currency,
            op,
            req.attempt_id,
            response,
        )
        if isinstance(money, Failed):
            return money
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=money,
            remaining=remaining,
            settled=settled,
            receipt=refund_receipt_of(
                last.transaction_key, _datetime(last.canceled_at), remaining, kit.secrets
            ),
            answer=kit.secrets.scrub_answer(data),
        )

    # -- void: none --------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        raise NotImplementedError("tosspayments: void is not supported")

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError("tosspayments: void is not supported")

    # -- building ----------------------------------------------------------------------------

    def _charge_kit(self, req: ChargeRequest) -> AdapterKit:
        """The kit, also scrubbing the secrets of one charge: its billing key and the
        customer key it is paired with."""
        return self.kit.with_request_secrets(
            req.instrument.billing_key, req.instrument.customer_key
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._auth.get_secret_value(), "Accept": "application/json"}

    def _post(
        self,
        path: str,
        body: Mapping[str, object],
        idempotency_key: str,
        op: Operation,
        req: ApproveRequest | ChargeRequest | CancelRequest,
    ) -> httpx.Request:
        self.kit.check_length(
            idempotency_key,
            "the idempotency key",
            op,
            req.attempt_id,
            maximum=_IDEMPOTENCY_KEY_MAX,
        )
        return httpx.Request(
            "POST",
            self.base_url + path,
            headers={
                **self._headers(),
                "Content-Type": "application/json",
                IDEMPOTENCY_HEADER: idempotency_key,
            },
            content=_json(body),
        )

    def _check_order_id(self, attempt_id: str, op: Operation) -> None:
        if not _ORDER_ID.fullmatch(attempt_id):
            raise self.kit.invalid(
                f"Toss's orderId (our attempt id {attempt_id!r}) must be 6-64 letters, digits, "
                "'-' or '_'; use an order id of at least 4 characters",
                op,
                attempt_id,
            )

    def _callback_failure(
        self, code: str, message: str | None, attempt_id: str
    ) -> PayfallbackError:
        """The fail URL's ``code``/``message``: the decline they describe, or (a code that
        is not a decline) a callback that is not a payment to confirm."""
        op, kit = Operation.APPROVE, self.kit
        said = kit.clean(message) or kit.clean(code, limit=64)
        if kit.verdict(code, op) is Verdict.DECLINED:
            return kit.error(
                Verdict.DECLINED,
                op,
                attempt_id,
                code=code,
                # Toss's own words (failUrl's ``message``) become the decline's user_message.
                message=message,
                text=f"the payment ended in the Toss payment window: {said}",
            )
        return kit.error(
            Verdict.INVALID,
            op,
            attempt_id,
            code=code,
            text=f"the callback is Toss's failUrl redirect ({said}); there is no payment to "
            "confirm",
        )

    # -- parsing -----------------------------------------------------------------------------

    def _failure(
        self, kit: AdapterKit, op: Operation, attempt_id: str, response: httpx.Response
    ) -> Failed:
        """An error answer ``{code, message}``, classified by the kit (table, then status).

        Toss's quirk: 403 is not "refused before processing" there. Toss answers 403 for
        outcomes of processing too — ``REJECT_CARD_COMPANY``, ``FDS_ERROR``,
        ``NOT_CANCELABLE_AMOUNT`` (an earlier cancel may have run) — so a code this adapter
        does not know on a 403 to a money-moving call may have acted: ``OutcomeUnknown``.
        """
        error = _error_body(response)
        code = error.code
        unknown_403 = response.status_code == 403 and op in MONEY_MOVING
        if code and unknown_403 and kit.verdict(code, op) is None:
            said = kit.clean(error.message)
            return Failed(
                kit.unknown(
                    f"{LABEL} answered the {op.value} with HTTP 403 and a code this adapter "
                    "does not know"
                    + (f" ({said})" if said else "")
                    + "; it may have been processed — look it up",
                    op,
                    attempt_id,
                    response,
                    code=code,
                )
            )
        return Failed(kit.classify(op, attempt_id, response, code=code, message=error.message))

    def _parse_payment(
        self,
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
        payment_key: str | None,
    ) -> Outcome:
        """The answer to a confirm or a billing charge: approved, or why not."""
        if not response.is_success:
            return self._failure(kit, op, attempt_id, response)
        read = self._read_payment(kit, response, op, attempt_id)
        if isinstance(read, Failed):
            return read
        payment, data = read
        if payment.order_id is not None and payment.order_id != attempt_id:
            # Toss keys idempotency on the key alone, not the body: a key reused across
            # orders replays another order's answer. Never take it as this order's success.
            return Failed(
                kit.unknown(
                    f"Toss answered for another orderId, not {attempt_id!r}; look the attempt "
                    "up by its orderId",
                    op,
                    attempt_id,
                    response,
                )
            )
        if not payment.payment_key:
            return Failed(
                kit.unknown("Toss's success answer has no paymentKey", op, attempt_id, response)
            )
        if payment_key is not None and payment.payment_key != payment_key:
            return Failed(
                kit.unknown(
                    "Toss answered for a different paymentKey than confirmed",
                    op,
                    attempt_id,
                    response,
                )
            )
        if kit.carries_secret(payment.payment_key):
            return Failed(
                kit.unknown(
                    f"Toss answered the {op.value} with a credential as its paymentKey",
                    op,
                    attempt_id,
                    response,
                )
            )
        status = payment.status
        if status == PaymentStatus.DONE:
            if payment.total_amount is None:
                return Failed(
                    kit.unknown(
                        "Toss's success answer has no totalAmount", op, attempt_id, response
                    )
                )
            money = self._money(
                kit, payment.total_amount, payment.currency or "KRW", op, attempt_id, response
            )
            if isinstance(money, Failed):
                return money
            return Approved(
                provider_txn_id=payment.payment_key,
                amount=money,
                approved_at=_datetime(payment.approved_at),
                provider_status=status,
                receipt=receipt_of(data, kit.secrets),
                # Masked here with the request's secrets too (a charge's billing key and
                # customer key), which the Router does not hold; it masks again on keeping.
                answer=kit.secrets.scrub_answer(data),
            )
        if status == PaymentStatus.WAITING_FOR_DEPOSIT and op is Operation.APPROVE:
            # A virtual account was issued: no money until the customer transfers it.
            amount = None
            if payment.total_amount is not None:
                money = self._money(
                    kit, payment.total_amount, payment.currency or "KRW", op, attempt_id, response
                )
                if isinstance(money, Failed):
                    return money
                amount = money
            return Status(
                state=TxnState.AWAITING_CUSTOMER,
                provider_txn_id=payment.payment_key,
                amount=amount,
                provider_status=status,
            )
        return Failed(
            kit.unknown(
                f"Toss answered the {op.value} with a status other than DONE; look the payment up",
                op,
                attempt_id,
                response,
                code=status,
            )
        )

    def _status(
        self,
        kit: AdapterKit,
        payment: TossPayment,
        op: Operation,
        attempt_id: str,
        payment_key: str | None,
        response: httpx.Response,
        data: Mapping[str, Any],
    ) -> Outcome:
        raw = payment.status
        try:
            status = PaymentStatus(raw or "")
        except ValueError:
            return Failed(
                kit.unknown(
                    "Toss reports a status this adapter does not know; resolve the payment by hand",
                    op,
                    attempt_id,
                    response,
                    code=raw,
                )
            )
        state = STATUS_STATES[status]
        total, balance = payment.total_amount, payment.balance_amount
        amount: Money | None = None
        if total is not None:
            money = self._money(kit, total, payment.currency or "KRW", op, attempt_id, response)
            if isinstance(money, Failed):
                return money
            amount = money
        if status is PaymentStatus.CANCELED:
            cancelled = total or 0
        elif total is not None and balance is not None:
            cancelled = max(0, total - balance)
        else:
            cancelled = sum(c.cancel_amount or 0 for c in payment.cancels or ())
        if status is PaymentStatus.PARTIAL_CANCELED and balance == 0:
            # Toss keeps a payment PARTIAL_CANCELED after a partial cancel is followed by a
            # cancel of the rest: nothing is left, so it is cancelled in full.
            state = TxnState.CANCELLED
        if state is TxnState.PAID and amount is None:
            return Failed(
                kit.unknown(
                    "Toss reports the payment paid without its totalAmount",
                    op,
                    attempt_id,
                    response,
                )
            )
        paid = state is TxnState.PAID
        return Status(
            state=state,
            provider_txn_id=payment.payment_key or payment_key,
            amount=amount,
            cancelled=cancelled,
            provider_status=status.value,
            # A payment found paid becomes the order's payment: its receipt and answer too.
            receipt=receipt_of(data, kit.secrets) if paid else None,
            answer=kit.secrets.scrub_answer(data) if paid else None,
        )

    def _read_payment(
        self, kit: AdapterKit, response: httpx.Response, op: Operation, attempt_id: str
    ) -> tuple[TossPayment, dict[str, Any]] | Failed:
        """The Payment object, and the answer as parsed (for the receipt and the record)."""
        data = read_object(response)
        if data is not None:
            try:
                return TossPayment.model_validate(data), data
            except ValidationError:
                pass
        return Failed(
            kit.unreadable(
                f"Toss answered the {op.value} with HTTP {response.status_code} and a body "
                "that is not a Payment",
                op,
                attempt_id,
                response,
            )
        )

    def _money(
        self,
        kit: AdapterKit,
        amount: int,
        currency: str,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
    ) -> Money | Failed:
        try:
            return Money(amount=amount, currency=currency)
        except PayfallbackError:
            return Failed(
                kit.unknown(
                    "Toss reports an amount or a currency this adapter cannot read",
                    op,
                    attempt_id,
                    response,
                )
            )
