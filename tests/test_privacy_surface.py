"""mParticle's wider privacy surface through the command line, against the sandbox: cancel (and later
portability, suppression, deadlines, partner status and evidence). Each test drives ``mparticle-dsr`` as a
person would and checks what the sandbox, standing in for mParticle, then holds."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from connector_mparticle.api.opendsr import read_time
from connector_mparticle.api.partners import partner_summary, read_partners
from connector_mparticle.cli import main
from connector_mparticle.flows.deadlines import PartOutlook, deadline
from connector_mparticle.flows.evidence import evidence_record, write_evidence
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.settings import parse_settings
from dsr_framework.models import Result
from dsr_framework.redact import Redactor
from tests.support.hosting import drive, mparticle, request
from tests.support.mp import WORKSPACE, batch, dsr_body

SECRETS = {"MP_WORKSPACE_KEY": "sbx-wk-7c2f9e4a", "MP_WORKSPACE_SECRET": "sbx-ws-Q8vT3nLp6Rz2Xk9M",
           "MP_INPUT_KEY": "sbx-ik-5b8d1e6f", "MP_INPUT_SECRET": "sbx-is-H4mW7cJt2Yq9Ns5D"}
PARTNERS = [{"domain": "braze.com", "name": "Braze", "outcome": "sent"},
            {"domain": "amplitude.com", "name": "Amplitude", "outcome": "failed",
             "status_message": "the partner answered HTTP 500"}]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def cli_config(sb: Sandbox, path: Path, **extra: Any) -> Path:
    """The sandbox's connector settings with the secrets as ``${NAME}`` references, as a person writes them."""
    config = sb.connector_config(polling={"min_interval_seconds": 0.2, "max_interval_seconds": 2})
    config.pop("profile")
    config["dsr"]["auth"].update(key="${MP_WORKSPACE_KEY}", secret="${MP_WORKSPACE_SECRET}")
    config["inputs"]["auth"].update(key="${MP_INPUT_KEY}", secret="${MP_INPUT_SECRET}")
    config.update(extra)
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)


def answer(outcome: Any) -> dict[str, Any]:
    return json.loads(outcome.stdout[outcome.stdout.index("{"):])


def saved(state: Path) -> dict[str, Any]:
    return json.loads(state.read_text())


def slow_erasure(sb: Sandbox, pending: float = 60.0) -> None:
    """Erasures wait ``pending`` seconds before mParticle runs them (the waiting period, compressed)."""
    sb.admin.set_durations(erasure=(pending, 0.3))


# -- cancel -----------------------------------------------------------------------------------------------------


def test_a_pending_erasure_is_cancelled_and_mparticle_shows_it_cancelled(sandbox: Sandbox, tmp_path: Path,
                                                                          env: None) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    slow_erasure(sandbox)
    config, state = cli_config(sandbox, tmp_path / "mp.yaml"), tmp_path / "erase.json"
    submitted = cli("delete", "--config", str(config), "--email", "jane@example.com", "--state", str(state))
    assert submitted.exit_code == 3, submitted.output
    cancelled = cli("cancel", "--config", str(config), "--state", str(state))
    assert cancelled.exit_code == 0, cancelled.output
    result = answer(cancelled)
    assert result["status"] == "completed" and result["summary"]["cancel"]["outcome"] == "cancelled"
    assert result["summary"]["cancel"]["cancellation_receipts"][0]["verified"] is True
    [dsr] = sandbox.dsrs()
    assert dsr["request_status"] == "cancelled"
    assert saved(state)["result"]["status"] == "completed"  # resuming it sends nothing
    again = cli("delete", "--config", str(config), "--state", str(state))
    assert again.exit_code == 0 and len(sandbox.dsrs()) == 1
    assert sandbox.profile(str(jane["mpid"])) is not None  # nothing was erased


