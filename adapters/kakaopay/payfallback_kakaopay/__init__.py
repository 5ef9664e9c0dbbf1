"""Kakao Pay (카카오페이) online payment for payfallback.

Flows: redirect checkout (ready → the customer approves at Kakao Pay → approve with
``pg_token``), server-side subscription charge with a stored ``sid``, order inquiry by
cid + tid, full and partial cancel. Kakao Pay has no void and no idempotency header.
:class:`KakaoPay` explains ids, settings and how lost answers are resolved;
:mod:`payfallback_kakaopay._wire` holds the code table.

Sources followed (some read through copies of unknown age; each tagged with its
provenance and confidence):

- Current API, developers.kakaopay.com ``/docs/payment/online/single-payment`` (ready,
  approve, host ``open-api.kakaopay.com``, ``Authorization: SECRET_KEY …``, JSON, test CID
  ``TC0ONETIME`` with ``Secret key(dev)``), read through its copies in
  ``TwoEther/BookMarketProject`` ``markdown/kakaopay.md`` and
  https://pm-developer-justdoit.tistory.com/473 [official via copy].
- Paths ``/online/v1/payment/{ready,approve,order,cancel,subscription}``: npm
  ``@kakaopay-develop/agent-toolkit@0.1.2`` (Kakao Pay's own npm scope).
- Legacy API, https://developers.kakao.com/docs/latest/ko/kakaopay/single-payment,
  ``/docs/latest/ko/kakaopay/cancellation`` and https://developers.kakao.com/docs/restapi/kakaopay-api
  (``kapi.kakao.com``, ``/v1/payment/…``, ``Authorization: KakaoAK {admin key}``,
  ``application/x-www-form-urlencoded;charset=utf-8``; CID/TID/SID/AID glossary; cancel
  fields including ``cancel_available_amount``) [official]. Field names are the same in
  both generations.
- Common error codes -1 … -12, -401, -603, -903, -9798 with their HTTP statuses:
  https://developers.kakao.com/docs/latest/ko/rest-api/error-code (also ``/en/``), and
  the ``ApiErrorCause`` enum of Kakao's Android SDK reference (developers.kakao.com/sdk/
  reference/android-rx) [official]. Legacy error body ``{"code": -401, "msg": …}``:
  https://devtalk.kakao.com/t/topic/134883 [official forum].
- Cancel body ``cancel_amount``, ``cancel_tax_free_amount`` (required), ``cancel_vat_amount``
  (optional; default (cancel - tax-free) / 11, rounded), ``cancel_available_amount``:
  https://developers.kakao.com/docs/latest/ko/kakaopay/cancellation [official; sure].
  ``CancelRequest.tax_free_amount`` travels as ``cancel_tax_free_amount``.
- ``pg_token`` is appended to ``approval_url`` once the customer has chosen the method and
  authenticated ("사용자 결제 수단 선택 완료 시, approval_url로 redirection해줄 때
  pg_token을 query string으로 전달"):
  https://developers.kakao.com/docs/latest/ko/kakaopay/single-payment [official; likely].
- Order-inquiry ``status`` values (all thirteen) and the order answer's fields: Kakao's
  status table ("결제 상태 값", developers.kakaopay.com/docs/payment/online/common and
  https://developers.kakao.com/docs/restapi/kakaopay-api), read through copies that quote
  it verbatim in ``iceCreamParlor/mipong``
  ``packages/payments/src/payments/kakaopay/type.ts`` and other clients [official via
  copy; likely].
- Error body ``{error_code, error_message, extras{method_result_code,
  method_result_message}}`` and ``-780`` "approval failure!" with ``USER_LOCKED``:
  independent client test suites [3rd-party]; ``LACK_BALANCE`` and ``8326`` likewise.
- Subscription charge ``POST /online/v1/payment/subscription`` with ``cid, sid,
  partner_order_id, partner_user_id, item_name, quantity, total_amount,
  tax_free_amount`` and the test CID ``TCSUBSCRIP``: several public clients calling
  ``open-api.kakaopay.com`` [3rd-party].

- Receipt fields (``card_info``, ``payment_method_type``, ``amount.point``; the cancel's
  ``aid``, ``canceled_at``, ``cancel_available_amount``): the approve and cancel answers
  of https://developers.kakao.com/docs/latest/ko/kakaopay/single-payment and
  https://developers.kakao.com/docs/latest/ko/kakaopay/cancellation [official; sure], value
  shapes from Kakao's answer sample as quoted in client code [official via copy; likely].
  :mod:`payfallback_kakaopay._receipt` maps them field by field.

What proves a payment did not go through: only RECORD — the order inquiry's
``FAIL_AUTH_PASSWORD``, ``QUIT_PAYMENT``, ``FAIL_PAYMENT`` (and ``ISSUED_SID``, nothing
charged) are ``NOT_PAID``; no idempotency header (no REPLAY), no void (no VOID), no
documented settle window (no NOT_FOUND_AFTER_SETTLE). :class:`KakaoPay` gives the sources.

Searched for and **not** confirmed (so handled the safe way): Kakao Pay's numeric error
table (the -7xx family beyond -780) on developers.kakaopay.com could not be read in any
copy; those codes are unmapped, hence ``OutcomeUnknown`` on approve, charge and cancel
(resolved by an order inquiry) and the HTTP-status fallback on ready and lookup. Also
unconfirmed: the code for approving an already-approved tid, the tid lifetime after
ready (no ``expires_at`` is reported) and how long a request may still commit (so no
settle window), the answer to an inquiry for an unknown tid, rate limits, and a
request-id response header.
"""

from payfallback_kakaopay._ops import (
    CURRENT_HOST,
    LEGACY_HOST,
    RESULT_PARAM,
    TEST_CID,
    TEST_SUBSCRIPTION_CID,
    KakaoPay,
)
from payfallback_kakaopay._wire import KakaoStatus

__all__ = [
    "CURRENT_HOST",
    "LEGACY_HOST",
    "RESULT_PARAM",
    "TEST_CID",
    "TEST_SUBSCRIPTION_CID",
    "KakaoPay",
    "KakaoStatus",
]
