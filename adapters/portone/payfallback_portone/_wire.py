"""PortOne V2 on the wire: request and response models, statuses, and the code tables.

Request models are strict and frozen and serialise to the camelCase JSON the OpenAPI spec
describes (``BillingKeyPaymentInput``, ``InstantPaymentInput``, ``CancelPaymentBody``);
the tests validate every body the adapter builds against those schemas. Response models
are tolerant: PortOne adds fields without notice and asks clients to ignore what they do
not know, so unknown fields are kept and statuses stay raw strings until looked up in the
tables below.

The tables are the adapter's whole policy, in the adapter kit's terms
(:class:`~payfallback.adapter.CodeRule`, :class:`~payfallback.adapter.Verdict`):

* :data:`LOOKUP_STATES` maps every payment status (both ``PENDING`` spellings) to what a
  status inquiry learned;
* :data:`CODES` maps every error ``type`` the spec documents for the endpoints we call
  (and the one the REST overview adds) to its verdict on approve/charge, on a cancel and
  on a lookup;
* :data:`PG_CODE_TABLES` classify ``PG_PROVIDER`` errors by the PG's own ``pgCode``,
  where the PG's codes are documented and cannot be mistaken for another PG's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from pydantic import (
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictInt,
    field_serializer,
)
from pydantic.alias_generators import to_camel

from payfallback.adapter import CodeRule, Verdict, code_table
from payfallback.provider import TxnState

__all__ = [
    "CODES",
    "HINTS",
    "LOOKUP_STATES",
    "PAYMENT_NOT_FOUND",
    "PG_CODE_TABLES",
    "PG_FAMILIES",
    "PG_PROVIDER",
    "SELF_DESCRIBING_FAMILIES",
    "BillingKeyPaymentInput",
    "CancelPaymentBody",
    "CancelPaymentResponse",
    "CancellationStatus",
    "CardCredential",
    "CustomerInput",
    "ErrorBody",
    "InstantPaymentInput",
    "InstantPaymentMethodInput",
    "InstantPaymentMethodInputCard",
    "PayResponse",
    "Payment",
    "PaymentAmountInput",
    "PaymentStatus",
    "classify_pg_code",
]


# -- requests: strict, serialised by alias ------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
        alias_generator=AliasGenerator(serialization_alias=to_camel),
    )

    def to_json(self) -> dict[str, Any]:
        """The JSON object PortOne expects (secrets unwrapped here, and only here)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class PaymentAmountInput(_Request):
    total: StrictInt
    tax_free: StrictInt | None = None


class CustomerInput(_Request):
    id: str


class BillingKeyPaymentInput(_Request):
    """``POST /payments/{paymentId}/billing-key``."""

    store_id: str | None = None
    billing_key: SecretStr
    channel_key: str | None = None
    order_name: str
    customer: CustomerInput | None = None
    amount: PaymentAmountInput
    currency: str

    @field_serializer("billing_key", when_used="json")
    def _reveal(self, value: SecretStr) -> str:
        return value.get_secret_value()


class CardCredential(_Request):
    number: SecretStr
    expiry_year: str
    expiry_month: str
    birth_or_business_registration_number: SecretStr | None = None
    password_two_digits: SecretStr | None = None

    @field_serializer(
        "number",
        "birth_or_business_registration_number",
        "password_two_digits",
        when_used="json",
    )
    def _reveal(self, value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()


class InstantPaymentMethodInputCard(_Request):
    credential: CardCredential
    installment_month: StrictInt | None = None


class InstantPaymentMethodInput(_Request):
    card: InstantPaymentMethodInputCard


class InstantPaymentInput(_Request):
    """``POST /payments/{paymentId}/instant`` (key-in card payment)."""

    store_id: str | None = None
    channel_key: str
    method: InstantPaymentMethodInput
    order_name: str
    customer: CustomerInput | None = None
    amount: PaymentAmountInput
    currency: str


class CancelPaymentBody(_Request):
    """``POST /payments/{paymentId}/cancel``.

    ``current_cancellable_amount`` makes the cancel conditional on the balance PortOne
    holds: a replay after a lost answer cannot cancel twice, it fails with
    ``CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN`` instead.

    ``tax_free_amount`` is always sent: the spec says of ``taxFreeAmount`` "값을 입력하지
    않으면 전액 과세 취소됩니다" (left out, the whole cancel is taxable), which would be
    wrong for every cancel of an order with a tax-free part. ``vatAmount`` is left out:
    "값을 입력하지 않으면 자동 계산됩니다" (computed by PortOne).
    """

    store_id: str | None = None
    amount: StrictInt
    tax_free_amount: StrictInt
    reason: str
    current_cancellable_amount: StrictInt


# -- responses: tolerant ------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
    )