def test_a_cancel_after_the_waiting_period_is_refused_with_the_reason_and_the_partners(
        sandbox: Sandbox, tmp_path: Path, env: None) -> None:
    sandbox.set_workspace(forwarding_partners=PARTNERS)
    sandbox.seed_profile({"email": "jane@example.com"})
    slow_erasure(sandbox)
    config, state = cli_config(sandbox, tmp_path / "mp.yaml"), tmp_path / "erase.json"
    assert cli("delete", "--config", str(config), "--email", "jane@example.com", "--state", str(state)).exit_code == 3
    before = saved(state)
    [dsr] = sandbox.dsrs()
    sandbox.admin.force_status(dsr["subject_request_id"], "completed")
    refused = cli("cancel", "--config", str(config), "--state", str(state))
    assert refused.exit_code == 1, refused.output
    result = answer(refused)
    assert result["error"]["class"] == "rejected"
    assert "too late to cancel" in result["message"] and "only while it is pending" in result["message"]
    assert "partners that already received the erasure: Braze" in result["message"]
    assert result["summary"]["partners_sent"] == ["Braze"]
    assert saved(state) == before  # the request goes on from where it was
    assert sandbox.dsrs()[0]["request_status"] == "completed"


def test_a_repeated_cancel_is_recognised_by_mparticles_refusal_and_its_status(sandbox: Sandbox) -> None:
    slow_erasure(sandbox)
    handle = mparticle(sandbox)
    first = handle.handle(request("deletion"))
    assert first.status == "pending"
    assert handle.cancel(request("deletion"), first.state).status == "completed"
    # a host that lost the answer cancels again with the same state: mParticle refuses the second DELETE (the
    # request is no longer pending) and its status shows it cancelled, which is what the result rests on
    repeat = handle.cancel(request("deletion"), first.state)
    assert repeat.status == "completed", repeat.message
    assert len([c for c in sandbox.admin.request_log(api="dsr") if c["method"] == "DELETE"]) == 2
    assert [d["request_status"] for d in sandbox.dsrs()] == ["cancelled"]
    after = handle.handle(request("deletion"), first.state)  # a host that keeps driving it is told why
    assert after.status == "failed" and "cancelled in mParticle" in after.message


def test_cancel_without_any_state_finds_the_request_by_its_id(sandbox: Sandbox) -> None:
    slow_erasure(sandbox)
    handle = mparticle(sandbox)
    assert handle.handle(request("deletion")).status == "pending"
    result = handle.cancel(request("deletion"), None)
    assert result.status == "completed" and sandbox.dsrs()[0]["request_status"] == "cancelled"
    # without a state the id is derived from the identifiers: mParticle's 404 says only that it holds nothing
    # under them (the request may have been sent under others), never that a request was withdrawn
    never = handle.cancel(request("deletion", request_id="never-sent"), None)
    assert never.status == "failed" and never.error is not None and never.error.error_class == "configuration"
    assert "holds no erasure request under the ids derived" in never.message and "withdrawn" not in never.message
    assert "cancel it with the state" in never.message
    assert len(sandbox.dsrs()) == 1


def test_an_opt_out_has_nothing_to_cancel(sandbox: Sandbox) -> None:
    result = mparticle(sandbox).cancel(request("opt_out"))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "rejected"


# -- portability --------------------------------------------------------------------------------------------------


