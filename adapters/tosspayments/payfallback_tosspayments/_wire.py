"""Toss Payments on the wire: request bodies, the Payment object, and THE code table.

Requests are strict (a typo in a field name is a bug, not a silent omission). Responses are
tolerant: extra fields are kept, unknown ``status`` values are kept as raw strings, and every
field we rely on is optional so that a body missing it is *detected* by the adapter (and
classified ``OutcomeUnknown`` on a money-moving call) rather than crashing the parser.

The code table maps every error code Toss documents — the per-API tables of the confirm,
cancel, billing-charge and payment-lookup APIs, the idempotency codes, and the full core-API
catalogue on ``/reference/error-codes`` — to one :class:`~payfallback.adapter.CodeRule` of
the adapter kit, with per-operation overrides where the same code means something else on
a cancel or a lookup. The documented lists are kept as data in
``tests/documented_codes.json`` and a test fails on any code the table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from payfallback.adapter import CodeRule, Verdict, code_table
from payfallback.provider import TxnState

__all__ = [
    "CODE_TABLE",
    "ERROR_CODES_URL",
    "IDEMPOTENCY_URL",
    "STATUS_STATES",
    "BillingChargeBody",
    "CancelBody",
    "ConfirmBody",
    "PaymentStatus",
    "TossCancel",
    "TossError",
    "TossFailure",
    "TossPayment",
]


# -- requests (strict) -----------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", populate_by_name=True)

    def body(self) -> dict[str, object]:
        """The JSON object Toss expects: camelCase names, absent optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ConfirmBody(_Request):
    """``POST /v1/payments/confirm`` (결제 승인)."""

    payment_key: str = Field(alias="paymentKey", min_length=1, max_length=200)
    order_id: str = Field(alias="orderId", min_length=6, max_length=64)
    amount: int = Field(gt=0)


class BillingChargeBody(_Request):
    """``POST /v1/billing/{billingKey}`` (자동결제 승인)."""

    customer_key: str = Field(alias="customerKey", min_length=2, max_length=300)
    amount: int = Field(gt=0)
    order_id: str = Field(alias="orderId", min_length=6, max_length=64)
    order_name: str = Field(alias="orderName", min_length=1, max_length=100)
    tax_free_amount: int | None = Field(default=None, alias="taxFreeAmount", ge=0)


class CancelBody(_Request):
    """``POST /v1/payments/{paymentKey}/cancel`` (결제 취소).

    ``refundableAmount`` ("현재 환불 가능한 금액", https://docs.tosspayments.com/reference)
    is Toss's guard against a stale view: when it differs from what Toss holds as
    cancellable, the cancel is refused (``NOT_MATCHES_REFUNDABLE_AMOUNT``) and nothing is
    cancelled — so replaying a cancel can never cancel twice.
    """

    cancel_reason: str = Field(alias="cancelReason", min_length=1, max_length=200)
    cancel_amount: int = Field(alias="cancelAmount", gt=0)
    refundable_amount: int = Field(alias="refundableAmount", ge=0)
    #: The tax-free (면세) part of ``cancelAmount``. Left out when 0: "값을 넣지 않으면
    #: 기본값인 0으로 설정됩니다" (https://docs.tosspayments.com/reference, 결제 취소).
    tax_free_amount: int | None = Field(default=None, alias="taxFreeAmount", gt=0)


# -- responses (tolerant) --------------------------------------------------------------------


class _Response(BaseModel):
    # extra="allow": Toss adds fields with API versions; we keep them and never fail on them.
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class TossError(_Response):
    """The error object: ``{"code": "NOT_FOUND_PAYMENT", "message": "..."}``."""

    code: str | None = None
    message: str | None = None


class TossFailure(_Response):
    """``Payment.failure``: the last error of a payment that did not go through."""

    code: str | None = None
    message: str | None = None


