"""The Router's core scenarios over every backend pair: {memory, Redis} breaker state stores
by {SQLite, PostgreSQL} journals, each through Router and AsyncRouter.

The scenarios are not copies: they are the tests of ``test_router.py`` themselves, imported
here, where the ``backend`` fixture below replaces conftest's default (memory + SQLite) with
every pair. ``make_router`` builds the pair it names, so one test body runs over all of them;
``test_router.py`` keeps running over the default pair alone.

Picked to touch what differs between backends: journal writes and reads on the happy path and
on a repeated charge, an unknown outcome resolved by lookup (the journal's UNKNOWN state), a
reroute after a hang, a breaker trip the next charges must see through the store, a refund
owed and settled by ``recover()``, and compensation of a late success. Redis decides open and
closed on its own clock, so none of these needs an open time to run out.

Redis is the real server at 127.0.0.1:6379 and PostgreSQL the one named by
``PAYFALLBACK_TEST_POSTGRES``; each test works in a Redis namespace and a schema of its own,
removed at teardown.
"""

from __future__ import annotations

import pytest

from payfallback.breaker import MemoryStateStore
from payfallback.breaker.redis import RedisStateStore
from payfallback.journal.postgres import PostgresJournal
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank
from tests.conftest import BACKENDS, MakeRouter
from tests.test_router import (
    banks,
    test_breaker_opens_and_later_payments_skip_the_failing_provider,
    test_hang_before_processing_is_looked_up_then_rerouted,
    test_happy_path_charges_once_and_journals,
    test_lost_response_is_looked_up_not_rerouted,
    test_refund_while_provider_down_is_owed_then_settled_by_recover,
    test_reroute_with_compensation_refunds_a_late_success,
    test_second_charge_for_same_order_returns_same_payment_and_sends_nothing,
)

# Imported to be collected (and, for ``banks``, to be found as a fixture) in this module.
__all__ = [
    "banks",
    "test_breaker_opens_and_later_payments_skip_the_failing_provider",
    "test_hang_before_processing_is_looked_up_then_rerouted",
    "test_happy_path_charges_once_and_journals",
    "test_lost_response_is_looked_up_not_rerouted",
    "test_refund_while_provider_down_is_owed_then_settled_by_recover",
    "test_reroute_with_compensation_refunds_a_late_success",
    "test_second_charge_for_same_order_returns_same_payment_and_sends_nothing",
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every pair of breaker state store and journal (overrides conftest's default)."""
    return str(request.param)


def test_each_pair_builds_the_backends_it_names(make_router: MakeRouter, backend: str) -> None:
    # Without this, a fixture that quietly fell back to the default pair would pass the whole
    # matrix over memory + SQLite.
    router = make_router(FakeBank("toss")).router
    store, _, journal = backend.partition("+")
    expected_store = RedisStateStore if store == "redis" else MemoryStateStore
    expected_journal = PostgresJournal if journal == "postgres" else SQLiteJournal
    assert type(router.state_store) is expected_store
    assert type(router.journal) is expected_journal
