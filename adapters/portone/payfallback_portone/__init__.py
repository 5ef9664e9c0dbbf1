"""payfallback adapter for PortOne V2 (포트원), the orchestrator in front of many Korean PGs.

Entry point ``portone`` → :class:`PortOne`. Flows: REDIRECT (the browser SDK pays,
the server verifies with ``GET /payments/{paymentId}``) and SERVER_CHARGE (billing-key
payments); key-in card payments are offered as :meth:`PortOne.build_instant_charge`;
webhooks are verified with :func:`verify_webhook` (Standard Webhooks).

Pages followed
--------------
* PortOne REST API V2, OpenAPI 1.16.0 — https://developers.portone.io/api/rest-v2/payment
  and https://developers.portone.io/api/schema/v2/openapi.json
  (``portone-io/developers.portone.io`` ``src/schema/v2.openapi.json``): paths
  ``/payments/{paymentId}`` (getPayment), ``/billing-key`` (payWithBillingKey),
  ``/instant`` (payInstantly), ``/cancel`` (cancelPayment); their request schemas, the
  ``Payment`` and ``PaymentCancellation`` unions and every ``*Error`` schema they list.
  The tests keep an unmodified excerpt of that file and drive the code-table completeness
  check and the request-body validation from it.
* REST overview, sections 인증 방식 (``Authorization: PortOne <secret>``), 멱등 키 and
  요청 타임아웃 정책 — https://developers.portone.io/api/rest-v2 (page source
  ``src/routes/(root)/api/rest-v2/[...slug].tsx``): ``Idempotency-Key`` on POST, 16-256
  characters of ``[A-Za-z0-9_-]``, kept 3 hours, ``409 IDEMPOTENCY_OUTSTANDING_REQUEST``
  while the first request runs; read timeout of at least 60 s; a disconnected request is
  not cancelled server-side.
* V2 checkout guide — https://developers.portone.io/opi/ko/integration/start/v2/checkout
  (``PortOne.requestPayment`` parameters, redirect query ``paymentId``/``code``/
  ``message``/``pgCode``/``pgMessage``, server verification of ``amount.total`` and
  ``status``; only one attempt per paymentId can succeed), and the billing-key payment
  guide ``…/start/v2/billing/payment``.
* Webhooks V2 — https://developers.portone.io/opi/ko/integration/webhook/readme-v2, the
  Standard Webhooks spec (``standard-webhooks/standard-webhooks``
  ``spec/standard-webhooks.md``, test vector from ``libraries/python/tests/
  test_webhooks.py::test_sign_function``) and PortOne's own verifier
  (``portone-io/server-sdk`` ``python/src/portone_server_sdk/webhook.py``).
* PG codes forwarded in ``pgCode``: Toss Payments https://docs.tosspayments.com/reference/error-codes
  and NICEPAY ``nicepayments/nicepay-manual`` ``common/code.md``.

Checked, and where it stays uncertain
-------------------------------------
* Idempotency-Key format: one revision of the overview page showed the value as an
  RFC 8941 quoted string; the page as published now shows a bare value
  (``Idempotency-Key: unique-request-id-123``) and restricts keys to letters, digits,
  ``-`` and ``_``. The bare form is sent; keys outside that alphabet are refused before
  sending rather than quoted.
* ``PG_PROVIDER`` (502) means "the PG returned an error" — a decline as often as a fault
  — and its body does not name the PG. Only codes documented by the PG are mapped, and
  numeric ones only when ``pg_provider`` names the PG; any other ``pgCode`` on a
  money-moving call is ``OutcomeUnknown``, resolved by lookup.
* The documented billing-key success body (``{payment: {pgTxId, paidAt}}``) carries no
  amount; the approved amount is the one requested (see :mod:`._ops`).
* A 404 or ``READY`` right after a timeout may precede a request PortOne is still
  running (it does not cancel disconnected requests): a billing-key payment reads
  ``IN_PROGRESS`` while ``READY``; a 404 is reported as ``NOT_FOUND``, and a later replay
  on the same paymentId can still never charge twice (``ALREADY_PAID``).
* No request-id response header is documented; a conventional one is used if present.
* Only KRW is declared: the minor-unit convention for other currencies was not confirmed.
"""

from payfallback_portone._ops import (
    DEFAULT_BASE_URL,
    InstantChargeRequest,
    KeyInCard,
    PortOne,
    sf_string,
)
from payfallback_portone._webhook import WebhookFailureReason, WebhookSignatureError, verify_webhook

__all__ = [
    "DEFAULT_BASE_URL",
    "InstantChargeRequest",
    "KeyInCard",
    "PortOne",
    "WebhookFailureReason",
    "WebhookSignatureError",
    "sf_string",
    "verify_webhook",
]
