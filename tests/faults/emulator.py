"""A provider emulator with an authoritative ledger, for the fault suite.

:class:`Emulator` is an ``httpx.MockTransport`` handler that answers the real adapters as
Toss Payments (``api.tosspayments.com``), NICEPAY (``api.nicepay.co.kr``) and PortOne
(``api.portone.io``) answer their server-side billing APIs (and Toss the confirm of its
payment window), on the manual clock it is given. Answers are built by the adapters' own
test helpers (the conformance kits of ``adapters/<name>/tests/<name>_kit.py`` and the
documented payload files their ``<name>_support.py`` loads); the state in them comes from
the :class:`Ledger`.

The provider rules it keeps (each as its adapter documents it):

* **Toss Payments** — billing charges, and the payment window: the customer pays in it
  (:meth:`Emulator.toss_authenticate`: a ``paymentKey`` in ``IN_PROGRESS``) and
  ``/v1/payments/confirm`` approves it within 10 minutes (else ``EXPIRED``; a refused
  confirm leaves it ``ABORTED``). ``Idempotency-Key`` on every POST: a replay is not
  executed again, it gets the first request's answer, and ``409
  IDEMPOTENT_REQUEST_PROCESSING`` while the first request is still running. Lookups by
  ``orderId`` (``/v1/payments/orders/…``) or ``paymentKey``; ``404 NOT_FOUND_PAYMENT``
  when there is none (yet). A cancel whose ``refundableAmount`` is not the balance is
  refused (``NOT_MATCHES_REFUNDABLE_AMOUNT``).
* **NICEPAY** — no idempotency header: a second billing charge on an ``orderId`` that
  has one is refused (``A127``); a failed charge leaves a ``failed`` record. Net cancel
  (``/v1/payments/netcancel`` by ``orderId``, within an hour) undoes a committed charge
  or stops one still being processed; with nothing under the ``orderId`` it answers
  ``2012``. A cancel's ``orderId`` keys it (a reused one: ``2015``).
* **PortOne** — ``Idempotency-Key`` (RFC 8941 string) on POSTs, replayed like Toss's
  (``409 IDEMPOTENCY_OUTSTANDING_REQUEST`` while running); one ``paymentId`` is paid at
  most once (``409 ALREADY_PAID``); a refused charge leaves a ``FAILED`` payment; a cancel
  checks ``currentCancellableAmount`` (``CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN``).

Faults, one per money-moving request (charge, confirm, cancel, net cancel), taken in order from
``faults[provider]`` (``None``: behave):

==================  ========================================================================
``late``            the client's read timeout fires; the request commits ``commit_delay`` s
                    after that (lookups see it ``lookup_lag`` s after the commit)
``lost``            commits at once; the answer is lost (read timeout)
``hang``            read timeout; nothing is processed (the request died inside the provider)
``refuse``          connection refused: nothing reached the provider
``slow``            answers after most of the read timeout
``5xx_after``       commits, then the provider (or its gateway) answers HTTP 5xx
``5xx_before``      HTTP 5xx before anything is processed
``garbage_after``   commits, then answers 200 with an HTML page instead of JSON
``garbage_before``  200 with an HTML page; nothing processed
``decline``         the card is refused (charges only)
``crash_before``    the POS dies as it sends (:class:`Crash`); nothing reached the provider
``crash_after``     the request commits, then the POS dies before it reads the answer
``crash_late``      the POS dies while a late commit is still running at the provider
``journal_lost``    the request commits, and the POS's journal is closed under the running
                    Router before the answer arrives (``on_close``)
==================  ========================================================================

A provider in ``down`` refuses every connection (lookups too). Every error answer echoes
what the request carried — its ``Authorization`` value and its billing key — into every
string field except the few that carry the provider's code or ids (changing those would
change what the answer means), and Toss's also into its trace-id header; the HTML pages
quote them too. Secrets leaking anywhere then show.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from payfallback import ManualClock
from payfallback.testing.conformance import ConformanceKit
from tests.faults import adapters
from tests.faults.adapters import NICE, PORTONE, TOSS
from tests.faults.ledger import Cancel, Charge, Failure, Ledger

HOSTS = {"api.tosspayments.com": TOSS, "api.nicepay.co.kr": NICE, "api.portone.io": PORTONE}

#: Faults of a charge request; cancels and net cancels take the same except ``decline``.
CHARGE_FAULTS = (
    "late",
    "lost",
    "hang",
    "refuse",
    "slow",
    "5xx_after",
    "5xx_before",
    "garbage_after",
    "garbage_before",
    "decline",
    "crash_before",
    "crash_after",
    "crash_late",
    "journal_lost",
)
CANCEL_FAULTS = tuple(f for f in CHARGE_FAULTS if f != "decline")
CRASHES = frozenset({"crash_before", "crash_after", "crash_late", "journal_lost"})
#: NICEPAY's net cancel window (api/cancel.md: "망취소 유효기간은 1시간").
NET_CANCEL_WINDOW = 3600.0


class Crash(BaseException):
    """The POS process dies (power cut, kill -9): nothing after this point runs."""


@dataclass(frozen=True)
class Snapshot:
    """An answer kept for an idempotency key, rebuilt fresh on every replay."""

    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> Snapshot:
        return cls(response.status_code, tuple(response.headers.items()), response.content)

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=list(self.headers), content=self.content)


@dataclass
class Keyed:
    """What a provider remembers of an Idempotency-Key."""

    answer: Snapshot
    #: Until then the first request is still running: replays get "in progress".
    ready_at: float


@dataclass
class Processed:
    """A money-moving request the provider processed: its answer, and when its effect
    commits (None when the provider refused it and nothing moves)."""

    answer: httpx.Response
    commit: Callable[[float], None] | None = None


def _read_timeout(request: httpx.Request) -> float:
    timeout = request.extensions.get("timeout") or {}
    read = timeout.get("read") if isinstance(timeout, Mapping) else None
    return float(read) if isinstance(read, int | float) else 30.0


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        data = json.loads(request.content or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _path(request: httpx.Request) -> str:
    return request.url.raw_path.decode("ascii").split("?", 1)[0]


def _echoed(node: Any, text: str, keep: frozenset[str]) -> Any:
    if isinstance(node, dict):
        return {k: (v if k in keep else _echoed(v, text, keep)) for k, v in node.items()}
    if isinstance(node, list):
        return [_echoed(v, text, keep) for v in node]
    if isinstance(node, str):
        return node + text
    return node


@dataclass
class Emulator:
    """Toss Payments, NICEPAY and PortOne behind one ``httpx.MockTransport``."""

    clock: ManualClock
    commit_delay: float = 2.0
    lookup_lag: float = 10.0
    #: How long every answer takes.
    latency: float = 0.05
    echo_secrets: bool = True
    #: Faults for the coming money-moving requests, per provider, in order.
    faults: dict[str, list[str | None]] = field(default_factory=dict)
    #: Providers refusing every connection.
    down: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)
    #: What each request was, in order: "provider op fault" (for failure reports).
    trace: list[str] = field(default_factory=list)
    ledger: Ledger = field(init=False)
    keys: dict[tuple[str, str], Keyed] = field(default_factory=dict)
    serial: int = 0
    #: Error answers (and HTML pages) that quoted the request's secrets back.
    echoed: int = 0
    #: Called for ``journal_lost``: tears the running POS's journal down.
    on_close: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.clock)
        self._toss = _Toss(self)
        self._nice = _Nice(self)
        self._portone = _PortOne(self)

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    # -- HTTP ------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        provider = HOSTS.get(request.url.host)
        if provider is None:
            raise AssertionError(f"no provider at {request.url.host}")
        self.requests[provider] += 1
        if provider in self.down:
            self.trace.append(f"{provider} {request.method} {_path(request)} down")
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        self.clock.advance(self.latency)
        if provider == TOSS:
            return self._toss.handle(request)
        if provider == NICE:
            return self._nice.handle(request)
        return self._portone.handle(request)

    def toss_authenticate(self, attempt_id: str, amount: int) -> dict[str, str]:
        """The customer pays in Toss's payment window; the successUrl parameters."""
        return self._toss.authenticate(attempt_id, amount)

    def next_fault(self, provider: str) -> str | None:
        queue = self.faults.get(provider)
        return queue.pop(0) if queue else None

    def money(
        self,
        request: httpx.Request,
        provider: str,
        what: str,
        key: str | None,
        process: Callable[[], Processed],
        *,
        declined: Callable[[], httpx.Response] | None,
        server_error: Callable[[], httpx.Response],
        in_progress: Callable[[], httpx.Response] | None,
    ) -> httpx.Response:
        """One money-moving request under the next fault of ``provider``.

        ``process`` runs the provider's rules and returns the answer with the effect to
        commit (``commit(at)``); a known Idempotency-Key replays the first answer instead
        (``in_progress`` while the first request still runs).
        """
        fault = self.next_fault(provider)
        if fault == "decline" and declined is None:
            fault = None
        self.trace.append(f"{provider} {what} {fault or 'ok'}")
        read = _read_timeout(request)
        if fault == "refuse":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault == "crash_before":
            raise Crash(f"{provider} {what}: the POS died as it sent")
        known = self.keys.get((provider, key)) if key is not None else None
        if known is not None:
            replay = (
                known.answer.response()
                if self.now >= known.ready_at or in_progress is None
                else in_progress()
            )
            return self._deliver(request, provider, fault, read, replay, server_error)
        if fault == "hang":
            self.clock.advance(read)
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "5xx_before":
            return self.error(request, provider, server_error())
        if fault == "garbage_before":
            return self._garbage(request)
        if fault == "decline":
            assert declined is not None
            answer = declined()
            if key is not None:
                self.keys[(provider, key)] = Keyed(Snapshot.of(answer), self.now)
            return answer
        done = process()
        if fault in ("late", "crash_late"):
            self.clock.advance(read)
            at = self.now + self.commit_delay
        else:
            at = self.now
        if done.commit is not None:
            done.commit(at)
        if key is not None:
            self.keys[(provider, key)] = Keyed(Snapshot.of(done.answer), at)
        if fault == "late":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "crash_late":
            raise Crash(f"{provider} {what}: the POS died while the provider was committing")
        return self._deliver(request, provider, fault, read, done.answer, server_error)

    def _deliver(
        self,
        request: httpx.Request,
        provider: str,
        fault: str | None,
        read: float,
        answer: httpx.Response,
        server_error: Callable[[], httpx.Response],
    ) -> httpx.Response:
        """The answer of a processed request, as the fault lets it reach the client."""
        if fault in ("lost", "hang", "late"):
            self.clock.advance(read)
            raise httpx.ReadTimeout("timed out", request=request)
        if fault in ("crash_after", "crash_late"):
            raise Crash(f"{provider}: the POS died before it read the answer")
        if fault in ("5xx_after", "5xx_before"):
            return self.error(request, provider, server_error())
        if fault in ("garbage_after", "garbage_before"):
            return self._garbage(request)
        if fault == "slow":
            self.clock.advance(read * 0.6)
        if fault == "journal_lost" and self.on_close is not None:
            self.on_close()
        return answer

    # -- secrets echoed --------------------------------------------------------------------

    def echo(self, request: httpx.Request) -> str:
        """What a careless provider quotes back: everything the request carried."""
        sent = _body(request)
        key = sent.get("billingKey")
        return (
            f" (auth={request.headers.get('authorization')}"
            f" path={unquote(_path(request))} raw={_path(request)}"
            + (f" billingKey={key}" if isinstance(key, str) else "")
            + ")"
        )

    def error(
        self,
        request: httpx.Request,
        provider: str,
        answer: httpx.Response,
        keep: frozenset[str] = frozenset(),
    ) -> httpx.Response:
        """An error answer with every secret the request carried echoed into it."""
        if not self.echo_secrets:
            return answer
        self.echoed += 1
        text = self.echo(request)
        headers = dict(answer.headers)
        headers.pop("content-length", None)
        headers.pop("content-type", None)
        if provider == TOSS:
            headers["X-TossPayments-Trace-Id"] = "a1fc9b43d8f9c55f" + text.replace(" ", "_")
        try:
            data = answer.json()
        except ValueError:
            return httpx.Response(answer.status_code, headers=headers, text=answer.text + text)
        return httpx.Response(answer.status_code, headers=headers, json=_echoed(data, text, keep))

    def _garbage(self, request: httpx.Request) -> httpx.Response:
        quoted = self.echo(request) if self.echo_secrets else ""
        self.echoed += bool(quoted)
        return httpx.Response(
            200,
            text=f"<html><body><h1>502 Bad Gateway</h1><!-- {quoted} --></body></html>",
            headers={"Content-Type": "text/html"},
        )


