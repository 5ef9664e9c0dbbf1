"""The adapter kit: the money rules every adapter shares, written once.

An adapter keeps its provider's wire models, its code table and its real quirks. What
decides money — which error a provider's answer becomes — lives here, so a new adapter
cannot get it wrong:

* :class:`Verdict` and :class:`CodeRule` — one row of a code table: what a documented code
  means on a money-moving call, and (where it differs) on a cancel and on a read-only call.
* :meth:`AdapterKit.classify` — the one classifier: table → verdict for the operation →
  an unmapped code on a money-moving call is :class:`~payfallback.errors.OutcomeUnknown`
  (never success) → otherwise the HTTP status decides (:func:`classify_http_status`).
* :class:`Secrets` and :meth:`AdapterKit.clean` — provider text (a ``message`` field, an
  echoed body) always passes through the scrubber before it becomes part of an error: the
  values the adapter declares (keys, auth header values) are removed by value, and card
  numbers and key-shaped tokens by shape. The Router scrubs once more with the request's
  own secrets (billing keys, one-time tokens), so nothing it was sent can come back out.
* :meth:`AdapterKit.context` — the keyword context every error carries (provider,
  operation, attempt, provider code, and the provider's request id from the headers the
  adapter declares).
* Common input checks (:meth:`AdapterKit.check_currency`, :meth:`~AdapterKit.check_cancel`,
  :meth:`~AdapterKit.check_length`, :meth:`~AdapterKit.check_instrument`) and
  :meth:`AdapterKit.body` (a pydantic wire model, or an ``InvalidRequest`` naming every
  field the provider would reject).

A minimal adapter::

    KIT = dict(provider="yourpg", label="YourPG", codes=CODES, request_id_headers=("x-trace",))

    class YourPG:
        def __init__(self, *, secret_key: SecretStr) -> None:
            self.kit = AdapterKit(**KIT, secrets=Secrets(secret_key))
            self.secrets = self.kit.secrets  # the Router scrubs these from everything

        def parse_charge(self, req, response):
            if response.is_success:
                ...
            body = read_object(response) or {}
            return Failed(self.kit.classify(
                Operation.CHARGE, req.attempt_id, response,
                code=body.get("code"), message=body.get("message"),
            ))

The ``secrets`` attribute is part of the provider contract (optional, but every adapter in
this repository declares it): the Router reads it once and scrubs those values, by value,
from every error, event, log line and journal row.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
    RequestInFlight,
)
from payfallback.events import (
    _AS_IS,
    _MAPPINGS,
    _SECRET_VALUES,
    _SEQUENCES,
    REDACTED,
    is_sensitive_key,
    scrub,
    unmasked_below,
)
from payfallback.models import Instrument, Method, Money
from payfallback.provider import (
    MONEY_MOVING,
    CancelRequest,
    Capabilities,
    Operation,
    classify_http_status,
    parse_retry_after,
)

__all__ = [
    "MAX_INSTALLMENT_MONTHS",
    "AdapterKit",
    "CodeRule",
    "Secrets",
    "Verdict",
    "basic_auth",
    "code_table",
    "field_text",
    "fit_bytes",
    "installment_months",
    "read_object",
    "read_part",
    "whole_number",
    "yes_no",
]

M = TypeVar("M", bound=BaseModel)


class Verdict(StrEnum):
    """What a provider's code means for the one question: could the provider have acted?"""

    #: The customer's card, account or wallet said no, or the customer gave up: Declined.
    DECLINED = "declined"
    #: Certainly not processed (maintenance, rate limit, bank hours): ProviderUnavailable.
    UNAVAILABLE = "unavailable"
    #: The provider may have acted (5xx, "already processed", a temporary error during
    #: processing): OutcomeUnknown, resolved by lookup or a same-key replay.
    UNKNOWN = "unknown"
    #: The first request with this idempotency key is still running (Toss ``409
    #: IDEMPOTENT_REQUEST_PROCESSING``): OutcomeUnknown with a ``retry_after`` hint;
    #: replaying with the SAME key later returns the first request's answer.
    IN_FLIGHT = "in_flight"
    #: The provider has no such transaction. On a lookup an answer (the adapter returns
    #: ``Status(NOT_FOUND)``); elsewhere an invalid request.
    NOT_FOUND = "not_found"
    #: Our request is wrong; nothing moved: InvalidRequest.
    INVALID = "invalid"
    #: Credentials or merchant set-up are wrong: ConfigurationError.
    CONFIGURATION = "configuration"


