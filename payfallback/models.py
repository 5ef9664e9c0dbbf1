"""The values payfallback passes around: frozen, strict pydantic v2 models.

Money is always an ``int`` in the currency's minor unit (KRW has none, so 12,000 won is
``Money(amount=12000, currency="KRW")``). A float, a bool, a negative amount or an unknown
currency is refused with :class:`~payfallback.errors.InvalidRequest`, whose message says
what to fix, rather than pydantic's generic ``ValidationError``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    Strict,
    ValidationError,
    model_validator,
)

from payfallback.errors import InvalidRequest

__all__ = [
    "CURRENCY_EXPONENTS",
    "MAX_AMOUNT",
    "Attempt",
    "AttemptState",
    "CardKind",
    "CheckoutSession",
    "Instrument",
    "LineItem",
    "Method",
    "Money",
    "Order",
    "PaidWith",
    "Payment",
    "PaymentStatus",
    "Platform",
    "Receipt",
    "Refund",
    "RefundReceipt",
    "RefundState",
    "ReturnUrls",
]

#: ISO 4217 currencies we accept, with the number of minor-unit digits.
CURRENCY_EXPONENTS: dict[str, int] = {
    "KRW": 0,
    "JPY": 0,
    "USD": 2,
    "EUR": 2,
    "CNY": 2,
    "GBP": 2,
    "SGD": 2,
    "HKD": 2,
    "TWD": 2,
    "AUD": 2,
    "CAD": 2,
    "VND": 0,
}

#: The largest amount accepted, in minor units: 2**53 - 1, the largest integer a JSON number
#: keeps exactly in every consumer (JavaScript SDKs included) and far above any provider's
#: own limit. Larger amounts are refused with ``InvalidRequest`` before anything is written.
MAX_AMOUNT = 2**53 - 1

#: Characters no name, reason or reference may hold: C0/C1 controls (tabs and newlines
#: included: providers print names on receipts and statements, one line each), DEL, and
#: the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_text(value: str, what: str) -> str:
    """``value`` if it holds no control characters; else ``InvalidRequest`` naming ``what``."""
    if m := _CONTROL.search(value):
        raise InvalidRequest(
            f"{what} contains the control character U+{ord(m.group(0)):04X} at position "
            f"{m.start()}; remove line breaks, tabs and other control characters"
        )
    return value


#: Order ids travel to providers inside per-attempt ids (``{order_id}_{n}``); Toss, NICEPAY
#: and PortOne accept letters, digits, ``-`` and ``_``, at most 64 characters.
ORDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")


def _explain(model: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or model
        parts.append(f"{where}: {err['msg']}")
    return f"invalid {model}: " + "; ".join(parts)


class _Model(BaseModel):
    """Frozen, strict, no unknown fields; pydantic errors become ``InvalidRequest``.

    They are turned at the three ways in (the constructor, ``model_validate`` and
    ``model_validate_json``), once for the whole value: a nested model (an order's
    ``Money``) is validated inside its parent without a Python call of its own, and its
    errors are named by their path in the parent (``invalid Order: amount.amount: ...``).
    A validator's own ``InvalidRequest`` is not a ``ValueError``, so pydantic lets it
    through as it is.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidRequest(_explain(type(self).__name__, exc)) from None

    # The marker pydantic puts on BaseModel.__init__ (and RootModel's): this __init__ only
    # validates, so pydantic need not call it when it builds a model from a parent's data
    # or from model_validate (which would validate a second time, strictly).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise InvalidRequest(_explain(cls.__name__, exc)) from None

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any
    ) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise InvalidRequest(_explain(cls.__name__, exc)) from None


class Method(StrEnum):
    """How the customer pays."""

    CARD = "card"
    KAKAOPAY = "kakaopay"
    NAVERPAY = "naverpay"
    TOSSPAY = "tosspay"
    PAYCO = "payco"
    SAMSUNGPAY = "samsungpay"
    APPLEPAY = "applepay"
    BANK_TRANSFER = "bank_transfer"
    VIRTUAL_ACCOUNT = "virtual_account"
    MOBILE = "mobile"