def test_a_portability_request_is_sent_as_such_and_yields_normalised_files(sandbox: Sandbox, tmp_path: Path,
                                                                           env: None) -> None:
    sandbox.set_workspace(include_live_profile=True, gdpr_purposes=["marketing"])
    sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-42"},
                         attributes={"$firstname": "Jane", "motto": "=HYPERLINK(\"http://x\")"},
                         batches=[batch(consent_state={"gdpr": {"marketing": {
                             "consented": True, "document": "privacy-v2", "timestamp_unixtime_ms": 1764400000000}}}),
                             batch()], audiences=["High value"])
    config, out = cli_config(sandbox, tmp_path / "mp.yaml"), tmp_path / "out"
    done = cli("portability", "--config", str(config), "--customer-id", "c-42", "--email", "jane@example.com",
               "--out", str(out), "--wait")
    assert done.exit_code == 0, done.output
    result = answer(done)
    [dsr] = sandbox.dsrs()
    assert dsr["subject_request_type"] == "portability" and result["request_type"] == "portability"
    names = {Path(f["path"]).name: f for f in result["files"]}
    original = next(n for n in names if n.endswith(".zip"))
    portable = json.loads((out / next(n for n in names if n.endswith("-portable.json"))).read_text())
    assert portable["archives"] == [{"file": original, "sha256": names[original]["sha256"]}]
    assert {(r["type"], r["value"]) for r in portable["identities"]} >= {("email", "jane@example.com"),
                                                                         ("customer_id", "c-42")}
    assert {"name": "$firstname", "value": "Jane"}.items() <= next(
        r for r in portable["attributes"] if r["name"] == "$firstname").items()
    assert [(r["regulation"], r["purpose"], r["consented"]) for r in portable["consent"]] == [
        ("gdpr", "marketing", True)]
    assert [r["audience_name"] for r in portable["audiences"]] == ["High value"]
    events = [e for b in portable["batches"] for e in b["events"]]
    assert [e["event_name"] for e in events] == ["Viewed Pricing", "Viewed Pricing"]
    assert events[0]["timestamp_utc"] == "2025-11-29T07:06:40.000Z"
    events_csv = (out / next(n for n in names if n.endswith("-events.csv"))).read_text().splitlines()
    assert events_csv[0].startswith("mpid,source,event_type,event_name") and len(events_csv) == 3
    attributes_csv = (out / next(n for n in names if n.endswith("-attributes.csv"))).read_text()
    assert "'=HYPERLINK" in attributes_csv  # a spreadsheet shows it, never runs it
    for name, entry in names.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
        assert (out / name).stat().st_mode & 0o777 == 0o600
    assert result["summary"]["portable"]["rows"]["events"] == 2


def test_an_access_request_stays_access_and_writes_no_tables(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"}, batches=[batch()])
    result, _ = drive(mparticle(sandbox), request("access", output_dir=str(tmp_path)))
    assert result.status == "completed" and sandbox.dsrs()[0]["subject_request_type"] == "access"
    assert not [f for f in result.files if f.path.endswith(".csv")] and "portable" not in result.summary


# -- suppression while the erasure waits -----------------------------------------------------------------------


def test_with_suppression_on_the_subject_carries_the_attribute_while_waiting_and_loses_it_on_cancel(
        sandbox: Sandbox, tmp_path: Path, env: None) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"}, attributes={"plan": "pro"})
    bob = sandbox.seed_profile({"email": "bob@example.com"})
    slow_erasure(sandbox)
    config = cli_config(sandbox, tmp_path / "mp.yaml",
                        erasure={"suppress_while_waiting": True, "suppression_attribute": "privacy_hold"})
    state = tmp_path / "erase.json"
    waiting = cli("delete", "--config", str(config), "--email", "jane@example.com", "--state", str(state))
    assert waiting.exit_code == 3, waiting.output
    assert answer(waiting)["summary"]["suppression"] == {"attribute": "privacy_hold", "set": True,
                                                         "mpid": str(jane["mpid"])}
    assert sandbox.profile(str(jane["mpid"]))["attributes"] == {"plan": "pro", "privacy_hold": True}
    assert "privacy_hold" not in sandbox.profile(str(bob["mpid"]))["attributes"]
    resumed = cli("delete", "--config", str(config), "--state", str(state))  # a status check marks nothing again
    assert resumed.exit_code == 3 and "suppression" not in answer(resumed)["summary"]
    cancelled = cli("cancel", "--config", str(config), "--state", str(state))
    assert cancelled.exit_code == 0, cancelled.output
    assert answer(cancelled)["summary"]["suppression"]["removed"] is True
    assert sandbox.profile(str(jane["mpid"]))["attributes"] == {"plan": "pro"}


def test_suppression_is_off_unless_configured(sandbox: Sandbox) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com"})
    slow_erasure(sandbox)
    result = mparticle(sandbox).handle(request("deletion"))
    assert result.status == "pending" and "suppression" not in result.summary
    assert sandbox.profile(str(jane["mpid"]))["attributes"] == {}
    assert sandbox.stats()["batches_stored"] == 0


# -- deadlines ----------------------------------------------------------------------------------------------------


def _day_long_erasures(sb: Sandbox) -> None:
    """Erasures wait two days (the sandbox halves that with skip_waiting_period), then take a minute."""
    sb.admin.set_durations(erasure=(2 * 86400.0, 60.0))


def _tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(hours=20)).isoformat(timespec="seconds")


