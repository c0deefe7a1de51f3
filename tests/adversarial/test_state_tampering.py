"""Class 8: host-supplied state is validated, never trusted blindly.

The state a host hands back may be of the wrong type or shape, altered by hand, copied from another request,
or forged to skip a step. None of these may end ``internal``, create a second mParticle request, skip the
status check or skip verification: the connector resumes from mParticle's own record instead.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connector_mparticle import plugin
from connector_mparticle.sandbox import Sandbox
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import HostileServer
from tests.support.hosting import request


def _deep(levels: int) -> dict[str, Any]:
    top = node = {}
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return top


GARBAGE = ["a string", ["a", "list"], 42, True, 3.5, {}, {"v": 2}, {"v": 2, "subject_request_id": None},
           {"mac": "0" * 64}, {"nested": {"deep": ["x"] * 1000}},
           {"v": 3, "parts": [], "mac": "\u00e9" * 64},  # compare_digest raises TypeError on non-ASCII text
           {"v": 3, "parts": [], "mac": "0" * 64, "deep": _deep(5000)}]  # deeper than json.dumps can write


@pytest.mark.parametrize("state", GARBAGE, ids=[type(s).__name__ + str(i) for i, s in enumerate(GARBAGE)])
def test_state_of_the_wrong_type_or_shape_resumes_from_mparticle(sandbox: Sandbox, hostile: HostileServer,
                                                                 state: Any) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion"))
    assert first.state is not None
    sandbox.force_status(first.summary["subject_request_id"], "pending")  # however slowly the calls below run
    result = handle.handle(request("deletion"), state)  # through the host facade
    direct = plugin.handle_deletion(config=config_for(hostile, sandbox), request=request("deletion"), state=state)
    for outcome in (result, direct):
        assert outcome.status == "pending" and outcome.state, outcome.message
    assert len(sandbox.dsrs()) == 1


def tampered(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    altered = copy.deepcopy(state)
    altered.update(changes)
    return altered


def test_a_forged_verifying_phase_cannot_skip_the_status_check(sandbox: Sandbox, hostile: HostileServer) -> None:
    """mParticle has not run the erasure (still pending); a state claiming it has must not complete it."""
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion"))
    assert first.state is not None
    sandbox.force_status(first.summary["subject_request_id"], "pending")  # and it stays there
    forged = tampered(dict(first.state), phase="verifying", last_status="completed")
    result = handle.handle(request("deletion"), forged)
    assert result.status == "pending", result.message
    assert hostile.requests(r"^/v3/requests/[0-9a-f-]{36}$"), "the status was not checked"
    assert result.summary.get("verified") is not True


@pytest.mark.parametrize("tamper", [False, True], ids=["as-returned", "counter-reset"])
def test_a_profile_still_found_never_verifies_whatever_the_state_says(sandbox: Sandbox, hostile: HostileServer,
                                                                      tamper: bool) -> None:
    """New data about the subject arrives after the erasure. As returned, the state ends in a verification
    failure after the configured attempts; with its counter reset it is not trusted and verification starts
    over. Either way the deletion is never reported verified and mParticle gets one request."""
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = handle_for(config_for(hostile, sandbox, verification={"attempts": 2, "grace_period_seconds": 0}))
    first = handle.handle(request("deletion"))
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    sandbox.seed_profile({"email": "jane@example.com"})
    results, state = [], first.state
    for _ in range(4):
        result = handle.handle(request("deletion"), tampered(dict(state), verify_attempts=0) if tamper else state)
        results.append(result)
        if result.final:
            break
        state = result.state
    assert not [r for r in results if r.status == "completed" or (r.error and r.error.error_class == "internal")]
    if not tamper:
        assert results[-1].error is not None and results[-1].error.error_class == "verification"
    assert len(sandbox.dsrs()) == 1


@pytest.mark.parametrize("field", ["audit", "expected_completion_time", "status_checks", "submitted_at", "v"])
def test_an_altered_field_of_a_genuine_state_is_ignored_not_obeyed(sandbox: Sandbox, hostile: HostileServer,
                                                                   field: str) -> None:
    values = {"audit": [{"action": "x"}], "expected_completion_time": "9999-12-31T23:59:59Z", "status_checks": -7,
              "submitted_at": 12, "v": 1}
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion"))
    assert first.state is not None
    result = handle.handle(request("deletion"), tampered(dict(first.state), **{field: values[field]}))
    assert result.status == "pending"
    assert any("not written by this connector" in e.outcome for e in result.audit)
    assert len(sandbox.dsrs()) == 1


def test_a_state_from_another_request_is_not_used_for_this_one(sandbox: Sandbox, hostile: HostileServer) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    other = handle.handle(request("deletion", request_id="other-request", email="omar@example.com"))
    result = handle.handle(request("deletion"), other.state)
    assert result.status == "pending"
    assert result.state is not None and other.state is not None
    assert result.state["parts"][0]["subject_request_id"] != other.state["parts"][0]["subject_request_id"]
    assert len(sandbox.dsrs()) == 2  # this request was submitted in its own right


def test_a_giant_state_is_handled(sandbox: Sandbox, hostile: HostileServer) -> None:
    handle = handle_for(config_for(hostile, sandbox))
    first = handle.handle(request("deletion"))
    assert first.state is not None
    giant = tampered(dict(first.state), audit=[{"action": "a", "outcome": "b", "at": "2026-01-01T00:00:00Z",
                                               "detail": {"x": "y" * 1000}}] * 5000)
    result = handle.handle(request("deletion"), giant)
    assert result.status == "pending" and len(result.audit) < 100
