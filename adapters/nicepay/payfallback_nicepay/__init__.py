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
         cancelAmt}
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
* Result codes: common/code.md (API 응답코드), every one mapped in ``_wire.CODE_TABLE``;
  the list is kept as data in ``tests/documented_codes.json`` and a test fails on any code the
  table lacks.
* Signatures: the payment object's ``signature`` = hex(sha256(tid + amount + ediDate +
  SecretKey)) and the callback's = hex(sha256(authToken + clientId + amount + SecretKey))
  (api/payment-window-server.md). Both formulas reproduce the manual's own sandbox example
  (common/test.md), which the tests pin.
* Method names (card, bank, cellphone, kakaopay, naverpayCard, payco, samsungpayCard) and
  the phone-billing ``isDigital`` field: api/payment-window-server.md (the revision that
  lists ``bank`` and ``cellphone``). Virtual accounts (``vbank``) are left out: they are
  paid later by deposit, which the Router does not wait for.
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
"""

from payfallback_nicepay._ops import JS_METHODS, KST, Nicepay
from payfallback_nicepay._wire import CODE_TABLE, CodeClass, PayStatus

__all__ = ["CODE_TABLE", "JS_METHODS", "KST", "CodeClass", "Nicepay", "PayStatus"]
