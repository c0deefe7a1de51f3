"""Opt-out (synchronous): find the subject's profile; if there is one, record the opt-out as consent state.

The profile is found the way verification finds it (:func:`connector_mparticle.flows.lookup.find_profile`):
by mpid through the Profile API, by an immutable id through the Profile API, or with an identity search.
"No profile" is only ever mParticle saying so; an answer that is not a verdict fails the call as
``retry_later`` (the consent batch carries a derived ``source_request_id``, so a retry records it once). With
an mpid that cannot be checked (no Profile API), the batch is sent for that mpid, with the subject's other
identities so mParticle can attribute it, and the result says the profile could not be confirmed.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import ConfigurationError, MParticleError, RetryLaterError
from connector_mparticle.flows.lookup import blind_spot, find_profile
from connector_mparticle.flows.subject import Subject, opt_out_batch
from connector_mparticle.identities import MPID
from dsr_framework.models import AuditEvent, DsrRequest, FailureInfo, Result, Status
from dsr_framework.redact import redact_strings

__all__ = ["opt_out"]


def opt_out(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """Find the profile; if it exists, record the opt-out as consent state with one batch."""
    trail: list[AuditEvent] = []

    def done(status: Status, message: str, summary: dict[str, Any] | None = None,
             error: MParticleError | None = None) -> Result:
        message = conn.redactor(message)
        failure = None
        if error is not None:
            retry = error.retry_after if isinstance(error, RetryLaterError) else None
            failure = FailureInfo(error.error_class, message, retry)
        return Result(request.request_id, request.type, status, message, error=failure, audit=tuple(trail),
                      summary=redact_strings(summary or {}, conn.redactor.hide))

    try:
        subject = Subject.of(request, conn.settings)
        found = find_profile(conn, subject)
        if found is None:
            raise ConfigurationError("none of the request's identifiers can be looked up in mParticle (the "
                                     f"request has {', '.join(sorted(subject.values()))})")
        trail.append(AuditEvent(f"find profile by {found.via}", "not checkable" if found.found is None else
                                "found" if found.found else "not found", {"mpid": found.mpid} if found.mpid else {}))
        limit = blind_spot(conn, subject)
        caveat = f"; {limit}" if limit else ""
        if found.found is False:
            return done("completed", f"no mParticle profile matches this subject, so there is no consent to "
                                     f"change{caveat}", {"profile_found": False, "consent_changed": False,
                                                         "not_verifiable": [limit] if limit else []})
        mpid = found.mpid or subject.get(MPID)
        assert mpid is not None
        batch = opt_out_batch(request, conn.settings, mpid)
        if found.found is None:  # an mpid the Profile API could not confirm: let mParticle attribute it too
            batch["user_identities"] = {i.kind.events: i.value for i in subject.identifiers
                                        if i.kind.events and not i.kind.device}
        reply = conn.events.upload(batch, what="record opt-out consent")
        trail.append(AuditEvent("upload consent batch", f"HTTP {reply.status}",
                                {"mpid": mpid, "source_request_id": batch["source_request_id"],
                                 "attempts": reply.attempts}))
        recorded = [f"{reg}.{purpose}" for reg, purposes in batch["consent_state"].items() for purpose in purposes]
        unconfirmed = "; whether mParticle holds a profile with this mpid could not be checked (the Profile API " \
                      "is not configured)" if found.found is None else ""
        return done("completed", f"recorded the opt-out in mParticle ({', '.join(recorded)}){unconfirmed}{caveat}", {
            "profile_found": found.found, "consent_changed": True, "mpid": mpid,
            "consent_state": batch["consent_state"], "source_request_id": batch["source_request_id"],
            "not_verifiable": [limit] if limit else []})
    except MParticleError as exc:
        message = conn.redactor(exc.message)
        trail.append(AuditEvent("stop", f"failed ({exc.error_class})", {"message": message}))
        return done("failed", message, error=exc)
