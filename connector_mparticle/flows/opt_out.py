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

**Verification.** No mParticle API returns consent state, so a consent write cannot be read back: there is
nothing a connector, or a person, can check afterwards, and the result's ``verification`` is
``not_applicable`` (the summary's ``not_verifiable`` says so in words). What the lookup could not reach or
confirm (known profiles without a login id, an immutable id the request lacks, login ids that matched nothing,
an mpid without the Profile API) makes it ``unverified``, with a reason each; ``verification.unverifiable:
fail`` turns those limits into a ``verification`` failure before anything is written.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import ConfigurationError, MParticleError, VerificationError, failed_result
from connector_mparticle.flows.lookup import Check, find_profile
from connector_mparticle.flows.subject import Subject, opt_out_batch
from connector_mparticle.flows.verification import category_of, reach_reasons
from connector_mparticle.identities import MPID
from dsr_framework.models import AuditEvent, DsrRequest, Result, Verification, VerificationReason

__all__ = ["opt_out"]


def opt_out(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """Find the profile; if it exists, record the opt-out as consent state with one batch."""
    trail: list[AuditEvent] = []
    try:
        message, summary, verification = _opt_out(conn, request, trail)
    except MParticleError as exc:
        trail.append(AuditEvent("stop", f"failed ({exc.error_class})", {"message": conn.redactor(exc.message)}))
        return failed_result(request, exc, conn.redactor, tuple(trail))
    return Result(request.request_id, request.type, "completed", conn.redactor(message), audit=tuple(trail),
                  summary=conn.redactor.scrub_json(summary), verification=verification)


def _opt_out(conn: MParticleConnector, request: DsrRequest,
             trail: list[AuditEvent]) -> tuple[str, dict[str, Any], Verification]:
    """The completed opt-out's message, summary and verification (the audit events go to ``trail``)."""
    subject = Subject.of(request, conn.settings)
    found = find_profile(conn, subject)
    if found is None:
        raise ConfigurationError("none of the request's identifiers can be looked up in mParticle (the "
                                 f"request has {', '.join(sorted(subject.values()))})")
    trail.append(AuditEvent(f"find profile by {found.via}", _FOUND[found.found],
                            {"mpid": found.mpid} if found.mpid else {}))
    limits = _limits(conn, subject, found)
    caveat = "".join(f"; {r.message}" for r in limits)
    not_verifiable = [r.message for r in limits]
    if found.found is False:
        return (f"no mParticle profile matches this subject, so there is no consent to change{caveat}",
                {"profile_found": False, "consent_changed": False, "not_verifiable": not_verifiable},
                Verification.of(limits))
    mpid, batch = _upload_consent(conn, request, subject, found, trail)
    recorded = [f"{reg}.{purpose}" for reg, purposes in batch["consent_state"].items() for purpose in purposes]
    return f"recorded the opt-out in mParticle ({', '.join(recorded)}){caveat}", {
        "profile_found": found.found, "consent_changed": True, "mpid": mpid,
        "consent_state": batch["consent_state"], "source_request_id": batch["source_request_id"],
        "not_verifiable": [*not_verifiable, NO_READ_BACK]}, Verification.of(limits, checked=False)


def _limits(conn: MParticleConnector, subject: Subject, found: Check) -> list[VerificationReason]:
    """What the lookup could not reach or confirm, known before anything is written: with
    ``verification.unverifiable: fail`` nothing is written then (mParticle's lack of a consent read-back is not
    such a limit: no request or setting can change it)."""
    limits = reach_reasons(conn, subject, found.found is not False)
    if found.found is None:
        limits.insert(0, VerificationReason(
            "api_not_configured", "whether mParticle holds a profile with this mpid could not be checked (the "
            "Profile API is not configured)", (category_of(conn, MPID, subject),)))
    if limits and conn.settings.verification.unverifiable == "fail":
        raise VerificationError("the opt-out cannot be verified, so nothing was written (verification."
                                "unverifiable: fail): " + "; ".join(r.message for r in limits))
    return limits


#: Why a recorded opt-out is never read back (developers/profile-api: its fields do not include consent state).
NO_READ_BACK = ("no mParticle API returns consent state, so the recorded opt-out cannot be read back (a GDPR "
                "purpose the workspace does not define is accepted and ignored)")
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
