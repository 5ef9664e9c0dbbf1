"""Sent or not, on every transport: the faults that decide it, over a real loopback socket.

Each fault meets the first charge at the primary provider (toss); nice is the fallback.
The primary declares no proof of "not paid" that a test could reach (no idempotency key to
replay, no void, a 30 s settle window), so a charge that may have left must end paid at the
primary (found by lookup) or unknown — never at nice. Only a request refused before it was
written fails over, at once, without a lookup. The table of outcomes is one, and every
transport must meet it: httpcore under the async and the sync Router, and payfallback's
aiohttp transport (``payfallback[aiohttp]``) under the async Router, handed to it as a
client (``aiohttp``) and built by it, its requests handed straight to the transport
(``aiohttp-owned``). Timeouts are checked by
what happens, never by how long it took: a request the Router gave less time than the server
needs fails, and the same request with time enough succeeds.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from payfallback import AsyncRouter, Order, OutcomeUnknown, Payment, Router
from payfallback.breaker import BreakerPolicy, BreakerSettings
from payfallback.errors import ConfigurationError
from payfallback.models import AttemptState
from payfallback.provider import Operation, classify_transport_error
from payfallback.retry import RetryPolicy
from payfallback.testing import FakeBank, FakeProvider, FakeServer, Fault, WireFault
from payfallback.transports import (
    _OnTransport,
    aiohttp_available,
    cause_says_sent,
    recommended_async_client,
)
from tests.helpers import card, order

TRANSPORTS = ("httpcore", "aiohttp", "aiohttp-owned", "sync-httpcore")

#: Short enough for a quick suite; the server's silences (hang_seconds) outlast the read
#: timeout, so a silent provider is always a read timeout.
SETTINGS = BreakerSettings(connect_timeout=0.5, read_timeout=0.4)
HANG_SECONDS = 1.5


@dataclass(frozen=True)
class Case:
    #: What the server does to the first charge at toss.
    arrange: Callable[[FakeServer, FakeBank], None]
    #: "failover" (paid at nice, toss never asked), "paid-at-primary" (found by lookup or
    #: answered), "unknown" (journaled, sent nowhere else).
    expect: str
    #: Whether toss gets a lookup: only after a request that may have left.
    looked_up: bool


def _wire(fault: WireFault) -> Callable[[FakeServer, FakeBank], None]:
    return lambda server, _: server.wire_next(fault)


def _bank(fault: Fault) -> Callable[[FakeServer, FakeBank], None]:
    return lambda _, bank: bank.fail_next("charge", fault)


def _late(server: FakeServer, bank: FakeBank) -> None:
    # Silent past the read timeout, committed well after the Router has given up asking.
    bank.late_commit_delay = 10.0
    bank.fail_next("charge", Fault.LATE_COMMIT)


def _slow(server: FakeServer, bank: FakeBank) -> None:
    bank.latency_fn = lambda op: 0.1 if op == "charge" else 0.0


CASES = {
    # Nothing was written: fail over at once.
    "refused": Case(lambda server, bank: None, "failover", looked_up=False),
    # The first byte left: the provider may have it. Found by lookup if it ran it…
    "reset-after-body": Case(_wire(WireFault.RESET_AFTER_BODY), "paid-at-primary", True),
    "server-disconnected": Case(_wire(WireFault.CLOSE_AFTER_BODY), "paid-at-primary", True),
    "garbage-answer": Case(_wire(WireFault.GARBAGE), "paid-at-primary", True),
    "read-timeout-after-commit": Case(_bank(Fault.LOST_RESPONSE), "paid-at-primary", True),
    # …and unknown if it did not: "not found" right away proves nothing.
    "reset-before-body": Case(_wire(WireFault.RESET_BEFORE_BODY), "unknown", True),
    "read-timeout-unprocessed": Case(_bank(Fault.HANG), "unknown", True),
    # Runs it only after the Router gave up waiting: "not found" then is no proof either.
    "committed-after-we-gave-up": Case(_late, "unknown", True),
    # Slow but within the read timeout: an answer.
    "slow": Case(_slow, "paid-at-primary", looked_up=False),
}


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def _need(transport: str) -> None:
    if transport.startswith("aiohttp") and not aiohttp_available():
        pytest.fail("the aiohttp extra is part of the dev install: pip install -e '.[aiohttp]'")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeBank("toss"), FakeBank("nice"), hang_seconds=HANG_SECONDS) as running:
        yield running


def _providers(server: FakeServer, *, refused: bool) -> list[FakeProvider]:
    toss_url = server.refused_url if refused else server.url_for("toss")
    return [
        FakeProvider("toss", base_url=toss_url, idempotency=False, void_window=None),
        FakeProvider("nice", base_url=server.url_for("nice")),
    ]


def _pay(
    transport: str,
    providers: list[FakeProvider],
    journal: Path,
    settings: BreakerSettings,
    the_order: Order | None = None,
) -> tuple[Payment | BaseException, list[AttemptState]]:
    """One charge (of ORD-1 unless ``the_order``) through a router on ``transport``, toss
    then nice; the result and the order's attempts."""
    the_order = the_order or order()
    options: dict[str, Any] = {
        "journal": f"sqlite:///{journal}",
        "breaker_policy": BreakerPolicy(normal=settings),
        "retry": RetryPolicy(lookup_attempts=2),
    }
    instruments = [card("toss"), card("nice")]
    if transport == "sync-httpcore":
        with Router(providers, sleep=lambda s: None, **options) as r:
            try:
                result: Payment | BaseException = r.charge(the_order, instruments)
            except OutcomeUnknown as exc:
                result = exc
            return result, [a.state for a in r.journal.attempts_for_order(the_order.order_id)]

    async def run() -> tuple[Payment | BaseException, list[AttemptState]]:
        # aiohttp-owned: the Router builds its client and sends on its transport directly.
        client = (
            None if transport == "aiohttp-owned" else recommended_async_client(transport=transport)
        )
        async with AsyncRouter(providers, client=client, sleep=_no_sleep, **options) as r:
            assert isinstance(r._send, _OnTransport) is (client is None)
            try:
                outcome: Payment | BaseException = await r.charge(the_order, instruments)
            except OutcomeUnknown as exc:
                outcome = exc
            states = [a.state for a in r.journal.attempts_for_order(the_order.order_id)]
        if client is not None:
            await client.aclose()
        return outcome, states

    return asyncio.run(run())


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", list(CASES))
def test_only_a_request_never_written_fails_over(
    transport: str, fault: str, server: FakeServer, tmp_path: Path
) -> None:
    _need(transport)
    case = CASES[fault]
    toss, nice = server.banks["toss"], server.banks["nice"]
    case.arrange(server, toss)
    providers = _providers(server, refused=fault == "refused")

    result, states = _pay(transport, providers, tmp_path / "journal.db", SETTINGS)

    assert (toss.requests["lookup"] > 0) is case.looked_up
    if case.expect == "failover":
        assert isinstance(result, Payment), result
        assert result.provider == "nice"
        assert toss.requests["charge"] == 0
        assert states == [AttemptState.FAILED, AttemptState.SUCCEEDED]
    elif case.expect == "paid-at-primary":
        assert isinstance(result, Payment), result
        assert result.provider == "toss"
        assert states == [AttemptState.SUCCEEDED]
    else:
        assert isinstance(result, OutcomeUnknown), result
        assert states == [AttemptState.UNKNOWN]
        assert toss.live_charges() == []
    # Whatever happened at toss, nice was never asked after a request that may have left.
    assert nice.requests["charge"] == (1 if case.expect == "failover" else 0)
    assert len(toss.live_charges()) + len(nice.live_charges()) == (
        0 if case.expect == "unknown" else 1
    )


