"""Deletion: once mParticle completes every erasure, confirm that the subject's profiles are gone.

Each identifier is checked with the API that can answer for its type (:mod:`connector_mparticle.flows.lookup`):
"gone" is mParticle saying so. A profile still found is checked again over the grace period, then the deletion
fails as ``verification``. What cannot be checked (a type no API searches, an mpid without the Profile API,
known profiles the request cannot reach without a login id) is named in the message, the summary and the audit
trail; with ``verification.unverifiable: fail`` it fails the deletion as ``verification`` instead.

mParticle's signed acknowledgements (:mod:`connector_mparticle.api.receipts`) are in the result's summary and audit
trail, and in ``mparticle-erasure-…-receipt.json`` when the request has an output directory.
"""

from __future__ import annotations

from datetime import timedelta

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import document
from connector_mparticle.errors import MParticleError, VerificationError
from connector_mparticle.files import Folder, stem
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.lookup import Check, blind_spots, check
from dsr_framework.models import OutputFile, Result

__all__ = ["KIND", "finish_deletion"]

KIND = "mparticle-erasure"  #: the start of every deletion file name
LOCK_WAIT_SECONDS = 5.0  #: the receipt is written in an instant; a worker still holding the lock is stuck


def finish_deletion(flow: Flow, statuses: dict[str, DsrStatus]) -> Result:
    """Confirm the erasure; re-check a profile still found over the grace period."""
    assert flow.state is not None
    checks = _verify(flow)
    still_found = sorted({c.identifier.kind.name for c in checks if c.found})
    if still_found:
        return _still_found(flow, still_found)
    unverifiable = _unverifiable(flow, checks)
    if unverifiable and flow.settings.verification.unverifiable == "fail":
        return flow.failed(VerificationError(
            "mParticle completed the erasure, but it cannot be fully verified: " + "; ".join(unverifiable)))
    verified = sorted(c.identifier.kind.name for c in checks if c.found is False)
    summary = {"verified": not unverifiable, "verified_identifiers": verified, "not_verifiable": unverifiable,
               "verification_searches": flow.state.verify_attempts}
    return flow.result("completed", _verified_message(verified, unverifiable), summary=summary,
                       files=_receipt_file(flow))


def _unverifiable(flow: Flow, checks: list[Check]) -> list[str]:
    """What could not be checked: identifiers no API answers for, and known profiles out of reach."""
    assert flow.state is not None
    unverifiable = [f"{c.identifier.kind.name} ({c.why})" for c in checks if c.found is None]
    return unverifiable + blind_spots(flow.conn, flow.subject, flow.state.found_before)


def _verified_message(verified: list[str], unverifiable: list[str]) -> str:
    message = "mParticle completed the erasure, and " + (
        f"checks by {', '.join(verified)} find no profile" if verified else "nothing could be checked")
    if unverifiable:
        message += "; not verifiable: " + "; ".join(unverifiable)
    return message


_OUTCOMES = {None: "not checkable", True: "still found", False: "not found"}


def _verify(flow: Flow) -> list[Check]:
    """Check every identifier with the API that can answer for it, noting each outcome; counts the attempt."""
    assert flow.state is not None
    checks = [check(flow.conn, flow.subject, identifier) for identifier in flow.subject.identifiers]
    for c in checks:
        flow.note(f"verify erasure: {c.identifier.kind.name} by {c.via}", _OUTCOMES[c.found], mpid=c.mpid,
                  why=c.why or None)
    flow.state.verify_attempts += 1
    return checks


def _receipt_file(flow: Flow) -> tuple[OutputFile, ...]:
    """With an output directory, the receipts also go to ``mparticle-erasure-…-receipt.json`` (through
    :mod:`connector_mparticle.files`: 0600, named from the whole request id and the subject, written under a
    hidden temporary name and renamed, under this request's lock). The erasure is done either way: a file that cannot be
    written is noted, and the receipts stay in the summary."""
    assert flow.state is not None
    if not flow.request.output_dir:
        return ()
    data = document(flow.request.request_id, flow.request_type, flow.regulation,
                    [p.receipt for p in flow.state.parts if p.receipt])
    file_stem = stem(KIND, flow.request.request_id, flow.who)
    name = f"{file_stem}-receipt.json"
    try:
        with Folder.open(flow.request.output_dir) as folder, folder.lock(file_stem) as lock:
            if not lock.acquire(flow.lock_wait(LOCK_WAIT_SECONDS)):
                flow.note("receipt file", "not written (another worker is writing it); the receipts are in the summary")
                return ()
            folder.sweep([name])
            written = folder.write(name, data)
    except MParticleError as exc:
        flow.note("receipt file", f"not written ({exc.message}); the receipts are in the summary")
        return ()
    return (OutputFile(str(folder.path_of(name)), "application/json", written.size, written.sha256,
                       "mParticle's signed acknowledgements (receipts)"),)


def _still_found(flow: Flow, still_found: list[str]) -> Result:
    assert flow.state is not None
    verification, polling = flow.settings.verification, flow.settings.polling
    if flow.state.verify_attempts >= verification.attempts:
        return flow.failed(VerificationError(
            f"mParticle reports the erasure complete, but a profile still matches {', '.join(still_found)} after "
            f"{flow.state.verify_attempts} check(s) over {verification.grace_period_seconds:g}s; new data about the "
            "subject may have arrived after the erasure (erasure does not block it), or the erasure missed a profile"))
    interval = verification.grace_period_seconds / max(1, verification.attempts - 1)
    after = flow.now + timedelta(seconds=min(max(interval, polling.min_interval_seconds), polling.max_interval_seconds))
    return flow.waiting(f"mParticle reports the erasure complete, but a profile still matches "
                        f"{', '.join(still_found)}; checking again", after=after)