class PaymentStatus(StrEnum):
    """``Payment.status``. The single-payment object says ``PAY_PENDING``; the search
    filter enum ``PaymentStatus`` says ``PENDING``. Both are accepted."""

    READY = "READY"
    PENDING = "PENDING"
    PAY_PENDING = "PAY_PENDING"
    VIRTUAL_ACCOUNT_ISSUED = "VIRTUAL_ACCOUNT_ISSUED"
    PAID = "PAID"
    PARTIAL_CANCELLED = "PARTIAL_CANCELLED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @classmethod
    def parse(cls, raw: str | None) -> PaymentStatus | None:
        try:
            return cls(raw) if raw is not None else None
        except ValueError:
            return None


class CancellationStatus(StrEnum):
    """``PaymentCancellation.status``; ``REQUESTED`` is an asynchronous cancel in flight."""

    SUCCEEDED = "SUCCEEDED"
    REQUESTED = "REQUESTED"
    FAILED = "FAILED"

    @classmethod
    def parse(cls, raw: str | None) -> CancellationStatus | None:
        try:
            return cls(raw) if raw is not None else None
        except ValueError:
            return None


class PaymentAmount(_Response):
    total: StrictInt
    tax_free: StrictInt | None = None
    paid: StrictInt | None = None
    cancelled: StrictInt | None = None


class PaymentFailure(_Response):
    reason: str | None = None
    pg_code: str | None = None
    pg_message: str | None = None


class SelectedChannel(_Response):
    type: str | None = None
    pg_provider: str | None = None


class Payment(_Response):
    """``GET /payments/{paymentId}``: one of the seven ``*Payment`` schemas by status."""

    status: str
    id: str | None = None
    transaction_id: str | None = None
    store_id: str | None = None
    # A billing-key payment carries its key; kept secret so no repr ever shows it.
    billing_key: SecretStr | None = None
    channel: SelectedChannel | None = None
    amount: PaymentAmount | None = None
    currency: str | None = None
    paid_at: str | None = None
    pg_tx_id: str | None = None
    failure: PaymentFailure | None = None


class PaymentSummary(_Response):
    pg_tx_id: str | None = None
    paid_at: str | None = None


class PayResponse(_Response):
    """``PayWithBillingKeyResponse`` / ``PayInstantlyResponse``: ``{payment: {pgTxId, paidAt}}``."""

    payment: PaymentSummary | None = None


class PaymentCancellation(_Response):
    status: str
    id: str | None = None
    total_amount: StrictInt | None = None
    cancelled_at: str | None = None
    requested_at: str | None = None


class CancelPaymentResponse(_Response):
    cancellation: PaymentCancellation | None = None


class ErrorBody(_Response):
    """Every error: ``{type, message?}``; ``PgProviderError`` adds ``pgCode``/``pgMessage``."""

    type: str = Field(min_length=1)
    message: str | None = None
    pg_code: str | None = None
    pg_message: str | None = None


# -- the tables ---------------------------------------------------------------------------

#: What ``lookup`` learned, by payment status.
LOOKUP_STATES: Mapping[PaymentStatus, TxnState] = {
    # Created but not paid. After a checkout: the customer has not finished (and may still
    # pay on this paymentId). During a billing-key payment PortOne holds the record while
    # the PG is called; the adapter reports IN_PROGRESS instead when the payment carries a
    # billing key.
    PaymentStatus.READY: TxnState.AWAITING_CUSTOMER,
    # The PG has accepted the payment and not yet settled it: money may still move.
    PaymentStatus.PENDING: TxnState.IN_PROGRESS,
    PaymentStatus.PAY_PENDING: TxnState.IN_PROGRESS,
    # A virtual account is issued; nothing is paid until the customer deposits.
    PaymentStatus.VIRTUAL_ACCOUNT_ISSUED: TxnState.AWAITING_CUSTOMER,
    PaymentStatus.PAID: TxnState.PAID,
    # Paid, then partly refunded: the payment stands; ``Status.cancelled`` says how much.
    PaymentStatus.PARTIAL_CANCELLED: TxnState.PAID,
    PaymentStatus.CANCELLED: TxnState.CANCELLED,
    # The PG refused or the customer gave up: this attempt moved no money. Not final for a
    # checkout: PortOne lets the customer pay again on the same paymentId
    # (``Capabilities.failed_record_is_final`` is False).
    PaymentStatus.FAILED: TxnState.NOT_PAID,
}