# -- timeouts: the Router's, honoured by every transport ---------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_read_timeout_the_router_sets_is_the_one_in_force(
    transport: str, server: FakeServer, tmp_path: Path
) -> None:
    """An answer 0.6 s away: a 0.2 s read timeout gives up (and looks up, finding the
    charge the bank ran), a 1.2 s one waits for it. The client's own default (10 s) and
    the server's silence (1.5 s) play no part."""
    _need(transport)
    toss = server.banks["toss"]
    toss.latency_fn = lambda op: 0.6 if op == "charge" else 0.0
    providers = _providers(server, refused=False)
    short = BreakerSettings(connect_timeout=0.5, read_timeout=0.2)
    result, states = _pay(transport, providers, tmp_path / "short.db", short)
    assert isinstance(result, Payment)
    assert result.provider == "toss"
    assert toss.requests["lookup"] > 0, "a 0.6 s answer outlived a 0.2 s read timeout"
    assert states == [AttemptState.SUCCEEDED]

    lookups = toss.requests["lookup"]
    long = BreakerSettings(connect_timeout=0.5, read_timeout=1.2)
    result2, states2 = _pay(transport, providers, tmp_path / "long.db", long, order("ORD-2"))
    assert isinstance(result2, Payment)
    assert result2.provider == "toss"
    assert states2 == [AttemptState.SUCCEEDED]
    assert toss.requests["lookup"] == lookups, "the answer came within the read timeout"


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A loopback port whose accept queue is full: the kernel drops further SYNs, so a
    connect hangs until the client's connect timeout (no reset, no answer)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: list[socket.socket] = []
    for _ in range(8):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def _connect_times_out(url: str) -> bool:
    """Whether a bare connect to ``url`` times out (rather than connecting) in 0.3 s."""
    host, port = url.removeprefix("http://").split(":")
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(0.3)
    try:
        probe.connect((host, int(port)))
    except TimeoutError:
        return True
    finally:
        probe.close()
    return False


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_connect_timeout_is_not_sent_and_fails_over(
    transport: str, server: FakeServer, full_backlog: str, tmp_path: Path
) -> None:
    _need(transport)
    assert _connect_times_out(full_backlog), "the kernel accepted past a full backlog"
    providers = [
        FakeProvider("toss", base_url=full_backlog, idempotency=False, void_window=None),
        FakeProvider("nice", base_url=server.url_for("nice")),
    ]
    quick = BreakerSettings(connect_timeout=0.2, read_timeout=0.4)
    result, states = _pay(transport, providers, tmp_path / "journal.db", quick)
    assert isinstance(result, Payment)
    assert result.provider == "nice"
    assert states == [AttemptState.FAILED, AttemptState.SUCCEEDED]


