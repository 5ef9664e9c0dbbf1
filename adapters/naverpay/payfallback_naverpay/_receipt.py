"""What a till prints for a Naver Pay payment, and what a cancel answer says about itself.

Read tolerantly from the raw answer: a receipt field Naver sends in an unexpected shape is
left ``None``; it never turns a paid approval into an unknown outcome.

Mappings (our field ← Naver Pay field), from the apply answer's ``body.detail``
(결제 승인 응답) on https://docs.pay.naver.com/docs/onetime-payment/payment/apply and
the cancel answer's ``body`` (결제 취소 응답) on
https://docs.pay.naver.com/docs/onetime-payment/payment/cancel; the field names and value
shapes as several independent client codebases model them, consistently [3rd-party;
likely]:

- ``primaryPayMeans`` (주 결제 수단: ``CARD`` 카드, ``BANK`` 계좌), ``primaryPayAmount``,
  ``npointPayAmount`` (네이버페이 포인트·머니) and ``giftCardAmount`` (상품권) →
  ``paid_with``: the one means that paid, or MIXED when several amounts are above zero.
  A payment by Naver Pay points / money alone is MONEY; a gift card alone, or a primary
  means we do not know, leaves it None.
- Only when ``primaryPayMeans`` is ``CARD``: ``cardAuthNo`` (카드 승인번호) →
  ``approval_number``; ``cardCorpCode`` (카드사 코드, Naver's own code table: ``C0``…) →
  ``issuer_code`` [likely: the card company the customer holds]; ``cardNo`` (already
  masked by Naver, ``465887**********``) → ``card_number``; ``cardInstCount`` (할부 개월
  수, 0 = 일시불) → ``installment_months``.
- Naver Pay reports no card company name, no acquirer, no credit/check flag, no
  interest-free flag and no receipt URL in these answers: those stay None.
- cancel answer: ``payHistId`` (the cancel's own history id) → ``cancel_id``;
  ``cancelYmdt`` (yyyyMMddHHmmss, KST) → ``cancelled_at``; ``totalRestAmount`` (0 = fully
  cancelled) → ``remaining``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from payfallback.adapter import field_text, installment_months, whole_number
from payfallback.models import PaidWith, Receipt, RefundReceipt

__all__ = ["paid_receipt", "refund_receipt"]

#: ``primaryPayMeans`` values Naver documents.
PRIMARY_MEANS: Final[Mapping[str, PaidWith]] = {"CARD": PaidWith.CARD, "BANK": PaidWith.BANK}


def paid_receipt(detail: Mapping[str, Any], clean: Callable[[str], str]) -> Receipt:
    """The receipt of an apply answer's ``detail``; ``clean`` scrubs each text kept."""

    def text(key: str) -> str | None:
        value = field_text(detail.get(key))
        return clean(value) if value is not None else None

    means = field_text(detail.get("primaryPayMeans"))
    card = means == "CARD"
    return Receipt(
        approval_number=text("cardAuthNo") if card else None,
        issuer_code=text("cardCorpCode") if card else None,
        card_number=text("cardNo") if card else None,
        installment_months=installment_months(detail.get("cardInstCount")) if card else None,
        paid_with=_paid_with(detail, means),
    )


def refund_receipt(
    body: Mapping[str, Any], cancelled_at: datetime | None, clean: Callable[[str], str]
) -> RefundReceipt:
    """What a cancel answer's ``body`` says about the cancel it made."""
    cancel_id = field_text(body.get("payHistId"))
    return RefundReceipt(
        cancel_id=clean(cancel_id) if cancel_id is not None else None,
        cancelled_at=cancelled_at,
        remaining=whole_number(body.get("totalRestAmount")),
    )


def _paid_with(detail: Mapping[str, Any], means: str | None) -> PaidWith | None:
    primary = PRIMARY_MEANS.get(means or "")
    amounts = {
        "primary": whole_number(detail.get("primaryPayAmount")),
        "npoint": whole_number(detail.get("npointPayAmount")),
        "gift": whole_number(detail.get("giftCardAmount")),
    }
    if all(value is None for value in amounts.values()):
        return primary
    used = [part for part, value in amounts.items() if value]
    if len(used) > 1:
        return PaidWith.MIXED
    if used == ["primary"]:
        return primary
    if used == ["npoint"]:
        return PaidWith.MONEY
    return None
