"""What a till prints for a Kakao Pay payment, and what a refund answer says about itself.

Read tolerantly from the raw answer: a receipt field Kakao sends in an unexpected shape is
left ``None``; it never turns a paid approval into an unknown outcome.

Mappings (our field ← Kakao Pay field), with their sources:

- approve / subscription answer, ``card_info`` (present when ``payment_method_type`` is
  ``CARD``): ``approved_id`` (카드사 승인번호) → ``approval_number``;
  ``kakaopay_issuer_corp`` / ``_code`` (카드 발급사) → ``issuer`` / ``issuer_code``;
  ``kakaopay_purchase_corp`` / ``_code`` (카드 매입사) → ``acquirer`` / ``acquirer_code``
  — the older ``issuer_corp`` / ``purchase_corp`` pairs (with the card companies' own
  codes) when the ``kakaopay_`` pair is absent; ``install_month`` (할부 개월 수, ``"00"``
  = 일시불) → ``installment_months``; ``interest_free_install`` (무이자 할부 여부,
  ``Y``/``N``) → ``interest_free``; ``card_type`` (카드 타입, ``신용``/``체크``) →
  ``card_kind``. Field list: the approve answer of
  https://developers.kakaopay.com/docs/payment/online/single-payment and
  https://developers.kakao.com/docs/latest/ko/kakaopay/single-payment (응답 ``card_info``)
  [official; sure]; value shapes (``"00"``, ``"N"``, ``"체크"``, ``"CARD_INSTALLMENT"``)
  from Kakao's own answer sample as quoted by several client codebases [official sample
  via copies; likely]. ``bin`` (first six digits) is kept in the answer only: Kakao sends
  no masked card number, and we do not make one up.
- ``payment_method_type`` (``CARD`` / ``MONEY``, 결제 수단) → ``paid_with`` CARD / MONEY;
  ``amount.point`` (사용한 포인트 금액) above zero makes it MIXED, or POINT when the points
  paid it all. Same pages [official; sure].
- cancel answer: ``aid`` (요청 고유 번호; every approve and cancel call gets its own) →
  ``cancel_id``; ``canceled_at`` (결제 취소 시각, KST without offset) → ``cancelled_at``;
  ``cancel_available_amount.total`` (남은 취소 가능 금액) → ``remaining``. Source: the
  cancel answer of https://developers.kakao.com/docs/latest/ko/kakaopay/cancellation
  (same field names on the current API) [official; sure].

Kakao Pay publishes no receipt page URL for the customer, so ``receipt_url`` stays None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from payfallback.adapter import field_text, installment_months, whole_number, yes_no
from payfallback.models import CardKind, PaidWith, Receipt, RefundReceipt
from payfallback_kakaopay._wire import parse_kst

__all__ = ["paid_receipt", "refund_receipt"]

#: ``card_info.card_type`` as Kakao writes it.
CARD_KINDS: Final[Mapping[str, CardKind]] = {"신용": CardKind.CREDIT, "체크": CardKind.CHECK}
#: ``payment_method_type``.
PAID_WITH: Final[Mapping[str, PaidWith]] = {"CARD": PaidWith.CARD, "MONEY": PaidWith.MONEY}


def paid_receipt(answer: Mapping[str, Any]) -> Receipt:
    """The receipt of an approve or subscription answer (a mapping as Kakao sent it)."""
    card = answer.get("card_info")
    card = card if isinstance(card, Mapping) else {}
    issuer, issuer_code = _corp(card, "issuer")
    acquirer, acquirer_code = _corp(card, "purchase")
    return Receipt(
        approval_number=field_text(card.get("approved_id")),
        issuer=issuer,
        issuer_code=issuer_code,
        acquirer=acquirer,
        acquirer_code=acquirer_code,
        installment_months=installment_months(card.get("install_month")),
        interest_free=yes_no(card.get("interest_free_install")),
        card_kind=CARD_KINDS.get(field_text(card.get("card_type")) or ""),
        paid_with=_paid_with(answer),
    )


def refund_receipt(answer: Mapping[str, Any]) -> RefundReceipt:
    """What a cancel answer says about the cancel it made."""
    left = answer.get("cancel_available_amount")
    remaining = whole_number(left.get("total")) if isinstance(left, Mapping) else None
    return RefundReceipt(
        cancel_id=field_text(answer.get("aid")),
        cancelled_at=parse_kst(field_text(answer.get("canceled_at"))),
        remaining=remaining,
    )


def _corp(card: Mapping[str, Any], role: str) -> tuple[str | None, str | None]:
    """(name, code) of the issuer or acquirer: the ``kakaopay_`` pair, else the older one.
    A pair is taken whole, so a name never travels with another scheme's code."""
    for prefix in ("kakaopay_", ""):
        name = field_text(card.get(f"{prefix}{role}_corp"))
        code = field_text(card.get(f"{prefix}{role}_corp_code"))
        if name or code:
            return name, code
    return None, None


def _paid_with(answer: Mapping[str, Any]) -> PaidWith | None:
    base = PAID_WITH.get(field_text(answer.get("payment_method_type")) or "")
    amount = answer.get("amount")
    if not isinstance(amount, Mapping):
        return base
    point, total = whole_number(amount.get("point")), whole_number(amount.get("total"))
    if not point:
        return base
    if total is not None and point >= total:
        return PaidWith.POINT
    return PaidWith.MIXED
