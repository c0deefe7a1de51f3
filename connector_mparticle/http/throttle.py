"""Throttling: one budget per mParticle API at a target share of its limit, shared as widely as configured.

The budget is a pyrate-limiter sliding window at ``target_share x limit``. Limits per second or minute are
spread evenly (about ten windows per second, never a burst of a whole second's calls); longer limits, such
as mParticle's 80,000 new DSRs a day, are caps over their window, so a backlog is not trickled out at
0.7 requests a second. Backends: ``memory`` (one process), ``sqlite`` (processes of one user on one machine:
a private folder, and a lock whose waits end at each call's deadline, :mod:`.throttle_file`) and ``redis``
(workers on many machines). A shared store that cannot be reached is an error, never "no limit": "try again
later", so a pending request stays pending with its state; every wait on a store ends at the hook call's
deadline (Redis: socket timeouts capped by the time left, and the socket shut when the deadline passes). The
``memory`` backend's budgets are shared in the process by the same names the shared stores use (one per
credential and API), so two configurations of one workspace do not get two budgets.

On top of the budget, each API has a slowdown factor. mParticle reports its usage of the limit in
``X-mp-rate-limit-percentage-used`` (everyone's traffic, not just ours): above the target share someone
else is spending the budget too, so we slow down; a 429 slows us down sharply. Usage back under the target
lets the factor decay to 1.
"""

from __future__ import annotations

import contextlib
import functools
import math
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrate_limiter import InMemoryBucket, Limiter, Rate

from connector_mparticle.errors import ConfigurationError, MParticleError, RetryLaterError
from connector_mparticle.http import deadline as deadlines
from connector_mparticle.http.answers import header_percent
from connector_mparticle.http.throttle_file import BoundedLock

__all__ = ["Budget", "Throttle", "rate_for", "rates_for"]

WINDOW_TARGET_SECONDS = 0.1
SHARED_WINDOW_SECONDS = 0.25
SMOOTHED_UP_TO_SECONDS = 60.0  #: limits over longer windows are caps, not rates
USAGE_MARGIN = 5.0  # percentage points above the target before slowing down (between: hold steady)
MAX_SLOWDOWN = 16.0
BACKOFF_EVENT_SECONDS = 1.0
STORE_TIMEOUT_SECONDS = 2.0  #: a Redis connect or read, at most (and never past the call's deadline)


def rate_for(per_second: float, window: float = WINDOW_TARGET_SECONDS) -> Rate:
    """A pyrate-limiter rate for ``per_second``: windows of about ``window`` seconds, rounded so it never
    exceeds the target."""
    calls = max(1, math.floor(per_second * window))
    interval_ms = math.ceil(calls * 1000.0 / per_second)
    return Rate(calls, interval_ms)


def rates_for(limit: float, window_seconds: float, share: float, spread: float = WINDOW_TARGET_SECONDS) -> Rate:
    """The budget for ``limit`` per ``window_seconds`` at ``share``: spread evenly, or a cap for long windows."""
    if window_seconds <= SMOOTHED_UP_TO_SECONDS:
        return rate_for(limit * share / window_seconds, spread)
    return Rate(max(1, math.floor(limit * share)), math.ceil(window_seconds * 1000))


@dataclass
class Budget:
    """One API's budget: its limiter, the rate it allows, and the current slowdown factor.

    ``paced`` budgets (per-second and per-minute limits) are slowed down when mParticle reports pressure;
    caps over long windows (a day) are not: a 429 against them is handled by the retry policy alone.
    """

    api: str
    per_second: float
    limiter: Limiter
    paced: bool = True
    slowdown: float = 1.0
    next_start: float = 0.0  #: pacer: the earliest time the next call in this process may start
    last_backoff: float = float("-inf")  #: when (monotonic) a 429 last doubled the slowdown
    file_lock: BoundedLock | None = None  #: the sqlite backend's lock, bounded by each call's deadline

    def until(self, deadline: float) -> contextlib.AbstractContextManager[None]:
        """Bound any wait for the budget's file lock by ``deadline`` (a shared file another process holds)."""
        return self.file_lock.until(deadline) if self.file_lock is not None else contextlib.nullcontext()


