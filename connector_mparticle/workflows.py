"""What each hook does in mParticle, as bounded steps that return a result.

Access and deletion share one path: submit the OpenDSR request (or find the earlier submission), check its
status, and return ``pending`` with the state and the next check time until mParticle completes it. Then
access downloads and summarises the results; deletion confirms with identity searches that the profile is
gone. Opt-out is synchronous: search, then record consent. Every failure becomes a classified result.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connector_mparticle.connector import MParticleConnector
from connector_mparticle.errors import (
    AlreadyExistsError,
    ConfigurationError,
    ConflictError,
    GoneError,
    MParticleError,
    NotFoundError,
    RejectedError,
    RetryLaterError,
    UnsafeResponseError,
    VerificationError,
)
from connector_mparticle.opendsr import DsrStatus
from connector_mparticle.results import summarise, summary_text
from connector_mparticle.schedule import next_check
from connector_mparticle.subject import (
    RequestState,
    derived_uuid,
    dsr_body,
    opt_out_batch,
    safe_file_stem,
    subject_identities,
)
from dsr_framework.models import (
    AuditEvent,
    CheckOutcome,
    ConnectionResult,
    DsrRequest,
    FailureInfo,
    OutputFile,
    Result,
    Status,
    format_time,
    utcnow,
)

__all__ = ["access", "deletion", "opt_out", "test_connection"]

MAX_EXPANSION = 50  #: results archive: uncompressed bytes allowed per downloaded byte


def test_connection(conn: MParticleConnector) -> ConnectionResult:
    """One check per API, each proving its credentials without changing any data."""
    env = conn.settings.environment
    checks: list[tuple[str, Callable[[], object], str]] = [
        ("dsr_api", conn.dsr.probe,
         "the DSR API accepted the workspace key and secret (GET /v3/requests/0 answered 404, as expected)"),
        ("events_api", lambda: conn.events.upload(
            {"environment": env, "events": [], "source_request_id": str(uuid.uuid4())}, what="connection check"),
         "the Events API accepted the input key and secret (an empty batch was accepted with HTTP 202)"),
        ("identity_api", lambda: conn.identity.search(
            {"email": f"dsr-connection-check-{uuid.uuid4().hex[:12]}@example.invalid"}),
         "the Identity API accepted the input key and secret (a search for a made-up address found nothing)"),
    ]
    outcomes = []
    for name, probe, success in checks:
        started = time.perf_counter()
        try:
            probe()
        except MParticleError as exc:
            outcomes.append(CheckOutcome(name, False, conn.redactor(exc.message),
                                         (time.perf_counter() - started) * 1000, exc.error_class))
        else:
            outcomes.append(CheckOutcome(name, True, success, (time.perf_counter() - started) * 1000))
    return ConnectionResult(tuple(outcomes))


class _Flow:
    """One call's work on one asynchronous request."""

    def __init__(self, conn: MParticleConnector, request: DsrRequest, state: dict[str, Any] | None,
                 request_type: str) -> None:
        self.conn = conn
        self.settings = conn.settings
        self.request = request
        self.request_type = request_type
        self.subject_id = derived_uuid(request.request_id, request_type)
        self.state = RequestState.from_dict(state, self.subject_id)
        self.trail = [AuditEvent.from_dict(e) for e in (self.state.audit if self.state else [])]
        self.now = utcnow()

    # -- results ----------------------------------------------------------------------------------------

    def note(self, action: str, outcome: str, **detail: Any) -> None:
        self.trail.append(AuditEvent(action, outcome, {k: v for k, v in detail.items() if v is not None}))

    def result(self, status: Status, message: str, *, error: FailureInfo | None = None,
               next_at: datetime | None = None, files: tuple[OutputFile, ...] = (),
               summary: dict[str, Any] | None = None) -> Result:
        state = None
        if status == "pending":
            assert self.state is not None
            self.state.audit = [e.to_dict() for e in self.trail]
            state = self.state.to_dict()
        base = {"subject_request_id": self.subject_id, "request_type": self.request_type}
        return Result(self.request.request_id, self.request.type, status, message, state=state, next_check_at=next_at,
                      error=error, audit=tuple(self.trail), files=files, summary={**base, **(summary or {})})

    def failed(self, exc: MParticleError) -> Result:
        message = self.conn.redactor(exc.message)
        retry = exc.retry_after if isinstance(exc, RetryLaterError) else None
        self.note("stop", f"failed ({exc.error_class})", message=message)
        return self.result("failed", message, error=FailureInfo(exc.error_class, message, retry))

    def waiting(self, message: str, *, after: datetime | None = None) -> Result:
        assert self.state is not None
        expected = self.state.expected
        if after is None:
            now = utcnow()  # not self.now: the calls made since the step began take time too
            if expected is not None and now >= expected:
                self.state.overdue_checks += 1
            after = next_check(now, expected, self.state.overdue_checks, self.settings.poll_min_seconds,
                               self.settings.poll_max_seconds)
        return self.result("pending", message, next_at=after,
                           summary={"mparticle_status": self.state.last_status,
                                    "expected_completion_time": self.state.expected_completion_time,
                                    "status_checks": self.state.status_checks})

    # -- steps ------------------------------------------------------------------------------------------

    def submit(self) -> bool:
        """Submit (or find the earlier submission). True when it was new."""
        body = dsr_body(self.request, self.settings, self.request_type)
        try:
            reply = self.conn.dsr.submit(body)
        except RejectedError as exc:
            if exc.status != 400 or not self._exists(exc):
                raise
            self.note(f"submit {self.request_type} request", "already exists: resuming the earlier submission",
                      subject_request_id=self.subject_id)
            self.state = RequestState(self.subject_id, submitted_at=format_time(self.now))
            return False
        expected = reply.body.get("expected_completion_time") if isinstance(reply.body, dict) else None
        self.note(f"submit {self.request_type} request", f"HTTP {reply.status}", subject_request_id=self.subject_id,
                  group_id=self.request.request_id, expected_completion_time=expected, attempts=reply.attempts)
        self.state = RequestState(self.subject_id, submitted_at=format_time(self.now),
                                  expected_completion_time=expected if isinstance(expected, str) else None,
                                  last_status="pending")
        return True

    def _exists(self, refusal: RejectedError) -> bool:
        """After a 400 to a submission: does mParticle already have our request? ("Subject request already
        exists" says so, but the lookup also covers a reworded or unreadable error body.)"""
        if isinstance(refusal, AlreadyExistsError):
            return True
        try:
            self.conn.dsr.status(self.subject_id)
        except NotFoundError:
            return False
        return True

    def check(self) -> DsrStatus:
        assert self.state is not None
        status = self.conn.dsr.status(self.subject_id)
        self.state.status_checks += 1
        self.state.last_status = status.request_status
        if status.expected_completion_time is not None:
            self.state.expected_completion_time = format_time(status.expected_completion_time)
        self.note("check status", status.request_status, subject_request_id=self.subject_id,
                  expected_completion_time=self.state.expected_completion_time)
        return status

    def run(self, finish: Callable[[_Flow, DsrStatus | None], Result]) -> Result:
        try:
            if self.state is None and self.submit():
                return self.waiting(f"submitted the {self.request_type} request to mParticle; it is pending")
            if self.state is not None and self.state.phase == "verifying":
                return finish(self, None)
            status = self.check()
            if status.request_status in ("pending", "in_progress"):
                return self.waiting(f"mParticle reports the {self.request_type} request {status.request_status}")
            if status.request_status == "cancelled":
                return self.failed(RejectedError(
                    f"the {self.request_type} request was cancelled in mParticle (in its dashboard or through the "
                    "API) before it ran; submit a new request if it is still needed", api="dsr"))
            if self.request_type == "erasure" and self.state is not None:
                self.state.phase = "verifying"  # a retry resumes at verification, without asking mParticle again
            return finish(self, status)
        except ConflictError as exc:
            return self.failed(ConflictError(
                f"mParticle already has an identical {self.request_type} request in progress for these identities "
                f"under another request id, so nothing was submitted; try again once it completes ({exc.message})",
                api="dsr", status=409))
        except NotFoundError as exc:
            if self.state is None or exc.api != "dsr":
                return self.failed(exc)
            return self.failed(RejectedError(
                f"mParticle no longer knows request {self.subject_id} (it keeps requests for up to a year)",
                api="dsr", status=404))
        except RetryLaterError as exc:
            if self.state is None:
                return self.failed(exc)
            self.note("wait", "mParticle could not be reached; will try again", reason=exc.message)
            after = max(exc.retry_after or self.now, self.now + timedelta(seconds=self.settings.poll_min_seconds))
            return self.waiting("mParticle could not be reached just now; the request is still pending", after=after)
        except MParticleError as exc:
            return self.failed(exc)


