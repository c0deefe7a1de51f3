"""Helpers for talking to the sandbox directly (raw HTTP, as any client would)."""

from __future__ import annotations

import uuid
from typing import Any

from connector_mparticle.sandbox import SandboxCredentials

CREDS = SandboxCredentials()
WORKSPACE = (CREDS.workspace_key, CREDS.workspace_secret)
INPUT = (CREDS.input_key, CREDS.input_secret)


def dsr_body(kind: str = "access", email: str = "jane@example.com", **overrides: Any) -> dict[str, Any]:
    """A valid OpenDSR v3 submission; ``overrides`` replace or (with value None) remove fields."""
    body: dict[str, Any] = {
        "regulation": "gdpr",
        "subject_request_id": str(uuid.uuid4()),
        "subject_request_type": kind,
        "submitted_time": "2026-11-29T10:00:00Z",
        "subject_identities": {"email": {"value": email, "encoding": "raw"}},
        "api_version": "3.0",
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def batch(email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    """A small Events API batch with one custom event."""
    body: dict[str, Any] = {
        "environment": "production",
        "user_identities": {"email": email},
        "events": [{"event_type": "custom_event",
                    "data": {"event_name": "Viewed Pricing", "custom_event_type": "navigation",
                             "timestamp_unixtime_ms": 1764400000000}}],
    }
    body.update(extra)
    return body
