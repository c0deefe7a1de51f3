"""The status object of an OpenDSR request (``developers/dsr-api/v3``): the answer to GET /requests/{id}, each
entry of a list by group, and the body of a status callback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connector_mparticle.sandbox.records import DsrRecord
from connector_mparticle.sandbox.shapes import Shapes, ShapeSettings

__all__ = ["OPTIONAL_MEMBERS", "iso", "results_path", "status_body"]

_PARTNER_STATUS = {"pending": "pending", "in_progress": "pending"}


def iso(epoch: float | None) -> str | None:
    """An epoch time in the sandbox's tidy form (ISO 8601, milliseconds, ``Z``); None stays None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def results_path(record: DsrRecord) -> str:
    """The path of a request's results download (served by the ``/dsr-results/`` route)."""
    return f"/dsr-results/{record.subject_request_id}/{record.results_token}.zip"


def _forwarding(record: DsrRecord) -> list[dict[str, Any]] | None:
    """The ``extensions`` of a status: one entry per forwarding partner, or null when there are none (the
    documented examples show null). Docs silent on a cancelled request: its entries read ``skipped``."""
    if not record.partners:
        return None
    entries = []
    for partner in record.partners:
        if record.status == "cancelled":
            status, message = "skipped", "the request was cancelled before it was forwarded"
        elif record.status == "completed":
            status, message = partner.outcome, partner.status_message
        else:
            status, message = _PARTNER_STATUS[record.status], None
        entries.append({"domain": partner.domain, "name": partner.name, "status": status, "status_message": message})
    return entries


#: Members of a status that are null until they apply; under shape variation they may be left out instead.
OPTIONAL_MEMBERS = ("group_id", "results_url", "extensions")


def status_body(record: DsrRecord, controller_id: str, results_origin: str, shapes: Shapes | None = None,
                purpose: str = "status") -> dict[str, Any]:
    """The status object of ``record``; a completed access or portability request links its results under
    ``results_origin``. ``shapes`` (tidy when None) picks its timestamp form, which null members appear and
    the order of members, for ``purpose`` (``status`` or ``callback``)."""
    shapes = shapes or Shapes(ShapeSettings())
    key = (record.seq, record.status, purpose)
    results_url = None
    if record.status == "completed" and record.request_type != "erasure":
        results_url = results_origin + results_path(record)
    expected = record.expected_completion_at if record.status != "cancelled" else None
    body = {
        "controller_id": controller_id,
        # developers/dsr-api/v2 writes this field without a zone; v3 "in UTC"
        "expected_completion_time": shapes.timestamp(expected, record.seq, "expected", zoneless=True, by=True),
        "subject_request_id": record.subject_request_id,
        "group_id": record.group_id,
        "request_status": record.status,
        "api_version": record.api_version,
        "results_url": results_url,
        "extensions": _forwarding(record),
    }
    return dict(shapes.ordered(shapes.drop_nulls(body, OPTIONAL_MEMBERS, *key), *key))
