"""The installed ``mparticle-dsr``, run as a user runs it: subprocesses against a sandbox in another process.

One sandbox (``mparticle-dsr sandbox --write-config``) serves the whole module; each test uses its own
subjects and request ids, and judges by what the sandbox received (its admin API), not by what the command
says. The secrets come only from the env file the sandbox wrote, never from this process's environment.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector_mparticle.sandbox import SandboxAdmin

BIN = Path(sys.executable).with_name("mparticle-dsr")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}


@dataclass
class Session:
    """The sandbox process, the files it wrote, and a working directory for the commands."""

    url: str
    config: Path
    env_file: Path
    admin: SandboxAdmin
    cwd: Path

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``mparticle-dsr ARGS`` with stdout and stderr captured (so stdout is not a terminal)."""
        return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=timeout, env=ENV,
                              cwd=self.cwd)

    def files(self) -> list[str]:
        return ["--config", str(self.config), "--env-file", str(self.env_file)]

    def dsrs_for(self, request_id: str) -> list[dict[str, Any]]:
        return [d for d in self.admin.dsrs() if d.get("group_id") == request_id]

    def config_with(self, name: str, **settings: Any) -> Path:
        """A copy of the sandbox's config with ``settings`` added."""
        data = yaml.safe_load(self.config.read_text())
        data.update(settings)
        path = self.cwd / name
        path.write_text(yaml.safe_dump(data))
        return path


def write_files(directory: Path, info: dict[str, Any]) -> tuple[Path, Path]:
    """A config (secrets as ``${NAME}``, as docs/command-line.md says) and its env file, from the sandbox's JSON."""
    url = info["url"]
    config = directory / "mparticle.yaml"
    config.write_text(yaml.safe_dump({
        "dsr": {"auth": {"type": "basic", "key": "${MP_WORKSPACE_KEY}", "secret": "${MP_WORKSPACE_SECRET}"},
                "base_url": url},
        "inputs": {"auth": {"type": "basic", "key": "${MP_INPUT_KEY}", "secret": "${MP_INPUT_SECRET}"},
                   "events_base_url": url, "identity_base_url": url},
        "polling": {"min_interval_seconds": 0.5, "max_interval_seconds": 2}}))
    env_file = directory / "mparticle.env"
    env_file.write_text(f"MP_WORKSPACE_KEY={info['workspace_key']}\nMP_WORKSPACE_SECRET={info['workspace_secret']}\n"
                        f"MP_INPUT_KEY={info['input_key']}\nMP_INPUT_SECRET={info['input_secret']}\n")
    return config, env_file


@contextmanager
def sandbox_process(*args: str) -> Iterator[dict[str, Any]]:
    """``mparticle-dsr sandbox --port 0 --json ARGS`` in another process; yields its JSON line."""
    process = subprocess.Popen([str(BIN), "sandbox", "--port", "0", "--json", *args], stdout=subprocess.PIPE,
                               text=True, env=ENV)
    assert process.stdout is not None
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    cwd = tmp_path_factory.mktemp("cli-session")
    with sandbox_process("--duration", "access=0.5,0.5", "--duration", "erasure=1,1") as info:
        config, env_file = write_files(cwd, info)
        yield Session(info["url"], config, env_file, SandboxAdmin(info["url"]), cwd)


def no_traceback(done: subprocess.CompletedProcess[str]) -> bool:
    return "Traceback" not in done.stdout + done.stderr


# --- "Why" 1: the regulation sent, stored and shown must agree ------------------------------------------


@pytest.mark.parametrize(("config_regulation", "option", "expected"), [
    (None, "ccpa", "ccpa"),        # the reported bug: --regulation ccpa sent gdpr
    ("ccpa", None, "ccpa"),        # the reverse: a config regulation was sent but gdpr was stored
    ("ccpa", "gdpr", "gdpr"),      # --regulation overrides the config
    (None, None, "gdpr"),
])
def test_the_regulation_mparticle_receives_is_the_one_printed_and_stored(
    session: Session, config_regulation: str | None, option: str | None, expected: str
) -> None:
    request_id = f"REG-{config_regulation}-{option}"
    config = session.config_with(f"{request_id}.yaml", **({"regulation": config_regulation}
                                                          if config_regulation else {}))
    state = session.cwd / f"{request_id}.json"
    args = ["delete", "--config", str(config), "--env-file", str(session.env_file), "--email",
            f"{request_id.lower()}@example.com", "--request-id", request_id, "--state", str(state)]
    done = session.run(*args, *(["--regulation", option] if option else []))
    assert done.returncode == 3, done.stdout + done.stderr
    [received] = session.dsrs_for(request_id)
    assert received["regulation"] == expected
    assert json.loads(state.read_text())["request"]["regulation"] == expected
    assert f"{request_id} ({expected})" in done.stdout