@pytest.mark.parametrize("transport", ["httpcore", "aiohttp"])
def test_the_pool_timeout_bounds_the_wait_for_a_connection(
    transport: str, server: FakeServer
) -> None:
    """One connection, held by a request the server keeps silent: a second request with a
    0.2 s pool timeout fails as not sent, where without it it would wait its turn."""
    _need(transport)
    toss = server.banks["toss"]
    toss.fail_next("charge", Fault.HANG)
    url = server.url_for("toss") + "/v1/charges"
    body = {"order_ref": "ORD-9_1", "billing_key": "bk", "amount": 100, "currency": "KRW"}
    auth = {"Authorization": "Bearer fake-secret"}

    async def run() -> tuple[BaseException | httpx.Response, BaseException | httpx.Response]:
        client = recommended_async_client(
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            transport=transport,
        )
        async with client:
            held = asyncio.ensure_future(
                client.post(url, json=body, headers=auth, timeout=httpx.Timeout(1.0))
            )
            await asyncio.sleep(0.2)
            waiting = client.post(
                url,
                json={**body, "order_ref": "ORD-10_1"},
                headers=auth,
                timeout=httpx.Timeout(1.0, connect=0.1, pool=0.1),
            )
            second = await asyncio.gather(waiting, return_exceptions=True)
            first = await asyncio.gather(held, return_exceptions=True)
        return first[0], second[0]

    first, second = asyncio.run(run())
    assert isinstance(first, httpx.ReadTimeout)
    assert isinstance(second, httpx.ConnectTimeout | httpx.PoolTimeout), second
    unsent = classify_transport_error(
        second, provider="toss", operation=Operation.CHARGE, attempt_id="ORD-10_1"
    )
    assert type(unsent).__name__ == "ProviderUnavailable"
    assert [entry.order_ref for entry in toss.ledger] == []


