"""Text that reaches people, end to end: a hostile mParticle's error message and a hostile results archive go
through the real command line, the real sockets and the real files; no escape sequence, control character or
forged line reaches the terminal, the log lines or the summaries."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector_mparticle.cli import main
from connector_mparticle.sandbox import Sandbox
from dsr_framework.models import DsrRequest
from dsr_framework.text import has_control
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer
from tests.test_text_for_people import FORGED, assert_safe

# -- end to end: a hostile mParticle, the real command line ----------------------------------------------------

MESSAGE = "bad request\x1b]0;owned\x07\x1b[2J\x9b31m [red]boom[/red]\u202e\u2028" + FORGED + "\r\n"


@pytest.fixture
def cli_config(sandbox: Sandbox, hostile: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = config_for(hostile, sandbox)
    config["inputs"]["auth"]["secret"] = "${MP_INPUT_SECRET}"
    monkeypatch.setenv("MP_INPUT_SECRET", config_for(hostile, sandbox)["inputs"]["auth"]["secret"])
    path = tmp_path / "mp.yaml"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize("extra", [[], ["--json"], ["--verbose"]])
def test_a_servers_escape_sequences_and_forged_lines_never_reach_the_terminal(
        hostile: HostileServer, cli_config: Path, extra: list[str]) -> None:
    hostile.on("POST", r"^/v1/search", lambda seen, forward: Answer.of_json(
        400, {"errors": [{"code": "BAD_REQUEST", "message": MESSAGE}], "message": MESSAGE}))
    done = CliRunner().invoke(main, ["opt-out", "--config", str(cli_config), "--email", "jane@example.com", *extra])
    assert done.exit_code == 1, done.output
    assert_safe(done.stdout)
    assert_safe(done.stderr)
    assert "\\x1b" in done.stdout + done.stderr or extra == ["--json"]  # shown, not obeyed
    if extra == ["--json"]:
        document = json.loads(done.stdout)
        assert done.stdout.isascii() and document["status"] == "failed"
        assert "\n" not in document["message"] and "\x1b" not in document["message"]


def results_zip(attributes: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("profile.jsonl", json.dumps({"id": 42, "user_attributes": attributes,
                                                      "audience_memberships": [{"audience_name": MESSAGE}]}) + "\n")
    return buffer.getvalue()


def test_an_archives_escape_sequences_never_reach_the_summaries(sandbox: Sandbox, hostile: HostileServer,
                                                              tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(
        200, {"Content-Type": "application/zip"}, results_zip({MESSAGE: MESSAGE, "plan": "pro"})))
    handle = handle_for(config_for(hostile, sandbox))
    req = DsrRequest("T-esc", "access", "gdpr", {"email": "jane@example.com"}, datetime.now(UTC), str(tmp_path))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    final = handle.handle(req, first.state)
    assert final.status == "completed", final.message
    text = next(tmp_path.glob("*-summary.txt")).read_text()
    assert_safe(text) and "\\x1b" in text
    document = json.loads(next(tmp_path.glob("*-summary.json")).read_text())
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', json.dumps(document, ensure_ascii=False))
    assert not any(has_control(json.loads(f'"{s}"')) for s in strings)
    assert document["results"]["profiles"][0]["user_attributes"]["plan"] == "pro"
