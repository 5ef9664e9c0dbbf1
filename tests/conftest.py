"""Shared fixtures: a manual clock, fake banks, and routers of both kinds over them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from payfallback import ManualClock, RetryPolicy
from payfallback.breaker import StateStore
from payfallback.journal import Journal
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider, RouterHarness, mock_transport

KINDS = ["sync", "async"]

MakeRouter = Callable[..., RouterHarness]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Every router test runs once through Router and once through AsyncRouter."""
    return str(request.param)


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


#: Breaker state store + journal under a Router; ``make_router`` builds the one named by the
#: ``backend`` fixture. ``test_backends_matrix.py`` overrides ``backend`` with every pair.
BACKENDS = ["memory+sqlite", "memory+postgres", "redis+sqlite", "redis+postgres"]


@pytest.fixture
def backend() -> str:
    """The default pair, which every router test uses unless a module overrides this."""
    return "memory+sqlite"


@pytest.fixture
def make_router(
    kind: str, clock: ManualClock, journal_path: Path, backend: str
) -> Iterator[MakeRouter]:
    """Build a router of this test's kind over fake banks, on the manual clock, with the
    ``backend`` fixture's state store and journal.

    All routers of one test share one journal (one SQLite file, or one PostgreSQL schema) and
    one state store (in-memory: each router its own, as two processes; Redis: one namespace,
    shared as between processes). PostgreSQL schemas and Redis namespaces are this test's own
    and removed afterwards.
    """
    builders = _Backends(backend, clock, journal_path)
    made: list[RouterHarness] = []

    def make(
        *banks: FakeBank, providers: list[FakeProvider] | None = None, **options: Any
    ) -> RouterHarness:
        options.setdefault("clock", clock)
        if "journal" not in options:
            options["journal"] = builders.journal()
        if "state_store" not in options and builders.shared_store:
            options["state_store"] = builders.store()
        options.setdefault("retry", RetryPolicy(deadline=60.0))
        provs = providers if providers is not None else [FakeProvider(b.name) for b in banks]
        harness = RouterHarness(kind, provs, mock_transport(*banks), **options)  # type: ignore[arg-type]
        made.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in made:
            harness.close()
            harness.router.journal.close()
        builders.close()


class _Backends:
    """Journals and state stores for one test, from a ``backend`` name like ``redis+sqlite``.

    PostgreSQL and Redis are imported only when asked for: the default pair needs neither.
    """

    def __init__(self, backend: str, clock: ManualClock, journal_path: Path) -> None:
        store, _, journal = backend.partition("+")
        if store not in {"memory", "redis"} or journal not in {"sqlite", "postgres"}:
            raise AssertionError(f"no builder for backend {backend!r}")  # a new param, unbuilt
        self.shared_store = store == "redis"
        self._journal_kind = journal
        self._clock = clock
        self._path = journal_path
        self._schemas: Any = None
        self._namespace = f"pftest-router-{uuid.uuid4().hex[:12]}"
        self._stores: list[Any] = []

    def journal(self) -> Journal:
        if self._journal_kind == "sqlite":
            return SQLiteJournal(self._path, clock=self._clock)
        from payfallback.journal.postgres import PostgresJournal  # noqa: PLC0415 - optional
        from tests.test_journal import PG_URL, PgSchemas  # noqa: PLC0415 - same

        if self._schemas is None:
            self._schemas = PgSchemas()
        schema = self._schemas.name("router")
        return PostgresJournal(PG_URL, schema=schema, pool_size=2, clock=self._clock)

    def store(self) -> StateStore:
        import redis  # noqa: PLC0415 - only for the Redis backends

        from payfallback.breaker.redis import RedisStateStore  # noqa: PLC0415 - same

        client = redis.Redis(
            host="127.0.0.1", port=6379, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        # The Router's clock: the store puts the server's deadlines onto it. The refresher
        # stays out of the way; every transition's reply updates the cache anyway.
        store = RedisStateStore(
            client, namespace=self._namespace, clock=self._clock, refresh_interval=3600.0
        )
        self._stores.append((store, client))
        return store

    def close(self) -> None:
        for store, client in self._stores:
            store.shutdown()
            client.close()
        if self._stores:
            import redis  # noqa: PLC0415 - only for the Redis backends

            admin = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5.0)
            for key in admin.scan_iter(match=f"{self._namespace}:*"):
                admin.delete(key)
            admin.close()
        if self._schemas is not None:
            self._schemas.drop()
