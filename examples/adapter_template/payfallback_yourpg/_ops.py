"""YourPG: capabilities and the pure ``build_<op>`` / ``parse_<op>`` functions.

Fill in one operation at a time, each with a respx test that pins its wire format
(method, URL, headers, body) and a test for every answer its ``parse_`` function reads.
Until then each function raises ``NotImplementedError`` naming itself, so a Router or the
conformance suite that reaches it fails loudly instead of taking it for a no-op.

Rules every function keeps (``payfallback/provider.py`` is the contract):

* No I/O, no sleeping, no retries, no logging, no state kept between calls.
* ``build_`` may raise ``InvalidRequest`` / ``ConfigurationError`` for input the provider
  would refuse (nothing is sent then), never anything else.
* ``parse_`` returns an ``Outcome`` and does not raise: a decline is
  ``Failed(Declined(...))``; an answer it cannot read on a money-moving call is
  ``Failed(OutcomeUnknown(...))``, never success.
* Messages say what to fix and never carry a key, a billing key, a body or a header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.events import scrub
from payfallback.models import Method
from payfallback.provider import (
    MONEY_MOVING,
    ApproveRequest,
    CancelRequest,
    Capabilities,
    ChargeRequest,
    Flow,
    LookupRequest,
    Operation,
    Outcome,
    ReadyRequest,
    VoidRequest,
    classify_http_status,
)
from payfallback_yourpg._wire import ErrorAnswer, Kind, rule_for

__all__ = ["BASE_URL", "NAME", "YourPg"]

#: The entry-point name: breakers, events and journal rows are keyed by it.
NAME: Final = "yourpg"
BASE_URL: Final = "https://api.yourpg.example"
#: Response header carrying the provider's request id, kept as ``provider_request_id``.
REQUEST_ID_HEADER: Final = "x-request-id"
_MESSAGE_MAX: Final = 200


def _unwritten(function: str) -> NotImplementedError:
    return NotImplementedError(f"{NAME}: {function} is not written yet")


class YourPg:
    """YourPG as a payfallback provider.

    Settings are keyword-only, so ``load_provider("yourpg", secret_key=...)`` works:

    * ``secret_key`` — the API secret (a plain ``str`` is wrapped in ``SecretStr``); it
      appears only in the ``Authorization`` header, never in a repr or a message.
    * ``base_url`` — the API host; change it only for the provider's sandbox host.
    """

    name: str = NAME
    capabilities: Capabilities

    def __init__(self, *, secret_key: SecretStr | str, base_url: str = BASE_URL) -> None:
        secret = secret_key if isinstance(secret_key, SecretStr) else SecretStr(secret_key)
        if not secret.get_secret_value().strip():
            raise ConfigurationError(
                f"{NAME}: secret_key is empty; pass the API secret from the YourPG console",
                provider=NAME,
            )
        self._secret_key = secret
        self.base_url = base_url.rstrip("/")
        # Declare only what the provider documents. Each field changes what the Router
        # dares to do after a lost answer, so the safe default is "cannot".
        self.capabilities = Capabilities(
            methods=frozenset({Method.CARD}),
            flows=frozenset({Flow.SERVER_CHARGE}),
            # True only if the provider can find a transaction by the orderId we sent (our
            # attempt id), before we ever learned its transaction id.
            lookup_by_order_id=False,
            # The header that makes a POST idempotent at the provider, and how long the
            # provider keeps keys; None when it has none (the orderId then plays that role).
            idempotency_header=None,
            idempotency_retention=None,
            idempotency_key_max_length=64,
            partial_cancel=True,
            # How long after an approval ``void`` (net cancel) can undo it, if it exists.
            void_window=None,
            currencies=frozenset({"KRW"}),
            # The read timeout the provider asks for on money-moving calls, if it says.
            read_timeout=None,
            # The return-URL parameter carrying the provider's transaction id, where ready
            # happens client-side.
            callback_txn_id_param=None,
        )

    def __repr__(self) -> str:
        return f"YourPg(base_url={self.base_url!r})"

    # -- ready -----------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """The request that starts a redirect checkout, or ``None`` when the provider's
        browser SDK starts it (``parse_ready`` then returns the SDK's parameters)."""
        raise _unwritten("build_ready")

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """``Redirect`` with the provider's transaction id and redirect URLs by platform.
        No money moves at ready: any failure may be ``ProviderUnavailable``."""
        raise _unwritten("parse_ready")

    # -- approve ---------------------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """Confirm what the customer approved; ``req.callback_params`` are the return-URL
        parameters. Check them against the order first (amount, order id) and raise
        ``Declined`` if they say the customer cancelled."""
        raise _unwritten("build_approve")

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """``Approved`` only when the answer carries the transaction id and the approved
        amount for *this* attempt; anything less is ``OutcomeUnknown``."""
        raise _unwritten("parse_approve")

    # -- charge ----------------------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """Charge the stored instrument: send ``req.attempt_id`` as the provider's order id
        and ``req.idempotency_key`` in the idempotency header if there is one, e.g.
        ``self._post(path, self._body(ChargeBody, ...), req.idempotency_key, ...)``."""
        raise _unwritten("build_charge")

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        """As ``parse_approve``: non-2xx answers go through ``self._error_from``."""
        raise _unwritten("parse_charge")

    # -- lookup ----------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """Status inquiry by ``req.provider_txn_id``, or by ``req.attempt_id`` when it is
        None (only if ``lookup_by_order_id``)."""
        raise _unwritten("build_lookup")

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """``Status``: PAID (with amount), CANCELLED, NOT_PAID, NOT_FOUND, IN_PROGRESS or
        AWAITING_CUSTOMER. NOT_FOUND lets the Router pay elsewhere, so answer it only when
        the provider documents that the transaction does not exist."""
        raise _unwritten("parse_lookup")

    # -- cancel ----------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """Cancel ``req.amount`` of ``req.provider_txn_id``; send ``req.expected_remaining``
        where the provider checks the cancellable balance, so a replay cannot cancel twice."""
        raise _unwritten("build_cancel")

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        """``Cancelled`` with what is still cancellable (``remaining``)."""
        raise _unwritten("parse_cancel")

    # -- void ------------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        """Undo an approval of unknown outcome (a net cancel), if the provider has one and
        ``void_window`` says how long it works; otherwise change the message to
        ``"yourpg: void is not supported"`` and leave ``void_window=None``."""
        raise _unwritten("build_void")

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        """``Cancelled`` when the void took effect."""
        raise _unwritten("parse_void")

    # -- building blocks -------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # Replace with the provider's scheme (Basic, a custom header, …).
        return {
            "Authorization": f"Bearer {self._secret_key.get_secret_value()}",
            "Accept": "application/json",
        }

    def _post(
        self, path: str, body: Mapping[str, object], idempotency_key: str | None
    ) -> httpx.Request:
        headers = {**self._headers(), "Content-Type": "application/json"}
        header = self.capabilities.idempotency_header
        if header is not None and idempotency_key:
            headers[header] = idempotency_key
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return httpx.Request("POST", self.base_url + path, headers=headers, content=content)

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Request:
        return httpx.Request("GET", self.base_url + path, headers=self._headers(), params=params)

    def _body(
        self, model: type[BaseModel], op: Operation, attempt_id: str, **fields: Any
    ) -> dict[str, object]:
        """A request body from a ``_wire`` model; ``InvalidRequest`` saying which field the
        provider would refuse (never echoing the values, which may be secret)."""
        try:
            return model(**fields).model_dump(by_alias=True, exclude_none=True)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise InvalidRequest(
                f"{NAME}: request YourPG would refuse: {problems}",
                provider=NAME,
                operation=op.value,
                attempt_id=attempt_id,
            ) from None

    def _error_from(
        self, response: httpx.Response, op: Operation, attempt_id: str
    ) -> PayfallbackError:
        """Classify an error answer: the code table first; an unknown code on a
        money-moving call is ``OutcomeUnknown``; without a code, the HTTP status."""
        error = _error_body(response)
        code, message = error.code, _clip(error.message)
        where: dict[str, Any] = {
            "provider": NAME,
            "operation": op.value,
            "attempt_id": attempt_id,
            "provider_code": code,
            "provider_request_id": response.headers.get(REQUEST_ID_HEADER),
        }
        text = f"{NAME}: {op.value} answered HTTP {response.status_code}" + (
            f" ({message})" if message else ""
        )
        rule = rule_for(code)
        if rule is None:
            if code and op in MONEY_MOVING and response.status_code not in (429, 503):
                return OutcomeUnknown(f"{text} with an undocumented code; look it up", **where)
            return classify_http_status(
                response,
                provider=NAME,
                operation=op,
                attempt_id=attempt_id,
                provider_code=code,
                message=message,
            )
        kind = rule.kind_for(op)
        if kind is Kind.DECLINED:
            return Declined(text, **where)
        if kind is Kind.UNAVAILABLE:
            return ProviderUnavailable(text, **where)
        if kind is Kind.INVALID or kind is Kind.NOT_FOUND:
            return InvalidRequest(text, **where)
        if kind is Kind.CONFIGURATION:
            return ConfigurationError(f"{text}; check secret_key", **where)
        return OutcomeUnknown(f"{text}; the provider may have acted, look it up", **where)


def _error_body(response: httpx.Response) -> ErrorAnswer:
    try:
        return ErrorAnswer.model_validate(response.json())
    except (ValueError, ValidationError):  # not JSON, or not the documented error shape
        return ErrorAnswer()


def _clip(text: str | None) -> str | None:
    """Provider text for a message: one line, bounded, card numbers and keys masked."""
    if not text:
        return None
    text = scrub(" ".join(text.split()))
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"