class _SharedBudgets:
    """The memory backend's budgets in this process, one per budget name and rate (the names the shared stores
    use: a hash of the credential and the API), each kept while a throttle uses it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[tuple[str, int, int], tuple[Budget, int]] = {}

    def take(self, name: str, rate: Rate, make: Callable[[], Budget]) -> Budget:
        key = (name, rate.limit, rate.interval)
        with self._lock:
            budget, users = self._budgets.get(key) or (make(), 0)
            self._budgets[key] = (budget, users + 1)
            return budget

    def release(self, budget: Budget) -> bool:
        """Forget one use of ``budget``; True when it was the last (the caller closes it), or not shared."""
        with self._lock:
            for key, (held, users) in self._budgets.items():
                if held is budget:
                    if users > 1:
                        self._budgets[key] = (held, users - 1)
                        return False
                    del self._budgets[key]
                    break
            return True


_SHARED = _SharedBudgets()
_PACING = threading.Lock()  #: guards every budget's pacing fields (a shared budget is used by several throttles)


class Throttle:
    """Budgets for every API, built from settings; thread-safe."""

    def __init__(self, budgets: dict[str, Budget], target_share: float, sleep: Callable[[float], None] = time.sleep):
        self._budgets = budgets
        self._target = target_share * 100.0
        self._sleep = sleep
        self._lock = threading.Lock()
        self._spent: dict[str, int] = dict.fromkeys(budgets, 0)

    @classmethod
    def build(cls, limits: dict[str, tuple[float, float]], target_share: float, backend: str = "memory",
              sqlite_path: str | None = None, redis_url: str | None = None,
              keys: dict[str, str] | None = None) -> Throttle:
        """Budgets at ``target_share`` of each limit (``api -> (limit, window seconds)``), stored in ``backend``.

        ``keys`` names each budget in a shared store: workers using the same key share one budget; with the
        ``memory`` backend, throttles of this process built with the same key and rate share one budget.
        """
        budgets = {}
        for api, (limit, window) in limits.items():
            # Shared stores cost a round trip (and a lock) per attempt: slightly wider windows mean fewer
            # processes waking together to fight over the same slot.
            spread = WINDOW_TARGET_SECONDS if backend == "memory" else SHARED_WINDOW_SECONDS
            rate = rates_for(limit, window, target_share, spread)
            key = (keys or {}).get(api, f"mparticle:{api}")
            make = functools.partial(_budget, api, limit * target_share / window, window <= SMOOTHED_UP_TO_SECONDS,
                                     _bucket, backend, [rate], key, sqlite_path, redis_url)
            # Named memory budgets are the process's, per credential: shared like the stores share theirs.
            shared = backend == "memory" and keys is not None and api in keys
            budgets[api] = _SHARED.take(key, rate, make) if shared else make()
        return cls(budgets, target_share)

    def acquire(self, api: str, deadline: float, weight: int = 1) -> None:
        """Wait for room in ``api``'s budget (and any slowdown), until ``deadline`` (a ``time.monotonic()``)."""
        budget = self._budgets.get(api)
        if budget is None:
            return
        for _ in range(weight):
            remaining = deadline - time.monotonic()
            with budget.until(deadline):
                if remaining <= 0 or not _try(budget.limiter, api, remaining):
                    raise RetryLaterError(f"the {api} API budget is used up for now; try again shortly", api=api)
        with self._lock:
            self._spent[api] += weight
        if not budget.paced or budget.slowdown <= 1.0:
            return
        # Slowing down: calls from every thread take turns, each spaced by the extra time the slowdown
        # asks for, so the whole process slows down (per-thread sleeps would not add up to that).
        spacing = (budget.slowdown - 1.0) * weight / budget.per_second
        with _PACING:
            now = time.monotonic()
            start = max(now, budget.next_start)
            if start > deadline:
                raise RetryLaterError(f"the {api} API is busy (mParticle reports high usage); try again shortly",
                                      api=api)
            budget.next_start = start + spacing
        if start > now:
            self._sleep(start - now)

    def spent(self) -> dict[str, int]:
        """Calls each budget has let through in this process so far (a host's progress shows their rate)."""
        with self._lock:
            return dict(self._spent)

    def observe(self, api: str, status: int, usage_header: str | None) -> None:
        """Adapt to what mParticle reported: the usage percentage on success, or a 429."""
        budget = self._budgets.get(api)
        if budget is None or not budget.paced:
            return
        with _PACING:
            if status == 429:
                # A burst of 429s seen by many threads at once is one signal, not one per response.
                now = time.monotonic()
                if now - budget.last_backoff >= BACKOFF_EVENT_SECONDS:
                    budget.slowdown = min(MAX_SLOWDOWN, budget.slowdown * 2.0)
                    budget.last_backoff = now
                return
            usage = header_percent(usage_header)  # "٣", "nan", "1e999": unreadable, so no change
            if usage is None:
                return
            if usage > self._target + USAGE_MARGIN:
                budget.slowdown = min(MAX_SLOWDOWN, budget.slowdown * 1.25)
            elif usage < self._target:
                budget.slowdown = max(1.0, budget.slowdown * 0.9)

    def close(self) -> None:
        for budget in self._budgets.values():
            if _SHARED.release(budget):
                budget.limiter.close()
                if budget.file_lock is not None:
                    budget.file_lock.close()


