"""Issue 21 (attack report D3, F2): once mParticle holds a request, an answer that is not mParticle's verdict
never ends it. Served by the hostile proxy in front of the sandbox, over real loopback sockets."""

from __future__ import annotations

import pytest

from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer
from tests.support.hosting import request

STATUS_PATH = r"^/v3/requests/[0-9a-f-]{36}$"


@pytest.mark.parametrize("answer", [
    Answer(404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"),
    Answer(409, {"Content-Type": "text/plain"}, b"Conflict"),
    Answer(400, {"Content-Type": "text/html"}, b"<h1>Request blocked</h1>"),
    Answer(308, {"Location": "https://example.invalid/"}, b""),
    Answer(403, {"Content-Type": "text/html"}, b"<h1>Forbidden</h1>"),
], ids=["proxy-404", "proxy-409", "waf-400", "redirect-308", "proxy-403"])
def test_a_status_check_answered_by_something_else_keeps_the_erasure_pending(
        sandbox: Sandbox, hostile: HostileServer, answer: Answer) -> None:
    sandbox.set_durations(erasure=(30, 60))
    handle = handle_for(config_for(hostile, sandbox))
    req = request("deletion", request_id=f"D3-{answer.status}", email=f"d3-{answer.status}@example.com")
    first = handle.handle(req)
    assert first.status == "pending"
    hostile.on("GET", STATUS_PATH, lambda seen, forward: answer)
    result = handle.handle(req, first.state)
    assert result.status == "pending" and result.state and result.error is None, result.message
    assert result.message.startswith("mParticle accepted the erasure"), result.message
    assert "no longer knows" not in result.message and "nothing was submitted" not in result.message
    hostile.clear()
    again = handle.handle(req, result.state)  # mParticle answers again: carried on, nothing submitted twice
    assert again.status == "pending" and len([d for d in sandbox.dsrs() if d["group_id"] == req.request_id]) == 1


def test_a_refused_mpid_part_never_says_nothing_was_submitted_while_the_other_is_live(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(30, 60))
    posts = {"count": 0}

    def second_refused(seen: object, forward: object) -> Answer:
        posts["count"] += 1
        if posts["count"] == 1:
            return forward()  # type: ignore[operator, no-any-return]
        return Answer.of_json(409, {"errors": [{"message": "There is an in-progress request"}]})

    hostile.on("POST", r"^/v3/requests$", second_refused)
    handle = handle_for(config_for(hostile, sandbox))
    req = request("deletion", request_id="F2-1", email="f2@example.com", vendor_id="5555555555")
    result = handle.handle(req)
    assert result.status == "pending" and result.state, result.message
    assert "nothing was submitted" not in result.message
    assert result.message.startswith("mParticle accepted the erasure for email"), result.message
    assert len([d for d in sandbox.dsrs() if d["group_id"] == "F2-1"]) == 1
    hostile.clear()
    resumed = handle.handle(req, result.state)  # the mpid part is submitted now, the first not again
    assert resumed.status == "pending" and len([d for d in sandbox.dsrs() if d["group_id"] == "F2-1"]) == 2
