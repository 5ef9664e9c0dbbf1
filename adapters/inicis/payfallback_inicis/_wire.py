"""KG Inicis's wire format: hosts, form fields, signatures and hashes, answers, the code table.

Two products, two vocabularies:

* **INIpay Standard** (the PC payment window, ``stdpay.inicis.com``): form fields for
  ``INIStdPay.pay()``, the authentication result POSTed to the merchant's ``returnUrl``, and
  the approval at ``authUrl`` (form POST, JSON answer). Signatures are SHA-256 over
  ``key=value`` pairs joined by ``&`` in key order.
* **INIAPI** (``iniapi.inicis.com/api/v1/...``): form-urlencoded requests, JSON answers, each
  request carrying ``hashData`` = SHA-512 hex of the INIAPI key followed by the documented
  fields.

Request models are strict (a wrong field fails at build time, not at Inicis); answers are
read tolerantly (every field optional, extra fields kept): what the adapter *needs* from a
success answer is checked in ``_ops``, and its absence is an unknown outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payfallback.adapter import CodeRule, Verdict, code_table

__all__ = [
    "APPROVE_PATH",
    "APPROVE_SUCCESS",
    "CODES_SOURCE",
    "CODE_TABLE",
    "IDC_HOSTS",
    "INIAPI_HOST",
    "INIAPI_SUCCESS",
    "INQUIRY_STATUS",
    "NET_CANCEL_PATH",
    "SANDBOX_INIAPI_HOST",
    "SANDBOX_STDPAY_JS",
    "STDPAY_JS",
    "ApprovalAnswer",
    "ApproveForm",
    "AuthResult",
    "BillingData",
    "BillingForm",
    "IniapiAnswer",
    "InquiryForm",
    "RefundData",
    "RefundForm",
    "approval_signature",
    "approval_verification",
    "as_int",
    "auth_signature",
    "iniapi_hash",
    "mkey",
    "read_answer",
    "signature_matches",
    "v2_data_json",
    "v2_hash",
    "window_signature",
    "window_verification",
]

# -- hosts ------------------------------------------------------------------------------------

#: INIAPI ("API URL : https://iniapi.inicis.com/api/v1/{서비스api}", manual.inicis.com/iniapi/).
INIAPI_HOST = "https://iniapi.inicis.com"
#: The test hosts, as merchants' integrations use them with the test MIDs [3rd-party].
SANDBOX_INIAPI_HOST = "https://stginiapi.inicis.com"
#: "결제요청JS : https://stdpay.inicis.com/stdjs/INIStdPay.js" (manual.inicis.com/stdpay/).
STDPAY_JS = "https://stdpay.inicis.com/stdjs/INIStdPay.js"
SANDBOX_STDPAY_JS = "https://stgstdpay.inicis.com/stdjs/INIStdPay.js"

#: ``idc_name`` of the authentication result → the only host its ``authUrl`` and
#: ``netCancelUrl`` may name (Inicis's PC sample ``properties``: fc, ks, stg). Anything else
#: is refused before a byte is sent: the return POST comes through the customer's browser,
#: and a forged ``authUrl`` would make the server POST the authToken anywhere.
IDC_HOSTS: Mapping[str, str] = {
    "fc": "fcstdpay.inicis.com",
    "ks": "ksstdpay.inicis.com",
    "stg": "stgstdpay.inicis.com",
}
APPROVE_PATH = "/api/payAuth"
NET_CANCEL_PATH = "/api/netCancel"

#: The window's authentication result and the approval answer: "0000" is success,
#: anything else failure (manual.inicis.com/stdpay/, 인증결과수신 and 승인요청/응답).
APPROVE_SUCCESS = "0000"
#: INIAPI: ``resultCode`` "00" is success, anything else failure (manual.inicis.com/iniapi/).
INIAPI_SUCCESS = "00"

#: The inquiry's ``status`` (INIAPI "기타API", 거래조회): read from Inicis's sample integrations,
#: not from a published table [3rd-party]. "9" means "no such transaction" and comes with
#: ``resultCode`` "00" — a check of ``resultCode`` alone would read it as found.
INQUIRY_STATUS: Mapping[str, str] = {
    "0": "approved",
    "1": "cancelled",
    "9": "not found",
}

CODES_SOURCE = "https://manual.inicis.com/iniapi/ ; https://manual.inicis.com/stdpay/"


def _success(meaning: str) -> CodeRule:
    """A success code reaching the table arrived with an HTTP error, on the other product,
    or without what a success answer must carry: the call may have acted, so it is an
    unknown outcome settled by inquiry — never success, never a refusal."""
    return CodeRule(Verdict.UNKNOWN, meaning, source=CODES_SOURCE)


#: Every result code Inicis documents for the calls this adapter makes. Inicis publishes no
#: table of failure codes for INIAPI or the approval ("이외 실패": anything else is a
#: failure); which non-success codes mean "nothing was charged" is therefore not known, and
#: the adapter keeps the kit's rule: a code the table does not list, on a call that moves
#: money, is an unknown outcome resolved by inquiry (``_ops`` documents the one exception, the
#: window approval's failure answer, which Inicis's own sample treats as a failure).
CODE_TABLE: Mapping[str, CodeRule] = code_table(
    {
        "0000": _success("성공 (INIpay Standard authentication / approval)"),
        "00": _success("성공 (INIAPI)"),
    }
)


# -- signatures and hashes --------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def mkey(sign_key: str) -> str:
    """``mKey`` = SHA-256 hex of the signKey (the window form; manual.inicis.com/stdpay/)."""
    return _sha256(sign_key)


def window_signature(*, oid: str, price: int, timestamp: str) -> str:
    """The window form's ``signature``: SHA-256 of ``oid=..&price=..&timestamp=..``."""
    return _sha256(f"oid={oid}&price={price}&timestamp={timestamp}")


