"""The truth attack, class by class: "completed" means done, for the right person, and says no more than was
verified. Each case reproduces one class the attack broke, end to end through the sandbox (and the hostile proxy
where the attack needed one); ``tests/test_truth_properties.py`` states each guarantee over generated input.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from dsr_framework.host import ConnectorHandle
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer
from tests.support.hosting import drive, request


def connector(sandbox: Sandbox, hostile: HostileServer, **settings: Any) -> ConnectorHandle:
    return handle_for(config_for(hostile, sandbox, **settings))


def consent(sandbox: Sandbox, mpid: str) -> dict[str, Any]:
    profile = sandbox.profile(mpid)
    assert profile is not None
    found: dict[str, Any] = profile["consent_state"]
    return found


def events_sent(hostile: HostileServer) -> list[Any]:
    return [seen.json() for seen in hostile.requests(r"^/v2/events")]


# -- A1: a reused request id or a changed configuration is a new consent batch -----------------------------------


def test_an_opt_out_reusing_another_subjects_request_id_is_recorded_for_that_subject(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_workspace(gdpr_purposes=["marketing"])
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    omar = sandbox.seed_profile({"email": "omar@example.com"})
    handle = connector(sandbox, hostile)
    assert handle.handle(request("opt_out", "T-1", regulation="ccpa")).status == "completed"
    omar_result = handle.handle(request("opt_out", "T-1", "omar@example.com", regulation="ccpa"))
    assert omar_result.status == "completed", omar_result.message
    assert consent(sandbox, omar["mpid"])["ccpa"]["data_sale_opt_out"]["consented"] is True
    assert sandbox.stats()["duplicate_batches_ignored"] == 0
    # The same subject again with a purpose added to the configuration: that purpose is recorded too.
    again = connector(sandbox, hostile, opt_out={"ccpa_data_sale_opt_out": True, "gdpr_purposes": ["marketing"]})
    assert again.handle(request("opt_out", "T-1", regulation="ccpa")).status == "completed"
    assert consent(sandbox, jane["mpid"])["gdpr"]["marketing"]["consented"] is False


def test_an_opt_out_repeated_as_it_was_is_still_recorded_once(sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    handle = connector(sandbox, hostile)
    for _ in range(2):
        assert handle.handle(request("opt_out", "T-1", regulation="ccpa")).status == "completed"
    assert sandbox.stats()["duplicate_batches_ignored"] == 1


# -- F1: an mpid is read by one strict rule, so a near-mpid never names somebody else ---------------------------


def test_an_mpid_pythons_int_would_forgive_is_refused_before_anything_is_sent(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    omar = sandbox.seed_profile({"email": "omar@example.com"})
    handle = handle_for({k: v for k, v in config_for(hostile, sandbox).items() if k != "profile"})
    near = [omar["mpid"][:-1] + "_" + omar["mpid"][-1], "+" + omar["mpid"],
            "".join(chr(0x0660 + int(d)) for d in omar["mpid"])]
    for i, value in enumerate(near):
        for kind in ("opt_out", "deletion"):
            result = handle.handle(request(kind, f"M-{i}", email=None, vendor_id=value))
            assert result.status == "failed" and result.error is not None, result.message
            assert result.error.error_class == "configuration" and value not in result.message
    assert events_sent(hostile) == [] and hostile.requests(r"^/v3/requests") == []
    assert consent(sandbox, omar["mpid"]) == {"gdpr": {}, "ccpa": {}}


# -- C1: a configuration edited while a request is pending resumes it, never submits it again -------------------


def test_an_erasure_resumed_after_the_configuration_changed_is_not_submitted_twice(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_durations(erasure=(30, 60))
    sandbox.seed_profile({"email": "jane@example.com", "customer_id": "C-1"})
    req = request("deletion", "TICKET-9", customer_id="C-1", app_user_id="U-77")
    first = connector(sandbox, hostile).handle(req)
    assert first.status == "pending", first.message
    edited = connector(sandbox, hostile, identities={"app_user_id": "other3"})  # the operator maps a category
    second = edited.handle(req, first.state)
    assert second.status == "pending", second.message
    relabelled = connector(sandbox, hostile, identities={"app_user_id": "other3"}, regulation="ccpa")
    third = relabelled.handle(req, second.state)
    assert third.status == "pending", third.message
    assert len(sandbox.dsrs()) == 1, "a second erasure was submitted for one host request"
    assert not any("not written by this connector" in e.outcome for e in (*second.audit, *third.audit))


# -- C3: a request id reused for another subject gets files of its own ------------------------------------------


def test_a_request_id_reused_for_another_subject_never_overwrites_the_first_subjects_files(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"name": "Jane Doe"})
    sandbox.seed_profile({"email": "omar@example.com"}, attributes={"name": "Omar Said"})
    handle = connector(sandbox, hostile)
    for kind in ("access", "deletion"):
        jane, _ = drive(handle, request(kind, "T-1", output_dir=str(tmp_path)))
        omar, _ = drive(handle, request(kind, "T-1", "omar@example.com", output_dir=str(tmp_path)))
        assert jane.status == omar.status == "completed", (jane.message, omar.message)
        assert jane.files and not {f.path for f in jane.files} & {f.path for f in omar.files}
        for file in jane.files:  # every file Jane's result lists still holds what it held
            assert hashlib.sha256(Path(file.path).read_bytes()).hexdigest() == file.sha256, file.path


# -- B1-B3: "verified" only where mParticle's searches could have seen the profile ------------------------------


def erase(sandbox: Sandbox, hostile: HostileServer, request_id: str, **identities: str) -> Any:
    result, _ = drive(connector(sandbox, hostile), request("deletion", request_id, **identities))
    assert result.status == "completed", result.message
    return result


def test_an_erasure_under_an_immutable_id_strategy_without_that_id_is_not_verified(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    sandbox.set_workspace(identity={"login_ids": ["customer_id", "email"], "unique_ids": ["customer_id"],
                                    "immutable_ids": ["customer_id"]})
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "C-1042"})
    result = erase(sandbox, hostile, "IM-1")
    assert sandbox.profile(jane["mpid"]) is not None  # mParticle's look-up matched nothing
    assert result.summary["verified"] is False and "immutable" in " ".join(result.summary["not_verifiable"])
    failing = connector(sandbox, hostile, verification={"unverifiable": "fail"})
    refused, _ = drive(failing, request("deletion", "IM-2"))
    assert refused.status == "failed" and refused.error is not None
    assert refused.error.error_class == "verification"


def test_an_mpid_does_not_hide_the_login_id_blind_spot(sandbox: Sandbox, hostile: HostileServer) -> None:
    known = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "C-1042"})
    anonymous = sandbox.seed_profile({"ios_idfv": "8B3C2A1D-0000-4000-8000-000000000001"})
    result = erase(sandbox, hostile, "MP-1", vendor_id=anonymous["mpid"])
    assert sandbox.profile(known["mpid"]) is not None
    assert result.summary["verified"] is False
    assert "customer_id" in " ".join(result.summary["not_verifiable"])


def test_a_login_id_that_matched_no_profile_before_the_erasure_verifies_nothing(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "C-42"})
    result = erase(sandbox, hostile, "WL-1", customer_id="c-42")
    assert sandbox.profile(jane["mpid"]) is not None  # another case is another login id: nothing was erased
    assert result.summary["verified"] is False
    assert "when it was first looked up" in " ".join(result.summary["not_verifiable"])
    # The right login id reaches the profile: erased, and verified.
    right = erase(sandbox, hostile, "WL-2", customer_id="C-42")
    assert sandbox.profile(jane["mpid"]) is None
    assert right.summary["verified"] is True, right.summary["not_verifiable"]


# -- A3/A4: the opt-out asks every kind of identifier, and believes only answers about what it asked ----------------


def test_an_opt_out_with_a_stale_mpid_still_finds_the_subject_by_email(sandbox: Sandbox,
                                                                      hostile: HostileServer) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    result = connector(sandbox, hostile).handle(request("opt_out", "OO-1", regulation="ccpa", vendor_id="4242424242"))
    assert result.status == "completed", result.message
    assert consent(sandbox, jane["mpid"])["ccpa"]["data_sale_opt_out"]["consented"] is True


def test_an_opt_out_whose_identifiers_name_two_profiles_records_nothing(sandbox: Sandbox,
                                                                       hostile: HostileServer) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    other = sandbox.seed_profile({"email": "jane.old@example.com"})
    result = connector(sandbox, hostile).handle(request("opt_out", "OO-2", regulation="ccpa", vendor_id=other["mpid"]))
    assert result.status == "failed" and result.error is not None, result.message
    assert result.error.error_class == "configuration" and "different mParticle profiles" in result.message
    assert events_sent(hostile) == []
    assert consent(sandbox, jane["mpid"]) == consent(sandbox, other["mpid"]) == {"gdpr": {}, "ccpa": {}}


def test_a_search_answer_about_someone_else_is_not_taken_for_the_subject(sandbox: Sandbox,
                                                                        hostile: HostileServer) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    omar = sandbox.seed_profile({"email": "omar@example.com"})
    handle = connector(sandbox, hostile)
    for matched in ({}, {"email": "omar@example.com"}, {"email": "jane@example.com", "customerid": "C-9"}):
        hostile.clear()
        hostile.on("POST", r"^/v1/search", lambda seen, forward, m=matched: Answer.of_json(  # type: ignore[misc]
            200, {"mpid": omar["mpid"], "matched_identities": m, "context": None, "is_ephemeral": False}))
        result = handle.handle(request("opt_out", "W-1", regulation="ccpa"))
        assert result.status == "failed", result.message
    assert events_sent(hostile) == []
    assert consent(sandbox, omar["mpid"]) == {"gdpr": {}, "ccpa": {}}


# -- D2: "no profile" is the Profile API's documented answer, not any error that mentions a profile -----------------


NOT_A_VERDICT = [
    (404, {"message": "no Route matched with those values: /userprofile/v1/1/2/3"}),
    (404, {"timestamp": "2026-11-29T10:00:00Z", "status": 404, "error": "Not Found", "path": "/userprofile/v1/x"}),
    (400, {"errors": [{"code": "BAD_REQUEST", "message": "Invalid value for 'fields' in profile request"}]}),
    (400, {"message": "Invalid workspace for the requested profile"}),
    (404, {"errors": [{"code": "PROFILE_NOT_FOUND", "message": "Not Found"}]}),
]


def test_a_profile_api_error_that_is_not_its_no_profile_answer_is_never_read_as_gone(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    handle = connector(sandbox, hostile)
    for status, body in NOT_A_VERDICT:
        hostile.clear()
        hostile.on("GET", r"^/userprofile/", lambda seen, forward, s=status, b=body: Answer.of_json(s, b))  # type: ignore[misc]
        result = handle.handle(request("opt_out", "PF-1", email=None, regulation="ccpa", vendor_id=jane["mpid"]))
        assert result.status == "failed" and "no mParticle profile" not in result.message, (body, result.message)
    assert events_sent(hostile) == []
    hostile.clear()  # mParticle's own answer for an mpid it does not hold is the verdict
    gone = handle.handle(request("opt_out", "PF-2", email=None, regulation="ccpa", vendor_id="4242424242"))
    assert gone.status == "completed" and gone.summary["profile_found"] is False, gone.message


# -- D1: a 404 on the results link is "no data" only in mParticle's own answer ------------------------------------


def completed_access(sandbox: Sandbox, handle: ConnectorHandle, request_id: str, email: str) -> tuple[Any, Any]:
    """An access request mParticle has completed, and the state its first call returned."""
    req = request("access", request_id, email)
    first = handle.handle(req)
    assert first.status == "pending", first.message
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    return req, first.state


NOT_MPARTICLES_404 = [
    ("text/html", b"<html><body><h1>404 Not Found</h1><hr>nginx</body></html>"),
    ("application/json", b'{"message": "Bucket not found"}'),
    ("application/json", b'{"code": 404, "message": "Results not found.", "errors": [{"domain": "Validation", '
                         b'"reason": "NotFoundException", "message": "Results not found."}]}'),
]


@pytest.mark.parametrize("status", [404, 410])
def test_a_404_or_410_from_the_results_link_that_is_not_mparticles_answer_keeps_the_request_pending(
        sandbox: Sandbox, hostile: HostileServer, status: int) -> None:
    """Neither "nothing matched" (404) nor "the link expired" (410) is read from a proxy's or a storage service's
    page: the request stays pending, and completes once the link answers."""
    sandbox.set_workspace(include_live_profile=True)
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"name": "Jane Doe"})
    handle = connector(sandbox, hostile)
    req, state = completed_access(sandbox, handle, "DL-1", "jane@example.com")
    # (a 410 in the DSR API's own error shape is mParticle's: only the first two pages are a stranger's then)
    for media_type, body in NOT_MPARTICLES_404 if status == 404 else NOT_MPARTICLES_404[:2]:
        hostile.clear()
        hostile.on("GET", r"^/dsr-results/", lambda seen, forward, m=media_type, b=body: Answer(  # type: ignore[misc]
            status, {"Content-Type": m}, b.replace(b"404", str(status).encode())))
        result = handle.handle(req, state)
        assert result.status == "pending" and "no data" not in result.message, (body, result.message)
        assert "expired" not in result.message, (body, result.message)
    hostile.clear()
    result = handle.handle(req, state)
    assert result.status == "completed" and result.summary["data_found"] is True, result.message


# -- E1: the results archive must be this request's -------------------------------------------------------------


def test_a_results_link_of_another_request_is_never_taken_for_this_subjects_archive(
        sandbox: Sandbox, hostile: HostileServer, tmp_path: Path) -> None:
    sandbox.set_workspace(include_live_profile=True)
    sandbox.seed_profile({"email": "jane@example.com"}, attributes={"name": "Jane Doe"})
    sandbox.seed_profile({"email": "omar@example.com"}, attributes={"name": "Omar Said", "diagnosis": "private"})
    handle = connector(sandbox, hostile)
    links: dict[str, str] = {}

    def watch(seen: Any, forward: Any) -> Answer:
        reply: Answer = forward()
        body = reply.json()
        if isinstance(body, dict) and body.get("results_url"):
            links.setdefault(body["subject_request_id"], body["results_url"].replace(sandbox.url, hostile.url))
        return reply

    hostile.on("GET", r"^/v3/requests/[0-9a-f-]{36}$", watch)
    omar, _ = drive(handle, request("access", "OMAR-1", "omar@example.com"))
    assert omar.status == "completed", omar.message
    omars_link = links[omar.summary["subject_request_id"]]

    def swap(seen: Any, forward: Any) -> Answer:
        reply: Answer = forward()
        body = reply.json()
        if isinstance(body, dict) and body.get("request_status") == "completed":
            return reply.with_json({**body, "results_url": omars_link})
        return reply

    hostile.clear()
    hostile.on("GET", r"^/v3/requests/[0-9a-f-]{36}$", swap)
    req, state = completed_access(sandbox, handle, "JANE-1", "jane@example.com")
    result = handle.handle(replace(req, output_dir=str(tmp_path)), state)
    assert result.status == "pending" and result.state is not None, result.message
    assert "names another request" in result.message and not result.files
    assert not any(b"omar" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


# -- G1: the receipt's controller is checked without the Profile API --------------------------------------------


def test_a_receipt_from_another_workspace_is_refused_with_only_the_dsr_workspace_id_configured(
        sandbox: Sandbox, hostile: HostileServer) -> None:
    """No Profile API: dsr.workspace_id alone tells the connector which workspace its signed answers must name."""
    config = {k: v for k, v in config_for(hostile, sandbox, signatures="strict").items() if k != "profile"}
    config["dsr"]["workspace_id"] = 999  # the sandbox signs as its own workspace, not this one
    result = handle_for(config).handle(request("deletion"))
    assert result.status == "failed" and "other_workspace" in result.message, result.message
    (receipt,) = result.summary["receipts"]
    assert receipt["verified"] is False and receipt["reason"] == "other_workspace"
    config["dsr"]["workspace_id"] = sandbox.connector_config()["profile"]["workspace_id"]
    accepted = handle_for(config).handle(request("deletion", "host-req-2", "omar@example.com"))
    assert accepted.status == "pending" and accepted.summary["receipts"][0]["verified"] is True, accepted.message
