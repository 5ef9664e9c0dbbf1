"""The AsyncRouter's journal on the event loop.

With PostgreSQL the journal is awaited on the loop over psycopg's async pool: a charge
hands nothing to a worker thread. With SQLite each journal call is one hop to a worker
thread, so the loop never waits on a disk sync, and a charge makes two. Both are checked
by counting what reaches the loop's default executor (where ``asyncio.to_thread`` sends
its work), against the real PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from payfallback import AsyncRouter, ConfigurationError, Instrument, Money, Order, Router
from payfallback.journal.postgres import AsyncPostgresJournal
from payfallback.testing import FakeBank, FakeProvider, mock_transport
from tests.test_journal import PG_URL, PgSchemas


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # asyncio.to_thread hands over partial(context.run, func, *args): name the func, or
        # for a journal call, the journal method it carries.
        target = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn
        owner = getattr(target, "__self__", None)
        operation = getattr(owner, "operation", None)
        self.submitted.append(str(operation or getattr(target, "__qualname__", repr(target))))
        return super().submit(fn, *args, **kwargs)


def run_counting(main: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, list[str]]:
    executor = CountingExecutor()

    async def counted() -> Any:
        asyncio.get_running_loop().set_default_executor(executor)
        return await main()

    try:
        return asyncio.run(counted()), executor.submitted
    finally:
        executor.shutdown()


@pytest.fixture
def schemas() -> Iterator[PgSchemas]:
    made = PgSchemas()
    try:
        yield made
    finally:
        made.drop()


def card(provider: str) -> Instrument:
    return Instrument(provider=provider, billing_key=SecretStr(f"bk-ok-{provider}"))


def order(order_id: str) -> Order:
    return Order(order_id=order_id, amount=Money(amount=4_500), name="Americano")


def test_a_postgresql_url_gives_the_async_router_an_async_journal_and_no_thread_hop(
    schemas: PgSchemas,
) -> None:
    url = f"{PG_URL}?schema={schemas.name('async_router')}&pool_size=2"
    toss, nice = FakeBank("toss"), FakeBank("nice")
    toss.refuse = True  # the primary is down: the charge fails over to NICE

    async def main() -> tuple[str, str, int, bool, type]:
        client = httpx.AsyncClient(transport=mock_transport(toss, nice))
        async with (
            client,
            AsyncRouter(
                [FakeProvider("toss"), FakeProvider("nice")], client=client, journal=url
            ) as router,
        ):
            payment = await router.charge(order("A-1"), [card("toss"), card("nice")])
            again = await router.charge(order("A-1"), [card("toss"), card("nice")])
            report = await router.recover()
            return (
                payment.provider,
                again.payment_id,
                payment.attempts,
                report.clean,
                type(router.journal),
            )

    (provider, again_id, attempts, clean, kind), submitted = run_counting(main)
    assert (provider, again_id, attempts, clean) == ("nice", "pay_A-1", 2, True)
    assert kind is AsyncPostgresJournal
    assert submitted == []
    assert [e.order_ref for e in nice.live_charges()] == ["A-1_2"]


def test_an_async_postgres_journal_object_is_used_on_the_loop_and_left_open(
    schemas: PgSchemas,
) -> None:
    journal = AsyncPostgresJournal(PG_URL, schema=schemas.name("async_given"), pool_size=2)
    bank = FakeBank("toss")

    async def main() -> tuple[str, int]:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with client:
            await journal.open()
            async with AsyncRouter([FakeProvider("toss")], client=client, journal=journal) as r:
                payment = await r.charge(order("B-1"), [card("toss")])
            # The Router did not own it: still open after the Router closed.
            found = await journal.payment_for_order("B-1")
            await journal.close()
            assert found is not None
            return found.payment_id, payment.attempts

    result, submitted = run_counting(main)
    assert result == ("pay_B-1", 1)
    assert submitted == []


def test_with_sqlite_a_charge_makes_two_hops_to_a_worker_thread(tmp_path: Path) -> None:
    bank = FakeBank("toss")

    async def main() -> str:
        client = httpx.AsyncClient(transport=mock_transport(bank))
        async with (
            client,
            AsyncRouter(
                [FakeProvider("toss")],
                client=client,
                journal=f"sqlite:///{tmp_path / 'journal.sqlite3'}",
            ) as router,
        ):
            return (await router.charge(order("C-1"), [card("toss")])).payment_id

    payment_id, submitted = run_counting(main)
    assert payment_id == "pay_C-1"
    # The attempt before the request, the payment after; then closing the journal.
    assert submitted == ["begin_attempt", "record_success", "_RouterBase._close_journal"]


def test_the_sync_router_refuses_an_async_journal() -> None:
    journal = AsyncPostgresJournal(PG_URL, schema="unused", pool_size=1)
    with pytest.raises(ConfigurationError, match="AsyncPostgresJournal goes with the AsyncRouter"):
        Router([FakeProvider("toss")], client=httpx.Client(), journal=journal)
