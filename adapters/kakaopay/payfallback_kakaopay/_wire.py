"""Kakao Pay on the wire: request bodies (strict), answers (tolerant), and the code table.

Request models refuse unknown fields and wrong types, so a body we send is exactly the
documented one. Answer models accept extra fields and unknown enum values (Kakao adds
fields without notice), but every value we rely on is optional here and checked by the
operations module: a success answer that lacks the tid or the amount is an unknown
outcome, never a guess.

The code table (:data:`ERROR_CODES`, :data:`METHOD_RESULT_CODES`, merged in :data:`CODES`)
maps every code we could confirm to one :class:`payfallback.adapter.Verdict`;
:data:`STATUS_STATES` maps every documented order status. Anything not in the tables is
decided by the adapter kit's classifier: ``OutcomeUnknown`` on a money-moving call, the
HTTP status otherwise. See the package docstring for the sources and for what could not be
confirmed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from payfallback.adapter import CodeRule, Verdict, code_table
from payfallback.provider import TxnState

__all__ = [
    "CODES",
    "ERROR_CODES",
    "KST",
    "METHOD_RESULT_CODES",
    "STATUS_STATES",
    "Amount",
    "ApproveAnswer",
    "ApproveBody",
    "CancelAnswer",
    "CancelBody",
    "ErrorAnswer",
    "KakaoStatus",
    "OrderAnswer",
    "OrderBody",
    "ReadyAnswer",
    "ReadyBody",
    "SubscriptionBody",
    "parse_kst",
]

#: Kakao Pay timestamps (``approved_at``, ``created_at``) are Korean local time without an
#: offset. A fixed +09:00 is exact: Korea has no daylight saving time.
KST: Final = timezone(timedelta(hours=9), "KST")


class KakaoStatus(StrEnum):
    """``status`` of the order inquiry (주문 조회), all thirteen documented values."""

    READY = "READY"  # ready was called
    SEND_TMS = "SEND_TMS"  # payment request message sent to KakaoTalk
    OPEN_PAYMENT = "OPEN_PAYMENT"  # the customer opened the Kakao Pay payment screen
    SELECT_METHOD = "SELECT_METHOD"  # method chosen, authentication done
    ARS_WAITING = "ARS_WAITING"  # ARS authentication in progress
    AUTH_PASSWORD = "AUTH_PASSWORD"  # password authentication done; approve may be called
    ISSUED_SID = "ISSUED_SID"  # subscription key issued without a charge
    SUCCESS_PAYMENT = "SUCCESS_PAYMENT"  # paid
    PART_CANCEL_PAYMENT = "PART_CANCEL_PAYMENT"  # partly cancelled
    CANCEL_PAYMENT = "CANCEL_PAYMENT"  # fully cancelled (possibly by several partial cancels)
    FAIL_AUTH_PASSWORD = "FAIL_AUTH_PASSWORD"  # the customer failed password authentication
    QUIT_PAYMENT = "QUIT_PAYMENT"  # the customer abandoned the payment
    FAIL_PAYMENT = "FAIL_PAYMENT"  # approval failed


# -- requests: strict ------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


_Id = Annotated[str, Field(min_length=1, max_length=100)]
_Url = Annotated[str, Field(min_length=1, max_length=255)]
_Positive = Annotated[int, Field(gt=0)]
_NonNegative = Annotated[int, Field(ge=0)]


class ReadyBody(_Body):
    """``POST …/payment/ready`` (결제 준비)."""

    cid: _Id
    cid_secret: str | None = None
    partner_order_id: _Id
    partner_user_id: _Id
    item_name: _Id
    quantity: _Positive
    total_amount: _Positive
    tax_free_amount: _NonNegative
    approval_url: _Url
    cancel_url: _Url
    fail_url: _Url


class ApproveBody(_Body):
    """``POST …/payment/approve`` (결제 승인); ids must equal the ones sent to ready."""

    cid: _Id
    cid_secret: str | None = None
    tid: _Id
    partner_order_id: _Id
    partner_user_id: _Id
    pg_token: _Id
    #: Optional; Kakao refuses the approval when it differs from the amount at ready.
    total_amount: _Positive | None = None


class OrderBody(_Body):
    """``POST …/payment/order`` (주문 조회)."""

    cid: _Id
    cid_secret: str | None = None
    tid: _Id


class CancelBody(_Body):
    """``POST …/payment/cancel`` (결제 취소), full or partial."""

    cid: _Id
    cid_secret: str | None = None
    tid: _Id
    cancel_amount: _Positive
    cancel_tax_free_amount: _NonNegative
    #: What is cancellable before this cancel (this one included); Kakao refuses when it
    #: differs from its own figure, so a replayed cancel can never cancel twice.
    cancel_available_amount: _NonNegative
    payload: Annotated[str, Field(max_length=200)] | None = None


class SubscriptionBody(_Body):
    """``POST …/payment/subscription`` (정기 결제): a charge with a stored ``sid``."""

    cid: _Id
    cid_secret: str | None = None
    sid: _Id
    partner_order_id: _Id
    partner_user_id: _Id
    item_name: _Id
    quantity: _Positive
    total_amount: _Positive
    tax_free_amount: _NonNegative


# -- answers: tolerant -----------------------------------------------------------------------


class _Answer(BaseModel):
    # Lax mode and extra="allow": Kakao adds fields over time; only what we read is typed.
    model_config = ConfigDict(extra="allow", frozen=True)


class Amount(_Answer):
    """Kakao's amount object. Strict ints: a money figure that is not a plain integer is
    malformed, and a malformed success answer is an unknown outcome, not a number."""

    total: StrictInt | None = None
    tax_free: StrictInt | None = None
    vat: StrictInt | None = None
    point: StrictInt | None = None
    discount: StrictInt | None = None
    green_deposit: StrictInt | None = None


class ReadyAnswer(_Answer):
    tid: str | None = None
    next_redirect_app_url: str | None = None
    next_redirect_mobile_url: str | None = None
    next_redirect_pc_url: str | None = None
    android_app_scheme: str | None = None
    ios_app_scheme: str | None = None
    created_at: str | None = None


class ApproveAnswer(_Answer):
    """Answer of approve and of a subscription charge (same shape)."""

    aid: str | None = None
    tid: str | None = None
    cid: str | None = None
    sid: str | None = None
    partner_order_id: str | None = None
    partner_user_id: str | None = None
    payment_method_type: str | None = None
    item_name: str | None = None
    quantity: int | None = None
    amount: Amount | None = None
    created_at: str | None = None
    approved_at: str | None = None


class CancelAnswer(_Answer):
    aid: str | None = None
    tid: str | None = None
    cid: str | None = None
    status: str | None = None
    amount: Amount | None = None
    #: What this call cancelled.
    approved_cancel_amount: Amount | None = None
    #: What all cancels so far add up to.
    canceled_amount: Amount | None = None
    #: What is still cancellable.
    cancel_available_amount: Amount | None = None
    canceled_at: str | None = None


class OrderAnswer(_Answer):
    tid: str | None = None
    cid: str | None = None
    #: A :class:`KakaoStatus` value; kept as text so an undocumented value parses.
    status: str | None = None
    partner_order_id: str | None = None
    partner_user_id: str | None = None
    payment_method_type: str | None = None
    amount: Amount | None = None
    canceled_amount: Amount | None = None
    cancel_available_amount: Amount | None = None
    approved_at: str | None = None
    canceled_at: str | None = None
    payment_action_details: list[dict[str, Any]] | None = None


class ErrorExtras(_Answer):
    method_result_code: str | int | None = None
    method_result_message: str | None = None


class ErrorAnswer(_Answer):
    """Error body of either generation.

    Current API: ``{"error_code": -780, "error_message": "…", "extras": {…}}``;
    legacy ``kapi.kakao.com``: ``{"code": -780, "msg": "…", "extras": {…}}``.
    """

    error_code: int | str | None = None
    error_message: str | None = None
    code: int | str | None = None
    msg: str | None = None
    extras: ErrorExtras | None = None

    @property
    def code_text(self) -> str | None:
        value = self.error_code if self.error_code is not None else self.code
        return None if value is None else str(value).strip() or None

    @property
    def message_text(self) -> str | None:
        return self.error_message or self.msg

    @property
    def method_code(self) -> str | None:
        if self.extras is None or self.extras.method_result_code is None:
            return None
        return str(self.extras.method_result_code).strip() or None

    @property
    def method_message(self) -> str | None:
        return None if self.extras is None else self.extras.method_result_message


def parse_kst(value: str | None) -> datetime | None:
    """A Kakao timestamp (``2016-11-15T21:20:47``) as an aware datetime, or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=KST)


