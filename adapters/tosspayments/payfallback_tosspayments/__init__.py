"""Toss Payments (토스페이먼츠) core API v1 adapter for payfallback.

Install ``payfallback-tosspayments`` and build it by name::

    provider = load_provider("tosspayments", secret_key=SecretStr("live_sk_…"),
                             client_key="live_ck_…")

What it does: payment-window checkout (the SDK opens the window client-side, ``approve``
confirms), billing-key charges, lookup by ``paymentKey`` or by our attempt id as
``orderId``, full and partial cancel with Toss's ``refundableAmount`` guard. No void.
Webhooks are not handled here.

Pages followed (https://docs.tosspayments.com, read through stored copies; each fact
tagged [official], [3rd-party] or [uncertain] by where it came from):

* Host, keys and auth — ``/reference/using-api/authorization`` and
  ``/reference/using-api/api-keys`` [official]: one host for test and live; ``Authorization:
  Basic base64("{secretKey}:")`` with the trailing colon; ``X-TossPayments-Trace-Id`` on
  answers (kept as ``provider_request_id``).
* Idempotency — ``/guides/using-api/idempotency-key`` and the English ``/en/api-guide``
  [official]: ``Idempotency-Key`` on every POST, at most 300 characters, kept 15 days; a
  repeat is not executed and gets the first answer, *errors included*; the key is scoped
  by API key + URL + method, not by body; ``409 IDEMPOTENT_REQUEST_PROCESSING`` while the
  first request runs, ``400 INVALID_IDEMPOTENCY_KEY`` for a bad key.
* Confirm — ``/reference`` (결제 승인) and the payment-window/widget guides
  (``/guides/v2/payment-window/integration``, ``/guides/v2/payment-widget/integration-window``)
  [official]: ``POST /v1/payments/confirm {paymentKey, orderId, amount}``; ``successUrl``
  gets ``paymentKey``, ``orderId``, ``amount``; the amount must be checked against the order
  before confirming; the confirm must come within 10 minutes of authentication, and the
  window is valid 30 minutes (``/reference/using-api/webhook-events``: both expiries end in
  ``EXPIRED``; a late confirm is ``404 NOT_FOUND_PAYMENT_SESSION``).
* Billing — ``/guides/v2/billing/integration-api`` and ``/reference`` (자동결제 승인)
  [official]: ``POST /v1/billing/{billingKey} {customerKey, amount, orderId, orderName,
  taxFreeAmount?}``; the customer key must be the one the billing key was issued for; "자동결제
  승인은 최대 60초가 소요됩니다. 타임아웃 값을 최소 60초로 설정하세요" → ``read_timeout=60``.
* Lookup — ``/reference`` (결제 조회) [official]: ``GET /v1/payments/{paymentKey}`` and
  ``GET /v1/payments/orders/{orderId}``; the Payment object and its ``status`` values
  ``READY``, ``IN_PROGRESS``, ``WAITING_FOR_DEPOSIT``, ``DONE``, ``CANCELED``,
  ``PARTIAL_CANCELED``, ``ABORTED``, ``EXPIRED``; ``balanceAmount`` is what is still
  cancellable.
* Cancel — ``/reference`` (결제 취소), ``/guides/v2/cancel-payment`` and
  ``/guides/apis/cancel-payment`` [official]: ``POST /v1/payments/{paymentKey}/cancel
  {cancelReason, cancelAmount, refundableAmount, taxFreeAmount?}``; an omitted
  ``cancelAmount`` cancels everything; of two cancels of one payment within a second only
  the first runs (``FORBIDDEN_CONSECUTIVE_REQUEST``). ``refundableAmount`` ("현재 환불 가능한
  금액입니다. 결제 취소를 안전하게 처리합니다") makes Toss refuse a cancel whose view of the
  balance is stale (``NOT_MATCHES_REFUNDABLE_AMOUNT``) [official; sure].
  ``taxFreeAmount`` is the tax-free part of the cancel amount, "값을 넣지 않으면 기본값인
  0으로 설정됩니다" — left out when 0 [official; sure].
* Receipts — ``/reference`` (Payment 객체: ``card``, ``easyPay``, ``receipt``,
  ``cancels``) and ``/common/easypay-response`` (which amount field a wallet's card, charged
  means and points land in) [official; sure]: mapped onto payfallback's ``Receipt`` and
  ``RefundReceipt`` in ``payfallback_tosspayments._receipt``, field by field with its source.
* ``customerKey`` length — the reference notes mark it [uncertain] (SDK pages say 50,
  the API reference 300); public measurements against a test key accepted 300 and failed
  at 301, so the adapter sends keys of 2-300 characters.
* Errors — ``/reference/error-codes`` [official]: ``{code, message}``; the per-API tables
  of confirm and cancel, and the core-API catalogue. The stored copy of that page renders
  the per-API sections empty, so their rows were taken from copies of the HTML tables in
  public client code and research notes that quote the page (confirm: 47 rows; cancel: 30
  rows), and the billing-charge and lookup lists from client SDKs that copy the reference
  [3rd-party: statuses of two billing rows are misprinted there and were corrected from the
  catalogue]. They are kept, with their sources, in ``tests/documented_codes.json``.

Facts from other people's measurements against Toss's test keys (public research notes;
[3rd-party], used only where they make us *more* careful): error answers are replayed
under their key too; a cancel of the rest after a partial cancel leaves the payment
``PARTIAL_CANCELED`` with ``balanceAmount`` 0 (read here as fully cancelled); cancelling
more than the balance is ``403 NOT_CANCELABLE_AMOUNT``; a deleted billing key is ``400
ALREADY_REMOVED_BILLING_KEY``; live over-use is answered ``429``.

The easy-pay wallets Toss fronts (Toss Pay, Kakao Pay, Naver Pay, PAYCO, Samsung Pay,
Apple Pay) and their SDK ``easyPay`` codes: Toss's test-environment page lists which
wallets can be tried with which keys [official]; PortOne's ``EasyPayProvider`` enum lists
the same wallets for Toss Payments [3rd-party]. Whether a wallet is available depends on
the merchant's contract: narrow ``methods=`` accordingly.

Classification choices that go beyond the docs, each the safe side: anything "already
processed" (``ALREADY_PROCESSED_PAYMENT``, ``DUPLICATED_ORDER_ID``, …), every 5xx and
``PROVIDER_ERROR`` on a money-moving call, and every code this adapter does not know there
(on a 403 too: Toss answers 403 for outcomes of processing), is ``OutcomeUnknown``
(resolve by lookup); ``409 IDEMPOTENT_REQUEST_PROCESSING`` is
``RequestInFlight`` (an ``OutcomeUnknown``) with a ``retry_after`` hint — the first request
may be moving money right now, so rerouting (which ``ProviderUnavailable`` would allow)
could charge twice, while a replay with the same key is safe and returns the first
request's answer.

Every error is made through the instance's :class:`~payfallback.adapter.AdapterKit`
(``TossPayments.kit``) from one table of :class:`~payfallback.adapter.CodeRule` rows;
``TossPayments.secrets`` declares what the Router scrubs. What proves a payment did not
go through — a same-key replay and Toss's record of a failed payment; no void, no settle
window — is set out, with sources, on :class:`TossPayments`.
"""

from payfallback_tosspayments._ops import BASE_URL, SUPPORTED_METHODS, TossPayments
from payfallback_tosspayments._wire import CODE_TABLE, STATUS_STATES, PaymentStatus

__all__ = [
    "BASE_URL",
    "CODE_TABLE",
    "STATUS_STATES",
    "SUPPORTED_METHODS",
    "PaymentStatus",
    "TossPayments",
]