class Platform(StrEnum):
    """Where the customer is, for picking a redirect URL."""

    PC = "pc"
    MOBILE = "mobile"
    APP = "app"


# Enum fields accept their string values too ("card" as well as Method.CARD).
MethodField = Annotated[Method, Strict(False)]
PlatformKey = Annotated[Platform, Strict(False)]


class Money(_Model):
    """An amount in integer minor units of an ISO 4217 currency."""

    amount: int
    currency: str = "KRW"

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if not isinstance(data, (dict, Money)):
            raise InvalidRequest(
                f"expected Money(amount=<int minor units>, currency='KRW'), got "
                f"{type(data).__name__} {data!r}"
            )
        if isinstance(data, dict):
            amount = data.get("amount")
            if isinstance(amount, bool) or not isinstance(amount, int):
                raise InvalidRequest(
                    f"Money.amount must be an int in minor units, got {type(amount).__name__} "
                    f"{amount!r}; convert with e.g. int(Decimal(value) * 100) for USD, or pass "
                    "won as a whole number for KRW"
                )
            if amount < 0:
                raise InvalidRequest(
                    f"Money.amount must not be negative, got {amount}; refunds are separate "
                    "operations, not negative charges"
                )
            if amount > MAX_AMOUNT:
                raise InvalidRequest(
                    f"Money.amount {amount} is above the largest amount payfallback accepts "
                    f"({MAX_AMOUNT:,} minor units); check the unit (minor units, not "
                    "thousandths) and split the sale if it is real"
                )
            currency = data.get("currency", "KRW")
            if not isinstance(currency, str) or currency.upper() not in CURRENCY_EXPONENTS:
                known = ", ".join(sorted(CURRENCY_EXPONENTS))
                raise InvalidRequest(
                    f"unknown currency {currency!r}; use an ISO 4217 code, one of {known}"
                )
            if currency != currency.upper():
                data = {**data, "currency": currency.upper()}
        return data

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidRequest(
                f"cannot combine {self.currency} with {other.currency}; convert first"
            )

    def __str__(self) -> str:
        exp = CURRENCY_EXPONENTS[self.currency]
        if exp == 0:
            return f"{self.amount:,} {self.currency}"
        return f"{self.amount / 10**exp:,.{exp}f} {self.currency}"


