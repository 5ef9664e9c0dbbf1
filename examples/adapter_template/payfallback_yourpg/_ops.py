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
* Every error is made by ``self.kit`` (:class:`~payfallback.adapter.AdapterKit`): its
  classifier (:meth:`~payfallback.adapter.AdapterKit.classify`) for error answers, and
  :meth:`~payfallback.adapter.AdapterKit.unknown`, ``unreadable``, ``invalid`` and
  ``error`` for the rest. It cleans provider text and scrubs the declared secrets, and it
  fills in provider, operation, attempt, provider code and request id. This module keeps
  only what is YourPG's own: paths, fields, and the quirks of its answers.
* Messages say what to fix and never quote a key, a billing key, a body, a header — or a
  field the provider echoed back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from payfallback.adapter import AdapterKit, Secrets, read_object
from payfallback.errors import ConfigurationError, PayfallbackError
from payfallback.models import Method
from payfallback.provider import (
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
)
from payfallback_yourpg._wire import CODE_TABLE, ErrorAnswer

__all__ = ["BASE_URL", "LABEL", "NAME", "YourPg"]

#: The entry-point name: breakers, events and journal rows are keyed by it.
NAME: Final = "yourpg"
#: The provider's name in messages.
LABEL: Final = "YourPG"
BASE_URL: Final = "https://api.yourpg.example"
#: Response headers carrying the provider's request id, kept as ``provider_request_id``
#: (the core knows no provider's header names: declare yours, most specific first).
REQUEST_ID_HEADERS: Final = ("x-yourpg-request-id",)


def _unwritten(function: str) -> NotImplementedError:
    return NotImplementedError(f"{NAME}: {function} is not written yet")


