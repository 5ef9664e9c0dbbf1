"""A Router's requests wait for a connection of an httpcore pool here, not in it.

httpcore's pool (async and sync alike), on every request that arrives and every connection
it gets back, walks its whole queue of waiting requests against its connections
(encode/httpcore#1035): the CPU it spends grows with connections times requests waiting.
With 64 payments in flight on a 16-connection pool, that walk, not the payments, was the
client's limit (``benchmarks/bench_throughput.py``: 2.4 ms of CPU per bare request at 64
in flight against 0.7 ms at 16). A gate lets at most as many of the Router's requests into
the pool as it has connections, so the pool never queues them; the others wait at the
gate, first come first in, at O(1) each: :class:`AsyncPoolGate` in an
``asyncio.Semaphore`` for the :class:`~payfallback.AsyncRouter`, :class:`PoolGate` in a
queue of its own for the :class:`~payfallback.Router`'s threads.

A request waits at the gate no longer than its pool timeout (the one the Router sets from
the breaker's policy; else the client's, as ``client.send`` would apply it): past it,
``httpx.PoolTimeout``, which says what is true — nothing was written — so the Router may
fail over at once. What is left of that timeout is what the request may then wait inside
the pool (for a connection another user of the same client holds).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from typing import Any

import httpx

__all__ = ["AsyncPoolGate", "PoolGate", "async_pool_gate", "pool_gate"]


def _size(slots: int) -> int:
    if slots < 1:
        raise ValueError(f"a pool gate needs at least one slot, got {slots}")
    return slots


def _timeouts(client: httpx.Client | httpx.AsyncClient, request: httpx.Request) -> Any:
    # The request's own timeouts (the Router sets them all), else the client's, as
    # client.send would apply them.
    return request.extensions.get("timeout") or client.timeout.as_dict()


def _timed_out(size: int, pool: float | None, request: httpx.Request) -> httpx.PoolTimeout:
    return httpx.PoolTimeout(
        f"no connection of the pool's {size} came free within the pool timeout ({pool} s); "
        "the request was not sent",
        request=request,
    )


def _spend(request: httpx.Request, timeouts: Any, pool: float | None, start: float) -> None:
    """Leave the request what is left of its pool timeout after waiting at the gate."""
    if pool is not None:
        left = max(pool - (time.monotonic() - start), 0.0)
        request.extensions["timeout"] = {**timeouts, "pool": left}


class AsyncPoolGate:
    """At most ``size`` requests inside an async pool at once; the rest wait here, first
    come first in, each for at most its pool timeout."""

    def __init__(self, size: int) -> None:
        self.size = _size(size)
        self._slots = asyncio.Semaphore(size)
        #: Requests waiting for a slot now.
        self.waiting = 0

    async def send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """``client.send(request)`` once a slot is free; the body is read before the slot
        is given back, so the connection is back in the pool for the next request."""
        slots = self._slots
        if slots.locked():  # a slot taken, or others already waiting for one
            await self._wait(client, request)
        else:
            await slots.acquire()  # a free slot: taken without suspending
        try:
            return await client.send(request)
        finally:
            slots.release()

    async def _wait(self, client: httpx.AsyncClient, request: httpx.Request) -> None:
        timeouts = _timeouts(client, request)
        pool = timeouts.get("pool")
        start = time.monotonic()
        self.waiting += 1
        try:
            async with asyncio.timeout(pool):
                await self._slots.acquire()
        except TimeoutError:
            raise _timed_out(self.size, pool, request) from None
        finally:
            self.waiting -= 1
        _spend(request, timeouts, pool, start)


class PoolGate:
    """At most ``size`` requests inside a sync pool at once; the threads of the rest wait
    here, each for at most its pool timeout. A slot given back goes to the thread that has
    waited longest, never to one that just arrived (as httpcore's own queue does: a
    ``threading.Semaphore`` would let a newcomer take it, and a waiter could time out
    behind a stream of them)."""

    def __init__(self, size: int) -> None:
        self.size = _size(size)
        self._lock = threading.Lock()
        self._free = size
        self._queue: deque[threading.Event] = deque()

    @property
    def waiting(self) -> int:
        """Threads waiting for a slot now."""
        return len(self._queue)

    def send(self, client: httpx.Client, request: httpx.Request) -> httpx.Response:
        """``client.send(request)`` once a slot is free; the body is read before the slot
        is given back, so the connection is back in the pool for the next request."""
        with self._lock:
            turn = None
            if self._free and not self._queue:
                self._free -= 1
            else:
                turn = threading.Event()
                self._queue.append(turn)
        if turn is not None:
            self._wait(client, request, turn)
        try:
            return client.send(request)
        finally:
            self._release()

    def _wait(self, client: httpx.Client, request: httpx.Request, turn: threading.Event) -> None:
        timeouts = _timeouts(client, request)
        pool = timeouts.get("pool")
        start = time.monotonic()
        try:
            granted = turn.wait(pool) or self._leave(turn)
        except BaseException:  # a KeyboardInterrupt in the wait: no slot may be lost
            if self._leave(turn):
                self._release()
            raise
        if not granted:
            raise _timed_out(self.size, pool, request)
        _spend(request, timeouts, pool, start)

    def _leave(self, turn: threading.Event) -> bool:
        """Take ``turn`` out of the queue; True if it was handed a slot meanwhile (which
        is then the caller's)."""
        with self._lock:
            if turn.is_set():
                return True
            self._queue.remove(turn)
            return False

    def _release(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()  # the slot passes straight to the next
            else:
                self._free += 1


def _pool_size(client: httpx.Client | httpx.AsyncClient, transport: type[object]) -> int | None:
    """The connections of ``client``'s one httpcore HTTP/1.1 pool, if that is what it has."""
    if type(getattr(client, "_transport", None)) is not transport:
        return None
    if getattr(client, "_mounts", True):  # routes by URL: which pool depends on it
        return None
    pool = getattr(client._transport, "_pool", None)
    size = getattr(pool, "_max_connections", None)
    if not isinstance(size, int) or not 0 < size < sys.maxsize:
        return None
    return size if getattr(pool, "_http2", True) is False else None


def pool_gate(client: httpx.Client) -> PoolGate | None:
    """A gate for a Router's requests through ``client``'s pool, sized to it; ``None``
    where there is nothing to gate or the pool cannot be known:

    * a transport other than httpx's own (payfallback's aiohttp transport: aiohttp's
      connector queues its waiters at O(1) each; ``MockTransport``);
    * a client that routes by URL (``mounts=``, ``proxy=``, or proxies from the
      environment): which pool a request lands in depends on it;
    * HTTP/2, where one connection carries many requests at once;
    * a pool without a bound (``max_connections=None``).

    Each Router keeps its own (a Router holds no state with another): two Routers on one
    client each let up to ``max_connections`` requests in, and the pool queues the excess
    as it would without them.
    """
    size = _pool_size(client, httpx.HTTPTransport)
    return None if size is None else PoolGate(size)


def async_pool_gate(client: httpx.AsyncClient) -> AsyncPoolGate | None:
    """:func:`pool_gate` for an ``httpx.AsyncClient`` and the AsyncRouter."""
    size = _pool_size(client, httpx.AsyncHTTPTransport)
    return None if size is None else AsyncPoolGate(size)
