"""The cancel attack (issue 24, findings N1-N5, N11): a cancel result says a request was cancelled only when
mParticle's own status says so, never reads a 404 as "nothing was submitted" when the state holds mParticle's
acknowledgement, and a split erasure cancelled in part says which part and keeps the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.sandbox import Sandbox
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import DsrRequest
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

STATUS = r"^/v3/requests/[0-9a-f-]{36}$"


def connector(sandbox: Sandbox, hostile: HostileServer, **settings: Any) -> ConnectorHandle:
    return handle_for(config_for(hostile, sandbox, **settings))


def statuses(sandbox: Sandbox) -> list[str]:
    return sorted(str(d["request_status"]) for d in sandbox.dsrs())


def split_erasure(sandbox: Sandbox) -> DsrRequest:
    """An erasure by email and mpid: two OpenDSR requests (an mpid is sent alone)."""
    omar = sandbox.seed_profile({"email": "omar@example.com"})
    return request("deletion", "C-2", "omar@example.com", vendor_id=str(omar["mpid"]))


def test_a_404_not_from_mparticle_on_the_status_check_never_says_nothing_was_submitted(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile)
    first = handle.handle(request("deletion", "C-1"))
    assert first.status == "pending"
    hostile.on("GET", STATUS, lambda seen, forward: Answer(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"))
    result = handle.cancel(request("deletion", "C-1"), first.state)
    assert result.status == "failed" and result.error is not None, result.message
    assert result.error.error_class == "retry_later"  # not a verdict: the host keeps its state and may try again
    assert "nothing was submitted" not in result.message and "withdrawn" not in result.message
    assert "nothing was cancelled" in result.message and "does not know a request" in result.message
    assert statuses(sandbox) == ["pending"]


def test_a_second_part_refused_after_the_first_was_cancelled_says_both_and_keeps_the_state(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile)
    erase = split_erasure(sandbox)
    first = handle.handle(erase)
    assert first.status == "pending" and len(sandbox.dsrs()) == 2
    deletes = {"n": 0}

    def refuse_second(seen: Seen, forward: Any) -> Answer:
        deletes["n"] += 1
        return forward() if deletes["n"] == 1 else Answer.of_json(503, {"errors": [{"message": "unavailable"}]})

    hostile.on("DELETE", STATUS, refuse_second)
    partly = handle.cancel(erase, first.state)
    assert partly.status == "failed" and partly.error is not None, partly.message
    assert partly.error.error_class == "retry_later"
    outcome = partly.summary["cancel"]
    assert outcome["outcome"] == "partly_cancelled"
    assert len(outcome["cancelled"]) == 1 and len(outcome["not_cancelled"]) == 1
    assert "partly cancelled" in partly.message and "was not cancelled" in partly.message
    assert statuses(sandbox) == ["cancelled", "pending"]
    # the host keeps its state: the main flow follows the part that goes on and never says "submit a new one"
    follow = handle.handle(erase, first.state)
    assert follow.status == "pending" and "was not cancelled" in follow.message, follow.message
    hostile.clear()  # cancelling again with the state finishes the job
    rest = handle.cancel(erase, follow.state)
    assert rest.status == "completed", rest.message
    assert statuses(sandbox) == ["cancelled", "cancelled"]


def test_a_2xx_to_the_cancel_that_cancelled_nothing_is_not_reported_cancelled(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile)
    first = handle.handle(request("deletion", "C-3"))
    hostile.on("DELETE", STATUS, lambda seen, forward: Answer.of_json(
        202, {"subject_request_id": seen.path.rsplit("/", 1)[1]}))
    result = handle.cancel(request("deletion", "C-3"), first.state)
    assert result.status == "failed", result.message
    assert "status read back just after says pending" in result.message
    assert statuses(sandbox) == ["pending"]


def test_under_strict_an_unverified_cancellation_answer_is_not_proof(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile, signatures="strict")
    first = handle.handle(request("deletion", "C-5"))
    assert first.status == "pending", first.message

    def unsigned(seen: Seen, forward: Any) -> Answer:
        answer: Answer = forward()
        return Answer(answer.status, {"Content-Type": "application/json"}, answer.body)

    hostile.on("DELETE", STATUS, unsigned)
    result = handle.cancel(request("deletion", "C-5"), first.state)
    assert result.status == "failed" and "not taken as proof" in result.message, result.message
    assert result.summary.get("cancel", {}).get("outcome") != "cancelled"


def test_a_status_that_says_cancelled_while_pending_still_gets_the_cancel_sent(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile)
    first = handle.handle(request("deletion", "C-4"))

    def say_cancelled(seen: Seen, forward: Any) -> Answer:
        answer: Answer = forward()
        data = answer.json()
        data["request_status"] = "cancelled"
        return answer.with_json(data)

    hostile.on("GET", STATUS, say_cancelled)
    result = handle.cancel(request("deletion", "C-4"), first.state)
    assert result.status == "completed", result.message
    assert len(hostile.requests(STATUS)) >= 1 and any(s.method == "DELETE" for s in hostile.requests(STATUS))
    assert statuses(sandbox) == ["cancelled"]  # mParticle really holds it cancelled: the claim is true


def test_a_too_late_cancel_names_the_partners_the_state_recorded(sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(60, 60))
    handle = connector(sandbox, hostile)
    erase = request("deletion", "C-6")
    first = handle.handle(erase)
    braze = [{"domain": "braze.com", "name": "Braze", "status": "pending", "status_message": None}]
    hostile.on("GET", STATUS, lambda seen, forward: forward().with_json({**forward().json(), "extensions": braze}))
    checked = handle.handle(erase, first.state)  # the state now records Braze as a partner of the erasure
    assert checked.status == "pending", checked.message
    hostile.clear()
    hostile.on("GET", STATUS, lambda seen, forward: forward().with_json(
        {**forward().json(), "request_status": "in_progress", "extensions": None}))
    result = handle.cancel(erase, checked.state)
    assert result.status == "failed" and "too late" in result.message, result.message
    assert "no partner has received the erasure yet" not in result.message
    assert "Braze" in result.message and [p["name"] for p in result.summary["partners"]] == ["Braze"]


def test_the_cli_says_which_part_was_cancelled_and_keeps_the_state_file(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    sandbox.set_durations(erasure=(60, 60))
    omar = sandbox.seed_profile({"email": "omar@example.com"})
    config, state = tmp_path / "mp.yaml", tmp_path / "erase.json"
    config.write_text(yaml.safe_dump(config_for(hostile, sandbox)))
    run = CliRunner()
    submitted = run.invoke(main, ["delete", "--config", str(config), "--email", "omar@example.com", "--mpid",
                                  str(omar["mpid"]), "--state", str(state)], catch_exceptions=False)
    assert len(sandbox.dsrs()) == 2, submitted.output
    before = state.read_text()
    deletes = {"n": 0}

    def drop_second(seen: Seen, forward: Any) -> Answer:
        deletes["n"] += 1
        return forward() if deletes["n"] == 1 else Answer.of_json(400, {"errors": [{"message": "not pending"}]})

    hostile.on("DELETE", STATUS, drop_second)
    cancelled = run.invoke(main, ["cancel", "--config", str(config), "--state", str(state)], catch_exceptions=False)
    words = " ".join(cancelled.output.split())
    assert cancelled.exit_code == 1, cancelled.output
    assert "partly cancelled" in words and "Nothing was cancelled" not in words
    assert "The request was not cancelled" not in words and "The request was partly cancelled" in words
    assert state.read_text() == before  # the state file is kept: the part that goes on can be followed
    assert statuses(sandbox) == ["cancelled", "pending"]