def _try(limiter: Limiter, name: str, timeout: float) -> bool:
    """Whether a slot was taken within ``timeout``. A store that fails meanwhile (Redis down, stopped or cut off
    at the deadline, SQLite locked by another process, a file lock) is "try again later": nothing was sent, and
    the request it was for stays pending (an unclassified exception would end it as ``internal``)."""
    try:
        return bool(limiter.try_acquire(name, blocking=True, timeout=timeout))
    except MParticleError:
        raise
    except Exception as exc:  # redis-py, sqlite3, filelock and OS errors alike: the store failed
        raise RetryLaterError(f"the shared throttle store failed ({type(exc).__name__}); no request was sent",
                              api="throttle") from exc


def _budget(api: str, per_second: float, paced: bool, bucket: Callable[..., Any], *where: Any) -> Budget:
    made = bucket(*where)
    lock = getattr(made, "lock", None)  # the sqlite backend's, bounded by each call's deadline
    return Budget(api, per_second, Limiter(made, buffer_ms=1), paced=paced,
                  file_lock=lock if isinstance(lock, BoundedLock) else None)


def _bucket(backend: str, rates: list[Rate], key: str, sqlite_path: str | None, redis_url: str | None) -> Any:
    """The pyrate-limiter bucket for ``backend``, named ``key`` in a shared store."""
    make = _BACKENDS.get(backend)
    if make is None:
        raise ConfigurationError(f"unknown throttle backend {backend!r}")
    return make(rates, key, sqlite_path, redis_url)


def _memory_bucket(rates: list[Rate], key: str, sqlite_path: str | None, redis_url: str | None) -> Any:
    return InMemoryBucket(rates)


def _sqlite_bucket(rates: list[Rate], key: str, sqlite_path: str | None, redis_url: str | None) -> Any:
    if not sqlite_path:
        raise ConfigurationError("throttle.sqlite_path is required for the sqlite backend")
    from connector_mparticle.http.throttle_file import sqlite_bucket

    try:
        return sqlite_bucket(rates, "".join(c if c.isalnum() else "_" for c in key), sqlite_path)
    except MParticleError:  # a folder refused, a busy lock: the message says which
        raise
    except Exception as exc:
        raise ConfigurationError(f"the sqlite throttle file cannot be used: {type(exc).__name__}") from exc


