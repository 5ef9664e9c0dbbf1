"""A provider emulator with an authoritative ledger, for the fault suite.

It answers the real adapters (Toss Payments billing, NICEPAY billing) at the HTTP layer,
with the payloads of the adapters' own tests, on a manual clock, and it can misbehave the
way providers do on a bad Saturday:

========================  ============================================================
fault                     what the provider does with one charge request
========================  ============================================================
``late``                  the client's read timeout fires; the charge commits
                          ``commit_delay`` s later, and lookups say "not found" until
                          ``lookup_lag`` s after the commit
``lost``                  commits at once, the answer is lost (read timeout)
``hang``                  read timeout; never commits (the request died in the provider)
``refuse``                connection refused: nothing reached the provider
``error_after``           commits, then answers HTTP 500
``garbage``               commits, then answers 200 with an HTML error page
``decline``               the card is refused
``crash``                 commits, then the client process dies (:class:`Crash`)
========================  ============================================================

The ledger is the truth: every committed charge and cancel, by provider. Same-key
replays follow Toss's documented idempotency (``409 IDEMPOTENT_REQUEST_PROCESSING`` while
the first request runs, then its answer); NICEPAY's net cancel undoes a committed charge
or stops one still being processed, and answers "no such transaction" when nothing came.
Every error answer echoes what the request carried — its Authorization header and its
path, with the billing key — into its message, so secrets leaking anywhere show.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from payfallback_nicepay._wire import response_signature

from payfallback import ManualClock

ADAPTERS = Path(__file__).resolve().parent.parent / "adapters"

#: The NICEPAY key pair the emulator signs its payment objects with (made up).
NICE_CLIENT_KEY = "S2_0a1b2c3d4e5f40718293a4b5c6d7e8f9"
NICE_SECRET = "0f1e2d3c4b5a49687766554433221100"
EDI_DATE = "2022-10-15T15:30:01.000+0900"


def _payload(adapter: str, name: str) -> dict[str, Any]:
    """A payload file of an adapter's own tests (the documented answer), fresh each call."""
    path = ADAPTERS / adapter / "tests" / "payloads" / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def payment_object(
    *, tid: str, amount: int, status: str, order_id: str, balance: int
) -> dict[str, Any]:
    """NICEPAY's payment object (api/status-transaction.md), signed as NICEPAY signs it."""
    body = _payload("nicepay", "billing_paid")
    body.update(
        tid=tid,
        orderId=order_id,
        amount=amount,
        balanceAmt=balance,
        status=status,
        ediDate=EDI_DATE,
        cancelledAt=EDI_DATE if status in ("partialCancelled", "cancelled") else "0",
        signature=response_signature(
            tid=tid, amount=amount, edi_date=EDI_DATE, secret_key=NICE_SECRET
        ),
    )
    return body


def toss_payload(name: str, **fields: Any) -> dict[str, Any]:
    body = _payload("tosspayments", name)
    body.update(fields)
    return body


TOSS = "api.tosspayments.com"
NICE = "api.nicepay.co.kr"
FAULTS = ("late", "lost", "hang", "refuse", "error_after", "garbage", "decline", "crash")


class Crash(BaseException):
    """The client process dies (power cut, kill -9): nothing after this point runs."""


@dataclass
class Charge:
    provider: str
    attempt_id: str
    txn: str
    amount: int
    committed_at: float
    cancelled: int = 0

    @property
    def order_id(self) -> str:
        return self.attempt_id.rsplit("_", 1)[0]

    @property
    def live(self) -> bool:
        return self.cancelled < self.amount


