"""A fake payment provider: its server-side state, its ledger and a scriptable fault schedule.

:class:`FakeBank` is the provider itself, in plain Python with no HTTP: it answers
requests of the small JSON API below, keeps a ledger of every transaction, and injects the
faults a test or a simulated outage asks for. It is reached through
:meth:`FakeBank.transport` (an :class:`httpx.MockTransport`, for ``httpx.Client`` and
``httpx.AsyncClient`` alike), through :func:`mock_transport` for several banks behind one
client, or over a real socket through :class:`~payfallback.testing.FakeServer`.
:class:`~payfallback.testing.FakeProvider` is the ordinary sans-IO adapter for this API.
::

    toss, nice = FakeBank("toss", clock=clock), FakeBank("nice", clock=clock)
    toss.fail_next("charge", Fault.LOST_RESPONSE)  # charged, but the answer never comes
    client = httpx.Client(transport=mock_transport(toss, nice))
    router = Router([FakeProvider("toss"), FakeProvider("nice")], client=client, ...)
    ...
    assert double_charges(toss, nice) == {}

``bank.ledger``, ``bank.live_charges()``, ``bank.charges_for_order(order_id)`` and the
``bank.requests`` / ``bank.faults`` counters say what happened at the provider, whatever
the client was told.

The API
=======

Base URL ``https://{name}.fake.test``. Every call except the approval page needs
``Authorization: Bearer <secret>``; a wrong or missing one is ``401 UNAUTHORIZED``.
Bodies are JSON; amounts are integers in minor units. Every ``POST`` takes an optional
``Idempotency-Key`` header: a key seen before (within ``idempotency_retention``, 15 days)
returns the stored answer of the first request, byte for byte, with
``Idempotent-Replayed: true``; the same key on a different request is
``422 IDEMPOTENCY_KEY_REUSED``. What is stored is the answer as the bank gave it, before
any fault struck it on the way out, and nothing is stored for a request a fault stopped
before the bank acted. While the first request with a key is still being processed (a
late commit, below), the same key answers ``409 IDEMPOTENT_REQUEST_PROCESSING`` with
``Retry-After: 1``, as Toss Payments does; once it is committed, the stored answer. Every
answer carries ``X-Request-Id``.

=======  ========================================  ========================================
op       request                                   body → answer
=======  ========================================  ========================================
ready    ``POST /v1/checkouts``                    order_ref, amount, currency, name,
                                                   return_url, [cancel_url] → checkout
page     ``GET /pay/{tid}``                        (the customer's browser; no auth) → HTML
approve  ``POST /v1/checkouts/{tid}/approve``      token, amount → payment
charge   ``POST /v1/charges``                      order_ref, billing_key, amount, currency
                                                   → payment
lookup   ``GET /v1/payments/{tid}``                → payment
lookup   ``GET /v1/payments?order_ref=…``          → payment
cancel   ``POST /v1/payments/{tid}/cancel``        amount, [expected_remaining], [reason]
                                                   → payment
void     ``POST /v1/payments/{tid}/void``          [amount] → payment
void     ``POST /v1/orders/{order_ref}/void``      [amount] → payment
=======  ========================================  ========================================

* checkout: ``{"tid", "redirect_url", "status": "ready"}``; ``redirect_url`` is the
  approval page, whose Approve link goes to ``return_url?token=ok-<tid>&tid=<tid>`` and
  whose Cancel link to ``cancel_url`` (or ``return_url``) ``?token=cancel&tid=<tid>``.
* payment: ``{"tid", "order_ref", "status", "amount", "currency", "cancelled_amount",
  "approved_at", "approval_no", "card", "receipt_url"}``, status one of ``ready``,
  ``paid``, ``partially_cancelled``, ``cancelled``, ``failed``; ``approved_at`` is ISO 8601
  or null; ``card`` is ``{"number" (masked), "installment", "type"}``.
* error: ``{"code", "message"}`` (declines also carry ``tid``).

``order_ref`` is our attempt id. A ``charge`` for an ``order_ref``, or an ``approve`` of a
checkout, that an earlier request is still committing is ``409 IN_PROGRESS``.
``approve`` takes the token the return URL carried: the
token ``cancel`` means the customer cancelled (``400 USER_CANCELLED``, the checkout
fails); any token but ``ok-<tid>`` is ``400 INVALID_TOKEN``; an amount other than the
checkout's is ``400 AMOUNT_MISMATCH``. A checkout is approved once: again is
``409 ALREADY_APPROVED``, after it failed ``409 NOT_APPROVABLE``. ``charge`` refuses an
``order_ref`` that already has a charge not failed (``409 DUPLICATE_ORDER_REF``, the
order-id uniqueness Korean PGs rely on instead of idempotency keys); the billing keys
``bk-declined`` and ``bk-insufficient`` always decline (``402 CARD_DECLINED``,
``402 INSUFFICIENT_FUNDS``). ``lookup`` by ``order_ref`` returns the paid (or cancelled)
transaction for it if there is one, else the newest; none is ``404 NOT_FOUND``.
``cancel`` refunds part or all of a paid transaction: ``expected_remaining`` other than
what is still cancellable is ``409 REMAINING_MISMATCH`` (so a replayed cancel can never
refund twice), more than what is left is ``400 EXCEEDS_REMAINING``, a transaction never
paid is ``409 NOT_PAID``. ``void`` makes sure an approval does not stand: within
``void_window`` (1 hour) of the approval it cancels a paid transaction in full, closes a
checkout not yet approved (status ``failed``, so a late approve fails) and is a no-op on
one already failed or cancelled; after the window it is ``409 VOID_WINDOW_EXPIRED`` and
after a partial cancel ``409 NOT_VOIDABLE``. Invalid bodies are ``400 INVALID_REQUEST``,
unknown paths ``404 NOT_FOUND`` and a wrong verb ``405 METHOD_NOT_ALLOWED``;
maintenance is ``503 MAINTENANCE`` and rate limiting ``429 RATE_LIMITED``, both with
``Retry-After``; an internal error is ``500 INTERNAL_ERROR``. :data:`ERROR_CODES` lists
every code.

Faults
======

What the bank does to one request is, in order of precedence: ``bank.refuse`` (every
request is refused), the next fault queued for the operation by :meth:`FakeBank.fail_next`,
``bank.fault_fn(op, now)``, and the standing :class:`FaultMode` set by
:meth:`FakeBank.set_mode`. "Processed" says whether the request took effect at the bank.

==================  =====================================================  =========
fault               the client sees                                        processed
==================  =====================================================  =========
UNAVAILABLE_503     503 MAINTENANCE with Retry-After                       no
RATE_LIMITED_429    429 RATE_LIMITED with Retry-After                      no
ERROR_500_BEFORE    500 INTERNAL_ERROR                                     no
ERROR_500_AFTER     500 INTERNAL_ERROR                                     yes
DECLINE             402 CARD_DECLINED (approve and charge only)            yes
INSUFFICIENT_FUNDS  402 INSUFFICIENT_FUNDS (approve and charge only)       yes
CONNECT_REFUSED     ``httpx.ConnectError``                                 no
CONNECT_TIMEOUT     ``httpx.ConnectTimeout``                               no
HANG                ``httpx.ReadTimeout``                                  no
LOST_RESPONSE       ``httpx.ReadTimeout`` ("charged but the answer was     yes
                    lost")
MALFORMED           200 with a body that is not JSON                       yes
MISSING_FIELDS      200 with a JSON body that lacks every field            yes
BAD_CREDENTIALS     401 UNAUTHORIZED                                       no
SLOW                the normal answer, ``slow_seconds`` late               yes
LATE_COMMIT         ``httpx.ReadTimeout``; the bank commits the request    later
                    after the client gave up (approve and charge only)
==================  =====================================================  =========

DECLINE, INSUFFICIENT_FUNDS and LATE_COMMIT from ``fault_fn`` or a mode on other
operations are ignored, so a random schedule need not care which operation it hits;
queueing them for another operation is an error.

Late commits
------------

What breaks naive failover when a provider is under load: the request hangs past the
client's read timeout, and the provider commits it a moment later. LATE_COMMIT holds the
request (the client sees a read timeout) and commits it ``bank.late_commit_delay``
seconds (2 by default) after the client's read timeout, on the bank's clock: the
transaction is recorded as of that moment, the first answer is stored for its
idempotency key, and a declined or invalid request commits its error just the same.
Until then nothing is in the ledger; the ``order_ref`` or checkout is reserved
(``409 IN_PROGRESS`` to another request) and the key answers ``409
IDEMPOTENT_REQUEST_PROCESSING``. A void by ``order_ref`` meanwhile finds nothing
(``404 NOT_FOUND``) and the commit stands; a void of the checkout closes it, so the
approval fails when it commits. Once committed, lookups keep answering from before the
commit for ``bank.lookup_lag`` seconds more (10 by default): a charge is ``404
NOT_FOUND`` by its tid and by ``order_ref``, a checkout still ``ready``. A commit falls
due on the clock alone; it is applied when the bank next answers a request or reads its
ledger (``bank.pending_commits()`` counts those not yet due).

Latency is ``bank.latency_fn(op)`` seconds (default none) plus ``slow_seconds`` for SLOW.
Through the mock transport nothing sleeps: the bank advances its clock by the latency when
the clock can be advanced (:class:`~payfallback._clock.ManualClock`), and when the latency
exceeds the client's read timeout (``request.extensions["timeout"]["read"]``) it advances
by the timeout instead and raises :class:`httpx.ReadTimeout`; the request was processed
(or not) as its fault says. HANG, LOST_RESPONSE and LATE_COMMIT advance by the read timeout,
CONNECT_TIMEOUT by the connect timeout. With a clock that cannot be advanced no time
passes, but timeouts are raised all the same, so outcomes never depend on the clock.
:class:`~payfallback.testing.FakeServer` really sleeps; see there for how each fault looks
on a socket.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from html import escape
from typing import Any, Literal
from urllib.parse import parse_qs

import httpx

from payfallback._clock import Clock, SystemClock

__all__ = [
    "ERROR_CODES",
    "OPERATIONS",
    "FakeBank",
    "Fault",
    "FaultMode",
    "LedgerEntry",
    "double_charges",
    "mock_transport",
]

#: Operations a fault can be scheduled for: ours, plus the customer's approval page.
OPERATIONS = frozenset({"ready", "approve", "charge", "lookup", "cancel", "void", "page"})

#: Every error code the bank answers with.
ERROR_CODES = frozenset(
    {
        "UNAUTHORIZED",
        "INVALID_REQUEST",
        "NOT_FOUND",
        "USER_CANCELLED",
        "INVALID_TOKEN",
        "AMOUNT_MISMATCH",
        "CARD_DECLINED",
        "INSUFFICIENT_FUNDS",
        "ALREADY_APPROVED",
        "NOT_APPROVABLE",
        "DUPLICATE_ORDER_REF",
        "NOT_PAID",
        "REMAINING_MISMATCH",
        "EXCEEDS_REMAINING",
        "NOT_VOIDABLE",
        "VOID_WINDOW_EXPIRED",
        "IDEMPOTENCY_KEY_REUSED",
        "IDEMPOTENT_REQUEST_PROCESSING",
        "IN_PROGRESS",
        "MAINTENANCE",
        "RATE_LIMITED",
        "INTERNAL_ERROR",
        "METHOD_NOT_ALLOWED",
    }
)

Status = Literal["ready", "paid", "partially_cancelled", "cancelled", "failed"]


class Fault(StrEnum):
    """What can go wrong with one request; the module docstring has the full table."""

    UNAVAILABLE_503 = "unavailable_503"
    RATE_LIMITED_429 = "rate_limited_429"
    ERROR_500_BEFORE = "error_500_before"
    ERROR_500_AFTER = "error_500_after"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    HANG = "hang"
    LOST_RESPONSE = "lost_response"
    MALFORMED = "malformed"
    MISSING_FIELDS = "missing_fields"
    BAD_CREDENTIALS = "bad_credentials"
    SLOW = "slow"
    LATE_COMMIT = "late_commit"


_DECLINES = frozenset({Fault.DECLINE, Fault.INSUFFICIENT_FUNDS})
#: Faults that only a request that can pay can meet.
_PAYING_ONLY = _DECLINES | {Fault.LATE_COMMIT}
_PAYING_OPS = frozenset({"approve", "charge"})


@dataclass(frozen=True, slots=True)
class FaultMode:
    """A standing fault: every request for ``operations`` (all when None) meets ``fault``.

    With ``rate`` below 1 only that share of requests does, drawn from the bank's seeded
    random generator, so a run is reproducible.
    """

    fault: Fault
    operations: frozenset[str] | None = None
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultMode.rate must be within 0..1, got {self.rate}")
        if self.operations is not None and not self.operations <= OPERATIONS:
            unknown = ", ".join(sorted(self.operations - OPERATIONS))
            raise ValueError(f"unknown operations {unknown}; use some of {sorted(OPERATIONS)}")


@dataclass(slots=True)
class LedgerEntry:
    """One transaction as the provider records it."""

    txn_id: str
    #: Our attempt id, ``{order_id}_{n}``.
    order_ref: str
    amount: int
    currency: str
    status: Status
    cancelled_amount: int
    #: Key of the request that created or approved it, if it sent one.
    idempotency_key: str | None
    provider: str
    kind: Literal["checkout", "charge"]
    created_at: datetime
    approved_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Money taken and not all given back."""
        return self.status in ("paid", "partially_cancelled")

    @property
    def remaining(self) -> int:
        """What a cancel may still give back."""
        return self.amount - self.cancelled_amount if self.approved_at is not None else 0