@pytest.mark.parametrize("transport", ["httpcore", "aiohttp", "aiohttp-owned"])
def test_a_charge_cancelled_mid_answer_leaves_its_late_answer_to_no_other_charge(
    transport: str, server: FakeServer, tmp_path: Path
) -> None:
    """The shop's deadline cancels a charge while toss is still answering it; toss runs it
    and answers 0.6 s late. Charges of other orders go out on the same client at once and
    after the late answer: each reads its own answer, never the cancelled charge's, on
    whatever connection it rides. The cancelled charge stays journaled as sent."""
    _need(transport)
    toss = server.banks["toss"]
    late = iter([0.6])
    toss.latency_fn = lambda op: next(late, 0.0) if op == "charge" else 0.0
    providers = _providers(server, refused=False)
    patient = BreakerSettings(connect_timeout=0.5, read_timeout=2.0)

    async def run() -> tuple[list[Payment], list[AttemptState]]:
        client = (
            None if transport == "aiohttp-owned" else recommended_async_client(transport=transport)
        )
        async with AsyncRouter(
            providers,
            client=client,
            sleep=_no_sleep,
            journal=f"sqlite:///{tmp_path / 'journal.db'}",
            breaker_policy=BreakerPolicy(normal=patient),
        ) as r:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await r.charge(order("ORD-1"), [card("toss")])
            paid = [await r.charge(order("ORD-2"), [card("toss")])]
            await asyncio.sleep(0.6)  # the late answer has been written by now
            paid += [await r.charge(order(f"ORD-{n}"), [card("toss")]) for n in (3, 4)]
            states = [a.state for a in r.journal.attempts_for_order("ORD-1")]
        if client is not None:
            await client.aclose()
        return paid, states

    paid, states = asyncio.run(run())
    assert states == [AttemptState.PENDING]
    txn = {entry.order_ref: entry.txn_id for entry in toss.ledger}
    assert sorted(txn) == ["ORD-1_1", "ORD-2_1", "ORD-3_1", "ORD-4_1"]
    assert [(p.attempt_id, p.provider_txn_id) for p in paid] == [
        (f"ORD-{n}_1", txn[f"ORD-{n}_1"]) for n in (2, 3, 4)
    ]


# -- names are not trusted: the chained aiohttp error decides -----------------------------


def test_httpx_aiohttps_own_map_would_call_a_reset_after_the_body_a_connect_timeout(
    server: FakeServer,
) -> None:
    """The danger this transport exists for: httpx-aiohttp's transport, as it is, names a
    connection closed after the provider read the request ``httpx.ConnectTimeout``. The
    Router's classification reads the aiohttp error chained under it and keeps the
    attempt unknown."""
    _need("aiohttp")
    from httpx_aiohttp import AiohttpTransport as Raw  # noqa: PLC0415 (the optional extra)

    server.wire_next(WireFault.CLOSE_AFTER_BODY)
    body = {"order_ref": "ORD-1_1", "billing_key": "bk", "amount": 100, "currency": "KRW"}

    async def run() -> BaseException | httpx.Response:
        async with httpx.AsyncClient(transport=Raw()) as client:
            results = await asyncio.gather(
                client.post(
                    server.url_for("toss") + "/v1/charges",
                    json=body,
                    headers={"Authorization": "Bearer fake-secret"},
                ),
                return_exceptions=True,
            )
        return results[0]

    mislabelled = asyncio.run(run())
    assert isinstance(mislabelled, httpx.ConnectTimeout), "httpx-aiohttp's map changed"
    assert cause_says_sent(mislabelled)
    verdict = classify_transport_error(
        mislabelled, provider="toss", operation=Operation.CHARGE, attempt_id="ORD-1_1"
    )
    assert isinstance(verdict, OutcomeUnknown)
    assert len(server.banks["toss"].live_charges()) == 1


def test_a_connect_error_with_nothing_chained_under_it_is_not_sent() -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/charges")
    plain = httpx.ConnectError("refused", request=request)
    assert not cause_says_sent(plain)
    chained = httpx.ConnectError("refused", request=request)
    chained.__cause__ = ConnectionRefusedError(111, "refused")
    assert not cause_says_sent(chained)


def test_a_router_without_a_client_builds_the_recommended_one_and_closes_it(
    tmp_path: Path,
) -> None:
    async def run() -> tuple[str, bool]:
        router = AsyncRouter([FakeProvider("toss")], journal=f"sqlite:///{tmp_path / 'a.db'}")
        client = router._client
        name = type(client._transport).__name__
        await router.aclose()
        return name, client.is_closed

    name, closed = asyncio.run(run())
    assert name == ("AiohttpTransport" if aiohttp_available() else "AsyncHTTPTransport")
    assert closed
    with Router([FakeProvider("toss")], journal=f"sqlite:///{tmp_path / 's.db'}") as router:
        sync_client = router._client
        pool = sync_client._transport._pool  # type: ignore[attr-defined]
        assert pool._max_keepalive_connections == pool._max_connections
    assert sync_client.is_closed

    own = httpx.Client()
    with Router([FakeProvider("toss")], client=own, journal=f"sqlite:///{tmp_path / 'o.db'}"):
        pass
    assert not own.is_closed, "a client handed to the Router is the caller's to close"
    own.close()


