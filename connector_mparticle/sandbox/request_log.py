"""Every request clients sent to the mParticle APIs (not the admin API), for tests and benchmarks to count."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["RequestLog"]


class RequestLog:
    """A bounded, numbered log of requests; owns its lock."""

    def __init__(self, limit: int = 500_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = 0

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def entries(self, since: int = 0, api: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since and (api is None or e["api"] == api)]

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        """Forget the entries, keeping the numbering (a reader's ``since`` stays valid)."""
        with self._lock:
            self._entries.clear()

    def reset(self) -> None:
        """Forget the entries and number from 1 again, as a fresh log does."""
        with self._lock:
            self._entries.clear()
            self._seq = 0
