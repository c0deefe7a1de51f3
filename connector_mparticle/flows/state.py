"""The resumable state of one asynchronous request: what the host stores between calls.

A host request becomes one OpenDSR request, or two when it carries an mpid with other identifiers
(:mod:`connector_mparticle.flows.subject`); the state holds one part per OpenDSR request.

The host stores the state and hands it back, so it is input from outside and is checked as such. The
connector trusts only state it wrote itself: every state carries an HMAC keyed from the DSR credential, and
state that does not verify (altered by hand, from another request, another credential or an older version,
of the wrong type or shape) is ignored. Ignoring state is always safe: the connector resumes from
mParticle's own record (each submission is found again by its derived id, then its status is checked), so a
forged ``verifying`` phase cannot skip the status check, and a lowered counter cannot buy extra attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from dsr_framework.models import AuditEvent, parse_time

__all__ = ["PHASES", "STATE_VERSION", "Part", "RequestState", "state_key"]

STATE_VERSION = 3
AUDIT_LIMIT = 60
MAX_COUNTER = 1_000_000
#: submitted: waiting for mParticle; verifying: every erasure completed, confirming it.
PHASES = ("submitted", "verifying")
STATUSES = (None, "pending", "in_progress", "completed", "cancelled")


def state_key(secrets: Iterable[str]) -> bytes:
    """The HMAC key for states, derived from the DSR credential (a rotated credential starts afresh)."""
    material = "\0".join(sorted(secrets)).encode()
    return hashlib.sha256(b"connector-mparticle request state\0" + material).digest()


def _mac(key: bytes, data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


@dataclass
class Part:
    """One OpenDSR request of the host request."""

    subject_request_id: str
    label: str  #: identities, or mpid
    last_status: str | None = None
    expected_completion_time: str | None = None
    receipt: dict[str, Any] | None = None  #: signed acknowledgement (:mod:`connector_mparticle.api.receipts`)

    @property
    def expected(self) -> datetime | None:
        return _time(self.expected_completion_time)

    @property
    def done(self) -> bool:
        return self.last_status == "completed"


@dataclass
class RequestState:
    """What is known about one host request between calls."""

    parts: list[Part]
    phase: str = "submitted"
    submitted_at: str | None = None
    status_checks: int = 0
    overdue_checks: int = 0
    verify_attempts: int = 0
    audit: list[dict[str, Any]] = field(default_factory=list)

    def part(self, subject_request_id: str) -> Part | None:
        return next((p for p in self.parts if p.subject_request_id == subject_request_id), None)

    @property
    def expected(self) -> datetime | None:
        """The latest expected completion among unfinished parts: when the whole request should be done."""
        times = [t for p in self.parts if not p.done and (t := p.expected) is not None]
        return max(times) if times else None

    @property
    def last_status(self) -> str | None:
        """The least advanced status of the parts (what the request as a whole is)."""
        order = {s: i for i, s in enumerate(("cancelled", None, "pending", "in_progress", "completed"))}
        return min((p.last_status for p in self.parts), key=lambda s: order[s], default=None)

    def to_dict(self, key: bytes) -> dict[str, Any]:
        data = asdict(self)
        data["audit"] = self.audit[-AUDIT_LIMIT:]
        data = json.loads(json.dumps({"v": STATE_VERSION, **data}))  # exactly what the host will store
        return {**data, "mac": _mac(key, data)}

    @classmethod
    def from_dict(cls, data: Any, expected_ids: Iterable[str], key: bytes) -> RequestState | None:
        """The state, or None when it is absent or not trusted (see the module docstring). Its parts must be
        OpenDSR requests of this host request (``expected_ids``)."""
        if not isinstance(data, Mapping) or not data:
            return None
        body = {k: v for k, v in data.items() if k != "mac"}
        mac = data.get("mac")
        try:
            expected = _mac(key, body)
        except (TypeError, ValueError):
            return None
        if not isinstance(mac, str) or not hmac.compare_digest(mac, expected) or body.get("v") != STATE_VERSION:
            return None
        state = cls._well_formed(body)
        if state is None or not state.parts or not {p.subject_request_id for p in state.parts} <= set(expected_ids):
            return None
        return state

    @classmethod
    def _well_formed(cls, body: Mapping[str, Any]) -> RequestState | None:
        """Defence in depth behind the MAC: every field of the right type and in range."""
        known = {f.name: body[f.name] for f in fields(cls) if f.name in body}
        counters = ("status_checks", "overdue_checks", "verify_attempts")
        if not all(type(known.get(k, 0)) is int and 0 <= known.get(k, 0) <= MAX_COUNTER for k in counters):
            return None
        if known.get("phase", "submitted") not in PHASES or not isinstance(known.get("audit", []), list):
            return None
        if not isinstance(known.get("submitted_at"), (str, type(None))):
            return None
        try:
            parts = [Part(**p) for p in known.pop("parts", [])]
            if not all(isinstance(p.subject_request_id, str) and p.last_status in STATUSES
                       and isinstance(p.receipt, (dict, type(None))) for p in parts):
                return None
            state = cls(parts=parts, **known)
            state.expected  # noqa: B018 - an unreadable time must not break the next call
            state.audit_events()
        except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
            return None
        return state

    def audit_events(self) -> list[AuditEvent]:
        return [AuditEvent.from_dict(e) for e in self.audit]
