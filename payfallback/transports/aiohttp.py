"""An httpx transport over aiohttp whose errors say what happened on the wire.

``pip install 'payfallback[aiohttp]'``. Under load the async Router spends most of its CPU
in httpcore's connection pool (encode/httpcore#1035: its request assignment is quadratic in
connections by waiting requests); aiohttp's pool is not. :class:`AiohttpTransport` keeps the
httpx API, so adapters, the Router and a merchant's own code see the same
``httpx.Request``/``httpx.Response`` as with httpcore::

    client = httpx.AsyncClient(transport=AiohttpTransport())

It is built on ``httpx-aiohttp``'s transport but does not use its exception map, which turns
every ``aiohttp.ClientConnectionError`` into ``httpx.ConnectTimeout``: a connection reset or
closed by the provider *after* it read the request would then read as "never sent", and a
router that trusts the name would pay the order a second time elsewhere. Here the httpx
error follows the phase the aiohttp error comes from, as httpcore's do:

=====================================================  ===================================
aiohttp raised                                          httpx error (sent?)
=====================================================  ===================================
``ClientConnectorError`` and subclasses (refused, DNS,   ``ConnectError`` (not sent)
TLS handshake, certificate, proxy connect)
``ConnectionTimeoutError`` (pool wait or connect)        ``ConnectTimeout`` (not sent)
``InvalidURL``, ``NonHttpUrlClientError``                ``UnsupportedProtocol`` (not sent)
``SocketTimeoutError``, any other timeout                ``ReadTimeout`` (may have been sent)
``ServerDisconnectedError``                              ``RemoteProtocolError`` (may have)
``ClientResponseError`` (not HTTP), ``ClientPayloadError``  ``RemoteProtocolError`` (may have)
``ClientOSError`` (reset), anything else                 ``ReadError`` (may have been sent)
=====================================================  ===================================

aiohttp raises the first three only while it acquires a connection, before the request's
first byte is written (``ClientSession._request``: the connector call is wrapped on its
own); everything else comes after. The original aiohttp error stays chained as
``__cause__``, and :func:`payfallback.provider.classify_transport_error` reads it too.

Timeouts are the ones the Router puts on each request (``request.extensions["timeout"]``),
honoured as httpcore honours them: ``connect`` bounds opening the connection
(``sock_connect``); ``pool`` + ``connect`` bound getting one, waiting for a free slot
included (aiohttp's ``connect``); ``read`` bounds each wait for the answer's bytes
(``sock_read``). aiohttp has no write timeout of its own: its read timer starts when the
connection is handed to the request, before the body is written, so ``sock_read`` is set
to the larger of ``read`` and ``write`` and bounds the write too.

The transport never sends a request twice on its own: aiohttp's resend of an idempotent
request (GET, PUT, DELETE) after a stale kept-alive connection is turned off, as
``aiohttp.test_utils.TestClient`` does. Retrying is the Router's decision. Nor does it keep
cookies: a session it builds has aiohttp's ``DummyCookieJar``, so a cookie one answer sets
is not sent with later requests behind the httpx client's back (httpcore keeps none
either; cookies are the client's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.client_exceptions import (
    ClientConnectorError,
    ClientPayloadError,
    ClientResponseError,
    ConnectionTimeoutError,
    ServerDisconnectedError,
)
from httpx_aiohttp import AiohttpTransport as _HttpxAiohttpTransport
from yarl import URL

from payfallback.transports import DEFAULT_LIMITS, aiohttp_not_sent

__all__ = ["NOT_SENT", "AiohttpTransport", "httpx_error", "was_sent"]

#: aiohttp errors raised only before the request's first byte was written.
NOT_SENT = aiohttp_not_sent()


def was_sent(exc: BaseException) -> bool:
    """Whether the request may have reached the server when aiohttp raised ``exc``."""
    return not isinstance(exc, NOT_SENT)


def httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for ``exc`` (raised by aiohttp for ``request``), by the phase it
    comes from; see the module's table."""
    text = str(exc) or type(exc).__name__
    error: type[httpx.TransportError]
    if was_sent(exc):
        return _after_send(exc, request)
    if isinstance(exc, ClientConnectorError):
        error = httpx.ConnectError
    elif isinstance(exc, ConnectionTimeoutError):
        error = httpx.ConnectTimeout
    else:
        error = httpx.UnsupportedProtocol
    return error(text, request=request)


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for the httpx ones on ``request`` (see the module docstring)."""
    timeout: dict[str, float | None] = request.extensions.get("timeout", {})
    connect, read = timeout.get("connect"), timeout.get("read")
    pool, write = timeout.get("pool"), timeout.get("write")
    acquire = None if connect is None or pool is None else pool + connect
    if read is not None and write is not None:
        read = max(read, write)
    return aiohttp.ClientTimeout(total=None, connect=acquire, sock_connect=connect, sock_read=read)


class _ResponseStream(httpx.AsyncByteStream):
    """The answer's body; anything that goes wrong here came after the request was sent."""

    CHUNK_SIZE = 16 * 1024

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(self.CHUNK_SIZE):
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _after_send(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._response.__aexit__(None, None, None)


def _after_send(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp error raised after the request may have left."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, ServerDisconnectedError | ClientResponseError | ClientPayloadError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)


class AiohttpTransport(_HttpxAiohttpTransport):
    """httpx-aiohttp's transport with phase-correct errors, the Router's timeouts and no
    resends of its own. Takes httpx-aiohttp's arguments (``verify``, ``cert``,
    ``limits``, ``proxy``, ``uds``, ``local_address``, ``trust_env``) or a ready
    ``client`` (an ``aiohttp.ClientSession``, then owned by the caller's settings)."""

    def __init__(self, *, limits: httpx.Limits = DEFAULT_LIMITS, **kwargs: Any) -> None:
        super().__init__(limits=limits, **kwargs)

    def get_client(self) -> aiohttp.ClientSession:
        built_here = self.client is None
        session = super().get_client()
        # No resend of an idempotent request after a stale kept-alive connection: whether
        # and where to send again is the Router's decision (aiohttp's own TestClient turns
        # it off the same way; ClientSession takes no argument for it).
        session._retry_connection = False
        if built_here:
            # No cookies kept by the transport: they are the httpx client's, as with
            # httpcore. aiohttp's own jar would send a cookie one answer set with every
            # later request to that host, one shop's provider session with another's.
            session._cookie_jar = aiohttp.DummyCookieJar()
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)  # aiohttp frames it itself
        try:
            response = await self.client.request(
                method=request.method,
                url=URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=str(self.proxy.url) if self.proxy else None,
                proxy_auth=aiohttp.BasicAuth(*self.proxy.auth)
                if self.proxy and self.proxy.auth
                else None,
                proxy_headers=self.proxy.headers if self.proxy else None,
            ).__aenter__()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise httpx_error(exc, request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions=extensions,
        )