#: On a call that moves no money, "may have acted" means nothing: it just did not work.
_READ_ONLY = MappingProxyType(
    {Verdict.UNKNOWN: Verdict.UNAVAILABLE, Verdict.IN_FLIGHT: Verdict.UNAVAILABLE}
)


@dataclass(frozen=True, slots=True)
class CodeRule:
    """One documented code: its verdict on money-moving calls (approve, charge, void),
    with optional overrides on a cancel and on read-only calls (ready, lookup).

    Without ``read``, a read-only call takes ``verdict`` with UNKNOWN and IN_FLIGHT read as
    UNAVAILABLE (nothing can have moved). ``source`` says where the meaning was read.
    """

    verdict: Verdict
    meaning: str = ""
    cancel: Verdict | None = None
    read: Verdict | None = None
    source: str = ""

    def verdict_for(self, operation: Operation) -> Verdict:
        if operation in (Operation.LOOKUP, Operation.READY):
            if self.read is not None:
                return self.read
            return _READ_ONLY.get(self.verdict, self.verdict)
        if operation is Operation.CANCEL and self.cancel is not None:
            return self.cancel
        return self.verdict


def code_table(rows: Mapping[str, CodeRule]) -> Mapping[str, CodeRule]:
    """A read-only code table (codes compared as given; normalise case before lookup)."""
    return MappingProxyType(dict(rows))


# -- secrets ------------------------------------------------------------------------------------