def window_verification(*, oid: str, price: int, sign_key: str, timestamp: str) -> str:
    """The window form's ``verification``: SHA-256 of ``oid&price&signKey&timestamp``."""
    return _sha256(f"oid={oid}&price={price}&signKey={sign_key}&timestamp={timestamp}")


def approval_signature(*, auth_token: str, timestamp: str) -> str:
    """The approval's ``signature``: SHA-256 of ``authToken=..&timestamp=..``."""
    return _sha256(f"authToken={auth_token}&timestamp={timestamp}")


def approval_verification(*, auth_token: str, sign_key: str, timestamp: str) -> str:
    """The approval's ``verification``: SHA-256 of ``authToken&signKey&timestamp``."""
    return _sha256(f"authToken={auth_token}&signKey={sign_key}&timestamp={timestamp}")


def auth_signature(*, mid: str, tstamp: str, moid: str, tot_price: str) -> str:
    """The approval answer's ``authSignature`` (INIStdPayUtil ``makeSignatureAuth``).

    SHA-256 of two of mid, MOID, TotPrice and the approval's own timestamp, in an order
    chosen by the timestamp's last digit, as Inicis's sample utility computes it.
    """
    m, t, o, p = f"mid={mid}", f"tstamp={tstamp}", f"MOID={moid}", f"TotPrice={tot_price}"
    orders = {
        "1": (o, m, t),
        "2": (o, t, m),
        "3": (m, o, t),
        "4": (m, t, o),
        "5": (t, m, o),
        "6": (t, o, m),
        "7": (p, m, t),
        "8": (p, t, m),
        "9": (p, o, t),
        "0": (p, t, o),
    }
    last = tstamp[-1:] if tstamp else ""
    parts = orders.get(last)
    if parts is None:
        return ""
    return _sha256("&".join(parts))


def iniapi_hash(key: str, *fields: str) -> str:
    """INIAPI ``hashData``: SHA-512 hex of the INIAPI key followed by ``fields``."""
    return hashlib.sha512((key + "".join(fields)).encode("utf-8")).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of two hex digests (case-insensitive)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.lower(), given.strip().lower())


# -- requests (strict) ------------------------------------------------------------------------


