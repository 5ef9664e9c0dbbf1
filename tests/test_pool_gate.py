"""A Router's requests wait for an httpcore connection in a queue of the Router's.

httpcore's pool spends CPU on every waiting request each time a request arrives or a
connection comes back (encode/httpcore#1035), so the Router and the AsyncRouter let no more
of their requests into the pool than the pool has connections. These tests run them over a
real loopback server: every payment still goes through, the pool never holds a waiting
request of the Router's, and a request that finds no connection within its pool timeout is
not sent, so it fails over as a refused connection does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from payfallback import AsyncRouter, Payment, Router
from payfallback.breaker import BreakerPolicy, BreakerSettings
from payfallback.errors import AllProvidersUnavailable, OutcomeUnknown
from payfallback.models import AttemptState
from payfallback.retry import RetryPolicy
from payfallback.testing import FakeBank, FakeProvider, FakeServer, Fault
from payfallback.transports import recommended_async_client
from payfallback.transports._gate import AsyncPoolGate, PoolGate, async_pool_gate, pool_gate
from tests.helpers import card, order


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeBank("toss"), FakeBank("nice"), hang_seconds=3.0) as running:
        yield running


def _limits(n: int) -> httpx.Limits:
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


# -- which clients get a gate ------------------------------------------------------------


def test_an_httpcore_pool_gets_a_gate_of_its_size_for_each_router() -> None:
    async def run() -> None:
        async with httpx.AsyncClient(limits=_limits(16)) as client:
            gate = async_pool_gate(client)
            assert isinstance(gate, AsyncPoolGate)
            assert gate.size == 16
            async with (
                AsyncRouter([FakeProvider("toss")], client=client) as a,
                AsyncRouter([FakeProvider("toss")], client=client) as b,
            ):
                # A Router holds no state with another: each has its own.
                assert isinstance(a._gate, AsyncPoolGate)
                assert isinstance(b._gate, AsyncPoolGate)
                assert a._gate is not b._gate
                assert a._gate.size == b._gate.size == 16
        async with recommended_async_client(transport="httpcore") as client:
            recommended = async_pool_gate(client)
            assert recommended is not None
            assert recommended.size == 100

    asyncio.run(run())


@pytest.mark.parametrize(
    "make",
    [
        # aiohttp's connector queues its waiters at O(1) each: nothing to gate.
        lambda: recommended_async_client(transport="aiohttp"),
        # No pool at all.
        lambda: httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))),
        # Which pool a request lands in depends on its URL.
        lambda: httpx.AsyncClient(mounts={"all://pay.example": httpx.AsyncHTTPTransport()}),
        lambda: httpx.AsyncClient(proxy="http://127.0.0.1:9"),
        # No bound to queue behind.
        lambda: httpx.AsyncClient(limits=httpx.Limits(max_connections=None)),
    ],
    ids=["aiohttp", "mock-transport", "mounts", "proxy", "unbounded"],
)
def test_clients_whose_pool_cannot_be_known_or_needs_no_gate_get_none(
    make: object,
) -> None:
    async def run() -> None:
        async with make() as client:  # type: ignore[operator]
            assert async_pool_gate(client) is None

    asyncio.run(run())


@pytest.mark.parametrize("gate", [PoolGate, AsyncPoolGate])
def test_a_gate_needs_a_slot(gate: type[PoolGate | AsyncPoolGate]) -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        gate(0)


# -- through the Router, over loopback ---------------------------------------------------


def _all_paid_through_two(
    paid: list[Payment], toss: FakeBank, seen_in_pool: list[int], seen_waiting: list[int]
) -> None:
    """Eight orders paid, never more than two requests in the pool, and some waited."""
    assert [p.order_id for p in paid] == [f"ORD-{i}" for i in range(8)]
    assert len(toss.live_charges()) == 8
    assert max(seen_in_pool) <= 2, seen_in_pool
    assert max(seen_waiting) >= 1, "none ever waited at the gate: the test did not load the pool"


def test_payments_beyond_the_pool_wait_at_the_gate_and_all_go_through(
    server: FakeServer, tmp_path: Path
) -> None:
    """Eight payments at once on a two-connection pool, the provider answering after
    0.1 s: all eight are paid, over two connections, and httpcore's pool never holds more
    than two of the Router's requests (the others wait at the gate)."""
    toss = server.banks["toss"]
    toss.latency_fn = lambda op: 0.1 if op == "charge" else 0.0
    provider = FakeProvider("toss", base_url=server.url_for("toss"))
    seen_in_pool: list[int] = []
    seen_waiting: list[int] = []

    async def run() -> list[Payment]:
        async with (
            httpx.AsyncClient(limits=_limits(2)) as client,
            AsyncRouter(
                [provider], client=client, journal=f"sqlite:///{tmp_path / 'j.db'}"
            ) as router,
        ):
            gate = router._gate
            assert gate is not None
            pool = client._transport._pool  # type: ignore[attr-defined]
            stop = asyncio.Event()

            async def watch() -> None:
                while not stop.is_set():
                    seen_in_pool.append(len(pool._requests))
                    seen_waiting.append(gate.waiting)
                    await asyncio.sleep(0.002)

            watcher = asyncio.create_task(watch())
            paid = await asyncio.gather(
                *(router.charge(order(f"ORD-{i}"), [card("toss")]) for i in range(8))
            )
            stop.set()
            await watcher
            return paid

    paid = asyncio.run(run())

    _all_paid_through_two(paid, toss, seen_in_pool, seen_waiting)