class Delivery(Enum):
    """How a reply reaches the client: answered, or one of the ways it never is."""

    ANSWER = "answer"
    REFUSE = "refuse"
    CONNECT_TIMEOUT = "connect_timeout"
    #: The connection stays silent: a hang before processing or a lost answer after.
    DROP = "drop"


@dataclass(slots=True)
class Reply:
    """What the bank decided for one request; a transport turns it into HTTP or an error."""

    op: str
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delivery: Delivery = Delivery.ANSWER
    latency: float = 0.0


FaultFn = Callable[[str, datetime], Fault | None]
LatencyFn = Callable[[str], float]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(op: str, status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(op, status, _dumps({"code": code, "message": message, **extra}))


def _invalid(op: str, what: str) -> Reply:
    return _error(op, 400, "INVALID_REQUEST", f"{op} needs {what}")


def _in_progress(op: str, what: str) -> Reply:
    return _error(op, 409, "IN_PROGRESS", f"an earlier request for {what} is being processed")


def _fingerprint(call: _Call) -> _Fingerprint:
    return (call.method, call.path, call.body)


def _tid_of(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    tid = data.get("tid") if isinstance(data, dict) else None
    return tid if isinstance(tid, str) else ""


def _approval_no(entry: LedgerEntry) -> str:
    """An 8-digit approval number, the same for the same transaction."""
    return f"{zlib.crc32(entry.txn_id.encode()) % 100_000_000:08d}"


def _payment(op: str, entry: LedgerEntry) -> Reply:
    return Reply(
        op,
        body=_dumps(
            {
                "tid": entry.txn_id,
                "order_ref": entry.order_ref,
                "status": entry.status,
                "amount": entry.amount,
                "currency": entry.currency,
                "cancelled_amount": entry.cancelled_amount,
                "approved_at": entry.approved_at.isoformat() if entry.approved_at else None,
                # What a card PG reports for the till's receipt.
                "approval_no": _approval_no(entry) if entry.approved_at else None,
                "card": {"number": "5365-10**-****-7543", "installment": 0, "type": "credit"},
                "receipt_url": f"https://{entry.provider}.fake.test/receipts/{entry.txn_id}",
            }
        ),
    )


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if type(value) is int else None


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(slots=True)
class _Call:
    """One routed request, as the bank's steps see it."""

    op: str
    method: str
    path: str
    arg: str  # the id in the path, if any
    query: str
    body: bytes
    authorization: str | None
    key: str | None  # Idempotency-Key
    base_url: str
    fault: Fault | None = None
    #: The client's read timeout, when the transport knows it.
    read_timeout: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


_Handler = Callable[["FakeBank", _Call], Reply]
_Fingerprint = tuple[str, str, bytes]


@dataclass(slots=True)
class _Pending:
    """A request held by LATE_COMMIT: what to run, and when it commits."""

    handler: _Handler
    call: _Call
    #: ``("charge", order_ref)`` or ``("approve", tid)``: what it holds until it commits.
    reservation: tuple[str, str]
    fingerprint: _Fingerprint
    #: Monotonic time it arrived and the one it commits at, and the wall time it commits at.
    arrived: float
    due: float
    at: datetime
    #: Seconds after the commit that lookups still answer from before it.
    lookup_lag: float


class FakeBank:
    """A fake provider's server side: the JSON API above, a ledger and a fault schedule.

    ``secret`` is the bearer token it accepts; ``clock`` stamps transactions, drives
    ``fault_fn`` and void windows, and is advanced by latency when it can be (a
    :class:`~payfallback._clock.ManualClock`). ``seed`` feeds the generator behind
    ``FaultMode.rate``. Thread-safe: the loopback server calls it from its own thread
    while a test schedules faults and reads the ledger.

    Transaction ids are ``{name}-000001``, ``{name}-000002`` … in the order they are made;
    with ``txn_prefix``, ``{name}-{txn_prefix}-000001`` …. Several banks standing for one
    provider (one in each process of a scale-out benchmark, sharing one journal) need a
    prefix each: a real provider never hands out the same transaction id twice, and the
    journal refuses a transaction id that already pays another order.
    """

    def __init__(
        self,
        name: str,
        *,
        secret: str = "fake-secret",
        clock: Clock | None = None,
        seed: int = 0,
        slow_seconds: float = 5.0,
        retry_after: int = 30,
        void_window: timedelta = timedelta(hours=1),
        idempotency_retention: timedelta = timedelta(days=15),
        late_commit_delay: float = 2.0,
        lookup_lag: float = 10.0,
        txn_prefix: str | None = None,
    ) -> None:
        self.name = name
        self._txn_prefix = f"{name}-" if txn_prefix is None else f"{name}-{txn_prefix}-"
        self.host = f"{name}.fake.test"
        self.base_url = f"https://{self.host}"
        self.clock: Clock = clock or SystemClock()
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.void_window = void_window
        self.idempotency_retention = idempotency_retention
        #: LATE_COMMIT commits this many seconds after the client's read timeout.
        self.late_commit_delay = late_commit_delay
        #: Lookups do not see a late commit until this many seconds after it.
        self.lookup_lag = lookup_lag
        #: Refuse every connection (``httpx.ConnectError``; a reset on the loopback server).
        self.refuse = False
        #: ``(op, now) -> Fault | None`` for scenario-driven faults (an outage from 15:30).
        self.fault_fn: FaultFn | None = None
        #: ``op -> seconds`` of latency for every answered request.
        self.latency_fn: LatencyFn | None = None
        #: Requests received per operation, faulted ones included.
        self.requests: Counter[str] = Counter()
        #: Faults injected, by kind.
        self.faults: Counter[Fault] = Counter()
        self._auth = f"Bearer {secret}"
        # Only a clock that can be moved by hand is moved; the system clock moves itself.
        self._advance: Callable[[float], None] | None = getattr(self.clock, "advance", None)
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._queued: dict[str, deque[Fault | None]] = {}
        self._mode: FaultMode | None = None
        self._entries: dict[str, LedgerEntry] = {}
        self._by_ref: dict[str, list[LedgerEntry]] = {}
        self._pages: dict[str, tuple[str, str]] = {}
        # key -> (fingerprint of the first request, its reply or None while it is still
        # being processed, monotonic time stored)
        self._idempotency: dict[str, tuple[_Fingerprint, Reply | None, float]] = {}
        self._seq = 0
        # Late commits not yet due, in the order they arrived, and what they reserve.
        self._pending: list[_Pending] = []
        self._reserved: set[tuple[str, str]] = set()
        # txn_id -> monotonic time from which lookups see it (late commits only).
        self._hidden: dict[str, float] = {}
        # The wall time a late commit is recorded at, while it is being applied.
        self._stamp: datetime | None = None

    def __repr__(self) -> str:
        return f"FakeBank({self.name!r}, entries={len(self._entries)})"

    # -- scripting -----------------------------------------------------------------------

    def fail_next(self, op: str, fault: Fault | None, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``op``, after those queued.

        ``None`` queues requests that pass untouched, for schedules such as fault, pass,
        fault. Queued faults win over ``fault_fn`` and the mode.
        """
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; use one of {sorted(OPERATIONS)}")
        if fault in _PAYING_ONLY and op not in _PAYING_OPS:
            raise ValueError(f"{fault} applies to approve and charge only, not {op}")
        if times < 0:
            raise ValueError("times must not be negative")
        with self._lock:
            self._queued.setdefault(op, deque()).extend([fault] * times)

    def set_mode(self, mode: FaultMode | Fault | None) -> None:
        """Set the standing fault (a bare :class:`Fault` hits every operation); None clears."""
        with self._lock:
            self._mode = FaultMode(mode) if isinstance(mode, Fault) else mode

    def clear_faults(self) -> None:
        """Drop queued faults, the mode, ``fault_fn``, ``latency_fn`` and ``refuse``."""
        with self._lock:
            self._queued.clear()
            self._mode = None
            self.fault_fn = None
            self.latency_fn = None
            self.refuse = False

    def pending_faults(self, op: str) -> int:
        """How many queued faults (or passes) ``op`` has not consumed yet."""
        with self._lock:
            return len(self._queued.get(op, ()))

    # -- the ledger ----------------------------------------------------------------------

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every transaction, oldest first; the entries are the bank's own, kept current.

        Late commits that have fallen due are in it, whether or not lookups see them yet.
        """
        with self._lock:
            self._settle()
            return list(self._entries.values())

    def entry(self, txn_id: str) -> LedgerEntry | None:
        with self._lock:
            self._settle()
            return self._entries.get(txn_id)

    def pending_commits(self) -> int:
        """Requests held by LATE_COMMIT whose commit has not fallen due yet."""
        with self._lock:
            self._settle()
            return len(self._pending)

    def live_charges(self) -> list[LedgerEntry]:
        """Transactions that took money and did not give all of it back."""
        return [e for e in self.ledger if e.live]

    def charges_for_order(self, order_id: str) -> list[LedgerEntry]:
        """Transactions of every attempt at ``order_id`` (``order_ref`` ``{order_id}_…``)."""
        prefix = f"{order_id}_"
        return [e for e in self.ledger if e.order_ref.startswith(prefix)]

    # -- transports ----------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """An in-memory transport to this bank, whatever the host (sync and async clients)."""
        return httpx.MockTransport(self.respond)

    def respond(self, request: httpx.Request) -> httpx.Response:
        """Answer one ``httpx`` request, or raise the transport error its fault calls for."""
        url = request.url
        timeout: dict[str, float | None] = request.extensions.get("timeout") or {}
        read = timeout.get("read")
        reply = self.handle(
            request.method,
            url.path,
            url.query.decode("ascii"),
            authorization=request.headers.get("authorization"),
            idempotency_key=request.headers.get("idempotency-key"),
            body=request.content,
            base_url=f"{url.scheme}://{url.netloc.decode('ascii')}",
            read_timeout=read,
        )
        delivery = reply.delivery
        if delivery is Delivery.REFUSE:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if delivery is Delivery.CONNECT_TIMEOUT:
            self._pass_time(timeout.get("connect"))
            raise httpx.ConnectTimeout("timed out while connecting", request=request)
        if delivery is Delivery.DROP or (read is not None and reply.latency > read):
            self._pass_time(read)
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        self._pass_time(reply.latency)
        return httpx.Response(
            reply.status,
            headers=[("content-type", reply.content_type), *reply.headers],
            content=reply.body,
        )

    def _pass_time(self, seconds: float | None) -> None:
        if seconds and self._advance is not None:
            self._advance(seconds)

    # -- the server ----------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: str = "",
        *,
        authorization: str | None,
        idempotency_key: str | None = None,
        body: bytes = b"",
        base_url: str | None = None,
        read_timeout: float | None = None,
    ) -> Reply:
        """Decide the reply to one request: route it, apply its fault, process it.

        Transport-neutral: :meth:`respond` and the loopback server both call it and carry
        out the :class:`Delivery` and latency it returns. ``base_url`` is where the client
        reached the bank, for the approval page's address; ``read_timeout`` is how long the
        client waits for an answer, for LATE_COMMIT (unknown: it commits
        ``late_commit_delay`` after the request).
        """
        op, handler, arg, allowed = _route(path)
        with self._lock:
            self._settle()
            self._seq += 1
            request_id = f"{self.name}-req-{self._seq}"
            self.requests[op] += 1
            if handler is None:
                reply = _error(op, 404, "NOT_FOUND", f"no endpoint {method} {path}")
                fault = None
            elif method != allowed:
                reply = _error(op, 405, "METHOD_NOT_ALLOWED", f"use {allowed} for {path}")
                fault = None
            else:
                fault = self._fault_for(op)
                call = _Call(
                    op,
                    method,
                    path,
                    arg,
                    query,
                    body,
                    authorization,
                    idempotency_key,
                    base_url or self.base_url,
                    fault,
                    read_timeout,
                )
                reply = self._faulted(handler, call)
        reply.headers = (*reply.headers, ("x-request-id", request_id))
        if reply.delivery is Delivery.ANSWER:
            latency = self.latency_fn(op) if self.latency_fn is not None else 0.0
            reply.latency = latency + self.slow_seconds if fault is Fault.SLOW else latency
        return reply

    def _fault_for(self, op: str) -> Fault | None:
        if self.refuse:
            fault: Fault | None = Fault.CONNECT_REFUSED
        elif queue := self._queued.get(op):
            fault = queue.popleft()
        else:
            fault = self.fault_fn(op, self.clock.now()) if self.fault_fn is not None else None
            mode = self._mode
            if (
                fault is None
                and mode is not None
                and (mode.operations is None or op in mode.operations)
                and (mode.rate >= 1.0 or self._random.random() < mode.rate)
            ):
                fault = mode.fault
            if fault in _PAYING_ONLY and op not in _PAYING_OPS:
                fault = None
        if fault is not None:
            self.faults[fault] += 1
        return fault

    def _faulted(self, handler: _Handler, call: _Call) -> Reply:
        op, fault = call.op, call.fault
        # Faults that stop the request before the bank acts on it.
        if fault is Fault.CONNECT_REFUSED:
            return Reply(op, delivery=Delivery.REFUSE)
        if fault is Fault.CONNECT_TIMEOUT:
            return Reply(op, delivery=Delivery.CONNECT_TIMEOUT)
        if fault is Fault.HANG:
            return Reply(op, delivery=Delivery.DROP)
        if fault is Fault.UNAVAILABLE_503 or fault is Fault.RATE_LIMITED_429:
            unavailable = fault is Fault.UNAVAILABLE_503
            status, code = (503, "MAINTENANCE") if unavailable else (429, "RATE_LIMITED")
            reply = _error(op, status, code, "come back later")
            reply.headers = (("retry-after", str(self.retry_after)),)
            return reply
        if fault is Fault.ERROR_500_BEFORE:
            return _error(op, 500, "INTERNAL_ERROR", "internal error")
        if fault is Fault.BAD_CREDENTIALS or (op != "page" and call.authorization != self._auth):
            return _error(op, 401, "UNAUTHORIZED", "the secret key is not valid")
        if fault is Fault.LATE_COMMIT:
            return self._defer(handler, call)

        reply = self._idempotent(handler, call)
        # Faults that strike after the bank acted.
        if fault is Fault.ERROR_500_AFTER:
            reply = _error(op, 500, "INTERNAL_ERROR", "internal error")
        elif fault is Fault.LOST_RESPONSE:
            reply.delivery = Delivery.DROP
        elif fault is Fault.MALFORMED:
            reply = Reply(op, 200, b'{"tid": "', "application/json")
        elif fault is Fault.MISSING_FIELDS:
            reply = Reply(op, 200, b'{"result": "ok"}')
        return reply

    def _idempotent(self, handler: _Handler, call: _Call) -> Reply:
        key = call.key
        if key is None or call.method != "POST":
            return self._run(handler, call)
        now = self.clock.monotonic()
        fingerprint = _fingerprint(call)
        replay = self._replay(call, fingerprint, now)
        if replay is not None:
            return replay
        reply = self._run(handler, call)
        # Stored as first answered: later faults on this request must not be replayed.
        self._idempotency[key] = (fingerprint, Reply(reply.op, reply.status, reply.body), now)
        return reply

    def _replay(self, call: _Call, fingerprint: _Fingerprint, now: float) -> Reply | None:
        """The answer to a key seen before (within the retention), None for a new key."""
        stored = self._idempotency.get(call.key or "")
        if stored is None or now - stored[2] > self.idempotency_retention.total_seconds():
            return None
        if stored[0] != fingerprint:
            return _error(
                call.op,
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was sent with a different request",
            )
        first = stored[1]
        if first is None:
            reply = _error(
                call.op,
                409,
                "IDEMPOTENT_REQUEST_PROCESSING",
                "the first request with this Idempotency-Key is still being processed",
            )
            reply.headers = (("retry-after", "1"),)
            return reply
        replayed = (("idempotent-replayed", "true"),)
        return Reply(call.op, first.status, first.body, first.content_type, replayed)

    def _run(self, handler: _Handler, call: _Call) -> Reply:
        invalid = self._parse(call)
        return invalid if invalid is not None else handler(self, call)

    def _parse(self, call: _Call) -> Reply | None:
        """Read the JSON body into ``call.data``; the error reply if it is not an object."""
        data: Any = {}
        if call.body:
            try:
                data = json.loads(call.body)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                return _error(call.op, 400, "INVALID_REQUEST", "send a JSON object")
        call.data = data
        return None

    # -- late commits (called with the lock held) -----------------------------------------

    def _defer(self, handler: _Handler, call: _Call) -> Reply:
        """LATE_COMMIT: hold the request past the read timeout and commit it afterwards.

        A key seen before, a body that cannot be read, or an ``order_ref``/checkout that
        another request is committing: nothing to hold, so it is answered now (and the
        answer lost, as the fault says).
        """
        now = self.clock.monotonic()
        fingerprint = _fingerprint(call)
        reservation: tuple[str, str] | None = None
        if (call.key is None or self._replay(call, fingerprint, now) is None) and (
            self._parse(call) is None
        ):
            ref = call.arg if call.op == "approve" else _str(call.data, "order_ref")
            reservation = (call.op, ref) if ref else None
        if reservation is None or reservation in self._reserved:
            reply = self._idempotent(handler, call)
            reply.delivery = Delivery.DROP
            return reply
        wait = (call.read_timeout or 0.0) + self.late_commit_delay
        call.fault = None  # what commits is the request itself
        self._pending.append(
            _Pending(
                handler=handler,
                call=call,
                reservation=reservation,
                fingerprint=fingerprint,
                arrived=now,
                due=now + wait,
                at=self.clock.now() + timedelta(seconds=wait),
                lookup_lag=self.lookup_lag,
            )
        )
        self._reserved.add(reservation)
        if call.key is not None:
            self._idempotency[call.key] = (fingerprint, None, now)
        return Reply(call.op, delivery=Delivery.DROP)

    def _settle(self) -> None:
        """Commit every held request whose time has come, oldest first."""
        if not self._pending:
            return
        now = self.clock.monotonic()
        due = sorted((p for p in self._pending if p.due <= now), key=lambda p: p.due)
        if not due:
            return
        self._pending = [p for p in self._pending if p.due > now]
        for pending in due:
            self._reserved.discard(pending.reservation)
            call = pending.call
            self._stamp = pending.at
            try:
                reply = pending.handler(self, call)
            finally:
                self._stamp = None
            if call.key is not None:
                first = Reply(reply.op, reply.status, reply.body)
                self._idempotency[call.key] = (pending.fingerprint, first, pending.arrived)
            tid = _tid_of(reply.body)
            if tid in self._entries and pending.lookup_lag > 0:
                self._hidden[tid] = pending.due + pending.lookup_lag

    def _as_seen(self, entry: LedgerEntry) -> LedgerEntry | None:
        """An entry as a lookup sees it: a late commit still lagging is not there yet."""
        until = self._hidden.get(entry.txn_id)
        if until is None:
            return entry
        if self.clock.monotonic() >= until:
            del self._hidden[entry.txn_id]
            return entry
        if entry.kind == "checkout":
            return replace(entry, status="ready", cancelled_amount=0, approved_at=None)
        return None

    def _now(self) -> datetime:
        return self._stamp if self._stamp is not None else self.clock.now()

    # -- operations (called with the lock held) ------------------------------------------

    def _new_entry(
        self,
        kind: Literal["checkout", "charge"],
        order_ref: str,
        amount: int,
        currency: str,
        key: str | None,
    ) -> LedgerEntry:
        tid = f"{self._txn_prefix}{len(self._entries) + 1:06d}"
        entry = LedgerEntry(
            txn_id=tid,
            order_ref=order_ref,
            amount=amount,
            currency=currency,
            status="ready",
            cancelled_amount=0,
            idempotency_key=key,
            provider=self.name,
            kind=kind,
            created_at=self._now(),
        )
        self._entries[tid] = entry
        self._by_ref.setdefault(order_ref, []).append(entry)
        return entry

    def _find(self, order_ref: str) -> LedgerEntry | None:
        """The transaction an inquiry by our attempt id means: the approved one, else the newest."""
        entries = self._by_ref.get(order_ref)
        if not entries:
            return None
        return next((e for e in entries if e.approved_at is not None), entries[-1])

    def _pay(self, op: str, entry: LedgerEntry, call: _Call) -> Reply:
        if call.fault is Fault.DECLINE:
            entry.status = "failed"
            return _error(op, 402, "CARD_DECLINED", "카드사 승인 거절", tid=entry.txn_id)
        if call.fault is Fault.INSUFFICIENT_FUNDS:
            entry.status = "failed"
            return _error(op, 402, "INSUFFICIENT_FUNDS", "잔액 부족", tid=entry.txn_id)
        entry.status = "paid"
        entry.approved_at = self._now()
        entry.idempotency_key = call.key
        return _payment(op, entry)

    def _ready(self, call: _Call) -> Reply:
        data = call.data
        order_ref, amount = _str(data, "order_ref"), _int(data, "amount")
        currency, return_url = _str(data, "currency"), _str(data, "return_url")
        if order_ref is None or amount is None or amount <= 0 or currency is None:
            return _invalid("ready", "order_ref, a positive int amount and currency")
        if return_url is None:
            return _invalid("ready", "return_url")
        entry = self._new_entry("checkout", order_ref, amount, currency, call.key)
        tid = entry.txn_id
        self._pages[tid] = (return_url, _str(data, "cancel_url") or return_url)
        checkout = {"tid": tid, "redirect_url": f"{call.base_url}/pay/{tid}", "status": "ready"}
        return Reply("ready", body=_dumps(checkout))

    def _approve(self, call: _Call) -> Reply:
        tid = call.arg
        entry = self._entries.get(tid)
        if entry is None or entry.kind != "checkout":
            return _error("approve", 404, "NOT_FOUND", f"no checkout {tid}")
        if ("approve", tid) in self._reserved:
            return _in_progress("approve", f"checkout {tid}")
        if entry.approved_at is not None:
            return _error("approve", 409, "ALREADY_APPROVED", f"checkout {tid} was approved")
        if entry.status != "ready":
            return _error("approve", 409, "NOT_APPROVABLE", f"checkout {tid} is {entry.status}")
        token = call.data.get("token")
        if token == "cancel":
            entry.status = "failed"
            return _error("approve", 400, "USER_CANCELLED", "the customer cancelled")
        if token != f"ok-{tid}":
            return _error("approve", 400, "INVALID_TOKEN", "the approval token is not valid")
        if _int(call.data, "amount") != entry.amount:
            return _error("approve", 400, "AMOUNT_MISMATCH", "amount differs from the checkout")
        return self._pay("approve", entry, call)

    def _charge(self, call: _Call) -> Reply:
        data = call.data
        order_ref, amount = _str(data, "order_ref"), _int(data, "amount")
        currency, billing_key = _str(data, "currency"), _str(data, "billing_key")
        if order_ref is None or amount is None or amount <= 0 or currency is None:
            return _invalid("charge", "order_ref, a positive int amount and currency")
        if billing_key is None:
            return _invalid("charge", "billing_key")
        if ("charge", order_ref) in self._reserved:
            return _in_progress("charge", f"order_ref {order_ref}")
        for other in self._by_ref.get(order_ref, ()):
            if other.kind == "charge" and other.status != "failed":
                return _error(
                    "charge",
                    409,
                    "DUPLICATE_ORDER_REF",
                    f"order_ref {order_ref} was already charged as {other.txn_id}",
                )
        entry = self._new_entry("charge", order_ref, amount, currency, call.key)
        if billing_key == "bk-declined":
            call.fault = Fault.DECLINE
        elif billing_key == "bk-insufficient":
            call.fault = Fault.INSUFFICIENT_FUNDS
        return self._pay("charge", entry, call)

    def _lookup(self, call: _Call) -> Reply:
        entry: LedgerEntry | None = None
        if call.arg:
            found = self._entries.get(call.arg)
            entry = self._as_seen(found) if found is not None else None
        elif refs := parse_qs(call.query).get("order_ref"):
            seen = [s for e in self._by_ref.get(refs[0], ()) if (s := self._as_seen(e))]
            entry = next((e for e in seen if e.approved_at is not None), seen[-1] if seen else None)
        if entry is None:
            return _error("lookup", 404, "NOT_FOUND", "no such payment")
        return _payment("lookup", entry)

    def _cancel(self, call: _Call) -> Reply:
        entry = self._entries.get(call.arg)
        if entry is None:
            return _error("cancel", 404, "NOT_FOUND", f"no payment {call.arg}")
        if entry.approved_at is None:
            return _error("cancel", 409, "NOT_PAID", f"payment {call.arg} is {entry.status}")
        amount = _int(call.data, "amount")
        if amount is None or amount <= 0:
            return _invalid("cancel", "a positive int amount")
        expected = call.data.get("expected_remaining")
        if expected is not None and expected != entry.remaining:
            return _error(
                "cancel",
                409,
                "REMAINING_MISMATCH",
                "expected_remaining differs from what is still cancellable",
            )
        if amount > entry.remaining:
            return _error("cancel", 400, "EXCEEDS_REMAINING", "amount exceeds what is left")
        entry.cancelled_amount += amount
        entry.status = "cancelled" if entry.remaining == 0 else "partially_cancelled"
        return _payment("cancel", entry)

    def _void(self, call: _Call) -> Reply:
        return self._void_entry(self._entries.get(call.arg), call)

    def _void_order(self, call: _Call) -> Reply:
        return self._void_entry(self._find(call.arg), call)

    def _void_entry(self, entry: LedgerEntry | None, call: _Call) -> Reply:
        if entry is None:
            return _error("void", 404, "NOT_FOUND", "no such payment")
        if entry.status == "ready":
            # Closing the checkout is what makes a void final: a late approve now fails.
            entry.status = "failed"
        if entry.status in ("failed", "cancelled"):
            return _payment("void", entry)
        if entry.status == "partially_cancelled":
            return _error("void", 409, "NOT_VOIDABLE", "partly cancelled already; use cancel")
        assert entry.approved_at is not None  # paid
        if self._now() - entry.approved_at > self.void_window:
            return _error("void", 409, "VOID_WINDOW_EXPIRED", "too late to void; use cancel")
        amount = call.data.get("amount")
        if amount is not None and amount != entry.amount:
            return _error("void", 400, "AMOUNT_MISMATCH", "amount differs from the payment")
        entry.cancelled_amount = entry.amount
        entry.status = "cancelled"
        return _payment("void", entry)

    def _page(self, call: _Call) -> Reply:
        tid = call.arg
        entry = self._entries.get(tid)
        urls = self._pages.get(tid)
        if entry is None or urls is None:
            return Reply("page", 404, b"<!doctype html><p>No such checkout.</p>", "text/html")
        title = f"{escape(self.name)}: pay {entry.amount:,} {escape(entry.currency)}"
        if entry.status == "ready":
            approve = httpx.URL(urls[0]).copy_merge_params({"token": f"ok-{tid}", "tid": tid})
            cancel = httpx.URL(urls[1]).copy_merge_params({"token": "cancel", "tid": tid})
            actions = (
                f'<p><a id="approve" href="{escape(str(approve))}">Approve</a></p>\n'
                f'<p><a id="cancel" href="{escape(str(cancel))}">Cancel</a></p>'
            )
        else:
            actions = f"<p>This checkout is {escape(entry.status)}.</p>"
        html = (
            f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body>\n<h1>{title}</h1>\n{actions}\n</body></html>\n"
        )
        return Reply("page", 200, html.encode(), "text/html; charset=utf-8")


def _route(path: str) -> tuple[str, _Handler | None, str, str]:
    """``(op, handler, id in the path, the method it takes)`` for a path."""
    parts = path.strip("/").split("/")
    n = len(parts)
    if parts[0] == "v1" and n >= 2:
        resource = parts[1]
        if resource == "checkouts":
            if n == 2:
                return "ready", FakeBank._ready, "", "POST"
            if n == 4 and parts[3] == "approve":
                return "approve", FakeBank._approve, parts[2], "POST"
        elif resource == "charges" and n == 2:
            return "charge", FakeBank._charge, "", "POST"
        elif resource == "payments":
            if n <= 3:
                return "lookup", FakeBank._lookup, parts[2] if n == 3 else "", "GET"
            if n == 4 and parts[3] == "cancel":
                return "cancel", FakeBank._cancel, parts[2], "POST"
            if n == 4 and parts[3] == "void":
                return "void", FakeBank._void, parts[2], "POST"
        elif resource == "orders" and n == 4 and parts[3] == "void":
            return "void", FakeBank._void_order, parts[2], "POST"
    elif parts[0] == "pay" and n == 2:
        return "page", FakeBank._page, parts[1], "GET"
    return "unknown", None, "", ""


def mock_transport(*banks: FakeBank) -> httpx.MockTransport:
    """One in-memory transport to several banks, each at its host ``{name}.fake.test``.

    What a Router under test needs: it takes one client, and each fake provider's
    default base URL names its bank. Any other host fails like a name that does not
    resolve (``httpx.ConnectError``).
    """
    by_host = {bank.host: bank for bank in banks}
    if len(by_host) != len(banks):
        raise ValueError("two banks share a name; give each its own")

    def respond(request: httpx.Request) -> httpx.Response:
        bank = by_host.get(request.url.host)
        if bank is None:
            raise httpx.ConnectError(
                f"[Errno -2] Name or service not known: {request.url.host}", request=request
            )
        return bank.respond(request)

    return httpx.MockTransport(respond)


def double_charges(*banks: FakeBank) -> dict[str, list[LedgerEntry]]:
    """Orders with more than one live charge across ``banks``, with those charges.

    The order is the attempt id (``order_ref``) up to its last ``_``; an empty answer is
    the promise payfallback makes.
    """
    by_order: dict[str, list[LedgerEntry]] = {}
    for bank in banks:
        for entry in bank.live_charges():
            by_order.setdefault(entry.order_ref.rpartition("_")[0], []).append(entry)
    return {order: entries for order, entries in by_order.items() if len(entries) > 1}