@pytest.mark.parametrize(("policy", "skipped"), [("when_at_risk", True), ("always", True), ("never", False)])
def test_a_request_due_tomorrow_is_reported_at_risk_and_skips_the_wait_under_the_policy(
        sandbox: Sandbox, tmp_path: Path, env: None, policy: str, skipped: bool) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    _day_long_erasures(sandbox)
    config = cli_config(sandbox, tmp_path / "mp.yaml", erasure={"skip_waiting_period": policy})
    sent = cli("delete", "--config", str(config), "--email", "jane@example.com", "--due", _tomorrow())
    assert sent.exit_code == 3, sent.output
    result = answer(sent)
    [dsr] = sandbox.dsrs()
    extension = dsr["extensions_sent"].get("opendsr.mparticle.com") or {}
    assert extension.get("skip_waiting_period", False) is skipped
    outlook = result["summary"]["deadline"]
    assert outlook["at_risk"] is True and outlook["expected_from"] == "mparticle" and outlook["due_from"] == "request"
    assert "at risk: mParticle expects completion at" in result["message"]


def test_a_request_with_time_to_spare_is_not_at_risk_and_waits(sandbox: Sandbox, tmp_path: Path, env: None) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    _day_long_erasures(sandbox)
    config = cli_config(sandbox, tmp_path / "mp.yaml", erasure={"skip_waiting_period": "when_at_risk"})
    sent = cli("delete", "--config", str(config), "--email", "jane@example.com")  # GDPR: due in a month
    result = answer(sent)
    assert "skip_waiting_period" not in json.dumps(sandbox.dsrs()[0]["extensions_sent"])
    assert result["summary"]["deadline"]["at_risk"] is False
    assert result["summary"]["deadline"]["due_from"] == "gdpr default" and "at risk" not in result["message"]


def test_mparticles_wait_counts_from_when_it_receives_the_request_not_from_when_the_subject_asked(
        sandbox: Sandbox) -> None:
    """N9: a GDPR erasure the subject asked for 25 days ago is due in 5; mParticle's 7-day wait and 14 days of
    processing start when it is sent today, so it is at risk and, under ``when_at_risk``, skips the wait. (Counted
    from the subject's request, the wait would have ended days ago and nothing would be at risk.)"""
    sandbox.seed_profile({"email": "jane@example.com"})
    asked = replace(request("deletion"), submitted_at=datetime.now(UTC) - timedelta(days=25))
    result = mparticle(sandbox, erasure={"skip_waiting_period": "when_at_risk"}).handle(asked)
    assert result.status == "pending", result
    [dsr] = sandbox.dsrs()
    assert dsr["extensions_sent"]["opendsr.mparticle.com"]["skip_waiting_period"] is True
    assert result.summary["deadline"]["due_from"] == "gdpr default"


def test_a_completion_time_already_past_is_no_promise_the_request_is_done_on_time(sandbox: Sandbox) -> None:
    """While a request is not complete, neither mParticle's expected completion nor the documented estimate
    counts as earlier than now: one that passed yesterday, for a request due an hour ago, is at risk."""
    settings = parse_settings(sandbox.connector_config())
    now = datetime.now(UTC)
    due = replace(request("deletion"), submitted_at=now - timedelta(days=40), due_at=now - timedelta(hours=1))
    for expected in (now - timedelta(days=1), None):
        outlook = deadline(due, settings, [PartOutlook(expected, now - timedelta(days=39), False)], now)
        assert outlook.at_risk and outlook.expected >= now, (expected, outlook)


