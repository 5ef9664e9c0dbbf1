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
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from payfallback.adapter import CodeRule, Verdict, code_table

__all__ = [
    "API_HOST",
    "CANCEL_SUCCESS_CODES",
    "CODES_SOURCE",
    "CODE_HINTS",
    "CODE_TABLE",
    "JS_SDK_URL",
    "SANDBOX_API_HOST",
    "SANDBOX_JS_SDK_URL",
    "SUCCESS_CODE",
    "ApproveBody",
    "AuthCallback",
    "BillingPayBody",
    "CancelBody",
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
    means "cancel everything that is left". ``tax_free_amt`` is "취소금액중 면세공급가액":
    the tax-free part of this cancel.
    """

    reason: str = Field(min_length=1)
    order_id: str = Field(min_length=1, max_length=64)
    cancel_amt: int | None = Field(default=None, gt=0)
    tax_free_amt: int | None = Field(default=None, ge=0)


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
    #: The last cancel's time ("부분취소인경우, 가장 마지막건의 취소 시간"), or "0".
    cancelled_at: str | None = None
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

#: Where every code and its meaning was read: the manual's "API 응답코드" table.
CODES_SOURCE = (
    "https://github.com/nicepayments/nicepay-manual/blob/main/common/code.md#api-응답코드"
)

_D = Verdict.DECLINED
_UA = Verdict.UNAVAILABLE
_UK = Verdict.UNKNOWN
_NF = Verdict.NOT_FOUND
_IV = Verdict.INVALID
_CF = Verdict.CONFIGURATION


def _rule(verdict: Verdict, meaning: str) -> CodeRule:
    """One documented code. A decline answering a lookup (no payment object) says nothing
    about the transaction: the inquiry failed, ask again (``read`` = UNAVAILABLE)."""
    read = Verdict.UNAVAILABLE if verdict is Verdict.DECLINED else None
    return CodeRule(verdict, meaning, read=read, source=CODES_SOURCE)


def _success(meaning: str) -> CodeRule:
    """A success code. The adapter reads 0000 (and 2001/2211 on a cancel) *before* the
    table, together with the payment object; a success code that reaches the table came
    with an HTTP error, without a readable payment object, or on another call (3001, F200,
    W000 … are success codes of other products or of the legacy API, and whether they can
    still appear is not stated): the call may have acted, so it is an unknown outcome that
    a lookup settles, never success."""
    return CodeRule(Verdict.UNKNOWN, meaning, source=CODES_SOURCE)


def _duplicate(meaning: str) -> CodeRule:
    """Duplicate orderId / tid, "approval already exists", "already cancelled": an earlier
    request may have succeeded. An unknown outcome settled by lookup, never a failure to
    reroute on."""
    return CodeRule(Verdict.UNKNOWN, meaning, source=CODES_SOURCE)


#: Every code of common/code.md "API 응답코드", in the manual's order, with the manual's
#: own text as its meaning. Where the manual gives a code two meanings (2011, 2012, 2032,
#: C002) both are kept and the verdict fits both or the one our calls can meet; see the
#: comment on each. The verdicts are coarse on purpose: each of NICEPAY's ~480 codes needs
#: one decision, written down here. DECLINED: the card, bank, carrier or customer said no.
#: UNAVAILABLE: NICEPAY or a partner could not take the request before anything was
#: processed. UNKNOWN: failed part-way (DB, messaging with a card company or bank, "API
#: 지연처리"), a duplicate, or a success code out of place: the payment may have been made.
#: NOT_FOUND: no such transaction, order or billing key. INVALID: our request is wrong.
#: CONFIGURATION: keys, MID, contract options, IP allow-list.
CODE_TABLE: Mapping[str, CodeRule] = code_table(
    {
        # card (3xxx)
        "3001": _success("카드 결제 성공"),  # card payment success (legacy)
        "3011": _rule(_D, "카드번호 오류"),  # card number error
        "3012": _rule(_CF, "카드가맹점 정보 미확인"),  # card merchant info unconfirmed
        "3013": _rule(_CF, "카드 가맹점 개시 안됨"),  # card merchant not opened
        "3014": _rule(_CF, "카드가맹점 정보 오류"),  # card merchant info error
        "3021": _rule(_D, "유효기간 오류"),  # expiry error
        "3022": _rule(_IV, "할부개월오류"),  # installment months error
        "3023": _rule(_D, "할부개월 한도 초과"),  # installment limit exceeded (the card's limit)
        "3024": _rule(_IV, "할부 최소금액 오류(50000미만)"),  # installment minimum amount (50,000)
        "3031": _rule(_D, "무이자할부 카드 아님"),  # not an interest-free card
        "3032": _rule(_IV, "무이자할부 불가 개월수"),  # interest-free not allowed for these months
        "3033": _rule(_CF, "무이자할부 가맹점 아님"),  # not an interest-free merchant
        "3034": _rule(_CF, "무이자할부 구분 미설정"),  # interest-free type not configured
        # 3041: card approvals under 1,000 KRW not possible
        "3041": _rule(_IV, "금액 오류(1000원 미만 신용카드 승인 불가)"),
        # 3051: merchant not registered for foreign cards: the customer's card can't be used
        "3051": _rule(_D, "해외카드 미등록 가맹점"),
        "3052": _rule(_IV, "통화코드 오류"),  # currency code error
        "3053": _rule(_D, "확인 불가 해외카드"),  # unverifiable foreign card
        # 3054: exchange-rate conversion error (NICEPAY side, before approval)
        "3054": _rule(_UA, "환률전환오류"),
        "3055": _rule(
            _IV, "인증시 달러승인 불가"
        ),  # dollar approval not possible with authentication
        "3056": _rule(_D, "국내카드 달러승인불가"),  # domestic card cannot be approved in dollars
        "3057": _rule(_D, "인증 불가카드"),  # card cannot be authenticated
        "3061": _rule(
            _CF, "국민카드 인터넷안전결제 적용 가맹점"
        ),  # KB internet-safe-payment merchant
        # 3062: approval number error: arises around an approval that may exist
        "3062": _rule(_UK, "신용카드 승인번호 오류"),
        "3071": _rule(_CF, "매입요청 가맹점 아님"),  # not an acquiring-request merchant
        "3072": _rule(_IV, "매입요청 TID 정보 불일치"),  # acquiring-request TID mismatch
        "3073": _rule(_IV, "기매입 거래"),  # already acquired
        "3081": _rule(_D, "카드 잔액 값 오류"),  # card balance error
        "3091": _rule(
            _D, "제휴카드 사용불가 가맹점"
        ),  # affiliated card not usable at this merchant
        # "카드사 실패 응답": the card company answered with a refusal. The reference lists it
        # among transient candidates; an answer from the issuer is a decline, and nothing moved.
        "3095": _rule(_D, "카드사 실패 응답"),
        # bank transfer (40xx)
        "4000": _success("계좌이체 결제 성공"),  # bank transfer success (legacy)
        # 4001: KFTC (bank network) error answer: the transfer was refused
        "4001": _rule(_D, "금결원오류응답"),
        "4002": _rule(_D, "회원사 서비스 불가 은행"),  # the customer's bank is not served
        # 4003-4007: mismatches found while matching the bank's reply: the withdrawal may
        # have happened.
        "4003": _rule(_UK, "출금일자 불일치"),
        "4004": _rule(_UK, "출금요청금액 불일치"),
        "4005": _rule(_UK, "거래번호(TID) 불일치"),
        "4006": _rule(_UK, "회신 정보 불일치"),
        "4007": _rule(_UK, "계좌이체 승인번호 오류"),
        "4008": _rule(_UA, "은행 시스템 서비스 중단"),  # bank system down
        # virtual account (41xx)
        "4100": _success("가상계좌 발급 성공"),  # virtual account issued (legacy)
        "4110": _success("가상계좌 입금 성공"),  # deposit received (legacy)
        "4120": _success("가상계좌 과오납체크 등록 성공"),  # over/under-payment check registered
        "4101": _rule(_IV, "가상계좌 최대거래금액 초과"),
        "4102": _rule(_IV, "가상계좌 입금예정일 오류"),
        "4103": _rule(_IV, "가상계좌 입금예정시간 오류"),
        "4104": _rule(_IV, "가상계좌 정보 오류"),
        "4105": _rule(_CF, "가상계좌 벌크계좌 사용불가.(건별계좌 사용 가맹점)"),
        "4106": _rule(_CF, "가상계좌 벌크계좌 사용불가.(벌크계좌 사용 가맹점)"),
        "4107": _rule(_IV, "가상계좌 계좌번호 미입력 오류"),
        "4108": _rule(_CF, "가상계좌 Pool 가맹점 미등록 오류"),
        # 4109: account awaiting deposit, use another: nothing issued, try again
        "4109": _rule(_UA, "해당 계좌는 입금대기상태(다른 계좌 사용요망)"),
        "4111": _rule(_CF, "가상계좌 Pool 가맹점 계좌형태 설정 오류"),
        "4112": _rule(_IV, "벌크계좌의 경우 장바구니 개수를 10개 이내로 제한"),
        "4113": _rule(_IV, "장바구니 상점주문번호(MOID) 포맷 오류 (MID(10)+YYMMDD(6)+일련번호(4))"),
        "4114": _rule(
            _IV, "장바구니 상점주문번호(MOID) 포맷 오류 (YYMMDD(6)+일련번호(max_size 14))"
        ),
        "4115": _rule(_IV, "해당 계좌번호는 6개월 이내 재사용 금지"),
        # 4116: numbering attempts exceeded, "잠시후 재시도 요망"
        "4116": _rule(_UA, "가상계좌 계좌번호 채번시도 횟수초과 오류(잠시후 재시도 요망)"),
        "4117": _rule(_UA, "가상계좌 발급 실패"),  # issuing failed
        "4118": _rule(_IV, "계좌번호 사용중지 상태"),
        "4119": _rule(_NF, "가상계좌 채번내역 미존재 오류"),
        "4121": _rule(_IV, "가상계좌 과오납체크 등록 실패"),
        "4122": _rule(_IV, "가상계좌 입금요청 금액 불일치 오류"),
        "4123": _rule(_IV, "가상계좌 채번취소(환불) 상태이므로 입금처리 실패"),
        "4124": _duplicate("가상계좌 입금내역 기처리 완료"),  # deposit already processed
        "4125": _rule(_CF, "가상계좌 입금만료 제한 설정오류(기준정보)"),
        "4126": _rule(_CF, "가상계좌 CPID 설정 오류"),
        "4127": _rule(_CF, "가상계좌 CPID 미설정 오류"),
        "4141": _rule(_IV, "금액오류(1원 이하 이체불가)"),
        "4142": _rule(_CF, "가상계좌 과오납체크 미사용 가맹점"),
        "4143": _rule(_CF, "가상계좌 과오납체크 미등록 오류"),
        "4145": _rule(_CF, "예금주명 수정이 불가능한 MID"),
        # cash receipts (70xx): not issued by this adapter, mapped all the same
        "7001": _success("현금영수증 처리 성공"),
        "7002": _rule(_IV, "현금영수증 종류오류"),
        "7003": _duplicate("현금영수증 중복발급"),
        # 7004: receipt cancel failed: the payment cancel itself may have gone through
        "7004": _rule(_UK, "현금영수증 취소오류"),
        "7005": _rule(_IV, "현금영수증 부가가치세 오류"),
        "7006": _rule(_IV, "현금영수증 최대개수 초과"),
        "7007": _rule(_IV, "현금영수증 요청개수 입력 오류"),
        "7008": _rule(_CF, "현금영수증 서브몰 발행 미등록 업체"),
        "7009": _rule(_IV, "현금영수증 처리 지불수단이 아닙니다"),
        "7010": _rule(_UK, "VAN응답실패"),  # VAN did not answer after the request went out
        "7011": _rule(_IV, "현금영수증 미발행 요청입니다"),
        "7012": _rule(_IV, "현금영수증 Identity 번호 오류"),
        "7013": _rule(_IV, "현금영수증 요청구분 값 오류(1:소득공제, 2:지출증빙)"),
        "7014": _rule(_IV, "현금영수증 서브몰 사업자번호로 발행시 필수값 누락"),
        "7015": _rule(_IV, "현금영수증 취소시 원승인번호 또는 원거래일자 누락"),
        "7041": _rule(_IV, "금액오류(0원 이하 발행불가)"),
        "7042": _rule(_IV, "현금영수증 최대금액 초과오류"),
        # mobile (A0xx, A56x)
        "A000": _success("휴대폰결제 처리 성공"),  # mobile payment success (legacy)
        "A001": _rule(_D, "휴대폰결제 처리 실패"),  # mobile payment failed
        "A002": _rule(_IV, "필수입력값(거래키) 누락"),
        "A003": _rule(_IV, "필수입력값(이통사구분) 누락"),
        "A004": _rule(_IV, "필수입력값(SMS승인번호) 누락"),
        "A005": _rule(_IV, "필수입력값(업체TID) 누락"),
        "A006": _rule(_IV, "필수입력값(휴대폰번호) 누락"),
        "A041": _rule(_IV, "결제금액 오류"),
        "A564": _rule(_CF, "휴대폰결제ID설정 오류"),
        "A565": _rule(_CF, "휴대폰결제ID미설정 오류"),
        "A566": _rule(_CF, "휴대폰결제사 설정 오류"),
        "A567": _rule(_CF, "상품구분코드 설정 오류"),
        "A568": _rule(_CF, "서비스구분코드 설정 오류"),
        # general
        "0000": _success("결제성공"),
        "1534": _rule(_IV, "부분취소 불가능 거래"),  # partial cancel not possible
        # 1615: amount components do not add up
        "1615": _rule(_IV, "거래금액 합계오류(공급가액,부가세,봉사료,면세금액 합계)"),
        "2000": _rule(_UK, "DB오류"),  # DB error
        # 2011: "CINO 미존재" / "취소 금액 불일치": both our request
        "2011": _rule(_IV, "CINO미존재 / 취소 금액 불일치"),
        # 2012: "주문번호없음" / "취소 해당거래 없음": both "no such transaction"
        "2012": _rule(_NF, "주문번호없음 / 취소 해당거래 없음"),
        # 2032: "가맹점주문번호길이이상" / "취소금액이 취소가능금액보다 큼": both our request
        "2032": _rule(_IV, "가맹점주문번호길이이상 / 취소금액이 취소가능금액보다 큼"),
        "2151": _rule(_CF, "거래정지 가맹점"),  # merchant suspended
        "2152": _rule(_CF, "미등록가맹점"),  # merchant not registered
        "2154": _rule(_UA, "제휴사상태미확인"),  # partner status unconfirmed
        "2156": _duplicate("중복등록된거래요청"),  # duplicate transaction request
        "2157": _rule(_CF, "허용되지않는입력방식"),  # input method not allowed for this merchant
        "2158": _rule(_CF, "중복등록된입력방식"),  # input method registered twice
        "2159": _rule(_UA, "해당은행장애"),  # the bank is down
        "2201": _duplicate("기승인존재"),  # an approval already exists
        # billing keys (Fxxx)
        "F100": _success("빌키가 정상적으로 생성되었습니다."),  # bill key created
        "F101": _success("빌링 정보가 정상적으로 삭제되었습니다."),  # billing info deleted
        "F102": _rule(_IV, "인증서 검증 오류"),
        "F103": _rule(_IV, "PKCS7 전자서명 검증 실패"),
        # F104: error while checking authentication info, mid-process
        "F104": _rule(_UK, "인증정보 확인중 오류가 발생하였습니다"),
        "F105": _rule(_UA, "OCSP인증 중 오류가 발생하였습니다"),  # OCSP error, before processing
        # F106: DB errors while writing the transaction
        "F106": _rule(_UK, "DB 처리중 오류가 발생하였습니다 (TB_TRANS_REQ)"),
        "F107": _rule(_UK, "DB 처리중 오류가 발생하였습니다 (TB_TRANS)"),
        "F108": _rule(_UK, "DB 처리중 오류가 발생하였습니다 (TB_TRANS_HISTORY)"),
        "F109": _rule(_UK, "DB 처리중 오류가 발생하였습니다 (TB_BILL_MASTER)"),
        "F110": _rule(_UK, "빌키발급 처리중 오류가 발생하였습니다"),
        "F111": _rule(_IV, "PKCS7 전자서명 메시지가 존재하지 않습니다"),
        # F112: invalid card number
        "F112": _rule(_D, "유효하지않은 카드번호를 입력하셨습니다 (card_bin 없음)"),
        "F113": _rule(
            _D, "본인의 신용카드 확인중 오류가 발생하였습니다"
        ),  # card holder check failed
        "F114": _rule(_IV, "인증서가 유효하지 않습니다"),
        "F115": _rule(_CF, "빌키 발급 불가 가맹점입니다.(중지)"),
        "F116": _rule(_CF, "빌키 발급 불가 가맹점입니다.(해지)"),
        "F117": _rule(_CF, "빌링 미사용 가맹점입니다"),
        # F118: card not usable, use another card
        "F118": _rule(_D, "해당카드는 사용이 불가능 합니다 타사카드를 이용해주세요"),
        # F200: billing approval success (legacy wording)
        "F200": _success("빌링 요청승인이 정상적으로 이루어졌습니다"),
        # F201: card already registered (bill key issuing)
        "F201": _rule(_IV, "이미 등록된 카드 입니다(빌키발급실패)"),
        # escrow (C/D/E): not used by this adapter
        "C000": _success("에스크로배송등록 성공"),
        # "에스크로 가맹점 아님" / "카드사 인증 실패": the second is what a card payment meets;
        # both leave the payment unmade.
        "C002": _rule(_D, "에스크로 가맹점 아님 / 카드사 인증 실패"),
        "C003": _rule(_IV, "에스크로 거래만 배송등록 가능"),
        "C004": _rule(_NF, "에스크로결제 신청내역 미존재"),
        "C005": _rule(_IV, "에스크로배송등록 불가상태"),
        "C006": _rule(_NF, "거래내역이 존재하지 않음"),
        "C007": _rule(_IV, "취소된 거래는 배송등록 불가"),
        "D000": _success("에스크로구매결정 성공"),
        "D002": _rule(_CF, "에스크로 가맹점 아님"),
        "D003": _rule(_IV, "에스크로 거래만 구매결정 가능"),
        "D004": _rule(_NF, "에스크로결제 신청내역 미존재"),
        "D005": _rule(_IV, "에스크로구매결정 불가상태"),
        "D006": _rule(_NF, "거래내역이 존재하지 않음"),
        "D007": _rule(_IV, "고객고유번호 미입력"),
        "D008": _rule(_NF, "거래요청내역이 존재하지 않음"),
        "D009": _rule(_IV, "고객고유번호 검증 실패"),
        "D010": _duplicate("구매결정 이미 처리됨"),
        "D011": _rule(_IV, "취소된 거래는 구매결정 불가"),
        "E000": _success("에스크로구매거절 성공"),
        "E002": _rule(_CF, "에스크로 가맹점 아님"),
        "E003": _rule(_IV, "에스크로 거래만 구매거절 가능"),
        "E004": _rule(_NF, "에스크로결제 신청내역 미존재"),
        "E005": _rule(_IV, "에스크로구매거절 불가상태"),
        "E006": _rule(_NF, "거래내역이 존재하지 않음"),
        "E007": _rule(_IV, "고객고유번호 미입력"),
        "E008": _rule(_NF, "거래요청내역이 존재하지 않음"),
        "E009": _rule(_IV, "고객고유번호 검증 실패"),
        "E010": _duplicate("구매거절 이미 처리됨"),
        "E011": _rule(_IV, "취소된 거래는 구매거절 불가"),
        # cancel (20xx)
        "2001": _success("취소 성공"),  # cancel success
        # 2211: refund success, "2001과 함께 취소 성공 처리할 것"
        "2211": _success("환불 성공 (2001과 함께 취소 성공 처리할 것)"),
        "2003": _rule(_D, "취소 실패"),  # cancel failed: NICEPAY refused it
        "2010": _rule(_IV, "취소 요청금액 0원 이하"),
        "2013": _duplicate("취소 완료 거래"),  # already cancelled: maybe by our own earlier request
        "2014": _rule(_IV, "취소 불가능 거래"),  # not cancellable
        "2015": _duplicate("기 취소 요청"),  # cancel already requested
        "2016": _rule(_IV, "취소 기한 초과"),  # cancel period over
        "2017": _rule(_IV, "취소 불가 회원사"),
        "2018": _rule(_IV, "신용카드 매입후 취소 불가능 가맹점"),
        "2019": _rule(_IV, "타 회원사 거래 취소 불가"),
        "2020": _rule(
            _IV, "망상 취소 허용시간 초과"
        ),  # net-cancel window (1 h) passed: use /cancel
        # "매입전취소" / "매입후취소" read like descriptions of a cancel that happened; not
        # documented as success, so: may have acted.
        "2021": _rule(_UK, "매입전취소"),
        "2022": _rule(_UK, "매입후취소"),
        "2023": _rule(_IV, "취소 한도 초과"),
        "2024": _rule(_CF, "취소패스워드 불일치"),  # cancel password mismatch
        "2025": _rule(_CF, "취소패스워드 미 입력"),  # cancel password missing
        "2026": _rule(_IV, "입금액보다 취소금액이 큽니다."),
        "2027": _rule(_IV, "에스크로 거래는 구매 또는 구매거절 시 취소가능"),
        "2028": _rule(_IV, "부분취소 불가능 가맹점"),
        "2029": _rule(_IV, "부분취소 불가능 결제수단"),
        "2030": _rule(_IV, "해당결제수단 부분취소 불가"),
        "2031": _rule(_IV, "전체금액취소 불가"),
        "2033": _rule(_IV, "부분취소 불가능금액 전체취소 이용바람"),
        "2052": _rule(_IV, "에스크로 부분취소 불가."),
        # API (Axxx)
        # A101: SIGN DATA verification failed: the secret key is wrong
        "A101": _rule(_CF, "SIGN DATA 검증에 실패하였습니다"),
        "A102": _rule(_IV, '"타입이 맞지않는 파라미터명 명시" + 은(는) 알 수 없는 TYPE 입니다'),
        "A106": _rule(_IV, "날짜 형식이 올바르지 않습니다"),
        "A107": _rule(_IV, "입금예정일이 지났습니다"),
        "A108": _rule(_IV, "입금예정일을 오늘 이전 날짜로 설정할 수 없습니다"),
        "A109": _rule(_CF, "요청한 MID의 설정 정보가 없습니다"),
        # "외부 연동결과 실패 (외부 에러메세지 그대로 전달)": a partner's refusal passed through.
        "A110": _rule(_D, "외부 연동결과 실패에 대한 코드(외부 에러메세지 그대로 전달)"),
        "A111": _rule(_UK, "다날 휴대폰 통신 오류입니다"),  # mobile carrier communication error
        "A112": _rule(_IV, "비정상적인 경로로 접속되었습니다"),
        "A113": _rule(_IV, "결제 금액이 최소 금액보다 적습니다"),
        "A114": _rule(_CF, "상점 MID가 유효하지 않습니다"),
        "A115": _rule(_IV, "TID가 유효하지 않습니다"),
        "A116": _rule(_IV, "요청 금액이 올바르지 않습니다"),
        "A117": _rule(_IV, "필수입력항목이 누락되었습니다"),
        "A118": _rule(_NF, "조회 결과데이터 없음"),
        "A119": _rule(_NF, "일반 무이자 이벤트 조회 결과 없음"),
        "A120": _rule(_NF, "부분 무이자 이벤트 조회 결과 없음"),
        "A121": _rule(_IV, "정의되지 않은 카드코드 입니다"),
        # A122: another merchant's transaction: keys of another store (sandbox vs live)
        "A122": _rule(_CF, "타 상점 거래 처리 불가(MID 불일치)"),
        # A123: approved amount differs from the authenticated amount
        "A123": _rule(_IV, "거래금액 불일치(인증된 금액과 승인요청 금액 불일치)"),
        "A124": _rule(_NF, "해당 BID가 존재하지 않습니다"),
        "A125": _rule(_NF, "BID가 유효하지 않습니다"),
        "A126": _rule(_NF, "이미 삭제된 빌키이거나 존재하지 않은 빌키입니다"),
        # A127: duplicate orderId: an earlier request with it may have succeeded
        "A127": _duplicate("주문번호 중복 오류"),
        "A128": _rule(_CF, "키인 가맹점 아닙니다"),
        # A144: notifying the merchant failed: the payment may have been made
        "A144": _rule(_UK, "가맹점 결과 통보에 실패하였습니다"),
        "A145": _rule(_IV, "외화 결제는 결제수단 지정하여 이용 가능 합니다"),
        "A146": _rule(_IV, "외화 결제 불가한 결제수단 입니다"),
        "A147": _rule(_IV, "필드 길이가 초과되었습니다"),
        "A148": _rule(_IV, "빌링 승인은 별도 API 이용 바랍니다"),
        "A149": _rule(_IV, "빌링 승인만 가능한 API 입니다.(일반결제는 별도 API이용)"),
        "A150": _rule(_CF, "ARS 이용 가맹점이 아닙니다"),
        # A201: internal generation errors: where in the flow is not documented
        "A201": _rule(_UK, "PID 생성이 누락되었습니다"),
        "A202": _rule(_UK, "결과코드 생성이 누락되었습니다"),
        "A203": _rule(_UK, "결과메시지 생성이 누락되었습니다"),
        # A204: decrypting what we sent failed: key mismatch
        "A204": _rule(_CF, "전문 복호화 오류가 발생하였습니다"),
        "A205": _rule(_UK, "전문 암호화 오류가 발생하였습니다"),
        "A210": _rule(
            _NF, "인증 요청내역이 존재하지 않습니다"
        ),  # no authentication request on record
        "A211": _rule(_CF, "해쉬값 검증에 실패하였습니다"),
        "A212": _rule(_IV, "잘못된 데이터 형식입니다"),
        "A213": _rule(_UA, "API 초기화 오류"),  # API initialisation error, before processing
        "A214": _rule(_NF, "해당하는 카드거래가 없습니다"),
        "A215": _rule(_NF, "해당하는 핸드폰거래가 없습니다"),
        "A216": _rule(_NF, "해당하는 계좌이체거래가 없습니다"),
        "A217": _rule(_NF, "해당하는 가상계좌거래가 없습니다"),
        "A218": _rule(_NF, "해당하는 전자상품권거래가 없습니다"),
        "A219": _rule(_CF, "환율정보 설정 오류 입니다"),
        "A220": _rule(_CF, "설정된 환율 정보가 없습니다"),
        "A221": _rule(_CF, "노티 수신정보 없음"),
        "A222": _rule(_IV, "카드코드가 일치하지 않습니다"),
        "A223": _rule(_NF, "billKey 정보를 찾을 수 없습니다"),
        "A224": _rule(_CF, "허용되지 않은 IP입니다"),  # IP not allowed
        "A225": _duplicate("TID 중복 오류"),  # duplicate TID
        "A226": _rule(_UK, "전문통신 과정에서 오류가 발생하였습니다"),  # messaging error
        "A227": _rule(_IV, "필드명 중복 발생"),
        "A241": _rule(_D, "VISA3D 인증을 이용할 수 없는 카드 입니다"),
        "A242": _rule(_IV, "정의되지 않은 지불수단 입니다"),
        "A243": _rule(_NF, "주문정보가 존재하지 않습니다"),
        "A244": _rule(_UK, "주문내역 갱신에 실패하였습니다"),  # updating the order failed
        # A245: authentication timed out: the customer has to pay again
        "A245": _rule(_D, "인증 시간이 초과 되었습니다"),
        "A246": _rule(_UA, "비정상 과다접속으로 인한 오류입니다"),  # excessive access: rate limited
        "A247": _rule(_IV, "정의되지 않은 통화코드 입니다"),
        "A248": _rule(_CF, "사용할 수 없는 화폐 단위 입니다.(계약정보 확인필요)"),
        "A249": _rule(_IV, "주문정보저장 실패(ORDER_DATA 최대 길이 초과)"),
        # A250: phone number tampered
        "A250": _rule(_D, "휴대폰번호 변조 오류(요청 번호와 인증완료 번호 상이)"),
        "A251": _rule(_NF, "거래내역이 존재하지 않습니다."),
        "A252": _rule(_UK, "Signature 생성에 실패하였습니다."),
        # A253: bill key generation failed (issuing, not charging)
        "A253": _rule(_UA, "빌키(BID) 생성에 실패하였습니다."),
        "A254": _rule(_UK, "제휴사 응답전문이 유효하지 않습니다."),  # partner's answer invalid
        "A255": _rule(_CF, "타 상점 빌키(BID) 삭제 불가."),
        "A256": _rule(
            _UA, "ARS인증번호생성실패. 잠시후 재시도 바랍니다."
        ),  # "잠시후 재시도 바랍니다"
        "A257": _rule(_UK, "주문정보 저장에 실패하였습니다."),
        "A258": _rule(_UA, "SMS 발송에 실패하였습니다."),
        "A299": _rule(_UK, "API 지연처리 발생."),  # API delayed processing
        "A300": _rule(_UA, "기준정보 조회오류."),
        "A301": _rule(_CF, "가맹점키 조회 오류입니다."),
        "A302": _rule(_CF, "기준정보상 필수 설정 정보가 없습니다."),
        "A303": _rule(_CF, "기준정보 CPID 설정 정보가 없습니다."),
        "A304": _rule(_UK, "DB테이블 INSERT 오류발생."),
        "A305": _rule(_CF, "가맹점번호 기준정보 미설정 오류."),
        "A306": _rule(_UK, "DB테이블 UPDATE 실패."),
        "A307": _rule(_UA, "기준정보 조회 결과 2행 이상 오류"),
        # A400: building the message for an external institution failed: not sent
        "A400": _rule(_UA, "대외기관 전문생성에 실패하였습니다."),
        "A401": _rule(_UK, "대외계 전문통신 과정에서 오류가 발생하였습니다."),
        "A402": _rule(_UK, "DB트랜잭션 처리에 실패하였습니다."),
        "A403": _rule(_UK, "대외기관 응답 전문이 올바르지 않습니다."),
        "9000": _rule(_IV, '"누락된 필드명" + 필드값이 누락되었습니다.'),
        "9001": _rule(_IV, "필드 길이가 잘못되었습니다."),
        "9002": _rule(_UK, 'Try-Catch-Exception:"Exception 내용"'),  # exception
        "S999": _rule(_UK, "기타오류가 발생하였습니다."),  # other error
        "S001": _rule(_IV, "요청템플릿이 존재하지 않습니다."),
        "S002": _rule(_UK, "응답템플릿이 존재하지 않습니다."),  # processed, no answer template
        # T001: T001-T003: receiving the partner's answer failed
        "T001": _rule(_UK, "수신메시지 인코딩 중 예외가 발생하였습니다"),
        "T002": _rule(_UK, "비정상적인 수신 전문입니다"),
        "T003": _rule(_UK, "수신데이터 파싱 중 예외가 발생하였습니다"),
        # T004: T004-T005: building the request failed, nothing sent
        "T004": _rule(_UA, "요청 전문의 헤더부 생성 중 오류가 발생하였습니다"),
        "T005": _rule(_UA, "요청 전문의 바디부 생성 중 오류가 발생하였습니다"),
        "X001": _rule(_UA, "서버 도메인명이 잘못 설정되었습니다"),
        # X002: socket connect failed: nothing sent
        "X002": _rule(_UA, "서버로 소켓 연결 중 오류가 발생하였습니다"),
        "X003": _rule(_UK, "전문 수신 중 오류가 발생하였습니다"),  # receive failed
        "X004": _rule(_UK, "전문 송신 중 오류가 발생하였습니다"),  # send failed part-way
        # legacy request validation (Vxxx)
        "V005": _rule(_IV, "지원하지 않는 지불수단입니다"),
        "V101": _rule(_IV, "암호화 플래그 미설정 오류입니다"),
        "V102": _rule(_IV, "서비스모드를 설정하지 않았습니다"),
        "V103": _rule(_IV, "지불수단을 설정하지 않았습니다"),
        "V104": _rule(_IV, "상품개수 미설정 오류입니다"),
        "V201": _rule(_CF, "상점ID 미설정 오류입니다"),
        "V202": _rule(_CF, "LicenseKey 미설정 오류입니다"),
        "V203": _rule(_IV, "통화구분 미설정 오류입니다"),
        "V204": _rule(_CF, "MID 미설정 오류입니다"),
        "V205": _rule(_IV, "MallIP 미설정 오류입니다"),
        "V301": _rule(_IV, "구매자이름 미설정 오류입니다"),
        "V302": _rule(_IV, "구매자인증번호 미설정 오류입니다"),
        "V303": _rule(_IV, "구매자연락처 미설정 오류입니다"),
        "V304": _rule(_IV, "구매자메일주소 미설정 오류입니다"),
        "V401": _rule(_IV, "상품명 미설정 오류입니다"),
        "V402": _rule(_IV, "상품금액 미설정 오류입니다"),
        "V501": _rule(_IV, "카드형태 미설정 오류입니다"),
        "V502": _rule(_IV, "카드구분 미설정 오류입니다"),
        "V503": _rule(_IV, "카드코드 미설정 오류입니다"),
        "V504": _rule(_IV, "카드번호 미설정 오류입니다"),
        "V505": _rule(_IV, "카드무이자여부 미설정 오류입니다"),
        "V506": _rule(_IV, "카드인증구분 미설정 오류입니다"),
        "V507": _rule(_IV, "카드형태 설정 오류입니다"),
        "V508": _rule(_IV, "카드형태 허용하지 않는 값을 설정하였습니다"),
        "V509": _rule(_IV, "카드구분 허용하지 않는 값을 설정하였습니다"),
        "V510": _rule(_IV, "유효기간 미설정 오류입니다"),
        "V511": _rule(_IV, "유효기간 허용하지 않는 값을 설정하였습니다"),
        "V512": _rule(_IV, "유효기간의 월 형태가 잘못 설정되었습니다"),
        "V513": _rule(_IV, "카드 비밀번호 미입력 오류입니다"),
        "V601": _rule(_IV, "은행코드 미설정 오류입니다"),
        "V602": _rule(_IV, "금융결제원 암호화 데이터 미설정 오류입니다"),
        "V701": _rule(_IV, "가상계좌입금만료일 미설정 오류입니다"),
        "VA01": _rule(_IV, "거래KEY 미설정 오류입니다"),
        "VA02": _rule(_IV, "이통사구분 미설정 오류입니다"),
        "VA03": _rule(_IV, "SMS승인번호 미설정 오류입니다"),
        "VA04": _rule(_IV, "업체TID 미설정 오류입니다"),
        "VA05": _rule(_IV, "휴대폰번호 미설정 오류입니다"),
        "VA09": _rule(_IV, "고객고유번호(주민번호,사업자번호) 미설정 오류입니다"),
        "VA10": _rule(_IV, "ENCODE 업체TID 미설정 오류입니다"),
        "VB02": _rule(_IV, "이통사구분 미설정 오류입니다"),
        "VB05": _rule(_IV, "휴대폰번호 미설정 오류입니다"),
        "VB09": _rule(_IV, "고객고유번호(주민번호,사업자번호) 미설정 오류입니다"),
        "VB10": _rule(_IV, "고객 IP 미설정 오류입니다"),
        "V801": _rule(_IV, "취소금액 미설정 오류입니다"),
        "V802": _rule(_IV, "취소사유 미설정 오류입니다"),
        "V803": _rule(_IV, "취소패스워드 미설정 오류입니다"),
        # payment window / checkout (Pxxx)
        "P001": _rule(_CF, "클라이언트 아이디가 없습니다."),
        "P002": _rule(_UA, "토큰생성을 실패하였습니다."),
        "P003": _rule(_UA, "로그추적아이디 생성을 실패하였습니다."),
        "P004": _rule(_UA, "SID가 생성되지 않았습니다."),
        "P005": _rule(_CF, "해당되는 MID 정보가 없습니다."),
        "P006": _rule(_CF, "해당되는 GID 정보가 없습니다."),
        "P007": _rule(_IV, "필수 파라미터 {param}가 없습니다."),
        "P008": _rule(_IV, "파라미터 {}:{} 길이가 취소길이{} 보다 작은값 입니다."),
        "P009": _rule(_IV, "파라미터 {}:{} 길이가 최대길이{} 보다 큰값 입니다."),
        "P010": _rule(_IV, "파라미터 {key}[{value}]가 숫자형식이 아닙니다."),
        "P011": _rule(_IV, "파라미터 {key}[{value}]가 boolean형식이 아닙니다."),
        "P012": _rule(_IV, "파라미터 {key}[{value}]는 {} 값만 허용 합니다."),
        "P013": _rule(
            _IV, "파라미터 {}[{}]이 공급가액, 부가세, 봉사료, 비과세급액의 합과 동일하지 않습니다."
        ),
        "P014": _rule(_CF, "Mid [{}]에 해당 하는 merchant key 정보가 없습니다."),
        "P015": _duplicate("orderid {}가 이미 존재합니다."),  # orderId already exists
        "P016": _rule(_CF, "파라미터로 전달된 MID {}에 대한 사용이 불가 합니다."),
        "P017": _rule(_IV, "결제금액은 0원 결제가 불가합니다."),
        "P018": _rule(_IV, "인증 응답 토큰 데이터가 없습니다."),
        "P019": _rule(_NF, "요청된 인증 정보가 없습니다. Token [{}]."),
        "P020": _rule(_IV, "네이버페이 easyPayMethod 데이터 확인이 필요합니다."),
        "P021": _rule(_D, "지원 카드가 아닙니다."),  # card not supported
        "P022": _rule(_IV, "카드와 할부가 동시에 설정되어야 합니다."),
        "P023": _rule(_IV, "간편결제는 [{}]와 함께 사용이 불가합니다."),
        "P024": _rule(_IV, "날짜형식(ISO8601)이 아닙니다."),
        "P025": _rule(_IV, "트랜잭션 타입이 일치하지 않습니다."),
        "P026": _rule(_UK, "승인서버 요청 에러"),  # approval server request error
        "P027": _rule(_UK, "원격 실패(MCI)"),  # remote failure (MCI)
        "P028": _rule(_IV, "일시불 01 에러 (일시불은 00으로 설정)"),
        "P029": _rule(_IV, "해당 지불수단은 카드 지정, 할부 지정이 불가 합니다."),
        "P030": _rule(_IV, "해당 지불수단은 카드 지정, 할부 지정이 필수 입니다."),
        "P031": _rule(_IV, "가상계좌 유효시간 지정 오류 입니다."),
        "P032": _rule(_IV, "다이렉트 및 간편결제는 에스크로 이용이 불가 합니다."),
        "P033": _rule(_IV, "간편결제는 다중카드 선택이 불가합니다."),
        "P034": _rule(_IV, "요청된 금액과 내역 금액이 일치하지 않습니다."),
        # P035: net-cancel request error: whether the net cancel happened is unknown
        "P035": _rule(_UK, "망취소 요청 오류 입니다."),
        "P036": _rule(_IV, "면세금액이 결제금액을 초과할수 없습니다."),
        "P037": _rule(_IV, "5만원 미만인 경우 할부 지정이 불가 합니다."),
        "P038": _rule(_IV, "요청전문 검증오류 입니다."),
        "P039": _rule(_IV, "세션키는 필수 값입니다."),
        "P040": _rule(_IV, "세션키에 해당하는 주문정보가 존재하지 않습니다."),
        "P041": _rule(_IV, "세션키 길이가 잘못되었습니다."),
        # P042: session expired: the customer starts again
        "P042": _rule(_D, "이미 만료된 세션 아이디 입니다."),
        "P043": _rule(_IV, "유효하지 않은 세션 아이디 입니다."),
        "P044": _rule(
            _UK, "승인 상태 수정에 실패하였습니다."
        ),  # updating the approval state failed
        "P101": _rule(_UK, "DB 트랜잭션 실패"),
        "P102": _rule(_UK, "auth history 데이터 추가 실패하였습니다."),
        "P103": _rule(_UK, "log trace 데이터 추가 실패하였습니다."),
        "P091": _rule(
            _D, "결제 요청을 취소하였습니다."
        ),  # the customer cancelled the payment request
        # API (Uxxx)
        "U100": _rule(_IV, "{0} 필수입력항목이 누락되었습니다."),
        "U101": _rule(_CF, "BASE64 DECODE 실패"),  # Basic credentials not decodable
        "U102": _rule(_CF, "사용자 인증정보가 존재하지 않습니다."),
        # U103: Basic vs Bearer: the key was issued for the other scheme
        "U103": _rule(_CF, "사용자 인증타입이 맞지 않습니다."),
        "U104": _rule(_CF, "사용자 인증에 실패하였습니다."),
        "U105": _rule(_IV, "필드 최대길이 초과[max:{0}, realLength:{1}]"),
        "U106": _rule(_IV, "현금영수증 취소는 별도 API 이용 요망"),
        "U107": _rule(_NF, "거래내역이 존재 하지 않습니다."),
        "U108": _rule(_CF, "허가되지 않은 요청 입니다."),
        "U109": _rule(_CF, "허용되지 않은 요청 입니다."),
        "U110": _rule(_IV, "지원하지 않는 지불수단 입니다."),
        "U111": _rule(_NF, "조회내용이 없습니다."),
        "U112": _duplicate("이미 사용된 OrderId 입니다."),  # orderId already used
        "U113": _rule(_IV, "빌키 승인 금액 불일치"),
        "U114": _duplicate("이미 사용된 TID 입니다."),  # TID already used
        "U115": _rule(_NF, "삭제 처리된 BID 입니다."),  # BID deleted
        "U116": _rule(_CF, "사용자 정보가 존재하지 않습니다."),
        "U117": _rule(_CF, "사용자 비밀번호가 일치하지 않습니다."),
        "U118": _rule(_CF, "이용 불가한 사용자 정보 입니다."),
        "U119": _rule(_IV, "지원하지 않는 지불수단입니다."),
        "U120": _rule(_IV, "TID가 유효하지 않습니다."),
        "U121": _rule(_NF, "인증 요청내역이 존재하지 않습니다."),
        "U122": _rule(_NF, "취소 해당거래 없음"),
        "U123": _rule(_IV, "취소금액이 취소가능금액보다 큼."),
        "U124": _rule(_IV, "필드 길이가 잘못되었습니다."),
        "U125": _rule(_IV, "잘못된 요청 입니다."),
        "U126": _rule(_NF, "orderId가 존재 하지 않습니다."),
        "U127": _rule(_IV, "요청 금액이 올바르지 않습니다."),
        # U128: partial cancel only in production (the sandbox has none)
        "U128": _rule(_IV, "부분취소는 운영 환경에서 이용 가능(샌드박스는 부분취소 미제공)"),
        "U129": _rule(_IV, "잘못된 요청 기간 입니다."),
        "U130": _rule(_IV, "허용된 Date형식이 아닙니다."),
        "U131": _rule(_IV, "허용된 Data형식이 아닙니다."),
        "U132": _rule(_IV, "허용된 옵션 내용이 아닙니다.[{0}]"),
        "U301": _rule(_IV, "ORDER_DATA 최대 길이 초과."),
        "U302": _rule(_UK, "응답전문 최대 길이 초과."),  # processed, answer too long
        "U303": _rule(_UK, "API 지연처리 발생."),  # API delayed processing
        "U304": _rule(_CF, "BASIC AUTHENTICATION 실패"),  # Basic authentication failed
        "U305": _rule(_CF, "BEARER AUTHENTICATION 실패"),  # Bearer authentication failed
        "U306": _rule(_CF, "전자서명 및 암호화메시지 검증 실패"),
        # U307: error while checking credentials, before processing
        "U307": _rule(_UA, "인증정보 확인중 오류가 발생하였습니다."),
        "U308": _rule(_IV, "Method Not Allowed."),
        "U309": _rule(_NF, "발급되지 않은 BID 입니다."),
        "U310": _rule(_UK, "SIGN DATA 생성에 실패하였습니다."),
        # U311: authentication cancelled or failed
        "U311": _rule(_D, "인증이 취소되었거나 실패하였습니다. 다시 시도하여 주십시요."),
        "U312": _rule(_CF, "SIGN DATA 검증에 실패하였습니다."),
        "U313": _rule(_CF, "상점 MID가 유효하지 않습니다."),
        "U314": _rule(_UK, "전문 암호화 오류가 발생하였습니다."),
        "U315": _rule(_CF, "허용되지 않은 IP 입니다."),  # IP not allowed
        "U316": _rule(_CF, "상점 기준정보가 유효하지 않습니다."),
        "U317": _rule(_UA, "인증정보 확인중 오류가 발생하였습니다."),
        "U318": _rule(_IV, "취소 금액 불일치"),
        "U319": _rule(_IV, "요청하신 면세금액이 취소가능한 면세금액을 초과 오류"),
        "U320": _rule(_IV, "페이지를 찾을 수 없습니다."),
        "U321": _rule(_IV, "면세금액이 결제금액 보다 큼."),
        "U322": _rule(_UA, "세션아이디 생성을 실패 하였습니다."),
        "U323": _rule(_UA, "세션아이디 만료 변경이 실패 하였습니다."),
        "U324": _duplicate("이미 발급된 세션아이디 입니다."),
        "U325": _rule(_IV, "이미 만료된 세션아이디 입니다."),
        # U501: external messaging error
        "U501": _rule(_UK, "대외계 전문통신 과정에서 오류가 발생하였습니다."),
        "U502": _rule(_IV, "요청 금액이 올바르지 않습니다."),
        # "망취소 요청" / "결제에 실패하였습니다.(망취소 처리)": NICEPAY reversed the payment
        # itself. Whether the reversal settled is what a lookup tells; until then, unknown.
        "U503": _rule(_UK, "망취소 요청"),
        "U504": _rule(_UK, "결제에 실패하였습니다.(망취소 처리)"),
        "U506": _rule(_UK, "DB 테이블 INSERT 오류발생."),
        "U507": _rule(_UK, "DB 테이블 UPDATE 실패."),
        # U508: socket connect failed: nothing sent
        "U508": _rule(_UA, "서버로 소켓 연결 중 오류가 발생하였습니다."),
        "U509": _rule(_UA, "기준정보 조회 결과 2행 이상 오류"),
        "U700": _rule(_IV, "WEBHOOK 응답전문 최대 길이 초과."),
        # JS SDK / window (C, I, M, N, S, V, W)
        # C001: ISP authentication cancelled or failed
        "C001": _rule(_D, "ISP 인증이 취소되었거나 실패하였습니다 다시 시도하여 주십시요"),
        "I001": _rule(_UA, "서버와의 통신에 실패하였습니다 네트워크 환경을 확인하세요"),
        "I002": _rule(_D, "사용자가 결제를 취소하였습니다"),  # the customer cancelled
        # I003: re-submitted an authenticated transaction
        "I003": _duplicate(
            "인증 성공한 거래로 재요청 되었습니다 결제가 정상적으로 이루어 지지 않았을 경우 "
            "가맹점 페이지로 가서 다시 결제하여 주십시요"
        ),
        "I004": _rule(
            _D, "인증 실패한 거래로 재요청 되었습니다 가맹점 페이지로 가서 다시 결제하여 주십시요"
        ),
        "I006": _rule(
            _UA, "화면 구성 처리에 실패하였습니다 가맹점 페이지로 가서 다시 결제하여 주십시요"
        ),
        "I007": _rule(_IV, "바로 호출 결제요청 정보를 확인하십시오"),
        "M001": _rule(_CF, "계좌이체 CPID를 확인해 주세요"),
        "M002": _rule(_CF, "CPID미설정 오류입니다"),
        "N001": _rule(_IV, "30만원 이상 결제는 지원되지 않습니다"),
        "N002": _rule(_UK, "주문내역 갱신에 실패하였습니다"),
        "N003": _rule(
            _UA, "인증기관 거래설정에 실패하였습니다 가맹점 페이지로 가서 다시 결제하여 주십시요"
        ),
        "S004": _rule(_CF, "무이자 설정 정보 오류"),
        "S005": _rule(_CF, "청구할인 행사 정보 오류"),
        "V001": _rule(_CF, "가맹점 아이디가 조회 되지 않습니다"),
        # V003: excessive access, try again
        "V003": _rule(_UA, "비정상 과다접속으로 인한 오류입니다 다시 결제 시도하시기 바랍니다"),
        "V004": _rule(_IV, "할부개월 설정 오류"),
        "W000": _success("정상 처리되었습니다"),
        "W001": _rule(_IV, "주문번호가 유효하지 않습니다"),
        "W002": _rule(_IV, "TID가 유효하지 않습니다"),
        # webhook management (U33x)
        "U332": _rule(_IV, "간편결제는 cardCode, cardQuota와 함께 사용이 불가합니다."),
        "U333": _rule(_IV, "이미 등록된 URL 정보가 있습니다."),
        "U334": _rule(_UA, "웹훅 URL 수정을 실패하였습니다."),
        "U335": _rule(_UA, "웹훅 URL 생성을 실패하였습니다."),
        "U336": _rule(_UA, "해당 URL 페이지 요청을 실패하였습니다."),
        "U337": _rule(_IV, "HTTP 상태 코드가 정상(200)이 아닙니다."),
        "U338": _rule(_IV, "응답 페이지 Body 부분은 OK 문자만 허용됩니다."),
    }
)

#: What to do about a configuration code, appended to its message.
CODE_HINTS: Mapping[str, str] = MappingProxyType(
    {
        code: "check the NICEPAY keys, MID contract and IP allow-list"
        for code, rule in CODE_TABLE.items()
        if rule.verdict is Verdict.CONFIGURATION
    }
)
