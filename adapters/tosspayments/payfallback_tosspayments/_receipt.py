"""What a till prints, read off Toss's Payment object: :class:`Receipt` and :class:`RefundReceipt`.

Sources, each mapping below citing its own:

* The Payment object (``card``, ``easyPay``, ``receipt``, ``cancels``):
  https://docs.tosspayments.com/reference (Payment 객체) [official; sure].
* How a wallet payment splits across ``card.amount``, ``easyPay.amount`` and
  ``easyPay.discountAmount``: https://docs.tosspayments.com/common/easypay-response
  (간편결제 응답 확인) [official; sure].

A receipt never decides money: every field here is optional, a sub-object that does not
read is left out (never an error), and each text is masked by the caller's secrets
before it is kept, since a server may echo anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from payfallback.adapter import Secrets, read_part
from payfallback.errors import PayfallbackError
from payfallback.models import CardKind, PaidWith, Receipt, RefundReceipt

__all__ = ["CARD_KINDS", "receipt_of", "refund_receipt_of"]

_M = TypeVar("_M", bound=BaseModel)


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class TossCard(_Part):
    """``Payment.card``: "카드로 결제하면 제공되는 카드 관련 정보"."""

    #: "카드사에 결제 요청한 금액" (what was charged to the card).
    amount: int | None = None
    #: "카드 발급사 두 자리 코드" / "카드 매입사 두 자리 코드" (Toss's card company codes).
    issuer_code: str | None = Field(default=None, alias="issuerCode")
    acquirer_code: str | None = Field(default=None, alias="acquirerCode")
    #: "카드번호입니다. 번호의 일부는 마스킹 되어 있습니다."
    number: str | None = None
    #: "할부 개월 수입니다. 일시불이면 0입니다."
    installment_plan_months: int | None = Field(default=None, alias="installmentPlanMonths")
    #: "무이자 할부의 적용 여부입니다."
    is_interest_free: bool | None = Field(default=None, alias="isInterestFree")
    #: "카드사 승인 번호입니다."
    approve_no: str | None = Field(default=None, alias="approveNo")
    #: "카드 종류입니다. 신용, 체크, 기프트, 미확인 중 하나입니다."
    card_type: str | None = Field(default=None, alias="cardType")
    #: "카드의 소유자 타입입니다. 개인, 법인, 미확인 중 하나입니다." (not on our Receipt)
    owner_type: str | None = Field(default=None, alias="ownerType")


class TossEasyPay(_Part):
    """``Payment.easyPay``: the wallet (간편결제) part of a payment."""

    #: The wallet, as a Korean label ("토스페이", "카카오페이" ...).
    provider: str | None = None
    #: "충전식 결제수단": the wallet's linked account or cash-like points (토스페이에 연결된
    #: 계좌, 카카오페이 머니, 네이버페이 머니, 페이코 포인트).
    amount: int | None = None
    #: "적립식 결제수단": points, coupons and instant discounts of the wallet (토스포인트,
    #: 카카오페이 포인트, 페이코 쿠폰), always combined with a card or the charged means.
    discount_amount: int | None = Field(default=None, alias="discountAmount")


class TossReceiptLink(_Part):
    """``Payment.receipt``: the receipt (매출전표) Toss issues for the payment."""

    url: str | None = None


#: ``card.cardType`` → our card kind; "미확인" (a foreign card, or wallet means combined) is
#: left unknown. Source: https://docs.tosspayments.com/reference, Payment 객체
#: ``card.cardType`` [official; sure].
CARD_KINDS: Mapping[str, CardKind] = {
    "신용": CardKind.CREDIT,
    "체크": CardKind.CHECK,
    "기프트": CardKind.GIFT,
}


def _paid_with(card: TossCard | None, easy_pay: TossEasyPay | None) -> PaidWith | None:
    """What a wallet payment was paid with, by which amount field carries money.

    https://docs.tosspayments.com/common/easypay-response [official; sure]: a card
    registered in the wallet is ``card.amount``; the wallet's charged means (linked account
    or cash-like points, not told apart) ``easyPay.amount`` → MONEY; its earned points and
    coupons ``easyPay.discountAmount`` → POINT. More than one → MIXED. Not a wallet
    payment (no ``easyPay``) → None.
    """
    if easy_pay is None:
        return None
    used: set[PaidWith] = set()
    if card is not None and (card.amount is None or card.amount > 0):
        used.add(PaidWith.CARD)
    if easy_pay.amount:
        used.add(PaidWith.MONEY)
    if easy_pay.discount_amount:
        used.add(PaidWith.POINT)
    if not used:
        return None
    return used.pop() if len(used) == 1 else PaidWith.MIXED


def receipt_of(answer: Mapping[str, Any], secrets: Secrets) -> Receipt | None:
    """The :class:`Receipt` of a Payment object, or None when it reports none of it.

    ====================  ==================================  =======================
    ours                  Toss Payment object                 note
    ====================  ==================================  =======================
    approval_number       ``card.approveNo``
    issuer_code           ``card.issuerCode``                 Toss's two-digit code
    acquirer_code         ``card.acquirerCode``
    card_number           ``card.number``                     masked by Toss
    installment_months    ``card.installmentPlanMonths``      0 = 일시불
    interest_free         ``card.isInterestFree``
    card_kind             ``card.cardType``                   신용/체크/기프트
    paid_with             ``card.amount``, ``easyPay.amount``,  wallets only
                          ``easyPay.discountAmount``
    receipt_url           ``receipt.url``
    ====================  ==================================  =======================

    ``issuer``/``acquirer`` (names) stay None: the Payment object carries codes only.
    """
    card = read_part(TossCard, answer.get("card"))
    easy_pay = read_part(TossEasyPay, answer.get("easyPay"))
    link = read_part(TossReceiptLink, answer.get("receipt"))

    def text(value: str | None) -> str | None:
        return secrets.mask(value) if value else None

    months = card.installment_plan_months if card else None
    fields: dict[str, Any] = {
        "approval_number": text(card.approve_no) if card else None,
        "issuer_code": text(card.issuer_code) if card else None,
        "acquirer_code": text(card.acquirer_code) if card else None,
        "card_number": text(card.number) if card else None,
        "installment_months": months if months is not None and months >= 0 else None,
        "interest_free": card.is_interest_free if card else None,
        "card_kind": CARD_KINDS.get(card.card_type or "") if card else None,
        "paid_with": _paid_with(card, easy_pay),
        "receipt_url": text(link.url) if link else None,
    }
    if all(value is None for value in fields.values()):
        return None
    try:
        return Receipt(**fields)
    except PayfallbackError:
        return None


def refund_receipt_of(
    transaction_key: str | None,
    canceled_at: datetime | None,
    remaining: int | None,
    secrets: Secrets,
) -> RefundReceipt:
    """The :class:`RefundReceipt` of the cancel a cancel answer reports last.

    ``cancel_id`` ← ``cancels[-1].transactionKey``, ``cancelled_at`` ←
    ``cancels[-1].canceledAt``, ``remaining`` ← ``balanceAmount`` ("취소할 수 있는 금액(잔고)"),
    else ``cancels[-1].refundableAmount``. Source: https://docs.tosspayments.com/reference,
    Payment 객체 ``cancels`` and ``balanceAmount`` [official; sure].
    """
    cancel_id = secrets.mask(transaction_key) if transaction_key else None
    left = remaining if remaining is not None and remaining >= 0 else None
    return RefundReceipt(cancel_id=cancel_id, cancelled_at=canceled_at, remaining=left)
