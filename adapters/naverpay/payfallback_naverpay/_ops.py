"""The Naver Pay adapter: what it can do, and a pure build/parse pair per operation.

Flow (REDIRECT, but opened client-side):

1. ``ready`` sends nothing. :meth:`NaverPay.parse_ready` returns a :class:`Redirect` with no
   URL and ``client_params`` for Naver's JS SDK (``Naver.Pay.create({mode, clientId,
   chainId})`` then ``oPay.open({merchantPayKey, productName, …, returnUrl})``).
2. Naver sends the customer to ``returnUrl?resultCode=Success&paymentId=…`` (or another
   ``resultCode`` and no ``paymentId`` when the customer gave up).
3. ``approve`` is *apply*: ``POST …/v2.2/apply/payment`` with that ``paymentId``.
4. ``lookup`` reads the history of a ``paymentId``; ``cancel`` is ``POST …/v1/cancel``
   guarded by ``doCompareRest``/``expectedRestAmount``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Final, NoReturn

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
from payfallback.models import Method, Money, Order
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
from payfallback_naverpay._wire import (
    APPLY_CODES,
    CALLBACK_CODES,
    CANCEL_CODES,
    HISTORY_CODES,
    PAYMENT_ID_PATTERN,
    AdmissionState,
    AdmissionType,
    ApplyBody,
    ApplyForm,
    CancelBody,
    CancelForm,
    CodeRule,
    Envelope,
    HistoryBody,
    HistoryQuery,
    HistoryRow,
    Kind,
    admission_state,
    admission_type,
)

__all__ = ["CAPABILITIES", "DOMAIN_HOSTS", "IDEMPOTENCY_HEADER", "SDK_URL", "DomainSet", "NaverPay"]

#: Naver Pay reports times as ``yyyyMMddHHmmss`` in Korea Standard Time (no DST).
KST: Final = timezone(timedelta(hours=9), "KST")
SDK_URL: Final = "https://nsp.pay.naver.com/sdk/js/naverpay.min.js"
IDEMPOTENCY_HEADER: Final = "X-NaverPay-Idempotency-Key"
#: A payment's history is one approval row plus one row per cancel attempt.
HISTORY_ROWS_PER_PAGE: Final = 20
_MERCHANT_PAY_KEY_MAX_BYTES: Final = 64
_CANCEL_REASON_MAX_BYTES: Final = 256
_MESSAGE_MAX_CHARS: Final = 200
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")
_PATH_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


class DomainSet(StrEnum):
    """The two API domain sets in circulation; which one applies is in your contract."""

    #: ``apis.naver.com`` / ``dev.apis.naver.com``: the official URL-format page copied in
    #: NaverPayDev/agent-integration and the developer(s).pay.naver.com guides.
    APIS = "apis"
    #: ``pay.paygate.naver.com`` / ``dev-pay.paygate.naver.com``: docs.pay.naver.com's
    #: URL-format page as quoted by several recent clients.
    PAYGATE = "paygate"


#: (production host, development host) of each domain set.
DOMAIN_HOSTS: Final[Mapping[DomainSet, tuple[str, str]]] = {
    DomainSet.APIS: ("apis.naver.com", "dev.apis.naver.com"),
    DomainSet.PAYGATE: ("pay.paygate.naver.com", "dev-pay.paygate.naver.com"),
}

CAPABILITIES: Final = Capabilities(
    methods=frozenset({Method.NAVERPAY}),
    flows=frozenset({Flow.REDIRECT}),
    # History is searched by paymentId (or a time range), never by merchantPayKey...
    lookup_by_order_id=False,
    # ...but the paymentId arrives in the return URL, before apply is sent.
    callback_txn_id_param="paymentId",
    idempotency_header=IDEMPOTENCY_HEADER,
    # Naver does not say how long it keeps keys.
    idempotency_retention=None,
    idempotency_key_max_length=64,
    partial_cancel=True,
    void_window=None,
    currencies=frozenset({"KRW"}),
    # Naver's caution for apply: approval can take long, allow 60 s before giving up.
    read_timeout=60.0,
)

_OP_NAMES: Final = {
    Operation.APPROVE: "apply",
    Operation.CANCEL: "cancel",
    Operation.LOOKUP: "history inquiry",
}


class NaverPay:
    """Naver Pay 결제형 one-time payments (approve, history lookup, full/partial cancel).

    Settings are keyword-only so ``load_provider("naverpay", client_id=…, …)`` works:

    - ``client_id``, ``client_secret`` (a :class:`~pydantic.SecretStr`; a ``str`` is
      wrapped), ``chain_id``: the ``X-Naver-Client-Id`` / ``-Secret`` and
      ``X-NaverPay-Chain-Id`` credentials.
    - ``partner_id``: the path segment of every URL,
      ``https://{host}/{partner_id}/naverpay/payments/…``.
    - ``sandbox``: development hosts and SDK ``mode: "development"`` (no money moves).
    - ``domain_set``: which host pair to use (default :attr:`DomainSet.APIS`, the one in
      Naver's own published copy of the URL-format page); ``api_host`` overrides the host
      outright (e.g. ``dev-pub.apis.naver.com``).
    - ``financial_id``: sent as ``X-NaverPay-Financial-Id`` where the contract needs it.
    - ``product_category_type`` / ``product_category_id``: the ``productItems`` category
      for the payment window (see Naver's product-item table for your goods).
    """

    name: str = "naverpay"
    capabilities: Capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: SecretStr | str,
        chain_id: str,
        partner_id: str,
        sandbox: bool = False,
        domain_set: DomainSet | str = DomainSet.APIS,
        api_host: str | None = None,
        financial_id: str | None = None,
        product_category_type: str = "PRODUCT",
        product_category_id: str = "GENERAL",
    ) -> None:
        self._client_id = _setting("client_id", client_id, _HEADER_SAFE)
        self._chain_id = _setting("chain_id", chain_id, _HEADER_SAFE)
        self._partner_id = _setting("partner_id", partner_id, _PATH_SAFE)
        secret = SecretStr(client_secret) if isinstance(client_secret, str) else client_secret
        if not isinstance(secret, SecretStr) or not _HEADER_SAFE.fullmatch(
            secret.get_secret_value()
        ):
            # Never echo the value: it is the secret.
            raise ConfigurationError(
                "naverpay: client_secret must be the non-empty Client Secret issued by "
                "Naver Pay (printable ASCII, no spaces)",
                provider=self.name,
            )
        self._client_secret = secret
        self._financial_id = (
            _setting("financial_id", financial_id, _HEADER_SAFE)
            if financial_id is not None
            else None
        )
        self._sandbox = bool(sandbox)
        try:
            self._domain_set = DomainSet(domain_set)
        except ValueError:
            choices = ", ".join(repr(d.value) for d in DomainSet)
            raise ConfigurationError(
                f"naverpay: unknown domain_set {domain_set!r}; use one of {choices} "
                "(or api_host=... for a host of your own)",
                provider=self.name,
            ) from None
        self._host = (
            _host(api_host)
            if api_host is not None
            else DOMAIN_HOSTS[self._domain_set][1 if self._sandbox else 0]
        )
        self._category_type = _setting("product_category_type", product_category_type, None)
        self._category_id = _setting("product_category_id", product_category_id, None)

    def __repr__(self) -> str:
        return (
            f"NaverPay(host={self._host!r}, partner_id={self._partner_id!r}, "
            f"sandbox={self._sandbox})"
        )

    @property
    def base_url(self) -> str:
        """``https://{host}/{partner_id}/naverpay/payments``; every API hangs below it."""
        return f"https://{self._host}/{self._partner_id}/naverpay/payments"

    # -- ready ------------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """Nothing to send: Naver's JS SDK opens the payment window in the browser."""
        self._client_params(req)  # refuse bad input now, before a session is handed out
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        try:
            params = self._client_params(req)
        except PayfallbackError as exc:
            return Failed(exc)
        # No URL: the browser calls oPay.open(client_params) and Naver redirects to
        # returnUrl with resultCode and paymentId when the customer is done.
        return Redirect(provider_txn_id=None, redirect_urls={}, client_params=params)

    def _client_params(self, req: ReadyRequest) -> dict[str, str]:
        where = self._where(Operation.READY, req.attempt_id)
        self._check_order(req.order, req.method, where)
        if len(req.attempt_id.encode()) > _MERCHANT_PAY_KEY_MAX_BYTES:
            raise InvalidRequest(
                f"attempt id is longer than the {_MERCHANT_PAY_KEY_MAX_BYTES} bytes Naver Pay "
                "allows for merchantPayKey; shorten the order id",
                **where,
            )
        order = req.order
        total = order.amount.amount
        lines = [(item.name, item.quantity) for item in order.items] or [(order.name, 1)]
        product_items = [
            {
                "categoryType": self._category_type,
                "categoryId": self._category_id,
                "uid": f"{order.order_id}-{n}",
                "name": name,
                "count": count,
            }
            for n, (name, count) in enumerate(lines, start=1)
        ]
        params = {
            "sdkUrl": SDK_URL,
            "mode": "development" if self._sandbox else "production",
            "clientId": self._client_id,
            "chainId": self._chain_id,
            # Our attempt id, so an approval can be tied back to this attempt (and a
            # paymentId from another checkout is recognised as such).
            "merchantPayKey": req.attempt_id,
            "productName": order.name,
            "productCount": str(sum(count for _, count in lines)),
            "totalPayAmount": str(total),
            "taxScopeAmount": str(total - order.tax_free_amount),
            "taxExScopeAmount": str(order.tax_free_amount),
            # Naver has one return URL for every outcome; resultCode tells them apart.
            "returnUrl": req.return_urls.success,
            "productItems": json.dumps(product_items, ensure_ascii=False, separators=(",", ":")),
        }
        if order.customer_ref is not None:
            params["merchantUserKey"] = order.customer_ref
        return params

    # -- approve (apply) ---------------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """``POST …/v2.2/apply/payment`` with the paymentId from the return URL.

        Raises :class:`Declined` without sending when the return URL's ``resultCode`` is
        not ``Success`` (the customer cancelled or failed authentication: there is no
        paymentId and nothing to approve), and :class:`InvalidRequest` when the return URL
        parameters are missing or malformed.
        """
        where = self._where(Operation.APPROVE, req.attempt_id)
        self._check_order(req.order, req.method, where)
        payment_id = _callback_payment_id(req, where)
        self._check_idempotency_key(req.idempotency_key, where)
        form = ApplyForm(paymentId=payment_id)
        return httpx.Request(
            "POST",
            f"{self.base_url}/v2.2/apply/payment",
            headers=self._headers(
                "application/x-www-form-urlencoded", idempotency_key=req.idempotency_key
            ),
            data=form.form(),
        )

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        answer = self._answer(response, Operation.APPROVE, req.attempt_id, APPLY_CODES)
        if isinstance(answer, Failed):
            return answer
        where = self._where(Operation.APPROVE, req.attempt_id, response, answer.code)
        try:
            body = ApplyBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return _unknown("apply said Success but its body is unreadable", where)
        detail = body.detail
        if detail is None or detail.totalPayAmount is None:
            return _unknown("apply said Success but did not say the approved amount", where)
        payment_id = detail.paymentId or body.paymentId
        sent = req.callback_params.get("paymentId")
        if not payment_id or payment_id != sent:
            return _unknown("apply said Success for a different or missing paymentId", where)
        if detail.admissionState is not None and (
            admission_state(detail.admissionState) is not AdmissionState.SUCCESS
        ):
            return _unknown(
                f"apply said Success but admissionState is {detail.admissionState!r}", where
            )
        if detail.merchantPayKey is not None and detail.merchantPayKey != req.attempt_id:
            # The paymentId in the return URL came from another checkout (a replayed or
            # swapped URL): the money that moved is not this attempt's.
            return _unknown(
                f"the approved paymentId belongs to merchantPayKey {detail.merchantPayKey!r}, "
                "not to this attempt; check where the return URL parameters came from",
                where,
            )
        if detail.totalPayAmount < 0:
            return _unknown("apply reported a negative approved amount", where)
        return Approved(
            provider_txn_id=payment_id,
            amount=Money(amount=detail.totalPayAmount, currency="KRW"),
            approved_at=_parse_ymdt(detail.admissionYmdt),
            provider_status=detail.admissionState or AdmissionState.SUCCESS.value,
        )

    # -- lookup (history) --------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """``POST …/v2.2/list/history/{paymentId}`` (JSON paging body).

        Needs the paymentId: Naver Pay's history cannot be searched by merchantPayKey
        (hence ``lookup_by_order_id=False``). The paymentId is known before apply is sent:
        it is the return URL's ``paymentId`` (``callback_txn_id_param``).
        """
        where = self._where(Operation.LOOKUP, req.attempt_id)
        payment_id = req.provider_txn_id
        if not payment_id:
            raise InvalidRequest(
                "naverpay: lookup needs the paymentId (Naver Pay's history cannot be searched "
                "by merchantPayKey); it is the paymentId of the return URL",
                **where,
            )
        if not PAYMENT_ID_PATTERN.fullmatch(payment_id):
            raise InvalidRequest(
                "naverpay: the provider transaction id is not a paymentId", **where
            )
        query = HistoryQuery(pageNumber=1, rowsPerPage=HISTORY_ROWS_PER_PAGE)
        return httpx.Request(
            "POST",
            f"{self.base_url}/v2.2/list/history/{payment_id}",
            headers=self._headers("application/json"),
            json=query.model_dump(),
        )

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        answer = self._answer(response, Operation.LOOKUP, req.attempt_id, HISTORY_CODES)
        if isinstance(answer, Failed):
            return answer
        where = self._where(Operation.LOOKUP, req.attempt_id, response, answer.code)
        try:
            body = HistoryBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return Failed(
                ProviderUnavailable("the history answer is unreadable; ask again", **where)
            )
        payment_id = req.provider_txn_id or ""
        rows = [r for r in body.rows or () if r.paymentId in (None, payment_id)]
        return _status_from_history(rows, payment_id, req.attempt_id, where)

    # -- cancel ------------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST …/v1/cancel``, form-encoded, with ``doCompareRest=1``.

        ``expectedRestAmount`` is what must remain *after* this cancel
        (``req.expected_remaining - req.amount``): Naver refuses the cancel
        (``RestAmountDiff``) when its balance differs, so a replay cannot cancel twice.
        """
        where = self._where(Operation.CANCEL, req.attempt_id)
        if req.amount.currency != "KRW":
            raise InvalidRequest(f"Naver Pay cancels only KRW; got {req.amount.currency}", **where)
        amount = req.amount.amount
        if amount <= 0:
            raise InvalidRequest("the cancel amount must be greater than zero", **where)
        if amount > req.expected_remaining:
            raise InvalidRequest(
                f"cancel of {amount} KRW exceeds the {req.expected_remaining} KRW still "
                "cancellable; cancel at most what remains",
                **where,
            )
        if not PAYMENT_ID_PATTERN.fullmatch(req.provider_txn_id):
            raise InvalidRequest(
                "naverpay: the provider transaction id is not a paymentId", **where
            )
        reason = _truncate_utf8(" ".join(req.reason.split()), _CANCEL_REASON_MAX_BYTES)
        if not reason:
            raise InvalidRequest("Naver Pay requires a cancel reason; pass reason=...", **where)
        self._check_idempotency_key(req.idempotency_key, where)
        taxable, tax_free = _tax_split(req.order, amount)
        form = CancelForm(
            paymentId=req.provider_txn_id,
            cancelAmount=amount,
            cancelReason=reason,
            # Merchant admin: the docs say to use it whenever the requester is unclear.
            cancelRequester="2",
            taxScopeAmount=taxable,
            taxExScopeAmount=tax_free,
            doCompareRest=1,
            expectedRestAmount=req.expected_remaining - amount,
        )
        return httpx.Request(
            "POST",
            f"{self.base_url}/v1/cancel",
            headers=self._headers(
                "application/x-www-form-urlencoded", idempotency_key=req.idempotency_key
            ),
            data=form.form(),
        )

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        answer = self._answer(response, Operation.CANCEL, req.attempt_id, CANCEL_CODES)
        if isinstance(answer, Failed):
            return answer
        where = self._where(Operation.CANCEL, req.attempt_id, response, answer.code)
        try:
            body = CancelBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return _unknown("cancel said Success but its body is unreadable", where)
        if body.paymentId is not None and body.paymentId != req.provider_txn_id:
            return _unknown("cancel said Success for a different paymentId", where)
        cancelled = body.cancelled_amount()
        if cancelled is None and body.totalRestAmount is None:
            return _unknown("cancel said Success but reported no amounts", where)
        amount = cancelled if cancelled is not None else req.amount.amount
        if amount < 0 or (body.totalRestAmount is not None and body.totalRestAmount < 0):
            return _unknown("cancel reported a negative amount", where)
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=amount, currency="KRW"),
            remaining=body.totalRestAmount,
        )

    # -- not offered --------------------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        raise NotImplementedError("naverpay: charge is not supported")

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError("naverpay: charge is not supported")

    def build_void(self, req: VoidRequest) -> httpx.Request:
        raise NotImplementedError("naverpay: void is not supported")

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError("naverpay: void is not supported")

    # -- shared --------------------------------------------------------------------------------

    def _headers(self, content_type: str, *, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {
            "X-Naver-Client-Id": self._client_id,
            "X-Naver-Client-Secret": self._client_secret.get_secret_value(),
            "X-NaverPay-Chain-Id": self._chain_id,
            "Content-Type": content_type,
            "Accept": "application/json",
        }
        if self._financial_id is not None:
            headers["X-NaverPay-Financial-Id"] = self._financial_id
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return headers

    def _where(
        self,
        operation: Operation,
        attempt_id: str,
        response: httpx.Response | None = None,
        code: str | None = None,
    ) -> dict[str, Any]:
        return {
            "provider": self.name,
            "operation": operation.value,
            "attempt_id": attempt_id,
            "provider_code": code,
            "provider_request_id": _request_id(response) if response is not None else None,
        }

    def _check_order(self, order: Order, method: Method, where: dict[str, Any]) -> None:
        if method is not Method.NAVERPAY:
            raise InvalidRequest(
                f"naverpay takes only the naverpay method, not {method.value}", **where
            )
        if order.amount.currency != "KRW":
            raise InvalidRequest(
                f"Naver Pay charges only KRW; order {order.order_id} is in {order.amount.currency}",
                **where,
            )

    def _check_idempotency_key(self, key: str, where: dict[str, Any]) -> None:
        limit = self.capabilities.idempotency_key_max_length
        if not key or len(key) > limit or not _HEADER_SAFE.fullmatch(key):
            raise InvalidRequest(
                f"the idempotency key must be 1-{limit} printable ASCII characters "
                "(Naver Pay recommends A-Z a-z 0-9 _ -)",
                **where,
            )

    def _answer(
        self,
        response: httpx.Response,
        operation: Operation,
        attempt_id: str,
        table: Mapping[str, CodeRule],
    ) -> Envelope | Failed:
        """The envelope of a success answer, or the classified failure.

        Naver answers HTTP 200 with ``code`` for almost everything; a duplicate
        idempotency key gets HTTP 409 with the *original* answer re-sent, so a 409 whose
        code is ``Success`` is a success. A 5xx (other than 503 maintenance) on a
        money-moving call is never trusted to mean "refused", whatever its code says.
        """
        status = response.status_code
        money_moving = operation in MONEY_MOVING
        envelope = _envelope(response)
        code = envelope.code if envelope is not None else None
        provider_code = code or (envelope.errorCode if envelope is not None else None)
        text = _provider_text(envelope)
        where = self._where(operation, attempt_id, response, provider_code)
        rule = table.get(code) if code is not None else None
        api = _OP_NAMES.get(operation, operation.value)

        if rule is not None and rule.kind is Kind.SUCCESS:
            if 200 <= status < 300 or status == 409:
                assert envelope is not None  # a known code implies a parsed envelope
                return envelope
            # "Success" under an error status contradicts itself: judge by the status.
            if money_moving and status not in (401, 403, 429, 503):
                return _unknown(f"Naver Pay {api} answered Success with HTTP {status}", where)
            rule = None
        if rule is not None:
            message = f"Naver Pay {api} answered {code}: {rule.meaning}" + (
                f" ({text})" if text else ""
            )
            if (
                money_moving
                and status >= 500
                and status != 503
                and rule.kind not in (Kind.UNAVAILABLE, Kind.CONFIGURATION)
            ):
                return _unknown(f"HTTP {status}: {message}", where)
            return Failed(_error(rule.kind, message, where, response))

        if money_moving and status == 409:
            return _unknown(
                "HTTP 409: Naver Pay has already seen this idempotency key, but the "
                "replayed answer could not be read",
                where,
            )
        if money_moving and code is not None and status not in (401, 403, 429, 503):
            return _unknown(
                f"Naver Pay {api} answered the undocumented code {code}"
                + (f" ({text})" if text else ""),
                where,
            )
        return Failed(
            classify_http_status(
                response,
                provider=self.name,
                operation=operation,
                attempt_id=attempt_id,
                provider_code=provider_code,
                message=text,
            )
        )


# -- helpers ------------------------------------------------------------------------------------


def _setting(name: str, value: object, pattern: re.Pattern[str] | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"naverpay: {name} must be a non-empty string", provider="naverpay"
        )
    if pattern is not None and not pattern.fullmatch(value):
        raise ConfigurationError(
            f"naverpay: {name} has characters Naver Pay does not issue; copy it exactly "
            "from the Naver Pay partner center",
            provider="naverpay",
        )
    return value


def _host(value: str) -> str:
    host = value.strip()
    if host.startswith("https://"):
        host = host.removeprefix("https://")
    elif "://" in host:
        raise ConfigurationError(
            "naverpay: api_host must be an https host; Naver Pay accepts HTTPS only",
            provider="naverpay",
        )
    host = host.rstrip("/")
    if not host or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]+)?", host):
        raise ConfigurationError(
            f"naverpay: api_host {value!r} is not a host name (e.g. 'apis.naver.com')",
            provider="naverpay",
        )
    return host