#: A charge the provider keeps silent holds the pool's one connection for the read timeout;
#: a wait for it at the gate gives up after the pool timeout (the policy's connect timeout).
_HOLD = BreakerSettings(connect_timeout=0.2, read_timeout=1.5)


def _one_silent_charge(server: FakeServer) -> tuple[list[FakeProvider], BreakerSettings]:
    """toss keeps its next charge silent and has no proof of "not paid" a test could reach;
    nice is the fallback on the same server (the same pool)."""
    server.banks["toss"].fail_next("charge", Fault.HANG)
    providers = [
        FakeProvider("toss", base_url=server.url_for("toss"), idempotency=False, void_window=None),
        FakeProvider("nice", base_url=server.url_for("nice")),
    ]
    return providers, _HOLD


def test_no_connection_within_the_pool_timeout_is_not_sent_and_fails_over(
    server: FakeServer, tmp_path: Path
) -> None:
    """One connection, held by a charge the provider keeps silent. A second order's
    charge waits at the gate no longer than its pool timeout (0.2 s, the policy's connect
    timeout), then fails as never sent: its attempts are failed, not unknown, no lookup is
    made for it, and the provider never hears of it. It fails over to the next provider,
    which here shares the one busy connection, so every provider was unavailable."""
    toss, nice = server.banks["toss"], server.banks["nice"]
    providers, settings = _one_silent_charge(server)

    async def run() -> tuple[BaseException | Payment, BaseException | Payment, list[AttemptState]]:
        async with (
            httpx.AsyncClient(limits=_limits(1)) as client,
            AsyncRouter(
                providers,
                client=client,
                sleep=_no_sleep,
                journal=f"sqlite:///{tmp_path / 'j.db'}",
                breaker_policy=BreakerPolicy(normal=settings),
                retry=RetryPolicy(lookup_attempts=1),
            ) as router,
        ):
            held = asyncio.ensure_future(router.charge(order("ORD-A"), [card("toss")]))
            while toss.requests["charge"] == 0 and not held.done():  # the connection is taken
                await asyncio.sleep(0.01)
            second = await asyncio.gather(
                router.charge(order("ORD-B"), [card("toss"), card("nice")]),
                return_exceptions=True,
            )
            first = await asyncio.gather(held, return_exceptions=True)
            states = [a.state for a in router.journal.attempts_for_order("ORD-B")]
        return first[0], second[0], states

    first, second, states = asyncio.run(run())

    assert isinstance(second, AllProvidersUnavailable), second
    assert states == [AttemptState.FAILED, AttemptState.FAILED]
    assert "ORD-B_1" not in [entry.order_ref for entry in toss.ledger]
    assert nice.requests["charge"] == 0
    # Only the held charge was sent, so only it is looked up (and stays unknown).
    assert isinstance(first, OutcomeUnknown), first
    assert toss.requests["charge"] == 1


