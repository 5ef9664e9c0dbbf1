"""Breaker state shared through Redis, so several processes or terminals learn from each other.

What lives where:

- Each process keeps its own sliding window (a breaker judges what *it* saw), as with the
  in-memory store.
- Redis keeps, per breaker, the shared state: closed / open until / half-open, the trip count
  behind the growing open time, the successes of the current half-open period and the global
  half-open probe budget. Two keys per breaker, both carrying the same Redis Cluster hash tag so
  they live in one slot::

      {namespace}:breaker:{provider:method}          hash: state, open_until, open_seconds,
                                                     trips, closed_at, successes, reason,
                                                     version, born
      {namespace}:breaker:{provider:method}:probes   sorted set: probe lease -> expiry

  (the braces around ``provider:method`` are literal). Every transition is one Lua script that
  reads ``TIME`` on the server, so racing processes cannot trip a breaker twice and no local
  wall clock is ever compared with another.
- Admission reads a local cache. A daemon thread refreshes the cache of every breaker this
  process has used, every ``refresh_interval`` seconds, and the reply of every transition updates
  it at once; only the first sight of a breaker fetches inline (one round trip, bounded by the
  client's socket timeout) so a process that starts during an outage does not admit calls that
  every other process already knows will fail.
- Times on the server are translated onto the caller's monotonic clock with the server time each
  reply carries: ``open_until_local = monotonic_at_reply + (open_until_server - server_now)``.
  The error is one round trip at most.

When Redis cannot be reached (connection refused, timeout, any ``RedisError``) the store
*degrades*: it emits ``storage.degraded`` once, with the error's class name only, and serves each
breaker from a local :class:`~payfallback.breaker.MemoryStateStore` seeded from that breaker's
last known state, so payments keep flowing on this process's own judgement. While degraded no
call waits on Redis: only the refresher keeps asking. Its first success emits
``storage.recovered``; a breaker that opened locally during the outage and is still open is
pushed to Redis (as a trip) if Redis shows it closed, and the shared state is used again.

Versions in the views this store returns combine an epoch, raised on every switch between Redis
and the local fallback and whenever Redis lost a breaker's entry (a restart without persistence),
with the version kept in Redis, so a breaker never mistakes an older view for a newer one across
such a switch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from payfallback._clock import Clock, SystemClock

from ._store import BreakerState, MemoryStateStore, ProbeGrant, StoreView, _Entry

__all__ = ["EventListener", "RedisStateStore"]

#: ``on_event(name, fields)``: name is ``storage.degraded`` or ``storage.recovered``.
EventListener = Callable[[str, dict[str, object]], None]

_log = logging.getLogger("payfallback.breaker")
_getpid = os.getpid

#: Versions from Redis stay below this; the epoch counts in multiples of it.
_EPOCH = 1 << 48

# -- Lua ---------------------------------------------------------------------------------------
# One prelude shared by every script: load the entry, read the server clock, helpers. Times are
# seconds as decimal strings ('%.17g' round-trips a double exactly); '' stands for "none".
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local h, z = KEYS[1], KEYS[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function num(v, default)
  if not v then return default end
  local n = tonumber(v)
  if n == nil then return default end
  return n
end
local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end
local function int(x) return string.format('%d', x) end
local f = redis.call('HMGET', h, 'state', 'open_until', 'open_seconds', 'trips', 'closed_at',
                     'successes', 'reason', 'version', 'born')
local e = {state = f[1] or 'closed', open_until = num(f[2], nil), open_seconds = num(f[3], 0),
           trips = num(f[4], 0), closed_at = num(f[5], nil), successes = num(f[6], 0),
           reason = f[7] or '', version = num(f[8], 0), born = f[9] or ''}
local changed = false
local function bump()
  e.version = e.version + 1
  changed = true
end
local function drop_expired()
  if redis.call('ZREMRANGEBYSCORE', z, '-inf', fmt(now)) > 0 then bump() end
end
local function close_now()
  e.state, e.closed_at, e.open_until, e.reason, e.successes = 'closed', now, nil, '', 0
  redis.call('DEL', z)
  bump()
end
local function save()
  if not changed then return end
  if e.born == '' then e.born = clock[1] .. '.' .. clock[2] end
  redis.call('HSET', h, 'state', e.state, 'open_until', fmt(e.open_until),
             'open_seconds', fmt(e.open_seconds), 'trips', int(e.trips),
             'closed_at', fmt(e.closed_at), 'successes', int(e.successes), 'reason', e.reason,
             'version', int(e.version), 'born', e.born)
end
local function reply(lease, probes)
  if probes == nil then probes = redis.call('ZCARD', z) end
  return {fmt(now), e.state, fmt(e.open_until), fmt(e.open_seconds), int(e.trips), int(probes),
          int(e.successes), e.reason, int(e.version), e.born, fmt(e.closed_at), lease}
end
"""