# -- the code table --------------------------------------------------------------------------

_KAKAO_COMMON = "https://developers.kakao.com/docs/latest/ko/rest-api/error-code (공통) [official]"
_THIRD_PARTY_780 = "error bodies seen in independent client test suites [3rd-party]"
_THIRD_PARTY_METHOD = "method_result_code seen in client code [3rd-party]"

#: ``error_code`` (current API) / ``code`` (legacy), as text. Without ``read``, a read-only
#: call (ready, lookup) reads UNKNOWN as UNAVAILABLE: nothing can have moved.
ERROR_CODES: Final[Mapping[str, CodeRule]] = code_table(
    {
        # Kakao platform common codes. Documented for the kapi.kakao.com generation; the
        # current API shares its negative-number scheme (-780 appears in both), so the same
        # meanings are applied to both.
        "-1": CodeRule(
            # Kakao says "retry", but a fault during processing may follow the charge.
            Verdict.UNKNOWN,
            "internal error while the server was processing",
            source=_KAKAO_COMMON,
        ),
        "-2": CodeRule(
            Verdict.INVALID,
            "a required parameter is missing or a value is out of range",
            source=_KAKAO_COMMON,
        ),
        "-3": CodeRule(
            Verdict.CONFIGURATION,
            "a feature this API needs is not enabled for the app",
            source=_KAKAO_COMMON,
        ),
        "-4": CodeRule(
            Verdict.CONFIGURATION, "the account is blocked or restricted", source=_KAKAO_COMMON
        ),
        "-5": CodeRule(
            Verdict.CONFIGURATION, "the app has no permission for this API", source=_KAKAO_COMMON
        ),
        "-6": CodeRule(
            Verdict.INVALID, "the requested action is not allowed", source=_KAKAO_COMMON
        ),
        "-7": CodeRule(
            # "or an internal problem": not provably before processing on a money call.
            Verdict.UNKNOWN,
            "service maintenance or an internal problem",
            source=_KAKAO_COMMON,
        ),
        "-8": CodeRule(Verdict.CONFIGURATION, "invalid request header", source=_KAKAO_COMMON),
        "-9": CodeRule(
            Verdict.CONFIGURATION, "this API has been discontinued", source=_KAKAO_COMMON
        ),
        "-10": CodeRule(
            # A quota is checked before the request is processed.
            Verdict.UNAVAILABLE,
            "request quota exceeded",
            source=_KAKAO_COMMON,
        ),
        "-11": CodeRule(
            Verdict.CONFIGURATION,
            "daily or monthly spending limit of a paid API exceeded",
            source=_KAKAO_COMMON,
        ),
        "-12": CodeRule(
            Verdict.CONFIGURATION,
            "the Kakao Developers app or developer account is suspended",
            source=_KAKAO_COMMON,
        ),
        "-401": CodeRule(
            Verdict.CONFIGURATION,
            "invalid key, or the app does not match the registered app",
            source=_KAKAO_COMMON,
        ),
        "-603": CodeRule(
            Verdict.UNKNOWN,
            "timeout inside the Kakao platform while processing",
            source=_KAKAO_COMMON,
        ),
        "-903": CodeRule(
            Verdict.CONFIGURATION,
            "the key belongs to an unregistered developer",
            source=_KAKAO_COMMON,
        ),
        "-9798": CodeRule(
            # Announced maintenance (HTTP 503): the request was not processed.
            Verdict.UNAVAILABLE,
            "service under maintenance",
            source=_KAKAO_COMMON,
        ),
        # Kakao Pay's own family. Only -780 could be confirmed; the full -7xx table on
        # developers.kakaopay.com was not readable anywhere, so other -7xx codes stay
        # unmapped (OutcomeUnknown on a money-moving call).
        "-780": CodeRule(
            # The reason is in extras.method_result_code (METHOD_RESULT_CODES). Without a
            # known one we cannot tell "declined" from "still in progress"; a lookup can
            # (FAIL_PAYMENT vs SUCCESS_PAYMENT), so ask it rather than guess.
            Verdict.UNKNOWN,
            "approval failure",
            source=_THIRD_PARTY_780,
        ),
    }
)

