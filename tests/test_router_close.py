"""Closing a Router while payments are in progress: they finish and are journaled first;
a call made after it is refused with a typed error, before anything is written or sent."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from payfallback import AsyncRouter, AttemptState, ConfigurationError, Payment, Router
from payfallback.journal import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider
from tests.helpers import card, order

#: How long the provider takes to answer a charge: long enough for the close to come while
#: every charge's request is out.
ANSWER_S = 0.3


def _journaled(path: Path, order_ids: list[str]) -> list[tuple[list[AttemptState], bool]]:
    """Each order's attempt states and whether it has a payment, read from the file."""
    with SQLiteJournal(path) as journal:
        return [
            (
                [a.state for a in journal.attempts_for_order(o)],
                journal.payment_for_order(o) is not None,
            )
            for o in order_ids
        ]


def _four_paid_and_the_refused_one_nowhere(path: Path, prefix: str) -> None:
    """Orders ``{prefix}-0`` to ``-3`` journaled as paid; ``{prefix}-9``, refused after
    the close, not journaled at all."""
    ids = [f"{prefix}-{n}" for n in (0, 1, 2, 3, 9)]
    paid = ([AttemptState.SUCCEEDED], True)
    assert _journaled(path, ids) == [paid, paid, paid, paid, ([], False)]


def test_aclose_lets_the_charges_in_progress_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    toss = FakeBank("toss")
    path = tmp_path / "journal.sqlite3"

    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(ANSWER_S)
        return toss.respond(request)

    async def main() -> list[Payment | BaseException]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        router = AsyncRouter([FakeProvider("toss")], client=client, journal=f"sqlite:///{path}")
        charges = [
            asyncio.create_task(router.charge(order(f"C-{n}"), [card("toss")])) for n in range(4)
        ]
        while toss.requests["charge"] < 4:  # every request is out
            await asyncio.sleep(0.01)
        await router.aclose()
        assert all(c.done() for c in charges)
        with pytest.raises(ConfigurationError, match="closed"):
            await router.charge(order("C-9"), [card("toss")])
        await router.aclose()  # again: nothing to do
        await client.aclose()
        return await asyncio.gather(*charges, return_exceptions=True)

    results = asyncio.run(main())
    assert [r.attempt_id if isinstance(r, Payment) else r for r in results] == [
        f"C-{n}_1" for n in range(4)
    ]
    _four_paid_and_the_refused_one_nowhere(path, "C")
    assert toss.requests["charge"] == 4


def test_close_lets_the_charges_of_other_threads_finish_and_refuses_new_ones(
    tmp_path: Path,
) -> None:
    toss = FakeBank("toss")
    path = tmp_path / "journal.sqlite3"
    out = threading.Barrier(5)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/charges":
            out.wait(5)  # every charge's request is out, and so is the close
            time.sleep(ANSWER_S)
        return toss.respond(request)

    results: dict[str, Payment | BaseException] = {}
    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        router = Router([FakeProvider("toss")], client=client, journal=f"sqlite:///{path}")

        def pay(order_id: str) -> None:
            try:
                results[order_id] = router.charge(order(order_id), [card("toss")])
            except BaseException as exc:  # the test reports it below
                results[order_id] = exc

        threads = [threading.Thread(target=pay, args=(f"T-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        out.wait(5)
        router.close()
        assert not any(thread.is_alive() for thread in threads)
        with pytest.raises(ConfigurationError, match="closed"):
            router.charge(order("T-9"), [card("toss")])
        router.close()  # again: nothing to do
        for thread in threads:
            thread.join()

    assert {o: getattr(r, "attempt_id", r) for o, r in results.items()} == {
        f"T-{n}": f"T-{n}_1" for n in range(4)
    }
    _four_paid_and_the_refused_one_nowhere(path, "T")
    assert toss.requests["charge"] == 4


def test_close_from_inside_a_call_is_refused_rather_than_waiting_for_itself(
    tmp_path: Path,
) -> None:
    """A listener that closes the Router, from inside the charge whose event it hears,
    would wait forever for that charge to return. It is refused instead: the listener's
    error is logged, the payment goes on, and the Router closes once asked from outside."""
    toss = FakeBank("toss")
    refused: list[BaseException] = []
    routers: list[Router] = []

    def close_now(name: str, fields: object) -> None:
        try:
            routers[0].close()
        except ConfigurationError as exc:
            refused.append(exc)
            raise

    with httpx.Client(transport=httpx.MockTransport(toss.respond)) as client:
        router = Router(
            [FakeProvider("toss")],
            client=client,
            journal=f"sqlite:///{tmp_path / 'journal.sqlite3'}",
            listeners=[close_now],
        )
        routers.append(router)
        payment = router.charge(order("L-1"), [card("toss")])
        assert payment.attempt_id == "L-1_1"
        assert refused
        assert all("inside one of this Router's own calls" in str(e) for e in refused)
        router.close()
        with pytest.raises(ConfigurationError, match="closed"):
            router.charge(order("L-2"), [card("toss")])
    assert toss.requests["charge"] == 1


class SlowToStart(SQLiteJournal):
    """A journal whose worker-thread batches start late (a busy machine): long enough for
    anything that does not wait for them to run first."""

    def run_batch(self, calls: Any, *, wait: bool = False) -> list[tuple[bool, Any]] | None:
        if wait:
            time.sleep(0.2)
        return super().run_batch(calls, wait=wait)


@pytest.mark.parametrize("durable", [False, True], ids=["on-the-loop", "in-the-thread"])
def test_aclose_commits_the_success_of_a_charge_cancelled_after_its_approval(
    tmp_path: Path, durable: bool
) -> None:
    """The shop cancels a charge the provider has just approved, closes the Router at once,
    then the journal it handed it. The success still waiting for its batch (on the loop,
    or in the worker thread with FULL, here slow to start) is committed before aclose()
    returns."""
    toss = FakeBank("toss")
    path = tmp_path / "journal.sqlite3"
    approved = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        response = toss.respond(request)
        approved.set()
        return response

    async def main() -> None:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        journal = SlowToStart(path, durable=durable)
        router = AsyncRouter([FakeProvider("toss")], client=client, journal=journal)
        first = asyncio.create_task(router.charge(order("A-1"), [card("toss")]))
        await approved.wait()
        first.cancel()
        await router.aclose()
        journal.close()
        await client.aclose()
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(main())
    assert _journaled(path, ["A-1"]) == [([AttemptState.SUCCEEDED], True)]
    assert toss.requests["charge"] == 1