def test_a_router_that_built_its_client_sends_nothing_once_closed(
    server: FakeServer, tmp_path: Path
) -> None:
    """Its requests skip ``AsyncClient.send``, not the check that the client is open."""
    _need("aiohttp")
    request = httpx.Request(
        "POST",
        server.url_for("toss") + "/v1/charges",
        json={"order_ref": "ORD-1_1", "billing_key": "bk", "amount": 100, "currency": "KRW"},
        headers={"Authorization": "Bearer fake-secret"},
    )

    async def run() -> None:
        provider = FakeProvider("toss", base_url=server.url_for("toss"))
        router = AsyncRouter([provider], journal=f"sqlite:///{tmp_path / 'a.db'}")
        send = router._send
        assert isinstance(send, _OnTransport)
        await router.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await send(request)

    asyncio.run(run())
    assert server.banks["toss"].requests["charge"] == 0


# -- the map itself, error by error --------------------------------------------------------


def _aiohttp_errors() -> list[tuple[BaseException, type[httpx.TransportError], bool]]:
    """(aiohttp error, the httpx error it becomes, whether the request may have left)."""
    from aiohttp import client_exceptions as e  # noqa: PLC0415 (the optional extra)
    from aiohttp.client_reqrep import ConnectionKey  # noqa: PLC0415

    key = ConnectionKey("127.0.0.1", 9, False, True, None, None, None)
    refused = ConnectionRefusedError(111, "Connect call failed")
    return [
        (e.ClientConnectorError(key, refused), httpx.ConnectError, False),
        (
            e.ClientConnectorDNSError(key, OSError(-2, "Name or service not known")),
            httpx.ConnectError,
            False,
        ),
        (e.ClientProxyConnectionError(key, refused), httpx.ConnectError, False),
        (e.ConnectionTimeoutError("Connection timeout to host"), httpx.ConnectTimeout, False),
        (e.NonHttpUrlClientError("ftp://x"), httpx.UnsupportedProtocol, False),
        (e.SocketTimeoutError("Timeout on reading data from socket"), httpx.ReadTimeout, True),
        (e.ServerTimeoutError("timeout"), httpx.ReadTimeout, True),
        (TimeoutError(), httpx.ReadTimeout, True),
        (e.ServerDisconnectedError(), httpx.RemoteProtocolError, True),
        (
            e.ClientPayloadError("Response payload is not completed"),
            httpx.RemoteProtocolError,
            True,
        ),
        (e.ClientOSError(104, "Connection reset by peer"), httpx.ReadError, True),
        (e.ClientConnectionResetError("Cannot write to closing transport"), httpx.ReadError, True),
        (e.ClientConnectionError("anything else"), httpx.ReadError, True),
        (OSError(32, "Broken pipe"), httpx.ReadError, True),
    ]


def test_every_aiohttp_error_becomes_the_httpx_error_of_its_phase() -> None:
    _need("aiohttp")
    from payfallback.transports.aiohttp import httpx_error, was_sent  # noqa: PLC0415

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/charges")
    for error, expected, sent in _aiohttp_errors():
        mapped = httpx_error(error, request)
        assert type(mapped) is expected, (error, mapped)
        assert was_sent(error) is sent, error
        try:
            raise mapped from error
        except httpx.TransportError as chained:
            verdict = classify_transport_error(
                chained, provider="toss", operation=Operation.CHARGE, attempt_id="A_1"
            )
        assert isinstance(verdict, OutcomeUnknown) is sent, (error, verdict)