class _Form(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    def wire(self) -> dict[str, str]:
        """Form fields as Inicis names them, optional fields left out."""
        return {k: str(v) for k, v in self.model_dump(by_alias=True, exclude_none=True).items()}


class ApproveForm(_Form):
    """The approval (and net cancel) POST to ``authUrl`` / ``netCancelUrl``: "승인요청 전문"
    (manual.inicis.com/stdpay/, 승인요청; manual.inicis.com/stdpay/std-add.php, 망취소)."""

    mid: str = Field(min_length=1, max_length=10)
    auth_token: str = Field(alias="authToken", min_length=1)
    timestamp: str = Field(min_length=13, max_length=20, pattern=r"^\d+$")
    signature: str = Field(min_length=64, max_length=64)
    verification: str = Field(min_length=64, max_length=64)
    charset: str = "UTF-8"
    format: str = "JSON"


class BillingForm(_Form):
    """``POST /api/v1/billing`` (INIAPI 빌링 승인), with ``hashData`` over key, type,
    paymethod, timestamp, clientIp, mid, moid, price and billKey."""

    type: str = "Billing"
    paymethod: str = "Card"
    timestamp: str = Field(pattern=r"^\d{14}$")
    client_ip: str = Field(alias="clientIp", min_length=7, max_length=39)
    mid: str = Field(min_length=1, max_length=10)
    url: str = Field(min_length=1)
    moid: str = Field(min_length=1, max_length=40)
    good_name: str = Field(alias="goodName", min_length=1)
    buyer_name: str = Field(alias="buyerName", min_length=1)
    buyer_email: str = Field(alias="buyerEmail", min_length=1)
    buyer_tel: str = Field(alias="buyerTel", min_length=1)
    price: int = Field(gt=0)
    bill_key: str = Field(alias="billKey", min_length=1)
    authentification: str = "00"
    card_quota: str = Field(alias="cardQuota", default="00")
    quota_interest: str = Field(alias="quotaInterest", default="0")
    hash_data: str = Field(alias="hashData", min_length=128, max_length=128)


class BillingData(_Form):
    """INIAPI v2 ``POST /v2/pg/billing``: the ``data`` object (the hash covers it as sent)."""

    url: str = Field(min_length=1)
    moid: str = Field(min_length=1, max_length=40)
    good_name: str = Field(alias="goodName", min_length=1)
    buyer_name: str = Field(alias="buyerName", min_length=1)
    buyer_email: str = Field(alias="buyerEmail", min_length=1)
    buyer_tel: str = Field(alias="buyerTel", min_length=1)
    price: str = Field(pattern=r"^[1-9]\d*$")
    bill_key: str = Field(alias="billKey", min_length=1)
    authentification: str = "00"
    card_quota: str = Field(alias="cardQuota", default="00")
    quota_interest: str = Field(alias="quotaInterest", default="0")


class RefundData(_Form):
    """INIAPI v2 ``POST /v2/pg/refund`` and ``/v2/pg/partialRefund``: the ``data`` object."""

    tid: str = Field(min_length=1, max_length=40)
    msg: str = Field(min_length=1)
    price: str | None = Field(default=None, pattern=r"^[1-9]\d*$")
    confirm_price: str | None = Field(alias="confirmPrice", default=None, pattern=r"^\d+$")
    currency: str | None = None


def v2_data_json(data: Mapping[str, str]) -> str:
    """``data`` as INIAPI v2 hashes and sends it: compact JSON, in the order given, non-ASCII
    and ``/`` unescaped (the samples' ``json_encode(..., JSON_UNESCAPED_UNICODE)`` with
    ``\\/`` put back to ``/``)."""
    return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))


def v2_hash(key: str, *, mid: str, type_: str, timestamp: str, data: Mapping[str, str]) -> str:
    """INIAPI v2 ``hashData``: SHA-512 hex of key + mid + type + timestamp + data JSON."""
    return hashlib.sha512((key + mid + type_ + timestamp + v2_data_json(data)).encode()).hexdigest()


class RefundForm(_Form):
    """``POST /api/v1/refund``: ``type=Refund`` (all of it) or ``PartialRefund`` with
    ``price`` (this refund) and ``confirmPrice`` (the balance left after it)."""

    type: str = Field(pattern=r"^(Refund|PartialRefund)$")
    paymethod: str = "Card"
    timestamp: str = Field(pattern=r"^\d{14}$")
    client_ip: str = Field(alias="clientIp", min_length=7, max_length=39)
    mid: str = Field(min_length=1, max_length=10)
    tid: str = Field(min_length=1, max_length=40)
    msg: str = Field(min_length=1)
    price: int | None = Field(default=None, gt=0)
    confirm_price: int | None = Field(alias="confirmPrice", default=None, ge=0)
    hash_data: str = Field(alias="hashData", min_length=128, max_length=128)


