"""NICEPAY's wire format: hosts, request bodies, the payment object, signatures, the code table.

Request models are strict (a typo in a field name fails at build time, not at NICEPAY);
response models are tolerant (extra fields kept, unknown status values kept as raw strings),
because a new field in NICEPAY's answer must never turn a charge into an error. What the
adapter *needs* from a success body (the ``tid`` and the ``amount``) is checked in ``_ops``,
and its absence is an unknown outcome, never a guess.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

__all__ = [
    "API_HOST",
    "CANCEL_SUCCESS_CODES",
    "CODE_TABLE",
    "JS_SDK_URL",
    "SANDBOX_API_HOST",
    "SANDBOX_JS_SDK_URL",
    "SUCCESS_CODE",
    "ApproveBody",
    "AuthCallback",
    "BillingPayBody",
    "CancelBody",
    "CodeClass",
    "NetCancelBody",
    "PayStatus",
    "PaymentObject",
    "auth_signature",
    "read_body",
    "response_signature",
    "signature_matches",
]

# -- hosts (common/api.md, common/test.md) ----------------------------------------------------

API_HOST = "https://api.nicepay.co.kr"
SANDBOX_API_HOST = "https://sandbox-api.nicepay.co.kr"
#: The JS SDK of the server-approval model; the sandbox window has its own host.
JS_SDK_URL = "https://pay.nicepay.co.kr/v1/js/"
SANDBOX_JS_SDK_URL = "https://sandbox-pay.nicepay.co.kr/v1/js/"

#: ``resultCode`` of every successful call (common/code.md: "0000 : 성공 / 그외 실패").
SUCCESS_CODE = "0000"
#: Cancel answers: 2001 "취소 성공" and 2211 "환불 성공 (2001과 함께 취소 성공 처리할 것)" —
#: the manual says to treat 2211 exactly like 2001.
CANCEL_SUCCESS_CODES = frozenset({SUCCESS_CODE, "2001", "2211"})


# -- requests (strict) ------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON object NICEPAY expects: camelCase keys, optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ApproveBody(_Request):
    """``POST /v1/payments/{tid}`` (api/payment-window-server.md, 승인 요청 명세)."""

    amount: int = Field(gt=0)


class CancelBody(_Request):
    """``POST /v1/payments/{tid}/cancel`` (api/cancel.md, 취소 요청 명세).

    ``order_id`` identifies *this cancel*: NICEPAY refuses a second partial cancel with the
    same ``orderId``, which is what makes a replayed cancel safe. ``cancel_amt`` left out
    means "cancel everything that is left".
    """

    reason: str = Field(min_length=1)
    order_id: str = Field(min_length=1, max_length=64)
    cancel_amt: int | None = Field(default=None, gt=0)


class NetCancelBody(_Request):
    """``POST /v1/payments/netcancel`` (api/cancel.md, 망취소 요청 명세): only the orderId.

    The manual's curl sample spells it ``orderID``; its parameter table says ``orderId``,
    which is what we send.
    """

    order_id: str = Field(min_length=1, max_length=64)


class BillingPayBody(_Request):
    """``POST /v1/subscribe/{bid}/payments`` (api/payment-subscribe.md, 빌키승인 요청 명세)."""

    order_id: str = Field(min_length=1, max_length=64)
    amount: int = Field(gt=0)
    goods_name: str = Field(min_length=1)
    #: Installment months; 0 is a lump-sum payment. Required by NICEPAY.
    card_quota: int = Field(ge=0)
    #: "상점분담무이자 사용여부 (현재 false만 사용 가능)": only false is accepted.
    use_shop_interest: bool = False
    tax_free_amt: int | None = Field(default=None, ge=0)


# -- responses (tolerant) ---------------------------------------------------------------------


class PayStatus(StrEnum):
    """``status`` of the payment object: every documented value (api/status-transaction.md)."""

    PAID = "paid"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIAL_CANCELLED = "partialCancelled"
    EXPIRED = "expired"


class _Response(BaseModel):
    # Lax on purpose: "1004" and 1004 are the same amount on the wire; extra fields are kept.
    model_config = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel)


class CancelEntry(_Response):
    """One element of ``cancels[]``."""

    tid: str | None = None
    amount: int | None = None
    cancelled_at: str | None = None


class PaymentObject(_Response):
    """The payment object that approve, cancel, net cancel, inquiry and billing return.

    Only the fields the adapter reads are declared; the rest (card, vbank, buyer …) stay
    in ``model_extra``. ``status`` is kept raw so an undocumented value is still visible.
    """

    result_code: str | None = None
    result_msg: str | None = None
    tid: str | None = None
    cancelled_tid: str | None = None
    order_id: str | None = None
    edi_date: str | None = None
    signature: str | None = None
    status: str | None = None
    paid_at: str | None = None
    pay_method: str | None = None
    amount: int | None = None
    balance_amt: int | None = None
    currency: str | None = None
    cancels: list[CancelEntry] | None = None

    @property
    def pay_status(self) -> PayStatus | None:
        """The documented status, or None when the value is missing or undocumented."""
        try:
            return PayStatus(self.status) if self.status is not None else None
        except ValueError:
            return None


def read_body(response_json: object) -> tuple[str | None, str | None, PaymentObject | None]:
    """``(resultCode, resultMsg, payment object)`` from a decoded JSON answer.

    The code and message are read even when the rest of the body does not validate, so a
    malformed field elsewhere never hides what NICEPAY said.
    """
    if not isinstance(response_json, dict):
        return None, None, None
    code = response_json.get("resultCode")
    msg = response_json.get("resultMsg")
    try:
        body: PaymentObject | None = PaymentObject.model_validate(response_json)
    except ValidationError:
        body = None
    return (
        code if isinstance(code, str) else None,
        msg if isinstance(msg, str) else None,
        body,
    )


class AuthCallback(_Response):
    """What NICEPAY POSTs to ``returnUrl`` after the payment window (form fields, all text).

    api/payment-window-server.md, 응답 명세 (Server 승인 모델).
    """

    auth_result_code: str | None = None
    auth_result_msg: str | None = None
    tid: str | None = None
    client_id: str | None = None
    order_id: str | None = None
    amount: str | None = None
    auth_token: str | None = None
    signature: str | None = None


# -- signatures -------------------------------------------------------------------------------


def _sha256_hex(*parts: str) -> str:
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def response_signature(*, tid: str, amount: int, edi_date: str, secret_key: str) -> str:
    """``hex(sha256(tid + amount + ediDate + SecretKey))``: the payment object's ``signature``."""
    return _sha256_hex(tid, str(amount), edi_date, secret_key)