def test_without_the_extra_the_async_client_is_httpcore_that_keeps_every_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    assert not aiohttp_available()
    client = recommended_async_client()
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_keepalive_connections == pool._max_connections == 100
    asyncio.run(client.aclose())
    with pytest.raises(ConfigurationError, match=r"pip install 'payfallback\[aiohttp\]'"):
        recommended_async_client(transport="aiohttp")
    with pytest.raises(ConfigurationError, match="unknown transport 'curl'"):
        recommended_async_client(transport="curl")


def test_an_aiohttp_error_the_caller_was_handling_does_not_decide() -> None:
    """Only an error chained on purpose (``raise … from``) speaks for the request: one the
    caller happened to be handling (``__context__``) is not looked at."""
    _need("aiohttp")
    from aiohttp import ServerDisconnectedError  # noqa: PLC0415 (the optional extra)

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/charges")
    refused = httpx.ConnectError("refused", request=request)
    refused.__context__ = ServerDisconnectedError()
    assert not cause_says_sent(refused)
    refused.__cause__ = ServerDisconnectedError()
    assert cause_says_sent(refused)


# -- the answer's body --------------------------------------------------------------------------

_GZIPPED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    b"Transfer-Encoding: chunked\r\nX-Request-Id: r-1\r\n\r\n"
)
#: Headers, then half the promised body, then the connection closes.
_CUT_SHORT = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n" + b'{"status":"paid","tid":"'


