"""NHN KCP's vocabulary: hosts, request bodies, the answer, the signature and the code table.

Every request is a JSON body POSTed to ``spl.kcp.co.kr`` (``stg-spl.kcp.co.kr`` for tests)
carrying the merchant's service certificate as ``kcp_cert_info``; cancels and inquiries
add ``kcp_sign_data``. Every answer is a flat JSON object whose ``res_cd`` says how it went
(``"0000"``: done). Amounts travel as strings of digits. See the package docstring for the
page each fact comes from.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payfallback.adapter import CodeRule, Verdict, code_table

__all__ = [
    "API_HOST",
    "CODES_SOURCE",
    "CODE_TABLE",
    "SANDBOX_API_HOST",
    "SUCCESS_CODE",
    "Answer",
    "ApproveBody",
    "BatchBody",
    "CancelBody",
    "InquiryBody",
    "load_private_key",
    "one_line_certificate",
    "read_answer",
    "sign",
    "sign_data",
]

API_HOST = "https://spl.kcp.co.kr"
SANDBOX_API_HOST = "https://stg-spl.kcp.co.kr"
#: The payment window script (PC standard payment), production and test.
JS_URL = "https://spay.kcp.co.kr/plugin/kcp_spay_hub.js"
SANDBOX_JS_URL = "https://testspay.kcp.co.kr/plugin/kcp_spay_hub.js"
#: The card receipt (신용카드 영수증) page, production and test, as KCP's payment samples open
#: it (``receiptView``: "실결제시 : https://admin8.kcp.co.kr/assist/bill.BillActionNew.do?
#: cmd=card_bill&tno=", "테스트시 : https://testadmin8.kcp.co.kr/...") with ``order_no`` and
#: ``trade_mony`` [official sample as merchants published it, medium].
RECEIPT_URL = "https://admin8.kcp.co.kr/assist/bill.BillActionNew.do"
SANDBOX_RECEIPT_URL = "https://testadmin8.kcp.co.kr/assist/bill.BillActionNew.do"

APPROVE_PATH = "/gw/enc/v1/payment"
BATCH_PATH = "/gw/hub/v1/payment"
CANCEL_PATH = "/gw/mod/v1/cancel"
INQUIRY_PATH = "/std/inquery"

SUCCESS_CODE: Final = "0000"
#: KCP's currency code for won (ISO 4217 numeric), as the key-in and batch bodies send it.
KRW: Final = "410"
#: ``card_tx_type`` of a batch-key (billing) card payment.
BATCH_CARD_TX_TYPE: Final = "11511000"
#: ``pay_type`` / ``pay_method`` of a card payment in the REST answers and the inquiry.
CARD_PAY_TYPE: Final = "PACA"
#: The window's ``pay_method`` for a card (PC standard payment).
CARD_WINDOW_METHOD: Final = "100000000000"
#: Full and partial cancel (``mod_type``).
FULL_CANCEL: Final = "STSC"
PARTIAL_CANCEL: Final = "STPC"


# -- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def wire(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if v is not None}


_Digits = Field(pattern=r"^[0-9]{1,12}$")


class ApproveBody(_Body):
    """``POST /gw/enc/v1/payment``: approve what the customer authenticated in the window."""

    tran_cd: str = Field(pattern=r"^[0-9]{8}$")
    site_cd: str = Field(min_length=1, max_length=10)
    kcp_cert_info: str = Field(min_length=1)
    enc_data: str = Field(min_length=1)
    enc_info: str = Field(min_length=1)
    #: The order amount, which KCP checks against the authenticated one.
    ordr_mony: str = _Digits


class BatchBody(_Body):
    """``POST /gw/hub/v1/payment``: a card payment with a batch key (billing)."""

    site_cd: str = Field(min_length=1, max_length=10)
    kcp_cert_info: str = Field(min_length=1)
    pay_method: Literal["CARD"] = "CARD"
    cust_ip: str = ""
    amount: str = _Digits
    card_mny: str = _Digits
    currency: Literal["410"] = KRW
    quota: str = Field(default="00", pattern=r"^[0-9]{2}$")
    ordr_idxx: str = Field(min_length=1, max_length=40)
    good_name: str = Field(min_length=1, max_length=100)
    card_tx_type: Literal["11511000"] = BATCH_CARD_TX_TYPE
    bt_batch_key: str = Field(min_length=1, max_length=64)
    bt_group_id: str = Field(min_length=1, max_length=64)


class CancelBody(_Body):
    """``POST /gw/mod/v1/cancel``: ``STSC`` cancels in full, ``STPC`` a part."""

    site_cd: str = Field(min_length=1, max_length=10)
    tno: str = Field(min_length=1, max_length=40)
    kcp_cert_info: str = Field(min_length=1)
    kcp_sign_data: str = Field(min_length=1)
    mod_type: Literal["STSC", "STPC"]
    mod_desc: str = Field(min_length=1, max_length=100)
    #: Partial cancels only: the amount to cancel ...
    mod_mny: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")
    #: ... and the cancellable balance BEFORE this cancel, which KCP checks.
    rem_mny: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")


class InquiryBody(_Body):
    """``POST /std/inquery``: one transaction by its ``tno``."""

    site_cd: str = Field(min_length=1, max_length=10)
    kcp_cert_info: str = Field(min_length=1)
    kcp_sign_data: str = Field(min_length=1)
    tno: str = Field(min_length=1, max_length=40)
    pay_type: Literal["PACA"] = CARD_PAY_TYPE


# -- the answer -------------------------------------------------------------------------------


class Answer(BaseModel):
    """Any KCP answer: every field optional, extra fields kept, amounts as digit strings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    res_cd: str | None = None
    res_msg: str | None = None
    res_en_msg: str | None = None
    tno: str | None = None
    order_no: str | None = None
    pay_method: str | None = None
    amount: str | int | None = None
    card_mny: str | int | None = None
    app_time: str | None = None
    app_no: str | None = None
    mod_mny: str | int | None = None
    panc_mod_mny: str | int | None = None
    rem_mny: str | int | None = None
    canc_time: str | None = None
    card_cd: str | None = None
    card_name: str | None = None
    quota: str | None = None
    # Read for the receipt only (see ``_ops.approval_receipt`` for meanings and sources).
    acqu_cd: str | None = None
    acqu_name: str | None = None
    card_no: str | None = None
    noinf: str | None = None

    def money(self, name: str) -> int | None:
        """The named amount as an int; None when absent or not a plain number of won."""
        value = getattr(self, name, None)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value if value >= 0 else None
        if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
            return int(value.strip())
        return None