class TossCancel(_Response):
    """One entry of ``Payment.cancels``."""

    cancel_amount: int | None = Field(default=None, alias="cancelAmount")
    cancel_reason: str | None = Field(default=None, alias="cancelReason")
    refundable_amount: int | None = Field(default=None, alias="refundableAmount")
    canceled_at: str | None = Field(default=None, alias="canceledAt")
    transaction_key: str | None = Field(default=None, alias="transactionKey")
    #: ``DONE`` for domestic cancels; ``IN_PROGRESS`` then ``DONE``/``ABORTED`` for the
    #: asynchronous overseas wallets.
    cancel_status: str | None = Field(default=None, alias="cancelStatus")


class TossPayment(_Response):
    """The Payment object every confirm, billing charge, lookup and cancel returns."""

    version: str | None = None
    payment_key: str | None = Field(default=None, alias="paymentKey")
    type: str | None = None
    order_id: str | None = Field(default=None, alias="orderId")
    order_name: str | None = Field(default=None, alias="orderName")
    m_id: str | None = Field(default=None, alias="mId")
    currency: str | None = None
    #: A Korean label by default (``카드``, ``간편결제``, ``가상계좌``); informational only.
    method: str | None = None
    #: Raw string so that a status Toss adds later is seen, not rejected by the parser.
    status: str | None = None
    total_amount: int | None = Field(default=None, alias="totalAmount")
    #: What is still cancellable.
    balance_amount: int | None = Field(default=None, alias="balanceAmount")
    requested_at: str | None = Field(default=None, alias="requestedAt")
    approved_at: str | None = Field(default=None, alias="approvedAt")
    last_transaction_key: str | None = Field(default=None, alias="lastTransactionKey")
    cancels: list[TossCancel] | None = None
    failure: TossFailure | None = None


class PaymentStatus(StrEnum):
    """``Payment.status`` as documented on ``/reference`` (Payment 객체)."""

    READY = "READY"
    IN_PROGRESS = "IN_PROGRESS"
    WAITING_FOR_DEPOSIT = "WAITING_FOR_DEPOSIT"
    DONE = "DONE"
    CANCELED = "CANCELED"
    PARTIAL_CANCELED = "PARTIAL_CANCELED"
    ABORTED = "ABORTED"
    EXPIRED = "EXPIRED"


#: Every documented status and what a status inquiry learns from it. ``PARTIAL_CANCELED``
#: is PAID with ``cancelled > 0`` — except that Toss keeps a payment ``PARTIAL_CANCELED``
#: even after its last won is cancelled, so the adapter reads ``balanceAmount == 0`` as
#: CANCELLED (see ``_ops._status``).
STATUS_STATES: dict[PaymentStatus, TxnState] = {
    # Created; the customer has 30 minutes to authenticate in the payment window.
    PaymentStatus.READY: TxnState.AWAITING_CUSTOMER,
    # The customer authenticated; the merchant has 10 minutes to confirm, after which Toss
    # expires it (EXPIRED). Not terminal, and the customer has already acted: ask again —
    # the answer converges to DONE or EXPIRED within the confirm window.
    PaymentStatus.IN_PROGRESS: TxnState.IN_PROGRESS,
    # Virtual account issued; no money until the customer transfers it.
    PaymentStatus.WAITING_FOR_DEPOSIT: TxnState.AWAITING_CUSTOMER,
    PaymentStatus.DONE: TxnState.PAID,
    PaymentStatus.CANCELED: TxnState.CANCELLED,
    PaymentStatus.PARTIAL_CANCELED: TxnState.PAID,
    # Approval failed (``failure`` says why); terminal, nothing moved.
    PaymentStatus.ABORTED: TxnState.NOT_PAID,
    # Not authenticated within 30 minutes or not confirmed within 10; terminal.
    PaymentStatus.EXPIRED: TxnState.NOT_PAID,
}


# -- the code table --------------------------------------------------------------------------

