"""The connector end to end against the sandbox: each capability, and the end state mParticle holds."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.sandbox import Sandbox
from dsr_framework.validation import framework_validator
from tests.support.hosting import drive, file_stem, mparticle, request
from tests.support.mp import batch

SEEDED_EVENTS = [batch(), batch()]
#: Jane's workspace makes email a login id too; the connector is told so (identity_strategy).
JANE_WORKSPACE = {"identity_strategy": {"login_ids": ["customer_id", "email"]}}


def seed_jane(sb: Sandbox) -> dict[str, object]:
    # Jane's workspace: email is a login id too (so an email alone finds her customer-id profile), it defines
    # the GDPR purposes the opt-outs use, and it includes the live profile in access results.
    sb.set_workspace(identity={"login_ids": ["customer_id", "email"]}, gdpr_purposes=["marketing", "analytics"],
                     include_live_profile=True)
    return sb.seed_profile({"email": "jane@example.com", "customer_id": "c-42"},
                           attributes={"$firstname": "Jane", "plan": "pro"}, batches=SEEDED_EVENTS,
                           consent={"gdpr": {"marketing": {"consented": True, "timestamp_unixtime_ms": 1}}},
                           audiences=["High value"])


def test_connection_check_passes_each_api_with_a_latency(sandbox: Sandbox) -> None:
    outcome = mparticle(sandbox).test_connection()
    assert outcome.ok
    assert [c.name for c in outcome.checks] == ["dsr_api", "events_api", "identity_api", "profile_api"]
    assert all(sandbox.url.removeprefix("http://") in c.message for c in outcome.checks), "each names its host"
    assert all(c.latency_ms is not None and c.latency_ms >= 0 for c in outcome.checks)
    assert sandbox.find_profiles() == [], "the checks must not create profiles"
    assert sandbox.dsrs() == [], "the checks must not create DSRs"


@pytest.mark.parametrize(("which", "expected"), [
    ("dsr", "the DSR API rejected the workspace key and secret"),
    ("inputs", "the Events API rejected the input key and secret"),
])
def test_wrong_credentials_read_as_a_friendly_failed_check(sandbox: Sandbox, which: str, expected: str) -> None:
    config = sandbox.connector_config()
    config[which]["auth"]["secret"] = "definitely-wrong-secret"
    handle = mparticle(sandbox, **{which: config[which]})
    outcome = handle.test_connection()
    assert not outcome.ok
    failed = [c for c in outcome.checks if not c.ok]
    assert failed[0].message.startswith(expected)
    assert failed[0].error_class == "authentication"
    assert "definitely-wrong-secret" not in json.dumps(outcome.to_dict())
    if which == "inputs":
        assert [c.name for c in failed] == ["events_api", "identity_api"]


def test_access_downloads_results_that_match_the_seeded_data(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_jane(sandbox)
    result, calls = drive(mparticle(sandbox), request("access", output_dir=str(tmp_path)))
    assert result.status == "completed", result.message
    assert calls == 2, "submit, then one status check at the expected completion time"
    assert result.summary["profiles_found"] == 1 and result.summary["event_batches"] == 2
    assert result.summary["identities"] == {"customer_id": ["c-42"], "email": ["jane@example.com"]}
    assert result.summary["profiles"][0]["user_attributes"] == {"$firstname": "Jane", "plan": "pro"}
    assert [a["audience_name"] for a in result.summary["profiles"][0]["audience_memberships"]] == ["High value"]
    archive, summary_json, summary_txt, receipt = (Path(f.path) for f in result.files)
    assert [r["verified"] for r in json.loads(receipt.read_text())["receipts"]] == [True]
    assert archive.parent == tmp_path and archive.suffix == ".zip"
    with zipfile.ZipFile(archive) as zf:
        batch_file = next(n for n in zf.namelist() if n.endswith(".jsonl") and n != "profile.jsonl")
        lines = zf.read(batch_file).decode().splitlines()
    # mParticle keeps batches in its stored form (static/downloads/portability-response-sample.zip), not as sent.
    def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(e["event_type"], e["data"]["event_name"]) for e in events]

    assert [names(json.loads(line)["events"]) for line in lines] == [names(b["events"]) for b in SEEDED_EVENTS]
    written = json.loads(summary_json.read_text())
    assert written["results"]["profiles_found"] == 1 and written["request"]["request_id"] == "host-req-1"
    assert written["request"]["identities"] == {"email": "j***@e***.com"}  # masked: files get passed around
    assert [r["subject_request_id"] for r in written["mparticle"]["requests"]] == [result.summary["subject_request_id"]]
    assert "Profiles found: 1" in summary_txt.read_text()
    import hashlib

    assert result.files[0].sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert list(framework_validator("result").iter_errors(result.to_dict())) == []


def test_access_for_an_unknown_subject_completes_with_no_data(sandbox: Sandbox, tmp_path: Path) -> None:
    result, _ = drive(mparticle(sandbox), request("access", email="nobody@example.com", customer_id="c-0",
                                                 output_dir=str(tmp_path)))
    assert result.status == "completed"
    assert result.summary["data_found"] is False and "holds no data" in result.message
    assert result.verification is not None and result.verification.status == "not_applicable"
    # A summary still records what was asked and what mParticle answered; there is no archive to keep.
    name = file_stem("mparticle-access", request("access", email="nobody@example.com", customer_id="c-0"))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        Path(f.path).name for f in result.files) == [f"{name}-receipt.json", f"{name}-summary.json",
                                                     f"{name}-summary.txt"]
    assert "holds no data" in (tmp_path / f"{name}-summary.txt").read_text()


def test_an_access_without_a_login_id_never_says_mparticle_holds_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    """Issue 21: mParticle's export does not reach a known profile (one with a customer id, the default login id)
    through its email alone; "no data" for it is not "mParticle holds nothing", and the result says why as data."""
    sandbox.seed_profile({"email": "olga@example.com", "customer_id": "c-9"})
    result, _ = drive(mparticle(sandbox), request("access", email="olga@example.com", output_dir=str(tmp_path)))
    assert result.status == "completed" and result.unverified
    assert "holds no data" not in result.message and "not proof" in result.message
    assert result.verification is not None
    [reason] = result.verification.reasons
    assert reason.code == "login_id_required" and reason.identifiers == ("customer_id",)


def test_deletion_erases_the_profile_and_verifies_it_is_gone(sandbox: Sandbox) -> None:
    jane = seed_jane(sandbox)
    bob = sandbox.seed_profile({"email": "bob@example.com"})
    result, _ = drive(mparticle(sandbox, **JANE_WORKSPACE), request("deletion", customer_id="c-42"))
    assert result.status == "completed" and result.summary["verified"] is True, result.message
    assert sandbox.profile(str(jane["mpid"])) is None
    assert sandbox.profile(str(bob["mpid"])) is not None
    [dsr] = sandbox.dsrs()
    assert dsr["subject_request_type"] == "erasure" and dsr["group_id"] == "host-req-1"
    assert dsr["identities"] == {"email": "jane@example.com", "customer_id": "c-42"}
    actions = [event.action for event in result.audit]
    assert actions[:2] == ["search before the erasure", "submit erasure request"]  # what the erasure can reach
    assert result.audit[0].outcome == "found a profile"
    assert "verify erasure: email by identity search" in actions
    assert "verify erasure: customer_id by identity search" in actions


def test_deletion_of_someone_mparticle_never_had_completes_and_says_what_it_cannot_rule_out(sandbox: Sandbox) -> None:
    """Nothing holds the request's customer_id: the erasure completes, but finding nothing afterwards cannot tell
    "never had" from "had under another customer_id" (a known profile only its own login id reaches)."""
    result, _ = drive(mparticle(sandbox), request("deletion", email="ghost@example.com", customer_id="c-0"))
    assert result.status == "completed" and result.summary["verified"] is False
    (limit,) = result.summary["not_verifiable"]
    assert limit.startswith("no profile matched the request's customer_id when it was first looked up")


def test_a_deletion_without_a_login_id_says_known_profiles_could_not_be_reached(sandbox: Sandbox) -> None:
    """mParticle's default identity strategy makes customer_id a login id: a DSR with an email alone does not
    reach (and a search cannot see) a profile that has one, so "gone" cannot be claimed for it."""
    known = sandbox.seed_profile({"email": "kim@example.com", "customer_id": "c-7"})
    result, _ = drive(mparticle(sandbox), request("deletion", email="kim@example.com"))
    assert result.status == "completed" and result.summary["verified"] is False and result.unverified
    assert result.message.startswith("mParticle completed the erasure, but it is not verified")
    assert "customer_id" in result.message
    assert result.verification is not None
    assert [r.code for r in result.verification.reasons] == ["login_id_required"]
    assert sandbox.profile(str(known["mpid"])) is not None  # it was indeed out of reach
    strict = mparticle(sandbox, verification={"unverifiable": "fail"})
    failed, _ = drive(strict, request("deletion", request_id="host-req-2", email="kim@example.com"))
    assert failed.status == "failed" and failed.error is not None and failed.error.error_class == "verification"


def test_an_erasure_mparticle_completed_is_not_failed_by_a_verification_that_cannot_run(sandbox: Sandbox) -> None:
    """Issue 21: the Identity API refusing a wrong input secret after mParticle completed the erasure is a local
    problem: the result stays pending, says first that mParticle completed the erasure, names the fix in
    ``action_required``, and calling again after the fix verifies the same erasure (nothing is sent twice)."""
    known = sandbox.seed_profile({"email": "kim@example.com", "customer_id": "c-7"})
    req = request("deletion", email="kim@example.com", customer_id="c-7")
    inputs = sandbox.connector_config()["inputs"]
    inputs["auth"]["secret"] = "a-wrong-input-secret"
    stopped, _ = drive(mparticle(sandbox, inputs=inputs), req)
    assert stopped.status == "pending" and stopped.state and stopped.error is None
    assert stopped.message.startswith("mParticle completed the erasure"), stopped.message
    assert stopped.action_required is not None and stopped.action_required.error_class == "authentication"
    assert sandbox.profile(str(known["mpid"])) is None  # the erasure did happen
    done, _ = drive(mparticle(sandbox), req, state=dict(stopped.state))
    assert done.status == "completed" and done.verification is not None and len(sandbox.dsrs()) == 1
    # The search before the erasure could not run with that secret either (the erasure was not held up for
    # it): the checks now find nobody, but that cannot confirm the erasure reached a profile.
    assert [r.code for r in done.verification.reasons] == ["no_baseline"], done.verification


def test_deletion_still_found_after_the_grace_period_fails_verification(sandbox: Sandbox) -> None:
    handle = mparticle(sandbox, verification={"grace_period_seconds": 0.4, "attempts": 3})
    first = handle.handle(request("deletion"))
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    sandbox.seed_profile({"email": "jane@example.com"})  # arrives after the erasure ran: erasure can't block it
    result, calls = drive(handle, request("deletion"), state=dict(first.state or {}))
    assert result.status == "failed" and result.error is not None
    assert result.error.error_class == "verification"
    assert "still matches email after 3 check(s)" in result.message
    assert calls == 3


def test_opt_out_records_consent_on_the_profile(sandbox: Sandbox) -> None:
    jane = seed_jane(sandbox)
    handle = mparticle(sandbox, opt_out={"gdpr_purposes": ["marketing", "analytics"], "document": "privacy_v3"})
    result = handle.handle(request("opt_out", regulation="ccpa"))
    assert result.status == "completed", result.message
    profile = sandbox.profile(str(jane["mpid"]))
    assert profile is not None
    consent = profile["consent_state"]
    assert consent["ccpa"]["data_sale_opt_out"]["consented"] is True
    assert consent["gdpr"]["marketing"]["consented"] is False and consent["gdpr"]["analytics"]["consented"] is False
    assert consent["gdpr"]["marketing"]["document"] == "privacy_v3"
    assert consent["ccpa"]["data_sale_opt_out"]["timestamp_unixtime_ms"] == 1795946400000  # when the subject asked
    assert result.summary["mpid"] == jane["mpid"]


def test_opt_out_for_an_unknown_subject_changes_nothing(sandbox: Sandbox) -> None:
    result = mparticle(sandbox).handle(request("opt_out", email="nobody@example.com"))
    assert result.status == "completed"
    assert result.summary["profile_found"] is False and result.summary["consent_changed"] is False
    assert sandbox.find_profiles() == []
    assert [e["api"] for e in sandbox.request_log()] == ["identity"]


def test_an_opt_out_by_mpid_without_the_profile_api_says_in_the_result_what_it_could_not_check(
        sandbox: Sandbox) -> None:
    """Issue 21 (attack report A5): what could not be checked is data, not only prose, and
    ``verification.unverifiable: fail`` applies to opt-outs too, before anything is written."""
    from dsr_framework.host import load_host

    known = sandbox.seed_profile({"email": "mo@example.com", "customer_id": "c-mo"})

    def without_profile_api(**settings: Any) -> Any:
        config = sandbox.connector_config(**settings)
        config.pop("profile", None)
        return load_host({"connectors": {"mparticle": {"enabled": True, "config": config}}}).connector("mparticle")

    req = request("opt_out", email=None, vendor_id=str(known["mpid"]))
    result = without_profile_api().handle(req)
    assert result.status == "completed" and result.unverified, result.message
    assert result.verification is not None
    assert [(r.code, r.identifiers) for r in result.verification.reasons] == [("api_not_configured", ("vendor_id",))]
    strict = without_profile_api(verification={"unverifiable": "fail"})
    sent = len([e for e in sandbox.request_log() if e["api"] == "events"])
    failed = strict.handle(request("opt_out", request_id="host-req-2", email=None, vendor_id=str(known["mpid"])))
    assert failed.status == "failed" and failed.error is not None and failed.error.error_class == "verification"
    assert len([e for e in sandbox.request_log() if e["api"] == "events"]) == sent  # nothing was written


def test_opt_out_twice_records_consent_once(sandbox: Sandbox) -> None:
    jane = seed_jane(sandbox)
    handle = mparticle(sandbox)
    first, second = handle.handle(request("opt_out")), handle.handle(request("opt_out"))
    assert first.status == second.status == "completed"
    profile = sandbox.profile(str(jane["mpid"]))
    assert profile is not None and profile["event_batch_count"] == len(SEEDED_EVENTS) + 1


def test_access_with_oauth_credentials_works_end_to_end(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_jane(sandbox)
    result, _ = drive(mparticle(sandbox, oauth=True), request("access", output_dir=str(tmp_path)))
    assert result.status == "completed" and result.summary["profiles_found"] == 1
    public = ("/v3/discovery", "/dsr/opendsr_cert.pem")  # what signature checks fetch: public by design (spec 8.8)
    assert {e["client"] for e in sandbox.request_log()
            if e["api"] in ("dsr", "identity", "events") and e["path"] not in public} == {"oauth"}


def test_no_secret_or_raw_email_appears_in_logs_or_results(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed_jane(sandbox)
    creds = sandbox.credentials()
    handle = mparticle(sandbox)
    sandbox.set_faults(identity={"force_429": 1, "retry_after": 0})
    with caplog.at_level(logging.DEBUG):
        results = [drive(handle, request("access", output_dir=str(tmp_path)))[0],
                   handle.handle(request("opt_out", request_id="r-2")),
                   drive(handle, request("deletion", request_id="r-3"))[0],
                   handle.test_connection()]
    text = json.dumps([r.to_dict() for r in results]) + "\n".join(r.getMessage() for r in caplog.records)
    for name in ("workspace_secret", "input_secret", "workspace_key", "input_key"):
        assert creds[name] not in text, name
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "retries are logged"
    assert "jane@example.com" not in logged


def test_results_written_only_inside_the_output_directory(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_jane(sandbox)
    out = tmp_path / "nested" / "out"
    result, _ = drive(mparticle(sandbox), request("access", request_id="tenant:42@eu", output_dir=str(out)))
    assert result.status == "completed"
    assert all(Path(f.path).resolve().parent == out.resolve() for f in result.files)
    name = file_stem("mparticle-access", request("access", request_id="tenant:42@eu"))
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [*(Path(f.path).name for f in result.files), f".{name}.delivered"])
    assert Path(result.files[0].path).name == f"{name}.zip" and name.startswith("mparticle-access-tenant_42_eu-")


def test_archive_is_readable_with_the_standard_library(sandbox: Sandbox, tmp_path: Path) -> None:
    seed_jane(sandbox)
    result, _ = drive(mparticle(sandbox), request("access", output_dir=str(tmp_path)))
    data = Path(result.files[0].path).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        profile = json.loads(zf.read("profile.jsonl"))
    assert profile["user_attributes"]["$firstname"] == "Jane"