def _envelope(response: httpx.Response) -> Envelope | None:
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return Envelope.model_validate(data)
    except ValidationError:
        return None


def _provider_text(envelope: Envelope | None) -> str | None:
    """Naver's human message, on one line and short (it is text, never a body)."""
    if envelope is None:
        return None
    return _one_line(envelope.message or envelope.errorMessage)


def _one_line(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    text = " ".join(raw.split())
    if len(text) > _MESSAGE_MAX_CHARS:
        text = text[: _MESSAGE_MAX_CHARS - 1] + "…"
    return text or None


def _request_id(response: httpx.Response) -> str | None:
    # Naver Pay documents no request-id header; a gateway may add one of these.
    for header in ("x-request-id", "x-trace-id"):
        value = response.headers.get(header)
        if isinstance(value, str) and value:
            return value
    return None


def _error(
    kind: Kind, message: str, where: dict[str, Any], response: httpx.Response
) -> PayfallbackError:
    if kind is Kind.DECLINED:
        return Declined(message, **where)
    if kind is Kind.UNAVAILABLE:
        return ProviderUnavailable(
            message, retry_after=parse_retry_after(response.headers.get("retry-after")), **where
        )
    if kind is Kind.UNKNOWN:
        return OutcomeUnknown(f"{message}; resolve it with a history lookup", **where)
    if kind is Kind.INVALID:
        return InvalidRequest(message, **where)
    if kind is Kind.CONFIGURATION:
        return ConfigurationError(message, **where)
    raise AssertionError(f"no error for {kind}")  # pragma: no cover - Kind.SUCCESS


def _unknown(message: str, where: dict[str, Any]) -> Failed:
    return Failed(OutcomeUnknown(message, **where))


def _callback_payment_id(req: ApproveRequest, where: dict[str, Any]) -> str:
    params = req.callback_params
    result = params.get("resultCode")
    if result is None:
        raise InvalidRequest(
            "naverpay: the return URL parameters lack resultCode; pass every query "
            "parameter Naver Pay appended to returnUrl as callback_params",
            **where,
        )
    if result != "Success":
        _decline_callback(result, params, where)
    payment_id = params.get("paymentId")
    if not payment_id:
        raise InvalidRequest(
            "naverpay: resultCode is Success but the return URL has no paymentId", **where
        )
    if not PAYMENT_ID_PATTERN.fullmatch(payment_id):
        # Untrusted browser input: never put it in a request or echo it back.
        raise InvalidRequest(
            "naverpay: the paymentId in the return URL is not a Naver Pay paymentId", **where
        )
    return payment_id


def _decline_callback(result: str, params: Mapping[str, str], where: dict[str, Any]) -> NoReturn:
    rule = CALLBACK_CODES.get(result)
    meaning = rule.meaning if rule is not None else "the customer did not complete the payment"
    detail = _one_line(params.get("resultMessage"))
    raise Declined(
        f"Naver Pay payment window ended with {result}: {meaning}"
        + (f" ({detail})" if detail else ""),
        **{**where, "provider_code": result},
    )


def _status_from_history(
    rows: list[HistoryRow], payment_id: str, attempt_id: str, where: dict[str, Any]
) -> Outcome:
    """One paymentId's history rows → where the payment stands.

    ``01`` rows are approval attempts, ``03``/``04`` full/partial cancels; each row's
    ``admissionState`` (SUCCESS | FAIL) is that attempt's final result.
    """
    seen = ",".join(f"{r.admissionTypeCode}:{r.admissionState}" for r in rows) or "no history"
    payments = [r for r in rows if admission_type(r.admissionTypeCode) is AdmissionType.PAYMENT]
    cancels = [
        r
        for r in rows
        if admission_type(r.admissionTypeCode)
        in (AdmissionType.FULL_CANCEL, AdmissionType.PARTIAL_CANCEL)
    ]
    for row in payments:
        if row.merchantPayKey is not None and row.merchantPayKey != attempt_id:
            return _unknown(
                f"paymentId {payment_id} belongs to merchantPayKey {row.merchantPayKey!r}, not "
                "to this attempt; the return URL parameters came from another checkout",
                where,
            )
    approved = [r for r in payments if admission_state(r.admissionState) is AdmissionState.SUCCESS]
    if approved:
        amount = approved[0].totalPayAmount
        done = [c for c in cancels if admission_state(c.admissionState) is AdmissionState.SUCCESS]
        if amount is None or amount < 0 or any(c.totalPayAmount is None for c in done):
            return _unknown("the history shows an approval but not its amounts", where)
        cancelled = sum(c.totalPayAmount or 0 for c in done)
        fully = cancelled >= amount or any(
            admission_type(c.admissionTypeCode) is AdmissionType.FULL_CANCEL for c in done
        )
        return Status(
            state=TxnState.CANCELLED if fully else TxnState.PAID,
            provider_txn_id=payment_id,
            amount=Money(amount=amount, currency="KRW"),
            cancelled=cancelled,
            provider_status=seen,
        )
    if any(admission_state(r.admissionState) is None for r in payments):
        # A value Naver added after this module: not known to be final either way.
        return Status(state=TxnState.IN_PROGRESS, provider_txn_id=payment_id, provider_status=seen)
    if payments:  # every approval attempt FAILed: certainly no money moved
        return Status(state=TxnState.NOT_PAID, provider_txn_id=payment_id, provider_status=seen)
    if cancels:
        return _unknown("the history lists cancels but no approval row", where)
    # No approval row yet: the apply is still in flight or never arrived. Naver expires an
    # unapplied paymentId after its approval window, so a replay of the apply with the same
    # idempotency key settles it (the original answer, or TimeExpired).
    return Status(state=TxnState.IN_PROGRESS, provider_txn_id=payment_id, provider_status=seen)


def _tax_split(order: Order, amount: int) -> tuple[int, int]:
    """(taxScopeAmount, taxExScopeAmount) for cancelling ``amount`` of ``order``.

    Naver requires the two to add up to the cancel amount. A full cancel returns the
    order's exact split; a partial cancel of a mixed order splits proportionally, rounding
    the tax-free share down.
    """
    total, tax_free = order.amount.amount, order.tax_free_amount
    if tax_free == 0:
        return amount, 0
    if tax_free == total:
        return 0, amount
    if amount == total:
        return total - tax_free, tax_free
    tax_ex = amount * tax_free // total
    return amount - tax_ex, tax_ex


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def _parse_ymdt(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None
