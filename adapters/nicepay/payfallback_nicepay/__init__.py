"""NICEPAY (new "start" API) for payfallback.

Registered as the ``nicepay`` provider (entry-point group ``payfallback.providers``)::

    provider = load_provider("nicepay", client_key="...", secret_key="...", sandbox=True)

Operations and the pages of the official manual (repository ``nicepayments/nicepay-manual``,
read at b2769a0 and 0436c7a) each one follows:

=======  ======================================================  ============================
op       wire                                                    manual page
=======  ======================================================  ============================
ready    none: the JS SDK (``AUTHNICE.requestPay``) opens the    api/payment-window-server.md
         window; ``client_params`` carry clientId, method,       (결제창 Server 승인 모델)
         orderId (our attempt id), amount, goodsName, returnUrl
approve  ``POST /v1/payments/{tid}`` ``{amount}`` after checking  api/payment-window-server.md
         the callback (authResultCode, amount, signature)        (승인)
charge   ``POST /v1/subscribe/{bid}/payments`` (billing key)     api/payment-subscribe.md
                                                                 (빌키승인)
lookup   ``GET /v1/payments/{tid}``; ``GET                        api/status-transaction.md
         /v1/payments/find/{orderId}?orderDate=YYYYMMDD``
cancel   ``POST /v1/payments/{tid}/cancel`` {reason, orderId,    api/cancel.md (취소·환불)
         cancelAmt, taxFreeAmt}
void     ``POST /v1/payments/netcancel`` {orderId}, within 1 h   api/cancel.md (망취소)
=======  ======================================================  ============================

Other facts and where they come from:

* Hosts ``api.nicepay.co.kr`` / ``sandbox-api.nicepay.co.kr``, payment window
  ``pay.nicepay.co.kr/v1/js/`` / ``sandbox-pay.nicepay.co.kr/v1/js/``, and the sandbox's
  limits (no partial cancel; net cancel absent from its API table): common/api.md,
  common/test.md (샌드박스를 통한 TEST).
* ``Authorization: Basic base64(clientKey:secretKey)``, ``Content-Type:
  application/json;charset=utf-8``: common/api.md. Bearer tokens (``/v1/access-token``) are
  not used: they expire after 30 minutes and would need state the adapter must not keep.
* Timeouts (connect 5 s, read 30 s) and "after a read timeout, net-cancel":
  common/preparations.md (타임아웃 정보).
* Result codes: common/code.md (API 응답코드), every one mapped in ``CODE_TABLE`` as a
  :class:`payfallback.adapter.CodeRule` with the manual's own text as its meaning; the list
  is kept as data in ``tests/documented_codes.json`` and a test fails on any code the table
  lacks. Every error is made by the instance's :class:`payfallback.adapter.AdapterKit`.
* Cancels send ``taxFreeAmt`` ("취소금액중 면세공급가액", the tax-free part of the cancel
  amount): ``CancelRequest.tax_free_amount``, whenever the order has a tax-free part
  (api/cancel.md, 취소 요청 명세).
* Signatures: the payment object's ``signature`` = hex(sha256(tid + amount + ediDate +
  SecretKey)) and the callback's = hex(sha256(authToken + clientId + amount + SecretKey))
  (api/payment-window-server.md). Both formulas reproduce the manual's own sandbox example
  (common/test.md), which the tests pin.
* Method names (card, bank, cellphone, kakaopay, naverpayCard, payco, samsungpayCard) and
  the phone-billing ``isDigital`` field: api/payment-window-server.md (the revision that
  lists ``bank`` and ``cellphone``). Virtual accounts (``vbank``) are left out: they are
  paid later by deposit, which the Router does not wait for.
* Receipts: ``approveNo``, ``receiptUrl``, ``payMethod`` and the ``card`` object
  (cardCode, cardName, cardNum, cardQuota, isInterestFree, cardType credit|check,
  acquCardCode, acquCardName) of api/payment-window-server.md and
  api/payment-subscribe.md (응답 명세); the cancel's ``cancelledTid``, ``cancels[]`` and
  ``balanceAmt`` of api/cancel.md. Mapped in ``payfallback_nicepay._receipt``.
* Cancels send a fresh ``orderId`` per cancel, as NICEPAY's official Python sample does
  (``nicepayments/nicepay-python`` ``server-auth/app.py``); the spec's ``cancelAmt`` is used
  rather than the sample's ``amount``.

Points the manual leaves open, and the safe choice taken:

* Whether ``orderDate`` of the orderId inquiry goes in the query string is not stated
  [uncertain]; merchant integrations in public repositories send ``?orderDate=YYYYMMDD``
  [3rd-party], and so do we. Which day NICEPAY files an order
  under is not stated either: "not found" for an attempt made within 10 minutes of midnight
  KST is an unknown outcome, not proof that nothing was charged.
* Legacy success codes (3001, 4000, 4100, A000, F200, W000 …) may or may not still appear
  [uncertain]: on a money-moving call they are an unknown outcome settled by lookup, never
  success.
* Which code a second approval of the same tid returns (2201 or A225) is not stated: both
  are duplicates, an unknown outcome settled by lookup.
* ``signature`` is optional in the manual's tables: it is verified whenever present, and a
  signature that does not verify on a success answer is an unknown outcome (a lookup
  answer that does not verify is not trusted either).

What proves a payment did not go through
----------------------------------------

An attempt whose request may have reached NICEPAY ends "not paid" only on positive proof
(``Capabilities.proofs``). NICEPAY offers one:

* **VOID — offered** [official, high confidence]. The net cancel, ``POST
  /v1/payments/netcancel`` by orderId, is NICEPAY's own prescription: "결제 연동 시 네트워크
  순단 혹은 HTTP client의 Read-timeout으로 결제(승인) 결과가 불확실하다면 망취소 API를 호출하여
  문제거래를 취소 해야 합니다" and "망취소 유효기간은 1시간으로, 요청 후 1시간 초과건은 망취소가
  실패됩니다" (https://github.com/nicepayments/nicepay-manual/blob/main/api/cancel.md#망취소);
  "Read-timeout이 발생된 경우 반드시 망 취소를 요청하여 결제 정보 불일치를 방지 해주세요"
  (https://github.com/nicepayments/nicepay-manual/blob/main/common/preparations.md#타임아웃-정보).
  ``void_window`` is 1 hour. ``parse_void`` returns ``Cancelled(settled=True)`` only for an
  acknowledged net cancel: a success code with a payment object whose status is
  ``cancelled`` and nothing left to cancel. The manual does not say what a net cancel of a
  transaction that never happened answers, so "no such transaction" (2012, A118, U126 …)
  on a net cancel is *not* proof: it is an unknown outcome, and the attempt stays open.
* **REPLAY — not offered** [official]. NICEPAY has no idempotency header (common/api.md
  lists only ``Content-Type`` and ``Authorization``). Re-sending a paid orderId is refused
  as a duplicate (A127 …), which does not return the first answer.
* **RECORD — not offered** (``failed_record_is_final=False``) [inferred, medium
  confidence]. The manual refuses only a *paid* orderId a second time ("결제된 orderId로
  재호출 불가",
  https://github.com/nicepayments/nicepay-manual/blob/main/api/payment-window-server.md and
  https://github.com/nicepayments/nicepay-manual/blob/main/api/payment-subscribe.md): after
  a failure the same orderId can be paid, and which of its transactions
  ``/v1/payments/find/{orderId}`` reports is not stated. A lookup still answers
  ``NOT_PAID`` for a ``failed``/``expired`` record; the core does not take it as proof.
* **NOT_FOUND_AFTER_SETTLE — not offered** (``settle_window=None``). The manual documents
  no time after which an inquiry's "no such transaction" (A118 "조회 결과데이터 없음")
  means the request was never processed (searched: api/status-transaction.md,
  common/code.md, common/preparations.md). A lookup still answers ``NOT_FOUND`` for it.
"""

from payfallback_nicepay._ops import JS_METHODS, KST, Nicepay
from payfallback_nicepay._wire import CODE_TABLE, CODES_SOURCE, PayStatus

__all__ = ["CODES_SOURCE", "CODE_TABLE", "JS_METHODS", "KST", "Nicepay", "PayStatus"]