# Read-only: leases that have expired are not counted (and are dropped by the next write).
_PEEK = """
return reply('', redis.call('ZCOUNT', z, '(' .. fmt(now), '+inf'))
"""

# ARGV: lease ('' for a verdict from closed state), base, growth, cap, memory, reason.
_TRIP = """
drop_expired()
local lease = ARGV[1]
local allowed
if lease == '' then
  allowed = e.state == 'closed'
else
  allowed = e.state == 'half_open' and redis.call('ZSCORE', z, lease) ~= false
end
if allowed then
  local base, growth, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  if e.state == 'closed' and e.closed_at ~= nil and now - e.closed_at >= tonumber(ARGV[5]) then
    e.trips = 0
  end
  e.trips = e.trips + 1
  local seconds = base * growth ^ (e.trips - 1)
  if seconds ~= seconds or seconds > cap then seconds = cap end
  e.state, e.open_seconds, e.open_until = 'open', seconds, now + seconds
  e.reason, e.successes = ARGV[6], 0
  redis.call('DEL', z)
  bump()
end
save()
return reply('')
"""

# ARGV: limit, ttl, token.
_ACQUIRE = """
drop_expired()
local lease = ''
if e.state == 'open' and (e.open_until == nil or now >= e.open_until) then
  e.state, e.successes = 'half_open', 0
  bump()
end
if e.state == 'half_open' and redis.call('ZCARD', z) < tonumber(ARGV[1]) then
  redis.call('ZADD', z, fmt(now + tonumber(ARGV[2])), ARGV[3])
  lease = ARGV[3]
  bump()
end
save()
return reply(lease)
"""

# ARGV: lease.
_RELEASE = """
drop_expired()
if redis.call('ZREM', z, ARGV[1]) == 1 then bump() end
save()
return reply('')
"""

# ARGV: lease, needed.
_SUCCEEDED = """
drop_expired()
if e.state == 'half_open' and redis.call('ZREM', z, ARGV[1]) == 1 then
  e.successes = e.successes + 1
  bump()
  if e.successes >= tonumber(ARGV[2]) then close_now() end
end
save()
return reply('')
"""

_CLOSE = """
drop_expired()
if e.state ~= 'closed' then close_now() end
save()
return reply('')
"""


# -- replies and the cache --------------------------------------------------------------------


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(text: str) -> float | None:
    return float(text) if text else None


@dataclass(frozen=True, slots=True)
class _Reply:
    """One script's answer, on the server's clock."""

    now: float
    state: BreakerState
    open_until: float | None
    open_seconds: float
    trips: int
    probes: int
    successes: int
    reason: str | None
    version: int
    born: str
    closed_at: float | None
    lease: str | None

    @classmethod
    def parse(cls, raw: Any) -> _Reply:
        if not isinstance(raw, list | tuple) or len(raw) != 12:
            raise redis.ResponseError(f"unexpected reply from the breaker script: {raw!r}")
        fields = [_text(v) for v in raw]
        return cls(
            now=float(fields[0]),
            state=BreakerState(fields[1]),
            open_until=_float(fields[2]),
            open_seconds=float(fields[3] or 0),
            trips=int(fields[4]),
            probes=int(fields[5]),
            successes=int(fields[6]),
            reason=fields[7] or None,
            version=int(fields[8]),
            born=fields[9],
            closed_at=_float(fields[10]),
            lease=fields[11] or None,
        )


@dataclass(frozen=True, slots=True)
class _Cached:
    """A breaker's last known shared state, already on the local clock."""

    #: What ``view()`` returns (its version carries ``epoch``).
    view: StoreView
    epoch: int
    #: The version in Redis, compared within one epoch.
    version: int
    #: When Redis created the entry; a change means Redis lost it meanwhile.
    born: str
    #: When it last closed, on the local clock (seeds the local fallback's trip memory).
    closed_at: float | None


