"""The sandbox's rate limits (speed limits with sliding windows) and switchable faults."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["APIS", "Faults", "Limit", "RateWindow", "default_limits"]

#: The APIs the sandbox serves; limits, faults and the request log are kept per API.
APIS = ("dsr", "identity", "events", "oauth", "results")


@dataclass
class Limit:
    """``limit`` units per ``window_seconds``; ``external_share`` of it is spent by a simulated other client."""

    limit: float
    window_seconds: float
    scope: str = "workspace"
    external_share: float = 0.0

    @property
    def per_second(self) -> float:
        return self.limit / self.window_seconds


def default_limits() -> dict[str, Limit]:
    """mParticle's published limits, read from the connector's manifest (the one place they live)."""
    import connector_mparticle
    from dsr_framework.manifest import load_manifest

    limits: dict[str, Limit] = {}
    for rate in load_manifest(connector_mparticle).rate_limits:
        limits[rate.api] = Limit(rate.limit, rate.window_seconds, rate.scope)
    return limits


class RateWindow:
    """A sliding-window counter for one limit: admits a weight, or says how long to wait."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._log: deque[tuple[float, float]] = deque()
        self._used = 0.0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        edge = now - self.limit.window_seconds
        while self._log and self._log[0][0] <= edge:
            self._used -= self._log.popleft()[1]

    def take(self, now: float, weight: float = 1.0) -> tuple[bool, float, float]:
        """Try to spend ``weight``. Returns (admitted, seconds until it would fit, percentage used after)."""
        with self._lock:
            self._expire(now)
            capacity = self.limit.limit * (1.0 - self.limit.external_share)
            external = self.limit.limit * self.limit.external_share
            if self._used + weight > capacity + 1e-9:
                wait = self.limit.window_seconds
                needed = self._used + weight - capacity
                freed = 0.0
                for stamp, w in self._log:
                    freed += w
                    if freed >= needed:
                        wait = stamp + self.limit.window_seconds - now
                        break
                return False, max(wait, 0.001), min(100.0, 100.0 * (self._used + external) / self.limit.limit)
            self._log.append((now, weight))
            self._used += weight
            return True, 0.0, min(100.0, 100.0 * (self._used + external) / self.limit.limit)


@dataclass
class Faults:
    """Faults injected into one API's responses. Rates are probabilities per request (0 to 1)."""

    error_rate: float = 0.0  #: answer 500/502/503 without processing
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503])
    latency_ms: float = 0.0  #: added before answering
    latency_rate: float = 1.0  #: share of requests that get the added latency
    reset_rate: float = 0.0  #: reset the connection without processing
    malformed_rate: float = 0.0  #: process, then answer with a truncated JSON body
    lost_response_rate: float = 0.0  #: process, then reset the connection (the response is lost)
    force_429: int = 0  #: answer the next N requests with 429
    retry_after: int = 1  #: Retry-After seconds on forced 429s
    foreign_results_url: bool = False  #: DSR only: results_url points at a host that is not mParticle's

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        faults = cls(**data)
        for name in ("error_rate", "latency_rate", "reset_rate", "malformed_rate", "lost_response_rate"):
            if not 0.0 <= float(getattr(faults, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        return faults

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultDice:
    """Seeded randomness for fault injection, so a run can be repeated exactly."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def choice(self, options: list[int]) -> int:
        with self._lock:
            return self._random.choice(options)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` is a non-negative integer of seconds: round up so a client never comes back early."""
    return str(max(1, math.ceil(seconds)))
