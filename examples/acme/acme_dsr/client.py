"""The one place the connector talks to Acme: every HTTP outcome becomes data or an :class:`AcmeError`.

Every request waits for a slot first: Acme publishes a limit per account (the manifest's ``rate_limits``), and
the connector keeps to ``target_share`` of it, counted over a sliding window for every client in the process.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import requests

from dsr_framework.manifest import load_manifest
from dsr_framework.models import ErrorClass

__all__ = ["AcmeClient", "AcmeError"]

DEFAULT_BASE_URL = "https://api.acme-crm.example"
_LONGEST_WAIT = 1.0  #: seconds a request waits for a slot of the rate limit before the call gives up for now


class AcmeError(Exception):
    """Acme refused or could not answer; ``error_class`` says what the host should do about it."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


class _Window:
    """At most ``calls`` requests in any ``seconds``: a sliding log, shared by the threads of the process."""

    def __init__(self, calls: int, seconds: float) -> None:
        self.calls, self.seconds = calls, seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self, longest: float) -> None:
        """Take a slot, waiting for one at most ``longest`` seconds (``retry_later`` if none comes: a hook call
        stays short, and the host calls again later)."""
        give_up = time.monotonic() + longest
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.seconds:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return
                free_at = self._sent[0] + self.seconds
            if free_at > give_up:
                raise AcmeError("retry_later", "the connector's share of Acme's rate limit is spent; try again later")
            time.sleep(free_at - now)


@functools.cache
def _window(account: str) -> _Window:
    """The window of one Acme account: ``target_share`` of the published limit (from the manifest)."""
    manifest = load_manifest(sys.modules[__package__])
    [limit] = manifest.rate_limit("api")
    return _Window(max(1, math.floor(limit.limit * manifest.target_share)), limit.window_seconds)


class AcmeClient:
    """Acme's privacy API, authenticated with the configured key (sent only to the configured base URL)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._base = str(config.get("base_url", DEFAULT_BASE_URL)).rstrip("/")
        self._key = str(config["api_key"])
        self._timeout = float(config.get("timeout_seconds", 10))

    def __repr__(self) -> str:  # never show the key
        return f"AcmeClient({self._base!r})"

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        """Send one request; return the JSON answer, or raise :class:`AcmeError` (never a requests exception)."""
        headers = {"Authorization": f"Bearer {self._key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key  # Acme answers a repeat with the original job
        account = hashlib.sha256(f"{self._base} {self._key}".encode()).hexdigest()  # the limit is per account
        _window(account).wait(_LONGEST_WAIT)
        try:
            response = requests.request(method, self._base + path, json=body, headers=headers,
                                        timeout=self._timeout, allow_redirects=False)
        except requests.Timeout:
            raise AcmeError("retry_later", "Acme did not answer in time") from None
        except requests.RequestException:
            raise AcmeError("retry_later", "Acme could not be reached") from None
        if response.status_code in (401, 403):
            raise AcmeError("authentication", "Acme refused the API key")
        if response.status_code == 429 or response.status_code >= 500:
            raise AcmeError("retry_later", f"Acme is unavailable (HTTP {response.status_code})")
        if response.status_code >= 300:
            raise AcmeError("rejected", f"Acme refused the request (HTTP {response.status_code})")
        try:
            answer = response.json()
        except ValueError:
            raise AcmeError("retry_later", "Acme sent an answer that is not JSON") from None
        if not isinstance(answer, dict):
            raise AcmeError("retry_later", "Acme sent an answer that is not a JSON object")
        return answer
