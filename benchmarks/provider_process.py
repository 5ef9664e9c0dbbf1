"""A fake provider in a process of its own, for the throughput benchmark.

``python -m benchmarks.provider_process [--min-delay 0.02] [--max-delay 0.05] [--seed 1]``

Serves one :class:`~payfallback.testing.FakeBank` named ``loop`` through
:class:`~payfallback.testing.FakeServer` (HTTP/1.1 with keep-alive on 127.0.0.1, a port
the system picks), answering every request after a delay drawn uniformly between the two
bounds: a provider's answer time, spent waiting (``asyncio.sleep``), not computing. Its
CPU is not the benchmark's: the client measured runs in another process, under its own GIL.

The bank's ledger keeps every charge of the run, so the process's full garbage collections
grow with it: tens of thousands of charges in, one takes 100 ms and more, and every
request in flight is answered that much late, off the configured delays. At each
``stats`` (the benchmarks ask before and after every timed batch) what the process holds
is frozen out of the collector (``gc.freeze``): a collection during a batch scans only what
that batch made. ``gc_max_ms`` shows what is left.

It prints its base URL on the first line of stdout, then reads commands on stdin, one a
line, and answers each with one JSON line:

* ``stats``: ``{"connections": accepted so far, "requests": answered so far, "cpu_s":
  this process's CPU seconds, "gc_max_ms": its longest garbage collection since the last
  ``stats``}``;
* end of input (the benchmark closed the pipe or went away): it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import time
from collections.abc import Sequence

from payfallback.testing import FakeBank, FakeServer

__all__ = ["CountingServer", "main"]


class CountingServer(FakeServer):
    """A :class:`FakeServer` that counts the connections it accepted."""

    connections = 0

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await super()._connection(reader, writer)


class LongestPause:
    """A ``gc.callbacks`` hook: the longest collection since :meth:`take` last ran (also
    used by ``bench_peak.py`` for the client's own collections)."""

    def __init__(self) -> None:
        self._started = 0.0
        self._longest = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._longest = max(self._longest, time.perf_counter() - self._started)

    def take(self) -> float:
        longest, self._longest = self._longest, 0.0
        return longest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="provider_process.py", description=__doc__)
    parser.add_argument("--min-delay", type=float, default=0.020, help="seconds (default 0.02)")
    parser.add_argument("--max-delay", type=float, default=0.050, help="seconds (default 0.05)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    low, high = args.min_delay, args.max_delay
    bank = FakeBank("loop")
    bank.latency_fn = lambda _op: rng.uniform(low, high)
    pauses = LongestPause()
    gc.callbacks.append(pauses)
    with CountingServer(bank, hang_seconds=max(2.0, high * 4)) as server:
        print(server.url_for(bank), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                stats = {
                    "connections": server.connections,
                    "requests": sum(bank.requests.values()),
                    "cpu_s": time.process_time(),
                    "gc_max_ms": round(pauses.take() * 1000, 3),
                }
                print(json.dumps(stats), flush=True)
                gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
