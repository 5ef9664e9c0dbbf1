"""The Kakao Pay adapter: capabilities and pure ``build_<op>`` / ``parse_<op>`` functions.

Operation → Kakao Pay call (current API; the legacy switch changes host, path prefix,
auth header and body encoding, nothing else):

=========  ====================================  ===========================================
op         call                                  notes
=========  ====================================  ===========================================
ready      ``POST /online/v1/payment/ready``     → tid + redirect URLs per platform
approve    ``POST /online/v1/payment/approve``   tid from ready, ``pg_token`` from the return
lookup     ``POST /online/v1/payment/order``     by cid + tid only
cancel     ``POST /online/v1/payment/cancel``    full or partial, guarded by
                                                 ``cancel_available_amount``
charge     ``POST /online/v1/payment/subscription``  with the ``sid`` from the Instrument
void       —                                     Kakao Pay has no void
=========  ====================================  ===========================================
"""

from __future__ import annotations

import json
import re
from typing import Final, TypedDict, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from payfallback.errors import (
    ConfigurationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PayfallbackError,
    ProviderUnavailable,
)
from payfallback.models import Instrument, Method, Money, Order, Platform
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
)
from payfallback_kakaopay._wire import (
    ERROR_CODES,
    METHOD_RESULT_CODES,
    STATUS_STATES,
    Amount,
    ApproveAnswer,
    ApproveBody,
    CancelAnswer,
    CancelBody,
    CodeRule,
    ErrorAnswer,
    KakaoStatus,
    OrderAnswer,
    OrderBody,
    ReadyAnswer,
    ReadyBody,
    SubscriptionBody,
    Verdict,
    parse_kst,
)

__all__ = [
    "CURRENT_HOST",
    "LEGACY_HOST",
    "RESULT_PARAM",
    "TEST_CID",
    "TEST_SUBSCRIPTION_CID",
    "KakaoPay",
]

NAME: Final = "kakaopay"
CURRENT_HOST: Final = "https://open-api.kakaopay.com"
LEGACY_HOST: Final = "https://kapi.kakao.com"
_CURRENT_PREFIX: Final = "/online/v1/payment"
_LEGACY_PREFIX: Final = "/v1/payment"
_JSON: Final = "application/json"
_FORM: Final = "application/x-www-form-urlencoded;charset=utf-8"

#: Kakao Pay's documented test merchant code for single payments.
TEST_CID: Final = "TC0ONETIME"
#: Test merchant code for subscriptions; seen only in third-party code [3rd-party].
TEST_SUBSCRIPTION_CID: Final = "TCSUBSCRIP"

#: Query parameter ``ready`` appends to ``cancel_url`` (value ``cancel``) and ``fail_url``
#: (value ``fail``). Kakao Pay redirects there without saying which it was; pass every
#: query parameter of the return to ``complete_checkout`` and approve turns it into a
#: :class:`~payfallback.errors.Declined` without calling Kakao Pay.
RESULT_PARAM: Final = "payfallback_result"

_T = TypeVar("_T", bound=BaseModel)
_TXN_SEP: Final = ":"
_MESSAGE_LIMIT: Final = 200