def _finish_access(flow: _Flow, status: DsrStatus | None) -> Result:
    assert status is not None
    if not status.results_url:
        return flow.failed(RejectedError("mParticle completed the access request but gave no results link",
                                         api="dsr"))
    conn, request = flow.conn, flow.request
    stem = f"mparticle-access-{safe_file_stem(request.request_id)}"
    with tempfile.TemporaryDirectory(prefix="mparticle-access-") as scratch:
        folder = Path(request.output_dir) if request.output_dir else Path(scratch)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the output directory ({type(exc).__name__})") from exc
        try:
            download = conn.dsr.download(status.results_url, folder / f"{stem}.zip",
                                         conn.settings.download_max_bytes, conn.allowed_download_hosts())
        except NotFoundError:
            flow.note("download results", "HTTP 404: mParticle holds no data for these identities")
            return flow.result("completed", "mParticle completed the access request and holds no data for this "
                               "subject", summary={"data_found": False, "profiles_found": 0})
        except GoneError as exc:
            return flow.failed(GoneError(
                "the results link has expired (mParticle keeps results for 7 days after completion); submit a new "
                "access request", api="dsr", status=exc.status))
        flow.note("download results", "HTTP 200", size_bytes=download.size_bytes, sha256=download.sha256)
        try:
            summary = summarise(download.path, MAX_EXPANSION * download.size_bytes + 1_000_000)
        except UnsafeResponseError:
            download.path.unlink(missing_ok=True)  # never leave a file we refused to read for someone to open
            raise
        files: tuple[OutputFile, ...] = ()
        if request.output_dir:
            json_path = folder / f"{stem}-summary.json"
            text_path = folder / f"{stem}-summary.txt"
            json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            text_path.write_text(summary_text(summary, request.request_id), encoding="utf-8")
            files = (
                OutputFile(str(download.path), "application/zip", download.size_bytes, download.sha256,
                           "mParticle's results archive (JSON Lines: profile and event batches)"),
                _output(json_path, "application/json", "readable summary (JSON)"),
                _output(text_path, "text/plain", "readable summary (text)"),
            )
    message = "mParticle completed the access request and holds no data for this subject"
    if summary["data_found"]:
        message = (f"mParticle returned data for {summary['profiles_found']} profile(s) with "
                   f"{summary['event_batches']} event batch(es)")
    return flow.result("completed", message, files=files, summary=summary)