def read_answer(data: Mapping[str, Any] | None) -> tuple[str | None, str | None, Answer | None]:
    """``(res_cd, res_msg, answer)`` of a JSON object; Nones for what cannot be read."""
    if data is None:
        return None, None, None
    code = data.get("res_cd")
    msg = data.get("res_msg")
    code = code.strip() if isinstance(code, str) and code.strip() else None
    msg = msg if isinstance(msg, str) else None
    try:
        answer = Answer.model_validate(dict(data))
    except ValidationError:
        return code, msg, None
    return code, msg, answer


# -- certificate and signature ----------------------------------------------------------------


def one_line_certificate(pem: str) -> str:
    """The service certificate as KCP wants it in ``kcp_cert_info``: the PEM on one line.

    KCP's pages show ``"-----BEGIN CERTIFICATE-----MIID…==-----END CERTIFICATE-----"``; a
    line break left inside has been answered with ``S032`` ("no access right").
    """
    return "".join(line.strip() for line in pem.strip().splitlines())


def load_private_key(pem: str, password: str | None) -> rsa.RSAPrivateKey:
    """The merchant's RSA private key (PKCS#8 PEM, encrypted or not).

    Raises ``ValueError`` (never quoting the key) when it cannot be read or is not RSA.
    """
    secret = password.encode("utf-8") if password else None
    try:
        key = serialization.load_pem_private_key(pem.strip().encode("utf-8"), password=secret)
    except (ValueError, TypeError) as exc:
        kind = "encrypted, and the password is wrong or missing" if "encrypt" in str(exc) else ""
        raise ValueError(
            "the private key could not be read as a PKCS#8 PEM" + (f" ({kind})" if kind else "")
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key (KCP signs with SHA256withRSA)")
    return key


def sign_data(site_cd: str, tno: str, last: str) -> str:
    """The string KCP signs: ``site_cd^tno^mod_type`` (cancel) or ``site_cd^tno^pay_type``
    (inquiry)."""
    return f"{site_cd}^{tno}^{last}"


def sign(key: rsa.RSAPrivateKey, text: str) -> str:
    """``kcp_sign_data``: base64 of the SHA256withRSA (PKCS#1 v1.5) signature of ``text``."""
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


# -- the code table ---------------------------------------------------------------------------

#: NHN KCP publishes no result-code list on its developer site (developer.kcp.co.kr): each
#: code below is kept with the page it was read on and how sure that is.
CODES_SOURCE = "https://developer.kcp.co.kr/page/document/standardPay"
_EZYPAY = "http://www.ezypay.com/failed-payment-response-guide/SK/KCP-local-cards"
_KCP_GUIDE = "https://github.com/kcpTest/doc"
_S032 = "https://developer.kcp.co.kr/page/refer/server"
_WINDOW = "https://developer.kcp.co.kr/page/document/web"


def _declined(meaning: str) -> CodeRule:
    # A card issuer's refusal passed on by KCP [3rd-party: Ezypay's guide to KCP local
    # cards]; on a lookup it says nothing about a transaction, so it is "try later" there.
    return CodeRule(Verdict.DECLINED, meaning=meaning, read=Verdict.UNAVAILABLE, source=_EZYPAY)


CODE_TABLE: Mapping[str, CodeRule] = code_table(
    {
        "3001": CodeRule(
            Verdict.DECLINED,
            meaning="사용자가 취소하였습니다 (the customer closed the payment window)",
            read=Verdict.UNAVAILABLE,
            source=_WINDOW,
        ),
        "8059": CodeRule(
            Verdict.INVALID,
            meaning="포맷에러(지불정보-공통:결제금액 불일치): ordr_mony is not the amount the "
            "customer authenticated; KCP did not approve",
            source=_KCP_GUIDE,
        ),
        "S032": CodeRule(
            Verdict.CONFIGURATION,
            meaning="접근권한이 없습니다: the service certificate (kcp_cert_info) or the site "
            "code is not accepted; nothing was processed",
            source=_S032,
        ),
        "8012": CodeRule(
            Verdict.UNKNOWN,
            meaning="취소불가-상점관리자 문의: the server asking for the cancel is not "
            "registered (상점정보관리 → 결제서버 IP설정); nothing was cancelled",
            cancel=Verdict.CONFIGURATION,
            read=Verdict.UNAVAILABLE,
            source=_KCP_GUIDE,
        ),
        "8178": CodeRule(
            Verdict.UNKNOWN,
            meaning="the cancel cannot be processed: too little to offset the cancel amount",
            cancel=Verdict.DECLINED,
            read=Verdict.UNAVAILABLE,
            source=_EZYPAY,
        ),
        "8186": _declined("the cardholder has exceeded the daily credit limit"),
        "8188": _declined("the cardholder has exceeded the monthly credit limit"),
        "AC25": _declined("insufficient funds in the account"),
        "CC07": _declined("the cardholder has exceeded the credit limit"),
        "CC08": _declined("the cardholder has exceeded the credit limit"),
        "CC09": _declined("the monthly payment limit is exceeded"),
        "CC10": _declined("insufficient funds in the account"),
        "CC61": _declined("the cardholder has exceeded the credit limit"),
        "CC88": _declined("the card company's points are insufficient"),
    }
)

#: What to do about a code, appended to its message.
CODE_HINTS: Mapping[str, str] = {
    "S032": "check site_cd and that kcp_cert_info is the certificate issued for it",
    "8059": "the window was opened for another amount than the order's",
    "8012": "register this server's IP in the KCP merchant admin (결제서버 IP설정)",
}
