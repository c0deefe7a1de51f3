"""The harness's parts on their own: the egress guard, the watchdog, file checks, output capture, the verdict."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsr_framework.conformance.egress import EgressBlocked, EgressGuard
from dsr_framework.conformance.files import Workspace, listed_file_problems, unlisted_files_with_secrets
from dsr_framework.conformance.leaks import captured
from dsr_framework.conformance.schema_checks import secret_looking_fields
from dsr_framework.conformance.verdict import Row, Verdict
from dsr_framework.conformance.watchdog import Overran, call_with_limit
from dsr_framework.models import OutputFile
from dsr_framework.redact import Redactor

SECRET = "s3cr3t-Value-4242-xyz"


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback port that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


# -- the egress guard ---------------------------------------------------------------------------------------------


def test_the_guard_blocks_and_records_connect_ex_to_a_host_it_does_not_allow(listener: int) -> None:
    guard = EgressGuard.allowing({"127.0.0.1"})
    with guard.active(), socket.socket() as probe, pytest.raises(EgressBlocked, match=r"127\.0\.0\.2"):
        probe.connect_ex(("127.0.0.2", listener))  # loopback too, but not an allowed address
    assert guard.violations == ["contacted the undeclared host 127.0.0.2 (socket.connect)"]


def test_allowed_hosts_pass_and_an_inactive_guard_does_nothing(listener: int) -> None:
    guard = EgressGuard.allowing({"127.0.0.1"})
    with guard.active(), socket.create_connection(("127.0.0.1", listener), timeout=2):
        pass
    with socket.socket() as probe:  # no guard active: the hook stays out of the way
        assert probe.connect_ex(("127.0.0.1", listener)) == 0
    assert guard.violations == []


def test_the_guard_sees_other_threads_and_blocks_every_process_start(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    guard = EgressGuard.allowing(())
    errors: list[BaseException] = []

    def background() -> None:
        try:
            socket.socket().connect_ex(("127.0.0.3", 9))
        except EgressBlocked as exc:
            errors.append(exc)

    with guard.active():
        worker = threading.Thread(target=background)
        worker.start()
        worker.join()
        with pytest.raises(EgressBlocked):
            subprocess.run([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], check=False)
        with pytest.raises(EgressBlocked):
            os.system(f"touch {marker}")  # noqa: S605 - must not run
    assert len(errors) == 1 and not marker.exists()
    assert any("subprocess.Popen" in v for v in guard.violations) and any("os.system" in v for v in guard.violations)


# -- the watchdog -------------------------------------------------------------------------------------------------


def test_the_watchdog_returns_the_value_of_a_call_within_its_limit() -> None:
    value, elapsed = call_with_limit(lambda: 42, 1.0)
    assert value == 42 and elapsed < 1.0


def test_a_call_past_its_limit_fails_even_when_it_returns() -> None:
    started = time.monotonic()
    with pytest.raises(Overran, match="still running") as hung:
        call_with_limit(lambda: time.sleep(3), 0.1)
    assert time.monotonic() - started < 1.0 and not hung.value.finished  # abandoned, not waited for
    with pytest.raises(Overran, match="returned after") as late:
        call_with_limit(lambda: time.sleep(0.13), 0.1)
    assert late.value.finished


def test_an_exception_inside_the_call_reaches_the_caller() -> None:
    def boom() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        call_with_limit(boom, 1.0)


# -- files ----------------------------------------------------------------------------------------------------------


def _listed(path: Path, data: bytes | None = None) -> OutputFile:
    data = path.read_bytes() if data is None else data
    return OutputFile(str(path), "application/octet-stream", len(data), hashlib.sha256(data).hexdigest())


def test_listed_files_must_exist_inside_the_output_directory_as_listed_and_hold_no_secret(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    good = out / "good.json"
    good.write_bytes(b'{"a": 1}')
    outside = tmp_path / "outside.json"
    outside.write_bytes(b"x")
    (out / "link.json").symlink_to(outside)
    archive = out / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.jsonl", f'{{"token": "{SECRET[:9]}"}}')  # compressed: only visible inside
    files = (_listed(good), _listed(out / "link.json"), _listed(good, b"other"),
             OutputFile(str(out / "ghost.json"), "application/json", 1, "0" * 64), _listed(archive))
    problems = listed_file_problems(files, str(out), Redactor([SECRET]))
    assert problems == [
        f"lists {out / 'link.json'}, which resolves outside the output directory",
        "lists good.json with size 5, but it holds 8 bytes",
        "lists good.json with a SHA-256 that does not match its contents",
        "lists ghost.json, which does not exist",
        "wrote a configured secret (or 8 or more characters of one) into export.zip",
    ]


def test_an_unlisted_file_holding_a_secret_is_found_too(tmp_path: Path) -> None:
    (tmp_path / "listed.json").write_text("{}")
    (tmp_path / "debug.log").write_text(f"auth={SECRET}")
    found = unlisted_files_with_secrets(str(tmp_path), (_listed(tmp_path / "listed.json"),), Redactor([SECRET]))
    assert found == ["wrote a configured secret (or 8 or more characters of one) into debug.log, a file it does not "
                     "list"]


def test_the_workspace_sees_files_written_beside_the_output_directory_and_in_temp() -> None:
    workspace = Workspace()
    cwd, tempdir = os.getcwd(), tempfile.gettempdir()
    try:
        out = workspace.output_dir()
        with workspace.entered():
            (out / "fine.json").write_text("{}")
            (out / ".." / "escaped.json").write_text("{}")
            with tempfile.NamedTemporaryFile(delete=False) as left:
                left.write(b"x")
            Path("here.txt").write_text("cwd")
            with tempfile.NamedTemporaryFile():  # cleaned up: not a stray
                pass
        assert os.getcwd() == cwd and tempfile.gettempdir() == tempdir
        strays = workspace.strays()
        assert strays == sorted(["cwd/here.txt", "escaped.json", f"tmp/{Path(left.name).name}"])
    finally:
        workspace.remove()


# -- capture and the verdict ----------------------------------------------------------------------------------------


def test_capture_sees_print_file_descriptors_and_debug_records_and_passes_nothing_on(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with captured() as output:
        print("to stdout")
        os.write(2, b"to fd 2\n")
        logging.getLogger("some.connector").debug("a debug record")
    assert "to stdout" in output.stdout and "to fd 2" in output.stderr
    assert output.records == ["some.connector: a debug record"]
    seen = capfd.readouterr()
    assert "to stdout" not in seen.out and "to fd 2" not in seen.err


def test_secret_looking_fields_are_found_through_refs() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "$defs": {"auth": {"type": "object", "properties": {"clientSecret": {"type": "string"},
                                                                   "token_url": {"type": "string"}}}},
              "properties": {"auth": {"$ref": "#/$defs/auth"},
                             "api_key": {"type": "string", "writeOnly": True}}}
    assert secret_looking_fields(schema) == [("$.api_key", True), ("$.auth.clientSecret", False)]


def test_missing_pieces_count_against_trust_unless_allowed() -> None:
    rows = [Row("x", "a", "pass"), Row("x", "b", "missing", "add an oracle")]
    assert not Verdict(rows).ok and Verdict(rows, allow_skips=True).ok
    table = Verdict(rows).table(width=100)
    assert "b  MISSING  add an oracle" in table and "x: NOT TRUSTED (1 pass, 1 missing)" in table
    assert not Verdict([]).ok  # nothing ran is not a pass


def test_output_captured_in_a_check_is_redacted_before_it_is_passed_on(capsys: pytest.CaptureFixture[str]) -> None:
    from dsr_framework.conformance.session import ConnectorUnderTest

    cut = ConnectorUnderTest("x", redactor=Redactor([SECRET]))
    cut.pass_on(f"key={SECRET[:10]}", f"mail jane.doe@example.com {SECRET}")
    seen = capsys.readouterr()
    assert SECRET[:8] not in seen.out + seen.err and "jane.doe@example.com" not in seen.err


def test_the_harness_holds_verification_and_action_required_to_their_contract() -> None:
    """Issue 21: a host routes on these fields, so the harness refuses one that is misplaced, malformed, missing
    where the manifest declares it, or contradicting the summary."""
    from datetime import UTC, datetime

    from dsr_framework.conformance.verification import verification_problem
    from dsr_framework.manifest import Capability
    from dsr_framework.models import ActionRequired, DsrRequest, Result, Verification, VerificationReason

    declared = Capability("handle_deletion", ("email", "customer_id"), "asynchronous", "erasure",
                          reports_verification=True)
    request = DsrRequest("r-1", "deletion", "gdpr", {"email": "jane@example.com"}, datetime.now(UTC))
    reason = VerificationReason("login_id_required", "known profiles need a customer_id", ("customer_id",))
    good = Result("r-1", "deletion", "completed", "done, unverified", verification=Verification.of([reason]))
    assert verification_problem("handle_deletion", good, declared, request) is None
    waiting = Result("r-1", "deletion", "pending", "m", state={}, next_check_at=datetime.now(UTC),
                     action_required=ActionRequired("authentication", "fix the secret"))
    assert verification_problem("handle_deletion", waiting, declared, request) is None
    stranger = VerificationReason("not_searchable", "cannot search it", ("app_user_id",))
    bad = {
        "without verification": Result("r-1", "deletion", "completed", "done"),
        "pending with verification": Result("r-1", "deletion", "pending", "m", state={},
                                            next_check_at=datetime.now(UTC), verification=Verification("verified")),
        "final with action_required": Result("r-1", "deletion", "failed", "m",
                                             action_required=ActionRequired("configuration", "x")),
        "a category nobody declared": Result("r-1", "deletion", "completed", "m",
                                             verification=Verification.of([stranger])),
        "summary contradicting it": Result("r-1", "deletion", "completed", "m", summary={"verified": True},
                                           verification=Verification.of([reason])),
    }
    for why, result in bad.items():
        assert verification_problem("handle_deletion", result, declared, request) is not None, why
    undeclared = Capability("handle_deletion", ("email",), "asynchronous", "erasure")
    assert verification_problem("handle_deletion", bad["without verification"], undeclared, request) is None