# -- the gate on its own -------------------------------------------------------------------


def _charge_request(server: FakeServer, ref: str) -> httpx.Request:
    return httpx.Request(
        "POST",
        server.url_for("toss") + "/v1/charges",
        json={"order_ref": ref, "billing_key": "bk", "amount": 100, "currency": "KRW"},
        headers={"Authorization": "Bearer fake-secret"},
    )


def test_the_gate_keeps_the_clients_pool_timeout_and_a_cancelled_wait_leaves_no_trace(
    server: FakeServer,
) -> None:
    """A request without timeouts of its own waits no longer than the client's pool
    timeout, as client.send would have it wait in the pool; a waiter cancelled by its
    caller leaves the queue, and the next request gets the slot once it is free."""
    toss = server.banks["toss"]
    toss.fail_next("charge", Fault.HANG)

    async def run() -> tuple[object, object, int, int]:
        timeout = httpx.Timeout(1.0, pool=0.2)
        async with httpx.AsyncClient(limits=_limits(1), timeout=timeout) as client:
            gate = async_pool_gate(client)
            assert gate is not None
            held = asyncio.ensure_future(gate.send(client, _charge_request(server, "ORD-1_1")))
            while toss.requests["charge"] == 0 and not held.done():
                await asyncio.sleep(0.01)
            unsent = await asyncio.gather(
                gate.send(client, _charge_request(server, "ORD-2_1")), return_exceptions=True
            )
            cancelled = asyncio.ensure_future(gate.send(client, _charge_request(server, "ORD-3_1")))
            await asyncio.sleep(0.05)
            waiting_then = gate.waiting
            cancelled.cancel()
            await asyncio.gather(cancelled, return_exceptions=True)
            first = await asyncio.gather(held, return_exceptions=True)
            after = await gate.send(client, _charge_request(server, "ORD-4_1"))
            return unsent[0], first[0], waiting_then, after.status_code

    unsent, first, waiting_then, after = asyncio.run(run())

    assert isinstance(unsent, httpx.PoolTimeout), unsent
    assert isinstance(first, httpx.ReadTimeout), first
    assert waiting_then == 1
    assert after == 200
    assert [entry.order_ref for entry in toss.ledger] == ["ORD-4_1"]


# -- the sync Router's threads -------------------------------------------------------------


def test_the_sync_clients_pool_gets_a_gate_and_others_none() -> None:
    with httpx.Client(limits=_limits(8)) as client:
        gate = pool_gate(client)
        assert isinstance(gate, PoolGate)
        assert gate.size == 8
        with Router([FakeProvider("toss")], client=client) as router:
            assert isinstance(router._gate, PoolGate)
            assert router._gate.size == 8
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as mocked:
        assert pool_gate(mocked) is None
    with httpx.Client(proxy="http://127.0.0.1:9") as proxied:
        assert pool_gate(proxied) is None


