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
  요청 타임아웃 정책 — https://developers.portone.io/api/rest-v2#idempotency-key (page
  source ``src/routes/(root)/api/rest-v2/[...slug].tsx``; the RFC 8941 sentence since
  commit ``a6c939ea``, 2025-10-21): ``Idempotency-Key`` on POST, "16~256자의 ASCII
  문자열(권장: 영문 대소문자, 숫자, -, _) … RFC 8941에 따라 문자열을 쌍따옴표로 감싸세요"
  (``Idempotency-Key: "unique-request-id-123"``), kept 3 hours, a replay of a finished
  request returns its stored answer, ``409 IDEMPOTENCY_OUTSTANDING_REQUEST`` while the
  first request runs; read timeout of at least 60 s; a disconnected request is not
  cancelled server-side.
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
* Receipts — the same OpenAPI file [official; sure]: ``PaidPayment.method`` (the
  ``PaymentMethod`` union: ``PaymentMethodCard`` with ``card``, ``approvalNumber`` and
  ``installment``; ``PaymentMethodEasyPay`` with ``easyPayMethod``, one of a card,
  ``PaymentMethodEasyPayMethodCharge`` or ``PaymentMethodTransfer``), ``Card.type``
  (``CREDIT``/``DEBIT``/``GIFT``), ``PaidPayment.receiptUrl`` and
  ``PaymentCancellation.id``/``cancelledAt``; mapped in ``payfallback_portone._receipt``.
* PG codes forwarded in ``pgCode``: Toss Payments https://docs.tosspayments.com/reference/error-codes
  and NICEPAY ``nicepayments/nicepay-manual`` ``common/code.md``.

What proves a payment did not go through
----------------------------------------
``Capabilities.proofs`` is ``(REPLAY,)``:

* **REPLAY** — offered. Every POST carries ``Idempotency-Key``; the REST overview (멱등 키,
  https://developers.portone.io/api/rest-v2#idempotency-key) says "완료된 요청을 재시도하는
  경우: 기존 응답을 그대로 반환" (a replay of a finished request returns its answer) and
  "처리 중인 요청을 재시도하는 경우: 409 에러 (IDEMPOTENCY_OUTSTANDING_REQUEST)", which the
  table maps to ``Verdict.IN_FLIGHT`` (``RequestInFlight``: wait, replay with the same
  key). Kept 3 hours ("추후 변경 가능"). Confidence: documented by PortOne; not observed
  against the live API. For a browser checkout the money step is a GET (no key needed:
  reading the payment again is the replay).
* **VOID** — not offered: the V2 API has no net cancel (the OpenAPI file has only
  ``/cancel`` of a paid payment). Confidence: high.
* **RECORD** — not offered (``failed_record_is_final=False``): "같은 paymentId에 대해 여러
  번의 결제 시도가 가능하나, 최종적으로 결제에 성공하는 것은 단 한 번만 가능합니다" (V2
  checkout guide, https://developers.portone.io/opi/ko/integration/start/v2/checkout): a
  ``FAILED`` or ``READY`` payment can still be paid on the same paymentId. Lookups still
  report ``FAILED`` as ``NOT_PAID`` and ``READY`` as ``AWAITING_CUSTOMER``; the Router
  knows not to treat them as final. Confidence: documented.
* **NOT_FOUND_AFTER_SETTLE** — not offered (``settle_window=None``): PortOne documents no
  bound on how long a received request may still commit; the timeout policy says only
  "클라이언트 측에서 연결을 끊은 경우에도 요청이 취소되지 않습니다" (a disconnected request is
  not cancelled) and points to a same-key replay. A 404 ``PAYMENT_NOT_FOUND`` is reported
  as ``TxnState.NOT_FOUND`` and proves nothing by itself. Confidence: documented absence.

The return URL's ``code``/``message``/``pgCode`` never end an attempt by themselves:
``approve`` reads PortOne's record first (``PAID`` wins over any ``code``), and a
``READY`` record with a ``code`` is a ``Declined`` that the Router looks up before ending
anything.

Checked, and where it stays uncertain
-------------------------------------
* Idempotency-Key format: the overview page showed a bare value
  (``Idempotency-Key: unique-request-id-123``, letters, digits, ``-``, ``_``) from
  2025-08-08 and asks for an RFC 8941 sf-string since 2025-10-21; the sf-string form is
  sent (``"…"`` with ``\\`` and ``"`` escaped), and keys outside 16-256 printable ASCII
  characters are refused before sending. Whether PortOne also still accepts the bare form,
  and whether a bare and a quoted key with the same characters are one key, is not
  documented: a replay across an upgrade of this adapter (within the 3-hour window) may
  not be recognised as one. Confidence in the quoted form: documented, not observed.
* ``PG_PROVIDER`` (502) means "the PG returned an error" — a decline as often as a fault
  — and its body does not name the PG. Only codes documented by the PG are mapped, and
  numeric ones only when ``pg_provider`` names the PG; any other ``pgCode`` on a
  money-moving call is ``OutcomeUnknown``, resolved by lookup.
* An error ``type`` the spec does not document is ``OutcomeUnknown`` on a money-moving
  call even with HTTP 401/403 (the adapter kit's rule: only 429 and 503 say "not
  processed" by themselves); the documented ``UNAUTHORIZED``/``FORBIDDEN`` are
  configuration errors.
* Cancels always send ``taxFreeAmount`` (``CancelRequest.tax_free_amount``, 0 when none):
  the spec's ``CancelPaymentBody.taxFreeAmount`` says "값을 입력하지 않으면 전액 과세
  취소됩니다" (left out, the whole cancel is taxable). ``vatAmount`` is left to PortOne
  ("자동 계산됩니다").
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
