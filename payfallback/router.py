"""Router (sync) and AsyncRouter (async): the one object a merchant builds.

Named as httpx, psycopg, tenacity and redis-py name theirs: the sync class plainly, the
async one with a prefix.

Both are thin drivers of the same decision core (``payfallback/_core.py``): each operation
is a generator of actions — send this request, sleep, call the journal — and a driver
only carries them out, with the caller's httpx client or the recommended one
(:mod:`payfallback.transports`, closed with the router). Nothing about routing, retries,
lookups or refunds is written here, so the two behave identically by construction.

Every request is sent with explicit connect and read timeouts (from the breaker's policy
in force: shorter at peak hours), never the client's defaults.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypedDict, TypeVar, Unpack, cast

import httpx

from payfallback._clock import Clock, SystemClock
from payfallback._core import (
    Choice,
    Core,
    CoreConfig,
    Done,
    FlowGen,
    RecoveryReport,
    Send,
    Sent,
    Sleep,
    advance,
)
from payfallback._flow import moved_money, thrown
from payfallback.breaker import (
    BreakerPolicy,
    BreakerRegistry,
    BreakerSnapshot,
    MaintenanceWindow,
    MemoryStateStore,
    StateStore,
)
from payfallback.errors import ConfigurationError
from payfallback.events import Events, Listener
from payfallback.journal import Journal, SQLiteJournal
from payfallback.models import (
    CheckoutSession,
    Instrument,
    Method,
    Money,
    Order,
    Payment,
    Platform,
    Refund,
    ReturnUrls,
)
from payfallback.provider import Provider
from payfallback.retry import RetryBudget, RetryPolicy
from payfallback.transports import AsyncSend, let_go, owned_async_client, recommended_client
from payfallback.transports._gate import async_pool_gate, pool_gate

if TYPE_CHECKING:
    from payfallback.journal.postgres import AsyncPostgresJournal
    from payfallback.settings import Settings

__all__ = ["AsyncRouter", "Router", "RouterOptions"]

T = TypeVar("T")

DEFAULT_JOURNAL_PATH = "payfallback.sqlite3"
#: How many turns of the event loop an :class:`AsyncRouter`'s SQLite batch stays open after
#: its first journal call: what the payments journal meanwhile is committed with it. An idle
#: loop turns at once; at 64 payments in flight, six turns rather than two cut the CPU a
#: charge by some 5 % (benchmarks/README.md), and 1 and 16 in flight did not change.
BATCH_TURNS = 6


def after_turns(loop: asyncio.AbstractEventLoop, turns: int, callback: Callable[[], Any]) -> None:
    """Run ``callback`` ``turns`` turns of ``loop`` from this one (1: in the next turn)."""
    if turns <= 1:
        loop.call_soon(callback)
    else:
        loop.call_soon(after_turns, loop, turns - 1, callback)


class RouterOptions(TypedDict, total=False):
    """Keyword options shared by :class:`Router` and :class:`Router`.

    journal
        A :class:`~payfallback.journal.Journal`, or a URL (``sqlite:///path``,
        ``postgresql://…``), or None for the embedded default: a durable SQLite file
        ``payfallback.sqlite3`` in the working directory. The AsyncRouter also takes an
        :class:`~payfallback.journal.postgres.AsyncPostgresJournal`, and opens one for a
        ``postgresql://`` URL.
    state_store
        Where breaker state lives; default: in this process's memory. Several processes
        or terminals share what they learn through
        ``payfallback.breaker.redis.RedisStateStore.from_url("redis://…", namespace="shop-1")``
        or just the URL ``"redis://host:6379/0?namespace=shop-1"`` (the ``redis`` extra); its
        ``storage.degraded``/``storage.recovered`` events come out of the Router like any
        other.
    breaker_policy
        Thresholds and timeouts, normal and at peak hours; default
        :meth:`BreakerPolicy.default` (peak Fri-Sun 17:00-21:00 Asia/Seoul).
    maintenance
        Announced provider downtime; traffic is routed around it in advance.
    retry
        :class:`~payfallback.retry.RetryPolicy`: per-provider attempts, deadline, lookups.
    retry_budget
        Router-wide share of requests that may be retries (default 0.2).
    clock
        Injected clock (tests, the simulator); default the system clock.
    listeners
        Callables ``(event_name, fields)`` for metrics and alerts.
    compensate
        Opt-in *reroute with compensation*: after an unknown outcome that bounded
        lookups could not resolve, pay elsewhere now and refund the first attempt
        automatically if it turns out to have succeeded (journaled first). Only for
        providers that can be asked about an attempt by our id.
    fallback_methods
        For checkouts: methods to offer when the asked one has no healthy provider,
        e.g. ``{Method.KAKAOPAY: [Method.NAVERPAY, Method.TOSSPAY]}``.
    lease_seconds
        How long an in-flight attempt holds its order before it counts as crashed.
    recheck_window
        How long :meth:`~Router.recover` keeps looking for a late charge on an attempt
        that ended failed after its request may have reached the provider (default one
        day); one that shows up is refunded automatically, journaled first.
    """

    journal: Journal | AsyncPostgresJournal | str | None
    state_store: StateStore | str | None
    breaker_policy: BreakerPolicy | None
    maintenance: Iterable[MaintenanceWindow]
    retry: RetryPolicy | None
    retry_budget: float
    clock: Clock | None
    listeners: Iterable[Listener]
    compensate: bool
    fallback_methods: Mapping[Method, Sequence[Method]] | None
    lease_seconds: float
    recheck_window: timedelta


def open_journal(spec: Journal | str | None, clock: Clock) -> tuple[Journal, bool]:
    """A journal from an object or URL; the flag says whether the Router owns (closes) it."""
    if spec is None:
        spec = f"sqlite:///{DEFAULT_JOURNAL_PATH}"
    if not isinstance(spec, str):
        return spec, False
    if spec.startswith("sqlite:"):
        return SQLiteJournal.from_url(spec, clock=clock), True
    if spec.startswith(("postgresql:", "postgres:")):
        try:
            # Imported on use: psycopg is an optional dependency.
            from payfallback.journal.postgres import (  # noqa: PLC0415
                PostgresJournal,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "the PostgreSQL journal needs psycopg: pip install 'payfallback[postgres]'"
            ) from exc
        journal: Journal = PostgresJournal.from_url(spec, clock=clock)
        return journal, True
    raise ConfigurationError(
        f"unknown journal URL {spec.split(':', 1)[0]!r}; use sqlite:///path or postgresql://…"
    )


def is_async_journal(journal: object) -> bool:
    """Whether ``journal`` has the journal's methods as coroutines
    (:class:`~payfallback.journal.postgres.AsyncPostgresJournal`)."""
    return inspect.iscoroutinefunction(getattr(journal, "begin_attempt", None))


def open_async_journal(spec: object, clock: Clock) -> tuple[Any, bool] | None:
    """For the AsyncRouter: an async journal from an object or a PostgreSQL URL (the flag
    says whether the Router owns it), or None when ``spec`` names a sync journal."""
    if is_async_journal(spec):
        return spec, False
    if isinstance(spec, str) and spec.startswith(("postgresql:", "postgres:")):
        try:
            from payfallback.journal.postgres import (  # noqa: PLC0415 - optional
                AsyncPostgresJournal,
            )
        except ImportError as exc:
            raise ConfigurationError(
                "the PostgreSQL journal needs psycopg: pip install 'payfallback[postgres]'"
            ) from exc
        return AsyncPostgresJournal.from_url(spec, clock=clock), True
    return None


def open_state_store(spec: StateStore | str | None, clock: Clock) -> tuple[StateStore, bool]:
    """A breaker state store from an object or URL; the flag says whether the Router owns it."""
    if spec is None:
        return MemoryStateStore(clock), True
    if not isinstance(spec, str):
        return spec, False
    if spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            from payfallback.breaker.redis import RedisStateStore  # noqa: PLC0415 - optional
        except ImportError as exc:
            raise ConfigurationError(
                "the Redis state store needs redis-py: pip install 'payfallback[redis]'"
            ) from exc
        url = httpx.URL(spec)
        namespace = url.params.get("namespace", "payfallback")
        bare = str(url.copy_remove_param("namespace"))
        return RedisStateStore.from_url(bare, namespace=namespace, clock=clock), True
    if spec == "memory":
        return MemoryStateStore(clock), True
    raise ConfigurationError(
        f"unknown state store URL {spec.split(':', 1)[0]!r}; use redis://host:port/db or 'memory'"
    )


def _with_settings(settings: Settings, options: RouterOptions) -> RouterOptions:
    """``options``, with the journal and state store from ``settings`` where not given."""
    merged: RouterOptions = {"journal": settings.journal, "state_store": settings.state_store}
    merged.update(options)
    return merged


class _RouterBase:
    _owns_async_journal = False

    def __init__(self, providers: Iterable[Provider], **options: Unpack[RouterOptions]) -> None:
        clock = options.get("clock") or SystemClock()
        self.clock = clock
        self.events = Events(options.get("listeners", ()))
        spec = options.get("journal")
        if is_async_journal(spec):
            # Only the AsyncRouter gets here with one (it awaits its methods on the loop).
            self.journal, self._owns_journal = cast(Journal, spec), self._owns_async_journal
        else:
            self.journal, self._owns_journal = open_journal(
                cast("Journal | str | None", spec), clock
            )
        store, self._owns_store = open_state_store(options.get("state_store"), clock)
        self._store = store
        # A shared store (Redis) reports storage.degraded / storage.recovered as our events.
        add_listener = getattr(store, "add_listener", None)
        if callable(add_listener):
            add_listener(self.events.transition)
        self.breakers = BreakerRegistry(
            policy=options.get("breaker_policy") or BreakerPolicy.default(),
            clock=clock,
            store=store,
            maintenance=list(options.get("maintenance", ())),
            on_transition=self.events.transition,
        )
        #: Calls in progress (charges, checkouts, refunds, recover). Once closing, a new
        #: call is refused and close waits for these: a payment whose request is out ends
        #: journaled, not cut off from its journal.
        self._calls = 0
        self._closing = False
        self._closed = False
        self._core = Core(
            list(providers),
            breakers=self.breakers,
            retry=options.get("retry") or RetryPolicy(),
            budget=RetryBudget(clock, ratio=options.get("retry_budget", 0.2)),
            events=self.events,
            clock=clock,
            config=CoreConfig(
                compensate=options.get("compensate", False),
                fallback_methods=options.get("fallback_methods") or {},
                lease_seconds=options.get("lease_seconds", 120.0),
                recheck_window=options.get("recheck_window", timedelta(days=1)),
            ),
        )

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._core.providers

    @property
    def state_store(self) -> StateStore:
        """Where this Router's breaker state lives."""
        return self._store

    def available(self, method: Method | None = None) -> list[Choice]:
        """Providers (and methods) whose breaker admits traffic now, in configured order."""
        return self._core.available(method)

    def health(self) -> list[BreakerSnapshot]:
        """Every breaker's state, for a /health endpoint or ``payfallback status``."""
        return self.breakers.snapshot()

    def _refuse_if_closed(self, flow: FlowGen[Any]) -> None:
        if self._closing:
            flow.close()
            raise ConfigurationError(
                "this Router is closed (or closing): make every call before close() / "
                "aclose(), or open a new Router"
            )

    def _close_journal(self) -> None:
        shutdown = getattr(self._store, "shutdown", None)
        if self._owns_store and callable(shutdown):
            shutdown()
        if self._owns_journal:
            self.journal.close()


class Router(_RouterBase):
    """Synchronous Router for POS terminals and sync backends, on an ``httpx.Client``.

    On httpx's own (httpcore) HTTP/1.1 pool, the requests of the threads that share it wait
    for a connection in a queue of the Router's, at most ``max_connections`` of them inside
    the pool at once and none longer than its pool timeout (httpcore's queue costs CPU per
    waiting request on every request: encode/httpcore#1035)."""

    def __init__(
        self,
        providers: Iterable[Provider],
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
        **options: Unpack[RouterOptions],
    ) -> None:
        if client is not None and not isinstance(client, httpx.Client):
            raise ConfigurationError(
                "Router needs an httpx.Client (AsyncRouter takes an httpx.AsyncClient)"
            )
        if is_async_journal(options.get("journal")):
            raise ConfigurationError(
                "Router needs a sync journal (PostgresJournal, SQLiteJournal or a URL); "
                "an AsyncPostgresJournal goes with the AsyncRouter"
            )
        super().__init__(providers, **options)
        # Without a client, the recommended one (payfallback.transports), closed with us.
        self._owns_client = client is None
        self._client = recommended_client() if client is None else client
        # On httpcore's pool, the Router's requests wait for a connection in a queue of
        # ours, not in the pool's (see payfallback.transports._gate).
        self._gate = pool_gate(self._client)
        self._send: Callable[[httpx.Request], httpx.Response] = (
            self._client.send if self._gate is None else partial(self._gate.send, self._client)
        )
        self._sleep = sleep or time.sleep
        #: Notified when the last call in progress returns (see close).
        self._idle = threading.Condition()
        #: Calls in progress on this thread (a listener may call close() from inside one).
        self._depth = threading.local()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] | None = None,
        **options: Unpack[RouterOptions],
    ) -> Self:
        """A Router for :class:`~payfallback.settings.Settings`: its providers (built through
        :func:`~payfallback.load_provider`, in ``provider_order``), journal and state store.
        ``options`` are the constructor's and win over the settings.

        ``Router.from_settings(Settings.load("payfallback.toml"), client=httpx.Client())``
        """
        providers = settings.build_providers()
        return cls(providers, client=client, sleep=sleep, **_with_settings(settings, options))

    def _run(self, flow: FlowGen[T]) -> T:
        with self._idle:
            self._refuse_if_closed(flow)
            self._calls += 1
        self._depth.calls = getattr(self._depth, "calls", 0) + 1
        try:
            return self._drive(flow)
        finally:
            self._depth.calls -= 1
            with self._idle:
                self._calls -= 1
                if not self._calls:
                    self._idle.notify_all()

    def _drive(self, flow: FlowGen[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        #: Whether a request of this call may have moved money (see thrown).
        sent = False
        while True:
            action = advance(flow, value, error)
            if isinstance(action, Done):
                return action.value
            value, error = None, None
            try:
                if isinstance(action, Send):
                    start = self.clock.monotonic()
                    result: httpx.Response | httpx.TransportError
                    try:
                        result = let_go(self._send(action.request))
                    except httpx.TransportError as exc:
                        result = exc
                    sent = sent or moved_money(action, result)
                    value = Sent(result, self.clock.monotonic() - start)
                elif isinstance(action, Sleep):
                    self._sleep(action.seconds)
                else:
                    value = action.call(self.journal)
            except Exception as exc:
                error = thrown(flow, action, exc, sent=sent)

    def charge(self, order: Order, instruments: Sequence[Instrument]) -> Payment:
        """Charge a stored instrument, falling over down ``instruments`` safely.

        Idempotent per order: a second call for a paid order returns the same Payment and
        sends nothing. Raises ``Declined`` (the customer's answer; not rerouted),
        ``OutcomeUnknown`` (journaled; never sent elsewhere blindly),
        ``AllProvidersUnavailable`` (why each was skipped) or ``InvalidRequest``.
        """
        return self._run(self._core.charge(order, list(instruments)))

    def start_checkout(
        self,
        order: Order,
        method: Method,
        return_urls: ReturnUrls,
        *,
        platform: Platform = Platform.PC,
        fallback_methods: Sequence[Method] | None = None,
    ) -> CheckoutSession:
        """Start a redirect/wallet checkout at the first healthy provider for ``method``
        (then the fallback methods); send the customer to a ``redirect_url``."""
        return self._run(
            self._core.start_checkout(order, method, return_urls, platform, fallback_methods)
        )

    def complete_checkout(self, session_id: str, callback_params: Mapping[str, str]) -> Payment:
        """Approve what the customer approved at the provider; idempotent per order.

        ``callback_params`` are the query/form parameters of the return-URL request.
        The approved amount is checked against the order.
        """
        return self._run(self._core.complete_checkout(session_id, callback_params))

    def refund(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        reason: str = "",
        idempotency_key: str | None = None,
        tax_free_amount: int | None = None,
    ) -> Refund:
        """Refund (all that is left of) a payment at the provider that charged it.

        If the provider cannot confirm the cancel now, the refund is kept ``OWED`` in the
        journal and :meth:`recover` retries it; it is never dropped.

        ``idempotency_key`` (stripe-python's convention) makes a 환불 button safe to
        double-click: a repeat with the same key returns the same ``Refund`` and sends
        nothing; the same key with other arguments is an ``InvalidRequest``.
        ``tax_free_amount`` is the tax-free (면세) part of the refund; by default the
        order's tax-free amount is shared pro rata and the refund that empties the payment
        takes what is left, so the parts add up exactly.
        """
        return self._run(
            self._core.refund(
                payment_id,
                amount,
                reason,
                idempotency_key=idempotency_key,
                tax_free_amount=tax_free_amount,
            )
        )

    def recover(self) -> RecoveryReport:
        """Settle what is left open: unknown attempts (by lookup), owed refunds, and late
        charges on attempts that ended failed. The report is ``clean`` only when nothing is
        open — attempts another worker (or a killed process) still holds are listed in
        ``in_flight`` with when their lease ends."""
        return self._run(self._core.recover())

    def close(self) -> None:
        """Close what the Router opened: its journal, state store and client (not one
        handed to it).

        Calls in progress on other threads are let finish first (each within its own
        deadline), so that a payment whose request is out ends journaled; a call made
        from now on raises ``ConfigurationError``. Calling it again does nothing."""
        with self._idle:
            if getattr(self._depth, "calls", 0):
                raise ConfigurationError(
                    "close() was called from inside one of this Router's own calls (a "
                    "listener?); close the Router once that call has returned"
                )
            self._closing = True
            while self._calls:
                self._idle.wait()
            if self._closed:
                return
            self._closed = True
        try:
            self._close_journal()
        finally:
            if self._owns_client:
                self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _settle(
    batch: Sequence[tuple[object, asyncio.Future[Any]]], results: Sequence[tuple[bool, Any]]
) -> None:
    """Hand each waiting journal call its result (or its error)."""
    for (_, done), (ok, value) in zip(batch, results, strict=True):
        if done.done():  # the payment went away (cancelled); what it wrote is kept
            continue
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)


class AsyncRouter(_RouterBase):
    """The async Router for backends, on an ``httpx.AsyncClient``.

    With PostgreSQL (a ``postgresql://`` URL, or an
    :class:`~payfallback.journal.postgres.AsyncPostgresJournal`), journal calls are awaited
    on the loop over psycopg's async pool: no thread hop. With SQLite every journal call
    the payments make in ``BATCH_TURNS`` (six) turns of the loop is committed together
    (:meth:`~payfallback.journal.SQLiteJournal.run_batch`: a group commit, where a call
    that fails is undone alone; each payment still has its attempt committed before it
    is sent). In WAL NORMAL (``durable=False``) the batch commits on the loop whenever
    that cannot mean waiting (no other writer holds the file); with FULL (the default), or
    when it would wait, the batch goes to a worker thread, so the loop never waits on a
    disk sync or another process's lock. One batch is in the thread at a time; what the
    payments journal meanwhile goes next, together, so a slower disk means bigger batches
    rather than a queue of fsyncs.

    Without ``client=`` it builds :func:`~payfallback.transports.recommended_async_client`
    (aiohttp's pool with ``payfallback[aiohttp]``) and closes it with itself; over aiohttp
    it hands its requests to the transport itself
    (:func:`~payfallback.transports.owned_async_client`). On httpx's own (httpcore) HTTP/1.1
    pool, its requests wait for a connection in a queue of the Router's, at most
    ``max_connections`` of them inside the pool at once and none longer than its pool
    timeout (httpcore's queue costs CPU per waiting request on every request:
    encode/httpcore#1035)."""

    def __init__(
        self,
        providers: Iterable[Provider],
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Unpack[RouterOptions],
    ) -> None:
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ConfigurationError(
                "AsyncRouter needs an httpx.AsyncClient (Router takes an httpx.Client)"
            )
        clock = options.get("clock") or SystemClock()
        opened = open_async_journal(options.get("journal"), clock)
        self._async_journal: Any = None
        self._journal_open = False
        self._journal_opening: asyncio.Future[Any] | None = None
        if opened is not None:
            self._async_journal, self._owns_async_journal = opened
            options = {**options, "journal": self._async_journal, "clock": clock}
        super().__init__(providers, **options)
        # Without a client, the recommended one (aiohttp's pool with the [aiohttp] extra),
        # closed with us.
        self._owns_client = client is None
        direct: AsyncSend | None = None
        if client is None:
            # Ours alone: over aiohttp, its requests go straight to the transport.
            self._client, direct = owned_async_client()
        else:
            self._client = client
        # On httpcore's pool, the Router's requests wait for a connection in a queue of
        # ours, not in the pool's (see payfallback.transports._gate).
        self._gate = async_pool_gate(self._client)
        self._send: AsyncSend = direct or (
            self._client.send if self._gate is None else partial(self._gate.send, self._client)
        )
        self._run_batch: Callable[..., list[tuple[bool, Any]] | None] | None = (
            None if self._async_journal is not None else getattr(self.journal, "run_batch", None)
        )
        self._batch: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = []
        #: The batch committing in the worker thread, if one is (and its one reference).
        self._in_thread: asyncio.Future[None] | None = None
        self._sleep = sleep or asyncio.sleep
        #: Set while no call is in progress (see aclose).
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        **options: Unpack[RouterOptions],
    ) -> Self:
        """Async :meth:`Router.from_settings`, on an ``httpx.AsyncClient``."""
        providers = settings.build_providers()
        return cls(providers, client=client, sleep=sleep, **_with_settings(settings, options))

    async def _run(self, flow: FlowGen[T]) -> T:
        self._refuse_if_closed(flow)
        self._calls += 1
        self._idle.clear()
        try:
            return await self._drive(flow)
        finally:
            self._calls -= 1
            if not self._calls:
                self._idle.set()

    async def _drive(self, flow: FlowGen[T]) -> T:
        value: Any = None
        error: BaseException | None = None
        #: Whether a request of this call may have moved money (see thrown).
        sent = False
        while True:
            action = advance(flow, value, error)
            if isinstance(action, Done):
                return action.value
            value, error = None, None
            try:
                if isinstance(action, Send):
                    start = self.clock.monotonic()
                    result: httpx.Response | httpx.TransportError
                    try:
                        result = let_go(await self._send(action.request))
                    except httpx.TransportError as exc:
                        result = exc
                    sent = sent or moved_money(action, result)
                    value = Sent(result, self.clock.monotonic() - start)
                elif isinstance(action, Sleep):
                    await self._sleep(action.seconds)
                elif self._async_journal is not None:
                    # An async journal (PostgreSQL over psycopg's async pool) runs on the
                    # loop: no thread hop.
                    if not self._journal_open:
                        await self._open_journal()
                    value = await action.call(self._async_journal)
                elif self._run_batch is not None:
                    # SQLite: a group commit of every journal call made in this turn of
                    # the loop and the next (see _batched, _flush).
                    value = await self._batched(action.call)
                else:
                    # Any other sync journal: in a worker thread, so the loop never waits
                    # on a disk sync or a lock.
                    value = await asyncio.to_thread(action.call, self.journal)
            except Exception as exc:
                error = thrown(flow, action, exc, sent=sent)

    async def _batched(self, call: Callable[[Any], Any]) -> Any:
        """``call(journal)``, committed with every other journal call made from this turn
        of the event loop until ``BATCH_TURNS`` turns later (:meth:`SQLiteJournal.run_batch`)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._batch.append((call, done))
        if len(self._batch) == 1 and self._in_thread is None:
            # Committed some turns later: those turns run the answers that arrive
            # meanwhile, whose journal calls join this batch, and the payments it then
            # lets go run on together in fewer, fuller turns. At 64 payments in flight
            # that is some 5 % less CPU a payment than committing a turn later
            # (benchmarks/README.md). An idle loop turns at once.
            after_turns(loop, BATCH_TURNS, self._flush)
        return await done

    def _flush(self) -> None:
        """Commit the batch on the loop when that cannot mean waiting (WAL NORMAL, no
        other writer); otherwise in one worker thread, so the loop never waits on a disk
        sync (FULL) or another process's lock.

        One batch at a time goes to the thread: what the payments journal while it commits
        waits for it and goes next, all together. So the slower a commit (an fsync), the
        more calls share the next one, instead of each call taking a thread of its own and
        queueing there for the journal, one commit each."""
        if self._in_thread is not None or not self._batch:
            return
        batch, self._batch = self._batch, []
        assert self._run_batch is not None
        results: list[tuple[bool, Any]] | None
        try:
            results = self._run_batch([call for call, _ in batch])
        except Exception as exc:
            results = [(False, exc)] * len(batch)
        if results is None:
            self._in_thread = asyncio.ensure_future(self._flush_in_thread(batch))
            return
        _settle(batch, results)

    async def _flush_in_thread(
        self, batch: list[tuple[Callable[[Any], Any], asyncio.Future[Any]]]
    ) -> None:
        assert self._run_batch is not None
        calls = [call for call, _ in batch]
        results: list[tuple[bool, Any]] | None
        try:
            try:
                results = await asyncio.to_thread(self._run_batch, calls, wait=True)
                if results is None:  # a journal that cannot wait either: no caller may hang
                    raise RuntimeError("the journal ran none of the batch")
            except Exception as exc:
                results = [(False, exc)] * len(batch)
            _settle(batch, results)
        finally:
            # The next batch: everything journaled while this one committed.
            self._in_thread = None
            self._flush()

    async def _open_journal(self) -> None:
        """Open the async journal once, however many payments arrive first at once: they
        all wait for the one opening (a failed one is tried again by the next payment)."""
        opening = self._journal_opening
        if opening is None or (
            opening.done() and (opening.cancelled() or opening.exception() is not None)
        ):
            opening = self._journal_opening = asyncio.ensure_future(self._async_journal.open())
        await asyncio.shield(opening)
        self._journal_open = True

    async def charge(self, order: Order, instruments: Sequence[Instrument]) -> Payment:
        """Async :meth:`Router.charge`."""
        return await self._run(self._core.charge(order, list(instruments)))

    async def start_checkout(
        self,
        order: Order,
        method: Method,
        return_urls: ReturnUrls,
        *,
        platform: Platform = Platform.PC,
        fallback_methods: Sequence[Method] | None = None,
    ) -> CheckoutSession:
        """Async :meth:`Router.start_checkout`."""
        return await self._run(
            self._core.start_checkout(order, method, return_urls, platform, fallback_methods)
        )

    async def complete_checkout(
        self, session_id: str, callback_params: Mapping[str, str]
    ) -> Payment:
        """Async :meth:`Router.complete_checkout`."""
        return await self._run(self._core.complete_checkout(session_id, callback_params))

    async def refund(
        self,
        payment_id: str,
        amount: Money | None = None,
        *,
        reason: str = "",
        idempotency_key: str | None = None,
        tax_free_amount: int | None = None,
    ) -> Refund:
        """Async :meth:`Router.refund`."""
        return await self._run(
            self._core.refund(
                payment_id,
                amount,
                reason,
                idempotency_key=idempotency_key,
                tax_free_amount=tax_free_amount,
            )
        )

    async def recover(self) -> RecoveryReport:
        """Async :meth:`Router.recover`."""
        return await self._run(self._core.recover())

    async def aclose(self) -> None:
        """Close what the Router opened: its journal, state store and client (not one
        handed to it).

        Calls in progress are let finish first (each within its own deadline), so that a
        payment whose request is out ends journaled; a call made from now on raises
        ``ConfigurationError``. Calling it again does nothing."""
        self._closing = True
        await self._idle.wait()
        # Journal calls still waiting for their batch (a cancelled payment's success) are
        # committed before the journal closes.
        while self._in_thread is not None or self._batch:
            if self._in_thread is not None:
                await asyncio.wait([self._in_thread])
            else:
                self._flush()
        if self._closed:
            return
        self._closed = True
        try:
            if self._async_journal is None:
                await asyncio.to_thread(self._close_journal)
                return
            shutdown = getattr(self._store, "shutdown", None)
            if self._owns_store and callable(shutdown):
                await asyncio.to_thread(shutdown)
            if self._owns_async_journal:
                await self._async_journal.close()
        finally:
            if self._owns_client:
                await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
