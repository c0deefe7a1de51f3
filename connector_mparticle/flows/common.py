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
from datetime import timedelta
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
    RejectedError,
    RetryLaterError,
    UnsignedAnswerError,
    VerificationError,
)
from connector_mparticle.files import Folder
from connector_mparticle.flows.lookup import reached
from connector_mparticle.flows.signed import NotYetVerified
from connector_mparticle.flows.state import Part, RequestState
from connector_mparticle.flows.step_results import StepResults
from connector_mparticle.flows.subject import DsrGroup, dsr_body, submission_terms
from connector_mparticle.http.transport import encode_json
from dsr_framework.models import DsrRequest, Result, format_time, utcnow

__all__ = ["Flow"]

Finish = Callable[["Flow", dict[str, DsrStatus]], Result]
#: How long mParticle keeps DSR records (guides/data-subject-requests): a 404 for a request it acknowledged
#: within this time is not its verdict.
RETENTION = timedelta(days=365)
#: Errors that end a request mParticle already holds: the policies the configuration chose (an expired results
#: link, mParticle's other verdict, ends an access where it is met: flows/access.py).
FINAL_AFTER_ACCEPTANCE = (UnsignedAnswerError, VerificationError)


class Flow(StepResults):
    """One call's work on one asynchronous host request (``access`` or ``erasure``): the steps of its lifecycle."""

    def __init__(self, conn: MParticleConnector, request: DsrRequest, state: Any, request_type: str) -> None:
        super().__init__(conn, request, state, request_type)
        #: what runs right after this call submitted the request (suppression: :mod:`.suppression`)
        self.after_submit: list[Callable[[Flow], None]] = []

    # -- steps ------------------------------------------------------------------------------------------

    def submit(self, group: DsrGroup) -> Part:
        """Submit ``group``'s OpenDSR request, or find the earlier submission."""
        terms = submission_terms(self.request, self.settings, self.request_type, utcnow())
        body = dsr_body(self.request, self.request_type, group, terms)
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
        return Part(group.subject_request_id, group.label, "pending", expected, evidence, terms=terms)

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
