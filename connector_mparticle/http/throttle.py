"""Throttling: one budget per mParticle API at a target share of its limit, shared as widely as configured.

The budget is a pyrate-limiter sliding window at ``target_share x limit``. Limits per second or minute are
spread evenly (about ten windows per second, never a burst of a whole second's calls); longer limits, such
as mParticle's 80,000 new DSRs a day, are caps over their window, so a backlog is not trickled out at
0.7 requests a second. Backends: ``memory`` (one process), ``sqlite`` (processes of one user on one machine:
a private folder, and a lock whose waits end at each call's deadline, :mod:`.throttle_file`) and ``redis``
(workers on many machines). A shared store that cannot be reached is an error, never "no limit".

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
from connector_mparticle.http.answers import header_percent
from connector_mparticle.http.throttle_file import BoundedLock

__all__ = ["Budget", "Throttle", "rate_for", "rates_for"]

WINDOW_TARGET_SECONDS = 0.1
SHARED_WINDOW_SECONDS = 0.25
SMOOTHED_UP_TO_SECONDS = 60.0  #: limits over longer windows are caps, not rates
USAGE_MARGIN = 5.0  # percentage points above the target before slowing down (between: hold steady)
MAX_SLOWDOWN = 16.0
BACKOFF_EVENT_SECONDS = 1.0


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

        ``keys`` names each budget in a shared store: workers using the same key share one budget.
        """
        budgets = {}
        for api, (limit, window) in limits.items():
            # Shared stores cost a round trip (and a lock) per attempt: slightly wider windows mean fewer
            # processes waking together to fight over the same slot.
            spread = WINDOW_TARGET_SECONDS if backend == "memory" else SHARED_WINDOW_SECONDS
            rate = rates_for(limit, window, target_share, spread)
            key = (keys or {}).get(api, f"mparticle:{api}")
            bucket = _bucket(backend, [rate], key, sqlite_path, redis_url)
            lock = getattr(bucket, "lock", None)
            budgets[api] = Budget(api, limit * target_share / window, Limiter(bucket, buffer_ms=1),
                                  paced=window <= SMOOTHED_UP_TO_SECONDS,
                                  file_lock=lock if isinstance(lock, BoundedLock) else None)
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
        with self._lock:
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
        with self._lock:
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
            budget.limiter.close()
            if budget.file_lock is not None:
                budget.file_lock.close()


def _try(limiter: Limiter, name: str, timeout: float) -> bool:
    result = limiter.try_acquire(name, blocking=True, timeout=timeout)
    return bool(result)


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

    extra = {"connection_class": _no_key_log_ssl(redis)} if redis_url.lower().startswith("rediss:") else {}
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2, **extra)
    try:
        client.ping()
        return RedisBucket.init(rates, client, key)
    except redis.RedisError as exc:
        # Fail safe: never run unthrottled because the shared budget is out of reach.
        raise RetryLaterError("the shared throttle store (Redis) cannot be reached; no requests were sent",
                              api="throttle") from exc


@functools.cache
def _no_key_log_ssl(redis: Any) -> Any:
    """redis-py's TLS connection with a context that never writes a key log: redis-py builds its context with
    ``ssl.create_default_context``, which opens ``SSLKEYLOGFILE`` at once. This builds the same context from
    ``ssl.SSLContext(PROTOCOL_TLS_CLIENT)`` (which reads no environment) with the connection's own settings."""
    class NoKeyLogSSLConnection(redis.SSLConnection):  # type: ignore[misc]
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
