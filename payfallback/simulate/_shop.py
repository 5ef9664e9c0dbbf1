"""The simulated shop: its five fake providers, their latency and the scenario's faults.

A small Korean online shop takes three wallets (Kakao Pay, Naver Pay, Toss Pay) by
redirect checkout and cards by billing key at two card PGs (Toss Payments first,
NICEPAY second). Each provider is a :class:`~payfallback.testing.FakeBank` on the run's
clock; its ``fault_fn`` and ``latency_fn`` follow the scenario's incidents.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from payfallback.breaker import BreakerPolicy
from payfallback.models import Method
from payfallback.simulate._clock import SimClock
from payfallback.testing import FakeBank, Fault
from payfallback.testing._fake import Delivery

__all__ = [
    "CARD_PGS",
    "CARD_PG_CHOICES",
    "DEFAULT_LATENCY",
    "LATE_COMMIT_DELAY",
    "LONGEST_READ_TIMEOUT",
    "LOOKUP_LAG",
    "NO_PROOF",
    "PROVIDERS",
    "SETTLE_WINDOW",
    "WALLETS",
    "DirectClient",
    "IncidentSpec",
    "Shop",
]

#: Wallet providers and the method each one takes, in the shop's order of preference.
WALLETS: Mapping[str, Method] = {
    "kakaopay": Method.KAKAOPAY,
    "naverpay": Method.NAVERPAY,
    "tosspay": Method.TOSSPAY,
}
#: Card PGs holding a billing key for every card customer, primary first (a scenario's
#: ``card_pgs`` chooses others among ``CARD_PG_CHOICES``).
CARD_PGS: tuple[str, ...] = ("tosspayments", "nicepay")
CARD_PG_CHOICES: tuple[str, ...] = ("tosspayments", "nicepay", "inicis", "kcp")
PROVIDERS: tuple[str, ...] = (*WALLETS, *CARD_PG_CHOICES)

#: What each provider's adapter can prove about a lost answer, as its fake declares it (the
#: rest of the fake providers' settings are the defaults). KG Inicis and NHN KCP take no
#: idempotency key, have no void for a billing charge and document no settle window; NHN
#: KCP cannot be asked about a payment by our order id. A lost answer there stays open.
NO_PROOF: Mapping[str, Mapping[str, object]] = {
    "inicis": {
        "idempotency": False,
        "void_window": None,
        "settle_window": None,
        "failed_record_is_final": False,
    },
    "kcp": {
        "idempotency": False,
        "void_window": None,
        "settle_window": None,
        "failed_record_is_final": False,
        "lookup_by_order_id": False,
    },
}

#: Median answer time of each provider, in seconds, for an approve or a charge.
DEFAULT_LATENCY: Mapping[str, float] = {
    "kakaopay": 0.35,
    "naverpay": 0.45,
    "tosspay": 0.30,
    "tosspayments": 0.50,
    "nicepay": 0.65,
    "inicis": 0.60,
    "kcp": 0.55,
}
# Other operations are lighter than the money-moving ones.
_OP_FACTOR = {"ready": 0.6, "lookup": 0.4, "cancel": 0.8, "void": 0.8, "page": 0.3}
# Spread of the log-normal latency: p99 is about 2.3 times the median.
_SIGMA = 0.35

SECRET = "sim-secret"

#: The settle window the fake providers' adapters declare, in seconds: a request that may
#: have reached a provider is committed, and seen by its lookups, within this long.
SETTLE_WINDOW = 30.0
#: The longest any strategy waits for an answer: the Router's read timeout outside peak
#: hours (the hand-written strategies wait 10 s).
LONGEST_READ_TIMEOUT = max(s.read_timeout for s in BreakerPolicy.default().all_settings)
#: A late commit lands this long after the client's read timeout, by default...
LATE_COMMIT_DELAY = 2.0
#: ...and lookups answer "not found" for this long after it.
LOOKUP_LAG = 10.0


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """One incident as the shop runs it (validated from a scenario by ``_scenario``)."""

    provider: str
    start: datetime
    end: datetime
    #: Share of requests meeting each fault, drawn independently per request.
    faults: tuple[tuple[Fault, float], ...] = ()
    #: Median latency during the incident (replaces the provider's own), seconds.
    latency: float | None = None
    latency_factor: float = 1.0
    operations: frozenset[str] | None = None
    #: ``(down_minutes, up_minutes)``: the incident strikes only in its down phases.
    flap: tuple[float, float] | None = None
    announced: bool = False
    label: str = ""
    #: ``late_commit``: seconds after the client's read timeout the charge commits, and
    #: seconds after that during which lookups say "not found".
    commit_delay: float = LATE_COMMIT_DELAY
    lookup_lag: float = LOOKUP_LAG

    def active(self, now: datetime) -> bool:
        if not self.start <= now < self.end:
            return False
        if self.flap is None:
            return True
        down, up = self.flap
        minutes = (now - self.start).total_seconds() / 60.0
        return minutes % (down + up) < down


@dataclass(slots=True)
class _Schedule:
    """Faults and latency of one provider during one run; seeded, so a run repeats exactly."""

    #: ``(index in the scenario, incident)`` for this provider's incidents.
    incidents: Sequence[tuple[int, IncidentSpec]]
    median: float
    faults_rng: random.Random
    latency_rng: random.Random
    clock: SimClock
    bank: FakeBank
    #: When each faulted request happened, by incident index (for breaker trip figures).
    struck: dict[int, list[datetime]] = field(default_factory=dict)

    def fault(self, op: str, now: datetime) -> Fault | None:
        for index, incident in self.incidents:
            if not incident.faults or not incident.active(now):
                continue
            if incident.operations is not None and op not in incident.operations:
                continue
            draw = self.faults_rng.random()
            for fault, share in incident.faults:
                if draw < share:
                    self.struck.setdefault(index, []).append(now)
                    if fault is Fault.LATE_COMMIT:
                        # The bank reads these for the request this fault is drawn for.
                        self.bank.late_commit_delay = incident.commit_delay
                        self.bank.lookup_lag = incident.lookup_lag
                    return fault
                draw -= share
        return None

    def latency(self, op: str) -> float:
        median = self.median
        now = self.clock.now()
        for _, incident in self.incidents:
            if incident.active(now) and (incident.operations is None or op in incident.operations):
                if incident.latency is not None:
                    median = incident.latency
                median *= incident.latency_factor
        median *= _OP_FACTOR.get(op, 1.0)
        return median * math.exp(_SIGMA * self.latency_rng.gauss(0.0, 1.0))


class DirectClient(httpx.Client):
    """An ``httpx.Client`` that hands each request straight to the in-memory transport.

    The fake providers need none of what ``Client.send`` adds around the transport
    (cookies, auth flows, redirects, event hooks), and skipping it makes a weekend of
    traffic run several times faster. Timeouts still travel in the request's extensions,
    where the fake reads them.
    """

    def __init__(self, transport: httpx.BaseTransport) -> None:
        super().__init__(transport=transport)
        self._direct = transport

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = None,
        follow_redirects: Any = None,
    ) -> httpx.Response:
        response = self._direct.handle_request(request)
        response.request = request
        return response


class _Banks(httpx.BaseTransport):
    """The shop's five banks behind one in-memory transport, each at its own host.

    It answers as :meth:`FakeBank.respond <payfallback.testing.FakeBank.respond>` does
    (the bank's :meth:`~payfallback.testing.FakeBank.handle` decides, latency passes on
    the run's clock, a lost answer is a read timeout), and builds the answer as a
    response whose body is already read: no content encoding, no byte stream to join, for
    the hundred thousand answers of a weekend.
    """

    def __init__(self, banks: Iterable[FakeBank], clock: SimClock) -> None:
        self._by_host = {bank.host: bank for bank in banks}
        self._advance = clock.advance

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        bank = self._by_host.get(url.host)
        if bank is None:
            raise httpx.ConnectError(
                f"[Errno -2] Name or service not known: {url.host}", request=request
            )
        timeout: dict[str, float | None] = request.extensions.get("timeout") or {}
        read = timeout.get("read")
        headers = request.headers
        reply = bank.handle(
            request.method,
            url.path,
            url.query.decode("ascii"),
            authorization=headers.get("authorization"),
            idempotency_key=headers.get("idempotency-key"),
            body=request.content,
            base_url=(
                bank.base_url
                if url.scheme == "https" and url.port is None
                else f"{url.scheme}://{url.netloc.decode('ascii')}"
            ),
            read_timeout=read,
        )
        delivery = reply.delivery
        if delivery is Delivery.REFUSE:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if delivery is Delivery.CONNECT_TIMEOUT:
            self._pass(timeout.get("connect"))
            raise httpx.ConnectTimeout("timed out while connecting", request=request)
        if delivery is Delivery.DROP or (read is not None and reply.latency > read):
            self._pass(read)
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request)
        self._pass(reply.latency)
        body = reply.body
        response = httpx.Response(
            reply.status,
            headers=[
                ("content-type", reply.content_type),
                ("content-length", str(len(body))),
                *reply.headers,
            ],
            stream=httpx.ByteStream(body),
            request=request,
        )
        response._content = body  # read already: the body is whole
        return response

    def _pass(self, seconds: float | None) -> None:
        if seconds:
            self._advance(seconds)


class Shop:
    """The five fake providers of one run, on ``clock``, with ``incidents`` scheduled.

    ``struck(index)`` lists when requests met the faults of incident ``index``.
    """

    def __init__(
        self,
        clock: SimClock,
        *,
        seed: int,
        incidents: Iterable[IncidentSpec] = (),
        latency: Mapping[str, float] | None = None,
        card_pgs: Sequence[str] = CARD_PGS,
    ) -> None:
        medians = {**DEFAULT_LATENCY, **(latency or {})}
        #: The card PGs of this shop, primary first.
        self.card_pgs: tuple[str, ...] = tuple(card_pgs)
        incidents = tuple(incidents)
        self.banks: dict[str, FakeBank] = {}
        self.schedules: dict[str, _Schedule] = {}
        for name in (*WALLETS, *self.card_pgs):
            bank = FakeBank(name, secret=SECRET, clock=clock, seed=seed)
            schedule = _Schedule(
                incidents=[(n, i) for n, i in enumerate(incidents) if i.provider == name],
                median=medians[name],
                faults_rng=random.Random(f"{seed}:{name}:faults"),
                latency_rng=random.Random(f"{seed}:{name}:latency"),
                clock=clock,
                bank=bank,
            )
            bank.fault_fn = schedule.fault
            bank.latency_fn = schedule.latency
            self.banks[name] = bank
            self.schedules[name] = schedule
        self.client = DirectClient(_Banks(self.banks.values(), clock))

    def struck(self, index: int, provider: str) -> list[datetime]:
        return self.schedules[provider].struck.get(index, [])

    def close(self) -> None:
        self.client.close()
