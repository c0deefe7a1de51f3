"""Class 3: no secret leaves the process in any form.

A hostile server echoes what it received (the Authorization header, the token request's body, the access
token) back in error messages, in every encoding and cut at any length, and hides credentials in the results
file. Whatever leaves (the result, its audit trail, the files written, every log record at DEBUG, third-party
libraries included) must hold no trace of any secret, judged by a detector written independently of the
connector's redactor.
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from connector_mparticle.sandbox import Durations, Sandbox, SandboxCredentials
from tests.adversarial.conftest import CREDS, config_for, everything_that_left, handle_for, leaks
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

TRANSFORMS: dict[str, Callable[[str], str]] = {
    "verbatim": lambda header: header,
    "base64-only": lambda header: header.split(" ", 1)[-1],
    "decoded": lambda header: base64.b64decode(header.split(" ", 1)[-1] + "==").decode("utf-8", "replace"),
    "urlencoded": lambda header: quote(base64.b64decode(header.split(" ", 1)[-1] + "==").decode(), safe=""),
    "every-char-encoded": lambda header: "".join(
        f"%{b:02x}" for b in base64.b64decode(header.split(" ", 1)[-1] + "==")),
    "json-escaped": lambda header: json.dumps(base64.b64decode(header.split(" ", 1)[-1] + "==").decode(),
                                              ensure_ascii=True).replace("-", "\\u002d"),
    "urlsafe-b64": lambda header: base64.urlsafe_b64encode(base64.b64decode(header.split(" ", 1)[-1] + "==")).decode(),
    "first-20-chars": lambda header: base64.b64decode(header.split(" ", 1)[-1] + "==").decode()[:20 + 26],
    "cut-base64": lambda header: header[:45],
    "last-12": lambda header: base64.b64decode(header.split(" ", 1)[-1] + "==").decode()[-12:],
}


def echo(transform: Callable[[str], str], status: int = 400) -> Callable[[Seen, Any], Answer]:
    """Answer with an error whose message quotes the request's Authorization header, transformed."""
    def rule(seen: Seen, forward: Any) -> Answer:
        quoted = transform(seen.authorization or "")
        return Answer.of_json(status, {"code": status, "message": f"Unauthorized header was {quoted}",
                                       "errors": [{"code": "BAD_REQUEST", "message": f"you sent {quoted}"}]})
    return rule


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_an_echoed_workspace_credential_leaves_no_trace(sandbox: Sandbox, hostile: HostileServer,
                                                        debug_logs: pytest.LogCaptureFixture, tmp_path: Path,
                                                        transform: str) -> None:
    hostile.on("POST", r"^/v3/requests", echo(TRANSFORMS[transform]))
    result = handle_for(config_for(hostile, sandbox)).handle(request("access", output_dir=str(tmp_path)))
    assert result.status == "failed" and result.error is not None and result.error.error_class == "rejected"
    assert hostile.requests(r"^/v3/requests") and hostile.requests(r"^/v3/requests")[0].authorization
    assert leaks(everything_that_left(result, debug_logs, tmp_path)) == []


@pytest.mark.parametrize("transform", ["verbatim", "decoded", "first-20-chars", "every-char-encoded"])
def test_an_echoed_input_credential_leaves_no_trace(sandbox: Sandbox, hostile: HostileServer,
                                                    debug_logs: pytest.LogCaptureFixture, transform: str) -> None:
    hostile.on("POST", r"^/v1/search", echo(TRANSFORMS[transform]))
    handle = handle_for(config_for(hostile, sandbox))
    result = handle.handle(request("opt_out"))
    check = handle.test_connection()
    assert result.status == "failed" and not check.ok
    assert leaks(everything_that_left(result, debug_logs) + json.dumps(check.to_dict())) == []


