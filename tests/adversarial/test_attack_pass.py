"""Class 14: the attack pass on the remote-answers boundary, one case per class that broke before it.

Each case failed on the code before the decoding layer (``http/answers.py``): most as ``failed``/``internal``
(an unclassified exception, so the host stopped tracking a request mParticle was still running), some as a
final refusal of an answer that is no verdict. The properties in ``test_hostile_answers.py`` and
``tests/test_answers.py`` state the guarantees over generated input; these pin the classes found by hand.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector_mparticle.callbacks import CallbackVerifier, callback_app
from connector_mparticle.sandbox import Sandbox
from connector_mparticle.sandbox.pki import PROCESSOR_DOMAIN, sign_body
from dsr_framework.host import ConnectorHandle
from dsr_framework.models import Result
from tests.adversarial.conftest import config_for, handle_for
from tests.adversarial.hostile import Answer, HostileServer, Seen
from tests.support.hosting import request

STATUS_PATH = r"^/v3/requests/[0-9a-f-]{36}$"
DEEP = b"[" * 50_000 + b"]" * 50_000
Rule = Callable[[Seen, Callable[[], Answer]], Answer]


def raw(data: bytes) -> Rule:
    def write(out: Any) -> None:
        out.write(data)
        out.flush()

    return lambda seen, forward: Answer(stream=write)


def answer(status: int, body: bytes | dict[str, Any], **headers: str) -> Rule:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda seen, forward: Answer(status, {"Content-Type": "application/json", **headers}, data)


def with_fields(**fields: Any) -> Rule:
    """The real answer (a token, a profile) with ``fields`` changed."""
    return lambda seen, forward: (lambda a: Answer(a.status, a.headers, json.dumps({**a.json(), **fields}).encode()))(
        forward())


def handle(sandbox: Sandbox, hostile: HostileServer) -> ConnectorHandle:
    return handle_for(config_for(hostile, sandbox, verification={"attempts": 10, "grace_period_seconds": 60}))


def classified_pending(result: Result) -> None:
    assert result.status == "pending" and result.state and result.error is None, (result.status, result.message)


STATUS_ANSWERS = {
    "retry-after-superscript-two": answer(503, {}, **{"Retry-After": "²"}),
    "body-nested-50000-deep": answer(200, DEEP),
    "http-201-to-a-status-check": answer(201, {}),
    "http-599": answer(599, {}),
    "http-999": raw(b"HTTP/1.1 999 X\r\nContent-Length: 2\r\n\r\n{}"),
    "duplicate-keys": lambda seen, forward: Answer(200, {}, forward().body.replace(
        b'"request_status":', b'"request_status": "completed", "request_status":', 1)),
}


@pytest.mark.parametrize("case", list(STATUS_ANSWERS))
def test_a_status_answer_that_broke_the_connector_keeps_the_request_pending(sandbox: Sandbox, hostile: HostileServer,
                                                                           case: str) -> None:
    connector = handle(sandbox, hostile)
    first = connector.handle(request("deletion"))
    hostile.on("GET", STATUS_PATH, STATUS_ANSWERS[case])
    classified_pending(connector.handle(request("deletion"), first.state))


def test_an_error_body_nested_too_deep_is_still_a_classified_refusal(sandbox: Sandbox, hostile: HostileServer) -> None:
    connector = handle(sandbox, hostile)
    first = connector.handle(request("deletion"))
    hostile.on("GET", STATUS_PATH, answer(400, b"[" * 30_000 + b"]" * 30_000))
    result = connector.handle(request("deletion"), first.state)
    # Classified (never internal), and, as mParticle accepted the erasure, not a final failure (issue 21): the
    # request stays pending and names what a person must look at.
    assert result.status == "pending" and result.error is None, result.message
    assert result.action_required is not None and result.action_required.error_class == "rejected", result.message


DOWNLOAD_ANSWERS = {
    "location-unbalanced-ipv6": answer(302, {}, Location="http://[::1"),
    "http-206": answer(206, {}),
}


@pytest.mark.parametrize("case", list(DOWNLOAD_ANSWERS))
def test_a_download_answer_that_broke_the_connector_keeps_the_request_pending(sandbox: Sandbox, hostile: HostileServer,
                                                                             tmp_path: Path, case: str) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    connector = handle(sandbox, hostile)
    req = request("access", output_dir=str(tmp_path))
    first = connector.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("GET", r"^/dsr-results/", DOWNLOAD_ANSWERS[case])
    classified_pending(connector.handle(req, first.state))
    assert list(tmp_path.iterdir()) == []


def test_a_results_file_whose_content_length_is_superscript_two_is_read(sandbox: Sandbox, hostile: HostileServer,
                                                                        tmp_path: Path) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: the header is unreadable, so the body's own length counts."""
    sandbox.seed_profile({"email": "jane@example.com"})
    connector = handle(sandbox, hostile)
    req = request("access", output_dir=str(tmp_path))
    first = connector.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    content = zip_of(b'{"id": 1}')
    hostile.on("GET", r"^/dsr-results/", raw(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\n"
                                             + content))
    result = connector.handle(req, first.state)
    assert result.status == "completed" and result.summary["profiles_found"] == 1, result.message


def zip_of(*lines: bytes, name: str = "profile.jsonl") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, b"\n".join(lines) + b"\n")
    return buffer.getvalue()


ARCHIVES = {
    "consent-purposes-a-list": zip_of(b'{"id": 1, "consent_state": {"gdpr": [1]}}'),
    "lone-surrogate-in-an-attribute": zip_of(b'{"id": 1, "user_attributes": {"a": "x\\ud800y"}}'),
    "timestamp-superscript-two": zip_of(json.dumps({"events": [{"data": {"timestamp_unixtime_ms": "²"}}]}).encode(),
                                        name="batch.jsonl"),
}


