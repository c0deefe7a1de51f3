"""Issue 21 through the installed command line against a sandbox in another process: the request you see is the
request that is sent, local problems stop before anything is sent (exit 2), an unverified completion has its own
exit code (4) and line, and SIGTERM stops like Ctrl-C. Judged by what the sandbox received."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connector_mparticle.sandbox import SandboxAdmin
from tests.test_cli_session import BIN, ENV, Session, no_traceback, sandbox_process, write_files


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """One sandbox process for the module, as in test_cli_session."""
    cwd = tmp_path_factory.mktemp("cli-outcomes")
    with sandbox_process("--duration", "access=0.5,0.5", "--duration", "erasure=1,1") as info:
        config, env_file = write_files(cwd, info)
        yield Session(info["url"], config, env_file, SandboxAdmin(info["url"]), cwd)


def test_an_identity_flag_given_twice_is_refused_and_nothing_is_sent(session: Session) -> None:
    for flag, first, second in (("--email", "olga@example.com", "pat@example.com"),
                                ("--customer-id", "c-1", "c-2"), ("--phone", "+15550001", "+15550002"),
                                ("--mpid", "1234567", "7654321")):
        request_id = f"TWICE{flag}"
        done = session.run("access", *session.files(), flag, first, flag, second, "--request-id", request_id)
        assert done.returncode == 2 and no_traceback(done), done.stdout + done.stderr
        assert "given 2 times with different values" in done.stderr and "sending" not in done.stdout
        assert session.dsrs_for(request_id) == []


def test_local_problems_exit_two_before_anything_is_sent(session: Session) -> None:
    unknown = session.run("delete", *session.files(), "--email", "local1@example.com", "--identity", "foo=bar",
                          "--request-id", "LOCAL-1")
    assert unknown.returncode == 2 and "foo is not an mParticle identity type" in unknown.stderr
    no_trust = session.config_with("no-trust.yaml", trust_store=str(session.cwd / "missing-ca.pem"))
    missing = session.run("delete", "--config", str(no_trust), "--env-file", str(session.env_file),
                          "--email", "local2@example.com", "--request-id", "LOCAL-2")
    assert missing.returncode == 2 and "trust_store" in missing.stderr and "no such file" in missing.stderr
    port = session.run("sandbox", "--port", "70000")
    assert port.returncode == 2 and "70000 is not in the range" in port.stderr
    for done in (unknown, missing, port):
        assert "sending" not in done.stdout and no_traceback(done), done.stdout + done.stderr
    assert session.dsrs_for("LOCAL-1") == session.dsrs_for("LOCAL-2") == []


def test_an_unverified_erasure_exits_four_with_a_line_saying_why_and_a_verified_one_zero(session: Session) -> None:
    session.admin.seed_profile({"email": "unverified@example.com", "customer_id": "c-unv"})
    by_email = session.run("delete", *session.files(), "--email", "unverified@example.com", "--wait",
                           "--request-id", "UNVERIFIED-1")
    assert by_email.returncode == 4, by_email.stdout + by_email.stderr
    shown = " ".join(by_email.stdout.split())
    assert "unverified" in shown and "login_id_required" in shown and "customer_id" in shown
    as_json = session.run("delete", *session.files(), "--email", "unverified@example.com", "--wait",
                          "--request-id", "UNVERIFIED-1", "--json")
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 4 and document["verification"]["status"] == "unverified"
    assert [r["code"] for r in document["verification"]["reasons"]] == ["login_id_required"]
    with_login = session.run("delete", *session.files(), "--email", "unverified@example.com", "--customer-id",
                             "c-unv", "--wait", "--request-id", "VERIFIED-1")
    assert with_login.returncode == 0, with_login.stdout + with_login.stderr
    assert "verification" in with_login.stdout and "verified" in with_login.stdout


def test_out_on_resuming_a_state_that_has_none_is_refused(session: Session) -> None:
    state = session.cwd / "no-out.json"
    first = session.run("delete", *session.files(), "--email", "noout@example.com", "--customer-id", "c-no",
                        "--state", str(state))
    assert first.returncode == 3, first.stdout + first.stderr
    resumed = session.run("delete", *session.files(), "--state", str(state), "--out", str(session.cwd / "rcpt"))
    assert resumed.returncode == 2 and "started without --out" in " ".join(resumed.stderr.split())
    assert "resuming" not in resumed.stdout and not (session.cwd / "rcpt").exists()
    assert len(session.dsrs_for(json.loads(state.read_text())["request"]["request_id"])) == 1


def test_an_identity_the_config_never_sends_is_shown_as_not_sent(session: Session) -> None:
    config = session.config_with("no-email.yaml", identities={"email": None})
    done = session.run("delete", "--config", str(config), "--env-file", str(session.env_file), "--email",
                       "nullmail@example.com", "--customer-id", "c-null", "--request-id", "NULL-EMAIL-1")
    line = next(line for line in done.stdout.splitlines() if line.startswith("sending"))
    assert "customer_id c-***" in line and "not sent: email (configured never to be sent)" in line
    assert "for customer_id c-***; not sent" in line  # the identifiers before "not sent" are those sent
    [dsr] = session.dsrs_for("NULL-EMAIL-1")
    assert dsr["identities"] == {"customer_id": "c-null"}


def test_an_mpid_is_shown_as_an_mpid_and_a_gdpr_opt_out_without_purposes_warns(session: Session) -> None:
    done = session.run("opt-out", *session.files(), "--mpid", "8675309123", "--regulation", "gdpr",
                       "--request-id", "MPID-SHOWN-1")
    assert "for mpid 86***" in done.stdout and "vendor_id" not in done.stdout, done.stdout
    assert "GDPR opt-out, but the config's opt_out.gdpr_purposes lists no purpose" in " ".join(done.stderr.split())


def test_a_refused_connection_is_named_within_seconds(session: Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    data = yaml.safe_load(session.config.read_text())
    data["dsr"]["base_url"] = closed
    config = session.cwd / "closed.yaml"
    config.write_text(yaml.safe_dump(data))
    started = time.monotonic()
    done = session.run("delete", "--config", str(config), "--env-file", str(session.env_file), "--email",
                       "down@example.com", "--customer-id", "c-down", "--request-id", "DOWN-1")
    assert time.monotonic() - started < 30 and no_traceback(done)
    assert done.returncode != 0 and "connection refused" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_sigterm_while_waiting_saves_the_state_and_prints_the_resume_command(session: Session,
                                                                             sig: signal.Signals) -> None:
    state = session.cwd / "sigterm.json"
    process = subprocess.Popen([str(BIN), "delete", *session.files(), "--email", "term@example.com",
                                "--customer-id", "c-term", "--state", str(state), "--wait"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=session.cwd)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "next check in" in line:
            break
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 3, "".join(lines) + out + err
    assert "Resume the same request" in out and "--state" in out and state.is_file()


def test_a_request_id_reused_for_another_subject_is_refused_naming_the_difference(session: Session,
                                                                                   tmp_path: Path) -> None:
    """``--request-id`` resumes the request it names; the same id with another --email is another request, and
    is refused (exit 2, nothing sent) rather than submitted under the first one's id and file names."""
    env = {**ENV, "XDG_STATE_HOME": str(tmp_path / "xdg")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60, env=env,
                              cwd=session.cwd)

    first = run("delete", *session.files(), "--email", "jane.reuse@example.com", "--customer-id", "c-r",
                "--request-id", "REUSED-1")
    assert first.returncode == 3, first.stdout + first.stderr
    other = run("delete", *session.files(), "--email", "omar.reuse@example.com", "--customer-id", "c-r",
                "--request-id", "REUSED-1")
    assert other.returncode == 2 and no_traceback(other), other.stdout + other.stderr
    shown = " ".join(other.stderr.split())
    assert "request id REUSED-1 was already used" in shown and "its email was another value" in shown
    assert "omar" not in shown and "jane" not in shown and "sending" not in other.stdout
    assert [d["identities"]["email"] for d in session.dsrs_for("REUSED-1")] == ["jane.reuse@example.com"]
    same = run("delete", *session.files(), "--email", "jane.reuse@example.com", "--customer-id", "c-r",
               "--request-id", "REUSED-1", "--wait")
    # Resumed by id alone (no --state): whether the customer id matched a profile before mParticle acted is not
    # known any more, so the erasure is completed but unverified (exit 4), never a second submission.
    assert same.returncode == 4 and len(session.dsrs_for("REUSED-1")) == 1, same.stdout + same.stderr
    assert "no_baseline" in same.stdout
    access = run("access", *session.files(), "--email", "jane.reuse@example.com", "--customer-id", "c-r",
                 "--request-id", "REUSED-1", "--out", str(tmp_path / "out"))
    assert access.returncode == 3, access.stdout + access.stderr  # another type under the same ticket id is fine


