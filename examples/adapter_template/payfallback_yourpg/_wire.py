"""YourPG's wire format: the request and answer models, and the code table.

Nothing here crosses into payfallback's core, which sees only ``Outcome`` values.

* Request models are strict and forbid extra fields, so a misspelt field fails here with
  ``InvalidRequest`` (through :meth:`~payfallback.adapter.AdapterKit.body`) instead of at
  the provider. Field names are ours; ``alias`` is how the provider spells them.
* Answer models ignore fields they do not know (providers add fields without notice) and
  make every field optional: a success answer that lacks what we need (a transaction id,
  the approved amount) is read as "cannot tell" and becomes ``OutcomeUnknown`` on a
  money-moving call, never a guessed success.
* ``CODE_TABLE`` maps *every* documented result code to one
  :class:`~payfallback.adapter.CodeRule` of the adapter kit: its
  :class:`~payfallback.adapter.Verdict`, what the code means, and where that was read.
  Keep the documented list as data next to the tests (``documented_codes.json``); the
  completeness test fails on any documented code the table lacks.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from payfallback.adapter import CodeRule, code_table

__all__ = [
    "CODE_TABLE",
    "ERROR_CODES_URL",
    "CancelBody",
    "ChargeBody",
    "ErrorAnswer",
    "PaymentAnswer",
]

#: The provider's error-code page: every row of the table cites it (or a better page).
ERROR_CODES_URL = "https://docs.yourpg.example/reference/error-codes"

#: Every result code YourPG documents, one row each. Copy them from the provider's
#: error-code page, and when a code is ambiguous take the side that cannot charge twice:
#: "already processed" and internal errors during processing are UNKNOWN (resolved by
#: lookup or a same-key replay), never UNAVAILABLE. A rule's ``verdict`` is for
#: money-moving calls (approve, charge, void); ``cancel=`` and ``read=`` (ready, lookup)
#: override it where the same code means something else there. Without ``read=``, UNKNOWN
#: and IN_FLIGHT read as UNAVAILABLE on a lookup: a read cannot have moved money.
#: For example (``from payfallback.adapter import Verdict``)::
#:
#:     "CARD_DECLINED": CodeRule(
#:         Verdict.DECLINED, meaning="the issuer refused the card", source=ERROR_CODES_URL
#:     ),
#:     "SYSTEM_MAINTENANCE": CodeRule(
#:         Verdict.UNAVAILABLE, meaning="maintenance: not processed", source=ERROR_CODES_URL
#:     ),
#:     # Our lost request may be the one that did it.
#:     "DUPLICATE_ORDER_ID": CodeRule(
#:         Verdict.UNKNOWN, meaning="order id already used", source=ERROR_CODES_URL
#:     ),
#:     # The first request with this idempotency key is still running: replay it later
#:     # with the same key (RequestInFlight), never reroute.
#:     "REQUEST_IN_PROGRESS": CodeRule(
#:         Verdict.IN_FLIGHT, meaning="idempotent request still processing",
#:         source=ERROR_CODES_URL,
#:     ),
#:     # Our mistake on a cancel; on a lookup, the answer "no such transaction" (whether
#:     # that proves nothing moved is the Router's call, by the settle window).
#:     "PAYMENT_NOT_FOUND": CodeRule(
#:         Verdict.INVALID, meaning="no such payment", read=Verdict.NOT_FOUND,
#:         source=ERROR_CODES_URL,
#:     ),
#:     "INVALID_API_KEY": CodeRule(
#:         Verdict.CONFIGURATION, meaning="the secret key is wrong", source=ERROR_CODES_URL
#:     ),
CODE_TABLE: Mapping[str, CodeRule] = code_table({})


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


class CancelBody(_Request):
    """A full or partial cancel. ``expected_remaining`` goes where the provider checks the
    cancellable balance (so a replayed cancel is refused, not run twice), and the tax-free
    share where the provider has a field for it — cite the page that says whether an
    omitted one means 0."""

    reason: str = Field(alias="reason", min_length=1, max_length=200)
    amount: int = Field(gt=0)
    expected_remaining: int = Field(alias="expectedRemaining", ge=0)
    tax_free_amount: int = Field(alias="taxFreeAmount", ge=0)


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
