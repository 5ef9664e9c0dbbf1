"""A payment leaves no reference cycles behind: what it allocated is freed as soon as it is
done, by reference counting, not by a later pass of the cyclic garbage collector.

At a thousand payments a second, cyclic garbage means collections every few dozen
payments, and the occasional full collection stops every payment in flight at once. httpx
ties a response read in full to its spent stream (a cycle dragging the request, both header
sets and aiohttp's own response along), and a closure that calls itself is a cycle too.
These tests count, with the collector off, what only the collector could free.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from payfallback import AsyncRouter, Router
from payfallback.adapter import Secrets
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, FakeServer
from payfallback.transports import let_go, recommended_async_client
from tests.helpers import card, order

#: Modules whose objects a payment allocates; asyncio's and pytest's own are not ours.
OURS = ("payfallback", "httpx", "httpcore", "aiohttp", "multidict", "yarl", "pydantic")


def _ours(garbage: list[object]) -> list[str]:
    """What of ``garbage`` a payment made: objects of OURS' types, and functions defined
    there (a closure in a cycle is a ``function`` and its ``cell``)."""
    return sorted(
        f"{type(o).__module__}.{type(o).__qualname__} {getattr(o, '__qualname__', '')}"
        for o in garbage
        if type(o).__module__.split(".")[0] in OURS
        or str(getattr(o, "__module__", "")).split(".")[0] in OURS
    )


@contextmanager
def cyclic_garbage() -> Iterator[list[str]]:
    """With the collector off, the block's leavings (from OURS) that only it could free:
    the list yielded is filled when the block ends."""
    found: list[str] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found += _ours(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeBank("toss")) as running:
        yield running


def test_a_response_let_go_is_freed_without_the_collector() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    with client:
        gc.disable()
        try:
            response = client.get("http://127.0.0.1/")
            held = weakref.ref(response)
            let_go(response)
            assert response.json() == {}  # the body is still there
            del response
            assert held() is None
            # Without let_go, httpx's response and its spent stream hold each other.
            response = client.get("http://127.0.0.1/")
            held = weakref.ref(response)
            del response
            assert held() is not None
        finally:
            gc.enable()


def test_a_response_still_streaming_is_left_as_it_is() -> None:
    def chunked(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"o", b"k"]))

    client = httpx.Client(transport=httpx.MockTransport(chunked))
    with client, client.stream("GET", "http://127.0.0.1/") as response:
        stream = response.stream
        assert let_go(response) is response
        assert response.stream is stream
        assert response.read() == b"ok"


@pytest.mark.parametrize("transport", ["httpcore", "aiohttp", "aiohttp-owned"])
def test_async_charges_leave_no_cyclic_garbage(
    transport: str, server: FakeServer, tmp_path: Path
) -> None:
    provider = FakeProvider("toss", base_url=server.url_for("toss"))

    async def main() -> list[str]:
        # aiohttp-owned: the client the Router builds, sent on through its transport.
        client = (
            None if transport == "aiohttp-owned" else recommended_async_client(transport=transport)
        )
        journal = SQLiteJournal(":memory:")
        async with AsyncRouter([provider], client=client, journal=journal) as r:
            await r.charge(order("ORD-warm"), [card("toss")])  # pools, caches, first imports
            with cyclic_garbage() as found:
                for n in range(3):
                    await r.charge(order(f"ORD-{n}"), [card("toss")])
        if client is not None:
            await client.aclose()
        return found

    assert asyncio.run(main()) == []
    assert len(server.banks["toss"].live_charges()) == 4


def test_sync_charges_leave_no_cyclic_garbage(server: FakeServer) -> None:
    provider = FakeProvider("toss", base_url=server.url_for("toss"))
    with Router([provider], journal=SQLiteJournal(":memory:")) as r:
        r.charge(order("ORD-warm"), [card("toss")])
        with cyclic_garbage() as found:
            for n in range(3):
                r.charge(order(f"ORD-{n}"), [card("toss")])
        assert found == []
    assert len(server.banks["toss"].live_charges()) == 4


def test_keeping_an_answer_makes_no_cycle() -> None:
    secrets = Secrets("sk-live-0123456789")
    answer = {"tid": "T1", "card": {"number": "4111111111111111"}, "echo": "sk-live-0123456789"}

    with cyclic_garbage() as found:
        kept = secrets.scrub_answer(answer, Secrets("bk-0001-secret"))
        assert "sk-live-0123456789" not in str(kept)
        del kept
    assert found == []
