"""The HTTP clients a Router builds when it is not handed one.

``Router(providers)`` and ``AsyncRouter(providers)`` without ``client=`` build these and
close them with the router; pass your own client to share a pool or add proxies, and close
it yourself.

* :func:`recommended_client` — an ``httpx.Client`` (httpcore) that keeps as many
  connections alive as it opens.
* :func:`recommended_async_client` — with ``pip install 'payfallback[aiohttp]'``, an
  ``httpx.AsyncClient`` over :class:`~payfallback.transports.aiohttp.AiohttpTransport`:
  aiohttp's pool, with errors that say whether the request may have left. Without the
  extra, httpcore as above. httpcore's async pool spends CPU quadratic in connections by
  waiting requests (encode/httpcore#1035); at 64 payments in flight it, not the provider,
  is the limit (``benchmarks/bench_peak.py`` has the figures).

On an httpcore pool (sync or async) a Router lets no more of its requests in than the pool
has connections; the rest wait at its own gate (:mod:`payfallback.transports._gate`), not
in the pool's queue.

An ``AsyncRouter`` that built its client over aiohttp's transport (:func:`owned_async_client`)
hands its requests to that transport itself. ``AsyncClient.send`` adds nothing such a
client needs: it has no auth, no event hooks and follows no redirects, and the cookies it
would file from each answer are never sent again (``send`` attaches none to a request it
did not build). Skipped, they cost nothing, some 25 µs a payment at peak load. A client you
pass in is always used through ``send``.

Either way the Router puts explicit connect/read/write/pool timeouts on every request (from
the breaker's policy in force), so the client's own defaults below only bound requests a
merchant sends through the same client.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Awaitable, Callable

import httpx

from payfallback.errors import ConfigurationError

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncSend",
    "aiohttp_available",
    "aiohttp_not_sent",
    "cause_says_sent",
    "let_go",
    "owned_async_client",
    "recommended_async_client",
    "recommended_client",
]

#: As many kept-alive connections as open ones: a burst of payments to one provider does
#: not close connections only to open them again (httpx keeps 20 of 100 by default).
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=5.0
)

#: For requests that carry no timeouts of their own (the Router's always do).
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@functools.cache
def aiohttp_not_sent() -> tuple[type[BaseException], ...]:
    """aiohttp's errors that it raises only before a request's first byte is written:
    while it acquires a connection (``aiohttp.client.ClientSession._request`` wraps the
    connector call on its own). Every other aiohttp error may come after."""
    from aiohttp import client_exceptions as errors  # noqa: PLC0415 (the extra is optional)

    return tuple(
        getattr(errors, name)
        for name in (
            "ClientConnectorError",  # refused, DNS, TLS handshake, certificate, proxy
            "ConnectionTimeoutError",  # the pool wait or the connect (aiohttp >= 3.10)
            "InvalidURL",
            "NonHttpUrlClientError",
        )
        if hasattr(errors, name)
    )


def let_go(response: httpx.Response) -> httpx.Response:
    """``response``, no longer holding what its body was read through.

    httpx leaves a response read in full tied to its spent stream, which points back at it:
    a reference cycle that drags the request, both header sets and (with aiohttp) the
    transport's own response into the cyclic garbage collector, some 40 objects per
    request. At a thousand payments a second those collections, not the payments, set the
    slowest charges' time. A response whose body was read and closed gets its bytes as its
    stream instead (what ``httpx.Response(content=...)`` has); one still open is left as
    it is."""
    if response.is_closed:
        try:
            content = response.content
        except httpx.ResponseNotRead:
            return response
        response.stream = httpx.ByteStream(content)
    return response


def cause_says_sent(exc: BaseException) -> bool:
    """Whether an error chained under ``exc`` shows the request may have left, whatever
    ``exc`` is called.

    A transport can name an error after the wrong phase: httpx-aiohttp's own map turns a
    connection reset after the request was read into ``httpx.ConnectTimeout``. An aiohttp
    error in the chain is judged by :func:`aiohttp_not_sent` instead of by the name.
    """
    # Only what was chained on purpose (``raise … from``), as a transport maps an error: an
    # aiohttp error the caller happened to be handling is no part of this request.
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__module__.partition(".")[0] == "aiohttp" and "aiohttp" in sys.modules:
            return not isinstance(cause, aiohttp_not_sent())
        cause = cause.__cause__
    return False


def aiohttp_available() -> bool:
    """Whether the ``aiohttp`` extra (aiohttp and httpx-aiohttp) is installed."""
    try:
        return all(
            importlib.util.find_spec(name) is not None for name in ("aiohttp", "httpx_aiohttp")
        )
    except (ImportError, ValueError):  # a module set to None in sys.modules: hidden
        return False


def recommended_client(*, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.Client:
    """The sync client a :class:`~payfallback.Router` builds: httpcore, keep-alive for all."""
    return httpx.Client(limits=limits, timeout=DEFAULT_TIMEOUT)


def _async_transport(
    limits: httpx.Limits, transport: str | None
) -> httpx.AsyncBaseTransport | None:
    """aiohttp's transport, or None for httpx's own (httpcore, with the proxies the
    environment names)."""
    if transport is None:
        transport = "aiohttp" if aiohttp_available() else "httpcore"
    if transport == "httpcore":
        return None
    if transport != "aiohttp":
        raise ConfigurationError(f"unknown transport {transport!r}; use 'aiohttp' or 'httpcore'")
    if not aiohttp_available():
        raise ConfigurationError(
            "the aiohttp transport needs the extra: pip install 'payfallback[aiohttp]'"
        )
    from payfallback.transports.aiohttp import AiohttpTransport  # noqa: PLC0415 (optional extra)

    return AiohttpTransport(limits=limits)


def _client_over(
    transport: httpx.AsyncBaseTransport | None, limits: httpx.Limits
) -> httpx.AsyncClient:
    if transport is None:
        return httpx.AsyncClient(limits=limits, timeout=DEFAULT_TIMEOUT)
    return httpx.AsyncClient(transport=transport, timeout=DEFAULT_TIMEOUT)


def recommended_async_client(
    *, limits: httpx.Limits = DEFAULT_LIMITS, transport: str | None = None
) -> httpx.AsyncClient:
    """The async client an :class:`~payfallback.AsyncRouter` builds.

    ``transport`` is ``"aiohttp"``, ``"httpcore"`` or None for aiohttp when the extra is
    installed, httpcore otherwise. Asking for ``"aiohttp"`` without the extra is a
    :class:`~payfallback.errors.ConfigurationError` that names it.
    """
    return _client_over(_async_transport(limits, transport), limits)


#: How an async Router sends a request: ``client.send``, its pool gate's, or the transport's.
AsyncSend = Callable[[httpx.Request], Awaitable[httpx.Response]]


class _OnTransport:
    """Sends a request as ``AsyncClient.send`` does, for a client with no auth, no event
    hooks and no redirects followed, whose transport is ``transport``: the answer read in
    full (closed if reading it fails), errors as the transport raises them."""

    __slots__ = ("_client", "_transport")

    def __init__(self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport) -> None:
        self._client = client
        self._transport = transport

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self._client.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response


def owned_async_client(
    *, limits: httpx.Limits = DEFAULT_LIMITS, transport: str | None = None
) -> tuple[httpx.AsyncClient, AsyncSend | None]:
    """:func:`recommended_async_client` for a router that keeps it to itself, and how the
    router sends on it: straight to aiohttp's transport, or None (``client.send``) on
    httpcore's. Nobody else holds the client, so nothing can add auth, hooks or redirects
    to it later."""
    chosen = _async_transport(limits, transport)
    client = _client_over(chosen, limits)
    return client, None if chosen is None else _OnTransport(client, chosen)
