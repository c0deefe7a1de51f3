"""Cancel: withdraw a request mParticle has not started (``handle_cancel``).

``developers/dsr-api/v3`` ("Cancel an OpenDSR request"): ``DELETE /requests/{id}`` cancels a request only while
it is ``pending``, the waiting period (``guides/data-subject-requests``: 7 days for an erasure, shorter with
``skip_waiting_period``; access and portability wait for the next Monday or Thursday job), and it "does not
cancel the erasure requests to any enabled output".

One call, final either way. Every OpenDSR request of the host request is checked first; only when each one is
``pending`` (or already cancelled) is any cancelled, so a subject is never left half-erased by a cancel. After
that window the answer is a ``rejected`` failure that says what mParticle reports and which partners already
received the erasure; the request goes on and the host keeps its earlier state. A cancel that reaches mParticle
twice (a lost answer, a retry) is recognised by the status: a request already ``cancelled`` is a success.
"""

from __future__ import annotations

from typing import Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import describe
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import MParticleError, NotFoundError, RejectedError, failed_result
from connector_mparticle.flows.common import Flow
from connector_mparticle.flows.state import Part, RequestState
from connector_mparticle.flows.suppression import unmark
from dsr_framework.models import DsrRequest, FailureInfo, Result, format_time, utcnow

__all__ = ["FLOW_KIND", "cancel"]

#: The OpenDSR ``subject_request_type`` each cancellable host request type was submitted as.
FLOW_KIND = {"access": "access", "portability": "portability", "deletion": "erasure"}
_CANCELLABLE = ("pending", "cancelled")


def cancel(conn: MParticleConnector, request: DsrRequest, state: Any) -> Result:
    """Withdraw ``request`` in mParticle if every part of it is still pending (see the module docstring)."""
    kind = FLOW_KIND.get(request.type)
    if kind is None:
        return failed_result(request, RejectedError(
            f"a {request.type} request is carried out within its call; there is nothing pending to cancel"),
            conn.redactor)
    try:
        flow = Flow(conn, request, state, kind)
    except MParticleError as exc:
        return failed_result(request, exc, conn.redactor)
    try:
        return _cancel(flow)
    except MParticleError as exc:
        return flow.failed(exc)


def _parts(flow: Flow) -> list[Part]:
    """The request's parts: from the state, or one per OpenDSR request it would have made (found by id)."""
    if flow.state is None:
        flow.state = RequestState([Part(g.subject_request_id, g.label) for g in flow.groups],
                                  submitted_at=format_time(flow.now))
    return flow.state.parts


def _statuses(flow: Flow) -> dict[str, DsrStatus | None]:
    """mParticle's status of each part now (None: mParticle never received it)."""
    found: dict[str, DsrStatus | None] = {}
    for part in _parts(flow):
        try:
            found[part.subject_request_id] = flow.check(part)
        except NotFoundError:
            flow.note("check status", "not found: never submitted", subject_request_id=part.subject_request_id)
            found[part.subject_request_id] = None
    return found


def _cancel(flow: Flow) -> Result:
    known = {sid: s for sid, s in _statuses(flow).items() if s is not None}
    if not known:
        return flow.result("completed", f"nothing was submitted to mParticle for this {flow.request_type} request, "
                           "so there is nothing to cancel; the request is withdrawn",
                           summary={"cancel": {"outcome": "not_submitted"}})
    late = {sid: s for sid, s in known.items() if s.request_status not in _CANCELLABLE}
    if late:
        return _too_late(flow, late, known)
    receipts = [_delete(flow, part) for part in _pending(flow, known)]
    return _cancelled(flow, known, [r for r in receipts if r is not None])


def _pending(flow: Flow, known: dict[str, DsrStatus]) -> list[Part]:
    return [p for p in _parts(flow) if p.subject_request_id in known
            and known[p.subject_request_id].request_status == "pending"]


def _delete(flow: Flow, part: Part) -> dict[str, Any] | None:
    """Cancel one pending part; its receipt (None when mParticle had cancelled it already: a repeated cancel)."""
    try:
        answer = flow.conn.dsr.cancel(part.subject_request_id)
    except RejectedError as exc:
        if isinstance(exc, NotFoundError) or flow.check(part).request_status != "cancelled":
            raise RejectedError(f"mParticle refused to cancel request {part.subject_request_id}, which is now "
                                f"{part.last_status} ({exc.message}); only pending requests can be cancelled",
                                api="dsr", status=exc.status) from None
        flow.note("cancel", "already cancelled (an earlier cancel reached mParticle)",
                  subject_request_id=part.subject_request_id)
        return None
    evidence = flow.signed.cancellation(answer.answer, part)
    part.last_status = "cancelled"
    flow.note("cancel", f"HTTP {answer.status}; {describe(evidence)}", subject_request_id=part.subject_request_id,
              receipt=evidence)
    return evidence


def _partners(statuses: dict[str, DsrStatus]) -> list[dict[str, Any]]:
    return [{"subject_request_id": sid, **p.to_dict()} for sid, s in statuses.items() for p in s.partners]


def _cancelled(flow: Flow, statuses: dict[str, DsrStatus], receipts: list[dict[str, Any]]) -> Result:
    ids = ", ".join(statuses)
    partners = _partners(statuses)
    sent = sorted({str(p["name"] or p["domain"]) for p in partners if p["status"] == "sent"})
    message = (f"cancelled in mParticle: the {flow.request_type} request ({ids}) was still pending and mParticle "
               "now shows it cancelled; it will not be carried out")
    if sent:  # developers/dsr-api/v3: a cancel "does not cancel the erasure requests to any enabled output"
        message += f"; mParticle does not recall what it already forwarded to {', '.join(sent)}"
    summary: dict[str, Any] = {"cancel": {"outcome": "cancelled", "cancelled_at": format_time(utcnow()),
                                          "mparticle_status": "cancelled", "cancellation_receipts": receipts},
                               "partners": partners, "partners_sent": sent}
    if flow.request_type == "erasure" and flow.settings.erasure.suppress_while_waiting:
        summary["suppression"] = unmark(flow)
        if summary["suppression"]["removed"]:
            message += f"; the user attribute {summary['suppression']['attribute']} is removed"
    return flow.result("completed", message, summary=summary)


def _too_late(flow: Flow, late: dict[str, DsrStatus], statuses: dict[str, DsrStatus]) -> Result:
    """The refusal after the waiting period: what mParticle reports, and the partners already sent the erasure."""
    where = "; ".join(f"{sid} is {s.request_status}" for sid, s in late.items())
    partners = _partners(statuses)
    sent = sorted({str(p["name"] or p["domain"]) for p in partners if p["status"] == "sent"})
    message = (f"too late to cancel: mParticle cancels a request only while it is pending (its waiting period), "
               f"and {where}; nothing was cancelled and the {flow.request_type} request goes on")
    if flow.request_type == "erasure":
        message += (f"; partners that already received the erasure: {', '.join(sent)}" if sent else
                    "; no partner has received the erasure yet")
    error = FailureInfo("rejected", message)
    flow.note("cancel", "refused: not pending", statuses={sid: s.request_status for sid, s in late.items()})
    return flow.result("failed", message, error=error, summary={
        "cancel": {"outcome": "too_late", "mparticle_status": {sid: s.request_status for sid, s in late.items()}},
        "partners": partners, "partners_sent": sent})
