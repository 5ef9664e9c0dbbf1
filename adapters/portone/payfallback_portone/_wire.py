"""PortOne V2 on the wire: request and response models, statuses, and the code tables.

Request models are strict and frozen and serialise to the camelCase JSON the OpenAPI spec
describes (``BillingKeyPaymentInput``, ``InstantPaymentInput``, ``CancelPaymentBody``);
the tests validate every body the adapter builds against those schemas. Response models
are tolerant: PortOne adds fields without notice and asks clients to ignore what they do
not know, so unknown fields are kept and statuses stay raw strings until looked up in the
tables below.

The tables are the adapter's whole policy:

* :data:`LOOKUP_STATES` maps every payment status (both ``PENDING`` spellings) to what a
  status inquiry learned;
* :data:`ERROR_TABLE` maps every error ``type`` the spec documents for the endpoints we
  call, per operation, to one outcome class;
* :data:`PG_CODE_TABLES` classify ``PG_PROVIDER`` errors by the PG's own ``pgCode``,
  where the PG's codes are documented and cannot be mistaken for another PG's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

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

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.provider import TxnState

__all__ = [
    "ERROR_TABLE",
    "LOOKUP_STATES",
    "PG_CODE_TABLES",
    "PG_FAMILIES",
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
    "Rule",
    "Verdict",
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
    """

    store_id: str | None = None
    amount: StrictInt
    tax_free_amount: StrictInt | None = None
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
    # Created but not paid. After a checkout: the customer has not finished. During a
    # billing-key payment PortOne holds the record while the PG is called; the adapter
    # reports IN_PROGRESS instead when the payment carries a billing key.
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
    # Terminal: the PG refused or the customer gave up; no money moved.
    PaymentStatus.FAILED: TxnState.NOT_PAID,
}


class Rule(enum.Enum):
    """Error types whose outcome is decided by more than the type."""

    #: ``PG_PROVIDER`` (502): the PG answered with an error; its ``pgCode`` decides.
    BY_PG_CODE = "by_pg_code"
    #: ``PAYMENT_NOT_FOUND`` on a lookup is an answer (``TxnState.NOT_FOUND``), not a failure.
    NOT_FOUND = "not_found"


Verdict = type[PayfallbackError] | Rule

_AUTH: Mapping[str, Verdict] = {
    "INVALID_REQUEST": InvalidRequest,
    # 401: the V2 API secret is wrong or revoked (a PG's own key there also gives 401).
    "UNAUTHORIZED": ConfigurationError,
    # 403: the secret may not act on this store.
    "FORBIDDEN": ConfigurationError,
}

# Documented on the REST overview page ("멱등 키"), not in the OpenAPI file: a replay with
# the same Idempotency-Key while the first request is still running. The first request
# may yet take effect, so the attempt must not be rerouted: wait, then replay or look up.
_IDEMPOTENCY: Mapping[str, Verdict] = {"IDEMPOTENCY_OUTSTANDING_REQUEST": OutcomeUnknown}

_PAY: Mapping[str, Verdict] = {
    **_AUTH,
    **_IDEMPOTENCY,
    # Another attempt on this paymentId (= our attempt id) already succeeded: most likely
    # our own request whose answer was lost. Resolved by lookup, never by a new attempt.
    "ALREADY_PAID": OutcomeUnknown,
    "CHANNEL_NOT_FOUND": ConfigurationError,
    "DISCOUNT_AMOUNT_EXCEEDS_TOTAL_AMOUNT": InvalidRequest,
    # Too many attempts on one paymentId; nothing was charged by this one.
    "MAX_TRANSACTION_COUNT_REACHED": InvalidRequest,
    # A schedule already owns this paymentId; we never schedule, so the id is wrong.
    "PAYMENT_SCHEDULE_ALREADY_EXISTS": InvalidRequest,
    "PG_PROVIDER": Rule.BY_PG_CODE,
    "PROMOTION_PAY_METHOD_DOES_NOT_MATCH": InvalidRequest,
    "SUM_OF_PARTS_EXCEEDS_TOTAL_AMOUNT": InvalidRequest,
}

