"""The OpenDSR v3 client: submit, status, list by group, cancel, discovery, and results download."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from connector_mparticle.errors import RejectedError
from connector_mparticle.transport import ApiClient, Download, Reply
from dsr_framework.models import parse_time

__all__ = ["DsrStatus", "OpenDsrClient"]


@dataclass(frozen=True)
class DsrStatus:
    """What mParticle says about one request."""

    subject_request_id: str
    request_status: str  #: pending, in_progress, completed, cancelled
    expected_completion_time: datetime | None
    results_url: str | None
    group_id: str | None
    forwarding: tuple[dict[str, Any], ...]

    @classmethod
    def from_body(cls, body: Any) -> DsrStatus:
        if not isinstance(body, dict) or not isinstance(body.get("subject_request_id"), str):
            raise RejectedError("the DSR API returned a status without a subject_request_id", api="dsr")
        status = body.get("request_status")
        if status not in ("pending", "in_progress", "completed", "cancelled"):
            raise RejectedError(f"the DSR API returned an unknown request_status {status!r}", api="dsr")
        return cls(body["subject_request_id"], status, _time(body.get("expected_completion_time")),
                   body.get("results_url") or None, body.get("group_id"),
                   tuple(e for e in body.get("extensions") or [] if isinstance(e, dict)))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


class OpenDsrClient:
    """Thin wrapper over the DSR API's routes."""

    def __init__(self, http: ApiClient) -> None:
        self.http = http

    def submit(self, body: dict[str, Any]) -> Reply:
        """POST /v3/requests. 201 on success; :class:`AlreadyExistsError` if the id was used before."""
        return self.http.call("POST", "/v3/requests", body=body, accept=(201,), budgets=("dsr", "dsr_submit"),
                              what=f"submit {body['subject_request_type']} request")

    def status(self, subject_request_id: str) -> DsrStatus:
        """GET /v3/requests/{id} (:class:`NotFoundError` if mParticle does not know it)."""
        reply = self.http.call("GET", f"/v3/requests/{quote(subject_request_id, safe='')}",
                               what="check request status")
        return DsrStatus.from_body(reply.body)

    def by_group(self, group_id: str) -> list[DsrStatus]:
        reply = self.http.call("GET", f"/v3/requests?group_id={quote(group_id, safe='')}",
                               what="list requests by group")
        return [DsrStatus.from_body(item) for item in reply.body or []]

    def cancel(self, subject_request_id: str) -> Reply:
        return self.http.call("DELETE", f"/v3/requests/{subject_request_id}", accept=(200, 202),
                              what="cancel request")

    def probe(self) -> Reply:
        """GET /v3/requests/0: a 404 proves the credentials work (no request has that id)."""
        return self.http.call("GET", "/v3/requests/0", accept=(404,), what="check DSR credentials")

    def download(self, url: str, destination: Path, max_bytes: int, allowed_hosts: set[str]) -> Download:
        return self.http.download(url, destination, max_bytes=max_bytes, allowed_hosts=allowed_hosts)