#: The OpenAPI file: each operation's error union and each error schema's status.
SPEC: Final = "https://developers.portone.io/api/schema/v2/openapi.json"
#: The REST overview, section 멱등 키 (not in the OpenAPI file).
OVERVIEW: Final = "https://developers.portone.io/api/rest-v2#idempotency-key"
TOSS_CODES: Final = "https://docs.tosspayments.com/reference/error-codes"
NICE_CODES: Final = "https://github.com/nicepayments/nicepay-manual/blob/main/common/code.md"

#: The ``PG_PROVIDER`` error (502): the PG answered with an error. Its ``pgCode`` decides
#: (:func:`classify_pg_code`); this row is what an unknown ``pgCode`` means.
PG_PROVIDER: Final = "PG_PROVIDER"
#: ``PAYMENT_NOT_FOUND``: on a lookup an answer (``TxnState.NOT_FOUND``), not a failure.
PAYMENT_NOT_FOUND: Final = "PAYMENT_NOT_FOUND"

_D, _U, _X = Verdict.DECLINED, Verdict.UNAVAILABLE, Verdict.UNKNOWN
_I, _C = Verdict.INVALID, Verdict.CONFIGURATION


def _spec(
    verdict: Verdict, meaning: str, *, cancel: Verdict | None = None, read: Verdict | None = None
) -> CodeRule:
    return CodeRule(verdict, meaning, cancel=cancel, read=read, source=SPEC)


#: Every error ``type`` the spec documents for the four endpoints we call
#: (``getPayment``, ``payWithBillingKey``, ``payInstantly``, ``cancelPayment``), plus the
#: one the REST overview adds. ``verdict`` is read on approve (the verification GET) and
#: on the payments (charge, key-in); ``cancel`` on a cancel; ``read`` on a lookup. A type
#: missing here is ``OutcomeUnknown`` on a money-moving call (the kit's rule) and is
#: classified by HTTP status on a lookup.
CODES: Mapping[str, CodeRule] = code_table(
    {
        # -- every endpoint -----------------------------------------------------------
        "INVALID_REQUEST": _spec(_I, "400: the request is malformed"),
        "UNAUTHORIZED": _spec(
            _C, "401: the V2 API secret is wrong or revoked (a PG's own key there also gives 401)"
        ),
        "FORBIDDEN": _spec(_C, "403: the secret may not act on this store"),
        # -- the overview page --------------------------------------------------------
        "IDEMPOTENCY_OUTSTANDING_REQUEST": CodeRule(
            Verdict.IN_FLIGHT,
            "409: a replay with the same Idempotency-Key while the first request is still "
            "running; the first may yet take effect, so wait, then replay with the same key",
            source=OVERVIEW,
        ),
        # -- getPayment (approve, lookup) and cancelPayment ----------------------------
        PAYMENT_NOT_FOUND: _spec(
            _D,
            "404: no payment under this paymentId (= our attempt id). approve: the customer "
            "never paid; lookup: an answer; cancel: our data is wrong",
            cancel=_I,
            read=Verdict.NOT_FOUND,
        ),
        # -- payWithBillingKey and payInstantly (charge) -------------------------------
        "ALREADY_PAID": _spec(
            _X,
            "409: an attempt on this paymentId already succeeded, most likely our own "
            "request whose answer was lost; resolved by lookup, never by a new attempt",
        ),
        "CHANNEL_NOT_FOUND": _spec(_C, "404: the channel key is unknown"),
        "DISCOUNT_AMOUNT_EXCEEDS_TOTAL_AMOUNT": _spec(_I, "400: discount above the total"),
        "MAX_TRANSACTION_COUNT_REACHED": _spec(
            _I, "400: too many attempts on one paymentId; nothing was charged by this one"
        ),
        "PAYMENT_SCHEDULE_ALREADY_EXISTS": _spec(
            _I, "409: a schedule owns this paymentId; we never schedule, so the id is wrong"
        ),
        PG_PROVIDER: _spec(
            _X,
            "502: the PG answered with an error, a decline as often as a fault; its pgCode "
            "decides, and an unknown pgCode may have charged",
        ),
        "PROMOTION_PAY_METHOD_DOES_NOT_MATCH": _spec(_I, "400: promotion/method mismatch"),
        "SUM_OF_PARTS_EXCEEDS_TOTAL_AMOUNT": _spec(_I, "409: amount parts above the total"),
        "BILLING_KEY_ALREADY_DELETED": _spec(
            _D, "409: the stored instrument is gone: like an expired card, the customer's to fix"
        ),
        "BILLING_KEY_NOT_FOUND": _spec(_I, "404: no such billing key: our data is wrong"),
        # -- cancelPayment -----------------------------------------------------------
        "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN": _spec(
            _X,
            "409: the balance is not the currentCancellableAmount we sent: an earlier cancel "
            "whose answer we lost may have gone through; look up first",
        ),
        "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT": _spec(_I, "409: more than the balance"),
        "CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT": _spec(
            _I, "409: taxable part above the taxable balance"
        ),
        "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT": _spec(
            _I, "409: tax-free part above the tax-free balance"
        ),
        "NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT": _spec(
            _I, "400: the promotion-adjusted cancel amount would be negative"
        ),
        "PAYMENT_ALREADY_CANCELLED": _spec(
            _X, "409: already cancelled, possibly by our own earlier request; look up first"
        ),
        "PAYMENT_NOT_PAID": _spec(_I, "409: nothing paid to cancel"),
        "PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED": _spec(
            _I, "400: the promotion retain option cannot change between partial cancels"
        ),
        "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT": _spec(_I, "409: cancel parts above the amount"),
    }
)

