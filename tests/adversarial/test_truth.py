"""The truth attack, class by class: "completed" means done, for the right person, and says no more than was
verified. Each case reproduces one class the attack broke, end to end through the sandbox (and the hostile proxy
where the attack needed one); ``tests/test_truth_properties.py`` states each guarantee over generated input.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

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
    assert "before the erasure" in " ".join(result.summary["not_verifiable"])
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