#: ``extras.method_result_code``: what the payment method itself answered. Takes
#: precedence over ``error_code`` because it is the more specific of the two.
METHOD_RESULT_CODES: Final[Mapping[str, CodeRule]] = code_table(
    {
        "USER_LOCKED": CodeRule(
            # The transaction in progress may be our own earlier, lost request on the
            # same tid or sid: it may complete. Resolve by lookup, never by a new charge.
            # On ready (read-only) nothing was created: a clean "come back later".
            Verdict.UNKNOWN,
            "a transaction is already in progress for this customer",
            source=_THIRD_PARTY_780,
        ),
        "LACK_BALANCE": CodeRule(
            Verdict.DECLINED, "insufficient balance", source=_THIRD_PARTY_METHOD
        ),
        "8326": CodeRule(Verdict.DECLINED, "payment limit exceeded", source=_THIRD_PARTY_METHOD),
    }
)

#: The one table the adapter kit classifies with: error codes (``-…``) and method result
#: codes (names, ``8326``) never share a key. Which of the two an answer is looked up by
#: is the adapter's quirk (the method result first).
CODES: Final[Mapping[str, CodeRule]] = code_table({**ERROR_CODES, **METHOD_RESULT_CODES})

#: Order-inquiry status → what it tells about money. Every documented value is here.
#: Source: the status table of the order inquiry (주문 조회, "결제 상태 값") on
#: https://developers.kakaopay.com/docs/payment/online/common and
#: https://developers.kakao.com/docs/restapi/kakaopay-api — read through client copies that
#: quote it verbatim (e.g. ``SELECT_METHOD`` "결제 수단 선택, 인증 완료", ``AUTH_PASSWORD``
#: "비밀번호 인증 완료", ``FAIL_PAYMENT`` "결제 승인 실패") [official via copy; likely].
STATUS_STATES: Final[Mapping[KakaoStatus, TxnState]] = MappingProxyType(
    {
        # Before the customer finished at Kakao Pay: nothing can have moved yet (money
        # moves only when the merchant approves with a pg_token, which Kakao issues only
        # once the customer has authenticated), and the customer may still finish or
        # walk away.
        KakaoStatus.READY: TxnState.AWAITING_CUSTOMER,
        KakaoStatus.SEND_TMS: TxnState.AWAITING_CUSTOMER,
        KakaoStatus.OPEN_PAYMENT: TxnState.AWAITING_CUSTOMER,
        KakaoStatus.ARS_WAITING: TxnState.AWAITING_CUSTOMER,
        # The customer has authenticated ("결제 수단 선택, 인증 완료" / "비밀번호 인증
        # 완료"); only the merchant's approve is missing. Kakao sends the customer to
        # approval_url with the pg_token once the method is chosen, so that approve may be
        # in flight right now (it is exactly what a lost approve looks like): "ask
        # again", never "waiting for the customer" and certainly not "not paid".
        KakaoStatus.SELECT_METHOD: TxnState.IN_PROGRESS,
        KakaoStatus.AUTH_PASSWORD: TxnState.IN_PROGRESS,
        # A subscription key was issued and nothing was charged ("정기 결제 시 SID만 발급
        # 한 경우"). Terminal for the tid: nothing moved and nothing can move on it.
        KakaoStatus.ISSUED_SID: TxnState.NOT_PAID,
        KakaoStatus.SUCCESS_PAYMENT: TxnState.PAID,
        # Still (partly) paid: the money is held; `cancelled` carries the cancelled part.
        KakaoStatus.PART_CANCEL_PAYMENT: TxnState.PAID,
        KakaoStatus.CANCEL_PAYMENT: TxnState.CANCELLED,
        # The documented final failures: the provider's own record that this tid moved
        # no money (the proof RECORD).
        KakaoStatus.FAIL_AUTH_PASSWORD: TxnState.NOT_PAID,
        KakaoStatus.QUIT_PAYMENT: TxnState.NOT_PAID,
        KakaoStatus.FAIL_PAYMENT: TxnState.NOT_PAID,
    }
)