_MIN_SECRET = 4  # shorter values would mask ordinary words; no real key is this short
#: Characters no URL or JSON escaping changes (RFC 3986 unreserved): a secret made only of
#: them travels in one form.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def _raw(value: SecretStr | SecretBytes | str | bytes) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode("utf-8", "replace")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class Secrets:
    """Values that must never appear in an error, an event, a log line or the journal.

    Scrubbed by value, together with the forms they travel in (URL-escaped, JSON-escaped);
    an adapter declares its keys and the auth header values it builds from them. Then
    :func:`payfallback.events.scrub` masks card numbers and key-shaped tokens by shape.
    """

    __slots__ = ("_ordered", "_pattern", "_shortest", "_values")

    def __init__(self, *values: SecretStr | SecretBytes | str | bytes | None) -> None:
        found: set[str] = set()
        for value in values:
            if value is None:
                continue
            raw = _raw(value).strip()
            if len(raw) < _MIN_SECRET:
                continue
            if _UNRESERVED.fullmatch(raw):
                found.add(raw)  # URL- and JSON-escaping leave it as it is
            else:
                found.update({raw, quote(raw, safe=""), quote(raw, safe="/"), _json_escaped(raw)})
        self._set(frozenset(v for v in found if len(v) >= _MIN_SECRET))

    def _set(self, values: frozenset[str]) -> None:
        self._values = values
        # Longest first, so a value that contains another is masked whole.
        self._ordered = tuple(sorted(values, key=len, reverse=True))
        # A text shorter than every value holds none of them ("paid", "KRW", an amount).
        self._shortest = len(self._ordered[-1]) if self._ordered else 1 << 30
        # A few values (one request's billing key and its forms) are masked by plain
        # replacement: compiling a pattern for each request would cost more than the
        # request's own scrubbing. Many values get one compiled pattern.
        many = len(self._ordered) > _PLAIN_MAX
        self._pattern = re.compile("|".join(re.escape(v) for v in self._ordered)) if many else None

    def __repr__(self) -> str:  # never the values
        return f"Secrets({len(self._values)} values)"

    def __bool__(self) -> bool:
        return bool(self._values)

    @property
    def shortest(self) -> int:
        """The length of the shortest value: a text shorter than it holds none of them
        (a very large number when there are no values)."""
        return self._shortest

    def __or__(self, other: Secrets) -> Secrets:
        merged = Secrets()
        merged._set(self._values | other._values)
        return merged

    def contains(self, text: str) -> bool:
        """Whether any declared value occurs in ``text`` (for tests and assertions)."""
        if len(text) < self._shortest:
            return False
        if self._pattern is not None:
            return self._pattern.search(text) is not None
        return any(value in text for value in self._ordered)

    def mask(self, text: str) -> str:
        """``text`` with every declared value masked (by value only)."""
        if len(text) < self._shortest:
            return text
        if self._pattern is not None:
            return self._pattern.sub(REDACTED, text)
        for value in self._ordered:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def scrub(self, text: str) -> str:
        """``text`` with every declared value masked, then card numbers and key shapes."""
        return scrub(text, self.mask)

    def scrub_answer(
        self, answer: Mapping[str, Any], also: Secrets | None = None
    ) -> dict[str, Any]:
        """A copy of a provider's parsed answer fit to keep: fields named like secrets
        (``billingKey``, ``authToken``...) or like the buyer's personal details
        (``buyerName``, ``customer``, ``email``, ``phone``...) hidden, every declared
        value (and every value of ``also``: a request's own secrets), card number and
        key-shaped token masked inside every string, at any depth."""
        mask = self.mask if not also else lambda text: also.mask(self.mask(text))
        # A string shorter than every declared value and every shape is kept as it is.
        short = unmasked_below(min(self._shortest, also._shortest) if also else self._shortest)
        return _kept_fields(answer, mask, short)

    def scrub_error(self, error: PayfallbackError) -> PayfallbackError:
        """Scrub an error's message and code in place (they may quote provider text)."""
        message = self.scrub(error.message)
        if message != error.message:
            error.message = message
            error.args = (message, *error.args[1:])
        for attr in ("provider_code", "provider_request_id"):
            value = getattr(error, attr)
            if isinstance(value, str) and self.contains(value):
                setattr(error, attr, REDACTED)
        if isinstance(error.user_message, str):
            error.user_message = self.scrub(error.user_message)
        return error


#: Keys of an answer that hold the buyer's personal details: not needed to reconcile a
#: payment, so not kept (a name or number the shop needs, it has from its own order).
_PERSONAL_KEY = re.compile(
    r"buyer|customer|e[-_]?mail|phone|mobile|address|birth|(?:^|_)tel(?:$|_)|[a-z]Tel(?:$|[A-Z_])",
)


_SECRET, _PERSONAL = "secret", "personal"


def _kept_fields(
    fields: Mapping[Any, Any], mask: Callable[[str], str], short: int
) -> dict[str, Any]:
    """Every field of a mapping as :meth:`Secrets.scrub_answer` keeps it: a field named
    like a secret or a personal detail hidden whole, any other kept as :func:`_kept`
    keeps its value."""
    kept: dict[str, Any] = {}
    for name, value in fields.items():
        key = name if type(name) is str else str(name)
        hidden = _hidden_field(key)
        if hidden is _SECRET or (hidden is _PERSONAL and value is not None):
            kept[key] = REDACTED
        else:
            kept[key] = _kept(value, mask, short)
    return kept