class KakaoPay:
    """Kakao Pay online payment (developers.kakaopay.com) as a payfallback provider.

    Settings (keyword-only, so ``load_provider("kakaopay", secret_key=…)`` works):

    - ``secret_key``: the app's Secret key (``Secret key(dev)`` for tests), sent as
      ``Authorization: SECRET_KEY …``. Required unless ``legacy``.
    - ``cid``: merchant code for single payments; default the test code ``TC0ONETIME``.
    - ``subscription_cid``: merchant code for subscription charges; default
      ``TCSUBSCRIP``, a test code seen only in third-party code.
    - ``cid_secret``: the merchant code's secret, sent on every call when set.
    - ``legacy``: use the Kakao Developers generation (``kapi.kakao.com``, ``/v1/payment/…``,
      ``Authorization: KakaoAK {admin_key}``, form-encoded bodies) with ``admin_key``.

    Ids. ``partner_order_id`` is our **attempt id** (``ORDER123_1``), not the merchant's
    order id: every attempt is a new Kakao order, so a retry after a fallback elsewhere
    never collides with an earlier one. ``partner_user_id`` is ``Order.customer_ref``, or
    the merchant's order id for guests; both are stable, so approve repeats exactly what
    ready sent, as Kakao requires. For a subscription charge, ``Instrument.customer_key``
    (the user id the ``sid`` was issued to) comes first.

    Transaction ids. A single payment's ``provider_txn_id`` is Kakao's ``tid``. A
    subscription charge runs under ``subscription_cid``, and Kakao finds a tid only
    together with the cid it was made under, so its id is ``"{cid}:{tid}"``; lookup and
    cancel split it again.

    No idempotency key. Kakao Pay has no idempotency header, and ``lookup`` needs the tid
    (there is no inquiry by ``partner_order_id``), hence ``lookup_by_order_id=False``.
    For recovery that means: a ``ready`` whose answer was lost costs nothing (no tid
    reached us, so no customer was sent to pay it); an ``approve`` whose answer was lost
    is resolved by an ``order`` inquiry with the tid we already hold from ready; a lost
    ``cancel`` may be sent again with the same ``cancel_available_amount``, which Kakao
    checks against its own figure, so a second cancel is refused instead of executed
    (inferred from the field's documented meaning; the refusal's code is undocumented, so
    it surfaces as ``OutcomeUnknown`` and an inquiry settles it); a lost subscription
    ``charge`` returns a tid we never saw, so it cannot be looked up, and the Router must
    neither charge again nor reroute past it.
    """

    name: str = NAME
    capabilities: Capabilities = Capabilities(
        methods=frozenset({Method.KAKAOPAY}),
        flows=frozenset({Flow.REDIRECT, Flow.SERVER_CHARGE}),
        lookup_by_order_id=False,
        idempotency_header=None,
        idempotency_retention=None,
        partial_cancel=True,
        void_window=None,
        currencies=frozenset({"KRW"}),
    )

    def __init__(
        self,
        *,
        secret_key: SecretStr | str | None = None,
        cid: str = TEST_CID,
        subscription_cid: str = TEST_SUBSCRIPTION_CID,
        cid_secret: SecretStr | str | None = None,
        legacy: bool = False,
        admin_key: SecretStr | str | None = None,
    ) -> None:
        self._legacy = legacy
        self._secret_key = _secret(secret_key)
        self._admin_key = _secret(admin_key)
        self._cid_secret = _secret(cid_secret)
        if legacy and self._admin_key is None:
            raise ConfigurationError(
                "kakaopay: legacy=True needs admin_key (the app's Admin key from Kakao "
                "Developers, sent as 'Authorization: KakaoAK …')",
                provider=NAME,
            )
        if not legacy and self._secret_key is None:
            raise ConfigurationError(
                "kakaopay: secret_key is required (the app's Secret key from "
                "developers.kakaopay.com; use 'Secret key(dev)' with cid 'TC0ONETIME' to test)",
                provider=NAME,
            )
        for label, value in (("cid", cid), ("subscription_cid", subscription_cid)):
            if not isinstance(value, str) or not value.strip() or _TXN_SEP in value:
                raise ConfigurationError(
                    f"kakaopay: {label} must be the merchant code Kakao Pay issued "
                    f"(e.g. {TEST_CID!r}), got {value!r}",
                    provider=NAME,
                )
        self._cid = cid
        self._subscription_cid = subscription_cid
        self._host = LEGACY_HOST if legacy else CURRENT_HOST
        self._prefix = _LEGACY_PREFIX if legacy else _CURRENT_PREFIX

    def __repr__(self) -> str:
        return f"KakaoPay(cid={self._cid!r}, legacy={self._legacy})"

    # -- ready ---------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request:
        self._check_method(req.method, req.attempt_id, "ready")
        _check_krw(req.order.amount, req.attempt_id, "ready")
        body = _body(
            ReadyBody,
            req.attempt_id,
            "ready",
            cid=self._cid,
            cid_secret=self._cid_secret_value(),
            partner_order_id=req.attempt_id,
            partner_user_id=_user_id(req.order),
            item_name=req.order.name,
            quantity=_quantity(req.order),
            total_amount=req.order.amount.amount,
            tax_free_amount=req.order.tax_free_amount,
            approval_url=req.return_urls.success,
            cancel_url=_tag_url(req.return_urls.cancel, "cancel"),
            fail_url=_tag_url(req.return_urls.fail, "fail"),
        )
        return self._post("ready", body)

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        op = Operation.READY
        if response is None:
            return Failed(
                ProviderUnavailable(
                    "kakaopay: ready always calls Kakao Pay; no answer was given to parse",
                    provider=NAME,
                    operation=op.value,
                    attempt_id=req.attempt_id,
                )
            )
        if not response.is_success:
            return self._failure(op, req.attempt_id, response)
        answer = _answer(ReadyAnswer, response)
        urls: dict[Platform, str] = {}
        if answer is not None:
            for platform, url in (
                (Platform.PC, answer.next_redirect_pc_url),
                (Platform.MOBILE, answer.next_redirect_mobile_url),
                (Platform.APP, answer.next_redirect_app_url),
            ):
                if url:
                    urls[platform] = url
        if answer is None or not answer.tid or not urls:
            # Nothing was charged and no customer was sent anywhere: safe to reroute.
            return Failed(
                ProviderUnavailable(
                    "kakaopay: ready answered without a tid or a redirect URL",
                    provider=NAME,
                    operation=op.value,
                    attempt_id=req.attempt_id,
                    provider_request_id=_request_id(response),
                )
            )
        client_params = {
            key: value
            for key, value in (
                ("android_app_scheme", answer.android_app_scheme),
                ("ios_app_scheme", answer.ios_app_scheme),
            )
            if value
        }
        return Redirect(provider_txn_id=answer.tid, redirect_urls=urls, client_params=client_params)

    # -- approve -------------------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """Approve what the customer authorised; needs ``pg_token`` from the return URL.

        Raises :class:`~payfallback.errors.Declined` without sending anything when the
        customer came back through ``cancel_url`` or ``fail_url`` (``payfallback_result``
        is ``cancel`` or ``fail`` and there is no ``pg_token``): with Kakao Pay money
        moves only when the merchant approves, so nothing was charged.
        """
        params = req.callback_params
        pg_token = params.get("pg_token")
        if not pg_token:
            result = params.get(RESULT_PARAM)
            if result in ("cancel", "fail"):
                what = (
                    "the customer cancelled at Kakao Pay"
                    if result == "cancel"
                    else "Kakao Pay reported the payment failed"
                )
                raise Declined(
                    f"{what} (returned to {result}_url); nothing was charged",
                    provider=NAME,
                    operation=Operation.APPROVE.value,
                    attempt_id=req.attempt_id,
                    provider_code=f"{result}_url",
                )
            raise InvalidRequest(
                "kakaopay: approve needs the pg_token Kakao Pay appends to approval_url; pass "
                "all query parameters of the return request as callback_params",
                provider=NAME,
                operation=Operation.APPROVE.value,
                attempt_id=req.attempt_id,
            )
        if not req.provider_txn_id:
            raise InvalidRequest(
                "kakaopay: approve needs the tid that ready returned",
                provider=NAME,
                operation=Operation.APPROVE.value,
                attempt_id=req.attempt_id,
            )
        _check_krw(req.order.amount, req.attempt_id, "approve")
        cid, tid = self._split_txn(req.provider_txn_id)
        body = _body(
            ApproveBody,
            req.attempt_id,
            "approve",
            cid=cid,
            cid_secret=self._cid_secret_value(),
            tid=tid,
            partner_order_id=req.attempt_id,
            partner_user_id=_user_id(req.order),
            pg_token=pg_token,
            total_amount=req.order.amount.amount,
        )
        return self._post("approve", body)

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        expected = self._split_txn(req.provider_txn_id)[1] if req.provider_txn_id else None
        return self._parse_paid(
            Operation.APPROVE, req.attempt_id, req.order, response, expected_tid=expected
        )

    # -- charge --------------------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """Charge a subscription: ``Instrument.billing_key`` holds the Kakao ``sid``."""
        instrument = req.instrument
        if instrument.provider != NAME:
            raise InvalidRequest(
                f"kakaopay: the instrument belongs to {instrument.provider!r}; a Kakao Pay "
                "charge needs a Kakao Pay sid",
                provider=NAME,
                operation=Operation.CHARGE.value,
                attempt_id=req.attempt_id,
            )
        _check_krw(req.order.amount, req.attempt_id, "charge")
        body = _body(
            SubscriptionBody,
            req.attempt_id,
            "charge",
            cid=self._subscription_cid,
            cid_secret=self._cid_secret_value(),
            sid=instrument.billing_key.get_secret_value(),
            partner_order_id=req.attempt_id,
            partner_user_id=_user_id(req.order, instrument),
            item_name=req.order.name,
            quantity=_quantity(req.order),
            total_amount=req.order.amount.amount,
            tax_free_amount=req.order.tax_free_amount,
        )
        return self._post("subscription", body)

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        sid = req.instrument.billing_key.get_secret_value()
        return self._parse_paid(Operation.CHARGE, req.attempt_id, req.order, response, hide=(sid,))

    # -- lookup --------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        if not req.provider_txn_id:
            raise InvalidRequest(
                "kakaopay: Kakao Pay looks payments up by tid only; there is no inquiry by "
                "partner_order_id",
                provider=NAME,
                operation=Operation.LOOKUP.value,
                attempt_id=req.attempt_id,
            )
        cid, tid = self._split_txn(req.provider_txn_id)
        body = _body(
            OrderBody,
            req.attempt_id,
            "lookup",
            cid=cid,
            cid_secret=self._cid_secret_value(),
            tid=tid,
        )
        return self._post("order", body)

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        op = Operation.LOOKUP
        if not response.is_success:
            return self._failure(op, req.attempt_id, response)
        answer = _answer(OrderAnswer, response)
        if answer is None or not answer.status:
            return Failed(
                ProviderUnavailable(
                    "kakaopay: order answered without a status",
                    **_where(op, req.attempt_id, response),
                )
            )
        try:
            status = KakaoStatus(answer.status)
        except ValueError:
            # Neither "paid" nor "not paid" can be concluded from a value we do not know.
            return Failed(
                OutcomeUnknown(
                    f"kakaopay: undocumented order status {answer.status!r}; check the "
                    "payment in the Kakao Pay partner admin",
                    **_where(op, req.attempt_id, response, answer.status),
                )
            )
        state = STATUS_STATES[status]
        total = _total(answer.amount)
        cancelled = _total(answer.canceled_amount)
        if state in (TxnState.PAID, TxnState.CANCELLED) and total is None:
            return Failed(
                ProviderUnavailable(
                    f"kakaopay: order answered {status.value} without the amount",
                    **_where(op, req.attempt_id, response, status.value),
                )
            )
        if state is TxnState.CANCELLED and not cancelled:
            cancelled = total
        return Status(
            state=state,
            provider_txn_id=req.provider_txn_id,
            amount=None if total is None else Money(amount=total, currency="KRW"),
            cancelled=cancelled or 0,
            provider_status=status.value,
        )

    # -- cancel --------------------------------------------------------------------------

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """Full or partial cancel; ``expected_remaining`` travels as the double-cancel guard."""
        op = Operation.CANCEL.value
        _check_krw(req.amount, req.attempt_id, "cancel")
        amount = req.amount.amount
        if amount <= 0:
            raise InvalidRequest(
                "kakaopay: a cancel amount must be greater than zero",
                provider=NAME,
                operation=op,
                attempt_id=req.attempt_id,
            )
        if amount > req.expected_remaining:
            raise InvalidRequest(
                f"kakaopay: cannot cancel {amount}: only {req.expected_remaining} is still "
                "cancellable on this payment",
                provider=NAME,
                operation=op,
                attempt_id=req.attempt_id,
            )
        cid, tid = self._split_txn(req.provider_txn_id)
        body = _body(
            CancelBody,
            req.attempt_id,
            "cancel",
            cid=cid,
            cid_secret=self._cid_secret_value(),
            tid=tid,
            cancel_amount=amount,
            cancel_tax_free_amount=_cancel_tax_free(req.order, amount),
            cancel_available_amount=req.expected_remaining,
            payload=_clip(req.reason) or None,
        )
        return self._post("cancel", body)

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        op = Operation.CANCEL
        if not response.is_success:
            return self._failure(op, req.attempt_id, response)
        answer = _answer(CancelAnswer, response)
        done = _total(answer.approved_cancel_amount) if answer is not None else None
        if answer is None or not answer.tid or not done:
            return Failed(
                OutcomeUnknown(
                    "kakaopay: cancel answered without the tid or the cancelled amount",
                    **_where(op, req.attempt_id, response),
                )
            )
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=done, currency="KRW"),
            remaining=_total(answer.cancel_available_amount),
        )

    # -- void ----------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        raise NotImplementedError("kakaopay: void is not supported")

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError("kakaopay: void is not supported")

    # -- internals -----------------------------------------------------------------------

    def _post(self, path: str, body: BaseModel) -> httpx.Request:
        fields = body.model_dump(exclude_none=True)
        if self._legacy:
            assert self._admin_key is not None  # checked in __init__
            auth = f"KakaoAK {self._admin_key.get_secret_value()}"
            content = urlencode({k: str(v) for k, v in fields.items()}).encode("ascii")
            content_type = _FORM
        else:
            assert self._secret_key is not None  # checked in __init__
            auth = f"SECRET_KEY {self._secret_key.get_secret_value()}"
            content = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
            content_type = _JSON
        return httpx.Request(
            "POST",
            f"{self._host}{self._prefix}/{path}",
            headers={"Authorization": auth, "Content-Type": content_type},
            content=content,
        )

    def _hide_secrets(self, text: str | None, extra: tuple[str, ...]) -> str | None:
        """Provider wording goes into messages; a key it echoes back must not."""
        if not text:
            return text
        secrets = [
            s.get_secret_value() for s in (self._secret_key, self._admin_key, self._cid_secret) if s
        ]
        for secret in (*secrets, *extra):
            if secret:
                text = text.replace(secret, "**********")
        return text

    def _cid_secret_value(self) -> str | None:
        return None if self._cid_secret is None else self._cid_secret.get_secret_value()

    def _split_txn(self, txn_id: str) -> tuple[str, str]:
        """``tid`` → (cid, tid); ``"{cid}:{tid}"`` (subscription charges) → its parts."""
        cid, sep, tid = txn_id.partition(_TXN_SEP)
        return (cid, tid) if sep else (self._cid, txn_id)

    def _join_txn(self, cid: str | None, tid: str) -> str:
        cid = cid or self._subscription_cid
        return tid if cid == self._cid else f"{cid}{_TXN_SEP}{tid}"

    def _check_method(self, method: Method, attempt_id: str, op: str) -> None:
        if method not in self.capabilities.methods:
            raise InvalidRequest(
                f"kakaopay: {op} supports only method 'kakaopay', not {method.value!r}",
                provider=NAME,
                operation=op,
                attempt_id=attempt_id,
            )

    def _parse_paid(
        self,
        op: Operation,
        attempt_id: str,
        order: Order,
        response: httpx.Response,
        *,
        expected_tid: str | None = None,
        hide: tuple[str, ...] = (),
    ) -> Outcome:
        """Approve and subscription answers share a shape; both must name tid and amount."""
        if not response.is_success:
            return self._failure(op, attempt_id, response, hide=hide)
        where = _where(op, attempt_id, response)
        answer = _answer(ApproveAnswer, response)
        total = _total(answer.amount) if answer is not None else None
        if answer is None or not answer.tid or not total:
            return Failed(
                OutcomeUnknown(
                    f"kakaopay: {op.value} answered success without the tid or the amount",
                    **where,
                )
            )
        if expected_tid is not None and answer.tid != expected_tid:
            return Failed(
                OutcomeUnknown(
                    f"kakaopay: {op.value} answered for another tid than the one approved",
                    **where,
                )
            )
        if op is Operation.CHARGE:
            txn_id = self._join_txn(answer.cid or self._subscription_cid, answer.tid)
        else:
            txn_id = self._join_txn(answer.cid or self._cid, answer.tid)
        return Approved(
            provider_txn_id=txn_id,
            amount=Money(amount=total, currency=order.amount.currency),
            approved_at=parse_kst(answer.approved_at),
        )

    def _failure(
        self,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
        *,
        hide: tuple[str, ...] = (),
    ) -> Failed:
        """Classify a non-2xx answer by the code table, then by HTTP status."""
        body = _answer(ErrorAnswer, response)
        code = body.code_text if body is not None else None
        method_code = body.method_code if body is not None else None
        text = self._hide_secrets(_provider_text(body), hide)
        provider_code = f"{code}/{method_code}" if code and method_code else code or method_code
        where = _where(op, attempt_id, response, provider_code)
        money = op in MONEY_MOVING
        if response.status_code == 401:
            return Failed(
                ConfigurationError(
                    "kakaopay: Kakao Pay rejected the credentials (HTTP 401); check "
                    + ("admin_key" if self._legacy else "secret_key")
                    + " and cid"
                    + _suffix(text),
                    **where,
                )
            )
        rule: CodeRule | None = None
        if method_code is not None:
            rule = METHOD_RESULT_CODES.get(method_code)
        if rule is None and code is not None:
            rule = ERROR_CODES.get(code)
        if rule is not None:
            verdict = rule.money_moving if money else rule.read_only
            return Failed(_error(verdict, f"kakaopay: {rule.meaning}{_suffix(text)}", where))
        if money and (code is not None or method_code is not None):
            return Failed(
                OutcomeUnknown(
                    f"kakaopay: undocumented error code on {op.value}; it may have taken effect"
                    + _suffix(text),
                    **where,
                )
            )
        error = classify_http_status(
            response,
            provider=NAME,
            operation=op,
            attempt_id=attempt_id,
            provider_code=provider_code,
            message=_clip(text) if text else None,
        )
        if money and isinstance(error, InvalidRequest):
            # A 4xx without a Kakao error body did not come from the payment logic we know;
            # it cannot prove that nothing moved.
            error = OutcomeUnknown(f"kakaopay: HTTP {response.status_code} on {op.value}", **where)
        return Failed(error)


# -- helpers ---------------------------------------------------------------------------------


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None:
        return None
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    return secret if secret.get_secret_value().strip() else None


def _body(model: type[_T], attempt_id: str, op: str, **fields: object) -> _T:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        # Field names and limits only: input values may carry a sid or a customer id.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise InvalidRequest(
            f"kakaopay: the {op} request would be refused by Kakao Pay ({problems})",
            provider=NAME,
            operation=op,
            attempt_id=attempt_id,
        ) from None


def _answer(model: type[_T], response: httpx.Response) -> _T | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _check_krw(money: Money, attempt_id: str, op: str) -> None:
    if money.currency != "KRW":
        raise InvalidRequest(
            f"kakaopay: Kakao Pay takes KRW only, not {money.currency}",
            provider=NAME,
            operation=op,
            attempt_id=attempt_id,
        )


def _user_id(order: Order, instrument: Instrument | None = None) -> str:
    """``partner_user_id``: stable per order, so approve repeats what ready sent."""
    if instrument is not None and instrument.customer_key:
        return instrument.customer_key
    return order.customer_ref or order.order_id


def _quantity(order: Order) -> int:
    return sum(item.quantity for item in order.items) or 1


def _cancel_tax_free(order: Order, amount: int) -> int:
    """Tax-free part of a cancel: all of it on a full cancel, pro rata (floored) otherwise."""
    tax_free, total = order.tax_free_amount, order.amount.amount
    if tax_free == 0:
        return 0
    if amount >= total:
        return tax_free
    return tax_free * amount // total


def _tag_url(url: str, result: str) -> str:
    """Append ``payfallback_result=<result>`` keeping the URL's own encoding untouched."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{RESULT_PARAM}={result}"))