def _redis_bucket(rates: list[Rate], key: str, sqlite_path: str | None, redis_url: str | None) -> Any:
    if not redis_url:
        raise ConfigurationError("throttle.redis_url is required for the redis backend")
    try:
        import redis
    except ImportError as exc:
        raise ConfigurationError("the redis throttle backend needs the 'redis' package: "
                                 "pip install 'connector-mparticle[redis]'") from exc
    from pyrate_limiter import RedisBucket

    tls = redis_url.lower().startswith("rediss:")
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=STORE_TIMEOUT_SECONDS,
                                  socket_timeout=STORE_TIMEOUT_SECONDS,
                                  connection_class=_no_key_log_ssl(redis) if tls else _bounded_connection(redis))
    try:
        client.ping()
        return RedisBucket.init(rates, client, key)
    except redis.RedisError as exc:
        # Fail safe: never run unthrottled because the shared budget is out of reach.
        raise RetryLaterError("the shared throttle store (Redis) cannot be reached; no requests were sent",
                              api="throttle") from exc


class _DeadlineBound:
    """A redis-py connection whose waits end at the hook call's deadline: each connect and each command gets at
    most the time left (a server that drips one byte per read timeout cannot hold a call), and the socket is
    registered with the deadline, which shuts it down when the deadline passes."""

    _sock: Any

    def _connect(self) -> Any:
        running = deadlines.current()
        if running is not None:
            running.check()
        self.socket_connect_timeout = _time_left(running)
        sock = super()._connect()  # type: ignore[misc]
        if running is not None:
            running.watch(sock)
        return sock

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._bound()
        super().send_packed_command(command, check_health)  # type: ignore[misc]
        self._bound()  # the command may have connected

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self._bound()
        return super().read_response(*args, **kwargs)  # type: ignore[misc]

    def _bound(self) -> None:
        sock, running = self._sock, deadlines.current()
        if sock is None:
            return
        if running is not None:
            running.watch(sock)
        sock.settimeout(_time_left(running))


def _time_left(running: deadlines.Deadline | None) -> float:
    return STORE_TIMEOUT_SECONDS if running is None else running.cap(STORE_TIMEOUT_SECONDS)


@functools.cache
def _bounded_connection(redis: Any) -> Any:
    """redis-py's plain TCP connection, bounded by the deadline (:class:`_DeadlineBound`)."""
    class BoundedConnection(_DeadlineBound, redis.Connection):  # type: ignore[misc]
        pass

    return BoundedConnection


@functools.cache
def _no_key_log_ssl(redis: Any) -> Any:
    """redis-py's TLS connection with a context that never writes a key log: redis-py builds its context with
    ``ssl.create_default_context``, which opens ``SSLKEYLOGFILE`` at once. This builds the same context from
    ``ssl.SSLContext(PROTOCOL_TLS_CLIENT)`` (which reads no environment) with the connection's own settings;
    its waits are bounded by the deadline like the plain connection's."""
    class NoKeyLogSSLConnection(_DeadlineBound, redis.SSLConnection):  # type: ignore[misc]
        def _build_ssl_context(self) -> ssl.SSLContext:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = bool(self.check_hostname)
            context.verify_mode = self.cert_reqs
            if self.certfile or self.keyfile:
                context.load_cert_chain(certfile=self.certfile, keyfile=self.keyfile,
                                        password=self.certificate_password)
            if self.ca_certs is not None or self.ca_path is not None or self.ca_data is not None:
                context.load_verify_locations(cafile=self.ca_certs, capath=self.ca_path, cadata=self.ca_data)
            else:
                context.load_default_certs()
            context.minimum_version = self.ssl_min_version or ssl.TLSVersion.TLSv1_2
            if self.ssl_ciphers:
                context.set_ciphers(self.ssl_ciphers)
            return context

    return NoKeyLogSSLConnection


_BACKENDS: dict[str, Callable[[list[Rate], str, str | None, str | None], Any]] = {
    "memory": _memory_bucket, "sqlite": _sqlite_bucket, "redis": _redis_bucket}