#: Outcome class per documented error ``type``, per operation (``instant`` is the key-in
#: payment). Anything missing here is classified by HTTP status on read-only calls and is
#: ``OutcomeUnknown`` on money-moving ones.
ERROR_TABLE: Mapping[str, Mapping[str, Verdict]] = {
    "lookup": {**_AUTH, "PAYMENT_NOT_FOUND": Rule.NOT_FOUND},
    # approve is the server-side verification GET after the browser SDK finished: no
    # payment under our paymentId means the customer never paid.
    "approve": {**_AUTH, "PAYMENT_NOT_FOUND": Declined},
    "charge": {
        **_PAY,
        # The stored instrument is gone: like an expired card, the customer's to fix.
        "BILLING_KEY_ALREADY_DELETED": Declined,
        # No such key at all: our data is wrong.
        "BILLING_KEY_NOT_FOUND": InvalidRequest,
    },
    "instant": dict(_PAY),
    "cancel": {
        **_AUTH,
        **_IDEMPOTENCY,
        # The balance is not what we said it was (``currentCancellableAmount``): an
        # earlier cancel whose answer we lost may have gone through. Look up first.
        "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN": OutcomeUnknown,
        "CANCEL_AMOUNT_EXCEEDS_CANCELLABLE_AMOUNT": InvalidRequest,
        "CANCEL_TAX_AMOUNT_EXCEEDS_CANCELLABLE_TAX_AMOUNT": InvalidRequest,
        "CANCEL_TAX_FREE_AMOUNT_EXCEEDS_CANCELLABLE_TAX_FREE_AMOUNT": InvalidRequest,
        "NEGATIVE_PROMOTION_ADJUSTED_CANCEL_AMOUNT": InvalidRequest,
        # Already cancelled: possibly by our own earlier request. Look up first.
        "PAYMENT_ALREADY_CANCELLED": OutcomeUnknown,
        "PAYMENT_NOT_FOUND": InvalidRequest,
        "PAYMENT_NOT_PAID": InvalidRequest,
        "PG_PROVIDER": Rule.BY_PG_CODE,
        "PROMOTION_DISCOUNT_RETAIN_OPTION_SHOULD_NOT_BE_CHANGED": InvalidRequest,
        "SUM_OF_PARTS_EXCEEDS_CANCEL_AMOUNT": InvalidRequest,
    },
}

# PortOne forwards the PG's own code unchanged ("PG 오류 코드 그대로", V2 checkout guide).
# The codes below are the ones the PGs document with a clear meaning; everything else is
# unknown, which on a money-moving call means OutcomeUnknown and a lookup.

_TOSSPAYMENTS: Mapping[str, type[PayfallbackError]] = {
    # Toss Payments /reference/error-codes: the card company, bank or customer said no.
    "REJECT_CARD_COMPANY": Declined,
    "REJECT_ACCOUNT_PAYMENT": Declined,
    "INVALID_REJECT_CARD": Declined,
    "INVALID_STOPPED_CARD": Declined,
    "INVALID_CARD_EXPIRATION": Declined,
    "INVALID_CARD_NUMBER": Declined,
    "INVALID_PASSWORD": Declined,
    "BELOW_MINIMUM_AMOUNT": Declined,
    "EXCEED_MAX_AMOUNT": Declined,
    "EXCEED_MAX_AUTH_COUNT": Declined,
    "EXCEED_MAX_DAILY_PAYMENT_COUNT": Declined,
    "EXCEED_MAX_PAYMENT_AMOUNT": Declined,
    "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT": Declined,
    "PAY_PROCESS_CANCELED": Declined,
    "PAY_PROCESS_ABORTED": Declined,
    "NOT_FOUND_PAYMENT_SESSION": Declined,
    # Cancels the PG refuses.
    "NOT_CANCELABLE_AMOUNT": Declined,
    "NOT_CANCELABLE_PAYMENT": Declined,
    "NOT_ALLOWED_PARTIAL_REFUND": Declined,
    "EXCEED_MAX_REFUND_DUE": Declined,
    "REFUND_REJECTED": Declined,
    # The method is under maintenance: refused before anything was processed.
    "MAINTAINED_METHOD": ProviderUnavailable,
    # The PG keys configured for the channel in the PortOne console are wrong.
    "UNAUTHORIZED_KEY": ConfigurationError,
    "INVALID_API_KEY": ConfigurationError,
    # Already done, or failed somewhere inside: may have acted (listed to say so).
    "ALREADY_PROCESSED_PAYMENT": OutcomeUnknown,
    "DUPLICATED_ORDER_ID": OutcomeUnknown,
    "ALREADY_CANCELED_PAYMENT": OutcomeUnknown,
    "PROVIDER_ERROR": OutcomeUnknown,
    "FAILED_INTERNAL_SYSTEM_PROCESSING": OutcomeUnknown,
    "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING": OutcomeUnknown,
    "UNKNOWN_ERROR": OutcomeUnknown,
}