def test_a_refused_url_is_explained_in_words_not_as_a_pattern(session: Session) -> None:
    data = yaml.safe_load(session.config.read_text())
    data["dsr"]["base_url"] = "ftp://opendsr.example.com/v3"
    config = session.cwd / "ftp.yaml"
    config.write_text(yaml.safe_dump(data))
    done = session.run("check", "--config", str(config), "--env-file", str(session.env_file))
    shown = " ".join(done.stderr.split())
    assert done.returncode == 2 and "$.dsr.base_url" in shown and "must be an https:// URL" in shown, shown
    assert "^(https" not in shown and no_traceback(done)


def test_one_ctrl_c_during_a_slow_call_stops_at_once_and_the_resume_sends_nothing_twice(session: Session) -> None:
    """Issue 21: one Ctrl-C stops at once, even while a call to mParticle is under way (here, 20 s of latency on
    every DSR answer); the printed command resumes the same request without submitting it again."""
    state = session.cwd / "slow.json"
    session.admin.seed_profile({"email": "slow@example.com", "customer_id": "c-slow"})  # so the erasure verifies
    session.admin.set_faults(dsr={"latency_ms": 20_000})
    try:
        process = subprocess.Popen([str(BIN), "delete", *session.files(), "--email", "slow@example.com",
                                    "--customer-id", "c-slow", "--request-id", "SLOW-1", "--state", str(state)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                   cwd=session.cwd)
        assert process.stdout is not None
        assert process.stdout.readline().startswith("sending deletion SLOW-1")
        time.sleep(1.0)  # the submission is under way, waiting on the sandbox
        pressed = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert time.monotonic() - pressed < 5 and process.returncode == 3, out + err
        assert "Stopped: request SLOW-1 is not finished" in out and "--state" in out and no_traceback(
            subprocess.CompletedProcess([], 3, out, err))
    finally:
        session.admin.set_faults(dsr={"latency_ms": 0})
    time.sleep(0.5)
    resumed = session.run("delete", *session.files(), "--state", str(state), "--wait")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(session.dsrs_for("SLOW-1")) == 1


def test_an_output_folder_whose_name_is_not_text_is_refused_before_anything_is_sent(session: Session) -> None:
    """A folder name of bytes that are not UTF-8 was accepted and written into the state file, which then could
    not be read back: the printed resume command, cancel and evidence all failed while the erasure went on."""
    out = os.fsdecode(bytes(session.cwd) + b"/r\xe9sultats")
    done = subprocess.run([str(BIN), "delete", *session.files(), "--email", "nontext@example.com",
                           "--request-id", "NONTEXT-1", "--out", out,
                           "--state", str(session.cwd / "nontext.json")], capture_output=True, text=True,
                          timeout=60, env=ENV, cwd=session.cwd)
    assert done.returncode == 2 and "not valid UTF-8" in done.stderr, done.stdout + done.stderr
    assert "sending" not in done.stdout and session.dsrs_for("NONTEXT-1") == []