def test_threads_beyond_the_pool_wait_at_the_gate_and_all_pay(
    server: FakeServer, tmp_path: Path
) -> None:
    """Eight threads charge through one Router on a two-connection pool, the provider
    answering after 0.1 s: all eight orders are paid, and httpcore's pool never holds more
    than two requests (the other threads wait at the gate)."""
    toss = server.banks["toss"]
    toss.latency_fn = lambda op: 0.1 if op == "charge" else 0.0
    provider = FakeProvider("toss", base_url=server.url_for("toss"))
    seen_in_pool: list[int] = []
    seen_waiting: list[int] = []
    stop = threading.Event()
    with (
        httpx.Client(limits=_limits(2)) as client,
        Router([provider], client=client, journal=f"sqlite:///{tmp_path / 'j.db'}") as router,
    ):
        gate = router._gate
        assert gate is not None
        pool = client._transport._pool  # type: ignore[attr-defined]

        def watch() -> None:
            while not stop.is_set():
                seen_in_pool.append(len(pool._requests))
                seen_waiting.append(gate.waiting)
                stop.wait(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(8) as threads:
                paid = list(
                    threads.map(
                        lambda i: router.charge(order(f"ORD-{i}"), [card("toss")]), range(8)
                    )
                )
        finally:
            stop.set()
            watcher.join()

    _all_paid_through_two(paid, toss, seen_in_pool, seen_waiting)


def test_a_thread_that_finds_no_connection_in_time_is_not_sent_and_fails_over(
    server: FakeServer, tmp_path: Path
) -> None:
    """The sync twin of the AsyncRouter's case: one connection, held by a charge the
    provider keeps silent; another thread's charge gives up at the gate after its pool
    timeout as never sent (attempts failed, not unknown; the provider never hears of it)."""
    toss, nice = server.banks["toss"], server.banks["nice"]
    providers, settings = _one_silent_charge(server)
    with (
        httpx.Client(limits=_limits(1)) as client,
        Router(
            providers,
            client=client,
            sleep=lambda s: None,
            journal=f"sqlite:///{tmp_path / 'j.db'}",
            breaker_policy=BreakerPolicy(normal=settings),
            retry=RetryPolicy(lookup_attempts=1),
        ) as router,
        ThreadPoolExecutor(1) as thread,
    ):
        held = thread.submit(router.charge, order("ORD-A"), [card("toss")])
        while toss.requests["charge"] == 0 and not held.done():
            threading.Event().wait(0.01)
        with pytest.raises(AllProvidersUnavailable):
            router.charge(order("ORD-B"), [card("toss"), card("nice")])
        states = [a.state for a in router.journal.attempts_for_order("ORD-B")]
        with pytest.raises(OutcomeUnknown):
            held.result()

    assert states == [AttemptState.FAILED, AttemptState.FAILED]
    assert nice.requests["charge"] == 0
    assert toss.requests["charge"] == 1


def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


def _waiting(gate: PoolGate, n: int) -> Callable[[], bool]:
    return lambda: gate.waiting >= n


def test_a_freed_slot_goes_to_the_thread_that_waited_longest(server: FakeServer) -> None:
    """First come, first in: three threads wait for the one slot in turn; as it comes
    free it goes to them in the order they came."""
    toss = server.banks["toss"]
    toss.latency_fn = lambda op: 0.3 if op == "charge" else 0.0
    sent: list[str] = []
    lock = threading.Lock()

    def note(request: httpx.Request) -> None:
        with lock:
            sent.append(request.url.params.get("ref", ""))

    with httpx.Client(
        limits=_limits(1), timeout=httpx.Timeout(5.0), event_hooks={"request": [note]}
    ) as client:
        gate = pool_gate(client)
        assert gate is not None

        def charge(ref: str) -> int:
            request = _charge_request(server, ref)
            request.url = request.url.copy_add_param("ref", ref)
            return gate.send(client, request).status_code

        with ThreadPoolExecutor(4) as threads:
            # Each thread starts once the one before it holds the slot or waits for it
            # (0.3 s per answer leaves time for that); the waits are bounded, and a thread
            # that started late would show in the order.
            first = threads.submit(charge, "R0")
            _until(lambda: bool(sent))
            waiters = []
            for queued in (1, 2, 3):
                waiters.append(threads.submit(charge, f"R{queued}"))
                _until(_waiting(gate, queued))
            codes = [f.result() for f in (first, *waiters)]

    assert codes == [200, 200, 200, 200]
    assert sent == ["R0", "R1", "R2", "R3"]
