"""KG Inicis (INIpay Standard payment window, INIAPI) for payfallback.

Registered as the ``inicis`` provider (entry-point group ``payfallback.providers``)::

    provider = load_provider(
        "inicis", mid="INIpayTest", iniapi_key="...", sign_key="...", client_ip="203.0.113.10",
        site_url="https://shop.example", buyer_name="...", buyer_email="...", buyer_tel="...",
    )

Operations and where each one's wire format was read. Confidence tags: **[official]** an
Inicis manual page; **[official sample]** Inicis's own sample code (the packages behind the
manual's 샘플 다운로드), read through public copies of it; **[3rd-party]** merchants'
integrations only; **[inferred]** our reading.

=======  ===========================================================  ====================
op       wire                                                         source
=======  ===========================================================  ====================
ready    none: ``INIStdPay.pay()`` opens the window; ``client_params`` [official] manual
         are its form (mid, oid = our attempt id, price, timestamp     .inicis.com/stdpay/
         in ms, signature, verification, mKey, gopaymethod,
         acceptmethod with ``centerCd(Y)``, returnUrl, closeUrl)
approve  form POST to the return POST's ``authUrl`` once it is        [official] stdpay/;
         checked against ``idc_name``: mid, authToken, timestamp,     [official sample]
         signature, verification, charset, format=JSON; the answer's  INIStdPayUtil,
         ``authSignature`` verified                                   properties
charge   ``POST /api/v1/billing`` (form) or ``/v2/pg/billing``        [3rd-party] v1;
         (JSON, ``iniapi_version=2``): moid = our attempt id, price,  [official sample] v2
         billKey
lookup   ``POST /api/v1/extra`` type=Extra paymethod=Inquiry, by      [3rd-party]
         ``oid`` (and ``originalTid`` when known)
cancel   ``POST /api/v1/refund`` type=Refund / PartialRefund (price,  [official] iniapi/;
         confirmPrice), or ``/v2/pg/refund`` / ``/v2/pg/partialRefund`` [official sample]
void     net cancel of a lost window approval, in-process (see VOID);  [official]
         ``build_net_cancel`` posts the approval form to the checked  stdpay/std-add.php
         ``netCancelUrl``
=======  ===========================================================  ====================

Facts and their sources:

* INIAPI: "API URL : https://iniapi.inicis.com/api/v1/{서비스api}", HTTP POST, "각
  파라미터를 key=value 로 세팅하여 POST로 API 요청 (JSON방식 요청불가)", answers in JSON; the
  key is the INIAPI key, not the web signKey; the refund sample's
  ``hashData = sha512(key + type + paymethod + timestamp + clientIp + mid + tid)`` and the
  test merchant INIpayTest's INIAPI key — https://manual.inicis.com/iniapi/ [official, high];
  "INIAPI 에서 사용되는 key 는 signkey 가 아닌 INIAPI key" —
  https://www.inicis.com/blog/archives/category/cs/cs_best/모듈연동-faq/INIAPI [official, high].
* Partial refund: ``type=PartialRefund`` with ``price`` and ``confirmPrice`` (the balance
  left after this refund), both appended to the hash [official sample, medium]. Inicis
  refuses a partial refund whose ``confirmPrice`` no longer matches the balance, so the
  adapter computes it from the request the Router journaled for the refund
  (``expected_remaining - amount``) and never from a fresh balance.
* Window: ``https://stdpay.inicis.com/stdjs/INIStdPay.js``; ``mKey`` = SHA-256(signKey) (the
  manual's form shows INIpayTest's value ``3a9503…``); ``signature`` = SHA-256(
  ``oid=…&price=…&timestamp=…``), ``verification`` = SHA-256(``oid&price&signKey&timestamp``)
  — https://manual.inicis.com/stdpay/ [official, high; the tests reproduce four signatures
  Inicis's sample form rendered for INIpayTest].
* Approval: ``signature`` = SHA-256(``authToken=…&timestamp=…``), ``timestamp`` in
  milliseconds — https://manual.inicis.com/stdpay/std-add.php [official, high];
  ``verification`` = SHA-256(``authToken&signKey&timestamp``) [official sample, medium];
  answer ``resultCode`` "0000", ``tid``, ``MOID``, ``TotPrice``, ``applDate``/``applTime``
  [official sample, high]; ``authSignature`` = SHA-256 over two of mid, MOID, TotPrice and
  our timestamp in an order chosen by the timestamp's last digit (INIStdPayUtil
  ``makeSignatureAuth``) [official sample, medium]. An answer whose ``authSignature`` does
  not verify is an unknown outcome, resolved by inquiry.
* ``authUrl`` / ``netCancelUrl``: the return POST travels through the customer's browser, so
  both are refused unless they are exactly ``https://{fc,ks,stg}stdpay.inicis.com`` +
  ``/api/payAuth`` / ``/api/netCancel`` for the ``idc_name`` it names (the sample's
  ``properties`` table; ``acceptmethod`` ``centerCd(Y)`` makes Inicis send ``idc_name``)
  [official sample, medium]. Nothing is sent otherwise.
* Wallets: ``gopaymethod`` ``onlykakaopay``, ``onlynaverpay``, ``onlypayco``, ``onlyssp``
  (Samsung Pay) with ``acceptmethod`` ``cardonly`` open the window on that wallet alone
  [3rd-party, consistent across several integrations, medium]. Paid by card, they are
  refunded as ``paymethod=Card`` [inferred]. Bank transfer is not offered: its refund takes
  ``paymethod=Acct`` and a ``CancelRequest`` does not say how the payment was made.
* INIAPI v2: ``/v2/pg/billing``, ``/v2/pg/refund``, ``/v2/pg/partialRefund``, JSON
  ``{mid, type, [paymethod], timestamp, clientIp, data, hashData}`` with ``hashData`` =
  SHA-512(key + mid + type + timestamp + ``data`` as compact JSON, unescaped, in the order
  sent) [official sample, medium].
* Inquiry: ``status`` "0" approved, "1" cancelled, "9" no such transaction — under
  ``resultCode`` "00", so "00" alone is no proof of a payment [3rd-party, low-medium]. Any
  other status leaves the transaction unresolved.
* Result codes: Inicis documents success only ("0000" / "00", anything else a failure) and
  publishes no failure table (searched: manual.inicis.com stdpay, iniapi, the INIAPI FAQ).
  ``CODE_TABLE`` holds exactly the documented codes; ``tests/documented_codes.json`` keeps
  them with their source and a test fails on any difference.

* Receipts: the window approval's ``applNum``, ``CARD_Code``, ``CARD_Num``, ``CARD_Quota``,
  ``CARD_Interest``, ``CARD_CheckFlag`` and INIAPI billing's ``payAuthCode``, ``cardCode``,
  ``cardQuota``, ``checkFlg`` become ``Receipt`` fields, and a refund's ``cancelDate`` /
  ``prtcDate``, ``tid`` and ``prtcRemains`` a ``RefundReceipt``; ``_ops`` holds the table
  with each field's source and confidence [official sample + 3rd-party, medium].

Points left open, and the reading that can never charge twice:

* A billing answer other than "00" has been seen with the card charged [3rd-party]: it is an
  unknown outcome, never a decline, and the Router inquires before anything else. A card
  that is truly refused therefore leaves the order open until the inquiry or a person
  settles it.
* A readable approval answer other than "0000" is a decline: "0000 성공, 이외 실패" and the
  official sample treats it as a failure (it net-cancels only when the merchant's own
  processing fails).
* Whether the billing answer carries ``price`` and ``moid`` is not documented: when present
  they must match; when absent the requested amount is reported.

What proves a payment did not go through
----------------------------------------

* **REPLAY — not offered.** Inicis has no idempotency key and documents no refusal of a
  reused order number: a billing charge sent again may charge again.
* **VOID — the net cancel of a window approval whose answer was lost.** Net cancel exists
  only for that ("승인결과 전문 처리 중 예외발생 시 망취소 요청 … 망취소를 일반 결제취소
  용도로 사용하지 마십시오", https://manual.inicis.com/stdpay/std-add.php) and needs the
  return POST's ``authToken`` and ``netCancelUrl``: the Router sends it right after the lost
  approval, with the ``VoidRequest.callback_params`` of that approval, which are never
  journaled. Only ``resultCode 0000`` counts. A void without them (a billing charge, a later
  ``recover()``) is refused by ``build_void``: billing has no net cancel at all. No time limit
  is documented; ``void_window`` (1 hour from the checkout's start) is our bound [inferred].
* **RECORD — not offered** (``failed_record_is_final=False``): the inquiry reports no failed
  transactions, and whether an oid can be paid after a failure is not documented.
* **NOT_FOUND_AFTER_SETTLE — not offered** (``settle_window=None``): no time after which
  status "9" means "never processed" is documented. A lost billing or approval answer that
  the inquiry cannot find stays unknown and goes to reconciliation.
"""

from payfallback_inicis._ops import GOPAYMETHOD, KST, Inicis
from payfallback_inicis._wire import CODE_TABLE, CODES_SOURCE, INQUIRY_STATUS

__all__ = ["CODES_SOURCE", "CODE_TABLE", "GOPAYMETHOD", "INQUIRY_STATUS", "KST", "Inicis"]
