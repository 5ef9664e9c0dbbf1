"""Naver Pay (네이버페이 결제형, one-time payment) adapter for payfallback.

``load_provider("naverpay", client_id=…, client_secret=…, chain_id=…, partner_id=…)``
builds :class:`NaverPay`. The flow is REDIRECT, opened client-side by Naver's JS SDK;
approve = apply, lookup = payment history by ``paymentId``, cancel = full or partial
cancel with ``doCompareRest``. There is no server-side charge and no void.

The secret is the client secret (the ``X-Naver-Client-Secret`` value, sent as it is):
:attr:`NaverPay.secrets` declares it and every error goes through the instance's
:class:`~payfallback.adapter.AdapterKit`, which scrubs it. The client id (also handed to
the browser SDK), the chain id and the idempotency key are not secret.

A paymentId is this checkout's only when Naver echoes ``merchantPayKey`` (our attempt id,
passed to ``oPay.open``): apply without it is ``OutcomeUnknown`` (verified by a history
lookup); apply or history naming another ``merchantPayKey`` is ``InvalidRequest`` (the
money is another checkout's and is never recorded here); a history whose approval rows
lack it proves neither "paid" nor "not paid" (``ProviderUnavailable``: ask again).

What proves a payment did not go through
-----------------------------------------
Of :attr:`Capabilities.proofs <payfallback.provider.Capabilities.proofs>`, Naver Pay
offers:

- **REPLAY** — ``X-NaverPay-Idempotency-Key`` on apply and cancel: "API 중복 요청 발생 시,
  HTTP Status 409 conflict 와 함께 이전 요청에서 전달되었던 응답이 재전달됩니다" (a
  duplicate gets HTTP 409 with the first request's answer re-sent),
  https://docs.pay.naver.com/docs/common/idempotency. Confidence: high for the semantics
  (Naver's own page, as copied in NaverPayDev/agent-integration); medium for which APIs
  honour it ("API 멱등성 지원 여부는 API 별로 명시되어 있습니다": apply is shown with the
  header in the official GET STARTED example, https://developer.pay.naver.com/docs/v2/api;
  cancel only in client code). How long keys are kept is not stated.
- **RECORD** — the history (``POST …/v2.2/list/history/{paymentId}``,
  https://docs.pay.naver.com/docs/onetime-payment/additional/payments_history) lists each
  approval attempt with its final ``admissionState`` (``SUCCESS`` | ``FAIL``): approval
  rows tied to our ``merchantPayKey`` that all ``FAIL`` are ``NOT_PAID``, and
  ``failed_record_is_final=True`` (the customer cannot pay again on that paymentId — a new
  payment window issues a new one — and our only re-apply carries the same key). Confidence:
  medium (field meanings from client code quoting the page; finality inferred).
- **VOID** — no: Naver Pay has no net cancel (``void_window=None``).
- **NOT_FOUND_AFTER_SETTLE** — no: ``settle_window=None``. No page read says how long after
  an apply reached Naver it can still commit; the 10-minute approval window
  (``TimeExpired``) bounds when an apply may *start*, not when one in flight lands. The
  history also never answers "not found" for an authenticated paymentId: an empty history
  is ``IN_PROGRESS`` (the apply is in flight or never arrived; a same-key replay settles
  it).

Sources followed
----------------
Official (Naver Financial):

- URL format ``https://{API domain}/{partner ID}/naverpay/payments/{version}/{API}``, API
  hosts ``dev.apis.naver.com`` / ``apis.naver.com``, auth headers ``X-Naver-Client-Id``,
  ``X-Naver-Client-Secret``, ``X-NaverPay-Chain-Id`` (+ ``X-NaverPay-Financial-Id`` for some
  auth types), envelope ``{code, message, body}`` with common codes ``Success``,
  ``RequireParameter``, ``InvalidParameter``, ``Fail``; HTTP 200/400/401/404/409/503;
  ``X-NaverPay-Idempotency-Key`` (≤ 64 chars, echoed back; a duplicate gets HTTP 409 with
  the original answer re-sent); backward-compatibility policy (fields and enum values are
  added without notice): the docs.pay.naver.com common pages as copied in
  ``NaverPayDev/agent-integration`` ``packages/payments-mcp/test/__fixtures__/developers/``
  (``llms-full.txt``, ``docs/common/{url-format,authentication,response-format,
  http-status-code,idempotency}.md``).
- GET STARTED, https://developer.pay.naver.com/docs/v2/api (SDK ``Naver.Pay.create`` /
  ``oPay.open`` parameters; apply example ``POST …/v2.2/apply/payment`` form-encoded
  ``paymentId``); common guide https://developers.pay.naver.com/docs/v2/api and
  https://developers.pay.naver.com/docs/v1/api/payments (``dev-pub.apis.naver.com`` as an
  older dev host, reachable with ``api_host=``); FAQ
  https://developer.pay.naver.com/support/faq (no test cards; dev is linked to the
  acquirers' dev systems).
- Naver's API gateway error shape ``{errorMessage, errorCode}`` (401 bad key):
  https://developers.naver.com/docs/common/openapiguide/errorcode.md. That Naver Pay's
  gateway answers in this shape is inferred; only the HTTP status is relied on.

Third-party (client code quoting docs.pay.naver.com; several independent copies agree):

- The second domain set ``dev-pay.paygate.naver.com`` / ``pay.paygate.naver.com`` (docs
  .pay.naver.com ``/docs/common/url-format``) and the literal partner path
  ``naverpay-partner``: choose with ``domain_set=DomainSet.PAYGATE``. Which set applies is
  in the merchant's contract; the default is the one Naver's own published copy shows.
- Apply (``/docs/onetime-payment/payment/apply``): ``paymentId`` ≤ 50 bytes; allow a 60 s
  read timeout; codes ``Success, Fail, InvalidMerchant, TimeExpired (10-minute approval
  window), AlreadyOnGoing, AlreadyComplete, OwnerAuthFail, BankMaintenance,
  NotEnoughAccountBalance, MaintenanceOngoing, FaultCheckOngoing``; security guide step 3:
  check ``detail.totalPayAmount`` before announcing the result.
- Return URL: ``resultCode=Success&paymentId=…``, otherwise ``resultCode``/``resultMessage``
  and no ``paymentId`` (``/docs/onetime-payment/payment/payment-auth-window``); ``oPay.open``
  also takes ``productCount`` and ``productItems`` (``categoryType``, ``categoryId``, ``uid``,
  ``name``, ``count``).
- Cancel ``POST …/v1/cancel``
  (https://docs.pay.naver.com/docs/onetime-payment/payment/cancel): ``paymentId,
  cancelAmount, cancelReason, cancelRequester (1 buyer / 2 merchant admin), taxScopeAmount
  (과세 대상 금액), taxExScopeAmount (면세 대상 금액), doCompareRest, expectedRestAmount``.
  The refund's tax-free share (``CancelRequest.tax_free_amount``) goes in
  ``taxExScopeAmount`` and the rest in ``taxScopeAmount``; confidence: medium (several
  clients' copies of the page's field table agree; the page itself was not read).
  ``expectedRestAmount`` is what remains *after* this cancel ("결제금액 1000원 중 200원을
  취소 … expectedRestAmount=800원"); codes ``Success,
  InvalidMerchant, InvalidPaymentId, AlreadyCanceled, OverRemainAmount,
  PreCancelNotComplete, CancelDeadlineExpired, TaxScopeAmtGreaterThanRemainError,
  TaxScopeAmountError, RestAmountDiff, CancelNotComplete, AlreadyOnGoing,
  MaintenanceOngoing, FaultCheckOngoing, InvalidDiscountCancelCondition, Fail``.
- History ``POST …/v2.2/list/history/{paymentId}`` (JSON ``pageNumber``/``rowsPerPage``):
  rows with ``admissionTypeCode`` ``01`` approval / ``03`` full cancel / ``04`` partial cancel
  and ``admissionState`` ``SUCCESS``/``FAIL``; answers ``InvalidMerchant`` and
  ``MaintenanceOngoing`` (``body: null``) seen in a client's tests.

- Receipt fields: the apply answer's ``detail`` (``primaryPayMeans`` ``CARD``/``BANK``,
  ``primaryPayAmount``, ``npointPayAmount``, ``giftCardAmount``, ``cardAuthNo``,
  ``cardCorpCode``, ``cardNo`` masked by Naver, ``cardInstCount``) and the cancel answer's
  ``payHistId``, ``cancelYmdt``, ``totalRestAmount``, as clients model the
  ``/docs/onetime-payment/payment/{apply,cancel}`` answers; mapped field by field in
  :mod:`payfallback_naverpay._receipt`.

Not confirmed, and handled the safe way:

- How long idempotency keys are kept: not stated (``idempotency_retention=None``).
- Whether a duplicate key replays a cached *failure* (the page says "the response of the
  previous request"; a 409 carrying a documented code is read as that answer): a 409 whose
  body cannot be read is ``OutcomeUnknown`` on apply and cancel.
- A settle window for "not found" (see above): none documented.
- ``CancelNotComplete``: one copy of the docs says Naver reprocesses the cancel by itself,
  two clients say it must be retried. Either way the cancel was accepted and has not
  finished, so it is ``OutcomeUnknown``: the history decides, never a blind second cancel.
- ``rowsPerPage`` limits of the history API: not stated; 20 rows are asked for.
- No request-id response header is documented; ``x-request-id`` is attached if present.
"""

from payfallback_naverpay._ops import (
    CAPABILITIES,
    DOMAIN_HOSTS,
    IDEMPOTENCY_HEADER,
    SDK_URL,
    DomainSet,
    NaverPay,
)
from payfallback_naverpay._wire import (
    APPLY_CODES,
    CALLBACK_CODES,
    CANCEL_CODES,
    HISTORY_CODES,
    SUCCESS,
)

__all__ = [
    "APPLY_CODES",
    "CALLBACK_CODES",
    "CANCEL_CODES",
    "CAPABILITIES",
    "DOMAIN_HOSTS",
    "HISTORY_CODES",
    "IDEMPOTENCY_HEADER",
    "SDK_URL",
    "SUCCESS",
    "DomainSet",
    "NaverPay",
]