_NICE: Mapping[str, type[PayfallbackError]] = {
    # nicepay-manual common/code.md (the NICE_V2 module speaks the new NICEPAY API).
    "3011": Declined,  # card number error
    "3021": Declined,  # expiry error
    "3041": Declined,  # amount below 1,000 KRW
    "A124": Declined,  # BID (billing key) missing
    "A125": Declined,  # BID invalid
    "A126": Declined,  # BID deleted
    "A223": Declined,  # billKey not found
    "2014": Declined,  # not cancellable
    "2016": Declined,  # cancel period expired
    "A246": ProviderUnavailable,  # abnormal excessive access: throttled before processing
    "4008": ProviderUnavailable,  # bank system down
    "2159": ProviderUnavailable,  # bank outage
    "A101": ConfigurationError,  # SIGN DATA verification failed
    "A211": ConfigurationError,  # hash verification failed
    "A224": ConfigurationError,  # IP not allowed
    "A114": ConfigurationError,  # invalid MID
    "A122": ConfigurationError,  # another merchant's transaction
    "A113": InvalidRequest,  # below the minimum amount
    "A123": InvalidRequest,  # approved amount differs from authenticated amount
    "2010": InvalidRequest,  # cancel amount <= 0
    "2011": InvalidRequest,  # cancel amount mismatch
    "2012": InvalidRequest,  # no transaction to cancel
    "2026": InvalidRequest,  # cancel amount above the balance
    "2032": InvalidRequest,  # cancel amount above the balance
    "A127": OutcomeUnknown,  # duplicate order number: already processed
    "2201": OutcomeUnknown,  # an approval already exists
    "2013": OutcomeUnknown,  # already cancelled
    "2015": OutcomeUnknown,  # cancel already requested
    "A299": OutcomeUnknown,  # delayed processing
    "A226": OutcomeUnknown,  # message communication error
    "A400": OutcomeUnknown,
    "A401": OutcomeUnknown,
    "A402": OutcomeUnknown,
    "A403": OutcomeUnknown,
    "X001": OutcomeUnknown,
    "X002": OutcomeUnknown,
    "X003": OutcomeUnknown,
    "X004": OutcomeUnknown,
    "9002": OutcomeUnknown,
    "S999": OutcomeUnknown,
}

#: ``pgCode`` → outcome class, per PG family.
PG_CODE_TABLES: Mapping[str, Mapping[str, type[PayfallbackError]]] = {
    "TOSSPAYMENTS": _TOSSPAYMENTS,
    "NICE": _NICE,
}

#: PortOne ``PgProvider`` values (``Payment.channel.pgProvider``) → PG family.
PG_FAMILIES: Mapping[str, str] = {"TOSSPAYMENTS": "TOSSPAYMENTS", "NICE_V2": "NICE"}

#: Families whose codes are spelled-out words no other PG uses, so they are safe to apply
#: when the channel's PG is not known. Numeric codes (NICEPAY's ``3011``) collide across
#: PGs and are applied only when the PG is known.
SELF_DESCRIBING_FAMILIES: frozenset[str] = frozenset({"TOSSPAYMENTS"})


def classify_pg_code(pg_code: str | None, pg_provider: str | None) -> type[PayfallbackError] | None:
    """The outcome class of a PG's ``pgCode``, or ``None`` when it is not known."""
    if not pg_code:
        return None
    if pg_provider is not None:
        family = PG_FAMILIES.get(pg_provider.upper())
        return PG_CODE_TABLES[family].get(pg_code) if family else None
    for family in sorted(SELF_DESCRIBING_FAMILIES):
        if (verdict := PG_CODE_TABLES[family].get(pg_code)) is not None:
            return verdict
    return None