def _kept(value: Any, mask: Callable[[str], str], short: int) -> Any:
    """A value of an answer's field, as it is kept: every string scrubbed
    (:func:`~payfallback.events.scrub`, with ``mask``), but for one shorter than ``short``,
    which can hold neither a declared value nor a shape; mappings and lists field by field
    and item by item. (Functions of their own, not a closure that calls itself: that would
    be a reference cycle for the garbage collector on every payment.)"""
    kind = type(value)
    # Most of an answer is plain strings and numbers: told apart by their exact type
    # first, before the slower checks for anything else.
    if kind is str or isinstance(value, str):
        return value if len(value) < short else scrub(value, mask)
    if kind in _AS_IS:
        return value
    if isinstance(value, _MAPPINGS):
        return _kept_fields(value, mask, short)
    if isinstance(value, _SEQUENCES):
        return [_kept(v, mask, short) for v in value]
    if isinstance(value, _SECRET_VALUES):
        return REDACTED
    return value


@functools.lru_cache(maxsize=1024)
def _hidden_field(key: str) -> str | None:
    """Why an answer's field of this name is not kept: it holds a secret, or a personal
    detail; None when it is kept (decided once per name: names repeat on every answer)."""
    if is_sensitive_key(key):
        return _SECRET
    return _PERSONAL if _PERSONAL_KEY.search(key) is not None else None


#: Up to this many values (a request's billing key in its four forms, twice over) are
#: masked by plain replacement, without compiling a pattern.
_PLAIN_MAX = 8


def _json_escaped(raw: str) -> str:
    return raw.replace("\\", "\\\\").replace('"', '\\"').replace("/", "\\/")


def basic_auth(user: str, password: str = "") -> str:
    """The ``Basic …`` value for ``user:password`` (declare it in :class:`Secrets` too)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


# -- reading answers ----------------------------------------------------------------------------


def read_object(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, or None when the body is not a JSON object."""
    try:
        data = response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return data if isinstance(data, dict) else None


