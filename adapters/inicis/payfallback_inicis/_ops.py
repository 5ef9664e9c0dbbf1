"""The KG Inicis adapter: what it can do, and pure ``build_<op>`` / ``parse_<op>`` functions.

Nothing here sends, sleeps, logs or remembers. The one input besides the request is the
clock: Inicis signs a timestamp into every request (milliseconds for the payment window,
``YYYYMMDDhhmmss`` KST for INIAPI), so the adapter takes a ``clock`` setting and the tests pin
it. Every error is made by the instance's :class:`AdapterKit`; what stays here is Inicis's
quirks: the authentication result and its ``authUrl`` checked against ``idc_name``, the
approval answer's ``authSignature``, the INIAPI ``hashData``, the ``resultCode`` inside a 200,
the inquiry's ``status`` "9" that means "not found" under ``resultCode`` "00", and the partial
refund's ``confirmPrice``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr, ValidationError

from payfallback.adapter import (
    AdapterKit,
    Secrets,
    Verdict,
    fit_bytes,
    installment_months,
    read_object,
)
from payfallback.errors import ConfigurationError, PayfallbackError
from payfallback.models import CardKind, Method, Money, PaidWith, Receipt, RefundReceipt
from payfallback.provider import (
    MONEY_MOVING,
    Approved,
    ApproveRequest,
    Cancelled,
    CancelRequest,
    Capabilities,
    ChargeRequest,
    Failed,
    Flow,
    LookupRequest,
    Operation,
    Outcome,
    ReadyRequest,
    Redirect,
    Status,
    TxnState,
    VoidRequest,
)
from payfallback_inicis._wire import (
    APPROVE_PATH,
    APPROVE_SUCCESS,
    CODE_TABLE,
    IDC_HOSTS,
    INIAPI_HOST,
    INIAPI_SUCCESS,
    NET_CANCEL_PATH,
    SANDBOX_INIAPI_HOST,
    SANDBOX_STDPAY_JS,
    STDPAY_JS,
    ApprovalAnswer,
    ApproveForm,
    AuthResult,
    BillingData,
    BillingForm,
    IniapiAnswer,
    InquiryForm,
    RefundData,
    RefundForm,
    approval_signature,
    approval_verification,
    as_int,
    auth_signature,
    iniapi_hash,
    mkey,
    read_answer,
    signature_matches,
    v2_hash,
    window_signature,
    window_verification,
)

__all__ = ["GOPAYMETHOD", "KST", "Inicis"]

#: Korea Standard Time (no daylight saving time: a fixed offset is exact).
KST = timezone(timedelta(hours=9), "KST")
#: How long after a checkout starts the Router may still net-cancel its lost approval (no
#: limit is documented; the net cancel itself is sent right after the approval).
NET_CANCEL_WINDOW = timedelta(hours=1)

#: Our method → the window's ``gopaymethod``. Card and the wallets Inicis fronts, each
#: opened alone ("only…", paid by card: ``cardonly``) so that the customer lands on the
#: wallet the Router chose and a fallback from direct Kakao Pay reaches Kakao Pay here.
#: Everything offered is refunded as ``paymethod=Card``. Bank transfer (DirectBank) is not
#: offered: its refund takes another ``paymethod`` (Acct), and a cancel request does not
#: say how the payment was made.
GOPAYMETHOD: Mapping[Method, str] = {
    Method.CARD: "Card",
    Method.KAKAOPAY: "onlykakaopay",
    Method.NAVERPAY: "onlynaverpay",
    Method.PAYCO: "onlypayco",
    Method.SAMSUNGPAY: "onlyssp",
}
_WALLETS = frozenset({Method.KAKAOPAY, Method.NAVERPAY, Method.PAYCO, Method.SAMSUNGPAY})

#: ``oid`` / ``moid``: 40 bytes, the size Inicis's window and INIAPI samples work with
#: [uncertain]; a longer attempt id is refused before anything is sent, never cut (a cut id
#: could name another order's transaction).
_OID_MAX = 40
_GOODNAME_BYTES = 40
_MSG_BYTES = 100
#: Inicis documents no request-id header; keep one if a gateway in between adds it.
_REQUEST_ID_HEADERS = ("x-request-id",)


def _fit(text: str, limit: int) -> str:
    return fit_bytes(text.strip(), limit)


_NOT_TEXT = "the callback fields are not text"


def _secret(value: SecretStr | str | None, what: str) -> SecretStr | None:
    if value is None:
        return None
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    raw = secret.get_secret_value()
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"inicis: {what} is empty", provider="inicis")
    return secret


def _flag(value: object, what: str) -> bool:
    """A yes/no setting, also as the text a command line or an environment gives."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"inicis: {what} takes true or false", provider="inicis")


