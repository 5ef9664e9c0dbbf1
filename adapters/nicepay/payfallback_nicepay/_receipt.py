"""What a till prints, read off NICEPAY's payment object: :class:`Receipt` and
:class:`RefundReceipt`.

Sources, each mapping below citing its own (all [official; sure]):

* The payment object an approval, a billing approval, a cancel and an inquiry return —
  ``approveNo``, ``receiptUrl``, ``payMethod`` and the ``card`` object:
  https://github.com/nicepayments/nicepay-manual/blob/main/api/payment-window-server.md
  (승인 응답 명세: 공통, 카드) and
  https://github.com/nicepayments/nicepay-manual/blob/main/api/payment-subscribe.md
  (빌키승인 응답 명세).
* The cancel's own ``cancelledTid``, ``cancels[]`` and ``balanceAmt``:
  https://github.com/nicepayments/nicepay-manual/blob/main/api/cancel.md (취소 응답 명세).

A receipt never decides money: every field is optional, an object that does not read is
left out (never an error), and each text is masked by the caller's secrets, since a
server may echo anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from payfallback.adapter import Secrets
from payfallback.errors import PayfallbackError
from payfallback.models import CardKind, PaidWith, Receipt, RefundReceipt

__all__ = ["CARD_KINDS", "WALLETS", "receipt_of", "refund_receipt_of"]


class NicepayCard(BaseModel):
    """The payment object's ``card`` ("신용카드 정보", nullable)."""

    model_config = ConfigDict(frozen=True, extra="allow", alias_generator=to_camel)

    #: "신용카드사별 코드" and "결제 카드사 이름 (예: 비씨)".
    card_code: str | None = None
    card_name: str | None = None
    #: "카드번호 — 3번째 range 마스킹 처리됨 (예: 53611234****1234); 카카오머니/
    #: 네이버포인트/페이코포인트 전액결제 거래인경우 null".
    card_num: str | None = None
    #: "할부개월 0:일시불, 2:2개월, 3:3개월 …".
    card_quota: int | None = None
    #: "상점분담무이자 여부 true:무이자, false:일반".
    is_interest_free: bool | None = None
    #: "카드 구분 credit:신용, check:체크".
    card_type: str | None = None
    #: "매입카드사코드" and "매입카드사명".
    acqu_card_code: str | None = None
    acqu_card_name: str | None = None


#: ``card.cardType`` → our card kind (payment-window-server.md, 카드) [official; sure].
CARD_KINDS: Mapping[str, CardKind] = {"credit": CardKind.CREDIT, "check": CardKind.CHECK}

#: ``payMethod`` values that are wallets ("naverpay=네이버페이, kakaopay=카카오페이,
#: payco=페이코, ssgpay=SSGPAY, samsungpay=삼성페이", payment-window-server.md, 공통)
#: [official; sure].
WALLETS = frozenset({"naverpay", "kakaopay", "payco", "ssgpay", "samsungpay"})


def _card(value: object) -> NicepayCard | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return NicepayCard.model_validate(value)
    except ValidationError:
        return None


def _text(answer: Mapping[str, Any], name: str) -> str | None:
    value = answer.get(name)
    return value if isinstance(value, str) and value else None


def _paid_with(pay_method: str | None, card: NicepayCard | None) -> PaidWith | None:
    """What a wallet payment was paid with; None for a payment that is not a wallet's.

    The manual says ``card.cardNum`` is null when the whole payment was Kakao Money, Naver
    Pay points or PAYCO points (payment-window-server.md, 카드 ``cardNum``) [official;
    sure]: a wallet payment with a card number was paid by card, one without by the
    wallet's own balance (all three are stored value: ``PaidWith.MONEY``). A payment split
    between the two is not described, so MIXED is never read here.
    """
    if (pay_method or "").lower() not in WALLETS:
        return None
    return PaidWith.CARD if card is not None and card.card_num else PaidWith.MONEY


def receipt_of(answer: Mapping[str, Any], secrets: Secrets) -> Receipt | None:
    """The :class:`Receipt` of a payment object, or None when it reports none of it.

    ====================  ==================================  =======================
    ours                  NICEPAY payment object              note
    ====================  ==================================  =======================
    approval_number       ``approveNo``                       제휴사 승인 번호
    issuer, issuer_code   ``card.cardName``, ``card.cardCode``
    acquirer,             ``card.acquCardName``,
    acquirer_code         ``card.acquCardCode``
    card_number           ``card.cardNum``                    masked by NICEPAY
    installment_months    ``card.cardQuota``                  0 = 일시불
    interest_free         ``card.isInterestFree``             상점분담무이자
    card_kind             ``card.cardType``                   credit / check
    paid_with             ``payMethod``, ``card.cardNum``     wallets only
    receipt_url           ``receiptUrl``                      매출전표
    ====================  ==================================  =======================
    """
    card = _card(answer.get("card"))
    pay_method = _text(answer, "payMethod")

    def masked(value: str | None) -> str | None:
        return secrets.mask(value) if value else None

    quota = card.card_quota if card else None
    fields: dict[str, Any] = {
        "approval_number": masked(_text(answer, "approveNo")),
        "issuer": masked(card.card_name) if card else None,
        "issuer_code": masked(card.card_code) if card else None,
        "acquirer": masked(card.acqu_card_name) if card else None,
        "acquirer_code": masked(card.acqu_card_code) if card else None,
        "card_number": masked(card.card_num) if card else None,
        "installment_months": quota if quota is not None and quota >= 0 else None,
        "interest_free": card.is_interest_free if card else None,
        "card_kind": CARD_KINDS.get((card.card_type or "").lower()) if card else None,
        "paid_with": _paid_with(pay_method, card),
        "receipt_url": masked(_text(answer, "receiptUrl")),
    }
    if all(value is None for value in fields.values()):
        return None
    try:
        return Receipt(**fields)
    except PayfallbackError:
        return None


def refund_receipt_of(
    cancelled_tid: str | None,
    cancelled_at: datetime | None,
    remaining: int | None,
    secrets: Secrets,
) -> RefundReceipt:
    """The :class:`RefundReceipt` of a cancel answer.

    ``cancel_id`` ← ``cancelledTid`` ("NICEPAY가 발행하는 취소 응답 TID (부분취소시 tid와 다른
    값이 응답됨)"), ``cancelled_at`` ← that cancel's ``cancels[].cancelledAt`` (else the
    object's ``cancelledAt``, "부분취소인경우, 가장 마지막건의 취소 시간"), ``remaining`` ←
    ``balanceAmt`` ("취소 가능 잔액"). Source: cancel.md, 취소 응답 명세 [official; sure].
    """
    cancel_id = secrets.mask(cancelled_tid) if cancelled_tid else None
    left = remaining if remaining is not None and remaining >= 0 else None
    return RefundReceipt(cancel_id=cancel_id, cancelled_at=cancelled_at, remaining=left)