# -- field sizes --------------------------------------------------------------------------------


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes on a character boundary, counted as Korean
    PGs count their "Byte" sizes: a Hangul syllable is 2 bytes (EUC-KR/CP949); a character
    outside CP949 counts at its UTF-8 size, which is never less."""
    out: list[str] = []
    used = 0
    for ch in text:
        try:
            size = len(ch.encode("cp949"))
        except UnicodeEncodeError:
            size = len(ch.encode("utf-8"))
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)


# -- reading receipt fields ---------------------------------------------------------------------
# Receipt fields are best effort: a field that does not read is left out, and never turns
# a payment that went through into an error.

#: The longest installment plan a Korean card offers, in months.
MAX_INSTALLMENT_MONTHS = 36


def read_part(model: type[M], value: object) -> M | None:
    """``value`` (a part of an answer) read as ``model``; None when it is absent or does
    not read."""
    if not isinstance(value, Mapping):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def field_text(value: object) -> str | None:
    """A text field (or a number sent for one), stripped; None when absent or empty."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def whole_number(value: object) -> int | None:
    """A non-negative integer sent as a number or as ASCII digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isdigit() and text.isascii() else None
    return None


def installment_months(value: object) -> int | None:
    """할부 months (``"00"`` and 0 are 일시불); None for anything that is not a month count
    a Korean card offers."""
    months = whole_number(value)
    return months if months is not None and months <= MAX_INSTALLMENT_MONTHS else None


def yes_no(value: object) -> bool | None:
    """``"Y"``/``"N"`` (any case) as a bool; None for anything else."""
    text = field_text(value)
    return {"Y": True, "N": False}.get(text.upper()) if text else None


# -- the kit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterKit:
    """One adapter's error rules: its code table, its name in messages, its request-id
    headers, its hints and its secrets. Build one per adapter instance (the secrets are the
    instance's credentials) and make every error through it."""

    provider: str
    #: The provider's name in messages ("Toss", "NICEPAY").
    label: str
    codes: Mapping[str, CodeRule] = field(default_factory=dict)
    #: Response headers that carry the provider's request/trace id, most specific first.
    request_id_headers: tuple[str, ...] = ("x-request-id",)
    #: What to do about a code, appended to its message.
    hints: Mapping[str, str] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets)
    #: ``retry_after`` for IN_FLIGHT answers that carry no ``Retry-After``: a hint to the
    #: Router's replay policy, not a promise.
    in_flight_retry_after: float = 1.0
    message_max: int = 300
    #: HTTP statuses the provider answers before processing anything, so an unmapped code
    #: with them is not "may have acted" (add 401 only where the provider documents it).
    not_processed_statuses: frozenset[int] = frozenset({429, 503})

    # -- context ----------------------------------------------------------------------------

    def with_request_secrets(
        self, *values: SecretStr | SecretBytes | str | bytes | None
    ) -> AdapterKit:
        """This kit, also scrubbing one request's own secrets (a billing key, a one-time
        token from the return URL) from what it makes; itself when there are none."""
        extra = Secrets(*values)
        return replace(self, secrets=self.secrets | extra) if extra else self

    def carries_secret(self, *values: str | None) -> bool:
        """Whether any of ``values`` — fields an outcome would hand back (an id, a URL) —
        holds a declared secret; such an answer is not to be used as it stands."""
        return any(value and self.secrets.contains(value) for value in values)

    def request_id(self, response: httpx.Response | None) -> str | None:
        if response is None:
            return None
        for header in (*self.request_id_headers, "x-request-id"):
            if value := response.headers.get(header):
                # A provider can echo anything in a header: declared secrets are masked (by
                # value only: a hex trace id is not a card number).
                return self.secrets.mask(str(value))[:128]
        return None

    def context(
        self,
        operation: Operation,
        attempt_id: str,
        response: httpx.Response | None = None,
        code: str | None = None,
    ) -> dict[str, Any]:
        """The keyword context of an error: provider, operation, attempt, code, request id."""
        return {
            "provider": self.provider,
            "operation": operation.value,
            "attempt_id": attempt_id,
            "provider_code": self.clean(code, limit=64) if code else None,
            "provider_request_id": self.request_id(response),
        }

    def clean(self, text: object, *, limit: int | None = None) -> str | None:
        """Provider text fit for a message: secrets removed, whitespace folded, clipped."""
        if text is None:
            return None
        value = text if isinstance(text, str) else str(text)
        value = self.secrets.scrub(" ".join(value.split()))
        cap = self.message_max if limit is None else limit
        if not value:
            return None
        return value if len(value) <= cap else value[: cap - 1] + "…"

    # -- making errors ----------------------------------------------------------------------

    def error(
        self,
        verdict: Verdict,
        operation: Operation,
        attempt_id: str,
        *,
        response: httpx.Response | None = None,
        code: str | None = None,
        message: object = None,
        text: str | None = None,
    ) -> PayfallbackError:
        """The error a verdict becomes. ``message`` is the provider's own text (cleaned
        here); ``text`` replaces the standard sentence when the adapter has a better one."""
        where = self.context(operation, attempt_id, response, code)
        said = self.clean(message)
        if text is not None:
            text = self.secrets.scrub(text)
        told = f": {said}" if said else ""
        hint = self.hints.get(code or "")
        tail = f" — {hint}" if hint else ""
        retry_after = (
            parse_retry_after(response.headers.get("retry-after")) if response is not None else None
        )
        op = operation.value
        subject = (
            "cancel"
            if operation is Operation.CANCEL
            else "payment"
            if operation in MONEY_MOVING
            else op
        )
        name = self.label
        if verdict is Verdict.DECLINED:
            verb = "refused the cancel" if operation is Operation.CANCEL else "declined the payment"
            return Declined(
                text or f"{name} {verb}{told}{tail}", user_message=said or None, **where
            )
        if verdict is Verdict.UNAVAILABLE:
            return ProviderUnavailable(
                text or f"{name} did not process the {subject}; try later{told}{tail}",
                retry_after=retry_after,
                **where,
            )
        if verdict is Verdict.IN_FLIGHT:
            if operation not in MONEY_MOVING:
                return ProviderUnavailable(
                    text or f"{name} is still processing an earlier {op}{told}{tail}",
                    retry_after=retry_after,
                    **where,
                )
            return RequestInFlight(
                text
                or f"the first {op} request with this idempotency key is still being processed "
                f"at {name}{told}{tail}",
                retry_after=retry_after if retry_after is not None else self.in_flight_retry_after,
                **where,
            )
        if verdict is Verdict.UNKNOWN:
            if operation not in MONEY_MOVING:
                return ProviderUnavailable(
                    text or f"{name} could not answer the {op}{told}{tail}",
                    retry_after=retry_after,
                    **where,
                )
            return OutcomeUnknown(
                text
                or f"{name} may have processed the {subject}{told}; look it up before "
                f"acting again{tail}",
                retry_after=retry_after,
                **where,
            )
        if verdict is Verdict.CONFIGURATION:
            return ConfigurationError(
                text or f"{name} rejected the merchant set-up{told}{tail}", **where
            )
        if verdict is Verdict.NOT_FOUND:
            return InvalidRequest(text or f"{name} has no such transaction{told}{tail}", **where)
        return InvalidRequest(text or f"{name} rejected the {op} request{told}{tail}", **where)

    def classify(
        self,
        operation: Operation,
        attempt_id: str,
        response: httpx.Response,
        *,
        code: str | None,
        message: object = None,
    ) -> PayfallbackError:
        """The one classifier for an answer that is not a success.

        1. A code in the table: its verdict for this operation.
        2. A code the table does not know, on a money-moving call: ``OutcomeUnknown`` —
           unless the HTTP status itself says "not processed" (``not_processed_statuses``:
           429 and 503 unless the adapter documents more).
        3. No code (or an unknown code on a read-only call): the HTTP status decides.
        """
        rule = self.codes.get(code) if code else None
        if rule is not None:
            return self.error(
                rule.verdict_for(operation),
                operation,
                attempt_id,
                response=response,
                code=code,
                message=message,
            )
        said = self.clean(message)
        # Statuses the provider answers before it processes anything (429/503 "not now";
        # an adapter adds 401 where its provider documents it as "wrong key"): whatever
        # code comes with them, the HTTP status decides.
        not_processed = self.not_processed_statuses
        if code and operation in MONEY_MOVING and response.status_code not in not_processed:
            return OutcomeUnknown(
                f"{self.label} answered the {operation.value} with HTTP {response.status_code} "
                "and a code this adapter does not know"
                + (f" ({said})" if said else "")
                + "; it may have been processed — look it up",
                **self.context(operation, attempt_id, response, code),
            )
        return classify_http_status(
            response,
            provider=self.provider,
            operation=operation,
            attempt_id=attempt_id,
            provider_code=self.clean(code, limit=64) if code else None,
            message=said,
            request_id=self.request_id(response),
        )

    def verdict(self, code: str | None, operation: Operation) -> Verdict | None:
        """The table's verdict for ``code`` on ``operation``; None when it is not listed."""
        rule = self.codes.get(code) if code else None
        return rule.verdict_for(operation) if rule is not None else None

    def invalid(
        self,
        text: str,
        operation: Operation,
        attempt_id: str,
        response: httpx.Response | None = None,
    ) -> InvalidRequest:
        where = self.context(operation, attempt_id, response)
        return InvalidRequest(self.secrets.scrub(text), **where)

    def unknown(
        self,
        text: str,
        operation: Operation,
        attempt_id: str,
        response: httpx.Response | None = None,
        code: str | None = None,
    ) -> OutcomeUnknown:
        return OutcomeUnknown(
            self.secrets.scrub(text), **self.context(operation, attempt_id, response, code)
        )

    def unreadable(
        self, text: str, operation: Operation, attempt_id: str, response: httpx.Response
    ) -> PayfallbackError:
        """An answer we cannot read: unknown on a money-moving call, else unavailable."""
        if operation in MONEY_MOVING:
            return self.unknown(text, operation, attempt_id, response)
        return ProviderUnavailable(
            self.secrets.scrub(text), **self.context(operation, attempt_id, response)
        )

    # -- input checks -----------------------------------------------------------------------

    def check_currency(
        self, money: Money, capabilities: Capabilities, operation: Operation, attempt_id: str
    ) -> None:
        if money.currency not in capabilities.currencies:
            takes = ", ".join(sorted(capabilities.currencies))
            raise self.invalid(
                f"{self.provider} takes {takes}, not {money.currency}", operation, attempt_id
            )

    def check_method(
        self, method: Method, capabilities: Capabilities, operation: Operation, attempt_id: str
    ) -> None:
        if method not in capabilities.methods:
            raise self.invalid(
                f"{method.value} is not offered by this {self.provider} configuration",
                operation,
                attempt_id,
            )

    def check_length(
        self,
        value: str | None,
        what: str,
        operation: Operation,
        attempt_id: str,
        *,
        maximum: int,
        minimum: int = 1,
    ) -> str:
        """``value`` when it has ``minimum``..``maximum`` characters; else InvalidRequest
        (naming ``what``, never quoting the value: it may be a key)."""
        if value is None or not minimum <= len(value) <= maximum:
            raise self.invalid(
                f"{what} must be {minimum}-{maximum} characters for {self.label}",
                operation,
                attempt_id,
            )
        return value

    def check_instrument(self, instrument: Instrument, attempt_id: str) -> str:
        """The billing key of an instrument that belongs to this provider."""
        if instrument.provider != self.provider:
            raise self.invalid(
                f"the instrument belongs to {instrument.provider!r}, not {self.provider!r}",
                Operation.CHARGE,
                attempt_id,
            )
        return instrument.billing_key.get_secret_value()

    def check_cancel(self, req: CancelRequest, capabilities: Capabilities) -> None:
        """A cancel the provider would refuse: wrong currency, nothing to cancel, more than
        is left, or a partial cancel where the provider has none."""
        op = Operation.CANCEL
        self.check_currency(req.amount, capabilities, op, req.attempt_id)
        if req.amount.currency != req.order.amount.currency:
            raise self.invalid(
                f"cancel in {req.amount.currency} of an order paid in {req.order.amount.currency}",
                op,
                req.attempt_id,
            )
        if req.amount.amount <= 0:
            raise self.invalid("the cancel amount must be greater than zero", op, req.attempt_id)
        if req.amount.amount > req.expected_remaining:
            raise self.invalid(
                f"cannot cancel {req.amount.amount}: only {req.expected_remaining} is still "
                "cancellable on this payment",
                op,
                req.attempt_id,
            )
        if not capabilities.partial_cancel and req.amount.amount != req.expected_remaining:
            raise self.invalid(
                f"{self.label} cancels only in full ({req.expected_remaining})",
                op,
                req.attempt_id,
            )
        if not 0 <= req.tax_free_amount <= req.amount.amount:
            raise self.invalid(
                f"the tax-free share {req.tax_free_amount} must be between 0 and the cancel "
                f"amount {req.amount.amount}",
                op,
                req.attempt_id,
            )

    def body(self, model: type[M], operation: Operation, attempt_id: str, **fields: Any) -> M:
        """A wire model built from ``fields``, or InvalidRequest naming what is wrong
        (never the values: they may be secret)."""
        try:
            return model(**fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            )
        # Raised outside the ``except``: pydantic's error (which quotes the refused values,
        # secrets among them) must not ride along as this error's ``__context__``.
        raise self.invalid(f"request {self.label} would reject: {problems}", operation, attempt_id)
