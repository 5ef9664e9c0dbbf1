"""The NICEPAY adapter: what it can do, and pure ``build_<op>`` / ``parse_<op>`` functions.

Nothing here sends, sleeps, logs or remembers: every method is a function of its
arguments and the adapter's settings, so the async and the sync Router share it and the
tests are about bytes. See the package docstring for the pages of the NICEPAY manual each
operation follows.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import Method, Money
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
    classify_http_status,
    parse_retry_after,
)
from payfallback_nicepay._wire import (
    API_HOST,
    CANCEL_SUCCESS_CODES,
    CODE_TABLE,
    JS_SDK_URL,
    SANDBOX_API_HOST,
    SANDBOX_JS_SDK_URL,
    SUCCESS_CODE,
    ApproveBody,
    AuthCallback,
    BillingPayBody,
    CancelBody,
    CodeClass,
    NetCancelBody,
    PaymentObject,
    PayStatus,
    auth_signature,
    read_body,
    response_signature,
    signature_matches,
)

__all__ = ["KST", "Nicepay"]

#: Korea Standard Time. Korea keeps no daylight saving time, so a fixed offset is exact.
KST = timezone(timedelta(hours=9), "KST")

#: Our method → the JS SDK's ``method`` (api/payment-window-server.md, 요청 명세 공통).
#: Naver Pay is offered only as "naverpayCard" (card, points not usable) and Samsung Pay as
#: "samsungpayCard"; Kakao Pay's "kakaopay" lets the customer use a card or Kakao Money.
#: Virtual accounts ("vbank") are not offered: the money arrives days later by deposit, and
#: payfallback's Router has no state for "account issued, waiting for the deposit" — it
#: would take the issued account for an unknown approval and net-cancel it.
JS_METHODS: Mapping[Method, str] = {
    Method.CARD: "card",
    Method.BANK_TRANSFER: "bank",
    Method.MOBILE: "cellphone",
    Method.KAKAOPAY: "kakaopay",
    Method.NAVERPAY: "naverpayCard",
    Method.PAYCO: "payco",
    Method.SAMSUNGPAY: "samsungpayCard",
}

#: Field sizes from the manual's tables ("Byte" column).
_ORDER_ID_MAX = 64
_GOODS_NAME_BYTES = 40
_REASON_BYTES = 100

#: A lookup by orderId needs the order date (``orderDate``, KST). A charge sent just
#: before midnight may be recorded under the next day, so "not found" for an attempt
#: made this close to midnight does not prove that nothing was charged.
_ORDER_DATE_MARGIN = timedelta(minutes=10)

#: "망취소 유효기간은 1시간으로, 요청 후 1시간 초과건은 망취소가 실패됩니다." (api/cancel.md)
_VOID_WINDOW = timedelta(hours=1)
#: common/preparations.md, 타임아웃 정보: connection 5 s, read 30 s.
_READ_TIMEOUT = 30.0

_DIGIT_RUN = re.compile(r"\d{12,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _scrub(text: str | None) -> str:
    """Provider text made safe for a message: no control characters, no long digit runs
    (a card or account number echoed back), and bounded in length."""
    if not text:
        return ""
    text = _DIGIT_RUN.sub(lambda m: "*" * len(m.group()), _CONTROL.sub(" ", text)).strip()
    return text[:200]


def _byte_len(ch: str) -> int:
    # NICEPAY's "Byte" sizes count a Hangul syllable as 2 bytes (EUC-KR/CP949); characters
    # outside CP949 are counted at their UTF-8 size, which is never less.
    try:
        return len(ch.encode("cp949"))
    except UnicodeEncodeError:
        return len(ch.encode("utf-8"))


def _fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes on a character boundary."""
    out: list[str] = []
    used = 0
    for ch in text.strip():
        size = _byte_len(ch)
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)


def _parse_time(value: str | None) -> datetime | None:
    # Timestamps are ISO 8601 ("2021-10-05T16:56:34.000+0900"), or "0" when not applicable.
    if not value or value == "0":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _request_id(response: httpx.Response) -> str | None:
    # NICEPAY documents no request-id header; keep one if a gateway in between adds it.
    for header in ("x-request-id", "x-trace-id", "x-amzn-trace-id"):
        value: str | None = response.headers.get(header)
        if value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class _Success:
    """A 2xx answer whose ``resultCode`` is a success for the operation."""

    code: str
    body: PaymentObject
    response: httpx.Response


