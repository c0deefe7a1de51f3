"""One call's view of an asynchronous request and the results its steps end with (the steps themselves:
:mod:`connector_mparticle.flows.common`).

Every result passes through the redactor, whatever a server sent: the message, the audit trail and the summary;
a pending result carries the signed state, scrubbed whole before it is signed (so that it leaves clean and still
verifies when it comes back). Once mParticle holds a part of the request, the words start with what mParticle did
(:meth:`StepResults.mparticle_did`); something a person must fix names the fix in ``action_required``
(:meth:`StepResults.needs_person`), and a passing condition is checked again soon (:meth:`StepResults.retry_soon`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from connector_mparticle.api.receipts import describe
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import (
    ConflictError,
    MParticleError,
    NotFoundError,
    OutOfTimeError,
    RetryLaterError,
    UnsafeResponseError,
    failure_info,
)
from connector_mparticle.files import NoSpaceError
from connector_mparticle.flows.schedule import next_check
from connector_mparticle.flows.signed import SignedAnswers
from connector_mparticle.flows.state import RequestState, state_key
from connector_mparticle.flows.subject import DsrGroup, Subject, dsr_body, regulation, subject_digest, submission_terms
from connector_mparticle.http.deadline import current
from connector_mparticle.http.transport import encode_json
from dsr_framework.models import (
    ActionRequired,
    AuditEvent,
    DsrRequest,
    ErrorClass,
    FailureInfo,
    OutputFile,
    Result,
    Status,
    Verification,
    format_time,
    utcnow,
)

__all__ = ["StepResults"]


class StepResults:
    """One call's view of one asynchronous host request (``access`` or ``erasure``): its subject, its state and
    audit trail, and the results a step ends with. :class:`~connector_mparticle.flows.common.Flow` adds the steps."""

    def __init__(self, conn: MParticleConnector, request: DsrRequest, state: Any, request_type: str) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.request = request
        self.request_type = request_type
        self.regulation = regulation(request, conn.settings)
        self.subject = Subject.of(request, conn.settings)
        self.groups = self.subject.groups(request, conn.settings, request_type)
        self.who = subject_digest(request)  #: binds the output files to the subject (``files.stem``)
        self._key = state_key(conn.settings.dsr_auth.secrets())
        self.state = RequestState.from_dict(state, [g.subject_request_id for g in self.groups], self._key)
        self.trail = self.state.audit_events() if self.state else []
        self.signed = SignedAnswers(conn, self.note, self._sent)
        self.now = utcnow()
        self.doing = f"submitting the {request_type} request"  #: the step under way, for messages
        #: what those steps add to this call's summary
        self.extra_summary: dict[str, Any] = {}
        #: this call ends without a step going through (:meth:`retry_soon`, :meth:`needs_person`)
        self._stalled = False
        if state is not None and self.state is None:
            self.note("resume", "the state passed in was not written by this connector for this request (or the "
                      "DSR credentials changed): ignored, resuming from mParticle's own record")

    def _sent(self, subject_request_id: str) -> bytes:
        """The exact bytes of the submission of one of this request's OpenDSR requests: its identities from the
        request (they name the subject, whose digest is part of the id), everything else from the terms kept when
        it was sent (today's, with no skip, for a part found again after "already exists")."""
        group = next(g for g in self.groups if g.subject_request_id == subject_request_id)
        part = self.state.part(subject_request_id) if self.state is not None else None
        terms = part.terms if part is not None and part.terms is not None else {
            **submission_terms(self.request, self.settings, self.request_type, self.now), "skip_waiting": False}
        return encode_json(dsr_body(self.request, self.request_type, group, terms))

    @property
    def subject_ids(self) -> list[str]:
        return [g.subject_request_id for g in self.groups]

    def lock_wait(self, limit: float) -> float:
        """How long this call may wait for a lock: ``limit``, less if the call's deadline is nearer."""
        deadline = current()
        return min(limit, max(0.0, deadline.remaining() - 1)) if deadline else limit

    @property
    def key(self) -> bytes:
        """The HMAC key of this request's signed state (and of the delivery records that reuse it)."""
        return self._key

    # -- results ----------------------------------------------------------------------------------------

    def note(self, action: str, outcome: str, **detail: Any) -> None:
        self.trail.append(AuditEvent(action, outcome, {k: v for k, v in detail.items() if v is not None}))

    def result(self, status: Status, message: str, *, error: FailureInfo | None = None,
               next_at: datetime | None = None, files: tuple[OutputFile, ...] = (),
               summary: dict[str, Any] | None = None, verification: Verification | None = None,
               action: ActionRequired | None = None) -> Result:
        """The call's result: trail, summary and message redacted; with the signed state when ``pending``."""
        redactor = self.conn.redactor
        if status == "completed":
            self._note_receipts()  # the evidence, at the end of the trail too
        trail = tuple(AuditEvent(redactor.scrub(e.action), redactor(e.outcome), redactor.scrub_json(e.detail), e.at)
                      for e in self.trail)
        self._settle_counters()
        state = self._signed_state(trail) if status == "pending" else None
        if status != "failed" and self.state is not None and (warning := self.signed.warning(self.state.parts)):
            message = f"{message}; {warning}"
        if error is not None:
            error = FailureInfo(error.error_class, redactor(error.message), error.retry_after)
        if action is not None:
            action = ActionRequired(action.error_class, redactor(action.message))
        return Result(self.request.request_id, self.request.type, status, redactor(message), state=state,
                      next_check_at=next_at, error=error, audit=trail, files=files,
                      summary=redactor.scrub_json({**self._summary(), **self.extra_summary, **(summary or {})}),
                      verification=verification, action_required=action)

    def _settle_counters(self) -> None:
        if self.state is not None and not self._stalled:
            self.state.timeouts_in_a_row = 0  # a step went through: running out of time starts its count again

    def _signed_state(self, trail: tuple[AuditEvent, ...]) -> dict[str, Any]:
        """The state to hand the host with a pending result, carrying the (redacted) trail; scrubbed whole before
        it is signed, so that it leaves clean and still verifies when it comes back."""
        assert self.state is not None
        self.state.audit = [e.to_dict() for e in trail]
        return self.state.to_dict(self._key, self.conn.redactor.scrub_json)

    def _note_receipts(self) -> None:
        for part in self.state.parts if self.state is not None else []:
            self.note("receipt", describe(part.receipt) if part.receipt else "no signed answer was seen",
                      subject_request_id=part.subject_request_id, receipt=part.receipt)

    def _summary(self) -> dict[str, Any]:
        """What every result's summary says: the OpenDSR requests, the identifiers sent and the receipts."""
        base: dict[str, Any] = {"subject_request_id": self.subject_ids[0] if self.subject_ids else None,
                                "subject_request_ids": self.subject_ids, "request_type": self.request_type,
                                "regulation": self.regulation,
                                "identifiers_sent": sorted({i.kind.name for g in self.groups for i in g.identifiers})}
        if self.subject.unused:
            base["identifiers_not_used"] = dict(self.subject.unused)
        if self.state is not None:
            base["receipts"] = [p.receipt for p in self.state.parts if p.receipt is not None]
        return base

    def failed(self, exc: MParticleError, verification: Verification | None = None) -> Result:
        info = failure_info(exc, self.conn.redactor)
        self.note("stop", f"failed ({exc.error_class})", message=info.message)
        return self.result("failed", info.message, error=info, verification=verification)

    def mparticle_did(self) -> str:
        """What mParticle has done with this request, in the words every later message starts with."""
        assert self.state is not None
        noun = "erasure" if self.request_type == "erasure" else f"{self.request_type} request"
        held = [g for g in self.groups if self.state.part(g.subject_request_id) is not None]
        if len(held) < len(self.groups):
            return self._partly_held(noun, held)
        if self.state.phase == "verifying" or all(p.done for p in self.state.parts):
            return f"mParticle completed the {noun}"
        return f"mParticle accepted the {noun} (it says {self.state.last_status or 'submitted'})"

    def _partly_held(self, noun: str, held: list[DsrGroup]) -> str:
        """An mpid is its own OpenDSR request: mParticle may hold one part of the request and not yet the other,
        and the words must not say nothing was submitted while one part is live."""
        if not held:
            return f"mParticle holds this {noun}"
        names = ", ".join(sorted({i.kind.name for g in held for i in g.identifiers}))
        missing = ", ".join(sorted({i.kind.name for g in self.groups if g not in held for i in g.identifiers}))
        return (f"mParticle accepted the {noun} for {names} (request {held[0].subject_request_id}), not yet the "
                f"one for {missing}")

    def needs_person(self, exc: MParticleError, message: str | None = None) -> Result:
        """Pending, with ``action_required``: mParticle holds the request, and ``exc`` is something a person must
        fix (credentials, the trust store, the output folder, a setting, an answer that is not mParticle's); the
        step under way is tried again when the host calls after the fix (or at the next check)."""
        self._stalled = True
        why = message or exc.message
        text = f"{self.mparticle_did()}; {self.doing} failed: {why}"
        kind: ErrorClass = "configuration" if isinstance(exc, (NotFoundError, UnsafeResponseError)) \
            else exc.error_class
        self.note("stop", f"waiting for a person ({kind}): {self.doing} failed", message=why)
        after = utcnow() + timedelta(seconds=self.settings.polling.min_interval_seconds)
        return self.waiting(text, after=after, action=ActionRequired(
            kind, f"{why}; once it is fixed, calling again with this state carries on with {self.doing} (nothing "
                  "is submitted twice)"))

    def waiting(self, message: str, *, after: datetime | None = None, action: ActionRequired | None = None) -> Result:
        assert self.state is not None
        expected = self.state.expected
        if after is None:
            now = utcnow()  # not self.now: the calls made since the step began take time too
            if expected is not None and now >= expected:
                self.state.overdue_checks += 1
            after = next_check(now, expected, self.state.overdue_checks, self.settings.polling.min_interval_seconds,
                               self.settings.polling.max_interval_seconds)
        return self.result("pending", message, next_at=after, action=action, summary={
            "mparticle_status": self.state.last_status,
            "expected_completion_time": format_time(expected) if expected else None,
            "status_checks": self.state.status_checks})

    def retry_soon(self, exc: RetryLaterError, why: str | None = None) -> Result:
        """Keep the request pending after a condition that is not a verdict (an outage, a malformed answer,
        the call running out of time): check again after ``Retry-After`` or the minimum interval."""
        self._stalled = True
        if isinstance(exc, OutOfTimeError) and self.state is not None and self._out_of_time_again():
            return self.needs_person(exc, (
                f"{self.state.timeouts_in_a_row} calls in a row ran out of time with no step going through in "
                f"between (the last while {self.doing}): either the step takes longer than one call may run "
                f"(timeouts.total_seconds: {self.settings.timeouts.total_seconds:g} s) for the size of what "
                "mParticle sent, and the budget should be raised, or the server stopped answering, and the network "
                "or mParticle's status should be looked at"))
        if why is None:
            why = ("this call ran out of time" if isinstance(exc, OutOfTimeError) else
                   "the output folder has no space left" if isinstance(exc, NoSpaceError) else
                   "mParticle refused it" if isinstance(exc, ConflictError) else
                   "mParticle could not be reached")
            why = f"{why} just now ({exc.message})"
        self.note("wait", f"{why}; will try again", reason=exc.message)
        after = max(exc.retry_after or self.now,
                    utcnow() + timedelta(seconds=self.settings.polling.min_interval_seconds))
        return self.waiting(f"{self.mparticle_did()}; {self.doing}: {why}; will try again", after=after)

    def _out_of_time_again(self) -> bool:
        """Count this call's running out of time: True when an earlier call ran out too and no step went through
        since. The first time, the call may have spent its time on steps that are now done, so one more call, with
        the whole budget for what is left, is worth it; a second is not (the host would call for ever)."""
        assert self.state is not None
        self.state.timeouts_in_a_row += 1
        return self.state.timeouts_in_a_row >= 2
