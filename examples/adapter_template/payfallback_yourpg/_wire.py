"""YourPG's wire format: the request and answer models, and the code table.

Nothing here crosses into payfallback's core, which sees only ``Outcome`` values.

* Request models are strict and forbid extra fields, so a misspelt field fails here with
  ``InvalidRequest`` instead of at the provider. Field names are ours; ``alias`` is how the
  provider spells them.
* Answer models ignore fields they do not know (providers add fields without notice) and
  make every field optional: a success answer that lacks what we need (a transaction id,
  the approved amount) is read as "cannot tell" and becomes ``OutcomeUnknown`` on a
  money-moving call, never a guessed success.
* ``CODE_TABLE`` maps *every* documented result code to one :class:`Kind`. Keep the
  documented list as data next to the tests (``documented_codes.json``); the completeness
  test fails on any documented code the table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from payfallback.provider import Operation

__all__ = [
    "CODE_TABLE",
    "ChargeBody",
    "ErrorAnswer",
    "Kind",
    "PaymentAnswer",
    "Rule",
    "rule_for",
]


class Kind(StrEnum):
    """The outcome one documented code stands for: could the provider have acted?"""

    DECLINED = "declined"  # the provider said no (card refused, balance short, user cancelled)
    UNAVAILABLE = "unavailable"  # certainly not processed (maintenance, rate limit)
    UNKNOWN = "unknown"  # may have been processed ("already processed", internal error)
    INVALID = "invalid"  # our request is wrong; nothing happened
    CONFIGURATION = "configuration"  # keys, merchant id or contract are wrong
    NOT_FOUND = "not_found"  # lookup only: no such transaction, so nothing moved


@dataclass(frozen=True, slots=True)
class Rule:
    """What one code means, with exceptions for the operations where it means more.

    ``Rule(Kind.INVALID, {Operation.LOOKUP: Kind.NOT_FOUND})``: "no such payment" is our
    mistake on a cancel, but on a status inquiry it is the answer that nothing was charged.
    """

    kind: Kind
    per_operation: Mapping[Operation, Kind] = field(default_factory=dict)

    def kind_for(self, operation: Operation) -> Kind:
        return self.per_operation.get(operation, self.kind)


#: Every result code YourPG documents, one row each. Copy them from the provider's
#: error-code page (cite it in the package docstring), and when a code is ambiguous take
#: the side that cannot charge twice: "already processed" and internal errors during
#: processing are UNKNOWN (resolved by lookup), never UNAVAILABLE. For example:
#:
#:     "CARD_DECLINED": Rule(Kind.DECLINED),
#:     "SYSTEM_MAINTENANCE": Rule(Kind.UNAVAILABLE),
#:     "DUPLICATE_ORDER_ID": Rule(Kind.UNKNOWN),
#:     "PAYMENT_NOT_FOUND": Rule(Kind.INVALID, {Operation.LOOKUP: Kind.NOT_FOUND}),
#:     "INVALID_API_KEY": Rule(Kind.CONFIGURATION),
CODE_TABLE: Mapping[str, Rule] = MappingProxyType({})


def rule_for(code: str | None) -> Rule | None:
    """The rule of a documented code; ``None`` for a code the table does not know."""
    return CODE_TABLE.get(code) if code else None


# -- requests ----------------------------------------------------------------------------------


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", populate_by_name=True)


class ChargeBody(_Request):
    """A billing-key charge. Rename and constrain the fields as the provider's API
    reference spells them (lengths, ranges), citing the page."""

    order_id: str = Field(alias="orderId", min_length=1, max_length=64)
    amount: int = Field(gt=0)
    order_name: str = Field(alias="orderName", min_length=1, max_length=100)
    tax_free_amount: int | None = Field(default=None, alias="taxFreeAmount", ge=0)


# -- answers -----------------------------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class PaymentAnswer(_Answer):
    """The provider's payment object, as a charge, an approval and a lookup return it."""

    transaction_id: str | None = Field(default=None, alias="transactionId")
    order_id: str | None = Field(default=None, alias="orderId")
    status: str | None = None
    amount: int | None = None
    currency: str | None = None
    approved_at: str | None = Field(default=None, alias="approvedAt")


class ErrorAnswer(_Answer):
    """The provider's error body."""

    code: str | None = None
    message: str | None = None
