"""Run an ASGI app with uvicorn in a background thread, for tests and scripts.

::

    with serve_in_thread(create_app(settings, providers)) as base_url:
        httpx.get(base_url + "/health")

The server listens on a free loopback port, runs the app's lifespan (startup before the
``with`` body, shutdown after), and is stopped when the block ends. Waits are bounded: a
server that does not start within ``start_timeout`` seconds is an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, start_timeout: float = 15.0
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        # Plain HTTP/1.1 only: no websocket stack to import, nothing optional to pick.
        http="h11",
        ws="none",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers only in the main thread, so this thread is safe.
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped during start-up; see the log above")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {start_timeout} s")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=start_timeout)