@pytest.fixture(params=[4, 5, 6], ids=lambda n: f"key-{n}-chars")
def aligned_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Keys of three lengths put the secret at each of the three base64 alignments inside key:secret."""
    creds = SandboxCredentials(workspace_key="k" * request.param, workspace_secret=CREDS.workspace_secret,
                               input_key=CREDS.input_key, input_secret=CREDS.input_secret)
    with Sandbox(credentials=creds, durations={"access": Durations(0.2, 0.3), "erasure": Durations(0.2, 0.3)}) as sb:
        yield sb


def test_the_basic_header_is_hidden_at_every_alignment(aligned_sandbox: Sandbox,
                                                       debug_logs: pytest.LogCaptureFixture) -> None:
    with HostileServer("127.0.0.1", aligned_sandbox.url) as hostile:
        hostile.on("POST", r"^/v3/requests", echo(TRANSFORMS["base64-only"]))
        result = handle_for(config_for(hostile, aligned_sandbox)).handle(request("access"))
    key = aligned_sandbox.config.credentials.workspace_key
    assert leaks(everything_that_left(result, debug_logs), [(key, CREDS.workspace_secret)]) == []


def _record_tokens(hostile: HostileServer) -> list[str]:
    """Pass the token endpoint's answers through, keeping each access token it hands out."""
    tokens: list[str] = []

    def remember(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        tokens.append(answer.json()["access_token"])
        return answer

    hostile.on("POST", r"^/oauth/token", remember)
    return tokens


def test_an_echoed_oauth_access_token_leaves_no_trace(sandbox: Sandbox, hostile: HostileServer,
                                                      debug_logs: pytest.LogCaptureFixture) -> None:
    tokens = _record_tokens(hostile)
    hostile.on("POST", r"^/v3/requests", echo(TRANSFORMS["verbatim"]))
    result = handle_for(config_for(hostile, sandbox, oauth=True)).handle(request("access"))
    assert tokens and result.status == "failed"
    text = everything_that_left(result, debug_logs)
    assert leaks(text) == [] and not [t for t in tokens if t[:12] in text]


def test_debug_logs_of_the_oauth_and_http_libraries_hold_no_client_secret_or_token(
        sandbox: Sandbox, hostile: HostileServer, debug_logs: pytest.LogCaptureFixture) -> None:
    tokens = _record_tokens(hostile)
    handle = handle_for(config_for(hostile, sandbox, oauth=True))
    handle.test_connection()
    libraries = [r for r in debug_logs.records if r.name.startswith(("requests_oauthlib", "oauthlib", "urllib3"))]
    assert any(r.name.startswith("requests_oauthlib") for r in libraries), "the libraries did log at DEBUG"
    text = "\n".join(r.getMessage() for r in debug_logs.records)
    assert tokens and leaks(text) == [] and not [t for t in tokens if t[:12] in text]


def results_zip(*lines: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("profile.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    return buffer.getvalue()


def serve_results(hostile: HostileServer, content: bytes) -> None:
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(200, {"Content-Type": "application/zip"},
                                                                        content))


def finish_access(sandbox: Sandbox, hostile: HostileServer, folder: Path) -> Any:
    handle = handle_for(config_for(hostile, sandbox))
    req = request("access", output_dir=str(folder))
    first = handle.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    return handle.handle(req, first.state)


@pytest.mark.parametrize("secret", [CREDS.workspace_key, CREDS.workspace_secret, CREDS.input_key,
                                    CREDS.input_secret], ids=["workspace-key", "workspace-secret", "input-key",
                                                              "input-secret"])
def test_a_results_file_carrying_a_credential_is_refused_and_deleted(sandbox: Sandbox, hostile: HostileServer,
                                                                     debug_logs: pytest.LogCaptureFixture,
                                                                     tmp_path: Path, secret: str) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    serve_results(hostile, results_zip({"id": 42, "user_attributes": {"note": f"your secret is {secret}"}}))
    result = finish_access(sandbox, hostile, tmp_path)
    assert result.status == "pending" and result.state is not None
    assert list(tmp_path.iterdir()) == [] and leaks(everything_that_left(result, debug_logs, tmp_path)) == []


def test_a_fragment_of_a_credential_in_the_results_is_cut_out_of_the_summaries(
        sandbox: Sandbox, hostile: HostileServer, debug_logs: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    fragment = CREDS.workspace_secret[3:17]
    serve_results(hostile, results_zip({"id": 42, "user_attributes": {"note": f"x{fragment}y", "plan": "pro"}}))
    result = finish_access(sandbox, hostile, tmp_path)
    assert result.status == "completed", result.message
    summaries = [p for p in tmp_path.iterdir() if "summary" in p.name]
    assert len(summaries) == 2 and any("pro" in p.read_text() for p in summaries)  # the JSON one quotes it
    text = json.dumps(result.to_dict()) + "".join(p.read_text() for p in summaries)
    assert leaks(text) == []


def test_a_results_url_host_built_from_a_secret_is_not_quoted(sandbox: Sandbox, hostile: HostileServer,
                                                              debug_logs: pytest.LogCaptureFixture,
                                                              tmp_path: Path) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    label = max(re.split(r"[^A-Za-z0-9]+", CREDS.workspace_secret), key=len)  # host names fold it to lower case
    assert len(label) >= 8

    def tamper(seen: Seen, forward: Any) -> Answer:
        answer = forward()
        body = answer.json()
        if body.get("results_url"):
            body["results_url"] = f"https://{label}.attacker.example/x.zip"
        return answer.with_json(body)

    hostile.on("GET", r"^/v3/requests/[0-9a-f-]{36}$", tamper)
    result = finish_access(sandbox, hostile, tmp_path)
    assert result.status == "pending"
    assert leaks(everything_that_left(result, debug_logs, tmp_path)) == []
