"""The request and result contract between a host and its connectors, as typed models.

Every model converts to and from plain JSON (``to_dict`` / ``from_dict``); the JSON form is what
``schemas/request.schema.json`` and ``schemas/result.schema.json`` describe, and what hosts store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from dsr_framework.text import for_people, identity_problem
from dsr_framework.validation import Problem, SchemaViolation, framework_validator, validate
from dsr_framework.verification import Verification, VerificationReason

__all__ = [
    "ActionRequired",
    "AuditEvent",
    "CheckOutcome",
    "ConnectionResult",
    "DsrRequest",
    "ErrorClass",
    "FailureInfo",
    "OutputFile",
    "Regulation",
    "RequestType",
    "Result",
    "Status",
    "Verification",
    "VerificationReason",
    "utcnow",
]

JSON = dict[str, Any]
RequestType = Literal["access", "portability", "deletion", "opt_out"]
Regulation = Literal["gdpr", "ccpa"]
Status = Literal["completed", "pending", "failed"]
ErrorClass = Literal["configuration", "authentication", "rejected", "retry_later", "verification", "internal"]

#: Which hook serves which request type. Portability is an access request whose export must be machine-readable
#: and fit to move to another controller (GDPR art. 20): the access hook serves both, by ``request.type``.
HOOK_FOR_TYPE: dict[RequestType, str] = {
    "access": "handle_access",
    "portability": "handle_access",
    "deletion": "handle_deletion",
    "opt_out": "handle_opt_out",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and millisecond precision."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp; naive values are refused."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class DsrRequest:
    """One privacy request as the host hands it to a connector."""

    request_id: str
    type: RequestType
    regulation: Regulation
    identities: Mapping[str, str]
    submitted_at: datetime
    output_dir: str | None = None
    #: When the request must be answered (optional); hosts order a backlog by it, connectors may ignore it.
    due_at: datetime | None = None

    def __post_init__(self) -> None:
        # The identity rule in code as well as in the schema (tests prove they agree): a value mParticle would
        # match as something else must never be sent, whichever validator reads the schema.
        problems = [Problem(f"$.identities.{for_people(name)}", why) for name, value in self.identities.items()
                    if isinstance(value, str) and (why := identity_problem(value)) is not None]
        if problems:
            raise SchemaViolation("request", problems)
        validate(framework_validator("request"), self.to_dict(), "request")

    def to_dict(self) -> JSON:
        out: JSON = {
            "request_id": self.request_id,
            "type": self.type,
            "regulation": self.regulation,
            "identities": dict(self.identities),
            "submitted_at": format_time(self.submitted_at),
        }
        if self.output_dir is not None:
            out["output_dir"] = self.output_dir
        if self.due_at is not None:
            out["due_at"] = format_time(self.due_at)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DsrRequest:
        """Build a request from its JSON form, raising :class:`SchemaViolation` listing every problem."""
        validate(framework_validator("request"), dict(data), "request")
        return cls(
            request_id=data["request_id"],
            type=data["type"],
            regulation=data["regulation"],
            identities=dict(data["identities"]),
            submitted_at=parse_time(data["submitted_at"]),
            output_dir=data.get("output_dir"),
            due_at=parse_time(data["due_at"]) if data.get("due_at") else None,
        )

    def __repr__(self) -> str:
        # Identities are personal data: keep them out of reprs that end up in logs and tracebacks.
        return (
            f"DsrRequest(request_id={self.request_id!r}, type={self.type!r}, regulation={self.regulation!r}, "
            f"identities=<{', '.join(sorted(self.identities))}>)"
        )


@dataclass(frozen=True)
class AuditEvent:
    """One step of a request's history: what was sent or checked, and what came back."""

    action: str
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)

    def to_dict(self) -> JSON:
        out: JSON = {"at": format_time(self.at), "action": self.action, "outcome": self.outcome}
        if self.detail:
            out["detail"] = dict(self.detail)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        return cls(data["action"], data["outcome"], dict(data.get("detail", {})), parse_time(data["at"]))


@dataclass(frozen=True)
class FailureInfo:
    """Why a request failed, classified by what the host should do about it."""

    error_class: ErrorClass
    message: str
    retry_after: datetime | None = None

    def to_dict(self) -> JSON:
        out: JSON = {"class": self.error_class, "message": self.message}
        if self.retry_after is not None:
            out["retry_after"] = format_time(self.retry_after)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FailureInfo:
        retry = data.get("retry_after")
        return cls(data["class"], data["message"], parse_time(retry) if retry else None)