@dataclass(frozen=True, slots=True)
class _TripArgs:
    base: float
    growth: float
    cap: float
    memory: float


class _Fallback(MemoryStateStore):
    """The local store used while Redis is unreachable, seeded breaker by breaker."""

    def seed(self, key: str, cached: _Cached) -> None:
        view = cached.view
        with self._lock:
            self._entries[key] = _Entry(
                state=view.state,
                open_until=view.open_until,
                open_seconds=view.open_seconds,
                trips=view.trips,
                closed_at=cached.closed_at,
                successes=view.successes,
                reason=view.reason,
                version=cached.version,
            )


def _stamp(view: StoreView, epoch: int) -> StoreView:
    return dataclasses.replace(view, version=epoch * _EPOCH + view.version)


def _require_timeouts(client: redis.Redis) -> None:
    """Refuse a client that could wait on Redis without limit (and so hold up a payment)."""
    kwargs: dict[str, Any] = client.connection_pool.connection_kwargs
    read = kwargs.get("socket_timeout")
    connect = kwargs.get("socket_connect_timeout")
    if connect is None:  # redis-py connects with the socket timeout when given no other
        connect = read
    if read is None or connect is None:
        raise ValueError(
            "RedisStateStore needs a Redis client with socket timeouts, or a slow Redis could "
            "hold up a payment: build it with redis.Redis(..., socket_timeout=0.05, "
            "socket_connect_timeout=0.05) or use RedisStateStore.from_url(url, timeout=0.05)"
        )


def _refresh_forever(
    ref: weakref.ReferenceType[RedisStateStore], stop: threading.Event, interval: float
) -> None:
    """The refresher's loop; it holds the store only while refreshing, so an abandoned store
    can be collected (and the thread then ends)."""
    while not stop.wait(interval):
        store = ref()
        if store is None:
            return
        try:
            store.refresh()
        except Exception:
            # A surprise here (a reply we cannot read) must not kill the refresher: log it
            # and try again next time; transitions keep working through their own calls.
            _log.exception("breaker state refresh from Redis failed")
        del store


# -- the store ---------------------------------------------------------------------------------


