"""The NHN KCP adapter: what it can do, and pure ``build_<op>`` / ``parse_<op>`` functions.

Nothing here sends, sleeps, logs or remembers: every method is a function of its arguments
and the adapter's settings, so the async and the sync Router share it and the tests are
about bytes. Every error is made by the instance's :class:`AdapterKit`; what stays here is
KCP's quirks: the ``res_cd`` inside a 200 answer, amounts as digit strings, the one-line
certificate and the ``kcp_sign_data`` signature, and a cancel whose ``rem_mny`` is the
balance before it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from payfallback.adapter import (
    AdapterKit,
    Secrets,
    Verdict,
    fit_bytes,
    installment_months,
    read_object,
)
from payfallback.errors import ConfigurationError, PayfallbackError
from payfallback.models import Method, Money, Receipt, RefundReceipt
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
from payfallback_kcp._wire import (
    API_HOST,
    APPROVE_PATH,
    BATCH_PATH,
    CANCEL_PATH,
    CARD_PAY_TYPE,
    CARD_WINDOW_METHOD,
    CODE_HINTS,
    CODE_TABLE,
    FULL_CANCEL,
    INQUIRY_PATH,
    JS_URL,
    PARTIAL_CANCEL,
    RECEIPT_URL,
    SANDBOX_API_HOST,
    SANDBOX_JS_URL,
    SANDBOX_RECEIPT_URL,
    SUCCESS_CODE,
    Answer,
    ApproveBody,
    BatchBody,
    CancelBody,
    InquiryBody,
    load_private_key,
    one_line_certificate,
    read_answer,
    sign,
    sign_data,
)

__all__ = ["KST", "Kcp"]

#: Korea Standard Time (no daylight saving time): KCP's ``app_time``/``canc_time`` are KST.
KST = timezone(timedelta(hours=9), "KST")

#: ``ordr_idxx`` / ``ordr_no`` are at most 40 bytes in KCP's order tables [3rd-party].
_ORDER_ID_MAX = 40
_GOOD_NAME_BYTES = 100
_BATCH_KEY_MAX = 64
_TRAN_CD = re.compile(r"[0-9]{8}")
_REASON_BYTES = 100
#: KCP documents no request-id header; keep one if a gateway in between adds it.
_REQUEST_ID_HEADERS = ("x-request-id", "x-trace-id")


def _fit(text: str, limit: int) -> str:
    """``text`` with its runs of white space made one space, cut to ``limit`` bytes."""
    return fit_bytes(" ".join(text.split()), limit)


def _parse_time(value: str | None) -> datetime | None:
    # "20220609103013" (yyyyMMddHHmmss, KST)
    if not value or len(value) != 14 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None


def _pem_lines(pem: str) -> list[str]:
    """The base64 lines of a PEM (no BEGIN/END lines, no header lines)."""
    return [
        line.strip()
        for line in pem.strip().splitlines()
        if line.strip() and not line.startswith("-----") and ":" not in line
    ]


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    if value is None:
        return None
    return value if isinstance(value, SecretStr) else SecretStr(value)


# -- receipts ---------------------------------------------------------------------------------
#
# What the till prints, read from an approval or batch payment answer (the two share one
# shape: "결제 응답 전문의 경우 동일한 형태로 리턴됩니다",
# https://developer.kcp.co.kr/page/document/keyin). KCP's answer table is not published on
# developer.kcp.co.kr; the fields below are the ones KCP's payment samples read from a card
# result, with the samples' own words [official sample as merchants published it, medium],
# except where marked:
#   app_no              → approval_number  (승인번호)
#   card_cd / card_name → issuer_code / issuer (카드사 코드 / 카드사 명; 카드발급사 in KCP's
#                         notification sample)
#   acqu_cd / acqu_name → acquirer_code / acquirer (매입사 코드 / 매입사 명)
#   card_no             → card_number      (masked by KCP) [3rd-party, medium]
#   quota               → installment_months ("00" 일시불)
#   noinf               → interest_free    ("Y" 무이자, "N" not) [3rd-party, medium: merchants'
#                         result pages print 무이자 for "Y"]
#   receipt page        → receipt_url      (see ``_wire.RECEIPT_URL``)
# card_bin_type_01 / card_bin_type_02 (카드구분1 / 카드구분2 in the samples) are not mapped:
# no page or sample found says what their values mean, so ``card_kind`` stays None.
#
# A cancel answer's canc_time (yyyyMMddHHmmss, KST) → RefundReceipt.cancelled_at
# [3rd-party, medium: merchants' integrations of the REST cancel]. The cancel answer names
# the original tno, no id of its own; its rem_mny (and the PayPlus sample's panc_rem_mny) is
# read as the balance before the cancel by one KCP guide and after it by samples and
# integrations, so ``remaining`` is left None rather than guessed.

_INTEREST_FREE: dict[str, bool] = {"Y": True, "N": False}


def _field(kit: AdapterKit, value: object) -> str | None:
    """A receipt field as KCP sent it: stripped text, None when empty or holding a secret."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or kit.carries_secret(text):
        return None
    return text


