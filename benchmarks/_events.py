"""How every benchmark has the Router log: its events written at INFO, as a shop that
logs them would pay for them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

__all__ = ["event_logging"]


@contextmanager
def event_logging() -> Iterator[Callable[[int], None]]:
    """Write payfallback's events to a null sink as JSON lines, as a shop that logs them at
    INFO would; yields a level setter (structlog's filter).

    structlog renders each event (level, ISO timestamp, JSON), and the rendered line goes
    where the Router's events go, the standard logger ``payfallback``: here set to INFO
    with one handler writing to ``os.devnull``. (Left at the standard library's default
    WARNING, that logger would drop every INFO line after structlog had rendered it, and a
    benchmark would not pay for writing it.) The caller's structlog configuration and the
    logger's level and propagation are put back afterwards, and the handler removed.
    """
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    std = logging.getLogger("payfallback")
    saved_std = (std.level, std.propagate)
    with open(os.devnull, "w", encoding="utf-8") as sink:

        def set_level(level: int) -> None:
            structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))

        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.WriteLoggerFactory(file=sink),
            cache_logger_on_first_use=True,
        )
        handler = logging.StreamHandler(sink)
        std.addHandler(handler)
        std.setLevel(logging.INFO)
        std.propagate = False
        try:
            yield set_level
        finally:
            std.removeHandler(handler)
            std.setLevel(saved_std[0])
            std.propagate = saved_std[1]
            if was_configured:
                structlog.configure(**saved)
            else:
                structlog.reset_defaults()
