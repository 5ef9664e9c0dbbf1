"""Instructions a charge costs, counted, not timed: the ``AsyncRouter`` against its floor.

At 64 payments in flight the client's CPU per charge sets the Router's peak figures
(``bench_peak``), and this machine's speed moves from run to run by more than one change
to a charge's path saves. Instructions do not move with it: valgrind's callgrind counts
every instruction the process runs, and nothing else on the machine changes the count.

Each variant pays for new orders at 64 in flight on one event loop, in this process: the
provider is an in-process ``FakeBank`` (``httpx.MockTransport``), the journal a SQLite file
in WAL with ``synchronous=NORMAL`` and the events JSON at INFO into a null sink, as in
``bench_peak``.

* ``router``: ``AsyncRouter.charge``, on an ``AsyncClient`` over the bank;
* ``floor``: ``bench_core.Floor``, its statements group-committed as the Router commits
  them (from this turn of the loop until ``BATCH_TURNS`` turns later), its events, and
  the same client.

The count of a run includes starting Python and importing everything, so each variant
runs twice, with ``n`` and with ``2n`` charges after the same warm-up: the difference,
divided by ``n``, is what one charge costs.

Run ``python benchmarks/bench_instructions.py [--charges N] [--json out.json]`` (valgrind
must be installed: ``apt-get install valgrind``); a run of 256 takes about three minutes.
``python benchmarks/bench_instructions.py --pay router 100`` pays without counting.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import TypedDict

import httpx
from pydantic import SecretStr

from benchmarks._events import event_logging
from benchmarks._output import store_json
from benchmarks.bench_core import Floor, _Orders, grouped, paid_by
from benchmarks.bench_throughput import _drive
from payfallback import AsyncRouter, Instrument, Order
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider

__all__ = ["VARIANTS", "Count", "count", "main", "pay"]

VARIANTS = ("router", "floor")
IN_FLIGHT = 64
WARM_UP = 512
_COLLECTED = re.compile(r"Collected : (\d+)")


class Count(TypedDict):
    variant: str
    #: Instructions one charge costs (the ``2n`` run's count less the ``n`` run's, over n).
    per_charge: int
    charges: int


One = Callable[[Order], Awaitable[None]]


def _router(
    provider: FakeProvider, inst: Instrument, journal: SQLiteJournal, client: httpx.AsyncClient
) -> One:
    return paid_by(AsyncRouter([provider], client=client, journal=journal), inst)


def _floor(
    provider: FakeProvider, inst: Instrument, journal: SQLiteJournal, client: httpx.AsyncClient
) -> One:
    return grouped(Floor(provider, inst, journal), client.send)


def pay(variant: str, charges: int, warm_up: int = WARM_UP) -> int:
    """Pay ``warm_up`` then ``charges`` new orders through ``variant`` at 64 in flight;
    the number of payments its journal holds at the end."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    workdir = tempfile.mkdtemp(prefix="payfallback-instructions-")
    journal = SQLiteJournal(os.path.join(workdir, "journal.sqlite3"), durable=False)

    async def run() -> None:
        async with httpx.AsyncClient(transport=FakeBank("loop").transport()) as client:
            build = _router if variant == "router" else _floor
            inst = Instrument(provider="loop", billing_key=SecretStr("bk-bench-0015"))
            one = build(FakeProvider("loop"), inst, journal, client)
            orders = _Orders()
            await _drive(orders.take(warm_up, "w"), IN_FLIGHT, one)
            if charges:
                await _drive(orders.take(charges, "t"), IN_FLIGHT, one)

    try:
        with event_logging():
            asyncio.run(run())
        return journal.counts().payments
    finally:
        journal.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _collected(variant: str, charges: int) -> int:
    """Instructions callgrind counted for one run of :func:`pay` in a new process."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=no",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.bench_instructions",
            "--pay",
            variant,
            str(charges),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind reported no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def count(charges: int = 256) -> list[Count]:
    """Instructions per charge of every variant (two runs of each under callgrind)."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed (apt-get install valgrind)")
    out: list[Count] = []
    for variant in VARIANTS:
        once, twice = _collected(variant, charges), _collected(variant, 2 * charges)
        out.append(Count(variant=variant, per_charge=(twice - once) // charges, charges=charges))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charges", type=int, default=256)
    parser.add_argument("--json", help="write the counts here")
    parser.add_argument("--pay", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pay:
        print(pay(args.pay[0], int(args.pay[1])))
        return 0
    counts = count(args.charges)
    by = {c["variant"]: c["per_charge"] for c in counts}
    for c in counts:
        print(f"{c['variant']:>7}: {c['per_charge']:,} instructions a charge")
    print(
        f"the Router's own work on top of its floor: {by['router'] - by['floor']:,} "
        f"({by['router'] / by['floor']:.3f}x the floor)"
    )
    return store_json({"counts": counts}, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
