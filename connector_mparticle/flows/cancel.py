"""Cancel: withdraw a request mParticle has not started (``handle_cancel``).

``developers/dsr-api/v3`` ("Cancel an OpenDSR request"): ``DELETE /requests/{id}`` cancels a request only while
it is ``pending``, the waiting period (``guides/data-subject-requests``: 7 days for an erasure, shorter with
``skip_waiting_period``; access and portability wait for the next Monday or Thursday job), and it "does not
cancel the erasure requests to any enabled output".

Every OpenDSR request of the host request is checked first; only when each one is ``pending`` (or already
cancelled) is any cancelled, so a cancel never starts on a request that is partly running. After that window the
answer is a ``rejected`` failure that says what mParticle reports and which partners already received the
erasure; the request goes on and the host keeps its earlier state.

A result says "cancelled" only from mParticle's own status: after a 2xx to ``DELETE`` the status is read back,
and only ``cancelled`` there counts (a 2xx from something else, or an unverified cancellation answer under
``signatures: strict``, is not proof). A part whose status already says ``cancelled`` is still sent the
``DELETE``: mParticle's refusal plus its status confirm it, and a status that lied leaves a pending request
cancelled for real. A request split in parts (an mpid is its own OpenDSR request) is cancelled part by part;
when a later part cannot be cancelled after an earlier one was, the result (a cancel is never ``pending``) is a
``failed`` one, outcome ``partly_cancelled``, that names both; the host keeps its state, so the main flow follows
the part that goes on (``Flow._advance``) and a second cancel with the state finishes the job.

A 404 to a status check is never read as "nothing was submitted" when the state holds the request: within
mParticle's retention it is a ``retry_later`` failure that cancels nothing (the main flow's rule,
``Flow._unknown_to_mparticle``); after it, a ``rejected`` one. Without a state the OpenDSR ids are
derived from the request's identifiers, so mParticle's 404 means only "mParticle holds no request under these
identifiers": a ``failed`` result of class ``configuration`` that says so, withdraws nothing, and tells the host
to cancel with the state or with exactly the identifiers it submitted with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import describe
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import (
    ConfigurationError,
    MParticleError,
    NotFoundError,
    RejectedError,
    RetryLaterError,
    failed_result,
    failure_info,
)
from connector_mparticle.flows.common import RETENTION, Flow
from connector_mparticle.flows.state import Part, RequestState
from connector_mparticle.flows.suppression import unmark
from dsr_framework.models import DsrRequest, ErrorClass, FailureInfo, Result, format_time, utcnow

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
    run = _Cancel(flow, held=flow.state is not None)
    try:
        return run.go()
    except MParticleError as exc:
        return run.stopped(exc)


@dataclass
class _Cancel:
    """One cancel call: what mParticle holds (``held``: the state says it acknowledged it) and what it cancelled."""

    flow: Flow
    held: bool
    done: list[Part] = field(default_factory=list)  #: parts mParticle's status shows cancelled (read back)
    receipts: list[dict[str, Any]] = field(default_factory=list)  #: the answers to this call's DELETEs

    def parts(self) -> list[Part]:
        """The request's parts: from the state, or one per OpenDSR request it would have made (found by id)."""
        if self.flow.state is None:
            self.flow.state = RequestState([Part(g.subject_request_id, g.label) for g in self.flow.groups],
                                           submitted_at=format_time(self.flow.now))
        return self.flow.state.parts

    def statuses(self) -> dict[str, DsrStatus | None]:
        """mParticle's status of each part now (None: mParticle answered 404 for an id derived without state)."""
        found: dict[str, DsrStatus | None] = {}
        self.flow.doing = "checking its status"
        for part in self.parts():
            try:
                found[part.subject_request_id] = self.flow.check(part)
            except NotFoundError:
                if self.held:
                    raise  # the state holds mParticle's acknowledgement: not its verdict (stopped)
                self.flow.note("check status", "not found: mParticle holds no request under this id",
                               subject_request_id=part.subject_request_id)
                found[part.subject_request_id] = None
        return found

    def go(self) -> Result:
        found = self.statuses()
        known = {sid: s for sid, s in found.items() if s is not None}
        if not known:
            return self.unknown(list(found))
        late = {sid: s for sid, s in known.items() if s.request_status not in _CANCELLABLE}
        if late:
            return self.too_late(late, known)
        self.cancel_each(known)
        return self.cancelled(known, [sid for sid in found if sid not in known])

    def cancel_each(self, known: dict[str, DsrStatus]) -> None:
        """Cancel the parts mParticle holds, one by one, keeping those done (read back) for a partial result."""
        self.flow.doing = "cancelling it"
        for part in self.parts():
            if part.subject_request_id in known:
                self.delete(part)
                self.done.append(part)

    def unknown(self, ids: list[str]) -> Result:
        """No part known to mParticle: with a state that holds none, nothing was sent; without one, the derived
        ids are unknown, which says nothing about a request submitted under other identifiers."""
        flow = self.flow
        if self.held:  # a state with no part: the request never reached mParticle
            return flow.result("completed", f"the state shows that nothing was submitted to mParticle for this "
                               f"{flow.request_type} request, so there is nothing to cancel",
                               summary={"cancel": {"outcome": "not_submitted"}})
        flow.note("cancel", "not found: nothing cancelled", subject_request_ids=ids)
        return flow.failed(ConfigurationError(
            f"mParticle holds no {flow.request_type} request under the ids derived from this request's identifiers "
            f"({', '.join(ids)}; HTTP 404): nothing was cancelled. If this request was submitted, cancel it with the "
            "state its last call returned, or with exactly the identifiers it was submitted with (the OpenDSR "
            "request id is derived from them)", api="dsr", status=404))

    def delete(self, part: Part) -> None:
        """Cancel one part, and read its status back: only mParticle's ``cancelled`` there is proof."""
        flow = self.flow
        try:
            answer = flow.conn.dsr.cancel(part.subject_request_id)
        except RejectedError as exc:
            if isinstance(exc, NotFoundError) or flow.check(part).request_status != "cancelled":
                raise RejectedError(f"mParticle refused to cancel request {part.subject_request_id}, which is now "
                                    f"{part.last_status} ({exc.message}); only pending requests can be cancelled",
                                    api="dsr", status=exc.status) from None
            flow.note("cancel", "refused, and mParticle's status shows it cancelled already (an earlier cancel "
                      "reached mParticle)", subject_request_id=part.subject_request_id)
            return
        evidence = flow.signed.cancellation(answer.answer, part)
        flow.note("cancel", f"HTTP {answer.status}; {describe(evidence)}", subject_request_id=part.subject_request_id,
                  receipt=evidence)
        self.confirm(part, answer.status, evidence)

    def confirm(self, part: Part, http: int, evidence: dict[str, Any]) -> None:
        flow = self.flow
        if flow.signed.strict and not evidence["verified"]:
            raise RejectedError(f"the answer to the cancel of request {part.subject_request_id} is "
                                f"{describe(evidence)}; with signatures: strict it is not taken as proof that the "
                                "request was cancelled", api="dsr", status=http)
        now = flow.check(part).request_status
        if now != "cancelled":
            raise RejectedError(f"the cancel of request {part.subject_request_id} was answered HTTP {http}, but "
                                f"mParticle's status read back just after says {now}: it was not cancelled",
                                api="dsr", status=http)
        self.receipts.append(evidence)

    def cancelled(self, statuses: dict[str, DsrStatus], unknown: list[str]) -> Result:
        flow = self.flow
        partners = _partners(flow, statuses)
        sent = _sent(partners)
        message = (f"cancelled in mParticle: the {flow.request_type} request ({', '.join(statuses)}) was still "
                   "pending and mParticle's status now shows it cancelled; it will not be carried out")
        if unknown:
            message += (f"; mParticle holds no request under {', '.join(unknown)} (HTTP 404), so nothing was "
                        "cancelled there")
        if sent:  # developers/dsr-api/v3: a cancel "does not cancel the erasure requests to any enabled output"
            message += f"; mParticle does not recall what it already forwarded to {', '.join(sent)}"
        unverified = [r for r in self.receipts if not r["verified"]]
        if unverified:
            message += f"; mParticle's answer to the cancel was {describe(unverified[0])} (its status is the proof)"
        summary: dict[str, Any] = {"cancel": {"outcome": "cancelled", "cancelled_at": format_time(utcnow()),
                                              "mparticle_status": "cancelled", "cancellation_receipts": self.receipts,
                                              "not_found": unknown},
                                   "partners": partners, "partners_sent": sent}
        if flow.request_type == "erasure" and flow.settings.erasure.suppress_while_waiting:
            summary["suppression"] = unmark(flow)
            if summary["suppression"]["removed"]:
                message += f"; the user attribute {summary['suppression']['attribute']} is removed"
        return flow.result("completed", message, summary=summary)

    def too_late(self, late: dict[str, DsrStatus], statuses: dict[str, DsrStatus]) -> Result:
        """The refusal after the waiting period: what mParticle reports, and the partners already sent the erasure."""
        flow = self.flow
        where = "; ".join(f"{sid} is {s.request_status}" for sid, s in late.items())
        self.done = [p for p in self.parts() if p.subject_request_id in statuses
                     and statuses[p.subject_request_id].request_status == "cancelled"]
        partners = _partners(flow, statuses)
        sent = _sent(partners)
        why = f"mParticle cancels a request only while it is pending (its waiting period), and {where}"
        if flow.request_type == "erasure":
            why += _forwarded(statuses, partners, sent)
        flow.note("cancel", "refused: not pending", statuses={sid: s.request_status for sid, s in late.items()})
        if self.done:
            flow.extra_summary.update(partners=partners, partners_sent=sent)
            return self.partly(why, "rejected")
        message = f"too late to cancel: {why}; nothing was cancelled and the {flow.request_type} request goes on"
        return flow.result("failed", message, error=FailureInfo("rejected", message), summary={
            "cancel": {"outcome": "too_late", "mparticle_status": {sid: s.request_status for sid, s in late.items()}},
            "partners": partners, "partners_sent": sent})

    def partly(self, why: str, kind: ErrorClass) -> Result:
        """Some parts cancelled, others not: a final ``failed`` result (a cancel is never ``pending``) naming both,
        so the host keeps its state and goes on with the part that runs (or cancels again to finish the job)."""
        flow = self.flow
        assert flow.state is not None
        ids = [p.subject_request_id for p in self.done]
        left = [p for p in flow.state.parts if p.subject_request_id not in ids]
        cancelled = ", ".join(f"{p.subject_request_id} ({p.label})" for p in self.done)
        rest = ", ".join(f"{p.subject_request_id} ({p.label})" for p in left)
        flow.note("cancel", "partly cancelled", cancelled=ids, not_cancelled=[p.subject_request_id for p in left])
        message = (f"partly cancelled: mParticle's status shows {cancelled} cancelled (that part will not run); "
                   f"{rest} was not cancelled ({why}). Keep this request's state: cancel again with it to cancel "
                   f"the rest while mParticle still holds it pending, or let {rest} run to its end")
        return flow.result("failed", message, error=FailureInfo(kind, message), summary={"cancel": {
            "outcome": "partly_cancelled", "cancelled": ids, "not_cancelled": [p.subject_request_id for p in left],
            "cancellation_receipts": self.receipts}})

    def stopped(self, exc: MParticleError) -> Result:
        """An error mid-cancel: partly cancelled says so; a 404 for a request the state holds is not mParticle's
        verdict within its retention; otherwise nothing was cancelled and the cancel failed."""
        if self.done:
            return self.partly(failure_info(exc, self.flow.conn.redactor).message, exc.error_class)
        checking = self.flow.doing == "checking its status"
        if isinstance(exc, NotFoundError) and exc.api == "dsr" and self.held and checking:
            return self.flow.failed(self.unknown_held(exc))
        return self.flow.failed(exc)

    def unknown_held(self, exc: NotFoundError) -> MParticleError:
        """A 404 for a request the state says mParticle acknowledged (the main flow's rule, ``Flow``): mParticle's
        verdict only after its retention; before that, something else answered, and nothing was cancelled."""
        flow = self.flow
        assert flow.state is not None
        since = flow.state.sent_at(flow.request.submitted_at)
        if utcnow() - since > RETENTION:
            ids = ", ".join(p.subject_request_id for p in flow.state.parts)
            return RejectedError(f"mParticle no longer knows request {ids} (it keeps requests for up to a year): "
                                 "nothing was cancelled", api="dsr", status=404)
        return RetryLaterError(
            f"nothing was cancelled: the DSR API answered that it does not know a request mParticle acknowledged on "
            f"{format_time(since)[:10]} and keeps for a year (HTTP 404): the DSR credentials or dsr.base_url may "
            "point at another workspace, or something other than mParticle answered; the request goes on, and "
            "cancelling again with its state once that is fixed withdraws it", api="dsr", status=404)