class InquiryForm(_Form):
    """``POST /api/v1/extra`` with ``type=Extra&paymethod=Inquiry`` (거래조회), by the
    original tid and/or our order id."""

    type: str = "Extra"
    paymethod: str = "Inquiry"
    timestamp: str = Field(pattern=r"^\d{14}$")
    client_ip: str = Field(alias="clientIp", min_length=7, max_length=39)
    mid: str = Field(min_length=1, max_length=10)
    original_tid: str | None = Field(alias="originalTid", default=None, min_length=1)
    oid: str | None = Field(default=None, min_length=1, max_length=40)
    hash_data: str = Field(alias="hashData", min_length=128, max_length=128)


# -- answers (tolerant) -----------------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


A = TypeVar("A", bound=_Answer)


class AuthResult(_Answer):
    """The authentication result the window POSTs to ``returnUrl`` (인증결과수신)."""

    result_code: str | None = Field(default=None, alias="resultCode")
    result_msg: str | None = Field(default=None, alias="resultMsg")
    mid: str | None = None
    order_number: str | None = Field(default=None, alias="orderNumber")
    auth_token: str | None = Field(default=None, alias="authToken")
    auth_url: str | None = Field(default=None, alias="authUrl")
    net_cancel_url: str | None = Field(default=None, alias="netCancelUrl")
    idc_name: str | None = None


class ApprovalAnswer(_Answer):
    """The JSON answer of ``authUrl`` (승인결과)."""

    result_code: str | None = Field(default=None, alias="resultCode")
    result_msg: str | None = Field(default=None, alias="resultMsg")
    tid: str | None = None
    moid: str | None = Field(default=None, alias="MOID")
    tot_price: str | None = Field(default=None, alias="TotPrice")
    pay_method: str | None = Field(default=None, alias="payMethod")
    appl_date: str | None = Field(default=None, alias="applDate")
    appl_time: str | None = Field(default=None, alias="applTime")
    auth_signature: str | None = Field(default=None, alias="authSignature")
    mid: str | None = None
    # Card fields of the answer (승인결과 상세, card): read for the receipt only; see
    # ``_ops.approval_receipt`` for their meanings and sources.
    appl_num: str | None = Field(default=None, alias="applNum")
    card_num: str | None = Field(default=None, alias="CARD_Num")
    card_quota: str | None = Field(default=None, alias="CARD_Quota")
    card_interest: str | None = Field(default=None, alias="CARD_Interest")
    card_code: str | None = Field(default=None, alias="CARD_Code")
    card_check_flag: str | None = Field(default=None, alias="CARD_CheckFlag")


class IniapiAnswer(_Answer):
    """An INIAPI JSON answer (billing, refund, inquiry); every field optional."""

    result_code: str | None = Field(default=None, alias="resultCode")
    result_msg: str | None = Field(default=None, alias="resultMsg")
    tid: str | None = None
    price: str | None = None
    status: str | None = None
    oid: str | None = None
    moid: str | None = None
    pay_date: str | None = Field(default=None, alias="payDate")
    pay_time: str | None = Field(default=None, alias="payTime")
    prtc_tid: str | None = Field(default=None, alias="prtcTid")
    prtc_price: str | None = Field(default=None, alias="prtcPrice")
    prtc_remains: str | None = Field(default=None, alias="prtcRemains")
    prtc_date: str | None = Field(default=None, alias="prtcDate")
    prtc_time: str | None = Field(default=None, alias="prtcTime")
    cancel_date: str | None = Field(default=None, alias="cancelDate")
    cancel_time: str | None = Field(default=None, alias="cancelTime")
    # Billing's card fields: read for the receipt only (see ``_ops.billing_receipt``).
    pay_auth_code: str | None = Field(default=None, alias="payAuthCode")
    card_code: str | None = Field(default=None, alias="cardCode")
    card_quota: str | None = Field(default=None, alias="cardQuota")
    check_flg: str | None = Field(default=None, alias="checkFlg")


def read_answer(model: type[A], data: dict[str, Any] | None) -> A | None:
    """``data`` read as ``model``; None when it is not an object of the documented shape."""
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def as_int(value: str | None) -> int | None:
    """An amount Inicis sends as text ("1000"); None when absent or not a whole number."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return int(text)