@pytest.mark.parametrize("case", list(ARCHIVES))
def test_archive_content_that_broke_the_connector_is_summarised(sandbox: Sandbox, hostile: HostileServer,
                                                                tmp_path: Path, case: str) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    connector = handle(sandbox, hostile)
    req = request("access", output_dir=str(tmp_path))
    first = connector.handle(req)
    sandbox.force_status(first.summary["subject_request_id"], "completed")
    hostile.on("GET", r"^/dsr-results/", lambda seen, forward: Answer(200, {}, ARCHIVES[case]))
    result = connector.handle(req, first.state)
    assert result.status == "completed", result.message
    text = next(f for f in result.files if f.path.endswith("-summary.txt"))
    Path(text.path).read_text(encoding="utf-8")  # written as UTF-8: a lone surrogate became U+FFFD
    if case == "lone-surrogate-in-an-attribute":
        assert result.summary["profiles"][0]["user_attributes"] == {"a": "x\ufffdy"}


VERIFICATION_ANSWERS = {
    "search-nested-50000-deep": ("POST", r"^/v1/search", answer(200, DEEP)),
    "profile-identities-a-number": ("GET", r"^/userprofile/", lambda seen, forward: Answer.of_json(
        200, {"mpid": seen.path.split("?")[0].rsplit("/", 1)[-1], "user_identities": 5})),  # found: checked again
    "token-expires-in-1e999": ("POST", r"^/oauth/token", answer(
        200, b'{"access_token": "tok-0123456789abcdef", "token_type": "Bearer", "expires_in": 1e999}')),
    "token-expires-in-10-to-the-400": ("POST", r"^/oauth/token", answer(
        200, b'{"access_token": "tok-0123456789abcdef", "expires_in": 1' + b"0" * 400 + b"}")),
    "token-nested-50000-deep": ("POST", r"^/oauth/token", answer(200, DEEP)),
    "token-http-201": ("POST", r"^/oauth/token", answer(201, {})),
    "token-10-mb": ("POST", r"^/oauth/token", answer(200, b'{"x": "' + b"a" * 10_000_000 + b'"}')),
}


@pytest.mark.parametrize("case", list(VERIFICATION_ANSWERS))
def test_a_verification_answer_that_broke_the_connector_keeps_the_erasure_pending(sandbox: Sandbox,
                                                                                 hostile: HostileServer,
                                                                                 case: str) -> None:
    connector = handle(sandbox, hostile)
    req = request("deletion", mpid="123456789")
    first = connector.handle(req)
    for subject_request_id in first.summary["subject_request_ids"]:
        sandbox.force_status(subject_request_id, "completed")
    sandbox.expire_tokens()
    method, pattern, rule = VERIFICATION_ANSWERS[case]
    hostile.on(method, pattern, rule)
    classified_pending(connector.handle(req, first.state))


def test_a_token_answer_with_a_scope_that_is_not_text_is_still_a_token(sandbox: Sandbox,
                                                                       hostile: HostileServer) -> None:
    """requests-oauthlib raised AttributeError on it; the checked copy it now reads has no scope at all."""
    connector = handle(sandbox, hostile)
    req = request("deletion", mpid="123456789")
    first = connector.handle(req)
    for subject_request_id in first.summary["subject_request_ids"]:
        sandbox.force_status(subject_request_id, "completed")
    sandbox.expire_tokens()
    hostile.on("POST", r"^/oauth/token", with_fields(scope=5))
    assert connector.handle(req, first.state).status == "completed"


def test_a_201_of_the_wrong_shape_is_not_taken_for_a_submission(sandbox: Sandbox, hostile: HostileServer) -> None:
    """A proxy answering ``{}`` for the second of two OpenDSR requests (never forwarded) must not leave the
    connector believing mParticle received it."""
    connector = handle(sandbox, hostile)
    req = request("deletion", mpid="123456789")
    posts = iter(range(100))
    hostile.on("POST", r"^/v3/requests$", lambda seen, forward: forward() if next(posts) == 0 else
               Answer.of_json(201, {}))
    first = connector.handle(req)
    classified_pending(first)
    assert len(first.state["parts"]) == 1 and len(sandbox.dsrs()) == 1  # type: ignore[index]
    hostile.clear()
    second = connector.handle(req, first.state)
    assert len(second.state["parts"]) == 2 and len(sandbox.dsrs()) == 2  # type: ignore[index]


def test_a_discovery_document_nested_too_deep_is_an_unavailable_certificate(sandbox: Sandbox,
                                                                           hostile: HostileServer) -> None:
    hostile.on("GET", r"^/v3/discovery", answer(200, DEEP))
    result = handle(sandbox, hostile).handle(request("deletion"))
    classified_pending(result)
    assert result.summary["receipts"][0]["reason"] == "certificate_unavailable"


def test_a_signed_callback_nested_too_deep_is_a_bad_request(sandbox: Sandbox) -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    app = callback_app(CallbackVerifier(f"{sandbox.url}/v3/discovery", trust_store=sandbox.pki.ca.cert_pem),
                       lambda status: None)
    statuses: list[str] = []
    app({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
         "HTTP_X_OPENDSR_PROCESSOR_DOMAIN": PROCESSOR_DOMAIN,
         "HTTP_X_OPENDSR_SIGNATURE": sign_body(sandbox.pki.processor.key, body)},
        lambda status, headers: statuses.append(status))
    assert statuses == ["400 Bad Request"]