# --- "Why" 2: a state file for another subject must never be resumed as if it were this one ------------


def test_a_state_file_holding_another_subjects_request_is_refused_and_nothing_is_sent(session: Session) -> None:
    dave = session.admin.seed_profile({"email": "dave@example.com"})
    state = session.cwd / "t5.json"
    first = session.run("delete", *session.files(), "--email", "t5@example.com", "--request-id", "T5",
                        "--state", str(state), "--wait")
    assert first.returncode == 4, first.stdout + first.stderr  # email alone: unverified
    before = len(session.admin.dsrs())

    done = session.run("delete", *session.files(), "--email", "dave@example.com", "--state", str(state))
    assert done.returncode == 2
    assert "belongs to another request" in done.stderr and "--email is t***@e***.com" in done.stderr
    assert "d***@e***.com" in done.stderr and "dave@example.com" not in done.stderr
    assert "confirm the profile is gone" not in done.stdout
    assert len(session.admin.dsrs()) == before
    assert session.admin.profile(dave["mpid"]) is not None

    for wrong, named in ((["--regulation", "ccpa"], "regulation is gdpr"), (["--request-id", "T6"], "T5, not T6")):
        refused = session.run("delete", *session.files(), "--state", str(state), *wrong)
        assert refused.returncode == 2 and named in refused.stderr
    other_type = session.run("opt-out", *session.files(), "--state", str(state))
    assert other_type.returncode == 2 and "holds a deletion request, not opt_out" in other_type.stderr


def test_an_edited_state_file_is_refused_naming_what_changed_and_nothing_is_sent(session: Session) -> None:
    """The file says whose request it is: an edit (another subject, another folder) must never be obeyed."""
    erin = session.admin.seed_profile({"email": "erin@example.com"})
    state = session.cwd / "edited.json"
    first = session.run("delete", *session.files(), "--email", "t7@example.com", "--request-id", "T7",
                        "--state", str(state))
    assert first.returncode == 3, first.stdout + first.stderr
    document = json.loads(state.read_text())
    document["request"]["identities"]["email"] = "erin@example.com"
    document["request"]["output_dir"] = str(session.cwd / "elsewhere")
    state.write_text(json.dumps(document, indent=2))
    before = len(session.admin.dsrs())
    done = session.run("delete", *session.files(), "--state", str(state), "--wait")
    assert done.returncode == 2 and no_traceback(done), done.stdout + done.stderr
    assert "cannot be trusted: it was changed after mparticle-dsr wrote it" in done.stderr
    assert "its subject (the identifiers), its output folder" in done.stderr and "Nothing was sent" in done.stderr
    assert "erin@example.com" not in done.stderr + done.stdout
    assert len(session.admin.dsrs()) == before and session.admin.profile(erin["mpid"]) is not None
    assert not (session.cwd / "elsewhere").exists()


def test_a_state_file_written_with_other_credentials_is_refused_saying_so(session: Session) -> None:
    state = session.cwd / "rotated.json"
    first = session.run("delete", *session.files(), "--email", "t8@example.com", "--request-id", "T8",
                        "--state", str(state))
    assert first.returncode == 3, first.stdout + first.stderr
    rotated = session.cwd / "rotated.env"
    rotated.write_text(session.env_file.read_text().replace("MP_WORKSPACE_SECRET=", "MP_WORKSPACE_SECRET=new-"))
    done = session.run("delete", "--config", str(session.config), "--env-file", str(rotated), "--state", str(state))
    assert done.returncode == 2 and "signed with other DSR credentials" in done.stderr, done.stderr
    assert "--request-id" in done.stderr  # how to carry on without the file