def test_a_part_mparticle_gave_no_time_for_counts_at_the_documented_estimate(sandbox: Sandbox) -> None:
    """A request split in two (email, and the mpid alone): mParticle's time for one part must not hide that the
    other, with none, may take mParticle's documented 21 days."""
    settings = parse_settings(sandbox.connector_config())
    now = datetime.now(UTC)
    due = replace(request("deletion"), submitted_at=now, due_at=now + timedelta(days=3))
    soon = now + timedelta(hours=1)
    assert not deadline(due, settings, [PartOutlook(soon, now, False)] * 2, now).at_risk
    split = deadline(due, settings, [PartOutlook(soon, now, False), PartOutlook(None, now, False)], now)
    assert split.at_risk and split.expected_from == "estimate" and split.expected > due.due_at  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["deletion", "access"])
def test_a_request_asked_for_in_the_year_9999_stays_pending_once_mparticle_holds_it(sandbox: Sandbox,
                                                                                      kind: str) -> None:
    """The deadline is worked out after mParticle accepted the request: times at the end of the calendar must
    not crash the call into failed/internal and lose the state."""
    odd = replace(request(kind), submitted_at=datetime(9999, 12, 20, tzinfo=UTC))
    sandbox.set_durations(erasure=(600, 600), access=(600, 600))
    first = mparticle(sandbox).handle(odd)
    assert first.status == "pending" and first.state, first.message
    again = mparticle(sandbox).handle(odd, first.state)
    assert again.status == "pending" and again.summary["deadline"]["due_at"].startswith("9999-12-31")


# -- partner status ----------------------------------------------------------------------------------------------


def test_partner_statuses_are_listed_and_a_failed_partner_is_reported(sandbox: Sandbox, tmp_path: Path,
                                                                     env: None) -> None:
    sandbox.set_workspace(forwarding_partners=PARTNERS)
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-42"})
    config, state = cli_config(sandbox, tmp_path / "mp.yaml"), tmp_path / "erase.json"
    done = cli("delete", "--config", str(config), "--email", "jane@example.com", "--customer-id", "c-42", "--state",
               str(state), "--wait")
    assert done.exit_code == 0, done.output
    result = answer(done)
    assert result["status"] == "completed" and sandbox.profile(str(jane["mpid"])) is None  # mParticle's part
    summary = result["summary"]
    assert [(p["name"], p["status"]) for p in summary["partners"]] == [("Braze", "sent"), ("Amplitude", "failed")]
    assert summary["partners"][1]["status_message"] == "the partner answered HTTP 500"
    assert summary["partner_counts"] == {"sent": 1, "failed": 1} and summary["partners_failed"] == ["Amplitude"]
    assert "could not forward the erasure to Amplitude" in result["message"]