class Nicepay:
    """NICEPAY (new "start" API) as a payfallback provider.

    Settings (keyword-only, so ``load_provider("nicepay", ...)`` works):

    * ``client_key`` — the 클라이언트 키 (shown to browsers by the JS SDK; not a secret).
    * ``secret_key`` — the 시크릿 키 (``SecretStr``; a plain ``str`` is wrapped). Together
      they form the ``Authorization: Basic`` header and verify ``signature`` fields.
    * ``sandbox`` — ``True`` for ``sandbox-api.nicepay.co.kr`` and the sandbox payment
      window; the sandbox answers with dummy data and cannot partially cancel.
    * ``mobile_goods`` — ``"content"`` or ``"physical"``: the JS SDK's required ``isDigital``
      for phone billing ("0: 컨텐츠, 1: 실물"); phone billing is offered only when it is set.

    **Duplicates.** NICEPAY has no idempotency header (``idempotency_header=None``). The
    ``orderId`` plays that role: we send our attempt id as ``orderId`` on the payment
    window and on billing charges, NICEPAY refuses a paid ``orderId`` a second time, and
    that refusal (``A127`` duplicate order number, ``U112`` orderId already used, ``P015``,
    ``2201`` approval exists, ``A225``/``U114`` TID used) is an unknown outcome that a lookup
    settles, never a failure to reroute on. Approvals are also keyed by the one-time ``tid``
    of the authentication. Each cancel sends the request's idempotency key as its own
    ``orderId``, which NICEPAY refuses to reuse for another partial cancel.

    **Lost answers.** A lookup by tid (``GET /v1/payments/{tid}``) or by our attempt id
    (``GET /v1/payments/find/{orderId}?orderDate=YYYYMMDD``, date in KST) settles an
    unknown outcome; within an hour, ``void`` (net cancel by orderId) undoes it.
    """

    def __init__(
        self,
        *,
        client_key: str,
        secret_key: SecretStr | str,
        sandbox: bool = False,
        mobile_goods: Literal["content", "physical"] | None = None,
    ) -> None:
        if not isinstance(client_key, str) or not client_key.strip():
            raise ConfigurationError(
                "nicepay: client_key is required (개발정보 → 클라이언트 키 in the NICEPAY admin)",
                provider="nicepay",
            )
        secret = secret_key if isinstance(secret_key, SecretStr) else SecretStr(secret_key)
        if not isinstance(secret.get_secret_value(), str) or not secret.get_secret_value():
            raise ConfigurationError(
                "nicepay: secret_key is required (개발정보 → 시크릿 키 in the NICEPAY admin)",
                provider="nicepay",
            )
        if mobile_goods not in (None, "content", "physical"):
            raise ConfigurationError(
                f"nicepay: mobile_goods must be 'content' or 'physical', got {mobile_goods!r}",
                provider="nicepay",
            )
        self.name = "nicepay"
        self.client_key = client_key.strip()
        self._secret_key = secret
        self.sandbox = bool(sandbox)
        self.mobile_goods = mobile_goods
        self.base_url = SANDBOX_API_HOST if self.sandbox else API_HOST
        self.js_sdk_url = SANDBOX_JS_SDK_URL if self.sandbox else JS_SDK_URL

        methods = set(JS_METHODS) - {Method.MOBILE}
        if self.mobile_goods:
            methods.add(Method.MOBILE)
        self.capabilities = Capabilities(
            methods=frozenset(methods),
            flows=frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE}),
            lookup_by_order_id=True,
            idempotency_header=None,
            idempotency_retention=None,
            # The cancel's orderId carries the idempotency key: at most 64 characters.
            idempotency_key_max_length=_ORDER_ID_MAX,
            partial_cancel=not self.sandbox,
            void_window=_VOID_WINDOW,
            currencies=frozenset({"KRW"}),
            read_timeout=_READ_TIMEOUT,
            # NICEPAY posts the authenticated tid to returnUrl: lookups can use it.
            callback_txn_id_param="tid",
        )

    def __repr__(self) -> str:
        return f"Nicepay(sandbox={self.sandbox!r})"

    # -- wire helpers ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        pair = f"{self.client_key}:{self._secret_key.get_secret_value()}"
        return {
            "Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii"),
            "Content-Type": "application/json;charset=utf-8",
            "Accept": "application/json",
        }

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Request:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return httpx.Request("POST", self.base_url + path, headers=self._headers(), content=content)

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Request:
        return httpx.Request("GET", self.base_url + path, headers=self._headers(), params=params)

    def _where(
        self,
        op: Operation,
        attempt_id: str,
        code: str | None = None,
        response: httpx.Response | None = None,
    ) -> dict[str, Any]:
        return {
            "provider": self.name,
            "operation": op.value,
            "attempt_id": attempt_id,
            "provider_code": code,
            "provider_request_id": _request_id(response) if response is not None else None,
        }

    def _invalid(self, op: Operation, attempt_id: str, message: str) -> InvalidRequest:
        return InvalidRequest(f"nicepay {op.value}: {message}", **self._where(op, attempt_id))

    def _unknown(self, op: Operation, attempt_id: str, message: str, ok: _Success) -> Failed:
        """A success code whose body we cannot trust or use: the provider may have acted."""
        return Failed(
            OutcomeUnknown(
                f"nicepay {op.value}: {message}; resolve by lookup",
                **self._where(op, attempt_id, ok.code, ok.response),
            )
        )

    def _check_money(self, op: Operation, attempt_id: str, money: Money) -> None:
        if money.currency not in self.capabilities.currencies:
            raise self._invalid(
                op, attempt_id, f"NICEPAY takes KRW through this adapter, not {money.currency}"
            )
        if money.amount <= 0:
            raise self._invalid(op, attempt_id, "the amount must be greater than zero")

    def _check_order_id(self, op: Operation, attempt_id: str) -> None:
        if not attempt_id or len(attempt_id) > _ORDER_ID_MAX:
            raise self._invalid(
                op, attempt_id, "the attempt id is sent as orderId and must be 1-64 characters"
            )

    def _goods_name(self, name: str) -> str:
        # goodsName is display text limited to 40 bytes: cut it rather than refuse a sale.
        return _fit(name, _GOODS_NAME_BYTES) or "-"

    def _signature_ok(self, body: PaymentObject) -> bool:
        """Whether the payment object's ``signature`` verifies; True when none was sent.

        The manual marks ``signature`` optional ("유효한 거래건에 한하여 응답") and advises
        checking it when present; a signature that is present but does not verify (or
        cannot be checked for want of tid, amount or ediDate) is never accepted.
        """
        if body.signature is None:
            return True
        if not body.tid or body.amount is None or not body.edi_date:
            return False
        expected = response_signature(
            tid=body.tid,
            amount=body.amount,
            edi_date=body.edi_date,
            secret_key=self._secret_key.get_secret_value(),
        )
        return signature_matches(expected, body.signature)

    def _money(self, amount: int, currency: str | None, fallback: str) -> Money | None:
        try:
            return Money(amount=amount, currency=currency or fallback)
        except PayfallbackError:
            return None

    # -- classification ----------------------------------------------------------------------

    def _classify(
        self,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
        success_codes: frozenset[str],
    ) -> _Success | Failed | Status:
        """Success with its body, or the outcome NICEPAY's code (or HTTP status) means."""
        try:
            decoded: object = response.json()
        except ValueError:
            decoded = None
        code, msg, body = read_body(decoded)
        http_ok = 200 <= response.status_code < 300
        if http_ok and code is not None and code in success_codes:
            if body is None:
                return Failed(
                    self._unknown_error(
                        op,
                        attempt_id=attempt_id,
                        what="a success answer could not be read",
                        code=code,
                        response=response,
                    )
                )
            return _Success(code=code, body=body, response=response)
        cls = CODE_TABLE.get(code) if code is not None else None
        successes = (CodeClass.SUCCESS, CodeClass.CANCEL_SUCCESS, CodeClass.OTHER_SUCCESS)
        if code is not None and cls is not None and (http_ok or cls not in successes):
            return self._by_class(
                cls, op, attempt_id=attempt_id, code=code, msg=msg, response=response
            )
        if not http_ok:
            return Failed(
                classify_http_status(
                    response,
                    provider=self.name,
                    operation=op,
                    attempt_id=attempt_id,
                    provider_code=code,
                    message=_scrub(msg) or None,
                )
            )
        what = "an answer without resultCode" if code is None else f"undocumented resultCode {code}"
        return Failed(
            self._unknown_error(
                op, attempt_id=attempt_id, what=what, code=code, response=response, msg=msg
            )
        )

    def _unknown_error(
        self,
        op: Operation,
        *,
        attempt_id: str,
        what: str,
        code: str | None,
        response: httpx.Response,
        msg: str | None = None,
    ) -> PayfallbackError:
        """Something NICEPAY said that we cannot place: unknown on a money-moving call,
        "could not learn, ask again" on a lookup."""
        text = f"nicepay {op.value}: {what}" + (f" ({_scrub(msg)})" if msg else "")
        where = self._where(op, attempt_id, code, response)
        if op in MONEY_MOVING:
            return OutcomeUnknown(text + "; resolve by lookup", **where)
        return ProviderUnavailable(text, **where)

    def _by_class(
        self,
        cls: CodeClass,
        op: Operation,
        *,
        attempt_id: str,
        code: str,
        msg: str | None,
        response: httpx.Response,
    ) -> Failed | Status:
        """The outcome a documented, non-success code means for ``op``."""
        where = self._where(op, attempt_id, code, response)
        said = _scrub(msg) or f"resultCode {code}"
        text = f"nicepay {op.value}: {said}"
        match cls:
            case CodeClass.DECLINED if op is not Operation.LOOKUP:
                return Failed(Declined(text, **where))
            case CodeClass.UNAVAILABLE:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                return Failed(ProviderUnavailable(text, retry_after=retry_after, **where))
            case CodeClass.NOT_FOUND if op is Operation.LOOKUP:
                return Status(state=TxnState.NOT_FOUND, provider_status=code)
            case CodeClass.NOT_FOUND if op is Operation.VOID:
                # "Nothing to net-cancel" while the approval may still be in flight at
                # NICEPAY proves nothing yet: a later lookup settles it.
                return Failed(
                    OutcomeUnknown(
                        f"{text}: no approval to net-cancel was found; resolve by lookup",
                        **where,
                    )
                )
            case CodeClass.NOT_FOUND | CodeClass.INVALID:
                return Failed(InvalidRequest(text, **where))
            case CodeClass.CONFIGURATION:
                return Failed(
                    ConfigurationError(
                        f"{text}; check the NICEPAY keys, MID contract and IP allow-list",
                        **where,
                    )
                )
            case _:
                # UNKNOWN, DUPLICATE, a success code that is not this operation's, or a
                # decline code answering a lookup.
                return Failed(
                    self._unknown_error(
                        op, attempt_id=attempt_id, what=said, code=code, response=response
                    )
                )

    # -- ready -------------------------------------------------------------------------------

    def _client_params(self, req: ReadyRequest) -> dict[str, str]:
        op = Operation.READY
        self._check_money(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        if req.method not in self.capabilities.methods:
            if req.method is Method.MOBILE:
                raise ConfigurationError(
                    "nicepay ready: phone billing needs mobile_goods='content' or 'physical'",
                    **self._where(op, req.attempt_id),
                )
            raise self._invalid(op, req.attempt_id, f"method {req.method.value} is not offered")
        params = {
            "sdkUrl": self.js_sdk_url,
            "clientId": self.client_key,
            "method": JS_METHODS[req.method],
            "orderId": req.attempt_id,
            "amount": str(req.order.amount.amount),
            "goodsName": self._goods_name(req.order.name),
            # NICEPAY posts every outcome (success, failure, cancel) to one returnUrl.
            "returnUrl": req.return_urls.success,
        }
        if req.order.tax_free_amount:
            params["taxFreeAmt"] = str(req.order.tax_free_amount)
        if req.method is Method.MOBILE:
            params["isDigital"] = "0" if self.mobile_goods == "content" else "1"
        return params

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """None: the JS SDK opens the payment window in the browser; nothing is sent.

        Raises ``InvalidRequest``/``ConfigurationError`` for input the window would refuse.
        """
        self._client_params(req)
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """A :class:`Redirect` whose ``client_params`` are ``AUTHNICE.requestPay()``'s
        arguments (plus ``sdkUrl``, the script to load); there is no redirect URL."""
        try:
            params = self._client_params(req)
        except PayfallbackError as exc:
            return Failed(exc)
        return Redirect(provider_txn_id=None, redirect_urls={}, client_params=params)

    # -- approve -----------------------------------------------------------------------------

    def _callback(self, req: ApproveRequest) -> tuple[str, int]:
        """The tid and amount of a verified authentication callback.

        Raises ``Declined`` when NICEPAY reports the authentication failed (the customer
        cancelled, the card company refused): nothing was charged and nothing is sent.
        Raises ``InvalidRequest`` when the callback does not match the order or its
        signature does not verify: it may be forged, and nothing is sent.
        """
        op = Operation.APPROVE
        try:
            cb = AuthCallback.model_validate(dict(req.callback_params))
        except ValidationError:
            raise self._invalid(op, req.attempt_id, "the callback fields are not text") from None
        if cb.auth_result_code is None:
            raise self._invalid(
                op,
                req.attempt_id,
                "the callback has no authResultCode; pass NICEPAY's POST to returnUrl unchanged",
            )
        if cb.auth_result_code != SUCCESS_CODE:
            said = _scrub(cb.auth_result_msg) or f"authResultCode {cb.auth_result_code}"
            raise Declined(
                f"nicepay approve: authentication failed: {said}",
                **self._where(op, req.attempt_id, cb.auth_result_code),
            )
        self._check_money(op, req.attempt_id, req.order.amount)
        if not cb.tid:
            raise self._invalid(op, req.attempt_id, "the callback has no tid")
        expected = req.order.amount.amount
        try:
            amount = int(cb.amount) if cb.amount is not None else None
        except ValueError:
            amount = None
        if amount != expected:
            raise self._invalid(
                op,
                req.attempt_id,
                f"the callback amount {cb.amount!r} is not the order amount {expected}; "
                "not approving",
            )
        if cb.order_id is not None and cb.order_id != req.attempt_id:
            raise self._invalid(
                op, req.attempt_id, "the callback is for another orderId; not approving"
            )
        if not cb.auth_token or not cb.signature:
            raise self._invalid(
                op, req.attempt_id, "the callback has no authToken/signature to verify"
            )
        # Our own client key, not the callback's: a window opened with other keys fails here.
        signed = auth_signature(
            auth_token=cb.auth_token,
            client_id=self.client_key,
            amount=expected,
            secret_key=self._secret_key.get_secret_value(),
        )
        if not signature_matches(signed, cb.signature):
            raise self._invalid(
                op, req.attempt_id, "the callback signature does not verify; not approving"
            )
        return cb.tid, expected

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """``POST /v1/payments/{tid}`` with ``{"amount": <order amount>}``.

        The tid comes from the verified callback (``callback_params["tid"]``). The optional
        ``ediDate``/``signData`` pair is not sent: it needs a clock, and TLS plus Basic
        authentication already protect this server-to-server call.
        """
        tid, amount = self._callback(req)
        return self._post(f"/v1/payments/{quote(tid, safe='')}", ApproveBody(amount=amount).wire())

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """:class:`Approved` for resultCode 0000 with status ``paid``, the callback's tid,
        an amount, and a signature that verifies (when sent); anything less is unknown."""
        tid = req.callback_params.get("tid") or req.provider_txn_id
        return self._parse_paid(
            Operation.APPROVE, req.attempt_id, req.order.amount.currency, response, tid
        )

    def _parse_paid(
        self,
        op: Operation,
        attempt_id: str,
        currency: str,
        response: httpx.Response,
        expected_tid: str | None,
    ) -> Outcome:
        got = self._classify(op, attempt_id, response, frozenset({SUCCESS_CODE}))
        if not isinstance(got, _Success):
            return got
        body = got.body
        if not body.tid:
            return self._unknown(op, attempt_id, "the success answer has no tid", got)
        if expected_tid and body.tid != expected_tid:
            return self._unknown(op, attempt_id, "the success answer is for another tid", got)
        if body.amount is None:
            return self._unknown(op, attempt_id, "the success answer has no amount", got)
        if body.order_id is not None and body.order_id != attempt_id:
            return self._unknown(op, attempt_id, "the success answer is for another orderId", got)
        if not self._signature_ok(body):
            # Tampering, a misbehaving proxy, or a secret-key mix-up: do not trust the body.
            return self._unknown(op, attempt_id, "the answer's signature does not verify", got)
        money = self._money(body.amount, body.currency, currency)
        if money is None:
            return self._unknown(op, attempt_id, f"unusable currency {body.currency!r}", got)
        status = body.pay_status
        if body.status is None or status is PayStatus.PAID:
            return Approved(
                provider_txn_id=body.tid,
                amount=money,
                approved_at=_parse_time(body.paid_at),
                provider_status=body.status,
            )
        return self._unknown(op, attempt_id, f"resultCode 0000 with status {body.status!r}", got)

    # -- charge (billing key) ----------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """``POST /v1/subscribe/{bid}/payments``: orderId (our attempt id), amount,
        goodsName, cardQuota 0 (lump sum), useShopInterest false, taxFreeAmt.

        The bid travels in the URL path, as NICEPAY designed it: the request URL is secret.
        """
        op = Operation.CHARGE
        self._check_money(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        if req.instrument.provider != self.name:
            raise self._invalid(
                op, req.attempt_id, f"the instrument belongs to {req.instrument.provider!r}"
            )
        if req.instrument.method is not Method.CARD:
            raise self._invalid(op, req.attempt_id, "NICEPAY billing keys are card-only")
        bid = req.instrument.billing_key.get_secret_value().strip()
        if not bid:
            raise self._invalid(op, req.attempt_id, "the billing key is empty")
        body = BillingPayBody(
            order_id=req.attempt_id,
            amount=req.order.amount.amount,
            goods_name=self._goods_name(req.order.name),
            card_quota=0,
            use_shop_interest=False,
            tax_free_amt=req.order.tax_free_amount or None,
        )
        return self._post(f"/v1/subscribe/{quote(bid, safe='')}/payments", body.wire())

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        return self._parse_paid(
            Operation.CHARGE, req.attempt_id, req.order.amount.currency, response, None
        )

    # -- lookup ------------------------------------------------------------------------------

    @staticmethod
    def _kst(when: datetime) -> datetime:
        # A naive datetime is taken as UTC, the way payfallback's clocks report time.
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(KST)

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """By tid when known (``GET /v1/payments/{tid}``); otherwise by our attempt id,
        ``GET /v1/payments/find/{orderId}?orderDate=YYYYMMDD`` with the attempt's date in
        KST (``req.attempted_at``), which NICEPAY requires."""
        op = Operation.LOOKUP
        if req.provider_txn_id:
            return self._get(f"/v1/payments/{quote(req.provider_txn_id, safe='')}")
        self._check_order_id(op, req.attempt_id)
        if req.attempted_at is None:
            raise self._invalid(
                op,
                req.attempt_id,
                "a lookup by orderId needs attempted_at (NICEPAY requires the order date)",
            )
        order_date = self._kst(req.attempted_at).strftime("%Y%m%d")
        return self._get(
            f"/v1/payments/find/{quote(req.attempt_id, safe='')}", {"orderDate": order_date}
        )

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """``Status`` from the payment object's ``status``:

        ========================  ==================================================
        paid                      PAID
        partialCancelled          PAID (``cancelled`` = amount - balanceAmt)
        cancelled                 CANCELLED
        failed, expired           NOT_PAID (failed approval; window or deposit expired)
        ready                     AWAITING_CUSTOMER for a virtual account (waiting for
                                  the deposit), otherwise IN_PROGRESS (authenticated,
                                  approval not finished)
        not-found codes           NOT_FOUND (A118, A251, U107, U126 …)
        ========================  ==================================================

        An undocumented status, or a signature that does not verify, is a failed inquiry
        (``ProviderUnavailable``): it never reads as paid or unpaid.
        """
        op = Operation.LOOKUP
        try:
            decoded: object = response.json()
        except ValueError:
            decoded = None
        code, _msg, body = read_body(decoded)
        if (
            200 <= response.status_code < 300
            and body is not None
            and body.tid
            and body.status is not None
        ):
            # Whatever resultCode an inquiry carries, a payment object with a tid and a
            # status describes the transaction.
            return self._status(req, body, code or "", response)
        got = self._classify(op, req.attempt_id, response, frozenset({SUCCESS_CODE}))
        if isinstance(got, _Success):
            return Failed(
                ProviderUnavailable(
                    "nicepay lookup: the answer has no tid or status",
                    **self._where(op, req.attempt_id, got.code, response),
                )
            )
        if isinstance(got, Status) and got.state is TxnState.NOT_FOUND:
            return self._not_found(req, got, response)
        return got

    def _not_found(self, req: LookupRequest, got: Status, response: httpx.Response) -> Outcome:
        if req.provider_txn_id or req.attempted_at is None:
            return got
        kst = self._kst(req.attempted_at)
        if (kst + _ORDER_DATE_MARGIN).date() != kst.date():
            return Failed(
                OutcomeUnknown(
                    "nicepay lookup: not found for orderDate "
                    f"{kst:%Y%m%d}, but the attempt was made minutes before midnight KST and "
                    "may be recorded under the next day; resolve by tid, by net cancel, or "
                    "in the NICEPAY admin",
                    **self._where(Operation.LOOKUP, req.attempt_id, got.provider_status, response),
                )
            )
        return got

    def _status(
        self, req: LookupRequest, body: PaymentObject, code: str, response: httpx.Response
    ) -> Outcome:
        op = Operation.LOOKUP
        where = self._where(op, req.attempt_id, code or None, response)
        if body.order_id is not None and body.order_id != req.attempt_id:
            return Failed(
                InvalidRequest(
                    "nicepay lookup: the transaction belongs to another orderId", **where
                )
            )
        if not self._signature_ok(body):
            return Failed(
                ProviderUnavailable(
                    "nicepay lookup: the answer's signature does not verify; not trusting it",
                    **where,
                )
            )
        status = body.pay_status
        if status is None:
            return Failed(
                ProviderUnavailable(
                    f"nicepay lookup: undocumented status {body.status!r}; the transaction "
                    "stays unresolved (check it in the NICEPAY admin)",
                    **where,
                )
            )
        is_vbank = (body.pay_method or "").lower() == "vbank"
        state = {
            PayStatus.PAID: TxnState.PAID,
            PayStatus.PARTIAL_CANCELLED: TxnState.PAID,
            PayStatus.CANCELLED: TxnState.CANCELLED,
            PayStatus.FAILED: TxnState.NOT_PAID,
            PayStatus.EXPIRED: TxnState.NOT_PAID,
            PayStatus.READY: TxnState.AWAITING_CUSTOMER if is_vbank else TxnState.IN_PROGRESS,
        }[status]
        if state in (TxnState.PAID, TxnState.CANCELLED) and body.amount is None:
            return Failed(
                ProviderUnavailable(f"nicepay lookup: {status.value} without an amount", **where)
            )
        money = (
            self._money(body.amount, body.currency, req.order.amount.currency)
            if body.amount is not None
            else None
        )
        cancelled = 0
        if body.amount is not None and state in (TxnState.PAID, TxnState.CANCELLED):
            if body.balance_amt is not None:
                cancelled = max(0, body.amount - body.balance_amt)
            elif body.cancels:
                cancelled = sum(c.amount or 0 for c in body.cancels)
            elif state is TxnState.CANCELLED:
                cancelled = body.amount
        return Status(
            state=state,
            provider_txn_id=body.tid,
            amount=money,
            cancelled=cancelled,
            provider_status=body.status,
        )

    # -- cancel ------------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST /v1/payments/{tid}/cancel`` with reason, orderId and cancelAmt.

        ``orderId`` is the request's idempotency key: unique per refund, reused on its
        retries, and NICEPAY refuses the same orderId for a second partial cancel.
        ``cancelAmt`` is left out for a full cancel of an untouched payment ("값이 누락이면
        전액취소"), which the sandbox also accepts; otherwise it is the amount.
        """
        op = Operation.CANCEL
        self._check_money(op, req.attempt_id, req.amount)
        if req.amount.amount > req.expected_remaining:
            raise self._invalid(
                op,
                req.attempt_id,
                f"refund of {req.amount.amount} exceeds the {req.expected_remaining} "
                "still cancellable",
            )
        key = req.idempotency_key
        if not key or len(key) > _ORDER_ID_MAX:
            raise self._invalid(
                op, req.attempt_id, "the idempotency key (sent as orderId) must be 1-64 characters"
            )
        whole = req.amount.amount == req.expected_remaining == req.order.amount.amount
        body = CancelBody(
            reason=_fit(req.reason, _REASON_BYTES) or "cancel",
            order_id=key,
            cancel_amt=None if whole else req.amount.amount,
        )
        return self._post(f"/v1/payments/{quote(req.provider_txn_id, safe='')}/cancel", body.wire())

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        """:class:`Cancelled` for 0000, 2001 (취소 성공) or 2211 (환불 성공); ``remaining``
        is ``balanceAmt``. "Already cancelled" (2013) and "cancel already requested"
        (2015) are unknown outcomes: an earlier try of this cancel may be what succeeded."""
        op = Operation.CANCEL
        got = self._classify(op, req.attempt_id, response, CANCEL_SUCCESS_CODES)
        if not isinstance(got, _Success):
            return got
        body = got.body
        if not body.tid:
            return self._unknown(op, req.attempt_id, "the success answer has no tid", got)
        if body.tid != req.provider_txn_id:
            return self._unknown(op, req.attempt_id, "the success answer is for another tid", got)
        if not self._signature_ok(body):
            return self._unknown(op, req.attempt_id, "the answer's signature does not verify", got)
        if body.status is not None and body.pay_status not in (
            PayStatus.CANCELLED,
            PayStatus.PARTIAL_CANCELLED,
        ):
            return self._unknown(
                op, req.attempt_id, f"a cancel success with status {body.status!r}", got
            )
        amount: int | None = None
        for entry in body.cancels or ():
            if body.cancelled_tid and entry.tid == body.cancelled_tid and entry.amount:
                amount = entry.amount
        if amount is None and body.balance_amt is not None:
            amount = req.expected_remaining - body.balance_amt
        if amount is None or amount <= 0:
            return self._unknown(
                op, req.attempt_id, "the success answer does not say how much was cancelled", got
            )
        money = self._money(amount, body.currency, req.amount.currency)
        if money is None:
            return self._unknown(op, req.attempt_id, f"unusable currency {body.currency!r}", got)
        return Cancelled(provider_txn_id=body.tid, amount=money, remaining=body.balance_amt)

    # -- void (net cancel) -------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        """``POST /v1/payments/netcancel`` with ``{"orderId": <attempt id>}``.

        For an approval or charge whose answer was lost, within one hour of the request
        (``capabilities.void_window``; the Router keeps time). It needs no tid, which is
        the point: it works when the answer carrying the tid never arrived.
        """
        op = Operation.VOID
        self._check_order_id(op, req.attempt_id)
        return self._post("/v1/payments/netcancel", NetCancelBody(order_id=req.attempt_id).wire())

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        """:class:`Cancelled` when NICEPAY cancelled the approval (0000/2001/2211 and a
        ``cancelled`` payment object). 2020 (window passed) is ``InvalidRequest``: cancel
        instead. "No transaction" is an unknown outcome: a lookup settles it."""
        op = Operation.VOID
        got = self._classify(op, req.attempt_id, response, CANCEL_SUCCESS_CODES)
        if not isinstance(got, _Success):
            return got
        body = got.body
        tid = body.tid or req.provider_txn_id
        if not tid:
            return self._unknown(op, req.attempt_id, "the success answer has no tid", got)
        if req.provider_txn_id and body.tid and body.tid != req.provider_txn_id:
            return self._unknown(op, req.attempt_id, "the success answer is for another tid", got)
        if body.order_id is not None and body.order_id != req.attempt_id:
            return self._unknown(
                op, req.attempt_id, "the success answer is for another orderId", got
            )
        if not self._signature_ok(body):
            return self._unknown(op, req.attempt_id, "the answer's signature does not verify", got)
        if body.status is not None and body.pay_status is not PayStatus.CANCELLED:
            return self._unknown(
                op, req.attempt_id, f"a net-cancel success with status {body.status!r}", got
            )
        if body.amount is None:
            return self._unknown(
                op, req.attempt_id, "the success answer does not say how much was cancelled", got
            )
        remaining = body.balance_amt or 0
        money = self._money(body.amount - remaining, body.currency, req.amount.currency)
        if money is None or money.amount <= 0:
            return self._unknown(op, req.attempt_id, "the cancelled amount is unusable", got)
        return Cancelled(provider_txn_id=tid, amount=money, remaining=remaining)
