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

Every error is made by the instance's :class:`~payfallback.adapter.AdapterKit`; what stays
here are Kakao's quirks: the error body of two generations with the payment method's own
code under ``extras``, HTTP 401 meaning credentials whatever the body says, and a bare 4xx
on a money-moving call that cannot prove nothing moved.
"""

from __future__ import annotations

import json
from typing import Final, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from payfallback.adapter import AdapterKit, Secrets, Verdict, read_object
from payfallback.errors import ConfigurationError, Declined, InvalidRequest, PayfallbackError
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
)
from payfallback_kakaopay._receipt import paid_receipt, refund_receipt
from payfallback_kakaopay._wire import (
    CODES,
    STATUS_STATES,
    Amount,
    ApproveAnswer,
    ApproveBody,
    CancelAnswer,
    CancelBody,
    ErrorAnswer,
    KakaoStatus,
    OrderAnswer,
    OrderBody,
    ReadyAnswer,
    ReadyBody,
    SubscriptionBody,
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
LABEL: Final = "Kakao Pay"
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

#: Kakao Pay documents no request-id response header; a generic one is read when present.
_REQUEST_ID_HEADERS: Final = ("x-request-id",)
_PAYLOAD_MAX: Final = 200

_T = TypeVar("_T", bound=BaseModel)
_TXN_SEP: Final = ":"


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

    Secrets. :attr:`secrets` holds the secret key, the admin key, the cid secret and the
    ``Authorization`` values built from them; the Router scrubs them from everything, and
    every error text here passes through the kit's cleaner, which scrubs them too. The
    ``sid`` of a charge and the one-time ``pg_token`` of an approve are request secrets:
    the parse of that request scrubs them as well. The ``tid`` is not a secret.

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

    What proves a payment did not go through (``Capabilities.proofs``):

    - RECORD — offered. The order inquiry returns Kakao's record of the tid with a
      ``status``; ``FAIL_AUTH_PASSWORD`` (사용자 비밀번호 인증 실패), ``QUIT_PAYMENT``
      (사용자 결제 중단) and ``FAIL_PAYMENT`` (결제 승인 실패) are documented final
      failures, and ``ISSUED_SID`` says only a subscription key was issued; all four
      read ``NOT_PAID``. ``SELECT_METHOD`` and ``AUTH_PASSWORD`` (the customer has
      authenticated, the approve has not committed) read ``IN_PROGRESS``. Source: the
      status table of the order inquiry, https://developers.kakaopay.com/docs/payment/online/common
      and https://developers.kakao.com/docs/restapi/kakaopay-api, read through client
      copies that quote it verbatim [official via copy; likely]. A new payment always
      gets a new tid from ready, so a failed tid is final (``failed_record_is_final``)
      [inferred; likely].
    - REPLAY — not offered: no idempotency header in either generation (searched
      https://developers.kakao.com/docs/latest/ko/kakaopay/single-payment and the
      developers.kakaopay.com copies) [official by absence; likely].
    - VOID — not offered: Kakao Pay has no net cancel; ``cancel`` needs a paid tid.
    - NOT_FOUND_AFTER_SETTLE — not offered: no document states how long after a request
      Kakao may still commit it (searched the single-payment, cancellation and common
      pages above; the tid lifetime after ready and the approve deadline are not
      published), so ``settle_window`` is None. The inquiry is by the tid ready
      returned, so "no such transaction" does not arise for an approve; Kakao documents
      no code for it, and an unknown tid surfaces as an error, never ``NOT_FOUND``.
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
        # No documented settle window: "not found" is never proof (see the class docstring).
        settle_window=None,
        # A failed tid stays failed; paying again means a new ready and a new tid.
        failed_record_is_final=True,
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
        if legacy:
            assert self._admin_key is not None  # checked above
            self._auth = SecretStr(f"KakaoAK {self._admin_key.get_secret_value()}")
        else:
            assert self._secret_key is not None  # checked above
            self._auth = SecretStr(f"SECRET_KEY {self._secret_key.get_secret_value()}")
        #: Every credential and the Authorization value built from them; the Router
        #: scrubs these from every error, event, log line and journal row.
        self.secrets: Secrets = Secrets(
            self._secret_key, self._admin_key, self._cid_secret, self._auth
        )
        self.kit = AdapterKit(
            provider=NAME,
            label=LABEL,
            codes=CODES,
            request_id_headers=_REQUEST_ID_HEADERS,
            secrets=self.secrets,
        )

    def __repr__(self) -> str:
        return f"KakaoPay(cid={self._cid!r}, legacy={self._legacy})"

    @property
    def legacy(self) -> bool:
        """Whether this instance talks to the Kakao Developers generation (kapi.kakao.com)."""
        return self._legacy

    # -- ready ---------------------------------------------------------------------------

    def build_ready(self, req: ReadyRequest) -> httpx.Request:
        op, kit = Operation.READY, self.kit
        kit.check_method(req.method, self.capabilities, op, req.attempt_id)
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        body = kit.body(
            ReadyBody,
            op,
            req.attempt_id,
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
        op, kit = Operation.READY, self.kit
        if response is None:
            return Failed(
                kit.error(
                    Verdict.UNAVAILABLE,
                    op,
                    req.attempt_id,
                    text="ready always calls Kakao Pay; no answer was given to parse",
                )
            )
        if not response.is_success:
            return self._failure(kit, op, req.attempt_id, response)
        answer = _answer(ReadyAnswer, response)
        urls: dict[Platform, str] = {}
        client_params: dict[str, str] = {}
        if answer is not None:
            for platform, url in (
                (Platform.PC, answer.next_redirect_pc_url),
                (Platform.MOBILE, answer.next_redirect_mobile_url),
                (Platform.APP, answer.next_redirect_app_url),
            ):
                if url:
                    urls[platform] = url
            for key, value in (
                ("android_app_scheme", answer.android_app_scheme),
                ("ios_app_scheme", answer.ios_app_scheme),
            ):
                if value:
                    client_params[key] = value
        if answer is None or not answer.tid or not urls:
            # Nothing was charged and no customer was sent anywhere: safe to reroute.
            return Failed(
                kit.unreadable(
                    "ready answered without a tid or a redirect URL", op, req.attempt_id, response
                )
            )
        if kit.carries_secret(answer.tid, *urls.values(), *client_params.values()):
            # A credential in a URL the customer would be sent to: never pass it on.
            return Failed(
                kit.unreadable(
                    "ready answered with a credential in its tid or redirect URLs",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        return Redirect(provider_txn_id=answer.tid, redirect_urls=urls, client_params=client_params)

    # -- approve -------------------------------------------------------------------------

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """Approve what the customer authorised; needs ``pg_token`` from the return URL.

        Raises :class:`~payfallback.errors.Declined` without sending anything when the
        customer came back through ``cancel_url`` or ``fail_url`` (``payfallback_result``
        is ``cancel`` or ``fail`` and there is no ``pg_token``): with Kakao Pay money
        moves only when the merchant approves, so nothing was charged.
        """
        op, kit = Operation.APPROVE, self.kit
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
                raise kit.error(
                    Verdict.DECLINED,
                    op,
                    req.attempt_id,
                    code=f"{result}_url",
                    text=f"{what} (returned to {result}_url); nothing was charged",
                )
            raise kit.invalid(
                "approve needs the pg_token Kakao Pay appends to approval_url; pass all "
                "query parameters of the return request as callback_params",
                op,
                req.attempt_id,
            )
        if not req.provider_txn_id:
            raise kit.invalid("approve needs the tid that ready returned", op, req.attempt_id)
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        cid, tid = self._split_txn(req.provider_txn_id)
        body = self.kit.with_request_secrets(pg_token).body(
            ApproveBody,
            op,
            req.attempt_id,
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
        sent = self._split_txn(req.provider_txn_id) if req.provider_txn_id else None
        return self._parse_paid(
            self.kit.with_request_secrets(req.callback_params.get("pg_token")),
            Operation.APPROVE,
            req.attempt_id,
            req.order,
            response,
            cid=sent[0] if sent else self._cid,
            expected_tid=sent[1] if sent else None,
        )

    # -- charge --------------------------------------------------------------------------

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """Charge a subscription: ``Instrument.billing_key`` holds the Kakao ``sid``."""
        op = Operation.CHARGE
        sid = self.kit.check_instrument(req.instrument, req.attempt_id)
        kit = self.kit.with_request_secrets(sid)
        kit.check_currency(req.order.amount, self.capabilities, op, req.attempt_id)
        body = kit.body(
            SubscriptionBody,
            op,
            req.attempt_id,
            cid=self._subscription_cid,
            cid_secret=self._cid_secret_value(),
            sid=sid,
            partner_order_id=req.attempt_id,
            partner_user_id=_user_id(req.order, req.instrument),
            item_name=req.order.name,
            quantity=_quantity(req.order),
            total_amount=req.order.amount.amount,
            tax_free_amount=req.order.tax_free_amount,
        )
        return self._post("subscription", body)

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        return self._parse_paid(
            self.kit.with_request_secrets(req.instrument.billing_key),
            Operation.CHARGE,
            req.attempt_id,
            req.order,
            response,
            cid=self._subscription_cid,
        )

    # -- lookup --------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        op, kit = Operation.LOOKUP, self.kit
        if not req.provider_txn_id:
            raise kit.invalid(
                "Kakao Pay looks payments up by tid only; there is no inquiry by partner_order_id",
                op,
                req.attempt_id,
            )
        cid, tid = self._split_txn(req.provider_txn_id)
        body = kit.body(
            OrderBody, op, req.attempt_id, cid=cid, cid_secret=self._cid_secret_value(), tid=tid
        )
        return self._post("order", body)

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """The order's status as a :class:`Status`.

        ``NOT_PAID`` only for the documented final failures (and ``ISSUED_SID``); an
        authenticated customer whose approve has not committed is ``IN_PROGRESS``; an
        undocumented status is never concluded (``OutcomeUnknown``).
        """
        op, kit = Operation.LOOKUP, self.kit
        if not response.is_success:
            return self._failure(kit, op, req.attempt_id, response)
        answer = _answer(OrderAnswer, response)
        if answer is None or not answer.status:
            return Failed(
                kit.unreadable("order answered without a status", op, req.attempt_id, response)
            )
        try:
            status = KakaoStatus(answer.status)
        except ValueError:
            # Neither "paid" nor "not paid" can be concluded from a value we do not know.
            return Failed(
                kit.unknown(
                    "undocumented order status; check the payment in the Kakao Pay partner admin",
                    op,
                    req.attempt_id,
                    response,
                    code=answer.status,
                )
            )
        state = STATUS_STATES[status]
        total = _total(answer.amount)
        cancelled = _total(answer.canceled_amount)
        if state in (TxnState.PAID, TxnState.CANCELLED) and total is None:
            return Failed(
                kit.error(
                    Verdict.UNAVAILABLE,
                    op,
                    req.attempt_id,
                    response=response,
                    code=status.value,
                    text=f"order answered {status.value} without the amount",
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
        """Full or partial cancel; ``expected_remaining`` travels as the double-cancel guard.

        ``CancelRequest.tax_free_amount`` is sent as ``cancel_tax_free_amount`` (required
        by Kakao); ``cancel_vat_amount`` is left out, so Kakao computes it as
        (cancel - tax-free) / 11, rounded. Source:
        https://developers.kakao.com/docs/latest/ko/kakaopay/cancellation (request body
        table: "cancel_tax_free_amount Integer 취소 비과세 금액 O", "cancel_vat_amount …
        값을 전달하지 않을 경우, (취소 금액 - 취소 비과세 금액)/11, 소숫점이하 반올림")
        [official; sure].
        """
        op, kit = Operation.CANCEL, self.kit
        kit.check_cancel(req, self.capabilities)
        cid, tid = self._split_txn(req.provider_txn_id)
        body = kit.body(
            CancelBody,
            op,
            req.attempt_id,
            cid=cid,
            cid_secret=self._cid_secret_value(),
            tid=tid,
            cancel_amount=req.amount.amount,
            cancel_tax_free_amount=req.tax_free_amount,
            cancel_available_amount=req.expected_remaining,
            payload=_payload(req.reason),
        )
        return self._post("cancel", body)

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        op, kit = Operation.CANCEL, self.kit
        if not response.is_success:
            return self._failure(kit, op, req.attempt_id, response)
        answer = _answer(CancelAnswer, response)
        done = _total(answer.approved_cancel_amount) if answer is not None else None
        if answer is None or not answer.tid or not done:
            return Failed(
                kit.unknown(
                    "cancel answered without the tid or the cancelled amount",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        kept = kit.secrets.scrub_answer(read_object(response) or {})
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=Money(amount=done, currency="KRW"),
            remaining=_total(answer.cancel_available_amount),
            receipt=refund_receipt(kept),
            answer=kept,
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
            content = urlencode({k: str(v) for k, v in fields.items()}).encode("ascii")
            content_type = _FORM
        else:
            content = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
            content_type = _JSON
        return httpx.Request(
            "POST",
            f"{self._host}{self._prefix}/{path}",
            headers={
                "Authorization": self._auth.get_secret_value(),
                "Content-Type": content_type,
            },
            content=content,
        )

    def _cid_secret_value(self) -> str | None:
        return None if self._cid_secret is None else self._cid_secret.get_secret_value()

    def _split_txn(self, txn_id: str) -> tuple[str, str]:
        """``tid`` → (cid, tid); ``"{cid}:{tid}"`` (subscription charges) → its parts."""
        cid, sep, tid = txn_id.partition(_TXN_SEP)
        return (cid, tid) if sep else (self._cid, txn_id)

    def _join_txn(self, cid: str, tid: str) -> str:
        return tid if cid == self._cid else f"{cid}{_TXN_SEP}{tid}"

    def _parse_paid(
        self,
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        order: Order,
        response: httpx.Response,
        *,
        cid: str,
        expected_tid: str | None = None,
    ) -> Outcome:
        """Approve and subscription answers share a shape; both must name tid and amount.

        The transaction id is built from the cid we sent (Kakao finds a tid only under
        the cid it was made under), never from an echoed one.
        """
        if not response.is_success:
            return self._failure(kit, op, attempt_id, response)
        answer = _answer(ApproveAnswer, response)
        total = _total(answer.amount) if answer is not None else None
        if answer is None or not answer.tid or not total:
            return Failed(
                kit.unknown(
                    f"{op.value} answered success without the tid or the amount",
                    op,
                    attempt_id,
                    response,
                )
            )
        if expected_tid is not None and answer.tid != expected_tid:
            return Failed(
                kit.unknown(
                    f"{op.value} answered for another tid than the one approved",
                    op,
                    attempt_id,
                    response,
                )
            )
        if kit.carries_secret(answer.tid):
            return Failed(
                kit.unknown(
                    f"{op.value} answered success with a credential as its tid",
                    op,
                    attempt_id,
                    response,
                )
            )
        # Scrubbed here with this request's secrets too (the sid, the pg_token), which
        # the Router does not know; the receipt is read from the scrubbed copy.
        kept = kit.secrets.scrub_answer(read_object(response) or {})
        return Approved(
            provider_txn_id=self._join_txn(cid, answer.tid),
            amount=Money(amount=total, currency=order.amount.currency),
            approved_at=parse_kst(answer.approved_at),
            receipt=paid_receipt(kept),
            answer=kept,
        )

    def _failure(
        self, kit: AdapterKit, op: Operation, attempt_id: str, response: httpx.Response
    ) -> Failed:
        """A non-2xx answer, through the kit; Kakao's quirks decide only which code and
        which rule.

        - Two codes: ``error_code`` (``code`` on the legacy API) and the payment method's
          ``extras.method_result_code``. The method's is looked up first (it is the more
          specific); the error carries both as ``"-780/USER_LOCKED"``.
        - HTTP 401 is Kakao's answer to bad credentials, whatever code the body carries.
        - A 4xx without a Kakao error body did not come from the payment logic we know;
          on a money-moving call it cannot prove that nothing moved.
        """
        body = _answer(ErrorAnswer, response)
        code = body.code_text if body is not None else None
        method_code = body.method_code if body is not None else None
        provider_code = f"{code}/{method_code}" if code and method_code else code or method_code
        said = _provider_text(body)
        if response.status_code == 401:
            told = kit.clean(said)
            setting = "admin_key" if self._legacy else "secret_key"
            return Failed(
                kit.error(
                    Verdict.CONFIGURATION,
                    op,
                    attempt_id,
                    response=response,
                    code=provider_code,
                    text=f"Kakao Pay rejected the credentials (HTTP 401); check {setting} and cid"
                    + (f": {told}" if told else ""),
                )
            )
        for lookup_code in (method_code, code):
            rule = CODES.get(lookup_code) if lookup_code else None
            if rule is not None:
                message = f"{rule.meaning} — {said}" if said else rule.meaning
                return Failed(
                    _for_customer(
                        kit,
                        kit.error(
                            rule.verdict_for(op),
                            op,
                            attempt_id,
                            response=response,
                            code=provider_code,
                            message=message,
                        ),
                        body,
                    )
                )
        error = _for_customer(
            kit, kit.classify(op, attempt_id, response, code=provider_code, message=said), body
        )
        if op in MONEY_MOVING and provider_code is None and isinstance(error, InvalidRequest):
            error = kit.error(
                Verdict.UNKNOWN,
                op,
                attempt_id,
                response=response,
                text=f"HTTP {response.status_code} without a Kakao Pay error body on "
                f"{op.value}; it may have been processed — look it up",
            )
        return Failed(error)


# -- helpers ---------------------------------------------------------------------------------


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None:
        return None
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    return secret if secret.get_secret_value().strip() else None


def _answer(model: type[_T], response: httpx.Response) -> _T | None:
    data = read_object(response)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _user_id(order: Order, instrument: Instrument | None = None) -> str:
    """``partner_user_id``: stable per order, so approve repeats what ready sent."""
    if instrument is not None and instrument.customer_key:
        return instrument.customer_key
    return order.customer_ref or order.order_id


def _quantity(order: Order) -> int:
    return sum(item.quantity for item in order.items) or 1


def _payload(reason: str) -> str | None:
    """The cancel reason as Kakao's ``payload`` (≤200 characters), on one line."""
    flat = " ".join(reason.split())
    if not flat:
        return None
    return flat if len(flat) <= _PAYLOAD_MAX else flat[: _PAYLOAD_MAX - 1] + "…"


def _tag_url(url: str, result: str) -> str:
    """Append ``payfallback_result=<result>`` keeping the URL's own encoding untouched."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{RESULT_PARAM}={result}"))


def _total(amount: Amount | None) -> int | None:
    """An amount object's ``total``, or None when absent or nonsensical (negative)."""
    if amount is None or amount.total is None or amount.total < 0:
        return None
    return amount.total


def _for_customer(
    kit: AdapterKit, error: PayfallbackError, body: ErrorAnswer | None
) -> PayfallbackError:
    """A decline carries Kakao's own words for the customer as ``user_message``: the
    payment method's message (``잔액이 부족합니다.``) before the API's generic one
    (``approval failure!``), without our English meaning."""
    if isinstance(error, Declined) and body is not None:
        error.user_message = kit.clean(body.method_message or body.message_text)
    return error


def _provider_text(body: ErrorAnswer | None) -> str | None:
    """Kakao's own wording (raw: the kit cleans and scrubs it before it reaches a message)."""
    if body is None:
        return None
    parts = [p for p in (body.message_text, body.method_message) if p]
    return " / ".join(parts) or None
