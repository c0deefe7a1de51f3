"""The connector's exceptions, branched by what the caller must do.

::

    MParticleError                 every failure the connector reports; str() is always safe to show
    ├── ConfigurationError         fix the configuration (or the request)           -> "configuration"
    ├── AuthenticationError        fix the credentials for one API                  -> "authentication"
    ├── RejectedError              mParticle refused; retrying won't help           -> "rejected"
    │   ├── NotFoundError          404
    │   ├── AlreadyExistsError     400 "Subject request already exists"
    │   ├── GoneError              410 the results link expired
    │   ├── UnsafeResponseError    a URL the policy refuses, a redirect, a hostile or oversized download
    │   └── UnsignedAnswerError    an answer's processor signature did not verify (signatures: strict)
    ├── RetryLaterError            429, 5xx, network, timeouts, malformed answers, after the retry budget
    │   │                                                                          -> "retry_later"
    │   ├── ConflictError          409 an identical request is already in progress (never retried in-call)
    │   └── OutOfTimeError         the hook call used up timeouts.total_seconds
    └── VerificationError          mParticle says done, but the profile is still found -> "verification"

Every lower-level exception (requests, oauthlib, json) is translated at the transport boundary, with the
original kept as ``__cause__``. Messages never contain a secret (text a server sent is scrubbed of any
fragment of one); emails in them are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from dsr_framework.models import ActionRequired, AuditEvent, DsrRequest, ErrorClass, FailureInfo, Result, utcnow

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "GoneError",
    "MParticleError",
    "NotFoundError",
    "OutOfTimeError",
    "RejectedError",
    "RetryLaterError",
    "UnsafeResponseError",
    "UnsignedAnswerError",
    "VerificationError",
    "failed_result",
    "failure_info",
    "held_pending",
    "still_pending",
]


class MParticleError(Exception):
    """Root of the connector's errors."""

    error_class: ErrorClass = "rejected"

    def __init__(self, message: str, *, api: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.api = api
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, api={self.api!r}, status={self.status!r})"


class ConfigurationError(MParticleError):
    error_class: ErrorClass = "configuration"


class AuthenticationError(MParticleError):
    error_class: ErrorClass = "authentication"


class RejectedError(MParticleError):
    error_class: ErrorClass = "rejected"


class NotFoundError(RejectedError):
    pass


class AlreadyExistsError(RejectedError):
    pass


class GoneError(RejectedError):
    pass


class UnsafeResponseError(RejectedError):
    pass


class UnsignedAnswerError(RejectedError):
    """Under ``signatures: strict``: mParticle's signature on an answer is missing or does not verify."""


class RetryLaterError(MParticleError):
    error_class: ErrorClass = "retry_later"

    def __init__(self, message: str, *, api: str | None = None, status: int | None = None,
                 retry_after: datetime | None = None) -> None:
        super().__init__(message, api=api, status=status)
        self.retry_after = retry_after


class ConflictError(RetryLaterError):
    """409: mParticle already has an identical request in progress (under another id)."""


class OutOfTimeError(RetryLaterError):
    """The hook call reached its wall-clock budget (``timeouts.total_seconds``); nothing is left half-done."""


class VerificationError(MParticleError):
    error_class: ErrorClass = "verification"


def _unchanged(text: str) -> str:
    return text


def failure_info(exc: MParticleError, redact: Callable[[str], str] = _unchanged) -> FailureInfo:
    """How ``exc`` is reported to the host: its class, its message (through ``redact``), and when to retry."""
    retry_after = exc.retry_after if isinstance(exc, RetryLaterError) else None
    return FailureInfo(exc.error_class, redact(exc.message), retry_after)


def failed_result(request: DsrRequest, exc: MParticleError, redact: Callable[[str], str] = _unchanged,
                  audit: tuple[AuditEvent, ...] = ()) -> Result:
    """The failed result of ``request`` for ``exc`` (see :func:`failure_info`)."""
    info = failure_info(exc, redact)
    return Result(request.request_id, request.type, "failed", info.message, error=info, audit=audit)


STILL_PENDING_SECONDS = 60.0  #: when a call that could not start asks to be made again, without a Retry-After


def still_pending(request: DsrRequest, state: Mapping[str, Any], exc: RetryLaterError) -> Result:
    """The result of a call that could not even start for a request already pending (its connection could not
    be set up: the throttle store out of reach, say): still pending, with the state exactly as the host gave it
    (checked on the next call, like any state), to be checked again after ``retry_after`` or a minute. Failing
    it instead would end the request once the host stops retrying, though mParticle is still working on it."""
    after = exc.retry_after or utcnow() + timedelta(seconds=STILL_PENDING_SECONDS)
    return held_pending(request, state, f"{exc.message}; the {request.type} request is still pending and will be "
                        "checked again", after)


def held_pending(request: DsrRequest, state: Mapping[str, Any], message: str, after: datetime,
                 action: ActionRequired | None = None) -> Result:
    """Pending with the state exactly as the host gave it: the one shape of a call that could not advance a request
    mParticle holds (:func:`still_pending`; the plugin's configuration and unexpected-stop cases)."""
    return Result(request.request_id, request.type, "pending", message, state=dict(state), next_check_at=after,
                  action_required=action)
