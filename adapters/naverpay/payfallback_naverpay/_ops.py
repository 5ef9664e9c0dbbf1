"""The Naver Pay adapter: what it can do, and a pure build/parse pair per operation.

Flow (REDIRECT, but opened client-side):

1. ``ready`` sends nothing. :meth:`NaverPay.parse_ready` returns a :class:`Redirect` with no
   URL and ``client_params`` for Naver's JS SDK (``Naver.Pay.create({mode, clientId,
   chainId})`` then ``oPay.open({merchantPayKey, productName, …, returnUrl})``).
2. Naver sends the customer to ``returnUrl?resultCode=Success&paymentId=…`` (or another
   ``resultCode`` and no ``paymentId`` when the customer gave up).
3. ``approve`` is *apply*: ``POST …/v2.2/apply/payment`` with that ``paymentId``. The
   approval is this checkout's only when Naver echoes ``merchantPayKey`` = our attempt id.
4. ``lookup`` reads the history of a ``paymentId``; ``cancel`` is ``POST …/v1/cancel``
   guarded by ``doCompareRest``/``expectedRestAmount``.

Every error is made by the instance's :class:`~payfallback.adapter.AdapterKit`. Naver's
APIs give one code different meanings (``Fail`` refuses a payment on apply but says
nothing on cancel), so each API is classified against its own table: the kit of an
operation is the instance's kit with that API's table (:meth:`NaverPay.kit_for`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Final

import httpx
from pydantic import SecretStr, ValidationError

from payfallback.adapter import AdapterKit, CodeRule, Secrets, Verdict, read_object
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
from payfallback_naverpay._receipt import paid_receipt, refund_receipt
from payfallback_naverpay._wire import (
    APPLY_CODES,
    CALLBACK_CODES,
    CANCEL_CODES,
    HISTORY_CODES,
    PAYMENT_ID_PATTERN,
    SUCCESS,
    AdmissionState,
    AdmissionType,
    ApplyBody,
    ApplyForm,
    CancelBody,
    CancelForm,
    Envelope,
    HistoryBody,
    HistoryQuery,
    HistoryRow,
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
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")
_PATH_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: Naver's HTTP status page: 401 "the authentication key is wrong". The gateway turns the
#: call away before Naver Pay sees it, so no code in such an answer can mean "processed".
_AUTH_REFUSED: Final = frozenset({401, 403})


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
    # https://docs.pay.naver.com/docs/common/idempotency: "API 중복 요청 발생 시, HTTP
    # Status 409 conflict 와 함께 이전 요청에서 전달되었던 응답이 재전달됩니다" — a same-key
    # replay answers with the first request's answer (Proof.REPLAY).
    idempotency_header=IDEMPOTENCY_HEADER,
    # Naver does not say how long it keeps keys.
    idempotency_retention=None,
    idempotency_key_max_length=64,
    partial_cancel=True,
    void_window=None,
    currencies=frozenset({"KRW"}),
    # Naver's caution for apply: approval can take long, allow 60 s before giving up.
    read_timeout=60.0,
    # No settle window is documented: nothing says how long after an apply reached Naver
    # it can still commit, and the history never answers "not found" for a paymentId the
    # customer authenticated (an empty history is IN_PROGRESS). See the package docstring.
    settle_window=None,
    # A FAIL approval row tied to our merchantPayKey is final: the customer cannot pay
    # again on that paymentId (a new payment window issues a new paymentId), and our only
    # re-apply uses the same idempotency key, which replays the first answer.
    failed_record_is_final=True,
)

_TABLES: Final[Mapping[Operation, Mapping[str, CodeRule]]] = {
    Operation.APPROVE: APPLY_CODES,
    Operation.CANCEL: CANCEL_CODES,
    Operation.LOOKUP: HISTORY_CODES,
}
_API_NAMES: Final = {
    Operation.APPROVE: "apply",
    Operation.CANCEL: "cancel",
    Operation.LOOKUP: "history inquiry",
}


def _kit(secrets: Secrets, table: Mapping[str, CodeRule]) -> AdapterKit:
    return AdapterKit(
        provider="naverpay",
        label="Naver Pay",
        codes=table,
        # Naver Pay documents no request-id header; a gateway may add one of these.
        request_id_headers=("x-request-id", "x-trace-id"),
        # Each code's meaning follows Naver's own message.
        hints={code: rule.meaning for code, rule in table.items()},
        secrets=secrets,
    )


class NaverPay:
    """Naver Pay 결제형 one-time payments (approve, history lookup, full/partial cancel).

    Settings are keyword-only so ``load_provider("naverpay", client_id=…, …)`` works:

    - ``client_id``, ``client_secret`` (a :class:`~pydantic.SecretStr`; a ``str`` is
      wrapped), ``chain_id``: the ``X-Naver-Client-Id`` / ``-Secret`` and
      ``X-NaverPay-Chain-Id`` credentials. Only the client secret is secret (it is sent
      as the ``X-Naver-Client-Secret`` value as it is); the client id is handed to the
      browser SDK, and neither the chain id nor the idempotency key is secret.
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
        #: Scrubbed, by value, from every error, event, log line and journal row. The
        #: ``X-Naver-Client-Secret`` header value is the secret itself.
        self.secrets = Secrets(secret)
        self._kits = {op: _kit(self.secrets, table) for op, table in _TABLES.items()}
        #: Makes every error; apply's table (cancel and history use :meth:`kit_for`).
        self.kit = self._kits[Operation.APPROVE]
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

    def kit_for(self, operation: Operation) -> AdapterKit:
        """The kit that classifies ``operation``'s answers: :attr:`kit` with that API's
        code table (the same secrets, name and request-id headers)."""
        return self._kits.get(operation, self.kit)

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
        op, aid = Operation.READY, req.attempt_id
        self.kit.check_method(req.method, self.capabilities, op, aid)
        self.kit.check_currency(req.order.amount, self.capabilities, op, aid)
        if len(aid.encode()) > _MERCHANT_PAY_KEY_MAX_BYTES:
            raise self.kit.invalid(
                f"attempt id is longer than the {_MERCHANT_PAY_KEY_MAX_BYTES} bytes Naver Pay "
                "allows for merchantPayKey; shorten the order id",
                op,
                aid,
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
            # Our attempt id: Naver echoes it on apply and in the history, which is what
            # ties a paymentId to this checkout (see parse_approve and parse_lookup).
            "merchantPayKey": aid,
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
        op, aid = Operation.APPROVE, req.attempt_id
        self.kit.check_method(req.method, self.capabilities, op, aid)
        self.kit.check_currency(req.order.amount, self.capabilities, op, aid)
        payment_id = self._callback_payment_id(req)
        self._check_idempotency_key(req.idempotency_key, op, aid)
        form = self.kit.body(ApplyForm, op, aid, paymentId=payment_id)
        return httpx.Request(
            "POST",
            f"{self.base_url}/v2.2/apply/payment",
            headers=self._headers(
                "application/x-www-form-urlencoded", idempotency_key=req.idempotency_key
            ),
            data=form.form(),
        )

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        op, aid = Operation.APPROVE, req.attempt_id
        answer = self._answer(response, op, aid)
        if isinstance(answer, Failed):
            return answer

        def unknown(text: str) -> Failed:
            return Failed(self.kit.unknown(text, op, aid, response, SUCCESS))

        try:
            body = ApplyBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return unknown("apply said Success but its body is unreadable")
        detail = body.detail
        if detail is None:
            return unknown("apply said Success but did not say the approved amount")
        payment_id = detail.paymentId or body.paymentId
        if not payment_id or payment_id != req.callback_params.get("paymentId"):
            return unknown("apply said Success for a different or missing paymentId")
        if detail.merchantPayKey is None:
            # Without merchantPayKey nothing ties this paymentId to this checkout: the
            # same paymentId could be recorded as paying two orders of the same amount.
            # The Router looks the paymentId up; the history row's merchantPayKey decides.
            return unknown(
                "apply said Success without merchantPayKey, so the approval is not tied to "
                "this checkout; it is verified by a history lookup of the paymentId"
            )
        if detail.merchantPayKey != aid:
            # The paymentId in the return URL came from another checkout (a replayed or
            # swapped URL): the money that moved is that checkout's, never this one's.
            other = self.kit.clean(detail.merchantPayKey, limit=64)
            return Failed(
                self.kit.invalid(
                    f"the approved paymentId belongs to another checkout (merchantPayKey "
                    f"{other}), not to this attempt; it is not recorded here — check where "
                    "the return URL parameters came from",
                    op,
                    aid,
                    response,
                )
            )
        if detail.admissionState is not None and (
            admission_state(detail.admissionState) is not AdmissionState.SUCCESS
        ):
            return unknown("apply said Success but its admissionState is not SUCCESS")
        if detail.totalPayAmount is None:
            return unknown("apply said Success but did not say the approved amount")
        if detail.totalPayAmount < 0:
            return unknown("apply reported a negative approved amount")
        scrub = self.kit.secrets.scrub
        return Approved(
            provider_txn_id=payment_id,
            amount=Money(amount=detail.totalPayAmount, currency="KRW"),
            approved_at=_parse_ymdt(detail.admissionYmdt),
            provider_status=AdmissionState.SUCCESS.value,
            receipt=paid_receipt(detail.model_dump(), scrub),
            answer=self.kit.secrets.scrub_answer(answer.model_dump(exclude_unset=True)),
        )

    def _callback_payment_id(self, req: ApproveRequest) -> str:
        op, aid = Operation.APPROVE, req.attempt_id
        params = req.callback_params
        result = params.get("resultCode")
        if result is None:
            raise self.kit.invalid(
                "naverpay: the return URL parameters lack resultCode; pass every query "
                "parameter Naver Pay appended to returnUrl as callback_params",
                op,
                aid,
            )
        if result != SUCCESS:
            raise self._callback_declined(result, params, aid)
        payment_id = params.get("paymentId")
        if not payment_id:
            raise self.kit.invalid(
                "naverpay: resultCode is Success but the return URL has no paymentId", op, aid
            )
        if not PAYMENT_ID_PATTERN.fullmatch(payment_id):
            # Untrusted browser input: never put it in a request or echo it back.
            raise self.kit.invalid(
                "naverpay: the paymentId in the return URL is not a Naver Pay paymentId",
                op,
                aid,
            )
        return payment_id

    def _callback_declined(
        self, result: str, params: Mapping[str, str], attempt_id: str
    ) -> PayfallbackError:
        rule = CALLBACK_CODES.get(result)
        meaning = rule.meaning if rule is not None else "the customer did not complete the payment"
        said = self.kit.clean(params.get("resultMessage"))
        error = self.kit.error(
            Verdict.DECLINED,
            Operation.APPROVE,
            attempt_id,
            code=result,
            text=f"the Naver Pay payment window ended without a payment: {meaning}"
            + (f" ({said})" if said else ""),
        )
        # Naver's own words for the customer, as the window reported them.
        error.user_message = said
        return error

    # -- lookup (history) --------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """``POST …/v2.2/list/history/{paymentId}`` (JSON paging body).

        Needs the paymentId: Naver Pay's history cannot be searched by merchantPayKey
        (hence ``lookup_by_order_id=False``). The paymentId is known before apply is sent:
        it is the return URL's ``paymentId`` (``callback_txn_id_param``).
        """
        op, aid = Operation.LOOKUP, req.attempt_id
        payment_id = req.provider_txn_id
        if not payment_id:
            raise self.kit.invalid(
                "naverpay: lookup needs the paymentId (Naver Pay's history cannot be searched "
                "by merchantPayKey); it is the paymentId of the return URL",
                op,
                aid,
            )
        if not PAYMENT_ID_PATTERN.fullmatch(payment_id):
            raise self.kit.invalid(
                "naverpay: the provider transaction id is not a paymentId", op, aid
            )
        query = self.kit.body(
            HistoryQuery, op, aid, pageNumber=1, rowsPerPage=HISTORY_ROWS_PER_PAGE
        )
        return httpx.Request(
            "POST",
            f"{self.base_url}/v2.2/list/history/{payment_id}",
            headers=self._headers("application/json"),
            json=query.model_dump(),
        )

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        op, aid = Operation.LOOKUP, req.attempt_id
        answer = self._answer(response, op, aid)
        if isinstance(answer, Failed):
            return answer
        try:
            body = HistoryBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return Failed(
                self.kit.unreadable(
                    "the history answer is unreadable; ask again", op, aid, response
                )
            )
        payment_id = req.provider_txn_id or ""
        rows = [r for r in body.rows or () if r.paymentId in (None, payment_id)]
        return self._status_from_history(rows, payment_id, aid, response)

    def _status_from_history(
        self, rows: list[HistoryRow], payment_id: str, attempt_id: str, response: httpx.Response
    ) -> Outcome:
        """One paymentId's history rows → where the payment stands, for this attempt.

        ``01`` rows are approval attempts, ``03``/``04`` full/partial cancels; each row's
        ``admissionState`` (SUCCESS | FAIL) is that attempt's final result. Only rows whose
        ``merchantPayKey`` is our attempt id speak for this checkout: PAID and NOT_PAID
        both need them.
        """
        op = Operation.LOOKUP
        seen = ",".join(_row_label(r) for r in rows) or "no history"
        if any(r.merchantPayKey is not None and r.merchantPayKey != attempt_id for r in rows):
            return Failed(
                self.kit.invalid(
                    f"paymentId {payment_id} belongs to another checkout (its merchantPayKey is "
                    "not this attempt's); the return URL parameters came from elsewhere",
                    op,
                    attempt_id,
                    response,
                )
            )
        payments = [r for r in rows if admission_type(r.admissionTypeCode) is AdmissionType.PAYMENT]
        cancels = [
            r
            for r in rows
            if admission_type(r.admissionTypeCode)
            in (AdmissionType.FULL_CANCEL, AdmissionType.PARTIAL_CANCEL)
        ]
        tied = [r for r in payments if r.merchantPayKey == attempt_id]
        approved = [r for r in tied if admission_state(r.admissionState) is AdmissionState.SUCCESS]
        if approved:
            amount = approved[0].totalPayAmount
            done = [
                c for c in cancels if admission_state(c.admissionState) is AdmissionState.SUCCESS
            ]
            if (
                amount is None
                or amount < 0
                or any(c.totalPayAmount is None or c.totalPayAmount < 0 for c in done)
            ):
                return Failed(
                    self.kit.unreadable(
                        "the history shows an approval but not its amounts; ask again",
                        op,
                        attempt_id,
                        response,
                    )
                )
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
        if len(tied) < len(payments):
            # Approval rows without merchantPayKey: whether they are this checkout's is not
            # proven, so neither "paid" nor "not paid" is — the attempt stays unknown.
            return Failed(
                self.kit.unreadable(
                    f"the history of paymentId {payment_id} has approval rows without "
                    "merchantPayKey, so it is not tied to this checkout: neither paid nor "
                    "not paid is proven; ask again",
                    op,
                    attempt_id,
                    response,
                )
            )
        if any(admission_state(r.admissionState) is None for r in tied):
            # A value Naver added after this module: not known to be final either way.
            return Status(
                state=TxnState.IN_PROGRESS, provider_txn_id=payment_id, provider_status=seen
            )
        if tied:  # every approval attempt of this checkout FAILed: no money moved
            return Status(state=TxnState.NOT_PAID, provider_txn_id=payment_id, provider_status=seen)
        if cancels:
            return Failed(
                self.kit.unreadable(
                    "the history lists cancels but no approval row; ask again",
                    op,
                    attempt_id,
                    response,
                )
            )
        # No approval row yet: the apply is still in flight or never arrived. Not "not
        # found": the customer authenticated this paymentId, and a replay of the apply with
        # the same idempotency key settles it (the original answer, or TimeExpired).
        return Status(state=TxnState.IN_PROGRESS, provider_txn_id=payment_id, provider_status=seen)

    # -- cancel ------------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST …/v1/cancel``, form-encoded, with ``doCompareRest=1``.

        ``expectedRestAmount`` is what must remain *after* this cancel
        (``req.expected_remaining - req.amount``): Naver refuses the cancel
        (``RestAmountDiff``) when its balance differs, so a replay cannot cancel twice.
        ``taxExScopeAmount`` (면세 대상 금액) is ``req.tax_free_amount`` and
        ``taxScopeAmount`` (과세 대상 금액) the rest of the cancel amount; Naver requires
        the two to add up to ``cancelAmount``.
        """
        op, aid = Operation.CANCEL, req.attempt_id
        self.kit.check_cancel(req, self.capabilities)
        if not PAYMENT_ID_PATTERN.fullmatch(req.provider_txn_id):
            raise self.kit.invalid(
                "naverpay: the provider transaction id is not a paymentId", op, aid
            )
        reason = _truncate_utf8(" ".join(req.reason.split()), _CANCEL_REASON_MAX_BYTES)
        if not reason:
            raise self.kit.invalid("Naver Pay requires a cancel reason; pass reason=...", op, aid)
        self._check_idempotency_key(req.idempotency_key, op, aid)
        amount = req.amount.amount
        form = self.kit.body(
            CancelForm,
            op,
            aid,
            paymentId=req.provider_txn_id,
            cancelAmount=amount,
            cancelReason=reason,
            # Merchant admin: the docs say to use it whenever the requester is unclear.
            cancelRequester="2",
            taxScopeAmount=amount - req.tax_free_amount,
            taxExScopeAmount=req.tax_free_amount,
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
        op, aid = Operation.CANCEL, req.attempt_id
        answer = self._answer(response, op, aid)
        if isinstance(answer, Failed):
            return answer

        def unknown(text: str) -> Failed:
            return Failed(self.kit.unknown(text, op, aid, response, SUCCESS))

        try:
            body = CancelBody.model_validate(answer.body if answer.body is not None else {})
        except ValidationError:
            return unknown("cancel said Success but its body is unreadable")
        if body.paymentId is not None and body.paymentId != req.provider_txn_id:
            return unknown("cancel said Success for a different paymentId")
        cancelled = body.cancelled_amount()
        if cancelled is None and body.totalRestAmount is None:
            return unknown("cancel said Success but reported no amounts")
        amount = cancelled if cancelled is not None else req.amount.amount
        if amount < 0 or (body.totalRestAmount is not None and body.totalRestAmount < 0):
            return unknown("cancel reported a negative amount")
        scrub = self.kit.secrets.scrub
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=amount, currency="KRW"),
            remaining=body.totalRestAmount,
            receipt=refund_receipt(body.model_dump(), _parse_ymdt(body.cancelYmdt), scrub),
            answer=self.kit.secrets.scrub_answer(answer.model_dump(exclude_unset=True)),
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

    def _check_idempotency_key(self, key: str, operation: Operation, attempt_id: str) -> None:
        limit = self.capabilities.idempotency_key_max_length
        if not key or len(key) > limit or not _HEADER_SAFE.fullmatch(key):
            raise self.kit.invalid(
                f"the idempotency key must be 1-{limit} printable ASCII characters "
                "(Naver Pay recommends A-Z a-z 0-9 _ -)",
                operation,
                attempt_id,
            )

    def _answer(
        self, response: httpx.Response, operation: Operation, attempt_id: str
    ) -> Envelope | Failed:
        """The envelope of a success answer, or the failure the kit classifies.

        Naver's quirks, kept here; everything else is :meth:`AdapterKit.classify`:

        - Naver answers HTTP 200 with ``code`` for almost everything, and a duplicate
          idempotency key gets HTTP 409 with the *original* answer re-sent, so a 409 whose
          code is ``Success`` is a success (and a 409 we cannot read is unknown).
        - A 5xx (other than 503 maintenance) on a money-moving call is never trusted to
          mean "refused", whatever documented code it carries.
        - The API gateway turns a bad key away (401) in its own shape, ``{errorCode,
          errorMessage}``: the HTTP status decides, and ``errorCode`` is kept as context.
        """
        kit = self.kit_for(operation)
        status = response.status_code
        money_moving = operation in MONEY_MOVING
        envelope = _envelope(response)
        code = envelope.code if envelope is not None else None
        message = (envelope.message or envelope.errorMessage) if envelope is not None else None
        api = _API_NAMES.get(operation, operation.value)

        if code == SUCCESS:
            if 200 <= status < 300 or status == 409:
                assert envelope is not None  # a code implies a parsed envelope
                return envelope
            # "Success" under an error status contradicts itself: the status decides.
            if money_moving and status not in _AUTH_REFUSED | {429, 503}:
                return Failed(
                    kit.unknown(
                        f"Naver Pay {api} answered Success with HTTP {status}; it may have "
                        "been processed — look it up",
                        operation,
                        attempt_id,
                        response,
                        code,
                    )
                )
            return Failed(_by_status(kit, operation, attempt_id, response, code, message))
        if code is None:
            if money_moving and status == 409:
                return Failed(
                    kit.unknown(
                        "HTTP 409: Naver Pay has already seen this idempotency key, but the "
                        "replayed answer could not be read; look it up",
                        operation,
                        attempt_id,
                        response,
                    )
                )
            gateway_code = envelope.errorCode if envelope is not None else None
            return Failed(_by_status(kit, operation, attempt_id, response, gateway_code, message))
        verdict = kit.verdict(code, operation)
        if verdict is None and money_moving and status in _AUTH_REFUSED:
            return Failed(_by_status(kit, operation, attempt_id, response, code, message))
        if (
            verdict is not None
            and money_moving
            and status >= 500
            and status != 503
            and verdict not in (Verdict.UNAVAILABLE, Verdict.CONFIGURATION)
        ):
            return Failed(
                kit.unknown(
                    f"Naver Pay {api} answered HTTP {status} with {kit.clean(code, limit=64)}: "
                    "a server error is never taken as a refusal; it may have been processed — "
                    "look it up",
                    operation,
                    attempt_id,
                    response,
                    code,
                )
            )
        return Failed(kit.classify(operation, attempt_id, response, code=code, message=message))


# -- helpers ------------------------------------------------------------------------------------


def _by_status(
    kit: AdapterKit,
    operation: Operation,
    attempt_id: str,
    response: httpx.Response,
    code: str | None,
    message: str | None,
) -> PayfallbackError:
    """The kit's HTTP-status classification, keeping the code Naver (or its gateway) sent
    as context only."""
    error = kit.classify(operation, attempt_id, response, code=None, message=message)
    if code:
        error.provider_code = kit.clean(code, limit=64)
    return error


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
    data = read_object(response)
    if data is None:
        return None
    try:
        return Envelope.model_validate(data)
    except ValidationError:
        return None


def _row_label(row: HistoryRow) -> str:
    """``01:SUCCESS``: a history row as Naver's known values only (never echoed text)."""
    kind = admission_type(row.admissionTypeCode)
    state = admission_state(row.admissionState)
    return f"{kind.value if kind else '?'}:{state.value if state else '?'}"


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def _parse_ymdt(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None
