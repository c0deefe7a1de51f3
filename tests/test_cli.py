"""The ``mparticle-dsr`` command line: demo, sandbox, check, access, delete, opt-out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.sandbox import Sandbox

BIN = Path(sys.executable).with_name("mparticle-dsr")


def write_config(path: Path, sb_url: str, **extra: Any) -> Path:
    """A config file whose secrets are ${NAME} references, as docs/command-line.md recommends."""
    config: dict[str, Any] = {
        "dsr": {"auth": {"type": "basic", "key": "${MP_WORKSPACE_KEY}", "secret": "${MP_WORKSPACE_SECRET}"},
                "base_url": sb_url},
        "inputs": {"auth": {"type": "basic", "key": "${MP_INPUT_KEY}", "secret": "${MP_INPUT_SECRET}"},
                   "events_base_url": sb_url, "identity_base_url": sb_url},
        "polling": {"min_interval_seconds": 0.2, "max_interval_seconds": 2},
    }
    config.update(extra)
    path.write_text(yaml.safe_dump(config))
    return path


SECRETS = {"MP_WORKSPACE_KEY": "sbx-wk-7c2f9e4a", "MP_WORKSPACE_SECRET": "sbx-ws-Q8vT3nLp6Rz2Xk9M",
           "MP_INPUT_KEY": "sbx-ik-5b8d1e6f", "MP_INPUT_SECRET": "sbx-is-H4mW7cJt2Yq9Ns5D"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    return SECRETS


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_demo_runs_every_step_and_exits_zero(tmp_path: Path) -> None:
    result = invoke("demo", "--out", str(tmp_path / "demo"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["ok"] is True
    assert [s["step"][:2] for s in report["steps"]] == ["1.", "2.", "3.", "4."]
    assert all(s["ok"] for s in report["steps"])
    written = sorted(p.name for p in (tmp_path / "demo").iterdir())
    access = next(n for n in written if n.startswith("mparticle-access-demo-1-access-"))[:-len("-receipt.json")]
    deletion = next(n for n in written if n.startswith("mparticle-erasure-"))[:-len("-receipt.json")]
    assert written == [f".{access}.delivered", f"{access}-receipt.json", f"{access}-summary.json",
                       f"{access}-summary.txt", f"{access}.zip", f"{deletion}-receipt.json"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in (tmp_path / "demo").iterdir())
    assert (tmp_path / "demo").stat().st_mode & 0o777 == 0o700
    for step in (report["steps"][1], report["steps"][3]):  # access and deletion: mParticle's signed receipts
        assert [r["verified"] for r in step["result"]["summary"]["receipts"]] == [True]


def test_check_passes_and_fails_with_exit_codes(sandbox: Sandbox, tmp_path: Path, env: dict[str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "mp.yaml", sandbox.url)
    ok = invoke("check", "--config", str(config))
    assert ok.exit_code == 0 and "dsr_api" in ok.output and "ok" in ok.output
    monkeypatch.setenv("MP_INPUT_SECRET", "a-wrong-input-secret")
    bad = invoke("check", "--config", str(config), "--json")
    assert bad.exit_code == 1
    checks = {c["name"]: c for c in json.loads(bad.stdout)["checks"]}
    assert checks["dsr_api"]["ok"] and not checks["events_api"]["ok"]
    assert "a-wrong-input-secret" not in bad.output


def test_a_config_with_several_mistakes_reports_all_of_them_without_a_trace_or_secret(
    tmp_path: Path, env: dict[str, str]
) -> None:
    config = write_config(tmp_path / "bad.yaml", "http://example.com", pod="mars",
                          throttle={"target_share": 3}, timeouts={"read": -1})
    result = invoke("check", "--config", str(config))
    assert result.exit_code == 2
    for path in ("$.dsr.base_url", "$.pod", "$.throttle.target_share", "$.timeouts.read"):
        assert path in result.output
    assert "Traceback" not in result.output
    assert not any(secret in result.output for secret in SECRETS.values())


def test_missing_environment_variables_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SECRETS:
        monkeypatch.delenv(key, raising=False)
    result = invoke("check", "--config", str(write_config(tmp_path / "mp.yaml", "http://127.0.0.1:9")))
    assert result.exit_code == 2
    assert "MP_INPUT_KEY, MP_INPUT_SECRET, MP_WORKSPACE_KEY, MP_WORKSPACE_SECRET" in result.output


def test_env_file_supplies_the_secrets(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SECRETS:
        monkeypatch.delenv(key, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("# mParticle\n" + "\n".join(f'export {k}="{v}"' for k, v in SECRETS.items()) + "\n")
    result = invoke("check", "--config", str(write_config(tmp_path / "mp.yaml", sandbox.url)), "--env-file",
                    str(env_file))
    assert result.exit_code == 0, result.output


def test_opt_out_prints_json_and_exits_zero(sandbox: Sandbox, tmp_path: Path, env: dict[str, str]) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    result = invoke("opt-out", "--config", str(write_config(tmp_path / "mp.yaml", sandbox.url)),
                    "--email", "jane@example.com", "--regulation", "ccpa", "--json")
    assert result.exit_code == 4  # email alone: unverified
    document = json.loads(result.stdout)
    assert document["status"] == "completed" and document["summary"]["consent_changed"] is True


def test_usage_errors_exit_two_like_clicks_own(tmp_path: Path, env: dict[str, str]) -> None:
    config = write_config(tmp_path / "mp.yaml", "http://127.0.0.1:9")
    assert invoke("opt-out", "--config", str(config)).exit_code == 2  # no subject
    assert invoke("access", "--config", str(config), "--email", "not-an-email").exit_code == 2
    assert invoke("access", "--email", "a@b.co").exit_code == 2  # click's own usage error: missing --config


def test_delete_without_wait_is_pending_then_resumes_from_the_state_file(
    sandbox: Sandbox, tmp_path: Path, env: dict[str, str]
) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    config, state = write_config(tmp_path / "mp.yaml", sandbox.url), tmp_path / "state.json"
    first = invoke("delete", "--config", str(config), "--email", "jane@example.com", "--request-id", "T-1",
                   "--state", str(state))
    assert first.exit_code == 3 and json.loads(state.read_text())["result"]["status"] == "pending"
    second = invoke("delete", "--config", str(config), "--state", str(state), "--wait", "--json")
    assert second.exit_code == 4, second.output  # email alone: unverified
    finished = json.loads(second.stdout)
    assert finished["status"] == "completed" and finished["summary"]["verified"] is False  # no customer id given:
    assert "customer_id" in finished["message"]  # a known profile would have been out of reach, and it says so
    assert finished["request_id"] == "T-1"
    assert len(sandbox.dsrs()) == 1 and sandbox.find_profiles(email="jane@example.com") == []
    again = invoke("delete", "--config", str(config), "--state", str(state))
    assert again.exit_code == 4 and "already completed" in again.output  # the same result, the same code
    assert len(sandbox.dsrs()) == 1


@pytest.fixture
def sandbox_process() -> Iterator[str]:
    """``mparticle-dsr sandbox`` running in another process; yields its URL."""
    process = subprocess.Popen([str(BIN), "sandbox", "--port", "0", "--json", "--duration", "access=0.5,0.5",
                                "--duration", "erasure=3,3", "--live-profile"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = json.loads(process.stdout.readline())["url"]
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_access_wait_against_the_sandbox_in_another_process_writes_the_results(
    sandbox_process: str, tmp_path: Path, env: dict[str, str]
) -> None:
    from connector_mparticle.sandbox import SandboxAdmin

    SandboxAdmin(sandbox_process).seed_profile({"email": "jane@example.com"}, attributes={"plan": "pro"})
    config = write_config(tmp_path / "mp.yaml", sandbox_process)
    out = tmp_path / "out"
    done = subprocess.run([str(BIN), "access", "--config", str(config), "--email", "jane@example.com", "--wait",
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})
    assert done.returncode == 4, done.stderr  # email alone: unverified
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["summary"]["profiles_found"] == 1
    assert {Path(f["path"]).parent for f in result["files"]} == {out.resolve()}


@pytest.mark.slow  # a process interrupted mid-wait, then resumed until a 3 s erasure ends: ~10 s
def test_ctrl_c_while_waiting_leaves_a_resumable_state(sandbox_process: str, tmp_path: Path,
                                                       env: dict[str, str]) -> None:
    config, state = write_config(tmp_path / "mp.yaml", sandbox_process), tmp_path / "state.json"
    process = subprocess.Popen([str(BIN), "delete", "--config", str(config), "--email", "jane@example.com",
                                "--request-id", "T-9", "--state", str(state), "--wait"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    deadline = time.time() + 10
    while not state.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 3, out + err
    assert "Stopped: request T-9 is not finished" in out + err and "Traceback" not in out + err
    assert f"--state {state} --wait" in out + err
    resumed = subprocess.run([str(BIN), "delete", "--config", str(config), "--state", str(state), "--wait",
                              "--json"], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert resumed.returncode == 4, resumed.stderr  # email alone: unverified
    assert json.loads(resumed.stdout)["status"] == "completed"


def test_help_lists_every_subcommand() -> None:
    result = invoke("--help")
    for name in ("demo", "sandbox", "check", "access", "delete", "opt-out"):
        assert name in result.output
    assert "Exit codes" in result.output