class _Provider:
    name: str
    kit: ConformanceKit

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    @property
    def now(self) -> float:
        return self.emu.now

    @property
    def ledger(self) -> Ledger:
        return self.emu.ledger

    def authorised(self, request: httpx.Request) -> bool:
        expected = adapters.credentials()[self.name]["authorization"]
        return bool(request.headers.get("authorization") == expected)

    def new_charge(self, attempt_id: str, txn: str, amount: int, **extra: str) -> Charge:
        """A charge that has reached the provider; ``commit(at)`` fixes when it commits."""
        return Charge(
            provider=self.name,
            attempt_id=attempt_id,
            txn=txn,
            amount=amount,
            arrived_at=self.now,
            committed_at=float("inf"),
            visible_at=float("inf"),
            extra=dict(extra),
        )

    def committer(self, charge: Charge) -> Callable[[float], None]:
        def commit(at: float) -> None:
            charge.committed_at = at
            charge.visible_at = at + self.emu.lookup_lag
            if charge not in self.ledger.charges:
                self.ledger.add(charge)

        return commit

    def cancel_committer(self, charge: Charge, cancel: Cancel) -> Callable[[float], None]:
        def commit(at: float) -> None:
            cancel.at = at
            charge.cancels.append(cancel)

        return commit

    def visible(self, attempt_id: str) -> Charge | None:
        charge = self.ledger.by_attempt(self.name, attempt_id)
        return charge if charge is not None and charge.visible(self.now) else None

    def held(self, txn: str) -> Charge | None:
        """A committed charge by its transaction id (known only from an answer)."""
        charge = self.ledger.by_txn(self.name, txn)
        return charge if charge is not None and charge.committed(self.now) else None