class YourPg:
    """YourPG as a payfallback provider.

    Settings are keyword-only, so ``load_provider("yourpg", secret_key=...)`` works:

    * ``secret_key`` — the API secret (a plain ``str`` is wrapped in ``SecretStr``); it
      appears only in the ``Authorization`` header, never in a repr or a message.
    * ``base_url`` — the API host; change it only for the provider's sandbox host.

    Secrets. :attr:`secrets` declares every credential and every auth header value built
    from one; the Router scrubs them, by value, from every error, event, log line and
    journal row, and ``self.kit`` scrubs them from provider text. Secrets of one request
    (a billing key, a one-time token in the return URL) are added for that request's parse
    with ``self.kit.with_request_secrets(...)``.

    What proves a payment did not go through (``Capabilities.proofs``). Fill in one line
    per proof — offered or not, why, the page that says so (URL and the sentence), and how
    sure you are — and declare only what is documented:

    - REPLAY — offered only if a POST with the same idempotency key is answered with the
      first request's outcome (and run at most once): set ``idempotency_header``.
    - VOID — offered only if the provider can undo an approval of unknown outcome within a
      window (a net cancel): set ``void_window`` and write ``build_void``.
    - RECORD — a lookup returns the provider's record of a failed or abandoned
      transaction (``TxnState.NOT_PAID``). Set ``failed_record_is_final=False`` where the
      customer can pay again on the same provider id after a failure.
    - NOT_FOUND_AFTER_SETTLE — only if the provider documents how long after a request it
      can still commit it: ``settle_window``. Otherwise None, and "not found" right after a
      timeout proves nothing (the provider may still be committing the charge).
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
        # Replace with the provider's scheme (payfallback.adapter.basic_auth for Basic, a
        # custom header, …), and declare whatever value you build.
        self._auth = SecretStr(f"Bearer {secret.get_secret_value()}")
        #: Every credential and the Authorization value built from it.
        self.secrets: Secrets = Secrets(self._secret_key, self._auth)
        self.kit = AdapterKit(
            provider=NAME,
            label=LABEL,
            codes=CODE_TABLE,
            request_id_headers=REQUEST_ID_HEADERS,
            # Codes whose fix is specific: appended to the error message.
            hints={},
            secrets=self.secrets,
        )
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
            # provider keeps keys; None when it has none. Setting it offers Proof.REPLAY.
            idempotency_header=None,
            idempotency_retention=None,
            idempotency_key_max_length=64,
            partial_cancel=True,
            # How long after an approval ``void`` (net cancel) can undo it, if it exists.
            # Setting it offers Proof.VOID.
            void_window=None,
            currencies=frozenset({"KRW"}),
            # The read timeout the provider asks for on money-moving calls, if it says.
            read_timeout=None,
            # The return-URL parameter carrying the provider's transaction id, where ready
            # happens client-side.
            callback_txn_id_param=None,
            # How long after a request may have reached the provider it can still commit
            # it: only from a documented fact (cite it). None: "not found" is never proof.
            settle_window=None,
            # Whether a lookup's record of a failed transaction is final (Proof.RECORD).
            # False where the customer can pay again on the same provider id.
            failed_record_is_final=True,
        )

    def __repr__(self) -> str:
        return f"YourPg(base_url={self.base_url!r})"

    # -- ready -----------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """The request that starts a redirect checkout, or ``None`` when the provider's
        browser SDK starts it (``parse_ready`` then returns the SDK's parameters). Start
        with ``self.kit.check_method`` and ``self.kit.check_currency``."""
        raise _unwritten("build_ready")

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """``Redirect`` with the provider's transaction id and redirect URLs by platform.
        No money moves at ready: any failure may be ``ProviderUnavailable``
        (``self.kit.unreadable`` gives that for a read-only call)."""
        raise _unwritten("parse_ready")

    # -- approve ---------------------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """Confirm what the customer approved; ``req.callback_params`` are the return-URL
        parameters. Check them against the order first (amount, order id) and raise
        ``self.kit.error(Verdict.DECLINED, …)`` if they say the customer cancelled."""
        raise _unwritten("build_approve")

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """``Approved`` only when the answer carries the transaction id and the approved
        amount for *this* attempt; anything less is ``Failed(self.kit.unknown(...))``.
        A one-time token in ``req.callback_params`` is a request secret: parse with
        ``self.kit.with_request_secrets(token)``."""
        raise _unwritten("parse_approve")

    # -- charge ----------------------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """Charge the stored instrument: ``billing_key = self.kit.check_instrument(...)``,
        send ``req.attempt_id`` as the provider's order id and ``req.idempotency_key`` in
        the idempotency header if there is one, e.g.
        ``self._post(path, self._body(ChargeBody, ...), req.idempotency_key)``."""
        raise _unwritten("build_charge")

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        """As ``parse_approve``, with
        ``kit = self.kit.with_request_secrets(req.instrument.billing_key)``; non-2xx
        answers go through ``Failed(self._error_from(response, op, attempt_id, kit))``."""
        raise _unwritten("parse_charge")

    # -- lookup ----------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """Status inquiry by ``req.provider_txn_id``, or by ``req.attempt_id`` when it is
        None (only if ``lookup_by_order_id``)."""
        raise _unwritten("build_lookup")

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """``Status``: PAID (with amount), CANCELLED, NOT_PAID, NOT_FOUND, IN_PROGRESS or
        AWAITING_CUSTOMER. Answer NOT_FOUND for the provider's documented "no such
        transaction" (``self.kit.verdict(code, Operation.LOOKUP) is Verdict.NOT_FOUND``):
        the Router decides whether that proves nothing moved (only after
        ``settle_window``). NOT_PAID only for a record that says failed or abandoned."""
        raise _unwritten("parse_lookup")

    # -- cancel ----------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """Cancel ``req.amount`` of ``req.provider_txn_id``: ``self.kit.check_cancel(req,
        self.capabilities)`` first; send ``req.expected_remaining`` where the provider
        checks the cancellable balance, so a replay cannot cancel twice, and
        ``req.tax_free_amount`` in the provider's tax-free field."""
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
        return {"Authorization": self._auth.get_secret_value(), "Accept": "application/json"}

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
        return self.kit.body(model, op, attempt_id, **fields).model_dump(
            by_alias=True, exclude_none=True
        )

    def _error_from(
        self,
        response: httpx.Response,
        op: Operation,
        attempt_id: str,
        kit: AdapterKit | None = None,
    ) -> PayfallbackError:
        """Classify an error answer with the kit: the code table first; an unknown code on
        a money-moving call is ``OutcomeUnknown``; without a code, the HTTP status. A quirk
        of YourPG's answers (a result code inside a 200, a second code field) is read
        here, before the kit decides."""
        error = _error_body(response)
        return (kit or self.kit).classify(
            op, attempt_id, response, code=error.code, message=error.message
        )


def _error_body(response: httpx.Response) -> ErrorAnswer:
    data = read_object(response)
    try:
        return ErrorAnswer.model_validate(data) if data is not None else ErrorAnswer()
    except ValidationError:  # not the documented error shape
        return ErrorAnswer()
