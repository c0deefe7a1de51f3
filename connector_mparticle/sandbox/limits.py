"""mParticle's published rate limits (the sandbox's own table) and the windows that enforce them.

mParticle describes two kinds of limit (``guides/default-service-limits/index.md``, "API Throttling"): *speed*
caps the rate of traffic, *acceleration* caps how fast that rate may rise. A request over either gets a 429
with ``X-mp-rate-limit-exceeded`` naming the limit (``acceleration`` for the latter); 2xx responses carry
``X-mp-rate-limit-percentage-used``, the greatest usage across the applicable speed and acceleration limits.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, replace

__all__ = ["LIMITED_APIS", "PUBLISHED_LIMITS", "Limit", "LimitBook", "Outcome", "RateWindow", "default_limits",
           "retry_after_header"]

#: Every budget the sandbox can enforce. ``dsr_submit`` counts new DSRs (POST) on top of ``dsr``.
LIMITED_APIS = ("dsr", "dsr_submit", "events", "identity", "profile")


@dataclass(frozen=True)
class Limit:
    """``limit`` units per ``window_seconds``; ``external_share`` of it is spent by a simulated other client.

    ``acceleration``, when set, is how many units more than in the previous window the current window may
    take (mParticle publishes no acceleration figures, so it is off unless a test switches it on)."""

    limit: float
    window_seconds: float = 1.0
    scope: str = "workspace"
    external_share: float = 0.0
    acceleration: float | None = None

    @property
    def per_second(self) -> float:
        return self.limit / self.window_seconds


@dataclass(frozen=True)
class PublishedLimit:
    """One row of mParticle's published limits, with where it is published."""

    api: str
    limit: Limit
    source: str


PUBLISHED_LIMITS: tuple[PublishedLimit, ...] = (
    PublishedLimit("dsr", Limit(1000, 60, "workspace"),
                   "guides/default-service-limits: 1000 requests per minute (GET, POST and DELETE), per workspace"),
    PublishedLimit("dsr_submit", Limit(80_000, 86_400, "workspace"),
                   "guides/default-service-limits: 80,000 new requests per day (POST), per workspace"),
    PublishedLimit("events", Limit(270, 1, "account"),
                   "guides/default-service-limits: 270 batches per second by default; the scope is not stated "
                   "(third parties say per account)"),
    PublishedLimit("profile", Limit(15, 1, "account"),
                   "developers/profile-api: 15 requests per second for every account"),
)
#: mParticle publishes no IDSync limit, so none is enforced unless one is set (docs silent).
UNPUBLISHED_SCOPES = {"identity": "workspace"}


def default_limits() -> dict[str, Limit]:
    """mParticle's published limits, by API."""
    return {row.api: row.limit for row in PUBLISHED_LIMITS}


@dataclass(frozen=True)
class Outcome:
    """What a rate window said about one request."""

    admitted: bool
    percent_used: float
    exceeded: str | None = None  #: the X-mp-rate-limit-exceeded value when refused
    retry_after: float | None = None  #: seconds, for speed limits


class RateWindow:
    """A sliding-window counter for one limit (speed, and acceleration when set). Thread-safe."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._current: deque[tuple[float, float]] = deque()  # (time, weight) within the last window
        self._previous: deque[tuple[float, float]] = deque()  # the window before it
        self._used = 0.0
        self._used_before = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        edge = now - self.limit.window_seconds
        while self._current and self._current[0][0] <= edge:
            entry = self._current.popleft()
            self._used -= entry[1]
            self._previous.append(entry)
            self._used_before += entry[1]
        while self._previous and self._previous[0][0] <= edge - self.limit.window_seconds:
            self._used_before -= self._previous.popleft()[1]

    def take(self, now: float, weight: float = 1.0) -> Outcome:
        """Spend ``weight`` if both limits allow it."""
        limit = self.limit
        with self._lock:
            self._expire(now)
            capacity = limit.limit * (1.0 - limit.external_share)
            external = limit.limit * limit.external_share
            allowed = None if limit.acceleration is None else self._used_before + limit.acceleration
            if self._used + weight > capacity + 1e-9:
                return Outcome(False, self._percent(self._used, external, allowed), limit.scope,
                               self._speed_wait(now, self._used + weight - capacity))
            if allowed is not None and self._used + weight > allowed + 1e-9:
                # The guide gives RetryAfter for speed limits only: on acceleration, slow the ramp instead.
                return Outcome(False, self._percent(self._used, external, allowed), "acceleration")
            self._current.append((now, weight))
            self._used += weight
            return Outcome(True, self._percent(self._used, external, allowed))

    def _percent(self, used: float, external: float, allowed: float | None) -> float:
        speed = 100.0 * (used + external) / self.limit.limit
        accel = 100.0 * used / allowed if allowed else 0.0
        return min(100.0, max(speed, accel))

    def _speed_wait(self, now: float, needed: float) -> float:
        freed = 0.0
        for stamp, weight in self._current:
            freed += weight
            if freed >= needed:
                return max(stamp + self.limit.window_seconds - now, 0.001)
        return self.limit.window_seconds


class LimitBook:
    """The rate windows in force, by API; owns its lock. An API without a window is not limited."""

    def __init__(self, limits: dict[str, Limit]) -> None:
        self._defaults = dict(limits)
        self._lock = threading.Lock()
        self._windows = {api: RateWindow(limit) for api, limit in limits.items()}

    def window(self, api: str) -> RateWindow | None:
        with self._lock:
            return self._windows.get(api)

    def limits(self) -> dict[str, Limit]:
        with self._lock:
            return {api: w.limit for api, w in self._windows.items()}

    def update(self, api: str, **changes: object) -> None:
        """Change some settings of ``api``'s limit (creating it, for an API without one); usage restarts."""
        if api not in LIMITED_APIS:
            raise ValueError(f"unknown limit '{api}' (known: {', '.join(LIMITED_APIS)})")
        with self._lock:
            current = self._windows.get(api)
            base = current.limit if current else Limit(math.inf, 1.0, UNPUBLISHED_SCOPES.get(api, "workspace"))
            updated = replace(base, **changes)  # type: ignore[arg-type]
            if not math.isfinite(updated.limit):
                raise ValueError(f"'{api}' has no limit yet: give 'limit'")
            self._windows[api] = RateWindow(updated)

    def reset(self) -> None:
        with self._lock:
            self._windows = {api: RateWindow(limit) for api, limit in self._defaults.items()}


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is a non-negative integer of seconds: round up so a client never comes back early."""
    return str(max(1, math.ceil(seconds)))
