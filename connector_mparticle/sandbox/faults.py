"""Faults the sandbox can inject, per API, and the seeded dice that decide when they strike."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["APIS", "SIGNATURE_MODES", "FaultBook", "FaultDice", "Faults"]

#: The APIs the sandbox serves; faults and the request log are kept per API.
APIS = ("dsr", "identity", "events", "oauth", "results", "profile")
#: ``signature`` fault: what ``X-OpenDSR-Signature`` carries on DSR responses and callbacks.
SIGNATURE_MODES = ("valid", "invalid", "missing")
_RATES = ("error_rate", "latency_rate", "reset_rate", "malformed_rate", "lost_response_rate")


@dataclass(frozen=True)
class Faults:
    """Faults injected into one API's responses. Rates are probabilities per request (0 to 1)."""

    error_rate: float = 0.0  #: answer 500/502/503 without processing
    error_statuses: tuple[int, ...] = (500, 502, 503)
    latency_ms: float = 0.0  #: added before answering
    latency_rate: float = 1.0  #: share of requests that get the added latency
    reset_rate: float = 0.0  #: reset the connection without processing
    malformed_rate: float = 0.0  #: process, then answer with a truncated JSON body
    lost_response_rate: float = 0.0  #: process, then reset the connection (the response is lost)
    force_429: int = 0  #: answer the next N requests with 429
    retry_after: int = 1  #: Retry-After seconds on forced 429s
    foreign_results_url: bool = False  #: DSR only: results_url points at a host that is not mParticle's
    signature: str = "valid"  #: DSR only: "valid", "invalid" (signed by another key) or "missing"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Faults from a JSON object (already checked against the admin schema)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        values = dict(data)
        if "error_statuses" in values:
            values["error_statuses"] = tuple(values["error_statuses"])
        faults = cls(**values)
        for name in _RATES:
            if not 0.0 <= float(getattr(faults, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if faults.signature not in SIGNATURE_MODES:
            raise ValueError(f"signature must be one of {', '.join(SIGNATURE_MODES)}")
        return faults

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_statuses"] = list(self.error_statuses)
        return data


_NONE = Faults()


class FaultBook:
    """The faults switched on, by API; owns its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Faults] = {}

    def get(self, api: str) -> Faults:
        with self._lock:
            return self._faults.get(api, _NONE)

    def update(self, settings: dict[str, Faults]) -> None:
        unknown = sorted(set(settings) - set(APIS))
        if unknown:
            raise ValueError(f"unknown API '{unknown[0]}' (known: {', '.join(APIS)})")
        with self._lock:
            self._faults.update(settings)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def all(self) -> dict[str, Faults]:
        with self._lock:
            return {api: self._faults.get(api, _NONE) for api in APIS}

    def take_forced_429(self, api: str) -> int | None:
        """If a run of 429s is switched on for ``api``, use one up and return its Retry-After."""
        with self._lock:
            faults = self._faults.get(api)
            if faults is None or faults.force_429 <= 0:
                return None
            self._faults[api] = replace(faults, force_429=faults.force_429 - 1)
            return faults.retry_after


class FaultDice:
    """Seeded randomness for fault injection, so a run can be repeated exactly."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Start the rolls over: a seeded sandbox repeats the faults of a fresh one."""
        with self._lock:
            self._random = random.Random(self._seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def choice(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._random.choice(options)