async def _answer_once(answer: bytes, chunked_body: bytes | None = None) -> tuple[str, Any]:
    """A loopback server that reads one request and writes ``answer`` (and a chunked body),
    then closes: its URL and the server."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        if chunked_body is not None:
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked_body), chunked_body))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/charges", srv


@pytest.mark.parametrize("sending", ["client.send", "router-owned"])
def test_a_gzip_answer_is_decoded_and_a_body_cut_short_was_sent(sending: str) -> None:
    """On the aiohttp transport, through ``AsyncClient.send`` and through the send of a
    Router that built its client (``_OnTransport``) alike: a gzip body is decoded and the
    headers are as sent; a body cut short is an error of a request that was sent, so the
    Router looks the payment up rather than send it elsewhere."""
    _need("aiohttp")
    import gzip  # noqa: PLC0415

    from payfallback.transports.aiohttp import AiohttpTransport  # noqa: PLC0415

    body = b'{"status":"paid","tid":"T-1"}'

    async def one(transport: AiohttpTransport, url: str) -> httpx.Response:
        request = httpx.Request("POST", url, content=b'{"amount":100}')
        client = httpx.AsyncClient(transport=transport)
        if sending == "router-owned":
            return await _OnTransport(client, transport)(request)
        return await client.send(request)

    async def run() -> tuple[httpx.Response, BaseException]:
        transport = AiohttpTransport()
        try:
            url, srv = await _answer_once(_GZIPPED, gzip.compress(body))
            async with srv:
                answer = await one(transport, url)
            url, srv = await _answer_once(_CUT_SHORT)
            async with srv:
                with pytest.raises(httpx.TransportError) as cut:
                    await one(transport, url)
        finally:
            await transport.aclose()
        return answer, cut.value

    answer, cut = asyncio.run(run())
    assert answer.status_code == 200
    assert answer.content == body
    assert answer.json() == {"status": "paid", "tid": "T-1"}
    assert answer.headers["x-request-id"] == "r-1"
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.extensions["reason_phrase"] == b"OK"
    assert type(cut) is httpx.RemoteProtocolError
    verdict = classify_transport_error(
        cut, provider="toss", operation=Operation.CHARGE, attempt_id="A_1"
    )
    assert isinstance(verdict, OutcomeUnknown)


@pytest.mark.parametrize("sending", ["client.send", "router-owned"])
def test_answers_read_in_full_share_one_connection_and_a_bad_gzip_body_is_an_error(
    sending: str,
) -> None:
    """Through ``AsyncClient.send`` and through a Router's own send alike: three answers
    read in full come over one kept-alive connection (each answer's connection goes back
    to the pool, not closed); a body that says gzip and is not raises httpx's
    ``DecodingError``, with the request on it."""
    _need("aiohttp")
    from payfallback.transports.aiohttp import AiohttpTransport  # noqa: PLC0415

    accepted: list[int] = []
    handlers: list[asyncio.Task[Any]] = []
    answers = [b'{"n":1}', b'{"n":2}', b'{"n":3}']

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        accepted.append(1)
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)  # the request's body, b"{}"
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if answers:
                body = answers.pop(0)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"
                )
            await writer.drain()
        writer.close()

    async def run() -> tuple[list[Any], int, httpx.DecodingError, httpx.Request]:
        transport = AiohttpTransport()
        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/charges"
        client = httpx.AsyncClient(transport=transport)
        send = _OnTransport(client, transport) if sending == "router-owned" else client.send
        try:
            async with srv:
                got = [
                    (await send(httpx.Request("POST", url, content=b"{}"))).json() for _ in range(3)
                ]
                connections = len(accepted)
                bad = httpx.Request("POST", url, content=b"{}")
                with pytest.raises(httpx.DecodingError) as undecodable:
                    await send(bad)
        finally:
            await transport.aclose()
            await asyncio.wait_for(asyncio.gather(*handlers), 5.0)
        return got, connections, undecodable.value, bad

    got, connections, undecodable, bad = asyncio.run(run())
    assert got == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert connections == 1
    assert undecodable.request is bad


@pytest.mark.parametrize("sending", ["client.send", "router-owned"])
def test_a_body_that_stalls_past_the_read_timeout_was_sent(sending: str) -> None:
    """On the aiohttp transport, through ``AsyncClient.send`` and through a Router's own
    send alike: headers come, then the body stops for longer than the read timeout. That
    is a ``ReadTimeout`` of a request that may have been taken, never "not sent"."""
    _need("aiohttp")
    from payfallback.transports.aiohttp import AiohttpTransport  # noqa: PLC0415

    handlers: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_CUT_SHORT)  # half the promised body, and the connection stays open
        await writer.drain()
        with suppress(ConnectionError):
            await reader.read()  # until the client gives up and closes
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()

    async def run() -> BaseException:
        transport = AiohttpTransport()
        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        request = httpx.Request("POST", f"http://127.0.0.1:{port}/v1/charges", content=b"{}")
        request.extensions["timeout"] = {"connect": 1.0, "read": 0.2, "write": 0.2, "pool": 1.0}
        client = httpx.AsyncClient(transport=transport)
        send = _OnTransport(client, transport) if sending == "router-owned" else client.send
        try:
            async with srv:
                with pytest.raises(httpx.TransportError) as stalled:
                    await send(request)
        finally:
            await transport.aclose()
            await asyncio.wait_for(asyncio.gather(*handlers), 5.0)
        return stalled.value

    stalled = asyncio.run(run())
    assert type(stalled) is httpx.ReadTimeout
    verdict = classify_transport_error(
        stalled, provider="toss", operation=Operation.CHARGE, attempt_id="A_1"
    )
    assert isinstance(verdict, OutcomeUnknown)


@pytest.mark.parametrize("transport", ["httpcore", "aiohttp"])
def test_the_transport_keeps_no_cookies_of_its_own(transport: str) -> None:
    """Cookies are the httpx client's business, as with httpcore: a cookie one answer
    sets is not sent with the next request by the transport on its own (in a backend
    paying for many shops through one client, one shop's provider session would go out
    with another's request)."""
    _need(transport)
    seen: list[bytes] = []
    handlers: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            cookie = [line for line in head.split(b"\r\n") if line.lower().startswith(b"cookie:")]
            seen.append(b"; ".join(cookie))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                b"Set-Cookie: PGSESSION=shop-a-session; Path=/\r\n\r\n{}"
            )
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def run() -> None:
        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        # A host name, not an address: aiohttp keeps no cookies for an IP address.
        url = f"http://localhost:{port}/v1/charges"
        async with srv:
            if transport == "aiohttp":
                from payfallback.transports.aiohttp import AiohttpTransport  # noqa: PLC0415

                chosen: httpx.AsyncBaseTransport = AiohttpTransport()
            else:
                chosen = httpx.AsyncHTTPTransport()
            try:
                for _ in range(2):
                    response = await chosen.handle_async_request(httpx.Request("POST", url))
                    await response.aread()
                    await response.aclose()
                    assert response.headers["set-cookie"].startswith("PGSESSION=")
            finally:
                await chosen.aclose()
                # The server's side of each connection ends once the client's has closed.
                await asyncio.wait_for(asyncio.gather(*handlers), 5)

    asyncio.run(run())
    assert seen == [b"", b""]