class RedisStateStore:
    """A :class:`~payfallback.breaker.StateStore` shared through Redis (see the module docs).

    ``client`` is a synchronous ``redis.Redis`` the caller owns; it must have socket timeouts,
    since a store call can run inside ``admit()`` or ``record()``. Give it short ones and no
    retries, as :meth:`from_url` does: when Redis does not answer at once, the local fallback is
    the better answer. ``clock`` must be the clock the breakers
    use (the Router's), because views carry times on it. ``namespace`` separates merchants or
    apps sharing one Redis. ``on_event(name, fields)`` hears ``storage.degraded`` (fields:
    ``store``, ``namespace``, ``error`` — the exception's class name, nothing more) and
    ``storage.recovered`` (``store``, ``namespace``, ``outage_seconds``); more listeners can be
    added with :meth:`add_listener`.

    The refresher is a daemon thread started on first use (and again in a forked child); call
    :meth:`shutdown` (or use the store as a context manager) to stop it. Its work is one script
    call per breaker this process has used, every ``refresh_interval`` seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "payfallback",
        clock: Clock | None = None,
        refresh_interval: float = 1.0,
        on_event: EventListener | None = None,
    ) -> None:
        if not namespace or "{" in namespace or "}" in namespace:
            raise ValueError(
                f"namespace must be a non-empty name without braces (they mark Redis Cluster "
                f"hash tags), got {namespace!r}"
            )
        if (
            isinstance(refresh_interval, bool)
            or not math.isfinite(refresh_interval)
            or refresh_interval <= 0
        ):
            raise ValueError(f"refresh_interval must be seconds > 0, got {refresh_interval!r}")
        _require_timeouts(client)
        self.namespace = namespace
        self.refresh_interval = float(refresh_interval)
        self._client = client
        self._owns_client = False
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._listeners: tuple[EventListener, ...] = (on_event,) if on_event is not None else ()
        self._peek = client.register_script(_PRELUDE + _PEEK)
        self._trip = client.register_script(_PRELUDE + _TRIP)
        self._acquire = client.register_script(_PRELUDE + _ACQUIRE)
        self._release = client.register_script(_PRELUDE + _RELEASE)
        self._succeeded = client.register_script(_PRELUDE + _SUCCEEDED)
        self._close = client.register_script(_PRELUDE + _CLOSE)

        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._known: set[str] = set()
        self._epoch = 0
        self._degraded = False
        self._degraded_at = 0.0
        # The local store of the current (or last) outage, the epoch its views carry, the
        # breakers seeded into it, and the last trip arguments per breaker (to push a trip
        # made during the outage to Redis on recovery).
        self._fallback = _Fallback(self._clock)
        self._fallback_epoch = 0
        self._seeded: set[str] = set()
        self._local_trips: dict[str, _TripArgs] = {}

        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "payfallback",
        timeout: float = 0.05,
        clock: Clock | None = None,
        refresh_interval: float = 1.0,
        on_event: EventListener | None = None,
    ) -> RedisStateStore:
        """A store over a client built from ``redis://[[user]:[password]@]host[:port][/db]``
        (or ``rediss://``, ``unix://``) with ``timeout`` seconds to connect and to answer and
        no retries; :meth:`shutdown` closes that client."""
        if isinstance(timeout, bool) or not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be seconds > 0, got {timeout!r}")
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        store = cls(
            client,
            namespace=namespace,
            clock=clock,
            refresh_interval=refresh_interval,
            on_event=on_event,
        )
        store._owns_client = True
        return store

    def __repr__(self) -> str:
        mode = "degraded" if self._degraded else "shared"
        return f"<RedisStateStore namespace={self.namespace!r} {mode}>"

    def __enter__(self) -> RedisStateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    @property
    def degraded(self) -> bool:
        """Whether breakers are being served from local state because Redis is unreachable."""
        return self._degraded

    def add_listener(self, listener: EventListener) -> None:
        """Also tell ``listener(name, fields)`` about ``storage.degraded`` / ``.recovered``."""
        self._listeners = (*self._listeners, listener)

    def shutdown(self) -> None:
        """Stop the refresher and, for a store built by :meth:`from_url`, close its client.

        The store keeps answering from its cache and through the client afterwards, but is no
        longer refreshed in the background.
        """
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        if self._owns_client:
            self._client.close()

    def redis_key(self, key: str) -> str:
        """The Redis hash holding breaker ``key`` (the probe leases are this + ``:probes``)."""
        return f"{self.namespace}:breaker:{{{key}}}"

    def breakers(self) -> list[tuple[str, StoreView]]:
        """Every breaker this namespace holds in Redis, as ``(key, view)`` sorted by key.

        ``key`` is ``"{provider}:{method}"``. The hashes are found with ``SCAN`` (never
        ``KEYS``, which blocks a busy server) and each is read afresh with the same read-only
        script as :meth:`view`, so ``open_until`` is on this store's clock; an open breaker
        whose deadline has passed still reads OPEN until a caller takes a probe. A breaker no
        process has tripped yet may have no hash and is then not listed.

        This is for operators (``payfallback status``, a health page), not for admission: it
        neither reads nor fills the cache, starts no refresher and has no local fallback, so a
        Redis that cannot be reached raises ``redis.RedisError``.
        """
        prefix = f"{self.namespace}:breaker:"
        # SCAN takes a glob pattern: escape the namespace's own glob characters. The braces
        # are literal in it and exclude the ``…}:probes`` sorted sets.
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "{*}"
        found: list[tuple[str, StoreView]] = []
        for raw in sorted({_text(k) for k in self._client.scan_iter(match=pattern, count=500)}):
            key = raw.removeprefix(prefix)[1:-1]
            reply = _Reply.parse(self._peek(self._keys(key)))
            if not reply.born:
                continue  # deleted between the SCAN and the read
            local_now = self._clock.monotonic()
            open_until = (
                None if reply.open_until is None else local_now + (reply.open_until - reply.now)
            )
            view = StoreView(
                state=reply.state,
                open_until=open_until,
                open_seconds=reply.open_seconds,
                trips=reply.trips,
                probes=reply.probes,
                successes=reply.successes,
                reason=reply.reason,
                version=self._epoch * _EPOCH + reply.version,
            )
            found.append((key, view))
        return found

    # -- the StateStore protocol ---------------------------------------------------------------

    def view(self, key: str) -> StoreView:
        """The cached view; a breaker seen for the first time is fetched once, inline."""
        self._start_refresher()
        # Without the lock: the cache holds immutable entries replaced whole, and a reader
        # racing a switch to the fallback gets the view from just before it.
        if not self._degraded:
            cached = self._cache.get(key)
            if cached is not None:
                return cached.view
        got = self._remote(key, self._peek, ())
        if got is not None:
            return got[0]
        return self._local(key, lambda store: store.view(key))

    def trip(
        self,
        key: str,
        *,
        lease: str | None,
        base: float,
        growth: float,
        cap: float,
        memory: float,
        reason: str,
    ) -> StoreView:
        args = (lease or "", _num(base), _num(growth), _num(cap), _num(memory), reason)
        got = self._remote(key, self._trip, args)
        if got is not None:
            return got[0]
        with self._lock:
            self._local_trips[key] = _TripArgs(base=base, growth=growth, cap=cap, memory=memory)
        return self._local(
            key,
            lambda store: store.trip(
                key, lease=lease, base=base, growth=growth, cap=cap, memory=memory, reason=reason
            ),
        )

    def acquire_probe(self, key: str, *, limit: int, ttl: float) -> ProbeGrant:
        token = f"probe-{secrets.token_hex(8)}"
        got = self._remote(key, self._acquire, (str(int(limit)), _num(ttl), token))
        if got is not None:
            return ProbeGrant(got[1], got[0])
        grants: list[ProbeGrant] = []

        def acquire(store: MemoryStateStore) -> StoreView:
            grants.append(store.acquire_probe(key, limit=limit, ttl=ttl))
            return grants[0].view

        view = self._local(key, acquire)
        return ProbeGrant(grants[0].lease, view)

    def release_probe(self, key: str, lease: str) -> StoreView:
        got = self._remote(key, self._release, (lease,))
        if got is not None:
            return got[0]
        return self._local(key, lambda store: store.release_probe(key, lease))

    def probe_succeeded(self, key: str, lease: str, *, needed: int) -> StoreView:
        got = self._remote(key, self._succeeded, (lease, str(int(needed))))
        if got is not None:
            return got[0]
        return self._local(key, lambda store: store.probe_succeeded(key, lease, needed=needed))

    def close(self, key: str) -> StoreView:
        got = self._remote(key, self._close, ())
        if got is not None:
            return got[0]
        return self._local(key, lambda store: store.close(key))

    # -- refreshing ----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Fetch every breaker this process has used from Redis now; ``True`` if Redis answered.

        The refresher thread calls this every ``refresh_interval``; it is also how a degraded
        store notices that Redis is back.
        """
        with self._lock:
            keys = sorted(self._known)
            degraded, epoch = self._degraded, self._epoch
        try:
            if keys:
                replies = {key: _Reply.parse(self._peek(self._keys(key))) for key in keys}
            else:
                self._client.ping()
                replies = {}
        except redis.RedisError as exc:
            self._degrade(exc)
            return False
        if degraded:
            return self._recover(replies)
        for key, reply in replies.items():
            self._accept(key, reply, epoch)
        return True

    # -- internals -----------------------------------------------------------------------------

    def _keys(self, key: str) -> list[str]:
        hash_key = self.redis_key(key)
        return [hash_key, f"{hash_key}:probes"]

    def _remote(
        self, key: str, script: Script, args: tuple[str, ...]
    ) -> tuple[StoreView, str | None] | None:
        """Run one script for ``key`` and take in its reply; ``None`` when degraded."""
        self._start_refresher()
        with self._lock:
            if self._degraded:
                return None
            epoch = self._epoch
            self._known.add(key)
        try:
            reply = _Reply.parse(script(keys=self._keys(key), args=args))
        except redis.RedisError as exc:
            self._degrade(exc)
            return None
        return self._accept(key, reply, epoch), reply.lease

    def _accept(self, key: str, reply: _Reply, epoch: int, *, force: bool = False) -> StoreView:
        """Translate ``reply`` onto the local clock and cache it unless a newer one is cached.

        ``epoch`` is the one in force when the call was made, so a reply that was overtaken by
        a switch to or from the fallback loses to what came after it.
        """
        local_now = self._clock.monotonic()

        def local(t: float | None) -> float | None:
            return None if t is None else local_now + (t - reply.now)

        with self._lock:
            cached = self._cache.get(key)
            if (
                cached is not None
                and not force
                and epoch >= cached.epoch
                and cached.born
                and reply.born != cached.born
            ):
                # Redis lost this entry (flushed, restarted without persistence) and may have
                # started a new one: its versions start over, so start a new epoch too.
                self._epoch += 1
                epoch = self._epoch
            view = StoreView(
                state=reply.state,
                open_until=local(reply.open_until),
                open_seconds=reply.open_seconds,
                trips=reply.trips,
                probes=reply.probes,
                successes=reply.successes,
                reason=reply.reason,
                version=epoch * _EPOCH + reply.version,
            )
            newer = cached is None or (epoch, reply.version) >= (cached.epoch, cached.version)
            if cached is not None and cached.view == view:
                # Unchanged (a refresh): keep handing out the same object, so breakers see at
                # a glance that nothing changed.
                view = cached.view
            if force or (not self._degraded and newer):
                self._cache[key] = _Cached(
                    view=view,
                    epoch=epoch,
                    version=reply.version,
                    born=reply.born,
                    closed_at=local(reply.closed_at),
                )
        return view

    def _local(self, key: str, step: Callable[[MemoryStateStore], StoreView]) -> StoreView:
        """Run ``step`` on the fallback store, seeding ``key`` from its last known view."""
        with self._lock:
            store, epoch = self._fallback, self._fallback_epoch
            if key not in self._seeded:
                self._seeded.add(key)
                cached = self._cache.get(key)
                if cached is not None:
                    store.seed(key, cached)
        return _stamp(step(store), epoch)

    def _degrade(self, exc: Exception) -> None:
        with self._lock:
            if self._degraded:
                return
            self._degraded = True
            self._epoch += 1
            self._degraded_at = self._clock.monotonic()
            self._fallback = _Fallback(self._clock)
            self._fallback_epoch = self._epoch
            self._seeded = set()
            self._local_trips = {}
        self._emit(
            "storage.degraded",
            {"store": "redis", "namespace": self.namespace, "error": type(exc).__name__},
        )

    def _recover(self, replies: dict[str, _Reply]) -> bool:
        """Leave the fallback: push trips made during the outage, then use Redis again."""
        with self._lock:
            if not self._degraded:
                return True
            store, seeded, trips = self._fallback, set(self._seeded), dict(self._local_trips)
        now = self._clock.monotonic()
        try:
            for key in sorted(seeded & trips.keys()):
                local = store.view(key)
                shared = replies.get(key)
                still_open = (
                    local.state is BreakerState.OPEN
                    and local.open_until is not None
                    and local.open_until > now
                )
                if still_open and (shared is None or shared.state is BreakerState.CLOSED):
                    args = trips[key]
                    replies[key] = _Reply.parse(
                        self._trip(
                            keys=self._keys(key),
                            args=(
                                "",
                                _num(args.base),
                                _num(args.growth),
                                _num(args.cap),
                                _num(args.memory),
                                local.reason or "opened while Redis was unreachable",
                            ),
                        )
                    )
        except redis.RedisError:
            return False  # still unreachable: stay degraded, try again next refresh
        with self._lock:
            if not self._degraded:
                return True
            self._degraded = False
            self._epoch += 1
            epoch, outage = self._epoch, self._clock.monotonic() - self._degraded_at
            self._known |= seeded
        for key, reply in replies.items():
            self._accept(key, reply, epoch, force=True)
        self._emit(
            "storage.recovered",
            {"store": "redis", "namespace": self.namespace, "outage_seconds": outage},
        )
        return True

    def _emit(self, name: str, fields: dict[str, object]) -> None:
        if not self._listeners:
            _log.warning("%s: %s", name, fields)
        for listener in self._listeners:
            try:
                listener(name, dict(fields))
            except Exception:
                # A broken metrics hook must not turn a Redis outage into failed payments.
                _log.exception("state store listener failed on %s", name)

    def _start_refresher(self) -> None:
        pid = _getpid()
        if self._thread_pid == pid or self._closed:
            return
        with self._lock:
            if self._thread_pid == pid:
                return
            self._thread_pid = pid
            # In a forked child the parent's thread does not exist: start one of our own.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=_refresh_forever,
                args=(weakref.ref(self), self._stop, self.refresh_interval),
                name=f"payfallback-redis-refresh[{self.namespace}]",
                daemon=True,
            )
            self._thread.start()


def _num(x: float) -> str:
    """A number as Lua reads it back exactly."""
    return repr(float(x))
