"""The sandbox's OpenDSR v3: lifecycle, documented errors, erasure, results files and signed callbacks."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connector_mparticle.sandbox import Sandbox
from tests.support.mp import INPUT, WORKSPACE, batch, dsr_body


def submit(sb: Sandbox, body: dict[str, Any], auth: Any = WORKSPACE) -> requests.Response:
    return requests.post(f"{sb.url}/v3/requests", json=body, auth=auth, timeout=5)


def status(sb: Sandbox, request_id: str) -> requests.Response:
    return requests.get(f"{sb.url}/v3/requests/{request_id}", auth=WORKSPACE, timeout=5)


def wait_for(sb: Sandbox, request_id: str, wanted: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        body: dict[str, Any] = status(sb, request_id).json()
        if body["request_status"] == wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(f"request never became {wanted}")


def verify_signature(cert: x509.Certificate, body: bytes, signature: str) -> None:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())


def test_submission_is_acknowledged_with_the_documented_fields_and_a_valid_signature(sandbox: Sandbox) -> None:
    body = dsr_body()
    response = submit(sandbox, body)
    assert response.status_code == 201
    data = response.json()
    assert set(data) == {"expected_completion_time", "received_time", "encoded_request", "subject_request_id",
                         "controller_id"}
    assert data["subject_request_id"] == body["subject_request_id"] and data["controller_id"] == "12345"
    assert json.loads(base64.b64decode(data["encoded_request"])) == body
    assert response.headers["X-OpenDSR-Processor-Domain"] == "opendsr.mparticle.com"
    cert = x509.load_pem_x509_certificate(requests.get(f"{sandbox.url}/dsr/opendsr_cert.pem", timeout=5).content)
    verify_signature(cert, response.content, response.headers["X-OpenDSR-Signature"])


def test_request_moves_through_its_lifecycle_and_completes_when_expected(sandbox: Sandbox) -> None:
    sandbox.set_durations(access=(0.3, 0.4))
    body = dsr_body()
    expected = submit(sandbox, body).json()["expected_completion_time"]
    assert status(sandbox, body["subject_request_id"]).json()["request_status"] == "pending"
    wait_for(sandbox, body["subject_request_id"], "in_progress")
    done = wait_for(sandbox, body["subject_request_id"], "completed")
    assert done["expected_completion_time"] == expected
    completed_at = time.time()
    assert abs(completed_at - time.mktime(time.strptime(expected[:19], "%Y-%m-%dT%H:%M:%S")) + time.timezone) < 1.5


INVALID = [
    ({"regulation": None}, "'regulation' is required"),
    ({"regulation": "lgpd"}, "'regulation' must be"),
    ({"subject_request_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, "UUID v4"),
    ({"subject_request_id": "not-a-uuid"}, "UUID v4"),
    ({"subject_request_type": "rectification"}, "'subject_request_type' must be"),
    ({"submitted_time": "last tuesday"}, "ISO 8601"),
    ({"subject_identities": {"email": {"value": "a@b.co", "encoding": "sha256"}}}, "only 'raw'"),
    ({"subject_identities": {"shoe_size": {"value": "9", "encoding": "raw"}}}, "unsupported identity type"),
    ({"subject_identities": {"mpid": {"value": "42", "encoding": "raw"}}}, "unsupported identity type"),
    ({"subject_identities": {}}, "at least one subject identity"),
    ({"subject_identities": {"email": {"value": "a@b.co", "encoding": "raw"}},
      "extensions": {"opendsr.mparticle.com": {"subject_identities": {"mpid": {"value": "42", "encoding": "raw"}}}}},
     "an mpid cannot be sent together with other identities"),
    ({"subject_identities": None, "extensions": {"opendsr.mparticle.com": {"subject_identities": {
        f"other{n}": {"value": str(n), "encoding": "raw"} for n in range(2, 11)} | {
        "other": {"value": "x", "encoding": "raw"}}}}}, None),
    ({"colour": "blue"}, "unknown field"),
]


@pytest.mark.parametrize(("change", "message"), INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_invalid_submissions_get_a_400_with_the_documented_error_body(
    sandbox: Sandbox, change: dict[str, Any], message: str | None
) -> None:
    response = submit(sandbox, dsr_body(**change))
    if message is None:  # extension-only identities on their own are valid
        assert response.status_code == 201
        return
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 400 and message in error["message"]
    assert error["errors"][0]["domain"] == "Validation" and message in error["errors"][0]["message"]


def test_malformed_json_is_a_400(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/v3/requests", data=b"{not json", auth=WORKSPACE, timeout=5,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["message"]


def test_reusing_a_subject_request_id_says_it_already_exists(sandbox: Sandbox) -> None:
    body = dsr_body()
    assert submit(sandbox, body).status_code == 201
    again = submit(sandbox, {**body, "subject_identities": {"email": {"value": "x@y.zz", "encoding": "raw"}}})
    assert again.status_code == 400 and "already exists" in again.json()["message"]


def test_same_identities_and_type_while_in_progress_is_a_409(sandbox: Sandbox) -> None:
    assert submit(sandbox, dsr_body("erasure")).status_code == 201
    conflict = submit(sandbox, dsr_body("erasure"))
    assert conflict.status_code == 409
    assert submit(sandbox, dsr_body("access")).status_code == 201  # another type is not a conflict


def test_wrong_credentials_and_unknown_ids(sandbox: Sandbox) -> None:
    assert submit(sandbox, dsr_body(), auth=("sandbox-workspace-key", "wrong")).status_code == 401
    assert submit(sandbox, dsr_body(), auth=INPUT).status_code == 401  # input keys don't open the DSR API
    assert requests.get(f"{sandbox.url}/v3/requests/0", timeout=5).status_code == 401
    missing = status(sandbox, "0")
    assert missing.status_code == 404 and missing.json()["code"] == 404


def test_requests_can_be_listed_by_group(sandbox: Sandbox) -> None:
    first, second = dsr_body(group_id="host-7"), dsr_body("erasure", group_id="host-7")
    submit(sandbox, first)
    submit(sandbox, second)
    submit(sandbox, dsr_body(email="other@example.com", group_id="host-8"))
    listed = requests.get(f"{sandbox.url}/v3/requests", params={"group_id": "host-7"}, auth=WORKSPACE, timeout=5)
    assert listed.status_code == 200
    assert [r["subject_request_id"] for r in listed.json()] == [first["subject_request_id"],
                                                                second["subject_request_id"]]


def test_only_pending_requests_can_be_cancelled(sandbox: Sandbox) -> None:
    sandbox.set_durations(erasure=(30, 30))
    body = dsr_body("erasure")
    submit(sandbox, body)
    cancelled = requests.delete(f"{sandbox.url}/v3/requests/{body['subject_request_id']}", auth=WORKSPACE, timeout=5)
    assert cancelled.status_code == 202
    assert cancelled.json()["expected_completion_time"] is None
    assert status(sandbox, body["subject_request_id"]).json()["request_status"] == "cancelled"
    other = dsr_body("access")
    submit(sandbox, other)
    sandbox.force_status(other["subject_request_id"], "in_progress")
    refused = requests.delete(f"{sandbox.url}/v3/requests/{other['subject_request_id']}", auth=WORKSPACE, timeout=5)
    assert refused.status_code == 400 and "only pending" in refused.json()["message"]


def test_completed_erasure_removes_the_profile_and_its_events(sandbox: Sandbox) -> None:
    jane = sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"}, batches=[batch()])
    bob = sandbox.seed_profile({"email": "bob@example.com"}, batches=[batch("bob@example.com")])
    body = dsr_body("erasure")
    submit(sandbox, body)
    done = wait_for(sandbox, body["subject_request_id"], "completed")
    assert done["results_url"] is None
    assert done["extensions"][0]["status"] == "sent"
    assert sandbox.profile(jane["mpid"]) is None
    assert sandbox.profile(bob["mpid"]) is not None
    search = requests.post(f"{sandbox.url}/v1/search", auth=INPUT, timeout=5,
                           json={"environment": "production", "known_identities": {"email": "jane@example.com"}})
    assert search.status_code == 404
    assert sandbox.dsr(body["subject_request_id"])["matched_mpids"] == [jane["mpid"]]  # type: ignore[index]


def read_zip(content: bytes) -> dict[str, list[Any]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: [json.loads(line) for line in archive.read(name).decode().splitlines() if line.strip()]
                if name.endswith(".jsonl") else [archive.read(name).decode()] for name in archive.namelist()}


def test_access_results_hold_the_profile_and_its_event_batches(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com", "customer_id": "c-1"}, attributes={"$firstname": "Jane"},
                         batches=[batch(), batch()], consent={"ccpa": {"data_sale_opt_out": {"consented": False}}})
    body = dsr_body()
    submit(sandbox, body)
    done = wait_for(sandbox, body["subject_request_id"], "completed")
    download = requests.get(done["results_url"], timeout=5)
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    files = read_zip(download.content)
    [profile] = files["profile.jsonl"]
    assert profile["user_attributes"] == {"$firstname": "Jane"}
    assert {"identity_type": "customer_id", "identity": "c-1"} in profile["user_identities"]
    assert profile["consent_state"]["ccpa"]["data_sale_opt_out"]["consented"] is False
    assert len(files["event_batches.jsonl"]) == 2
    assert files["event_batches.jsonl"][0]["events"][0]["data"]["event_name"] == "Viewed Pricing"


def test_access_for_a_profile_without_events_gives_empty_txt(sandbox: Sandbox) -> None:
    sandbox.seed_profile({"email": "jane@example.com"})
    body = dsr_body()
    submit(sandbox, body)
    files = read_zip(requests.get(wait_for(sandbox, body["subject_request_id"], "completed")["results_url"],
                                  timeout=5).content)
    assert "empty.txt" in files and "event_batches.jsonl" not in files


def test_results_link_is_404_when_nothing_matched_and_410_once_expired(sandbox: Sandbox) -> None:
    nobody = dsr_body(email="nobody@example.com")
    submit(sandbox, nobody)
    url = wait_for(sandbox, nobody["subject_request_id"], "completed")["results_url"]
    assert requests.get(url, timeout=5).status_code == 404
    sandbox.seed_profile({"email": "jane@example.com"})
    sandbox.set_durations(results_ttl_seconds=0.3)
    body = dsr_body()
    submit(sandbox, body)
    url = wait_for(sandbox, body["subject_request_id"], "completed")["results_url"]
    time.sleep(0.4)
    assert requests.get(url, timeout=5).status_code == 410


def test_discovery_names_the_supported_identities_and_the_certificate(sandbox: Sandbox) -> None:
    data = requests.get(f"{sandbox.url}/v3/discovery", timeout=5).json()
    assert data["api_version"] == "3.0"
    assert {"identity_type": "email", "identity_format": "raw"} in data["supported_identities"]
    assert len(data["supported_identities"]) == 11
    assert data["processor_certificate"] == f"{sandbox.url}/dsr/opendsr_cert.pem"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def callback_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dsr-callback", received
    server.shutdown()
    server.server_close()


def test_callbacks_are_sent_on_every_status_change_signed_by_a_certificate_from_the_sandbox_ca(
    sandbox: Sandbox, callback_receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = callback_receiver
    body = dsr_body(status_callback_urls=[url, "https://host.example.com/cb"])
    submit(sandbox, body)
    wait_for(sandbox, body["subject_request_id"], "completed")
    deadline = time.time() + 5
    while len(received) < 3 and time.time() < deadline:
        time.sleep(0.05)
    statuses = [json.loads(raw)["request_status"] for _, raw in received]
    assert statuses == ["pending", "in_progress", "completed"]
    cert_url = requests.get(f"{sandbox.url}/v3/discovery", timeout=5).json()["processor_certificate"]
    cert = x509.load_pem_x509_certificate(requests.get(cert_url, timeout=5).content)
    ca = x509.load_pem_x509_certificate(sandbox.ca_pem())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == ["opendsr.mparticle.com"]
    for headers, raw in received:
        assert headers["x-opendsr-processor-domain"] == "opendsr.mparticle.com"
        verify_signature(cert, raw, headers["x-opendsr-signature"])
        assert json.loads(raw)["status_callback_url"] == url
    undelivered = [d for d in sandbox.callbacks() if d["url"].startswith("https://host.example.com")]
    assert undelivered and not any(d["delivered"] for d in undelivered)  # the sandbox never leaves loopback
