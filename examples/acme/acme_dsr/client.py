"""The one place the connector talks to Acme: every HTTP outcome becomes data or an :class:`AcmeError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from dsr_framework.models import ErrorClass

__all__ = ["AcmeClient", "AcmeError"]

DEFAULT_BASE_URL = "https://api.acme-crm.example"


class AcmeError(Exception):
    """Acme refused or could not answer; ``error_class`` says what the host should do about it."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


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
