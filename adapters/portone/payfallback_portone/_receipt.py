"""What a till prints, read off PortOne's ``Payment``: :class:`Receipt` and :class:`RefundReceipt`.

Source for every mapping: PortOne's V2 OpenAPI document,
https://developers.portone.io/api/schema/v2/openapi.json [official; sure] — schemas
``PaidPayment`` (``method``, ``receiptUrl``), ``PaymentMethodCard`` (``card``,
``approvalNumber``, ``installment``), ``Card`` (``issuer``, ``type``, ``number``),
``CardType`` (``CREDIT`` 신용카드, ``DEBIT`` 체크카드, ``GIFT`` 기프트카드),
``PaymentInstallment`` (``month``, ``isInterestFree``), ``PaymentMethodEasyPay``
(``provider``, ``easyPayMethod``), ``PaymentMethodEasyPayMethod`` (one of
``PaymentMethodCard``, ``PaymentMethodEasyPayMethodCharge`` "충전식 포인트 결제 정보",
``PaymentMethodTransfer``) and ``PaymentCancellation`` (``id``, ``cancelledAt``).

A receipt never decides money: every field is optional, a part that does not read is left
out (never an error), and each text is masked by the caller's secrets, since a server may
echo anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AliasGenerator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from payfallback.adapter import Secrets, read_part
from payfallback.errors import PayfallbackError
from payfallback.models import CardKind, PaidWith, Receipt, RefundReceipt

__all__ = ["CARD_KINDS", "EASY_PAY_MEANS", "receipt_of", "refund_receipt_of"]

_M = TypeVar("_M", bound=BaseModel)


class _Part(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="allow", alias_generator=AliasGenerator(validation_alias=to_camel)
    )


class PortOneCard(_Part):
    """``Card`` (카드 상세 정보). ``name`` is the card product's name (카드 상품명), not the
    issuer's, and ``publisher`` (발행사 코드) is not the acquirer: neither is mapped."""

    #: 발급사 코드.
    issuer: str | None = None
    #: 카드 유형: CREDIT, DEBIT, GIFT.
    type: str | None = None
    #: 마스킹된 카드 번호.
    number: str | None = None


class PortOneInstallment(_Part):
    """``PaymentInstallment`` (할부 정보)."""

    month: int | None = None
    is_interest_free: bool | None = None


class PortOneCardMethod(_Part):
    """``PaymentMethodCard`` (결제수단 카드 정보)."""

    type: str | None = None
    card: PortOneCard | None = None
    #: 승인 번호.
    approval_number: str | None = None
    installment: PortOneInstallment | None = None


#: ``Card.type`` → our card kind (``CardType``: CREDIT 신용카드, DEBIT 체크카드, GIFT 기프트카드).
CARD_KINDS: Mapping[str, CardKind] = {
    "CREDIT": CardKind.CREDIT,
    "DEBIT": CardKind.CHECK,
    "GIFT": CardKind.GIFT,
}

#: ``PaymentMethodEasyPay.easyPayMethod.type`` → what the wallet was paid with: a card, its
#: charged points (``PaymentMethodEasyPayMethodCharge``, 충전식 포인트), or a bank
#: transfer from a linked account.
EASY_PAY_MEANS: Mapping[str, PaidWith] = {
    "PaymentMethodCard": PaidWith.CARD,
    "PaymentMethodEasyPayMethodCharge": PaidWith.MONEY,
    "PaymentMethodTransfer": PaidWith.BANK,
}


def receipt_of(payment: Mapping[str, Any], secrets: Secrets) -> Receipt | None:
    """The :class:`Receipt` of a ``Payment``, or None when it reports none of it.

    ====================  ==============================================  ================
    ours                  PortOne ``Payment``                             note
    ====================  ==============================================  ================
    approval_number       ``method.approvalNumber``                       card methods
    issuer_code           ``method.card.issuer``                          발급사 코드
    card_number           ``method.card.number``                          masked by PortOne
    installment_months    ``method.installment.month``                    0 = 일시불
    interest_free         ``method.installment.isInterestFree``
    card_kind             ``method.card.type``                            CREDIT/DEBIT/GIFT
    paid_with             ``method.easyPayMethod.type``                   wallets only
    receipt_url           ``receiptUrl``
    ====================  ==============================================  ================

    For a wallet (``PaymentMethodEasyPay``) the card fields come from its
    ``easyPayMethod`` when that is a card. ``issuer``, ``acquirer`` and ``acquirer_code``
    stay None: PortOne's ``Card`` has no issuer name and no acquirer.
    """
    method = payment.get("method")
    method = method if isinstance(method, Mapping) else {}
    paid_with: PaidWith | None = None
    card_method: PortOneCardMethod | None = None
    if method.get("type") == "PaymentMethodEasyPay":
        inner = method.get("easyPayMethod")
        if isinstance(inner, Mapping):
            paid_with = EASY_PAY_MEANS.get(str(inner.get("type")))
            if inner.get("type") == "PaymentMethodCard":
                card_method = read_part(PortOneCardMethod, inner)
    elif method.get("type") == "PaymentMethodCard":
        card_method = read_part(PortOneCardMethod, method)

    def masked(value: str | None) -> str | None:
        return secrets.mask(value) if value else None

    card = card_method.card if card_method else None
    installment = card_method.installment if card_method else None
    months = installment.month if installment else None
    url = payment.get("receiptUrl")
    fields: dict[str, Any] = {
        "approval_number": masked(card_method.approval_number) if card_method else None,
        "issuer_code": masked(card.issuer) if card else None,
        "card_number": masked(card.number) if card else None,
        "installment_months": months if months is not None and months >= 0 else None,
        "interest_free": installment.is_interest_free if installment else None,
        "card_kind": CARD_KINDS.get(card.type or "") if card else None,
        "paid_with": paid_with,
        "receipt_url": masked(url) if isinstance(url, str) else None,
    }
    if all(value is None for value in fields.values()):
        return None
    try:
        return Receipt(**fields)
    except PayfallbackError:
        return None


def refund_receipt_of(
    cancellation_id: str | None, cancelled_at: datetime | None, secrets: Secrets
) -> RefundReceipt:
    """The :class:`RefundReceipt` of a ``PaymentCancellation``: ``cancel_id`` ← ``id`` (취소
    내역 아이디), ``cancelled_at`` ← ``cancelledAt`` (취소 시점). ``remaining`` stays None: a
    cancellation does not say what is left (the payment's ``amount.cancelled`` does, on a
    lookup)."""
    cancel_id = secrets.mask(cancellation_id) if cancellation_id else None
    return RefundReceipt(cancel_id=cancel_id, cancelled_at=cancelled_at)