def test_an_erasure_without_partners_says_nothing_of_them(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    result, _ = drive(mparticle(sandbox), request("deletion"))
    assert result.status == "completed" and "partners" not in result.summary
    assert "forward" not in result.message


def test_forwarding_entries_in_an_unexpected_form_are_unreadable_never_sent() -> None:
    entries = read_partners([{"domain": "braze.com", "name": "Braze", "status": "sent", "status_message": None},
                             {"domain": "x.com", "name": "X", "status": "deleted"}, "nonsense",
                             {"domain": 7, "name": "Y", "status": "sent"}])
    assert [e.status for e in entries] == ["sent", "unreadable", "unreadable", "unreadable"]
    assert read_partners(None) == ()
    # an object keyed by domain (or any shape but the documented list) is not "no partners": it is unreadable
    keyed = read_partners({"braze.com": {"domain": "braze.com", "name": "Braze", "status": "sent"}})
    assert [p.status for p in keyed] == ["unreadable"]
    assert partner_summary([p.to_dict() for p in keyed])["partners_failed"] == ["an unnamed partner"]
    assert partner_summary([e.to_dict() for e in entries])["partners_failed"] == [
        "an unnamed partner", "an unnamed partner", "an unnamed partner"]


# -- evidence -----------------------------------------------------------------------------------------------------

JANE = {"email": "jane.doe@example.com", "customer_id": "cust-8841", "phone": "+1 415 555 0199"}


def _personal_values(profile: dict[str, Any]) -> list[str]:
    """Everything that would identify Jane: her identifiers (and the parts of her email), her mpid, her name."""
    return [*JANE.values(), "jane.doe", "8841", "415 555", str(profile["mpid"]), "Jane", "Doe"]


def test_the_evidence_record_of_an_erasure_exists_and_holds_no_personal_data(sandbox: Sandbox, tmp_path: Path,
                                                                            env: None) -> None:
    sandbox.set_workspace(forwarding_partners=PARTNERS)
    jane = sandbox.seed_profile({"email": JANE["email"], "customer_id": JANE["customer_id"],
                                 "mobile_number": JANE["phone"]},
                                attributes={"$firstname": "Jane", "$lastname": "Doe"}, batches=[batch(JANE["email"])])
    config = cli_config(sandbox, tmp_path / "mp.yaml",
                        erasure={"suppress_while_waiting": True, "skip_waiting_period": "when_at_risk"})
    state, out = tmp_path / "erase.json", tmp_path / "receipts"
    done = cli("delete", "--config", str(config), "--email", JANE["email"], "--customer-id", JANE["customer_id"],
               "--phone", JANE["phone"], "--state", str(state), "--out", str(out), "--wait", "--due", _tomorrow())
    assert done.exit_code == 0, done.output
    written = cli("evidence", "--config", str(config), "--state", str(state), "--out", str(tmp_path / "evidence"))
    assert written.exit_code == 0, written.output
    path = Path(answer(written)["path"])
    text = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    for value in _personal_values(jane):
        assert value.lower() not in text.lower(), value
    record = json.loads(text)
    assert record["request"]["identifier_categories"] == ["customer_id", "email", "phone"]
    assert record["outcome"]["status"] == "completed" and record["verification"]["verified"] is True
    assert [r["kind"] for r in record["signed_receipts"]] == ["acknowledgement"]
    assert record["signed_receipts"][0]["verified"] is True and record["signed_receipts"][0]["signature"]
    actions = [step["action"] for step in record["status_history"]]
    assert actions[:2] == ["search before the erasure", "submit erasure request"] and "check status" in actions
    assert [(p["name"], p["status"]) for p in record["partners"]] == [("Braze", "sent"), ("Amplitude", "failed")]
    delivered = {f["name"]: f["sha256"] for f in record["files"]}
    assert delivered and all(hashlib.sha256((out / n).read_bytes()).hexdigest() == d for n, d in delivered.items())
    assert record["timings"]["due_from"] == "request" and record["timings"]["first_step"] is not None


def test_evidence_of_a_cancelled_request_keeps_the_cancellation_receipt(sandbox: Sandbox, tmp_path: Path,
                                                                       env: None) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    slow_erasure(sandbox)
    config, state = cli_config(sandbox, tmp_path / "mp.yaml"), tmp_path / "erase.json"
    assert cli("delete", "--config", str(config), "--email", "jane@example.com", "--state", str(state)).exit_code == 3
    assert cli("cancel", "--config", str(config), "--state", str(state)).exit_code == 0
    written = cli("evidence", "--config", str(config), "--state", str(state))
    record = json.loads(Path(answer(written)["path"]).read_text())
    assert record["outcome"]["cancelled"] is True
    assert [r["kind"] for r in record["signed_receipts"]] == ["acknowledgement", "cancellation"]
    assert "jane" not in json.dumps(record).lower()


def test_evidence_needs_a_result(sandbox: Sandbox, tmp_path: Path, env: None) -> None:
    config = cli_config(sandbox, tmp_path / "mp.yaml")
    missing = CliRunner().invoke(main, ["evidence", "--config", str(config), "--state", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "holds no result yet" in missing.output


def _audiences_in_an_export(sb: Sandbox, tmp_path: Path, name: str) -> list[str]:
    result, _ = drive(mparticle(sb), request("access", request_id=name, output_dir=str(tmp_path / name)))
    assert result.status == "completed", result.message
    return [a["audience_name"] for p in result.summary["profiles"] for a in p.get("audience_memberships") or []]


def test_the_sandbox_takes_a_suppressed_subject_out_of_audiences_until_the_erasure_is_cancelled(
        sandbox: Sandbox, tmp_path: Path) -> None:
    # guides/data-subject-requests: "set a user attribute and apply audience criteria ... to exclude them"
    sandbox.set_workspace(include_live_profile=True, audience_exclusions=["dsr_erasure_pending"])
    sandbox.seed_profile({"email": "jane@example.com"}, audiences=["High value"])
    assert _audiences_in_an_export(sandbox, tmp_path, "before") == ["High value"]
    slow_erasure(sandbox)
    handle = mparticle(sandbox, erasure={"suppress_while_waiting": True})
    waiting = handle.handle(request("deletion", request_id="erase"))
    assert waiting.summary["suppression"]["set"] is True
    assert _audiences_in_an_export(sandbox, tmp_path, "waiting") == []
    assert handle.cancel(request("deletion", request_id="erase"), waiting.state).status == "completed"
    assert _audiences_in_an_export(sandbox, tmp_path, "after") == ["High value"]


def test_a_request_id_holding_an_identifier_is_withheld_from_the_evidence(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"}, batches=[batch()])
    req = request("access", request_id="jane@example.com", output_dir=str(tmp_path / "out"))
    result, _ = drive(mparticle(sandbox), req)
    assert result.status == "completed" and result.files
    written = write_evidence(str(tmp_path / "evidence"), req, result, Redactor(()))
    text = Path(written.path).read_text()
    assert "jane" not in text.lower() and "jane" not in Path(written.path).name
    record = json.loads(text)
    assert record["request"]["request_id"].startswith("sha256:")
    assert all("withheld" in f["name"] for f in record["files"])


def test_partner_names_and_domains_the_server_wrote_are_masked_in_the_evidence() -> None:
    """A partner's name and domain are mParticle's free text: one that echoes the subject's email or phone is
    withheld like any other text the server wrote."""
    req = request("deletion", phone="+1 415 555 0100")
    partners = [{"subject_request_id": "s-1", "name": "Jane@Example.com's CRM", "domain": "14155550100.example",
                 "status": "failed"}, {"subject_request_id": "s-1", "name": "Braze", "domain": "braze.com",
                                       "status": "sent"}]
    result = Result("host-req-1", "deletion", "completed", "done", summary={"partners": partners})
    kept = evidence_record(req, result)["partners"]
    assert [(p["name"], p["domain"], p["status"]) for p in kept] == [
        ("[withheld]'s CRM", "[withheld].example", "failed"), ("Braze", "braze.com", "sent")]


def test_the_sandbox_waiting_period_is_a_setting_and_skipping_it_leaves_under_a_day(sandbox: Sandbox) -> None:
    week = 7 * 86400.0  # mParticle's documented waiting period
    sandbox.admin.set_durations(erasure=(week, 60.0))
    sent = time.time()
    waiting = requests.post(f"{sandbox.url}/v3/requests", json=dsr_body("erasure"), auth=WORKSPACE, timeout=10)
    skipping = requests.post(f"{sandbox.url}/v3/requests", auth=WORKSPACE, timeout=10, json=dsr_body(
        "erasure", email="sam@example.com",
        extensions={"opendsr.mparticle.com": {"skip_waiting_period": True}}))
    expected = [read_time(r.json()["expected_completion_time"], "a time").timestamp() - sent  # type: ignore[union-attr]
                for r in (waiting, skipping)]
    assert week < expected[0] < week + 120
    assert 86400 - 5 < expected[1] < 86400 + 120  # "less than 24 hours" of waiting, then processing