#: Where the codes and their meanings are published: the per-API tables and the core-API
#: catalogue ("전체 에러 목록").
ERROR_CODES_URL = "https://docs.tosspayments.com/reference/error-codes"
#: The idempotency codes and what a replay under the same key answers.
IDEMPOTENCY_URL = "https://docs.tosspayments.com/guides/using-api/idempotency-key"

#: Codes Toss returns that the per-API tables leave out, with where they were seen.
_SOURCE_OF: Mapping[str, str] = {
    "ALREADY_REMOVED_BILLING_KEY": (
        f"{ERROR_CODES_URL} (billing-key deletion); measured on a billing charge with a "
        "deleted key [3rd-party]"
    ),
    "BILLING_KEY_NOT_FOUND": (
        f"{ERROR_CODES_URL} (billing-key deletion); measured on a billing charge with a "
        "deleted key [3rd-party]"
    ),
    "INVALID_CARD_LOST_OR_STOLEN": "copies of the billing-charge error table [3rd-party]",
    "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT": (
        "copies of the billing-charge error table [3rd-party]"
    ),
    "EXPIRED_PAYMENT": (
        "failure.code of an EXPIRED payment, "
        "https://docs.tosspayments.com/reference/using-api/webhook-events"
    ),
    "NOT_SUPPORTED_METHOD": (
        f"{ERROR_CODES_URL}; https://docs.tosspayments.com/guides/v2/billing/integration-api "
        "(a billing charge without a billing contract)"
    ),
    "INVALID_IDEMPOTENCY_KEY": IDEMPOTENCY_URL,
    "IDEMPOTENT_REQUEST_PROCESSING": IDEMPOTENCY_URL,
}


def _rows(
    verdict: Verdict,
    meaning: str,
    *codes: str,
    cancel: Verdict | None = None,
    read: Verdict | None = None,
) -> list[tuple[str, CodeRule]]:
    """One group of codes that share a meaning and a verdict."""
    return [
        (
            code,
            CodeRule(
                verdict,
                meaning=meaning,
                cancel=cancel,
                read=read,
                source=_SOURCE_OF.get(code, ERROR_CODES_URL),
            ),
        )
        for code in codes
    ]


def _table(*groups: list[tuple[str, CodeRule]]) -> Mapping[str, CodeRule]:
    rows: dict[str, CodeRule] = {}
    for group in groups:
        for code, rule in group:
            if code in rows:  # a code in two groups would silently take the last rule
                raise ValueError(f"{code} is classified twice")
            rows[code] = rule
    return code_table(rows)


def _declined(meaning: str, *codes: str) -> list[tuple[str, CodeRule]]:
    # A lookup cannot have been declined: on a read-only call these say only "no answer".
    return _rows(Verdict.DECLINED, meaning, *codes, read=Verdict.UNAVAILABLE)


