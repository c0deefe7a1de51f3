"""``mparticle-dsr batch``: the plan before anything is sent, every local problem before the first call, a report,
the exit codes, and the words "sending"/"resuming" only when something is about to be sent."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.sandbox import Sandbox
from dsr_framework.batch import Backlog
from tests.test_cli import SECRETS, write_config

FAST = {"polling": {"min_interval_seconds": 0.1, "max_interval_seconds": 1}, "throttle": {"limits": {"dsr": 40}}}


@pytest.fixture
def sb() -> Any:
    with Sandbox() as sandbox:
        sandbox.set_durations(access=(0.1, 0.1), erasure=(0.1, 0.1))
        sandbox.set_limits(dsr={"limit": 6000, "window_seconds": 60})
        yield sandbox


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)


def backlog_file(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = ["request_id", "type", "regulation", "due_at", "email", "customer_id", "push_token"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows(count: int) -> list[dict[str, str]]:
    kinds = ("access", "deletion", "opt_out")
    return [{"request_id": f"B-{i}", "type": kinds[i % 3], "email": f"b{i}@example.com", "customer_id": f"C-{i}"}
            for i in range(count)]


def seed_subjects(sb: Sandbox, requests: list[dict[str, str]]) -> None:
    """Profiles for the erasures and opt-outs, so each is verified (a login id that matched no profile before
    confirms nothing, and the completion is unverified: ``no_baseline``)."""
    for row in requests:
        if row["type"] in ("deletion", "opt_out") and row.get("customer_id"):
            sb.seed_profile({"email": row["email"], "customer_id": row["customer_id"]})


def batch(*args: str) -> Any:
    return CliRunner().invoke(main, ["batch", *args], catch_exceptions=False)


def test_dry_run_prints_the_plan_and_sends_nothing(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    file = backlog_file(tmp_path / "b.csv", rows(30))
    done = batch(str(file), "--config", str(config), "--dry-run", "--json")
    assert done.exit_code == 0, done.output
    assert "30 request(s) for mparticle: 10 access, 10 deletion, 10 opt_out" in done.output
    assert "binding: the dsr limit" in done.output and "sending" not in done.output
    plan = json.loads(done.stdout[done.stdout.index("{"):])["plan"]
    assert plan["calls"]["dsr"] == 60 and plan["binding"]["api"] == "dsr"
    assert sb.request_log() == [] and not (tmp_path / "b.csv.batch").exists()


def test_a_bad_file_is_refused_whole_before_anything_is_sent(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    file = backlog_file(tmp_path / "b.csv", [*rows(3), {"request_id": "B-9", "type": "erasure", "email": "x@y.z"},
                                             {"request_id": "B-1", "type": "access", "email": "dup@example.com"}])
    done = batch(str(file), "--config", str(config))
    assert done.exit_code == 2
    assert "line 5: $.type" in done.output and "line 6: request id B-1 is also on line 3" in done.output
    assert sb.request_log() == [] and not (tmp_path / "b.csv.batch").exists()


def test_a_backlog_runs_to_the_end_with_a_report_and_a_second_run_sends_nothing(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    seed_subjects(sb, rows(9))  # B-1's erasure (and every other) has a profile
    file = backlog_file(tmp_path / "b.csv", [*rows(9), {"request_id": "B-X", "type": "deletion",
                                                        "push_token": "tok-1"}])
    first = batch(str(file), "--config", str(config), "--wait", "--workers", "3", "--json")
    assert first.exit_code == 1, first.output  # B-X fails: mParticle's DSR API takes no push token
    outcome = json.loads(first.stdout[first.stdout.index('{\n  "outcomes"'):])
    assert outcome["outcomes"] == {"completed": 9, "failed": 1, "not_final": 0, "unverified": 0}
    assert outcome["resume"] is None
    assert "sending 10 request(s) (3 at a time)" in first.output
    report = {r["request_id"]: r for r in csv.DictReader(Path(outcome["report_csv"]).read_text().splitlines())}
    assert report["B-X"]["outcome"] == "failed" and report["B-X"]["error_class"] == "configuration"
    assert report["B-1"]["verification"] == "verified" and report["B-1"]["files"].endswith("-receipt.json")
    assert all(report[f"B-{i}"]["outcome"] == "completed" for i in range(9))
    seen = len(sb.request_log())
    again = batch(str(file), "--config", str(config), "--wait")
    assert again.exit_code == 1 and "nothing to send: all 10 request(s) are final" in again.output
    assert "sending" not in again.output and "resuming" not in again.output and len(sb.request_log()) == seen


def test_unverified_completions_are_counted_and_exit_four(sb: Sandbox, tmp_path: Path) -> None:
    """Issue 21: a backlog whose requests all completed, some unverified (an email alone cannot reach known
    profiles), says so in the report, its JSON summary and its last line, and exits 4, not 0."""
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    file = backlog_file(tmp_path / "b.csv", [{"request_id": "U-1", "type": "deletion", "email": "u1@example.com"},
                                             {"request_id": "U-2", "type": "deletion", "email": "u2@example.com",
                                              "customer_id": "C-u2"}])
    sb.seed_profile({"email": "u2@example.com", "customer_id": "C-u2"})
    done = batch(str(file), "--config", str(config), "--wait", "--json")
    assert done.exit_code == 4, done.output
    outcome = json.loads(done.stdout[done.stdout.index('{\n  "outcomes"'):])
    assert outcome["outcomes"] == {"completed": 2, "failed": 0, "not_final": 0, "unverified": 1}
    assert "2 completed (1 unverified)" in done.output
    report = {r["request_id"]: r for r in csv.DictReader(Path(outcome["report_csv"]).read_text().splitlines())}
    assert report["U-1"]["verification"] == "unverified" and "login_id_required:" in report["U-1"][
        "verification_detail"]
    assert report["U-2"]["verification"] == "verified"
    summary = json.loads(Path(outcome["report_json"]).read_text())["summary"]
    assert summary["verification"] == {"unverified": 1, "verified": 1}


def test_the_same_id_for_another_request_is_refused_before_anything_is_sent(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    file = backlog_file(tmp_path / "b.csv", rows(2))
    seed_subjects(sb, rows(2))
    assert batch(str(file), "--config", str(config), "--wait").exit_code == 0
    seen = len(sb.request_log())
    changed = rows(2)
    changed[1]["email"] = "someone-else@example.com"
    done = batch(str(backlog_file(file, changed)), "--config", str(config))
    assert done.exit_code == 2 and "B-1" in done.output and "holds another backlog" in done.output
    assert len(sb.request_log()) == seen


def test_without_wait_it_stops_when_nothing_is_due_and_prints_the_command_that_carries_on(
        sb: Sandbox, tmp_path: Path) -> None:
    sb.set_durations(erasure=(300, 300))
    config = write_config(tmp_path / "mp.yaml", sb.url,
                          polling={"min_interval_seconds": 1, "max_interval_seconds": 120})
    file = backlog_file(tmp_path / "b.csv", [{"request_id": "L-1", "type": "deletion", "email": "l@example.com"}])
    first = batch(str(file), "--config", str(config), "--store", str(tmp_path / "store"))
    assert first.exit_code == 3, first.output
    assert "sending 1 request(s)" in first.output and "not final yet" in first.output
    assert f"mparticle-dsr batch {file} --config {config} --store {tmp_path / 'store'}" in first.output
    second = batch(str(file), "--config", str(config), "--store", str(tmp_path / "store"))
    assert second.exit_code == 3 and "nothing is due now: the next check is in" in second.output
    assert "sending" not in second.output and "resuming" not in second.output
    assert len(sb.dsrs()) == 1


def test_a_backlog_in_use_is_left_alone(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    file = backlog_file(tmp_path / "b.csv", rows(2))
    with Backlog.open(tmp_path / "b.csv.batch"):
        done = batch(str(file), "--config", str(config))
    assert done.exit_code == 3 and "in use by process" in done.output and sb.request_log() == []


def test_a_setting_only_the_connector_can_judge_is_refused_before_anything_is_sent(sb: Sandbox,
                                                                                  tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, signature_trust_store=str(tmp_path / "gone.pem"))
    done = batch(str(backlog_file(tmp_path / "b.csv", rows(2))), "--config", str(config))
    assert done.exit_code == 2 and "$.signature_trust_store: no such file" in done.output
    assert sb.request_log() == [] and not (tmp_path / "b.csv.batch").exists()


def test_the_fleet_needs_a_shared_budget(sb: Sandbox, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mp.yaml", sb.url, **FAST)
    done = batch(str(backlog_file(tmp_path / "b.csv", rows(2))), "--config", str(config), "--fleet")
    assert done.exit_code == 2 and "throttle.backend: redis" in done.output and sb.request_log() == []