def _output(path: Path, media_type: str, description: str) -> OutputFile:
    data = path.read_bytes()
    return OutputFile(str(path), media_type, len(data), hashlib.sha256(data).hexdigest(), description)


def _finish_deletion(flow: _Flow, status: DsrStatus | None) -> Result:
    """Confirm the erasure: search every submitted identifier; any match is re-checked over the grace period."""
    assert flow.state is not None
    settings = flow.settings
    identities = subject_identities(flow.request, settings)
    still_found: list[str] = []
    for name, value in identities.items():
        found = flow.conn.identity.search({name: value})
        flow.note(f"verify erasure: search by {name}", "still found" if found.found else "not found", mpid=found.mpid)
        if found.found:
            still_found.append(name)
    flow.state.verify_attempts += 1
    if not still_found:
        return flow.result("completed", "mParticle completed the erasure, and identity searches confirm the "
                           "profile is gone", summary={"verified": True, "searched": sorted(identities),
                                                       "verification_searches": flow.state.verify_attempts})
    if flow.state.verify_attempts >= settings.verify_attempts:
        return flow.failed(VerificationError(
            f"mParticle reports the erasure complete, but a profile still matches {', '.join(still_found)} after "
            f"{flow.state.verify_attempts} search(es) over {settings.verify_grace_seconds:g}s; new data about the "
            "subject may have arrived after the erasure (erasure does not block it), or the erasure missed a profile"))
    interval = settings.verify_grace_seconds / max(1, settings.verify_attempts - 1)
    after = flow.now + timedelta(seconds=min(max(interval, settings.poll_min_seconds), settings.poll_max_seconds))
    return flow.waiting(f"mParticle reports the erasure complete, but a profile still matches "
                        f"{', '.join(still_found)}; checking again", after=after)


def access(conn: MParticleConnector, request: DsrRequest, state: dict[str, Any] | None) -> Result:
    return _Flow(conn, request, state, "access").run(_finish_access)


def deletion(conn: MParticleConnector, request: DsrRequest, state: dict[str, Any] | None) -> Result:
    return _Flow(conn, request, state, "erasure").run(_finish_deletion)


def opt_out(conn: MParticleConnector, request: DsrRequest, state: dict[str, Any] | None) -> Result:
    """Search the identity; if a profile exists, record the opt-out as consent state with one batch."""
    trail: list[AuditEvent] = []

    def done(status: Status, message: str, summary: dict[str, Any] | None = None,
             error: MParticleError | None = None) -> Result:
        failure = None
        if error is not None:
            retry = error.retry_after if isinstance(error, RetryLaterError) else None
            failure = FailureInfo(error.error_class, message, retry)
        return Result(request.request_id, request.type, status, message, error=failure, audit=tuple(trail),
                      summary=summary or {})

    try:
        identities = subject_identities(request, conn.settings)
        found = conn.identity.search(identities)
        trail.append(AuditEvent("search identity", "found" if found.found else "not found",
                                {"mpid": found.mpid} if found.mpid else {}))
        if not found.found or found.mpid is None:
            return done("completed", "no mParticle profile matches this subject, so there is no consent to change",
                        {"profile_found": False, "consent_changed": False})
        batch = opt_out_batch(request, conn.settings, found.mpid)
        reply = conn.events.upload(batch, what="record opt-out consent")
        trail.append(AuditEvent("upload consent batch", f"HTTP {reply.status}",
                                {"mpid": found.mpid, "source_request_id": batch["source_request_id"],
                                 "attempts": reply.attempts}))
        recorded = [f"{reg}.{purpose}" for reg, purposes in batch["consent_state"].items() for purpose in purposes]
        return done("completed", f"recorded the opt-out in mParticle ({', '.join(recorded)})", {
            "profile_found": True, "consent_changed": True, "mpid": found.mpid,
            "consent_state": batch["consent_state"], "source_request_id": batch["source_request_id"]})
    except MParticleError as exc:
        message = conn.redactor(exc.message)
        trail.append(AuditEvent("stop", f"failed ({exc.error_class})", {"message": message}))
        return done("failed", message, error=exc)