class _Where(TypedDict):
    provider: str
    operation: str
    attempt_id: str
    provider_code: str | None
    provider_request_id: str | None


def _where(
    op: Operation, attempt_id: str, response: httpx.Response, code: str | None = None
) -> _Where:
    return _Where(
        provider=NAME,
        operation=op.value,
        attempt_id=attempt_id,
        provider_code=code,
        provider_request_id=_request_id(response),
    )


def _total(amount: Amount | None) -> int | None:
    """An amount object's ``total``, or None when absent or nonsensical (negative)."""
    if amount is None or amount.total is None or amount.total < 0:
        return None
    return amount.total


def _error(verdict: Verdict, message: str, where: _Where) -> PayfallbackError:
    cls: type[PayfallbackError] = {
        Verdict.DECLINED: Declined,
        Verdict.UNAVAILABLE: ProviderUnavailable,
        Verdict.UNKNOWN: OutcomeUnknown,
        Verdict.INVALID: InvalidRequest,
        Verdict.CONFIG: ConfigurationError,
    }[verdict]
    return cls(message, **where)


def _provider_text(body: ErrorAnswer | None) -> str | None:
    if body is None:
        return None
    parts = [p for p in (body.message_text, body.method_message) if p]
    return " / ".join(parts) or None


_SPACE = re.compile(r"\s+")


def _clip(text: str | None) -> str:
    """Provider wording for a message: one line, bounded."""
    if not text:
        return ""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 1] + "…"


def _suffix(text: str | None) -> str:
    clipped = _clip(text)
    return f" ({clipped})" if clipped else ""


def _request_id(response: httpx.Response) -> str | None:
    # Kakao Pay documents no request-id header; a generic one is used when present.
    value = response.headers.get("x-request-id")
    return str(value) if value else None
