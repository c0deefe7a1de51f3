"""Hostile input: every bad config, request, server response or results file gives a classified error.

Property tests (hypothesis, derandomized so CI runs are repeatable) throw wrong types, huge values, odd
unicode, invalid emails, non-https URLs and garbage responses at the connector. Nothing may escape but the
connector's own errors, nothing may be written outside the output directory, and no secret may show.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import random
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.api.identity import IdentityClient
from connector_mparticle.api.opendsr import OpenDsrClient
from connector_mparticle.api.results import summarise
from connector_mparticle.errors import ConfigurationError, MParticleError, UnsafeResponseError
from connector_mparticle.http.auth import BasicAuth
from connector_mparticle.http.session import HardenedSession
from connector_mparticle.http.throttle import Throttle
from connector_mparticle.http.transport import ApiClient
from connector_mparticle.http.urls import origin_of
from connector_mparticle.sandbox.server import Serving
from connector_mparticle.settings import parse_settings
from dsr_framework import DsrRequest
from dsr_framework.redact import RedactingLogger, Redactor
from dsr_framework.validation import SchemaViolation

SECRET = "hostile-test-secret-value-123"
VALID: dict[str, Any] = {
    "dsr": {"auth": {"type": "basic", "key": "workspace-key-1", "secret": SECRET}},
    "inputs": {"auth": {"type": "basic", "key": "input-key-1", "secret": SECRET + "-input"}},
}
PROPERTY = settings(max_examples=150, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
    | st.text(alphabet=st.characters(min_codepoint=0x80), max_size=20) | st.just("x" * 100_000)
    | st.sampled_from(["http://evil.example.com", "ftp://a", "https://", "javascript:alert(1)", "not an email",
                       "jane@", "@example.com", "\u202e\u0000", "../../etc/passwd"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
config_paths = st.sampled_from([
    ("pod",), ("environment",), ("regulation",), ("identities",), ("dsr", "base_url"), ("dsr", "auth", "type"),
    ("dsr", "auth", "key"), ("inputs", "events_base_url"), ("throttle", "target_share"), ("throttle", "backend"),
    ("timeouts", "read"), ("polling",), ("opt_out", "gdpr_purposes"), ("callback_urls",), ("download", "max_bytes"),
    ("trust_store",), ("verification", "attempts"), ("unknown_setting",),
])


@PROPERTY
@given(changes=st.lists(st.tuples(config_paths, json_values), min_size=1, max_size=4))
def test_any_config_is_accepted_or_refused_with_a_classified_error_and_no_secret(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    config = copy.deepcopy(VALID)
    for path, value in changes:
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[path[-1]] = value
    refusal: ConfigurationError | None = None
    try:
        settings_ = parse_settings(config)
    except ConfigurationError as exc:
        refusal = exc
    if refusal is not None:
        assert SECRET not in str(refusal)
        assert "  - $" in str(refusal) or "polling" in str(refusal)  # every problem is named with its JSON path
        return
    assert SECRET not in repr(settings_)
    for url in (settings_.dsr_url, settings_.events_url, settings_.identity_url):
        assert url.startswith("https://") or url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))


request_fields = st.fixed_dictionaries({}, optional={
    "request_id": json_values, "type": st.sampled_from(["access", "deletion", "opt_out", "erase", 3]),
    "regulation": json_values, "identities": json_values | st.dictionaries(st.text(max_size=8), json_values),
    "submitted_at": json_values | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    "output_dir": json_values,
})


@PROPERTY
@given(data=request_fields)
def test_any_request_document_is_parsed_or_refused_with_a_schema_violation(data: dict[str, Any]) -> None:
    try:
        request = DsrRequest.from_dict(data)
    except (SchemaViolation, ValueError):
        return
    assert request.identities and request.submitted_at.tzinfo is not None


@pytest.mark.parametrize("email", ["jane", "jane@", "@example.com", "jane doe@example.com", "a@b", "x" * 400])
def test_invalid_emails_are_refused_before_reaching_the_connector(email: str) -> None:
    with pytest.raises(SchemaViolation):
        DsrRequest("r-1", "access", "gdpr", {"email": email}, datetime.now(UTC))


class Scripted:
    status = 200
    headers: dict[str, str] = {}
    body = b""


@pytest.fixture(scope="module")
def garbage_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(Scripted.status)
            for key, value in Scripted.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(Scripted.body)))
            self.end_headers()
            self.wfile.write(Scripted.body)

        do_GET = do_POST = _any

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = Serving(server, "scripted-http")
    yield f"http://127.0.0.1:{server.server_address[1]}"
    serving.stop()


def api(url: str, name: str) -> ApiClient:
    redactor = Redactor(["workspace-key-1", SECRET])
    return ApiClient(name, url, BasicAuth(origin_of(url), "workspace-key-1", SECRET), HardenedSession(),
                     Throttle.build({}, 1.0), RedactingLogger(__import__("logging").getLogger("t"), redactor),
                     redactor, timeout=(1, 1), max_retry_seconds=0.05, max_retry_after_seconds=0,
                     sleep=lambda s: None, rng=random.Random(0))


bodies = (st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
          | st.sampled_from([b"", b"{", b"null", b'{"mpid": {"x": 1}}', b'{"request_status": "done"}',
                             b'{"subject_request_id": 5}', b'{"errors": "nope"}', b"\xff\xfe"]))


@pytest.mark.slow  # 150 hostile answers from a live server: ~20 s
@PROPERTY
@given(status=st.sampled_from([200, 201, 202, 204, 301, 302, 400, 401, 403, 404, 409, 410, 413, 429, 500, 503]),
       body=bodies, location=st.sampled_from(["", "https://evil.example.com/x", "/v3/requests/y"]))
def test_any_server_response_gives_a_result_or_a_connector_error(garbage_server: str, status: int, body: bytes,
                                                                  location: str) -> None:
    Scripted.status, Scripted.body = status, body
    Scripted.headers = {"Content-Type": "application/json", **({"Location": location} if location else {})}
    calls = [lambda: OpenDsrClient(api(garbage_server, "dsr")).status("abc"),
             lambda: IdentityClient(api(garbage_server, "identity"), "production").search({"email": "a@b.co"}),
             lambda: OpenDsrClient(api(garbage_server, "dsr")).probe()]
    for call in calls:
        message = ""
        try:
            call()
        except MParticleError as exc:
            message = str(exc)
        assert SECRET not in message


def zip_bytes(entries: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


HOSTILE_ZIPS = {
    "path-traversal": zip_bytes([("../../evil.jsonl", b'{"events": []}\n'), ("/etc/profile.jsonl", b"{}\n"),
                                 ("..\\..\\win.jsonl", b"{}\n")]),
    "zip-bomb": zip_bytes([("event_batches.jsonl", b"\n" * 60_000_000)]),
    "not-a-zip": b"PK\x03\x04 definitely not a zip archive",
    "huge-line": zip_bytes([("profile.jsonl", b"x" * 20_000_000)], zipfile.ZIP_STORED),
    "garbage-lines": zip_bytes([("profile.jsonl", b"\xff\xfe{not json}\n[1,2]\nnull\n"), ("b.jsonl", b"{]\n")]),
}


@pytest.mark.parametrize("name", list(HOSTILE_ZIPS))
def test_hostile_results_archives_are_refused_or_read_without_writing_anything(name: str, tmp_path: Path) -> None:
    archive = tmp_path / "results.zip"
    archive.write_bytes(HOSTILE_ZIPS[name])
    before = sorted(p for p in tmp_path.rglob("*"))
    refused = name in ("zip-bomb", "not-a-zip", "huge-line", "garbage-lines")
    if refused:
        with pytest.raises(UnsafeResponseError):
            summarise(archive, 50 * archive.stat().st_size + 1_000_000)
    else:
        summary = summarise(archive, 50 * archive.stat().st_size + 1_000_000)
        # Entry names are only classified by their last part, never used as paths.
        assert summary["profiles_found"] == {"path-traversal": 1}[name]
    assert sorted(p for p in tmp_path.rglob("*")) == before, "reading an archive must never write a file"
    assert not (tmp_path.parent / "evil.jsonl").exists()


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@PROPERTY
@given(entries=st.lists(st.tuples(st.text(min_size=1, max_size=30), st.binary(max_size=200)), max_size=6))
def test_any_archive_content_is_read_or_refused(entries: list[tuple[str, bytes]], tmp_path_factory: Any) -> None:
    folder = tmp_path_factory.mktemp("zips")
    archive = folder / "results.zip"
    try:
        archive.write_bytes(zip_bytes(entries))
    except (ValueError, UnicodeEncodeError, IndexError):
        return  # names the standard library's zipfile cannot even write (e.g. a lone NUL)
    with contextlib.suppress(UnsafeResponseError):  # refusing is fine; anything else escaping is not
        summarise(archive, 10_000_000)
    assert [p.name for p in folder.iterdir()] == ["results.zip"]


def test_a_zip_bomb_from_mparticle_is_refused_and_deleted_and_the_request_stays_pending(tmp_path: Path) -> None:
    """End to end: the sandbox serves a zip bomb as the results file; nothing of it is kept, and the request waits
    to download again (mParticle completed it; only the file was unusable)."""
    from connector_mparticle.sandbox import Sandbox
    from tests.support.hosting import mparticle, request

    with Sandbox() as sb:
        sb.seed_profile({"email": "jane@example.com"})
        sb.set_durations(access=(0.1, 0.1))
        handle = mparticle(sb)
        first = handle.handle(request("access", output_dir=str(tmp_path)))
        sb.force_status(first.summary["subject_request_id"], "completed")
        [record] = sb.ctx.store.dsrs()  # a copy; its results_file is the one the sandbox serves
        assert record.results_file is not None
        record.results_file.write_bytes(HOSTILE_ZIPS["zip-bomb"])
        result = handle.handle(request("access", output_dir=str(tmp_path)), dict(first.state or {}))
    assert result.status == "pending" and result.state is not None
    assert "zip bomb" in result.message
    assert list(tmp_path.iterdir()) == []
