"""Opt-out (synchronous): find the subject's profile; if there is one, record the opt-out as consent state.

The profile is found with every kind of identifier the request carries
(:func:`connector_mparticle.flows.lookup.find_profile`): the mpid through the Profile API, an immutable id
through the Profile API, and one identity search with the searchable identifiers, whose answer must match what
was asked (``matched_identities``). Identifiers that find different profiles stop the opt-out before anything
is recorded (the request does not say whose consent it is). "No profile" is only ever mParticle saying so; an
answer that is not a verdict fails the call as ``retry_later`` (the consent batch carries a derived
``source_request_id``, so a retry records it once). With an mpid that cannot be checked (no Profile API), the
batch is sent for that mpid, with the subject's other identities so mParticle can attribute it, and the result
says the profile could not be confirmed.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import ConfigurationError, MParticleError, failed_result
from connector_mparticle.flows.lookup import Check, blind_spots, find_profile
from connector_mparticle.flows.subject import Subject, opt_out_batch
from connector_mparticle.identities import MPID
from dsr_framework.models import AuditEvent, DsrRequest, Result

__all__ = ["opt_out"]


def opt_out(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """Find the profile; if it exists, record the opt-out as consent state with one batch."""
    trail: list[AuditEvent] = []
    try:
        message, summary = _opt_out(conn, request, trail)
    except MParticleError as exc:
        trail.append(AuditEvent("stop", f"failed ({exc.error_class})", {"message": conn.redactor(exc.message)}))
        return failed_result(request, exc, conn.redactor, tuple(trail))
    return Result(request.request_id, request.type, "completed", conn.redactor(message), audit=tuple(trail),
                  summary=conn.redactor.scrub_json(summary))


def _opt_out(conn: MParticleConnector, request: DsrRequest, trail: list[AuditEvent]) -> tuple[str, dict[str, Any]]:
    """The completed opt-out's message and summary (the audit events go to ``trail``)."""
    subject = Subject.of(request, conn.settings)
    found = find_profile(conn, subject)
    if found is None:
        raise ConfigurationError("none of the request's identifiers can be looked up in mParticle (the "
                                 f"request has {', '.join(sorted(subject.values()))})")
    trail.append(AuditEvent(f"find profile by {found.via}", _FOUND[found.found],
                            {"mpid": found.mpid} if found.mpid else {}))
    not_verifiable = blind_spots(conn, subject, found.found is not False)
    caveat = "".join(f"; {limit}" for limit in not_verifiable)
    if found.found is False:
        return (f"no mParticle profile matches this subject, so there is no consent to change{caveat}",
                {"profile_found": False, "consent_changed": False, "not_verifiable": not_verifiable})
    mpid, batch = _upload_consent(conn, request, subject, found, trail)
    recorded = [f"{reg}.{purpose}" for reg, purposes in batch["consent_state"].items() for purpose in purposes]
    unconfirmed = "; whether mParticle holds a profile with this mpid could not be checked (the Profile API " \
                  "is not configured)" if found.found is None else ""
    return f"recorded the opt-out in mParticle ({', '.join(recorded)}){unconfirmed}{caveat}", {
        "profile_found": found.found, "consent_changed": True, "mpid": mpid,
        "consent_state": batch["consent_state"], "source_request_id": batch["source_request_id"],
        "not_verifiable": not_verifiable}


_FOUND = {None: "not checkable", True: "found", False: "not found"}


def _upload_consent(conn: MParticleConnector, request: DsrRequest, subject: Subject, found: Check,
                    trail: list[AuditEvent]) -> tuple[str, dict[str, Any]]:
    """Send the consent batch for the profile ``found``; its mpid and the batch."""
    mpid = found.mpid or subject.get(MPID)
    assert mpid is not None
    attribute = None
    if found.found is None:  # an mpid the Profile API could not confirm: let mParticle attribute it too
        attribute = {i.kind.events: i.value for i in subject.identifiers if i.kind.events and not i.kind.device}
    batch = opt_out_batch(request, conn.settings, mpid, attribute)
    reply = conn.events.upload(batch, what="record opt-out consent")
    trail.append(AuditEvent("upload consent batch", f"HTTP {reply.status}",
                            {"mpid": mpid, "source_request_id": batch["source_request_id"],
                             "attempts": reply.attempts}))
    return mpid, batch
