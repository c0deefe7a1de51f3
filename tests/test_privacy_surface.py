"""mParticle's wider privacy surface through the command line, against the sandbox: cancel (and later
portability, suppression, deadlines, partner status and evidence). Each test drives ``mparticle-dsr`` as a
person would and checks what the sandbox, standing in for mParticle, then holds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.sandbox import Sandbox
from tests.support.hosting import drive, mparticle, request
from tests.support.mp import batch

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


def test_a_repeated_cancel_is_recognised_by_the_status_and_sends_nothing(sandbox: Sandbox) -> None:
    slow_erasure(sandbox)
    handle = mparticle(sandbox)
    first = handle.handle(request("deletion"))
    assert first.status == "pending"
    assert handle.cancel(request("deletion"), first.state).status == "completed"
    # a host that lost the answer cancels again with the same state: mParticle already shows it cancelled
    repeat = handle.cancel(request("deletion"), first.state)
    assert repeat.status == "completed", repeat.message
    assert len([c for c in sandbox.admin.request_log(api="dsr") if c["method"] == "DELETE"]) == 1
    after = handle.handle(request("deletion"), first.state)  # a host that keeps driving it is told why
    assert after.status == "failed" and "cancelled in mParticle" in after.message


def test_cancel_without_any_state_finds_the_request_by_its_id(sandbox: Sandbox) -> None:
    slow_erasure(sandbox)
    handle = mparticle(sandbox)
    assert handle.handle(request("deletion")).status == "pending"
    result = handle.cancel(request("deletion"), None)
    assert result.status == "completed" and sandbox.dsrs()[0]["request_status"] == "cancelled"
    never = handle.cancel(request("deletion", request_id="never-sent"), None)
    assert never.status == "completed" and never.summary["cancel"]["outcome"] == "not_submitted"
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
    assert [e["event_name"] for e in portable["events"]] == ["Viewed Pricing", "Viewed Pricing"]
    assert portable["events"][0]["timestamp_utc"] == "2025-11-29T07:06:40.000Z"
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
