"""Class 5: a malformed success is an error, never a verdict.

"No profile" completes an opt-out and verifies an erasure, and "completed" ends a request: each must be
mParticle saying so. Answers that only look like success (a 200 without a valid mpid, a 404 without IDSync's
not-found error, a status for another request, a status value outside the spec, a timestamp that is not a
time or out of range) are classified (retried, pending, or failed with a reason), never read as a verdict and
never ``internal``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

STATUS_PATH = r"^/v3/requests/[0-9a-f-]{36}$"


def answer(status: int, body: Any) -> Any:
    return lambda seen, forward: Answer.of_json(status, body)


BAD_FOUND = {
    "empty-object": answer(200, {}),
    "mpid-null": answer(200, {"mpid": None, "matched_identities": {}}),
    "mpid-zero": answer(200, {"mpid": "0"}),
    "mpid-text": answer(200, {"mpid": "not-a-number"}),
    "mpid-too-big": answer(200, {"mpid": str(2**64)}),
    "mpid-bool": answer(200, {"mpid": True}),
    "mpid-float": answer(200, {"mpid": 1.5}),
    "array": answer(200, [{"mpid": "42"}]),
    "not-json": lambda seen, forward: Answer(200, {"Content-Type": "text/html"}, b"<html>ok</html>"),
}
BAD_NOT_FOUND = {
    "404-empty": answer(404, {}),
    "404-other-code": answer(404, {"errors": [{"code": "ROUTE_NOT_FOUND", "message": "no route"}]}),
    "404-text": lambda seen, forward: Answer(404, {"Content-Type": "text/plain"}, b"Not Found"),
    "404-html-proxy": lambda seen, forward: Answer(404, {"Content-Type": "text/html"}, b"<h1>404</h1>"),
}


@pytest.mark.parametrize("rule", list({**BAD_FOUND, **BAD_NOT_FOUND}))
def test_an_opt_out_is_never_completed_on_an_answer_that_is_not_a_verdict(sandbox: Sandbox, hostile: HostileServer,
                                                                           rule: str) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    hostile.on("POST", r"^/v1/search", {**BAD_FOUND, **BAD_NOT_FOUND}[rule])
    result = handle_for(config_for(hostile, sandbox)).handle(request("opt_out"))
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class in ("retry_later", "rejected"), result.message
    assert hostile.requests(r"^/v2/events") == [], "consent was written on an answer that was not a verdict"


@pytest.mark.parametrize("rule", list({**BAD_FOUND, **BAD_NOT_FOUND}))
def test_an_erasure_is_never_verified_on_an_answer_that_is_not_a_verdict(sandbox: Sandbox, hostile: HostileServer,
                                                                         rule: str) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion"))
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("POST", r"^/v1/search", {**BAD_FOUND, **BAD_NOT_FOUND}[rule])
    result = handle.handle(request("deletion"), first.state)
    assert result.status != "completed" and (result.error is None or result.error.error_class != "internal")
    assert result.summary.get("verified") is not True


def status_says(change: Any) -> Any:
    """Forward the status answer with ``change(body)`` applied."""
    def rule(seen: Seen, forward: Any) -> Answer:
        reply = forward()
        body = reply.json()
        return reply.with_json(change(body) if isinstance(body, dict) else body)
    return rule


BAD_STATUS = {
    "another-request-completed": lambda b: {**b, "subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00",
                                            "request_status": "completed"},
    "status-done": lambda b: {**b, "request_status": "done"},
    "status-upper-case": lambda b: {**b, "request_status": "COMPLETED"},
    "status-null": lambda b: {**b, "request_status": None},
    "status-missing": lambda b: {k: v for k, v in b.items() if k != "request_status"},
    # A time without a zone is mParticle's own form (developers/dsr-api/v2), read as UTC; a date that does not
    # exist is not.
    "impossible-timestamp": lambda b: {**b, "request_status": "completed",
                                       "expected_completion_time": "2026-13-01T00:00:00Z"},
    "year-9999": lambda b: {**b, "expected_completion_time": "9999-12-31T23:59:59Z"},
    "year-1": lambda b: {**b, "expected_completion_time": "0001-01-01T00:00:00Z"},
    "timestamp-number": lambda b: {**b, "expected_completion_time": 1764000000},
    "results-url-number": lambda b: {**b, "request_status": "completed", "results_url": 42},
    "id-missing": lambda b: {k: v for k, v in b.items() if k != "subject_request_id"},
    "not-an-object": lambda b: ["completed"],
}


@pytest.mark.parametrize("kind", ["access", "deletion"])
@pytest.mark.parametrize("change", list(BAD_STATUS))
def test_a_status_that_is_not_mparticles_word_keeps_the_request_pending(sandbox: Sandbox, hostile: HostileServer,
                                                                        tmp_path: Path, kind: str,
                                                                        change: str) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    req = request(kind, output_dir=str(tmp_path))
    first = handle.handle(req)
    hostile.on("GET", STATUS_PATH, status_says(BAD_STATUS[change]))
    result = handle.handle(req, first.state)
    assert result.status == "pending" and result.state, result.message
    assert result.next_check_at is not None
    assert list(tmp_path.iterdir()) == []


def test_a_completed_access_without_a_results_link_is_not_final(sandbox: Sandbox, hostile: HostileServer) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("access"))
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("GET", STATUS_PATH, status_says(lambda b: {**b, "results_url": None}))
    result = handle.handle(request("access"), first.state)
    assert result.status == "pending" and "no results link" in result.message


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"subject_request_id": "3f1e8c8e-2b53-4b1e-9d9b-8d0a5c1e2f00"}',
                                  b'{"expected_completion_time": "tomorrow"}'])
def test_a_malformed_acknowledgement_never_creates_a_second_request(sandbox: Sandbox, hostile: HostileServer,
                                                                    body: bytes) -> None:
    """The submission went through but its 201 is garbled: the retry finds it ("already exists") and resumes."""
    def garbled(seen: Seen, forward: Any) -> Answer:
        reply = forward()
        return Answer(reply.status, {"Content-Type": "application/json"}, body) if reply.status == 201 else reply

    hostile.on("POST", r"^/v3/requests$", garbled)
    # Retries may start for up to 5 s (not FAST's 0.5 s), so a slow, busy machine still reaches the retry.
    retry_budget = {"throttle": {"max_retry_seconds": 5, "max_retry_after_seconds": 0.2}}
    result = handle_for(config_for(hostile, sandbox, **retry_budget)).handle(request("deletion"))
    assert result.status in ("pending", "completed"), result.message  # the sandbox may finish it meanwhile
    assert len(sandbox.dsrs()) == 1
    assert any("already exists" in e.outcome for e in result.audit)
