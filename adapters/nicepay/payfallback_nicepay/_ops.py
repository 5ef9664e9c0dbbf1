"""The NICEPAY adapter: what it can do, and pure ``build_<op>`` / ``parse_<op>`` functions.

Nothing here sends, sleeps, logs or remembers: every method is a function of its
arguments and the adapter's settings, so the async and the sync Router share it and the
tests are about bytes. See the package docstring for the pages of the NICEPAY manual each
operation follows. Every error is made by the instance's :class:`AdapterKit`; what stays
here is NICEPAY's quirks: the ``resultCode`` inside a 200 answer, the payment object and
its ``signature``, the callback check, the order date of an inquiry by orderId.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from payfallback.adapter import AdapterKit, Secrets, Verdict, basic_auth, fit_bytes, read_object
from payfallback.errors import ConfigurationError, PayfallbackError
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
)
from payfallback_nicepay._receipt import receipt_of, refund_receipt_of
from payfallback_nicepay._wire import (
    API_HOST,
    CANCEL_SUCCESS_CODES,
    CODE_HINTS,
    CODE_TABLE,
    JS_SDK_URL,
    SANDBOX_API_HOST,
    SANDBOX_JS_SDK_URL,
    SUCCESS_CODE,
    ApproveBody,
    AuthCallback,
    BillingPayBody,
    CancelBody,
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

#: NICEPAY documents no request-id header; keep one if a gateway in between adds it.
_REQUEST_ID_HEADERS = ("x-request-id", "x-trace-id", "x-amzn-trace-id")


def _fit(text: str, limit: int) -> str:
    return fit_bytes(text.strip(), limit)


def _parse_time(value: str | None) -> datetime | None:
    # Timestamps are ISO 8601 ("2021-10-05T16:56:34.000+0900"), or "0" when not applicable.
    if not value or value == "0":
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Success:
    """A 2xx answer whose ``resultCode`` is a success for the operation."""

    code: str
    body: PaymentObject
    response: httpx.Response
    #: The answer as parsed, for the receipt and the record.
    data: dict[str, Any]


class Nicepay:
    """NICEPAY (new "start" API) as a payfallback provider.

    Settings (keyword-only, so ``load_provider("nicepay", ...)`` works):

    * ``client_key`` — the 클라이언트 키. The JS SDK takes it as ``clientId``, so the
      browser sees it; it is still declared in :attr:`secrets` (with the secret key it
      makes the Basic credentials) and never appears in an error, event or log line.
    * ``secret_key`` — the 시크릿 키 (``SecretStr``; a plain ``str`` is wrapped). Together
      they form the ``Authorization: Basic`` header and verify ``signature`` fields.
    * ``sandbox`` — ``True`` for ``sandbox-api.nicepay.co.kr`` and the sandbox payment
      window; the sandbox answers with dummy data and cannot partially cancel.
    * ``mobile_goods`` — ``"content"`` or ``"physical"``: the JS SDK's required ``isDigital``
      for phone billing ("0: 컨텐츠, 1: 실물"); phone billing is offered only when it is set.

    **Secrets.** :attr:`secrets` holds the client key, the secret key, and the
    ``Authorization`` value built from them (with and without its ``Basic`` prefix); the
    kit (:attr:`kit`) scrubs them from every error text, and the Router from everything
    else. While parsing, the request's own secrets are scrubbed too: the billing key
    (``bid``) of a charge, the ``authToken`` and ``signature`` of the return callback.
    An answer whose ``tid`` carries one of them is not taken as it is.

    **Duplicates.** NICEPAY has no idempotency header (``idempotency_header=None``). The
    ``orderId`` plays that role: we send our attempt id as ``orderId`` on the payment
    window and on billing charges, NICEPAY refuses a paid ``orderId`` a second time, and
    that refusal (``A127`` duplicate order number, ``U112`` orderId already used, ``P015``,
    ``2201`` approval exists, ``A225``/``U114`` TID used) is an unknown outcome that a lookup
    settles, never a failure to reroute on. Approvals are also keyed by the one-time ``tid``
    of the authentication. Each cancel sends the request's idempotency key as its own
    ``orderId``, which NICEPAY refuses to reuse for another partial cancel.

    **Lost answers.** A lookup by tid (``GET /v1/payments/{tid}``) or by our attempt id
    (``GET /v1/payments/find/{orderId}?orderDate=YYYYMMDD``, date in KST) learns the
    outcome; within an hour, ``void`` (net cancel by orderId) undoes it — the one proof
    NICEPAY offers that an attempt moved no money (see the package docstring, "What proves
    a payment did not go through").
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
        header = basic_auth(self.client_key, secret.get_secret_value())
        self._authorization = SecretStr(header)
        # The client key is public (the JS SDK's clientId, in every checkout page): only the
        # secret key and the Authorization value built with it are secret.
        self.secrets = Secrets(secret, header, header.removeprefix("Basic ").strip())
        self.kit = AdapterKit(
            provider=self.name,
            label="NICEPAY",
            codes=CODE_TABLE,
            request_id_headers=_REQUEST_ID_HEADERS,
            hints=CODE_HINTS,
            secrets=self.secrets,
        )
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
            # The manual documents no time after which an inquiry's "no such transaction"
            # (A118) means the request was never processed: "not found" is never proof.
            settle_window=None,
            # Only a *paid* orderId is refused again ("결제된 orderId로 재호출 불가"): after
            # a failure the same orderId can be paid, and which of its transactions an
            # inquiry by orderId reports is not stated. A failed record is not final.
            failed_record_is_final=False,
        )

    def __repr__(self) -> str:
        return f"Nicepay(sandbox={self.sandbox!r})"

    # -- wire helpers ------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": self._authorization.get_secret_value(),
            "Content-Type": "application/json;charset=utf-8",
            "Accept": "application/json",
        }

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Request:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return httpx.Request("POST", self.base_url + path, headers=self._headers(), content=content)

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Request:
        return httpx.Request("GET", self.base_url + path, headers=self._headers(), params=params)

    def _check_money(self, op: Operation, attempt_id: str, money: Money) -> None:
        self.kit.check_currency(money, self.capabilities, op, attempt_id)
        if money.amount <= 0:
            raise self.kit.invalid("the amount must be greater than zero", op, attempt_id)

    def _check_order_id(self, op: Operation, attempt_id: str) -> None:
        self.kit.check_length(
            attempt_id, "the attempt id (sent as orderId)", op, attempt_id, maximum=_ORDER_ID_MAX
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

    def _answer(
        self,
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
        success_codes: frozenset[str],
    ) -> _Success | Failed | Status:
        """Success with its payment object, or what NICEPAY's answer means.

        NICEPAY's quirk: the verdict is the body's ``resultCode``, usually inside an HTTP
        200. A success code with a readable payment object is success; everything else
        goes to the kit's classifier, except "no such transaction", which on a lookup is an
        answer (``Status(NOT_FOUND)``) and on a net cancel proves nothing (the approval it
        was meant to undo may still be committing).
        """
        data = read_object(response)
        code, msg, body = read_body(data)
        if response.is_success and code is not None and code in success_codes:
            if body is None or data is None:
                return Failed(
                    self._unusable(
                        kit, op, attempt_id, "a success answer could not be read", response, code
                    )
                )
            return _Success(code=code, body=body, response=response, data=data)
        verdict = kit.verdict(code, op)
        if verdict is Verdict.NOT_FOUND and op is Operation.LOOKUP:
            return Status(state=TxnState.NOT_FOUND, provider_status=code)
        if verdict is Verdict.NOT_FOUND and op is Operation.VOID:
            said = kit.clean(msg)
            return Failed(
                kit.unknown(
                    "NICEPAY found no approval to net-cancel"
                    + (f": {said}" if said else "")
                    + "; that is no proof nothing was charged (the approval may still be "
                    "committing): look it up",
                    op,
                    attempt_id,
                    response,
                    code,
                )
            )
        return Failed(kit.classify(op, attempt_id, response, code=code, message=msg))

    @staticmethod
    def _unusable(
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        what: str,
        response: httpx.Response,
        code: str | None,
    ) -> PayfallbackError:
        """An answer we cannot use as it stands: an unknown outcome on a money-moving call
        (the provider may have acted), a failed inquiry on a lookup. ``what`` never quotes
        provider text that has not been through ``kit.clean``."""
        text = f"NICEPAY {op.value}: {what}"
        if op in MONEY_MOVING:
            text += "; look it up before acting again"
        return kit.error(
            Verdict.UNKNOWN,
            op,
            attempt_id,
            response=response,
            code=code,
            text=kit.secrets.scrub(text),
        )

    # -- ready -------------------------------------------------------------------------------

    def _client_params(self, req: ReadyRequest) -> dict[str, str]:
        op, kit = Operation.READY, self.kit
        self._check_money(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        if req.method is Method.MOBILE and req.method not in self.capabilities.methods:
            raise ConfigurationError(
                "nicepay ready: phone billing needs mobile_goods='content' or 'physical'",
                **kit.context(op, req.attempt_id),
            )
        kit.check_method(req.method, self.capabilities, op, req.attempt_id)
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

    def _callback_kit(self, req: ApproveRequest) -> AdapterKit:
        params = req.callback_params
        return self.kit.with_request_secrets(params.get("authToken"), params.get("signature"))

    def _callback(self, req: ApproveRequest) -> tuple[str, int]:
        """The tid and amount of a verified authentication callback.

        Raises ``Declined`` when NICEPAY reports the authentication failed (the customer
        cancelled, the card company refused): nothing was charged and nothing is sent.
        Raises ``InvalidRequest`` when the callback does not match the order or its
        signature does not verify: it may be forged, and nothing is sent. No message quotes
        a callback field.
        """
        op, kit = Operation.APPROVE, self._callback_kit(req)
        try:
            cb = AuthCallback.model_validate(dict(req.callback_params))
        except ValidationError:
            raise kit.invalid("the callback fields are not text", op, req.attempt_id) from None
        if cb.auth_result_code is None:
            raise kit.invalid(
                "the callback has no authResultCode; pass NICEPAY's POST to returnUrl unchanged",
                op,
                req.attempt_id,
            )
        if cb.auth_result_code != SUCCESS_CODE:
            said = kit.clean(cb.auth_result_msg)
            raise kit.error(
                Verdict.DECLINED,
                op,
                req.attempt_id,
                code=cb.auth_result_code,
                # NICEPAY's own words (authResultMsg) become the decline's user_message.
                message=cb.auth_result_msg,
                text="NICEPAY authentication failed" + (f": {said}" if said else ""),
            )
        self._check_money(op, req.attempt_id, req.order.amount)
        if not cb.tid:
            raise kit.invalid("the callback has no tid", op, req.attempt_id)
        expected = req.order.amount.amount
        try:
            amount = int(cb.amount) if cb.amount is not None else None
        except ValueError:
            amount = None
        if amount != expected:
            raise kit.invalid(
                f"the callback amount is not the order amount {expected}; not approving",
                op,
                req.attempt_id,
            )
        if cb.order_id is not None and cb.order_id != req.attempt_id:
            raise kit.invalid(
                "the callback is for another orderId; not approving", op, req.attempt_id
            )
        if not cb.auth_token or not cb.signature:
            raise kit.invalid(
                "the callback has no authToken/signature to verify", op, req.attempt_id
            )
        # Our own client key, not the callback's: a window opened with other keys fails here.
        signed = auth_signature(
            auth_token=cb.auth_token,
            client_id=self.client_key,
            amount=expected,
            secret_key=self._secret_key.get_secret_value(),
        )
        if not signature_matches(signed, cb.signature):
            raise kit.invalid(
                "the callback signature does not verify; not approving", op, req.attempt_id
            )
        return cb.tid, expected

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """``POST /v1/payments/{tid}`` with ``{"amount": <order amount>}``.

        The tid comes from the verified callback (``callback_params["tid"]``). The optional
        ``ediDate``/``signData`` pair is not sent: it needs a clock, and TLS plus Basic
        authentication already protect this server-to-server call.
        """
        tid, amount = self._callback(req)
        body = self._callback_kit(req).body(
            ApproveBody, Operation.APPROVE, req.attempt_id, amount=amount
        )
        return self._post(f"/v1/payments/{quote(tid, safe='')}", body.wire())

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        """:class:`Approved` for resultCode 0000 with status ``paid``, the callback's tid,
        an amount, and a signature that verifies (when sent); anything less is unknown."""
        tid = req.callback_params.get("tid") or req.provider_txn_id
        return self._parse_paid(
            self._callback_kit(req),
            Operation.APPROVE,
            req.attempt_id,
            req.order.amount.currency,
            response,
            tid,
        )

    def _parse_paid(
        self,
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        currency: str,
        response: httpx.Response,
        expected_tid: str | None,
    ) -> Outcome:
        got = self._answer(kit, op, attempt_id, response, frozenset({SUCCESS_CODE}))
        if not isinstance(got, _Success):
            return got
        body = got.body

        def unknown(what: str) -> Failed:
            return Failed(self._unusable(kit, op, attempt_id, what, response, got.code))

        if not body.tid:
            return unknown("the success answer has no tid")
        if kit.carries_secret(body.tid):
            return unknown("the success answer's tid carries a secret we sent")
        if expected_tid and body.tid != expected_tid:
            return unknown("the success answer is for another tid")
        if body.amount is None:
            return unknown("the success answer has no amount")
        if body.order_id is not None and body.order_id != attempt_id:
            return unknown("the success answer is for another orderId")
        if not self._signature_ok(body):
            # Tampering, a misbehaving proxy, or a secret-key mix-up: do not trust the body.
            return unknown("the answer's signature does not verify")
        money = self._money(body.amount, body.currency, currency)
        if money is None:
            return unknown(f"unusable currency ({kit.clean(body.currency, limit=16)})")
        if body.status is None or body.pay_status is PayStatus.PAID:
            return Approved(
                provider_txn_id=body.tid,
                amount=money,
                approved_at=_parse_time(body.paid_at),
                provider_status=body.status,
                receipt=receipt_of(got.data, kit.secrets),
                # Masked here with the request's secrets too (the callback's authToken, a
                # charge's bid); the Router masks again before keeping it.
                answer=kit.secrets.scrub_answer(got.data),
            )
        return unknown(f"resultCode 0000 with status {kit.clean(body.status, limit=40)}")

    # -- charge (billing key) ----------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """``POST /v1/subscribe/{bid}/payments``: orderId (our attempt id), amount,
        goodsName, cardQuota 0 (lump sum), useShopInterest false, taxFreeAmt.

        The bid travels in the URL path, as NICEPAY designed it: the request URL is secret.
        """
        op = Operation.CHARGE
        bid = self.kit.check_instrument(req.instrument, req.attempt_id).strip()
        kit = self.kit.with_request_secrets(req.instrument.billing_key)
        self._check_money(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        if req.instrument.method is not Method.CARD:
            raise kit.invalid("NICEPAY billing keys are card-only", op, req.attempt_id)
        if not bid:
            raise kit.invalid("the billing key is empty", op, req.attempt_id)
        body = kit.body(
            BillingPayBody,
            op,
            req.attempt_id,
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
            self.kit.with_request_secrets(req.instrument.billing_key),
            Operation.CHARGE,
            req.attempt_id,
            req.order.amount.currency,
            response,
            None,
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
            raise self.kit.invalid(
                "a lookup by orderId needs attempted_at (NICEPAY requires the order date)",
                op,
                req.attempt_id,
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

        NOT_FOUND is what NICEPAY said, not a conclusion: right after a timeout it proves
        nothing (the core decides, and with no documented settle window it never counts
        as proof). An undocumented status, or a signature that does not verify, is a failed
        inquiry (``ProviderUnavailable``): it never reads as paid or unpaid.
        """
        op, kit = Operation.LOOKUP, self.kit
        data = read_object(response)
        code, _msg, body = read_body(data)
        if (
            response.is_success
            and data is not None
            and body is not None
            and body.tid
            and body.status is not None
        ):
            # Whatever resultCode an inquiry carries, a payment object with a tid and a
            # status describes the transaction.
            return self._status(kit, req, body, code, response, data)
        got = self._answer(kit, op, req.attempt_id, response, frozenset({SUCCESS_CODE}))
        if isinstance(got, _Success):
            return Failed(
                self._unusable(
                    kit, op, req.attempt_id, "the answer has no tid or status", response, got.code
                )
            )
        if isinstance(got, Status) and got.state is TxnState.NOT_FOUND:
            return self._not_found(kit, req, got, response)
        return got

    def _not_found(
        self, kit: AdapterKit, req: LookupRequest, got: Status, response: httpx.Response
    ) -> Outcome:
        if req.provider_txn_id or req.attempted_at is None:
            return got
        kst = self._kst(req.attempted_at)
        if (kst + _ORDER_DATE_MARGIN).date() != kst.date():
            return Failed(
                kit.unknown(
                    f"NICEPAY lookup: not found for orderDate {kst:%Y%m%d}, but the attempt "
                    "was made minutes before midnight KST and may be recorded under the next "
                    "day; resolve by tid, by net cancel, or in the NICEPAY admin",
                    Operation.LOOKUP,
                    req.attempt_id,
                    response,
                    got.provider_status,
                )
            )
        return got

    def _status(
        self,
        kit: AdapterKit,
        req: LookupRequest,
        body: PaymentObject,
        code: str | None,
        response: httpx.Response,
        data: Mapping[str, Any],
    ) -> Outcome:
        op = Operation.LOOKUP

        def unusable(what: str) -> Failed:
            return Failed(self._unusable(kit, op, req.attempt_id, what, response, code))

        if body.order_id is not None and body.order_id != req.attempt_id:
            return Failed(
                kit.invalid(
                    "NICEPAY lookup: the transaction belongs to another orderId",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        if kit.carries_secret(body.tid):
            return unusable("the answer's tid carries a secret we sent; not trusting it")
        if not self._signature_ok(body):
            return unusable("the answer's signature does not verify; not trusting it")
        status = body.pay_status
        if status is None:
            return unusable(
                f"undocumented status {kit.clean(body.status, limit=40)}; the transaction "
                "stays unresolved (check it in the NICEPAY admin)"
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
            return unusable(f"{status.value} without an amount")
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
        paid = state is TxnState.PAID
        return Status(
            state=state,
            provider_txn_id=body.tid,
            amount=money,
            cancelled=cancelled,
            provider_status=body.status,
            # A payment found paid becomes the order's payment: its receipt and answer too.
            receipt=receipt_of(data, kit.secrets) if paid else None,
            answer=kit.secrets.scrub_answer(data) if paid else None,
        )

    # -- cancel ------------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST /v1/payments/{tid}/cancel`` with reason, orderId, cancelAmt, taxFreeAmt.

        ``orderId`` is the refund's id: unique per refund and the same on every try of it
        — even when the Router gives a later try a fresh idempotency key — so NICEPAY,
        which refuses the same orderId for a second partial cancel, can never carry out one
        refund twice (a cancel whose answer was lost may commit late).
        ``cancelAmt`` is left out for a full cancel of an untouched payment ("값이 누락이면
        전액취소"), which the sandbox also accepts; otherwise it is the amount.
        ``taxFreeAmt`` ("취소금액중 면세공급가액") is the request's tax-free share, sent
        whenever the order has a tax-free part or the share is not zero, so NICEPAY never
        has to guess how much of the cancel is tax-free.
        """
        op, kit = Operation.CANCEL, self.kit
        kit.check_cancel(req, self.capabilities)
        key = kit.check_length(
            req.refund_id,
            "the refund id (sent as the cancel's orderId)",
            op,
            req.attempt_id,
            maximum=_ORDER_ID_MAX,
        )
        whole = req.amount.amount == req.expected_remaining == req.order.amount.amount
        tax_free = req.order.tax_free_amount > 0 or req.tax_free_amount > 0
        body = kit.body(
            CancelBody,
            op,
            req.attempt_id,
            reason=_fit(req.reason, _REASON_BYTES) or "cancel",
            order_id=key,
            cancel_amt=None if whole else req.amount.amount,
            tax_free_amt=req.tax_free_amount if tax_free else None,
        )
        return self._post(f"/v1/payments/{quote(req.provider_txn_id, safe='')}/cancel", body.wire())

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        """:class:`Cancelled` for 0000, 2001 (취소 성공) or 2211 (환불 성공); ``remaining``
        is ``balanceAmt``. "Already cancelled" (2013) and "cancel already requested"
        (2015) are unknown outcomes: an earlier try of this cancel may be what succeeded."""
        op, kit = Operation.CANCEL, self.kit
        got = self._answer(kit, op, req.attempt_id, response, CANCEL_SUCCESS_CODES)
        if not isinstance(got, _Success):
            return got
        body = got.body

        def unknown(what: str) -> Failed:
            return Failed(self._unusable(kit, op, req.attempt_id, what, response, got.code))

        if not body.tid:
            return unknown("the success answer has no tid")
        if body.tid != req.provider_txn_id:
            return unknown("the success answer is for another tid")
        if not self._signature_ok(body):
            return unknown("the answer's signature does not verify")
        if body.status is not None and body.pay_status not in (
            PayStatus.CANCELLED,
            PayStatus.PARTIAL_CANCELLED,
        ):
            return unknown(f"a cancel success with status {kit.clean(body.status, limit=40)}")
        amount: int | None = None
        cancelled_at = _parse_time(body.cancelled_at)
        for entry in body.cancels or ():
            if body.cancelled_tid and entry.tid == body.cancelled_tid and entry.amount:
                amount = entry.amount
                cancelled_at = _parse_time(entry.cancelled_at) or cancelled_at
        if amount is None and body.balance_amt is not None:
            amount = req.expected_remaining - body.balance_amt
        if amount is None or amount <= 0:
            return unknown("the success answer does not say how much was cancelled")
        money = self._money(amount, body.currency, req.amount.currency)
        if money is None:
            return unknown(f"unusable currency ({kit.clean(body.currency, limit=16)})")
        return Cancelled(
            provider_txn_id=body.tid,
            amount=money,
            remaining=body.balance_amt,
            receipt=refund_receipt_of(
                body.cancelled_tid, cancelled_at, body.balance_amt, kit.secrets
            ),
            answer=kit.secrets.scrub_answer(got.data),
        )

    # -- void (net cancel) -------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        """``POST /v1/payments/netcancel`` with ``{"orderId": <attempt id>}``.

        For an approval or charge whose answer was lost, within one hour of the request
        (``capabilities.void_window``; the Router keeps time). It needs no tid, which is
        the point: it works when the answer carrying the tid never arrived.
        """
        op = Operation.VOID
        self._check_order_id(op, req.attempt_id)
        body = self.kit.body(NetCancelBody, op, req.attempt_id, order_id=req.attempt_id)
        return self._post("/v1/payments/netcancel", body.wire())

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        """:class:`Cancelled` (``settled=True``) only for an acknowledged net cancel: a
        success code (0000, or 2001/2211) with a payment object whose ``status`` is
        ``cancelled``, nothing left to cancel (``balanceAmt`` 0), an amount, our orderId
        and tid where given, and a signature that verifies when sent. That is the proof
        the core may end an attempt on.

        Anything else proves nothing: 2020 (window passed) is ``InvalidRequest`` (cancel
        instead); "no such transaction" (2012, A118, U126 …) is an unknown outcome, since
        the manual does not say what a net cancel of a transaction that never happened
        answers and the approval may still be committing; a success code with any other
        payment object is unknown too."""
        op, kit = Operation.VOID, self.kit
        got = self._answer(kit, op, req.attempt_id, response, CANCEL_SUCCESS_CODES)
        if not isinstance(got, _Success):
            return got
        body = got.body

        def unknown(what: str) -> Failed:
            return Failed(self._unusable(kit, op, req.attempt_id, what, response, got.code))

        tid = body.tid or req.provider_txn_id
        if not tid:
            return unknown("the success answer has no tid")
        if kit.carries_secret(tid):
            return unknown("the success answer's tid carries a secret we sent")
        if req.provider_txn_id and body.tid and body.tid != req.provider_txn_id:
            return unknown("the success answer is for another tid")
        if body.order_id is not None and body.order_id != req.attempt_id:
            return unknown("the success answer is for another orderId")
        if not self._signature_ok(body):
            return unknown("the answer's signature does not verify")
        if body.pay_status is not PayStatus.CANCELLED:
            return unknown(f"a net-cancel success with status {kit.clean(body.status, limit=40)}")
        if body.amount is None:
            return unknown("the success answer does not say how much was cancelled")
        if body.balance_amt:
            return unknown(
                f"the net cancel left {body.balance_amt} cancellable: not all of it was undone"
            )
        money = self._money(body.amount, body.currency, req.amount.currency)
        if money is None or money.amount <= 0:
            return unknown("the cancelled amount is unusable")
        return Cancelled(
            provider_txn_id=tid,
            amount=money,
            remaining=0,
            settled=True,
            receipt=refund_receipt_of(
                body.cancelled_tid, _parse_time(body.cancelled_at), 0, kit.secrets
            ),
            answer=kit.secrets.scrub_answer(got.data),
        )