class LineItem(_Model):
    """One line of an order, for providers that show or need item detail."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    unit_price: Money

    @model_validator(mode="after")
    def _check_name(self) -> Self:
        check_text(self.name, "LineItem.name")
        return self


class Order(_Model):
    """What the merchant sells: the unit that is paid at most once."""

    order_id: str
    amount: Money
    name: Annotated[str, Field(min_length=1, max_length=100)]
    tax_free_amount: Annotated[int, Field(ge=0)] = 0
    customer_ref: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    items: tuple[LineItem, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _check_id(cls, data: Any) -> Any:
        if isinstance(data, dict):
            oid = data.get("order_id")
            if not isinstance(oid, str) or not ORDER_ID_PATTERN.fullmatch(oid):
                raise InvalidRequest(
                    f"Order.order_id {oid!r} is not valid: use 1-48 characters of letters, "
                    "digits, '-' and '_', starting with a letter or digit (providers receive "
                    "it inside per-attempt ids)"
                )
        return data

    @model_validator(mode="after")
    def _check_amounts(self) -> Self:
        check_text(self.name, f"order {self.order_id}: name")
        if self.customer_ref is not None:
            check_text(self.customer_ref, f"order {self.order_id}: customer_ref")
        if self.amount.amount == 0:
            raise InvalidRequest(f"order {self.order_id}: amount must be greater than zero")
        if self.tax_free_amount > self.amount.amount:
            raise InvalidRequest(
                f"order {self.order_id}: tax_free_amount {self.tax_free_amount} exceeds the "
                f"amount {self.amount.amount}"
            )
        if self.items:
            total = 0
            for item in self.items:
                if item.unit_price.currency != self.amount.currency:
                    raise InvalidRequest(
                        f"order {self.order_id}: item {item.name!r} is priced in "
                        f"{item.unit_price.currency}, the order in {self.amount.currency}"
                    )
                total += item.unit_price.amount * item.quantity
                if total > MAX_AMOUNT:
                    raise InvalidRequest(
                        f"order {self.order_id}: items add up to more than {MAX_AMOUNT:,}"
                    )
            if total != self.amount.amount:
                raise InvalidRequest(
                    f"order {self.order_id}: items add up to {total} but the amount is "
                    f"{self.amount.amount}; fix the items or the amount so they match"
                )
        return self


class Instrument(_Model):
    """What a server-side charge uses at one provider (a billing key, a subscription id)."""

    provider: Annotated[str, Field(min_length=1)]
    billing_key: SecretStr
    customer_key: str | None = None
    method: MethodField = Method.CARD

    def __repr__(self) -> str:
        return f"Instrument(provider={self.provider!r}, method={self.method.value!r})"


class ReturnUrls(_Model):
    """Where the provider sends the customer back after a redirect checkout."""

    success: Annotated[str, Field(min_length=1, max_length=255)]
    cancel: Annotated[str, Field(min_length=1, max_length=255)]
    fail: Annotated[str, Field(min_length=1, max_length=255)]


class AttemptState(StrEnum):
    """Lifecycle of one attempt at one provider."""

    PENDING = "pending"  # journaled; the request is about to be or is being sent
    REDIRECTED = "redirected"  # checkout ready; waiting for the customer to approve
    SUCCEEDED = "succeeded"  # the order's payment
    FAILED = "failed"  # certainly did not take effect (declined, unavailable, not found)
    UNKNOWN = "unknown"  # may have taken effect; must be resolved by lookup
    SUPERSEDED = "superseded"  # took effect, but another attempt is the payment: refund owed


class Attempt(_Model):
    """One try at one provider, journaled before its request is sent."""

    attempt_id: str
    order_id: str
    seq: int
    provider: str
    method: MethodField
    operation: str
    idempotency_key: str
    state: AttemptState
    provider_txn_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    #: Until when the worker that set it ``PENDING`` holds it (None once it left PENDING).
    lease_until: datetime | None = None
    #: The last moment a request of this attempt may have reached the provider (set when
    #: an outcome turned out unknown): where a provider's settle window is counted from.
    sent_at: datetime | None = None
    #: For an attempt that ended ``FAILED`` after a request may have reached the provider:
    #: until when ``recover()`` looks again for a charge that appears late.
    recheck_until: datetime | None = None


class PaymentStatus(StrEnum):
    """Where a recorded payment stands."""

    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class CardKind(StrEnum):
    """What kind of card paid: a receipt prints 신용 (credit) or 체크 (check)."""

    CREDIT = "credit"
    CHECK = "check"
    GIFT = "gift"


class PaidWith(StrEnum):
    """What a wallet payment was paid with underneath (Kakao Pay money or a card...)."""

    CARD = "card"
    MONEY = "money"  # the wallet's own balance (카카오페이머니, 네이버페이 포인트·머니, 토스머니)
    POINT = "point"
    BANK = "bank"  # a linked bank account
    MIXED = "mixed"  # more than one of the above


# 13-19 digits, optionally split by spaces or dashes: a whole card number.
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _mask_pan(match: re.Match[str]) -> str:
    """Every digit but the last four starred; separators kept."""
    text = match.group(0)
    keep = len(re.sub(r"\D", "", text)) - 4
    out = []
    for char in text:
        if char.isdigit() and keep > 0:
            out.append("*")
            keep -= 1
        else:
            out.append(char)
    return "".join(out)


class Receipt(_Model):
    """What a Korean till prints for a sale, as the provider reported it. Each field is
    optional: providers differ in what they return, and a wallet hides the card.

    ``card_number`` is always masked: 13-19 digits in a row, or split by spaces or dashes
    (a whole card number, which no provider should send), keep their last four only.
    """

    #: 승인번호: the card company's approval number.
    approval_number: str | None = None
    #: The issuing card company (발급사), by name where the provider gives one, and code.
    issuer: str | None = None
    issuer_code: str | None = None
    #: The acquiring card company (매입사), by name and code.
    acquirer: str | None = None
    acquirer_code: str | None = None
    #: The card number as the provider masks it (e.g. ``43301234****123*``).
    card_number: str | None = None
    #: 할부 months; 0 is 일시불 (paid at once).
    installment_months: Annotated[int, Field(ge=0)] | None = None
    #: 무이자: the installments carry no interest.
    interest_free: bool | None = None
    card_kind: CardKind | None = None
    #: For a wallet: what the customer paid with inside it.
    paid_with: PaidWith | None = None
    #: The provider's own receipt page for the customer.
    receipt_url: str | None = None

    @model_validator(mode="after")
    def _mask_card_number(self) -> Self:
        number = self.card_number
        if number is not None and _PAN.search(number):
            object.__setattr__(self, "card_number", _PAN.sub(_mask_pan, number))
        return self


class RefundReceipt(_Model):
    """What the provider reported about a refund it made, for reconciliation."""

    #: The cancel's own transaction id or approval number (Toss ``transactionKey``,
    #: NICEPAY cancel ``tid``, Kakao Pay ``aid``...), where the provider gives one.
    cancel_id: str | None = None
    cancelled_at: datetime | None = None
    #: What is left to cancel after this refund, by the provider's count.
    remaining: Annotated[int, Field(ge=0)] | None = None
    #: The provider's receipt page for the cancel, where it has one.
    receipt_url: str | None = None


class Payment(_Model):
    """Our record of an order's one successful charge."""

    payment_id: str
    order_id: str
    provider: str
    method: MethodField
    provider_txn_id: str
    attempt_id: str
    amount: Money
    refunded: Money
    status: PaymentStatus
    approved_at: datetime
    attempts: int = 1
    #: What the till prints: approval number, card, installments, receipt URL.
    receipt: Receipt | None = None
    #: The provider's answer to the charge, secrets and card numbers masked, kept for
    #: reconciliation against its settlement file.
    provider_answer: dict[str, Any] | None = None

    @property
    def refundable(self) -> Money:
        return self.amount - self.refunded


