"""Sends OpenDSR status callbacks from a background thread, only ever to loopback URLs.

mParticle queues callbacks and sends them every 15 minutes (``developers/dsr-api/v3`` "Callbacks"); the sandbox
sends them at once so tests need not wait. The OpenDSR spec says processors should retry failed callbacks
(``specification.md`` 8.5), so a 5xx or a refused connection is retried twice.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Callback", "CallbackSender"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Callback:
    """One callback to send: the raw body and its headers (signature included)."""

    url: str
    body: bytes
    headers: dict[str, str]
    subject_request_id: str
    request_status: str


class CallbackSender:
    """A queue and a thread that delivers callbacks; owns its lock over the delivery record."""

    def __init__(self, attempts: int = 3) -> None:
        self._attempts = attempts
        self._queue: queue.Queue[Callback | None] = queue.Queue()
        self._deliveries: list[dict[str, Any]] = []
        self._generation = 0  #: bumped by reset: a delivery of an earlier generation is not recorded
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sandbox-callbacks", daemon=True)
        self._thread.start()

    def send(self, callback: Callback) -> None:
        self._queue.put(callback)

    def deliveries(self) -> list[dict[str, Any]]:
        """Callbacks sent (or not sent) so far, with their outcome."""
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def reset(self) -> None:
        """Back to a fresh sender: callbacks still queued are dropped, and the outcome of one being sent right
        now is not recorded (it may still reach its URL: a request on the wire cannot be taken back)."""
        with self._lock:
            self._generation += 1
            self._deliveries.clear()
            dropped: list[Callback | None] = []
            while True:
                try:
                    dropped.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in dropped:  # close() was asked for: keep that
                self._queue.put(None)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            with self._lock:
                generation = self._generation
            entry: dict[str, Any] = {"url": item.url, "subject_request_id": item.subject_request_id,
                                     "request_status": item.request_status, "at": time.time()}
            if (urlsplit(item.url).hostname or "") not in _LOOPBACK:
                entry.update(delivered=False, outcome="not sent: the sandbox only delivers to loopback")
            else:
                entry.update(self._post(item))
            with self._lock:
                if generation == self._generation:
                    self._deliveries.append(entry)

    def _post(self, item: Callback) -> dict[str, Any]:
        outcome = "no attempt"
        for attempt in range(self._attempts):
            request = urllib.request.Request(item.url, item.body, item.headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
                    return {"delivered": True, "http_status": response.status, "attempts": attempt + 1}
            except urllib.error.HTTPError as exc:
                outcome = f"HTTP {exc.code}"
                if exc.code < 500:
                    return {"delivered": False, "http_status": exc.code, "attempts": attempt + 1}
            except OSError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2 * (attempt + 1))
        return {"delivered": False, "outcome": outcome, "attempts": self._attempts}
