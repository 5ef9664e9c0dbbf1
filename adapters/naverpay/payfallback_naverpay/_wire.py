"""Naver Pay's wire format: request forms, tolerant response models, and the code tables.

Requests are strict (a wrong type or a missing field is our bug, caught before sending).
Responses are tolerant: Naver's backward-compatibility policy adds fields and enum values
without a version change, so unknown fields are kept (``extra="allow"``) and enum-like
fields are plain strings that :func:`admission_state` / :func:`admission_type` read,
returning ``None`` for values this module does not know.

Every response, success or not, has the envelope ``{"code", "message", "body"}``; the
``code`` decides the outcome (:data:`SUCCESS` or a row of the API's table). The same code
can mean different things on different APIs (``Fail`` on apply is a refused payment; on
cancel it says nothing about whether the cancel may still land), so each API has its own
complete table of :class:`payfallback.adapter.CodeRule` rows rather than a shared one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from payfallback.adapter import CodeRule, Verdict, code_table

__all__ = [
    "APPLY_CODES",
    "CALLBACK_CODES",
    "CANCEL_CODES",
    "HISTORY_CODES",
    "PAYMENT_ID_PATTERN",
    "SUCCESS",
    "AdmissionState",
    "AdmissionType",
    "ApplyBody",
    "ApplyDetail",
    "ApplyForm",
    "CancelBody",
    "CancelForm",
    "Envelope",
    "HistoryBody",
    "HistoryQuery",
    "HistoryRow",
    "admission_state",
    "admission_type",
]

#: ``paymentId`` values are Naver's (``20170201NP1043587746``), at most 50 bytes. They
#: reach us through the customer's browser, so anything else is refused before it can
#: be put into a URL path or a form.
PAYMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,50}$")

#: The ``code`` of every successful answer (and ``resultCode`` of a completed window).
SUCCESS: Final = "Success"

_RESPONSE_FORMAT = "https://docs.pay.naver.com/docs/common/response-format"
_APPLY = "https://docs.pay.naver.com/docs/onetime-payment/payment/apply"
_CANCEL = "https://docs.pay.naver.com/docs/onetime-payment/payment/cancel"
_HISTORY = "https://docs.pay.naver.com/docs/onetime-payment/additional/payments_history"
_WINDOW = "https://docs.pay.naver.com/docs/onetime-payment/payment/payment-auth-window"

_D, _A, _U, _I, _C = (
    Verdict.DECLINED,
    Verdict.UNAVAILABLE,
    Verdict.UNKNOWN,
    Verdict.INVALID,
    Verdict.CONFIGURATION,
)


def _rows(source: str, rows: Mapping[str, tuple[Verdict, str]]) -> dict[str, CodeRule]:
    return {code: CodeRule(v, meaning, source=source) for code, (v, meaning) in rows.items()}


#: Common failure codes of the response-format page (기본 응답 형식), in every API's answers.
_COMMON = _rows(
    _RESPONSE_FORMAT,
    {
        "RequireParameter": (_I, "a required parameter is missing"),
        "InvalidParameter": (_I, "a parameter does not satisfy Naver Pay's conditions"),
    },
)
_INVALID_MERCHANT = "the merchant is not valid; check client id, secret, chain id and partner id"

#: ``POST …/v2.2/apply/payment`` (결제 승인): every documented code but :data:`SUCCESS`.
APPLY_CODES: Mapping[str, CodeRule] = code_table(
    {
        **_COMMON,
        **_rows(
            _APPLY,
            {
                # "PG, bank or other error; the detailed cause is in message and must be
                # shown to the customer": a refused payment, not a fault of ours or Naver's.
                "Fail": (_D, "the payment was refused by the card company or bank"),
                "InvalidMerchant": (_C, _INVALID_MERCHANT),
                # The approval window (10 minutes after the customer authenticated) has
                # passed: this paymentId can never be approved, and no money moved.
                "TimeExpired": (_D, "the approval window for this paymentId has expired"),
                # Our own earlier apply (or another one) is still being processed.
                "AlreadyOnGoing": (_U, "an approval for this paymentId is already in progress"),
                # Approved already, but this answer carries neither the amount nor the
                # details: the history decides.
                "AlreadyComplete": (_U, "this paymentId has already been approved"),
                "OwnerAuthFail": (_D, "the card owner's authentication failed"),
                "BankMaintenance": (_A, "the customer's charge account bank is in maintenance"),
                "NotEnoughAccountBalance": (_D, "the charge account balance is too low"),
                "MaintenanceOngoing": (_A, "Naver Pay is in maintenance"),
                "FaultCheckOngoing": (
                    _A,
                    "the card company or bank is in maintenance; the method is unavailable",
                ),
            },
        ),
    }
)

#: ``POST …/v1/cancel`` (결제 취소): every documented code but :data:`SUCCESS`.
CANCEL_CODES: Mapping[str, CodeRule] = code_table(
    {
        **_COMMON,
        **_rows(
            _CANCEL,
            {
                # "Other failure": says nothing about whether a cancel is under way, so the
                # history decides rather than a retry or a give-up.
                "Fail": (_U, "the cancel failed for an unspecified reason"),
                "InvalidMerchant": (_C, _INVALID_MERCHANT),
                "InvalidPaymentId": (_I, "Naver Pay has no payment with this paymentId"),
                # Already fully cancelled: by us (a lost answer) or from the merchant console.
                "AlreadyCanceled": (_U, "the payment is already fully cancelled"),
                # More than remains: most likely an earlier cancel of ours already landed.
                "OverRemainAmount": (_U, "the amount exceeds what remains cancellable"),
                # The previous cancel must finish first; this one was not performed.
                "PreCancelNotComplete": (_A, "an earlier cancel of this payment is unfinished"),
                "CancelDeadlineExpired": (
                    _D,
                    "the cancel deadline has passed; refund the customer outside Naver Pay",
                ),
                "TaxScopeAmtGreaterThanRemainError": (
                    _I,
                    "the taxable or tax-free amount exceeds what remains cancellable",
                ),
                "TaxScopeAmountError": (
                    _I,
                    "taxable + tax-free (+ deposit) amounts do not add up to the cancel amount",
                ),
                # doCompareRest guard: what remains differs from what we expected, the
                # signature of a replayed cancel whose first answer was lost.
                "RestAmountDiff": (_U, "the remaining amount differs from expectedRestAmount"),
                # Accepted but not finished. Not "unavailable" (it did act) and not success
                # (no money has returned yet): the history decides, never a blind retry.
                "CancelNotComplete": (
                    _U,
                    "the cancel was accepted but has not completed; the payment history decides",
                ),
                "AlreadyOnGoing": (_U, "a request for this paymentId is already in progress"),
                "MaintenanceOngoing": (_A, "Naver Pay is in maintenance; retry after it ends"),
                "FaultCheckOngoing": (_A, "the card company or bank is in maintenance"),
                "InvalidDiscountCancelCondition": (
                    _D,
                    "the instant-discount policy does not allow this cancel",
                ),
            },
        ),
    }
)

#: ``POST …/v2.2/list/history/{paymentId}`` (결제 내역 조회): every documented code but
#: :data:`SUCCESS`. Read-only, so nothing here can be "unknown": a failed inquiry is simply
#: asked again later.
HISTORY_CODES: Mapping[str, CodeRule] = code_table(
    {
        **_COMMON,
        **_rows(
            _HISTORY,
            {
                "Fail": (_A, "the history inquiry failed"),
                "InvalidMerchant": (_C, _INVALID_MERCHANT),
                "MaintenanceOngoing": (_A, "Naver Pay is in maintenance"),
            },
        ),
    }
)

#: ``resultCode`` Naver appends to ``returnUrl`` after the payment window, but
#: :data:`SUCCESS`. Only ``Success`` comes with a ``paymentId``; every other value means the
#: customer did not complete authentication, so there is nothing to approve and no money
#: moved.
CALLBACK_CODES: Mapping[str, CodeRule] = code_table(
    _rows(
        _WINDOW,
        {
            "UserCancel": (_D, "the customer cancelled in the Naver Pay window"),
            "OwnerAuthFail": (_D, "the card owner's authentication failed"),
            "paymentTimeExpire": (_D, "the payment window timed out"),
        },
    )
)


class AdmissionState(StrEnum):
    """``admissionState``: the final result of a payment or cancel attempt."""

    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class AdmissionType(StrEnum):
    """``admissionTypeCode``: what a history row records."""

    PAYMENT = "01"  # 원결제 승인건
    FULL_CANCEL = "03"  # 전체취소 건
    PARTIAL_CANCEL = "04"  # 부분취소 건


def admission_state(value: str | None) -> AdmissionState | None:
    """The known state, or ``None`` for a value Naver added after this module."""
    try:
        return AdmissionState(value) if value is not None else None
    except ValueError:
        return None


def admission_type(value: str | None) -> AdmissionType | None:
    """The known row type, or ``None`` for a value Naver added after this module."""
    try:
        return AdmissionType(value) if value is not None else None
    except ValueError:
        return None


# -- requests (strict) ------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def form(self) -> dict[str, str]:
        """The model as ``application/x-www-form-urlencoded`` fields, in wire names."""
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


_PaymentId = Annotated[str, Field(pattern=PAYMENT_ID_PATTERN.pattern)]
_Won = Annotated[int, Field(ge=0)]


class ApplyForm(_Strict):
    """Body of ``apply/payment``: the paymentId the customer authenticated."""

    paymentId: _PaymentId


class CancelForm(_Strict):
    """Body of ``v1/cancel``.

    ``doCompareRest=1`` makes Naver compare ``expectedRestAmount`` (what should remain
    *after* this cancel) with its own balance and refuse on a mismatch, so a replayed
    cancel can never take money back twice.
    """

    paymentId: _PaymentId
    cancelAmount: Annotated[int, Field(ge=1)]
    cancelReason: Annotated[str, Field(min_length=1)]
    #: 1 = buyer, 2 = merchant admin; the docs say to use 2 when unsure.
    cancelRequester: Literal["1", "2"]
    #: 과세 대상 금액: the taxable part of ``cancelAmount``.
    taxScopeAmount: _Won
    #: 면세 대상 금액: the tax-free part; the two add up to ``cancelAmount``
    #: (``TaxScopeAmountError`` otherwise).
    taxExScopeAmount: _Won
    doCompareRest: Literal[1]
    expectedRestAmount: _Won


class HistoryQuery(_Strict):
    """JSON body of ``list/history/{paymentId}`` (paging only; the id is in the path)."""

    pageNumber: Annotated[int, Field(ge=1)]
    rowsPerPage: Annotated[int, Field(ge=1)]


# -- responses (tolerant) ---------------------------------------------------------------------


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Envelope(_Tolerant):
    """Every answer: ``code`` + ``message`` + ``body``.

    ``errorCode`` / ``errorMessage`` is the shape Naver's API gateway uses when it rejects
    a call before it reaches Naver Pay (401 bad key, 429 quota); it is kept for the error
    context only, the HTTP status classifies those.
    """

    code: str | None = None
    message: str | None = None
    body: Any = None
    errorCode: str | None = None
    errorMessage: str | None = None


class ApplyDetail(_Tolerant):
    """``body.detail`` of a successful apply (the fields we read; the rest is kept)."""

    paymentId: str | None = None
    payHistId: str | None = None
    merchantPayKey: str | None = None
    merchantUserKey: str | None = None
    admissionTypeCode: str | None = None
    admissionYmdt: str | None = None
    admissionState: str | None = None
    totalPayAmount: int | None = None
    primaryPayMeans: str | None = None


class ApplyBody(_Tolerant):
    paymentId: str | None = None
    detail: ApplyDetail | None = None


class CancelBody(_Tolerant):
    """``body`` of a successful cancel: what this cancel took back, and what remains."""

    paymentId: str | None = None
    payHistId: str | None = None
    primaryPayCancelAmount: int | None = None
    npointCancelAmount: int | None = None
    giftCardCancelAmount: int | None = None
    discountCancelAmount: int | None = None
    totalRestAmount: int | None = None
    cancelYmdt: str | None = None

    def cancelled_amount(self) -> int | None:
        """Sum over the means of payment, or ``None`` if Naver reported none of them."""
        parts = (
            self.primaryPayCancelAmount,
            self.npointCancelAmount,
            self.giftCardCancelAmount,
            self.discountCancelAmount,
        )
        if all(p is None for p in parts):
            return None
        return sum(p for p in parts if p is not None)


class HistoryRow(_Tolerant):
    """One payment or cancel attempt in the history."""

    paymentId: str | None = None
    payHistId: str | None = None
    merchantPayKey: str | None = None
    admissionTypeCode: str | None = None
    admissionState: str | None = None
    admissionYmdt: str | None = None
    totalPayAmount: int | None = None


class HistoryBody(_Tolerant):
    rows: list[HistoryRow] | None = Field(default=None, alias="list")
    totalCount: int | None = None
    responseCount: int | None = None
    totalPageCount: int | None = None
    currentPageNumber: int | None = None