class RefundState(StrEnum):
    """Where a refund stands. ``OWED`` is kept and retried until it settles."""

    OWED = "owed"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(_Model):
    """A refund or a compensation (giving back a charge that should not stand)."""

    refund_id: str
    payment_id: str | None
    order_id: str
    attempt_id: str
    provider: str
    provider_txn_id: str
    amount: Money
    #: What was still cancellable at the provider before this refund; sent where the
    #: provider checks it (Kakao Pay ``cancel_available_amount``, Naver Pay
    #: ``expectedRestAmount``) so a replay can never cancel twice.
    expected_remaining: int
    reason: str
    kind: str = "refund"  # "refund" | "compensation"
    idempotency_key: str
    state: RefundState
    error_code: str | None = None
    tries: int = 0
    created_at: datetime
    updated_at: datetime
    #: The tax-free (면세) part of ``amount``, sent where the provider has the field.
    tax_free_amount: int = 0
    #: The merchant's idempotency key for this refund (``refund(..., idempotency_key=)``):
    #: a repeat with the same key returns this refund and sends nothing.
    request_key: str | None = None
    #: The arguments the key was first used with, to refuse the same key with others.
    request_fingerprint: str | None = None
    #: What the provider reported about the refund once it was made.
    receipt: RefundReceipt | None = None
    #: The provider's answer to the cancel, secrets masked, for reconciliation.
    provider_answer: dict[str, Any] | None = None


class CheckoutSession(_Model):
    """A started redirect checkout: send the customer to one of ``redirect_urls``."""

    session_id: str
    order_id: str
    provider: str
    method: MethodField
    provider_txn_id: str | None
    redirect_urls: dict[PlatformKey, str]
    #: Values a provider's client-side SDK needs instead of a redirect (Toss widgets).
    client_params: dict[str, str] = Field(default_factory=dict)
    expires_at: datetime | None = None
    #: Methods or providers passed over to land here, with the reason; empty if none.
    fallback_from: dict[str, str] = Field(default_factory=dict)

    def redirect_url(self, platform: Platform = Platform.PC) -> str | None:
        return self.redirect_urls.get(platform) or next(iter(self.redirect_urls.values()), None)
