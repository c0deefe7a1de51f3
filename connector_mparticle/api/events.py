"""The Events API client: one batch to ``POST /v2/events``."""

from __future__ import annotations

from typing import Any

from connector_mparticle.http.transport import ApiClient, Reply

__all__ = ["EventsClient"]


class EventsClient:
    def __init__(self, http: ApiClient) -> None:
        self.http = http

    def upload(self, batch: dict[str, Any], what: str = "upload event batch") -> Reply:
        """Upload one batch; 202 means accepted."""
        return self.http.call("POST", "/v2/events", body=batch, accept=(202, 200), what=what)
