"""NHN KCP for payfallback.

Registered as the ``kcp`` provider (entry-point group ``payfallback.providers``)::

    provider = load_provider(
        "kcp",
        site_cd="T0000",
        cert_info=SecretStr(Path("KCP_AUTH_CERT.pem").read_text()),
        private_key=SecretStr(Path("splPrikeyPKCS8.pem").read_text()),
        private_key_password=SecretStr("changeit"),
        batch_group_id="BA0011000348",  # only for batch-key (billing) payments
        sandbox=True,
    )

Operations, the calls they make and the pages they follow. Confidence: **[official]** a
page of developer.kcp.co.kr or KCP's own sample code; **[official sample]** KCP's sample
code as merchants published it; **[3rd-party]** only in other merchants' integrations or
an integrator's guide; **[uncertain]** thin evidence, the safe reading taken.

=======  ==================================================  ====================================
op       wire                                                source
=======  ==================================================  ====================================
ready    none: the window opens in the browser               https://developer.kcp.co.kr/page/document/web
         (``kcp_spay_hub.js``, ``KCP_Pay_Execute_Web``);     [official]
         ``client_params`` carry the order form fields
approve  ``POST /gw/enc/v1/payment`` {tran_cd, site_cd,      https://developer.kcp.co.kr/page/document/standardPay
         kcp_cert_info, enc_data, enc_info, ordr_mony}       [official: the flow and the URL;
                                                             fields: official sample]
charge   ``POST /gw/hub/v1/payment`` {site_cd,                https://developer.kcp.co.kr/page/document/webauto,
         kcp_cert_info, pay_method CARD, amount, card_mny,   https://developer.kcp.co.kr/page/document/keyin
         currency 410, quota, ordr_idxx, good_name,          [official: the endpoint and its JSON
         card_tx_type 11511000, bt_batch_key, bt_group_id}   shape; batch fields: official sample]
lookup   ``POST /std/inquery`` {site_cd, kcp_cert_info,      https://developer.kcp.co.kr/page/document/inquery
         kcp_sign_data, tno, pay_type}                       [official: URL, signature; fields
                                                             3rd-party]
cancel   ``POST /gw/mod/v1/cancel`` {site_cd, tno,           https://developer.kcp.co.kr/page/document/cancel
         kcp_cert_info, kcp_sign_data, mod_type STSC|STPC,   [official: URL, signature; STPC fields
         mod_desc, mod_mny, rem_mny}                         3rd-party]
void     none (no net cancel by order number)                —
=======  ==================================================  ====================================

Other facts and where they come from:

* Hosts ``https://spl.kcp.co.kr`` and, for tests, ``https://stg-spl.kcp.co.kr`` (port
  443): https://developer.kcp.co.kr/page/document/cancel ("테스트 환경 :
  https://stg-spl.kcp.co.kr/gw/mod/v1/cancel") and the FAQ
  https://developer.kcp.co.kr/eng/page/faq/list ("API통신 / OUTBOUND - TEST :
  stg-spl.kcp.co.kr (Port : 443) - REAL : spl.kcp.co.kr") [official, high].
* ``kcp_cert_info``: the service certificate "직렬화" into one line,
  ``"-----BEGIN CERTIFICATE-----MIID…==-----END CERTIFICATE-----"``, needed for approval,
  cancel, trade registration and inquiry:
  https://developer.kcp.co.kr/page/document/standardPay (2.3 서비스 인증서 적용방법) and
  https://developer.kcp.co.kr/en/page/refer/server [official, high]. A certificate sent
  with its ``\\r\\n`` was answered ``S032`` "접근권한이 없습니다" [3rd-party, a merchant's
  integration log]: the adapter always removes the line breaks.
* ``kcp_sign_data``: "generated using the hash string listed below and encoded with
  SHA256withRSA algorithm with the given Private Key … KCP signature for MOD API is as
  follows site_cd + "^" + tno + "^" + mod_type" (https://developer.kcp.co.kr/en/page/refer/server)
  [official, high]; base64 of the signature, the key read from ``splPrikeyPKCS8.pem``
  (an encrypted PKCS#8 key, password ``changeit`` for KCP's test key) in the sample on
  https://developer.kcp.co.kr/page/document/inquery [official, high]. The inquiry signs
  ``site_cd^tno^pay_type``: the sample signs ``"T0000^20210719000000^PACA"`` [official:
  the example string; that it is the inquiry's: official sample and 3rd-party, medium].
  The tests sign with a generated key and verify with its public key; the manual's
  example signature is printed truncated and its key is not public, so only its shape
  (344 base64 characters ending ``==``) can be compared.
* Approval: the window's result (``res_cd``, ``enc_data``, ``enc_info``, ``tran_cd``) is
  POSTed to ``Ret_URL``; ``res_cd == "0000"`` means authenticated
  (https://developer.kcp.co.kr/page/document/web, ``m_Completepayment``) [official].
  ``ordr_mony`` makes KCP compare the authenticated amount with the order's; a mismatch is
  refused with ``8059`` "포맷에러(지불정보-공통:결제금액 불일치)"
  (https://github.com/kcpTest/doc, an NHN KCP integration guide whose author is not
  confirmed) [3rd-party, medium].
* The approval body is the one of KCP's sample (``kcp_api_pay``), as merchants published
  it: ``tran_cd``, ``site_cd``, ``kcp_cert_info``, ``enc_data``, ``enc_info`` and
  ``ordr_mony`` [official sample, high]; the optional ``ordr_no``/``pay_type`` some
  integrations add are not sent.
* Batch-key payments: ``amount`` (= ``card_mny``), ``currency`` 410, ``card_tx_type``
  11511000, ``bt_batch_key``, ``bt_group_id``, and no ``good_mny`` (that belonged to the
  old PayPlus CLI module, whose sample sets the same ``card_tx_type``, ``bt_group_id``
  and ``bt_batch_key``) [official sample, medium]; the same body, and the answer's
  ``tno``, ``amount``, ``order_no``, ``app_no``, ``app_time``, in a batch integration built
  on KCP's sample
  (https://github.com/gnuboard/g5-update/blob/master/bbs/kcp-batch/KcpBatch.php and its
  payment page) [3rd-party, medium]. The key-in page shows the JSON shape of the same
  endpoint and that "결제 응답 전문의 경우 동일한 형태로 리턴됩니다" [official].
* Cancel: ``STSC`` cancels the whole payment; ``STPC`` cancels ``mod_mny`` and sends
  ``rem_mny``, the cancellable balance **before** this cancel, which KCP checks
  [3rd-party, medium: an NHN KCP integration guide (https://github.com/kcpTest/doc,
  취소요청 → 부분취소) lists ``mod_mny`` "취소요청 금액" and ``rem_mny`` "부분취소 이전에
  남은 금액"; KCP's PayPlus cancel sample calls ``rem_mny`` "취소가능잔액", as merchants
  published it; the REST body with ``STPC``, ``mod_mny``, ``rem_mny`` in
  https://github.com/gnuboard/g5-update/blob/master/bbs/kcp-batch/KcpBatch.php
  (3rd-party)]. The
  adapter sends ``STSC`` only for a payment never partly cancelled and cancelled whole,
  and ``rem_mny`` is the Router's ``expected_remaining``, computed once and sent unchanged
  on every retry: a replayed partial cancel is refused, never executed twice.
* Answers: ``res_cd``, ``res_msg``, ``res_en_msg``, ``tno``, ``amount`` (digit strings),
  ``order_no``, ``app_time`` (``yyyyMMddHHmmss``, KST), ``rem_mny`` on inquiries
  [official sample and 3rd-party answers, medium]. A partial cancel's answer states the
  amount cancelled (``mod_mny`` or, in the guide, ``panc_mod_mny``), which must be the one
  asked for; its ``rem_mny`` is read both as the balance before (the guide) and after
  (integrations), so it is not relied on: the balance left is the Router's own figure.
* A cancel from a server whose IP is not registered in the merchant admin is refused with
  ``8012`` "취소불가-상점관리자 문의" (the guide, 결제 서버 IP 등록방법) [3rd-party, medium]:
  a configuration error.
* Result codes: ``0000`` is success [official]. KCP publishes no result-code list on its
  developer site (KCP's older samples point to a code search at
  http://kcp.co.kr/technique.requestcode.do, which could not be read); ``CODE_TABLE``
  holds the codes found, each with its source and confidence
  (:class:`payfallback.adapter.CodeRule`), and ``tests/documented_codes.json`` keeps the
  list. Card refusals (``8186``, ``8188``, ``AC25``, ``CC07`` …) come from an
  integrator's guide to KCP local cards
  (http://www.ezypay.com/failed-payment-response-guide/SK/KCP-local-cards) [3rd-party,
  medium]. Every other code on an approval, a batch payment or a cancel is an unknown
  outcome — never a decline, never success.

* Receipts: ``app_no``, ``card_cd``/``card_name``, ``acqu_cd``/``acqu_name``, ``card_no``,
  ``quota``, ``noinf`` and KCP's card receipt page become ``Receipt`` fields, and a cancel's
  ``canc_time`` a ``RefundReceipt``; ``_ops`` holds the table with each field's source and
  confidence [official sample as merchants published it + 3rd-party, medium].
  ``card_bin_type_01``/``card_bin_type_02`` are not mapped (their values are documented
  nowhere found), nor is a cancel's ambiguous ``rem_mny``.

Points left open, and the safe choice taken:

* The inquiry's answer fields are not published [uncertain]: a lookup needs ``amount`` and
  ``rem_mny`` for the same ``tno``; without them it is "try later", never a guess.
* The tax-free part of a partial cancel: KCP's samples send it only for composite-tax
  (복합과세) contracts, as ``tax_flag`` ``TG03`` with ``mod_tax_mny`` (supply value),
  ``mod_vat_mny`` (VAT) and ``mod_free_mny`` (tax-free) — "복합거래 부분 취소시 주석을 풀어
  주시기 바랍니다" [official sample, medium; also https://github.com/kcpTest/doc]. Splitting the
  taxable part into supply value and VAT is KCP's own rule, not published, and whether
  the REST cancel takes these fields is not shown: none is sent, and
  ``CancelRequest.tax_free_amount`` is not used [uncertain]. A composite-tax contract
  that needs them gets KCP's refusal, and the refund stays owed; no money moves twice.
* ``buyr_name``/``buyr_mail``/``buyr_tel2`` appear in the key-in example; the Router's
  ``Order`` has no buyer details, so they are not sent [uncertain].
* Lengths: ``ordr_idxx`` at most 40 bytes, ``good_name`` cut to 100 bytes (CP949)
  [3rd-party].

What proves a payment did not go through
----------------------------------------

An attempt whose request may have reached KCP ends "not paid" only on positive proof
(``Capabilities.proofs``). KCP offers none that payfallback can use, so a lost approval
or batch payment is an unknown outcome that stays open for reconciliation
(``payfallback reconcile``) and is never sent again or elsewhere:

* **REPLAY — not offered** [official, high]. No KCP page documents an idempotency key;
  the request bodies above are all KCP takes. A second batch payment with the same
  ``ordr_idxx`` is not documented to be refused, so a retried payment may be a second
  payment.
* **VOID — not offered** [official, high]. KCP's samples undo an approval with an
  ordinary cancel (``STSC``) by ``tno`` ("자동취소"); the ``tno`` is in the answer that was
  lost. No net cancel by order number is documented.
* **RECORD — not offered** (``failed_record_is_final=False``) [official, medium]. The
  inquiry (https://developer.kcp.co.kr/page/document/inquery) takes a ``tno`` and
  ``pay_type``; no inquiry by ``ordr_idxx`` was found, and no failed record is documented.
  ``lookup_by_order_id=False``.
* **NOT_FOUND_AFTER_SETTLE — not offered** (``settle_window=None``). No page documents a
  time after which "no such transaction" means the request was never processed (searched:
  the cancel, inquiry, standard payment, automatic payment, key-in and server-certificate
  pages and the FAQ).

A connect error (nothing sent) is the one failure the Router may reroute past at once.
"""

from payfallback_kcp._ops import KST, Kcp
from payfallback_kcp._wire import CODE_TABLE, CODES_SOURCE

__all__ = ["CODES_SOURCE", "CODE_TABLE", "KST", "Kcp"]
