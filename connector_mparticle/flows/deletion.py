"""Deletion: once mParticle completes every erasure, confirm that the subject's profiles are gone.

Each identifier is checked with the API that can answer for its type (:mod:`connector_mparticle.flows.lookup`):
"gone" is mParticle saying so. A profile still found is checked again over the grace period, then the deletion
fails as ``verification``. What cannot be checked (a type no API searches, an mpid without the Profile API,
known profiles the request cannot reach without a login id) is in the result's ``verification`` (``unverified``,
with a reason code per limit: :mod:`connector_mparticle.flows.verification`), in the message and the summary;
with ``verification.unverifiable: fail`` it fails the deletion as ``verification`` instead. A check that cannot
run (another API's credentials, the trust store) does not end the request: mParticle completed the erasure, so
it stays pending, saying so, until the check can run (:meth:`~connector_mparticle.flows.common.Flow.needs_person`).

mParticle's signed acknowledgements (:mod:`connector_mparticle.api.receipts`) are in the result's summary and audit
trail, and in ``mparticle-erasure-…-receipt.json`` when the request has an output directory (a receipt that
cannot be written there keeps the request pending until it can: the folder was asked for).
"""

from __future__ import annotations

from datetime import timedelta

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import document
from connector_mparticle.errors import VerificationError
from connector_mparticle.files import Folder, stem
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.lookup import Check, check
from connector_mparticle.flows.verification import check_reasons, reach_reasons
from connector_mparticle.flows.writing import write_checked
from dsr_framework.models import OutputFile, Result, Verification

__all__ = ["KIND", "finish_deletion"]

KIND = "mparticle-erasure"  #: the start of every deletion file name
LOCK_WAIT_SECONDS = 5.0  #: the receipt is written in an instant; a worker still holding the lock is stuck


def finish_deletion(flow: Flow, statuses: dict[str, DsrStatus]) -> Result:
    """Confirm the erasure; re-check a profile still found over the grace period."""
    assert flow.state is not None
    flow.doing = "verifying it"
    checks = _verify(flow)
    still_found = sorted({c.identifier.kind.name for c in checks if c.found})
    if still_found:
        return _still_found(flow, still_found)
    reasons = reach_reasons(flow.conn, flow.subject, flow.state.found_before)
    verification = Verification.of([*check_reasons(checks), *reasons])
    unverifiable = [r.message for r in verification.reasons]
    if unverifiable and flow.settings.verification.unverifiable == "fail":
        return flow.failed(VerificationError(
            "mParticle completed the erasure, but it cannot be fully verified: " + "; ".join(unverifiable)),
            verification)
    verified = sorted(c.identifier.kind.name for c in checks if c.found is False)
    summary = {"verified": not unverifiable, "verified_identifiers": verified, "not_verifiable": unverifiable,
               "verification_searches": flow.state.verify_attempts}
    files = _receipt_file(flow)
    return flow.result("completed", _verified_message(verified, unverifiable), summary=summary, files=files,
                       verification=verification)


def _verified_message(verified: list[str], unverifiable: list[str]) -> str:
    found = f"checks by {', '.join(verified)} find no profile" if verified else "nothing could be checked"
    if unverifiable:
        return f"mParticle completed the erasure, but it is not verified: {'; '.join(unverifiable)} ({found})"
    return f"mParticle completed the erasure, and {found}"


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
    hidden temporary name and renamed, under this request's lock). A file that cannot be written raises (the
    request stays pending until it can: the host asked for it); one another worker is writing is left to that
    worker."""
    assert flow.state is not None
    if not flow.request.output_dir:
        return ()
    flow.doing = f"writing its receipt into {flow.request.output_dir}"
    data = document(flow.request.request_id, flow.request_type, flow.regulation,
                    [p.receipt for p in flow.state.parts if p.receipt])
    file_stem = stem(KIND, flow.request.request_id, flow.who)
    name = f"{file_stem}-receipt.json"
    with Folder.open(flow.request.output_dir) as folder, folder.lock(file_stem) as lock:
        if not lock.acquire(flow.lock_wait(LOCK_WAIT_SECONDS)):
            flow.note("receipt file", "not written (another worker is writing it); the receipts are in the summary")
            return ()
        folder.sweep([name])
        written = write_checked(flow.conn.redactor, folder, name, data, "the receipt")
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
