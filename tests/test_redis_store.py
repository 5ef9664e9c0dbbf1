"""The Redis breaker state store, against the real Redis at 127.0.0.1:6379.

The store contract runs against both :class:`MemoryStateStore` and :class:`RedisStateStore`;
the rest is what only a shared store has to get right: atomic transitions under races, server
time, a cache that spares admission the round trip, an outage that payments do not notice,
and several OS processes that learn from one another.

Each test works in a namespace of its own and deletes only that namespace's keys. Transitions
that need the open time to run out use ``base=0`` (Redis decides on its own clock, which a test
cannot move); the few bounded polls wait on other threads or processes, never assert on time.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from payfallback import Router
from payfallback._clock import ManualClock, SystemClock
from payfallback.breaker import (
    BreakerPolicy,
    BreakerRegistry,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    MemoryStateStore,
    StateStore,
    StoreView,
)
from payfallback.breaker.redis import RedisStateStore
from payfallback.events import EVENT_NAMES, Events
from payfallback.journal.sqlite import SQLiteJournal
from payfallback.testing import FakeBank, FakeProvider

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
DEAD_PORT = 1  # nothing listens there: connection refused at once
KEY = "kakaopay:kakaopay"

SETTINGS = BreakerSettings(
    window_seconds=60.0,
    minimum_calls=5,
    hard_failure_run=3,
    open_seconds=15.0,
    max_open_seconds=300.0,
    open_growth=2.0,
    trip_memory_seconds=600.0,
    half_open_probes=2,
)

Event = tuple[str, dict[str, object]]


def trip_args(
    *, base: float = 10.0, growth: float = 2.0, cap: float = 300.0, memory: float = 600.0
) -> dict[str, float]:
    return {"base": base, "growth": growth, "cap": cap, "memory": memory}


def pool(port: int = REDIS_PORT, **options: Any) -> redis.ConnectionPool:
    return redis.ConnectionPool(
        host=REDIS_HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0, **options
    )


def same(after: StoreView, before: StoreView) -> bool:
    """Whether nothing changed: equal, but ``open_until`` only to within a round trip (a Redis
    store translates the server's deadline onto the local clock afresh with every reply)."""
    if (after.open_until is None) != (before.open_until is None):
        return False
    if (
        after.open_until is not None
        and before.open_until is not None
        and abs(after.open_until - before.open_until) > 0.5
    ):
        return False
    return dataclasses.replace(after, open_until=None) == dataclasses.replace(
        before, open_until=None
    )


class CountingRedis(redis.Redis):
    """A client that notes every command it sends, and on which thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[int, str]] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append((threading.get_ident(), str(args[0])))
        # redis-py leaves execute_command unannotated.
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def mine(self) -> list[str]:
        """Commands sent from the calling thread (not the store's refresher)."""
        me = threading.get_ident()
        return [name for ident, name in self.sent if ident == me]


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state, read afresh (a call, so the type checker does not pin it)."""
    return breaker.state


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, name: str, fields: dict[str, object]) -> None:
        self.events.append((name, fields))

    def named(self, name: str) -> list[dict[str, object]]:
        return [fields for n, fields in self.events if n == name]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    """A plain client for looking at Redis directly."""
    client = redis.Redis(connection_pool=pool())
    yield client
    client.close()


@pytest.fixture
def namespace(admin: redis.Redis) -> Iterator[str]:
    """A namespace of this test's own; its keys (and only those) are deleted afterwards."""
    ns = f"pftest-{uuid.uuid4().hex[:12]}"
    yield ns
    for key in admin.scan_iter(match=f"{ns}:*"):
        admin.delete(key)


MakeStore = Callable[..., RedisStateStore]


@pytest.fixture
def make_store(namespace: str, clock: ManualClock) -> Iterator[MakeStore]:
    """Redis stores in this test's namespace (each its own client: one per process)."""
    made: list[RedisStateStore] = []

    def make(client: redis.Redis | None = None, **options: Any) -> RedisStateStore:
        options.setdefault("namespace", namespace)
        options.setdefault("clock", clock)
        # Long enough that the refresher stays out of the way unless a test wants it.
        options.setdefault("refresh_interval", 3600.0)
        store = RedisStateStore(client or redis.Redis(connection_pool=pool()), **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.shutdown()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, clock: ManualClock) -> StateStore:
    """The same contract checks run against each store."""
    if request.param == "memory":
        return MemoryStateStore(clock)
    made: RedisStateStore = request.getfixturevalue("make_store")()
    return made


# -- the store contract, for every store ------------------------------------------------------


def test_a_breaker_never_seen_reads_closed_at_version_zero(store: StateStore) -> None:
    assert store.view(KEY) == StoreView()


def test_a_verdict_from_closed_opens_once(store: StateStore, clock: ManualClock) -> None:
    opened = store.trip(KEY, lease=None, **trip_args(base=10.0), reason="3 hard failures")

    assert opened.state is BreakerState.OPEN
    assert (opened.trips, opened.open_seconds, opened.reason) == (1, 10.0, "3 hard failures")
    assert opened.open_until == pytest.approx(clock.monotonic() + 10.0, abs=0.5)
    assert store.view(KEY) == opened
    # A second process reaching the same verdict a moment later changes nothing.
    assert same(store.trip(KEY, lease=None, **trip_args(), reason="again"), opened)


def test_no_probe_is_granted_while_closed_or_before_the_deadline(store: StateStore) -> None:
    closed = store.acquire_probe(KEY, limit=2, ttl=18.0)
    assert closed.lease is None
    assert closed.view.state is BreakerState.CLOSED

    store.trip(KEY, lease=None, **trip_args(base=60.0), reason="down")
    still_open = store.acquire_probe(KEY, limit=2, ttl=18.0)
    assert still_open.lease is None
    assert still_open.view.state is BreakerState.OPEN


def test_half_open_admits_at_most_limit_probes(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")

    first = store.acquire_probe(KEY, limit=2, ttl=18.0)
    second = store.acquire_probe(KEY, limit=2, ttl=18.0)
    third = store.acquire_probe(KEY, limit=2, ttl=18.0)

    assert first.view.state is BreakerState.HALF_OPEN
    assert first.lease is not None
    assert second.lease is not None
    assert first.lease != second.lease
    assert third.lease is None
    assert (third.view.state, third.view.probes) == (BreakerState.HALF_OPEN, 2)


def test_a_released_probe_gives_its_slot_back(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    grant = store.acquire_probe(KEY, limit=1, ttl=18.0)
    assert grant.lease is not None
    assert store.acquire_probe(KEY, limit=1, ttl=18.0).lease is None

    released = store.release_probe(KEY, grant.lease)
    assert released.probes == 0
    assert released.version > grant.view.version
    assert same(store.release_probe(KEY, grant.lease), released)  # twice is once
    assert same(store.release_probe(KEY, "no-such-lease"), released)
    assert store.acquire_probe(KEY, limit=1, ttl=18.0).lease is not None


def test_enough_successful_probes_close_it_each_counted_once(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    a = store.acquire_probe(KEY, limit=2, ttl=18.0).lease
    b = store.acquire_probe(KEY, limit=2, ttl=18.0).lease
    assert a is not None
    assert b is not None

    one = store.probe_succeeded(KEY, a, needed=2)
    assert (one.state, one.successes, one.probes) == (BreakerState.HALF_OPEN, 1, 1)
    assert same(store.probe_succeeded(KEY, a, needed=2), one)  # recorded twice, counted once

    closed = store.probe_succeeded(KEY, b, needed=2)
    assert closed.state is BreakerState.CLOSED
    assert (closed.open_until, closed.reason, closed.probes, closed.successes) == (None, None, 0, 0)
    assert closed.trips == 1  # kept: the next trip soon after opens for longer


def test_a_failed_probe_reopens_for_longer(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0, growth=2.0), reason="down")
    a = store.acquire_probe(KEY, limit=2, ttl=18.0).lease
    b = store.acquire_probe(KEY, limit=2, ttl=18.0).lease
    assert a is not None
    assert b is not None

    reopened = store.trip(KEY, lease=a, **trip_args(base=5.0, growth=3.0), reason="probe failed")
    assert (reopened.state, reopened.trips, reopened.reason) == (
        BreakerState.OPEN,
        2,
        "probe failed",
    )
    assert reopened.open_seconds == 15.0  # 5 * 3 ** (2 - 1)
    assert reopened.probes == 0
    # The other probe fails a moment later: its lease went with the reopening, so no
    # second trip is counted for the same outage.
    assert same(store.trip(KEY, lease=b, **trip_args(), reason="probe failed"), reopened)


def test_a_probe_verdict_needs_a_held_lease(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    grant = store.acquire_probe(KEY, limit=2, ttl=18.0)

    before = store.view(KEY)
    assert same(store.trip(KEY, lease="not-held", **trip_args(), reason="x"), before)
    assert store.probe_succeeded(KEY, "not-held", needed=1).state is BreakerState.HALF_OPEN
    assert store.view(KEY).trips == 1
    assert grant.lease is not None
    # A verdict from closed state (lease=None) does not count while half-open either.
    assert store.trip(KEY, lease=None, **trip_args(), reason="x").state is BreakerState.HALF_OPEN


def test_open_time_grows_with_trips_in_a_row_up_to_the_cap(store: StateStore) -> None:
    seen = []
    for _ in range(5):
        view = store.trip(KEY, lease=None, **trip_args(base=10.0, cap=35.0), reason="down")
        seen.append((view.trips, view.open_seconds))
        store.close(KEY)

    assert seen == [(1, 10.0), (2, 20.0), (3, 35.0), (4, 35.0), (5, 35.0)]


def test_trips_start_over_once_closed_for_the_trip_memory(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=10.0), reason="down")
    store.close(KEY)

    # memory=0: any time closed is long enough to forget the last trip.
    fresh = store.trip(KEY, lease=None, **trip_args(base=10.0, memory=0.0), reason="down")
    assert (fresh.trips, fresh.open_seconds) == (1, 10.0)


def test_close_is_an_operator_reset_that_keeps_trips(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(), reason="down")
    store.trip(KEY, lease=None, **trip_args(), reason="down")
    closed = store.close(KEY)

    assert (closed.state, closed.trips, closed.open_until, closed.reason) == (
        BreakerState.CLOSED,
        1,
        None,
        None,
    )
    assert same(store.close(KEY), closed)  # closing a closed breaker changes nothing


def test_an_expired_lease_gives_its_slot_back_and_counts_for_nothing(store: StateStore) -> None:
    store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    lost = store.acquire_probe(KEY, limit=1, ttl=0.0)  # a probe whose call was never recorded
    assert lost.lease is not None

    again = store.acquire_probe(KEY, limit=1, ttl=18.0)
    assert again.lease is not None
    assert again.view.probes == 1
    assert store.probe_succeeded(KEY, lost.lease, needed=1).state is BreakerState.HALF_OPEN
    assert store.probe_succeeded(KEY, again.lease, needed=1).state is BreakerState.CLOSED


def test_every_change_raises_the_version(store: StateStore) -> None:
    versions = [store.view(KEY).version]
    versions.append(store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down").version)
    grant = store.acquire_probe(KEY, limit=2, ttl=18.0)
    assert grant.lease is not None
    versions.append(grant.view.version)
    versions.append(store.probe_succeeded(KEY, grant.lease, needed=1).version)
    versions.append(store.trip(KEY, lease=None, **trip_args(), reason="down").version)
    versions.append(store.close(KEY).version)

    assert versions == sorted(set(versions))  # strictly increasing


def test_breakers_are_independent(store: StateStore) -> None:
    store.trip("kakaopay:kakaopay", lease=None, **trip_args(), reason="down")

    assert store.view("naverpay:naverpay") == StoreView()
    assert store.view("kakaopay:card") == StoreView()
    assert store.view("kakaopay:kakaopay").state is BreakerState.OPEN


def test_a_breaker_over_the_store_trips_and_denies(store: StateStore, clock: ManualClock) -> None:
    registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store)
    breaker = registry.get("kakaopay", "kakaopay")

    decline = breaker.admit()
    breaker.record(decline, duration=0.1, failure=False)  # a decline never moves it
    for _ in range(SETTINGS.hard_failure_run):
        breaker.record(breaker.admit(), duration=0.1, failure=True, hard=True)

    assert state(breaker) is BreakerState.OPEN
    denied = breaker.admit()
    assert not denied.allowed
    assert denied.reason is not None
    assert "3 hard failures in a row" in denied.reason
    assert registry.snapshot()[0].trips == 1


# -- Redis only: atomicity ------------------------------------------------------------------


def test_racing_threads_get_exactly_limit_probe_leases(
    make_store: MakeStore, admin: redis.Redis
) -> None:
    stores = [make_store() for _ in range(4)]  # four processes' stores, four threads each
    stores[0].trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    start = threading.Barrier(16)
    leases: list[str | None] = []

    def race(store: RedisStateStore) -> None:
        start.wait(timeout=10)
        leases.append(store.acquire_probe(KEY, limit=3, ttl=18.0).lease)

    threads = [threading.Thread(target=race, args=(stores[i % 4],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    granted = [lease for lease in leases if lease is not None]
    assert len(leases) == 16
    assert len(granted) == len(set(granted)) == 3
    assert admin.zcard(f"{stores[0].redis_key(KEY)}:probes") == 3


def test_two_processes_racing_to_trip_count_one_trip_per_transition(
    make_store: MakeStore, admin: redis.Redis
) -> None:
    a, b = make_store(), make_store()
    rounds = 20
    start = threading.Barrier(2)
    replies: list[StoreView] = []

    def race(store: RedisStateStore) -> None:
        for _ in range(rounds):
            start.wait(timeout=10)
            replies.append(store.trip(KEY, lease=None, **trip_args(base=1.0), reason="down"))
            start.wait(timeout=10)
            if store is a:
                a.close(KEY)

    threads = [threading.Thread(target=race, args=(s,)) for s in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(replies) == 2 * rounds
    assert sorted(v.trips for v in replies) == sorted([*range(1, rounds + 1)] * 2)
    assert admin.hget(a.redis_key(KEY), "trips") == str(rounds).encode()


def test_two_failed_probes_racing_count_one_trip(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    a.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    lease_a = a.acquire_probe(KEY, limit=2, ttl=18.0).lease
    lease_b = b.acquire_probe(KEY, limit=2, ttl=18.0).lease
    assert lease_a is not None
    assert lease_b is not None
    start = threading.Barrier(2)
    replies: list[StoreView] = []

    def fail(store: RedisStateStore, lease: str) -> None:
        start.wait(timeout=10)
        replies.append(store.trip(KEY, lease=lease, **trip_args(), reason="probe failed"))

    threads = [
        threading.Thread(target=fail, args=(a, lease_a)),
        threading.Thread(target=fail, args=(b, lease_b)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert [v.trips for v in replies] == [2, 2]
    assert a.refresh()
    assert b.refresh()
    assert a.view(KEY).trips == b.view(KEY).trips == 2


def test_open_time_grows_across_processes(make_store: MakeStore) -> None:
    a = make_store(clock=ManualClock())
    b_clock = ManualClock()
    b_clock.advance(50_000.0)  # another process's monotonic clock has its own origin
    b = make_store(clock=b_clock)
    assert b.view(KEY).state is BreakerState.CLOSED  # b has looked before a trips

    a.trip(KEY, lease=None, **trip_args(base=15.0, growth=2.0), reason="down at a")
    assert b.view(KEY).state is BreakerState.CLOSED  # the cache, until the next refresh
    assert b.refresh()
    seen_by_b = b.view(KEY)
    assert (seen_by_b.state, seen_by_b.trips, seen_by_b.reason) == (
        BreakerState.OPEN,
        1,
        "down at a",
    )
    assert seen_by_b.open_until == pytest.approx(b_clock.monotonic() + 15.0, abs=0.5)

    a.close(KEY)  # closed again, but within the trip memory...
    again = b.trip(KEY, lease=None, **trip_args(base=15.0, growth=2.0), reason="down at b")
    assert (again.trips, again.open_seconds) == (2, 30.0)  # ...so b's trip opens for longer
    assert a.refresh()
    assert (a.view(KEY).trips, a.view(KEY).open_seconds) == (2, 30.0)


# -- Redis only: time -------------------------------------------------------------------------


def test_times_come_from_the_redis_server_not_the_local_clocks(
    make_store: MakeStore, admin: redis.Redis
) -> None:
    # Two processes whose wall clocks say 2022 and whose monotonic clocks disagree wildly.
    near, far = ManualClock(), ManualClock()
    far.advance(5_000_000.0)
    a, b = make_store(clock=near), make_store(clock=far)

    opened = a.trip(KEY, lease=None, **trip_args(base=30.0), reason="down")
    server_now, micros = admin.time()
    stored = float(admin.hget(a.redis_key(KEY), "open_until") or b"nan")

    # Redis keeps the deadline on its own clock ...
    assert stored == pytest.approx(server_now + micros / 1e6 + 30.0, abs=5.0)
    assert abs(stored - near.now().timestamp()) > 3600  # ... not on the local wall clock,
    # ... and each process reads it on its own monotonic clock.
    assert opened.open_until == pytest.approx(near.monotonic() + 30.0, abs=0.5)
    assert b.view(KEY).open_until == pytest.approx(far.monotonic() + 30.0, abs=0.5)


# -- Redis only: the cache --------------------------------------------------------------------


def test_admission_reads_the_cache_without_a_round_trip(namespace: str, clock: ManualClock) -> None:
    client = CountingRedis(connection_pool=pool())
    with RedisStateStore(client, namespace=namespace, clock=clock) as store:
        registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store)
        breaker = registry.get("kakaopay", "kakaopay")
        assert breaker.admit().allowed  # first sight: one fetch
        fetched = client.mine()
        assert fetched.count("EVALSHA") == 1

        for _ in range(200):
            admission = breaker.admit()
            assert admission.allowed
            breaker.record(admission, duration=0.1, failure=False)
            assert store.view(breaker.key).state is BreakerState.CLOSED
        assert breaker.is_available() == (True, None)
        assert breaker.snapshot().state is BreakerState.CLOSED

        assert client.mine() == fetched  # 200 payments, not one command


def test_each_transition_is_one_script_call(namespace: str, clock: ManualClock) -> None:
    client = CountingRedis(connection_pool=pool())
    with RedisStateStore(client, namespace=namespace, clock=clock) as store:
        store.view(KEY)  # loads the scripts on first use
        store.trip(KEY, lease=None, **trip_args(base=0.0), reason="warm-up")
        before = len(client.mine())

        store.close(KEY)
        store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
        grant = store.acquire_probe(KEY, limit=2, ttl=18.0)
        assert grant.lease is not None
        store.release_probe(KEY, grant.lease)
        grant = store.acquire_probe(KEY, limit=2, ttl=18.0)
        assert grant.lease is not None
        store.probe_succeeded(KEY, grant.lease, needed=1)

        assert client.mine()[before:] == ["EVALSHA"] * 6


def test_the_refresher_brings_in_other_processes_changes(
    make_store: MakeStore, clock: ManualClock
) -> None:
    a = make_store()
    b = make_store(refresh_interval=0.02)
    registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=b)
    breaker = registry.get("kakaopay", "kakaopay")
    assert breaker.admit().allowed

    a.trip(breaker.key, lease=None, **trip_args(base=60.0), reason="down elsewhere")

    deadline = time.monotonic() + 10.0
    while state(breaker) is not BreakerState.OPEN and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.admit().allowed


def test_shutdown_stops_the_refresher(make_store: MakeStore) -> None:
    store = make_store(refresh_interval=0.01)
    store.view(KEY)
    refreshers = [t for t in threading.enumerate() if t.name.endswith(f"[{store.namespace}]")]
    assert len(refreshers) == 1
    assert refreshers[0].daemon

    store.shutdown()

    assert not refreshers[0].is_alive()


def test_redis_losing_its_data_is_noticed(
    make_store: MakeStore, admin: redis.Redis, clock: ManualClock
) -> None:
    store = make_store()
    events = Recorder()
    registry = BreakerRegistry(
        policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store, on_transition=events
    )
    breaker = registry.get("kakaopay", "kakaopay")
    store.trip(breaker.key, lease=None, **trip_args(), reason="down")
    store.trip(breaker.key, lease=None, **trip_args(), reason="down")
    assert state(breaker) is BreakerState.OPEN

    admin.delete(store.redis_key(KEY), f"{store.redis_key(KEY)}:probes")  # a restart, say
    assert store.refresh()

    # Versions in Redis started over; the breaker still takes the new state as newer.
    assert state(breaker) is BreakerState.CLOSED
    assert [n for n, _ in events.events] == ["breaker.opened", "breaker.closed"]
    assert breaker.admit().allowed


def test_a_client_that_can_decode_responses_works(make_store: MakeStore) -> None:
    store = make_store(redis.Redis(connection_pool=pool(decode_responses=True)))
    grant_view = store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    assert grant_view.state is BreakerState.OPEN
    assert store.acquire_probe(KEY, limit=1, ttl=18.0).lease is not None


# -- Redis only: outages ----------------------------------------------------------------------


def test_with_redis_down_from_the_start_payments_flow_on_local_state(
    namespace: str, clock: ManualClock
) -> None:
    events = Recorder()
    dead = redis.Redis(connection_pool=pool(DEAD_PORT))
    with RedisStateStore(dead, namespace=namespace, clock=clock, on_event=events) as store:
        registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store)
        breaker = registry.get("kakaopay", "kakaopay")

        for _ in range(10):  # payments go through
            admission = breaker.admit()
            assert admission.allowed
            breaker.record(admission, duration=0.1, failure=False)
        for _ in range(SETTINGS.hard_failure_run):  # and the breaker still trips
            breaker.record(breaker.admit(), duration=0.1, failure=True, hard=True)
        assert state(breaker) is BreakerState.OPEN
        assert not breaker.admit().allowed

        clock.advance(SETTINGS.open_seconds)  # ... and recovers through local probes
        probes = [breaker.admit() for _ in range(SETTINGS.half_open_probes)]
        assert all(p.allowed and p.probe for p in probes)
        for probe in probes:
            breaker.record(probe, duration=0.1, failure=False)
        assert state(breaker) is BreakerState.CLOSED
        assert not store.refresh()

    assert [n for n, _ in events.events] == ["storage.degraded"]  # said once
    assert events.events[0][1] == {
        "store": "redis",
        "namespace": namespace,
        "error": "ConnectionError",
    }


def test_an_outage_is_ridden_out_locally_and_shared_again_after(
    make_store: MakeStore, clock: ManualClock, admin: redis.Redis
) -> None:
    up, down = pool(), pool(DEAD_PORT)
    client = redis.Redis(connection_pool=up)
    storage = Recorder()
    transitions = Recorder()
    store = make_store(client, on_event=storage)
    other = make_store()
    registry = BreakerRegistry(
        policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store, on_transition=transitions
    )
    breaker = registry.get("kakaopay", "kakaopay")
    assert breaker.admit().allowed
    assert store.refresh()
    assert not store.degraded

    client.connection_pool = down  # Redis goes away
    assert not store.refresh()
    assert store.degraded
    for _ in range(SETTINGS.hard_failure_run):  # the provider fails meanwhile
        admission = breaker.admit()
        assert admission.allowed
        breaker.record(admission, duration=0.1, failure=True, hard=True)
    assert state(breaker) is BreakerState.OPEN
    assert not store.refresh()
    assert other.view(KEY).state is BreakerState.CLOSED  # Redis never heard of it

    client.connection_pool = up  # Redis is back
    assert store.refresh()

    assert not store.degraded
    assert [n for n, _ in storage.events] == ["storage.degraded", "storage.recovered"]
    assert storage.named("storage.degraded")[0]["error"] == "ConnectionError"
    assert "outage_seconds" in storage.named("storage.recovered")[0]
    # What this process learned during the outage is now everyone's.
    assert admin.hget(store.redis_key(KEY), "state") == b"open"
    assert other.refresh()
    assert other.view(KEY).state is BreakerState.OPEN
    assert other.view(KEY).reason == "3 hard failures in a row"
    # And the breaker never flickered closed on the way back.
    assert state(breaker) is BreakerState.OPEN
    assert [n for n, _ in transitions.events] == ["breaker.opened"]
    assert breaker.snapshot().trips == 1


def test_after_an_outage_the_shared_state_wins_however_busy_the_local_one_was(
    make_store: MakeStore, clock: ManualClock
) -> None:
    client = redis.Redis(connection_pool=pool())
    store, other = make_store(client), make_store()
    registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store)
    breaker = registry.get("kakaopay", "kakaopay")
    assert breaker.admit().allowed

    client.connection_pool = pool(DEAD_PORT)
    assert not store.refresh()
    for _ in range(3):  # a whole local trip-and-recover cycle, several times over
        for _ in range(SETTINGS.hard_failure_run):
            breaker.record(breaker.admit(), duration=0.1, failure=True, hard=True)
        clock.advance(SETTINGS.max_open_seconds)
        for probe in [breaker.admit() for _ in range(SETTINGS.half_open_probes)]:
            breaker.record(probe, duration=0.1, failure=False)
    assert state(breaker) is BreakerState.CLOSED
    # Meanwhile another process, which could reach Redis, found the provider down.
    other.trip(KEY, lease=None, **trip_args(base=60.0), reason="down at the other")

    client.connection_pool = pool()
    assert store.refresh()

    assert state(breaker) is BreakerState.OPEN
    assert breaker.snapshot().reason == "down at the other"


def test_an_open_breaker_stays_open_through_an_outage(
    make_store: MakeStore, clock: ManualClock
) -> None:
    client = redis.Redis(connection_pool=pool())
    storage = Recorder()
    store = make_store(client, on_event=storage)
    registry = BreakerRegistry(policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store)
    breaker = registry.get("kakaopay", "kakaopay")
    store.trip(breaker.key, lease=None, **trip_args(base=60.0), reason="down everywhere")
    assert not breaker.admit().allowed

    client.connection_pool = pool(DEAD_PORT)
    assert not store.refresh()

    denied = breaker.admit()  # the local fallback starts from the last shared state
    assert not denied.allowed
    assert denied.reason is not None
    assert "down everywhere" in denied.reason
    clock.advance(60.0)
    assert breaker.admit().probe  # and runs its own half-open meanwhile
    assert len(storage.named("storage.degraded")) == 1


def test_a_transition_that_fails_mid_call_falls_back_and_says_so_once(
    make_store: MakeStore, clock: ManualClock
) -> None:
    client = redis.Redis(connection_pool=pool())
    storage = Recorder()
    store = make_store(client, on_event=storage)
    assert store.view(KEY).state is BreakerState.CLOSED

    client.connection_pool = pool(DEAD_PORT)
    opened = store.trip(KEY, lease=None, **trip_args(base=0.0), reason="down")
    grant = store.acquire_probe(KEY, limit=1, ttl=18.0)

    assert opened.state is BreakerState.OPEN
    assert grant.lease is not None
    assert store.probe_succeeded(KEY, grant.lease, needed=1).state is BreakerState.CLOSED
    assert [n for n, _ in storage.events] == ["storage.degraded"]


def test_a_redis_that_does_not_answer_is_left_after_the_timeout(
    namespace: str, clock: ManualClock
) -> None:
    # A loopback server that accepts connections and never replies: a hung Redis.
    with socket.create_server((REDIS_HOST, 0)) as hung:
        port = hung.getsockname()[1]
        storage = Recorder()
        with RedisStateStore.from_url(
            f"redis://{REDIS_HOST}:{port}/0",
            namespace=namespace,
            clock=clock,
            timeout=0.05,
            on_event=storage,
        ) as store:
            registry = BreakerRegistry(
                policy=BreakerPolicy(normal=SETTINGS), clock=clock, store=store
            )
            breaker = registry.get("kakaopay", "kakaopay")
            admission = breaker.admit()
            assert admission.allowed
            breaker.record(admission, duration=0.1, failure=False)

    assert storage.events == [
        ("storage.degraded", {"store": "redis", "namespace": namespace, "error": "TimeoutError"})
    ]


def test_outage_events_never_carry_the_password(namespace: str, clock: ManualClock) -> None:
    heard: list[tuple[str, object]] = []
    events = Events([lambda name, fields: heard.append((name, dict(fields)))])
    url = f"redis://payments:s3cr3t-pw@{REDIS_HOST}:{DEAD_PORT}/0"
    with RedisStateStore.from_url(
        url, namespace=namespace, clock=clock, timeout=0.05, on_event=events.transition
    ) as store:
        assert store.view(KEY).state is BreakerState.CLOSED
        assert store.degraded
        assert "s3cr3t" not in repr(store)

    assert [name for name, _ in heard] == ["storage.degraded"]
    assert "s3cr3t" not in repr(heard)
    assert {"storage.degraded", "storage.recovered"} <= EVENT_NAMES


def test_a_client_without_timeouts_is_refused(namespace: str) -> None:
    unbounded = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=None)
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisStateStore(unbounded, namespace=namespace)


@pytest.mark.parametrize("bad", ["", "shop{1}", "a}b"])
def test_a_namespace_must_be_usable_in_a_key(bad: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisStateStore(redis.Redis(connection_pool=pool()), namespace=bad)


# -- several OS processes ---------------------------------------------------------------------

PROCESSES = 4


def _process(
    index: int,
    namespace: str,
    failing: int,
    ready: Any,
    results: Any,
) -> None:
    """One payment process: its own registry, store, client and window."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1.0)
    store = RedisStateStore(client, namespace=namespace, refresh_interval=0.05)
    registry = BreakerRegistry(
        policy=BreakerPolicy(normal=dataclasses.replace(SETTINGS, open_seconds=120.0)),
        clock=SystemClock(),
        store=store,
    )
    breaker = registry.get("kakaopay", "kakaopay")
    try:
        admitted = breaker.admit().allowed
        ready.wait(timeout=30)
        if index == failing:
            for _ in range(SETTINGS.hard_failure_run):
                breaker.record(breaker.admit(), duration=0.1, failure=True, hard=True)
        deadline = time.monotonic() + 15.0
        while state(breaker) is not BreakerState.OPEN and time.monotonic() < deadline:
            time.sleep(0.01)
        snapshot = breaker.snapshot()
        results.put((index, admitted, str(snapshot.state), snapshot.trips, breaker.admit().allowed))
    finally:
        store.shutdown()
        client.close()


def test_failures_seen_by_one_process_open_the_breaker_in_every_process(
    namespace: str, admin: redis.Redis
) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES + 1)
    results = context.Queue()
    failing = 2
    processes = [
        context.Process(target=_process, args=(i, namespace, failing, ready, results))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(timeout=30)  # every process has looked at the (closed) breaker
        reports = sorted(results.get(timeout=30) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=30)

    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert reports == [(i, True, "open", 1, False) for i in range(PROCESSES)]
    assert admin.hget(f"{namespace}:breaker:{{{KEY}}}", "trips") == b"1"


def test_router_builds_and_owns_a_redis_store_from_its_url() -> None:
    namespace = f"pftest-url-{uuid.uuid4().hex[:8]}"
    bank = FakeBank("toss")
    with httpx.Client(transport=bank.transport()) as client, SQLiteJournal(":memory:") as journal:
        router = Router(
            [FakeProvider("toss")],
            client=client,
            journal=journal,
            state_store=f"redis://127.0.0.1:6379/0?namespace={namespace}",
        )
        store = router.state_store
        assert isinstance(store, RedisStateStore)
        assert store.redis_key("toss:card").startswith(f"{namespace}:")
        router.close()
        assert store.degraded is False
