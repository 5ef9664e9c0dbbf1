"""A real loopback HTTP server in front of one or several :class:`FakeBank` objects.

For what only a socket shows: connection pools, real timeouts, the benchmarks, a browser
clicking through the approval page. ::

    with FakeServer(kakao, toss) as server:
        client = httpx.Client(base_url=server.url_for(kakao), timeout=httpx.Timeout(1.0))

Each bank is served under the path prefix ``/{name}`` (:meth:`FakeServer.url_for`), or at
the root when the server holds only one. The server speaks plain HTTP/1.1 with
keep-alive on an asyncio loop in a background thread, bound to ``127.0.0.1`` on a port
the system picks.

Faults look as they would on a network, within what a listening socket can do:

* latency and SLOW really wait (``asyncio.sleep``) before answering;
* HANG and LOST_RESPONSE keep the connection silent for ``hang_seconds`` and then close
  it, so set the client's read timeout below that (LOST_RESPONSE has been processed);
* LATE_COMMIT is silent in the same way, and the bank commits the request
  ``late_commit_delay`` seconds after ``hang_seconds`` have passed, on its own clock (the
  server cannot know when the client gave up; it takes ``hang_seconds`` as the read
  timeout);
* CONNECT_TIMEOUT behaves like HANG: the connection was accepted, so the client can only
  see a read timeout;
* CONNECT_REFUSED and ``bank.refuse`` reset the connection (TCP RST) as soon as the
  request has arrived, unprocessed; the client sees ``httpx.ReadError`` or
  ``httpx.RemoteProtocolError``. An accepted connection cannot be refused after the fact:
  for a true ``httpx.ConnectError`` point the client at :attr:`FakeServer.refused_url`,
  a loopback port held by a socket that does not listen.

What happens on the wire once a request has arrived — whatever the bank decided — is
:meth:`FakeServer.wire_next`'s, for the tests that decide "sent or not" on every transport:

=========================  ==================================================  ============
:class:`WireFault`          what the client meets                               bank runs it?
=========================  ==================================================  ============
``RESET_BEFORE_BODY``       a reset once the request head was read              no
``RESET_AFTER_BODY``        a reset once the whole request was read             yes
``CLOSE_AFTER_BODY``        the connection closed, no answer ("Server           yes
                            disconnected")
``GARBAGE``                 bytes that are not HTTP, then a close               yes
=========================  ==================================================  ============

The server never sleeps longer than ``hang_seconds`` (2 s by default) for any request,
and closing it cancels every wait.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import deque
from enum import StrEnum
from http import HTTPStatus
from types import TracebackType
from typing import Self
from urllib.parse import unquote

from payfallback.testing._fake import Delivery, FakeBank, Reply

__all__ = ["FakeServer", "WireFault"]

_MAX_HEAD = 64 * 1024


class WireFault(StrEnum):
    """What the socket does to one request; the module docstring has the table."""

    RESET_BEFORE_BODY = "reset_before_body"
    RESET_AFTER_BODY = "reset_after_body"
    CLOSE_AFTER_BODY = "close_after_body"
    GARBAGE = "garbage"


class FakeServer:
    """Serve ``banks`` over HTTP on ``127.0.0.1``; a context manager that starts and stops it."""

    def __init__(self, *banks: FakeBank, hang_seconds: float = 2.0) -> None:
        if not banks:
            raise ValueError("FakeServer needs at least one FakeBank")
        self.banks = {bank.name: bank for bank in banks}
        if len(self.banks) != len(banks):
            raise ValueError("two banks share a name; give each its own")
        self.hang_seconds = hang_seconds
        self._only = banks[0] if len(banks) == 1 else None
        self._url: str | None = None
        self._refused: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._wire: deque[tuple[WireFault, str | None]] = deque()
        self._wire_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FakeServer({', '.join(self.banks)}, url={self._url!r})"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._url is None:
            raise RuntimeError("the FakeServer is not running; use it as a context manager")
        return self._url

    def url_for(self, bank: FakeBank | str) -> str:
        """Base URL of one bank's API on this server."""
        name = bank if isinstance(bank, str) else bank.name
        if name not in self.banks:
            raise KeyError(f"this server does not serve a bank named {name!r}")
        return f"{self.url}/{name}"

    @property
    def refused_url(self) -> str:
        """A loopback URL where every connection is refused (``httpx.ConnectError``)."""
        if self._refused is None:
            raise RuntimeError("the FakeServer is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._refused.getsockname()[1]}"

    def wire_next(self, fault: WireFault, *, method: str | None = "POST", times: int = 1) -> None:
        """Meet the next ``times`` requests (of ``method``; None for any) with ``fault``."""
        with self._wire_lock:
            self._wire.extend([(WireFault(fault), method)] * times)

    def _take_wire_fault(self, method: str) -> WireFault | None:
        with self._wire_lock:
            if self._wire and self._wire[0][1] in (None, method):
                return self._wire.popleft()[0]
        return None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("this FakeServer was started already")
        # Bound but not listening: the kernel answers a SYN with RST, i.e. refused, and
        # holding the port keeps anything else from taking it.
        self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refused.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._run, name="payfallback-fake-server")
        self._thread.daemon = True
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self.close()
            raise RuntimeError("the FakeServer could not start") from self._startup_error
        return self

    def close(self) -> None:
        """Stop serving, drop every connection and wait for the thread to end."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
        if self._refused is not None:
            self._refused.close()
        self._url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                server = loop.run_until_complete(
                    asyncio.start_server(self._connection, "127.0.0.1", 0, limit=_MAX_HEAD)
                )
                self._url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            except BaseException as exc:  # reported to start(), in the caller's thread
                self._startup_error = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
            server.close()
            for task in self._tasks:
                task.cancel()
            loop.run_until_complete(self._finish(server))
        finally:
            loop.close()

    async def _finish(self, server: asyncio.Server) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()
        # Let the closed transports run their connection_lost callbacks, which close the
        # sockets, before the loop goes away.
        await asyncio.sleep(0)

    # -- HTTP ------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._exchange(reader, writer):
                pass
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass  # the client went away or sent garbage; nothing to answer
        except asyncio.CancelledError:
            # The server is closing. Ending quietly rather than re-raising: Python 3.11's
            # start_server callback calls task.exception() on a cancelled task and logs it.
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; whether the connection stays open for another."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, version = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _write(writer, Reply("", 411, content_type="text/plain"), keep_alive=False)
            return False
        wire = self._take_wire_fault(method)
        if wire is WireFault.RESET_BEFORE_BODY:
            _reset(writer)
            return False
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""

        path, _, query = target.partition("?")
        path = unquote(path)
        bank, prefix = self._bank_for(path)
        if bank is None:
            error = b'{"code":"NOT_FOUND","message":"no bank serves this path"}'
            await _write(writer, Reply("", 404, error), keep_alive)
            return keep_alive
        reply = bank.handle(
            method,
            path[len(prefix) :] or "/",
            query,
            authorization=headers.get("authorization"),
            idempotency_key=headers.get("idempotency-key"),
            body=body,
            base_url=self.url + prefix,
            read_timeout=self.hang_seconds,
        )
        if reply.delivery is Delivery.REFUSE or wire is WireFault.RESET_AFTER_BODY:
            _reset(writer)
            return False
        if wire is WireFault.CLOSE_AFTER_BODY:
            return False  # the caller closes the connection: a FIN, no answer
        if wire is WireFault.GARBAGE:
            writer.write(b"\x16\x03\x01 not HTTP at all\r\n\r\n")
            await writer.drain()
            return False
        if reply.delivery is not Delivery.ANSWER:
            await asyncio.sleep(self.hang_seconds)
            return False
        if reply.latency > 0:
            await asyncio.sleep(min(reply.latency, self.hang_seconds))
        await _write(writer, reply, keep_alive)
        return keep_alive

    def _bank_for(self, path: str) -> tuple[FakeBank | None, str]:
        name = path.split("/", 2)[1] if path.startswith("/") else ""
        bank = self.banks.get(name)
        if bank is not None:
            return bank, f"/{name}"
        return self._only, ""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (RST), as a refusing or crashing peer does: linger 0."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _write(writer: asyncio.StreamWriter, reply: Reply, keep_alive: bool) -> None:
    extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
    head = (
        f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n"
        f"content-type: {reply.content_type}\r\ncontent-length: {len(reply.body)}\r\n"
        f"{extra}connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + reply.body)
    await writer.drain()