@dataclass(frozen=True)
class ActionRequired:
    """On a ``pending`` result: a person must fix something before the request can progress.

    The request is not lost: the remote service holds it (the message says first what the service did), and
    calling again with the state after the fix carries on with the step that stopped. ``error_class`` says
    what kind of fix (``configuration``, ``authentication``, …: the error classes)."""

    error_class: ErrorClass
    message: str

    def to_dict(self) -> JSON:
        return {"class": self.error_class, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionRequired:
        return cls(data["class"], data["message"])


@dataclass(frozen=True)
class OutputFile:
    """A file a connector wrote into the request's output directory."""

    path: str
    media_type: str
    size_bytes: int
    sha256: str
    description: str = ""

    def to_dict(self) -> JSON:
        out: JSON = {"path": self.path, "media_type": self.media_type, "size_bytes": self.size_bytes,
                     "sha256": self.sha256}
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputFile:
        return cls(data["path"], data["media_type"], data["size_bytes"], data["sha256"], data.get("description", ""))


@dataclass(frozen=True)
class Result:
    """The outcome of one hook call for an access, deletion or opt-out request.

    ``pending`` results carry ``state`` (opaque JSON the host stores and passes back on the next call)
    and ``next_check_at``, and ``action_required`` when a person must fix something first; ``failed`` results
    carry ``error``. Final results may say whether their outcome was checked (``verification``,
    :mod:`dsr_framework.verification`).
    """

    request_id: str
    request_type: RequestType
    status: Status
    message: str
    state: Mapping[str, Any] | None = None
    next_check_at: datetime | None = None
    error: FailureInfo | None = None
    audit: tuple[AuditEvent, ...] = ()
    files: tuple[OutputFile, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    verification: Verification | None = None
    action_required: ActionRequired | None = None

    @property
    def final(self) -> bool:
        """True when no further call is needed (completed or failed)."""
        return self.status != "pending"

    @property
    def unverified(self) -> bool:
        """True for a completed result whose outcome could not be fully checked (a host routes it to a person)."""
        return self.status == "completed" and self.verification is not None and self.verification.status == \
            "unverified"

    def to_dict(self) -> JSON:
        out: JSON = {
            "kind": "request",
            "request_id": self.request_id,
            "request_type": self.request_type,
            "status": self.status,
            "message": self.message,
            "audit": [event.to_dict() for event in self.audit],
        }
        if self.state is not None:
            out["state"] = dict(self.state)
        if self.next_check_at is not None:
            out["next_check_at"] = format_time(self.next_check_at)
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.files:
            out["files"] = [f.to_dict() for f in self.files]
        if self.summary:
            out["summary"] = dict(self.summary)
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        if self.action_required is not None:
            out["action_required"] = self.action_required.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """Parse and validate the JSON form (raises :class:`SchemaViolation`)."""
        validate(framework_validator("result"), dict(data), "result")
        if data.get("kind") != "request":
            raise ValueError("not a request result")
        next_check = data.get("next_check_at")
        return cls(
            request_id=data["request_id"],
            request_type=data["request_type"],
            status=data["status"],
            message=data["message"],
            state=data.get("state"),
            next_check_at=parse_time(next_check) if next_check else None,
            error=FailureInfo.from_dict(data["error"]) if "error" in data else None,
            audit=tuple(AuditEvent.from_dict(e) for e in data.get("audit", [])),
            files=tuple(OutputFile.from_dict(f) for f in data.get("files", [])),
            summary=dict(data.get("summary", {})),
            verification=Verification.from_dict(data["verification"]) if "verification" in data else None,
            action_required=ActionRequired.from_dict(data["action_required"]) if "action_required" in data else None,
        )

    @classmethod
    def failed(
        cls, request: DsrRequest, error_class: ErrorClass, message: str, audit: tuple[AuditEvent, ...] = ()
    ) -> Result:
        """A failed result for ``request``."""
        return cls(request.request_id, request.type, "failed", message, error=FailureInfo(error_class, message),
                   audit=audit)


@dataclass(frozen=True)
class CheckOutcome:
    """One named check of a connection test."""

    name: str
    ok: bool
    message: str
    latency_ms: float | None = None
    error_class: ErrorClass | None = None

    def to_dict(self) -> JSON:
        out: JSON = {"name": self.name, "ok": self.ok, "message": self.message}
        if self.latency_ms is not None:
            out["latency_ms"] = round(self.latency_ms, 1)
        if self.error_class is not None:
            out["error_class"] = self.error_class
        return out


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of ``test_connection``: one entry per check and an overall verdict."""

    checks: tuple[CheckOutcome, ...]
    message: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_dict(self) -> JSON:
        failed = [c.name for c in self.checks if not c.ok]
        message = self.message or (
            "all checks passed" if self.ok else f"failed: {', '.join(failed)}" if failed else "no checks ran"
        )
        return {"kind": "connection_test", "ok": self.ok, "message": message,
                "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConnectionResult:
        validate(framework_validator("result"), dict(data), "result")
        if data.get("kind") != "connection_test":
            raise ValueError("not a connection-test result")
        checks = tuple(
            CheckOutcome(c["name"], c["ok"], c["message"], c.get("latency_ms"), c.get("error_class"))
            for c in data["checks"]
        )
        return cls(checks, data["message"])


assert set(get_args(RequestType)) == set(HOOK_FOR_TYPE)
