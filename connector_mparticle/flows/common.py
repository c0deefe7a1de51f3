"""The lifecycle shared by access and deletion: submit each OpenDSR request (or find the earlier submission),
check their status, and return ``pending`` with the state and the next check time until mParticle has
completed them all.

Every call is one bounded step. Every failure becomes a classified result. **Remote truth is kept apart from
local trouble**: until mParticle holds a part of the request, a failure ends it (``failed``: nothing is in
mParticle). Once it has accepted one, only mParticle's own verdicts end it (a ``cancelled`` status, a results
link that expired, a request older than mParticle keeps them, and the policies the configuration asks for:
``signatures: strict``, ``verification.unverifiable: fail``). Anything else keeps it ``pending`` with its
state, the message saying first what mParticle did: a condition that passes (an outage, a malformed answer,
the call running out of time) is tried again at the next check; one a person must fix (credentials of another
API, the trust store, the output folder, a refused results link, an answer no real mParticle gives for a
request it acknowledged) also names the fix in ``action_required``, and calling again after it carries on
with the step that stopped (:meth:`Flow.needs_person`). Everything returned passes through the redactor,
whatever a server sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from connector_mparticle.api.opendsr import DsrStatus
from connector_mparticle.api.receipts import describe
from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    MParticleError,
    NotFoundError,
    OutOfTimeError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
    UnsignedAnswerError,
    VerificationError,
    failure_info,
)
from connector_mparticle.files import Folder, NoSpaceError
from connector_mparticle.flows.deadlines import skip_waiting
from connector_mparticle.flows.lookup import reached
from connector_mparticle.flows.schedule import next_check
from connector_mparticle.flows.signed import NotYetVerified, SignedAnswers
from connector_mparticle.flows.state import Part, RequestState, state_key
from connector_mparticle.flows.subject import DsrGroup, Subject, dsr_body, regulation, subject_digest
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

__all__ = ["Flow"]

Finish = Callable[["Flow", dict[str, DsrStatus]], Result]
#: How long mParticle keeps DSR records (guides/data-subject-requests): a 404 for a request it acknowledged
#: within this time is not its verdict.
RETENTION = timedelta(days=365)
#: Errors that end a request mParticle already holds: the policies the configuration chose (an expired results
#: link, mParticle's other verdict, ends an access where it is met: flows/access.py).
FINAL_AFTER_ACCEPTANCE = (UnsignedAnswerError, VerificationError)


class Flow:
    """One call's work on one asynchronous host request (``access`` or ``erasure``)."""

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
        #: this call ends without a step going through (:meth:`retry_soon`, :meth:`needs_person`)
        self._stalled = False
        self.now = utcnow()
        self.doing = f"submitting the {request_type} request"  #: the step under way, for messages
        #: what runs right after this call submitted the request (suppression: :mod:`.suppression`)
        self.after_submit: list[Callable[[Flow], None]] = []
        #: what those steps add to this call's summary
        self.extra_summary: dict[str, Any] = {}
        if state is not None and self.state is None:
            self.note("resume", "the state passed in was not written by this connector for this request (or the "
                      "DSR credentials changed): ignored, resuming from mParticle's own record")

    def _sent(self, subject_request_id: str) -> bytes:
        """The exact bytes of the submission of one of this request's OpenDSR requests (deterministic)."""
        group = next(g for g in self.groups if g.subject_request_id == subject_request_id)
        part = self.state.part(subject_request_id) if self.state is not None else None
        return encode_json(dsr_body(self.request, self.settings, self.request_type, group,
                                    part is not None and part.skip_waiting))

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
        if self.state is not None and not self._stalled:
            self.state.timeouts_in_a_row = 0  # a step went through: running out of time starts its count again
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
                f"between: a step takes longer than one call may run (timeouts.total_seconds: "
                f"{self.settings.timeouts.total_seconds:g} s), for the size of what mParticle sent or how slowly it "
                "answers; raise timeouts.total_seconds"))
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

    # -- steps ------------------------------------------------------------------------------------------

    def submit(self, group: DsrGroup) -> Part:
        """Submit ``group``'s OpenDSR request, or find the earlier submission."""
        skip = self.request_type == "erasure" and skip_waiting(self.request, self.settings, utcnow())
        body = dsr_body(self.request, self.settings, self.request_type, group, skip)
        what = f"submit {self.request_type} request" + (" (mpid alone)" if group.label == "mpid" else "")
        try:
            submitted = self.conn.dsr.submit(body)
        except RejectedError as exc:
            if exc.status != 400 or not self._exists(exc, group.subject_request_id):
                raise
            self.note(what, "already exists: resuming the earlier submission",
                      subject_request_id=group.subject_request_id)
            return Part(group.subject_request_id, group.label)
        expected = format_time(submitted.expected_completion_time) if submitted.expected_completion_time else None
        evidence = self.signed.acknowledgement(submitted.answer, group.subject_request_id, group.label,
                                               encode_json(body))
        self.note(what, f"HTTP {submitted.status}; acknowledgement {describe(evidence)}",
                  subject_request_id=group.subject_request_id, group_id=self.request.request_id,
                  regulation=self.regulation, identities=sorted(i.kind.name for i in group.identifiers),
                  expected_completion_time=expected, attempts=submitted.attempts, receipt=evidence)
        return Part(group.subject_request_id, group.label, "pending", expected, evidence, skip_waiting=skip)

    def _exists(self, refusal: RejectedError, subject_request_id: str) -> bool:
        """After a 400 to a submission: does mParticle already have our request? ("Subject request already
        exists" says so, but the lookup also covers a reworded or unreadable error body.)"""
        if isinstance(refusal, AlreadyExistsError):
            return True
        try:
            self.conn.dsr.status(subject_request_id)
        except NotFoundError:
            return False
        return True

    def check(self, part: Part) -> DsrStatus:
        assert self.state is not None
        status = self.conn.dsr.status(part.subject_request_id)
        self.signed.status(part, status)
        self.state.status_checks += 1
        part.last_status = status.request_status
        if status.partners:
            part.partners = [p.to_dict() for p in status.partners]
        if status.expected_completion_time is not None:
            part.expected_completion_time = format_time(status.expected_completion_time)
        self.note("check status", status.request_status, subject_request_id=part.subject_request_id,
                  expected_completion_time=part.expected_completion_time)
        return status

    def _submit_missing(self) -> bool:
        """Submit every group the state does not hold yet; True when any was new."""
        if self.state is None:
            self.state = RequestState([], submitted_at=format_time(self.now))
            self._search_before()
        new = False
        for group in self.groups:
            if self.state.part(group.subject_request_id) is None:
                part = self._submit_part(group)
                new = new or part.last_status == "pending"
                if self.signed.strict and not (part.receipt and part.receipt["verified"]):
                    break  # strict: nothing further is sent until this answer is verified (SignedAnswers.gate)
        return new

    def _submit_part(self, group: DsrGroup) -> Part:
        """Submit one group and keep its part in the state."""
        assert self.state is not None
        self.doing = f"submitting the {self.request_type} request" + (
            " for the mpid (sent alone, as OpenDSR requires)" if group.label == "mpid" else "")
        part = self.submit(group)
        self.state.parts.append(part)
        if part.last_status is None and not self.state.found_before:
            self.state.found_before = None  # an earlier submission may have run already: not a baseline
        return part

    def _search_before(self) -> None:
        """Before an erasure is first submitted: what it can act on (:func:`~connector_mparticle.flows.lookup.reached`:
        does a search by the request's login and immutable ids find a profile?), for the verification to weigh."""
        assert self.state is not None
        if self.request_type != "erasure":
            return
        try:
            self.state.found_before = reached(self.conn, self.subject)
        except MParticleError as exc:  # the erasure is not held up for its baseline: its verification says so
            self.state.found_before = None
            self.note("search before the erasure", f"could not run ({exc.message}); the erasure is sent anyway")
            return
        if self.state.found_before is not None:
            self.note("search before the erasure", "found a profile" if self.state.found_before else "no profile found")

    def _advance(self, finish: Finish) -> Result:
        assert self.state is not None
        if self.state.phase == "verifying":
            return finish(self, {})
        self.doing = "checking its status"
        statuses = {p.subject_request_id: self.check(p) for p in self.state.parts if not p.done}
        if any(s.request_status == "cancelled" for s in statuses.values()):
            return self._cancelled(statuses)
        if not all(p.done for p in self.state.parts):
            return self.waiting(f"mParticle reports the {self.request_type} request {self.state.last_status}")
        if self.request_type == "erasure":
            self.state.phase = "verifying"  # a retry resumes at verification, without asking mParticle again
        return finish(self, statuses)

    def _cancelled(self, statuses: dict[str, DsrStatus]) -> Result:
        """Parts mParticle shows cancelled. A split request may be cancelled in part (``flows/cancel.py``): the
        part that goes on is followed to its end, and the final word names both."""
        assert self.state is not None
        cancelled = [sid for sid, s in statuses.items() if s.request_status == "cancelled"]
        running = [p for p in self.state.parts if p.subject_request_id not in cancelled and not p.done]
        if running:
            return self.waiting(f"mParticle shows {', '.join(cancelled)} of the {self.request_type} request cancelled; "
                                f"{', '.join(p.subject_request_id for p in running)} was not cancelled and is "
                                f"{running[0].last_status}: following it to its end")
        return self.failed(RejectedError(self._cancelled_words(cancelled), api="dsr"))

    def _cancelled_words(self, cancelled: list[str]) -> str:
        assert self.state is not None
        finished = [p.subject_request_id for p in self.state.parts if p.done]
        if finished:
            return (f"the {self.request_type} request was partly cancelled in mParticle: {', '.join(cancelled)} was "
                    f"cancelled before it ran, {', '.join(finished)} was not and completed; submit a new request for "
                    "the cancelled part if it is still needed")
        return (f"the {self.request_type} request was cancelled in mParticle (in its dashboard or through the "
                "API) before it ran; submit a new request if it is still needed")

    def run(self, finish: Finish) -> Result:
        """One bounded step: submit what is missing, or check the status and ``finish`` once all completed."""
        try:
            return self._step(finish)
        except MParticleError as exc:
            return self._stopped(exc)

    def _step(self, finish: Finish) -> Result:
        if not self.groups:
            raise ConfigurationError(
                f"none of the request's identifiers can be sent to mParticle's DSR API (it takes email, "
                f"customer_id, phone numbers, other ids, device ids and an mpid); this request has "
                f"{', '.join(sorted(i.kind.name for i in self.subject.identifiers))}")
        if self.state is not None:
            self.doing = "checking mParticle's signed answers"
            self.signed.reverify(self.state.parts)
            self.signed.gate(self.state.parts, self.check)
        fresh = self.state is None or len(self.state.parts) < len(self.groups)
        if fresh and self.request.output_dir:
            self.doing = "checking the output folder"
            with Folder.open(self.request.output_dir) as folder:  # a folder that cannot be used or written
                folder.probe()                                     # fails before anything is sent
        if fresh and self._submit_missing():
            assert self.state is not None
            self.signed.gate(self.state.parts, self.check)
            self._after_submit()
            return self.waiting(f"submitted the {self.request_type} request to mParticle; it is pending")
        return self._advance(finish)

    def _after_submit(self) -> None:
        for step in self.after_submit:
            step(self)

    def _stopped(self, exc: MParticleError) -> Result:
        """The result for an error that stopped the step (see the module docstring): failed while mParticle holds
        nothing of the request; once it holds a part, failed only for its verdicts, pending otherwise."""
        if self.state is None or not self.state.parts:  # nothing was submitted: nothing to resume
            if isinstance(exc, ConflictError):
                return self.failed(ConflictError(
                    f"mParticle already has an identical {self.request_type} request in progress for these "
                    f"identities under another request id, so nothing was submitted; try again once it completes "
                    f"({exc.message})", api="dsr", status=409))
            return self.failed(exc)
        if isinstance(exc, NotYetVerified):
            return self.retry_soon(exc, exc.message)
        if isinstance(exc, RetryLaterError):
            return self.retry_soon(exc)
        if isinstance(exc, NotFoundError) and exc.api == "dsr" and self.doing == "checking its status":
            return self._unknown_to_mparticle(exc)
        if isinstance(exc, FINAL_AFTER_ACCEPTANCE):
            return self.failed(exc)
        return self.needs_person(exc)

    def _unknown_to_mparticle(self, exc: NotFoundError) -> Result:
        """A 404 to the status check of a request mParticle acknowledged: its verdict only once mParticle may have
        dropped the record (it keeps them a year); before that, something else answers for it."""
        assert self.state is not None
        since = self.state.sent_at(self.request.submitted_at)
        subject_request_id = self.state.parts[0].subject_request_id
        if utcnow() - since > RETENTION:
            return self.failed(RejectedError(
                f"mParticle no longer knows request {subject_request_id} (it keeps requests for up to a year)",
                api="dsr", status=404))
        return self.needs_person(exc, (
            f"the DSR API answered that it does not know request {subject_request_id} (HTTP 404), which mParticle "
            f"acknowledged on {format_time(since)[:10]} and keeps for a year: the DSR credentials or dsr.base_url "
            "may point at another workspace, or something other than mParticle answered"))
