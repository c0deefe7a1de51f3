"""Deterministic remote ids, request bodies and the resumable state of one privacy request.

Exactly-once rests on one rule: every id sent to mParticle is derived from the host's request id, never
random. Resubmitting after a crash, a timeout or a lost response reuses the same ``subject_request_id``, so
mParticle answers "already exists" instead of starting a second request; an opt-out resent with the same
``source_request_id`` is de-duplicated by the Events API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from connector_mparticle.errors import ConfigurationError
from connector_mparticle.identities import identity_type
from connector_mparticle.settings import Settings
from dsr_framework.models import DsrRequest, format_time, parse_time

__all__ = ["RequestState", "derived_uuid", "dsr_body", "opt_out_batch", "safe_file_stem", "subject_identities"]

#: Namespace for ids this connector derives (fixed forever: changing it would break idempotency).
NAMESPACE = uuid.UUID("5b0f6f52-4c1e-4f2a-9d0e-6d7a1c3e8b21")
STATE_VERSION = 1
AUDIT_LIMIT = 60
OPENDSR_EXTENSION = "opendsr.mparticle.com"


def derived_uuid(host_request_id: str, purpose: str) -> str:
    """A UUID derived from the host request id (UUID v5-style hashing), formatted as the v4 mParticle requires."""
    digest = uuid.uuid5(NAMESPACE, f"{purpose}:{host_request_id}")
    return str(uuid.UUID(bytes=digest.bytes, version=4))


def subject_identities(request: DsrRequest, settings: Settings) -> dict[str, str]:
    """The request's identities in the categories this connector is configured to send."""
    chosen = {name: request.identities[name] for name in settings.identities if name in request.identities}
    if not chosen:
        raise ConfigurationError(
            f"the request has none of the identifier categories this connector sends "
            f"({', '.join(settings.identities)}); it has: {', '.join(sorted(request.identities))}")
    return chosen


def regulation(request: DsrRequest, settings: Settings) -> str:
    return request.regulation if settings.regulation == "from_request" else settings.regulation


def dsr_body(request: DsrRequest, settings: Settings, request_type: str) -> dict[str, Any]:
    """The OpenDSR v3 submission for ``request`` (``request_type`` is ``access`` or ``erasure``)."""
    top: dict[str, Any] = {}
    extension: dict[str, Any] = {}
    for name, value in subject_identities(request, settings).items():
        kind = identity_type(name)
        assert kind.dsr is not None
        (extension if kind.dsr_extension_only else top)[kind.dsr] = {"value": value, "encoding": "raw"}
    body: dict[str, Any] = {
        "regulation": regulation(request, settings),
        "subject_request_id": derived_uuid(request.request_id, request_type),
        "subject_request_type": request_type,
        "submitted_time": format_time(request.submitted_at),
        "subject_identities": top,
        "api_version": "3.0",
        "group_id": request.request_id,
    }
    if settings.callback_urls:
        body["status_callback_urls"] = list(settings.callback_urls)
    mparticle: dict[str, Any] = {}
    if extension:
        mparticle["subject_identities"] = extension
    if request_type == "erasure" and settings.skip_waiting_period:
        mparticle["skip_waiting_period"] = True  # mParticle's example puts it in the extension
    if mparticle:
        body["extensions"] = {OPENDSR_EXTENSION: mparticle}
    return body


def opt_out_batch(request: DsrRequest, settings: Settings, mpid: str) -> dict[str, Any]:
    """An Events API batch for ``mpid`` that records the opt-out as consent state.

    CCPA ``data_sale_opt_out`` consented=true means the user has opted out of sale; each configured GDPR
    purpose consented=false means the user refused it. The timestamp is when the subject asked.
    """
    stamp = int(request.submitted_at.timestamp() * 1000)

    def state(consented: bool) -> dict[str, Any]:
        return {"consented": consented, "document": settings.consent_document,
                "timestamp_unixtime_ms": stamp, "location": settings.consent_location}

    consent: dict[str, Any] = {}
    if settings.ccpa_opt_out:
        consent["ccpa"] = {"data_sale_opt_out": state(True)}
    if settings.gdpr_purposes:
        consent["gdpr"] = {purpose: state(False) for purpose in settings.gdpr_purposes}
    if not consent:
        raise ConfigurationError("opt-out records nothing: enable opt_out.ccpa_data_sale_opt_out or list "
                                 "opt_out.gdpr_purposes")
    return {
        "environment": settings.environment,
        "mpid": int(mpid),
        "source_request_id": derived_uuid(request.request_id, "opt_out"),
        "consent_state": consent,
        "events": [],
    }


def safe_file_stem(request_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", request_id)[:120]


@dataclass
class RequestState:
    """What the host stores between calls for one asynchronous request (JSON, versioned)."""

    subject_request_id: str
    phase: str = "submitted"  #: submitted (waiting for mParticle) or verifying (erasure done, confirming)
    submitted_at: str | None = None
    expected_completion_time: str | None = None
    last_status: str | None = None
    status_checks: int = 0
    overdue_checks: int = 0
    verify_attempts: int = 0
    audit: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["audit"] = self.audit[-AUDIT_LIMIT:]
        return {"v": STATE_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, subject_request_id: str) -> RequestState | None:
        """The state, or None if it is absent, from another version, or for another request (start afresh:
        resubmitting is idempotent)."""
        if not data or data.get("v") != STATE_VERSION or data.get("subject_request_id") != subject_request_id:
            return None
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        counters = ("status_checks", "overdue_checks", "verify_attempts")
        texts = ("phase", "submitted_at", "expected_completion_time", "last_status")
        well_typed = (
            all(isinstance(known.get(k, 0), int) and not isinstance(known.get(k), bool) for k in counters)
            and all(isinstance(known.get(k), str | None) for k in texts)
            and isinstance(known.get("audit", []), list)
        )
        if not well_typed:
            return None  # the host altered it: start afresh (resubmitting is idempotent)
        state = cls(**known)
        if state.phase not in ("submitted", "verifying"):
            return None
        try:
            state.expected  # noqa: B018 - a state the host altered must not break the next call
        except (TypeError, ValueError):
            return None
        return state

    @property
    def expected(self) -> datetime | None:
        return parse_time(self.expected_completion_time) if self.expected_completion_time else None