#: What to do about a code, appended to its message.
HINTS: Mapping[str, str] = {
    "UNAUTHORIZED": "pass the V2 API secret from the console (결제연동 > 연동 정보), "
    "not a PG's secret key",
    "FORBIDDEN": "the V2 API secret belongs to another store, or lacks the permission",
    "CHANNEL_NOT_FOUND": "check channel_key / channel_keys",
}

# PortOne forwards the PG's own code unchanged ("PG 오류 코드 그대로", V2 checkout guide).
# The codes below are the ones the PGs document with a clear meaning; everything else is
# unknown, which on a money-moving call means OutcomeUnknown and a lookup.


def _toss(verdict: Verdict, meaning: str) -> CodeRule:
    return CodeRule(verdict, meaning, source=TOSS_CODES)


def _nice(verdict: Verdict, meaning: str) -> CodeRule:
    return CodeRule(verdict, meaning, source=NICE_CODES)


_TOSSPAYMENTS: Mapping[str, CodeRule] = code_table(
    {
        # The card company, bank or customer said no.
        "REJECT_CARD_COMPANY": _toss(_D, "the card company refused"),
        "REJECT_ACCOUNT_PAYMENT": _toss(_D, "the bank refused (balance)"),
        "INVALID_REJECT_CARD": _toss(_D, "card refused"),
        "INVALID_STOPPED_CARD": _toss(_D, "card stopped"),
        "INVALID_CARD_EXPIRATION": _toss(_D, "card expired"),
        "INVALID_CARD_NUMBER": _toss(_D, "card number wrong"),
        "INVALID_PASSWORD": _toss(_D, "card password wrong"),
        "BELOW_MINIMUM_AMOUNT": _toss(_D, "below the card's minimum"),
        "EXCEED_MAX_AMOUNT": _toss(_D, "above the card's limit"),
        "EXCEED_MAX_AUTH_COUNT": _toss(_D, "too many authentications"),
        "EXCEED_MAX_DAILY_PAYMENT_COUNT": _toss(_D, "daily payment count exceeded"),
        "EXCEED_MAX_PAYMENT_AMOUNT": _toss(_D, "payment amount limit exceeded"),
        "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT": _toss(_D, "daily withdrawal limit exceeded"),
        "PAY_PROCESS_CANCELED": _toss(_D, "the customer cancelled"),
        "PAY_PROCESS_ABORTED": _toss(_D, "the payment was aborted"),
        "NOT_FOUND_PAYMENT_SESSION": _toss(_D, "the payment session expired"),
        # Cancels the PG refuses.
        "NOT_CANCELABLE_AMOUNT": _toss(_D, "amount not cancellable"),
        "NOT_CANCELABLE_PAYMENT": _toss(_D, "payment not cancellable"),
        "NOT_ALLOWED_PARTIAL_REFUND": _toss(_D, "no partial refund for this payment"),
        "EXCEED_MAX_REFUND_DUE": _toss(_D, "refund period exceeded"),
        "REFUND_REJECTED": _toss(_D, "refund rejected"),
        # The method is under maintenance: refused before anything was processed.
        "MAINTAINED_METHOD": _toss(_U, "the method is under maintenance"),
        # The PG keys configured for the channel in the PortOne console are wrong.
        "UNAUTHORIZED_KEY": _toss(_C, "the channel's PG key is wrong"),
        "INVALID_API_KEY": _toss(_C, "the channel's PG key is wrong"),
        # Already done, or failed somewhere inside: may have acted (listed to say so).
        "ALREADY_PROCESSED_PAYMENT": _toss(_X, "already processed"),
        "DUPLICATED_ORDER_ID": _toss(_X, "the order id was already used"),
        "ALREADY_CANCELED_PAYMENT": _toss(_X, "already cancelled"),
        "PROVIDER_ERROR": _toss(_X, "temporary error at the card company or bank"),
        "FAILED_INTERNAL_SYSTEM_PROCESSING": _toss(_X, "internal error during processing"),
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": _toss(_X, "internal error during payment"),
        "UNKNOWN_ERROR": _toss(_X, "unknown error"),
    }
)