def test_a_symlinked_out_or_state_is_refused_before_anything_is_sent(session: Session) -> None:
    real = session.cwd / "real-out"
    real.mkdir(mode=0o700)
    (session.cwd / "linked-out").symlink_to(real, target_is_directory=True)
    before = len(session.admin.dsrs())
    done = session.run("access", *session.files(), "--email", "t9@example.com", "--out",
                       str(session.cwd / "linked-out"))
    assert done.returncode == 2 and "is a symbolic link" in done.stderr, done.stderr
    (session.cwd / "linked.json").symlink_to(session.cwd / "real.json")
    linked = session.run("delete", *session.files(), "--email", "t9@example.com", "--state",
                         str(session.cwd / "linked.json"))
    assert linked.returncode == 2 and "symbolic link" in linked.stderr, linked.stderr
    assert len(session.admin.dsrs()) == before and list(real.iterdir()) == []
    assert not (session.cwd / "real.json").exists()


# --- "Why" 3: nothing is sent before everything local is checked; the request id comes first -----------


def test_a_state_path_that_cannot_be_written_is_refused_before_anything_is_sent(session: Session) -> None:
    blocker = session.cwd / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    session.admin.seed_profile({"email": "olga@example.com"})
    batches = session.admin.stats()
    for command in ("delete", "opt-out"):
        done = session.run(command, *session.files(), "--email", "olga@example.com", "--request-id",
                           f"NOPE-{command}", "--state", str(blocker / "d.json"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert no_traceback(done) and "cannot use --state" in done.stderr
        assert session.dsrs_for(f"NOPE-{command}") == []
    assert session.admin.stats() == batches  # no consent batch stored for the opt-out


def test_a_state_file_in_a_new_directory_is_created_and_the_request_id_printed_before_sending(
    session: Session,
) -> None:
    state = session.cwd / "nodir" / "d.json"
    done = session.run("delete", *session.files(), "--email", "nodir@example.com", "--state", str(state))
    assert done.returncode == 3 and no_traceback(done), done.stdout + done.stderr
    saved = json.loads(state.read_text())
    request_id = saved["request"]["request_id"]
    assert done.stdout.splitlines()[0].startswith(f"sending deletion {request_id} (gdpr)")
    assert len(session.dsrs_for(request_id)) == 1
    resumed = session.run("delete", *session.files(), "--state", str(state), "--wait")
    assert resumed.returncode == 4 and len(session.dsrs_for(request_id)) == 1  # email alone: unverified


# --- "Why" 4: exit codes, printed once -------------------------------------------------------------------


def test_usage_and_configuration_errors_exit_two_and_are_printed_once(session: Session) -> None:
    bad = session.config_with("typo.yaml", pollling={"min_interval_seconds": 1})
    cases = [
        ["access", "--email", "a@example.com"],                             # missing --config
        ["access", "--config", "missing.yaml", "--email", "a@example.com"],  # config that does not exist
        ["access", *session.files(), "--emial", "a@example.com"],           # unknown option
        ["delet", *session.files()],                                        # unknown command
        ["sandbox", "--limit", "identity=lots"],                            # bad --limit
        ["opt-out", *session.files()],                                      # no subject
        ["check", "--config", str(bad), "--env-file", str(session.env_file)],
    ]
    for args in cases:
        done = session.run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert no_traceback(done) and done.stderr.count("Error:") == 1, (args, done.stderr)
    typo = session.run("check", "--config", str(bad), "--env-file", str(session.env_file))
    assert typo.stderr.count("Additional properties are not allowed") == 1
    assert "did you mean 'polling'?" in typo.stderr
    missing = session.run("check", "--config", str(session.config))
    assert missing.stderr.count("environment variables not set") == 1
    unknown = session.run("access", *session.files(), "--emial", "a@example.com")
    assert "Did you mean" in unknown.stderr and "--email" in unknown.stderr


def test_help_and_the_docs_document_the_one_exit_code_table(session: Session) -> None:
    for args in ([], ["delete"], ["check"]):
        shown = " ".join(session.run(*args, "--help").stdout.split())
        assert "Exit codes: 0 completed" in shown and "1 failed" in shown
        assert "2 usage or configuration error" in shown and "3 pending" in shown
        assert "4 completed but unverified" in shown
    page = (Path(__file__).parents[1] / "docs" / "command-line.md").read_text()
    for row in ("| 0 | completed", "| 1 | failed", "| 2 | usage or configuration error", "| 3 | pending",
                "| 4 | completed but unverified"):
        assert row in page


# --- "Why" 5: Ctrl-C tells you how to resume the same request --------------------------------------------


def _start_and_interrupt(session: Session, *args: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen([str(BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=ENV, cwd=session.cwd)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # wait until it is waiting for mParticle, then press Ctrl-C
        lines.append(line)
        if "next check in" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines) + out, err)


def test_ctrl_c_without_a_state_file_prints_the_command_that_resumes_the_same_request(session: Session) -> None:
    done = _start_and_interrupt(session, "delete", *session.files(), "--email", "ctrlc@example.com",
                                "--request-id", "CTRL-C-1", "--wait")
    assert done.returncode == 3 and no_traceback(done), done.stdout + done.stderr
    assert "start it again" not in done.stdout
    command = done.stdout.split("Resume the same request (it is never submitted twice) with:")[1].strip()
    args = shlex.split(command)
    assert args[:2] == ["mparticle-dsr", "delete"] and "--request-id" in args and "CTRL-C-1" in args
    resumed = session.run(*args[1:])
    assert resumed.returncode == 4, resumed.stdout + resumed.stderr  # email alone: unverified
    assert len(session.dsrs_for("CTRL-C-1")) == 1


def test_ctrl_c_with_a_state_file_resumes_from_it(session: Session) -> None:
    state = session.cwd / "ctrl-c.json"
    done = _start_and_interrupt(session, "delete", *session.files(), "--email", "ctrlc2@example.com",
                                "--state", str(state), "--wait")
    assert done.returncode == 3 and no_traceback(done)
    request_id = json.loads(state.read_text())["request"]["request_id"]
    assert f"Stopped: request {request_id} is not finished" in done.stdout
    assert f"--state {state} --wait" in done.stdout
    resumed = session.run("delete", *session.files(), "--state", str(state), "--wait", "--json")
    assert resumed.returncode == 4 and json.loads(resumed.stdout)["status"] == "completed"  # email alone: unverified
    assert len(session.dsrs_for(request_id)) == 1


# --- "Why" 6: two commands sharing one state file -----------------------------------------------------------


def test_two_wait_runs_sharing_a_state_file_both_finish_and_one_names_the_other(session: Session) -> None:
    """The erasure lasts until the second run has said it waits for the first, then mParticle completes it: on a
    busy machine the first run could otherwise finish before the second one started."""
    state = session.cwd / "shared.json"
    args = [str(BIN), "delete", *session.files(), "--email", "shared@example.com", "--request-id", "SHARED-1",
            "--state", str(state), "--wait"]
    timing = session.admin.durations()["durations"]["erasure"]
    session.admin.set_durations(erasure=(600, 600))
    try:
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        assert second.stderr is not None
        said = second.stderr.readline()  # the second run's first word: it waits for the first
        (dsr,) = session.dsrs_for("SHARED-1")
        session.admin.force_status(dsr["subject_request_id"], "completed")
        outputs = [p.communicate(timeout=60) for p in (first, second)]
    finally:
        session.admin.set_durations(erasure=(timing["pending"], timing["in_progress"]))
    outputs[1] = (outputs[1][0], said + outputs[1][1])
    assert [first.returncode, second.returncode] == [4, 4], outputs  # email alone: unverified
    assert all("Traceback" not in out + err for out, err in outputs)
    assert f"{state} is in use by process {first.pid}" in outputs[1][1]
    assert len(session.dsrs_for("SHARED-1")) == 1


# --- "Why" 7: a taken sandbox port ------------------------------------------------------------------------


def test_a_taken_sandbox_port_is_a_clear_message_not_a_traceback(session: Session) -> None:
    port = session.url.rsplit(":", 1)[1]
    done = session.run("sandbox", "--port", port)
    assert done.returncode == 2 and no_traceback(done)
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr and "--port 0" in done.stderr
    as_json = session.run("sandbox", "--port", port, "--json")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"]["message"].startswith(f"port {port}")


# --- the first hour ---------------------------------------------------------------------------------------


def test_the_config_the_sandbox_writes_passes_check_and_keeps_secrets_in_the_env_file(session: Session) -> None:
    config = session.cwd / "written" / "sandbox.yaml"
    with sandbox_process("--write-config", str(config)) as info:
        assert info["config_file"] == str(config) and info["env_file"] == str(config.with_suffix(".env"))
        done = session.run("check", "--config", str(config), "--env-file", info["env_file"])
        assert done.returncode == 0, done.stdout + done.stderr
        for name in ("dsr_api", "events_api", "identity_api"):
            assert name in done.stdout
        assert "sbx-ws-Q8vT3nLp6Rz2Xk9M" not in config.read_text()
        assert Path(info["env_file"]).stat().st_mode & 0o077 == 0  # only its owner can read the secrets
        assert "min_interval_seconds: 0.5" in config.read_text()
    mine = session.cwd / "mine.yaml"
    mine.write_text("pod: eu1\n")
    with subprocess.Popen([str(BIN), "sandbox", "--port", "0", "--write-config", str(mine)], env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as refused:
        _, err = refused.communicate(timeout=20)
    assert refused.returncode == 2 and "was not written by mparticle-dsr sandbox" in err
    assert mine.read_text() == "pod: eu1\n"


def test_the_sandbox_prints_a_config_and_env_file_without_write_config() -> None:
    with subprocess.Popen([str(BIN), "sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True,
                          env=ENV) as process:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    text = "".join(lines)
    assert "${MP_WORKSPACE_SECRET}" in text and "MP_WORKSPACE_SECRET=sbx-ws-Q8vT3nLp6Rz2Xk9M" in text
    assert "min_interval_seconds: 0.5" in text
    assert process.returncode == 0


def test_a_pending_request_shows_the_wait_in_words_and_the_resume_command(session: Session) -> None:
    done = session.run("access", *session.files(), "--email", "pending@example.com", "--request-id", "PEND-1",
                       "--out", str(session.cwd / "pend"))
    assert done.returncode == 3
    assert "next check │ in " in done.stdout and " s (" in done.stdout
    resume = done.stdout.split("Resume it with:")[1].strip()
    assert resume.startswith(f"mparticle-dsr access --config {session.config} --env-file {session.env_file} "
                             "--request-id PEND-1 --regulation gdpr --submitted 20")
    assert " --email pending@example.com --out " in resume


def test_resuming_with_the_printed_command_keeps_when_the_subject_asked_and_so_the_due_date(session: Session) -> None:
    """The re-attack: without --submitted, a resume rebuilt the request with "now" as when the subject asked, which
    moved the regulation's default due date (a month later each time) and turned "at risk" into "on time"."""
    asked = (datetime.now(UTC) - timedelta(days=25)).isoformat(timespec="seconds")
    first = session.run("delete", *session.files(), "--email", "late@example.com", "--customer-id", "L-1",
                        "--request-id", "LATE-1", "--submitted", asked, "--json")
    assert first.returncode == 3, first.stdout + first.stderr
    due = json.loads(first.stdout)["summary"]["deadline"]["due_at"]
    resume = shlex.split(first.stderr.split("Resume it with:")[1].strip().splitlines()[0]) if \
        "Resume it with:" in first.stderr else None
    again = session.run(*(resume[1:] if resume else ["delete", *session.files(), "--email", "late@example.com",
                                                     "--customer-id", "L-1", "--request-id", "LATE-1",
                                                     "--submitted", asked]), "--json")
    assert again.returncode == 3, again.stdout + again.stderr
    assert json.loads(again.stdout)["summary"]["deadline"]["due_at"] == due
    assert due.startswith((datetime.now(UTC) + timedelta(days=5)).strftime("%Y-%m-%d"))  # 30 days from when asked
    future = session.run("delete", *session.files(), "--email", "late@example.com", "--submitted", "2999-01-01")
    assert future.returncode == 2 and "in the future" in future.stderr


def test_waiting_without_a_terminal_prints_one_plain_line_per_check(session: Session) -> None:
    session.admin.seed_profile({"email": "plain@example.com"}, attributes={"plan": "pro"})
    out = session.cwd / "a very long directory name that would be cut at eighty columns" / "results"
    done = session.run("access", *session.files(), "--email", "plain@example.com", "--wait", "--out", str(out))
    assert done.returncode == 4, done.stdout + done.stderr  # email alone: unverified
    checks = [line for line in done.stdout.splitlines() if ": mParticle says " in line]
    assert checks and all("next check in " in line for line in checks)
    assert "\x1b[" not in done.stdout  # no cursor movement or colour codes
    zips = list(out.glob("*.zip"))
    assert zips and f"  {zips[0]}" in done.stdout.splitlines()  # the whole path, on one line


def test_json_errors_are_json_on_stdout(session: Session) -> None:
    done = session.run("access", *session.files(), "--email", "not-an-email", "--json")
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert "is not an email address" in error["message"] and "@" in error["message"]
    assert "^" not in error["message"]  # in words, not the schema's regular expression
    missing = session.run("check", "--config", str(session.config), "--json")
    assert missing.returncode == 2
    document = json.loads(missing.stdout)
    assert "MP_WORKSPACE_KEY" in document["error"]["message"] and "--env-file" in document["error"]["hints"][0]


def test_config_file_mistakes_are_explained(session: Session) -> None:
    broken = session.cwd / "broken.yaml"
    broken.write_text("dsr:\n  auth: {type: basic, key: x\ninputs: {}\n")
    done = session.run("check", "--config", str(broken))
    assert done.returncode == 2 and f"{broken}:3:7:" in done.stderr and no_traceback(done)

    literal = session.config_with("literal.yaml", dsr={"auth": {"type": "basic", "key": "${MP_WORKSPACE_KEY}",
                                                               "secret": "sbx-ws-Q8vT3nLp6Rz2Xk9M"},
                                                      "base_url": session.url})
    done = session.run("check", "--config", str(literal), "--env-file", str(session.env_file))
    assert done.returncode == 0
    assert "secret as plain text at $.dsr.auth.secret" in done.stderr and "sbx-ws-Q8vT3nLp6Rz2Xk9M" not in done.stderr

    defaulted = session.config_with("defaulted.yaml", dsr={
        "auth": {"type": "basic", "key": "${MP_WORKSPACE_KEY}", "secret": "${MP_WORKSPACE_SECRET}"},
        "base_url": f"${{MP_DSR_URL:-{session.url}}}"})
    assert session.run("check", "--config", str(defaulted), "--env-file", str(session.env_file)).returncode == 0
    refused = session.config_with("refused.yaml", environment="${MP_ENV:?set it}")
    done = session.run("check", "--config", str(refused), "--env-file", str(session.env_file))
    assert done.returncode == 2 and "unsupported ${...} reference at $.environment" in done.stderr



# --- identifiers beyond email (issue: every identifier mParticle knows) ---------------------------------------


def test_phone_device_ids_and_any_mparticle_type_are_sent_as_mparticle_names_them(session: Session) -> None:
    state = session.cwd / "ids.json"
    done = session.run("delete", *session.files(), "--phone", "+1 800 555 0199", "--device-id",
                       "ios_advertising_id=IDFA-1", "--identity", "other3=app-user-7", "--request-id", "IDS-1",
                       "--state", str(state))
    assert done.returncode == 3, done.stderr
    [dsr] = session.dsrs_for("IDS-1")
    assert dsr["identities"] == {"mobile_number": "+1 800 555 0199", "ios_idfa": "IDFA-1", "other_id_3": "app-user-7"}
    again = session.run("delete", *session.files(), "--state", str(state), "--phone", "+1 800 555 0100")
    assert again.returncode == 2 and "--phone" in again.stderr and "0100" not in again.stderr  # masked, refused


def test_an_mpid_goes_in_its_own_request_and_bad_identifier_options_are_usage_errors(session: Session) -> None:
    profile = session.admin.seed_profile({"email": "mpid.cli@example.com"})
    done = session.run("opt-out", *session.files(), "--mpid", str(profile["mpid"]), "--json")
    assert done.returncode == 4, done.stderr  # no Profile API configured: the mpid cannot be confirmed
    assert json.loads(done.stdout)["summary"]["mpid"] == str(profile["mpid"])
    for bad in (["--mpid", "12ab"], ["--phone", "call me"], ["--device-id", "idfa=1"], ["--identity", "x"],
                ["--device-id", "push_token= padded"]):
        refused = session.run("opt-out", *session.files(), *bad)
        assert refused.returncode == 2 and no_traceback(refused), (bad, refused.stderr)