def _partners(flow: Flow, statuses: dict[str, DsrStatus]) -> list[dict[str, Any]]:
    """Each part's forwarding entries: from the status now, else from what the state last recorded."""
    assert flow.state is not None
    found: list[dict[str, Any]] = []
    for part in flow.state.parts:
        status = statuses.get(part.subject_request_id)
        entries = [p.to_dict() for p in status.partners] if status is not None and status.partners else \
            list(part.partners or [])
        found += [{"subject_request_id": part.subject_request_id, **p} for p in entries]
    return found


def _sent(partners: list[dict[str, Any]]) -> list[str]:
    return sorted({str(p["name"] or p["domain"]) for p in partners if p["status"] == "sent"})


def _forwarded(statuses: dict[str, DsrStatus], partners: list[dict[str, Any]], sent: list[str]) -> str:
    """What the refusal says about partners: only what mParticle's statuses (now, or as the state recorded them)
    show; "none has received it" only from current entries that all say so."""
    if sent:
        return f"; partners that already received the erasure: {', '.join(sent)}"
    if any(p["status"] == "unreadable" for p in partners):
        return "; mParticle's partner entries could not all be read, so some partner may have received it"
    if partners and all(s.partners for s in statuses.values()):
        return "; mParticle's status shows no partner has received the erasure yet"
    if partners:
        names = ", ".join(sorted({str(p["name"] or p["domain"]) for p in partners}))
        return (f"; mParticle's status now lists no partner; those recorded earlier ({names}) had not received it "
                "then, and this connector cannot say whether any has since")
    return "; mParticle's status lists no partner for it, so this connector cannot say whether any received it"
