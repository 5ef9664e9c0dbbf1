"""Naver Pay's wire format: request forms, tolerant response models, and the code table.

Requests are strict (a wrong type or a missing field is our bug, caught before sending).
Responses are tolerant: Naver's backward-compatibility policy adds fields and enum values
without a version change, so unknown fields are kept (``extra="allow"``) and enum-like
fields are plain strings that :func:`admission_state` / :func:`admission_type` read,
returning ``None`` for values this module does not know.

Every response, success or not, has the envelope ``{"code", "message", "body"}``; the
``code`` decides the outcome. The tables below map every documented ``code`` of each API
to one :class:`Kind`. The same code can mean different things on different APIs (``Fail``
on apply is a refused payment; on cancel it says nothing about whether the cancel may
still land), so each API has its own complete table rather than a shared one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "APPLY_CODES",
    "CALLBACK_CODES",
    "CANCEL_CODES",
    "HISTORY_CODES",
    "PAYMENT_ID_PATTERN",
    "AdmissionState",
    "AdmissionType",
    "ApplyBody",
    "ApplyDetail",
    "ApplyForm",
    "CancelBody",
    "CancelForm",
    "CodeRule",
    "Envelope",
    "HistoryBody",
    "HistoryQuery",
    "HistoryRow",
    "Kind",
    "admission_state",
    "admission_type",
]

#: ``paymentId`` values are Naver's (``20170201NP1043587746``), at most 50 bytes. They
#: reach us through the customer's browser, so anything else is refused before it can
#: be put into a URL path or a form.
PAYMENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,50}$")


class Kind(StrEnum):
    """What a Naver Pay result code means for us."""

    SUCCESS = "success"
    DECLINED = "declined"  # Naver or the customer's card/bank said no; nothing moved
    UNAVAILABLE = "unavailable"  # certainly not processed (maintenance); retry later
    UNKNOWN = "unknown"  # may have acted or already did: resolve by history lookup
    INVALID = "invalid"  # our request is wrong; nothing moved
    CONFIGURATION = "configuration"  # credentials / merchant settings are wrong


@dataclass(frozen=True, slots=True)
class CodeRule:
    """One row of a code table: the outcome class and what the code means."""

    kind: Kind
    meaning: str


def _table(rows: Mapping[str, CodeRule]) -> Mapping[str, CodeRule]:
    return MappingProxyType(dict(rows))


_S, _D, _A, _U, _I, _C = (
    Kind.SUCCESS,
    Kind.DECLINED,
    Kind.UNAVAILABLE,
    Kind.UNKNOWN,
    Kind.INVALID,
    Kind.CONFIGURATION,
)

#: Common codes of the response-format page (기본 응답 형식), in every API's answers.
_COMMON = {
    "Success": CodeRule(_S, "success"),
    "RequireParameter": CodeRule(_I, "a required parameter is missing"),
    "InvalidParameter": CodeRule(_I, "a parameter does not satisfy Naver Pay's conditions"),
}

#: ``POST …/v2.2/apply/payment`` (결제 승인).
APPLY_CODES: Mapping[str, CodeRule] = _table(
    {
        **_COMMON,
        # "PG, bank or other error; the detailed cause is in message and must be shown
        # to the customer": a refused payment, not a fault of ours or Naver's.
        "Fail": CodeRule(_D, "the payment was refused by the card company or bank"),
        "InvalidMerchant": CodeRule(
            _C, "the merchant is not valid; check client id, secret, chain id and partner id"
        ),
        # The approval window (10 minutes after the customer authenticated) has passed:
        # this paymentId can never be approved, and no money moved.
        "TimeExpired": CodeRule(_D, "the approval window for this paymentId has expired"),
        # Our own earlier apply (or another one) is still being processed.
        "AlreadyOnGoing": CodeRule(_U, "an approval for this paymentId is already in progress"),
        # Approved already, but this answer carries neither the amount nor the details.
        "AlreadyComplete": CodeRule(_U, "this paymentId has already been approved"),
        "OwnerAuthFail": CodeRule(_D, "the card owner's authentication failed"),
        "BankMaintenance": CodeRule(_A, "the customer's charge account bank is in maintenance"),
        "NotEnoughAccountBalance": CodeRule(_D, "the charge account balance is too low"),
        "MaintenanceOngoing": CodeRule(_A, "Naver Pay is in maintenance"),
        "FaultCheckOngoing": CodeRule(
            _A, "the card company or bank is in maintenance; the method is unavailable"
        ),
    }
)

#: ``POST …/v1/cancel`` (결제 취소).
CANCEL_CODES: Mapping[str, CodeRule] = _table(
    {
        **_COMMON,
        # "Other failure": says nothing about whether a cancel is under way, so the
        # history decides rather than a retry or a give-up.
        "Fail": CodeRule(_U, "the cancel failed for an unspecified reason"),
        "InvalidMerchant": CodeRule(
            _C, "the merchant is not valid; check client id, secret, chain id and partner id"
        ),
        "InvalidPaymentId": CodeRule(_I, "Naver Pay has no payment with this paymentId"),
        # Already fully cancelled: by us (a lost answer) or from the merchant console.
        "AlreadyCanceled": CodeRule(_U, "the payment is already fully cancelled"),
        # More than remains: most likely an earlier cancel of ours already landed.
        "OverRemainAmount": CodeRule(_U, "the amount exceeds what remains cancellable"),
        # The previous cancel must finish first; this one was not performed.
        "PreCancelNotComplete": CodeRule(_A, "an earlier cancel of this payment is unfinished"),
        "CancelDeadlineExpired": CodeRule(
            _D, "the cancel deadline has passed; refund the customer outside Naver Pay"
        ),
        "TaxScopeAmtGreaterThanRemainError": CodeRule(
            _I, "the taxable or tax-free amount exceeds what remains cancellable"
        ),
        "TaxScopeAmountError": CodeRule(
            _I, "taxable + tax-free (+ deposit) amounts do not add up to the cancel amount"
        ),
        # doCompareRest guard: what remains differs from what we expected, the signature
        # of a replayed cancel whose first answer was lost.
        "RestAmountDiff": CodeRule(_U, "the remaining amount differs from expectedRestAmount"),
        # Accepted but not finished; Naver says it reprocesses it automatically. Not
        # "unavailable" (it did act) and not success (no money has returned yet).
        "CancelNotComplete": CodeRule(_U, "the cancel was accepted but has not completed"),
        "AlreadyOnGoing": CodeRule(_U, "a request for this paymentId is already in progress"),
        "MaintenanceOngoing": CodeRule(_A, "Naver Pay is in maintenance; retry after it ends"),
        "FaultCheckOngoing": CodeRule(_A, "the card company or bank is in maintenance"),
        "InvalidDiscountCancelCondition": CodeRule(
            _D, "the instant-discount policy does not allow this cancel"
        ),
    }
)

#: ``POST …/v2.2/list/history/{paymentId}`` (결제 내역 조회). Read-only, so nothing here
#: can be "unknown": a failed inquiry is simply asked again later.
HISTORY_CODES: Mapping[str, CodeRule] = _table(
    {
        **_COMMON,
        "Fail": CodeRule(_A, "the history inquiry failed"),
        "InvalidMerchant": CodeRule(
            _C, "the merchant is not valid; check client id, secret, chain id and partner id"
        ),
        "MaintenanceOngoing": CodeRule(_A, "Naver Pay is in maintenance"),
    }
)

#: ``resultCode`` Naver appends to ``returnUrl`` after the payment window. Only
#: ``Success`` comes with a ``paymentId``; every other value means the customer did not
#: complete authentication, so there is nothing to approve and no money moved.
CALLBACK_CODES: Mapping[str, CodeRule] = _table(
    {
        "Success": CodeRule(_S, "the customer authenticated the payment"),
        "UserCancel": CodeRule(_D, "the customer cancelled in the Naver Pay window"),
        "OwnerAuthFail": CodeRule(_D, "the card owner's authentication failed"),
        "paymentTimeExpire": CodeRule(_D, "the payment window timed out"),
    }
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
    taxScopeAmount: _Won
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