# -- Toss Payments -------------------------------------------------------------------------

_TOSS_BILLING = re.compile(r"^/v1/billing/(?P<key>[^/]+)$")
_TOSS_BY_ORDER = re.compile(r"^/v1/payments/orders/(?P<order>[^/]+)$")
_TOSS_CANCEL = re.compile(r"^/v1/payments/(?P<key>[^/]+)/cancel$")
_TOSS_BY_KEY = re.compile(r"^/v1/payments/(?P<key>[^/]+)$")
_TOSS_KEEP = frozenset({"code"})
#: Toss expires an authenticated payment not confirmed within 10 minutes
#: (``TossPayments.CONFIRM_WINDOW``): IN_PROGRESS → EXPIRED, and a late confirm is
#: answered ``NOT_FOUND_PAYMENT_SESSION``.
TOSS_CONFIRM_WINDOW = 600.0


@dataclass
class TossSession:
    """A customer authenticated in Toss's payment window: a paymentKey awaiting confirm."""

    payment_key: str
    attempt_id: str
    amount: int
    authed_at: float
    #: The confirm was refused (card company): Toss records the payment ABORTED.
    aborted: bool = False


class _Toss(_Provider):
    name = TOSS

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.kit = adapters.kit("tosspayments_kit", "TossBillingKit")
        self.load = adapters.loader("tosspayments_support")
        self.trace_id = str(adapters.helper("tosspayments_support").TRACE)
        self.sessions: dict[str, TossSession] = {}

    def _answer(self, status: int, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"X-TossPayments-Trace-Id": self.trace_id})

    def _error(
        self, request: httpx.Request, status: int, code: str, message: str
    ) -> httpx.Response:
        return self.emu.error(
            request, TOSS, self._answer(status, {"code": code, "message": message}), _TOSS_KEEP
        )

    def _not_found(self, request: httpx.Request) -> httpx.Response:
        return self._error(request, 404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")

    def payment(self, charge: Charge) -> httpx.Response:
        """The Payment object of ``charge`` as it stands now."""
        now = self.now
        cancelled = charge.cancelled(now)
        cancels = [c for c in charge.cancels if c.at <= now]
        status = (
            "DONE"
            if cancelled == 0
            else "CANCELED"
            if cancelled >= charge.amount and len(cancels) == 1
            else "PARTIAL_CANCELED"
        )
        left = charge.amount
        records = []
        for c in cancels:
            left -= c.amount
            records.append(
                {
                    "transactionKey": c.cancel_id,
                    "cancelReason": c.reason or "고객 변심",
                    "taxExemptionAmount": 0,
                    "canceledAt": "2022-10-15T15:31:00+09:00",
                    "transferDiscountAmount": 0,
                    "easyPayDiscountAmount": 0,
                    "receiptKey": None,
                    "cancelAmount": c.amount,
                    "taxFreeAmount": c.tax_free,
                    "refundableAmount": left,
                    "cancelStatus": "DONE",
                    "cancelRequestId": None,
                }
            )
        body = self.load(
            charge.extra.get("payload", "payment_done_billing"),
            paymentKey=charge.txn,
            orderId=charge.attempt_id,
            totalAmount=charge.amount,
            balanceAmount=charge.amount - cancelled,
            status=status,
            cancels=records or None,
        )
        return self._answer(200, body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = _path(request)
        if not self.authorised(request):
            return self.emu.error(request, TOSS, self.kit.bad_credentials_response(request))
        if request.method == "POST" and path == "/v1/payments/confirm":
            return self._confirm(request)
        if request.method == "POST" and (m := _TOSS_BILLING.match(path)):
            return self._charge(request, unquote(m["key"]))
        if request.method == "POST" and (m := _TOSS_CANCEL.match(path)):
            return self._cancel(request, unquote(m["key"]))
        if request.method == "GET" and (m := _TOSS_BY_ORDER.match(path)):
            attempt_id = unquote(m["order"])
            charge = self.visible(attempt_id)
            if charge is not None:
                return self.payment(charge)
            session = next((x for x in self.sessions.values() if x.attempt_id == attempt_id), None)
            return self._session(request, session)
        if request.method == "GET" and (m := _TOSS_BY_KEY.match(path)):
            key = unquote(m["key"])
            found = self.ledger.by_txn(TOSS, key)
            if found is not None and found.visible(self.now):
                return self.payment(found)
            return self._session(request, self.sessions.get(key))
        raise AssertionError(f"not a Toss API: {request.method} {path}")

    def _in_progress(self, request: httpx.Request) -> httpx.Response:
        answer = self.kit.replay_in_progress_response(request)
        assert answer is not None
        return self.emu.error(request, TOSS, answer, _TOSS_KEEP)

    # -- the payment window ------------------------------------------------------------

    def authenticate(self, attempt_id: str, amount: int) -> dict[str, str]:
        """The customer pays in Toss's window for the checkout ``attempt_id``; what Toss
        appends to successUrl."""
        key = f"tviewer{self.emu.next_serial():06d}{zlib.crc32(attempt_id.encode()):08x}"
        self.sessions[key] = TossSession(key, attempt_id, amount, self.now)
        return {
            "paymentKey": key,
            "orderId": attempt_id,
            "amount": str(amount),
            "paymentType": "NORMAL",
        }

    def _session(self, request: httpx.Request, session: TossSession | None) -> httpx.Response:
        """A lookup of a payment Toss has no visible approval of: authenticated and not
        (visibly) confirmed yet, expired, aborted — or nothing at all."""
        if session is None:
            return self._not_found(request)
        committed = self.ledger.by_txn(TOSS, session.payment_key)
        payload = "payment_in_progress"
        if session.aborted:
            payload = "payment_aborted"
        elif committed is None and self.now - session.authed_at > TOSS_CONFIRM_WINDOW:
            payload = "payment_expired"
        body = self.load(
            payload,
            paymentKey=session.payment_key,
            orderId=session.attempt_id,
            totalAmount=session.amount,
            balanceAmount=session.amount,
        )
        return self._answer(200, body)

    def _confirm(self, request: httpx.Request) -> httpx.Response:
        sent = _body(request)
        payment_key, attempt_id = str(sent.get("paymentKey")), str(sent.get("orderId"))
        amount = int(sent.get("amount") or 0)
        key = request.headers.get("idempotency-key")
        session = self.sessions.get(payment_key)

        def process() -> Processed:
            if session is None or session.attempt_id != attempt_id:
                return Processed(self._not_found(request))
            if self.ledger.by_txn(TOSS, payment_key) is not None:
                return Processed(
                    self._error(
                        request, 400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다."
                    )
                )
            if session.aborted or self.now - session.authed_at > TOSS_CONFIRM_WINDOW:
                return Processed(
                    self._error(
                        request,
                        404,
                        "NOT_FOUND_PAYMENT_SESSION",
                        "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
                    )
                )
            if amount != session.amount:
                return Processed(self._error(request, 400, "INVALID_REQUEST", "잘못된 요청입니다."))
            charge = self.new_charge(attempt_id, payment_key, amount, payload="payment_done_card")
            body = self.load(
                "payment_done_card",
                paymentKey=payment_key,
                orderId=attempt_id,
                totalAmount=amount,
                balanceAmount=amount,
                status="DONE",
            )
            return Processed(self._answer(200, body), self.committer(charge))

        def declined() -> httpx.Response:
            if session is not None:
                session.aborted = True
            return self.emu.error(request, TOSS, self.kit.decline_response(request), _TOSS_KEEP)

        return self.emu.money(
            request,
            TOSS,
            "confirm",
            key,
            process,
            declined=declined,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=lambda: self._in_progress(request),
        )

    # -- billing -----------------------------------------------------------------------

    def _charge(self, request: httpx.Request, billing_key: str) -> httpx.Response:
        sent = _body(request)
        attempt_id, amount = str(sent["orderId"]), int(sent["amount"])
        creds = adapters.credentials()[TOSS]
        key = request.headers.get("idempotency-key")

        def process() -> Processed:
            if (
                billing_key != creds["billing_key"]
                or sent.get("customerKey") != creds["customer_key"]
            ):
                return Processed(
                    self._error(
                        request, 404, "NOT_FOUND_BILLING", "존재하지 않는 빌링 정보 입니다."
                    )
                )
            if self.ledger.by_attempt(TOSS, attempt_id) is not None:
                return Processed(
                    self._error(
                        request, 400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다."
                    )
                )
            serial = self.emu.next_serial()
            txn = f"tbill{serial:06d}{zlib.crc32(attempt_id.encode()):08x}"
            charge = self.new_charge(attempt_id, txn, amount)
            answer = self.kit.paid_response(request, txn_id=txn, amount=amount)
            return Processed(answer, self.committer(charge))

        return self.emu.money(
            request,
            TOSS,
            "charge",
            key,
            process,
            declined=lambda: self.emu.error(
                request, TOSS, self.kit.decline_response(request), _TOSS_KEEP
            ),
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=lambda: self._in_progress(request),
        )

    def _cancel(self, request: httpx.Request, payment_key: str) -> httpx.Response:
        sent = _body(request)
        key = request.headers.get("idempotency-key")

        def process() -> Processed:
            charge = self.held(payment_key)
            if charge is None:
                return Processed(self._not_found(request))
            balance = charge.balance(self.now)
            amount = int(sent.get("cancelAmount") or balance)
            guard = sent.get("refundableAmount")
            if balance == 0:
                return Processed(
                    self._error(
                        request, 400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다."
                    )
                )
            if guard is not None and int(guard) != balance:
                return Processed(
                    self._error(
                        request,
                        400,
                        "NOT_MATCHES_REFUNDABLE_AMOUNT",
                        "잔액 결과가 일치하지 않습니다.",
                    )
                )
            if amount > balance:
                return Processed(
                    self._error(
                        request, 403, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다."
                    )
                )
            cancel = Cancel(
                amount=amount,
                at=float("inf"),
                cancel_id=f"tcancel{self.emu.next_serial():08d}",
                key=key,
                reason=str(sent.get("cancelReason") or ""),
                tax_free=int(sent.get("taxFreeAmount") or 0),
            )
            # The answer is the payment with this cancel done, as Toss sends it.
            charge.cancels.append(cancel)
            cancel.at = self.now
            answer = self.payment(charge)
            charge.cancels.remove(cancel)
            return Processed(answer, self.cancel_committer(charge, cancel))

        return self.emu.money(
            request,
            TOSS,
            "cancel",
            key,
            process,
            declined=None,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=lambda: self._in_progress(request),
        )


# -- NICEPAY -------------------------------------------------------------------------------

_NICE_KEEP = frozenset(
    {"resultCode", "status", "tid", "orderId", "signature", "ediDate", "cancelledTid", "currency"}
)


class _Nice(_Provider):
    name = NICE

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.kit = adapters.kit("nicepay_kit", "NicepayBillingKit")
        module = adapters.helper("nicepay_kit")
        self.payment_object: Callable[..., dict[str, Any]] = module.payment_object
        self.load = adapters.loader("nicepay_support")

    def _json(self, body: dict[str, Any], status: int = 200) -> httpx.Response:
        return httpx.Response(
            status, json=body, headers={"Content-Type": "application/json;charset=utf-8"}
        )

    def _error(self, request: httpx.Request, code: str, message: str) -> httpx.Response:
        body = {"resultCode": code, "resultMsg": message}
        return self.emu.error(request, NICE, self._json(body), _NICE_KEEP)

    def payment(self, charge: Charge) -> httpx.Response:
        now = self.now
        cancelled = charge.cancelled(now)
        status = (
            "paid"
            if cancelled == 0
            else "cancelled"
            if cancelled >= charge.amount
            else "partialCancelled"
        )
        cancels = [
            {
                "tid": c.cancel_id,
                "amount": c.amount,
                "cancelledAt": "2022-10-15T15:31:00.000+0900",
                "reason": c.reason,
                "receiptUrl": None,
                "couponAmt": 0,
            }
            for c in charge.cancels
            if c.at <= now
        ]
        body = self.payment_object(
            tid=charge.txn,
            amount=charge.amount,
            status=status,
            order_id=charge.attempt_id,
            balance=charge.amount - cancelled,
            cancels=cancels or None,
            cancelledTid=cancels[-1]["tid"] if cancels else None,
        )
        return self._json(body)

    def _failed(self, failure: Failure) -> httpx.Response:
        body = self.payment_object(
            tid=failure.txn,
            amount=failure.amount,
            status="failed",
            order_id=failure.attempt_id,
            balance=0,
            card=None,
        )
        return self._json(body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not self.authorised(request):
            return self.emu.error(request, NICE, self.kit.bad_credentials_response(request))
        if request.method == "POST" and path.startswith("/v1/subscribe/"):
            return self._charge(request, unquote(path.split("/")[3]))
        if request.method == "POST" and path == "/v1/payments/netcancel":
            return self._net_cancel(request)
        if request.method == "POST" and path.endswith("/cancel"):
            return self._cancel(request, unquote(path.split("/")[3]))
        if request.method == "GET" and path.startswith("/v1/payments/find/"):
            return self._lookup(request, self.ledger.by_attempt(NICE, unquote(path.split("/")[4])))
        if request.method == "GET" and path.startswith("/v1/payments/"):
            return self._lookup(request, self.ledger.by_txn(NICE, unquote(path.split("/")[3])))
        raise AssertionError(f"not a NICEPAY API: {request.method} {path}")

    def _lookup(self, request: httpx.Request, charge: Charge | None) -> httpx.Response:
        if charge is not None and (charge.visible(self.now) or charge.stopped):
            # A net-cancelled charge shows as cancelled, whether it had committed or not.
            return self.payment(charge)
        if charge is None and request.url.path.startswith("/v1/payments/find/"):
            failure = self.ledger.failures.get((NICE, unquote(request.url.path.split("/")[4])))
            if failure is not None:
                return self._failed(failure)
        return self._error(request, "A118", "조회 결과데이터 없음")

    def _charge(self, request: httpx.Request, bid: str) -> httpx.Response:
        sent = _body(request)
        attempt_id, amount = str(sent["orderId"]), int(sent["amount"])

        def process() -> Processed:
            if bid != adapters.credentials()[NICE]["billing_key"]:
                return Processed(
                    self._error(request, "F112", "유효하지않은 카드번호를 입력하셨습니다")
                )
            if self.ledger.by_attempt(NICE, attempt_id) is not None:
                return Processed(self._error(request, "A127", "주문번호 중복 오류"))
            serial = self.emu.next_serial()
            charge = self.new_charge(attempt_id, f"nictest04m0116T{serial:07d}B", amount)
            return Processed(self.payment_paid(charge), self.committer(charge))

        def declined() -> httpx.Response:
            serial = self.emu.next_serial()
            failure = Failure(NICE, attempt_id, f"nictest04m0116T{serial:07d}D", amount, self.now)
            self.ledger.failures[(NICE, attempt_id)] = failure
            return self.emu.error(request, NICE, self.kit.decline_response(request), _NICE_KEEP)

        return self.emu.money(
            request,
            NICE,
            "charge",
            None,
            process,
            declined=declined,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=None,
        )

    def payment_paid(self, charge: Charge) -> httpx.Response:
        body = self.payment_object(tid=charge.txn, amount=charge.amount, order_id=charge.attempt_id)
        return self._json(body)

    def _net_cancel(self, request: httpx.Request) -> httpx.Response:
        attempt_id = str(_body(request).get("orderId"))

        def process() -> Processed:
            charge = self.ledger.by_attempt(NICE, attempt_id)
            if charge is None or charge.stopped:
                return Processed(self._error(request, "2012", "취소 해당거래 없음"))
            if self.now - charge.arrived_at > NET_CANCEL_WINDOW:
                return Processed(self._error(request, "2020", "망상 취소 허용시간 초과"))
            balance = charge.balance(self.now)
            if charge.committed(self.now) and balance == 0:
                return Processed(self._error(request, "2013", "취소 완료 거래"))
            cancel = Cancel(
                amount=balance if charge.committed(self.now) else charge.amount,
                at=self.now,
                cancel_id=charge.txn,
                reason="망취소",
            )
            if not charge.committed(self.now):
                # Still being processed: stopped, it never commits.
                charge.stopped = True
                if charge not in self.ledger.charges:
                    self.ledger.add(charge)
            charge.cancels.append(cancel)
            body = self.payment_object(
                tid=charge.txn,
                amount=charge.amount,
                status="cancelled",
                order_id=attempt_id,
                balance=0,
                cancelledTid=charge.txn,
                cancels=[
                    {
                        "tid": charge.txn,
                        "amount": cancel.amount,
                        "cancelledAt": "2022-10-15T15:31:00.000+0900",
                        "reason": "망취소",
                        "receiptUrl": None,
                        "couponAmt": 0,
                    }
                ],
            )
            return Processed(self._json(body))

        return self.emu.money(
            request,
            NICE,
            "netcancel",
            None,
            process,
            declined=None,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=None,
        )

    def _cancel(self, request: httpx.Request, tid: str) -> httpx.Response:
        sent = _body(request)
        key = str(sent.get("orderId"))

        def process() -> Processed:
            charge = self.held(tid)
            if charge is None:
                return Processed(self._error(request, "2012", "취소 해당거래 없음"))
            if any(c.key == key for c in charge.cancels):
                return Processed(self._error(request, "2015", "기 취소 요청"))
            balance = charge.balance(self.now)
            if balance == 0:
                return Processed(self._error(request, "2013", "취소 완료 거래"))
            amount = int(sent.get("cancelAmt") or balance)  # no cancelAmt: all that is left
            if amount > balance:
                return Processed(self._error(request, "2032", "취소금액이 취소가능금액보다 큼"))
            cancel = Cancel(
                amount=amount,
                at=float("inf"),
                cancel_id=f"{tid[:-1]}C{self.emu.next_serial():04d}",
                key=key,
                reason=str(sent.get("reason") or ""),
                tax_free=int(sent.get("taxFreeAmt") or 0),
            )
            charge.cancels.append(cancel)
            cancel.at = self.now
            answer = self.payment(charge)
            charge.cancels.remove(cancel)
            return Processed(answer, self.cancel_committer(charge, cancel))

        return self.emu.money(
            request,
            NICE,
            "cancel",
            None,
            process,
            declined=None,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=None,
        )


# -- PortOne -------------------------------------------------------------------------------

_PORTONE_KEEP = frozenset({"type", "pgCode", "status", "id"})


def _sf_string(value: str | None) -> str | None:
    """An RFC 8941 sf-string header value, unquoted."""
    if value is None:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


class _PortOne(_Provider):
    name = PORTONE

    def __init__(self, emu: Emulator) -> None:
        super().__init__(emu)
        self.kit = adapters.kit("portone_kit", "PortOneBillingKit")
        module = adapters.helper("portone_kit")
        self.paid_payment: Callable[..., dict[str, Any]] = module.paid_payment
        self.failed_payment: Callable[..., dict[str, Any]] = module.failed_payment
        self.load = adapters.loader("portone_support")

    def _error(self, request: httpx.Request, status: int, name: str) -> httpx.Response:
        return self.emu.error(
            request, PORTONE, httpx.Response(status, json=self.load(name)), _PORTONE_KEEP
        )

    def payment(self, request: httpx.Request, charge: Charge) -> httpx.Response:
        now = self.now
        cancelled = charge.cancelled(now)
        body = self.paid_payment(
            request, txn_id=charge.extra["transactionId"], amount=charge.amount
        )
        body["id"] = charge.attempt_id
        body["pgTxId"] = charge.extra["pgTxId"]
        body["amount"]["cancelled"] = cancelled
        if cancelled:
            body["status"] = "CANCELLED" if cancelled >= charge.amount else "PARTIAL_CANCELLED"
            body["cancelledAt"] = "2025-03-15T01:00:00Z"
            body["cancellations"] = [
                {
                    "status": "SUCCEEDED",
                    "id": c.cancel_id,
                    "pgCancellationId": c.cancel_id,
                    "totalAmount": c.amount,
                    "taxFreeAmount": c.tax_free,
                    "vatAmount": c.amount // 11,
                    "reason": c.reason,
                    "cancelledAt": "2025-03-15T01:00:00Z",
                    "requestedAt": "2025-03-15T01:00:00Z",
                    "trigger": "API",
                }
                for c in charge.cancels
                if c.at <= now
            ]
        return httpx.Response(200, json=body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if not self.authorised(request):
            return self.emu.error(request, PORTONE, self.kit.bad_credentials_response(request))
        if len(parts) < 3 or parts[1] != "payments":
            raise AssertionError(f"not a PortOne API: {request.method} {request.url.path}")
        payment_id = unquote(parts[2])
        if request.method == "GET" and len(parts) == 3:
            charge = self.visible(payment_id)
            if charge is not None:
                return self.payment(request, charge)
            failure = self.ledger.failures.get((PORTONE, payment_id))
            if failure is not None and self.ledger.by_attempt(PORTONE, payment_id) is None:
                body = self.failed_payment(
                    request,
                    pg_code="REJECT_CARD_COMPANY",
                    pg_message="[RC02] 한도초과 또는 잔액부족",
                )
                body["amount"]["total"] = failure.amount
                return httpx.Response(200, json=body)
            return self._error(request, 404, "error_payment_not_found")
        if request.method == "POST" and parts[-1] == "billing-key":
            return self._charge(request, payment_id)
        if request.method == "POST" and parts[-1] == "cancel":
            return self._cancel(request, payment_id)
        raise AssertionError(f"not a PortOne API: {request.method} {request.url.path}")

    def _in_progress(self, request: httpx.Request) -> httpx.Response:
        answer = self.kit.replay_in_progress_response(request)
        assert answer is not None
        return self.emu.error(request, PORTONE, answer, _PORTONE_KEEP)

    def _charge(self, request: httpx.Request, payment_id: str) -> httpx.Response:
        sent = _body(request)
        amount = int(sent["amount"]["total"])
        key = _sf_string(request.headers.get("idempotency-key"))

        def process() -> Processed:
            if sent.get("billingKey") != adapters.credentials()[PORTONE]["billing_key"]:
                return Processed(self._error(request, 404, "error_payment_not_found"))
            if self.ledger.by_attempt(PORTONE, payment_id) is not None:
                return Processed(self._error(request, 409, "error_already_paid"))
            serial = self.emu.next_serial()
            charge = self.new_charge(
                payment_id,
                payment_id,
                amount,
                pgTxId=f"tgen_{serial:08d}",
                transactionId=f"01936a8b-6c31-3c5b-a9e0-{serial:012d}",
            )
            answer = self.kit.paid_response(request, txn_id=charge.extra["pgTxId"], amount=amount)
            return Processed(answer, self.committer(charge))

        def declined() -> httpx.Response:
            self.ledger.failures[(PORTONE, payment_id)] = Failure(
                PORTONE, payment_id, payment_id, amount, self.now
            )
            return self.emu.error(
                request, PORTONE, self.kit.decline_response(request), _PORTONE_KEEP
            )

        return self.emu.money(
            request,
            PORTONE,
            "charge",
            key,
            process,
            declined=declined,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=lambda: self._in_progress(request),
        )

    def _cancel(self, request: httpx.Request, payment_id: str) -> httpx.Response:
        sent = _body(request)
        key = _sf_string(request.headers.get("idempotency-key"))

        def process() -> Processed:
            charge = self.held(payment_id)
            if charge is None:
                return Processed(self._error(request, 404, "error_payment_not_found"))
            balance = charge.balance(self.now)
            amount = int(sent.get("amount") or balance)
            guard = sent.get("currentCancellableAmount")
            if balance == 0:
                return Processed(
                    self.emu.error(
                        request,
                        PORTONE,
                        httpx.Response(
                            409,
                            json={
                                "type": "PAYMENT_ALREADY_CANCELLED",
                                "message": "결제가 이미 취소되었습니다.",
                            },
                        ),
                        _PORTONE_KEEP,
                    )
                )
            if guard is not None and int(guard) != balance:
                return Processed(
                    self.emu.error(
                        request,
                        PORTONE,
                        httpx.Response(
                            409,
                            json={
                                "type": "CANCELLABLE_AMOUNT_CONSISTENCY_BROKEN",
                                "message": "취소 가능 잔액 검증에 실패했습니다.",
                            },
                        ),
                        _PORTONE_KEEP,
                    )
                )
            cancel = Cancel(
                amount=min(amount, balance),
                at=float("inf"),
                cancel_id=f"01936a8c-{self.emu.next_serial():04d}",
                key=key,
                reason=str(sent.get("reason") or ""),
                tax_free=int(sent.get("taxFreeAmount") or 0),
            )
            answer = self.kit.cancel_response(
                request, txn_id=payment_id, amount=cancel.amount, remaining=balance - cancel.amount
            )
            return Processed(answer, self.cancel_committer(charge, cancel))

        return self.emu.money(
            request,
            PORTONE,
            "cancel",
            key,
            process,
            declined=None,
            server_error=lambda: self.kit.server_error_response(request),
            in_progress=lambda: self._in_progress(request),
        )


__all__ = [
    "CANCEL_FAULTS",
    "CHARGE_FAULTS",
    "CRASHES",
    "Crash",
    "Emulator",
]