def auth_signature(*, auth_token: str, client_id: str, amount: int, secret_key: str) -> str:
    """``hex(sha256(authToken + clientId + amount + SecretKey))``: the callback's ``signature``."""
    return _sha256_hex(auth_token, client_id, str(amount), secret_key)


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time, case-insensitive comparison of two hex digests."""
    return hmac.compare_digest(expected.lower().encode(), given.strip().lower().encode())


# -- the code table ---------------------------------------------------------------------------


class CodeClass(StrEnum):
    """What a documented ``resultCode`` means for the question "could NICEPAY have acted?".

    ``_ops`` turns a class into an outcome per operation; the classes are coarse on purpose
    so that each of NICEPAY's ~480 codes needs only one decision, written down here.
    """

    #: 0000: the call succeeded.
    SUCCESS = "success"
    #: 2001/2211: a cancel succeeded. Success for cancel and void; elsewhere unexplained.
    CANCEL_SUCCESS = "cancel_success"
    #: Success codes of other products or of the legacy API (3001 card, 4000 transfer,
    #: F200 billing …). The new API answers 0000; whether these can still appear is not
    #: stated, so on a money-moving call they are an unknown outcome that a lookup settles.
    OTHER_SUCCESS = "other_success"
    #: The card, bank, carrier or customer said no. Nothing moved.
    DECLINED = "declined"
    #: NICEPAY or a partner could not take the request (outage, rate limit, "try later")
    #: before anything was processed. Nothing moved.
    UNAVAILABLE = "unavailable"
    #: Failed part-way (DB, messaging with a card company or bank, "API 지연처리"): the
    #: payment may have been made. Resolve by lookup or net cancel.
    UNKNOWN = "unknown"
    #: Duplicate orderId / tid, "approval already exists", "already cancelled": an earlier
    #: request may have succeeded. Resolve by lookup, never by another attempt.
    DUPLICATE = "duplicate"
    #: No such transaction, order or billing key.
    NOT_FOUND = "not_found"
    #: Our request is wrong (field, amount, installment, cancel rules).
    INVALID = "invalid"
    #: Keys, MID, contract options, IP allow-list: the integration is wrong.
    CONFIGURATION = "configuration"


_S = CodeClass.SUCCESS
_CS = CodeClass.CANCEL_SUCCESS
_OS = CodeClass.OTHER_SUCCESS
_D = CodeClass.DECLINED
_UA = CodeClass.UNAVAILABLE
_UK = CodeClass.UNKNOWN
_DUP = CodeClass.DUPLICATE
_NF = CodeClass.NOT_FOUND
_IV = CodeClass.INVALID
_CF = CodeClass.CONFIGURATION

#: Every code of common/code.md "API 응답코드", in the manual's order. Where the manual gives
#: a code two meanings (2011, 2012, 2032, C002) the class fits both or the one our calls
#: can meet; see the comment on each.
CODE_TABLE: dict[str, CodeClass] = {
    # card (3xxx)
    "3001": _OS,  # card payment success (legacy)
    "3011": _D,  # card number error
    "3012": _CF,  # card merchant info unconfirmed
    "3013": _CF,  # card merchant not opened
    "3014": _CF,  # card merchant info error
    "3021": _D,  # expiry error
    "3022": _IV,  # installment months error
    "3023": _D,  # installment limit exceeded (the card's limit)
    "3024": _IV,  # installment minimum amount (50,000)
    "3031": _D,  # not an interest-free card
    "3032": _IV,  # interest-free not allowed for these months
    "3033": _CF,  # not an interest-free merchant
    "3034": _CF,  # interest-free type not configured
    "3041": _IV,  # card approvals under 1,000 KRW not possible
    "3051": _D,  # merchant not registered for foreign cards: the customer's card can't be used
    "3052": _IV,  # currency code error
    "3053": _D,  # unverifiable foreign card
    "3054": _UA,  # exchange-rate conversion error (NICEPAY side, before approval)
    "3055": _IV,  # dollar approval not possible with authentication
    "3056": _D,  # domestic card cannot be approved in dollars
    "3057": _D,  # card cannot be authenticated
    "3061": _CF,  # KB internet-safe-payment merchant
    "3062": _UK,  # approval number error: arises around an approval that may exist
    "3071": _CF,  # not an acquiring-request merchant
    "3072": _IV,  # acquiring-request TID mismatch
    "3073": _IV,  # already acquired
    "3081": _D,  # card balance error
    "3091": _D,  # affiliated card not usable at this merchant
    # "카드사 실패 응답": the card company answered with a refusal. The reference lists it
    # among transient candidates; an answer from the issuer is a decline, and nothing moved.
    "3095": _D,
    # bank transfer (40xx)
    "4000": _OS,  # bank transfer success (legacy)
    "4001": _D,  # KFTC (bank network) error answer: the transfer was refused
    "4002": _D,  # the customer's bank is not served
    # 4003-4007: mismatches found while matching the bank's reply: the withdrawal may
    # have happened.
    "4003": _UK,
    "4004": _UK,
    "4005": _UK,
    "4006": _UK,
    "4007": _UK,
    "4008": _UA,  # bank system down
    # virtual account (41xx)
    "4100": _OS,  # virtual account issued (legacy)
    "4110": _OS,  # deposit received (legacy)
    "4120": _OS,  # over/under-payment check registered
    "4101": _IV,
    "4102": _IV,
    "4103": _IV,
    "4104": _IV,
    "4105": _CF,
    "4106": _CF,
    "4107": _IV,
    "4108": _CF,
    "4109": _UA,  # account awaiting deposit, use another: nothing issued, try again
    "4111": _CF,
    "4112": _IV,
    "4113": _IV,
    "4114": _IV,
    "4115": _IV,
    "4116": _UA,  # numbering attempts exceeded, "잠시후 재시도 요망"
    "4117": _UA,  # issuing failed
    "4118": _IV,
    "4119": _NF,
    "4121": _IV,
    "4122": _IV,
    "4123": _IV,
    "4124": _DUP,  # deposit already processed
    "4125": _CF,
    "4126": _CF,
    "4127": _CF,
    "4141": _IV,
    "4142": _CF,
    "4143": _CF,
    "4145": _CF,
    # cash receipts (70xx): not issued by this adapter, mapped all the same
    "7001": _OS,
    "7002": _IV,
    "7003": _DUP,
    "7004": _UK,  # receipt cancel failed: the payment cancel itself may have gone through
    "7005": _IV,
    "7006": _IV,
    "7007": _IV,
    "7008": _CF,
    "7009": _IV,
    "7010": _UK,  # VAN did not answer after the request went out
    "7011": _IV,
    "7012": _IV,
    "7013": _IV,
    "7014": _IV,
    "7015": _IV,
    "7041": _IV,
    "7042": _IV,
    # mobile (A0xx, A56x)
    "A000": _OS,  # mobile payment success (legacy)
    "A001": _D,  # mobile payment failed
    "A002": _IV,
    "A003": _IV,
    "A004": _IV,
    "A005": _IV,
    "A006": _IV,
    "A041": _IV,
    "A564": _CF,
    "A565": _CF,
    "A566": _CF,
    "A567": _CF,
    "A568": _CF,
    # general
    "0000": _S,
    "1534": _IV,  # partial cancel not possible
    "1615": _IV,  # amount components do not add up
    "2000": _UK,  # DB error
    "2011": _IV,  # "CINO 미존재" / "취소 금액 불일치": both our request
    "2012": _NF,  # "주문번호없음" / "취소 해당거래 없음": both "no such transaction"
    "2032": _IV,  # "가맹점주문번호길이이상" / "취소금액이 취소가능금액보다 큼": both our request
    "2151": _CF,  # merchant suspended
    "2152": _CF,  # merchant not registered
    "2154": _UA,  # partner status unconfirmed
    "2156": _DUP,  # duplicate transaction request
    "2157": _CF,  # input method not allowed for this merchant
    "2158": _CF,  # input method registered twice
    "2159": _UA,  # the bank is down
    "2201": _DUP,  # an approval already exists
    # billing keys (Fxxx)
    "F100": _OS,  # bill key created
    "F101": _OS,  # billing info deleted
    "F102": _IV,
    "F103": _IV,
    "F104": _UK,  # error while checking authentication info, mid-process
    "F105": _UA,  # OCSP error, before processing
    "F106": _UK,  # DB errors while writing the transaction
    "F107": _UK,
    "F108": _UK,
    "F109": _UK,
    "F110": _UK,
    "F111": _IV,
    "F112": _D,  # invalid card number
    "F113": _D,  # card holder check failed
    "F114": _IV,
    "F115": _CF,
    "F116": _CF,
    "F117": _CF,
    "F118": _D,  # card not usable, use another card
    "F200": _OS,  # billing approval success (legacy wording)
    "F201": _IV,  # card already registered (bill key issuing)
    # escrow (C/D/E): not used by this adapter
    "C000": _OS,
    # "에스크로 가맹점 아님" / "카드사 인증 실패": the second is what a card payment meets;
    # both leave the payment unmade.
    "C002": _D,
    "C003": _IV,
    "C004": _NF,
    "C005": _IV,
    "C006": _NF,
    "C007": _IV,
    "D000": _OS,
    "D002": _CF,
    "D003": _IV,
    "D004": _NF,
    "D005": _IV,
    "D006": _NF,
    "D007": _IV,
    "D008": _NF,
    "D009": _IV,
    "D010": _DUP,
    "D011": _IV,
    "E000": _OS,
    "E002": _CF,
    "E003": _IV,
    "E004": _NF,
    "E005": _IV,
    "E006": _NF,
    "E007": _IV,
    "E008": _NF,
    "E009": _IV,
    "E010": _DUP,
    "E011": _IV,
    # cancel (20xx)
    "2001": _CS,  # cancel success
    "2211": _CS,  # refund success, "2001과 함께 취소 성공 처리할 것"
    "2003": _D,  # cancel failed: NICEPAY refused it
    "2010": _IV,
    "2013": _DUP,  # already cancelled: maybe by our own earlier request
    "2014": _IV,  # not cancellable
    "2015": _DUP,  # cancel already requested
    "2016": _IV,  # cancel period over
    "2017": _IV,
    "2018": _IV,
    "2019": _IV,
    "2020": _IV,  # net-cancel window (1 h) passed: use /cancel
    # "매입전취소" / "매입후취소" read like descriptions of a cancel that happened; not
    # documented as success, so: may have acted.
    "2021": _UK,
    "2022": _UK,
    "2023": _IV,
    "2024": _CF,  # cancel password mismatch
    "2025": _CF,  # cancel password missing
    "2026": _IV,
    "2027": _IV,
    "2028": _IV,
    "2029": _IV,
    "2030": _IV,
    "2031": _IV,
    "2033": _IV,
    "2052": _IV,
    # API (Axxx)
    "A101": _CF,  # SIGN DATA verification failed: the secret key is wrong
    "A102": _IV,
    "A106": _IV,
    "A107": _IV,
    "A108": _IV,
    "A109": _CF,
    # "외부 연동결과 실패 (외부 에러메세지 그대로 전달)": a partner's refusal passed through.
    "A110": _D,
    "A111": _UK,  # mobile carrier communication error
    "A112": _IV,
    "A113": _IV,
    "A114": _CF,
    "A115": _IV,
    "A116": _IV,
    "A117": _IV,
    "A118": _NF,
    "A119": _NF,
    "A120": _NF,
    "A121": _IV,
    "A122": _CF,  # another merchant's transaction: keys of another store (sandbox vs live)
    "A123": _IV,  # approved amount differs from the authenticated amount
    "A124": _NF,
    "A125": _NF,
    "A126": _NF,
    "A127": _DUP,  # duplicate orderId: an earlier request with it may have succeeded
    "A128": _CF,
    "A144": _UK,  # notifying the merchant failed: the payment may have been made
    "A145": _IV,
    "A146": _IV,
    "A147": _IV,
    "A148": _IV,
    "A149": _IV,
    "A150": _CF,
    "A201": _UK,  # internal generation errors: where in the flow is not documented
    "A202": _UK,
    "A203": _UK,
    "A204": _CF,  # decrypting what we sent failed: key mismatch
    "A205": _UK,
    "A210": _NF,  # no authentication request on record
    "A211": _CF,
    "A212": _IV,
    "A213": _UA,  # API initialisation error, before processing
    "A214": _NF,
    "A215": _NF,
    "A216": _NF,
    "A217": _NF,
    "A218": _NF,
    "A219": _CF,
    "A220": _CF,
    "A221": _CF,
    "A222": _IV,
    "A223": _NF,
    "A224": _CF,  # IP not allowed
    "A225": _DUP,  # duplicate TID
    "A226": _UK,  # messaging error
    "A227": _IV,
    "A241": _D,
    "A242": _IV,
    "A243": _NF,
    "A244": _UK,  # updating the order failed
    "A245": _D,  # authentication timed out: the customer has to pay again
    "A246": _UA,  # excessive access: rate limited
    "A247": _IV,
    "A248": _CF,
    "A249": _IV,
    "A250": _D,  # phone number tampered
    "A251": _NF,
    "A252": _UK,
    "A253": _UA,  # bill key generation failed (issuing, not charging)
    "A254": _UK,  # partner's answer invalid
    "A255": _CF,
    "A256": _UA,  # "잠시후 재시도 바랍니다"
    "A257": _UK,
    "A258": _UA,
    "A299": _UK,  # API delayed processing
    "A300": _UA,
    "A301": _CF,
    "A302": _CF,
    "A303": _CF,
    "A304": _UK,
    "A305": _CF,
    "A306": _UK,
    "A307": _UA,
    "A400": _UA,  # building the message for an external institution failed: not sent
    "A401": _UK,
    "A402": _UK,
    "A403": _UK,
    "9000": _IV,
    "9001": _IV,
    "9002": _UK,  # exception
    "S999": _UK,  # other error
    "S001": _IV,
    "S002": _UK,  # processed, no answer template
    "T001": _UK,  # T001-T003: receiving the partner's answer failed
    "T002": _UK,
    "T003": _UK,
    "T004": _UA,  # T004-T005: building the request failed, nothing sent
    "T005": _UA,
    "X001": _UA,
    "X002": _UA,  # socket connect failed: nothing sent
    "X003": _UK,  # receive failed
    "X004": _UK,  # send failed part-way
    # legacy request validation (Vxxx)
    "V005": _IV,
    "V101": _IV,
    "V102": _IV,
    "V103": _IV,
    "V104": _IV,
    "V201": _CF,
    "V202": _CF,
    "V203": _IV,
    "V204": _CF,
    "V205": _IV,
    "V301": _IV,
    "V302": _IV,
    "V303": _IV,
    "V304": _IV,
    "V401": _IV,
    "V402": _IV,
    "V501": _IV,
    "V502": _IV,
    "V503": _IV,
    "V504": _IV,
    "V505": _IV,
    "V506": _IV,
    "V507": _IV,
    "V508": _IV,
    "V509": _IV,
    "V510": _IV,
    "V511": _IV,
    "V512": _IV,
    "V513": _IV,
    "V601": _IV,
    "V602": _IV,
    "V701": _IV,
    "VA01": _IV,
    "VA02": _IV,
    "VA03": _IV,
    "VA04": _IV,
    "VA05": _IV,
    "VA09": _IV,
    "VA10": _IV,
    "VB02": _IV,
    "VB05": _IV,
    "VB09": _IV,
    "VB10": _IV,
    "V801": _IV,
    "V802": _IV,
    "V803": _IV,
    # payment window / checkout (Pxxx)
    "P001": _CF,
    "P002": _UA,
    "P003": _UA,
    "P004": _UA,
    "P005": _CF,
    "P006": _CF,
    "P007": _IV,
    "P008": _IV,
    "P009": _IV,
    "P010": _IV,
    "P011": _IV,
    "P012": _IV,
    "P013": _IV,
    "P014": _CF,
    "P015": _DUP,  # orderId already exists
    "P016": _CF,
    "P017": _IV,
    "P018": _IV,
    "P019": _NF,
    "P020": _IV,
    "P021": _D,  # card not supported
    "P022": _IV,
    "P023": _IV,
    "P024": _IV,
    "P025": _IV,
    "P026": _UK,  # approval server request error
    "P027": _UK,  # remote failure (MCI)
    "P028": _IV,
    "P029": _IV,
    "P030": _IV,
    "P031": _IV,
    "P032": _IV,
    "P033": _IV,
    "P034": _IV,
    "P035": _UK,  # net-cancel request error: whether the net cancel happened is unknown
    "P036": _IV,
    "P037": _IV,
    "P038": _IV,
    "P039": _IV,
    "P040": _IV,
    "P041": _IV,
    "P042": _D,  # session expired: the customer starts again
    "P043": _IV,
    "P044": _UK,  # updating the approval state failed
    "P101": _UK,
    "P102": _UK,
    "P103": _UK,
    "P091": _D,  # the customer cancelled the payment request
    # API (Uxxx)
    "U100": _IV,
    "U101": _CF,  # Basic credentials not decodable
    "U102": _CF,
    "U103": _CF,  # Basic vs Bearer: the key was issued for the other scheme
    "U104": _CF,
    "U105": _IV,
    "U106": _IV,
    "U107": _NF,
    "U108": _CF,
    "U109": _CF,
    "U110": _IV,
    "U111": _NF,
    "U112": _DUP,  # orderId already used
    "U113": _IV,
    "U114": _DUP,  # TID already used
    "U115": _NF,  # BID deleted
    "U116": _CF,
    "U117": _CF,
    "U118": _CF,
    "U119": _IV,
    "U120": _IV,
    "U121": _NF,
    "U122": _NF,
    "U123": _IV,
    "U124": _IV,
    "U125": _IV,
    "U126": _NF,
    "U127": _IV,
    "U128": _IV,  # partial cancel only in production (the sandbox has none)
    "U129": _IV,
    "U130": _IV,
    "U131": _IV,
    "U132": _IV,
    "U301": _IV,
    "U302": _UK,  # processed, answer too long
    "U303": _UK,  # API delayed processing
    "U304": _CF,  # Basic authentication failed
    "U305": _CF,  # Bearer authentication failed
    "U306": _CF,
    "U307": _UA,  # error while checking credentials, before processing
    "U308": _IV,
    "U309": _NF,
    "U310": _UK,
    "U311": _D,  # authentication cancelled or failed
    "U312": _CF,
    "U313": _CF,
    "U314": _UK,
    "U315": _CF,  # IP not allowed
    "U316": _CF,
    "U317": _UA,
    "U318": _IV,
    "U319": _IV,
    "U320": _IV,
    "U321": _IV,
    "U322": _UA,
    "U323": _UA,
    "U324": _DUP,
    "U325": _IV,
    "U501": _UK,  # external messaging error
    "U502": _IV,
    # "망취소 요청" / "결제에 실패하였습니다.(망취소 처리)": NICEPAY reversed the payment
    # itself. Whether the reversal settled is what a lookup tells; until then, unknown.
    "U503": _UK,
    "U504": _UK,
    "U506": _UK,
    "U507": _UK,
    "U508": _UA,  # socket connect failed: nothing sent
    "U509": _UA,
    "U700": _IV,
    # JS SDK / window (C, I, M, N, S, V, W)
    "C001": _D,  # ISP authentication cancelled or failed
    "I001": _UA,
    "I002": _D,  # the customer cancelled
    "I003": _DUP,  # re-submitted an authenticated transaction
    "I004": _D,
    "I006": _UA,
    "I007": _IV,
    "M001": _CF,
    "M002": _CF,
    "N001": _IV,
    "N002": _UK,
    "N003": _UA,
    "S004": _CF,
    "S005": _CF,
    "V001": _CF,
    "V003": _UA,  # excessive access, try again
    "V004": _IV,
    "W000": _OS,
    "W001": _IV,
    "W002": _IV,
    # webhook management (U33x)
    "U332": _IV,
    "U333": _IV,
    "U334": _UA,
    "U335": _UA,
    "U336": _UA,
    "U337": _IV,
    "U338": _IV,
}