CODE_TABLE: Mapping[str, CodeRule] = _table(
    # -- declines: the card, account or wallet refused, or the customer gave up ----------
    _declined(
        "the card issuer refused the card, or the card is unusable",
        "INVALID_REJECT_CARD",
        "INVALID_STOPPED_CARD",
        "INVALID_CARD_EXPIRATION",
        "INVALID_CARD_NUMBER",
        "INVALID_CARD_LOST_OR_STOLEN",
        "INVALID_CARD_PASSWORD",
        "INVALID_CARD_IDENTITY",
        "INVALID_CARD",
        "INVALID_CARD_COMPANY",
        "NOT_SUPPORTED_CARD_TYPE",
        "NOT_REGISTERED_CARD_COMPANY",
        "NOT_ALLOWED_POINT_USE",
        "REJECT_CARD_PAYMENT",
        "REJECT_CARD_COMPANY",
        "REJECT_ACCOUNT_PAYMENT",
        "REJECT_TOSSPAY_INVALID_ACCOUNT",
    ),
    _declined(
        "a limit of the card, the account or the customer is reached",
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        "EXCEED_MAX_PAYMENT_AMOUNT",
        "EXCEED_MAX_AMOUNT",
        "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT",
        "EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT",
        "EXCEED_MAX_MONTHLY_PAYMENT_AMOUNT",
        "EXCEED_MAX_ONE_DAY_AMOUNT",
        "EXCEED_MAX_AUTH_COUNT",
        "EXCEED_UNKNOWN_CASE",
        "EXCEEDS_TRANSFER_AMOUNT_MAXIMUM",
    ),
    _declined(
        "the instalment plan the customer picked in the payment window is not possible",
        "EXCEED_MAX_CARD_INSTALLMENT_PLAN",
        "INVALID_CARD_INSTALLMENT_PLAN",
        "INVALID_CARD_INSTALLMENT_AMOUNT",
        "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
        "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN",
        "NOT_SUPPORTED_MONTHLY_INSTALLMENT_PLAN_BELOW_AMOUNT",
        "NOT_ALLOWED_INSTALLMENT_BELOW_AMOUNT",
    ),
    _declined(
        "the customer, their account or their wallet refused, or the customer gave up",
        "INVALID_PASSWORD",
        "FDS_ERROR",
        "RESTRICTED_TRANSFER_ACCOUNT",
        "INVALID_ACCOUNT_INFO_RE_REGISTER",
        "ALREADY_CLOSE_ACCOUNT",
        "USER_ACCOUNT_ON_HOLD",
        "NOT_SUPPORTED_USD",
        "INVALID_EASY_PAY",
        "PAY_PROCESS_CANCELED",
        "PAY_PROCESS_ABORTED",
    ),
    # Toss must be confirmed within 10 minutes of the customer's authentication, after
    # which the payment is EXPIRED. (A replay of a confirm that did succeed returns its
    # first answer under the same Idempotency-Key, never this.)
    _declined(
        "the payment session expired before the confirm; the customer has to pay again",
        "NOT_FOUND_PAYMENT_SESSION",
        "EXPIRED_PAYMENT",
    ),
    _declined(
        "the stored billing key is no longer usable; the customer must register again",
        "INVALID_BILL_KEY_REQUEST",
        "INVALID_BILLING_AUTH",
        "ALREADY_REMOVED_BILLING_KEY",
        "BILLING_KEY_NOT_FOUND",
        "NOT_FOUND_BILLING",
    ),
    _declined(
        "Toss refuses this cancel (refund) by policy",
        "NOT_CANCELABLE_PAYMENT",
        "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER",
        "EXCEED_MAX_REFUND_DUE",
        "REFUND_REJECTED",
        "NOT_ALLOWED_REFUND_BANK",
        "FORBIDDEN_BANK_REFUND_REQUEST",
    ),
    # -- certainly not processed; try later (or elsewhere) ---------------------------------
    _rows(
        Verdict.UNAVAILABLE,
        "not processed: maintenance (현재 점검 중), or outside the method's or the bank's hours",
        "MAINTAINED_METHOD",
        "NOT_AVAILABLE_PAYMENT",
        "NOT_AVAILABLE_BANK",
    ),
    _rows(
        Verdict.UNAVAILABLE,
        "a merchant-wide daily or monthly refund limit: the refund stays owed and is retried",
        "EXCEED_CANCEL_LIMIT",
        "EXCEED_MAX_REFUND_AMOUNT",
    ),
    # On a cancel, Toss processes only the first of two cancels of one payment within a
    # second, so this one did not run and may be retried (refundableAmount guards against
    # cancelling twice). On a confirm or charge another request for the same payment may
    # be in flight: look up.
    _rows(
        Verdict.UNKNOWN,
        "repeated requests are not allowed; try again later",
        "FORBIDDEN_CONSECUTIVE_REQUEST",
        cancel=Verdict.UNAVAILABLE,
    ),
    # -- may have acted: resolve by lookup --------------------------------------------------
    _rows(
        Verdict.UNKNOWN,
        "already processed: our earlier request (answer lost) may be the one that did it",
        "ALREADY_PROCESSED_PAYMENT",
        "ALREADY_COMPLETED_PAYMENT",
        "DUPLICATED_ORDER_ID",
        "DUPLICATED_REQUEST",
        "ALREADY_CANCELED_PAYMENT",
        "ALREADY_REFUND_PAYMENT",
        "ALREADY_REFUNDING_PAYMENT",
    ),
    _rows(
        Verdict.UNKNOWN,
        "the cancellable balance is not what we expected: an earlier cancel may have run",
        "NOT_CANCELABLE_AMOUNT",
        "NOT_MATCHES_REFUNDABLE_AMOUNT",
    ),
    _rows(
        Verdict.UNKNOWN,
        "a temporary error raised while processing (잠시 후 다시 시도해주세요)",
        "PROVIDER_ERROR",
        "CARD_PROCESSING_ERROR",
        "UNAPPROVED_ORDER_ID",
    ),
    _rows(
        Verdict.UNKNOWN,
        "an internal error of Toss or of the card company or bank (HTTP 500)",
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_CARD_COMPANY_RESPONSE",
        "FAILED_DB_PROCESSING",
        "FAILED_METHOD_HANDLING",
        "FAILED_METHOD_HANDLING_CANCEL",
        "FAILED_REFUND_PROCESS",
        "FAILED_PARTIAL_REFUND",
        "FAILED_BILLING_AUTO_CANCEL",
        "FAILED_BILL_KEY_AUTH_CREATION",
        "FAILED_HASH_DATA_CREATION",
        "UNKNOWN_PAYMENT_ERROR",
        "COMMON_ERROR",
        "UNKNOWN_ERROR",
    ),
    _rows(
        Verdict.IN_FLIGHT,
        "the first request with this Idempotency-Key is still being processed "
        "(이전 멱등 요청이 처리중입니다); a replay with the same key returns its answer",
        "IDEMPOTENT_REQUEST_PROCESSING",
    ),
    # -- our request is wrong ---------------------------------------------------------------
    _rows(
        Verdict.INVALID,
        "a request field Toss rejects",
        "INVALID_REQUEST",
        "INVALID_REQUIRED_PARAM",
        "INVALID_ORDER_ID",
        "INVALID_ORDER_NAME",
        "INVALID_CURRENCY",
        "INVALID_CUSTOMER_KEY",
        "INVALID_PAYMENT_KEY",
        "INVALID_EMAIL",
        "INVALID_DATE",
        "INVALID_ISO_DATE_FORMAT",
        "INVALID_URL",
        "INVALID_URL_FORMAT",
        "INVALID_SUCCESS_URL",
        "INCORRECT_SUCCESS_URL_FORMAT",
        "INCORRECT_FAIL_URL_FORMAT",
        "INVALID_IDEMPOTENCY_KEY",
        "INVALID_TEST_CODE",
        "BELOW_MINIMUM_AMOUNT",
        "BELOW_ZERO_AMOUNT",
        "REQUIRED_AMOUNT",
        "NOT_MATCHES_CUSTOMER_KEY",
        "INVALID_BIRTH_DAY_FORMAT",
        "INVALID_CARD_INSTALLMENT_PLANS_WITH_MAX_AND_SINGLE",
        "EXCEED_MIN_CARD_INSTALLMENT_PLAN",
        "INVALID_FLOW_MODE_PARAMETERS",
        "INVALID_IDENTIFICATION_TYPE",
        "INVALID_AUTHORIZE_AUTH_TYPE_GIFT_CERTIFICATE",
        "NOT_SUPPORTED_CARRIER",
        "NOT_FOUND_HTTP_METHOD",
    ),
    _rows(
        Verdict.INVALID,
        "a cancel this adapter would have to shape differently",
        "NOT_ALLOWED_PARTIAL_REFUND",
        "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT",
        "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT",
        "INVALID_REFUND_AMOUNT",
    ),
    _rows(
        Verdict.INVALID,
        "a virtual-account refund needs the customer's refund account, which is not sent",
        "INVALID_REFUND_ACCOUNT_INFO",
        "INVALID_REFUND_ACCOUNT_NUMBER",
        "INVALID_BANK",
        "ACCOUNT_OWNER_CHECK_FAILED",
        "INVALID_ACCOUNT_NUMBER",
        "INVALID_ACCOUNT_NUMBER_OR_UNAVAILABLE",
        "INVALID_ACCOUNT_NOT_CORRECT_BANK",
    ),
    _rows(
        Verdict.INVALID,
        "an API this adapter does not call (virtual-account issuing, cash receipts, "
        "queries, payouts and sub-malls, BrandPay); listed so the table covers the catalogue",
        "INVALID_VIRTUAL_ACCOUNT_TYPE",
        "INVALID_VALID_HOURS_WITH_DUE_DATE_AND_SINGLE",
        "EXCEED_MAX_DUE_DATE",
        "EXCEED_MAX_VALID_HOURS",
        "REQUIRED_ACCOUNT_KEY",
        "NOT_ALLOWED_CHANGING_ACCOUNT",
        "INVALID_CASH_RECEIPT_INFO",
        "DUPLICATED_CASH_RECEIPT",
        "INVALID_PAGING_KEY",
        "EXCEED_MAX_QUERY_LIMIT",
        "INVALID_BUSINESS_NUMBER",
        "INVALID_PAYABLE_DATE",
        "NOT_ALLOWED_HOLIDAY",
        "NOT_ENOUGH_AMOUNT",
        "NOT_MATCH_PAYEE_NAME",
        "INVALID_SUBMALL_ID",
        "ALREADY_EXIST_SUBMALL",
        "NOT_FOUND_SUBMALL",
        "PAYOUT_NOT_FOUND",
        "NOT_FOUND_METHOD",
        "NOT_FOUND_METHOD_IN_GROUP",
        "NOT_FOUND_METHOD_OWNERSHIP",
    ),
    # On a confirm or cancel our paymentKey is wrong; on a lookup it is the answer (nothing
    # is held under that key or orderId *now* — whether that proves nothing moved is the
    # Router's decision, by the settle window).
    _rows(
        Verdict.INVALID,
        "no such payment (존재하지 않는 결제 정보 입니다)",
        "NOT_FOUND_PAYMENT",
        read=Verdict.NOT_FOUND,
    ),
    # Says not what is missing: a lookup cannot conclude from it that nothing is there.
    _rows(
        Verdict.INVALID,
        "some information does not exist (존재하지 않는 정보 입니다)",
        "NOT_FOUND",
        read=Verdict.UNAVAILABLE,
    ),
    # -- configuration: keys, contracts, merchant set-up -----------------------------------
    _rows(
        Verdict.CONFIGURATION,
        "the key, the contract or the merchant set-up is wrong",
        "UNAUTHORIZED_KEY",
        "INVALID_API_KEY",
        "INCORRECT_BASIC_AUTH_FORMAT",
        "INVALID_CLIENT_KEY",
        "FORBIDDEN_REQUEST",
        "INVALID_AUTHORIZE_AUTH",
        "NOT_FOUND_TERMINAL_ID",
        "INVALID_UNREGISTERED_SUBMALL",
        "NOT_REGISTERED_BUSINESS",
        "NOT_REGISTERED_SUBMALL",
        "NOT_SUPPORTED_METHOD",
        "NOT_SUPPORTED_PROCESS",
        "NOT_SUPPORTED_REFUND",
        "NOT_FOUND_MERCHANT",
        "NOT_FOUND_MERCHANT_INTEGRATION",
        "API_VERSION_UPDATE_NEEDED",
    ),
)
