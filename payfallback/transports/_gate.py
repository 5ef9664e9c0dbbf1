"""An async Router's requests wait for a connection of an httpcore pool here, not in it.

httpcore's async pool, on every request that arrives and every connection it gets back,
walks its whole queue of waiting requests against its connections
(encode/httpcore#1035): the CPU it spends grows with connections times requests waiting. With
64 payments in flight on a 16-connection pool, that walk, not the payments, was the
client's limit (``benchmarks/bench_throughput.py``: 2.4 ms of CPU per bare request at 64
in flight against 0.7 ms at 16). A :class:`PoolGate` lets at most as many of the Router's
requests into the pool as it has connections, so the pool never queues them; the others
wait in an ``asyncio.Semaphore``, in order, at O(1) each.

A request waits at the gate no longer than its own pool timeout (the one the Router sets
from the breaker's policy): past it, ``httpx.PoolTimeout``, which says what is true —
nothing was written — so the Router may fail over at once. What is left of that timeout is
what the request may then wait inside the pool (for a connection another user of the same
client holds).
"""

from __future__ import annotations

import asyncio
import sys
import time
import weakref

import httpx

__all__ = ["PoolGate", "pool_gate"]


class PoolGate:
    """At most ``size`` requests inside the pool at once; the rest wait here, first come
    first in, each for at most its pool timeout."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a pool gate needs at least one slot, got {size}")
        self.size = size
        self._slots = asyncio.Semaphore(size)
        #: Requests waiting for a slot now.
        self.waiting = 0

    async def send(self, client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """``client.send(request)`` once a slot is free; the body is read before the slot
        is given back, so the connection is back in the pool for the next request."""
        slots = self._slots
        if slots.locked():
            await self._wait(client, request)
        else:
            await slots.acquire()  # a free slot: taken without suspending
        try:
            return await client.send(request)
        finally:
            slots.release()

    async def _wait(self, client: httpx.AsyncClient, request: httpx.Request) -> None:
        # The request's own timeouts (the Router sets them all), else the client's, as
        # client.send would apply them.
        timeouts = request.extensions.get("timeout") or client.timeout.as_dict()
        pool = timeouts.get("pool")
        start = time.monotonic()
        self.waiting += 1
        try:
            async with asyncio.timeout(pool):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(
                f"no connection of the pool's {self.size} came free within the pool timeout "
                f"({pool} s); the request was not sent",
                request=request,
            ) from None
        finally:
            self.waiting -= 1
        if pool is not None:
            left = max(pool - (time.monotonic() - start), 0.0)
            request.extensions["timeout"] = {**timeouts, "pool": left}


_GATES: weakref.WeakKeyDictionary[httpx.AsyncClient, PoolGate | None] = weakref.WeakKeyDictionary()


def pool_gate(client: httpx.AsyncClient) -> PoolGate | None:
    """The gate in front of ``client``'s pool, one per client (every Router on the client
    shares it); ``None`` where there is nothing to gate or the pool cannot be known:

    * a transport other than httpx's own (payfallback's aiohttp transport: aiohttp's
      connector queues its waiters at O(1) each; ``MockTransport``);
    * a client that routes by URL (``mounts=``, ``proxy=``, or proxies from the
      environment): which pool a request lands in depends on it;
    * HTTP/2, where one connection carries many requests at once;
    * a pool without a bound (``max_connections=None``).
    """
    try:
        return _GATES[client]
    except KeyError:
        pass
    gate = None
    transport = getattr(client, "_transport", None)
    if type(transport) is httpx.AsyncHTTPTransport and not getattr(client, "_mounts", True):
        pool = getattr(transport, "_pool", None)
        size = getattr(pool, "_max_connections", None)
        if (
            isinstance(size, int)
            and 0 < size < sys.maxsize
            and getattr(pool, "_http2", True) is False
        ):
            gate = PoolGate(size)
    _GATES[client] = gate
    return gate