def _sent_form(response: httpx.Response) -> dict[str, str]:
    """The form fields of the request this response answers ({} when unknown)."""
    try:
        request = response.request
    except RuntimeError:
        return {}
    try:
        return dict(parse_qsl(request.content.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, httpx.RequestNotRead):
        return {}


def _kst_time(day: str | None, clock: str | None) -> datetime | None:
    if not day or not clock:
        return None
    try:
        return datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None


# -- receipts ---------------------------------------------------------------------------------
#
# What the till prints, read from the answers. Confidence tags as in the package docstring.
#
# Window approval (승인결과 상세, card) — https://manual.inicis.com/stdpay/ lists the section;
# the field meanings below as Inicis's sample INIStdPayReturn prints them (승인번호, 카드번호,
# 할부기간, 무이자, 카드종류/카드사 코드, 체크카드 여부) and as merchants' typed transcriptions of
# the manual give the values [official sample + 3rd-party, medium]:
#   applNum        → approval_number   (승인번호)
#   CARD_Code      → issuer_code       (카드사 코드: the card company the receipt prints)
#   CARD_Num       → card_number       (masked by Inicis)
#   CARD_Quota     → installment_months ("00" 일시불)
#   CARD_Interest  → interest_free     ("1" 무이자할부, "0" not)
#   CARD_CheckFlag → card_kind         ("0" 신용, "1" 체크, "2" 기프트)
# CARD_BankCode (the bank behind the card) stays in the answer only.
#
# INIAPI billing answer — payAuthCode 승인번호, cardCode 카드사 코드, cardQuota 할부개월,
# checkFlg 카드구분 ("0" 신용, "1" 체크, "2" 기프트): merchants' transcriptions of the INIAPI
# 빌링승인 answer [3rd-party, medium]; https://manual.inicis.com/iniapi/ could not be read
# for it. cardNumber is sent only when the merchant's contract says so and is not mapped.
#
# Receipt page: https://iniweb.inicis.com/DefaultWebApp/mall/cr/cm/mCmReceipt_head.jsp
# ?noTid={tid}&noMethod=1, the card receipt (매출전표) Inicis's own INIpay result sample
# opens [official sample as merchants published it + 3rd-party, medium].
#
# Refunds (INIAPI 취소): a whole refund answers cancelDate/cancelTime; a partial one tid (the
# partial cancel's own transaction id), prtcDate/prtcTime and prtcRemains (부분취소 후
# 남은금액) [3rd-party, medium: merchants' transcriptions of the INIAPI refund answer].

RECEIPT_URL = "https://iniweb.inicis.com/DefaultWebApp/mall/cr/cm/mCmReceipt_head.jsp"
_CARD_KIND: Mapping[str, CardKind] = {
    "0": CardKind.CREDIT,
    "1": CardKind.CHECK,
    "2": CardKind.GIFT,
}
_INTEREST_FREE: Mapping[str, bool] = {"1": True, "0": False}
#: The window's ``payMethod`` for a card payment (ISP cards answer ``VCard``).
_CARD_PAY_METHODS = frozenset({"Card", "VCard"})


def _field(kit: AdapterKit, value: str | None) -> str | None:
    """A receipt field as Inicis sent it: stripped, None when empty or holding a secret."""
    if value is None:
        return None
    text = value.strip()
    if not text or kit.carries_secret(text):
        return None
    return text


def receipt_url(tid: str) -> str:
    """The card receipt (매출전표) page of ``tid``."""
    return f"{RECEIPT_URL}?noTid={tid}&noMethod=1"


def approval_receipt(kit: AdapterKit, body: ApprovalAnswer, method: Method) -> Receipt:
    """The receipt of a window approval's card answer (see the table above)."""
    paid_with = None
    if method in _WALLETS and (body.pay_method or "").strip() in _CARD_PAY_METHODS:
        # The wallet window is opened with ``cardonly`` and the answer is a card payment
        # [inferred].
        paid_with = PaidWith.CARD
    return Receipt(
        approval_number=_field(kit, body.appl_num),
        issuer_code=_field(kit, body.card_code),
        card_number=_field(kit, body.card_num),
        installment_months=installment_months(body.card_quota),
        interest_free=_INTEREST_FREE.get((body.card_interest or "").strip()),
        card_kind=_CARD_KIND.get((body.card_check_flag or "").strip()),
        paid_with=paid_with,
        receipt_url=receipt_url(body.tid) if body.tid else None,
    )


def billing_receipt(kit: AdapterKit, body: IniapiAnswer) -> Receipt:
    """The receipt of an INIAPI billing answer (see the table above)."""
    return Receipt(
        approval_number=_field(kit, body.pay_auth_code),
        issuer_code=_field(kit, body.card_code),
        installment_months=installment_months(body.card_quota),
        card_kind=_CARD_KIND.get((body.check_flg or "").strip()),
        receipt_url=receipt_url(body.tid) if body.tid else None,
    )


def refund_receipt(kit: AdapterKit, body: IniapiAnswer, *, whole: bool) -> RefundReceipt:
    """What an INIAPI refund answer says about the refund (see above)."""
    if whole:
        return RefundReceipt(cancelled_at=_kst_time(body.cancel_date, body.cancel_time))
    return RefundReceipt(
        cancel_id=_field(kit, body.tid),
        cancelled_at=_kst_time(body.prtc_date, body.prtc_time),
        remaining=as_int(body.prtc_remains),
    )


class Inicis:
    """KG Inicis (INIpay Standard window, INIAPI) as a payfallback provider.

    Settings (keyword-only, so ``load_provider("inicis", ...)`` works):

    * ``mid`` — the 상점아이디 (10 characters; test MIDs ``INIpayTest``, ``INIBillTst``).
    * ``iniapi_key`` — the INIAPI key (가맹점관리자 → 상점정보 → 계약정보 → 부가정보); signs
      billing charges, refunds and inquiries. Not the web signKey.
    * ``sign_key`` — the web-standard signKey; needed only for the payment window. Without
      it the adapter offers billing charges only.
    * ``client_ip`` — the merchant server's address, sent as INIAPI's ``clientIp``.
    * ``site_url`` — the merchant's site, INIAPI billing's ``url``; needed for billing.
    * ``buyer_name`` / ``buyer_email`` / ``buyer_tel`` — what INIAPI billing and the window
      show as the buyer (an order carries no buyer); billing refuses empty ones.
    * ``sandbox`` — ``stginiapi.inicis.com`` and the test window script.
    * ``iniapi_version`` — 1 (form-urlencoded ``/api/v1/...``, the default) or 2 (JSON
      ``/v2/pg/billing``, ``/v2/pg/refund``, ``/v2/pg/partialRefund``, hashed over the
      ``data`` object). The inquiry stays on v1 either way: it is the one that finds a
      transaction by our order id.
    * ``clock`` — returns the current time (aware); defaults to the system clock.

    **Secrets.** :attr:`secrets` holds the INIAPI key and the signKey; the kit scrubs them
    from every error text and the Router from everything else. While parsing, the
    request's own secrets are scrubbed too: a charge's billing key, the callback's
    ``authToken``. The window's ``mKey``, ``signature`` and ``verification`` are hashes Inicis
    designed to go to the browser; they are not secrets.

    **Duplicates and lost answers.** Inicis has no idempotency key and documents no refusal
    of a reused order number: a billing charge sent twice may charge twice. Our attempt id
    goes out as ``oid``/``moid`` and the inquiry (``/api/v1/extra``) finds the transaction by
    it, so a lost answer is looked up; "not found" proves nothing (no settle window is
    documented), and the order stays where it is until the inquiry finds it or a person
    reconciles it. See the package docstring.
    """

    def __init__(
        self,
        *,
        mid: str,
        iniapi_key: SecretStr | str,
        client_ip: str,
        sign_key: SecretStr | str | None = None,
        site_url: str | None = None,
        buyer_name: str | None = None,
        buyer_email: str | None = None,
        buyer_tel: str | None = None,
        sandbox: bool = False,
        iniapi_version: int = 1,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(mid, str) or not 1 <= len(mid.strip()) <= 10:
            raise ConfigurationError(
                "inicis: mid must be the 상점아이디 (1-10 characters)", provider="inicis"
            )
        api_key = _secret(iniapi_key, "iniapi_key")
        if api_key is None:
            raise ConfigurationError("inicis: iniapi_key is required", provider="inicis")
        if not isinstance(client_ip, str) or not 7 <= len(client_ip.strip()) <= 39:
            raise ConfigurationError(
                "inicis: client_ip must be the merchant server's IP address", provider="inicis"
            )
        self.name = "inicis"
        self.mid = mid.strip()
        self.client_ip = client_ip.strip()
        self._iniapi_key = api_key
        self._sign_key = _secret(sign_key, "sign_key")
        self.site_url = site_url
        self.buyer_name = buyer_name
        self.buyer_email = buyer_email
        self.buyer_tel = buyer_tel
        self.sandbox = _flag(sandbox, "sandbox")
        version = str(iniapi_version).strip()
        if version not in ("1", "2"):
            raise ConfigurationError("inicis: iniapi_version must be 1 or 2", provider="inicis")
        self.iniapi_version: Literal[1, 2] = 2 if version == "2" else 1
        self._clock = clock or (lambda: datetime.now(UTC))
        self.secrets = Secrets(api_key, self._sign_key)
        self.kit = AdapterKit(
            provider=self.name,
            label="KG Inicis",
            codes=CODE_TABLE,
            request_id_headers=_REQUEST_ID_HEADERS,
            secrets=self.secrets,
        )
        self.api_host = SANDBOX_INIAPI_HOST if self.sandbox else INIAPI_HOST
        self.stdpay_js = SANDBOX_STDPAY_JS if self.sandbox else STDPAY_JS

        window = self._sign_key is not None
        methods = set(GOPAYMETHOD) if window else {Method.CARD}
        flows = {Flow.SERVER_CHARGE} | ({Flow.REDIRECT} if window else set())
        self.capabilities = Capabilities(
            methods=frozenset(methods),
            flows=frozenset(flows),
            # The inquiry takes our order id (oid): a lost answer can be looked up.
            lookup_by_order_id=True,
            # No idempotency key exists at Inicis.
            idempotency_header=None,
            idempotency_retention=None,
            partial_cancel=True,
            # Net cancel exists only for the window approval whose answer was lost, and
            # needs the return POST's authToken and netCancelUrl: the Router sends it right
            # after that approval, in the same process (the return's parameters are never
            # journaled), and only an acknowledged one (resultCode 0000) counts. No time
            # limit is documented; this window, counted from the checkout's start, only
            # keeps a net cancel from following a checkout left open for long. Billing has
            # no net cancel: build_void refuses a void without the return's parameters.
            # [official: manual.inicis.com/stdpay/std-add.php; window: inferred]
            void_window=NET_CANCEL_WINDOW,
            currencies=frozenset({"KRW"}),
            callback_txn_id_param=None,
            # No settle window is documented: "not found" (status 9) is never proof.
            settle_window=None,
            # The inquiry reports no failed transactions, and whether an oid can be paid
            # after a failure is not documented.
            failed_record_is_final=False,
        )

    def __repr__(self) -> str:
        return f"Inicis(mid={self.mid!r}, sandbox={self.sandbox!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _api_timestamp(self) -> str:
        return self._now().astimezone(KST).strftime("%Y%m%d%H%M%S")

    def _millis(self) -> str:
        return str(int(self._now().timestamp() * 1000))

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo else now.replace(tzinfo=UTC)

    def _post_form(self, url: str, fields: Mapping[str, str]) -> httpx.Request:
        return httpx.Request(
            "POST",
            url,
            data=dict(fields),
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "Accept": "application/json",
            },
        )

    def _post_json(self, url: str, body: Mapping[str, Any]) -> httpx.Request:
        # Serialised as the hash saw ``data``: compact, in order, non-ASCII unescaped.
        content = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":"))
        return httpx.Request(
            "POST",
            url,
            content=content.encode("utf-8"),
            headers={
                "Content-Type": "application/json;charset=utf-8",
                "Accept": "application/json",
            },
        )

    def _v2(
        self, kind: str, timestamp: str, data: Mapping[str, str], *, paymethod: str | None = None
    ) -> dict[str, Any]:
        """The INIAPI v2 envelope around ``data``, with its ``hashData``."""
        body: dict[str, Any] = {"mid": self.mid, "type": kind}
        if paymethod is not None:
            body["paymethod"] = paymethod
        body.update(timestamp=timestamp, clientIp=self.client_ip, data=dict(data))
        body["hashData"] = v2_hash(
            self._iniapi_key.get_secret_value(),
            mid=self.mid,
            type_=kind,
            timestamp=timestamp,
            data=data,
        )
        return body

    def _check_oid(self, op: Operation, attempt_id: str) -> str:
        return self.kit.check_length(
            attempt_id, "the attempt id (sent as oid)", op, attempt_id, maximum=_OID_MAX
        )

    def _check_money(self, op: Operation, attempt_id: str, money: Money) -> None:
        self.kit.check_currency(money, self.capabilities, op, attempt_id)
        if money.amount <= 0:
            raise self.kit.invalid("the amount must be greater than zero", op, attempt_id)

    def _sign_key_value(self, op: Operation, attempt_id: str) -> str:
        if self._sign_key is None:
            raise ConfigurationError(
                "inicis: the payment window needs sign_key (웹결제 signKey)",
                **self.kit.context(op, attempt_id),
            )
        return self._sign_key.get_secret_value()

    @staticmethod
    def _unusable(
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        what: str,
        response: httpx.Response,
        code: str | None,
    ) -> Failed:
        """An answer we cannot use as it stands: unknown on a money-moving call, a failed
        inquiry on a lookup. ``what`` quotes no provider text that was not cleaned."""
        text = f"KG Inicis {op.value}: {what}"
        if op in MONEY_MOVING:
            text += "; look it up before acting again"
        return Failed(
            kit.error(
                Verdict.UNKNOWN,
                op,
                attempt_id,
                response=response,
                code=code,
                text=kit.secrets.scrub(text),
            )
        )

    def _money(self, amount: int | None) -> Money | None:
        if amount is None or amount <= 0:
            return None
        return Money(amount=amount, currency="KRW")

    # -- ready (payment window) --------------------------------------------------------------

    def _client_params(self, req: ReadyRequest) -> dict[str, str]:
        op, kit = Operation.READY, self.kit
        sign_key = self._sign_key_value(op, req.attempt_id)
        kit.check_method(req.method, self.capabilities, op, req.attempt_id)
        self._check_money(op, req.attempt_id, req.order.amount)
        oid = self._check_oid(op, req.attempt_id)
        price = req.order.amount.amount
        timestamp = self._millis()
        # centerCd(Y): the authentication result then names the data centre (idc_name)
        # that approves it, which is what authUrl is checked against.
        accept = ["centerCd(Y)", "below1000"]
        if req.method in _WALLETS:
            accept.append("cardonly")
        params = {
            "sdkUrl": self.stdpay_js,
            "version": "1.0",
            "gopaymethod": GOPAYMETHOD[req.method],
            "mid": self.mid,
            "oid": oid,
            "price": str(price),
            "timestamp": timestamp,
            "use_chkfake": "Y",
            "signature": window_signature(oid=oid, price=price, timestamp=timestamp),
            "verification": window_verification(
                oid=oid, price=price, sign_key=sign_key, timestamp=timestamp
            ),
            "mKey": mkey(sign_key),
            "currency": "WON",
            "goodname": _fit(req.order.name, _GOODNAME_BYTES) or "-",
            "acceptmethod": ":".join(accept),
            "returnUrl": req.return_urls.success,
            "closeUrl": req.return_urls.cancel,
        }
        for key, value in (
            ("buyername", self.buyer_name),
            ("buyertel", self.buyer_tel),
            ("buyeremail", self.buyer_email),
        ):
            if value:
                params[key] = value
        if req.order.tax_free_amount:
            params["taxfree"] = str(req.order.tax_free_amount)
        return params

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """None: ``INIStdPay.pay()`` opens the window in the browser; nothing is sent."""
        self._client_params(req)
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """A :class:`Redirect` whose ``client_params`` are the form fields of
        ``INIStdPay.pay()`` (plus ``sdkUrl``, the script to load)."""
        try:
            params = self._client_params(req)
        except PayfallbackError as exc:
            return Failed(exc)
        return Redirect(provider_txn_id=None, redirect_urls={}, client_params=params)

    # -- approve -----------------------------------------------------------------------------

    def _callback_kit(self, req: ApproveRequest) -> AdapterKit:
        return self.kit.with_request_secrets(req.callback_params.get("authToken"))

    def _checked_url(self, raw: str | None, idc: str, path: str) -> str | None:
        """``raw`` when it is exactly ``https://<host of idc_name><path>``; else None."""
        host = IDC_HOSTS.get(idc)
        if host is None or not raw:
            return None
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            return None
        if (
            parts.scheme != "https"
            or parts.hostname != host
            or parts.netloc != host
            or port is not None
            or parts.path != path
            or parts.query
            or parts.fragment
        ):
            return None
        return raw

    def _callback(self, req: ApproveRequest) -> tuple[AuthResult, str]:
        """The authentication result and its checked ``authUrl``.

        Raises ``Declined`` when the window reports a failed authentication (the customer
        cancelled, the card company refused): nothing is sent. Raises ``InvalidRequest``
        when the result is not for this order and merchant, or when ``authUrl`` /
        ``netCancelUrl`` do not name the data centre ``idc_name`` names: a forged return
        must not make the server POST the authToken elsewhere. No message quotes a field.
        """
        op, kit = Operation.APPROVE, self._callback_kit(req)
        try:
            cb = AuthResult.model_validate(dict(req.callback_params))
        except ValidationError:
            raise kit.invalid(_NOT_TEXT, op, req.attempt_id) from None
        if cb.result_code is None:
            raise kit.invalid(
                "the callback has no resultCode; pass Inicis's POST to returnUrl unchanged",
                op,
                req.attempt_id,
            )
        if cb.result_code != APPROVE_SUCCESS:
            said = kit.clean(cb.result_msg)
            raise kit.error(
                Verdict.DECLINED,
                op,
                req.attempt_id,
                code=cb.result_code,
                message=cb.result_msg,
                text="KG Inicis authentication failed" + (f": {said}" if said else ""),
            )
        self._check_money(op, req.attempt_id, req.order.amount)
        if cb.mid != self.mid:
            raise kit.invalid("the callback is for another mid; not approving", op, req.attempt_id)
        if cb.order_number is not None and cb.order_number != req.attempt_id:
            raise kit.invalid("the callback is for another oid; not approving", op, req.attempt_id)
        if not cb.auth_token:
            raise kit.invalid("the callback has no authToken", op, req.attempt_id)
        idc = cb.idc_name or ""
        auth_url = self._checked_url(cb.auth_url, idc, APPROVE_PATH)
        if auth_url is None:
            raise kit.invalid(
                "authUrl is not Inicis's approval URL for the callback's idc_name; not approving",
                op,
                req.attempt_id,
            )
        if cb.net_cancel_url and self._checked_url(cb.net_cancel_url, idc, NET_CANCEL_PATH) is None:
            raise kit.invalid(
                "netCancelUrl is not Inicis's net-cancel URL for the callback's idc_name; not "
                "approving",
                op,
                req.attempt_id,
            )
        return cb, auth_url

    def _approve_form(self, req: ApproveRequest, cb: AuthResult, op: Operation) -> dict[str, str]:
        sign_key = self._sign_key_value(op, req.attempt_id)
        token = cb.auth_token or ""
        timestamp = self._millis()
        form = self._callback_kit(req).body(
            ApproveForm,
            op,
            req.attempt_id,
            mid=self.mid,
            auth_token=token,
            timestamp=timestamp,
            signature=approval_signature(auth_token=token, timestamp=timestamp),
            verification=approval_verification(
                auth_token=token, sign_key=sign_key, timestamp=timestamp
            ),
        )
        return form.wire()

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """A form POST to the checked ``authUrl``: mid, authToken, timestamp (ms),
        signature, verification, charset UTF-8, format JSON."""
        cb, auth_url = self._callback(req)
        return self._post_form(auth_url, self._approve_form(req, cb, Operation.APPROVE))

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """:class:`Approved` for resultCode 0000 with a tid, our oid as MOID, TotPrice, and
        an ``authSignature`` that verifies against the timestamp we sent; anything less on a
        0000 answer is unknown. Another resultCode in a readable 200 answer is a decline:
        Inicis documents "0000 성공, 이외 실패" and its sample treats it so."""
        op, kit = Operation.APPROVE, self._callback_kit(req)
        data = read_object(response)
        body = read_answer(ApprovalAnswer, data)
        code = body.result_code if body is not None else None
        if not response.is_success or body is None or code is None:
            return Failed(
                kit.classify(
                    op,
                    req.attempt_id,
                    response,
                    code=code,
                    message=body.result_msg if body else None,
                )
            )
        if code != APPROVE_SUCCESS:
            said = kit.clean(body.result_msg)
            return Failed(
                kit.error(
                    Verdict.DECLINED,
                    op,
                    req.attempt_id,
                    response=response,
                    code=code,
                    message=body.result_msg,
                    text="KG Inicis declined the payment" + (f": {said}" if said else ""),
                )
            )

        def unknown(what: str) -> Failed:
            return self._unusable(kit, op, req.attempt_id, what, response, code)

        if not body.tid:
            return unknown("the approval answer has no tid")
        if kit.carries_secret(body.tid):
            return unknown("the approval answer's tid carries a secret we sent")
        if body.moid != req.attempt_id:
            return unknown("the approval answer is not for this oid")
        amount = as_int(body.tot_price)
        money = self._money(amount)
        if money is None:
            return unknown("the approval answer has no usable TotPrice")
        tstamp = _sent_form(response).get("timestamp", "")
        expected = auth_signature(
            mid=self.mid, tstamp=tstamp, moid=body.moid or "", tot_price=body.tot_price or ""
        )
        if not signature_matches(expected, body.auth_signature):
            return unknown("the approval answer's authSignature does not verify")
        return Approved(
            provider_txn_id=body.tid,
            amount=money,
            approved_at=_kst_time(body.appl_date, body.appl_time),
            provider_status=code,
            receipt=approval_receipt(kit, body, req.method),
            answer=kit.secrets.scrub_answer(data) if data is not None else None,
        )

    # -- net cancel (window approval only) ---------------------------------------------------

    def build_net_cancel(self, req: ApproveRequest) -> httpx.Request:
        """The net cancel of a window approval whose answer was lost: the approval's own
        form (mid, authToken, a fresh timestamp, signature, verification) POSTed to the
        checked ``netCancelUrl`` (manual.inicis.com/stdpay/std-add.php, 망취소요청).

        Only for that case: Inicis forbids using it as an ordinary cancel. The Router sends
        it through :meth:`build_void`, right after the approval it undoes.
        """
        op = Operation.VOID
        cb, _ = self._callback(req)
        url = self._checked_url(cb.net_cancel_url, cb.idc_name or "", NET_CANCEL_PATH)
        if url is None:
            raise self._callback_kit(req).invalid(
                "the callback has no netCancelUrl to net-cancel at", op, req.attempt_id
            )
        return self._post_form(url, self._approve_form(req, cb, op))

    def parse_net_cancel(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """``Cancelled(settled=True)`` only for resultCode 0000; anything else proves
        nothing (unknown): the approval may stand."""
        op, kit = Operation.VOID, self._callback_kit(req)
        body = read_answer(ApprovalAnswer, read_object(response))
        code = body.result_code if body is not None else None
        if response.is_success and body is not None and code == APPROVE_SUCCESS:
            txn = body.tid or ""
            if kit.carries_secret(txn):
                return self._unusable(
                    kit, op, req.attempt_id, "tid carries a secret", response, code
                )
            return Cancelled(
                provider_txn_id=txn, amount=req.order.amount, remaining=0, settled=True
            )
        return Failed(
            kit.classify(
                op, req.attempt_id, response, code=code, message=body.result_msg if body else None
            )
        )

    # -- charge (INIAPI billing) -------------------------------------------------------------

    def _buyer(self, op: Operation, attempt_id: str) -> tuple[str, str, str]:
        if not (self.buyer_name and self.buyer_email and self.buyer_tel and self.site_url):
            raise ConfigurationError(
                "inicis: billing charges need buyer_name, buyer_email, buyer_tel and site_url "
                "(INIAPI refuses empty buyer fields)",
                **self.kit.context(op, attempt_id),
            )
        return self.buyer_name, self.buyer_email, self.buyer_tel

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """``POST /api/v1/billing``: type Billing, paymethod Card, our attempt id as moid,
        the order amount as price, the billing key as billKey, lump sum (cardQuota 00),
        ``hashData`` = SHA-512(key + type + paymethod + timestamp + clientIp + mid + moid +
        price + billKey)."""
        op = Operation.CHARGE
        bill_key = self.kit.check_instrument(req.instrument, req.attempt_id).strip()
        kit = self.kit.with_request_secrets(req.instrument.billing_key)
        self._check_money(op, req.attempt_id, req.order.amount)
        moid = self._check_oid(op, req.attempt_id)
        if req.instrument.method is not Method.CARD:
            raise kit.invalid("Inicis billing keys are charged as cards", op, req.attempt_id)
        if not bill_key:
            raise kit.invalid("the billing key is empty", op, req.attempt_id)
        name, email, tel = self._buyer(op, req.attempt_id)
        timestamp = self._api_timestamp()
        price = req.order.amount.amount
        key = self._iniapi_key.get_secret_value()
        good_name = _fit(req.order.name, _GOODNAME_BYTES) or "-"
        if self.iniapi_version == 2:
            data = kit.body(
                BillingData,
                op,
                req.attempt_id,
                url=self.site_url or "",
                moid=moid,
                good_name=good_name,
                buyer_name=name,
                buyer_email=email,
                buyer_tel=tel,
                price=str(price),
                bill_key=bill_key,
            ).wire()
            body = self._v2("billing", timestamp, data, paymethod="Card")
            return self._post_json(f"{self.api_host}/v2/pg/billing", body)
        form = kit.body(
            BillingForm,
            op,
            req.attempt_id,
            timestamp=timestamp,
            client_ip=self.client_ip,
            mid=self.mid,
            url=self.site_url or "",
            moid=moid,
            good_name=good_name,
            buyer_name=name,
            buyer_email=email,
            buyer_tel=tel,
            price=price,
            bill_key=bill_key,
            hash_data=iniapi_hash(
                key,
                "Billing",
                "Card",
                timestamp,
                self.client_ip,
                self.mid,
                moid,
                str(price),
                bill_key,
            ),
        )
        return self._post_form(f"{self.api_host}/api/v1/billing", form.wire())

    def _iniapi(
        self, kit: AdapterKit, op: Operation, attempt_id: str, response: httpx.Response
    ) -> IniapiAnswer | Failed:
        """A readable "00" answer, or what the answer means. Any other resultCode goes to
        the kit: undocumented codes on a money-moving call are unknown outcomes."""
        body = read_answer(IniapiAnswer, read_object(response))
        code = body.result_code if body is not None else None
        if response.is_success and body is not None and code == INIAPI_SUCCESS:
            return body
        if response.is_success and body is None:
            return Failed(
                kit.unreadable(
                    f"KG Inicis answered the {op.value} with a body that is not INIAPI's JSON",
                    op,
                    attempt_id,
                    response,
                )
            )
        return Failed(
            kit.classify(
                op, attempt_id, response, code=code, message=body.result_msg if body else None
            )
        )

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        """:class:`Approved` for resultCode 00 with a tid (and, when the answer names them,
        our moid and the order's price). Any other resultCode is an unknown outcome: Inicis
        publishes no failure codes for billing, and a refusal has been seen with the card
        charged, so the Router inquires before anything else."""
        op, kit = Operation.CHARGE, self.kit.with_request_secrets(req.instrument.billing_key)
        got = self._iniapi(kit, op, req.attempt_id, response)
        if isinstance(got, Failed):
            return got

        def unknown(what: str) -> Failed:
            return self._unusable(kit, op, req.attempt_id, what, response, INIAPI_SUCCESS)

        if not got.tid:
            return unknown("the billing answer has no tid")
        if kit.carries_secret(got.tid):
            return unknown("the billing answer's tid carries a secret we sent")
        echoed = got.moid or got.oid
        if echoed is not None and echoed != req.attempt_id:
            return unknown("the billing answer is for another moid")
        amount = req.order.amount.amount
        if got.price is not None and as_int(got.price) != amount:
            return unknown("the billing answer's price is not the order amount")
        data = read_object(response)
        return Approved(
            provider_txn_id=got.tid,
            amount=Money(amount=amount, currency="KRW"),
            approved_at=_kst_time(got.pay_date, got.pay_time),
            provider_status=INIAPI_SUCCESS,
            receipt=billing_receipt(kit, got),
            answer=kit.secrets.scrub_answer(data) if data is not None else None,
        )

    # -- lookup (INIAPI inquiry) -------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """``POST /api/v1/extra`` (type Extra, paymethod Inquiry) by our attempt id as
        ``oid``, with ``originalTid`` when known; ``hashData`` = SHA-512(key + type +
        paymethod + timestamp + clientIp + mid)."""
        op = Operation.LOOKUP
        oid = self._check_oid(op, req.attempt_id)
        timestamp = self._api_timestamp()
        form = self.kit.body(
            InquiryForm,
            op,
            req.attempt_id,
            timestamp=timestamp,
            client_ip=self.client_ip,
            mid=self.mid,
            original_tid=req.provider_txn_id or None,
            oid=oid,
            hash_data=iniapi_hash(
                self._iniapi_key.get_secret_value(),
                "Extra",
                "Inquiry",
                timestamp,
                self.client_ip,
                self.mid,
            ),
        )
        return self._post_form(f"{self.api_host}/api/v1/extra", form.wire())

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """``Status`` from the inquiry's ``status`` (resultCode 00):

        ======  ========================================================
        0       PAID (amount = price)
        1       CANCELLED
        9       NOT_FOUND — never proof by itself (no settle window)
        other   a failed inquiry (``ProviderUnavailable``): unresolved
        ======  ========================================================
        """
        op, kit = Operation.LOOKUP, self.kit
        got = self._iniapi(kit, op, req.attempt_id, response)
        if isinstance(got, Failed):
            return got

        def unusable(what: str) -> Failed:
            return self._unusable(kit, op, req.attempt_id, what, response, INIAPI_SUCCESS)

        status = got.status
        if status == "9":
            return Status(state=TxnState.NOT_FOUND, provider_status=status)
        echoed = got.oid or got.moid
        if echoed is not None and echoed != req.attempt_id:
            return Failed(
                kit.invalid(
                    "KG Inicis inquiry: the transaction belongs to another oid",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        if req.provider_txn_id and got.tid and got.tid != req.provider_txn_id:
            return unusable("the answer is for another tid")
        if got.tid and kit.carries_secret(got.tid):
            return unusable("the answer's tid carries a secret we sent")
        money = self._money(as_int(got.price))
        if status == "0":
            if money is None or not (got.tid or req.provider_txn_id):
                return unusable("an approved transaction without a tid or price")
            return Status(
                state=TxnState.PAID,
                provider_txn_id=got.tid or req.provider_txn_id,
                amount=money,
                provider_status=status,
            )
        if status == "1":
            return Status(
                state=TxnState.CANCELLED,
                provider_txn_id=got.tid or req.provider_txn_id,
                amount=money,
                cancelled=money.amount if money else 0,
                provider_status=status,
            )
        return unusable(
            f"undocumented status {kit.clean(status, limit=16)}; the transaction stays "
            "unresolved (check it in the Inicis merchant admin)"
        )

    # -- cancel (INIAPI refund) --------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST /api/v1/refund``.

        * ``type=Refund`` — the whole of an untouched payment; ``hashData`` over key, type,
          paymethod, timestamp, clientIp, mid, tid.
        * ``type=PartialRefund`` — otherwise, with ``price`` (this refund) and
          ``confirmPrice`` = the balance left after it, appended to the hash.

        ``confirmPrice`` is ``expected_remaining - amount``, both from the request the
        Router journaled for this refund: Inicis refuses a partial refund whose
        ``confirmPrice`` no longer matches the balance, which is what stops a replayed
        refund from going through twice — it must never be recomputed from a fresh balance.
        """
        op, kit = Operation.CANCEL, self.kit
        kit.check_cancel(req, self.capabilities)
        tid = kit.check_length(
            req.provider_txn_id, "the transaction id (tid)", op, req.attempt_id, maximum=40
        )
        whole = req.amount.amount == req.expected_remaining == req.order.amount.amount
        kind = "Refund" if whole else "PartialRefund"
        timestamp = self._api_timestamp()
        msg = _fit(req.reason, _MSG_BYTES) or "cancel"
        confirm = req.expected_remaining - req.amount.amount
        if self.iniapi_version == 2:
            v2_kind = "refund" if whole else "partialRefund"
            extra_v2: dict[str, Any] = (
                {}
                if whole
                else {
                    "price": str(req.amount.amount),
                    "confirm_price": str(confirm),
                    "currency": "WON",
                }
            )
            data = kit.body(RefundData, op, req.attempt_id, tid=tid, msg=msg, **extra_v2).wire()
            return self._post_json(
                f"{self.api_host}/v2/pg/{v2_kind}", self._v2(v2_kind, timestamp, data)
            )
        key = self._iniapi_key.get_secret_value()
        fields: list[str] = [kind, "Card", timestamp, self.client_ip, self.mid, tid]
        extra: dict[str, Any] = {}
        if not whole:
            extra = {"price": req.amount.amount, "confirm_price": confirm}
            fields += [str(req.amount.amount), str(confirm)]
        form = kit.body(
            RefundForm,
            op,
            req.attempt_id,
            type=kind,
            timestamp=timestamp,
            client_ip=self.client_ip,
            mid=self.mid,
            tid=tid,
            msg=msg,
            hash_data=iniapi_hash(key, *fields),
            **extra,
        )
        return self._post_form(f"{self.api_host}/api/v1/refund", form.wire())

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        """:class:`Cancelled` for resultCode 00. On a partial refund the answer's
        ``prtcPrice`` / ``prtcRemains``, when present, must match what was asked; a mismatch
        is unknown. Any other resultCode is unknown: an earlier try may be what succeeded."""
        op, kit = Operation.CANCEL, self.kit
        got = self._iniapi(kit, op, req.attempt_id, response)
        if isinstance(got, Failed):
            return got
        left = req.expected_remaining - req.amount.amount
        cancelled = as_int(got.prtc_price) if got.prtc_price is not None else req.amount.amount
        remains = as_int(got.prtc_remains) if got.prtc_remains is not None else left
        if cancelled != req.amount.amount or remains != left:
            return self._unusable(
                kit,
                op,
                req.attempt_id,
                "the refund answer's amounts are not the ones asked for",
                response,
                INIAPI_SUCCESS,
            )
        whole = req.amount.amount == req.expected_remaining == req.order.amount.amount
        data = read_object(response)
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=req.amount.amount, currency=req.amount.currency),
            remaining=left,
            receipt=refund_receipt(kit, got, whole=whole),
            answer=kit.secrets.scrub_answer(data) if data is not None else None,
        )

    # -- void --------------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        """The net cancel of a window approval whose answer was lost (see
        :meth:`build_net_cancel`). Only the Router that just sent that approval has the
        return's parameters; any other void (a billing charge, a later ``recover()``) has
        none, and Inicis offers nothing else."""
        if not req.callback_params:
            raise NotImplementedError(
                "inicis: only a window approval just sent can be net-cancelled (it needs the "
                "return POST's authToken and netCancelUrl); billing has no net cancel"
            )
        return self.build_net_cancel(self._approval_of(req))

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        return self.parse_net_cancel(self._approval_of(req), response)

    @staticmethod
    def _approval_of(req: VoidRequest) -> ApproveRequest:
        """The approval a void undoes, as its net cancel re-sends it."""
        return ApproveRequest(
            attempt_id=req.attempt_id,
            order=req.order,
            method=req.method or Method.CARD,
            provider_txn_id=req.provider_txn_id,
            callback_params=req.callback_params,
            idempotency_key=req.idempotency_key,
        )