@dataclass
class Emulator:
    clock: ManualClock
    commit_delay: float = 2.0
    lookup_lag: float = 10.0
    #: Faults for the coming charge requests, per provider, in order (None: behave).
    faults: dict[str, list[str | None]] = field(default_factory=dict)
    charges: dict[tuple[str, str], Charge] = field(default_factory=dict)
    pending: dict[tuple[str, str], Charge] = field(default_factory=dict)
    #: Net-cancelled before they committed: they never will.
    stopped: set[tuple[str, str]] = field(default_factory=set)
    toss_keys: dict[str, tuple[str, httpx.Response | None]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    # -- the ledger ------------------------------------------------------------------------

    def settle(self) -> None:
        now = self.clock.monotonic()
        for key, charge in list(self.pending.items()):
            if charge.committed_at <= now:
                del self.pending[key]
                if key not in self.stopped:
                    self.charges[key] = charge

    def live(self) -> list[Charge]:
        self.settle()
        return [c for c in self.charges.values() if c.live]

    def live_by_order(self) -> dict[str, list[Charge]]:
        out: dict[str, list[Charge]] = {}
        for charge in self.live():
            out.setdefault(charge.order_id, []).append(charge)
        return out

    # -- HTTP ------------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.settle()
        host = request.url.host
        self.requests[host] += 1
        if host == TOSS:
            return self._toss(request)
        if host == NICE:
            return self._nice(request)
        raise AssertionError(f"no provider at {host}")

    def _fault(self, provider: str) -> str | None:
        queue = self.faults.get(provider)
        return queue.pop(0) if queue else None

    def _echo(self, request: httpx.Request) -> str:
        # What a careless provider puts in its error text: whatever it was sent.
        return f" (auth={request.headers.get('authorization')} path={request.url.raw_path!r})"

    def _commit(self, provider: str, attempt_id: str, amount: int, delay: float) -> Charge:
        self.serial += 1
        txn = (
            f"tbill{self.serial:08d}{attempt_id.replace('-', '').replace('_', '')}"
            if provider == "tosspayments"
            else f"nictest04m0116{self.serial:016d}"
        )
        charge = Charge(provider, attempt_id, txn, amount, self.clock.monotonic() + delay)
        if delay > 0:
            self.pending[(provider, attempt_id)] = charge
        else:
            self.charges[(provider, attempt_id)] = charge
        return charge

    def _visible(self, provider: str, attempt_id: str) -> Charge | None:
        charge = self.charges.get((provider, attempt_id))
        if charge is None or self.clock.monotonic() < charge.committed_at + self.lookup_lag:
            return None
        return charge

    def _charge_with_fault(
        self,
        request: httpx.Request,
        provider: str,
        attempt_id: str,
        amount: int,
        paid: Callable[[Charge], httpx.Response],
        declined: Callable[[], httpx.Response],
    ) -> httpx.Response:
        fault = self._fault(provider)
        if fault == "refuse":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault == "hang":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "decline":
            return declined()
        charge = self._commit(
            provider, attempt_id, amount, self.commit_delay if fault == "late" else 0.0
        )
        answer: httpx.Response = paid(charge)
        if fault == "late":
            if provider == "tosspayments":
                self.toss_keys[request.headers["idempotency-key"]] = (attempt_id, answer)
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "lost":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "error_after":
            return httpx.Response(500, text="Internal Server Error" + self._echo(request))
        if fault == "garbage":
            return httpx.Response(200, text="<html><body>502 Bad Gateway</body></html>")
        if fault == "crash":
            raise Crash(attempt_id)
        return answer

    # -- Toss Payments ---------------------------------------------------------------------

    def _toss_error(
        self, request: httpx.Request, status: int, code: str, message: str
    ) -> httpx.Response:
        return httpx.Response(status, json={"code": code, "message": message + self._echo(request)})

    def _toss_paid(self, charge: Charge) -> httpx.Response:
        body = toss_payload(
            "payment_done_billing",
            paymentKey=charge.txn,
            orderId=charge.attempt_id,
            totalAmount=charge.amount,
            balanceAmount=charge.amount - charge.cancelled,
        )
        body["status"] = "DONE" if charge.cancelled == 0 else "PARTIAL_CANCELED"
        if charge.cancelled >= charge.amount:
            body["status"] = "CANCELED"
        return httpx.Response(200, json=body)

    def _toss(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if request.method == "POST" and path.startswith("/v1/billing/"):
            body = json.loads(request.content)
            attempt_id, amount = body["orderId"], body["amount"]
            key = request.headers["idempotency-key"]
            if key in self.toss_keys:  # Toss replays what it answered (or is answering)
                first_attempt, stored = self.toss_keys[key]
                if (self.charges.get(("tosspayments", first_attempt)) is None) and (
                    ("tosspayments", first_attempt) in self.pending
                ):
                    return self._toss_error(
                        request,
                        409,
                        "IDEMPOTENT_REQUEST_PROCESSING",
                        "이전 멱등 요청이 처리중입니다.",
                    )
                assert stored is not None
                return stored
            answer = self._charge_with_fault(
                request,
                "tosspayments",
                attempt_id,
                amount,
                self._toss_paid,
                lambda: self._toss_error(
                    request, 403, "REJECT_CARD_COMPANY", "결제 승인이 거절되었습니다."
                ),
            )
            self.toss_keys[key] = (attempt_id, answer)
            return answer
        if request.method == "GET" and path.startswith("/v1/payments/orders/"):
            attempt_id = unquote(path.rsplit("/", 1)[1])
            charge = self._visible("tosspayments", attempt_id)
            if charge is None:
                return self._toss_error(
                    request, 404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."
                )
            return self._toss_paid(charge)
        if request.method == "GET" and path.startswith("/v1/payments/"):
            txn = unquote(path.rsplit("/", 1)[1])
            for charge in self.charges.values():
                if charge.txn == txn:
                    return self._toss_paid(charge)
            return self._toss_error(
                request, 404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."
            )
        if request.method == "POST" and path.endswith("/cancel"):
            txn = unquote(path.split("/")[3])
            body = json.loads(request.content)
            for charge in self.charges.values():
                if charge.txn == txn:
                    charge.cancelled += int(body["cancelAmount"])
                    return self._toss_cancelled(charge, int(body["cancelAmount"]))
            return self._toss_error(
                request, 404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."
            )
        raise AssertionError(f"not a Toss call: {request.method} {path}")

    def _toss_cancelled(self, charge: Charge, amount: int) -> httpx.Response:
        answer = self._toss_paid(charge)
        body = answer.json()
        body["cancels"] = [
            {
                "transactionKey": f"cancel{charge.txn}",
                "cancelReason": "고객 변심",
                "cancelAmount": amount,
                "taxFreeAmount": 0,
                "refundableAmount": charge.amount - charge.cancelled,
                "canceledAt": "2022-10-15T15:31:00+09:00",
                "cancelStatus": "DONE",
            }
        ]
        return httpx.Response(200, json=body)

    # -- NICEPAY ---------------------------------------------------------------------------

    def _nice_paid(self, charge: Charge) -> httpx.Response:
        left = charge.amount - charge.cancelled
        status = "paid" if charge.cancelled == 0 else "partialCancelled"
        if left == 0:
            status = "cancelled"
        body = payment_object(
            tid=charge.txn,
            amount=charge.amount,
            status=status,
            order_id=charge.attempt_id,
            balance=left,
        )
        return httpx.Response(200, json=body)

    def _nice_error(self, request: httpx.Request, code: str, message: str) -> httpx.Response:
        return httpx.Response(
            200, json={"resultCode": code, "resultMsg": message + self._echo(request)}
        )

    def _nice(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.startswith("/v1/subscribe/"):
            body = json.loads(request.content)
            attempt_id, amount = body["orderId"], body["amount"]
            return self._charge_with_fault(
                request,
                "nicepay",
                attempt_id,
                amount,
                self._nice_paid,
                lambda: self._nice_error(request, "3011", "카드번호 오류"),
            )
        if request.method == "GET" and path.startswith("/v1/payments/find/"):
            attempt_id = unquote(path.rsplit("/", 1)[1])
            charge = self._visible("nicepay", attempt_id)
            if charge is None:
                return self._nice_error(request, "A118", "조회 결과데이터 없음")
            return self._nice_paid(charge)
        if request.method == "GET" and path.startswith("/v1/payments/"):
            txn = unquote(path.rsplit("/", 1)[1])
            for charge in self.charges.values():
                if charge.txn == txn:
                    return self._nice_paid(charge)
            return self._nice_error(request, "A118", "조회 결과데이터 없음")
        if request.method == "POST" and path == "/v1/payments/netcancel":
            attempt_id = json.loads(request.content)["orderId"]
            key = ("nicepay", attempt_id)
            if key in self.pending:  # still being processed: stopped, it never commits
                self.stopped.add(key)
                charge = self.pending[key]
                charge.cancelled = charge.amount
                return self._nice_paid(charge)
            charge = self.charges.get(key)
            if charge is None:
                return self._nice_error(request, "2012", "취소 불가 거래")
            charge.cancelled = charge.amount
            return self._nice_paid(charge)
        if request.method == "POST" and path.endswith("/cancel"):
            txn = unquote(path.split("/")[3])
            body = json.loads(request.content)
            for charge in self.charges.values():
                if charge.txn == txn:
                    # No cancelAmt: "cancel everything that is left" (api/cancel.md).
                    charge.cancelled += int(
                        body.get("cancelAmt") or charge.amount - charge.cancelled
                    )
                    return self._nice_paid(charge)
            return self._nice_error(request, "A118", "조회 결과데이터 없음")
        raise AssertionError(f"not a NICEPAY call: {request.method} {path}")


__all__ = [
    "FAULTS",
    "NICE",
    "NICE_CLIENT_KEY",
    "NICE_SECRET",
    "TOSS",
    "Charge",
    "Crash",
    "Emulator",
]