# The NICE_V2 module speaks the new NICEPAY API.
_NICE: Mapping[str, CodeRule] = code_table(
    {
        "3011": _nice(_D, "card number error"),
        "3021": _nice(_D, "expiry error"),
        "3041": _nice(_D, "amount below 1,000 KRW"),
        "A124": _nice(_D, "BID (billing key) missing"),
        "A125": _nice(_D, "BID invalid"),
        "A126": _nice(_D, "BID deleted"),
        "A223": _nice(_D, "billKey not found"),
        "2014": _nice(_D, "not cancellable"),
        "2016": _nice(_D, "cancel period expired"),
        "A246": _nice(_U, "abnormal excessive access: throttled before processing"),
        "4008": _nice(_U, "bank system down"),
        "2159": _nice(_U, "bank outage"),
        "A101": _nice(_C, "SIGN DATA verification failed"),
        "A211": _nice(_C, "hash verification failed"),
        "A224": _nice(_C, "IP not allowed"),
        "A114": _nice(_C, "invalid MID"),
        "A122": _nice(_C, "another merchant's transaction"),
        "A113": _nice(_I, "below the minimum amount"),
        "A123": _nice(_I, "approved amount differs from authenticated amount"),
        "2010": _nice(_I, "cancel amount <= 0"),
        "2011": _nice(_I, "cancel amount mismatch"),
        "2012": _nice(_I, "no transaction to cancel"),
        "2026": _nice(_I, "cancel amount above the balance"),
        "2032": _nice(_I, "cancel amount above the balance"),
        "A127": _nice(_X, "duplicate order number: already processed"),
        "2201": _nice(_X, "an approval already exists"),
        "2013": _nice(_X, "already cancelled"),
        "2015": _nice(_X, "cancel already requested"),
        "A299": _nice(_X, "delayed processing"),
        "A226": _nice(_X, "message communication error"),
        "A400": _nice(_X, "building the message to an outside party failed"),
        "A401": _nice(_X, "error talking to an outside party"),
        "A402": _nice(_X, "a database transaction failed"),
        "A403": _nice(_X, "an outside party's answer is malformed"),
        "X001": _nice(_X, "server domain misconfigured"),
        "X002": _nice(_X, "socket connection error"),
        "X003": _nice(_X, "error receiving the message"),
        "X004": _nice(_X, "error sending the message"),
        "9002": _nice(_X, "exception (Try-Catch-Exception)"),
        "S999": _nice(_X, "other error"),
    }
)

#: ``pgCode`` → rule, per PG family.
PG_CODE_TABLES: Mapping[str, Mapping[str, CodeRule]] = {
    "TOSSPAYMENTS": _TOSSPAYMENTS,
    "NICE": _NICE,
}

#: PortOne ``PgProvider`` values (``Payment.channel.pgProvider``) → PG family.
PG_FAMILIES: Mapping[str, str] = {"TOSSPAYMENTS": "TOSSPAYMENTS", "NICE_V2": "NICE"}

#: Families whose codes are spelled-out words no other PG uses, so they are safe to apply
#: when the channel's PG is not known. Numeric codes (NICEPAY's ``3011``) collide across
#: PGs and are applied only when the PG is known.
SELF_DESCRIBING_FAMILIES: frozenset[str] = frozenset({"TOSSPAYMENTS"})


def classify_pg_code(pg_code: str | None, pg_provider: str | None) -> CodeRule | None:
    """The rule for a PG's ``pgCode``, or ``None`` when it is not known."""
    if not pg_code:
        return None
    if pg_provider is not None:
        family = PG_FAMILIES.get(pg_provider.upper())
        return PG_CODE_TABLES[family].get(pg_code) if family else None
    for family in sorted(SELF_DESCRIBING_FAMILIES):
        if (rule := PG_CODE_TABLES[family].get(pg_code)) is not None:
            return rule
    return None