class Kcp:
    """NHN KCP (REST API on ``spl.kcp.co.kr``) as a payfallback provider.

    Settings (keyword-only, so ``load_provider("kcp", ...)`` works):

    * ``site_cd`` — the site code KCP issued (``T0000`` is KCP's test site).
    * ``cert_info`` — the service certificate (서비스 인증서) PEM from the KCP merchant
      admin; line breaks are removed, as KCP requires, before it is sent as
      ``kcp_cert_info``.
    * ``private_key`` — the merchant's PKCS#8 private key PEM (``splPrikeyPKCS8.pem``),
      encrypted or not, and ``private_key_password`` when it is encrypted. It signs
      ``kcp_sign_data`` (SHA256withRSA) for cancels and inquiries; it is never sent.
    * ``batch_group_id`` — the batch-key group id (``bt_group_id``) KCP issued for billing;
      without it the adapter offers only the payment window.
    * ``sandbox`` — ``True`` for ``stg-spl.kcp.co.kr`` and the test window script.

    **Secrets.** :attr:`secrets` holds the certificate (as given and on one line), its
    base64 body, the private key PEM and body and its password; the kit scrubs them from
    every error text and the Router from everything else. While parsing, the request's own
    secrets are scrubbed too: the batch key of a charge and the ``enc_data``/``enc_info``
    of the window's return.

    **Lost answers.** KCP has no idempotency key, no inquiry by order number and no net
    cancel by order number: an approval or batch payment whose answer is lost has no
    ``tno`` to ask about, so it stays an unknown outcome for reconciliation and is never
    sent again or elsewhere (see the package docstring, "What proves a payment did not go
    through").
    """

    def __init__(
        self,
        *,
        site_cd: str,
        cert_info: SecretStr | str,
        private_key: SecretStr | str,
        private_key_password: SecretStr | str | None = None,
        batch_group_id: str | None = None,
        sandbox: bool = False,
    ) -> None:
        self.name = "kcp"
        if not isinstance(site_cd, str) or not site_cd.strip() or len(site_cd.strip()) > 10:
            raise ConfigurationError(
                "kcp: site_cd is required (the site code KCP issued, e.g. T0000 for tests)",
                provider=self.name,
            )
        cert = _secret(cert_info)
        key_pem = _secret(private_key)
        password = _secret(private_key_password)
        if cert is None or not isinstance(cert.get_secret_value(), str):
            raise ConfigurationError("kcp: cert_info must be text", provider=self.name)
        one_line = one_line_certificate(cert.get_secret_value())
        if not (
            one_line.startswith("-----BEGIN CERTIFICATE-----")
            and one_line.endswith("-----END CERTIFICATE-----")
        ):
            raise ConfigurationError(
                "kcp: cert_info must be the service certificate PEM (-----BEGIN CERTIFICATE-----"
                " … -----END CERTIFICATE-----) from the KCP merchant admin",
                provider=self.name,
            )
        body = one_line.removeprefix("-----BEGIN CERTIFICATE-----").removesuffix(
            "-----END CERTIFICATE-----"
        )
        if key_pem is None or not isinstance(key_pem.get_secret_value(), str):
            raise ConfigurationError("kcp: private_key must be text", provider=self.name)
        try:
            self._key: rsa.RSAPrivateKey = load_private_key(
                key_pem.get_secret_value(),
                password.get_secret_value() if password is not None else None,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"kcp: {exc} (private_key is splPrikeyPKCS8.pem; private_key_password its "
                "password)",
                provider=self.name,
            ) from None
        if batch_group_id is not None and (
            not isinstance(batch_group_id, str) or not batch_group_id.strip()
        ):
            raise ConfigurationError(
                "kcp: batch_group_id must be the bt_group_id KCP issued", provider=self.name
            )
        # Each PEM line too: an answer may echo the PEM with its line breaks escaped
        # (JSON "\\n", URL "%0A"), in which no whole form of it appears.
        cert_lines = _pem_lines(cert.get_secret_value())
        key_lines = _pem_lines(key_pem.get_secret_value())
        self.site_cd = site_cd.strip()
        self._cert = SecretStr(one_line)
        self.secrets = Secrets(
            cert, one_line, body, *cert_lines, key_pem, "".join(key_lines), *key_lines, password
        )
        self.kit = AdapterKit(
            provider=self.name,
            label="KCP",
            codes=CODE_TABLE,
            request_id_headers=_REQUEST_ID_HEADERS,
            hints=CODE_HINTS,
            secrets=self.secrets,
        )
        self.batch_group_id = batch_group_id.strip() if batch_group_id else None
        self.sandbox = bool(sandbox)
        self.base_url = SANDBOX_API_HOST if self.sandbox else API_HOST
        self.js_url = SANDBOX_JS_URL if self.sandbox else JS_URL
        flows = {Flow.REDIRECT}
        if self.batch_group_id:
            flows.add(Flow.SERVER_CHARGE)
        self.capabilities = Capabilities(
            methods=frozenset({Method.CARD}),
            flows=frozenset(flows),
            # The inquiry takes a tno; none by order number was found.
            lookup_by_order_id=False,
            # No idempotency key is documented for any KCP call.
            idempotency_header=None,
            idempotency_retention=None,
            partial_cancel=True,
            # No net cancel by order number is documented: a lost approval has no tno.
            void_window=None,
            currencies=frozenset({"KRW"}),
            # The window's return carries enc_data/enc_info, not the tno.
            callback_txn_id_param=None,
            # No time after which "not found" proves nothing was processed is documented.
            settle_window=None,
            # The inquiry reports approved transactions by tno; no failed record is
            # documented, so none is taken as proof.
            failed_record_is_final=False,
        )

    def __repr__(self) -> str:
        return f"Kcp(site_cd={self.site_cd!r}, sandbox={self.sandbox!r})"

    # -- wire helpers ------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, str]) -> httpx.Request:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return httpx.Request(
            "POST",
            self.base_url + path,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
            },
            content=content,
        )

    def _sign(self, tno: str, last: str) -> str:
        return sign(self._key, sign_data(self.site_cd, tno, last))

    def _check_amount(self, op: Operation, attempt_id: str, money: Money) -> None:
        self.kit.check_currency(money, self.capabilities, op, attempt_id)
        if money.amount <= 0:
            raise self.kit.invalid("the amount must be greater than zero", op, attempt_id)

    def _check_order_id(self, op: Operation, attempt_id: str) -> None:
        self.kit.check_length(
            attempt_id,
            "the attempt id (sent as the order number)",
            op,
            attempt_id,
            maximum=_ORDER_ID_MAX,
        )

    # -- classification ----------------------------------------------------------------------

    def _answer(
        self, kit: AdapterKit, op: Operation, attempt_id: str, response: httpx.Response
    ) -> Answer | Failed:
        """A success answer, or what KCP's answer means (``res_cd`` inside a 200)."""
        code, msg, answer = read_answer(read_object(response))
        if response.is_success and code == SUCCESS_CODE:
            if answer is None:
                return Failed(
                    self._unusable(
                        kit, op, attempt_id, "a success answer could not be read", response, code
                    )
                )
            return answer
        if code is None and op in MONEY_MOVING and response.is_success:
            return Failed(
                self._unusable(kit, op, attempt_id, "the answer has no res_cd", response, None)
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
        """An answer we cannot use as it stands: unknown on a money-moving call (KCP may
        have acted), "try later" on an inquiry. ``what`` quotes no provider text."""
        text = f"KCP {op.value}: {what}"
        if op in MONEY_MOVING:
            text += "; it may have been processed — it is kept for reconciliation"
        return kit.error(Verdict.UNKNOWN, op, attempt_id, response=response, code=code, text=text)

    def _approved(
        self,
        kit: AdapterKit,
        op: Operation,
        attempt_id: str,
        response: httpx.Response,
        answer: Answer,
    ) -> Outcome:
        """Approved only with a tno and an amount, for this attempt's order number."""
        tno = answer.tno.strip() if answer.tno else None
        amount = answer.money("amount")
        if not tno:
            return Failed(
                self._unusable(
                    kit, op, attempt_id, "a success answer has no tno", response, SUCCESS_CODE
                )
            )
        if amount is None:
            return Failed(
                self._unusable(
                    kit, op, attempt_id, "a success answer has no amount", response, SUCCESS_CODE
                )
            )
        if kit.carries_secret(tno):
            return Failed(
                self._unusable(kit, op, attempt_id, "the tno is not usable", response, SUCCESS_CODE)
            )
        if answer.order_no is not None and answer.order_no != attempt_id:
            return Failed(
                self._unusable(
                    kit,
                    op,
                    attempt_id,
                    "the answer is for another order number",
                    response,
                    SUCCESS_CODE,
                )
            )
        data = read_object(response)
        return Approved(
            provider_txn_id=tno,
            amount=Money(amount=amount, currency="KRW"),
            approved_at=_parse_time(answer.app_time),
            provider_status=answer.pay_method if answer.pay_method == CARD_PAY_TYPE else None,
            receipt=self.approval_receipt(kit, answer, tno=tno, order_no=attempt_id, amount=amount),
            answer=kit.secrets.scrub_answer(data) if data is not None else None,
        )

    def receipt_url(self, *, tno: str, order_no: str, amount: int) -> str:
        """The card receipt page of a payment (test host in the sandbox)."""
        base = SANDBOX_RECEIPT_URL if self.sandbox else RECEIPT_URL
        query = urlencode(
            {"cmd": "card_bill", "tno": tno, "order_no": order_no, "trade_mony": str(amount)}
        )
        return f"{base}?{query}"

    def approval_receipt(
        self, kit: AdapterKit, answer: Answer, *, tno: str, order_no: str, amount: int
    ) -> Receipt:
        """The receipt of a card approval or batch payment answer (see the table above)."""
        return Receipt(
            approval_number=_field(kit, answer.app_no),
            issuer=_field(kit, answer.card_name),
            issuer_code=_field(kit, answer.card_cd),
            acquirer=_field(kit, answer.acqu_name),
            acquirer_code=_field(kit, answer.acqu_cd),
            card_number=_field(kit, answer.card_no),
            installment_months=installment_months(answer.quota),
            interest_free=_INTEREST_FREE.get((answer.noinf or "").strip().upper()),
            receipt_url=self.receipt_url(tno=tno, order_no=order_no, amount=amount),
        )

    # -- ready -------------------------------------------------------------------------------

    def _window_params(self, req: ReadyRequest) -> dict[str, str]:
        op = Operation.READY
        self._check_amount(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        self.kit.check_method(req.method, self.capabilities, op, req.attempt_id)
        return {
            "jsUrl": self.js_url,
            "site_cd": self.site_cd,
            "pay_method": CARD_WINDOW_METHOD,
            "ordr_idxx": req.attempt_id,
            "good_name": _fit(req.order.name, _GOOD_NAME_BYTES) or "-",
            "good_mny": str(req.order.amount.amount),
            "Ret_URL": req.return_urls.success,
        }

    def build_ready(self, req: ReadyRequest) -> httpx.Request | None:
        """None: the window opens in the browser (``KCP_Pay_Execute_Web``); nothing is sent.

        Raises ``InvalidRequest`` for input the window would refuse.
        """
        self._window_params(req)
        return None

    def parse_ready(self, req: ReadyRequest, response: httpx.Response | None) -> Outcome:
        """A :class:`Redirect` whose ``client_params`` are the order form's fields for the
        window (plus ``jsUrl``, the script to load); there is no redirect URL."""
        try:
            params = self._window_params(req)
        except PayfallbackError as exc:
            return Failed(exc)
        return Redirect(provider_txn_id=None, redirect_urls={}, client_params=params)

    # -- approve -----------------------------------------------------------------------------

    def _callback_kit(self, req: ApproveRequest) -> AdapterKit:
        params = req.callback_params
        return self.kit.with_request_secrets(params.get("enc_data"), params.get("enc_info"))

    def build_approve(self, req: ApproveRequest) -> httpx.Request:
        """``POST /gw/enc/v1/payment`` with the window's ``tran_cd``/``enc_data``/``enc_info``
        and the order amount as ``ordr_mony`` (KCP refuses an approval for another amount):
        the body of KCP's sample. The order number is the one the window was opened with.

        Raises ``Declined`` when the window's ``res_cd`` says the authentication failed or
        the customer cancelled (nothing is approved until we ask), and ``InvalidRequest``
        when the return is for another order or lacks what the approval needs. No message
        quotes a return field.
        """
        op, kit = Operation.APPROVE, self._callback_kit(req)
        params = req.callback_params
        code = params.get("res_cd")
        if code is not None and code != SUCCESS_CODE:
            said = kit.clean(params.get("res_msg"))
            raise kit.error(
                Verdict.DECLINED,
                op,
                req.attempt_id,
                code=code,
                message=params.get("res_msg"),
                text="the KCP payment window did not authenticate the payment"
                + (f": {said}" if said else ""),
            )
        self._check_amount(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        order = params.get("ordr_idxx")
        if order is not None and order != req.attempt_id:
            raise kit.invalid(
                "the return is for another order number; not approving", op, req.attempt_id
            )
        for field in ("enc_data", "enc_info", "tran_cd"):
            if not params.get(field):
                raise kit.invalid(
                    f"the return has no {field}; pass KCP's POST to Ret_URL unchanged",
                    op,
                    req.attempt_id,
                )
        # Checked here, not by the wire model: a refused value must not travel in the
        # error's context (the return's fields may hold anything).
        if not _TRAN_CD.fullmatch(params["tran_cd"]):
            raise kit.invalid("the return's tran_cd is not 8 digits", op, req.attempt_id)
        body = kit.body(
            ApproveBody,
            op,
            req.attempt_id,
            tran_cd=params["tran_cd"],
            site_cd=self.site_cd,
            kcp_cert_info=self._cert.get_secret_value(),
            enc_data=params["enc_data"],
            enc_info=params["enc_info"],
            ordr_mony=str(req.order.amount.amount),
        )
        return self._post(APPROVE_PATH, body.wire())

    def parse_approve(self, req: ApproveRequest, response: httpx.Response) -> Outcome:
        op, kit = Operation.APPROVE, self._callback_kit(req)
        answer = self._answer(kit, op, req.attempt_id, response)
        if isinstance(answer, Failed):
            return answer
        return self._approved(kit, op, req.attempt_id, response, answer)

    # -- charge (batch key) ------------------------------------------------------------------

    def _charge_kit(self, req: ChargeRequest) -> AdapterKit:
        return self.kit.with_request_secrets(req.instrument.billing_key)

    def build_charge(self, req: ChargeRequest) -> httpx.Request:
        """``POST /gw/hub/v1/payment``: a card payment with the instrument's batch key.

        ``amount`` and ``card_mny`` are the order amount, ``currency`` 410, ``card_tx_type``
        11511000, ``quota`` 00 (lump sum), ``ordr_idxx`` our attempt id.
        """
        op = Operation.CHARGE
        if self.batch_group_id is None:
            raise ConfigurationError(
                "kcp: batch payments need batch_group_id (the bt_group_id KCP issued)",
                **self.kit.context(op, req.attempt_id),
            )
        kit = self._charge_kit(req)
        batch_key = kit.check_instrument(req.instrument, req.attempt_id)
        kit.check_length(
            batch_key, "the batch key (bt_batch_key)", op, req.attempt_id, maximum=_BATCH_KEY_MAX
        )
        self._check_amount(op, req.attempt_id, req.order.amount)
        self._check_order_id(op, req.attempt_id)
        amount = str(req.order.amount.amount)
        body = kit.body(
            BatchBody,
            op,
            req.attempt_id,
            site_cd=self.site_cd,
            kcp_cert_info=self._cert.get_secret_value(),
            amount=amount,
            card_mny=amount,
            ordr_idxx=req.attempt_id,
            good_name=_fit(req.order.name, _GOOD_NAME_BYTES) or "-",
            bt_batch_key=batch_key,
            bt_group_id=self.batch_group_id,
        )
        return self._post(BATCH_PATH, body.wire())

    def parse_charge(self, req: ChargeRequest, response: httpx.Response) -> Outcome:
        op, kit = Operation.CHARGE, self._charge_kit(req)
        answer = self._answer(kit, op, req.attempt_id, response)
        if isinstance(answer, Failed):
            return answer
        return self._approved(kit, op, req.attempt_id, response, answer)

    # -- lookup ------------------------------------------------------------------------------

    def build_lookup(self, req: LookupRequest) -> httpx.Request:
        """``POST /std/inquery`` by ``tno`` and ``pay_type``, signed over
        ``site_cd^tno^pay_type``. KCP has no inquiry by order number."""
        op = Operation.LOOKUP
        if not req.provider_txn_id:
            raise self.kit.invalid(
                "KCP looks a payment up only by its tno, and this attempt has none",
                op,
                req.attempt_id,
            )
        tno = req.provider_txn_id
        body = self.kit.body(
            InquiryBody,
            op,
            req.attempt_id,
            site_cd=self.site_cd,
            kcp_cert_info=self._cert.get_secret_value(),
            kcp_sign_data=self._sign(tno, CARD_PAY_TYPE),
            tno=tno,
        )
        return self._post(INQUIRY_PATH, body.wire())

    def parse_lookup(self, req: LookupRequest, response: httpx.Response) -> Outcome:
        """``Status`` of the transaction: PAID with what was cancelled (``amount`` minus
        ``rem_mny``), CANCELLED when nothing is left. Without ``rem_mny`` the cancelled
        part cannot be told: the inquiry is "try later", never a guess."""
        op, kit = Operation.LOOKUP, self.kit
        answer = self._answer(kit, op, req.attempt_id, response)
        if isinstance(answer, Failed):
            return answer
        tno = answer.tno.strip() if answer.tno else None
        amount = answer.money("amount")
        remaining = answer.money("rem_mny")
        if tno is None or tno != req.provider_txn_id:
            return Failed(
                kit.unreadable(
                    "KCP inquiry: the answer is for another tno", op, req.attempt_id, response
                )
            )
        if amount is None or remaining is None or remaining > amount:
            return Failed(
                kit.unreadable(
                    "KCP inquiry: the answer has no usable amount and rem_mny",
                    op,
                    req.attempt_id,
                    response,
                )
            )
        money = Money(amount=amount, currency="KRW")
        if remaining == 0 and amount > 0:
            return Status(
                state=TxnState.CANCELLED,
                provider_txn_id=tno,
                amount=money,
                cancelled=amount,
                provider_status=answer.pay_method,
            )
        return Status(
            state=TxnState.PAID,
            provider_txn_id=tno,
            amount=money,
            cancelled=amount - remaining,
            provider_status=CARD_PAY_TYPE if answer.pay_method == CARD_PAY_TYPE else None,
        )

    # -- cancel ------------------------------------------------------------------------------

    @staticmethod
    def _is_full(req: CancelRequest) -> bool:
        # STSC only for a payment never partly cancelled, cancelled whole; every other
        # cancel is STPC with the balance before it, which KCP checks.
        whole = req.order.amount.amount
        return req.expected_remaining == whole and req.amount.amount == whole

    def build_cancel(self, req: CancelRequest) -> httpx.Request:
        """``POST /gw/mod/v1/cancel``: ``STSC`` for the whole payment, otherwise ``STPC``
        with ``mod_mny`` (this cancel) and ``rem_mny`` = ``req.expected_remaining`` (the
        balance before it, computed once by the Router and sent unchanged on every retry,
        so that KCP refuses a replay instead of cancelling twice). Signed over
        ``site_cd^tno^mod_type``."""
        op, kit = Operation.CANCEL, self.kit
        kit.check_cancel(req, self.capabilities)
        full = self._is_full(req)
        mod_type = FULL_CANCEL if full else PARTIAL_CANCEL
        tno = req.provider_txn_id
        fields: dict[str, Any] = {
            "site_cd": self.site_cd,
            "tno": tno,
            "kcp_cert_info": self._cert.get_secret_value(),
            "kcp_sign_data": self._sign(tno, mod_type),
            "mod_type": mod_type,
            "mod_desc": _fit(req.reason, _REASON_BYTES) or "-",
        }
        if not full:
            fields["mod_mny"] = str(req.amount.amount)
            fields["rem_mny"] = str(req.expected_remaining)
        body = kit.body(CancelBody, op, req.attempt_id, **fields)
        return self._post(CANCEL_PATH, body.wire())

    def parse_cancel(self, req: CancelRequest, response: httpx.Response) -> Outcome:
        op, kit = Operation.CANCEL, self.kit
        answer = self._answer(kit, op, req.attempt_id, response)
        if isinstance(answer, Failed):
            return answer
        if answer.tno is not None and answer.tno.strip() != req.provider_txn_id:
            return Failed(
                self._unusable(
                    kit, op, req.attempt_id, "the answer is for another tno", response, SUCCESS_CODE
                )
            )
        # Where KCP states the amount a partial cancel took, it must be the one asked for.
        # The answer's rem_mny is not compared: KCP's guide describes it as the balance
        # before the cancel, merchant integrations read it as the balance after.
        stated = ("mod_mny", "panc_mod_mny")
        if not self._is_full(req) and any(
            getattr(answer, name, None) not in (None, "")
            and answer.money(name) != req.amount.amount
            for name in stated
        ):
            return Failed(
                self._unusable(
                    kit,
                    op,
                    req.attempt_id,
                    "the cancelled amount is not the one asked for",
                    response,
                    SUCCESS_CODE,
                )
            )
        data = read_object(response)
        return Cancelled(
            provider_txn_id=req.provider_txn_id,
            amount=req.amount,
            remaining=req.expected_remaining - req.amount.amount,
            receipt=RefundReceipt(cancelled_at=_parse_time(_field(kit, answer.canc_time))),
            answer=kit.secrets.scrub_answer(data) if data is not None else None,
        )

    # -- void --------------------------------------------------------------------------------

    def build_void(self, req: VoidRequest) -> httpx.Request:
        raise NotImplementedError(
            "kcp: void is not supported (no net cancel by order number is documented)"
        )

    def parse_void(self, req: VoidRequest, response: httpx.Response) -> Outcome:
        raise NotImplementedError(
            "kcp: void is not supported (no net cancel by order number is documented)"
        )
